/*
 * seenhosts.c: open-addressing table from raw address to pseudonym. See
 * seenhosts.h.
 */
#include "seenhosts.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Twice the bound, a power of two, so the table is at most half full
 * and linear probing stays short. */
#define SEENHOSTS_SLOTS (2u * FV_SEENHOSTS_MAX)

typedef struct seen_entry {
    uint8_t used;
    cap_ip addr;                              /* raw address, family 4 or 6 */
    uint8_t kind;                             /* fv_ep_kind of the stored endpoint */
    uint8_t pseudonym[FV_PSEUDONYM_BYTES];
} seen_entry;

struct fv_seenhosts {
    seen_entry *slots;  /* SEENHOSTS_SLOTS entries */
    size_t count;
    uint64_t not_noted;
    /* Random SipHash key: the addresses come from the network, so an
     * outsider must not be able to pick ones that collide. */
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

int fv_seenhosts_create(fv_seenhosts **out)
{
    int rc = FV_OK;
    fv_seenhosts *m = NULL;

    *out = NULL;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    /* Huge pages: the slots are read at random, once per flow end. */
    m->slots = fv_table_calloc(SEENHOSTS_SLOTS * sizeof *m->slots);
    if (m->slots == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    crypto_shorthash_keygen(m->hash_key);
    *out = m;
    m = NULL;
out:
    fv_seenhosts_destroy(&m);
    return rc;
}

void fv_seenhosts_destroy(fv_seenhosts **map)
{
    if (map == NULL || *map == NULL)
        return;
    fv_seenhosts *m = *map;
    if (m->slots != NULL) {
        sodium_memzero(m->slots, SEENHOSTS_SLOTS * sizeof *m->slots);
        free(m->slots);
    }
    sodium_memzero(m, sizeof *m);
    free(m);
    *map = NULL;
}

void fv_seenhosts_clear(fv_seenhosts *map)
{
    if (map == NULL)
        return;
    sodium_memzero(map->slots, SEENHOSTS_SLOTS * sizeof *map->slots);
    map->count = 0;
    map->not_noted = 0;
}

static size_t slot_of(const fv_seenhosts *m, const cap_ip *addr)
{
    uint8_t text[17];
    uint8_t digest[crypto_shorthash_BYTES];
    text[0] = addr->family;
    memcpy(text + 1, addr->addr, 16);
    crypto_shorthash(digest, text, sizeof text, m->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];
    return (size_t)(h & (SEENHOSTS_SLOTS - 1));
}

/* The table key of ADDR: only the used bytes count, because capture
 * leaves the tail of an IPv4 address zero but the key must not depend
 * on that. */
static void make_key(const cap_ip *addr, cap_ip *key)
{
    memset(key, 0, sizeof *key);
    key->family = addr->family;
    memcpy(key->addr, addr->addr, addr->family == 4 ? 4 : 16);
}

void fv_seenhosts_prefetch(const fv_seenhosts *map, const cap_ip *addr)
{
    if (map == NULL || addr == NULL)
        return;
    cap_ip key;
    make_key(addr, &key);
    __builtin_prefetch(&map->slots[slot_of(map, &key)]);
}

void fv_seenhosts_note(fv_seenhosts *map, const cap_ip *addr, const fv_endpoint *ep)
{
    if (map == NULL || addr == NULL || ep == NULL)
        return;

    cap_ip key;
    make_key(addr, &key);

    size_t i = slot_of(map, &key);
    while (map->slots[i].used) {
        if (memcmp(&map->slots[i].addr, &key, sizeof key) == 0)
            break;
        i = (i + 1) & (SEENHOSTS_SLOTS - 1);
    }
    seen_entry *e = &map->slots[i];
    if (!e->used) {
        if (map->count >= FV_SEENHOSTS_MAX) {
            map->not_noted++;
            return;
        }
        e->used = 1;
        e->addr = key;
        map->count++;
    }
    e->kind = ep->kind;
    memcpy(e->pseudonym, ep->addr, sizeof e->pseudonym);
}

void fv_seenhosts_foreach(const fv_seenhosts *map, fv_seenhosts_fn fn, void *ctx)
{
    if (map == NULL || fn == NULL)
        return;
    for (size_t i = 0; i < SEENHOSTS_SLOTS; i++) {
        const seen_entry *e = &map->slots[i];
        if (e->used)
            fn(ctx, &e->addr, e->kind, e->pseudonym);
    }
}

size_t fv_seenhosts_count(const fv_seenhosts *map)
{
    return map == NULL ? 0 : map->count;
}

uint64_t fv_seenhosts_not_noted(const fv_seenhosts *map)
{
    return map == NULL ? 0 : map->not_noted;
}
