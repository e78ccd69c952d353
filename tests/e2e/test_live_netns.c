/*
 * test_live_netns: corpus captures replayed with tcpreplay over a veth
 * pair inside a network namespace that the test creates, while
 * `flowveil capture -Z nobody` listens on the other end. The stored
 * records must equal those of `flowveil ingest` of the same files, the
 * capturing process must run without privileges, and its log must not
 * contain any internal address of the input.
 *
 * The same namespace also serves three more checks. Capture without
 * capabilities exits with advice that names CAP_NET_RAW only. A binary
 * with the file capability cap_net_raw alone captures promiscuously with
 * two workers. Under --chroot, a SIGHUP reload that names an indicator
 * list or a time zone missing inside the root says where to copy it and
 * loads nothing.
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

/* ---- capabilities: what capture needs, and what its error advises ---- */

/* Start ARGV (capture inside the namespace) and wait until it announces
 * that it captures; fail with its stderr otherwise. */
static pid_t start_capture(const netns_fixture *fx, const char *const argv[], const char *tag)
{
    char err_file[4096], tag_err[128];
    snprintf(tag_err, sizeof tag_err, "%s.err", tag);
    e2e_path(err_file, fx->dir, tag_err);
    pid_t pid = e2e_spawn(argv, fx->dir, tag);
    if (!e2e_wait_for_text(err_file, "capturing on", 20000)) {
        kill(pid, SIGKILL);
        e2e_result res;
        e2e_wait(pid, fx->dir, tag, 10, &res);
        e2e_print_result("flowveil capture did not start", &res);
        e2e_result_free(&res);
        fail();
    }
    return pid;
}

/* Stop PID with SIGINT, require exit status 0 and return its stderr. */
static char *stop_capture(const netns_fixture *fx, pid_t pid, const char *tag)
{
    kill(pid, SIGINT);
    e2e_result res;
    e2e_wait(pid, fx->dir, tag, 30, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil capture", &res);
        e2e_result_free(&res);
        fail_msg("capture did not exit 0 after SIGINT");
    }
    char *log = strdup(res.err);
    e2e_result_free(&res);
    assert_non_null(log);
    return log;
}

/* Make DIR (the fixture's temporary directory) and a store directory
 * below it usable by the user "nobody"; write the store's path to DB. */
static void store_for_nobody(const netns_fixture *fx, const char *name, char db[4096])
{
    assert_int_equal(chmod(fx->dir, 0755), 0);
    e2e_path(db, fx->dir, name);
    assert_int_equal(mkdir(db, 0770), 0);
    const char *chown_argv[] = {"/usr/bin/chown", "nobody:nogroup", db, NULL};
    assert_int_equal(run_quiet(chown_argv, fx->dir, "chown"), 0);
}

/* The promiscuity count of vb in the namespace, from `ip -d link`. */
static long vb_promiscuity(const netns_fixture *fx)
{
    const char *argv[] = {"/usr/sbin/ip", "-n", fx->name, "-d", "link", "show", "vb", NULL};
    e2e_result res;
    e2e_run(argv, fx->dir, "ip-link", 30, &res);
    assert_true(res.exited && res.status == 0);
    const char *at = strstr(res.out, "promiscuity ");
    assert_non_null(at);
    long count = strtol(at + strlen("promiscuity "), NULL, 10);
    e2e_result_free(&res);
    return count;
}

/* Without any capability, capture exits 1 and its message names
 * CAP_NET_RAW as the one capability to grant, and nothing more. */
static void test_capture_error_advises_cap_net_raw(void **state)
{
    netns_fixture *fx = fixture_or_skip(state);
    if (!have_program("/usr/bin/setpriv")) {
        printf("skipped: needs /usr/bin/setpriv\n");
        skip();
    }
    char policy[4096], db[4096];
    store_for_nobody(fx, "db-nocap", db);
    e2e_path(policy, fx->dir, "policy-nocap.yaml");
    write_policy(policy, "[]");
    assert_int_equal(chmod(policy, 0644), 0);

    const char *argv[] = {"/usr/sbin/ip", "netns", "exec", fx->name, "/usr/bin/setpriv",
                          "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                          "--inh-caps=-all", "--bounding-set=-all", e2e_bin(), "capture",
                          "--policy", policy, "--db", db, "-i", "vb", "--log", "stderr", NULL};
    e2e_result res;
    e2e_run(argv, fx->dir, "capture-nocap", 30, &res);
    if (!res.exited || res.status != 1 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("capture without capabilities", &res);
        e2e_result_free(&res);
        fail_msg("expected exit status 1");
    }
    assert_non_null(strstr(res.err, "vb: permission denied opening the interface"));
    assert_non_null(strstr(res.err, "CAP_NET_RAW, which is the only capability capture needs"));
    assert_non_null(strstr(res.err, "setcap cap_net_raw=eip"));
    assert_non_null(strstr(res.err, "AmbientCapabilities=CAP_NET_RAW"));
    assert_null(strstr(res.err, "CAP_NET_ADMIN"));
    assert_null(strstr(res.err, "cap_net_admin"));
    e2e_result_free(&res);
}

/* The advice holds: a copy of the binary with the file capability
 * cap_net_raw alone, run by "nobody", opens the interface with two
 * workers (a PACKET_FANOUT group), sets it promiscuous, receives the
 * replayed frames and ends with every capability cleared. */
static void test_capture_cap_net_raw_alone_suffices(void **state)
{
    netns_fixture *fx = fixture_or_skip(state);
    if (!have_program("/usr/sbin/setcap") || !have_program("/usr/bin/setpriv")) {
        printf("skipped: needs /usr/sbin/setcap and /usr/bin/setpriv\n");
        skip();
    }
    char policy[4096], db[4096], bin[4096];
    store_for_nobody(fx, "db-rawcap", db);
    e2e_path(policy, fx->dir, "policy-rawcap.yaml");
    write_policy(policy, "[]");
    assert_int_equal(chmod(policy, 0644), 0);
    e2e_path(bin, fx->dir, "flowveil");
    const char *copy[] = {"/usr/bin/cp", e2e_bin(), bin, NULL};
    assert_int_equal(run_quiet(copy, fx->dir, "cp"), 0);
    const char *setcap[] = {"/usr/sbin/setcap", "cap_net_raw=eip", bin, NULL};
    assert_int_equal(run_quiet(setcap, fx->dir, "setcap"), 0);

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    const char *workers = online >= 2 ? "2" : "1";
    const char *argv[] = {"/usr/sbin/ip", "netns", "exec", fx->name, "/usr/bin/setpriv",
                          "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                          "--inh-caps=-all", bin, "capture", "--policy", policy, "--db", db,
                          "-i", "vb", "--workers", workers, "--log", "stderr", NULL};
    long before = vb_promiscuity(fx);
    pid_t pid = start_capture(fx, argv, "capture-rawcap");
    assert_true(vb_promiscuity(fx) > before);
    char value[256];
    static const char *const sets[] = {"CapPrm", "CapEff", "CapAmb"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        proc_status_field(pid, sets[i], value, sizeof value);
        if (strcmp(value, "0000000000000000") != 0)
            fail_msg("%s of the capture process is %s, expected 0", sets[i], value);
    }

    char pcap_dir[4096], file[4096];
    e2e_path(pcap_dir, e2e_corpus(), "pcaps");
    e2e_path(file, pcap_dir, "zeek-single-conn.pcap");
    const char *replay[] = {"/usr/sbin/ip", "netns", "exec", fx->name, "/usr/bin/tcpreplay",
                            "-q", "--topspeed", "-i", "va", file, NULL};
    assert_int_equal(run_quiet(replay, fx->dir, "tcpreplay"), 0);
    e2e_sleep_ms(1000);

    char *log = stop_capture(fx, pid, "capture-rawcap");
    const char *received = strstr(log, "vb: ");
    assert_non_null(received);
    unsigned long long packets = strtoull(received + strlen("vb: "), NULL, 10);
    if (packets == 0)
        fail_msg("capture with cap_net_raw alone received no packet:\n%s", log);
    assert_null(strstr(log, "permission denied"));
    free(log);
}

/* ---- --chroot: what SIGHUP reads inside the new root ------------------ */

/* Write the policy at PATH: no zones, and EXTRA appended (a windows or
 * detect section, or ""). */
static void write_policy_with(const char *path, const char *extra)
{
    char text[2048];
    int n = snprintf(text, sizeof text, "version: 1\nzones: []\nretention:\n  flows: 30d\n%s",
                     extra);
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(path, text, (size_t)n);
    assert_int_equal(chmod(path, 0644), 0);
}

/* Send SIGHUP to PID and wait for TEXT in ERR_FILE; fail with the log. */
static void hup_and_expect(pid_t pid, const char *err_file, const char *text)
{
    kill(pid, SIGHUP);
    if (!e2e_wait_for_text(err_file, text, 10000)) {
        char *log = tu_read_file(err_file, NULL);
        fail_msg("after SIGHUP the log lacks '%s':\n%s", text, log != NULL ? log : "");
    }
}

/* Count the occurrences of TEXT in the file PATH. */
static size_t count_in_file(const char *path, const char *text)
{
    char *log = tu_read_file(path, NULL);
    assert_non_null(log);
    size_t count = 0;
    for (const char *at = strstr(log, text); at != NULL; at = strstr(at + 1, text))
        count++;
    free(log);
    return count;
}

/* Require TEXT to occur EXPECTED times in the file PATH; fail with the
 * file's content otherwise. */
static void expect_count_in_file(const char *path, const char *text, size_t expected)
{
    char *log = tu_read_file(path, NULL);
    assert_non_null(log);
    size_t count = 0;
    for (const char *at = strstr(log, text); at != NULL; at = strstr(at + 1, text))
        count++;
    /* cmocka cuts long messages, so show the end of the log. */
    size_t len = strlen(log);
    const char *tail = len > 1200 ? log + len - 1200 : log;
    if (count != expected)
        fail_msg("'%s' occurs %zu times, expected %zu, in:\n...%s", text, count, expected, tail);
    free(log);
}

/*
 * capture --chroot -Z nobody with the policy inside the store directory.
 * A reload that names an indicator list or a time zone missing inside
 * the root is rejected with the host path to copy it to, and loads
 * nothing; once the file is there, the next SIGHUP loads it.
 */
static void test_chroot_reload_names_missing_files(void **state)
{
    netns_fixture *fx = fixture_or_skip(state);
    char db[4096], real_db[4096], policy[4096], err_file[4096];
    store_for_nobody(fx, "db-chroot", db);
    assert_non_null(realpath(db, real_db));

    /* Create the store first, so the policy file is not the first entry
     * of the store directory. */
    char outside[4096], pcap_dir[4096], pcap[4096];
    e2e_path(outside, fx->dir, "policy-outside.yaml");
    write_policy_with(outside, "");
    e2e_path(pcap_dir, e2e_corpus(), "pcaps");
    e2e_path(pcap, pcap_dir, "zeek-5-pings.pcap");
    const char *create[] = {e2e_bin(), "ingest", "--policy", outside, "--db", db, pcap, NULL};
    assert_int_equal(run_quiet(create, fx->dir, "ingest-chroot"), 0);

    e2e_path(policy, db, "policy.yaml");
    write_policy_with(policy, "");
    e2e_path(err_file, fx->dir, "capture-chroot.err");

    /* LeakSanitizer reads /proc at exit, which the chroot hides. */
    char *saved = getenv("ASAN_OPTIONS") != NULL ? strdup(getenv("ASAN_OPTIONS")) : NULL;
    char asan[1024];
    snprintf(asan, sizeof asan, "%s%sdetect_leaks=0", saved != NULL ? saved : "",
             saved != NULL ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    const char *argv[] = {"/usr/sbin/ip", "netns", "exec", fx->name, e2e_bin(), "capture",
                          "--policy", policy, "--db", db, "-i", "vb", "--chroot", "-Z",
                          "nobody", "--log", "stderr", NULL};
    pid_t pid = start_capture(fx, argv, "capture-chroot");
    if (saved != NULL)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);

    /* An indicator list at an absolute path that exists only outside. */
    write_policy_with(policy, "detect:\n  indicators:\n    files: [{path: /lists/bad.txt, "
                              "format: list}]\n");
    char expected[8448];
    snprintf(expected, sizeof expected, "so the list is read from %s/lists/bad.txt: copy it "
                                        "there with 'cp --parents /lists/bad.txt %s'",
             real_db, real_db);
    hup_and_expect(pid, err_file, expected);
    expect_count_in_file(err_file, "policy reloaded from", 0);

    /* Copied into the root, the list loads with the policy. */
    char lists[4096], list[4096];
    e2e_path(lists, db, "lists");
    assert_int_equal(mkdir(lists, 0755), 0);
    e2e_path(list, lists, "bad.txt");
    tu_write_file(list, "203.0.113.9\n", strlen("203.0.113.9\n"));
    assert_int_equal(chmod(list, 0644), 0);
    /* The lists are reloaded before the policy's closing notice. */
    hup_and_expect(pid, err_file, "policy reloaded from /policy.yaml");
    expect_count_in_file(err_file, "indicator lists reloaded: 1 entries", 1);

    /* A time window in a zone whose file is missing inside the root. */
    write_policy_with(policy, "windows:\n  - {name: office, time_zone: Europe/Berlin, days: "
                              "[mon], hours: \"07:00-19:00\"}\n");
    snprintf(expected, sizeof expected, "so time zones are read from %s/usr/share/zoneinfo/: "
                                        "copy this one there with 'cp -a --parents "
                                        "/usr/share/zoneinfo/Europe/Berlin %s'",
             real_db, real_db);
    hup_and_expect(pid, err_file, expected);
    expect_count_in_file(err_file, "policy reloaded from /policy.yaml", 1);

    /* With the zone's TZif file inside the root, the reload succeeds. */
    size_t tzif_len = 0;
    char *tzif = tu_read_file("/usr/share/zoneinfo/Europe/Berlin", &tzif_len);
    if (tzif != NULL) {
        static const char *const parts[] = {"usr", "share", "zoneinfo", "Europe"};
        char zone_dir[4096], next[4096];
        snprintf(zone_dir, sizeof zone_dir, "%s", db);
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            e2e_path(next, zone_dir, parts[i]);
            assert_int_equal(mkdir(next, 0755), 0);
            snprintf(zone_dir, sizeof zone_dir, "%s", next);
        }
        e2e_path(next, zone_dir, "Berlin");
        tu_write_file(next, tzif, tzif_len);
        assert_int_equal(chmod(next, 0644), 0);
        free(tzif);
        kill(pid, SIGHUP);
        /* The reload runs at the next once-a-second tick. */
        for (int i = 0; i < 100 && count_in_file(err_file, "policy reloaded from /policy.yaml") < 2;
             i++)
            e2e_sleep_ms(100);
        expect_count_in_file(err_file, "policy reloaded from /policy.yaml", 2);
    }

    char *log = stop_capture(fx, pid, "capture-chroot");
    assert_non_null(strstr(log, "changed root to the store directory"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_matches_ingest, setup_netns, teardown_netns),
        cmocka_unit_test_setup_teardown(test_capture_log_has_no_internal_address, setup_netns,
                                        teardown_netns),
        cmocka_unit_test_setup_teardown(test_capture_error_advises_cap_net_raw, setup_netns,
                                        teardown_netns),
        cmocka_unit_test_setup_teardown(test_capture_cap_net_raw_alone_suffices, setup_netns,
                                        teardown_netns),
        cmocka_unit_test_setup_teardown(test_chroot_reload_names_missing_files, setup_netns,
                                        teardown_netns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
