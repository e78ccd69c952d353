/*
 * test_crypto_shred_cli: through the real binary, an ingest encrypts
 * every record under a per-class key of its stored-at day in DB/data.keys.
 * Once the whole day is past the retention limit, `flowveil sweep`
 * overwrites those keys with zeros, and `flowveil audit show --json`
 * lists one "retention.key_destroyed" entry per destroyed key. When a
 * day key is lost, export and the API report the records they skipped.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define T0_S 1767225600ull          /* ingest time, 2026-01-01T00:00:00Z */
#define T0_DAY 20454u               /* T0_S / 86400 */
#define RETENTION_S (2ull * 3600)   /* matches the "2h" written into the policy */
#define DAY_S 86400ull

/* data.keys layout: 32-byte header, then 48-byte slots of u8 class,
 * u8 flags (bit 0 in use), u16 zero, u32 day (little-endian), 32-byte
 * key, 8 zero bytes. */
#define KEYS_HEADER 32u
#define KEYS_SLOT 48u
#define KEYS_MAX 16u

/* Run a flowveil subcommand that must succeed. */
static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 120, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("flowveil %s failed", tag);
    }
}

/* Keys of the in-use slots of data.keys (up to KEYS_MAX); returns how
 * many slots are in use and the file length in *LEN. */
static size_t read_keys(const char *path, uint8_t keys[KEYS_MAX][32], uint32_t days[KEYS_MAX],
                        size_t *len)
{
    char *data = tu_read_file(path, len);
    assert_non_null(data);
    assert_true(*len >= KEYS_HEADER);
    size_t n = 0;
    for (size_t off = KEYS_HEADER; off + KEYS_SLOT <= *len; off += KEYS_SLOT) {
        const uint8_t *s = (const uint8_t *)data + off;
        if ((s[1] & 1u) == 0)
            continue;
        if (n < KEYS_MAX) {
            memcpy(keys[n], s + 8, 32);
            days[n] = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 |
                      (uint32_t)s[7] << 24;
        }
        n++;
    }
    free(data);
    return n;
}

/* Count "retention.key_destroyed" entries for OBJECT with params "day=DAY". */
static size_t count_destroyed(json_t *entries, const char *object, uint32_t day)
{
    char want[32];
    snprintf(want, sizeof want, "day=%u", day);
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *action = json_string_value(json_object_get(e, "action"));
        const char *obj = json_string_value(json_object_get(e, "object"));
        const char *params = json_string_value(json_object_get(e, "params"));
        if (action != NULL && obj != NULL && params != NULL &&
            strcmp(action, "retention.key_destroyed") == 0 && strcmp(obj, object) == 0 &&
            strcmp(params, want) == 0)
            n++;
    }
    return n;
}

static void test_sweep_destroys_expired_day_keys(void **state)
{
    (void)state;
    char dir[4096], db[4096], policy[4096], capture[4096], keys_path[4096], mdb_path[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "2h");
    /* DNS over TCP: gives both flow and DNS records. */
    snprintf(capture, sizeof capture, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());
    e2e_path(keys_path, db, "data.keys");
    e2e_path(mdb_path, db, "data.mdb");

    char t0[32], t_late[32];
    snprintf(t0, sizeof t0, "%llu", T0_S);
    /* The last possible record of day T0_DAY is 2 h old one hour later. */
    snprintf(t_late, sizeof t_late, "%llu", T0_S + DAY_S + RETENTION_S + 3600);

    e2e_result res;
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", t0, capture, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    /* The export decrypts a DNS name, which never appears in data.mdb. */
    json_t *dns = e2e_export(dir, db, "dns", T0_S + 60);
    assert_true(json_array_size(dns) > 0);
    const char *qname = json_string_value(json_object_get(json_array_get(dns, 0), "qname"));
    assert_non_null(qname);
    assert_true(strlen(qname) > 3);
    size_t mdb_len = 0;
    char *mdb = tu_read_file(mdb_path, &mdb_len);
    assert_non_null(mdb);
    assert_false(tu_memmem_found(mdb, mdb_len, qname, strlen(qname)));
    free(mdb);
    json_decref(dns);

    /* One key per stored class, all of day T0_DAY. */
    uint8_t keys[KEYS_MAX][32];
    uint32_t days[KEYS_MAX];
    size_t len_before = 0;
    size_t nkeys = read_keys(keys_path, keys, days, &len_before);
    assert_true(nkeys >= 2);
    assert_true(nkeys <= KEYS_MAX);
    for (size_t i = 0; i < nkeys; i++)
        assert_int_equal(days[i], T0_DAY);

    const char *sweep[] = {e2e_bin(), "sweep", "--db", db, "--now", t_late, NULL};
    run_ok(sweep, dir, "sweep", &res);
    e2e_result_free(&res);

    /* Every slot is zeroed in place and no old key byte string is left. */
    uint8_t after[KEYS_MAX][32];
    uint32_t after_days[KEYS_MAX];
    size_t len_after = 0;
    assert_int_equal(read_keys(keys_path, after, after_days, &len_after), 0);
    assert_int_equal(len_after, len_before);
    char *file = tu_read_file(keys_path, &len_after);
    assert_non_null(file);
    for (size_t i = 0; i < nkeys; i++)
        assert_false(tu_memmem_found(file, len_after, keys[i], 32));
    free(file);

    /* The audit trail has one destruction entry per key, for flows and dns among them. */
    const char *show[] = {e2e_bin(), "audit", "show", "--db", db, "--json", NULL};
    run_ok(show, dir, "audit-show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    e2e_result_free(&res);
    assert_non_null(entries);
    assert_int_equal(count_destroyed(entries, "flows", T0_DAY), 1);
    assert_int_equal(count_destroyed(entries, "dns", T0_DAY), 1);
    size_t total = 0, i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *action = json_string_value(json_object_get(e, "action"));
        if (action != NULL && strcmp(action, "retention.key_destroyed") == 0)
            total++;
    }
    assert_int_equal(total, nkeys);
    json_decref(entries);

    /* The chain including the new entries verifies. */
    const char *verify[] = {e2e_bin(), "audit", "verify", "--db", db, NULL};
    run_ok(verify, dir, "audit-verify", &res);
    e2e_result_free(&res);

    tu_remove_tree(dir);
}

/* Zero the whole in-use slot of class CLS in the data key file PATH, so
 * the day key is missing. Fails the test unless exactly one slot matched. */
static void zero_class_slot(const char *path, uint8_t cls)
{
    size_t len = 0;
    char *data = tu_read_file(path, &len);
    assert_non_null(data);
    size_t zeroed = 0;
    for (size_t off = KEYS_HEADER; off + KEYS_SLOT <= len; off += KEYS_SLOT) {
        uint8_t *s = (uint8_t *)data + off;
        if ((s[1] & 1u) != 0 && s[0] == cls) {
            memset(s, 0, KEYS_SLOT);
            zeroed++;
        }
    }
    assert_int_equal(zeroed, 1);
    tu_write_file(path, data, len);
    free(data);
}

/* GET PATH from the server on PORT and parse the 200 reply. */
static json_t *api_get(uint16_t port, const char *path)
{
    int status = 0;
    size_t body_len = 0;
    char *body = e2e_http_get(port, path, &status, &body_len);
    assert_non_null(body);
    if (status != 200)
        fprintf(stderr, "GET %s: status %d, body %s\n", path, status, body);
    assert_int_equal(status, 200);
    json_t *doc = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(doc);
    return doc;
}

static void test_lost_day_key_reported_by_export_and_api(void **state)
{
    (void)state;
    char dir[4096], db[4096], policy[4096], capture[4096], keys_path[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "30d");
    snprintf(capture, sizeof capture, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());
    e2e_path(keys_path, db, "data.keys");

    /* Stored at the wall clock, because serve has no --now. */
    e2e_result res;
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db, capture, NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    json_t *dns = e2e_export(dir, db, "dns", 0);
    size_t dns_count = json_array_size(dns);
    json_decref(dns);
    assert_true(dns_count > 0);
    assert_true(dns_count < 1000);  /* one API page contains them all */

    zero_class_slot(keys_path, 1 /* FV_CLASS_DNS */);

    /* The DNS export writes nothing, names the count and exits 1. */
    char out_path[4096];
    e2e_path(out_path, dir, "dns.jsonl");
    const char *export_dns[] = {e2e_bin(), "export", "--db", db, "--class", "dns",
                                "--output", out_path, NULL};
    e2e_run(export_dns, dir, "export-dns", 120, &res);
    assert_false(e2e_has_sanitizer_report(res.err));
    assert_true(res.exited);
    assert_int_equal(res.status, 1);
    char want[128];
    snprintf(want, sizeof want, "%zu dns records could not be decrypted", dns_count);
    if (strstr(res.err, want) == NULL)
        e2e_print_result("export-dns", &res);
    assert_non_null(strstr(res.err, want));
    assert_non_null(strstr(res.err, "data.keys"));
    e2e_result_free(&res);
    size_t out_len = 0;
    char *out_text = tu_read_file(out_path, &out_len);
    assert_non_null(out_text);
    assert_int_equal(out_len, 0);
    free(out_text);

    /* Flows keep their own key, so their export still succeeds. */
    json_t *flows = e2e_export(dir, db, "flows", 0);
    assert_true(json_array_size(flows) > 0);
    json_decref(flows);

    uint16_t port = 0;
    pid_t server = e2e_serve_start(dir, db, "serve", &port);

    json_t *page = api_get(port, "/api/v1/dns?limit=1000");
    assert_int_equal(json_integer_value(json_object_get(page, "count")), 0);
    assert_int_equal(json_integer_value(json_object_get(page, "undecryptable")),
                     (json_int_t)dns_count);
    json_decref(page);

    page = api_get(port, "/api/v1/flows?limit=10");
    assert_true(json_integer_value(json_object_get(page, "count")) > 0);
    assert_null(json_object_get(page, "undecryptable"));
    json_decref(page);

    json_t *counters = api_get(port, "/api/v1/counters");
    json_t *total = json_object_get(counters, "undecryptable_records");
    assert_true(json_is_integer(total));
    assert_int_equal(json_integer_value(total), (json_int_t)dns_count);
    json_decref(counters);

    kill(server, SIGTERM);
    e2e_wait(server, dir, "serve", 30, &res);
    assert_false(e2e_has_sanitizer_report(res.err));
    e2e_result_free(&res);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_destroys_expired_day_keys),
        cmocka_unit_test(test_lost_day_key_reported_by_export_and_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
