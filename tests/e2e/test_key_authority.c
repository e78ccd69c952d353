/*
 * test_key_authority: one key authority, three sensors. Sensors A and B
 * ingest the two halves of a corpus capture, sensor W the whole capture,
 * all under the epoch the authority sealed to each. The union of the
 * records of A and B equals the records of W, pseudonyms included,
 * except what legitimately differs at the split point (docs/SCALING.md):
 * - a flow with packets on both sides of the split is two records, one
 *   per half. Its pair of endpoints (pseudonyms) must match W's record,
 *   and its packet and byte counts must add up to W's. Its times,
 *   direction, end reason, TCP flags, RTT and application may differ.
 * - DNS, TLS, HTTP and SSH records of such a flow are not compared.
 * Also checked: a sensor without an imported key refuses to ingest, and
 * an ingest long after the epoch's period keeps the authority's epoch.
 * A second test checks the authority's signature on sealed files, the
 * epoch limit, enrolment checks and `keys authority remove`.
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
#include <cmocka.h>

#include <jansson.h>
#include <pcap/pcap.h>

#include "e2e_util.h"
#include "testutil.h"

#define CAPTURE "ndpi-emotet.pcap"
#define EPOCH_START_S 1764547200ull     /* --start of the issued epoch */
#define INGEST_NOW_S (EPOCH_START_S + 3600)

/*
 * Write packets [0, SPLIT) of IN to FIRST and the rest to SECOND, with
 * libpcap, keeping the link type and snap length. Returns the number of
 * packets read.
 */
static int split_capture(const char *in, int split, const char *first, const char *second)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(in, errbuf);
    assert_non_null(p);
    pcap_dumper_t *d1 = pcap_dump_open(p, first);
    pcap_dumper_t *d2 = pcap_dump_open(p, second);
    assert_non_null(d1);
    assert_non_null(d2);
    struct pcap_pkthdr *hdr;
    const u_char *data;
    int n = 0;
    while (pcap_next_ex(p, &hdr, &data) == 1) {
        pcap_dump((u_char *)(n < split ? d1 : d2), hdr, data);
        n++;
    }
    pcap_dump_close(d1);
    pcap_dump_close(d2);
    pcap_close(p);
    return n;
}

static int count_packets(const char *in)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(in, errbuf);
    assert_non_null(p);
    struct pcap_pkthdr *hdr;
    const u_char *data;
    int n = 0;
    while (pcap_next_ex(p, &hdr, &data) == 1)
        n++;
    pcap_close(p);
    return n;
}

static void run_ok(const char *const argv[], const char *dir, const char *tag)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_result_free(&res);
}

/* Connection key of record R of CLS: "proto|a|aport|b|bport" with the two
 * endpoints in sorted order, so both halves' directions compare. */
static void conn_key(const json_t *r, char *out, size_t out_len)
{
    const char *names[2][2] = {{"src", "sport"}, {"dst", "dport"}};
    if (json_object_get(r, "client") != NULL) {
        names[0][0] = "client";
        names[0][1] = "client_port";
        names[1][0] = "server";
        names[1][1] = "server_port";
    }
    char ends[2][128];
    for (int i = 0; i < 2; i++) {
        const char *addr = json_string_value(json_object_get(r, names[i][0]));
        snprintf(ends[i], sizeof ends[i], "%s|%lld", addr != NULL ? addr : "-",
                 (long long)json_integer_value(json_object_get(r, names[i][1])));
    }
    bool swap = strcmp(ends[0], ends[1]) > 0;
    snprintf(out, out_len, "%lld|%s|%s",
             (long long)json_integer_value(json_object_get(r, "proto")), ends[swap ? 1 : 0],
             ends[swap ? 0 : 1]);
}

/* R as compact JSON with sorted keys and without the fields that belong
 * to the store, not to the traffic: "id" and "stored". */
static char *canonical(const json_t *r)
{
    json_t *copy = json_deep_copy(r);
    json_object_del(copy, "id");
    json_object_del(copy, "stored");
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    assert_non_null(text);
    return text;
}

static json_int_t total(const json_t *r, const char *fwd, const char *rev)
{
    return json_integer_value(json_object_get(r, fwd)) + json_integer_value(json_object_get(r, rev));
}

/* Keys of the flows of WHOLE that appear in both HALF_A and HALF_B. */
static json_t *split_connections(const json_t *half_a, const json_t *half_b)
{
    json_t *in_a = json_object();
    json_t *split = json_object();
    char key[512];
    for (size_t i = 0; i < json_array_size(half_a); i++) {
        conn_key(json_array_get(half_a, i), key, sizeof key);
        json_object_set_new(in_a, key, json_true());
    }
    for (size_t i = 0; i < json_array_size(half_b); i++) {
        conn_key(json_array_get(half_b, i), key, sizeof key);
        if (json_object_get(in_a, key) != NULL)
            json_object_set_new(split, key, json_true());
    }
    json_decref(in_a);
    return split;
}

/*
 * Compare the records of one class: every record of WHOLE whose
 * connection is not in SPLIT must appear, identical, exactly once in
 * HALF_A or HALF_B, and no other record may. Returns the number compared.
 */
static size_t compare_exact(const json_t *whole, const json_t *half_a, const json_t *half_b,
                            const json_t *split)
{
    json_t *pool = json_object();   /* canonical text -> count */
    char key[512];
    const json_t *halves[2] = {half_a, half_b};
    for (int h = 0; h < 2; h++) {
        for (size_t i = 0; i < json_array_size(halves[h]); i++) {
            const json_t *r = json_array_get(halves[h], i);
            conn_key(r, key, sizeof key);
            if (json_object_get(split, key) != NULL)
                continue;
            char *text = canonical(r);
            json_int_t n = json_integer_value(json_object_get(pool, text));
            json_object_set_new(pool, text, json_integer(n + 1));
            free(text);
        }
    }
    size_t compared = 0;
    for (size_t i = 0; i < json_array_size(whole); i++) {
        const json_t *r = json_array_get(whole, i);
        conn_key(r, key, sizeof key);
        if (json_object_get(split, key) != NULL)
            continue;
        char *text = canonical(r);
        json_int_t n = json_integer_value(json_object_get(pool, text));
        if (n <= 0)
            fail_msg("record of the whole capture missing from the halves: %s", text);
        json_object_set_new(pool, text, json_integer(n - 1));
        free(text);
        compared++;
    }
    const char *text;
    json_t *value;
    json_object_foreach(pool, text, value) {
        if (json_integer_value(value) != 0)
            fail_msg("record of a half missing from the whole capture: %s", text);
    }
    json_decref(pool);
    return compared;
}

/* For each split connection, the flows of both halves must name the same
 * endpoints as the whole and add up to its packets and bytes. */
static void compare_split_flows(const json_t *whole, const json_t *half_a, const json_t *half_b,
                                const json_t *split)
{
    const char *key;
    json_t *unused;
    json_object_foreach((json_t *)split, key, unused) {
        json_int_t whole_pkts = 0, whole_bytes = 0, half_pkts = 0, half_bytes = 0;
        char k[512];
        for (size_t i = 0; i < json_array_size(whole); i++) {
            const json_t *r = json_array_get(whole, i);
            conn_key(r, k, sizeof k);
            if (strcmp(k, key) == 0) {
                whole_pkts += total(r, "pkts_fwd", "pkts_rev");
                whole_bytes += total(r, "bytes_fwd", "bytes_rev");
            }
        }
        const json_t *halves[2] = {half_a, half_b};
        for (int h = 0; h < 2; h++) {
            for (size_t i = 0; i < json_array_size(halves[h]); i++) {
                const json_t *r = json_array_get(halves[h], i);
                conn_key(r, k, sizeof k);
                if (strcmp(k, key) == 0) {
                    half_pkts += total(r, "pkts_fwd", "pkts_rev");
                    half_bytes += total(r, "bytes_fwd", "bytes_rev");
                }
            }
        }
        /* The key contains the pseudonyms, so the whole must have this connection. */
        assert_true(whole_pkts > 0);
        assert_int_equal(half_pkts, whole_pkts);
        assert_int_equal(half_bytes, whole_bytes);
    }
}

static size_t count_pseudonyms(const json_t *records)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(records); i++) {
        const char *src = json_string_value(json_object_get(json_array_get(records, i), "src"));
        if (src != NULL && strncmp(src, "ip4-", 4) == 0)
            n++;
    }
    return n;
}

/* Number of different "src" values among RECORDS. */
static size_t count_distinct_sources(const json_t *records)
{
    json_t *seen = json_object();
    for (size_t i = 0; i < json_array_size(records); i++) {
        const char *src = json_string_value(json_object_get(json_array_get(records, i), "src"));
        if (src != NULL)
            json_object_set_new(seen, src, json_true());
    }
    size_t n = json_object_size(seen);
    json_decref(seen);
    return n;
}

static void test_split_sensors_match_whole(void **state)
{
    (void)state;
    char dir[4096], policy[4096], authority[4096], capture[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(policy, dir, "policy.yaml");
    e2e_path(authority, dir, "authority");
    snprintf(capture, sizeof capture, "%s/pcaps/%s", e2e_corpus(), CAPTURE);
    e2e_write_policy(policy, "[{name: office, networks: [\"10.0.0.0/8\"]}]", "3650d");

    char half_a[4096], half_b[4096];
    e2e_path(half_a, dir, "first.pcap");
    e2e_path(half_b, dir, "second.pcap");
    int packets = count_packets(capture);
    assert_int_equal(split_capture(capture, packets / 2, half_a, half_b), packets);

    const char *init_argv[] = {e2e_bin(), "keys", "authority", "init", "--dir", authority, NULL};
    run_ok(init_argv, dir, "init");

    static const char *const names[] = {"a", "b", "w"};
    char dbs[3][4096], authority_pub[4096];
    e2e_path(authority_pub, authority, "authority.sign.pub");
    for (int i = 0; i < 3; i++) {
        char pub[4096];
        e2e_path(dbs[i], dir, names[i]);
        e2e_path(pub, dbs[i], "sensor.box.pub");
        /* Sensor a pins the authority key at keygen, b and w at import. */
        const char *keygen_argv[] = {e2e_bin(), "keys", "sensor-keygen", "--db", dbs[i],
                                     i == 0 ? "--authority-key" : NULL, authority_pub, NULL};
        run_ok(keygen_argv, dir, "keygen");
        const char *enroll_argv[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                                     "--sensor", names[i], "--public-key", pub, NULL};
        run_ok(enroll_argv, dir, "enroll");
    }

    /* Without a key a sensor refuses to ingest: it never makes its own. */
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", (unsigned long long)INGEST_NOW_S);
    const char *early_argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", dbs[0],
                                "--now", now_text, half_a, NULL};
    e2e_result res;
    e2e_run(early_argv, dir, "early", 60, &res);
    assert_true(res.exited && res.status == 1);
    assert_non_null(strstr(res.err, "flowveil keys import"));
    e2e_result_free(&res);

    char start_text[32];
    snprintf(start_text, sizeof start_text, "%llu", (unsigned long long)EPOCH_START_S);
    const char *issue_argv[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority,
                                "--start", start_text, NULL};
    run_ok(issue_argv, dir, "issue");
    for (int i = 0; i < 3; i++) {
        char sealed[4096], outbox[4096], sensor_outbox[4096];
        e2e_path(outbox, authority, "outbox");
        e2e_path(sensor_outbox, outbox, names[i]);
        e2e_path(sealed, sensor_outbox, "epoch-1.sealed");
        const char *import_argv[] = {e2e_bin(), "keys", "import", "--db", dbs[i],
                                     "--authority-key", authority_pub, sealed, NULL};
        run_ok(import_argv, dir, "import");
    }

    const char *inputs[3] = {half_a, half_b, capture};
    for (int i = 0; i < 3; i++) {
        const char *ingest_argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", dbs[i],
                                     "--now", now_text, inputs[i], NULL};
        run_ok(ingest_argv, dir, "ingest");
    }

    static const char *const classes[] = {"flows", "dns", "tls", "http", "ssh"};
    size_t compared = 0;
    json_t *split = NULL;
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        json_t *a = e2e_export(dir, dbs[0], classes[c], INGEST_NOW_S);
        json_t *b = e2e_export(dir, dbs[1], classes[c], INGEST_NOW_S);
        json_t *w = e2e_export(dir, dbs[2], classes[c], INGEST_NOW_S);
        if (c == 0) {
            split = split_connections(a, b);
            compare_split_flows(w, a, b, split);
            /* Internal hosts are pseudonyms, so equal records mean equal keys. */
            assert_true(count_pseudonyms(w) > 0);
            printf("%zu connections cross the split point\n", json_object_size(split));
        }
        compared += compare_exact(w, a, b, split);
        json_decref(a);
        json_decref(b);
        json_decref(w);
    }
    printf("%zu records compared exactly\n", compared);
    assert_true(compared >= 4);
    json_decref(split);

    /* Ten days later, past the one-day period: the sensor keeps epoch 1
     * and computes the same pseudonyms instead of rotating. */
    json_t *before = e2e_export(dir, dbs[2], "flows", INGEST_NOW_S);
    size_t distinct_before = count_distinct_sources(before);
    char late_text[32];
    snprintf(late_text, sizeof late_text, "%llu", (unsigned long long)EPOCH_START_S + 864000u);
    const char *late_argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", dbs[2],
                               "--now", late_text, capture, NULL};
    run_ok(late_argv, dir, "late");
    json_t *after = e2e_export(dir, dbs[2], "flows", EPOCH_START_S + 864000u);
    assert_int_equal(json_array_size(after), 2 * json_array_size(before));
    assert_int_equal(count_distinct_sources(after), distinct_before);
    json_decref(before);
    json_decref(after);

    const char *status_argv[] = {e2e_bin(), "keys", "status", "--db", dbs[2], "--policy", policy,
                                 NULL};
    e2e_run(status_argv, dir, "status", 30, &res);
    assert_true(res.exited && res.status == 0);
    assert_non_null(strstr(res.out, "epoch:         1\n"));
    e2e_result_free(&res);

    tu_remove_tree(dir);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Run ARGV and expect exit status STATUS and NEEDLE on standard error. */
static void run_fails(const char *const argv[], const char *dir, const char *tag, int status,
                      const char *needle)
{
    e2e_result res;
    e2e_run(argv, dir, tag, 60, &res);
    if (!res.exited || res.status != status || strstr(res.err, needle) == NULL ||
        e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(tag, &res);
        e2e_result_free(&res);
        fail_msg("%s: expected exit %d and \"%s\" on stderr", tag, status, needle);
    }
    e2e_result_free(&res);
}

static void test_authority_signature_and_enrolment(void **state)
{
    (void)state;
    char dir[4096], authority[4096], rogue[4096], db[4096], pub[4096], authority_pub[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(authority, dir, "authority");
    e2e_path(rogue, dir, "rogue");
    e2e_path(db, dir, "s");
    e2e_path(pub, db, "sensor.box.pub");
    e2e_path(authority_pub, authority, "authority.sign.pub");

    const char *init_argv[] = {e2e_bin(), "keys", "authority", "init", "--dir", authority, NULL};
    run_ok(init_argv, dir, "init");
    const char *rogue_argv[] = {e2e_bin(), "keys", "authority", "init", "--dir", rogue, NULL};
    run_ok(rogue_argv, dir, "rogue-init");
    const char *keygen_argv[] = {e2e_bin(), "keys", "sensor-keygen", "--db", db,
                                 "--authority-key", authority_pub, NULL};
    run_ok(keygen_argv, dir, "keygen");

    /* Anyone with the sensor's public key can run an authority of their
     * own and seal an epoch to it: the sensor rejects that file. */
    const char *rogue_enroll[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", rogue,
                                  "--sensor", "paris", "--public-key", pub, NULL};
    run_ok(rogue_enroll, dir, "rogue-enroll");
    const char *rogue_issue[] = {e2e_bin(), "keys", "authority", "issue", "--dir", rogue,
                                 "--epoch", "7", NULL};
    run_ok(rogue_issue, dir, "rogue-issue");
    char forged[4200];
    snprintf(forged, sizeof forged, "%s/outbox/paris/epoch-7.sealed", rogue);
    const char *forged_import[] = {e2e_bin(), "keys", "import", "--db", db, forged, NULL};
    run_fails(forged_import, dir, "forged-import", 1, "not signed by the pinned key authority");
    char key_file[4096];
    e2e_path(key_file, db, "pseudonym.key");
    assert_false(file_exists(key_file));

    /* The rogue key cannot replace the pinned one either. */
    char rogue_pub[4096];
    e2e_path(rogue_pub, rogue, "authority.sign.pub");
    const char *repin[] = {e2e_bin(), "keys", "import", "--db", db, "--authority-key", rogue_pub,
                           forged, NULL};
    run_fails(repin, dir, "repin", 1, "already trusts another authority key");

    /* Enrolment: the real key once, no copy under a second name, no
     * all-zero key. */
    const char *enroll[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                            "--sensor", "paris", "--public-key", pub, NULL};
    run_ok(enroll, dir, "enroll");
    const char *enroll_twice[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                                  "--sensor", "rome", "--public-key", pub, NULL};
    run_fails(enroll_twice, dir, "enroll-twice", 1, "enrolled already as sensor paris");
    char zero_pub[4096];
    e2e_path(zero_pub, dir, "zero.pub");
    /* "flowveil-sensor-box-v1" and 64 zero digits. */
    const char zero_key[] = "flowveil-sensor-box-v1 "
                            "0000000000000000000000000000000000000000000000000000000000000000\n";
    tu_write_file(zero_pub, zero_key, strlen(zero_key));
    const char *enroll_zero[] = {e2e_bin(), "keys", "authority", "enroll", "--dir", authority,
                                 "--sensor", "zero", "--public-key", zero_pub, NULL};
    run_fails(enroll_zero, dir, "enroll-zero", 1, "low order");

    /* Epochs stop at 2^62-1, so no issue can end the schedule. */
    const char *issue_max[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority,
                               "--epoch", "18446744073709551615", NULL};
    run_fails(issue_max, dir, "issue-max", 2, "2^62-1");
    const char *issue_big[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority,
                               "--epoch", "4611686018427387904", NULL};
    run_fails(issue_big, dir, "issue-big", 2, "2^62-1");

    /* The real authority's file imports. */
    const char *issue[] = {e2e_bin(), "keys", "authority", "issue", "--dir", authority, NULL};
    run_ok(issue, dir, "issue");
    char sealed[4200];
    snprintf(sealed, sizeof sealed, "%s/outbox/paris/epoch-1.sealed", authority);
    const char *import[] = {e2e_bin(), "keys", "import", "--db", db, sealed, NULL};
    run_ok(import, dir, "import");
    assert_true(file_exists(key_file));

    /* remove un-enrolls the sensor and deletes its sealed files. */
    const char *remove[] = {e2e_bin(), "keys", "authority", "remove", "--dir", authority,
                            "--sensor", "paris", NULL};
    run_ok(remove, dir, "remove");
    assert_false(file_exists(sealed));
    run_fails(issue, dir, "issue-after-remove", 1, "no sensor is enrolled");
    char log_path[4096];
    e2e_path(log_path, authority, "authority.log");
    size_t log_len = 0;
    char *log = tu_read_file(log_path, &log_len);
    assert_non_null(log);
    assert_non_null(strstr(log, " remove sensor=paris sealed_files=1 "));
    free(log);

    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_sensors_match_whole),
        cmocka_unit_test(test_authority_signature_and_enrolment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
