/*
 * test_alert_store.c: the alert life cycle in the store (store_alerts.c)
 * on a real LMDB store in a temporary directory: merging repeats within
 * the window, state changes and their rules, notes, and that retention,
 * crypto-shredding and subject erasure remove the life-cycle entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "store_internal.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define DAY_S 86400ull
/* Stored-at and raise time of the first alert: 2026-12-01T00:00:00Z. */
#define T0_US (1796083200ull * US_PER_S)
#define WINDOW_S 3600u

typedef struct fixture {
    char dir[512];
    store_env *store;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char db[600], err[256];
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    snprintf(db, sizeof db, "%s/db", fx->dir);
    assert_int_equal(store_open(db, 0, &fx->store, err, sizeof err), FV_OK);
    assert_int_equal(store_set_retention(fx->store, FV_CLASS_ALERT, 7 * DAY_S), FV_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    store_close(&fx->store);
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* A beacon alert of host SEED to 198.51.100.7:PORT raised at TS_US with
 * first evidence value EVIDENCE (the median interval in seconds). */
static fv_alert_record beacon(uint8_t seed, uint16_t port, uint64_t ts_us, double evidence)
{
    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = ts_us;
    a.first_us = ts_us - 3600 * US_PER_S;
    a.last_us = ts_us;
    a.detector = FV_DET_BEACON;
    a.severity = FV_SEV_HIGH;
    a.score = 0.9;
    a.host.kind = FV_EP_PSEUDO_IPV4;
    for (unsigned i = 0; i < FV_PSEUDONYM_BYTES; i++)
        a.host.addr[i] = (uint8_t)(seed + i);
    snprintf(a.host.zone, sizeof a.host.zone, "office");
    a.peer.kind = FV_EP_IPV4;
    a.peer.addr[0] = 198; /* 198.51.100.7, TEST-NET-2 */
    a.peer.addr[1] = 51;
    a.peer.addr[2] = 100;
    a.peer.addr[3] = 7;
    snprintf(a.peer.zone, sizeof a.peer.zone, FV_ZONE_EXTERNAL);
    a.peer_port = port;
    a.proto = 6;
    a.flow_count = 12;
    a.evidence_count = 1;
    a.evidence[0] = evidence;
    snprintf(a.summary, sizeof a.summary, "regular connections every %.0f s", evidence);
    return a;
}

static store_alert_status status_of(store_env *store, uint64_t id, uint64_t now_us)
{
    store_alert_status st;
    fv_record rec;
    assert_int_equal(store_alert_find(store, id, now_us, &rec, &st), FV_OK);
    assert_int_equal(rec.cls, FV_CLASS_ALERT);
    assert_true(rec.id == id);
    return st;
}

static void test_upsert_merges_repeat_within_window(void **state)
{
    fixture *fx = *state;
    uint64_t id1 = 0, id2 = 0;
    bool merged = true;
    fv_alert_record a = beacon(1, 443, T0_US, 60.0);
    fv_alert_record b = beacon(1, 443, T0_US + 1800 * US_PER_S, 61.0);

    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id1, &merged), FV_OK);
    assert_false(merged);
    assert_true(id1 != 0);
    assert_int_equal(store_alert_upsert(fx->store, &b, WINDOW_S, b.ts_us, &id2, &merged), FV_OK);
    assert_true(merged);
    assert_true(id2 == id1);

    store_alert_status st = status_of(fx->store, id1, b.ts_us);
    assert_int_equal(st.count, 2);
    assert_int_equal(st.state, STORE_ALERT_NEW);
    assert_true(st.first_seen_us == a.ts_us);
    assert_true(st.last_seen_us == b.ts_us);
    /* The newest raise's evidence replaces the first one's. */
    assert_true(st.newest.evidence[0] == 61.0);

    /* Only one record was written to the alerts class. */
    store_class_status cs;
    assert_int_equal(store_class_status_get(fx->store, FV_CLASS_ALERT, b.ts_us, &cs), FV_OK);
    assert_int_equal(cs.records, 1);
}

static void test_upsert_outside_window_creates_new(void **state)
{
    fixture *fx = *state;
    uint64_t id1 = 0, id2 = 0;
    bool merged = true;
    fv_alert_record a = beacon(1, 443, T0_US, 60.0);
    fv_alert_record b = beacon(1, 443, T0_US + (WINDOW_S + 1) * US_PER_S, 60.0);

    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id1, NULL), FV_OK);
    assert_int_equal(store_alert_upsert(fx->store, &b, WINDOW_S, b.ts_us, &id2, &merged), FV_OK);
    assert_false(merged);
    assert_true(id2 > id1);
    assert_int_equal(status_of(fx->store, id1, b.ts_us).count, 1);
    assert_int_equal(status_of(fx->store, id2, b.ts_us).count, 1);
}

static void test_upsert_keeps_different_keys_apart(void **state)
{
    fixture *fx = *state;
    uint64_t ids[4];
    bool merged = true;
    fv_alert_record alerts[4] = {
        beacon(1, 443, T0_US, 60.0),
        beacon(1, 8443, T0_US + US_PER_S, 60.0),   /* other peer port */
        beacon(2, 443, T0_US + 2 * US_PER_S, 60.0), /* other host */
        beacon(1, 443, T0_US + 3 * US_PER_S, 60.0),
    };
    alerts[3].detector = FV_DET_LONG_CONN; /* other detector */

    for (int i = 0; i < 4; i++) {
        assert_int_equal(store_alert_upsert(fx->store, &alerts[i], WINDOW_S, alerts[i].ts_us,
                                            &ids[i], &merged),
                         FV_OK);
        assert_false(merged);
    }
    for (int i = 1; i < 4; i++)
        assert_true(ids[i] != ids[0]);
}

static void test_window_zero_never_merges(void **state)
{
    fixture *fx = *state;
    uint64_t id1 = 0, id2 = 0;
    bool merged = true;
    fv_alert_record a = beacon(1, 443, T0_US, 60.0);

    assert_int_equal(store_alert_upsert(fx->store, &a, 0, T0_US, &id1, NULL), FV_OK);
    assert_int_equal(store_alert_upsert(fx->store, &a, 0, T0_US, &id2, &merged), FV_OK);
    assert_false(merged);
    assert_true(id1 != id2);
}

static void test_closed_alert_is_not_merged_into(void **state)
{
    fixture *fx = *state;
    uint64_t id1 = 0, id2 = 0;
    bool merged = true;
    fv_alert_record a = beacon(1, 443, T0_US, 60.0);
    fv_alert_record b = beacon(1, 443, T0_US + 60 * US_PER_S, 60.0);

    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id1, NULL), FV_OK);
    assert_int_equal(store_alert_transition(fx->store, id1, STORE_ALERT_CLOSED,
                                            "update server, expected", "alice", T0_US, NULL),
                     FV_OK);
    assert_int_equal(store_alert_upsert(fx->store, &b, WINDOW_S, b.ts_us, &id2, &merged), FV_OK);
    assert_false(merged);
    assert_true(id2 != id1);
}

static void test_transitions_follow_the_rules(void **state)
{
    fixture *fx = *state;
    uint64_t id = 0;
    store_alert_status st;
    fv_alert_record a = beacon(3, 443, T0_US, 60.0);
    uint64_t t1 = T0_US + 100 * US_PER_S, t2 = T0_US + 200 * US_PER_S;

    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id, NULL), FV_OK);
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_ACKNOWLEDGED, NULL,
                                            "alice", t1, &st),
                     FV_OK);
    assert_int_equal(st.state, STORE_ALERT_ACKNOWLEDGED);
    assert_string_equal(st.changed_by, "alice");
    assert_true(st.changed_us == t1);

    /* Acknowledged twice, or back to new: not a transition. */
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_ACKNOWLEDGED, NULL,
                                            "alice", t2, NULL),
                     FV_ERR_STATE);
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_NEW, NULL, "alice", t2,
                                            NULL),
                     FV_ERR_STATE);
    /* Closing needs a note. */
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED, NULL, "bob", t2,
                                            NULL),
                     FV_ERR_INVALID);
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED, "", "bob", t2,
                                            NULL),
                     FV_ERR_INVALID);
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED,
                                            "backup job, known", "bob", t2, &st),
                     FV_OK);
    assert_int_equal(st.state, STORE_ALERT_CLOSED);
    assert_string_equal(st.note, "backup job, known");
    assert_string_equal(st.changed_by, "bob");

    /* Closed is final. */
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_ACKNOWLEDGED, NULL,
                                            "alice", t2, NULL),
                     FV_ERR_STATE);
    /* And the stored state survives a reopen. */
    char db[600], err[256];
    snprintf(db, sizeof db, "%s/db", fx->dir);
    store_close(&fx->store);
    assert_int_equal(store_open(db, 0, &fx->store, err, sizeof err), FV_OK);
    st = status_of(fx->store, id, t2);
    assert_int_equal(st.state, STORE_ALERT_CLOSED);
    assert_string_equal(st.note, "backup job, known");

    assert_int_equal(store_alert_transition(fx->store, id + 12345, STORE_ALERT_ACKNOWLEDGED,
                                            NULL, "alice", t2, NULL),
                     FV_ERR_NOT_FOUND);
}

static void test_note_limits_are_checked(void **state)
{
    fixture *fx = *state;
    uint64_t id = 0;
    fv_alert_record a = beacon(4, 443, T0_US, 60.0);
    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id, NULL), FV_OK);

    /* 1001 ASCII characters: one too many. */
    char *note = malloc(4 * 1001 + 1);
    assert_non_null(note);
    memset(note, 'x', 1001);
    note[1001] = '\0';
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED, note, "alice",
                                            T0_US, NULL),
                     FV_ERR_INVALID);
    /* A lone continuation byte 0x80 is not UTF-8. */
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED, "bad \x80 note",
                                            "alice", T0_US, NULL),
                     FV_ERR_INVALID);
    /* 1000 two-byte characters (U+00E9, bytes C3 A9) fit: 2000 bytes. */
    for (int i = 0; i < 1000; i++) {
        note[2 * i] = '\xc3';
        note[2 * i + 1] = '\xa9';
    }
    note[2000] = '\0';
    store_alert_status st;
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED, note, "alice",
                                            T0_US, &st),
                     FV_OK);
    assert_int_equal(strlen(st.note), 2000);
    free(note);
}

static void test_plain_alert_reads_as_new(void **state)
{
    fixture *fx = *state;
    fv_alert_record a = beacon(5, 443, T0_US, 60.0);

    /* Written the way alerts were before the life cycle existed. */
    assert_int_equal(store_put(fx->store, FV_CLASS_ALERT, &a, T0_US), FV_OK);
    assert_int_equal(store_commit(fx->store), FV_OK);
    uint64_t id = T0_US;
    store_alert_status st = status_of(fx->store, id, T0_US);
    assert_int_equal(st.count, 1);
    assert_int_equal(st.state, STORE_ALERT_NEW);
    assert_true(st.first_seen_us == a.ts_us);

    uint64_t counts[3];
    assert_int_equal(store_alert_state_counts(fx->store, T0_US, counts), FV_OK);
    assert_int_equal(counts[STORE_ALERT_NEW], 1);
    assert_int_equal(counts[STORE_ALERT_CLOSED], 0);
}

/* Number of entries in the alert_state database. */
static size_t state_entries(store_env *store)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(store->mdb, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
    assert_int_equal(mdb_stat(txn, store->alert_state, &st), MDB_SUCCESS);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* Copy the raw (sealed) life-cycle value of ID into BUF. */
static size_t state_raw(store_env *store, uint64_t id, uint8_t *buf, size_t cap)
{
    MDB_txn *txn = NULL;
    uint8_t keybuf[8];
    store_key_encode(id, keybuf);
    MDB_val k = {.mv_size = 8, .mv_data = keybuf}, v;
    assert_int_equal(mdb_txn_begin(store->mdb, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
    assert_int_equal(mdb_get(txn, store->alert_state, &k, &v), MDB_SUCCESS);
    assert_true(v.mv_size <= cap);
    memcpy(buf, v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    return v.mv_size;
}

static void test_retention_sweeps_and_shreds_life_cycle(void **state)
{
    fixture *fx = *state;
    uint64_t id = 0;
    fv_alert_record a = beacon(6, 443, T0_US, 60.0);
    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id, NULL), FV_OK);
    assert_int_equal(store_alert_transition(fx->store, id, STORE_ALERT_CLOSED, "reviewed",
                                            "alice", T0_US, NULL),
                     FV_OK);
    assert_int_equal(state_entries(fx->store), 1);
    uint8_t raw[STORE_RECORD_MAX_BYTES + STORE_VALUE_OVERHEAD];
    size_t raw_len = state_raw(fx->store, id, raw, sizeof raw);

    /* Ten days later the 7-day limit has passed for the whole day. */
    uint64_t later = T0_US + 10 * DAY_S * US_PER_S;
    assert_int_equal(store_alert_find(fx->store, id, later, NULL, NULL), FV_ERR_NOT_FOUND);
    store_sweep_result res;
    assert_int_equal(store_sweep(fx->store, later, 0, 0, &res), FV_OK);
    assert_int_equal(res.deleted[FV_CLASS_ALERT], 1);
    assert_true(res.keys_destroyed >= 1);
    assert_int_equal(state_entries(fx->store), 0);

    /* A copy of the entry taken before cannot be opened any more: its
     * day key was destroyed with the alert record's. */
    uint8_t plain[STORE_RECORD_MAX_BYTES];
    size_t plain_len = 0;
    bool refreshed = false;
    assert_int_equal(store_value_open(fx->store, FV_CLASS_ALERT, id, raw, raw_len, plain,
                                      sizeof plain, &plain_len, &refreshed),
                     STORE_VALUE_UNDECRYPTABLE);
}

static void test_erasure_removes_life_cycle(void **state)
{
    fixture *fx = *state;
    uint64_t id = 0, deleted = 0;
    fv_alert_record a = beacon(7, 443, T0_US, 60.0);
    assert_int_equal(store_alert_upsert(fx->store, &a, WINDOW_S, T0_US, &id, NULL), FV_OK);
    assert_int_equal(state_entries(fx->store), 1);
    assert_int_equal(store_delete_records(fx->store, FV_CLASS_ALERT, &id, 1, &deleted), FV_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(state_entries(fx->store), 0);
    assert_int_equal(store_alert_find(fx->store, id, T0_US, NULL, NULL), FV_ERR_NOT_FOUND);
}

static void test_state_names_round_trip(void **state)
{
    (void)state;
    for (int s = STORE_ALERT_NEW; s <= STORE_ALERT_CLOSED; s++) {
        store_alert_state parsed;
        assert_int_equal(store_alert_state_parse(store_alert_state_name(s), &parsed), FV_OK);
        assert_int_equal(parsed, s);
    }
    store_alert_state parsed;
    assert_int_equal(store_alert_state_parse("open", &parsed), FV_ERR_INVALID);
    assert_null(store_alert_state_name(3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upsert_merges_repeat_within_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_outside_window_creates_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_keeps_different_keys_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_zero_never_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_alert_is_not_merged_into, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions_follow_the_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_note_limits_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_alert_reads_as_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_sweeps_and_shreds_life_cycle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_erasure_removes_life_cycle, setup, teardown),
        cmocka_unit_test(test_state_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
