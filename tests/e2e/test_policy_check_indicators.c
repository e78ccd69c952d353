/*
 * test_policy_check_indicators: `flowveil policy check` opens every
 * indicator file the policy names, prints its counts per type, shows the
 * first bad lines, and exits 1 when a file is unreadable or has bad
 * lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "e2e_util.h"
#include "testutil.h"

typedef struct check_fixture {
    char dir[4096];
    char policy[4096];
} check_fixture;

/* A policy naming lists/ips.txt (plain list) and lists/bad.csv (CSV),
 * both relative to the policy's folder. */
static const char policy_text[] = "version: 1\n"
                                  "zones:\n"
                                  "  - name: office\n"
                                  "    networks: [10.0.0.0/8]\n"
                                  "detect:\n"
                                  "  indicators:\n"
                                  "    files:\n"
                                  "      - {path: lists/ips.txt}\n"
                                  "      - {path: lists/bad.csv, format: csv, severity: critical}\n";

static int setup(void **state)
{
    check_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    e2e_path(fx->policy, fx->dir, "policy.yaml");
    tu_write_file(fx->policy, policy_text, strlen(policy_text));
    char lists[4096];
    e2e_path(lists, fx->dir, "lists");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", lists);
    if (tu_run(cmd) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    check_fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static void write_list(const check_fixture *fx, const char *name, const char *text)
{
    char path[4096], rel[256];
    snprintf(rel, sizeof rel, "lists/%s", name);
    e2e_path(path, fx->dir, rel);
    tu_write_file(path, text, strlen(text));
}

static void run_check(const check_fixture *fx, const char *tag, e2e_result *res)
{
    const char *argv[] = {e2e_bin(), "policy", "check", fx->policy, NULL};
    e2e_run(argv, fx->dir, tag, 60, res);
    assert_false(e2e_has_sanitizer_report(res->err));
    assert_true(res->exited);
}

static void test_check_counts_good_lists(void **state)
{
    check_fixture *fx = *state;
    /* Two addresses, a network, a domain and a JA3 hash; the second
     * 192.0.2.10 is a duplicate. */
    write_list(fx, "ips.txt",
               "# command and control\n192.0.2.10\n192.0.2.10\n198.51.100.0/24\nevil.example\n");
    write_list(fx, "bad.csv",
               "indicator,type,note\n"
               "203.0.113.5,ipv4,c2\n"
               "e7d705a3286e19ea42f587b344ee6865,ja3,loader\n");
    e2e_result res;
    run_check(fx, "good", &res);
    if (res.status != 0)
        print_error("stdout:\n%s\nstderr:\n%s\n", res.out, res.err);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(res.out, ": valid\n"));
    assert_non_null(strstr(res.out, "indicators: on. 2 files (1 plain list, 1 CSV)."));
    assert_non_null(strstr(res.out, "lists/ips.txt (list, severity high)\n"
                                    "    3 entries: 1 ipv4, 0 ipv6, 1 cidr, 1 domain, 0 ja3,"
                                    " 0 ja4; 1 duplicates, 0 bad lines\n"));
    assert_non_null(strstr(res.out, "lists/bad.csv (csv, severity critical)\n"
                                    "    2 entries: 1 ipv4, 0 ipv6, 0 cidr, 0 domain, 1 ja3,"
                                    " 0 ja4; 0 duplicates, 0 bad lines\n"));
    assert_string_equal(res.err, "");
    e2e_result_free(&res);
}

static void test_check_shows_first_bad_lines(void **state)
{
    check_fixture *fx = *state;
    /* Seven bad lines: five are shown, two counted. */
    write_list(fx, "ips.txt", "192.0.2.10\nbad one\nbad two\nbad three\nbad four\nbad five\n"
                              "bad six\nbad seven\n");
    write_list(fx, "bad.csv", "203.0.113.5,ipv4\n");
    e2e_result res;
    run_check(fx, "bad-lines", &res);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.out, ": valid, but 1 indicator file has errors\n"));
    assert_non_null(strstr(res.out, "lists/ips.txt:2: \"bad one\""));
    assert_non_null(strstr(res.out, "lists/ips.txt:6: \"bad five\""));
    assert_null(strstr(res.out, "bad six"));
    assert_non_null(strstr(res.out, "    ... 2 more bad lines\n"));
    assert_non_null(strstr(res.out, "1 entries: 1 ipv4,"));
    assert_non_null(strstr(res.out, "0 duplicates, 7 bad lines\n"));
    assert_non_null(strstr(res.err, "flowveil: error: 1 indicator file has errors"));
    e2e_result_free(&res);
}

static void test_check_reports_missing_file(void **state)
{
    check_fixture *fx = *state;
    write_list(fx, "ips.txt", "192.0.2.10\n");
    /* lists/bad.csv is never written. */
    e2e_result res;
    run_check(fx, "missing", &res);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.out, "lists/bad.csv: cannot open the indicator list: No such file"));
    assert_non_null(strstr(res.out, "1 entries: 1 ipv4,"));
    assert_non_null(strstr(res.err, "1 indicator file has errors"));
    e2e_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_check_counts_good_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_shows_first_bad_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_reports_missing_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
