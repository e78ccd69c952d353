/*
 * det_util.c: bounded LRU hash table, statistics, flow orientation,
 * formatting and serialization helpers for the detectors.
 */
#include "det_util.h"
#include "det_index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Bounded LRU hash table                                                  */
/* ---------------------------------------------------------------------- */

/* Index words a table starts with (512 bytes): a power of two. */
#define DET_INDEX_MIN 64u
/* Largest index size in words (64 KB) for which det_table_prefetch also
 * reads the index word to prefetch the entry. */
#define DET_INDEX_CACHED 8192u

/* Free the table's arrays and clear their pointers. */
static void table_free_arrays(det_table *t)
{
    free(t->slab);
    free(t->links);
    free(t->index);
    free(t->host_heads);
    t->slab = NULL;
    t->links = NULL;
    t->index = NULL;
    t->host_heads = NULL;
}

int det_table_init(det_table *t, size_t max_count, size_t entry_size, void (*free_node)(det_node *))
{
    memset(t, 0, sizeof *t);
    t->lru_newest = t->lru_oldest = t->free_head = DET_NIL;
    /* Slot numbers and slot + 1 must fit the 32-bit index links. */
    if (max_count == 0 || max_count >= DET_NIL / 2 || entry_size < sizeof(det_node))
        return FV_ERR_INVALID;
    /* An index at most half full keeps linear probes short. It starts at
     * DET_INDEX_MIN words and grows to index_limit. */
    size_t index_limit = DET_INDEX_MIN;
    while (index_limit < 2 * max_count)
        index_limit *= 2;
    size_t index_size = DET_INDEX_MIN;
    size_t host_size = 16;
    while (host_size < max_count)
        host_size *= 2;
    /* Every entry struct has at most 8-byte alignment. */
    t->entry_size = (entry_size + 7u) & ~(size_t)7u;
    /* calloc of a large block maps zero pages, so untouched slots cost
     * address space only. The spare slot lets det_table_alloc succeed
     * when the table is full, before det_table_insert evicts. */
    t->slab = calloc(max_count + 1, t->entry_size);
    t->links = calloc(max_count + 1, sizeof *t->links);
    t->index = calloc(index_size, sizeof *t->index);
    t->host_heads = malloc(host_size * sizeof *t->host_heads);
    if (t->slab == NULL || t->links == NULL || t->index == NULL || t->host_heads == NULL) {
        table_free_arrays(t);
        return FV_ERR_NOMEM;
    }
    memset(t->host_heads, 0xff, host_size * sizeof *t->host_heads); /* all DET_NIL */
    t->index_mask = index_size - 1;
    t->index_limit = index_limit;
    t->host_mask = host_size - 1;
    t->max_count = max_count;
    t->free_node = free_node;
    randombytes_buf(t->hash_key, sizeof t->hash_key);
    return FV_OK;
}

/*
 * Multilinear hash of the 32-bit words WORDS[0..COUNT) under the table's
 * key: the high 32 bits of key[0] + sum of key[i + 1] * word[i], modulo
 * 2^64 (the multiply-shift construction). With random 64-bit keys the
 * family is strongly universal, so two table keys chosen without
 * knowledge of the key, such as external peer addresses, collide with
 * probability 2^-32, and the probe sequences stay short. It costs ten
 * multiplications where SipHash-2-4 took about 20 ns per lookup.
 * NOTE: unlike SipHash it is not a pseudorandom function, so an
 * attacker who could watch many hash values or lookup times could
 * learn about the key. The detectors expose neither.
 */
static uint32_t multilinear_hash(const det_table *t, const uint32_t *words, size_t count)
{
    uint64_t h = t->hash_key[0];
    for (size_t i = 0; i < count; i++)
        h += t->hash_key[i + 1] * (uint64_t)words[i];
    return (uint32_t)(h >> 32);
}

/* multilinear_hash over the key's ten 32-bit words, read as five 64-bit
 * loads. Each load then lies within one store of det_key_make, so the
 * CPU forwards the stored bytes instead of waiting for the stores to
 * reach the cache, which a load spanning several stores must. */
static uint32_t key_hash(const det_table *t, const det_key *key)
{
    const uint8_t *bytes = (const uint8_t *)key;
    uint64_t h = t->hash_key[0];
    for (size_t i = 0; i < sizeof *key / sizeof(uint64_t); i++) {
        uint64_t w;
        memcpy(&w, bytes + i * sizeof w, sizeof w);
        h += t->hash_key[2 * i + 1] * (w & UINT32_MAX) + t->hash_key[2 * i + 2] * (w >> 32);
    }
    return (uint32_t)(h >> 32);
}

static uint32_t host_hash(const det_table *t, uint8_t kind, const uint8_t host[16])
{
    uint32_t words[5];
    words[0] = kind;
    memcpy(words + 1, host, 16);
    return multilinear_hash(t, words, sizeof words / sizeof words[0]);
}

_Static_assert(offsetof(det_key, detector) == 0 && offsetof(det_key, host_kind) == 1 &&
                   offsetof(det_key, peer_kind) == 2 && offsetof(det_key, proto) == 3 &&
                   offsetof(det_key, peer_port) == 4 && offsetof(det_key, host) == 8 &&
                   offsetof(det_key, peer) == 24,
               "det_key_make writes the header bytes in this order");

/* Writes the eight header bytes with one 64-bit store, so each of
 * key_hash's 64-bit loads reads from a single store. */
void det_key_make(det_key *key, int detector, const fv_endpoint *host, const fv_endpoint *peer,
                  uint16_t peer_port, uint8_t proto)
{
    uint8_t host_kind = host != NULL ? host->kind : 0;
    uint8_t peer_kind = peer != NULL ? peer->kind : 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The header composed in a register: bytes 0 to 3, then peer_port in
     * host order, then slot and reserved zero. */
    uint64_t head = (uint64_t)(uint8_t)detector | (uint64_t)host_kind << 8 |
                    (uint64_t)peer_kind << 16 | (uint64_t)proto << 24 |
                    (uint64_t)peer_port << 32;
    memcpy(key, &head, sizeof head);
#else
    memset(key, 0, offsetof(det_key, host));
    key->detector = (uint8_t)detector;
    key->host_kind = host_kind;
    key->peer_kind = peer_kind;
    key->proto = proto;
    key->peer_port = peer_port;
#endif

    static const uint8_t no_address[16];
    memcpy(key->host, host != NULL ? host->addr : no_address, sizeof key->host);
    memcpy(key->peer, peer != NULL ? peer->addr : no_address, sizeof key->peer);
}

static det_node *node_at(const det_table *t, uint32_t slot)
{
    return (det_node *)(void *)(t->slab + (size_t)slot * t->entry_size);
}

static void lru_unlink(det_table *t, det_node *n)
{
    det_links *l = &t->links[n->slot];
    if (l->lru_newer != DET_NIL)
        t->links[l->lru_newer].lru_older = l->lru_older;
    else
        t->lru_newest = l->lru_older;
    if (l->lru_older != DET_NIL)
        t->links[l->lru_older].lru_newer = l->lru_newer;
    else
        t->lru_oldest = l->lru_newer;
    l->lru_newer = DET_NIL;
    l->lru_older = DET_NIL;
}

static void lru_push_newest(det_table *t, det_node *n)
{
    det_links *l = &t->links[n->slot];
    l->lru_newer = DET_NIL;
    l->lru_older = t->lru_newest;
    if (t->lru_newest != DET_NIL)
        t->links[t->lru_newest].lru_newer = n->slot;
    t->lru_newest = n->slot;
    if (t->lru_oldest == DET_NIL)
        t->lru_oldest = n->slot;
}

static void host_index_link(det_table *t, det_node *n)
{
    det_links *l = &t->links[n->slot];
    uint32_t *head = &t->host_heads[n->host_hash & t->host_mask];
    l->host_prev = DET_NIL;
    l->host_next = *head;
    if (*head != DET_NIL)
        t->links[*head].host_prev = n->slot;
    *head = n->slot;
}

static void host_index_unlink(det_table *t, det_node *n)
{
    det_links *l = &t->links[n->slot];
    if (l->host_prev != DET_NIL)
        t->links[l->host_prev].host_next = l->host_next;
    else
        t->host_heads[n->host_hash & t->host_mask] = l->host_next;
    if (l->host_next != DET_NIL)
        t->links[l->host_next].host_prev = l->host_prev;
    l->host_next = DET_NIL;
    l->host_prev = DET_NIL;
}

static void index_add(det_table *t, const det_node *n)
{
    det_index_add(t->index, t->index_mask, det_index_word(n->hash, n->slot));
}

static void index_delete(det_table *t, const det_node *n)
{
    det_index_delete(t->index, t->index_mask, det_index_word(n->hash, n->slot));
}

static bool index_reserve(det_table *t)
{
    return det_index_reserve(&t->index, &t->index_mask, t->count, t->index_limit);
}

static void node_set_key(det_table *t, det_node *n, const det_key *key)
{
    n->key = *key;
    n->hash = key_hash(t, key);
    n->host_hash = host_hash(t, key->host_kind, key->host);
    n->generation = t->generation;
}

/* Fixed-size key compare: five 64-bit words instead of a memcmp call. */
static bool key_equal(const det_key *a, const det_key *b)
{
    uint64_t wa[sizeof *a / sizeof(uint64_t)], wb[sizeof *b / sizeof(uint64_t)];
    memcpy(wa, a, sizeof wa);
    memcpy(wb, b, sizeof wb);
    uint64_t diff = 0;
    for (size_t i = 0; i < sizeof wa / sizeof wa[0]; i++)
        diff |= wa[i] ^ wb[i];
    return diff == 0;
}

static det_node *table_find(const det_table *t, const det_key *key, uint32_t hash)
{
    size_t i = hash & t->index_mask;
    for (;;) {
        uint64_t w = t->index[i];
        if (w == 0)
            return NULL;
        if ((uint32_t)(w >> 32) == hash) {
            uint32_t slot = (uint32_t)w - 1u;
            /* A found entry moves to the LRU front next, which reads its
             * links, so load them while the key is compared. */
            __builtin_prefetch(&t->links[slot]);
            det_node *n = node_at(t, slot);
            if (key_equal(&n->key, key))
                return n;
        }
        i = (i + 1) & t->index_mask;
    }
}

void det_table_prefetch(const det_table *t, const det_key *key)
{
    uint32_t hash = key_hash(t, key);
    const uint64_t *home = &t->index[hash & t->index_mask];
    __builtin_prefetch(home);
    /* A small index is likely cached already, so reading its word costs
     * little and gives the entry to prefetch as well. */
    if (t->index_mask < DET_INDEX_CACHED && (uint32_t)(*home >> 32) == hash && *home != 0) {
        uint32_t slot = (uint32_t)*home - 1u;
        __builtin_prefetch(node_at(t, slot));
        __builtin_prefetch(&t->links[slot]);
    }
    /* When the table is full, an insert of a new key first evicts the
     * oldest entry, which reads its links and its index word. The entry
     * itself was prefetched by the previous eviction, so its hash is
     * likely cached. */
    if (t->count >= t->max_count && t->lru_oldest != DET_NIL) {
        const det_node *oldest = node_at(t, t->lru_oldest);
        __builtin_prefetch(&t->links[t->lru_oldest]);
        __builtin_prefetch(&t->index[oldest->hash & t->index_mask]);
    }
}

det_node *det_table_get(det_table *t, const det_key *key)
{
    det_node *n = table_find(t, key, key_hash(t, key));
    if (n != NULL && t->lru_newest != n->slot) {
        lru_unlink(t, n);
        lru_push_newest(t, n);
    }
    return n;
}

det_node *det_table_alloc(det_table *t)
{
    uint32_t slot;
    if (t->free_head != DET_NIL) {
        slot = t->free_head;
        t->free_head = t->links[slot].lru_older;
        memset(node_at(t, slot), 0, t->entry_size);
    } else if (t->slots_used <= t->max_count) {
        /* Never used: zero from calloc, but written anyway. A first read
         * of an untouched page maps the shared zero page, and the write
         * after it faults again and, with the detector thread, flushes
         * every other CPU's TLB. Writing first takes one plain fault. */
        slot = t->slots_used++;
        memset(node_at(t, slot), 0, t->entry_size);
    } else {
        return NULL;
    }
    det_node *n = node_at(t, slot);
    n->slot = slot;
    det_links *l = &t->links[slot];
    l->lru_newer = l->lru_older = DET_NIL;
    l->host_next = l->host_prev = DET_NIL;
    return n;
}

void det_table_release(det_table *t, det_node *n)
{
    t->links[n->slot].lru_older = t->free_head;
    t->free_head = n->slot;
}

void det_table_remove(det_table *t, det_node *n)
{
    index_delete(t, n);
    host_index_unlink(t, n);
    lru_unlink(t, n);
    t->count--;
    if (t->free_node != NULL)
        t->free_node(n);
    det_table_release(t, n);
}

void det_table_insert(det_table *t, det_node *n, const det_key *key)
{
    if (t->count >= t->max_count && t->lru_oldest != DET_NIL) {
        det_table_remove(t, node_at(t, t->lru_oldest));
        /* The next eviction's entry, for det_table_prefetch to read. */
        if (t->lru_oldest != DET_NIL)
            __builtin_prefetch(node_at(t, t->lru_oldest));
    }
    /* Without a larger index, keep one word empty so probes end. */
    if (!index_reserve(t) && t->count + 2 > t->index_mask + 1 && t->lru_oldest != DET_NIL)
        det_table_remove(t, node_at(t, t->lru_oldest));
    node_set_key(t, n, key);
    index_add(t, n);
    host_index_link(t, n);
    lru_push_newest(t, n);
    t->count++;
}

void det_table_clear(det_table *t)
{
    while (t->lru_oldest != DET_NIL)
        det_table_remove(t, node_at(t, t->lru_oldest));
}

void det_table_free(det_table *t)
{
    if (t->slab == NULL)
        return;
    /* Only what the entries own needs releasing: the index and the links
     * go away with their arrays. */
    if (t->free_node != NULL) {
        for (uint32_t slot = t->lru_newest; slot != DET_NIL; slot = t->links[slot].lru_older)
            t->free_node(node_at(t, slot));
    }
    t->count = 0;
    t->lru_newest = t->lru_oldest = DET_NIL;
    table_free_arrays(t);
    sodium_memzero(t->hash_key, sizeof t->hash_key);
}

void det_table_rekey_begin(det_table *t)
{
    t->generation++;
}

void det_table_rekey(det_table *t, uint8_t kind, const uint8_t old_host[16],
                     const uint8_t new_host[16], det_merge_fn merge)
{
    uint32_t old_hash = host_hash(t, kind, old_host);
    uint32_t slot = t->host_heads[old_hash & t->host_mask];

    while (slot != DET_NIL) {
        det_node *n = node_at(t, slot);
        uint32_t next = t->links[slot].host_next;
        bool match = n->host_hash == old_hash && n->key.host_kind == kind &&
                     memcmp(n->key.host, old_host, sizeof n->key.host) == 0;
        if (match) {
            det_key key = n->key;
            memcpy(key.host, new_host, sizeof key.host);
            det_node *target = table_find(t, &key, key_hash(t, &key));
            if (target == n) {
                n->generation = t->generation;
            } else if (target != NULL) {
                if (merge != NULL)
                    merge(target, n);
                target->generation = t->generation;
                /* The next node may be the target; it stays valid. */
                det_table_remove(t, n);
            } else {
                index_delete(t, n);
                host_index_unlink(t, n);
                node_set_key(t, n, &key);
                index_add(t, n);
                host_index_link(t, n);
            }
        }
        slot = next;
    }
}

size_t det_table_drop_stale(det_table *t)
{
    size_t dropped = 0;
    uint32_t slot = t->lru_oldest;
    while (slot != DET_NIL) {
        det_node *n = node_at(t, slot);
        uint32_t newer = t->links[slot].lru_newer;
        if (n->generation != t->generation) {
            det_table_remove(t, n);
            dropped++;
        }
        slot = newer;
    }
    return dropped;
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */
/* ---------------------------------------------------------------------- */

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

int det_compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Quantile Q of sorted V by linear interpolation between ranks. */
static double quantile_sorted(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    double frac = pos - (double)lo;
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

double det_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_double);
    if (n % 2 == 1)
        return v[n / 2];
    return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void swap_double(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Sort V[lo..hi] by insertion: short ranges, where it beats partitioning. */
static void insertion_sort(double *v, size_t lo, size_t hi)
{
    for (size_t i = lo + 1; i <= hi; i++) {
        double x = v[i];
        size_t j = i;
        while (j > lo && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/*
 * Partition V so that V[k] contains the k-th smallest value, with no
 * larger value before it and no smaller one after it (C++ nth_element).
 * It uses Hoare partitioning around the median of three and sorts ranges
 * under 16 values. The worst case is quadratic, but callers pass at most
 * a few hundred values.
 */
static void select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi - lo >= 16) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap_double(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swap_double(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swap_double(&v[hi], &v[mid]);
        /* Now v[lo] <= v[mid] <= v[hi]: both ends stop the scans below. */
        double pivot = v[mid];
        size_t i = lo, j = hi;
        for (;;) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i >= j)
                break;
            swap_double(&v[i], &v[j]);
            i++;
            j--;
        }
        /* V[lo..j] <= pivot <= V[j + 1..hi]. */
        if (k <= j)
            hi = j;
        else
            lo = j + 1;
    }
    insertion_sort(v, lo, hi);
}

double det_select(double *v, size_t n, size_t k)
{
    select_kth(v, n, k);
    return v[k];
}

double det_median_select(double *v, size_t n)
{
    size_t half = n / 2;
    select_kth(v, n, half);
    if (n % 2 == 1)
        return v[half];
    /* The lower middle value is the largest of the values before V[half]. */
    double lower = v[0];
    for (size_t i = 1; i < half; i++) {
        if (v[i] > lower)
            lower = v[i];
    }
    return (lower + v[half]) / 2.0;
}

double det_mad(const double *v, size_t n, double median, double *scratch)
{
    for (size_t i = 0; i < n; i++)
        scratch[i] = fabs(v[i] - median);
    return det_median_select(scratch, n);
}

double det_bowley_skew(const double *sorted, size_t n)
{
    if (n < 3)
        return 0.0;
    double q1 = quantile_sorted(sorted, n, 0.25);
    double q2 = quantile_sorted(sorted, n, 0.5);
    double q3 = quantile_sorted(sorted, n, 0.75);
    /* Equal quartiles, or the median on a quartile: no measurable skew. */
    if (q3 - q1 <= 0.0 || q2 == q1 || q2 == q3)
        return 0.0;
    return (q3 + q1 - 2.0 * q2) / (q3 - q1);
}

double det_clamp01(double x)
{
    if (!(x > 0.0))
        return 0.0;
    if (x > 1.0)
        return 1.0;
    return x;
}

/* ---------------------------------------------------------------------- */
/* Flows                                                                   */
/* ---------------------------------------------------------------------- */

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_PSH 0x08

bool det_tcp_without_start(const fv_flow_record *f)
{
    uint16_t flags = f->tcp_flags_fwd | f->tcp_flags_rev;
    return f->proto == 6 && flags != 0 && (flags & TCP_FLAG_SYN) == 0;
}

bool det_tcp_remnant(const fv_flow_record *f)
{
    uint16_t flags = f->tcp_flags_fwd | f->tcp_flags_rev;
    return det_tcp_without_start(f) && (flags & TCP_FLAG_PSH) == 0 &&
           f->pkts_fwd + f->pkts_rev <= 2;
}

_Static_assert(sizeof FV_ZONE_EXTERNAL <= FV_ZONE_NAME_MAX, "zone label fits the zone field");

/* fv_endpoint_is_internal with a fixed-size compare in place of strcmp.
 * The zone field is a whole array, so reading the label's bytes and its
 * terminator never leaves it. Every detector orients every flow, twice
 * with its prefetch. */
static bool endpoint_internal(const fv_endpoint *ep)
{
    if (ep->kind == FV_EP_NONE)
        return false;
    if (ep->zone[0] != '\0')
        return memcmp(ep->zone, FV_ZONE_EXTERNAL, sizeof FV_ZONE_EXTERNAL) != 0;
    return fv_endpoint_is_internal(ep);
}

bool det_orient(const fv_flow_record *flow, det_outbound *ob)
{
    bool src_internal = endpoint_internal(&flow->src);
    bool dst_internal = endpoint_internal(&flow->dst);
    if (src_internal == dst_internal)
        return false;

    memset(ob, 0, sizeof *ob);
    ob->proto = flow->proto;
    ob->first_us = flow->first_us;
    ob->last_us = flow->last_us;
    /* When the external side sent the first packet, swap so that "out"
     * still means from the host to the peer. */
    if (src_internal) {
        ob->host = &flow->src;
        ob->peer = &flow->dst;
        ob->peer_port = flow->dport;
        ob->bytes_out = flow->bytes_fwd;
        ob->bytes_in = flow->bytes_rev;
    } else {
        ob->host = &flow->dst;
        ob->peer = &flow->src;
        ob->peer_port = flow->sport;
        ob->bytes_out = flow->bytes_rev;
        ob->bytes_in = flow->bytes_fwd;
    }
    return ob->peer->kind != FV_EP_NONE;
}

unsigned det_hour_of_week(uint64_t ts_us)
{
    uint64_t hours = ts_us / 3600000000ull;
    /* 1970-01-01 was a Thursday: hour 0 of the epoch is hour 72 of its
     * week when weeks start on Monday. */
    return (unsigned)((hours + 72u) % 168u);
}

/* ---------------------------------------------------------------------- */
/* Formatting                                                              */
/* ---------------------------------------------------------------------- */

static const char *proto_name(uint8_t proto, char buf[8])
{
    if (proto == 6)
        return "tcp";
    if (proto == 17)
        return "udp";
    snprintf(buf, 8, "ip%u", (unsigned)proto);
    return buf;
}

void det_format_peer(const fv_endpoint *peer, uint16_t port, uint8_t proto, char *out,
                     size_t out_len)
{
    char addr[FV_ENDPOINT_TEXT_MAX];
    char pbuf[8];
    fv_endpoint_format(peer, addr);
    bool bracket = peer->kind == FV_EP_IPV6 || peer->kind == FV_EP_PREFIX_IPV6 ||
                   peer->kind == FV_EP_TRUNC_IPV6;
    snprintf(out, out_len, "%s%s%s:%u/%s", bracket ? "[" : "", addr, bracket ? "]" : "",
             (unsigned)port, proto_name(proto, pbuf));
}

void det_format_bytes(double bytes, char *out, size_t out_len)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    size_t u = 0;
    while (bytes >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        bytes /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(out, out_len, "%.0f B", bytes);
    else
        snprintf(out, out_len, "%.1f %s", bytes, units[u]);
}

void det_format_host(const fv_endpoint *host, char out[FV_ENDPOINT_TEXT_MAX])
{
    fv_endpoint_format(host, out);
}

/* ---------------------------------------------------------------------- */
/* Serialization                                                           */
/* ---------------------------------------------------------------------- */

void det_buf_put(det_buf *b, const void *bytes, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (n > cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

void det_buf_u8(det_buf *b, uint8_t v)
{
    det_buf_put(b, &v, 1);
}

void det_buf_u32(det_buf *b, uint32_t v)
{
    uint8_t out[4];
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(v >> (8 * (3 - i)));
    det_buf_put(b, out, sizeof out);
}

void det_buf_u64(det_buf *b, uint64_t v)
{
    uint8_t out[8];
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * (7 - i)));
    det_buf_put(b, out, sizeof out);
}

void det_buf_f64(det_buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    det_buf_u64(b, bits);
}

void det_read(det_reader *r, void *out, size_t n)
{
    if (!r->ok || n > r->len - r->pos) {
        r->ok = false;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

uint8_t det_read_u8(det_reader *r)
{
    uint8_t v;
    det_read(r, &v, 1);
    return v;
}

uint32_t det_read_u32(det_reader *r)
{
    uint8_t in[4];
    det_read(r, in, sizeof in);
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | in[i];
    return v;
}

uint64_t det_read_u64(det_reader *r)
{
    uint8_t in[8];
    det_read(r, in, sizeof in);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

double det_read_f64(det_reader *r)
{
    uint64_t bits = det_read_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
