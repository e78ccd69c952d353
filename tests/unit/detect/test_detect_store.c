/*
 * Tests for saving the detectors' learned state in the store: a round
 * trip through a real LMDB store in a temporary folder, encryption at
 * rest, replacement by a later save, and the empty case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect.h"
#include "store.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define HOUR_US (3600ull * US_PER_S)
#define T0_US (1795996800ull * US_PER_S) /* Monday 2026-11-30T00:00:00Z */

static store_env *open_store(const char *dir)
{
    store_env *env = NULL;
    char err[512] = "";
    int rc = store_open(dir, 0, &env, err, sizeof err);
    if (rc != FV_OK)
        print_error("store_open: %s\n", err);
    assert_int_equal(rc, FV_OK);
    return env;
}

/* Saved state of an engine that watched one host (pseudonym bytes all
 * TAG) send to one peer for HOURS hours. */
static void learned_state(uint8_t tag, size_t hours, uint8_t **out, size_t *out_len)
{
    pol_detect cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.learning_period_s = 7 * 86400;
    cfg.baseline_enabled = true;
    cfg.baseline_mad_factor = 6.0;
    cfg.rare_dest_enabled = true;
    det_engine *e = NULL;
    assert_int_equal(det_engine_create(&cfg, &e), FV_OK);

    fv_flow_record f;
    memset(&f, 0, sizeof f);
    f.src.kind = FV_EP_PSEUDO_IPV4;
    memset(f.src.addr, tag, sizeof f.src.addr);
    snprintf(f.src.zone, sizeof f.src.zone, "office");
    f.dst.kind = FV_EP_IPV4;
    f.dst.addr[0] = 198; /* 198.51.100.7 */
    f.dst.addr[1] = 51;
    f.dst.addr[2] = 100;
    f.dst.addr[3] = 7;
    snprintf(f.dst.zone, sizeof f.dst.zone, "external");
    f.proto = 6;
    f.dport = 443;
    f.pkts_fwd = 4;
    f.bytes_fwd = 5000;
    for (size_t h = 0; h < hours; h++) {
        f.first_us = T0_US + h * HOUR_US;
        f.last_us = f.first_us + US_PER_S;
        det_observe_flow(e, &f);
        det_evaluate(e, f.first_us + HOUR_US, NULL, NULL);
    }
    assert_int_equal(det_engine_save(e, out, out_len), FV_OK);
    det_engine_destroy(&e);
}

static void test_detstate_round_trip_encrypted(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    uint8_t *saved = NULL;
    size_t saved_len = 0;
    /* 0xA7 repeated 16 times is the host pseudonym inside the state. */
    learned_state(0xA7, 48, &saved, &saved_len);
    assert_true(saved_len > 4000); /* more than one chunk */

    store_env *env = open_store(dir);
    assert_int_equal(store_detstate_put(env, saved, saved_len, T0_US + 48 * HOUR_US), FV_OK);
    store_close(&env);

    /* Reopened: the same bytes come back. */
    env = open_store(dir);
    uint8_t *loaded = NULL;
    size_t loaded_len = 0;
    assert_int_equal(store_detstate_get(env, &loaded, &loaded_len), FV_OK);
    assert_int_equal(loaded_len, saved_len);
    assert_memory_equal(loaded, saved, saved_len);
    store_close(&env);

    /* On disk, the pseudonym never appears in the clear. */
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t file_len = 0;
    char *file = tu_read_file(path, &file_len);
    assert_non_null(file);
    uint8_t pseudonym[16];
    memset(pseudonym, 0xA7, sizeof pseudonym);
    assert_true(tu_memmem_found(saved, saved_len, pseudonym, sizeof pseudonym));
    assert_false(tu_memmem_found(file, file_len, pseudonym, sizeof pseudonym));

    free(file);
    free(loaded);
    free(saved);
    tu_remove_tree(dir);
}

static void test_detstate_later_save_replaces(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    learned_state(0x11, 200, &first, &first_len);
    learned_state(0x22, 2, &second, &second_len);

    store_env *env = open_store(dir);
    assert_int_equal(store_detstate_put(env, first, first_len, T0_US), FV_OK);
    assert_int_equal(store_detstate_put(env, second, second_len, T0_US + HOUR_US), FV_OK);
    uint8_t *loaded = NULL;
    size_t loaded_len = 0;
    assert_int_equal(store_detstate_get(env, &loaded, &loaded_len), FV_OK);
    assert_int_equal(loaded_len, second_len);
    assert_memory_equal(loaded, second, second_len);
    store_close(&env);

    free(loaded);
    free(first);
    free(second);
    tu_remove_tree(dir);
}

static void test_detstate_absent_is_not_found(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    store_env *env = open_store(dir);
    uint8_t *loaded = (uint8_t *)dir; /* must be reset to NULL */
    size_t loaded_len = 1;
    assert_int_equal(store_detstate_get(env, &loaded, &loaded_len), FV_ERR_NOT_FOUND);
    assert_null(loaded);
    assert_int_equal(loaded_len, 0);
    assert_int_equal(store_detstate_put(NULL, NULL, 0, 0), FV_ERR_INVALID);
    store_close(&env);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detstate_round_trip_encrypted),
        cmocka_unit_test(test_detstate_later_save_replaces),
        cmocka_unit_test(test_detstate_absent_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
