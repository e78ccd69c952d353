/*
 * test_invariants: one test per privacy invariant of the design, each
 * driving the real `flowveil` binary. Invariants proven elsewhere are
 * named here with the test that proves them, so this file is the index.
 *
 * The traffic is a capture written by the test itself: one HTTP
 * exchange from an internal host (10.1.0.5, zone "office") to an
 * external server, whose request target, request body and response
 * body carry marker strings that no parser extracts.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <pcap/pcap.h>

#include "e2e_util.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define TRAFFIC_S 1796025600ull     /* 2026-11-30T08:00:00Z */
#define NOW_S (TRAFFIC_S + 3600ull) /* ingest time, one hour later */

/* Distinctive strings inside the payload only. */
#define MARKER_PATH "/inv-marker-path-7f3a9c"
#define MARKER_BODY "inv-body-marker-91c2e4"
#define MARKER_REPLY "inv-reply-marker-55d0b8"
/* The internal host's raw address as text. */
#define RAW_HOST_TEXT "10.1.0.5"

static const uint8_t client_ip[4] = {10, 1, 0, 5};
static const uint8_t server_ip[4] = {203, 0, 113, 80}; /* TEST-NET-3 */

static const char POLICY_TEXT[] = "version: 1\n"
                                  "zones:\n"
                                  "  - name: office\n"
                                  "    networks: [10.0.0.0/8]\n"
                                  "pseudonymization:\n"
                                  "  rotation: 1h\n";

/* ---- capture writer ----------------------------------------------------- */

static uint16_t ip_checksum(const uint8_t *hdr, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(hdr[i] << 8 | hdr[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Write one Ethernet/IPv4/TCP frame at TS_US from the client (TO_SERVER)
 * or the server, with TCP FLAGS and LEN bytes of PAYLOAD. */
static void write_tcp(pcap_dumper_t *d, uint64_t ts_us, bool to_server, uint8_t flags,
                      uint32_t seq, uint32_t ack, const char *payload, size_t len)
{
    uint8_t frame[1514];
    memset(frame, 0, sizeof frame);
    assert_true(len <= sizeof frame - 54);

    /* Ethernet: locally administered MACs, EtherType 0x0800 (IPv4). */
    frame[0] = 0x02;
    frame[5] = to_server ? 0x01 : 0x05;
    frame[6] = 0x02;
    frame[11] = to_server ? 0x05 : 0x01;
    frame[12] = 0x08;

    /* IPv4: version 4, IHL 5, total length, TTL 64, protocol 6 (TCP). */
    uint8_t *ip = frame + 14;
    size_t ip_len = 40 + len;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(ip_len >> 8);
    ip[3] = (uint8_t)ip_len;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, to_server ? client_ip : server_ip, 4);
    memcpy(ip + 16, to_server ? server_ip : client_ip, 4);
    uint16_t csum = ip_checksum(ip, 20);
    ip[10] = (uint8_t)(csum >> 8);
    ip[11] = (uint8_t)csum;

    /* TCP: ports 51000 <-> 80, sequence and ack numbers, data offset 5. */
    uint8_t *tcp = ip + 20;
    uint16_t sport = to_server ? 51000 : 80, dport = to_server ? 80 : 51000;
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8);
    tcp[3] = (uint8_t)dport;
    for (int i = 0; i < 4; i++) {
        tcp[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        tcp[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    tcp[12] = 0x50;
    tcp[13] = flags;
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    memcpy(tcp + 20, payload, len);

    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(ts_us / US_PER_S);
    h.ts.tv_usec = (suseconds_t)(ts_us % US_PER_S);
    h.caplen = h.len = (bpf_u_int32)(14 + ip_len);
    pcap_dump((u_char *)d, &h, frame);
}

/* Write the HTTP exchange with the markers to PATH. */
static void write_marker_capture(const char *path)
{
    static const char request[] = "POST " MARKER_PATH " HTTP/1.1\r\n"
                                  "Host: upload.example.com\r\n"
                                  "User-Agent: invariant-test/1\r\n"
                                  "Content-Length: 22\r\n"
                                  "\r\n" MARKER_BODY;
    static const char response[] = "HTTP/1.1 200 OK\r\n"
                                   "Content-Length: 23\r\n"
                                   "\r\n" MARKER_REPLY;
    size_t req_len = sizeof request - 1, resp_len = sizeof response - 1;
    uint64_t t = TRAFFIC_S * US_PER_S;

    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    assert_non_null(dead);
    pcap_dumper_t *d = pcap_dump_open(dead, path);
    assert_non_null(d);
    write_tcp(d, t, true, 0x02, 100, 0, "", 0);                          /* SYN */
    write_tcp(d, t + 10000, false, 0x12, 900, 101, "", 0);               /* SYN ACK */
    write_tcp(d, t + 20000, true, 0x10, 101, 901, "", 0);                /* ACK */
    write_tcp(d, t + 30000, true, 0x18, 101, 901, request, req_len);     /* request */
    write_tcp(d, t + 50000, false, 0x18, 901, 101 + (uint32_t)req_len, response,
              resp_len);                                                  /* response */
    write_tcp(d, t + 60000, true, 0x11, 101 + (uint32_t)req_len, 901 + (uint32_t)resp_len,
              "", 0);                                                     /* FIN ACK */
    write_tcp(d, t + 70000, false, 0x11, 901 + (uint32_t)resp_len, 102 + (uint32_t)req_len,
              "", 0);                                                     /* FIN ACK */
    write_tcp(d, t + 80000, true, 0x10, 102 + (uint32_t)req_len, 902 + (uint32_t)resp_len,
              "", 0);                                                     /* ACK */
    pcap_dump_close(d);
    pcap_close(dead);
}

/* ---- helpers ------------------------------------------------------------ */

typedef struct workspace {
    char dir[4096], policy[4096], db[4096], capture[4096], key[4096];
} workspace;

static void workspace_make(workspace *w)
{
    tu_make_temp_dir(w->dir, sizeof w->dir);
    e2e_path(w->policy, w->dir, "policy.yaml");
    e2e_path(w->db, w->dir, "db");
    e2e_path(w->capture, w->dir, "markers.pcap");
    e2e_path(w->key, w->db, "pseudonym.key");
    tu_write_file(w->policy, POLICY_TEXT, strlen(POLICY_TEXT));
    write_marker_capture(w->capture);
}

/* Run `flowveil ingest` of the marker capture at NOW; RES keeps its output. */
static void ingest_at(const workspace *w, uint64_t now_s, const char *tag, e2e_result *res)
{
    char now[32];
    snprintf(now, sizeof now, "%llu", (unsigned long long)now_s);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", w->policy, "--db", w->db,
                          "--now", now, w->capture, NULL};
    e2e_run(argv, w->dir, tag, 120, res);
    if (!res->exited || res->status != 0)
        e2e_print_result("ingest", res);
    assert_true(res->exited);
    assert_int_equal(res->status, 0);
}

/* Fail if NEEDLE (LEN bytes) occurs in any regular file under DIR. */
static void assert_no_file_contains(const char *dir, const void *needle, size_t len,
                                    const char *what)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        char path[4096];
        e2e_path(path, dir, ent->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            assert_no_file_contains(path, needle, len, what);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        size_t size = 0;
        char *data = tu_read_file(path, &size);
        assert_non_null(data);
        if (tu_memmem_found(data, size, needle, len))
            fail_msg("%s found in %s", what, path);
        free(data);
    }
    closedir(d);
}

static void assert_text_lacks(const char *text, const char *needle, const char *where)
{
    if (text != NULL && strstr(text, needle) != NULL)
        fail_msg("'%s' found in %s", needle, where);
}

static const char *const markers[] = {MARKER_PATH, MARKER_BODY, MARKER_REPLY};
#define MARKER_COUNT (sizeof markers / sizeof markers[0])

/* Stop a `flowveil serve` child and reap it. */
static void serve_stop(pid_t pid, const char *dir, const char *tag)
{
    kill(pid, SIGTERM);
    e2e_result res;
    e2e_wait(pid, dir, tag, 20, &res);
    e2e_result_free(&res);
}

/* ---- invariant 1 -------------------------------------------------------- */

/* Invariant 1: no payload byte is stored, logged, exported or served. */
static void test_invariant_no_payload_byte_kept(void **state)
{
    (void)state;
    workspace w;
    workspace_make(&w);
    e2e_result res;
    ingest_at(&w, NOW_S, "ingest", &res);

    /* The exchange was parsed: the HTTP record exists and kept only the
     * length of the request target, so the payload reached the parsers. */
    json_t *http = e2e_export(w.dir, w.db, "http", NOW_S);
    assert_int_equal(json_array_size(http), 1);
    json_t *uri_length = json_object_get(json_array_get(http, 0), "uri_length");
    assert_true(json_is_integer(uri_length));
    assert_int_equal(json_integer_value(uri_length), strlen(MARKER_PATH));
    json_decref(http);

    for (size_t m = 0; m < MARKER_COUNT; m++) {
        assert_text_lacks(res.out, markers[m], "the ingest output");
        assert_text_lacks(res.err, markers[m], "the ingest log");
        assert_no_file_contains(w.db, markers[m], strlen(markers[m]), markers[m]);
    }
    e2e_result_free(&res);

    static const char *const classes[] = {"flows", "dns", "tls", "http",
                                          "alerts", "dhcp", "ssh", "aggregates"};
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        json_t *records = e2e_export(w.dir, w.db, classes[c], NOW_S);
        char *text = json_dumps(records, 0);
        assert_non_null(text);
        for (size_t m = 0; m < MARKER_COUNT; m++)
            assert_text_lacks(text, markers[m], classes[c]);
        free(text);
        json_decref(records);
    }

    uint16_t port = 0;
    pid_t serve = e2e_serve_start(w.dir, w.db, "serve", &port);
    static const char *const routes[] = {"/api/v1/flows", "/api/v1/http", "/api/v1/summary",
                                         "/api/v1/aggregates", "/api/v1/top/destinations",
                                         "/api/v1/audit"};
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
        int status = 0;
        size_t len = 0;
        char *body = e2e_http_get(port, routes[r], &status, &len);
        assert_non_null(body);
        assert_int_equal(status, 200);
        for (size_t m = 0; m < MARKER_COUNT; m++)
            assert_text_lacks(body, markers[m], routes[r]);
        free(body);
    }
    serve_stop(serve, w.dir, "serve");
    tu_remove_tree(w.dir);
}

/* ---- invariant 2 -------------------------------------------------------- */

/* Invariant 2: no raw identifier of a monitored host reaches disk, a log
 * line, an export or an API response. test_privacy.c proves it over the
 * corpus and the demo trace, for addresses, MACs and host names in every
 * stored byte, export and route. This test adds the ingest log and the
 * API of a store holding one internal host. */
static void test_invariant_no_raw_identifier_in_logs(void **state)
{
    (void)state;
    workspace w;
    workspace_make(&w);
    e2e_result res;
    ingest_at(&w, NOW_S, "ingest", &res);
    assert_text_lacks(res.out, RAW_HOST_TEXT, "the ingest output");
    assert_text_lacks(res.err, RAW_HOST_TEXT, "the ingest log");
    e2e_result_free(&res);

    /* The flow is stored, under a pseudonym: the check above is not
     * passing on an empty store. */
    json_t *flows = e2e_export(w.dir, w.db, "flows", NOW_S);
    assert_int_equal(json_array_size(flows), 1);
    char *text = json_dumps(flows, 0);
    assert_text_lacks(text, RAW_HOST_TEXT, "the flows export");
    assert_non_null(strstr(text, "ip4-"));
    free(text);
    json_decref(flows);

    uint16_t port = 0;
    pid_t serve = e2e_serve_start(w.dir, w.db, "serve", &port);
    int status = 0;
    size_t len = 0;
    char *body = e2e_http_get(port, "/api/v1/flows", &status, &len);
    assert_non_null(body);
    assert_text_lacks(body, RAW_HOST_TEXT, "/api/v1/flows");
    free(body);
    serve_stop(serve, w.dir, "serve");
    /* NOTE: `flowveil capture` on a live interface is not covered here;
     * test_live_capture.c runs it when the test may capture. */
    tu_remove_tree(w.dir);
}

/* ---- invariant 3 -------------------------------------------------------- */

/* Invariant 3: excluded hosts are dropped before extraction and not
 * counted. test_policy_groups.c proves it: the excluded host's records
 * are absent from every class and its packets from the aggregates and
 * the capture counters (/api/v1/counters) of the store. */

/* ---- invariant 4 -------------------------------------------------------- */

/* The pid of the first child of process PID, or 0 if it has none. */
static pid_t first_child(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    if (text == NULL)
        return 0;
    long child = strtol(text, NULL, 10);
    free(text);
    return (pid_t)child;
}

/* Invariant 4: the serving process never opens the pseudonymization key. */
static void test_invariant_serve_never_opens_key(void **state)
{
    (void)state;
    if (tu_run("strace -V >/dev/null 2>&1") != 0)
        skip(); /* scripts/install-deps.sh installs strace */

    workspace w;
    workspace_make(&w);
    e2e_result res;
    ingest_at(&w, NOW_S, "ingest", &res);
    e2e_result_free(&res);
    struct stat st;
    assert_int_equal(stat(w.key, &st), 0);

    char trace[4096];
    e2e_path(trace, w.dir, "serve.trace");
    const char *argv[] = {"strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", trace,
                          e2e_bin(), "serve", "--db", w.db, "--listen", "127.0.0.1:0", NULL};
    char strace_path[4096] = "/usr/bin/strace";
    if (access(strace_path, X_OK) != 0)
        snprintf(strace_path, sizeof strace_path, "/bin/strace");
    argv[0] = strace_path;
    pid_t tracer = e2e_spawn(argv, w.dir, "serve");

    /* Wait for the serving line, then exercise every kind of route. */
    char out_path[4096];
    e2e_path(out_path, w.dir, "serve.out");
    uint16_t port = 0;
    for (unsigned waited_ms = 0; waited_ms < 20000 && port == 0; waited_ms += 50) {
        size_t len = 0;
        char *text = tu_read_file(out_path, &len);
        const char *line = text != NULL ? strstr(text, "flowveil: serving http://127.0.0.1:") : NULL;
        if (line != NULL)
            port = (uint16_t)strtoul(line + strlen("flowveil: serving http://127.0.0.1:"), NULL, 10);
        free(text);
        if (port == 0)
            usleep(50000);
    }
    assert_true(port != 0);
    static const char *const routes[] = {"/api/v1/flows", "/api/v1/summary", "/api/v1/retention",
                                         "/api/v1/top/destinations", "/api/v1/audit/verify", "/"};
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
        int status = 0;
        size_t len = 0;
        free(e2e_http_get(port, routes[r], &status, &len));
    }

    /* Stop serve itself; strace then exits with it. */
    pid_t serve = first_child(tracer);
    assert_true(serve > 0);
    kill(serve, SIGTERM);
    e2e_wait(tracer, w.dir, "serve", 30, &res);
    e2e_result_free(&res);

    size_t len = 0;
    char *opens = tu_read_file(trace, &len);
    assert_non_null(opens);
    /* The trace saw the store being opened, so it traced the right process. */
    assert_non_null(strstr(opens, "data.mdb"));
    if (strstr(opens, "pseudonym.key") != NULL)
        fail_msg("flowveil serve opened the key file; trace in %s", trace);
    free(opens);
    tu_remove_tree(w.dir);
}

/* ---- invariant 5 -------------------------------------------------------- */

/* Invariant 5: after a rotation the old key is in no file: neither the
 * key file nor any file of the store. */
static void test_invariant_rotation_leaves_no_old_key(void **state)
{
    (void)state;
    workspace w;
    workspace_make(&w);
    e2e_result res;
    ingest_at(&w, NOW_S, "ingest1", &res);
    e2e_result_free(&res);

    /* The key file is magic (8 bytes), epoch (8), start (8), key (32), check (8). */
    size_t len = 0;
    uint8_t *before = (uint8_t *)tu_read_file(w.key, &len);
    assert_non_null(before);
    assert_int_equal(len, 64);
    uint8_t old_key[32];
    memcpy(old_key, before + 24, sizeof old_key);
    free(before);
    /* The scan finds the key where it is: the check below can fail. */
    int found = 0;
    {
        size_t size = 0;
        char *data = tu_read_file(w.key, &size);
        found = tu_memmem_found(data, size, old_key, sizeof old_key);
        free(data);
    }
    assert_true(found);

    /* An ingest a rotation period (1h) later rotates at open. */
    ingest_at(&w, NOW_S + 2 * 3600, "ingest2", &res);
    e2e_result_free(&res);
    uint8_t *after = (uint8_t *)tu_read_file(w.key, &len);
    assert_non_null(after);
    assert_int_equal(len, 64);
    assert_memory_not_equal(after + 24, old_key, sizeof old_key);
    free(after);

    assert_no_file_contains(w.db, old_key, sizeof old_key, "the old epoch key");
    tu_remove_tree(w.dir);
}

/* ---- invariant 6 -------------------------------------------------------- */

/* Invariant 6: no record past its limit is returned, even before the
 * sweeper runs. test_retention_cli.c proves it for exports with a
 * pinned --now before any sweep, and test_api_server.c
 * (test_expired_records_not_returned) for the API with a pinned clock. */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invariant_no_payload_byte_kept),
        cmocka_unit_test(test_invariant_no_raw_identifier_in_logs),
        cmocka_unit_test(test_invariant_serve_never_opens_key),
        cmocka_unit_test(test_invariant_rotation_leaves_no_old_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
