/*
 * The detector state of a host follows it across a key rotation: a
 * beacon whose flows span the rotation alerts once, under the host's
 * new pseudonym, and no alert raised after the rotation names the old
 * one. Drives cli/pipeline.c in process over two generated captures.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "cli.h"
#include "pipeline.h"
#include "seenhosts.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define TRAFFIC_T0_S 1796025600ull /* 2026-11-30T08:00:00Z */
#define NOW_US ((TRAFFIC_T0_S + 86400ull) * US_PER_S)
#define ROTATION_S 3600ull
#define BEAT_PERIOD_S 300ull

/* The audit helpers of cli/cmd_audit.c, which pipeline.c calls. This
 * test checks alerts, not the audit log, so they record nothing. */
int cli_audit_append(store_env *store, const char *actor, const char *action, const char *object,
                     const char *params, uint64_t result_count, uint64_t now_us)
{
    (void)store, (void)actor, (void)action, (void)object, (void)params, (void)result_count,
        (void)now_us;
    return FV_OK;
}

int cli_audit_sweep(store_env *store, const char *actor, const store_sweep_result *result,
                    uint64_t now_us)
{
    (void)store, (void)actor, (void)result, (void)now_us;
    return FV_OK;
}

static const uint8_t host_ip[4] = {10, 1, 0, 23};   /* in the "office" zone */
static const uint8_t peer_ip[4] = {203, 0, 113, 50}; /* TEST-NET-3, external */

static uint16_t ip_checksum(const uint8_t *hdr, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(hdr[i] << 8 | hdr[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Write one Ethernet/IPv4/TCP frame at TS_US with FLAGS and PAYLOAD_LEN
 * zero bytes of payload; TO_PEER picks the direction. */
static void write_tcp(pcap_dumper_t *d, uint64_t ts_us, bool to_peer, uint8_t flags,
                      uint32_t seq, uint32_t ack, size_t payload_len)
{
    uint8_t frame[14 + 20 + 20 + 64];
    memset(frame, 0, sizeof frame);
    assert_true(payload_len <= 64);

    /* Ethernet: destination and source MAC, EtherType 0x0800 (IPv4). */
    static const uint8_t mac_host[6] = {0x02, 0, 0, 0, 0, 0x17};
    static const uint8_t mac_router[6] = {0x02, 0, 0, 0, 0, 0x01};
    memcpy(frame, to_peer ? mac_router : mac_host, 6);
    memcpy(frame + 6, to_peer ? mac_host : mac_router, 6);
    frame[12] = 0x08;

    /* IPv4: version 4, IHL 5, total length, TTL 64, protocol 6 (TCP). */
    uint8_t *ip = frame + 14;
    size_t ip_len = 20 + 20 + payload_len;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(ip_len >> 8);
    ip[3] = (uint8_t)ip_len;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, to_peer ? host_ip : peer_ip, 4);
    memcpy(ip + 16, to_peer ? peer_ip : host_ip, 4);
    uint16_t csum = ip_checksum(ip, 20);
    ip[10] = (uint8_t)(csum >> 8);
    ip[11] = (uint8_t)csum;

    /* TCP: ports 50000 <-> 443, sequence and ack numbers, data offset 5. */
    uint8_t *tcp = ip + 20;
    uint16_t sport = to_peer ? 50000 : 443, dport = to_peer ? 443 : 50000;
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8);
    tcp[3] = (uint8_t)dport;
    for (int i = 0; i < 4; i++) {
        tcp[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        tcp[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    tcp[12] = 0x50;
    tcp[13] = flags;
    tcp[14] = 0xff;
    tcp[15] = 0xff;

    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(ts_us / US_PER_S);
    h.ts.tv_usec = (suseconds_t)(ts_us % US_PER_S);
    h.caplen = h.len = (bpf_u_int32)(14 + ip_len);
    pcap_dump((u_char *)d, &h, frame);
}

/* Write beats FIRST..LAST-1 of a 300 s beacon as complete TCP
 * connections (handshake, 40 bytes of data, both FINs) to PATH. */
static void write_beacon_pcap(const char *path, unsigned first, unsigned last)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    assert_non_null(dead);
    pcap_dumper_t *d = pcap_dump_open(dead, path);
    assert_non_null(d);
    for (unsigned i = first; i < last; i++) {
        uint64_t t = (TRAFFIC_T0_S + i * BEAT_PERIOD_S) * US_PER_S;
        write_tcp(d, t, true, 0x02, 1000, 0, 0);                 /* SYN */
        write_tcp(d, t + 20000, false, 0x12, 5000, 1001, 0);     /* SYN ACK */
        write_tcp(d, t + 40000, true, 0x10, 1001, 5001, 0);      /* ACK */
        write_tcp(d, t + 50000, true, 0x18, 1001, 5001, 40);     /* PSH ACK, data */
        write_tcp(d, t + 70000, false, 0x18, 5001, 1041, 40);    /* PSH ACK, data */
        write_tcp(d, t + 90000, true, 0x11, 1041, 5041, 0);      /* FIN ACK */
        write_tcp(d, t + 110000, false, 0x11, 5041, 1042, 0);    /* FIN ACK */
        write_tcp(d, t + 130000, true, 0x10, 1042, 5042, 0);     /* ACK */
    }
    pcap_dump_close(d);
    pcap_close(dead);
}

typedef struct alert_scan {
    size_t beacons;
    size_t with_old_token;
    uint8_t host[FV_PSEUDONYM_BYTES];
    char old_text[FV_ENDPOINT_TEXT_MAX];
} alert_scan;

static bool scan_alert(void *ctx, const fv_record *rec)
{
    alert_scan *s = ctx;
    const fv_alert_record *a = &rec->u.alert;
    if (a->detector == FV_DET_BEACON) {
        s->beacons++;
        memcpy(s->host, a->host.addr, sizeof s->host);
    }
    if (strstr(a->summary, s->old_text) != NULL)
        s->with_old_token++;
    return true;
}

static void test_pipeline_beacon_survives_rotation(void **state)
{
    (void)state;
    char dir[4096], policy[4200], db[4200], first[4200], second[4200], err[1024];
    tu_make_temp_dir(dir, sizeof dir);
    snprintf(policy, sizeof policy, "%s/policy.yaml", dir);
    snprintf(db, sizeof db, "%s/db", dir);
    snprintf(first, sizeof first, "%s/before.pcap", dir);
    snprintf(second, sizeof second, "%s/after.pcap", dir);

    static const char policy_text[] =
        "version: 1\n"
        "zones:\n"
        "  - name: office\n"
        "    networks: [10.0.0.0/8]\n"
        "pseudonymization:\n"
        "  rotation: 1h\n"
        /* Ten beats span 45 minutes, under the default minimum of 1h, and
         * are fewer than the default 12 connections. */
        "detect:\n"
        "  beacon: {min_duration: 30m, min_connections: 8}\n";
    tu_write_file(policy, policy_text, strlen(policy_text));
    /* Five beats before the rotation and five after: neither half alone
     * reaches the default minimum of 8 connections. */
    write_beacon_pcap(first, 0, 5);
    write_beacon_pcap(second, 5, 10);

    fv_pipeline p;
    int rc = fv_pipeline_open(&p, policy, db, NOW_US, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("pipeline open failed: %s", err);
    volatile sig_atomic_t stop = 0;

    assert_int_equal(cap_read_file(p.capture, first, NULL, &stop, err, sizeof err), FV_OK);
    cap_engine_flush(p.capture);
    uint8_t old_pseudonym[FV_PSEUDONYM_BYTES];
    anon_pseudonym(p.anon, ANON_TYPE_IPV4, host_ip, 4, old_pseudonym);
    assert_int_equal(fv_pipeline_tick(&p, NOW_US, true), FV_OK);

    /* Move the clock past the rotation period: the next tick rotates. */
    p.fixed_now_us = NOW_US + ROTATION_S * US_PER_S;
    assert_int_equal(fv_pipeline_tick(&p, p.fixed_now_us, false), FV_OK);
    uint8_t new_pseudonym[FV_PSEUDONYM_BYTES];
    anon_pseudonym(p.anon, ANON_TYPE_IPV4, host_ip, 4, new_pseudonym);
    assert_memory_not_equal(old_pseudonym, new_pseudonym, sizeof old_pseudonym);
    assert_int_equal(fv_seenhosts_count(p.seen_hosts), 0);

    assert_int_equal(cap_read_file(p.capture, second, NULL, &stop, err, sizeof err), FV_OK);
    assert_int_equal(fv_pipeline_close(&p), FV_OK);

    store_env *store = NULL;
    assert_int_equal(store_open(db, STORE_RDONLY, &store, err, sizeof err), FV_OK);
    alert_scan scan;
    memset(&scan, 0, sizeof scan);
    fv_endpoint old_ep = {.kind = FV_EP_PSEUDO_IPV4};
    memcpy(old_ep.addr, old_pseudonym, sizeof old_ep.addr);
    fv_endpoint_format(&old_ep, scan.old_text);
    store_query q = {.cls = FV_CLASS_ALERT, .limit = 1000};
    assert_int_equal(store_query_run(store, &q, p.fixed_now_us, scan_alert, &scan, NULL), FV_OK);
    store_close(&store);

    assert_int_equal(scan.beacons, 1);
    assert_memory_equal(scan.host, new_pseudonym, sizeof scan.host);
    assert_int_equal(scan.with_old_token, 0);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_beacon_survives_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
