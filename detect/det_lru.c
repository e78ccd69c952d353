/*
 * det_lru.c: bounded LRU hash table and key-rotation map (det_lru.h).
 *
 * Chained buckets, bucket count the power of two at or above twice the
 * maximum entry count. Each entry is one allocation: node header, key,
 * value (value aligned to 16 bytes).
 */
#include "det_lru.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct det_lru_node {
    struct det_lru_node *hash_next;
    struct det_lru_node *newer, *older;
    uint64_t hash;
    /* key bytes, padding, value bytes follow */
} det_lru_node;

struct det_lru {
    size_t key_bytes, value_bytes, value_offset;
    size_t count, max_count;
    size_t bucket_mask;
    det_lru_node **buckets;
    det_lru_node *newest, *oldest;
    det_lru_free_fn free_value;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

struct det_rekey_pair {
    uint8_t kind;
    uint8_t old_pseudonym[FV_PSEUDONYM_BYTES];
    uint8_t new_pseudonym[FV_PSEUDONYM_BYTES];
};

static uint8_t *node_key(det_lru_node *n)
{
    return (uint8_t *)(n + 1);
}

static void *node_value(const det_lru *t, det_lru_node *n)
{
    return (uint8_t *)n + t->value_offset;
}

det_lru *det_lru_create(size_t key_bytes, size_t value_bytes, size_t max_count,
                        det_lru_free_fn free_value)
{
    if (key_bytes == 0 || max_count == 0 || sodium_init() < 0)
        return NULL;
    det_lru *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    size_t buckets = 1;
    while (buckets < max_count * 2)
        buckets <<= 1;
    t->buckets = calloc(buckets, sizeof *t->buckets);  // NOLINT(bugprone-sizeof-expression): array of node pointers
    if (t->buckets == NULL) {
        free(t);
        return NULL;
    }
    t->bucket_mask = buckets - 1;
    t->key_bytes = key_bytes;
    t->value_bytes = value_bytes;
    t->value_offset = (sizeof(det_lru_node) + key_bytes + 15u) & ~(size_t)15u;
    t->max_count = max_count;
    t->free_value = free_value;
    randombytes_buf(t->hash_key, sizeof t->hash_key);
    return t;
}

static uint64_t key_hash(const det_lru *t, const void *key)
{
    uint8_t digest[crypto_shorthash_BYTES];
    crypto_shorthash(digest, key, t->key_bytes, t->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];
    return h;
}

static void lru_unlink(det_lru *t, det_lru_node *n)
{
    if (n->newer != NULL)
        n->newer->older = n->older;
    else
        t->newest = n->older;
    if (n->older != NULL)
        n->older->newer = n->newer;
    else
        t->oldest = n->newer;
    n->newer = n->older = NULL;
}

static void lru_push(det_lru *t, det_lru_node *n)
{
    n->newer = NULL;
    n->older = t->newest;
    if (t->newest != NULL)
        t->newest->newer = n;
    t->newest = n;
    if (t->oldest == NULL)
        t->oldest = n;
}

static void bucket_unlink(det_lru *t, det_lru_node *n)
{
    det_lru_node **link = &t->buckets[n->hash & t->bucket_mask];
    while (*link != NULL && *link != n)
        link = &(*link)->hash_next;
    if (*link == n)
        *link = n->hash_next;
    n->hash_next = NULL;
}

static void node_free(det_lru *t, det_lru_node *n)
{
    if (t->free_value != NULL)
        t->free_value(node_value(t, n));
    free(n);
}

static void remove_node(det_lru *t, det_lru_node *n)
{
    bucket_unlink(t, n);
    lru_unlink(t, n);
    t->count--;
    node_free(t, n);
}

void det_lru_destroy(det_lru **table)
{
    if (table == NULL || *table == NULL)
        return;
    det_lru *t = *table;
    det_lru_node *n = t->newest;
    while (n != NULL) {
        det_lru_node *next = n->older;
        node_free(t, n);
        n = next;
    }
    free(t->buckets);
    free(t);
    *table = NULL;
}

static det_lru_node *find_node(det_lru *t, const void *key, uint64_t hash)
{
    for (det_lru_node *n = t->buckets[hash & t->bucket_mask]; n != NULL; n = n->hash_next) {
        if (n->hash == hash && memcmp(node_key(n), key, t->key_bytes) == 0)
            return n;
    }
    return NULL;
}

void *det_lru_find(det_lru *table, const void *key)
{
    det_lru_node *n = find_node(table, key, key_hash(table, key));
    if (n == NULL)
        return NULL;
    lru_unlink(table, n);
    lru_push(table, n);
    return node_value(table, n);
}

/* Link N (key set) as the newest entry, evicting the oldest when full. */
static void link_node(det_lru *t, det_lru_node *n)
{
    if (t->count >= t->max_count && t->oldest != NULL)
        remove_node(t, t->oldest);
    det_lru_node **head = &t->buckets[n->hash & t->bucket_mask];
    n->hash_next = *head;
    *head = n;
    lru_push(t, n);
    t->count++;
}

void *det_lru_insert(det_lru *table, const void *key, bool *created)
{
    uint64_t hash = key_hash(table, key);
    det_lru_node *n = find_node(table, key, hash);
    *created = false;
    if (n != NULL) {
        lru_unlink(table, n);
        lru_push(table, n);
        return node_value(table, n);
    }
    n = calloc(1, table->value_offset + table->value_bytes);
    if (n == NULL)
        return NULL;
    memcpy(node_key(n), key, table->key_bytes);
    n->hash = hash;
    link_node(table, n);
    *created = true;
    return node_value(table, n);
}

size_t det_lru_count(const det_lru *table)
{
    return table->count;
}

void det_lru_foreach(det_lru *table, void (*fn)(void *ctx, const void *key, void *value), void *ctx)
{
    for (det_lru_node *n = table->newest; n != NULL; n = n->older)
        fn(ctx, node_key(n), node_value(table, n));
}

size_t det_lru_rekey(det_lru *t, bool (*fn)(void *ctx, void *key, void *value), void *ctx)
{
    /* Detach every node, oldest first, then re-insert the kept ones. */
    det_lru_node *n = t->oldest;
    memset(t->buckets, 0, (t->bucket_mask + 1) * sizeof *t->buckets);  // NOLINT(bugprone-sizeof-expression): array of node pointers
    t->newest = t->oldest = NULL;
    t->count = 0;

    size_t dropped = 0;
    while (n != NULL) {
        det_lru_node *next = n->newer;
        n->newer = n->older = n->hash_next = NULL;
        if (!fn(ctx, node_key(n), node_value(t, n))) {
            node_free(t, n);
            dropped++;
            n = next;
            continue;
        }
        n->hash = key_hash(t, node_key(n));
        det_lru_node *same = find_node(t, node_key(n), n->hash);
        if (same != NULL) {
            remove_node(t, same);
            dropped++;
        }
        link_node(t, n);
        n = next;
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
