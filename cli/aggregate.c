/*
 * aggregate.c: hourly and daily per-zone counts. See aggregate.h.
 */
#include "aggregate.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_ENTRIES 65536u
/* Hash chains, a power of two. As many as DEFAULT_MAX_ENTRIES, so that
 * chains stay about one entry long up to the early flush: with 4096, a
 * capture with tens of thousands of peers spent 8% of ingest time
 * walking chains (bench/peers.sh, perf). */
#define TABLE_SLOTS 65536u
#define HOST_SET_MIN 16u            /* first capacity of a host set */
/* Host ids kept inside the entry before a host set is allocated. Many
 * keys count only a few hosts (a SYN flood: one per key), and reading
 * them from the entry saves a cache miss and an allocation. */
#define HOSTS_INLINE 4u
/* Entries are carved from blocks of this many and recycled through a
 * free list, instead of one calloc and free per key. */
#define ENTRY_BLOCK 256u
/* Chains ahead of the one being emitted whose first entry is prefetched. */
#define EMIT_PREFETCH_AHEAD 8u

/* Open-addressing set of host ids; capacity is a power of two and at
 * most twice FV_AGGREGATE_HOSTS_MAX, so it is never more than half full.
 * An all-zero slot is empty, so a probe reads one array only. The
 * all-zero id itself is kept in has_zero_id. */
typedef struct host_set {
    uint8_t (*ids)[FV_PSEUDONYM_BYTES];
    size_t capacity;
    bool has_zero_id;
} host_set;

typedef struct agg_entry {
    struct agg_entry *next;         /* hash chain, or the free list */
    uint64_t hash;
    fv_aggregate_record rec;
    /* The first HOSTS_INLINE host ids while hosts.capacity is 0; after
     * that every id is in hosts. */
    uint8_t hosts_inline[HOSTS_INLINE][FV_PSEUDONYM_BYTES];
    host_set hosts;
} agg_entry;

/* A block of entries, chained for fv_aggregator_destroy. */
typedef struct agg_block {
    struct agg_block *next;
    agg_entry entries[ENTRY_BLOCK];
} agg_block;

struct fv_aggregator {
    uint64_t close_delay_us;
    size_t max_entries;
    fv_aggregate_emit_fn emit;
    void *emit_ctx;
    agg_entry *slots[TABLE_SLOTS];
    uint64_t now_us;                /* largest last_us added */
    uint64_t next_close_us;         /* earliest time a bucket closes, UINT64_MAX if none */
    uint64_t last_emitted_end_us;   /* latest end of an emitted bucket */
    fv_aggregator_stats stats;
    agg_block *blocks;              /* every entry ever allocated */
    agg_entry *free_entries;        /* entries not in the table */
};

uint64_t fv_aggregate_bucket_start(uint64_t ts_us, uint32_t bucket_s)
{
    uint64_t width = (uint64_t)bucket_s * 1000000u;
    if (width == 0)
        return ts_us;
    return ts_us - ts_us % width;
}

static uint64_t bucket_close_us(const fv_aggregator *agg, const fv_aggregate_record *r)
{
    return r->bucket_start_us + (uint64_t)r->bucket_s * 1000000u + agg->close_delay_us;
}

/* FNV-1a, continued from H over N bytes. The table is local to one
 * process and its keys are not chosen by a remote party alone, so a
 * keyed hash is not needed here. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211u;
    }
    return h;
}

/* Fill the key fields of KEY from FLOW for one bucket size. */
static void make_key(const fv_aggregate_flow *flow, uint32_t bucket_s, fv_aggregate_record *key)
{
    memset(key, 0, sizeof *key);
    key->bucket_start_us = fv_aggregate_bucket_start(flow->first_us, bucket_s);
    key->bucket_s = bucket_s;
    /* NOTE: a zone label longer than the field is cut, like in fv_endpoint. */
    size_t zlen = strnlen(flow->zone, sizeof key->zone - 1);
    memcpy(key->zone, flow->zone, zlen);
    key->proto = flow->proto;
    /* An external peer is named by its address, truncated or prefix-
     * preserving address as stored; a pseudonym token is left out, like
     * an internal host. */
    if (flow->peer != NULL && flow->peer->kind != FV_EP_NONE &&
        flow->peer->kind != FV_EP_PSEUDO_IPV4 && flow->peer->kind != FV_EP_PSEUDO_IPV6) {
        key->peer.kind = flow->peer->kind;
        memcpy(key->peer.addr, flow->peer->addr, sizeof key->peer.addr);
        key->peer.prefix_len = flow->peer->prefix_len;
        memcpy(key->peer.zone, FV_ZONE_EXTERNAL, sizeof FV_ZONE_EXTERNAL);
    }
    key->dport = flow->dport;
}

static uint64_t key_hash(const fv_aggregate_record *k)
{
    uint64_t h = 14695981039346656037u;
    h = fnv1a(h, &k->bucket_start_us, sizeof k->bucket_start_us);
    h = fnv1a(h, &k->bucket_s, sizeof k->bucket_s);
    h = fnv1a(h, k->zone, strlen(k->zone));
    h = fnv1a(h, &k->proto, sizeof k->proto);
    h = fnv1a(h, &k->peer.kind, sizeof k->peer.kind);
    h = fnv1a(h, k->peer.addr, sizeof k->peer.addr);
    h = fnv1a(h, &k->dport, sizeof k->dport);
    return h;
}

static bool key_equal(const fv_aggregate_record *a, const fv_aggregate_record *b)
{
    return a->bucket_start_us == b->bucket_start_us && a->bucket_s == b->bucket_s &&
           a->proto == b->proto && a->dport == b->dport && a->peer.kind == b->peer.kind &&
           memcmp(a->peer.addr, b->peer.addr, sizeof a->peer.addr) == 0 &&
           a->peer.prefix_len == b->peer.prefix_len && strcmp(a->zone, b->zone) == 0;
}

static uint64_t id_hash(const uint8_t *id)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);   /* pseudonyms are keyed hashes: any 8 bytes spread well */
    return h;
}

static bool id_is_zero(const uint8_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, sizeof a);
    memcpy(&b, id + 8, sizeof b);
    return (a | b) == 0;
}

/* Insert ID into SET unless present. Return 1 if added, 0 if present,
 * -1 on allocation failure. The caller keeps the count at most
 * FV_AGGREGATE_HOSTS_MAX, so the set never grows past twice that. */
static int host_set_insert(host_set *set, size_t count, const uint8_t *id)
{
    if (id_is_zero(id)) {
        if (set->has_zero_id)
            return 0;
        set->has_zero_id = true;
        return 1;
    }
    if (2 * (count + 1) > set->capacity) {
        size_t capacity = set->capacity == 0 ? HOST_SET_MIN : set->capacity * 2;
        uint8_t (*ids)[FV_PSEUDONYM_BYTES] = calloc(capacity, sizeof *ids);
        if (ids == NULL)
            return -1;
        for (size_t i = 0; i < set->capacity; i++) {
            if (id_is_zero(set->ids[i]))
                continue;
            size_t j = id_hash(set->ids[i]) & (capacity - 1);
            while (!id_is_zero(ids[j]))
                j = (j + 1) & (capacity - 1);
            memcpy(ids[j], set->ids[i], FV_PSEUDONYM_BYTES);
        }
        free(set->ids);
        set->ids = ids;
        set->capacity = capacity;
    }

    size_t j = id_hash(id) & (set->capacity - 1);
    while (!id_is_zero(set->ids[j])) {
        if (memcmp(set->ids[j], id, FV_PSEUDONYM_BYTES) == 0)
            return 0;
        j = (j + 1) & (set->capacity - 1);
    }
    memcpy(set->ids[j], id, FV_PSEUDONYM_BYTES);
    return 1;
}

static bool host_set_contains(const host_set *set, const uint8_t *id)
{
    if (id_is_zero(id))
        return set->has_zero_id;
    if (set->capacity == 0)
        return false;
    size_t j = id_hash(id) & (set->capacity - 1);
    while (!id_is_zero(set->ids[j])) {
        if (memcmp(set->ids[j], id, FV_PSEUDONYM_BYTES) == 0)
            return true;
        j = (j + 1) & (set->capacity - 1);
    }
    return false;
}

/* Note ID among the distinct hosts of E, in the inline ids until they
 * are full and in the host set after. Return 1 if added, 0 if present,
 * -1 on allocation failure. The caller keeps the count at most
 * FV_AGGREGATE_HOSTS_MAX. */
static int entry_host_add(agg_entry *e, const uint8_t *id)
{
    uint32_t count = e->rec.hosts;
    if (e->hosts.capacity != 0)
        return host_set_contains(&e->hosts, id) ? 0 : host_set_insert(&e->hosts, count, id);

    uint32_t inline_count = count < HOSTS_INLINE ? count : HOSTS_INLINE;
    for (uint32_t i = 0; i < inline_count; i++)
        if (memcmp(e->hosts_inline[i], id, FV_PSEUDONYM_BYTES) == 0)
            return 0;
    if (count < HOSTS_INLINE) {
        memcpy(e->hosts_inline[count], id, FV_PSEUDONYM_BYTES);
        return 1;
    }
    /* The inline ids are full: move them to a host set, then add ID. On
     * a failed allocation the entry stays with its inline ids. */
    int added = 0;
    for (uint32_t i = 0; i < HOSTS_INLINE && added >= 0; i++)
        added = host_set_insert(&e->hosts, i, e->hosts_inline[i]);
    if (added >= 0)
        added = host_set_insert(&e->hosts, HOSTS_INLINE, id);
    if (added < 0) {
        free(e->hosts.ids);
        e->hosts = (host_set){0};
    }
    return added;
}

/* True if ID is among the distinct hosts noted in E. */
static bool entry_host_known(const agg_entry *e, const uint8_t *id)
{
    if (e->hosts.capacity != 0)
        return host_set_contains(&e->hosts, id);
    uint32_t inline_count = e->rec.hosts < HOSTS_INLINE ? e->rec.hosts : HOSTS_INLINE;
    for (uint32_t i = 0; i < inline_count; i++)
        if (memcmp(e->hosts_inline[i], id, FV_PSEUDONYM_BYTES) == 0)
            return true;
    return false;
}

/* Take a zeroed entry from the free list, allocating a block if empty. */
static agg_entry *entry_alloc(fv_aggregator *agg)
{
    if (agg->free_entries == NULL) {
        agg_block *b = malloc(sizeof *b);
        if (b == NULL)
            return NULL;
        b->next = agg->blocks;
        agg->blocks = b;
        for (size_t i = ENTRY_BLOCK; i > 0; i--) {
            b->entries[i - 1].next = agg->free_entries;
            agg->free_entries = &b->entries[i - 1];
        }
    }
    agg_entry *e = agg->free_entries;
    agg->free_entries = e->next;
    /* Freed entries are cold after an emit, so fetch the next one early. */
    if (agg->free_entries != NULL)
        __builtin_prefetch(agg->free_entries, 1);
    memset(e, 0, sizeof *e);
    return e;
}

/* Release the host set of E and put E on the free list. */
static void entry_free(fv_aggregator *agg, agg_entry *e)
{
    free(e->hosts.ids);
    e->hosts = (host_set){0};
    e->next = agg->free_entries;
    agg->free_entries = e;
}

/* Emit and free every entry for which CLOSE (or ALL) holds; recompute
 * the earliest close time of the rest. */
static void emit_closed(fv_aggregator *agg, uint64_t now_us, bool all)
{
    uint64_t next = UINT64_MAX;

    for (size_t s = 0; s < TABLE_SLOTS; s++) {
        /* Entries sit at random places in memory: ask for the one a few
         * chains ahead while this chain is walked. */
        if (s + EMIT_PREFETCH_AHEAD < TABLE_SLOTS && agg->slots[s + EMIT_PREFETCH_AHEAD] != NULL)
            __builtin_prefetch(agg->slots[s + EMIT_PREFETCH_AHEAD]);
        agg_entry **link = &agg->slots[s];
        while (*link != NULL) {
            agg_entry *e = *link;
            uint64_t close_us = bucket_close_us(agg, &e->rec);
            if (all || close_us <= now_us) {
                *link = e->next;
                if (agg->emit != NULL)
                    agg->emit(agg->emit_ctx, &e->rec);
                uint64_t end_us = e->rec.bucket_start_us + (uint64_t)e->rec.bucket_s * 1000000u;
                if (end_us > agg->last_emitted_end_us)
                    agg->last_emitted_end_us = end_us;
                agg->stats.emitted++;
                agg->stats.open_entries--;
                entry_free(agg, e);
                continue;
            }
            if (close_us < next)
                next = close_us;
            link = &e->next;
        }
    }
    agg->next_close_us = next;
}

int fv_aggregator_create(uint64_t close_delay_us, size_t max_entries, fv_aggregate_emit_fn emit,
                         void *emit_ctx, fv_aggregator **out)
{
    if (out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    fv_aggregator *agg = calloc(1, sizeof *agg);
    if (agg == NULL)
        return FV_ERR_NOMEM;
    agg->close_delay_us = close_delay_us;
    agg->max_entries = max_entries != 0 ? max_entries : DEFAULT_MAX_ENTRIES;
    agg->emit = emit;
    agg->emit_ctx = emit_ctx;
    agg->next_close_us = UINT64_MAX;
    *out = agg;
    return FV_OK;
}

void fv_aggregator_destroy(fv_aggregator **agg)
{
    if (agg == NULL || *agg == NULL)
        return;
    for (size_t s = 0; s < TABLE_SLOTS; s++) {
        for (agg_entry *e = (*agg)->slots[s]; e != NULL; e = e->next)
            free(e->hosts.ids);
    }
    agg_block *b = (*agg)->blocks;
    while (b != NULL) {
        agg_block *next = b->next;
        free(b);
        b = next;
    }
    free(*agg);
    *agg = NULL;
}

/* Count FLOW under KEY (made by make_key) with hash HASH. */
static int count_into(fv_aggregator *agg, const fv_aggregate_flow *flow,
                      const fv_aggregate_record *keyp, uint64_t hash)
{
    const fv_aggregate_record key = *keyp;
    uint32_t bucket_s = key.bucket_s;
    size_t slot = hash & (TABLE_SLOTS - 1);

    agg_entry *e = agg->slots[slot];
    while (e != NULL && !(e->hash == hash && key_equal(&e->rec, &key)))
        e = e->next;

    if (e == NULL) {
        if (agg->stats.open_entries >= agg->max_entries) {
            agg->stats.early_flushes++;
            emit_closed(agg, 0, true);
        }
        e = entry_alloc(agg);
        if (e == NULL)
            return FV_ERR_NOMEM;
        e->hash = hash;
        e->rec = key;
        e->next = agg->slots[slot];
        agg->slots[slot] = e;
        agg->stats.open_entries++;
        uint64_t end_us = key.bucket_start_us + (uint64_t)bucket_s * 1000000u;
        if (end_us <= agg->last_emitted_end_us)
            agg->stats.reopened++;
        uint64_t close_us = bucket_close_us(agg, &key);
        if (close_us < agg->next_close_us)
            agg->next_close_us = close_us;
    }

    if (!e->rec.hosts_capped) {
        if (e->rec.hosts >= FV_AGGREGATE_HOSTS_MAX) {
            /* Capped only by a host not seen yet, as before the bound. */
            if (!entry_host_known(e, flow->host))
                e->rec.hosts_capped = 1;
        } else {
            int added = entry_host_add(e, flow->host);
            if (added < 0)
                return FV_ERR_NOMEM;
            e->rec.hosts += (uint32_t)added;
        }
    }
    /* A flow split by the active timeout is one flow in several records. */
    if (!flow->continued)
        e->rec.flows++;
    e->rec.packets += flow->packets;
    e->rec.bytes_out += flow->bytes_out;
    e->rec.bytes_in += flow->bytes_in;
    return FV_OK;
}

int fv_aggregator_add(fv_aggregator *agg, const fv_aggregate_flow *flow)
{
    if (agg == NULL || flow == NULL || flow->zone == NULL || flow->host == NULL)
        return FV_ERR_INVALID;

    /* Both keys first, so the two chain heads load from memory at the
     * same time instead of one after the other. */
    fv_aggregate_record hour_key, day_key;
    make_key(flow, FV_AGGREGATE_HOUR_S, &hour_key);
    make_key(flow, FV_AGGREGATE_DAY_S, &day_key);
    uint64_t hour_hash = key_hash(&hour_key), day_hash = key_hash(&day_key);
    __builtin_prefetch(&agg->slots[hour_hash & (TABLE_SLOTS - 1)]);
    __builtin_prefetch(&agg->slots[day_hash & (TABLE_SLOTS - 1)]);

    int rc = count_into(agg, flow, &hour_key, hour_hash);
    if (rc == FV_OK)
        rc = count_into(agg, flow, &day_key, day_hash);
    if (rc != FV_OK)
        return rc;

    fv_aggregator_advance(agg, flow->last_us > flow->first_us ? flow->last_us : flow->first_us);
    return FV_OK;
}

void fv_aggregator_advance(fv_aggregator *agg, uint64_t now_us)
{
    if (agg == NULL)
        return;
    if (now_us > agg->now_us)
        agg->now_us = now_us;
    if (agg->now_us >= agg->next_close_us)
        emit_closed(agg, agg->now_us, false);
}

void fv_aggregator_flush(fv_aggregator *agg)
{
    if (agg != NULL)
        emit_closed(agg, 0, true);
}

void fv_aggregator_get_stats(const fv_aggregator *agg, fv_aggregator_stats *out)
{
    if (out == NULL)
        return;
    if (agg == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = agg->stats;
}
