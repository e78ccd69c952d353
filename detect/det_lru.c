/*
 * det_lru.c: bounded LRU hash table and key-rotation map (det_lru.h).
 *
 * Entries live in one slab of MAX_COUNT fixed-size slots (key, padding,
 * value aligned to 16 bytes), allocated at create time. A slot's LRU
 * links and hash sit in a separate array of 12-byte records, so moving an
 * entry to the front touches its neighbours' links without reading their
 * keys or values. Lookups go through an open-addressing index with linear
 * probing whose words contain the 32-bit hash and slot + 1, so a probe reads
 * an entry's key only when the hashes match. The index is the only thing
 * an insert allocates: it doubles from 64 words while entries arrive, at
 * most log2(MAX_COUNT) times over the table's life.
 */
#include "det_lru.h"
#include "det_index.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define LRU_NIL UINT32_MAX
/* Maximum key length the hash takes: 16 32-bit words. Detector keys are under 40 bytes. */
#define LRU_MAX_KEY_BYTES 64u
/* Index words a table starts with (512 bytes): a power of two. The index
 * doubles as entries arrive, so a table far below its bound keeps its
 * index in cache. */
#define LRU_INDEX_MIN 64u
/* Largest index size in words (64 KB) for which det_lru_prefetch also
 * reads the index word to prefetch the entry. */
#define LRU_INDEX_CACHED 8192u

typedef struct lru_link {
    uint32_t newer, older; /* slot numbers, LRU_NIL at the ends; older links free slots */
    uint32_t hash;         /* of the slot's key */
} lru_link;

struct det_lru {
    size_t key_bytes, value_bytes, value_offset, slot_bytes;
    size_t count, max_count;
    uint32_t slots_used; /* slots handed out at least once */
    uint32_t free_head;  /* released slots */
    uint8_t *slab;       /* max_count slots of slot_bytes */
    lru_link *links;     /* max_count records */
    uint64_t *index;     /* (hash << 32) | (slot + 1); 0 is empty */
    size_t index_mask;
    size_t index_limit;  /* index size for max_count entries */
    uint32_t newest, oldest;
    det_lru_free_fn free_value;
    /* Multilinear hash key: one word more than the 32-bit words of a key. */
    uint64_t hash_key[1 + LRU_MAX_KEY_BYTES / 4];
};

struct det_rekey_pair {
    uint8_t kind;
    uint8_t old_pseudonym[FV_PSEUDONYM_BYTES];
    uint8_t new_pseudonym[FV_PSEUDONYM_BYTES];
};

static uint8_t *slot_key(const det_lru *t, uint32_t slot)
{
    return t->slab + (size_t)slot * t->slot_bytes;
}

static void *slot_value(const det_lru *t, uint32_t slot)
{
    return slot_key(t, slot) + t->value_offset;
}

det_lru *det_lru_create(size_t key_bytes, size_t value_bytes, size_t max_count,
                        det_lru_free_fn free_value)
{
    if (key_bytes == 0 || key_bytes > LRU_MAX_KEY_BYTES || max_count == 0 ||
        max_count >= LRU_NIL / 2 || sodium_init() < 0)
        return NULL;
    det_lru *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    /* An index at most half full keeps linear probes short. */
    size_t index_limit = LRU_INDEX_MIN;
    while (index_limit < max_count * 2)
        index_limit <<= 1;
    size_t index_size = LRU_INDEX_MIN;
    t->key_bytes = key_bytes;
    t->value_bytes = value_bytes;
    t->value_offset = (key_bytes + 15u) & ~(size_t)15u;
    t->slot_bytes = (t->value_offset + value_bytes + 15u) & ~(size_t)15u;
    /* calloc of a large block maps zero pages, so untouched slots cost
     * address space only; malloc aligns blocks to 16 bytes. */
    t->slab = calloc(max_count, t->slot_bytes);
    t->links = calloc(max_count, sizeof *t->links);
    t->index = calloc(index_size, sizeof *t->index);
    if (t->slab == NULL || t->links == NULL || t->index == NULL) {
        free(t->slab);
        free(t->links);
        free(t->index);
        free(t);
        return NULL;
    }
    t->index_mask = index_size - 1;
    t->index_limit = index_limit;
    t->max_count = max_count;
    t->free_value = free_value;
    t->newest = t->oldest = t->free_head = LRU_NIL;
    randombytes_buf(t->hash_key, sizeof t->hash_key);
    return t;
}

/*
 * Multilinear hash of the key's 32-bit words (the last one zero-padded):
 * high 32 bits of k[0] + sum of k[i + 1] * word[i] modulo 2^64, strongly
 * universal over random 64-bit k, like det_util.c's table hash. Keys an
 * outsider picks without knowing k collide with probability 2^-32.
 */
static uint32_t key_hash(const det_lru *t, const void *key)
{
    const uint8_t *bytes = key;
    size_t words = t->key_bytes / 4;
    uint64_t h = t->hash_key[0];
    for (size_t i = 0; i < words; i++) {
        uint32_t w;
        memcpy(&w, bytes + 4 * i, sizeof w);
        h += t->hash_key[i + 1] * (uint64_t)w;
    }
    size_t rest = t->key_bytes % 4;
    if (rest != 0) {
        uint32_t w = 0;
        memcpy(&w, bytes + 4 * words, rest);
        h += t->hash_key[words + 1] * (uint64_t)w;
    }
    return (uint32_t)(h >> 32);
}

static void lru_unlink(det_lru *t, uint32_t slot)
{
    lru_link *l = &t->links[slot];
    if (l->newer != LRU_NIL)
        t->links[l->newer].older = l->older;
    else
        t->newest = l->older;
    if (l->older != LRU_NIL)
        t->links[l->older].newer = l->newer;
    else
        t->oldest = l->newer;
    l->newer = l->older = LRU_NIL;
}

static void lru_push(det_lru *t, uint32_t slot)
{
    lru_link *l = &t->links[slot];
    l->newer = LRU_NIL;
    l->older = t->newest;
    if (t->newest != LRU_NIL)
        t->links[t->newest].newer = slot;
    t->newest = slot;
    if (t->oldest == LRU_NIL)
        t->oldest = slot;
}

static void index_add(det_lru *t, uint32_t slot)
{
    det_index_add(t->index, t->index_mask, det_index_word(t->links[slot].hash, slot));
}

static void index_delete(det_lru *t, uint32_t slot)
{
    det_index_delete(t->index, t->index_mask, det_index_word(t->links[slot].hash, slot));
}

static bool index_reserve(det_lru *t)
{
    return det_index_reserve(&t->index, &t->index_mask, t->count, t->index_limit);
}

static void slot_release(det_lru *t, uint32_t slot)
{
    if (t->free_value != NULL)
        t->free_value(slot_value(t, slot));
    t->links[slot].older = t->free_head;
    t->free_head = slot;
}

static void remove_slot(det_lru *t, uint32_t slot)
{
    index_delete(t, slot);
    lru_unlink(t, slot);
    t->count--;
    slot_release(t, slot);
}

void det_lru_destroy(det_lru **table)
{
    if (table == NULL || *table == NULL)
        return;
    det_lru *t = *table;
    if (t->free_value != NULL) {
        for (uint32_t s = t->newest; s != LRU_NIL; s = t->links[s].older)
            t->free_value(slot_value(t, s));
    }
    free(t->slab);
    free(t->links);
    free(t->index);
    sodium_memzero(t->hash_key, sizeof t->hash_key);
    free(t);
    *table = NULL;
}

/* Compare two keys of KEY_BYTES with whole-word loads that the compiler
 * inlines, in place of a memcmp call for these short keys. */
static bool key_equal(const uint8_t *a, const uint8_t *b, size_t key_bytes)
{
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= key_bytes; i += 8) {
        uint64_t wa, wb;
        memcpy(&wa, a + i, sizeof wa);
        memcpy(&wb, b + i, sizeof wb);
        diff |= wa ^ wb;
    }
    if (i + 4 <= key_bytes) {
        uint32_t wa, wb;
        memcpy(&wa, a + i, sizeof wa);
        memcpy(&wb, b + i, sizeof wb);
        diff |= wa ^ wb;
        i += 4;
    }
    for (; i < key_bytes; i++)
        diff |= (uint64_t)(a[i] ^ b[i]);
    return diff == 0;
}

static uint32_t find_slot(const det_lru *t, const void *key, uint32_t hash)
{
    size_t i = hash & t->index_mask;
    for (;;) {
        uint64_t w = t->index[i];
        if (w == 0)
            return LRU_NIL;
        if ((uint32_t)(w >> 32) == hash) {
            uint32_t slot = (uint32_t)w - 1u;
            /* A found entry moves to the LRU front next, which reads its
             * links, so load them while the key is compared. */
            __builtin_prefetch(&t->links[slot]);
            if (key_equal(slot_key(t, slot), key, t->key_bytes))
                return slot;
        }
        i = (i + 1) & t->index_mask;
    }
}

void det_lru_prefetch(const det_lru *table, const void *key)
{
    uint32_t hash = key_hash(table, key);
    const uint64_t *home = &table->index[hash & table->index_mask];
    __builtin_prefetch(home);
    /* A small index is likely cached already, so reading its word costs
     * little and gives the key to prefetch as well. */
    if (table->index_mask < LRU_INDEX_CACHED && (uint32_t)(*home >> 32) == hash && *home != 0) {
        uint32_t slot = (uint32_t)*home - 1u;
        __builtin_prefetch(slot_key(table, slot));
        __builtin_prefetch(&table->links[slot]);
    }
    /* When the table is full, an insert of a new key first evicts the
     * oldest entry, which reads its links and its index word. The links
     * were prefetched by the previous eviction, so the hash is likely
     * cached. */
    if (table->count >= table->max_count && table->oldest != LRU_NIL) {
        uint32_t oldest_hash = table->links[table->oldest].hash;
        __builtin_prefetch(&table->index[oldest_hash & table->index_mask]);
    }
}

static void touch(det_lru *t, uint32_t slot)
{
    if (t->newest != slot) {
        lru_unlink(t, slot);
        lru_push(t, slot);
    }
}

void *det_lru_find(det_lru *table, const void *key)
{
    uint32_t slot = find_slot(table, key, key_hash(table, key));
    if (slot == LRU_NIL)
        return NULL;
    touch(table, slot);
    return slot_value(table, slot);
}

/* Link SLOT (key and hash set) as the newest entry. */
static void link_slot(det_lru *t, uint32_t slot)
{
    index_add(t, slot);
    lru_push(t, slot);
    t->count++;
}

/* Take a free slot, evicting the least recently used entry when full. */
static uint32_t slot_take(det_lru *t)
{
    if (t->count >= t->max_count && t->oldest != LRU_NIL) {
        remove_slot(t, t->oldest);
        /* The next eviction's links, for det_lru_prefetch to read. */
        if (t->oldest != LRU_NIL)
            __builtin_prefetch(&t->links[t->oldest]);
    }
    /* Without a larger index, keep one word empty so probes end. */
    if (!index_reserve(t) && t->count + 2 > t->index_mask + 1 && t->oldest != LRU_NIL)
        remove_slot(t, t->oldest);
    uint32_t slot;
    if (t->free_head != LRU_NIL) {
        slot = t->free_head;
        t->free_head = t->links[slot].older;
        memset(slot_key(t, slot), 0, t->slot_bytes);
    } else {
        /* Never used (count < max_count here): zero from calloc, but
         * written first for the reason in det_table_alloc. */
        slot = t->slots_used++;
        memset(slot_key(t, slot), 0, t->slot_bytes);
    }
    t->links[slot].newer = t->links[slot].older = LRU_NIL;
    return slot;
}

void *det_lru_insert(det_lru *table, const void *key, bool *created)
{
    uint32_t hash = key_hash(table, key);
    uint32_t slot = find_slot(table, key, hash);
    *created = false;
    if (slot != LRU_NIL) {
        touch(table, slot);
        return slot_value(table, slot);
    }
    slot = slot_take(table);
    memcpy(slot_key(table, slot), key, table->key_bytes);
    table->links[slot].hash = hash;
    link_slot(table, slot);
    *created = true;
    return slot_value(table, slot);
}

size_t det_lru_count(const det_lru *table)
{
    return table->count;
}

void det_lru_foreach(det_lru *table, void (*fn)(void *ctx, const void *key, void *value), void *ctx)
{
    for (uint32_t s = table->newest; s != LRU_NIL; s = table->links[s].older)
        fn(ctx, slot_key(table, s), slot_value(table, s));
}

size_t det_lru_rekey(det_lru *t, bool (*fn)(void *ctx, void *key, void *value), void *ctx)
{
    /* Detach every entry, then walk the old list oldest first and
     * re-insert the kept ones. Re-linking only changes links of entries
     * already walked, so each step reads NEXT before it does. */
    uint32_t s = t->oldest;
    memset(t->index, 0, (t->index_mask + 1) * sizeof *t->index);
    t->newest = t->oldest = LRU_NIL;
    t->count = 0;

    size_t dropped = 0;
    while (s != LRU_NIL) {
        uint32_t next = t->links[s].newer;
        t->links[s].newer = t->links[s].older = LRU_NIL;
        if (!fn(ctx, slot_key(t, s), slot_value(t, s))) {
            slot_release(t, s);
            dropped++;
            s = next;
            continue;
        }
        uint32_t hash = key_hash(t, slot_key(t, s));
        uint32_t same = find_slot(t, slot_key(t, s), hash);
        if (same != LRU_NIL) {
            remove_slot(t, same);
            dropped++;
        }
        t->links[s].hash = hash;
        link_slot(t, s);
        s = next;
    }
    return dropped;
}

void det_host_key_set(det_host_key *key, const fv_endpoint *ep)
{
    key->kind = ep->kind;
    memcpy(key->addr, ep->addr, sizeof key->addr);
}

bool det_kind_is_keyed(uint8_t kind)
{
    return kind == FV_EP_PSEUDO_IPV4 || kind == FV_EP_PSEUDO_IPV6 || kind == FV_EP_PREFIX_IPV4 ||
           kind == FV_EP_PREFIX_IPV6;
}

void det_rekey_map_begin(det_rekey_map *map)
{
    det_rekey_map_end(map);
    map->active = true;
}

int det_rekey_map_add(det_rekey_map *map, const uint8_t *old_pseudonym,
                      const uint8_t *new_pseudonym, uint8_t kind)
{
    if (map->count == map->capacity) {
        size_t capacity = map->capacity == 0 ? 64 : map->capacity * 2;
        struct det_rekey_pair *pairs = calloc(capacity, sizeof *pairs);
        if (pairs == NULL)
            return FV_ERR_NOMEM;
        if (map->count > 0) {
            memcpy(pairs, map->pairs, map->count * sizeof *pairs);
            sodium_memzero(map->pairs, map->count * sizeof *pairs);
        }
        free(map->pairs);
        map->pairs = pairs;
        map->capacity = capacity;
    }
    map->sorted = false;
    struct det_rekey_pair *p = &map->pairs[map->count++];
    p->kind = kind;
    memcpy(p->old_pseudonym, old_pseudonym, FV_PSEUDONYM_BYTES);
    memcpy(p->new_pseudonym, new_pseudonym, FV_PSEUDONYM_BYTES);
    return FV_OK;
}

void det_rekey_map_end(det_rekey_map *map)
{
    if (map->pairs != NULL) {
        sodium_memzero(map->pairs, map->capacity * sizeof *map->pairs);
        free(map->pairs);
    }
    map->pairs = NULL;
    map->count = map->capacity = 0;
    map->active = false;
}

static int pair_compare(const void *a, const void *b)
{
    const struct det_rekey_pair *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return memcmp(x->old_pseudonym, y->old_pseudonym, FV_PSEUDONYM_BYTES);
}

bool det_rekey_map_apply(det_rekey_map *map, bool drop_unmapped, uint8_t kind, uint8_t addr[16])
{
    if (!det_kind_is_keyed(kind))
        return true;
    if (!map->sorted && map->count > 1)
        qsort(map->pairs, map->count, sizeof *map->pairs, pair_compare);
    map->sorted = true;

    struct det_rekey_pair probe;
    probe.kind = kind;
    memcpy(probe.old_pseudonym, addr, FV_PSEUDONYM_BYTES);
    const struct det_rekey_pair *hit =
        map->count > 0 ? bsearch(&probe, map->pairs, map->count, sizeof *map->pairs, pair_compare)
                       : NULL;
    sodium_memzero(&probe, sizeof probe);
    if (hit != NULL) {
        memcpy(addr, hit->new_pseudonym, FV_PSEUDONYM_BYTES);
        return true;
    }
    return !drop_unmapped;
}
