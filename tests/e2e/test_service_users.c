/*
 * test_service_users: the file layout that dist/systemd sets up keeps the
 * pseudonymization key away from the serving process.
 *
 * The units run capture and serve as two users that share one group, in
 * a setgid store directory (mode 2770) with umask 0007. This test builds
 * the same layout with root as the capture user and nobody/nogroup as the
 * serve user: root ingests the demo capture, then `flowveil serve` runs
 * as nobody and must answer /api/v1/flows with records (it can read the
 * data keys and the LMDB files and append audit entries), while the same
 * user gets "Permission denied" reading pseudonym.key.
 *
 * Needs root (to create files owned by another user and to switch users
 * with setpriv(1)); skipped otherwise.
 */
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define DEMO_NOW_S 1767225600ull /* ingest time, 2026-01-01T00:00:00Z */

#define SERVE_USER "nobody"
#define SERVE_GROUP "nogroup"

/* Return the path of setpriv(1), or NULL if util-linux does not provide it here. */
static const char *find_setpriv(void)
{
    static const char *const candidates[] = {"/usr/bin/setpriv", "/bin/setpriv"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    }
    return NULL;
}

static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 300, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("%s failed", tag);
    }
}

/* Stat DIR/NAME, failing the test with the path if it does not exist. */
static void stat_store_file(const char *db, const char *name, struct stat *st)
{
    char path[4096];
    e2e_path(path, db, name);
    if (stat(path, st) != 0)
        fail_msg("expected %s in the store after ingest, but stat failed", path);
}

static void test_serve_user_reads_store_not_key(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: needs root to create files for another user and to run "
                      "serve as " SERVE_USER "/" SERVE_GROUP "\n");
        skip();
    }
    const char *setpriv = find_setpriv();
    if (setpriv == NULL) {
        print_message("skipped: setpriv(1) from util-linux not found in /usr/bin or /bin\n");
        skip();
    }
    struct passwd *serve_user = getpwnam(SERVE_USER);
    struct group *serve_group = getgrnam(SERVE_GROUP);
    if (serve_user == NULL || serve_group == NULL) {
        print_message("skipped: user " SERVE_USER " or group " SERVE_GROUP " does not exist\n");
        skip();
    }
    gid_t store_gid = serve_group->gr_gid;

    /* The serve user must be able to traverse the work directory to reach
     * the store and the policy, but not list it. */
    char dir[4096], demo[4096], db[4096], policy[4096], key_path[4096];
    tu_make_temp_dir(dir, sizeof dir);
    assert_int_equal(chmod(dir, 0711), 0);
    e2e_path(demo, dir, "demo.pcap");
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(key_path, db, "pseudonym.key");

    /* Serve reads with the wall clock, so keep every record for ten years. */
    e2e_write_policy(policy, "[]", "3650d");
    assert_int_equal(chmod(policy, 0644), 0);

    e2e_result res;
    const char *demogen[] = {e2e_demogen(), "--output", demo, NULL};
    run_ok(demogen, dir, "demogen", &res);
    e2e_result_free(&res);

    /* The store directory as StateDirectory=flowveil + StateDirectoryMode=2770
     * creates it: owned by the capture user, group shared with serve, setgid
     * so new files inherit the group. */
    assert_int_equal(mkdir(db, 0700), 0);
    assert_int_equal(chown(db, 0, store_gid), 0);
    assert_int_equal(chmod(db, 02770), 0);

    /* Ingest as the capture user with the units' UMask=0007. The shell sets
     * the umask and then execs flowveil ($0) with the remaining arguments. */
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", DEMO_NOW_S);
    const char *ingest[] = {"/bin/sh", "-c", "umask 0007; exec \"$0\" \"$@\"", e2e_bin(),
                            "ingest", "--policy", policy, "--db", db, "--now", now_text,
                            demo, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    /* File modes on disk. */
    struct stat st;
    stat_store_file(db, "pseudonym.key", &st);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, 0);

    stat_store_file(db, "data.keys", &st);
    assert_true((st.st_mode & S_IRGRP) != 0);
    assert_int_equal(st.st_mode & S_IWGRP, 0);
    assert_int_equal(st.st_mode & S_IRWXO, 0);
    assert_int_equal(st.st_gid, store_gid);

    static const char *const lmdb_files[] = {"data.mdb", "lock.mdb"};
    for (size_t i = 0; i < sizeof lmdb_files / sizeof lmdb_files[0]; i++) {
        stat_store_file(db, lmdb_files[i], &st);
        print_message("%s: mode %04o\n", lmdb_files[i], (unsigned)(st.st_mode & 07777));
        assert_int_equal(st.st_mode & (S_IRGRP | S_IWGRP), S_IRGRP | S_IWGRP);
        assert_int_equal(st.st_mode & S_IRWXO, 0);
        assert_int_equal(st.st_gid, store_gid);
    }

    /* Serve as nobody/nogroup with no supplementary groups: the group
     * permission bits are the only way in. */
    const char *serve[] = {setpriv, "--reuid=" SERVE_USER, "--regid=" SERVE_GROUP,
                           "--clear-groups", "--", e2e_bin(), "serve", "--db", db,
                           "--policy", policy, "--listen", "127.0.0.1:0", NULL};
    uint16_t port = 0;
    pid_t server = e2e_serve_start_argv(serve, dir, "serve", &port);

    int status = 0;
    size_t body_len = 0;
    char *body = e2e_http_get(port, "/api/v1/flows?limit=5", &status, &body_len);
    assert_non_null(body);
    assert_int_equal(status, 200);
    json_t *page = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(page);
    size_t records = json_array_size(json_object_get(page, "records"));
    json_decref(page);
    assert_int_equal(records, 5);

    /* The same user cannot read the pseudonymization key. */
    const char *cat_key[] = {setpriv, "--reuid=" SERVE_USER, "--regid=" SERVE_GROUP,
                             "--clear-groups", "--", "/bin/cat", key_path, NULL};
    e2e_run(cat_key, dir, "cat-key", 30, &res);
    if (!res.exited || res.status == 0)
        e2e_print_result("cat pseudonym.key as " SERVE_USER, &res);
    assert_true(res.exited);
    assert_int_not_equal(res.status, 0);
    assert_int_equal(res.out_len, 0);
    assert_non_null(strstr(res.err, "Permission denied"));
    e2e_result_free(&res);

    kill(server, SIGTERM);
    e2e_wait(server, dir, "serve", 30, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err))
        e2e_print_result("flowveil serve as " SERVE_USER, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    assert_false(e2e_has_sanitizer_report(res.err));
    e2e_result_free(&res);

    /* The flows read above left an audit entry, written by the serve user. */
    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    run_ok(show, dir, "audit show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    e2e_result_free(&res);
    assert_non_null(entries);
    bool found_read = false;
    size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry) {
        const char *action = json_string_value(json_object_get(entry, "action"));
        const char *object = json_string_value(json_object_get(entry, "object"));
        if (action != NULL && object != NULL && strcmp(action, "api.read") == 0 &&
            strcmp(object, "/api/v1/flows") == 0)
            found_read = true;
    }
    json_decref(entries);
    assert_true(found_read);

    /* Serve did not loosen the key file. */
    stat_store_file(db, "pseudonym.key", &st);
    assert_int_equal(st.st_mode & 07777, 0600);

    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_user_reads_store_not_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
