/*
 * Tests for det_rekey: detector state follows a host from its pseudonym
 * under the old epoch key to its pseudonym under the new one.
 */
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
#define PERIOD_S 300ull

typedef struct collected {
    size_t count;
    fv_alert_record alerts[8];
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

/* An internal host whose pseudonym bytes all equal TAG. */
static fv_endpoint internal_host(uint8_t tag)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    memset(ep.addr, tag, sizeof ep.addr);
    snprintf(ep.zone, sizeof ep.zone, "office");
    return ep;
}

/* The kept external address 203.0.113.50 (TEST-NET-3). */
static fv_endpoint c2_peer(void)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_IPV4;
    ep.addr[0] = 203;
    ep.addr[2] = 113;
    ep.addr[3] = 50;
    snprintf(ep.zone, sizeof ep.zone, FV_ZONE_EXTERNAL);
    return ep;
}

/* One complete TCP connection from HOST to PEER:443 at START_US. */
static fv_flow_record make_flow(const fv_endpoint *host, const fv_endpoint *peer,
                                uint64_t start_us, uint64_t bytes_out)
{
    fv_flow_record f;
    memset(&f, 0, sizeof f);
    f.src = *host;
    f.dst = *peer;
    f.sport = 50000;
    f.dport = 443;
    f.proto = 6;
    f.end_reason = FV_END_FIN;
    f.tcp_flags_fwd = 0x1b; /* FIN SYN PSH ACK */
    f.tcp_flags_rev = 0x1b;
    f.first_us = start_us;
    f.last_us = start_us + US_PER_S;
    f.pkts_fwd = 10;
    f.pkts_rev = 10;
    f.bytes_fwd = bytes_out;
    f.bytes_rev = 5200;
    return f;
}

/* Beats FIRST..FIRST+COUNT-1 of an exact 300 s beacon from HOST. */
static void feed_beats(det_engine *e, const fv_endpoint *host, uint64_t first, uint64_t count)
{
    fv_endpoint peer = c2_peer();
    for (uint64_t i = first; i < first + count; i++) {
        fv_flow_record f = make_flow(host, &peer, T0_US + i * PERIOD_S * US_PER_S, 2500);
        det_observe_flow(e, &f);
    }
}

static det_engine *make_engine(void)
{
    pol_detect cfg = default_config();
    det_engine *e = NULL;
    assert_int_equal(det_engine_create(&cfg, &e), FV_OK);
    return e;
}

static void rotate(det_engine *e, const fv_endpoint *old_host, const fv_endpoint *new_host)
{
    det_rekey_begin(e);
    det_rekey(e, old_host->addr, new_host->addr, old_host->kind);
    (void)det_rekey_end(e);
}

/* A beacon of five beats before and five after the rotation alerts once,
 * under the new pseudonym. */
static void test_rekey_beacon_spans_rotation(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);

    feed_beats(e, &old_host, 0, 5);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    rotate(e, &old_host, &new_host);
    feed_beats(e, &new_host, 5, 5);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US + 3600 * US_PER_S, collect_alert, &got), 1);
    assert_int_equal(got.alerts[0].detector, FV_DET_BEACON);
    assert_memory_equal(got.alerts[0].host.addr, new_host.addr, sizeof new_host.addr);
    assert_int_equal(got.alerts[0].flow_count, 10);
    det_engine_destroy(&e);
}

/* Without det_rekey the five old beats are lost and five new ones are
 * too few: the control case for the test above. */
static void test_rekey_missing_host_loses_state(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);

    feed_beats(e, &old_host, 0, 9);
    det_rekey_begin(e);
    assert_true(det_rekey_end(e) > 0);
    feed_beats(e, &new_host, 9, 5);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);
    det_engine_destroy(&e);
}

/* A beacon that alerted before the rotation does not alert again when
 * it goes on under the new pseudonym. */
static void test_rekey_keeps_alerted_mark(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);

    feed_beats(e, &old_host, 0, 10);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 1);
    rotate(e, &old_host, &new_host);
    feed_beats(e, &new_host, 10, 4);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 0);

    /* The mark moved rather than vanished: a reset makes it alert again. */
    det_engine_reset_alerts(e);
    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_memory_equal(got.alerts[0].host.addr, new_host.addr, sizeof new_host.addr);
    det_engine_destroy(&e);
}

/* State of a host that was not re-keyed is dropped, so an alert raised
 * after the rotation never carries the old pseudonym. */
static void test_rekey_end_drops_unmoved_hosts(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint kept_old = internal_host(0x11);
    fv_endpoint kept_new = internal_host(0x22);
    fv_endpoint gone = internal_host(0x33);

    feed_beats(e, &kept_old, 0, 10);
    feed_beats(e, &gone, 0, 10);
    det_rekey_begin(e);
    det_rekey(e, kept_old.addr, kept_new.addr, kept_old.kind);
    /* gone's pair and its exfil baseline. */
    assert_int_equal(det_rekey_end(e), 2);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_memory_equal(got.alerts[0].host.addr, kept_new.addr, sizeof kept_new.addr);
    det_engine_destroy(&e);
}

/* An exfil alert queued before the rotation is raised with the new
 * pseudonym, in the record and in the summary text. */
static void test_rekey_rewrites_queued_exfil(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);
    fv_endpoint peer = c2_peer();

    for (uint64_t i = 0; i < 12; i++) {
        fv_flow_record f = make_flow(&old_host, &peer, T0_US + i * 7 * US_PER_S, 4000 + i);
        det_observe_flow(e, &f);
    }
    fv_flow_record big = make_flow(&old_host, &peer, T0_US + 9000 * US_PER_S, 120000000);
    det_observe_flow(e, &big);
    rotate(e, &old_host, &new_host);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_int_equal(got.alerts[0].detector, FV_DET_EXFIL);
    assert_memory_equal(got.alerts[0].host.addr, new_host.addr, sizeof new_host.addr);
    char old_text[FV_ENDPOINT_TEXT_MAX], new_text[FV_ENDPOINT_TEXT_MAX];
    fv_endpoint_format(&old_host, old_text);
    fv_endpoint_format(&new_host, new_text);
    assert_null(strstr(got.alerts[0].summary, old_text));
    assert_non_null(strstr(got.alerts[0].summary, new_text));
    assert_non_null(strstr(got.alerts[0].summary, "120.0 MB"));
    det_engine_destroy(&e);
}

/* When the new pseudonym already has state (flows seen after the
 * rotation but before det_rekey), the two histories are merged. */
static void test_rekey_merges_existing_state(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);

    feed_beats(e, &old_host, 0, 5);
    feed_beats(e, &new_host, 5, 4);
    det_rekey(e, old_host.addr, new_host.addr, old_host.kind);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_memory_equal(got.alerts[0].host.addr, new_host.addr, sizeof new_host.addr);
    assert_int_equal(got.alerts[0].flow_count, 9);
    det_engine_destroy(&e);
}

/* Pairs of one beat keep it inside the table entry: merging two of them
 * and growing the result past the entry must keep every beat. */
static void test_rekey_merges_single_beats(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);

    feed_beats(e, &old_host, 0, 1);
    feed_beats(e, &new_host, 1, 1);
    det_rekey(e, old_host.addr, new_host.addr, old_host.kind);
    feed_beats(e, &new_host, 2, 8);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_memory_equal(got.alerts[0].host.addr, new_host.addr, sizeof new_host.addr);
    assert_int_equal(got.alerts[0].flow_count, 10);
    det_engine_destroy(&e);
}

/* The kind is part of the host: re-keying the IPv6 pseudonym with the
 * same bytes leaves the IPv4 host alone. */
static void test_rekey_matches_kind(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint old_host = internal_host(0x11);
    fv_endpoint new_host = internal_host(0x22);

    feed_beats(e, &old_host, 0, 10);
    det_rekey(e, old_host.addr, new_host.addr, FV_EP_PSEUDO_IPV6);

    collected got = {0};
    assert_int_equal(det_evaluate(e, T0_US, collect_alert, &got), 1);
    assert_memory_equal(got.alerts[0].host.addr, old_host.addr, sizeof old_host.addr);
    det_engine_destroy(&e);
}

/* Re-keying a host to the pseudonym it has (a zone whose addresses are
 * not pseudonymized per epoch) keeps its state through det_rekey_end. */
static void test_rekey_same_pseudonym_keeps_state(void **state)
{
    (void)state;
    det_engine *e = make_engine();
    fv_endpoint host = internal_host(0x11);

    feed_beats(e, &host, 0, 10);
    det_rekey_begin(e);
    det_rekey(e, host.addr, host.addr, host.kind);
    assert_int_equal(det_rekey_end(e), 0);
    assert_int_equal(det_evaluate(e, T0_US, NULL, NULL), 1);
    det_engine_destroy(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rekey_beacon_spans_rotation),
        cmocka_unit_test(test_rekey_missing_host_loses_state),
        cmocka_unit_test(test_rekey_keeps_alerted_mark),
        cmocka_unit_test(test_rekey_end_drops_unmoved_hosts),
        cmocka_unit_test(test_rekey_rewrites_queued_exfil),
        cmocka_unit_test(test_rekey_merges_existing_state),
        cmocka_unit_test(test_rekey_merges_single_beats),
        cmocka_unit_test(test_rekey_matches_kind),
        cmocka_unit_test(test_rekey_same_pseudonym_keeps_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
