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

/* Open-addressing set of host ids; capacity is a power of two and at
 * most twice FV_AGGREGATE_HOSTS_MAX, so it is never more than half full. */
typedef struct host_set {
    uint8_t (*ids)[FV_PSEUDONYM_BYTES];
    uint8_t *used;
    size_t capacity;
} host_set;

typedef struct agg_entry {
    struct agg_entry *next;
    uint64_t hash;
    fv_aggregate_record rec;
    host_set hosts;
} agg_entry;

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

/* Insert ID into SET unless present. Return 1 if added, 0 if present,
 * -1 on allocation failure. The caller keeps the count at most
 * FV_AGGREGATE_HOSTS_MAX, so the set never grows past twice that. */
static int host_set_insert(host_set *set, size_t count, const uint8_t *id)
{
    if (2 * (count + 1) > set->capacity) {
        size_t capacity = set->capacity == 0 ? HOST_SET_MIN : set->capacity * 2;
        uint8_t (*ids)[FV_PSEUDONYM_BYTES] = calloc(capacity, sizeof *ids);
        uint8_t *used = calloc(capacity, 1);
        if (ids == NULL || used == NULL) {
            free(ids);
            free(used);
            return -1;
        }
        for (size_t i = 0; i < set->capacity; i++) {
            if (!set->used[i])
                continue;
            size_t j = id_hash(set->ids[i]) & (capacity - 1);
            while (used[j])
                j = (j + 1) & (capacity - 1);
            used[j] = 1;
            memcpy(ids[j], set->ids[i], FV_PSEUDONYM_BYTES);
        }
        free(set->ids);
        free(set->used);
        set->ids = ids;
        set->used = used;
        set->capacity = capacity;
    }

    size_t j = id_hash(id) & (set->capacity - 1);
    while (set->used[j]) {
        if (memcmp(set->ids[j], id, FV_PSEUDONYM_BYTES) == 0)
            return 0;
        j = (j + 1) & (set->capacity - 1);
    }
    set->used[j] = 1;
    memcpy(set->ids[j], id, FV_PSEUDONYM_BYTES);
    return 1;
}

static bool host_set_contains(const host_set *set, const uint8_t *id)
{
    if (set->capacity == 0)
        return false;
    size_t j = id_hash(id) & (set->capacity - 1);
    while (set->used[j]) {
        if (memcmp(set->ids[j], id, FV_PSEUDONYM_BYTES) == 0)
            return true;
        j = (j + 1) & (set->capacity - 1);
    }
    return false;
}

static void entry_free(agg_entry *e)
{
    free(e->hosts.ids);
    free(e->hosts.used);
    free(e);
}

/* Emit and free every entry for which CLOSE (or ALL) holds; recompute
 * the earliest close time of the rest. */
static void emit_closed(fv_aggregator *agg, uint64_t now_us, bool all)
{
    uint64_t next = UINT64_MAX;

    for (size_t s = 0; s < TABLE_SLOTS; s++) {
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
                entry_free(e);
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
        agg_entry *e = (*agg)->slots[s];
        while (e != NULL) {
            agg_entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    free(*agg);
    *agg = NULL;
}

static int count_into(fv_aggregator *agg, const fv_aggregate_flow *flow, uint32_t bucket_s)
{
    fv_aggregate_record key;
    make_key(flow, bucket_s, &key);
    uint64_t hash = key_hash(&key);
    size_t slot = hash & (TABLE_SLOTS - 1);

    agg_entry *e = agg->slots[slot];
    while (e != NULL && !(e->hash == hash && key_equal(&e->rec, &key)))
        e = e->next;

    if (e == NULL) {
        if (agg->stats.open_entries >= agg->max_entries) {
            agg->stats.early_flushes++;
            emit_closed(agg, 0, true);
        }
        e = calloc(1, sizeof *e);
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

    if (!e->rec.hosts_capped && !host_set_contains(&e->hosts, flow->host)) {
        if (e->rec.hosts >= FV_AGGREGATE_HOSTS_MAX) {
            e->rec.hosts_capped = 1;
        } else {
            int added = host_set_insert(&e->hosts, e->rec.hosts, flow->host);
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

    int rc = count_into(agg, flow, FV_AGGREGATE_HOUR_S);
    if (rc == FV_OK)
        rc = count_into(agg, flow, FV_AGGREGATE_DAY_S);
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
