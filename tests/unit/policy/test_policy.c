/*
 * Unit tests for policy/: the example policy round trip, lookups, BPF
 * filter, summary, and every rejection path with its line and value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "policy.h"
#include "testutil.h"

#define ERR_MAX 1024

/* Parse TEXT as "policy.yaml"; fail the test on any error. */
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

/*
 * Parse TEXT and expect FV_ERR_PARSE with a message that starts with
 * "policy.yaml:LINE:" and contains VALUE (the offending text).
 */
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
    /* Every message gives a fix after a semicolon. */
    if (strchr(err, ';') == NULL)
        fail_msg("expected a fix after ';' in: %s", err);
}

static void addr4(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    assert_int_equal(inet_pton(AF_INET, text, out), 1);
}

static void addr6(const char *text, uint8_t out[16])
{
    assert_int_equal(inet_pton(AF_INET6, text, out), 1);
}

static const char *zone4(const pol_policy *pol, const char *text)
{
    uint8_t a[16];
    addr4(text, a);
    return pol_zone_of(pol, 4, a);
}

static const char *zone6(const pol_policy *pol, const char *text)
{
    uint8_t a[16];
    addr6(text, a);
    return pol_zone_of(pol, 6, a);
}

static bool excluded4(const pol_policy *pol, const char *text)
{
    uint8_t a[16];
    addr4(text, a);
    return pol_is_excluded(pol, 4, a);
}

/* The combined lookup agrees with pol_zone_of and pol_is_excluded on
 * addresses in a zone, in an exclusion inside a zone, in an exclusion
 * outside every zone, outside everything, in IPv6, and for an invalid
 * family. */
static void test_zone_and_exclusion_agree(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: office\n"
                              "    networks: [10.0.0.0/8, fd00::/8]\n"
                              "  - name: lab\n"
                              "    networks: [172.16.0.0/12]\n"
                              "exclude: [10.9.0.0/16, 192.0.2.0/24, fd00:9::/32]\n");
    static const struct {
        int family;
        const char *text;
    } cases[] = {
        {4, "10.1.2.3"},  {4, "10.9.0.1"},  {4, "172.16.5.5"}, {4, "192.0.2.7"},
        {4, "198.51.100.1"}, {6, "fd00:1::1"}, {6, "fd00:9::1"}, {6, "2001:db8::1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t a[16];
        if (cases[i].family == 4)
            addr4(cases[i].text, a);
        else
            addr6(cases[i].text, a);
        bool excluded = !pol_is_excluded(pol, cases[i].family, a);
        const char *zone = pol_zone_and_exclusion(pol, cases[i].family, a, &excluded);
        assert_ptr_equal(zone, pol_zone_of(pol, cases[i].family, a));
        assert_int_equal(excluded, pol_is_excluded(pol, cases[i].family, a));
    }
    uint8_t a[16];
    addr4("10.9.0.1", a);
    bool excluded = true;
    assert_true(pol_is_excluded(pol, 4, a));
    assert_null(pol_zone_and_exclusion(pol, 5, a, &excluded));
    assert_false(excluded);
    pol_destroy(&pol);
}

static bool excluded6(const pol_policy *pol, const char *text)
{
    uint8_t a[16];
    addr6(text, a);
    return pol_is_excluded(pol, 6, a);
}

/* An IPv6 address that carries an IPv4 address gets the zone, exclusion
 * and group of that address: IPv4-mapped, IPv4-compatible, NAT64's
 * well-known prefix and 6to4. An IPv6 zone still wins, and other IPv6
 * addresses ending in the same bits are not matched. */
static void test_embedded_ipv4_takes_ipv4_zone(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: office\n"
                              "    networks: [10.0.0.0/8]\n"
                              "  - name: v6lab\n"
                              "    networks: [\"2002:a01::/32\"]\n"
                              "exclude: [10.9.0.0/16]\n"
                              "groups:\n"
                              "  - name: guests\n"
                              "    subnets: [10.7.0.0/16]\n"
                              "    mode: exclude\n"
                              "    legal_basis: works agreement\n");
    static const char *const office[] = {"::ffff:10.1.0.5",        "::10.1.0.5",
                                         "64:ff9b::10.1.0.5",      "64:ff9b:1::10.1.0.5",
                                         "2002:a02:5::1",          "2001:db8:2::5efe:10.1.0.5",
                                         "fe80::200:5efe:10.1.0.5"};
    for (size_t i = 0; i < sizeof office / sizeof office[0]; i++) {
        const char *zone = zone6(pol, office[i]);
        if (zone == NULL || strcmp(zone, "office") != 0)
            fail_msg("%s: zone %s, expected office", office[i], zone ? zone : "(none)");
        assert_false(excluded6(pol, office[i]));
    }
    static const char *const excluded[] = {"::ffff:10.9.0.5",          "::10.9.0.5",
                                           "64:ff9b::10.9.0.5",        "2002:a09:5::1",
                                           "2001:db8:2::5efe:10.9.0.5",
                                           "2002:a09:5::5efe:192.168.1.5"};
    for (size_t i = 0; i < sizeof excluded / sizeof excluded[0]; i++) {
        if (!excluded6(pol, excluded[i]))
            fail_msg("%s is not excluded", excluded[i]);
        uint8_t a[16];
        addr6(excluded[i], a);
        bool ex = false;
        (void)pol_zone_and_exclusion(pol, 6, a, &ex);
        assert_true(ex);
    }
    /* The IPv6 zone wins over the IPv4 address it carries (10.1.x.x). */
    assert_string_equal(zone6(pol, "2002:a01:5::1"), "v6lab");
    /* Not an embedding form: the same low 32 bits, another prefix. */
    assert_null(zone6(pol, "2001:db8::10.1.0.5"));
    assert_null(zone6(pol, "2001:db8::100:5efe:10.1.0.5"));
    assert_null(zone6(pol, "::1"));
    assert_null(zone6(pol, "::"));
    assert_false(excluded6(pol, "2001:db8::10.9.0.5"));

    /* Group membership: the mapped address of a guest is excluded. */
    uint8_t a[16];
    addr6("::ffff:10.7.0.9", a);
    pol_host host = {.family = 6, .addr = a};
    pol_decision d = pol_decide(pol, &host, 1700000000);
    assert_int_equal(d.mode, POL_EXCLUDE);
    assert_non_null(d.group);
    assert_string_equal(d.group, "guests");
    pol_destroy(&pol);
}

/* ---------------------------------------------------------------------- */
/* Accepted policies                                                        */
/* ---------------------------------------------------------------------- */

static void test_example_policy_round_trip(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/policy/example-policy.yaml",
             tu_env("FLOWVEIL_SOURCE_DIR", "."));
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    int rc = pol_load(path, &pol, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("example policy rejected: %s", err);

    assert_int_equal(pol_zone_count(pol), 4);
    assert_string_equal(pol_zone_name(pol, 0), "office");
    assert_string_equal(pol_zone_name(pol, 1), "lab");
    assert_string_equal(pol_zone_name(pol, 2), "guest");
    assert_string_equal(pol_zone_name(pol, 3), "office-v6");
    assert_null(pol_zone_name(pol, 4));

    assert_string_equal(zone4(pol, "10.1.2.3"), "office");
    assert_string_equal(zone4(pol, "172.31.255.255"), "lab");
    assert_null(zone4(pol, "172.32.0.1"));
    assert_string_equal(zone4(pol, "192.168.1.1"), "guest");
    assert_string_equal(zone6(pol, "fd00:1::5"), "office-v6");
    assert_string_equal(zone6(pol, "fc00::1"), "office-v6");
    assert_null(zone6(pol, "fe80::1"));
    assert_null(zone4(pol, "8.8.8.8"));

    assert_true(excluded4(pol, "10.9.200.1"));
    assert_false(excluded4(pol, "10.8.0.1"));

    assert_int_equal(pol_retention_s(pol, FV_CLASS_FLOW), 30 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_DNS), 7 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_TLS), 7 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_HTTP), 7 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_ALERT), 90 * 86400);
    assert_int_equal(pol_rotation_s(pol), 86400);
    assert_int_equal(pol_sweep_interval_s(pol), 3600);

    const pol_detect *d = pol_detect_config(pol);
    assert_true(d->beacon_enabled);
    assert_int_equal(d->beacon_min_connections, 12);
    assert_true(d->beacon_max_jitter > 0.299 && d->beacon_max_jitter < 0.301);
    assert_int_equal(d->beacon_min_interval_s, 10);
    assert_true(d->exfil_enabled);
    assert_int_equal(d->exfil_min_bytes, 50000000);
    assert_true(d->exfil_ratio > 19.99 && d->exfil_ratio < 20.01);
    assert_int_equal(d->exfil_min_history, 10);

    char bpf[256];
    assert_int_equal(pol_bpf_exclusions(pol, bpf, sizeof bpf), FV_OK);
    assert_string_equal(bpf, "not (net 10.9.0.0/16)");

    pol_destroy(&pol);
    assert_null(pol);
}

/* Every key set to a value other than its default, so the test checks
 * that each one is read. */
static const char *const CUSTOM_POLICY =
    "version: 1\n"
    "zones:\n"
    "  - name: office\n"
    "    networks: [10.1.0.0/16, fd00:1::/64]\n"
    "  - name: servers\n"
    "    networks: [10.2.0.0/16]\n"
    "exclude:\n"
    "  - 10.9.0.0/16\n"
    "  - fd00:9::/32\n"
    "pseudonymization:\n"
    "  rotation: 12h\n"
    "retention:\n"
    "  flows: 2w\n"
    "  dns: 3d\n"
    "  tls: 4d\n"
    "  http: 5d\n"
    "  alerts: 60d\n"
    "sweep_interval: 30m\n"
    "detect:\n"
    "  beacon:\n"
    "    enabled: false\n"
    "    min_connections: 12\n"
    "    max_jitter: 0.35\n"
    "    min_interval: 1m\n"
    "  exfil:\n"
    "    enabled: true\n"
    "    min_bytes: 2GiB\n"
    "    ratio: 7.5\n"
    "    min_history: 25\n";

static void test_custom_values_read_back(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(CUSTOM_POLICY);

    assert_int_equal(pol_rotation_s(pol), 12 * 3600);
    assert_int_equal(pol_sweep_interval_s(pol), 1800);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_FLOW), 14 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_DNS), 3 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_TLS), 4 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_HTTP), 5 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_ALERT), 60 * 86400);

    const pol_detect *d = pol_detect_config(pol);
    assert_false(d->beacon_enabled);
    assert_int_equal(d->beacon_min_connections, 12);
    assert_true(d->beacon_max_jitter > 0.349 && d->beacon_max_jitter < 0.351);
    assert_int_equal(d->beacon_min_interval_s, 60);
    assert_int_equal(d->exfil_min_bytes, 2ull * 1024 * 1024 * 1024);
    assert_true(d->exfil_ratio > 7.49 && d->exfil_ratio < 7.51);
    assert_int_equal(d->exfil_min_history, 25);

    assert_string_equal(zone6(pol, "fd00:1::abcd"), "office");
    assert_null(zone6(pol, "fd00:2::1"));
    assert_string_equal(zone4(pol, "10.2.255.1"), "servers");

    char bpf[256];
    assert_int_equal(pol_bpf_exclusions(pol, bpf, sizeof bpf), FV_OK);
    assert_string_equal(bpf, "not (net 10.9.0.0/16 or net fd00:9::/32)");
    pol_destroy(&pol);
}

static void test_defaults_apply_when_keys_absent(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\n");

    assert_int_equal(pol_zone_count(pol), 0);
    assert_null(zone4(pol, "10.1.0.5"));
    assert_false(excluded4(pol, "10.9.0.1"));
    assert_int_equal(pol_retention_s(pol, FV_CLASS_FLOW), 30 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_DNS), 7 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_TLS), 7 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_HTTP), 7 * 86400);
    assert_int_equal(pol_retention_s(pol, FV_CLASS_ALERT), 90 * 86400);
    assert_int_equal(pol_rotation_s(pol), 86400);
    assert_int_equal(pol_sweep_interval_s(pol), 3600);

    const pol_detect *d = pol_detect_config(pol);
    assert_true(d->beacon_enabled);
    assert_int_equal(d->beacon_min_connections, 12);
    assert_int_equal(d->beacon_min_interval_s, 10);
    assert_true(d->exfil_enabled);
    assert_int_equal(d->exfil_min_bytes, 50000000);
    assert_int_equal(d->exfil_min_history, 10);

    char bpf[16] = "junk";
    assert_int_equal(pol_bpf_exclusions(pol, bpf, sizeof bpf), FV_OK);
    assert_string_equal(bpf, "");
    pol_destroy(&pol);
}

static void test_longest_prefix_wins(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: campus\n"
                              "    networks: [10.0.0.0/8, fd00::/8]\n"
                              "  - name: servers\n"
                              "    networks: [10.2.0.0/16, fd00:2::/48]\n"
                              "  - name: dmz\n"
                              "    networks: [10.2.3.0/24, 10.2.3.7]\n");

    assert_string_equal(zone4(pol, "10.1.0.1"), "campus");
    assert_string_equal(zone4(pol, "10.2.0.1"), "servers");
    assert_string_equal(zone4(pol, "10.2.3.1"), "dmz");
    assert_string_equal(zone4(pol, "10.2.3.7"), "dmz");
    assert_string_equal(zone6(pol, "fd00:2::1"), "servers");
    assert_string_equal(zone6(pol, "fd00:2:0:ffff::1"), "servers");
    assert_string_equal(zone6(pol, "fd00:3::1"), "campus");
    pol_destroy(&pol);
}

static void test_ipv6_prefix_boundary(void **state)
{
    (void)state;
    /* /64 splits the two 64-bit words; /65 and /127 test the low word. */
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: a\n"
                              "    networks: [2001:db8:0:1::/64]\n"
                              "  - name: b\n"
                              "    networks: [2001:db8:0:2:8000::/65]\n"
                              "  - name: c\n"
                              "    networks: [2001:db8::2/127]\n");

    assert_string_equal(zone6(pol, "2001:db8:0:1:ffff:ffff:ffff:ffff"), "a");
    assert_null(zone6(pol, "2001:db8:0:0:ffff:ffff:ffff:ffff"));
    assert_string_equal(zone6(pol, "2001:db8:0:2:8000::1"), "b");
    assert_null(zone6(pol, "2001:db8:0:2:7fff::1"));
    assert_string_equal(zone6(pol, "2001:db8::3"), "c");
    assert_null(zone6(pol, "2001:db8::4"));
    /* An IPv4 address with the same leading bytes is not in an IPv6 zone. */
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8}; /* 32.1.13.184 */
    assert_null(pol_zone_of(pol, 4, a));
    assert_null(pol_zone_of(pol, 5, a));
    pol_destroy(&pol);
}

static void test_exclusion_inside_zone_accepted(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\n"
                              "zones:\n"
                              "  - name: office\n"
                              "    networks: [10.1.0.0/16]\n"
                              "exclude: [10.1.9.0/24, 10.1.0.0/16]\n");

    /* Both lookups match. The pipeline checks the exclusion first, so it wins. */
    assert_true(excluded4(pol, "10.1.9.1"));
    assert_true(excluded4(pol, "10.1.0.1"));
    assert_string_equal(zone4(pol, "10.1.9.1"), "office");
    assert_false(excluded4(pol, "10.2.0.1"));
    pol_destroy(&pol);
}

static void test_sizes_accept_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"1000", 1000},
        {"7B", 7},
        {"3KB", 3000},
        {"50MB", 50000000},
        {"2GB", 2000000000},
        {"3KiB", 3072},
        {"50MiB", 50ull * 1048576},
        {"1GiB", 1073741824},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "version: 1\nzones: []\ndetect:\n  exfil:\n    min_bytes: %s\n",
                 cases[i].text);
        pol_policy *pol = load_ok(text);
        assert_int_equal(pol_detect_config(pol)->exfil_min_bytes, cases[i].bytes);
        pol_destroy(&pol);
    }
}

static void test_bpf_reports_small_buffer(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\nexclude: [10.9.0.0/16, 10.10.0.0/16]\n");
    char bpf[20];
    assert_int_equal(pol_bpf_exclusions(pol, bpf, sizeof bpf), FV_ERR_FULL);
    assert_string_equal(bpf, "");

    char big[128];
    assert_int_equal(pol_bpf_exclusions(pol, big, sizeof big), FV_OK);
    assert_string_equal(big, "not (net 10.9.0.0/16 or net 10.10.0.0/16)");
    pol_destroy(&pol);
}

static void test_summary_lists_zones_and_limits(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(CUSTOM_POLICY);
    char text[8192];
    assert_int_equal(pol_summary(pol, text, sizeof text), FV_OK);

    assert_non_null(strstr(text, "office: 10.1.0.0/16, fd00:1::/64"));
    assert_non_null(strstr(text, "servers: 10.2.0.0/16"));
    assert_non_null(strstr(text, "Never monitored"));
    assert_non_null(strstr(text, "10.9.0.0/16, fd00:9::/32"));
    assert_non_null(strstr(text, "every 12h"));
    assert_non_null(strstr(text, "sweep every 30m"));
    assert_non_null(strstr(text, "flows: "));
    assert_non_null(strstr(text, "kept 14d"));
    assert_non_null(strstr(text, "kept 60d"));
    assert_non_null(strstr(text, "beacon: off"));
    assert_non_null(strstr(text, "exfil: on"));
    /* The tunnel rule as det_dns.c applies it: two of the three signs. */
    assert_non_null(strstr(text, "two of three signs"));
    assert_non_null(strstr(text, "TXT, NULL or CNAME queries"));

    char tiny[64];
    assert_int_equal(pol_summary(pol, tiny, sizeof tiny), FV_ERR_FULL);
    pol_destroy(&pol);
}

static void test_summary_without_zones(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\n");
    char text[8192];
    assert_int_equal(pol_summary(pol, text, sizeof text), FV_OK);
    assert_non_null(strstr(text, "no address is pseudonymized"));
    assert_non_null(strstr(text, "nothing is excluded"));
    pol_destroy(&pol);
}

/* The summary lists as readable only what the API serves a role. Items
 * that the roles map lists beyond the route table are named apart. */
static void test_summary_roles_capped_by_route_table(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\nroles:\n  analyst: [dns]\n"
                              "  compliance: [all]\n  admin: [all]\n");
    char text[8192];
    assert_int_equal(pol_summary(pol, text, sizeof text), FV_OK);
    assert_non_null(strstr(text, "  analyst: dns\n"));
    const char *compliance = strstr(text, "  compliance: audit retention policy reports counters"
                                          " (also listed, but never served to this role by "
                                          "the API: flows dns ");
    if (compliance == NULL)
        fail_msg("no capped compliance line in:\n%s", text);
    assert_non_null(strstr(compliance, " aggregates)\n"));
    assert_non_null(strstr(text, "  admin: flows dns "));
    pol_destroy(&pol);

    pol = load_ok("version: 1\nzones: []\nroles:\n  analyst: [audit]\n");
    assert_int_equal(pol_summary(pol, text, sizeof text), FV_OK);
    assert_non_null(strstr(text, "  analyst: nothing (also listed, but never served to this "
                                 "role by the API: audit)\n"));
    pol_destroy(&pol);
}

static void test_reject_deep_nesting_early(void **state)
{
    (void)state;
    /* 40 nested flow sequences on line 2: rejected by depth before
     * libyaml's loader, whose cost grows with the square of the depth. */
    char text[256] = "version: 1\nzones: ";
    size_t n = strlen(text);
    for (int i = 0; i < 40; i++)
        text[n++] = '[';
    for (int i = 0; i < 40; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    expect_reject(text, 2, "nesting deeper than");
}

static void test_reject_explicit_tags(void **state)
{
    (void)state;
    expect_reject("version: !!str 1\nzones: []\n", 1, "tag:yaml.org,2002:str");
    expect_reject("version: 1\nzones: !foo []\n", 2, "!foo");
}

static void test_reject_non_decimal_numbers(void **state)
{
    (void)state;
    expect_reject("version: 01\nzones: []\n", 1, "01");
    expect_reject("version: 1\nzones: []\ndetect:\n  exfil:\n    ratio: 0x20\n", 5, "0x20");
    expect_reject("version: 1\nzones:\n  - name: office\n    networks: [10.0.0.0/08]\n", 4,
                  "10.0.0.0/08");
}

static void test_reject_ipv4_mapped_network(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones:\n  - name: office\n    networks: [\"::ffff:10.0.0.0/104\"]\n",
                  4, "10.0.0.0/8");
}

static void test_load_fifo_rejected_without_blocking(void **state)
{
    (void)state;
    char dir[512], path[600], err[ERR_MAX] = "";
    pol_policy *pol = NULL;

    tu_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/policy.yaml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    /* Without O_NONBLOCK this open would wait for a writer forever. */
    assert_int_equal(pol_load(path, &pol, err, sizeof err), FV_ERR_IO);
    assert_null(pol);
    assert_non_null(strstr(err, "not a regular file"));
    tu_remove_tree(dir);
}

/* Write an officer public key line for the 32 bytes KEY. */
static void officer_line(const uint8_t key[POL_OFFICER_KEY_BYTES], char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s ", POL_OFFICER_PUBLIC_KEY_TAG);
    for (size_t i = 0; i < POL_OFFICER_KEY_BYTES; i++)
        n += snprintf(out + n, out_len - (size_t)n, "%02x", key[i]);
}

static void test_officer_key_of_low_order_rejected(void **state)
{
    (void)state;
    char line[128];
    uint8_t parsed[POL_OFFICER_KEY_BYTES];

    /* All zeros parses as hex but is a point of low order: nothing can be
     * sealed to it, so escrow would fail on the first record. */
    const uint8_t zero[POL_OFFICER_KEY_BYTES] = {0};
    officer_line(zero, line, sizeof line);
    assert_int_equal(pol_officer_public_key_parse(line, strlen(line), parsed), FV_ERR_PARSE);

    /* 0x09 followed by zeros is the Curve25519 base point: a valid key. */
    uint8_t base[POL_OFFICER_KEY_BYTES] = {9};
    officer_line(base, line, sizeof line);
    assert_int_equal(pol_officer_public_key_parse(line, strlen(line), parsed), FV_OK);
    assert_memory_equal(parsed, base, sizeof base);
}

static void test_load_missing_file_is_io_error(void **state)
{
    (void)state;
    char dir[512];
    tu_make_temp_dir(dir, sizeof dir);
    char path[600];
    snprintf(path, sizeof path, "%s/absent.yaml", dir);

    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    assert_int_equal(pol_load(path, &pol, err, sizeof err), FV_ERR_IO);
    assert_null(pol);
    assert_non_null(strstr(err, path));
    tu_remove_tree(dir);
}

static void test_load_file_error_names_path_and_line(void **state)
{
    (void)state;
    char dir[512];
    tu_make_temp_dir(dir, sizeof dir);
    char path[600];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    const char *text = "version: 1\nzones: []\nsweep_interval: 0h\n";
    tu_write_file(path, text, strlen(text));

    char err[ERR_MAX] = "";
    char prefix[700];
    snprintf(prefix, sizeof prefix, "%s:3:17:", path);
    pol_policy *pol = NULL;
    assert_int_equal(pol_load(path, &pol, err, sizeof err), FV_ERR_PARSE);
    assert_null(pol);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("expected \"%s\" at the start of: %s", prefix, err);
    tu_remove_tree(dir);
}

/* ---------------------------------------------------------------------- */
/* Rejections: each checks the line number and the offending value          */
/* ---------------------------------------------------------------------- */

static void test_reject_yaml_syntax_error(void **state)
{
    (void)state;
    /* The flow sequence on line 3 is never closed; libyaml reports the
     * end of input on line 4. */
    expect_reject("version: 1\nzones: []\nexclude: [10.9.0.0/16\n", 4, "invalid YAML");
    /* A tab indentation error on line 3. */
    expect_reject("version: 1\nzones:\n\t- name: a\n", 3, "invalid YAML");
    /* An unquoted IPv6 network that starts with ':' inside [ ] gets the
     * hint to quote it. The same error elsewhere gets no hint. */
    expect_reject("version: 1\nzones:\n  - name: all\n    networks: [0.0.0.0/0, ::/0]\n", 4,
                  "must be quoted: \"::/0\"");
    /* libyaml counts characters, so a comment in UTF-8 before the error
     * must not hide the hint. */
    expect_reject("version: 1\n# B\xc3\xbcro-Netz f\xc3\xbcr \xc3\x96sterreich\nzones:\n"
                  "  - name: all\n    networks: [0.0.0.0/0, ::/0]\n",
                  5, "must be quoted: \"::/0\"");
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    static const char unclosed[] = "version: 1\nzones: []\nexclude: [10.9.0.0/16\n";
    assert_int_equal(pol_load_buffer("policy.yaml", unclosed, sizeof unclosed - 1, &pol, err,
                                     sizeof err),
                     FV_ERR_PARSE);
    assert_null(strstr(err, "must be quoted"));
}

static void test_reject_unknown_top_level_key(void **state)
{
    (void)state;
    char err[ERR_MAX];
    expect_reject("version: 1\nzones: []\nretension:\n  flows: 30d\n", 3, "retension");
    pol_policy *pol = NULL;
    const char *text = "version: 1\nzones: []\nretension:\n  flows: 30d\n";
    assert_int_equal(pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err),
                     FV_ERR_PARSE);
    assert_non_null(strstr(err, "allowed keys are: version, zones, exclude, pseudonymization,"
                                " retention, sweep_interval, detect"));
}

static void test_reject_unknown_detector_key(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\ndetect:\n  beacon:\n    jitter: 0.2\n", 5, "jitter");
    expect_reject("version: 1\nzones: []\ndetect:\n  portscan: {}\n", 4, "portscan");
}

static void test_reject_unknown_zone_key(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones:\n  - name: a\n    nets: [10.0.0.0/8]\n", 4, "nets");
}

static void test_reject_unknown_retention_class(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\nretention:\n  smtp: 7d\n", 4, "smtp");
}

static void test_reject_wrong_types(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: office\n", 2, "office");
    expect_reject("version: 1\nzones: []\ndetect:\n  beacon:\n    min_connections: many\n", 5,
                  "many");
    expect_reject("version: 1\nzones: []\ndetect:\n  beacon:\n    enabled: yes\n", 5, "yes");
    expect_reject("version: 1\nzones: []\ndetect:\n  exfil:\n    ratio: lots\n", 5, "lots");
    expect_reject("version: 1\nzones: []\nretention: 7d\n", 3, "retention");
    expect_reject("version: '1'\nzones: []\n", 1, "1");
    expect_reject("version: 1\nzones: []\nexclude: 10.9.0.0/16\n", 3, "10.9.0.0/16");
    expect_reject("- version: 1\n", 1, "a list");
}

static void test_reject_missing_version(void **state)
{
    (void)state;
    expect_reject("zones: []\n", 1, "missing key version");
}

static void test_reject_unsupported_version(void **state)
{
    (void)state;
    expect_reject("zones: []\nversion: 2\n", 2, "(2)");
}

static void test_reject_missing_zones(void **state)
{
    (void)state;
    expect_reject("version: 1\nsweep_interval: 1h\n", 1, "missing key zones");
}

static void test_reject_empty_policy(void **state)
{
    (void)state;
    expect_reject("# nothing here\n", 1, "empty");
}

static void test_reject_bad_address(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones:\n  - name: a\n    networks: [10.1.0.300/24]\n", 4,
                  "10.1.0.300/24");
    expect_reject("version: 1\nzones: []\nexclude:\n  - fd00::g/64\n", 4, "fd00::g/64");
    expect_reject("version: 1\nzones: []\nexclude:\n  - 10.9.0.0/\n", 4, "10.9.0.0/");
}

static void test_reject_prefix_too_long(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones:\n  - name: a\n    networks: [10.1.0.0/33]\n", 4,
                  "10.1.0.0/33");
    expect_reject("version: 1\nzones:\n  - name: a\n    networks:\n      - fd00::/129\n", 5,
                  "fd00::/129");
}

static void test_reject_host_bits_names_network(void **state)
{
    (void)state;
    /* The message quotes the input and the network form to write. */
    expect_reject("version: 1\nzones:\n  - name: a\n    networks: [10.1.2.3/16]\n", 4,
                  "10.1.2.3/16");
    expect_reject("version: 1\nzones:\n  - name: a\n    networks: [10.1.2.3/16]\n", 4,
                  "10.1.0.0/16");
    expect_reject("version: 1\nzones: []\nexclude:\n  - fd00:9::1/32\n", 4, "fd00:9::/32");
}

static void test_reject_duplicate_zone_name(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "  - name: office\n"
                  "    networks: [10.2.0.0/16]\n",
                  5, "office");
}

static void test_reject_same_network_in_two_zones(void **state)
{
    (void)state;
    expect_reject("version: 1\n"
                  "zones:\n"
                  "  - name: office\n"
                  "    networks: [10.1.0.0/16]\n"
                  "  - name: lab\n"
                  "    networks:\n"
                  "      - 10.2.0.0/16\n"
                  "      - 10.1.0.0/16\n",
                  8, "10.1.0.0/16");
}

static void test_reject_zone_without_networks(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones:\n  - name: lab\n    networks: []\n", 4, "lab");
    expect_reject("version: 1\nzones:\n  - name: lab\n", 3, "lab");
}

static void test_reject_duplicate_exclusion(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\nexclude:\n  - 10.9.0.0/16\n  - 10.9.0.0/16\n", 5,
                  "10.9.0.0/16");
}

static void test_reject_retention_below_sweep(void **state)
{
    (void)state;
    /* sweep_interval comes after retention, so the check runs at the end. */
    expect_reject("version: 1\nzones: []\nretention:\n  dns: 30m\nsweep_interval: 1h\n", 4, "30m");
}

static void test_reject_zero_and_absurd_durations(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\npseudonymization:\n  rotation: 0h\n", 4, "0h");
    expect_reject("version: 1\nzones: []\npseudonymization:\n  rotation: 30s\n", 4, "30s");
    expect_reject("version: 1\nzones: []\npseudonymization:\n  rotation: 366d\n", 4, "366d");
    expect_reject("version: 1\nzones: []\nsweep_interval: 0s\n", 3, "0s");
    expect_reject("version: 1\nzones: []\nretention:\n  flows: 0d\n", 4, "0d");
    expect_reject("version: 1\nzones: []\nretention:\n  flows: 5000d\n", 4, "5000d");
}

static void test_reject_malformed_duration(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\npseudonymization:\n  rotation: 24 hours\n", 4,
                  "24 hours");
    expect_reject("version: 1\nzones: []\nsweep_interval: 3600\n", 3, "3600");
    expect_reject("version: 1\nzones: []\nsweep_interval: 1y\n", 3, "1y");
}

static void test_reject_malformed_size(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\ndetect:\n  exfil:\n    min_bytes: 50 MB\n", 5, "50 MB");
    expect_reject("version: 1\nzones: []\ndetect:\n  exfil:\n    min_bytes: 5TB\n", 5, "5TB");
    expect_reject("version: 1\nzones: []\ndetect:\n  exfil:\n    min_bytes: 0\n", 5, "0");
}

static void test_reject_out_of_range_numbers(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\ndetect:\n  beacon:\n    max_jitter: 1.5\n", 5, "1.5");
    expect_reject("version: 1\nzones: []\ndetect:\n  beacon:\n    min_connections: 2\n", 5,
                  "(2)");
    expect_reject("version: 1\nzones: []\ndetect:\n  exfil:\n    ratio: 0.5\n", 5, "0.5");
}

static void test_reject_bad_zone_names(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones:\n  - name: ''\n    networks: [10.0.0.0/8]\n", 3, "\"\"");
    expect_reject("version: 1\nzones:\n  - name: abcdefghijklmnopqrstuvwxyz012345\n"
                  "    networks: [10.0.0.0/8]\n",
                  3, "abcdefghijklmnopqrstuvwxyz012345");
    expect_reject("version: 1\nzones:\n  - name: Office\n    networks: [10.0.0.0/8]\n", 3,
                  "Office");
    expect_reject("version: 1\nzones:\n  - name: my office\n    networks: [10.0.0.0/8]\n", 3,
                  "my office");
    expect_reject("version: 1\nzones:\n  - name: external\n    networks: [10.0.0.0/8]\n", 3,
                  "external");
}

static void test_accept_zone_name_of_31_chars(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones:\n  - name: abcdefghijklmnopqrstuvwxyz_0-12\n"
                              "    networks: [10.0.0.0/8]\n");
    assert_string_equal(pol_zone_name(pol, 0), "abcdefghijklmnopqrstuvwxyz_0-12");
    pol_destroy(&pol);
}

static void test_reject_duplicate_key(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\nsweep_interval: 1h\nsweep_interval: 2h\n", 4,
                  "sweep_interval");
}

static void test_reject_second_document(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\n---\nversion: 1\n", 3, "second YAML document");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_policy_round_trip),
        cmocka_unit_test(test_zone_and_exclusion_agree),
        cmocka_unit_test(test_embedded_ipv4_takes_ipv4_zone),
        cmocka_unit_test(test_custom_values_read_back),
        cmocka_unit_test(test_defaults_apply_when_keys_absent),
        cmocka_unit_test(test_longest_prefix_wins),
        cmocka_unit_test(test_ipv6_prefix_boundary),
        cmocka_unit_test(test_exclusion_inside_zone_accepted),
        cmocka_unit_test(test_sizes_accept_units),
        cmocka_unit_test(test_bpf_reports_small_buffer),
        cmocka_unit_test(test_summary_lists_zones_and_limits),
        cmocka_unit_test(test_summary_without_zones),
        cmocka_unit_test(test_summary_roles_capped_by_route_table),
        cmocka_unit_test(test_load_missing_file_is_io_error),
        cmocka_unit_test(test_officer_key_of_low_order_rejected),
        cmocka_unit_test(test_reject_deep_nesting_early),
        cmocka_unit_test(test_reject_explicit_tags),
        cmocka_unit_test(test_reject_non_decimal_numbers),
        cmocka_unit_test(test_reject_ipv4_mapped_network),
        cmocka_unit_test(test_load_fifo_rejected_without_blocking),
        cmocka_unit_test(test_load_file_error_names_path_and_line),
        cmocka_unit_test(test_reject_yaml_syntax_error),
        cmocka_unit_test(test_reject_unknown_top_level_key),
        cmocka_unit_test(test_reject_unknown_detector_key),
        cmocka_unit_test(test_reject_unknown_zone_key),
        cmocka_unit_test(test_reject_unknown_retention_class),
        cmocka_unit_test(test_reject_wrong_types),
        cmocka_unit_test(test_reject_missing_version),
        cmocka_unit_test(test_reject_unsupported_version),
        cmocka_unit_test(test_reject_missing_zones),
        cmocka_unit_test(test_reject_empty_policy),
        cmocka_unit_test(test_reject_bad_address),
        cmocka_unit_test(test_reject_prefix_too_long),
        cmocka_unit_test(test_reject_host_bits_names_network),
        cmocka_unit_test(test_reject_duplicate_zone_name),
        cmocka_unit_test(test_reject_same_network_in_two_zones),
        cmocka_unit_test(test_reject_zone_without_networks),
        cmocka_unit_test(test_reject_duplicate_exclusion),
        cmocka_unit_test(test_reject_retention_below_sweep),
        cmocka_unit_test(test_reject_zero_and_absurd_durations),
        cmocka_unit_test(test_reject_malformed_duration),
        cmocka_unit_test(test_reject_malformed_size),
        cmocka_unit_test(test_reject_out_of_range_numbers),
        cmocka_unit_test(test_reject_bad_zone_names),
        cmocka_unit_test(test_accept_zone_name_of_31_chars),
        cmocka_unit_test(test_reject_duplicate_key),
        cmocka_unit_test(test_reject_second_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
