/*
 * test_det_segment.c: the segmentation detector (det_segment.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_helpers.h"

static void add_rule(pol_detect *c, const char *from, const char *to, uint8_t proto,
                     uint16_t port_lo, uint16_t port_hi, bool allow)
{
    pol_seg_rule *r = &c->seg_rules[c->seg_rule_count++];
    memset(r, 0, sizeof *r);
    snprintf(r->from_zone, sizeof r->from_zone, "%s", from);
    snprintf(r->to_zone, sizeof r->to_zone, "%s", to);
    r->proto = proto;
    r->port_lo = port_lo;
    r->port_hi = port_hi;
    r->allow = allow;
}

/*
 * office -> servers: tcp 443 and 8000-8099 allowed, everything else to
 * servers denied; guest -> anywhere internal denied; the default allows.
 */
static pol_detect *seg_config(bool default_allow)
{
    static pol_detect c;
    memset(&c, 0, sizeof c);
    c.segmentation_enabled = true;
    c.segmentation_default_allow = default_allow;
    add_rule(&c, "office", "servers", 6, 443, 443, true);
    add_rule(&c, "office", "servers", 6, 8000, 8099, true);
    add_rule(&c, "*", "servers", 0, 0, 65535, false);
    add_rule(&c, "guest", "office", 0, 0, 65535, false);
    add_rule(&c, "guest", "external", 0, 0, 65535, true);
    return &c;
}

static size_t observe_and_evaluate(void *state, const fv_flow_record *flows, size_t n,
                                   th_alerts *alerts)
{
    for (size_t i = 0; i < n; i++)
        det_module_segmentation.observe_flow(state, &flows[i]);
    memset(alerts, 0, sizeof *alerts);
    det_module_segmentation.evaluate(state, 90000ull * 1000000u, th_collect, alerts);
    return alerts->count;
}

static void test_segment_allowed_ports_quiet(void **unused)
{
    (void)unused;
    void *state = det_module_segmentation.create(seg_config(true));
    assert_non_null(state);
    fv_endpoint pc = th_internal(31, "office");
    fv_endpoint srv = th_internal(32, "servers");

    fv_flow_record flows[3] = {
        th_tcp(&pc, &srv, 443, 100, 1),
        th_tcp(&pc, &srv, 8000, 101, 1), /* lower end of the range */
        th_tcp(&pc, &srv, 8099, 102, 1), /* upper end */
    };
    th_alerts alerts;
    assert_int_equal(observe_and_evaluate(state, flows, 3, &alerts), 0);
    det_module_segmentation.destroy(state);
}

static void test_segment_denied_port_alerts(void **unused)
{
    (void)unused;
    void *state = det_module_segmentation.create(seg_config(true));
    assert_non_null(state);
    fv_endpoint pc = th_internal(33, "office");
    fv_endpoint srv = th_internal(34, "servers");

    /* SMB to a server, three times, and 8100 just past the range. */
    fv_flow_record flows[4] = {
        th_tcp(&pc, &srv, 445, 200, 1),
        th_tcp(&pc, &srv, 445, 201, 1),
        th_tcp(&pc, &srv, 445, 202, 0),
        th_tcp(&pc, &srv, 8100, 203, 0),
    };
    th_alerts alerts;
    assert_int_equal(observe_and_evaluate(state, flows, 4, &alerts), 2);

    const fv_alert_record *smb =
        alerts.alerts[0].peer_port == 445 ? &alerts.alerts[0] : &alerts.alerts[1];
    const fv_alert_record *past_range =
        smb == &alerts.alerts[0] ? &alerts.alerts[1] : &alerts.alerts[0];
    assert_int_equal(smb->detector, FV_DET_SEGMENTATION);
    assert_int_equal(smb->severity, FV_SEV_HIGH);
    assert_int_equal(smb->evidence[DET_EV_SEG_RULE], 3);
    assert_int_equal(smb->evidence[DET_EV_SEG_FLOWS], 3); /* one alert for three flows */
    assert_int_equal(smb->evidence[DET_EV_SEG_ANSWERED], 1);
    assert_int_equal(smb->flow_count, 3);
    assert_memory_equal(smb->host.addr, pc.addr, 16);
    assert_memory_equal(smb->peer.addr, srv.addr, 16);
    assert_non_null(strstr(smb->summary, "office"));
    assert_non_null(strstr(smb->summary, "servers"));
    assert_int_equal(past_range->peer_port, 8100);
    assert_int_equal(past_range->evidence[DET_EV_SEG_ANSWERED], 0);

    /* Nothing new: quiet; one more SMB flow: the entry reports again. */
    th_alerts again;
    assert_int_equal(observe_and_evaluate(state, NULL, 0, &again), 0);
    fv_flow_record more = th_tcp(&pc, &srv, 445, 300, 1);
    assert_int_equal(observe_and_evaluate(state, &more, 1, &again), 1);
    assert_int_equal(again.alerts[0].evidence[DET_EV_SEG_FLOWS], 4);
    det_module_segmentation.destroy(state);
}

static void test_segment_first_match_wins(void **unused)
{
    (void)unused;
    pol_detect *c = seg_config(true);
    /* Move a deny of office -> servers tcp 443 in front of the allow. */
    pol_seg_rule deny = c->seg_rules[0];
    deny.allow = false;
    memmove(&c->seg_rules[1], &c->seg_rules[0], c->seg_rule_count * sizeof c->seg_rules[0]);
    c->seg_rules[0] = deny;
    c->seg_rule_count++;
    void *state = det_module_segmentation.create(c);
    assert_non_null(state);

    fv_endpoint pc = th_internal(35, "office");
    fv_endpoint srv = th_internal(36, "servers");
    fv_flow_record f = th_tcp(&pc, &srv, 443, 400, 1);
    th_alerts alerts;
    assert_int_equal(observe_and_evaluate(state, &f, 1, &alerts), 1);
    assert_int_equal(alerts.alerts[0].evidence[DET_EV_SEG_RULE], 1);
    det_module_segmentation.destroy(state);
}

static void test_segment_default_decides(void **unused)
{
    (void)unused;
    fv_endpoint pc = th_internal(37, "office");
    fv_endpoint printer = th_internal(38, "printers");
    fv_flow_record f = th_tcp(&pc, &printer, 9100, 500, 1);
    th_alerts alerts;

    /* No rule names printers: default allow stays quiet... */
    void *state = det_module_segmentation.create(seg_config(true));
    assert_non_null(state);
    assert_int_equal(observe_and_evaluate(state, &f, 1, &alerts), 0);
    det_module_segmentation.destroy(state);

    /* ...and default deny alerts, naming the default (rule 0). */
    state = det_module_segmentation.create(seg_config(false));
    assert_non_null(state);
    assert_int_equal(observe_and_evaluate(state, &f, 1, &alerts), 1);
    assert_int_equal(alerts.alerts[0].evidence[DET_EV_SEG_RULE], 0);
    assert_non_null(strstr(alerts.alerts[0].summary, "default"));
    det_module_segmentation.destroy(state);
}

static void test_segment_external_zone_and_protocol(void **unused)
{
    (void)unused;
    void *state = det_module_segmentation.create(seg_config(false));
    assert_non_null(state);
    fv_endpoint guest = th_internal(39, "guest");
    fv_endpoint office = th_internal(40, "office");
    fv_endpoint web = th_external(7, 7);

    /* guest -> external is allowed by rule 5; guest -> office over UDP
     * is denied by rule 4, which has no protocol. */
    fv_flow_record flows[2] = {th_tcp(&guest, &web, 443, 600, 1),
                               th_tcp(&guest, &office, 53, 601, 1)};
    flows[1].proto = 17;
    flows[1].tcp_flags_fwd = flows[1].tcp_flags_rev = 0;
    th_alerts alerts;
    assert_int_equal(observe_and_evaluate(state, flows, 2, &alerts), 1);
    assert_int_equal(alerts.alerts[0].evidence[DET_EV_SEG_RULE], 4);
    assert_int_equal(alerts.alerts[0].proto, 17);
    assert_non_null(strstr(alerts.alerts[0].summary, "udp/53"));
    det_module_segmentation.destroy(state);
}

static void test_segment_rekey_moves_entries(void **unused)
{
    (void)unused;
    void *state = det_module_segmentation.create(seg_config(true));
    assert_non_null(state);
    fv_endpoint pc = th_internal(41, "office");
    fv_endpoint pc_new = th_internal(42, "office");
    fv_endpoint srv = th_internal(43, "servers");
    fv_endpoint srv_new = th_internal(44, "servers");

    fv_flow_record f = th_tcp(&pc, &srv, 22, 700, 1);
    th_alerts alerts;
    assert_int_equal(observe_and_evaluate(state, &f, 1, &alerts), 1);

    det_module_segmentation.rekey_begin(state);
    det_module_segmentation.rekey(state, pc.addr, pc_new.addr, FV_EP_PSEUDO_IPV4);
    det_module_segmentation.rekey(state, srv.addr, srv_new.addr, FV_EP_PSEUDO_IPV4);
    assert_int_equal(det_module_segmentation.rekey_end(state), 0);

    /* The same pair under its new names continues the entry. */
    f = th_tcp(&pc_new, &srv_new, 22, 800, 1);
    assert_int_equal(observe_and_evaluate(state, &f, 1, &alerts), 1);
    assert_int_equal(alerts.alerts[0].evidence[DET_EV_SEG_FLOWS], 2);
    assert_memory_equal(alerts.alerts[0].host.addr, pc_new.addr, 16);
    assert_memory_equal(alerts.alerts[0].peer.addr, srv_new.addr, 16);

    /* A rotation that moves no host drops the entry. */
    det_module_segmentation.rekey_begin(state);
    assert_int_equal(det_module_segmentation.rekey_end(state), 1);
    det_module_segmentation.destroy(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_allowed_ports_quiet),
        cmocka_unit_test(test_segment_denied_port_alerts),
        cmocka_unit_test(test_segment_first_match_wins),
        cmocka_unit_test(test_segment_default_decides),
        cmocka_unit_test(test_segment_external_zone_and_protocol),
        cmocka_unit_test(test_segment_rekey_moves_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
