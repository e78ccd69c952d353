/*
 * Unit tests of the selection helpers of det_util.h: det_median_select and
 * det_select must return exactly what sorting gives, because alerts
 * compare these values against thresholds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "det_util.h"

#define MAX_VALUES 300

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64: a fixed sequence, so a failure repeats. */
static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int compare_values(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fill V with N values of one of four shapes: distinct, few distinct
 * (many duplicates), ascending, descending. */
static void fill(double *v, size_t n, int shape)
{
    for (size_t i = 0; i < n; i++) {
        switch (shape) {
        case 0: v[i] = (double)(rng_next() % 1000000) / 7.0; break;
        case 1: v[i] = (double)(rng_next() % 3); break;
        case 2: v[i] = (double)i * 0.5; break;
        default: v[i] = (double)(n - i); break;
        }
    }
}

static void test_median_select_matches_sort(void **state)
{
    (void)state;
    double v[MAX_VALUES], sorted[MAX_VALUES], work[MAX_VALUES];
    for (int shape = 0; shape < 4; shape++) {
        for (size_t n = 1; n <= MAX_VALUES; n++) {
            fill(v, n, shape);
            memcpy(sorted, v, n * sizeof v[0]);
            double expected = det_median(sorted, n);
            memcpy(work, v, n * sizeof v[0]);
            double got = det_median_select(work, n);
            assert_memory_equal(&got, &expected, sizeof got);
            /* Reordered, not changed: the same multiset of values. */
            qsort(work, n, sizeof work[0], compare_values);
            assert_memory_equal(work, sorted, n * sizeof work[0]);
        }
    }
}

static void test_select_returns_kth_smallest(void **state)
{
    (void)state;
    double v[MAX_VALUES], sorted[MAX_VALUES], work[MAX_VALUES];
    for (int shape = 0; shape < 4; shape++) {
        for (size_t n = 1; n <= 64; n++) {
            fill(v, n, shape);
            memcpy(sorted, v, n * sizeof v[0]);
            qsort(sorted, n, sizeof sorted[0], compare_values);
            for (size_t k = 0; k < n; k++) {
                memcpy(work, v, n * sizeof v[0]);
                double got = det_select(work, n, k);
                assert_memory_equal(&got, &sorted[k], sizeof got);
                for (size_t i = 0; i < k; i++)
                    assert_true(work[i] <= work[k]);
                for (size_t i = k + 1; i < n; i++)
                    assert_true(work[i] >= work[k]);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median_select_matches_sort),
        cmocka_unit_test(test_select_returns_kth_smallest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
