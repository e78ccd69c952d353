/*
 * Tests for the detect section of the policy: every detector key parses
 * with its default, good values land in pol_detect, and bad values are
 * rejected with "FILE:LINE:COL: reason; fix".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

/* Lines 1-7; the detect keys of each case start on line 8. */
#define POLICY_HEAD                                                                                \
    "version: 1\n"                                                                                 \
    "zones:\n"                                                                                     \
    "  - name: office\n"                                                                           \
    "    networks: [10.0.0.0/8]\n"                                                                 \
    "  - name: guest\n"                                                                            \
    "    networks: [192.168.0.0/16]\n"                                                             \
    "detect:\n"

static int load(const char *name, const char *detect_body, pol_policy **out, char *err,
                size_t err_len)
{
    char text[8192];
    int n = snprintf(text, sizeof text, "%s%s", POLICY_HEAD, detect_body);
    assert_true(n > 0 && (size_t)n < sizeof text);
    return pol_load_buffer(name, text, (size_t)n, out, err, err_len);
}

static void test_detect_defaults(void **state)
{
    (void)state;
    pol_policy *pol = NULL;
    char err[512] = "";
    assert_int_equal(load("test.yaml", "  beacon: {enabled: true}\n", &pol, err, sizeof err),
                     FV_OK);
    const pol_detect *d = pol_detect_config(pol);
    assert_int_equal(d->alert_window_s, 3600);
    assert_int_equal(d->learning_period_s, 7 * 86400);
    assert_true(d->beacon_max_jitter > 0.299 && d->beacon_max_jitter < 0.301);
    assert_true(d->beacon_min_score > 0.799 && d->beacon_min_score < 0.801);
    assert_int_equal(d->beacon_min_duration_s, 3600);
    assert_true(d->long_conn_enabled);
    assert_int_equal(d->long_conn_min_duration_s, 4 * 3600);
    assert_true(d->baseline_enabled);
    assert_int_equal(d->baseline_min_bytes, 10000000);
    assert_true(d->scan_enabled);
    assert_int_equal(d->scan_min_targets, 10);
    assert_true(d->dns_tunnel_enabled);
    assert_int_equal(d->dns_tunnel_min_subdomains, 100);
    assert_true(d->dga_enabled);
    assert_int_equal(d->dga_min_nxdomain, 20);
    assert_false(d->rare_dest_enabled);
    assert_true(d->off_hours_enabled);
    assert_false(d->segmentation_enabled);
    assert_true(d->segmentation_default_allow);
    assert_false(d->indicators_enabled);
    pol_destroy(&pol);
}

static void test_detect_full_section(void **state)
{
    (void)state;
    static const char body[] =
        "  alert_window: 30m\n"
        "  learning_period: 14d\n"
        "  beacon:\n"
        "    min_score: 0.9\n"
        "    min_duration: 2h\n"
        "    allow:\n"
        "      - {domain: ntp.example.org, port: 123, proto: udp}\n"
        "      - {address: 203.0.113.0/24}\n"
        "  long_connection: {enabled: false, min_duration: 8h}\n"
        "  baseline: {mad_factor: 4.5, min_bytes: 1MB}\n"
        "  scan: {theta0: 0.9, theta1: 0.1, false_positive_rate: 0.001, detection_rate: 0.999,"
        " min_targets: 25}\n"
        "  dns_tunnel: {min_subdomains: 50, window: 5m, min_entropy: 4, min_label_length: 40,\n"
        "               allow: [Updates.Example.COM., av.example.net]}\n"
        "  dga: {min_nxdomain: 5, window: 1h, min_score: 0.6, allow: [.sophosxl.example]}\n"
        "  rare_destination: {enabled: true}\n"
        "  off_hours: {max_share: 0.02}\n"
        "  segmentation:\n"
        "    default: deny\n"
        "    rules:\n"
        "      - {from: office, to: external, proto: tcp, ports: \"1000-2000\", action: allow}\n"
        "      - {from: guest, to: \"*\", action: deny}\n"
        "  indicators:\n"
        "    files:\n"
        "      - {path: lists/bad.csv, format: csv, severity: critical}\n"
        "      - {path: /etc/flowveil/ips.txt}\n";
    pol_policy *pol = NULL;
    char err[512] = "";
    int rc = load("/srv/policy/main.yaml", body, &pol, err, sizeof err);
    if (rc != FV_OK)
        print_error("unexpected rejection: %s\n", err);
    assert_int_equal(rc, FV_OK);
    const pol_detect *d = pol_detect_config(pol);

    assert_int_equal(d->alert_window_s, 1800);
    assert_int_equal(d->learning_period_s, 14 * 86400);
    assert_int_equal(d->beacon_min_duration_s, 7200);
    assert_int_equal(d->beacon_allow_count, 2);
    assert_string_equal(d->beacon_allow[0].domain, "ntp.example.org");
    assert_int_equal(d->beacon_allow[0].port, 123);
    assert_int_equal(d->beacon_allow[0].proto, 17);
    assert_int_equal(d->beacon_allow[0].family, 0);
    assert_int_equal(d->beacon_allow[1].family, 4);
    assert_int_equal(d->beacon_allow[1].prefix_len, 24);
    /* 203.0.113.0 in network order in addr[0..3]. */
    static const uint8_t net[4] = {203, 0, 113, 0};
    assert_memory_equal(d->beacon_allow[1].addr, net, sizeof net);
    assert_false(d->long_conn_enabled);
    assert_int_equal(d->long_conn_min_duration_s, 8 * 3600);
    assert_true(d->baseline_mad_factor > 4.49 && d->baseline_mad_factor < 4.51);
    assert_int_equal(d->baseline_min_bytes, 1000000);
    assert_int_equal(d->scan_min_targets, 25);
    assert_true(d->scan_theta1 < 0.11);
    assert_int_equal(d->dns_tunnel_window_s, 300);
    assert_int_equal(d->dns_tunnel_min_label_len, 40);
    assert_int_equal(d->dga_window_s, 3600);
    /* Suffixes are stored lower case without their outer dots. */
    assert_int_equal(d->dns_tunnel_allow_count, 2);
    assert_string_equal(d->dns_tunnel_allow[0], "updates.example.com");
    assert_string_equal(d->dns_tunnel_allow[1], "av.example.net");
    assert_int_equal(d->dga_allow_count, 1);
    assert_string_equal(d->dga_allow[0], "sophosxl.example");
    assert_true(d->rare_dest_enabled);
    assert_true(d->off_hours_max_share > 0.0199 && d->off_hours_max_share < 0.0201);
    assert_true(d->segmentation_enabled);
    assert_false(d->segmentation_default_allow);
    assert_int_equal(d->seg_rule_count, 2);
    assert_string_equal(d->seg_rules[0].to_zone, "external");
    assert_int_equal(d->seg_rules[0].port_lo, 1000);
    assert_int_equal(d->seg_rules[0].port_hi, 2000);
    assert_true(d->seg_rules[0].allow);
    assert_string_equal(d->seg_rules[1].to_zone, "*");
    assert_int_equal(d->seg_rules[1].port_lo, 0);
    assert_int_equal(d->seg_rules[1].port_hi, 65535);
    assert_false(d->seg_rules[1].allow);
    assert_true(d->indicators_enabled);
    assert_int_equal(d->indicator_file_count, 2);
    assert_string_equal(d->indicator_files[0].path, "/srv/policy/lists/bad.csv");
    assert_int_equal(d->indicator_files[0].format, 1);
    assert_int_equal(d->indicator_files[0].severity, FV_SEV_CRITICAL);
    assert_string_equal(d->indicator_files[1].path, "/etc/flowveil/ips.txt");
    assert_int_equal(d->indicator_files[1].severity, FV_SEV_HIGH);

    char summary[8192];
    assert_int_equal(pol_summary(pol, summary, sizeof summary), FV_OK);
    assert_non_null(strstr(summary, "long_connection: off."));
    assert_non_null(strstr(summary, "segmentation: on. 2 rules; flows no rule matches are denied."));
    assert_non_null(strstr(summary, "indicators: on. 2 files (1 plain list, 1 CSV)."));
    assert_non_null(strstr(summary, "at most once per 30m"));
    assert_non_null(strstr(summary, "(half of them or more); 2 allowed domain suffixes."));
    assert_non_null(strstr(summary, "scoring 0.60 or more; 1 allowed domain suffixes."));
    pol_destroy(&pol);
}

static void test_detect_segmentation_off_wins(void **state)
{
    (void)state;
    pol_policy *pol = NULL;
    char err[512] = "";
    assert_int_equal(load("test.yaml",
                          "  segmentation:\n"
                          "    enabled: false\n"
                          "    rules: [{from: guest, to: office, action: deny}]\n",
                          &pol, err, sizeof err),
                     FV_OK);
    assert_false(pol_detect_config(pol)->segmentation_enabled);
    assert_int_equal(pol_detect_config(pol)->seg_rule_count, 1);
    pol_destroy(&pol);
}

/* Each bad value with the exact message, or its beginning when the rest
 * is long. Keys start on line 8. */
typedef struct bad_case {
    const char *body;
    const char *message;
} bad_case;

static const bad_case bad_cases[] = {
    {"  alert_window: 10s\n",
     "test.yaml:8:17: detect.alert_window is out of range (10s); use a duration from 1m to 30d"},
    {"  learning_period: 0h\n",
     "test.yaml:8:20: detect.learning_period must not be zero (0h); use a duration from 1h to "
     "90d"},
    {"  beacon: {min_score: 1.5}\n",
     "test.yaml:8:23: detect.beacon.min_score is out of range (1.5); use a value from 0 to 1"},
    {"  beacon: {min_connections: 65}\n",
     "test.yaml:8:29: detect.beacon.min_connections is out of range (65); use a value from 3 to "
     "64"},
    {"  beacon: {max_jitter: 0}\n",
     "test.yaml:8:24: detect.beacon.max_jitter is out of range (0); use a value above 0 and "
     "below 1"},
    {"  beacon:\n    allow: [{domain: a.example, address: 192.0.2.1}]\n",
     "test.yaml:9:13: detect.beacon.allow[0] needs exactly one of domain and address; write for "
     "example {domain: time.example.org, port: 123, proto: udp}"},
    {"  beacon:\n    allow: [{port: 123}]\n",
     "test.yaml:9:13: detect.beacon.allow[0] needs exactly one of domain and address"},
    {"  beacon:\n    allow: [{address: 192.0.2.1, port: 70000}]\n",
     "test.yaml:9:40: detect.beacon.allow[0].port is out of range (70000); use a value from 1 to "
     "65535"},
    {"  beacon:\n    allow: [{address: 192.0.2.1, proto: icmp}]\n",
     "test.yaml:9:41: detect.beacon.allow[0].proto is not a known protocol (icmp); write tcp or "
     "udp"},
    {"  beacon:\n    allow: [{address: 192.0.2.1/24}]\n",
     "test.yaml:9:23: detect.beacon.allow[0].address has host bits set below the prefix "
     "(192.0.2.1/24); write the network address 192.0.2.0/24"},
    {"  beacon:\n    allow: {domain: a.example}\n",
     "test.yaml:9:12: detect.beacon.allow must be a list, not a mapping"},
    {"  scan: {theta0: 0.3, theta1: 0.4}\n",
     "test.yaml:8:9: detect.scan.theta1 (0.4) must be below detect.scan.theta0 (0.3)"},
    {"  scan: {false_positive_rate: 0.5}\n",
     "test.yaml:8:31: detect.scan.false_positive_rate is out of range (0.5); use a value above 0 "
     "and below 0.5"},
    {"  dns_tunnel: {min_label_length: 64}\n",
     "test.yaml:8:34: detect.dns_tunnel.min_label_length is out of range (64); use a value from 1 "
     "to 63"},
    {"  dns_tunnel:\n    allow: [\"*.example.com\"]\n",
     "test.yaml:9:13: detect.dns_tunnel.allow[0] is not a valid domain suffix (*.example.com: "
     "wildcards are not needed, because a suffix matches every name below it); write a domain "
     "name such as \"updates.example.com\""},
    {"  dns_tunnel:\n    allow: [com]\n",
     "test.yaml:9:13: detect.dns_tunnel.allow[0] is a top-level domain (com), which would "
     "silence the detector for a whole TLD; write a domain such as \"updates.example.com\""},
    {"  dns_tunnel:\n    allow: [a.example, A.Example.]\n",
     "test.yaml:9:24: detect.dns_tunnel.allow[1] repeats the suffix a.example "
     "(A.Example.); remove the duplicate"},
    {"  dns_tunnel:\n    allow: [\"a b.example\"]\n",
     "test.yaml:9:13: detect.dns_tunnel.allow[0] is not a valid domain suffix (a b.example: it "
     "contains a character other than letters, digits, '-', '_' and '.')"},
    {"  dns_tunnel:\n    allow: a.example\n",
     "test.yaml:9:12: detect.dns_tunnel.allow must be a list"},
    {"  dga:\n    allow: [{domain: a.example}]\n",
     "test.yaml:9:13: detect.dga.allow[0] must be"},
    {"  dga: {window: 2d}\n",
     "test.yaml:8:17: detect.dga.window is out of range (2d); use a duration from 1m to 1d"},
    {"  off_hours: {max_share: 0.5}\n",
     "test.yaml:8:26: detect.off_hours.max_share is out of range (0.5); use a value above 0 and "
     "below 0.5"},
    {"  baseline: {mad_factor: 0.5}\n",
     "test.yaml:8:26: detect.baseline.mad_factor is out of range (0.5); use a value from 1 to "
     "100"},
    {"  baseline: {window: 1h}\n",
     "test.yaml:8:14: unknown key in detect.baseline (window); allowed keys are: enabled, "
     "mad_factor, min_bytes"},
    {"  rare_destination: {enabled: yes}\n",
     "test.yaml:8:31: detect.rare_destination.enabled must be true or false (yes); write true or "
     "false"},
    {"  segmentation: {default: block}\n",
     "test.yaml:8:27: detect.segmentation.default must be allow or deny (block); write allow or "
     "deny"},
    {"  segmentation:\n    rules: [{from: guest, to: lab, action: deny}]\n",
     "test.yaml:9:13: detect.segmentation.rules[0].to names no zone (lab); use a zone name from "
     "zones, * or external"},
    {"  segmentation:\n    rules: [{from: guest, to: office}]\n",
     "test.yaml:9:13: detect.segmentation.rules[0] needs from, to and action"},
    {"  segmentation:\n    rules: [{from: guest, to: office, ports: \"22\", action: deny}]\n",
     "test.yaml:9:13: detect.segmentation.rules[0] gives ports without proto tcp or udp; add "
     "proto: tcp or proto: udp"},
    {"  segmentation:\n"
     "    rules: [{from: guest, to: office, proto: tcp, ports: \"2000-1000\", action: deny}]\n",
     "test.yaml:9:58: detect.segmentation.rules[0].ports is not a port or port range "
     "(2000-1000)"},
    {"  segmentation:\n    rules: [{from: guest, to: office, proto: sctp, action: deny}]\n",
     "test.yaml:9:46: detect.segmentation.rules[0].proto is not a known protocol (sctp); write "
     "tcp, udp or icmp"},
    {"  indicators:\n    files: [{path: a.txt, format: xml}]\n",
     "test.yaml:9:35: detect.indicators.files[0].format must be list or csv (xml); write list or "
     "csv"},
    {"  indicators:\n    files: [{path: a.txt, severity: urgent}]\n",
     "test.yaml:9:37: detect.indicators.files[0].severity is not a severity (urgent); write low, "
     "medium, high or critical"},
    {"  indicators:\n    files: [{format: csv}]\n",
     "test.yaml:9:13: detect.indicators.files[0] needs a path"},
};

static void test_detect_rejects_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        pol_policy *pol = NULL;
        char err[512] = "";
        int rc = load("test.yaml", bad_cases[i].body, &pol, err, sizeof err);
        if (rc != FV_ERR_PARSE || strncmp(err, bad_cases[i].message,
                                          strlen(bad_cases[i].message)) != 0)
            print_error("case %zu:\n  got      %s\n  expected %s\n", i, err,
                        bad_cases[i].message);
        assert_int_equal(rc, FV_ERR_PARSE);
        assert_null(pol);
        assert_memory_equal(err, bad_cases[i].message, strlen(bad_cases[i].message));
        /* Every message ends in a fix after "; ". */
        assert_non_null(strstr(err, "; "));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_defaults),
        cmocka_unit_test(test_detect_full_section),
        cmocka_unit_test(test_detect_segmentation_off_wins),
        cmocka_unit_test(test_detect_rejects_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
