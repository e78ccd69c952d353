/*
 * test_report_cli: `flowveil report processing` lists each group's legal
 * basis and each class's retention, and `flowveil report transparency`
 * counts the alerts of a demo ingest without any pseudonym or address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define DEMO_NOW_S 1767225600ull    /* 2026-01-01T00:00:00Z, as test_demo_alerts uses */

static const char GROUP_POLICY[] =
    "version: 1\n"
    "zones:\n"
    "  - name: office\n"
    "    networks: [10.0.0.0/8]\n"
    "groups:\n"
    "  - name: works-council\n"
    "    mode: exclude\n"
    "    subnets: [10.9.0.0/16]\n"
    "    legal_basis: works agreement\n"
    "    approver: \"Works council, 2026-01-15\"\n"
    "  - name: clients\n"
    "    mode: monitor\n"
    "    subnets: [10.1.0.0/16]\n"
    "    legal_basis: legitimate interest\n"
    "    approver: \"CISO\"\n"
    "retention:\n"
    "  flows: 30d\n"
    "  dns: 7d\n"
    "  tls: 1d\n";

static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 300, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("flowveil %s failed", tag);
    }
}

static void test_processing_lists_basis_and_retention(void **state)
{
    (void)state;
    char dir[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    tu_write_file(policy, GROUP_POLICY, sizeof GROUP_POLICY - 1);

    const char *md[] = {e2e_bin(), "report", "processing", "--policy", policy, NULL};
    e2e_result res;
    run_ok(md, dir, "report-processing-md", &res);
    assert_non_null(strstr(res.out, "works agreement"));
    assert_non_null(strstr(res.out, "legitimate interest"));
    assert_non_null(strstr(res.out, "| flows | yes | 30 days |"));
    assert_non_null(strstr(res.out, "| dns | yes | 7 days |"));
    assert_non_null(strstr(res.out, "| tls | yes | 1 day |"));
    assert_non_null(strstr(res.out, "not set in the policy"));
    /* The default rotation (1d) and sweep interval (1h) read as single units. */
    assert_non_null(strstr(res.out, "the key rotates every day."));
    assert_non_null(strstr(res.out, "by a sweep every hour "));
    assert_null(strstr(res.out, " 1 days"));
    assert_null(strstr(res.out, " 1 hours"));
    e2e_result_free(&res);

    const char *html[] = {e2e_bin(), "report", "processing", "--policy", policy,
                          "--format", "html", NULL};
    run_ok(html, dir, "report-processing-html", &res);
    assert_non_null(strstr(res.out, "<td>works agreement</td>"));
    assert_non_null(strstr(res.out, "href=\"report.css\""));
    assert_null(strstr(res.out, "<style"));
    e2e_result_free(&res);
    tu_remove_tree(dir);
}

/* --output never writes through a symbolic link, and a regular file is
 * replaced whole. */
static void test_report_output_refuses_symlink(void **state)
{
    (void)state;
    char dir[4096], policy[4096], victim[4096], link_path[4096], out[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    tu_write_file(policy, GROUP_POLICY, sizeof GROUP_POLICY - 1);
    e2e_path(victim, dir, "victim.txt");
    tu_write_file(victim, "keep\n", 5);
    e2e_path(link_path, dir, "report.md");
    assert_int_equal(symlink(victim, link_path), 0);

    const char *to_link[] = {e2e_bin(), "report", "processing", "--policy", policy,
                             "--output", link_path, NULL};
    e2e_result res;
    e2e_run(to_link, dir, "report-to-link", 60, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.err, "not a regular file"));
    e2e_result_free(&res);
    size_t len = 0;
    char *kept = tu_read_file(victim, &len);
    assert_non_null(kept);
    assert_string_equal(kept, "keep\n");
    free(kept);

    e2e_path(out, dir, "out.md");
    tu_write_file(out, "old\n", 4);
    const char *to_file[] = {e2e_bin(), "report", "processing", "--policy", policy,
                             "--output", out, NULL};
    run_ok(to_file, dir, "report-to-file", &res);
    e2e_result_free(&res);
    char *written = tu_read_file(out, &len);
    assert_non_null(written);
    assert_non_null(strstr(written, "works agreement"));
    assert_null(strstr(written, "old"));
    free(written);
    tu_remove_tree(dir);
}

/* Run `report transparency` with PERIOD, check that it fails, and keep
 * its output in RES for the caller's checks. */
static void reject_period(const char *dir, const char *policy, const char *db,
                          const char *now_text, const char *period, e2e_result *res)
{
    const char *argv[] = {e2e_bin(), "report", "transparency", "--policy", policy, "--db", db,
                          "--period", period, "--now", now_text, NULL};
    e2e_run(argv, dir, "report-transparency-rejected", 60, res);
    assert_true(res->exited);
    assert_int_not_equal(res->status, 0);
}

static void test_transparency_counts_demo_alerts(void **state)
{
    (void)state;
    char dir[4096], demo[4096], db[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(demo, dir, "demo.pcap");
    e2e_path(db, dir, "db");
    snprintf(policy, sizeof policy, "%s/policy/example-policy.yaml", e2e_source_dir());

    e2e_result res;
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    run_ok(gen, dir, "demogen", &res);
    e2e_result_free(&res);
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", DEMO_NOW_S);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", now_text, demo, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    json_t *alerts = e2e_export(dir, db, "alerts", DEMO_NOW_S);
    size_t alert_count = json_array_size(alerts);
    assert_true(alert_count > 0);

    char period[64], expected[96];
    snprintf(period, sizeof period, "1..%llu", 253402300799ull);  /* every traffic time */
    const char *report[] = {e2e_bin(), "report", "transparency", "--policy", policy, "--db", db,
                            "--period", period, "--now", now_text, NULL};
    run_ok(report, dir, "report-transparency", &res);
    snprintf(expected, sizeof expected, "| alerts raised | %zu |", alert_count);
    if (strstr(res.out, expected) == NULL) {
        printf("report:\n%s\n", res.out);
        fail_msg("the notice does not count %zu alerts", alert_count);
    }

    /* No host identifier of any alert may appear in the notice. */
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        const char *host = json_string_value(json_object_get(json_object_get(a, "host"), "id"));
        if (host == NULL)
            host = json_string_value(json_object_get(a, "host"));
        if (host != NULL && host[0] != '\0')
            assert_null(strstr(res.out, host));
    }
    assert_null(strstr(res.out, "10.1."));
    assert_null(strstr(res.out, "192.168."));
    e2e_result_free(&res);

    /* A period before every alert counts none. */
    const char *early[] = {e2e_bin(), "report", "transparency", "--policy", policy, "--db", db,
                           "--period", "1..2", "--now", now_text, NULL};
    run_ok(early, dir, "report-transparency-early", &res);
    assert_non_null(strstr(res.out, "| alerts raised | 0 |"));
    e2e_result_free(&res);

    /* RFC 3339 ends, as the API takes them, give the same counts. */
    const char *rfc[] = {e2e_bin(), "report", "transparency", "--policy", policy, "--db", db,
                         "--period", "1970-01-01T00:00:01Z..9999-12-31T23:59:59Z", "--now",
                         now_text, NULL};
    run_ok(rfc, dir, "report-transparency-rfc3339", &res);
    assert_non_null(strstr(res.out, expected));
    e2e_result_free(&res);

    /* Plain dates are whole UTC days. The notice counts the alerts whose
     * traffic span (first_seen to last_seen) overlaps the period. So the
     * days from the earliest first_seen to the latest last_seen count
     * every alert, and that last day alone counts the alerts that end on
     * it, up to its last second. */
    char first_day[11] = "", last_day[11] = "";
    json_array_foreach(alerts, i, a) {
        const char *first = json_string_value(json_object_get(a, "first_seen"));
        const char *last = json_string_value(json_object_get(a, "last_seen"));
        assert_non_null(first);
        assert_non_null(last);
        assert_true(strlen(first) >= 10 && strlen(last) >= 10);
        if (first_day[0] == '\0' || strncmp(first, first_day, 10) < 0)
            memcpy(first_day, first, 10);
        if (strncmp(last, last_day, 10) > 0)
            memcpy(last_day, last, 10);
    }
    size_t last_day_count = 0;
    json_array_foreach(alerts, i, a) {
        if (strncmp(json_string_value(json_object_get(a, "last_seen")), last_day, 10) == 0)
            last_day_count++;
    }
    snprintf(period, sizeof period, "%s..%s", first_day, last_day);
    const char *dates[] = {e2e_bin(), "report", "transparency", "--policy", policy, "--db", db,
                           "--period", period, "--now", now_text, NULL};
    run_ok(dates, dir, "report-transparency-dates", &res);
    assert_non_null(strstr(res.out, expected));
    e2e_result_free(&res);

    char last_expected[96];
    snprintf(period, sizeof period, "%s..%s", last_day, last_day);
    snprintf(last_expected, sizeof last_expected, "| alerts raised | %zu |", last_day_count);
    const char *one_day[] = {e2e_bin(), "report", "transparency", "--policy", policy, "--db", db,
                             "--period", period, "--now", now_text, NULL};
    run_ok(one_day, dir, "report-transparency-one-day", &res);
    if (strstr(res.out, last_expected) == NULL) {
        printf("report:\n%s\n", res.out);
        fail_msg("the notice for %s does not count its %zu alerts", last_day, last_day_count);
    }
    e2e_result_free(&res);

    /* Eight digits would be seconds in 1970, so they are rejected with
     * the date they probably mean. */
    reject_period(dir, policy, db, now_text, "20261101..2026-11-30", &res);
    assert_non_null(strstr(res.err, "FROM '20261101' is ambiguous"));
    assert_non_null(strstr(res.err, "(2026-11-01)"));
    e2e_result_free(&res);

    /* An overlong period is rejected without echoing it. */
    char long_period[400];
    memset(long_period, '9', sizeof long_period - 1);
    long_period[sizeof long_period - 1] = '\0';
    memcpy(long_period, "2026-11-01..", 12);
    reject_period(dir, policy, db, now_text, long_period, &res);
    assert_non_null(strstr(res.err, "399 bytes is too long"));
    assert_null(strstr(res.err, "99999999"));
    e2e_result_free(&res);

    /* The errors for reversed and empty ends name the fix. */
    reject_period(dir, policy, db, now_text, "2026-11-30..2026-11-01", &res);
    assert_non_null(strstr(res.err, "FROM is after TO; swap them"));
    e2e_result_free(&res);
    reject_period(dir, policy, db, now_text, "..2026-11-01", &res);
    assert_non_null(strstr(res.err, "FROM is missing or too long; write FROM..TO"));
    e2e_result_free(&res);

    /* A date that does not exist is named in the error. */
    reject_period(dir, policy, db, now_text, "2026-02-30..2026-03-01", &res);
    assert_non_null(strstr(res.err, "FROM '2026-02-30' is not a time"));
    e2e_result_free(&res);
    json_decref(alerts);
    tu_remove_tree(dir);
}

/* The controller section comes from organization; an unknown subkey is
 * rejected with its file, line and column. */
static void test_processing_names_the_controller(void **state)
{
    (void)state;
    char dir[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    static const char ORG_POLICY[] =
        "version: 1\n"
        "zones: []\n"
        "organization:\n"
        "  name: \"Fictional Test Org\"\n"
        "  dpo: \"Officer Placeholder\"\n";
    tu_write_file(policy, ORG_POLICY, sizeof ORG_POLICY - 1);

    const char *md[] = {e2e_bin(), "report", "processing", "--policy", policy, NULL};
    e2e_result res;
    run_ok(md, dir, "report-org", &res);
    assert_non_null(strstr(res.out, "- Name: Fictional Test Org\n"));
    assert_non_null(strstr(res.out, "- Contact: not set in the policy\n"));
    assert_non_null(strstr(res.out, "- Data protection officer: Officer Placeholder\n"));
    e2e_result_free(&res);

    /* Line 5, column 3: the unknown subkey "email". */
    static const char BAD_POLICY[] =
        "version: 1\n"
        "zones: []\n"
        "organization:\n"
        "  name: \"Fictional Test Org\"\n"
        "  email: \"x\"\n";
    tu_write_file(policy, BAD_POLICY, sizeof BAD_POLICY - 1);
    e2e_run(md, dir, "report-org-bad", 60, &res);
    char where[4200];
    snprintf(where, sizeof where, "%s:5:3:", policy);
    assert_true(res.exited);
    assert_int_not_equal(res.status, 0);
    assert_non_null(strstr(res.err, where));
    assert_non_null(strstr(res.err, "email"));
    e2e_result_free(&res);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processing_lists_basis_and_retention),
        cmocka_unit_test(test_transparency_counts_demo_alerts),
        cmocka_unit_test(test_processing_names_the_controller),
        cmocka_unit_test(test_report_output_refuses_symlink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
