/*
 * test_policy_store_size: retention.max_store_size, the store's size
 * quota: accepted sizes, the default of no quota, and rejected values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

/* Parse a policy whose retention section ends with EXTRA; return the
 * result code and the policy in *OUT (NULL on error). */
static int load_with(const char *extra, pol_policy **out, char *err, size_t err_len)
{
    char text[512];
    int n = snprintf(text, sizeof text, "version: 1\nzones: []\nretention:\n  flows: 30d\n%s",
                     extra);
    assert_true(n > 0 && (size_t)n < sizeof text);
    return pol_load_buffer("policy.yaml", text, (size_t)n, out, err, err_len);
}

static void test_store_size_defaults_to_none(void **state)
{
    (void)state;
    pol_policy *p = NULL;
    char err[512];
    assert_int_equal(load_with("", &p, err, sizeof err), FV_OK);
    assert_int_equal(pol_max_store_bytes(p), 0);
    pol_destroy(&p);
}

static void test_store_size_accepts_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"  max_store_size: 10GB\n", 10000000000ull},
        {"  max_store_size: 1MiB\n", 1048576ull},
        {"  max_store_size: 2GiB\n", 2147483648ull},
        {"  max_store_size: 5000000\n", 5000000ull},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pol_policy *p = NULL;
        char err[512];
        assert_int_equal(load_with(cases[i].text, &p, err, sizeof err), FV_OK);
        assert_int_equal(pol_max_store_bytes(p), cases[i].bytes);
        pol_destroy(&p);
    }
}

static void test_store_size_rejects_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "  max_store_size: 1000\n",          /* below 1 MiB */
        "  max_store_size: 10TB\n",          /* TB is not an accepted size unit */
        "  max_store_size: -5MB\n",
        "  max_store_size: [1MB]\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pol_policy *p = NULL;
        char err[512] = "";
        assert_int_not_equal(load_with(bad[i], &p, err, sizeof err), FV_OK);
        assert_null(p);
        assert_non_null(strstr(err, "max_store_size"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_size_defaults_to_none),
        cmocka_unit_test(test_store_size_accepts_units),
        cmocka_unit_test(test_store_size_rejects_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
