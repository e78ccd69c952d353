/*
 * test_cap_decode.c: link-layer, IP and tunnel decoding, checked through
 * the flow records the engine emits for hand-built frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_test_sink.h"
#include "capture.h"

/* IPv4 + UDP, 32 IP bytes:
 * version 4, IHL 5, total length 32, id 0x1234, no fragment, TTL 64,
 * protocol 17, checksum 0 (not checked), 192.0.2.1 -> 198.51.100.2;
 * UDP 40000 -> 9999, length 12, checksum 0; 4 payload bytes. */
static const uint8_t ipv4_udp[] = {
    0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
    192, 0, 2, 1,
    198, 51, 100, 2,
    0x9c, 0x40, 0x27, 0x0f, 0x00, 0x0c, 0x00, 0x00,
    0xde, 0xad, 0xbe, 0xef,
};

/* IPv6 + UDP, payload length 12 (52 IP bytes): version 6, next header 17,
 * hop limit 64, 2001:db8::1 -> 2001:db8::2; UDP 40000 -> 9999, length 12;
 * 4 payload bytes. */
static const uint8_t ipv6_udp[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x11, 0x40,
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
    0x9c, 0x40, 0x27, 0x0f, 0x00, 0x0c, 0x00, 0x00,
    0xde, 0xad, 0xbe, 0xef,
};

/* Ethernet II: dst 02:00:00:00:00:02, src 02:00:00:00:00:01, type IPv4. */
static const uint8_t eth_ipv4[] = {
    0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
};

/* Feed FRAME once to a fresh engine, flush, and return the sink. */
static void run_one(int linktype, const uint8_t *frame, size_t len, test_sink *ts, cap_stats *st)
{
    cap_sink sink = ts_sink(ts);
    cap_engine *eng = NULL;

    assert_int_equal(cap_engine_create(NULL, &sink, &eng), FV_OK);
    assert_int_equal(ts_feed(eng, linktype, 1000000, frame, len), FV_OK);
    cap_engine_stats(eng, st);
    cap_engine_destroy(&eng);
    assert_null(eng);
}

/* Check that TS contains exactly the IPv4 UDP flow of ipv4_udp. */
static void assert_ipv4_udp_flow(const test_sink *ts)
{
    cap_ip src = ts_ip("192.0.2.1");
    cap_ip dst = ts_ip("198.51.100.2");

    assert_int_equal(ts->nflows, 1);
    assert_int_equal(ts->flows[0].proto, 17);
    assert_memory_equal(ts->flows[0].src.addr, src.addr, 16);
    assert_memory_equal(ts->flows[0].dst.addr, dst.addr, 16);
    assert_int_equal(ts->flows[0].sport, 40000);
    assert_int_equal(ts->flows[0].dport, 9999);
    assert_int_equal(ts->flows[0].pkts_fwd, 1);
    assert_int_equal(ts->flows[0].bytes_fwd, 32);
    assert_int_equal(ts->flows[0].end_reason, FV_END_FLUSH);
}

static void test_ethernet_ipv4_udp_gives_flow_with_macs(void **state)
{
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, eth_ipv4, sizeof eth_ipv4, ipv4_udp, sizeof ipv4_udp);
    const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
    const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02};

    (void)state;
    run_one(1, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
    assert_true(ts.flows[0].has_mac);
    assert_memory_equal(ts.flows[0].src_mac, src_mac, 6);
    assert_memory_equal(ts.flows[0].dst_mac, dst_mac, 6);
    assert_int_equal(ts.flows[0].vlan, 0);
    assert_int_equal(st.packets, 1);
    assert_int_equal(st.ip_packets, 1);
}

static void test_ethernet_padding_is_not_counted(void **state)
{
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, eth_ipv4, sizeof eth_ipv4, ipv4_udp, sizeof ipv4_udp);

    (void)state;
    /* 14 zero bytes of padding after the datagram */
    memset(frame + len, 0, 14);
    run_one(1, frame, len + 14, &ts, &st);
    assert_ipv4_udp_flow(&ts);
}

static void test_qinq_records_outer_vlan(void **state)
{
    /* Ethernet with an 802.1ad tag (VID 100) and an 802.1Q tag (VID 200). */
    static const uint8_t hdr[] = {
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01,
        0x88, 0xa8, 0x00, 0x64, /* 802.1ad, PCP 0, VID 100 */
        0x81, 0x00, 0x00, 0xc8, /* 802.1Q, VID 200 */
        0x08, 0x00,             /* IPv4 */
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, hdr, sizeof hdr, ipv4_udp, sizeof ipv4_udp);

    (void)state;
    run_one(1, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
    assert_int_equal(ts.flows[0].vlan, 100);
}

static void test_mpls_stack_reaches_ipv4(void **state)
{
    static const uint8_t hdr[] = {
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0x47, /* MPLS unicast */
        0x00, 0x01, 0x00, 0x40, /* label 16, TC 0, S 0, TTL 64 */
        0x00, 0x01, 0x11, 0x40, /* label 17, S 1 (bottom of stack), TTL 64 */
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, hdr, sizeof hdr, ipv4_udp, sizeof ipv4_udp);

    (void)state;
    run_one(1, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
}

static void test_pppoe_session_reaches_ipv6(void **state)
{
    static const uint8_t hdr[] = {
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0x64, /* PPPoE session */
        0x11, 0x00,             /* version 1, type 1, code 0 (session data) */
        0x00, 0x2a,             /* session id 42 */
        0x00, 0x36,             /* PPPoE length 54 = 2 (PPP) + 52 */
        0x00, 0x57,             /* PPP protocol IPv6 */
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, hdr, sizeof hdr, ipv6_udp, sizeof ipv6_udp);

    (void)state;
    run_one(1, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].src.family, 6);
    assert_int_equal(ts.flows[0].bytes_fwd, 52);
    assert_int_equal(ts.flows[0].sport, 40000);
}

static void test_linux_sll_and_sll2_reach_ipv4(void **state)
{
    /* SLL: packet type 0 (to us), ARPHRD 1 (Ethernet), address length 6,
     * 8 address bytes, protocol IPv4. */
    static const uint8_t sll[] = {
        0x00, 0x00, 0x00, 0x01, 0x00, 0x06,
        0x02, 0, 0, 0, 0, 0x01, 0x00, 0x00,
        0x08, 0x00,
    };
    /* SLL2: protocol IPv4, reserved, interface index 2, ARPHRD 1, packet
     * type 4 (outgoing), address length 6, 8 address bytes. */
    static const uint8_t sll2[] = {
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x00, 0x01, 0x04, 0x06,
        0x02, 0, 0, 0, 0, 0x01, 0x00, 0x00,
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len;

    (void)state;
    len = ts_cat(frame, sizeof frame, sll, sizeof sll, ipv4_udp, sizeof ipv4_udp);
    run_one(113, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
    assert_false(ts.flows[0].has_mac);

    len = ts_cat(frame, sizeof frame, sll2, sizeof sll2, ipv4_udp, sizeof ipv4_udp);
    run_one(276, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
}

static void test_raw_ip_link_types(void **state)
{
    static test_sink ts;
    cap_stats st;

    (void)state;
    run_one(12, ipv4_udp, sizeof ipv4_udp, &ts, &st);  /* DLT_RAW on Linux */
    assert_ipv4_udp_flow(&ts);
    run_one(101, ipv4_udp, sizeof ipv4_udp, &ts, &st); /* LINKTYPE_RAW */
    assert_ipv4_udp_flow(&ts);
    run_one(228, ipv4_udp, sizeof ipv4_udp, &ts, &st); /* LINKTYPE_IPV4 */
    assert_ipv4_udp_flow(&ts);
    run_one(229, ipv6_udp, sizeof ipv6_udp, &ts, &st); /* LINKTYPE_IPV6 */
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].src.family, 6);

    /* LINKTYPE_IPV6 carrying an IPv4 header is rejected. */
    run_one(229, ipv4_udp, sizeof ipv4_udp, &ts, &st);
    assert_int_equal(ts.nflows, 0);
    assert_int_equal(st.bad_header, 1);
}

static void test_null_and_loop_accept_both_byte_orders(void **state)
{
    static const uint8_t af_inet_le[] = {0x02, 0x00, 0x00, 0x00};   /* AF_INET, little endian */
    static const uint8_t af_inet_be[] = {0x00, 0x00, 0x00, 0x02};   /* AF_INET, big endian */
    static const uint8_t af_inet6_24[] = {0x18, 0x00, 0x00, 0x00};  /* 24 (NetBSD/OpenBSD), LE */
    static const uint8_t af_inet6_28[] = {0x00, 0x00, 0x00, 0x1c};  /* 28 (FreeBSD), BE */
    static const uint8_t af_inet6_30[] = {0x1e, 0x00, 0x00, 0x00};  /* 30 (macOS), LE */
    static const uint8_t af_unknown[] = {0x07, 0x00, 0x00, 0x00};   /* not an IP family */
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len;

    (void)state;
    len = ts_cat(frame, sizeof frame, af_inet_le, 4, ipv4_udp, sizeof ipv4_udp);
    run_one(0, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
    len = ts_cat(frame, sizeof frame, af_inet_be, 4, ipv4_udp, sizeof ipv4_udp);
    run_one(108, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);

    len = ts_cat(frame, sizeof frame, af_inet6_24, 4, ipv6_udp, sizeof ipv6_udp);
    run_one(0, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    len = ts_cat(frame, sizeof frame, af_inet6_28, 4, ipv6_udp, sizeof ipv6_udp);
    run_one(108, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    len = ts_cat(frame, sizeof frame, af_inet6_30, 4, ipv6_udp, sizeof ipv6_udp);
    run_one(0, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].bytes_fwd, 52);

    len = ts_cat(frame, sizeof frame, af_unknown, 4, ipv4_udp, sizeof ipv4_udp);
    run_one(0, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 0);
    assert_int_equal(st.non_ip, 1);
}

static void test_nflog_walks_tlvs_to_payload(void **state)
{
    /* NFLOG header (family AF_INET, version 0, resource id 0), then TLVs
     * in host byte order (this test builds them in the running host's
     * order): type 1 (packet header) of length 8, type 10 (prefix) of
     * length 6 padded to 8, then type 9 (payload) of length 4 + 32. */
    uint8_t frame[128];
    uint16_t v;
    size_t off = 0;
    static test_sink ts;
    cap_stats st;

    (void)state;
    frame[off++] = 2; /* AF_INET */
    frame[off++] = 0; /* version */
    frame[off++] = 0; /* resource id */
    frame[off++] = 0;
    v = 8;
    memcpy(frame + off, &v, 2);
    v = 1;
    memcpy(frame + off + 2, &v, 2);
    memset(frame + off + 4, 0x08, 4); /* hw protocol and hook, not read */
    off += 8;
    v = 6;
    memcpy(frame + off, &v, 2);
    v = 10;
    memcpy(frame + off + 2, &v, 2);
    frame[off + 4] = 'x'; /* prefix "x\0" */
    frame[off + 5] = 0;
    frame[off + 6] = 0; /* padding */
    frame[off + 7] = 0;
    off += 8;
    v = (uint16_t)(4 + sizeof ipv4_udp);
    memcpy(frame + off, &v, 2);
    v = 9;
    memcpy(frame + off + 2, &v, 2);
    memcpy(frame + off + 4, ipv4_udp, sizeof ipv4_udp);
    off += 4 + sizeof ipv4_udp;

    run_one(239, frame, off, &ts, &st);
    assert_ipv4_udp_flow(&ts);
}

static void test_ipv4_options_are_skipped(void **state)
{
    /* IPv4 with IHL 6: one 4-byte option word (four NOPs), total length 36;
     * UDP 40000 -> 9999, length 12; 4 payload bytes. */
    static const uint8_t pkt[] = {
        0x46, 0x00, 0x00, 0x24, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
        192, 0, 2, 1,
        198, 51, 100, 2,
        0x01, 0x01, 0x01, 0x01, /* options: NOP x4 */
        0x9c, 0x40, 0x27, 0x0f, 0x00, 0x0c, 0x00, 0x00,
        0xde, 0xad, 0xbe, 0xef,
    };
    static test_sink ts;
    cap_stats st;

    (void)state;
    run_one(228, pkt, sizeof pkt, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].sport, 40000);
    assert_int_equal(ts.flows[0].dport, 9999);
    assert_int_equal(ts.flows[0].bytes_fwd, 36);
}

static void test_ipv4_rejects_ihl_below_5(void **state)
{
    static test_sink ts;
    cap_stats st;
    uint8_t pkt[sizeof ipv4_udp];

    (void)state;
    memcpy(pkt, ipv4_udp, sizeof pkt);
    pkt[0] = 0x44; /* IHL 4: 16 bytes, below the fixed header */
    run_one(228, pkt, sizeof pkt, &ts, &st);
    assert_int_equal(ts.nflows, 0);
    assert_int_equal(st.bad_header, 1);
}

static void test_ipv6_extension_chain_reaches_udp(void **state)
{
    /* IPv6, payload length 36, next header 0 (hop-by-hop), 2001:db8::1 ->
     * 2001:db8::2; hop-by-hop (next 43, length 0: 8 bytes, PadN);
     * routing (next 60, length 0, type 4, segments left 0);
     * destination options (next 17, length 0, PadN);
     * UDP 40000 -> 9999, length 12; 4 payload bytes. */
    static const uint8_t pkt[] = {
        0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x40,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x2b, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
        0x3c, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
        0x9c, 0x40, 0x27, 0x0f, 0x00, 0x0c, 0x00, 0x00,
        0xde, 0xad, 0xbe, 0xef,
    };
    static test_sink ts;
    cap_stats st;

    (void)state;
    run_one(229, pkt, sizeof pkt, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].proto, 17);
    assert_int_equal(ts.flows[0].sport, 40000);
    assert_int_equal(ts.flows[0].dport, 9999);
    assert_int_equal(ts.flows[0].bytes_fwd, 76);
}

static void test_ipv6_esp_is_terminal(void **state)
{
    /* IPv6, payload length 8, next header 50 (ESP); SPI 0x100, sequence 1. */
    static const uint8_t pkt[] = {
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x32, 0x40,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
    };
    static test_sink ts;
    cap_stats st;

    (void)state;
    run_one(229, pkt, sizeof pkt, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].proto, 50);
    assert_int_equal(ts.flows[0].sport, 0);
    assert_int_equal(ts.flows[0].bytes_fwd, 48);
}

static void test_truncated_headers_are_counted(void **state)
{
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, eth_ipv4, sizeof eth_ipv4, ipv4_udp, sizeof ipv4_udp);

    (void)state;
    /* Ethernet header cut at 10 bytes. */
    run_one(1, frame, 10, &ts, &st);
    assert_int_equal(ts.nflows, 0);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.packets, 1);

    /* IPv4 header cut after 12 of its 20 bytes. */
    run_one(1, frame, 14 + 12, &ts, &st);
    assert_int_equal(ts.nflows, 0);
    assert_int_equal(st.truncated, 1);

    /* UDP header cut after 4 of its 8 bytes. */
    run_one(1, frame, 14 + 20 + 4, &ts, &st);
    assert_int_equal(ts.nflows, 0);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.ip_packets, 0);
    (void)len;
}

static void test_non_ip_and_unknown_link_are_counted(void **state)
{
    /* Ethernet ARP request header (payload omitted). */
    static const uint8_t arp[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
    };
    static test_sink ts;
    cap_stats st;

    (void)state;
    run_one(1, arp, sizeof arp, &ts, &st);
    assert_int_equal(st.non_ip, 1);
    assert_int_equal(ts.nflows, 0);

    run_one(147, ipv4_udp, sizeof ipv4_udp, &ts, &st); /* DLT_USER0 */
    assert_int_equal(st.unsupported_link, 1);
    assert_int_equal(ts.nflows, 0);
}

static void test_ipip_tunnel_keys_inner_header(void **state)
{
    /* Outer IPv4 (IHL 5, total length 52, protocol 4) 203.0.113.1 ->
     * 203.0.113.2, then the inner IPv4 UDP datagram. */
    static const uint8_t outer[] = {
        0x45, 0x00, 0x00, 0x34, 0x00, 0x02, 0x00, 0x00, 0x40, 0x04, 0x00, 0x00,
        203, 0, 113, 1,
        203, 0, 113, 2,
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[128];
    size_t len = ts_cat(frame, sizeof frame, outer, sizeof outer, ipv4_udp, sizeof ipv4_udp);

    (void)state;
    run_one(228, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
}

static void test_gre_and_vxlan_tunnels_key_inner_header(void **state)
{
    /* Outer IPv4, total length 56, protocol 47 (GRE); GRE with no flags,
     * protocol IPv4; inner IPv4 UDP datagram. */
    static const uint8_t gre[] = {
        0x45, 0x00, 0x00, 0x38, 0x00, 0x03, 0x00, 0x00, 0x40, 0x2f, 0x00, 0x00,
        203, 0, 113, 1,
        203, 0, 113, 2,
        0x00, 0x00, 0x08, 0x00,
    };
    /* Outer IPv4, total length 82, protocol 17; UDP 50000 -> 4789 length
     * 62; VXLAN flags I, VNI 1; then Ethernet + the inner datagram. */
    static const uint8_t vxlan[] = {
        0x45, 0x00, 0x00, 0x52, 0x00, 0x04, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
        203, 0, 113, 1,
        203, 0, 113, 2,
        0xc3, 0x50, 0x12, 0xb5, 0x00, 0x3e, 0x00, 0x00,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[160];
    size_t len;

    (void)state;
    len = ts_cat(frame, sizeof frame, gre, sizeof gre, ipv4_udp, sizeof ipv4_udp);
    run_one(228, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);

    len = ts_cat(frame, sizeof frame, vxlan, sizeof vxlan, ipv4_udp, sizeof ipv4_udp);
    run_one(228, frame, len, &ts, &st);
    assert_ipv4_udp_flow(&ts);
}

static void test_teredo_needs_exact_ipv6_length(void **state)
{
    /* Outer IPv4, total length 80, UDP 3544 -> 40000, length 60, then the
     * 52-byte IPv6 datagram: a Teredo tunnel. */
    static const uint8_t teredo[] = {
        0x45, 0x00, 0x00, 0x50, 0x00, 0x05, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,
        203, 0, 113, 1,
        203, 0, 113, 2,
        0x0d, 0xd8, 0x9c, 0x40, 0x00, 0x3c, 0x00, 0x00,
    };
    static test_sink ts;
    cap_stats st;
    uint8_t frame[160];
    size_t len;

    (void)state;
    len = ts_cat(frame, sizeof frame, teredo, sizeof teredo, ipv6_udp, sizeof ipv6_udp);
    run_one(228, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].src.family, 6);

    /* With the IPv6 payload length off by one it stays an outer UDP flow. */
    frame[sizeof teredo + 5] = 0x0d;
    run_one(228, frame, len, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].src.family, 4);
    assert_int_equal(ts.flows[0].sport, 3544);
}

static void test_first_fragment_gives_ports_to_later_ones(void **state)
{
    /* First fragment: IPv4 total length 28, id 0x0777, MF set, offset 0,
     * protocol 17; UDP 40000 -> 9999, UDP length 16 (8 bytes follow later). */
    static const uint8_t first[] = {
        0x45, 0x00, 0x00, 0x1c, 0x07, 0x77, 0x20, 0x00, 0x40, 0x11, 0x00, 0x00,
        192, 0, 2, 1,
        198, 51, 100, 2,
        0x9c, 0x40, 0x27, 0x0f, 0x00, 0x10, 0x00, 0x00,
    };
    /* Last fragment: total length 28, id 0x0777, offset 1 (8 bytes), MF clear;
     * 8 bytes of UDP payload. */
    static const uint8_t last[] = {
        0x45, 0x00, 0x00, 0x1c, 0x07, 0x77, 0x00, 0x01, 0x40, 0x11, 0x00, 0x00,
        192, 0, 2, 1,
        198, 51, 100, 2,
        1, 2, 3, 4, 5, 6, 7, 8,
    };
    /* A non-first fragment of another datagram (id 0x0888) whose first
     * fragment was never seen. */
    static const uint8_t orphan[] = {
        0x45, 0x00, 0x00, 0x1c, 0x08, 0x88, 0x00, 0x01, 0x40, 0x11, 0x00, 0x00,
        192, 0, 2, 1,
        198, 51, 100, 2,
        1, 2, 3, 4, 5, 6, 7, 8,
    };
    static test_sink ts;
    cap_sink sink = ts_sink(&ts);
    cap_engine *eng = NULL;
    cap_stats st;

    (void)state;
    assert_int_equal(cap_engine_create(NULL, &sink, &eng), FV_OK);
    assert_int_equal(ts_feed(eng, 228, 1000000, first, sizeof first), FV_OK);
    assert_int_equal(ts_feed(eng, 228, 1000001, last, sizeof last), FV_OK);
    assert_int_equal(ts_feed(eng, 228, 1000002, orphan, sizeof orphan), FV_OK);
    cap_engine_stats(eng, &st);
    cap_engine_destroy(&eng);

    assert_int_equal(st.fragments, 3);
    assert_int_equal(ts.nflows, 2);
    for (size_t i = 0; i < ts.nflows; i++) {
        if (ts.flows[i].sport == 40000) {
            assert_int_equal(ts.flows[i].pkts_fwd, 2);
            assert_int_equal(ts.flows[i].bytes_fwd, 56);
        } else {
            assert_int_equal(ts.flows[i].sport, 0);
            assert_int_equal(ts.flows[i].dport, 0);
            assert_int_equal(ts.flows[i].pkts_fwd, 1);
        }
    }
}

static void test_icmp_records_type_and_code(void **state)
{
    /* IPv4 total length 28, protocol 1; ICMP echo request (type 8, code 0),
     * id 1, sequence 1. */
    static const uint8_t pkt[] = {
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x09, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00,
        192, 0, 2, 1,
        198, 51, 100, 2,
        0x08, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
    };
    static test_sink ts;
    cap_stats st;

    (void)state;
    run_one(228, pkt, sizeof pkt, &ts, &st);
    assert_int_equal(ts.nflows, 1);
    assert_int_equal(ts.flows[0].proto, 1);
    assert_int_equal(ts.flows[0].icmp_type, 8);
    assert_int_equal(ts.flows[0].icmp_code, 0);
    assert_int_equal(ts.flows[0].sport, 0);
    assert_int_equal(ts.flows[0].dport, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ethernet_ipv4_udp_gives_flow_with_macs),
        cmocka_unit_test(test_ethernet_padding_is_not_counted),
        cmocka_unit_test(test_qinq_records_outer_vlan),
        cmocka_unit_test(test_mpls_stack_reaches_ipv4),
        cmocka_unit_test(test_pppoe_session_reaches_ipv6),
        cmocka_unit_test(test_linux_sll_and_sll2_reach_ipv4),
        cmocka_unit_test(test_raw_ip_link_types),
        cmocka_unit_test(test_null_and_loop_accept_both_byte_orders),
        cmocka_unit_test(test_nflog_walks_tlvs_to_payload),
        cmocka_unit_test(test_ipv4_options_are_skipped),
        cmocka_unit_test(test_ipv4_rejects_ihl_below_5),
        cmocka_unit_test(test_ipv6_extension_chain_reaches_udp),
        cmocka_unit_test(test_ipv6_esp_is_terminal),
        cmocka_unit_test(test_truncated_headers_are_counted),
        cmocka_unit_test(test_non_ip_and_unknown_link_are_counted),
        cmocka_unit_test(test_ipip_tunnel_keys_inner_header),
        cmocka_unit_test(test_gre_and_vxlan_tunnels_key_inner_header),
        cmocka_unit_test(test_teredo_needs_exact_ipv6_length),
        cmocka_unit_test(test_first_fragment_gives_ports_to_later_ones),
        cmocka_unit_test(test_icmp_records_type_and_code),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
