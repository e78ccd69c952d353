/*
 * test_api_redact: api_redact_addresses, which keeps address literals
 * out of the audit trail, on paths, query values and text that only
 * looks like an address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "api_internal.h"

static void expect_redacted(const char *in, const char *expected)
{
    char out[256];
    api_redact_addresses(in, out, sizeof out);
    if (strcmp(out, expected) != 0)
        fail_msg("redacting '%s' gave '%s', expected '%s'", in, out, expected);
}

static void test_redact_ipv4_in_path_and_value(void **state)
{
    (void)state;
    expect_redacted("/api/v1/hosts/10.1.0.42/timeline", "/api/v1/hosts/<address>/timeline");
    expect_redacted("10.1.0.42", "<address>");
    expect_redacted("peer:10.1.0.42.", "peer:<address>.");
}

static void test_redact_networks_with_prefix(void **state)
{
    (void)state;
    expect_redacted("10.0.0.0/8", "<address>");
    expect_redacted("/api/v1/hosts/10.1.0.0/24/timeline", "/api/v1/hosts/<address>/timeline");
    expect_redacted("fd00:1::/48", "<address>");
}

static void test_redact_ipv6_forms(void **state)
{
    (void)state;
    expect_redacted("2001:db8::1", "<address>");
    expect_redacted("::ffff:10.1.0.42", "<address>");
    expect_redacted("[fe80::1]:443", "[<address>]:443");
    expect_redacted("fe80::1%eth0", "<address>%eth0");
}

/* Times, tokens, numbers and words stay as they are. */
static void test_redact_keeps_other_text(void **state)
{
    (void)state;
    expect_redacted("2026-11-30T10:00:00Z", "2026-11-30T10:00:00Z");
    expect_redacted("ip4-55sqoycwizbu7rec", "ip4-55sqoycwizbu7rec");
    expect_redacted("/api/v1/alerts/123", "/api/v1/alerts/123");
    expect_redacted("example.com", "example.com");
    expect_redacted("1795996800", "1795996800");
    expect_redacted("10.1.0.421", "10.1.0.421");
    expect_redacted("", "");
}

/* A short buffer cuts the text but never leaves a partial address. */
static void test_redact_short_buffer(void **state)
{
    (void)state;
    char out[8];
    api_redact_addresses("x=10.1.0.42", out, sizeof out);
    assert_string_equal(out, "x=<addr");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_ipv4_in_path_and_value),
        cmocka_unit_test(test_redact_networks_with_prefix),
        cmocka_unit_test(test_redact_ipv6_forms),
        cmocka_unit_test(test_redact_keeps_other_text),
        cmocka_unit_test(test_redact_short_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
