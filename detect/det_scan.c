/*
 * det_scan.c: horizontal and vertical scans by the threshold random walk
 * (TRW) of Jung, Paxson, Berger and Balakrishnan, "Fast Portscan
 * Detection Using Sequential Hypothesis Testing", IEEE S&P 2004.
 *
 * Each first contact of a source is a Bernoulli trial: it succeeds with
 * probability theta0 for a benign source and theta1 for a scanner. The
 * walk multiplies the likelihood ratio by theta1/theta0 on a success and
 * by (1-theta1)/(1-theta0) on a failure (kept as a sum of logarithms).
 * With alpha the false-positive and beta the detection probability, the
 * source is a scanner when the ratio reaches eta1 = beta/alpha; when it
 * falls to eta0 = (1-beta)/(1-alpha) the source is judged benign and the
 * walk starts over. Two walks run side by side:
 * - horizontal, per source: a first contact is a destination the source
 *   has not contacted before;
 * - vertical, per (source, destination): a first contact is a port of
 *   that destination the source has not contacted before.
 * An alert also needs detect.scan.min_targets first contacts in the walk.
 *
 * Outcomes, from one flow record whose source is the initiator:
 * - TCP with a SYN from the source: success if the responder sent a
 *   SYN-ACK, failure on a reset or no answer. Records without a SYN
 *   continue an older connection and are skipped.
 * - UDP: success if anything came back and no ICMP error quoted the
 *   flow, failure otherwise. A record from a port below 1024 to a port
 *   at or above 1024 is skipped: it is most likely an answer whose
 *   request was not captured.
 * - ICMP echo request: success if answered (horizontal walk only).
 * Multicast and broadcast destinations, which never answer, are skipped.
 *
 * There is no time window, so a scan at one probe an hour is caught like
 * a fast one; state is bounded instead (DET_SCAN_MAX_* entries per
 * table, least recently seen evicted). A busy server is never the source
 * of the connections it answers, and its clients see successes, so
 * neither walk moves towards eta1 for them.
 */
#include "det_internal.h"
#include "det_lru.h"
#include "detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DET_SCAN_MAX_SOURCES 65536
#define DET_SCAN_MAX_PAIRS 262144    /* (source, destination) */
#define DET_SCAN_MAX_CONTACTS 262144 /* (source, destination, port, protocol) */
#define DET_SCAN_PORTS_KEPT 64       /* distinct ports listed per horizontal walk */
#define DET_SCAN_LOG_MAX 700.0       /* keeps exp() of the walk finite */

#define TCP_SYN 0x02u
#define TCP_ACK 0x10u

/* One walk's state. */
typedef struct scan_walk {
    double log_ratio; /* ln of the likelihood ratio, 0 at the start */
    uint32_t targets; /* first contacts since the last reset */
    uint32_t failures;
    uint64_t first_us, last_us; /* first contacts since the last reset */
    bool flagged;               /* crossed eta1 with enough targets; stays set */
    bool dirty;                 /* changed since the last evaluation while flagged */
} scan_walk;

typedef struct scan_source {
    fv_endpoint src;
    scan_walk walk;
    uint8_t proto;       /* of the first contacts, 0 when mixed */
    uint16_t port_count; /* entries used in ports[] */
    uint16_t ports[DET_SCAN_PORTS_KEPT];
} scan_source;

typedef struct scan_pair_key {
    det_host_key src, dst;
} scan_pair_key;

typedef struct scan_pair {
    fv_endpoint src, dst;
    scan_walk walk;
    uint8_t proto;
} scan_pair;

typedef struct scan_contact_key {
    det_host_key src, dst;
    uint16_t port;
    uint8_t proto;
} scan_contact_key;

typedef struct scan_state {
    double step_success, step_failure; /* added to log_ratio */
    double log_eta0, log_eta1;
    uint32_t min_targets;
    det_lru *sources, *pairs, *contacts;
    det_rekey_map rekey;
} scan_state;

static bool scan_enabled(const pol_detect *config)
{
    return config->scan_enabled;
}

static void scan_destroy(void *state)
{
    scan_state *s = state;
    if (s == NULL)
        return;
    det_lru_destroy(&s->sources);
    det_lru_destroy(&s->pairs);
    det_lru_destroy(&s->contacts);
    det_rekey_map_end(&s->rekey);
    free(s);
}

static void *scan_create(const pol_detect *config)
{
    scan_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;

    /* The policy parser validates these; out-of-range values fall back
     * to the paper's defaults so the walk stays well defined. */
    double theta0 = config->scan_theta0, theta1 = config->scan_theta1;
    double alpha = config->scan_false_positive, beta = config->scan_detection;
    if (!(theta0 > 0.0 && theta0 < 1.0 && theta1 > 0.0 && theta1 < theta0)) {
        theta0 = 0.8;
        theta1 = 0.2;
    }
    if (!(alpha > 0.0 && alpha < 1.0 && beta > alpha && beta < 1.0)) {
        alpha = 0.01;
        beta = 0.99;
    }
    s->step_success = log(theta1 / theta0);
    s->step_failure = log((1.0 - theta1) / (1.0 - theta0));
    s->log_eta1 = log(beta / alpha);
    s->log_eta0 = log((1.0 - beta) / (1.0 - alpha));
    s->min_targets = config->scan_min_targets;

    s->sources =
        det_lru_create(sizeof(det_host_key), sizeof(scan_source), DET_SCAN_MAX_SOURCES, NULL);
    s->pairs = det_lru_create(sizeof(scan_pair_key), sizeof(scan_pair), DET_SCAN_MAX_PAIRS, NULL);
    s->contacts = det_lru_create(sizeof(scan_contact_key), 1, DET_SCAN_MAX_CONTACTS, NULL);
    if (s->sources == NULL || s->pairs == NULL || s->contacts == NULL) {
        scan_destroy(s);
        return NULL;
    }
    return s;
}

/* True if the kept address of EP is multicast or the limited broadcast. */
static bool is_group_address(const fv_endpoint *ep)
{
    if (ep->kind == FV_EP_IPV4)
        return (ep->addr[0] & 0xf0u) == 0xe0u || (ep->addr[0] == 255 && ep->addr[1] == 255 &&
                                                  ep->addr[2] == 255 && ep->addr[3] == 255);
    if (ep->kind == FV_EP_IPV6)
        return ep->addr[0] == 0xffu;
    return false;
}

/* Outcome of FLOW as a first contact: 1 success, 0 failure, -1 none. */
static int contact_outcome(const fv_flow_record *flow)
{
    if (flow->continued || flow->icmp_quoted || is_group_address(&flow->dst))
        return -1;
    switch (flow->proto) {
    case 6:
        if ((flow->tcp_flags_fwd & TCP_SYN) == 0)
            return -1;
        return (flow->tcp_flags_rev & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) ? 1 : 0;
    case 17:
        /* From a service port to an ephemeral one: most likely an answer
         * whose request the capture missed (DNS over a lossy tap), not
         * a probe. */
        if (flow->sport != 0 && flow->sport < 1024 && flow->dport >= 1024)
            return -1;
        return flow->pkts_rev > 0 && flow->icmp_errors == 0 ? 1 : 0;
    case 1:
        if (flow->icmp_type != 8)
            return -1;
        return flow->pkts_rev > 0 ? 1 : 0;
    case 58:
        if (flow->icmp_type != 128)
            return -1;
        return flow->pkts_rev > 0 ? 1 : 0;
    default: return -1;
    }
}

/* Take one step of W at TS_US. */
static void walk_step(const scan_state *s, scan_walk *w, bool success, uint64_t ts_us)
{
    if (w->targets == 0 || ts_us < w->first_us)
        w->first_us = ts_us;
    if (ts_us > w->last_us)
        w->last_us = ts_us;
    w->targets++;
    if (!success)
        w->failures++;
    w->log_ratio += success ? s->step_success : s->step_failure;
    if (w->log_ratio > DET_SCAN_LOG_MAX)
        w->log_ratio = DET_SCAN_LOG_MAX;

    if (w->flagged) {
        w->dirty = true;
        return;
    }
    if (w->log_ratio <= s->log_eta0) {
        /* Judged benign: start over, so later behaviour is judged alone. */
        memset(w, 0, sizeof *w);
        return;
    }
    if (w->log_ratio >= s->log_eta1 && w->targets >= s->min_targets) {
        w->flagged = true;
        w->dirty = true;
    }
}

static void source_note_port(scan_source *src, uint16_t port, uint8_t proto)
{
    if (src->walk.targets == 1)
        src->proto = proto;
    else if (src->proto != proto)
        src->proto = 0;
    for (uint16_t i = 0; i < src->port_count; i++) {
        if (src->ports[i] == port)
            return;
    }
    if (src->port_count < DET_SCAN_PORTS_KEPT)
        src->ports[src->port_count++] = port;
}

static void contact_key_make(const fv_flow_record *flow, scan_contact_key *ck)
{
    memset(ck, 0, sizeof *ck);
    det_host_key_set(&ck->src, &flow->src);
    det_host_key_set(&ck->dst, &flow->dst);
    ck->port = flow->dport;
    ck->proto = flow->proto;
}

/* The pair and source lookups happen only for a first contact, but a
 * prefetch that goes unused costs less than the misses it saves. */
static void scan_prefetch_flow(const void *state, const fv_flow_record *flow)
{
    const scan_state *s = state;
    if (contact_outcome(flow) < 0)
        return;
    scan_contact_key ck;
    contact_key_make(flow, &ck);
    det_lru_prefetch(s->contacts, &ck);
    scan_pair_key pk;
    memset(&pk, 0, sizeof pk);
    pk.src = ck.src;
    pk.dst = ck.dst;
    det_lru_prefetch(s->pairs, &pk);
    det_lru_prefetch(s->sources, &ck.src);
}

static void scan_observe_flow(void *state, const fv_flow_record *flow)
{
    scan_state *s = state;
    int outcome = contact_outcome(flow);
    if (outcome < 0)
        return;
    bool success = outcome == 1;

    scan_contact_key ck;
    contact_key_make(flow, &ck);
    bool new_contact;
    if (det_lru_insert(s->contacts, &ck, &new_contact) == NULL || !new_contact)
        return;

    /* A first contact of this (destination, port): a step of the
     * destination's vertical walk. Port 0 (ICMP) has no vertical walk. */
    scan_pair_key pk;
    memset(&pk, 0, sizeof pk);
    pk.src = ck.src;
    pk.dst = ck.dst;
    bool new_destination;
    scan_pair *pair = det_lru_insert(s->pairs, &pk, &new_destination);
    if (pair == NULL)
        return;
    if (new_destination) {
        pair->src = flow->src;
        pair->dst = flow->dst;
        pair->proto = flow->proto;
    }
    if (flow->dport != 0) {
        if (pair->proto != flow->proto)
            pair->proto = 0;
        walk_step(s, &pair->walk, success, flow->first_us);
    }

    /* A first contact of this destination: a step of the horizontal walk. */
    if (!new_destination)
        return;
    bool new_source;
    scan_source *src = det_lru_insert(s->sources, &ck.src, &new_source);
    if (src == NULL)
        return;
    if (new_source)
        src->src = flow->src;
    uint32_t targets_before = src->walk.targets;
    walk_step(s, &src->walk, success, flow->first_us);
    if (src->walk.targets < targets_before || src->walk.targets == 0)
        src->port_count = 0; /* the walk was reset */
    else
        source_note_port(src, flow->dport, flow->proto);
}

typedef struct scan_emit_ctx {
    const scan_state *state;
    uint64_t now_us;
    det_emit_fn emit;
    void *engine_ctx;
} scan_emit_ctx;

static void fill_alert(const scan_emit_ctx *c, const fv_endpoint *src, const scan_walk *w,
                       fv_alert_record *a)
{
    const scan_state *s = c->state;
    memset(a, 0, sizeof *a);
    a->ts_us = c->now_us;
    a->first_us = w->first_us;
    a->last_us = w->last_us;
    a->detector = FV_DET_SCAN;
    /* Inbound scans from outside are background noise on most networks;
     * an internal host scanning is what needs a look. */
    a->severity = fv_endpoint_is_internal(src) ? FV_SEV_HIGH : FV_SEV_LOW;
    double excess = (w->log_ratio - s->log_eta1) / s->log_eta1;
    if (excess < 0.0)
        excess = 0.0;
    if (excess > 1.0)
        excess = 1.0;
    a->score = 0.5 + 0.5 * excess;
    a->host = *src;
    a->flow_count = w->targets;
    a->evidence_count = DET_EV_SCAN_COUNT;
    a->evidence[DET_EV_SCAN_TARGETS] = w->targets;
    a->evidence[DET_EV_SCAN_FAILURES] = w->failures;
    a->evidence[DET_EV_SCAN_LIKELIHOOD_RATIO] = exp(w->log_ratio);
}

static void emit_horizontal(void *ctx, const void *key, void *value)
{
    (void)key;
    scan_emit_ctx *c = ctx;
    scan_source *src = value;
    if (!src->walk.dirty)
        return;
    src->walk.dirty = false;

    fv_alert_record a;
    fill_alert(c, &src->src, &src->walk, &a);
    a.peer.kind = FV_EP_NONE;
    a.peer_port = src->port_count == 1 ? src->ports[0] : 0;
    a.proto = src->proto;
    a.evidence[DET_EV_SCAN_DISTINCT_PORTS] = src->port_count;
    a.evidence[DET_EV_SCAN_VERTICAL] = 0.0;
    snprintf(a.summary, sizeof a.summary,
             "horizontal scan: %u of %u first contacts to new destinations failed, %u port%s",
             (unsigned)src->walk.failures, (unsigned)src->walk.targets, (unsigned)src->port_count,
             src->port_count == 1 ? "" : "s");
    c->emit(c->engine_ctx, &a);
}

static void emit_vertical(void *ctx, const void *key, void *value)
{
    (void)key;
    scan_emit_ctx *c = ctx;
    scan_pair *pair = value;
    if (!pair->walk.dirty)
        return;
    pair->walk.dirty = false;

    fv_alert_record a;
    fill_alert(c, &pair->src, &pair->walk, &a);
    a.peer = pair->dst;
    a.proto = pair->proto;
    a.evidence[DET_EV_SCAN_DISTINCT_PORTS] = pair->walk.targets;
    a.evidence[DET_EV_SCAN_VERTICAL] = 1.0;
    snprintf(a.summary, sizeof a.summary,
             "vertical scan: %u of %u new ports on one destination failed",
             (unsigned)pair->walk.failures, (unsigned)pair->walk.targets);
    c->emit(c->engine_ctx, &a);
}

static void scan_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    scan_state *s = state;
    scan_emit_ctx c = {.state = s, .now_us = now_us, .emit = emit, .engine_ctx = engine_ctx};
    det_lru_foreach(s->sources, emit_horizontal, &c);
    det_lru_foreach(s->pairs, emit_vertical, &c);
}

/* ---------------------------------------------------------------------- */
/* Key rotation                                                            */
/* ---------------------------------------------------------------------- */

typedef struct scan_rekey_ctx {
    det_rekey_map *map;
    bool drop_unmapped;
} scan_rekey_ctx;

static bool rekey_host(scan_rekey_ctx *c, det_host_key *key, fv_endpoint *ep)
{
    if (!det_rekey_map_apply(c->map, c->drop_unmapped, key->kind, key->addr))
        return false;
    if (ep != NULL)
        memcpy(ep->addr, key->addr, sizeof key->addr);
    return true;
}

static bool rekey_source(void *ctx, void *key, void *value)
{
    scan_source *src = value;
    return rekey_host(ctx, key, &src->src);
}

static bool rekey_pair(void *ctx, void *key, void *value)
{
    scan_pair_key *k = key;
    scan_pair *pair = value;
    return rekey_host(ctx, &k->src, &pair->src) && rekey_host(ctx, &k->dst, &pair->dst);
}

static bool rekey_contact(void *ctx, void *key, void *value)
{
    (void)value;
    scan_contact_key *k = key;
    return rekey_host(ctx, &k->src, NULL) && rekey_host(ctx, &k->dst, NULL);
}

static size_t scan_rekey_apply(scan_state *s, det_rekey_map *map, bool drop_unmapped)
{
    scan_rekey_ctx c = {.map = map, .drop_unmapped = drop_unmapped};
    size_t dropped = det_lru_rekey(s->sources, rekey_source, &c);
    dropped += det_lru_rekey(s->pairs, rekey_pair, &c);
    dropped += det_lru_rekey(s->contacts, rekey_contact, &c);
    return dropped;
}

static void scan_rekey_begin(void *state)
{
    scan_state *s = state;
    det_rekey_map_begin(&s->rekey);
}

static void scan_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                       uint8_t kind)
{
    scan_state *s = state;
    if (s->rekey.active) {
        (void)det_rekey_map_add(&s->rekey, old_pseudonym, new_pseudonym, kind);
        return;
    }
    det_rekey_map one = {0};
    if (det_rekey_map_add(&one, old_pseudonym, new_pseudonym, kind) == FV_OK)
        (void)scan_rekey_apply(s, &one, false);
    det_rekey_map_end(&one);
}

static size_t scan_rekey_end(void *state)
{
    scan_state *s = state;
    size_t dropped = scan_rekey_apply(s, &s->rekey, true);
    det_rekey_map_end(&s->rekey);
    return dropped;
}

const det_module det_module_scan = {
    .name = "scan",
    .detector = FV_DET_SCAN,
    .enabled = scan_enabled,
    .create = scan_create,
    .destroy = scan_destroy,
    .observe_flow = scan_observe_flow,
    .observe_dns = NULL,
    .evaluate = scan_evaluate,
    .rekey_begin = scan_rekey_begin,
    .rekey = scan_rekey,
    .rekey_end = scan_rekey_end,
    .prefetch_flow = scan_prefetch_flow,
};
