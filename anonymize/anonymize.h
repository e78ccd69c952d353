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

#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* Domain-separation tags; stored implicitly in every pseudonym, never change. */
typedef enum anon_type {
    ANON_TYPE_IPV4 = 1,
    ANON_TYPE_IPV6 = 2,
    ANON_TYPE_MAC = 3,
    ANON_TYPE_HOSTNAME = 4,     /* local host names (mDNS, LLMNR), lower-cased */
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

/* Describe the current epoch. */
void anon_epoch(const anon_ctx *ctx, anon_epoch_info *out);

/* Read the public epoch facts from the key file without loading the key
 * into a context (for `flowveil keys status`). */
int anon_key_file_info(const char *key_path, uint64_t rotation_s, anon_epoch_info *out,
                       char *err, size_t err_len);

#endif /* FV_ANONYMIZE_H */
