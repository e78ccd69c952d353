/*
 * test_api_routes.c: the API routes against a real server on 127.0.0.1
 * (port 0) and a real LMDB store in a temporary directory, authenticated
 * with API tokens: record filters and paging under
 * filters, sorting, the host timeline, top talkers and domains with the
 * k-threshold, series, alert detail and life-cycle changes, /metrics and
 * the role checks of the route table.
 *
 * Fixture traffic (2026-11-30 from 08:00 UTC, one flow per hour):
 *   hosts 1..6 in zone "office", host 7 in zone "lab";
 *   flow i: host (i % 7) + 1 to 198.51.100.7:443/tcp, except every
 *   fourth flow, which goes to 203.0.113.9:53/udp; bytes grow with i.
 *   DNS queries: hosts 1..6 ask www.example.org, host 1 asks
 *   mail.example.org, host 7 asks rare.example.net.
 *   Alerts: a beacon of host 1 raised twice 10 minutes apart (merged),
 *   a scan of host 7, all raised on 2026-12-01 as when a capture of the
 *   day before is ingested: their traffic spans 08:00 to 19:00 (beacon)
 *   and 08:00 to 18:00 (scan) on 2026-11-30.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api_internal.h"
#include "apitest.h"
#include "policy.h"

#define US APITEST_US_PER_S
#define HOUR_US (3600ull * US)
/* 2026-11-30T08:00:00Z */
#define T0_US (1796025600ull * US)
/* Stored-at time of every record: 2026-12-01T00:00:00Z. */
#define STORED_US (1796083200ull * US)
#define FLOWS 42
#define HOSTS 7

static apitest g_t;
static uint64_t g_beacon_id, g_scan_id;

static const char *zone_of(unsigned host)
{
    return host == 7 ? "lab" : "office";
}

static void host_ep(fv_endpoint *ep, unsigned host)
{
    apitest_internal(ep, (uint8_t)host, zone_of(host));
}

static void host_text(unsigned host, char out[FV_ENDPOINT_TEXT_MAX])
{
    fv_endpoint ep;
    host_ep(&ep, host);
    apitest_endpoint_text(&ep, out);
}

static fv_flow_record make_flow(unsigned i)
{
    fv_flow_record f;
    memset(&f, 0, sizeof f);
    f.first_us = T0_US + i * HOUR_US;
    f.last_us = f.first_us + 30 * US;
    host_ep(&f.src, i % HOSTS + 1);
    if (i % 4 == 3) {
        apitest_external(&f.dst, 203, 0, 113, 9); /* 203.0.113.9, TEST-NET-3 */
        f.dport = 53;
        f.proto = 17;
    } else {
        apitest_external(&f.dst, 198, 51, 100, 7); /* 198.51.100.7, TEST-NET-2 */
        f.dport = 443;
        f.proto = 6;
    }
    f.sport = (uint16_t)(40000 + i);
    f.pkts_fwd = 10 + i;
    f.pkts_rev = 5;
    f.bytes_fwd = 1000u * (i + 1);
    f.bytes_rev = 100;
    return f;
}

static void put_dns(unsigned host, const char *qname, uint64_t ts_us, bool response)
{
    fv_dns_record d;
    memset(&d, 0, sizeof d);
    d.ts_us = ts_us;
    host_ep(&d.client, host);
    apitest_external(&d.server, 203, 0, 113, 9);
    d.client_port = 53000;
    d.server_port = 53;
    d.transport = 17;
    d.is_response = response ? 1 : 0;
    d.qtype = 1;
    d.qclass = 1;
    snprintf(d.qname, sizeof d.qname, "%s", qname);
    assert_int_equal(store_put(g_t.store, FV_CLASS_DNS, &d, STORED_US), FV_OK);
}

static void put_aggregate(uint64_t start_us, uint32_t bucket_s, uint64_t flows, uint64_t bytes)
{
    fv_aggregate_record a;
    memset(&a, 0, sizeof a);
    a.bucket_start_us = start_us;
    a.bucket_s = bucket_s;
    snprintf(a.zone, sizeof a.zone, "office");
    a.proto = 6;
    apitest_external(&a.peer, 198, 51, 100, 7);
    a.dport = 443;
    a.flows = flows;
    a.packets = flows * 10;
    a.bytes_out = bytes;
    a.bytes_in = 0;
    a.hosts = 6;
    assert_int_equal(store_put(g_t.store, FV_CLASS_AGGREGATE, &a, STORED_US), FV_OK);
}

static fv_alert_record make_alert(unsigned host, int detector, int severity, uint64_t ts_us)
{
    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = ts_us;
    a.first_us = T0_US;
    a.last_us = T0_US + 10 * HOUR_US;
    a.detector = (uint8_t)detector;
    a.severity = (uint8_t)severity;
    a.score = severity / 4.0;
    host_ep(&a.host, host);
    apitest_external(&a.peer, 198, 51, 100, 7);
    a.peer_port = 443;
    a.proto = 6;
    a.flow_count = 3;
    snprintf(a.summary, sizeof a.summary, "test alert");
    return a;
}

static int group_setup(void **state)
{
    (void)state;
    apitest_set_now(STORED_US + 60 * US);
    apitest_open(&g_t);
    for (unsigned i = 0; i < FLOWS; i++) {
        fv_flow_record f = make_flow(i);
        assert_int_equal(store_put(g_t.store, FV_CLASS_FLOW, &f, STORED_US), FV_OK);
    }
    for (unsigned h = 1; h <= 6; h++)
        put_dns(h, "www.example.org", T0_US + h * US, false);
    put_dns(1, "www.example.org", T0_US + 7 * US, true); /* a response: not a query */
    put_dns(1, "mail.example.org.", T0_US + 8 * US, false);
    put_dns(7, "rare.example.net", T0_US + 9 * US, false);

    /* Hourly aggregates for hours 0 and 2 (hour 1 quiet), one daily. */
    put_aggregate(T0_US, 3600, 4, 4000);
    put_aggregate(T0_US, 3600, 1, 500);
    put_aggregate(T0_US + 2 * HOUR_US, 3600, 2, 2000);
    put_aggregate(T0_US - 8 * HOUR_US, 86400, 7, 6500);
    assert_int_equal(store_commit(g_t.store), FV_OK);
    assert_int_equal(store_meta_set(g_t.store, STORE_META_K_THRESHOLD, 5), FV_OK);

    fv_alert_record b1 = make_alert(1, FV_DET_BEACON, FV_SEV_HIGH, STORED_US + 30 * US);
    fv_alert_record b2 = b1;
    b2.ts_us += 600 * US;
    b2.last_us += HOUR_US;
    b2.score = 0.95;
    /* Raised after the beacon, but its traffic ends an hour earlier. */
    fv_alert_record s1 = make_alert(7, FV_DET_SCAN, FV_SEV_MEDIUM, STORED_US + 1200 * US);
    uint64_t id = 0;
    assert_int_equal(store_alert_upsert(g_t.store, &b1, 3600, STORED_US, &g_beacon_id, NULL),
                     FV_OK);
    assert_int_equal(store_alert_upsert(g_t.store, &b2, 3600, STORED_US + 1, &id, NULL), FV_OK);
    assert_true(id == g_beacon_id);
    assert_int_equal(store_alert_upsert(g_t.store, &s1, 3600, STORED_US + 2, &g_scan_id, NULL),
                     FV_OK);
    apitest_start(&g_t);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    apitest_close(&g_t);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static size_t records_count(json_t *doc)
{
    json_t *records = json_object_get(doc, "records");
    assert_true(json_is_array(records));
    return json_array_size(records);
}

/* Every record of DOC must have STR member KEY equal to VALUE on at least
 * one of the members KEYS (NULL-terminated). */
static bool any_member_is(json_t *rec, const char *const *keys, const char *value)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        const char *v = json_string_value(json_object_get(rec, keys[i]));
        if (v != NULL && strcmp(v, value) == 0)
            return true;
    }
    return false;
}

static json_int_t int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("member '%s' is not an integer", key);
    return json_integer_value(v);
}

/* Expected flows (by index) that a predicate selects. */
static size_t expected_flows(bool (*pred)(unsigned i))
{
    size_t n = 0;
    for (unsigned i = 0; i < FLOWS; i++)
        n += pred(i);
    return n;
}

static bool flow_of_host3(unsigned i)
{
    return i % HOSTS + 1 == 3;
}

static bool flow_udp(unsigned i)
{
    return i % 4 == 3;
}

static bool flow_lab(unsigned i)
{
    return i % HOSTS + 1 == 7;
}

static bool flow_host3_udp(unsigned i)
{
    return flow_of_host3(i) && flow_udp(i);
}

/* ---- filters -------------------------------------------------------------- */

static void test_flow_filters_select_matching_records(void **state)
{
    (void)state;
    char host3[FV_ENDPOINT_TEXT_MAX], target[256];
    host_text(3, host3);
    static const char *const sides[] = {"src", "dst", NULL};

    snprintf(target, sizeof target, "/api/v1/flows?limit=1000&host=%s", host3);
    json_t *doc = apitest_get(&g_t, target, 200);
    assert_int_equal(records_count(doc), expected_flows(flow_of_host3));
    size_t i;
    json_t *rec;
    json_array_foreach(json_object_get(doc, "records"), i, rec) assert_true(
        any_member_is(rec, sides, host3));
    json_decref(doc);

    doc = apitest_get(&g_t, "/api/v1/flows?limit=1000&proto=udp", 200);
    assert_int_equal(records_count(doc), expected_flows(flow_udp));
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/flows?limit=1000&proto=17&port=53", 200);
    assert_int_equal(records_count(doc), expected_flows(flow_udp));
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/flows?limit=1000&zone=lab", 200);
    assert_int_equal(records_count(doc), expected_flows(flow_lab));
    json_decref(doc);

    /* Filters combine with AND, and the host may be given in capitals. */
    for (char *p = host3; *p != '\0'; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    snprintf(target, sizeof target, "/api/v1/flows?limit=1000&host=%s&proto=udp", host3);
    doc = apitest_get(&g_t, target, 200);
    assert_int_equal(records_count(doc), expected_flows(flow_host3_udp));
    json_decref(doc);

    /* A kept external address matches too. Without a policy the reply
     * notes how addresses and networks match. */
    doc = apitest_get(&g_t, "/api/v1/flows?limit=1000&host=203.0.113.9", 200);
    assert_int_equal(records_count(doc), expected_flows(flow_udp));
    const char *note = json_string_value(json_object_get(doc, "note"));
    assert_non_null(note);
    assert_true(strncmp(note, "An address matches ", strlen("An address matches ")) == 0);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/flows?limit=1000&host=203.0.113.0/24", 200);
    note = json_string_value(json_object_get(doc, "note"));
    assert_non_null(note);
    assert_true(strncmp(note, "A network matches ", strlen("A network matches ")) == 0);
    json_decref(doc);
}

static void test_domain_filter_matches_suffix(void **state)
{
    (void)state;
    /* www.example.org x7 (one response), mail.example.org. x1 */
    json_t *doc = apitest_get(&g_t, "/api/v1/dns?domain=example.org", 200);
    assert_int_equal(records_count(doc), 8);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/dns?domain=.MAIL.example.org", 200);
    assert_int_equal(records_count(doc), 1);
    json_decref(doc);
    /* A suffix matches whole labels only. */
    doc = apitest_get(&g_t, "/api/v1/dns?domain=ample.org", 200);
    assert_int_equal(records_count(doc), 0);
    json_decref(doc);
}

static void test_alert_filters_and_life_cycle_fields(void **state)
{
    (void)state;
    json_t *doc = apitest_get(&g_t, "/api/v1/alerts?detector=beacon", 200);
    assert_int_equal(records_count(doc), 1);
    json_t *a = json_array_get(json_object_get(doc, "records"), 0);
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)g_beacon_id);
    assert_string_equal(json_string_value(json_object_get(a, "id")), id);
    assert_int_equal(int_at(a, "count"), 2);
    assert_string_equal(json_string_value(json_object_get(a, "state")), "new");
    /* first_seen and last_seen are traffic time: the first raise's
     * evidence start and the second raise's evidence end. */
    assert_string_equal(json_string_value(json_object_get(a, "first_seen")),
                        "2026-11-30T08:00:00.000000Z");
    assert_string_equal(json_string_value(json_object_get(a, "last_seen")),
                        "2026-11-30T19:00:00.000000Z");
    /* raised is when the first raise happened, ts the newest raise. */
    assert_string_equal(json_string_value(json_object_get(a, "raised")),
                        "2026-12-01T00:00:30.000000Z");
    assert_string_equal(json_string_value(json_object_get(a, "ts")),
                        "2026-12-01T00:10:30.000000Z");
    assert_true(json_is_null(json_object_get(a, "state_changed_by")));
    /* The newest raise's score is shown. */
    assert_true(json_real_value(json_object_get(a, "score")) == 0.95);
    json_decref(doc);

    doc = apitest_get(&g_t, "/api/v1/alerts?severity=medium", 200);
    assert_int_equal(records_count(doc), 1);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/alerts?state=new&zone=lab", 200);
    assert_int_equal(records_count(doc), 1);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/alerts?state=closed", 200);
    assert_int_equal(records_count(doc), 0);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/alerts?sort=severity", 200);
    assert_int_equal(records_count(doc), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "records"), 0), "severity")),
                        "high");
    json_decref(doc);
    /* Newest traffic first: the beacon (19:00), although the scan was
     * raised later. */
    doc = apitest_get(&g_t, "/api/v1/alerts?sort=last_seen", 200);
    assert_int_equal(records_count(doc), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "records"), 0), "detector")),
                        "beacon");
    json_decref(doc);
}

static void test_bad_filter_values_name_parameter_and_choices(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        const char *named;
    } cases[] = {
        {"/api/v1/flows?proto=sctpx", "proto"},
        {"/api/v1/flows?proto=256", "proto"},
        {"/api/v1/flows?port=65536", "port"},
        {"/api/v1/flows?port=-1", "port"},
        {"/api/v1/flows?host=ip4-0123", "host"},
        {"/api/v1/flows?host=999.1.1.1", "host"},
        {"/api/v1/flows?zone=", "zone"},
        {"/api/v1/flows?sort=severity", "sort"},
        {"/api/v1/flows?domain=example.org", "domain"}, /* not a filter of flows */
        {"/api/v1/dns?domain=bad..name", "domain"},
        {"/api/v1/dns?domain=a%20b", "domain"},
        {"/api/v1/alerts?detector=phishing", "detector"},
        {"/api/v1/alerts?severity=urgent", "severity"},
        {"/api/v1/alerts?state=open", "state"},
        {"/api/v1/alerts?sort=bytes", "sort"},
        {"/api/v1/series?metric=cpu", "metric"},
        {"/api/v1/series?step=2h", "step"},
        {"/api/v1/top/talkers?limit=0", "limit"},
        {"/api/v1/hosts/ip4-abcdefghijklmnop/timeline?cursor=x", "cursor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = apitest_get(&g_t, cases[i].target, 400);
        const char *message = json_string_value(json_object_get(doc, "message"));
        assert_string_equal(json_string_value(json_object_get(doc, "error")),
                            "invalid_parameter");
        assert_non_null(message);
        if (strstr(message, cases[i].named) == NULL || strstr(message, "allowed") == NULL)
            fail_msg("%s: message '%s' does not name '%s' and the allowed values",
                     cases[i].target, message, cases[i].named);
        json_decref(doc);
    }
}

/* Page through TARGET_BASE (with limit=LIMIT) and return the ids seen,
 * checking none repeats. */
static size_t collect_pages(const char *target_base, unsigned limit, uint64_t *ids, size_t cap)
{
    char target[512], cursor[64] = "";
    size_t n = 0;
    for (int page = 0; page < 100; page++) {
        snprintf(target, sizeof target, "%s&limit=%u%s%s", target_base, limit,
                 cursor[0] != '\0' ? "&cursor=" : "", cursor);
        json_t *doc = apitest_get(&g_t, target, 200);
        size_t i;
        json_t *rec;
        assert_true(records_count(doc) <= limit);
        json_array_foreach(json_object_get(doc, "records"), i, rec)
        {
            uint64_t id = (uint64_t)int_at(rec, "id");
            for (size_t j = 0; j < n; j++)
                assert_true(ids[j] != id);
            assert_true(n < cap);
            ids[n++] = id;
        }
        json_t *next = json_object_get(doc, "next_cursor");
        if (json_is_null(next)) {
            json_decref(doc);
            return n;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(doc);
    }
    fail_msg("paging did not end");
    return 0;
}

static void test_filtered_paging_returns_each_once(void **state)
{
    (void)state;
    uint64_t ids[FLOWS];
    char base[256], host3[FV_ENDPOINT_TEXT_MAX];
    host_text(3, host3);
    static const char *const orders[] = {"desc", "asc"};
    for (int o = 0; o < 2; o++) {
        for (unsigned limit = 1; limit <= 4; limit++) {
            snprintf(base, sizeof base, "/api/v1/flows?order=%s&host=%s", orders[o], host3);
            assert_int_equal(collect_pages(base, limit, ids, FLOWS),
                             expected_flows(flow_of_host3));
            snprintf(base, sizeof base, "/api/v1/flows?order=%s&proto=udp", orders[o]);
            assert_int_equal(collect_pages(base, limit, ids, FLOWS), expected_flows(flow_udp));
        }
    }
    /* The exact number of matches as the limit: no empty last page. */
    snprintf(base, sizeof base, "/api/v1/flows?host=%s&limit=%zu", host3,
             expected_flows(flow_of_host3));
    json_t *doc = apitest_get(&g_t, base, 200);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    json_decref(doc);
}

static void test_sort_by_bytes_orders_the_page(void **state)
{
    (void)state;
    json_t *doc = apitest_get(&g_t, "/api/v1/flows?order=asc&limit=10&sort=bytes", 200);
    json_t *records = json_object_get(doc, "records");
    assert_int_equal(json_array_size(records), 10);
    json_int_t prev = INT64_MAX;
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        json_int_t bytes = int_at(rec, "bytes_fwd") + int_at(rec, "bytes_rev");
        assert_true(bytes <= prev);
        prev = bytes;
    }
    /* The page is still the ten oldest flows, only reordered. */
    assert_false(json_is_null(json_object_get(doc, "next_cursor")));
    json_decref(doc);
}

/* ---- timeline ------------------------------------------------------------ */

static void test_timeline_merges_classes_in_time_order(void **state)
{
    (void)state;
    char host1[FV_ENDPOINT_TEXT_MAX], target[256];
    host_text(1, host1);
    /* Host 1: flows 0, 7, 14, ..., 35 (6), 3 DNS records, 1 alert. */
    snprintf(target, sizeof target, "/api/v1/hosts/%s/timeline?limit=1000", host1);
    json_t *doc = apitest_get(&g_t, target, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "host")), host1);
    json_t *events = json_object_get(doc, "events");
    assert_int_equal(json_array_size(events), 6 + 3 + 1);
    assert_true(json_is_true(json_object_get(doc, "complete")));
    const char *prev = "";
    bool seen_flow = false, seen_dns = false, seen_alert = false;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        const char *ts = json_string_value(json_object_get(ev, "ts"));
        const char *cls = json_string_value(json_object_get(ev, "class"));
        assert_non_null(ts);
        assert_true(strcmp(prev, ts) <= 0);
        prev = ts;
        seen_flow |= strcmp(cls, "flows") == 0;
        seen_dns |= strcmp(cls, "dns") == 0;
        seen_alert |= strcmp(cls, "alerts") == 0;
        json_t *record = json_object_get(ev, "record");
        assert_true(json_is_object(record));
        /* Alerts appear with their life cycle, as the alert list shows them. */
        if (strcmp(cls, "alerts") == 0)
            assert_int_equal(int_at(record, "count"), 2);
    }
    assert_true(seen_flow && seen_dns && seen_alert);
    json_decref(doc);

    /* Paging two at a time visits the same ten events once each. */
    char cursor[64] = "";
    size_t total = 0;
    for (int page = 0; page < 20; page++) {
        snprintf(target, sizeof target, "/api/v1/hosts/%s/timeline?limit=2%s%s", host1,
                 cursor[0] ? "&cursor=" : "", cursor);
        doc = apitest_get(&g_t, target, 200);
        total += json_array_size(json_object_get(doc, "events"));
        json_t *next = json_object_get(doc, "next_cursor");
        bool done = json_is_null(next);
        if (!done)
            snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(doc);
        if (done)
            break;
    }
    assert_int_equal(total, 10);

    doc = apitest_get(&g_t, "/api/v1/hosts/not-a-host/timeline", 400);
    json_decref(doc);
}

/* ---- top lists ------------------------------------------------------------ */

static void test_top_talkers_and_domains_apply_k(void **state)
{
    (void)state;
    json_t *doc = apitest_get(&g_t, "/api/v1/top/talkers?limit=3", 200);
    json_t *rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(int_at(doc, "k_threshold"), 5);
    assert_int_equal(int_at(doc, "suppressed_groups"), 0);
    /* Largest talker first: host 7 sends flow 41, the biggest. */
    char host7[FV_ENDPOINT_TEXT_MAX];
    host_text(7, host7);
    json_t *first = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(first, "host")), host7);
    assert_true(int_at(first, "bytes") >= int_at(json_array_get(rows, 1), "bytes"));
    json_decref(doc);

    /* One hour holds only one host: fewer than k, nothing shown. */
    doc = apitest_get(&g_t, "/api/v1/top/talkers?from=2026-11-30T08:00:00Z&to=2026-11-30T08:30:00Z",
                      200);
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 0);
    assert_int_equal(int_at(doc, "suppressed_groups"), 1);
    json_decref(doc);

    doc = apitest_get(&g_t, "/api/v1/top/domains", 200);
    rows = json_object_get(doc, "rows");
    /* example.org: 6 hosts, 7 queries (the response is not a query);
     * example.net: 1 host, suppressed. */
    assert_int_equal(json_array_size(rows), 1);
    first = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(first, "domain")), "example.org");
    assert_int_equal(int_at(first, "queries"), 7);
    assert_int_equal(int_at(first, "hosts"), 6);
    assert_int_equal(int_at(doc, "suppressed_groups"), 1);
    json_decref(doc);
}

/* ---- series --------------------------------------------------------------- */

static void test_series_sums_aggregates_per_step(void **state)
{
    (void)state;
    json_t *doc = apitest_get(
        &g_t, "/api/v1/series?metric=bytes&step=1h&from=2026-11-30T08:00:00Z&to=2026-11-30T11:00:00Z",
        200);
    assert_string_equal(json_string_value(json_object_get(doc, "source")), "aggregates");
    assert_int_equal(int_at(doc, "step"), 3600);
    json_t *points = json_object_get(doc, "points");
    /* 08, 09, 10, 11: 4500, 0, 2000, 0 */
    static const json_int_t want[4] = {4500, 0, 2000, 0};
    assert_int_equal(json_array_size(points), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *p = json_array_get(points, i);
        assert_int_equal(json_integer_value(json_array_get(p, 0)),
                         (json_int_t)(T0_US / US + i * 3600));
        assert_int_equal(json_integer_value(json_array_get(p, 1)), want[i]);
    }
    json_decref(doc);

    doc = apitest_get(&g_t, "/api/v1/series?metric=flows&step=1d", 200);
    points = json_object_get(doc, "points");
    assert_int_equal(json_array_size(points), 1);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(points, 0), 1)), 7);
    json_decref(doc);

    /* 5-minute steps come from the flow records: flow 0 at 08:00. */
    doc = apitest_get(&g_t,
                      "/api/v1/series?metric=packets&step=5m&from=2026-11-30T08:00:00Z&to=2026-"
                      "11-30T08:10:00Z",
                      200);
    assert_string_equal(json_string_value(json_object_get(doc, "source")), "flows");
    points = json_object_get(doc, "points");
    assert_int_equal(json_array_size(points), 3);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(points, 0), 1)), 15);
    json_decref(doc);

    /* Alerts per day: the beacon and the scan (the merged repeat is one
     * alert), both on the day of their traffic, not on the day they were
     * raised. */
    doc = apitest_get(&g_t, "/api/v1/series?metric=alerts&step=1d", 200);
    points = json_object_get(doc, "points");
    json_int_t sum = 0;
    size_t i;
    json_t *p;
    json_array_foreach(points, i, p) sum += json_integer_value(json_array_get(p, 1));
    assert_int_equal(sum, 2);
    json_decref(doc);
    doc = apitest_get(&g_t,
                      "/api/v1/series?metric=alerts&step=1d&from=2026-11-30T00:00:00Z&to=2026-"
                      "11-30T23:59:59Z",
                      200);
    points = json_object_get(doc, "points");
    sum = 0;
    json_array_foreach(points, i, p) sum += json_integer_value(json_array_get(p, 1));
    assert_int_equal(sum, 2);
    json_decref(doc);
    doc = apitest_get(&g_t,
                      "/api/v1/series?metric=alerts&step=1h&from=2026-12-01T00:00:00Z&to=2026-"
                      "12-01T23:59:59Z",
                      200);
    points = json_object_get(doc, "points");
    sum = 0;
    json_array_foreach(points, i, p) sum += json_integer_value(json_array_get(p, 1));
    assert_int_equal(sum, 0);
    json_decref(doc);

    doc = apitest_get(&g_t, "/api/v1/series?step=5m&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
                      400);
    json_decref(doc);
}

/* ---- alert detail and life cycle ------------------------------------------ */

static void test_alert_detail_lists_its_records(void **state)
{
    (void)state;
    char target[128];
    snprintf(target, sizeof target, "/api/v1/alerts/%llu", (unsigned long long)g_beacon_id);
    json_t *doc = apitest_get(&g_t, target, 200);
    json_t *alert = json_object_get(doc, "alert");
    assert_string_equal(json_string_value(json_object_get(alert, "detector")), "beacon");
    /* Host 1's flows between 08:00 and 19:00 are flows 0 and 7; flow 7
     * goes to 203.0.113.9, not the alert's peer, and flow 14 starts at
     * 22:00, after the alert's span. */
    json_t *records = json_object_get(doc, "records");
    assert_int_equal(json_array_size(records), 1);
    char host1[FV_ENDPOINT_TEXT_MAX];
    host_text(1, host1);
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        assert_string_equal(json_string_value(json_object_get(rec, "src")), host1);
        assert_string_equal(json_string_value(json_object_get(rec, "dst")), "198.51.100.7");
    }
    json_decref(doc);

    doc = apitest_get(&g_t, "/api/v1/alerts/99", 404);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/alerts/abc", 400);
    json_decref(doc);
    doc = apitest_get(&g_t, "/api/v1/alerts/0", 400);
    json_decref(doc);
}

/* Count audit entries with ACTION and ACTOR. */
typedef struct audit_count {
    const char *action, *actor, *object;
    unsigned n;
} audit_count;

static bool audit_count_fn(void *ctx, const store_audit_entry *e)
{
    audit_count *c = ctx;
    if (strcmp(e->action, c->action) == 0 && strcmp(e->actor, c->actor) == 0 &&
        strcmp(e->object, c->object) == 0)
        c->n++;
    return true;
}

static void test_alert_patch_follows_life_cycle(void **state)
{
    (void)state;
    char target[128], object[64];
    snprintf(target, sizeof target, "/api/v1/alerts/%llu", (unsigned long long)g_scan_id);
    snprintf(object, sizeof object, "alerts/%llu", (unsigned long long)g_scan_id);

    /* Bad bodies first: nothing changes. */
    static const char *const bad[] = {
        "[1]",
        "{\"state\": \"new\"}",
        "{\"state\": \"done\"}",
        "{\"state\": \"acknowledged\", \"colour\": 1}",
        "{\"state\": \"acknowledged\", \"note\": 5}",
        "{\"state\": \"closed\"}",
        "{\"state\": \"closed\", \"note\": \"\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST, bad[i], 400);
        json_decref(doc);
    }

    /* Control characters (BEL, ESC, DEL) are a 400 naming the position,
     * never a store error. */
    static const struct {
        const char *body;
        const char *message;
    } controls[] = {
        {"{\"state\": \"acknowledged\", \"note\": \"\\u0007\"}", "U+0007 at character 1"},
        {"{\"state\": \"acknowledged\", \"note\": \"ok \\u001b[31m\"}",
         "U+001B at character 4"},
        {"{\"state\": \"acknowledged\", \"note\": \"\\u00e9\\u007f\"}", "U+007F at character 2"},
    };
    for (size_t i = 0; i < sizeof controls / sizeof controls[0]; i++) {
        json_t *doc = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST, controls[i].body, 400);
        assert_string_equal(json_string_value(json_object_get(doc, "error")), "invalid_body");
        const char *message = json_string_value(json_object_get(doc, "message"));
        assert_non_null(message);
        assert_non_null(strstr(message, controls[i].message));
        json_decref(doc);
    }

    /* A closing note of only white space says nothing. */
    json_t *blank = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST,
                                 "{\"state\": \"closed\", \"note\": \" \\t\\n \"}", 400);
    assert_string_equal(json_string_value(json_object_get(blank, "error")), "note_required");
    json_decref(blank);

    json_t *doc = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST,
                               "{\"state\": \"acknowledged\", \"note\": \"looking\"}", 200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "acknowledged");
    assert_string_equal(json_string_value(json_object_get(doc, "state_changed_by")),
                        "analyst-token");
    assert_string_equal(json_string_value(json_object_get(doc, "note")), "looking");
    assert_false(json_is_null(json_object_get(doc, "state_changed_at")));
    json_decref(doc);

    doc = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST, "{\"state\": \"acknowledged\"}",
                       409);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "invalid_transition");
    json_decref(doc);

    /* Compliance officers may not change alerts. */
    apitest_reply r;
    apitest_http(&g_t, "PATCH", target, APITEST_COMPLIANCE,
                 "{\"state\": \"closed\", \"note\": \"x\"}", &r);
    assert_int_equal(r.status, 403);
    apitest_reply_free(&r);

    /* A note of 1001 characters is too long. */
    char *body = malloc(1100);
    assert_non_null(body);
    int n = snprintf(body, 1100, "{\"state\": \"closed\", \"note\": \"");
    memset(body + n, 'y', 1001);
    snprintf(body + n + 1001, 1100 - (size_t)n - 1001, "\"}");
    doc = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST, body, 400);
    json_decref(doc);
    free(body);

    doc = apitest_json(&g_t, "PATCH", target, APITEST_ADMIN,
                       "{\"state\": \"closed\", \"note\": \"lab scanner, approved \\u00e9\"}",
                       200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "closed");
    assert_string_equal(json_string_value(json_object_get(doc, "state_changed_by")),
                        "admin-token");
    assert_string_equal(json_string_value(json_object_get(doc, "note")),
                        "lab scanner, approved \xc3\xa9");
    json_decref(doc);

    doc = apitest_json(&g_t, "PATCH", target, APITEST_ANALYST,
                       "{\"state\": \"acknowledged\"}", 409);
    json_decref(doc);
    doc = apitest_json(&g_t, "PATCH", "/api/v1/alerts/12345", APITEST_ANALYST,
                       "{\"state\": \"acknowledged\"}", 404);
    json_decref(doc);

    /* The list shows the new state; both changes are audited by name. */
    doc = apitest_get(&g_t, "/api/v1/alerts?state=closed", 200);
    assert_int_equal(records_count(doc), 1);
    json_decref(doc);
    audit_count c1 = {"alert.state_change", "analyst-token", object, 0};
    audit_count c2 = {"alert.state_change", "admin-token", object, 0};
    assert_int_equal(store_audit_each(g_t.store, 0, STORE_AUDIT_LIMIT_MAX, false,
                                      audit_count_fn, &c1, NULL),
                     FV_OK);
    assert_int_equal(store_audit_each(g_t.store, 0, STORE_AUDIT_LIMIT_MAX, false,
                                      audit_count_fn, &c2, NULL),
                     FV_OK);
    assert_int_equal(c1.n, 1);
    assert_int_equal(c2.n, 1);
}

/* ---- metrics -------------------------------------------------------------- */

/* Find the value of the sample line "NAME LABELS VALUE" in TEXT. */
static bool metric_value(const char *text, const char *name_labels, double *value)
{
    size_t len = strlen(name_labels);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, name_labels, len) == 0 && line[len] == ' ') {
            *value = strtod(line + len + 1, NULL);
            return true;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* Check every line is a comment ("# HELP name text" / "# TYPE name
 * counter|gauge") or a sample "name{label=\"value\",...} number". */
static void check_exposition(const char *text)
{
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        assert_non_null(end); /* every line ends with a newline */
        size_t n = (size_t)(end - line);
        char buf[512];
        assert_true(n < sizeof buf);
        memcpy(buf, line, n);
        buf[n] = '\0';
        if (buf[0] == '#') {
            char kind[8], name[128], rest[400];
            assert_int_equal(sscanf(buf, "# %7s %127s %399[^\n]", kind, name, rest), 3);
            assert_true(strcmp(kind, "HELP") == 0 || strcmp(kind, "TYPE") == 0);
            if (strcmp(kind, "TYPE") == 0)
                assert_true(strcmp(rest, "counter") == 0 || strcmp(rest, "gauge") == 0);
        } else {
            size_t i = 0;
            while ((buf[i] >= 'a' && buf[i] <= 'z') || buf[i] == '_')
                i++;
            assert_true(i > 0);
            if (buf[i] == '{') {
                char *close = strchr(buf + i, '}');
                assert_non_null(close);
                /* label="value" pairs, no quote inside values */
                for (char *p = buf + i + 1; p < close;) {
                    char *eq = strchr(p, '=');
                    assert_true(eq != NULL && eq < close && eq[1] == '"');
                    char *q = strchr(eq + 2, '"');
                    assert_true(q != NULL && q < close);
                    p = q[1] == ',' ? q + 2 : q + 1;
                }
                i = (size_t)(close - buf) + 1;
            }
            assert_true(buf[i] == ' ');
            char *num_end = NULL;
            (void)strtod(buf + i + 1, &num_end);
            assert_true(num_end != buf + i + 1 && *num_end == '\0');
        }
        line = end + 1;
    }
}

static void test_metrics_exposition_parses(void **state)
{
    (void)state;
    apitest_reply r;

    /* Make one 404 so the per-code counters have two codes. */
    json_decref(apitest_get(&g_t, "/api/v1/no-such-route", 404));

    apitest_http(&g_t, "GET", "/metrics", APITEST_ADMIN, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.raw, "Content-Type: text/plain; version=0.0.4"));
    check_exposition(r.body);
    static const char *const names[] = {
        "flowveil_packets_total",        "flowveil_drops_total",
        "flowveil_flows_active",         "flowveil_records_written_total",
        "flowveil_sweeper_deleted_total", "flowveil_key_epoch_age_seconds",
        "flowveil_http_requests_total",   "flowveil_alerts",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char head[128];
        snprintf(head, sizeof head, "# TYPE %s ", names[i]);
        if (strstr(r.body, head) == NULL)
            fail_msg("metric %s missing", names[i]);
    }
    double v = 0;
    assert_true(metric_value(r.body, "flowveil_records_written_total{class=\"flows\"}", &v));
    assert_true(v == FLOWS);
    assert_true(metric_value(r.body, "flowveil_alerts{state=\"new\"}", &v));
    assert_true(v >= 1);
    assert_true(metric_value(r.body, "flowveil_http_requests_total{code=\"404\"}", &v));
    assert_true(v >= 1);
    assert_true(metric_value(r.body, "flowveil_drops_total{source=\"kernel\"}", &v));
    apitest_reply_free(&r);

    apitest_http(&g_t, "GET", "/metrics", APITEST_ANALYST, NULL, &r);
    assert_int_equal(r.status, 403);
    apitest_reply_free(&r);
    apitest_http(&g_t, "GET", "/metrics", APITEST_ANON, NULL, &r);
    assert_int_equal(r.status, 401);
    apitest_reply_free(&r);
}

/* ---- roles and methods ------------------------------------------------------ */

static void test_route_table_roles_are_enforced(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        apitest_role role;
        int status;
    } cases[] = {
        {"/api/v1/flows", APITEST_COMPLIANCE, 403},
        {"/api/v1/flows", APITEST_ANALYST, 200},
        {"/api/v1/series", APITEST_COMPLIANCE, 403},
        {"/api/v1/top/talkers", APITEST_COMPLIANCE, 403},
        {"/api/v1/audit", APITEST_ANALYST, 403},
        {"/api/v1/audit", APITEST_COMPLIANCE, 200},
        {"/api/v1/summary", APITEST_COMPLIANCE, 200},
        {"/api/v1/retention", APITEST_ANALYST, 200},
        {"/api/v1/flows", APITEST_ANON, 401},
        {"/api/v1/alerts/1", APITEST_ANON, 401},
        {"/api/v1/flows", APITEST_ADMIN, 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        apitest_reply r;
        apitest_http(&g_t, "GET", cases[i].target, cases[i].role, NULL, &r);
        if (r.status != cases[i].status)
            fail_msg("GET %s as role %d: %d, expected %d", cases[i].target, (int)cases[i].role,
                     r.status, cases[i].status);
        apitest_reply_free(&r);
    }
    assert_int_equal(api_route_permission("PATCH", "/api/v1/alerts/5"),
                     (int)(API_ROLE_ANALYST | API_ROLE_ADMIN));
    assert_int_equal(api_route_permission("HEAD", "/api/v1/audit"),
                     (int)(API_ROLE_COMPLIANCE | API_ROLE_ADMIN));
    assert_int_equal(api_route_permission("GET", "/api/v1/hosts/10.1.0.0/24/timeline"),
                     (int)(API_ROLE_ANALYST | API_ROLE_ADMIN));
    assert_int_equal(api_route_permission("DELETE", "/api/v1/alerts/5"), 0);
    assert_int_equal(api_route_permission("GET", "/api/v1/nothing"), 0);

    /* A known path with another method: 405 naming the methods. */
    json_t *doc = apitest_json(&g_t, "PATCH", "/api/v1/alerts", APITEST_ADMIN, "{}", 405);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), "method_not_allowed");
    json_decref(doc);
}

/* ---- the scan budget of a filtered page ------------------------------------ */

/* More flows than one filtered page may read (API_FILTER_SCAN_MAX). */
#define BIG_FLOWS (API_FILTER_SCAN_MAX + 10u)

static apitest g_big;

/* Flows of host 2, except the oldest and the newest, which belong to
 * host 5: a filter on host 5 matches two records 50,009 apart. */
static int big_setup(void **state)
{
    (void)state;
    apitest_set_now(STORED_US + 60 * US);
    apitest_open(&g_big);
    for (unsigned i = 0; i < BIG_FLOWS; i++) {
        fv_flow_record f = make_flow(0);
        f.first_us = T0_US + i * US;
        f.last_us = f.first_us;
        host_ep(&f.src, i == 0 || i == BIG_FLOWS - 1 ? 5 : 2);
        assert_int_equal(store_put(g_big.store, FV_CLASS_FLOW, &f, STORED_US), FV_OK);
    }
    assert_int_equal(store_commit(g_big.store), FV_OK);
    apitest_start(&g_big);
    return 0;
}

static int big_teardown(void **state)
{
    (void)state;
    apitest_close(&g_big);
    return 0;
}

/* The default roles map of the policy is the route table: a role reads
 * an item by default exactly when the table lets it use the routes that
 * read the item. `policy check` relies on this to name the items that a
 * roles map lists but the API never serves. */
static void test_default_roles_match_route_table(void **state)
{
    (void)state;
    static const char text[] = "version: 1\nzones: []\n";
    pol_policy *policy = NULL;
    char err[512];
    assert_int_equal(pol_load_buffer("defaults.yaml", text, sizeof text - 1, &policy, err,
                                     sizeof err),
                     FV_OK);
    static const struct {
        unsigned bit;
        pol_role role;
    } roles[] = {
        {API_ROLE_ANALYST, POL_ROLE_ANALYST},
        {API_ROLE_COMPLIANCE, POL_ROLE_COMPLIANCE},
        {API_ROLE_ADMIN, POL_ROLE_ADMIN},
    };
    size_t count = 0;
    const api_route *routes = api_route_table(&count);
    size_t checked = 0;
    for (size_t i = 0; i < count; i++) {
        const char *item = api_route_policy_item(routes[i].pattern);
        if (item == NULL)
            continue;
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++) {
            bool table = (routes[i].roles & roles[r].bit) != 0;
            bool policy_default = pol_role_may_read(policy, roles[r].role, item);
            if (table != policy_default)
                fail_msg("%s %s (item %s): the route table %s role %s, the default roles "
                         "map %s",
                         routes[i].method, routes[i].pattern, item, table ? "allows" : "denies",
                         pol_role_name(roles[r].role), policy_default ? "lists it" : "does not");
            checked++;
        }
    }
    /* Every route but health, summary, login, logout, me, users and
     * metrics reads an item. */
    assert_true(checked >= 3 * 20);
    pol_destroy(&policy);
}

static void test_filtered_page_stops_at_scan_budget(void **state)
{
    (void)state;
    char host5[FV_ENDPOINT_TEXT_MAX], target[256];
    host_text(5, host5);

    snprintf(target, sizeof target, "/api/v1/flows?limit=5&host=%s", host5);
    json_t *doc = apitest_json(&g_big, "GET", target, APITEST_ANALYST, NULL, 200);
    /* The newest match, then the budget ends the page before the oldest. */
    assert_int_equal(records_count(doc), 1);
    assert_true(json_is_true(json_object_get(doc, "scan_limited")));
    json_t *next = json_object_get(doc, "next_cursor");
    assert_true(json_is_string(next));
    uint64_t first_id = (uint64_t)int_at(json_array_get(json_object_get(doc, "records"), 0), "id");

    snprintf(target, sizeof target, "/api/v1/flows?limit=5&host=%s&cursor=%s", host5,
             json_string_value(next));
    json_decref(doc);
    doc = apitest_json(&g_big, "GET", target, APITEST_ANALYST, NULL, 200);
    /* The continuation finds the oldest match and ends the scan. */
    assert_int_equal(records_count(doc), 1);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    assert_null(json_object_get(doc, "scan_limited"));
    uint64_t second_id =
        (uint64_t)int_at(json_array_get(json_object_get(doc, "records"), 0), "id");
    assert_true(second_id < first_id);
    json_decref(doc);

    /* Unfiltered pages never hit the budget. */
    doc = apitest_json(&g_big, "GET", "/api/v1/flows?limit=1000", APITEST_ANALYST, NULL, 200);
    assert_int_equal(records_count(doc), 1000);
    assert_null(json_object_get(doc, "scan_limited"));
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_filters_select_matching_records),
        cmocka_unit_test(test_domain_filter_matches_suffix),
        cmocka_unit_test(test_alert_filters_and_life_cycle_fields),
        cmocka_unit_test(test_bad_filter_values_name_parameter_and_choices),
        cmocka_unit_test(test_filtered_paging_returns_each_once),
        cmocka_unit_test(test_sort_by_bytes_orders_the_page),
        cmocka_unit_test(test_timeline_merges_classes_in_time_order),
        cmocka_unit_test(test_top_talkers_and_domains_apply_k),
        cmocka_unit_test(test_series_sums_aggregates_per_step),
        cmocka_unit_test(test_alert_detail_lists_its_records),
        cmocka_unit_test(test_alert_patch_follows_life_cycle),
        cmocka_unit_test(test_metrics_exposition_parses),
        cmocka_unit_test(test_route_table_roles_are_enforced),
    };
    const struct CMUnitTest big[] = {
        cmocka_unit_test(test_filtered_page_stops_at_scan_budget),
        cmocka_unit_test(test_default_roles_match_route_table),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return failed + cmocka_run_group_tests(big, big_setup, big_teardown);
}
