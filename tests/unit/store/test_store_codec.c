/*
 * test_store_codec.c: the binary record encoding of store/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "store_records.h"

/* Encode REC of CLS, decode it back and compare every field by bytes:
 * both structs start zeroed, so padding compares equal too. */
static void assert_round_trip(fv_class cls, const void *rec, size_t rec_size)
{
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t written = 0;
    assert_int_equal(store_record_encode(cls, rec, buf, sizeof buf, &written), FV_OK);
    assert_true(written > 2);

    fv_record out;
    assert_int_equal(store_record_decode(cls, buf, written, &out), FV_OK);
    assert_int_equal(out.cls, cls);
    assert_memory_equal(&out.u, rec, rec_size);
}

static void test_flow_round_trip(void **state)
{
    (void)state;
    fv_flow_record r;
    rec_fill_flow(&r, 7);
    assert_round_trip(FV_CLASS_FLOW, &r, sizeof r);
}

static void test_flow_without_mac_round_trip(void **state)
{
    (void)state;
    fv_flow_record r;
    rec_fill_flow(&r, 8);
    r.has_mac = 0;
    memset(r.src_mac, 0, sizeof r.src_mac);
    memset(r.dst_mac, 0, sizeof r.dst_mac);
    r.src.kind = FV_EP_IPV4;    /* only addr[0..3] is stored for IPv4 */
    memset(r.src.addr + 4, 0, sizeof r.src.addr - 4);
    r.dst.kind = FV_EP_NONE;
    memset(r.dst.addr, 0, sizeof r.dst.addr);
    assert_round_trip(FV_CLASS_FLOW, &r, sizeof r);
}

static void test_dns_round_trip(void **state)
{
    (void)state;
    fv_dns_record r;
    rec_fill_dns(&r, 9);
    assert_round_trip(FV_CLASS_DNS, &r, sizeof r);
}

static void test_tls_round_trip(void **state)
{
    (void)state;
    fv_tls_record r;
    rec_fill_tls(&r, 10);
    assert_round_trip(FV_CLASS_TLS, &r, sizeof r);
}

static void test_http_round_trip(void **state)
{
    (void)state;
    fv_http_record r;
    rec_fill_http(&r, 11);
    assert_round_trip(FV_CLASS_HTTP, &r, sizeof r);
}

static void test_alert_round_trip(void **state)
{
    (void)state;
    fv_alert_record r;
    rec_fill_alert(&r, 12);
    assert_round_trip(FV_CLASS_ALERT, &r, sizeof r);
}

static void assert_truncations_rejected(fv_class cls, const void *rec);

static void test_dhcp_round_trip(void **state)
{
    (void)state;
    fv_dhcp_record r;
    rec_fill_dhcp(&r, 13);
    assert_round_trip(FV_CLASS_DHCP, &r, sizeof r);

    /* Without a client MAC the 16 pseudonym bytes are not stored. */
    r.has_client_mac = 0;
    memset(r.client_mac, 0, sizeof r.client_mac);
    memset(r.hostname, 0, sizeof r.hostname);
    assert_round_trip(FV_CLASS_DHCP, &r, sizeof r);
}

static void test_ssh_round_trip(void **state)
{
    (void)state;
    fv_ssh_record r;
    rec_fill_ssh(&r, 14);
    assert_round_trip(FV_CLASS_SSH, &r, sizeof r);
}

/* An aggregate with an external peer, one between internal hosts, and
 * one with the longest zone label all decode to the same bytes. */
static void test_aggregate_round_trip(void **state)
{
    (void)state;
    fv_aggregate_record r;
    memset(&r, 0, sizeof r);
    r.bucket_start_us = 1796025600ull * 1000000u;   /* 2026-11-30T08:00:00Z */
    r.bucket_s = 3600;
    snprintf(r.zone, sizeof r.zone, "office");
    r.proto = 6;
    r.peer.kind = FV_EP_IPV4;
    r.peer.addr[0] = 198;                           /* 198.51.100.7, TEST-NET-2 */
    r.peer.addr[1] = 51;
    r.peer.addr[2] = 100;
    r.peer.addr[3] = 7;
    snprintf(r.peer.zone, sizeof r.peer.zone, "external");
    r.dport = 443;
    r.flows = 12;
    r.packets = 345;
    r.bytes_in = 1ull << 40;                        /* needs all 8 bytes */
    r.bytes_out = 6789;
    r.hosts = 4096;
    r.hosts_capped = 1;
    assert_round_trip(FV_CLASS_AGGREGATE, &r, sizeof r);
    assert_truncations_rejected(FV_CLASS_AGGREGATE, &r);

    memset(&r.peer, 0, sizeof r.peer);              /* internal to internal */
    r.bucket_s = 86400;
    r.hosts_capped = 0;
    assert_round_trip(FV_CLASS_AGGREGATE, &r, sizeof r);

    memset(r.zone, 'z', sizeof r.zone - 1);
    assert_round_trip(FV_CLASS_AGGREGATE, &r, sizeof r);
}

/* The longest DHCP and SSH records (every string full) still fit. */
static void test_max_length_dhcp_and_ssh_fit(void **state)
{
    (void)state;
    fv_dhcp_record d;
    rec_fill_dhcp(&d, 1);
    memset(d.hostname, 'h', sizeof d.hostname - 1);
    memset(d.vendor_class, 'v', sizeof d.vendor_class - 1);
    memset(d.requested_ip, 'r', sizeof d.requested_ip - 1);
    memset(d.client.zone, 'z', sizeof d.client.zone - 1);
    memset(d.server.zone, 'z', sizeof d.server.zone - 1);
    assert_round_trip(FV_CLASS_DHCP, &d, sizeof d);
    assert_truncations_rejected(FV_CLASS_DHCP, &d);

    fv_ssh_record s;
    rec_fill_ssh(&s, 1);
    memset(s.client_banner, 'c', sizeof s.client_banner - 1);
    memset(s.server_banner, 's', sizeof s.server_banner - 1);
    memset(s.client.zone, 'z', sizeof s.client.zone - 1);
    memset(s.server.zone, 'z', sizeof s.server.zone - 1);
    assert_round_trip(FV_CLASS_SSH, &s, sizeof s);
    assert_truncations_rejected(FV_CLASS_SSH, &s);
}

/* The longest strings every field allows still fit STORE_RECORD_MAX_BYTES. */
static void test_max_length_strings_fit(void **state)
{
    (void)state;
    fv_http_record h;
    rec_fill_http(&h, 1);
    memset(h.method, 'M', sizeof h.method - 1);
    memset(h.host, 'h', sizeof h.host - 1);
    memset(h.client.zone, 'z', sizeof h.client.zone - 1);
    memset(h.server.zone, 'z', sizeof h.server.zone - 1);
    assert_round_trip(FV_CLASS_HTTP, &h, sizeof h);

    fv_dns_record d;
    rec_fill_dns(&d, 1);
    memset(d.qname, 'q', sizeof d.qname - 1);
    memset(d.client.zone, 'z', sizeof d.client.zone - 1);
    memset(d.server.zone, 'z', sizeof d.server.zone - 1);
    assert_round_trip(FV_CLASS_DNS, &d, sizeof d);
}

/* Every strict prefix of a valid encoding must be rejected. */
static void assert_truncations_rejected(fv_class cls, const void *rec)
{
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t written = 0;
    assert_int_equal(store_record_encode(cls, rec, buf, sizeof buf, &written), FV_OK);

    for (size_t len = 0; len < written; len++) {
        /* Copy into an exact-size heap block so ASan catches any read
         * past LEN. */
        uint8_t *copy = test_malloc(len > 0 ? len : 1);
        memcpy(copy, buf, len);
        fv_record out;
        int rc = store_record_decode(cls, len > 0 ? copy : NULL, len, &out);
        if (rc != FV_ERR_PARSE)
            fail_msg("class %d: a truncation to %zu of %zu bytes returned %d, expected "
                     "FV_ERR_PARSE", (int)cls, len, written, rc);
        test_free(copy);
    }
}

static void test_decode_rejects_every_truncation(void **state)
{
    (void)state;
    fv_flow_record f;
    fv_dns_record d;
    fv_tls_record t;
    fv_http_record h;
    fv_alert_record a;
    rec_fill_flow(&f, 1);
    rec_fill_dns(&d, 2);
    rec_fill_tls(&t, 3);
    rec_fill_http(&h, 4);
    rec_fill_alert(&a, 5);
    assert_truncations_rejected(FV_CLASS_FLOW, &f);
    assert_truncations_rejected(FV_CLASS_DNS, &d);
    assert_truncations_rejected(FV_CLASS_TLS, &t);
    assert_truncations_rejected(FV_CLASS_HTTP, &h);
    assert_truncations_rejected(FV_CLASS_ALERT, &a);
}

static void test_decode_rejects_wrong_version(void **state)
{
    (void)state;
    fv_tls_record t;
    rec_fill_tls(&t, 3);
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t written = 0;
    assert_int_equal(store_record_encode(FV_CLASS_TLS, &t, buf, sizeof buf, &written), FV_OK);
    assert_int_equal(buf[0], 1);

    fv_record out;
    const uint8_t versions[] = {0, 2, 0xff};
    for (size_t i = 0; i < sizeof versions; i++) {
        buf[0] = versions[i];
        assert_int_equal(store_record_decode(FV_CLASS_TLS, buf, written, &out), FV_ERR_PARSE);
    }
}

static void test_decode_rejects_other_class(void **state)
{
    (void)state;
    fv_tls_record t;
    rec_fill_tls(&t, 3);
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t written = 0;
    assert_int_equal(store_record_encode(FV_CLASS_TLS, &t, buf, sizeof buf, &written), FV_OK);

    fv_record out;
    assert_int_equal(store_record_decode(FV_CLASS_HTTP, buf, written, &out), FV_ERR_PARSE);
}

static void test_decode_rejects_trailing_byte(void **state)
{
    (void)state;
    fv_dns_record d;
    rec_fill_dns(&d, 2);
    uint8_t buf[STORE_RECORD_MAX_BYTES + 1];
    size_t written = 0;
    assert_int_equal(store_record_encode(FV_CLASS_DNS, &d, buf, sizeof buf - 1, &written),
                     FV_OK);
    buf[written] = 0;

    fv_record out;
    assert_int_equal(store_record_decode(FV_CLASS_DNS, buf, written + 1, &out), FV_ERR_PARSE);
}

static void test_decode_rejects_bad_fields(void **state)
{
    (void)state;
    fv_record out;

    /* version 1, class tls, ts_us = 0, client kind 9 (no such kind) */
    const uint8_t bad_kind[] = {0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x09};
    assert_int_equal(store_record_decode(FV_CLASS_TLS, bad_kind, sizeof bad_kind, &out),
                     FV_ERR_PARSE);

    /* version 1, class tls, ts_us = 0, client kind NONE, zone length
     * 0xffff (more than the 31 bytes a zone can hold) */
    const uint8_t long_zone[] = {0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xff, 0xff};
    assert_int_equal(store_record_decode(FV_CLASS_TLS, long_zone, sizeof long_zone, &out),
                     FV_ERR_PARSE);

    /* version 1, class tls, ts_us = 0, client kind NONE, zone length 2
     * holding "a\0" (an embedded NUL) */
    const uint8_t nul_zone[] = {0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02, 0x00, 'a', 0x00};
    assert_int_equal(store_record_decode(FV_CLASS_TLS, nul_zone, sizeof nul_zone, &out),
                     FV_ERR_PARSE);

    /* Alert with evidence_count 9 (more than FV_EVIDENCE_MAX). */
    fv_alert_record a;
    rec_fill_alert(&a, 5);
    a.evidence_count = 0;
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t written = 0;
    assert_int_equal(store_record_encode(FV_CLASS_ALERT, &a, buf, sizeof buf, &written), FV_OK);
    /* evidence_count sits right before the 2-byte summary length and the summary */
    size_t count_at = written - 2 - strlen(a.summary) - 1;
    assert_int_equal(buf[count_at], 0);
    buf[count_at] = FV_EVIDENCE_MAX + 1;
    assert_int_equal(store_record_decode(FV_CLASS_ALERT, buf, written, &out), FV_ERR_PARSE);
}

/* xorshift64: a deterministic generator, so a failure replays from the
 * printed seed. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mutated encodings must decode or return FV_ERR_PARSE; run under ASan
 * this also checks that no mutation makes the decoder read past LEN. */
static void test_decode_survives_random_mutations(void **state)
{
    (void)state;
    const uint64_t seed = 0x5eed5107e0001ull;
    printf("mutation seed 0x%llx\n", (unsigned long long)seed);
    uint64_t rng = seed;

    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        fv_record src;
        memset(&src, 0, sizeof src);
        rec_fill_flow(&src.u.flow, 1);
        if (c == FV_CLASS_DNS)
            rec_fill_dns(&src.u.dns, 2);
        else if (c == FV_CLASS_TLS)
            rec_fill_tls(&src.u.tls, 3);
        else if (c == FV_CLASS_HTTP)
            rec_fill_http(&src.u.http, 4);
        else if (c == FV_CLASS_ALERT)
            rec_fill_alert(&src.u.alert, 5);
        else if (c == FV_CLASS_DHCP)
            rec_fill_dhcp(&src.u.dhcp, 6);
        else if (c == FV_CLASS_SSH)
            rec_fill_ssh(&src.u.ssh, 7);
        else if (c == FV_CLASS_AGGREGATE) {
            memset(&src.u.aggregate, 0, sizeof src.u.aggregate);
            snprintf(src.u.aggregate.zone, sizeof src.u.aggregate.zone, "office");
            src.u.aggregate.bucket_s = 3600;
            src.u.aggregate.flows = 8;
        }

        uint8_t valid[STORE_RECORD_MAX_BYTES];
        size_t written = 0;
        assert_int_equal(store_record_encode((fv_class)c, &src.u, valid, sizeof valid, &written),
                         FV_OK);

        for (int round = 0; round < 20000; round++) {
            size_t len = (size_t)(next_random(&rng) % (written + 8));
            uint8_t *buf = test_malloc(len > 0 ? len : 1);
            for (size_t i = 0; i < len; i++)
                buf[i] = i < written ? valid[i] : (uint8_t)next_random(&rng);
            unsigned flips = (unsigned)(next_random(&rng) % 4);
            for (unsigned f = 0; f < flips && len > 0; f++)
                buf[next_random(&rng) % len] = (uint8_t)next_random(&rng);

            fv_record out;
            int rc = store_record_decode((fv_class)c, buf, len, &out);
            if (rc != FV_OK && rc != FV_ERR_PARSE)
                fail_msg("class %d round %d: decode returned %d", c, round, rc);
            test_free(buf);
        }
    }
}

static void test_encode_rejects_invalid_records(void **state)
{
    (void)state;
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t written = 0;

    fv_tls_record t;
    rec_fill_tls(&t, 3);
    memset(t.sni, 'x', sizeof t.sni);   /* no NUL terminator */
    assert_int_equal(store_record_encode(FV_CLASS_TLS, &t, buf, sizeof buf, &written),
                     FV_ERR_INVALID);

    rec_fill_tls(&t, 3);
    t.server.kind = 42;
    assert_int_equal(store_record_encode(FV_CLASS_TLS, &t, buf, sizeof buf, &written),
                     FV_ERR_INVALID);

    rec_fill_tls(&t, 3);
    assert_int_equal(store_record_encode(FV_CLASS_TLS, &t, buf, 20, &written), FV_ERR_FULL);
    assert_int_equal(store_record_encode(FV_CLASS_COUNT, &t, buf, sizeof buf, &written),
                     FV_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_round_trip),
        cmocka_unit_test(test_flow_without_mac_round_trip),
        cmocka_unit_test(test_dns_round_trip),
        cmocka_unit_test(test_tls_round_trip),
        cmocka_unit_test(test_http_round_trip),
        cmocka_unit_test(test_alert_round_trip),
        cmocka_unit_test(test_max_length_strings_fit),
        cmocka_unit_test(test_decode_rejects_every_truncation),
        cmocka_unit_test(test_decode_rejects_wrong_version),
        cmocka_unit_test(test_decode_rejects_other_class),
        cmocka_unit_test(test_decode_rejects_trailing_byte),
        cmocka_unit_test(test_decode_rejects_bad_fields),
        cmocka_unit_test(test_decode_survives_random_mutations),
        cmocka_unit_test(test_dhcp_round_trip),
        cmocka_unit_test(test_ssh_round_trip),
        cmocka_unit_test(test_aggregate_round_trip),
        cmocka_unit_test(test_max_length_dhcp_and_ssh_fit),
        cmocka_unit_test(test_encode_rejects_invalid_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
