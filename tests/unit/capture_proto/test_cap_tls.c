/*
 * test_cap_tls.c: cap_tls_parse_client_hello on hand-built ClientHellos.
 *
 * A hello body is the fixed part below followed by one of the extension
 * blocks. build_stream wraps it in a handshake header and in one or two
 * TLS records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_proto.h"

#define STREAM_MAX 512

/* ClientHello body up to the extensions. */
static const uint8_t hello_fixed[] = {
    0x03, 0x03,                                     /* legacy_version TLS 1.2 */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, /* random, 32 bytes */
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00,                                           /* legacy_session_id: empty */
    0x00, 0x04, 0x13, 0x01, 0xc0, 0x2f,             /* cipher_suites: 2 suites */
    0x01, 0x00,                                     /* compression: null only */
};

/* Extensions: server_name "example.com", supported_versions TLS 1.3. */
static const uint8_t ext_sni_example[] = {
    0x00, 0x1b,                     /* extensions length 27 */
    0x00, 0x00, 0x00, 0x10,         /* server_name, length 16 */
    0x00, 0x0e,                     /* server_name_list length 14 */
    0x00, 0x00, 0x0b,               /* host_name, length 11 */
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    0x00, 0x2b, 0x00, 0x03,         /* supported_versions, length 3 */
    0x02, 0x03, 0x04,               /* list length 2: TLS 1.3 */
};

/* Extensions: ec_point_formats only, no server_name. */
static const uint8_t ext_no_sni[] = {
    0x00, 0x06,                     /* extensions length 6 */
    0x00, 0x0b, 0x00, 0x02,         /* ec_point_formats, length 2 */
    0x01, 0x00,                     /* list length 1: uncompressed */
};

/* No extensions block at all, as TLS 1.0 clients may send. */
static const uint8_t ext_absent[] = {0};

/* server_name extension that claims 64 bytes while 23 are left in the
 * 27-byte block. */
static const uint8_t ext_overflow[] = {
    0x00, 0x1b,                     /* extensions length 27 */
    0x00, 0x00, 0x00, 0x40,         /* server_name, length 64: too long */
    0x00, 0x0e,
    0x00, 0x00, 0x0b,
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    0x00, 0x2b, 0x00, 0x03,
    0x02, 0x03, 0x04,
};

/* Extensions block length 8 while 6 bytes follow. */
static const uint8_t ext_block_overflow[] = {
    0x00, 0x08,                     /* extensions length 8: too long */
    0x00, 0x0b, 0x00, 0x02,         /* ec_point_formats, length 2 */
    0x01, 0x00,
};

/* server_name_list length 20 inside a 16-byte extension. */
static const uint8_t ext_list_overflow[] = {
    0x00, 0x14,                     /* extensions length 20 */
    0x00, 0x00, 0x00, 0x10,         /* server_name, length 16 */
    0x00, 0x14,                     /* server_name_list length 20: too long */
    0x00, 0x00, 0x0b,
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
};

/* host_name "bad\0com" with a NUL byte. */
static const uint8_t ext_sni_nul[] = {
    0x00, 0x10,                     /* extensions length 16 */
    0x00, 0x00, 0x00, 0x0c,         /* server_name, length 12 */
    0x00, 0x0a,                     /* list length 10 */
    0x00, 0x00, 0x07,               /* host_name, length 7 */
    'b', 'a', 'd', 0x00, 'c', 'o', 'm',
};

/* host_name "caf\xe9 x\\" (Latin-1 e-acute, a space, a backslash). */
static const uint8_t ext_sni_odd_bytes[] = {
    0x00, 0x10,                     /* extensions length 16 */
    0x00, 0x00, 0x00, 0x0c,         /* server_name, length 12 */
    0x00, 0x0a,                     /* list length 10 */
    0x00, 0x00, 0x07,               /* host_name, length 7 */
    'c', 'a', 'f', 0xe9, ' ', 'x', '\\',
};

/*
 * Write into OUT the record stream carrying a ClientHello whose body is
 * hello_fixed + EXT: handshake header (type 1, 24-bit length) + body,
 * in one record (SPLIT 0) or in two records with the first holding SPLIT
 * handshake bytes. Records are type 22 with version 0x0301. Return the
 * stream length.
 */
static size_t build_stream(const uint8_t *ext, size_t ext_len, size_t split, uint8_t *out)
{
    uint8_t handshake[STREAM_MAX];
    size_t body_len = sizeof(hello_fixed) + ext_len;
    size_t hs_len = 4 + body_len;
    assert_true(hs_len <= sizeof(handshake));

    handshake[0] = 0x01;
    handshake[1] = (uint8_t)(body_len >> 16);
    handshake[2] = (uint8_t)(body_len >> 8);
    handshake[3] = (uint8_t)body_len;
    memcpy(handshake + 4, hello_fixed, sizeof(hello_fixed));
    memcpy(handshake + 4 + sizeof(hello_fixed), ext, ext_len);

    size_t parts[2] = {split == 0 ? hs_len : split, split == 0 ? 0 : hs_len - split};
    size_t len = 0, done = 0;
    for (int i = 0; i < 2 && parts[i] > 0; i++) {
        assert_true(len + 5 + parts[i] <= STREAM_MAX);
        out[len++] = 0x16;                      /* content type handshake */
        out[len++] = 0x03;                      /* record version 3.1 */
        out[len++] = 0x01;
        out[len++] = (uint8_t)(parts[i] >> 8);  /* record length */
        out[len++] = (uint8_t)parts[i];
        memcpy(out + len, handshake + done, parts[i]);
        len += parts[i];
        done += parts[i];
    }
    return len;
}

static void test_tls_parses_hello_with_sni(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    size_t len = build_stream(ext_sni_example, sizeof(ext_sni_example), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_OK);
    assert_int_equal(hello.record_version, 0x0301);
    assert_int_equal(hello.version, 0x0303);
    assert_string_equal(hello.sni, "example.com");
}

static void test_tls_parses_hello_without_sni(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    size_t len = build_stream(ext_no_sni, sizeof(ext_no_sni), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_OK);
    assert_int_equal(hello.version, 0x0303);
    assert_string_equal(hello.sni, "");

    len = build_stream(ext_absent, 0, 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_OK);
    assert_int_equal(hello.version, 0x0303);
    assert_string_equal(hello.sni, "");
}

static void test_tls_joins_hello_split_across_records(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    /* Split inside the handshake header, inside the random, and inside
     * the server_name extension. */
    static const size_t splits[] = {1, 2, 3, 20, 60};
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        size_t len = build_stream(ext_sni_example, sizeof(ext_sni_example), splits[i], stream);
        assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_OK);
        assert_int_equal(hello.version, 0x0303);
        assert_string_equal(hello.sni, "example.com");
    }
}

static void test_tls_incomplete_hello_is_truncated(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    /* Every proper prefix of a one-record and of a two-record hello. */
    static const size_t splits[] = {0, 2, 40};
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        size_t len = build_stream(ext_sni_example, sizeof(ext_sni_example), splits[i], stream);
        for (size_t cut = 0; cut < len; cut++) {
            assert_int_equal(cap_tls_parse_client_hello(stream, cut, &hello), FV_ERR_TRUNCATED);
            assert_string_equal(hello.sni, "");
        }
    }
}

static void test_tls_rejects_wrong_content_type(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;
    size_t len = build_stream(ext_sni_example, sizeof(ext_sni_example), 0, stream);

    /* Application data (23) and alert (21) records. */
    stream[0] = 0x17;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    stream[0] = 0x15;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    /* The first byte alone is enough to reject. */
    assert_int_equal(cap_tls_parse_client_hello(stream, 1, &hello), FV_ERR_PARSE);
    stream[0] = 0x16;

    /* Record version 2.0 in a TLS record header. */
    stream[1] = 0x02;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    stream[1] = 0x03;

    /* Handshake type 2 (ServerHello) instead of 1. */
    stream[5] = 0x02;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    stream[5] = 0x01;

    /* A second record of another type before the hello is complete. */
    len = build_stream(ext_sni_example, sizeof(ext_sni_example), 20, stream);
    stream[5 + 20] = 0x17;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
}

static void test_tls_rejects_extension_overflow(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    size_t len = build_stream(ext_overflow, sizeof(ext_overflow), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    assert_string_equal(hello.sni, "");

    len = build_stream(ext_block_overflow, sizeof(ext_block_overflow), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);

    len = build_stream(ext_list_overflow, sizeof(ext_list_overflow), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
}

static void test_tls_rejects_bad_fixed_fields(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;
    size_t len = build_stream(ext_no_sni, sizeof(ext_no_sni), 0, stream);
    const size_t body = 5 + 4;          /* record header, handshake header */

    /* legacy_session_id length 33, above the maximum of 32. */
    stream[body + 34] = 33;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    stream[body + 34] = 0;

    /* cipher_suites length 3: not a whole number of suites. */
    stream[body + 36] = 3;
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
    stream[body + 36] = 4;

    /* Handshake length above 64 KiB (0x010001), rejected from the header. */
    stream[6] = 0x01;
    stream[7] = 0x00;
    stream[8] = 0x01;
    assert_int_equal(cap_tls_parse_client_hello(stream, 9, &hello), FV_ERR_PARSE);
}

static void test_tls_rejects_sni_with_nul(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    size_t len = build_stream(ext_sni_nul, sizeof(ext_sni_nul), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_ERR_PARSE);
}

static void test_tls_escapes_sni_bytes(void **state)
{
    (void)state;
    uint8_t stream[STREAM_MAX];
    cap_tls_hello hello;

    size_t len = build_stream(ext_sni_odd_bytes, sizeof(ext_sni_odd_bytes), 0, stream);
    assert_int_equal(cap_tls_parse_client_hello(stream, len, &hello), FV_OK);
    assert_string_equal(hello.sni, "caf\\233\\032x\\092");
}

/* SSL 2.0 CLIENT-HELLO: 7 cipher specs, no session id, 16-byte challenge. */
static const uint8_t sslv2_hello[] = {
    0x80, 0x2e,                     /* 2-byte header, record length 46 */
    0x01,                           /* CLIENT-HELLO */
    0x00, 0x02,                     /* version SSL 2.0 */
    0x00, 0x15,                     /* cipher_spec_length 21 */
    0x00, 0x00,                     /* session_id_length 0 */
    0x00, 0x10,                     /* challenge_length 16 */
    0x07, 0x00, 0xc0,               /* cipher specs, 3 bytes each */
    0x05, 0x00, 0x80,
    0x03, 0x00, 0x80,
    0x01, 0x00, 0x80,
    0x06, 0x00, 0x40,
    0x04, 0x00, 0x80,
    0x02, 0x00, 0x80,
    0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, /* challenge */
    0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
};

static void test_tls_parses_sslv2_hello(void **state)
{
    (void)state;
    uint8_t copy[sizeof(sslv2_hello)];
    cap_tls_hello hello;

    assert_int_equal(cap_tls_parse_client_hello(sslv2_hello, sizeof(sslv2_hello), &hello), FV_OK);
    assert_int_equal(hello.record_version, 0x0002);
    assert_int_equal(hello.version, 0x0002);
    assert_string_equal(hello.sni, "");

    /* The same hello from a client offering TLS 1.0 (version 3.1). */
    memcpy(copy, sslv2_hello, sizeof(copy));
    copy[3] = 0x03;
    copy[4] = 0x01;
    assert_int_equal(cap_tls_parse_client_hello(copy, sizeof(copy), &hello), FV_OK);
    assert_int_equal(hello.version, 0x0301);

    /* Prefixes wait for more bytes. */
    for (size_t cut = 1; cut < sizeof(sslv2_hello); cut++)
        assert_int_equal(cap_tls_parse_client_hello(sslv2_hello, cut, &hello), FV_ERR_TRUNCATED);

    /* Message type 4 (SERVER-HELLO) is rejected. */
    memcpy(copy, sslv2_hello, sizeof(copy));
    copy[2] = 0x04;
    assert_int_equal(cap_tls_parse_client_hello(copy, sizeof(copy), &hello), FV_ERR_PARSE);

    /* challenge_length 17 no longer adds up to the record length. */
    memcpy(copy, sslv2_hello, sizeof(copy));
    copy[10] = 0x11;
    assert_int_equal(cap_tls_parse_client_hello(copy, sizeof(copy), &hello), FV_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_parses_hello_with_sni),
        cmocka_unit_test(test_tls_parses_hello_without_sni),
        cmocka_unit_test(test_tls_joins_hello_split_across_records),
        cmocka_unit_test(test_tls_incomplete_hello_is_truncated),
        cmocka_unit_test(test_tls_rejects_wrong_content_type),
        cmocka_unit_test(test_tls_rejects_extension_overflow),
        cmocka_unit_test(test_tls_rejects_bad_fixed_fields),
        cmocka_unit_test(test_tls_rejects_sni_with_nul),
        cmocka_unit_test(test_tls_escapes_sni_bytes),
        cmocka_unit_test(test_tls_parses_sslv2_hello),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
