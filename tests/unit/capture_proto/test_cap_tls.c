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
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>

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

/* ---------------------------------------------------------------------- */
/* Full ClientHello fields, fingerprints, ServerHello, DTLS               */
/* ---------------------------------------------------------------------- */

/*
 * One ClientHello handshake message (no record header) with GREASE in the
 * ciphers, the extension list, supported_groups and supported_versions.
 * Expected JA3 string (GREASE left out, extensions in wire order):
 *   "771,4865-49199,0-10-11-13-16-43,29-23,0"
 * Expected JA4: t, 13 (highest supported version), d (SNI), 02 ciphers,
 * 06 extensions, "h2"; sha256("1301,c02f") and
 * sha256("000a,000b,000d,002b_0403,0804"), first 12 hex digits each.
 */
static const uint8_t full_hello[] = {
    0x01, 0x00, 0x00, 0x80,                         /* ClientHello, body length 128 */
    0x03, 0x03,                                     /* legacy_version TLS 1.2 */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, /* random, 32 bytes */
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00,                                           /* legacy_session_id: empty */
    0x00, 0x06, 0x0a, 0x0a, 0x13, 0x01, 0xc0, 0x2f, /* ciphers: GREASE, 1301, c02f */
    0x01, 0x00,                                     /* compression: null */
    0x00, 0x51,                                     /* extensions length 81 */
    0x1a, 0x1a, 0x00, 0x00,                         /* GREASE extension, empty */
    0x00, 0x00, 0x00, 0x10,                         /* server_name, length 16 */
    0x00, 0x0e, 0x00, 0x00, 0x0b,                   /* list 14, host_name length 11 */
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    0x00, 0x0a, 0x00, 0x08,                         /* supported_groups, length 8 */
    0x00, 0x06, 0x2a, 0x2a, 0x00, 0x1d, 0x00, 0x17, /* GREASE, x25519, secp256r1 */
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,             /* ec_point_formats: uncompressed */
    0x00, 0x0d, 0x00, 0x06,                         /* signature_algorithms, length 6 */
    0x00, 0x04, 0x04, 0x03, 0x08, 0x04,             /* ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256 */
    0x00, 0x10, 0x00, 0x0e,                         /* ALPN, length 14 */
    0x00, 0x0c, 0x02, 'h', '2',                     /* list 12: "h2", */
    0x08, 'h', 't', 't', 'p', '/', '1', '.', '1',   /* "http/1.1" */
    0x00, 0x2b, 0x00, 0x07,                         /* supported_versions, length 7 */
    0x06, 0x3a, 0x3a, 0x03, 0x04, 0x03, 0x03,       /* GREASE, TLS 1.3, TLS 1.2 */
};

/*
 * ServerHello: TLS 1.2 legacy version, cipher 0x1301, extensions
 * supported_versions (TLS 1.3) then ALPN "h2". JA3S string
 * "771,4865,43-16".
 */
static const uint8_t server_hello[] = {
    0x02, 0x00, 0x00, 0x37,                         /* ServerHello, body length 55 */
    0x03, 0x03,                                     /* legacy_version */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, /* random, 32 bytes */
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x00,                                           /* session id echo: empty */
    0x13, 0x01,                                     /* cipher TLS_AES_128_GCM_SHA256 */
    0x00,                                           /* compression null */
    0x00, 0x0f,                                     /* extensions length 15 */
    0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,             /* supported_versions: TLS 1.3 */
    0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 'h', '2', /* ALPN "h2" */
};

static void test_tls_hello_reports_lists_and_counts(void **state)
{
    (void)state;
    cap_tls_hello h;
    memset(&h, 0, sizeof h);
    assert_int_equal(cap_tls_parse_handshake_hello(full_hello, sizeof full_hello, 't', &h), FV_OK);
    assert_false(h.is_server);
    assert_int_equal(h.version, 0x0303);
    assert_string_equal(h.sni, "example.com");
    assert_int_equal(h.alpn_count, 2);
    assert_string_equal(h.alpn[0], "h2");
    assert_string_equal(h.alpn[1], "http/1.1");
    assert_int_equal(h.supported_versions_count, 3);
    assert_int_equal(h.supported_versions[0], 0x3a3a);
    assert_int_equal(h.supported_versions[1], 0x0304);
    assert_int_equal(h.supported_versions[2], 0x0303);
    assert_int_equal(h.cipher_count, 3);        /* GREASE included */
    assert_int_equal(h.extension_count, 7);     /* GREASE included */
    assert_string_equal(h.ja3s, "");
}

static void test_tls_ja3_leaves_out_grease(void **state)
{
    (void)state;
    cap_tls_hello h;
    memset(&h, 0, sizeof h);
    assert_int_equal(cap_tls_parse_handshake_hello(full_hello, sizeof full_hello, 't', &h), FV_OK);
    /* md5("771,4865-49199,0-10-11-13-16-43,29-23,0") */
    assert_string_equal(h.ja3, "97737df38853b88c4324af06e211c4a1");
}

static void test_tls_ja4_of_known_hello(void **state)
{
    (void)state;
    cap_tls_hello h;
    memset(&h, 0, sizeof h);
    assert_int_equal(cap_tls_parse_handshake_hello(full_hello, sizeof full_hello, 't', &h), FV_OK);
    assert_string_equal(h.ja4, "t13d0206h2_c1929292aa6b_fb71836bce29");

    /* QUIC changes only the first character. */
    assert_int_equal(cap_tls_parse_handshake_hello(full_hello, sizeof full_hello, 'q', &h), FV_OK);
    assert_string_equal(h.ja4, "q13d0206h2_c1929292aa6b_fb71836bce29");
}

/* Lowercase hex of the first N bytes of DIGEST into OUT (2 * N + 1). */
static void hex_of(const uint8_t *digest, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/*
 * A ClientHello with NCIPHERS cipher suites and no extensions: JA3 and
 * the cipher hash of JA4 must equal MD5 and SHA-256 of the text built
 * here. 120 suites make both texts longer than the chunks in which the
 * parser hashes them, and more than the 32 values it sorts by insertion.
 * 300 suites are more than its 256-value array on the stack holds.
 */
static void check_fingerprints_with_ciphers(size_t nciphers)
{
    uint8_t msg[4 + 35 + 2 + 2 * 300 + 2];
    uint16_t vals[300], sorted[300];
    char ja3_text[8 * 300 + 16], ja4_text[5 * 300 + 1];
    char want_ja3[2 * MD5_DIGEST_SIZE + 1], want_c[13];
    uint8_t digest[SHA256_DIGEST_SIZE];
    size_t n = 0, t = 0, k = 0;
    cap_tls_hello h;

    assert_true(nciphers <= 300);
    /* Descending values of four and five decimal digits, no GREASE. */
    for (size_t i = 0; i < nciphers; i++) {
        vals[i] = (uint16_t)(65000u - i * 211u);
        assert_false(cap_tls_is_grease(vals[i]));
    }

    size_t body_len = 35 + 2 + 2 * nciphers + 2; /* version, random, session id, ciphers, compression */
    msg[n++] = 0x01;                                /* ClientHello */
    msg[n++] = 0x00;                                /* body length, 24 bits */
    msg[n++] = (uint8_t)(body_len >> 8);
    msg[n++] = (uint8_t)body_len;
    msg[n++] = 0x03;                                /* legacy_version TLS 1.2 */
    msg[n++] = 0x03;
    memset(msg + n, 0, 32);                         /* random */
    n += 32;
    msg[n++] = 0x00;                                /* legacy_session_id: empty */
    msg[n++] = (uint8_t)((2 * nciphers) >> 8);      /* cipher_suites length */
    msg[n++] = (uint8_t)(2 * nciphers);
    for (size_t i = 0; i < nciphers; i++) {
        msg[n++] = (uint8_t)(vals[i] >> 8);
        msg[n++] = (uint8_t)vals[i];
    }
    msg[n++] = 0x01;                                /* compression: null only */
    msg[n++] = 0x00;
    /* No extensions block. */

    memset(&h, 0, sizeof h);
    assert_int_equal(cap_tls_parse_handshake_hello(msg, n, 't', &h), FV_OK);

    /* JA3: "771,<ciphers in wire order>,,," (no extensions, groups or
     * point formats). */
    t += (size_t)snprintf(ja3_text + t, sizeof ja3_text - t, "771,");
    for (size_t i = 0; i < nciphers; i++)
        t += (size_t)snprintf(ja3_text + t, sizeof ja3_text - t, "%s%u", i ? "-" : "",
                              (unsigned)vals[i]);
    t += (size_t)snprintf(ja3_text + t, sizeof ja3_text - t, ",,,");
    struct md5_ctx md5;
    md5_init(&md5);
    md5_update(&md5, t, (const uint8_t *)ja3_text);
    md5_digest(&md5, MD5_DIGEST_SIZE, digest);
    hex_of(digest, MD5_DIGEST_SIZE, want_ja3);
    assert_string_equal(h.ja3, want_ja3);

    /* JA4 ciphers: the sorted values as 4-digit hex, comma-separated. */
    memcpy(sorted, vals, nciphers * sizeof vals[0]);
    for (size_t i = 0; i < nciphers / 2; i++) {
        uint16_t v = sorted[i];
        sorted[i] = sorted[nciphers - 1 - i];
        sorted[nciphers - 1 - i] = v;
    }
    for (size_t i = 0; i < nciphers; i++)
        k += (size_t)snprintf(ja4_text + k, sizeof ja4_text - k, "%s%04x", i ? "," : "",
                              (unsigned)sorted[i]);
    struct sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, k, (const uint8_t *)ja4_text);
    sha256_digest(&sha, sizeof digest, digest);
    hex_of(digest, 6, want_c);
    const char *c_hash = strchr(h.ja4, '_');
    assert_non_null(c_hash);
    assert_int_equal(strncmp(c_hash + 1, want_c, 12), 0);
    assert_int_equal(c_hash[13], '_');
}

static void test_tls_fingerprints_of_long_lists(void **state)
{
    (void)state;
    check_fingerprints_with_ciphers(1);
    check_fingerprints_with_ciphers(20);
    check_fingerprints_with_ciphers(33);
    check_fingerprints_with_ciphers(120);
    check_fingerprints_with_ciphers(300);
}

static void test_tls_grease_detection(void **state)
{
    (void)state;
    assert_true(cap_tls_is_grease(0x0a0a));
    assert_true(cap_tls_is_grease(0xfafa));
    assert_false(cap_tls_is_grease(0x0a1a));
    assert_false(cap_tls_is_grease(0x1301));
}

static void test_tls_server_hello_and_ja3s(void **state)
{
    (void)state;
    cap_tls_hello h;
    memset(&h, 0, sizeof h);
    assert_int_equal(cap_tls_parse_handshake_hello(full_hello, sizeof full_hello, 't', &h), FV_OK);
    assert_int_equal(cap_tls_parse_handshake_hello(server_hello, sizeof server_hello, 't', &h),
                     FV_OK);
    assert_true(h.is_server);
    assert_int_equal(h.server_version, 0x0304);     /* from supported_versions */
    assert_int_equal(h.server_legacy_version, 0x0303);
    assert_int_equal(h.server_cipher, 0x1301);
    assert_string_equal(h.server_alpn, "h2");
    /* md5("771,4865,43-16") */
    assert_string_equal(h.ja3s, "2b83a23dea22815f9c4ffaaeaebdc796");
    /* The client fields of the same connection stay. */
    assert_string_equal(h.sni, "example.com");
    assert_string_equal(h.ja3, "97737df38853b88c4324af06e211c4a1");
}

static void test_tls_server_hello_from_record_stream(void **state)
{
    (void)state;
    uint8_t stream[5 + sizeof server_hello];
    cap_tls_hello h;
    memset(&h, 0, sizeof h);
    stream[0] = 0x16;                                   /* handshake record */
    stream[1] = 0x03;                                   /* version 3.3 */
    stream[2] = 0x03;
    stream[3] = 0x00;                                   /* record length */
    stream[4] = (uint8_t)sizeof server_hello;
    memcpy(stream + 5, server_hello, sizeof server_hello);
    assert_int_equal(cap_tls_parse_server_hello(stream, sizeof stream - 1, &h), FV_ERR_TRUNCATED);
    assert_int_equal(cap_tls_parse_server_hello(stream, sizeof stream, &h), FV_OK);
    assert_int_equal(h.server_cipher, 0x1301);
}

static void test_tls_handshake_hello_truncation(void **state)
{
    (void)state;
    cap_tls_hello h;
    memset(&h, 0, sizeof h);
    for (size_t n = 0; n < sizeof full_hello; n++)
        assert_int_equal(cap_tls_parse_handshake_hello(full_hello, n, 't', &h), FV_ERR_TRUNCATED);
    assert_string_equal(h.ja3, "");

    /* A message type other than ClientHello or ServerHello. */
    uint8_t finished[sizeof full_hello];
    memcpy(finished, full_hello, sizeof finished);
    finished[0] = 20;
    assert_int_equal(cap_tls_parse_handshake_hello(finished, sizeof finished, 't', &h),
                     FV_ERR_PARSE);
}

/*
 * Build one DTLS datagram holding one handshake record with a fragment of
 * full_hello's body, as a DTLS 1.2 ClientHello. DTLS adds an empty cookie
 * after the session id, so the body here is full_hello's body with one
 * 0x00 byte inserted at offset 35 (2 version + 32 random + 1 session id
 * length).
 */
static size_t dtls_fragment(const uint8_t *body, size_t body_len, size_t off, size_t frag_len,
                            uint8_t *out)
{
    size_t rec_len = 12 + frag_len;
    size_t n = 0;
    out[n++] = 0x16;                                    /* handshake */
    out[n++] = 0xfe;                                    /* DTLS 1.2 */
    out[n++] = 0xfd;
    out[n++] = 0x00; out[n++] = 0x00;                   /* epoch 0 */
    for (int i = 0; i < 6; i++)
        out[n++] = 0x00;                                /* sequence number */
    out[n++] = (uint8_t)(rec_len >> 8);                 /* record length */
    out[n++] = (uint8_t)rec_len;
    out[n++] = 0x01;                                    /* ClientHello */
    out[n++] = 0x00;                                    /* message length, 24 bits */
    out[n++] = (uint8_t)(body_len >> 8);
    out[n++] = (uint8_t)body_len;
    out[n++] = 0x00; out[n++] = 0x00;                   /* message_seq 0 */
    out[n++] = 0x00;                                    /* fragment_offset */
    out[n++] = (uint8_t)(off >> 8);
    out[n++] = (uint8_t)off;
    out[n++] = 0x00;                                    /* fragment_length */
    out[n++] = (uint8_t)(frag_len >> 8);
    out[n++] = (uint8_t)frag_len;
    memcpy(out + n, body + off, frag_len);
    return n + frag_len;
}

static void test_dtls_joins_fragmented_hello(void **state)
{
    (void)state;
    uint8_t body[sizeof full_hello];
    size_t body_len = sizeof full_hello - 4 + 1;
    /* body = full_hello body with the DTLS cookie length (0) after the session id */
    memcpy(body, full_hello + 4, 35);
    body[35] = 0x00;
    body[2] = 0x03;     /* keep random as is; the version is set below */
    memcpy(body + 36, full_hello + 4 + 35, sizeof full_hello - 4 - 35);
    body[0] = 0xfe;     /* legacy_version DTLS 1.2 */
    body[1] = 0xfd;

    uint8_t dgram[256];
    cap_dtls_reasm r;
    cap_tls_hello h;
    memset(&r, 0, sizeof r);
    memset(&h, 0, sizeof h);

    size_t n = dtls_fragment(body, body_len, 0, 50, dgram);
    assert_true(cap_dtls_looks_like_client_hello(dgram, n));
    assert_int_equal(cap_dtls_feed(&r, dgram, n, 1, &h), FV_ERR_TRUNCATED);
    /* The same fragment again (a retransmission) changes nothing. */
    assert_int_equal(cap_dtls_feed(&r, dgram, n, 1, &h), FV_ERR_TRUNCATED);
    n = dtls_fragment(body, body_len, 50, body_len - 50, dgram);
    assert_int_equal(cap_dtls_feed(&r, dgram, n, 1, &h), FV_OK);
    assert_string_equal(h.sni, "example.com");
    assert_int_equal(h.version, 0xfefd);
    /* JA4: 'd' transport; supported_versions still gives 13. */
    assert_string_equal(h.ja4, "d13d0206h2_c1929292aa6b_fb71836bce29");
    cap_dtls_reasm_clear(&r);

    /* A datagram that is not DTLS. */
    memset(&r, 0, sizeof r);
    static const uint8_t not_dtls[] = {0x17, 0x03, 0x03, 0x00, 0x01, 0x00}; /* TLS app data */
    assert_int_equal(cap_dtls_feed(&r, not_dtls, sizeof not_dtls, 1, &h), FV_ERR_PARSE);
    cap_dtls_reasm_clear(&r);
}

static void test_tls_sslv2_hello_has_no_fingerprints(void **state)
{
    (void)state;
    /* SSLv2 record: header 0x80 0x1c (28 bytes), CLIENT-HELLO, version
     * 3.1, 3 cipher bytes, no session id, 16-byte challenge. */
    static const uint8_t v2[] = {
        0x80, 0x1c, 0x01, 0x03, 0x01,
        0x00, 0x03, 0x00, 0x00, 0x00, 0x10,             /* cipher, session, challenge lengths */
        0x00, 0x00, 0x04,                               /* one cipher spec */
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, /* challenge */
    };
    cap_tls_hello h;
    assert_int_equal(cap_tls_parse_client_hello(v2, sizeof v2, &h), FV_OK);
    assert_true(h.sslv2_format);
    assert_int_equal(h.cipher_count, 1);
    assert_string_equal(h.ja3, "");
    assert_string_equal(h.ja4, "");
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
        cmocka_unit_test(test_tls_hello_reports_lists_and_counts),
        cmocka_unit_test(test_tls_ja3_leaves_out_grease),
        cmocka_unit_test(test_tls_ja4_of_known_hello),
        cmocka_unit_test(test_tls_fingerprints_of_long_lists),
        cmocka_unit_test(test_tls_grease_detection),
        cmocka_unit_test(test_tls_server_hello_and_ja3s),
        cmocka_unit_test(test_tls_server_hello_from_record_stream),
        cmocka_unit_test(test_tls_handshake_hello_truncation),
        cmocka_unit_test(test_dtls_joins_fragmented_hello),
        cmocka_unit_test(test_tls_sslv2_hello_has_no_fingerprints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
