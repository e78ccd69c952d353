/*
 * Unit tests for pol_decide_span. The span it returns must contain the
 * requested time, and pol_decide must give the same decision everywhere
 * in it. For a window it must reach the window's edges when the time
 * zone's offset does not change in between. Windows use the real TZif
 * files under /usr/share/zoneinfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pol_internal.h"
#include "policy.h"
#include "testutil.h"

#define ERR_MAX 1024

/* UTC instants used below (seconds since 1970). */
#define T_2026_01_01 UINT64_C(1767225600)      /* Thu 2026-01-01 00:00:00 */
#define T_2026_03_20 UINT64_C(1773964800)      /* Fri 2026-03-20 00:00:00 */
#define T_SAT_1200 UINT64_C(1774699200)        /* Sat 2026-03-28 12:00 UTC = 13:00 CET */
#define T_DST_AT UINT64_C(1774746000)          /* Sun 2026-03-29 01:00 UTC, CEST begins */
#define T_WED_0800 UINT64_C(1780473600)        /* Wed 2026-06-03 08:00 UTC = 10:00 CEST */
#define T_WED_1800 UINT64_C(1780509600)        /* Wed 2026-06-03 18:00 UTC = 20:00 CEST */
#define T_2027_12_31_LAST UINT64_C(1830297599) /* Fri 2027-12-31 23:59:59 */
#define T_2040_WED_0530 UINT64_C(2224992600)   /* Wed 2040-07-04 05:30 UTC = 07:30 CEST */
#define HOUR UINT64_C(3600)
#define DAY (24 * HOUR)

/* A policy with one zone 10.0.0.0/8 and the given tail (lines 4 on). */
#define HEAD "version: 1\nzones:\n  - {name: office, networks: [10.0.0.0/8, fd00::/8]}\n"

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

/* Office hours in Berlin with validity bounds, an overnight window in
 * St. John's (UTC-3:30, with DST), a window in Kolkata (UTC+5:30) and
 * an aggregate group without window. */
static const char *const SPAN_POLICY =
    HEAD
    "groups:\n"
    "  - name: office\n"
    "    mode: monitor\n"
    "    subnets: [10.1.0.0/16]\n"
    "    valid_from: 2026-01-01\n"
    "    valid_until: 2027-12-31\n"
    "    window: office-hours\n"
    "  - name: night\n"
    "    mode: monitor\n"
    "    subnets: [10.2.0.0/16]\n"
    "    window: night\n"
    "  - name: mumbai\n"
    "    mode: monitor\n"
    "    subnets: [10.3.0.0/16]\n"
    "    window: mumbai\n"
    "  - name: guests\n"
    "    mode: aggregate\n"
    "    subnets: [10.4.0.0/16]\n"
    "windows:\n"
    "  - {name: office-hours, time_zone: Europe/Berlin, days: [mon, tue, wed, thu, fri], "
    "hours: \"07:00-19:00\"}\n"
    "  - {name: night, time_zone: America/St_Johns, days: [sat, sun], hours: \"22:30-06:15\"}\n"
    "  - {name: mumbai, time_zone: Asia/Kolkata, days: [tue], hours: \"09:45-17:15\"}\n";

static bool same_decision(pol_decision a, pol_decision b)
{
    bool same_group = (a.group == NULL && b.group == NULL) ||
                      (a.group != NULL && b.group != NULL && strcmp(a.group, b.group) == 0);
    return a.mode == b.mode && a.expired == b.expired && a.outside_window == b.outside_window &&
           same_group;
}

/* Check the span of HOST at T: it contains T, and pol_decide agrees
 * with the decision at T at both ends and at 15 points in between (the
 * ends clamped to ten years around T). */
static void check_span_at(const pol_policy *pol, const pol_host *host, uint64_t t)
{
    uint64_t from = 0, until = 0;
    pol_decision d = pol_decide_span(pol, host, t, &from, &until);
    if (!(from <= t && t <= until))
        fail_msg("span [%llu, %llu] does not contain %llu", (unsigned long long)from,
                 (unsigned long long)until, (unsigned long long)t);
    if (!same_decision(d, pol_decide(pol, host, t)))
        fail_msg("pol_decide_span and pol_decide differ at %llu", (unsigned long long)t);

    const uint64_t horizon = 3650 * DAY;
    uint64_t lo = t - from > horizon ? t - horizon : from;
    uint64_t hi = until - t > horizon ? t + horizon : until;
    for (uint64_t i = 0; i <= 16; i++) {
        uint64_t at = lo + (hi - lo) / 16 * i;
        if (i == 16)
            at = hi;
        if (!same_decision(d, pol_decide(pol, host, at)))
            fail_msg("decision at %llu differs from the one at %llu, inside the span [%llu, "
                     "%llu]",
                     (unsigned long long)at, (unsigned long long)t, (unsigned long long)from,
                     (unsigned long long)until);
    }
}

static void test_span_agrees_with_decide_around_dst(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(SPAN_POLICY);
    /* One host per group, and one in no group. */
    uint8_t addrs[5][16] = {{10, 1, 0, 5}, {10, 2, 0, 5}, {10, 3, 0, 5}, {10, 4, 0, 5},
                            {10, 5, 0, 5}};
    /* Every 7 minutes and 13 seconds over 16 days around the start of
     * CEST (2026-03-29) and of NDT in St. John's (2026-03-08 is earlier,
     * so also the days before), the validity start and end, and a far
     * future date served by the TZif file's rule. */
    const uint64_t starts[] = {T_2026_03_20, T_2026_03_20 - 14 * DAY, T_2026_01_01 - 2 * DAY,
                               T_2027_12_31_LAST - 2 * DAY, T_2040_WED_0530 - 2 * DAY};
    const uint64_t lengths[] = {16 * DAY, 4 * DAY, 4 * DAY, 4 * DAY, 4 * DAY};
    for (size_t h = 0; h < sizeof addrs / sizeof addrs[0]; h++) {
        pol_host host = {.family = 4, .addr = addrs[h]};
        for (size_t r = 0; r < sizeof starts / sizeof starts[0]; r++) {
            for (uint64_t t = starts[r]; t < starts[r] + lengths[r]; t += 7 * 60 + 13)
                check_span_at(pol, &host, t);
        }
    }
    pol_destroy(&pol);
}

static void test_span_reaches_window_edges(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(SPAN_POLICY);
    uint8_t a[16] = {10, 1, 0, 5};
    pol_host host = {.family = 4, .addr = a};
    uint64_t from = 0, until = 0;

    /* Wed 10:00 CEST: open from 07:00 CEST (05:00 UTC) to 18:59:59 CEST. */
    pol_decision d = pol_decide_span(pol, &host, T_WED_0800, &from, &until);
    assert_int_equal(d.mode, POL_MONITOR);
    assert_int_equal(from, T_WED_0800 - 3 * HOUR);
    assert_int_equal(until, T_WED_0800 + 9 * HOUR - 1);

    /* Wed 20:00 CEST: closed from 19:00 CEST to Thu 06:59:59 CEST. */
    d = pol_decide_span(pol, &host, T_WED_1800, &from, &until);
    assert_int_equal(d.mode, POL_AGGREGATE);
    assert_true(d.outside_window);
    assert_int_equal(from, T_WED_1800 - HOUR);
    assert_int_equal(until, T_WED_1800 + 11 * HOUR - 1);

    pol_destroy(&pol);
}

static void test_span_stops_at_offset_change(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(SPAN_POLICY);
    uint8_t a[16] = {10, 1, 0, 5};
    pol_host host = {.family = 4, .addr = a};
    uint64_t from = 0, until = 0;

    /* Sat 13:00 CET: the window is closed from Friday 19:00 CET (18:00
     * UTC) to Monday 07:00 CEST, and local time jumps at the start of
     * CEST in between, so the span ends right before it. */
    pol_decision d = pol_decide_span(pol, &host, T_SAT_1200 + 25, &from, &until);
    assert_int_equal(d.mode, POL_AGGREGATE);
    assert_int_equal(from, T_SAT_1200 - 18 * HOUR);
    assert_int_equal(until, T_DST_AT - 1);

    /* From the change on, the span reaches Monday 07:00 CEST. */
    d = pol_decide_span(pol, &host, T_DST_AT, &from, &until);
    assert_int_equal(d.mode, POL_AGGREGATE);
    assert_int_equal(from, T_DST_AT);
    assert_int_equal(until, T_DST_AT + DAY + 4 * HOUR - 1);

    pol_destroy(&pol);
}

static void test_span_without_window_is_validity(void **state)
{
    (void)state;
    pol_policy *pol = load_ok(HEAD "groups:\n"
                                   "  - name: office\n"
                                   "    mode: monitor\n"
                                   "    subnets: [10.1.0.0/16]\n"
                                   "    valid_from: 2026-01-01\n"
                                   "    valid_until: 2027-12-31\n");
    uint8_t a[16] = {10, 1, 0, 5};
    pol_host host = {.family = 4, .addr = a};
    uint64_t from = 0, until = 0;

    pol_decision d = pol_decide_span(pol, &host, T_WED_0800, &from, &until);
    assert_int_equal(d.mode, POL_MONITOR);
    assert_int_equal(from, T_2026_01_01);
    assert_int_equal(until, T_2027_12_31_LAST);

    /* Before the validity: excluded until the last second before it. */
    d = pol_decide_span(pol, &host, T_2026_01_01 - 10, &from, &until);
    assert_true(d.expired);
    assert_int_equal(from, 0);
    assert_int_equal(until, T_2026_01_01 - 1);

    /* After it: excluded for ever. */
    d = pol_decide_span(pol, &host, T_2027_12_31_LAST + 1, &from, &until);
    assert_true(d.expired);
    assert_int_equal(from, T_2027_12_31_LAST + 1);
    assert_int_equal(until, UINT64_MAX);

    /* A host in no group: the default mode for ever. */
    uint8_t other[16] = {10, 7, 0, 5};
    pol_host stranger = {.family = 4, .addr = other};
    d = pol_decide_span(pol, &stranger, T_WED_0800, &from, &until);
    assert_null(d.group);
    assert_int_equal(from, 0);
    assert_int_equal(until, UINT64_MAX);

    pol_destroy(&pol);
}

static void test_tz_changes_from_table_and_rule(void **state)
{
    (void)state;
    char err[ERR_MAX] = "";
    pol_tz *tz = calloc(1, sizeof *tz);
    assert_non_null(tz);
    assert_int_equal(pol_tz_load("Europe/Berlin", tz, err, sizeof err), FV_OK);

    /* The start of CEST 2026 comes from the TZif table. */
    assert_int_equal(pol_tz_next_change(tz, (int64_t)T_DST_AT - 1), (int64_t)T_DST_AT);
    assert_int_equal(pol_tz_last_change(tz, (int64_t)T_DST_AT), (int64_t)T_DST_AT);
    assert_true(pol_tz_last_change(tz, (int64_t)T_DST_AT - 1) < (int64_t)T_DST_AT - 30 * (int64_t)DAY);
    assert_true(pol_tz_next_change(tz, (int64_t)T_DST_AT) > (int64_t)T_DST_AT + 30 * (int64_t)DAY);

    /* 2040 lies after the table's last transition, so the rule decides.
     * CEST starts on Sun 2040-03-25 01:00 UTC (2216250000). */
    const int64_t cest_2040 = INT64_C(2216250000);
    assert_int_equal(pol_tz_offset(tz, cest_2040 - 1), 3600);
    assert_int_equal(pol_tz_offset(tz, cest_2040), 7200);
    assert_int_equal(pol_tz_next_change(tz, cest_2040 - (int64_t)DAY), cest_2040);
    assert_int_equal(pol_tz_last_change(tz, cest_2040 + (int64_t)DAY), cest_2040);

    /* UTC never changes. */
    assert_int_equal(pol_tz_load("UTC", tz, err, sizeof err), FV_OK);
    assert_int_equal(pol_tz_next_change(tz, (int64_t)T_DST_AT), INT64_MAX);

    free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_agrees_with_decide_around_dst),
        cmocka_unit_test(test_span_reaches_window_edges),
        cmocka_unit_test(test_span_stops_at_offset_change),
        cmocka_unit_test(test_span_without_window_is_validity),
        cmocka_unit_test(test_tz_changes_from_table_and_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
