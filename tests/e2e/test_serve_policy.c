/*
 * test_serve_policy: what `serve --policy` and the audit trail do with
 * the demo capture ingested under the example policy.
 *
 * - Address literals in query values and paths reach the audit trail
 *   only as "<address>", and each entry records the reply's status and
 *   error code.
 * - The policy's roles map narrows the fixed route table and never
 *   widens it; a 403 names the roles that may use the route.
 * - A host filter or timeline path given as an address of a zone in
 *   pseudonym mode gets a 400 naming the zone. Without a policy the
 *   reply carries a "note". A network matches the kept addresses in it.
 * - A zone filter that names no zone label of the policy gets a 400
 *   listing the labels; without a policy, a "note".
 * - /api/v1/aggregates and `flowveil export --class aggregates` leave out
 *   rows with fewer distinct hosts than the store's k-threshold.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "fv_common.h"
#include "store.h"
#include "testutil.h"

/* One store shared by the tests: the demo capture under the example
 * policy (office is 10.0.0.0/8, pseudonym mode; k_threshold 5). */
typedef struct fixture {
    char dir[4096];
    char db[4096];
    char policy[4096];      /* the example policy */
} fixture;

static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 300, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("%s failed", tag);
    }
}

static int fixture_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    e2e_path(fx->db, fx->dir, "db");
    snprintf(fx->policy, sizeof fx->policy, "%s/policy/example-policy.yaml", e2e_source_dir());

    char demo[4096];
    e2e_path(demo, fx->dir, "demo.pcap");
    e2e_result res;
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    run_ok(gen, fx->dir, "demogen", &res);
    e2e_result_free(&res);
    /* Ingest with the wall clock: serve checks retention with it. */
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", fx->policy, "--db", fx->db,
                            demo, NULL};
    run_ok(ingest, fx->dir, "ingest", &res);
    e2e_result_free(&res);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Write a copy of the example policy to PATH with the line FROM
 * replaced by TO (both without the newline). */
static void write_policy_variant(const fixture *fx, const char *path, const char *from,
                                 const char *to)
{
    size_t len = 0;
    char *text = tu_read_file(fx->policy, &len);
    assert_non_null(text);
    char *at = strstr(text, from);
    assert_non_null(at);
    size_t before = (size_t)(at - text), from_len = strlen(from), to_len = strlen(to);
    size_t out_len = len - from_len + to_len;
    char *out = malloc(out_len + 1);
    assert_non_null(out);
    memcpy(out, text, before);
    memcpy(out + before, to, to_len);
    memcpy(out + before + to_len, at + from_len, len - before - from_len);
    out[out_len] = '\0';
    tu_write_file(path, out, out_len);
    free(out);
    free(text);
}

/* Create an API token for ROLE in the store and write its
 * "Authorization: Bearer ...\r\n" header line into HEADER. */
static void make_token(const fixture *fx, const char *name, const char *role, char header[256])
{
    const char *argv[] = {e2e_bin(), "token", "create", name, "--role", role, "--db", fx->db,
                          NULL};
    e2e_result res;
    run_ok(argv, fx->dir, "token create", &res);
    size_t len = strcspn(res.out, "\r\n");
    snprintf(header, 256, "Authorization: Bearer %.*s\r\n", (int)len, res.out);
    e2e_result_free(&res);
}

/* GET PATH with HEADER and return the parsed body; *STATUS gets the code. */
static json_t *get_json(uint16_t port, const char *header, const char *path, int *status)
{
    size_t len = 0;
    char *body = e2e_http_request(port, "GET", path, header, NULL, status, &len);
    assert_non_null(body);
    json_t *doc = json_loads(body, 0, NULL);
    if (doc == NULL)
        fail_msg("GET %s: the reply is not JSON: %s", path, body);
    free(body);
    return doc;
}

static void stop_server(const fixture *fx, pid_t server, const char *tag)
{
    e2e_result res;
    kill(server, SIGTERM);
    e2e_wait(server, fx->dir, tag, 30, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    assert_false(e2e_has_sanitizer_report(res.err));
    e2e_result_free(&res);
}

/* The audit entries of the store, newest first. */
static json_t *audit_entries(const fixture *fx)
{
    const char *show[] = {e2e_bin(), "audit", "show", "--db", fx->db, "--json", "--limit", "200",
                          NULL};
    e2e_result res;
    run_ok(show, fx->dir, "audit show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    e2e_result_free(&res);
    assert_non_null(entries);
    return entries;
}

/* The newest entry whose object is OBJECT and whose params contain NEEDLE. */
static json_t *find_entry(json_t *entries, const char *object, const char *needle)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *o = json_string_value(json_object_get(e, "object"));
        const char *p = json_string_value(json_object_get(e, "params"));
        if (o != NULL && p != NULL && strcmp(o, object) == 0 && strstr(p, needle) != NULL)
            return e;
    }
    return NULL;
}

static void test_audit_redacts_addresses_and_records_status(void **state)
{
    fixture *fx = *state;
    char compliance[256];
    make_token(fx, "officer-audit", "compliance", compliance);
    uint16_t port = 0;
    pid_t server = e2e_serve_start_policy(fx->dir, fx->db, fx->policy, "serve-audit", &port);
    const char *admin = e2e_auth_header(port);
    int status = 0;

    /* An office address gets 400, and the message names the zone. */
    json_t *doc = get_json(port, admin, "/api/v1/flows?host=10.1.0.42&limit=1", &status);
    assert_int_equal(status, 400);
    assert_string_equal(json_string_value(json_object_get(doc, "error")),
                        "address_pseudonymized");
    assert_non_null(strstr(json_string_value(json_object_get(doc, "message")), "office"));
    json_decref(doc);
    doc = get_json(port, admin, "/api/v1/hosts/10.1.0.23/timeline", &status);
    assert_int_equal(status, 400);
    json_decref(doc);
    /* An external address and a network outside every zone still work. */
    doc = get_json(port, admin, "/api/v1/flows?host=198.51.100.77&limit=1", &status);
    assert_int_equal(status, 200);
    json_decref(doc);
    doc = get_json(port, admin, "/api/v1/flows?host=198.51.100.0/24&limit=1", &status);
    assert_int_equal(status, 200);
    json_decref(doc);
    /* A refused request. */
    doc = get_json(port, compliance, "/api/v1/flows?limit=1", &status);
    assert_int_equal(status, 403);
    json_decref(doc);
    stop_server(fx, server, "serve-audit");

    json_t *entries = audit_entries(fx);
    char *all = json_dumps(entries, JSON_COMPACT);
    assert_non_null(all);
    assert_null(strstr(all, "10.1.0.42"));
    assert_null(strstr(all, "10.1.0.23"));
    assert_null(strstr(all, "198.51.100.77"));
    assert_null(strstr(all, "198.51.100.0"));
    free(all);

    json_t *e = find_entry(entries, "/api/v1/flows", "host=<address>&limit=1&status=400");
    assert_non_null(e);
    assert_non_null(strstr(json_string_value(json_object_get(e, "params")),
                           "error=address_pseudonymized&remote=127.0.0.1"));
    e = find_entry(entries, "/api/v1/hosts/<address>/timeline", "status=400");
    assert_non_null(e);
    e = find_entry(entries, "/api/v1/flows", "host=<address>&limit=1&status=200&remote=");
    assert_non_null(e);
    e = find_entry(entries, "/api/v1/flows", "status=403&error=forbidden");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "role")), "compliance");
    json_decref(entries);
}

static void test_roles_narrow_the_route_table(void **state)
{
    fixture *fx = *state;
    char policy[4096], analyst[256], compliance[256];
    e2e_path(policy, fx->dir, "roles.yaml");
    /* Analysts keep only alerts, and compliance lists every item. */
    write_policy_variant(fx, policy,
                         "  analyst: [flows, dns, tls, http, dhcp, ssh, alerts, aggregates, "
                         "counters, retention]\n  compliance: [audit, retention, policy, reports, "
                         "counters]",
                         "  analyst: [alerts]\n  compliance: [all]");
    make_token(fx, "analyst-roles", "analyst", analyst);
    make_token(fx, "officer-roles", "compliance", compliance);
    uint16_t port = 0;
    pid_t server = e2e_serve_start_policy(fx->dir, fx->db, policy, "serve-roles", &port);
    int status = 0;

    json_t *doc = get_json(port, analyst, "/api/v1/flows?limit=1", &status);
    assert_int_equal(status, 403);
    const char *message = json_string_value(json_object_get(doc, "message"));
    assert_non_null(message);
    assert_non_null(strstr(message, "roles.analyst"));
    assert_non_null(strstr(message, "roles that may use it: admin"));
    json_decref(doc);
    doc = get_json(port, analyst, "/api/v1/dns?limit=1", &status);
    assert_int_equal(status, 403);
    json_decref(doc);
    doc = get_json(port, analyst, "/api/v1/alerts?limit=1", &status);
    assert_int_equal(status, 200);
    json_decref(doc);
    /* Open to every role in the table, but no longer listed for analysts. */
    doc = get_json(port, analyst, "/api/v1/retention", &status);
    assert_int_equal(status, 403);
    json_decref(doc);
    doc = get_json(port, analyst, "/api/v1/summary", &status);
    assert_int_equal(status, 200);
    json_decref(doc);

    /* "all" does not open what the table closes to compliance. */
    doc = get_json(port, compliance, "/api/v1/flows?limit=1", &status);
    assert_int_equal(status, 403);
    message = json_string_value(json_object_get(doc, "message"));
    assert_non_null(strstr(message, "roles that may use it: admin"));
    json_decref(doc);
    doc = get_json(port, compliance, "/api/v1/audit?limit=1", &status);
    assert_int_equal(status, 200);
    json_decref(doc);
    stop_server(fx, server, "serve-roles");
}

/* Without --policy the fixed table alone decides, and the 403 names the
 * roles of the table. */
static void test_forbidden_names_roles_without_policy(void **state)
{
    fixture *fx = *state;
    char compliance[256];
    make_token(fx, "officer-plain", "compliance", compliance);
    uint16_t port = 0;
    pid_t server = e2e_serve_start(fx->dir, fx->db, "serve-plain", &port);
    int status = 0;

    json_t *doc = get_json(port, compliance, "/api/v1/aggregates?limit=1", &status);
    assert_int_equal(status, 403);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "message")),
                           "roles that may use it: analyst, admin"));
    json_decref(doc);

    /* An address literal is accepted, with a note saying why it may not match. */
    doc = get_json(port, e2e_auth_header(port), "/api/v1/flows?host=10.1.0.42&limit=1",
                   &status);
    assert_int_equal(status, 200);
    const char *note = json_string_value(json_object_get(doc, "note"));
    assert_non_null(note);
    assert_non_null(strstr(note, "search by the token"));
    json_decref(doc);
    /* A token gets no note. */
    doc = get_json(port, e2e_auth_header(port), "/api/v1/flows?host=ip4-aaaaaaaaaaaaaaaa&limit=1",
                   &status);
    assert_int_equal(status, 200);
    assert_null(json_object_get(doc, "note"));
    json_decref(doc);
    stop_server(fx, server, "serve-plain");
}

/* Set the store's k-threshold, as a capturing process does from the policy. */
static void set_store_k(const fixture *fx, uint64_t k)
{
    store_env *store = NULL;
    char err[512];
    assert_int_equal(store_open(fx->db, STORE_EXISTING, &store, err, sizeof err), FV_OK);
    assert_int_equal(store_meta_set(store, STORE_META_K_THRESHOLD, k), FV_OK);
    store_close(&store);
}

/* Count the aggregate rows of ROWS with fewer than K distinct hosts. */
static size_t rows_below(json_t *rows, json_int_t k)
{
    size_t i, below = 0;
    json_t *r;
    json_array_foreach(rows, i, r) {
        if (json_integer_value(json_object_get(r, "hosts")) < k)
            below++;
    }
    return below;
}

static void test_aggregates_honour_k_threshold(void **state)
{
    fixture *fx = *state;

    /* With k = 1 every row shows, and the demo has rows of one host. */
    set_store_k(fx, 1);
    json_t *all = e2e_export(fx->dir, fx->db, "aggregates", 0);
    size_t total = json_array_size(all);
    size_t small = rows_below(all, 5);
    assert_true(small > 0);
    json_decref(all);

    set_store_k(fx, 5);
    json_t *kept = e2e_export(fx->dir, fx->db, "aggregates", 0);
    assert_int_equal(rows_below(kept, 5), 0);
    assert_int_equal(json_array_size(kept), total - small);
    json_decref(kept);

    uint16_t port = 0;
    pid_t server = e2e_serve_start(fx->dir, fx->db, "serve-k", &port);
    int status = 0;
    json_t *doc = get_json(port, e2e_auth_header(port), "/api/v1/aggregates?limit=1000", &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "k_threshold")), 5);
    json_t *rows = json_object_get(doc, "records");
    assert_int_equal(rows_below(rows, 5), 0);
    assert_int_equal(json_array_size(rows), total - small < 1000 ? total - small : 1000);
    json_decref(doc);
    stop_server(fx, server, "serve-k");
}

/* Smallest and largest microsecond value of KEY_FIRST / KEY_LAST over ROWS. */
static void time_bounds(json_t *rows, const char *key_first, const char *key_last,
                        json_int_t *lo, json_int_t *hi)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        json_int_t a = json_integer_value(json_object_get(r, key_first));
        json_int_t b = json_integer_value(json_object_get(r, key_last));
        if (a > 0 && (*lo == 0 || a < *lo))
            *lo = a;
        if (b > *hi)
            *hi = b;
    }
}

/* The summary's traffic span comes from single records, not from the
 * hour and day buckets of the aggregates. A transparency notice without
 * "from" covers the last 30 days. */
static void test_summary_span_and_transparency_period(void **state)
{
    fixture *fx = *state;
    json_int_t lo = 0, hi = 0;
    static const char *const classes[] = {"flows", "dns", "tls", "http", "dhcp", "ssh"};
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        json_t *rows = e2e_export(fx->dir, fx->db, classes[c], 0);
        if (c == 0)
            time_bounds(rows, "first_us", "last_us", &lo, &hi);
        else
            time_bounds(rows, "ts_us", "ts_us", &lo, &hi);
        json_decref(rows);
    }
    assert_true(lo > 0);

    uint16_t port = 0;
    pid_t server = e2e_serve_start_policy(fx->dir, fx->db, fx->policy, "serve-summary", &port);
    int status = 0;
    json_t *doc = get_json(port, e2e_auth_header(port), "/api/v1/summary", &status);
    assert_int_equal(status, 200);
    json_t *traffic = json_object_get(doc, "traffic");
    const char *first = json_string_value(json_object_get(traffic, "first"));
    const char *last = json_string_value(json_object_get(traffic, "last"));
    assert_non_null(first);
    assert_non_null(last);
    uint64_t first_us = 0, last_us = 0;
    assert_int_equal(fv_time_parse(first, &first_us), FV_OK);
    assert_int_equal(fv_time_parse(last, &last_us), FV_OK);
    /* The summary reads the oldest and newest stored record of each
     * class, so its span lies within the records' span and, with the
     * demo stored in traffic order, within an hour of its ends. Day
     * buckets would reach past both ends. */
    json_int_t hour = 3600 * (json_int_t)1000000;
    assert_true((json_int_t)first_us >= lo);
    assert_true((json_int_t)first_us < lo + hour);
    assert_true((json_int_t)last_us <= hi);
    assert_true((json_int_t)last_us > hi - hour);
    json_decref(doc);

    doc = get_json(port, e2e_auth_header(port), "/api/v1/reports/transparency", &status);
    assert_int_equal(status, 200);
    const char *markdown = json_string_value(json_object_get(doc, "markdown"));
    assert_non_null(markdown);
    assert_null(strstr(markdown, "1970-01-01"));
    json_decref(doc);
    stop_server(fx, server, "serve-summary");
}

/* True if the address text ADDR is an IPv4 address in NET/24. */
static bool in_net24(const char *addr, const uint8_t net[4])
{
    uint8_t a[4];
    return addr != NULL && inet_pton(AF_INET, addr, a) == 1 && memcmp(a, net, 3) == 0;
}

/* A zone filter is checked against the policy's zone labels: an unknown
 * label gets 400 unknown_zone naming it and the valid labels, on every
 * record route. Without a policy it gets a note instead. */
static void test_zone_filter_checked_against_policy(void **state)
{
    fixture *fx = *state;
    uint16_t port = 0;
    pid_t server = e2e_serve_start_policy(fx->dir, fx->db, fx->policy, "serve-zone", &port);
    const char *admin = e2e_auth_header(port);
    int status = 0;

    static const char *const routes[] = {"flows", "dns", "alerts", "aggregates"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/%s?zone=ofice&limit=1", routes[i]);
        json_t *doc = get_json(port, admin, path, &status);
        assert_int_equal(status, 400);
        assert_string_equal(json_string_value(json_object_get(doc, "error")), "unknown_zone");
        const char *message = json_string_value(json_object_get(doc, "message"));
        assert_non_null(message);
        assert_non_null(strstr(message, "'ofice'"));
        assert_non_null(strstr(message, "office, lab, guest, office-v6, external, link-local"));
        json_decref(doc);
    }
    static const char *const known[] = {"office", "external", "link-local", "office-v6"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/flows?zone=%s&limit=5", known[i]);
        json_t *doc = get_json(port, admin, path, &status);
        assert_int_equal(status, 200);
        assert_null(json_object_get(doc, "note"));
        json_decref(doc);
    }
    /* The demo traffic has office hosts, so the filter finds them. */
    json_t *doc = get_json(port, admin, "/api/v1/flows?zone=office&limit=5", &status);
    assert_int_equal(status, 200);
    assert_true(json_integer_value(json_object_get(doc, "count")) > 0);
    json_decref(doc);
    stop_server(fx, server, "serve-zone");

    server = e2e_serve_start(fx->dir, fx->db, "serve-zone-plain", &port);
    doc = get_json(port, e2e_auth_header(port), "/api/v1/flows?zone=ofice&limit=1", &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "count")), 0);
    const char *note = json_string_value(json_object_get(doc, "note"));
    assert_non_null(note);
    assert_non_null(strstr(note, "without --policy"));
    json_decref(doc);
    stop_server(fx, server, "serve-zone-plain");
}

/* A network in host= matches the records with a kept address inside it
 * on either side, and only those. */
static void test_host_network_matches_addresses(void **state)
{
    fixture *fx = *state;

    /* Pick the /24 of the first external IPv4 destination and count the
     * flows with an address in it, from the export. */
    json_t *flows = e2e_export(fx->dir, fx->db, "flows", 0);
    assert_non_null(flows);
    uint8_t net[4] = {0};
    bool found = false;
    size_t i, expected = 0;
    json_t *r;
    json_array_foreach(flows, i, r) {
        const char *dst = json_string_value(json_object_get(r, "dst"));
        const char *zone = json_string_value(json_object_get(r, "dst_zone"));
        if (!found && zone != NULL && strcmp(zone, "external") == 0 && dst != NULL &&
            inet_pton(AF_INET, dst, net) == 1)
            found = true;
    }
    assert_true(found);
    json_array_foreach(flows, i, r) {
        if (in_net24(json_string_value(json_object_get(r, "src")), net) ||
            in_net24(json_string_value(json_object_get(r, "dst")), net))
            expected++;
    }
    json_decref(flows);
    assert_true(expected > 0);

    uint16_t port = 0;
    pid_t server = e2e_serve_start_policy(fx->dir, fx->db, fx->policy, "serve-net", &port);
    const char *admin = e2e_auth_header(port);
    int status = 0;
    char path[128];
    snprintf(path, sizeof path, "/api/v1/flows?host=%u.%u.%u.0/24&limit=1000", net[0], net[1],
             net[2]);
    json_t *doc = get_json(port, admin, path, &status);
    assert_int_equal(status, 200);
    json_t *records = json_object_get(doc, "records");
    assert_int_equal(json_array_size(records), expected < 1000 ? expected : 1000);
    json_array_foreach(records, i, r) {
        assert_true(in_net24(json_string_value(json_object_get(r, "src")), net) ||
                    in_net24(json_string_value(json_object_get(r, "dst")), net));
    }
    json_decref(doc);

    /* A network inside the pseudonymized office zone can never match; one
     * that reaches past the zone (10.0.0.0/7 also covers 11.0.0.0/8) can. */
    doc = get_json(port, admin, "/api/v1/flows?host=10.1.0.0/24&limit=1", &status);
    assert_int_equal(status, 400);
    assert_string_equal(json_string_value(json_object_get(doc, "error")),
                        "address_pseudonymized");
    json_decref(doc);
    doc = get_json(port, admin, "/api/v1/flows?host=10.0.0.0/7&limit=1", &status);
    assert_int_equal(status, 200);
    json_decref(doc);
    /* Bits after the prefix length are a mistake, not a wider network. */
    doc = get_json(port, admin, "/api/v1/flows?host=198.51.100.7/24&limit=1", &status);
    assert_int_equal(status, 400);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "invalid_parameter");
    json_decref(doc);
    stop_server(fx, server, "serve-net");
}

/* The status and "error" or "note" member of GET PATH. */
static int host_check(uint16_t port, const char *header, const char *path, char *what,
                      size_t what_len)
{
    int status = 0;
    json_t *doc = get_json(port, header, path, &status);
    const char *text = json_string_value(json_object_get(doc, status == 200 ? "note" : "error"));
    snprintf(what, what_len, "%s", text != NULL ? text : "");
    json_decref(doc);
    return status;
}

/*
 * A network is rejected as pseudonymized only when one pseudonymizing
 * zone contains all of it and no zone inside it stores addresses as text:
 * with a keep zone 10.5.0.0/16 inside office (10.0.0.0/8), 10.0.0.0/8
 * can match and 10.1.0.0/16 cannot. When a zone is in prefix-preserving
 * mode, its output looks like real addresses and can fall anywhere, so
 * an address of a pseudonymizing zone gets a note instead of a 400.
 */
static void test_pseudonymized_networks_with_nested_zones(void **state)
{
    fixture *fx = *state;
    char nested[4096], prefix_output[4096], admin[256], what[600];
    e2e_path(nested, fx->dir, "nested.yaml");
    write_policy_variant(fx, nested, "  - name: office-v6",
                         "  - name: servers\n    networks: [10.5.0.0/16]\n    addresses: keep\n"
                         "  - name: office-v6");
    e2e_path(prefix_output, fx->dir, "prefix-output.yaml");
    write_policy_variant(fx, prefix_output, "    addresses: pseudonymize",
                         "    addresses: prefix-preserving");
    make_token(fx, "nest-admin", "admin", admin);

    uint16_t port = 0;
    pid_t server = e2e_serve_start_policy(fx->dir, fx->db, nested, "serve-nested", &port);
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=10.0.0.0/8&limit=1", what,
                                sizeof what),
                     200);
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=10.5.7.9&limit=1", what,
                                sizeof what),
                     200);
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=10.1.0.0/16&limit=1", what,
                                sizeof what),
                     400);
    assert_string_equal(what, "address_pseudonymized");
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=::ffff:10.1.0.7&limit=1",
                                what, sizeof what),
                     400);
    assert_string_equal(what, "address_pseudonymized");
    /* The other IPv6 forms of one office address are stored as tokens
     * too; the same forms of a keep-zone address are stored as text. */
    static const char *const office_forms[] = {"::10.1.0.7", "64:ff9b::10.1.0.7",
                                               "2002:a01:7::/48", "2002:a01:7::1",
                                               "2001:db8:2::5efe:10.1.0.7"};
    for (size_t i = 0; i < sizeof office_forms / sizeof office_forms[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/flows?host=%s&limit=1", office_forms[i]);
        int status = host_check(port, admin, path, what, sizeof what);
        if (status != 400 || strcmp(what, "address_pseudonymized") != 0)
            fail_msg("%s: status %d, %s", office_forms[i], status, what);
    }
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=64:ff9b::10.5.7.9&limit=1",
                                what, sizeof what),
                     200);
    /* 2002:a01::/32 spans 10.1.0.0/16, whose addresses could lie in
     * another zone; it is not rejected. */
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=2002:a01::/32&limit=1", what,
                                sizeof what),
                     200);
    stop_server(fx, server, "serve-nested");

    server = e2e_serve_start_policy(fx->dir, fx->db, prefix_output, "serve-prefix", &port);
    assert_int_equal(host_check(port, admin, "/api/v1/flows?host=10.1.0.7&limit=1", what,
                                sizeof what),
                     200);
    assert_non_null(strstr(what, "lies in zone office"));
    assert_non_null(strstr(what, "prefix-preserving"));
    stop_server(fx, server, "serve-prefix");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audit_redacts_addresses_and_records_status),
        cmocka_unit_test(test_roles_narrow_the_route_table),
        cmocka_unit_test(test_forbidden_names_roles_without_policy),
        cmocka_unit_test(test_aggregates_honour_k_threshold),
        cmocka_unit_test(test_summary_span_and_transparency_period),
        cmocka_unit_test(test_zone_filter_checked_against_policy),
        cmocka_unit_test(test_pseudonymized_networks_with_nested_zones),
        cmocka_unit_test(test_host_network_matches_addresses),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
