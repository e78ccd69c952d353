/*
 * Unit tests for cli/minimize.c: internal addresses and local host names
 * hidden inside HTTP Host, TLS SNI and DNS names become pseudonym tokens,
 * and everything else is left as sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "minimize.h"
#include "testutil.h"

#define NOW_S 1764489600u

static const char POLICY[] = "version: 1\n"
                             "zones:\n"
                             "  - name: office\n"
                             "    networks: [10.0.0.0/8, fd00::/8]\n";

typedef struct fixture {
    char dir[512];
    pol_policy *policy;
    anon_ctx *anon;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char err[1024], key_path[600];

    memset(&f, 0, sizeof f);
    tu_make_temp_dir(f.dir, sizeof f.dir);
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", f.dir);
    assert_int_equal(pol_load_buffer("policy.yaml", POLICY, sizeof POLICY - 1, &f.policy, err,
                                     sizeof err),
                     FV_OK);
    assert_int_equal(anon_open(key_path, 86400, NOW_S, &f.anon, err, sizeof err), FV_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    anon_close(&f->anon);
    pol_destroy(&f->policy);
    tu_remove_tree(f->dir);
    return 0;
}

/* The token the address fields get for TEXT, so names and fields agree. */
static void address_token(fixture *f, const char *text, char token[FV_TOKEN_TEXT_MAX])
{
    uint8_t addr[16] = {0}, pseudo[FV_PSEUDONYM_BYTES];
    if (inet_pton(AF_INET, text, addr) == 1) {
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, 4, pseudo);
        fv_token_format("ip4", pseudo, token);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
        anon_pseudonym(f->anon, ANON_TYPE_IPV6, addr, 16, pseudo);
        fv_token_format("ip6", pseudo, token);
    }
}

static void expect_rewrite(fixture *f, fv_name_source source, const char *input,
                           const char *address, const char *suffix)
{
    char name[FV_NAME_MAX], token[FV_TOKEN_TEXT_MAX], expected[FV_NAME_MAX];
    snprintf(name, sizeof name, "%s", input);
    address_token(f, address, token);
    snprintf(expected, sizeof expected, "%s%s", token, suffix);

    assert_true(fv_minimize_name(f->policy, f->anon, source, name, sizeof name));
    assert_string_equal(name, expected);
    assert_null(strstr(name, address));
}

static void expect_unchanged(fixture *f, fv_name_source source, const char *input)
{
    char name[FV_NAME_MAX];
    snprintf(name, sizeof name, "%s", input);
    assert_false(fv_minimize_name(f->policy, f->anon, source, name, sizeof name));
    assert_string_equal(name, input);
}

static void test_host_ipv4_literal_with_port(void **state)
{
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "10.1.0.5:8080", "10.1.0.5", ":8080");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "10.1.0.5", "10.1.0.5", "");
}

static void test_host_ipv6_literal_bracketed(void **state)
{
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "[fd00::5]:443", "fd00::5", ":443");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "fd00::5", "fd00::5", "");
}

static void test_external_literals_kept(void **state)
{
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "192.0.2.7:8080");
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "[2001:db8::1]:443");
    expect_unchanged(*state, FV_NAME_DNS, "7.2.0.192.in-addr.arpa");
}

static void test_ordinary_names_kept(void **state)
{
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "www.example.com");
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "www.example.com:8080");
    expect_unchanged(*state, FV_NAME_DNS, "10.example.com");
    expect_unchanged(*state, FV_NAME_DNS, "mail.example.org");
}

static void test_reverse_ipv4_name_rewritten(void **state)
{
    expect_rewrite(*state, FV_NAME_DNS, "5.0.1.10.in-addr.arpa", "10.1.0.5", ".in-addr.arpa");
    expect_rewrite(*state, FV_NAME_DNS, "5.0.1.10.IN-ADDR.ARPA", "10.1.0.5", ".IN-ADDR.ARPA");
}

static void test_reverse_subnet_name_kept(void **state)
{
    /* A reverse zone of a /24 names a network, not a host. */
    expect_unchanged(*state, FV_NAME_DNS, "0.1.10.in-addr.arpa");
    expect_unchanged(*state, FV_NAME_DNS, "256.0.1.10.in-addr.arpa");
}

static void test_reverse_ipv6_name_rewritten(void **state)
{
    /* fd00::5 as 32 nibble labels, lowest nibble first. */
    expect_rewrite(*state, FV_NAME_DNS,
                   "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                   "fd00::5", ".ip6.arpa");
}

static void test_local_host_name_pseudonymized(void **state)
{
    fixture *f = *state;
    char a[FV_NAME_MAX] = "janes-laptop.local";
    char b[FV_NAME_MAX] = "Janes-Laptop.local";

    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_LOCAL_DNS, a, sizeof a));
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_LOCAL_DNS, b, sizeof b));
    assert_null(strstr(a, "janes"));
    assert_int_equal(strncmp(a, "name-", 5), 0);
    assert_non_null(strstr(a, ".local"));
    /* Case variants of one host name get one token. */
    assert_string_equal(a, b);
}

static void test_local_service_instance_pseudonymized(void **state)
{
    fixture *f = *state;
    char name[FV_NAME_MAX] = "Jane\\226\\128\\153s Mac._airplay._tcp.local";

    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_LOCAL_DNS, name, sizeof name));
    assert_null(strstr(name, "Jane"));
    size_t len = strlen(name);
    const char *suffix = "._airplay._tcp.local";
    assert_true(len > strlen(suffix));
    assert_string_equal(name + len - strlen(suffix), suffix);
}

static void test_local_service_type_kept(void **state)
{
    expect_unchanged(*state, FV_NAME_LOCAL_DNS, "_airplay._tcp.local");
    expect_unchanged(*state, FV_NAME_LOCAL_DNS, "local");
}

static void test_local_names_untouched_in_unicast_dns(void **state)
{
    expect_unchanged(*state, FV_NAME_DNS, "janes-laptop.local");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_ipv4_literal_with_port),
        cmocka_unit_test(test_host_ipv6_literal_bracketed),
        cmocka_unit_test(test_external_literals_kept),
        cmocka_unit_test(test_ordinary_names_kept),
        cmocka_unit_test(test_reverse_ipv4_name_rewritten),
        cmocka_unit_test(test_reverse_subnet_name_kept),
        cmocka_unit_test(test_reverse_ipv6_name_rewritten),
        cmocka_unit_test(test_local_host_name_pseudonymized),
        cmocka_unit_test(test_local_service_instance_pseudonymized),
        cmocka_unit_test(test_local_service_type_kept),
        cmocka_unit_test(test_local_names_untouched_in_unicast_dns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
