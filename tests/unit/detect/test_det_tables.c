/*
 * Unit tests of the two bounded tables of detect/: det_table (det_util.h,
 * intrusive entries in a slab) and det_lru (det_lru.h, key and value
 * bytes). Both evict the least recently used entry when full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "det_lru.h"
#include "det_util.h"

typedef struct test_entry {
    det_node node;
    uint32_t tag;    /* which key the test inserted it under */
    uint64_t *owned; /* freed by free_node */
} test_entry;

static size_t entries_freed;

static void free_test_entry(det_node *n)
{
    test_entry *e = (test_entry *)n;
    free(e->owned);
    e->owned = NULL;
    entries_freed++;
}

/* A key that differs from the others in the peer address byte ID. */
static det_key key_of(uint32_t id)
{
    fv_endpoint host, peer;
    memset(&host, 0, sizeof host);
    memset(&peer, 0, sizeof peer);
    host.kind = FV_EP_PSEUDO_IPV4;
    memset(host.addr, 0x11, sizeof host.addr);
    peer.kind = FV_EP_IPV4;
    peer.addr[0] = 198;
    peer.addr[1] = (uint8_t)(id >> 16);
    peer.addr[2] = (uint8_t)(id >> 8);
    peer.addr[3] = (uint8_t)id;
    det_key key;
    det_key_make(&key, 0, &host, &peer, 443, 6);
    return key;
}

static test_entry *table_put(det_table *t, uint32_t id)
{
    det_key key = key_of(id);
    test_entry *e = (test_entry *)det_table_alloc(t);
    assert_non_null(e);
    assert_int_equal(e->tag, 0); /* entries come zeroed */
    e->tag = id;
    e->owned = calloc(1, sizeof *e->owned);
    assert_non_null(e->owned);
    det_table_insert(t, &e->node, &key);
    return e;
}

static test_entry *table_lookup(det_table *t, uint32_t id)
{
    det_key key = key_of(id);
    return (test_entry *)det_table_get(t, &key);
}

static void test_table_insert_find_remove(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 64, sizeof(test_entry), free_test_entry), FV_OK);
    for (uint32_t id = 1; id <= 40; id++)
        table_put(&t, id);
    assert_int_equal(t.count, 40);
    for (uint32_t id = 1; id <= 40; id++) {
        test_entry *e = table_lookup(&t, id);
        assert_non_null(e);
        assert_int_equal(e->tag, id);
    }
    assert_null(table_lookup(&t, 41));

    entries_freed = 0;
    det_table_remove(&t, &table_lookup(&t, 7)->node);
    assert_int_equal(entries_freed, 1);
    assert_int_equal(t.count, 39);
    assert_null(table_lookup(&t, 7));
    for (uint32_t id = 1; id <= 40; id++) {
        if (id != 7)
            assert_non_null(table_lookup(&t, id));
    }
    det_table_free(&t);
    assert_int_equal(entries_freed, 40);
}

/* With an all-zero hash key every key hashes alike, so all entries share
 * one probe run: lookups must compare keys, and removals in the middle of
 * the run must keep the later entries reachable. */
static void test_table_survives_full_collisions(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 32, sizeof(test_entry), free_test_entry), FV_OK);
    memset(t.hash_key, 0, sizeof t.hash_key);
    for (uint32_t id = 1; id <= 20; id++)
        table_put(&t, id);
    for (uint32_t id = 2; id <= 20; id += 3)
        det_table_remove(&t, &table_lookup(&t, id)->node);
    for (uint32_t id = 1; id <= 20; id++) {
        test_entry *e = table_lookup(&t, id);
        if (id % 3 == 2) {
            assert_null(e);
        } else {
            assert_non_null(e);
            assert_int_equal(e->tag, id);
        }
    }
    det_table_free(&t);
}

/* A full table evicts its least recently used entry, and a lookup counts as a use. */
static void test_table_full_evicts_least_recent(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 3, sizeof(test_entry), free_test_entry), FV_OK);
    table_put(&t, 1);
    table_put(&t, 2);
    table_put(&t, 3);
    assert_non_null(table_lookup(&t, 1)); /* order, newest first: 1 3 2 */

    entries_freed = 0;
    table_put(&t, 4);
    assert_int_equal(entries_freed, 1);
    assert_int_equal(t.count, 3);
    assert_null(table_lookup(&t, 2));

    /* Newest first: 4 1 3. */
    uint32_t expected[] = {4, 1, 3};
    size_t i = 0;
    for (det_node *n = det_table_newest(&t); n != NULL; n = det_table_older(&t, n)) {
        assert_true(i < 3);
        assert_int_equal(((test_entry *)n)->tag, expected[i]);
        i++;
    }
    assert_int_equal(i, 3);
    table_put(&t, 5);
    assert_null(table_lookup(&t, 3));
    det_table_free(&t);
}

/* The index starts small and doubles as entries arrive, never more than
 * half full and never past twice the bound. Every entry stays reachable
 * across each doubling, and the table still evicts in LRU order at its
 * bound. */
static void test_table_index_grows_to_bound(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 3000, sizeof(test_entry), free_test_entry), FV_OK);
    size_t first_size = t.index_mask + 1;
    assert_true(first_size < 2 * 3000);
    for (uint32_t id = 1; id <= 3000; id++) {
        table_put(&t, id);
        assert_true(2 * t.count <= t.index_mask + 1);
    }
    assert_true(t.index_mask + 1 > first_size);
    assert_true(t.index_mask + 1 <= t.index_limit);
    for (uint32_t id = 1; id <= 3000; id++) {
        test_entry *e = table_lookup(&t, id);
        assert_non_null(e);
        assert_int_equal(e->tag, id);
    }

    /* Lookups made 3000 the newest and 1 the oldest again. */
    entries_freed = 0;
    table_put(&t, 3001);
    assert_int_equal(entries_freed, 1);
    assert_int_equal(t.count, 3000);
    assert_null(table_lookup(&t, 1));
    assert_non_null(table_lookup(&t, 2));
    det_table_free(&t);
}

/* With an all-zero hash key and a growing index, every word lands in one
 * probe run that each doubling moves: keys must still be found, and a
 * removal inside the run must keep the later words reachable. */
static void test_table_grows_with_full_collisions(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 300, sizeof(test_entry), free_test_entry), FV_OK);
    memset(t.hash_key, 0, sizeof t.hash_key);
    for (uint32_t id = 1; id <= 200; id++)
        table_put(&t, id);
    assert_true(t.index_mask + 1 >= 400);
    for (uint32_t id = 5; id <= 200; id += 5)
        det_table_remove(&t, &table_lookup(&t, id)->node);
    for (uint32_t id = 1; id <= 200; id++) {
        test_entry *e = table_lookup(&t, id);
        if (id % 5 == 0) {
            assert_null(e);
        } else {
            assert_non_null(e);
            assert_int_equal(e->tag, id);
        }
    }
    det_table_free(&t);
}

/* A prefetch is not a use: the prefetched oldest entry is still the one
 * a full table evicts, and a prefetch of an absent key inserts nothing. */
static void test_table_prefetch_keeps_order(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 3, sizeof(test_entry), free_test_entry), FV_OK);
    table_put(&t, 1);
    table_put(&t, 2);
    table_put(&t, 3);
    det_key oldest = key_of(1);
    det_key absent = key_of(9);
    det_table_prefetch(&t, &oldest);
    det_table_prefetch(&t, &absent);
    assert_int_equal(t.count, 3);
    table_put(&t, 4);
    assert_null(table_lookup(&t, 1));
    assert_null(table_lookup(&t, 9));
    assert_non_null(table_lookup(&t, 2));
    det_table_free(&t);
}

/* A removed entry's slot is handed out again, zeroed, and the table stays
 * within its bound however many entries pass through it. */
static void test_table_reuses_removed_slots(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 4, sizeof(test_entry), free_test_entry), FV_OK);
    test_entry *first = table_put(&t, 1);
    table_put(&t, 2);
    det_table_remove(&t, &first->node);
    test_entry *again = table_put(&t, 3);
    assert_ptr_equal(again, first);
    assert_int_equal(again->tag, 3);

    for (uint32_t id = 10; id < 1000; id++)
        table_put(&t, id);
    assert_int_equal(t.count, 4);
    assert_true(t.slots_used <= 5);
    for (uint32_t id = 996; id < 1000; id++)
        assert_non_null(table_lookup(&t, id));

    /* An allocated entry given back is the next one handed out. */
    det_node *spare = det_table_alloc(&t);
    assert_non_null(spare);
    det_table_release(&t, spare);
    assert_ptr_equal(det_table_alloc(&t), spare);
    det_table_release(&t, spare);
    det_table_free(&t);
}

static void test_table_rekey_moves_and_drops(void **state)
{
    (void)state;
    det_table t;
    assert_int_equal(det_table_init(&t, 16, sizeof(test_entry), free_test_entry), FV_OK);
    table_put(&t, 1);
    table_put(&t, 2);
    uint8_t old_host[16], new_host[16];
    memset(old_host, 0x11, sizeof old_host);
    memset(new_host, 0x22, sizeof new_host);

    det_table_rekey_begin(&t);
    det_table_rekey(&t, FV_EP_PSEUDO_IPV4, old_host, new_host, NULL);
    assert_int_equal(det_table_drop_stale(&t), 0);
    assert_null(table_lookup(&t, 1));
    det_key moved = key_of(1);
    memcpy(moved.host, new_host, sizeof moved.host);
    test_entry *e = (test_entry *)det_table_get(&t, &moved);
    assert_non_null(e);
    assert_int_equal(e->tag, 1);

    /* A rotation that maps nothing drops every keyed entry. */
    det_table_rekey_begin(&t);
    assert_int_equal(det_table_drop_stale(&t), 2);
    assert_int_equal(t.count, 0);
    det_table_free(&t);
}

/* ---------------------------------------------------------------------- */
/* det_lru                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct lru_key {
    uint8_t bytes[17]; /* odd length: the hash pads the last word */
} lru_key;

typedef struct lru_value {
    uint64_t tag;
    uint64_t *owned;
} lru_value;

static size_t values_freed;

static void free_lru_value(void *value)
{
    lru_value *v = value;
    free(v->owned);
    v->owned = NULL;
    values_freed++;
}

static lru_key lru_key_of(uint32_t id)
{
    lru_key k;
    memset(&k, 0, sizeof k);
    memcpy(k.bytes, &id, sizeof id);
    k.bytes[16] = 0x5a;
    return k;
}

static lru_value *lru_put(det_lru *t, uint32_t id, bool expect_created)
{
    lru_key k = lru_key_of(id);
    bool created = false;
    lru_value *v = det_lru_insert(t, &k, &created);
    assert_non_null(v);
    assert_int_equal(created, expect_created);
    if (created) {
        assert_int_equal(v->tag, 0);
        v->tag = id;
        v->owned = calloc(1, sizeof *v->owned);
        assert_non_null(v->owned);
    }
    return v;
}

static lru_value *lru_lookup(det_lru *t, uint32_t id)
{
    lru_key k = lru_key_of(id);
    return det_lru_find(t, &k);
}

static void test_lru_insert_find_and_evict(void **state)
{
    (void)state;
    det_lru *t = det_lru_create(sizeof(lru_key), sizeof(lru_value), 3, free_lru_value);
    assert_non_null(t);
    lru_put(t, 1, true);
    lru_put(t, 2, true);
    lru_put(t, 3, true);
    assert_int_equal(lru_put(t, 2, false)->tag, 2);
    assert_non_null(lru_lookup(t, 1)); /* newest first: 1 2 3 */

    values_freed = 0;
    lru_put(t, 4, true);
    assert_int_equal(values_freed, 1);
    assert_int_equal(det_lru_count(t), 3);
    assert_null(lru_lookup(t, 3));
    assert_int_equal(lru_lookup(t, 2)->tag, 2);
    assert_int_equal(lru_lookup(t, 1)->tag, 1);
    assert_int_equal(lru_lookup(t, 4)->tag, 4);

    /* Many more keys than slots: the last three stay, found by value. */
    for (uint32_t id = 100; id < 5000; id++)
        lru_put(t, id, true);
    assert_int_equal(det_lru_count(t), 3);
    for (uint32_t id = 4997; id < 5000; id++)
        assert_int_equal(lru_lookup(t, id)->tag, id);
    assert_null(lru_lookup(t, 4996));

    values_freed = 0;
    det_lru_destroy(&t);
    assert_null(t);
    assert_int_equal(values_freed, 3);
}

static void collect_tag(void *ctx, const void *key, void *value)
{
    (void)key;
    uint64_t **out = ctx;
    **out = ((lru_value *)value)->tag;
    (*out)++;
}

/* Key ID moves to ID / 2, so 2 and 3 end up under one key; key 5 is
 * dropped. */
static bool rekey_halve(void *ctx, void *key, void *value)
{
    (void)value;
    (void)ctx;
    lru_key *k = key;
    uint32_t id;
    memcpy(&id, k->bytes, sizeof id);
    if (id == 5)
        return false;
    id /= 2;
    memcpy(k->bytes, &id, sizeof id);
    return true;
}

static void test_lru_rekey_keeps_newer_on_clash(void **state)
{
    (void)state;
    det_lru *t = det_lru_create(sizeof(lru_key), sizeof(lru_value), 8, free_lru_value);
    assert_non_null(t);
    for (uint32_t id = 1; id <= 5; id++)
        lru_put(t, id, true);

    values_freed = 0;
    /* Oldest first: 1 -> 0, 2 -> 1, 3 -> 1 replaces the older 2, 4 -> 2,
     * 5 dropped. */
    assert_int_equal(det_lru_rekey(t, rekey_halve, NULL), 2);
    assert_int_equal(values_freed, 2);
    assert_int_equal(det_lru_count(t), 3);

    uint64_t tags[8] = {0};
    uint64_t *cursor = tags;
    det_lru_foreach(t, collect_tag, &cursor);
    assert_int_equal(cursor - tags, 3);
    assert_int_equal(tags[0], 4); /* newest first */
    assert_int_equal(tags[1], 3);
    assert_int_equal(tags[2], 1);
    assert_int_equal(lru_lookup(t, 1)->tag, 3);
    assert_int_equal(lru_lookup(t, 0)->tag, 1);
    assert_int_equal(lru_lookup(t, 2)->tag, 4);
    assert_null(lru_lookup(t, 5));

    /* Inserts after a rekey reuse the freed slots within the bound. */
    for (uint32_t id = 20; id < 40; id++)
        lru_put(t, id, true);
    assert_int_equal(det_lru_count(t), 8);
    det_lru_destroy(&t);
}

/* The index doubles while entries arrive: every key stays reachable, the
 * odd-length keys compare on all their bytes, and the bound still
 * evicts the least recently used entry. */
static void test_lru_index_grows_to_bound(void **state)
{
    (void)state;
    det_lru *t = det_lru_create(sizeof(lru_key), sizeof(lru_value), 2000, free_lru_value);
    assert_non_null(t);
    for (uint32_t id = 1; id <= 2000; id++)
        lru_put(t, id, true);
    assert_int_equal(det_lru_count(t), 2000);
    for (uint32_t id = 1; id <= 2000; id++)
        assert_int_equal(lru_lookup(t, id)->tag, id);

    /* Keys differing only in the last byte, past the whole words. */
    lru_key near = lru_key_of(7);
    near.bytes[16] = 0x5b;
    assert_null(det_lru_find(t, &near));

    values_freed = 0;
    lru_put(t, 2001, true);
    assert_int_equal(values_freed, 1);
    assert_null(lru_lookup(t, 1));
    assert_int_equal(lru_lookup(t, 2)->tag, 2);
    det_lru_destroy(&t);
}

/* A prefetch is not a use and inserts nothing. */
static void test_lru_prefetch_keeps_order(void **state)
{
    (void)state;
    det_lru *t = det_lru_create(sizeof(lru_key), sizeof(lru_value), 3, free_lru_value);
    assert_non_null(t);
    lru_put(t, 1, true);
    lru_put(t, 2, true);
    lru_put(t, 3, true);
    lru_key oldest = lru_key_of(1);
    lru_key absent = lru_key_of(9);
    det_lru_prefetch(t, &oldest);
    det_lru_prefetch(t, &absent);
    assert_int_equal(det_lru_count(t), 3);
    lru_put(t, 4, true);
    assert_null(lru_lookup(t, 1));
    assert_null(lru_lookup(t, 9));
    assert_int_equal(lru_lookup(t, 2)->tag, 2);
    det_lru_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_insert_find_remove),
        cmocka_unit_test(test_table_survives_full_collisions),
        cmocka_unit_test(test_table_full_evicts_least_recent),
        cmocka_unit_test(test_table_reuses_removed_slots),
        cmocka_unit_test(test_table_rekey_moves_and_drops),
        cmocka_unit_test(test_lru_insert_find_and_evict),
        cmocka_unit_test(test_lru_rekey_keeps_newer_on_clash),
        cmocka_unit_test(test_table_index_grows_to_bound),
        cmocka_unit_test(test_table_grows_with_full_collisions),
        cmocka_unit_test(test_table_prefetch_keeps_order),
        cmocka_unit_test(test_lru_index_grows_to_bound),
        cmocka_unit_test(test_lru_prefetch_keeps_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
