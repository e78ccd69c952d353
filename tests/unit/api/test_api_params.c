/*
 * test_api_params.c: the query-parameter parsers of api/ (time, limit,
 * cursor, host filters) and the host filter's matching, called directly
 * without a server.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "api_internal.h"

#define US_PER_S 1000000ull

static void test_time_parse_accepts_rfc3339(void **state)
{
    static const struct {
        const char *text;
        uint64_t expected_us;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-11-30T08:00:00Z", 1796025600ull * US_PER_S},
        {"2026-11-30t08:00:00z", 1796025600ull * US_PER_S},
        {"2026-11-30T08:00:00.5Z", 1796025600ull * US_PER_S + 500000},
        {"2026-11-30T08:00:00.123456789Z", 1796025600ull * US_PER_S + 123456},
        {"2026-11-30T09:30:00+01:30", 1796025600ull * US_PER_S},
        {"2026-11-30T09:30:00 01:30", 1796025600ull * US_PER_S}, /* "+" decoded to space */
        {"2026-11-30T03:00:00-05:00", 1796025600ull * US_PER_S},
        {"2028-02-29T00:00:00Z", 1835395200ull * US_PER_S},        /* leap day */
        {"2000-02-29T00:00:00Z", 951782400ull * US_PER_S},         /* 400-year leap day */
        {"1969-12-31T23:00:00-01:00", 0},
        {"9999-12-31T23:59:59Z", 253402300799ull * US_PER_S},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t us = 1;

        if (api_time_parse(cases[i].text, &us) != FV_OK)
            fail_msg("rejected %s", cases[i].text);
        if (us != cases[i].expected_us)
            fail_msg("%s: got %llu", cases[i].text, (unsigned long long)us);
    }
}

static void test_time_parse_accepts_epoch_seconds(void **state)
{
    uint64_t us = 0;

    (void)state;
    assert_int_equal(api_time_parse("1796025600", &us), FV_OK);
    assert_int_equal(us, 1796025600ull * US_PER_S);
    assert_int_equal(api_time_parse("0", &us), FV_OK);
    assert_int_equal(us, 0);
}

static void test_time_parse_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "yesterday",
        "-1",
        "1e9",
        "253402300800",                     /* one second past year 9999 */
        "1234567890123",                    /* 13 digits */
        "2026-11-30",                       /* date only */
        "2026-11-30T08:00:00",              /* no offset */
        "2026-11-30T08:00Z",                /* no seconds */
        "2026-02-29T00:00:00Z",             /* 2026 is no leap year */
        "2100-02-29T00:00:00Z",             /* century, no leap year */
        "2026-04-31T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-11-30T24:00:00Z",
        "2026-11-30T08:60:00Z",
        "2026-11-30T08:00:61Z",
        "2026-11-30T08:00:00.Z",            /* empty fraction */
        "2026-11-30T08:00:00.1234567890Z",  /* ten fraction digits */
        "2026-11-30T08:00:00+0100",         /* offset without colon */
        "2026-11-30T08:00:00Zjunk",
        "1969-12-31T23:59:59Z",             /* before the epoch */
        "1970-01-01T00:00:00+00:01",        /* before the epoch after the offset */
        "2026-11-30T08:00:00\x7f",          /* a %00 after decoding */
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t us = 0;

        if (api_time_parse(bad[i], &us) != FV_ERR_INVALID)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void test_limit_parse_bounds(void **state)
{
    uint32_t v = 0;

    (void)state;
    assert_int_equal(api_limit_parse("1", &v), FV_OK);
    assert_int_equal(v, 1);
    assert_int_equal(api_limit_parse("1000", &v), FV_OK);
    assert_int_equal(v, 1000);
    assert_int_equal(api_limit_parse("0", &v), FV_ERR_INVALID);
    assert_int_equal(api_limit_parse("1001", &v), FV_ERR_INVALID);
    assert_int_equal(api_limit_parse("00001", &v), FV_ERR_INVALID);
    assert_int_equal(api_limit_parse("+5", &v), FV_ERR_INVALID);
    assert_int_equal(api_limit_parse("5 ", &v), FV_ERR_INVALID);
    assert_int_equal(api_limit_parse("", &v), FV_ERR_INVALID);
}

static void test_cursor_round_trips(void **state)
{
    static const uint64_t ids[] = {1, 0x1234, 1796083200000000ull, UINT64_MAX};
    char text[API_CURSOR_TEXT_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        for (int newest = 0; newest <= 1; newest++) {
            uint64_t back = 0;

            api_cursor_format(newest != 0, ids[i], text);
            assert_int_equal(strlen(text), API_CURSOR_TEXT_MAX - 1);
            assert_int_equal(api_cursor_parse(text, newest != 0, &back), FV_OK);
            assert_int_equal(back, ids[i]);

            /* The same cursor is rejected for the other order. */
            assert_int_equal(api_cursor_parse(text, newest == 0, &back), FV_ERR_INVALID);
        }
    }
}

static void test_cursor_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "d",
        "d000000000000000",     /* 15 hex digits */
        "d00000000000000001",   /* 17 hex digits */
        "d000000000000000G",
        "d000000000000000A",    /* uppercase hex is not what we emit */
        "d0000000000000000",    /* id 0 names no record */
        "x0000000000000001",
    };
    uint64_t id = 0;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (api_cursor_parse(bad[i], true, &id) != FV_ERR_INVALID)
            fail_msg("accepted cursor '%s'", bad[i]);
    }
}

static void test_text_sanitize_masks_bytes(void **state)
{
    char out[8];

    (void)state;
    api_text_sanitize("a\x01" "b\xc3\xa9", out, sizeof out);
    assert_string_equal(out, "a?b??");
    api_text_sanitize("abcdefghij", out, sizeof out);
    assert_string_equal(out, "abcdefg");
}

/* ---- host filters ------------------------------------------------------ */

static void test_host_filter_parse_forms(void **state)
{
    static const struct {
        const char *text;
        const char *normal;
        uint8_t kind;
        uint8_t prefix_len;
    } good[] = {
        {"IP4-ABCDEFGHIJKLMNOP", "ip4-abcdefghijklmnop", API_HOST_TOKEN4, 0},
        {"ip6-234567abcdefghij", "ip6-234567abcdefghij", API_HOST_TOKEN6, 0},
        {"203.0.113.9", "203.0.113.9", API_HOST_NET4, 32},
        {"203.0.113.0/24", "203.0.113.0/24", API_HOST_NET4, 24},
        {"0.0.0.0/0", "0.0.0.0/0", API_HOST_NET4, 0},
        {"2001:DB8:0::1", "2001:db8::1", API_HOST_NET6, 128},
        {"2001:db8:1::/48", "2001:db8:1::/48", API_HOST_NET6, 48},
        /* IPv4-mapped: searched as the IPv4 address or network. */
        {"::ffff:203.0.113.50", "203.0.113.50", API_HOST_NET4, 32},
        {"::FFFF:10.1.0.0/112", "10.1.0.0/16", API_HOST_NET4, 16},
        {"::ffff:0:0/96", "0.0.0.0/0", API_HOST_NET4, 0},
        {"::/96", "::/96", API_HOST_NET6, 96},
    };
    static const char *const bad[] = {
        "", "ip4-0123", "ip4-abcdefghijklmno1", "ip5-abcdefghijklmnop",
        "203.0.113.9/24",    /* bits set after the prefix length */
        "203.0.113.0/33", "203.0.113.0/", "203.0.113.0/2x", "2001:db8::1/64",
        "2001:db8::/129", "999.1.1.1", "example.org",
        "203.0.113.0/024", "203.0.113.0/0024", "0.0.0.0/00", /* leading zeros */
    };
    api_host_filter h;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (api_host_filter_parse(good[i].text, &h) != FV_OK)
            fail_msg("rejected host '%s'", good[i].text);
        assert_string_equal(h.text, good[i].normal);
        assert_int_equal(h.kind, good[i].kind);
        assert_int_equal(h.prefix_len, good[i].prefix_len);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (api_host_filter_parse(bad[i], &h) != FV_ERR_INVALID)
            fail_msg("accepted host '%s'", bad[i]);
        assert_int_equal(h.kind, API_HOST_UNSET);
    }
}

/* A token names the first 10 pseudonym bytes, as fv_token_format writes them. */
static void test_host_filter_token_matches_pseudonym(void **state)
{
    fv_endpoint ep;
    char token[FV_TOKEN_TEXT_MAX];
    api_host_filter h;

    (void)state;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    for (unsigned i = 0; i < 16; i++)
        ep.addr[i] = (uint8_t)(0x9d * i + 7);
    fv_token_format("ip4", ep.addr, token);
    assert_int_equal(api_host_filter_parse(token, &h), FV_OK);
    assert_true(api_host_filter_match(&h, &ep));

    /* Bytes past the 10th are not in the token. */
    ep.addr[15] ^= 0xff;
    assert_true(api_host_filter_match(&h, &ep));
    ep.addr[9] ^= 0x01;
    assert_false(api_host_filter_match(&h, &ep));
    ep.addr[9] ^= 0x01;

    /* The same bytes as an IPv6 pseudonym are another host. */
    ep.kind = FV_EP_PSEUDO_IPV6;
    assert_false(api_host_filter_match(&h, &ep));
}

/* Build an endpoint of KIND from the address text ADDR and PREFIX_LEN. */
static fv_endpoint endpoint_of(uint8_t kind, const char *addr, uint8_t prefix_len)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = kind;
    ep.prefix_len = prefix_len;
    bool v4 = kind == FV_EP_IPV4 || kind == FV_EP_PREFIX_IPV4 || kind == FV_EP_TRUNC_IPV4 ||
              kind == FV_EP_PSEUDO_IPV4;
    if (inet_pton(v4 ? AF_INET : AF_INET6, addr, ep.addr) != 1)
        fail_msg("bad test address '%s'", addr);
    return ep;
}

static void test_host_filter_network_matches(void **state)
{
    static const struct {
        const char *filter;
        uint8_t kind;
        const char *addr;
        uint8_t prefix_len;
        bool match;
    } cases[] = {
        /* Kept and prefix-preserving addresses: inside the network. */
        {"203.0.113.0/24", FV_EP_IPV4, "203.0.113.9", 0, true},
        {"203.0.113.0/24", FV_EP_IPV4, "203.0.114.9", 0, false},
        {"203.0.113.0/24", FV_EP_PREFIX_IPV4, "203.0.113.200", 0, true},
        {"10.1.0.0/20", FV_EP_IPV4, "10.1.15.255", 0, true},
        {"10.1.0.0/20", FV_EP_IPV4, "10.1.16.0", 0, false},
        {"0.0.0.0/0", FV_EP_IPV4, "198.51.100.7", 0, true},
        /* Truncated: the stored prefix must lie inside the network. */
        {"203.0.113.0/24", FV_EP_TRUNC_IPV4, "203.0.113.0", 24, true},
        {"203.0.113.0/24", FV_EP_TRUNC_IPV4, "203.0.113.128", 25, true},
        {"203.0.113.0/24", FV_EP_TRUNC_IPV4, "203.0.112.0", 23, false},
        {"203.0.113.128/25", FV_EP_TRUNC_IPV4, "203.0.113.0", 24, false},
        /* Other families and pseudonyms never match a network. */
        {"203.0.113.0/24", FV_EP_IPV6, "::ffff:203.0.113.9", 0, false},
        {"203.0.113.0/24", FV_EP_PSEUDO_IPV4, "203.0.113.9", 0, false},
        /* A plain address matches what it matched as text. */
        {"203.0.113.9", FV_EP_IPV4, "203.0.113.9", 0, true},
        {"203.0.113.9", FV_EP_IPV4, "203.0.113.10", 0, false},
        {"203.0.113.9", FV_EP_PREFIX_IPV4, "203.0.113.9", 0, true},
        {"203.0.113.9", FV_EP_TRUNC_IPV4, "203.0.113.0", 24, false},
        /* IPv6. */
        {"2001:db8:1::/48", FV_EP_IPV6, "2001:db8:1::5", 0, true},
        {"2001:db8:1::/48", FV_EP_IPV6, "2001:db8:2::5", 0, false},
        {"2001:db8:1::/48", FV_EP_PREFIX_IPV6, "2001:db8:1:ffff::1", 0, true},
        {"2001:db8:1::/48", FV_EP_TRUNC_IPV6, "2001:db8:1:2::", 64, true},
        {"2001:db8:1::/48", FV_EP_TRUNC_IPV6, "2001:db8::", 32, false},
        {"2001:db8::5", FV_EP_IPV6, "2001:db8::5", 0, true},
        {"2001:db8::5", FV_EP_IPV4, "0.0.0.0", 0, false},
    };
    api_host_filter h;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(api_host_filter_parse(cases[i].filter, &h), FV_OK);
        fv_endpoint ep = endpoint_of(cases[i].kind, cases[i].addr, cases[i].prefix_len);
        if (api_host_filter_match(&h, &ep) != cases[i].match)
            fail_msg("host=%s against %s/%u (kind %u): expected %s", cases[i].filter,
                     cases[i].addr, (unsigned)cases[i].prefix_len, (unsigned)cases[i].kind,
                     cases[i].match ? "a match" : "no match");
    }
}

/* The host filter of a record matches on either side. */
static void test_filter_match_host_either_side(void **state)
{
    fv_record rec;
    api_filter f;

    (void)state;
    memset(&rec, 0, sizeof rec);
    rec.cls = FV_CLASS_FLOW;
    rec.u.flow.src = endpoint_of(FV_EP_PSEUDO_IPV4, "10.1.0.42", 0);
    rec.u.flow.dst = endpoint_of(FV_EP_IPV4, "203.0.113.9", 0);
    memset(&f, 0, sizeof f);
    f.proto = f.port = f.state = -1;

    assert_int_equal(api_host_filter_parse("203.0.113.0/24", &f.host), FV_OK);
    assert_true(api_filter_match(&f, &rec));
    assert_int_equal(api_host_filter_parse("198.51.100.0/24", &f.host), FV_OK);
    assert_false(api_filter_match(&f, &rec));

    rec.u.flow.src = endpoint_of(FV_EP_TRUNC_IPV4, "198.51.100.0", 24);
    assert_true(api_filter_match(&f, &rec));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse_accepts_rfc3339),
        cmocka_unit_test(test_time_parse_accepts_epoch_seconds),
        cmocka_unit_test(test_time_parse_rejects_malformed),
        cmocka_unit_test(test_limit_parse_bounds),
        cmocka_unit_test(test_cursor_round_trips),
        cmocka_unit_test(test_cursor_rejects_malformed),
        cmocka_unit_test(test_text_sanitize_masks_bytes),
        cmocka_unit_test(test_host_filter_parse_forms),
        cmocka_unit_test(test_host_filter_token_matches_pseudonym),
        cmocka_unit_test(test_host_filter_network_matches),
        cmocka_unit_test(test_filter_match_host_either_side),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
