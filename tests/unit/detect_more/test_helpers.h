/*
 * test_helpers.h: record builders and an alert collector shared by the
 * detect_more tests, which drive det_module instances directly.
 */
#ifndef FV_TEST_DETECT_MORE_HELPERS_H
#define FV_TEST_DETECT_MORE_HELPERS_H

#include <stdio.h>
#include <string.h>

#include "det_internal.h"
#include "detect.h"

#define TH_ALERTS_MAX 256

typedef struct th_alerts {
    size_t count;
    fv_alert_record alerts[TH_ALERTS_MAX];
} th_alerts;

static inline void th_collect(void *ctx, const fv_alert_record *rec)
{
    th_alerts *a = ctx;
    if (a->count < TH_ALERTS_MAX)
        a->alerts[a->count++] = *rec;
}

/* Count collected alerts of DETECTOR. */
static inline size_t th_count(const th_alerts *a, int detector)
{
    size_t n = 0;
    for (size_t i = 0; i < a->count; i++)
        n += a->alerts[i].detector == detector;
    return n;
}

/* Pseudonymized internal host number N in zone ZONE. */
static inline fv_endpoint th_internal(unsigned n, const char *zone)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    ep.addr[0] = 0xaa;
    ep.addr[14] = (uint8_t)(n >> 8);
    ep.addr[15] = (uint8_t)n;
    snprintf(ep.zone, sizeof ep.zone, "%s", zone);
    return ep;
}

/* Kept external IPv4 address 198.51.A.B (documentation range). */
static inline fv_endpoint th_external(unsigned a, unsigned b)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_IPV4;
    ep.addr[0] = 198;
    ep.addr[1] = 51;
    ep.addr[2] = (uint8_t)a;
    ep.addr[3] = (uint8_t)b;
    snprintf(ep.zone, sizeof ep.zone, "%s", FV_ZONE_EXTERNAL);
    return ep;
}

#define TH_TCP_SYN 0x02
#define TH_TCP_RST 0x04
#define TH_TCP_ACK 0x10
#define TH_TCP_PSH 0x08
#define TH_TCP_FIN 0x01

/* A TCP connection attempt at TS_S seconds: answered with a SYN-ACK and
 * data when OK, else refused with a reset. */
static inline fv_flow_record th_tcp(const fv_endpoint *src, const fv_endpoint *dst, uint16_t dport,
                                    uint64_t ts_s, int ok)
{
    fv_flow_record f;
    memset(&f, 0, sizeof f);
    f.first_us = ts_s * 1000000u;
    f.last_us = f.first_us + 200000u;
    f.src = *src;
    f.dst = *dst;
    f.sport = (uint16_t)(40000u + (ts_s % 20000u));
    f.dport = dport;
    f.proto = 6;
    f.initiator = FV_INIT_SYN;
    if (ok) {
        f.tcp_flags_fwd = TH_TCP_SYN | TH_TCP_ACK | TH_TCP_PSH | TH_TCP_FIN;
        f.tcp_flags_rev = TH_TCP_SYN | TH_TCP_ACK | TH_TCP_PSH | TH_TCP_FIN;
        f.pkts_fwd = 6;
        f.pkts_rev = 5;
        f.bytes_fwd = 800;
        f.bytes_rev = 4000;
        f.end_reason = FV_END_FIN;
    } else {
        f.tcp_flags_fwd = TH_TCP_SYN;
        f.tcp_flags_rev = TH_TCP_RST | TH_TCP_ACK;
        f.pkts_fwd = 1;
        f.pkts_rev = 1;
        f.bytes_fwd = 60;
        f.bytes_rev = 40;
        f.end_reason = FV_END_RST;
    }
    return f;
}

/* A DNS message of CLIENT at TS_S for NAME with QTYPE; a response when
 * RCODE >= 0. */
static inline fv_dns_record th_dns(const fv_endpoint *client, uint64_t ts_s, const char *name,
                                   uint16_t qtype, int rcode)
{
    fv_dns_record d;
    memset(&d, 0, sizeof d);
    d.ts_us = ts_s * 1000000u;
    d.client = *client;
    d.server = th_external(0, 53);
    d.client_port = 50000;
    d.server_port = 53;
    d.transport = 17;
    d.protocol = FV_DNS_PROTO_DNS;
    d.qtype = qtype;
    d.qclass = 1;
    d.is_response = rcode >= 0;
    d.rcode = rcode >= 0 ? (uint8_t)rcode : 0;
    snprintf(d.qname, sizeof d.qname, "%s", name);
    return d;
}

#endif /* FV_TEST_DETECT_MORE_HELPERS_H */
