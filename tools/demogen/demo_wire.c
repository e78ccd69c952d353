/*
 * demo_wire.c: the packet-writing half of the synthetic traffic generators.
 *
 * Each conversation (a DNS exchange or a TCP connection) is generated in
 * one go with its own clock. Frames of all conversations go into one
 * array, which is sorted by timestamp at the end. Sequence and
 * acknowledgement numbers, IPv4 identifiers and TCP timestamps are kept
 * per conversation so that every frame is a valid, consistent packet.
 */
#include "demo_wire.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>

/* ---------------------------------------------------------------------- */
/* Random numbers: xoshiro256** seeded through splitmix64                  */
/* ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(demo_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (size_t i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(demo_rng *r)
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
double rng_unit(demo_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]; the modulo bias is negligible here. */
uint64_t rng_range(demo_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(r) % (hi - lo + 1);
}

double rng_uniform(demo_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* Log-normal with the given median; SIGMA is the spread of the log. */
double rng_lognormal(demo_rng *r, double median, double sigma)
{
    double u1 = 1.0 - rng_unit(r);
    double u2 = rng_unit(r);
    double normal = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return median * exp(sigma * normal);
}

void rng_fill(demo_rng *r, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(rng_next(r) >> 56);
}

const uint8_t demo_gateway_mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
const uint8_t demo_resolver_ip[4] = {10, 2, 0, 53};

/* ---------------------------------------------------------------------- */
/* Trace storage                                                           */
/* ---------------------------------------------------------------------- */

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
uint16_t next_port(demo_trace *g, demo_host *h)
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


void conv_open(demo_conv *c, demo_trace *g, demo_host *h, const uint8_t server_ip[4],
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
void emit_tcp(demo_conv *c, bool from_client, uint64_t ts, uint8_t flags,
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

void emit_udp(demo_conv *c, bool from_client, uint64_t ts, const uint8_t *payload,
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

void emit_ipv4_fragment(demo_trace *g, uint64_t ts, const uint8_t dst_mac[6],
                        const uint8_t src_ip[4], const uint8_t dst_ip[4], uint8_t proto,
                        uint16_t id, uint32_t offset, bool more, const uint8_t *body, size_t len)
{
    uint8_t frame[FRAME_MAX];
    uint16_t ip_len = (uint16_t)(IPV4_HLEN + len);

    if (len > FRAME_MAX - ETH_HLEN - IPV4_HLEN || offset % 8 != 0 || offset / 8 > 0x1fff) {
        g->failed = true;
        return;
    }
    size_t off = put_eth_ipv4(frame, dst_mac, demo_gateway_mac, src_ip, dst_ip, proto, ip_len,
                              id, 64);
    /* put_eth_ipv4 sets DF; a fragment has MF and its offset instead. */
    uint8_t *ip = frame + ETH_HLEN;
    put16(ip + 6, (uint16_t)((more ? 0x2000u : 0u) | (offset / 8)));
    put16(ip + 10, 0);
    put16(ip + 10, fold16(sum16(0, ip, IPV4_HLEN)));
    memcpy(frame + off, body, len);
    emit_frame(g, ts, frame, (uint32_t)(off + len), (uint32_t)(off + len));
}

/* SYN, SYN-ACK, ACK starting at *T; *T ends after the client's ACK. */
void tcp_handshake(demo_conv *c, uint64_t *t)
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
void tcp_stream(demo_conv *c, bool from_client, const uint8_t *data, size_t len, bool cut,
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
void tcp_close(demo_conv *c, bool client_first, uint64_t *t)
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
uint64_t dns_exchange(demo_trace *g, demo_host *h, uint64_t ts, const char *name,
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
size_t build_client_hello(demo_rng *r, const char *sni, uint8_t *out, size_t cap)
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
size_t build_app_data(demo_rng *r, size_t len, uint8_t *out, size_t cap)
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


/* One TLS connection from H to SERVER_IP:443 starting at TS; return the
 * time of its last frame. */
uint64_t tls_session(demo_trace *g, demo_host *h, const uint8_t server_ip[4], uint64_t ts,
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

/* Emit one HTTP/1.1 GET from H to SITE port 80 at TS and a response of BODY
 * bytes, stored cut when BULK. Return the time of the last frame. */
uint64_t http_session(demo_trace *g, demo_host *h, const demo_site *site, const char *path,
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
/* Trace life cycle and output                                             */
/* ---------------------------------------------------------------------- */

demo_trace *demo_trace_new(uint64_t seed, uint64_t start_us, uint64_t end_us, size_t host_count)
{
    demo_trace *g = calloc(1, sizeof *g);
    if (g == NULL || (host_count > 0 && (g->hosts = calloc(host_count, sizeof *g->hosts)) == NULL)) {
        free(g);
        errno = ENOMEM;
        return NULL;
    }
    g->host_count = host_count;
    rng_seed(&g->rng, seed);
    g->start_us = start_us;
    g->end_us = end_us;
    return g;
}

static int compare_pkt(const void *a, const void *b)
{
    const pkt_entry *x = a;
    const pkt_entry *y = b;
    if (x->ts_us != y->ts_us)
        return x->ts_us < y->ts_us ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

int demo_trace_finish(demo_trace *trace)
{
    if (trace->failed) {
        errno = ENOMEM;
        return -1;
    }
    qsort(trace->pkts, trace->pkt_count, sizeof *trace->pkts, compare_pkt);
    return 0;
}

void demo_trace_destroy(demo_trace **trace)
{
    if (trace == NULL || *trace == NULL)
        return;
    free((*trace)->pkts);
    free((*trace)->bytes);
    free((*trace)->flows);
    free((*trace)->hosts);
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

uint64_t demo_pcap_bytes(const demo_trace *trace)
{
    uint64_t bytes = 24; /* pcap file header */
    for (size_t i = 0; i < trace->pkt_count; i++)
        bytes += trace->pkts[i].caplen + 16u; /* record header + frame */
    return bytes;
}

int demo_write_pcap(const demo_trace *trace, const char *path, char *err, size_t err_len)
{
    int rc = -1;
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t *dumper = NULL;
    if (dead == NULL) {
        snprintf(err, err_len, "libpcap could not create a pcap handle");
        goto out;
    }
    dumper = pcap_dump_open(dead, path);
    if (dumper == NULL) {
        snprintf(err, err_len, "%s: cannot open for writing: %s", path, pcap_geterr(dead));
        goto out;
    }

    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        struct pcap_pkthdr hdr;
        memset(&hdr, 0, sizeof hdr);
        hdr.ts.tv_sec = (time_t)(p.ts_us / 1000000u);
        hdr.ts.tv_usec = (suseconds_t)(p.ts_us % 1000000u);
        hdr.caplen = p.caplen;
        hdr.len = p.wirelen;
        pcap_dump((u_char *)dumper, &hdr, p.data);
    }
    if (pcap_dump_flush(dumper) != 0) {
        snprintf(err, err_len, "%s: write failed: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (dumper != NULL)
        pcap_dump_close(dumper);
    if (dead != NULL)
        pcap_close(dead);
    return rc;
}
