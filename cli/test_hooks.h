/*
 * test_hooks.h: kill points for the end-to-end tests (test_hooks.c).
 *
 * Only flowveil-test-hooks, a copy of flowveil that the test suite
 * builds with FLOWVEIL_TEST_HOOKS defined (cli/CMakeLists.txt) and never
 * installs, reads the environment variable FLOWVEIL_TEST_KILL_AT. When
 * the variable equals the name given to fv_test_kill_point, the process
 * sends itself SIGKILL there. That stands for a crash or power loss at
 * an exact point, which an outside kill hits only by chance. In flowveil
 * itself the calls compile to nothing.
 *
 * Points:
 *   ingest-in-final-sweep          ingest (and capture), in the forced
 *                                  tick, after the detector state was
 *                                  saved and the first transaction of
 *                                  the retention sweep
 *   ingest-after-final-tick        ingest, after the forced tick that
 *                                  evaluated the detectors and saved
 *                                  their state, before the counters and
 *                                  the audit entry of the run
 *   ingest-before-checkpoint-end   ingest, after the audit entry, before
 *                                  the checkpoint is deleted
 */
#ifndef FV_TEST_HOOKS_H
#define FV_TEST_HOOKS_H

#ifdef FLOWVEIL_TEST_HOOKS
/* Send SIGKILL to this process if FLOWVEIL_TEST_KILL_AT equals POINT. */
void fv_test_kill_point(const char *point);
#else
static inline void fv_test_kill_point(const char *point)
{
    (void)point;
}
#endif

#endif /* FV_TEST_HOOKS_H */
