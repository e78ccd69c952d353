/*
 * test_hooks.c: kill points for the end-to-end tests (test_hooks.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "test_hooks.h"

#ifdef FLOWVEIL_TEST_HOOKS
void fv_test_kill_point(const char *point)
{
    const char *requested = getenv("FLOWVEIL_TEST_KILL_AT");
    if (requested != NULL && strcmp(requested, point) == 0)
        (void)raise(SIGKILL);
}
#endif
