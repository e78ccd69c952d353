/*
 * test_workers: `flowveil ingest --workers 2` stores the same records
 * and raises the same alerts as the single-threaded ingest of the same
 * captures, and --workers rejects invalid values. Both modes log the
 * same line after each input, also when a stop signal cuts an input
 * short, and log what a stop loses when the input is standard input.
 *
 * Records are compared as multisets of their exported JSON, without the
 * per-record id and the stored-at time. Both stores share one
 * pseudonymization key, so pseudonyms compare equal.
 *
 * Aggregate records are compared exactly per capture file. When several
 * files are ingested in one run and their packet times jump back and
 * forth by years, the order in which the writer receives flows from the
 * workers can close a day bucket early and split it into two records.
 * For that run the aggregates are compared as sums per bucket key.
 *
 * The live test (root, ip(8) and tcpreplay; skipped otherwise) replays
 * corpus captures over a veth pair inside a network namespace that it
 * creates and deletes, into `flowveil capture --workers 2 -Z nobody`.
 * Both workers must receive packets, every thread must run without
 * privileges, and the records must equal the ingest of the same files
 * (without the fields a replay changes: times, RTT and end reason), which
 * also shows that no flow was split between the workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

/* The stored-at time given to ingest and export; any fixed value works. */
#define WORKERS_NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */
#define WORKERS_NOW_TEXT "1767225600"

static const char *const record_classes[] = {"flows", "dns",  "tls",    "http",
                                             "dhcp",  "ssh",  "alerts"};

/* Create store directory TO_DB holding the pseudonym.key of FROM_DB. */
static void copy_key(const char *from_db, const char *to_db)
{
    char key[4096];
    size_t len = 0;
    assert_int_equal(mkdir(to_db, 0700), 0);
    snprintf(key, sizeof key, "%.4000s/pseudonym.key", from_db);
    char *bytes = tu_read_file(key, &len);
    assert_non_null(bytes);
    snprintf(key, sizeof key, "%.4000s/pseudonym.key", to_db);
    tu_write_file(key, bytes, len);
    free(bytes);
}

/* When set, write_test_policy adds this entry to detect.beacon.allow. */
static const char *beacon_allow_entry;

/*
 * Write the example policy with reporting.k_threshold 1 into WORK and its
 * path into OUT. Export leaves out aggregate rows of fewer distinct hosts
 * than the threshold, and the corpus has few hosts per bucket, so with
 * the example's 5 the aggregates would compare as two empty sets.
 */
static void write_test_policy(const char *work, char out[4096])
{
    char example[4096];
    snprintf(example, sizeof example, "%s/policy/example-policy.yaml", e2e_source_dir());
    size_t len = 0;
    char *text = tu_read_file(example, &len);
    assert_non_null(text);
    char *at = strstr(text, "k_threshold: 5 ");
    assert_non_null(at);
    at[strlen("k_threshold: ")] = '1';
    e2e_path(out, work, "policy.yaml");
    if (beacon_allow_entry != NULL) {
        static const char first[] = "      - {domain: ntp.ubuntu.com";
        char *entry = strstr(text, first);
        assert_non_null(entry);
        size_t head = (size_t)(entry - text);
        size_t extra = strlen("      - ") + strlen(beacon_allow_entry) + 1;
        char *edited = malloc(len + extra + 1);
        assert_non_null(edited);
        memcpy(edited, text, head);
        snprintf(edited + head, extra + 1, "      - %s\n", beacon_allow_entry);
        memcpy(edited + head + extra, entry, len - head);
        free(text);
        text = edited;
        len += extra;
    }
    tu_write_file(out, text, len);
    free(text);
}

/* Ingest FILES (NFILES paths) into WORK/DB with WORKERS threads. When
 * KEY_FROM is not NULL, that store's pseudonym.key is copied first. */
static void ingest(const char *work, const char *db, const char *workers, const char *key_from,
                   const char *const *files, size_t nfiles)
{
    char db_path[4096], policy[4096];
    e2e_path(db_path, work, db);
    write_test_policy(work, policy);

    if (key_from != NULL) {
        char src[4096];
        e2e_path(src, work, key_from);
        copy_key(src, db_path);
    }

    const char *argv[64];
    size_t n = 0;
    argv[n++] = e2e_bin();
    argv[n++] = "ingest";
    argv[n++] = "--policy";
    argv[n++] = policy;
    argv[n++] = "--db";
    argv[n++] = db_path;
    argv[n++] = "--now";
    argv[n++] = WORKERS_NOW_TEXT;
    argv[n++] = "--workers";
    argv[n++] = workers;
    for (size_t i = 0; i < nfiles && n + 1 < sizeof argv / sizeof argv[0]; i++)
        argv[n++] = files[i];
    argv[n] = NULL;

    char tag[64];
    snprintf(tag, sizeof tag, "ingest-%s", db);
    e2e_result res;
    e2e_run(argv, work, tag, 600, &res);
    /* Exit 1 is fine: a corpus file cut short is reported and ingested. */
    if (!res.exited || (res.status != 0 && res.status != 1) ||
        e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest", &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_result_free(&res);
}

/* Sorted lines of canonical JSON of every record of CLS in DB, without
 * the fields that differ between runs by design. */
static json_t *canonical_records(const char *work, const char *db, const char *cls)
{
    char db_path[4096];
    e2e_path(db_path, work, db);
    json_t *records = e2e_export(work, db_path, cls, WORKERS_NOW_S);
    json_t *lines = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        json_object_del(rec, "id");
        json_object_del(rec, "stored");
        char *text = json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT);
        assert_non_null(text);
        json_array_append_new(lines, json_string(text));
        free(text);
    }
    json_decref(records);
    return lines;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* True if the two arrays of strings hold the same multiset. Prints the
 * first lines that differ, tagged with WHAT. */
static bool same_multiset(json_t *a, json_t *b, const char *what)
{
    size_t na = json_array_size(a), nb = json_array_size(b);
    const char **sa = calloc(na + 1, sizeof *sa);
    const char **sb = calloc(nb + 1, sizeof *sb);
    assert_non_null(sa);
    assert_non_null(sb);
    for (size_t i = 0; i < na; i++)
        sa[i] = json_string_value(json_array_get(a, i));
    for (size_t i = 0; i < nb; i++)
        sb[i] = json_string_value(json_array_get(b, i));
    qsort(sa, na, sizeof *sa, compare_strings);
    qsort(sb, nb, sizeof *sb, compare_strings);

    bool same = na == nb;
    size_t shown = 0;
    for (size_t i = 0; i < na && i < nb && shown < 3; i++) {
        if (strcmp(sa[i], sb[i]) != 0) {
            fprintf(stderr, "%s: first difference at sorted record %zu:\n  one worker:  %s\n"
                            "  two workers: %s\n",
                    what, i, sa[i], sb[i]);
            same = false;
            shown++;
        }
    }
    if (na != nb)
        fprintf(stderr, "%s: %zu records with one worker, %zu with two\n", what, na, nb);
    free(sa);
    free(sb);
    return same;
}

/* Sum flows, packets and bytes of the aggregate records in DB per bucket
 * key, as an object "key" -> "flows/packets/in/out". */
static json_t *aggregate_sums(const char *work, const char *db)
{
    char db_path[4096];
    e2e_path(db_path, work, db);
    json_t *records = e2e_export(work, db_path, "aggregates", WORKERS_NOW_S);
    json_t *sums = json_object();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        char key[1024];
        snprintf(key, sizeof key, "%s|%s|%s|%lld|%lld|%s",
                 json_string_value(json_object_get(rec, "bucket")),
                 json_string_value(json_object_get(rec, "bucket_start")),
                 json_string_value(json_object_get(rec, "zone")),
                 (long long)json_integer_value(json_object_get(rec, "proto")),
                 (long long)json_integer_value(json_object_get(rec, "dport")),
                 json_string_value(json_object_get(rec, "peer")));
        json_t *sum = json_object_get(sums, key);
        if (sum == NULL) {
            sum = json_pack("[IIII]", (json_int_t)0, (json_int_t)0, (json_int_t)0,
                            (json_int_t)0);
            json_object_set_new(sums, key, sum);
        }
        static const char *const fields[] = {"flows", "packets", "bytes_in", "bytes_out"};
        for (size_t f = 0; f < 4; f++) {
            json_int_t v = json_integer_value(json_array_get(sum, f)) +
                           json_integer_value(json_object_get(rec, fields[f]));
            json_array_set_new(sum, f, json_integer(v));
        }
    }
    json_decref(records);
    return sums;
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Collect the corpus capture paths into FILES (at most MAX), sorted. */
static size_t corpus_files(char files[][4096], size_t max)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/pcaps", e2e_corpus());
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL && n < max) {
        if (ent->d_name[0] == '.')
            continue;
        snprintf(files[n++], 4096, "%.3800s/%.255s", dir, ent->d_name);
    }
    closedir(d);
    qsort(files, n, sizeof files[0], compare_paths);
    return n;
}

#define MAX_CORPUS_FILES 64

/* Every corpus capture at once: the record classes equal exactly, and the
 * aggregates as sums per bucket key. */
static void test_workers_corpus_all_files(void **state)
{
    (void)state;
    char work[4096];
    tu_make_temp_dir(work, sizeof work);
    static char files[MAX_CORPUS_FILES][4096];
    size_t n = corpus_files(files, MAX_CORPUS_FILES);
    assert_true(n > 10);
    const char *paths[MAX_CORPUS_FILES];
    for (size_t i = 0; i < n; i++)
        paths[i] = files[i];

    ingest(work, "one", "1", NULL, paths, n);
    ingest(work, "two", "2", "one", paths, n);

    bool all_same = true;
    for (size_t c = 0; c < sizeof record_classes / sizeof record_classes[0]; c++) {
        json_t *a = canonical_records(work, "one", record_classes[c]);
        json_t *b = canonical_records(work, "two", record_classes[c]);
        if (!same_multiset(a, b, record_classes[c]))
            all_same = false;
        json_decref(a);
        json_decref(b);
    }
    assert_true(all_same);

    json_t *sums_one = aggregate_sums(work, "one");
    json_t *sums_two = aggregate_sums(work, "two");
    assert_true(json_object_size(sums_one) > 0);
    assert_true(json_equal(sums_one, sums_two));
    json_decref(sums_one);
    json_decref(sums_two);
    tu_remove_tree(work);
}

/* Each corpus capture on its own: every class, aggregates included,
 * equals exactly. */
static void test_workers_corpus_each_file(void **state)
{
    (void)state;
    static char files[MAX_CORPUS_FILES][4096];
    size_t n = corpus_files(files, MAX_CORPUS_FILES);
    size_t differing = 0;

    for (size_t i = 0; i < n; i++) {
        char work[4096];
        tu_make_temp_dir(work, sizeof work);
        const char *path = files[i];
        ingest(work, "one", "1", NULL, &path, 1);
        ingest(work, "two", "2", "one", &path, 1);

        static const char *const classes[] = {"flows", "dns", "tls", "http", "dhcp",
                                              "ssh", "alerts", "aggregates"};
        for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
            char what[4200];
            snprintf(what, sizeof what, "%s %s", strrchr(path, '/') + 1, classes[c]);
            json_t *a = canonical_records(work, "one", classes[c]);
            json_t *b = canonical_records(work, "two", classes[c]);
            if (!same_multiset(a, b, what))
                differing++;
            json_decref(a);
            json_decref(b);
        }
        tu_remove_tree(work);
    }
    assert_int_equal(differing, 0);
}

/* Write the demo generator's capture of PROFILE with ARG (NULL, or the
 * --flows value) to WORK/NAME and its path into OUT. */
static void generate(const char *work, const char *profile, const char *flows,
                     const char *name, char out[4096])
{
    e2e_path(out, work, name);
    const char *argv[] = {e2e_demogen(), "--profile", profile, "--output", out,
                          flows != NULL ? "--flows" : NULL, flows, NULL};
    e2e_result res;
    e2e_run(argv, work, name, 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil-demogen", &res);
        e2e_result_free(&res);
        fail_msg("the demo generator failed for profile %s", profile);
    }
    e2e_result_free(&res);
}

/* True if one of the canonical records in LINES contains TEXT. */
static bool any_record_has(json_t *lines, const char *text)
{
    for (size_t i = 0; i < json_array_size(lines); i++) {
        if (strstr(json_string_value(json_array_get(lines, i)), text) != NULL)
            return true;
    }
    return false;
}

/*
 * With --workers 2 the detectors run on a thread of their own behind the
 * writer (cli/detect_thread.c), fed copies of the stored flow and DNS
 * records. Captures that raise beacon, exfil, scan and DGA alerts must
 * give the same alerts, evidence included, as the single thread. The
 * DGA and beacon detectors read the DNS names, which the queue packs
 * and unpacks. A second run allows the beacon's domain: the beacon
 * detector then learns the peer's address from the DNS answers, and the
 * beacon alert must be missing from both runs.
 */
static void test_workers_detector_thread_alerts(void **state)
{
    (void)state;
    char work[4096];
    tu_make_temp_dir(work, sizeof work);
    char office[4096], scan[4096], names[4096];
    generate(work, "office", NULL, "office.pcap", office);
    generate(work, "scan16", "30000", "scan.pcap", scan);
    generate(work, "dnsnames", "30000", "names.pcap", names);
    const char *paths[] = {office, scan, names};

    ingest(work, "one", "1", NULL, paths, 3);
    ingest(work, "two", "2", "one", paths, 3);

    json_t *a = canonical_records(work, "one", "alerts");
    json_t *b = canonical_records(work, "two", "alerts");
    static const char *const detectors[] = {"\"detector\":\"beacon\"", "\"detector\":\"exfil\"",
                                            "\"detector\":\"scan\"", "\"detector\":\"dga\""};
    for (size_t d = 0; d < sizeof detectors / sizeof detectors[0]; d++) {
        if (!any_record_has(a, detectors[d]))
            fail_msg("the single-threaded ingest raised no alert with %s", detectors[d]);
    }
    assert_true(same_multiset(a, b, "alerts"));
    json_decref(a);
    json_decref(b);

    /* The demo's beacon calls update-check.example.net on 443/tcp. */
    beacon_allow_entry = "{domain: example.net, port: 443, proto: tcp}";
    ingest(work, "allow-one", "1", "one", &paths[0], 1);
    ingest(work, "allow-two", "2", "one", &paths[0], 1);
    beacon_allow_entry = NULL;
    a = canonical_records(work, "allow-one", "alerts");
    b = canonical_records(work, "allow-two", "alerts");
    assert_true(any_record_has(a, "\"detector\":\"exfil\""));
    assert_false(any_record_has(a, "\"detector\":\"beacon\""));
    assert_true(same_multiset(a, b, "alerts with the beacon's domain allowed"));
    json_decref(a);
    json_decref(b);
    tu_remove_tree(work);
}

/* Start `flowveil ingest --workers WORKERS - [AFTER]` into WORK/DB with
 * its standard input on a pipe, output in WORK/TAG.out and WORK/TAG.err.
 * AFTER (may be NULL) is a capture file read after standard input.
 * Returns the pid; *WRITE_FD is the pipe's write end. */
static pid_t ingest_from_pipe(const char *work, const char *db, const char *workers,
                              const char *tag, const char *after, int *write_fd)
{
    char db_path[4096], policy[4096], out_path[4096], err_path[4096], name[256];
    e2e_path(db_path, work, db);
    write_test_policy(work, policy);
    snprintf(name, sizeof name, "%s.out", tag);
    e2e_path(out_path, work, name);
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(err_path, work, name);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    posix_spawn_file_actions_addopen(&actions, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db_path,
                          "--now", WORKERS_NOW_TEXT, "--workers", workers, "-", after, NULL};
    pid_t pid = -1;
    extern char **environ;
    int rc = posix_spawn(&pid, argv[0], &actions, NULL, (char *const *)(uintptr_t)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    assert_int_equal(rc, 0);
    *write_fd = fds[1];
    return pid;
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The packet count of the exit summary line "N packets (..." in ERR, or
 * -1 when there is none. */
static long long summary_packet_count(const char *err)
{
    long long packets = -1;
    for (const char *at = strstr(err, " packets ("); at != NULL; at = strstr(at + 1, " packets (")) {
        const char *start = at;
        while (start > err && start[-1] >= '0' && start[-1] <= '9')
            start--;
        if (start < at)
            packets = strtoll(start, NULL, 10);
    }
    return packets;
}

/* The flow record count of the exit summary line ("..., N flows, ...")
 * in ERR, or -1 when there is none. */
static long long summary_flow_count(const char *err)
{
    const char *line = NULL;
    for (const char *at = strstr(err, " packets ("); at != NULL; at = strstr(at + 1, " packets ("))
        line = at;
    const char *flows = line != NULL ? strstr(line, "), ") : NULL;
    if (flows == NULL)
        return -1;
    char *end = NULL;
    long long count = strtoll(flows + 3, &end, 10);
    if (end == flows + 3 || strncmp(end, " flows,", strlen(" flows,")) != 0)
        return -1;
    return count;
}

/* The packet count of the line "notice: NAME: PREFIXN packet..." that
 * ingest logs after input NAME, or -1 when ERR has no such line. */
static long long file_line_packets(const char *err, const char *name, const char *prefix)
{
    char head[4200];
    snprintf(head, sizeof head, "notice: %.4000s: %s", name, prefix);
    const char *at = strstr(err, head);
    if (at == NULL)
        return -1;
    char *end = NULL;
    long long packets = strtoll(at + strlen(head), &end, 10);
    if (end == at + strlen(head) || strncmp(end, " packet", strlen(" packet")) != 0)
        return -1;
    return packets;
}

/* The stderr of the ingest helper's run into DB, as a new string. */
static char *ingest_log(const char *work, const char *db)
{
    char name[128], path[4096];
    snprintf(name, sizeof name, "ingest-%s.err", db);
    e2e_path(path, work, name);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    return text;
}

/* Ingest the file PATH into WORK/DB with one thread and return the flow
 * record count of its exit summary. */
static long long ingest_flow_count(const char *work, const char *db, const char *path)
{
    ingest(work, db, "1", NULL, &path, 1);
    char *log = ingest_log(work, db);
    long long flows = summary_flow_count(log);
    free(log);
    return flows;
}

/*
 * The line after each file counts the packets that the engines
 * processed, without the packets of hosts the policy excludes. With one
 * and with two workers the counts per file are equal, and they add up to
 * the packets of the exit summary. Every host of the arkime
 * capture lies in a group that the example policy excludes. The reader
 * thread of --workers 2 used to count its frames all the same.
 */
static void test_workers_file_lines_after_exclusion(void **state)
{
    (void)state;
    char work[4096], excluded[4096], kept[4096];
    tu_make_temp_dir(work, sizeof work);
    snprintf(excluded, sizeof excluded, "%s/pcaps/arkime-tls-split-client-hello.pcap",
             e2e_corpus());
    snprintf(kept, sizeof kept, "%s/pcaps/zeek-dhcp.pcap", e2e_corpus());
    const char *paths[] = {excluded, kept};

    ingest(work, "one", "1", NULL, paths, 2);
    ingest(work, "two", "2", "one", paths, 2);
    char *one = ingest_log(work, "one");
    char *two = ingest_log(work, "two");

    long long one_excluded = file_line_packets(one, excluded, "");
    long long one_kept = file_line_packets(one, kept, "");
    long long two_excluded = file_line_packets(two, excluded, "");
    long long two_kept = file_line_packets(two, kept, "");
    if (one_excluded < 0 || one_kept < 0 || two_excluded < 0 || two_kept < 0)
        fail_msg("a file line is missing:\none worker:\n%s\ntwo workers:\n%s", one, two);
    assert_true(one_kept > 0);
    assert_int_equal(two_excluded, one_excluded);
    assert_int_equal(two_kept, one_kept);
    assert_int_equal(one_excluded + one_kept, summary_packet_count(one));
    assert_int_equal(two_excluded + two_kept, summary_packet_count(two));
    free(one);
    free(two);
    tu_remove_tree(work);
}

/*
 * Ingest from a pipe that stays open with no data, with one and with two
 * workers. SIGINT must end the run at once, although no packet arrives:
 * the reader thread of --workers 2 used to block every signal, so its
 * read waited for data forever. SIGHUP must stop it the same way, not
 * kill it, unless the ingest was started with SIGHUP ignored (nohup).
 * SIGUSR1 (log the counters) during such a
 * wait must not cut the read short: the rest of the capture arrives
 * afterwards and is read to its end.
 * A capture file named after "-" is never opened after the SIGINT, so it
 * must get no line, and standard input gets a "stopped" line without the
 * resume hint of files: a pipe cannot be read again. For the same reason
 * the stop stores the open flows instead of leaving them to a resume.
 */
static void test_workers_stdin_signals(void **state)
{
    (void)state;
    /* A child that ended early makes a write fail with EPIPE, which the
     * check in write_all reports, instead of killing the test. */
    signal(SIGPIPE, SIG_IGN);
    char work[4096], capture[4096];
    tu_make_temp_dir(work, sizeof work);
    generate(work, "office", NULL, "office.pcap", capture);
    size_t len = 0;
    char *bytes = tu_read_file(capture, &len);
    assert_non_null(bytes);
    size_t first = len / 3;

    /* The packets of the whole file, as a file ingest counts them. */
    const char *path = capture;
    ingest(work, "whole", "1", NULL, &path, 1);
    char err_path[4096];
    e2e_path(err_path, work, "ingest-whole.err");
    size_t err_len = 0;
    char *whole_err = tu_read_file(err_path, &err_len);
    assert_non_null(whole_err);
    long long whole_packets = summary_packet_count(whole_err);
    free(whole_err);
    assert_true(whole_packets > 0);

    /* The flows of the first third alone, each stored at the end of the
     * file. A stop while the pipe waits after that part stores the same
     * flows, because no resume could store the open ones later. */
    char third[4096];
    e2e_path(third, work, "first-third.pcap");
    tu_write_file(third, bytes, first);
    long long third_flows = ingest_flow_count(work, "third", third);
    assert_true(third_flows > 0);

    static const char *const worker_counts[] = {"1", "2"};
    for (size_t i = 0; i < 2; i++) {
        const char *workers = worker_counts[i];
        char db[64], tag[64];
        e2e_result res;
        int fd;

        /* SIGINT, then SIGHUP (a closed terminal), while the pipe is
         * open and idle: both stop the ingest cleanly. */
        static const int stop_signals[] = {SIGINT, SIGHUP};
        for (size_t k = 0; k < 2; k++) {
            const char *sig_name = stop_signals[k] == SIGINT ? "SIGINT" : "SIGHUP";
            snprintf(db, sizeof db, "stop-%s-%s", sig_name, workers);
            snprintf(tag, sizeof tag, "stdin-stop-%s-%s", sig_name, workers);
            pid_t pid = ingest_from_pipe(work, db, workers, tag, capture, &fd);
            write_all(fd, bytes, first);
            pause_ms(1500);
            assert_int_equal(kill(pid, stop_signals[k]), 0);
            e2e_wait(pid, work, tag, 30, &res);
            close(fd);
            if (!res.exited || e2e_has_sanitizer_report(res.err) ||
                strstr(res.err, "damaged") != NULL) {
                e2e_print_result("ingest stopped while its input pipe was idle", &res);
                fail_msg("--workers %s: %s did not end the ingest cleanly", workers, sig_name);
            }
            long long stopped_at =
                file_line_packets(res.err, "standard input", "stopped by signal after ");
            if (stopped_at <= 0)
                fail_msg("--workers %s, %s: no 'stopped by signal after N packets' line for "
                         "standard input:\n%s",
                         workers, sig_name, res.err);
            assert_int_equal(stopped_at, summary_packet_count(res.err));
            assert_int_equal(file_line_packets(res.err, "-", ""), -1);
            assert_int_equal(res.status, 1);
            assert_null(strstr(res.err, capture));
            assert_null(strstr(res.err, "run the same command again"));
            assert_null(strstr(res.err, "the resume stores them"));
            assert_non_null(strstr(res.err, "standard input cannot be read again"));
            assert_int_equal(summary_flow_count(res.err), third_flows);
            e2e_result_free(&res);
        }

        /* SIGUSR1 while the pipe is idle, then the rest of the file. */
        snprintf(db, sizeof db, "counters-%s", workers);
        snprintf(tag, sizeof tag, "stdin-counters-%s", workers);
        pid_t pid = ingest_from_pipe(work, db, workers, tag, NULL, &fd);
        write_all(fd, bytes, first);
        pause_ms(1500);
        assert_int_equal(kill(pid, SIGUSR1), 0);
        pause_ms(200);
        assert_int_equal(kill(pid, SIGUSR1), 0);
        write_all(fd, bytes + first, len - first);
        close(fd);
        e2e_wait(pid, work, tag, 120, &res);
        if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
            e2e_print_result("ingest that received SIGUSR1 while its input pipe was idle", &res);
            fail_msg("--workers %s: the ingest did not finish after SIGUSR1", workers);
        }
        assert_non_null(strstr(res.err, "counters: "));
        assert_int_equal(summary_packet_count(res.err), whole_packets);
        e2e_result_free(&res);

        /* Started with SIGHUP ignored, as nohup does: a SIGHUP while the
         * pipe is idle changes nothing, and the rest of the file is read. */
        snprintf(db, sizeof db, "nohup-%s", workers);
        snprintf(tag, sizeof tag, "stdin-nohup-%s", workers);
        signal(SIGHUP, SIG_IGN);
        pid = ingest_from_pipe(work, db, workers, tag, NULL, &fd);
        signal(SIGHUP, SIG_DFL);
        write_all(fd, bytes, first);
        pause_ms(1500);
        assert_int_equal(kill(pid, SIGHUP), 0);
        pause_ms(200);
        write_all(fd, bytes + first, len - first);
        close(fd);
        e2e_wait(pid, work, tag, 120, &res);
        if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
            e2e_print_result("ingest started with SIGHUP ignored", &res);
            fail_msg("--workers %s: an ignored SIGHUP stopped the ingest", workers);
        }
        assert_null(strstr(res.err, "stopped by signal"));
        assert_int_equal(summary_packet_count(res.err), whole_packets);
        e2e_result_free(&res);
    }
    free(bytes);
    tu_remove_tree(work);
}

/* Hard links to one capture, so each input has its own name. */
#define STOP_INPUTS 16

/*
 * SIGINT in the middle of a run over STOP_INPUTS regular files, with one
 * and with two workers. The input being read at the stop gets a
 * "stopped by signal after N packets" line with the resume hint, the
 * inputs before it their "processed" lines, and the inputs after it,
 * never opened, no line at all. The signal goes out once the first
 * commit line shows that records flow, and each input takes about half
 * a second, so it lands inside an input.
 * NOTE: a stop in the microseconds between two inputs would leave no
 * stopped line and fail this test.
 */
static void test_workers_stop_in_file_reported(void **state)
{
    (void)state;
    char work[4096], capture[4096], policy[4096];
    tu_make_temp_dir(work, sizeof work);
    generate(work, "dnsnames", "100000", "names.pcap", capture);
    write_test_policy(work, policy);
    static char inputs[STOP_INPUTS][4096];
    for (size_t i = 0; i < STOP_INPUTS; i++) {
        char name[64];
        snprintf(name, sizeof name, "names-%02zu.pcap", i);
        e2e_path(inputs[i], work, name);
        assert_int_equal(link(capture, inputs[i]), 0);
    }

    static const char *const worker_counts[] = {"1", "2"};
    for (size_t w = 0; w < 2; w++) {
        const char *workers = worker_counts[w];
        char db[4096], name[64], err_path[4096];
        snprintf(name, sizeof name, "stop-db-%s", workers);
        e2e_path(db, work, name);
        const char *argv[12 + STOP_INPUTS] = {e2e_bin(), "ingest", "--policy", policy, "--db",
                                              db, "--now", WORKERS_NOW_TEXT, "--workers",
                                              workers};
        for (size_t i = 0; i < STOP_INPUTS; i++)
            argv[10 + i] = inputs[i];
        snprintf(name, sizeof name, "stop-%s.err", workers);
        e2e_path(err_path, work, name);
        snprintf(name, sizeof name, "stop-%s", workers);

        pid_t pid = e2e_spawn(argv, work, name);
        if (!e2e_wait_for_text(err_path, "committed ", 60000))
            fail_msg("--workers %s: no commit line within 60 s", workers);
        assert_int_equal(kill(pid, SIGINT), 0);
        e2e_result res;
        e2e_wait(pid, work, name, 120, &res);
        if (!res.exited || res.status != 1 || e2e_has_sanitizer_report(res.err) ||
            strstr(res.err, "the resume stores them") == NULL) {
            e2e_print_result("ingest stopped by SIGINT", &res);
            fail_msg("--workers %s: the ingest did not stop on SIGINT", workers);
        }

        /* Inputs read to the end, then the one the stop cut short. */
        size_t i = 0;
        long long packets = 0;
        for (; i < STOP_INPUTS && file_line_packets(res.err, inputs[i], "") >= 0; i++)
            packets += file_line_packets(res.err, inputs[i], "");
        if (i == STOP_INPUTS)
            fail_msg("--workers %s: every input was read before the stop:\n%s", workers,
                     res.err);
        long long stopped_at =
            file_line_packets(res.err, inputs[i], "stopped by signal after ");
        if (stopped_at < 0)
            fail_msg("--workers %s: no 'stopped by signal' line for %s:\n%s", workers,
                     inputs[i], res.err);
        const char *line = strstr(res.err, "stopped by signal after ");
        const char *line_end = strchr(line, '\n');
        const char *hint = strstr(line, "; run the same command again to resume");
        assert_true(hint != NULL && (line_end == NULL || hint < line_end));
        assert_int_equal(packets + stopped_at, summary_packet_count(res.err));
        for (size_t later = i + 1; later < STOP_INPUTS; later++) {
            if (strstr(res.err, inputs[later]) != NULL)
                fail_msg("--workers %s: %s was never opened but has a line:\n%s", workers,
                         inputs[later], res.err);
        }
        e2e_result_free(&res);
    }
    tu_remove_tree(work);
}

/*
 * SIGTERM after the last input was read, while the flows still open are
 * flushed (about 300,000 unanswered SYNs take seconds to store), with
 * one and with two workers. Nothing is left to cut short, so the run
 * completes: exit status 0, every flow stored, no "did not finish". The
 * flag used to be read again after the flush, so such a run exited 0
 * but kept its checkpoint and logged that it did not finish.
 */
static void test_workers_stop_after_input_read(void **state)
{
    (void)state;
    char work[4096], capture[4096], policy[4096];
    tu_make_temp_dir(work, sizeof work);
    generate(work, "synflood", "300000", "syn.pcap", capture);
    write_test_policy(work, policy);
    long long whole_flows = ingest_flow_count(work, "whole", capture);
    assert_true(whole_flows > 250000);

    static const char *const worker_counts[] = {"1", "2"};
    for (size_t w = 0; w < 2; w++) {
        const char *workers = worker_counts[w];
        char db[4096], name[64], err_path[4096], line[4200];
        snprintf(name, sizeof name, "late-db-%s", workers);
        e2e_path(db, work, name);
        const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now",
                              WORKERS_NOW_TEXT, "--workers", workers, capture, NULL};
        snprintf(name, sizeof name, "late-%s.err", workers);
        e2e_path(err_path, work, name);
        snprintf(name, sizeof name, "late-%s", workers);

        pid_t pid = e2e_spawn(argv, work, name);
        snprintf(line, sizeof line, "%.4000s: ", capture);
        if (!e2e_wait_for_text(err_path, " packets processed", 60000))
            fail_msg("--workers %s: no line for the input within 60 s", workers);
        assert_int_equal(kill(pid, SIGTERM), 0);
        e2e_result res;
        e2e_wait(pid, work, name, 120, &res);
        if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
            e2e_print_result("ingest stopped after its input was read", &res);
            fail_msg("--workers %s: a stop after the last input did not complete the run",
                     workers);
        }
        if (strstr(res.err, "the run was finished") == NULL)
            fail_msg("--workers %s: the stop did not land in the flush (the run ended "
                     "first?):\n%s",
                     workers, res.err);
        assert_non_null(strstr(res.err, line));
        assert_null(strstr(res.err, "stopped by signal"));
        assert_null(strstr(res.err, "did not finish"));
        assert_int_equal(summary_flow_count(res.err), whole_flows);
        e2e_result_free(&res);
    }
    tu_remove_tree(work);
}

/*
 * SIGUSR1 while one thread reads a long file: the counters line comes at
 * the next commit, before the file's own line, not when the file ends.
 */
static void test_counters_during_long_file(void **state)
{
    (void)state;
    char work[4096], capture[4096], policy[4096], db[4096], err_path[4096];
    tu_make_temp_dir(work, sizeof work);
    generate(work, "dnsnames", "300000", "names.pcap", capture);
    write_test_policy(work, policy);
    e2e_path(db, work, "db");
    e2e_path(err_path, work, "usr1.err");
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now",
                          WORKERS_NOW_TEXT, capture, NULL};

    pid_t pid = e2e_spawn(argv, work, "usr1");
    if (!e2e_wait_for_text(err_path, "committed ", 60000))
        fail_msg("no commit line within 60 s");
    assert_int_equal(kill(pid, SIGUSR1), 0);
    e2e_result res;
    e2e_wait(pid, work, "usr1", 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("ingest that received SIGUSR1 during a file", &res);
        fail_msg("the ingest did not finish after SIGUSR1");
    }
    const char *counters = strstr(res.err, "counters: ");
    const char *file_line = strstr(res.err, " packets processed");
    if (counters == NULL || file_line == NULL || counters > file_line)
        fail_msg("the counters line did not come before the end of the file:\n%.3000s",
                 res.err);
    e2e_result_free(&res);
    tu_remove_tree(work);
}

/* The packet number P of the last "committed N records up to packet P"
 * line in LOG, or -1 when LOG has none. Fails on a line with P = 0. */
static long long last_commit_packet(const char *log)
{
    static const char key[] = "records up to packet ";
    long long last = -1;
    for (const char *at = strstr(log, key); at != NULL; at = strstr(at + 1, key)) {
        last = strtoll(at + strlen(key), NULL, 10);
        if (last == 0)
            fail_msg("a commit line says 'up to packet 0':\n%s", log);
    }
    return last;
}

/* With --workers 2 the commit lines count the packets the workers read
 * (the pipeline's own engine reads none), and the last one equals the
 * packets of the exit summary. */
static void test_workers_commit_lines_count_packets(void **state)
{
    (void)state;
    char work[4096], db[4096], policy[4096], capture[4096];
    tu_make_temp_dir(work, sizeof work);
    e2e_path(db, work, "db");
    write_test_policy(work, policy);
    snprintf(capture, sizeof capture, "%s/pcaps/ndpi-emotet.pcap", e2e_corpus());
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now",
                          WORKERS_NOW_TEXT, "--workers", "2", capture, NULL};
    e2e_result res;
    e2e_run(argv, work, "ingest-commits", 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest --workers 2", &res);
        e2e_result_free(&res);
        fail();
    }
    long long committed_up_to = last_commit_packet(res.err);
    if (committed_up_to < 0)
        fail_msg("no commit line in:\n%s", res.err);
    const char *summary = strstr(res.err, "notice: ");
    long long summary_packets = -1;
    for (; summary != NULL; summary = strstr(summary + 1, "notice: ")) {
        char *end = NULL;
        long long n = strtoll(summary + strlen("notice: "), &end, 10);
        if (end != NULL && strncmp(end, " packets (", strlen(" packets (")) == 0)
            summary_packets = n;
    }
    assert_true(summary_packets > 0);
    assert_int_equal(committed_up_to, summary_packets);
    e2e_result_free(&res);
    tu_remove_tree(work);
}

/* The number of commit lines in LOG (at notice or info level), and in
 * *LAST_TOTAL the record count N of the last "committed N records" line
 * (0 without one). */
static size_t commit_lines(const char *log, unsigned long long *last_total)
{
    static const char key[] = ": committed ";
    size_t lines = 0;
    *last_total = 0;
    for (const char *at = strstr(log, key); at != NULL; at = strstr(at + 1, key)) {
        lines++;
        *last_total = strtoull(at + strlen(key), NULL, 10);
    }
    return lines;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Without -v, an ingest of many commits logs the first commit, one line
 * every 10 seconds and the last commit; with -v, every commit. Both end
 * with the same count of stored records. */
static void test_commit_lines_rate_limited(void **state)
{
    (void)state;
    char work[4096], policy[4096], capture[4096], db[4096], db_verbose[4096];
    tu_make_temp_dir(work, sizeof work);
    generate(work, "dnsnames", "100000", "names.pcap", capture);
    write_test_policy(work, policy);
    e2e_path(db, work, "db");
    e2e_path(db_verbose, work, "db-verbose");
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now",
                          WORKERS_NOW_TEXT, capture, NULL, NULL};

    e2e_result res;
    double start = now_seconds();
    e2e_run(argv, work, "quiet", 300, &res);
    double elapsed = now_seconds() - start;
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest", &res);
        fail();
    }
    unsigned long long total = 0;
    size_t lines = commit_lines(res.err, &total);
    /* The first line, the last one and one per 10 seconds of the run. */
    size_t allowed = 2 + (size_t)(elapsed / 10.0);
    if (lines < 2 || lines > allowed || total < 4 * 4096ull) {
        e2e_print_result("flowveil ingest without -v", &res);
        fail_msg("%zu commit lines in %.1f s (expected 2 to %zu) for %llu records", lines,
                 elapsed, allowed, total);
    }
    e2e_result_free(&res);

    argv[5] = db_verbose;
    argv[9] = "-v";
    e2e_run(argv, work, "verbose", 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest -v", &res);
        fail();
    }
    unsigned long long total_verbose = 0;
    size_t lines_verbose = commit_lines(res.err, &total_verbose);
    /* A commit contains at most 4096 records. */
    if (total_verbose != total || lines_verbose < total / 4096) {
        e2e_print_result("flowveil ingest -v", &res);
        fail_msg("-v logged %zu commit lines ending at %llu records; without -v the last "
                 "line reported %llu records, and that many records need at least %llu commits",
                 lines_verbose, total_verbose, total, total / 4096);
    }
    e2e_result_free(&res);
    tu_remove_tree(work);
}

/* Run `flowveil ingest --workers VALUE` and expect the usage exit status
 * with a message naming the option. */
static void expect_workers_rejected(const char *value)
{
    char work[4096], db[4096], policy[4096], capture[4096];
    tu_make_temp_dir(work, sizeof work);
    e2e_path(db, work, "db");
    snprintf(policy, sizeof policy, "%s/policy/example-policy.yaml", e2e_source_dir());
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-dhcp.pcap", e2e_corpus());
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                          "--workers", value, capture, NULL};
    e2e_result res;
    e2e_run(argv, work, "ingest", 60, &res);
    if (!res.exited || res.status != 2 || strstr(res.err, "--workers") == NULL) {
        e2e_print_result(value, &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_result_free(&res);
    tu_remove_tree(work);
}

static void test_workers_invalid_values_rejected(void **state)
{
    (void)state;
    expect_workers_rejected("0");
    expect_workers_rejected("-1");
    expect_workers_rejected("two");
    expect_workers_rejected("2x");
    expect_workers_rejected("100000");
    expect_workers_rejected("");
}


/* ---- live capture with two workers ------------------------------------ */

/* Ethernet captures whose frames fit the snap length and that last less
 * than 30 s (the shortest idle timeout), so a replay at full speed ends
 * no flow differently from the file. */
static const char *const live_replayed[] = {
    "zeek-single-conn.pcap",
    "zeek-ssh1-ssh2-fingerprints.pcap",
    "zeek-dhcp.pcap",
    "zeek-5-pings.pcap",
    "zeek-chrome-1250-tls-x25519-kyber.pcap",
    "arkime-tls-split-client-hello.pcap",
    "arkime-dns-tcp.pcap",
    "zeek-hrr.pcap",
    "zeek-quicv2-http3-443.pcap",
};
#define LIVE_REPLAYED_COUNT (sizeof live_replayed / sizeof live_replayed[0])

static const char *const live_classes[] = {"flows", "dns", "tls", "http", "dhcp", "ssh"};
static const char *const replay_fields[] = {"id",    "stored", "first",  "last", "first_us",
                                            "last_us", "ts",   "ts_us", "rtt_us", "end"};

static int run_quiet(const char *const argv[], const char *dir, const char *tag)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 60, &res);
    int status = res.exited ? res.status : 128 + res.status;
    if (status != 0)
        e2e_print_result(argv[0], &res);
    e2e_result_free(&res);
    return status;
}

/* Records of the live classes in DB as sorted canonical strings, without
 * the fields a replay changes. */
static json_t *replay_records(const char *dir, const char *db)
{
    json_t *all = json_array();
    for (size_t c = 0; c < sizeof live_classes / sizeof live_classes[0]; c++) {
        json_t *records = e2e_export(dir, db, live_classes[c], 0);
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r) {
            for (size_t f = 0; f < sizeof replay_fields / sizeof replay_fields[0]; f++)
                (void)json_object_del(r, replay_fields[f]);
            char *text = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
            assert_non_null(text);
            json_array_append_new(all, json_string(text));
            free(text);
        }
        json_decref(records);
    }
    return all;
}

/* Copy the value of FIELD from the status file at PATH into OUT. */
static void status_field(const char *path, const char *field, char *out, size_t out_len)
{
    char *status = tu_read_file(path, NULL);
    assert_non_null(status);
    char key[32];
    snprintf(key, sizeof key, "\n%s:\t", field);
    const char *at = strstr(status, key);
    assert_non_null(at);
    at += strlen(key);
    size_t n = strcspn(at, "\n");
    assert_true(n < out_len);
    memcpy(out, at, n);
    out[n] = '\0';
    free(status);
}

/* Check every thread of PID: user nobody, every capability set empty,
 * no_new_privs set. Prints each violation and returns their number;
 * *THREADS receives the number of threads checked. */
static size_t privileged_thread_settings(pid_t pid, size_t *threads)
{
    char task_dir[64];
    snprintf(task_dir, sizeof task_dir, "/proc/%ld/task", (long)pid);
    DIR *d = opendir(task_dir);
    assert_non_null(d);
    size_t violations = 0;
    struct dirent *ent;
    *threads = 0;
    while ((ent = readdir(d)) != NULL) {
        if (ent->d_name[0] == '.')
            continue;
        char path[128], value[256];
        snprintf(path, sizeof path, "%s/%.32s/status", task_dir, ent->d_name);
        status_field(path, "Uid", value, sizeof value);
        if (strcmp(value, "65534\t65534\t65534\t65534") != 0) {
            printf("thread %s runs with uids %s, expected nobody\n", ent->d_name, value);
            violations++;
        }
        static const char *const sets[] = {"CapPrm", "CapEff", "CapBnd", "CapAmb"};
        for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
            status_field(path, sets[i], value, sizeof value);
            if (strcmp(value, "0000000000000000") != 0) {
                printf("thread %s has %s %s, expected 0\n", ent->d_name, sets[i], value);
                violations++;
            }
        }
        status_field(path, "NoNewPrivs", value, sizeof value);
        if (strcmp(value, "1") != 0) {
            printf("thread %s has NoNewPrivs %s, expected 1\n", ent->d_name, value);
            violations++;
        }
        (*threads)++;
    }
    closedir(d);
    return violations;
}

/* Packets worker INDEX reported in LOG ("worker N: P packets"), or -1. */
static long long worker_packets(const char *log, unsigned index)
{
    char key[32];
    snprintf(key, sizeof key, "worker %u: ", index);
    const char *at = strstr(log, key);
    if (at == NULL)
        return -1;
    return strtoll(at + strlen(key), NULL, 10);
}

static void test_workers_live_fanout(void **state)
{
    (void)state;
    if (geteuid() != 0 || access("/usr/sbin/ip", X_OK) != 0 ||
        access("/usr/bin/tcpreplay", X_OK) != 0) {
        printf("skipped: needs root, /usr/sbin/ip and /usr/bin/tcpreplay\n");
        skip();
    }
    char dir[4096], ns[64], policy[4096], ref[4096], live[4096];
    tu_make_temp_dir(dir, sizeof dir);
    snprintf(ns, sizeof ns, "fvworkers%ld", (long)getpid());
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "3650d");
    e2e_path(ref, dir, "ref");
    e2e_path(live, dir, "live");

    /* The reference first, so the live store can share its key and MAC
     * pseudonyms compare equal. */
    char pcaps[4096];
    e2e_path(pcaps, e2e_corpus(), "pcaps");
    char files[LIVE_REPLAYED_COUNT][4096];
    for (size_t i = 0; i < LIVE_REPLAYED_COUNT; i++)
        e2e_path(files[i], pcaps, live_replayed[i]);
    const char *ingest_argv[8 + LIVE_REPLAYED_COUNT + 1];
    size_t n = 0;
    ingest_argv[n++] = e2e_bin();
    ingest_argv[n++] = "ingest";
    ingest_argv[n++] = "--policy";
    ingest_argv[n++] = policy;
    ingest_argv[n++] = "--db";
    ingest_argv[n++] = ref;
    for (size_t i = 0; i < LIVE_REPLAYED_COUNT; i++)
        ingest_argv[n++] = files[i];
    ingest_argv[n] = NULL;
    assert_int_equal(run_quiet(ingest_argv, dir, "ingest"), 0);
    copy_key(ref, live);

    /* Both veth ends live in the namespace, so nothing reaches the host. */
    const char *add[] = {"/usr/sbin/ip", "netns", "add", ns, NULL};
    const char *veth[] = {"/usr/sbin/ip", "-n", ns, "link", "add", "va", "mtu", "65535",
                          "type", "veth", "peer", "name", "vb", "mtu", "65535", NULL};
    const char *no_v6[] = {"/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/sysctl", "-qw",
                           "net.ipv6.conf.all.disable_ipv6=1", NULL};
    const char *no_v6_default[] = {"/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/sysctl",
                                   "-qw", "net.ipv6.conf.default.disable_ipv6=1", NULL};
    const char *up_a[] = {"/usr/sbin/ip", "-n", ns, "link", "set", "va", "up", NULL};
    const char *up_b[] = {"/usr/sbin/ip", "-n", ns, "link", "set", "vb", "up", NULL};
    const char *del[] = {"/usr/sbin/ip", "netns", "del", ns, NULL};
    assert_int_equal(run_quiet(add, dir, "netns-add"), 0);
    bool ok = run_quiet(veth, dir, "veth") == 0 && run_quiet(no_v6, dir, "sysctl") == 0 &&
              run_quiet(no_v6_default, dir, "sysctl-default") == 0 &&
              run_quiet(up_a, dir, "up-a") == 0 && run_quiet(up_b, dir, "up-b") == 0;
    if (!ok) {
        (void)run_quiet(del, dir, "netns-del");
        fail_msg("could not set up the veth pair in namespace %s", ns);
    }

    char err_file[4096];
    e2e_path(err_file, dir, "capture.err");
    const char *capture[] = {"/usr/sbin/ip", "netns", "exec", ns, e2e_bin(), "capture",
                             "--policy", policy, "--db", live, "-i", "vb", "-Z", "nobody",
                             "--workers", "2", "--log", "stderr", NULL};
    pid_t pid = e2e_spawn(capture, dir, "capture");
    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        (void)run_quiet(del, dir, "netns-del");
        e2e_print_result("flowveil capture --workers 2 did not start", &res);
        e2e_result_free(&res);
        fail();
    }
    size_t threads = 0;
    size_t violations = privileged_thread_settings(pid, &threads);

    for (size_t i = 0; i < LIVE_REPLAYED_COUNT; i++) {
        const char *replay[] = {"/usr/sbin/ip", "netns", "exec", ns, "/usr/bin/tcpreplay",
                                "-q", "--topspeed", "-i", "va", files[i], NULL};
        assert_int_equal(run_quiet(replay, dir, "tcpreplay"), 0);
    }
    /* A TPACKET_V3 block is handed over at the latest after the 100 ms
     * timeout; the writer replays records within milliseconds. */
    e2e_sleep_ms(1500);
    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 30, &res);
    (void)run_quiet(del, dir, "netns-del");
    /* The writer and the two workers at least. */
    assert_true(threads >= 3);
    assert_int_equal(violations, 0);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture --workers 2", &res);
        e2e_result_free(&res);
        fail();
    }
    long long first = worker_packets(res.err, 0);
    long long second = worker_packets(res.err, 1);
    printf("worker 0: %lld packets, worker 1: %lld packets\n", first, second);
    assert_true(first > 0);
    assert_true(second > 0);
    assert_non_null(strstr(res.err, "0 records dropped for a full queue"));
    /* A kernel drop would make the comparison meaningless. */
    assert_null(strstr(res.err, "the kernel dropped"));
    e2e_result_free(&res);


    json_t *expected = replay_records(dir, ref);
    json_t *got = replay_records(dir, live);
    assert_true(json_array_size(expected) > 0);
    assert_true(same_multiset(expected, got, "live --workers 2 against ingest"));
    json_decref(expected);
    json_decref(got);
    tu_remove_tree(dir);
}

/* An argument runs only the tests whose names match it (a cmocka
 * pattern such as "*stdin*"). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_invalid_values_rejected),
        cmocka_unit_test(test_workers_commit_lines_count_packets),
        cmocka_unit_test(test_commit_lines_rate_limited),
        cmocka_unit_test(test_workers_file_lines_after_exclusion),
        cmocka_unit_test(test_workers_corpus_all_files),
        cmocka_unit_test(test_workers_corpus_each_file),
        cmocka_unit_test(test_workers_detector_thread_alerts),
        cmocka_unit_test(test_workers_stdin_signals),
        cmocka_unit_test(test_workers_stop_in_file_reported),
        cmocka_unit_test(test_workers_stop_after_input_read),
        cmocka_unit_test(test_counters_during_long_file),
        cmocka_unit_test(test_workers_live_fanout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
