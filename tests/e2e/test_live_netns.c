/*
 * test_live_netns: corpus captures replayed with tcpreplay over a veth
 * pair inside a network namespace that the test creates, while
 * `flowveil capture -Z nobody` listens on the other end. The stored
 * records must equal those of `flowveil ingest` of the same files, the
 * capturing process must run without privileges, and its log must not
 * contain any internal address of the input.
 *
 * Needs root, ip(8) and tcpreplay; skipped otherwise. Nothing leaves the
 * namespace: both veth ends live in it and it is deleted at the end.
 *
 * Fields allowed to differ between the live and the file run, because
 * they come from the clock or from packet timing, which a replay
 * compresses: id, stored, first, last, first_us, last_us, ts, ts_us,
 * rtt_us and end (a flow may end by an idle timeout between files in
 * ingest but by the final flush live). MAC pseudonyms ("mac-...") differ
 * because each store has its own key, so only their presence is
 * compared. Everything else, the 5-tuple,
 * packet and byte counts, flags and every protocol field, must match as
 * a multiset.
 */
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

/* Captures with Ethernet framing, no frame cut by the snap length, and
 * less than 30 s between first and last packet (the shortest idle
 * timeout), so a replay at full speed splits no flow differently. */
static const char *const replayed[] = {
    "zeek-single-conn.pcap",
    "zeek-ssh1-ssh2-fingerprints.pcap",
    "zeek-dhcp.pcap",
    "zeek-5-pings.pcap",
    "zeek-chrome-1250-tls-x25519-kyber.pcap",
    "arkime-tls-split-client-hello.pcap",
    "arkime-dns-tcp.pcap",
    "zeek-hrr.pcap",
    "zeek-quicv2-http3-443.pcap",
    "zeek-vxlan-encapsulated-http.pcap",
};
#define REPLAYED_COUNT (sizeof replayed / sizeof replayed[0])

static const char *const compared_classes[] = {"flows", "dns", "tls", "http", "dhcp", "ssh"};
static const char *const timing_fields[] = {"id",       "stored",  "first", "last", "first_us",
                                            "last_us",  "ts",      "ts_us", "rtt_us", "end"};

typedef struct netns_fixture {
    char name[64];
    char dir[4096];
} netns_fixture;

/* Run a shell-free command line and return its exit status. */
static int run_quiet(const char *const argv[], const char *dir, const char *tag)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 60, &res);
    int status = res.exited ? res.status : 128 + res.status;
    if (status != 0)
        e2e_print_result(argv[0], &res);
    e2e_result_free(&res);
    return status;
}

static bool have_program(const char *path)
{
    return access(path, X_OK) == 0;
}

static int setup_netns(void **state)
{
    if (geteuid() != 0 || !have_program("/usr/sbin/ip") || !have_program("/usr/bin/tcpreplay")) {
        *state = NULL;
        return 0;
    }
    netns_fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->name, sizeof fx->name, "fvlive%ld", (long)getpid());
    tu_make_temp_dir(fx->dir, sizeof fx->dir);

    const char *add[] = {"/usr/sbin/ip", "netns", "add", fx->name, NULL};
    /* The largest MTU, because some captures hold frames of up to 9 KB
     * that tcpreplay could not send over a 1500-byte link. */
    const char *veth[] = {"/usr/sbin/ip", "-n", fx->name, "link", "add", "va", "mtu", "65535",
                          "type", "veth", "peer", "name", "vb", "mtu", "65535", NULL};
    /* Without IPv6 the kernel sends no router or neighbour solicitations
     * on the veth ends, so the capture receives the replayed frames only. */
    const char *no_v6[] = {"/usr/sbin/ip", "netns", "exec", fx->name, "/usr/sbin/sysctl", "-qw",
                           "net.ipv6.conf.all.disable_ipv6=1", NULL};
    const char *no_v6_default[] = {"/usr/sbin/ip", "netns", "exec", fx->name, "/usr/sbin/sysctl",
                                   "-qw", "net.ipv6.conf.default.disable_ipv6=1", NULL};
    const char *up_a[] = {"/usr/sbin/ip", "-n", fx->name, "link", "set", "va", "up", NULL};
    const char *up_b[] = {"/usr/sbin/ip", "-n", fx->name, "link", "set", "vb", "up", NULL};
    assert_int_equal(run_quiet(add, fx->dir, "netns-add"), 0);
    *state = fx;
    assert_int_equal(run_quiet(veth, fx->dir, "veth"), 0);
    assert_int_equal(run_quiet(no_v6, fx->dir, "sysctl"), 0);
    assert_int_equal(run_quiet(no_v6_default, fx->dir, "sysctl-default"), 0);
    assert_int_equal(run_quiet(up_a, fx->dir, "up-a"), 0);
    assert_int_equal(run_quiet(up_b, fx->dir, "up-b"), 0);
    return 0;
}

static int teardown_netns(void **state)
{
    netns_fixture *fx = *state;
    if (fx == NULL)
        return 0;
    const char *del[] = {"/usr/sbin/ip", "netns", "del", fx->name, NULL};
    (void)run_quiet(del, fx->dir, "netns-del");
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static netns_fixture *fixture_or_skip(void **state)
{
    if (*state == NULL) {
        printf("skipped: needs root, /usr/sbin/ip and /usr/bin/tcpreplay to build a network "
               "namespace with a veth pair\n");
        skip();
    }
    return *state;
}

/* Write a policy whose zones are ZONES_YAML with a retention of 3650
 * days, so records of old captures are still exported. */
static void write_policy(const char *path, const char *zones_yaml)
{
    e2e_write_policy(path, zones_yaml, "3650d");
}

/* Return the records of every compared class of DB as canonical JSON
 * strings without the timing fields, sorted, in a new JSON array. */
static json_t *canonical_records(const char *dir, const char *db)
{
    json_t *all = json_array();
    for (size_t c = 0; c < sizeof compared_classes / sizeof compared_classes[0]; c++) {
        json_t *records = e2e_export(dir, db, compared_classes[c], 0);
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r) {
            for (size_t f = 0; f < sizeof timing_fields / sizeof timing_fields[0]; f++)
                (void)json_object_del(r, timing_fields[f]);
            /* MAC pseudonyms are keyed per store; only their presence
             * compares. */
            const char *key;
            json_t *value;
            json_object_foreach(r, key, value) {
                const char *text = json_string_value(value);
                if (text != NULL && strncmp(text, "mac-", 4) == 0)
                    json_object_set_new(r, key, json_string("mac-(pseudonym)"));
            }
            char *text = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
            assert_non_null(text);
            json_array_append_new(all, json_string(text));
            free(text);
        }
        json_decref(records);
    }
    return all;
}

static int compare_strings(const void *a, const void *b)
{
    const char *sa = json_string_value(*(json_t *const *)a);
    const char *sb = json_string_value(*(json_t *const *)b);
    return strcmp(sa, sb);
}

/* Sort the strings of ARRAY into a new C array of json_t pointers. */
static json_t **sorted_items(json_t *array)
{
    size_t n = json_array_size(array);
    json_t **items = calloc(n + 1, sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(array, i);
    qsort(items, n, sizeof *items, compare_strings);
    return items;
}

/* Print the records only one side has, then fail if there are any. */
static void assert_same_multiset(json_t *expected, json_t *got)
{
    json_t **e = sorted_items(expected);
    json_t **g = sorted_items(got);
    size_t ne = json_array_size(expected), ng = json_array_size(got);
    size_t i = 0, j = 0, differences = 0;
    while (i < ne || j < ng) {
        int cmp;
        if (i == ne)
            cmp = 1;
        else if (j == ng)
            cmp = -1;
        else
            cmp = compare_strings(&e[i], &g[j]);
        if (cmp == 0) {
            i++;
            j++;
            continue;
        }
        differences++;
        if (cmp < 0)
            printf("only in ingest: %s\n", json_string_value(e[i++]));
        else
            printf("only in capture: %s\n", json_string_value(g[j++]));
    }
    free(e);
    free(g);
    printf("%zu records from ingest, %zu from capture, %zu differences\n", ne, ng, differences);
    assert_true(ne > 0);
    assert_int_equal(differences, 0);
}

/* Copy the value of FIELD from /proc/PID/status into OUT. */
static void proc_status_field(pid_t pid, const char *field, char *out, size_t out_len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    char *status = tu_read_file(path, NULL);
    assert_non_null(status);
    char key[32];
    snprintf(key, sizeof key, "\n%s:\t", field);
    const char *at = strstr(status, key);
    assert_non_null(at);
    at += strlen(key);
    size_t n = strcspn(at, "\n");
    assert_true(n < out_len);
    memcpy(out, at, n);
    out[n] = '\0';
    free(status);
}

/* Check that PID runs as the user "nobody" with every capability set empty. */
static void assert_unprivileged(pid_t pid)
{
    char value[256];
    proc_status_field(pid, "Uid", value, sizeof value);
    assert_string_equal(value, "65534\t65534\t65534\t65534");
    static const char *const sets[] = {"CapPrm", "CapEff", "CapBnd", "CapAmb"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        proc_status_field(pid, sets[i], value, sizeof value);
        if (strcmp(value, "0000000000000000") != 0)
            fail_msg("%s of the capture process is %s, expected 0", sets[i], value);
    }
    proc_status_field(pid, "NoNewPrivs", value, sizeof value);
    assert_string_equal(value, "1");
}

/*
 * Start capture on vb inside the namespace with POLICY into DB, replay
 * every file of `replayed` on va, stop it, and return its stderr in a
 * new string. EXTRA is an extra option (or NULL).
 */
static char *capture_replay(const netns_fixture *fx, const char *policy, const char *db,
                            const char *tag, const char *extra)
{
    char err_file[4096], tag_err[128];
    snprintf(tag_err, sizeof tag_err, "%s.err", tag);
    e2e_path(err_file, fx->dir, tag_err);
    const char *argv[] = {"/usr/sbin/ip", "netns", "exec", fx->name, e2e_bin(), "capture",
                          "--policy", policy, "--db", db, "-i", "vb", "-Z", "nobody",
                          "--log", "stderr", "--log-level", "debug", extra, NULL};
    pid_t pid = e2e_spawn(argv, fx->dir, tag);
    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, fx->dir, tag, 10, &res);
        e2e_print_result("flowveil capture in the namespace did not start", &res);
        e2e_result_free(&res);
        fail();
    }
    assert_unprivileged(pid);

    for (size_t i = 0; i < REPLAYED_COUNT; i++) {
        char pcap[4096];
        e2e_path(pcap, e2e_corpus(), "pcaps");
        char file[4096];
        e2e_path(file, pcap, replayed[i]);
        const char *replay[] = {"/usr/sbin/ip", "netns", "exec", fx->name, "/usr/bin/tcpreplay",
                                "-q", "--topspeed", "-i", "va", file, NULL};
        assert_int_equal(run_quiet(replay, fx->dir, "tcpreplay"), 0);
    }
    /* Frames are in the ring once tcpreplay returns; the capture reads
     * a TPACKET_V3 block at the latest after its 100 ms timeout. */
    e2e_sleep_ms(1000);

    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, fx->dir, tag, 30, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture in the namespace", &res);
        e2e_result_free(&res);
        fail_msg("capture did not exit 0 after SIGINT");
    }
    assert_non_null(strstr(res.err, "dropped privileges to user nobody"));
    /* A drop would make the comparison meaningless; it must be reported. */
    assert_non_null(strstr(res.err, "vb: "));
    assert_non_null(strstr(res.err, "dropped kernel=0 interface=0"));
    char *log = strdup(res.err);
    e2e_result_free(&res);
    assert_non_null(log);
    return log;
}

/* Ingest every file of `replayed` with POLICY into DB. */
static void ingest_reference(const netns_fixture *fx, const char *policy, const char *db)
{
    const char *argv[4 + 2 + REPLAYED_COUNT + 1];
    char paths[REPLAYED_COUNT][4096];
    size_t n = 0;
    argv[n++] = e2e_bin();
    argv[n++] = "ingest";
    argv[n++] = "--policy";
    argv[n++] = policy;
    argv[n++] = "--db";
    argv[n++] = db;
    for (size_t i = 0; i < REPLAYED_COUNT; i++) {
        char dir[4096];
        e2e_path(dir, e2e_corpus(), "pcaps");
        e2e_path(paths[i], dir, replayed[i]);
        argv[n++] = paths[i];
    }
    argv[n] = NULL;
    assert_int_equal(run_quiet(argv, fx->dir, "ingest"), 0);
}

static void test_replay_matches_ingest(void **state)
{
    netns_fixture *fx = fixture_or_skip(state);
    char policy[4096], ref[4096], live[4096];
    e2e_path(policy, fx->dir, "policy-external.yaml");
    e2e_path(ref, fx->dir, "ref");
    e2e_path(live, fx->dir, "live");
    /* No internal zone: every address is stored as it is, so the two
     * stores, which have different pseudonymization keys, compare. */
    write_policy(policy, "[]");

    ingest_reference(fx, policy, ref);
    char *log = capture_replay(fx, policy, live, "capture-external", NULL);
    free(log);

    json_t *expected = canonical_records(fx->dir, ref);
    json_t *got = canonical_records(fx->dir, live);
    assert_same_multiset(expected, got);
    json_decref(expected);
    json_decref(got);

    /* The interface's libpcap counters reach the API and the metrics. */
    uint16_t port = 0;
    pid_t serve = e2e_serve_start(fx->dir, live, "serve", &port);
    int status = 0;
    size_t body_len = 0;
    char *counters = e2e_http_get(port, "/api/v1/counters", &status, &body_len);
    char *metrics = e2e_http_get(port, "/metrics", &status, &body_len);
    kill(serve, SIGTERM);
    e2e_result res;
    e2e_wait(serve, fx->dir, "serve", 20, &res);
    e2e_result_free(&res);
    assert_non_null(counters);
    assert_non_null(metrics);
    assert_non_null(strstr(counters, "\"iface_vb_received\""));
    assert_non_null(strstr(counters, "\"pcap_received\""));
    assert_non_null(
        strstr(metrics, "flowveil_capture_events_total{counter=\"iface_vb_received\"}"));
    assert_non_null(strstr(metrics, "flowveil_drops_total{source=\"kernel\"} 0"));
    free(counters);
    free(metrics);
}

/* Add every address of the records of DB in 10/8, 172.16/12, 192.168/16
 * or fc00::/7 to SET (a JSON object used as a set). */
static void collect_internal_addresses(const char *dir, const char *db, json_t *set)
{
    static const char *const fields[] = {"src", "dst", "client", "server"};
    for (size_t c = 0; c < sizeof compared_classes / sizeof compared_classes[0]; c++) {
        json_t *records = e2e_export(dir, db, compared_classes[c], 0);
        size_t i;
        json_t *r;
        json_array_foreach(records, i, r) {
            for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
                const char *a = json_string_value(json_object_get(r, fields[f]));
                if (a == NULL)
                    continue;
                bool internal = strncmp(a, "10.", 3) == 0 || strncmp(a, "192.168.", 8) == 0 ||
                                strncmp(a, "fc", 2) == 0 || strncmp(a, "fd", 2) == 0;
                if (strncmp(a, "172.", 4) == 0) {
                    int second = atoi(a + 4);
                    internal = second >= 16 && second <= 31;
                }
                if (internal)
                    json_object_set_new(set, a, json_true());
            }
        }
        json_decref(records);
    }
}

static void test_capture_log_has_no_internal_address(void **state)
{
    netns_fixture *fx = fixture_or_skip(state);
    char open_policy[4096], zoned_policy[4096], ref[4096], live[4096];
    e2e_path(open_policy, fx->dir, "policy-open.yaml");
    e2e_path(zoned_policy, fx->dir, "policy-zoned.yaml");
    e2e_path(ref, fx->dir, "ref-open");
    e2e_path(live, fx->dir, "live-zoned");
    write_policy(open_policy, "[]");
    write_policy(zoned_policy,
                 "[{name: office, networks: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
                 "fc00::/7]}]");

    /* The addresses to look for come from a store that keeps them. */
    ingest_reference(fx, open_policy, ref);
    json_t *internal = json_object();
    collect_internal_addresses(fx->dir, ref, internal);
    assert_true(json_object_size(internal) > 0);

    char *log = capture_replay(fx, zoned_policy, live, "capture-zoned", NULL);
    const char *address;
    json_t *unused;
    json_object_foreach(internal, address, unused) {
        if (strstr(log, address) != NULL)
            fail_msg("the capture log contains the internal address %s", address);
    }
    printf("%zu internal addresses, none in %zu bytes of debug-level log\n",
           json_object_size(internal), strlen(log));
    free(log);
    json_decref(internal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_matches_ingest, setup_netns, teardown_netns),
        cmocka_unit_test_setup_teardown(test_capture_log_has_no_internal_address, setup_netns,
                                        teardown_netns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
