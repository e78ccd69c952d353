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
 * A call that runs out of budget (complete = false) leaves a mark in ENV:
 * the next call on the same handle starts at the class where it stopped,
 * so repeated calls with a small budget reach every class. Classes that
 * the earlier call finished are swept again by the next complete pass.
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

/*
 * A cache of decoded records of one class (only FV_CLASS_AGGREGATE is
 * supported), for queries that read the same records again and again,
 * such as the dashboard's series. Entries are keyed by record id and
 * hold a copy of the stored value: an entry is used only while the
 * stored value is byte for byte the same and the data key of the
 * record's day still exists, so a cached query returns exactly what
 * store_query_run returns. Each cached query first drops the entries of
 * days whose key was destroyed (in this process or, once the key file
 * shows it, another). At most MAX_ENTRIES are kept; later records are
 * decrypted on every query. The cache locks itself and may be shared by
 * threads; use it with one store.
 */
typedef struct store_record_cache store_record_cache;

/* Returns FV_OK, FV_ERR_INVALID (unsupported class, MAX_ENTRIES 0) or
 * FV_ERR_NOMEM. */
int store_record_cache_create(fv_class cls, size_t max_entries, store_record_cache **out);
/* Wipe and free the cache. Accepts NULL; clears *CACHE. */
void store_record_cache_destroy(store_record_cache **cache);
/* Records in the cache now. */
size_t store_record_cache_count(store_record_cache *cache);

/* store_query_run with CACHE (NULL, or a cache of another class: no
 * cache). Records that fail to decrypt are skipped and counted as there. */
int store_query_run_cached(store_env *env, store_record_cache *cache, const store_query *q,
                           uint64_t now_us, store_record_fn fn, void *ctx,
                           uint64_t *next_cursor);

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

/* Meta keys of gauges the capturing process writes at each tick, for
 * GET /metrics: flows in the flow table, and when the current
 * pseudonymization epoch key was created (seconds since the epoch). */
#define STORE_META_FLOWS_ACTIVE "capture/flows_active"
#define STORE_META_EPOCH_START "anonymize/epoch_start_s"

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

/* Add DELTA to the stored counters (in the next commit). While a run is
 * active (store_run_begin), the delta is held until store_run_end
 * completes the run, and dropped if it does not. After a run that did
 * not complete, deltas are dropped until the next store_run_begin. */
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

/*
 * Like store_capture_counters_add, for counts of what a run reads (its
 * packets and the parsers' verdicts on them). While a run is active the
 * values are held in memory, summed per name, and written by the
 * transaction of store_run_end that completes the run, together with
 * the store_counters_add delta. A run that does not complete drops
 * them, and the handle drops later values too until the next
 * store_run_begin. Its resume reads the same input again and counts all
 * of it, so an interrupted and resumed run counts its input once.
 * Without a run, and after a completed one, this is
 * store_capture_counters_add. Returns FV_OK,
 * FV_ERR_INVALID (bad name), FV_ERR_NOMEM or a store error.
 */
int store_run_counters_add(store_env *env, const char *const *names, const uint64_t *values,
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

/*
 * Append COUNT entries in one write transaction, in array order, each as
 * store_audit_append would with its own time NOW_US[i]. One commit (and
 * one fsync) covers them all: either every entry is appended or none.
 * *LAST_SEQ (if not NULL) receives the sequence number of the last one.
 * Returns FV_OK (also for COUNT 0), FV_ERR_INVALID (NULL argument or a
 * string without NUL in any entry), FV_ERR_STATE or a store error.
 */
int store_audit_append_batch(store_env *env, const store_audit_entry *entries,
                             const uint64_t *now_us, size_t count, uint64_t *last_seq);

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

/* ---------------------------------------------------------------------- */
/* Users and API tokens (store_auth.c)                                     */
/* ---------------------------------------------------------------------- */

/*
 * The named database "auth" contains the users and API tokens of the
 * HTTP API. Keys are "u/NAME" (users) and "t/ID" (tokens); values are
 * versioned binary encodings (format in store_auth.c). A user entry
 * contains a crypto_pwhash (Argon2id) string, never the password. A token holds the
 * BLAKE2b-256 hash of its secret text: the text itself is shown once at
 * creation and not kept. Writes take a write transaction of their own
 * and may come from any process (the CLI while serve runs).
 */

/* User and token names: 1 .. 32 bytes of [a-z0-9._-], starting with a
 * lowercase letter. */
#define STORE_AUTH_NAME_MAX 32u
/* Room for a crypto_pwhash_str string with its NUL. */
#define STORE_PWHASH_MAX 128u
/* Token ids are 16 lowercase hex digits. */
#define STORE_TOKEN_ID_LEN 16u
/* Token text: "fvt_", the id, "_", 64 hex digits of secret. */
#define STORE_TOKEN_TEXT_LEN (4u + STORE_TOKEN_ID_LEN + 1u + 64u)

/* Roles, as bits so a set of roles is a mask. Admin may do everything. */
#define STORE_ROLE_ANALYST 1u
#define STORE_ROLE_COMPLIANCE 2u
#define STORE_ROLE_ADMIN 4u

typedef struct store_user {
    char name[STORE_AUTH_NAME_MAX + 1];
    unsigned role;                      /* one STORE_ROLE_* bit */
    char pwhash[STORE_PWHASH_MAX];      /* crypto_pwhash_str output */
    uint64_t created_us;
    uint64_t changed_us;                /* last password or role change; sessions
                                           created before it are invalid */
} store_user;

typedef struct store_token {
    char id[STORE_TOKEN_ID_LEN + 1];
    char name[STORE_AUTH_NAME_MAX + 1]; /* who or what uses it, audited as the actor */
    unsigned role;                      /* one STORE_ROLE_* bit */
    uint8_t hash[32];                   /* BLAKE2b-256 of the token text */
    uint64_t created_us;
    uint64_t expires_us;                /* 0 = never */
    uint64_t revoked_us;                /* 0 = active */
} store_token;

/* True if NAME is a valid user or token name (see STORE_AUTH_NAME_MAX). */
bool store_auth_name_valid(const char *name);

/* Role name ("analyst", "compliance", "admin") of ROLE, or NULL; and the
 * reverse, returning FV_OK or FV_ERR_INVALID. */
const char *store_role_name(unsigned role);
int store_role_parse(const char *text, unsigned *out);

/*
 * Hash PASSWORD (1 .. 1024 bytes) with crypto_pwhash_str at the
 * interactive limits into OUT. Returns FV_OK, FV_ERR_INVALID (length)
 * or FV_ERR_NOMEM (libsodium could not allocate its working memory).
 */
int store_password_hash(const char *password, char out[STORE_PWHASH_MAX]);
/* True if PASSWORD matches HASH. Takes as long for a wrong password as
 * for the right one. */
bool store_password_verify(const char *hash, const char *password);

/*
 * Add user U (CREATE true: FV_ERR_STATE if the name exists) or replace
 * it (CREATE false: FV_ERR_NOT_FOUND if it does not). Returns FV_OK,
 * FV_ERR_INVALID (name, role or hash) or a store error.
 */
int store_user_put(store_env *env, const store_user *u, bool create);
/* Add user U only if the store has no user at all, checked in the same
 * write transaction, so that two processes cannot both add a first user.
 * Returns FV_OK, FV_ERR_STATE if a user exists, FV_ERR_INVALID or a
 * store error. */
int store_user_put_first(store_env *env, const store_user *u);
/* Read user NAME. Returns FV_OK, FV_ERR_NOT_FOUND or a store error. */
int store_user_get(store_env *env, const char *name, store_user *out);
/* Delete user NAME. Returns FV_OK, FV_ERR_NOT_FOUND or a store error. */
int store_user_delete(store_env *env, const char *name);
/* Call FN for every user in name order; return false to stop. *COUNT
 * (if not NULL) receives the number of users visited. */
typedef bool (*store_user_fn)(void *ctx, const store_user *u);
int store_user_each(store_env *env, store_user_fn fn, void *ctx, size_t *count);

/*
 * Create a token named NAME with ROLE, valid until EXPIRES_US (0 =
 * never), at NOW_US. TEXT receives the token text (NUL-terminated),
 * which is stored only as a hash; *OUT (if not NULL) the stored entry.
 * Returns FV_OK, FV_ERR_INVALID or a store error.
 */
int store_token_create(store_env *env, const char *name, unsigned role, uint64_t expires_us,
                       uint64_t now_us, char text[STORE_TOKEN_TEXT_LEN + 1], store_token *out);
/*
 * Look up the token of TEXT and check its hash. Returns FV_OK (then
 * *OUT is filled; the caller checks expires_us and revoked_us),
 * FV_ERR_INVALID (not token syntax), FV_ERR_NOT_FOUND (no such token or
 * wrong secret) or a store error.
 */
int store_token_find(store_env *env, const char *text, store_token *out);
/* Mark token ID revoked at NOW_US. Returns FV_OK, FV_ERR_NOT_FOUND,
 * FV_ERR_STATE (already revoked) or a store error. */
int store_token_revoke(store_env *env, const char *id, uint64_t now_us);
typedef bool (*store_token_fn)(void *ctx, const store_token *t);
int store_token_each(store_env *env, store_token_fn fn, void *ctx, size_t *count);

/* ---------------------------------------------------------------------- */
/* Alert life cycle (store_alerts.c)                                       */
/* ---------------------------------------------------------------------- */

/*
 * An alert record in the alerts class is written once and never changed.
 * What changes (the count of raises merged into it, the newest raise's
 * evidence, the state, the analyst note and who changed it when) lives
 * in the named database "alert_state", keyed like the alert record by
 * its id and encrypted with the same day key, so retention and
 * crypto-shredding remove both together. docs/ARCHITECTURE.md explains
 * the choice. The alert id is the id of its first record.
 */

/* Limits of an analyst note: characters (Unicode code points) and bytes
 * of UTF-8. */
#define STORE_ALERT_NOTE_MAX_CHARS 1000u
#define STORE_ALERT_NOTE_MAX_BYTES 3000u
/* Room for the user name that changed the state, with its NUL. */
#define STORE_ALERT_USER_MAX 64u
/* Life-cycle entries store_alert_upsert examines, newest alert first,
 * when it looks for an alert to merge into. */
#define STORE_ALERT_DEDUPE_SCAN_MAX 4096u

/* States of an alert. Stored on disk: numbers never change. */
typedef enum store_alert_state {
    STORE_ALERT_NEW = 0,
    STORE_ALERT_ACKNOWLEDGED = 1,
    STORE_ALERT_CLOSED = 2,
} store_alert_state;

/* "new", "acknowledged", "closed", or NULL. */
const char *store_alert_state_name(int state);
/* Parse NAME into *OUT. Returns FV_OK or FV_ERR_INVALID. */
int store_alert_state_parse(const char *name, store_alert_state *out);

/* The life cycle of one alert. */
typedef struct store_alert_status {
    uint64_t id;                    /* id of the alert's first record */
    uint8_t state;                  /* store_alert_state */
    uint32_t count;                 /* raises merged into this alert, at least 1 */
    uint64_t first_seen_us;         /* ts_us of the first raise */
    uint64_t last_seen_us;          /* ts_us of the newest raise */
    uint64_t changed_us;            /* last state change, 0 if never changed */
    char changed_by[STORE_ALERT_USER_MAX];      /* "" if never changed */
    char note[STORE_ALERT_NOTE_MAX_BYTES + 1];  /* UTF-8, "" if none */
    fv_alert_record newest;         /* the newest raise (evidence, score, span) */
} store_alert_status;

/*
 * Store alert A raised at A->ts_us. If an alert with the same detector,
 * host, peer, peer port and protocol that is not closed was last raised
 * within WINDOW_S seconds of A->ts_us (either side), A is merged into it:
 * its count grows by one, last_seen becomes A->ts_us (if later) and A
 * becomes its newest raise. Otherwise A is stored as a new alert with
 * stored-at time NOW_US and a life-cycle entry with count 1. Only the
 * STORE_ALERT_DEDUPE_SCAN_MAX most recently first-raised alerts are
 * looked at. Commits queued records first. *ID (if not NULL) receives
 * the alert id, *MERGED (if not NULL) whether A was merged. Writer only.
 * Returns FV_OK, FV_ERR_INVALID, FV_ERR_STATE or a store error.
 */
int store_alert_upsert(store_env *env, const fv_alert_record *a, uint32_t window_s,
                       uint64_t now_us, uint64_t *id, bool *merged);

/*
 * Fill OUT[i] with the life cycle of alert IDS[i] whose stored record is
 * RECS[i], for i < COUNT, in one read transaction. An alert without a
 * life-cycle entry (written before this database existed, or whose entry
 * could not be read) gets count 1, state new, first and last seen at the
 * record's ts_us and the record as its newest raise. Returns FV_OK,
 * FV_ERR_INVALID or a store error.
 */
int store_alert_status_get(store_env *env, const uint64_t *ids, const fv_alert_record *recs,
                           size_t count, store_alert_status *out);

/*
 * Read alert ID: its record into *REC and its life cycle into *STATUS
 * (either may be NULL). Returns FV_OK, FV_ERR_NOT_FOUND (no such alert,
 * expired at NOW_US, or undecryptable) or a store error.
 */
int store_alert_find(store_env *env, uint64_t id, uint64_t now_us, fv_record *rec,
                     store_alert_status *status);

/*
 * Change the state of alert ID to TO at NOW_US on behalf of USER (1 ..
 * STORE_ALERT_USER_MAX - 1 bytes) with NOTE (NULL or "" for none; at
 * most STORE_ALERT_NOTE_MAX_CHARS characters and STORE_ALERT_NOTE_MAX_BYTES
 * bytes of valid UTF-8). Allowed: new -> acknowledged, new -> closed,
 * acknowledged -> closed; closing needs a note. A note given without a
 * state change is not possible: every call changes the state. A note
 * replaces the previous one; NULL keeps it. *OUT (if not NULL) receives
 * the new life cycle. Any process that opened the store read-write may
 * call this, in a write transaction of its own.
 * Returns FV_OK, FV_ERR_NOT_FOUND (as store_alert_find), FV_ERR_STATE
 * (transition not allowed from the current state), FV_ERR_INVALID (a
 * missing or invalid note or user) or a store error.
 */
int store_alert_transition(store_env *env, uint64_t id, store_alert_state to, const char *note,
                           const char *user, uint64_t now_us, store_alert_status *out);

/* Number of life-cycle entries per state over the live alerts at NOW_US
 * (COUNTS indexed by store_alert_state). Alerts without an entry count
 * as new. Returns FV_OK or a store error. */
int store_alert_state_counts(store_env *env, uint64_t now_us, uint64_t counts[3]);

/* ---------------------------------------------------------------------- */
/* Detector state (store_detstate.c)                                       */
/* ---------------------------------------------------------------------- */

/*
 * Replace the saved detector state with DATA[0..len) (det_engine_save
 * bytes), encrypted under the flows key of NOW_US's day, so it expires
 * with the flows of that day. While a run is active (store_run_begin),
 * the same transaction marks its checkpoint as "detector state saved",
 * which a later store_run_begin of that run reports in
 * store_run_info.detect_saved. Returns FV_OK, FV_ERR_INVALID or a store
 * error. After an error neither the state nor the mark has changed.
 */
int store_detstate_put(store_env *env, const uint8_t *data, size_t len, uint64_t now_us);

/*
 * Read the saved detector state into a new buffer *OUT (caller frees)
 * of *OUT_LEN bytes. Returns FV_OK, FV_ERR_NOT_FOUND (nothing saved, or
 * its key destroyed by retention), FV_ERR_PARSE (damaged) or a store
 * error.
 */
int store_detstate_get(store_env *env, uint8_t **out, size_t *out_len);

/* ---------------------------------------------------------------------- */
/* Commit reports, resumable ingest runs, size quota (store_checkpoint.c)  */
/* ---------------------------------------------------------------------- */

/*
 * Callback run after each commit of queued records (store_commit, also
 * the automatic one in store_put) with the records of each class
 * committed so far: by this handle, or while a run is active, by every
 * attempt of that run. New alerts from store_alert_upsert count too, but
 * a resumed run does not skip alerts (the upsert merges repeats).
 */
typedef void (*store_commit_fn)(void *ctx, const uint64_t committed[FV_CLASS_COUNT]);

/* Set the commit callback of ENV (FN NULL removes it). */
void store_commit_hook_set(store_env *env, store_commit_fn fn, void *ctx);

/* Length of a run id: the caller's hash of what the run reads. */
#define STORE_RUN_ID_BYTES 32u

/* Outcome of store_run_begin. */
typedef struct store_run_info {
    bool resumed;                       /* an interrupted attempt left a checkpoint */
    uint64_t stored[FV_CLASS_COUNT];    /* records it committed that are still stored */
    /* The interrupted attempt saved the detector state
     * (store_detstate_put) after feeding its input to the detectors, so
     * that state already contains the input of the run. */
    bool detect_saved;
} store_run_info;

/*
 * Start the resumable run ID (for example an ingest of the same files).
 * The store keeps a checkpoint in the meta database ("run/<hex id>"):
 * the last record id of each class before the run and the records the
 * run committed, written in the same transaction as the records, and
 * whether store_detstate_put saved the detector state during the run.
 * If an interrupted attempt of ID left a checkpoint, the records it
 * committed are read back (all classes but alerts). store_put then skips each
 * record whose class and encoding equal one of them, once per stored
 * copy, so a rerun does not store them twice. Skipped records still
 * return FV_OK. Writer only; one run at a time. Returns FV_OK,
 * FV_ERR_INVALID, FV_ERR_STATE (a run is active, or the store is
 * read-only or failed), FV_ERR_NOMEM or a store error.
 */
int store_run_begin(store_env *env, const uint8_t id[STORE_RUN_ID_BYTES], store_run_info *out);

/*
 * End the active run. COMPLETE writes, in one transaction, the queue,
 * the counters held during the run (store_counters_add,
 * store_run_counters_add), the audit entry FINAL (if not NULL) at time
 * FINAL_US, and deletes the checkpoint, so a later run of the same id
 * starts afresh. A crash leaves either all of it or none of it, and the
 * resume of none counts and audits the run once. Otherwise, or if that
 * transaction fails, the held counters are dropped and the checkpoint
 * stays for a resume. *SKIPPED (if not NULL) receives the records
 * store_put skipped as already stored. Returns FV_OK, FV_ERR_STATE (no
 * run), FV_ERR_INVALID (FINAL has a string without NUL), FV_ERR_FULL
 * (quota reached: the queued records were dropped) or a store error.
 */
int store_run_end(store_env *env, bool complete, const store_audit_entry *final, uint64_t final_us,
                  uint64_t *skipped);

/*
 * True while a run is active that has neither committed nor queued a
 * record, in this attempt or in the attempts it resumes, and has not
 * saved the detector state. A checkpoint of such a run carries nothing
 * that a resume could skip.
 */
bool store_run_empty(const store_env *env);

/*
 * Delete the checkpoint of the active run, which stays active until
 * store_run_end. For an empty run (store_run_empty) that cannot finish,
 * so that the next command starts afresh instead of resuming nothing.
 * Writer only. Returns FV_OK, FV_ERR_STATE (no run) or a store error.
 */
int store_run_forget(store_env *env);

/*
 * Limit the store to BYTES of used LMDB pages (0 removes the limit).
 * Before each commit of queued records the used size (file pages minus
 * free pages) is compared with the limit. At or above it the commit is
 * rejected with FV_ERR_FULL and the queued records are dropped, until a
 * sweep frees pages. The store is not marked failed. The LMDB map is
 * capped at BYTES plus STORE_QUOTA_HEADROOM_BYTES, so audit entries,
 * sweeps and the last batch still fit. Writer only. Returns FV_OK,
 * FV_ERR_INVALID (below STORE_QUOTA_MIN_BYTES) or a store error.
 */
int store_size_limit_set(store_env *env, uint64_t bytes);

/* Smallest accepted quota, and the map room kept above it. */
#define STORE_QUOTA_MIN_BYTES ((uint64_t)1 << 20)
#define STORE_QUOTA_HEADROOM_BYTES ((uint64_t)32 << 20)

/* True while record commits are rejected because of the size quota. */
bool store_quota_reached(store_env *env);

/* Bytes of used pages (file pages minus free pages) as of the last
 * commit, into *OUT. Returns FV_OK or FV_ERR_STORE. */
int store_size_used(store_env *env, uint64_t *out);

/*
 * Clear the reader slots of processes that died inside a read
 * transaction (mdb_reader_check), so their snapshot no longer keeps
 * freed pages from reuse. store_open runs it, and store_read_begin at
 * most every STORE_READER_CHECK_INTERVAL_S seconds. *CLEARED (if not
 * NULL) receives the number of slots cleared. Returns FV_OK or
 * FV_ERR_STORE.
 */
int store_reader_check(store_env *env, int *cleared);
#define STORE_READER_CHECK_INTERVAL_S 10

#endif /* FV_STORE_H */
