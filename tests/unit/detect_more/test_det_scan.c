/*
 * test_det_scan.c: the threshold-random-walk scan detector (det_scan.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_helpers.h"

static pol_detect scan_config(void)
{
    pol_detect c;
    memset(&c, 0, sizeof c);
    c.scan_enabled = true;
    c.scan_theta0 = 0.8;
    c.scan_theta1 = 0.2;
    c.scan_false_positive = 0.01;
    c.scan_detection = 0.99;
    c.scan_min_targets = 10;
    return c;
}

static void *scan_new(void)
{
    pol_detect c = scan_config();
    assert_true(det_module_scan.enabled(&c));
    void *state = det_module_scan.create(&c);
    assert_non_null(state);
    return state;
}

static void evaluate(void *state, uint64_t now_s, th_alerts *out)
{
    memset(out, 0, sizeof *out);
    det_module_scan.evaluate(state, now_s * 1000000u, th_collect, out);
}

static void test_scan_fast_horizontal_alerts(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint scanner = th_internal(7, "office");

    /* 40 addresses probed on port 445 within 40 s; 2 of them answer. */
    for (unsigned i = 0; i < 40; i++) {
        fv_endpoint target = th_external(1, i + 1);
        fv_flow_record f = th_tcp(&scanner, &target, 445, 1000 + i, i == 5 || i == 20);
        det_module_scan.observe_flow(state, &f);
    }
    th_alerts alerts;
    evaluate(state, 2000, &alerts);

    assert_int_equal(alerts.count, 1);
    const fv_alert_record *a = &alerts.alerts[0];
    assert_int_equal(a->detector, FV_DET_SCAN);
    assert_int_equal(a->severity, FV_SEV_HIGH);
    assert_memory_equal(a->host.addr, scanner.addr, 16);
    assert_int_equal(a->evidence[DET_EV_SCAN_VERTICAL], 0);
    assert_true(a->evidence[DET_EV_SCAN_TARGETS] >= 10);
    assert_true(a->evidence[DET_EV_SCAN_FAILURES] >= 8);
    assert_int_equal(a->evidence[DET_EV_SCAN_DISTINCT_PORTS], 1);
    assert_int_equal(a->peer_port, 445);
    assert_true(a->evidence[DET_EV_SCAN_LIKELIHOOD_RATIO] >= 99.0);
    assert_non_null(strstr(a->summary, "horizontal"));

    /* Nothing new since: the next evaluation stays quiet. */
    evaluate(state, 2100, &alerts);
    assert_int_equal(alerts.count, 0);
    det_module_scan.destroy(state);
}

static void test_scan_slow_horizontal_alerts(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint scanner = th_internal(8, "office");
    fv_endpoint web = th_external(9, 9);

    /* One probe an hour for a day, each hour also a repeated (not first)
     * successful visit to the same web server. */
    for (unsigned h = 0; h < 24; h++) {
        uint64_t t = 100000 + h * 3600u;
        fv_flow_record visit = th_tcp(&scanner, &web, 443, t, 1);
        det_module_scan.observe_flow(state, &visit);
        fv_endpoint target = th_external(2, h + 1);
        fv_flow_record probe = th_tcp(&scanner, &target, 22, t + 60, 0);
        det_module_scan.observe_flow(state, &probe);
    }
    th_alerts alerts;
    evaluate(state, 100000 + 25 * 3600u, &alerts);

    assert_int_equal(alerts.count, 1);
    assert_int_equal(alerts.alerts[0].evidence[DET_EV_SCAN_VERTICAL], 0);
    assert_true(alerts.alerts[0].last_us - alerts.alerts[0].first_us >= 9ull * 3600u * 1000000u);
    det_module_scan.destroy(state);
}

static void test_scan_vertical_alerts(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint scanner = th_internal(9, "office");
    fv_endpoint target = th_external(3, 3);

    /* Ports 1..100 of one address; 22 and 80 are open. */
    for (unsigned port = 1; port <= 100; port++) {
        fv_flow_record f =
            th_tcp(&scanner, &target, (uint16_t)port, 5000 + port, port == 22 || port == 80);
        det_module_scan.observe_flow(state, &f);
    }
    th_alerts alerts;
    evaluate(state, 6000, &alerts);

    assert_int_equal(alerts.count, 1);
    const fv_alert_record *a = &alerts.alerts[0];
    assert_int_equal(a->evidence[DET_EV_SCAN_VERTICAL], 1);
    assert_memory_equal(a->peer.addr, target.addr, 16);
    assert_true(a->evidence[DET_EV_SCAN_DISTINCT_PORTS] >= 10);
    assert_non_null(strstr(a->summary, "vertical"));
    det_module_scan.destroy(state);
}

static void test_scan_udp_unanswered_alerts(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint scanner = th_internal(10, "office");

    /* UDP 161 to 30 addresses, none answers. */
    for (unsigned i = 0; i < 30; i++) {
        fv_endpoint target = th_external(4, i + 1);
        fv_flow_record f = th_tcp(&scanner, &target, 161, 7000 + i, 0);
        f.proto = 17;
        f.tcp_flags_fwd = f.tcp_flags_rev = 0;
        f.pkts_rev = 0;
        det_module_scan.observe_flow(state, &f);
    }
    th_alerts alerts;
    evaluate(state, 8000, &alerts);
    assert_int_equal(alerts.count, 1);
    det_module_scan.destroy(state);
}

static void test_scan_udp_answers_without_requests_quiet(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint resolver = th_external(30, 53);
    fv_endpoint client = th_internal(15, "office");

    /* 30 DNS answers from port 53 to ephemeral ports whose queries the
     * capture missed: one-way UDP, but no probe. */
    for (unsigned i = 0; i < 30; i++) {
        fv_flow_record f = th_tcp(&resolver, &client, (uint16_t)(20000 + i * 7), 9000 + i, 0);
        f.proto = 17;
        f.sport = 53;
        f.tcp_flags_fwd = f.tcp_flags_rev = 0;
        f.pkts_rev = 0;
        det_module_scan.observe_flow(state, &f);
    }
    th_alerts alerts;
    evaluate(state, 10000, &alerts);
    assert_int_equal(alerts.count, 0);
    det_module_scan.destroy(state);
}

static void test_scan_busy_server_quiet(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint server = th_internal(1, "dmz");

    /* 300 outside clients, each connecting three times; all answered,
     * except every 20th attempt that the server resets under load. */
    unsigned n = 0;
    for (unsigned i = 0; i < 300; i++) {
        fv_endpoint client = th_external(5 + i / 250, i % 250 + 1);
        for (unsigned k = 0; k < 3; k++, n++) {
            fv_flow_record f = th_tcp(&client, &server, 443, 10000 + n, n % 20 != 0);
            det_module_scan.observe_flow(state, &f);
        }
    }
    th_alerts alerts;
    evaluate(state, 20000, &alerts);
    assert_int_equal(alerts.count, 0);
    det_module_scan.destroy(state);
}

static void test_scan_normal_client_quiet(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint client = th_internal(11, "office");

    /* 200 new web sites over a day; one in eight does not answer. */
    for (unsigned i = 0; i < 200; i++) {
        fv_endpoint site = th_external(10 + i / 200, i % 200 + 1);
        fv_flow_record f =
            th_tcp(&client, &site, i % 3 == 0 ? 80 : 443, 30000 + i * 400, i % 8 != 3);
        det_module_scan.observe_flow(state, &f);
    }
    th_alerts alerts;
    evaluate(state, 30000 + 200 * 400, &alerts);
    assert_int_equal(alerts.count, 0);
    det_module_scan.destroy(state);
}

static void test_scan_continues_across_rekey(void **unused)
{
    (void)unused;
    void *state = scan_new();
    fv_endpoint old_name = th_internal(12, "office");
    fv_endpoint new_name = th_internal(13, "office");
    fv_endpoint other = th_internal(14, "office");

    /* Six failed probes before the rotation, six after under the new
     * pseudonym: only the moved walk reaches min_targets. */
    for (unsigned i = 0; i < 6; i++) {
        fv_endpoint target = th_external(20, i + 1);
        fv_flow_record f = th_tcp(&old_name, &target, 3389, 40000 + i, 0);
        det_module_scan.observe_flow(state, &f);
        f = th_tcp(&other, &target, 3389, 40000 + i, 0);
        det_module_scan.observe_flow(state, &f);
    }
    det_module_scan.rekey_begin(state);
    det_module_scan.rekey(state, old_name.addr, new_name.addr, FV_EP_PSEUDO_IPV4);
    size_t dropped = det_module_scan.rekey_end(state);
    assert_true(dropped > 0); /* OTHER was not moved */

    for (unsigned i = 6; i < 12; i++) {
        fv_endpoint target = th_external(20, i + 1);
        fv_flow_record f = th_tcp(&new_name, &target, 3389, 40000 + i, 0);
        det_module_scan.observe_flow(state, &f);
    }
    th_alerts alerts;
    evaluate(state, 41000, &alerts);
    assert_int_equal(alerts.count, 1);
    assert_memory_equal(alerts.alerts[0].host.addr, new_name.addr, 16);
    assert_int_equal(alerts.alerts[0].evidence[DET_EV_SCAN_TARGETS], 12);
    det_module_scan.destroy(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_fast_horizontal_alerts),
        cmocka_unit_test(test_scan_slow_horizontal_alerts),
        cmocka_unit_test(test_scan_vertical_alerts),
        cmocka_unit_test(test_scan_udp_unanswered_alerts),
        cmocka_unit_test(test_scan_udp_answers_without_requests_quiet),
        cmocka_unit_test(test_scan_busy_server_quiet),
        cmocka_unit_test(test_scan_normal_client_quiet),
        cmocka_unit_test(test_scan_continues_across_rekey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
