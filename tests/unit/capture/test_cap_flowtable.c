/*
 * test_cap_flowtable.c: the capture engine's flow hash table with
 * thousands of flows, enough for chains of several entries. Every flow
 * is found from either direction, ended flows leave their chains, freed
 * entries come back clean when reused, and eviction by the flow bound
 * goes oldest first.
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

/* Flows per test: more than the spare entries the engine keeps (1024),
 * and below TS_MAX_FLOWS so that the sink keeps every record. */
#define NFLOWS 3000u

/* IPv4 + UDP header, 28 bytes: version 4, IHL 5, total length 28, id 0,
 * DF, TTL 64, protocol 17, addresses (patched); UDP ports (patched),
 * length 8, checksum 0. No payload, so no parser runs. */
static const uint8_t udp_template[28] = {
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
    0, 0, 0, 0,
    0, 0, 0, 0,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00,
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Feed one empty UDP datagram SRC:SPORT -> DST:DPORT (IPv4 addresses as
 * host-order numbers). */
static void feed_udp(cap_engine *eng, uint64_t ts, uint32_t src, uint16_t sport, uint32_t dst,
                     uint16_t dport)
{
    uint8_t pkt[sizeof udp_template];

    memcpy(pkt, udp_template, sizeof pkt);
    put_be32(pkt + 12, src);
    put_be32(pkt + 16, dst);
    pkt[20] = (uint8_t)(sport >> 8);
    pkt[21] = (uint8_t)sport;
    pkt[22] = (uint8_t)(dport >> 8);
    pkt[23] = (uint8_t)dport;
    assert_int_equal(ts_feed(eng, LINK_IPV4, ts, pkt, sizeof pkt), FV_OK);
}

/* Flow I: client 198.18.0.0 + I, port 40000 + I % 1000, to 10.1.0.53:53. */
static uint32_t client_of(uint32_t i)
{
    return 0xc6120000u + i;
}

static uint16_t port_of(uint32_t i)
{
    return (uint16_t)(40000u + i % 1000u);
}

static void feed_query(cap_engine *eng, uint64_t ts, uint32_t i)
{
    feed_udp(eng, ts, client_of(i), port_of(i), 0x0a010035u, 53);
}

static void feed_reply(cap_engine *eng, uint64_t ts, uint32_t i)
{
    feed_udp(eng, ts, 0x0a010035u, 53, client_of(i), port_of(i));
}

/* Host-order IPv4 address of A. */
static uint32_t ipv4_of(const cap_ip *a)
{
    return ((uint32_t)a->addr[0] << 24) | ((uint32_t)a->addr[1] << 16) |
           ((uint32_t)a->addr[2] << 8) | a->addr[3];
}

static test_sink sink_state;

static cap_engine *new_engine(const cap_config *cfg)
{
    cap_sink sink = ts_sink(&sink_state);
    cap_engine *eng = NULL;

    assert_int_equal(cap_engine_create(cfg, &sink, &eng), FV_OK);
    return eng;
}

static void test_every_flow_found_both_ways(void **state)
{
    cap_engine *eng = new_engine(NULL);
    cap_stats st;
    uint32_t i;
    size_t k;

    (void)state;
    for (i = 0; i < NFLOWS; i++)
        feed_query(eng, 1 * SEC + i, i);
    /* Replies come in reverse order, and each must join its own flow. */
    for (i = NFLOWS; i-- > 0;)
        feed_reply(eng, 2 * SEC + i, i);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, NFLOWS);

    cap_engine_flush(eng);
    assert_int_equal(sink_state.nflows, NFLOWS);
    for (k = 0; k < sink_state.nflows; k++) {
        const cap_flow *f = &sink_state.flows[k];

        assert_int_equal(f->pkts_fwd, 1);
        assert_int_equal(f->pkts_rev, 1);
        assert_int_equal(f->dport, 53);
        /* src is the first sender, the client. Its reply came 1 s later. */
        uint32_t client = ipv4_of(&f->src) - 0xc6120000u;
        assert_true(client < NFLOWS);
        assert_int_equal(f->sport, port_of(client));
        assert_int_equal(f->last_us - f->first_us, 1 * SEC);
    }
    cap_engine_destroy(&eng);
}

static void test_expired_flows_leave_the_table(void **state)
{
    cap_config cfg = {.udp_idle_s = 60};
    cap_engine *eng = new_engine(&cfg);
    cap_memory mem;
    cap_stats st;
    uint32_t i;

    (void)state;
    for (i = 0; i < NFLOWS; i++) {
        feed_query(eng, 1 * SEC + i, i);
        feed_reply(eng, 1 * SEC + NFLOWS + i, i);
    }
    cap_engine_expire(eng, 100 * SEC);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 0);
    assert_int_equal(mem.flow_bytes, 0);
    assert_int_equal(sink_state.nflows, NFLOWS);

    /* Every chain lost its entries, so the same tuples start new flows. */
    for (i = 0; i < NFLOWS; i++)
        feed_query(eng, 101 * SEC + i, i);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, 2 * NFLOWS);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, NFLOWS);

    /* Reused entries start clean: no reply, no earlier times. */
    sink_state.nflows = 0;
    cap_engine_flush(eng);
    assert_int_equal(sink_state.nflows, NFLOWS);
    for (size_t k = 0; k < sink_state.nflows; k++) {
        const cap_flow *f = &sink_state.flows[k];

        assert_int_equal(f->pkts_fwd, 1);
        assert_int_equal(f->pkts_rev, 0);
        assert_int_equal(f->bytes_rev, 0);
        assert_true(f->first_us >= 101 * SEC);
        assert_int_equal(f->first_us, f->last_us);
        assert_int_equal(f->end_reason, FV_END_FLUSH);
    }
    cap_engine_destroy(&eng);
}

/* Feed a reply to every flow I < N with I % 3 == GROUP, at TS. */
static void reply_group(cap_engine *eng, uint64_t ts, uint32_t n, uint32_t group)
{
    for (uint32_t i = group; i < n; i += 3)
        feed_reply(eng, ts + i, i);
}

static void test_crowded_chains_unlink_anywhere(void **state)
{
    /* 1023 flows in the 1024 buckets of a 1024-flow bound: many chains
     * hold two to five entries. Group g is flows with I % 3 == g,
     * inserted in the order 0, 1, 2, so in each chain group 2 is nearest
     * the bucket and group 0 farthest. */
    cap_config cfg = {.max_flows = 1024, .udp_idle_s = 60};
    cap_engine *eng = new_engine(&cfg);
    const uint32_t n = 1023;
    cap_memory mem;
    cap_stats st;
    uint32_t g, i;
    size_t k;

    (void)state;
    for (g = 0; g < 3; g++) {
        for (i = g; i < n; i += 3)
            feed_query(eng, (1 + 10 * g) * SEC + i, i);
    }
    reply_group(eng, 55 * SEC, n, 0);
    reply_group(eng, 55 * SEC, n, 2);

    /* Group 1, in the middle of the chains, is idle since 11 s. */
    cap_engine_expire(eng, 100 * SEC);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 2 * n / 3);
    assert_int_equal(sink_state.nflows, n / 3);
    for (k = 0; k < sink_state.nflows; k++)
        assert_int_equal((ipv4_of(&sink_state.flows[k].src) - 0xc6120000u) % 3, 1);

    /* Groups 0 and 2 are still found; group 2, nearest the buckets, then
     * goes idle and ends. */
    reply_group(eng, 101 * SEC, n, 0);
    reply_group(eng, 101 * SEC, n, 2);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, n);
    reply_group(eng, 140 * SEC, n, 0);
    sink_state.nflows = 0;
    cap_engine_expire(eng, 170 * SEC);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, n / 3);
    assert_int_equal(sink_state.nflows, n / 3);
    for (k = 0; k < sink_state.nflows; k++)
        assert_int_equal((ipv4_of(&sink_state.flows[k].src) - 0xc6120000u) % 3, 2);

    /* Group 0, now alone in the chains, is found; groups 1 and 2 start
     * new flows. */
    reply_group(eng, 171 * SEC, n, 0);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, n);
    for (i = 0; i < n; i++) {
        if (i % 3 != 0)
            feed_query(eng, 172 * SEC + i, i);
    }
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, n + 2 * n / 3);

    /* Once every flow ended, no chain may lead to an ended entry: each
     * tuple starts a new flow. */
    cap_engine_expire(eng, 1000 * SEC);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, 0);
    for (i = 0; i < n; i++)
        feed_query(eng, 1001 * SEC + i, i);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, 2 * n + 2 * n / 3);
    cap_engine_memory(eng, &mem);
    assert_int_equal(mem.flows, n);
    cap_engine_destroy(&eng);
}

static void test_flow_bound_evicts_oldest_first(void **state)
{
    cap_config cfg = {.max_flows = 1500};
    cap_engine *eng = new_engine(&cfg);
    cap_memory mem;
    cap_stats st;
    uint32_t i;
    size_t k;

    (void)state;
    for (i = 0; i < NFLOWS; i++)
        feed_query(eng, 1 * SEC + i, i);
    cap_engine_memory(eng, &mem);
    cap_engine_stats(eng, &st);
    assert_int_equal(mem.flows, 1500);
    assert_int_equal(st.flows_evicted, NFLOWS - 1500);
    assert_int_equal(st.flows_evicted_memory, 0);

    /* The oldest flows went first, in the order they were seen. */
    assert_int_equal(sink_state.nflows, NFLOWS - 1500);
    for (k = 0; k < sink_state.nflows; k++) {
        assert_int_equal(ipv4_of(&sink_state.flows[k].src), client_of((uint32_t)k));
        assert_int_equal(sink_state.flows[k].end_reason, FV_END_EVICT);
    }

    /* The newest flows are still in the table. */
    feed_reply(eng, 2 * SEC, NFLOWS - 1);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, NFLOWS);
    cap_engine_destroy(&eng);
}

static void test_lowered_bound_keeps_flows_found(void **state)
{
    cap_engine *eng = new_engine(NULL);
    cap_memory mem;
    cap_stats st;
    uint32_t i;

    (void)state;
    for (i = 0; i < NFLOWS; i++)
        feed_query(eng, 1 * SEC + i, i);
    assert_int_equal(cap_engine_set_memory_limit(eng, CAP_MEMORY_MIN_BYTES), FV_OK);
    cap_engine_memory(eng, &mem);
    assert_true(mem.used_bytes <= mem.limit_bytes);
    /* 1 MiB has room for fewer than 3000 entries of about 400 bytes. */
    assert_true(mem.flows > 0);
    assert_true(mem.flows < NFLOWS);

    /* The survivors, the newest flows, are found after the rehash. */
    cap_engine_stats(eng, &st);
    uint64_t created = st.flows_created;
    for (i = NFLOWS - (uint32_t)mem.flows; i < NFLOWS; i++)
        feed_reply(eng, 2 * SEC + i, i);
    cap_engine_stats(eng, &st);
    assert_int_equal(st.flows_created, created);
    cap_engine_destroy(&eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_flow_found_both_ways),
        cmocka_unit_test(test_expired_flows_leave_the_table),
        cmocka_unit_test(test_crowded_chains_unlink_anywhere),
        cmocka_unit_test(test_flow_bound_evicts_oldest_first),
        cmocka_unit_test(test_lowered_bound_keeps_flows_found),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
