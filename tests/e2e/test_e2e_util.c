/*
 * test_e2e_util: the end-to-end helpers clean up after a failed test.
 * A process that e2e_spawn started and that is still running when the
 * test program exits is killed, so a server whose test failed before
 * stopping it does not idle on after the run.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "e2e_util.h"
#include "testutil.h"

/* True while a process with PID exists (also as a zombie of another parent). */
static bool process_exists(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* A child spawns `sleep 60` with e2e_spawn and exits without stopping it,
 * as a failed test would. The sleep must be gone once the child is. */
static void test_spawned_process_killed_at_exit(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        const char *const argv[] = {"/bin/sleep", "60", NULL};
        pid_t sleeper = e2e_spawn(argv, dir, "sleeper");
        ssize_t n = write(fds[1], &sleeper, sizeof sleeper);
        exit(n == (ssize_t)sizeof sleeper ? 0 : 1);
    }
    pid_t sleeper = -1;
    assert_int_equal(read(fds[0], &sleeper, sizeof sleeper), (ssize_t)sizeof sleeper);
    close(fds[0]);
    close(fds[1]);
    int wstatus = 0;
    assert_int_equal(waitpid(child, &wstatus, 0), child);
    assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);

    assert_true(sleeper > 0);
    bool alive = process_exists(sleeper);
    if (alive)
        kill(sleeper, SIGKILL); /* leave nothing behind when the check fails */
    assert_false(alive);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawned_process_killed_at_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
