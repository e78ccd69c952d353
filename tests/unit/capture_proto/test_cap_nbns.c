/*
 * test_cap_nbns.c: the NetBIOS name service decoder (capture/cap_nbns.c)
 * and the NTP header peek (capture/cap_udp_apps.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_internal.h"
#include "cap_proto.h"

/* Write the first-level encoding of the 16-byte NAME (already padded and
 * with its suffix byte) as a 32-byte label after a length byte 0x20. */
static size_t encode_name(uint8_t *out, const uint8_t name[16])
{
    out[0] = 0x20;
    for (int i = 0; i < 16; i++) {
        out[1 + 2 * i] = (uint8_t)('A' + (name[i] >> 4));
        out[2 + 2 * i] = (uint8_t)('A' + (name[i] & 0x0f));
    }
    return 33;
}

/* Build a name service message: header (txid 0x1234, FLAGS, QDCOUNT 1),
 * the encoded NAME, root byte, type NB (0x0020), class IN. */
static size_t build(uint8_t *buf, uint16_t flags, const uint8_t name[16])
{
    size_t pos = 12;

    memset(buf, 0, 12);
    buf[0] = 0x12;                      /* transaction id */
    buf[1] = 0x34;
    buf[2] = (uint8_t)(flags >> 8);     /* flags */
    buf[3] = (uint8_t)flags;
    buf[5] = 1;                         /* QDCOUNT 1 */
    pos += encode_name(buf + pos, name);
    buf[pos++] = 0;                     /* end of name (no scope) */
    buf[pos++] = 0x00;                  /* type NB */
    buf[pos++] = 0x20;
    buf[pos++] = 0x00;                  /* class IN */
    buf[pos++] = 0x01;
    return pos;
}

static void test_nbns_decodes_query_name(void **state)
{
    (void)state;
    /* "WORKSTATION1" padded with spaces to 15 bytes, suffix 0x00. */
    static const uint8_t name[16] = {'W', 'O', 'R', 'K', 'S', 'T', 'A', 'T',
                                     'I', 'O', 'N', '1', ' ', ' ', ' ', 0x00};
    uint8_t buf[128];
    char out[FV_NAME_MAX];
    uint8_t opcode;
    bool is_response;
    uint16_t txid, qtype, qclass;
    size_t len = build(buf, 0x0110, name); /* query, recursion desired, broadcast */

    assert_int_equal(cap_nbns_parse(buf, len, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_OK);
    assert_string_equal(out, "WORKSTATION1");
    assert_int_equal(opcode, 0);
    assert_false(is_response);
    assert_int_equal(txid, 0x1234);
    assert_int_equal(qtype, 0x20);
    assert_int_equal(qclass, 1);
}

static void test_nbns_decodes_registration_with_suffix(void **state)
{
    (void)state;
    /* "PC-7" with suffix 0x20 (file server service), opcode 5. */
    static const uint8_t name[16] = {'P', 'C', '-', '7', ' ', ' ', ' ', ' ',
                                     ' ', ' ', ' ', ' ', ' ', ' ', ' ', 0x20};
    uint8_t buf[128];
    char out[FV_NAME_MAX];
    uint8_t opcode;
    bool is_response;
    uint16_t txid, qtype, qclass;
    size_t len = build(buf, 0x2910, name); /* opcode 5 (registration), RD, B */

    assert_int_equal(cap_nbns_parse(buf, len, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_OK);
    assert_string_equal(out, "PC-7");
    assert_int_equal(opcode, 5);
}

static void test_nbns_escapes_unprintable_bytes(void **state)
{
    (void)state;
    /* "__MSBROWSE__" framed by 0x01 and 0x02, the browser election name. */
    static const uint8_t name[16] = {0x01, 0x02, '_', '_', 'M', 'S', 'B', 'R',
                                     'O', 'W', 'S', 'E', '_', '_', 0x02, 0x01};
    uint8_t buf[128];
    char out[FV_NAME_MAX];
    uint8_t opcode;
    bool is_response;
    uint16_t txid, qtype, qclass;
    size_t len = build(buf, 0x0110, name);

    assert_int_equal(cap_nbns_parse(buf, len, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_OK);
    assert_string_equal(out, "\\001\\002__MSBROWSE__\\002");
}

static void test_nbns_rejects_bad_encoding(void **state)
{
    (void)state;
    static const uint8_t name[16] = {'A', 'B', ' ', ' ', ' ', ' ', ' ', ' ',
                                     ' ', ' ', ' ', ' ', ' ', ' ', ' ', 0x00};
    uint8_t buf[128];
    char out[FV_NAME_MAX];
    uint8_t opcode;
    bool is_response;
    uint16_t txid, qtype, qclass;
    size_t len = build(buf, 0x0110, name);

    /* A letter past 'P' is not a nibble. */
    buf[13] = 'Z';
    assert_int_equal(cap_nbns_parse(buf, len, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_ERR_PARSE);
    len = build(buf, 0x0110, name);
    /* A label length other than 32. */
    buf[12] = 0x10;
    assert_int_equal(cap_nbns_parse(buf, len, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_ERR_PARSE);
    len = build(buf, 0x0110, name);
    /* Cut inside the encoded name, and cut before type and class. */
    assert_int_equal(cap_nbns_parse(buf, 30, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_ERR_PARSE);
    assert_int_equal(cap_nbns_parse(buf, len - 2, out, &opcode, &is_response, &txid, &qtype,
                                    &qclass),
                     FV_ERR_PARSE);
    /* A header alone. */
    assert_int_equal(cap_nbns_parse(buf, 12, out, &opcode, &is_response, &txid, &qtype, &qclass),
                     FV_ERR_PARSE);
}

static void test_ntp_peek_reads_mode_and_version(void **state)
{
    (void)state;
    uint8_t pkt[48];
    uint8_t mode = 0, version = 0;

    memset(pkt, 0, sizeof pkt);
    pkt[0] = 0x23;  /* LI 0, version 4, mode 3 (client) */
    assert_true(cap_ntp_peek(pkt, sizeof pkt, &mode, &version));
    assert_int_equal(mode, 3);
    assert_int_equal(version, 4);

    pkt[0] = 0x1c;  /* LI 0, version 3, mode 4 (server) */
    assert_true(cap_ntp_peek(pkt, sizeof pkt, &mode, &version));
    assert_int_equal(mode, 4);
    assert_int_equal(version, 3);

    /* A 12-byte control message (mode 6) is complete; a client header is not. */
    pkt[0] = 0x16;  /* version 2, mode 6 */
    assert_true(cap_ntp_peek(pkt, 12, &mode, &version));
    assert_int_equal(mode, 6);
    pkt[0] = 0x23;
    assert_false(cap_ntp_peek(pkt, 47, &mode, &version));
    /* Version 0 and 7 do not exist. */
    pkt[0] = 0x03;
    assert_false(cap_ntp_peek(pkt, sizeof pkt, &mode, &version));
    pkt[0] = 0x3b;
    assert_false(cap_ntp_peek(pkt, sizeof pkt, &mode, &version));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nbns_decodes_query_name),
        cmocka_unit_test(test_nbns_decodes_registration_with_suffix),
        cmocka_unit_test(test_nbns_escapes_unprintable_bytes),
        cmocka_unit_test(test_nbns_rejects_bad_encoding),
        cmocka_unit_test(test_ntp_peek_reads_mode_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
