/*
 * store_escrow.c: the key-escrow database and deletion of single records.
 *
 * The named database "escrow" maps one pseudonym of one epoch to the raw
 * identifier behind it, sealed to the compliance officers' public keys by
 * the capturing process, so the store only ever receives ciphertext.
 *
 *   key:   16 bytes pseudonym || u64 epoch id, big-endian   (24 bytes)
 *   value: u64 stored-at time in microseconds, big-endian || sealed blob
 *
 * The key starts with the pseudonym so a token (its first 10 bytes) is
 * found with one range lookup. Entries expire with the retention limit of
 * the flows class, counted from the stored-at time.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define ESCROW_KEY_BYTES (FV_PSEUDONYM_BYTES + 8u)
#define ESCROW_VALUE_HEADER 8u

/* Keys examined by one sweep transaction. Expired entries are not
 * ordered by key, so the sweep walks the whole database in slices. */
#define ESCROW_SWEEP_SCAN_MAX 50000u

/* Records deleted by one store_delete_records transaction. */
#define DELETE_BATCH_MAX 1000u

static void be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

static void escrow_key_encode(const uint8_t pseudonym[FV_PSEUDONYM_BYTES], uint64_t epoch_id,
                              uint8_t key[ESCROW_KEY_BYTES])
{
    memcpy(key, pseudonym, FV_PSEUDONYM_BYTES);
    be64_put(key + FV_PSEUDONYM_BYTES, epoch_id);
}

/* Decode one database item into E; false if its sizes are wrong. */
static bool escrow_item_decode(const MDB_val *k, const MDB_val *v, store_escrow_entry *e)
{
    if (k->mv_size != ESCROW_KEY_BYTES || v->mv_size < ESCROW_VALUE_HEADER ||
        !(v->mv_size - ESCROW_VALUE_HEADER <= STORE_ESCROW_BLOB_MAX))
        return false;
    const uint8_t *kb = k->mv_data;
    const uint8_t *vb = v->mv_data;
    memcpy(e->pseudonym, kb, FV_PSEUDONYM_BYTES);
    e->epoch_id = be64_get(kb + FV_PSEUDONYM_BYTES);
    e->stored_us = be64_get(vb);
    e->blob_len = (uint32_t)(v->mv_size - ESCROW_VALUE_HEADER);
    memcpy(e->blob, vb + ESCROW_VALUE_HEADER, e->blob_len);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Put                                                                     */
/* ---------------------------------------------------------------------- */

typedef struct escrow_put_ctx {
    const store_escrow_entry *entries;
    size_t count;
    size_t written;     /* out: entries that were new */
} escrow_put_ctx;

static int escrow_put_write(store_env *env, MDB_txn *txn, void *arg)
{
    escrow_put_ctx *ctx = arg;
    uint8_t key[ESCROW_KEY_BYTES];
    uint8_t value[ESCROW_VALUE_HEADER + STORE_ESCROW_BLOB_MAX];

    ctx->written = 0;
    for (size_t i = 0; i < ctx->count; i++) {
        const store_escrow_entry *e = &ctx->entries[i];
        escrow_key_encode(e->pseudonym, e->epoch_id, key);
        be64_put(value, e->stored_us);
        memcpy(value + ESCROW_VALUE_HEADER, e->blob, e->blob_len);
        MDB_val k = {.mv_size = sizeof key, .mv_data = key};
        MDB_val v = {.mv_size = ESCROW_VALUE_HEADER + e->blob_len, .mv_data = value};
        /* The first sealing of a pseudonym stays, because a later one
         * contains the same identifier and would only rewrite the page. */
        int mrc = mdb_put(txn, env->escrow, &k, &v, MDB_NOOVERWRITE);
        if (mrc == MDB_KEYEXIST)
            continue;
        if (mrc != MDB_SUCCESS)
            return mrc;
        ctx->written++;
    }
    return MDB_SUCCESS;
}

int store_escrow_put(store_env *env, const store_escrow_entry *entries, size_t count,
                     size_t *written)
{
    if (written != NULL)
        *written = 0;
    if (env == NULL || (entries == NULL && count > 0))
        return FV_ERR_INVALID;
    if (!env->has_escrow)
        return FV_ERR_STATE;
    for (size_t i = 0; i < count; i++) {
        if (entries[i].blob_len == 0 || entries[i].blob_len > STORE_ESCROW_BLOB_MAX)
            return FV_ERR_INVALID;
    }
    if (count == 0)
        return FV_OK;

    escrow_put_ctx ctx = {.entries = entries, .count = count};
    int rc = store_write_txn(env, "write escrow entries", escrow_put_write, &ctx);
    if (rc == FV_OK && written != NULL)
        *written = ctx.written;
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Find                                                                    */
/* ---------------------------------------------------------------------- */

int store_escrow_find(store_env *env, const uint8_t *prefix, size_t prefix_len,
                      store_escrow_fn fn, void *ctx, size_t *matched)
{
    if (matched != NULL)
        *matched = 0;
    if (env == NULL || fn == NULL || (prefix == NULL && prefix_len > 0) ||
        prefix_len > ESCROW_KEY_BYTES)
        return FV_ERR_INVALID;
    if (!env->has_escrow)
        return FV_OK;   /* a store from before escrow existed: nothing sealed */

    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    store_escrow_entry *e = malloc(sizeof *e);
    if (e == NULL)
        return FV_ERR_NOMEM;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        goto out;
    int mrc = mdb_cursor_open(txn, env->escrow, &cur);
    if (mrc != MDB_SUCCESS) {
        rc = FV_ERR_STORE;
        goto out;
    }

    uint8_t start[ESCROW_KEY_BYTES] = {0};
    if (prefix_len > 0)
        memcpy(start, prefix, prefix_len);
    MDB_val k = {.mv_size = sizeof start, .mv_data = start};
    MDB_val v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == MDB_SUCCESS) {
        /* PREFIX may be NULL when PREFIX_LEN is 0, and memcmp needs valid pointers. */
        if (k.mv_size < prefix_len ||
            (prefix_len > 0 && memcmp(k.mv_data, prefix, prefix_len) != 0))
            break;
        if (!escrow_item_decode(&k, &v, e)) {
            fv_warning("store %s: an escrow entry has an invalid size; skipping it", env->dir);
        } else {
            if (matched != NULL)
                (*matched)++;
            if (!fn(ctx, e))
                break;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        rc = FV_ERR_STORE;

out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(env, &txn);
    sodium_memzero(e, sizeof *e);
    free(e);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Delete                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct escrow_del_ctx {
    const uint8_t *pseudonym;
    uint64_t epoch_id;
    bool deleted;
} escrow_del_ctx;

static int escrow_delete_write(store_env *env, MDB_txn *txn, void *arg)
{
    escrow_del_ctx *ctx = arg;
    uint8_t key[ESCROW_KEY_BYTES];
    escrow_key_encode(ctx->pseudonym, ctx->epoch_id, key);
    MDB_val k = {.mv_size = sizeof key, .mv_data = key};
    int mrc = mdb_del(txn, env->escrow, &k, NULL);
    ctx->deleted = mrc == MDB_SUCCESS;
    return mrc == MDB_NOTFOUND ? MDB_SUCCESS : mrc;
}

int store_escrow_delete(store_env *env, const uint8_t pseudonym[FV_PSEUDONYM_BYTES],
                        uint64_t epoch_id, bool *deleted)
{
    if (deleted != NULL)
        *deleted = false;
    if (env == NULL || pseudonym == NULL)
        return FV_ERR_INVALID;
    if (!env->has_escrow)
        return FV_OK;
    escrow_del_ctx ctx = {.pseudonym = pseudonym, .epoch_id = epoch_id};
    int rc = store_write_txn(env, "delete an escrow entry", escrow_delete_write, &ctx);
    if (rc == FV_OK && deleted != NULL)
        *deleted = ctx.deleted;
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Sweep                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct escrow_sweep_ctx {
    uint64_t cutoff_us;
    uint32_t batch;
    uint8_t resume[ESCROW_KEY_BYTES];   /* first key of the next slice */
    bool has_resume;
    uint32_t deleted;   /* out: this transaction */
    bool done;          /* out: the walk reached the end */
} escrow_sweep_ctx;

/* Delete expired entries from ctx->resume on, until BATCH deletions or
 * ESCROW_SWEEP_SCAN_MAX keys, and remember where to go on. */
static int escrow_sweep_write(store_env *env, MDB_txn *txn, void *arg)
{
    escrow_sweep_ctx *ctx = arg;
    MDB_cursor *cur = NULL;
    ctx->deleted = 0;
    ctx->done = false;

    int mrc = mdb_cursor_open(txn, env->escrow, &cur);
    if (mrc != MDB_SUCCESS)
        return mrc;

    uint8_t start[ESCROW_KEY_BYTES];
    memcpy(start, ctx->resume, sizeof start);
    MDB_val k = {.mv_size = sizeof start, .mv_data = start};
    MDB_val v;
    mrc = ctx->has_resume ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                          : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    uint32_t scanned = 0;
    while (mrc == MDB_SUCCESS) {
        if (ctx->deleted >= ctx->batch || scanned >= ESCROW_SWEEP_SCAN_MAX) {
            if (k.mv_size == ESCROW_KEY_BYTES) {
                memcpy(ctx->resume, k.mv_data, ESCROW_KEY_BYTES);
                ctx->has_resume = true;
            }
            break;
        }
        scanned++;
        /* A damaged value has no usable time: it is removed as expired. */
        bool expired = v.mv_size < ESCROW_VALUE_HEADER ||
                       be64_get(v.mv_data) < ctx->cutoff_us;
        if (expired) {
            mrc = mdb_cursor_del(cur, 0);
            if (mrc != MDB_SUCCESS)
                break;
            ctx->deleted++;
            /* After mdb_cursor_del, MDB_NEXT returns the item that
             * followed the deleted one (LMDB does not skip it). */
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND) {
        ctx->done = true;
        mrc = MDB_SUCCESS;
    }
    return mrc;
}

int store_escrow_sweep(store_env *env, uint64_t now_us, uint32_t batch, uint32_t max_txns,
                       uint64_t *deleted, uint32_t *txns, bool *done)
{
    *done = true;
    if (!env->has_escrow)
        return FV_OK;
    uint64_t retention_s = store_retention_s(env, FV_CLASS_FLOW);
    if (retention_s == 0)
        return FV_OK;

    escrow_sweep_ctx ctx = {
        .cutoff_us = store_live_cutoff_us(retention_s, now_us),
        .batch = batch,
    };
    uint32_t used = 0;
    for (;;) {
        if (used >= max_txns) {
            *done = false;
            return FV_OK;
        }
        int rc = store_write_txn(env, "delete expired escrow entries", escrow_sweep_write, &ctx);
        if (rc != FV_OK)
            return rc;
        used++;
        (*txns)++;
        *deleted += ctx.deleted;
        if (ctx.done)
            return FV_OK;
    }
}

int store_escrow_count(store_env *env, uint64_t *out)
{
    if (env == NULL || out == NULL)
        return FV_ERR_INVALID;
    *out = 0;
    if (!env->has_escrow)
        return FV_OK;
    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    MDB_stat st;
    if (mdb_stat(txn, env->escrow, &st) == MDB_SUCCESS)
        *out = st.ms_entries;
    else
        rc = FV_ERR_STORE;
    store_read_end(env, &txn);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Deleting records by id                                                  */
/* ---------------------------------------------------------------------- */

typedef struct delete_ctx {
    fv_class cls;
    const uint64_t *ids;
    size_t count;
    uint64_t deleted;   /* out: this transaction */
} delete_ctx;

static int delete_write(store_env *env, MDB_txn *txn, void *arg)
{
    delete_ctx *ctx = arg;
    ctx->deleted = 0;
    for (size_t i = 0; i < ctx->count; i++) {
        uint8_t key[8];
        store_key_encode(ctx->ids[i], key);
        MDB_val k = {.mv_size = sizeof key, .mv_data = key};
        int mrc = mdb_del(txn, env->dbi[ctx->cls], &k, NULL);
        if (mrc == MDB_NOTFOUND)
            continue;
        if (mrc != MDB_SUCCESS)
            return mrc;
        ctx->deleted++;
    }
    return MDB_SUCCESS;
}

int store_delete_records(store_env *env, fv_class cls, const uint64_t *ids, size_t count,
                         uint64_t *deleted)
{
    if (deleted != NULL)
        *deleted = 0;
    if (env == NULL || (unsigned)cls >= FV_CLASS_COUNT || (ids == NULL && count > 0))
        return FV_ERR_INVALID;
    if (!env->has_dbi[cls])
        return count == 0 ? FV_OK : FV_ERR_STATE;

    for (size_t done = 0; done < count;) {
        size_t n = count - done;
        if (n > DELETE_BATCH_MAX)
            n = DELETE_BATCH_MAX;
        delete_ctx ctx = {.cls = cls, .ids = ids + done, .count = n};
        int rc = store_write_txn(env, "delete records", delete_write, &ctx);
        if (rc != FV_OK)
            return rc;
        if (deleted != NULL)
            *deleted += ctx.deleted;
        done += n;
    }
    /* An erased alert takes its life-cycle entry with it. */
    if (cls == FV_CLASS_ALERT)
        return store_alerts_forget(env, ids, count);
    return FV_OK;
}
