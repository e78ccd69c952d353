/*
 * escrow.h: key escrow of raw identifiers for audited re-identification.
 *
 * The capturing process seals the raw identifier behind each new
 * pseudonym of the epoch to the compliance officers' public keys
 * (libsodium crypto_box_seal) and stores the sealed blob in the store's
 * escrow database. Only `flowveil reveal`, run offline with the officers'
 * secret keys, can open it. With two officers (dual control) neither key
 * alone opens an entry.
 *
 * Blob format version 1 (integers big-endian):
 *
 *   u8  version, always 1
 *   u8  officers: 1 or 2
 *   officers = 1:  crypto_box_seal(officer 1, P)
 *   officers = 2:  24 bytes nonce
 *                  u16 length L of the next field
 *                  L bytes crypto_secretbox(P, nonce, K)
 *                  crypto_box_seal(officer 1, K XOR R)     (80 bytes)
 *                  crypto_box_seal(officer 2, R)           (80 bytes)
 *   where K and R are fresh random 32-byte values per entry, and
 *   P = 16 bytes pseudonym || u64 epoch id || u8 anon_type || identifier.
 *
 * P repeats the entry's key, so an entry copied under another pseudonym
 * is detected when it is opened.
 */
#ifndef FV_ESCROW_H
#define FV_ESCROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anonymize.h"
#include "policy.h"
#include "store.h"

/* Longest identifier escrowed: a host name of 255 bytes. */
#define FV_ESCROW_ID_MAX 255u

/* Length of an officer's secret and public key (crypto_box). */
#define FV_OFFICER_KEY_BYTES 32u

/* The first word of an officer secret key file. */
#define FV_OFFICER_SECRET_KEY_TAG "flowveil-officer-secret-key-v1"

/*
 * Create an officer key pair: PATH gets the secret key (mode 0600) and
 * PATH.pub the public key, each one line "TAG HEX\n". Neither file may
 * exist (symbolic links included). Returns FV_OK, FV_ERR_INVALID (path
 * too long), FV_ERR_IO with a message in ERR, or FV_ERR_CRYPTO.
 */
int fv_officer_keygen(const char *path, char *err, size_t err_len);

/*
 * Load the officer secret key file at PATH (not a symbolic link, not
 * accessible by group or others) into SK and derive its public key PK.
 * Returns FV_OK, FV_ERR_IO, FV_ERR_PERMISSION or FV_ERR_PARSE with a
 * message in ERR.
 */
int fv_officer_secret_load(const char *path, uint8_t sk[FV_OFFICER_KEY_BYTES],
                           uint8_t pk[FV_OFFICER_KEY_BYTES], char *err, size_t err_len);

/*
 * Seal identifier ID (LEN bytes, 1 .. FV_ESCROW_ID_MAX) of TYPE behind
 * PSEUDONYM in EPOCH_ID to the COUNT (1 or 2) public keys in KEYS, into
 * OUT (STORE_ESCROW_BLOB_MAX bytes). Returns FV_OK, FV_ERR_INVALID or
 * FV_ERR_CRYPTO.
 */
int fv_escrow_seal(const uint8_t *const keys[], size_t count,
                   const uint8_t pseudonym[FV_PSEUDONYM_BYTES], uint64_t epoch_id,
                   anon_type type, const uint8_t *id, size_t len, uint8_t *out,
                   uint32_t *out_len);

/* An officer key pair loaded for reveal. */
typedef struct fv_officer_key {
    uint8_t sk[FV_OFFICER_KEY_BYTES];
    uint8_t pk[FV_OFFICER_KEY_BYTES];
} fv_officer_key;

/* Why fv_escrow_open failed. */
typedef enum fv_escrow_open_result {
    FV_ESCROW_OPENED = 0,
    FV_ESCROW_NEEDS_SECOND_KEY = 1,  /* dual control, and one key was given */
    FV_ESCROW_WRONG_KEY = 2,         /* no given key opens the entry */
    FV_ESCROW_DAMAGED = 3,           /* malformed blob, or P does not match the entry's key */
} fv_escrow_open_result;

/*
 * Open entry E with KEY_COUNT (1 or 2) officer keys; with two, either
 * order works. On FV_ESCROW_OPENED *TYPE, ID (FV_ESCROW_ID_MAX bytes)
 * and *LEN hold the identifier.
 */
fv_escrow_open_result fv_escrow_open(const store_escrow_entry *e, const fv_officer_key *keys,
                                     size_t key_count, anon_type *type, uint8_t *id,
                                     size_t *len);

/* The pipeline's escrow writer (one per capturing process). */
typedef struct fv_escrow fv_escrow;

/* Create a writer sealing to POLICY's officers into STORE. Returns FV_OK,
 * FV_ERR_INVALID (escrow not enabled) or FV_ERR_NOMEM. */
int fv_escrow_create(const pol_policy *policy, store_env *store, fv_escrow **out);

/* Write what is buffered, wipe memory and free. Accepts NULL. */
void fv_escrow_destroy(fv_escrow **escrow);

/* anon_observer_fn: remember the identifier behind a pseudonym computed
 * for the record being built (the pending list). */
void fv_escrow_observe(void *escrow, anon_type type, const uint8_t *id, size_t len,
                       const uint8_t pseudonym[FV_PSEUDONYM_BYTES]);

/* Forget the pending list: call before building each record. */
void fv_escrow_begin_record(fv_escrow *escrow);

/*
 * The record built since fv_escrow_begin_record was stored at NOW_US in
 * EPOCH_ID: seal each pending identifier whose pseudonym is new in this
 * epoch and buffer it. A new epoch wipes the set of pseudonyms seen.
 * Returns FV_OK or the first store error of an automatic flush.
 */
int fv_escrow_record_stored(fv_escrow *escrow, uint64_t epoch_id, uint64_t now_us);

/* Write buffered entries to the store. Returns FV_OK or a store error. */
int fv_escrow_flush(fv_escrow *escrow);

/* Entries sealed by this writer so far. */
uint64_t fv_escrow_sealed(const fv_escrow *escrow);

#endif /* FV_ESCROW_H */
