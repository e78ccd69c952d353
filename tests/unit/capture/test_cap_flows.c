/*
 * test_cap_flows.c: the flow table: bidirectional merge, TCP teardown,
 * idle and active timeouts, eviction at the bound, exclusion, and the
 * application stage over hand-built TCP and UDP packets.
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
#define SEC 1000000ULL

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* IPv4 + TCP template, 40 IP bytes before payload: version 4, IHL 5,
 * total length (patched), id 0, DF, TTL 64, protocol 6, 10.0.0.1 ->
 * 10.0.0.2 (both patched per packet); TCP ports (patched), sequence
 * (patched), ack 0, data offset 5, flags (patched), window 0xffff. */
static const uint8_t tcp_template[40] = {
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
    10, 0, 0, 1,
    10, 0, 0, 2,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
};

/* Build an IPv4 TCP packet from 10.0.0.SRC:SPORT to 10.0.0.DST:DPORT. */
static size_t make_tcp(uint8_t *out, uint8_t src, uint16_t sport, uint8_t dst, uint16_t dport,
                       uint8_t flags, uint32_t seq, const void *payload, size_t len)
{
    size_t total = sizeof tcp_template + len;

    memcpy(out, tcp_template, sizeof tcp_template);
    out[2] = (uint8_t)(total >> 8);
    out[3] = (uint8_t)total;
    out[15] = src;
    out[19] = dst;
    out[20] = (uint8_t)(sport >> 8);
    out[21] = (uint8_t)sport;
    out[22] = (uint8_t)(dport >> 8);
    out[23] = (uint8_t)dport;
    out[24] = (uint8_t)(seq >> 24);
    out[25] = (uint8_t)(seq >> 16);
    out[26] = (uint8_t)(seq >> 8);
    out[27] = (uint8_t)seq;
    out[33] = flags;
    if (len > 0)
        memcpy(out + sizeof tcp_template, payload, len);
    return total;
}

/* IPv4 + UDP template: total length (patched), protocol 17, 10.0.0.SRC ->
 * 10.0.0.DST (patched); UDP ports and length (patched). */
static const uint8_t udp_template[28] = {
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
    10, 0, 0, 1,
    10, 0, 0, 2,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00,
};

static size_t make_udp(uint8_t *out, uint8_t src, uint16_t sport, uint8_t dst, uint16_t dport,
                       const void *payload, size_t len)
{
    size_t total = sizeof udp_template + len;

    memcpy(out, udp_template, sizeof udp_template);
    out[2] = (uint8_t)(total >> 8);
    out[3] = (uint8_t)total;
    out[15] = src;
    out[19] = dst;
    out[20] = (uint8_t)(sport >> 8);
    out[21] = (uint8_t)sport;
    out[22] = (uint8_t)(dport >> 8);
    out[23] = (uint8_t)dport;
    out[24] = (uint8_t)((len + 8) >> 8);
    out[25] = (uint8_t)(len + 8);
    if (len > 0)
        memcpy(out + sizeof udp_template, payload, len);
    return total;
}

static void feed_tcp(cap_engine *eng, uint64_t ts, uint8_t src, uint16_t sport, uint8_t dst,
                     uint16_t dport, uint8_t flags, uint32_t seq, const void *payload, size_t len)
{
    uint8_t pkt[2048];
    size_t n = make_tcp(pkt, src, sport, dst, dport, flags, seq, payload, len);

    assert_int_equal(ts_feed(eng, LINK_IPV4, ts, pkt, n), FV_OK);
}

static void feed_udp(cap_engine *eng, uint64_t ts, uint8_t src, uint16_t sport, uint8_t dst,
                     uint16_t dport, const void *payload, size_t len)
{
    uint8_t pkt[2048];
    size_t n = make_udp(pkt, src, sport, dst, dport, payload, len);

    assert_int_equal(ts_feed(eng, LINK_IPV4, ts, pkt, n), FV_OK);
}

static test_sink sink_state;

static cap_engine *new_engine(const cap_config *cfg)
{
    cap_sink sink = ts_sink(&sink_state);
    cap_engine *eng = NULL;

    assert_int_equal(cap_engine_create(cfg, &sink, &eng), FV_OK);
    return eng;
}

static void test_flow_merges_both_directions(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;

    (void)state;
    feed_udp(eng, 1 * SEC, 1, 5000, 2, 6000, "ab", 2);
    feed_udp(eng, 2 * SEC, 2, 6000, 1, 5000, "cdef", 4);
    feed_udp(eng, 3 * SEC, 2, 6000, 1, 5000, NULL, 0);
    cap_engine_destroy(&eng);

    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].src.addr[3], 1);
    assert_int_equal(ts->flows[0].sport, 5000);
    assert_int_equal(ts->flows[0].pkts_fwd, 1);
    assert_int_equal(ts->flows[0].pkts_rev, 2);
    assert_int_equal(ts->flows[0].bytes_fwd, 30);
    assert_int_equal(ts->flows[0].bytes_rev, 32 + 28);
    assert_int_equal(ts->flows[0].first_us, 1 * SEC);
    assert_int_equal(ts->flows[0].last_us, 3 * SEC);
    assert_int_equal(ts->flows[0].end_reason, FV_END_FLUSH);
}

static void test_tcp_fin_both_ways_ends_flow(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    cap_stats st;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 40000, 2, 80, TCP_SYN, 100, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 2, 80, 1, 40000, TCP_SYN | TCP_ACK, 500, NULL, 0);
    feed_tcp(eng, 1 * SEC + 2, 1, 40000, 2, 80, TCP_ACK, 101, NULL, 0);
    feed_tcp(eng, 1 * SEC + 3, 1, 40000, 2, 80, TCP_FIN | TCP_ACK, 101, NULL, 0);
    feed_tcp(eng, 1 * SEC + 4, 2, 80, 1, 40000, TCP_FIN | TCP_ACK, 501, NULL, 0);

    /* The last ACK arrives during the close linger and joins the flow. */
    feed_tcp(eng, 1 * SEC + 5, 1, 40000, 2, 80, TCP_ACK, 102, NULL, 0);
    assert_int_equal(ts->nflows, 0);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, 1);

    cap_engine_expire(eng, 7 * SEC);
    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].end_reason, FV_END_FIN);
    assert_int_equal(ts->flows[0].pkts_fwd, 4);
    assert_int_equal(ts->flows[0].pkts_rev, 2);
    assert_int_equal(ts->flows[0].tcp_flags_fwd, TCP_SYN | TCP_ACK | TCP_FIN);
    assert_int_equal(ts->flows[0].tcp_flags_rev, TCP_SYN | TCP_ACK | TCP_FIN);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_active, 0);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 1);
}

static void test_tcp_syn_after_close_starts_new_flow(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    cap_stats st;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 40000, 2, 80, TCP_SYN, 100, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 1, 40000, 2, 80, TCP_FIN | TCP_ACK, 101, NULL, 0);
    feed_tcp(eng, 1 * SEC + 2, 2, 80, 1, 40000, TCP_FIN | TCP_ACK, 501, NULL, 0);
    /* Port reuse within the linger: the SYN ends the closed flow first. */
    feed_tcp(eng, 2 * SEC, 1, 40000, 2, 80, TCP_SYN, 900, NULL, 0);
    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].end_reason, FV_END_FIN);
    assert_int_equal(ts->flows[0].pkts_fwd, 2);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, 2);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 2);
    assert_int_equal(ts->flows[1].end_reason, FV_END_FLUSH);
    assert_int_equal(ts->flows[1].pkts_fwd, 1);
}

static void test_tcp_rst_ends_flow(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 40000, 2, 23, TCP_SYN, 7, NULL, 0);
    feed_tcp(eng, 1 * SEC + 10, 2, 23, 1, 40000, TCP_RST | TCP_ACK, 0, NULL, 0);
    assert_int_equal(ts->nflows, 0);
    cap_engine_expire(eng, 10 * SEC);
    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].end_reason, FV_END_RST);
    assert_int_equal(ts->flows[0].pkts_rev, 1);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 1);
}

static void test_idle_timeout_by_packet_time(void **state)
{
    cap_config cfg = {.udp_idle_s = 60, .tcp_idle_s = 300};
    cap_engine *eng = new_engine(&cfg);
    test_sink *ts = &sink_state;

    (void)state;
    feed_udp(eng, 100 * SEC, 1, 5000, 2, 6000, NULL, 0);
    feed_tcp(eng, 100 * SEC, 1, 40000, 2, 22, TCP_ACK, 1, NULL, 0);
    /* 59 s later neither flow is idle. */
    feed_udp(eng, 159 * SEC, 3, 5000, 4, 6000, NULL, 0);
    assert_int_equal(ts->nflows, 0);
    /* 61 s after the first packet the UDP flow (60 s) expires, TCP (300 s) does not. */
    feed_udp(eng, 161 * SEC, 3, 5000, 4, 6000, NULL, 0);
    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].proto, 17);
    assert_int_equal(ts->flows[0].src.addr[3], 1);
    assert_int_equal(ts->flows[0].end_reason, FV_END_IDLE);

    /* cap_engine_expire with an explicit time expires the TCP flow. */
    cap_engine_expire(eng, 400 * SEC);
    assert_int_equal(ts->nflows, 3);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 3);
}

static void test_idle_flow_restarts_on_same_tuple(void **state)
{
    cap_config cfg = {.udp_idle_s = 10};
    cap_engine *eng = new_engine(&cfg);
    test_sink *ts = &sink_state;

    (void)state;
    feed_udp(eng, 1 * SEC, 1, 5000, 2, 6000, NULL, 0);
    /* Same tuple 20 s later, before any expiry pass ran for it. */
    feed_udp(eng, 21 * SEC, 2, 6000, 1, 5000, NULL, 0);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 2);
    assert_int_equal(ts->flows[0].end_reason, FV_END_IDLE);
    /* The new flow's src is the sender of its own first packet. */
    assert_int_equal(ts->flows[1].src.addr[3], 2);
}

static void test_active_timeout_splits_long_flow(void **state)
{
    cap_config cfg = {.udp_idle_s = 60, .active_s = 10};
    cap_engine *eng = new_engine(&cfg);
    test_sink *ts = &sink_state;
    uint64_t pkts = 0;
    cap_stats st;

    (void)state;
    for (uint64_t t = 0; t < 25; t++)
        feed_udp(eng, (1000 + t) * SEC, 1, 5000, 2, 6000, NULL, 0);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, 1);
    assert_int_equal(st.flows_active, 1);
    cap_engine_destroy(&eng);

    assert_int_equal(ts->nflows, 3);
    assert_int_equal(ts->flows[0].end_reason, FV_END_ACTIVE);
    assert_int_equal(ts->flows[1].end_reason, FV_END_ACTIVE);
    assert_int_equal(ts->flows[2].end_reason, FV_END_FLUSH);
    assert_int_equal(ts->flows[0].pkts_fwd, 10);
    assert_true(ts->flows[1].first_us > ts->flows[0].last_us);
    for (size_t i = 0; i < ts->nflows; i++)
        pkts += ts->flows[i].pkts_fwd;
    assert_int_equal(pkts, 25);
}

static void test_eviction_at_bound_drops_least_recent(void **state)
{
    cap_config cfg = {.max_flows = 2};
    cap_engine *eng = new_engine(&cfg);
    test_sink *ts = &sink_state;
    cap_stats st;

    (void)state;
    feed_udp(eng, 1 * SEC, 1, 1000, 2, 53, NULL, 0);
    feed_udp(eng, 2 * SEC, 3, 1000, 4, 53, NULL, 0);
    feed_udp(eng, 3 * SEC, 1, 1000, 2, 53, NULL, 0); /* first flow is now the most recent */
    feed_udp(eng, 4 * SEC, 5, 1000, 6, 53, NULL, 0);
    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].end_reason, FV_END_EVICT);
    assert_int_equal(ts->flows[0].src.addr[3], 3);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_evicted, 1);
    assert_int_equal(st.flows_active, 2);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 3);
}

/* DNS query, id 0xbeef, RD, one question "a.example" type A class IN. */
static const uint8_t dns_query[] = {
    0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 'a', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x00,
    0x00, 0x01, 0x00, 0x01,
};

/* The response to dns_query: QR, RD, RA, RCODE 3 (NXDOMAIN), no answers. */
static const uint8_t dns_response[] = {
    0xbe, 0xef, 0x81, 0x83, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 'a', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x00,
    0x00, 0x01, 0x00, 0x01,
};

static void test_excluded_host_is_counted_nowhere(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    cap_stats st;

    (void)state;
    ts->excluded[0] = ts_ip("10.0.0.2");
    feed_udp(eng, 1 * SEC, 1, 5000, 2, 53, dns_query, sizeof dns_query);
    feed_udp(eng, 1 * SEC, 2, 53, 1, 5000, dns_response, sizeof dns_response);
    feed_tcp(eng, 2 * SEC, 1, 40000, 2, 80, TCP_SYN, 1, NULL, 0);
    cap_engine_stats(eng, &st);
    assert_true(ts->exclusion_calls > 0);
    assert_int_equal(st.packets, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.ip_packets, 0);
    assert_int_equal(st.excluded, 0);
    assert_int_equal(st.flows_created, 0);
    assert_int_equal(st.dns_messages, 0);

    /* A host that is not excluded still gets through. */
    feed_udp(eng, 3 * SEC, 1, 5000, 3, 53, dns_query, sizeof dns_query);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.packets, 1);
    cap_engine_destroy(&eng);
    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].dst.addr[3], 3);
    assert_int_equal(ts->ndns, 1);
}

static void test_udp_dns_client_is_query_sender(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;

    (void)state;
    /* The response is seen first: its sender is still the server. */
    feed_udp(eng, 1 * SEC, 2, 53, 1, 5000, dns_response, sizeof dns_response);
    feed_udp(eng, 2 * SEC, 1, 5000, 2, 53, dns_query, sizeof dns_query);
    cap_engine_destroy(&eng);

    assert_int_equal(ts->ndns, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ts->dns[i].client.addr[3], 1);
        assert_int_equal(ts->dns[i].client_port, 5000);
        assert_int_equal(ts->dns[i].server.addr[3], 2);
        assert_int_equal(ts->dns[i].server_port, 53);
        assert_int_equal(ts->dns[i].transport, 17);
        assert_string_equal(ts->dns[i].qname, "a.example");
        assert_int_equal(ts->dns[i].txid, 0xbeef);
    }
    assert_true(ts->dns[0].is_response);
    assert_int_equal(ts->dns[0].rcode, 3);
    assert_false(ts->dns[1].is_response);
}

static void test_dns_over_tcp_reassembles_length_prefix(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    uint8_t msg[2 + sizeof dns_query];

    (void)state;
    /* 2-byte length prefix, then the query; sent in two segments split
     * inside the question. */
    msg[0] = 0;
    msg[1] = (uint8_t)sizeof dns_query;
    memcpy(msg + 2, dns_query, sizeof dns_query);
    feed_tcp(eng, 1 * SEC, 1, 40000, 2, 53, TCP_SYN, 999, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 2, 53, 1, 40000, TCP_SYN | TCP_ACK, 4999, NULL, 0);
    feed_tcp(eng, 1 * SEC + 2, 1, 40000, 2, 53, TCP_ACK | TCP_PSH, 1000, msg, 10);
    assert_int_equal(ts->ndns, 0);
    feed_tcp(eng, 1 * SEC + 3, 1, 40000, 2, 53, TCP_ACK | TCP_PSH, 1010, msg + 10,
             sizeof msg - 10);
    assert_int_equal(ts->ndns, 1);
    assert_int_equal(ts->dns[0].transport, 6);
    assert_string_equal(ts->dns[0].qname, "a.example");
    /* A retransmission of the second segment adds nothing. */
    feed_tcp(eng, 1 * SEC + 4, 1, 40000, 2, 53, TCP_ACK | TCP_PSH, 1010, msg + 10,
             sizeof msg - 10);
    assert_int_equal(ts->ndns, 1);
    cap_engine_destroy(&eng);
}

static void test_http_requests_on_keepalive_connection(void **state)
{
    static const char req1[] = "GET /a HTTP/1.1\r\nHost: one.example\r\n\r\n";
    static const char req2a[] = "POST /b HTTP/1.1\r\nHo";
    static const char req2b[] = "st: two.example\r\nContent-Length: 0\r\n\r\n";
    /* Responses: 200 with a 5-byte body, then 404 without a body. */
    static const char resp1[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    static const char resp2[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    uint32_t seq = 1;

    (void)state;
    /* No SYN seen: the client is the side with the higher port. */
    feed_tcp(eng, 1 * SEC, 2, 8080, 1, 50000, TCP_ACK, 77, NULL, 0);
    feed_tcp(eng, 2 * SEC, 1, 50000, 2, 8080, TCP_ACK | TCP_PSH, seq, req1, strlen(req1));
    seq += (uint32_t)strlen(req1);
    /* The request waits for its response. */
    assert_int_equal(ts->nhttp, 0);
    feed_tcp(eng, 2 * SEC + 1, 2, 8080, 1, 50000, TCP_ACK | TCP_PSH, 78, resp1, strlen(resp1));
    assert_int_equal(ts->nhttp, 1);
    assert_string_equal(ts->http[0].method, "GET");
    assert_string_equal(ts->http[0].host, "one.example");
    assert_int_equal(ts->http[0].status, 200);
    assert_int_equal(ts->http[0].uri_length, 2);
    assert_int_equal(ts->http[0].client.addr[3], 1);
    assert_int_equal(ts->http[0].server_port, 8080);

    feed_tcp(eng, 3 * SEC, 1, 50000, 2, 8080, TCP_ACK | TCP_PSH, seq, req2a, strlen(req2a));
    seq += (uint32_t)strlen(req2a);
    feed_tcp(eng, 3 * SEC + 1, 1, 50000, 2, 8080, TCP_ACK | TCP_PSH, seq, req2b, strlen(req2b));
    assert_int_equal(ts->nhttp, 1);
    feed_tcp(eng, 3 * SEC + 2, 2, 8080, 1, 50000, TCP_ACK | TCP_PSH,
             78 + (uint32_t)strlen(resp1), resp2, strlen(resp2));
    assert_int_equal(ts->nhttp, 2);
    assert_string_equal(ts->http[1].method, "POST");
    assert_string_equal(ts->http[1].host, "two.example");
    assert_int_equal(ts->http[1].status, 404);
    cap_engine_destroy(&eng);
}

static void test_http_pipelined_requests_skip_bodies(void **state)
{
    /* Three requests in one segment: the POST body "a=1&b=2" (7 bytes,
     * containing no request line) is skipped by its Content-Length. */
    static const char reqs[] = "POST /form HTTP/1.1\r\nHost: p.example\r\n"
                               "User-Agent: curl/8.5.0\r\nContent-Length: 7\r\n\r\na=1&b=2"
                               "GET /x HTTP/1.1\r\nHost: p.example\r\n\r\n"
                               "HEAD /y HTTP/1.1\r\nHost: p.example\r\n\r\n";
    /* Three responses in one segment: 201 with a 3-byte body "abc", 301
     * with none, and a HEAD response whose Content-Length 99 announces a
     * body that is never sent. */
    static const char resps[] = "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc"
                                "HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 50001, 2, 80, TCP_ACK | TCP_PSH, 1, reqs, strlen(reqs));
    assert_int_equal(ts->nhttp, 0);
    feed_tcp(eng, 1 * SEC + 1, 2, 80, 1, 50001, TCP_ACK | TCP_PSH, 500, resps, strlen(resps));
    assert_int_equal(ts->nhttp, 3);
    assert_string_equal(ts->http[0].method, "POST");
    assert_string_equal(ts->http[0].user_agent, "curl/8.5.0");
    assert_int_equal(ts->http[0].uri_length, 5);
    assert_int_equal(ts->http[0].status, 201);
    assert_string_equal(ts->http[1].method, "GET");
    assert_int_equal(ts->http[1].status, 301);
    assert_string_equal(ts->http[2].method, "HEAD");
    assert_int_equal(ts->http[2].status, 200);
    assert_string_equal(ts->http[2].user_agent, "");
    cap_engine_destroy(&eng);
}

static void test_http_unanswered_request_emitted_at_flow_end(void **state)
{
    static const char req[] = "GET /slow HTTP/1.1\r\nHost: s.example\r\n\r\n";
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 50002, 2, 80, TCP_ACK | TCP_PSH, 1, req, strlen(req));
    assert_int_equal(ts->nhttp, 0);
    cap_engine_flush(eng);
    assert_int_equal(ts->nhttp, 1);
    assert_string_equal(ts->http[0].host, "s.example");
    assert_int_equal(ts->http[0].status, 0);
    cap_engine_destroy(&eng);
}

static void test_http_chunked_response_stops_pairing(void **state)
{
    static const char req1[] = "GET /1 HTTP/1.1\r\nHost: c.example\r\n\r\n";
    static const char req2[] = "GET /2 HTTP/1.1\r\nHost: c.example\r\n\r\n";
    /* A chunked response: its length is not in the head. */
    static const char resp1[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n0\r\n\r\n";
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 50003, 2, 80, TCP_ACK | TCP_PSH, 1, req1, strlen(req1));
    feed_tcp(eng, 1 * SEC + 1, 2, 80, 1, 50003, TCP_ACK | TCP_PSH, 900, resp1, strlen(resp1));
    assert_int_equal(ts->nhttp, 1);
    assert_int_equal(ts->http[0].status, 200);
    /* Pairing has stopped: the next request is emitted at once, status 0. */
    feed_tcp(eng, 2 * SEC, 1, 50003, 2, 80, TCP_ACK | TCP_PSH, 1 + (uint32_t)strlen(req1), req2,
             strlen(req2));
    assert_int_equal(ts->nhttp, 2);
    assert_int_equal(ts->http[1].status, 0);
    cap_engine_destroy(&eng);
}

/* TLS 1.2 ClientHello with SNI "t.example", 70 bytes:
 * record header: handshake (0x16), version 3.1, length 65;
 * handshake header: ClientHello (1), length 61;
 * legacy_version 3.3, 32 random bytes, empty session id, cipher suites
 * length 2 (0x1301), one compression method (null);
 * extensions length 18: server_name (type 0, length 14): list length 12,
 * host_name (0), name length 9, "t.example". */
static const uint8_t client_hello[70] = {
    0x16, 0x03, 0x01, 0x00, 0x41,
    0x01, 0x00, 0x00, 0x3d,
    0x03, 0x03,
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
    0x00,
    0x00, 0x02, 0x13, 0x01,
    0x01, 0x00,
    0x00, 0x12,
    0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09,
    't', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
};

static void test_tls_waits_for_whole_client_hello(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    const uint8_t *rec = client_hello;
    cap_stats st;

    (void)state;
    feed_tcp(eng, 1 * SEC, 1, 51000, 2, 8443, TCP_SYN, 10, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 1, 51000, 2, 8443, TCP_ACK | TCP_PSH, 11, rec, 20);
    assert_int_equal(ts->ntls, 0);
    /* An out-of-order segment (a gap before it) is held until the gap fills. */
    feed_tcp(eng, 1 * SEC + 2, 1, 51000, 2, 8443, TCP_ACK | TCP_PSH, 11 + 30, rec + 30,
             sizeof client_hello - 30);
    assert_int_equal(ts->ntls, 0);
    feed_tcp(eng, 1 * SEC + 3, 1, 51000, 2, 8443, TCP_ACK | TCP_PSH, 11 + 20, rec + 20,
             sizeof client_hello - 20);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.tls_hellos, 1);
    assert_int_equal(st.tls_malformed, 0);
    /* The record waits for the ServerHello or the end of the flow. */
    assert_int_equal(ts->ntls, 0);

    /* One record per connection: a second hello (as after a
     * HelloRetryRequest) adds no record of its own. */
    feed_tcp(eng, 1 * SEC + 4, 1, 51000, 2, 8443, TCP_ACK | TCP_PSH, 11 + 70, rec,
             sizeof client_hello);
    assert_int_equal(ts->ntls, 0);

    cap_engine_destroy(&eng);
    assert_int_equal(ts->ntls, 1);
    assert_int_equal(ts->tls[0].version, 0x0303);
    assert_int_equal(ts->tls[0].client.addr[3], 1);
    assert_int_equal(ts->tls[0].server_port, 8443);
    assert_string_equal(ts->tls[0].sni, "t.example");
}

static void test_destroy_accepts_null(void **state)
{
    cap_engine *eng = NULL;

    (void)state;
    cap_engine_destroy(&eng);
    cap_engine_destroy(NULL);
    assert_null(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_merges_both_directions),
        cmocka_unit_test(test_tcp_fin_both_ways_ends_flow),
        cmocka_unit_test(test_tcp_syn_after_close_starts_new_flow),
        cmocka_unit_test(test_tcp_rst_ends_flow),
        cmocka_unit_test(test_idle_timeout_by_packet_time),
        cmocka_unit_test(test_idle_flow_restarts_on_same_tuple),
        cmocka_unit_test(test_active_timeout_splits_long_flow),
        cmocka_unit_test(test_eviction_at_bound_drops_least_recent),
        cmocka_unit_test(test_excluded_host_is_counted_nowhere),
        cmocka_unit_test(test_udp_dns_client_is_query_sender),
        cmocka_unit_test(test_dns_over_tcp_reassembles_length_prefix),
        cmocka_unit_test(test_http_requests_on_keepalive_connection),
        cmocka_unit_test(test_http_pipelined_requests_skip_bodies),
        cmocka_unit_test(test_http_unanswered_request_emitted_at_flow_end),
        cmocka_unit_test(test_http_chunked_response_stops_pairing),
        cmocka_unit_test(test_tls_waits_for_whole_client_hello),
        cmocka_unit_test(test_destroy_accepts_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
