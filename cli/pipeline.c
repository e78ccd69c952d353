/*
 * pipeline.c: capture events -> policy gate -> pseudonyms -> store and
 * detectors. See pipeline.h for the contract.
 */
#include "pipeline.h"
#include "test_hooks.h"
#include "checkpoint.h"
#include "detect_thread.h"
#include "pipeline_export.h"
#include "cli.h"
#include "aggregate.h"
#include "hostmap.h"
#include "minimize.h"
#include "escrow.h"
#include "indicators_hook.h"
#include "seenhosts.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define EVALUATE_INTERVAL_US (60u * 1000000u)
#define QUIET_SWEEP_AUDIT_INTERVAL_US (86400ull * 1000000u)

/* How long after a bucket's end flows of it may still arrive: the
 * capture engine's default active timeout (1800 s) plus its longest
 * idle timeout (TCP, 300 s). The pipeline creates the engine with the
 * defaults. */
#define AGGREGATE_CLOSE_DELAY_US ((1800u + 300u) * 1000000ull)

static void pipeline_sync_destroy(fv_pipeline *p);

uint64_t fv_pipeline_now_us(const fv_pipeline *p)
{
    return p->fixed_now_us != 0 ? p->fixed_now_us : fv_now_us();
}

/* The current time for policy decisions, in seconds. A decision is read
 * for both addresses of every packet, and the seconds of the coarse
 * clock cost a quarter of a full clock read. */
static uint64_t decision_now_s(const fv_pipeline *p)
{
    return p->fixed_now_us != 0 ? p->fixed_now_us / 1000000u : fv_now_coarse_s();
}

/* Remember the first store error; later records are dropped by the
 * store itself once it is marked failed. */
static void note_rc(fv_pipeline *p, int rc)
{
    if (rc != FV_OK && p->failed_rc == FV_OK) {
        p->failed_rc = rc;
        fv_error("store write failed (%s); records from here on are not stored",
                 fv_strerror(rc));
    }
}

/*
 * Turn a raw address into a stored endpoint, in the form that the address
 * mode of its zone sets (fv_apply_address_mode): by default a pseudonym
 * under the current epoch key for addresses in a zone, and the address
 * itself outside every zone, because the policy declares those not to be
 * people.
 */
/*
 * Without worker threads the detectors run inline. With them they run on
 * the detector thread, which starts at the first record: a live capture
 * has dropped its privileges by then, so the thread inherits the dropped
 * set. Every other use of p->detect calls detect_sync first.
 */
static bool detect_threaded(fv_pipeline *p)
{
    if (p->detect_thread != NULL)
        return true;
    if (p->sync == NULL || p->detect_thread_failed)
        return false;
    if (fv_detect_thread_start(p->detect, &p->detect_thread) != FV_OK) {
        p->detect_thread_failed = true;
        fv_warning("cannot start the detector thread; the detectors run on the writer thread");
        return false;
    }
    return true;
}

static void detect_flow(fv_pipeline *p, const fv_flow_record *r)
{
    if (p->detect_input_saved)
        return;
    if (detect_threaded(p))
        fv_detect_thread_flow(p->detect_thread, r);
    else
        det_observe_flow(p->detect, r);
}

static void detect_dns(fv_pipeline *p, const fv_dns_record *r)
{
    if (p->detect_input_saved)
        return;
    if (detect_threaded(p))
        fv_detect_thread_dns(p->detect_thread, r);
    else
        det_observe_dns(p->detect, r);
}

/* Wait until the detector thread observed every record queued so far;
 * then p->detect is the writer's until the next record. */
static void detect_sync(fv_pipeline *p)
{
    fv_detect_thread_sync(p->detect_thread);
}

static void make_endpoint(fv_pipeline *p, const cap_ip *ip, fv_endpoint *ep)
{
    fv_stored_addr stored;
    const char *zone = fv_apply_address_mode(p->policy, p->anon, ip->family, ip->addr, &stored);

    memset(ep, 0, sizeof *ep);
    fv_str_copy(ep->zone, sizeof ep->zone, zone != NULL ? zone : FV_ZONE_EXTERNAL);
    ep->kind = stored.kind;
    memcpy(ep->addr, stored.addr, sizeof ep->addr);
    ep->prefix_len = stored.prefix_len;
}

/* Sets and ways of a decision cache (see struct fv_decision_cache). */
#define DECISION_SETS 2048u
#define DECISION_WAYS 4u

/* The threading state of a pipeline run with worker threads (workers.h). */
struct fv_pipeline_sync {
    /* Held for reading by workers while they decide exclusions, for
     * writing by a policy reload while it swaps the policy. */
    pthread_rwlock_t policy_lock;
    /* Guards p->hosts, the writer's decision cache, and changes of the
     * counters below. */
    pthread_mutex_t hosts_lock;
    /* Each worker keeps a decision cache of its own and reads it without
     * the lock. These counters tell it which slots went stale. Every
     * clear of the writer's cache bumps CLEAR_EPOCH. A change of one
     * address's host map entry bumps the counter of that address's set,
     * where decision_cache_forget drops its slots in the writer's cache. */
    atomic_uint_fast64_t clear_epoch;
    atomic_uint addr_epochs[DECISION_SETS];
};

static void pipeline_hosts_lock(fv_pipeline *p)
{
    if (p->sync != NULL)
        pthread_mutex_lock(&p->sync->hosts_lock);
}

static void pipeline_hosts_unlock(fv_pipeline *p)
{
    if (p->sync != NULL)
        pthread_mutex_unlock(&p->sync->hosts_lock);
}

/*
 * Decisions of host_mode_locked for hosts in a zone, cached because the
 * capture engine asks for both addresses of every packet. A slot holds
 * the decision for one address and frame MAC over the span of traffic
 * and current times for which pol_decide_span promises the same result.
 * For a group with a window that is the time between two openings or
 * closings of the window, otherwise up to the group's validity bounds.
 * Changes of the host map invalidate slots: a change of the MAC of one
 * address (fv_hostmap_learn_mac returns true) drops that address's
 * slots, and a host name change, wipe or clear changes
 * fv_hostmap_generation, which every slot must match. A policy reload
 * and every key rotation clear the cache.
 *
 * The sets are chosen by an unkeyed hash of the address. A collision
 * only costs a recomputation, so chosen addresses cannot make a lookup
 * slower than the uncached decision.
 */

/* The times over which one decision holds, in seconds, inclusive. */
typedef struct decision_span {
    uint64_t traffic_from_s, traffic_until_s;
    uint64_t now_from_s, now_until_s;
} decision_span;

typedef struct decision_slot {
    decision_span span;
    uint64_t hosts_generation;
    uint32_t last_used; /* cache clock at the last use, to replace the oldest slot */
    uint32_t addr_epoch; /* a worker's cache: addr_epochs[set] when filled */
    uint8_t addr[16];
    uint8_t frame_mac[6];
    uint8_t family; /* 0: empty slot */
    bool has_frame_mac;
    pol_mode mode;
} decision_slot;

/* Contains raw internal addresses and MACs, like the host map: never
 * logged, wiped before it is freed and on key rotation. The writer's is
 * wiped at once, a worker's at its next lookup.
 * NOTE: so a worker that sees no packet keeps its entries past a
 * rotation until then, as its flow table keeps the raw addresses of its
 * open flows. */
struct fv_decision_cache {
    decision_slot sets[DECISION_SETS][DECISION_WAYS];
    uint32_t clock;
    uint64_t clear_epoch; /* a worker's cache: clear_epoch when last wiped */
};

static void decision_cache_clear(fv_pipeline *p)
{
    if (p->decisions != NULL)
        sodium_memzero(p->decisions, sizeof *p->decisions);
    /* The workers wipe theirs at their next lookup. */
    if (p->sync != NULL)
        atomic_fetch_add_explicit(&p->sync->clear_epoch, 1, memory_order_release);
}

static void decision_cache_destroy(fv_pipeline *p)
{
    decision_cache_clear(p);
    free(p->decisions);
    p->decisions = NULL;
}

static size_t ip_addr_len(const cap_ip *ip)
{
    return ip->family == 4 ? 4 : 16;
}

/* The number of the set that contains every slot of IP (FNV-1a of the
 * address). */
static size_t decision_index(const cap_ip *ip)
{
    uint64_t h = 0xcbf29ce484222325u ^ ip->family;
    size_t len = ip_addr_len(ip);
    for (size_t i = 0; i < len; i++)
        h = (h ^ ip->addr[i]) * 0x100000001b3u;
    h ^= h >> 32;
    return (size_t)(h & (DECISION_SETS - 1));
}

static decision_slot *decision_set(fv_pipeline *p, const cap_ip *ip)
{
    return p->decisions->sets[decision_index(ip)];
}

/* Compared in words: a memcmp of a length known only at run time is a
 * library call, and this runs for both addresses of every packet. */
static bool decision_slot_is_of(const decision_slot *s, const cap_ip *ip)
{
    if (s->family != ip->family)
        return false;
    if (ip->family == 4) {
        uint32_t a, b;
        memcpy(&a, s->addr, 4);
        memcpy(&b, ip->addr, 4);
        return a == b;
    }
    uint64_t a[2], b[2];
    memcpy(a, s->addr, 16);
    memcpy(b, ip->addr, 16);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

static bool decision_slot_matches(const decision_slot *s, const cap_ip *ip,
                                  const uint8_t *frame_mac)
{
    if (!decision_slot_is_of(s, ip) || s->has_frame_mac != (frame_mac != NULL))
        return false;
    return frame_mac == NULL || memcmp(s->frame_mac, frame_mac, 6) == 0;
}

static bool decision_span_covers(const decision_span *span, uint64_t traffic_s, uint64_t now_s)
{
    return span->traffic_from_s <= traffic_s && traffic_s <= span->traffic_until_s &&
           span->now_from_s <= now_s && now_s <= span->now_until_s;
}

/* Drop the cached decisions of IP, after its entry in the host map changed. */
static void decision_cache_forget(fv_pipeline *p, const cap_ip *ip)
{
    if (ip->family != 4 && ip->family != 6)
        return;
    if (p->sync != NULL)
        atomic_fetch_add_explicit(&p->sync->addr_epochs[decision_index(ip)], 1,
                                  memory_order_release);
    if (p->decisions == NULL)
        return;
    decision_slot *set = decision_set(p, ip);
    for (unsigned w = 0; w < DECISION_WAYS; w++) {
        if (decision_slot_is_of(&set[w], ip))
            sodium_memzero(&set[w], sizeof set[w]);
    }
}

static pol_mode host_mode_decide(fv_pipeline *p, const cap_ip *ip, const uint8_t *frame_mac,
                                 uint64_t traffic_s, uint64_t now_s, decision_span *span);

/* Take the slot of SET to refill for IP and FRAME_MAC: an empty one,
 * else the one unused for longest. Returns it cleared, with the key and
 * the clock set. */
static decision_slot *decision_victim(struct fv_decision_cache *cache, decision_slot *set,
                                      const cap_ip *ip, const uint8_t *frame_mac)
{
    decision_slot *victim = &set[0];
    for (unsigned w = 0; w < DECISION_WAYS && victim->family != 0; w++) {
        if (set[w].family == 0 || set[w].last_used < victim->last_used)
            victim = &set[w];
    }
    memset(victim, 0, sizeof *victim);
    victim->last_used = ++cache->clock;
    memcpy(victim->addr, ip->addr, ip_addr_len(ip));
    if (frame_mac != NULL)
        memcpy(victim->frame_mac, frame_mac, 6);
    victim->has_frame_mac = frame_mac != NULL;
    victim->family = ip->family;
    return victim;
}

/*
 * host_mode for an address in a zone; the caller holds the host map
 * lock. A cache hit skips fv_hostmap_learn_mac too: the slot was filled
 * after learning the same frame MAC, and any later change of this
 * address's entry would have dropped the slot, so learning it again
 * would change nothing.
 */
static pol_mode host_mode_locked(fv_pipeline *p, const cap_ip *ip, const uint8_t *frame_mac,
                                 uint64_t traffic_us)
{
    uint64_t traffic_s = traffic_us / 1000000u;
    uint64_t now_s = decision_now_s(p);
    decision_span span;
    if (p->decisions == NULL || (ip->family != 4 && ip->family != 6))
        return host_mode_decide(p, ip, frame_mac, traffic_s, now_s, &span);

    decision_slot *set = decision_set(p, ip);
    uint64_t generation = fv_hostmap_generation(p->hosts);
    for (unsigned w = 0; w < DECISION_WAYS; w++) {
        decision_slot *s = &set[w];
        if (decision_slot_matches(s, ip, frame_mac) && s->hosts_generation == generation &&
            decision_span_covers(&s->span, traffic_s, now_s)) {
            s->last_used = ++p->decisions->clock;
            return s->mode;
        }
    }

    pol_mode mode = host_mode_decide(p, ip, frame_mac, traffic_s, now_s, &span);
    decision_slot *slot = decision_victim(p->decisions, set, ip, frame_mac);
    slot->span = span;
    slot->hosts_generation = fv_hostmap_generation(p->hosts);
    slot->mode = mode;
    return mode;
}

/*
 * Start loading what the policy decision and the stored endpoint of IP
 * will read: its decision cache set and, when its zone pseudonymizes
 * addresses, its pseudonym cache slot. A record's lookups then wait on
 * memory together instead of one after another. Returns true if IP is in
 * a zone. Changes no result.
 */
static bool prefetch_endpoint(fv_pipeline *p, const cap_ip *ip)
{
    if (p->decisions != NULL && (ip->family == 4 || ip->family == 6)) {
        const char *set = (const char *)decision_set(p, ip);
        for (size_t off = 0; off < sizeof(decision_slot) * DECISION_WAYS; off += 64)
            __builtin_prefetch(set + off);
    }
    return fv_prefetch_address(p->policy, p->anon, ip->family, ip->addr) != NULL;
}

/*
 * Decide how the host at IP may be processed at traffic time TRAFFIC_US.
 * FRAME_MAC is the MAC the frame carried for IP, or NULL. Addresses
 * outside every zone are not hosts the policy governs: they are
 * monitored unless they lie in an excluded subnet. For an internal
 * address the MAC learned from DHCP decides with the address, because a
 * routed frame carries the router's MAC; other MACs can only make the
 * mode stricter (host_mode_decide).
 */
static pol_mode host_mode(fv_pipeline *p, const cap_ip *ip, const uint8_t *frame_mac,
                          uint64_t traffic_us)
{
    bool excluded;
    const char *zone = fv_identity_zone_excluded(p->policy, ip->family, ip->addr, &excluded);
    if (excluded)
        return POL_EXCLUDE;
    if (zone == NULL)
        return POL_MONITOR;

    /* Worker threads call this for every packet while the writer learns
     * from DHCP. The host name pointer points into the map, so the lock
     * is held until the last pol_decide. The lock guards the decision
     * cache too. */
    pipeline_hosts_lock(p);
    pol_mode mode = host_mode_locked(p, ip, frame_mac, traffic_us);
    pipeline_hosts_unlock(p);
    return mode;
}

/*
 * The decision for the host at IP seen with MAC (or NULL), at TRAFFIC_S
 * and NOW_S. Sets SPAN to the traffic and current times over which the
 * same decision holds. With BY_MAC_ONLY, only groups that list MAC or
 * its host name decide. *MATCHED is set to whether a group decided.
 */
static pol_mode decide_with_mac(fv_pipeline *p, const cap_ip *ip, const uint8_t *mac,
                                bool by_mac_only, uint64_t traffic_s, uint64_t now_s,
                                decision_span *span, bool *matched)
{
    pol_host host = {
        .family = ip->family,
        .addr = by_mac_only ? NULL : ip->addr,
        .mac = mac,
        .hostname = mac != NULL ? fv_hostmap_name_of(p->hosts, mac) : NULL,
    };
    pol_decision d = pol_decide_span(p->policy, &host, traffic_s, &span->traffic_from_s,
                                     &span->traffic_until_s);
    *matched = d.group != NULL;
    if (d.mode == POL_EXCLUDE) {
        /* This outcome does not depend on the current time. */
        span->now_from_s = 0;
        span->now_until_s = UINT64_MAX;
        return POL_EXCLUDE;
    }

    /* A group whose validity has ended by now excludes its hosts also in
     * older traffic that is being read now. When NOW_S equals TRAFFIC_S,
     * the first decision has answered that already, and it holds over
     * the same span. */
    if (now_s == traffic_s) {
        span->now_from_s = span->traffic_from_s;
        span->now_until_s = span->traffic_until_s;
        return d.mode;
    }
    if (pol_decide_span(p->policy, &host, now_s, &span->now_from_s, &span->now_until_s).expired)
        return POL_EXCLUDE;
    return d.mode;
}

/* The stricter of two modes: exclude over aggregate over monitor. */
static pol_mode stricter(pol_mode a, pol_mode b)
{
    if (a == POL_EXCLUDE || b == POL_EXCLUDE)
        return POL_EXCLUDE;
    if (a == POL_AGGREGATE || b == POL_AGGREGATE)
        return POL_AGGREGATE;
    return POL_MONITOR;
}

/* Narrow SPAN to the times that OTHER covers too. */
static void decision_span_intersect(decision_span *span, const decision_span *other)
{
    if (other->traffic_from_s > span->traffic_from_s)
        span->traffic_from_s = other->traffic_from_s;
    if (other->traffic_until_s < span->traffic_until_s)
        span->traffic_until_s = other->traffic_until_s;
    if (other->now_from_s > span->now_from_s)
        span->now_from_s = other->now_from_s;
    if (other->now_until_s < span->now_until_s)
        span->now_until_s = other->now_until_s;
}

/*
 * The uncached decision of host_mode_locked, at TRAFFIC_S and NOW_S.
 * Sets SPAN to the traffic and current times over which the same
 * decision holds. The MAC learned for IP from DHCP identifies a host
 * behind a router, whose frames carry the router's MAC, so it decides
 * with the address. Two other MACs can only make the mode stricter, and
 * only through a group that lists them. One is the frame's own MAC,
 * because any device's DHCP request can name the address (option 50).
 * The other is such a MAC that an earlier frame of the address carried,
 * for frames without a MAC (raw IP, the destination in a Linux cooked
 * capture) or with a router's.
 */
static pol_mode host_mode_decide(fv_pipeline *p, const cap_ip *ip, const uint8_t *frame_mac,
                                 uint64_t traffic_s, uint64_t now_s, decision_span *span)
{
    if (frame_mac != NULL && fv_hostmap_learn_mac(p->hosts, ip, frame_mac, false))
        decision_cache_forget(p, ip);
    const uint8_t *mac = fv_hostmap_mac_of(p->hosts, ip);
    if (mac == NULL)
        mac = frame_mac;
    bool matched;
    pol_mode mode = decide_with_mac(p, ip, mac, false, traffic_s, now_s, span, &matched);

    /* The frame's MAC is looked up even when the mode is already
     * exclude, so that it is remembered. */
    for (int pass = 0; pass < 2 && (pass == 0 || mode != POL_EXCLUDE); pass++) {
        const uint8_t *other_mac = pass == 0 ? frame_mac : fv_hostmap_group_mac_of(p->hosts, ip);
        if (other_mac == NULL || (pass == 1 && frame_mac != NULL &&
                                  memcmp(other_mac, frame_mac, 6) == 0))
            continue;
        decision_span other_span;
        pol_mode other = decide_with_mac(p, ip, other_mac, true, traffic_s, now_s, &other_span,
                                         &matched);
        if (!matched || other == POL_MONITOR)
            continue;
        /* Remember the frame's MAC for the frames of IP that do not
         * carry it. */
        if (pass == 0 && fv_hostmap_note_group_mac(p->hosts, ip, other_mac))
            decision_cache_forget(p, ip);
        if (stricter(mode, other) == mode)
            continue;
        decision_span_intersect(span, &other_span);
        mode = stricter(mode, other);
        if (mode == POL_EXCLUDE)
            *span = other_span;
    }
    return mode;
}

/* Mode of a transaction between A and B at TS_US; MACs come from what
 * the frames of both hosts carried before (the host map). */
static pol_mode pair_mode(fv_pipeline *p, const cap_ip *a, const cap_ip *b, uint64_t ts_us)
{
    return stricter(host_mode(p, a, NULL, ts_us), host_mode(p, b, NULL, ts_us));
}

/* True if a per-host record of CLS may be stored for traffic in MODE. */
static bool may_store(const fv_pipeline *p, fv_class cls, pol_mode mode)
{
    return mode == POL_MONITOR && pol_class_enabled(p->policy, (int)cls);
}

/* The capture engine's exclusion hook, called for both addresses of
 * every IP packet before anything is extracted from it. */
static bool sink_is_excluded_host(void *ctx, const cap_ip *addr, const uint8_t *mac)
{
    fv_pipeline *p = ctx;
    return host_mode(p, addr, mac, cap_engine_packet_time_us(p->capture)) == POL_EXCLUDE;
}

/* Retention of CLS under POLICY; aggregates have their own setting. */
static uint64_t class_retention_s(const pol_policy *policy, fv_class cls)
{
    if (cls == FV_CLASS_AGGREGATE)
        return pol_aggregates_retention_s(policy);
    return pol_retention_s(policy, cls);
}

/* Escrow the identifiers behind the pseudonyms of the per-host record
 * just stored. Alerts and aggregates only repeat pseudonyms of stored
 * records, or hold none. */
static void escrow_stored(fv_pipeline *p, fv_class cls, uint64_t now_us)
{
    if (p->escrow == NULL || cls == FV_CLASS_ALERT || cls == FV_CLASS_AGGREGATE)
        return;
    anon_epoch_info epoch;
    anon_epoch(p->anon, &epoch);
    note_rc(p, fv_escrow_record_stored(p->escrow, epoch.epoch_id, now_us));
}

static void store_record(fv_pipeline *p, fv_class cls, const void *rec)
{
    p->activity++;
    uint64_t now_us = fv_pipeline_now_us(p);
    int rc = store_put(p->store, cls, rec, now_us);
    if (rc == FV_OK) {
        p->records[cls]++;
        escrow_stored(p, cls, now_us);
        fv_pipeline_export(p, cls, rec, now_us);
    } else {
        note_rc(p, rc);
    }
}

/*
 * Count flow R into the aggregates. The internal side is the source when
 * it is internal, else the destination. A flow between two external
 * addresses has no internal host and is not counted. SRC_INTERNAL and
 * DST_INTERNAL are fv_endpoint_is_internal of R's endpoints.
 */
static void count_aggregate(fv_pipeline *p, const fv_flow_record *r, bool src_internal,
                            bool dst_internal)
{
    if (p->aggregates == NULL || !pol_class_enabled(p->policy, POL_CLASS_AGGREGATES))
        return;
    if (!src_internal && !dst_internal)
        return;

    const fv_endpoint *host = src_internal ? &r->src : &r->dst;
    const fv_endpoint *peer = NULL;    /* stays NULL for internal-to-internal flows */
    if (!src_internal)
        peer = &r->src;
    else if (!dst_internal)
        peer = &r->dst;
    fv_aggregate_flow a = {
        .first_us = r->first_us,
        .last_us = r->last_us,
        .zone = host->zone,
        .host = host->addr,
        .proto = r->proto,
        .peer = peer,
        .dport = r->dport,
        .continued = r->continued != 0,
        .packets = r->pkts_fwd + r->pkts_rev,
        .bytes_out = src_internal ? r->bytes_fwd : r->bytes_rev,
        .bytes_in = src_internal ? r->bytes_rev : r->bytes_fwd,
    };
    int rc = fv_aggregator_add(p->aggregates, &a);
    if (rc != FV_OK)
        fv_warning("a flow was not counted in the aggregates: %s", fv_strerror(rc));
}

static void on_aggregate(void *ctx, const fv_aggregate_record *rec)
{
    fv_pipeline *p = ctx;
    if (pol_class_enabled(p->policy, POL_CLASS_AGGREGATES))
        store_record(p, FV_CLASS_AGGREGATE, rec);
}

static void sink_on_flow(void *ctx, const cap_flow *f)
{
    fv_pipeline *p = ctx;
    fv_escrow_begin_record(p->escrow);
    fv_flow_record r;
    memset(&r, 0, sizeof r);

    /* Decided at the flow's start, with the MACs of its first frames
     * (none inside a tunnel, where they belong to the tunnel endpoints). */
    bool macs = f->has_mac && f->tunnel_type == FV_TUNNEL_NONE;
    bool src_in_zone = prefetch_endpoint(p, &f->src);
    bool dst_in_zone = prefetch_endpoint(p, &f->dst);
    if (f->has_mac) {
        anon_prefetch(p->anon, ANON_TYPE_MAC, f->src_mac, 6);
        anon_prefetch(p->anon, ANON_TYPE_MAC, f->dst_mac, 6);
    }
    /* The notes at the end of this function read these slots. */
    if (src_in_zone)
        fv_seenhosts_prefetch(p->seen_hosts, &f->src);
    if (dst_in_zone)
        fv_seenhosts_prefetch(p->seen_hosts, &f->dst);
    pol_mode mode = stricter(host_mode(p, &f->src, macs ? f->src_mac : NULL, f->first_us),
                             host_mode(p, &f->dst, macs ? f->dst_mac : NULL, f->first_us));
    if (mode == POL_EXCLUDE)
        return;

    r.first_us = f->first_us;
    r.last_us = f->last_us;
    make_endpoint(p, &f->src, &r.src);
    make_endpoint(p, &f->dst, &r.dst);
    r.sport = f->sport;
    r.dport = f->dport;
    r.proto = f->proto;
    r.end_reason = f->end_reason;
    r.icmp_type = f->icmp_type;
    r.icmp_code = f->icmp_code;
    r.tcp_flags_fwd = f->tcp_flags_fwd;
    r.tcp_flags_rev = f->tcp_flags_rev;
    r.vlan = f->vlan;
    r.pkts_fwd = f->pkts_fwd;
    r.pkts_rev = f->pkts_rev;
    r.bytes_fwd = f->bytes_fwd;
    r.bytes_rev = f->bytes_rev;
    r.app = f->app;
    r.initiator = f->initiator;
    r.continued = f->continued ? 1 : 0;
    r.icmp_quoted = f->icmp_quoted ? 1 : 0;
    r.rtt_us = f->rtt_us;
    r.retrans_fwd = f->retrans_fwd;
    r.retrans_rev = f->retrans_rev;
    r.ooo_fwd = f->ooo_fwd;
    r.ooo_rev = f->ooo_rev;
    r.icmp_errors = f->icmp_errors;
    /* Tunnel endpoints are addresses like any other: pseudonymized in a zone. */
    r.tunnel_type = f->tunnel_type;
    if (f->tunnel_type != FV_TUNNEL_NONE) {
        make_endpoint(p, &f->outer_src, &r.outer_src);
        make_endpoint(p, &f->outer_dst, &r.outer_dst);
    }

    /* MAC addresses identify devices, so they are always pseudonymized,
     * whatever zone the IP address is in. */
    if (f->has_mac) {
        r.has_mac = 1;
        anon_pseudonym(p->anon, ANON_TYPE_MAC, f->src_mac, 6, r.src_mac);
        anon_pseudonym(p->anon, ANON_TYPE_MAC, f->dst_mac, 6, r.dst_mac);
    }

    bool src_internal = fv_endpoint_is_internal(&r.src);
    bool dst_internal = fv_endpoint_is_internal(&r.dst);
    count_aggregate(p, &r, src_internal, dst_internal);

    /* Detectors read stored flows only: with the flows class off, or for
     * aggregate-mode hosts, they see nothing. */
    if (!may_store(p, FV_CLASS_FLOW, mode))
        return;
    store_record(p, FV_CLASS_FLOW, &r);
    detect_flow(p, &r);
    fv_indicator_hook_flow(p->indicators, f, &r);
    if (src_internal)
        fv_seenhosts_note(p->seen_hosts, &f->src, &r.src);
    if (dst_internal)
        fv_seenhosts_note(p->seen_hosts, &f->dst, &r.dst);
}

/* Store answer address ADDR (FAMILY 4 or 6) like an endpoint address,
 * as the address mode of its zone says. */
static void make_dns_addr(fv_pipeline *p, uint8_t family, const uint8_t *addr, fv_dns_addr *out)
{
    uint8_t full[16] = {0};    /* the zone lookup reads a 16-byte buffer */
    memcpy(full, addr, family == 4 ? 4 : 16);
    fv_stored_addr stored;
    (void)fv_apply_address_mode(p->policy, p->anon, family, full, &stored);

    memset(out, 0, sizeof *out);
    out->kind = stored.kind;
    memcpy(out->addr, stored.addr, sizeof out->addr);
    out->prefix_len = stored.prefix_len;
}

/* True if the host at answer address ADDR (FAMILY 4 or 6) is excluded
 * at TS_US. Its address is left out of the record: an excluded host is
 * not recorded, not even as the answer to another host's question. */
static bool dns_addr_excluded(fv_pipeline *p, uint8_t family, const uint8_t *addr,
                              uint64_t ts_us)
{
    cap_ip ip;
    memset(&ip, 0, sizeof ip);
    ip.family = family;
    memcpy(ip.addr, addr, family == 4 ? 4 : 16);
    return host_mode(p, &ip, NULL, ts_us) == POL_EXCLUDE;
}

/* Copy the questions and answers of D into R, whose qname must already
 * contain D's qname minimized with SOURCE. Every name goes through
 * fv_minimize_name like qname, because reverse names and mDNS names in
 * any question or CNAME target can hold an internal address or a host
 * name. */
static void dns_copy_details(fv_pipeline *p, const cap_dns *d, fv_name_source source,
                             fv_dns_record *r)
{
    r->protocol = d->protocol;
    r->qdcount = d->qdcount;

    r->question_count = d->question_count <= FV_DNS_QUESTIONS_MAX ? d->question_count
                                                                   : FV_DNS_QUESTIONS_MAX;
    for (unsigned i = 0; i < r->question_count; i++) {
        fv_dns_question *q = &r->questions[i];
        q->qtype = d->questions[i].qtype;
        q->qclass = d->questions[i].qclass;
        /* The first question is usually the name already minimized into
         * r->qname. The result depends only on the name and SOURCE, so
         * it is copied instead of computed twice. */
        _Static_assert(sizeof q->name == sizeof r->qname, "question and qname sizes differ");
        if (strcmp(d->questions[i].name, d->qname) == 0) {
            memcpy(q->name, r->qname, sizeof q->name);
        } else {
            fv_str_copy(q->name, sizeof q->name, d->questions[i].name);
            fv_minimize_domain(p->policy, p->anon, source, q->name, sizeof q->name);
        }
    }

    unsigned a_count = d->a_count <= FV_DNS_ADDRS_MAX ? d->a_count : FV_DNS_ADDRS_MAX;
    r->answers_a_count = 0;
    for (unsigned i = 0; i < a_count; i++) {
        if (!dns_addr_excluded(p, 4, d->a[i], d->ts_us))
            make_dns_addr(p, 4, d->a[i], &r->answers_a[r->answers_a_count++]);
    }
    unsigned aaaa_count = d->aaaa_count <= FV_DNS_ADDRS_MAX ? d->aaaa_count : FV_DNS_ADDRS_MAX;
    r->answers_aaaa_count = 0;
    for (unsigned i = 0; i < aaaa_count; i++) {
        if (!dns_addr_excluded(p, 6, d->aaaa[i], d->ts_us))
            make_dns_addr(p, 6, d->aaaa[i], &r->answers_aaaa[r->answers_aaaa_count++]);
    }

    r->cname_count = d->cname_count <= FV_DNS_CNAMES_MAX ? d->cname_count : FV_DNS_CNAMES_MAX;
    for (unsigned i = 0; i < r->cname_count; i++) {
        fv_str_copy(r->cnames[i], sizeof r->cnames[i], d->cnames[i]);
        fv_minimize_domain(p->policy, p->anon, source, r->cnames[i], sizeof r->cnames[i]);
    }
}

/* True if any name of D (the question, every listed question, every
 * CNAME) lies under a never-record suffix. */
static bool dns_never_recorded(const fv_pipeline *p, const cap_dns *d)
{
    if (fv_name_never_recorded(p->policy, d->qname))
        return true;
    unsigned questions = d->question_count <= FV_DNS_QUESTIONS_MAX ? d->question_count
                                                                    : FV_DNS_QUESTIONS_MAX;
    for (unsigned i = 0; i < questions; i++) {
        if (fv_name_never_recorded(p->policy, d->questions[i].name))
            return true;
    }
    unsigned cnames = d->cname_count <= FV_DNS_CNAMES_MAX ? d->cname_count : FV_DNS_CNAMES_MAX;
    for (unsigned i = 0; i < cnames; i++) {
        if (fv_name_never_recorded(p->policy, d->cnames[i]))
            return true;
    }
    return false;
}

static void sink_on_dns(void *ctx, const cap_dns *d)
{
    fv_pipeline *p = ctx;
    fv_escrow_begin_record(p->escrow);
    fv_dns_record r;
    memset(&r, 0, sizeof r);

    (void)prefetch_endpoint(p, &d->client);
    (void)prefetch_endpoint(p, &d->server);
    if (!may_store(p, FV_CLASS_DNS, pair_mode(p, &d->client, &d->server, d->ts_us)))
        return;
    /* A never-record name drops the whole record; only the count stays. */
    if (dns_never_recorded(p, d)) {
        p->names_never_recorded[FV_CLASS_DNS]++;
        return;
    }

    r.ts_us = d->ts_us;
    make_endpoint(p, &d->client, &r.client);
    make_endpoint(p, &d->server, &r.server);
    r.client_port = d->client_port;
    r.server_port = d->server_port;
    r.transport = d->transport;
    r.is_response = d->is_response ? 1 : 0;
    r.rcode = d->rcode;
    r.txid = d->txid;
    r.qtype = d->qtype;
    r.qclass = d->qclass;
    r.answer_count = d->answer_count;
    fv_str_copy(r.qname, sizeof r.qname, d->qname);
    /* mDNS and LLMNR names are device and person names when they come
     * from a host in a zone; from outside every zone they are kept like
     * the addresses. */
    bool local = (d->server_port == 5353 || d->server_port == 5355 || d->client_port == 5353 ||
                  d->client_port == 5355 || d->protocol != FV_DNS_PROTO_DNS) &&
                 (fv_endpoint_is_internal(&r.client) || fv_endpoint_is_internal(&r.server));
    fv_name_source source = local ? FV_NAME_LOCAL_DNS : FV_NAME_DNS;
    /* A unicast question from a host in a zone may name a local machine
     * ("laptop-jane.lan"). */
    if (!local && fv_endpoint_is_internal(&r.client))
        source = FV_NAME_INTERNAL_DNS;
    /* A NetBIOS name is a host name as a whole, dots and all. */
    if (local && d->protocol == FV_DNS_PROTO_NBNS)
        source = FV_NAME_HOST_NAME;
    fv_minimize_domain(p->policy, p->anon, source, r.qname, sizeof r.qname);
    dns_copy_details(p, d, source, &r);
    store_record(p, FV_CLASS_DNS, &r);
    detect_dns(p, &r);
    fv_indicator_hook_dns(p->indicators, d, &r);
}

static void sink_on_tls(void *ctx, const cap_tls *t)
{
    fv_pipeline *p = ctx;
    fv_escrow_begin_record(p->escrow);
    fv_tls_record r;
    memset(&r, 0, sizeof r);

    (void)prefetch_endpoint(p, &t->client);
    (void)prefetch_endpoint(p, &t->server);
    if (!may_store(p, FV_CLASS_TLS, pair_mode(p, &t->client, &t->server, t->ts_us)))
        return;
    if (fv_name_never_recorded(p->policy, t->sni)) {
        p->names_never_recorded[FV_CLASS_TLS]++;
        return;
    }

    r.ts_us = t->ts_us;
    make_endpoint(p, &t->client, &r.client);
    make_endpoint(p, &t->server, &r.server);
    r.client_port = t->client_port;
    r.server_port = t->server_port;
    r.version = t->version;
    fv_str_copy(r.sni, sizeof r.sni, t->sni);
    /* A server name sent by or to a host in a zone may name a local
     * machine ("nas.home.arpa"), as DNS questions of such hosts may. */
    fv_minimize_domain(p->policy, p->anon,
                       fv_endpoint_is_internal(&r.client) || fv_endpoint_is_internal(&r.server)
                           ? FV_NAME_INTERNAL_HOST_HEADER
                           : FV_NAME_HOST_HEADER,
                       r.sni, sizeof r.sni);
    /* Software fingerprints and protocol parameters, not identities: kept. */
    r.transport = t->transport;
    r.quic_version = t->quic_version;
    r.alpn_count = t->alpn_count <= FV_TLS_ALPN_MAX ? t->alpn_count : FV_TLS_ALPN_MAX;
    memcpy(r.alpn, t->alpn, sizeof r.alpn);
    r.supported_versions_count = t->supported_versions_count <= FV_TLS_VERSIONS_MAX
                                     ? t->supported_versions_count
                                     : FV_TLS_VERSIONS_MAX;
    memcpy(r.supported_versions, t->supported_versions, sizeof r.supported_versions);
    r.cipher_count = t->cipher_count;
    r.extension_count = t->extension_count;
    fv_str_copy(r.ja3, sizeof r.ja3, t->ja3);
    fv_str_copy(r.ja4, sizeof r.ja4, t->ja4);
    r.server_version = t->server_version;
    r.server_cipher = t->server_cipher;
    fv_str_copy(r.server_alpn, sizeof r.server_alpn, t->server_alpn);
    fv_str_copy(r.ja3s, sizeof r.ja3s, t->ja3s);
    store_record(p, FV_CLASS_TLS, &r);
    fv_indicator_hook_tls(p->indicators, t, &r);
}

static bool is_address_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           c == ':' || c == '.';
}

/*
 * Copy free text IN to OUT (OUT_LEN bytes), replacing every IPv4 or IPv6
 * literal that the policy does not keep by the text the address fields
 * get (pseudonym token, prefix-preserving address or "net/len"). A literal is a maximal run of hex digits,
 * ':' and '.' that inet_pton accepts (a trailing '.' is left out).
 */
static void scrub_address_literals(fv_pipeline *p, const char *in, char *out, size_t out_len)
{
    size_t o = 0;
    size_t i = 0;

    out[0] = '\0';
    while (in[i] != '\0' && o + 1 < out_len) {
        char literal[INET6_ADDRSTRLEN + 1];
        uint8_t addr[16] = {0};
        int family = 0;

        /* An IPv4 literal is a run of digits and dots, so a port after
         * it ("10.0.0.5:1389") does not hide it. */
        size_t run = 0;
        while ((in[i + run] >= '0' && in[i + run] <= '9') || in[i + run] == '.')
            run++;
        while (run > 0 && in[i + run - 1] == '.')
            run--;
        if (run >= 7 && run < sizeof literal) {
            memcpy(literal, in + i, run);
            literal[run] = '\0';
            if (inet_pton(AF_INET, literal, addr) == 1)
                family = 4;
        }
        if (family == 0) {
            run = 0;
            while (is_address_char(in[i + run]))
                run++;
            while (run > 0 && in[i + run - 1] == '.')
                run--;
            if (run >= 2 && run < sizeof literal) {
                memcpy(literal, in + i, run);
                literal[run] = '\0';
                if (strchr(literal, ':') != NULL && inet_pton(AF_INET6, literal, addr) == 1)
                    family = 6;
            }
        }
        fv_endpoint ep;
        memset(&ep, 0, sizeof ep);
        if (family != 0) {
            fv_stored_addr stored;
            (void)fv_apply_address_mode(p->policy, p->anon, family, addr, &stored);
            ep.kind = stored.kind;
            memcpy(ep.addr, stored.addr, sizeof ep.addr);
            ep.prefix_len = stored.prefix_len;
        }
        if (family != 0 && ep.kind != FV_EP_IPV4 && ep.kind != FV_EP_IPV6) {
            char text[FV_ENDPOINT_TEXT_MAX];
            fv_endpoint_format(&ep, text);
            size_t n = strlen(text);
            if (!(n < out_len - o))
                break;
            memcpy(out + o, text, n);
            o += n;
            i += run;
            continue;
        }
        /* Not an address to rewrite here: copy one character and try
         * again at the next, so a literal glued to a word is still found. */
        out[o++] = in[i++];
    }
    out[o] = '\0';
}

static void sink_on_http(void *ctx, const cap_http *h)
{
    fv_pipeline *p = ctx;
    fv_escrow_begin_record(p->escrow);
    fv_http_record r;
    memset(&r, 0, sizeof r);

    (void)prefetch_endpoint(p, &h->client);
    (void)prefetch_endpoint(p, &h->server);
    if (!may_store(p, FV_CLASS_HTTP, pair_mode(p, &h->client, &h->server, h->ts_us)))
        return;
    if (fv_name_never_recorded(p->policy, h->host)) {
        p->names_never_recorded[FV_CLASS_HTTP]++;
        return;
    }

    r.ts_us = h->ts_us;
    make_endpoint(p, &h->client, &r.client);
    make_endpoint(p, &h->server, &r.server);
    r.client_port = h->client_port;
    r.server_port = h->server_port;
    fv_str_copy(r.method, sizeof r.method, h->method);
    fv_str_copy(r.host, sizeof r.host, h->host);
    fv_minimize_domain(p->policy, p->anon,
                       fv_endpoint_is_internal(&r.client) || fv_endpoint_is_internal(&r.server)
                           ? FV_NAME_INTERNAL_HOST_HEADER
                           : FV_NAME_HOST_HEADER,
                       r.host, sizeof r.host);
    r.uri_length = h->uri_length;
    r.status = h->status;
    /* The product tokens of a User-Agent name software, but its comments
     * and free words can name the device or its user, so for a client in
     * a zone only the product tokens are kept (fv_minimize_user_agent).
     * Address literals are scrubbed from every User-Agent, because
     * exploit strings sent from outside carry them. */
    const char *user_agent = h->user_agent;
    char reduced[sizeof r.user_agent];
    if (fv_endpoint_is_internal(&r.client)) {
        (void)fv_minimize_user_agent(h->user_agent, reduced, sizeof reduced);
        user_agent = reduced;
    }
    scrub_address_literals(p, user_agent, r.user_agent, sizeof r.user_agent);
    store_record(p, FV_CLASS_HTTP, &r);
    fv_indicator_hook_http(p->indicators, h, &r);
}

/* Return true if IPv4 address A (network order) is set and in a zone. */
static bool ipv4_internal(const fv_pipeline *p, const uint8_t a[4])
{
    uint8_t full[16] = {0};    /* the zone lookup reads a 16-byte buffer */

    memcpy(full, a, 4);
    if (memcmp(full, "\0\0\0\0", 4) == 0)
        return false;
    return fv_identity_zone(p->policy, 4, full) != NULL;
}

/*
 * Decide whether a DHCP message's host name belongs to a monitored host:
 * yes when any address known for the client (requested address, ciaddr,
 * yiaddr, the client side's IP) is in a zone. A client that has no
 * address yet (all of them 0.0.0.0) cannot be placed, so its name counts
 * as an identity whenever the policy has any zone at all.
 */
static bool dhcp_client_internal(const fv_pipeline *p, const cap_dhcp *d)
{
    bool known = false;
    const uint8_t *addrs[3] = {d->ciaddr, d->yiaddr, d->has_requested_ip ? d->requested_ip : NULL};

    for (unsigned i = 0; i < 3; i++) {
        if (addrs[i] == NULL || memcmp(addrs[i], "\0\0\0\0", 4) == 0)
            continue;
        known = true;
        if (ipv4_internal(p, addrs[i]))
            return true;
    }
    if (d->client.family == 4 && memcmp(d->client.addr, "\0\0\0\0", 4) != 0 &&
        memcmp(d->client.addr, "\xff\xff\xff\xff", 4) != 0) {
        known = true;
        if (ipv4_internal(p, d->client.addr))
            return true;
    }
    return !known && pol_zone_count(p->policy) > 0;
}

/* Remember the client's MAC for its address and its host name, from a
 * request (requested address, ciaddr) or an ACK (yiaddr). */
static void dhcp_learn(fv_pipeline *p, const cap_dhcp *d)
{
    if (!d->has_chaddr)
        return;
    if (pol_has_hostname_groups(p->policy))
        fv_hostmap_learn_name(p->hosts, d->chaddr, d->hostname);

    const uint8_t *addrs[3] = {d->has_requested_ip ? d->requested_ip : NULL, d->ciaddr,
                               d->msg_type == 5 ? d->yiaddr : NULL};   /* 5: DHCPACK */
    for (unsigned i = 0; i < 3; i++) {
        if (addrs[i] == NULL || memcmp(addrs[i], "\0\0\0\0", 4) == 0)
            continue;
        cap_ip ip = {.family = 4};
        memcpy(ip.addr, addrs[i], 4);
        if (fv_hostmap_learn_mac(p->hosts, &ip, d->chaddr, true))
            decision_cache_forget(p, &ip);
    }
}

/*
 * Mode of a DHCP exchange. The client often has no address yet
 * (0.0.0.0), so the packet hook could not place it: decide here by its
 * MAC and host name, with its best-known address.
 */
static pol_mode dhcp_mode(fv_pipeline *p, const cap_dhcp *d)
{
    pol_mode mode = pair_mode(p, &d->client, &d->server, d->ts_us);
    if (mode == POL_EXCLUDE || !dhcp_client_internal(p, d))
        return mode;

    uint8_t addr[16] = {0};
    int family = 0;
    const uint8_t *known[3] = {d->ciaddr, d->yiaddr, d->has_requested_ip ? d->requested_ip : NULL};
    for (unsigned i = 0; i < 3 && family == 0; i++) {
        if (known[i] != NULL && memcmp(known[i], "\0\0\0\0", 4) != 0) {
            memcpy(addr, known[i], 4);
            family = 4;
        }
    }
    pol_host host = {
        .family = family,
        .addr = family != 0 ? addr : NULL,
        .mac = d->has_chaddr ? d->chaddr : NULL,
        .hostname = d->hostname[0] != '\0' ? d->hostname : NULL,
    };
    uint64_t traffic_s = d->ts_us / 1000000u;
    pol_decision decision = pol_decide(p->policy, &host, traffic_s);
    uint64_t now_s = decision_now_s(p);
    if (decision.mode != POL_EXCLUDE && now_s != traffic_s &&
        pol_decide(p->policy, &host, now_s).expired)
        decision.mode = POL_EXCLUDE;
    return stricter(mode, decision.mode);
}

static void sink_on_dhcp(void *ctx, const cap_dhcp *d)
{
    fv_pipeline *p = ctx;
    fv_escrow_begin_record(p->escrow);
    fv_dhcp_record r;
    memset(&r, 0, sizeof r);

    pipeline_hosts_lock(p);
    dhcp_learn(p, d);
    pipeline_hosts_unlock(p);
    if (!may_store(p, FV_CLASS_DHCP, dhcp_mode(p, d)))
        return;

    r.ts_us = d->ts_us;
    make_endpoint(p, &d->client, &r.client);
    make_endpoint(p, &d->server, &r.server);
    r.client_port = d->client_port;
    r.server_port = d->server_port;
    r.op = d->op;
    r.msg_type = d->msg_type;
    /* The client MAC identifies a device wherever it is: always a pseudonym. */
    if (d->has_chaddr) {
        r.has_client_mac = 1;
        anon_pseudonym(p->anon, ANON_TYPE_MAC, d->chaddr, 6, r.client_mac);
    }
    fv_str_copy(r.hostname, sizeof r.hostname, d->hostname);
    /* A roaming client asks for its last address from another network
     * before it is given one in a zone, under the same MAC pseudonym, so
     * any zone in the policy makes every DHCP host name a token. */
    if (pol_zone_count(p->policy) > 0)
        fv_minimize_name(p->policy, p->anon, FV_NAME_HOST_NAME, r.hostname, sizeof r.hostname);
    /* A vendor class names the client software, not a person: kept. */
    fv_str_copy(r.vendor_class, sizeof r.vendor_class, d->vendor_class);
    if (d->has_requested_ip) {
        cap_ip req = {.family = 4};
        fv_endpoint ep;

        memcpy(req.addr, d->requested_ip, 4);
        make_endpoint(p, &req, &ep);
        fv_endpoint_format(&ep, r.requested_ip);
    }
    store_record(p, FV_CLASS_DHCP, &r);
}

static void sink_on_ssh(void *ctx, const cap_ssh *s)
{
    fv_pipeline *p = ctx;
    fv_escrow_begin_record(p->escrow);
    fv_ssh_record r;
    memset(&r, 0, sizeof r);

    if (!may_store(p, FV_CLASS_SSH, pair_mode(p, &s->client, &s->server, s->ts_us)))
        return;

    r.ts_us = s->ts_us;
    make_endpoint(p, &s->client, &r.client);
    make_endpoint(p, &s->server, &r.server);
    r.client_port = s->client_port;
    r.server_port = s->server_port;
    /* Banners and HASSH name software, not people: kept. */
    fv_str_copy(r.client_banner, sizeof r.client_banner, s->client_banner);
    fv_str_copy(r.server_banner, sizeof r.server_banner, s->server_banner);
    fv_str_copy(r.hassh, sizeof r.hassh, s->hassh);
    fv_str_copy(r.hassh_server, sizeof r.hassh_server, s->hassh_server);
    store_record(p, FV_CLASS_SSH, &r);
}

/*
 * Detector state across restarts: loaded once after the engine is
 * created, saved at every sweep and at close. A failure costs learned
 * baselines, never the ingest, so it is logged and not returned.
 */
static void pipeline_detstate_load(fv_pipeline *p)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = store_detstate_get(p->store, &data, &len);
    if (rc == FV_OK)
        rc = det_engine_load(p->detect, data, len);
    p->detstate_loaded = rc == FV_OK;
    if (rc != FV_OK && rc != FV_ERR_NOT_FOUND)
        fv_warning("detector state not restored (%s); baselines learn again", fv_strerror(rc));
    free(data);
}

static void pipeline_detstate_save(fv_pipeline *p, uint64_t now_us)
{
    uint8_t *data = NULL;
    size_t len = 0;
    detect_sync(p);
    int rc = det_engine_save(p->detect, &data, &len);
    if (rc == FV_OK) {
        rc = store_detstate_put(p->store, data, len, now_us);
        /* A failed store write (a full disk) fails the run: an ingest
         * must then not be recorded as complete, or running it again to
         * finish would store every record a second time. */
        note_rc(p, rc);
    }
    if (rc != FV_OK)
        fv_warning("detector state not saved: %s", fv_strerror(rc));
    free(data);
}

static void on_alert(void *ctx, const fv_alert_record *alert)
{
    fv_pipeline *p = ctx;
    p->activity++;
    if (!pol_class_enabled(p->policy, FV_CLASS_ALERT))
        return;
    /* A repeat within the policy's alert window merges into the earlier
     * alert (count, last seen, newest evidence) instead of adding one. */
    const pol_detect *det = pol_detect_config(p->policy);
    bool merged = false;
    uint64_t id = 0;
    int rc = store_alert_upsert(p->store, alert, det != NULL ? det->alert_window_s : 0,
                                fv_pipeline_now_us(p), &id, &merged);
    if (rc != FV_OK)
        note_rc(p, rc);
    else if (!merged)
        p->records[FV_CLASS_ALERT]++;
    if (rc == FV_OK)
        fv_pipeline_export_alert(p, id, fv_pipeline_now_us(p));
}

/* Format the first 8 bytes of HASH as 16 lowercase hex digits into OUT. */
static void hash_prefix_text(uint64_t prefix, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)prefix);
}

static uint64_t policy_hash_prefix(const pol_policy *policy)
{
    uint8_t hash[32];
    pol_hash(policy, hash);
    uint64_t prefix = 0;
    for (int i = 0; i < 8; i++)
        prefix = prefix << 8 | hash[i];
    return prefix;
}

void fv_pipeline_record_policy(fv_pipeline *p, const pol_policy *old_policy, uint64_t now_us)
{
    uint64_t stored = 0;
    uint64_t current = policy_hash_prefix(p->policy);
    if (store_meta_get(p->store, STORE_META_POLICY_HASH, &stored) != FV_OK)
        stored = 0;
    if (stored == current)
        return;

    char old_text[17], new_text[17];
    hash_prefix_text(stored, old_text);
    hash_prefix_text(current, new_text);
    char summary[1024];
    if (old_policy == NULL) {
        snprintf(summary, sizeof summary, stored == 0 ? "first policy recorded in this store"
                                                      : "policy file changed between runs");
    } else if (pol_diff_summary(old_policy, p->policy, summary, sizeof summary) != FV_OK) {
        snprintf(summary, sizeof summary, "policy changed (summary too long to record)");
    }
    /* A new store has no policy to compare with. */
    if (stored == 0 && old_policy == NULL)
        fv_notice("policy recorded: %s is the first policy of this store", new_text);
    else
        fv_notice("policy changed: old=%s new=%s: %s", old_text, new_text, summary);

    char params[64];
    snprintf(params, sizeof params, "old=%s new=%s", old_text, new_text);
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.actor, sizeof e.actor, "system");
    snprintf(e.action, sizeof e.action, "policy.change");
    snprintf(e.object, sizeof e.object, "policy");
    snprintf(e.params, sizeof e.params, "%s", params);
    snprintf(e.reason, sizeof e.reason, "%.255s", summary);
    /* Evidence is dated by the wall clock, not by an ingest's --now. */
    (void)now_us;
    int rc = store_audit_append(p->store, &e, fv_now_us(), NULL);
    if (rc != FV_OK)
        fv_warning("could not append the policy change to the audit log: %s", fv_strerror(rc));
    rc = store_meta_set(p->store, STORE_META_POLICY_HASH, current);
    if (rc != FV_OK)
        fv_warning("could not record the policy hash in the store: %s", fv_strerror(rc));
}

/*
 * Start, stop or re-key escrow to match the running policy. Entries
 * already stored stay sealed to the officers of their time; a pseudonym
 * first seen under the old officers is not sealed again in this epoch.
 */
static int pipeline_escrow_configure(fv_pipeline *p)
{
    anon_set_observer(p->anon, NULL, NULL);
    fv_escrow_destroy(&p->escrow);
    if (!pol_escrow_enabled(p->policy))
        return FV_OK;
    int rc = fv_escrow_create(p->policy, p->store, &p->escrow);
    if (rc != FV_OK) {
        fv_error("cannot start key escrow: %s; identifiers are not escrowed",
                 fv_strerror(rc));
        return rc;
    }
    anon_set_observer(p->anon, fv_escrow_observe, p->escrow);
    return FV_OK;
}

int fv_pipeline_reload(fv_pipeline *p, const char *policy_path, uint64_t now_us)
{
    char err[1024];
    pol_policy *next = NULL;
    int rc = pol_load(policy_path, &next, err, sizeof err);
    if (rc != FV_OK) {
        fv_error("policy reload rejected, the running policy stays in force: %s", err);
        return rc;
    }
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        rc = store_set_retention(p->store, (fv_class)c, class_retention_s(next, (fv_class)c));
        if (rc != FV_OK) {
            fv_error("policy reload failed: cannot record the retention limits: %s",
                     fv_strerror(rc));
            pol_destroy(&next);
            return rc;
        }
    }
    (void)store_meta_set(p->store, STORE_META_SWEEP_INTERVAL, pol_sweep_interval_s(next));
    if (store_meta_set(p->store, STORE_META_K_THRESHOLD, pol_k_threshold(next)) != FV_OK)
        fv_warning("could not record the reporting k-threshold; the API keeps the old one");
    rc = store_set_audit_retention(p->store, pol_audit_retention_s(next));
    if (rc != FV_OK)
        fv_warning("could not record the audit retention limit: %s", fv_strerror(rc));

    p->activity++;
    pol_policy *old_policy = p->policy;
    if (p->sync != NULL)
        pthread_rwlock_wrlock(&p->sync->policy_lock);
    p->policy = next;
    /* Cached decisions were made under the old policy. Cleared before
     * the policy lock is released, so no worker sees one of them. */
    pipeline_hosts_lock(p);
    decision_cache_clear(p);
    pipeline_hosts_unlock(p);
    if (p->sync != NULL)
        pthread_rwlock_unlock(&p->sync->policy_lock);
    (void)fv_indicator_hook_reload(&p->indicators, p->policy, on_alert, p);
    pipeline_escrow_configure(p);
    fv_pipeline_record_policy(p, old_policy, now_us);
    pol_destroy(&old_policy);
    fv_notice("policy reloaded from %s", policy_path);
    return FV_OK;
}

int fv_pipeline_open(fv_pipeline *p, const char *policy_path, const char *db_dir,
                     uint64_t fixed_now_us, char *err, size_t err_len)
{
    int rc;
    char key_path[4096];

    memset(p, 0, sizeof *p);
    p->fixed_now_us = fixed_now_us;
    uint64_t now_us = fv_pipeline_now_us(p);

    rc = pol_load(policy_path, &p->policy, err, err_len);
    if (rc != FV_OK)
        goto out;
    if (pol_domain_mode_get(p->policy) == POL_DOMAINS_REGISTRABLE && !fv_psl_available()) {
        snprintf(err, err_len, "%s: domains.mode registrable needs the public suffix list, but"
                 " libpsl has none; install the publicsuffix package or choose another mode",
                 policy_path);
        rc = FV_ERR_INVALID;
        goto out;
    }

    /* Everything that can fail on the policy's own files (indicator
     * lists, export destinations) is opened before the store, so a
     * failed start leaves no store or key behind. */
    rc = fv_indicator_hook_open(p->policy, on_alert, p, &p->indicators, err, err_len);
    if (rc != FV_OK)
        goto out;
    rc = fv_pipeline_export_open(p, err, err_len);
    if (rc != FV_OK)
        goto out;

    rc = store_open(db_dir, 0, &p->store, err, err_len);
    if (rc != FV_OK)
        goto out;

    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        rc = store_set_retention(p->store, (fv_class)c,
                                 class_retention_s(p->policy, (fv_class)c));
        if (rc != FV_OK) {
            snprintf(err, err_len, "%s: cannot record the retention limits: %s", db_dir,
                     fv_strerror(rc));
            goto out;
        }
    }

    /* Readers of the store (retention status, serve) judge whether the
     * sweeper is overdue from this interval. */
    rc = store_meta_set(p->store, STORE_META_SWEEP_INTERVAL, pol_sweep_interval_s(p->policy));
    if (rc != FV_OK) {
        snprintf(err, err_len, "%s: cannot record the sweep interval: %s", db_dir,
                 fv_strerror(rc));
        goto out;
    }
    rc = store_set_audit_retention(p->store, pol_audit_retention_s(p->policy));
    if (rc != FV_OK) {
        snprintf(err, err_len, "%s: cannot record the audit retention limit: %s", db_dir,
                 fv_strerror(rc));
        goto out;
    }
    /* `flowveil serve` has no policy of its own to hide small aggregate
     * groups with; it reads the threshold from here. */
    rc = store_meta_set(p->store, STORE_META_K_THRESHOLD, pol_k_threshold(p->policy));
    if (rc != FV_OK) {
        snprintf(err, err_len, "%s: cannot record the reporting k-threshold: %s", db_dir,
                 fv_strerror(rc));
        goto out;
    }
    fv_pipeline_record_policy(p, NULL, now_us);
    rc = fv_store_quota_apply(p, err, err_len);
    if (rc != FV_OK)
        goto out;

    if (snprintf(key_path, sizeof key_path, "%s/pseudonym.key", db_dir) >= (int)sizeof key_path) {
        snprintf(err, err_len, "database path is too long (%zu bytes)", strlen(db_dir));
        rc = FV_ERR_INVALID;
        goto out;
    }
    rc = anon_open(key_path, pol_rotation_s(p->policy), now_us / 1000000u, &p->anon, err,
                   err_len);
    if (rc != FV_OK)
        goto out;
    rc = pipeline_escrow_configure(p);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot start key escrow: %s", fv_strerror(rc));
        goto out;
    }
    rc = det_engine_create(pol_detect_config(p->policy), &p->detect);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create the detectors: %s", fv_strerror(rc));
        goto out;
    }
    pipeline_detstate_load(p);

    rc = fv_aggregator_create(AGGREGATE_CLOSE_DELAY_US, 0, on_aggregate, p, &p->aggregates);
    if (rc == FV_OK)
        rc = fv_hostmap_create(&p->hosts);
    if (rc == FV_OK)
        rc = fv_seenhosts_create(&p->seen_hosts);
    if (rc == FV_OK) {
        /* Huge pages: the slots are read at random, twice per packet. */
        p->decisions = fv_table_calloc(sizeof *p->decisions);
        if (p->decisions == NULL)
            rc = FV_ERR_NOMEM;
    }
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create the aggregates and host tables: %s",
                 fv_strerror(rc));
        goto out;
    }

    cap_sink sink = {
        .ctx = p,
        .is_excluded_host = sink_is_excluded_host,
        .on_flow = sink_on_flow,
        .on_dns = sink_on_dns,
        .on_tls = sink_on_tls,
        .on_http = sink_on_http,
        .on_dhcp = sink_on_dhcp,
        .on_ssh = sink_on_ssh,
    };
    rc = cap_engine_create(NULL, &sink, &p->capture);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create the capture engine: %s", fv_strerror(rc));
        goto out;
    }
    p->last_sweep_us = now_us;
    p->last_evaluate_us = now_us;

out:
    if (rc != FV_OK) {
        cap_engine_destroy(&p->capture);
        fv_aggregator_destroy(&p->aggregates);
        fv_hostmap_destroy(&p->hosts);
        decision_cache_destroy(p);
        fv_seenhosts_destroy(&p->seen_hosts);
        fv_indicator_hook_close(&p->indicators);
        det_engine_destroy(&p->detect);
        fv_escrow_destroy(&p->escrow);
        fv_pipeline_export_close(p);
        anon_close(&p->anon);
        store_close(&p->store);
        pol_destroy(&p->policy);
    }
    return rc;
}

/*
 * Add the never-record drops counted since the last call to the store's
 * counters "names_never_recorded_dns", "_tls" and "_http". The store
 * skips zero values, so a counter appears in /api/v1/counters from the
 * first dropped record of its class on.
 */
static void save_never_recorded_counters(fv_pipeline *p)
{
    static const char *const names[] = {"names_never_recorded_dns", "names_never_recorded_tls",
                                        "names_never_recorded_http"};
    static const fv_class classes[] = {FV_CLASS_DNS, FV_CLASS_TLS, FV_CLASS_HTTP};
    uint64_t values[sizeof classes / sizeof classes[0]];

    if (pol_never_record_count(p->policy) == 0)
        return;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        values[i] = p->names_never_recorded[classes[i]];

    int rc = store_run_counters_add(p->store, names, values, sizeof values / sizeof values[0]);
    if (rc != FV_OK) {
        fv_warning("could not store the never-record counters: %s", fv_strerror(rc));
        return;
    }
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        p->names_never_recorded[classes[i]] = 0;
}

/*
 * Add the capture counters gathered since the last call to the store, so
 * `flowveil serve` can show parser rejections and drops. flows_active is
 * a gauge, not a count, and is not stored.
 */
/* Gauges for GET /metrics (api_metrics.c), which reads them from the
 * store: the flow table size and the start of the current epoch. */
static void save_metric_gauges(fv_pipeline *p, uint64_t flows_active)
{
    anon_epoch_info epoch;
    anon_epoch(p->anon, &epoch);
    if (store_meta_set(p->store, STORE_META_FLOWS_ACTIVE, flows_active) != FV_OK ||
        store_meta_set(p->store, STORE_META_EPOCH_START, epoch.start_s) != FV_OK)
        fv_warning("could not store the metric gauges; /metrics shows older values");
}

static void save_capture_counters(fv_pipeline *p)
{
    size_t count = 0;
    const char *const *names = cap_stats_names(&count);
    cap_stats now;
    fv_pipeline_stats(p, &now);

    uint64_t current[sizeof(cap_stats) / sizeof(uint64_t)];
    uint64_t saved[sizeof(cap_stats) / sizeof(uint64_t)];
    uint64_t delta[sizeof(cap_stats) / sizeof(uint64_t)];
    memcpy(current, &now, sizeof current);
    memcpy(saved, &p->counters_saved, sizeof saved);
    for (size_t i = 0; i < count; i++) {
        bool gauge = strcmp(names[i], "flows_active") == 0;
        delta[i] = (!gauge && current[i] > saved[i]) ? current[i] - saved[i] : 0;
    }

    int rc = store_run_counters_add(p->store, names, delta, count);
    if (rc == FV_OK)
        p->counters_saved = now;
    else
        fv_warning("could not store the capture counters: %s", fv_strerror(rc));

    save_never_recorded_counters(p);
    save_metric_gauges(p, now.flows_active);
}

/* Audit an automatic sweep when it deleted something, and at most once
 * a day when it deleted nothing, so the trail shows the sweeper runs
 * without one entry per sweep interval. */
static void audit_automatic_sweep(fv_pipeline *p, const store_sweep_result *result,
                                  uint64_t now_us)
{
    uint64_t deleted = result->audit_deleted;
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++)
        deleted += result->deleted[c];
    if (deleted == 0 && p->last_quiet_sweep_audit_us != 0 &&
        now_us - p->last_quiet_sweep_audit_us < QUIET_SWEEP_AUDIT_INTERVAL_US)
        return;
    if (cli_audit_sweep(p->store, "system", result, now_us) == FV_OK && deleted == 0)
        p->last_quiet_sweep_audit_us = now_us;
}

static void rekey_one_host(void *ctx, const cap_ip *addr, uint8_t kind,
                           const uint8_t pseudonym[FV_PSEUDONYM_BYTES])
{
    fv_pipeline *p = ctx;
    fv_endpoint now;
    make_endpoint(p, addr, &now);
    /* A host whose zone or pseudonymization changed with a policy reload
     * is not moved; det_rekey_end drops its state. */
    if (now.kind == kind)
        det_rekey(p->detect, pseudonym, now.addr, kind);
    sodium_memzero(&now, sizeof now);
}

/*
 * Move the detector state of every host seen in the epoch that just
 * ended to its pseudonym under the new key, then forget the raw
 * addresses. Must run right after the rotation and before any flow of
 * the new epoch reaches the detectors. State of hosts not in the map
 * is dropped, so no alert raised from now on names an old pseudonym.
 */
static void rekey_detector(fv_pipeline *p)
{
    /* The queued records carry the old pseudonyms: observed first. */
    detect_sync(p);
    det_rekey_begin(p->detect);
    fv_seenhosts_foreach(p->seen_hosts, rekey_one_host, p);
    size_t dropped = det_rekey_end(p->detect);
    fv_info("detector state of %zu hosts moved to their new pseudonyms; %zu entries of other "
            "hosts dropped (%llu hosts were past the tracking bound)",
            fv_seenhosts_count(p->seen_hosts), dropped,
            (unsigned long long)fv_seenhosts_not_noted(p->seen_hosts));
    fv_seenhosts_clear(p->seen_hosts);
    p->detect_rekeyed = true;
}

/* Records per sweep transaction and the sweep time per tick. One
 * transaction of 10,000 deletions took up to 180 ms on the benchmark
 * machine (bench/store_api.sh), so 2,000 keep one near 40 ms. */
#define SWEEP_TICK_BATCH 2000u
#define SWEEP_TICK_BUDGET_US 20000u

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void add_sweep_result(store_sweep_result *sum, const store_sweep_result *r)
{
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++)
        sum->deleted[c] += r->deleted[c];
    sum->transactions += r->transactions;
    sum->audit_deleted += r->audit_deleted;
    sum->escrow_deleted += r->escrow_deleted;
    sum->keys_destroyed += r->keys_destroyed;
    sum->complete = r->complete;
}

/*
 * Run the retention sweep one transaction at a time until it completes
 * or, unless FORCE, SWEEP_TICK_BUDGET_US have passed. An unfinished
 * sweep continues on the next tick, so the writer never stops ingesting
 * for the whole sweep (about 21 s for 10 million records). The audit
 * entry sums every call of the sweep. FORCE (the last tick before close)
 * finishes the sweep.
 */
static void pipeline_sweep_step(fv_pipeline *p, uint64_t now_us, bool force)
{
    if (!p->sweep_pending)
        memset(&p->sweep_sum, 0, sizeof p->sweep_sum);
    uint64_t start_us = monotonic_us();
    int rc;
    for (;;) {
        store_sweep_result result;
        rc = store_sweep(p->store, now_us, SWEEP_TICK_BATCH, 1, &result);
        add_sweep_result(&p->sweep_sum, &result);
        if (force)
            fv_test_kill_point("ingest-in-final-sweep");
        if (rc != FV_OK || result.complete)
            break;
        if (!force && monotonic_us() - start_us >= SWEEP_TICK_BUDGET_US) {
            p->sweep_pending = true;
            return;
        }
    }
    p->sweep_pending = false;
    if (rc != FV_OK)
        fv_error("retention sweep failed: %s", fv_strerror(rc));
    else
        audit_automatic_sweep(p, &p->sweep_sum, now_us);
}

int fv_pipeline_tick(fv_pipeline *p, uint64_t now_us, bool force)
{
    int rc = anon_maybe_rotate(p->anon, now_us / 1000000u);
    if (rc < 0)
        fv_error("key rotation failed (%s); the current epoch key stays in use",
                 fv_strerror(-rc));
    else if (rc == 1) {
        fv_notice("pseudonymization key rotated; earlier pseudonyms can no longer be recomputed");
        anon_epoch_info epoch;
        char params[64];
        anon_epoch(p->anon, &epoch);
        snprintf(params, sizeof params, "epoch=%llu", (unsigned long long)epoch.epoch_id);
        (void)cli_audit_append(p->store, "system", "keys.rotate", "pseudonym.key", params, 0,
                               now_us);
        /* The learned MACs and host names are raw identifiers: they live
         * no longer than one key epoch. */
        pipeline_hosts_lock(p);
        fv_hostmap_clear(p->hosts);
        decision_cache_clear(p);
        pipeline_hosts_unlock(p);
        rekey_detector(p);
    }

    bool detect_now =
        p->detect_at_end_only ? force && !p->discard_open && !p->input_incomplete : true;
    /* A resumed ingest whose state already contains its input saves the
     * state only to keep a re-keying, without evaluating. */
    bool save_now = detect_now;
    if (p->detect_input_saved) {
        detect_now = false;
        save_now = save_now && p->detect_rekeyed;
    }
    if (force || now_us - p->last_evaluate_us >= EVALUATE_INTERVAL_US) {
        if (detect_now) {
            detect_sync(p);
            det_evaluate(p->detect, now_us, on_alert, p);
        }
        p->last_evaluate_us = now_us;
        if (p->failed_rc == FV_OK)
            save_capture_counters(p);
    }

    note_rc(p, fv_escrow_flush(p->escrow));
    note_rc(p, store_commit(p->store));
    fv_pipeline_export_tick(p, now_us);

    uint64_t sweep_us = pol_sweep_interval_s(p->policy) * 1000000u;
    if (force || p->sweep_pending || now_us - p->last_sweep_us >= sweep_us) {
        /* An ingest of files whose store failed in this tick (an alert
         * rejected at the quota) is resumed, and the resume must
         * evaluate again. So its state is not saved, and the checkpoint
         * gets no "state saved" flag that would skip the detectors.
         * Standard input has no resume and keeps its state. */
        bool store_failed = p->input_resumable && p->failed_rc != FV_OK;
        /* The last tick saves the state right after the evaluation, so a
         * crash during its sweep leaves the "state saved" flag, and the
         * resume does not raise the stored alerts a second time. */
        bool saved = false;
        if (force && save_now && !store_failed) {
            pipeline_detstate_save(p, now_us);
            saved = true;
        }
        if (!p->sweep_pending)
            p->last_sweep_us = now_us;
        pipeline_sweep_step(p, now_us, force);
        store_failed = p->input_resumable && p->failed_rc != FV_OK;
        if (!saved && !p->sweep_pending && save_now && !store_failed)
            pipeline_detstate_save(p, now_us);
    }
    if (force) {
        p->forced_tick_done = true;
        p->forced_tick_us = now_us;
        p->activity_at_forced_tick = p->activity;
    }
    return p->failed_rc;
}

/*
 * True if a forced tick at NOW_US would repeat the last one: that tick
 * ran less than a second earlier and nothing was stored, alerted or
 * reloaded since. Ingest ends with a forced tick and then closes the
 * pipeline, whose own forced tick would evaluate the detectors again
 * and encrypt and write their state (tens of megabytes on a busy
 * network) a second time.
 */
static bool forced_tick_is_repeat(const fv_pipeline *p, uint64_t now_us)
{
    return p->forced_tick_done && p->activity == p->activity_at_forced_tick &&
           now_us >= p->forced_tick_us && now_us - p->forced_tick_us < 1000000u;
}

int fv_pipeline_close(fv_pipeline *p)
{
    if (p->capture != NULL) {
        if (!p->discard_open) {
            cap_engine_flush(p->capture);
            fv_aggregator_flush(p->aggregates);
        } else {
            cap_engine_discard(p->capture);
        }
        uint64_t now_us = fv_pipeline_now_us(p);
        if (!forced_tick_is_repeat(p, now_us))
            fv_pipeline_tick(p, now_us, true);
    }
    cap_engine_destroy(&p->capture);
    fv_aggregator_destroy(&p->aggregates);
    fv_hostmap_destroy(&p->hosts);
    decision_cache_destroy(p);
    fv_seenhosts_destroy(&p->seen_hosts);
    if (p->store != NULL)
        note_rc(p, store_commit(p->store));
    fv_indicator_hook_close(&p->indicators);
    fv_detect_thread_stop(&p->detect_thread);
    det_engine_destroy(&p->detect);
    if (p->escrow != NULL)
        note_rc(p, fv_escrow_flush(p->escrow));
    fv_escrow_destroy(&p->escrow);
    fv_pipeline_export_close(p);
    anon_close(&p->anon);
    store_close(&p->store);
    pol_destroy(&p->policy);
    pipeline_sync_destroy(p);
    return p->failed_rc;
}

int fv_pipeline_filter(const fv_pipeline *p, const char *user_filter, char *out, size_t out_len)
{
    return fv_pipeline_filter_at(p, user_filter, false, fv_pipeline_now_us(p), out, out_len);
}

int fv_pipeline_filter_at(const fv_pipeline *p, const char *user_filter, bool link_has_mac,
                          uint64_t now_us, char *out, size_t out_len)
{
    char exclusions[4096];
    int rc = pol_bpf_exclusions_at(p->policy, link_has_mac, now_us / 1000000u, exclusions,
                                   sizeof exclusions);
    if (rc != FV_OK)
        return rc;

    bool has_user = user_filter != NULL && user_filter[0] != '\0';
    bool has_excl = exclusions[0] != '\0';
    int n;
    if (has_user && has_excl)
        n = snprintf(out, out_len, "(%s) and (%s)", user_filter, exclusions);
    else if (has_user)
        n = snprintf(out, out_len, "%s", user_filter);
    else
        n = snprintf(out, out_len, "%s", exclusions);
    return (n < 0 || (size_t)n >= out_len) ? FV_ERR_FULL : FV_OK;
}

void fv_pipeline_flow(fv_pipeline *p, const cap_flow *flow)
{
    sink_on_flow(p, flow);
}

/*
 * Threading support for workers.c. A pipeline without workers never
 * calls fv_pipeline_threads_enable, so p->sync stays NULL and the
 * single-threaded path takes no lock.
 */
static void pipeline_sync_destroy(fv_pipeline *p)
{
    if (p->sync == NULL)
        return;
    pthread_rwlock_destroy(&p->sync->policy_lock);
    pthread_mutex_destroy(&p->sync->hosts_lock);
    free(p->sync);
    p->sync = NULL;
}

int fv_pipeline_threads_enable(fv_pipeline *p)
{
    if (p->sync != NULL)
        return FV_OK;
    struct fv_pipeline_sync *sync = calloc(1, sizeof *sync);
    if (sync == NULL)
        return FV_ERR_NOMEM;

    /* Writer preference: workers take the read lock for every batch of
     * packets, so with reader preference a reload could wait forever. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&sync->policy_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        free(sync);
        return FV_ERR_NOMEM;
    }
    if (pthread_mutex_init(&sync->hosts_lock, NULL) != 0) {
        pthread_rwlock_destroy(&sync->policy_lock);
        free(sync);
        return FV_ERR_NOMEM;
    }
    p->sync = sync;
    return FV_OK;
}

void fv_pipeline_policy_read_lock(fv_pipeline *p)
{
    if (p->sync != NULL)
        pthread_rwlock_rdlock(&p->sync->policy_lock);
}

void fv_pipeline_policy_read_unlock(fv_pipeline *p)
{
    if (p->sync != NULL)
        pthread_rwlock_unlock(&p->sync->policy_lock);
}

int fv_pipeline_decisions_create(struct fv_decision_cache **out)
{
    *out = fv_table_calloc(sizeof **out);
    return *out != NULL ? FV_OK : FV_ERR_NOMEM;
}

void fv_pipeline_decisions_destroy(struct fv_decision_cache **cache)
{
    if (*cache == NULL)
        return;
    /* Raw internal addresses and MACs, like the host map. */
    sodium_memzero(*cache, sizeof **cache);
    free(*cache);
    *cache = NULL;
}

/*
 * host_mode for an address in a zone, from a worker's own CACHE. A hit
 * takes no lock: the slot must match the host map generation and its
 * set's epoch, which every change of the map bumps under the lock. A
 * miss decides under the lock like the writer and reads both counters
 * there, so a change after it makes the new slot stale at once.
 */
static pol_mode worker_host_mode(fv_pipeline *p, struct fv_decision_cache *cache,
                                 const cap_ip *ip, const uint8_t *frame_mac, uint64_t traffic_us)
{
    struct fv_pipeline_sync *sync = p->sync;
    uint64_t traffic_s = traffic_us / 1000000u;
    uint64_t now_s = decision_now_s(p);
    uint64_t clear_epoch = atomic_load_explicit(&sync->clear_epoch, memory_order_acquire);
    if (cache->clear_epoch != clear_epoch) {
        sodium_memzero(cache->sets, sizeof cache->sets);
        cache->clear_epoch = clear_epoch;
    }

    size_t index = decision_index(ip);
    decision_slot *set = cache->sets[index];
    unsigned addr_epoch = atomic_load_explicit(&sync->addr_epochs[index], memory_order_acquire);
    uint64_t generation = fv_hostmap_generation(p->hosts);
    for (unsigned w = 0; w < DECISION_WAYS; w++) {
        decision_slot *s = &set[w];
        if (decision_slot_matches(s, ip, frame_mac) && s->hosts_generation == generation &&
            s->addr_epoch == addr_epoch && decision_span_covers(&s->span, traffic_s, now_s)) {
            s->last_used = ++cache->clock;
            return s->mode;
        }
    }

    decision_span span;
    pipeline_hosts_lock(p);
    pol_mode mode = host_mode_decide(p, ip, frame_mac, traffic_s, now_s, &span);
    decision_slot *slot = decision_victim(cache, set, ip, frame_mac);
    slot->span = span;
    slot->hosts_generation = fv_hostmap_generation(p->hosts);
    slot->addr_epoch = atomic_load_explicit(&sync->addr_epochs[index], memory_order_relaxed);
    slot->mode = mode;
    pipeline_hosts_unlock(p);
    return mode;
}

bool fv_pipeline_host_excluded(fv_pipeline *p, struct fv_decision_cache *cache,
                               const cap_ip *addr, const uint8_t *mac, uint64_t traffic_us)
{
    if (cache == NULL || p->sync == NULL || (addr->family != 4 && addr->family != 6))
        return host_mode(p, addr, mac, traffic_us) == POL_EXCLUDE;
    bool excluded;
    const char *zone = fv_identity_zone_excluded(p->policy, addr->family, addr->addr, &excluded);
    if (excluded)
        return true;
    if (zone == NULL)
        return false;
    return worker_host_mode(p, cache, addr, mac, traffic_us) == POL_EXCLUDE;
}

void fv_pipeline_sink(fv_pipeline *p, cap_sink *out)
{
    memset(out, 0, sizeof *out);
    out->ctx = p;
    out->is_excluded_host = sink_is_excluded_host;
    out->on_flow = sink_on_flow;
    out->on_dns = sink_on_dns;
    out->on_tls = sink_on_tls;
    out->on_http = sink_on_http;
    out->on_dhcp = sink_on_dhcp;
    out->on_ssh = sink_on_ssh;
}

void fv_pipeline_stats(const fv_pipeline *p, cap_stats *out)
{
    if (p->worker_stats_valid)
        *out = p->worker_stats;
    else
        cap_engine_stats(p->capture, out);
}
