/*
 * test_live_capture: `flowveil capture -i lo` records UDP datagrams that
 * the test sends to itself over loopback, logs its counters on SIGUSR1
 * without stopping, and exits 0 on SIGINT after flushing the open flow.
 * Needs root (or CAP_NET_RAW) to open lo; it is skipped otherwise. Only
 * 127.0.0.1 is used.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define DATAGRAMS 5

static void test_capture_on_loopback_counts_datagrams(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: live capture on lo needs root (run the tests as root to include it)\n");
        skip();
    }

    char dir[4096], db[4096], policy[4096], err_file[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(err_file, dir, "capture.err");
    e2e_write_policy(policy, "[]", "30d");

    uint16_t port = 0;
    int receiver = e2e_udp_receiver(&port);
    char filter[64];
    snprintf(filter, sizeof filter, "udp port %u", (unsigned)port);

    const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db,
                          "-i", "lo", "--filter", filter, NULL};
    pid_t pid = e2e_spawn(argv, dir, "capture");

    /* The notice comes after the interface is open and filtering, about
     * a second after the start. */
    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        e2e_print_result("flowveil capture did not start", &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_sleep_ms(200);

    e2e_send_udp_datagrams(receiver, port, DATAGRAMS);
    e2e_sleep_ms(500);

    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 20, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture", &res);
        e2e_result_free(&res);
        fail_msg("flowveil capture did not exit 0 after SIGINT");
    }
    e2e_result_free(&res);

    json_t *flows = e2e_export(dir, db, "flows", 0);
    int matching = 0;
    size_t i;
    json_t *f;
    json_array_foreach(flows, i, f) {
        json_int_t sport = json_integer_value(json_object_get(f, "sport"));
        json_int_t dport = json_integer_value(json_object_get(f, "dport"));
        if (sport != port && dport != port)
            continue;
        matching++;
        assert_int_equal(json_integer_value(json_object_get(f, "proto")), 17);
        assert_int_equal(json_integer_value(json_object_get(f, "pkts_fwd")) +
                             json_integer_value(json_object_get(f, "pkts_rev")),
                         DATAGRAMS);
    }
    json_decref(flows);
    assert_int_equal(matching, 1);
    tu_remove_tree(dir);
}

/* SIGUSR1 makes capture log one counters line and keep running. The
 * line counts the datagrams sent before it. */
static void test_capture_logs_counters_on_sigusr1(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("skipped: live capture on lo needs root (run the tests as root to include it)\n");
        skip();
    }

    char dir[4096], db[4096], policy[4096], err_file[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(err_file, dir, "capture.err");
    e2e_write_policy(policy, "[]", "30d");

    uint16_t port = 0;
    int receiver = e2e_udp_receiver(&port);
    char filter[64];
    snprintf(filter, sizeof filter, "udp port %u", (unsigned)port);

    const char *argv[] = {e2e_bin(), "capture", "--policy", policy, "--db", db,
                          "-i", "lo", "--filter", filter, NULL};
    pid_t pid = e2e_spawn(argv, dir, "capture");
    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        e2e_print_result("flowveil capture did not start", &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_sleep_ms(200);

    e2e_send_udp_datagrams(receiver, port, DATAGRAMS);
    e2e_sleep_ms(500);

    /* The tick writes the line within about a second of the signal. */
    assert_int_equal(kill(pid, SIGUSR1), 0);
    char expected[64];
    snprintf(expected, sizeof expected, "counters: %d packets,", DATAGRAMS);
    int logged = e2e_wait_for_text(err_file, expected, 10000);
    e2e_sleep_ms(300);
    int alive = kill(pid, 0) == 0;

    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 20, &res);
    if (!logged || !alive || !res.exited || res.status != 0 ||
        e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture with SIGUSR1", &res);
        e2e_result_free(&res);
        fail_msg("expected '%s' on stderr (%s), the process alive after it (%s) and exit "
                 "status 0 after SIGINT",
                 expected, logged ? "found" : "missing", alive ? "yes" : "no");
    }
    assert_non_null(strstr(res.err, "flows active=1 "));
    assert_non_null(strstr(res.err, "dropped kernel="));
    assert_non_null(strstr(res.err, " parser rejections"));
    e2e_result_free(&res);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_on_loopback_counts_datagrams),
        cmocka_unit_test(test_capture_logs_counters_on_sigusr1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
