/*
 * test_hooks.h: kill points for the end-to-end tests (test_hooks.c).
 *
 * Builds with the CMake option FLOWVEIL_TEST_HOOKS read the environment
 * variable FLOWVEIL_TEST_KILL_AT. The option is on by default when the
 * test suite is built, and off in the package build of
 * scripts/check-deb-package.sh. When the variable equals the name given
 * to fv_test_kill_point, the process sends itself SIGKILL there. That
 * stands for a crash or power loss at an exact point, which an outside
 * kill hits only by chance. Other builds compile the calls to nothing.
 *
 * Points:
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
