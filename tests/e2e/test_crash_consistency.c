/*
 * test_crash_consistency: `flowveil ingest` and `flowveil capture` are
 * killed with SIGKILL at random points, and after each kill the store
 * must open, `flowveil audit verify` must pass, every record the killed
 * process reported as committed ("committed N records up to packet P:
 * flows=.. dns=.." on stderr) must be stored, no record may be stored
 * twice, every record must decrypt (the data key of its day exists) and
 * no temporary file may be left in the store directory.
 *
 * Ingest: a chain of kills on one store, then a run to the end. After
 * each kill every class must hold at least the reported committed count
 * and at most the count of a reference ingest of the same files, which
 * uses the same pseudonymization key and --now. After the final run the
 * records must equal the reference's as a multiset, so resuming skipped
 * exactly what the killed attempts had committed.
 *
 * Capture (root only, skipped otherwise) records DNS queries that the
 * test sends over loopback to 127.0.0.1:53. Each stored query name must
 * be one the test sent, and stored once.
 *
 * FLOWVEIL_CRASH_KILLS sets the number of kills (default 200, one in ten
 * of them for capture); FLOWVEIL_CRASH_SEED fixes the random kill points
 * (the seed is printed either way). scripts/crash-test.sh runs 1,000.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define NOW_S "1796100000"
#define DEFAULT_KILLS 200u
#define KILLS_PER_CHAIN 10u

/* Classes the pipeline writes through the queue. Alerts are left out:
 * a resumed run may raise an alert again, and the alert life cycle merges
 * it into the stored one. */
static const char *const queued_classes[] = {"flows", "dns", "tls", "http", "dhcp", "aggregates"};
#define CLASS_COUNT (sizeof queued_classes / sizeof queued_classes[0])

/* Corpus captures, ingested in this order; together they hold flows,
 * DNS, TLS, HTTP and DHCP records, and the store commits after each. */
static const char *const corpus_files[] = {
    "zeek-methods.pcap", "ndpi-emotet.pcap", "ndpi-dns-tunnel-iodine.pcap",
    "ndpi-log4j-webapp-exploit.pcap", "zeek-dhcp.pcap", "zeek-nmap-vsn.pcap",
    "arkime-gtp-iphone.pcap",
};
#define CORPUS_COUNT (sizeof corpus_files / sizeof corpus_files[0])
/* Room for ingest_argv: the program, "ingest", seven options and values,
 * the files and the NULL. */
#define INGEST_ARGV_MAX (9 + CORPUS_COUNT + 1)

/* xorshift64*: reproducible kill points from the printed seed. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static void rng_seed(void)
{
    const char *text = getenv("FLOWVEIL_CRASH_SEED");
    uint64_t seed = text != NULL ? strtoull(text, NULL, 10) : (uint64_t)time(NULL);
    if (seed == 0)
        seed = 1;
    printf("crash test seed %llu (set FLOWVEIL_CRASH_SEED to repeat)\n",
           (unsigned long long)seed);
    rng_state = seed;
}

static unsigned total_kills(void)
{
    const char *text = getenv("FLOWVEIL_CRASH_KILLS");
    if (text == NULL || text[0] == '\0')
        return DEFAULT_KILLS;
    unsigned long v = strtoul(text, NULL, 10);
    return v > 0 && v <= 1000000ul ? (unsigned)v : DEFAULT_KILLS;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------------------------------------------------------------------- */
/* Checks shared by both commands                                          */
/* ---------------------------------------------------------------------- */

/* Parse the last "committed N records up to packet P: ..." line of TEXT
 * into COUNTS (indexed like queued_classes). Returns false if none. */
static bool last_committed(const char *text, uint64_t counts[CLASS_COUNT])
{
    const char *line = NULL;
    for (const char *p = strstr(text, "committed "); p != NULL; p = strstr(p + 1, "committed "))
        if (strstr(p, " records up to packet ") != NULL)
            line = p;
    if (line == NULL)
        return false;
    const char *eol = strchr(line, '\n');
    size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
    char buf[512];
    if (!(len < sizeof buf))
        return false;
    memcpy(buf, line, len);
    buf[len] = '\0';
    /* A line cut short by the kill has no class list yet. */
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        char key[32];
        snprintf(key, sizeof key, " %s=", queued_classes[c]);
        const char *at = strstr(buf, key);
        if (at == NULL)
            return false;
        counts[c] = strtoull(at + strlen(key), NULL, 10);
    }
    return true;
}

static void check_audit_verifies(const char *dir, const char *db)
{
    const char *argv[] = {e2e_bin(), "audit", "verify", "--db", db, NULL};
    e2e_result res;
    e2e_run(argv, dir, "verify", 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil audit verify after a kill", &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_result_free(&res);
}

/* True if the audit trail of DB has an "ingest" entry: the ingest
 * appends it after its last commit of records, just before it deletes
 * the checkpoint, so a kill after it leaves a complete store. */
static bool ingest_completed(const char *dir, const char *db)
{
    const char *argv[] = {e2e_bin(), "audit", "show", "--db", db, "--json", "--limit", "10000",
                          NULL};
    e2e_result res;
    e2e_run(argv, dir, "audit-show", 120, &res);
    assert_true(res.exited && res.status == 0);
    bool found = strstr(res.out, "\"action\":\"ingest\"") != NULL;
    e2e_result_free(&res);
    return found;
}

/* The store directory holds only the files flowveil keeps there. */
static void check_no_stray_files(const char *db)
{
    static const char *const expected[] = {"data.mdb", "lock.mdb", "data.keys", "pseudonym.key"};
    DIR *d = opendir(db);
    if (d == NULL)
        return;     /* killed before the store was created */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
            known = known || strcmp(e->d_name, expected[i]) == 0;
        if (!known)
            fprintf(stderr, "unexpected file %s left in the store %s\n", e->d_name, db);
        assert_true(known);
    }
    closedir(d);
}

static int compare_texts(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Export CLS and return its records as sorted compact JSON texts with
 * the per-store fields "id" and "stored" removed. *COUNT gets the number. */
static char **export_normalized(const char *dir, const char *db, const char *cls, size_t *count)
{
    json_t *arr = e2e_export(dir, db, cls, 1796100000u);
    size_t n = json_array_size(arr);
    char **out = calloc(n + 1, sizeof *out);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        json_t *rec = json_array_get(arr, i);
        json_object_del(rec, "id");
        json_object_del(rec, "stored");
        out[i] = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
        assert_non_null(out[i]);
    }
    json_decref(arr);
    qsort(out, n, sizeof *out, compare_texts);
    *count = n;
    return out;
}

/* True if NAME exists in directory DIR. */
/* Size of DIR/NAME in bytes, or -1 if it does not exist. */
static long long file_size_in(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    e2e_path(path, dir, name);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/*
 * A kill between LMDB's creation of data.mdb and its first page writes
 * leaves an empty file. Read-only commands must then report that the store
 * contains no data yet (not LMDB's bare "Bad file descriptor"). Nothing
 * was committed, so the program must not have reported a commit.
 */
static void check_empty_store_reported(const char *dir, const char *db, bool claimed_commit)
{
    const char *argv[] = {e2e_bin(), "audit", "verify", "--db", db, NULL};
    e2e_result res;
    e2e_run(argv, dir, "verify-empty", 120, &res);
    if (!res.exited || res.status != 1 || strstr(res.err, "holds no data yet") == NULL ||
        e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil audit verify of a store killed while being created", &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_result_free(&res);
    assert_false(claimed_commit);
}

static void free_texts(char **texts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
}

/* True if sorted A[0..NA) is a sub-multiset of sorted B[0..NB); prints
 * the first record of A that is extra. */
static bool is_submultiset(char **a, size_t na, char **b, size_t nb, const char *cls)
{
    size_t j = 0;
    for (size_t i = 0; i < na; i++) {
        while (j < nb && strcmp(b[j], a[i]) < 0)
            j++;
        if (j == nb || strcmp(b[j], a[i]) != 0) {
            fprintf(stderr, "%s record stored more often than the reference has it "
                            "(duplicate or unknown): %s\n", cls, a[i]);
            return false;
        }
        j++;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Ingest                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct ingest_setup {
    char dir[4096], policy[4096], ref_db[4096], key[4096];
    const char *argv_files[CORPUS_COUNT];
    char corpus_paths[CORPUS_COUNT][4096];
    char **ref[CLASS_COUNT];
    size_t ref_n[CLASS_COUNT];
    /* Stored records per class. Export leaves out aggregate groups below
     * the policy's k-threshold, so these can exceed ref_n. */
    uint64_t ref_count[CLASS_COUNT];
    uint64_t ref_duration_us;
    /* Ingest one generated demo capture instead of the corpus files: an
     * hour of traffic whose long flows stay open for most of the run. */
    bool demo;
    char demo_path[4096];
} ingest_setup;

static void ingest_argv(const ingest_setup *s, const char *db, const char **argv)
{
    size_t i = 0;
    argv[i++] = e2e_bin();
    argv[i++] = "ingest";
    argv[i++] = "--policy";
    argv[i++] = s->policy;
    argv[i++] = "--db";
    argv[i++] = db;
    argv[i++] = "--now";
    argv[i++] = NOW_S;
    /* -v logs a line after every commit, not one every 10 seconds. */
    argv[i++] = "-v";
    if (s->demo)
        argv[i++] = s->demo_path;
    for (size_t f = 0; f < CORPUS_COUNT && !s->demo; f++)
        argv[i++] = s->argv_files[f];
    argv[i] = NULL;
}

static void stored_counts(const char *dir, const char *db, uint64_t counts[CLASS_COUNT]);

static void ingest_setup_create(ingest_setup *s, bool demo)
{
    memset(s, 0, sizeof *s);
    s->demo = demo;
    tu_make_temp_dir(s->dir, sizeof s->dir);
    e2e_path(s->policy, s->dir, "policy.yaml");
    e2e_path(s->ref_db, s->dir, "ref");
    e2e_path(s->key, s->ref_db, "pseudonym.key");
    /* The demo's traffic may be older than 30 days at NOW_S. */
    e2e_write_policy(s->policy, "[{name: office, networks: [10.0.0.0/8, 192.168.0.0/16]}]",
                     demo ? "3650d" : "30d");
    if (demo) {
        e2e_path(s->demo_path, s->dir, "demo.pcap");
        const char *gen[] = {e2e_demogen(), "--output", s->demo_path, NULL};
        e2e_result res;
        e2e_run(gen, s->dir, "demogen", 300, &res);
        if (!res.exited || res.status != 0) {
            e2e_print_result("flowveil-demogen", &res);
            fail();
        }
        e2e_result_free(&res);
    }

    for (size_t i = 0; i < CORPUS_COUNT; i++) {
        snprintf(s->corpus_paths[i], sizeof s->corpus_paths[i], "%s/pcaps/%s", e2e_corpus(),
                 corpus_files[i]);
        s->argv_files[i] = s->corpus_paths[i];
    }

    const char *argv[INGEST_ARGV_MAX];
    ingest_argv(s, s->ref_db, argv);
    e2e_result res;
    uint64_t start = mono_us();
    e2e_run(argv, s->dir, "ref", 300, &res);
    s->ref_duration_us = mono_us() - start;
    if (!res.exited || res.status != 0) {
        e2e_print_result("reference ingest", &res);
        fail();
    }
    e2e_result_free(&res);
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        s->ref[c] = export_normalized(s->dir, s->ref_db, queued_classes[c], &s->ref_n[c]);
        printf("reference: %zu %s records\n", s->ref_n[c], queued_classes[c]);
    }
    stored_counts(s->dir, s->ref_db, s->ref_count);
    /* An empty class would make its checks vacuous. The demo has no
     * traffic of some classes; its flows are what its test is about. */
    for (size_t c = 0; c < CLASS_COUNT; c++)
        assert_true(s->ref_count[c] > 0 || demo);
    assert_true(s->ref_count[0] > 0);
    printf("reference ingest took %llu ms\n", (unsigned long long)(s->ref_duration_us / 1000));
}

static void ingest_setup_destroy(ingest_setup *s)
{
    for (size_t c = 0; c < CLASS_COUNT; c++)
        free_texts(s->ref[c], s->ref_n[c]);
    tu_remove_tree(s->dir);
}

/* Read the live record count of each class from `flowveil retention
 * status` into COUNTS (indexed like queued_classes). */
static void stored_counts(const char *dir, const char *db, uint64_t counts[CLASS_COUNT])
{
    const char *argv[] = {e2e_bin(), "retention", "status", "--db", db, "--now", NOW_S, NULL};
    e2e_result res;
    e2e_run(argv, dir, "status", 120, &res);
    if (!res.exited || res.status != 0) {
        e2e_print_result("flowveil retention status after a kill", &res);
        fail();
    }
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        char prefix[32];
        int n = snprintf(prefix, sizeof prefix, "\n%s ", queued_classes[c]);
        const char *row = strstr(res.out, prefix);
        assert_non_null(row);
        /* Columns: class, retention, records. */
        char retention[32];
        unsigned long long records = 0;
        assert_int_equal(sscanf(row + n, "%31s %llu", retention, &records), 2);
        counts[c] = records;
    }
    e2e_result_free(&res);
}

/* After a kill: each class holds at least what the killed process
 * reported as committed and at most what the reference holds. The exact
 * comparison at the end of each chain catches a duplicate, because
 * records are never removed in between. */
static void check_counts(const ingest_setup *s, const char *db, bool have_committed,
                         const uint64_t committed[CLASS_COUNT])
{
    uint64_t counts[CLASS_COUNT];
    stored_counts(s->dir, db, counts);
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        if (have_committed && counts[c] < committed[c])
            fprintf(stderr, "%s: %llu records stored, but the killed ingest reported %llu "
                            "committed\n", queued_classes[c], (unsigned long long)counts[c],
                    (unsigned long long)committed[c]);
        if (have_committed)
            assert_true(counts[c] >= committed[c]);
        if (counts[c] > s->ref_count[c])
            fprintf(stderr, "%s: %llu records stored, more than the %llu of the reference\n",
                    queued_classes[c], (unsigned long long)counts[c],
                    (unsigned long long)s->ref_count[c]);
        assert_true(counts[c] <= s->ref_count[c]);
    }
}

/* Check DB against the reference: each class a sub-multiset (EXACT: equal),
 * with at least COMMITTED records where the killed process reported them. */
static void check_against_reference(const ingest_setup *s, const char *db, bool have_committed,
                                    const uint64_t committed[CLASS_COUNT], bool exact)
{
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        size_t n = 0;
        char **got = export_normalized(s->dir, db, queued_classes[c], &n);
        assert_true(is_submultiset(got, n, s->ref[c], s->ref_n[c], queued_classes[c]));
        if (have_committed && n < committed[c])
            fprintf(stderr, "%s: %zu records stored, but the killed ingest reported %llu "
                            "committed\n", queued_classes[c], n,
                    (unsigned long long)committed[c]);
        if (have_committed)
            assert_true(n >= committed[c]);
        if (exact && n != s->ref_n[c])
            fprintf(stderr, "%s: %zu records after the resumed ingest, the reference has %zu\n",
                    queued_classes[c], n, s->ref_n[c]);
        if (exact)
            assert_int_equal(n, s->ref_n[c]);
        free_texts(got, n);
    }
    if (exact) {
        uint64_t counts[CLASS_COUNT];
        stored_counts(s->dir, db, counts);
        for (size_t c = 0; c < CLASS_COUNT; c++)
            assert_int_equal(counts[c], s->ref_count[c]);
    }
}

static void test_ingest_survives_sigkill(void **state)
{
    (void)state;
    unsigned kills = total_kills();
    unsigned ingest_kills = kills - kills / 10;
    ingest_setup s;
    ingest_setup_create(&s, false);
    rng_seed();

    unsigned done = 0, chains = 0, with_commit = 0;
    uint64_t start = mono_us();
    while (done < ingest_kills) {
        char db[4096], name[32];
        snprintf(name, sizeof name, "chain%u", chains++);
        e2e_path(db, s.dir, name);
        /* The reference's pseudonymization key, so records compare equal. */
        assert_int_equal(mkdir(db, 0700), 0);
        char key[4096];
        e2e_path(key, db, "pseudonym.key");
        size_t key_len = 0;
        char *key_bytes = tu_read_file(s.key, &key_len);
        assert_non_null(key_bytes);
        tu_write_file(key, key_bytes, key_len);
        free(key_bytes);

        bool finished = false;
        for (unsigned k = 0; k < KILLS_PER_CHAIN && done < ingest_kills; k++) {
            const char *argv[INGEST_ARGV_MAX];
            ingest_argv(&s, db, argv);
            uint64_t delay_us = rng_next() % (s.ref_duration_us + 1);
            pid_t pid = e2e_spawn(argv, s.dir, "kill");
            usleep((useconds_t)delay_us);
            kill(pid, SIGKILL);
            e2e_result res;
            e2e_wait(pid, s.dir, "kill", 300, &res);
            if (res.exited) {
                /* It finished before the kill: the store must be complete.
                 * Runs get faster once the files are cached, so aim the
                 * later kills earlier. */
                assert_int_equal(res.status, 0);
                s.ref_duration_us = s.ref_duration_us * 9 / 10;
                e2e_result_free(&res);
                check_against_reference(&s, db, false, NULL, true);
                finished = true;
                break;
            }
            assert_int_equal(res.status, SIGKILL);
            done++;

            uint64_t committed[CLASS_COUNT] = {0};
            bool have = last_committed(res.err, committed);
            with_commit += have;
            e2e_result_free(&res);

            check_no_stray_files(db);
            long long data_size = file_size_in(db, "data.mdb");
            if (data_size < 0)
                continue;   /* killed before the store was created */
            if (data_size == 0) {
                check_empty_store_reported(s.dir, db, have);
                continue;
            }
            check_audit_verifies(s.dir, db);
            finished = ingest_completed(s.dir, db);
            check_counts(&s, db, have, committed);
            if (finished) {
                check_against_reference(&s, db, false, NULL, true);
                break;
            }
        }

        if (finished) {
            tu_remove_tree(db);
            continue;
        }

        /* Resume to the end: exactly the reference's records. */
        const char *argv[INGEST_ARGV_MAX];
        ingest_argv(&s, db, argv);
        e2e_result res;
        e2e_run(argv, s.dir, "resume", 300, &res);
        if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
            e2e_print_result("ingest resumed after kills", &res);
            fail();
        }
        e2e_result_free(&res);
        check_audit_verifies(s.dir, db);
        check_no_stray_files(db);
        check_against_reference(&s, db, false, NULL, true);
        tu_remove_tree(db);
    }
    printf("ingest: %u kills in %u chains (%u after a reported commit), %llu s\n", done, chains,
           with_commit, (unsigned long long)((mono_us() - start) / 1000000u));
    ingest_setup_destroy(&s);
}

/*
 * SIGTERM is a clean stop: the ingest commits what it has and exits 1,
 * since its files were not read to the end. A SIGTERM after the last
 * file was read cuts nothing short: that run finishes complete.
 * The flows still open then must not be stored, or the resume, which
 * reads the files again and skips only records identical to stored ones,
 * would store each of them a second time in full. After the resume the
 * store must equal the reference exactly.
 */
static void test_ingest_resumes_after_sigterm_without_duplicates(void **state)
{
    (void)state;
    ingest_setup s;
    ingest_setup_create(&s, true);
    rng_seed();

    unsigned interrupted = 0, late = 0;
    uint64_t window_us = s.ref_duration_us;
    for (unsigned attempt = 0; attempt < 40 && interrupted < 3; attempt++) {
        char db[4096], name[32];
        snprintf(name, sizeof name, "term%u", attempt);
        e2e_path(db, s.dir, name);
        assert_int_equal(mkdir(db, 0700), 0);
        char key[4096];
        e2e_path(key, db, "pseudonym.key");
        size_t key_len = 0;
        char *key_bytes = tu_read_file(s.key, &key_len);
        assert_non_null(key_bytes);
        tu_write_file(key, key_bytes, key_len);
        free(key_bytes);

        const char *argv[INGEST_ARGV_MAX];
        ingest_argv(&s, db, argv);
        /* Aim anywhere in the run. A stop after the last file was read
         * cuts nothing short, so such a run finishes; the window then
         * shrinks towards the reading. */
        uint64_t delay_us = rng_next() % (window_us + 1);
        pid_t pid = e2e_spawn(argv, s.dir, "term");
        usleep((useconds_t)delay_us);
        kill(pid, SIGTERM);
        e2e_result res;
        e2e_wait(pid, s.dir, "term", 300, &res);
        /* Before the handlers are installed SIGTERM kills the process;
         * after the run it has no effect. Only a handled stop counts. */
        bool stopped = res.exited && strstr(res.err, "stopped by signal") != NULL;
        if (res.exited && res.status != (stopped ? 1 : 0)) {
            e2e_print_result("ingest stopped by SIGTERM", &res);
            fail();
        }
        bool finished = res.exited && !stopped;
        e2e_result_free(&res);
        if (finished) {
            /* Too late to cut anything: the store must be complete. */
            check_against_reference(&s, db, false, NULL, true);
            window_us = window_us * 3 / 4;
            late++;
        }
        if (!stopped) {
            tu_remove_tree(db);
            continue;
        }
        interrupted++;
        check_audit_verifies(s.dir, db);
        check_counts(&s, db, false, NULL);

        ingest_argv(&s, db, argv);
        e2e_run(argv, s.dir, "resume", 300, &res);
        if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
            e2e_print_result("ingest resumed after SIGTERM", &res);
            fail();
        }
        e2e_result_free(&res);
        check_against_reference(&s, db, false, NULL, true);
        tu_remove_tree(db);
    }
    printf("ingest: %u runs stopped by SIGTERM and resumed, %u finished first\n", interrupted,
           late);
    /* The reference run takes tens of milliseconds; a test that never
     * landed its signal inside a run proved nothing. */
    assert_true(interrupted > 0);
    ingest_setup_destroy(&s);
}

/* ---------------------------------------------------------------------- */
/* Capture                                                                 */
/* ---------------------------------------------------------------------- */

/* Send one DNS query for "qN.crash.test" (type A, class IN) from an
 * ephemeral port to 127.0.0.1:53. Nothing needs to listen, because
 * capture reads the datagram on lo either way. */
static void send_dns_query(int sock, unsigned n)
{
    uint8_t msg[64];
    size_t len = 0;
    /* Header: id, flags 0x0100 (recursion desired), 1 question. */
    const uint8_t header[12] = {(uint8_t)(n >> 8), (uint8_t)n, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(msg, header, sizeof header);
    len = sizeof header;
    char label[16];
    int label_len = snprintf(label, sizeof label, "q%u", n);
    msg[len++] = (uint8_t)label_len;
    memcpy(msg + len, label, (size_t)label_len);
    len += (size_t)label_len;
    /* "crash" "test" root, then QTYPE A (1) and QCLASS IN (1). */
    const uint8_t tail[] = {5, 'c', 'r', 'a', 's', 'h', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    memcpy(msg + len, tail, sizeof tail);
    len += sizeof tail;

    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)sendto(sock, msg, len, 0, (const struct sockaddr *)&to, sizeof to);
}

static void test_capture_survives_sigkill(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: live capture on lo needs root (run the tests as root to include it)\n");
        skip();
    }
    unsigned kills = total_kills() / 10;
    if (kills == 0)
        kills = 1;
    rng_seed();

    char dir[4096], db[4096], policy[4096], err_file[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(err_file, dir, "capture.err");
    e2e_write_policy(policy, "[]", "30d");
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(sock >= 0);

    unsigned next_query = 1;
    size_t stored_before = 0;
    uint64_t start = mono_us();
    for (unsigned k = 0; k < kills; k++) {
        const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db, "-i", "lo",
                              "--filter", "udp dst port 53 and dst host 127.0.0.1", "-v", NULL};
        pid_t pid = e2e_spawn(argv, dir, "capture");
        if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
            kill(pid, SIGKILL);
            e2e_result res;
            e2e_wait(pid, dir, "capture", 10, &res);
            e2e_print_result("flowveil capture did not start", &res);
            fail();
        }
        /* Queries every 5 ms for 0.2 to 2.5 s: the capture commits about
         * once a second, so kills land before, during and after commits. */
        uint64_t run_us = 200000u + rng_next() % 2300000u;
        uint64_t t0 = mono_us();
        while (mono_us() - t0 < run_us) {
            send_dns_query(sock, next_query++);
            usleep(5000);
        }
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 30, &res);
        assert_false(res.exited);
        assert_int_equal(res.status, SIGKILL);
        uint64_t committed[CLASS_COUNT] = {0};
        bool have = last_committed(res.err, committed);
        e2e_result_free(&res);

        check_no_stray_files(db);
        if (file_size_in(db, "data.mdb") == 0) {
            check_empty_store_reported(dir, db, have);
            continue;
        }
        check_audit_verifies(dir, db);
        json_t *arr = e2e_export(dir, db, "dns", 0);
        size_t n = json_array_size(arr);
        if (have)
            assert_true(n >= stored_before + committed[1]);
        /* Every stored query is one the test sent, stored once. */
        char *seen = calloc(next_query, 1);
        assert_non_null(seen);
        for (size_t i = 0; i < n; i++) {
            const char *qname = json_string_value(json_object_get(json_array_get(arr, i), "qname"));
            assert_non_null(qname);
            unsigned q = 0;
            assert_int_equal(sscanf(qname, "q%u.crash.test", &q), 1);
            assert_true(q > 0 && q < next_query);
            if (seen[q])
                fprintf(stderr, "query %s stored twice\n", qname);
            assert_false(seen[q]);
            seen[q] = 1;
        }
        free(seen);
        json_decref(arr);
        stored_before = n;
    }
    close(sock);
    printf("capture: %u kills, %zu DNS records stored of %u queries sent, %llu s\n", kills,
           stored_before, next_query - 1, (unsigned long long)((mono_us() - start) / 1000000u));
    assert_true(stored_before > 0);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_survives_sigkill),
        cmocka_unit_test(test_ingest_resumes_after_sigterm_without_duplicates),
        cmocka_unit_test(test_capture_survives_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
