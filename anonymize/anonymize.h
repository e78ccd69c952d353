/*
 * anonymize.h: keyed pseudonyms under a rotating epoch key.
 *
 * A pseudonym is BLAKE2b-128 (libsodium crypto_generichash) keyed with the
 * current epoch key, over a one-byte type tag followed by the identifier
 * bytes. The same identifier in the same epoch always gives the same
 * pseudonym; different types never collide by construction.
 *
 * The epoch key is 32 random bytes held in sodium_malloc'd memory. It is
 * persisted in a key file (mode 0600, fsynced on every write) so that a
 * restarted capture keeps the epoch. Rotation draws a fresh random key,
 * wipes the old one from memory and overwrites the key file in place, so
 * the old key cannot be recovered from the process or from the file.
 *
 * Caveats
 * - Only the capturing process (ingest, capture) opens the key file.
 *   `flowveil serve` must never link a code path that calls anon_open().
 * - Time is passed in by the caller (seconds since the epoch); nothing
 *   here reads the clock.
 * - An anon_ctx is not thread-safe.
 */
#ifndef FV_ANONYMIZE_H
#define FV_ANONYMIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* Domain-separation tags; stored implicitly in every pseudonym, never change. */
typedef enum anon_type {
    ANON_TYPE_IPV4 = 1,
    ANON_TYPE_IPV6 = 2,
    ANON_TYPE_MAC = 3,
    ANON_TYPE_HOSTNAME = 4,     /* local host names (mDNS, LLMNR), lower-cased */
    ANON_TYPE_DOMAIN = 5,       /* DNS, TLS and HTTP names (domains.mode pseudonymize), lower-cased */
} anon_type;

/* Public facts about the current epoch. No key bytes. */
typedef struct anon_epoch_info {
    uint64_t epoch_id;      /* starts at 1, increases by 1 per rotation */
    uint64_t start_s;       /* when this epoch's key was created */
    uint64_t next_rotation_s;
    uint64_t rotation_s;
} anon_epoch_info;

typedef struct anon_ctx anon_ctx;

/*
 * Open the key file at KEY_PATH, creating it (mode 0600) with a fresh key
 * if missing, and rotate at once if its epoch started ROTATION_S or more
 * before NOW_S. Return FV_OK, FV_ERR_IO, FV_ERR_PARSE (corrupt key file),
 * FV_ERR_PERMISSION (file readable by group or others) or FV_ERR_CRYPTO,
 * with a message in ERR.
 */
FV_NODISCARD int anon_open(const char *key_path, uint64_t rotation_s, uint64_t now_s,
                           anon_ctx **out, char *err, size_t err_len);

/* Wipe the key from memory and free CTX. Accepts NULL; clears *ctx. */
void anon_close(anon_ctx **ctx);

/* Rotate if the epoch is due at NOW_S. Returns 1 if it rotated, 0 if not,
 * or a negative fv_err code on failure (the old key is then kept). */
int anon_maybe_rotate(anon_ctx *ctx, uint64_t now_s);

/* Rotate now, unconditionally. Return FV_OK or an error code. */
int anon_rotate(anon_ctx *ctx, uint64_t now_s);

/* Compute the pseudonym of identifier ID (LEN bytes) of TYPE. */
void anon_pseudonym(anon_ctx *ctx, anon_type type, const uint8_t *id, size_t len,
                    uint8_t out[FV_PSEUDONYM_BYTES]);

/*
 * Prefix-preserving pseudonym of an address (the Crypto-PAn construction
 * with keyed BLAKE2b in place of AES). FAMILY is 4 (IN[0..3]) or 6
 * (IN[0..15]), network order. Two inputs that share exactly their first k
 * bits give outputs that share exactly their first k bits, and the output
 * is a valid address of the same family (IPv4 in OUT[0..3], the rest of
 * OUT zeroed).
 *
 * Output bit i (0 = most significant) is input bit i XOR the low bit of
 * byte 0 of
 *   BLAKE2b-128(key = K, message = u8 i || the first i input bits, the
 *               rest zero, as 4 (IPv4) or 16 (IPv6) bytes)
 * where K = crypto_kdf_derive_from_key(32 bytes, subkey id 1, context
 * "fvpfxpv4" or "fvpfxpv6", epoch key). Known-answer vectors in
 * tests/unit/kat/ fix this definition. Returns FV_OK, or FV_ERR_INVALID
 * for another FAMILY.
 */
int anon_prefix_preserving(anon_ctx *ctx, int family, const uint8_t in[16], uint8_t out[16]);

/*
 * Keep the first PREFIX_LEN bits of the address IN (FAMILY 4 or 6, layout
 * as above) and zero the rest into OUT. Needs no key. Returns FV_OK, or
 * FV_ERR_INVALID for another FAMILY or a PREFIX_LEN above 32 (IPv4) or
 * 128 (IPv6).
 */
int anon_truncate(int family, const uint8_t in[16], unsigned prefix_len, uint8_t out[16]);

/* Describe the current epoch. */
void anon_epoch(const anon_ctx *ctx, anon_epoch_info *out);

/*
 * anon_pseudonym looks identifiers of up to 46 bytes up in a per-epoch
 * in-memory cache of 65536 entries before computing them. The cache is
 * on by default, wiped on rotation and on close, and never written
 * anywhere. ENABLED false turns it off and wipes it (benchmarks and
 * tests compare both); results are the same either way.
 */
void anon_set_cache(anon_ctx *ctx, bool enabled);

/* Cache lookups of the current epoch that found an entry and that did
 * not, counted since the last rotation. */
typedef struct anon_cache_info {
    uint64_t hits;
    uint64_t misses;
} anon_cache_info;

void anon_cache_stats(const anon_ctx *ctx, anon_cache_info *out);

/*
 * Start loading the pseudonym cache slot of identifier ID (LEN bytes) of
 * TYPE into the CPU cache, for an anon_pseudonym of the same identifier
 * soon after. Prefetching the identifiers of one record before computing
 * any of their pseudonyms overlaps the memory misses. Changes no result.
 * The last few prefetched identifiers of up to 16 bytes keep their slot
 * position, so the lookup does not hash them twice.
 */
void anon_prefetch(anon_ctx *ctx, anon_type type, const uint8_t *id, size_t len);

/*
 * Callback run by anon_pseudonym after computing PSEUDONYM of the raw
 * identifier ID (LEN bytes) of TYPE. It receives a raw identifier, so
 * only the capturing process may install one (key escrow does).
 */
typedef void (*anon_observer_fn)(void *ctx, anon_type type, const uint8_t *id, size_t len,
                                 const uint8_t pseudonym[FV_PSEUDONYM_BYTES]);

/* Install FN (NULL removes it) with FN_CTX on CTX. */
void anon_set_observer(anon_ctx *ctx, anon_observer_fn fn, void *fn_ctx);

/*
 * Load the key file at KEY_PATH read-only, for commands that must compute
 * current pseudonyms without being the capturing process (`flowveil
 * subject`). The context never rotates (anon_rotate returns FV_ERR_STATE)
 * and the file is not kept open, even when the epoch is overdue. Returns
 * FV_OK, FV_ERR_NOT_FOUND (no key file), FV_ERR_PERMISSION, FV_ERR_PARSE,
 * FV_ERR_IO or FV_ERR_CRYPTO, with a message in ERR.
 */
FV_NODISCARD int anon_open_readonly(const char *key_path, anon_ctx **out, char *err,
                                    size_t err_len);

/* Read the public epoch facts from the key file without loading the key
 * into a context (for `flowveil keys status`). */
int anon_key_file_info(const char *key_path, uint64_t rotation_s, anon_epoch_info *out,
                       char *err, size_t err_len);

/* ---------------------------------------------------------------------- */
/* Key authority: one epoch schedule for many sensors (anon_authority.c)   */
/* ---------------------------------------------------------------------- */

/*
 * A sensor whose store directory contains ANON_SENSOR_KEY_FILE is in
 * authority mode: anon_open never creates an epoch key there and never
 * rotates one. Its key file contains an epoch key that a key authority
 * sealed to the sensor's public key (crypto_box_seal) and that
 * anon_import_sealed wrote, with the magic "FVKEYA01" in place of
 * "FVKEY001". anon_maybe_rotate then adopts a newer imported epoch
 * instead of drawing a key, and keeps an overdue epoch (with a warning
 * once an hour) until the next one is imported.
 */
#define ANON_SENSOR_KEY_FILE "sensor.box.key"
#define ANON_SENSOR_PUB_FILE "sensor.box.pub"
#define ANON_BOX_PUBLIC_KEY_BYTES 32

/*
 * Sealed epoch file, ANON_SEALED_BYTES bytes:
 *   0   8  magic "FVSEAL02"
 *   8   8  epoch id, big-endian (repeated inside the box)
 *  16   8  start of the epoch, seconds since 1970, big-endian (repeated)
 *  24  32  the recipient sensor's box public key
 *  56 112  crypto_box_seal of the 64-byte "FVKEYA01" key file record
 * 168  64  Ed25519 signature (crypto_sign_detached) of bytes 0..167 by
 *          the authority's signing key
 *
 * crypto_box_seal has an anonymous sender, so anyone holding the
 * sensor's public key could seal a key of their choice. The signature
 * is what proves that the authority issued the file: a sensor imports
 * only files that verify under the authority public key pinned in its
 * store directory (ANON_AUTHORITY_PUB_FILE). Files of the unsigned
 * format "FVSEAL01" are rejected.
 */
#define ANON_SEALED_BYTES 232

/* The authority's Ed25519 signing key pair in the authority directory:
 * ANON_AUTHORITY_KEY_FILE (mode 0600) and ANON_AUTHORITY_PUB_FILE (one
 * line "flowveil-authority-sign-v1 <64 hex digits>"). A sensor keeps its
 * pinned copy of the public key under the same name in its store. */
#define ANON_AUTHORITY_KEY_FILE "authority.sign.key"
#define ANON_AUTHORITY_PUB_FILE "authority.sign.pub"
#define ANON_SIGN_PUBLIC_KEY_BYTES 32
#define ANON_SIGN_SECRET_KEY_BYTES 64

/* Highest epoch id an authority issues or a sensor imports (2^62 - 1),
 * far below 2^64 so the schedule can never be pushed to its end. */
#define ANON_EPOCH_MAX ((UINT64_C(1) << 62) - 1)

/* True if the directory of KEY_PATH contains ANON_SENSOR_KEY_FILE. */
bool anon_authority_mode(const char *key_path);

/*
 * Create the sensor's box key pair in DB_DIR: ANON_SENSOR_KEY_FILE (mode
 * 0600, the secret key) and ANON_SENSOR_PUB_FILE (one line
 * "flowveil-sensor-box-v1 <64 hex digits>"), which the authority enrolls.
 * Existing files are never overwritten. Returns FV_OK, FV_ERR_INVALID
 * (files exist), FV_ERR_IO or FV_ERR_CRYPTO with a message in ERR.
 */
int anon_sensor_keygen(const char *db_dir, char *err, size_t err_len);

/* Read a sensor public key file written by anon_sensor_keygen into PK.
 * A key that is all zeros or of low order (crypto_scalarmult with it
 * fails) is rejected, because nothing can be sealed to it. Returns
 * FV_OK, FV_ERR_IO, FV_ERR_PARSE or FV_ERR_CRYPTO with a message. */
int anon_sensor_pub_read(const char *path, uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES], char *err,
                         size_t err_len);

/* Create the authority signing key pair in DIR (ANON_AUTHORITY_KEY_FILE
 * and ANON_AUTHORITY_PUB_FILE). Existing files are never overwritten.
 * Returns FV_OK, FV_ERR_INVALID (files exist), FV_ERR_IO or FV_ERR_CRYPTO. */
int anon_authority_keygen(const char *dir, char *err, size_t err_len);

/* Read DIR's authority signing secret key into SK (caller wipes it).
 * Returns FV_OK, FV_ERR_NOT_FOUND, FV_ERR_PERMISSION (group or world
 * access), FV_ERR_PARSE or FV_ERR_IO with a message in ERR. */
int anon_authority_sign_key_read(const char *dir, uint8_t sk[ANON_SIGN_SECRET_KEY_BYTES],
                                 char *err, size_t err_len);

/* Read an authority public key file into PK. Returns FV_OK, FV_ERR_IO,
 * FV_ERR_NOT_FOUND or FV_ERR_PARSE with a message in ERR. */
int anon_authority_pub_read(const char *path, uint8_t pk[ANON_SIGN_PUBLIC_KEY_BYTES], char *err,
                            size_t err_len);

/* Pin the authority public key file PUB_PATH in DB_DIR (as
 * ANON_AUTHORITY_PUB_FILE). Pinning the same key again is a no-op; a
 * different key is rejected with FV_ERR_STATE, so a stolen or replaced
 * file cannot re-pin a sensor. Returns FV_OK or an error with a message. */
int anon_authority_pin(const char *db_dir, const char *pub_path, char *err, size_t err_len);

/* Seal the epoch key KEY of EPOCH_ID (1..ANON_EPOCH_MAX), starting at
 * START_S, to the sensor public key PK and sign the file with the
 * authority secret key SIGN_SK into OUT. Returns FV_OK, FV_ERR_INVALID
 * (epoch out of range) or FV_ERR_CRYPTO. */
int anon_seal_epoch(const uint8_t key[32], uint64_t epoch_id, uint64_t start_s,
                    const uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES],
                    const uint8_t sign_sk[ANON_SIGN_SECRET_KEY_BYTES],
                    uint8_t out[ANON_SEALED_BYTES]);

/* Epoch id and start of a sealed file from its clear header (not yet
 * authenticated). Returns FV_OK or FV_ERR_PARSE. */
int anon_sealed_header(const uint8_t *sealed, size_t len, uint64_t *epoch_id, uint64_t *start_s);

/*
 * Open SEALED (LEN bytes) with DB_DIR's sensor secret key and write the
 * epoch key into DB_DIR/pseudonym.key: in place (like a rotation, so the
 * previous key is overwritten and not left in an unlinked block) or as a
 * new 0600 file. The file's signature must verify under the authority
 * public key pinned in DB_DIR (anon_authority_pin). An epoch not newer
 * than the one in the key file is rejected with FV_ERR_STATE. A running
 * capture adopts the new epoch at its next tick. OUT gets the imported
 * epoch. Returns FV_OK, FV_ERR_NOT_FOUND (no sensor key or no pinned
 * authority key), FV_ERR_PARSE, FV_ERR_CRYPTO (bad signature, not sealed
 * to this sensor, or damaged), FV_ERR_STATE or FV_ERR_IO.
 */
int anon_import_sealed(const char *db_dir, const uint8_t *sealed, size_t len,
                       anon_epoch_info *out, char *err, size_t err_len);

/* Check the authority signature of the sealed epoch file SEALED (LEN
 * bytes) under the authority public key PK, without importing it.
 * Returns FV_OK, FV_ERR_PARSE (not a sealed epoch file) or
 * FV_ERR_CRYPTO (not signed by PK, or damaged). */
int anon_sealed_verify(const uint8_t *sealed, size_t len,
                       const uint8_t pk[ANON_SIGN_PUBLIC_KEY_BYTES]);

#endif /* FV_ANONYMIZE_H */
