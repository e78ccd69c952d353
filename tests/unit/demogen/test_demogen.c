/*
 * Tests for tools/demogen: the written pcap reads back through libpcap
 * with valid headers, generation is deterministic, bad arguments are
 * rejected, and the demo's conversations, fed to the detectors as flow
 * records, raise exactly the two planted alerts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "demogen.h"
#include "detect.h"
#include "testutil.h"

#define US_PER_S 1000000ull

static const uint8_t beacon_host[4] = {10, 1, 0, 23};
static const uint8_t beacon_peer[4] = {203, 0, 113, 50};
static const uint8_t exfil_host[4] = {10, 1, 0, 42};
static const uint8_t exfil_peer[4] = {198, 51, 100, 77};

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* One's complement sum over BYTES, folded; 0xffff means a valid checksum
 * when the checksum field is included. */
static uint16_t ones_sum(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += get16(p + i);
    if (n % 2 == 1)
        acc += (uint32_t)(p[n - 1] << 8);
    while (acc > 0xffff)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* Counters gathered while reading the demo pcap back. */
typedef struct pcap_facts {
    size_t packets;
    size_t out_of_order;
    size_t outside_window;
    size_t bad_ip_checksum;
    size_t bad_transport_checksum;
    size_t transport_checked;
    size_t beacon_syns;
    size_t beacon_sni_hellos;
    size_t exfil_cut_frames;
} pcap_facts;

static void inspect_frame(pcap_facts *f, const struct pcap_pkthdr *h, const uint8_t *d)
{
    /* Ethernet II carrying IPv4 with a 20-byte header. */
    if (h->caplen < 34 || get16(d + 12) != 0x0800 || d[14] != 0x45)
        return;
    const uint8_t *ip = d + 14;
    if (ones_sum(0, ip, 20) != 0xffff)
        f->bad_ip_checksum++;
    uint8_t proto = ip[9];
    uint16_t ip_len = get16(ip + 2);
    const uint8_t *l4 = ip + 20;
    size_t l4_len = (size_t)ip_len - 20;

    /* Transport checksum, only where the whole packet is stored. */
    if (h->caplen == h->len && (proto == 6 || proto == 17)) {
        uint32_t acc = ones_sum(0, ip + 12, 8);
        acc += proto + (uint32_t)l4_len;
        f->transport_checked++;
        if (ones_sum(acc, l4, l4_len) != 0xffff)
            f->bad_transport_checksum++;
    }

    if (proto != 6)
        return;
    bool to_beacon = memcmp(ip + 12, beacon_host, 4) == 0 && memcmp(ip + 16, beacon_peer, 4) == 0;
    uint8_t flags = l4[13];
    if (to_beacon && get16(l4 + 2) == 443 && (flags & 0x12) == 0x02)
        f->beacon_syns++;
    static const char sni[] = "update-check.example.net";
    if (to_beacon && tu_memmem_found(d, h->caplen, sni, sizeof sni - 1))
        f->beacon_sni_hellos++;
    bool to_exfil = memcmp(ip + 12, exfil_host, 4) == 0 && memcmp(ip + 16, exfil_peer, 4) == 0;
    if (to_exfil && h->caplen == 66 && h->len == 1514)
        f->exfil_cut_frames++;
}

static void test_demogen_pcap_reads_back(void **state)
{
    (void)state;
    const char *bin = tu_env("FLOWVEIL_DEMOGEN", NULL);
    if (bin == NULL)
        fail_msg("FLOWVEIL_DEMOGEN is not set; run the test through ctest, which sets it");
    char dir[512], path[600], cmd[1400];
    tu_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/demo.pcap", dir);
    snprintf(cmd, sizeof cmd, "'%s' --output '%s' --seed 1 --hours 3", bin, path);
    assert_int_equal(tu_run(cmd), 0);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 1000000);
    assert_true(st.st_size <= 20 * 1000 * 1000);

    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, err);
    if (p == NULL)
        fail_msg("pcap_open_offline: %s", err);
    assert_int_equal(pcap_datalink(p), DLT_EN10MB);

    const uint64_t start_us = (uint64_t)DEMO_DEFAULT_START_S * US_PER_S;
    const uint64_t end_us = start_us + 3 * 3600 * US_PER_S + 600 * US_PER_S;
    pcap_facts f = {0};
    uint64_t prev_us = 0;
    struct pcap_pkthdr *h;
    const u_char *d;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &d)) == 1) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * US_PER_S + (uint64_t)h->ts.tv_usec;
        if (ts < prev_us)
            f.out_of_order++;
        if (ts < start_us || ts > end_us)
            f.outside_window++;
        prev_us = ts;
        f.packets++;
        inspect_frame(&f, h, d);
    }
    assert_int_equal(rc, PCAP_ERROR_BREAK);
    pcap_close(p);
    tu_remove_tree(dir);

    assert_true(f.packets > 10000);
    assert_int_equal(f.out_of_order, 0);
    assert_int_equal(f.outside_window, 0);
    assert_int_equal(f.bad_ip_checksum, 0);
    assert_true(f.transport_checked > 1000);
    assert_int_equal(f.bad_transport_checksum, 0);
    /* About 36 beats of 300 s in 3 hours, two of them skipped. */
    assert_in_range(f.beacon_syns, 30, 36);
    assert_int_equal(f.beacon_sni_hellos, f.beacon_syns);
    /* 120 MB in 1448-byte segments. */
    assert_true(f.exfil_cut_frames >= 80000);
}

static void test_demogen_same_seed_same_bytes(void **state)
{
    (void)state;
    demo_config cfg = {7, DEMO_DEFAULT_START_S, 1};
    demo_trace *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(demo_generate(&cfg, &a), 0);
    assert_int_equal(demo_generate(&cfg, &b), 0);
    cfg.seed = 8;
    assert_int_equal(demo_generate(&cfg, &c), 0);

    assert_int_equal(demo_packet_count(a), demo_packet_count(b));
    for (size_t i = 0; i < demo_packet_count(a); i++) {
        demo_packet x = demo_packet_at(a, i);
        demo_packet y = demo_packet_at(b, i);
        assert_int_equal(x.ts_us, y.ts_us);
        assert_int_equal(x.caplen, y.caplen);
        assert_memory_equal(x.data, y.data, x.caplen);
    }

    /* Another seed changes the content. */
    bool differs = demo_packet_count(a) != demo_packet_count(c);
    for (size_t i = 0; !differs && i < demo_packet_count(a); i++) {
        demo_packet x = demo_packet_at(a, i);
        demo_packet z = demo_packet_at(c, i);
        differs =
            x.ts_us != z.ts_us || x.caplen != z.caplen || memcmp(x.data, z.data, x.caplen) != 0;
    }
    assert_true(differs);

    demo_trace_destroy(&a);
    demo_trace_destroy(&b);
    demo_trace_destroy(&c);
    assert_null(a);
}

static void test_demogen_rejects_bad_arguments(void **state)
{
    (void)state;
    const char *bin = tu_env("FLOWVEIL_DEMOGEN", NULL);
    if (bin == NULL)
        fail_msg("FLOWVEIL_DEMOGEN is not set; run the test through ctest, which sets it");
    char dir[512];
    tu_make_temp_dir(dir, sizeof dir);

    static const char *const bad[] = {
        "--hours 0",           "--hours 49",     "--hours 2x", "--seed -1", "--seed abc",
        "--start 99999999999", "--frobnicate 1", "--output",   "", /* --output missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1400];
        bool with_output = i < 7;
        snprintf(cmd, sizeof cmd, "'%s' %s%s%s%s 2>/dev/null", bin, bad[i],
                 with_output ? " --output '" : "", with_output ? dir : "",
                 with_output ? "/x.pcap'" : "");
        int status = tu_run(cmd);
        if (status != 2)
            print_error("arguments \"%s\" gave exit status %d\n", bad[i], status);
        assert_int_equal(status, 2);
    }

    /* An unwritable output is a runtime failure, not a usage error. */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' --hours 1 --output '%s/missing/x.pcap' 2>/dev/null", bin, dir);
    assert_int_equal(tu_run(cmd), 1);
    tu_remove_tree(dir);
}

/* Stand-in for anonymize/: internal (10/8) addresses become pseudonym
 * endpoints, others are kept. The mixing only has to be injective. */
static fv_endpoint endpoint_of(const uint8_t ip[4])
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    if (ip[0] == 10) {
        ep.kind = FV_EP_PSEUDO_IPV4;
        for (size_t i = 0; i < 16; i++)
            ep.addr[i] = (uint8_t)(ip[i % 4] * 29u + i * 7u + 0x5a);
        snprintf(ep.zone, sizeof ep.zone, "%s", ip[1] == 2 ? "servers" : "office");
    } else {
        ep.kind = FV_EP_IPV4;
        memcpy(ep.addr, ip, 4);
        snprintf(ep.zone, sizeof ep.zone, FV_ZONE_EXTERNAL);
    }
    return ep;
}

static fv_flow_record record_of(const demo_flow *d)
{
    fv_flow_record r;
    memset(&r, 0, sizeof r);
    r.first_us = d->first_us;
    r.last_us = d->last_us;
    r.src = endpoint_of(d->client_ip);
    r.dst = endpoint_of(d->server_ip);
    r.sport = d->client_port;
    r.dport = d->server_port;
    r.proto = d->proto;
    r.end_reason = d->proto == 6 ? FV_END_FIN : FV_END_IDLE;
    if (d->proto == 6) {
        r.tcp_flags_fwd = 0x1b; /* FIN SYN PSH ACK */
        r.tcp_flags_rev = 0x1b;
    }
    r.pkts_fwd = d->pkts_fwd;
    r.pkts_rev = d->pkts_rev;
    r.bytes_fwd = d->bytes_fwd;
    r.bytes_rev = d->bytes_rev;
    return r;
}

static int compare_last(const void *a, const void *b)
{
    const fv_flow_record *x = a;
    const fv_flow_record *y = b;
    return (x->last_us > y->last_us) - (x->last_us < y->last_us);
}

typedef struct alert_list {
    size_t count;
    fv_alert_record alerts[8];
} alert_list;

static void keep_alert(void *ctx, const fv_alert_record *rec)
{
    alert_list *l = ctx;
    if (l->count < sizeof l->alerts / sizeof l->alerts[0])
        l->alerts[l->count] = *rec;
    l->count++;
}

/*
 * Feed the trace's conversations to a detector engine with the default
 * policy settings, in the order a capture emits them (by end time).
 * Evaluate every EVERY_S seconds of trace time, as a live capture does,
 * or only at the end (EVERY_S 0), as ingesting a file at once does.
 */
static void detect_trace(const demo_trace *trace, uint64_t every_s, alert_list *out)
{
    pol_detect cfg = {
        .beacon_enabled = true,
        .beacon_min_connections = 8,
        .beacon_max_jitter = 0.2,
        .beacon_min_interval_s = 10,
        .exfil_enabled = true,
        .exfil_min_bytes = 50000000,
        .exfil_ratio = 20.0,
        .exfil_min_history = 10,
    };
    size_t n = demo_flow_count(trace);
    fv_flow_record *records = calloc(n, sizeof *records);
    assert_non_null(records);
    for (size_t i = 0; i < n; i++)
        records[i] = record_of(demo_flow_at(trace, i));
    qsort(records, n, sizeof *records, compare_last);

    det_engine *e = NULL;
    assert_int_equal(det_engine_create(&cfg, &e), FV_OK);
    uint64_t step_us = every_s > 0 ? every_s * US_PER_S : UINT64_MAX / 2;
    uint64_t next_eval = records[0].last_us + step_us;
    for (size_t i = 0; i < n; i++) {
        while (records[i].last_us >= next_eval) {
            det_evaluate(e, next_eval, keep_alert, out);
            next_eval += step_us;
        }
        det_observe_flow(e, &records[i]);
    }
    det_evaluate(e, records[n - 1].last_us, keep_alert, out);
    det_engine_destroy(&e);
    free(records);
}

/* Check that GOT contains exactly the two planted alerts. */
static void check_planted_alerts(const alert_list *got)
{
    for (size_t i = 0; i < got->count && i < 8; i++)
        print_message("alert: %s\n", got->alerts[i].summary);
    assert_int_equal(got->count, 2);

    fv_endpoint beacon_src = endpoint_of(beacon_host);
    fv_endpoint exfil_src = endpoint_of(exfil_host);
    size_t beacon_at = SIZE_MAX, exfil_at = SIZE_MAX;
    for (size_t i = 0; i < got->count; i++) {
        if (got->alerts[i].detector == FV_DET_BEACON)
            beacon_at = i;
        if (got->alerts[i].detector == FV_DET_EXFIL)
            exfil_at = i;
    }
    assert_true(beacon_at < got->count);
    assert_true(exfil_at < got->count);
    const fv_alert_record *beacon = &got->alerts[beacon_at];
    const fv_alert_record *exfil = &got->alerts[exfil_at];

    assert_memory_equal(beacon->host.addr, beacon_src.addr, 16);
    assert_memory_equal(beacon->peer.addr, beacon_peer, 4);
    assert_int_equal(beacon->peer_port, 443);
    assert_in_range((uint64_t)beacon->evidence[DET_EV_BEACON_MEDIAN_INTERVAL_S], 285, 315);

    assert_memory_equal(exfil->host.addr, exfil_src.addr, 16);
    assert_memory_equal(exfil->peer.addr, exfil_peer, 4);
    assert_int_equal(exfil->peer_port, 443);
    assert_true(exfil->evidence[DET_EV_EXFIL_BYTES_OUT] >= 120e6);
    assert_true(exfil->evidence[DET_EV_EXFIL_HISTORY_FLOWS] >= 15.0);
    assert_true(exfil->evidence[DET_EV_EXFIL_BASELINE_MEDIAN_BYTES] < 10000.0);
}

static void test_demo_flows_raise_planted_alerts(void **state)
{
    (void)state;
    demo_config cfg = {1, DEMO_DEFAULT_START_S, DEMO_DEFAULT_HOURS};
    demo_trace *trace = NULL;
    assert_int_equal(demo_generate(&cfg, &trace), 0);

    /* Evaluated every five minutes: the beacon alerts once it has eight
     * beats, so it may still be under an hour old (medium). */
    alert_list periodic = {0};
    detect_trace(trace, 300, &periodic);
    check_planted_alerts(&periodic);

    /* Evaluated once at the end: the beacon spans hours (high). */
    alert_list at_end = {0};
    detect_trace(trace, 0, &at_end);
    check_planted_alerts(&at_end);
    for (size_t i = 0; i < at_end.count; i++) {
        if (at_end.alerts[i].detector == FV_DET_BEACON) {
            assert_int_equal(at_end.alerts[i].severity, FV_SEV_HIGH);
            assert_in_range(at_end.alerts[i].flow_count, 30, 36);
        }
    }
    demo_trace_destroy(&trace);
}

static void test_demo_flows_account_every_packet(void **state)
{
    (void)state;
    demo_config cfg = {3, DEMO_DEFAULT_START_S, 1};
    demo_trace *trace = NULL;
    assert_int_equal(demo_generate(&cfg, &trace), 0);

    uint64_t flow_pkts = 0, flow_wire = 0;
    for (size_t i = 0; i < demo_flow_count(trace); i++) {
        const demo_flow *f = demo_flow_at(trace, i);
        flow_pkts += f->pkts_fwd + f->pkts_rev;
        /* IP bytes plus a 14-byte Ethernet header per frame. */
        flow_wire += f->bytes_fwd + f->bytes_rev + 14 * (f->pkts_fwd + f->pkts_rev);
        assert_true(f->first_us <= f->last_us);
    }
    uint64_t wire = 0;
    for (size_t i = 0; i < demo_packet_count(trace); i++)
        wire += demo_packet_at(trace, i).wirelen;
    assert_int_equal(flow_pkts, demo_packet_count(trace));
    assert_int_equal(flow_wire, wire);
    demo_trace_destroy(&trace);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demogen_pcap_reads_back),
        cmocka_unit_test(test_demogen_same_seed_same_bytes),
        cmocka_unit_test(test_demogen_rejects_bad_arguments),
        cmocka_unit_test(test_demo_flows_raise_planted_alerts),
        cmocka_unit_test(test_demo_flows_account_every_packet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
