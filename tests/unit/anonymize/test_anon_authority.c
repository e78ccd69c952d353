/*
 * test_anon_authority.c: sealed epoch keys from a key authority. Two
 * sensors that import the same epoch compute the same pseudonyms. A
 * sensor never makes or rotates its own key, and a running context
 * adopts a newer imported epoch. Rollback, wrong recipients, damage,
 * files not signed by the pinned authority key, epochs beyond 2^62-1
 * and low-order sensor keys are rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "anonymize.h"
#include "testutil.h"

#define START_S 1764547200ull   /* 2025-12-01T00:00:00Z */
#define ROTATION_S 86400ull

/* Signing key of the test authority, made once per temp root by
 * make_sensor (every sensor of a test pins the same authority). */
static uint8_t g_sign_sk[ANON_SIGN_SECRET_KEY_BYTES];
static char g_authority_root[256];

/* Create the authority signing key in ROOT/authority if not done yet
 * for this ROOT, and load its secret key into g_sign_sk. */
static void ensure_authority(const char *root)
{
    if (strcmp(g_authority_root, root) == 0)
        return;
    char dir[512], err[1024];
    snprintf(dir, sizeof dir, "%s/authority", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(anon_authority_keygen(dir, err, sizeof err), FV_OK);
    assert_int_equal(anon_authority_sign_key_read(dir, g_sign_sk, err, sizeof err), FV_OK);
    snprintf(g_authority_root, sizeof g_authority_root, "%s", root);
}

typedef struct sensor {
    char dir[512];
    char key_path[1024];
    uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES];
} sensor;

static void make_sensor(const char *root, const char *name, sensor *s)
{
    char err[1024];
    snprintf(s->dir, sizeof s->dir, "%s/%s", root, name);
    snprintf(s->key_path, sizeof s->key_path, "%s/pseudonym.key", s->dir);
    assert_int_equal(anon_sensor_keygen(s->dir, err, sizeof err), FV_OK);
    ensure_authority(root);
    char authority_pub[1024];
    snprintf(authority_pub, sizeof authority_pub, "%s/authority/%s", root,
             ANON_AUTHORITY_PUB_FILE);
    assert_int_equal(anon_authority_pin(s->dir, authority_pub, err, sizeof err), FV_OK);

    char pub[1024];
    snprintf(pub, sizeof pub, "%s/%s", s->dir, ANON_SENSOR_PUB_FILE);
    assert_int_equal(anon_sensor_pub_read(pub, s->pk, err, sizeof err), FV_OK);

    char secret[1024];
    struct stat st;
    snprintf(secret, sizeof secret, "%s/%s", s->dir, ANON_SENSOR_KEY_FILE);
    assert_int_equal(stat(secret, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* Seal KEY of EPOCH to S and import it; return the import's result. */
static int deliver(const sensor *s, const uint8_t key[32], uint64_t epoch, uint64_t start_s)
{
    uint8_t sealed[ANON_SEALED_BYTES];
    char err[1024];
    assert_int_equal(anon_seal_epoch(key, epoch, start_s, s->pk, g_sign_sk, sealed), FV_OK);
    anon_epoch_info info;
    int rc = anon_import_sealed(s->dir, sealed, sizeof sealed, &info, err, sizeof err);
    if (rc == FV_OK)
        assert_int_equal(info.epoch_id, epoch);
    return rc;
}

static void pseudonym_of(const char *key_path, uint64_t now_s, uint8_t out[FV_PSEUDONYM_BYTES])
{
    char err[1024];
    anon_ctx *ctx = NULL;
    assert_int_equal(anon_open(key_path, ROTATION_S, now_s, &ctx, err, sizeof err), FV_OK);
    const uint8_t addr[4] = {10, 1, 2, 3};
    anon_pseudonym(ctx, ANON_TYPE_IPV4, addr, sizeof addr, out);
    anon_close(&ctx);
}

static void test_two_sensors_share_pseudonyms(void **state)
{
    (void)state;
    char root[256];
    tu_make_temp_dir(root, sizeof root);
    sensor a, b;
    make_sensor(root, "a", &a);
    make_sensor(root, "b", &b);

    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    assert_int_equal(deliver(&a, key, 1, START_S), FV_OK);
    assert_int_equal(deliver(&b, key, 1, START_S), FV_OK);

    uint8_t pa[FV_PSEUDONYM_BYTES], pb[FV_PSEUDONYM_BYTES];
    pseudonym_of(a.key_path, START_S + 60, pa);
    pseudonym_of(b.key_path, START_S + 60, pb);
    assert_memory_equal(pa, pb, sizeof pa);

    struct stat st;
    assert_int_equal(stat(a.key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tu_remove_tree(root);
}

static void test_sensor_never_makes_own_key(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);

    /* No imported key yet: anon_open must not create one. */
    anon_ctx *ctx = NULL;
    assert_int_equal(anon_open(a.key_path, ROTATION_S, START_S, &ctx, err, sizeof err),
                     FV_ERR_NOT_FOUND);
    assert_null(ctx);
    struct stat st;
    assert_int_not_equal(stat(a.key_path, &st), 0);
    assert_non_null(strstr(err, "flowveil keys import"));
    tu_remove_tree(root);
}

static void test_overdue_epoch_is_kept_not_rotated(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    assert_int_equal(deliver(&a, key, 1, START_S), FV_OK);

    uint8_t before[FV_PSEUDONYM_BYTES], after[FV_PSEUDONYM_BYTES];
    pseudonym_of(a.key_path, START_S + 60, before);

    /* Ten periods later: a local store would rotate, a sensor keeps epoch 1. */
    anon_ctx *ctx = NULL;
    uint64_t late_s = START_S + 10 * ROTATION_S;
    assert_int_equal(anon_open(a.key_path, ROTATION_S, late_s, &ctx, err, sizeof err), FV_OK);
    assert_int_equal(anon_maybe_rotate(ctx, late_s + 1), 0);
    assert_int_equal(anon_rotate(ctx, late_s + 2), FV_ERR_STATE);
    anon_epoch_info info;
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 1);
    const uint8_t addr[4] = {10, 1, 2, 3};
    anon_pseudonym(ctx, ANON_TYPE_IPV4, addr, sizeof addr, after);
    assert_memory_equal(before, after, sizeof before);
    anon_close(&ctx);
    tu_remove_tree(root);
}

static void test_running_context_adopts_import(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);
    uint8_t key1[32], key2[32];
    randombytes_buf(key1, sizeof key1);
    randombytes_buf(key2, sizeof key2);
    assert_int_equal(deliver(&a, key1, 1, START_S), FV_OK);

    anon_ctx *ctx = NULL;
    assert_int_equal(anon_open(a.key_path, ROTATION_S, START_S + 10, &ctx, err, sizeof err),
                     FV_OK);
    const uint8_t addr[4] = {10, 1, 2, 3};
    uint8_t p1[FV_PSEUDONYM_BYTES], p2[FV_PSEUDONYM_BYTES];
    anon_pseudonym(ctx, ANON_TYPE_IPV4, addr, sizeof addr, p1);
    assert_int_equal(anon_maybe_rotate(ctx, START_S + 20), 0);

    /* The authority's next epoch arrives while the context is open. */
    assert_int_equal(deliver(&a, key2, 2, START_S + ROTATION_S), FV_OK);
    assert_int_equal(anon_maybe_rotate(ctx, START_S + ROTATION_S + 1), 1);
    anon_epoch_info info;
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 2);
    assert_int_equal(info.start_s, START_S + ROTATION_S);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, addr, sizeof addr, p2);
    assert_memory_not_equal(p1, p2, sizeof p1);
    anon_close(&ctx);

    /* An older or repeated epoch cannot roll the key back. */
    assert_int_equal(deliver(&a, key1, 1, START_S), FV_ERR_STATE);
    assert_int_equal(deliver(&a, key2, 2, START_S + ROTATION_S), FV_ERR_STATE);
    tu_remove_tree(root);
}

static void test_import_rejects_wrong_or_damaged_file(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a, b;
    make_sensor(root, "a", &a);
    make_sensor(root, "b", &b);
    uint8_t key[32], sealed[ANON_SEALED_BYTES];
    randombytes_buf(key, sizeof key);

    /* Sealed to b, imported at a. */
    assert_int_equal(anon_seal_epoch(key, 1, START_S, b.pk, g_sign_sk, sealed), FV_OK);
    assert_int_equal(anon_import_sealed(a.dir, sealed, sizeof sealed, NULL, err, sizeof err),
                     FV_ERR_CRYPTO);

    /* One flipped bit in the box. */
    assert_int_equal(anon_seal_epoch(key, 1, START_S, a.pk, g_sign_sk, sealed), FV_OK);
    sealed[ANON_SEALED_BYTES - 1] ^= 0x01;
    assert_int_equal(anon_import_sealed(a.dir, sealed, sizeof sealed, NULL, err, sizeof err),
                     FV_ERR_CRYPTO);

    /* The clear header says epoch 5, the box epoch 1. */
    assert_int_equal(anon_seal_epoch(key, 1, START_S, a.pk, g_sign_sk, sealed), FV_OK);
    sealed[15] = 5;
    assert_int_equal(anon_import_sealed(a.dir, sealed, sizeof sealed, NULL, err, sizeof err),
                     FV_ERR_CRYPTO);

    /* Cut short. */
    assert_int_equal(anon_import_sealed(a.dir, sealed, 100, NULL, err, sizeof err), FV_ERR_PARSE);

    struct stat st;
    assert_int_not_equal(stat(a.key_path, &st), 0);
    tu_remove_tree(root);
}

static void test_local_key_in_authority_mode_rejected(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    char dir[512], key_path[1024];
    snprintf(dir, sizeof dir, "%s/s", root);
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", dir);

    /* A store with its own key that then becomes a sensor. */
    anon_ctx *ctx = NULL;
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(anon_open(key_path, ROTATION_S, START_S, &ctx, err, sizeof err), FV_OK);
    anon_close(&ctx);
    assert_int_equal(anon_sensor_keygen(dir, err, sizeof err), FV_OK);
    assert_int_equal(anon_open(key_path, ROTATION_S, START_S, &ctx, err, sizeof err),
                     FV_ERR_STATE);
    assert_null(ctx);

    /* A second keygen never overwrites the sensor key. */
    assert_int_equal(anon_sensor_keygen(dir, err, sizeof err), FV_ERR_INVALID);
    tu_remove_tree(root);
}

static void test_import_rejects_forged_file(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);
    uint8_t key[32], sealed[ANON_SEALED_BYTES];
    randombytes_buf(key, sizeof key);

    /* A forger who has only the sensor's public key seals a key of their
     * choice and signs with a key pair of their own. */
    uint8_t forger_pk[ANON_SIGN_PUBLIC_KEY_BYTES], forger_sk[ANON_SIGN_SECRET_KEY_BYTES];
    crypto_sign_keypair(forger_pk, forger_sk);
    assert_int_equal(anon_seal_epoch(key, 7, START_S, a.pk, forger_sk, sealed), FV_OK);
    assert_int_equal(anon_import_sealed(a.dir, sealed, sizeof sealed, NULL, err, sizeof err),
                     FV_ERR_CRYPTO);
    assert_non_null(strstr(err, "not signed by the pinned key authority"));

    /* The same file with the signature wiped. */
    memset(sealed + ANON_SEALED_BYTES - 64, 0, 64);
    assert_int_equal(anon_import_sealed(a.dir, sealed, sizeof sealed, NULL, err, sizeof err),
                     FV_ERR_CRYPTO);

    /* A file of the old unsigned format: magic "FVSEAL01", 168 bytes. */
    assert_int_equal(anon_seal_epoch(key, 7, START_S, a.pk, g_sign_sk, sealed), FV_OK);
    memcpy(sealed, "FVSEAL01", 8);
    assert_int_equal(anon_import_sealed(a.dir, sealed, 168, NULL, err, sizeof err),
                     FV_ERR_CRYPTO);
    assert_non_null(strstr(err, "no authority signature"));

    struct stat st;
    assert_int_not_equal(stat(a.key_path, &st), 0);
    tu_remove_tree(root);
}

static void test_import_needs_pinned_authority_key(void **state)
{
    (void)state;
    char root[256], err[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);
    uint8_t key[32], sealed[ANON_SEALED_BYTES];
    randombytes_buf(key, sizeof key);
    assert_int_equal(anon_seal_epoch(key, 1, START_S, a.pk, g_sign_sk, sealed), FV_OK);

    char pinned[1024];
    snprintf(pinned, sizeof pinned, "%s/%s", a.dir, ANON_AUTHORITY_PUB_FILE);
    assert_int_equal(unlink(pinned), 0);
    assert_int_equal(anon_import_sealed(a.dir, sealed, sizeof sealed, NULL, err, sizeof err),
                     FV_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "--authority-key"));
    tu_remove_tree(root);
}

static void test_pin_rejects_other_authority_key(void **state)
{
    (void)state;
    char root[256], err[1024], other_dir[512], other_pub[1024], own_pub[1024];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);

    snprintf(other_dir, sizeof other_dir, "%s/other", root);
    assert_int_equal(mkdir(other_dir, 0700), 0);
    assert_int_equal(anon_authority_keygen(other_dir, err, sizeof err), FV_OK);
    snprintf(other_pub, sizeof other_pub, "%s/%s", other_dir, ANON_AUTHORITY_PUB_FILE);
    assert_int_equal(anon_authority_pin(a.dir, other_pub, err, sizeof err), FV_ERR_STATE);

    /* Pinning the same key again is fine; a second keygen never overwrites. */
    snprintf(own_pub, sizeof own_pub, "%s/authority/%s", root, ANON_AUTHORITY_PUB_FILE);
    assert_int_equal(anon_authority_pin(a.dir, own_pub, err, sizeof err), FV_OK);
    assert_int_equal(anon_authority_keygen(other_dir, err, sizeof err), FV_ERR_INVALID);
    tu_remove_tree(root);
}

static void test_seal_rejects_epoch_beyond_max(void **state)
{
    (void)state;
    char root[256];
    tu_make_temp_dir(root, sizeof root);
    sensor a;
    make_sensor(root, "a", &a);
    uint8_t key[32], sealed[ANON_SEALED_BYTES];
    randombytes_buf(key, sizeof key);
    assert_int_equal(anon_seal_epoch(key, ANON_EPOCH_MAX + 1, START_S, a.pk, g_sign_sk, sealed),
                     FV_ERR_INVALID);
    assert_int_equal(anon_seal_epoch(key, UINT64_MAX, START_S, a.pk, g_sign_sk, sealed),
                     FV_ERR_INVALID);
    assert_int_equal(deliver(&a, key, ANON_EPOCH_MAX, START_S), FV_OK);
    tu_remove_tree(root);
}

static void test_sensor_pub_rejects_low_order_key(void **state)
{
    (void)state;
    char root[256], err[1024], path[512];
    tu_make_temp_dir(root, sizeof root);
    uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES];

    /* "flowveil-sensor-box-v1" and 64 zero digits: the all-zero point. */
    snprintf(path, sizeof path, "%s/zero.pub", root);
    const char zero_key[] = "flowveil-sensor-box-v1 "
                            "0000000000000000000000000000000000000000000000000000000000000000\n";
    tu_write_file(path, zero_key, strlen(zero_key));
    assert_int_equal(anon_sensor_pub_read(path, pk, err, sizeof err), FV_ERR_CRYPTO);
    assert_non_null(strstr(err, "low order"));

    /* The point of order 8 e0eb7a7c...b800 on Curve25519. */
    const char order8_key[] = "flowveil-sensor-box-v1 "
                              "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800\n";
    tu_write_file(path, order8_key, strlen(order8_key));
    assert_int_equal(anon_sensor_pub_read(path, pk, err, sizeof err), FV_ERR_CRYPTO);
    tu_remove_tree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_sensors_share_pseudonyms),
        cmocka_unit_test(test_sensor_never_makes_own_key),
        cmocka_unit_test(test_overdue_epoch_is_kept_not_rotated),
        cmocka_unit_test(test_running_context_adopts_import),
        cmocka_unit_test(test_import_rejects_wrong_or_damaged_file),
        cmocka_unit_test(test_local_key_in_authority_mode_rejected),
        cmocka_unit_test(test_import_rejects_forged_file),
        cmocka_unit_test(test_import_needs_pinned_authority_key),
        cmocka_unit_test(test_pin_rejects_other_authority_key),
        cmocka_unit_test(test_seal_rejects_epoch_beyond_max),
        cmocka_unit_test(test_sensor_pub_rejects_low_order_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
