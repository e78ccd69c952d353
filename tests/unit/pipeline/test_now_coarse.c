/*
 * Unit tests for fv_now_coarse_s (common/), the seconds clock of the
 * pipeline's policy decisions. A decision compares it with packet times
 * and policy validity bounds in whole seconds, so it must give the second
 * that CLOCK_REALTIME gives, also in the first milliseconds of a second,
 * when CLOCK_REALTIME_COARSE still shows the second before.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "fv_common.h"

/* Spin from this long before a second boundary ... */
#define BEFORE_BOUNDARY_NS 5000000L
/* ... to this long after it: more than two ticks at HZ=100. */
#define AFTER_BOUNDARY_NS 25000000L
#define BOUNDARIES 2

static uint64_t precise_s(void)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
    return (uint64_t)ts.tv_sec;
}

/* Across second boundaries, fv_now_coarse_s is never behind a
 * CLOCK_REALTIME second read before it, nor ahead of one read after it. */
static void test_now_coarse_matches_realtime_second(void **state)
{
    (void)state;
    for (int b = 0; b < BOUNDARIES; b++) {
        struct timespec now;
        assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
        struct timespec wake = {.tv_sec = now.tv_sec + 1,
                                .tv_nsec = 1000000000L - BEFORE_BOUNDARY_NS};
        int rc;
        while ((rc = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &wake, NULL)) == EINTR) {
        }
        assert_int_equal(rc, 0);

        uint64_t boundary_s = (uint64_t)now.tv_sec + 2;
        unsigned long reads = 0;
        for (;;) {
            struct timespec before;
            assert_int_equal(clock_gettime(CLOCK_REALTIME, &before), 0);
            uint64_t coarse = fv_now_coarse_s();
            uint64_t after = precise_s();
            assert_true(coarse >= (uint64_t)before.tv_sec);
            assert_true(coarse <= after);
            reads++;
            if ((uint64_t)before.tv_sec >= boundary_s && before.tv_nsec >= AFTER_BOUNDARY_NS)
                break;
        }
        /* Control: the loop ran through the boundary, not past it at once. */
        assert_true(reads > 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_now_coarse_matches_realtime_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
