/*
 * Tests for detect/: beacon and exfil detectors over synthetic
 * pseudonymized flow records.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "detect.h"

#define US_PER_S 1000000ull
#define T0_US (1796025600ull * US_PER_S) /* 2026-11-30T08:00:00Z */

/* Deterministic generator so a failing case can be replayed. */
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

/* Uniform in [0, 1). */
static double rng_unit(test_rng *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

/* Alerts collected by the callback. */
typedef struct collected {
    size_t count;
    fv_alert_record alerts[16];
} collected;

static void collect_alert(void *ctx, const fv_alert_record *rec)
{
    collected *c = ctx;
    if (c->count < sizeof c->alerts / sizeof c->alerts[0])
        c->alerts[c->count] = *rec;
    c->count++;
}

static pol_detect default_config(void)
{
    pol_detect c = {
        .beacon_enabled = true,
        .beacon_min_connections = 8,
        .beacon_max_jitter = 0.2,
        .beacon_min_interval_s = 10,
        .exfil_enabled = true,
        .exfil_min_bytes = 50000000,
        .exfil_ratio = 20.0,
        .exfil_min_history = 10,
    };
    return c;
}

/* An internal host: a pseudonym whose bytes all equal TAG. */
static fv_endpoint internal_host(uint8_t tag)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    memset(ep.addr, tag, sizeof ep.addr);
    snprintf(ep.zone, sizeof ep.zone, "office");
    return ep;
}

/* A kept external IPv4 address A.B.C.D. */
static fv_endpoint external_peer(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_IPV4;
    ep.addr[0] = a;
    ep.addr[1] = b;
    ep.addr[2] = c;
    ep.addr[3] = d;
    snprintf(ep.zone, sizeof ep.zone, FV_ZONE_EXTERNAL);
    return ep;
}

static fv_flow_record make_flow(const fv_endpoint *src, const fv_endpoint *dst, uint16_t dport,
                                uint64_t first_us, uint64_t duration_us, uint64_t bytes_fwd,
                                uint64_t bytes_rev)
{
    fv_flow_record f;
    memset(&f, 0, sizeof f);
    f.src = *src;
    f.dst = *dst;
    f.sport = 50000;
    f.dport = dport;
    f.proto = 6;
    f.end_reason = FV_END_FIN;
    f.tcp_flags_fwd = 0x1b; /* FIN SYN PSH ACK */
    f.tcp_flags_rev = 0x1b;
    f.first_us = first_us;
    f.last_us = first_us + duration_us;
    f.pkts_fwd = 10;
    f.pkts_rev = 10;
    f.bytes_fwd = bytes_fwd;
    f.bytes_rev = bytes_rev;
    return f;
}

static det_engine *make_engine(const pol_detect *config)
{
    det_engine *e = NULL;
    assert_int_equal(det_engine_create(config, &e), FV_OK);
    assert_non_null(e);
    return e;
}

/*
 * Feed BEATS connections from SRC to DST:443 starting every PERIOD_S
 * seconds with a per-interval jitter uniform in +-JITTER (a fraction of
 * the period). Beats whose index is in SKIP are not sent.
 */
static void feed_beacon(det_engine *e, const fv_endpoint *src, const fv_endpoint *dst, size_t beats,
                        double period_s, double jitter, const size_t *skip, size_t skip_count,
                        test_rng *rng)
{
    double t = 0.0;
    for (size_t i = 0; i < beats; i++) {
        bool skipped = false;
        for (size_t s = 0; s < skip_count; s++)
            skipped = skipped || skip[s] == i;
        if (!skipped) {
            fv_flow_record f =
                make_flow(src, dst, 443, T0_US + (uint64_t)(t * 1e6), 2 * US_PER_S, 2500, 5200);
            det_observe_flow(e, &f);
        }
        t += period_s * (1.0 + jitter * (2.0 * rng_unit(rng) - 1.0));
    }
}

static void test_beacon_detects_jitter_and_missed_beats(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x23);
    fv_endpoint peer = external_peer(203, 0, 113, 50);
    test_rng rng = {42};
    const size_t skip[] = {7, 13};

    feed_beacon(e, &host, &peer, 20, 300.0, 0.10, skip, 2, &rng);
    collected got = {0};
    size_t raised = det_evaluate(e, T0_US + 7200 * US_PER_S, collect_alert, &got);

    assert_int_equal(raised, 1);
    assert_int_equal(got.count, 1);
    const fv_alert_record *a = &got.alerts[0];
    assert_int_equal(a->detector, FV_DET_BEACON);
    assert_int_equal(a->ts_us, T0_US + 7200 * US_PER_S);
    assert_int_equal(a->flow_count, 18);
    assert_int_equal(a->peer_port, 443);
    assert_int_equal(a->proto, 6);
    assert_memory_equal(a->host.addr, host.addr, sizeof host.addr);
    assert_memory_equal(a->peer.addr, peer.addr, sizeof peer.addr);
    /* About 19 periods of 300 s: spans an hour with >= 12 beats. */
    assert_int_equal(a->severity, FV_SEV_HIGH);
    assert_int_equal(a->evidence_count, DET_EV_BEACON_COUNT);
    assert_true(fabs(a->evidence[DET_EV_BEACON_MEDIAN_INTERVAL_S] - 300.0) < 30.0);
    assert_true(a->evidence[DET_EV_BEACON_DISPERSION] <= 0.2);
    assert_true(a->evidence[DET_EV_BEACON_DISPERSION] > 0.0);
    assert_true(a->evidence[DET_EV_BEACON_DURATION_S] > 5000.0);
    assert_true(fabs(a->evidence[DET_EV_BEACON_MEAN_BYTES_OUT] - 2500.0) < 0.5);
    assert_true(a->score > 0.0 && a->score <= 1.0);
    assert_non_null(strstr(a->summary, "203.0.113.50:443/tcp"));
    assert_non_null(strstr(a->summary, "ip4-"));
    assert_non_null(strstr(a->summary, "every"));

    det_engine_destroy(&e);
    assert_null(e);
}

static void test_beacon_ignores_exponential_intervals(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    fv_endpoint peer = external_peer(198, 51, 100, 9);

    for (uint64_t seed = 1; seed <= 50; seed++) {
        det_engine *e = make_engine(&cfg);
        fv_endpoint host = internal_host((uint8_t)seed);
        test_rng rng = {seed};
        double t = 0.0;
        for (int i = 0; i < 40; i++) {
            fv_flow_record f =
                make_flow(&host, &peer, 443, T0_US + (uint64_t)(t * 1e6), US_PER_S, 900, 4000);
            det_observe_flow(e, &f);
            /* Exponential with mean 300 s, at least 2 s apart. */
            t += 2.0 - 300.0 * log(1.0 - rng_unit(&rng));
        }
        size_t raised = det_evaluate(e, T0_US + 86400 * US_PER_S, NULL, NULL);
        if (raised != 0)
            print_error("exponential intervals alerted with seed %llu\n", (unsigned long long)seed);
        assert_int_equal(raised, 0);
        det_engine_destroy(&e);
    }
}

static void test_beacon_needs_min_connections(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    fv_endpoint peer = external_peer(203, 0, 113, 50);
    test_rng rng = {7};

    /* Seven perfectly regular connections are one too few. */
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x11);
    feed_beacon(e, &host, &peer, 7, 120.0, 0.0, NULL, 0, &rng);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);

    /* The eighth reaches the limit. */
    fv_flow_record f = make_flow(&host, &peer, 443, T0_US + 7 * 120 * US_PER_S, US_PER_S, 500, 500);
    det_observe_flow(e, &f);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 1);
    det_engine_destroy(&e);
}

static void test_beacon_merges_retries(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x12);
    fv_endpoint peer = external_peer(192, 0, 2, 80);

    /* Six beats 60 s apart, each with a retry 300 ms later: twelve flows
     * but only six beats, below the limit of eight. */
    for (uint64_t i = 0; i < 6; i++) {
        uint64_t start = T0_US + i * 60 * US_PER_S;
        fv_flow_record f = make_flow(&host, &peer, 443, start, US_PER_S, 500, 500);
        det_observe_flow(e, &f);
        f = make_flow(&host, &peer, 443, start + 300000, US_PER_S, 500, 500);
        det_observe_flow(e, &f);
    }
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

static void test_beacon_ignores_short_intervals(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    cfg.beacon_min_interval_s = 60;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x13);
    fv_endpoint peer = external_peer(192, 0, 2, 81);
    test_rng rng = {3};

    /* Perfectly regular, but every 30 s is below the 60 s minimum. */
    feed_beacon(e, &host, &peer, 20, 30.0, 0.0, NULL, 0, &rng);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

static void test_internal_to_internal_never_alerts(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x21);
    fv_endpoint server = internal_host(0x53);
    snprintf(server.zone, sizeof server.zone, "servers");
    test_rng rng = {5};

    /* A perfect beacon and an upload far above the floor, both to an
     * internal server. */
    feed_beacon(e, &host, &server, 30, 300.0, 0.0, NULL, 0, &rng);
    for (uint64_t i = 0; i < 20; i++) {
        fv_flow_record f =
            make_flow(&host, &server, 445, T0_US + i * 97 * US_PER_S, US_PER_S, 3000, 9000);
        det_observe_flow(e, &f);
    }
    fv_flow_record big =
        make_flow(&host, &server, 445, T0_US + 9000 * US_PER_S, 60 * US_PER_S, 500000000, 200000);
    det_observe_flow(e, &big);

    assert_int_equal(det_evaluate(e, T0_US + 10000 * US_PER_S, NULL, NULL), 0);
    det_engine_destroy(&e);
}

/* Feed COUNT outbound flows of BYTES, BYTES + 10, ... from HOST, each to
 * another peer so that the history does not look like a beacon. */
static void feed_history(det_engine *e, const fv_endpoint *host, size_t count, uint64_t bytes)
{
    for (uint64_t i = 0; i < count; i++) {
        fv_endpoint web = external_peer(93, 184, 216, (uint8_t)(i + 1));
        fv_flow_record f =
            make_flow(host, &web, 443, T0_US + i * 211 * US_PER_S, US_PER_S, bytes + i * 10, 40000);
        det_observe_flow(e, &f);
    }
}

static void test_exfil_alerts_with_evidence(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x42);
    fv_endpoint drop = external_peer(198, 51, 100, 77);

    /* 15 flows of 4000..4140 bytes: median 4070. */
    feed_history(e, &host, 15, 4000);
    fv_flow_record big =
        make_flow(&host, &drop, 443, T0_US + 9000 * US_PER_S, 80 * US_PER_S, 120000000, 2500000);
    det_observe_flow(e, &big);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US + 9100 * US_PER_S, collect_alert, &got), 1);
    const fv_alert_record *a = &got.alerts[0];
    assert_int_equal(a->detector, FV_DET_EXFIL);
    assert_int_equal(a->severity, FV_SEV_HIGH);
    assert_int_equal(a->ts_us, T0_US + 9100 * US_PER_S);
    assert_int_equal(a->first_us, big.first_us);
    assert_int_equal(a->last_us, big.last_us);
    assert_int_equal(a->peer_port, 443);
    assert_memory_equal(a->host.addr, host.addr, sizeof host.addr);
    assert_memory_equal(a->peer.addr, drop.addr, sizeof drop.addr);
    assert_int_equal(a->evidence_count, DET_EV_EXFIL_COUNT);
    assert_true(a->evidence[DET_EV_EXFIL_BYTES_OUT] == 120000000.0);
    assert_true(a->evidence[DET_EV_EXFIL_BASELINE_MEDIAN_BYTES] == 4070.0);
    assert_true(fabs(a->evidence[DET_EV_EXFIL_RATIO] - 120000000.0 / 4070.0) < 1e-6);
    assert_true(a->evidence[DET_EV_EXFIL_DURATION_S] == 80.0);
    assert_true(a->evidence[DET_EV_EXFIL_HISTORY_FLOWS] == 15.0);
    assert_int_equal(a->flow_count, 1);
    assert_true(a->score >= 0.5 && a->score <= 1.0);
    assert_non_null(strstr(a->summary, "198.51.100.77:443/tcp"));
    assert_non_null(strstr(a->summary, "120.0 MB"));
    det_engine_destroy(&e);
}

static void test_exfil_critical_above_ten_floors(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x43);
    fv_endpoint drop = external_peer(198, 51, 100, 78);

    feed_history(e, &host, 12, 3000);
    fv_flow_record big =
        make_flow(&host, &drop, 443, T0_US + 9000 * US_PER_S, 600 * US_PER_S, 600000000, 100000);
    det_observe_flow(e, &big);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_int_equal(got.alerts[0].severity, FV_SEV_CRITICAL);
    det_engine_destroy(&e);
}

static void test_exfil_counts_peer_initiated_flow(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x44);
    fv_endpoint peer = external_peer(203, 0, 113, 9);

    /* The capture saw the peer's packet first, so the host's bytes are
     * the reverse direction. */
    feed_history(e, &host, 10, 2000);
    fv_flow_record f =
        make_flow(&peer, &host, 50123, T0_US + 5000 * US_PER_S, 30 * US_PER_S, 40000, 90000000);
    f.sport = 8443;
    det_observe_flow(e, &f);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_int_equal(got.alerts[0].peer_port, 8443);
    assert_memory_equal(got.alerts[0].host.addr, host.addr, sizeof host.addr);
    assert_true(got.alerts[0].evidence[DET_EV_EXFIL_BYTES_OUT] == 90000000.0);
    det_engine_destroy(&e);
}

static void test_exfil_needs_history(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x45);
    fv_endpoint drop = external_peer(198, 51, 100, 77);

    /* No history at all. */
    fv_flow_record big = make_flow(&host, &drop, 443, T0_US, 60 * US_PER_S, 120000000, 1000);
    det_observe_flow(e, &big);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);

    /* Nine earlier flows including the big one: still one short of ten. */
    feed_history(e, &host, 8, 3000);
    big.first_us += 7200 * US_PER_S;
    big.last_us += 7200 * US_PER_S;
    det_observe_flow(e, &big);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

static void test_exfil_ignores_usually_large_sender(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x46);
    fv_endpoint backup = external_peer(192, 0, 2, 200);

    /* A backup host that always sends 60 MB: 100 MB is under 20 times that. */
    feed_history(e, &host, 20, 60000000);
    fv_flow_record big =
        make_flow(&host, &backup, 443, T0_US + 9000 * US_PER_S, 60 * US_PER_S, 100000000, 1000);
    det_observe_flow(e, &big);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

static void test_exfil_ignores_flow_below_floor(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x47);
    fv_endpoint peer = external_peer(192, 0, 2, 201);

    /* 40 MB is 10000 times the usual 4 KB but below the 50 MB floor. */
    feed_history(e, &host, 20, 4000);
    fv_flow_record f =
        make_flow(&host, &peer, 443, T0_US + 9000 * US_PER_S, 60 * US_PER_S, 40000000, 1000);
    det_observe_flow(e, &f);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

static void test_alerts_not_repeated(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x48);
    fv_endpoint c2 = external_peer(203, 0, 113, 50);
    fv_endpoint drop = external_peer(198, 51, 100, 77);
    test_rng rng = {9};

    feed_beacon(e, &host, &c2, 12, 300.0, 0.05, NULL, 0, &rng);
    feed_history(e, &host, 12, 4000);
    fv_flow_record big =
        make_flow(&host, &drop, 443, T0_US + 9000 * US_PER_S, 60 * US_PER_S, 120000000, 1000);
    det_observe_flow(e, &big);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 2);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);

    /* More beats and a second large upload to the same peer and port. */
    for (uint64_t i = 12; i < 16; i++) {
        fv_flow_record f =
            make_flow(&host, &c2, 443, T0_US + i * 300 * US_PER_S, US_PER_S, 2500, 5200);
        det_observe_flow(e, &f);
    }
    big.first_us += 600 * US_PER_S;
    big.last_us += 600 * US_PER_S;
    det_observe_flow(e, &big);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);

    /* After a reset the beacon still present alerts again. */
    det_engine_reset_alerts(e);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 1);
    det_engine_destroy(&e);
}

static void test_tcp_remnants_not_counted(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x4a);
    fv_endpoint c2 = external_peer(203, 0, 113, 51);

    /* Twelve connections 300 s apart, each followed 1.5 s later by a
     * one-packet record of its last ACK (flags 0x10, 52 bytes). */
    for (uint64_t i = 0; i < 12; i++) {
        uint64_t start = T0_US + i * 300 * US_PER_S;
        fv_flow_record f = make_flow(&host, &c2, 443, start, US_PER_S, 3000, 5000);
        det_observe_flow(e, &f);
        fv_flow_record tail = make_flow(&host, &c2, 443, start + 1500000, 0, 52, 0);
        tail.tcp_flags_fwd = 0x10;
        tail.tcp_flags_rev = 0;
        tail.pkts_fwd = 1;
        tail.pkts_rev = 0;
        tail.end_reason = FV_END_IDLE;
        det_observe_flow(e, &tail);
    }

    /* An upload of 60 MB. Its baseline median is 3000 bytes only if the
     * 52-byte tails stayed out of the history (with them it is 1526). */
    fv_endpoint drop = external_peer(198, 51, 100, 79);
    fv_flow_record big =
        make_flow(&host, &drop, 443, T0_US + 9000 * US_PER_S, 60 * US_PER_S, 60000000, 1000);
    det_observe_flow(e, &big);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 2);
    for (size_t i = 0; i < got.count; i++) {
        const fv_alert_record *a = &got.alerts[i];
        if (a->detector == FV_DET_BEACON)
            assert_int_equal(a->flow_count, 12);
        else
            assert_true(a->evidence[DET_EV_EXFIL_BASELINE_MEDIAN_BYTES] == 3000.0);
    }
    det_engine_destroy(&e);
}

static void test_disabled_detectors_stay_silent(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    cfg.beacon_enabled = false;
    cfg.exfil_enabled = false;
    det_engine *e = make_engine(&cfg);
    fv_endpoint host = internal_host(0x49);
    fv_endpoint c2 = external_peer(203, 0, 113, 50);
    test_rng rng = {11};

    feed_beacon(e, &host, &c2, 20, 300.0, 0.0, NULL, 0, &rng);
    feed_history(e, &host, 12, 4000);
    fv_flow_record big =
        make_flow(&host, &c2, 443, T0_US + 9000 * US_PER_S, 60 * US_PER_S, 120000000, 1000);
    det_observe_flow(e, &big);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

static void test_engine_rejects_invalid_config(void **state)
{
    (void)state;
    det_engine *e = NULL;
    pol_detect cfg = default_config();
    cfg.beacon_min_connections = 2;
    assert_int_equal(det_engine_create(&cfg, &e), FV_ERR_INVALID);
    assert_null(e);

    cfg = default_config();
    cfg.beacon_max_jitter = 0.0;
    assert_int_equal(det_engine_create(&cfg, &e), FV_ERR_INVALID);

    cfg = default_config();
    cfg.exfil_min_history = 500;
    assert_int_equal(det_engine_create(&cfg, &e), FV_ERR_INVALID);

    assert_int_equal(det_engine_create(NULL, &e), FV_ERR_INVALID);
    det_engine_destroy(NULL);
    det_engine_destroy(&e);
}

static void test_evidence_names_match_slots(void **state)
{
    (void)state;
    assert_string_equal(det_evidence_name(FV_DET_BEACON, DET_EV_BEACON_MEDIAN_INTERVAL_S),
                        "median_interval_s");
    assert_string_equal(det_evidence_name(FV_DET_BEACON, DET_EV_BEACON_MEAN_BYTES_OUT),
                        "mean_bytes_out");
    assert_string_equal(det_evidence_name(FV_DET_EXFIL, DET_EV_EXFIL_HISTORY_FLOWS),
                        "history_flows");
    assert_null(det_evidence_name(FV_DET_BEACON, DET_EV_BEACON_COUNT));
    assert_null(det_evidence_name(FV_DET_EXFIL, DET_EV_EXFIL_COUNT));
    assert_null(det_evidence_name(0, 0));

    /* The common table used by exports must agree with ours. */
    for (unsigned i = 0; i < DET_EV_BEACON_COUNT; i++)
        assert_string_equal(fv_evidence_name(FV_DET_BEACON, i),
                            det_evidence_name(FV_DET_BEACON, i));
    for (unsigned i = 0; i < DET_EV_EXFIL_COUNT; i++)
        assert_string_equal(fv_evidence_name(FV_DET_EXFIL, i), det_evidence_name(FV_DET_EXFIL, i));
}

static void test_pair_table_evicts_oldest(void **state)
{
    (void)state;
    pol_detect cfg = default_config();
    det_engine *e = make_engine(&cfg);
    fv_endpoint c2 = external_peer(203, 0, 113, 50);

    /* A beacon, then more distinct pairs than the table holds: the
     * beacon's pair is evicted, so its history is gone. */
    fv_endpoint host = internal_host(0x50);
    test_rng rng = {13};
    feed_beacon(e, &host, &c2, 7, 300.0, 0.0, NULL, 0, &rng);
    fv_endpoint other = internal_host(0x51);
    for (uint32_t i = 0; i < 70000; i++) {
        fv_endpoint peer = external_peer(100, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        fv_flow_record f = make_flow(&other, &peer, 443, T0_US, US_PER_S, 500, 500);
        det_observe_flow(e, &f);
    }
    fv_flow_record f = make_flow(&host, &c2, 443, T0_US + 7 * 300 * US_PER_S, US_PER_S, 500, 500);
    det_observe_flow(e, &f);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beacon_detects_jitter_and_missed_beats),
        cmocka_unit_test(test_beacon_ignores_exponential_intervals),
        cmocka_unit_test(test_beacon_needs_min_connections),
        cmocka_unit_test(test_beacon_merges_retries),
        cmocka_unit_test(test_beacon_ignores_short_intervals),
        cmocka_unit_test(test_internal_to_internal_never_alerts),
        cmocka_unit_test(test_exfil_alerts_with_evidence),
        cmocka_unit_test(test_exfil_critical_above_ten_floors),
        cmocka_unit_test(test_exfil_counts_peer_initiated_flow),
        cmocka_unit_test(test_exfil_needs_history),
        cmocka_unit_test(test_exfil_ignores_usually_large_sender),
        cmocka_unit_test(test_exfil_ignores_flow_below_floor),
        cmocka_unit_test(test_alerts_not_repeated),
        cmocka_unit_test(test_tcp_remnants_not_counted),
        cmocka_unit_test(test_disabled_detectors_stay_silent),
        cmocka_unit_test(test_engine_rejects_invalid_config),
        cmocka_unit_test(test_evidence_names_match_slots),
        cmocka_unit_test(test_pair_table_evicts_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
