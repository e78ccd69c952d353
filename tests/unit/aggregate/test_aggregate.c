/*
 * test_aggregate: bucket math, distinct-host counting and its bound,
 * and when buckets are emitted (cli/aggregate.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aggregate.h"

#define US 1000000ull
#define T0 (1796025600ull * US)     /* 2026-11-30T08:00:00Z, an hour and not a day boundary */
#define DELAY (2100ull * US)
#define RECORDS_MAX 64

typedef struct sink {
    size_t count;
    fv_aggregate_record recs[RECORDS_MAX];
} sink;

static void collect(void *ctx, const fv_aggregate_record *rec)
{
    sink *s = ctx;
    assert_true(s->count < RECORDS_MAX);
    s->recs[s->count++] = *rec;
}

/* A TCP flow from internal host HOST_ID to 192.0.2.80:443 at TS_US. */
static fv_aggregate_flow web_flow(uint64_t ts_us, uint32_t host_id, uint8_t id_buf[16],
                                  fv_endpoint *peer)
{
    memset(id_buf, 0, 16);
    memcpy(id_buf, &host_id, sizeof host_id);
    memset(peer, 0, sizeof *peer);
    peer->kind = FV_EP_IPV4;
    peer->addr[0] = 192;    /* 192.0.2.80, TEST-NET-1 */
    peer->addr[2] = 2;
    peer->addr[3] = 80;
    fv_aggregate_flow f = {
        .first_us = ts_us,
        .last_us = ts_us + 2 * US,
        .zone = "office",
        .host = id_buf,
        .proto = 6,
        .peer = peer,
        .dport = 443,
        .packets = 10,
        .bytes_out = 1000,
        .bytes_in = 5000,
    };
    return f;
}

/* The emitted record of one bucket; fails the test if there is none. */
static const fv_aggregate_record *find(const sink *s, uint32_t bucket_s, uint64_t start_us)
{
    for (size_t i = 0; i < s->count; i++) {
        if (s->recs[i].bucket_s == bucket_s && s->recs[i].bucket_start_us == start_us)
            return &s->recs[i];
    }
    fail_msg("no %u s bucket starting at %llu us was emitted", bucket_s,
             (unsigned long long)start_us);
    return &s->recs[0];
}

static void test_bucket_start_rounds_down(void **state)
{
    (void)state;
    uint64_t ts = T0 + 59 * 60 * US + 59 * US + 999999;     /* 08:59:59.999999 */
    assert_int_equal(fv_aggregate_bucket_start(ts, FV_AGGREGATE_HOUR_S), T0);
    assert_int_equal(fv_aggregate_bucket_start(ts + 1, FV_AGGREGATE_HOUR_S), T0 + 3600 * US);
    /* The day bucket starts at midnight UTC, eight hours before T0. */
    assert_int_equal(fv_aggregate_bucket_start(ts, FV_AGGREGATE_DAY_S), T0 - 8 * 3600 * US);
    assert_int_equal(fv_aggregate_bucket_start(T0, FV_AGGREGATE_HOUR_S), T0);
}

static void test_flush_emits_hour_and_day_with_sums(void **state)
{
    (void)state;
    sink s = {0};
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 0, collect, &s, &agg), FV_OK);

    uint8_t id[16];
    fv_endpoint peer;
    fv_aggregate_flow f = web_flow(T0 + 10 * US, 1, id, &peer);
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    f = web_flow(T0 + 20 * US, 1, id, &peer);                /* same host again */
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    f = web_flow(T0 + 30 * US, 2, id, &peer);                /* a second host */
    f.continued = true;                                     /* a split flow: not a new flow */
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    assert_int_equal(s.count, 0);

    fv_aggregator_flush(agg);
    assert_int_equal(s.count, 2);
    const fv_aggregate_record *hour = find(&s, FV_AGGREGATE_HOUR_S, T0);
    const fv_aggregate_record *day = find(&s, FV_AGGREGATE_DAY_S, T0 - 8 * 3600 * US);
    assert_int_equal(hour->flows, 2);
    assert_int_equal(hour->packets, 30);
    assert_int_equal(hour->bytes_out, 3000);
    assert_int_equal(hour->bytes_in, 15000);
    assert_int_equal(hour->hosts, 2);
    assert_int_equal(hour->hosts_capped, 0);
    assert_string_equal(hour->zone, "office");
    assert_int_equal(hour->dport, 443);
    assert_int_equal(hour->proto, 6);
    assert_int_equal(hour->peer.kind, FV_EP_IPV4);
    assert_int_equal(hour->peer.addr[3], 80);
    assert_int_equal(day->flows, 2);
    assert_int_equal(day->hosts, 2);

    fv_aggregator_stats st;
    fv_aggregator_get_stats(agg, &st);
    assert_int_equal(st.open_entries, 0);
    assert_int_equal(st.emitted, 2);
    fv_aggregator_destroy(&agg);
    assert_null(agg);
}

static void test_hour_closes_after_end_plus_delay(void **state)
{
    (void)state;
    sink s = {0};
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 0, collect, &s, &agg), FV_OK);

    uint8_t id[16];
    fv_endpoint peer;
    fv_aggregate_flow f = web_flow(T0, 1, id, &peer);
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);

    /* One microsecond before the hour's end plus the delay: still open. */
    fv_aggregator_advance(agg, T0 + 3600 * US + DELAY - 1);
    assert_int_equal(s.count, 0);
    fv_aggregator_advance(agg, T0 + 3600 * US + DELAY);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.recs[0].bucket_s, FV_AGGREGATE_HOUR_S);

    /* Time never goes back: an older time emits nothing more. */
    fv_aggregator_advance(agg, T0);
    assert_int_equal(s.count, 1);

    /* A late flow of the emitted hour opens it again. */
    f = web_flow(T0 + 5 * US, 3, id, &peer);
    f.last_us = f.first_us;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    fv_aggregator_stats st;
    fv_aggregator_get_stats(agg, &st);
    assert_int_equal(st.reopened, 1);

    fv_aggregator_flush(agg);
    assert_int_equal(s.count, 3);   /* the day and the reopened hour */
    fv_aggregator_destroy(&agg);
}

static void test_internal_peer_and_ports_split_keys(void **state)
{
    (void)state;
    sink s = {0};
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 0, collect, &s, &agg), FV_OK);

    uint8_t id[16];
    fv_endpoint peer;
    fv_aggregate_flow f = web_flow(T0, 1, id, &peer);
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    f.dport = 80;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    f.peer = NULL;                  /* internal to internal */
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    /* A pseudonymized peer is never kept: it counts as internal. */
    fv_endpoint pseudo = peer;
    pseudo.kind = FV_EP_PSEUDO_IPV4;
    f.peer = &pseudo;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);

    fv_aggregator_flush(agg);
    assert_int_equal(s.count, 6);   /* three keys, hour and day each */
    size_t internal = 0;
    for (size_t i = 0; i < s.count; i++) {
        if (s.recs[i].peer.kind == FV_EP_NONE) {
            internal++;
            assert_int_equal(s.recs[i].flows, 2);
            for (size_t b = 0; b < sizeof s.recs[i].peer.addr; b++)
                assert_int_equal(s.recs[i].peer.addr[b], 0);
        }
    }
    assert_int_equal(internal, 2);
    fv_aggregator_destroy(&agg);
}

static void test_distinct_hosts_capped_at_bound(void **state)
{
    (void)state;
    sink s = {0};
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 0, collect, &s, &agg), FV_OK);

    uint8_t id[16];
    fv_endpoint peer;
    for (uint32_t h = 0; h < FV_AGGREGATE_HOSTS_MAX; h++) {
        fv_aggregate_flow f = web_flow(T0, h, id, &peer);
        assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    }
    /* Each host again: the exact count must not move. */
    for (uint32_t h = 0; h < 100; h++) {
        fv_aggregate_flow f = web_flow(T0, h, id, &peer);
        assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    }
    fv_aggregator_flush(agg);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.recs[0].hosts, FV_AGGREGATE_HOSTS_MAX);
    assert_int_equal(s.recs[0].hosts_capped, 0);

    s.count = 0;
    for (uint32_t h = 0; h <= FV_AGGREGATE_HOSTS_MAX; h++) {
        fv_aggregate_flow f = web_flow(T0, h, id, &peer);
        assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
    }
    fv_aggregator_flush(agg);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.recs[0].hosts, FV_AGGREGATE_HOSTS_MAX);
    assert_int_equal(s.recs[0].hosts_capped, 1);
    assert_int_equal(s.recs[0].flows, FV_AGGREGATE_HOSTS_MAX + 1);
    fv_aggregator_destroy(&agg);
}

static void test_full_table_emits_early(void **state)
{
    (void)state;
    sink s = {0};
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 4, collect, &s, &agg), FV_OK);

    uint8_t id[16];
    fv_endpoint peer;
    fv_aggregate_flow f = web_flow(T0, 1, id, &peer);
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);   /* 2 keys: hour and day */
    f.dport = 80;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);   /* 4 keys */
    assert_int_equal(s.count, 0);
    f.dport = 22;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);   /* a 5th key empties the table */
    assert_int_equal(s.count, 4);

    fv_aggregator_stats st;
    fv_aggregator_get_stats(agg, &st);
    assert_int_equal(st.early_flushes, 1);
    assert_int_equal(st.open_entries, 2);
    fv_aggregator_destroy(&agg);
}

/* Distinct hosts are counted exactly around the move from the ids kept
 * in the entry (the first four) to a separate host set: each count from
 * 1 to 9 hosts, with every host repeated after each new one. */
static void test_distinct_hosts_across_inline_limit(void **state)
{
    (void)state;
    uint8_t id[16];
    fv_endpoint peer;
    for (uint32_t hosts = 1; hosts <= 9; hosts++) {
        sink s = {0};
        fv_aggregator *agg = NULL;
        assert_int_equal(fv_aggregator_create(DELAY, 0, collect, &s, &agg), FV_OK);
        uint64_t flows = 0;
        for (uint32_t h = 0; h < hosts; h++) {
            for (uint32_t again = 0; again <= h; again++) {
                fv_aggregate_flow f = web_flow(T0, again, id, &peer);
                assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
                flows++;
            }
        }
        fv_aggregator_flush(agg);
        assert_int_equal(s.count, 2);
        const fv_aggregate_record *hour = find(&s, FV_AGGREGATE_HOUR_S, T0);
        assert_int_equal(hour->hosts, hosts);
        assert_int_equal(hour->hosts_capped, 0);
        assert_int_equal(hour->flows, flows);
        fv_aggregator_destroy(&agg);
    }
}

/* Emit callback of test_reused_entries_start_empty: counts records and
 * checks that each one counted six hosts, six flows and 60 packets. */
static void check_six_hosts(void *ctx, const fv_aggregate_record *rec)
{
    size_t *emitted = ctx;
    (*emitted)++;
    assert_int_equal(rec->hosts, 6);
    assert_int_equal(rec->flows, 6);
    assert_int_equal(rec->packets, 60);
}

/* Entries freed by an emit are reused with no trace of their former
 * key's hosts or counts. The test fills 512 keys (more than one block)
 * with six hosts each (more than the entry keeps inline), flushes, and
 * counts the same keys again with six other hosts. */
static void test_reused_entries_start_empty(void **state)
{
    (void)state;
    size_t emitted = 0;
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 0, check_six_hosts, &emitted, &agg), FV_OK);
    uint8_t id[16];
    fv_endpoint peer;
    for (uint32_t round = 0; round < 2; round++) {
        for (uint16_t port = 1; port <= 256; port++) {
            for (uint32_t h = 0; h < 6; h++) {
                fv_aggregate_flow f = web_flow(T0, h + round * 100, id, &peer);
                f.dport = port;
                assert_int_equal(fv_aggregator_add(agg, &f), FV_OK);
            }
        }
        fv_aggregator_stats st;
        fv_aggregator_get_stats(agg, &st);
        assert_int_equal(st.open_entries, 512);
        fv_aggregator_flush(agg);
        assert_int_equal(emitted, 512 * (round + 1));
    }
    fv_aggregator_destroy(&agg);
}

static void test_add_rejects_missing_host(void **state)
{
    (void)state;
    fv_aggregator *agg = NULL;
    assert_int_equal(fv_aggregator_create(DELAY, 0, NULL, NULL, &agg), FV_OK);
    uint8_t id[16];
    fv_endpoint peer;
    fv_aggregate_flow f = web_flow(T0, 1, id, &peer);
    f.host = NULL;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_ERR_INVALID);
    f.host = id;
    f.zone = NULL;
    assert_int_equal(fv_aggregator_add(agg, &f), FV_ERR_INVALID);
    fv_aggregator_destroy(&agg);
    fv_aggregator_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_start_rounds_down),
        cmocka_unit_test(test_flush_emits_hour_and_day_with_sums),
        cmocka_unit_test(test_hour_closes_after_end_plus_delay),
        cmocka_unit_test(test_internal_peer_and_ports_split_keys),
        cmocka_unit_test(test_distinct_hosts_capped_at_bound),
        cmocka_unit_test(test_full_table_emits_early),
        cmocka_unit_test(test_distinct_hosts_across_inline_limit),
        cmocka_unit_test(test_reused_entries_start_empty),
        cmocka_unit_test(test_add_rejects_missing_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
