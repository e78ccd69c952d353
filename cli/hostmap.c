/*
 * hostmap.c: bounded address -> MAC and MAC -> host name tables. See
 * hostmap.h.
 */
#include "hostmap.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Open addressing at most half full, so a probe ends quickly. The hash
 * is keyed with a random per-map key, so hosts sending chosen addresses
 * or MACs cannot make the probes long. */
#define SLOTS (2u * FV_HOSTMAP_MAX)

typedef struct ip_slot {
    bool used;
    bool from_dhcp;
    bool has_group_mac;
    cap_ip addr;
    uint8_t mac[6];
    uint8_t group_mac[6]; /* see fv_hostmap_note_group_mac */
} ip_slot;

typedef struct name_slot {
    bool used;
    uint8_t mac[6];
    char name[FV_DHCP_HOSTNAME_MAX];
} name_slot;

struct fv_hostmap {
    unsigned char key[crypto_shorthash_KEYBYTES];
    ip_slot ips[SLOTS];
    name_slot names[SLOTS];
    size_t ip_count, name_count;
    /* See fv_hostmap_generation. Changed under the caller's lock, read
     * without it by worker threads (pipeline.c, worker_host_mode). */
    atomic_uint_fast64_t generation;
};

static size_t slot_of(const fv_hostmap *map, const void *data, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, data, len, map->key);
    memcpy(&v, h, sizeof v);
    return (size_t)(v % SLOTS);
}

int fv_hostmap_create(fv_hostmap **out)
{
    if (out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (sodium_init() < 0)
        return FV_ERR_NOMEM;
    fv_hostmap *map = calloc(1, sizeof *map);
    if (map == NULL)
        return FV_ERR_NOMEM;
    randombytes_buf(map->key, sizeof map->key);
    *out = map;
    return FV_OK;
}

void fv_hostmap_destroy(fv_hostmap **map)
{
    if (map == NULL || *map == NULL)
        return;
    sodium_memzero(*map, sizeof **map);
    free(*map);
    *map = NULL;
}

void fv_hostmap_clear(fv_hostmap *map)
{
    if (map == NULL)
        return;
    sodium_memzero(map->ips, sizeof map->ips);
    sodium_memzero(map->names, sizeof map->names);
    map->ip_count = map->name_count = 0;
    atomic_fetch_add_explicit(&map->generation, 1, memory_order_release);
}

static uint8_t ip_key_len(const cap_ip *addr)
{
    return addr->family == 4 ? 4 : 16;
}

static ip_slot *find_ip(const fv_hostmap *map, const cap_ip *addr)
{
    size_t len = ip_key_len(addr);
    size_t i = slot_of(map, addr->addr, len);
    while (map->ips[i].used) {
        const ip_slot *s = &map->ips[i];
        if (s->addr.family == addr->family && memcmp(s->addr.addr, addr->addr, len) == 0)
            return (ip_slot *)s;
        i = (i + 1) % SLOTS;
    }
    return NULL;
}

bool fv_hostmap_learn_mac(fv_hostmap *map, const cap_ip *addr, const uint8_t mac[6],
                          bool from_dhcp)
{
    if (map == NULL || addr == NULL || mac == NULL || (addr->family != 4 && addr->family != 6))
        return false;
    ip_slot *s = find_ip(map, addr);
    if (s != NULL) {
        if (!from_dhcp && s->from_dhcp)
            return false;
        bool changed = memcmp(s->mac, mac, 6) != 0;
        memcpy(s->mac, mac, 6);
        s->from_dhcp = s->from_dhcp || from_dhcp;
        return changed;
    }
    if (map->ip_count >= FV_HOSTMAP_MAX) {
        sodium_memzero(map->ips, sizeof map->ips);
        map->ip_count = 0;
        atomic_fetch_add_explicit(&map->generation, 1, memory_order_release);
    }
    size_t len = ip_key_len(addr);
    size_t i = slot_of(map, addr->addr, len);
    while (map->ips[i].used)
        i = (i + 1) % SLOTS;
    s = &map->ips[i];
    s->used = true;
    s->from_dhcp = from_dhcp;
    s->has_group_mac = false;
    s->addr.family = addr->family;
    memcpy(s->addr.addr, addr->addr, len);
    memcpy(s->mac, mac, 6);
    map->ip_count++;
    return true;
}

static name_slot *find_name(const fv_hostmap *map, const uint8_t mac[6])
{
    size_t i = slot_of(map, mac, 6);
    while (map->names[i].used) {
        if (memcmp(map->names[i].mac, mac, 6) == 0)
            return (name_slot *)&map->names[i];
        i = (i + 1) % SLOTS;
    }
    return NULL;
}

void fv_hostmap_learn_name(fv_hostmap *map, const uint8_t mac[6], const char *name)
{
    if (map == NULL || mac == NULL || name == NULL || name[0] == '\0')
        return;
    name_slot *s = find_name(map, mac);
    if (s == NULL) {
        if (map->name_count >= FV_HOSTMAP_MAX) {
            sodium_memzero(map->names, sizeof map->names);
            map->name_count = 0;
            atomic_fetch_add_explicit(&map->generation, 1, memory_order_release);
        }
        size_t i = slot_of(map, mac, 6);
        while (map->names[i].used)
            i = (i + 1) % SLOTS;
        s = &map->names[i];
        s->used = true;
        memcpy(s->mac, mac, 6);
        map->name_count++;
    }
    size_t n = strnlen(name, sizeof s->name - 1);
    if (strncmp(s->name, name, n) == 0 && s->name[n] == '\0')
        return;
    memcpy(s->name, name, n);
    s->name[n] = '\0';
    atomic_fetch_add_explicit(&map->generation, 1, memory_order_release);
}

bool fv_hostmap_note_group_mac(fv_hostmap *map, const cap_ip *addr, const uint8_t mac[6])
{
    if (map == NULL || addr == NULL || mac == NULL)
        return false;
    ip_slot *s = find_ip(map, addr);
    if (s == NULL || (s->has_group_mac && memcmp(s->group_mac, mac, 6) == 0))
        return false;
    memcpy(s->group_mac, mac, 6);
    s->has_group_mac = true;
    return true;
}

const uint8_t *fv_hostmap_group_mac_of(const fv_hostmap *map, const cap_ip *addr)
{
    if (map == NULL || addr == NULL)
        return NULL;
    const ip_slot *s = find_ip(map, addr);
    return s != NULL && s->has_group_mac ? s->group_mac : NULL;
}

const uint8_t *fv_hostmap_mac_of(const fv_hostmap *map, const cap_ip *addr)
{
    if (map == NULL || addr == NULL)
        return NULL;
    const ip_slot *s = find_ip(map, addr);
    return s != NULL ? s->mac : NULL;
}

const char *fv_hostmap_name_of(const fv_hostmap *map, const uint8_t mac[6])
{
    if (map == NULL || mac == NULL)
        return NULL;
    const name_slot *s = find_name(map, mac);
    return s != NULL ? s->name : NULL;
}

uint64_t fv_hostmap_generation(const fv_hostmap *map)
{
    return map != NULL ? atomic_load_explicit(&map->generation, memory_order_acquire) : 0;
}
