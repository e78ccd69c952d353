/*
 * test_audit_cli: ingest, export and API reads each leave an audit entry;
 * `flowveil audit show --json` lists them newest first and `flowveil
 * audit verify` passes on the untouched chain.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "fv_common.h"
#include "testutil.h"

#define T0_S 1767225600ull   /* ingest time, 2026-01-01T00:00:00Z */

static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 120, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("flowveil %s failed", tag);
    }
}

/* Return the first entry of ENTRIES with ACTION (and OBJECT if not NULL). */
static json_t *find_entry(json_t *entries, const char *action, const char *object)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *a = json_string_value(json_object_get(e, "action"));
        const char *o = json_string_value(json_object_get(e, "object"));
        if (a != NULL && strcmp(a, action) == 0 &&
            (object == NULL || (o != NULL && strcmp(o, object) == 0)))
            return e;
    }
    return NULL;
}

static void test_audit_records_ingest_export_and_api(void **state)
{
    (void)state;
    char dir[4096], db[4096], policy[4096], capture[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "3650d");   /* serve reads with the wall clock */
    snprintf(capture, sizeof capture, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());
    char t0[32];
    snprintf(t0, sizeof t0, "%llu", T0_S);

    e2e_result res;
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", t0, capture, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    json_t *flows = e2e_export(dir, db, "flows", T0_S);
    size_t exported = json_array_size(flows);
    assert_true(exported > 0);
    json_decref(flows);

    uint16_t port = 0;
    pid_t server = e2e_serve_start(dir, db, "serve", &port);
    int status = 0;
    size_t body_len = 0;
    char *body = e2e_http_get(port, "/api/v1/flows?limit=2&order=asc", &status, &body_len);
    assert_non_null(body);
    assert_int_equal(status, 200);
    free(body);
    body = e2e_http_get(port, "/api/v1/summary", &status, &body_len);
    assert_non_null(body);
    assert_int_equal(status, 200);
    free(body);
    /* The audit route lists the two reads above, newest first. */
    body = e2e_http_get(port, "/api/v1/audit?limit=2", &status, &body_len);
    assert_non_null(body);
    assert_int_equal(status, 200);
    json_t *page = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(page);
    json_t *api_entries = json_object_get(page, "entries");
    assert_int_equal(json_array_size(api_entries), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(api_entries, 0),
                                                          "object")),
                        "/api/v1/summary");
    assert_true(json_is_string(json_object_get(page, "next_cursor")));
    json_decref(page);

    kill(server, SIGTERM);
    e2e_wait(server, dir, "serve", 30, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    e2e_result_free(&res);

    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    run_ok(show, dir, "audit show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    e2e_result_free(&res);
    assert_non_null(entries);

    json_t *ingest_entry = find_entry(entries, "ingest", NULL);
    assert_non_null(ingest_entry);
    const char *params = json_string_value(json_object_get(ingest_entry, "params"));
    assert_non_null(params);
    assert_non_null(strstr(params, "files=1"));

    json_t *export_entry = find_entry(entries, "export", "flows");
    assert_non_null(export_entry);
    assert_int_equal(json_integer_value(json_object_get(export_entry, "result_count")),
                     (json_int_t)exported);

    json_t *read_entry = find_entry(entries, "api.read", "/api/v1/flows");
    assert_non_null(read_entry);
    /* The reads were made with the API token of e2e_serve_start. */
    assert_string_equal(json_string_value(json_object_get(read_entry, "actor")), "e2e-client");
    assert_string_equal(json_string_value(json_object_get(read_entry, "role")), "admin");
    params = json_string_value(json_object_get(read_entry, "params"));
    assert_non_null(params);
    assert_non_null(strstr(params, "limit=2"));
    assert_non_null(strstr(params, "remote=127.0.0.1"));
    assert_int_equal(json_integer_value(json_object_get(read_entry, "result_count")), 2);

    /* Newest first: the audit route's own read comes before the flows read. */
    json_t *first = json_array_get(entries, 0);
    assert_string_equal(json_string_value(json_object_get(first, "object")), "/api/v1/audit");
    json_decref(entries);

    const char *verify[] = {e2e_bin(), "audit", "verify", "--db", db, NULL};
    run_ok(verify, dir, "audit verify", &res);
    assert_non_null(strstr(res.out, "OK"));
    assert_non_null(strstr(res.out, "head hash:"));
    e2e_result_free(&res);

    tu_remove_tree(dir);
}

/* Evidence is dated by the wall clock, and a sweep evaluated at a future
 * --now must not prune audit entries that are still within retention. */
static void test_audit_ignores_future_now(void **state)
{
    (void)state;
    char dir[4096], db[4096], policy[4096], capture[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "3650d");
    snprintf(capture, sizeof capture, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());
    char t0[32];
    snprintf(t0, sizeof t0, "%llu", T0_S);
    const char *future = "4102444800"; /* 2100-01-01T00:00:00Z */

    e2e_result res;
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", t0, capture, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);
    const char *export_cmd[] = {e2e_bin(), "export", "--db", db, "--class", "dns",
                                "--now", future, NULL};
    run_ok(export_cmd, dir, "export", &res);
    e2e_result_free(&res);
    /* Without --allow-future-now a sweep this far ahead is refused and
     * deletes nothing; with it, the sweep runs. */
    const char *refused[] = {e2e_bin(), "sweep", "--db", db, "--now", future, NULL};
    e2e_run(refused, dir, "sweep-refused", 60, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 2);
    assert_non_null(strstr(res.err, "--allow-future-now"));
    assert_non_null(strstr(res.err, "4102444800"));
    e2e_result_free(&res);
    json_t *kept = e2e_export(dir, db, "dns", 0);
    assert_true(json_array_size(kept) > 0);
    json_decref(kept);
    const char *sweep[] = {e2e_bin(), "sweep", "--db", db, "--now", future, "--allow-future-now",
                           NULL};
    run_ok(sweep, dir, "sweep", &res);
    e2e_result_free(&res);

    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    run_ok(show, dir, "audit show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    e2e_result_free(&res);
    assert_non_null(entries);

    /* The ingest entry survived the sweep at 2100, and no entry is dated
     * in the future (RFC 3339 text compares in time order). */
    assert_non_null(find_entry(entries, "ingest", NULL));
    assert_non_null(find_entry(entries, "export", "dns"));
    char limit[FV_TIME_TEXT_MAX];
    fv_time_format(fv_now_us() + 60u * 1000000u, limit);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *t = json_string_value(json_object_get(e, "time"));
        assert_non_null(t);
        if (strcmp(t, limit) > 0)
            fail_msg("audit entry %zu is dated %s, after the wall clock", i, t);
    }
    json_decref(entries);

    const char *verify[] = {e2e_bin(), "audit", "verify", "--db", db, NULL};
    run_ok(verify, dir, "audit verify", &res);
    assert_non_null(strstr(res.out, "OK"));
    e2e_result_free(&res);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_records_ingest_export_and_api),
        cmocka_unit_test(test_audit_ignores_future_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
