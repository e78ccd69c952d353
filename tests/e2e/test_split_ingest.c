/*
 * test_split_ingest: `flowveil ingest` of one capture split into three
 * files by time raises the same alerts as the ingest of the whole file,
 * field by field, when the run is slow and when it is stopped and
 * resumed. The capture is the small labelled scenario of
 * flowveil-scengen (2 days, 32 hosts, seed 1) with planted beacons,
 * baseline and off-hours incidents, dated at least two weeks before the
 * clock.
 * Every store gets the same pseudonymization key, so the alerts name the
 * same host pseudonyms.
 *
 * - Slow run: the second file arrives on standard input after a pause of
 *   65 seconds, so more than a minute of wall-clock time passes between
 *   the files. Ingest must still evaluate the detectors only at the end
 *   of its input, as docs/DETECTION.md states.
 * - Stop and resume: SIGTERM once the first file was read, then the same
 *   command again. The stopped run must leave no detector state that the
 *   resume, which reads every file again, would count twice. The count
 *   of merged raises is not compared, because an indicator alert that the
 *   stopped run stored is raised again by the resume. The packets and
 *   bytes counted must equal those of the whole file.
 *
 * - Kill after the detector state was saved: a test kill point of
 *   cli/test_hooks.h sends SIGKILL after the final evaluation and state
 *   save, before the checkpoint is deleted. Then the same command runs
 *   again, followed by the ingest of a later file. The resume must not
 *   feed the input to the detectors a second time or evaluate them
 *   again. So every alert, with its count of raises, must equal those of
 *   runs that were not killed. The resume must also count the input
 *   once: the same counters, and one "ingest" audit entry per completed
 *   run. The killed runs use flowveil-test-hooks, the copy of flowveil
 *   with the kill points.
 *
 * Each test prints the alerts found in only one of the two runs.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <pcap/pcap.h>

#include "e2e_util.h"
#include "testutil.h"

#define SCENARIO_DAYS 2u
#define SECONDS_PER_DAY 86400u
/* Longer than the pipeline's minimum interval between two evaluations
 * (60 s of wall-clock time, cli/pipeline.c), with a margin for the time
 * ingest takes to start. */
#define PAUSE_S "65"
#define STOP_ATTEMPTS 5

/* The fields of an alert that two runs over the same traffic must share.
 * Ids, stored-at times and the alert's raise times follow the clock. */
static const char *const compared_fields[] = {
    "detector", "severity",   "score",     "host",     "host_zone",
    "peer",     "peer_zone",  "peer_port", "proto",    "first",
    "last",     "flow_count", "summary",   "evidence", "count",
};

typedef struct scenario {
    char dir[4096];
    char pcap[4096];
    char policy[4096];
    char parts[3][4096];
    uint64_t start_s;
    uint64_t now_s; /* one hour after the last day */
} scenario;

/* Return midnight UTC of the Monday at least 14 days before the clock,
 * because the scenario's rhythm assumes a Monday and its traffic must
 * lie before the clock for a run without --now. 1970-01-05 was a Monday. */
static uint64_t past_monday_s(void)
{
    uint64_t day = ((uint64_t)time(NULL) - 14u * SECONDS_PER_DAY) / SECONDS_PER_DAY;
    uint64_t monday = day - (day - 4u) % 7u;
    return monday * SECONDS_PER_DAY;
}

/*
 * Write the packets of IN to the three files PARTS by time: before
 * FIRST_END_S, before SECOND_END_S, and the rest. Fails the test unless
 * each file gets packets.
 */
static void split_by_time(const char *in, char parts[3][4096], uint64_t first_end_s,
                          uint64_t second_end_s)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(in, errbuf);
    assert_non_null(p);
    pcap_dumper_t *out[3];
    for (int i = 0; i < 3; i++) {
        out[i] = pcap_dump_open(p, parts[i]);
        assert_non_null(out[i]);
    }
    unsigned counts[3] = {0, 0, 0};
    struct pcap_pkthdr *hdr;
    const u_char *data;
    while (pcap_next_ex(p, &hdr, &data) == 1) {
        uint64_t ts_s = (uint64_t)hdr->ts.tv_sec;
        int part = 2;
        if (ts_s < first_end_s)
            part = 0;
        else if (ts_s < second_end_s)
            part = 1;
        pcap_dump((u_char *)out[part], hdr, data);
        counts[part]++;
    }
    for (int i = 0; i < 3; i++)
        pcap_dump_close(out[i]);
    pcap_close(p);
    for (int i = 0; i < 3; i++)
        assert_true(counts[i] > 0);
}

/* Generate the scenario in a new temporary directory and split it at
 * midnight and noon of its second day, the day of the incidents. */
static void scenario_create(scenario *s)
{
    tu_make_temp_dir(s->dir, sizeof s->dir);
    char out_dir[4096], start_text[32];
    e2e_path(out_dir, s->dir, "scenario");
    e2e_path(s->pcap, out_dir, "scenario.pcap");
    e2e_path(s->policy, out_dir, "policy.yaml");
    s->start_s = past_monday_s();
    s->now_s = s->start_s + SCENARIO_DAYS * SECONDS_PER_DAY + 3600u;
    snprintf(start_text, sizeof start_text, "%llu", (unsigned long long)s->start_s);

    const char *gen[] = {e2e_env("FLOWVEIL_SCENGEN"), "--small", "--seed", "1", "--start",
                         start_text, "--output-dir", out_dir, NULL};
    e2e_run_ok(gen, s->dir, "scengen", "flowveil-scengen --small", 120);

    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "part%d.pcap", i + 1);
        e2e_path(s->parts[i], s->dir, name);
    }
    uint64_t day2_s = s->start_s + SECONDS_PER_DAY;
    split_by_time(s->pcap, s->parts, day2_s, day2_s + SECONDS_PER_DAY / 2u);
}

/* Create the store directory DB holding a copy of the key file KEY. */
static void store_with_key(const char *db, const char *key)
{
    assert_int_equal(mkdir(db, 0700), 0);
    char copy[4096];
    e2e_path(copy, db, "pseudonym.key");
    size_t len = 0;
    char *bytes = tu_read_file(key, &len);
    assert_non_null(bytes);
    tu_write_file(copy, bytes, len);
    free(bytes);
}

static int compare_texts(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Which alerts' field "count" (raises merged into the alert) to compare. */
typedef enum count_rule {
    COUNT_ALL,
    COUNT_NONE,
    COUNT_BUT_INDICATOR,    /* indicator alerts are raised again by a resume */
} count_rule;

/* Return the sorted compact JSON texts of the compared fields of each
 * alert of ALERTS (a JSON array), with their number in *COUNT. RULE
 * decides which alerts keep the field "count". */
static char **alert_texts(json_t *alerts, count_rule rule, size_t *count)
{
    size_t n = json_array_size(alerts);
    char **texts = calloc(n > 0 ? n : 1, sizeof *texts);
    assert_non_null(texts);
    for (size_t i = 0; i < n; i++) {
        json_t *alert = json_array_get(alerts, i);
        const char *detector = json_string_value(json_object_get(alert, "detector"));
        bool is_indicator = detector != NULL && strcmp(detector, "indicator") == 0;
        bool with_count = rule == COUNT_ALL || (rule == COUNT_BUT_INDICATOR && !is_indicator);
        json_t *compared = json_object();
        for (size_t f = 0; f < sizeof compared_fields / sizeof compared_fields[0]; f++) {
            if (!with_count && strcmp(compared_fields[f], "count") == 0)
                continue;
            json_t *value = json_object_get(alert, compared_fields[f]);
            if (value != NULL)
                json_object_set(compared, compared_fields[f], value);
        }
        texts[i] = json_dumps(compared, JSON_COMPACT | JSON_SORT_KEYS);
        assert_non_null(texts[i]);
        json_decref(compared);
    }
    qsort(texts, n, sizeof *texts, compare_texts);
    *count = n;
    return texts;
}

/*
 * Compare the alerts of the stores EXPECTED_DB (REFERENCE names its
 * input, such as "the whole file") and ACTUAL_DB, exported at NOW_S (0
 * for the clock), with the count of merged raises that RULE selects.
 * Prints every alert found in only one of them and fails the test if
 * there is any.
 */
static void assert_same_alerts(const char *dir, const char *expected_db, const char *actual_db,
                               const char *reference, uint64_t now_s, count_rule rule,
                               const char *what)
{
    json_t *expected = e2e_export(dir, expected_db, "alerts", now_s);
    json_t *actual = e2e_export(dir, actual_db, "alerts", now_s);
    size_t n_expected = 0, n_actual = 0;
    char **want = alert_texts(expected, rule, &n_expected);
    char **got = alert_texts(actual, rule, &n_actual);

    size_t i = 0, j = 0, missing = 0, extra = 0;
    while (i < n_expected || j < n_actual) {
        int cmp;
        if (i == n_expected)
            cmp = 1;
        else if (j == n_actual)
            cmp = -1;
        else
            cmp = strcmp(want[i], got[j]);
        if (cmp < 0) {
            printf("%s: alert of %s missing: %s\n", what, reference, want[i++]);
            missing++;
        } else if (cmp > 0) {
            printf("%s: alert not raised for %s: %s\n", what, reference, got[j++]);
            extra++;
        } else {
            i++;
            j++;
        }
    }
    printf("%s: %zu alerts, %s %zu; %zu missing, %zu extra\n", what, n_actual, reference,
           n_expected, missing, extra);

    for (size_t k = 0; k < n_expected; k++)
        free(want[k]);
    for (size_t k = 0; k < n_actual; k++)
        free(got[k]);
    free(want);
    free(got);
    json_decref(expected);
    json_decref(actual);
    assert_true(n_expected > 0);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);
}

static void test_paused_split_matches_whole_file(void **state)
{
    (void)state;
    scenario s;
    scenario_create(&s);
    char whole_db[4096], split_db[4096], key[4096];
    e2e_path(whole_db, s.dir, "whole");
    e2e_path(split_db, s.dir, "split");
    e2e_path(key, whole_db, "pseudonym.key");

    /* Without --now the pipeline's periodic work follows the clock, so
     * the pause counts as a minute of run time. */
    const char *whole[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", whole_db,
                           s.pcap, NULL};
    e2e_run_ok(whole, s.dir, "whole", "flowveil ingest of the whole file", 600);

    store_with_key(split_db, key);
    /* The second file arrives through a pipe after the pause, so ingest
     * reads the first file and then waits on standard input. */
    char pipeline[4 * 4096 + 256];
    int len = snprintf(pipeline, sizeof pipeline,
                       "(sleep " PAUSE_S "; cat '%s') | '%s' ingest "
                       "--policy '%s' --db '%s' '%s' - '%s'",
                       s.parts[1], e2e_bin(), s.policy, split_db, s.parts[0], s.parts[2]);
    assert_true(len > 0 && (size_t)len < sizeof pipeline);
    const char *split[] = {"/bin/sh", "-c", pipeline, NULL};
    e2e_run_ok(split, s.dir, "split", "flowveil ingest of the split files with a pause", 600);

    assert_same_alerts(s.dir, whole_db, split_db, "the whole file", 0, COUNT_ALL,
                       "paused split ingest");
    tu_remove_tree(s.dir);
}

/* The body of GET PATH on the server on PORT, parsed. */
static json_t *api_json(uint16_t port, const char *path)
{
    int status = 0;
    size_t len = 0;
    char *body = e2e_http_get(port, path, &status, &len);
    assert_non_null(body);
    assert_int_equal(status, 200);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    free(body);
    assert_non_null(doc);
    return doc;
}

/*
 * The counters of what the ingest runs into DB read, as the API shows
 * them: {"ingest": the summary's packets, bytes, flows and files,
 * "capture": every capture and parser counter of /api/v1/counters}.
 * Serving adds audit entries, so a test reads the audit log first.
 */
static json_t *input_counters(const char *dir, const char *db)
{
    uint16_t port = 0;
    pid_t pid = e2e_serve_start(dir, db, "serve", &port);
    json_t *summary = api_json(port, "/api/v1/summary");
    json_t *counters = api_json(port, "/api/v1/counters");
    kill(pid, SIGTERM);
    e2e_result res;
    e2e_wait(pid, dir, "serve", 20, &res);
    e2e_result_free(&res);

    json_t *ingest = json_deep_copy(json_object_get(summary, "ingest"));
    assert_true(json_is_object(ingest));
    assert_int_equal(json_object_del(ingest, "last_ingest"), 0);
    json_t *capture = json_object_get(counters, "capture");
    assert_true(json_is_object(capture));
    json_t *out = json_pack("{s:o, s:O}", "ingest", ingest, "capture", capture);
    json_decref(summary);
    json_decref(counters);
    assert_non_null(out);
    return out;
}

/* Fail the test unless the input counters of DB and EXPECTED_DB are
 * equal: in "ingest" only KEYS (NULL-terminated), in "capture" all of
 * them unless CAPTURE_PACKETS_ONLY. Prints both on a difference. */
static void assert_same_counters(const char *dir, const char *expected_db, const char *db,
                                 const char *const keys[], bool capture_packets_only)
{
    json_t *want = input_counters(dir, expected_db);
    json_t *got = input_counters(dir, db);
    bool same = true;
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_t *a = json_object_get(json_object_get(want, "ingest"), keys[i]);
        same = same && a != NULL &&
               json_equal(a, json_object_get(json_object_get(got, "ingest"), keys[i]));
    }
    json_t *want_capture = json_object_get(want, "capture");
    json_t *got_capture = json_object_get(got, "capture");
    json_int_t packets = json_integer_value(json_object_get(want_capture, "packets"));
    if (capture_packets_only)
        same = same && packets > 0 &&
               json_equal(json_object_get(want_capture, "packets"),
                          json_object_get(got_capture, "packets"));
    else
        same = same && packets > 0 && json_equal(want_capture, got_capture);
    if (!same) {
        char *a = json_dumps(want, JSON_SORT_KEYS);
        char *b = json_dumps(got, JSON_SORT_KEYS);
        printf("counters differ\n  expected (%s): %s\n  got (%s): %s\n", expected_db, a, db, b);
        free(a);
        free(b);
    }
    json_decref(want);
    json_decref(got);
    assert_true(same);
}

/* The audit log of DB (`flowveil audit show --json`) as an array. If
 * TEXT is not NULL, *TEXT receives its output (caller frees). */
static json_t *audit_entries(const char *dir, const char *db, char **text)
{
    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    e2e_result res;
    e2e_run(show, dir, "audit", 60, &res);
    assert_true(res.exited && res.status == 0);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    assert_non_null(entries);
    if (text != NULL) {
        *text = res.out;
        res.out = NULL;
    }
    e2e_result_free(&res);
    return entries;
}

/* The number of "ingest" entries in the audit log of DB. */
static size_t ingest_entries(const char *dir, const char *db)
{
    json_t *entries = audit_entries(dir, db, NULL);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const char *action =
            json_string_value(json_object_get(json_array_get(entries, i), "action"));
        if (action != NULL && strcmp(action, "ingest") == 0)
            n++;
    }
    json_decref(entries);
    return n;
}

static void test_resumed_split_matches_whole_file(void **state)
{
    (void)state;
    scenario s;
    scenario_create(&s);
    char whole_db[4096], key[4096], now_text[32];
    e2e_path(whole_db, s.dir, "whole");
    e2e_path(key, whole_db, "pseudonym.key");
    snprintf(now_text, sizeof now_text, "%llu", (unsigned long long)s.now_s);

    const char *whole[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", whole_db,
                           "--now", now_text, s.pcap, NULL};
    e2e_run_ok(whole, s.dir, "whole", "flowveil ingest of the whole file", 600);

    /* SIGTERM once the first file is read. The rest takes a few tenths
     * of a second, so the stop may come after the end, and then the test
     * tries again with a new store. */
    bool stopped = false;
    char split_db[4096];
    for (unsigned attempt = 0; attempt < STOP_ATTEMPTS && !stopped; attempt++) {
        char name[32], err_file[4096];
        snprintf(name, sizeof name, "split%u", attempt);
        e2e_path(split_db, s.dir, name);
        store_with_key(split_db, key);
        const char *argv[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", split_db,
                              "--now", now_text, s.parts[0], s.parts[1], s.parts[2], NULL};
        pid_t pid = e2e_spawn(argv, s.dir, "stopped");
        e2e_path(err_file, s.dir, "stopped.err");
        bool first_read = e2e_wait_for_text(err_file, "part1.pcap: ", 120000);
        kill(pid, SIGTERM);
        e2e_result res;
        e2e_wait(pid, s.dir, "stopped", 300, &res);
        assert_true(first_read);
        stopped = res.exited && strstr(res.err, "stopped by signal") != NULL;
        if (!res.exited || e2e_has_sanitizer_report(res.err) || res.status != (stopped ? 1 : 0)) {
            e2e_print_result("ingest stopped by SIGTERM", &res);
            fail();
        }
        e2e_result_free(&res);
        if (!stopped)
            tu_remove_tree(split_db);
    }
    assert_true(stopped);

    const char *resume[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", split_db,
                            "--now", now_text, s.parts[0], s.parts[1], s.parts[2], NULL};
    e2e_run_ok(resume, s.dir, "resume", "the resumed ingest of the split files", 600);

    /* The stopped run's counts are dropped and the resume counts the
     * whole input, so the packets read equal those of the whole file.
     * Flows cut at the stop are stored by the resume alone. */
    static const char *const read_keys[] = {"packets", "bytes", NULL};
    assert_same_counters(s.dir, whole_db, split_db, read_keys, true);

    /* Indicator alerts are raised as the records arrive, not by the
     * evaluation. One that the stopped run stored is raised again by the
     * resume and merged into it, so its count is 2. */
    assert_same_alerts(s.dir, whole_db, split_db, "the whole file", s.now_s, COUNT_NONE,
                       "resumed split ingest");
    tu_remove_tree(s.dir);
}

/* Run ARGV with flowveil-test-hooks in place of ARGV[0] and
 * FLOWVEIL_TEST_KILL_AT=POINT, and fail the test unless the kill point
 * ended it with SIGKILL. */
static void run_killed_at(const char *const argv[], const char *dir, const char *point)
{
    const char *hooked[32];
    size_t n = 0;
    while (argv[n] != NULL) {
        assert_true(n + 1 < sizeof hooked / sizeof hooked[0]);
        hooked[n] = argv[n];
        n++;
    }
    hooked[0] = e2e_env("FLOWVEIL_TEST_HOOKS_BIN");
    hooked[n] = NULL;
    assert_int_equal(setenv("FLOWVEIL_TEST_KILL_AT", point, 1), 0);
    e2e_result res;
    e2e_run(hooked, dir, point, 600, &res);
    assert_int_equal(unsetenv("FLOWVEIL_TEST_KILL_AT"), 0);
    if (res.exited || res.status != SIGKILL) {
        e2e_print_result("ingest with a kill point", &res);
        fail_msg("ingest was not killed at %s", point);
    }
    e2e_result_free(&res);
}

/* Fail the test unless the audit log of DB contains an "ingest.resume"
 * entry whose parameters contain PARAM. */
static void assert_resume_audited(const char *dir, const char *db, const char *param)
{
    char *text = NULL;
    json_t *entries = audit_entries(dir, db, &text);
    bool found = false;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_t *entry = json_array_get(entries, i);
        const char *action = json_string_value(json_object_get(entry, "action"));
        const char *params = json_string_value(json_object_get(entry, "params"));
        if (action != NULL && strcmp(action, "ingest.resume") == 0 && params != NULL &&
            strstr(params, param) != NULL)
            found = true;
    }
    if (!found)
        printf("no ingest.resume audit entry with %s in:\n%s\n", param, text);
    json_decref(entries);
    free(text);
    assert_true(found);
}

static void test_killed_after_state_save_matches(void **state)
{
    (void)state;
    /* Both kill points, and the first one once more with worker
     * threads and the detector thread when the machine has two CPUs. */
    static const struct {
        const char *point;
        const char *workers;
    } cases[] = {
        {"ingest-in-final-sweep", "1"},
        {"ingest-after-final-tick", "1"},
        {"ingest-before-checkpoint-end", "1"},
        {"ingest-after-final-tick", "2"},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    scenario s;
    scenario_create(&s);
    char clean_db[4096], key[4096], now_text[32];
    e2e_path(clean_db, s.dir, "clean");
    e2e_path(key, clean_db, "pseudonym.key");
    snprintf(now_text, sizeof now_text, "%llu", (unsigned long long)s.now_s);

    /* The first two files in one run, the third in a second one, whose
     * evaluation reads the detector state the first run saved. */
    const char *first[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", clean_db,
                           "--now", now_text, "--workers", "1", s.parts[0], s.parts[1], NULL};
    const char *second[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", clean_db,
                            "--now", now_text, s.parts[2], NULL};
    /* flowveil itself has no kill points: the variable changes nothing. */
    assert_int_equal(setenv("FLOWVEIL_TEST_KILL_AT", "ingest-after-final-tick", 1), 0);
    e2e_run_ok(first, s.dir, "clean1", "flowveil ingest of the first two files", 600);
    assert_int_equal(unsetenv("FLOWVEIL_TEST_KILL_AT"), 0);
    e2e_run_ok(second, s.dir, "clean2", "flowveil ingest of the third file", 600);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(cases[i].workers, "1") != 0 && cpus < 2) {
            printf("%s with --workers %s skipped: one CPU online\n", cases[i].point,
                   cases[i].workers);
            continue;
        }
        char name[96], db[4096];
        snprintf(name, sizeof name, "%s-workers%s", cases[i].point, cases[i].workers);
        e2e_path(db, s.dir, name);
        store_with_key(db, key);
        first[5] = db;
        first[9] = cases[i].workers;
        second[5] = db;
        run_killed_at(first, s.dir, cases[i].point);

        e2e_result res;
        e2e_run(first, s.dir, "resume", 600, &res);
        bool ok = res.exited && res.status == 0 && !e2e_has_sanitizer_report(res.err);
        bool noticed = strstr(res.err, "does not feed records to the detectors") != NULL;
        /* The killed attempt wrote no "ingest" entry, so the resume has
         * no completed ingest of these files to warn about. */
        bool warned = strstr(res.err, "already ingested completely") != NULL;
        if (!ok || !noticed || warned)
            e2e_print_result("the resumed ingest of the first two files", &res);
        e2e_result_free(&res);
        assert_true(ok);
        assert_true(noticed);
        assert_false(warned);
        assert_resume_audited(s.dir, db, "detect_saved=1");

        e2e_run_ok(second, s.dir, "after", "flowveil ingest of the third file", 600);
        /* A resume that evaluated the detectors again would raise each
         * of their alerts a second time, which only the count shows.
         * Indicator alerts are raised as records arrive, so the resume
         * raises them again anyway: their count is not compared. */
        assert_same_alerts(s.dir, clean_db, db, "the uninterrupted runs", s.now_s,
                           COUNT_BUT_INDICATOR, name);

        /* One "ingest" entry per completed run, and the input counted
         * once, as in the uninterrupted runs. Flow counts of worker
         * threads need not equal those of one thread, so with them only
         * packets are compared. */
        assert_int_equal(ingest_entries(s.dir, db), 2);
        static const char *const all_keys[] = {"packets", "bytes", "flows", "files", NULL};
        assert_same_counters(s.dir, clean_db, db, all_keys, strcmp(cases[i].workers, "1") != 0);
    }
    tu_remove_tree(s.dir);
}

/* Return the number of alerts in DB exported at NOW_S that a detector
 * evaluation raised, leaving out indicator alerts, which are raised as
 * records arrive. */
static size_t evaluated_alerts(const char *dir, const char *db, uint64_t now_s)
{
    json_t *alerts = e2e_export(dir, db, "alerts", now_s);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(alerts); i++) {
        const char *detector =
            json_string_value(json_object_get(json_array_get(alerts, i), "detector"));
        if (detector == NULL || strcmp(detector, "indicator") != 0)
            n++;
    }
    json_decref(alerts);
    return n;
}

/*
 * An ingest whose last file is not a capture keeps its checkpoint. Like
 * a stopped run it must neither evaluate the detectors nor save their
 * state, because the run that finishes the input feeds them all of it.
 * A saved state would count the first files twice. With the "detector
 * state saved" flag it would instead never see the records that only
 * the resume reads.
 */
static void test_unreadable_file_defers_detectors(void **state)
{
    (void)state;
    scenario s;
    scenario_create(&s);
    char clean_db[4096], key[4096], bad_db[4096], bad_file[4096], now_text[32];
    e2e_path(clean_db, s.dir, "clean");
    e2e_path(key, clean_db, "pseudonym.key");
    e2e_path(bad_db, s.dir, "bad");
    e2e_path(bad_file, s.dir, "not-a-capture.pcap");
    tu_write_file(bad_file, "this is not a capture file\n", 27);
    snprintf(now_text, sizeof now_text, "%llu", (unsigned long long)s.now_s);

    /* The first two files alone raise alerts when evaluated. */
    const char *clean[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", clean_db,
                           "--now", now_text, s.parts[0], s.parts[1], NULL};
    e2e_run_ok(clean, s.dir, "clean", "flowveil ingest of the first two files", 600);
    assert_true(evaluated_alerts(s.dir, clean_db, s.now_s) > 0);

    store_with_key(bad_db, key);
    const char *bad[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", bad_db,
                         "--now", now_text, s.parts[0], s.parts[1], bad_file, NULL};
    e2e_result res;
    e2e_run(bad, s.dir, "bad", 600, &res);
    bool failed = res.exited && res.status == 1 && !e2e_has_sanitizer_report(res.err);
    bool deferred = strstr(res.err, "the detectors were not evaluated") != NULL;
    bool checkpoint_kept = strstr(res.err, "so its checkpoint stays") != NULL;
    if (!failed || !deferred || !checkpoint_kept)
        e2e_print_result("ingest with a file that is not a capture", &res);
    e2e_result_free(&res);
    assert_true(failed);
    assert_true(deferred);
    assert_true(checkpoint_kept);
    assert_int_equal(evaluated_alerts(s.dir, bad_db, s.now_s), 0);

    /* Ingesting the readable files afterwards evaluates them once, as if
     * the failed run had left no detector state. */
    clean[5] = bad_db;
    e2e_run_ok(clean, s.dir, "after", "flowveil ingest of the first two files again", 600);
    assert_same_alerts(s.dir, clean_db, bad_db, "one ingest of the first two files", s.now_s,
                       COUNT_BUT_INDICATOR, "ingest after a failed file");

    /* The file alone stores nothing, so the run keeps no checkpoint and
     * prints no resume advice, and running it again is no resume. */
    char alone_db[4096];
    e2e_path(alone_db, s.dir, "alone");
    const char *alone[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", alone_db,
                           "--now", now_text, bad_file, NULL};
    for (int attempt = 0; attempt < 2; attempt++) {
        e2e_run(alone, s.dir, "alone", 120, &res);
        bool alone_failed = res.exited && res.status == 1 && !e2e_has_sanitizer_report(res.err);
        bool no_checkpoint = strstr(res.err, "keeps no checkpoint") != NULL;
        bool advised = strstr(res.err, "checkpoint stays") != NULL ||
                       strstr(res.err, "not read to its end") != NULL;
        bool resumed = strstr(res.err, "resuming an interrupted ingest") != NULL;
        if (!alone_failed || !no_checkpoint || advised || resumed)
            e2e_print_result("ingest of a file that is not a capture, alone", &res);
        e2e_result_free(&res);
        assert_true(alone_failed);
        assert_true(no_checkpoint);
        assert_false(advised);
        assert_false(resumed);
    }
    tu_remove_tree(s.dir);
}

/*
 * An ingest whose store reaches its size quota while the last file is
 * read stops storing records and exits with status 1. Its resume under
 * a larger quota must evaluate the detectors over all of the input, so
 * it raises every alert of an ingest that had room and counts the input
 * once. Without that, the failed run saved the detector state with the
 * "state saved" flag, the resume skipped the detectors, and 283 of 287
 * alerts were missing.
 */
static void test_quota_full_resume_matches(void **state)
{
    (void)state;
    scenario s;
    scenario_create(&s);
    char clean_db[4096], key[4096], quota_db[4096], quota_policy[4096], out_dir[4096],
        now_text[32];
    e2e_path(clean_db, s.dir, "clean");
    e2e_path(key, clean_db, "pseudonym.key");
    e2e_path(quota_db, s.dir, "quota");
    /* Next to the scenario's policy, whose file paths are relative. */
    e2e_path(out_dir, s.dir, "scenario");
    e2e_path(quota_policy, out_dir, "quota-policy.yaml");
    snprintf(now_text, sizeof now_text, "%llu", (unsigned long long)s.now_s);

    /* The scenario's policy with a quota of 4 MiB, which the whole file
     * passes. */
    size_t len = 0;
    char *policy = tu_read_file(s.policy, &len);
    assert_non_null(policy);
    char *retention = strstr(policy, "\nretention:\n");
    assert_non_null(retention);
    size_t head = (size_t)(retention - policy) + strlen("\nretention:\n");
    static const char quota_line[] = "  max_store_size: 4MiB\n";
    char *text = malloc(len + sizeof quota_line);
    assert_non_null(text);
    memcpy(text, policy, head);
    memcpy(text + head, quota_line, sizeof quota_line - 1);
    memcpy(text + head + sizeof quota_line - 1, policy + head, len - head);
    tu_write_file(quota_policy, text, len + sizeof quota_line - 1);
    free(text);
    free(policy);

    const char *clean[] = {e2e_bin(), "ingest", "--policy", s.policy, "--db", clean_db,
                           "--now", now_text, s.pcap, NULL};
    e2e_run_ok(clean, s.dir, "clean", "flowveil ingest of the whole file", 600);

    store_with_key(quota_db, key);
    const char *full[] = {e2e_bin(), "ingest", "--policy", quota_policy, "--db", quota_db,
                          "--now", now_text, s.pcap, NULL};
    e2e_result res;
    e2e_run(full, s.dir, "full", 600, &res);
    bool failed = res.exited && res.status == 1 && !e2e_has_sanitizer_report(res.err);
    bool quota = strstr(res.err, "size quota") != NULL;
    bool deferred = strstr(res.err, "the detectors were not evaluated") != NULL;
    if (!failed || !quota || !deferred)
        e2e_print_result("ingest into a store that reaches its quota", &res);
    e2e_result_free(&res);
    assert_true(failed);
    assert_true(quota);
    assert_true(deferred);

    clean[5] = quota_db;
    e2e_run_ok(clean, s.dir, "resume", "the resume without the quota", 600);
    assert_same_alerts(s.dir, clean_db, quota_db, "an ingest with room", s.now_s,
                       COUNT_BUT_INDICATOR, "resume after a full quota");
    static const char *const all_keys[] = {"packets", "bytes", "flows", "files", NULL};
    assert_same_counters(s.dir, clean_db, quota_db, all_keys, false);
    tu_remove_tree(s.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paused_split_matches_whole_file),
        cmocka_unit_test(test_resumed_split_matches_whole_file),
        cmocka_unit_test(test_killed_after_state_save_matches),
        cmocka_unit_test(test_unreadable_file_defers_detectors),
        cmocka_unit_test(test_quota_full_resume_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
