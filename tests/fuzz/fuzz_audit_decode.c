/*
 * Fuzz the audit trail (store/store_audit.c). Bit 0 of byte 0 selects
 * the entry point:
 *
 * 0: store_audit_decode on the rest of the input. An entry that decodes
 *    must encode again, the encoding must decode to the same entry, and
 *    the entry must hash, because store_audit_verify recomputes every
 *    hash from the decoded form.
 * 1: a script of operations on a fresh store in a temporary directory.
 *    The operations are appends (with fuzzed field bytes and times, also
 *    going back in time), listing in both orders, retention, pruning and
 *    changes to the stored entries. A chain that only append and prune
 *    wrote must verify, and a changed or deleted entry must make
 *    verification fail.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store.h"
#include "store_internal.h"

#define OPS_MAX 24              /* operations per input */
#define BASE_US 1764489600000000u

static char dir[512];

static void remove_dir(void)
{
    fuzz_remove_tree(dir);
}

static void check_decode(const uint8_t *data, size_t size)
{
    static uint8_t encoded[STORE_AUDIT_ENTRY_MAX_BYTES];
    store_audit_entry *entry, *again;
    uint8_t hash[32];
    size_t written = 0;

    entry = calloc(1, sizeof *entry);
    again = calloc(1, sizeof *again);
    if (entry == NULL || again == NULL)
        goto out;

    if (store_audit_decode(data, size, entry) != FV_OK)
        goto out;
    if (store_audit_encode(entry, encoded, sizeof encoded, &written) != FV_OK)
        abort();    /* decode accepted an entry that encode rejects */
    if (store_audit_decode(encoded, written, again) != FV_OK)
        abort();    /* the encoder wrote bytes the decoder rejects */
    if (memcmp(entry, again, sizeof *entry) != 0)
        abort();    /* the round trip changed the entry */
    if (store_audit_hash(entry, hash) != FV_OK)
        abort();

out:
    free(entry);
    free(again);
}

/* Reader of the script: every take returns 0 once the input ends. */
typedef struct script {
    const uint8_t *p;
    size_t left;
} script;

static uint8_t take(script *s)
{
    uint8_t v;

    if (s->left == 0)
        return 0;
    v = s->p[0];
    s->p++;
    s->left--;
    return v;
}

/* Fill text field OUT (SIZE bytes) with up to a length byte's worth of
 * input bytes, control characters included (append replaces them). */
static void take_text(script *s, char *out, size_t size)
{
    size_t len = take(s) % size;

    for (size_t i = 0; i < len; i++)
        out[i] = (char)take(s);
    out[len] = '\0';
}

static void take_entry(script *s, store_audit_entry *e)
{
    memset(e, 0, sizeof *e);
    take_text(s, e->actor, sizeof e->actor);
    take_text(s, e->action, sizeof e->action);
    take_text(s, e->object, sizeof e->object);
    take_text(s, e->params, sizeof e->params);
    if (take(s) & 1u) {
        take_text(s, e->role, sizeof e->role);
        take_text(s, e->reason, sizeof e->reason);
    }
    e->result_count = take(s);
}

/* Time of an operation: BASE_US plus up to 255 days, so retention can
 * expire entries. A time before the previous one is allowed. */
static uint64_t take_time(script *s)
{
    return BASE_US + (uint64_t)take(s) * 86400u * 1000000u + take(s);
}

typedef struct listing {
    uint64_t last_seq;
    bool newest_first;
    bool check_order;   /* false after tampering, which can change a stored seq */
    unsigned count;
} listing;

static bool on_entry(void *ctx, const store_audit_entry *e)
{
    listing *l = ctx;

    /* Entries come in sequence order, one direction or the other. */
    if (l->check_order && l->count > 0 &&
        (l->newest_first ? e->seq >= l->last_seq : e->seq <= l->last_seq))
        abort();
    l->last_seq = e->seq;
    l->count++;
    return true;
}

static bool chain_ok(store_env *env)
{
    store_audit_verify_result result;

    memset(&result, 0, sizeof result);
    if (store_audit_verify(env, &result) != FV_OK)
        abort();
    return result.ok;
}

/*
 * Change the stored entry SEQ in one of three ways. Returns true when
 * the stored bytes changed, so verification must fail.
 */
static bool tamper(store_env *env, script *s)
{
    uint8_t key_bytes[8], copy[STORE_AUDIT_ENTRY_MAX_BYTES];
    uint64_t seq = 1 + take(s) % 8u;
    unsigned kind = take(s) % 3u;
    MDB_txn *txn = NULL;
    MDB_val k = {.mv_size = sizeof key_bytes, .mv_data = key_bytes};
    MDB_val v;
    bool changed = false;

    store_key_encode(seq, key_bytes);
    if (mdb_txn_begin(env->mdb, NULL, 0, &txn) != MDB_SUCCESS)
        return false;
    if (mdb_get(txn, env->audit, &k, &v) != MDB_SUCCESS || v.mv_size > sizeof copy)
        goto out;
    memcpy(copy, v.mv_data, v.mv_size);
    if (v.mv_size == 0)
        kind = 2;    /* an entry cut to nothing before can only be deleted */
    if (kind == 0) {
        /* Flip bits of one byte. */
        size_t at = take(s) % v.mv_size;
        uint8_t flip = take(s) | 1u;
        copy[at] ^= flip;
        v.mv_data = copy;
        changed = mdb_put(txn, env->audit, &k, &v, 0) == MDB_SUCCESS;
    } else if (kind == 1) {
        /* Cut the value short. */
        v.mv_size = take(s) % v.mv_size;
        v.mv_data = copy;
        changed = mdb_put(txn, env->audit, &k, &v, 0) == MDB_SUCCESS;
    } else {
        changed = mdb_del(txn, env->audit, &k, NULL) == MDB_SUCCESS;
    }
out:
    if (changed && mdb_txn_commit(txn) == MDB_SUCCESS)
        return true;
    if (!changed)
        mdb_txn_abort(txn);
    return false;
}

static void run_script(const uint8_t *data, size_t size)
{
    script s = {data, size};
    store_env *env = NULL;
    char err[256], path[600];
    bool tampered = false;
    static unsigned run;

    if (dir[0] == '\0') {
        fuzz_temp_dir(dir, sizeof dir);
        atexit(remove_dir);
    }
    snprintf(path, sizeof path, "%s/store-%u", dir, run++);
    if (store_open(path, 0, &env, err, sizeof err) != FV_OK) {
        fprintf(stderr, "fuzz_audit_decode: store_open failed: %s\n", err);
        abort();
    }

    for (unsigned op = 0; op < OPS_MAX && s.left > 0; op++) {
        store_audit_entry entries[2];
        uint64_t times[2], seq = 0, next = 0, deleted = 0;
        uint32_t txns = 0;
        bool done = false;
        listing l;

        switch (take(&s) % 7u) {
        case 0:
            take_entry(&s, &entries[0]);
            (void)store_audit_append(env, &entries[0], take_time(&s), &seq);
            break;
        case 1:
            /* Two appends, the second possibly earlier in time. */
            for (size_t i = 0; i < 2; i++) {
                take_entry(&s, &entries[i]);
                times[i] = take_time(&s);
                (void)store_audit_append(env, &entries[i], times[i], &seq);
            }
            break;
        case 2:
            memset(&l, 0, sizeof l);
            l.newest_first = take(&s) & 1u;
            l.check_order = !tampered;
            (void)store_audit_each(env, take(&s) % 12u, take(&s) % 6u, l.newest_first, on_entry,
                                   &l, &next);
            break;
        case 3:
            (void)store_set_audit_retention(env, (uint64_t)take(&s) * 86400u);
            break;
        case 4:
            (void)store_audit_prune(env, take_time(&s), 1u + take(&s) % 4u, 1u + take(&s) % 3u,
                                    &deleted, &txns, &done);
            break;
        case 5:
            /* Only the first change is checked: a second one may undo it. */
            if (tamper(env, &s)) {
                if (!tampered && chain_ok(env))
                    abort();    /* a changed or deleted entry went unnoticed */
                tampered = true;
            }
            break;
        default:
            (void)store_audit_retention_s(env);
            if (!tampered && !chain_ok(env))
                abort();    /* append and prune alone broke the chain */
            break;
        }
    }
    if (!tampered && !chain_ok(env))
        abort();
    store_close(&env);
    fuzz_remove_tree(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;

    if (size < 1)
        return 0;
    mode = data[0];
    if ((mode & 1u) == 0)
        check_decode(data + 1, size - 1);
    else
        run_script(data + 1, size - 1);
    return 0;
}
