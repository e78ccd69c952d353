/*
 * test_cli_errors: the `flowveil` binary reports bad usage with exit
 * status 2 and runtime failures with exit status 1 and a
 * "flowveil: error:" message that names the value at fault.
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
#include <unistd.h>
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

/* Run ARGV and check it ends with exit status STATUS, no sanitizer
 * report, and output (stdout and stderr together) that contains every
 * text of NAMED, a NULL-terminated list: the value at fault and the
 * fix. */
static void expect_failure_naming(const cli_fixture *fx, const char *const argv[],
                                  const char *tag, int status, const char *const named[])
{
    e2e_result res;
    e2e_run(argv, fx->dir, tag, 60, &res);
    size_t len = res.out_len + res.err_len;
    char *all = malloc(len + 1);
    assert_non_null(all);
    memcpy(all, res.out, res.out_len);
    memcpy(all + res.out_len, res.err, res.err_len);
    all[len] = '\0';
    const char *missing = NULL;
    for (size_t i = 0; named[i] != NULL && missing == NULL; i++) {
        if (strstr(all, named[i]) == NULL)
            missing = named[i];
    }
    free(all);
    if (!res.exited || res.status != status || missing != NULL ||
        e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("%s: expected exit status %d and output naming \"%s\"", tag, status,
                 missing != NULL ? missing : "(all present)");
    }
    e2e_result_free(&res);
}

/* True if PATH exists (a partial file or store left behind). */
static bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
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

    /* "--kafka" here is the value of --db, so no destination is set. This
     * used to pass a NULL destination to strlen and crash. */
    const char *export_without_destination[] = {bin, "export", "--db", "--kafka", NULL};
    expect_usage_error(fx, export_without_destination, "export-kafka-as-db-value");
}

/* Option errors that name the right option and value. */
static void test_option_errors_name_the_option(void **state)
{
    const cli_fixture *fx = *state;
    const char *bin = e2e_bin();
    char db[4096], policy[4096], capture[4096];
    e2e_path(db, fx->dir, "tokens-db");
    e2e_path(policy, fx->dir, "tokens.yaml");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());
    e2e_write_policy(policy, "[]", "30d");
    const char *ingest[] = {bin, "ingest", "--policy", policy, "--db", db, capture, NULL};
    e2e_result res;
    e2e_run(ingest, fx->dir, "tokens-ingest", 60, &res);
    assert_true(res.exited && res.status == 0);
    e2e_result_free(&res);

    /* Beyond 10 years, and a value that overflowed to a past time. */
    const char *long_token[] = {bin, "token", "create", "ci", "--role", "analyst", "--expires",
                                "3651d", "--db", db, NULL};
    const char *named_long[] = {"--expires", "3651d", "3650d", NULL};
    expect_failure_naming(fx, long_token, "token-expires-too-long", 2, named_long);
    const char *wrapping_token[] = {bin, "token", "create", "ci", "--role", "analyst",
                                    "--expires", "213503982d", "--db", db, NULL};
    const char *named_wrapping[] = {"--expires", "213503982d", NULL};
    expect_failure_naming(fx, wrapping_token, "token-expires-wraps", 2, named_wrapping);

    /* A privilege option given twice. */
    const char *two_roles[] = {bin, "token", "create", "ci", "--role", "analyst", "--role",
                               "admin", "--db", db, NULL};
    const char *named_roles[] = {"--role given twice", "analyst", "admin", NULL};
    expect_failure_naming(fx, two_roles, "token-two-roles", 2, named_roles);

    /* export's numeric options name themselves, not --start. */
    const char *refresh[] = {bin, "export", "--db", fx->dir, "--ipfix", "127.0.0.1:9",
                             "--template-refresh", "0", NULL};
    const char *named_refresh[] = {"--template-refresh", "'0'", NULL};
    expect_failure_naming(fx, refresh, "export-template-refresh-0", 2, named_refresh);

    /* A Kafka property that loads code is rejected before any connection. */
    const char *plugin[] = {bin, "export", "--db", fx->dir, "--kafka", "127.0.0.1:9",
                            "--kafka-property", "plugin.library.paths=/tmp/x.so", NULL};
    const char *named_plugin[] = {"plugin.library.paths", "not allowed", NULL};
    expect_failure_naming(fx, plugin, "export-plugin-property", 2, named_plugin);
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

    /* Standard input can be read once: a second "-" is a usage error
     * before anything is stored. */
    char fresh_db[4096];
    e2e_path(fresh_db, fx->dir, "db-stdin-twice");
    const char *twice[] = {e2e_bin(), "ingest", "--policy", policy, "--db", fresh_db, "-", "-",
                           NULL};
    const char *const named_twice[] = {"'-' (standard input) is given twice", NULL};
    expect_failure_naming(fx, twice, "ingest-stdin-twice", 2, named_twice);
    struct stat st;
    assert_int_not_equal(stat(fresh_db, &st), 0);

    /* A file where the dashboard directory belongs is named as such. */
    const char *serve_web_file[] = {e2e_bin(), "serve", "--db", db, "--web", not_capture, NULL};
    const char *const named_web[] = {not_capture, "is not a directory", NULL};
    expect_failure_naming(fx, serve_web_file, "serve-web-file", 1, named_web);
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

/* An indicator list with bad lines, and one that does not exist: policy
 * check names the file, the line and the fix, and exits 1. */
static void test_bad_indicator_lists_named(void **state)
{
    const cli_fixture *fx = *state;
    char list[4096], policy[4096], missing_policy[4096];
    e2e_path(list, fx->dir, "bad-hosts.txt");
    e2e_path(policy, fx->dir, "indicators.yaml");
    e2e_path(missing_policy, fx->dir, "indicators-missing.yaml");

    /* Line 1 has text after the indicator, line 2 an invalid network. */
    const char *lines = "not a domain\n300.1.1.1/8\nexample.com\n";
    tu_write_file(list, lines, strlen(lines));
    const char *text = "version: 1\nzones: []\nretention:\n  flows: 30d\ndetect:\n"
                       "  indicators:\n    files:\n"
                       "      - {path: bad-hosts.txt, format: list, severity: high}\n";
    tu_write_file(policy, text, strlen(text));
    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    const char *named[] = {"bad-hosts.txt:1:", "bad-hosts.txt:2:", "300.1.1.1/8", "fix", NULL};
    expect_failure_naming(fx, check, "check-bad-indicators", 1, named);

    const char *missing_text = "version: 1\nzones: []\nretention:\n  flows: 30d\ndetect:\n"
                               "  indicators:\n    files:\n"
                               "      - {path: no-such-list.txt, format: list}\n";
    tu_write_file(missing_policy, missing_text, strlen(missing_text));
    const char *check_missing[] = {e2e_bin(), "policy", "check", missing_policy, NULL};
    const char *named_missing[] = {"no-such-list.txt", "cannot open",
                                   "fix the path in detect.indicators.files", NULL};
    expect_failure_naming(fx, check_missing, "check-missing-indicators", 1, named_missing);
}

/* A malformed officer key in the policy stops policy check and ingest
 * before a store is created. */
static void test_bad_officer_key_leaves_no_store(void **state)
{
    const cli_fixture *fx = *state;
    char key[4096], policy[4096], db[4096], capture[4096];
    e2e_path(key, fx->dir, "officer-a.pub");
    e2e_path(policy, fx->dir, "escrow.yaml");
    e2e_path(db, fx->dir, "escrow-db");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());

    /* The right first word, but "zz" instead of 64 hex digits. */
    const char *key_text = "flowveil-officer-public-key-v1 zz\n";
    tu_write_file(key, key_text, strlen(key_text));
    const char *text = "version: 1\nzones: []\nretention:\n  flows: 30d\n"
                       "escrow:\n  enabled: true\n  officers: [officer-a.pub]\n";
    tu_write_file(policy, text, strlen(text));

    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    const char *named[] = {"escrow.officers[0]", "officer-a.pub", "keys officer-keygen", NULL};
    expect_failure_naming(fx, check, "check-bad-officer-key", 1, named);

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, capture, NULL};
    expect_failure_naming(fx, ingest, "ingest-bad-officer-key", 1, named);
    assert_false(path_exists(db));
}

/* An indicator list that cannot be read (a directory) and a Kafka
 * property that is not allowed stop ingest before a store exists. */
static void test_bad_policy_files_leave_no_store(void **state)
{
    const cli_fixture *fx = *state;
    char policy[4096], db[4096], capture[4096];
    e2e_path(policy, fx->dir, "dir-list.yaml");
    e2e_path(db, fx->dir, "dir-list-db");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());

    const char *text = "version: 1\nzones: []\nretention:\n  flows: 30d\ndetect:\n"
                       "  indicators:\n    files:\n"
                       "      - {path: /etc, format: list}\n";
    tu_write_file(policy, text, strlen(text));
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, capture, NULL};
    const char *named[] = {"/etc", "indicator list", NULL};
    expect_failure_naming(fx, ingest, "ingest-directory-list", 1, named);
    assert_false(path_exists(db));

    /* The same for an export destination that librdkafka rejects. */
    const char *kafka = "version: 1\nzones: []\nretention:\n  flows: 30d\nexport:\n"
                        "  destinations:\n    - {kafka: 127.0.0.1:9, properties: {linger.ms:"
                        " not-a-number}}\n";
    tu_write_file(policy, kafka, strlen(kafka));
    const char *named_kafka[] = {"linger.ms", NULL};
    expect_failure_naming(fx, ingest, "ingest-bad-kafka", 1, named_kafka);
    assert_false(path_exists(db));
}

/* Key files of the wrong kind: a sealed epoch file that is not one, and
 * an officer key written into a directory that does not exist. */
static void test_bad_key_files_named(void **state)
{
    const cli_fixture *fx = *state;
    char sealed[4096], db[4096], output[4096];
    e2e_path(sealed, fx->dir, "epoch.sealed");
    e2e_path(db, fx->dir, "import-db");
    e2e_path(output, fx->dir, "no-such-dir/officer.key");

    const char *garbage = "this is not a sealed epoch file\n";
    tu_write_file(sealed, garbage, strlen(garbage));
    const char *import[] = {e2e_bin(), "keys", "import", "--db", db, sealed, NULL};
    const char *named_import[] = {"epoch.sealed", "not a sealed epoch file",
                                  "keys authority issue", NULL};
    expect_failure_naming(fx, import, "keys-import-garbage", 1, named_import);

    const char *keygen[] = {e2e_bin(), "keys", "officer-keygen", "--output", output, NULL};
    const char *named_keygen[] = {"no-such-dir/officer.key", "check that its directory exists",
                                  NULL};
    expect_failure_naming(fx, keygen, "officer-keygen-no-dir", 1, named_keygen);
    assert_false(path_exists(output));
}

/* Captures of the wrong type or cut short: an empty file, a gzip file,
 * and the first 10 bytes of a real pcap (inside its 24-byte header). */
static void test_bad_capture_files_named(void **state)
{
    const cli_fixture *fx = *state;
    char policy[4096], db[4096], empty[4096], gzip[4096], cut[4096], source[4096];
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_path(db, fx->dir, "db");
    e2e_path(empty, fx->dir, "empty.pcap");
    e2e_path(gzip, fx->dir, "capture.pcap.gz");
    e2e_path(cut, fx->dir, "cut.pcap");
    e2e_write_policy(policy, "[]", "30d");

    tu_write_file(empty, "", 0);
    /* gzip magic 1f 8b, method 8 (deflate), then junk. */
    static const char gzip_bytes[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03junk";
    tu_write_file(gzip, gzip_bytes, sizeof gzip_bytes - 1);
    snprintf(source, sizeof source, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());
    size_t len = 0;
    char *data = tu_read_file(source, &len);
    assert_non_null(data);
    assert_true(len > 10);
    tu_write_file(cut, data, 10);
    free(data);

    const char *const files[] = {empty, gzip, cut};
    const char *const tags[] = {"ingest-empty-file", "ingest-gzip-file", "ingest-cut-header"};
    for (size_t i = 0; i < 3; i++) {
        const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, files[i],
                                NULL};
        const char *named[] = {files[i], NULL};
        expect_failure_naming(fx, ingest, tags[i], 1, named);
    }
}

/* Bad values of --listen and of duration options are usage errors that
 * quote the value and show the expected form. */
static void test_bad_listen_and_durations_named(void **state)
{
    const cli_fixture *fx = *state;
    char db[4096];
    e2e_path(db, fx->dir, "db");

    static const char *const listens[] = {"999.1.1.1:80", "127.0.0.1:70000", "localhost",
                                          "[::1]", "127.0.0.1:-1"};
    for (size_t i = 0; i < sizeof listens / sizeof listens[0]; i++) {
        const char *serve[] = {e2e_bin(), "serve", "--db", db, "--listen", listens[i], NULL};
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", listens[i]);
        const char *named[] = {quoted, "127.0.0.1:8080", "--help", NULL};
        expect_failure_naming(fx, serve, "serve-bad-listen", 2, named);
    }

    /* token create opens the store before it reads --expires, so the
     * store must exist for the duration to be checked. */
    assert_false(path_exists(db));
    char policy[4096], cmd[16384];
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");
    snprintf(cmd, sizeof cmd, "'%s' ingest --policy '%s' --db '%s' '%s/pcaps/zeek-5-pings.pcap' "
                              "2>/dev/null",
             e2e_bin(), policy, db, e2e_corpus());
    assert_int_equal(tu_run(cmd), 0);

    static const char *const durations[] = {"5", "1h30m", "-3d", "forever", "10 d"};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        const char *token[] = {e2e_bin(), "token", "create", "ci", "--role", "analyst",
                               "--db", db, "--expires", durations[i], NULL};
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", durations[i]);
        const char *named[] = {"--expires", quoted, "90d", NULL};
        expect_failure_naming(fx, token, "token-bad-expires", 2, named);
    }
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

/*
 * A page of data.mdb overwritten with zeros can fail one of LMDB's
 * internal checks, which aborts the process. Before that, flowveil names
 * the store and the remedy. Each page of a demo store is zeroed in turn
 * until a read aborts.
 */
static void test_damaged_store_page_named(void **state)
{
    (void)state;
    char dir[4096], demo[4096], db[4096], damaged[4096], path[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(demo, dir, "demo.pcap");
    e2e_path(db, dir, "db");
    e2e_path(damaged, dir, "damaged");
    snprintf(policy, sizeof policy, "%s/policy/example-policy.yaml", e2e_source_dir());
    e2e_result res;
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    e2e_run(gen, dir, "demogen", 120, &res);
    assert_true(res.exited && res.status == 0);
    e2e_result_free(&res);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now",
                            "1767225600", demo, NULL};
    e2e_run(ingest, dir, "ingest", 300, &res);
    assert_true(res.exited && res.status == 0);
    e2e_result_free(&res);

    size_t mdb_len = 0, keys_len = 0;
    e2e_path(path, db, "data.mdb");
    uint8_t *mdb = (uint8_t *)tu_read_file(path, &mdb_len);
    e2e_path(path, db, "data.keys");
    char *keys = tu_read_file(path, &keys_len);
    assert_non_null(mdb);
    assert_non_null(keys);
    assert_int_equal(mkdir(damaged, 0700), 0);
    e2e_path(path, damaged, "data.keys");
    tu_write_file(path, keys, keys_len);

    /* LMDB's page size is the system's. */
    long page_size = sysconf(_SC_PAGESIZE);
    assert_true(page_size > 0);
    size_t psize = (size_t)page_size;
    uint8_t *saved = malloc(psize);
    assert_non_null(saved);
    bool aborted = false;
    for (size_t page = 2; page < mdb_len / psize && !aborted; page++) {
        memcpy(saved, mdb + page * psize, psize);
        memset(mdb + page * psize, 0, psize);
        e2e_path(path, damaged, "data.mdb");
        tu_write_file(path, mdb, mdb_len);
        memcpy(mdb + page * psize, saved, psize);
        e2e_path(path, damaged, "lock.mdb");
        (void)remove(path);

        for (int c = 0; c < 2 && !aborted; c++) {
            const char *argv[] = {e2e_bin(), "export", "--db", damaged, "--class",
                                  c == 0 ? "flows" : "dns", "--now", "1767225600", NULL};
            e2e_run(argv, dir, "export-damaged", 60, &res);
            if (!res.exited) {
                aborted = true;
                if (strstr(res.err, "is damaged (LMDB: ") == NULL ||
                    strstr(res.err, "restore data.mdb and data.keys together") == NULL)
                    fail_msg("page %zu: no store message before the abort:\n%s", page,
                             res.err);
            }
            e2e_result_free(&res);
        }
    }
    /* NOTE: the demo store of this version aborts on its fifth page. A
     * change of the store layout can move that page or remove it. */
    assert_true(aborted);
    free(saved);
    free(mdb);
    free(keys);
    tu_remove_tree(dir);
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
        cmocka_unit_test_setup_teardown(test_bad_indicator_lists_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_officer_key_leaves_no_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_policy_files_leave_no_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_errors_name_the_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_files_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_capture_files_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_listen_and_durations_named, setup, teardown),
        cmocka_unit_test(test_damaged_store_page_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
