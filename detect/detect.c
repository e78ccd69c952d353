/*
 * detect.c: beacon and exfiltration detectors over pseudonymized flows.
 *
 * State lives in three bounded tables, each a chained hash table with an
 * intrusive least-recently-used list:
 * - pairs: one entry per (host, peer address, peer port, protocol) with
 *   the last DET_BEACON_WINDOW flows (start, end, bytes out);
 * - hosts: one entry per internal host with the outbound byte counts of
 *   its last DET_EXFIL_WINDOW flows to external peers;
 * - alerted: the (detector, host, peer, port) keys that already alerted.
 * When a table is full, the least recently touched entry is evicted.
 * The pair and alerted tables also chain their nodes by host alone (the
 * host index), so det_rekey finds a host's entries without a full scan.
 * Bucket indexes come from SipHash (crypto_shorthash) under a random key,
 * so peer addresses chosen by an outsider cannot force long chains.
 */
#include "detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define DET_BEACON_WINDOW 64 /* flows kept per pair */
#define DET_EXFIL_WINDOW 128 /* flows kept per host */
#define DET_MAX_PAIRS 65536
#define DET_MAX_HOSTS 65536
#define DET_MAX_ALERTED 65536
#define DET_MAX_PENDING 4096        /* exfil alerts waiting for det_evaluate */
#define DET_BUCKETS 131072          /* power of two, twice the largest table */
#define DET_RETRY_MERGE_US 1000000u /* starts closer than this are one beat */
#define DET_FOLD_MAX_MULTIPLE 3     /* intervals up to 3x the median are folded */
#define DET_FOLD_MAX_SHARE_DIV 3    /* fold only if at most 1/3 of the intervals need it */
#define DET_COVERAGE_WIDTH 2.0      /* "near the median": within 2 * max_jitter of it */
#define DET_COVERAGE_MIN_SHARE 0.8  /* share of intervals that must be near the median */
#define DET_BEACON_HIGH_SPAN_S 3600.0
#define DET_BEACON_HIGH_BEATS 12
#define DET_EXFIL_CRITICAL_FLOOR_MULTIPLE 10.0

/*
 * Table key. Every byte is set (unused fields zero) so keys compare and
 * hash with memcmp and crypto_shorthash over the whole struct.
 */
typedef struct det_key {
    uint8_t detector;             /* fv_detector, 0 in the pair and host tables */
    uint8_t host_kind, peer_kind; /* fv_ep_kind */
    uint8_t proto;                /* 0 in the host and alerted tables */
    uint16_t peer_port;           /* host order, 0 in the host table */
    uint8_t reserved[2];
    uint8_t host[16];
    uint8_t peer[16];
} det_key;

typedef struct det_node {
    struct det_node *hash_next;
    struct det_node *lru_newer, *lru_older;
    /* Host index chain (pairs and alerted only): host_pprev points at
     * the link that points here, NULL when the node is not indexed. */
    struct det_node *host_next, **host_pprev;
    uint64_t hash;      /* of the whole key */
    uint64_t host_hash; /* of (host_kind, host) */
    uint32_t generation; /* engine generation when created or last rekeyed */
    det_key key;
} det_node;

/*
 * Invariant: count <= max_count; lru_newest..lru_oldest links every node
 * once. free_node releases a node and whatever it owns.
 */
typedef struct det_table {
    det_node **buckets;    /* DET_BUCKETS chains */
    det_node **host_index; /* DET_BUCKETS chains by host, or NULL */
    size_t count, max_count;
    det_node *lru_newest, *lru_oldest;
    void (*free_node)(det_node *node);
} det_table;

/* One flow of a pair, times in microseconds since the epoch. */
typedef struct det_beat {
    uint64_t start_us, end_us;
    uint64_t bytes_out;
} det_beat;

/* The node is the first member so a det_node pointer converts back. */
typedef struct det_pair {
    det_node node;
    fv_endpoint host, peer;
    uint16_t peer_port;
    uint8_t proto;
    bool dirty;             /* flows arrived since the last evaluation */
    size_t count, capacity; /* beats[0..count), oldest first by arrival */
    det_beat *beats;
} det_pair;

typedef struct det_host {
    det_node node;
    size_t count, capacity; /* bytes_out[0..count), oldest first */
    uint64_t *bytes_out;
} det_host;

struct det_engine {
    pol_detect config;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    det_table pairs, hosts, alerted;
    fv_alert_record *pending; /* DET_MAX_PENDING slots */
    uint32_t *pending_generation; /* generation of each pending alert */
    size_t pending_count;
    /* Raised by det_rekey_begin; state older than it is dropped by
     * det_rekey_end unless det_rekey moved it. */
    uint32_t generation;
    uint64_t dropped_observations; /* lost to allocation failure or a full queue */
};

/* Results of the interval analysis of one pair. */
typedef struct det_beacon_stats {
    size_t beats; /* starts left after merging retries */
    double median_s, mad_s, dispersion;
    double span_s; /* first to last start */
} det_beacon_stats;

/* ---------------------------------------------------------------------- */
/* Evidence names                                                          */
/* ---------------------------------------------------------------------- */

static const char *const det_beacon_evidence_names[DET_EV_BEACON_COUNT] = {
    "connections", "median_interval_s", "mad_interval_s",
    "dispersion",  "duration_s",        "mean_bytes_out",
};

static const char *const det_exfil_evidence_names[DET_EV_EXFIL_COUNT] = {
    "bytes_out", "baseline_median_bytes", "ratio", "duration_s", "history_flows",
};

const char *det_evidence_name(int detector, unsigned index)
{
    if (detector == FV_DET_BEACON && index < DET_EV_BEACON_COUNT)
        return det_beacon_evidence_names[index];
    if (detector == FV_DET_EXFIL && index < DET_EV_EXFIL_COUNT)
        return det_exfil_evidence_names[index];
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Bounded LRU hash table                                                  */
/* ---------------------------------------------------------------------- */

static int table_init(det_table *t, size_t max_count, bool index_hosts,
                      void (*free_node)(det_node *))
{
    memset(t, 0, sizeof *t);
    t->buckets = calloc(DET_BUCKETS, sizeof *t->buckets);
    if (t->buckets == NULL)
        return FV_ERR_NOMEM;
    if (index_hosts) {
        t->host_index = calloc(DET_BUCKETS, sizeof *t->host_index);
        if (t->host_index == NULL)
            return FV_ERR_NOMEM;
    }
    t->max_count = max_count;
    t->free_node = free_node;
    return FV_OK;
}

static uint64_t table_hash(const det_engine *e, const det_key *key)
{
    uint8_t digest[crypto_shorthash_BYTES];
    crypto_shorthash(digest, (const unsigned char *)key, sizeof *key, e->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];
    return h;
}

/* Hash of the host part of a key: host_kind and host. */
static uint64_t host_hash(const det_engine *e, uint8_t kind, const uint8_t host[16])
{
    uint8_t text[17];
    uint8_t digest[crypto_shorthash_BYTES];
    text[0] = kind;
    memcpy(text + 1, host, 16);
    crypto_shorthash(digest, text, sizeof text, e->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];
    return h;
}

/* Set N's key, both hashes and generation before it enters a table. */
static void node_init(const det_engine *e, det_node *n, const det_key *key)
{
    n->key = *key;
    n->hash = table_hash(e, key);
    n->host_hash = host_hash(e, key->host_kind, key->host);
    n->generation = e->generation;
}

static det_node *table_find(const det_table *t, const det_key *key, uint64_t hash)
{
    for (det_node *n = t->buckets[hash & (DET_BUCKETS - 1)]; n != NULL; n = n->hash_next) {
        if (n->hash == hash && memcmp(&n->key, key, sizeof *key) == 0)
            return n;
    }
    return NULL;
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

static void table_touch(det_table *t, det_node *n)
{
    if (t->lru_newest == n)
        return;
    lru_unlink(t, n);
    lru_push_newest(t, n);
}

static void host_index_link(det_table *t, det_node *n)
{
    if (t->host_index == NULL)
        return;
    det_node **head = &t->host_index[n->host_hash & (DET_BUCKETS - 1)];
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
    det_node **link = &t->buckets[n->hash & (DET_BUCKETS - 1)];
    while (*link != NULL && *link != n)
        link = &(*link)->hash_next;
    if (*link == n)
        *link = n->hash_next;
    n->hash_next = NULL;
}

static void bucket_link(det_table *t, det_node *n)
{
    size_t b = n->hash & (DET_BUCKETS - 1);
    n->hash_next = t->buckets[b];
    t->buckets[b] = n;
}

static void table_remove(det_table *t, det_node *n)
{
    bucket_unlink(t, n);
    host_index_unlink(n);
    lru_unlink(t, n);
    t->count--;
    t->free_node(n);
}

/* Insert N (key and hash set, not yet in the table), evicting the least
 * recently used entry first when the table is full. */
static void table_insert(det_table *t, det_node *n)
{
    if (t->count >= t->max_count && t->lru_oldest != NULL)
        table_remove(t, t->lru_oldest);

    bucket_link(t, n);
    host_index_link(t, n);
    lru_push_newest(t, n);
    t->count++;
}

/* Give node N (in table T) the host NEW_HOST and re-hash it, keeping its
 * place in the LRU list. The caller checked that no node has the new key. */
static void table_move_host(const det_engine *e, det_table *t, det_node *n,
                            const uint8_t new_host[16])
{
    bucket_unlink(t, n);
    host_index_unlink(n);
    det_key key = n->key;
    memcpy(key.host, new_host, sizeof key.host);
    node_init(e, n, &key);
    bucket_link(t, n);
    host_index_link(t, n);
}

static void table_clear(det_table *t)
{
    while (t->lru_oldest != NULL)
        table_remove(t, t->lru_oldest);
}

static void table_free(det_table *t)
{
    if (t->buckets == NULL)
        return;
    table_clear(t);
    free(t->buckets);
    t->buckets = NULL;
    free(t->host_index);
    t->host_index = NULL;
}

static void free_pair(det_node *n)
{
    det_pair *p = (det_pair *)n;
    free(p->beats);
    free(p);
}

static void free_host(det_node *n)
{
    det_host *h = (det_host *)n;
    free(h->bytes_out);
    free(h);
}

static void free_plain(det_node *n)
{
    free(n);
}

/* ---------------------------------------------------------------------- */
/* Engine                                                                  */
/* ---------------------------------------------------------------------- */

static int check_config(const pol_detect *c)
{
    if (c->beacon_enabled) {
        if (c->beacon_min_connections < 3 || c->beacon_min_connections > DET_BEACON_WINDOW) {
            fv_error("detect: beacon_min_connections %u is out of range; use 3 to %d",
                     (unsigned)c->beacon_min_connections, DET_BEACON_WINDOW);
            return FV_ERR_INVALID;
        }
        if (!(c->beacon_max_jitter > 0.0 && c->beacon_max_jitter < 1.0)) {
            fv_error(
                "detect: beacon_max_jitter %g is out of range; use a value above 0 and below 1",
                c->beacon_max_jitter);
            return FV_ERR_INVALID;
        }
    }
    if (c->exfil_enabled) {
        if (!(c->exfil_ratio >= 1.0)) {
            fv_error("detect: exfil_ratio %g is out of range; use 1 or more", c->exfil_ratio);
            return FV_ERR_INVALID;
        }
        if (c->exfil_min_history < 1 || c->exfil_min_history > DET_EXFIL_WINDOW) {
            fv_error("detect: exfil_min_history %u is out of range; use 1 to %d",
                     (unsigned)c->exfil_min_history, DET_EXFIL_WINDOW);
            return FV_ERR_INVALID;
        }
    }
    return FV_OK;
}

int det_engine_create(const pol_detect *config, det_engine **out)
{
    int rc = FV_OK;
    det_engine *e = NULL;

    if (out == NULL || config == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    rc = check_config(config);
    if (rc != FV_OK)
        goto out;
    if (sodium_init() < 0) {
        rc = FV_ERR_CRYPTO;
        goto out;
    }

    e = calloc(1, sizeof *e);
    if (e == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    e->config = *config;
    crypto_shorthash_keygen(e->hash_key);

    rc = table_init(&e->pairs, DET_MAX_PAIRS, true, free_pair);
    if (rc != FV_OK)
        goto out;
    rc = table_init(&e->hosts, DET_MAX_HOSTS, false, free_host);
    if (rc != FV_OK)
        goto out;
    rc = table_init(&e->alerted, DET_MAX_ALERTED, true, free_plain);
    if (rc != FV_OK)
        goto out;
    e->pending = calloc(DET_MAX_PENDING, sizeof *e->pending);
    e->pending_generation = calloc(DET_MAX_PENDING, sizeof *e->pending_generation);
    if (e->pending == NULL || e->pending_generation == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }

    *out = e;
    e = NULL;
out:
    det_engine_destroy(&e);
    return rc;
}

void det_engine_destroy(det_engine **engine)
{
    if (engine == NULL || *engine == NULL)
        return;
    det_engine *e = *engine;
    table_free(&e->pairs);
    table_free(&e->hosts);
    table_free(&e->alerted);
    free(e->pending);
    free(e->pending_generation);
    sodium_memzero(e->hash_key, sizeof e->hash_key);
    free(e);
    *engine = NULL;
}

void det_engine_reset_alerts(det_engine *engine)
{
    if (engine == NULL)
        return;
    table_clear(&engine->alerted);
    for (det_node *n = engine->pairs.lru_newest; n != NULL; n = n->lru_older)
        ((det_pair *)n)->dirty = true;
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

static void make_key(det_key *key, int detector, const fv_endpoint *host, const fv_endpoint *peer,
                     uint16_t peer_port, uint8_t proto)
{
    memset(key, 0, sizeof *key);
    key->detector = (uint8_t)detector;
    key->host_kind = host->kind;
    memcpy(key->host, host->addr, sizeof key->host);
    if (peer != NULL) {
        key->peer_kind = peer->kind;
        memcpy(key->peer, peer->addr, sizeof key->peer);
    }
    key->peer_port = peer_port;
    key->proto = proto;
}

/* Return true if (DETECTOR, HOST, PEER, PORT) alerted before; otherwise
 * record it and return false. A failed allocation returns false without
 * recording, so the alert may repeat rather than be lost. */
static bool already_alerted(det_engine *e, int detector, const fv_endpoint *host,
                            const fv_endpoint *peer, uint16_t peer_port)
{
    det_key key;
    make_key(&key, detector, host, peer, peer_port, 0);
    uint64_t hash = table_hash(e, &key);
    det_node *n = table_find(&e->alerted, &key, hash);
    if (n != NULL) {
        table_touch(&e->alerted, n);
        return true;
    }
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return false;
    node_init(e, n, &key);
    table_insert(&e->alerted, n);
    return false;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of V[0..n) (n >= 1); sorts V in place. */
static double median_double(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_double);
    if (n % 2 == 1)
        return v[n / 2];
    return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static double median_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_u64);
    if (n % 2 == 1)
        return (double)v[n / 2];
    return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

static double clamp01(double x)
{
    if (x < 0.0)
        return 0.0;
    if (x > 1.0)
        return 1.0;
    return x;
}

static const char *proto_name(uint8_t proto, char buf[8])
{
    if (proto == 6)
        return "tcp";
    if (proto == 17)
        return "udp";
    snprintf(buf, 8, "ip%u", (unsigned)proto);
    return buf;
}

/* Write "ADDR:PORT/PROTO" (IPv6 in brackets) into OUT. */
static void format_peer(const fv_endpoint *peer, uint16_t port, uint8_t proto, char *out,
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

/* Write a byte count in decimal units ("512 B", "4.2 KB", "120.0 MB"). */
static void format_bytes(double bytes, char *out, size_t out_len)
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

/* ---------------------------------------------------------------------- */
/* Observation                                                             */
/* ---------------------------------------------------------------------- */

static det_pair *pair_get(det_engine *e, const fv_endpoint *host, const fv_endpoint *peer,
                          uint16_t peer_port, uint8_t proto)
{
    det_key key;
    make_key(&key, 0, host, peer, peer_port, proto);
    uint64_t hash = table_hash(e, &key);
    det_node *n = table_find(&e->pairs, &key, hash);
    if (n != NULL) {
        table_touch(&e->pairs, n);
        return (det_pair *)n;
    }

    det_pair *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    node_init(e, &p->node, &key);
    p->host = *host;
    p->peer = *peer;
    p->peer_port = peer_port;
    p->proto = proto;
    table_insert(&e->pairs, &p->node);
    return p;
}

static det_host *host_get(det_engine *e, const fv_endpoint *host)
{
    det_key key;
    make_key(&key, 0, host, NULL, 0, 0);
    uint64_t hash = table_hash(e, &key);
    det_node *n = table_find(&e->hosts, &key, hash);
    if (n != NULL) {
        table_touch(&e->hosts, n);
        return (det_host *)n;
    }

    det_host *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    node_init(e, &h->node, &key);
    table_insert(&e->hosts, &h->node);
    return h;
}

/* Append a beat, dropping the oldest when the window is full. Arrays grow
 * on demand because most pairs see only a few flows. */
static bool pair_append(det_pair *p, const det_beat *beat)
{
    if (p->count == DET_BEACON_WINDOW) {
        memmove(&p->beats[0], &p->beats[1], (p->count - 1) * sizeof p->beats[0]);
        p->count--;
    } else if (p->count == p->capacity) {
        size_t cap = p->capacity == 0 ? 4 : p->capacity * 2;
        if (cap > DET_BEACON_WINDOW)
            cap = DET_BEACON_WINDOW;
        det_beat *grown = realloc(p->beats, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        p->beats = grown;
        p->capacity = cap;
    }
    p->beats[p->count++] = *beat;
    p->dirty = true;
    return true;
}

static bool host_append(det_host *h, uint64_t bytes_out)
{
    if (h->count == DET_EXFIL_WINDOW) {
        memmove(&h->bytes_out[0], &h->bytes_out[1], (h->count - 1) * sizeof h->bytes_out[0]);
        h->count--;
    } else if (h->count == h->capacity) {
        size_t cap = h->capacity == 0 ? 8 : h->capacity * 2;
        if (cap > DET_EXFIL_WINDOW)
            cap = DET_EXFIL_WINDOW;
        uint64_t *grown = realloc(h->bytes_out, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        h->bytes_out = grown;
        h->capacity = cap;
    }
    h->bytes_out[h->count++] = bytes_out;
    return true;
}

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_PSH 0x08

/* True for a TCP record whose flags are known and contain no SYN: a
 * continuation of a longer connection or the tail of a closed one, not a
 * new connection. Flags 0 means unknown, and the record counts. */
static bool tcp_without_start(const fv_flow_record *f)
{
    uint16_t flags = f->tcp_flags_fwd | f->tcp_flags_rev;
    return f->proto == 6 && flags != 0 && (flags & TCP_FLAG_SYN) == 0;
}

/* True for at most two TCP packets without SYN or PSH, such as the last
 * ACK after both FINs when the capture already emitted the connection.
 * They carry no data, so they would only drag a host's baseline down. */
static bool tcp_remnant(const fv_flow_record *f)
{
    uint16_t flags = f->tcp_flags_fwd | f->tcp_flags_rev;
    return tcp_without_start(f) && (flags & TCP_FLAG_PSH) == 0 && f->pkts_fwd + f->pkts_rev <= 2;
}

/* An outbound flow seen from the internal host's side. */
typedef struct det_outbound {
    const fv_endpoint *host, *peer;
    uint16_t peer_port;
    uint8_t proto;
    uint64_t first_us, last_us;
    uint64_t bytes_out;
} det_outbound;

/* Write the summary of exfil alert A from its endpoints and evidence, so
 * det_rekey can write it again with the host's new pseudonym. */
static void exfil_summary(fv_alert_record *a)
{
    char host_text[FV_ENDPOINT_TEXT_MAX], peer_text[96], sent[24], usual[24];
    fv_endpoint_format(&a->host, host_text);
    format_peer(&a->peer, a->peer_port, a->proto, peer_text, sizeof peer_text);
    format_bytes(a->evidence[DET_EV_EXFIL_BYTES_OUT], sent, sizeof sent);
    format_bytes(a->evidence[DET_EV_EXFIL_BASELINE_MEDIAN_BYTES], usual, sizeof usual);
    /* A summary cut short at 159 characters is still readable. */
    int n = snprintf(a->summary, sizeof a->summary,
                     "%s sent %s to %s in one flow, %.0f times its median of %s over %.0f "
                     "earlier flows",
                     host_text, sent, peer_text, a->evidence[DET_EV_EXFIL_RATIO], usual,
                     a->evidence[DET_EV_EXFIL_HISTORY_FLOWS]);
    if (n < 0)
        a->summary[0] = '\0';
}

static void queue_exfil(det_engine *e, const det_outbound *ob, double baseline, size_t history)
{
    if (e->pending_count >= DET_MAX_PENDING) {
        e->dropped_observations++;
        return;
    }
    if (already_alerted(e, FV_DET_EXFIL, ob->host, ob->peer, ob->peer_port))
        return;

    const pol_detect *c = &e->config;
    double bytes = (double)ob->bytes_out;
    double ratio = bytes / (baseline >= 1.0 ? baseline : 1.0);
    fv_alert_record *a = &e->pending[e->pending_count++];
    memset(a, 0, sizeof *a);
    a->first_us = ob->first_us;
    a->last_us = ob->last_us;
    a->detector = FV_DET_EXFIL;
    a->severity = bytes > DET_EXFIL_CRITICAL_FLOOR_MULTIPLE * (double)c->exfil_min_bytes
                      ? FV_SEV_CRITICAL
                      : FV_SEV_HIGH;
    /* 0.5 at the configured ratio, 1.0 at a hundred times it. */
    a->score = clamp01(0.5 + 0.25 * log10(ratio / c->exfil_ratio));
    a->host = *ob->host;
    a->peer = *ob->peer;
    a->peer_port = ob->peer_port;
    a->proto = ob->proto;
    /* The alert rests on the one large flow; the history is evidence. */
    a->flow_count = 1;
    a->evidence_count = DET_EV_EXFIL_COUNT;
    a->evidence[DET_EV_EXFIL_BYTES_OUT] = bytes;
    a->evidence[DET_EV_EXFIL_BASELINE_MEDIAN_BYTES] = baseline;
    a->evidence[DET_EV_EXFIL_RATIO] = ratio;
    a->evidence[DET_EV_EXFIL_DURATION_S] =
        ob->last_us > ob->first_us ? (double)(ob->last_us - ob->first_us) / 1e6 : 0.0;
    a->evidence[DET_EV_EXFIL_HISTORY_FLOWS] = (double)history;
    e->pending_generation[e->pending_count - 1] = e->generation;
    exfil_summary(a);
}

/*
 * Check the flow against the host's history before adding it, so a flow
 * is never compared with a baseline that contains itself. The median is
 * computed only for flows above the floor, which keeps the common case
 * cheap.
 */
static void observe_exfil(det_engine *e, const det_outbound *ob)
{
    const pol_detect *c = &e->config;
    det_host *h = host_get(e, ob->host);
    if (h == NULL) {
        e->dropped_observations++;
        return;
    }

    if (h->count >= c->exfil_min_history && ob->bytes_out >= c->exfil_min_bytes) {
        uint64_t sorted[DET_EXFIL_WINDOW];
        memcpy(sorted, h->bytes_out, h->count * sizeof sorted[0]);
        double baseline = median_u64(sorted, h->count);
        if ((double)ob->bytes_out >= c->exfil_ratio * baseline)
            queue_exfil(e, ob, baseline, h->count);
    }

    if (!host_append(h, ob->bytes_out))
        e->dropped_observations++;
}

void det_observe_flow(det_engine *engine, const fv_flow_record *flow)
{
    if (engine == NULL || flow == NULL)
        return;

    /* Only traffic between an internal host and an external peer counts.
     * When the external side sent the first packet, swap so that "out"
     * still means from the host to the peer. */
    bool src_internal = fv_endpoint_is_internal(&flow->src);
    bool dst_internal = fv_endpoint_is_internal(&flow->dst);
    if (src_internal == dst_internal)
        return;

    det_outbound ob = {
        .proto = flow->proto,
        .first_us = flow->first_us,
        .last_us = flow->last_us,
    };
    if (src_internal) {
        ob.host = &flow->src;
        ob.peer = &flow->dst;
        ob.peer_port = flow->dport;
        ob.bytes_out = flow->bytes_fwd;
    } else {
        ob.host = &flow->dst;
        ob.peer = &flow->src;
        ob.peer_port = flow->sport;
        ob.bytes_out = flow->bytes_rev;
    }
    if (ob.peer->kind == FV_EP_NONE)
        return;

    if (engine->config.beacon_enabled && !tcp_without_start(flow)) {
        det_pair *p = pair_get(engine, ob.host, ob.peer, ob.peer_port, ob.proto);
        det_beat beat = {flow->first_us, flow->last_us, ob.bytes_out};
        if (p == NULL || !pair_append(p, &beat))
            engine->dropped_observations++;
    }
    if (engine->config.exfil_enabled && !tcp_remnant(flow))
        observe_exfil(engine, &ob);
}

/* ---------------------------------------------------------------------- */
/* Beacon analysis                                                         */
/* ---------------------------------------------------------------------- */

/*
 * Decide whether connection starts STARTS[0..n) (sorted ascending) are
 * periodic. Steps:
 * 1. Starts less than a second after the previous kept start are retries
 *    or parallel connections of one beat and are dropped.
 * 2. With m the median interval, an interval within beacon_max_jitter * m
 *    of 2m or 3m is a missed beat and is divided by 2 or 3. The window
 *    does not widen with the multiple, so random intervals rarely fold.
 *    When more than a third of the intervals would fold, the timing is
 *    not a beacon with a few missed beats, and nothing is folded.
 * 3. Dispersion is the median absolute deviation (MAD) of the folded
 *    intervals divided by their median. Both statistics ignore a minority
 *    of outliers, so a few late or extra connections do not hide a beacon.
 * 4. At least 80% of the folded intervals must lie within
 *    2 * beacon_max_jitter of the median. Uniform jitter whose MAD is
 *    exactly the limit spans that width. The check rejects random timing
 *    that passed step 3 by chance, and beacons with more than 20% of
 *    their intervals outside that width.
 * Return true if the pattern is regular enough to alert.
 */
static bool beacon_analyze(const det_engine *e, const uint64_t *starts, size_t n,
                           det_beacon_stats *st)
{
    const pol_detect *c = &e->config;
    double intervals[DET_BEACON_WINDOW];
    double deviations[DET_BEACON_WINDOW];
    memset(st, 0, sizeof *st);
    if (n == 0)
        return false;

    /* Step 1: merge retries. */
    size_t k = 0;
    uint64_t last = starts[0];
    for (size_t i = 1; i < n; i++) {
        if (starts[i] - last < DET_RETRY_MERGE_US)
            continue;
        intervals[k++] = (double)(starts[i] - last) / 1e6;
        last = starts[i];
    }
    st->beats = k + 1;
    st->span_s = (double)(last - starts[0]) / 1e6;
    if (st->beats < c->beacon_min_connections)
        return false;

    /* Step 2: fold missed beats. */
    double sorted[DET_BEACON_WINDOW];
    memcpy(sorted, intervals, k * sizeof sorted[0]);
    double m = median_double(sorted, k);
    if (m < (double)c->beacon_min_interval_s || m <= 0.0)
        return false;
    double multiples[DET_BEACON_WINDOW];
    size_t fold_count = 0;
    for (size_t i = 0; i < k; i++) {
        double multiple = round(intervals[i] / m);
        multiples[i] = 1.0;
        if (multiple < 2.0 || multiple > DET_FOLD_MAX_MULTIPLE)
            continue;
        if (fabs(intervals[i] - multiple * m) <= c->beacon_max_jitter * m) {
            multiples[i] = multiple;
            fold_count++;
        }
    }
    if (fold_count * DET_FOLD_MAX_SHARE_DIV <= k) {
        for (size_t i = 0; i < k; i++)
            intervals[i] /= multiples[i];
    }

    /* Step 3: median and MAD of the folded intervals. */
    memcpy(sorted, intervals, k * sizeof sorted[0]);
    st->median_s = median_double(sorted, k);
    for (size_t i = 0; i < k; i++)
        deviations[i] = fabs(intervals[i] - st->median_s);
    st->mad_s = median_double(deviations, k);
    st->dispersion = st->median_s > 0.0 ? st->mad_s / st->median_s : HUGE_VAL;
    if (st->dispersion > c->beacon_max_jitter)
        return false;

    /* Step 4: the MAD ignores the worst half of the intervals, so random
     * timing passes it by chance now and then. Also require most
     * intervals to lie near the median. */
    size_t near = 0;
    for (size_t i = 0; i < k; i++) {
        if (fabs(intervals[i] - st->median_s) <=
            DET_COVERAGE_WIDTH * c->beacon_max_jitter * st->median_s)
            near++;
    }
    return (double)near >= DET_COVERAGE_MIN_SHARE * (double)k;
}

/* Analyse pair P and fill *A if it beacons. Return true if A was filled. */
static bool beacon_check_pair(const det_engine *e, const det_pair *p, fv_alert_record *a)
{
    const pol_detect *c = &e->config;
    uint64_t starts[DET_BEACON_WINDOW];
    uint64_t first_us = UINT64_MAX, last_us = 0;
    double bytes_total = 0.0;

    for (size_t i = 0; i < p->count; i++) {
        starts[i] = p->beats[i].start_us;
        if (p->beats[i].start_us < first_us)
            first_us = p->beats[i].start_us;
        if (p->beats[i].end_us > last_us)
            last_us = p->beats[i].end_us;
        bytes_total += (double)p->beats[i].bytes_out;
    }
    qsort(starts, p->count, sizeof starts[0], compare_u64);

    det_beacon_stats st;
    if (!beacon_analyze(e, starts, p->count, &st))
        return false;

    memset(a, 0, sizeof *a);
    a->first_us = first_us;
    a->last_us = last_us > first_us ? last_us : first_us;
    a->detector = FV_DET_BEACON;
    a->severity = (st.span_s >= DET_BEACON_HIGH_SPAN_S && st.beats >= DET_BEACON_HIGH_BEATS)
                      ? FV_SEV_HIGH
                      : FV_SEV_MEDIUM;
    /* Half from regularity (1 at zero dispersion, 0 at the limit), half
     * from support (1 at 24 beats or more). */
    double regularity = 1.0 - st.dispersion / c->beacon_max_jitter;
    double support = (double)st.beats / 24.0;
    a->score = clamp01(0.5 * clamp01(regularity) + 0.5 * clamp01(support));
    a->host = p->host;
    a->peer = p->peer;
    a->peer_port = p->peer_port;
    a->proto = p->proto;
    a->flow_count = (uint32_t)p->count;
    a->evidence_count = DET_EV_BEACON_COUNT;
    a->evidence[DET_EV_BEACON_CONNECTIONS] = (double)p->count;
    a->evidence[DET_EV_BEACON_MEDIAN_INTERVAL_S] = st.median_s;
    a->evidence[DET_EV_BEACON_MAD_INTERVAL_S] = st.mad_s;
    a->evidence[DET_EV_BEACON_DISPERSION] = st.dispersion;
    a->evidence[DET_EV_BEACON_DURATION_S] = st.span_s;
    a->evidence[DET_EV_BEACON_MEAN_BYTES_OUT] = bytes_total / (double)p->count;

    char host_text[FV_ENDPOINT_TEXT_MAX], peer_text[96];
    fv_endpoint_format(&p->host, host_text);
    format_peer(&p->peer, p->peer_port, p->proto, peer_text, sizeof peer_text);
    int n = snprintf(a->summary, sizeof a->summary,
                     "%s contacted %s every %.0f s (%zu connections, dispersion %.2f)", host_text,
                     peer_text, st.median_s, p->count, st.dispersion);
    if (n < 0)
        a->summary[0] = '\0';
    return true;
}

size_t det_evaluate(det_engine *engine, uint64_t now_us, det_alert_fn fn, void *ctx)
{
    if (engine == NULL)
        return 0;
    size_t raised = 0;

    /* Exfil alerts were decided when their flows arrived. */
    for (size_t i = 0; i < engine->pending_count; i++) {
        fv_alert_record *a = &engine->pending[i];
        a->ts_us = now_us;
        if (fn != NULL)
            fn(ctx, a);
        raised++;
    }
    engine->pending_count = 0;

    /* Only pairs with new flows can change their verdict. */
    if (engine->config.beacon_enabled) {
        for (det_node *n = engine->pairs.lru_newest; n != NULL; n = n->lru_older) {
            det_pair *p = (det_pair *)n;
            if (!p->dirty)
                continue;
            p->dirty = false;
            if (p->count < engine->config.beacon_min_connections)
                continue;

            fv_alert_record a;
            if (!beacon_check_pair(engine, p, &a))
                continue;
            /* NOTE: an alert is never updated, so a beacon first raised as
             * medium stays medium after it has spanned an hour. */
            if (already_alerted(engine, FV_DET_BEACON, &p->host, &p->peer, p->peer_port))
                continue;
            a.ts_us = now_us;
            if (fn != NULL)
                fn(ctx, &a);
            raised++;
        }
    }

    if (engine->dropped_observations > 0) {
        fv_warning("detect: %llu flow observations were dropped (memory or alert queue full); "
                   "alerts may be missing",
                   (unsigned long long)engine->dropped_observations);
        engine->dropped_observations = 0;
    }
    return raised;
}

/* ---------------------------------------------------------------------- */
/* Re-keying across a key rotation                                         */
/* ---------------------------------------------------------------------- */

/*
 * Concatenate OLDER[0..older_n) and NEWER[0..newer_n) (ELEM bytes each)
 * and keep the last WINDOW elements in a new array. Return it (caller
 * frees) with its length in *OUT_N, or NULL when memory ran out.
 */
static void *window_merge(const void *older, size_t older_n, const void *newer, size_t newer_n,
                          size_t elem, size_t window, size_t *out_n)
{
    size_t total = older_n + newer_n;
    size_t keep = total < window ? total : window;
    uint8_t *merged = malloc(keep * elem);
    if (merged == NULL)
        return NULL;

    /* Skip the oldest elements that do not fit, first from OLDER. */
    size_t skip = total - keep;
    size_t from_older = older_n > skip ? older_n - skip : 0;
    size_t skip_newer = skip > older_n ? skip - older_n : 0;
    memcpy(merged, (const uint8_t *)older + (older_n - from_older) * elem, from_older * elem);
    memcpy(merged + from_older * elem, (const uint8_t *)newer + skip_newer * elem,
           (newer_n - skip_newer) * elem);
    *out_n = keep;
    return merged;
}

/* Move pair OLD_NODE to NEW_HOST, or merge its flows into the pair that
 * already has that key. */
static void rekey_pair(det_engine *e, det_node *old_node, const uint8_t new_host[16])
{
    det_pair *p = (det_pair *)old_node;
    det_key key = old_node->key;
    memcpy(key.host, new_host, sizeof key.host);
    det_pair *target = (det_pair *)table_find(&e->pairs, &key, table_hash(e, &key));

    if (target == p) {
        old_node->generation = e->generation;
        return;
    }
    if (target == NULL) {
        table_move_host(e, &e->pairs, old_node, new_host);
        memcpy(p->host.addr, new_host, sizeof p->host.addr);
        return;
    }
    size_t n = 0;
    det_beat *merged = window_merge(p->beats, p->count, target->beats, target->count,
                                    sizeof *merged, DET_BEACON_WINDOW, &n);
    if (merged == NULL) {
        e->dropped_observations++;
    } else {
        free(target->beats);
        target->beats = merged;
        target->count = n;
        target->capacity = n;
        target->dirty = true;
    }
    target->node.generation = e->generation;
    table_remove(&e->pairs, old_node);
}

static void rekey_host(det_engine *e, uint8_t kind, const uint8_t old_host[16],
                       const uint8_t new_host[16])
{
    det_key key;
    memset(&key, 0, sizeof key);
    key.host_kind = kind;
    memcpy(key.host, old_host, sizeof key.host);
    det_host *h = (det_host *)table_find(&e->hosts, &key, table_hash(e, &key));
    if (h == NULL)
        return;

    memcpy(key.host, new_host, sizeof key.host);
    det_host *target = (det_host *)table_find(&e->hosts, &key, table_hash(e, &key));
    if (target == h) {
        h->node.generation = e->generation;
        return;
    }
    if (target == NULL) {
        table_move_host(e, &e->hosts, &h->node, new_host);
        return;
    }
    size_t n = 0;
    uint64_t *merged = window_merge(h->bytes_out, h->count, target->bytes_out, target->count,
                                    sizeof *merged, DET_EXFIL_WINDOW, &n);
    if (merged == NULL) {
        e->dropped_observations++;
    } else {
        free(target->bytes_out);
        target->bytes_out = merged;
        target->count = n;
        target->capacity = n;
    }
    target->node.generation = e->generation;
    table_remove(&e->hosts, &h->node);
}

/* Move every entry of host OLD_HOST in T (a table with a host index) to
 * NEW_HOST. An alerted mark whose new key exists already is dropped. */
static void rekey_indexed(det_engine *e, det_table *t, uint8_t kind, const uint8_t old_host[16],
                          const uint8_t new_host[16])
{
    uint64_t old_hash = host_hash(e, kind, old_host);
    det_node *n = t->host_index[old_hash & (DET_BUCKETS - 1)];

    while (n != NULL) {
        det_node *next = n->host_next;
        bool match = n->host_hash == old_hash && n->key.host_kind == kind &&
                     memcmp(n->key.host, old_host, sizeof n->key.host) == 0;
        if (match) {
            if (t == &e->pairs) {
                rekey_pair(e, n, new_host);
            } else {
                det_key key = n->key;
                memcpy(key.host, new_host, sizeof key.host);
                det_node *target = table_find(t, &key, table_hash(e, &key));
                if (target == n) {
                    n->generation = e->generation;
                } else if (target != NULL) {
                    target->generation = e->generation;
                    table_remove(t, n);
                } else {
                    table_move_host(e, t, n, new_host);
                }
            }
        }
        n = next;
    }
}

void det_rekey(det_engine *engine, const uint8_t old_pseudonym[FV_PSEUDONYM_BYTES],
               const uint8_t new_pseudonym[FV_PSEUDONYM_BYTES], uint8_t kind)
{
    if (engine == NULL || old_pseudonym == NULL || new_pseudonym == NULL)
        return;

    rekey_indexed(engine, &engine->pairs, kind, old_pseudonym, new_pseudonym);
    rekey_host(engine, kind, old_pseudonym, new_pseudonym);
    rekey_indexed(engine, &engine->alerted, kind, old_pseudonym, new_pseudonym);

    for (size_t i = 0; i < engine->pending_count; i++) {
        fv_alert_record *a = &engine->pending[i];
        if (a->host.kind != kind || memcmp(a->host.addr, old_pseudonym, sizeof a->host.addr) != 0)
            continue;
        memcpy(a->host.addr, new_pseudonym, sizeof a->host.addr);
        exfil_summary(a);
        engine->pending_generation[i] = engine->generation;
    }
}

void det_rekey_begin(det_engine *engine)
{
    if (engine != NULL)
        engine->generation++;
}

/* Remove every node of T whose generation is not CURRENT. */
static size_t table_drop_stale(det_table *t, uint32_t current)
{
    size_t dropped = 0;
    det_node *n = t->lru_oldest;
    while (n != NULL) {
        det_node *newer = n->lru_newer;
        if (n->generation != current) {
            table_remove(t, n);
            dropped++;
        }
        n = newer;
    }
    return dropped;
}

size_t det_rekey_end(det_engine *engine)
{
    if (engine == NULL)
        return 0;
    uint32_t current = engine->generation;
    size_t dropped = table_drop_stale(&engine->pairs, current);
    dropped += table_drop_stale(&engine->hosts, current);
    dropped += table_drop_stale(&engine->alerted, current);

    size_t kept = 0;
    for (size_t i = 0; i < engine->pending_count; i++) {
        if (engine->pending_generation[i] != current) {
            dropped++;
            continue;
        }
        engine->pending[kept] = engine->pending[i];
        engine->pending_generation[kept] = current;
        kept++;
    }
    engine->pending_count = kept;
    return dropped;
}
