/*
 * det_beacon.c: the beacon and exfil detectors.
 *
 * Beacon: one entry per (host, peer address, peer port, protocol) keeps
 * the last DET_BEACON_WINDOW connection starts with bytes sent. A pair
 * must first pass a robust regularity gate (median and MAD of the
 * intervals, with retries merged and missed beats folded), then a
 * combined score in the manner of RITA: interval skew and dispersion,
 * bytes-sent skew and dispersion, connection count, spread over hours of
 * the day and duration of the pattern. Peers on detect.beacon.allow never
 * alert; a domain entry matches addresses the host received in DNS
 * answers for that domain (kept in a bounded table fed by observe_dns).
 *
 * Exfil: one entry per host keeps the bytes sent in its last
 * DET_EXFIL_WINDOW outbound flows; a flow above the floor and exfil_ratio
 * times the median of the earlier ones queues an alert.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "det_internal.h"
#include "det_util.h"
#include "detect.h"

#define DET_MAX_PAIRS 65536
#define DET_MAX_HOSTS 65536
#define DET_MAX_RESOLVED 65536      /* (host, address from a DNS answer) of allowed domains */
#define DET_MAX_PENDING 4096        /* exfil alerts waiting for the next evaluation */
#define DET_RETRY_MERGE_US 1000000u /* starts closer than this are one beat */
#define DET_FOLD_MAX_MULTIPLE 3     /* intervals up to 3x the median are folded */
#define DET_FOLD_MAX_SHARE_DIV 3    /* fold only if at most 1/3 of the intervals need it */
#define DET_COVERAGE_WIDTH 2.0      /* "near the median": within 2 * max_jitter of it */
#define DET_COVERAGE_MIN_SHARE 0.8  /* share of intervals that must be near the median */
#define DET_BEACON_FULL_COUNT 24.0  /* connections that give the full count score */
#define DET_SIZE_MAD_FLOOR 32.0     /* bytes: MAD below this is "constant size" */
#define DET_BEACON_HIGH_SPAN_S 3600.0
#define DET_BEACON_HIGH_BEATS 12
#define DET_EXFIL_CRITICAL_FLOOR_MULTIPLE 10.0

/* ---------------------------------------------------------------------- */
/* Beacon state                                                            */
/* ---------------------------------------------------------------------- */

typedef struct det_beat {
    uint64_t start_us, end_us;
    uint64_t bytes_out;
} det_beat;

/* Beats kept inside the pair entry before the array moves to the heap.
 * Most pairs see one or two flows, so a flood of new pairs calls no
 * allocator. */
#define DET_BEACON_INLINE_BEATS 2

/* The host's pseudonym is node.key.host, which a rekey rewrites; the
 * other fields of host (kind, zone) stay. */
typedef struct det_pair {
    det_node node;
    fv_endpoint host, peer;
    uint16_t peer_port;
    uint8_t proto;
    bool dirty;             /* flows arrived since the last evaluation */
    size_t count, capacity; /* beats[0..count), oldest first by arrival */
    det_beat *beats;        /* NULL, inline_beats, or a heap array */
    det_beat inline_beats[DET_BEACON_INLINE_BEATS];
    /* Over the pair's whole life, beyond the window: a fast beacon fills
     * the window in minutes, but its duration counts from its first beat. */
    uint64_t first_start_us;
    uint64_t total_beats;
} det_pair;

/* An address from a DNS answer for a domain on the allow-list, per host. */
typedef struct det_resolved {
    det_node node;
    uint64_t allow_mask; /* bit i: the name matched beacon_allow[i] */
} det_resolved;

typedef struct det_beacon {
    pol_detect config;
    det_table pairs;
    det_table resolved;
    bool any_domain_allow;
    uint64_t dropped;
} det_beacon;

typedef struct det_beacon_stats {
    size_t beats; /* starts left after merging retries */
    double median_s, mad_s, dispersion;
    double span_s;        /* duration of the pattern, see beacon_check_pair */
    double window_span_s; /* first to last start in the window */
    double timing_score, size_score, count_score, hours_score, duration_score;
    double score;
} det_beacon_stats;

static const char *const det_beacon_evidence_names[DET_EV_BEACON_COUNT] = {
    "connections", "median_interval_s", "mad_interval_s", "dispersion",
    "duration_s",  "mean_bytes_out",    "timing_score",   "size_score",
};

/* Free a heap beat array; the inline one goes with the entry. Entries
 * never move in the table's slab, so beats may point into the entry. */
static void pair_free_beats(det_pair *p)
{
    if (p->beats != p->inline_beats)
        free(p->beats);
}

static void free_pair(det_node *n)
{
    pair_free_beats((det_pair *)n);
}

static bool beacon_enabled(const pol_detect *c)
{
    return c->beacon_enabled;
}

static void beacon_destroy(void *state)
{
    det_beacon *b = state;
    if (b == NULL)
        return;
    det_table_free(&b->pairs);
    det_table_free(&b->resolved);
    free(b);
}

static void *beacon_create(const pol_detect *config)
{
    det_beacon *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->config = *config;
    if (det_table_init(&b->pairs, DET_MAX_PAIRS, sizeof(det_pair), free_pair) != FV_OK ||
        det_table_init(&b->resolved, DET_MAX_RESOLVED, sizeof(det_resolved), NULL) != FV_OK) {
        beacon_destroy(b);
        return NULL;
    }
    for (size_t i = 0; i < config->beacon_allow_count && i < POL_ALLOW_MAX; i++) {
        if (config->beacon_allow[i].domain[0] != '\0')
            b->any_domain_allow = true;
    }
    return b;
}

void det_beacon_mark_all_dirty(void *beacon_state)
{
    det_beacon *b = beacon_state;
    for (det_node *n = det_table_newest(&b->pairs); n != NULL; n = det_table_older(&b->pairs, n))
        ((det_pair *)n)->dirty = true;
}

/* ---------------------------------------------------------------------- */
/* Allow-list                                                              */
/* ---------------------------------------------------------------------- */

/* True if NAME equals SUFFIX or ends with "." SUFFIX, ignoring case and
 * one trailing dot of either. */
static bool name_under(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (s > 0 && suffix[s - 1] == '.')
        s--;
    if (s == 0 || s > n)
        return false;
    for (size_t i = 0; i < s; i++) {
        char a = name[n - s + i], c = suffix[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (a != c)
            return false;
    }
    return s == n || name[n - s - 1] == '.';
}

/* Bit mask of the domain entries of the allow-list that DNS record D's
 * question or CNAME targets fall under. */
static uint64_t allow_domain_mask(const det_beacon *b, const fv_dns_record *d)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < b->config.beacon_allow_count && i < 64; i++) {
        const char *domain = b->config.beacon_allow[i].domain;
        if (domain[0] == '\0')
            continue;
        bool hit = name_under(d->qname, domain);
        for (size_t c = 0; !hit && c < d->cname_count && c < FV_DNS_CNAMES_MAX; c++)
            hit = name_under(d->cnames[c], domain);
        if (hit)
            mask |= (uint64_t)1 << i;
    }
    return mask;
}

static void resolved_note(det_beacon *b, const fv_endpoint *client, const fv_dns_addr *a,
                          uint64_t mask)
{
    fv_endpoint peer;
    memset(&peer, 0, sizeof peer);
    peer.kind = a->kind;
    memcpy(peer.addr, a->addr, sizeof peer.addr);
    det_key key;
    det_key_make(&key, 0, client, &peer, 0, 0);
    det_resolved *r = (det_resolved *)det_table_get(&b->resolved, &key);
    if (r == NULL) {
        r = (det_resolved *)det_table_alloc(&b->resolved);
        if (r == NULL) {
            b->dropped++;
            return;
        }
        det_table_insert(&b->resolved, &r->node, &key);
    }
    r->allow_mask |= mask;
}

static void beacon_observe_dns(void *state, const fv_dns_record *d)
{
    det_beacon *b = state;
    if (!b->any_domain_allow || !d->is_response || d->rcode != 0)
        return;
    if (!fv_endpoint_is_internal(&d->client))
        return;
    uint64_t mask = allow_domain_mask(b, d);
    if (mask == 0)
        return;
    for (size_t i = 0; i < d->answers_a_count && i < FV_DNS_ADDRS_MAX; i++)
        resolved_note(b, &d->client, &d->answers_a[i], mask);
    for (size_t i = 0; i < d->answers_aaaa_count && i < FV_DNS_ADDRS_MAX; i++)
        resolved_note(b, &d->client, &d->answers_aaaa[i], mask);
}

/* True if the peer's kept address lies in the allow entry's network.
 * Pseudonymized or truncated peers never match an address entry. */
static bool allow_address_match(const pol_allow_dest *a, const fv_endpoint *peer)
{
    size_t len;
    if (a->family == 4 && peer->kind == FV_EP_IPV4)
        len = 4;
    else if (a->family == 6 && peer->kind == FV_EP_IPV6)
        len = 16;
    else
        return false;
    unsigned bits = a->prefix_len;
    if (bits > len * 8)
        bits = (unsigned)(len * 8);
    size_t whole = bits / 8;
    if (memcmp(a->addr, peer->addr, whole) != 0)
        return false;
    unsigned rest = bits % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a->addr[whole] & mask) == (peer->addr[whole] & mask);
}

/* True if the pair's peer is on detect.beacon.allow. */
static bool beacon_allowed(det_beacon *b, const det_pair *p)
{
    uint64_t resolved_mask = 0;
    bool resolved_looked_up = false;
    for (size_t i = 0; i < b->config.beacon_allow_count && i < POL_ALLOW_MAX; i++) {
        const pol_allow_dest *a = &b->config.beacon_allow[i];
        if (a->port != 0 && a->port != p->peer_port)
            continue;
        if (a->proto != 0 && a->proto != p->proto)
            continue;
        if (a->family != 0 && !allow_address_match(a, &p->peer))
            continue;
        if (a->domain[0] != '\0') {
            if (i >= 64)
                continue;
            if (!resolved_looked_up) {
                det_key key;
                det_key_make(&key, 0, NULL, &p->peer, 0, 0);
                key.host_kind = p->node.key.host_kind;
                memcpy(key.host, p->node.key.host, sizeof key.host);
                det_resolved *r = (det_resolved *)det_table_get(&b->resolved, &key);
                resolved_mask = r != NULL ? r->allow_mask : 0;
                resolved_looked_up = true;
            }
            if ((resolved_mask & ((uint64_t)1 << i)) == 0)
                continue;
        }
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* Beacon observation                                                      */
/* ---------------------------------------------------------------------- */

static det_pair *pair_get(det_beacon *b, const det_outbound *ob)
{
    det_key key;
    det_key_make(&key, 0, ob->host, ob->peer, ob->peer_port, ob->proto);
    det_pair *p = (det_pair *)det_table_get(&b->pairs, &key);
    if (p != NULL)
        return p;
    p = (det_pair *)det_table_alloc(&b->pairs);
    if (p == NULL)
        return NULL;
    p->host = *ob->host;
    p->peer = *ob->peer;
    p->peer_port = ob->peer_port;
    p->proto = ob->proto;
    det_table_insert(&b->pairs, &p->node, &key);
    return p;
}

/* Append a beat, dropping the oldest when the window is full. Arrays grow
 * on demand because most pairs see only a few flows. */
static bool pair_append(det_pair *p, const det_beat *beat)
{
    if (p->count == DET_BEACON_WINDOW) {
        memmove(&p->beats[0], &p->beats[1], (p->count - 1) * sizeof p->beats[0]);
        p->count--;
    } else if (p->capacity == 0) {
        /* A merge of two empty windows may have left a heap array. */
        pair_free_beats(p);
        p->beats = p->inline_beats;
        p->capacity = DET_BEACON_INLINE_BEATS;
    } else if (p->count == p->capacity) {
        size_t cap = p->capacity * 2;
        if (cap > DET_BEACON_WINDOW)
            cap = DET_BEACON_WINDOW;
        det_beat *grown;
        if (p->beats == p->inline_beats) {
            grown = malloc(cap * sizeof *grown);
            if (grown != NULL)
                memcpy(grown, p->inline_beats, p->count * sizeof *grown);
        } else {
            grown = realloc(p->beats, cap * sizeof *grown);
        }
        if (grown == NULL)
            return false;
        p->beats = grown;
        p->capacity = cap;
    }
    p->beats[p->count++] = *beat;
    p->dirty = true;
    if (p->total_beats == 0 || beat->start_us < p->first_start_us)
        p->first_start_us = beat->start_us;
    p->total_beats++;
    return true;
}

static void beacon_prefetch_flow(const void *state, const fv_flow_record *flow)
{
    const det_beacon *b = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_without_start(flow) || flow->continued)
        return;
    det_key key;
    det_key_make(&key, 0, ob.host, ob.peer, ob.peer_port, ob.proto);
    det_table_prefetch(&b->pairs, &key);
}

static void beacon_observe_flow(void *state, const fv_flow_record *flow)
{
    det_beacon *b = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_without_start(flow) || flow->continued)
        return;
    det_pair *p = pair_get(b, &ob);
    det_beat beat = {flow->first_us, flow->last_us, ob.bytes_out};
    if (p == NULL || !pair_append(p, &beat))
        b->dropped++;
}

/* ---------------------------------------------------------------------- */
/* Beacon analysis                                                         */
/* ---------------------------------------------------------------------- */

/* Score 0..1 of a sample's regularity: 1 - |Bowley skew| and
 * 1 - MAD / SCALE, averaged. SORTED is V sorted ascending. */
static double regularity_score(const double *sorted, size_t n, double mad, double scale)
{
    double skew_score = 1.0 - fabs(det_bowley_skew(sorted, n));
    double mad_score = scale > 0.0 ? 1.0 - mad / scale : 0.0;
    return (det_clamp01(skew_score) + det_clamp01(mad_score)) / 2.0;
}

/*
 * Gate: decide whether connection starts STARTS[0..n) (sorted ascending)
 * are periodic. Steps:
 * 1. Starts less than a second after the previous kept start are retries
 *    or parallel connections of one beat and are dropped.
 * 2. With m the median interval, an interval within beacon_max_jitter * m
 *    of 2m or 3m is a missed beat and is divided by 2 or 3. When more
 *    than a third of the intervals would fold, nothing is folded.
 * 3. Dispersion, the MAD of the folded intervals over their median, must
 *    not exceed beacon_max_jitter.
 * 4. At least 80% of the folded intervals must lie within
 *    2 * beacon_max_jitter of the median, which rejects random timing
 *    that passed step 3 by chance.
 * INTERVALS receives the folded intervals (n - 1 values at most) and
 * *K their number. Return true if the timing passes.
 */
static bool beacon_gate(const pol_detect *c, const uint64_t *starts, size_t n,
                        det_beacon_stats *st, double *intervals, size_t *k_out)
{
    double reordered[DET_BEACON_WINDOW];
    double scratch[DET_BEACON_WINDOW];
    *k_out = 0;
    if (n == 0)
        return false;

    size_t k = 0;
    uint64_t last = starts[0];
    for (size_t i = 1; i < n; i++) {
        if (starts[i] - last < DET_RETRY_MERGE_US)
            continue;
        intervals[k++] = (double)(starts[i] - last) / 1e6;
        last = starts[i];
    }
    *k_out = k;
    st->beats = k + 1;
    st->span_s = (double)(last - starts[0]) / 1e6;
    st->window_span_s = st->span_s;
    if (st->beats < c->beacon_min_connections || k == 0)
        return false;

    memcpy(reordered, intervals, k * sizeof reordered[0]);
    double m = det_median_select(reordered, k);
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

    memcpy(reordered, intervals, k * sizeof reordered[0]);
    st->median_s = det_median_select(reordered, k);
    st->mad_s = det_mad(intervals, k, st->median_s, scratch);
    st->dispersion = st->median_s > 0.0 ? st->mad_s / st->median_s : HUGE_VAL;
    if (st->dispersion > c->beacon_max_jitter)
        return false;

    size_t near = 0;
    for (size_t i = 0; i < k; i++) {
        if (fabs(intervals[i] - st->median_s) <=
            DET_COVERAGE_WIDTH * c->beacon_max_jitter * st->median_s)
            near++;
    }
    return (double)near >= DET_COVERAGE_MIN_SHARE * (double)k;
}

/* Fill the RITA-style scores of ST from the pair's intervals, sizes and
 * start times. */
static void beacon_score(const pol_detect *c, const det_pair *p, const uint64_t *starts,
                         const double *intervals, size_t k, det_beacon_stats *st)
{
    double sorted[DET_BEACON_WINDOW];
    double scratch[DET_BEACON_WINDOW];

    /* Timing: skew and dispersion of the folded intervals, and count. */
    memcpy(sorted, intervals, k * sizeof sorted[0]);
    det_median(sorted, k);
    double timing = regularity_score(sorted, k, st->mad_s, st->median_s);
    st->count_score = det_clamp01((double)st->beats / DET_BEACON_FULL_COUNT);
    st->timing_score = (2.0 * timing + st->count_score) / 3.0;

    /* Size: skew and dispersion of bytes sent per connection. Command and
     * control check-ins send nearly the same request each time. */
    for (size_t i = 0; i < p->count; i++)
        sorted[i] = (double)p->beats[i].bytes_out;
    double size_median = det_median(sorted, p->count);
    double size_mad = det_mad(sorted, p->count, size_median, scratch);
    double scale = size_median > DET_SIZE_MAD_FLOOR ? size_median : DET_SIZE_MAD_FLOOR;
    st->size_score = regularity_score(sorted, p->count, size_mad, scale);

    /* Hours of the day: a beacon runs around the clock, so of the hours
     * its span could cover, most hold a connection. */
    uint32_t hours_mask = 0;
    for (size_t i = 0; i < p->count; i++)
        hours_mask |= (uint32_t)1 << ((starts[i] / 3600000000ull) % 24u);
    unsigned covered = 0;
    for (unsigned h = 0; h < 24; h++)
        covered += (hours_mask >> h) & 1u;
    double span_hours = ceil(st->window_span_s / 3600.0);
    double expected = span_hours < 1.0 ? 1.0 : span_hours;
    if (expected > 24.0)
        expected = 24.0;
    if (expected > (double)st->beats)
        expected = (double)st->beats;
    st->hours_score = det_clamp01((double)covered / expected);

    /* Duration of the pattern against the required minimum. */
    st->duration_score = c->beacon_min_duration_s == 0
                             ? 1.0
                             : det_clamp01(st->span_s / (double)c->beacon_min_duration_s);

    st->score = 0.4 * st->timing_score + 0.2 * st->size_score + 0.2 * st->hours_score +
                0.2 * st->duration_score;
}

/* Analyse pair P and fill *A if it beacons. Return true if A was filled. */
static bool beacon_check_pair(det_beacon *b, const det_pair *p, fv_alert_record *a)
{
    const pol_detect *c = &b->config;
    uint64_t starts[DET_BEACON_WINDOW];
    double intervals[DET_BEACON_WINDOW];
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
    /* qsort reads only the first p->count entries, which the loop above
     * wrote; cppcheck flags the call when the loop runs zero times. */
    // cppcheck-suppress uninitvar
    qsort(starts, p->count, sizeof starts[0], det_compare_u64);

    det_beacon_stats st;
    memset(&st, 0, sizeof st);
    size_t k = 0;
    fv_endpoint host = p->host;
    memcpy(host.addr, p->node.key.host, sizeof host.addr);
    if (!beacon_gate(c, starts, p->count, &st, intervals, &k))
        return false;
    /* The pattern's duration runs from the pair's first beat when the
     * beats before the window came at about the same rate: at most three
     * median intervals apart on average. */
    double life_s = (double)(starts[p->count - 1] - p->first_start_us) / 1e6;
    if (life_s > st.span_s && p->total_beats > 1 &&
        life_s / (double)(p->total_beats - 1) <= 3.0 * st.median_s) {
        st.span_s = life_s;
        first_us = p->first_start_us;
    }
    if (st.span_s < (double)c->beacon_min_duration_s)
        return false;
    beacon_score(c, p, starts, intervals, k, &st);
    if (st.score < c->beacon_min_score)
        return false;

    memset(a, 0, sizeof *a);
    a->first_us = first_us;
    a->last_us = last_us > first_us ? last_us : first_us;
    a->detector = FV_DET_BEACON;
    a->severity = (st.span_s >= DET_BEACON_HIGH_SPAN_S && st.beats >= DET_BEACON_HIGH_BEATS)
                      ? FV_SEV_HIGH
                      : FV_SEV_MEDIUM;
    a->score = det_clamp01(st.score);
    a->host = host;
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
    a->evidence[DET_EV_BEACON_SCORE_TIMING] = st.timing_score;
    a->evidence[DET_EV_BEACON_SCORE_SIZE] = st.size_score;

    char host_text[FV_ENDPOINT_TEXT_MAX], peer_text[96];
    det_format_host(&host, host_text);
    det_format_peer(&p->peer, p->peer_port, p->proto, peer_text, sizeof peer_text);
    int n = snprintf(a->summary, sizeof a->summary,
                     "%s contacted %s every %.0f s (%zu connections, dispersion %.2f, "
                     "score %.2f)",
                     host_text, peer_text, st.median_s, p->count, st.dispersion, st.score);
    if (n < 0)
        a->summary[0] = '\0';
    return true;
}

static void beacon_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    det_beacon *b = state;
    /* Only pairs with new flows can change their verdict. */
    for (det_node *n = det_table_newest(&b->pairs); n != NULL; n = det_table_older(&b->pairs, n)) {
        det_pair *p = (det_pair *)n;
        if (!p->dirty)
            continue;
        p->dirty = false;
        if (p->count < b->config.beacon_min_connections)
            continue;
        fv_alert_record a;
        if (!beacon_check_pair(b, p, &a))
            continue;
        if (beacon_allowed(b, p))
            continue;
        a.ts_us = now_us;
        emit(engine_ctx, &a);
    }
    if (b->dropped > 0) {
        fv_warning("detect: beacon lost %llu observations to a memory shortage; alerts may be "
                   "missing",
                   (unsigned long long)b->dropped);
        b->dropped = 0;
    }
}

/* ---------------------------------------------------------------------- */
/* Beacon re-keying                                                        */
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
    uint8_t *merged = malloc(keep * elem + 1);
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

static void merge_pair(det_node *target_node, det_node *old_node)
{
    det_pair *target = (det_pair *)target_node;
    det_pair *old = (det_pair *)old_node;
    size_t n = 0;
    det_beat *merged = window_merge(old->beats, old->count, target->beats, target->count,
                                    sizeof *merged, DET_BEACON_WINDOW, &n);
    if (merged == NULL)
        return;
    pair_free_beats(target);
    target->beats = merged;
    target->count = n;
    target->capacity = n;
    target->dirty = true;
    if (old->first_start_us < target->first_start_us)
        target->first_start_us = old->first_start_us;
    target->total_beats += old->total_beats;
}

static void merge_resolved(det_node *target, det_node *old)
{
    ((det_resolved *)target)->allow_mask |= ((det_resolved *)old)->allow_mask;
}

static void beacon_rekey_begin(void *state)
{
    det_beacon *b = state;
    det_table_rekey_begin(&b->pairs);
    det_table_rekey_begin(&b->resolved);
}

static void beacon_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                         uint8_t kind)
{
    det_beacon *b = state;
    det_table_rekey(&b->pairs, kind, old_pseudonym, new_pseudonym, merge_pair);
    det_table_rekey(&b->resolved, kind, old_pseudonym, new_pseudonym, merge_resolved);
}

static size_t beacon_rekey_end(void *state)
{
    det_beacon *b = state;
    return det_table_drop_stale(&b->pairs) + det_table_drop_stale(&b->resolved);
}

const det_module det_module_beacon = {
    .name = "beacon",
    .detector = FV_DET_BEACON,
    .enabled = beacon_enabled,
    .create = beacon_create,
    .destroy = beacon_destroy,
    .observe_flow = beacon_observe_flow,
    .observe_dns = beacon_observe_dns,
    .evaluate = beacon_evaluate,
    .rekey_begin = beacon_rekey_begin,
    .rekey = beacon_rekey,
    .rekey_end = beacon_rekey_end,
    .evidence_names = det_beacon_evidence_names,
    .evidence_count = DET_EV_BEACON_COUNT,
    .prefetch_flow = beacon_prefetch_flow,
};

/* ---------------------------------------------------------------------- */
/* Exfil                                                                   */
/* ---------------------------------------------------------------------- */

typedef struct det_exfil_host {
    det_node node;
    size_t count, capacity; /* bytes_out[0..count), oldest first */
    uint64_t *bytes_out;
} det_exfil_host;

typedef struct det_exfil {
    pol_detect config;
    det_table hosts;
    fv_alert_record *pending; /* DET_MAX_PENDING slots */
    uint32_t *pending_generation;
    size_t pending_count;
    uint64_t dropped;
} det_exfil;

static const char *const det_exfil_evidence_names[DET_EV_EXFIL_COUNT] = {
    "bytes_out", "baseline_median_bytes", "ratio", "duration_s", "history_flows",
};

static void free_exfil_host(det_node *n)
{
    det_exfil_host *h = (det_exfil_host *)n;
    free(h->bytes_out);
}

static bool exfil_enabled(const pol_detect *c)
{
    return c->exfil_enabled;
}

static void exfil_destroy(void *state)
{
    det_exfil *x = state;
    if (x == NULL)
        return;
    det_table_free(&x->hosts);
    free(x->pending);
    free(x->pending_generation);
    free(x);
}

static void *exfil_create(const pol_detect *config)
{
    det_exfil *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->config = *config;
    x->pending = calloc(DET_MAX_PENDING, sizeof *x->pending);
    x->pending_generation = calloc(DET_MAX_PENDING, sizeof *x->pending_generation);
    if (x->pending == NULL || x->pending_generation == NULL ||
        det_table_init(&x->hosts, DET_MAX_HOSTS, sizeof(det_exfil_host), free_exfil_host) !=
            FV_OK) {
        exfil_destroy(x);
        return NULL;
    }
    return x;
}

static bool exfil_host_append(det_exfil_host *h, uint64_t bytes_out)
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

/* Write the summary of exfil alert A from its endpoints and evidence, so
 * a rekey can write it again with the host's new pseudonym. */
static void exfil_summary(fv_alert_record *a)
{
    char host_text[FV_ENDPOINT_TEXT_MAX], peer_text[96], sent[24], usual[24];
    det_format_host(&a->host, host_text);
    det_format_peer(&a->peer, a->peer_port, a->proto, peer_text, sizeof peer_text);
    det_format_bytes(a->evidence[DET_EV_EXFIL_BYTES_OUT], sent, sizeof sent);
    det_format_bytes(a->evidence[DET_EV_EXFIL_BASELINE_MEDIAN_BYTES], usual, sizeof usual);
    /* A summary cut short at 159 characters is still readable. */
    int n = snprintf(a->summary, sizeof a->summary,
                     "%s sent %s to %s in one flow, %.0f times its median of %s over %.0f "
                     "earlier flows",
                     host_text, sent, peer_text, a->evidence[DET_EV_EXFIL_RATIO], usual,
                     a->evidence[DET_EV_EXFIL_HISTORY_FLOWS]);
    if (n < 0)
        a->summary[0] = '\0';
}

static void queue_exfil(det_exfil *x, const det_outbound *ob, double baseline, size_t history)
{
    if (x->pending_count >= DET_MAX_PENDING) {
        x->dropped++;
        return;
    }
    const pol_detect *c = &x->config;
    double bytes = (double)ob->bytes_out;
    double ratio = bytes / (baseline >= 1.0 ? baseline : 1.0);
    fv_alert_record *a = &x->pending[x->pending_count];
    x->pending_generation[x->pending_count] = x->hosts.generation;
    x->pending_count++;
    memset(a, 0, sizeof *a);
    a->first_us = ob->first_us;
    a->last_us = ob->last_us;
    a->detector = FV_DET_EXFIL;
    a->severity = bytes > DET_EXFIL_CRITICAL_FLOOR_MULTIPLE * (double)c->exfil_min_bytes
                      ? FV_SEV_CRITICAL
                      : FV_SEV_HIGH;
    /* 0.5 at the configured ratio, 1.0 at a hundred times it. */
    a->score = det_clamp01(0.5 + 0.25 * log10(ratio / c->exfil_ratio));
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
    exfil_summary(a);
}

/*
 * Check the flow against the host's history before adding it, so a flow
 * is never compared with a baseline that contains itself. The median is
 * computed only for flows above the floor, which keeps the common case
 * cheap.
 */
static void exfil_prefetch_flow(const void *state, const fv_flow_record *flow)
{
    const det_exfil *x = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow))
        return;
    det_key key;
    det_key_make(&key, 0, ob.host, NULL, 0, 0);
    det_table_prefetch(&x->hosts, &key);
}

static void exfil_observe_flow(void *state, const fv_flow_record *flow)
{
    det_exfil *x = state;
    const pol_detect *c = &x->config;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow))
        return;

    det_key key;
    det_key_make(&key, 0, ob.host, NULL, 0, 0);
    det_exfil_host *h = (det_exfil_host *)det_table_get(&x->hosts, &key);
    if (h == NULL) {
        h = (det_exfil_host *)det_table_alloc(&x->hosts);
        if (h == NULL) {
            x->dropped++;
            return;
        }
        det_table_insert(&x->hosts, &h->node, &key);
    }

    if (h->count >= c->exfil_min_history && ob.bytes_out >= c->exfil_min_bytes) {
        double history[DET_EXFIL_WINDOW];
        for (size_t i = 0; i < h->count; i++)
            history[i] = (double)h->bytes_out[i];
        double baseline = det_median_select(history, h->count);
        if ((double)ob.bytes_out >= c->exfil_ratio * baseline)
            queue_exfil(x, &ob, baseline, h->count);
    }
    if (!exfil_host_append(h, ob.bytes_out))
        x->dropped++;
}

static void exfil_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    det_exfil *x = state;
    for (size_t i = 0; i < x->pending_count; i++) {
        x->pending[i].ts_us = now_us;
        emit(engine_ctx, &x->pending[i]);
    }
    x->pending_count = 0;
    if (x->dropped > 0) {
        fv_warning("detect: exfil lost %llu observations (memory or alert queue full); alerts "
                   "may be missing",
                   (unsigned long long)x->dropped);
        x->dropped = 0;
    }
}

static void merge_exfil_host(det_node *target_node, det_node *old_node)
{
    det_exfil_host *target = (det_exfil_host *)target_node;
    det_exfil_host *old = (det_exfil_host *)old_node;
    size_t n = 0;
    uint64_t *merged = window_merge(old->bytes_out, old->count, target->bytes_out, target->count,
                                    sizeof *merged, DET_EXFIL_WINDOW, &n);
    if (merged == NULL)
        return;
    free(target->bytes_out);
    target->bytes_out = merged;
    target->count = n;
    target->capacity = n;
}

static void exfil_rekey_begin(void *state)
{
    det_exfil *x = state;
    det_table_rekey_begin(&x->hosts);
}

static void exfil_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                        uint8_t kind)
{
    det_exfil *x = state;
    det_table_rekey(&x->hosts, kind, old_pseudonym, new_pseudonym, merge_exfil_host);
    for (size_t i = 0; i < x->pending_count; i++) {
        fv_alert_record *a = &x->pending[i];
        if (a->host.kind != kind || memcmp(a->host.addr, old_pseudonym, sizeof a->host.addr) != 0)
            continue;
        memcpy(a->host.addr, new_pseudonym, sizeof a->host.addr);
        exfil_summary(a);
        x->pending_generation[i] = x->hosts.generation;
    }
}

static size_t exfil_rekey_end(void *state)
{
    det_exfil *x = state;
    size_t dropped = det_table_drop_stale(&x->hosts);
    size_t kept = 0;
    for (size_t i = 0; i < x->pending_count; i++) {
        if (x->pending_generation[i] != x->hosts.generation) {
            dropped++;
            continue;
        }
        x->pending[kept] = x->pending[i];
        x->pending_generation[kept] = x->pending_generation[i];
        kept++;
    }
    x->pending_count = kept;
    return dropped;
}

const det_module det_module_exfil = {
    .name = "exfil",
    .detector = FV_DET_EXFIL,
    .enabled = exfil_enabled,
    .create = exfil_create,
    .destroy = exfil_destroy,
    .observe_flow = exfil_observe_flow,
    .evaluate = exfil_evaluate,
    .rekey_begin = exfil_rekey_begin,
    .rekey = exfil_rekey,
    .rekey_end = exfil_rekey_end,
    .evidence_names = det_exfil_evidence_names,
    .evidence_count = DET_EV_EXFIL_COUNT,
    .prefetch_flow = exfil_prefetch_flow,
};
