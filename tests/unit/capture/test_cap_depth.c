/*
 * test_cap_depth.c: flow-level depth of the capture engine: how the
 * client side is chosen, handshake RTT, retransmission and out-of-order
 * counts, TCP reassembly of reordered segments, active-timeout
 * continuation, tunnels, ICMP error attribution, IP fragment reassembly
 * and the detected application, over hand-built IPv4 packets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_test_sink.h"
#include "capture.h"

#define LINK_IPV4 228
#define LINK_PPP 9
#define LINK_LINUX_SLL 113
#define LINK_LINUX_SLL2 276
#define SEC 1000000ULL
#define MS 1000ULL

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* IPv4 header, 20 bytes: version 4, IHL 5, total length (patched), id
 * (patched), flags/fragment offset (patched), TTL 64, protocol (patched),
 * checksum 0, 10.0.0.SRC -> 10.0.0.DST (patched). */
static size_t put_ipv4(uint8_t *out, uint8_t proto, uint8_t src, uint8_t dst, size_t total,
                       uint16_t id, uint16_t frag)
{
    static const uint8_t ip[20] = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0,
                                   10, 0, 0, 1, 10, 0, 0, 2};

    memcpy(out, ip, sizeof ip);
    out[2] = (uint8_t)(total >> 8);
    out[3] = (uint8_t)total;
    out[4] = (uint8_t)(id >> 8);
    out[5] = (uint8_t)id;
    out[6] = (uint8_t)(frag >> 8);
    out[7] = (uint8_t)frag;
    out[9] = proto;
    out[15] = src;
    out[19] = dst;
    return sizeof ip;
}

/* IPv4 + TCP (data offset 5, ack 0, window 0xffff) from 10.0.0.SRC:SPORT
 * to 10.0.0.DST:DPORT with FLAGS, sequence SEQ and LEN payload bytes. */
static size_t make_tcp(uint8_t *out, uint8_t src, uint16_t sport, uint8_t dst, uint16_t dport,
                       uint8_t flags, uint32_t seq, const void *payload, size_t len)
{
    uint8_t *t = out + 20;

    put_ipv4(out, 6, src, dst, 40 + len, 0, 0x4000);
    memset(t, 0, 20);
    t[0] = (uint8_t)(sport >> 8);
    t[1] = (uint8_t)sport;
    t[2] = (uint8_t)(dport >> 8);
    t[3] = (uint8_t)dport;
    t[4] = (uint8_t)(seq >> 24);
    t[5] = (uint8_t)(seq >> 16);
    t[6] = (uint8_t)(seq >> 8);
    t[7] = (uint8_t)seq;
    t[12] = 0x50;
    t[13] = flags;
    t[14] = 0xff;
    t[15] = 0xff;
    if (len > 0)
        memcpy(out + 40, payload, len);
    return 40 + len;
}

/* IPv4 + UDP (length patched, checksum 0). */
static size_t make_udp(uint8_t *out, uint8_t src, uint16_t sport, uint8_t dst, uint16_t dport,
                       const void *payload, size_t len)
{
    uint8_t *u = out + 20;

    put_ipv4(out, 17, src, dst, 28 + len, 0, 0);
    u[0] = (uint8_t)(sport >> 8);
    u[1] = (uint8_t)sport;
    u[2] = (uint8_t)(dport >> 8);
    u[3] = (uint8_t)dport;
    u[4] = (uint8_t)((len + 8) >> 8);
    u[5] = (uint8_t)(len + 8);
    u[6] = 0;
    u[7] = 0;
    if (len > 0)
        memcpy(out + 28, payload, len);
    return 28 + len;
}

static void feed(cap_engine *eng, uint64_t ts, const uint8_t *pkt, size_t n)
{
    assert_int_equal(ts_feed(eng, LINK_IPV4, ts, pkt, n), FV_OK);
}

static void feed_tcp(cap_engine *eng, uint64_t ts, uint8_t src, uint16_t sport, uint8_t dst,
                     uint16_t dport, uint8_t flags, uint32_t seq, const void *payload, size_t len)
{
    uint8_t pkt[2048];

    feed(eng, ts, pkt, make_tcp(pkt, src, sport, dst, dport, flags, seq, payload, len));
}

static test_sink sink_state;

static cap_engine *new_engine(const cap_config *cfg)
{
    cap_sink sink = ts_sink(&sink_state);
    cap_engine *eng = NULL;

    assert_int_equal(cap_engine_create(cfg, &sink, &eng), FV_OK);
    return eng;
}

/* The only flow emitted so far. */
static const cap_flow *only_flow(void)
{
    assert_int_equal(sink_state.nflows, 1);
    return &sink_state.flows[0];
}

static void test_handshake_sets_syn_initiator_and_rtt(void **state)
{
    cap_engine *eng = new_engine(NULL);
    const cap_flow *f;

    (void)state;
    /* Client 10.0.0.1:50000 -> server 10.0.0.2:443: SYN at 1 s, SYN-ACK
     * 30 ms later, the client's ACK at 50 ms. */
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 443, TCP_SYN, 100, NULL, 0);
    feed_tcp(eng, 1 * SEC + 30 * MS, 2, 443, 1, 50000, TCP_SYN | TCP_ACK, 900, NULL, 0);
    feed_tcp(eng, 1 * SEC + 50 * MS, 1, 50000, 2, 443, TCP_ACK, 101, NULL, 0);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->initiator, FV_INIT_SYN);
    assert_int_equal(f->rtt_us, 50 * MS);
    assert_int_equal(f->src.addr[3], 1);
    assert_int_equal(f->sport, 50000);
}

static void test_synack_first_turns_flow_to_client(void **state)
{
    cap_engine *eng = new_engine(NULL);
    const cap_flow *f;

    (void)state;
    /* The capture starts at the server's SYN-ACK (10.0.0.2:443 -> .1),
     * then the client's ACK and one data segment. */
    feed_tcp(eng, 1 * SEC, 2, 443, 1, 50000, TCP_SYN | TCP_ACK, 900, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 443, TCP_ACK, 101, NULL, 0);
    feed_tcp(eng, 1 * SEC + 2, 1, 50000, 2, 443, TCP_ACK | TCP_PSH, 101, "abcd", 4);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->initiator, FV_INIT_SYN);
    assert_int_equal(f->src.addr[3], 1);
    assert_int_equal(f->sport, 50000);
    assert_int_equal(f->dport, 443);
    assert_int_equal(f->pkts_fwd, 2);
    assert_int_equal(f->pkts_rev, 1);
    assert_int_equal(f->bytes_fwd, 40 + 44);
    assert_int_equal(f->bytes_rev, 40);
    assert_int_equal(f->tcp_flags_rev, TCP_SYN | TCP_ACK);
    assert_int_equal(f->rtt_us, 0); /* no SYN seen: unknown */
}

static void test_syn_seen_late_turns_flow(void **state)
{
    cap_engine *eng = new_engine(NULL);
    const cap_flow *f;

    (void)state;
    /* Equal ports, so the first packet's sender (.2) is src until the
     * SYN from .1 shows that .1 is the client. */
    feed_tcp(eng, 1 * SEC, 2, 7000, 1, 7000, TCP_ACK, 5, NULL, 0);
    assert_int_equal(sink_state.nflows, 0);
    feed_tcp(eng, 1 * SEC + 1, 1, 7000, 2, 7000, TCP_SYN, 100, NULL, 0);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->initiator, FV_INIT_SYN);
    assert_int_equal(f->src.addr[3], 1);
    assert_int_equal(f->pkts_fwd, 1);
    assert_int_equal(f->pkts_rev, 1);
    assert_int_equal(f->tcp_flags_fwd, TCP_SYN);
}

static void test_midstream_port_rule_picks_client(void **state)
{
    cap_engine *eng = new_engine(NULL);
    const cap_flow *f;

    (void)state;
    /* First packet from the server 10.0.0.2:80 to 10.0.0.1:51000. */
    feed_tcp(eng, 1 * SEC, 2, 80, 1, 51000, TCP_ACK | TCP_PSH, 7, "HTTP", 4);
    feed_tcp(eng, 1 * SEC + 1, 1, 51000, 2, 80, TCP_ACK, 1, NULL, 0);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->initiator, FV_INIT_PORT);
    assert_int_equal(f->sport, 51000);
    assert_int_equal(f->pkts_rev, 1);
    assert_int_equal(f->bytes_rev, 44);
}

static void test_udp_initiator_is_first_sender(void **state)
{
    cap_engine *eng = new_engine(NULL);
    uint8_t pkt[128];
    const cap_flow *f;

    (void)state;
    feed(eng, 1 * SEC, pkt, make_udp(pkt, 2, 9999, 1, 40000, "x", 1));
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->initiator, FV_INIT_FIRST);
    assert_int_equal(f->src.addr[3], 2);
}

static void test_retransmission_and_reordering_counted(void **state)
{
    cap_engine *eng = new_engine(NULL);
    const cap_flow *f;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, NULL, 0);
    /* Client bytes 1..10, then 21..30 (beyond next: out of order), then
     * 11..20 (fills the gap: neither), then 1..10 again (retransmission),
     * then 25..30 (inside a range seen: retransmission). */
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 80, TCP_ACK, 1, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 2, 1, 50000, 2, 80, TCP_ACK, 21, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 3, 1, 50000, 2, 80, TCP_ACK, 11, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 4, 1, 50000, 2, 80, TCP_ACK, 1, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 5, 1, 50000, 2, 80, TCP_ACK, 25, "012345", 6);
    /* Server: one segment, and its exact copy. */
    feed_tcp(eng, 1 * SEC + 6, 2, 80, 1, 50000, TCP_ACK, 500, "ok", 2);
    feed_tcp(eng, 1 * SEC + 7, 2, 80, 1, 50000, TCP_ACK, 500, "ok", 2);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->ooo_fwd, 1);
    assert_int_equal(f->retrans_fwd, 2);
    assert_int_equal(f->ooo_rev, 0);
    assert_int_equal(f->retrans_rev, 1);
}

static void test_sequence_wraparound_is_in_order(void **state)
{
    cap_engine *eng = new_engine(NULL);
    const cap_flow *f;

    (void)state;
    /* 10 bytes at 0xfffffffa end at 4 after wrapping; the next segment at
     * 4 is in order, and a copy of the first one is a retransmission. */
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_ACK, 0xfffffffau, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 80, TCP_ACK, 4, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 2, 1, 50000, 2, 80, TCP_ACK, 0xfffffffau, "0123456789", 10);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->ooo_fwd, 0);
    assert_int_equal(f->retrans_fwd, 1);
}

/* HTTP request split into three segments delivered 1, 3, 2. */
static void test_reordered_http_request_parses(void **state)
{
    static const char req[] = "GET /x HTTP/1.1\r\nHost: reorder.example\r\n\r\n";
    size_t n = strlen(req);
    cap_engine *eng = new_engine(NULL);
    cap_stats st;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 80, TCP_ACK | TCP_PSH, 1, req, 10);
    feed_tcp(eng, 1 * SEC + 2, 1, 50000, 2, 80, TCP_ACK | TCP_PSH, 1 + 20, req + 20, n - 20);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.tcp_ooo_buffered, 1);
    assert_int_equal(st.http_requests, 0);
    feed_tcp(eng, 1 * SEC + 3, 1, 50000, 2, 80, TCP_ACK | TCP_PSH, 1 + 10, req + 10, 10);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.http_requests, 1);
    assert_int_equal(st.http_malformed, 0);
    cap_engine_destroy(&eng);

    assert_int_equal(sink_state.nhttp, 1);
    assert_string_equal(sink_state.http[0].host, "reorder.example");
    assert_int_equal(only_flow()->app, FV_APP_HTTP);
}

/* The first segment of a request arrives last (orders 2, 1 and 3, 2, 1):
 * the protocol is decided when the stream's start arrives, not from
 * the first segment to arrive. */
static void test_first_segment_late_http_parses(void **state)
{
    static const char req[] = "GET /x HTTP/1.1\r\nHost: late.example\r\n\r\n";
    size_t n = strlen(req);
    static const size_t orders[2][3] = {{1, 0, 2}, {2, 1, 0}};

    (void)state;
    for (size_t o = 0; o < 2; o++) {
        cap_engine *eng = new_engine(NULL);
        cap_stats st;
        feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, NULL, 0);
        for (size_t i = 0; i < 3; i++) {
            size_t part = orders[o][i];
            size_t from = part * 10, len = part == 2 ? n - 20 : 10;
            feed_tcp(eng, 1 * SEC + 1 + i, 1, 50000, 2, 80, TCP_ACK | TCP_PSH,
                     1 + (uint32_t)from, req + from, len);
        }
        cap_engine_stats(eng, &st);
        assert_int_equal(st.http_requests, 1);
        assert_int_equal(st.http_malformed, 0);
        cap_engine_destroy(&eng);
        assert_int_equal(sink_state.nhttp, 1);
        assert_string_equal(sink_state.http[0].host, "late.example");
        assert_int_equal(only_flow()->app, FV_APP_HTTP);
    }
}

/* A long request head sent one byte per segment after the request line
 * is parsed once its empty line is complete, which arrives split across
 * segments, and a second request after it is parsed too. */
static void test_head_in_small_segments_parses(void **state)
{
    static char req[4096];
    size_t n = 0;

    (void)state;
    n += (size_t)snprintf(req + n, sizeof req - n, "GET /a HTTP/1.1\r\nHost: small.example\r\n");
    while (n < 3000)
        n += (size_t)snprintf(req + n, sizeof req - n, "X-Filler: %04zu\r\n", n);
    n += (size_t)snprintf(req + n, sizeof req - n, "\r\nGET /b HTTP/1.1\r\nHost: next.example\r\n\r\n");

    cap_engine *eng = new_engine(NULL);
    cap_stats st;
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, NULL, 0);
    /* The first segment contains the request line, which decides the parser. */
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 80, TCP_ACK | TCP_PSH, 1, req, 17);
    for (size_t i = 17; i < n; i++)
        feed_tcp(eng, 1 * SEC + 1 + i, 1, 50000, 2, 80, TCP_ACK | TCP_PSH, 1 + (uint32_t)i,
                 req + i, 1);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.http_requests, 2);
    assert_int_equal(st.http_malformed, 0);
    cap_engine_destroy(&eng);
    assert_int_equal(sink_state.nhttp, 2);
    assert_string_equal(sink_state.http[0].host, "small.example");
    assert_string_equal(sink_state.http[1].host, "next.example");
}

/* A lost first segment: the segments after it are held until the queue
 * is full, then the flow gets no parser and its stream state is freed,
 * so later segments are neither held nor counted as dropped. Data in a
 * SYN (TCP Fast Open) moves the stream start past it. */
static void test_lost_first_segment_gives_up(void **state)
{
    char data[100];
    memset(data, 'a', sizeof data);

    (void)state;
    cap_engine *eng = new_engine(NULL);
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, NULL, 0);
    /* Bytes 1..100 are lost; 40 segments follow. */
    for (uint32_t i = 0; i < 40; i++)
        feed_tcp(eng, 1 * SEC + 1 + i, 1, 50000, 2, 80, TCP_ACK, 101 + 100 * i, data, 100);
    cap_stats st;
    cap_memory mem;
    cap_engine_stats(eng, &st);
    cap_engine_memory(eng, &mem);
    /* The queue takes 8 segments (CAP_STREAM_OOO_SEGMENTS in cap_engine.c). */
    assert_int_equal(st.tcp_ooo_buffered, 8);
    assert_int_equal(st.tcp_ooo_dropped, 0);
    assert_int_equal(mem.stream_states, 0);
    cap_engine_destroy(&eng);

    /* Fast Open: the SYN carries 10 bytes, and the request that follows
     * them is parsed. */
    static const char req[] = "GET /tfo HTTP/1.1\r\nHost: tfo.example\r\n\r\n";
    eng = new_engine(NULL);
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, "0123456789", 10);
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 80, TCP_ACK | TCP_PSH, 11, req, strlen(req));
    cap_engine_stats(eng, &st);
    assert_int_equal(st.http_requests, 1);
    cap_engine_destroy(&eng);
    assert_int_equal(sink_state.nhttp, 1);
    assert_string_equal(sink_state.http[0].host, "tfo.example");
}

static void test_out_of_order_queue_is_bounded(void **state)
{
    cap_engine *eng = new_engine(NULL);
    cap_stats st;
    uint32_t i;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 50000, 2, 80, TCP_SYN, 0, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 1, 50000, 2, 80, TCP_ACK, 1, "GET ", 4);
    /* Ten segments, each after a one-byte gap: eight are held, two dropped. */
    for (i = 0; i < 10; i++)
        feed_tcp(eng, 1 * SEC + 2 + i, 1, 50000, 2, 80, TCP_ACK, 6 + 2 * i, "a", 1);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.tcp_ooo_buffered, 8);
    assert_int_equal(st.tcp_ooo_dropped, 2);
    cap_engine_destroy(&eng);
}

static void test_active_timeout_marks_continued_records(void **state)
{
    cap_config cfg = {.active_s = 10};
    cap_engine *eng = new_engine(&cfg);
    uint8_t pkt[128];
    uint64_t t;

    (void)state;
    /* One UDP packet a second for 25 s: two active records, then the rest. */
    for (t = 0; t < 25; t++)
        feed(eng, 100 * SEC + t * SEC, pkt, make_udp(pkt, 1, 40000, 2, 9000, "x", 1));
    cap_engine_destroy(&eng);

    assert_int_equal(sink_state.nflows, 3);
    assert_int_equal(sink_state.flows[0].end_reason, FV_END_ACTIVE);
    assert_false(sink_state.flows[0].continued);
    assert_int_equal(sink_state.flows[1].end_reason, FV_END_ACTIVE);
    assert_true(sink_state.flows[1].continued);
    assert_true(sink_state.flows[2].continued);
}

static void test_gre_tunnel_keeps_outer_endpoints(void **state)
{
    cap_engine *eng = new_engine(NULL);
    uint8_t pkt[256];
    uint8_t inner[64];
    size_t inner_len, n;
    const cap_flow *f;

    (void)state;
    /* Inner: UDP 10.0.0.5:40000 -> 10.0.0.6:9000, one payload byte. */
    inner_len = make_udp(inner, 5, 40000, 6, 9000, "x", 1);
    /* Outer: IPv4 10.0.0.1 -> 10.0.0.2, protocol 47 (GRE); GRE header
     * with no flags, version 0, protocol 0x0800 (IPv4). */
    n = put_ipv4(pkt, 47, 1, 2, 20 + 4 + inner_len, 0, 0);
    pkt[n++] = 0x00;
    pkt[n++] = 0x00;
    pkt[n++] = 0x08;
    pkt[n++] = 0x00;
    memcpy(pkt + n, inner, inner_len);
    feed(eng, 1 * SEC, pkt, n + inner_len);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->src.addr[3], 5);
    assert_int_equal(f->tunnel_type, FV_TUNNEL_GRE);
    assert_int_equal(f->outer_src.family, 4);
    assert_int_equal(f->outer_src.addr[3], 1);
    assert_int_equal(f->outer_dst.addr[3], 2);
}

/* An excluded tunnel endpoint drops the packets it carries, because the
 * flow record would keep its address as the tunnel's outer endpoint. */
static void test_gre_excluded_outer_endpoint_dropped(void **state)
{
    uint8_t pkt[256];
    uint8_t inner[64];
    size_t inner_len, n;

    (void)state;
    inner_len = make_udp(inner, 5, 40000, 6, 9000, "x", 1);
    n = put_ipv4(pkt, 47, 1, 2, 20 + 4 + inner_len, 0, 0);
    pkt[n++] = 0x00;
    pkt[n++] = 0x00;
    pkt[n++] = 0x08;
    pkt[n++] = 0x00;
    memcpy(pkt + n, inner, inner_len);

    /* Either outer address excluded: no flow. */
    for (int side = 0; side < 2; side++) {
        cap_engine *eng = new_engine(NULL);
        sink_state.excluded[0] = ts_ip(side == 0 ? "10.0.0.1" : "10.0.0.2");
        feed(eng, 1 * SEC, pkt, n + inner_len);
        cap_engine_destroy(&eng);
        assert_int_equal(sink_state.nflows, 0);
        assert_true(sink_state.exclusion_calls > 0);
    }

    /* Another excluded address: the tunneled flow is kept. */
    cap_engine *eng = new_engine(NULL);
    sink_state.excluded[0] = ts_ip("10.0.0.9");
    feed(eng, 1 * SEC, pkt, n + inner_len);
    cap_engine_destroy(&eng);
    assert_int_equal(only_flow()->tunnel_type, FV_TUNNEL_GRE);

    /* In an Ethernet frame from a MAC excluded by the policy, the frame's
     * MACs go with the tunnel's outer addresses: no flow. */
    uint8_t frame[14 + sizeof pkt];
    static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x09};
    memset(frame, 0, 14);
    frame[0] = 0x02;
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x08;
    memcpy(frame + 14, pkt, n + inner_len);
    eng = new_engine(NULL);
    sink_state.has_excluded_mac = true;
    memcpy(sink_state.excluded_mac, mac, 6);
    assert_int_equal(ts_feed(eng, 1, 1 * SEC, frame, 14 + n + inner_len), FV_OK);
    cap_engine_destroy(&eng);
    assert_int_equal(sink_state.nflows, 0);
}

/* Feed one frame of LINKTYPE to a new engine whose sink excludes MAC
 * when it comes with the address 10.0.0.WITH_OCTET (with any address for
 * 0), and return the number of flows it emitted. */
static size_t flows_with_mac_at(int linktype, const uint8_t *frame, size_t len,
                                const uint8_t *mac, uint8_t with_octet)
{
    cap_engine *eng = new_engine(NULL);
    sink_state.has_excluded_mac = true;
    memcpy(sink_state.excluded_mac, mac, 6);
    if (with_octet != 0) {
        char text[16];
        snprintf(text, sizeof text, "10.0.0.%u", with_octet);
        sink_state.excluded_mac_addr = ts_ip(text);
    }
    assert_int_equal(ts_feed(eng, linktype, 1 * SEC, frame, len), FV_OK);
    cap_engine_destroy(&eng);
    return sink_state.nflows;
}

/* As flows_with_mac_at, for an Ethernet frame and MAC with any address. */
static size_t flows_with_excluded_mac(const uint8_t *frame, size_t len, const uint8_t *mac)
{
    return flows_with_mac_at(1, frame, len, mac, 0);
}

/* Write to FRAME an Ethernet frame with UDP 10.0.0.1:50000 ->
 * 10.0.0.2:4789 carrying VXLAN (flags I, VNI 1) and an inner Ethernet
 * frame from INNER_MAC with INNER (IPv4). Returns the frame's length. */
static size_t put_vxlan_frame(uint8_t *frame, const uint8_t *outer_mac, const uint8_t *inner_mac,
                              const uint8_t *inner, size_t inner_len)
{
    uint8_t payload[256];
    size_t payload_len = 8 + 14 + inner_len;

    assert_true(payload_len <= sizeof payload);
    memset(payload, 0, 8 + 14);
    payload[0] = 0x08;
    payload[6] = 0x01;
    payload[8] = 0x02;
    memcpy(payload + 8 + 6, inner_mac, 6);
    payload[8 + 12] = 0x08;
    memcpy(payload + 8 + 14, inner, inner_len);
    memset(frame, 0, 14);
    frame[0] = 0x02;
    memcpy(frame + 6, outer_mac, 6);
    frame[12] = 0x08;
    return 14 + make_udp(frame + 14, 1, 50000, 2, 4789, payload, payload_len);
}

/* Inside VXLAN the inner frame's MACs go with the inner addresses, so a
 * host excluded by MAC is dropped when it sends across the overlay, and
 * the outer frame's MACs still go with the tunnel endpoints. */
static void test_vxlan_excluded_inner_mac_dropped(void **state)
{
    static const uint8_t outer_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    static const uint8_t inner_mac[6] = {0x02, 0, 0, 0, 0, 0x05};
    static const uint8_t other_mac[6] = {0x02, 0, 0, 0, 0, 0x07};
    uint8_t inner[64], frame[320];
    size_t inner_len, n;

    (void)state;
    /* Inner: UDP 10.0.0.5:40000 -> 10.0.0.6:9000 from INNER_MAC, inside
     * VXLAN in a frame from OUTER_MAC. */
    inner_len = make_udp(inner, 5, 40000, 6, 9000, "x", 1);
    n = put_vxlan_frame(frame, outer_mac, inner_mac, inner, inner_len);

    /* Nothing excluded: one VXLAN flow of the inner addresses. */
    cap_engine *eng = new_engine(NULL);
    assert_int_equal(ts_feed(eng, 1, 1 * SEC, frame, n), FV_OK);
    cap_engine_destroy(&eng);
    assert_int_equal(only_flow()->tunnel_type, FV_TUNNEL_VXLAN);
    assert_int_equal(only_flow()->src.addr[3], 5);

    /* The inner source's MAC excluded: no flow. */
    assert_int_equal(flows_with_excluded_mac(frame, n, inner_mac), 0);
    assert_true(sink_state.exclusion_calls > 0);
    /* The outer frame's MAC excluded: no flow either. */
    assert_int_equal(flows_with_excluded_mac(frame, n, outer_mac), 0);
    /* Another MAC excluded: the flow is kept. */
    assert_int_equal(flows_with_excluded_mac(frame, n, other_mac), 1);
    assert_int_equal(only_flow()->tunnel_type, FV_TUNNEL_VXLAN);

    /* Each MAC goes with the addresses of the IP header right after its
     * Ethernet header, and with no other. */
    assert_int_equal(flows_with_mac_at(1, frame, n, inner_mac, 5), 0);
    assert_int_equal(flows_with_mac_at(1, frame, n, inner_mac, 1), 1);
    assert_int_equal(flows_with_mac_at(1, frame, n, outer_mac, 1), 0);
    assert_int_equal(flows_with_mac_at(1, frame, n, outer_mac, 5), 1);
}

/* Count the flows of one frame of LINKTYPE fed to a new engine whose
 * sink excludes the address 10.0.0.EXCLUDED_OCTET (0 for none). */
static size_t flows_with_excluded_address(int linktype, const uint8_t *frame, size_t len,
                                          uint8_t excluded_octet)
{
    cap_engine *eng = new_engine(NULL);
    if (excluded_octet != 0) {
        char text[16];
        snprintf(text, sizeof text, "10.0.0.%u", excluded_octet);
        sink_state.excluded[0] = ts_ip(text);
    }
    assert_int_equal(ts_feed(eng, linktype, 1 * SEC, frame, len), FV_OK);
    cap_engine_destroy(&eng);
    return sink_state.nflows;
}

/* Write to OUT an IPv4 header 10.0.0.SRC -> 10.0.0.DST of protocol 4
 * (IP in IP) followed by INNER. Returns the length written. */
static size_t put_ipip(uint8_t *out, uint8_t src, uint8_t dst, const uint8_t *inner,
                       size_t inner_len)
{
    size_t n = put_ipv4(out, 4, src, dst, 20 + inner_len, 0, 0);
    memcpy(out + n, inner, inner_len);
    return n + inner_len;
}

/* IP in IP in IP: the middle header's addresses are checked too, though
 * the flow record keeps only the innermost and the outermost. */
static void test_nested_tunnel_middle_header_excluded(void **state)
{
    uint8_t inner[64], mid[128], pkt[256];
    size_t inner_len, mid_len, n;

    (void)state;
    /* 10.0.0.1 -> 10.0.0.2 (IPIP) carrying 10.0.0.3 -> 10.0.0.4 (IPIP)
     * carrying UDP 10.0.0.5:40000 -> 10.0.0.6:9000. */
    inner_len = make_udp(inner, 5, 40000, 6, 9000, "x", 1);
    mid_len = put_ipip(mid, 3, 4, inner, inner_len);
    n = put_ipip(pkt, 1, 2, mid, mid_len);

    assert_int_equal(flows_with_excluded_address(LINK_IPV4, pkt, n, 9), 1);
    assert_int_equal(only_flow()->tunnel_type, FV_TUNNEL_IPIP);
    assert_int_equal(only_flow()->src.addr[3], 5);
    assert_int_equal(only_flow()->outer_src.addr[3], 1);
    for (uint8_t octet = 1; octet <= 6; octet++)
        assert_int_equal(flows_with_excluded_address(LINK_IPV4, pkt, n, octet), 0);
}

/* On a PPP link the IP header after PPP is the outermost one: a tunnel
 * inside it keeps that header as its outer endpoints, and an excluded
 * outer address drops the packet. */
static void test_ppp_link_tunnel_outer_excluded(void **state)
{
    uint8_t inner[64], frame[256];
    size_t inner_len, n;

    (void)state;
    inner_len = make_udp(inner, 5, 40000, 6, 9000, "x", 1);
    frame[0] = 0xff;
    frame[1] = 0x03;
    frame[2] = 0x00;
    frame[3] = 0x21;    /* PPP protocol: IPv4 */
    n = 4 + put_ipip(frame + 4, 1, 2, inner, inner_len);

    assert_int_equal(flows_with_excluded_address(LINK_PPP, frame, n, 0), 1);
    assert_int_equal(only_flow()->tunnel_type, FV_TUNNEL_IPIP);
    assert_int_equal(only_flow()->outer_src.addr[3], 1);
    assert_int_equal(only_flow()->outer_dst.addr[3], 2);
    assert_int_equal(flows_with_excluded_address(LINK_PPP, frame, n, 1), 0);
    assert_int_equal(flows_with_excluded_address(LINK_PPP, frame, n, 2), 0);
}

/* A frame from an excluded MAC inside VXLAN that carries IP in IP: its
 * MACs go with the IP header right after it, which is the middle one. */
static void test_vxlan_frame_mac_of_middle_header(void **state)
{
    static const uint8_t outer_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    static const uint8_t inner_mac[6] = {0x02, 0, 0, 0, 0, 0x05};
    static const uint8_t other_mac[6] = {0x02, 0, 0, 0, 0, 0x07};
    uint8_t inner[64], mid[128], frame[320];
    size_t inner_len, mid_len, n;

    (void)state;
    /* Inside the VXLAN frame: 10.0.0.3 -> 10.0.0.4 (IPIP) carrying UDP
     * 10.0.0.5:40000 -> 10.0.0.6:9000. */
    inner_len = make_udp(inner, 5, 40000, 6, 9000, "x", 1);
    mid_len = put_ipip(mid, 3, 4, inner, inner_len);
    n = put_vxlan_frame(frame, outer_mac, inner_mac, mid, mid_len);

    assert_int_equal(flows_with_excluded_mac(frame, n, other_mac), 1);
    assert_int_equal(only_flow()->tunnel_type, FV_TUNNEL_VXLAN);
    assert_int_equal(flows_with_excluded_mac(frame, n, inner_mac), 0);
    assert_int_equal(flows_with_mac_at(1, frame, n, inner_mac, 3), 0);
    assert_int_equal(flows_with_mac_at(1, frame, n, inner_mac, 5), 1);
}

/* A Linux cooked capture (SLL, SLL2) carries the sender's MAC only,
 * which the exclusion check gets with the source address. */
static void test_cooked_capture_sender_mac_excluded(void **state)
{
    static const uint8_t mac[6] = {0x02, 0xee, 0xee, 0xee, 0xee, 0x01};
    uint8_t udp[64], sll[16 + sizeof udp], sll2[20 + sizeof udp];
    size_t udp_len;

    (void)state;
    udp_len = make_udp(udp, 5, 40000, 6, 9000, "x", 1);
    memset(sll, 0, 16);
    sll[3] = 1;     /* ARPHRD_ETHER */
    sll[5] = 6;     /* address length */
    memcpy(sll + 6, mac, 6);
    sll[14] = 0x08; /* protocol: IPv4 */
    memcpy(sll + 16, udp, udp_len);
    memset(sll2, 0, 20);
    sll2[0] = 0x08; /* protocol: IPv4 */
    sll2[9] = 1;    /* ARPHRD_ETHER */
    sll2[11] = 6;   /* address length */
    memcpy(sll2 + 12, mac, 6);
    memcpy(sll2 + 20, udp, udp_len);

    const struct {
        int linktype;
        const uint8_t *frame;
        size_t header;
    } cases[] = {{LINK_LINUX_SLL, sll, 16}, {LINK_LINUX_SLL2, sll2, 20}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cap_engine *eng = new_engine(NULL);
        assert_int_equal(ts_feed(eng, cases[i].linktype, 1 * SEC, cases[i].frame,
                                 cases[i].header + udp_len),
                         FV_OK);
        cap_engine_destroy(&eng);
        assert_int_equal(sink_state.nflows, 1);

        size_t len = cases[i].header + udp_len;
        assert_int_equal(flows_with_mac_at(cases[i].linktype, cases[i].frame, len, mac, 5), 0);
        /* The sender's MAC does not go with the destination. */
        assert_int_equal(flows_with_mac_at(cases[i].linktype, cases[i].frame, len, mac, 6), 1);
    }

    /* A packet the capturing host sent (PACKET_OUTGOING) carries that
     * host's MAC, not the source address's, so it is not used. */
    sll[1] = 4;
    sll2[10] = 4;
    assert_int_equal(flows_with_mac_at(LINK_LINUX_SLL, sll, 16 + udp_len, mac, 5), 1);
    assert_int_equal(flows_with_mac_at(LINK_LINUX_SLL2, sll2, 20 + udp_len, mac, 5), 1);
}

static void test_icmp_error_marks_quoted_flow(void **state)
{
    cap_engine *eng = new_engine(NULL);
    uint8_t probe[64], icmp[128];
    size_t probe_len, n;
    cap_stats st;
    size_t i;
    const cap_flow *udp = NULL, *err = NULL;

    (void)state;
    /* UDP probe 10.0.0.1:40000 -> 10.0.0.2:33434. */
    probe_len = make_udp(probe, 1, 40000, 2, 33434, "p", 1);
    feed(eng, 1 * SEC, probe, probe_len);
    /* ICMP destination unreachable (3), port unreachable (1), from 10.0.0.2
     * to 10.0.0.1: 8-byte ICMP header, then the probe's IP header and its
     * first 8 bytes (the UDP header). */
    n = put_ipv4(icmp, 1, 2, 1, 20 + 8 + 28, 0, 0);
    memset(icmp + n, 0, 8);
    icmp[n] = 3;
    icmp[n + 1] = 1;
    memcpy(icmp + n + 8, probe, 28);
    feed(eng, 1 * SEC + 1, icmp, n + 8 + 28);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.icmp_errors_matched, 1);
    assert_int_equal(st.icmp_errors_unmatched, 0);
    cap_engine_destroy(&eng);

    assert_int_equal(sink_state.nflows, 2);
    for (i = 0; i < sink_state.nflows; i++) {
        if (sink_state.flows[i].proto == 17)
            udp = &sink_state.flows[i];
        else if (sink_state.flows[i].proto == 1)
            err = &sink_state.flows[i];
    }
    assert_non_null(udp);
    assert_non_null(err);
    if (udp == NULL || err == NULL)
        return;
    assert_int_equal(udp->icmp_errors, 1);
    assert_false(udp->icmp_quoted);
    assert_true(err->icmp_quoted);
    assert_int_equal(err->pkts_fwd + err->pkts_rev, 1);
}

/* DNS query for "a.example" type A, 27 bytes: id 0x1234, flags 0x0100
 * (RD), one question; name 1 "a" 7 "example" 0; type 1; class 1. */
static const uint8_t dns_query[27] = {
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 'a', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x00,
    0x00, 0x01, 0x00, 0x01,
};

/* Split the UDP datagram 10.0.0.1:40000 -> 10.0.0.2:53 carrying dns_query
 * (35 bytes with the UDP header) into IPv4 fragments of id 0x77: the
 * first holds bytes 0..15 (MF set, offset 0), the second 16..34 (MF
 * clear, offset 2 in 8-byte units). */
static void make_dns_fragments(uint8_t *first, size_t *first_len, uint8_t *second,
                               size_t *second_len)
{
    uint8_t whole[64];
    size_t n = make_udp(whole, 1, 40000, 2, 53, dns_query, sizeof dns_query);
    size_t body = n - 20;

    put_ipv4(first, 17, 1, 2, 20 + 16, 0x77, 0x2000);
    memcpy(first + 20, whole + 20, 16);
    *first_len = 36;
    put_ipv4(second, 17, 1, 2, 20 + (body - 16), 0x77, 0x0002);
    memcpy(second + 20, whole + 20 + 16, body - 16);
    *second_len = 20 + (body - 16);
}

static void test_fragmented_dns_is_reassembled(void **state)
{
    cap_engine *eng = new_engine(NULL);
    uint8_t a[64], b[64];
    size_t alen, blen;
    cap_stats st;
    const cap_flow *f;

    (void)state;
    make_dns_fragments(a, &alen, b, &blen);
    /* The last fragment arrives first. */
    feed(eng, 1 * SEC, b, blen);
    feed(eng, 1 * SEC + 5, a, alen);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.fragments, 2);
    assert_int_equal(st.frag_reassembled, 1);
    assert_int_equal(st.dns_messages, 1);
    cap_engine_destroy(&eng);

    assert_int_equal(sink_state.ndns, 1);
    assert_string_equal(sink_state.dns[0].qname, "a.example");
    f = only_flow();
    assert_int_equal(f->dport, 53);
    assert_int_equal(f->pkts_fwd, 2);
    assert_int_equal(f->bytes_fwd, alen + blen);
    assert_int_equal(f->first_us, 1 * SEC);
    assert_int_equal(f->app, FV_APP_DNS);
}

static void test_orphan_fragment_counts_in_portless_flow(void **state)
{
    cap_engine *eng = new_engine(NULL);
    uint8_t a[64], b[64];
    size_t alen, blen;
    cap_stats st;
    const cap_flow *f;

    (void)state;
    make_dns_fragments(a, &alen, b, &blen);
    feed(eng, 1 * SEC, b, blen);
    assert_int_equal(sink_state.nflows, 0);
    /* 31 s later the datagram times out; its fragment joins a portless flow. */
    cap_engine_expire(eng, 32 * SEC);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.frag_timeouts, 1);
    cap_engine_destroy(&eng);

    f = only_flow();
    assert_int_equal(f->proto, 17);
    assert_int_equal(f->sport, 0);
    assert_int_equal(f->dport, 0);
    assert_int_equal(f->pkts_fwd, 1);
    assert_int_equal(f->bytes_fwd, blen);
}

static void test_overlapping_fragments_are_not_reassembled(void **state)
{
    cap_engine *eng = new_engine(NULL);
    uint8_t a[64], b[64];
    size_t alen, blen;
    cap_stats st;

    (void)state;
    make_dns_fragments(a, &alen, b, &blen);
    /* Move the second fragment to offset 8 bytes (1 unit): it overlaps the first. */
    b[7] = 0x01;
    feed(eng, 1 * SEC, a, alen);
    feed(eng, 1 * SEC + 1, b, blen);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.frag_invalid, 1);
    assert_int_equal(st.frag_reassembled, 0);
    assert_int_equal(st.dns_messages, 0);
    cap_engine_destroy(&eng);

    assert_int_equal(only_flow()->pkts_fwd, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_sets_syn_initiator_and_rtt),
        cmocka_unit_test(test_synack_first_turns_flow_to_client),
        cmocka_unit_test(test_syn_seen_late_turns_flow),
        cmocka_unit_test(test_midstream_port_rule_picks_client),
        cmocka_unit_test(test_udp_initiator_is_first_sender),
        cmocka_unit_test(test_retransmission_and_reordering_counted),
        cmocka_unit_test(test_sequence_wraparound_is_in_order),
        cmocka_unit_test(test_reordered_http_request_parses),
        cmocka_unit_test(test_first_segment_late_http_parses),
        cmocka_unit_test(test_head_in_small_segments_parses),
        cmocka_unit_test(test_lost_first_segment_gives_up),
        cmocka_unit_test(test_out_of_order_queue_is_bounded),
        cmocka_unit_test(test_active_timeout_marks_continued_records),
        cmocka_unit_test(test_gre_tunnel_keeps_outer_endpoints),
        cmocka_unit_test(test_gre_excluded_outer_endpoint_dropped),
        cmocka_unit_test(test_vxlan_excluded_inner_mac_dropped),
        cmocka_unit_test(test_nested_tunnel_middle_header_excluded),
        cmocka_unit_test(test_ppp_link_tunnel_outer_excluded),
        cmocka_unit_test(test_vxlan_frame_mac_of_middle_header),
        cmocka_unit_test(test_cooked_capture_sender_mac_excluded),
        cmocka_unit_test(test_icmp_error_marks_quoted_flow),
        cmocka_unit_test(test_fragmented_dns_is_reassembled),
        cmocka_unit_test(test_orphan_fragment_counts_in_portless_flow),
        cmocka_unit_test(test_overlapping_fragments_are_not_reassembled),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
