/*
 * test_collect.c: the NetFlow v5, v9 and IPFIX decoder on hand-built
 * datagrams: records to flows, templates per exporter and domain,
 * withdrawal, expiry, refresh, sequence gaps, sampling, limits and
 * malformed lengths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collect.h"

#define MAX_FLOWS 16

/* Flows the collector emitted, in order. */
typedef struct flow_log {
    cap_flow flows[MAX_FLOWS];
    size_t count;
} flow_log;

static void keep_flow(void *ctx, const cap_flow *flow)
{
    flow_log *log = ctx;
    if (log->count < MAX_FLOWS)
        log->flows[log->count++] = *flow;
}

/* 192.0.2.1, the exporter of every datagram unless a test names another. */
static const cap_ip EXPORTER = {.family = 4, .addr = {192, 0, 2, 1}};
static const cap_ip OTHER_EXPORTER = {.family = 4, .addr = {192, 0, 2, 2}};

/* Unix time in the headers below: 0x692d6700 = 1764583168 s. */
#define EXPORT_S 1764583168ull

static col_collector *make_collector(const col_config *config, flow_log *log)
{
    col_collector *col = NULL;
    memset(log, 0, sizeof *log);
    assert_int_equal(col_collector_create(config, keep_flow, log, &col), FV_OK);
    return col;
}

static col_stats stats_of(const col_collector *col)
{
    col_stats s;
    col_collector_stats(col, &s);
    return s;
}

/* ---------------------------------------------------------------------- */
/* NetFlow v5                                                              */
/* ---------------------------------------------------------------------- */

/* A v5 datagram with two records. */
static const uint8_t V5_TWO_RECORDS[] = {
    0x00, 0x05,             /* version 5 */
    0x00, 0x02,             /* count 2 */
    0x00, 0x00, 0x27, 0x10, /* sysUptime 10000 ms */
    0x69, 0x2d, 0x67, 0x00, /* unix_secs 1764583168 */
    0x00, 0x00, 0x00, 0x00, /* unix_nsecs 0 */
    0x00, 0x00, 0x00, 0x64, /* flow_sequence 100 */
    0x00, 0x01,             /* engine type 0, engine id 1 */
    0x00, 0x00,             /* sampling: none */
    /* record 1: TCP 10.0.0.1:50000 -> 198.51.100.7:443 */
    0x0a, 0x00, 0x00, 0x01, /* srcaddr 10.0.0.1 */
    0xc6, 0x33, 0x64, 0x07, /* dstaddr 198.51.100.7 */
    0x00, 0x00, 0x00, 0x00, /* nexthop */
    0x00, 0x01, 0x00, 0x02, /* input 1, output 2 */
    0x00, 0x00, 0x00, 0x05, /* dPkts 5 */
    0x00, 0x00, 0x01, 0x2c, /* dOctets 300 */
    0x00, 0x00, 0x13, 0x88, /* first 5000 ms uptime */
    0x00, 0x00, 0x1f, 0x40, /* last 8000 ms uptime */
    0xc3, 0x50, 0x01, 0xbb, /* srcport 50000, dstport 443 */
    0x00, 0x1b, 0x06, 0x00, /* pad, tcp_flags FIN|SYN|PSH|ACK, prot 6, tos */
    0x00, 0x00, 0x00, 0x00, /* src_as, dst_as */
    0x18, 0x18, 0x00, 0x00, /* src_mask 24, dst_mask 24, pad */
    /* record 2: ICMP echo request 198.51.100.7 -> 10.0.0.1 */
    0xc6, 0x33, 0x64, 0x07, /* srcaddr 198.51.100.7 */
    0x0a, 0x00, 0x00, 0x01, /* dstaddr 10.0.0.1 */
    0x00, 0x00, 0x00, 0x00, /* nexthop */
    0x00, 0x02, 0x00, 0x01, /* input 2, output 1 */
    0x00, 0x00, 0x00, 0x01, /* dPkts 1 */
    0x00, 0x00, 0x00, 0x54, /* dOctets 84 */
    0x00, 0x00, 0x23, 0x28, /* first 9000 ms uptime */
    0x00, 0x00, 0x23, 0x28, /* last 9000 ms uptime */
    0x00, 0x00, 0x08, 0x00, /* srcport 0, dstport 0x0800: ICMP type 8 code 0 */
    0x00, 0x00, 0x01, 0x00, /* pad, tcp_flags 0, prot 1, tos */
    0x00, 0x00, 0x00, 0x00, /* src_as, dst_as */
    0x00, 0x00, 0x00, 0x00, /* masks, pad */
};

static void test_v5_records_become_flows(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, V5_TWO_RECORDS,
                                            sizeof V5_TWO_RECORDS, EXPORT_S),
                     FV_OK);
    assert_int_equal(log.count, 2);

    const cap_flow *tcp = &log.flows[0];
    const uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {198, 51, 100, 7};
    assert_int_equal(tcp->src.family, 4);
    assert_memory_equal(tcp->src.addr, src, 4);
    assert_memory_equal(tcp->dst.addr, dst, 4);
    assert_int_equal(tcp->sport, 50000);
    assert_int_equal(tcp->dport, 443);
    assert_int_equal(tcp->proto, 6);
    assert_int_equal(tcp->tcp_flags_fwd, 0x1b);
    assert_int_equal(tcp->pkts_fwd, 5);
    assert_int_equal(tcp->bytes_fwd, 300);
    assert_int_equal(tcp->pkts_rev, 0);
    assert_int_equal(tcp->bytes_rev, 0);
    /* first = export time - (10000 - 5000) ms */
    assert_int_equal(tcp->first_us, (EXPORT_S * 1000u - 5000u) * 1000u);
    assert_int_equal(tcp->last_us, (EXPORT_S * 1000u - 2000u) * 1000u);

    const cap_flow *icmp = &log.flows[1];
    assert_int_equal(icmp->proto, 1);
    assert_int_equal(icmp->icmp_type, 8);
    assert_int_equal(icmp->icmp_code, 0);
    assert_int_equal(icmp->sport, 0);
    assert_int_equal(icmp->dport, 0);

    col_stats s = stats_of(col);
    assert_int_equal(s.datagrams_v5, 1);
    assert_int_equal(s.records, 2);
    assert_int_equal(s.malformed, 0);
    col_collector_destroy(&col);
    assert_null(col);
}

/* Records that end more than a day after their datagram arrived are
 * stored and counted in records_future; more than a year ahead they are
 * dropped and counted in records_out_of_range as well. */
static void test_v5_future_records_counted(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    /* Arrival two days before the export time of the datagram. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V5_TWO_RECORDS,
                                            sizeof V5_TWO_RECORDS, EXPORT_S - 2u * 86400u),
                     FV_OK);
    assert_int_equal(log.count, 2);
    col_stats s = stats_of(col);
    assert_int_equal(s.records_future, 2);
    assert_int_equal(s.records_out_of_range, 0);
    assert_int_equal(s.records, 2);

    /* Arrival two years before: dropped. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V5_TWO_RECORDS,
                                            sizeof V5_TWO_RECORDS, EXPORT_S - 2u * 366u * 86400u),
                     FV_OK);
    s = stats_of(col);
    assert_int_equal(s.records_future, 4);
    assert_int_equal(s.records_out_of_range, 2);
    assert_int_equal(s.records, 2);
    assert_int_equal(log.count, 2);

    /* Arrival at the export time: nothing is in the future. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V5_TWO_RECORDS,
                                            sizeof V5_TWO_RECORDS, EXPORT_S),
                     FV_OK);
    s = stats_of(col);
    assert_int_equal(s.records_future, 4);
    assert_int_equal(s.records, 4);
    assert_int_equal(log.count, 4);
    col_collector_destroy(&col);
}


static void test_v5_count_past_length_is_malformed(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    /* The two-record datagram cut after its first record; its count field is 2. */
    size_t cut = 24 + 48;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V5_TWO_RECORDS, cut, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(log.count, 0);
    assert_int_equal(stats_of(col).malformed, 1);

    /* A header alone, shorter than 24 bytes. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V5_TWO_RECORDS, 20, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(stats_of(col).malformed, 2);
    col_collector_destroy(&col);
}

static void test_v5_sampling_scales_counters(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    uint8_t dgram[sizeof V5_TWO_RECORDS];
    memcpy(dgram, V5_TWO_RECORDS, sizeof dgram);
    dgram[22] = 0x40;   /* sampling mode 1 (deterministic) ... */
    dgram[23] = 0x0a;   /* ... interval 10 */

    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.flows[0].pkts_fwd, 50);
    assert_int_equal(log.flows[0].bytes_fwd, 3000);
    assert_int_equal(stats_of(col).sampled_records, 2);
    col_collector_destroy(&col);
}

static void test_v5_sequence_gap_counted(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    uint8_t dgram[sizeof V5_TWO_RECORDS];
    memcpy(dgram, V5_TWO_RECORDS, sizeof dgram);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S), FV_OK);
    /* Sequence 102 follows 100 with two flows: no gap. */
    dgram[19] = 102;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 0);
    /* Sequence 110 where 104 was expected: six flows lost. */
    dgram[19] = 110;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 1);
    assert_int_equal(stats_of(col).sequence_lost, 6);
    /* Another exporter keeps its own sequence. */
    dgram[19] = 1;
    assert_int_equal(col_collector_datagram(col, &OTHER_EXPORTER, dgram, sizeof dgram, EXPORT_S),
                     FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 1);
    col_collector_destroy(&col);
}

/* ---------------------------------------------------------------------- */
/* NetFlow v9                                                              */
/* ---------------------------------------------------------------------- */

/* v9 header, sequence 7, source id 42, followed by a template flowset
 * (template 256) and a data flowset with one record. */
static const uint8_t V9_TEMPLATE_AND_DATA[] = {
    0x00, 0x09,             /* version 9 */
    0x00, 0x02,             /* count: 2 records (1 template, 1 data) */
    0x00, 0x00, 0x27, 0x10, /* sysUptime 10000 ms */
    0x69, 0x2d, 0x67, 0x00, /* unix_secs 1764583168 */
    0x00, 0x00, 0x00, 0x07, /* sequence 7 */
    0x00, 0x00, 0x00, 0x2a, /* source id 42 */
    /* template flowset */
    0x00, 0x00, 0x00, 0x2c, /* flowset id 0, length 44 */
    0x01, 0x00, 0x00, 0x09, /* template 256, 9 fields */
    0x00, 0x08, 0x00, 0x04, /* IPV4_SRC_ADDR, 4 */
    0x00, 0x0c, 0x00, 0x04, /* IPV4_DST_ADDR, 4 */
    0x00, 0x07, 0x00, 0x02, /* L4_SRC_PORT, 2 */
    0x00, 0x0b, 0x00, 0x02, /* L4_DST_PORT, 2 */
    0x00, 0x04, 0x00, 0x01, /* PROTOCOL, 1 */
    0x00, 0x02, 0x00, 0x04, /* IN_PKTS, 4 */
    0x00, 0x01, 0x00, 0x04, /* IN_BYTES, 4 */
    0x00, 0x16, 0x00, 0x04, /* FIRST_SWITCHED, 4 */
    0x00, 0x15, 0x00, 0x04, /* LAST_SWITCHED, 4 */
    /* data flowset, one 29-byte record and 3 bytes of padding */
    0x01, 0x00, 0x00, 0x24, /* flowset id 256, length 36 */
    0x0a, 0x00, 0x00, 0x02, /* src 10.0.0.2 */
    0xc6, 0x33, 0x64, 0x08, /* dst 198.51.100.8 */
    0xd4, 0x31,             /* sport 54321 */
    0x00, 0x35,             /* dport 53 */
    0x11,                   /* protocol 17 */
    0x00, 0x00, 0x00, 0x02, /* packets 2 */
    0x00, 0x00, 0x00, 0x8c, /* bytes 140 */
    0x00, 0x00, 0x1b, 0x58, /* first 7000 ms uptime */
    0x00, 0x00, 0x1f, 0x40, /* last 8000 ms uptime */
    0x00, 0x00, 0x00,       /* padding */
};

/* Offset of the data flowset in V9_TEMPLATE_AND_DATA. */
#define V9_DATA_OFFSET (20 + 44)

static void test_v9_template_then_data(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(log.count, 1);
    const cap_flow *f = &log.flows[0];
    const uint8_t dst[4] = {198, 51, 100, 8};
    assert_memory_equal(f->dst.addr, dst, 4);
    assert_int_equal(f->sport, 54321);
    assert_int_equal(f->dport, 53);
    assert_int_equal(f->proto, 17);
    assert_int_equal(f->pkts_fwd, 2);
    assert_int_equal(f->bytes_fwd, 140);
    assert_int_equal(f->first_us, (EXPORT_S * 1000u - 3000u) * 1000u);
    assert_int_equal(f->last_us, (EXPORT_S * 1000u - 2000u) * 1000u);
    assert_int_equal(col_collector_template_count(col), 1);
    assert_int_equal(stats_of(col).templates_added, 1);
    col_collector_destroy(&col);
}

/* V9_TEMPLATE_AND_DATA with the template flowset left out: the v9 header
 * followed by the data flowset only. */
static size_t v9_data_only(uint8_t *out, uint8_t sequence, uint8_t source_id)
{
    memcpy(out, V9_TEMPLATE_AND_DATA, 20);
    out[15] = sequence;
    out[19] = source_id;
    memcpy(out + 20, V9_TEMPLATE_AND_DATA + V9_DATA_OFFSET,
           sizeof V9_TEMPLATE_AND_DATA - V9_DATA_OFFSET);
    return 20 + sizeof V9_TEMPLATE_AND_DATA - V9_DATA_OFFSET;
}

static void test_v9_unknown_template_is_miss(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[128];

    size_t len = v9_data_only(dgram, 6, 42);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 0);
    assert_int_equal(stats_of(col).template_misses, 1);

    /* The template arrives; the next data flowset decodes. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    len = v9_data_only(dgram, 8, 42);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 2);

    /* Templates belong to their source id: id 43 has none. */
    len = v9_data_only(dgram, 9, 43);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(stats_of(col).template_misses, 2);

    /* And to their exporter address. */
    len = v9_data_only(dgram, 9, 42);
    assert_int_equal(col_collector_datagram(col, &OTHER_EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).template_misses, 3);
    col_collector_destroy(&col);
}

static void test_v9_sequence_counts_datagrams(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[128];

    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);   /* sequence 7 */
    size_t len = v9_data_only(dgram, 8, 42);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 0);
    len = v9_data_only(dgram, 12, 42);     /* 9, 10 and 11 lost */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 1);
    assert_int_equal(stats_of(col).sequence_lost, 3);
    col_collector_destroy(&col);
}

static void test_v9_flowset_length_past_end(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[sizeof V9_TEMPLATE_AND_DATA];
    memcpy(dgram, V9_TEMPLATE_AND_DATA, sizeof dgram);

    /* The data flowset claims 200 bytes; 36 follow. */
    dgram[V9_DATA_OFFSET + 3] = 200;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(log.count, 0);
    assert_int_equal(stats_of(col).malformed, 1);

    /* A flowset length of 2, below its own 4-byte header. */
    dgram[V9_DATA_OFFSET + 3] = 2;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(stats_of(col).malformed, 2);
    col_collector_destroy(&col);
}

static void test_v9_template_field_count_past_end(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[sizeof V9_TEMPLATE_AND_DATA];
    memcpy(dgram, V9_TEMPLATE_AND_DATA, sizeof dgram);

    /* Template 256 claims 40 fields, but its flowset contains 9. */
    dgram[20 + 7] = 40;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(col_collector_template_count(col), 0);
    assert_int_equal(log.count, 0);
    col_collector_destroy(&col);
}

/* ---------------------------------------------------------------------- */
/* IPFIX                                                                   */
/* ---------------------------------------------------------------------- */

/* IPFIX message: template 300 with an enterprise field and a
 * variable-length field, then one data record. */
static const uint8_t IPFIX_TEMPLATE_AND_DATA[] = {
    0x00, 0x0a,             /* version 10 */
    0x00, 0x7f,             /* length 127 */
    0x69, 0x2d, 0x67, 0x00, /* export time 1764583168 */
    0x00, 0x00, 0x00, 0x10, /* sequence 16 */
    0x00, 0x00, 0x00, 0x05, /* observation domain 5 */
    /* template set */
    0x00, 0x02, 0x00, 0x30, /* set id 2, length 48 */
    0x01, 0x2c, 0x00, 0x09, /* template 300, 9 fields */
    0x00, 0x1b, 0x00, 0x10, /* sourceIPv6Address, 16 */
    0x00, 0x1c, 0x00, 0x10, /* destinationIPv6Address, 16 */
    0x00, 0x04, 0x00, 0x01, /* protocolIdentifier, 1 */
    0x00, 0x07, 0x00, 0x02, /* sourceTransportPort, 2 */
    0x00, 0x0b, 0x00, 0x02, /* destinationTransportPort, 2 */
    0x00, 0x02, 0x00, 0x02, /* packetDeltaCount, 2 (reduced size) */
    0x00, 0x01, 0x00, 0x08, /* octetDeltaCount, 8 */
    0x00, 0x98, 0x00, 0x08, /* flowStartMilliseconds, 8 */
    0x80, 0x64, 0xff, 0xff, /* enterprise element 100, variable length ... */
    0x00, 0x00, 0x7a, 0x69, /* ... enterprise number 31337 (not read) */
    /* data set: 16+16+1+2+2+2+8+8+(1+3) = 59 bytes of record */
    0x01, 0x2c, 0x00, 0x3f, /* set id 300, length 63 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* src 2001:db8::1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* dst 2001:db8::2 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x06,                   /* protocol 6 */
    0x01, 0xbb,             /* sport 443 */
    0xc3, 0x51,             /* dport 50001 */
    0x00, 0x0c,             /* packets 12 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x98, /* octets 15000 */
    0x00, 0x00, 0x01, 0x9a, 0xd9, 0x59, 0x9e, 0x00, /* start 1764583120384 ms */
    0x03, 0x61, 0x62, 0x63, /* enterprise field: length 3, "abc" */
};

#define IPFIX_DATA_OFFSET (16 + 48)

static void ipfix_with_u64(uint8_t *out, size_t offset, uint64_t value)
{
    memcpy(out, IPFIX_TEMPLATE_AND_DATA, sizeof IPFIX_TEMPLATE_AND_DATA);
    for (int i = 7; i >= 0; i--) {
        out[offset + (size_t)i] = (uint8_t)value;
        value >>= 8;
    }
}

/* IPFIX_TEMPLATE_AND_DATA with the record's octetDeltaCount (8 bytes at
 * OCTETS_OFFSET) or flowStartMilliseconds (8 bytes at START_OFFSET)
 * replaced by VALUE. */
#define IPFIX_OCTETS_OFFSET (16 + 48 + 4 + 16 + 16 + 1 + 2 + 2 + 2)
#define IPFIX_START_OFFSET (IPFIX_OCTETS_OFFSET + 8)

static void test_ipfix_out_of_range_records_dropped(void **state)
{
    (void)state;
    static const struct {
        size_t offset;
        uint64_t value;
    } cases[] = {
        {IPFIX_OCTETS_OFFSET, UINT64_C(1) << 63},  /* octets 2^63: negative as int64 */
        {IPFIX_OCTETS_OFFSET, UINT64_MAX},         /* octets 2^64-1 */
        {IPFIX_START_OFFSET, UINT64_MAX},          /* start in the year 586524 */
        {IPFIX_START_OFFSET, 1000},                /* start 1970-01-01T00:00:01Z */
        {IPFIX_START_OFFSET, 600000000000ull},     /* start 1989-01-06, before 1990 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        flow_log log;
        col_collector *col = make_collector(NULL, &log);
        uint8_t dgram[sizeof IPFIX_TEMPLATE_AND_DATA];
        ipfix_with_u64(dgram, cases[i].offset, cases[i].value);
        assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S),
                         FV_OK);
        assert_int_equal(log.count, 0);
        col_stats s = stats_of(col);
        assert_int_equal(s.records_out_of_range, 1);
        assert_int_equal(s.records, 0);
        col_collector_destroy(&col);
    }

    /* The unchanged record, and one with octets 2^63 - 1, are kept. */
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[sizeof IPFIX_TEMPLATE_AND_DATA];
    ipfix_with_u64(dgram, IPFIX_OCTETS_OFFSET, (UINT64_C(1) << 63) - 1);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S),
                     FV_OK);
    assert_int_equal(log.count, 1);
    assert_int_equal(stats_of(col).records_out_of_range, 0);
    col_collector_destroy(&col);
}

static void test_ipfix_template_then_data(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_AND_DATA,
                                            sizeof IPFIX_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(log.count, 1);
    const cap_flow *f = &log.flows[0];
    const uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    assert_int_equal(f->src.family, 6);
    assert_memory_equal(f->src.addr, src, 16);
    assert_int_equal(f->sport, 443);
    assert_int_equal(f->dport, 50001);
    assert_int_equal(f->pkts_fwd, 12);
    assert_int_equal(f->bytes_fwd, 15000);
    assert_int_equal(f->first_us, 1764583120384ull * 1000u);
    assert_int_equal(f->last_us, f->first_us);
    assert_int_equal(stats_of(col).datagrams_ipfix, 1);
    col_collector_destroy(&col);
}

static void test_ipfix_message_length_past_datagram(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    /* The header says 127 bytes; only 80 arrived. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_AND_DATA, 80, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(log.count, 0);
    assert_int_equal(stats_of(col).malformed, 1);
    col_collector_destroy(&col);
}

static void test_ipfix_variable_length_past_record(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[sizeof IPFIX_TEMPLATE_AND_DATA];
    memcpy(dgram, IPFIX_TEMPLATE_AND_DATA, sizeof dgram);

    /* The variable-length field claims 9 bytes; 3 remain in the set. */
    dgram[sizeof dgram - 4] = 9;
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, sizeof dgram, EXPORT_S),
                     FV_ERR_PARSE);
    assert_int_equal(log.count, 0);
    assert_int_equal(stats_of(col).malformed, 1);
    /* The template itself was read before the fault. */
    assert_int_equal(col_collector_template_count(col), 1);
    col_collector_destroy(&col);
}

/* IPFIX message with only the data set of IPFIX_TEMPLATE_AND_DATA. */
static size_t ipfix_data_only(uint8_t *out, uint32_t sequence)
{
    size_t data_len = sizeof IPFIX_TEMPLATE_AND_DATA - IPFIX_DATA_OFFSET;
    size_t len = 16 + data_len;
    memcpy(out, IPFIX_TEMPLATE_AND_DATA, 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    out[8] = (uint8_t)(sequence >> 24);
    out[9] = (uint8_t)(sequence >> 16);
    out[10] = (uint8_t)(sequence >> 8);
    out[11] = (uint8_t)sequence;
    memcpy(out + 16, IPFIX_TEMPLATE_AND_DATA + IPFIX_DATA_OFFSET, data_len);
    return len;
}

/* IPFIX message withdrawing template 300 of domain 5. */
static const uint8_t IPFIX_WITHDRAW_300[] = {
    0x00, 0x0a, 0x00, 0x18, /* version 10, length 24 */
    0x69, 0x2d, 0x67, 0x00, /* export time */
    0x00, 0x00, 0x00, 0x12, /* sequence 18 */
    0x00, 0x00, 0x00, 0x05, /* observation domain 5 */
    0x00, 0x02, 0x00, 0x08, /* set id 2, length 8 */
    0x01, 0x2c, 0x00, 0x00, /* template 300, field count 0: withdrawal */
};

static void test_ipfix_withdrawal_forgets_template(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[128];

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_AND_DATA,
                                            sizeof IPFIX_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);   /* sequence 16, one record */
    size_t len = ipfix_data_only(dgram, 17);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 2);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_WITHDRAW_300,
                                            sizeof IPFIX_WITHDRAW_300, EXPORT_S),
                     FV_OK);
    assert_int_equal(col_collector_template_count(col), 0);
    assert_int_equal(stats_of(col).templates_withdrawn, 1);

    len = ipfix_data_only(dgram, 18);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(stats_of(col).template_misses, 1);
    assert_int_equal(stats_of(col).sequence_gaps, 0);
    col_collector_destroy(&col);
}

static void test_ipfix_sequence_counts_records(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[128];

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_AND_DATA,
                                            sizeof IPFIX_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);   /* sequence 16, one record: 17 is next */
    size_t len = ipfix_data_only(dgram, 17);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 0);
    len = ipfix_data_only(dgram, 25);      /* 18 expected: 7 records lost */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(stats_of(col).sequence_gaps, 1);
    assert_int_equal(stats_of(col).sequence_lost, 7);
    col_collector_destroy(&col);
}

static void test_ipfix_template_expires(void **state)
{
    (void)state;
    flow_log log;
    col_config config = {.template_timeout_s = 60};
    col_collector *col = make_collector(&config, &log);
    uint8_t dgram[128];

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_AND_DATA,
                                            sizeof IPFIX_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    size_t len = ipfix_data_only(dgram, 17);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S + 59), FV_OK);
    assert_int_equal(log.count, 2);

    /* 60 s after the template was last sent it is gone. */
    len = ipfix_data_only(dgram, 18);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S + 60), FV_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(stats_of(col).templates_expired, 1);
    assert_int_equal(stats_of(col).template_misses, 1);
    col_collector_destroy(&col);
}

/* Template 300 sent again with the two ports swapped in the layout. */
static const uint8_t IPFIX_TEMPLATE_300_SWAPPED[] = {
    0x00, 0x0a, 0x00, 0x40, /* version 10, length 64 */
    0x69, 0x2d, 0x67, 0x00, /* export time */
    0x00, 0x00, 0x00, 0x11, /* sequence 17 */
    0x00, 0x00, 0x00, 0x05, /* observation domain 5 */
    0x00, 0x02, 0x00, 0x30, /* set id 2, length 48 */
    0x01, 0x2c, 0x00, 0x09, /* template 300, 9 fields */
    0x00, 0x1b, 0x00, 0x10, /* sourceIPv6Address, 16 */
    0x00, 0x1c, 0x00, 0x10, /* destinationIPv6Address, 16 */
    0x00, 0x04, 0x00, 0x01, /* protocolIdentifier, 1 */
    0x00, 0x0b, 0x00, 0x02, /* destinationTransportPort, 2 (was second) */
    0x00, 0x07, 0x00, 0x02, /* sourceTransportPort, 2 */
    0x00, 0x02, 0x00, 0x02, /* packetDeltaCount, 2 */
    0x00, 0x01, 0x00, 0x08, /* octetDeltaCount, 8 */
    0x00, 0x98, 0x00, 0x08, /* flowStartMilliseconds, 8 */
    0x80, 0x64, 0xff, 0xff, /* enterprise element 100, variable length ... */
    0x00, 0x00, 0x7a, 0x69, /* ... enterprise number 31337 */
};

static void test_ipfix_template_redefinition_applies(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    uint8_t dgram[128];

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_AND_DATA,
                                            sizeof IPFIX_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_300_SWAPPED,
                                            sizeof IPFIX_TEMPLATE_300_SWAPPED, EXPORT_S),
                     FV_OK);
    assert_int_equal(col_collector_template_count(col), 1);
    assert_int_equal(stats_of(col).templates_added, 2);

    size_t len = ipfix_data_only(dgram, 17);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, dgram, len, EXPORT_S), FV_OK);
    assert_int_equal(log.count, 2);
    assert_int_equal(log.flows[1].sport, 50001);
    assert_int_equal(log.flows[1].dport, 443);

    /* Sending the same template again only refreshes it. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_TEMPLATE_300_SWAPPED,
                                            sizeof IPFIX_TEMPLATE_300_SWAPPED, EXPORT_S + 10),
                     FV_OK);
    assert_int_equal(stats_of(col).templates_added, 2);
    col_collector_destroy(&col);
}

/* IPFIX message from an exporter like softflowd: an options template
 * (scope meteringProcessId) with systemInitTimeMilliseconds and packet
 * sampling 1 in 100, its options record, a flow template timed in
 * uptime milliseconds with RFC 5103 reverse counters, and one record. */
static const uint8_t IPFIX_OPTIONS_AND_BIFLOW[] = {
    0x00, 0x0a, 0x00, 0x9e, /* version 10, length 158 */
    0x69, 0x2d, 0x67, 0x00, /* export time */
    0x00, 0x00, 0x00, 0x00, /* sequence 0 */
    0x00, 0x00, 0x00, 0x01, /* observation domain 1 */
    /* options template set */
    0x00, 0x03, 0x00, 0x1a, /* set id 3, length 26 */
    0x01, 0x00, 0x00, 0x04, /* template 256, 4 fields ... */
    0x00, 0x01,             /* ... 1 of them scope */
    0x00, 0x8f, 0x00, 0x04, /* scope meteringProcessId, 4 */
    0x00, 0xa0, 0x00, 0x08, /* systemInitTimeMilliseconds, 8 */
    0x01, 0x31, 0x00, 0x04, /* samplingPacketInterval, 4 */
    0x01, 0x32, 0x00, 0x04, /* samplingPacketSpace, 4 */
    /* options data set */
    0x01, 0x00, 0x00, 0x18, /* set id 256, length 24 */
    0x00, 0x00, 0x00, 0x01, /* meteringProcessId 1 */
    0x00, 0x00, 0x01, 0x9a, 0xd9, 0x59, 0x00, 0x40, /* init time 1764583080000 ms */
    0x00, 0x00, 0x00, 0x01, /* 1 packet selected ... */
    0x00, 0x00, 0x00, 0x63, /* ... then 99 skipped: 1 in 100 */
    /* template set */
    0x00, 0x02, 0x00, 0x34, /* set id 2, length 52 */
    0x01, 0x01, 0x00, 0x09, /* template 257, 9 fields */
    0x00, 0x08, 0x00, 0x04, /* sourceIPv4Address, 4 */
    0x00, 0x0c, 0x00, 0x04, /* destinationIPv4Address, 4 */
    0x00, 0x04, 0x00, 0x01, /* protocolIdentifier, 1 */
    0x00, 0x02, 0x00, 0x04, /* packetDeltaCount, 4 */
    0x00, 0x01, 0x00, 0x04, /* octetDeltaCount, 4 */
    0x80, 0x02, 0x00, 0x04, /* reverse packetDeltaCount, 4 ... */
    0x00, 0x00, 0x72, 0x79, /* ... enterprise 29305 (RFC 5103) */
    0x80, 0x01, 0x00, 0x04, /* reverse octetDeltaCount, 4 ... */
    0x00, 0x00, 0x72, 0x79, /* ... enterprise 29305 */
    0x00, 0x16, 0x00, 0x04, /* flowStartSysUpTime, 4 */
    0x00, 0x15, 0x00, 0x04, /* flowEndSysUpTime, 4 */
    /* data set */
    0x01, 0x01, 0x00, 0x28, /* set id 257, length 40 */
    0x0a, 0x00, 0x00, 0x03, /* src 10.0.0.3 */
    0x0a, 0x00, 0x00, 0x04, /* dst 10.0.0.4 */
    0x11,                   /* protocol 17 */
    0x00, 0x00, 0x00, 0x02, /* packets 2 */
    0x00, 0x00, 0x00, 0x64, /* octets 100 */
    0x00, 0x00, 0x00, 0x03, /* reverse packets 3 */
    0x00, 0x00, 0x00, 0xc8, /* reverse octets 200 */
    0x00, 0x00, 0x03, 0xe8, /* start 1000 ms after init */
    0x00, 0x00, 0x07, 0xd0, /* end 2000 ms after init */
    0x00, 0x00, 0x00,       /* padding */
};

static void test_ipfix_options_give_sampling_and_time(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, IPFIX_OPTIONS_AND_BIFLOW,
                                            sizeof IPFIX_OPTIONS_AND_BIFLOW, EXPORT_S),
                     FV_OK);
    assert_int_equal(log.count, 1);
    const cap_flow *f = &log.flows[0];
    assert_int_equal(f->first_us, (1764583080000ull + 1000u) * 1000u);
    assert_int_equal(f->last_us, (1764583080000ull + 2000u) * 1000u);
    assert_int_equal(f->pkts_fwd, 200);
    assert_int_equal(f->bytes_fwd, 10000);
    assert_int_equal(f->pkts_rev, 300);
    assert_int_equal(f->bytes_rev, 20000);
    col_stats s = stats_of(col);
    assert_int_equal(s.options_records, 1);
    assert_int_equal(s.sampled_records, 1);
    assert_int_equal(s.records, 1);
    assert_int_equal(s.time_unknown, 0);
    col_collector_destroy(&col);
}

/* ---------------------------------------------------------------------- */
/* Limits and versions                                                     */
/* ---------------------------------------------------------------------- */

static void test_domain_limit_refuses_new_exporters(void **state)
{
    (void)state;
    flow_log log;
    col_config config = {.max_domains = 1};
    col_collector *col = make_collector(&config, &log);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(col_collector_datagram(col, &OTHER_EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_ERR_FULL);
    assert_int_equal(log.count, 1);
    assert_int_equal(stats_of(col).domains_refused, 1);
    col_collector_destroy(&col);
}

static void test_idle_domains_expire(void **state)
{
    (void)state;
    flow_log log;
    col_config config = {.max_domains = 1, .domain_idle_s = 600};
    col_collector *col = make_collector(&config, &log);

    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(col_collector_template_count(col), 1);
    /* Still active: the new exporter is refused. */
    assert_int_equal(col_collector_datagram(col, &OTHER_EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S + 599),
                     FV_ERR_FULL);
    /* Idle for 600 s: the old domain and its template go, the new one fits. */
    assert_int_equal(col_collector_datagram(col, &OTHER_EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S + 600),
                     FV_OK);
    col_stats s = stats_of(col);
    assert_int_equal(s.domains_expired, 1);
    assert_int_equal(s.domains_refused, 1);
    assert_int_equal(col_collector_template_count(col), 1);
    col_collector_destroy(&col);
}

static void test_template_limits_refuse(void **state)
{
    (void)state;
    flow_log log;
    col_config config = {.max_template_fields = 8};
    col_collector *col = make_collector(&config, &log);

    /* Template 256 has 9 fields, one over the limit: refused, its data missed. */
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(log.count, 0);
    assert_int_equal(stats_of(col).templates_refused, 1);
    assert_int_equal(stats_of(col).template_misses, 1);
    col_collector_destroy(&col);

    col_config one = {.max_templates = 1};
    col = make_collector(&one, &log);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    /* A second template from another exporter does not fit. */
    assert_int_equal(col_collector_datagram(col, &OTHER_EXPORTER, V9_TEMPLATE_AND_DATA,
                                            sizeof V9_TEMPLATE_AND_DATA, EXPORT_S),
                     FV_OK);
    assert_int_equal(col_collector_template_count(col), 1);
    assert_int_equal(stats_of(col).templates_refused, 1);
    assert_int_equal(log.count, 1);
    col_collector_destroy(&col);
}

static void test_unsupported_version_counted(void **state)
{
    (void)state;
    flow_log log;
    col_collector *col = make_collector(NULL, &log);
    /* NetFlow v7 header start */
    const uint8_t v7[] = {0x00, 0x07, 0x00, 0x01};
    /* One byte: not even a version field. */
    const uint8_t one[] = {0x00};

    assert_int_equal(col_collector_datagram(col, &EXPORTER, v7, sizeof v7, EXPORT_S),
                     FV_ERR_UNSUPPORTED);
    assert_int_equal(col_collector_datagram(col, &EXPORTER, one, sizeof one, EXPORT_S),
                     FV_ERR_PARSE);
    col_stats s = stats_of(col);
    assert_int_equal(s.unsupported_version, 1);
    assert_int_equal(s.malformed, 1);
    assert_int_equal(s.datagrams, 2);
    col_collector_destroy(&col);
}

static void test_stats_names_cover_struct(void **state)
{
    (void)state;
    size_t count = 0;
    const char *const *names = col_stats_names(&count);
    assert_int_equal(count * sizeof(uint64_t), sizeof(col_stats));
    assert_string_equal(names[0], "datagrams");
    assert_string_equal(names[count - 1], "records_out_of_range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v5_records_become_flows),
        cmocka_unit_test(test_v5_future_records_counted),
        cmocka_unit_test(test_ipfix_out_of_range_records_dropped),
        cmocka_unit_test(test_idle_domains_expire),
        cmocka_unit_test(test_v5_count_past_length_is_malformed),
        cmocka_unit_test(test_v5_sampling_scales_counters),
        cmocka_unit_test(test_v5_sequence_gap_counted),
        cmocka_unit_test(test_v9_template_then_data),
        cmocka_unit_test(test_v9_unknown_template_is_miss),
        cmocka_unit_test(test_v9_sequence_counts_datagrams),
        cmocka_unit_test(test_v9_flowset_length_past_end),
        cmocka_unit_test(test_v9_template_field_count_past_end),
        cmocka_unit_test(test_ipfix_template_then_data),
        cmocka_unit_test(test_ipfix_message_length_past_datagram),
        cmocka_unit_test(test_ipfix_variable_length_past_record),
        cmocka_unit_test(test_ipfix_withdrawal_forgets_template),
        cmocka_unit_test(test_ipfix_sequence_counts_records),
        cmocka_unit_test(test_ipfix_template_expires),
        cmocka_unit_test(test_ipfix_template_redefinition_applies),
        cmocka_unit_test(test_ipfix_options_give_sampling_and_time),
        cmocka_unit_test(test_domain_limit_refuses_new_exporters),
        cmocka_unit_test(test_template_limits_refuse),
        cmocka_unit_test(test_unsupported_version_counted),
        cmocka_unit_test(test_stats_names_cover_struct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
