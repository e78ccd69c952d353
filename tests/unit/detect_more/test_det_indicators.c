/*
 * test_det_indicators.c: indicator list parsing and matching
 * (det_indicators.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "test_helpers.h"
#include "testutil.h"

typedef struct errors {
    size_t count;
    char messages[16][512];
} errors;

static void collect_error(void *ctx, const char *message)
{
    errors *e = ctx;
    if (e->count < 16)
        snprintf(e->messages[e->count], sizeof e->messages[0], "%s", message);
    e->count++;
}

static det_indicators *load(const char *text, uint8_t format, errors *errs,
                            det_indicator_counts *counts)
{
    det_indicators *set = NULL;
    assert_int_equal(det_indicators_create(&set), FV_OK);
    memset(errs, 0, sizeof *errs);
    memset(counts, 0, sizeof *counts);
    assert_int_equal(det_indicators_load_buffer(set, "intel.txt", text, strlen(text), format, 2,
                                                FV_SEV_HIGH, collect_error, errs, counts),
                     FV_OK);
    return set;
}

static bool match_v4(const det_indicators *set, const char *text, det_indicator_hit *hit)
{
    uint8_t addr[16] = {0};
    assert_int_equal(inet_pton(AF_INET, text, addr), 1);
    return det_indicators_match_addr(set, 4, addr, hit);
}

static bool match_v6(const det_indicators *set, const char *text, det_indicator_hit *hit)
{
    uint8_t addr[16] = {0};
    assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
    return det_indicators_match_addr(set, 6, addr, hit);
}

static const char plain_list[] =
    "# test list\n"
    "\n"
    "203.0.113.9\n"                          /* line 3: IPv4 */
    "2001:db8::66\n"                         /* line 4: IPv6 */
    "198.51.100.0/24   # a whole network\n"  /* line 5: CIDR with a comment */
    "2001:db8:bad::/48\n"                    /* line 6: IPv6 CIDR */
    "Evil.COM.\n"                            /* line 7: domain, case and dot */
    "*.tracker.example\n"                    /* line 8: wildcard domain */
    "E7D705A3286E19EA42F587B344EE6865\n"     /* line 9: JA3 */
    "t13d1516h2_8daaf6152771_b186095e22b6\n" /* line 10: JA4 */
    "  \t \r\n"                              /* line 11: blank */
    "203.0.113.9\n";                         /* line 12: duplicate */

static void test_indicators_plain_list_types(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set = load(plain_list, 0, &errs, &counts);

    assert_int_equal(errs.count, 0);
    assert_int_equal(counts.loaded[DET_IND_IPV4], 1);
    assert_int_equal(counts.loaded[DET_IND_IPV6], 1);
    assert_int_equal(counts.loaded[DET_IND_CIDR], 2);
    assert_int_equal(counts.loaded[DET_IND_DOMAIN], 2);
    assert_int_equal(counts.loaded[DET_IND_JA3], 1);
    assert_int_equal(counts.loaded[DET_IND_JA4], 1);
    assert_int_equal(counts.duplicates, 1);
    assert_int_equal(det_indicators_count(set), 8);
    det_indicators_destroy(&set);
    assert_null(set);
}

static void test_indicators_utf8_bom_skipped(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    /* UTF-8 byte order mark EF BB BF, then a domain on line 1. */
    det_indicators *set = load("\xef\xbb\xbf" "bom.example\n192.0.2.9\n", 0, &errs, &counts);
    assert_int_equal(errs.count, 0);
    assert_int_equal(counts.loaded[DET_IND_DOMAIN], 1);
    det_indicator_hit hit;
    assert_true(det_indicators_match_domain(set, "bom.example", &hit));
    assert_int_equal(hit.line, 1);
    det_indicators_destroy(&set);
}

static void test_indicators_each_type_matches(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set = load(plain_list, 0, &errs, &counts);
    det_indicator_hit hit;

    assert_true(match_v4(set, "203.0.113.9", &hit));
    assert_int_equal(hit.type, DET_IND_IPV4);
    assert_int_equal(hit.line, 3);
    assert_int_equal(hit.list, 2);
    assert_int_equal(hit.severity, FV_SEV_HIGH);
    assert_false(match_v4(set, "203.0.113.10", &hit));

    assert_true(match_v6(set, "2001:db8::66", &hit));
    assert_int_equal(hit.type, DET_IND_IPV6);

    assert_true(match_v4(set, "198.51.100.200", &hit));
    assert_int_equal(hit.type, DET_IND_CIDR);
    assert_int_equal(hit.line, 5);
    assert_false(match_v4(set, "198.51.101.1", &hit));
    assert_true(match_v6(set, "2001:db8:bad:ffff::1", &hit));
    assert_int_equal(hit.line, 6);
    assert_false(match_v6(set, "2001:db8:bae::1", &hit));

    assert_true(det_indicators_match_domain(set, "evil.com", &hit));
    assert_int_equal(hit.type, DET_IND_DOMAIN);
    assert_true(det_indicators_match_domain(set, "WWW.Evil.Com.", &hit));
    assert_true(det_indicators_match_domain(set, "a.b.c.evil.com", &hit));
    assert_true(det_indicators_match_domain(set, "x.tracker.example", &hit));
    assert_true(det_indicators_match_domain(set, "tracker.example", &hit));

    assert_true(det_indicators_match_fingerprint(set, DET_IND_JA3,
                                                 "e7d705a3286e19ea42f587b344ee6865", &hit));
    assert_int_equal(hit.type, DET_IND_JA3);
    assert_false(det_indicators_match_fingerprint(set, DET_IND_JA4,
                                                  "e7d705a3286e19ea42f587b344ee6865", &hit));
    assert_true(det_indicators_match_fingerprint(set, DET_IND_JA4,
                                                 "t13d1516h2_8daaf6152771_b186095e22b6", &hit));
    assert_int_equal(hit.type, DET_IND_JA4);
    det_indicators_destroy(&set);
}

static void test_indicators_suffix_respects_labels(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set = load("evil.com\n", 0, &errs, &counts);
    det_indicator_hit hit;

    assert_false(det_indicators_match_domain(set, "notevil.com", &hit));
    assert_false(det_indicators_match_domain(set, "evil.com.au", &hit));
    assert_false(det_indicators_match_domain(set, "com", &hit));
    assert_false(det_indicators_match_domain(set, "", &hit));
    assert_true(det_indicators_match_domain(set, "not.evil.com", &hit));
    det_indicators_destroy(&set);
}

static void test_indicators_longest_prefix_wins(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set =
        load("10.0.0.0/8\n10.1.0.0/16\n10.1.2.3/24\n0.0.0.0/0\n", 0, &errs, &counts);
    det_indicator_hit hit;

    assert_int_equal(errs.count, 0);
    assert_true(match_v4(set, "10.1.2.99", &hit));
    assert_int_equal(hit.line, 3); /* host bits of 10.1.2.3/24 are cleared */
    assert_true(match_v4(set, "10.1.9.9", &hit));
    assert_int_equal(hit.line, 2);
    assert_true(match_v4(set, "10.200.0.1", &hit));
    assert_int_equal(hit.line, 1);
    assert_true(match_v4(set, "192.0.2.1", &hit));
    assert_int_equal(hit.line, 4);
    det_indicators_destroy(&set);
}

static void test_indicators_bad_plain_lines_reported(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set = load("good.example\n"
                               "not a domain\n" /* line 2: text after the value */
                               "10.0.0.0/33\n"  /* line 3: prefix too long */
                               "300.1.1.1/8\n"  /* line 4: bad network address */
                               "exa$mple.com\n" /* line 5: bad character */
                               "localhost\n"    /* line 6: one label */
                               "10.0.0.0/\n"    /* line 7: no prefix length */
                               "e7d705a3286e19ea42f587b344ee686\n", /* line 8: 31 hex digits */
                               0, &errs, &counts);

    assert_int_equal(counts.loaded[DET_IND_DOMAIN], 1);
    assert_int_equal(counts.rejected, 7);
    assert_int_equal(errs.count, 7);
    assert_non_null(strstr(errs.messages[0], "intel.txt:2: "));
    assert_non_null(strstr(errs.messages[0], "one indicator per line"));
    assert_non_null(strstr(errs.messages[1], "intel.txt:3: "));
    assert_non_null(strstr(errs.messages[1], "0 to 32"));
    assert_non_null(strstr(errs.messages[2], "intel.txt:4: "));
    assert_non_null(strstr(errs.messages[3], "intel.txt:5: "));
    assert_non_null(strstr(errs.messages[4], "intel.txt:6: "));
    assert_non_null(strstr(errs.messages[4], "at least two labels"));
    assert_non_null(strstr(errs.messages[5], "intel.txt:7: "));
    assert_non_null(strstr(errs.messages[6], "intel.txt:8: "));
    assert_non_null(strstr(errs.messages[6], "32 hex digits"));
    for (size_t i = 0; i < 7; i++)
        assert_non_null(strstr(errs.messages[i], "; ")); /* reason; fix */
    det_indicators_destroy(&set);
}

static void test_indicators_csv_with_header(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set = load("indicator,type,note\n"
                               "203.0.113.7,ip,c2 server\n"
                               "\"bad.example\",domain,\"quoted\"\n"
                               "192.0.2.0/25,cidr\n"
                               "E7D705A3286E19EA42F587B344EE6865,JA3,upper case\n"
                               "q13d0310h3_55b375c5d22e_cd85d2d88918,ja4\n"
                               "2001:db8::1,,type left empty\n"
                               "203.0.113.8,domain,wrong type\n"     /* line 8 */
                               "203.0.113.9,url,unknown type\n"      /* line 9 */
                               ",ip,no value\n"                      /* line 10 */
                               "2001:db8::2,ipv4,family mismatch\n", /* line 11 */
                               1, &errs, &counts);
    det_indicator_hit hit;

    assert_int_equal(counts.loaded[DET_IND_IPV4], 1);
    assert_int_equal(counts.loaded[DET_IND_IPV6], 1);
    assert_int_equal(counts.loaded[DET_IND_DOMAIN], 1);
    assert_int_equal(counts.loaded[DET_IND_CIDR], 1);
    assert_int_equal(counts.loaded[DET_IND_JA3], 1);
    assert_int_equal(counts.loaded[DET_IND_JA4], 1);
    assert_int_equal(errs.count, 4);
    assert_non_null(strstr(errs.messages[0], "intel.txt:8: "));
    assert_non_null(strstr(errs.messages[1], "intel.txt:9: "));
    assert_non_null(strstr(errs.messages[1], "use ip, ipv4"));
    assert_non_null(strstr(errs.messages[2], "intel.txt:10: "));
    assert_non_null(strstr(errs.messages[3], "intel.txt:11: "));

    assert_true(match_v4(set, "203.0.113.7", &hit));
    assert_int_equal(hit.line, 2);
    assert_true(det_indicators_match_domain(set, "www.bad.example", &hit));
    assert_true(match_v4(set, "192.0.2.100", &hit));
    assert_false(match_v4(set, "192.0.2.200", &hit));
    det_indicators_destroy(&set);
}

static void test_indicators_csv_without_header(void **unused)
{
    (void)unused;
    errors errs;
    det_indicator_counts counts;
    det_indicators *set = load("# exported feed\nevil.org,domain\n", 1, &errs, &counts);
    det_indicator_hit hit;
    assert_int_equal(errs.count, 0);
    assert_true(det_indicators_match_domain(set, "evil.org", &hit));
    assert_int_equal(hit.line, 2);
    det_indicators_destroy(&set);
}

static void test_indicators_lists_keep_their_index(void **unused)
{
    (void)unused;
    det_indicators *set = NULL;
    assert_int_equal(det_indicators_create(&set), FV_OK);
    const char *a = "one.example\n", *b = "two.example\n";
    assert_int_equal(
        det_indicators_load_buffer(set, "a", a, strlen(a), 0, 0, FV_SEV_MEDIUM, NULL, NULL, NULL),
        FV_OK);
    assert_int_equal(
        det_indicators_load_buffer(set, "b", b, strlen(b), 0, 1, FV_SEV_CRITICAL, NULL, NULL, NULL),
        FV_OK);
    assert_int_equal(
        det_indicators_load_buffer(set, "c", b, strlen(b), 2, 1, FV_SEV_CRITICAL, NULL, NULL, NULL),
        FV_ERR_INVALID);
    det_indicator_hit hit;
    assert_true(det_indicators_match_domain(set, "one.example", &hit));
    assert_int_equal(hit.list, 0);
    assert_int_equal(hit.severity, FV_SEV_MEDIUM);
    assert_true(det_indicators_match_domain(set, "x.two.example", &hit));
    assert_int_equal(hit.list, 1);
    assert_int_equal(hit.severity, FV_SEV_CRITICAL);
    det_indicators_destroy(&set);
}

static void test_indicators_load_file_errors(void **unused)
{
    (void)unused;
    char dir[512], path[600], err[1024];
    tu_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/list.txt", dir);
    const char *text = "198.51.100.1\nbad value here\n";
    tu_write_file(path, text, strlen(text));

    det_indicators *set = NULL;
    assert_int_equal(det_indicators_create(&set), FV_OK);
    errors errs;
    memset(&errs, 0, sizeof errs);
    det_indicator_counts counts;
    memset(&counts, 0, sizeof counts);
    assert_int_equal(det_indicators_load_file(set, path, 0, 0, FV_SEV_HIGH, collect_error, &errs,
                                              &counts, err, sizeof err),
                     FV_OK);
    assert_int_equal(counts.loaded[DET_IND_IPV4], 1);
    assert_int_equal(errs.count, 1);
    assert_non_null(strstr(errs.messages[0], "list.txt:2: "));

    snprintf(path, sizeof path, "%s/missing.txt", dir);
    assert_int_equal(
        det_indicators_load_file(set, path, 0, 0, FV_SEV_HIGH, NULL, NULL, NULL, err, sizeof err),
        FV_ERR_IO);
    assert_non_null(strstr(err, "missing.txt"));
    det_indicators_destroy(&set);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indicators_plain_list_types),
        cmocka_unit_test(test_indicators_utf8_bom_skipped),
        cmocka_unit_test(test_indicators_each_type_matches),
        cmocka_unit_test(test_indicators_suffix_respects_labels),
        cmocka_unit_test(test_indicators_longest_prefix_wins),
        cmocka_unit_test(test_indicators_bad_plain_lines_reported),
        cmocka_unit_test(test_indicators_csv_with_header),
        cmocka_unit_test(test_indicators_csv_without_header),
        cmocka_unit_test(test_indicators_lists_keep_their_index),
        cmocka_unit_test(test_indicators_load_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
