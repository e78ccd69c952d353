/*
 * test_export_ipfix_udp: `flowveil export --ipfix` over UDP to a socket
 * of the test on 127.0.0.1. The summary line prints "sent", never
 * "delivered", and its IPFIX message count equals the datagrams that
 * arrived. Without --class only flow records are sent, and --rate paces
 * the export.
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "e2e_util.h"
#include "testutil.h"

/* IPFIX data sets of flow records use template ids 0x200 to 0x207: the
 * flow class (0) times 8 variants above the base 0x200. */
#define FLOW_TID_FIRST 0x200u
#define FLOW_TID_END 0x208u

typedef struct fixture {
    char dir[4096];
    char db[4096];
} fixture;

static int fixture_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    e2e_path(fx->db, fx->dir, "db");
    char demo[4096], policy[4096];
    e2e_path(demo, fx->dir, "demo.pcap");
    snprintf(policy, sizeof policy, "%s/policy/example-policy.yaml", e2e_source_dir());

    e2e_result res;
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    e2e_run(gen, fx->dir, "demogen", 120, &res);
    assert_true(res.exited && res.status == 0);
    e2e_result_free(&res);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", fx->db, demo, NULL};
    e2e_run(ingest, fx->dir, "ingest", 300, &res);
    if (!res.exited || res.status != 0) {
        e2e_print_result("ingest", &res);
        fail();
    }
    e2e_result_free(&res);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* What arrived at the receiver. */
typedef struct received {
    size_t datagrams;
    size_t data_sets;
    size_t other_data_sets;     /* data sets under a template that is not a flow template */
} received;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Count the sets of one IPFIX message. RFC 7011: a 16-byte header, then
 * sets that start with id and length. Ids 2 and 3 are template sets,
 * 256 and up data sets. */
static void count_sets(received *r, const uint8_t *msg, size_t len)
{
    assert_true(len >= 16);
    assert_int_equal(rd16(msg), 10);
    size_t off = 16;
    while (4 <= len - off) {
        uint16_t id = rd16(msg + off), set_len = rd16(msg + off + 2);
        assert_true(set_len >= 4 && set_len <= len - off);
        if (id >= 256) {
            r->data_sets++;
            if (id < FLOW_TID_FIRST || id >= FLOW_TID_END)
                r->other_data_sets++;
        }
        off += set_len;
    }
}

/* Run `flowveil export --ipfix` with EXTRA options, receive on FD while it
 * runs, and return its result; *SECONDS gets the run time. */
static void export_to(const fixture *fx, int fd, uint16_t port, const char *const extra[],
                      received *r, e2e_result *res, double *seconds)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);
    const char *argv[16] = {e2e_bin(), "export", "--db", fx->db, "--ipfix", target};
    size_t n = 6;
    for (size_t i = 0; extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = e2e_spawn(argv, fx->dir, "export-ipfix");
    static uint8_t buf[65536];
    bool exited = false;
    int status = 0;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 500);
        if (ready > 0) {
            ssize_t got = recv(fd, buf, sizeof buf, 0);
            assert_true(got > 0);
            r->datagrams++;
            count_sets(r, buf, (size_t)got);
            continue;
        }
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            exited = true;
            continue;       /* one more quiet period for datagrams in flight */
        }
        if (exited)
            break;
    }
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* The child is reaped: read what it printed. */
    char path[4096];
    e2e_path(path, fx->dir, "export-ipfix.err");
    size_t len = 0;
    memset(res, 0, sizeof *res);
    res->exited = WIFEXITED(status);
    res->status = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
    res->err = tu_read_file(path, &len);
    assert_non_null(res->err);
    res->err_len = len;
}

/* The number after "IPFIX messages " in TEXT. */
static unsigned long long reported_messages(const char *text)
{
    const char *at = strstr(text, "IPFIX messages ");
    assert_non_null(at);
    return strtoull(at + strlen("IPFIX messages "), NULL, 10);
}

static int big_receiver(uint16_t *port)
{
    int fd = e2e_udp_receiver(port);
    int size = 4 * 1024 * 1024;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return fd;
}

static void test_ipfix_udp_summary_counts_messages(void **state)
{
    fixture *fx = *state;
    uint16_t port = 0;
    int fd = big_receiver(&port);
    received r = {0};
    e2e_result res;
    double seconds = 0;
    const char *extra[] = {NULL};
    export_to(fx, fd, port, extra, &r, &res, &seconds);
    close(fd);
    if (!res.exited || res.status != 0)
        fail_msg("export failed: %s", res.err);

    assert_null(strstr(res.err, "delivered"));
    assert_non_null(strstr(res.err, "IPFIX over UDP"));
    assert_non_null(strstr(res.err, "sent "));
    assert_int_equal(reported_messages(res.err), r.datagrams);
    assert_true(r.datagrams > 10);
    /* Flows only by default. */
    assert_true(r.data_sets > 0);
    assert_int_equal(r.other_data_sets, 0);
    free(res.err);
}

static void test_ipfix_class_option_adds_dns(void **state)
{
    fixture *fx = *state;
    uint16_t port = 0;
    int fd = big_receiver(&port);
    received r = {0};
    e2e_result res;
    double seconds = 0;
    const char *extra[] = {"--class", "flows,dns", NULL};
    export_to(fx, fd, port, extra, &r, &res, &seconds);
    close(fd);
    assert_true(res.exited && res.status == 0);
    assert_true(r.other_data_sets > 0);
    free(res.err);
}

/* --rate 2000 sends the demo's flow records no faster than that. */
static void test_ipfix_rate_paces_export(void **state)
{
    fixture *fx = *state;
    uint16_t port = 0;
    int fd = big_receiver(&port);
    received r = {0};
    e2e_result res;
    double seconds = 0;
    const char *extra[] = {"--rate", "2000", NULL};
    export_to(fx, fd, port, extra, &r, &res, &seconds);
    close(fd);
    assert_true(res.exited && res.status == 0);
    const char *read_at = strstr(res.err, "read ");
    assert_non_null(read_at);
    unsigned long long records = strtoull(read_at + 5, NULL, 10);
    assert_true(records > 500);
    /* The pacing checks every 64 records, so the last few may go early. */
    double expected = (double)(records - 64) / 2000.0;
    if (seconds < expected)
        fail_msg("%llu records took %.3f s at --rate 2000, expected at least %.3f s", records,
                 seconds, expected);
    free(res.err);
}

static void test_ipfix_rate_rejects_invalid_value(void **state)
{
    fixture *fx = *state;
    const char *argv[] = {e2e_bin(), "export", "--db", fx->db, "--ipfix", "127.0.0.1:9",
                          "--rate", "fast", NULL};
    e2e_result res;
    e2e_run(argv, fx->dir, "export-rate", 30, &res);
    assert_true(res.exited);
    assert_int_not_equal(res.status, 0);
    assert_non_null(strstr(res.err, "--rate"));
    e2e_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipfix_udp_summary_counts_messages),
        cmocka_unit_test(test_ipfix_class_option_adds_dns),
        cmocka_unit_test(test_ipfix_rate_paces_export),
        cmocka_unit_test(test_ipfix_rate_rejects_invalid_value),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
