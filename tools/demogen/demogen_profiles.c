/*
 * demogen_profiles.c: the "mixed", "synflood", "scan16", "fragments" and
 * "dnsnames" benchmark traces (see demogen_profiles.h). demo_wire.c
 * writes the frames.
 */
#include "demogen_profiles.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MIXED_HOSTS 2000u
#define MIXED_SPAN_S 600u
#define MIXED_SERVERS 20000u /* distinct server addresses in 198.18.0.0/15 */

#define SYNFLOOD_RATE_PER_S 50000u
#define SYNFLOOD_SCANNERS 16u

/* Packets (scan16), datagrams (fragments) or DNS exchanges (dnsnames)
 * per second of trace time in the memory-bound profiles. */
#define STRESS_RATE_PER_S 20000u
#define DNSNAMES_HOSTS 500u
#define FRAGMENT_BODY 1480u /* one full Ethernet-sized fragment body */

/* Shares of the mixed trace's conversations, in per mille. Together with
 * the packets each kind sends (DNS 2, UDP 1 or 2, TLS about 19, HTTP
 * about 12, QUIC about 14, bulk about 700) they give about 7.4 packets
 * per conversation, so 270,000 conversations make about 2 million
 * packets. */
#define SHARE_DNS 450u
#define SHARE_UDP 220u
#define SHARE_TLS 180u
#define SHARE_HTTP 80u
#define SHARE_QUIC 69u
/* The remaining 1 per mille is bulk TCP. */

int demo_profile_parse(const char *name, demo_profile *out)
{
    if (strcmp(name, "office") == 0)
        *out = DEMO_PROFILE_OFFICE;
    else if (strcmp(name, "mixed") == 0)
        *out = DEMO_PROFILE_MIXED;
    else if (strcmp(name, "synflood") == 0)
        *out = DEMO_PROFILE_SYNFLOOD;
    else if (strcmp(name, "scan16") == 0)
        *out = DEMO_PROFILE_SCAN16;
    else if (strcmp(name, "fragments") == 0)
        *out = DEMO_PROFILE_FRAGMENTS;
    else if (strcmp(name, "dnsnames") == 0)
        *out = DEMO_PROFILE_DNSNAMES;
    else
        return -1;
    return 0;
}

const char *demo_profile_name(demo_profile profile)
{
    static const char *const names[] = {"office", "mixed", "synflood", "scan16", "fragments",
                                        "dnsnames"};
    return (size_t)profile < sizeof names / sizeof names[0] ? names[profile] : "unknown";
}

uint64_t demo_profile_default_flows(demo_profile profile)
{
    switch (profile) {
    case DEMO_PROFILE_MIXED:
        return DEMO_MIXED_DEFAULT_FLOWS;
    case DEMO_PROFILE_SYNFLOOD:
        return DEMO_SYNFLOOD_DEFAULT_FLOWS;
    case DEMO_PROFILE_SCAN16:
        return DEMO_SCAN16_DEFAULT_FLOWS;
    case DEMO_PROFILE_FRAGMENTS:
        return DEMO_FRAGMENTS_DEFAULT_FLOWS;
    case DEMO_PROFILE_DNSNAMES:
        return DEMO_DNSNAMES_DEFAULT_FLOWS;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------------- */
/* Mixed traffic                                                           */
/* ---------------------------------------------------------------------- */

/* Server I of the pool, scattered over 198.18.0.0/15 by a multiplicative
 * hash so that servers do not cluster in a few /24 networks. */
static void server_ip(uint32_t i, uint8_t out[4])
{
    uint32_t x = (i * 2654435761u) % 131072u;
    out[0] = 198;
    out[1] = (uint8_t)(18 + (x >> 16));
    out[2] = (uint8_t)(x >> 8);
    out[3] = (uint8_t)(x == 0 ? 1 : x);
}

/* A server picked with Zipf-like popularity (probability about 1/rank),
 * as a few large services receive most connections: the rank is
 * MIXED_SERVERS^u for uniform u, the inverse of the continuous 1/x
 * distribution over [1, MIXED_SERVERS]. */
static uint32_t pick_server(demo_rng *r)
{
    double rank = pow((double)MIXED_SERVERS, rng_unit(r));
    uint32_t i = (uint32_t)rank;
    return (i >= 1u && i <= MIXED_SERVERS ? i : 1u) - 1u;
}

/* The DNS name of server I, "svcI.bench.example.net". */
static void server_name(uint32_t i, char *out, size_t len)
{
    snprintf(out, len, "svc%u.bench.example.net", (unsigned)i);
}

static void mixed_dns(demo_trace *g, demo_host *h, uint64_t t)
{
    demo_rng *r = &g->rng;
    uint32_t s = pick_server(r);
    char name[64];
    server_name(s, name, sizeof name);
    demo_site site = {name, {0}, SITE_HTTPS, (s % 3u) == 0};
    server_ip(s, site.ip);
    double u = rng_unit(r);
    if (u < 0.05)
        (void)dns_exchange(g, h, t, name, DNS_TYPE_A, NULL, 0); /* NXDOMAIN */
    else
        (void)dns_exchange(g, h, t, name, u < 0.75 ? DNS_TYPE_A : DNS_TYPE_AAAA, &site,
                           s % 256u);
}

/* NTP (client request and server reply, 48 bytes each) or one syslog
 * datagram to an internal collector. */
static void mixed_small_udp(demo_trace *g, demo_host *h, uint64_t t)
{
    demo_rng *r = &g->rng;
    demo_conv c;
    uint8_t msg[160];
    if (rng_unit(r) < 0.6) {
        uint8_t ip[4];
        server_ip(MIXED_SERVERS + (uint32_t)rng_range(r, 0, 7), ip);
        conv_open(&c, g, h, ip, 123, 17, DEMO_ROLE_BACKGROUND, 0);
        memset(msg, 0, 48);
        msg[0] = 0x23; /* leap 0, version 4, mode 3 (client) */
        rng_fill(r, msg + 40, 8);
        emit_udp(&c, true, t, msg, 48);
        msg[0] = 0x24; /* mode 4 (server) */
        msg[1] = 2;    /* stratum */
        rng_fill(r, msg + 16, 32);
        emit_udp(&c, false, t + rng_range(r, 5000, 60000), msg, 48);
    } else {
        static const uint8_t collector[4] = {10, 2, 0, 14};
        conv_open(&c, g, h, collector, 514, 17, DEMO_ROLE_BACKGROUND, 0);
        int n = snprintf((char *)msg, sizeof msg,
                         "<134>1 - host%u app - - - session %u closed after %u ms",
                         (unsigned)h->ip[3], (unsigned)rng_range(r, 1, 99999),
                         (unsigned)rng_range(r, 1, 5000));
        emit_udp(&c, true, t, msg, (size_t)n);
    }
}

static void mixed_tls(demo_trace *g, demo_host *h, uint64_t t)
{
    demo_rng *r = &g->rng;
    uint32_t s = pick_server(r);
    char name[64];
    server_name(s, name, sizeof name);
    uint8_t ip[4];
    server_ip(s, ip);
    size_t body = (size_t)rng_lognormal(r, 2500.0, 0.9);
    if (body > 20000)
        body = 20000;
    tls_plan plan = {name, (size_t)rng_range(r, 200, 800), body, false, false, 0.0,
                     DEMO_ROLE_BACKGROUND};
    (void)tls_session(g, h, ip, t, &plan);
}

static void mixed_http(demo_trace *g, demo_host *h, uint64_t t)
{
    demo_rng *r = &g->rng;
    static const char *const paths[] = {"/", "/index.html", "/api/v2/items", "/img/logo.png",
                                        "/static/site.css"};
    uint32_t s = pick_server(r);
    char name[64];
    server_name(s, name, sizeof name);
    demo_site site = {name, {0}, SITE_HTTP, false};
    server_ip(s, site.ip);
    size_t body = (size_t)rng_lognormal(r, 3000.0, 0.9);
    if (body > 20000)
        body = 20000;
    (void)http_session(g, h, &site, paths[rng_range(r, 0, 4)], body, false,
                       DEMO_ROLE_BACKGROUND, t);
}

/* QUIC version 1 long header (RFC 9000, 17.2) with an 8-byte DCID and
 * random protected bytes up to LEN. */
static size_t quic_long_header(demo_rng *r, uint8_t type_bits, const uint8_t dcid[8], uint8_t *out,
                               size_t len)
{
    out[0] = (uint8_t)(0xc0 | type_bits | 0x03); /* long header, fixed bit, 4-byte PN */
    out[1] = 0;
    out[2] = 0;
    out[3] = 0;
    out[4] = 1; /* version 1 */
    out[5] = 8; /* DCID length */
    memcpy(out + 6, dcid, 8);
    out[14] = 0; /* SCID length */
    size_t off = 15;
    if (type_bits == 0x00)
        out[off++] = 0; /* Initial: token length 0 */
    size_t rest = len - off - 2;
    out[off] = (uint8_t)(0x40 | (rest >> 8)); /* 2-byte varint length */
    out[off + 1] = (uint8_t)rest;
    off += 2;
    rng_fill(r, out + off, len - off);
    return len;
}

static void mixed_quic(demo_trace *g, demo_host *h, uint64_t t)
{
    demo_rng *r = &g->rng;
    demo_conv c;
    uint8_t msg[1400];
    uint8_t dcid[8];
    uint8_t ip[4];
    server_ip(pick_server(r), ip);
    uint32_t rtt = (uint32_t)rng_range(r, 8000, 60000);
    conv_open(&c, g, h, ip, 443, 17, DEMO_ROLE_BACKGROUND, rtt);
    rng_fill(r, dcid, sizeof dcid);

    /* Client Initial padded to 1200 bytes, server Initial and Handshake. */
    emit_udp(&c, true, t, msg, quic_long_header(r, 0x00, dcid, msg, 1200));
    t += rtt;
    emit_udp(&c, false, t, msg, quic_long_header(r, 0x00, dcid, msg, 1200));
    t += 200;
    emit_udp(&c, false, t, msg, quic_long_header(r, 0x20, dcid, msg, 1100));

    /* 1-RTT packets (short header): a request, a response of a few full
     * packets, acknowledgements. */
    unsigned response = (unsigned)rng_range(r, 3, 12);
    for (unsigned i = 0; i < response + 2u; i++) {
        bool from_client = i == 0 || i % 4u == 3u;
        size_t n = from_client ? (size_t)rng_range(r, 40, 300) : (size_t)rng_range(r, 900, 1350);
        msg[0] = 0x43; /* short header, fixed bit, 4-byte PN */
        memcpy(msg + 1, dcid, 8);
        rng_fill(r, msg + 9, n - 9);
        t += from_client ? rng_range(r, 100, 2000) : rng_range(r, 50, 400);
        emit_udp(&c, from_client, t, msg, n);
    }
}

/* A file copy over SMB (port 445) to an internal file server: a few
 * hundred full segments, stored cut. */
static void mixed_bulk(demo_trace *g, demo_host *h, uint64_t t)
{
    demo_rng *r = &g->rng;
    static const uint8_t file_server[4] = {10, 2, 0, 30};
    demo_conv c;
    conv_open(&c, g, h, file_server, 445, 6, DEMO_ROLE_DOWNLOAD, (uint32_t)rng_range(r, 200, 900));
    tcp_handshake(&c, &t);
    size_t bytes = (size_t)rng_range(r, 300000, 900000);
    bool upload = rng_unit(r) < 0.3;
    tcp_stream(&c, upload, NULL, bytes, true, rng_uniform(r, 20e6, 80e6), 2, &t);
    tcp_close(&c, true, &t);
}

static void init_mixed_hosts(demo_trace *g)
{
    for (size_t i = 0; i < g->host_count; i++) {
        demo_host *h = &g->hosts[i];
        /* 250 hosts per /24 from 10.1.1.1 upward; .0 and .251-.255 stay free. */
        const uint8_t ip[4] = {10, 1, (uint8_t)(1u + i / 250u), (uint8_t)(1u + i % 250u)};
        memcpy(h->ip, ip, 4);
        const uint8_t mac[6] = {0x02, 0x1b, 0x00, 0x00, (uint8_t)(i >> 8), (uint8_t)i};
        memcpy(h->mac, mac, 6);
        h->ip_id = (uint16_t)rng_next(&g->rng);
        h->next_port = (uint16_t)rng_range(&g->rng, 32768, 60000);
    }
}

static void generate_mixed(demo_trace *g, uint64_t flows)
{
    demo_rng *r = &g->rng;
    uint64_t span_us = g->end_us - g->start_us - 30u * US_PER_S;
    init_mixed_hosts(g);
    for (uint64_t i = 0; i < flows && !g->failed; i++) {
        /* A few hosts are busier than the rest: squaring a uniform
         * number favours the low indexes. */
        double u = rng_unit(r);
        demo_host *h = &g->hosts[(size_t)(u * u * (double)g->host_count)];
        uint64_t t = g->start_us + (uint64_t)(rng_unit(r) * (double)span_us);
        uint64_t kind = rng_range(r, 0, 999);
        if (kind < SHARE_DNS)
            mixed_dns(g, h, t);
        else if (kind < SHARE_DNS + SHARE_UDP)
            mixed_small_udp(g, h, t);
        else if (kind < SHARE_DNS + SHARE_UDP + SHARE_TLS)
            mixed_tls(g, h, t);
        else if (kind < SHARE_DNS + SHARE_UDP + SHARE_TLS + SHARE_HTTP)
            mixed_http(g, h, t);
        else if (kind < SHARE_DNS + SHARE_UDP + SHARE_TLS + SHARE_HTTP + SHARE_QUIC)
            mixed_quic(g, h, t);
        else
            mixed_bulk(g, h, t);
    }
}

/* ---------------------------------------------------------------------- */
/* SYN flood and scan                                                      */
/* ---------------------------------------------------------------------- */

/* One SYN from SRC:random port to DST:PORT at T, its own flow. The
 * trace's single host slot is reused as the (external) client. */
static void emit_syn(demo_trace *g, const uint8_t src[4], const uint8_t dst[4], uint16_t port,
                     uint64_t t)
{
    demo_host *h = &g->hosts[0];
    demo_conv c;
    memcpy(h->ip, src, 4);
    h->next_port = (uint16_t)rng_range(&g->rng, 1024, 60990);
    conv_open(&c, g, h, dst, port, 6, DEMO_ROLE_BACKGROUND, 0);
    emit_tcp(&c, true, t, TCP_SYN, NULL, 0, false);
}

static void generate_synflood(demo_trace *g, uint64_t syns)
{
    demo_rng *r = &g->rng;
    static const uint8_t victim[4] = {10, 1, 0, 80};
    static const uint16_t scan_ports[5] = {22, 80, 443, 445, 3389};
    const uint8_t router_mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe};
    demo_host *h = &g->hosts[0];
    memcpy(h->mac, router_mac, 6);
    h->ip_id = (uint16_t)rng_next(r);

    uint64_t step_us = US_PER_S / SYNFLOOD_RATE_PER_S;
    uint64_t scan_index = 0;
    for (uint64_t i = 0; i < syns && !g->failed; i++) {
        uint64_t t = g->start_us + i * step_us + rng_range(r, 0, step_us - 1);
        uint8_t src[4];
        if (i % 4u != 3u) {
            /* Spoofed flood: a random source in 198.18.0.0/15. */
            uint32_t x = (uint32_t)rng_range(r, 1, 131071);
            const uint8_t a[4] = {198, (uint8_t)(18 + (x >> 16)), (uint8_t)(x >> 8), (uint8_t)x};
            memcpy(src, a, 4);
            emit_syn(g, src, victim, 80, t);
        } else {
            /* Scan: each scanner walks 10.1.0.0/16 port by port. */
            uint32_t scanner = (uint32_t)(scan_index % SYNFLOOD_SCANNERS);
            uint64_t step = scan_index / SYNFLOOD_SCANNERS;
            uint32_t target = (uint32_t)((step * 7919u + scanner * 4099u) % 65536u);
            uint16_t port = scan_ports[(step / 65536u + scanner) % 5u];
            const uint8_t a[4] = {203, 0, 113, (uint8_t)(100 + scanner)};
            const uint8_t dst[4] = {10, 1, (uint8_t)(target >> 8), (uint8_t)target};
            memcpy(src, a, 4);
            emit_syn(g, src, dst, port, t);
            scan_index++;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Memory-bound profiles: a /16 scan, unfinished fragments, DNS names      */
/* ---------------------------------------------------------------------- */

/* Write SYNS unanswered SYNs from one scanner (203.0.113.7) to
 * 10.1.0.0/16: every address on one port before the next of eight ports,
 * in a scrambled address order as scanners use. */
static void generate_scan16(demo_trace *g, uint64_t syns)
{
    static const uint16_t ports[8] = {22, 23, 80, 443, 445, 3389, 8080, 8443};
    static const uint8_t scanner[4] = {203, 0, 113, 7};
    const uint8_t router_mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0xfe};
    demo_host *h = &g->hosts[0];
    memcpy(h->mac, router_mac, 6);
    h->ip_id = (uint16_t)rng_next(&g->rng);

    uint64_t step_us = US_PER_S / STRESS_RATE_PER_S;
    for (uint64_t i = 0; i < syns && !g->failed; i++) {
        /* 40503 is odd, so i * 40503 mod 65536 visits every address once. */
        uint32_t target = (uint32_t)((i * 40503u) % 65536u);
        const uint8_t dst[4] = {10, 1, (uint8_t)(target >> 8), (uint8_t)target};
        emit_syn(g, scanner, dst, ports[(i / 65536u) % 8u], g->start_us + i * step_us);
    }
}

/*
 * Write DATAGRAMS UDP datagrams of 4,000 bytes from random sources in
 * 198.18.0.0/15 to hosts in 10.1.0.0/16, none of which completes. Half
 * send only their first fragment and a quarter the first and the third,
 * leaving a gap. A quarter send only the second, so their first fragment
 * never comes and a reader cannot learn their ports.
 */
static void generate_fragments(demo_trace *g, uint64_t datagrams)
{
    static const uint8_t host_mac[6] = {0x02, 0x1b, 0x00, 0x00, 0x00, 0x01};
    uint8_t body[FRAGMENT_BODY];
    uint64_t step_us = US_PER_S / STRESS_RATE_PER_S;

    for (uint64_t i = 0; i < datagrams && !g->failed; i++) {
        uint32_t x = (uint32_t)rng_range(&g->rng, 1, 131071);
        const uint8_t src[4] = {198, (uint8_t)(18 + (x >> 16)), (uint8_t)(x >> 8), (uint8_t)x};
        uint32_t y = (uint32_t)rng_range(&g->rng, 1, 65534);
        const uint8_t dst[4] = {10, 1, (uint8_t)(y >> 8), (uint8_t)y};
        uint16_t id = (uint16_t)i;
        uint64_t t = g->start_us + i * step_us;
        unsigned kind = (unsigned)(i % 4u);

        rng_fill(&g->rng, body, sizeof body);
        /* UDP header of the whole datagram: ports 40000 -> 5004, length
         * 4000, checksum 0 (none). */
        const uint8_t udp[8] = {0x9c, 0x40, 0x13, 0x8c, 0x0f, 0xa0, 0x00, 0x00};
        memcpy(body, udp, sizeof udp);
        if (kind != 3u)
            emit_ipv4_fragment(g, t, host_mac, src, dst, 17, id, 0, true, body, sizeof body);
        if (kind == 2u)
            emit_ipv4_fragment(g, t + 1, host_mac, src, dst, 17, id, 2u * FRAGMENT_BODY, true,
                               body, sizeof body);
        if (kind == 3u)
            emit_ipv4_fragment(g, t, host_mac, src, dst, 17, id, FRAGMENT_BODY, true, body,
                               sizeof body);
    }
}

/* Write QUERIES DNS lookups from DNSNAMES_HOSTS internal hosts to the
 * resolver, each of a name never asked before, as a DGA or a DNS tunnel
 * produces them. Every response is NXDOMAIN. */
static void generate_dnsnames(demo_trace *g, uint64_t queries)
{
    uint64_t step_us = US_PER_S / STRESS_RATE_PER_S;

    init_mixed_hosts(g);
    for (uint64_t i = 0; i < queries && !g->failed; i++) {
        char name[64];
        demo_host *h = &g->hosts[i % g->host_count];
        snprintf(name, sizeof name, "n%08llx%06llx.example.net", (unsigned long long)i,
                 (unsigned long long)rng_range(&g->rng, 0, 0xffffff));
        (void)dns_exchange(g, h, g->start_us + i * step_us, name, DNS_TYPE_A, NULL, 0);
    }
}

/* Seconds of trace time PROFILE needs for FLOWS, with margin. */
static uint64_t profile_span_s(demo_profile profile, uint64_t flows)
{
    if (profile == DEMO_PROFILE_MIXED)
        return MIXED_SPAN_S + 60u;
    if (profile == DEMO_PROFILE_SYNFLOOD)
        return flows / SYNFLOOD_RATE_PER_S + 2u;
    return flows / STRESS_RATE_PER_S + 2u;
}

int demo_generate_profile(const demo_profile_config *config, demo_trace **out)
{
    const uint64_t last_s = 253402300799ull; /* 9999-12-31T23:59:59Z */
    if (config == NULL || out == NULL || config->flows < 1 ||
        config->flows > DEMO_PROFILE_MAX_FLOWS ||
        config->profile == DEMO_PROFILE_OFFICE || config->profile > DEMO_PROFILE_DNSNAMES) {
        errno = EINVAL;
        return -1;
    }
    uint64_t span_s = profile_span_s(config->profile, config->flows);
    if (config->start_s > last_s - span_s) {
        errno = EINVAL;
        return -1;
    }
    *out = NULL;

    uint64_t start_us = config->start_s * US_PER_S;
    uint64_t end_us = start_us + span_s * US_PER_S;
    size_t hosts = config->profile == DEMO_PROFILE_MIXED      ? MIXED_HOSTS
                   : config->profile == DEMO_PROFILE_DNSNAMES ? DNSNAMES_HOSTS
                                                              : 1u;
    demo_trace *g = demo_trace_new(config->seed, start_us, end_us, hosts);
    if (g == NULL)
        return -1;
    switch (config->profile) {
    case DEMO_PROFILE_MIXED:
        generate_mixed(g, config->flows);
        break;
    case DEMO_PROFILE_SYNFLOOD:
        generate_synflood(g, config->flows);
        break;
    case DEMO_PROFILE_SCAN16:
        generate_scan16(g, config->flows);
        break;
    case DEMO_PROFILE_FRAGMENTS:
        generate_fragments(g, config->flows);
        break;
    default:
        generate_dnsnames(g, config->flows);
        break;
    }

    if (demo_trace_finish(g) != 0) {
        demo_trace_destroy(&g);
        return -1;
    }
    *out = g;
    return 0;
}
