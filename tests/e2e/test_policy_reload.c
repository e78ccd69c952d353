/*
 * test_policy_reload: SIGHUP makes `flowveil serve --policy` and
 * `flowveil capture` reread the policy file. An invalid file is rejected
 * with its file and line on stderr, and the running policy stays. A valid
 * changed file takes effect and leaves a "policy.change" audit entry that
 * names the change, in a chain that still verifies. Without
 * --policy, serve answers the compliance routes with 404 "no_policy".
 *
 * The capture case needs root to open lo and is skipped otherwise; it
 * sends nothing itself and listens on loopback only.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

/* The starting policy: dns kept 7 days. */
static const char POLICY_A[] =
    "version: 1\n"
    "zones:\n"
    "  - name: office\n"
    "    networks: [10.0.0.0/8, 192.168.0.0/16]\n"
    "retention:\n"
    "  flows: 30d\n"
    "  dns: 7d\n";

/* Broken on line 7: a duration without a unit. */
static const char POLICY_INVALID[] =
    "version: 1\n"
    "zones:\n"
    "  - name: office\n"
    "    networks: [10.0.0.0/8, 192.168.0.0/16]\n"
    "retention:\n"
    "  flows: 30d\n"
    "  dns: seven\n";

/* POLICY_A with dns kept 3 days. */
static const char POLICY_B[] =
    "version: 1\n"
    "zones:\n"
    "  - name: office\n"
    "    networks: [10.0.0.0/8, 192.168.0.0/16]\n"
    "retention:\n"
    "  flows: 30d\n"
    "  dns: 3d\n";

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
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

/* Count the occurrences of NEEDLE in DIR/TAG.err (0 if the file is missing). */
static int count_in_err(const char *dir, const char *tag, const char *needle)
{
    char path[4096], name[256];
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(path, dir, name);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    int n = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

/* Wait up to TIMEOUT_MS until DIR/TAG.err contains more than BEFORE copies of NEEDLE. */
static bool wait_for_err(const char *dir, const char *tag, const char *needle, int before,
                         unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 50) {
        if (count_in_err(dir, tag, needle) > before)
            return true;
        sleep_ms(50);
    }
    return false;
}

/* Copy DIR/TAG.err into a new string for a check on its text. */
static char *read_err(const char *dir, const char *tag)
{
    char path[4096], name[256];
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(path, dir, name);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    return text;
}

/* GET /api/v1/policy and return its "hash" into OUT (at most 64 chars). */
static void policy_hash(uint16_t port, char out[65])
{
    int status = 0;
    size_t len = 0;
    char *body = e2e_http_get(port, "/api/v1/policy", &status, &len);
    assert_non_null(body);
    if (status != 200) {
        printf("/api/v1/policy: %d %s\n", status, body);
        free(body);
        fail_msg("/api/v1/policy did not answer 200");
    }
    json_error_t jerr;
    json_t *obj = json_loads(body, 0, &jerr);
    free(body);
    assert_non_null(obj);
    const char *hash = json_string_value(json_object_get(obj, "hash"));
    assert_non_null(hash);
    assert_true(strlen(hash) >= 8 && strlen(hash) <= 64);
    snprintf(out, 65, "%s", hash);
    json_decref(obj);
}

/* Stop PID with SIGTERM (or SIGINT) and require a clean exit. */
static void stop_ok(pid_t pid, int sig, const char *dir, const char *tag)
{
    kill(pid, sig);
    e2e_result res;
    e2e_wait(pid, dir, tag, 30, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("%s did not stop cleanly", tag);
    }
    e2e_result_free(&res);
}

/* Make DIR/db from the demo capture and return its path in DB. */
static void make_demo_store(const char *dir, const char *policy, char db[4096])
{
    char demo[4096];
    e2e_path(demo, dir, "demo.pcap");
    e2e_path(db, dir, "db");
    e2e_result res;
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    run_ok(gen, dir, "demogen", &res);
    e2e_result_free(&res);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, demo, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);
}

/*
 * Require exactly one "policy.change" entry with params "old=OLD new=NEW"
 * whose reason names the dns retention change, and a chain that verifies.
 */
static void check_audit_change(const char *dir, const char *db, const char *old_hash,
                               const char *new_hash)
{
    e2e_result res;
    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    run_ok(show, dir, "audit-show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    assert_non_null(entries);

    char params[160];
    snprintf(params, sizeof params, "old=%s new=%s", old_hash, new_hash);
    int matches = 0, changes_from_old = 0;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *action = json_string_value(json_object_get(e, "action"));
        const char *p = json_string_value(json_object_get(e, "params"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        if (action == NULL || strcmp(action, "policy.change") != 0 || p == NULL)
            continue;
        if (strncmp(p, "old=", 4) == 0 && strncmp(p + 4, old_hash, strlen(old_hash)) == 0)
            changes_from_old++;
        if (strcmp(p, params) != 0)
            continue;
        matches++;
        if (reason == NULL || strstr(reason, "Retention of dns changed") == NULL) {
            printf("policy.change reason: %s\n", reason != NULL ? reason : "(none)");
            fail_msg("the policy.change entry does not name the dns retention change");
        }
    }
    if (matches != 1 || changes_from_old != 1) {
        printf("audit show:\n%s\n", res.out);
        fail_msg("expected one policy.change entry %s, found %d (%d from the old hash)", params,
                 matches, changes_from_old);
    }
    json_decref(entries);
    e2e_result_free(&res);

    const char *verify[] = {e2e_bin(), "audit", "verify", "--db", db, NULL};
    run_ok(verify, dir, "audit-verify", &res);
    assert_non_null(strstr(res.out, "OK"));
    e2e_result_free(&res);
}

static void test_serve_sighup_reloads_policy(void **state)
{
    (void)state;
    char dir[4096], policy[4096], db[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    tu_write_file(policy, POLICY_A, sizeof POLICY_A - 1);
    make_demo_store(dir, policy, db);

    uint16_t port = 0;
    pid_t pid = e2e_serve_start_policy(dir, db, policy, "serve", &port);
    char h1[65], h_after_invalid[65], h2[65];
    policy_hash(port, h1);

    /* An invalid file: rejected, logged with file:line, the server keeps running on H1. */
    tu_write_file(policy, POLICY_INVALID, sizeof POLICY_INVALID - 1);
    int rejected = count_in_err(dir, "serve", "policy reload rejected");
    kill(pid, SIGHUP);
    if (!wait_for_err(dir, "serve", "policy reload rejected", rejected, 10000)) {
        kill(pid, SIGKILL);
        fail_msg("serve logged no rejection of the invalid policy within 10 s");
    }
    char *err = read_err(dir, "serve");
    char where[4200];
    snprintf(where, sizeof where, "%s:7:", policy);
    if (strstr(err, where) == NULL) {
        printf("serve stderr:\n%s\n", err);
        free(err);
        kill(pid, SIGKILL);
        fail_msg("the rejection does not name %s line 7", policy);
    }
    free(err);
    policy_hash(port, h_after_invalid);
    assert_string_equal(h_after_invalid, h1);

    /* A valid changed file: the hash changes. */
    tu_write_file(policy, POLICY_B, sizeof POLICY_B - 1);
    int reloaded = count_in_err(dir, "serve", "policy reloaded");
    kill(pid, SIGHUP);
    if (!wait_for_err(dir, "serve", "policy reloaded", reloaded, 10000)) {
        kill(pid, SIGKILL);
        fail_msg("serve did not report a reload of the valid policy within 10 s");
    }
    policy_hash(port, h2);
    assert_string_not_equal(h2, h1);
    stop_ok(pid, SIGTERM, dir, "serve");

    check_audit_change(dir, db, h1, h2);
    tu_remove_tree(dir);
}

static void test_capture_sighup_reloads_policy(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: live capture on lo needs root (run the tests as root to include it)\n");
        skip();
    }
    char dir[4096], policy[4096], db[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(db, dir, "db");
    tu_write_file(policy, POLICY_A, sizeof POLICY_A - 1);

    /* The filter matches no traffic on purpose: the test is about the policy. */
    const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db,
                          "-i", "lo", "--filter", "udp port 9", NULL};
    pid_t pid = e2e_spawn(argv, dir, "capture");
    if (!wait_for_err(dir, "capture", "capturing on", 0, 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        e2e_print_result("flowveil capture did not start", &res);
        e2e_result_free(&res);
        fail();
    }

    int changes = count_in_err(dir, "capture", "policy changed:");
    tu_write_file(policy, POLICY_INVALID, sizeof POLICY_INVALID - 1);
    kill(pid, SIGHUP);
    if (!wait_for_err(dir, "capture", "policy reload rejected", 0, 10000)) {
        kill(pid, SIGKILL);
        fail_msg("capture logged no rejection of the invalid policy within 10 s");
    }
    char *err = read_err(dir, "capture");
    char where[4200];
    snprintf(where, sizeof where, "%s:7:", policy);
    bool named = strstr(err, where) != NULL;
    free(err);
    if (!named) {
        kill(pid, SIGKILL);
        fail_msg("the rejection does not name %s line 7", policy);
    }
    assert_int_equal(count_in_err(dir, "capture", "policy changed:"), changes);

    tu_write_file(policy, POLICY_B, sizeof POLICY_B - 1);
    kill(pid, SIGHUP);
    if (!wait_for_err(dir, "capture", "policy reloaded", 0, 10000)) {
        kill(pid, SIGKILL);
        fail_msg("capture did not report a reload of the valid policy within 10 s");
    }
    stop_ok(pid, SIGINT, dir, "capture");

    /* capture prints no hash, so both come from the audit entries: the
     * first policy (old=0000...) and the reload. */
    e2e_result res;
    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    run_ok(show, dir, "audit-show-hashes", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    assert_non_null(entries);
    char first_new[65] = "", later_new[65] = "";
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *action = json_string_value(json_object_get(e, "action"));
        const char *p = json_string_value(json_object_get(e, "params"));
        if (action == NULL || strcmp(action, "policy.change") != 0 || p == NULL)
            continue;
        const char *nw = strstr(p, " new=");
        assert_non_null(nw);
        if (strncmp(p, "old=0000", 8) == 0)
            snprintf(first_new, sizeof first_new, "%s", nw + 5);
        else
            snprintf(later_new, sizeof later_new, "%s", nw + 5);
    }
    json_decref(entries);
    e2e_result_free(&res);
    if (first_new[0] == '\0' || later_new[0] == '\0')
        fail_msg("expected the first policy and one change in the audit log");
    assert_string_not_equal(first_new, later_new);
    check_audit_change(dir, db, first_new, later_new);
    tu_remove_tree(dir);
}

/* GET PATH and require STATUS; with ERROR_CODE, require {"error": ERROR_CODE}. */
static json_t *get_json(uint16_t port, const char *path, int want_status, const char *error_code)
{
    int status = 0;
    size_t len = 0;
    char *body = e2e_http_get(port, path, &status, &len);
    assert_non_null(body);
    json_error_t jerr;
    json_t *obj = json_loads(body, 0, &jerr);
    if (status != want_status || obj == NULL) {
        printf("%s: %d %s\n", path, status, body);
        free(body);
        fail_msg("%s: expected status %d with a JSON body", path, want_status);
    }
    free(body);
    if (error_code != NULL)
        assert_string_equal(json_string_value(json_object_get(obj, "error")), error_code);
    return obj;
}

static void test_serve_reports_need_policy(void **state)
{
    (void)state;
    char dir[4096], policy[4096], db[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    tu_write_file(policy, POLICY_A, sizeof POLICY_A - 1);
    make_demo_store(dir, policy, db);
    static const char *const routes[] = {"/api/v1/policy", "/api/v1/reports/processing",
                                         "/api/v1/reports/transparency"};

    uint16_t port = 0;
    pid_t pid = e2e_serve_start(dir, db, "serve-bare", &port);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        json_decref(get_json(port, routes[i], 404, "no_policy"));
    stop_ok(pid, SIGTERM, dir, "serve-bare");

    pid = e2e_serve_start_policy(dir, db, policy, "serve-policy", &port);
    json_t *doc = get_json(port, routes[0], 200, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "summary")), "office"));
    json_decref(doc);
    doc = get_json(port, routes[1], 200, NULL);
    const char *md = json_string_value(json_object_get(doc, "markdown"));
    assert_non_null(md);
    assert_non_null(strstr(md, "| dns | yes | 7 days |"));
    assert_true(json_array_size(json_object_get(doc, "blocks")) > 0);
    json_decref(doc);
    doc = get_json(port, routes[2], 200, NULL);
    assert_non_null(json_string_value(json_object_get(doc, "markdown")));
    assert_non_null(strstr(json_string_value(json_object_get(doc, "html")), "<"));
    json_decref(doc);
    stop_ok(pid, SIGTERM, dir, "serve-policy");
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_sighup_reloads_policy),
        cmocka_unit_test(test_capture_sighup_reloads_policy),
        cmocka_unit_test(test_serve_reports_need_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
