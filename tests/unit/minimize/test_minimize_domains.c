/*
 * Unit tests for the domain-name steps of cli/minimize.c: the
 * never-record check and the registrable and pseudonymize modes.
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
#define ERR_MAX 1024

/* One zone, so internal literals still become address tokens first. */
#define ZONES "zones:\n  - name: office\n    networks: [10.0.0.0/8, fd00::/8]\n"

typedef struct fixture {
    char dir[512];
    anon_ctx *anon;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char err[ERR_MAX], key_path[600];

    memset(&f, 0, sizeof f);
    tu_make_temp_dir(f.dir, sizeof f.dir);
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", f.dir);
    assert_int_equal(anon_open(key_path, 86400, NOW_S, &f.anon, err, sizeof err), FV_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    anon_close(&f->anon);
    tu_remove_tree(f->dir);
    return 0;
}

static pol_policy *load(const char *domains_yaml)
{
    char text[2048];
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    snprintf(text, sizeof text, "version: 1\n" ZONES "%s", domains_yaml);
    if (pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err) != FV_OK)
        fail_msg("policy rejected: %s", err);
    return pol;
}

/* Run fv_minimize_domain on INPUT and check the result is EXPECTED. */
static void expect_domain(const pol_policy *pol, anon_ctx *anon, fv_name_source source,
                          const char *input, const char *expected)
{
    char name[FV_NAME_MAX];
    snprintf(name, sizeof name, "%s", input);
    bool changed = fv_minimize_domain(pol, anon, source, name, sizeof name);
    if (strcmp(name, expected) != 0)
        fail_msg("%s became \"%s\", expected \"%s\"", input, name, expected);
    assert_int_equal(changed, strcmp(input, expected) != 0);
}

/* The "dom-" token of the lower-case name LOWER. */
static void domain_token(anon_ctx *anon, const char *lower, char token[FV_TOKEN_TEXT_MAX])
{
    uint8_t pseudo[FV_PSEUDONYM_BYTES];
    anon_pseudonym(anon, ANON_TYPE_DOMAIN, (const uint8_t *)lower, strlen(lower), pseudo);
    fv_token_format("dom", pseudo, token);
}

static void test_never_record_by_suffix(void **state)
{
    (void)state;
    pol_policy *pol = load("domains:\n  never_record:\n    suffixes: [example-health.org]\n");
    assert_true(fv_name_never_recorded(pol, "example-health.org"));
    assert_true(fv_name_never_recorded(pol, "portal.Example-Health.org."));
    /* An HTTP Host with a port is matched on its host part. */
    assert_true(fv_name_never_recorded(pol, "portal.example-health.org:8443"));
    assert_false(fv_name_never_recorded(pol, "myexample-health.org"));
    assert_false(fv_name_never_recorded(pol, "example-health.org.example.com"));
    assert_false(fv_name_never_recorded(pol, "10.1.0.5:8080"));
    assert_false(fv_name_never_recorded(pol, ""));
    pol_destroy(&pol);
}

static void test_never_record_by_category(void **state)
{
    (void)state;
    pol_policy *pol = load("domains:\n  never_record:\n    categories: [religion]\n");
    assert_true(fv_name_never_recorded(pol, "www.vatican.va"));
    assert_true(fv_name_never_recorded(pol, "quran.com:443"));
    assert_false(fv_name_never_recorded(pol, "www.webmd.com"));
    pol_destroy(&pol);
}

static void test_never_record_empty_list_matches_nothing(void **state)
{
    (void)state;
    pol_policy *pol = load("");
    assert_false(fv_name_never_recorded(pol, "www.vatican.va"));
    assert_false(fv_name_never_recorded(pol, "example-health.org"));
    pol_destroy(&pol);
}

static void test_keep_mode_changes_nothing(void **state)
{
    fixture *f = *state;
    pol_policy *pol = load("");
    expect_domain(pol, f->anon, FV_NAME_DNS, "www.Example.co.uk", "www.Example.co.uk");
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "a.b.example.com:8080",
                  "a.b.example.com:8080");
    pol_destroy(&pol);
}

static void test_registrable_mode_cuts_to_registrable(void **state)
{
    fixture *f = *state;
    pol_policy *pol = load("domains:\n  mode: registrable\n");
    expect_domain(pol, f->anon, FV_NAME_DNS, "www.example.co.uk", "example.co.uk");
    expect_domain(pol, f->anon, FV_NAME_DNS, "A.B.Example.COM.", "example.com");
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "cdn.assets.example.org:8080",
                  "example.org:8080");
    expect_domain(pol, f->anon, FV_NAME_INTERNAL_DNS, "mail.example.org", "example.org");
    expect_domain(pol, f->anon, FV_NAME_DNS, "example.com", "example.com");
    /* No registrable part: a public suffix itself, or a single label. */
    expect_domain(pol, f->anon, FV_NAME_DNS, "co.uk", "co.uk");
    expect_domain(pol, f->anon, FV_NAME_DNS, "localhost", "localhost");
    pol_destroy(&pol);
}

static void test_registrable_mode_keeps_ip_literals(void **state)
{
    fixture *f = *state;
    pol_policy *pol = load("domains:\n  mode: registrable\n");
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "192.0.2.7:8080", "192.0.2.7:8080");
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "[2001:db8::1]:443", "[2001:db8::1]:443");
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "2001:db8::1", "2001:db8::1");
    expect_domain(pol, f->anon, FV_NAME_DNS, "7.2.0.192.in-addr.arpa", "7.2.0.192.in-addr.arpa");

    /* An internal literal still becomes its address token. */
    char name[FV_NAME_MAX] = "10.1.0.5:8080";
    assert_true(fv_minimize_domain(pol, f->anon, FV_NAME_HOST_HEADER, name, sizeof name));
    assert_int_equal(strncmp(name, "ip4-", 4), 0);
    assert_string_equal(name + strlen(name) - 5, ":8080");
    pol_destroy(&pol);
}

static void test_pseudonymize_mode_writes_domain_token(void **state)
{
    fixture *f = *state;
    pol_policy *pol = load("domains:\n  mode: pseudonymize\n");
    char token[FV_TOKEN_TEXT_MAX], expected[FV_NAME_MAX];

    domain_token(f->anon, "www.example.com", token);
    assert_int_equal(strncmp(token, "dom-", 4), 0);
    expect_domain(pol, f->anon, FV_NAME_DNS, "www.example.com", token);
    /* Case and a trailing dot do not change the token; a port is kept. */
    expect_domain(pol, f->anon, FV_NAME_DNS, "WWW.Example.com.", token);
    snprintf(expected, sizeof expected, "%s:8443", token);
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "www.example.com:8443", expected);

    /* Another name gets another token. */
    char other[FV_TOKEN_TEXT_MAX];
    domain_token(f->anon, "mail.example.com", other);
    assert_string_not_equal(token, other);

    /* The domain tag separates it from a host-name token of the same text. */
    uint8_t pseudo[FV_PSEUDONYM_BYTES];
    char host_token[FV_TOKEN_TEXT_MAX];
    anon_pseudonym(f->anon, ANON_TYPE_HOSTNAME, (const uint8_t *)"www.example.com", 15, pseudo);
    fv_token_format("dom", pseudo, host_token);
    assert_string_not_equal(token, host_token);

    /* Literals stay, and external ones keep their address. */
    expect_domain(pol, f->anon, FV_NAME_HOST_HEADER, "192.0.2.7", "192.0.2.7");
    pol_destroy(&pol);
}

static void test_local_names_keep_their_treatment(void **state)
{
    fixture *f = *state;
    pol_policy *pol = load("domains:\n  mode: pseudonymize\n");
    char name[FV_NAME_MAX] = "janes-laptop.local";
    assert_true(fv_minimize_domain(pol, f->anon, FV_NAME_LOCAL_DNS, name, sizeof name));
    assert_int_equal(strncmp(name, "name-", 5), 0);
    assert_string_equal(name + strlen(name) - 6, ".local");

    snprintf(name, sizeof name, "%s", "_services._dns-sd._udp.local");
    assert_false(fv_minimize_domain(pol, f->anon, FV_NAME_LOCAL_DNS, name, sizeof name));
    assert_string_equal(name, "_services._dns-sd._udp.local");

    snprintf(name, sizeof name, "%s", "WORKSTATION7");
    assert_true(fv_minimize_domain(pol, f->anon, FV_NAME_HOST_NAME, name, sizeof name));
    assert_int_equal(strncmp(name, "name-", 5), 0);

    /* A private-suffix name from an internal host keeps its name token. */
    snprintf(name, sizeof name, "%s", "laptop-jane.lan");
    assert_true(fv_minimize_domain(pol, f->anon, FV_NAME_INTERNAL_DNS, name, sizeof name));
    assert_int_equal(strncmp(name, "name-", 5), 0);
    pol_destroy(&pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_record_by_suffix),
        cmocka_unit_test(test_never_record_by_category),
        cmocka_unit_test(test_never_record_empty_list_matches_nothing),
        cmocka_unit_test(test_keep_mode_changes_nothing),
        cmocka_unit_test(test_registrable_mode_cuts_to_registrable),
        cmocka_unit_test(test_registrable_mode_keeps_ip_literals),
        cmocka_unit_test(test_pseudonymize_mode_writes_domain_token),
        cmocka_unit_test(test_local_names_keep_their_treatment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
