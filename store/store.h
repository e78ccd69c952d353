/*
 * store.h: the record store, one LMDB environment per data directory.
 *
 * Each record class (fv_class) is a named database whose keys are 8-byte
 * big-endian "stored at" timestamps in microseconds, made unique and
 * strictly ascending by the writer, so inserts append and retention
 * sweeps walk from the oldest record. Values are compact versioned
 * binary encodings of the fv_*_record structs (never JSON), encrypted
 * with XChaCha20-Poly1305 under a random key per class and stored-at day
 * kept in DIR/data.keys. Retention destroys a day's key once the whole
 * day has expired (crypto-shredding, see store_keys.c).
 *
 * A "meta" database keeps the retention limit of each class (written by
 * the capturing process from the policy, so `serve` enforces it without
 * reading the policy), sweep history and ingest counters.
 *
 * Caveats
 * - Retention age counts from the stored-at time, not the traffic time,
 *   so an old capture ingested today is kept as long as live traffic.
 * - Queries never return a record older than its class's retention limit
 *   at the NOW_US they are given, even if the sweeper has not run.
 * - One writer per environment: store_put/store_commit/store_sweep must be
 *   called from one thread. Readers may run concurrently in other
 *   processes (serve). Read transactions are short; callbacks must not
 *   call back into the store.
 * - Record pointers handed to callbacks are valid only during the call.
 */
#ifndef FV_STORE_H
#define FV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

typedef struct store_env store_env;

/* Largest encoding of any record. Format version 1 needs at most about
 * 3,800 bytes: a DNS record with 8 full question names, 4 full CNAME
 * targets and 16 answer addresses. */
#define STORE_RECORD_MAX_BYTES 4096u

/* Length of a data key, and the bytes a record value gains from
 * encryption (format version 2: version byte, 24-byte nonce, 16-byte
 * tag). See store_keys.c. */
#define STORE_DATA_KEY_BYTES 32u
#define STORE_VALUE_OVERHEAD 41u

/* Largest LIMIT of one query. */
#define STORE_QUERY_LIMIT_MAX 10000u

/* Open flags. */
#define STORE_RDONLY 0x1u   /* read-only (retention report); the directory must exist */
#define STORE_EXISTING 0x2u /* read-write, but reject with FV_ERR_NOT_FOUND instead of
                               creating a store (serve and export, which write audit
                               entries) */

/*
 * Open the store in directory DIR (created with mode 0700 unless
 * STORE_RDONLY). Return FV_OK, FV_ERR_IO, FV_ERR_NOT_FOUND (read-only
 * and no store there) or FV_ERR_STORE, with a message in ERR; also
 * FV_ERR_PERMISSION (access denied), FV_ERR_INVALID (empty or too long
 * DIR) or FV_ERR_NOMEM. A read-only open creates nothing. The handle
 * may be shared by threads under the rules in the Caveats above.
 */
FV_NODISCARD int store_open(const char *dir, unsigned flags, store_env **out,
                            char *err, size_t err_len);

/* Commit pending writes and close. Accepts NULL; clears *env. */
void store_close(store_env **env);

/* Set and persist the retention limit of CLS (seconds). Writer only. */
int store_set_retention(store_env *env, fv_class cls, uint64_t retention_s);

/* Retention limit of CLS in seconds, 0 if never set (then nothing expires). */
uint64_t store_retention_s(store_env *env, fv_class cls);

/*
 * Queue one record of class CLS (REC points to the matching fv_*_record)
 * with stored-at time NOW_US. Records are batched and written by
 * store_commit(), or automatically every 4096 records. Return FV_OK or
 * an error; after an error the writer is marked failed and refuses
 * further writes with FV_ERR_STATE.
 */
int store_put(store_env *env, fv_class cls, const void *rec, uint64_t now_us);

/* Write every queued record in one transaction. */
int store_commit(store_env *env);

/* Result of one sweep. */
typedef struct store_sweep_result {
    uint64_t deleted[FV_CLASS_COUNT];
    uint32_t transactions;
    bool complete;          /* false if the budget ran out first */
    uint64_t audit_deleted; /* audit entries removed by the audit retention limit */
    uint64_t escrow_deleted;    /* escrow entries removed (flows retention limit) */
    uint64_t keys_destroyed;    /* day keys overwritten in data.keys, each one audited */
} store_sweep_result;

/*
 * Delete every record whose stored-at time is older than its class's
 * retention limit at NOW_US, in write transactions of at most
 * BATCH records (default 10,000 if 0), stopping after MAX_BATCHES
 * transactions (unlimited if 0). Records the sweep in the meta database.
 * Once a class has no expired record left, the data key of every day
 * that ended before the retention cutoff is overwritten with zeros in
 * data.keys. Each destroyed key gets a "retention.key_destroyed" audit
 * entry (object: the class, params: "day=N"). These transactions do not
 * count against MAX_BATCHES.
 * After the record classes it removes audit entries older than the audit
 * retention limit (see store_set_audit_retention), in batches of the same
 * size and within the same transaction budget.
 */
int store_sweep(store_env *env, uint64_t now_us, uint32_t batch, uint32_t max_batches,
                store_sweep_result *out);

/* A query over one class. */
typedef struct store_query {
    fv_class cls;
    uint64_t from_us, to_us;   /* traffic time window, inclusive; 0 = unbounded */
    uint64_t after_id;         /* cursor: return records with id > after_id (0 = start) */
    uint32_t limit;            /* max records returned, 1 .. 10,000 */
    bool newest_first;         /* if true, walk backwards and return id < before cursor */
    uint64_t before_id;        /* with newest_first: ids < before_id (0 = end) */
} store_query;

/* Callback per matching record. Return false to stop early. */
typedef bool (*store_record_fn)(void *ctx, const fv_record *rec);

/*
 * Run Q at NOW_US, calling FN for each record (in id order, or reverse
 * with newest_first). Expired records are skipped. *NEXT_CURSOR (if not
 * NULL) receives the id to resume from, 0 when the end was reached.
 * Pass it back as after_id (forward) or before_id (newest_first).
 * One call examines at most 100,000 keys, so a narrow time filter may
 * return fewer than LIMIT records with a non-zero cursor: keep paging.
 * Return FV_OK, FV_ERR_INVALID (LIMIT outside 1 .. STORE_QUERY_LIMIT_MAX,
 * invalid class, NULL argument) or FV_ERR_STORE. Records that fail to
 * decrypt (no key for their day, or altered) or to decode are skipped
 * with a warning and counted.
 */
int store_query_run(store_env *env, const store_query *q, uint64_t now_us,
                    store_record_fn fn, void *ctx, uint64_t *next_cursor);

/* Records one query call examined but did not return. */
typedef struct store_query_stats {
    uint32_t undecryptable;     /* missing day key, wrong format or failed authentication */
    uint32_t undecodable;       /* decrypted but not a valid encoding */
} store_query_stats;

/* store_query_run that also fills *STATS (if not NULL). */
int store_query_run_stats(store_env *env, const store_query *q, uint64_t now_us,
                          store_record_fn fn, void *ctx, uint64_t *next_cursor,
                          store_query_stats *stats);

/* Records skipped as undecryptable by all queries on ENV since it was opened. */
uint64_t store_undecryptable_total(store_env *env);

/* Why the sweeper is overdue for a class, if it is. */
typedef enum store_sweep_lag {
    STORE_SWEEP_ON_TIME = 0,
    STORE_SWEEP_LATE = 1,       /* last sweep is older than 2 x the sweep interval */
    STORE_SWEEP_NEVER = 2,      /* never swept, and a record is older than one interval */
} store_sweep_lag;

/* Status of one class for retention reporting. */
typedef struct store_class_status {
    uint64_t retention_s;
    uint64_t records;           /* live records (not expired at NOW) */
    uint64_t expired_pending;   /* past the limit, waiting for the sweeper */
    uint64_t bytes;             /* approximate stored bytes */
    uint64_t oldest_stored_us;  /* 0 if empty */
    uint64_t newest_stored_us;
    uint64_t last_sweep_us;     /* 0 if never swept */
    uint64_t last_sweep_deleted;
    uint64_t total_deleted;
    /* Sweep schedule, from the interval the capturing process stores in
     * the meta key "sweep/interval_s" (0 when no capturing process ran). */
    uint64_t sweep_interval_s;
    uint64_t next_sweep_us;     /* last sweep (or oldest record) + interval; 0 if unknown */
    store_sweep_lag sweep_lag;  /* STORE_SWEEP_ON_TIME unless the sweeper is overdue */
} store_class_status;

/* Meta key of the sweep interval in seconds, written by the capturing process. */
#define STORE_META_SWEEP_INTERVAL "sweep/interval_s"
/* Meta key of the first 8 bytes of the policy hash (big-endian) last recorded. */
#define STORE_META_POLICY_HASH "policy/hash"
/* Meta key: the policy's reporting.k_threshold, written by the capturing
 * process at open; the API suppresses aggregate groups of fewer distinct
 * hosts. 0 when no capturing process recorded it. */
#define STORE_META_K_THRESHOLD "reporting/k_threshold"

/* True if ST calls for attention: records past the limit are stored or
 * the sweeper is overdue. */
bool store_class_status_warning(const store_class_status *st);

/*
 * Set or read one u64 value of the meta database by KEY (1 .. 63 bytes,
 * such as STORE_META_SWEEP_INTERVAL). A missing key reads as 0. Set is
 * writer only. Return FV_OK, FV_ERR_INVALID or a store error.
 */
int store_meta_set(store_env *env, const char *key, uint64_t value);
int store_meta_get(store_env *env, const char *key, uint64_t *out);

int store_class_status_get(store_env *env, fv_class cls, uint64_t now_us,
                           store_class_status *out);

/* Ingest counters kept in the meta database (summed over runs). */
typedef struct store_counters {
    uint64_t packets, bytes, flows;
    uint64_t files, last_ingest_us;
} store_counters;

/* Add DELTA to the stored counters (in the next commit). */
int store_counters_add(store_env *env, const store_counters *delta);
int store_counters_get(store_env *env, store_counters *out);

/*
 * Add VALUES[i] to the capture counter named NAMES[i] (for example the
 * parsers' rejection counters), for i < COUNT, in one write transaction
 * of its own. Names are at most 64 bytes of [a-z0-9_]. Writer only.
 * Returns FV_OK, FV_ERR_INVALID (bad name) or a store error.
 */
int store_capture_counters_add(store_env *env, const char *const *names, const uint64_t *values,
                               size_t count);

/* Callback per stored capture counter, in name order. Return false to stop. */
typedef bool (*store_counter_fn)(void *ctx, const char *name, uint64_t value);

/* Call FN for every stored capture counter. Returns FV_OK or a store error. */
int store_capture_counters_each(store_env *env, store_counter_fn fn, void *ctx);

/*
 * Decode/encode are exposed for tests and fuzzing. The format is
 * documented in store_codec.c. Encode returns FV_ERR_INVALID for an
 * invalid class, endpoint kind, evidence count or an unterminated string,
 * and FV_ERR_FULL if OUT_LEN is too small (STORE_RECORD_MAX_BYTES always
 * suffices). Decode reads only DATA[0 .. LEN) and returns FV_OK or
 * FV_ERR_PARSE (or FV_ERR_INVALID for a NULL OUT or invalid class).
 */
int store_record_encode(fv_class cls, const void *rec, uint8_t *out, size_t out_len,
                        size_t *written);
int store_record_decode(fv_class cls, const uint8_t *data, size_t len, fv_record *out);

/* ---------------------------------------------------------------------- */
/* Audit trail                                                             */
/* ---------------------------------------------------------------------- */

/*
 * The audit trail is the named database "audit": keys are 8-byte
 * big-endian sequence numbers from 1, values are versioned binary
 * entries (format in store_audit.c). Each entry stores the BLAKE2b-256
 * hash of the previous entry and its own hash over all other fields,
 * so store_audit_verify detects an edited, removed or reordered entry.
 * It is append-only: only retention removes entries, oldest first, and
 * records where the kept chain starts. Someone with write access to the
 * store can still rewrite the whole chain; compare the head hash that
 * verify reports with a copy kept elsewhere to detect that.
 */

/* Largest encoding of one audit entry (format version 1 needs at most
 * 1,119 bytes). */
#define STORE_AUDIT_ENTRY_MAX_BYTES 1280u

/* Largest LIMIT of one store_audit_each call. */
#define STORE_AUDIT_LIMIT_MAX 10000u

/* Length of an audit hash (BLAKE2b-256). */
#define STORE_AUDIT_HASH_BYTES 32u

/* One audit entry. Strings are NUL-terminated; append replaces bytes
 * outside printable ASCII with '?', so entries are always valid JSON
 * strings. */
typedef struct store_audit_entry {
    uint64_t seq, time_us;      /* set by append; time_us never decreases along the chain */
    char actor[64];             /* "system", "anonymous" or a user name */
    char role[16];              /* policy role of the actor, "" for none */
    char action[48];            /* "api.read", "export", "retention.sweep", ... */
    char object[128];           /* route, data class or file the action applies to */
    char params[512];           /* "key=value" pairs separated by '&' */
    uint64_t result_count;      /* records returned, exported or deleted */
    char reason[256];           /* free text, for example a legal basis */
    uint8_t prev_hash[32];      /* hash of the previous entry, zero for the first */
    uint8_t hash[32];           /* BLAKE2b-256 of the encoding without this field */
} store_audit_entry;

/*
 * Append a copy of E to the audit trail in a write transaction of its
 * own, with time NOW_US (raised to the previous entry's time if the
 * clock stepped back). E's seq, time_us, prev_hash and hash are ignored
 * and filled in. *SEQ_OUT (if not NULL) receives the new sequence number.
 * Safe to call from several threads and processes: LMDB serializes the
 * write transactions and the sequence number is read inside each.
 * Returns FV_OK, FV_ERR_INVALID (NULL argument or a string without NUL),
 * FV_ERR_STATE (read-only or failed store) or a store error.
 */
int store_audit_append(store_env *env, const store_audit_entry *e, uint64_t now_us,
                       uint64_t *seq_out);

/* Outcome of store_audit_verify. */
typedef struct store_audit_verify_result {
    uint64_t checked;           /* entries whose hash and link were checked */
    uint64_t first_seq;         /* first kept entry (pruned_through + 1) */
    uint64_t head_seq;          /* last entry recorded in the meta database */
    uint8_t head_hash[32];      /* hash of the last entry of the chain as read */
    bool ok;                    /* true if the whole chain is intact */
    uint64_t broken_seq;        /* with !ok: sequence number of the first broken link */
    char reason[64];            /* with !ok: what is wrong there */
} store_audit_verify_result;

/*
 * Walk the whole chain in one read transaction and check, entry by
 * entry: that no sequence number is missing, that the entry decodes,
 * that its hash matches its fields and that its prev_hash is the hash of
 * the entry before (or the recorded hash of the last pruned entry). At
 * the end the last entry must match the head recorded by append, which
 * detects entries deleted at the end. The first problem stops the walk.
 * Returns FV_OK whether or not the chain is intact (see OUT->ok), or a
 * store error.
 */
int store_audit_verify(store_env *env, store_audit_verify_result *out);

/* Callback per audit entry; E is valid only during the call. Return
 * false to stop. */
typedef bool (*store_audit_fn)(void *ctx, const store_audit_entry *e);

/*
 * Call FN for up to LIMIT (1 .. STORE_AUDIT_LIMIT_MAX) entries, in
 * ascending order from FROM_SEQ (0 = the first), or with NEWEST_FIRST
 * in descending order from FROM_SEQ (0 = the last). *NEXT (if not NULL)
 * receives the sequence number to pass as FROM_SEQ for the next page,
 * 0 when the end was reached. Entries that fail to decode are skipped
 * with a warning (store_audit_verify reports them). Returns FV_OK,
 * FV_ERR_INVALID or a store error.
 */
int store_audit_each(store_env *env, uint64_t from_seq, uint32_t limit, bool newest_first,
                     store_audit_fn fn, void *ctx, uint64_t *next);

/* Set and persist the audit retention limit (seconds, 0 = keep forever).
 * Writer only. */
int store_set_audit_retention(store_env *env, uint64_t retention_s);

/* Audit retention limit in seconds, 0 if never set. */
uint64_t store_audit_retention_s(store_env *env);

/*
 * Encode/decode one audit entry, exposed for tests and fuzzing. Encode
 * returns FV_ERR_INVALID for a string without NUL and FV_ERR_FULL if
 * OUT_LEN is too small (STORE_AUDIT_ENTRY_MAX_BYTES always suffices).
 * Decode reads only DATA[0 .. LEN), checks every length against its
 * field and returns FV_OK or FV_ERR_PARSE. store_audit_hash computes
 * the hash of E over the encoding without the hash field.
 */
int store_audit_encode(const store_audit_entry *e, uint8_t *out, size_t out_len, size_t *written);
int store_audit_decode(const uint8_t *data, size_t len, store_audit_entry *out);
int store_audit_hash(const store_audit_entry *e, uint8_t out[32]);

/* ---------------------------------------------------------------------- */
/* Key escrow and single-record deletion                                   */
/* ---------------------------------------------------------------------- */

/*
 * The named database "escrow" holds, per pseudonym and epoch, the raw
 * identifier sealed to the compliance officers' public keys (the blob is
 * built and opened in cli/escrow.c; the store treats it as opaque
 * ciphertext). Entries expire with the retention limit of the flows
 * class; store_sweep removes them after the record classes.
 */

/* Largest sealed blob of one entry. */
#define STORE_ESCROW_BLOB_MAX 1024u

/* One escrow entry. */
typedef struct store_escrow_entry {
    uint8_t pseudonym[FV_PSEUDONYM_BYTES];
    uint64_t epoch_id;
    uint64_t stored_us;         /* retention counts from here */
    uint32_t blob_len;          /* 1 .. STORE_ESCROW_BLOB_MAX */
    uint8_t blob[STORE_ESCROW_BLOB_MAX];
} store_escrow_entry;

/*
 * Write COUNT entries in one write transaction. An entry whose pseudonym
 * and epoch are already stored is skipped, not replaced. *WRITTEN (if not
 * NULL) receives the number of new entries. Writer only. Returns FV_OK,
 * FV_ERR_INVALID (a blob length out of range), FV_ERR_STATE (read-only
 * store) or a store error.
 */
int store_escrow_put(store_env *env, const store_escrow_entry *entries, size_t count,
                     size_t *written);

/* Callback per escrow entry; E is valid only during the call. Return
 * false to stop. */
typedef bool (*store_escrow_fn)(void *ctx, const store_escrow_entry *e);

/*
 * Call FN for every entry whose key (16 pseudonym bytes, then the epoch
 * id big-endian) starts with the PREFIX_LEN (0 .. 24) bytes of PREFIX,
 * in key order, in one read transaction. Expired entries the sweeper has
 * not removed yet are included. *MATCHED (if not NULL) counts the calls.
 * Returns FV_OK, FV_ERR_INVALID or a store error.
 */
int store_escrow_find(store_env *env, const uint8_t *prefix, size_t prefix_len,
                      store_escrow_fn fn, void *ctx, size_t *matched);

/* Delete the entry of PSEUDONYM in EPOCH_ID; *DELETED tells whether one
 * existed. Writer only. Returns FV_OK or a store error. */
int store_escrow_delete(store_env *env, const uint8_t pseudonym[FV_PSEUDONYM_BYTES],
                        uint64_t epoch_id, bool *deleted);

/* Number of stored escrow entries, expired ones included. */
int store_escrow_count(store_env *env, uint64_t *out);

/*
 * Delete the records of class CLS with the COUNT ids in IDS (ids as
 * store_query_run reports them), in write transactions of at most 1,000
 * records each. Missing ids are skipped. *DELETED (if not NULL) receives
 * the number deleted. Writer only. Returns FV_OK, FV_ERR_INVALID or a
 * store error; after an error the earlier transactions stay committed.
 */
int store_delete_records(store_env *env, fv_class cls, const uint64_t *ids, size_t count,
                         uint64_t *deleted);

#endif /* FV_STORE_H */
