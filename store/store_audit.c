/*
 * store_audit.c: the append-only, hash-chained audit trail.
 *
 * Entry encoding, format version 1. Integers are little-endian with the
 * width given, as in store_codec.c; a str is a u16 length N and N bytes,
 * where N is less than the size of the C field and the bytes contain no
 * NUL. Fields in this order, then nothing (trailing bytes are an error):
 *
 *   u8  format version, always 1
 *   u64 seq, u64 time_us
 *   str actor, str role, str action, str object, str params
 *   u64 result_count
 *   str reason
 *   32 bytes prev_hash
 *   32 bytes hash
 *
 * The hash of an entry is BLAKE2b-256 (libsodium crypto_generichash, no
 * key) over this encoding without the final 32 hash bytes. Because every
 * string carries its length, no two different entries share that input.
 *
 * Meta database keys (u64 values little-endian, hashes 32 raw bytes):
 *   retention/audit      audit retention limit in seconds, 0 = forever
 *   audit/head_seq       sequence number of the last appended entry
 *   audit/head_hash      hash of that entry
 *   audit/pruned_through last sequence number removed by retention
 *   audit/pruned_hash    hash of that entry: the prev_hash of the first kept one
 * head_seq and head_hash are written in the append transaction, and the
 * pruned pair in the prune transaction, so they always match the data.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define AUDIT_FORMAT_VERSION 1u
#define AUDIT_META_RETENTION "retention/audit"
#define AUDIT_META_HEAD_SEQ "audit/head_seq"
#define AUDIT_META_HEAD_HASH "audit/head_hash"
#define AUDIT_META_PRUNED_SEQ "audit/pruned_through"
#define AUDIT_META_PRUNED_HASH "audit/pruned_hash"

#define REASON_EDITED "hash mismatch (entry edited)"
#define REASON_LINK "previous-hash mismatch (entry removed or reordered)"
#define REASON_GAP "sequence gap (entries deleted)"
#define REASON_DECODE "decode failed"
#define REASON_HEAD "head mismatch (entries deleted at the end)"

/* ---------------------------------------------------------------------- */
/* Encoding                                                                */
/* ---------------------------------------------------------------------- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool full;
} wbuf;

static void put_bytes(wbuf *w, const void *data, size_t n)
{
    if (w->full || !(n <= w->cap - w->len)) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

static void put_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put_bytes(w, b, sizeof b);
}

/* Append FIELD (of SIZE bytes) as a str; false if it has no NUL. */
static bool put_str(wbuf *w, const char *field, size_t size)
{
    size_t n = strnlen(field, size);
    if (n == size)
        return false;
    uint8_t b[2] = {(uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    put_bytes(w, b, sizeof b);
    put_bytes(w, field, n);
    return true;
}

/* Encode E into W; WITH_HASH false leaves out the final hash field. */
static int audit_encode_into(const store_audit_entry *e, wbuf *w, bool with_hash)
{
    uint8_t version = AUDIT_FORMAT_VERSION;
    put_bytes(w, &version, 1);
    put_u64(w, e->seq);
    put_u64(w, e->time_us);
    if (!put_str(w, e->actor, sizeof e->actor) || !put_str(w, e->role, sizeof e->role) ||
        !put_str(w, e->action, sizeof e->action) || !put_str(w, e->object, sizeof e->object) ||
        !put_str(w, e->params, sizeof e->params))
        return FV_ERR_INVALID;
    put_u64(w, e->result_count);
    if (!put_str(w, e->reason, sizeof e->reason))
        return FV_ERR_INVALID;
    put_bytes(w, e->prev_hash, sizeof e->prev_hash);
    if (with_hash)
        put_bytes(w, e->hash, sizeof e->hash);
    return w->full ? FV_ERR_FULL : FV_OK;
}

int store_audit_encode(const store_audit_entry *e, uint8_t *out, size_t out_len, size_t *written)
{
    if (e == NULL || out == NULL)
        return FV_ERR_INVALID;
    wbuf w = {.p = out, .cap = out_len};
    int rc = audit_encode_into(e, &w, true);
    if (rc == FV_OK && written != NULL)
        *written = w.len;
    return rc;
}

int store_audit_hash(const store_audit_entry *e, uint8_t out[32])
{
    uint8_t buf[STORE_AUDIT_ENTRY_MAX_BYTES];
    wbuf w = {.p = buf, .cap = sizeof buf};
    int rc = audit_encode_into(e, &w, false);
    if (rc != FV_OK)
        return rc;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    if (crypto_generichash(out, STORE_AUDIT_HASH_BYTES, buf, w.len, NULL, 0) != 0)
        return FV_ERR_CRYPTO;
    return FV_OK;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
} rbuf;

static bool get_bytes(rbuf *r, void *out, size_t n)
{
    if (!(n <= r->len - r->off))
        return false;
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return true;
}

static bool get_u64(rbuf *r, uint64_t *v)
{
    uint8_t b[8];
    if (!get_bytes(r, b, sizeof b))
        return false;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | b[i];
    *v = x;
    return true;
}

/* Read a str into FIELD of SIZE bytes: the length must leave room for
 * the NUL and the bytes must not contain one. */
static bool get_str(rbuf *r, char *field, size_t size)
{
    uint8_t b[2];
    if (!get_bytes(r, b, sizeof b))
        return false;
    size_t n = (size_t)b[0] | (size_t)b[1] << 8;
    if (!(n < size) || !get_bytes(r, field, n))
        return false;
    if (memchr(field, '\0', n) != NULL)
        return false;
    field[n] = '\0';
    return true;
}

int store_audit_decode(const uint8_t *data, size_t len, store_audit_entry *out)
{
    if (out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (data == NULL)
        return FV_ERR_PARSE;

    rbuf r = {.p = data, .len = len};
    uint8_t version = 0;
    bool ok = get_bytes(&r, &version, 1) && version == AUDIT_FORMAT_VERSION &&
              get_u64(&r, &out->seq) && get_u64(&r, &out->time_us) &&
              get_str(&r, out->actor, sizeof out->actor) &&
              get_str(&r, out->role, sizeof out->role) &&
              get_str(&r, out->action, sizeof out->action) &&
              get_str(&r, out->object, sizeof out->object) &&
              get_str(&r, out->params, sizeof out->params) &&
              get_u64(&r, &out->result_count) &&
              get_str(&r, out->reason, sizeof out->reason) &&
              get_bytes(&r, out->prev_hash, sizeof out->prev_hash) &&
              get_bytes(&r, out->hash, sizeof out->hash) && r.off == r.len;
    if (!ok) {
        memset(out, 0, sizeof *out);
        return FV_ERR_PARSE;
    }
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Meta helpers                                                            */
/* ---------------------------------------------------------------------- */

/* Read a 32-byte hash from the meta database; missing reads as zero. */
static int meta_get_hash(store_env *env, MDB_txn *txn, const char *key, uint8_t out[32])
{
    memset(out, 0, STORE_AUDIT_HASH_BYTES);
    if (!env->has_meta)
        return MDB_SUCCESS;
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
    MDB_val v;
    int mrc = mdb_get(txn, env->meta, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return MDB_SUCCESS;
    if (mrc != MDB_SUCCESS)
        return mrc;
    if (v.mv_size != STORE_AUDIT_HASH_BYTES)
        return MDB_CORRUPTED;
    memcpy(out, v.mv_data, STORE_AUDIT_HASH_BYTES);
    return MDB_SUCCESS;
}

static int meta_put_hash(store_env *env, MDB_txn *txn, const char *key, const uint8_t hash[32])
{
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
    MDB_val v = {.mv_size = STORE_AUDIT_HASH_BYTES, .mv_data = (void *)hash};
    return mdb_put(txn, env->meta, &k, &v, 0);
}

/* Replace every byte outside printable ASCII with '?'. */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7e)
            *s = '?';
    }
}

/* ---------------------------------------------------------------------- */
/* Append                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct append_ctx {
    store_audit_entry entry;    /* fields from the caller, sanitized */
    uint64_t now_us;
} append_ctx;

/* Find the entry the new one links to: the recorded head, the pruning
 * point when everything was pruned, or the last stored entry if the meta
 * head is behind it (a store written before head tracking). */
static int append_base(store_env *env, MDB_txn *txn, uint64_t *seq, uint8_t hash[32],
                       uint64_t *time_us)
{
    uint64_t head = 0, pruned = 0;
    *time_us = 0;
    int mrc = store_meta_get_u64(env, txn, AUDIT_META_HEAD_SEQ, &head);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_get_u64(env, txn, AUDIT_META_PRUNED_SEQ, &pruned);
    if (mrc != MDB_SUCCESS)
        return mrc;
    if (head >= pruned) {
        *seq = head;
        mrc = meta_get_hash(env, txn, AUDIT_META_HEAD_HASH, hash);
    } else {
        *seq = pruned;
        mrc = meta_get_hash(env, txn, AUDIT_META_PRUNED_HASH, hash);
    }
    if (mrc != MDB_SUCCESS)
        return mrc;

    MDB_cursor *cur = NULL;
    mrc = mdb_cursor_open(txn, env->audit, &cur);
    if (mrc != MDB_SUCCESS)
        return mrc;
    MDB_val k, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (mrc == MDB_SUCCESS) {
        uint64_t last = 0;
        store_audit_entry prev;
        if (!store_key_decode(&k, &last))
            mrc = MDB_CORRUPTED;  // NOLINT(bugprone-branch-clone): a bad key and a gap are two causes
        else if (store_audit_decode(v.mv_data, v.mv_size, &prev) == FV_OK) {
            *time_us = prev.time_us;
            if (last > *seq) {
                *seq = last;
                memcpy(hash, prev.hash, STORE_AUDIT_HASH_BYTES);
            }
        } else if (last > *seq) {
            mrc = MDB_CORRUPTED;
        }
    } else if (mrc == MDB_NOTFOUND) {
        mrc = MDB_SUCCESS;
    }
    mdb_cursor_close(cur);
    return mrc;
}

static int append_write(store_env *env, MDB_txn *txn, void *arg)
{
    append_ctx *ctx = arg;
    store_audit_entry *e = &ctx->entry;
    uint64_t base_seq = 0, base_time = 0;

    int mrc = append_base(env, txn, &base_seq, e->prev_hash, &base_time);
    if (mrc != MDB_SUCCESS)
        return mrc;
    e->seq = base_seq + 1;
    e->time_us = ctx->now_us > base_time ? ctx->now_us : base_time;
    if (store_audit_hash(e, e->hash) != FV_OK)
        return MDB_INVALID;

    uint8_t buf[STORE_AUDIT_ENTRY_MAX_BYTES];
    size_t len = 0;
    if (store_audit_encode(e, buf, sizeof buf, &len) != FV_OK)
        return MDB_INVALID;

    uint8_t keybuf[8];
    store_key_encode(e->seq, keybuf);
    MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
    MDB_val v = {.mv_size = len, .mv_data = buf};
    mrc = mdb_put(txn, env->audit, &k, &v, MDB_NOOVERWRITE);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_put_u64(env, txn, AUDIT_META_HEAD_SEQ, e->seq);
    if (mrc == MDB_SUCCESS)
        mrc = meta_put_hash(env, txn, AUDIT_META_HEAD_HASH, e->hash);
    return mrc;
}

/* Copy the caller's fields of E into CTX, sanitized, with time NOW_US.
 * Returns FV_ERR_INVALID for a string without NUL. */
static int append_prepare(const store_audit_entry *e, uint64_t now_us, append_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now_us = now_us;
    char *dst[] = {ctx->entry.actor, ctx->entry.role, ctx->entry.action, ctx->entry.object,
                   ctx->entry.params, ctx->entry.reason};
    const char *src[] = {e->actor, e->role, e->action, e->object, e->params, e->reason};
    const size_t size[] = {sizeof e->actor,  sizeof e->role,   sizeof e->action,
                           sizeof e->object, sizeof e->params, sizeof e->reason};
    for (size_t i = 0; i < sizeof size / sizeof size[0]; i++) {
        size_t n = strnlen(src[i], size[i]);
        if (n == size[i])
            return FV_ERR_INVALID;
        memcpy(dst[i], src[i], n + 1);
        sanitize(dst[i]);
    }
    ctx->entry.result_count = e->result_count;
    return FV_OK;
}

bool store_audit_entry_valid(const store_audit_entry *e)
{
    append_ctx ctx;
    return append_prepare(e, 0, &ctx) == FV_OK;
}

int store_audit_append_txn(store_env *env, MDB_txn *txn, const store_audit_entry *e,
                           uint64_t now_us)
{
    if (!env->has_audit)
        return MDB_INVALID;
    append_ctx ctx;
    if (append_prepare(e, now_us, &ctx) != FV_OK)
        return MDB_INVALID;
    return append_write(env, txn, &ctx);
}

int store_audit_append(store_env *env, const store_audit_entry *e, uint64_t now_us,
                       uint64_t *seq_out)
{
    if (env == NULL || e == NULL)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed || !env->has_audit)
        return FV_ERR_STATE;

    append_ctx ctx;
    int rc = append_prepare(e, now_us, &ctx);
    if (rc != FV_OK)
        return rc;

    rc = store_write_txn(env, "append an audit entry", append_write, &ctx);
    if (rc == FV_OK && seq_out != NULL)
        *seq_out = ctx.entry.seq;
    return rc;
}

typedef struct append_batch_ctx {
    const store_audit_entry *entries;
    const uint64_t *now_us;
    size_t count;
    uint64_t last_seq;          /* out */
} append_batch_ctx;

/* Append every entry of the batch inside TXN. Each append reads the head
 * the previous one wrote, so the chain is the same as with one
 * transaction per entry. */
static int append_batch_write(store_env *env, MDB_txn *txn, void *arg)
{
    append_batch_ctx *batch = arg;
    append_ctx ctx;

    for (size_t i = 0; i < batch->count; i++) {
        if (append_prepare(&batch->entries[i], batch->now_us[i], &ctx) != FV_OK)
            return MDB_INVALID;
        int mrc = append_write(env, txn, &ctx);
        if (mrc != MDB_SUCCESS)
            return mrc;
        batch->last_seq = ctx.entry.seq;
    }
    return MDB_SUCCESS;
}

int store_audit_append_batch(store_env *env, const store_audit_entry *entries,
                             const uint64_t *now_us, size_t count, uint64_t *last_seq)
{
    if (env == NULL || (count > 0 && (entries == NULL || now_us == NULL)))
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed || !env->has_audit)
        return FV_ERR_STATE;
    if (count == 0)
        return FV_OK;

    /* Check every entry first: an invalid one inside the transaction
     * would abort the whole batch with a store error instead. */
    append_ctx check;
    for (size_t i = 0; i < count; i++) {
        if (append_prepare(&entries[i], now_us[i], &check) != FV_OK)
            return FV_ERR_INVALID;
    }

    append_batch_ctx batch = {.entries = entries, .now_us = now_us, .count = count};
    int rc = store_write_txn(env, "append a batch of audit entries", append_batch_write, &batch);
    if (rc == FV_OK && last_seq != NULL)
        *last_seq = batch.last_seq;
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Verify                                                                  */
/* ---------------------------------------------------------------------- */

static void verify_fail(store_audit_verify_result *out, uint64_t seq, const char *reason)
{
    out->ok = false;
    out->broken_seq = seq;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
}

/* Walk the chain inside TXN. Returns an LMDB code; the verdict goes to OUT. */
static int verify_walk(store_env *env, MDB_txn *txn, store_audit_verify_result *out)
{
    uint64_t pruned = 0, head_seq = 0;
    uint8_t expected_prev[32], head_hash[32];
    int mrc = store_meta_get_u64(env, txn, AUDIT_META_PRUNED_SEQ, &pruned);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_get_u64(env, txn, AUDIT_META_HEAD_SEQ, &head_seq);
    if (mrc == MDB_SUCCESS)
        mrc = meta_get_hash(env, txn, AUDIT_META_PRUNED_HASH, expected_prev);
    if (mrc == MDB_SUCCESS)
        mrc = meta_get_hash(env, txn, AUDIT_META_HEAD_HASH, head_hash);
    if (mrc == MDB_CORRUPTED) {
        verify_fail(out, head_seq, REASON_DECODE);
        return MDB_SUCCESS;
    }
    if (mrc != MDB_SUCCESS)
        return mrc;

    out->first_seq = pruned + 1;
    out->head_seq = head_seq;
    memcpy(out->head_hash, expected_prev, sizeof out->head_hash);
    uint64_t expected_seq = pruned + 1;

    if (env->has_audit) {
        MDB_cursor *cur = NULL;
        mrc = mdb_cursor_open(txn, env->audit, &cur);
        if (mrc != MDB_SUCCESS)
            return mrc;
        MDB_val k, v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == MDB_SUCCESS) {
            uint64_t seq = 0;
            store_audit_entry e;
            uint8_t hash[32];
            if (!store_key_decode(&k, &seq)) {
                verify_fail(out, expected_seq, REASON_DECODE);
                break;
            }
            if (seq != expected_seq) {
                /* A key below the pruning point means the pruning record
                 * was changed; both cases break the chain at EXPECTED_SEQ. */
                verify_fail(out, seq > expected_seq ? expected_seq : seq,
                            seq > expected_seq ? REASON_GAP : REASON_LINK);
                break;
            }
            if (store_audit_decode(v.mv_data, v.mv_size, &e) != FV_OK) {
                verify_fail(out, seq, REASON_DECODE);
                break;
            }
            if (store_audit_hash(&e, hash) != FV_OK ||
                sodium_memcmp(hash, e.hash, sizeof hash) != 0) {
                verify_fail(out, seq, REASON_EDITED);
                break;
            }
            if (memcmp(e.prev_hash, expected_prev, sizeof expected_prev) != 0 || e.seq != seq) {
                verify_fail(out, seq, REASON_LINK);
                break;
            }
            out->checked++;
            memcpy(expected_prev, e.hash, sizeof expected_prev);
            memcpy(out->head_hash, e.hash, sizeof out->head_hash);
            expected_seq = seq + 1;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
            return mrc;
    }

    /* When retention removed every entry, the chain is empty, and both
     * the head and the pruning point name the last pruned entry. */
    if (out->ok && (expected_seq - 1 != head_seq ||
                    memcmp(out->head_hash, head_hash, sizeof head_hash) != 0))
        verify_fail(out, expected_seq, REASON_HEAD);
    return MDB_SUCCESS;
}

int store_audit_verify(store_env *env, store_audit_verify_result *out)
{
    if (env == NULL || out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->ok = true;

    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    int mrc = verify_walk(env, txn, out);
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read the audit trail: %s", env->dir, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Listing                                                                 */
/* ---------------------------------------------------------------------- */

int store_audit_each(store_env *env, uint64_t from_seq, uint32_t limit, bool newest_first,
                     store_audit_fn fn, void *ctx, uint64_t *next)
{
    if (next != NULL)
        *next = 0;
    if (env == NULL || fn == NULL || limit == 0 || limit > STORE_AUDIT_LIMIT_MAX)
        return FV_ERR_INVALID;
    if (!env->has_audit)
        return FV_OK;

    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;

    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, env->audit, &cur);
    if (mrc != MDB_SUCCESS)
        goto out;

    uint8_t keybuf[8];
    MDB_val k, v;
    if (from_seq == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, newest_first ? MDB_LAST : MDB_FIRST);
    } else {
        store_key_encode(from_seq, keybuf);
        k = (MDB_val){.mv_size = sizeof keybuf, .mv_data = keybuf};
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (newest_first) {
            /* SET_RANGE finds the first key >= FROM_SEQ; step back unless
             * it is FROM_SEQ itself. */
            uint64_t found = 0;
            if (mrc == MDB_NOTFOUND)
                mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            else if (mrc == MDB_SUCCESS && store_key_decode(&k, &found) && found > from_seq)
                mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
        }
    }

    uint32_t delivered = 0;
    while (mrc == MDB_SUCCESS) {
        uint64_t seq = 0;
        if (!store_key_decode(&k, &seq)) {
            mrc = MDB_CORRUPTED;
            break;
        }
        if (delivered == limit) {
            if (next != NULL)
                *next = seq;
            break;
        }
        store_audit_entry e;
        if (store_audit_decode(v.mv_data, v.mv_size, &e) == FV_OK) {
            delivered++;
            if (!fn(ctx, &e)) {
                mrc = mdb_cursor_get(cur, &k, &v, newest_first ? MDB_PREV : MDB_NEXT);
                if (mrc == MDB_SUCCESS && next != NULL && store_key_decode(&k, &seq))
                    *next = seq;
                break;
            }
        } else {
            fv_warning("store %s: audit entry %llu does not decode; skipped (run `flowveil "
                       "audit verify`)",
                       env->dir, (unsigned long long)seq);
        }
        mrc = mdb_cursor_get(cur, &k, &v, newest_first ? MDB_PREV : MDB_NEXT);
    }
    if (mrc == MDB_NOTFOUND)
        mrc = MDB_SUCCESS;
    mdb_cursor_close(cur);

out:
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read the audit trail: %s", env->dir, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Retention                                                               */
/* ---------------------------------------------------------------------- */

typedef struct u64_ctx {
    uint64_t value;
} u64_ctx;

static int audit_retention_write(store_env *env, MDB_txn *txn, void *arg)
{
    const u64_ctx *c = arg;
    return store_meta_put_u64(env, txn, AUDIT_META_RETENTION, c->value);
}

int store_set_audit_retention(store_env *env, uint64_t retention_s)
{
    if (env == NULL)
        return FV_ERR_INVALID;
    if (retention_s > STORE_RETENTION_MAX_S) {
        fv_error("store %s: audit retention of %llu s exceeds the maximum of %llu s", env->dir,
                 (unsigned long long)retention_s, (unsigned long long)STORE_RETENTION_MAX_S);
        return FV_ERR_INVALID;
    }
    u64_ctx c = {.value = retention_s};
    return store_write_txn(env, "write the audit retention limit", audit_retention_write, &c);
}

uint64_t store_audit_retention_s(store_env *env)
{
    if (env == NULL)
        return 0;
    MDB_txn *txn = NULL;
    if (store_read_begin(env, &txn) != FV_OK)
        return 0;
    uint64_t v = 0;
    if (store_meta_get_u64(env, txn, AUDIT_META_RETENTION, &v) != MDB_SUCCESS)
        v = 0;
    store_read_end(env, &txn);
    return v;
}

typedef struct prune_ctx {
    uint64_t now_us;
    uint32_t batch;
    uint32_t deleted;   /* out: deleted by this transaction */
    bool done;          /* out: the oldest remaining entry is live (or none) */
} prune_ctx;

/*
 * Delete up to ctx->batch expired entries, oldest first, and move the
 * pruning point to the last one deleted in the same transaction. An
 * entry that does not decode stops pruning: its hash is unknown, so the
 * pruning point could not be recorded, and verify must see it.
 */
static int prune_write(store_env *env, MDB_txn *txn, void *arg)
{
    prune_ctx *ctx = arg;
    ctx->deleted = 0;
    ctx->done = false;

    uint64_t retention_s = 0;
    int mrc = store_meta_get_u64(env, txn, AUDIT_META_RETENTION, &retention_s);
    if (mrc != MDB_SUCCESS)
        return mrc;
    uint64_t cutoff_us = store_live_cutoff_us(retention_s, ctx->now_us);

    MDB_cursor *cur = NULL;
    mrc = mdb_cursor_open(txn, env->audit, &cur);
    if (mrc != MDB_SUCCESS)
        return mrc;

    uint64_t last_seq = 0;
    uint8_t last_hash[32];
    for (;;) {
        MDB_val k, v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrc == MDB_NOTFOUND) {
            ctx->done = true;
            mrc = MDB_SUCCESS;
            break;
        }
        if (mrc != MDB_SUCCESS)
            break;
        store_audit_entry e;
        uint64_t seq = 0;
        if (!store_key_decode(&k, &seq) ||
            store_audit_decode(v.mv_data, v.mv_size, &e) != FV_OK) {
            fv_warning("store %s: audit entry %llu does not decode; retention stops before it",
                       env->dir, (unsigned long long)seq);
            ctx->done = true;
            break;
        }
        if (e.time_us >= cutoff_us) {
            ctx->done = true;
            break;
        }
        if (ctx->deleted == ctx->batch)
            break;
        mrc = mdb_cursor_del(cur, 0);
        if (mrc != MDB_SUCCESS)
            break;
        ctx->deleted++;
        last_seq = seq;
        memcpy(last_hash, e.hash, sizeof last_hash);
    }
    mdb_cursor_close(cur);
    if (mrc != MDB_SUCCESS)
        return mrc;

    if (ctx->deleted > 0) {
        mrc = store_meta_put_u64(env, txn, AUDIT_META_PRUNED_SEQ, last_seq);
        if (mrc == MDB_SUCCESS)
            mrc = meta_put_hash(env, txn, AUDIT_META_PRUNED_HASH, last_hash);
    }
    return mrc;
}

int store_audit_prune(store_env *env, uint64_t now_us, uint32_t batch, uint32_t max_txns,
                      uint64_t *deleted, uint32_t *txns, bool *done)
{
    *done = true;
    if (!env->has_audit || store_audit_retention_s(env) == 0)
        return FV_OK;

    prune_ctx ctx = {.now_us = now_us, .batch = batch};
    uint32_t used = 0;
    for (;;) {
        if (used >= max_txns) {
            *done = false;
            return FV_OK;
        }
        int rc = store_write_txn(env, "delete expired audit entries", prune_write, &ctx);
        if (rc != FV_OK)
            return rc;
        used++;
        (*txns)++;
        *deleted += ctx.deleted;
        if (ctx.done)
            return FV_OK;
    }
}
