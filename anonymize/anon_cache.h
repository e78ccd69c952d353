/*
 * anon_cache.h: the per-epoch pseudonym cache of anon_ctx (internal to
 * anonymize/, not installed).
 *
 * A fixed table of ANON_CACHE_SLOTS entries, open addressing with linear
 * probing over at most ANON_CACHE_PROBES slots, keyed by (type, the
 * identifier bytes) and placed by SipHash-2-4 (crypto_shorthash) under a
 * random key drawn per epoch, so an observer of traffic cannot aim
 * identifiers at one slot run. A lookup compares the whole identifier,
 * so a hit returns exactly what anon_pseudonym would compute. When all
 * probed slots are taken, the first one is overwritten: the table stays
 * bounded and only loses hits.
 *
 * The table holds raw identifiers next to their pseudonyms, so it lives
 * in memory only (locked against swap where RLIMIT_MEMLOCK allows,
 * excluded from core dumps), is wiped on every rotation and on close,
 * and is never written anywhere.
 */
#ifndef FV_ANON_CACHE_H
#define FV_ANON_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "anonymize.h"

#define ANON_CACHE_SLOTS 65536u    /* a power of two */
#define ANON_CACHE_PROBES 8u
/* Longest identifier cached: addresses, MACs and most host names fit;
 * longer ones are computed each time. Sized so an entry is 64 bytes. */
#define ANON_CACHE_ID_MAX 46u

typedef struct anon_cache_entry {
    uint8_t type;       /* anon_type; 0 marks an empty slot */
    uint8_t len;
    uint8_t id[ANON_CACHE_ID_MAX];
    uint8_t pseudonym[FV_PSEUDONYM_BYTES];
} anon_cache_entry;

/* Identifiers of up to this many bytes (addresses, MACs) keep their
 * home slot in the prefetch memo. */
#define ANON_CACHE_MEMO_ID_MAX 16u
#define ANON_CACHE_MEMO_SIZE 4u

/* The home slot of an identifier that anon_cache_prefetch hashed, so the
 * lookup that follows does not hash it again. */
typedef struct anon_cache_memo {
    uint8_t type;       /* anon_type; 0 marks an unused entry */
    uint8_t len;
    uint8_t id[ANON_CACHE_MEMO_ID_MAX];
    uint32_t home;
} anon_cache_memo;

typedef struct anon_cache {
    anon_cache_entry *slots;    /* NULL until the first use, or if allocation failed */
    unsigned char key[crypto_shorthash_KEYBYTES];
    /* Raw identifiers like the table: wiped with it on every key change. */
    anon_cache_memo memo[ANON_CACHE_MEMO_SIZE];
    unsigned memo_next;
    bool disabled;
    uint64_t hits, misses;
} anon_cache;

/* Copy the cached pseudonym of (TYPE, ID, LEN) into OUT and return true,
 * or return false. Allocates the table on first use. */
bool anon_cache_get(anon_cache *cache, anon_type type, const uint8_t *id, size_t len,
                    uint8_t out[FV_PSEUDONYM_BYTES]);

/* Start loading the home slot of (TYPE, ID, LEN) into the CPU cache and
 * remember its position for the lookup that follows. A later get or put
 * of the same identifier finds the same entries with or without this
 * call. */
void anon_cache_prefetch(anon_cache *cache, anon_type type, const uint8_t *id, size_t len);

/* Remember PSEUDONYM for (TYPE, ID, LEN); ignored for long identifiers
 * or without a table. */
void anon_cache_put(anon_cache *cache, anon_type type, const uint8_t *id, size_t len,
                    const uint8_t pseudonym[FV_PSEUDONYM_BYTES]);

/* Wipe every entry and draw a new placement key (on rotation). */
void anon_cache_reset(anon_cache *cache);

/* Wipe and free the table and the key. */
void anon_cache_free(anon_cache *cache);

#endif /* FV_ANON_CACHE_H */
