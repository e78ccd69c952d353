/*
 * test_cap_memory.c: the capture engine's memory bound. TCP stream state
 * exists only for flows whose payload a parser buffers, it is freed when
 * parsing or the flow ends, and max_memory_bytes evicts the least
 * recently seen flows (counted) instead of growing.
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

#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* IPv4 + TCP header, 40 bytes: version 4, IHL 5, total length (patched),
 * id 0, DF, TTL 64, protocol 6, addresses (patched); TCP ports, sequence
 * and flags (patched), ack 0, data offset 5, window 0xffff. */
static const uint8_t tcp_template[40] = {
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
    0, 0, 0, 0,
    0, 0, 0, 0,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x50, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Feed one TCP segment from SRC:SPORT to DST:DPORT (IPv4 addresses as
 * host-order numbers). */
static void feed_tcp(cap_engine *eng, uint64_t ts, uint32_t src, uint16_t sport, uint32_t dst,
                     uint16_t dport, uint8_t flags, uint32_t seq, const void *payload, size_t len)
{
    uint8_t pkt[2048];
    size_t total = sizeof tcp_template + len;

    assert_true(total <= sizeof pkt);
    memcpy(pkt, tcp_template, sizeof tcp_template);
    pkt[2] = (uint8_t)(total >> 8);
    pkt[3] = (uint8_t)total;
    put_be32(pkt + 12, src);
    put_be32(pkt + 16, dst);
    pkt[20] = (uint8_t)(sport >> 8);
    pkt[21] = (uint8_t)sport;
    pkt[22] = (uint8_t)(dport >> 8);
    pkt[23] = (uint8_t)dport;
    put_be32(pkt + 24, seq);
    pkt[33] = flags;
    if (len > 0)
        memcpy(pkt + sizeof tcp_template, payload, len);
    assert_int_equal(ts_feed(eng, LINK_IPV4, ts, pkt, total), FV_OK);
}

/* Feed the first fragment (offset 0, MF set) of IPv4 datagram ID from
 * SRC to 10.0.0.1: protocol 17 and LEN bytes of body, the first 8 of
 * them a UDP header 40000 -> 9999. The rest of the datagram never
 * comes. */
static void feed_first_fragment(cap_engine *eng, uint64_t ts, uint32_t src, uint16_t id,
                                size_t len)
{
    uint8_t pkt[2048];
    size_t total = 20 + len;

    assert_true(total <= sizeof pkt && len >= 8 && len % 8 == 0);
    memset(pkt, 0xab, total);
    /* IPv4: version 4, IHL 5, total length, id, flags MF (0x2000) at
     * offset 0, TTL 64, protocol 17, checksum 0, addresses. */
    pkt[0] = 0x45;
    pkt[1] = 0x00;
    pkt[2] = (uint8_t)(total >> 8);
    pkt[3] = (uint8_t)total;
    pkt[4] = (uint8_t)(id >> 8);
    pkt[5] = (uint8_t)id;
    pkt[6] = 0x20;
    pkt[7] = 0x00;
    pkt[8] = 64;
    pkt[9] = 17;
    pkt[10] = pkt[11] = 0;
    put_be32(pkt + 12, src);
    put_be32(pkt + 16, 0x0a000001);
    /* UDP: ports 40000 -> 9999, length 4000 (the whole datagram), checksum 0. */
    pkt[20] = 0x9c;
    pkt[21] = 0x40;
    pkt[22] = 0x27;
    pkt[23] = 0x0f;
    pkt[24] = 0x0f;
    pkt[25] = 0xa0;
    pkt[26] = pkt[27] = 0;
    assert_int_equal(ts_feed(eng, LINK_IPV4, ts, pkt, total), FV_OK);
}

/* A TLS 1.2 record (type 22, length 65) carrying a ClientHello
 * (handshake type 1, length 61): version 0x0303, 32 random bytes of
 * 0xaa, empty session id, cipher suites length 2 (0x1301), one
 * compression method (null). Extensions length 18: server_name (type 0,
 * length 14) with list length 12, host_name (0), name length 9,
 * "t.example". */
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

/* A TLS 1.2 record (type 22, length 44) carrying a ServerHello
 * (handshake type 2, length 40): version 0x0303, 32 random bytes of
 * 0xbb, empty session id, cipher suite 0xc02f, null compression, an
 * empty extensions block. */
static const uint8_t server_hello[49] = {
    0x16, 0x03, 0x03, 0x00, 0x2c,
    0x02, 0x00, 0x00, 0x28,
    0x03, 0x03,
    0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
    0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
    0x00,
    0xc0, 0x2f,
    0x00,
    0x00, 0x00,
};

static test_sink sink_state;

static cap_engine *new_engine(const cap_config *cfg)
{
    cap_sink sink = ts_sink(&sink_state);
    cap_engine *eng = NULL;

    assert_int_equal(cap_engine_create(cfg, &sink, &eng), FV_OK);
    return eng;
}

static void test_syn_only_flows_hold_no_stream_state(void **state)
{
    cap_engine *eng = new_engine(NULL);
    cap_memory mem;
    uint32_t i;

    (void)state;
    for (i = 0; i < 500; i++)
        feed_tcp(eng, 1 * SEC + i, 0xc6120000u + i, 40000, 0x0a010050u, 80, TCP_SYN, 7, NULL, 0);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 500);
    assert_int_equal(mem.stream_states, 0);
    assert_int_equal(mem.stream_bytes, 0);
    /* An entry without stream state costs well under the 904 bytes it
     * took when both stream buffers were inline (400 on x86-64). */
    assert_true(mem.flow_bytes >= 500 * 64);
    assert_true(mem.flow_bytes / mem.flows <= 512);
    assert_true(mem.used_bytes >= mem.flow_bytes + mem.frag_bytes);
    assert_int_equal(mem.limit_bytes, CAP_MEMORY_DEFAULT_BYTES);
    cap_engine_destroy(&eng);
}

static void test_unparsed_payload_holds_no_stream_state(void **state)
{
    cap_engine *eng = new_engine(NULL);
    static const uint8_t opaque[32] = {0x42}; /* no protocol the parsers know */
    cap_memory mem;

    (void)state;
    feed_tcp(eng, 1 * SEC, 0x0a000001, 50000, 0x0a000002, 7000, TCP_SYN, 1, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, 0x0a000001, 50000, 0x0a000002, 7000, TCP_ACK | TCP_PSH, 2, opaque,
             sizeof opaque);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 1);
    assert_int_equal(mem.stream_states, 0);
    cap_engine_destroy(&eng);
}

static void test_tls_stream_state_freed_after_hellos(void **state)
{
    cap_engine *eng = new_engine(NULL);
    test_sink *ts = &sink_state;
    const uint32_t client = 0x0a000001, server = 0x0a000002;
    cap_memory mem;

    (void)state;
    feed_tcp(eng, 1 * SEC, client, 51000, server, 443, TCP_SYN, 10, NULL, 0);
    feed_tcp(eng, 1 * SEC + 1, server, 443, client, 51000, TCP_SYN | TCP_ACK, 500, NULL, 0);
    /* Half of the ClientHello: the stream must hold it. */
    feed_tcp(eng, 1 * SEC + 2, client, 51000, server, 443, TCP_ACK | TCP_PSH, 11, client_hello,
             30);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.stream_states, 1);
    assert_true(mem.stream_bytes > 0);

    feed_tcp(eng, 1 * SEC + 3, client, 51000, server, 443, TCP_ACK | TCP_PSH, 41,
             client_hello + 30, sizeof client_hello - 30);
    /* The ServerHello arrives in two segments, the second one first: it
     * must be held because the SYN-ACK fixed where the server's stream
     * starts, before the stream state existed. */
    feed_tcp(eng, 1 * SEC + 4, server, 443, client, 51000, TCP_ACK | TCP_PSH, 501 + 20,
             server_hello + 20, sizeof server_hello - 20);
    assert_int_equal(ts->ntls, 0);
    feed_tcp(eng, 1 * SEC + 5, server, 443, client, 51000, TCP_ACK | TCP_PSH, 501, server_hello,
             20);
    assert_int_equal(ts->ntls, 1);
    assert_int_equal(ts->tls[0].server_version, 0x0303);
    assert_int_equal(ts->tls[0].server_cipher, 0xc02f);
    assert_string_equal(ts->tls[0].sni, "t.example");

    /* The stream buffers (2 KiB at least) are gone. The sequence ranges
     * of the reordered segment stay with the flow. */
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 1);
    assert_int_equal(mem.stream_states, 0);
    assert_true(mem.stream_bytes < 2048);
    cap_engine_destroy(&eng);
}

static void test_memory_bound_evicts_and_counts(void **state)
{
    cap_config cfg = {.max_memory_bytes = CAP_MEMORY_MIN_BYTES};
    cap_engine *eng = new_engine(&cfg);
    test_sink *ts = &sink_state;
    cap_memory mem;
    cap_stats st;
    uint32_t i;

    (void)state;
    for (i = 0; i < 20000; i++) {
        feed_tcp(eng, 1 * SEC + i, 0xc6120000u + i, 40000, 0x0a010050u, 80, TCP_SYN, 7, NULL, 0);
        cap_engine_memory(eng, &mem);
        assert_true(mem.used_bytes <= mem.limit_bytes);
    }
    cap_engine_stats(eng, &st);
    assert_true(st.flows_evicted_memory > 0);
    assert_int_equal(st.flows_evicted, st.flows_evicted_memory);
    assert_int_equal(st.flows_evicted + mem.flows, 20000);
    /* The sink keeps the first TS_MAX_FLOWS records. */
    assert_int_equal(ts->nflows,
                     st.flows_evicted < TS_MAX_FLOWS ? st.flows_evicted : TS_MAX_FLOWS);
    /* The oldest flow went first. */
    assert_int_equal(ts->flows[0].end_reason, FV_END_EVICT);
    assert_int_equal(ts->flows[0].src.addr[3], 0);
    cap_engine_destroy(&eng);
}

static void test_eviction_frees_stream_state(void **state)
{
    cap_config cfg = {.max_memory_bytes = CAP_MEMORY_MIN_BYTES};
    cap_engine *eng = new_engine(&cfg);
    cap_memory mem;
    cap_stats st;
    uint32_t i, opened = 2000;

    (void)state;
    /* Each connection buffers half a ClientHello and waits for the rest,
     * so every flow keeps its stream state until it is evicted. */
    for (i = 0; i < opened; i++) {
        uint32_t client = 0x0a100000u + i;

        feed_tcp(eng, 1 * SEC + 2 * i, client, 51000, 0x0a000002, 443, TCP_SYN, 10, NULL, 0);
        feed_tcp(eng, 1 * SEC + 2 * i + 1, client, 51000, 0x0a000002, 443, TCP_ACK | TCP_PSH, 11,
                 client_hello, 30);
    }
    cap_engine_memory(eng, &mem);
    cap_engine_stats(eng, &st);
    assert_true(st.flows_evicted_memory > 0);
    assert_true(mem.used_bytes <= mem.limit_bytes);
    assert_int_equal(mem.stream_states, mem.flows);
    assert_int_equal(st.flows_evicted + mem.flows, opened);

    cap_engine_flush(eng);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 0);
    assert_int_equal(mem.stream_states, 0);
    assert_int_equal(mem.stream_bytes, 0);
    assert_int_equal(mem.flow_bytes, 0);
    cap_engine_destroy(&eng);
}

static void test_unfinished_fragments_stay_bounded(void **state)
{
    cap_config cfg = {.max_memory_bytes = CAP_MEMORY_MIN_BYTES};
    cap_engine *eng = new_engine(&cfg);
    cap_memory mem, first;
    cap_stats st;
    uint16_t id;

    (void)state;
    feed_first_fragment(eng, 1 * SEC, 0xc6120001u, 0, 1400);
    cap_engine_memory(eng, &first);
    for (id = 1; id < 200; id++) {
        feed_first_fragment(eng, 1 * SEC + id, 0xc6120001u + id, id, 1400);
        cap_engine_memory(eng, &mem);
        assert_true(mem.used_bytes <= mem.limit_bytes);
        /* Buffers may take a sixteenth of the bound. */
        assert_true(mem.frag_bytes - first.frag_bytes <= mem.limit_bytes / 16);
    }
    cap_engine_stats(eng, &st);
    assert_true(st.frag_evicted > 0);
    cap_engine_destroy(&eng);
}

static void test_lowered_bound_evicts_and_rehashes(void **state)
{
    cap_engine *eng = new_engine(NULL);
    cap_memory mem;
    cap_stats before, after;
    uint32_t i, last = 4999;

    (void)state;
    for (i = 0; i <= last; i++)
        feed_tcp(eng, 1 * SEC + i, 0xc6120000u + i, 40000, 0x0a010050u, 80, TCP_SYN, 7, NULL, 0);
    assert_int_equal(cap_engine_set_memory_limit(eng, CAP_MEMORY_MIN_BYTES - 1), FV_ERR_INVALID);
    assert_int_equal(cap_engine_set_memory_limit(eng, CAP_MEMORY_MIN_BYTES), FV_OK);
    cap_engine_memory(eng, &mem);
    cap_engine_stats(eng, &before);
    assert_int_equal(mem.limit_bytes, CAP_MEMORY_MIN_BYTES);
    assert_true(mem.used_bytes <= mem.limit_bytes);
    assert_true(before.flows_evicted_memory > 0);
    assert_int_equal(before.flows_evicted_memory + mem.flows, last + 1);

    /* The newest flow survived the rehash: its SYN-ACK joins it. */
    feed_tcp(eng, 2 * SEC, 0x0a010050u, 80, 0xc6120000u + last, 40000, TCP_SYN | TCP_ACK, 99,
             NULL, 0);
    cap_engine_stats(eng, &after);
    assert_int_equal(after.flows_created, before.flows_created);
    cap_engine_destroy(&eng);
}

static void test_memory_bound_below_minimum_rejected(void **state)
{
    cap_config cfg = {.max_memory_bytes = CAP_MEMORY_MIN_BYTES - 1};
    cap_sink sink = ts_sink(&sink_state);
    cap_engine *eng = NULL;

    (void)state;
    assert_int_equal(cap_engine_create(&cfg, &sink, &eng), FV_ERR_INVALID);
    assert_null(eng);
    cfg.max_memory_bytes = CAP_MEMORY_MAX_BYTES + 1;
    assert_int_equal(cap_engine_create(&cfg, &sink, &eng), FV_ERR_INVALID);
    assert_null(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syn_only_flows_hold_no_stream_state),
        cmocka_unit_test(test_unparsed_payload_holds_no_stream_state),
        cmocka_unit_test(test_tls_stream_state_freed_after_hellos),
        cmocka_unit_test(test_memory_bound_evicts_and_counts),
        cmocka_unit_test(test_eviction_frees_stream_state),
        cmocka_unit_test(test_unfinished_fragments_stay_bounded),
        cmocka_unit_test(test_lowered_bound_evicts_and_rehashes),
        cmocka_unit_test(test_memory_bound_below_minimum_rejected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
