/*
 * store_detstate.c: the detectors' learned state (det_engine_save bytes)
 * across restarts.
 *
 * The named database "detstate" contains one saved state, replaced as a
 * whole at every save:
 *
 *   key "head":          u64 saved-at microseconds || u32 length || u32 chunks
 *   key u32 index (BE):  chunk INDEX, sealed like a flow record whose id
 *                        is saved-at + INDEX
 *
 * Chunks are at most STORE_DETSTATE_CHUNK bytes of plaintext because a
 * sealed value contains at most STORE_RECORD_MAX_BYTES. They are encrypted
 * under the flows class key of the saving day, so the state, which is
 * derived from flows, becomes unreadable when the sweep destroys that
 * key; store_detstate_get then returns FV_ERR_NOT_FOUND.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define STORE_DETSTATE_DB "detstate"
#define STORE_DETSTATE_CHUNK 4000u
#define STORE_DETSTATE_HEAD_BYTES 16u

static char detstate_head_key[] = "head";
/* Sanity limit on a stored state: far above what the bounded detector
 * tables can produce. */
#define STORE_DETSTATE_MAX_BYTES (1024ull * 1024u * 1024u)

static void be_put(uint8_t *out, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        out[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t be_get(const uint8_t *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = (v << 8) | in[i];
    return v;
}

typedef struct detstate_put_ctx {
    const uint8_t *data;
    size_t len;
    uint64_t saved_us;
} detstate_put_ctx;

static int detstate_put_txn(store_env *env, MDB_txn *txn, void *arg)
{
    detstate_put_ctx *c = arg;
    MDB_dbi dbi;
    int mrc = mdb_dbi_open(txn, STORE_DETSTATE_DB, MDB_CREATE, &dbi);
    if (mrc != MDB_SUCCESS)
        return mrc;
    /* Replace the previous state as a whole. */
    mrc = mdb_drop(txn, dbi, 0);
    if (mrc != MDB_SUCCESS)
        return mrc;

    size_t chunks = (c->len + STORE_DETSTATE_CHUNK - 1) / STORE_DETSTATE_CHUNK;
    uint8_t head[STORE_DETSTATE_HEAD_BYTES];
    be_put(head, c->saved_us, 8);
    be_put(head + 8, c->len, 4);
    be_put(head + 12, chunks, 4);
    MDB_val k = {.mv_size = sizeof detstate_head_key - 1, .mv_data = detstate_head_key};
    MDB_val v = {.mv_size = sizeof head, .mv_data = head};
    mrc = mdb_put(txn, dbi, &k, &v, 0);
    if (mrc != MDB_SUCCESS)
        return mrc;

    uint8_t sealed[STORE_DETSTATE_CHUNK + STORE_VALUE_OVERHEAD];
    store_keys_lock(env);
    for (size_t i = 0; i < chunks && mrc == MDB_SUCCESS; i++) {
        size_t off = i * STORE_DETSTATE_CHUNK;
        size_t n = c->len - off < STORE_DETSTATE_CHUNK ? c->len - off : STORE_DETSTATE_CHUNK;
        size_t sealed_len = 0;
        if (store_value_seal(env, FV_CLASS_FLOW, c->saved_us + i, c->data + off, n, sealed,
                             sizeof sealed, &sealed_len) != FV_OK) {
            mrc = EIO;
            break;
        }
        uint8_t key[4];
        be_put(key, i, 4);
        MDB_val ck = {.mv_size = sizeof key, .mv_data = key};
        MDB_val cv = {.mv_size = sealed_len, .mv_data = sealed};
        mrc = mdb_put(txn, dbi, &ck, &cv, 0);
    }
    store_keys_unlock(env);
    sodium_memzero(sealed, sizeof sealed);
    if (mrc != MDB_SUCCESS)
        return mrc;
    /* The checkpoint of an active ingest run records that this state
     * contains the run's input, in the same transaction: a resume after
     * a kill at any point must find both or neither. */
    return store_run_write_detect_saved(env, txn);
}

int store_detstate_put(store_env *env, const uint8_t *data, size_t len, uint64_t now_us)
{
    if (env == NULL || (data == NULL && len > 0) || len > STORE_DETSTATE_MAX_BYTES)
        return FV_ERR_INVALID;
    detstate_put_ctx c = {data, len, now_us};
    int rc = store_write_txn(env, "save the detector state", detstate_put_txn, &c);
    if (rc == FV_OK)
        store_run_detect_saved_committed(env);
    return rc;
}

int store_detstate_get(store_env *env, uint8_t **out, size_t *out_len)
{
    if (env == NULL || out == NULL || out_len == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    *out_len = 0;

    int rc = FV_ERR_NOT_FOUND;
    uint8_t *buf = NULL;
    uint8_t plain[STORE_DETSTATE_CHUNK];
    MDB_txn *txn = NULL;
    pthread_rwlock_rdlock(&env->map_lock);
    int mrc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn);
    if (mrc != MDB_SUCCESS) {
        rc = FV_ERR_STORE;
        goto out;
    }
    MDB_dbi dbi;
    if (mdb_dbi_open(txn, STORE_DETSTATE_DB, 0, &dbi) != MDB_SUCCESS)
        goto out; /* never saved */

    MDB_val k = {.mv_size = sizeof detstate_head_key - 1, .mv_data = detstate_head_key};
    MDB_val v;
    if (mdb_get(txn, dbi, &k, &v) != MDB_SUCCESS || v.mv_size != STORE_DETSTATE_HEAD_BYTES)
        goto out;
    uint64_t saved_us = be_get(v.mv_data, 8);
    size_t len = (size_t)be_get((const uint8_t *)v.mv_data + 8, 4);
    size_t chunks = (size_t)be_get((const uint8_t *)v.mv_data + 12, 4);
    if (chunks != (len + STORE_DETSTATE_CHUNK - 1) / STORE_DETSTATE_CHUNK) {
        rc = FV_ERR_PARSE;
        goto out;
    }
    buf = malloc(len + 1);
    if (buf == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < chunks; i++) {
        uint8_t key[4];
        be_put(key, i, 4);
        MDB_val ck = {.mv_size = sizeof key, .mv_data = key};
        MDB_val cv;
        if (mdb_get(txn, dbi, &ck, &cv) != MDB_SUCCESS) {
            rc = FV_ERR_PARSE;
            goto out;
        }
        size_t plain_len = 0;
        store_value_status st = store_value_open(env, FV_CLASS_FLOW, saved_us + i, cv.mv_data,
                                                 cv.mv_size, plain, sizeof plain, &plain_len,
                                                 NULL);
        size_t want = len - i * STORE_DETSTATE_CHUNK < STORE_DETSTATE_CHUNK
                          ? len - i * STORE_DETSTATE_CHUNK
                          : STORE_DETSTATE_CHUNK;
        if (st != STORE_VALUE_OK || plain_len != want) {
            /* The day's key was destroyed by retention, or the value is
             * damaged: the state is gone. */
            rc = FV_ERR_NOT_FOUND;
            goto out;
        }
        memcpy(buf + i * STORE_DETSTATE_CHUNK, plain, plain_len);
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = FV_OK;
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&env->map_lock);
    sodium_memzero(plain, sizeof plain);
    free(buf);
    return rc;
}
