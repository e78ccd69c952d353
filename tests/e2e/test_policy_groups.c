/*
 * test_policy_groups: monitoring groups are enforced end to end.
 *
 * The demo capture (hosts 10.1.0.11, .15, .23, .31, .42, .57, .64 in
 * zone office) is ingested twice into fresh stores with the same
 * pseudonym key: once with no groups (the baseline) and once with
 *   - 10.1.0.11 in an exclude group (by subnet),
 *   - 10.1.0.15 in an aggregate group (by MAC),
 *   - 10.1.0.23 in a monitor group whose validity ended before the
 *     capture (so it is excluded),
 *   - 10.1.0.31 in a monitor group whose window (weekends) is closed
 *     for the capture's traffic (a Monday), so it is aggregated.
 * The test computes the four hosts' pseudonyms itself with the key it
 * wrote, then checks the exports and the API counters of both stores.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <cmocka.h>
#include <pcap/pcap.h>

#include <jansson.h>
#include <sodium.h>

#include "anonymize.h"
#include "e2e_util.h"
#include "fv_common.h"
#include "testutil.h"

#define GROUPS_NOW_S 1796083200ull  /* 2026-12-01T00:00:00Z, after the demo's traffic */

enum { HOST_EXCLUDED = 0, HOST_AGGREGATED = 1, HOST_EXPIRED = 2, HOST_WINDOW = 3, HOSTS = 4 };
static const uint8_t host_octets[HOSTS] = {11, 15, 23, 31};

static const char *const per_host_classes[] = {"flows", "dns", "tls", "http",
                                               "dhcp", "ssh", "alerts"};

/* k_threshold 1: the aggregates export leaves out no row, so the packet
 * sums below cover every host. */
static const char zones_yaml[] = "zones:\n"
                                 "  - name: office\n"
                                 "    networks: [10.0.0.0/8]\n"
                                 "reporting:\n"
                                 "  k_threshold: 1\n";

static const char groups_yaml[] =
    "groups:\n"
    "  - name: excluded-host\n"
    "    mode: exclude\n"
    "    subnets: [10.1.0.11/32]\n"
    "    legal_basis: consent\n"
    "    approver: \"test\"\n"
    "  - name: aggregated-by-mac\n"
    "    mode: aggregate\n"
    "    macs: [\"02:1a:c4:10:00:0f\"]\n"      /* demo MAC of 10.1.0.15 */
    "    legal_basis: legitimate interest\n"
    "    approver: \"test\"\n"
    "  - name: expired\n"
    "    mode: monitor\n"
    "    subnets: [10.1.0.23/32]\n"
    "    legal_basis: consent\n"
    "    approver: \"test\"\n"
    "    valid_until: 2026-06-30\n"
    "  - name: weekend-only\n"
    "    mode: monitor\n"
    "    subnets: [10.1.0.31/32]\n"
    "    legal_basis: works agreement\n"
    "    approver: \"test\"\n"
    "    window: weekends\n"
    "windows:\n"
    "  - name: weekends\n"
    "    time_zone: UTC\n"
    "    days: [sat, sun]\n"
    "    hours: \"00:00-23:59\"\n";

static void store_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Write DIR/pseudonym.key with a fixed key whose epoch starts at
 * GROUPS_NOW_S (format: "FVKEY001" | epoch u64 BE | start_s u64 BE |
 * key[32] | first 8 bytes of BLAKE2b-256 over the first 56 bytes). */
static void write_key_file(const char *dir)
{
    uint8_t file[64];
    memcpy(file, "FVKEY001", 8);
    store_be64(file + 8, 1);
    store_be64(file + 16, GROUPS_NOW_S);
    for (size_t i = 0; i < 32; i++)
        file[24 + i] = (uint8_t)(0x3c ^ (i * 11));
    uint8_t digest[32];
    assert_int_equal(crypto_generichash(digest, sizeof digest, file, 56, NULL, 0), 0);
    memcpy(file + 56, digest, 8);

    char path[4096];
    e2e_path(path, dir, "pseudonym.key");
    tu_write_file(path, file, sizeof file);
}

typedef struct groups_run {
    char dir[4096];
    char demo[4096];
    char tokens[HOSTS][FV_ENDPOINT_TEXT_MAX];   /* pseudonym tokens of the four hosts */
} groups_run;

/* Compute the tokens of the four hosts with the key file in DIR/keys. */
static void compute_tokens(groups_run *run)
{
    char keys[4096], path[4096], err[256];
    e2e_path(keys, run->dir, "keys");
    assert_int_equal(mkdir(keys, 0700), 0);
    write_key_file(keys);
    e2e_path(path, keys, "pseudonym.key");

    anon_ctx *anon = NULL;
    assert_int_equal(anon_open(path, 86400, GROUPS_NOW_S, &anon, err, sizeof err), FV_OK);
    for (int i = 0; i < HOSTS; i++) {
        const uint8_t addr[4] = {10, 1, 0, host_octets[i]};
        fv_endpoint ep;
        memset(&ep, 0, sizeof ep);
        ep.kind = FV_EP_PSEUDO_IPV4;
        anon_pseudonym(anon, ANON_TYPE_IPV4, addr, sizeof addr, ep.addr);
        fv_endpoint_format(&ep, run->tokens[i]);
    }
    anon_close(&anon);
}

/* Ingest the demo into DIR/NAME with a policy of zones plus EXTRA_YAML. */
static void ingest(const groups_run *run, const char *name, const char *extra_yaml, char db[4096])
{
    char policy[4096], policy_name[128], text[4096];
    e2e_path(db, run->dir, name);
    assert_int_equal(mkdir(db, 0700), 0);
    write_key_file(db);

    snprintf(policy_name, sizeof policy_name, "%s.yaml", name);
    e2e_path(policy, run->dir, policy_name);
    int n = snprintf(text, sizeof text, "version: 1\n%s%s", zones_yaml, extra_yaml);
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(policy, text, (size_t)n);

    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", GROUPS_NOW_S);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                          "--now", now_text, run->demo, NULL};
    e2e_result res;
    e2e_run(argv, run->dir, name, 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest", &res);
        e2e_result_free(&res);
        fail_msg("ingest into %s failed", name);
    }
    e2e_result_free(&res);
}

/* True if any string anywhere in VALUE equals TOKEN. */
static bool json_mentions(const json_t *value, const char *token)
{
    if (json_is_string(value))
        return strcmp(json_string_value(value), token) == 0;
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member) {
            if (json_mentions(member, token))
                return true;
        }
        return false;
    }
    if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item) {
            if (json_mentions(item, token))
                return true;
        }
    }
    return false;
}

/* Number of records in RECORDS that mention TOKEN. */
static size_t count_mentions(const json_t *records, const char *token)
{
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        if (json_mentions(rec, token))
            n++;
    }
    return n;
}

static uint64_t int_field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_integer(v));
    return (uint64_t)json_integer_value(v);
}

/* Sum of FIELD over the aggregate records of bucket size BUCKET. */
static uint64_t aggregate_sum(const json_t *aggregates, const char *bucket, const char *field)
{
    uint64_t sum = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(aggregates, i, rec) {
        if (strcmp(json_string_value(json_object_get(rec, "bucket")), bucket) == 0)
            sum += int_field(rec, field);
    }
    return sum;
}

/* Packets of the baseline's flow records that involve any of the hosts
 * in MASK (bit i = host i). */
static uint64_t packets_of_hosts(const groups_run *run, const json_t *flows, unsigned mask)
{
    uint64_t sum = 0;
    size_t i;
    json_t *rec;
    json_array_foreach(flows, i, rec) {
        bool involved = false;
        for (int h = 0; h < HOSTS; h++) {
            if ((mask & (1u << h)) != 0 && json_mentions(rec, run->tokens[h]))
                involved = true;
        }
        if (involved)
            sum += int_field(rec, "pkts_fwd") + int_field(rec, "pkts_rev");
    }
    return sum;
}

/* The "packets" capture counter of DB, read through /api/v1/counters. */
static uint64_t api_packets(const groups_run *run, const char *db, const char *tag)
{
    uint16_t port = 0;
    pid_t pid = e2e_serve_start(run->dir, db, tag, &port);
    int status = 0;
    size_t len = 0;
    char *body = e2e_http_get(port, "/api/v1/counters", &status, &len);
    kill(pid, SIGTERM);
    e2e_result res;
    e2e_wait(pid, run->dir, tag, 20, &res);
    e2e_result_free(&res);

    assert_non_null(body);
    assert_int_equal(status, 200);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    free(body);
    assert_non_null(doc);
    uint64_t packets = int_field(json_object_get(doc, "capture"), "packets");
    json_decref(doc);
    return packets;
}

static void test_policy_groups_enforced_end_to_end(void **state)
{
    (void)state;
    groups_run run;
    memset(&run, 0, sizeof run);
    tu_make_temp_dir(run.dir, sizeof run.dir);

    e2e_path(run.demo, run.dir, "demo.pcap");
    const char *gen[] = {e2e_demogen(), "--output", run.demo, NULL};
    e2e_result res;
    e2e_run(gen, run.dir, "demogen", 120, &res);
    if (!res.exited || res.status != 0) {
        e2e_print_result("demo generator", &res);
        fail();
    }
    e2e_result_free(&res);
    compute_tokens(&run);

    char base_db[4096], groups_db[4096];
    ingest(&run, "baseline", "", base_db);
    ingest(&run, "groups", groups_yaml, groups_db);

    /* Per-host records: each of the four hosts has some in the baseline
     * (or the checks below prove nothing) and none with the groups. */
    json_t *base_flows = NULL;
    for (size_t c = 0; c < sizeof per_host_classes / sizeof per_host_classes[0]; c++) {
        json_t *base = e2e_export(run.dir, base_db, per_host_classes[c], GROUPS_NOW_S);
        json_t *groups = e2e_export(run.dir, groups_db, per_host_classes[c], GROUPS_NOW_S);
        for (int h = 0; h < HOSTS; h++) {
            size_t in_groups = count_mentions(groups, run.tokens[h]);
            if (in_groups != 0)
                printf("class %s: %zu records of host 10.1.0.%u remain\n", per_host_classes[c],
                       in_groups, host_octets[h]);
            assert_int_equal(in_groups, 0);
        }
        if (strcmp(per_host_classes[c], "flows") == 0) {
            for (int h = 0; h < HOSTS; h++)
                assert_true(count_mentions(base, run.tokens[h]) > 0);
            base_flows = json_incref(base);
        }
        json_decref(base);
        json_decref(groups);
    }
    assert_non_null(base_flows);

    /* Aggregates: no pseudonym at all, and the groups run counts exactly
     * the baseline's packets minus those of the excluded and expired
     * hosts, so the aggregated and window-closed hosts are counted. */
    json_t *base_agg = e2e_export(run.dir, base_db, "aggregates", GROUPS_NOW_S);
    json_t *groups_agg = e2e_export(run.dir, groups_db, "aggregates", GROUPS_NOW_S);
    assert_true(json_array_size(base_agg) > 0);
    assert_true(json_array_size(groups_agg) > 0);
    for (int h = 0; h < HOSTS; h++) {
        assert_int_equal(count_mentions(base_agg, run.tokens[h]), 0);
        assert_int_equal(count_mentions(groups_agg, run.tokens[h]), 0);
    }

    unsigned removed_mask = (1u << HOST_EXCLUDED) | (1u << HOST_EXPIRED);
    unsigned counted_mask = (1u << HOST_AGGREGATED) | (1u << HOST_WINDOW);
    uint64_t removed_packets = packets_of_hosts(&run, base_flows, removed_mask);
    uint64_t counted_packets = packets_of_hosts(&run, base_flows, counted_mask);
    assert_true(removed_packets > 0);
    assert_true(counted_packets > 0);
    for (int b = 0; b < 2; b++) {
        const char *bucket = b == 0 ? "hour" : "day";
        uint64_t base_packets = aggregate_sum(base_agg, bucket, "packets");
        uint64_t groups_packets = aggregate_sum(groups_agg, bucket, "packets");
        printf("%s aggregates: baseline %llu packets, groups %llu, excluded hosts %llu\n",
               bucket, (unsigned long long)base_packets, (unsigned long long)groups_packets,
               (unsigned long long)removed_packets);
        assert_int_equal(groups_packets, base_packets - removed_packets);
    }

    /* Capture counters: the excluded hosts' packets are counted nowhere. */
    uint64_t base_counted = api_packets(&run, base_db, "serve-baseline");
    uint64_t groups_counted = api_packets(&run, groups_db, "serve-groups");
    assert_int_equal(groups_counted, base_counted - removed_packets);

    json_decref(base_flows);
    json_decref(base_agg);
    json_decref(groups_agg);
    tu_remove_tree(run.dir);
}

/* ---- frame MAC against a DHCP-learned MAC ------------------------------ */

static const uint8_t laptop_mac[6] = {0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0x05};
static const uint8_t council_mac[6] = {0x02, 0xee, 0xee, 0xee, 0xee, 0x01};
static const uint8_t control_mac[6] = {0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0x06};
static const uint8_t router_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe};

/* The works council's laptop, excluded by its MAC (council_mac). */
static const char council_yaml[] = "groups:\n"
                                   "  - name: works-council\n"
                                   "    mode: exclude\n"
                                   "    macs: [\"02:ee:ee:ee:ee:01\"]\n"
                                   "    legal_basis: works agreement\n"
                                   "    approver: \"test\"\n";

/* Start RUN in a new temporary folder, with its capture at CAPTURE
 * inside it (the file is written by the caller). */
static void groups_run_start(groups_run *run, const char *capture)
{
    memset(run, 0, sizeof *run);
    tu_make_temp_dir(run->dir, sizeof run->dir);
    e2e_path(run->demo, run->dir, capture);
}

/* Open a pcap file at PATH for Ethernet frames. Close it, and *DEAD,
 * with close_capture. */
static pcap_dumper_t *open_capture(const char *path, pcap_t **dead)
{
    *dead = pcap_open_dead(DLT_EN10MB, 65535);
    assert_non_null(*dead);
    pcap_dumper_t *d = pcap_dump_open(*dead, path);
    assert_non_null(d);
    return d;
}

static void close_capture(pcap_dumper_t *d, pcap_t *dead)
{
    pcap_dump_close(d);
    pcap_close(dead);
}

/* Write one Ethernet frame from SRC_MAC to DST_MAC with an IPv4 header
 * (protocol PROTO, SRC -> DST) and BODY, at TS_S. */
static void dump_ipv4(pcap_dumper_t *d, uint64_t ts_s, const uint8_t *src_mac,
                      const uint8_t *dst_mac, const uint8_t src[4], const uint8_t dst[4],
                      uint8_t proto, const uint8_t *body, size_t body_len)
{
    uint8_t frame[600];
    assert_true(14 + 20 + body_len <= sizeof frame);
    memcpy(frame, dst_mac, 6);
    memcpy(frame + 6, src_mac, 6);
    frame[12] = 0x08;
    frame[13] = 0x00;
    uint8_t *ip = frame + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + body_len) >> 8);
    ip[3] = (uint8_t)(20 + body_len);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    memcpy(ip + 20, body, body_len);

    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)ts_s;
    h.caplen = h.len = (bpf_u_int32)(14 + 20 + body_len);
    pcap_dump((u_char *)d, &h, frame);
}

/* A TCP SYN from SRC:SPORT to 198.51.100.7:443 in a frame from MAC. */
static const uint8_t server_ip[4] = {198, 51, 100, 7};

/* A TCP segment with FLAGS from SRC:SPORT to DST:DPORT in a frame from
 * SRC_MAC to DST_MAC. */
static void dump_tcp(pcap_dumper_t *d, uint64_t ts_s, const uint8_t *src_mac,
                     const uint8_t *dst_mac, const uint8_t src[4], uint16_t sport,
                     const uint8_t dst[4], uint16_t dport, uint8_t flags)
{
    uint8_t tcp[20] = {0};
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8);
    tcp[3] = (uint8_t)dport;
    tcp[12] = 0x50;
    tcp[13] = flags;
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    dump_ipv4(d, ts_s, src_mac, dst_mac, src, dst, 6, tcp, sizeof tcp);
}

/* A TCP SYN from SRC:SPORT to 198.51.100.7:443 in a frame from MAC to
 * the router. */
static void dump_syn(pcap_dumper_t *d, uint64_t ts_s, const uint8_t *mac, const uint8_t src[4],
                     uint16_t sport)
{
    dump_tcp(d, ts_s, mac, router_mac, src, sport, server_ip, 443, 0x02);
}

/* A broadcast DHCPREQUEST from CLIENT_MAC that names REQUESTED in
 * option 50. */
static void dump_dhcp_request(pcap_dumper_t *d, uint64_t ts_s, const uint8_t *client_mac,
                              const uint8_t requested[4])
{
    static const uint8_t any[4] = {0, 0, 0, 0}, broadcast[4] = {255, 255, 255, 255};
    static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    /* UDP 68 -> 67, then BOOTP: op 1, htype 1, hlen 6, xid, chaddr at
     * 28, magic cookie at 236, options 53 (type 3, REQUEST), 50, end. */
    uint8_t udp[8 + 236 + 4 + 10] = {0};
    udp[1] = 68;
    udp[3] = 67;
    udp[4] = (uint8_t)(sizeof udp >> 8);
    udp[5] = (uint8_t)sizeof udp;
    uint8_t *bootp = udp + 8;
    bootp[0] = 1;
    bootp[1] = 1;
    bootp[2] = 6;
    bootp[4] = 0x5a;
    memcpy(bootp + 28, client_mac, 6);
    uint8_t options[] = {0x63, 0x82, 0x53, 0x63, 53, 1, 3, 50, 4, 0, 0, 0, 0, 255};
    memcpy(options + 9, requested, 4);
    memcpy(bootp + 236, options, sizeof options);
    dump_ipv4(d, ts_s, client_mac, broadcast_mac, any, broadcast, 17, udp, sizeof udp);
}

/* Write PATH: a DHCPREQUEST from the laptop that names 10.1.0.77 in
 * option 50, then a SYN from 10.1.0.77 in a frame from the works
 * council's MAC, then a SYN from 10.1.0.78 from another MAC. */
static void write_dhcp_claim_capture(const char *path, uint64_t ts_s)
{
    static const uint8_t claimed[4] = {10, 1, 0, 77}, control[4] = {10, 1, 0, 78};
    pcap_t *dead = NULL;
    pcap_dumper_t *d = open_capture(path, &dead);
    dump_dhcp_request(d, ts_s, laptop_mac, claimed);
    dump_syn(d, ts_s + 1, council_mac, claimed, 44001);
    dump_syn(d, ts_s + 2, control_mac, control, 44002);
    close_capture(d, dead);
}

/* Another device's DHCP request can name any address, and the pipeline
 * learns the requesting MAC for it. A frame whose own MAC is in an
 * exclude group is still dropped: the stricter decision wins. */
static void test_frame_mac_exclusion_beats_dhcp(void **state)
{
    (void)state;
    groups_run run;
    groups_run_start(&run, "dhcp-claim.pcap");
    write_dhcp_claim_capture(run.demo, GROUPS_NOW_S - 3600);

    char db[4096];
    ingest(&run, "claim", council_yaml, db);

    json_t *flows = e2e_export(run.dir, db, "flows", GROUPS_NOW_S);
    size_t council = 0, control = 0, i;
    json_t *rec;
    json_array_foreach(flows, i, rec) {
        uint64_t sport = int_field(rec, "sport");
        council += sport == 44001;
        control += sport == 44002;
    }
    if (council != 0) {
        char *text = json_dumps(flows, JSON_INDENT(1));
        printf("flows:\n%s\n", text != NULL ? text : "(not printable)");
        free(text);
    }
    assert_int_equal(council, 0);
    assert_int_equal(control, 1);
    json_decref(flows);
    tu_remove_tree(run.dir);
}

/* Ingest the capture at PATH under a policy of zones plus EXTRA_YAML and
 * return the number of stored flows whose sport or dport is PORT. */
static size_t flows_on_port(groups_run *run, const char *name, const char *extra_yaml,
                            uint64_t port)
{
    char db[4096];
    ingest(run, name, extra_yaml, db);
    json_t *flows = e2e_export(run->dir, db, "flows", GROUPS_NOW_S);
    size_t count = 0, i;
    json_t *rec;
    json_array_foreach(flows, i, rec) {
        if (int_field(rec, "sport") == port || int_field(rec, "dport") == port)
            count++;
    }
    json_decref(flows);
    return count;
}

/* Copies of frames from and to a host excluded by MAC that carry another
 * MAC: a router's egress copy of its SYN, and a reply that still carries
 * the upstream router's MACs. Both are dropped, because the host map
 * remembers the excluded MAC for the address. */
static void test_excluded_mac_remembered_for_address(void **state)
{
    (void)state;
    static const uint8_t council_ip[4] = {10, 1, 0, 77}, control_ip[4] = {10, 1, 0, 78};
    static const uint8_t upstream_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfd};
    groups_run run;
    groups_run_start(&run, "router-copies.pcap");

    uint64_t t = GROUPS_NOW_S - 3600;
    pcap_t *dead = NULL;
    pcap_dumper_t *d = open_capture(run.demo, &dead);
    dump_tcp(d, t, council_mac, router_mac, council_ip, 44001, server_ip, 443, 0x02);
    dump_tcp(d, t, router_mac, upstream_mac, council_ip, 44001, server_ip, 443, 0x02);
    dump_tcp(d, t + 1, upstream_mac, router_mac, server_ip, 443, council_ip, 44001, 0x12);
    dump_tcp(d, t + 2, router_mac, upstream_mac, control_ip, 44002, server_ip, 443, 0x02);
    close_capture(d, dead);

    assert_int_equal(flows_on_port(&run, "copies", council_yaml, 44001), 0);
    assert_int_equal(flows_on_port(&run, "copies-control", council_yaml, 44002), 1);
    tu_remove_tree(run.dir);
}

/* A host behind a router that a group singles out by its DHCP MAC keeps
 * that group's mode: the router's MAC, which its frames carry, decides
 * nothing when no group lists it. */
static void test_routed_host_keeps_mac_group(void **state)
{
    (void)state;
    static const uint8_t admin_mac[6] = {0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0x40};
    static const uint8_t admin_ip[4] = {10, 1, 0, 40};
    groups_run run;
    groups_run_start(&run, "routed-admin.pcap");
    pcap_t *dead = NULL;
    pcap_dumper_t *d = open_capture(run.demo, &dead);
    dump_dhcp_request(d, GROUPS_NOW_S - 3600, admin_mac, admin_ip);
    dump_syn(d, GROUPS_NOW_S - 3599, router_mac, admin_ip, 44003);
    close_capture(d, dead);

    static const char admins_yaml[] = "groups:\n"
                                      "  - name: it-admins\n"
                                      "    mode: monitor\n"
                                      "    macs: [\"02:aa:aa:aa:aa:40\"]\n"
                                      "    legal_basis: consent\n"
                                      "    approver: \"test\"\n"
                                      "  - name: office\n"
                                      "    mode: aggregate\n"
                                      "    subnets: [10.1.0.0/16]\n"
                                      "    legal_basis: works agreement\n"
                                      "    approver: \"test\"\n";
    assert_int_equal(flows_on_port(&run, "routed", admins_yaml, 44003), 1);
    tu_remove_tree(run.dir);
}

/* Write PATH: a DNS response from 10.1.0.53 to 10.1.0.20 for
 * partner.example with the A answer 203.0.113.9, then one for
 * files.corp with two A answers, 10.9.0.5 and 198.51.100.9. */
static void write_dns_answer_capture(const char *path, uint64_t ts_s)
{
    static const uint8_t server[4] = {10, 1, 0, 53}, client[4] = {10, 1, 0, 20};
    static const uint8_t dns[] = {
        0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,                   /* header */
        5, 'f', 'i', 'l', 'e', 's', 4, 'c', 'o', 'r', 'p', 0, 0, 1, 0, 1, /* question */
        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 0, 5,           /* A 10.9.0.5 */
        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 9,       /* A 198.51.100.9 */
    };
    static const uint8_t partner[] = {
        0x12, 0x35, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,                    /* header */
        7, 'p', 'a', 'r', 't', 'n', 'e', 'r', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,
        0, 1, 0, 1,                                                        /* question */
        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 9,         /* A 203.0.113.9 */
    };
    pcap_t *dead = NULL;
    pcap_dumper_t *d = open_capture(path, &dead);
    for (int m = 0; m < 2; m++) {
        const uint8_t *msg = m == 0 ? partner : dns;
        size_t msg_len = m == 0 ? sizeof partner : sizeof dns;
        uint8_t udp[8 + 64] = {0};
        assert_true(8 + msg_len <= sizeof udp);
        udp[1] = 53;
        udp[2] = 0x9c;
        udp[3] = (uint8_t)(0x40 + m);    /* port 40000 or 40001 */
        udp[4] = (uint8_t)((8 + msg_len) >> 8);
        udp[5] = (uint8_t)(8 + msg_len);
        memcpy(udp + 8, msg, msg_len);
        dump_ipv4(d, ts_s + (uint64_t)m, router_mac, control_mac, server, client, 17, udp,
                  8 + msg_len);
    }
    close_capture(d, dead);
}

/* An excluded host is not recorded as the answer to another host's
 * question either: its address is left out of the DNS record, and an
 * indicator list that names it raises no alert. */
static void test_dns_answer_of_excluded_host_dropped(void **state)
{
    (void)state;
    groups_run run;
    groups_run_start(&run, "dns-answer.pcap");
    write_dns_answer_capture(run.demo, GROUPS_NOW_S - 3600);

    char db[4096], list[4096], extra[4096 + 256];
    e2e_path(list, run.dir, "bad-hosts.txt");
    tu_write_file(list, "203.0.113.9\n198.51.100.9\n", 25);
    snprintf(extra, sizeof extra,
             "exclude: [10.9.0.0/16, 203.0.113.0/24]\n"
             "detect:\n"
             "  indicators:\n"
             "    files:\n"
             "      - {path: %s, format: list, severity: high}\n",
             list);
    ingest(&run, "answers", extra, db);

    json_t *records = e2e_export(run.dir, db, "dns", GROUPS_NOW_S);
    assert_int_equal(json_array_size(records), 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(records, 0), "answers_a")),
                     0);
    json_t *answers = json_object_get(json_array_get(records, 1), "answers_a");
    assert_int_equal(json_array_size(answers), 1);
    assert_string_equal(json_string_value(json_array_get(answers, 0)), "198.51.100.9");
    json_decref(records);

    /* 198.51.100.9 (line 2 of the list) raises the indicator alert. The
     * excluded 203.0.113.9 (line 1), seen a second earlier, raises none,
     * or the stored alert would merge two raises. */
    json_t *alerts = e2e_export(run.dir, db, "alerts", GROUPS_NOW_S);
    assert_int_equal(json_array_size(alerts), 1);
    json_t *alert = json_array_get(alerts, 0);
    assert_int_equal(json_integer_value(json_object_get(alert, "count")), 1);
    json_t *evidence = json_object_get(alert, "evidence");
    assert_int_equal((int)json_number_value(json_object_get(evidence, "line")), 2);
    json_decref(alerts);
    tu_remove_tree(run.dir);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_groups_enforced_end_to_end),
        cmocka_unit_test(test_frame_mac_exclusion_beats_dhcp),
        cmocka_unit_test(test_dns_answer_of_excluded_host_dropped),
        cmocka_unit_test(test_excluded_mac_remembered_for_address),
        cmocka_unit_test(test_routed_host_keeps_mac_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
