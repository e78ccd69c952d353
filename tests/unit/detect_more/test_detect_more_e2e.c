/*
 * test_detect_more_e2e: the demo capture goes through `flowveil ingest`
 * with a policy that has a segmentation deny rule and two indicator
 * lists, and `flowveil export --class alerts` must show their alerts.
 * The iodine capture of the corpus must raise one DNS tunnel alert. A
 * live capture on lo must pick up a rewritten indicator list on SIGHUP.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define E2E_NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */

static void ingest(const char *dir, const char *policy, const char *db, const char *capture)
{
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", E2E_NOW_S);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy,  "--db",
                          db,        "--now",  now_text,   capture, NULL};
    e2e_result res;
    e2e_run(argv, dir, "ingest", 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest", &res);
        e2e_result_free(&res);
        fail_msg("ingest failed");
    }
    e2e_result_free(&res);
}

static const char *string_field(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    e2e_path(path, dir, name);
    tu_write_file(path, text, strlen(text));
}

/*
 * The demo (tools/demogen) has office hosts in 10.1.0.0/16 that open TLS
 * to external port 443, among them a beacon to 203.0.113.50, and ask
 * for example.com names.
 */
static void test_demo_segmentation_and_indicator_alerts(void **unused)
{
    (void)unused;
    char dir[4096], demo[4096], db[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(demo, dir, "demo.pcap");
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    e2e_result res;
    e2e_run(gen, dir, "demogen", 120, &res);
    assert_true(res.exited && res.status == 0);
    e2e_result_free(&res);

    write_text(dir, "bad.txt", "# addresses\n203.0.113.50\nnot a valid line\n");
    write_text(dir, "bad.csv", "indicator,type,note\nexample.com,domain,test domain\n");
    write_text(dir, "policy.yaml",
               "version: 1\n"
               "zones:\n"
               "  - name: office\n"
               "    networks: [10.0.0.0/8]\n"
               "detect:\n"
               "  segmentation:\n"
               "    default: allow\n"
               "    rules:\n"
               "      - {from: office, to: external, proto: tcp, ports: \"443\", action: deny}\n"
               "  indicators:\n"
               "    files:\n"
               "      - {path: bad.txt, format: list}\n"
               "      - {path: bad.csv, format: csv, severity: critical}\n");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(db, dir, "db");
    ingest(dir, policy, db, demo);

    json_t *alerts = e2e_export(dir, db, "alerts", E2E_NOW_S);
    size_t segmentation = 0, flow_hits = 0, domain_hits = 0, i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        const char *detector = string_field(a, "detector");
        const char *summary = string_field(a, "summary");
        const char *host = string_field(a, "host");
        assert_non_null(detector);
        assert_non_null(summary);
        /* The internal side is always a pseudonym token. */
        assert_non_null(host);
        assert_int_equal(strncmp(host, "ip4-", 4), 0);
        char *dump = json_dumps(a, JSON_COMPACT);
        assert_null(strstr(dump, "\"10.1."));
        free(dump);

        if (strcmp(detector, "segmentation") == 0) {
            segmentation++;
            assert_string_equal(string_field(a, "severity"), "high");
            assert_int_equal(json_integer_value(json_object_get(a, "peer_port")), 443);
            assert_non_null(strstr(summary, "from zone office to zone external on tcp/443"));
            json_t *evidence = json_object_get(a, "evidence");
            assert_int_equal(json_number_value(json_object_get(evidence, "rule")), 1);
            assert_true(json_number_value(json_object_get(evidence, "flows")) >= 1);
        } else if (strcmp(detector, "indicator") == 0) {
            if (strstr(summary, "ipv4 indicator of list 0 (line 2) seen in flow") != NULL) {
                flow_hits++;
                assert_string_equal(string_field(a, "severity"), "high");
                assert_string_equal(string_field(a, "peer"), "203.0.113.50");
                json_t *evidence = json_object_get(a, "evidence");
                assert_int_equal(json_number_value(json_object_get(evidence, "list")), 0);
                assert_int_equal(json_number_value(json_object_get(evidence, "line")), 2);
                assert_int_equal(json_number_value(json_object_get(evidence, "type")), 1);
                assert_int_equal(json_number_value(json_object_get(evidence, "source")), 1);
            } else if (strstr(summary, "domain indicator of list 1 (line 2)") != NULL) {
                domain_hits++;
                assert_string_equal(string_field(a, "severity"), "critical");
            }
        }
    }
    json_decref(alerts);
    assert_true(segmentation >= 5);
    assert_true(flow_hits >= 1);
    assert_true(domain_hits >= 1);
    tu_remove_tree(dir);
}

static void test_iodine_capture_raises_dns_tunnel(void **unused)
{
    (void)unused;
    char dir[4096], capture[4096], db[4096], policy[4096];
    snprintf(capture, sizeof capture, "%s/pcaps/ndpi-dns-tunnel-iodine.pcap", e2e_corpus());
    FILE *probe = fopen(capture, "rb");
    if (probe == NULL) {
        print_message("corpus capture %s not found; test skipped\n", capture);
        skip();
    }
    fclose(probe);

    tu_make_temp_dir(dir, sizeof dir);
    write_text(dir, "policy.yaml",
               "version: 1\n"
               "zones:\n"
               "  - name: lan\n"
               "    networks: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]\n");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(db, dir, "db");
    ingest(dir, policy, db, capture);

    json_t *alerts = e2e_export(dir, db, "alerts", E2E_NOW_S);
    size_t tunnels = 0, i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        if (strcmp(string_field(a, "detector"), "dns_tunnel") == 0) {
            tunnels++;
            assert_non_null(strstr(string_field(a, "summary"), "pirate.sea"));
        }
    }
    json_decref(alerts);
    assert_int_equal(tunnels, 1);
    tu_remove_tree(dir);
}

/* Count NEEDLE in DIR/TAG.err. */
static int count_in_err(const char *dir, const char *tag, const char *needle)
{
    char path[4096], name[256];
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(path, dir, name);
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    int n = 0;
    for (const char *p = text; p != NULL && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

static bool wait_for_err(const char *dir, const char *tag, const char *needle, unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 50) {
        if (count_in_err(dir, tag, needle) > 0)
            return true;
        e2e_sleep_ms(50);
    }
    return false;
}

/* Send COUNT UDP datagrams from 127.0.0.1 to 127.0.0.2 port PORT. Nothing
 * listens there; the packets still cross lo. */
static void send_to_127_0_0_2(uint16_t port, int count)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in from;
    memset(&from, 0, sizeof from);
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.2", &to.sin_addr), 1);
    for (int i = 0; i < count; i++) {
        const char payload[] = "flowveil indicator reload test";
        (void)sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&to, sizeof to);
    }
    close(fd);
}

/*
 * Live capture on lo with 127.0.0.1 as the internal zone. The list names
 * 192.0.2.1 at start. It is rewritten to name 127.0.0.2 and the process
 * gets SIGHUP, so traffic to 127.0.0.2 must raise an indicator alert.
 */
static void test_capture_sighup_reloads_indicator_list(void **unused)
{
    (void)unused;
    if (geteuid() != 0) {
        print_message("live capture on lo needs root; test skipped\n");
        skip();
    }
    char dir[4096], policy[4096], db[4096], list[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(list, dir, "bad.txt");
    write_text(dir, "bad.txt", "192.0.2.1\n");
    write_text(dir, "policy.yaml",
               "version: 1\n"
               "zones:\n"
               "  - name: office\n"
               "    networks: [127.0.0.1/32]\n"
               "detect:\n"
               "  indicators:\n"
               "    files:\n"
               "      - {path: bad.txt, format: list, severity: medium}\n");
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(db, dir, "db");

    const char *argv[] = {e2e_bin(), "capture", "--policy", policy,          "--db", db,
                          "-i",      "lo",      "--filter", "udp port 9999", NULL};
    pid_t pid = e2e_spawn(argv, dir, "capture");
    if (!wait_for_err(dir, "capture", "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, dir, "capture", 10, &res);
        e2e_print_result("flowveil capture did not start", &res);
        e2e_result_free(&res);
        fail();
    }

    write_text(dir, "bad.txt", "# rewritten\n127.0.0.2\n");
    kill(pid, SIGHUP);
    if (!wait_for_err(dir, "capture", "indicator lists reloaded", 10000)) {
        kill(pid, SIGKILL);
        fail_msg("capture did not reload the indicator list within 10 s");
    }
    send_to_127_0_0_2(9999, 3);
    e2e_sleep_ms(500);

    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, dir, "capture", 30, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture", &res);
        e2e_result_free(&res);
        fail_msg("capture did not stop cleanly");
    }
    e2e_result_free(&res);

    json_t *alerts = e2e_export(dir, db, "alerts", 0);
    size_t hits = 0, i;
    json_t *a;
    json_array_foreach(alerts, i, a)
    {
        if (strcmp(string_field(a, "detector"), "indicator") != 0)
            continue;
        hits++;
        assert_string_equal(string_field(a, "peer"), "127.0.0.2");
        assert_string_equal(string_field(a, "severity"), "medium");
        assert_int_equal(strncmp(string_field(a, "host"), "ip4-", 4), 0);
        json_t *evidence = json_object_get(a, "evidence");
        assert_int_equal(json_number_value(json_object_get(evidence, "line")), 2);
    }
    json_decref(alerts);
    assert_int_equal(hits, 1);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_segmentation_and_indicator_alerts),
        cmocka_unit_test(test_iodine_capture_raises_dns_tunnel),
        cmocka_unit_test(test_capture_sighup_reloads_indicator_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
