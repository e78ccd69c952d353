/*
 * test_store_audit.c: the hash-chained audit trail in a real LMDB store.
 * Tampering tests close the store, change the "audit" database with
 * liblmdb directly, as someone with write access to the files could, and
 * reopen the store to verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>

#include "store.h"
#include "testutil.h"

#define T0_US 1767225600000000ull   /* 2026-01-01T00:00:00Z */
#define DAY_S 86400ull
#define DAY_US (DAY_S * 1000000ull)

typedef struct fixture {
    char dir[4096];
    store_env *env;
} fixture;

static int fixture_setup(void **state)
{
    fixture *fx = test_calloc(1, sizeof *fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    char err[256];
    if (store_open(fx->dir, 0, &fx->env, err, sizeof err) != FV_OK)
        fail_msg("store_open: %s", err);
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

static void reopen(fixture *fx)
{
    char err[256];
    store_close(&fx->env);
    if (store_open(fx->dir, 0, &fx->env, err, sizeof err) != FV_OK)
        fail_msg("store_open: %s", err);
}

/* Append COUNT entries "api.read" with object "/api/v1/flows#<i>", one
 * second apart from START_US. */
static void append_entries(store_env *env, unsigned count, uint64_t start_us)
{
    for (unsigned i = 0; i < count; i++) {
        store_audit_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.actor, sizeof e.actor, "anonymous");
        snprintf(e.action, sizeof e.action, "api.read");
        snprintf(e.object, sizeof e.object, "/api/v1/flows#%u", i);
        snprintf(e.params, sizeof e.params, "limit=10&remote=127.0.0.1");
        e.result_count = i;
        uint64_t seq = 0;
        assert_int_equal(store_audit_append(env, &e, start_us + i * 1000000ull, &seq), FV_OK);
        assert_true(seq > 0);
    }
}

static void verify(store_env *env, store_audit_verify_result *res)
{
    assert_int_equal(store_audit_verify(env, res), FV_OK);
}

/* Open the store's LMDB environment and the audit database directly. */
typedef struct raw_db {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
} raw_db;

static void raw_begin(const char *dir, raw_db *raw)
{
    assert_int_equal(mdb_env_create(&raw->env), MDB_SUCCESS);
    assert_int_equal(mdb_env_set_maxdbs(raw->env, 16), MDB_SUCCESS);
    assert_int_equal(mdb_env_open(raw->env, dir, 0, 0600), MDB_SUCCESS);
    assert_int_equal(mdb_txn_begin(raw->env, NULL, 0, &raw->txn), MDB_SUCCESS);
    assert_int_equal(mdb_dbi_open(raw->txn, "audit", 0, &raw->dbi), MDB_SUCCESS);
}

static void raw_commit(raw_db *raw)
{
    assert_int_equal(mdb_txn_commit(raw->txn), MDB_SUCCESS);
    mdb_env_close(raw->env);
}

static void raw_key(uint64_t seq, uint8_t key[8], MDB_val *k)
{
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(seq >> (56 - 8 * i));
    k->mv_size = 8;
    k->mv_data = key;
}

/* Copy the value of entry SEQ into BUF; returns its length. */
static size_t raw_get(raw_db *raw, uint64_t seq, uint8_t *buf, size_t cap)
{
    uint8_t key[8];
    MDB_val k, v;
    raw_key(seq, key, &k);
    assert_int_equal(mdb_get(raw->txn, raw->dbi, &k, &v), MDB_SUCCESS);
    assert_true(v.mv_size <= cap);
    memcpy(buf, v.mv_data, v.mv_size);
    return v.mv_size;
}

static void raw_put(raw_db *raw, uint64_t seq, const uint8_t *buf, size_t len)
{
    uint8_t key[8];
    MDB_val k, v = {.mv_size = len, .mv_data = (void *)buf};
    raw_key(seq, key, &k);
    assert_int_equal(mdb_put(raw->txn, raw->dbi, &k, &v, 0), MDB_SUCCESS);
}

static void raw_del(raw_db *raw, uint64_t seq)
{
    uint8_t key[8];
    MDB_val k;
    raw_key(seq, key, &k);
    assert_int_equal(mdb_del(raw->txn, raw->dbi, &k, NULL), MDB_SUCCESS);
}

/* Collects up to 16 entries from store_audit_each. */
typedef struct collected {
    store_audit_entry entries[16];
    size_t count;
} collected;

static bool collect_entry(void *ctx, const store_audit_entry *e)
{
    collected *c = ctx;
    if (c->count < 16)
        c->entries[c->count++] = *e;
    return true;
}

static void test_audit_append_links_entries(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 3, T0_US);

    collected *c = test_calloc(1, sizeof *c);
    uint64_t next = 99;
    assert_int_equal(store_audit_each(fx->env, 0, 10, false, collect_entry, c, &next), FV_OK);
    assert_int_equal(c->count, 3);
    assert_int_equal(next, 0);

    uint8_t zero[32] = {0};
    assert_memory_equal(c->entries[0].prev_hash, zero, 32);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(c->entries[i].seq, i + 1);
        assert_int_equal(c->entries[i].time_us, T0_US + i * 1000000ull);
        assert_string_equal(c->entries[i].action, "api.read");
        uint8_t hash[32];
        assert_int_equal(store_audit_hash(&c->entries[i], hash), FV_OK);
        assert_memory_equal(hash, c->entries[i].hash, 32);
        if (i > 0)
            assert_memory_equal(c->entries[i].prev_hash, c->entries[i - 1].hash, 32);
    }

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_true(res.ok);
    assert_int_equal(res.checked, 3);
    assert_int_equal(res.head_seq, 3);
    assert_memory_equal(res.head_hash, c->entries[2].hash, 32);
    test_free(c);
}

static void test_audit_lists_newest_first_in_pages(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 5, T0_US);

    collected *c = test_calloc(1, sizeof *c);
    uint64_t next = 0;
    assert_int_equal(store_audit_each(fx->env, 0, 2, true, collect_entry, c, &next), FV_OK);
    assert_int_equal(c->count, 2);
    assert_int_equal(c->entries[0].seq, 5);
    assert_int_equal(c->entries[1].seq, 4);
    assert_int_equal(next, 3);

    c->count = 0;
    assert_int_equal(store_audit_each(fx->env, next, 10, true, collect_entry, c, &next), FV_OK);
    assert_int_equal(c->count, 3);
    assert_int_equal(c->entries[0].seq, 3);
    assert_int_equal(c->entries[2].seq, 1);
    assert_int_equal(next, 0);

    c->count = 0;
    assert_int_equal(store_audit_each(fx->env, 4, 10, false, collect_entry, c, &next), FV_OK);
    assert_int_equal(c->count, 2);
    assert_int_equal(c->entries[0].seq, 4);
    test_free(c);
}

static void test_audit_clock_step_back_keeps_time_ascending(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 1, T0_US + DAY_US);
    append_entries(fx->env, 1, T0_US);

    collected *c = test_calloc(1, sizeof *c);
    assert_int_equal(store_audit_each(fx->env, 0, 10, false, collect_entry, c, NULL), FV_OK);
    assert_int_equal(c->count, 2);
    assert_int_equal(c->entries[1].time_us, T0_US + DAY_US);
    test_free(c);
}

static void test_audit_append_sanitizes_strings(void **state)
{
    fixture *fx = *state;
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.actor, sizeof e.actor, "system");
    snprintf(e.action, sizeof e.action, "api.read");
    /* "q=" then a newline, a UTF-8 e-acute (0xc3 0xa9) and a tab. */
    snprintf(e.params, sizeof e.params, "q=\n\xc3\xa9\t");
    assert_int_equal(store_audit_append(fx->env, &e, T0_US, NULL), FV_OK);

    collected *c = test_calloc(1, sizeof *c);
    assert_int_equal(store_audit_each(fx->env, 0, 10, false, collect_entry, c, NULL), FV_OK);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->entries[0].params, "q=????");
    test_free(c);
}

static void test_audit_append_rejects_unterminated_string(void **state)
{
    fixture *fx = *state;
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    memset(e.role, 'r', sizeof e.role);
    assert_int_equal(store_audit_append(fx->env, &e, T0_US, NULL), FV_ERR_INVALID);
}

static void test_audit_verify_detects_edited_entry(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 5, T0_US);
    store_close(&fx->env);

    raw_db raw;
    uint8_t buf[STORE_AUDIT_ENTRY_MAX_BYTES];
    raw_begin(fx->dir, &raw);
    size_t len = raw_get(&raw, 3, buf, sizeof buf);
    /* Byte 1 + 8 + 8 + 2 is the first byte of the actor "anonymous". */
    size_t actor_at = 1 + 8 + 8 + 2;
    assert_int_equal(buf[actor_at], 'a');
    buf[actor_at] = 'b';
    raw_put(&raw, 3, buf, len);
    raw_commit(&raw);
    reopen(fx);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_false(res.ok);
    assert_int_equal(res.broken_seq, 3);
    assert_string_equal(res.reason, "hash mismatch (entry edited)");
    assert_int_equal(res.checked, 2);
}

static void test_audit_verify_detects_deleted_middle_entry(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 5, T0_US);
    store_close(&fx->env);

    raw_db raw;
    raw_begin(fx->dir, &raw);
    raw_del(&raw, 3);
    raw_commit(&raw);
    reopen(fx);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_false(res.ok);
    assert_int_equal(res.broken_seq, 3);
    assert_string_equal(res.reason, "sequence gap (entries deleted)");
}

static void test_audit_verify_detects_swapped_entries(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 5, T0_US);
    store_close(&fx->env);

    raw_db raw;
    uint8_t two[STORE_AUDIT_ENTRY_MAX_BYTES], three[STORE_AUDIT_ENTRY_MAX_BYTES];
    raw_begin(fx->dir, &raw);
    size_t len2 = raw_get(&raw, 2, two, sizeof two);
    size_t len3 = raw_get(&raw, 3, three, sizeof three);
    raw_put(&raw, 2, three, len3);
    raw_put(&raw, 3, two, len2);
    raw_commit(&raw);
    reopen(fx);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_false(res.ok);
    assert_int_equal(res.broken_seq, 2);
    assert_string_equal(res.reason, "previous-hash mismatch (entry removed or reordered)");
}

static void test_audit_verify_detects_deleted_last_entry(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 5, T0_US);
    store_close(&fx->env);

    raw_db raw;
    raw_begin(fx->dir, &raw);
    raw_del(&raw, 5);
    raw_commit(&raw);
    reopen(fx);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_false(res.ok);
    assert_int_equal(res.checked, 4);
    assert_int_equal(res.broken_seq, 5);
    assert_string_equal(res.reason, "head mismatch (entries deleted at the end)");
}

static void test_audit_verify_detects_truncated_entry(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 2, T0_US);
    store_close(&fx->env);

    raw_db raw;
    uint8_t buf[STORE_AUDIT_ENTRY_MAX_BYTES];
    raw_begin(fx->dir, &raw);
    size_t len = raw_get(&raw, 1, buf, sizeof buf);
    raw_put(&raw, 1, buf, len - 1);
    raw_commit(&raw);
    reopen(fx);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_false(res.ok);
    assert_int_equal(res.broken_seq, 1);
    assert_string_equal(res.reason, "decode failed");
}

static void test_audit_retention_prunes_and_verify_passes(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_audit_retention(fx->env, 10 * DAY_S), FV_OK);
    append_entries(fx->env, 4, T0_US);                /* expire at T0 + 10 days */
    append_entries(fx->env, 3, T0_US + 5 * DAY_US);   /* expire at T0 + 15 days */

    /* Batches of 3 need two transactions for the 4 expired entries. */
    store_sweep_result sw;
    assert_int_equal(store_sweep(fx->env, T0_US + 11 * DAY_US, 3, 0, &sw), FV_OK);
    assert_true(sw.complete);
    assert_int_equal(sw.audit_deleted, 4);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_true(res.ok);
    assert_int_equal(res.checked, 3);
    assert_int_equal(res.first_seq, 5);
    assert_int_equal(res.head_seq, 7);

    /* New entries link to the kept chain. */
    append_entries(fx->env, 1, T0_US + 11 * DAY_US);
    verify(fx->env, &res);
    assert_true(res.ok);
    assert_int_equal(res.checked, 4);

    /* Removing everything leaves an empty chain that still verifies, and
     * the next entry continues the numbering. */
    assert_int_equal(store_sweep(fx->env, T0_US + 30 * DAY_US, 0, 0, &sw), FV_OK);
    assert_int_equal(sw.audit_deleted, 4);
    verify(fx->env, &res);
    assert_true(res.ok);
    assert_int_equal(res.checked, 0);
    assert_int_equal(res.head_seq, 8);

    uint64_t seq = 0;
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.action, sizeof e.action, "retention.sweep");
    assert_int_equal(store_audit_append(fx->env, &e, T0_US + 30 * DAY_US, &seq), FV_OK);
    assert_int_equal(seq, 9);
    verify(fx->env, &res);
    assert_true(res.ok);
    assert_int_equal(res.checked, 1);
}

static void test_audit_pruning_then_deleting_first_kept_is_gap(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_audit_retention(fx->env, DAY_S), FV_OK);
    append_entries(fx->env, 2, T0_US);
    append_entries(fx->env, 3, T0_US + 5 * DAY_US);
    store_sweep_result sw;
    assert_int_equal(store_sweep(fx->env, T0_US + 5 * DAY_US, 0, 0, &sw), FV_OK);
    assert_int_equal(sw.audit_deleted, 2);
    store_close(&fx->env);

    raw_db raw;
    raw_begin(fx->dir, &raw);
    raw_del(&raw, 3);
    raw_commit(&raw);
    reopen(fx);

    store_audit_verify_result res;
    verify(fx->env, &res);
    assert_false(res.ok);
    assert_int_equal(res.broken_seq, 3);
    assert_string_equal(res.reason, "sequence gap (entries deleted)");
}

static void test_audit_decode_rejects_bad_lengths(void **state)
{
    (void)state;
    store_audit_entry e, out;
    memset(&e, 0, sizeof e);
    e.seq = 7;
    snprintf(e.actor, sizeof e.actor, "system");
    snprintf(e.role, sizeof e.role, "admin");
    uint8_t buf[STORE_AUDIT_ENTRY_MAX_BYTES];
    size_t len = 0;
    assert_int_equal(store_audit_encode(&e, buf, sizeof buf, &len), FV_OK);
    assert_int_equal(store_audit_decode(buf, len, &out), FV_OK);
    assert_int_equal(out.seq, 7);
    assert_string_equal(out.role, "admin");

    /* Every shorter prefix is rejected. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(store_audit_decode(buf, cut, &out), FV_ERR_PARSE);

    /* A trailing byte is rejected. */
    uint8_t longer[STORE_AUDIT_ENTRY_MAX_BYTES + 1];
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(store_audit_decode(longer, len + 1, &out), FV_ERR_PARSE);

    /* The role length (little-endian u16 after the actor) set to 16, one
     * more than role[16] can hold with its NUL. */
    size_t role_len_at = 1 + 8 + 8 + 2 + strlen("system");
    uint8_t bad[STORE_AUDIT_ENTRY_MAX_BYTES];
    memcpy(bad, buf, len);
    bad[role_len_at] = 16;
    bad[role_len_at + 1] = 0;
    assert_int_equal(store_audit_decode(bad, len, &out), FV_ERR_PARSE);

    /* A NUL inside the actor. */
    memcpy(bad, buf, len);
    bad[1 + 8 + 8 + 2 + 1] = 0;
    assert_int_equal(store_audit_decode(bad, len, &out), FV_ERR_PARSE);

    /* An unknown format version. */
    memcpy(bad, buf, len);
    bad[0] = 2;
    assert_int_equal(store_audit_decode(bad, len, &out), FV_ERR_PARSE);
}

static void test_audit_readonly_open_rejects_append(void **state)
{
    fixture *fx = *state;
    append_entries(fx->env, 1, T0_US);
    store_close(&fx->env);

    char err[256];
    store_env *ro = NULL;
    assert_int_equal(store_open(fx->dir, STORE_RDONLY, &ro, err, sizeof err), FV_OK);
    store_audit_verify_result res;
    verify(ro, &res);
    assert_true(res.ok);
    assert_int_equal(res.checked, 1);
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    assert_int_equal(store_audit_append(ro, &e, T0_US, NULL), FV_ERR_STATE);
    store_close(&ro);
    reopen(fx);
}

static void test_store_existing_flag_creates_nothing(void **state)
{
    (void)state;
    char dir[4096], sub[4200];
    tu_make_temp_dir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/absent", dir);

    char err[256];
    store_env *env = NULL;
    assert_int_equal(store_open(sub, STORE_EXISTING, &env, err, sizeof err), FV_ERR_NOT_FOUND);
    assert_null(env);
    FILE *f = fopen(sub, "r");
    assert_null(f);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_audit_append_links_entries, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_lists_newest_first_in_pages, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_clock_step_back_keeps_time_ascending,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_append_sanitizes_strings, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_append_rejects_unterminated_string,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_detects_edited_entry, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_detects_deleted_middle_entry,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_detects_swapped_entries, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_detects_deleted_last_entry,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_detects_truncated_entry, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_retention_prunes_and_verify_passes,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_pruning_then_deleting_first_kept_is_gap,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test(test_audit_decode_rejects_bad_lengths),
        cmocka_unit_test_setup_teardown(test_audit_readonly_open_rejects_append, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_store_existing_flag_creates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
