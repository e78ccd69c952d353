/*
 * test_seenhosts: the map from raw internal address to pseudonym that a
 * key rotation walks (cli/seenhosts.c): repeats, replaced pseudonyms,
 * clearing, address families and the bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "seenhosts.h"

#define HOSTS_MANY 5000u   /* hosts of the replacement test */

/* 10.x.y.z for host number N (fits 24 bits). */
static cap_ip host_addr(uint32_t n)
{
    cap_ip a;
    memset(&a, 0, sizeof a);
    a.family = 4;
    a.addr[0] = 10;
    a.addr[1] = (uint8_t)(n >> 16);
    a.addr[2] = (uint8_t)(n >> 8);
    a.addr[3] = (uint8_t)n;
    return a;
}

/* A pseudonymized IPv4 endpoint whose pseudonym encodes N and VERSION. */
static fv_endpoint pseudonym_ep(uint32_t n, uint8_t version)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    memcpy(ep.addr, &n, sizeof n);
    ep.addr[15] = version;
    return ep;
}

/* What fv_seenhosts_foreach reported per host number. */
typedef struct seen_list {
    uint8_t version[HOSTS_MANY];
    uint32_t calls;
    uint32_t wrong;     /* entries whose pseudonym does not belong to their address */
} seen_list;

static void record_host(void *ctx, const cap_ip *addr, uint8_t kind,
                        const uint8_t pseudonym[FV_PSEUDONYM_BYTES])
{
    seen_list *l = ctx;
    uint32_t n = (uint32_t)addr->addr[1] << 16 | (uint32_t)addr->addr[2] << 8 | addr->addr[3];
    uint32_t in_pseudonym;
    memcpy(&in_pseudonym, pseudonym, sizeof in_pseudonym);
    l->calls++;
    if (kind != FV_EP_PSEUDO_IPV4 || n >= HOSTS_MANY || in_pseudonym != n) {
        l->wrong++;
        return;
    }
    l->version[n] = pseudonym[15];
}

/* Repeated notes of one host keep one entry, and a prefetch notes
 * nothing (NULL arguments included). */
static void test_seenhosts_repeat_counts_once(void **state)
{
    (void)state;
    fv_seenhosts *m = NULL;
    assert_int_equal(fv_seenhosts_create(&m), FV_OK);
    cap_ip a = host_addr(7);
    cap_ip other = host_addr(8);
    fv_endpoint ep = pseudonym_ep(7, 1);
    fv_seenhosts_prefetch(m, &other);
    fv_seenhosts_prefetch(m, NULL);
    fv_seenhosts_prefetch(NULL, &other);
    assert_int_equal(fv_seenhosts_count(m), 0);
    for (int i = 0; i < 100; i++) {
        fv_seenhosts_prefetch(m, &a);
        fv_seenhosts_note(m, &a, &ep);
    }
    assert_int_equal(fv_seenhosts_count(m), 1);
    fv_seenhosts_destroy(&m);
    assert_null(m);
}

/* A later note with another pseudonym replaces the earlier one, both
 * right after the earlier note and after thousands of other hosts. */
static void test_seenhosts_new_pseudonym_replaces(void **state)
{
    (void)state;
    fv_seenhosts *m = NULL;
    assert_int_equal(fv_seenhosts_create(&m), FV_OK);
    for (uint8_t version = 1; version <= 3; version++) {
        for (uint32_t n = 0; n < HOSTS_MANY; n++) {
            cap_ip a = host_addr(n);
            /* Even hosts change pseudonym every round, odd ones keep the first. */
            fv_endpoint ep = pseudonym_ep(n, n % 2 == 0 ? version : 1);
            fv_seenhosts_note(m, &a, &ep);
            fv_seenhosts_note(m, &a, &ep);
        }
    }
    /* One host changes right after a note of itself. */
    cap_ip a = host_addr(1);
    fv_endpoint ep = pseudonym_ep(1, 9);
    fv_seenhosts_note(m, &a, &ep);

    assert_int_equal(fv_seenhosts_count(m), HOSTS_MANY);
    seen_list *l = test_calloc(1, sizeof *l);
    fv_seenhosts_foreach(m, record_host, l);
    assert_int_equal(l->calls, HOSTS_MANY);
    assert_int_equal(l->wrong, 0);
    for (uint32_t n = 0; n < HOSTS_MANY; n++) {
        uint8_t expected = n == 1 ? 9 : (n % 2 == 0 ? 3 : 1);
        assert_int_equal(l->version[n], expected);
    }
    test_free(l);
    fv_seenhosts_destroy(&m);
}

/* After a clear, a host noted with the same pseudonym as before the
 * clear is in the map again. */
static void test_seenhosts_clear_then_note_again(void **state)
{
    (void)state;
    fv_seenhosts *m = NULL;
    assert_int_equal(fv_seenhosts_create(&m), FV_OK);
    cap_ip a = host_addr(42);
    fv_endpoint ep = pseudonym_ep(42, 1);
    fv_seenhosts_note(m, &a, &ep);
    fv_seenhosts_clear(m);
    assert_int_equal(fv_seenhosts_count(m), 0);
    fv_seenhosts_note(m, &a, &ep);
    assert_int_equal(fv_seenhosts_count(m), 1);
    seen_list *l = test_calloc(1, sizeof *l);
    fv_seenhosts_foreach(m, record_host, l);
    assert_int_equal(l->calls, 1);
    assert_int_equal(l->version[42], 1);
    test_free(l);
    fv_seenhosts_destroy(&m);
}

/* IPv4 and IPv6 addresses with the same leading bytes are different hosts. */
static void test_seenhosts_family_separates(void **state)
{
    (void)state;
    fv_seenhosts *m = NULL;
    assert_int_equal(fv_seenhosts_create(&m), FV_OK);
    cap_ip v4 = host_addr(5);
    cap_ip v6 = v4;
    v6.family = 6;
    fv_endpoint ep = pseudonym_ep(5, 1);
    fv_seenhosts_note(m, &v4, &ep);
    fv_seenhosts_note(m, &v6, &ep);
    fv_seenhosts_note(m, &v4, &ep);
    assert_int_equal(fv_seenhosts_count(m), 2);
    fv_seenhosts_destroy(&m);
}

/* Beyond FV_SEENHOSTS_MAX hosts every note of a new host is counted as
 * not noted, each time it repeats. Hosts already in the map still update. */
static void test_seenhosts_full_counts_every_miss(void **state)
{
    (void)state;
    fv_seenhosts *m = NULL;
    assert_int_equal(fv_seenhosts_create(&m), FV_OK);
    for (uint32_t n = 0; n < FV_SEENHOSTS_MAX; n++) {
        cap_ip a = host_addr(n);
        fv_endpoint ep = pseudonym_ep(n, 1);
        fv_seenhosts_note(m, &a, &ep);
    }
    assert_int_equal(fv_seenhosts_count(m), FV_SEENHOSTS_MAX);
    cap_ip extra = host_addr(FV_SEENHOSTS_MAX + 1);
    fv_endpoint extra_ep = pseudonym_ep(FV_SEENHOSTS_MAX + 1, 1);
    for (int i = 0; i < 3; i++)
        fv_seenhosts_note(m, &extra, &extra_ep);
    assert_int_equal(fv_seenhosts_not_noted(m), 3);
    assert_int_equal(fv_seenhosts_count(m), FV_SEENHOSTS_MAX);

    cap_ip known = host_addr(3);
    fv_endpoint changed = pseudonym_ep(3, 7);
    fv_seenhosts_note(m, &known, &changed);
    seen_list *l = test_calloc(1, sizeof *l);
    fv_seenhosts_foreach(m, record_host, l);
    assert_int_equal(l->version[3], 7);
    test_free(l);
    fv_seenhosts_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seenhosts_repeat_counts_once),
        cmocka_unit_test(test_seenhosts_new_pseudonym_replaces),
        cmocka_unit_test(test_seenhosts_clear_then_note_again),
        cmocka_unit_test(test_seenhosts_family_separates),
        cmocka_unit_test(test_seenhosts_full_counts_every_miss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
