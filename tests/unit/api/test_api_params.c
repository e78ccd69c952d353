/*
 * test_api_params.c: the query-parameter parsers of api/ (time, limit,
 * cursor), called directly without a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
