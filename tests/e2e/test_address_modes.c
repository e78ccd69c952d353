/*
 * test_address_modes: ingest the demo capture three times under one fixed
 * epoch key, with zone office (10.0.0.0/8) set to keep, prefix-preserving
 * and truncate, and compare the exported flows record by record. The kept
 * run supplies the original addresses the other two must hide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <sodium.h>

#include "e2e_util.h"
#include "testutil.h"

#define DEMO_NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */
#define MAX_HOSTS 512

static void store_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Write DB/pseudonym.key for epoch 1 starting at DEMO_NOW_S with the key
 * bytes 0x00..0x1f, in the layout documented at the top of anonymize.c,
 * so every run pseudonymizes alike. */
static void write_key_file(const char *db)
{
    uint8_t file[64];
    memcpy(file, "FVKEY001", 8);
    store_be64(file + 8, 1);
    store_be64(file + 16, DEMO_NOW_S);
    for (size_t i = 0; i < 32; i++)
        file[24 + i] = (uint8_t)i;
    uint8_t digest[32];
    assert_int_equal(crypto_generichash(digest, sizeof digest, file, 56, NULL, 0), 0);
    memcpy(file + 56, digest, 8);

    char path[4096];
    e2e_path(path, db, "pseudonym.key");
    tu_write_file(path, file, sizeof file);
}

/* Ingest DEMO with zone office in address mode ZONE_EXTRA (YAML keys after
 * networks) into DIR/NAME and return the exported flows. */
static json_t *ingest_flows(const char *dir, const char *demo, const char *name,
                            const char *zone_extra)
{
    char db[4096], policy[4096], policy_name[256], zones[512];
    e2e_path(db, dir, name);
    assert_int_equal(mkdir(db, 0700), 0);
    write_key_file(db);

    snprintf(policy_name, sizeof policy_name, "%s.yaml", name);
    e2e_path(policy, dir, policy_name);
    snprintf(zones, sizeof zones, "[{name: office, networks: [\"10.0.0.0/8\"], %s}]", zone_extra);
    e2e_write_policy(policy, zones, "30d");

    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", DEMO_NOW_S);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                          "--now", now_text, demo, NULL};
    e2e_result res;
    e2e_run(argv, dir, name, 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest of the demo capture", &res);
        e2e_result_free(&res);
        fail_msg("ingest with %s failed", zone_extra);
    }
    e2e_result_free(&res);
    return e2e_export(dir, db, "flows", DEMO_NOW_S);
}

/* Text that identifies one flow across runs: its times, ports, protocol
 * and byte counts, none of which depend on the address mode. */
static void flow_identity(json_t *flow, char *out, size_t out_len)
{
    snprintf(out, out_len, "%s|%s|%lld|%lld|%lld|%lld|%lld",
             json_string_value(json_object_get(flow, "first")),
             json_string_value(json_object_get(flow, "last")),
             (long long)json_integer_value(json_object_get(flow, "sport")),
             (long long)json_integer_value(json_object_get(flow, "dport")),
             (long long)json_integer_value(json_object_get(flow, "proto")),
             (long long)json_integer_value(json_object_get(flow, "bytes_fwd")),
             (long long)json_integer_value(json_object_get(flow, "bytes_rev")));
}

static json_t *find_flow(json_t *flows, const char *identity)
{
    size_t i;
    json_t *flow;
    json_array_foreach(flows, i, flow) {
        char id[512];
        flow_identity(flow, id, sizeof id);
        if (strcmp(id, identity) == 0)
            return flow;
    }
    return NULL;
}

/* An original office address and what the other run stored for it. */
typedef struct host_pair {
    uint32_t original;
    char stored[64];
} host_pair;

typedef struct host_map {
    host_pair items[MAX_HOSTS];
    size_t count;
} host_map;

static uint32_t parse_ipv4(const char *text)
{
    struct in_addr a;
    if (inet_pton(AF_INET, text, &a) != 1)
        fail_msg("%s is not a valid IPv4 address", text);
    return ntohl(a.s_addr);
}

/* Record that ORIGINAL was stored as STORED, and fail if it was stored
 * differently before: within an epoch a mode maps an address one way. */
static void map_add(host_map *m, const char *original, const char *stored)
{
    uint32_t o = parse_ipv4(original);
    for (size_t i = 0; i < m->count; i++) {
        if (m->items[i].original != o)
            continue;
        if (strcmp(m->items[i].stored, stored) != 0)
            fail_msg("%s was stored as %s and as %s", original, m->items[i].stored, stored);
        return;
    }
    assert_true(m->count < MAX_HOSTS);
    m->items[m->count].original = o;
    snprintf(m->items[m->count].stored, sizeof m->items[m->count].stored, "%s", stored);
    m->count++;
}

/* Pair every office endpoint of the kept run with the same endpoint of
 * the flows in OTHER. */
static void build_map(json_t *kept, json_t *other, host_map *m)
{
    size_t i;
    json_t *flow;
    memset(m, 0, sizeof *m);
    assert_int_equal(json_array_size(kept), json_array_size(other));
    json_array_foreach(kept, i, flow) {
        char id[512];
        flow_identity(flow, id, sizeof id);
        json_t *twin = find_flow(other, id);
        if (twin == NULL)
            fail_msg("flow %s of the kept run is missing from the other run", id);
        static const char *const sides[] = {"src", "dst"};
        for (size_t s = 0; s < 2; s++) {
            char zone_key[16];
            snprintf(zone_key, sizeof zone_key, "%s_zone", sides[s]);
            const char *zone = json_string_value(json_object_get(flow, zone_key));
            const char *twin_zone = json_string_value(json_object_get(twin, zone_key));
            assert_non_null(zone);
            assert_non_null(twin_zone);
            assert_string_equal(zone, twin_zone);
            if (strcmp(zone, "office") != 0)
                continue;
            const char *original = json_string_value(json_object_get(flow, sides[s]));
            const char *stored = json_string_value(json_object_get(twin, sides[s]));
            assert_non_null(original);
            assert_non_null(stored);
            map_add(m, original, stored);
        }
    }
}

static unsigned common_prefix_bits(uint32_t a, uint32_t b)
{
    unsigned n = 0;
    while (n < 32 && ((a ^ b) & (0x80000000u >> n)) == 0)
        n++;
    return n;
}

typedef struct fixture {
    char dir[4096];
    json_t *kept;
    char demo[4096];
} fixture;

static int setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_make_temp_dir(f->dir, sizeof f->dir);

    e2e_path(f->demo, f->dir, "demo.pcap");
    const char *gen[] = {e2e_demogen(), "--output", f->demo, NULL};
    e2e_result res;
    e2e_run(gen, f->dir, "demogen", 120, &res);
    if (!res.exited || res.status != 0) {
        e2e_print_result("demo generator", &res);
        e2e_result_free(&res);
        free(f);
        return -1;
    }
    e2e_result_free(&res);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->kept);
    tu_remove_tree(f->dir);
    free(f);
    return 0;
}

static void test_keep_mode_stores_original_addresses(void **state)
{
    fixture *f = *state;
    f->kept = ingest_flows(f->dir, f->demo, "keep", "addresses: keep");
    host_map m;
    build_map(f->kept, f->kept, &m);
    /* The demo has hosts in 10.1.0.0/16 and 10.2.0.0/16. */
    assert_true(m.count >= 3);
    for (size_t i = 0; i < m.count; i++)
        assert_int_equal(m.items[i].original >> 24, 10);
}

static void test_prefix_preserving_keeps_subnet_structure(void **state)
{
    fixture *f = *state;
    if (f->kept == NULL)
        f->kept = ingest_flows(f->dir, f->demo, "keep", "addresses: keep");
    json_t *pp = ingest_flows(f->dir, f->demo, "pp", "addresses: prefix-preserving");
    host_map m;
    build_map(f->kept, pp, &m);
    assert_true(m.count >= 3);

    size_t same16 = 0;
    for (size_t i = 0; i < m.count; i++) {
        uint32_t p = parse_ipv4(m.items[i].stored);
        /* With this key 10/8 maps elsewhere, so no stored address is an
         * original one. */
        assert_int_not_equal(p >> 24, 10);
        for (size_t j = 0; j < m.count; j++)
            assert_int_not_equal(p, m.items[j].original);

        for (size_t j = i + 1; j < m.count; j++) {
            uint32_t q = parse_ipv4(m.items[j].stored);
            unsigned before = common_prefix_bits(m.items[i].original, m.items[j].original);
            unsigned after = common_prefix_bits(p, q);
            if (before != after)
                fail_msg("two originals sharing %u bits were stored as %s and %s, sharing %u",
                         before, m.items[i].stored, m.items[j].stored, after);
            same16 += before >= 16;
        }
    }
    /* The demo has several hosts in one /16, so the check above covered
     * pairs that must stay in one /16. */
    assert_true(same16 > 0);
    json_decref(pp);
}

static void test_truncate_stores_network_only(void **state)
{
    fixture *f = *state;
    if (f->kept == NULL)
        f->kept = ingest_flows(f->dir, f->demo, "keep", "addresses: keep");
    json_t *tr = ingest_flows(f->dir, f->demo, "trunc", "addresses: truncate, truncate_prefix: 24");
    host_map m;
    build_map(f->kept, tr, &m);
    assert_true(m.count >= 3);

    for (size_t i = 0; i < m.count; i++) {
        uint32_t o = m.items[i].original;
        char want[64];
        snprintf(want, sizeof want, "%u.%u.%u.0/24", o >> 24, (o >> 16) & 0xffu,
                 (o >> 8) & 0xffu);
        assert_string_equal(m.items[i].stored, want);
    }
    json_decref(tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_mode_stores_original_addresses),
        cmocka_unit_test(test_prefix_preserving_keeps_subnet_structure),
        cmocka_unit_test(test_truncate_stores_network_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
