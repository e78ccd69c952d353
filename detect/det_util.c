/*
 * det_util.c: bounded LRU hash table, statistics, flow orientation,
 * formatting and serialization helpers for the detectors.
 */
#include "det_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Bounded LRU hash table                                                  */
/* ---------------------------------------------------------------------- */

int det_table_init(det_table *t, size_t max_count, void (*free_node)(det_node *))
{
    memset(t, 0, sizeof *t);
    /* Twice as many buckets as entries keeps chains short. */
    size_t buckets = 16;
    while (buckets < 2 * max_count)
        buckets *= 2;
    /* Both arrays hold chain heads (node pointers). */
    t->buckets = calloc(buckets, sizeof *t->buckets);        // NOLINT(bugprone-sizeof-expression)
    t->host_index = calloc(buckets, sizeof *t->host_index);  // NOLINT(bugprone-sizeof-expression)
    if (t->buckets == NULL || t->host_index == NULL) {
        free(t->buckets);
        free(t->host_index);
        t->buckets = NULL;
        t->host_index = NULL;
        return FV_ERR_NOMEM;
    }
    t->bucket_count = buckets;
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
 * probability 2^-32, and the chains stay short. It costs ten
 * multiplications where SipHash-2-4 took about 20 ns per lookup.
 * NOTE: unlike SipHash it is not a pseudorandom function, so an
 * attacker who could watch many hash values or lookup times could
 * learn about the key. The detectors expose neither.
 */
static uint64_t multilinear_hash(const det_table *t, const uint32_t *words, size_t count)
{
    uint64_t h = t->hash_key[0];
    for (size_t i = 0; i < count; i++)
        h += t->hash_key[i + 1] * (uint64_t)words[i];
    return h >> 32;
}

static uint64_t key_hash(const det_table *t, const det_key *key)
{
    uint32_t words[sizeof *key / sizeof(uint32_t)];
    memcpy(words, key, sizeof words);
    return multilinear_hash(t, words, sizeof words / sizeof words[0]);
}

static uint64_t host_hash(const det_table *t, uint8_t kind, const uint8_t host[16])
{
    uint32_t words[5];
    words[0] = kind;
    memcpy(words + 1, host, 16);
    return multilinear_hash(t, words, sizeof words / sizeof words[0]);
}

void det_key_make(det_key *key, int detector, const fv_endpoint *host, const fv_endpoint *peer,
                  uint16_t peer_port, uint8_t proto)
{
    memset(key, 0, sizeof *key);
    key->detector = (uint8_t)detector;
    if (host != NULL) {
        key->host_kind = host->kind;
        memcpy(key->host, host->addr, sizeof key->host);
    }
    if (peer != NULL) {
        key->peer_kind = peer->kind;
        memcpy(key->peer, peer->addr, sizeof key->peer);
    }
    key->peer_port = peer_port;
    key->proto = proto;
}

static void lru_unlink(det_table *t, det_node *n)
{
    if (n->lru_newer != NULL)
        n->lru_newer->lru_older = n->lru_older;
    else
        t->lru_newest = n->lru_older;
    if (n->lru_older != NULL)
        n->lru_older->lru_newer = n->lru_newer;
    else
        t->lru_oldest = n->lru_newer;
    n->lru_newer = NULL;
    n->lru_older = NULL;
}

static void lru_push_newest(det_table *t, det_node *n)
{
    n->lru_newer = NULL;
    n->lru_older = t->lru_newest;
    if (t->lru_newest != NULL)
        t->lru_newest->lru_newer = n;
    t->lru_newest = n;
    if (t->lru_oldest == NULL)
        t->lru_oldest = n;
}

static void host_index_link(det_table *t, det_node *n)
{
    det_node **head = &t->host_index[n->host_hash & (t->bucket_count - 1)];
    n->host_next = *head;
    if (*head != NULL)
        (*head)->host_pprev = &n->host_next;
    *head = n;
    n->host_pprev = head;
}

static void host_index_unlink(det_node *n)
{
    if (n->host_pprev == NULL)
        return;
    *n->host_pprev = n->host_next;
    if (n->host_next != NULL)
        n->host_next->host_pprev = n->host_pprev;
    n->host_next = NULL;
    n->host_pprev = NULL;
}

static void bucket_unlink(det_table *t, det_node *n)
{
    det_node **link = &t->buckets[n->hash & (t->bucket_count - 1)];
    while (*link != NULL && *link != n)
        link = &(*link)->hash_next;
    if (*link == n)
        *link = n->hash_next;
    n->hash_next = NULL;
}

static void bucket_link(det_table *t, det_node *n)
{
    size_t b = n->hash & (t->bucket_count - 1);
    n->hash_next = t->buckets[b];
    t->buckets[b] = n;
}

static void node_set_key(det_table *t, det_node *n, const det_key *key)
{
    n->key = *key;
    n->hash = key_hash(t, key);
    n->host_hash = host_hash(t, key->host_kind, key->host);
    n->generation = t->generation;
}

static det_node *table_find(const det_table *t, const det_key *key, uint64_t hash)
{
    for (det_node *n = t->buckets[hash & (t->bucket_count - 1)]; n != NULL; n = n->hash_next) {
        if (n->hash == hash && memcmp(&n->key, key, sizeof *key) == 0)
            return n;
    }
    return NULL;
}

det_node *det_table_get(det_table *t, const det_key *key)
{
    det_node *n = table_find(t, key, key_hash(t, key));
    if (n != NULL && t->lru_newest != n) {
        lru_unlink(t, n);
        lru_push_newest(t, n);
    }
    return n;
}

void det_table_remove(det_table *t, det_node *n)
{
    bucket_unlink(t, n);
    host_index_unlink(n);
    lru_unlink(t, n);
    t->count--;
    t->free_node(n);
}

void det_table_insert(det_table *t, det_node *n, const det_key *key)
{
    if (t->count >= t->max_count && t->lru_oldest != NULL)
        det_table_remove(t, t->lru_oldest);
    node_set_key(t, n, key);
    bucket_link(t, n);
    host_index_link(t, n);
    lru_push_newest(t, n);
    t->count++;
}

void det_table_clear(det_table *t)
{
    while (t->lru_oldest != NULL)
        det_table_remove(t, t->lru_oldest);
}

void det_table_free(det_table *t)
{
    if (t->buckets == NULL)
        return;
    det_table_clear(t);
    free(t->buckets);
    free(t->host_index);
    t->buckets = NULL;
    t->host_index = NULL;
    sodium_memzero(t->hash_key, sizeof t->hash_key);
}

void det_table_rekey_begin(det_table *t)
{
    t->generation++;
}

void det_table_rekey(det_table *t, uint8_t kind, const uint8_t old_host[16],
                     const uint8_t new_host[16], det_merge_fn merge)
{
    uint64_t old_hash = host_hash(t, kind, old_host);
    det_node *n = t->host_index[old_hash & (t->bucket_count - 1)];

    while (n != NULL) {
        det_node *next = n->host_next;
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
                bucket_unlink(t, n);
                host_index_unlink(n);
                node_set_key(t, n, &key);
                bucket_link(t, n);
                host_index_link(t, n);
            }
        }
        n = next;
    }
}

size_t det_table_drop_stale(det_table *t)
{
    size_t dropped = 0;
    det_node *n = t->lru_oldest;
    while (n != NULL) {
        det_node *newer = n->lru_newer;
        if (n->generation != t->generation) {
            det_table_remove(t, n);
            dropped++;
        }
        n = newer;
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

double det_mad(const double *v, size_t n, double median, double *scratch)
{
    for (size_t i = 0; i < n; i++)
        scratch[i] = fabs(v[i] - median);
    return det_median(scratch, n);
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

bool det_orient(const fv_flow_record *flow, det_outbound *ob)
{
    bool src_internal = fv_endpoint_is_internal(&flow->src);
    bool dst_internal = fv_endpoint_is_internal(&flow->dst);
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
