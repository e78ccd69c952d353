/*
 * store_internal.h: the store handle and helpers shared by the files of
 * store/. Not part of the public interface; tests include it for the
 * map-size hook (store_open_with_options).
 *
 * Locking: one writer thread calls store_put/commit/sweep/set_retention
 * and owns the queue, last_id and the pending counters. Any thread may
 * query. map_lock is held shared for the life of every transaction and
 * exclusively while the map size changes, because mdb_env_set_mapsize
 * requires that no transaction of this process is open.
 */
#ifndef FV_STORE_INTERNAL_H
#define FV_STORE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include <lmdb.h>

#include "store.h"

/* Queued records that trigger an automatic commit. */
#define STORE_QUEUE_MAX 4096u

/* Default initial and maximum LMDB map sizes. The map is reserved
 * address space, not disk: the data file grows with the data. */
#define STORE_MAP_INITIAL_BYTES ((size_t)1 << 30)
#define STORE_MAP_MAX_BYTES ((size_t)1 << 38)

/* Upper bound on retention limits (100 years in seconds). Setting more
 * is rejected and reading more is clamped, so retention_s * 1,000,000
 * never overflows a uint64_t. */
#define STORE_RETENTION_MAX_S (100ull * 366ull * 86400ull)

/* Cache value of a retention limit not read from the meta database yet. */
#define STORE_RETENTION_UNKNOWN UINT64_MAX

/* Options of store_open_with_options; zero fields take the defaults. */
typedef struct store_open_opts {
    size_t map_initial_bytes;   /* first map size of a new writer map */
    size_t map_max_bytes;       /* growth stops here with FV_ERR_FULL */
} store_open_opts;

/* One queued record: its encoding is buf[off .. off + len). */
typedef struct store_pending {
    uint64_t id;
    size_t off;
    uint32_t len;
    uint8_t cls;
} store_pending;

struct store_env {
    MDB_env *mdb;
    MDB_dbi dbi[FV_CLASS_COUNT];
    bool has_dbi[FV_CLASS_COUNT];   /* false: class database absent (read-only open) */
    MDB_dbi meta;
    bool has_meta;
    MDB_dbi audit;
    bool has_audit;                 /* false: no audit database (read-only open of an old store) */
    bool rdonly;
    bool failed;                    /* a write failed; writes return FV_ERR_STATE */
    char dir[PATH_MAX];

    pthread_rwlock_t map_lock;
    size_t map_bytes;               /* current map size, guarded by map_lock */
    size_t map_max_bytes;

    /* Writer state. */
    uint64_t last_id[FV_CLASS_COUNT];
    store_pending *queue;
    size_t queue_len, queue_cap;
    uint8_t *buf;
    size_t buf_len, buf_cap;
    store_counters counters_delta;
    bool counters_pending;

    /* Retention limits in seconds, STORE_RETENTION_UNKNOWN until read. */
    _Atomic uint64_t retention_cache[FV_CLASS_COUNT];
};

/*
 * Open the store like store_open(), with OPTS overriding the map sizes.
 * OPTS may be NULL. Used by tests to force map growth with a tiny map.
 */
FV_NODISCARD int store_open_with_options(const char *dir, unsigned flags,
                                         const store_open_opts *opts, store_env **out,
                                         char *err, size_t err_len);

/* Big-endian 8-byte key encoding of a record id. */
void store_key_encode(uint64_t id, uint8_t key[8]);
/* Decode a key; return false unless it is exactly 8 bytes. */
bool store_key_decode(const MDB_val *key, uint64_t *id);

/* Begin a read-only transaction, adopting a map grown by another
 * process. On FV_OK the caller holds map_lock shared and must call
 * store_read_end(). */
int store_read_begin(store_env *env, MDB_txn **txn);
void store_read_end(store_env *env, MDB_txn **txn);

/*
 * Callback that performs the writes of one transaction. It may run
 * several times (after MDB_MAP_FULL the transaction is aborted, the map
 * grown and the callback run again on a fresh transaction), so it must
 * derive everything from the transaction and CTX. Return an LMDB code.
 */
typedef int (*store_write_fn)(store_env *env, MDB_txn *txn, void *ctx);

/* Run FN in one write transaction and commit it, growing the map on
 * MDB_MAP_FULL. ACTION names the operation in error messages ("commit
 * queued records"). On failure mark the env failed and log. Return FV_OK,
 * FV_ERR_STATE (already failed or read-only), FV_ERR_FULL (map at its
 * maximum) or FV_ERR_STORE. */
int store_write_txn(store_env *env, const char *action, store_write_fn fn, void *ctx);

/* Meta database values are u64 little-endian. A missing key reads as 0. */
int store_meta_get_u64(store_env *env, MDB_txn *txn, const char *key, uint64_t *out);
int store_meta_put_u64(store_env *env, MDB_txn *txn, const char *key, uint64_t v);

/* Write "PREFIX/<class name>[/SUFFIX]" into OUT. Return false if it does not fit. */
bool store_meta_key(char *out, size_t out_len, const char *prefix, fv_class cls,
                    const char *suffix);

/* Read the retention limit of CLS inside TXN and refresh the cache. */
uint64_t store_retention_in_txn(store_env *env, MDB_txn *txn, fv_class cls);

/* Delete audit entries older than the audit retention limit at NOW_US,
 * at most BATCH per write transaction and at most MAX_TXNS transactions
 * (pass UINT32_MAX for no limit). Adds to *DELETED and *TXNS; sets *DONE when nothing
 * expired remains. Returns FV_OK or a store error. */
int store_audit_prune(store_env *env, uint64_t now_us, uint32_t batch, uint32_t max_txns,
                      uint64_t *deleted, uint32_t *txns, bool *done);

/* First stored-at time (microseconds) still live at NOW_US under a
 * retention of RETENTION_S seconds; 0 if nothing expires. */
uint64_t store_live_cutoff_us(uint64_t retention_s, uint64_t now_us);

#endif /* FV_STORE_INTERNAL_H */
