/*
 * Unit tests for fv_str_copy (common/), which the pipeline's record sinks
 * use in place of snprintf(dst, size, "%s", src): the same bytes in the
 * destination for every size, and a truncation result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fv_common.h"

#define BUF_BYTES 40
#define FILL 0xa5   /* any byte a copy never writes */

/* For every destination size from 0 to BUF_BYTES, fv_str_copy writes
 * exactly the bytes snprintf writes, leaves the rest untouched, and
 * reports truncation when snprintf's return value is size or more. */
static void test_str_copy_matches_snprintf(void **state)
{
    (void)state;
    static const char *const sources[] = {
        "",
        "a",
        "example.com",
        "0123456789012345678901234567890",          /* 31 bytes */
        "a name longer than the forty bytes of the test buffer",
    };

    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        for (size_t size = 0; size <= BUF_BYTES; size++) {
            char expected[BUF_BYTES], copied[BUF_BYTES];
            memset(expected, FILL, sizeof expected);
            memset(copied, FILL, sizeof copied);

            int n = snprintf(expected, size, "%s", sources[s]);
            bool fits = fv_str_copy(copied, size, sources[s]);

            assert_memory_equal(copied, expected, sizeof copied);
            assert_int_equal(fits, (size_t)n < size || (size == 0 && n == 0));
        }
    }
}

/* A source exactly one byte too long loses its last byte and reports it. */
static void test_str_copy_truncates_last_byte(void **state)
{
    (void)state;
    char dst[6];

    assert_true(fv_str_copy(dst, sizeof dst, "abcde"));
    assert_string_equal(dst, "abcde");
    assert_false(fv_str_copy(dst, sizeof dst, "abcdef"));
    assert_string_equal(dst, "abcde");
    assert_false(fv_str_copy(dst, 1, "x"));
    assert_string_equal(dst, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_copy_matches_snprintf),
        cmocka_unit_test(test_str_copy_truncates_last_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
