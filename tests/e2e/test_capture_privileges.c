/*
 * test_capture_privileges: `flowveil capture -Z USER` opens the store,
 * the key file and the interface as root, then runs as USER with no
 * capabilities and no_new_privs, and still records and stores flows.
 * Also: --chroot as root, and an unprivileged user running a copy of the
 * binary with file capabilities (setcap cap_net_raw,cap_net_admin=eip),
 * which clears them after opening the interface; and --log syslog into a
 * socket of the test standing in for /dev/log. The drop tests need
 * root and are skipped otherwise; the user lookup tests run as anyone.
 * Only 127.0.0.1 is used.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define DATAGRAMS 4

/* Copy the value of FIELD ("Uid", "CapEff") from the status text of a
 * process into OUT, without the leading tab and the newline. */
static void status_field(const char *status, const char *field, char *out, size_t out_len)
{
    char key[32];
    snprintf(key, sizeof key, "\n%s:\t", field);
    const char *at = strstr(status, key);
    if (at == NULL)
        fail_msg("no %s line in /proc/PID/status", field);
    at += strlen(key);
    size_t n = strcspn(at, "\n");
    assert_true(n < out_len);
    memcpy(out, at, n);
    out[n] = '\0';
}

static void test_capture_drops_to_nobody(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: capture -Z needs root (run the tests as root to include it)\n");
        skip();
    }
    struct passwd *nobody = getpwnam("nobody");
    if (nobody == NULL) {
        printf("skipped: this system has no user 'nobody'\n");
        skip();
    }
    unsigned long uid = (unsigned long)nobody->pw_uid;
    unsigned long gid = (unsigned long)nobody->pw_gid;

    /* capture creates the store as root; after the drop it keeps
     * writing through the descriptors it opened before. */
    char dir[4096], db[4096], policy[4096], err_file[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(err_file, dir, "capture.err");
    e2e_write_policy(policy, "[]", "30d");

    uint16_t port = 0;
    int receiver = e2e_udp_receiver(&port);
    char filter[64];
    snprintf(filter, sizeof filter, "udp port %u", (unsigned)port);

    const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db, "-i", "lo",
                          "-Z", "nobody", "--filter", filter, NULL};
    pid_t pid = e2e_spawn(argv, dir, "capture");

    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        e2e_print_result("flowveil capture -Z nobody did not start", &res);
        e2e_result_free(&res);
        fail();
    }

    char status_path[64];
    snprintf(status_path, sizeof status_path, "/proc/%ld/status", (long)pid);
    char *status = tu_read_file(status_path, NULL);
    assert_non_null(status);

    char value[256], expected[256];
    status_field(status, "Uid", value, sizeof value);
    snprintf(expected, sizeof expected, "%lu\t%lu\t%lu\t%lu", uid, uid, uid, uid);
    assert_string_equal(value, expected);
    status_field(status, "Gid", value, sizeof value);
    snprintf(expected, sizeof expected, "%lu\t%lu\t%lu\t%lu", gid, gid, gid, gid);
    assert_string_equal(value, expected);
    /* Root's group 0 must not survive as a supplementary group. */
    status_field(status, "Groups", value, sizeof value);
    for (char *tok = value; *tok != '\0';) {
        char *end;
        unsigned long group = strtoul(tok, &end, 10);
        if (end == tok)
            break;
        assert_int_not_equal(group, 0);
        tok = end;
        while (*tok == ' ')
            tok++;
    }
    status_field(status, "CapPrm", value, sizeof value);
    assert_string_equal(value, "0000000000000000");
    status_field(status, "CapEff", value, sizeof value);
    assert_string_equal(value, "0000000000000000");
    status_field(status, "CapAmb", value, sizeof value);
    assert_string_equal(value, "0000000000000000");
    status_field(status, "CapBnd", value, sizeof value);
    assert_string_equal(value, "0000000000000000");
    status_field(status, "NoNewPrivs", value, sizeof value);
    assert_string_equal(value, "1");
    free(status);

    e2e_sleep_ms(200);
    e2e_send_udp_datagrams(receiver, port, DATAGRAMS);
    e2e_sleep_ms(500);

    /* The exit path flushes the flow, runs a forced retention sweep and
     * appends the capture.stop audit entry, all as nobody; a failed
     * store write makes the exit status 1. */
    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 20, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err) ||
        strstr(res.err, "failed") != NULL) {
        e2e_print_result("flowveil capture -Z nobody", &res);
        e2e_result_free(&res);
        fail_msg("flowveil capture -Z nobody did not exit 0 cleanly after SIGINT");
    }
    assert_non_null(strstr(res.err, "dropped privileges to user nobody"));
    e2e_result_free(&res);

    json_t *flows = e2e_export(dir, db, "flows", 0);
    int matching = 0;
    size_t i;
    json_t *f;
    json_array_foreach(flows, i, f) {
        json_int_t sport = json_integer_value(json_object_get(f, "sport"));
        json_int_t dport = json_integer_value(json_object_get(f, "dport"));
        if (sport != port && dport != port)
            continue;
        matching++;
        assert_int_equal(json_integer_value(json_object_get(f, "proto")), 17);
        assert_int_equal(json_integer_value(json_object_get(f, "pkts_fwd")) +
                             json_integer_value(json_object_get(f, "pkts_rev")),
                         DATAGRAMS);
    }
    json_decref(flows);
    assert_int_equal(matching, 1);
    tu_remove_tree(dir);
}

/* Copy FIELD of /proc/PID/status into OUT. */
static void pid_status_field(pid_t pid, const char *field, char *out, size_t out_len)
{
    char status_path[64];
    snprintf(status_path, sizeof status_path, "/proc/%ld/status", (long)pid);
    char *status = tu_read_file(status_path, NULL);
    assert_non_null(status);
    status_field(status, field, out, out_len);
    free(status);
}

/* Start ARGV (a capture command), wait for its "capturing on" line in
 * DIR/capture.err and return its pid; fail with its output otherwise. */
static pid_t start_capture(const char *const argv[], const char *dir)
{
    char err_file[4096];
    e2e_path(err_file, dir, "capture.err");
    pid_t pid = e2e_spawn(argv, dir, "capture");
    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        e2e_print_result("flowveil capture did not start", &res);
        e2e_result_free(&res);
        fail();
    }
    return pid;
}

/* Send datagrams to the capture's filtered port, stop it with SIGINT and
 * check it exited 0 with one stored flow of DATAGRAMS packets. Returns
 * its stderr in a new string. */
static char *finish_capture(pid_t pid, const char *dir, const char *db, int receiver,
                            uint16_t port)
{
    e2e_sleep_ms(200);
    e2e_send_udp_datagrams(receiver, port, DATAGRAMS);
    e2e_sleep_ms(500);
    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 20, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture", &res);
        e2e_result_free(&res);
        fail_msg("flowveil capture did not exit 0 after SIGINT");
    }
    char *log = strdup(res.err);
    assert_non_null(log);
    e2e_result_free(&res);

    json_t *flows = e2e_export(dir, db, "flows", 0);
    int matching = 0;
    size_t i;
    json_t *f;
    json_array_foreach(flows, i, f) {
        json_int_t sport = json_integer_value(json_object_get(f, "sport"));
        json_int_t dport = json_integer_value(json_object_get(f, "dport"));
        if (sport == port || dport == port)
            matching++;
    }
    json_decref(flows);
    assert_int_equal(matching, 1);
    return log;
}

static void assert_capability_sets_empty(pid_t pid, bool bounding_too)
{
    char value[256];
    static const char *const sets[] = {"CapPrm", "CapEff", "CapAmb", "CapBnd"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        if (!bounding_too && strcmp(sets[i], "CapBnd") == 0)
            continue;
        pid_status_field(pid, sets[i], value, sizeof value);
        if (strcmp(value, "0000000000000000") != 0)
            fail_msg("%s of the capture process is %s, expected 0", sets[i], value);
    }
    pid_status_field(pid, "NoNewPrivs", value, sizeof value);
    assert_string_equal(value, "1");
}

/* LeakSanitizer reads /proc at exit, which a chroot to the store
 * directory hides, so a sanitizer build would fail at exit with "Can't
 * open /proc/PID/task". The children of the --chroot tests run without
 * the leak check; the other tests keep it. */
static void without_leak_check_for_chroot(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char value[1024];
    snprintf(value, sizeof value, "%s%sdetect_leaks=0", old != NULL ? old : "",
             old != NULL && old[0] != '\0' ? ":" : "");
    assert_int_equal(setenv("ASAN_OPTIONS", value, 1), 0);
}

static void restore_leak_check(const char *saved)
{
    if (saved != NULL)
        assert_int_equal(setenv("ASAN_OPTIONS", saved, 1), 0);
    else
        assert_int_equal(unsetenv("ASAN_OPTIONS"), 0);
}

static void test_capture_chroot_as_root(void **state)
{
    (void)state;
    if (geteuid() != 0 || getpwnam("nobody") == NULL) {
        printf("skipped: --chroot with -Z needs root and a user 'nobody'\n");
        skip();
    }
    /* The policy lies in the store directory, so SIGHUP can reread it
     * inside the chroot. */
    char dir[4096], db[4096], policy[4096], real_db[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    assert_int_equal(mkdir(db, 0770), 0);
    e2e_path(policy, db, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");
    /* The user "nobody" rereads the policy after the drop, from inside
     * the store directory, which it owns as a service user would. */
    assert_int_equal(chmod(policy, 0644), 0);
    struct passwd *nobody = getpwnam("nobody");
    assert_int_equal(chown(db, nobody->pw_uid, nobody->pw_gid), 0);
    assert_non_null(realpath(db, real_db));

    uint16_t port = 0;
    int receiver = e2e_udp_receiver(&port);
    char filter[64];
    snprintf(filter, sizeof filter, "udp port %u", (unsigned)port);
    const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db, "-i", "lo",
                          "--chroot", "-Z", "nobody", "--filter", filter, NULL};
    char *saved = getenv("ASAN_OPTIONS") != NULL ? strdup(getenv("ASAN_OPTIONS")) : NULL;
    without_leak_check_for_chroot();
    pid_t pid = start_capture(argv, dir);
    restore_leak_check(saved);
    free(saved);

    char root_link[64], root[4096];
    snprintf(root_link, sizeof root_link, "/proc/%ld/root", (long)pid);
    ssize_t n = readlink(root_link, root, sizeof root - 1);
    assert_true(n > 0);
    root[n] = '\0';
    assert_string_equal(root, real_db);
    assert_capability_sets_empty(pid, true);

    /* The reload runs at the next once-a-second tick. */
    kill(pid, SIGHUP);
    char err_file[4096];
    e2e_path(err_file, dir, "capture.err");
    bool reloaded = e2e_wait_for_text(err_file, "policy reloaded from /policy.yaml", 5000);
    char *log = finish_capture(pid, dir, db, receiver, port);
    if (!reloaded)
        fail_msg("SIGHUP under --chroot did not reread /policy.yaml:\n%s", log);
    assert_non_null(strstr(log, "changed root to the store directory"));
    free(log);
    tu_remove_tree(dir);
}

/* Run ARGV (a shell-free command) and require exit status 0. */
static void run_ok(const char *const argv[], const char *dir, const char *tag)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 30, &res);
    if (!res.exited || res.status != 0)
        e2e_print_result(argv[0], &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    e2e_result_free(&res);
}

static void test_capture_with_file_capabilities(void **state)
{
    (void)state;
    struct passwd *nobody = getpwnam("nobody");
    if (geteuid() != 0 || nobody == NULL || access("/usr/sbin/setcap", X_OK) != 0 ||
        access("/usr/bin/setpriv", X_OK) != 0) {
        printf("skipped: needs root, a user 'nobody', setcap and setpriv\n");
        skip();
    }
    /* A copy of the binary gets the file capabilities, and the user
     * "nobody" runs it. */
    char dir[4096], bin[4096], db[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    assert_int_equal(chmod(dir, 0755), 0);
    e2e_path(bin, dir, "flowveil");
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");
    assert_int_equal(chmod(policy, 0644), 0);
    assert_int_equal(mkdir(db, 0700), 0);
    assert_int_equal(chown(db, nobody->pw_uid, nobody->pw_gid), 0);
    const char *copy[] = {"/bin/cp", e2e_bin(), bin, NULL};
    run_ok(copy, dir, "cp");
    const char *setcap[] = {"/usr/sbin/setcap", "cap_net_raw,cap_net_admin=eip", bin, NULL};
    run_ok(setcap, dir, "setcap");

    uint16_t port = 0;
    int receiver = e2e_udp_receiver(&port);
    char filter[64], uid[32], gid[32];
    snprintf(filter, sizeof filter, "udp port %u", (unsigned)port);
    snprintf(uid, sizeof uid, "%lu", (unsigned long)nobody->pw_uid);
    snprintf(gid, sizeof gid, "%lu", (unsigned long)nobody->pw_gid);
    const char *argv[] = {"/usr/bin/setpriv", "--reuid", uid, "--regid", gid, "--clear-groups",
                          "--", bin, "capture", "--policy", policy, "--db", db, "-i", "lo",
                          "--filter", filter, NULL};
    pid_t pid = start_capture(argv, dir);

    char value[256];
    pid_status_field(pid, "Uid", value, sizeof value);
    char expected[128];
    snprintf(expected, sizeof expected, "%s\t%s\t%s\t%s", uid, uid, uid, uid);
    assert_string_equal(value, expected);
    /* Without CAP_SETPCAP the bounding set cannot be emptied; with
     * no_new_privs no exec can use it. */
    assert_capability_sets_empty(pid, false);

    char *log = finish_capture(pid, dir, db, receiver, port);
    assert_non_null(strstr(log, "cleared every capability after opening the interfaces"));
    free(log);

    /* --chroot needs CAP_SYS_CHROOT, which the file capabilities lack. */
    const char *chroot_argv[] = {"/usr/bin/setpriv", "--reuid", uid, "--regid", gid,
                                 "--clear-groups", "--", bin, "capture", "--policy", policy,
                                 "--db", db, "-i", "lo", "--chroot", NULL};
    e2e_result res;
    e2e_run(chroot_argv, dir, "chroot", 20, &res);
    if (!res.exited || res.status != 1)
        e2e_print_result("capture --chroot with file capabilities", &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.err, "chroot failed"));
    assert_non_null(strstr(res.err, "CAP_SYS_CHROOT"));
    e2e_result_free(&res);
    tu_remove_tree(dir);
}

/* Read every datagram waiting on SOCK into OUT (one per line). */
static void read_datagrams(int sock, char *out, size_t out_len)
{
    size_t used = 0;
    out[0] = '\0';
    for (;;) {
        char msg[2048];
        ssize_t n = recv(sock, msg, sizeof msg - 1, MSG_DONTWAIT);
        if (n <= 0)
            break;
        msg[n] = '\0';
        int w = snprintf(out + used, out_len - used, "%s\n", msg);
        if (w < 0 || !((size_t)w < out_len - used))
            break;
        used += (size_t)w;
    }
}

static void test_capture_logs_to_syslog(void **state)
{
    (void)state;
    if (geteuid() != 0 || access("/usr/bin/unshare", X_OK) != 0 || getpwnam("nobody") == NULL) {
        printf("skipped: needs root, unshare(1) and a user 'nobody' to give capture a private "
               "/dev/log\n");
        skip();
    }
    char dir[4096], db[4096], policy[4096], sock_path[4096];
    tu_make_temp_dir(dir, sizeof dir);
    assert_int_equal(chmod(dir, 0755), 0);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(sock_path, dir, "log");
    e2e_write_policy(policy, "[]", "30d");

    /* The test is the syslog daemon: capture runs in a mount namespace
     * whose /dev is a fresh tmpfs with /dev/log linked to this socket. */
    int sock = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(sock >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    assert_true(strlen(sock_path) < sizeof addr.sun_path);
    memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
    assert_int_equal(bind(sock, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(chmod(sock_path, 0666), 0);

    char script[20000];
    snprintf(script, sizeof script,
             "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && "
             "ln -s '%s' /dev/log && exec '%s' capture --policy '%s' --db '%s' -i lo "
             "--chroot -Z nobody --filter 'udp port 9' --log syslog --log-level info",
             sock_path, e2e_bin(), policy, db);
    const char *argv[] = {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh",
                          "-c", script, NULL};
    char *saved = getenv("ASAN_OPTIONS") != NULL ? strdup(getenv("ASAN_OPTIONS")) : NULL;
    without_leak_check_for_chroot();
    pid_t pid = e2e_spawn(argv, dir, "capture");
    restore_leak_check(saved);
    free(saved);

    /* Wait for the announcement, which comes after chroot and drop. */
    char log[65536] = "";
    size_t used = 0;
    for (int i = 0; i < 200 && strstr(log, "capturing on lo") == NULL; i++) {
        e2e_sleep_ms(100);
        read_datagrams(sock, log + used, sizeof log - used);
        used = strlen(log);
    }
    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 20, &res);
    read_datagrams(sock, log + used, sizeof log - used);
    close(sock);
    if (!res.exited || res.status != 0 || strstr(log, "capturing on lo") == NULL) {
        e2e_print_result("capture --log syslog", &res);
        printf("syslog datagrams:\n%s", log);
        e2e_result_free(&res);
        fail_msg("capture did not log to syslog and exit 0");
    }
    /* Nothing on stderr: every line went to syslog. */
    assert_string_equal(res.err, "");
    e2e_result_free(&res);

    /* LOG_DAEMON (3 << 3) with notice (5) is <29>, with info (6) <30>;
     * the stop messages come from inside the chroot, through the
     * connection opened before it. */
    assert_non_null(strstr(log, "<29>"));
    assert_non_null(strstr(log, "flowveil["));
    assert_non_null(strstr(log, "dropped privileges to user nobody"));
    assert_non_null(strstr(log, "<30>"));
    assert_non_null(strstr(log, "opening lo"));
    assert_non_null(strstr(log, "stopping: flushing open flows"));
    tu_remove_tree(dir);
}

/* Run capture with -Z USER and check that it exits 1 naming the user
 * and the reason, before the store directory is created. */
static void expect_user_rejected(const char *user, const char *reason)
{
    char dir[4096], db[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");

    const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db,
                          "-i", "lo", "-Z", user, NULL};
    e2e_result res;
    e2e_run(argv, dir, "capture", 20, &res);
    if (!res.exited || res.status != 1)
        e2e_print_result("flowveil capture -Z", &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.err, user));
    assert_non_null(strstr(res.err, reason));
    e2e_result_free(&res);

    struct stat st;
    assert_int_not_equal(stat(db, &st), 0);
    tu_remove_tree(dir);
}

static void test_capture_unknown_user_fails(void **state)
{
    (void)state;
    expect_user_rejected("no-such-user", "no such user");
}

static void test_capture_root_user_rejected(void **state)
{
    (void)state;
    expect_user_rejected("root", "uid 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_drops_to_nobody),
        cmocka_unit_test(test_capture_chroot_as_root),
        cmocka_unit_test(test_capture_with_file_capabilities),
        cmocka_unit_test(test_capture_logs_to_syslog),
        cmocka_unit_test(test_capture_unknown_user_fails),
        cmocka_unit_test(test_capture_root_user_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
