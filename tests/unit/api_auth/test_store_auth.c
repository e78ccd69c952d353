/*
 * test_store_auth.c: users and API tokens in the store's "auth"
 * database, on a real LMDB store in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

#define NOW_US 1796083200000000ull

typedef struct fixture {
    char dir[512];
    char db[600];
    store_env *store;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[256];
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    snprintf(fx->db, sizeof fx->db, "%s/db", fx->dir);
    assert_int_equal(store_open(fx->db, 0, &fx->store, err, sizeof err), FV_OK);
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

static void make_user(store_user *u, const char *name, unsigned role, const char *password)
{
    memset(u, 0, sizeof *u);
    snprintf(u->name, sizeof u->name, "%s", name);
    u->role = role;
    u->created_us = NOW_US;
    u->changed_us = NOW_US;
    assert_int_equal(store_password_hash(password, u->pwhash), FV_OK);
}

static void test_names_validated(void **state)
{
    (void)state;
    assert_true(store_auth_name_valid("admin"));
    assert_true(store_auth_name_valid("ci.bot_2-x"));
    assert_true(store_auth_name_valid("a2345678901234567890123456789012"));   /* 32 bytes */
    assert_false(store_auth_name_valid("a23456789012345678901234567890123")); /* 33 bytes */
    assert_false(store_auth_name_valid(""));
    assert_false(store_auth_name_valid("Admin"));
    assert_false(store_auth_name_valid("1admin"));
    assert_false(store_auth_name_valid("ad min"));
    assert_false(store_auth_name_valid("ad/min"));
    assert_false(store_auth_name_valid(NULL));
}

static void test_roles_parse_both_ways(void **state)
{
    (void)state;
    unsigned role = 0;
    assert_int_equal(store_role_parse("analyst", &role), FV_OK);
    assert_int_equal(role, STORE_ROLE_ANALYST);
    assert_int_equal(store_role_parse("compliance", &role), FV_OK);
    assert_int_equal(role, STORE_ROLE_COMPLIANCE);
    assert_int_equal(store_role_parse("admin", &role), FV_OK);
    assert_int_equal(role, STORE_ROLE_ADMIN);
    assert_int_equal(store_role_parse("root", &role), FV_ERR_INVALID);
    assert_int_equal(store_role_parse("Admin", &role), FV_ERR_INVALID);
    assert_string_equal(store_role_name(STORE_ROLE_COMPLIANCE), "compliance");
    assert_null(store_role_name(3));
}

static void test_password_hash_verifies(void **state)
{
    (void)state;
    char hash[STORE_PWHASH_MAX];
    assert_int_equal(store_password_hash("correct horse", hash), FV_OK);
    assert_true(strncmp(hash, "$argon2id$", 10) == 0);
    assert_true(store_password_verify(hash, "correct horse"));
    assert_false(store_password_verify(hash, "correct horse "));
    assert_false(store_password_verify(hash, ""));
    assert_int_equal(store_password_hash("", hash), FV_ERR_INVALID);
}

static void test_user_round_trip(void **state)
{
    fixture *fx = *state;
    store_user u, got;
    make_user(&u, "ana", STORE_ROLE_ANALYST, "analyst-password");
    assert_int_equal(store_user_put(fx->store, &u, true), FV_OK);
    assert_int_equal(store_user_put(fx->store, &u, true), FV_ERR_STATE);

    assert_int_equal(store_user_get(fx->store, "ana", &got), FV_OK);
    assert_string_equal(got.name, "ana");
    assert_int_equal(got.role, STORE_ROLE_ANALYST);
    assert_int_equal(got.created_us, NOW_US);
    assert_string_equal(got.pwhash, u.pwhash);
    assert_true(store_password_verify(got.pwhash, "analyst-password"));

    /* Replace requires an existing user. */
    got.changed_us = NOW_US + 5;
    assert_int_equal(store_user_put(fx->store, &got, false), FV_OK);
    store_user other;
    make_user(&other, "nobody", STORE_ROLE_ANALYST, "whatever-pw");
    assert_int_equal(store_user_put(fx->store, &other, false), FV_ERR_NOT_FOUND);
    assert_int_equal(store_user_get(fx->store, "ana", &got), FV_OK);
    assert_int_equal(got.changed_us, NOW_US + 5);

    assert_int_equal(store_user_get(fx->store, "nobody", &got), FV_ERR_NOT_FOUND);
    assert_int_equal(store_user_delete(fx->store, "ana"), FV_OK);
    assert_int_equal(store_user_delete(fx->store, "ana"), FV_ERR_NOT_FOUND);
    assert_int_equal(store_user_get(fx->store, "ana", &got), FV_ERR_NOT_FOUND);
}

/* A first user is added only to a store without users, whatever its
 * name. Once the store is empty again, a first user can be added. */
static void test_first_user_only_once(void **state)
{
    fixture *fx = *state;
    store_user zed, ana;
    make_user(&zed, "zed", STORE_ROLE_ADMIN, "first-password");
    make_user(&ana, "ana", STORE_ROLE_ADMIN, "second-password");
    assert_int_equal(store_user_put_first(fx->store, &zed), FV_OK);
    assert_int_equal(store_user_put_first(fx->store, &ana), FV_ERR_STATE);
    assert_int_equal(store_user_put_first(fx->store, &zed), FV_ERR_STATE);

    size_t users = 0;
    assert_int_equal(store_user_each(fx->store, NULL, NULL, &users), FV_OK);
    assert_int_equal(users, 1);
    store_user got;
    assert_int_equal(store_user_get(fx->store, "ana", &got), FV_ERR_NOT_FOUND);

    assert_int_equal(store_user_delete(fx->store, "zed"), FV_OK);
    assert_int_equal(store_user_put_first(fx->store, &ana), FV_OK);
    assert_int_equal(store_user_get(fx->store, "ana", &got), FV_OK);
    assert_int_equal(store_user_put_first(NULL, &ana), FV_ERR_INVALID);
}

static void test_user_put_rejects_invalid(void **state)
{
    fixture *fx = *state;
    store_user u;
    make_user(&u, "ana", STORE_ROLE_ANALYST, "analyst-password");
    u.role = STORE_ROLE_ANALYST | STORE_ROLE_ADMIN;
    assert_int_equal(store_user_put(fx->store, &u, true), FV_ERR_INVALID);
    u.role = STORE_ROLE_ANALYST;
    snprintf(u.name, sizeof u.name, "Bad Name");
    assert_int_equal(store_user_put(fx->store, &u, true), FV_ERR_INVALID);
    snprintf(u.name, sizeof u.name, "ana");
    u.pwhash[0] = '\0';
    assert_int_equal(store_user_put(fx->store, &u, true), FV_ERR_INVALID);
}

typedef struct names {
    char list[8][STORE_AUTH_NAME_MAX + 1];
    size_t count;
} names;

static bool collect_name(void *ctx, const store_user *u)
{
    names *n = ctx;
    snprintf(n->list[n->count++], sizeof n->list[0], "%s", u->name);
    return n->count < 8;
}

static void test_users_listed_in_name_order(void **state)
{
    fixture *fx = *state;
    store_user u;
    static const char *const order[] = {"zoe", "ana", "mike"};
    for (size_t i = 0; i < 3; i++) {
        make_user(&u, order[i], STORE_ROLE_ANALYST, "some-password");
        assert_int_equal(store_user_put(fx->store, &u, true), FV_OK);
    }
    /* A token must not show up as a user. */
    char text[STORE_TOKEN_TEXT_LEN + 1];
    assert_int_equal(store_token_create(fx->store, "bot", STORE_ROLE_ADMIN, 0, NOW_US, text,
                                        NULL),
                     FV_OK);

    names n = {.count = 0};
    size_t count = 0;
    assert_int_equal(store_user_each(fx->store, collect_name, &n, &count), FV_OK);
    assert_int_equal(count, 3);
    assert_string_equal(n.list[0], "ana");
    assert_string_equal(n.list[1], "mike");
    assert_string_equal(n.list[2], "zoe");
}

static void test_token_found_only_with_secret(void **state)
{
    fixture *fx = *state;
    char text[STORE_TOKEN_TEXT_LEN + 1];
    store_token created, found;
    assert_int_equal(store_token_create(fx->store, "exporter", STORE_ROLE_ANALYST,
                                        NOW_US + 1000, NOW_US, text, &created),
                     FV_OK);
    assert_int_equal(strlen(text), STORE_TOKEN_TEXT_LEN);
    assert_true(strncmp(text, "fvt_", 4) == 0);
    assert_memory_equal(text + 4, created.id, STORE_TOKEN_ID_LEN);

    assert_int_equal(store_token_find(fx->store, text, &found), FV_OK);
    assert_string_equal(found.name, "exporter");
    assert_int_equal(found.role, STORE_ROLE_ANALYST);
    assert_int_equal(found.expires_us, NOW_US + 1000);
    assert_int_equal(found.revoked_us, 0);

    /* One secret digit changed: same id, wrong hash. */
    char forged[STORE_TOKEN_TEXT_LEN + 1];
    memcpy(forged, text, sizeof forged);
    forged[STORE_TOKEN_TEXT_LEN - 1] = forged[STORE_TOKEN_TEXT_LEN - 1] == 'a' ? 'b' : 'a';
    assert_int_equal(store_token_find(fx->store, forged, &found), FV_ERR_NOT_FOUND);
    assert_int_equal(store_token_find(fx->store, "fvt_123", &found), FV_ERR_INVALID);
    forged[5] = 'G';
    assert_int_equal(store_token_find(fx->store, forged, &found), FV_ERR_INVALID);

    /* Only the hash is stored: the secret part appears nowhere in the
     * listing. */
    assert_int_equal(store_token_revoke(fx->store, created.id, NOW_US + 10), FV_OK);
    assert_int_equal(store_token_revoke(fx->store, created.id, NOW_US + 11), FV_ERR_STATE);
    assert_int_equal(store_token_find(fx->store, text, &found), FV_OK);
    assert_int_equal(found.revoked_us, NOW_US + 10);
    assert_int_equal(store_token_revoke(fx->store, "0000000000000000", NOW_US), FV_ERR_NOT_FOUND);
    assert_int_equal(store_token_revoke(fx->store, "xyz", NOW_US), FV_ERR_INVALID);
}

static void test_auth_survives_reopen(void **state)
{
    fixture *fx = *state;
    char err[256];
    store_user u, got;
    make_user(&u, "admin", STORE_ROLE_ADMIN, "admin-password");
    assert_int_equal(store_user_put(fx->store, &u, true), FV_OK);
    store_close(&fx->store);

    /* The auth database is one of the store's own, so reopening works. */
    assert_int_equal(store_open(fx->db, STORE_EXISTING, &fx->store, err, sizeof err), FV_OK);
    assert_int_equal(store_user_get(fx->store, "admin", &got), FV_OK);
    store_close(&fx->store);

    assert_int_equal(store_open(fx->db, STORE_RDONLY, &fx->store, err, sizeof err), FV_OK);
    assert_int_equal(store_user_get(fx->store, "admin", &got), FV_OK);
    assert_int_equal(store_user_put(fx->store, &u, false), FV_ERR_STATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_validated),
        cmocka_unit_test(test_roles_parse_both_ways),
        cmocka_unit_test(test_password_hash_verifies),
        cmocka_unit_test_setup_teardown(test_user_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_user_only_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_put_rejects_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_listed_in_name_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_found_only_with_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_survives_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
