/*
 * store_checkpoint.c: commit reports, resumable ingest runs and the size
 * quota.
 *
 * Run checkpoint, meta key "run/<64 hex digits of the run id>", value:
 *   byte 0      format version: 2 with the flags byte below, else 1
 *   byte 1      N, the number of classes that follow (at most FV_CLASS_COUNT)
 *   then N times, in fv_class order, two u64 little-endian values:
 *     start_id   the last record id of the class before the run began
 *     committed  records of the class the run committed, over all attempts
 *   then, in version 2 only, one flags byte:
 *     bit 0      RUN_FLAG_DETECT_SAVED: the saved detector state already
 *                contains the run's input
 * The value is rewritten in the transaction of every commit of queued
 * records, so it never counts a record that is not on disk, and never
 * misses one that is. store_detstate_put rewrites it with
 * RUN_FLAG_DETECT_SAVED set in the transaction that replaces the state,
 * so the flag is on disk exactly when that state is. A value without
 * the flag is written as version 1, the format from before the flag, so
 * an older flowveil can still resume the run.
 *
 * Resume: the records of class C with ids above start_id are the ones
 * the run committed, because a store has one writer. Records that
 * another writer added in the meantime would be taken for the run's,
 * which only matters if the rerun produces an identical record. Their
 * keyed BLAKE2b-128 hashes (class and plaintext encoding) go into a
 * counted hash set, and store_put skips one record per stored copy.
 * Matching by content and not by position makes the skip independent of
 * the order in which the capture engine emits records. It needs the
 * rerun to produce identical encodings, which holds for the same files,
 * policy and pseudonymization epoch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define RUN_META_PREFIX "run/"
#define RUN_FORMAT_VERSION 2u
#define RUN_FORMAT_VERSION_NO_FLAGS 1u
#define RUN_FLAG_DETECT_SAVED 0x01u
#define RUN_HASH_BYTES 16u

/* One entry of the counted hash set; count 0 marks an empty slot. */
typedef struct run_slot {
    uint8_t hash[RUN_HASH_BYTES];
    uint32_t count;
} run_slot;

struct store_run {
    char meta_key[sizeof RUN_META_PREFIX + 2 * STORE_RUN_ID_BYTES];
    uint64_t start_id[FV_CLASS_COUNT];
    uint64_t base[FV_CLASS_COUNT];          /* committed by earlier attempts */
    uint64_t handle_start[FV_CLASS_COUNT];  /* env->committed when the run began */
    uint8_t hash_key[crypto_generichash_KEYBYTES];
    run_slot *slots;                        /* capacity a power of two, or NULL */
    size_t cap;
    uint64_t left;                          /* stored records not matched yet */
    uint64_t skipped;
    bool detect_saved;                      /* RUN_FLAG_DETECT_SAVED is on disk */
    bool finishing;                         /* store_run_end is completing the run */
    const store_audit_entry *final;         /* its audit entry, or NULL */
    uint64_t final_us;
};

/* ---------------------------------------------------------------------- */
/* Commit reports                                                          */
/* ---------------------------------------------------------------------- */

void store_commit_hook_set(store_env *env, store_commit_fn fn, void *ctx)
{
    if (env == NULL)
        return;
    env->commit_hook = fn;
    env->commit_hook_ctx = ctx;
}

/* Committed records of each class: run-wide while a run is active. */
static void run_committed(const store_env *env, uint64_t out[FV_CLASS_COUNT])
{
    const struct store_run *r = env->run;
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        out[c] = r != NULL ? r->base[c] + (env->committed[c] - r->handle_start[c])
                           : env->committed[c];
}

void store_commit_report(store_env *env)
{
    if (env->commit_hook == NULL)
        return;
    uint64_t committed[FV_CLASS_COUNT];
    run_committed(env, committed);
    env->commit_hook(env->commit_hook_ctx, committed);
}

/* ---------------------------------------------------------------------- */
/* Checkpoint value                                                        */
/* ---------------------------------------------------------------------- */

#define RUN_VALUE_MAX (2u + FV_CLASS_COUNT * 16u + 1u)

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int run_put_value(store_env *env, MDB_txn *txn, struct store_run *r,
                         const uint64_t committed[FV_CLASS_COUNT], bool detect_saved)
{
    uint8_t value[RUN_VALUE_MAX];
    /* Without the flag the value is written as version 1, which a
     * flowveil from before the flag can still resume. */
    value[0] = detect_saved ? RUN_FORMAT_VERSION : RUN_FORMAT_VERSION_NO_FLAGS;
    value[1] = FV_CLASS_COUNT;
    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        put_u64le(value + 2 + 16 * c, r->start_id[c]);
        put_u64le(value + 2 + 16 * c + 8, committed[c]);
    }
    value[2 + 16 * FV_CLASS_COUNT] = RUN_FLAG_DETECT_SAVED;
    MDB_val k = {.mv_size = strlen(r->meta_key), .mv_data = r->meta_key};
    MDB_val v = {.mv_size = detect_saved ? sizeof value : sizeof value - 1, .mv_data = value};
    return mdb_put(txn, env->meta, &k, &v, 0);
}

/* Parse a checkpoint value of version 1 or 2 into R's start ids, base
 * counts and detect_saved. Returns false for an unknown version, unknown
 * flags or a wrong length. */
static bool run_parse_value(const MDB_val *v, struct store_run *r)
{
    const uint8_t *b = v->mv_data;
    if (v->mv_size < 2 || b[1] > FV_CLASS_COUNT)
        return false;
    size_t counts_end = 2u + 16u * b[1];
    uint8_t flags = 0;
    if (b[0] == RUN_FORMAT_VERSION && v->mv_size == counts_end + 1u)
        flags = b[counts_end];
    else if (b[0] != RUN_FORMAT_VERSION_NO_FLAGS || v->mv_size != counts_end)
        return false;
    if ((flags & ~RUN_FLAG_DETECT_SAVED) != 0)
        return false;
    for (int c = 0; c < b[1]; c++) {
        r->start_id[c] = get_u64le(b + 2 + 16 * c);
        r->base[c] = get_u64le(b + 2 + 16 * c + 8);
    }
    r->detect_saved = (flags & RUN_FLAG_DETECT_SAVED) != 0;
    return true;
}

int store_run_write_progress(store_env *env, MDB_txn *txn, const uint64_t queued[FV_CLASS_COUNT])
{
    struct store_run *r = env->run;
    uint64_t committed[FV_CLASS_COUNT];
    run_committed(env, committed);
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        committed[c] += queued[c];
    return run_put_value(env, txn, r, committed, r->detect_saved);
}

int store_run_write_detect_saved(store_env *env, MDB_txn *txn)
{
    struct store_run *r = env->run;
    if (r == NULL)
        return MDB_SUCCESS;
    /* Queued records are not part of this transaction, so the counts
     * stay those of the last commit. */
    uint64_t committed[FV_CLASS_COUNT];
    run_committed(env, committed);
    return run_put_value(env, txn, r, committed, true);
}

void store_run_detect_saved_committed(store_env *env)
{
    if (env->run != NULL)
        env->run->detect_saved = true;
}

/* ---------------------------------------------------------------------- */
/* Counted hash set of stored records                                      */
/* ---------------------------------------------------------------------- */

static void run_hash(const struct store_run *r, fv_class cls, const uint8_t *plain, size_t len,
                     uint8_t out[RUN_HASH_BYTES])
{
    crypto_generichash_state st;
    uint8_t c = (uint8_t)cls;
    crypto_generichash_init(&st, r->hash_key, sizeof r->hash_key, RUN_HASH_BYTES);
    crypto_generichash_update(&st, &c, 1);
    crypto_generichash_update(&st, plain, len);
    crypto_generichash_final(&st, out, RUN_HASH_BYTES);
}

/* Slot of HASH: its entry, or the empty slot where it belongs. */
static run_slot *run_slot_find(struct store_run *r, const uint8_t hash[RUN_HASH_BYTES])
{
    uint64_t h;
    memcpy(&h, hash, sizeof h);
    size_t mask = r->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        run_slot *s = &r->slots[i];
        if (s->count == 0 || memcmp(s->hash, hash, RUN_HASH_BYTES) == 0)
            return s;
    }
}

bool store_run_take_stored(store_env *env, fv_class cls, const uint8_t *plain, size_t len)
{
    struct store_run *r = env->run;
    if (r == NULL || r->left == 0)
        return false;
    uint8_t hash[RUN_HASH_BYTES];
    run_hash(r, cls, plain, len, hash);
    run_slot *s = run_slot_find(r, hash);
    if (s->count == 0)
        return false;
    /* An exhausted entry must stay non-empty so that probing continues
     * past it, so it is marked with UINT32_MAX instead of 0. */
    if (s->count == UINT32_MAX)
        return false;
    s->count = s->count == 1 ? UINT32_MAX : s->count - 1;
    r->left--;
    r->skipped++;
    return true;
}

static void run_insert(struct store_run *r, const uint8_t hash[RUN_HASH_BYTES])
{
    run_slot *s = run_slot_find(r, hash);
    if (s->count == 0) {
        memcpy(s->hash, hash, RUN_HASH_BYTES);
        s->count = 1;
    } else if (s->count < UINT32_MAX - 1) {
        s->count++;
    }
    r->left++;
}

/* Read the records the run committed (ids above start_id) and add
 * their hashes to the set. Fills INFO->stored. */
static int run_load_stored(store_env *env, struct store_run *r, store_run_info *info)
{
    uint64_t total = 0;
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        total += r->base[c];
    if (total == 0)
        return FV_OK;

    size_t cap = 16;
    while (cap < 2 * total && cap < (SIZE_MAX / sizeof(run_slot)) / 4)
        cap *= 2;
    r->slots = calloc(cap, sizeof *r->slots);
    if (r->slots == NULL) {
        fv_error("store %s: out of memory reading back the %llu records of an interrupted "
                 "ingest", env->dir, (unsigned long long)total);
        return FV_ERR_NOMEM;
    }
    r->cap = cap;

    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    bool refreshed = false;
    uint8_t plain[STORE_RECORD_MAX_BYTES];
    int mrc = MDB_SUCCESS;
    for (int c = 0; c < FV_CLASS_COUNT && rc == FV_OK; c++) {
        /* Alerts are merged by the alert life cycle, not skipped. */
        if (c == FV_CLASS_ALERT || r->base[c] == 0 || !env->has_dbi[c])
            continue;
        MDB_cursor *cur = NULL;
        mrc = mdb_cursor_open(txn, env->dbi[c], &cur);
        if (mrc != MDB_SUCCESS)
            break;
        uint8_t keybuf[8];
        store_key_encode(r->start_id[c] + 1, keybuf);
        MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf}, v;
        uint64_t found = 0;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == MDB_SUCCESS;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t id;
            if (!store_key_decode(&k, &id)) {
                mrc = MDB_CORRUPTED;
                break;
            }
            size_t plain_len = 0;
            if (store_value_open(env, (fv_class)c, id, v.mv_data, v.mv_size, plain,
                                 sizeof plain, &plain_len, &refreshed) ==
                STORE_VALUE_UNDECRYPTABLE)
                continue;
            uint8_t hash[RUN_HASH_BYTES];
            run_hash(r, (fv_class)c, plain, plain_len, hash);
            sodium_memzero(plain, plain_len);
            if (!(r->left < r->cap / 2)) {
                /* More records than the checkpoint counted: another
                 * writer added some. Stop before the set overfills. */
                fv_warning("store %s: more %s records after the checkpoint than it counts; "
                           "records stored by another writer meanwhile are taken for the "
                           "interrupted ingest's", env->dir, fv_class_name((fv_class)c));
                break;
            }
            run_insert(r, hash);
            found++;
        }
        if (mrc == MDB_NOTFOUND)
            mrc = MDB_SUCCESS;
        mdb_cursor_close(cur);
        info->stored[c] = found;
        if (found != r->base[c])
            fv_notice("store %s: an interrupted ingest committed %llu %s records, %llu of "
                      "them are still stored", env->dir, (unsigned long long)r->base[c],
                      fv_class_name((fv_class)c), (unsigned long long)found);
    }
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read back the records of an interrupted ingest: %s",
                 env->dir, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Runs                                                                    */
/* ---------------------------------------------------------------------- */

void store_run_free(store_env *env)
{
    struct store_run *r = env->run;
    if (r == NULL)
        return;
    if (r->slots != NULL) {
        sodium_memzero(r->slots, r->cap * sizeof *r->slots);
        free(r->slots);
    }
    sodium_memzero(r, sizeof *r);
    free(r);
    env->run = NULL;
}

typedef struct run_begin_ctx {
    struct store_run *run;
    bool resumed;
} run_begin_ctx;

/* Read the checkpoint of the run, or write a new one with the current
 * last ids. */
static int run_begin_write(store_env *env, MDB_txn *txn, void *arg)
{
    run_begin_ctx *ctx = arg;
    struct store_run *r = ctx->run;
    MDB_val k = {.mv_size = strlen(r->meta_key), .mv_data = r->meta_key}, v;
    int mrc = mdb_get(txn, env->meta, &k, &v);
    if (mrc == MDB_SUCCESS && run_parse_value(&v, r)) {
        ctx->resumed = true;
        return MDB_SUCCESS;
    }
    if (mrc == MDB_SUCCESS)
        fv_warning("store %s: the checkpoint of this ingest has an unknown format; "
                   "starting the ingest afresh", env->dir);
    else if (mrc != MDB_NOTFOUND)
        return mrc;

    ctx->resumed = false;
    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        MDB_cursor *cur = NULL;
        mrc = mdb_cursor_open(txn, env->dbi[c], &cur);
        if (mrc != MDB_SUCCESS)
            return mrc;
        MDB_val lk, lv;
        r->start_id[c] = 0;
        r->base[c] = 0;
        mrc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
        if (mrc == MDB_SUCCESS && !store_key_decode(&lk, &r->start_id[c]))
            mrc = MDB_CORRUPTED;
        mdb_cursor_close(cur);
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
            return mrc;
        /* Queued records get ids above the last one handed out. */
        if (env->last_id[c] > r->start_id[c])
            r->start_id[c] = env->last_id[c];
    }
    r->detect_saved = false;
    uint64_t zero[FV_CLASS_COUNT] = {0};
    return run_put_value(env, txn, r, zero, false);
}

int store_run_begin(store_env *env, const uint8_t id[STORE_RUN_ID_BYTES], store_run_info *out)
{
    if (env == NULL || id == NULL || out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (env->rdonly || env->failed || env->run != NULL)
        return FV_ERR_STATE;

    /* Records queued before the run belong to no run. */
    int rc = store_commit(env);
    if (rc != FV_OK)
        return rc;
    env->run_counts_dropped = false;

    struct store_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return FV_ERR_NOMEM;
    memcpy(r->meta_key, RUN_META_PREFIX, sizeof RUN_META_PREFIX - 1);
    sodium_bin2hex(r->meta_key + sizeof RUN_META_PREFIX - 1,
                   sizeof r->meta_key - (sizeof RUN_META_PREFIX - 1), id, STORE_RUN_ID_BYTES);
    crypto_generichash_keygen(r->hash_key);
    memcpy(r->handle_start, env->committed, sizeof r->handle_start);

    run_begin_ctx ctx = {.run = r};
    rc = store_write_txn(env, "record the ingest checkpoint", run_begin_write, &ctx);
    if (rc == FV_OK && ctx.resumed)
        rc = run_load_stored(env, r, out);
    if (rc != FV_OK) {
        env->run = r;
        store_run_free(env);
        return rc;
    }
    out->resumed = ctx.resumed;
    out->detect_saved = r->detect_saved;
    env->run = r;
    return FV_OK;
}

bool store_run_holds_counters(const store_env *env)
{
    return env->run != NULL && !env->run->finishing;
}

bool store_run_finishing(const store_env *env)
{
    return env->run != NULL && env->run->finishing;
}

int store_run_finish_write(store_env *env, MDB_txn *txn)
{
    struct store_run *r = env->run;
    int mrc = store_held_counters_write(env, txn);
    if (mrc == MDB_SUCCESS && r->final != NULL)
        mrc = store_audit_append_txn(env, txn, r->final, r->final_us);
    if (mrc != MDB_SUCCESS)
        return mrc;
    MDB_val k = {.mv_size = strlen(r->meta_key), .mv_data = r->meta_key};
    mrc = mdb_del(txn, env->meta, &k, NULL);
    return mrc == MDB_NOTFOUND ? MDB_SUCCESS : mrc;
}

bool store_run_empty(const store_env *env)
{
    if (env == NULL || env->run == NULL || env->run->detect_saved || env->queue_len != 0)
        return false;
    uint64_t committed[FV_CLASS_COUNT];
    run_committed(env, committed);
    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        if (committed[c] != 0)
            return false;
    }
    return true;
}

static int run_forget_write(store_env *env, MDB_txn *txn, void *ctx)
{
    const struct store_run *r = ctx;
    MDB_val k = {.mv_size = strlen(r->meta_key), .mv_data = (void *)r->meta_key};
    int mrc = mdb_del(txn, env->meta, &k, NULL);
    return mrc == MDB_NOTFOUND ? MDB_SUCCESS : mrc;
}

int store_run_forget(store_env *env)
{
    if (env == NULL || env->run == NULL)
        return FV_ERR_STATE;
    return store_write_txn(env, "delete the ingest checkpoint", run_forget_write, env->run);
}

int store_run_end(store_env *env, bool complete, const store_audit_entry *final, uint64_t final_us,
                  uint64_t *skipped)
{
    if (skipped != NULL)
        *skipped = 0;
    if (env == NULL || env->run == NULL)
        return FV_ERR_STATE;
    struct store_run *r = env->run;
    if (skipped != NULL)
        *skipped = r->skipped;

    int rc = FV_OK;
    if (complete && final != NULL && !store_audit_entry_valid(final))
        rc = FV_ERR_INVALID;
    else if (complete) {
        /* The queue, the held counters, the audit entry and the deletion
         * of the checkpoint share the transaction of this commit
         * (commit_write_locked in store.c). */
        r->finishing = true;
        r->final = final;
        r->final_us = final_us;
        rc = store_commit(env);
        r->finishing = false;
        r->final = NULL;
    }
    if (!complete || rc != FV_OK) {
        /* The resume reads the whole input again and counts it then,
         * also what the process still counts while it closes (flows
         * ended by the discard of the open ones). */
        memset(&env->counters_delta, 0, sizeof env->counters_delta);
        env->counters_pending = false;
        store_held_counters_drop(env);
        env->run_counts_dropped = true;
    }
    store_run_free(env);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Size quota                                                              */
/* ---------------------------------------------------------------------- */

int store_used_bytes(store_env *env, uint64_t *out)
{
    *out = 0;
    MDB_envinfo info;
    MDB_stat st;
    int mrc = mdb_env_info(env->mdb, &info);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_env_stat(env->mdb, &st);
    if (mrc != MDB_SUCCESS)
        return mrc;

    /* Free pages are listed in LMDB's free database (dbi 0): each value
     * is an array of page numbers whose first element is the count, as
     * LMDB's own mdb_stat -f reads it. */
    MDB_txn *txn = NULL;
    if (store_read_begin(env, &txn) != FV_OK)
        return MDB_PANIC;
    uint64_t free_pages = 0;
    MDB_cursor *cur = NULL;
    mrc = mdb_cursor_open(txn, 0, &cur);
    if (mrc == MDB_SUCCESS) {
        MDB_val k, v;
        while ((mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
            if (v.mv_size >= sizeof(size_t)) {
                size_t n;
                memcpy(&n, v.mv_data, sizeof n);
                free_pages += n;
            }
        }
        if (mrc == MDB_NOTFOUND)
            mrc = MDB_SUCCESS;
        mdb_cursor_close(cur);
    }
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS)
        return mrc;

    uint64_t pages = (uint64_t)info.me_last_pgno + 1;
    pages = free_pages < pages ? pages - free_pages : 0;
    *out = pages * st.ms_psize;
    return MDB_SUCCESS;
}

int store_size_used(store_env *env, uint64_t *out)
{
    if (env == NULL || out == NULL)
        return FV_ERR_INVALID;
    int mrc = store_used_bytes(env, out);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot measure the used size: %s", env->dir, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    return FV_OK;
}

bool store_quota_reached(store_env *env)
{
    return env != NULL && env->quota_reached;
}

/* Append a "store.quota_reached" or "store.quota_cleared" audit entry:
 * records dropped at the quota are a gap the compliance record shows. */
static void quota_audit(store_env *env, const char *action, uint64_t used)
{
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.actor, sizeof e.actor, "system");
    snprintf(e.action, sizeof e.action, "%s", action);
    snprintf(e.object, sizeof e.object, "store");
    snprintf(e.params, sizeof e.params, "used=%llu&quota=%llu", (unsigned long long)used,
             (unsigned long long)env->quota_bytes);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    if (store_audit_append(env, &e, now_us, NULL) != FV_OK)
        fv_warning("store %s: cannot audit %s", env->dir, action);
}

int store_quota_check(store_env *env)
{
    if (env->quota_bytes == 0)
        return FV_OK;
    uint64_t used = 0;
    if (store_used_bytes(env, &used) != MDB_SUCCESS)
        return FV_OK;   /* measuring failed: the map limit still caps the file */
    if (used < env->quota_bytes) {
        if (env->quota_reached) {
            fv_notice("store %s: %llu bytes used, below the size quota of %llu bytes again; "
                      "storing records resumes", env->dir, (unsigned long long)used,
                      (unsigned long long)env->quota_bytes);
            env->quota_reached = false;
            quota_audit(env, "store.quota_cleared", used);
        }
        return FV_OK;
    }
    if (!env->quota_reached) {
        fv_error("store %s: %llu bytes used reach the size quota of %llu bytes "
                 "(retention.max_store_size); new records are dropped until the retention "
                 "sweep frees space. Raise the quota or shorten retention",
                 env->dir, (unsigned long long)used, (unsigned long long)env->quota_bytes);
        env->quota_reached = true;
        quota_audit(env, "store.quota_reached", used);
    }
    return FV_ERR_FULL;
}

int store_size_limit_set(store_env *env, uint64_t bytes)
{
    if (env == NULL || (bytes != 0 && bytes < STORE_QUOTA_MIN_BYTES))
        return FV_ERR_INVALID;
    if (env->rdonly)
        return FV_ERR_STATE;
    env->quota_bytes = bytes;
    env->quota_reached = false;
    if (bytes == 0) {
        env->map_max_bytes = STORE_MAP_MAX_BYTES;
        return FV_OK;
    }

    uint64_t cap = bytes + STORE_QUOTA_HEADROOM_BYTES;
    if (cap > SIZE_MAX)
        cap = SIZE_MAX;
    int rc = FV_OK;
    pthread_rwlock_wrlock(&env->map_lock);
    env->map_max_bytes = (size_t)cap;
    if (env->map_bytes > env->map_max_bytes) {
        /* LMDB keeps the map at least as large as the used file. */
        int mrc = mdb_env_set_mapsize(env->mdb, env->map_max_bytes);
        MDB_envinfo info;
        if (mrc == MDB_SUCCESS && mdb_env_info(env->mdb, &info) == MDB_SUCCESS)
            env->map_bytes = info.me_mapsize;
        if (mrc != MDB_SUCCESS) {
            fv_error("store %s: cannot shrink the map to %zu bytes: %s", env->dir,
                     env->map_max_bytes, mdb_strerror(mrc));
            rc = FV_ERR_STORE;
        }
        if (env->map_max_bytes < env->map_bytes)
            env->map_max_bytes = env->map_bytes;
    }
    pthread_rwlock_unlock(&env->map_lock);
    return rc;
}
