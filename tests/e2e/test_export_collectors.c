/*
 * test_export_collectors: `flowveil export --ipfix` against nfdump's
 * nfcapd on 127.0.0.1, and the capturing process's export hook against
 * librdkafka's in-process mock cluster.
 *
 * The nfcapd test ingests two corpus captures under zones in
 * prefix-preserving mode and sends the store over IPFIX/UDP. It then
 * reads nfcapd's file back with `nfdump -o json` and compares every
 * record with what `flowveil export --class flows` prints. Each flow must
 * appear as one nfdump record per direction, with equal packets, bytes,
 * TCP flags, times, ports, protocol and addresses. The test is skipped
 * with a message when nfcapd is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>

#include "e2e_util.h"
#include "testutil.h"

#define NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */

/* Find PROGRAM on PATH into OUT; false if it is not there. */
static bool find_program(const char *program, char out[4096])
{
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        snprintf(out, 4096, "%.*s/%s", (int)n, path, program);
        if (access(out, X_OK) == 0)
            return true;
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

/* A UDP port on 127.0.0.1 that was free a moment ago. */
static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void run_ok(const char *const argv[], const char *dir, const char *tag, const char *what)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(what, &res);
        e2e_result_free(&res);
        fail_msg("%s failed", what);
    }
    e2e_result_free(&res);
}

/* Ingest the corpus captures NAMES (NULL-terminated) into DIR/db under
 * POLICY_TEXT. */
static void ingest(const char *dir, const char *policy_text, const char *const *names,
                   char db[4096])
{
    char policy[4096], now_text[32];
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    tu_write_file(policy, policy_text, strlen(policy_text));
    snprintf(now_text, sizeof now_text, "%llu", NOW_S);

    const char *argv[16] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, "--now",
                            now_text};
    size_t argc = 8;
    static char paths[4][4096];
    for (size_t i = 0; names[i] != NULL && i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/pcaps/%s", e2e_corpus(), names[i]);
        argv[argc++] = paths[i];
    }
    argv[argc] = NULL;
    run_ok(argv, dir, "ingest", "flowveil ingest");
}

/* nfdump's 8-character flag text: CWR ECE URG ACK PSH RST SYN FIN, a
 * dot for each flag not set. */
static void nfdump_flags(unsigned flags, char out[9])
{
    static const char letters[] = "CEUAPRSF";
    for (int i = 0; i < 8; i++)
        out[i] = (flags & (0x80u >> i)) != 0 ? letters[i] : '.';
    out[8] = '\0';
}

/* "YYYY-MM-DDTHH:MM:SS.mmm" in UTC, as nfdump prints with TZ=UTC. */
static void nfdump_time(uint64_t us, char out[32])
{
    time_t s = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03u", base, (unsigned)((us / 1000u) % 1000u));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One line per directional record:
 * src|dst|sport|dport|proto|packets|bytes|flags|first|last. */
static char *record_line(const char *src, const char *dst, json_int_t sport, json_int_t dport,
                         json_int_t proto, json_int_t packets, json_int_t bytes,
                         const char *flags, const char *first, const char *last)
{
    char line[512];
    snprintf(line, sizeof line, "%s|%s|%lld|%lld|%lld|%lld|%lld|%s|%s|%s", src, dst,
             (long long)sport, (long long)dport, (long long)proto, (long long)packets,
             (long long)bytes, flags, first, last);
    return strdup(line);
}

static void test_ipfix_export_matches_nfdump(void **state)
{
    (void)state;
    char nfcapd[4096], nfdump[4096];
    if (!find_program("nfcapd", nfcapd) || !find_program("nfdump", nfdump)) {
        print_message("SKIPPED: nfcapd or nfdump is not installed (Debian package nfdump; "
                      "scripts/install-deps.sh installs it)\n");
        skip();
    }

    char dir[4096], db[4096], flowdir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    static const char *const captures[] = {"zeek-methods.pcap", "arkime-dns-wiresharkrepo.pcap",
                                           NULL};
    ingest(dir,
           "version: 1\n"
           "zones:\n"
           "  - {name: campus, networks: [\"128.2.0.0/16\"], addresses: prefix-preserving}\n"
           "  - {name: lan, networks: [\"192.168.0.0/16\"], addresses: prefix-preserving}\n",
           captures, db);
    json_t *flows = e2e_export(dir, db, "flows", NOW_S);
    assert_true(json_array_size(flows) >= 50);

    /* nfcapd on a free loopback port, writing into DIR/nfcapd. */
    e2e_path(flowdir, dir, "nfcapd");
    assert_int_equal(mkdir(flowdir, 0700), 0);
    char port_text[16], target[64];
    uint16_t port = free_udp_port();
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    snprintf(target, sizeof target, "127.0.0.1:%u", (unsigned)port);
    const char *nfcapd_argv[] = {nfcapd, "-b", "127.0.0.1", "-p", port_text, "-w", flowdir,
                                 "-t", "3600", NULL};
    pid_t pid = e2e_spawn(nfcapd_argv, dir, "nfcapd");
    char log[4096];
    e2e_path(log, dir, "nfcapd.err");
    char log_out[4096];
    e2e_path(log_out, dir, "nfcapd.out");
    if (!e2e_wait_for_text(log, "Startup", 10000) && !e2e_wait_for_text(log_out, "Startup", 100))
        fail_msg("nfcapd did not start; see %s", log);

    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", NOW_S);
    const char *export_argv[] = {e2e_bin(), "export", "--db", db, "--ipfix", target,
                                 "--class", "flows", "--now", now_text, NULL};
    run_ok(export_argv, dir, "export-ipfix", "flowveil export --ipfix");

    /* Give nfcapd time to read the last datagram, then stop it: it
     * writes its file on SIGTERM. */
    e2e_sleep_ms(1000);
    kill(pid, SIGTERM);
    e2e_result res;
    e2e_wait(pid, dir, "nfcapd", 20, &res);
    e2e_result_free(&res);

    setenv("TZ", "UTC", 1);
    const char *nfdump_argv[] = {nfdump, "-R", flowdir, "-o", "json", NULL};
    e2e_run(nfdump_argv, dir, "nfdump", 60, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    json_error_t jerr;
    json_t *read_back = json_loads(res.out, 0, &jerr);
    if (read_back == NULL)
        fail_msg("nfdump -o json is not JSON: %s (line %d)", jerr.text, jerr.line);
    e2e_result_free(&res);

    /* Expected: one record per direction that carried packets. */
    size_t cap = json_array_size(flows) * 2 + 1;
    char **expected = calloc(cap, sizeof *expected);
    char **actual = calloc(json_array_size(read_back) + 1, sizeof *actual);
    assert_non_null(expected);
    assert_non_null(actual);
    size_t n_expected = 0, n_actual = 0;
    size_t i;
    json_t *f;
    json_array_foreach(flows, i, f) {
        char first[32], last[32], flags[9];
        nfdump_time((uint64_t)json_integer_value(json_object_get(f, "first_us")), first);
        nfdump_time((uint64_t)json_integer_value(json_object_get(f, "last_us")), last);
        const char *src = json_string_value(json_object_get(f, "src"));
        const char *dst = json_string_value(json_object_get(f, "dst"));
        json_int_t sport = json_integer_value(json_object_get(f, "sport"));
        json_int_t dport = json_integer_value(json_object_get(f, "dport"));
        json_int_t proto = json_integer_value(json_object_get(f, "proto"));
        nfdump_flags((unsigned)json_integer_value(json_object_get(f, "tcp_flags_fwd")) & 0xffu,
                     flags);
        expected[n_expected++] = record_line(src, dst, sport, dport, proto,
                                             json_integer_value(json_object_get(f, "pkts_fwd")),
                                             json_integer_value(json_object_get(f, "bytes_fwd")),
                                             flags, first, last);
        if (json_integer_value(json_object_get(f, "pkts_rev")) > 0) {
            nfdump_flags((unsigned)json_integer_value(json_object_get(f, "tcp_flags_rev")) &
                             0xffu,
                         flags);
            expected[n_expected++] = record_line(
                dst, src, dport, sport, proto, json_integer_value(json_object_get(f, "pkts_rev")),
                json_integer_value(json_object_get(f, "bytes_rev")), flags, first, last);
        }
    }
    json_array_foreach(read_back, i, f) {
        if (strcmp(json_string_value(json_object_get(f, "type")), "FLOW") != 0)
            continue;
        const char *flags = json_string_value(json_object_get(f, "tcp_flags"));
        actual[n_actual++] = record_line(
            json_string_value(json_object_get(f, "src4_addr")),
            json_string_value(json_object_get(f, "dst4_addr")),
            json_integer_value(json_object_get(f, "src_port")),
            json_integer_value(json_object_get(f, "dst_port")),
            json_integer_value(json_object_get(f, "proto")),
            json_integer_value(json_object_get(f, "in_packets")),
            json_integer_value(json_object_get(f, "in_bytes")), flags != NULL ? flags : "",
            json_string_value(json_object_get(f, "first")),
            json_string_value(json_object_get(f, "last")));
    }

    qsort(expected, n_expected, sizeof *expected, compare_strings);
    qsort(actual, n_actual, sizeof *actual, compare_strings);
    for (size_t k = 0; k < n_expected && k < n_actual; k++) {
        if (strcmp(expected[k], actual[k]) != 0)
            print_error("record %zu differs:\n  flowveil %s\n  nfdump   %s\n", k, expected[k],
                        actual[k]);
        assert_string_equal(expected[k], actual[k]);
    }
    assert_int_equal(n_actual, n_expected);

    for (size_t k = 0; k < n_expected; k++)
        free(expected[k]);
    for (size_t k = 0; k < n_actual; k++)
        free(actual[k]);
    free(expected);
    free(actual);
    json_decref(read_back);
    json_decref(flows);
    tu_remove_tree(dir);
}

/* Consume every partition (4) of TOPIC from the start; return the values
 * as a JSON array. Waits up to 60 seconds for EXPECT messages (on a
 * loaded machine the consumer may need seconds to join the mock
 * cluster), then WAIT_MS more after the last one for any extra. */
static json_t *consume_topic(const char *bootstraps, const char *topic, size_t expect,
                             unsigned wait_ms)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "flowveil-e2e", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
    for (int32_t p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    json_t *out = json_array();
    unsigned idle_ms = 0;
    unsigned waited_ms = 0;
    while (idle_ms < wait_ms || (json_array_size(out) < expect && waited_ms < 60000)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg == NULL) {
            idle_ms += 100;
            waited_ms += 100;
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_error_t jerr;
            json_t *v = json_loadb(msg->payload, msg->len, 0, &jerr);
            assert_non_null(v);
            json_array_append_new(out, v);
            idle_ms = 0;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

static void test_live_export_honours_policy(void **state)
{
    (void)state;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(owner);
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(owner, 1);
    assert_non_null(cluster);
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, "live.flows", 4, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, "live.dns", 4, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, "batch.flows", 4, 1), 0);

    /* dns collection off; host 192.168.170.56 excluded by a group. */
    char policy[2048];
    snprintf(policy, sizeof policy,
             "version: 1\n"
             "zones:\n"
             "  - {name: lan, networks: [\"192.168.0.0/16\"]}\n"
             "collect:\n"
             "  dns: false\n"
             "groups:\n"
             "  - name: excluded-host\n"
             "    mode: exclude\n"
             "    subnets: [192.168.170.56/32]\n"
             "    legal_basis: works agreement\n"
             "export:\n"
             "  destinations:\n"
             "    - name: lake\n"
             "      kafka: \"%s\"\n"
             "      topic_prefix: live.\n",
             bootstraps);
    char dir[4096], db[4096];
    tu_make_temp_dir(dir, sizeof dir);
    static const char *const captures[] = {"arkime-dns-wiresharkrepo.pcap", NULL};
    ingest(dir, policy, captures, db);

    json_t *stored = e2e_export(dir, db, "flows", NOW_S);
    json_t *sent = consume_topic(bootstraps, "live.flows", json_array_size(stored), 2000);
    json_t *sent_dns = consume_topic(bootstraps, "live.dns", 0, 1000);

    /* The reference: tshark's flows without the excluded host,
     * as a set of "sport/dport/proto" (flowveil may split one of them at
     * its idle timeout, so records are not counted one to one). */
    char expected_path[4096];
    snprintf(expected_path, sizeof expected_path,
             "%s/expected/arkime-dns-wiresharkrepo.pcap.json", e2e_corpus());
    json_error_t jerr;
    json_t *reference = json_load_file(expected_path, 0, &jerr);
    assert_non_null(reference);
    json_t *kept = json_object();
    json_t *excluded = json_object();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(reference, "flows"), i, f) {
        char tuple[64];
        snprintf(tuple, sizeof tuple, "%lld/%lld/%lld",
                 (long long)json_integer_value(json_object_get(f, "sport")),
                 (long long)json_integer_value(json_object_get(f, "dport")),
                 (long long)json_integer_value(json_object_get(f, "proto")));
        bool involves = strcmp(json_string_value(json_object_get(f, "src")), "192.168.170.56") ==
                            0 ||
                        strcmp(json_string_value(json_object_get(f, "dst")), "192.168.170.56") ==
                            0;
        json_object_set_new(involves ? excluded : kept, tuple, json_true());
    }
    assert_true(json_object_size(kept) > 0);
    assert_true(json_object_size(excluded) > 0);

    json_t *stored_tuples = json_object();
    json_array_foreach(stored, i, f) {
        char tuple[64];
        snprintf(tuple, sizeof tuple, "%lld/%lld/%lld",
                 (long long)json_integer_value(json_object_get(f, "sport")),
                 (long long)json_integer_value(json_object_get(f, "dport")),
                 (long long)json_integer_value(json_object_get(f, "proto")));
        assert_null(json_object_get(excluded, tuple));
        json_object_set_new(stored_tuples, tuple, json_true());
    }
    assert_true(json_equal(stored_tuples, kept));
    assert_int_equal(json_array_size(sent), json_array_size(stored));
    assert_int_equal(json_array_size(sent_dns), 0);
    json_decref(kept);
    json_decref(excluded);
    json_decref(stored_tuples);

    /* Each sent record is the stored one without the store id, plus the
     * retention (30 days, the default for flows). */
    json_array_foreach(sent, i, f) {
        assert_int_equal(json_integer_value(json_object_get(f, "retention_s")), 30 * 86400);
        json_object_del(f, "retention_s");
        /* The store makes each stored-at time unique by adding
         * microseconds, and the hook receives the time before that. */
        assert_string_equal(json_string_value(json_object_get(f, "stored")),
                            "2026-01-01T00:00:00.000000Z");
        json_object_del(f, "stored");
        bool found = false;
        size_t k;
        json_t *s;
        json_array_foreach(stored, k, s) {
            json_t *copy = json_deep_copy(s);
            json_object_del(copy, "id");
            json_object_del(copy, "stored");
            if (json_equal(copy, f))
                found = true;
            json_decref(copy);
        }
        assert_true(found);
    }

    /* The batch export of the same store sends the same records, with
     * their store ids and stored-at times. */
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", NOW_S);
    const char *batch_argv[] = {e2e_bin(), "export", "--db", db, "--kafka", bootstraps,
                                "--topic-prefix", "batch.", "--class", "flows", "--now",
                                now_text, NULL};
    run_ok(batch_argv, dir, "export-kafka", "flowveil export --kafka");
    json_t *batch = consume_topic(bootstraps, "batch.flows", json_array_size(stored), 2000);
    assert_int_equal(json_array_size(batch), json_array_size(stored));
    json_array_foreach(batch, i, f) {
        json_object_del(f, "retention_s");
        bool found = false;
        size_t k;
        json_t *s;
        json_array_foreach(stored, k, s) {
            if (json_equal(s, f))
                found = true;
        }
        assert_true(found);
    }
    json_decref(batch);

    json_decref(reference);
    json_decref(stored);
    json_decref(sent);
    json_decref(sent_dns);
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(owner);
    tu_remove_tree(dir);
}

static void test_export_send_rejects_bad_options(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    static const struct {
        const char *args[6];
        const char *message;
    } cases[] = {
        {{"--ipfix", "127.0.0.1:4739", "--kafka", "127.0.0.1:9092", NULL},
         "--ipfix and --kafka exclude each other"},
        {{"--ipfix", "127.0.0.1", NULL}, "invalid --ipfix '127.0.0.1'"},
        {{"--ipfix", "127.0.0.1:4739", "--class", "http", NULL},
         "IPFIX export carries flows, dns and tls, not http"},
        {{"--kafka", "127.0.0.1:9092", "--tcp", NULL}, "--tcp needs --ipfix"},
        {{"--ipfix", "127.0.0.1:4739", "--topic-prefix", "x.", NULL},
         "--topic-prefix and --kafka-property need --kafka"},
        {{"--kafka", "127.0.0.1:9092", "--kafka-property", "novalue", NULL},
         "invalid --kafka-property 'novalue'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *argv[12] = {e2e_bin(), "export", "--db", dir};
        size_t argc = 4;
        for (size_t k = 0; cases[c].args[k] != NULL; k++)
            argv[argc++] = cases[c].args[k];
        argv[argc] = NULL;
        e2e_result res;
        e2e_run(argv, dir, "bad", 30, &res);
        assert_true(res.exited);
        assert_int_equal(res.status, 2);
        if (strstr(res.err, cases[c].message) == NULL)
            e2e_print_result(cases[c].message, &res);
        assert_non_null(strstr(res.err, cases[c].message));
        e2e_result_free(&res);
    }
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipfix_export_matches_nfdump),
        cmocka_unit_test(test_live_export_honours_policy),
        cmocka_unit_test(test_export_send_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
