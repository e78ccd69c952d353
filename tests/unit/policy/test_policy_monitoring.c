/*
 * Unit tests for the monitoring groups, windows, data classes, roles,
 * hash and change summary of policy/, with every new rejection path.
 * Windows use the real TZif files under /usr/share/zoneinfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "pol_internal.h"
#include "policy.h"
#include "testutil.h"

#define ERR_MAX 1024

/* UTC instants used below (seconds since 1970). */
#define T_2026_01_01 UINT64_C(1767225600)          /* Thu 2026-01-01 00:00:00 */
#define T_2025_12_31_LAST UINT64_C(1767225599)     /* Wed 2025-12-31 23:59:59 */
#define T_2027_12_31_LAST UINT64_C(1830297599)     /* Fri 2027-12-31 23:59:59 */
#define T_2028_01_01 UINT64_C(1830297600)          /* Sat 2028-01-01 00:00:00 */
#define T_2026_06_01 UINT64_C(1780272000)          /* Mon 2026-06-01 00:00:00 */
#define T_FRI_0530 UINT64_C(1774589400)            /* Fri 2026-03-27 05:30 UTC = 06:30 CET */
#define T_FRI_0600 UINT64_C(1774591200)            /* Fri 2026-03-27 06:00 UTC = 07:00 CET */
#define T_MON_0530 UINT64_C(1774848600)            /* Mon 2026-03-30 05:30 UTC = 07:30 CEST */
#define T_DST_BEFORE UINT64_C(1774745940)          /* Sun 2026-03-29 00:59 UTC, still CET */
#define T_DST_AT UINT64_C(1774746000)              /* Sun 2026-03-29 01:00 UTC, CEST begins */
#define T_2040_WED_0530 UINT64_C(2224992600)       /* Wed 2040-07-04 05:30 UTC = 07:30 CEST */
#define T_2040_WED_1730 UINT64_C(2225035800)       /* Wed 2040-07-04 17:30 UTC = 19:30 CEST */

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

/* Expect FV_ERR_PARSE with "policy.yaml:LINE:", VALUE and a fix. */
static void expect_reject(const char *text, unsigned line, const char *value)
{
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    int rc = pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err);
    if (rc != FV_ERR_PARSE)
        fail_msg("expected FV_ERR_PARSE, got %d (%s) for:\n%s", rc, err, text);
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

/* A policy with one zone 10.0.0.0/8 and the given tail (lines 4 on). */
#define HEAD "version: 1\nzones:\n  - {name: office, networks: [10.0.0.0/8, fd00::/8]}\n"

static pol_decision decide4(const pol_policy *pol, const char *ip, const uint8_t *mac,
                            const char *hostname, uint64_t now)
{
    uint8_t a[16] = {0};
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    pol_host h = {.family = 4, .addr = a, .mac = mac, .hostname = hostname};
    return pol_decide(pol, &h, now);
}

static const char *const DECIDE_POLICY =
    HEAD
    "monitoring: {default_mode: aggregate}\n"
    "groups:\n"
    "  - name: works-council\n"
    "    mode: exclude\n"
    "    subnets: [10.9.0.0/16]\n"
    "    macs: [\"00:11:22:33:44:55\"]\n"
    "    hostnames: [\"wc-*\", \"board-[0-9]?\"]\n"
    "    legal_basis: works agreement\n"
    "    approver: \"Works council, 2026-01-15\"\n"
    "  - name: office\n"
    "    mode: monitor\n"
    "    subnets: [10.1.0.0/16]\n"
    "    legal_basis: legitimate interest\n"
    "    valid_from: 2026-01-01\n"
    "    valid_until: 2027-12-31\n"
    "    window: office-hours\n"
    "    purpose: security monitoring of office clients\n"
    "  - name: lab\n"
    "    mode: monitor\n"
    "    subnets: [10.2.0.0/16]\n"
    "windows:\n"
    "  - name: office-hours\n"
    "    time_zone: Europe/Berlin\n"
    "    days: [mon, tue, wed, thu, fri]\n"
    "    hours: \"07:00-19:00\"\n";

static void test_decide_table(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(DECIDE_POLICY);
    static const uint8_t wc_mac[6] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
    static const uint8_t other_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

    static const struct {
        const char *ip;
        const uint8_t *mac;
        const char *hostname;
        uint64_t now;
        pol_mode mode;
        const char *group;
        bool expired, outside;
    } cases[] = {
        /* subnet match */
        {"10.9.1.2", NULL, NULL, T_MON_0530, POL_EXCLUDE, "works-council", false, false},
        /* MAC match from an address in no group */
        {"10.3.0.1", wc_mac, NULL, T_MON_0530, POL_EXCLUDE, "works-council", false, false},
        /* host-name pattern, any case */
        {"10.3.0.1", other_mac, "WC-Laptop7", T_MON_0530, POL_EXCLUDE, "works-council", false,
         false},
        {"10.3.0.1", NULL, "board-42", T_MON_0530, POL_EXCLUDE, "works-council", false, false},
        {"10.3.0.1", NULL, "board-x2", T_MON_0530, POL_AGGREGATE, NULL, false, false},
        /* first match wins: the office address with the works-council MAC */
        {"10.1.0.5", wc_mac, NULL, T_MON_0530, POL_EXCLUDE, "works-council", false, false},
        /* default mode */
        {"10.3.0.1", other_mac, "printer", T_MON_0530, POL_AGGREGATE, NULL, false, false},
        /* window open after the DST change: 07:30 CEST */
        {"10.1.0.5", NULL, NULL, T_MON_0530, POL_MONITOR, "office", false, false},
        /* window closed before the DST change: 06:30 CET */
        {"10.1.0.5", NULL, NULL, T_FRI_0530, POL_AGGREGATE, "office", false, true},
        {"10.1.0.5", NULL, NULL, T_FRI_0600, POL_MONITOR, "office", false, false},
        /* Sunday: closed */
        {"10.1.0.5", NULL, NULL, T_DST_AT, POL_AGGREGATE, "office", false, true},
        /* validity: before valid_from and after the last day of valid_until */
        {"10.1.0.5", NULL, NULL, T_2025_12_31_LAST, POL_EXCLUDE, "office", true, false},
        {"10.1.0.5", NULL, NULL, T_2027_12_31_LAST - 12 * 3600, POL_MONITOR, "office", false,
         false},
        {"10.1.0.5", NULL, NULL, T_2028_01_01, POL_EXCLUDE, "office", true, false},
        /* a group without window or validity */
        {"10.2.3.4", NULL, NULL, T_DST_AT, POL_MONITOR, "lab", false, false},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pol_decision d = decide4(pol, cases[i].ip, cases[i].mac, cases[i].hostname, cases[i].now);
        if (d.mode != cases[i].mode || d.expired != cases[i].expired ||
            d.outside_window != cases[i].outside ||
            (cases[i].group == NULL) != (d.group == NULL) ||
            (cases[i].group != NULL && strcmp(cases[i].group, d.group) != 0))
            fail_msg("case %zu (%s at %llu): got mode %s group %s expired %d outside %d", i,
                     cases[i].ip, (unsigned long long)cases[i].now, pol_mode_name(d.mode),
                     d.group != NULL ? d.group : "(none)", d.expired, d.outside_window);
    }
    assert_true(pol_has_hostname_groups(pol));
    pol_destroy(&pol);
}

static void test_decide_top_level_exclude_wins(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD "exclude: [10.7.0.0/16]\n"
                                   "groups:\n"
                                   "  - {name: all, mode: monitor, subnets: [10.0.0.0/8]}\n");
    pol_decision d = decide4(pol, "10.7.0.1", NULL, NULL, T_2026_06_01);
    assert_int_equal(d.mode, POL_EXCLUDE);
    assert_null(d.group);
    d = decide4(pol, "10.8.0.1", NULL, NULL, T_2026_06_01);
    assert_int_equal(d.mode, POL_MONITOR);
    assert_string_equal(d.group, "all");
    assert_false(pol_has_hostname_groups(pol));
    pol_destroy(&pol);
}

static void test_decide_ipv6_subnet(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD "groups:\n"
                                   "  - {name: v6, mode: aggregate, subnets: [\"fd00:9::/32\"]}\n");
    uint8_t a[16];
    assert_int_equal(inet_pton(AF_INET6, "fd00:9::1", a), 1);
    pol_host h = {.family = 6, .addr = a};
    assert_int_equal(pol_decide(pol, &h, T_2026_06_01).mode, POL_AGGREGATE);
    assert_int_equal(inet_pton(AF_INET6, "fd00:8::1", a), 1);
    assert_int_equal(pol_decide(pol, &h, T_2026_06_01).mode, POL_MONITOR);
    pol_destroy(&pol);
}

static void test_tz_berlin_offsets_across_dst(void **state)
{
    (void)state;
    pol_tz *tz = calloc(1, sizeof *tz);
    assert_non_null(tz);
    char err[256] = "";
    assert_int_equal(pol_tz_load("Europe/Berlin", tz, err, sizeof err), FV_OK);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_DST_BEFORE), 3600);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_DST_AT), 7200);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_2026_01_01), 3600);
    /* 2040 lies beyond the transitions of many TZif files, so the
     * footer rule CET-1CEST,M3.5.0,M10.5.0/3 decides. */
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_2040_WED_0530), 7200);

    assert_int_equal(pol_tz_load("UTC", tz, err, sizeof err), FV_OK);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_DST_AT), 0);
    free(tz);
}

static void test_tz_rule_after_last_transition(void **state)
{
    (void)state;
    pol_tz *tz = calloc(1, sizeof *tz);
    assert_non_null(tz);
    /* A zone with no transitions at all: only the rule decides. */
    tz->type_count = 1;
    assert_int_equal(pol_tz_rule_parse("CET-1CEST,M3.5.0,M10.5.0/3", &tz->rule), FV_OK);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_DST_BEFORE), 3600);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_DST_AT), 7200);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_2040_WED_1730), 7200);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_2026_01_01), 3600);
    /* Southern hemisphere: DST spans the new year. */
    assert_int_equal(pol_tz_rule_parse("AEST-10AEDT,M10.1.0,M4.1.0/3", &tz->rule), FV_OK);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_2026_01_01), 11 * 3600);
    assert_int_equal(pol_tz_offset(tz, (int64_t)T_2026_06_01), 10 * 3600);
    assert_int_equal(pol_tz_rule_parse("XYZ", &tz->rule), FV_ERR_INVALID);
    free(tz);
}

static void test_window_far_future_uses_rule(void **state)
{
    (void)state;
    /* Wed 2040-07-04: 07:30 CEST is inside, 19:30 CEST outside; with
     * the standard offset both would be inside. */
    uint8_t a[16] = {10, 1, 0, 5};
    pol_host h = {.family = 4, .addr = a};
    pol_policy *pol = load_ok(HEAD "groups:\n"
                       "  - {name: o, mode: monitor, subnets: [10.1.0.0/16], window: w}\n"
                       "windows:\n"
                       "  - {name: w, time_zone: Europe/Berlin, days: [wed], hours: \"07:00-19:00\"}\n");
    assert_int_equal(pol_decide(pol, &h, T_2040_WED_0530).mode, POL_MONITOR);
    pol_decision d = pol_decide(pol, &h, T_2040_WED_1730);
    assert_int_equal(d.mode, POL_AGGREGATE);
    assert_true(d.outside_window);
    pol_destroy(&pol);
}

static void test_window_overnight(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD "groups:\n"
                                   "  - {name: night, mode: monitor, subnets: [10.1.0.0/16], window: w}\n"
                                   "windows:\n"
                                   "  - {name: w, time_zone: UTC, days: [mon], hours: \"22:00-06:00\"}\n");
    /* Mon 2026-03-30 00:00 UTC */
    const uint64_t mon = T_MON_0530 - 5 * 3600 - 1800;
    static const struct {
        uint64_t offset_s;
        pol_mode mode;
    } cases[] = {
        {5 * 3600, POL_AGGREGATE},          /* Mon 05:00: Sunday was not listed */
        {23 * 3600, POL_MONITOR},           /* Mon 23:00 */
        {24 * 3600 + 5 * 3600, POL_MONITOR},    /* Tue 05:00: still Monday's night */
        {24 * 3600 + 6 * 3600, POL_AGGREGATE},  /* Tue 06:00: closed */
        {24 * 3600 + 23 * 3600, POL_AGGREGATE}, /* Tue 23:00: Tuesday not listed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pol_decision d = decide4(pol, "10.1.2.3", NULL, NULL, mon + cases[i].offset_s);
        if (d.mode != cases[i].mode)
            fail_msg("case %zu: got %s", i, pol_mode_name(d.mode));
    }
    pol_destroy(&pol);
}

static void test_bpf_exclusions_at(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD "exclude: [10.8.0.0/16]\n"
                                   "groups:\n"
                                   "  - name: wc\n"
                                   "    mode: exclude\n"
                                   "    subnets: [10.9.0.0/16]\n"
                                   "    macs: [\"00:11:22:AA:44:55\"]\n"
                                   "    hostnames: [\"wc-*\"]\n"
                                   "  - name: temp\n"
                                   "    mode: monitor\n"
                                   "    subnets: [10.1.0.0/16]\n"
                                   "    valid_until: 2027-12-31\n");
    char out[512];
    assert_int_equal(pol_bpf_exclusions_at(pol, true, T_2026_06_01, out, sizeof out), FV_OK);
    assert_string_equal(out, "not (net 10.8.0.0/16 or net 10.9.0.0/16 or ether host"
                             " 00:11:22:aa:44:55)");
    assert_int_equal(pol_bpf_exclusions_at(pol, false, T_2026_06_01, out, sizeof out), FV_OK);
    assert_string_equal(out, "not (net 10.8.0.0/16 or net 10.9.0.0/16)");
    /* After the validity of temp its subnet is excluded too. */
    assert_int_equal(pol_bpf_exclusions_at(pol, false, T_2028_01_01, out, sizeof out), FV_OK);
    assert_string_equal(out, "not (net 10.8.0.0/16 or net 10.9.0.0/16 or net 10.1.0.0/16)");
    /* The old filter stays as it was. */
    assert_int_equal(pol_bpf_exclusions(pol, out, sizeof out), FV_OK);
    assert_string_equal(out, "not (net 10.8.0.0/16)");
    assert_int_equal(pol_bpf_exclusions_at(pol, true, T_2026_06_01, out, 20), FV_ERR_FULL);
    assert_string_equal(out, "");
    pol_destroy(&pol);

    pol = load_ok(HEAD);
    assert_int_equal(pol_bpf_exclusions_at(pol, true, T_2026_06_01, out, sizeof out), FV_OK);
    assert_string_equal(out, "");
    pol_destroy(&pol);
}

static void test_defaults_of_new_keys(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD);
    assert_int_equal(pol_aggregates_retention_s(pol), 400u * 86400u);
    assert_int_equal(pol_audit_retention_s(pol), 3650u * 86400u);
    assert_int_equal(pol_k_threshold(pol), 5);
    assert_true(pol_class_enabled(pol, FV_CLASS_DNS));
    assert_true(pol_class_enabled(pol, POL_CLASS_AGGREGATES));
    assert_true(pol_class_enabled(pol, POL_CLASS_AUDIT));
    assert_false(pol_class_enabled(pol, 55));
    assert_int_equal(pol_group_count(pol), 0);
    uint8_t a[16] = {10, 1, 2, 3};
    pol_host h = {.family = 4, .addr = a};
    pol_decision d = pol_decide(pol, &h, T_2026_06_01);
    assert_int_equal(d.mode, POL_MONITOR);
    assert_null(d.group);
    pol_destroy(&pol);
}

static void test_collect_retention_reporting_read_back(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD "collect: {dns: false, aggregates: false, audit: true}\n"
                                   "retention: {aggregates: 100d, audit: 7000d}\n"
                                   "reporting: {k_threshold: 12}\n");
    assert_false(pol_class_enabled(pol, FV_CLASS_DNS));
    assert_true(pol_class_enabled(pol, FV_CLASS_FLOW));
    assert_false(pol_class_enabled(pol, POL_CLASS_AGGREGATES));
    assert_true(pol_class_enabled(pol, POL_CLASS_AUDIT));
    assert_int_equal(pol_aggregates_retention_s(pol), 100u * 86400u);
    assert_int_equal(pol_audit_retention_s(pol), 7000ull * 86400u);
    assert_int_equal(pol_k_threshold(pol), 12);
    pol_destroy(&pol);
}

static void test_roles_defaults_and_custom(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD);
    assert_true(pol_role_may_read(pol, POL_ROLE_ANALYST, "flows"));
    assert_true(pol_role_may_read(pol, POL_ROLE_ANALYST, "counters"));
    assert_false(pol_role_may_read(pol, POL_ROLE_ANALYST, "audit"));
    assert_false(pol_role_may_read(pol, POL_ROLE_ANALYST, "policy"));
    assert_true(pol_role_may_read(pol, POL_ROLE_COMPLIANCE, "audit"));
    assert_true(pol_role_may_read(pol, POL_ROLE_COMPLIANCE, "reports"));
    assert_false(pol_role_may_read(pol, POL_ROLE_COMPLIANCE, "dns"));
    assert_true(pol_role_may_read(pol, POL_ROLE_ADMIN, "audit"));
    assert_true(pol_role_may_read(pol, POL_ROLE_ADMIN, "ssh"));
    assert_false(pol_role_may_read(pol, POL_ROLE_ADMIN, "payload"));
    pol_destroy(&pol);

    pol = load_ok(HEAD "roles:\n  analyst: [alerts]\n  compliance: [all]\n");
    assert_true(pol_role_may_read(pol, POL_ROLE_ANALYST, "alerts"));
    assert_false(pol_role_may_read(pol, POL_ROLE_ANALYST, "flows"));
    assert_true(pol_role_may_read(pol, POL_ROLE_COMPLIANCE, "dns"));
    assert_true(pol_role_may_read(pol, POL_ROLE_ADMIN, "flows"));
    pol_destroy(&pol);

    pol_role r;
    assert_int_equal(pol_role_from_name("compliance", &r), FV_OK);
    assert_int_equal(r, POL_ROLE_COMPLIANCE);
    assert_string_equal(pol_role_name(r), "compliance");
    assert_int_equal(pol_role_from_name("root", &r), FV_ERR_INVALID);
    assert_string_equal(pol_mode_name(POL_AGGREGATE), "aggregate");
}

static void test_group_info_and_hash(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(DECIDE_POLICY);
    assert_int_equal(pol_group_count(pol), 3);
    pol_group_info gi;
    pol_group_get(pol, 1, &gi);
    assert_string_equal(gi.name, "office");
    assert_int_equal(gi.mode, POL_MONITOR);
    assert_string_equal(gi.legal_basis, "legitimate interest");
    assert_null(gi.approver);
    assert_int_equal(gi.valid_from_s, T_2026_01_01);
    assert_int_equal(gi.valid_until_s, T_2027_12_31_LAST);
    assert_string_equal(gi.window, "office-hours");
    assert_string_equal(gi.purpose, "security monitoring of office clients");
    pol_group_get(pol, 0, &gi);
    assert_string_equal(gi.approver, "Works council, 2026-01-15");
    assert_null(gi.window);

    uint8_t h1[32], h2[32], h3[32];
    pol_hash(pol, h1);
    pol_policy *same = load_ok(DECIDE_POLICY);
    pol_hash(same, h2);
    assert_memory_equal(h1, h2, 32);
    pol_policy *other = load_ok(HEAD);
    pol_hash(other, h3);
    assert_memory_not_equal(h1, h3, 32);
    pol_destroy(&pol);
    pol_destroy(&same);
    pol_destroy(&other);
}

static void test_diff_summary(void **state)
{
    (void)state;
    pol_policy *a = load_ok(HEAD "groups:\n"
                                 "  - {name: wc, mode: exclude, subnets: [10.9.0.0/16]}\n"
                                 "  - {name: lab, mode: monitor, subnets: [10.2.0.0/16]}\n");
    pol_policy *b = load_ok(HEAD "groups:\n"
                                 "  - {name: wc, mode: aggregate, subnets: [10.9.0.0/16]}\n"
                                 "  - {name: guests, mode: monitor, subnets: [10.3.0.0/16]}\n"
                                 "collect: {http: false}\n"
                                 "retention: {dns: 14d}\n"
                                 "detect: {beacon: {enabled: false}}\n");
    char out[1024];
    assert_int_equal(pol_diff_summary(a, b, out, sizeof out), FV_OK);
    assert_non_null(strstr(out, "Group wc changed mode from exclude to aggregate."));
    assert_non_null(strstr(out, "Group guests was added with mode monitor."));
    assert_non_null(strstr(out, "Group lab was removed."));
    assert_non_null(strstr(out, "Collection of http was switched off."));
    assert_non_null(strstr(out, "Retention of dns changed from 7d to 14d."));
    assert_non_null(strstr(out, "The beacon detector was switched off."));

    assert_int_equal(pol_diff_summary(a, a, out, sizeof out), FV_OK);
    assert_string_equal(out, "no change");
    assert_int_equal(pol_diff_summary(a, b, out, 16), FV_ERR_FULL);

    pol_policy *c = load_ok("version: 1\nzones:\n  - {name: lab, networks: [172.16.0.0/12]}\n");
    assert_int_equal(pol_diff_summary(a, c, out, sizeof out), FV_OK);
    assert_non_null(strstr(out, "Zone lab was added."));
    assert_non_null(strstr(out, "Zone office was removed."));
    pol_destroy(&a);
    pol_destroy(&b);
    pol_destroy(&c);
}

static void test_summary_lists_groups_windows_roles(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(DECIDE_POLICY);
    char out[8192];
    assert_int_equal(pol_summary(pol, out, sizeof out), FV_OK);
    assert_non_null(strstr(out, "Internal hosts in no group: aggregate."));
    assert_non_null(strstr(out, "works-council: exclude"));
    assert_non_null(strstr(out, "legal basis: works agreement"));
    assert_non_null(strstr(out, "approved by: Works council, 2026-01-15"));
    assert_non_null(strstr(out, "valid until 2027-12-31"));
    assert_non_null(strstr(out, "office-hours: mon, tue, wed, thu, fri 07:00-19:00 (Europe/Berlin)"));
    assert_non_null(strstr(out, "at least 5 distinct hosts"));
    assert_non_null(strstr(out, "compliance: audit retention policy reports counters"));
    assert_null(strstr(out, "compliance: aggregates"));
    pol_destroy(&pol);
}

static void test_example_policy_has_groups(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/policy/example-policy.yaml",
             tu_env("FLOWVEIL_SOURCE_DIR", "."));
    char err[ERR_MAX] = "";
    pol_policy *pol = NULL;
    if (pol_load(path, &pol, err, sizeof err) != FV_OK)
        fail_msg("example policy rejected: %s", err);
    assert_true(pol_group_count(pol) >= 2);
    pol_group_info gi;
    pol_group_get(pol, 0, &gi);
    assert_int_equal(gi.mode, POL_EXCLUDE);
    uint8_t a[16] = {10, 9, 0, 1};
    pol_host h = {.family = 4, .addr = a};
    assert_int_equal(pol_decide(pol, &h, T_2026_06_01).mode, POL_EXCLUDE);
    char out[16384];
    assert_int_equal(pol_summary(pol, out, sizeof out), FV_OK);
    pol_destroy(&pol);
}

static void test_reject_group_errors(void **state)
{
    (void)state;
    expect_reject(HEAD "groups:\n  - {name: a, mode: watch, subnets: [10.1.0.0/16]}\n", 5, "watch");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, colour: red, subnets: [10.1.0.0/16]}\n", 5,
                  "colour");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: 10.1.0.0/16}\n", 5,
                  "10.1.0.0/16");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, macs: [\"00:11:22:33:44\"]}\n", 5,
                  "00:11:22:33:44");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, macs: [\"00-11-22-33-44-55\"]}\n", 5,
                  "00-11-22-33-44-55");
    /* Broadcast and multicast MACs never send; a MAC in two groups would
     * be decided by the first one only. */
    expect_reject(HEAD "groups:\n  - {name: a, mode: exclude, macs: [\"ff:ff:ff:ff:ff:ff\"]}\n", 5,
                  "multicast or broadcast");
    expect_reject(HEAD "groups:\n  - {name: a, mode: exclude, macs: [\"01:00:5e:00:00:01\"]}\n", 5,
                  "01:00:5e:00:00:01");
    expect_reject(HEAD "groups:\n  - {name: a, mode: exclude, macs: [\"02:ee:ee:ee:ee:01\", "
                       "\"02:EE:EE:EE:EE:01\"]}\n",
                  5, "listed twice in the same group");
    expect_reject(HEAD "groups:\n  - {name: staff, mode: monitor, macs: [\"02:ee:ee:ee:ee:01\"]}\n"
                       "  - {name: wc, mode: exclude, macs: [\"02:ee:ee:ee:ee:01\"]}\n",
                  6, "already listed by group staff (monitor)");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, hostnames: [\"wc/*\"]}\n", 5, "wc/*");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, hostnames: [\"wc-[0-9\"]}\n", 5,
                  "wc-[0-9");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, hostnames: [\"a[]\"]}\n", 5, "a[]");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, hostnames: "
                       "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}\n",
                  5, "aaaaaaaa");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: [10.1.0.0/16], valid_from: 2026-02-30}\n",
                  5, "2026-02-30");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: [10.1.0.0/16], valid_until: tomorrow}\n",
                  5, "tomorrow");
    expect_reject(HEAD "groups:\n  - name: a\n    mode: monitor\n    subnets: [10.1.0.0/16]\n"
                       "    valid_from: 2026-06-01\n    valid_until: 2026-05-31\n",
                  9, "2026-05-31");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: [10.1.0.0/16], window: night}\n",
                  5, "night");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor}\n", 5, "matches no host");
    expect_reject(HEAD "groups:\n  - {name: a, subnets: [10.1.0.0/16]}\n", 5, "no mode");
    expect_reject(HEAD "groups:\n  - {name: Works, mode: monitor, subnets: [10.1.0.0/16]}\n", 5, "Works");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: [10.1.0.0/16]}\n"
                       "  - {name: a, mode: monitor, subnets: [10.2.0.0/16]}\n",
                  6, "duplicate group name (a)");
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: [10.1.0.0/16], legal_basis: whim}\n",
                  5, "whim");
}

static void test_reject_group_subnet_outside_zones(void **state)
{
    (void)state;
    expect_reject(HEAD "groups:\n  - name: a\n    mode: monitor\n    subnets: [192.168.1.0/24]\n", 7,
                  "192.168.1.0/24");
    /* Larger than the zone: partly outside. */
    expect_reject(HEAD "groups:\n  - {name: a, mode: monitor, subnets: [10.0.0.0/7]}\n", 5,
                  "10.0.0.0/7");
}

static void test_reject_shadowed_subnet_with_other_mode(void **state)
{
    (void)state;
    expect_reject(HEAD "groups:\n"
                       "  - {name: office, mode: monitor, subnets: [10.0.0.0/8]}\n"
                       "  - {name: wc, mode: exclude, subnets: [10.9.0.0/16]}\n",
                  6, "move group wc before group office");
    /* The carve-out first is explicit and accepted; the same mode too. */
    pol_policy *pol = load_ok(HEAD "groups:\n"
                                   "  - {name: wc, mode: exclude, subnets: [10.9.0.0/16]}\n"
                                   "  - {name: office, mode: monitor, subnets: [10.0.0.0/8]}\n"
                                   "  - {name: lab, mode: monitor, subnets: [10.2.0.0/16]}\n");
    assert_int_equal(decide4(pol, "10.9.0.1", NULL, NULL, T_2026_06_01).mode, POL_EXCLUDE);
    assert_int_equal(decide4(pol, "10.2.0.1", NULL, NULL, T_2026_06_01).mode, POL_MONITOR);
    pol_destroy(&pol);
}

static void test_reject_window_errors(void **state)
{
    (void)state;
#define W(line) HEAD "windows:\n  - name: w\n    time_zone: UTC\n    days: [mon]\n" line
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: Mars/Olympus, days: [mon], hours: \"07:00-19:00\"}\n",
                  5, "Mars/Olympus");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: ../etc/passwd, days: [mon], hours: \"07:00-19:00\"}\n",
                  5, "../etc/passwd");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: /etc/localtime, days: [mon], hours: \"07:00-19:00\"}\n",
                  5, "/etc/localtime");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: \"Europe/Ber lin\", days: [mon], hours: \"07:00-19:00\"}\n",
                  5, "Europe/Ber lin");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: Europe, days: [mon], hours: \"07:00-19:00\"}\n",
                  5, "Europe");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: UTC, days: [monday], hours: \"07:00-19:00\"}\n",
                  5, "monday");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: UTC, days: [], hours: \"07:00-19:00\"}\n",
                  5, "[]");
    expect_reject(W("    hours: \"7-19\"\n"), 8, "7-19");
    expect_reject(W("    hours: \"07:00-25:00\"\n"), 8, "07:00-25:00");
    expect_reject(W("    hours: \"07:60-19:00\"\n"), 8, "07:60-19:00");
    expect_reject(W("    hours: \"09:00-09:00\"\n"), 8, "09:00-09:00");
    expect_reject(W("    hours: \"24:00-06:00\"\n"), 8, "24:00-06:00");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: UTC, days: [mon]}\n", 5, "no hours");
    expect_reject(HEAD "windows:\n  - {name: w, time_zone: UTC, days: [mon], hours: \"07:00-19:00\"}\n"
                       "  - {name: w, time_zone: UTC, days: [tue], hours: \"07:00-19:00\"}\n",
                  6, "duplicate window name (w)");
#undef W
    /* Overnight and whole-day ranges are accepted. */
    pol_policy *pol = load_ok(HEAD "windows:\n  - {name: a, time_zone: UTC, days: [mon], hours: \"22:00-06:00\"}\n"
                                   "  - {name: b, time_zone: UTC, days: [sun], hours: \"00:00-24:00\"}\n");
    pol_destroy(&pol);
}

static void test_reject_collect_reporting_roles_errors(void **state)
{
    (void)state;
    expect_reject(HEAD "collect:\n  audit: false\n", 5, "false");
    expect_reject(HEAD "collect:\n  payload: true\n", 5, "payload");
    expect_reject(HEAD "collect:\n  dns: yes\n", 5, "yes");
    expect_reject(HEAD "reporting:\n  k_threshold: 0\n", 5, "0");
    expect_reject(HEAD "reporting:\n  k_threshold: 1001\n", 5, "1001");
    expect_reject(HEAD "roles:\n  auditor: [audit]\n", 5, "auditor");
    expect_reject(HEAD "roles:\n  analyst: [flows, payload]\n", 5, "payload");
    expect_reject(HEAD "monitoring:\n  default_mode: watch\n", 5, "watch");
    expect_reject(HEAD "monitoring:\n  default: monitor\n", 5, "default");
}

static void test_reject_new_retention_below_sweep(void **state)
{
    (void)state;
    expect_reject(HEAD "sweep_interval: 1d\nretention:\n  aggregates: 12h\n", 6, "12h");
    expect_reject(HEAD "sweep_interval: 1d\nretention:\n  audit: 12h\n", 6, "12h");
    expect_reject(HEAD "retention:\n  audit: 20000d\n", 5, "20000d");
    expect_reject(HEAD "retention:\n  aggregates: 4000d\n", 5, "4000d");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_decide_top_level_exclude_wins),
        cmocka_unit_test(test_decide_ipv6_subnet),
        cmocka_unit_test(test_tz_berlin_offsets_across_dst),
        cmocka_unit_test(test_tz_rule_after_last_transition),
        cmocka_unit_test(test_window_far_future_uses_rule),
        cmocka_unit_test(test_window_overnight),
        cmocka_unit_test(test_bpf_exclusions_at),
        cmocka_unit_test(test_defaults_of_new_keys),
        cmocka_unit_test(test_collect_retention_reporting_read_back),
        cmocka_unit_test(test_roles_defaults_and_custom),
        cmocka_unit_test(test_group_info_and_hash),
        cmocka_unit_test(test_diff_summary),
        cmocka_unit_test(test_summary_lists_groups_windows_roles),
        cmocka_unit_test(test_example_policy_has_groups),
        cmocka_unit_test(test_reject_group_errors),
        cmocka_unit_test(test_reject_group_subnet_outside_zones),
        cmocka_unit_test(test_reject_shadowed_subnet_with_other_mode),
        cmocka_unit_test(test_reject_window_errors),
        cmocka_unit_test(test_reject_collect_reporting_roles_errors),
        cmocka_unit_test(test_reject_new_retention_below_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
