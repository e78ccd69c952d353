/*
 * test_collect_softflowd: Debian's softflowd reads corpus captures and
 * exports NetFlow v9 and IPFIX to `flowveil collect` on 127.0.0.1; the
 * stored flows must equal what `flowveil ingest` stores for the same
 * captures, within the differences docs/SCALING.md lists:
 * - each ingested flow is one or two collected records, one per
 *   direction that carried packets (exporter records are unidirectional);
 * - packet counts are equal, and byte counts may exceed flowveil's by
 *   the Ethernet padding of short frames, which softflowd counts and
 *   flowveil (IP total length) does not: at most 26 bytes per packet;
 * - times are not compared, because softflowd reading a file reports
 *   times relative to its own start.
 * Skipped when softflowd is not installed (scripts/install-deps.sh
 * installs it).
 */
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

/* Captures whose traffic softflowd and flowveil split into the same
 * flows: Ethernet, no tunnels, no fragments, no ICMP errors. */
static const char *const CAPTURES[] = {
    "ndpi-emotet.pcap",
    "ndpi-log4j-webapp-exploit.pcap",
    "zeek-methods.pcap",
    "zeek-single-conn.pcap",
    "zeek-ssh1-ssh2-fingerprints.pcap",
    "zeek-dhcp.pcap",
};
#define CAPTURE_COUNT (sizeof CAPTURES / sizeof CAPTURES[0])

/* Largest Ethernet padding of one frame: a 20-byte IP packet in a
 * 60-byte minimum frame (14 bytes of header). */
#define MAX_PADDING_PER_PACKET 26

static const char *softflowd_path(void)
{
    static const char *const candidates[] = {"/usr/sbin/softflowd", "/usr/bin/softflowd",
                                             "/usr/local/sbin/softflowd"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    }
    return NULL;
}

/* Read the port from the collector's "collecting on udp 127.0.0.1:PORT" line. */
static uint16_t wait_for_port(const char *out_file)
{
    if (!e2e_wait_for_text(out_file, "collecting on udp 127.0.0.1:", 20000))
        return 0;
    size_t len = 0;
    char *text = tu_read_file(out_file, &len);
    const char *at = strstr(text, "127.0.0.1:");
    unsigned port = 0;
    if (at != NULL && sscanf(at, "127.0.0.1:%u", &port) != 1)
        port = 0;
    free(text);
    return (uint16_t)port;
}

/* "src|sport|dst|dport|proto|packets" of one direction of R. */
static void direction_key(const json_t *r, bool reverse, char *out, size_t out_len)
{
    const char *src = json_string_value(json_object_get(r, reverse ? "dst" : "src"));
    const char *dst = json_string_value(json_object_get(r, reverse ? "src" : "dst"));
    json_int_t sport = json_integer_value(json_object_get(r, reverse ? "dport" : "sport"));
    json_int_t dport = json_integer_value(json_object_get(r, reverse ? "sport" : "dport"));
    json_int_t packets = json_integer_value(json_object_get(r, reverse ? "pkts_rev" : "pkts_fwd"));
    snprintf(out, out_len, "%s|%lld|%s|%lld|%lld|%lld", src != NULL ? src : "?",
             (long long)sport, dst != NULL ? dst : "?", (long long)dport,
             (long long)json_integer_value(json_object_get(r, "proto")), (long long)packets);
}

/*
 * Match every direction of every ingested flow to one collected record
 * with the same key and a byte count within the padding allowance.
 * Returns the number of directions that found no record; prints them.
 */
static size_t compare_flows(const json_t *ingested, const json_t *collected)
{
    size_t n = json_array_size(collected);
    bool *used = calloc(n + 1, sizeof *used);
    assert_non_null(used);
    size_t unmatched = 0, directions = 0;

    for (size_t i = 0; i < json_array_size(ingested); i++) {
        const json_t *r = json_array_get(ingested, i);
        for (int reverse = 0; reverse < 2; reverse++) {
            json_int_t packets = json_integer_value(json_object_get(r, reverse ? "pkts_rev"
                                                                               : "pkts_fwd"));
            json_int_t bytes = json_integer_value(json_object_get(r, reverse ? "bytes_rev"
                                                                             : "bytes_fwd"));
            if (packets == 0)
                continue;
            directions++;
            char want[256];
            direction_key(r, reverse != 0, want, sizeof want);
            bool found = false;
            for (size_t j = 0; j < n && !found; j++) {
                const json_t *c = json_array_get(collected, j);
                char have[256];
                direction_key(c, false, have, sizeof have);
                json_int_t cbytes = json_integer_value(json_object_get(c, "bytes_fwd"));
                if (used[j] || strcmp(want, have) != 0 || cbytes < bytes ||
                    cbytes - bytes > (json_int_t)MAX_PADDING_PER_PACKET * packets)
                    continue;
                assert_int_equal(json_integer_value(json_object_get(c, "pkts_rev")), 0);
                used[j] = true;
                found = true;
            }
            if (!found) {
                printf("no collected record for %s bytes %lld\n", want, (long long)bytes);
                unmatched++;
            }
        }
    }
    printf("%zu flow directions ingested, %zu records collected, %zu unmatched\n", directions,
           n, unmatched);
    assert_int_equal(directions, n);
    free(used);
    return unmatched;
}

/* Run softflowd with VERSION (9 or 10) over every capture into one
 * collector, then compare with one ingest of the same captures. */
static void run_version(const char *version)
{
    const char *softflowd = softflowd_path();
    if (softflowd == NULL) {
        printf("skipped: softflowd is not installed (scripts/install-deps.sh installs it)\n");
        skip();
    }

    char dir[4096], policy[4096], collect_db[4096], ingest_db[4096], out_file[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(collect_db, dir, "collected");
    e2e_path(ingest_db, dir, "ingested");
    e2e_path(out_file, dir, "collect.out");
    /* No zones: addresses are stored as they are, so the two stores
     * compare without sharing a key. */
    e2e_write_policy(policy, "[]", "3650d");

    const char *collect_argv[] = {e2e_bin(), "collect", "--policy", policy, "--db", collect_db,
                                  "--listen", "127.0.0.1:0", NULL};
    pid_t pid = e2e_spawn(collect_argv, dir, "collect");
    uint16_t port = wait_for_port(out_file);
    if (port == 0) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "collect", 10, &res);
        e2e_print_result("flowveil collect did not start", &res);
        e2e_result_free(&res);
        fail();
    }

    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);
    const char *paths[CAPTURE_COUNT];
    char path_buf[CAPTURE_COUNT][4096];
    for (size_t i = 0; i < CAPTURE_COUNT; i++) {
        snprintf(path_buf[i], sizeof path_buf[i], "%s/pcaps/%s", e2e_corpus(), CAPTURES[i]);
        paths[i] = path_buf[i];
        /* -d keeps softflowd in the foreground; it exits at the end of the file. */
        const char *sf_argv[] = {softflowd, "-r", paths[i], "-n", target, "-v", version, "-d",
                                 NULL};
        e2e_result res;
        e2e_run(sf_argv, dir, "softflowd", 60, &res);
        if (!res.exited || res.status != 0) {
            e2e_print_result("softflowd", &res);
            e2e_result_free(&res);
            kill(pid, SIGKILL);
            fail();
        }
        e2e_result_free(&res);
    }
    e2e_sleep_ms(500);

    kill(pid, SIGTERM);
    e2e_result res;
    e2e_wait(pid, dir, "collect", 30, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil collect", &res);
        e2e_result_free(&res);
        fail_msg("flowveil collect did not exit 0 after SIGTERM");
    }
    assert_non_null(strstr(res.err, "0 malformed"));
    e2e_result_free(&res);

    const char *ingest_argv[4 + 4 + CAPTURE_COUNT + 1];
    size_t a = 0;
    ingest_argv[a++] = e2e_bin();
    ingest_argv[a++] = "ingest";
    ingest_argv[a++] = "--policy";
    ingest_argv[a++] = policy;
    ingest_argv[a++] = "--db";
    ingest_argv[a++] = ingest_db;
    for (size_t i = 0; i < CAPTURE_COUNT; i++)
        ingest_argv[a++] = paths[i];
    ingest_argv[a] = NULL;
    e2e_run(ingest_argv, dir, "ingest", 120, &res);
    assert_true(res.exited && res.status == 0);
    e2e_result_free(&res);

    json_t *collected = e2e_export(dir, collect_db, "flows", 0);
    json_t *ingested = e2e_export(dir, ingest_db, "flows", 0);
    assert_true(json_array_size(ingested) > 50);
    assert_int_equal(compare_flows(ingested, collected), 0);

    /* The collector's counters reach the store and the API. */
    uint16_t http_port = 0;
    pid_t serve = e2e_serve_start(dir, collect_db, "serve", &http_port);
    int status = 0;
    size_t body_len = 0;
    char *body = e2e_http_get(http_port, "/api/v1/counters", &status, &body_len);
    kill(serve, SIGTERM);
    e2e_wait(serve, dir, "serve", 20, &res);
    e2e_result_free(&res);
    assert_non_null(body);
    assert_int_equal(status, 200);
    json_error_t jerr;
    json_t *counters = json_loads(body, 0, &jerr);
    assert_non_null(counters);
    json_t *capture = json_object_get(counters, "capture");
    json_int_t datagrams = json_integer_value(json_object_get(capture, "collect_datagrams"));
    json_int_t records = json_integer_value(json_object_get(capture, "collect_records"));
    assert_true(datagrams >= (json_int_t)CAPTURE_COUNT);
    assert_int_equal(records, (json_int_t)json_array_size(collected));
    json_decref(counters);
    free(body);

    json_decref(collected);
    json_decref(ingested);
    tu_remove_tree(dir);
}

static void test_collect_netflow_v9_matches_ingest(void **state)
{
    (void)state;
    run_version("9");
}

static void test_collect_ipfix_matches_ingest(void **state)
{
    (void)state;
    run_version("10");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect_netflow_v9_matches_ingest),
        cmocka_unit_test(test_collect_ipfix_matches_ingest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
