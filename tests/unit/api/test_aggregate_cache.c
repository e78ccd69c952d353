/*
 * test_aggregate_cache.c: store_query_run_cached, the cache of decoded
 * aggregate records behind /api/v1/series and /api/v1/top, against a
 * real encrypted LMDB store in a temporary directory.
 *
 * Every check compares the cached query with store_query_run over the
 * same store, record by record as export JSON: on the run that fills the
 * cache, on runs served from it, with time windows and paging, and
 * after the key of one stored-at day is destroyed (crypto-shredding),
 * when that day's records must leave the results and the cache at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "apitest.h"
#include "store_internal.h"
#include "testutil.h"

#define US APITEST_US_PER_S
#define HOUR_US (3600ull * US)
#define DAY_US (86400ull * US)
/* 2026-11-28T00:00:00Z: the first stored-at day. */
#define DAY0_US (1795824000ull * US)
#define DAYS 3
#define PER_DAY 24
/* Queries run on the last day; aggregates have no retention limit set. */
#define NOW_US (DAY0_US + DAYS * DAY_US - 1)

typedef struct fixture {
    char dir[512];
    store_env *store;
    store_record_cache *cache;
} fixture;

/* Store PER_DAY hourly aggregates on each of DAYS stored-at days, every
 * field varied by its index so that any mix-up changes the JSON. */
static void put_aggregates(store_env *store)
{
    for (unsigned d = 0; d < DAYS; d++) {
        for (unsigned h = 0; h < PER_DAY; h++) {
            unsigned i = d * PER_DAY + h;
            fv_aggregate_record a;
            memset(&a, 0, sizeof a);
            a.bucket_start_us = DAY0_US + (uint64_t)i * HOUR_US;
            a.bucket_s = 3600;
            snprintf(a.zone, sizeof a.zone, "%s", i % 2 == 0 ? "office" : "lab");
            a.proto = i % 3 == 0 ? 17 : 6;
            apitest_external(&a.peer, 198, 51, 100, (uint8_t)(1 + i % 200));
            a.dport = (uint16_t)(i % 3 == 0 ? 53 : 443);
            a.flows = 10u + i;
            a.packets = 100u + 7u * i;
            a.bytes_in = 1000u * (i + 1u);
            a.bytes_out = 333u * (i + 2u);
            a.hosts = 1u + i % 9u;
            /* Stored an hour after the bucket closed, on day D. */
            uint64_t stored_us = DAY0_US + d * DAY_US + (uint64_t)(h + 1) * 60u * US;
            assert_int_equal(store_put(store, FV_CLASS_AGGREGATE, &a, stored_us), FV_OK);
        }
    }
    assert_int_equal(store_commit(store), FV_OK);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char db[600], err[256];
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    snprintf(db, sizeof db, "%s/db", fx->dir);
    assert_int_equal(store_open(db, 0, &fx->store, err, sizeof err), FV_OK);
    put_aggregates(fx->store);
    assert_int_equal(store_record_cache_create(FV_CLASS_AGGREGATE, 1000, &fx->cache), FV_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    store_record_cache_destroy(&fx->cache);
    assert_null(fx->cache);
    store_close(&fx->store);
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* The records of one query, each as compact export JSON with its id. */
static bool collect_record(void *ctx, const fv_record *rec)
{
    json_t *list = ctx;
    json_t *obj = fv_record_to_json(rec);
    assert_non_null(obj);
    assert_int_equal(json_object_set_new(obj, "test_id", json_integer((json_int_t)rec->id)), 0);
    assert_int_equal(json_array_append_new(list, obj), 0);
    return true;
}

/* Run Q page by page (PAGE records each) with or without CACHE and
 * return every record as one JSON text (caller frees). */
static char *run_all(fixture *fx, store_query q, uint32_t page, bool cached)
{
    json_t *list = json_array();
    assert_non_null(list);
    q.limit = page;
    for (;;) {
        uint64_t next = 0;
        if (cached)
            assert_int_equal(store_query_run_cached(fx->store, fx->cache, &q, NOW_US,
                                                    collect_record, list, &next),
                             FV_OK);
        else
            assert_int_equal(store_query_run(fx->store, &q, NOW_US, collect_record, list, &next),
                             FV_OK);
        if (next == 0)
            break;
        q.after_id = next;
    }
    char *text = json_dumps(list, JSON_COMPACT);
    assert_non_null(text);
    json_decref(list);
    return text;
}

/* Assert that Q gives the same records with and without the cache. */
static void assert_same_results(fixture *fx, store_query q, uint32_t page)
{
    char *plain = run_all(fx, q, page, false);
    char *cached = run_all(fx, q, page, true);
    assert_string_equal(cached, plain);
    free(plain);
    free(cached);
}

static size_t result_count(fixture *fx, store_query q, bool cached)
{
    char *text = run_all(fx, q, STORE_QUERY_LIMIT_MAX, cached);
    json_t *list = json_loads(text, 0, NULL);
    assert_non_null(list);
    size_t n = json_array_size(list);
    json_decref(list);
    free(text);
    return n;
}

static void test_cache_matches_uncached_query(void **state)
{
    fixture *fx = *state;
    store_query all = {.cls = FV_CLASS_AGGREGATE};

    /* The first run fills the cache, the second is served from it. */
    assert_same_results(fx, all, STORE_QUERY_LIMIT_MAX);
    assert_int_equal(store_record_cache_count(fx->cache), DAYS * PER_DAY);
    assert_same_results(fx, all, STORE_QUERY_LIMIT_MAX);
    assert_int_equal(result_count(fx, all, true), DAYS * PER_DAY);

    /* Pages of 7 and a traffic-time window inside the second day. */
    assert_same_results(fx, all, 7);
    store_query window = {.cls = FV_CLASS_AGGREGATE,
                          .from_us = DAY0_US + 30 * HOUR_US,
                          .to_us = DAY0_US + 40 * HOUR_US};
    assert_same_results(fx, window, 3);
    assert_int_equal(result_count(fx, window, true), 11);
}

static void test_cache_fills_from_window_then_all(void **state)
{
    fixture *fx = *state;
    store_query window = {.cls = FV_CLASS_AGGREGATE,
                          .from_us = DAY0_US + 50 * HOUR_US,
                          .to_us = DAY0_US + 60 * HOUR_US};
    store_query all = {.cls = FV_CLASS_AGGREGATE};

    /* A window decodes every record it walks over, so the cache holds
     * records outside the window too; a later full query must still
     * match record for record. */
    assert_same_results(fx, window, STORE_QUERY_LIMIT_MAX);
    assert_true(store_record_cache_count(fx->cache) > 0);
    assert_same_results(fx, all, STORE_QUERY_LIMIT_MAX);
}

typedef struct destroy_ctx {
    uint32_t before_day;
    uint32_t *days;
    size_t days_len;
} destroy_ctx;

static int destroy_keys_write(store_env *env, MDB_txn *txn, void *arg)
{
    destroy_ctx *c = arg;
    (void)txn;
    return store_keys_destroy_before(env, FV_CLASS_AGGREGATE, c->before_day, &c->days,
                                     &c->days_len) == FV_OK
               ? MDB_SUCCESS
               : MDB_PANIC;
}

static void test_shredded_day_leaves_cache_at_once(void **state)
{
    fixture *fx = *state;
    store_query all = {.cls = FV_CLASS_AGGREGATE};

    assert_same_results(fx, all, STORE_QUERY_LIMIT_MAX);
    assert_int_equal(store_record_cache_count(fx->cache), DAYS * PER_DAY);

    /* Destroy the key of the first stored-at day only. Its records stay
     * in LMDB (not expired, not swept) but can no longer be decrypted. */
    destroy_ctx c = {.before_day = store_day_of(DAY0_US) + 1};
    assert_int_equal(store_write_txn(fx->store, "destroy a day key", destroy_keys_write, &c),
                     FV_OK);
    assert_int_equal(c.days_len, 1);
    free(c.days);

    /* The very next cached query drops that day, from its results and
     * from the cache's memory. */
    assert_int_equal(result_count(fx, all, true), (DAYS - 1) * PER_DAY);
    assert_int_equal(store_record_cache_count(fx->cache), (DAYS - 1) * PER_DAY);
    assert_same_results(fx, all, STORE_QUERY_LIMIT_MAX);
    assert_same_results(fx, all, 5);
}

static void test_cache_rejects_other_classes(void **state)
{
    (void)state;
    store_record_cache *cache = NULL;
    assert_int_equal(store_record_cache_create(FV_CLASS_FLOW, 10, &cache), FV_ERR_INVALID);
    assert_null(cache);
    assert_int_equal(store_record_cache_create(FV_CLASS_AGGREGATE, 0, &cache), FV_ERR_INVALID);
    assert_null(cache);
    store_record_cache_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cache_matches_uncached_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_fills_from_window_then_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shredded_day_leaves_cache_at_once, setup, teardown),
        cmocka_unit_test(test_cache_rejects_other_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
