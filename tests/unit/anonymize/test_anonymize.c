/*
 * Unit tests for anonymize/: pseudonym determinism and separation, key
 * file creation, rotation, rejection of unsafe or corrupt key files, and
 * known-answer vectors against an independent BLAKE2b implementation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>

#include "anonymize.h"
#include "testutil.h"

#define ERR_MAX 1024
#define DAY_S 86400u

/*
 * A key file for epoch 7, written byte for byte as documented at the top
 * of anonymize.c:
 *   "FVKEY001"                       magic
 *   00 00 00 00 00 00 00 07          epoch_id 7, big-endian
 *   00 00 00 00 65 53 f1 00          start_s 1700000000, big-endian
 *   00 01 02 ... 1f                  key: the bytes 0x00 to 0x1f
 *   53 58 d4 eb 2b 7c a3 c5          check: first 8 bytes of unkeyed
 *                                    BLAKE2b-256 over the 56 bytes above
 * The check was computed with Python 3 hashlib:
 *   hashlib.blake2b(body, digest_size=32).hexdigest()[:16]
 */
static const uint8_t KAT_FILE[64] = {
    'F', 'V', 'K', 'E', 'Y', '0', '0', '1',
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
    0x00, 0x00, 0x00, 0x00, 0x65, 0x53, 0xf1, 0x00,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x53, 0x58, 0xd4, 0xeb, 0x2b, 0x7c, 0xa3, 0xc5,
};
#define KAT_START_S 1700000000u

typedef struct fixture {
    char dir[512];
    char key_path[600];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_make_temp_dir(f->dir, sizeof f->dir);
    snprintf(f->key_path, sizeof f->key_path, "%s/epoch.key", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_remove_tree(f->dir);
    free(f);
    return 0;
}

static anon_ctx *open_ok(const char *path, uint64_t rotation_s, uint64_t now_s)
{
    char err[ERR_MAX] = "";
    anon_ctx *ctx = NULL;
    int rc = anon_open(path, rotation_s, now_s, &ctx, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("anon_open failed with %d: %s", rc, err);
    return ctx;
}

/* 10.1.0.5 in network order. */
static const uint8_t IPV4_10_1_0_5[4] = {10, 1, 0, 5};

static void test_open_creates_key_file_mode_0600(void **state)
{
    fixture *f = *state;
    anon_ctx *ctx = open_ok(f->key_path, DAY_S, 5000);

    struct stat st;
    assert_int_equal(stat(f->key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 64);

    anon_epoch_info info;
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 1);
    assert_int_equal(info.start_s, 5000);
    assert_int_equal(info.rotation_s, DAY_S);
    assert_int_equal(info.next_rotation_s, 5000 + DAY_S);

    size_t len = 0;
    char *data = tu_read_file(f->key_path, &len);
    assert_non_null(data);
    assert_memory_equal(data, "FVKEY001", 8);
    free(data);

    anon_close(&ctx);
    assert_null(ctx);
    anon_close(&ctx);
    anon_close(NULL);
}

static void test_same_input_same_epoch_same_pseudonym(void **state)
{
    fixture *f = *state;
    uint8_t a[FV_PSEUDONYM_BYTES], b[FV_PSEUDONYM_BYTES], c[FV_PSEUDONYM_BYTES];
    uint8_t other[FV_PSEUDONYM_BYTES];
    static const uint8_t ipv4_10_1_0_6[4] = {10, 1, 0, 6};

    anon_ctx *ctx = open_ok(f->key_path, DAY_S, 1000);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, 4, a);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, 4, b);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, ipv4_10_1_0_6, 4, other);
    anon_close(&ctx);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, other, sizeof a);

    /* A restart within the epoch reads the same key from the file. */
    ctx = open_ok(f->key_path, DAY_S, 2000);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, 4, c);
    anon_close(&ctx);
    assert_memory_equal(a, c, sizeof a);
}

static void test_type_tags_separate_pseudonyms(void **state)
{
    fixture *f = *state;
    /* Six bytes that could be a MAC or the start of an address. */
    static const uint8_t id[6] = {0x0a, 0x01, 0x00, 0x05, 0x00, 0x00};
    uint8_t v4[FV_PSEUDONYM_BYTES], v6[FV_PSEUDONYM_BYTES], mac[FV_PSEUDONYM_BYTES];

    anon_ctx *ctx = open_ok(f->key_path, DAY_S, 1000);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, id, sizeof id, v4);
    anon_pseudonym(ctx, ANON_TYPE_IPV6, id, sizeof id, v6);
    anon_pseudonym(ctx, ANON_TYPE_MAC, id, sizeof id, mac);
    anon_close(&ctx);

    assert_memory_not_equal(v4, v6, sizeof v4);
    assert_memory_not_equal(v4, mac, sizeof v4);
    assert_memory_not_equal(v6, mac, sizeof v6);
}

static void test_rotation_replaces_key_and_pseudonyms(void **state)
{
    fixture *f = *state;
    uint8_t before[FV_PSEUDONYM_BYTES], after[FV_PSEUDONYM_BYTES];

    anon_ctx *ctx = open_ok(f->key_path, DAY_S, 1000);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, 4, before);

    size_t len = 0;
    char *old_file = tu_read_file(f->key_path, &len);
    assert_non_null(old_file);
    assert_int_equal(len, 64);
    uint8_t old_key[32];
    memcpy(old_key, old_file + 24, sizeof old_key);

    assert_int_equal(anon_rotate(ctx, 1500), FV_OK);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, 4, after);
    assert_memory_not_equal(before, after, sizeof before);

    anon_epoch_info info;
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 2);
    assert_int_equal(info.start_s, 1500);

    /* The file contains the new epoch and none of the old key's bytes. */
    char *new_file = tu_read_file(f->key_path, &len);
    assert_non_null(new_file);
    assert_int_equal(len, 64);
    assert_false(tu_memmem_found(new_file, len, old_key, sizeof old_key));
    assert_memory_not_equal(old_file + 24, new_file + 24, 32);
    /* epoch_id 2, big-endian, at offset 8 */
    static const uint8_t epoch2[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    assert_memory_equal(new_file + 8, epoch2, 8);

    /* A reopen continues with the rotated key. */
    anon_close(&ctx);
    uint8_t reopened[FV_PSEUDONYM_BYTES];
    ctx = open_ok(f->key_path, DAY_S, 1600);
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, 4, reopened);
    assert_memory_equal(after, reopened, sizeof after);
    anon_close(&ctx);

    free(old_file);
    free(new_file);
}

static void test_maybe_rotate_respects_period(void **state)
{
    fixture *f = *state;
    anon_ctx *ctx = open_ok(f->key_path, 3600, 1000);
    anon_epoch_info info;

    assert_int_equal(anon_maybe_rotate(ctx, 1000), 0);
    assert_int_equal(anon_maybe_rotate(ctx, 1000 + 3599), 0);
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 1);

    assert_int_equal(anon_maybe_rotate(ctx, 1000 + 3600), 1);
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 2);
    assert_int_equal(info.start_s, 4600);
    assert_int_equal(info.next_rotation_s, 4600 + 3600);

    assert_int_equal(anon_maybe_rotate(ctx, 4601), 0);
    /* A clock set back before the epoch start does not rotate. */
    assert_int_equal(anon_maybe_rotate(ctx, 10), 0);
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 2);
    anon_close(&ctx);
}

static void test_open_rotates_expired_epoch(void **state)
{
    fixture *f = *state;
    tu_write_file(f->key_path, KAT_FILE, sizeof KAT_FILE);

    anon_ctx *ctx = open_ok(f->key_path, DAY_S, KAT_START_S + DAY_S);
    anon_epoch_info info;
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 8);
    assert_int_equal(info.start_s, KAT_START_S + DAY_S);
    anon_close(&ctx);

    size_t len = 0;
    char *data = tu_read_file(f->key_path, &len);
    assert_non_null(data);
    assert_false(tu_memmem_found(data, len, KAT_FILE + 24, 32));
    free(data);
}

static void test_key_file_mode_0644_rejected(void **state)
{
    fixture *f = *state;
    tu_write_file(f->key_path, KAT_FILE, sizeof KAT_FILE);
    assert_int_equal(chmod(f->key_path, 0644), 0);

    char err[ERR_MAX] = "";
    anon_ctx *ctx = NULL;
    assert_int_equal(anon_open(f->key_path, DAY_S, KAT_START_S, &ctx, err, sizeof err),
                     FV_ERR_PERMISSION);
    assert_null(ctx);
    char fix[700];
    snprintf(fix, sizeof fix, "chmod 600 %s", f->key_path);
    if (strstr(err, fix) == NULL)
        fail_msg("expected \"%s\" in: %s", fix, err);
    assert_non_null(strstr(err, "0644"));
}

/* Write DATA as the key file, open it and expect FV_ERR_PARSE with a
 * message naming the file and the way out. */
static void expect_corrupt(const fixture *f, const uint8_t *data, size_t len)
{
    tu_write_file(f->key_path, data, len);
    char err[ERR_MAX] = "";
    anon_ctx *ctx = NULL;
    assert_int_equal(anon_open(f->key_path, DAY_S, KAT_START_S, &ctx, err, sizeof err),
                     FV_ERR_PARSE);
    assert_null(ctx);
    if (strstr(err, f->key_path) == NULL || strstr(err, "restore") == NULL ||
        strstr(err, "remove it") == NULL)
        fail_msg("expected the path, restore and remove in: %s", err);
    /* The key bytes 00 01 02 ... never appear in the message, raw or hex. */
    assert_false(tu_memmem_found(err, strlen(err), KAT_FILE + 25, 4));
    assert_null(strstr(err, "01020304"));
}

static void test_corrupt_bad_magic_rejected(void **state)
{
    fixture *f = *state;
    uint8_t data[64];
    memcpy(data, KAT_FILE, sizeof data);
    data[7] = '2'; /* magic "FVKEY002" */
    expect_corrupt(f, data, sizeof data);
}

static void test_corrupt_bad_check_rejected(void **state)
{
    fixture *f = *state;
    uint8_t data[64];
    memcpy(data, KAT_FILE, sizeof data);
    data[40] ^= 0x01; /* one flipped key bit; the check no longer matches */
    expect_corrupt(f, data, sizeof data);
}

static void test_corrupt_short_or_long_file_rejected(void **state)
{
    fixture *f = *state;
    expect_corrupt(f, KAT_FILE, 63);
    expect_corrupt(f, KAT_FILE, 0);

    uint8_t longer[65];
    memcpy(longer, KAT_FILE, 64);
    longer[64] = 0x0a; /* a trailing newline */
    expect_corrupt(f, longer, sizeof longer);
}

/*
 * Known-answer vectors, computed once with Python 3 hashlib (independent of
 * libsodium) for the key bytes 0x00..0x1f of KAT_FILE:
 *   hashlib.blake2b(bytes([tag]) + identifier, key=bytes(range(32)),
 *                   digest_size=16).hexdigest()
 */
static void test_known_answer_vectors(void **state)
{
    fixture *f = *state;
    tu_write_file(f->key_path, KAT_FILE, sizeof KAT_FILE);
    anon_ctx *ctx = open_ok(f->key_path, DAY_S, KAT_START_S + 10);

    anon_epoch_info info;
    anon_epoch(ctx, &info);
    assert_int_equal(info.epoch_id, 7);
    assert_int_equal(info.start_s, KAT_START_S);

    /* tag 0x01 || 0a 01 00 05 (10.1.0.5) */
    static const uint8_t want_ipv4[16] = {0xee, 0x0d, 0x2a, 0xfb, 0x4c, 0x04, 0x0a, 0xe9,
                                          0x0a, 0x94, 0x21, 0x40, 0x87, 0xf1, 0x3f, 0x37};
    /* tag 0x03 || 00 11 22 33 44 55 (MAC 00:11:22:33:44:55) */
    static const uint8_t mac[6] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
    static const uint8_t want_mac[16] = {0xca, 0x6f, 0x56, 0xff, 0x44, 0xc0, 0xac, 0x19,
                                         0xf0, 0x72, 0xcf, 0x6c, 0x4b, 0x60, 0x36, 0x93};
    /* tag 0x02 || fd00:1::5 as 16 bytes */
    static const uint8_t ipv6[16] = {0xfd, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    static const uint8_t want_ipv6[16] = {0x9e, 0xf3, 0x3a, 0x05, 0x80, 0xbe, 0x9f, 0x25,
                                          0xfd, 0x7c, 0x42, 0x28, 0xa6, 0x64, 0x81, 0xc0};

    uint8_t got[FV_PSEUDONYM_BYTES];
    anon_pseudonym(ctx, ANON_TYPE_IPV4, IPV4_10_1_0_5, sizeof IPV4_10_1_0_5, got);
    assert_memory_equal(got, want_ipv4, sizeof got);
    anon_pseudonym(ctx, ANON_TYPE_MAC, mac, sizeof mac, got);
    assert_memory_equal(got, want_mac, sizeof got);
    anon_pseudonym(ctx, ANON_TYPE_IPV6, ipv6, sizeof ipv6, got);
    assert_memory_equal(got, want_ipv6, sizeof got);
    anon_close(&ctx);
}

static void test_key_file_info_reads_epoch(void **state)
{
    fixture *f = *state;
    char err[ERR_MAX] = "";
    anon_epoch_info info;

    assert_int_equal(anon_key_file_info(f->key_path, DAY_S, &info, err, sizeof err),
                     FV_ERR_NOT_FOUND);
    assert_non_null(strstr(err, f->key_path));

    tu_write_file(f->key_path, KAT_FILE, sizeof KAT_FILE);
    assert_int_equal(anon_key_file_info(f->key_path, DAY_S, &info, err, sizeof err), FV_OK);
    assert_int_equal(info.epoch_id, 7);
    assert_int_equal(info.start_s, KAT_START_S);
    assert_int_equal(info.rotation_s, DAY_S);
    assert_int_equal(info.next_rotation_s, KAT_START_S + DAY_S);

    /* Reading the status never rotates or rewrites the file. */
    size_t len = 0;
    char *data = tu_read_file(f->key_path, &len);
    assert_non_null(data);
    assert_int_equal(len, 64);
    assert_memory_equal(data, KAT_FILE, 64);
    free(data);
}

static void test_open_rejects_zero_rotation(void **state)
{
    fixture *f = *state;
    char err[ERR_MAX] = "";
    anon_ctx *ctx = NULL;
    assert_int_equal(anon_open(f->key_path, 0, 1000, &ctx, err, sizeof err), FV_ERR_INVALID);
    assert_null(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_key_file_mode_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_input_same_epoch_same_pseudonym, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_tags_separate_pseudonyms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_replaces_key_and_pseudonyms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maybe_rotate_respects_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rotates_expired_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_mode_0644_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_bad_magic_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_bad_check_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_short_or_long_file_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_answer_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_info_reads_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_zero_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
