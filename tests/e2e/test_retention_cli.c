/*
 * test_retention_cli: records stay visible within their retention limit,
 * disappear from exports as soon as the limit passes (before any sweep),
 * `flowveil sweep` deletes them, and `flowveil retention status` reports
 * the deletion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define T0_S 1767225600ull          /* ingest time, 2026-01-01T00:00:00Z */
#define RETENTION_S (2ull * 3600)   /* matches the "2h" written into the policy */
#define HOUR_S 3600ull

/* Run a flowveil subcommand that must succeed; return its result. */
static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 120, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("flowveil %s failed", tag);
    }
}

/*
 * Find the row of CLS in `flowveil retention status` output and read its
 * records, expired and deleted columns. The row is
 * "class retention records expired oldest last-sweep next-sweep deleted
 * state...",
 * each column one whitespace-free token.
 */
static int parse_status_row(const char *text, const char *cls, unsigned long long *records,
                            unsigned long long *expired, unsigned long long *deleted,
                            char last_sweep[64])
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        char name[32], limit[32], oldest[32], next_sweep[64];
        if (sscanf(line, "%31s %31s %llu %llu %31s %63s %63s %llu", name, limit, records,
                   expired, oldest, last_sweep, next_sweep, deleted) == 8 &&
            strcmp(name, cls) == 0)
            return 0;
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

static void test_records_expire_then_sweep_deletes(void **state)
{
    (void)state;
    char dir[4096], db[4096], policy[4096], capture[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "2h");
    /* DNS over TCP: gives both flow and DNS records. */
    snprintf(capture, sizeof capture, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());

    char t0[32], t_late[32];
    snprintf(t0, sizeof t0, "%llu", T0_S);
    snprintf(t_late, sizeof t_late, "%llu", T0_S + RETENTION_S + HOUR_S);

    e2e_result res;
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", t0, capture, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    /* Within the limit: records are there. */
    json_t *flows = e2e_export(dir, db, "flows", T0_S + HOUR_S);
    json_t *dns = e2e_export(dir, db, "dns", T0_S + HOUR_S);
    size_t flow_count = json_array_size(flows);
    size_t dns_count = json_array_size(dns);
    json_decref(flows);
    json_decref(dns);
    assert_true(flow_count > 0);
    assert_true(dns_count > 0);

    /* Past the limit, before any sweep: exports show nothing. */
    flows = e2e_export(dir, db, "flows", T0_S + RETENTION_S + HOUR_S);
    dns = e2e_export(dir, db, "dns", T0_S + RETENTION_S + HOUR_S);
    assert_int_equal(json_array_size(flows), 0);
    assert_int_equal(json_array_size(dns), 0);
    json_decref(flows);
    json_decref(dns);

    /* Status before the sweep counts the records as expired, not deleted. */
    const char *status[] = {e2e_bin(), "retention", "status", "--db", db, "--now", t_late, NULL};
    run_ok(status, dir, "status-before", &res);
    unsigned long long records = 0, expired = 0, deleted = 0;
    char last_sweep[64];
    if (parse_status_row(res.out, "flows", &records, &expired, &deleted, last_sweep) != 0) {
        printf("retention status output:\n%s\n", res.out);
        fail_msg("no flows row in retention status");
    }
    /* ingest swept once at T0 with the default interval of 1 h, so at
     * T0 + 3 h the last sweep is older than twice the interval. */
    const char *flows_row = strstr(res.out, "\nflows ");
    assert_non_null(flows_row);
    const char *row_end = strchr(flows_row + 1, '\n');
    size_t row_len = row_end != NULL ? (size_t)(row_end - flows_row) : strlen(flows_row);
    char row[512];
    snprintf(row, sizeof row, "%.*s", (int)row_len, flows_row + 1);
    assert_non_null(strstr(row, "WARNING"));
    assert_non_null(strstr(row, "sweep overdue"));
    assert_non_null(strstr(row, "records past the limit"));
    e2e_result_free(&res);
    assert_int_equal(expired, flow_count);
    assert_int_equal(deleted, 0);

    /* Within twice the interval after the ingest's sweep nothing is overdue. */
    char t_soon[32];
    snprintf(t_soon, sizeof t_soon, "%llu", T0_S + HOUR_S);
    const char *status_soon[] = {e2e_bin(), "retention", "status", "--db", db,
                                 "--now", t_soon, NULL};
    run_ok(status_soon, dir, "status-soon", &res);
    assert_null(strstr(res.out, "overdue"));
    e2e_result_free(&res);

    /* The sweep deletes them. */
    const char *sweep[] = {e2e_bin(), "sweep", "--db", db, "--now", t_late, NULL};
    run_ok(sweep, dir, "sweep", &res);
    printf("sweep output:\n%s", res.out);
    e2e_result_free(&res);

    /* Deleted for real: even an export at a time inside the limit finds nothing. */
    flows = e2e_export(dir, db, "flows", T0_S + HOUR_S);
    dns = e2e_export(dir, db, "dns", T0_S + HOUR_S);
    assert_int_equal(json_array_size(flows), 0);
    assert_int_equal(json_array_size(dns), 0);
    json_decref(flows);
    json_decref(dns);

    /* Status reports the deletion per class. */
    run_ok(status, dir, "status-after", &res);
    printf("retention status output:\n%s", res.out);
    if (parse_status_row(res.out, "flows", &records, &expired, &deleted, last_sweep) != 0)
        fail_msg("no flows row in retention status");
    assert_int_equal(records, 0);
    assert_int_equal(expired, 0);
    assert_int_equal(deleted, flow_count);
    assert_string_not_equal(last_sweep, "never");
    if (parse_status_row(res.out, "dns", &records, &expired, &deleted, last_sweep) != 0)
        fail_msg("no dns row in retention status");
    assert_int_equal(records, 0);
    assert_int_equal(deleted, dns_count);
    e2e_result_free(&res);

    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_expire_then_sweep_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
