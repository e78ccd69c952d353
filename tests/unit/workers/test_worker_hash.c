/*
 * test_worker_hash: cap_flow_hash, which picks the worker thread of a
 * frame when a capture file is read with --workers, sends both
 * directions, every fragment and the ICMP errors of a flow to one worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <pcap/dlt.h>

#include "capture.h"

#define IPV4_PROTO_ICMP 1
#define IPV4_PROTO_TCP 6
#define IPV4_PROTO_UDP 17

/* Write an Ethernet II header with EtherType TYPE at F. */
static size_t put_ethernet(uint8_t *f, uint16_t type)
{
    static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
    memcpy(f, macs, sizeof macs);
    f[12] = (uint8_t)(type >> 8);
    f[13] = (uint8_t)type;
    return 14;
}

/* Write a 20-byte IPv4 header from SRC to DST with PROTO, total length
 * TOTAL and the fragment field FRAG (flags and offset in 8-byte units). */
static size_t put_ipv4(uint8_t *f, const uint8_t src[4], const uint8_t dst[4], uint8_t proto,
                       uint16_t total, uint16_t frag)
{
    memset(f, 0, 20);
    f[0] = 0x45;                    /* version 4, header 5 words */
    f[2] = (uint8_t)(total >> 8);
    f[3] = (uint8_t)total;
    f[4] = 0x12;                    /* identification 0x1234 */
    f[5] = 0x34;
    f[6] = (uint8_t)(frag >> 8);
    f[7] = (uint8_t)frag;
    f[8] = 64;                      /* TTL */
    f[9] = proto;
    memcpy(f + 12, src, 4);
    memcpy(f + 16, dst, 4);
    return 20;
}

/* Write 8 bytes of a UDP header (or the first 8 of TCP: ports and sequence
 * number) with ports SPORT and DPORT. */
static size_t put_ports(uint8_t *f, uint16_t sport, uint16_t dport)
{
    memset(f, 0, 8);
    f[0] = (uint8_t)(sport >> 8);
    f[1] = (uint8_t)sport;
    f[2] = (uint8_t)(dport >> 8);
    f[3] = (uint8_t)dport;
    f[5] = 8;                       /* UDP length 8 */
    return 8;
}

/* Ethernet + IPv4 + UDP header from SRC:SPORT to DST:DPORT. */
static uint32_t udp_hash(const uint8_t src[4], uint16_t sport, const uint8_t dst[4],
                         uint16_t dport)
{
    uint8_t f[64];
    size_t n = put_ethernet(f, 0x0800);
    n += put_ipv4(f + n, src, dst, IPV4_PROTO_UDP, 28, 0);
    n += put_ports(f + n, sport, dport);
    return cap_flow_hash(DLT_EN10MB, f, (uint32_t)n);
}

static const uint8_t host_a[4] = {192, 0, 2, 10};
static const uint8_t host_b[4] = {198, 51, 100, 20};
static const uint8_t router[4] = {203, 0, 113, 1};

static void test_hash_same_both_directions(void **state)
{
    (void)state;
    assert_int_equal(udp_hash(host_a, 40000, host_b, 53), udp_hash(host_b, 53, host_a, 40000));
}

static void test_hash_tcp_same_both_directions(void **state)
{
    (void)state;
    uint8_t fwd[80], rev[80];
    /* Ethernet + IPv4 (proto 6) + a 20-byte TCP header, SYN from A:51000
     * to B:443 and SYN-ACK back. */
    size_t n = put_ethernet(fwd, 0x0800);
    n += put_ipv4(fwd + n, host_a, host_b, IPV4_PROTO_TCP, 40, 0);
    n += put_ports(fwd + n, 51000, 443);
    memset(fwd + n, 0, 12);
    fwd[n + 4] = 0x50;              /* data offset 5 words */
    fwd[n + 5] = 0x02;              /* SYN */
    n += 12;
    size_t m = put_ethernet(rev, 0x0800);
    m += put_ipv4(rev + m, host_b, host_a, IPV4_PROTO_TCP, 40, 0);
    m += put_ports(rev + m, 443, 51000);
    memset(rev + m, 0, 12);
    rev[m + 4] = 0x50;
    rev[m + 5] = 0x12;              /* SYN, ACK */
    m += 12;
    assert_int_equal(cap_flow_hash(DLT_EN10MB, fwd, (uint32_t)n),
                     cap_flow_hash(DLT_EN10MB, rev, (uint32_t)m));
}

/* A non-first fragment carries no ports; it must meet the first one. */
static void test_hash_fragment_meets_its_flow(void **state)
{
    (void)state;
    uint8_t f[64];
    size_t n = put_ethernet(f, 0x0800);
    /* Offset 185 (1480 bytes), no more fragments: 8 payload bytes follow. */
    n += put_ipv4(f + n, host_a, host_b, IPV4_PROTO_UDP, 28, 185);
    memset(f + n, 0xab, 8);
    n += 8;
    assert_int_equal(cap_flow_hash(DLT_EN10MB, f, (uint32_t)n),
                     udp_hash(host_a, 40000, host_b, 53));
}

/* ICMP port unreachable from SENDER to A quoting A:40000 -> B:53. */
static uint32_t icmp_error_hash(const uint8_t sender[4])
{
    uint8_t f[96];
    size_t n = put_ethernet(f, 0x0800);
    n += put_ipv4(f + n, sender, host_a, IPV4_PROTO_ICMP, 20 + 8 + 28, 0);
    f[n] = 3;                       /* type 3: destination unreachable */
    f[n + 1] = 3;                   /* code 3: port unreachable */
    memset(f + n + 2, 0, 6);        /* checksum, unused */
    n += 8;
    n += put_ipv4(f + n, host_a, host_b, IPV4_PROTO_UDP, 28, 0);   /* the quoted header */
    n += put_ports(f + n, 40000, 53);
    return cap_flow_hash(DLT_EN10MB, f, (uint32_t)n);
}

static void test_hash_icmp_error_meets_quoted_flow(void **state)
{
    (void)state;
    uint32_t flow = udp_hash(host_a, 40000, host_b, 53);
    assert_int_equal(icmp_error_hash(host_b), flow);
    assert_int_equal(icmp_error_hash(router), flow);
}

static void test_hash_non_ip_is_zero(void **state)
{
    (void)state;
    uint8_t f[42];
    size_t n = put_ethernet(f, 0x0806);     /* ARP */
    memset(f + n, 0, sizeof f - n);
    assert_int_equal(cap_flow_hash(DLT_EN10MB, f, (uint32_t)sizeof f), 0);
    /* A frame cut inside the IPv4 header has no addresses either. */
    uint8_t cut[24];
    n = put_ethernet(cut, 0x0800);
    memset(cut + n, 0x45, sizeof cut - n);
    assert_int_equal(cap_flow_hash(DLT_EN10MB, cut, (uint32_t)sizeof cut), 0);
}

/* 1,000 host pairs from one client network to many servers spread
 * roughly evenly over two and over three workers. */
static void test_hash_spreads_host_pairs(void **state)
{
    (void)state;
    unsigned two[2] = {0, 0}, three[3] = {0, 0, 0};
    for (unsigned i = 0; i < 1000; i++) {
        uint8_t client[4] = {10, 1, (uint8_t)(i / 250), (uint8_t)(i % 250 + 1)};
        uint8_t server[4] = {198, 18, (uint8_t)(i % 7), (uint8_t)(i % 13 + 1)};
        uint32_t h = udp_hash(client, 50000, server, 443);
        two[h % 2]++;
        three[h % 3]++;
    }
    for (unsigned i = 0; i < 2; i++) {
        assert_true(two[i] > 400);
        assert_true(two[i] < 600);
    }
    for (unsigned i = 0; i < 3; i++) {
        assert_true(three[i] > 250);
        assert_true(three[i] < 420);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_same_both_directions),
        cmocka_unit_test(test_hash_tcp_same_both_directions),
        cmocka_unit_test(test_hash_fragment_meets_its_flow),
        cmocka_unit_test(test_hash_icmp_error_meets_quoted_flow),
        cmocka_unit_test(test_hash_non_ip_is_zero),
        cmocka_unit_test(test_hash_spreads_host_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
