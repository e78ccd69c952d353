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
#include <sys/types.h>
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

/* One slot of the data key file, mirrored in sodium_malloc'd memory. */
typedef struct store_key_slot {
    uint8_t key[STORE_DATA_KEY_BYTES];
    uint32_t day;                   /* days since 1970-01-01 UTC of the stored-at time */
    uint8_t cls;
    bool in_use;
} store_key_slot;

/* The data keys of a store (store_keys.c). Index i of slots is slot i
 * of the file. */
typedef struct store_keys {
    int fd;                         /* data.keys, -1 if absent (read-only open) */
    pthread_mutex_t lock;           /* guards everything below */
    bool lock_ready;
    bool loaded;
    uint64_t generation;            /* header generation the table was read at */
    store_key_slot *slots;          /* sodium_malloc'd */
    size_t count, cap;
    size_t hint;                    /* index of the last key found */
    bool read_only;                 /* fd opened O_RDONLY: this user may only read the keys */
    /* Sealing subkeys of the current lock session (store_keys.c,
     * seal_subkey_get): sodium_malloc'd, STORE_SEAL_SUBKEYS entries,
     * wiped by store_keys_unlock and whenever the table is re-read. */
    struct store_seal_subkey *seal;
    unsigned seal_next;             /* entry the next new subkey replaces */
    bool seal_dirty;                /* true once any entry has a subkey */
    uint8_t seal_version;           /* value format sealed: 3 with AES-NI, else 2 */
    bool open_with_nettle;          /* tests: open format 3 with nettle even where libsodium can */
    /* The format 3 subkey store_value_open derived last (sodium_malloc'd). */
    struct store_open_subkey *open_cache;
} store_keys;

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
    /* Capture counters of store_run_counters_add held during a run. */
    struct store_held_counter *held;
    size_t held_len, held_cap;
    /* The last run ended without completing: input counters are dropped
     * until the next store_run_begin, because its resume counts them. */
    bool run_counts_dropped;

    /* Retention limits in seconds, STORE_RETENTION_UNKNOWN until read. */
    _Atomic uint64_t retention_cache[FV_CLASS_COUNT];

    MDB_dbi escrow;
    bool has_escrow;                /* false: no escrow database (read-only open of an old store) */

    MDB_dbi auth;
    bool has_auth;                  /* false: no auth database (read-only open of an old store) */

    MDB_dbi alert_state;
    bool has_alert_state;           /* false: no alert_state database (read-only open of an old
                                       store); see store_alerts.c */

    /* Data keys of the record values. */
    store_keys keys;
    /* Records skipped by queries because they could not be decrypted,
     * summed over the life of the handle. */
    _Atomic uint64_t undecryptable_total;

    /* Records of each class this handle committed from its write queue. */
    uint64_t committed[FV_CLASS_COUNT];
    /* Called after each commit of queued records (store_commit_hook_set). */
    store_commit_fn commit_hook;
    void *commit_hook_ctx;
    /* The resumable ingest run in progress, if any (store_checkpoint.c). */
    struct store_run *run;

    /* Size quota in bytes of used pages, 0 for none (store_size_limit_set). */
    uint64_t quota_bytes;
    /* True while the used pages exceed the quota: record commits are
     * rejected with FV_ERR_FULL until a sweep frees pages. */
    bool quota_reached;
    /* CLOCK_MONOTONIC seconds of the last mdb_reader_check (store_read_begin). */
    _Atomic int64_t reader_check_s;
    /* Start stage of the next store_sweep call. It is the record class
     * where an incomplete sweep ran out of budget, FV_CLASS_COUNT for the
     * escrow phase, FV_CLASS_COUNT + 1 for the audit phase, or 0 after a
     * complete sweep. */
    unsigned sweep_next_class;
    /* Records of sweep_next_class that the incomplete sweep deleted, so
     * the meta "last_deleted" count covers the whole pass. */
    uint64_t sweep_next_deleted;
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

/* Delete escrow entries older than the flows retention limit at NOW_US,
 * like store_audit_prune: at most BATCH per transaction and MAX_TXNS
 * transactions. The whole database is walked, because entries are keyed
 * by pseudonym, not by age. Returns FV_OK or a store error. */
int store_escrow_sweep(store_env *env, uint64_t now_us, uint32_t batch, uint32_t max_txns,
                       uint64_t *deleted, uint32_t *txns, bool *done);

/* Delete the alert life-cycle entries (store_alerts.c) of alerts older
 * than the alerts retention limit at NOW_US, in one write transaction.
 * Adds to *DELETED. Returns FV_OK or a store error. */
int store_alerts_sweep(store_env *env, uint64_t now_us, uint64_t *deleted);

/* Delete the life-cycle entries of the COUNT alert ids in IDS (subject
 * erasure). Missing entries are skipped. Returns FV_OK or a store error. */
int store_alerts_forget(store_env *env, const uint64_t *ids, size_t count);

/* First stored-at time (microseconds) still live at NOW_US under a
 * retention of RETENTION_S seconds; 0 if nothing expires. */
uint64_t store_live_cutoff_us(uint64_t retention_s, uint64_t now_us);

/* ---------------------------------------------------------------------- */
/* Data keys and record values (store_keys.c)                              */
/* ---------------------------------------------------------------------- */

/* Microseconds per day; the day of a record is its stored-at time / this. */
#define STORE_DAY_US (86400ull * 1000000ull)

/* Day number (days since 1970-01-01 UTC) of a stored-at time. */
uint32_t store_day_of(uint64_t stored_us);

/* Open or create DB/data.keys and load it (see store_keys.c). A
 * read-only open of a store without the file succeeds with no keys.
 * Returns FV_OK or an error with a message in ERR. */
int store_keys_open(store_env *env, char *err, size_t err_len);
/* Wipe the keys and close the file. Safe after a failed or skipped open
 * as long as the env was zeroed. */
void store_keys_close(store_env *env);

/* Take and release the key table lock of this process. Releasing it
 * wipes the sealing subkeys of the session. */
void store_keys_lock(store_env *env);
void store_keys_unlock(store_env *env);
/* Re-read the key file if another process changed it. Caller holds the lock. */
int store_keys_refresh(store_env *env);

/* The value format that store_value_seal writes: 3 (AES-256-GCM) where
 * the CPU has AES-NI and PCLMULQDQ, else 2 (XChaCha20-Poly1305).
 * Setting it is for tests, which check that both formats are written
 * and read on one machine. Returns FV_ERR_INVALID for other versions,
 * and FV_ERR_UNSUPPORTED for 3 where the CPU lacks those instructions. */
unsigned store_keys_seal_version(store_env *env);
int store_keys_set_seal_version(store_env *env, unsigned version);
/* Open format 3 values with nettle, as on CPUs without AES-NI, even
 * where libsodium offers AES-256-GCM. For tests. */
void store_keys_set_open_with_nettle(store_env *env, bool nettle);

/*
 * Encrypt the format 1 encoding PLAIN of record ID of class CLS into
 * OUT (format 2 or 3, PLAIN_LEN + STORE_VALUE_OVERHEAD bytes). Creates and
 * syncs the key of the record's day if it does not exist yet. Caller
 * holds the key lock and an LMDB write transaction. Values sealed in one
 * lock session share a nonce prefix per data key (see store_keys.c).
 * Returns FV_OK, FV_ERR_FULL, FV_ERR_IO, FV_ERR_NOMEM or FV_ERR_STATE
 * (no key file).
 */
int store_value_seal(store_env *env, fv_class cls, uint64_t id, const uint8_t *plain,
                     size_t plain_len, uint8_t *out, size_t out_cap, size_t *out_len);

/* Outcome of store_value_open. */
typedef enum store_value_status {
    STORE_VALUE_OK = 0,             /* decrypted into PLAIN */
    STORE_VALUE_LEGACY = 1,         /* a format 1 (plaintext) value, copied into PLAIN */
    STORE_VALUE_UNDECRYPTABLE = 2,  /* wrong format, no key for its day, or forged */
} store_value_status;

/*
 * Decrypt VALUE of record ID of class CLS into PLAIN. Takes the key
 * lock itself. If the day's key is missing and *REFRESHED is false, the
 * key file is re-read once and *REFRESHED set (REFRESHED may be NULL).
 */
store_value_status store_value_open(store_env *env, fv_class cls, uint64_t id,
                                    const uint8_t *value, size_t value_len, uint8_t *plain,
                                    size_t plain_cap, size_t *plain_len, bool *refreshed);

/* True if a key of CLS for a day before BEFORE_DAY is stored. */
bool store_keys_any_before(store_env *env, fv_class cls, uint32_t before_day);

/*
 * Overwrite with zeros every key slot of CLS for a day before
 * BEFORE_DAY, then sync the file. Appends each destroyed day to *DAYS
 * (realloc'd, caller frees) and raises *DAYS_LEN. Caller holds an LMDB
 * write transaction. Returns FV_OK or FV_ERR_IO / FV_ERR_NOMEM /
 * FV_ERR_STATE; days listed before an error were destroyed.
 */
int store_keys_destroy_before(store_env *env, fv_class cls, uint32_t before_day,
                              uint32_t **days, size_t *days_len);

/* ---------------------------------------------------------------------- */
/* Resumable ingest runs and the size quota (store_checkpoint.c)           */
/* ---------------------------------------------------------------------- */

/*
 * If a run is active and an interrupted attempt of it already committed
 * a record whose class and encoding equal PLAIN[0 .. LEN), consume that
 * entry and return true: store_put then skips the record.
 */
bool store_run_take_stored(store_env *env, fv_class cls, const uint8_t *plain, size_t len);

/* Write the run checkpoint with the commit of the queue inside TXN:
 * committed counts are the earlier ones plus QUEUED[c]. */
int store_run_write_progress(store_env *env, MDB_txn *txn, const uint64_t queued[FV_CLASS_COUNT]);

/* Rewrite the checkpoint of the active run (if any) inside TXN with
 * RUN_FLAG_DETECT_SAVED set: the detector state written in TXN contains
 * the run's input. Returns an LMDB code. */
int store_run_write_detect_saved(store_env *env, MDB_txn *txn);

/* Record in the active run (if any) that the transaction of
 * store_run_write_detect_saved committed, so that later progress writes
 * keep the flag. */
void store_run_detect_saved_committed(store_env *env);

/* True while a run is active and store_run_end is not completing it:
 * then the counters of store_counters_add and store_run_counters_add
 * are held, not written. */
bool store_run_holds_counters(const store_env *env);

/* True while store_run_end commits the completion of the active run. */
bool store_run_finishing(const store_env *env);

/* Inside TXN, as store_run_end completes the active run: write the held
 * capture counters, append its final audit entry and delete its
 * checkpoint. Returns an LMDB code. */
int store_run_finish_write(store_env *env, MDB_txn *txn);

/* Add the capture counters held during a run inside TXN, or drop them.
 * (store.c) */
int store_held_counters_write(store_env *env, MDB_txn *txn);
void store_held_counters_drop(store_env *env);

/* True if store_audit_append would accept the strings of E
 * (store_audit.c). */
bool store_audit_entry_valid(const store_audit_entry *e);

/* Append E at NOW_US inside TXN (store_audit.c). Returns an LMDB code,
 * MDB_INVALID for an entry that store_audit_append would reject. */
int store_audit_append_txn(store_env *env, MDB_txn *txn, const store_audit_entry *e,
                           uint64_t now_us);

/* Call the commit hook with the committed counts (run-wide while a run
 * is active). */
void store_commit_report(store_env *env);

/* Free the run state of ENV (at close). */
void store_run_free(store_env *env);

/* Bytes of used pages (file pages minus free pages) as of the last
 * commit. Returns an LMDB code. */
int store_used_bytes(store_env *env, uint64_t *out);

/* Check the quota before a commit of queued records. Returns FV_OK or
 * FV_ERR_FULL (then logs once and sets quota_reached). */
int store_quota_check(store_env *env);

#endif /* FV_STORE_INTERNAL_H */
