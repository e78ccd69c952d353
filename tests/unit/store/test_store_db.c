/*
 * test_store_db.c: the LMDB store, run against a real environment in a
 * temporary directory: queries and cursors, retention, sweeps, reopening
 * and map growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cmocka.h>

#include "store.h"
#include "store_internal.h"
#include "store_records.h"
#include "testutil.h"

#define HOUR_US (3600ull * 1000000ull)
#define DAY_S 86400ull
/* A fixed stored-at time: 2026-01-01T00:00:00Z in microseconds. */
#define T0_US 1767225600000000ull

typedef struct fixture {
    char dir[512];
    store_env *env;
} fixture;

static int fixture_setup(void **state)
{
    fixture *fx = test_calloc(1, sizeof *fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    char err[512];
    int rc = store_open(fx->dir, 0, &fx->env, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "store_open failed: %s\n", err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;
    store_close(&fx->env);
    tu_remove_tree(fx->dir);
    test_free(fx);
    return 0;
}

/* Records collected by a query callback. */
typedef struct collected {
    fv_record recs[64];
    size_t n;
    size_t stop_after;  /* return false after this many; 0 = never */
} collected;

static bool collect(void *ctx, const fv_record *rec)
{
    collected *c = ctx;
    if (c->n < sizeof c->recs / sizeof c->recs[0])
        c->recs[c->n] = *rec;
    c->n++;
    return c->stop_after == 0 || c->n < c->stop_after;
}

static bool count_only(void *ctx, const fv_record *rec)
{
    (void)rec;
    (*(uint64_t *)ctx)++;
    return true;
}

/* Queue flow records with seeds FIRST .. FIRST + N - 1, stored at
 * NOW_US, and commit. */
static void put_flows(store_env *env, uint32_t first, uint32_t n, uint64_t now_us)
{
    for (uint32_t i = 0; i < n; i++) {
        fv_flow_record f;
        rec_fill_flow(&f, first + i);
        assert_int_equal(store_put(env, FV_CLASS_FLOW, &f, now_us), FV_OK);
    }
    assert_int_equal(store_commit(env), FV_OK);
}

static void put_dns(store_env *env, uint32_t first, uint32_t n, uint64_t now_us)
{
    for (uint32_t i = 0; i < n; i++) {
        fv_dns_record d;
        rec_fill_dns(&d, first + i);
        assert_int_equal(store_put(env, FV_CLASS_DNS, &d, now_us), FV_OK);
    }
    assert_int_equal(store_commit(env), FV_OK);
}

static uint64_t count_records(store_env *env, fv_class cls, uint64_t now_us)
{
    uint64_t total = 0, cursor = 0;
    do {
        store_query q = {.cls = cls, .after_id = cursor, .limit = STORE_QUERY_LIMIT_MAX};
        assert_int_equal(store_query_run(env, &q, now_us, count_only, &total, &cursor), FV_OK);
    } while (cursor != 0);
    return total;
}

/* ---------------------------------------------------------------------- */

static void test_query_pages_forward_in_order(void **state)
{
    fixture *fx = *state;
    for (uint32_t i = 1; i <= 10; i++)
        put_flows(fx->env, i, 1, T0_US + i);

    collected c = {0};
    uint64_t cursor = 0;
    uint32_t expected_seed = 1;
    size_t pages = 0;
    do {
        c.n = 0;
        store_query q = {.cls = FV_CLASS_FLOW, .after_id = cursor, .limit = 4};
        assert_int_equal(store_query_run(fx->env, &q, T0_US + 100, collect, &c, &cursor),
                         FV_OK);
        pages++;
        for (size_t i = 0; i < c.n; i++) {
            fv_flow_record want;
            rec_fill_flow(&want, expected_seed);
            assert_int_equal(c.recs[i].cls, FV_CLASS_FLOW);
            assert_int_equal(c.recs[i].id, T0_US + expected_seed);
            assert_int_equal(c.recs[i].stored_us, c.recs[i].id);
            assert_memory_equal(&c.recs[i].u.flow, &want, sizeof want);
            expected_seed++;
        }
        if (cursor != 0)
            assert_int_equal(cursor, c.recs[c.n - 1].id);
    } while (cursor != 0);

    assert_int_equal(expected_seed, 11);
    assert_int_equal(pages, 3);     /* 4 + 4 + 2 */
}

static void test_query_pages_newest_first(void **state)
{
    fixture *fx = *state;
    for (uint32_t i = 1; i <= 7; i++)
        put_dns(fx->env, i, 1, T0_US + i);

    collected c = {0};
    uint64_t cursor = 0;
    uint32_t expected_seed = 7;
    do {
        c.n = 0;
        store_query q = {.cls = FV_CLASS_DNS, .newest_first = true, .before_id = cursor,
                         .limit = 3};
        assert_int_equal(store_query_run(fx->env, &q, T0_US + 100, collect, &c, &cursor),
                         FV_OK);
        for (size_t i = 0; i < c.n; i++) {
            assert_int_equal(c.recs[i].id, T0_US + expected_seed);
            assert_int_equal(c.recs[i].u.dns.ts_us, (uint64_t)expected_seed * 1000000u);
            expected_seed--;
        }
    } while (cursor != 0);
    assert_int_equal(expected_seed, 0);
}

/* An exact page at the end returns cursor 0, not an empty extra page. */
static void test_query_cursor_zero_at_exact_end(void **state)
{
    fixture *fx = *state;
    put_flows(fx->env, 1, 4, T0_US);

    collected c = {0};
    uint64_t cursor = 99;
    store_query q = {.cls = FV_CLASS_FLOW, .limit = 4};
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, &cursor), FV_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(cursor, 0);
}

static void test_query_stops_when_callback_returns_false(void **state)
{
    fixture *fx = *state;
    put_flows(fx->env, 1, 5, T0_US);

    collected c = {.stop_after = 2};
    uint64_t cursor = 0;
    store_query q = {.cls = FV_CLASS_FLOW, .limit = 10};
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, &cursor), FV_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(cursor, c.recs[1].id);
}

static void test_query_filters_by_traffic_time(void **state)
{
    fixture *fx = *state;
    /* Flow seed s spans [s, s + 0.25] seconds of traffic time. */
    put_flows(fx->env, 1, 10, T0_US);
    put_dns(fx->env, 1, 10, T0_US);

    /* Window [3.1 s, 6 s]: flows 3 (ends at 3.25 s) through 6 overlap it. */
    collected c = {0};
    store_query q = {.cls = FV_CLASS_FLOW, .from_us = 3100000, .to_us = 6000000, .limit = 100};
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.recs[0].u.flow.first_us, 3000000);
    assert_int_equal(c.recs[3].u.flow.first_us, 6000000);

    /* DNS ts_us must lie in [3.1 s, 6 s]: seeds 4, 5 and 6. */
    c.n = 0;
    q.cls = FV_CLASS_DNS;
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.recs[0].u.dns.ts_us, 4000000);
    assert_int_equal(c.recs[2].u.dns.ts_us, 6000000);

    /* Only a lower bound: to_us 0 is unbounded. */
    c.n = 0;
    q.from_us = 9000000;
    q.to_us = 0;
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
    assert_int_equal(c.n, 2);
}

static void test_query_rejects_limit_out_of_range(void **state)
{
    fixture *fx = *state;
    collected c = {0};
    store_query q = {.cls = FV_CLASS_FLOW, .limit = 0};
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_ERR_INVALID);
    q.limit = STORE_QUERY_LIMIT_MAX + 1;
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_ERR_INVALID);
    q.limit = STORE_QUERY_LIMIT_MAX;
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
}

static void test_ids_ascend_with_equal_or_earlier_now(void **state)
{
    fixture *fx = *state;
    put_flows(fx->env, 1, 5, T0_US);
    put_flows(fx->env, 6, 2, T0_US - 1000);    /* clock stepped back */
    put_dns(fx->env, 1, 2, T0_US);            /* separate sequence per class */

    collected c = {0};
    store_query q = {.cls = FV_CLASS_FLOW, .limit = 100};
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
    assert_int_equal(c.n, 7);
    assert_int_equal(c.recs[0].id, T0_US);
    for (size_t i = 1; i < c.n; i++)
        assert_true(c.recs[i].id > c.recs[i - 1].id);
    assert_int_equal(c.recs[6].u.flow.first_us, 7000000);

    c.n = 0;
    q.cls = FV_CLASS_DNS;
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.recs[0].id, T0_US);
    assert_int_equal(c.recs[1].id, T0_US + 1);
}

static void test_retention_hides_expired_before_sweep(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, DAY_S), FV_OK);
    assert_int_equal(store_retention_s(fx->env, FV_CLASS_FLOW), DAY_S);
    put_flows(fx->env, 1, 3, T0_US);

    assert_int_equal(count_records(fx->env, FV_CLASS_FLOW, T0_US + 23 * HOUR_US), 3);
    assert_int_equal(count_records(fx->env, FV_CLASS_FLOW, T0_US + 25 * HOUR_US), 0);

    /* Newest-first walks stop at the cutoff as well. */
    collected c = {0};
    store_query q = {.cls = FV_CLASS_FLOW, .newest_first = true, .limit = 10};
    assert_int_equal(store_query_run(fx->env, &q, T0_US + 25 * HOUR_US, collect, &c, NULL),
                     FV_OK);
    assert_int_equal(c.n, 0);

    /* Other classes have no limit and keep everything. */
    put_dns(fx->env, 1, 2, T0_US);
    assert_int_equal(count_records(fx->env, FV_CLASS_DNS, T0_US + 1000 * 24 * HOUR_US), 2);
}

static void test_retention_rejects_over_maximum(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_TLS, STORE_RETENTION_MAX_S + 1),
                     FV_ERR_INVALID);
    assert_int_equal(store_retention_s(fx->env, FV_CLASS_TLS), 0);
}

static void test_sweep_deletes_exactly_expired(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, DAY_S), FV_OK);
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_DNS, 3 * DAY_S), FV_OK);

    put_flows(fx->env, 1, 5, T0_US);                  /* expire at T0 + 1 day */
    put_dns(fx->env, 1, 3, T0_US);                    /* expire at T0 + 3 days */
    put_flows(fx->env, 6, 4, T0_US + 48 * HOUR_US);
    put_dns(fx->env, 4, 2, T0_US + 48 * HOUR_US);

    uint64_t sweep_at = T0_US + 49 * HOUR_US + 1;
    store_class_status st;
    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_FLOW, sweep_at, &st), FV_OK);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.expired_pending, 5);
    assert_int_equal(st.oldest_stored_us, T0_US);

    store_sweep_result res;
    assert_int_equal(store_sweep(fx->env, sweep_at, 0, 0, &res), FV_OK);
    assert_true(res.complete);
    assert_int_equal(res.deleted[FV_CLASS_FLOW], 5);
    assert_int_equal(res.deleted[FV_CLASS_DNS], 0);   /* dns keeps 3 days */
    assert_int_equal(res.deleted[FV_CLASS_TLS], 0);

    /* Survivors are untouched. */
    assert_int_equal(count_records(fx->env, FV_CLASS_FLOW, sweep_at), 4);
    assert_int_equal(count_records(fx->env, FV_CLASS_DNS, sweep_at), 5);

    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_FLOW, sweep_at, &st), FV_OK);
    assert_int_equal(st.retention_s, DAY_S);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.expired_pending, 0);
    assert_int_equal(st.oldest_stored_us, T0_US + 48 * HOUR_US);
    assert_int_equal(st.newest_stored_us, T0_US + 48 * HOUR_US + 3);
    assert_int_equal(st.last_sweep_us, sweep_at);
    assert_int_equal(st.last_sweep_deleted, 5);
    assert_int_equal(st.total_deleted, 5);
    assert_true(st.bytes > 0);

    /* At T0 + 4 days the later flows and the dns records from T0 expire. */
    uint64_t later = T0_US + 96 * HOUR_US;
    assert_int_equal(store_sweep(fx->env, later, 0, 0, &res), FV_OK);
    assert_int_equal(res.deleted[FV_CLASS_FLOW], 4);
    assert_int_equal(res.deleted[FV_CLASS_DNS], 3);
    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_FLOW, later, &st), FV_OK);
    assert_int_equal(st.records, 0);
    assert_int_equal(st.last_sweep_deleted, 4);
    assert_int_equal(st.total_deleted, 9);
    assert_int_equal(st.oldest_stored_us, 0);
    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_DNS, later, &st), FV_OK);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.total_deleted, 3);
}

static void test_sweep_budget_stops_and_resumes(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, DAY_S), FV_OK);
    put_flows(fx->env, 1, 10, T0_US);
    put_flows(fx->env, 11, 1, T0_US + 48 * HOUR_US);
    uint64_t sweep_at = T0_US + 48 * HOUR_US;

    store_sweep_result res;
    assert_int_equal(store_sweep(fx->env, sweep_at, 3, 2, &res), FV_OK);
    assert_false(res.complete);
    assert_int_equal(res.transactions, 2);
    assert_int_equal(res.deleted[FV_CLASS_FLOW], 6);

    store_class_status st;
    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_FLOW, sweep_at, &st), FV_OK);
    assert_int_equal(st.expired_pending, 4);
    assert_int_equal(st.records, 1);

    assert_int_equal(store_sweep(fx->env, sweep_at, 3, 0, &res), FV_OK);
    assert_true(res.complete);
    assert_int_equal(res.deleted[FV_CLASS_FLOW], 4);
    assert_int_equal(count_records(fx->env, FV_CLASS_FLOW, 0), 1);

    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_FLOW, sweep_at, &st), FV_OK);
    assert_int_equal(st.expired_pending, 0);
    assert_int_equal(st.total_deleted, 10);
    /* The resumed call finishes the pass that the first call began. */
    assert_int_equal(st.last_sweep_deleted, 10);
}

/* A budget of one transaction per call must still reach the later
 * classes: each call resumes where the previous one stopped. */
static void test_sweep_budget_of_one_reaches_every_class(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, DAY_S), FV_OK);
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_DNS, DAY_S), FV_OK);
    put_flows(fx->env, 1, 5, T0_US);
    put_dns(fx->env, 1, 5, T0_US);
    uint64_t sweep_at = T0_US + 48 * HOUR_US;

    uint64_t flows = 0, dns = 0;
    bool complete = false;
    int calls = 0;
    while (!complete && calls < 100) {
        store_sweep_result res;
        assert_int_equal(store_sweep(fx->env, sweep_at, 2, 1, &res), FV_OK);
        assert_true(res.transactions <= 1);
        flows += res.deleted[FV_CLASS_FLOW];
        dns += res.deleted[FV_CLASS_DNS];
        complete = res.complete;
        calls++;
    }
    assert_true(complete);
    assert_int_equal(flows, 5);
    assert_int_equal(dns, 5);
    assert_int_equal(count_records(fx->env, FV_CLASS_FLOW, 0), 0);
    assert_int_equal(count_records(fx->env, FV_CLASS_DNS, 0), 0);

    store_class_status st;
    assert_int_equal(store_class_status_get(fx->env, FV_CLASS_DNS, sweep_at, &st), FV_OK);
    assert_int_equal(st.total_deleted, 5);
    assert_int_equal(st.last_sweep_deleted, 5);
}

static void test_counters_summed_across_commits(void **state)
{
    fixture *fx = *state;
    store_counters d1 = {.packets = 100, .bytes = 64000, .flows = 7, .files = 1,
                         .last_ingest_us = T0_US};
    store_counters d2 = {.packets = 5, .bytes = 300, .flows = 1, .files = 1,
                         .last_ingest_us = T0_US - 5};
    store_counters got;

    assert_int_equal(store_counters_add(fx->env, &d1), FV_OK);
    assert_int_equal(store_counters_get(fx->env, &got), FV_OK);
    assert_int_equal(got.packets, 0);   /* not committed yet */
    assert_int_equal(store_commit(fx->env), FV_OK);

    assert_int_equal(store_counters_add(fx->env, &d2), FV_OK);
    put_flows(fx->env, 1, 1, T0_US);    /* commits d2 with the record */
    assert_int_equal(store_counters_get(fx->env, &got), FV_OK);
    assert_int_equal(got.packets, 105);
    assert_int_equal(got.bytes, 64300);
    assert_int_equal(got.flows, 8);
    assert_int_equal(got.files, 2);
    assert_int_equal(got.last_ingest_us, T0_US);
}

static void test_rdonly_open_of_missing_dir_not_found(void **state)
{
    fixture *fx = *state;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-store", fx->dir);

    store_env *env = NULL;
    char err[1024];
    assert_int_equal(store_open(missing, STORE_RDONLY, &env, err, sizeof err),
                     FV_ERR_NOT_FOUND);
    assert_null(env);
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, "flowveil ingest"));

    /* Nothing was created. */
    struct stat st;
    assert_int_not_equal(stat(missing, &st), 0);
}

static void test_rdonly_rejects_writes(void **state)
{
    fixture *fx = *state;
    put_flows(fx->env, 1, 1, T0_US);

    store_env *ro = NULL;
    char err[1024];
    assert_int_equal(store_open(fx->dir, STORE_RDONLY, &ro, err, sizeof err), FV_OK);
    fv_flow_record f;
    rec_fill_flow(&f, 2);
    assert_int_equal(store_put(ro, FV_CLASS_FLOW, &f, T0_US), FV_ERR_STATE);
    assert_int_equal(store_set_retention(ro, FV_CLASS_FLOW, 60), FV_ERR_STATE);
    store_sweep_result res;
    assert_int_equal(store_sweep(ro, T0_US, 0, 0, &res), FV_ERR_STATE);
    assert_int_equal(count_records(ro, FV_CLASS_FLOW, T0_US), 1);
    store_close(&ro);
    assert_null(ro);
}

static void test_reopen_keeps_records_and_retention(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_HTTP, 7 * DAY_S), FV_OK);
    for (uint32_t i = 1; i <= 3; i++) {
        fv_http_record h;
        rec_fill_http(&h, i);
        assert_int_equal(store_put(fx->env, FV_CLASS_HTTP, &h, T0_US), FV_OK);
    }
    store_close(&fx->env);      /* commits the queue */
    assert_null(fx->env);

    char err[1024];
    store_env *ro = NULL;
    assert_int_equal(store_open(fx->dir, STORE_RDONLY, &ro, err, sizeof err), FV_OK);
    assert_int_equal(store_retention_s(ro, FV_CLASS_HTTP), 7 * DAY_S);
    assert_int_equal(count_records(ro, FV_CLASS_HTTP, T0_US), 3);
    store_close(&ro);

    /* A writer reopened with an earlier clock still appends after the
     * last stored id. */
    assert_int_equal(store_open(fx->dir, 0, &fx->env, err, sizeof err), FV_OK);
    fv_http_record h;
    rec_fill_http(&h, 4);
    assert_int_equal(store_put(fx->env, FV_CLASS_HTTP, &h, T0_US - HOUR_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);

    collected c = {0};
    store_query q = {.cls = FV_CLASS_HTTP, .limit = 10};
    assert_int_equal(store_query_run(fx->env, &q, T0_US, collect, &c, NULL), FV_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.recs[3].id, T0_US + 3);
    assert_string_equal(c.recs[3].u.http.host, h.host);
}

/* The writer grows the map on MDB_MAP_FULL, and a reader opened before
 * the growth adopts the new size. */
typedef struct counter_list {
    char names[8][80];
    uint64_t values[8];
    size_t count;
} counter_list;

static bool collect_counter(void *ctx, const char *name, uint64_t value)
{
    counter_list *l = ctx;
    assert_true(l->count < 8);
    snprintf(l->names[l->count], sizeof l->names[0], "%s", name);
    l->values[l->count++] = value;
    return true;
}

static void test_capture_counters_sum_across_runs(void **state)
{
    fixture *fx = *state;
    static const char *const names[] = {"packets", "dns_malformed", "tls_hellos"};
    const uint64_t first[] = {100, 2, 0};
    const uint64_t second[] = {50, 3, 0};

    assert_int_equal(store_capture_counters_add(fx->env, names, first, 3), FV_OK);
    assert_int_equal(store_capture_counters_add(fx->env, names, second, 3), FV_OK);

    /* Zero counts are not stored; the rest come back summed, by name. */
    counter_list got = {0};
    assert_int_equal(store_capture_counters_each(fx->env, collect_counter, &got), FV_OK);
    assert_int_equal(got.count, 2);
    assert_string_equal(got.names[0], "dns_malformed");
    assert_int_equal(got.values[0], 5);
    assert_string_equal(got.names[1], "packets");
    assert_int_equal(got.values[1], 150);
}

static void test_capture_counters_reject_bad_name(void **state)
{
    fixture *fx = *state;
    static const char *const bad[] = {"Packets/../x"};
    const uint64_t one[] = {1};

    assert_int_equal(store_capture_counters_add(fx->env, bad, one, 1), FV_ERR_INVALID);
    counter_list got = {0};
    assert_int_equal(store_capture_counters_each(fx->env, collect_counter, &got), FV_OK);
    assert_int_equal(got.count, 0);
}

static void test_map_grows_on_map_full(void **state)
{
    fixture *fx = *state;
    store_close(&fx->env);

    char dir[600];
    snprintf(dir, sizeof dir, "%s/small", fx->dir);
    store_open_opts opts = {.map_initial_bytes = 256 * 1024};
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open_with_options(dir, 0, &opts, &env, err, sizeof err), FV_OK);
    size_t initial = env->map_bytes;

    store_env *ro = NULL;
    assert_int_equal(store_open(dir, STORE_RDONLY, &ro, err, sizeof err), FV_OK);

    /* 20,000 DNS records of about 100 bytes: several MB, far past the
     * 256 KiB map. Committing every 5,000 also runs the automatic
     * commit at 4,096 queued records. */
    const uint32_t total = 20000;
    for (uint32_t i = 1; i <= total; i++) {
        fv_dns_record d;
        rec_fill_dns(&d, i);
        assert_int_equal(store_put(env, FV_CLASS_DNS, &d, T0_US), FV_OK);
        if (i % 5000 == 0)
            assert_int_equal(store_commit(env), FV_OK);
    }
    assert_int_equal(store_commit(env), FV_OK);
    assert_true(env->map_bytes > initial);

    assert_int_equal(count_records(env, FV_CLASS_DNS, T0_US), total);
    assert_int_equal(count_records(ro, FV_CLASS_DNS, T0_US), total);
    assert_true(ro->map_bytes > initial);

    /* Check the newest record's contents. */
    collected c = {0};
    store_query q = {.cls = FV_CLASS_DNS, .newest_first = true, .limit = 1};
    assert_int_equal(store_query_run(ro, &q, T0_US, collect, &c, NULL), FV_OK);
    fv_dns_record want;
    rec_fill_dns(&want, total);
    assert_memory_equal(&c.recs[0].u.dns, &want, sizeof want);

    store_close(&ro);
    store_close(&env);
}

static void test_put_commits_at_queue_max(void **state)
{
    fixture *fx = *state;
    char err[1024];
    store_env *ro = NULL;
    put_flows(fx->env, 1, 1, T0_US);    /* creates data.mdb for the reader */
    assert_int_equal(store_open(fx->dir, STORE_RDONLY, &ro, err, sizeof err), FV_OK);

    for (uint32_t i = 2; i <= STORE_QUEUE_MAX; i++) {
        fv_flow_record f;
        rec_fill_flow(&f, i);
        assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US), FV_OK);
    }
    /* 4,095 queued: nothing new is visible to another handle yet. */
    assert_int_equal(count_records(ro, FV_CLASS_FLOW, T0_US), 1);

    fv_flow_record f;
    rec_fill_flow(&f, STORE_QUEUE_MAX + 1);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US), FV_OK);
    assert_int_equal(count_records(ro, FV_CLASS_FLOW, T0_US), STORE_QUEUE_MAX + 1);
    store_close(&ro);
}

/* At the map maximum the writer fails and refuses later writes. */
static void test_map_full_at_maximum_marks_failed(void **state)
{
    fixture *fx = *state;
    store_close(&fx->env);

    char dir[600];
    snprintf(dir, sizeof dir, "%s/capped", fx->dir);
    store_open_opts opts = {.map_initial_bytes = 256 * 1024, .map_max_bytes = 512 * 1024};
    char err[1024];
    store_env *env = NULL;
    assert_int_equal(store_open_with_options(dir, 0, &opts, &env, err, sizeof err), FV_OK);

    int rc = FV_OK;
    for (uint32_t i = 1; i <= 20000 && rc == FV_OK; i++) {
        fv_dns_record d;
        rec_fill_dns(&d, i);
        rc = store_put(env, FV_CLASS_DNS, &d, T0_US);
        if (rc == FV_OK && i % 1000 == 0)
            rc = store_commit(env);
    }
    assert_int_equal(rc, FV_ERR_FULL);

    fv_dns_record d;
    rec_fill_dns(&d, 1);
    assert_int_equal(store_put(env, FV_CLASS_DNS, &d, T0_US), FV_ERR_STATE);
    assert_int_equal(store_commit(env), FV_ERR_STATE);
    store_close(&env);
}

/* Resident KiB of this process's mappings of the file at PATH, found
 * in /proc/self/smaps by its device and inode, so any path works. */
static unsigned long file_map_rss_kib(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    FILE *smaps = fopen("/proc/self/smaps", "re");
    assert_non_null(smaps);
    char line[1024];
    bool in_map = false;
    unsigned long total = 0;
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long start = 0, end = 0, offset = 0, inode = 0, kib = 0;
        unsigned dev_major = 0, dev_minor = 0;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &offset, &dev_major,
                   &dev_minor, &inode) == 7)
            in_map = inode == (unsigned long)st.st_ino && dev_major == major(st.st_dev) &&
                     dev_minor == minor(st.st_dev);
        else if (in_map && sscanf(line, "Rss: %lu kB", &kib) == 1)
            total += kib;
    }
    fclose(smaps);
    return total;
}

/* A commit drops the writer's mappings of data.mdb, which reading every
 * record had made resident: they would otherwise add the store's size
 * to the RSS of a long ingest. The records stay readable. */
static void test_commit_unmaps_cached_pages(void **state)
{
    fixture *fx = *state;
    for (uint32_t first = 1; first <= 20000; first += 5000)
        put_dns(fx->env, first, 5000, T0_US);
    assert_int_equal(count_records(fx->env, FV_CLASS_DNS, T0_US), 20000);
    char data_path[600];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", fx->dir);
    unsigned long after_read = file_map_rss_kib(data_path);
    /* Control: the query mapped at least the 2 MB of leaf pages it read. */
    assert_true(after_read >= 2048);

    put_flows(fx->env, 1, 1, T0_US);
    unsigned long after_commit = file_map_rss_kib(data_path);
    assert_true(after_commit <= after_read / 16);
    assert_int_equal(count_records(fx->env, FV_CLASS_DNS, T0_US), 20000);
}


/* With two stores open, a commit drops the pages of its own store's
 * map only, also when the store's path has a space and a newline. */
static void test_commit_unmaps_only_own_store(void **state)
{
    fixture *fx = *state;
    char other_dir[600], other_mdb[700], own_mdb[600];
    snprintf(other_dir, sizeof other_dir, "%s/other store\nline", fx->dir);
    assert_non_null(strchr(other_dir, '\n'));
    char err[512];
    store_env *other = NULL;
    assert_int_equal(store_open(other_dir, 0, &other, err, sizeof err), FV_OK);
    snprintf(other_mdb, sizeof other_mdb, "%s/data.mdb", other_dir);
    snprintf(own_mdb, sizeof own_mdb, "%s/data.mdb", fx->dir);

    for (uint32_t first = 1; first <= 20000; first += 5000) {
        put_dns(fx->env, first, 5000, T0_US);
        put_dns(other, first, 5000, T0_US);
    }
    assert_int_equal(count_records(fx->env, FV_CLASS_DNS, T0_US), 20000);
    assert_int_equal(count_records(other, FV_CLASS_DNS, T0_US), 20000);
    unsigned long own_read = file_map_rss_kib(own_mdb);
    unsigned long other_read = file_map_rss_kib(other_mdb);
    assert_true(own_read >= 2048);
    assert_true(other_read >= 2048);

    put_flows(other, 1, 1, T0_US);
    assert_true(file_map_rss_kib(other_mdb) <= other_read / 16);
    assert_true(file_map_rss_kib(own_mdb) >= own_read);

    put_flows(fx->env, 1, 1, T0_US);
    assert_true(file_map_rss_kib(own_mdb) <= own_read / 16);
    assert_int_equal(count_records(other, FV_CLASS_DNS, T0_US), 20000);
    store_close(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
        T(test_query_pages_forward_in_order),
        T(test_query_pages_newest_first),
        T(test_query_cursor_zero_at_exact_end),
        T(test_query_stops_when_callback_returns_false),
        T(test_query_filters_by_traffic_time),
        T(test_query_rejects_limit_out_of_range),
        T(test_ids_ascend_with_equal_or_earlier_now),
        T(test_retention_hides_expired_before_sweep),
        T(test_retention_rejects_over_maximum),
        T(test_sweep_deletes_exactly_expired),
        T(test_sweep_budget_stops_and_resumes),
        T(test_sweep_budget_of_one_reaches_every_class),
        T(test_counters_summed_across_commits),
        T(test_rdonly_open_of_missing_dir_not_found),
        T(test_rdonly_rejects_writes),
        T(test_reopen_keeps_records_and_retention),
        T(test_capture_counters_sum_across_runs),
        T(test_capture_counters_reject_bad_name),
        T(test_put_commits_at_queue_max),
        T(test_map_grows_on_map_full),
        T(test_map_full_at_maximum_marks_failed),
        T(test_commit_unmaps_cached_pages),
        T(test_commit_unmaps_only_own_store),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
