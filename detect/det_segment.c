/*
 * det_segment.c: segmentation detector. Checks each flow's (source zone,
 * destination zone, protocol, responder port) against the policy's
 * detect.segmentation.rules; the first matching rule decides, and
 * detect.segmentation.default decides when none matches.
 *
 * A denied flow updates one entry per (source host, destination host,
 * responder port, protocol), so a host hammering a denied service gives
 * one alert with a flow count, not one alert per flow. At most
 * DET_SEG_MAX_ENTRIES entries are kept, least recently seen evicted.
 *
 * The evidence slot names of all detectors in det_scan.c, det_dns.c,
 * det_segment.c and det_indicators.c are here as well, in
 * det_more_evidence_name.
 */
#include "det_internal.h"
#include "det_lru.h"
#include "detect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DET_SEG_MAX_ENTRIES 16384

#define TCP_SYN 0x02u
#define TCP_RST 0x04u
#define TCP_ACK 0x10u

/* Every byte is set (memset before filling) so keys compare with memcmp. */
typedef struct seg_key {
    det_host_key src, dst;
    uint16_t port;
    uint8_t proto;
} seg_key;

typedef struct seg_entry {
    fv_endpoint src, dst;
    uint64_t first_us, last_us;
    uint32_t flows;
    uint64_t bytes;
    int rule; /* 1-based, 0 = default */
    bool answered;
    bool dirty; /* changed since the last evaluation */
} seg_entry;

typedef struct seg_state {
    size_t rule_count;
    pol_seg_rule *rules;
    bool default_allow;
    det_lru *entries;
    det_rekey_map rekey;
} seg_state;

/* ---------------------------------------------------------------------- */
/* Evidence names of the detectors of this group                          */
/* ---------------------------------------------------------------------- */

static const char *const scan_evidence[DET_EV_SCAN_COUNT] = {
    "targets", "failures", "distinct_ports", "likelihood_ratio", "vertical",
};
static const char *const tunnel_evidence[DET_EV_TUNNEL_COUNT] = {
    "unique_names", "mean_label_length", "entropy_bits", "typed_query_share", "queries",
};
static const char *const dga_evidence[DET_EV_DGA_COUNT] = {
    "nxdomain_names",    "nxdomain_rate",     "mean_score",
    "mean_entropy_bits", "rare_bigram_share", "digit_ratio",
};
static const char *const seg_evidence[DET_EV_SEG_COUNT] = {
    "rule",
    "flows",
    "answered",
    "bytes",
};
static const char *const indicator_evidence[DET_EV_IND_COUNT] = {
    "list",
    "type",
    "line",
    "source",
};

const char *det_more_evidence_name(int detector, unsigned index)
{
    switch (detector) {
    case FV_DET_SCAN: return index < DET_EV_SCAN_COUNT ? scan_evidence[index] : NULL;
    case FV_DET_DNS_TUNNEL: return index < DET_EV_TUNNEL_COUNT ? tunnel_evidence[index] : NULL;
    case FV_DET_DGA: return index < DET_EV_DGA_COUNT ? dga_evidence[index] : NULL;
    case FV_DET_SEGMENTATION: return index < DET_EV_SEG_COUNT ? seg_evidence[index] : NULL;
    case FV_DET_INDICATOR: return index < DET_EV_IND_COUNT ? indicator_evidence[index] : NULL;
    default: return NULL;
    }
}

/* ---------------------------------------------------------------------- */
/* Rules                                                                   */
/* ---------------------------------------------------------------------- */

static bool zone_matches(const char *rule_zone, const char *zone)
{
    if (strcmp(rule_zone, "*") == 0)
        return true;
    if (zone[0] == '\0')
        zone = FV_ZONE_EXTERNAL;
    return strcmp(rule_zone, zone) == 0;
}

/* Return the 1-based index of the first rule matching FLOW, 0 if none. */
static int first_matching_rule(const seg_state *s, const fv_flow_record *flow)
{
    for (size_t i = 0; i < s->rule_count; i++) {
        const pol_seg_rule *r = &s->rules[i];
        if (!zone_matches(r->from_zone, flow->src.zone) ||
            !zone_matches(r->to_zone, flow->dst.zone))
            continue;
        if (r->proto != 0 && r->proto != flow->proto)
            continue;
        if (flow->dport < r->port_lo || flow->dport > r->port_hi)
            continue;
        return (int)(i + 1);
    }
    return 0;
}

/*
 * True if the responder answered: for TCP a SYN-ACK, or, for a
 * connection whose start was not seen, any packet that is not only a
 * reset; for other protocols any packet back.
 */
static bool flow_answered(const fv_flow_record *flow)
{
    if (flow->proto == 6) {
        if ((flow->tcp_flags_rev & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
            return true;
        if ((flow->tcp_flags_fwd & TCP_SYN) == 0 && flow->pkts_rev > 0 &&
            (flow->tcp_flags_rev & ~TCP_RST & 0x0fffu) != 0)
            return true;
        return false;
    }
    return flow->pkts_rev > 0;
}

/* ---------------------------------------------------------------------- */
/* Module                                                                  */
/* ---------------------------------------------------------------------- */

static bool seg_enabled(const pol_detect *config)
{
    return config->segmentation_enabled;
}

static void seg_destroy(void *state)
{
    seg_state *s = state;
    if (s == NULL)
        return;
    det_lru_destroy(&s->entries);
    det_rekey_map_end(&s->rekey);
    free(s->rules);
    free(s);
}

static void *seg_create(const pol_detect *config)
{
    seg_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->rule_count =
        config->seg_rule_count <= POL_SEG_RULES_MAX ? config->seg_rule_count : POL_SEG_RULES_MAX;
    s->default_allow = config->segmentation_default_allow;
    if (s->rule_count > 0) {
        s->rules = calloc(s->rule_count, sizeof *s->rules);
        if (s->rules == NULL) {
            seg_destroy(s);
            return NULL;
        }
        memcpy(s->rules, config->seg_rules, s->rule_count * sizeof *s->rules);
    }
    s->entries = det_lru_create(sizeof(seg_key), sizeof(seg_entry), DET_SEG_MAX_ENTRIES, NULL);
    if (s->entries == NULL) {
        seg_destroy(s);
        return NULL;
    }
    return s;
}

static void seg_observe_flow(void *state, const fv_flow_record *flow)
{
    seg_state *s = state;

    /* A continued record belongs to a connection already checked, and an
     * ICMP error is no connection of its own. */
    if (flow->continued || flow->icmp_quoted)
        return;
    int rule = first_matching_rule(s, flow);
    bool allowed = rule > 0 ? s->rules[rule - 1].allow : s->default_allow;
    if (allowed)
        return;

    seg_key key;
    memset(&key, 0, sizeof key);
    det_host_key_set(&key.src, &flow->src);
    det_host_key_set(&key.dst, &flow->dst);
    key.port = flow->dport;
    key.proto = flow->proto;
    bool created;
    seg_entry *e = det_lru_insert(s->entries, &key, &created);
    if (e == NULL)
        return;
    if (created) {
        e->src = flow->src;
        e->dst = flow->dst;
        e->first_us = flow->first_us;
        e->rule = rule;
    }
    if (flow->first_us < e->first_us)
        e->first_us = flow->first_us;
    if (flow->last_us > e->last_us)
        e->last_us = flow->last_us;
    e->flows++;
    e->bytes += flow->bytes_fwd + flow->bytes_rev;
    e->answered = e->answered || flow_answered(flow);
    e->dirty = true;
}

typedef struct seg_emit_ctx {
    uint64_t now_us;
    det_emit_fn emit;
    void *engine_ctx;
} seg_emit_ctx;

static const char *proto_name(uint8_t proto, char buf[8])
{
    if (proto == 6)
        return "tcp";
    if (proto == 17)
        return "udp";
    if (proto == 1 || proto == 58)
        return "icmp";
    snprintf(buf, 8, "ip%u", proto);
    return buf;
}

static void seg_emit_one(void *ctx, const void *key, void *value)
{
    (void)key;
    seg_emit_ctx *c = ctx;
    seg_entry *e = value;
    if (!e->dirty)
        return;
    e->dirty = false;

    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = c->now_us;
    a.first_us = e->first_us;
    a.last_us = e->last_us;
    a.detector = FV_DET_SEGMENTATION;
    a.severity = FV_SEV_HIGH;
    a.score = 1.0;
    a.host = e->src;
    a.peer = e->dst;
    a.peer_port = ((const seg_key *)key)->port;
    a.proto = ((const seg_key *)key)->proto;
    a.flow_count = e->flows;
    a.evidence_count = DET_EV_SEG_COUNT;
    a.evidence[DET_EV_SEG_RULE] = e->rule;
    a.evidence[DET_EV_SEG_FLOWS] = e->flows;
    a.evidence[DET_EV_SEG_ANSWERED] = e->answered ? 1.0 : 0.0;
    a.evidence[DET_EV_SEG_BYTES] = (double)e->bytes;

    char proto_buf[8];
    const char *from = e->src.zone[0] != '\0' ? e->src.zone : FV_ZONE_EXTERNAL;
    const char *to = e->dst.zone[0] != '\0' ? e->dst.zone : FV_ZONE_EXTERNAL;
    char rule_text[24];
    if (e->rule > 0)
        snprintf(rule_text, sizeof rule_text, "rule %d", e->rule);
    else
        snprintf(rule_text, sizeof rule_text, "the default");
    snprintf(a.summary, sizeof a.summary, "%s flow from zone %s to zone %s on %s/%u denied by %s",
             e->answered ? "answered" : "unanswered", from, to, proto_name(a.proto, proto_buf),
             (unsigned)a.peer_port, rule_text);
    c->emit(c->engine_ctx, &a);
}

static void seg_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    seg_state *s = state;
    seg_emit_ctx c = {.now_us = now_us, .emit = emit, .engine_ctx = engine_ctx};
    det_lru_foreach(s->entries, seg_emit_one, &c);
}

/* ---------------------------------------------------------------------- */
/* Key rotation                                                            */
/* ---------------------------------------------------------------------- */

typedef struct seg_rekey_ctx {
    det_rekey_map *map;
    bool drop_unmapped;
} seg_rekey_ctx;

static bool seg_rekey_entry(void *ctx, void *key, void *value)
{
    seg_rekey_ctx *c = ctx;
    seg_key *k = key;
    seg_entry *e = value;
    if (!det_rekey_map_apply(c->map, c->drop_unmapped, k->src.kind, k->src.addr) ||
        !det_rekey_map_apply(c->map, c->drop_unmapped, k->dst.kind, k->dst.addr))
        return false;
    memcpy(e->src.addr, k->src.addr, sizeof k->src.addr);
    memcpy(e->dst.addr, k->dst.addr, sizeof k->dst.addr);
    return true;
}

static void seg_rekey_begin(void *state)
{
    seg_state *s = state;
    det_rekey_map_begin(&s->rekey);
}

static void seg_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                      uint8_t kind)
{
    seg_state *s = state;
    if (s->rekey.active) {
        (void)det_rekey_map_add(&s->rekey, old_pseudonym, new_pseudonym, kind);
        return;
    }
    /* A lone call: move this host now and drop nothing. */
    det_rekey_map one = {0};
    if (det_rekey_map_add(&one, old_pseudonym, new_pseudonym, kind) == FV_OK) {
        seg_rekey_ctx c = {.map = &one, .drop_unmapped = false};
        (void)det_lru_rekey(s->entries, seg_rekey_entry, &c);
    }
    det_rekey_map_end(&one);
}

static size_t seg_rekey_end(void *state)
{
    seg_state *s = state;
    seg_rekey_ctx c = {.map = &s->rekey, .drop_unmapped = true};
    size_t dropped = det_lru_rekey(s->entries, seg_rekey_entry, &c);
    det_rekey_map_end(&s->rekey);
    return dropped;
}

const det_module det_module_segmentation = {
    .name = "segmentation",
    .detector = FV_DET_SEGMENTATION,
    .enabled = seg_enabled,
    .create = seg_create,
    .destroy = seg_destroy,
    .observe_flow = seg_observe_flow,
    .observe_dns = NULL,
    .evaluate = seg_evaluate,
    .rekey_begin = seg_rekey_begin,
    .rekey = seg_rekey,
    .rekey_end = seg_rekey_end,
};
