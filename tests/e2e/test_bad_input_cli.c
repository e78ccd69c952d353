/*
 * test_bad_input_cli: bad option values, files of the wrong kind and
 * failed writes. Each command exits non-zero with a message that names
 * the value and the fix, and leaves no partial output file behind.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <cmocka.h>

#include "e2e_util.h"
#include "testutil.h"

#define T0_S "1767225600"       /* ingest time, 2026-01-01T00:00:00Z */
#define DEMO_HOST "10.1.0.23"   /* the demo generator's beacon host */

typedef struct bad_fixture {
    char dir[4096];
} bad_fixture;

static int setup(void **state)
{
    bad_fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    bad_fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Return how many entries of DIR start with PREFIX. */
static size_t count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* Run ARGV and check it ends with exit status STATUS, no sanitizer
 * report, and stdout plus stderr containing every text of NAMED (a
 * NULL-terminated list). Returns the result for further checks. */
static void expect_failure(const bad_fixture *fx, const char *const argv[], const char *tag,
                           int status, const char *const named[], e2e_result *res)
{
    e2e_run(argv, fx->dir, tag, 60, res);
    size_t len = res->out_len + res->err_len;
    char *all = malloc(len + 1);
    assert_non_null(all);
    memcpy(all, res->out, res->out_len);
    memcpy(all + res->out_len, res->err, res->err_len);
    all[len] = '\0';
    const char *missing = NULL;
    for (size_t i = 0; named[i] != NULL && missing == NULL; i++) {
        if (strstr(all, named[i]) == NULL)
            missing = named[i];
    }
    free(all);
    if (!res->exited || res->status != status || missing != NULL ||
        e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("%s: expected exit status %d and output naming \"%s\"", tag, status,
                 missing != NULL ? missing : "(all present)");
    }
}

static void expect_failure_free(const bad_fixture *fx, const char *const argv[],
                                const char *tag, int status, const char *const named[])
{
    e2e_result res;
    expect_failure(fx, argv, tag, status, named, &res);
    e2e_result_free(&res);
}

static void run_ok(const char *const argv[], const char *dir, const char *tag)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("flowveil %s failed", tag);
    }
    e2e_result_free(&res);
}

/* Write POLICY (zone 10/8, 30 days) and ingest the demo capture into DB at T0. */
static void prepare_demo_store(const bad_fixture *fx, char db[4096], char policy[4096])
{
    char demo[4096];
    e2e_path(db, fx->dir, "db");
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_path(demo, fx->dir, "demo.pcap");
    e2e_write_policy(policy, "[{name: lan, networks: [\"10.0.0.0/8\"]}]", "30d");
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    run_ok(gen, fx->dir, "demogen");
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now", T0_S,
                            demo, NULL};
    run_ok(ingest, fx->dir, "ingest");
}

/*
 * A subject export that cannot be written completely (here a file size
 * limit takes the place of a full disk) names the file and the errno text
 * and leaves neither the file nor a temporary file, so the rerun works.
 */
static void test_subject_export_failed_write_leaves_nothing(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], policy[4096], output[4096];
    prepare_demo_store(fx, db, policy);
    e2e_path(output, fx->dir, "subject.jsonl");
    const char *argv[] = {e2e_bin(), "subject", "export", "--db", db, "--policy", policy,
                          "--ip", DEMO_HOST, "--now", T0_S, "--output", output, NULL};

    /* Writes past RLIMIT_FSIZE fail with EFBIG once SIGXFSZ is ignored,
     * and both settings pass to the child. */
    struct rlimit old_limit, limit;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    limit = old_limit;
    limit.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
    e2e_result res;
    e2e_run(argv, fx->dir, "subject-export-efbig", 120, &res);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    signal(SIGXFSZ, old_handler);

    if (!res.exited || res.status != 1 || strstr(res.err, output) == NULL ||
        strstr(res.err, "File too large") == NULL) {
        e2e_print_result("subject-export-efbig", &res);
        e2e_result_free(&res);
        fail_msg("expected exit status 1 naming %s and \"File too large\"", output);
    }
    e2e_result_free(&res);
    assert_false(path_exists(output));
    assert_int_equal(count_prefixed(fx->dir, "subject.jsonl"), 0);

    /* Without the limit, the same command succeeds. */
    run_ok(argv, fx->dir, "subject-export-rerun");
    assert_true(path_exists(output));
    assert_int_equal(count_prefixed(fx->dir, "subject.jsonl"), 1);

    /* A third run must not replace the export. */
    const char *named[] = {output, "already exists", NULL};
    expect_failure_free(fx, argv, "subject-export-exists", 1, named);
}

/* Run the shell command CMD with stderr to WORK_DIR/TAG.err; return its
 * exit status and the stderr text in *ERR (free it). */
static int run_shell(const bad_fixture *fx, const char *cmd, const char *tag, char **err)
{
    char err_path[4096], full[16384];
    char name[256];
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(err_path, fx->dir, name);
    int n = snprintf(full, sizeof full, "%s 2>'%s'", cmd, err_path);
    assert_true(n > 0 && (size_t)n < sizeof full);
    int status = tu_run(full);
    size_t len = 0;
    *err = tu_read_file(err_path, &len);
    assert_non_null(*err);
    return status;
}

/* Ingest the five-ping corpus capture into a new store DB. */
static void prepare_small_store(const bad_fixture *fx, char db[4096])
{
    char policy[4096], capture[4096];
    e2e_path(db, fx->dir, "db");
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now", T0_S,
                            capture, NULL};
    run_ok(ingest, fx->dir, "ingest");
}

/* A result printed to a full disk (/dev/full) ends with exit status 1
 * and the errno text, and a token no one received is revoked. */
static void test_stdout_write_failure_exits_1(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], cmd[8192];
    prepare_small_store(fx, db);

    snprintf(cmd, sizeof cmd, "'%s' retention status --db '%s' >/dev/full", e2e_bin(), db);
    char *err = NULL;
    int status = run_shell(fx, cmd, "retention-full", &err);
    if (status != 1 || strstr(err, "writing the output failed: No space left on device") == NULL)
        fail_msg("retention status to /dev/full: exit %d, stderr: %s", status, err);
    free(err);

    snprintf(cmd, sizeof cmd, "'%s' audit show --db '%s' >/dev/full", e2e_bin(), db);
    status = run_shell(fx, cmd, "audit-show-full", &err);
    if (status != 1 || strstr(err, "No space left on device") == NULL ||
        strstr(err, "input/output error") != NULL)
        fail_msg("audit show to /dev/full: exit %d, stderr: %s", status, err);
    free(err);

    snprintf(cmd, sizeof cmd, "'%s' token create lost --role admin --db '%s' >/dev/full",
             e2e_bin(), db);
    status = run_shell(fx, cmd, "token-full", &err);
    if (status != 1 || strstr(err, "No space left on device") == NULL ||
        strstr(err, "the token was revoked") == NULL)
        fail_msg("token create to /dev/full: exit %d, stderr: %s", status, err);
    free(err);

    const char *list[] = {e2e_bin(), "token", "list", "--db", db, NULL};
    e2e_result res;
    e2e_run(list, fx->dir, "token-list", 60, &res);
    assert_int_equal(res.status, 0);
    const char *line = strstr(res.out, "lost");
    assert_non_null(line);
    const char *line_end = strchr(line, '\n');
    const char *revoked = strstr(line, "revoked");
    assert_true(revoked != NULL && (line_end == NULL || revoked < line_end));
    e2e_result_free(&res);
}

/*
 * `keys import --authority-key` with the wrong authority's key imports
 * nothing and pins nothing. Once the right key is pinned, a wrong key
 * given again is named as the fault instead of the sealed file.
 */
static void test_keys_import_wrong_key_pins_nothing(void **state)
{
    const bad_fixture *fx = *state;
    char authority[4096], other[4096], db[4096], pub[4096], right_key[4096], wrong_key[4096];
    char pinned[4096], sealed1[4200], sealed2[4200];
    e2e_path(authority, fx->dir, "authority");
    e2e_path(other, fx->dir, "other");
    e2e_path(db, fx->dir, "sensor");
    e2e_path(pub, db, "sensor.box.pub");
    e2e_path(pinned, db, "authority.sign.pub");
    e2e_path(right_key, authority, "authority.sign.pub");
    e2e_path(wrong_key, other, "authority.sign.pub");
    snprintf(sealed1, sizeof sealed1, "%s/outbox/s1/epoch-1.sealed", authority);
    snprintf(sealed2, sizeof sealed2, "%s/outbox/s1/epoch-2.sealed", authority);

    const char *init[] = {e2e_bin(), "keys", "authority", "init", "--dir", authority, NULL};
    run_ok(init, fx->dir, "init");
    const char *init_other[] = {e2e_bin(), "keys", "authority", "init", "--dir", other, NULL};
    run_ok(init_other, fx->dir, "init-other");
    const char *keygen[] = {e2e_bin(), "keys", "sensor-keygen", "--db", db, NULL};
    run_ok(keygen, fx->dir, "sensor-keygen");
    const char *enroll[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                            "--sensor", "s1", "--public-key", pub, NULL};
    run_ok(enroll, fx->dir, "enroll");
    const char *issue1[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority,
                            "--epoch", "1", NULL};
    run_ok(issue1, fx->dir, "issue-1");

    const char *wrong[] = {e2e_bin(), "keys", "import", "--db", db, "--authority-key", wrong_key,
                           sealed1, NULL};
    const char *named_either[] = {wrong_key, "--authority-key names the wrong file",
                                  "nothing was imported or pinned", NULL};
    expect_failure_free(fx, wrong, "import-wrong-key", 1, named_either);
    assert_false(path_exists(pinned));

    const char *right[] = {e2e_bin(), "keys", "import", "--db", db, "--authority-key", right_key,
                           sealed1, NULL};
    run_ok(right, fx->dir, "import-right-key");
    assert_true(path_exists(pinned));

    const char *issue2[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority,
                            "--epoch", "2", NULL};
    run_ok(issue2, fx->dir, "issue-2");
    const char *wrong2[] = {e2e_bin(), "keys", "import", "--db", db, "--authority-key", wrong_key,
                            sealed2, NULL};
    const char *named_key[] = {wrong_key, "is not the key that signed", NULL};
    expect_failure_free(fx, wrong2, "import-wrong-key-pinned", 1, named_key);
}

/* A FIFO where a regular file belongs is rejected at once, naming the
 * path and "FIFO", instead of blocking the command forever. */
static void test_fifo_inputs_rejected(void **state)
{
    const bad_fixture *fx = *state;
    char fifo[4096], policy[4096], db[4096], good_policy[4096], sensor[4096];
    e2e_path(fifo, fx->dir, "input.fifo");
    e2e_path(policy, fx->dir, "fifo-list.yaml");
    e2e_path(good_policy, fx->dir, "policy.yaml");
    e2e_path(db, fx->dir, "db");
    e2e_path(sensor, fx->dir, "sensor");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    e2e_write_policy(good_policy, "[]", "30d");

    char text[8192];
    int n = snprintf(text, sizeof text,
                     "version: 1\nzones: []\nretention:\n  flows: 30d\ndetect:\n"
                     "  indicators:\n    files:\n      - {path: %s, format: list}\n",
                     fifo);
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(policy, text, (size_t)n);

    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    const char *sensor_keygen[] = {e2e_bin(), "keys", "sensor-keygen", "--db", sensor,
                                   "--authority-key", fifo, NULL};
    const char *import[] = {e2e_bin(), "keys", "import", "--db", sensor, fifo, NULL};
    char authority[4096];
    e2e_path(authority, fx->dir, "authority");
    const char *init[] = {e2e_bin(), "keys", "authority", "init", "--dir", authority, NULL};
    run_ok(init, fx->dir, "init");
    const char *enroll[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                            "--sensor", "s3", "--public-key", fifo, NULL};
    const char *capture[] = {e2e_bin(), "capture", "--config", fifo, NULL};
    const char *serve[] = {e2e_bin(), "serve", "--db", db, "--listen", "127.0.0.1:0",
                           "--tls-cert", fifo, "--tls-key", good_policy, NULL};
    const char *const *cases[] = {check, sensor_keygen, import, enroll, capture, serve};
    const char *tags[] = {"fifo-indicator-list", "fifo-authority-key", "fifo-sealed-file",
                          "fifo-sensor-key", "fifo-config", "fifo-tls-cert"};
    /* serve needs an existing store before it reads the certificate. */
    prepare_small_store(fx, db);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *named[] = {fifo, "FIFO", NULL};
        e2e_result res;
        e2e_run(cases[i], fx->dir, tags[i], 20, &res);
        /* policy check lists indicator file errors on standard output. */
        const char *shown = i == 0 ? res.out : res.err;
        if (!res.exited || res.status == 0 || strstr(shown, named[0]) == NULL ||
            strstr(shown, named[1]) == NULL) {
            e2e_print_result(tags[i], &res);
            e2e_result_free(&res);
            fail_msg("%s: expected a non-zero exit naming the FIFO", tags[i]);
        }
        e2e_result_free(&res);
    }
}

/* Run ARGV and check exit status 2 with every text of NAMED in stderr. */
static void expect_usage(const bad_fixture *fx, const char *const argv[], const char *tag,
                         const char *const named[])
{
    e2e_result res;
    expect_failure(fx, argv, tag, 2, named, &res);
    e2e_result_free(&res);
}

/* A single-value option given twice is rejected instead of "the last
 * wins", and an empty value names the option; both exit with status 2. */
static void test_repeated_and_empty_options_rejected(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], policy[4096];
    e2e_path(db, fx->dir, "db");
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--policy", "other.yaml",
                            "--db", db, "x.pcap", NULL};
    const char *named_policy[] = {"--policy given twice", "other.yaml", "give it once", NULL};
    expect_usage(fx, ingest, "ingest-policy-twice", named_policy);
    assert_false(path_exists(db));

    const char *export_argv[] = {e2e_bin(), "export", "--db", db, "--class", "flows", "--class",
                                 "dns", NULL};
    const char *named_class[] = {"--class given twice", "'flows' and 'dns'", NULL};
    expect_usage(fx, export_argv, "export-class-twice", named_class);

    /* The short and the long form are the same option. */
    const char *subject[] = {e2e_bin(), "subject", "export", "-d", db, "--db", "other",
                             "--policy", policy, "--ip", DEMO_HOST, NULL};
    const char *named_db[] = {"--db given twice", NULL};
    expect_usage(fx, subject, "subject-db-twice", named_db);

    const char *empty_policy[] = {e2e_bin(), "ingest", "--policy", "", "--db", db, "x.pcap",
                                  NULL};
    const char *named_empty[] = {"--policy needs a value", "empty", NULL};
    expect_usage(fx, empty_policy, "ingest-empty-policy", named_empty);

    const char *empty_output[] = {e2e_bin(), "keys", "officer-keygen", "--output", "", NULL};
    const char *named_output[] = {"--output needs a value", NULL};
    expect_usage(fx, empty_output, "keygen-empty-output", named_output);
    assert_false(path_exists(db));
}

/* Values that were accepted before: a pseudonym with an unknown type
 * prefix, and a subject request reason with a control character. */
static void test_reveal_and_subject_values_checked(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], policy[4096];
    e2e_path(db, fx->dir, "db");
    e2e_path(policy, fx->dir, "policy.yaml");

    const char *reveal[] = {e2e_bin(), "reveal", "--db", db, "--pseudonym",
                            "xyz-csmh3kxgo56ishoz", "--secret-key", "k", "--reason", "r", NULL};
    const char *named_prefix[] = {"invalid --pseudonym", "ip4-", NULL};
    expect_usage(fx, reveal, "reveal-unknown-prefix", named_prefix);

    const char *subject[] = {e2e_bin(), "subject", "export", "--db", db, "--policy", policy,
                             "--ip", DEMO_HOST, "--reason", "case 7\tforged", NULL};
    const char *named_reason[] = {"invalid --reason", "0x09", NULL};
    expect_usage(fx, subject, "subject-reason-tab", named_reason);
}

/* A public key or policy given as --secret-key is named as the wrong
 * file, even with mode 0644, instead of sending the user to chmod. */
static void test_reveal_secret_key_format_before_mode(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], key[4096], pub[4200];
    prepare_small_store(fx, db);
    e2e_path(key, fx->dir, "officer.key");
    snprintf(pub, sizeof pub, "%s.pub", key);
    const char *keygen[] = {e2e_bin(), "keys", "officer-keygen", "--output", key, NULL};
    run_ok(keygen, fx->dir, "officer-keygen");
    assert_int_equal(chmod(pub, 0644), 0);

    const char *reveal[] = {e2e_bin(), "reveal", "--db", db, "--pseudonym",
                            "ip4-csmh3kxgo56ishoz", "--secret-key", pub, "--reason", "case 7",
                            NULL};
    const char *named[] = {pub, "not an officer secret key file", NULL};
    e2e_result res;
    expect_failure(fx, reveal, "reveal-pub-as-secret", 1, named, &res);
    assert_null(strstr(res.err, "chmod"));
    e2e_result_free(&res);
}

/* An indicator list that is a capture is one "not a text file" error
 * that quotes none of its bytes. */
static void test_binary_indicator_list_one_error(void **state)
{
    const bad_fixture *fx = *state;
    char policy[4096], text[8192];
    e2e_path(policy, fx->dir, "binary-list.yaml");
    int n = snprintf(text, sizeof text,
                     "version: 1\nzones: []\nretention:\n  flows: 30d\ndetect:\n"
                     "  indicators:\n    files:\n"
                     "      - {path: %s/pcaps/zeek-5-pings.pcap, format: list}\n",
                     e2e_corpus());
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(policy, text, (size_t)n);
    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    const char *named[] = {"zeek-5-pings.pcap", "not a text file", NULL};
    e2e_result res;
    expect_failure(fx, check, "check-binary-list", 1, named, &res);
    assert_null(strstr(res.out, ":1:"));
    e2e_result_free(&res);
}

/* `keys authority issue --epoch` far past the last issued epoch needs
 * --force, because an authority that reached the last epoch can never
 * issue again. */
static void test_authority_epoch_jump_needs_force(void **state)
{
    const bad_fixture *fx = *state;
    char authority[4096];
    e2e_path(authority, fx->dir, "authority");
    const char *init[] = {e2e_bin(), "keys", "authority", "init", "--dir", authority, NULL};
    run_ok(init, fx->dir, "init");
    char sensor[4096], pub[4096];
    e2e_path(sensor, fx->dir, "sensor");
    e2e_path(pub, sensor, "sensor.box.pub");
    const char *keygen[] = {e2e_bin(), "keys", "sensor-keygen", "--db", sensor, NULL};
    run_ok(keygen, fx->dir, "sensor-keygen");
    const char *enroll[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                            "--sensor", "s1", "--public-key", pub, NULL};
    run_ok(enroll, fx->dir, "enroll");

    const char *jump[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority, "--epoch",
                          "4611686018427387903", NULL};
    const char *named[] = {"4611686018427387903", "past the last issued epoch 0", "--force",
                           NULL};
    expect_usage(fx, jump, "issue-epoch-jump", named);

    const char *step[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority, "--epoch",
                          "1000", NULL};
    run_ok(step, fx->dir, "issue-epoch-1000");
    const char *forced[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority,
                            "--epoch", "5000", "--force", NULL};
    run_ok(forced, fx->dir, "issue-epoch-forced");
}

/* Options that were accepted without effect or without the checks of
 * the same field elsewhere. */
static void test_unused_and_unchecked_options_rejected(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], policy[4096];
    e2e_path(db, fx->dir, "db");
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");

    const char *report[] = {e2e_bin(), "report", "processing", "--policy", policy, "--db", db,
                            NULL};
    const char *named_report[] = {"--db applies to 'report transparency' only", NULL};
    expect_usage(fx, report, "report-processing-db", named_report);

    const char *kafka[] = {e2e_bin(), "export", "--db", db, "--kafka", "127.0.0.1:9",
                           "--topic-prefix", "bad topic", NULL};
    const char *named_topic[] = {"invalid --topic-prefix 'bad topic'", "byte 4", NULL};
    expect_usage(fx, kafka, "export-bad-topic-prefix", named_topic);
}

/* An invalid listen address in a settings file is reported at its
 * FILE:LINE with exit status 1, like every other settings-file error. */
static void test_serve_settings_listen_at_line(void **state)
{
    const bad_fixture *fx = *state;
    char db[4096], conf[4096], text[8192];
    e2e_path(db, fx->dir, "db");
    e2e_path(conf, fx->dir, "flowveil.conf");
    int n = snprintf(text, sizeof text, "data_dir: %s\nserve:\n  listen: 0.0.0.0:99999\n", db);
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(conf, text, (size_t)n);

    const char *serve[] = {e2e_bin(), "serve", "--config", conf, NULL};
    char where[4200];
    snprintf(where, sizeof where, "%s:3:", conf);
    const char *named[] = {where, "0.0.0.0:99999", "127.0.0.1:8080", NULL};
    e2e_result res;
    expect_failure(fx, serve, "serve-settings-listen", 1, named, &res);
    assert_null(strstr(res.err, "--help"));
    e2e_result_free(&res);
}

/* Officer public keys: CRLF line ends are accepted, and a key listed
 * twice is named by both escrow.officers positions, counted from 0. */
static void test_officer_keys_crlf_and_duplicate(void **state)
{
    const bad_fixture *fx = *state;
    char key[4096], pub[4200], policy[4096];
    e2e_path(key, fx->dir, "officer.key");
    snprintf(pub, sizeof pub, "%s.pub", key);
    e2e_path(policy, fx->dir, "escrow.yaml");
    const char *keygen[] = {e2e_bin(), "keys", "officer-keygen", "--output", key, NULL};
    run_ok(keygen, fx->dir, "officer-keygen");

    /* Rewrite the .pub with CRLF, as a copy through Windows leaves it. */
    size_t len = 0;
    char *text = tu_read_file(pub, &len);
    assert_non_null(text);
    assert_true(len > 1 && text[len - 1] == '\n');
    char *crlf = malloc(len + 1);
    assert_non_null(crlf);
    memcpy(crlf, text, len - 1);
    memcpy(crlf + len - 1, "\r\n", 2);
    tu_write_file(pub, crlf, len + 1);
    free(crlf);
    free(text);

    const char *one = "version: 1\nzones: []\nretention:\n  flows: 30d\n"
                      "escrow:\n  enabled: true\n  officers: [officer.key.pub]\n";
    tu_write_file(policy, one, strlen(one));
    const char *check[] = {e2e_bin(), "policy", "check", policy, NULL};
    run_ok(check, fx->dir, "check-crlf-officer");

    const char *two = "version: 1\nzones: []\nretention:\n  flows: 30d\nescrow:\n"
                      "  enabled: true\n  officers: [officer.key.pub, officer.key.pub]\n";
    tu_write_file(policy, two, strlen(two));
    const char *named[] = {"escrow.officers[1]", "same key as escrow.officers[0]", NULL};
    expect_failure_free(fx, check, "check-duplicate-officer", 1, named);
}

/* The policy size error shows the file's size, not the read cap, and a
 * gzip file given as a capture is sent to gunzip. */
static void test_policy_size_and_gzip_capture_named(void **state)
{
    const bad_fixture *fx = *state;
    char big[4096], policy[4096], db[4096], gzip[4096];
    e2e_path(big, fx->dir, "big.yaml");
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_path(db, fx->dir, "db");
    e2e_path(gzip, fx->dir, "capture.pcap.gz");
    e2e_write_policy(policy, "[]", "30d");

    /* 2,000,000 bytes of comment lines: over the 1 MiB cap. */
    size_t big_len = 2000000;
    char *text = malloc(big_len);
    assert_non_null(text);
    for (size_t i = 0; i < big_len; i++)
        text[i] = (i % 80 == 79) ? '\n' : (i % 80 == 0 ? '#' : 'x');
    tu_write_file(big, text, big_len);
    free(text);
    const char *check[] = {e2e_bin(), "policy", "check", big, NULL};
    const char *named_size[] = {"the file has 2000000 bytes", NULL};
    expect_failure_free(fx, check, "check-huge-policy", 1, named_size);

    /* gzip magic 1f 8b, method 8 (deflate), then junk. */
    static const char gzip_bytes[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03junk";
    tu_write_file(gzip, gzip_bytes, sizeof gzip_bytes - 1);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, gzip, NULL};
    const char *named_gzip[] = {gzip, "compressed", "gunzip -c", NULL};
    expect_failure_free(fx, ingest, "ingest-gzip", 1, named_gzip);
}

/* A capture whose link type flowveil does not decode fails with the
 * link type and the number of packets skipped, instead of exit 0 with
 * nothing stored. */
static void test_unsupported_link_type_fails(void **state)
{
    const bad_fixture *fx = *state;
    char policy[4096], db[4096], source[4096], capture[4096];
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_path(db, fx->dir, "db");
    e2e_path(capture, fx->dir, "linktype-beef.pcap");
    e2e_write_policy(policy, "[]", "30d");
    snprintf(source, sizeof source, "%s/pcaps/zeek-5-pings.pcap", e2e_corpus());

    size_t len = 0;
    char *data = tu_read_file(source, &len);
    assert_non_null(data);
    assert_true(len > 24);
    /* Little-endian pcap header (magic d4 c3 b2 a1): the link type is the
     * 32-bit field at offset 20. 0xbeef = 48879 is no assigned type. */
    assert_true((unsigned char)data[0] == 0xd4 && (unsigned char)data[3] == 0xa1);
    data[20] = (char)0xef;
    data[21] = (char)0xbe;
    data[22] = 0;
    data[23] = 0;
    tu_write_file(capture, data, len);
    free(data);

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now", T0_S,
                            capture, NULL};
    const char *named[] = {capture, "link type 48879", "not supported", "10 packets skipped",
                           NULL};
    expect_failure_free(fx, ingest, "ingest-unsupported-link", 1, named);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_subject_export_failed_write_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stdout_write_failure_exits_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_import_wrong_key_pins_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fifo_inputs_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_and_empty_options_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reveal_and_subject_values_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reveal_secret_key_format_before_mode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_binary_indicator_list_one_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authority_epoch_jump_needs_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_and_unchecked_options_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_serve_settings_listen_at_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_officer_keys_crlf_and_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_size_and_gzip_capture_named, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_link_type_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
