/*
 * demogen.c: builds the frames of the synthetic office trace.
 *
 * Each conversation (a DNS exchange or a TCP connection) is generated in
 * one go with its own clock. Frames of all conversations go into one
 * array, which is sorted by timestamp at the end. Sequence and
 * acknowledgement numbers, IPv4 identifiers and TCP timestamps are kept
 * per conversation so that every frame is a valid, consistent packet.
 */
#include "demogen.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define US_PER_S 1000000ull

#define ETH_HLEN 14
#define IPV4_HLEN 20
#define UDP_HLEN 8
#define TCP_HLEN_SYN 40 /* MSS, SACK permitted, timestamps, window scale */
#define TCP_HLEN 32     /* NOP, NOP, timestamps */
#define TCP_MSS 1448    /* payload of a full segment with timestamps */
#define CUT_CAPLEN (ETH_HLEN + IPV4_HLEN + TCP_HLEN) /* 66 */
#define FRAME_MAX (ETH_HLEN + IPV4_HLEN + TCP_HLEN_SYN + TCP_MSS)

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_RCODE_NXDOMAIN 3

/* ---------------------------------------------------------------------- */
/* Random numbers: xoshiro256** seeded through splitmix64                  */
/* ---------------------------------------------------------------------- */

typedef struct demo_rng {
    uint64_t s[4];
} demo_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(demo_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (size_t i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(demo_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(demo_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]; the modulo bias is negligible here. */
static uint64_t rng_range(demo_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(r) % (hi - lo + 1);
}

static double rng_uniform(demo_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* Log-normal with the given median; SIGMA is the spread of the log. */
static double rng_lognormal(demo_rng *r, double median, double sigma)
{
    double u1 = 1.0 - rng_unit(r);
    double u2 = rng_unit(r);
    double normal = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return median * exp(sigma * normal);
}

static void rng_fill(demo_rng *r, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(rng_next(r) >> 56);
}

/* ---------------------------------------------------------------------- */
/* Network plan                                                            */
/* ---------------------------------------------------------------------- */

typedef enum site_kind {
    SITE_HTTPS = 0,
    SITE_HTTP = 1,
} site_kind;

typedef struct demo_site {
    const char *name;
    uint8_t ip[4];
    site_kind kind;
    bool has_aaaa;
} demo_site;

/* Sites the office hosts browse. The last two only serve the downloads. */
static const demo_site demo_sites[] = {
    {"www.example.com", {93, 184, 216, 34}, SITE_HTTPS, true},
    {"news.example.org", {192, 0, 2, 10}, SITE_HTTPS, false},
    {"mail.example.com", {198, 51, 100, 25}, SITE_HTTPS, true},
    {"docs.example.org", {198, 51, 100, 40}, SITE_HTTPS, false},
    {"api.example.net", {203, 0, 113, 15}, SITE_HTTPS, true},
    {"chat.example.com", {203, 0, 113, 30}, SITE_HTTPS, false},
    {"wiki.example.org", {93, 184, 215, 14}, SITE_HTTPS, true},
    {"shop.example.com", {23, 215, 0, 136}, SITE_HTTPS, false},
    {"calendar.example.com", {198, 51, 100, 31}, SITE_HTTPS, true},
    {"maps.example.org", {203, 0, 113, 44}, SITE_HTTPS, false},
    {"video.example.com", {192, 0, 2, 35}, SITE_HTTPS, true},
    {"forum.example.net", {198, 51, 100, 88}, SITE_HTTPS, false},
    {"status.example.org", {203, 0, 113, 120}, SITE_HTTPS, false},
    {"weather.example.com", {198, 51, 100, 60}, SITE_HTTP, false},
    {"cdn.example.net", {192, 0, 2, 20}, SITE_HTTPS, true},
    {"downloads.example.org", {192, 0, 2, 80}, SITE_HTTP, false},
    {"media.example.net", {203, 0, 113, 90}, SITE_HTTPS, true},
};
#define SITE_COUNT (sizeof demo_sites / sizeof demo_sites[0])
#define SITE_BROWSED 14 /* sites 0..13 are visited directly */
#define SITE_CDN 14     /* fetched alongside some visits */
#define SITE_DOWNLOADS 15
#define SITE_MEDIA 16

/* Names that the resolver answers with NXDOMAIN. */
static const char *const demo_bad_names[] = {
    "wpad.example.test",
    "old-share.example.test",
    "printer-2f.example.test",
    "www.exampel.invalid",
};
#define BAD_NAME_COUNT (sizeof demo_bad_names / sizeof demo_bad_names[0])

static const uint8_t demo_gateway_mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
static const uint8_t demo_resolver_ip[4] = {10, 2, 0, 53};
static const uint8_t demo_beacon_host_ip[4] = {10, 1, 0, 23};
static const uint8_t demo_beacon_peer_ip[4] = {203, 0, 113, 50};
static const char demo_beacon_sni[] = "update-check.example.net";
static const uint8_t demo_exfil_host_ip[4] = {10, 1, 0, 42};
static const uint8_t demo_exfil_peer_ip[4] = {198, 51, 100, 77};
static const char demo_exfil_sni[] = "files.example.net";

#define HOST_COUNT 7
static const uint8_t demo_host_last_octet[HOST_COUNT] = {11, 15, 23, 31, 42, 57, 64};

#define BEACON_PERIOD_S 300.0
#define BEACON_JITTER 0.08
#define EXFIL_BYTES 120000000u
#define EXFIL_HISTORY_VISITS 18 /* small flows of the exfil host before the upload */

typedef struct demo_host {
    uint8_t ip[4];
    uint8_t mac[6];
    uint16_t ip_id;
    uint16_t next_port;
    double site_weight[SITE_BROWSED];
} demo_host;

/* ---------------------------------------------------------------------- */
/* Trace storage                                                           */
/* ---------------------------------------------------------------------- */

#define STORED_MESSAGE_MAX 70000 /* largest message stored in full (not cut) */
#define SCRATCH_BYTES (STORED_MESSAGE_MAX + 1024)

typedef struct pkt_entry {
    uint64_t ts_us;
    uint64_t order; /* insertion order, keeps the sort stable */
    size_t offset;  /* into demo_trace.bytes */
    uint32_t caplen, wirelen;
} pkt_entry;

struct demo_trace {
    demo_rng rng;
    uint64_t start_us, end_us;
    demo_host hosts[HOST_COUNT];
    pkt_entry *pkts;
    size_t pkt_count, pkt_capacity;
    uint8_t *bytes;
    size_t byte_count, byte_capacity;
    demo_flow *flows;
    size_t flow_count, flow_capacity;
    bool failed;                    /* an allocation failed: stop adding */
    uint8_t scratch[SCRATCH_BYTES]; /* message being built */
};

static bool grow(void **buf, size_t *capacity, size_t needed, size_t item_size)
{
    if (needed <= *capacity)
        return true;
    size_t cap = *capacity == 0 ? 1024 : *capacity;
    while (cap < needed)
        cap *= 2;
    void *p = realloc(*buf, cap * item_size);
    if (p == NULL)
        return false;
    *buf = p;
    *capacity = cap;
    return true;
}

static void emit_frame(demo_trace *g, uint64_t ts_us, const uint8_t *frame, uint32_t caplen,
                       uint32_t wirelen)
{
    if (g->failed)
        return;
    if (!grow((void **)&g->pkts, &g->pkt_capacity, g->pkt_count + 1, sizeof *g->pkts) ||
        !grow((void **)&g->bytes, &g->byte_capacity, g->byte_count + caplen, 1)) {
        g->failed = true;
        return;
    }
    pkt_entry *p = &g->pkts[g->pkt_count];
    p->ts_us = ts_us;
    p->order = g->pkt_count;
    p->offset = g->byte_count;
    p->caplen = caplen;
    p->wirelen = wirelen;
    memcpy(g->bytes + g->byte_count, frame, caplen);
    g->byte_count += caplen;
    g->pkt_count++;
}

static size_t new_flow(demo_trace *g, const demo_host *h, const uint8_t server_ip[4],
                       uint16_t cport, uint16_t sport, uint8_t proto, demo_role role)
{
    if (g->failed ||
        !grow((void **)&g->flows, &g->flow_capacity, g->flow_count + 1, sizeof *g->flows)) {
        g->failed = true;
        return 0;
    }
    demo_flow *f = &g->flows[g->flow_count];
    memset(f, 0, sizeof *f);
    memcpy(f->client_ip, h->ip, 4);
    memcpy(f->server_ip, server_ip, 4);
    f->client_port = cport;
    f->server_port = sport;
    f->proto = proto;
    f->role = (uint8_t)role;
    f->first_us = UINT64_MAX;
    return g->flow_count++;
}

static void account(demo_trace *g, size_t flow, bool from_client, uint64_t ts_us, uint32_t ip_len)
{
    if (g->failed)
        return;
    demo_flow *f = &g->flows[flow];
    if (ts_us < f->first_us)
        f->first_us = ts_us;
    if (ts_us > f->last_us)
        f->last_us = ts_us;
    if (from_client) {
        f->pkts_fwd++;
        f->bytes_fwd += ip_len;
    } else {
        f->pkts_rev++;
        f->bytes_rev += ip_len;
    }
}

/* Ephemeral ports advance by small random steps, so a host never reuses a
 * port within the trace and every conversation is its own flow. */
static uint16_t next_port(demo_trace *g, demo_host *h)
{
    uint32_t p = h->next_port + (uint32_t)rng_range(&g->rng, 1, 9);
    if (p > 60999)
        p = 32768 + (p - 61000);
    h->next_port = (uint16_t)p;
    return h->next_port;
}

/* ---------------------------------------------------------------------- */
/* Headers and checksums                                                   */
/* ---------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t sum16(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n % 2 == 1)
        acc += (uint32_t)(p[n - 1] << 8);
    return acc;
}

static uint16_t fold16(uint32_t acc)
{
    while (acc > 0xffff)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

/* Write Ethernet and IPv4 headers; return the offset of the transport
 * header. IP_LEN is the IPv4 total length. */
static size_t put_eth_ipv4(uint8_t *frame, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                           const uint8_t src_ip[4], const uint8_t dst_ip[4], uint8_t proto,
                           uint16_t ip_len, uint16_t ip_id, uint8_t ttl)
{
    memcpy(frame, dst_mac, 6);
    memcpy(frame + 6, src_mac, 6);
    put16(frame + 12, 0x0800);

    uint8_t *ip = frame + ETH_HLEN;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, ip_len);
    put16(ip + 4, ip_id);
    put16(ip + 6, 0x4000); /* don't fragment */
    ip[8] = ttl;
    ip[9] = proto;
    put16(ip + 10, 0);
    memcpy(ip + 12, src_ip, 4);
    memcpy(ip + 16, dst_ip, 4);
    put16(ip + 10, fold16(sum16(0, ip, IPV4_HLEN)));
    return ETH_HLEN + IPV4_HLEN;
}

/* Sum of the IPv4 pseudo-header for a transport checksum. */
static uint32_t pseudo_sum(const uint8_t src_ip[4], const uint8_t dst_ip[4], uint8_t proto,
                           uint16_t length)
{
    uint32_t acc = sum16(0, src_ip, 4);
    acc = sum16(acc, dst_ip, 4);
    return acc + proto + length;
}

/* ---------------------------------------------------------------------- */
/* Conversations                                                           */
/* ---------------------------------------------------------------------- */

/*
 * One TCP connection or UDP exchange between an office host and a server
 * behind the gateway. Sequence numbers are the next ones each side sends.
 */
typedef struct demo_conv {
    demo_trace *g;
    size_t flow;
    demo_host *host;
    uint8_t server_ip[4];
    uint16_t cport, sport;
    uint8_t server_ttl;
    uint16_t server_ip_id;
    uint32_t cseq, sseq;
    uint32_t c_ts_base, s_ts_base;
    uint32_t rtt_us;
} demo_conv;

static void conv_open(demo_conv *c, demo_trace *g, demo_host *h, const uint8_t server_ip[4],
                      uint16_t sport, uint8_t proto, demo_role role, uint32_t rtt_us)
{
    memset(c, 0, sizeof *c);
    c->g = g;
    c->host = h;
    memcpy(c->server_ip, server_ip, 4);
    c->cport = next_port(g, h);
    c->sport = sport;
    c->flow = new_flow(g, h, server_ip, c->cport, sport, proto, role);
    c->server_ttl = server_ip[0] == 10 ? 63 : (uint8_t)rng_range(&g->rng, 50, 58);
    c->server_ip_id = (uint16_t)rng_next(&g->rng);
    c->cseq = (uint32_t)rng_next(&g->rng);
    c->sseq = (uint32_t)rng_next(&g->rng);
    c->c_ts_base = (uint32_t)rng_next(&g->rng);
    c->s_ts_base = (uint32_t)rng_next(&g->rng);
    c->rtt_us = rtt_us;
}

/*
 * Emit one TCP segment of LEN payload bytes at TS. With CUT, only the
 * headers are stored, PAYLOAD may be NULL, and the payload counts as zeros
 * in the checksum.
 */
static void emit_tcp(demo_conv *c, bool from_client, uint64_t ts, uint8_t flags,
                     const uint8_t *payload, size_t len, bool cut)
{
    uint8_t frame[FRAME_MAX];
    demo_host *h = c->host;
    size_t thl = (flags & TCP_SYN) ? TCP_HLEN_SYN : TCP_HLEN;
    uint16_t ip_len = (uint16_t)(IPV4_HLEN + thl + len);
    const uint8_t *src_ip = from_client ? h->ip : c->server_ip;
    const uint8_t *dst_ip = from_client ? c->server_ip : h->ip;
    uint16_t ip_id = from_client ? h->ip_id++ : c->server_ip_id++;
    uint8_t ttl = from_client ? 64 : c->server_ttl;

    size_t off = put_eth_ipv4(frame, from_client ? demo_gateway_mac : h->mac,
                              from_client ? h->mac : demo_gateway_mac, src_ip, dst_ip, 6, ip_len,
                              ip_id, ttl);

    uint8_t *tcp = frame + off;
    uint32_t *seq = from_client ? &c->cseq : &c->sseq;
    uint32_t ack = from_client ? c->sseq : c->cseq;
    put16(tcp, from_client ? c->cport : c->sport);
    put16(tcp + 2, from_client ? c->sport : c->cport);
    put32(tcp + 4, *seq);
    put32(tcp + 8, (flags & TCP_ACK) ? ack : 0);
    tcp[12] = (uint8_t)((thl / 4) << 4);
    tcp[13] = flags;
    if (flags & TCP_SYN)
        put16(tcp + 14, from_client ? 64240 : 65160);
    else
        put16(tcp + 14, from_client ? 502 : 509);
    put16(tcp + 16, 0);
    put16(tcp + 18, 0);

    /* Options. TSval counts milliseconds from a random base; TSecr echoes
     * the peer's clock half a round trip earlier. */
    uint32_t ms = (uint32_t)(ts / 1000u);
    uint32_t peer_ms = (uint32_t)((ts - c->rtt_us / 2) / 1000u);
    uint32_t tsval = (from_client ? c->c_ts_base : c->s_ts_base) + ms;
    uint32_t tsecr = (from_client ? c->s_ts_base : c->c_ts_base) + peer_ms;
    uint8_t *opt = tcp + 20;
    if (flags & TCP_SYN) {
        opt[0] = 2; /* MSS 1460 */
        opt[1] = 4;
        put16(opt + 2, 1460);
        opt[4] = 4; /* SACK permitted */
        opt[5] = 2;
        opt[6] = 8; /* timestamps */
        opt[7] = 10;
        put32(opt + 8, tsval);
        put32(opt + 12, from_client ? 0 : tsecr);
        opt[16] = 1; /* NOP */
        opt[17] = 3; /* window scale 7 */
        opt[18] = 3;
        opt[19] = 7;
    } else {
        opt[0] = 1;
        opt[1] = 1;
        opt[2] = 8;
        opt[3] = 10;
        put32(opt + 4, tsval);
        put32(opt + 8, tsecr);
    }

    size_t stored = cut ? 0 : len;
    if (stored > 0)
        memcpy(tcp + thl, payload, stored);
    uint32_t acc = pseudo_sum(src_ip, dst_ip, 6, (uint16_t)(thl + len));
    acc = sum16(acc, tcp, thl + stored);
    put16(tcp + 16, fold16(acc));

    uint32_t wirelen = (uint32_t)(ETH_HLEN + ip_len);
    uint32_t caplen = (uint32_t)(off + thl + stored);
    emit_frame(c->g, ts, frame, caplen, wirelen);
    account(c->g, c->flow, from_client, ts, ip_len);

    *seq += (uint32_t)len;
    if (flags & (TCP_SYN | TCP_FIN))
        *seq += 1;
}

static void emit_udp(demo_conv *c, bool from_client, uint64_t ts, const uint8_t *payload,
                     size_t len)
{
    uint8_t frame[FRAME_MAX];
    demo_host *h = c->host;
    uint16_t ip_len = (uint16_t)(IPV4_HLEN + UDP_HLEN + len);
    const uint8_t *src_ip = from_client ? h->ip : c->server_ip;
    const uint8_t *dst_ip = from_client ? c->server_ip : h->ip;
    uint16_t ip_id = from_client ? h->ip_id++ : c->server_ip_id++;

    size_t off = put_eth_ipv4(frame, from_client ? demo_gateway_mac : h->mac,
                              from_client ? h->mac : demo_gateway_mac, src_ip, dst_ip, 17, ip_len,
                              ip_id, from_client ? 64 : c->server_ttl);
    uint8_t *udp = frame + off;
    put16(udp, from_client ? c->cport : c->sport);
    put16(udp + 2, from_client ? c->sport : c->cport);
    put16(udp + 4, (uint16_t)(UDP_HLEN + len));
    put16(udp + 6, 0);
    memcpy(udp + UDP_HLEN, payload, len);
    uint16_t sum = fold16(
        sum16(pseudo_sum(src_ip, dst_ip, 17, (uint16_t)(UDP_HLEN + len)), udp, UDP_HLEN + len));
    put16(udp + 6, sum == 0 ? 0xffff : sum);

    emit_frame(c->g, ts, frame, (uint32_t)(off + UDP_HLEN + len), (uint32_t)(ETH_HLEN + ip_len));
    account(c->g, c->flow, from_client, ts, ip_len);
}

/* SYN, SYN-ACK, ACK starting at *T; *T ends after the client's ACK. */
static void tcp_handshake(demo_conv *c, uint64_t *t)
{
    emit_tcp(c, true, *t, TCP_SYN, NULL, 0, false);
    *t += c->rtt_us;
    emit_tcp(c, false, *t, TCP_SYN | TCP_ACK, NULL, 0, false);
    *t += 40;
    emit_tcp(c, true, *t, TCP_ACK, NULL, 0, false);
}

/*
 * Send LEN bytes from one side as full-size segments at RATE bytes per
 * second, starting at *T. DATA may be NULL only when CUT is set. The
 * receiver acknowledges every ACK_EVERY segments and the last one. The
 * capture point sits next to the client, so a client ACK follows within
 * 60 us and a server ACK a round trip after the segment. *T ends after the
 * last acknowledgement.
 */
static void tcp_stream(demo_conv *c, bool from_client, const uint8_t *data, size_t len, bool cut,
                       double rate, unsigned ack_every, uint64_t *t)
{
    demo_rng *r = &c->g->rng;
    uint64_t last_ack = *t;
    size_t off = 0;
    unsigned seg = 0;

    while (off < len && !c->g->failed) {
        size_t n = len - off < TCP_MSS ? len - off : TCP_MSS;
        bool last = off + n == len;
        emit_tcp(c, from_client, *t, TCP_ACK | (last ? TCP_PSH : 0), data ? data + off : NULL, n,
                 cut);
        off += n;
        seg++;
        if (seg % ack_every == 0 || last) {
            last_ack = *t + (from_client ? c->rtt_us : 60);
            emit_tcp(c, !from_client, last_ack, TCP_ACK, NULL, 0, false);
        }
        *t += (uint64_t)((double)n / rate * 1e6 * rng_uniform(r, 0.9, 1.1)) + 1;
    }
    if (last_ack > *t)
        *t = last_ack;
}

/* FIN exchange started by the client (or the server), then the last ACK. */
static void tcp_close(demo_conv *c, bool client_first, uint64_t *t)
{
    emit_tcp(c, client_first, *t, TCP_FIN | TCP_ACK, NULL, 0, false);
    *t += client_first ? c->rtt_us : 120;
    emit_tcp(c, !client_first, *t, TCP_FIN | TCP_ACK, NULL, 0, false);
    *t += client_first ? 50 : c->rtt_us;
    emit_tcp(c, client_first, *t, TCP_ACK, NULL, 0, false);
}

/* ---------------------------------------------------------------------- */
/* DNS                                                                     */
/* ---------------------------------------------------------------------- */

/* Append NAME in wire form; return the new length or 0 if it does not fit. */
static size_t put_dns_name(uint8_t *buf, size_t off, size_t cap, const char *name)
{
    const char *p = name;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t label = dot ? (size_t)(dot - p) : strlen(p);
        if (label == 0 || label > 63 || 1 + label > cap - off)
            return 0;
        buf[off++] = (uint8_t)label;
        memcpy(buf + off, p, label);
        off += label;
        p += label;
        if (*p == '.')
            p++;
    }
    if (1 > cap - off)
        return 0;
    buf[off++] = 0;
    return off;
}

/* EDNS(0) OPT record advertising a 4096-byte UDP payload. */
static size_t put_dns_opt(uint8_t *buf, size_t off)
{
    static const uint8_t opt[11] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
    memcpy(buf + off, opt, sizeof opt);
    return off + sizeof opt;
}

/*
 * One query from host H for NAME (QTYPE) to the internal resolver at TS
 * and its response. SITE gives the answer; NULL means NXDOMAIN. Return
 * the time the response arrives.
 */
static uint64_t dns_exchange(demo_trace *g, demo_host *h, uint64_t ts, const char *name,
                             uint16_t qtype, const demo_site *site, size_t site_index)
{
    demo_conv c;
    uint8_t msg[512];
    uint16_t txid = (uint16_t)rng_next(&g->rng);
    conv_open(&c, g, h, demo_resolver_ip, 53, 17, DEMO_ROLE_BACKGROUND, 0);

    /* Query: RD set, one question, an OPT record. */
    memset(msg, 0, 12);
    put16(msg, txid);
    put16(msg + 2, 0x0100);
    put16(msg + 4, 1);
    put16(msg + 10, 1);
    size_t qend = put_dns_name(msg, 12, sizeof msg - 16, name);
    if (qend == 0)
        return ts;
    put16(msg + qend, qtype);
    put16(msg + qend + 2, 1);
    qend += 4;
    size_t qlen = put_dns_opt(msg, qend);
    emit_udp(&c, true, ts, msg, qlen);

    /* Response: same question, answers pointing back at it (0xc00c). */
    bool cached = rng_unit(&g->rng) < 0.7;
    uint64_t latency = cached ? rng_range(&g->rng, 300, 3000) : rng_range(&g->rng, 15000, 90000);
    uint16_t answers = 0;
    size_t off = qend;
    if (site != NULL && qtype == DNS_TYPE_A) {
        answers = 1;
        const uint8_t rr[12] = {0xc0, 0x0c, 0, DNS_TYPE_A, 0, 1, 0, 0, 0x01, 0x2c, 0, 4};
        memcpy(msg + off, rr, sizeof rr);
        memcpy(msg + off + sizeof rr, site->ip, 4);
        off += sizeof rr + 4;
    } else if (site != NULL && qtype == DNS_TYPE_AAAA && site->has_aaaa) {
        answers = 1;
        const uint8_t rr[12] = {0xc0, 0x0c, 0, DNS_TYPE_AAAA, 0, 1, 0, 0, 0x01, 0x2c, 0, 16};
        uint8_t addr[16] = {0x20, 0x01, 0x0d, 0xb8, 0, (uint8_t)site_index};
        addr[15] = site->ip[3];
        memcpy(msg + off, rr, sizeof rr);
        memcpy(msg + off + sizeof rr, addr, sizeof addr);
        off += sizeof rr + sizeof addr;
    }
    off = put_dns_opt(msg, off);
    put16(msg + 2, (uint16_t)(0x8180 | (site == NULL ? DNS_RCODE_NXDOMAIN : 0)));
    put16(msg + 6, answers);
    emit_udp(&c, false, ts + latency, msg, off);
    return ts + latency;
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                     */
/* ---------------------------------------------------------------------- */

/* Cursor for building TLS and HTTP messages into a fixed buffer. Writes
 * past the end are dropped and set overflow. */
typedef struct demo_buf {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
} demo_buf;

static void buf_bytes(demo_buf *b, const void *data, size_t n)
{
    if (n > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_u8(demo_buf *b, uint8_t v)
{
    buf_bytes(b, &v, 1);
}

static void buf_u16(demo_buf *b, uint16_t v)
{
    uint8_t x[2];
    put16(x, v);
    buf_bytes(b, x, 2);
}

/* Reserve a length field of WIDTH bytes; return its offset. */
static size_t buf_len_begin(demo_buf *b, size_t width)
{
    size_t at = b->len;
    static const uint8_t zero[3] = {0, 0, 0};
    buf_bytes(b, zero, width);
    return at;
}

/* Fill the length field at AT with the bytes written after it. */
static void buf_len_end(demo_buf *b, size_t at, size_t width)
{
    if (b->overflow)
        return;
    size_t n = b->len - at - width;
    for (size_t i = 0; i < width; i++)
        b->p[at + i] = (uint8_t)(n >> (8 * (width - 1 - i)));
}

static void buf_random(demo_buf *b, demo_rng *r, size_t n)
{
    if (n > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    rng_fill(r, b->p + b->len, n);
    b->len += n;
}

/* A TLS 1.3-capable ClientHello, as a browser sends it, for SNI. */
static size_t build_client_hello(demo_rng *r, const char *sni, uint8_t *out, size_t cap)
{
    static const uint16_t suites[] = {0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f,
                                      0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc013,
                                      0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
    static const uint16_t groups[] = {0x001d, 0x0017, 0x0018};
    static const uint16_t sigalgs[] = {0x0403, 0x0804, 0x0401, 0x0503,
                                       0x0805, 0x0501, 0x0806, 0x0601};
    demo_buf b = {out, 0, cap, false};

    buf_u8(&b, 22); /* record: handshake */
    buf_u16(&b, 0x0301);
    size_t rec = buf_len_begin(&b, 2);
    buf_u8(&b, 1); /* ClientHello */
    size_t hs = buf_len_begin(&b, 3);
    buf_u16(&b, 0x0303);
    buf_random(&b, r, 32); /* random */
    buf_u8(&b, 32);
    buf_random(&b, r, 32); /* legacy session id */
    buf_u16(&b, (uint16_t)(2 * (sizeof suites / sizeof suites[0])));
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        buf_u16(&b, suites[i]);
    buf_u8(&b, 1); /* compression: null only */
    buf_u8(&b, 0);

    size_t exts = buf_len_begin(&b, 2);
    buf_u16(&b, 0x0000); /* server_name */
    size_t ext = buf_len_begin(&b, 2);
    size_t list = buf_len_begin(&b, 2);
    buf_u8(&b, 0); /* host_name */
    buf_u16(&b, (uint16_t)strlen(sni));
    buf_bytes(&b, sni, strlen(sni));
    buf_len_end(&b, list, 2);
    buf_len_end(&b, ext, 2);

    buf_u16(&b, 0x0017); /* extended_master_secret */
    buf_u16(&b, 0);
    buf_u16(&b, 0xff01); /* renegotiation_info */
    buf_u16(&b, 1);
    buf_u8(&b, 0);

    buf_u16(&b, 0x000a); /* supported_groups */
    buf_u16(&b, (uint16_t)(2 + 2 * (sizeof groups / sizeof groups[0])));
    buf_u16(&b, (uint16_t)(2 * (sizeof groups / sizeof groups[0])));
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        buf_u16(&b, groups[i]);

    buf_u16(&b, 0x000b); /* ec_point_formats: uncompressed */
    buf_u16(&b, 2);
    buf_u8(&b, 1);
    buf_u8(&b, 0);
    buf_u16(&b, 0x0023); /* session_ticket, empty */
    buf_u16(&b, 0);

    buf_u16(&b, 0x0010); /* ALPN: h2, http/1.1 */
    ext = buf_len_begin(&b, 2);
    list = buf_len_begin(&b, 2);
    buf_u8(&b, 2);
    buf_bytes(&b, "h2", 2);
    buf_u8(&b, 8);
    buf_bytes(&b, "http/1.1", 8);
    buf_len_end(&b, list, 2);
    buf_len_end(&b, ext, 2);

    buf_u16(&b, 0x0005); /* status_request: OCSP */
    buf_u16(&b, 5);
    buf_u8(&b, 1);
    buf_u16(&b, 0);
    buf_u16(&b, 0);

    buf_u16(&b, 0x000d); /* signature_algorithms */
    buf_u16(&b, (uint16_t)(2 + 2 * (sizeof sigalgs / sizeof sigalgs[0])));
    buf_u16(&b, (uint16_t)(2 * (sizeof sigalgs / sizeof sigalgs[0])));
    for (size_t i = 0; i < sizeof sigalgs / sizeof sigalgs[0]; i++)
        buf_u16(&b, sigalgs[i]);

    buf_u16(&b, 0x0033); /* key_share: one x25519 share */
    buf_u16(&b, 38);
    buf_u16(&b, 36);
    buf_u16(&b, 0x001d);
    buf_u16(&b, 32);
    buf_random(&b, r, 32);

    buf_u16(&b, 0x002b); /* supported_versions: 1.3, 1.2 */
    buf_u16(&b, 5);
    buf_u8(&b, 4);
    buf_u16(&b, 0x0304);
    buf_u16(&b, 0x0303);
    buf_u16(&b, 0x002d); /* psk_key_exchange_modes: psk_dhe_ke */
    buf_u16(&b, 2);
    buf_u8(&b, 1);
    buf_u8(&b, 1);

    buf_len_end(&b, exts, 2);
    buf_len_end(&b, hs, 3);
    buf_len_end(&b, rec, 2);
    return b.overflow ? 0 : b.len;
}

/* ServerHello (TLS 1.3 through supported_versions), ChangeCipherSpec and
 * one application_data record standing for the encrypted handshake. */
static size_t build_server_flight(demo_rng *r, const uint8_t session_id[32], size_t encrypted,
                                  uint8_t *out, size_t cap)
{
    demo_buf b = {out, 0, cap, false};

    buf_u8(&b, 22);
    buf_u16(&b, 0x0303);
    size_t rec = buf_len_begin(&b, 2);
    buf_u8(&b, 2); /* ServerHello */
    size_t hs = buf_len_begin(&b, 3);
    buf_u16(&b, 0x0303);
    buf_random(&b, r, 32);
    buf_u8(&b, 32);
    buf_bytes(&b, session_id, 32);
    buf_u16(&b, 0x1301); /* TLS_AES_128_GCM_SHA256 */
    buf_u8(&b, 0);
    size_t exts = buf_len_begin(&b, 2);
    buf_u16(&b, 0x002b); /* supported_versions: 1.3 */
    buf_u16(&b, 2);
    buf_u16(&b, 0x0304);
    buf_u16(&b, 0x0033); /* key_share: x25519 */
    buf_u16(&b, 36);
    buf_u16(&b, 0x001d);
    buf_u16(&b, 32);
    buf_random(&b, r, 32);
    buf_len_end(&b, exts, 2);
    buf_len_end(&b, hs, 3);
    buf_len_end(&b, rec, 2);

    static const uint8_t ccs[6] = {20, 0x03, 0x03, 0, 1, 1};
    buf_bytes(&b, ccs, sizeof ccs);

    buf_u8(&b, 23);
    buf_u16(&b, 0x0303);
    buf_u16(&b, (uint16_t)encrypted);
    buf_random(&b, r, encrypted);
    return b.overflow ? 0 : b.len;
}

/* Application data records totalling about LEN bytes of ciphertext. */
static size_t build_app_data(demo_rng *r, size_t len, uint8_t *out, size_t cap)
{
    demo_buf b = {out, 0, cap, false};
    while (len > 0 && !b.overflow) {
        size_t n = len > 16401 ? 16401 : len;
        buf_u8(&b, 23);
        buf_u16(&b, 0x0303);
        buf_u16(&b, (uint16_t)n);
        buf_random(&b, r, n);
        len -= n;
    }
    return b.overflow ? 0 : b.len;
}

/* What one TLS connection carries after the handshake. */
typedef struct tls_plan {
    const char *sni;
    size_t request_bytes;  /* client application data */
    size_t response_bytes; /* server application data */
    bool bulk_request;     /* store the request segments cut */
    bool bulk_response;
    double rate; /* bytes per second of bulk data */
    demo_role role;
} tls_plan;

/* One TLS connection from H to SERVER_IP:443 starting at TS; return the
 * time of its last frame. */
static uint64_t tls_session(demo_trace *g, demo_host *h, const uint8_t server_ip[4], uint64_t ts,
                            const tls_plan *plan)
{
    demo_rng *r = &g->rng;
    demo_conv c;
    uint64_t t = ts;
    uint8_t *buf = g->scratch;
    const size_t cap = sizeof g->scratch;
    uint32_t rtt = (uint32_t)rng_range(r, 8000, 90000);
    conv_open(&c, g, h, server_ip, 443, 6, plan->role, rtt);

    tcp_handshake(&c, &t);

    /* ClientHello; the session id is echoed by the server. */
    t += rng_range(r, 100, 900);
    size_t n = build_client_hello(r, plan->sni, buf, cap);
    uint8_t session_id[32];
    memcpy(session_id, buf + 44, 32);
    emit_tcp(&c, true, t, TCP_PSH | TCP_ACK, buf, n, false);

    /* Server flight a round trip later. */
    t += rtt;
    n = build_server_flight(r, session_id, (size_t)rng_range(r, 2400, 4200), buf, cap);
    tcp_stream(&c, false, buf, n, false, 2.0e6, 2, &t);

    /* Client Finished and request. */
    t += rng_range(r, 200, 2000);
    static const uint8_t ccs[6] = {20, 0x03, 0x03, 0, 1, 1};
    memcpy(buf, ccs, sizeof ccs);
    n = sizeof ccs + build_app_data(r, 53, buf + sizeof ccs, cap - sizeof ccs);
    if (plan->bulk_request) {
        emit_tcp(&c, true, t, TCP_PSH | TCP_ACK, buf, n, false);
        t += 300;
        tcp_stream(&c, true, NULL, plan->request_bytes, true, plan->rate, 4, &t);
    } else {
        n += build_app_data(r, plan->request_bytes, buf + n, cap - n);
        tcp_stream(&c, true, buf, n, false, 2.0e6, 2, &t);
    }

    /* Response. */
    t += rtt + rng_range(r, 1000, 40000);
    if (plan->bulk_response) {
        tcp_stream(&c, false, NULL, plan->response_bytes, true, plan->rate, 2, &t);
    } else {
        n = build_app_data(r, plan->response_bytes, buf, cap);
        tcp_stream(&c, false, buf, n, false, rng_uniform(r, 0.5e6, 4.0e6), 2, &t);
    }

    /* close_notify alert, then FIN from the client. */
    t += rng_range(r, 5000, 400000);
    demo_buf b = {buf, 0, cap, false};
    buf_u8(&b, 21);
    buf_u16(&b, 0x0303);
    buf_u16(&b, 19);
    buf_random(&b, r, 19);
    emit_tcp(&c, true, t, TCP_PSH | TCP_ACK, buf, b.len, false);
    t += 100;
    tcp_close(&c, true, &t);
    return t;
}

/* ---------------------------------------------------------------------- */
/* HTTP                                                                    */
/* ---------------------------------------------------------------------- */

static const char *const demo_paths[] = {
    "/", "/index.html", "/forecast/today", "/assets/app.js", "/styles/main.css", "/api/v1/status",
};

/* Emit one HTTP/1.1 GET from H to SITE port 80 at TS and a response of BODY
 * bytes, stored cut when BULK. Return the time of the last frame. */
static uint64_t http_session(demo_trace *g, demo_host *h, const demo_site *site, const char *path,
                             size_t body, bool bulk, demo_role role, uint64_t ts)
{
    demo_rng *r = &g->rng;
    demo_conv c;
    uint64_t t = ts;
    uint8_t *buf = g->scratch;
    const size_t cap = sizeof g->scratch;
    uint32_t rtt = (uint32_t)rng_range(r, 8000, 90000);
    conv_open(&c, g, h, site->ip, 80, 6, role, rtt);

    tcp_handshake(&c, &t);

    t += rng_range(r, 100, 900);
    int n = snprintf((char *)buf, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
                     "Firefox/128.0\r\n"
                     "Accept: */*\r\n"
                     "Accept-Language: en-US,en;q=0.5\r\n"
                     "Connection: close\r\n\r\n",
                     path, site->name);
    if (n < 0 || (size_t)n >= cap)
        return t;
    emit_tcp(&c, true, t, TCP_PSH | TCP_ACK, buf, (size_t)n, false);

    /* Response header, then the body. */
    t += rtt + rng_range(r, 2000, 60000);
    char date[64];
    time_t secs = (time_t)(t / US_PER_S);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        date[0] = '\0';
    n = snprintf((char *)buf, cap,
                 "HTTP/1.1 200 OK\r\n"
                 "Date: %s\r\n"
                 "Content-Type: %s\r\n"
                 "Content-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 date, bulk ? "application/octet-stream" : "text/html; charset=utf-8", body);
    if (n < 0 || (size_t)n >= cap)
        return t;
    size_t head = (size_t)n;
    if (bulk) {
        emit_tcp(&c, false, t, TCP_PSH | TCP_ACK, buf, head, false);
        t += 60;
        emit_tcp(&c, true, t, TCP_ACK, NULL, 0, false);
        t += 200;
        tcp_stream(&c, false, NULL, body, true, rng_uniform(r, 3.0e6, 6.0e6), 2, &t);
    } else {
        static const char filler[] = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing.</p>\n";
        size_t len = head;
        while (len < head + body && len < STORED_MESSAGE_MAX) {
            size_t k = sizeof filler - 1;
            if (k > head + body - len)
                k = head + body - len;
            memcpy(buf + len, filler, k);
            len += k;
        }
        tcp_stream(&c, false, buf, len, false, rng_uniform(r, 0.5e6, 4.0e6), 2, &t);
    }

    /* The server closes the connection, as "Connection: close" requests. */
    t += rng_range(r, 100, 2000);
    tcp_close(&c, false, &t);
    return t;
}

/* ---------------------------------------------------------------------- */
/* Scenario                                                                */
/* ---------------------------------------------------------------------- */

static size_t pick_site(demo_trace *g, const demo_host *h)
{
    double total = 0.0;
    for (size_t i = 0; i < SITE_BROWSED; i++)
        total += h->site_weight[i];
    double x = rng_unit(&g->rng) * total;
    for (size_t i = 0; i < SITE_BROWSED; i++) {
        if (x < h->site_weight[i])
            return i;
        x -= h->site_weight[i];
    }
    return SITE_BROWSED - 1;
}

/* Resolve SITE (A, and AAAA half of the time); return when the A answer
 * arrived. */
static uint64_t resolve(demo_trace *g, demo_host *h, size_t site, uint64_t t)
{
    const demo_site *s = &demo_sites[site];
    uint64_t done = dns_exchange(g, h, t, s->name, DNS_TYPE_A, s, site);
    if (rng_unit(&g->rng) < 0.5)
        (void)dns_exchange(g, h, t + rng_range(&g->rng, 50, 400), s->name, DNS_TYPE_AAAA, s, site);
    return done;
}

/* A page visit at T: DNS, then one to three connections opened within
 * half a second, sometimes assets from the CDN as well. */
static void visit(demo_trace *g, demo_host *h, size_t site, uint64_t t)
{
    demo_rng *r = &g->rng;
    const demo_site *s = &demo_sites[site];
    uint64_t ready = resolve(g, h, site, t) + rng_range(r, 200, 3000);

    if (rng_unit(r) < 0.06) {
        const char *bad = demo_bad_names[rng_range(r, 0, BAD_NAME_COUNT - 1)];
        (void)dns_exchange(g, h, t + rng_range(r, 1000, 5000), bad, DNS_TYPE_A, NULL, 0);
    }

    double u = rng_unit(r);
    unsigned connections = u < 0.6 ? 1 : (u < 0.9 ? 2 : 3);
    for (unsigned i = 0; i < connections; i++) {
        uint64_t start = ready + (i == 0 ? 0 : rng_range(r, 20000, 500000));
        size_t body = (size_t)rng_lognormal(r, 3500.0, 1.0);
        if (body > 60000)
            body = 60000;
        if (s->kind == SITE_HTTP) {
            const char *path =
                demo_paths[rng_range(r, 0, sizeof demo_paths / sizeof demo_paths[0] - 1)];
            (void)http_session(g, h, s, path, body, false, DEMO_ROLE_BACKGROUND, start);
        } else {
            tls_plan plan = {s->name,
                             (size_t)rng_range(r, 250, 900),
                             body,
                             false,
                             false,
                             0.0,
                             DEMO_ROLE_BACKGROUND};
            (void)tls_session(g, h, s->ip, start, &plan);
        }
    }

    /* The CDN answers with one of four addresses, as round-robin DNS does. */
    if (s->kind == SITE_HTTPS && rng_unit(r) < 0.3) {
        demo_site cdn = demo_sites[SITE_CDN];
        cdn.ip[3] = (uint8_t)(cdn.ip[3] + rng_range(r, 0, 3));
        uint64_t cdn_t = ready + rng_range(r, 300000, 900000);
        uint64_t cdn_ready = dns_exchange(g, h, cdn_t, cdn.name, DNS_TYPE_A, &cdn, SITE_CDN) +
                             rng_range(r, 200, 2000);
        tls_plan plan = {cdn.name,
                         (size_t)rng_range(r, 250, 700),
                         (size_t)rng_lognormal(r, 8000.0, 0.8),
                         false,
                         false,
                         0.0,
                         DEMO_ROLE_BACKGROUND};
        if (plan.response_bytes > 60000)
            plan.response_bytes = 60000;
        (void)tls_session(g, h, cdn.ip, cdn_ready, &plan);
    }
}

/*
 * Background browsing of host H from FROM_US to TO_US. Gaps between
 * visits are log-normal (median 6 minutes), with occasional long breaks,
 * so no site is contacted at a regular rhythm.
 */
static void browse(demo_trace *g, demo_host *h, uint64_t from_us, uint64_t to_us)
{
    demo_rng *r = &g->rng;
    uint64_t t = from_us + (uint64_t)(rng_uniform(r, 10.0, 400.0) * 1e6);
    while (t < to_us && !g->failed) {
        visit(g, h, pick_site(g, h), t);
        double gap_s = rng_lognormal(r, 360.0, 0.9);
        if (rng_unit(r) < 0.08)
            gap_s += rng_uniform(r, 1200.0, 3600.0);
        t += (uint64_t)(gap_s * 1e6);
    }
}

static demo_host *host_by_ip(demo_trace *g, const uint8_t ip[4])
{
    for (size_t i = 0; i < HOST_COUNT; i++) {
        if (memcmp(g->hosts[i].ip, ip, 4) == 0)
            return &g->hosts[i];
    }
    return &g->hosts[0];
}

/* The planted beacon: a short TLS connection every 300 s +-8%, each
 * preceded by a DNS lookup, with two beats skipped. */
static void plant_beacon(demo_trace *g)
{
    demo_rng *r = &g->rng;
    demo_host *h = host_by_ip(g, demo_beacon_host_ip);
    size_t beats = (size_t)((double)(g->end_us - g->start_us) / 1e6 / BEACON_PERIOD_S);
    size_t skip1 = (size_t)rng_range(r, 2, beats / 2);
    size_t skip2 = (size_t)rng_range(r, beats / 2 + 1, beats - 2);
    demo_site peer = {demo_beacon_sni, {0}, SITE_HTTPS, false};
    memcpy(peer.ip, demo_beacon_peer_ip, 4);

    double t_s = rng_uniform(r, 20.0, 200.0);
    for (size_t i = 0; i < beats && !g->failed; i++) {
        uint64_t t = g->start_us + (uint64_t)(t_s * 1e6);
        if (t >= g->end_us)
            break;
        if (i != skip1 && i != skip2) {
            uint64_t ready = dns_exchange(g, h, t, demo_beacon_sni, DNS_TYPE_A, &peer, 0);
            tls_plan plan = {demo_beacon_sni,
                             (size_t)rng_range(r, 380, 460),
                             (size_t)rng_range(r, 180, 260),
                             false,
                             false,
                             0.0,
                             DEMO_ROLE_BEACON};
            (void)tls_session(g, h, demo_beacon_peer_ip, ready + rng_range(r, 200, 800), &plan);
        }
        t_s += BEACON_PERIOD_S * (1.0 + rng_uniform(r, -BEACON_JITTER, BEACON_JITTER));
    }
}

/* The planted exfiltration: small visits by the host first (so it has a
 * baseline of a few KB per flow), then one 120 MB upload in the last
 * hour. The extra visits go round the sites so that they add no
 * repeated pattern to any one site. */
static void plant_exfil(demo_trace *g)
{
    demo_rng *r = &g->rng;
    demo_host *h = host_by_ip(g, demo_exfil_host_ip);
    uint64_t upload_at = g->end_us - (uint64_t)(rng_uniform(r, 900.0, 2400.0) * 1e6);

    uint64_t span = upload_at - g->start_us - 120 * US_PER_S;
    for (size_t i = 0; i < EXFIL_HISTORY_VISITS; i++) {
        uint64_t t = g->start_us + (uint64_t)(rng_unit(r) * (double)span);
        visit(g, h, i % SITE_BROWSED, t);
    }

    demo_site peer = {demo_exfil_sni, {0}, SITE_HTTPS, false};
    memcpy(peer.ip, demo_exfil_peer_ip, 4);
    uint64_t ready = dns_exchange(g, h, upload_at, demo_exfil_sni, DNS_TYPE_A, &peer, 0);
    tls_plan plan = {demo_exfil_sni, EXFIL_BYTES, 420, true, false, rng_uniform(r, 1.2e6, 2.0e6),
                     DEMO_ROLE_EXFIL};
    (void)tls_session(g, h, demo_exfil_peer_ip, ready + 500, &plan);
}

/* Two large inbound downloads by other hosts: an HTTP file and a TLS
 * media stream, both stored cut. */
static void plant_downloads(demo_trace *g)
{
    demo_rng *r = &g->rng;
    uint64_t span = g->end_us - g->start_us;

    demo_host *h1 = &g->hosts[1];
    uint64_t t1 = g->start_us + (uint64_t)(rng_uniform(r, 0.15, 0.45) * (double)span);
    uint64_t ready = resolve(g, h1, SITE_DOWNLOADS, t1) + 900;
    (void)http_session(g, h1, &demo_sites[SITE_DOWNLOADS], "/releases/office-suite-24.2.tar.xz",
                       (size_t)rng_range(r, 24000000, 27000000), true, DEMO_ROLE_DOWNLOAD, ready);

    demo_host *h5 = &g->hosts[5];
    uint64_t t2 = g->start_us + (uint64_t)(rng_uniform(r, 0.5, 0.8) * (double)span);
    ready = resolve(g, h5, SITE_MEDIA, t2) + 700;
    tls_plan plan = {demo_sites[SITE_MEDIA].name,
                     600,
                     (size_t)rng_range(r, 14000000, 16000000),
                     false,
                     true,
                     rng_uniform(r, 2.5e6, 5.0e6),
                     DEMO_ROLE_DOWNLOAD};
    (void)tls_session(g, h5, demo_sites[SITE_MEDIA].ip, ready, &plan);
}

static void init_hosts(demo_trace *g)
{
    for (size_t i = 0; i < HOST_COUNT; i++) {
        demo_host *h = &g->hosts[i];
        const uint8_t ip[4] = {10, 1, 0, demo_host_last_octet[i]};
        memcpy(h->ip, ip, 4);
        /* Locally administered unicast MACs, one per host. */
        const uint8_t mac[6] = {0x02, 0x1a, 0xc4, 0x10, 0x00, demo_host_last_octet[i]};
        memcpy(h->mac, mac, 6);
        h->ip_id = (uint16_t)rng_next(&g->rng);
        h->next_port = (uint16_t)rng_range(&g->rng, 32768, 50000);
        for (size_t s = 0; s < SITE_BROWSED; s++)
            h->site_weight[s] = 0.05 + rng_unit(&g->rng);
    }
}

static int compare_pkt(const void *a, const void *b)
{
    const pkt_entry *x = a;
    const pkt_entry *y = b;
    if (x->ts_us != y->ts_us)
        return x->ts_us < y->ts_us ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

int demo_generate(const demo_config *config, demo_trace **out)
{
    /* 9999-12-31T23:59:59Z: pcap's 32-bit seconds overflow long before,
     * but gmtime_r and the date header are fine up to here. */
    const uint64_t last_s = 253402300799ull;
    if (config == NULL || out == NULL || config->hours < 1 || config->hours > DEMO_MAX_HOURS ||
        config->start_s > last_s - (uint64_t)config->hours * 3600u) {
        errno = EINVAL;
        return -1;
    }
    *out = NULL;

    demo_trace *g = calloc(1, sizeof *g);
    if (g == NULL) {
        errno = ENOMEM;
        return -1;
    }
    rng_seed(&g->rng, config->seed);
    g->start_us = config->start_s * US_PER_S;
    g->end_us = g->start_us + (uint64_t)config->hours * 3600u * US_PER_S;

    init_hosts(g);
    for (size_t i = 0; i < HOST_COUNT; i++)
        browse(g, &g->hosts[i], g->start_us, g->end_us - 120 * US_PER_S);
    plant_downloads(g);
    plant_beacon(g);
    plant_exfil(g);

    if (g->failed) {
        demo_trace_destroy(&g);
        errno = ENOMEM;
        return -1;
    }
    qsort(g->pkts, g->pkt_count, sizeof *g->pkts, compare_pkt);
    *out = g;
    return 0;
}

void demo_trace_destroy(demo_trace **trace)
{
    if (trace == NULL || *trace == NULL)
        return;
    free((*trace)->pkts);
    free((*trace)->bytes);
    free((*trace)->flows);
    free(*trace);
    *trace = NULL;
}

size_t demo_packet_count(const demo_trace *trace)
{
    return trace->pkt_count;
}

demo_packet demo_packet_at(const demo_trace *trace, size_t i)
{
    const pkt_entry *p = &trace->pkts[i];
    demo_packet out = {p->ts_us, p->caplen, p->wirelen, trace->bytes + p->offset};
    return out;
}

size_t demo_flow_count(const demo_trace *trace)
{
    return trace->flow_count;
}

const demo_flow *demo_flow_at(const demo_trace *trace, size_t i)
{
    return &trace->flows[i];
}
