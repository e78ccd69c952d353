/*
 * anon_cache.c: the per-epoch pseudonym cache; see anon_cache.h.
 */
#include "anon_cache.h"

#include <stdlib.h>
#include <string.h>

#include "fv_common.h"

_Static_assert(sizeof(anon_cache_entry) == 64, "a cache entry fills one 64-byte line");
_Static_assert((ANON_CACHE_SLOTS & (ANON_CACHE_SLOTS - 1)) == 0,
               "the slot count is a power of two");

#define ANON_CACHE_TABLE_BYTES ((size_t)ANON_CACHE_SLOTS * sizeof(anon_cache_entry))

/* Allocate the table and draw its key. Leaves SLOTS NULL if out of
 * memory, which only turns the cache off. */
static void anon_cache_alloc(anon_cache *cache)
{
    /* The 2 MiB alignment puts every 64-byte entry in one cache line, and
     * huge pages make random lookups miss the TLB less. */
    cache->slots = fv_table_calloc(ANON_CACHE_TABLE_BYTES);
    if (cache->slots == NULL) {
        cache->disabled = true;
        return;
    }
    /* sodium_mlock also excludes the pages from core dumps; a failing
     * lock (low RLIMIT_MEMLOCK) only means the table may reach swap. */
    (void)sodium_mlock(cache->slots, ANON_CACHE_TABLE_BYTES);
    randombytes_buf(cache->key, sizeof cache->key);
}

static size_t anon_cache_home(const anon_cache *cache, anon_type type, const uint8_t *id,
                              size_t len)
{
    uint8_t msg[1 + ANON_CACHE_ID_MAX];
    uint8_t hash[crypto_shorthash_BYTES];
    uint64_t h = 0;

    msg[0] = (uint8_t)type;
    memcpy(msg + 1, id, len);
    crypto_shorthash(hash, msg, 1 + len, cache->key);
    for (size_t i = 0; i < sizeof hash; i++)
        h = (h << 8) | hash[i];
    return (size_t)(h & (ANON_CACHE_SLOTS - 1));
}

/* The home slot of (TYPE, ID, LEN): from the prefetch memo when
 * anon_cache_prefetch hashed it under the current key, else hashed. */
static size_t anon_cache_home_of(const anon_cache *cache, anon_type type, const uint8_t *id,
                                 size_t len)
{
    if (len <= ANON_CACHE_MEMO_ID_MAX) {
        for (unsigned i = 0; i < ANON_CACHE_MEMO_SIZE; i++) {
            const anon_cache_memo *m = &cache->memo[i];
            if (m->type == (uint8_t)type && m->len == len && memcmp(m->id, id, len) == 0)
                return m->home;
        }
    }
    return anon_cache_home(cache, type, id, len);
}

static bool anon_cache_usable(anon_cache *cache, size_t len)
{
    if (cache->disabled || len > ANON_CACHE_ID_MAX)
        return false;
    if (cache->slots == NULL)
        anon_cache_alloc(cache);
    return cache->slots != NULL;
}

static bool anon_cache_matches(const anon_cache_entry *e, anon_type type, const uint8_t *id,
                               size_t len)
{
    return e->type == (uint8_t)type && e->len == len && memcmp(e->id, id, len) == 0;
}

bool anon_cache_get(anon_cache *cache, anon_type type, const uint8_t *id, size_t len,
                    uint8_t out[FV_PSEUDONYM_BYTES])
{
    if (!anon_cache_usable(cache, len))
        return false;

    size_t home = anon_cache_home_of(cache, type, id, len);
    for (size_t i = 0; i < ANON_CACHE_PROBES; i++) {
        const anon_cache_entry *e = &cache->slots[(home + i) & (ANON_CACHE_SLOTS - 1)];
        if (e->type == 0)
            break;
        if (anon_cache_matches(e, type, id, len)) {
            memcpy(out, e->pseudonym, FV_PSEUDONYM_BYTES);
            cache->hits++;
            return true;
        }
    }
    cache->misses++;
    return false;
}

void anon_cache_prefetch(anon_cache *cache, anon_type type, const uint8_t *id, size_t len)
{
    if (len > ANON_CACHE_MEMO_ID_MAX || !anon_cache_usable(cache, len))
        return;

    size_t home = anon_cache_home(cache, type, id, len);
    anon_cache_memo *m = &cache->memo[cache->memo_next];
    cache->memo_next = (cache->memo_next + 1) % ANON_CACHE_MEMO_SIZE;
    m->type = (uint8_t)type;
    m->len = (uint8_t)len;
    memcpy(m->id, id, len);
    m->home = (uint32_t)home;

    /* A hit is usually in the home slot. The probe run may continue into
     * the next entry, but loading that too would add a second memory
     * load to every lookup to save one on a collision. */
    __builtin_prefetch(&cache->slots[home], 0, 3);
}

void anon_cache_put(anon_cache *cache, anon_type type, const uint8_t *id, size_t len,
                    const uint8_t pseudonym[FV_PSEUDONYM_BYTES])
{
    if (!anon_cache_usable(cache, len))
        return;

    size_t home = anon_cache_home_of(cache, type, id, len);
    anon_cache_entry *target = &cache->slots[home];
    for (size_t i = 0; i < ANON_CACHE_PROBES; i++) {
        anon_cache_entry *e = &cache->slots[(home + i) & (ANON_CACHE_SLOTS - 1)];
        if (e->type == 0 || anon_cache_matches(e, type, id, len)) {
            target = e;
            break;
        }
    }
    /* A lookup stops at the first empty slot, and slots are never
     * emptied except all at once, so every entry stays reachable. */
    target->type = (uint8_t)type;
    target->len = (uint8_t)len;
    memset(target->id, 0, sizeof target->id);
    memcpy(target->id, id, len);
    memcpy(target->pseudonym, pseudonym, FV_PSEUDONYM_BYTES);
}

void anon_cache_reset(anon_cache *cache)
{
    if (cache->slots != NULL)
        sodium_memzero(cache->slots, ANON_CACHE_TABLE_BYTES);
    /* The memo's homes belong to the old key. */
    sodium_memzero(cache->memo, sizeof cache->memo);
    randombytes_buf(cache->key, sizeof cache->key);
    cache->hits = 0;
    cache->misses = 0;
}

void anon_cache_free(anon_cache *cache)
{
    if (cache->slots != NULL) {
        /* sodium_munlock zeroes the memory before unlocking it. */
        sodium_munlock(cache->slots, ANON_CACHE_TABLE_BYTES);
        sodium_memzero(cache->slots, ANON_CACHE_TABLE_BYTES);
        free(cache->slots);
        cache->slots = NULL;
    }
    sodium_memzero(cache->memo, sizeof cache->memo);
    sodium_memzero(cache->key, sizeof cache->key);
}
