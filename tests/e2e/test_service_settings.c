/*
 * test_service_settings: start-up errors of `flowveil capture` and
 * `flowveil ingest` that an operator of the service meets. A bad value
 * in the settings file is reported at its FILE:LINE:COLUMN with exit
 * status 1, a failed start leaves no store behind, and a repeated
 * ingest of the same files warns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "e2e_util.h"
#include "testutil.h"

typedef struct settings_fixture {
    char dir[4096];
    char policy[4200];
    char conf[4200];
    char db[4200];
} settings_fixture;

static int setup(void **state)
{
    settings_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    snprintf(fx->policy, sizeof fx->policy, "%s/policy.yaml", fx->dir);
    snprintf(fx->conf, sizeof fx->conf, "%s/flowveil.conf", fx->dir);
    snprintf(fx->db, sizeof fx->db, "%s/db", fx->dir);
    e2e_write_policy(fx->policy, "[]", "30d");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    settings_fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Write the settings file: data_dir and policy, then CAPTURE_LINES
 * (indented lines of the capture: section, starting on line 4). */
static void write_settings(const settings_fixture *fx, const char *capture_lines)
{
    FILE *f = fopen(fx->conf, "w");
    assert_non_null(f);
    fprintf(f, "data_dir: %s\npolicy: %s\ncapture:\n%s", fx->db, fx->policy, capture_lines);
    assert_int_equal(fclose(f), 0);
}

/* Run `flowveil capture --config FILE` and return its stderr; checks
 * exit status STATUS and that no store was created. */
static char *run_capture(const settings_fixture *fx, const char *tag, int status)
{
    const char *argv[] = {e2e_bin(), "capture", "--config", fx->conf, NULL};
    e2e_result res;
    e2e_run(argv, fx->dir, tag, 60, &res);
    if (!res.exited || res.status != status || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("%s: expected exit status %d", tag, status);
    }
    struct stat st;
    assert_int_not_equal(stat(fx->db, &st), 0);
    char *err = strdup(res.err);
    e2e_result_free(&res);
    assert_non_null(err);
    return err;
}

static void test_settings_workers_reported_at_line(void **state)
{
    settings_fixture *fx = *state;
    /* workers on line 5, column 12: above any machine's CPU count. */
    write_settings(fx, "  interfaces: [lo]\n  workers: 1024\n");
    char *err = run_capture(fx, "workers", 1);
    char where[4300];
    snprintf(where, sizeof where, "%s:5:12: key workers", fx->conf);
    assert_non_null(strstr(err, where));
    assert_null(strstr(err, "--help"));
    free(err);
}

static void test_settings_unknown_user_reported_at_line(void **state)
{
    settings_fixture *fx = *state;
    write_settings(fx, "  interfaces: [lo]\n  user: no-such-user-fv\n");
    char *err = run_capture(fx, "user", 1);
    char where[4300];
    snprintf(where, sizeof where, "%s:5:9: key user", fx->conf);
    assert_non_null(strstr(err, where));
    assert_non_null(strstr(err, "no such user"));
    free(err);
}

static void test_settings_long_interface_name(void **state)
{
    settings_fixture *fx = *state;
    /* 16 bytes: one above the kernel's IFNAMSIZ - 1. */
    write_settings(fx, "  interfaces: [abcdefghijklmnop]\n");
    char *err = run_capture(fx, "longname", 1);
    assert_non_null(strstr(err, "limit of 15"));
    free(err);
}

static void test_capture_missing_interface_leaves_no_store(void **state)
{
    settings_fixture *fx = *state;
    write_settings(fx, "  interfaces: [fvnosuch0]\n");
    char *err = run_capture(fx, "nosuchif", 1);
    assert_non_null(strstr(err, "interface fvnosuch0 not found"));
    assert_null(strstr(err, "packets ("));
    free(err);
}

static void test_capture_bad_filter_leaves_no_store(void **state)
{
    settings_fixture *fx = *state;
    write_settings(fx, "  interfaces: [lo]\n  filter: port nonsense\n");
    char *err = run_capture(fx, "badfilter", 1);
    char where[4300];
    snprintf(where, sizeof where, "%s:5:11: key filter", fx->conf);
    assert_non_null(strstr(err, where));
    free(err);
}

static void test_settings_policy_path_names_key(void **state)
{
    settings_fixture *fx = *state;
    snprintf(fx->policy, sizeof fx->policy, "%s/missing-policy.yaml", fx->dir);
    write_settings(fx, "  interfaces: [lo]\n");
    char *err = run_capture(fx, "policy", 1);
    char where[4300];
    snprintf(where, sizeof where, "%s:2:9: key policy", fx->conf);
    assert_non_null(strstr(err, "cannot open the policy"));
    assert_non_null(strstr(err, where));
    free(err);
}

static void test_ingest_same_files_twice_warns(void **state)
{
    settings_fixture *fx = *state;
    char pcap[4200];
    snprintf(pcap, sizeof pcap, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());
    const char *argv[] = {e2e_bin(), "ingest", "--policy", fx->policy, "--db", fx->db,
                          "--now", "1767225600", pcap, NULL};
    const char *tags[] = {"first", "second"};
    for (int i = 0; i < 2; i++) {
        e2e_result res;
        e2e_run(argv, fx->dir, tags[i], 120, &res);
        if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
            e2e_print_result(tags[i], &res);
            e2e_result_free(&res);
            fail_msg("ingest %s failed", tags[i]);
        }
        bool warned = strstr(res.err, "already ingested completely") != NULL;
        e2e_result_free(&res);
        if (i == 0)
            assert_false(warned);
        else
            assert_true(warned);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_settings_workers_reported_at_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_unknown_user_reported_at_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_settings_long_interface_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_missing_interface_leaves_no_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_capture_bad_filter_leaves_no_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_settings_policy_path_names_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_same_files_twice_warns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
