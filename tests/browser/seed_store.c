/*
 * seed_store.c: fill a store directory with a small synthetic data set
 * for the dashboard browser test: 200 flows over two days, DNS, TLS and
 * HTTP records, alerts from both detectors, and capture counters with
 * kernel, interface, worker queue and export drops.
 *
 * usage: flowveil-seed-store DIR NOW_SECONDS
 * Every record is stored at NOW_SECONDS; traffic times lie before it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define US_PER_S 1000000ull
#define HOUR_US (3600ull * US_PER_S)

/* A pseudonymized office host; the pseudonym bytes are arbitrary. */
static void internal_endpoint(fv_endpoint *ep, unsigned seed)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_PSEUDO_IPV4;
    for (unsigned i = 0; i < FV_PSEUDONYM_BYTES; i++)
        ep->addr[i] = (uint8_t)(seed * 31u + i * 7u);
    snprintf(ep->zone, sizeof ep->zone, "office");
}

/* A kept external address in TEST-NET-3 (203.0.113.0/24). */
static void external_endpoint(fv_endpoint *ep, unsigned host)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_IPV4;
    ep->addr[0] = 203;
    ep->addr[1] = 0;
    ep->addr[2] = 113;
    ep->addr[3] = (uint8_t)(1u + host % 250u);
    snprintf(ep->zone, sizeof ep->zone, FV_ZONE_EXTERNAL);
}

static int put_all(store_env *st, uint64_t now_us)
{
    uint64_t start_us = now_us - 48 * HOUR_US;
    int rc = FV_OK;

    for (unsigned i = 0; i < 200 && rc == FV_OK; i++) {
        fv_flow_record f;

        memset(&f, 0, sizeof f);
        f.first_us = start_us + (uint64_t)i * (48 * HOUR_US / 200);
        f.last_us = f.first_us + 2 * US_PER_S;
        internal_endpoint(&f.src, i % 5);
        external_endpoint(&f.dst, i % 7);
        f.sport = (uint16_t)(40000 + i);
        f.dport = i % 3 == 0 ? 53 : 443;
        f.proto = i % 3 == 0 ? 17 : 6;
        f.end_reason = i % 3 == 0 ? FV_END_IDLE : FV_END_FIN;
        f.pkts_fwd = 5 + i % 11;
        f.pkts_rev = 4 + i % 13;
        f.bytes_fwd = 400 + (uint64_t)(i % 17) * 900;
        f.bytes_rev = 3000 + (uint64_t)(i % 23) * 4000;
        rc = store_put(st, FV_CLASS_FLOW, &f, now_us);
    }
    for (unsigned i = 0; i < 30 && rc == FV_OK; i++) {
        fv_dns_record d;

        memset(&d, 0, sizeof d);
        d.ts_us = start_us + (uint64_t)i * HOUR_US;
        internal_endpoint(&d.client, i % 5);
        external_endpoint(&d.server, 53);
        d.client_port = (uint16_t)(50000 + i);
        d.server_port = 53;
        d.transport = 17;
        d.is_response = (uint8_t)(i % 2);
        d.txid = (uint16_t)(0x2000 + i);
        d.qtype = 1;
        d.qclass = 1;
        d.answer_count = d.is_response ? 1 : 0;
        snprintf(d.qname, sizeof d.qname, "host%u.example.org", i % 4);
        rc = store_put(st, FV_CLASS_DNS, &d, now_us);
    }
    for (unsigned i = 0; i < 12 && rc == FV_OK; i++) {
        fv_tls_record t;

        memset(&t, 0, sizeof t);
        t.ts_us = start_us + (uint64_t)i * 3 * HOUR_US;
        internal_endpoint(&t.client, i % 5);
        external_endpoint(&t.server, i);
        t.client_port = (uint16_t)(51000 + i);
        t.server_port = 443;
        t.version = 0x0303;
        snprintf(t.sni, sizeof t.sni, "www.example.com");
        rc = store_put(st, FV_CLASS_TLS, &t, now_us);
    }
    for (unsigned i = 0; i < 6 && rc == FV_OK; i++) {
        fv_http_record h;

        memset(&h, 0, sizeof h);
        h.ts_us = start_us + (uint64_t)i * 5 * HOUR_US;
        internal_endpoint(&h.client, i % 5);
        external_endpoint(&h.server, i);
        h.client_port = (uint16_t)(52000 + i);
        h.server_port = 80;
        snprintf(h.method, sizeof h.method, i % 2 ? "POST" : "GET");
        snprintf(h.host, sizeof h.host, "example.net");
        rc = store_put(st, FV_CLASS_HTTP, &h, now_us);
    }
    for (unsigned i = 0; i < 4 && rc == FV_OK; i++) {
        fv_alert_record a;

        memset(&a, 0, sizeof a);
        a.ts_us = start_us + (uint64_t)(10 + i * 8) * HOUR_US;
        a.first_us = a.ts_us - 6 * HOUR_US;
        a.last_us = a.ts_us;
        a.detector = i % 2 ? FV_DET_EXFIL : FV_DET_BEACON;
        a.severity = (uint8_t)(FV_SEV_LOW + i % 4);
        a.score = 0.5 + 0.1 * (double)i;
        internal_endpoint(&a.host, i);
        external_endpoint(&a.peer, 100 + i);
        a.peer_port = 443;
        a.proto = 6;
        a.flow_count = 20 + i;
        a.evidence_count = 2;
        a.evidence[0] = 60.0 + i;
        a.evidence[1] = 0.05;
        snprintf(a.summary, sizeof a.summary, "synthetic %s alert number %u",
                 a.detector == FV_DET_BEACON ? "beacon" : "exfil", i + 1);
        rc = store_put(st, FV_CLASS_ALERT, &a, now_us);
    }
    return rc;
}

/*
 * Capture counters as a live capture on two interfaces would leave them.
 * eth1 lost 1500 packets in the kernel and 500 in the driver of 60000
 * received. eth2 lost none, so it has no drop counters, because the
 * store keeps no zero counter. The pcap_ sums are those of the
 * interfaces: 2000 of 100000 received packets (2 %) were dropped. The
 * browser test checks these numbers on the Capture page.
 */
static int put_counters(store_env *st)
{
    static const char *const names[] = {
        "packets", "bytes", "pcap_received", "pcap_dropped", "pcap_if_dropped",
        "iface_eth1_received", "iface_eth1_kernel_dropped", "iface_eth1_interface_dropped",
        "iface_eth2_received", "queue_dropped_records", "flows_created", "flows_emitted",
        "dns_messages", "dns_bad_pointer", "export_sent", "export_dropped_queue_full",
    };
    static const uint64_t values[] = {
        98000, 73400000, 100000, 1500, 500,
        60000, 1500, 500,
        40000, 37, 200, 200,
        30, 2, 190, 10,
    };
    _Static_assert(sizeof names / sizeof names[0] == sizeof values / sizeof values[0],
                   "every counter name needs a value");
    return store_capture_counters_add(st, names, values, sizeof values / sizeof values[0]);
}

int main(int argc, char **argv)
{
    store_env *st = NULL;
    char err[256];
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: flowveil-seed-store DIR NOW_SECONDS\n");
        return 2;
    }
    uint64_t now_us = strtoull(argv[2], NULL, 10) * US_PER_S;

    rc = store_open(argv[1], 0, &st, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil-seed-store: %s\n", err);
        return 1;
    }
    rc = store_set_retention(st, FV_CLASS_FLOW, 30 * 86400);
    if (rc == FV_OK)
        rc = store_set_retention(st, FV_CLASS_ALERT, 90 * 86400);
    if (rc == FV_OK)
        rc = put_all(st, now_us);
    if (rc == FV_OK)
        rc = store_commit(st);
    if (rc == FV_OK)
        rc = put_counters(st);
    store_close(&st);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil-seed-store: writing records failed: %s\n", fv_strerror(rc));
        return 1;
    }
    return 0;
}
