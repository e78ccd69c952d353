/*
 * Tests for the detectors added to the engine: RITA-style beacon scoring
 * and its allow-list, long connections, hourly baselines, rare
 * destinations and off-hours activity, with key rotation and saving and
 * loading the learned state. Each detector fires on a planted pattern and
 * stays quiet on a near miss.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "det_util.h"
#include "detect.h"

#define US_PER_S 1000000ull
#define HOUR_US (3600ull * US_PER_S)
#define DAY_US (24ull * HOUR_US)
/* 2026-11-30T00:00:00Z, a Monday: hour of week 0. */
#define T0_US (1795996800ull * US_PER_S)

typedef struct test_rng {
    uint64_t state;
} test_rng;

static uint64_t rng_next(test_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(test_rng *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

typedef struct collected {
    size_t count;
    size_t by_detector[FV_DET_MAX + 1];
    fv_alert_record last[FV_DET_MAX + 1];
} collected;

static void collect_alert(void *ctx, const fv_alert_record *rec)
{
    collected *c = ctx;
    c->count++;
    if (rec->detector <= FV_DET_MAX) {
        c->by_detector[rec->detector]++;
        c->last[rec->detector] = *rec;
    }
}

/* Every detector of this file off; each test switches on its own. */
static pol_detect quiet_config(void)
{
    pol_detect c;
    memset(&c, 0, sizeof c);
    c.alert_window_s = 3600;
    c.learning_period_s = 7 * 86400;
    c.beacon_min_connections = 8;
    c.beacon_max_jitter = 0.3;
    c.beacon_min_interval_s = 10;
    c.beacon_min_score = 0.8;
    c.beacon_min_duration_s = 3600;
    c.exfil_min_bytes = 50000000;
    c.exfil_ratio = 20.0;
    c.exfil_min_history = 10;
    c.long_conn_min_duration_s = 4 * 3600;
    c.baseline_mad_factor = 6.0;
    c.baseline_min_bytes = 10000000;
    c.off_hours_max_share = 0.01;
    return c;
}

static det_engine *make_engine(const pol_detect *cfg)
{
    det_engine *e = NULL;
    assert_int_equal(det_engine_create(cfg, &e), FV_OK);
    assert_non_null(e);
    return e;
}

static fv_endpoint internal_host(uint8_t tag)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    memset(ep.addr, tag, sizeof ep.addr);
    snprintf(ep.zone, sizeof ep.zone, "office");
    return ep;
}

static fv_endpoint external_peer(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_IPV4;
    ep.addr[0] = a;
    ep.addr[1] = b;
    ep.addr[2] = c;
    ep.addr[3] = d;
    snprintf(ep.zone, sizeof ep.zone, "external");
    return ep;
}

/* A TCP flow from HOST to PEER:PORT starting at START_US. Flags 0 mean
 * unknown, so the engine counts every record as a new connection. */
static fv_flow_record flow_out(const fv_endpoint *host, const fv_endpoint *peer, uint16_t port,
                               uint64_t start_us, uint64_t duration_us, uint64_t bytes_out,
                               uint64_t bytes_in)
{
    fv_flow_record f;
    memset(&f, 0, sizeof f);
    f.src = *host;
    f.dst = *peer;
    f.sport = 50000;
    f.dport = port;
    f.proto = 6;
    f.first_us = start_us;
    f.last_us = start_us + duration_us;
    f.pkts_fwd = 10;
    f.pkts_rev = 10;
    f.bytes_fwd = bytes_out;
    f.bytes_rev = bytes_in;
    return f;
}

/* ---------------------------------------------------------------------- */
/* Beacon                                                                  */
/* ---------------------------------------------------------------------- */

/* Feed a beacon every PERIOD_S with uniform jitter of +-JITTER, dropping
 * each beat with probability DROP, for BEATS beats. */
static void feed_beacon(det_engine *e, const fv_endpoint *host, const fv_endpoint *peer,
                        uint16_t port, double period_s, double jitter, double drop, size_t beats,
                        test_rng *rng)
{
    for (size_t i = 0; i < beats; i++) {
        if (rng_unit(rng) < drop)
            continue;
        double offset = ((double)i + jitter * (2.0 * rng_unit(rng) - 1.0)) * period_s;
        fv_flow_record f = flow_out(host, peer, port, T0_US + (uint64_t)(offset * 1e6),
                                    US_PER_S, 400 + (uint64_t)(rng_unit(rng) * 8), 1200);
        det_observe_flow(e, &f);
    }
}

static void test_beacon_scores_thirty_percent_jitter(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.beacon_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x11);
    fv_endpoint peer = external_peer(203, 0, 113, 50);
    test_rng rng = {7};

    /* 60 beats every 120 s, +-30% jitter, 10% of beats dropped. */
    feed_beacon(e, &host, &peer, 443, 120.0, 0.3, 0.1, 60, &rng);
    collected got = {0};
    det_evaluate(e, T0_US + 3 * HOUR_US, collect_alert, &got);

    assert_int_equal(got.by_detector[FV_DET_BEACON], 1);
    const fv_alert_record *a = &got.last[FV_DET_BEACON];
    assert_true(a->score >= 0.8 && a->score <= 1.0);
    assert_true(fabs(a->evidence[DET_EV_BEACON_MEDIAN_INTERVAL_S] - 120.0) < 20.0);
    assert_true(a->evidence[DET_EV_BEACON_SCORE_TIMING] > 0.0);
    assert_true(a->evidence[DET_EV_BEACON_SCORE_SIZE] > 0.9);
    assert_true(a->first_us < a->last_us);
    assert_int_equal(a->evidence_count, DET_EV_BEACON_COUNT);
    det_engine_destroy(&e);
}

static void test_beacon_quiet_on_random_timing(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.beacon_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x12);
    fv_endpoint peer = external_peer(198, 51, 100, 9);

    /* Ten hosts' worth of seeds: exponential gaps with a 120 s mean,
     * sizes varying like web requests. */
    for (uint64_t seed = 1; seed <= 10; seed++) {
        test_rng rng = {seed * 1000};
        host.addr[0] = (uint8_t)seed;
        uint64_t t = T0_US;
        for (int i = 0; i < 64; i++) {
            t += (uint64_t)(-log(1.0 - rng_unit(&rng)) * 120.0 * 1e6) + US_PER_S;
            fv_flow_record f = flow_out(&host, &peer, 443, t, US_PER_S,
                                        500 + (uint64_t)(rng_unit(&rng) * 20000), 9000);
            det_observe_flow(e, &f);
        }
    }
    collected got = {0};
    det_evaluate(e, T0_US + 6 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 0);
    det_engine_destroy(&e);
}

static void test_beacon_needs_min_duration(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.beacon_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x13);
    fv_endpoint peer = external_peer(203, 0, 113, 51);
    test_rng rng = {3};

    /* 20 beats every 60 s span 19 minutes: regular, but too short. */
    feed_beacon(e, &host, &peer, 443, 60.0, 0.05, 0.0, 20, &rng);
    collected got = {0};
    det_evaluate(e, T0_US + HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 0);
    det_engine_destroy(&e);
}

static void test_beacon_allow_by_address_and_port(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.beacon_enabled = true;
    cfg.beacon_allow_count = 1;
    cfg.beacon_allow[0].family = 4;
    cfg.beacon_allow[0].addr[0] = 203; /* 203.0.113.0/24 */
    cfg.beacon_allow[0].addr[1] = 0;
    cfg.beacon_allow[0].addr[2] = 113;
    cfg.beacon_allow[0].prefix_len = 24;
    cfg.beacon_allow[0].port = 123;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x14);
    fv_endpoint peer = external_peer(203, 0, 113, 7);
    test_rng rng = {5};

    /* The same periodic pattern to an allowed port and to another one. */
    feed_beacon(e, &host, &peer, 123, 300.0, 0.05, 0.0, 40, &rng);
    feed_beacon(e, &host, &peer, 8443, 300.0, 0.05, 0.0, 40, &rng);
    collected got = {0};
    det_evaluate(e, T0_US + 4 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 1);
    assert_int_equal(got.last[FV_DET_BEACON].peer_port, 8443);
    det_engine_destroy(&e);
}

/* A DNS response telling HOST that NAME has address PEER. */
static fv_dns_record dns_answer(const fv_endpoint *host, const char *name, const fv_endpoint *peer)
{
    fv_dns_record d;
    memset(&d, 0, sizeof d);
    d.ts_us = T0_US - US_PER_S;
    d.client = *host;
    d.server = external_peer(192, 0, 2, 53);
    d.is_response = 1;
    d.rcode = 0;
    snprintf(d.qname, sizeof d.qname, "%s", name);
    d.answers_a_count = 1;
    d.answers_a[0].kind = peer->kind;
    memcpy(d.answers_a[0].addr, peer->addr, sizeof d.answers_a[0].addr);
    return d;
}

static void test_beacon_allow_by_domain_needs_dns(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.beacon_enabled = true;
    cfg.beacon_allow_count = 1;
    snprintf(cfg.beacon_allow[0].domain, sizeof cfg.beacon_allow[0].domain, "example.org");
    det_engine *e = make_engine(&cfg);
    fv_endpoint resolved_host = internal_host(0x15);
    fv_endpoint other_host = internal_host(0x16);
    fv_endpoint peer = external_peer(198, 51, 100, 20);
    test_rng rng = {9};

    /* Only RESOLVED_HOST learned from DNS that the peer is
     * time.example.org; OTHER_HOST contacts the same address blind. */
    fv_dns_record d = dns_answer(&resolved_host, "time.EXAMPLE.org", &peer);
    det_observe_dns(e, &d);
    feed_beacon(e, &resolved_host, &peer, 443, 300.0, 0.05, 0.0, 40, &rng);
    feed_beacon(e, &other_host, &peer, 443, 300.0, 0.05, 0.0, 40, &rng);
    collected got = {0};
    det_evaluate(e, T0_US + 4 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 1);
    assert_memory_equal(got.last[FV_DET_BEACON].host.addr, other_host.addr, 16);
    det_engine_destroy(&e);
}

/* ---------------------------------------------------------------------- */
/* Long connections                                                        */
/* ---------------------------------------------------------------------- */

/* One connection of TOTAL_US split into records of at most 30 minutes,
 * as the active timeout writes them. */
static void feed_split_connection(det_engine *e, const fv_endpoint *host,
                                  const fv_endpoint *peer, uint16_t port, uint64_t start_us,
                                  uint64_t total_us)
{
    uint64_t piece = 30 * 60 * US_PER_S;
    for (uint64_t off = 0; off < total_us; off += piece) {
        uint64_t len = total_us - off < piece ? total_us - off : piece;
        fv_flow_record f = flow_out(host, peer, port, start_us + off, len, 100000, 200000);
        f.continued = off > 0;
        f.end_reason = off + len < total_us ? FV_END_ACTIVE : FV_END_FIN;
        det_observe_flow(e, &f);
    }
}

static void test_long_conn_fires_across_records(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.long_conn_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x21);
    fv_endpoint peer = external_peer(203, 0, 113, 80);

    feed_split_connection(e, &host, &peer, 22, T0_US, 5 * HOUR_US);
    collected got = {0};
    det_evaluate(e, T0_US + 6 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_LONG_CONN], 1);
    const fv_alert_record *a = &got.last[FV_DET_LONG_CONN];
    assert_true(a->evidence[DET_EV_LONG_DURATION_S] >= 4 * 3600.0);
    assert_int_equal(a->peer_port, 22);
    assert_true(a->score >= 0.5);
    det_engine_destroy(&e);
}

static void test_long_conn_quiet_below_host_usual(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.long_conn_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x22);
    fv_endpoint peer = external_peer(203, 0, 113, 81);

    /* A VPN user: ten 3.5 hour sessions (below the floor), then a 4.5
     * hour one, within 1.5 times the usual. */
    for (uint64_t day = 0; day < 10; day++)
        feed_split_connection(e, &host, &peer, 443, T0_US + day * DAY_US, 3 * HOUR_US + HOUR_US / 2);
    feed_split_connection(e, &host, &peer, 443, T0_US + 10 * DAY_US, 4 * HOUR_US + HOUR_US / 2);
    collected got = {0};
    det_evaluate(e, T0_US + 11 * DAY_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_LONG_CONN], 0);
    det_engine_destroy(&e);
}

/* ---------------------------------------------------------------------- */
/* Baselines                                                               */
/* ---------------------------------------------------------------------- */

/* HOURS hours of a host sending about BYTES per hour (+-VARIATION) in
 * FLOWS flows, evaluated at the end of each hour. */
static void feed_hours(det_engine *e, const fv_endpoint *host, uint64_t from_us, size_t hours,
                       double bytes, double variation, int flows, test_rng *rng, collected *got)
{
    fv_endpoint peer = external_peer(198, 51, 100, 100);
    for (size_t h = 0; h < hours; h++) {
        uint64_t hour_us = from_us + h * HOUR_US;
        double total = bytes * (1.0 + variation * (2.0 * rng_unit(rng) - 1.0));
        for (int i = 0; i < flows; i++) {
            fv_flow_record f = flow_out(host, &peer, 443, hour_us + (uint64_t)i * 60 * US_PER_S,
                                        US_PER_S, (uint64_t)(total / flows), 5000);
            det_observe_flow(e, &f);
        }
        det_evaluate(e, hour_us + HOUR_US, collect_alert, got);
    }
}

static void test_baseline_fires_on_hourly_burst(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x31);
    test_rng rng = {11};

    collected learning = {0};
    feed_hours(e, &host, T0_US, 14 * 24, 2e6, 0.3, 20, &rng, &learning);
    assert_int_equal(learning.by_detector[FV_DET_BASELINE], 0);

    /* Then one hour sending 400 MB. */
    collected got = {0};
    feed_hours(e, &host, T0_US + 14 * DAY_US, 1, 400e6, 0.0, 20, &rng, &got);
    det_evaluate(e, T0_US + 14 * DAY_US + 2 * HOUR_US, collect_alert, &got);
    assert_true(got.by_detector[FV_DET_BASELINE] >= 1);
    const fv_alert_record *a = &got.last[FV_DET_BASELINE];
    assert_int_equal((int)a->evidence[DET_EV_BASELINE_METRIC], DET_METRIC_BYTES_OUT);
    assert_true(a->evidence[DET_EV_BASELINE_VALUE] > a->evidence[DET_EV_BASELINE_UPPER]);
    assert_int_equal(a->last_us - a->first_us + 1, HOUR_US);
    det_engine_destroy(&e);
}

static void test_baseline_quiet_on_busy_server(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x32);
    test_rng rng = {12};

    /* A file server moving 2 GB an hour, +-50%, for three weeks. */
    collected got = {0};
    feed_hours(e, &host, T0_US, 21 * 24, 2e9, 0.5, 40, &rng, &got);
    assert_int_equal(got.by_detector[FV_DET_BASELINE], 0);
    det_engine_destroy(&e);
}

static void test_baseline_waits_for_learning(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x33);
    test_rng rng = {13};

    /* Two days of learning, then a burst: too early to judge. */
    collected got = {0};
    feed_hours(e, &host, T0_US, 48, 2e6, 0.2, 20, &rng, &got);
    feed_hours(e, &host, T0_US + 2 * DAY_US, 1, 400e6, 0.0, 20, &rng, &got);
    assert_int_equal(got.by_detector[FV_DET_BASELINE], 0);
    det_engine_destroy(&e);
}

/* ---------------------------------------------------------------------- */
/* Rare destinations                                                       */
/* ---------------------------------------------------------------------- */

static void test_rare_dest_new_for_org_after_learning(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.rare_dest_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint a = internal_host(0x41), b = internal_host(0x42);
    fv_endpoint common = external_peer(198, 51, 100, 1);
    fv_endpoint fresh = external_peer(203, 0, 113, 99);

    /* Both hosts use COMMON through the learning week. */
    for (uint64_t d = 0; d < 8; d++) {
        fv_flow_record f = flow_out(&a, &common, 443, T0_US + d * DAY_US, US_PER_S, 100, 100);
        det_observe_flow(e, &f);
    }
    collected got = {0};
    det_evaluate(e, T0_US + 8 * DAY_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_RARE_DEST], 0);

    /* After learning: B contacts COMMON (known to the organization) and
     * FRESH (never seen). */
    fv_flow_record known = flow_out(&b, &common, 443, T0_US + 8 * DAY_US, US_PER_S, 100, 100);
    fv_flow_record unknown = flow_out(&b, &fresh, 443, T0_US + 8 * DAY_US, US_PER_S, 100, 100);
    det_observe_flow(e, &known);
    det_observe_flow(e, &unknown);
    det_evaluate(e, T0_US + 8 * DAY_US + HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_RARE_DEST], 1);
    assert_memory_equal(got.last[FV_DET_RARE_DEST].peer.addr, fresh.addr, 4);
    assert_memory_equal(got.last[FV_DET_RARE_DEST].host.addr, b.addr, 16);
    det_engine_destroy(&e);
}

static void test_rare_dest_quiet_while_learning(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.rare_dest_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint a = internal_host(0x43);
    collected got = {0};
    for (uint8_t i = 1; i < 50; i++) {
        fv_endpoint peer = external_peer(203, 0, 113, i);
        fv_flow_record f = flow_out(&a, &peer, 443, T0_US + i * HOUR_US, US_PER_S, 100, 100);
        det_observe_flow(e, &f);
    }
    det_evaluate(e, T0_US + 3 * DAY_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_RARE_DEST], 0);
    det_engine_destroy(&e);
}

/* ---------------------------------------------------------------------- */
/* Off hours                                                               */
/* ---------------------------------------------------------------------- */

/* WEEKS weeks of office hours: 09:00-17:00 UTC, Monday to Friday. */
static void feed_office_weeks(det_engine *e, const fv_endpoint *host, int weeks, test_rng *rng,
                              collected *got)
{
    for (int w = 0; w < weeks; w++) {
        for (int d = 0; d < 5; d++) {
            uint64_t day_us = T0_US + (uint64_t)(w * 7 + d) * DAY_US;
            feed_hours(e, host, day_us + 9 * HOUR_US, 8, 1e6, 0.3, 12, rng, got);
        }
    }
}

static void test_off_hours_fires_on_sunday_night(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.off_hours_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x51);
    test_rng rng = {21};

    collected got = {0};
    feed_office_weeks(e, &host, 2, &rng, &got);
    assert_int_equal(got.by_detector[FV_DET_OFF_HOURS], 0);

    /* Sunday of week 2, 03:00. */
    uint64_t sunday_3am = T0_US + (2 * 7 + 6) * DAY_US + 3 * HOUR_US;
    feed_hours(e, &host, sunday_3am, 1, 1e6, 0.0, 15, &rng, &got);
    assert_int_equal(got.by_detector[FV_DET_OFF_HOURS], 1);
    const fv_alert_record *a = &got.last[FV_DET_OFF_HOURS];
    assert_int_equal((int)a->evidence[DET_EV_OFF_HOUR_OF_WEEK], 6 * 24 + 3);
    assert_true(a->evidence[DET_EV_OFF_HOUR_SHARE] < 0.01);
    det_engine_destroy(&e);
}

static void test_off_hours_quiet_for_always_on_host(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.off_hours_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x52);
    test_rng rng = {22};

    /* A server busy every hour for three weeks. */
    collected got = {0};
    feed_hours(e, &host, T0_US, 21 * 24, 1e6, 0.3, 12, &rng, &got);
    assert_int_equal(got.by_detector[FV_DET_OFF_HOURS], 0);
    det_engine_destroy(&e);
}

/* ---------------------------------------------------------------------- */
/* Key rotation and persistence                                            */
/* ---------------------------------------------------------------------- */

static void test_rekey_moves_baseline(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint old_host = internal_host(0x61);
    fv_endpoint new_host = internal_host(0x62);
    test_rng rng = {31};

    collected got = {0};
    feed_hours(e, &old_host, T0_US, 14 * 24, 2e6, 0.3, 20, &rng, &got);
    det_rekey_begin(e);
    det_rekey(e, old_host.addr, new_host.addr, old_host.kind);
    assert_true(det_rekey_end(e) == 0);

    /* Under its new pseudonym the host keeps its learned baseline. */
    feed_hours(e, &new_host, T0_US + 14 * DAY_US, 1, 400e6, 0.0, 20, &rng, &got);
    assert_true(got.by_detector[FV_DET_BASELINE] >= 1);
    assert_memory_equal(got.last[FV_DET_BASELINE].host.addr, new_host.addr, 16);
    det_engine_destroy(&e);
}

static void test_rekey_end_drops_unmoved_baseline(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x63);
    test_rng rng = {32};
    collected got = {0};
    feed_hours(e, &host, T0_US, 24, 2e6, 0.3, 20, &rng, &got);
    det_rekey_begin(e);
    /* One host profile is dropped; the zone profile stays. */
    assert_int_equal(det_rekey_end(e), 1);
    det_engine_destroy(&e);
}

static void test_state_survives_save_and_load(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    cfg.rare_dest_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x71);
    test_rng rng = {41};
    collected got = {0};
    feed_hours(e, &host, T0_US, 14 * 24, 2e6, 0.3, 20, &rng, &got);

    uint8_t *saved = NULL;
    size_t saved_len = 0;
    assert_int_equal(det_engine_save(e, &saved, &saved_len), FV_OK);
    assert_true(saved_len > 16);
    det_engine_destroy(&e);

    /* A new engine that loaded the state judges the burst at once. */
    det_engine *restarted = make_engine(&cfg);
    assert_int_equal(det_engine_load(restarted, saved, saved_len), FV_OK);
    collected after = {0};
    feed_hours(restarted, &host, T0_US + 14 * DAY_US, 1, 400e6, 0.0, 20, &rng, &after);
    assert_true(after.by_detector[FV_DET_BASELINE] >= 1);
    /* The destination of the learning weeks is known after the restart. */
    assert_int_equal(after.by_detector[FV_DET_RARE_DEST], 0);

    /* A fresh engine without the state has nothing to compare with. */
    det_engine *fresh = make_engine(&cfg);
    collected none = {0};
    feed_hours(fresh, &host, T0_US + 14 * DAY_US, 1, 400e6, 0.0, 20, &rng, &none);
    assert_int_equal(none.by_detector[FV_DET_BASELINE], 0);

    det_engine_destroy(&fresh);
    det_engine_destroy(&restarted);
    free(saved);
}

/* Saving, loading and saving again gives the same bytes, with baseline
 * and off_hours histories and rare destinations in the state. */
static void test_state_reload_saves_same_bytes(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    cfg.off_hours_enabled = true;
    cfg.rare_dest_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint first = internal_host(0x73);
    fv_endpoint second = internal_host(0x74);
    test_rng rng = {43};
    collected got = {0};
    feed_office_weeks(e, &first, 2, &rng, &got);
    feed_hours(e, &second, T0_US, 3 * 24, 2e6, 0.3, 20, &rng, &got);

    uint8_t *saved = NULL;
    size_t saved_len = 0;
    assert_int_equal(det_engine_save(e, &saved, &saved_len), FV_OK);
    det_engine *restarted = make_engine(&cfg);
    assert_int_equal(det_engine_load(restarted, saved, saved_len), FV_OK);
    uint8_t *again = NULL;
    size_t again_len = 0;
    assert_int_equal(det_engine_save(restarted, &again, &again_len), FV_OK);
    assert_int_equal(again_len, saved_len);
    assert_memory_equal(again, saved, saved_len);

    det_engine_destroy(&restarted);
    det_engine_destroy(&e);
    free(again);
    free(saved);
}

/* A profile record of state version 1: the profile struct of the builds
 * that wrote it, raw, after its 40-byte key (x86-64 layout). */
typedef struct v1_slot_model {
    float mean[DET_METRIC_COUNT];
    float dev[DET_METRIC_COUNT];
    uint16_t weeks;
} v1_slot_model;

typedef struct v1_profile {
    fv_endpoint host;
    uint64_t first_us;
    uint64_t hour;
    double value[DET_METRIC_COUNT];
    uint8_t dest_bits[32];
    uint32_t hour_flows_total;
    v1_slot_model slots[168];
    v1_slot_model day_slots[24];
    uint32_t flows_by_hour[168];
    uint64_t flows_total;
} v1_profile;

_Static_assert(sizeof(v1_profile) == 9280, "version 1 profile records are 9,280 bytes");

static void put_u32_be(uint8_t *out, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(v >> (8 * (3 - i)));
}

/* A state written by a build before version 2 loads: its baseline model
 * (every hour learned at about 1 MB, four weeks deep) judges a 400 MB hour
 * at once, and saving and loading the converted state again keeps it. */
static void test_load_reads_version_1_state(void **state)
{
    (void)state;
    fv_endpoint host = internal_host(0x76);
    uint64_t burst_us = T0_US + 14 * DAY_US;

    v1_profile *profile = calloc(1, sizeof *profile);
    assert_non_null(profile);
    profile->host = host;
    profile->first_us = T0_US;
    profile->hour = burst_us / HOUR_US - 1;
    for (size_t i = 0; i < 168 + 24; i++) {
        v1_slot_model *m = i < 168 ? &profile->slots[i] : &profile->day_slots[i - 168];
        for (int k = 0; k < DET_METRIC_COUNT; k++) {
            m->mean[k] = 1e6f;
            m->dev[k] = 1e5f;
        }
        m->weeks = 4;
    }
    det_key key;
    det_key_make(&key, 0, &host, NULL, 0, 0);

    /* Magic "FVDS", version 1, then the baseline section: detector,
     * length, profile count 1, key, record. */
    size_t section_len = 4 + sizeof key + sizeof *profile;
    size_t len = 8 + 5 + section_len;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    put_u32_be(data, 0x46564453u);
    put_u32_be(data + 4, 1);
    data[8] = FV_DET_BASELINE;
    put_u32_be(data + 9, (uint32_t)section_len);
    put_u32_be(data + 13, 1);
    memcpy(data + 17, &key, sizeof key);
    memcpy(data + 17 + sizeof key, profile, sizeof *profile);

    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *loaded = make_engine(&cfg);
    assert_int_equal(det_engine_load(loaded, data, len), FV_OK);
    uint8_t *saved = NULL;
    size_t saved_len = 0;
    assert_int_equal(det_engine_save(loaded, &saved, &saved_len), FV_OK);
    det_engine *reloaded = make_engine(&cfg);
    assert_int_equal(det_engine_load(reloaded, saved, saved_len), FV_OK);

    test_rng rng = {45};
    collected got = {0};
    feed_hours(reloaded, &host, burst_us, 1, 400e6, 0.0, 20, &rng, &got);
    assert_int_equal(got.by_detector[FV_DET_BASELINE], 1);
    assert_memory_equal(got.last[FV_DET_BASELINE].host.addr, host.addr, 16);

    /* Without the state the same hour has nothing to compare with. */
    det_engine *fresh = make_engine(&cfg);
    collected none = {0};
    feed_hours(fresh, &host, burst_us, 1, 400e6, 0.0, 20, &rng, &none);
    assert_int_equal(none.by_detector[FV_DET_BASELINE], 0);

    det_engine_destroy(&fresh);
    det_engine_destroy(&reloaded);
    det_engine_destroy(&loaded);
    free(saved);
    free(data);
    free(profile);
}

/* Profiles are saved without their empty history: a host seen for two
 * hours costs a few hundred bytes, not the 9,320 of version 1. */
static void test_saved_profile_skips_empty_history(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    cfg.off_hours_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x75);
    test_rng rng = {44};
    collected got = {0};
    feed_hours(e, &host, T0_US, 2, 2e6, 0.3, 20, &rng, &got);

    uint8_t *saved = NULL;
    size_t saved_len = 0;
    assert_int_equal(det_engine_save(e, &saved, &saved_len), FV_OK);
    /* Three profiles: baseline host and zone, off_hours host. */
    assert_true(saved_len < 3 * 1024);
    det_engine_destroy(&e);
    free(saved);
}

static void test_load_rejects_damaged_state(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.baseline_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x72);
    test_rng rng = {42};
    collected got = {0};
    feed_hours(e, &host, T0_US, 3, 2e6, 0.3, 20, &rng, &got);
    uint8_t *saved = NULL;
    size_t saved_len = 0;
    assert_int_equal(det_engine_save(e, &saved, &saved_len), FV_OK);

    det_engine *other = make_engine(&cfg);
    /* "FVDS" magic wrong, then a cut-off module section. */
    uint8_t bad_magic[8] = {'X', 'V', 'D', 'S', 0, 0, 0, 1};
    assert_int_equal(det_engine_load(other, bad_magic, sizeof bad_magic), FV_ERR_PARSE);
    assert_int_equal(det_engine_load(other, saved, saved_len - 5), FV_ERR_PARSE);
    assert_int_equal(det_engine_load(other, saved, 3), FV_ERR_PARSE);
    det_engine_destroy(&other);
    det_engine_destroy(&e);
    free(saved);
}

static void test_alert_window_repeats_after_expiry(void **state)
{
    (void)state;
    pol_detect cfg = quiet_config();
    cfg.beacon_enabled = true;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x81);
    fv_endpoint peer = external_peer(203, 0, 113, 60);
    test_rng rng = {51};

    feed_beacon(e, &host, &peer, 443, 120.0, 0.05, 0.0, 40, &rng);
    collected got = {0};
    det_evaluate(e, T0_US + 2 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 1);

    /* More beats: while the evidence ends less than half the window after
     * the first alert's, the engine suppresses the repeat. Once the pattern
     * has run longer it is raised again, for the store to merge. */
    for (uint64_t beat = 40; beat < 45; beat++) {
        fv_flow_record f = flow_out(&host, &peer, 443, T0_US + beat * 120 * US_PER_S, US_PER_S,
                                    400, 0);
        det_observe_flow(e, &f);
    }
    det_evaluate(e, T0_US + 2 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 1);
    for (uint64_t beat = 45; beat < 80; beat++) {
        fv_flow_record f = flow_out(&host, &peer, 443, T0_US + beat * 120 * US_PER_S, US_PER_S,
                                    400, 0);
        det_observe_flow(e, &f);
    }
    det_evaluate(e, T0_US + 3 * HOUR_US, collect_alert, &got);
    assert_int_equal(got.by_detector[FV_DET_BEACON], 2);
    det_engine_destroy(&e);
}

static void test_new_evidence_names(void **state)
{
    (void)state;
    assert_string_equal(det_evidence_name(FV_DET_LONG_CONN, DET_EV_LONG_HOST_USUAL_S),
                        "host_usual_s");
    assert_string_equal(det_evidence_name(FV_DET_BASELINE, DET_EV_BASELINE_UPPER), "upper");
    assert_string_equal(det_evidence_name(FV_DET_RARE_DEST, DET_EV_RARE_LEARNED_S), "learned_s");
    assert_string_equal(det_evidence_name(FV_DET_OFF_HOURS, DET_EV_OFF_HOUR_SHARE), "hour_share");
    assert_null(det_evidence_name(FV_DET_OFF_HOURS, DET_EV_OFF_COUNT));
    const int detectors[] = {FV_DET_LONG_CONN, FV_DET_BASELINE, FV_DET_RARE_DEST,
                             FV_DET_OFF_HOURS};
    const unsigned counts[] = {DET_EV_LONG_COUNT, DET_EV_BASELINE_COUNT, DET_EV_RARE_COUNT,
                               DET_EV_OFF_COUNT};
    for (size_t d = 0; d < 4; d++) {
        for (unsigned i = 0; i < counts[d]; i++)
            assert_string_equal(fv_evidence_name(detectors[d], i),
                                det_evidence_name(detectors[d], i));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beacon_scores_thirty_percent_jitter),
        cmocka_unit_test(test_beacon_quiet_on_random_timing),
        cmocka_unit_test(test_beacon_needs_min_duration),
        cmocka_unit_test(test_beacon_allow_by_address_and_port),
        cmocka_unit_test(test_beacon_allow_by_domain_needs_dns),
        cmocka_unit_test(test_long_conn_fires_across_records),
        cmocka_unit_test(test_long_conn_quiet_below_host_usual),
        cmocka_unit_test(test_baseline_fires_on_hourly_burst),
        cmocka_unit_test(test_baseline_quiet_on_busy_server),
        cmocka_unit_test(test_baseline_waits_for_learning),
        cmocka_unit_test(test_rare_dest_new_for_org_after_learning),
        cmocka_unit_test(test_rare_dest_quiet_while_learning),
        cmocka_unit_test(test_off_hours_fires_on_sunday_night),
        cmocka_unit_test(test_off_hours_quiet_for_always_on_host),
        cmocka_unit_test(test_rekey_moves_baseline),
        cmocka_unit_test(test_rekey_end_drops_unmoved_baseline),
        cmocka_unit_test(test_state_survives_save_and_load),
        cmocka_unit_test(test_state_reload_saves_same_bytes),
        cmocka_unit_test(test_load_reads_version_1_state),
        cmocka_unit_test(test_saved_profile_skips_empty_history),
        cmocka_unit_test(test_load_rejects_damaged_state),
        cmocka_unit_test(test_alert_window_repeats_after_expiry),
        cmocka_unit_test(test_new_evidence_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
