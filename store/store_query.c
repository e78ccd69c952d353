/*
 * store_query.c: range queries over one class and retention status.
 *
 * Each call runs in one short read transaction. Keys are stored-at times,
 * so the retention cutoff is a key bound: a forward walk starts at the
 * cutoff, a backward walk stops there. Traffic-time filters cannot use
 * the key order and are checked per record.
 */
#include <stdlib.h>
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

/* ---------------------------------------------------------------------- */
/* Cache of decoded aggregate records                                      */
/* ---------------------------------------------------------------------- */

/*
 * One cached record: the decoded fields and the stored value they were
 * decoded from (a copy, so a changed value under the same id misses).
 */
typedef struct cache_item {
    uint64_t id;
    fv_aggregate_record rec;
    size_t value_len;
    uint8_t value[];
} cache_item;

/*
 * The items sorted by id. Queries walk ids in order, so a lookup first
 * tries the slot after the previous hit (CURSOR) and reads the array
 * front to back. Records decoded during a query wait in PENDING and are
 * merged in after it, so no query moves the array under its own cursor.
 */
struct store_record_cache {
    pthread_mutex_t lock;       /* held for a whole cached query */
    fv_class cls;
    cache_item **items;         /* COUNT items, ascending id */
    size_t count, cap, max_entries;
    size_t cursor;              /* index after the last hit */
    cache_item **pending;       /* decoded in this query, not merged yet */
    size_t pending_count, pending_cap;
    store_env *env;             /* the store the items came from, NULL before the first query */
    uint64_t keys_generation;   /* data key file generation of the last purge */
};

int store_record_cache_create(fv_class cls, size_t max_entries, store_record_cache **out)
{
    if (out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (cls != FV_CLASS_AGGREGATE || max_entries == 0 || max_entries > (SIZE_MAX >> 4))
        return FV_ERR_INVALID;
    store_record_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return FV_ERR_NOMEM;
    c->cls = cls;
    c->max_entries = max_entries;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return FV_ERR_NOMEM;
    }
    *out = c;
    return FV_OK;
}

static void cache_item_free(cache_item *item)
{
    if (item == NULL)
        return;
    sodium_memzero(item, sizeof *item + item->value_len);
    free(item);
}

static void cache_clear(store_record_cache *c)
{
    for (size_t i = 0; i < c->count; i++)
        cache_item_free(c->items[i]);
    for (size_t i = 0; i < c->pending_count; i++)
        cache_item_free(c->pending[i]);
    c->count = 0;
    c->pending_count = 0;
    c->cursor = 0;
}

void store_record_cache_destroy(store_record_cache **cache)
{
    if (cache == NULL || *cache == NULL)
        return;
    store_record_cache *c = *cache;
    *cache = NULL;
    cache_clear(c);
    free(c->items);
    free(c->pending);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

size_t store_record_cache_count(store_record_cache *cache)
{
    if (cache == NULL)
        return 0;
    pthread_mutex_lock(&cache->lock);
    size_t n = cache->count;
    pthread_mutex_unlock(&cache->lock);
    return n;
}

/* The item of ID, or NULL. Moves the cursor past a hit. */
static cache_item *cache_find(store_record_cache *c, uint64_t id)
{
    size_t at = c->cursor;
    if (at < c->count && c->items[at]->id == id) {
        c->cursor = at + 1;
        return c->items[at];
    }
    /* A backward walk meets the item before the previous hit. */
    if (at >= 2 && at - 2 < c->count && c->items[at - 2]->id == id) {
        c->cursor = at - 1;
        return c->items[at - 2];
    }
    size_t lo = 0, hi = c->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->items[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->count && c->items[lo]->id == id) {
        c->cursor = lo + 1;
        return c->items[lo];
    }
    return NULL;
}

/* Keep a copy of record ID (value V, decoded REC) for the merge after the
 * query. A full cache keeps what it has: the records past it are
 * decrypted on every query, as without a cache. */
static void cache_add_pending(store_record_cache *c, uint64_t id, const MDB_val *v,
                              const fv_aggregate_record *rec)
{
    if (c->count + c->pending_count >= c->max_entries)
        return;
    if (c->pending_count == c->pending_cap) {
        size_t cap = c->pending_cap == 0 ? 256 : c->pending_cap * 2;
        cache_item **grown = realloc(c->pending, cap * sizeof(cache_item *));
        if (grown == NULL)
            return;
        c->pending = grown;
        c->pending_cap = cap;
    }
    cache_item *item = malloc(sizeof *item + v->mv_size);
    if (item == NULL)
        return;
    item->id = id;
    item->rec = *rec;
    item->value_len = v->mv_size;
    memcpy(item->value, v->mv_data, v->mv_size);
    c->pending[c->pending_count++] = item;
}

static int cache_item_cmp(const void *a, const void *b)
{
    uint64_t x = (*(cache_item *const *)a)->id, y = (*(cache_item *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* Merge the pending items into the sorted array. A pending item whose
 * id is already cached replaces the old one (its value changed). */
static void cache_merge_pending(store_record_cache *c)
{
    if (c->pending_count == 0)
        return;
    size_t need = c->count + c->pending_count;
    if (need > c->cap) {
        size_t cap = c->cap == 0 ? 1024 : c->cap;
        while (cap < need)
            cap *= 2;
        cache_item **grown = realloc(c->items, cap * sizeof(cache_item *));
        if (grown == NULL) {
            for (size_t i = 0; i < c->pending_count; i++)
                cache_item_free(c->pending[i]);
            c->pending_count = 0;
            return;
        }
        c->items = grown;
        c->cap = cap;
    }
    /* A forward walk adds ascending ids, a backward one descending ids. */
    qsort(c->pending, c->pending_count, sizeof(cache_item *), cache_item_cmp);

    /* Merge from the back into the array's free tail. */
    size_t i = c->count, j = c->pending_count, out = need;
    while (j > 0) {
        if (i > 0 && c->items[i - 1]->id > c->pending[j - 1]->id) {
            c->items[--out] = c->items[--i];
        } else if (i > 0 && c->items[i - 1]->id == c->pending[j - 1]->id) {
            cache_item_free(c->items[--i]);
            c->items[--out] = c->pending[--j];
        } else {
            c->items[--out] = c->pending[--j];
        }
    }
    /* Replacements left a gap of OUT - I slots in front of the merged part. */
    if (out > i)
        memmove(&c->items[i], &c->items[out], (need - out) * sizeof(cache_item *));
    c->count = need - (out - i);
    c->pending_count = 0;
    c->cursor = 0;
}

/* True if this process's key table has the data key of (CLS, DAY).
 * Caller holds the key lock. */
static bool keys_have_day(store_env *env, fv_class cls, uint32_t day)
{
    const store_keys *k = &env->keys;
    for (size_t i = 0; i < k->count; i++) {
        const store_key_slot *s = &k->slots[i];
        if (s->in_use && s->cls == (uint8_t)cls && s->day == day)
            return true;
    }
    return false;
}

/* Drop and wipe every item whose day key is gone from the key table
 * (crypto-shredded). Caller holds the cache and key locks. */
static void cache_purge_shredded(store_record_cache *c, store_env *env)
{
    size_t kept = 0;
    uint32_t day = 0;
    bool present = false, checked = false;
    for (size_t i = 0; i < c->count; i++) {
        cache_item *item = c->items[i];
        uint32_t d = store_day_of(item->id);
        if (!checked || d != day) {
            present = keys_have_day(env, c->cls, d);
            day = d;
            checked = true;
        }
        if (present)
            c->items[kept++] = item;
        else
            cache_item_free(item);
    }
    c->count = kept;
    c->cursor = 0;
}

/* The day whose key presence was checked last in one query. */
typedef struct day_memo {
    uint32_t day;
    bool valid, present;
} day_memo;

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

/*
 * Fill REC from CACHE for record ID with stored value V, when the cache
 * has this exact value and the key of the record's day still exists (so
 * the uncached path would decrypt it to the same record). Caller holds
 * the cache lock.
 */
static bool cache_lookup(store_record_cache *cache, store_env *env, fv_class cls, uint64_t id,
                         const MDB_val *v, day_memo *memo, fv_record *rec)
{
    cache_item *item = cache_find(cache, id);
    if (item == NULL || item->value_len != v->mv_size ||
        memcmp(item->value, v->mv_data, v->mv_size) != 0)
        return false;
    uint32_t day = store_day_of(id);
    if (!memo->valid || memo->day != day) {
        store_keys_lock(env);
        memo->present = keys_have_day(env, cls, day);
        store_keys_unlock(env);
        memo->day = day;
        memo->valid = true;
    }
    if (!memo->present)
        return false;
    rec->cls = cls;
    rec->u.aggregate = item->rec;
    return true;
}

static int query_run(store_env *env, const store_query *q, uint64_t now_us, store_record_fn fn,
                     void *ctx, uint64_t *next_cursor, store_query_stats *stats_out,
                     store_record_cache *cache);

int store_query_run_stats(store_env *env, const store_query *q, uint64_t now_us,
                          store_record_fn fn, void *ctx, uint64_t *next_cursor,
                          store_query_stats *stats_out)
{
    return query_run(env, q, now_us, fn, ctx, next_cursor, stats_out, NULL);
}

int store_query_run_cached(store_env *env, store_record_cache *cache, const store_query *q,
                           uint64_t now_us, store_record_fn fn, void *ctx,
                           uint64_t *next_cursor)
{
    if (cache == NULL || q == NULL || q->cls != cache->cls)
        return query_run(env, q, now_us, fn, ctx, next_cursor, NULL, NULL);
    pthread_mutex_lock(&cache->lock);
    /* One cache serves one store: entries of another would be wrong. */
    if (cache->env != env) {
        cache_clear(cache);
        cache->env = env;
        cache->keys_generation = 0;
    }
    cache->cursor = 0;
    int rc = query_run(env, q, now_us, fn, ctx, next_cursor, NULL, cache);
    cache_merge_pending(cache);
    pthread_mutex_unlock(&cache->lock);
    return rc;
}

static int query_run(store_env *env, const store_query *q, uint64_t now_us, store_record_fn fn,
                     void *ctx, uint64_t *next_cursor, store_query_stats *stats_out,
                     store_record_cache *cache)
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

    /* Pick up day keys created or destroyed by another process, and
     * forget the cached records of every day whose key is gone, so no
     * plaintext of a crypto-shredded day stays in memory. */
    store_keys_lock(env);
    if (store_keys_refresh(env) != FV_OK)
        fv_warning("store %s: cannot re-read the data key file; using the keys loaded before",
                   env->dir);
    if (cache != NULL && cache->keys_generation != env->keys.generation) {
        cache_purge_shredded(cache, env);
        cache->keys_generation = env->keys.generation;
    }
    store_keys_unlock(env);
    day_memo memo = {.valid = false};

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
        if (cache == NULL || !cache_lookup(cache, env, q->cls, id, &v, &memo, &rec)) {
            if (!query_decode(env, q->cls, id, &v, &keys_refreshed, &stats, &rec))
                continue;
            /* Plaintext values (format 1) are cheap to read again. */
            if (cache != NULL && v.mv_size > 0 && ((const uint8_t *)v.mv_data)[0] != 1)
                cache_add_pending(cache, id, &v, &rec.u.aggregate);
        }
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
