/*
 * test_capture_privileges: `flowveil capture -Z USER` opens the store,
 * the key file and the interface as root, then runs as USER with no
 * capabilities and no_new_privs, and still records and stores flows.
 * The drop test needs root and is skipped otherwise; the user lookup
 * tests run as anyone. Only 127.0.0.1 is used.
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
        cmocka_unit_test(test_capture_unknown_user_fails),
        cmocka_unit_test(test_capture_root_user_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
