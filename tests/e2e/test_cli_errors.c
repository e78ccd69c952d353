/*
 * test_cli_errors: the `flowveil` binary reports bad usage with exit
 * status 2 and runtime failures with exit status 1 and a
 * "flowveil: error:" message that names the value at fault.
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

typedef struct cli_fixture {
    char dir[4096];
} cli_fixture;

static int setup(void **state)
{
    cli_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    cli_fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Case-insensitive search, so "Usage:" and "usage:" both count. */
static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < n && p[i] != '\0' &&
               (p[i] | 0x20) == (needle[i] | 0x20))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* Run ARGV and check it ends with exit status 2, a message and a usage
 * hint (a usage line or a pointer to --help). */
static void expect_usage_error(const cli_fixture *fx, const char *const argv[], const char *tag)
{
    e2e_result res;
    e2e_run(argv, fx->dir, tag, 60, &res);
    int has_hint = contains_nocase(res.err, "usage") || strstr(res.err, "--help") != NULL;
    if (!res.exited || res.status != 2 || res.err_len == 0 || !has_hint ||
        e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("%s: expected exit status 2 with a message and a usage hint", tag);
    }
    e2e_result_free(&res);
}

/* Run ARGV and check it ends with exit status 1 and a "flowveil: error:"
 * line that contains NAMED (the path or value at fault). */
static void expect_runtime_error(const cli_fixture *fx, const char *const argv[], const char *tag,
                                 const char *named)
{
    e2e_result res;
    e2e_run(argv, fx->dir, tag, 60, &res);
    const char *line = strstr(res.err, "flowveil: error:");
    const char *line_end = (line != NULL) ? strchr(line, '\n') : NULL;
    const char *hit = (line != NULL) ? strstr(line, named) : NULL;
    int named_on_line = hit != NULL && (line_end == NULL || hit < line_end);
    if (!res.exited || res.status != 1 || !named_on_line || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("%s: expected exit status 1 and \"flowveil: error:\" naming %s", tag, named);
    }
    e2e_result_free(&res);
}

static void test_usage_errors_exit_2(void **state)
{
    const cli_fixture *fx = *state;
    const char *bin = e2e_bin();

    const char *no_command[] = {bin, NULL};
    expect_usage_error(fx, no_command, "no-command");

    const char *unknown_command[] = {bin, "frobnicate", NULL};
    expect_usage_error(fx, unknown_command, "unknown-command");

    const char *unknown_option[] = {bin, "export", "--db", fx->dir, "--class", "flows",
                                    "--no-such-option", NULL};
    expect_usage_error(fx, unknown_option, "unknown-option");

    const char *missing_policy_option[] = {bin, "ingest", "--db", fx->dir, "x.pcap", NULL};
    expect_usage_error(fx, missing_policy_option, "ingest-without-policy");

    const char *bad_class[] = {bin, "export", "--db", fx->dir, "--class", "packets", NULL};
    expect_usage_error(fx, bad_class, "export-bad-class");

    const char *bad_now[] = {bin, "export", "--db", fx->dir, "--class", "flows", "--now",
                             "yesterday", NULL};
    expect_usage_error(fx, bad_now, "export-bad-now");

    const char *option_without_value[] = {bin, "serve", "--db", NULL};
    expect_usage_error(fx, option_without_value, "serve-db-without-value");
}

static void test_missing_policy_file_exits_1(void **state)
{
    const cli_fixture *fx = *state;
    char policy[4096], db[4096], capture[4096];
    e2e_path(policy, fx->dir, "no-such-policy.yaml");
    e2e_path(db, fx->dir, "db");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, capture, NULL};
    expect_runtime_error(fx, ingest, "ingest-missing-policy", policy);

    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    expect_runtime_error(fx, check, "check-missing-policy", policy);
}

static void test_malformed_policy_names_line(void **state)
{
    const cli_fixture *fx = *state;
    char policy[4096], db[4096], capture[4096], expected[4200];
    e2e_path(policy, fx->dir, "bad-duration.yaml");
    e2e_path(db, fx->dir, "db");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());

    /* Line 4 contains a retention value that is not a duration. */
    const char *text = "version: 1\n"
                       "zones: []\n"
                       "retention:\n"
                       "  flows: forever\n";
    tu_write_file(policy, text, strlen(text));
    snprintf(expected, sizeof expected, "%s:4", policy);

    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    expect_runtime_error(fx, check, "check-bad-duration", expected);

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, capture, NULL};
    expect_runtime_error(fx, ingest, "ingest-bad-duration", expected);

    /* A YAML syntax error: line 3 opens a flow sequence that never closes. */
    char broken[4096];
    e2e_path(broken, fx->dir, "bad-syntax.yaml");
    const char *syntax = "version: 1\n"
                         "zones: []\n"
                         "retention: [30d, \n";
    tu_write_file(broken, syntax, strlen(syntax));
    snprintf(expected, sizeof expected, "%s:", broken);
    const char *check_syntax[] = {e2e_bin(), "policy", "check", broken, NULL};
    expect_runtime_error(fx, check_syntax, "check-bad-syntax", expected);
}

static void test_non_capture_file_exits_1(void **state)
{
    const cli_fixture *fx = *state;
    char policy[4096], db[4096], not_capture[4096];
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_path(db, fx->dir, "db");
    e2e_path(not_capture, fx->dir, "notes.txt");
    e2e_write_policy(policy, "[]", "30d");
    const char *text = "This is a text file, not a pcap or pcapng capture.\n";
    tu_write_file(not_capture, text, strlen(text));

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, not_capture,
                            NULL};
    expect_runtime_error(fx, ingest, "ingest-text-file", not_capture);

    char missing[4096];
    e2e_path(missing, fx->dir, "no-such-capture.pcap");
    const char *ingest_missing[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, missing,
                                    NULL};
    expect_runtime_error(fx, ingest_missing, "ingest-missing-capture", missing);
}

static void test_missing_db_exits_1(void **state)
{
    const cli_fixture *fx = *state;
    char db[4096];
    e2e_path(db, fx->dir, "no-such-db");

    const char *export_argv[] = {e2e_bin(), "export", "--db", db, "--class", "flows", NULL};
    expect_runtime_error(fx, export_argv, "export-missing-db", db);

    const char *serve_argv[] = {e2e_bin(), "serve", "--db", db, "--listen", "127.0.0.1:0", NULL};
    expect_runtime_error(fx, serve_argv, "serve-missing-db", db);

    const char *status_argv[] = {e2e_bin(), "retention", "status", "--db", db, NULL};
    expect_runtime_error(fx, status_argv, "retention-missing-db", db);
}

/* "-" reads a capture from standard input, as tcpdump -r - does. */
static void test_ingest_reads_standard_input(void **state)
{
    cli_fixture *fx = *state;
    char policy[4096], db[4096], cmd[16384];
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_path(db, fx->dir, "db");
    e2e_write_policy(policy, "[]", "30d");
    snprintf(cmd, sizeof cmd, "'%s' ingest --policy '%s' --db '%s' --now 1767225600 - "
                              "< '%s/pcaps/zeek-5-pings.pcap' 2>/dev/null",
             e2e_bin(), policy, db, e2e_corpus());
    assert_int_equal(tu_run(cmd), 0);

    json_t *flows = e2e_export(fx->dir, db, "flows", 1767225600ull);
    assert_non_null(flows);
    /* The five echo requests and replies are one ICMP flow of 10 packets. */
    assert_int_equal(json_array_size(flows), 1);
    json_t *f = json_array_get(flows, 0);
    assert_int_equal(json_integer_value(json_object_get(f, "pkts_fwd")) +
                         json_integer_value(json_object_get(f, "pkts_rev")),
                     10);
    json_decref(flows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_errors_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_policy_file_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_policy_names_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_capture_file_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_db_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_reads_standard_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
