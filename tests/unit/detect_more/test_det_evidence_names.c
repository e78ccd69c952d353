/*
 * test_det_evidence_names.c: the evidence slot names of the scan, DNS,
 * segmentation and indicator detectors are the same in detect/
 * (det_more_evidence_name, det_evidence_name) and in common/
 * (fv_evidence_name, which exports and the API use).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "detect.h"

static void test_evidence_names_match_common(void **unused)
{
    (void)unused;
    static const struct {
        int detector;
        unsigned count;
    } detectors[] = {
        {FV_DET_SCAN, DET_EV_SCAN_COUNT},     {FV_DET_DNS_TUNNEL, DET_EV_TUNNEL_COUNT},
        {FV_DET_DGA, DET_EV_DGA_COUNT},       {FV_DET_SEGMENTATION, DET_EV_SEG_COUNT},
        {FV_DET_INDICATOR, DET_EV_IND_COUNT},
    };
    for (size_t d = 0; d < sizeof detectors / sizeof detectors[0]; d++) {
        int detector = detectors[d].detector;
        for (unsigned i = 0; i < detectors[d].count; i++) {
            const char *ours = det_more_evidence_name(detector, i);
            assert_non_null(ours);
            assert_non_null(fv_evidence_name(detector, i));
            assert_string_equal(ours, fv_evidence_name(detector, i));
            assert_non_null(det_evidence_name(detector, i));
            assert_string_equal(ours, det_evidence_name(detector, i));
        }
        /* One past the last slot has no name in either table. */
        assert_null(det_more_evidence_name(detector, detectors[d].count));
        assert_null(fv_evidence_name(detector, detectors[d].count));
    }
}

static void test_indicator_type_and_source_names(void **unused)
{
    (void)unused;
    assert_string_equal(det_indicator_type_name(DET_IND_CIDR), "cidr");
    assert_string_equal(det_indicator_type_name(DET_IND_JA4), "ja4");
    assert_null(det_indicator_type_name(0));
    assert_null(det_indicator_type_name(DET_IND_TYPE_COUNT));
    assert_string_equal(det_indicator_source_name(DET_IND_SRC_TLS_SNI), "tls_sni");
    assert_string_equal(det_indicator_source_name(DET_IND_SRC_HTTP_HOST), "http_host");
    assert_null(det_indicator_source_name(0));
    assert_null(det_indicator_source_name(8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evidence_names_match_common),
        cmocka_unit_test(test_indicator_type_and_source_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
