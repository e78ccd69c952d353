/*
 * test_store_limits: the store under resource limits and crashes: map
 * growth over many doublings, a full map, the size quota and a full
 * disk. The disk test mounts a small tmpfs and is skipped when mounting
 * is not permitted. Also the reader slot of a killed process and the
 * resumable run checkpoint, with its mark of a saved detector state.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"
#include "store_internal.h"
#include "store_records.h"
#include "testutil.h"

/* 2026-11-30T00:00:00Z in microseconds. */
#define T0_US 1796083200000000ull
#define DAY_US (86400ull * 1000000ull)

static bool count_one(void *ctx, const fv_record *rec)
{
    (void)rec;
    (*(uint64_t *)ctx)++;
    return true;
}

/* Records of CLS live at NOW_US, paging through the whole class. */
static uint64_t count_records(store_env *env, fv_class cls, uint64_t now_us)
{
    uint64_t n = 0, cursor = 0;
    do {
        store_query q = {.cls = cls, .limit = STORE_QUERY_LIMIT_MAX, .after_id = cursor};
        assert_int_equal(store_query_run(env, &q, now_us, count_one, &n, &cursor), FV_OK);
    } while (cursor != 0);
    return n;
}

static void assert_audit_intact(store_env *env)
{
    store_audit_verify_result vr;
    assert_int_equal(store_audit_verify(env, &vr), FV_OK);
    assert_true(vr.ok);
}

/* Put COUNT DNS records with seeds FIRST.. at NOW_US, committing every
 * 1,000; return the first error. */
static int put_dns(store_env *env, uint32_t first, uint32_t count, uint64_t now_us)
{
    int rc = FV_OK;
    for (uint32_t i = first; i < first + count && rc == FV_OK; i++) {
        fv_dns_record d;
        rec_fill_dns(&d, i);
        rc = store_put(env, FV_CLASS_DNS, &d, now_us);
        if (rc == FV_OK && (i - first + 1) % 1000 == 0)
            rc = store_commit(env);
    }
    return rc == FV_OK ? store_commit(env) : rc;
}

static void test_map_grows_over_many_doublings(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    store_open_opts opts = {.map_initial_bytes = 64 * 1024};
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open_with_options(dir, 0, &opts, &env, err, sizeof err), FV_OK);
    size_t initial = env->map_bytes;

    /* 40,000 DNS records are several MB: at least six doublings of 64 KiB. */
    assert_int_equal(put_dns(env, 1, 40000, T0_US), FV_OK);
    assert_true(env->map_bytes >= initial * 64);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), 40000);
    store_close(&env);

    /* A new writer adopts the grown map and reads every record. */
    assert_int_equal(store_open_with_options(dir, 0, &opts, &env, err, sizeof err), FV_OK);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), 40000);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_full_map_keeps_committed_records(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    store_open_opts opts = {.map_initial_bytes = 256 * 1024, .map_max_bytes = 1024 * 1024};
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open_with_options(dir, 0, &opts, &env, err, sizeof err), FV_OK);
    store_audit_entry e = {.actor = "system", .action = "test.start"};
    assert_int_equal(store_audit_append(env, &e, T0_US, NULL), FV_OK);

    int rc = FV_OK;
    uint64_t committed = 0;
    for (uint32_t i = 1; i <= 40000 && rc == FV_OK; i += 500) {
        rc = put_dns(env, i, 500, T0_US);
        if (rc == FV_OK)
            committed += 500;
    }
    assert_int_equal(rc, FV_ERR_FULL);
    assert_true(committed > 0);
    store_close(&env);

    /* Reopened with the default limits: every committed batch is there,
     * none of the failed one, and the audit chain is intact. */
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), committed);
    assert_audit_intact(env);
    assert_int_equal(put_dns(env, 50000, 1000, T0_US), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_quota_drops_records_until_sweep(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(store_size_limit_set(env, 1000), FV_ERR_INVALID);
    assert_int_equal(store_size_limit_set(env, STORE_QUOTA_MIN_BYTES), FV_OK);
    assert_int_equal(store_set_retention(env, FV_CLASS_DNS, 86400), FV_OK);

    /* Fill on day 0 until the quota rejects a commit. */
    int rc = FV_OK;
    uint32_t seed = 1;
    while (rc == FV_OK && seed < 200000) {
        rc = put_dns(env, seed, 500, T0_US);
        seed += 500;
    }
    assert_int_equal(rc, FV_ERR_FULL);
    assert_true(store_quota_reached(env));
    uint64_t stored = count_records(env, FV_CLASS_DNS, T0_US);
    assert_true(stored > 0);
    uint64_t used = 0;
    assert_int_equal(store_size_used(env, &used), FV_OK);
    /* Past the quota by at most one batch of 500 records. */
    assert_true(used < STORE_QUOTA_MIN_BYTES + 500u * STORE_RECORD_MAX_BYTES);

    /* The store is not failed: audit entries still go in. */
    store_audit_entry e = {.actor = "system", .action = "test.after_quota"};
    assert_int_equal(store_audit_append(env, &e, T0_US, NULL), FV_OK);
    assert_int_equal(put_dns(env, seed, 10, T0_US), FV_ERR_FULL);

    /* Two days later the sweep deletes day 0 and storing resumes. */
    store_sweep_result sr;
    assert_int_equal(store_sweep(env, T0_US + 2 * DAY_US, 0, 0, &sr), FV_OK);
    assert_int_equal(sr.deleted[FV_CLASS_DNS], stored);
    assert_int_equal(put_dns(env, seed, 500, T0_US + 2 * DAY_US), FV_OK);
    assert_false(store_quota_reached(env));
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US + 2 * DAY_US), 500);
    assert_audit_intact(env);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_full_disk_keeps_store_usable(void **state)
{
    (void)state;
    char dir[4096], db[4096 + 8];
    tu_make_temp_dir(dir, sizeof dir);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=8m,mode=0700") != 0) {
        printf("skipped: cannot mount an 8 MB tmpfs on %s (%s); run as root to include it\n",
               dir, strerror(errno));
        tu_remove_tree(dir);
        skip();
    }
    snprintf(db, sizeof db, "%s/db", dir);
    char err[1024];
    store_env *env = NULL;
    store_open_opts opts = {.map_initial_bytes = 64 * 1024 * 1024};
    assert_int_equal(store_open_with_options(db, 0, &opts, &env, err, sizeof err), FV_OK);

    int rc = FV_OK;
    uint64_t committed = 0;
    for (uint32_t i = 1; i <= 400000 && rc == FV_OK; i += 500) {
        rc = put_dns(env, i, 500, T0_US);
        if (rc == FV_OK)
            committed += 500;
    }
    /* ENOSPC, or EIO for a short page write, from the commit: the writer
     * stops with a store error. */
    assert_int_not_equal(rc, FV_OK);
    assert_true(committed > 0);
    printf("disk full after %llu records\n", (unsigned long long)committed);
    store_close(&env);

    /* Read-only, with the disk still full: every committed record is there. */
    assert_int_equal(store_open(db, STORE_RDONLY, &env, err, sizeof err), FV_OK);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), committed);
    assert_audit_intact(env);
    store_close(&env);

    assert_int_equal(umount(dir), 0);
    tu_remove_tree(dir);
}

static void test_killed_reader_slot_is_cleared(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(store_set_retention(env, FV_CLASS_DNS, 86400), FV_OK);
    assert_int_equal(put_dns(env, 1, 2000, T0_US), FV_OK);

    /* A child opens its own handle, begins a read transaction and
     * reports it; then it is killed inside the transaction. */
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_env *ro = NULL;
        MDB_txn *txn = NULL;
        if (store_open(dir, STORE_RDONLY, &ro, err, sizeof err) != FV_OK ||
            store_read_begin(ro, &txn) != FV_OK)
            _exit(1);
        (void)write(ready[1], "r", 1);
        for (;;)
            pause();
    }
    char byte = 0;
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(ready[0]);
    close(ready[1]);

    int cleared = 0;
    assert_int_equal(store_reader_check(env, &cleared), FV_OK);
    assert_int_equal(cleared, 1);

    /* With the slot gone, deleted pages are reused: cycles of sweeping a
     * day and storing the next one keep the file near one day's size. */
    struct stat st;
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    off_t size_after_first = 0;
    for (uint32_t day = 1; day <= 12; day++) {
        uint64_t now = T0_US + day * 2 * DAY_US;
        store_sweep_result sr;
        assert_int_equal(store_sweep(env, now, 0, 0, &sr), FV_OK);
        assert_int_equal(put_dns(env, day * 10000, 2000, now), FV_OK);
        assert_int_equal(stat(path, &st), 0);
        if (day == 2)
            size_after_first = st.st_size;
    }
    assert_true(st.st_size <= size_after_first * 2);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US + 24 * DAY_US), 2000);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_run_resume_skips_committed_records(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {1, 2, 3};
    store_run_info info;

    /* First attempt: 300 records committed, then a "crash" (close
     * without ending the run; the checkpoint stays). Record 7 twice. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_false(info.resumed);
    assert_int_equal(put_dns(env, 1, 300, T0_US), FV_OK);
    fv_dns_record d;
    rec_fill_dns(&d, 7);
    assert_int_equal(store_put(env, FV_CLASS_DNS, &d, T0_US), FV_OK);
    assert_int_equal(store_commit(env), FV_OK);
    store_close(&env);

    /* Second attempt of the same run: the same 301 records plus 200 new. */
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);
    assert_int_equal(info.stored[FV_CLASS_DNS], 301);
    assert_int_equal(put_dns(env, 1, 500, T0_US), FV_OK);
    rec_fill_dns(&d, 7);
    assert_int_equal(store_put(env, FV_CLASS_DNS, &d, T0_US), FV_OK);
    uint64_t skipped = 0;
    assert_int_equal(store_run_end(env, true, NULL, 0, &skipped), FV_OK);
    assert_int_equal(skipped, 301);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), 501);

    /* Ended complete: the same run id starts afresh. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_false(info.resumed);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

/* A run is empty until it queues a record. store_run_forget before
 * store_run_end deletes the checkpoint, so the same id starts afresh.
 * Without it the checkpoint of an incomplete run stays. */
static void test_run_forget_empty_checkpoint(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {4, 5, 6};
    store_run_info info;
    assert_false(store_run_empty(env));    /* no run */
    assert_int_equal(store_run_forget(env), FV_ERR_STATE);

    /* Ended incomplete without store_run_forget: the checkpoint stays. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(store_run_empty(env));
    assert_int_equal(store_run_end(env, false, NULL, 0, NULL), FV_OK);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);

    /* Forgotten: the next run of the id is not a resume. */
    assert_int_equal(store_run_forget(env), FV_OK);
    assert_int_equal(store_run_end(env, false, NULL, 0, NULL), FV_OK);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_false(info.resumed);

    /* A queued record, and then a committed one, make the run non-empty. */
    fv_dns_record d;
    rec_fill_dns(&d, 1);
    assert_int_equal(store_put(env, FV_CLASS_DNS, &d, T0_US), FV_OK);
    assert_false(store_run_empty(env));
    assert_int_equal(store_commit(env), FV_OK);
    assert_false(store_run_empty(env));
    assert_int_equal(store_run_end(env, false, NULL, 0, NULL), FV_OK);

    /* The resume of that run counts the earlier attempt's record. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);
    assert_false(store_run_empty(env));
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

/* Store VALUE in CTX if NAME is "parsed" (store_capture_counters_each). */
static bool find_parsed(void *ctx, const char *name, uint64_t value)
{
    if (strcmp(name, "parsed") == 0)
        *(uint64_t *)ctx = value;
    return true;
}

/* Return the stored capture counter "parsed", or 0. */
static uint64_t parsed_counter(store_env *env)
{
    uint64_t value = 0;
    assert_int_equal(store_capture_counters_each(env, find_parsed, &value), FV_OK);
    return value;
}

/* Count the audit entries whose action is "ingest". */
static bool count_ingest(void *ctx, const store_audit_entry *e)
{
    if (strcmp(e->action, "ingest") == 0)
        (*(unsigned *)ctx)++;
    return true;
}

static unsigned ingest_entries(store_env *env)
{
    unsigned n = 0;
    assert_int_equal(store_audit_each(env, 0, STORE_AUDIT_LIMIT_MAX, true, count_ingest, &n, NULL),
                     FV_OK);
    return n;
}

/* Counters of a run are held until it completes, then written with its
 * audit entry and the deletion of its checkpoint. A run that does not
 * complete drops them, so its resume counts the input once. */
static void test_run_counts_input_once(void **state)
{
    (void)state;
    char dir[4096], err[1024];
    tu_make_temp_dir(dir, sizeof dir);
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {9, 8, 7};
    store_run_info info;
    static const char *const names[] = {"parsed"};
    const uint64_t ten[] = {10};
    const store_counters packets = {.packets = 100, .files = 1};
    store_audit_entry entry;
    memset(&entry, 0, sizeof entry);
    snprintf(entry.actor, sizeof entry.actor, "tester");
    snprintf(entry.action, sizeof entry.action, "ingest");

    /* Without a run the counters are written as before. */
    assert_int_equal(store_run_counters_add(env, names, ten, 1), FV_OK);
    assert_int_equal(parsed_counter(env), 10);

    /* A stopped attempt: records are committed, counters are not. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_int_equal(put_dns(env, 1, 50, T0_US), FV_OK);
    assert_int_equal(store_counters_add(env, &packets), FV_OK);
    assert_int_equal(store_run_counters_add(env, names, ten, 1), FV_OK);
    assert_int_equal(store_commit(env), FV_OK);
    assert_int_equal(store_run_end(env, false, &entry, T0_US, NULL), FV_OK);

    /* What the process counts while it closes (flows ended by the
     * discard of the open ones) is dropped too. */
    assert_int_equal(store_counters_add(env, &packets), FV_OK);
    assert_int_equal(store_run_counters_add(env, names, ten, 1), FV_OK);
    assert_int_equal(store_commit(env), FV_OK);
    store_counters c;
    assert_int_equal(store_counters_get(env, &c), FV_OK);
    assert_int_equal(c.packets, 0);
    assert_int_equal(parsed_counter(env), 10);
    assert_int_equal(ingest_entries(env), 0);

    /* Its resume completes: the counters of this attempt, the entry and
     * the deletion of the checkpoint are written, once. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);
    assert_int_equal(store_counters_add(env, &packets), FV_OK);
    assert_int_equal(store_run_counters_add(env, names, ten, 1), FV_OK);
    assert_int_equal(store_run_counters_add(env, names, ten, 1), FV_OK);
    assert_int_equal(put_dns(env, 1, 60, T0_US), FV_OK);
    assert_int_equal(store_commit(env), FV_OK);
    assert_int_equal(store_counters_get(env, &c), FV_OK);
    assert_int_equal(c.packets, 0);
    assert_int_equal(store_run_end(env, true, &entry, T0_US, NULL), FV_OK);
    assert_int_equal(store_counters_get(env, &c), FV_OK);
    assert_int_equal(c.packets, 100);
    assert_int_equal(c.files, 1);
    assert_int_equal(parsed_counter(env), 30);
    assert_int_equal(ingest_entries(env), 1);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), 60);

    /* The checkpoint is gone, and a bad entry leaves the run resumable
     * with its counters dropped. */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_false(info.resumed);
    assert_int_equal(store_counters_add(env, &packets), FV_OK);
    memset(entry.actor, 'x', sizeof entry.actor);
    assert_int_equal(store_run_end(env, true, &entry, T0_US, NULL), FV_ERR_INVALID);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    assert_int_equal(store_counters_get(env, &c), FV_OK);
    assert_int_equal(c.packets, 100);
    assert_int_equal(ingest_entries(env), 1);
    store_close(&env);
    tu_remove_tree(dir);
}

/* Fill LEN bytes of a detector state with a pattern from SEED. */
static uint8_t *make_state(size_t len, uint8_t seed)
{
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(seed + i * 7u);
    return data;
}

/* Assert that the saved detector state of ENV is LEN bytes of SEED. */
static void assert_state_is(store_env *env, size_t len, uint8_t seed)
{
    uint8_t *want = make_state(len, seed);
    uint8_t *got = NULL;
    size_t got_len = 0;
    assert_int_equal(store_detstate_get(env, &got, &got_len), FV_OK);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
}

/* Open the store in DIR again, as a rerun after a kill does, and begin
 * run ID, which must resume. Fills *INFO. */
static store_env *reopen_and_resume(const char *dir, const uint8_t id[STORE_RUN_ID_BYTES],
                                    store_run_info *info)
{
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(store_run_begin(env, id, info), FV_OK);
    assert_true(info->resumed);
    return env;
}

/* Read the checkpoint value of run ID: its format version byte, its
 * length and, in version 2, its flags byte (0 otherwise). */
static void read_checkpoint(store_env *env, const uint8_t id[STORE_RUN_ID_BYTES],
                            uint8_t *version, size_t *len, uint8_t *flags)
{
    char key[4 + 2 * STORE_RUN_ID_BYTES + 1];
    memcpy(key, "run/", 4);
    for (unsigned i = 0; i < STORE_RUN_ID_BYTES; i++)
        snprintf(key + 4 + 2 * i, 3, "%02x", id[i]);
    MDB_txn *txn = NULL;
    assert_int_equal(mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
    MDB_val k = {.mv_size = strlen(key), .mv_data = key};
    MDB_val v;
    assert_int_equal(mdb_get(txn, env->meta, &k, &v), MDB_SUCCESS);
    const uint8_t *bytes = v.mv_data;
    *version = bytes[0];
    *len = v.mv_size;
    *flags = v.mv_size == 2 + 16 * FV_CLASS_COUNT + 1 ? bytes[v.mv_size - 1] : 0;
    mdb_txn_abort(txn);
}

static void test_run_state_put_sets_detect_saved(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {4, 5, 6};
    store_run_info info;

    /* A state saved before the run does not mark it. */
    uint8_t *before = make_state(100, 1);
    assert_int_equal(store_detstate_put(env, before, 100, T0_US), FV_OK);
    free(before);

    /* First attempt: records, then the state put and a kill right after
     * its transaction (close without ending the run). */
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_false(info.resumed);
    assert_false(info.detect_saved);
    assert_int_equal(put_dns(env, 1, 300, T0_US), FV_OK);
    uint8_t *during = make_state(9000, 2);
    assert_int_equal(store_detstate_put(env, during, 9000, T0_US), FV_OK);
    free(during);
    uint8_t version = 0, flags = 0;
    size_t len = 0;
    read_checkpoint(env, id, &version, &len, &flags);
    assert_int_equal(version, 2);
    assert_int_equal(len, 2 + 16 * FV_CLASS_COUNT + 1);
    assert_int_equal(flags, 1);
    store_close(&env);

    /* Second attempt: the checkpoint reports the saved state. Its
     * commits, after a queued record that the state put did not commit,
     * keep the mark. */
    env = reopen_and_resume(dir, id, &info);
    assert_true(info.detect_saved);
    assert_int_equal(info.stored[FV_CLASS_DNS], 300);
    assert_state_is(env, 9000, 2);
    fv_dns_record d;
    rec_fill_dns(&d, 301);
    assert_int_equal(store_put(env, FV_CLASS_DNS, &d, T0_US), FV_OK);
    during = make_state(9000, 3);
    assert_int_equal(store_detstate_put(env, during, 9000, T0_US), FV_OK);
    free(during);
    assert_int_equal(put_dns(env, 302, 99, T0_US), FV_OK);
    store_close(&env);

    /* Third attempt, still marked. Ending it complete deletes the mark
     * with the checkpoint. */
    env = reopen_and_resume(dir, id, &info);
    assert_true(info.detect_saved);
    assert_int_equal(info.stored[FV_CLASS_DNS], 400);
    assert_state_is(env, 9000, 3);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_false(info.resumed);
    assert_false(info.detect_saved);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);

    /* Commits later in the attempt that saved the state keep the mark. */
    uint8_t later_id[STORE_RUN_ID_BYTES] = {4, 5, 7};
    assert_int_equal(store_run_begin(env, later_id, &info), FV_OK);
    during = make_state(100, 4);
    assert_int_equal(store_detstate_put(env, during, 100, T0_US), FV_OK);
    free(during);
    assert_int_equal(put_dns(env, 1000, 10, T0_US), FV_OK);
    store_close(&env);
    env = reopen_and_resume(dir, later_id, &info);
    assert_true(info.detect_saved);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_run_without_state_put_unmarked(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {7, 8, 9};
    uint8_t other_id[STORE_RUN_ID_BYTES] = {7, 8, 10};
    store_run_info info;

    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_int_equal(put_dns(env, 1, 200, T0_US), FV_OK);
    store_close(&env);

    /* A state saved by another run marks that run only. */
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(store_run_begin(env, other_id, &info), FV_OK);
    assert_false(info.resumed);
    uint8_t *data = make_state(100, 3);
    assert_int_equal(store_detstate_put(env, data, 100, T0_US), FV_OK);
    free(data);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);

    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);
    assert_false(info.detect_saved);
    assert_int_equal(info.stored[FV_CLASS_DNS], 200);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_run_failed_state_put_unmarked(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    store_open_opts opts = {.map_initial_bytes = 256 * 1024, .map_max_bytes = 1024 * 1024};
    assert_int_equal(store_open_with_options(dir, 0, &opts, &env, err, sizeof err), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {10, 11, 12};
    store_run_info info;

    uint8_t *before = make_state(100, 4);
    assert_int_equal(store_detstate_put(env, before, 100, T0_US), FV_OK);
    free(before);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_int_equal(put_dns(env, 1, 100, T0_US), FV_OK);

    /* 4 MiB do not fit in the 1 MiB map: the transaction is aborted. */
    size_t big = 4u * 1024u * 1024u;
    uint8_t *data = make_state(big, 5);
    assert_int_not_equal(store_detstate_put(env, data, big, T0_US), FV_OK);
    free(data);
    store_close(&env);

    env = reopen_and_resume(dir, id, &info);
    assert_false(info.detect_saved);
    assert_int_equal(info.stored[FV_CLASS_DNS], 100);
    assert_state_is(env, 100, 4);
    assert_int_equal(store_run_end(env, true, NULL, 0, NULL), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

static void test_run_unflagged_checkpoint_is_version1(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_int_equal(put_dns(env, 1, 100, T0_US), FV_OK);
    uint8_t id[STORE_RUN_ID_BYTES] = {13, 14, 15};
    store_run_info info;
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_int_equal(put_dns(env, 101, 50, T0_US), FV_OK);
    store_close(&env);

    /* Without the flag the checkpoint has the version 1 layout, which
     * releases from before the flag write and resume. */
    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    uint8_t version = 0, flags = 0;
    size_t len = 0;
    read_checkpoint(env, id, &version, &len, &flags);
    assert_int_equal(version, 1);
    assert_int_equal(len, 2 + 16 * FV_CLASS_COUNT);
    assert_int_equal(store_run_begin(env, id, &info), FV_OK);
    assert_true(info.resumed);
    assert_false(info.detect_saved);
    assert_int_equal(info.stored[FV_CLASS_DNS], 50);
    assert_int_equal(put_dns(env, 101, 80, T0_US), FV_OK);
    uint64_t skipped = 0;
    assert_int_equal(store_run_end(env, true, NULL, 0, &skipped), FV_OK);
    assert_int_equal(skipped, 50);
    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), 180);
    store_close(&env);
    tu_remove_tree(dir);
}

/*
 * A writer killed between LMDB's creation of data.mdb and its first page
 * writes leaves an empty file. A read-only open reports that the store
 * holds no data yet; the next writer initializes the file and keeps it.
 */
static void test_empty_data_file_reported_then_initialized(void **state)
{
    (void)state;
    char dir[4096], path[4200], err[512] = "";
    store_env *env = NULL;

    tu_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    tu_write_file(path, "", 0);
    assert_int_equal(store_open(dir, STORE_RDONLY, &env, err, sizeof err), FV_ERR_NOT_FOUND);
    assert_null(env);
    assert_non_null(strstr(err, "holds no data yet"));
    assert_non_null(strstr(err, dir));

    assert_int_equal(store_open(dir, 0, &env, err, sizeof err), FV_OK);
    assert_audit_intact(env);
    store_close(&env);
    assert_int_equal(store_open(dir, STORE_RDONLY, &env, err, sizeof err), FV_OK);
    store_close(&env);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_grows_over_many_doublings),
        cmocka_unit_test(test_full_map_keeps_committed_records),
        cmocka_unit_test(test_quota_drops_records_until_sweep),
        cmocka_unit_test(test_full_disk_keeps_store_usable),
        cmocka_unit_test(test_killed_reader_slot_is_cleared),
        cmocka_unit_test(test_run_resume_skips_committed_records),
        cmocka_unit_test(test_run_forget_empty_checkpoint),
        cmocka_unit_test(test_run_counts_input_once),
        cmocka_unit_test(test_run_state_put_sets_detect_saved),
        cmocka_unit_test(test_run_without_state_put_unmarked),
        cmocka_unit_test(test_run_failed_state_put_unmarked),
        cmocka_unit_test(test_run_unflagged_checkpoint_is_version1),
        cmocka_unit_test(test_empty_data_file_reported_then_initialized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
