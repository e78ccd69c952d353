/*
 * test_cap_dhcp.c: cap_dhcp_parse on hand-built BOOTP/DHCPv4 messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_proto.h"

#define FIXED 236

/* Build a message: the 236-byte fixed header with OP, htype 1, hlen 6,
 * chaddr 02:00:5e:00:53:01, ciaddr 192.0.2.7 (if WITH_CIADDR), then
 * the magic cookie and OPTS (if OPTS_LEN > 0 or COOKIE). Returns the
 * length. */
static size_t build(uint8_t *buf, size_t cap, uint8_t op, bool cookie, const uint8_t *opts,
                    size_t opts_len)
{
    size_t len = FIXED;

    assert_true(FIXED + 4 + opts_len <= cap);
    memset(buf, 0, cap);
    buf[0] = op;       /* op */
    buf[1] = 1;        /* htype: Ethernet */
    buf[2] = 6;        /* hlen */
    buf[4] = 0x12;     /* xid 0x12345678 */
    buf[5] = 0x34;
    buf[6] = 0x56;
    buf[7] = 0x78;
    buf[12] = 192;     /* ciaddr 192.0.2.7 */
    buf[13] = 0;
    buf[14] = 2;
    buf[15] = 7;
    buf[16] = 198;     /* yiaddr 198.51.100.9 */
    buf[17] = 51;
    buf[18] = 100;
    buf[19] = 9;
    buf[28] = 0x02;    /* chaddr 02:00:5e:00:53:01 */
    buf[29] = 0x00;
    buf[30] = 0x5e;
    buf[31] = 0x00;
    buf[32] = 0x53;
    buf[33] = 0x01;
    if (cookie) {
        buf[len++] = 0x63;  /* magic cookie 99.130.83.99 */
        buf[len++] = 0x82;
        buf[len++] = 0x53;
        buf[len++] = 0x63;
        memcpy(buf + len, opts, opts_len);
        len += opts_len;
    }
    return len;
}

static void test_dhcp_reads_request_options(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    static const uint8_t opts[] = {
        53, 1, 3,                               /* message type: REQUEST */
        0,                                      /* pad */
        12, 5, 'L', 'a', 'p', 't', 'o',         /* host name "Lapto" */
        60, 8, 'M', 'S', 'F', 'T', ' ', '5', '.', '0', /* vendor class "MSFT 5.0" */
        50, 4, 192, 0, 2, 44,                   /* requested address 192.0.2.44 */
        255,                                    /* end */
        12, 3, 'b', 'a', 'd',                   /* after the end: never read */
    };
    size_t len = build(buf, sizeof buf, 1, true, opts, sizeof opts);

    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_int_equal(m.op, 1);
    assert_int_equal(m.msg_type, 3);
    assert_true(m.has_chaddr);
    static const uint8_t mac[6] = {0x02, 0x00, 0x5e, 0x00, 0x53, 0x01};
    assert_memory_equal(m.chaddr, mac, 6);
    static const uint8_t ci[4] = {192, 0, 2, 7};
    assert_memory_equal(m.ciaddr, ci, 4);
    assert_string_equal(m.hostname, "Lapto");
    assert_string_equal(m.vendor_class, "MSFT 5.0");
    assert_true(m.has_requested_ip);
    static const uint8_t req[4] = {192, 0, 2, 44};
    assert_memory_equal(m.requested_ip, req, 4);
    assert_false(m.options_cut);
}

static void test_dhcp_rejects_short_header(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    size_t len = build(buf, sizeof buf, 1, false, NULL, 0);

    /* One byte short of the 236-byte fixed header. */
    assert_int_equal(cap_dhcp_parse(buf, len - 1, &m), FV_ERR_PARSE);
    /* Exactly the fixed header, no cookie: plain BOOTP. */
    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_int_equal(m.msg_type, 0);
    assert_string_equal(m.hostname, "");
}

static void test_dhcp_rejects_unknown_op(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    size_t len = build(buf, sizeof buf, 3, false, NULL, 0); /* op 3 is not BOOTP */

    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_ERR_PARSE);
}

static void test_dhcp_stops_at_option_past_end(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    static const uint8_t opts[] = {
        53, 1, 1,               /* message type: DISCOVER */
        12, 40, 'h', 'o', 's',  /* host name claiming 40 bytes, 3 present */
    };
    size_t len = build(buf, sizeof buf, 1, true, opts, sizeof opts);

    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_int_equal(m.msg_type, 1);
    assert_string_equal(m.hostname, "");
    assert_true(m.options_cut);

    /* An option code as the last byte, without its length byte. */
    static const uint8_t code_only[] = {53, 1, 1, 12};
    len = build(buf, sizeof buf, 1, true, code_only, sizeof code_only);
    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_true(m.options_cut);
}

static void test_dhcp_ignores_overload_option(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    static const uint8_t opts[] = {
        52, 1, 3,       /* overload: options also in sname and file */
        53, 1, 5,       /* message type: ACK */
        255,
    };
    size_t len = build(buf, sizeof buf, 2, true, opts, sizeof opts);

    /* sname (offset 44) holds what would be a host name option if the
     * overload were followed; it must not be read. */
    buf[44] = 12;
    buf[45] = 4;
    memcpy(buf + 46, "evil", 4);
    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_int_equal(m.op, 2);
    assert_int_equal(m.msg_type, 5);
    assert_string_equal(m.hostname, "");
}

static void test_dhcp_masks_unprintable_host_name(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    static const uint8_t opts[] = {
        12, 6, 'a', 0x01, 'b', 0xc3, 'c', 0x00, /* control byte, UTF-8 lead, trailing NUL */
        50, 3, 10, 0, 0,                        /* requested address with a wrong length */
        255,
    };
    size_t len = build(buf, sizeof buf, 1, true, opts, sizeof opts);

    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_string_equal(m.hostname, "a?b?c");
    assert_false(m.has_requested_ip);
}

static void test_dhcp_skips_chaddr_of_other_hardware(void **state)
{
    (void)state;
    uint8_t buf[512];
    cap_dhcp_msg m;
    size_t len = build(buf, sizeof buf, 1, false, NULL, 0);

    buf[1] = 6;     /* htype: IEEE 802 (token ring) */
    assert_int_equal(cap_dhcp_parse(buf, len, &m), FV_OK);
    assert_false(m.has_chaddr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dhcp_reads_request_options),
        cmocka_unit_test(test_dhcp_rejects_short_header),
        cmocka_unit_test(test_dhcp_rejects_unknown_op),
        cmocka_unit_test(test_dhcp_stops_at_option_past_end),
        cmocka_unit_test(test_dhcp_ignores_overload_option),
        cmocka_unit_test(test_dhcp_masks_unprintable_host_name),
        cmocka_unit_test(test_dhcp_skips_chaddr_of_other_hardware),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
