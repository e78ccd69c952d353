/*
 * store_query.c: range queries over one class and retention status.
 *
 * Each call runs in one short read transaction. Keys are stored-at times,
 * so the retention cutoff is a key bound: a forward walk starts at the
 * cutoff, a backward walk stops there. Traffic-time filters cannot use
 * the key order and are checked per record.
 */
#include <string.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

/* Keys examined per query call at most, so that a filter matching few
 * records cannot hold a read transaction (and old pages) for long. */
#define STORE_QUERY_SCAN_MAX 100000u

/* Return true if REC's traffic time falls in [FROM_US, TO_US]. A flow
 * matches when its span overlaps the window. */
static bool record_in_window(const fv_record *rec, uint64_t from_us, uint64_t to_us)
{
    uint64_t first, last;
    switch (rec->cls) {
    case FV_CLASS_FLOW:
        first = rec->u.flow.first_us;
        last = rec->u.flow.last_us;
        break;
    case FV_CLASS_DNS:
        first = last = rec->u.dns.ts_us;
        break;
    case FV_CLASS_TLS:
        first = last = rec->u.tls.ts_us;
        break;
    case FV_CLASS_HTTP:
        first = last = rec->u.http.ts_us;
        break;
    case FV_CLASS_DHCP:
        first = last = rec->u.dhcp.ts_us;
        break;
    case FV_CLASS_SSH:
        first = last = rec->u.ssh.ts_us;
        break;
    case FV_CLASS_AGGREGATE:
        /* A bucket matches when any part of its span lies in the window. */
        first = rec->u.aggregate.bucket_start_us;
        last = first + (uint64_t)rec->u.aggregate.bucket_s * 1000000u - 1u;
        break;
    case FV_CLASS_ALERT:
        /* Alerts are found by the traffic they rest on, not by when they
         * were raised: a replayed capture raises alerts long after. */
        first = rec->u.alert.first_us;
        last = rec->u.alert.last_us;
        break;
    default:
        return false;
    }
    return last >= from_us && first <= to_us;
}

/* Position CUR at the first key of the walk. Return an LMDB code;
 * MDB_NOTFOUND means there is nothing to walk. */
static int query_seek(MDB_cursor *cur, const store_query *q, uint64_t cutoff_us, MDB_val *k,
                      MDB_val *v)
{
    uint8_t keybuf[8];

    if (!q->newest_first) {
        if (q->after_id == UINT64_MAX)
            return MDB_NOTFOUND;
        uint64_t start = q->after_id + 1 > cutoff_us ? q->after_id + 1 : cutoff_us;
        store_key_encode(start, keybuf);
        k->mv_size = sizeof keybuf;
        k->mv_data = keybuf;
        return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    }

    if (q->before_id == 0)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    store_key_encode(q->before_id, keybuf);
    k->mv_size = sizeof keybuf;
    k->mv_data = keybuf;
    int mrc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND)
        return mdb_cursor_get(cur, k, v, MDB_LAST);
    if (mrc != MDB_SUCCESS)
        return mrc;
    return mdb_cursor_get(cur, k, v, MDB_PREV);
}

int store_query_run(store_env *env, const store_query *q, uint64_t now_us,
                    store_record_fn fn, void *ctx, uint64_t *next_cursor)
{
    return store_query_run_stats(env, q, now_us, fn, ctx, next_cursor, NULL);
}

uint64_t store_undecryptable_total(store_env *env)
{
    return env != NULL ? atomic_load(&env->undecryptable_total) : 0;
}

/* Decrypt and decode the value V of record ID. Counts failures in STATS. */
static bool query_decode(store_env *env, fv_class cls, uint64_t id, const MDB_val *v,
                         bool *refreshed, store_query_stats *stats, fv_record *rec)
{
    uint8_t plain[STORE_RECORD_MAX_BYTES];
    size_t plain_len = 0;
    store_value_status st = store_value_open(env, cls, id, v->mv_data, v->mv_size, plain,
                                             sizeof plain, &plain_len, refreshed);
    if (st == STORE_VALUE_UNDECRYPTABLE) {
        stats->undecryptable++;
        return false;
    }
    bool ok = store_record_decode(cls, plain, plain_len, rec) == FV_OK;
    sodium_memzero(plain, plain_len);
    if (!ok)
        stats->undecodable++;
    return ok;
}

int store_query_run_stats(store_env *env, const store_query *q, uint64_t now_us,
                          store_record_fn fn, void *ctx, uint64_t *next_cursor,
                          store_query_stats *stats_out)
{
    store_query_stats stats = {0};
    if (stats_out != NULL)
        *stats_out = stats;
    if (next_cursor != NULL)
        *next_cursor = 0;
    if (env == NULL || q == NULL || fn == NULL || (unsigned)q->cls >= FV_CLASS_COUNT)
        return FV_ERR_INVALID;
    if (q->limit < 1 || q->limit > STORE_QUERY_LIMIT_MAX)
        return FV_ERR_INVALID;
    if (!env->has_dbi[q->cls])
        return FV_OK;

    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;

    uint64_t retention_s = store_retention_in_txn(env, txn, q->cls);
    uint64_t cutoff_us = store_live_cutoff_us(retention_s, now_us);
    uint64_t to_us = q->to_us != 0 ? q->to_us : UINT64_MAX;
    uint64_t next = 0;
    uint32_t returned = 0, scanned = 0;
    bool keys_refreshed = false;

    /* Pick up day keys created or destroyed by another process. */
    store_keys_lock(env);
    if (store_keys_refresh(env) != FV_OK)
        fv_warning("store %s: cannot re-read the data key file; using the keys loaded before",
                   env->dir);
    store_keys_unlock(env);

    int mrc = mdb_cursor_open(txn, env->dbi[q->cls], &cur);
    if (mrc != MDB_SUCCESS)
        goto out;

    MDB_val k, v;
    MDB_cursor_op step = q->newest_first ? MDB_PREV : MDB_NEXT;
    for (mrc = query_seek(cur, q, cutoff_us, &k, &v); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(cur, &k, &v, step)) {
        uint64_t id;
        if (!store_key_decode(&k, &id)) {
            mrc = MDB_CORRUPTED;
            break;
        }
        /* Expired records are never returned, swept or not. Going
         * backwards, everything from here on is older still. */
        if (id < cutoff_us)
            break;

        if (scanned == STORE_QUERY_SCAN_MAX) {
            next = q->newest_first ? id + 1 : id - 1;
            break;
        }
        scanned++;

        fv_record rec;
        if (!query_decode(env, q->cls, id, &v, &keys_refreshed, &stats, &rec))
            continue;
        rec.id = id;
        rec.stored_us = id;
        if (!record_in_window(&rec, q->from_us, to_us))
            continue;

        returned++;
        if (!fn(ctx, &rec) || returned == q->limit) {
            /* Resume after this record, unless nothing follows it. */
            MDB_val k2, v2;
            int peek = mdb_cursor_get(cur, &k2, &v2, step);
            uint64_t id2 = 0;
            if (peek == MDB_SUCCESS && store_key_decode(&k2, &id2) && id2 >= cutoff_us)
                next = id;
            break;
        }
    }
    if (mrc == MDB_NOTFOUND)
        mrc = MDB_SUCCESS;

out:
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: query on %s failed: %s", env->dir, fv_class_name(q->cls),
                 mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        next = 0;
    }
    if (stats.undecryptable > 0) {
        atomic_fetch_add(&env->undecryptable_total, stats.undecryptable);
        fv_warning("store %s: skipped %u undecryptable %s records (no key for their day, "
                   "or the value was altered)",
                   env->dir, stats.undecryptable, fv_class_name(q->cls));
    }
    if (stats.undecodable > 0)
        fv_warning("store %s: skipped %u undecodable %s records", env->dir, stats.undecodable,
                   fv_class_name(q->cls));
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(env, &txn);
    if (next_cursor != NULL)
        *next_cursor = next;
    if (stats_out != NULL)
        *stats_out = stats;
    return rc;
}

/* Read the sweep history of CLS from the meta database into OUT. */
static int status_read_sweep(store_env *env, MDB_txn *txn, fv_class cls,
                             store_class_status *out)
{
    const char *suffix[] = {"last_us", "last_deleted", "total_deleted"};
    uint64_t *dst[] = {&out->last_sweep_us, &out->last_sweep_deleted, &out->total_deleted};

    for (size_t i = 0; i < 3; i++) {
        char key[64];
        if (!store_meta_key(key, sizeof key, "sweep", cls, suffix[i]))
            return MDB_INVALID;
        int mrc = store_meta_get_u64(env, txn, key, dst[i]);
        if (mrc != MDB_SUCCESS)
            return mrc;
    }
    return MDB_SUCCESS;
}

/*
 * Fill the sweep schedule of ST at NOW_US. The sweeper is late when its
 * last run is older than twice the interval. A class never swept is late
 * once its oldest record is older than one interval: by then a running
 * capturing process would have swept it.
 * NOTE: the store keeps no creation time, so the oldest record of the
 * class stands in for the age of the store.
 */
static void status_schedule(store_class_status *st, uint64_t now_us)
{
    st->next_sweep_us = 0;
    st->sweep_lag = STORE_SWEEP_ON_TIME;
    uint64_t interval_s = st->sweep_interval_s;
    if (interval_s == 0)
        return;
    if (interval_s > STORE_RETENTION_MAX_S)
        interval_s = STORE_RETENTION_MAX_S;
    uint64_t interval_us = interval_s * 1000000u;

    if (st->last_sweep_us != 0) {
        st->next_sweep_us = st->last_sweep_us + interval_us;
        if (now_us > st->last_sweep_us && now_us - st->last_sweep_us > 2 * interval_us)
            st->sweep_lag = STORE_SWEEP_LATE;
        return;
    }
    bool stored = st->records > 0 || st->expired_pending > 0;
    if (!stored || st->oldest_stored_us == 0)
        return;
    st->next_sweep_us = st->oldest_stored_us + interval_us;
    if (now_us > st->oldest_stored_us && now_us - st->oldest_stored_us > interval_us)
        st->sweep_lag = STORE_SWEEP_NEVER;
}

bool store_class_status_warning(const store_class_status *st)
{
    return st != NULL && (st->expired_pending > 0 || st->sweep_lag != STORE_SWEEP_ON_TIME);
}

/* ---------------------------------------------------------------------- */
/* Meta values by name                                                     */
/* ---------------------------------------------------------------------- */

#define STORE_META_KEY_MAX 63u

static bool meta_key_valid(const char *key)
{
    if (key == NULL)
        return false;
    size_t n = strlen(key);
    return n > 0 && n <= STORE_META_KEY_MAX;
}

typedef struct meta_set_ctx {
    const char *key;
    uint64_t value;
} meta_set_ctx;

static int meta_set_write(store_env *env, MDB_txn *txn, void *ctx)
{
    const meta_set_ctx *m = ctx;
    return store_meta_put_u64(env, txn, m->key, m->value);
}

int store_meta_set(store_env *env, const char *key, uint64_t value)
{
    if (env == NULL || !meta_key_valid(key))
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;
    meta_set_ctx m = {.key = key, .value = value};
    return store_write_txn(env, "write a meta value", meta_set_write, &m);
}

int store_meta_get(store_env *env, const char *key, uint64_t *out)
{
    if (env == NULL || out == NULL || !meta_key_valid(key))
        return FV_ERR_INVALID;
    *out = 0;
    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    int mrc = store_meta_get_u64(env, txn, key, out);
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read meta value %s: %s", env->dir, key, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    return FV_OK;
}

/*
 * Count expired and live records. Expired records are the oldest keys,
 * so the walk stops at the first live one and costs time in proportion
 * to the sweeper's backlog. The live count is mdb_stat's total minus
 * the expired ones.
 * oldest_stored_us is the oldest record on disk, expired or not, so a
 * lagging sweeper shows in it.
 */
int store_class_status_get(store_env *env, fv_class cls, uint64_t now_us,
                           store_class_status *out)
{
    if (env == NULL || out == NULL || (unsigned)cls >= FV_CLASS_COUNT)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);

    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;

    out->retention_s = store_retention_in_txn(env, txn, cls);
    int mrc = status_read_sweep(env, txn, cls, out);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_get_u64(env, txn, STORE_META_SWEEP_INTERVAL, &out->sweep_interval_s);
    if (mrc != MDB_SUCCESS || !env->has_dbi[cls])
        goto out;

    MDB_stat st;
    mrc = mdb_stat(txn, env->dbi[cls], &st);
    if (mrc != MDB_SUCCESS)
        goto out;
    out->bytes = ((uint64_t)st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) *
                 st.ms_psize;

    mrc = mdb_cursor_open(txn, env->dbi[cls], &cur);
    if (mrc != MDB_SUCCESS)
        goto out;

    MDB_val k, v;
    uint64_t id;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (mrc == MDB_NOTFOUND) {
        mrc = MDB_SUCCESS;
        goto out;
    }
    if (mrc != MDB_SUCCESS)
        goto out;
    if (!store_key_decode(&k, &out->newest_stored_us)) {
        mrc = MDB_CORRUPTED;
        goto out;
    }

    uint64_t cutoff_us = store_live_cutoff_us(out->retention_s, now_us);
    uint64_t expired = 0;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!store_key_decode(&k, &id)) {
            mrc = MDB_CORRUPTED;
            break;
        }
        if (expired == 0)
            out->oldest_stored_us = id;
        if (id >= cutoff_us)
            break;
        expired++;
    }
    if (mrc == MDB_NOTFOUND)
        mrc = MDB_SUCCESS;
    out->expired_pending = expired;
    out->records = st.ms_entries - expired;

out:
    if (mrc == MDB_SUCCESS)
        status_schedule(out, now_us);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read the status of %s: %s", env->dir, fv_class_name(cls),
                 mdb_strerror(mrc));
        rc = FV_ERR_STORE;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(env, &txn);
    return rc;
}
