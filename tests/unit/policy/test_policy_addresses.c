/*
 * Unit tests for the per-zone address modes of the policy: zones[i].
 * addresses and truncate_prefix, the top-level external map, their
 * defaults, and each rejection with its line and value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "testutil.h"

#define ERR_MAX 1024

static pol_policy *load_ok(const char *text)
{
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    int rc = pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("expected the policy to load, got %d: %s", rc, err);
    assert_non_null(pol);
    return pol;
}

/* Expect FV_ERR_PARSE with "policy.yaml:LINE:" at the start, VALUE in the
 * message and a fix after a semicolon. */
static void expect_reject(const char *text, unsigned line, const char *value)
{
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    int rc = pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err);
    assert_int_equal(rc, FV_ERR_PARSE);
    assert_null(pol);

    char prefix[64];
    snprintf(prefix, sizeof prefix, "policy.yaml:%u:", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("expected the message to start with \"%s\", got: %s", prefix, err);
    if (strstr(err, value) == NULL)
        fail_msg("expected the message to contain \"%s\", got: %s", value, err);
    if (strchr(err, ';') == NULL)
        fail_msg("expected a fix after ';' in: %s", err);
}

static void expect_mode(const pol_policy *pol, const char *zone, int family, pol_addr_mode want,
                        unsigned want_prefix)
{
    pol_addr_mode mode = POL_ADDR_KEEP;
    unsigned prefix = 999;
    assert_int_equal(pol_zone_address_mode(pol, zone, family, &mode, &prefix), FV_OK);
    if (mode != want || prefix != want_prefix)
        fail_msg("zone %s IPv%d: expected %s /%u, got %s /%u", zone != NULL ? zone : "(null)",
                 family, pol_addr_mode_name(want), want_prefix, pol_addr_mode_name(mode), prefix);
}

static void test_address_modes_default(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: office\n"
                              "    networks: [10.1.0.0/16]\n");
    expect_mode(pol, "office", 4, POL_ADDR_PSEUDONYMIZE, 0);
    expect_mode(pol, NULL, 4, POL_ADDR_KEEP, 0);
    expect_mode(pol, "external", 6, POL_ADDR_KEEP, 0);
    /* A label that is no policy zone (the link-local label) is pseudonymized. */
    expect_mode(pol, "link-local", 6, POL_ADDR_PSEUDONYMIZE, 0);
    pol_destroy(&pol);
}

static void test_address_modes_read_back(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: office\n"
                              "    networks: [10.1.0.0/16]\n"
                              "    addresses: prefix-preserving\n"
                              "  - name: lab\n"
                              "    networks: [10.2.0.0/16]\n"
                              "    addresses: truncate\n"
                              "    truncate_prefix: 24\n"
                              "  - name: dual\n"
                              "    networks: [10.3.0.0/16, fd00:3::/48]\n"
                              "    addresses: truncate\n"
                              "    truncate_prefix: {ipv4: 20, ipv6: 56}\n"
                              "  - name: servers\n"
                              "    networks: [fd00:4::/64]\n"
                              "    addresses: keep\n"
                              "external:\n"
                              "  addresses: truncate\n"
                              "  truncate_prefix: {ipv4: 24, ipv6: 48}\n");
    expect_mode(pol, "office", 4, POL_ADDR_PREFIX_PRESERVING, 0);
    expect_mode(pol, "lab", 4, POL_ADDR_TRUNCATE, 24);
    expect_mode(pol, "dual", 4, POL_ADDR_TRUNCATE, 20);
    expect_mode(pol, "dual", 6, POL_ADDR_TRUNCATE, 56);
    expect_mode(pol, "servers", 6, POL_ADDR_KEEP, 0);
    expect_mode(pol, NULL, 4, POL_ADDR_TRUNCATE, 24);
    expect_mode(pol, "external", 6, POL_ADDR_TRUNCATE, 48);
    pol_destroy(&pol);
}

static void test_address_mode_ipv6_only_zone_takes_number(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: v6\n"
                              "    networks: [fd00:6::/48]\n"
                              "    addresses: truncate\n"
                              "    truncate_prefix: 64\n");
    expect_mode(pol, "v6", 6, POL_ADDR_TRUNCATE, 64);
    pol_destroy(&pol);
}

static void test_address_mode_lookup_rejects_bad_family(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\n");
    pol_addr_mode mode;
    unsigned prefix;
    assert_int_equal(pol_zone_address_mode(pol, NULL, 5, &mode, &prefix), FV_ERR_INVALID);
    assert_int_equal(pol_zone_address_mode(pol, NULL, 4, NULL, &prefix), FV_ERR_INVALID);
    pol_destroy(&pol);
}

static void test_address_mode_rejects_unknown_mode(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    addresses: hash\n",
                  5, "hash");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  addresses: drop\n",
                  4, "drop");
}

static void test_address_mode_rejects_truncate_without_prefix(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    addresses: truncate\n",
                  5, "no truncate_prefix");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external: {addresses: truncate}\n",
                  3, "no truncate_prefix");
}

static void test_address_mode_rejects_prefix_out_of_range(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    addresses: truncate\n"
                  "    truncate_prefix: 33\n",
                  6, "33");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  addresses: truncate\n"
                  "  truncate_prefix: {ipv4: 24, ipv6: 129}\n",
                  5, "129");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  addresses: truncate\n"
                  "  truncate_prefix: {ipv4: -1, ipv6: 48}\n",
                  5, "-1");
}

static void test_address_mode_rejects_number_for_two_families(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: dual\n"
                  "    networks: [10.3.0.0/16, fd00:3::/48]\n"
                  "    addresses: truncate\n"
                  "    truncate_prefix: 24\n",
                  6, "IPv4 and IPv6");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  addresses: truncate\n"
                  "  truncate_prefix: 24\n",
                  5, "IPv4 and IPv6");
}

static void test_address_mode_rejects_missing_family(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  addresses: truncate\n"
                  "  truncate_prefix: {ipv4: 24}\n",
                  5, "no ipv6 length");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  addresses: truncate\n"
                  "  truncate_prefix: {ipv4: 24, ipv5: 48}\n",
                  5, "ipv5");
}

static void test_address_mode_rejects_prefix_without_truncate(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    addresses: prefix-preserving\n"
                  "    truncate_prefix: 24\n",
                  6, "prefix-preserving");
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    truncate_prefix: 24\n",
                  5, "truncate_prefix");
}

static void test_address_mode_rejects_bad_keys(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    adresses: keep\n",
                  5, "adresses");
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "    addresses: keep\n"
                  "    addresses: truncate\n",
                  6, "addresses");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external:\n"
                  "  mode: keep\n",
                  4, "mode");
    expect_reject("version: 1\n"
                  "zones: []\n"
                  "external: keep\n",
                  3, "mapping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_modes_default),
        cmocka_unit_test(test_address_modes_read_back),
        cmocka_unit_test(test_address_mode_ipv6_only_zone_takes_number),
        cmocka_unit_test(test_address_mode_lookup_rejects_bad_family),
        cmocka_unit_test(test_address_mode_rejects_unknown_mode),
        cmocka_unit_test(test_address_mode_rejects_truncate_without_prefix),
        cmocka_unit_test(test_address_mode_rejects_prefix_out_of_range),
        cmocka_unit_test(test_address_mode_rejects_number_for_two_families),
        cmocka_unit_test(test_address_mode_rejects_missing_family),
        cmocka_unit_test(test_address_mode_rejects_prefix_without_truncate),
        cmocka_unit_test(test_address_mode_rejects_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
