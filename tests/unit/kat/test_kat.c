/*
 * Known-answer vectors for every address mode (pseudonymize, prefix-
 * preserving, truncate) under a fixed epoch key, plus the properties the
 * prefix-preserving mode promises. The vectors were computed once by the
 * independent Python 3 script below, so a change in the C code that
 * changes a stored value fails here.
 *
 *   import hashlib, ipaddress
 *   key = bytes(range(32))                        # KAT_FILE's key
 *   def subkey(ctx):                              # crypto_kdf_derive_from_key
 *       return hashlib.blake2b(b"", digest_size=32, key=key,
 *                              salt=(1).to_bytes(8, "little") + bytes(8),
 *                              person=ctx + bytes(8)).digest()
 *   def prefix_preserving(text):
 *       a = ipaddress.ip_address(text); raw = a.packed; n = len(raw) * 8
 *       k = subkey(b"fvpfxpv4" if a.version == 4 else b"fvpfxpv6")
 *       v = int.from_bytes(raw, "big"); out = 0
 *       for i in range(n):
 *           prefix = (v >> (n - i)) << (n - i) if i else 0
 *           msg = bytes([i]) + prefix.to_bytes(len(raw), "big")
 *           bit = hashlib.blake2b(msg, digest_size=16, key=k).digest()[0] & 1
 *           out |= (((v >> (n - 1 - i)) & 1) ^ bit) << (n - 1 - i)
 *       return str(ipaddress.ip_address(out.to_bytes(len(raw), "big")))
 *   def pseudonymize(text):
 *       a = ipaddress.ip_address(text)
 *       tag = bytes([1 if a.version == 4 else 2])
 *       return hashlib.blake2b(tag + a.packed, digest_size=16, key=key).hexdigest()
 *   def truncate(text, plen):
 *       return str(ipaddress.ip_network(f"{text}/{plen}", strict=False).network_address)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "anonymize.h"
#include "testutil.h"

#define DAY_S 86400u
#define KAT_START_S 1700000000u

/*
 * Key file of epoch 7 with the key bytes 0x00..0x1f, laid out as the top
 * of anonymize.c documents (the same file as tests/unit/anonymize uses):
 *   "FVKEY001", epoch_id 7 (big-endian u64), start_s 1700000000
 *   (big-endian u64), the 32 key bytes, then the first 8 bytes of unkeyed
 *   BLAKE2b-256 over the 56 bytes before.
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

typedef struct fixture {
    char dir[512];
    char key_path[600];
    anon_ctx *ctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_make_temp_dir(f->dir, sizeof f->dir);
    snprintf(f->key_path, sizeof f->key_path, "%s/epoch.key", f->dir);
    tu_write_file(f->key_path, KAT_FILE, sizeof KAT_FILE);

    char err[1024] = "";
    int rc = anon_open(f->key_path, DAY_S, KAT_START_S + 10, &f->ctx, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("anon_open failed with %d: %s", rc, err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    anon_close(&f->ctx);
    tu_remove_tree(f->dir);
    free(f);
    return 0;
}

/* Parse TEXT into a 16-byte buffer (IPv4 in bytes 0..3) and return the
 * family. */
static int parse_addr(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, text, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, text, out) == 1)
        return 6;
    fail_msg("test vector %s is not an address", text);
    return 0;
}

static void format_addr(int family, const uint8_t addr[16], char out[INET6_ADDRSTRLEN])
{
    if (inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, out, INET6_ADDRSTRLEN) == NULL)
        fail_msg("inet_ntop failed");
}

/* Number of leading bits that A and B (LEN bytes) share. */
static unsigned common_prefix_bits(const uint8_t *a, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t diff = a[i] ^ b[i];
        if (diff == 0)
            continue;
        unsigned bits = (unsigned)i * 8;
        while ((diff & 0x80u) == 0) {
            diff = (uint8_t)(diff << 1);
            bits++;
        }
        return bits;
    }
    return (unsigned)len * 8;
}

typedef struct address_vector {
    const char *in;
    const char *want;
} address_vector;

static void test_prefix_preserving_known_answers(void **state)
{
    fixture *f = *state;
    static const address_vector vectors[] = {
        {"10.1.0.5", "200.14.8.101"},
        {"10.1.0.6", "200.14.8.102"},
        {"10.1.200.7", "200.14.205.107"},
        {"192.168.1.1", "18.15.69.36"},
        {"0.0.0.0", "194.47.102.209"},
        {"255.255.255.255", "56.212.130.108"},
        {"fd00:1::5", "5225:b0c0:f34f:a727:cdee:a9f:c1fa:4c91"},
        {"fd00:1::6", "5225:b0c0:f34f:a727:cdee:a9f:c1fa:4c93"},
        {"2001:db8::1", "e10a:493b:2b2f:a753:a3a4:2bfd:dd4c:75d"},
        {"::", "d8ee:56a1:5f00:aec9:1efa:2a5d:77e7:34fc"},
    };

    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint8_t in[16];
        uint8_t out[16];
        char text[INET6_ADDRSTRLEN];
        int family = parse_addr(vectors[i].in, in);

        assert_int_equal(anon_prefix_preserving(f->ctx, family, in, out), FV_OK);
        format_addr(family, out, text);
        assert_string_equal(text, vectors[i].want);
    }
}

static void test_prefix_preserving_ipv4_zeroes_tail(void **state)
{
    fixture *f = *state;
    uint8_t in[16];
    uint8_t out[16];
    static const uint8_t zero[12] = {0};

    parse_addr("10.1.0.5", in);
    memset(out, 0xaa, sizeof out);
    assert_int_equal(anon_prefix_preserving(f->ctx, 4, in, out), FV_OK);
    assert_memory_equal(out + 4, zero, sizeof zero);
}

static void test_pseudonymize_known_answers(void **state)
{
    fixture *f = *state;
    /* BLAKE2b-128 keyed with the epoch key over tag 0x01 || 0a 01 00 05 */
    static const uint8_t want_ipv4[16] = {0xee, 0x0d, 0x2a, 0xfb, 0x4c, 0x04, 0x0a, 0xe9,
                                          0x0a, 0x94, 0x21, 0x40, 0x87, 0xf1, 0x3f, 0x37};
    /* the same over tag 0x02 || fd00:1::5 as 16 bytes */
    static const uint8_t want_ipv6[16] = {0x9e, 0xf3, 0x3a, 0x05, 0x80, 0xbe, 0x9f, 0x25,
                                          0xfd, 0x7c, 0x42, 0x28, 0xa6, 0x64, 0x81, 0xc0};
    uint8_t in[16];
    uint8_t got[FV_PSEUDONYM_BYTES];

    parse_addr("10.1.0.5", in);
    anon_pseudonym(f->ctx, ANON_TYPE_IPV4, in, 4, got);
    assert_memory_equal(got, want_ipv4, sizeof got);
    parse_addr("fd00:1::5", in);
    anon_pseudonym(f->ctx, ANON_TYPE_IPV6, in, 16, got);
    assert_memory_equal(got, want_ipv6, sizeof got);
}

static void test_truncate_known_answers(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned prefix_len;
        const char *want;
    } vectors[] = {
        {"10.1.0.5", 24, "10.1.0.0"},
        {"10.1.200.7", 16, "10.1.0.0"},
        {"10.1.0.5", 0, "0.0.0.0"},
        {"10.1.0.5", 32, "10.1.0.5"},
        {"10.1.0.5", 13, "10.0.0.0"},
        {"fd00:1::5", 48, "fd00:1::"},
        {"2001:db8:abcd:1234::1", 61, "2001:db8:abcd:1230::"},
        {"fd00:1::5", 128, "fd00:1::5"},
        {"fd00:1::5", 0, "::"},
    };

    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint8_t in[16];
        uint8_t out[16];
        char text[INET6_ADDRSTRLEN];
        int family = parse_addr(vectors[i].in, in);

        assert_int_equal(anon_truncate(family, in, vectors[i].prefix_len, out), FV_OK);
        format_addr(family, out, text);
        assert_string_equal(text, vectors[i].want);
    }
}

static void test_truncate_rejects_bad_arguments(void **state)
{
    (void)state;
    uint8_t in[16] = {0x0a, 0x01, 0x00, 0x05};    /* 10.1.0.5 */
    uint8_t out[16];

    assert_int_equal(anon_truncate(4, in, 33, out), FV_ERR_INVALID);
    assert_int_equal(anon_truncate(6, in, 129, out), FV_ERR_INVALID);
    assert_int_equal(anon_truncate(5, in, 8, out), FV_ERR_INVALID);
}

static void test_prefix_preserving_rejects_bad_family(void **state)
{
    fixture *f = *state;
    uint8_t in[16] = {0x0a, 0x01, 0x00, 0x05};    /* 10.1.0.5 */
    uint8_t out[16];

    assert_int_equal(anon_prefix_preserving(f->ctx, 0, in, out), FV_ERR_INVALID);
    assert_int_equal(anon_prefix_preserving(NULL, 4, in, out), FV_ERR_INVALID);
}

/* Step a 64-bit xorshift generator: a reproducible spread of test
 * addresses, no secrecy needed. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * For every k, build A at random and B = A with bit k flipped and the
 * bits after k drawn afresh, so A and B share exactly k leading bits;
 * their prefix-preserving outputs must share exactly k leading bits too.
 */
static void check_shared_prefix(anon_ctx *ctx, int family, uint64_t seed)
{
    size_t len = family == 4 ? 4 : 16;
    unsigned bits = (unsigned)len * 8;

    for (unsigned k = 0; k < bits; k++) {
        uint8_t a[16] = {0};
        uint8_t b[16] = {0};
        for (size_t i = 0; i < len; i++) {
            a[i] = (uint8_t)next_random(&seed);
            b[i] = (uint8_t)next_random(&seed);
        }
        for (unsigned bit = 0; bit < k; bit++) {
            uint8_t mask = (uint8_t)(0x80u >> (bit % 8));
            b[bit / 8] = (uint8_t)((b[bit / 8] & ~mask) | (a[bit / 8] & mask));
        }
        uint8_t mask_k = (uint8_t)(0x80u >> (k % 8));
        b[k / 8] = (uint8_t)((b[k / 8] & ~mask_k) | (~a[k / 8] & mask_k));
        assert_int_equal(common_prefix_bits(a, b, len), k);

        uint8_t out_a[16];
        uint8_t out_b[16];
        assert_int_equal(anon_prefix_preserving(ctx, family, a, out_a), FV_OK);
        assert_int_equal(anon_prefix_preserving(ctx, family, b, out_b), FV_OK);
        if (common_prefix_bits(out_a, out_b, len) != k)
            fail_msg("IPv%d inputs sharing %u bits gave outputs sharing %u bits", family, k,
                     common_prefix_bits(out_a, out_b, len));
    }
}

static void test_prefix_preserving_keeps_shared_prefix(void **state)
{
    fixture *f = *state;
    check_shared_prefix(f->ctx, 4, 0x9e3779b97f4a7c15ull);
    check_shared_prefix(f->ctx, 6, 0xc2b2ae3d27d4eb4full);
}

/* Within one epoch an address always maps to the same output. */
static void test_prefix_preserving_is_deterministic(void **state)
{
    fixture *f = *state;
    uint8_t in[16];
    uint8_t first[16];
    uint8_t second[16];

    parse_addr("10.1.0.5", in);
    assert_int_equal(anon_prefix_preserving(f->ctx, 4, in, first), FV_OK);
    assert_int_equal(anon_prefix_preserving(f->ctx, 4, in, second), FV_OK);
    assert_memory_equal(first, second, 16);
}

static void test_prefix_preserving_changes_with_epoch(void **state)
{
    fixture *f = *state;
    uint8_t in[16];
    uint8_t before[16];
    uint8_t after[16];

    parse_addr("10.1.0.5", in);
    assert_int_equal(anon_prefix_preserving(f->ctx, 4, in, before), FV_OK);
    assert_int_equal(anon_rotate(f->ctx, KAT_START_S + 20), FV_OK);
    assert_int_equal(anon_prefix_preserving(f->ctx, 4, in, after), FV_OK);
    /* A fresh random key agrees on all 32 bits with probability 2^-32. */
    assert_memory_not_equal(before, after, 4);
}

/* The IPv4 and IPv6 subkeys differ: ::a01:5 (the IPv6 address whose last
 * four bytes are 10.1.0.5) maps to a tail unrelated to 10.1.0.5's. */
static void test_prefix_preserving_separates_families(void **state)
{
    fixture *f = *state;
    uint8_t v4[16];
    uint8_t v6[16];
    uint8_t out4[16];
    uint8_t out6[16];

    parse_addr("10.1.0.5", v4);
    memcpy(v6, v4, 4);
    memset(v6 + 4, 0, 12);
    assert_int_equal(anon_prefix_preserving(f->ctx, 4, v4, out4), FV_OK);
    assert_int_equal(anon_prefix_preserving(f->ctx, 6, v6, out6), FV_OK);
    assert_memory_not_equal(out4, out6, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prefix_preserving_known_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_preserving_ipv4_zeroes_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pseudonymize_known_answers, setup, teardown),
        cmocka_unit_test(test_truncate_known_answers),
        cmocka_unit_test(test_truncate_rejects_bad_arguments),
        cmocka_unit_test_setup_teardown(test_prefix_preserving_rejects_bad_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_preserving_keeps_shared_prefix, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prefix_preserving_is_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_preserving_changes_with_epoch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_prefix_preserving_separates_families, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
