/*
 * store_sweep.c: deletion of records past their class's retention limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"

#define STORE_SWEEP_BATCH_DEFAULT 10000u

typedef struct sweep_batch_ctx {
    fv_class cls;
    uint32_t batch;
    uint64_t now_us;
    uint64_t deleted_before;    /* deleted from this class earlier in this sweep */
    uint32_t deleted;           /* out: deleted by this transaction */
    bool class_done;            /* out: the oldest remaining key is live (or none) */
} sweep_batch_ctx;

/* Record the sweep of CLS in the meta database inside TXN. */
static int sweep_record_meta(store_env *env, MDB_txn *txn, fv_class cls, uint64_t now_us,
                             uint64_t sweep_deleted, uint64_t batch_deleted)
{
    char key_last[64], key_deleted[64], key_total[64];
    if (!store_meta_key(key_last, sizeof key_last, "sweep", cls, "last_us") ||
        !store_meta_key(key_deleted, sizeof key_deleted, "sweep", cls, "last_deleted") ||
        !store_meta_key(key_total, sizeof key_total, "sweep", cls, "total_deleted"))
        return MDB_INVALID;

    uint64_t total = 0;
    int mrc = store_meta_get_u64(env, txn, key_total, &total);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_put_u64(env, txn, key_total, total + batch_deleted);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_put_u64(env, txn, key_deleted, sweep_deleted);
    if (mrc == MDB_SUCCESS)
        mrc = store_meta_put_u64(env, txn, key_last, now_us);
    return mrc;
}

/* Delete up to ctx->batch expired records of one class, oldest first,
 * and record the progress in the same transaction. */
static int sweep_batch_write(store_env *env, MDB_txn *txn, void *arg)
{
    sweep_batch_ctx *ctx = arg;
    MDB_cursor *cur = NULL;
    ctx->deleted = 0;
    ctx->class_done = false;

    /* Read the limit in this transaction, so a limit changed by another
     * writer since open is honoured. */
    uint64_t cutoff_us = store_live_cutoff_us(store_retention_in_txn(env, txn, ctx->cls),
                                              ctx->now_us);

    int mrc = mdb_cursor_open(txn, env->dbi[ctx->cls], &cur);
    if (mrc != MDB_SUCCESS)
        return mrc;

    MDB_val k, v;
    while (ctx->deleted < ctx->batch) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrc == MDB_NOTFOUND) {
            ctx->class_done = true;
            mrc = MDB_SUCCESS;
            break;
        }
        if (mrc != MDB_SUCCESS)
            break;
        uint64_t id;
        if (!store_key_decode(&k, &id)) {
            mrc = MDB_CORRUPTED;
            break;
        }
        if (id >= cutoff_us) {
            ctx->class_done = true;
            break;
        }
        mrc = mdb_cursor_del(cur, 0);
        if (mrc != MDB_SUCCESS)
            break;
        ctx->deleted++;
    }
    mdb_cursor_close(cur);

    /* A full batch may have ended exactly on the last expired key. */
    if (mrc == MDB_SUCCESS && !ctx->class_done) {
        mrc = mdb_cursor_open(txn, env->dbi[ctx->cls], &cur);
        if (mrc == MDB_SUCCESS) {
            uint64_t id = 0;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            if (mrc == MDB_NOTFOUND || (mrc == MDB_SUCCESS && store_key_decode(&k, &id) &&
                                        id >= cutoff_us))
                ctx->class_done = true;
            if (mrc == MDB_NOTFOUND)
                mrc = MDB_SUCCESS;
            mdb_cursor_close(cur);
        }
    }
    if (mrc != MDB_SUCCESS)
        return mrc;

    return sweep_record_meta(env, txn, ctx->cls, ctx->now_us,
                             ctx->deleted_before + ctx->deleted, ctx->deleted);
}

typedef struct sweep_keys_ctx {
    fv_class cls;
    uint64_t now_us;
    uint32_t *days;             /* out: days whose key was destroyed (malloc'd) */
    size_t days_len;
    int rc;                     /* out: result of store_keys_destroy_before */
} sweep_keys_ctx;

/* Destroy the keys of every day of ctx->cls that ended before the
 * retention cutoff. Runs inside a write transaction only to hold LMDB's
 * writer lock, which keeps other processes from changing data.keys. */
static int sweep_keys_write(store_env *env, MDB_txn *txn, void *arg)
{
    sweep_keys_ctx *ctx = arg;
    uint64_t cutoff_us = store_live_cutoff_us(store_retention_in_txn(env, txn, ctx->cls),
                                              ctx->now_us);
    if (cutoff_us == 0)
        return MDB_SUCCESS;
    /* Day D's last possible record is at (D + 1) * STORE_DAY_US - 1, which
     * is before the cutoff exactly when D < cutoff_us / STORE_DAY_US. */
    ctx->rc = store_keys_destroy_before(env, ctx->cls, store_day_of(cutoff_us), &ctx->days,
                                        &ctx->days_len);
    return MDB_SUCCESS;
}

/* Append one "retention.key_destroyed" audit entry per day in CTX. */
static int sweep_keys_audit(store_env *env, const sweep_keys_ctx *ctx)
{
    int rc = FV_OK;
    for (size_t i = 0; i < ctx->days_len; i++) {
        store_audit_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.actor, sizeof e.actor, "system");
        snprintf(e.action, sizeof e.action, "retention.key_destroyed");
        snprintf(e.object, sizeof e.object, "%s", fv_class_name(ctx->cls));
        snprintf(e.params, sizeof e.params, "day=%u", ctx->days[i]);
        e.result_count = 1;
        /* Evidence is dated by the wall clock, never by a sweep time
         * chosen for tests or replays. */
        int arc = store_audit_append(env, &e, fv_now_us(), NULL);
        if (arc != FV_OK) {
            fv_error("store %s: the %s key of day %u was destroyed but its audit entry could "
                     "not be written: %s",
                     env->dir, fv_class_name(ctx->cls), ctx->days[i], fv_strerror(arc));
            if (rc == FV_OK)
                rc = arc;
        }
    }
    return rc;
}

/*
 * Crypto-shred CLS: overwrite the data key of every day whose records
 * have all expired at NOW_US, and audit each one. Called once the class
 * has no expired record left. Adds the keys destroyed to *DESTROYED.
 */
static int sweep_destroy_keys(store_env *env, fv_class cls, uint64_t now_us,
                              uint64_t *destroyed)
{
    /* Skip the write transaction when no key is due (the common case). */
    uint64_t cutoff_us = store_live_cutoff_us(store_retention_s(env, cls), now_us);
    if (cutoff_us == 0 || !store_keys_any_before(env, cls, store_day_of(cutoff_us)))
        return FV_OK;

    sweep_keys_ctx ctx = {.cls = cls, .now_us = now_us};
    int rc = store_write_txn(env, "destroy expired data keys", sweep_keys_write, &ctx);
    if (rc == FV_OK)
        rc = ctx.rc;
    if (ctx.days_len > 0)
        fv_info("store %s: destroyed %zu expired %s data keys", env->dir, ctx.days_len,
                fv_class_name(cls));
    *destroyed += ctx.days_len;
    int arc = sweep_keys_audit(env, &ctx);
    if (rc == FV_OK)
        rc = arc;
    free(ctx.days);
    return rc;
}

/*
 * Sweep every class in budgeted, resumable passes. Keys are stored-at
 * times, so each class is walked from its oldest key and the walk stops
 * at the first live key. The cost is therefore proportional to the
 * records deleted, not to the size of the store.
 *
 * Each write transaction deletes at most BATCH records of one class and
 * records the progress in the meta database in the same transaction, so
 * an interrupted sweep loses nothing and the next call resumes from the
 * oldest remaining key. The sweep stops when every class is done
 * (complete = true) or after MAX_BATCHES transactions (complete = false).
 * A class with nothing expired still gets one transaction, which writes
 * its last sweep time and a deleted count of 0.
 */
int store_sweep(store_env *env, uint64_t now_us, uint32_t batch, uint32_t max_batches,
                store_sweep_result *out)
{
    store_sweep_result res;
    memset(&res, 0, sizeof res);
    res.complete = true;
    if (out != NULL)
        *out = res;
    if (env == NULL)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;
    if (batch == 0)
        batch = STORE_SWEEP_BATCH_DEFAULT;

    int rc = FV_OK;
    /* Classes before sweep_next_class were finished by the earlier call
     * that ran out of budget, so a small budget per call still moves on
     * to the later classes instead of restarting at the first one. */
    unsigned first = env->sweep_next_class;
    for (unsigned c = first; c < FV_CLASS_COUNT && res.complete; c++) {
        fv_class cls = (fv_class)c;
        sweep_batch_ctx ctx = {
            .cls = cls,
            .batch = batch,
            .now_us = now_us,
            .deleted_before = c == first ? env->sweep_next_deleted : 0,
        };

        for (;;) {
            if (max_batches != 0 && res.transactions >= max_batches) {
                res.complete = false;
                env->sweep_next_class = c;
                env->sweep_next_deleted = ctx.deleted_before;
                break;
            }
            rc = store_write_txn(env, "delete expired records", sweep_batch_write, &ctx);
            if (rc != FV_OK)
                goto out;
            res.transactions++;
            res.deleted[c] += ctx.deleted;
            ctx.deleted_before += ctx.deleted;
            if (ctx.class_done)
                break;
        }
        if (ctx.class_done) {
            rc = sweep_destroy_keys(env, cls, now_us, &res.keys_destroyed);
            if (rc != FV_OK)
                goto out;
        }
    }

    if (res.complete && first <= FV_CLASS_COUNT) {
        uint32_t budget = max_batches == 0 ? UINT32_MAX : max_batches - res.transactions;
        bool done = true;
        rc = store_escrow_sweep(env, now_us, batch, budget, &res.escrow_deleted,
                                &res.transactions, &done);
        if (rc != FV_OK)
            goto out;
        if (!done) {
            res.complete = false;
            env->sweep_next_class = FV_CLASS_COUNT;
        }
    }

    if (res.complete && first <= FV_CLASS_COUNT) {
        /* Life-cycle entries of expired alerts (store_alerts.c). */
        uint64_t alert_entries = 0;
        rc = store_alerts_sweep(env, now_us, &alert_entries);
        if (rc != FV_OK)
            goto out;
    }

    if (res.complete) {
        uint32_t budget = max_batches == 0 ? UINT32_MAX : max_batches - res.transactions;
        bool done = true;
        /* The audit trail is pruned by the wall clock at the latest: a
         * sweep evaluated at a future time (a --now for tests) must not
         * erase evidence that is still within its retention. */
        uint64_t wall_us = fv_now_us();
        rc = store_audit_prune(env, now_us < wall_us ? now_us : wall_us, batch, budget,
                               &res.audit_deleted,
                               &res.transactions, &done);
        if (!done) {
            res.complete = false;
            env->sweep_next_class = FV_CLASS_COUNT + 1;
        }
    }
    if (rc == FV_OK && res.complete) {
        env->sweep_next_class = 0;
        env->sweep_next_deleted = 0;
    }

out:
    if (out != NULL)
        *out = res;
    return rc;
}
