/*
 * Unit tests for the per-epoch pseudonym cache of anonymize/: cached
 * results equal computed ones, and rotation empties the cache so no
 * pseudonym of an earlier epoch is returned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "anon_cache.h"
#include "anonymize.h"
#include "testutil.h"

#define ERR_MAX 1024
#define NOW_S 1764489600u
#define DAY_S 86400u
/* More identifiers than the cache has slots (65536), so the test also
 * covers overwritten entries. */
#define MANY_IDS 100000u

typedef struct fixture {
    char dir[512];
    anon_ctx *anon;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[ERR_MAX], key_path[600];
    assert_non_null(f);
    tu_make_temp_dir(f->dir, sizeof f->dir);
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", f->dir);
    assert_int_equal(anon_open(key_path, DAY_S, NOW_S, &f->anon, err, sizeof err), FV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    anon_close(&f->anon);
    tu_remove_tree(f->dir);
    free(f);
    return 0;
}

/* IPv4 address number I (10.x.y.z), network order. */
static void ipv4_of(uint32_t i, uint8_t out[4])
{
    out[0] = 10;
    out[1] = (uint8_t)(i >> 16);
    out[2] = (uint8_t)(i >> 8);
    out[3] = (uint8_t)i;
}

static void test_cache_hit_equals_computed(void **state)
{
    fixture *f = *state;
    static const uint8_t mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
    uint8_t first[FV_PSEUDONYM_BYTES], second[FV_PSEUDONYM_BYTES], fresh[FV_PSEUDONYM_BYTES];
    anon_cache_info info;

    anon_pseudonym(f->anon, ANON_TYPE_MAC, mac, sizeof mac, first);
    anon_pseudonym(f->anon, ANON_TYPE_MAC, mac, sizeof mac, second);
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.misses, 1);
    assert_int_equal(info.hits, 1);
    assert_memory_equal(first, second, FV_PSEUDONYM_BYTES);

    /* The same bytes under another type are another entry. */
    anon_pseudonym(f->anon, ANON_TYPE_HOSTNAME, mac, sizeof mac, fresh);
    assert_memory_not_equal(first, fresh, FV_PSEUDONYM_BYTES);
    anon_pseudonym(f->anon, ANON_TYPE_MAC, mac, 5, fresh);
    assert_memory_not_equal(first, fresh, FV_PSEUDONYM_BYTES);

    anon_set_cache(f->anon, false);
    anon_pseudonym(f->anon, ANON_TYPE_MAC, mac, sizeof mac, fresh);
    assert_memory_equal(first, fresh, FV_PSEUDONYM_BYTES);
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits + info.misses, 0);
}

/* Every result with the cache, over a table overfilled twice, equals the
 * result without it. */
static void test_cache_matches_uncached_over_many_ids(void **state)
{
    fixture *f = *state;
    uint8_t(*cached)[FV_PSEUDONYM_BYTES] = calloc(MANY_IDS, FV_PSEUDONYM_BYTES);
    assert_non_null(cached);

    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < MANY_IDS; i++) {
            uint8_t addr[4], out[FV_PSEUDONYM_BYTES];
            ipv4_of(i, addr);
            anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, sizeof addr, out);
            if (round == 0)
                memcpy(cached[i], out, FV_PSEUDONYM_BYTES);
            else
                assert_memory_equal(cached[i], out, FV_PSEUDONYM_BYTES);
        }
    }
    anon_cache_info info;
    anon_cache_stats(f->anon, &info);
    assert_true(info.hits > 0);

    anon_set_cache(f->anon, false);
    for (uint32_t i = 0; i < MANY_IDS; i += 97) {
        uint8_t addr[4], out[FV_PSEUDONYM_BYTES];
        ipv4_of(i, addr);
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, sizeof addr, out);
        assert_memory_equal(cached[i], out, FV_PSEUDONYM_BYTES);
    }
    free(cached);
}

/* Identifiers longer than a cache entry holds are computed every time. */
static void test_cache_long_identifier_computed(void **state)
{
    fixture *f = *state;
    const char *name = "a-rather-long-host-name.department.example.internal";
    uint8_t first[FV_PSEUDONYM_BYTES], second[FV_PSEUDONYM_BYTES];
    anon_cache_info info;

    anon_pseudonym(f->anon, ANON_TYPE_DOMAIN, (const uint8_t *)name, strlen(name), first);
    anon_pseudonym(f->anon, ANON_TYPE_DOMAIN, (const uint8_t *)name, strlen(name), second);
    assert_memory_equal(first, second, FV_PSEUDONYM_BYTES);
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits, 0);
}

static void test_rotation_clears_cache(void **state)
{
    fixture *f = *state;
    uint8_t epoch1[64][FV_PSEUDONYM_BYTES];
    anon_cache_info info;

    for (uint32_t i = 0; i < 64; i++) {
        uint8_t addr[4];
        ipv4_of(i, addr);
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, sizeof addr, epoch1[i]);
        /* A second lookup makes sure the entry is cached before rotation. */
        uint8_t again[FV_PSEUDONYM_BYTES];
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, sizeof addr, again);
        assert_memory_equal(epoch1[i], again, FV_PSEUDONYM_BYTES);
    }
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits, 64);

    assert_int_equal(anon_maybe_rotate(f->anon, NOW_S + DAY_S), 1);
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits + info.misses, 0);

    uint8_t epoch2[64][FV_PSEUDONYM_BYTES];
    for (uint32_t i = 0; i < 64; i++) {
        uint8_t addr[4];
        ipv4_of(i, addr);
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, sizeof addr, epoch2[i]);
        assert_memory_not_equal(epoch1[i], epoch2[i], FV_PSEUDONYM_BYTES);
    }
    /* Every lookup after the rotation missed: nothing from epoch 1 was
     * found. */
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits, 0);
    assert_int_equal(info.misses, 64);

    /* The epoch 2 values are those of the new key. */
    anon_set_cache(f->anon, false);
    for (uint32_t i = 0; i < 64; i++) {
        uint8_t addr[4], uncached[FV_PSEUDONYM_BYTES];
        ipv4_of(i, addr);
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, sizeof addr, uncached);
        assert_memory_equal(epoch2[i], uncached, FV_PSEUDONYM_BYTES);
    }
}

/* The table starts on a 64-byte boundary, so each 64-byte entry is one
 * cache line, and it still stores and returns pseudonyms exactly. */
static void test_cache_table_line_aligned(void **state)
{
    (void)state;
    anon_cache cache;
    memset(&cache, 0, sizeof cache);
    static const uint8_t mac[6] = {0x00, 0x1b, 0x21, 0x3a, 0x4c, 0x5d};  /* any MAC */
    uint8_t pseudonym[FV_PSEUDONYM_BYTES], found[FV_PSEUDONYM_BYTES];
    for (size_t i = 0; i < sizeof pseudonym; i++)
        pseudonym[i] = (uint8_t)(0xa0 + i);

    assert_false(anon_cache_get(&cache, ANON_TYPE_MAC, mac, sizeof mac, found));
    assert_non_null(cache.slots);
    assert_int_equal((uintptr_t)cache.slots % 64, 0);
    anon_cache_put(&cache, ANON_TYPE_MAC, mac, sizeof mac, pseudonym);
    assert_true(anon_cache_get(&cache, ANON_TYPE_MAC, mac, sizeof mac, found));
    assert_memory_equal(found, pseudonym, sizeof pseudonym);
    anon_cache_free(&cache);
    assert_null(cache.slots);
}

/* Identifier number I of a mix of types, so prefetch batches hold
 * addresses, MACs and names that are too long for the prefetch memo. */
static size_t mixed_id_of(uint32_t i, anon_type *type, uint8_t out[32])
{
    memset(out, 0, 32);
    switch (i % 4) {
    case 0:
        *type = ANON_TYPE_IPV4;
        ipv4_of(i, out);
        return 4;
    case 1:
        /* fd00::/8 with I in the last four bytes */
        *type = ANON_TYPE_IPV6;
        out[0] = 0xfd;
        memcpy(out + 12, &i, sizeof i);
        return 16;
    case 2:
        /* locally administered MAC 02:00:00:xx:xx:xx */
        *type = ANON_TYPE_MAC;
        out[0] = 0x02;
        out[3] = (uint8_t)(i >> 16);
        out[4] = (uint8_t)(i >> 8);
        out[5] = (uint8_t)i;
        return 6;
    default:
        /* 20 bytes, longer than the memo's 16 */
        *type = ANON_TYPE_HOSTNAME;
        return (size_t)snprintf((char *)out, 32, "host-%015u", (unsigned)i);
    }
}

/* Prefetching batches of up to five identifiers before looking them up
 * (one more than the memo holds) gives the same pseudonyms as the
 * uncached computation, and the entries put after a prefetch are found
 * by plain lookups later. */
static void test_prefetch_then_get_equals_get(void **state)
{
    fixture *f = *state;
    enum { IDS = 2000, BATCH = 5 };
    static uint8_t prefetched[IDS][FV_PSEUDONYM_BYTES];
    anon_cache_info info;

    for (uint32_t start = 0; start < IDS; start += BATCH) {
        for (uint32_t i = start; i < start + BATCH && i < IDS; i++) {
            anon_type type;
            uint8_t id[32];
            size_t len = mixed_id_of(i, &type, id);
            anon_prefetch(f->anon, type, id, len);
        }
        for (uint32_t i = start; i < start + BATCH && i < IDS; i++) {
            anon_type type;
            uint8_t id[32];
            size_t len = mixed_id_of(i, &type, id);
            anon_pseudonym(f->anon, type, id, len, prefetched[i]);
        }
    }
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits, 0);
    assert_int_equal(info.misses, IDS);

    /* Plain lookups, newest first so the memo no longer has them. */
    for (uint32_t n = 0; n < IDS; n++) {
        uint32_t i = IDS - 1 - n;
        anon_type type;
        uint8_t id[32], again[FV_PSEUDONYM_BYTES];
        size_t len = mixed_id_of(i, &type, id);
        anon_pseudonym(f->anon, type, id, len, again);
        assert_memory_equal(prefetched[i], again, FV_PSEUDONYM_BYTES);
    }
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.hits, IDS);

    anon_set_cache(f->anon, false);
    for (uint32_t i = 0; i < IDS; i++) {
        anon_type type;
        uint8_t id[32], uncached[FV_PSEUDONYM_BYTES];
        size_t len = mixed_id_of(i, &type, id);
        anon_pseudonym(f->anon, type, id, len, uncached);
        assert_memory_equal(prefetched[i], uncached, FV_PSEUDONYM_BYTES);
    }
}

/* A rotation drops the slot positions remembered by a prefetch, because
 * they belong to the old placement key. Entries put after the rotation
 * must sit where plain lookups under the new key look. */
static void test_prefetch_memo_cleared_on_rotation(void **state)
{
    fixture *f = *state;
    uint8_t addr[4][4], out[FV_PSEUDONYM_BYTES];
    anon_cache_info info;

    for (uint32_t i = 0; i < 4; i++) {
        ipv4_of(i + 1, addr[i]);
        anon_prefetch(f->anon, ANON_TYPE_IPV4, addr[i], sizeof addr[i]);
    }
    assert_int_equal(anon_maybe_rotate(f->anon, NOW_S + DAY_S), 1);
    for (uint32_t i = 0; i < 4; i++)
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr[i], sizeof addr[i], out);

    /* Fill the memo with other identifiers, then look the four up again
     * by their homes under the new key. */
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t other[4];
        ipv4_of(1000 + i, other);
        anon_prefetch(f->anon, ANON_TYPE_IPV4, other, sizeof other);
    }
    for (uint32_t i = 0; i < 4; i++)
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr[i], sizeof addr[i], out);
    anon_cache_stats(f->anon, &info);
    assert_int_equal(info.misses, 4);
    assert_int_equal(info.hits, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cache_hit_equals_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_matches_uncached_over_many_ids, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cache_long_identifier_computed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_clears_cache, setup, teardown),
        cmocka_unit_test(test_cache_table_line_aligned),
        cmocka_unit_test_setup_teardown(test_prefetch_then_get_equals_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefetch_memo_cleared_on_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
