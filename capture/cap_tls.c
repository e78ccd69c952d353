/*
 * cap_tls.c: TLS ClientHello parser (record version, legacy_version, SNI).
 *
 * Contract (see cap_proto.h for the shared return codes):
 * - Input is the client's byte stream from its first byte: TLS records of
 *   content type 22 (handshake) with a 0x03xx record version. The
 *   handshake bytes of consecutive records are joined until the
 *   ClientHello (handshake type 1) is complete, so a hello split over
 *   several records, or a handshake header split between two, is parsed.
 * - FV_ERR_TRUNCATED: the bytes so far are a valid prefix of a hello.
 * - FV_ERR_PARSE: anything else. At the record layer that is another
 *   content type, a record version without major 3, or an empty record or
 *   one above 2^14 bytes. In the handshake it is a first message that is
 *   not a ClientHello, a hello body above 64 KiB, any length field that
 *   overruns its enclosing block, bytes after the extensions block, or a
 *   server_name with a NUL byte.
 * - FV_ERR_NOMEM: the hello spans several records and the 64 KiB (at
 *   most) buffer to join them could not be allocated.
 * - sni is the first host_name entry of the server_name extension
 *   (type 0), or "" when there is none. Bytes outside 0x21..0x7e and '\'
 *   are written as "\DDD". A name whose escaped form exceeds FV_NAME_MAX - 1
 *   characters is cut at a whole character or escape.
 * - SSLv2-format hello: when the first byte has its high bit set, the
 *   input is read as an SSL 2.0 record with a 2-byte header holding a
 *   CLIENT-HELLO (message type 1). record_version is then 0x0002, version
 *   is the hello's version field (0x0002, or 0x03xx from a client that
 *   offers TLS in a v2-compatible hello), and sni is "".
 * - On any return other than FV_OK, *out is zeroed.
 */
#include <stdlib.h>
#include <string.h>

#include "cap_proto.h"
#include "cap_reader.h"

#define CAP_TLS_CONTENT_HANDSHAKE 22
#define CAP_TLS_HANDSHAKE_CLIENT_HELLO 1
#define CAP_TLS_RECORD_HEADER_BYTES 5
#define CAP_TLS_HANDSHAKE_HEADER_BYTES 4
#define CAP_TLS_RECORD_MAX_BYTES 16384u     /* 2^14, RFC 8446 section 5.1 */
#define CAP_TLS_HELLO_MAX_BYTES 65536u      /* hello body; our own bound */
#define CAP_TLS_RANDOM_BYTES 32
#define CAP_TLS_SESSION_ID_MAX 32
#define CAP_TLS_EXT_SERVER_NAME 0
#define CAP_TLS_SNI_HOST_NAME 0

#define CAP_SSL2_RECORD_VERSION 0x0002u
#define CAP_SSL2_HEADER_BYTES 2
#define CAP_SSL2_HELLO_FIXED_BYTES 9        /* type, version, three lengths */
#define CAP_SSL2_CIPHER_SPEC_BYTES 3
#define CAP_SSL2_CHALLENGE_MIN 16
#define CAP_SSL2_CHALLENGE_MAX 32

/*
 * Where the ClientHello's handshake bytes are in the record stream,
 * filled by tls_locate_hello.
 */
typedef struct tls_hello_span {
    uint16_t record_version;    /* of the first record */
    uint32_t body_len;          /* hello body length from the handshake header */
    const uint8_t *first_body;  /* handshake bytes of the first record */
    size_t first_body_len;      /* how many of them are present in the input */
} tls_hello_span;

/*
 * Walk the records at the start of DATA until they hold the whole
 * ClientHello (4-byte handshake header plus body), validating each
 * record header on the way. Returns FV_ERR_TRUNCATED when the input ends
 * first, FV_ERR_PARSE as soon as a record or the handshake header is
 * invalid. The walk ends because each record contributes at least one
 * byte and the hello is at most 4 + 64 KiB bytes.
 */
static int tls_locate_hello(const uint8_t *data, size_t len, tls_hello_span *span)
{
    cap_reader rd;
    uint8_t head[CAP_TLS_HANDSHAKE_HEADER_BYTES];
    size_t head_have = 0;
    size_t need = CAP_TLS_HANDSHAKE_HEADER_BYTES;
    size_t have = 0;
    bool first = true;

    cap_rd_init(&rd, data, len);
    while (have < need) {
        uint8_t content_type;
        uint16_t version, record_len;
        const uint8_t *body;
        int rc;

        /* Record header: content type, version, length. */
        rc = cap_rd_u8(&rd, &content_type);
        if (rc != FV_OK)
            return rc;
        if (content_type != CAP_TLS_CONTENT_HANDSHAKE)
            return FV_ERR_PARSE;
        rc = cap_rd_be16(&rd, &version);
        if (rc != FV_OK)
            return rc;
        if ((version >> 8) != 3)
            return FV_ERR_PARSE;
        rc = cap_rd_be16(&rd, &record_len);
        if (rc != FV_OK)
            return rc;
        if (record_len == 0 || record_len > CAP_TLS_RECORD_MAX_BYTES)
            return FV_ERR_PARSE;

        /* Take the part of the record body that is present in the input. */
        size_t avail = record_len <= rd.remaining ? record_len : rd.remaining;
        (void)cap_rd_bytes(&rd, avail, &body);
        if (first) {
            span->record_version = version;
            span->first_body = body;
            span->first_body_len = avail;
            first = false;
        }

        /* Collect the handshake header, which may itself be split. */
        for (size_t i = 0; i < avail && head_have < sizeof(head); i++)
            head[head_have++] = body[i];
        if (head_have >= 1 && head[0] != CAP_TLS_HANDSHAKE_CLIENT_HELLO)
            return FV_ERR_PARSE;
        if (head_have == sizeof(head) && need == CAP_TLS_HANDSHAKE_HEADER_BYTES) {
            span->body_len = ((uint32_t)head[1] << 16) | ((uint32_t)head[2] << 8) | head[3];
            if (span->body_len > CAP_TLS_HELLO_MAX_BYTES)
                return FV_ERR_PARSE;
            need = CAP_TLS_HANDSHAKE_HEADER_BYTES + (size_t)span->body_len;
        }

        have += avail;
        if (avail < record_len && have < need)
            return FV_ERR_TRUNCATED;
    }
    return FV_OK;
}

/*
 * Copy the handshake bytes of the records at DATA into BUF until
 * BUF_LEN bytes are copied. tls_locate_hello has already validated the
 * record headers and checked that the input contains BUF_LEN handshake
 * bytes.
 */
static void tls_join_records(const uint8_t *data, size_t len, uint8_t *buf, size_t buf_len)
{
    cap_reader rd;
    size_t have = 0;

    cap_rd_init(&rd, data, len);
    while (have < buf_len) {
        uint16_t record_len;
        const uint8_t *body;

        if (cap_rd_skip(&rd, 3) != FV_OK || cap_rd_be16(&rd, &record_len) != FV_OK)
            return;
        size_t take = buf_len - have < record_len ? buf_len - have : record_len;
        if (cap_rd_bytes(&rd, take, &body) != FV_OK)
            return;
        memcpy(buf + have, body, take);
        have += take;
    }
}

/* Copy the first host_name of a server_name extension body (RFC 6066
 * section 3) into OUT. Entries of other name types are skipped. */
static int tls_parse_server_name(cap_reader *ext, cap_tls_hello *out)
{
    uint16_t list_len;
    cap_reader list;

    /* An empty extension carries no name. Servers send it that way; a
     * client that does is tolerated. */
    if (ext->remaining == 0)
        return FV_OK;

    if (cap_rd_be16(ext, &list_len) != FV_OK || list_len != ext->remaining)
        return FV_ERR_PARSE;
    (void)cap_rd_sub(ext, list_len, &list);

    while (list.remaining > 0) {
        uint8_t name_type;
        uint16_t name_len;
        const uint8_t *name;

        if (cap_rd_u8(&list, &name_type) != FV_OK || cap_rd_be16(&list, &name_len) != FV_OK ||
            cap_rd_bytes(&list, name_len, &name) != FV_OK)
            return FV_ERR_PARSE;
        if (name_type != CAP_TLS_SNI_HOST_NAME)
            continue;

        if (name_len == 0 || memchr(name, '\0', name_len) != NULL)
            return FV_ERR_PARSE;
        size_t pos = 0;
        for (size_t i = 0; i < name_len; i++) {
            if (!cap_text_append(out->sni, sizeof(out->sni), &pos, name[i], false))
                break;
        }
        return FV_OK;
    }
    return FV_OK;
}

/*
 * Parse a complete ClientHello body (RFC 8446 section 4.1.2, RFC 5246
 * section 7.4.1.2): legacy_version, random, legacy_session_id,
 * cipher_suites, legacy_compression_methods, then optional extensions.
 * The body is complete, so running out of bytes is FV_ERR_PARSE.
 */
static int tls_parse_hello_body(const uint8_t *body, size_t body_len, cap_tls_hello *out)
{
    cap_reader rd;
    uint8_t session_id_len, compression_len;
    uint16_t cipher_len, extensions_len;
    cap_reader extensions;
    bool have_sni = false;

    cap_rd_init(&rd, body, body_len);

    if (cap_rd_be16(&rd, &out->version) != FV_OK || (out->version >> 8) != 3)
        return FV_ERR_PARSE;
    if (cap_rd_skip(&rd, CAP_TLS_RANDOM_BYTES) != FV_OK)
        return FV_ERR_PARSE;

    if (cap_rd_u8(&rd, &session_id_len) != FV_OK || session_id_len > CAP_TLS_SESSION_ID_MAX ||
        cap_rd_skip(&rd, session_id_len) != FV_OK)
        return FV_ERR_PARSE;

    /* cipher_suites<2..2^16-2>: two bytes per suite. */
    if (cap_rd_be16(&rd, &cipher_len) != FV_OK || cipher_len < 2 || cipher_len % 2 != 0 ||
        cap_rd_skip(&rd, cipher_len) != FV_OK)
        return FV_ERR_PARSE;

    if (cap_rd_u8(&rd, &compression_len) != FV_OK || compression_len < 1 ||
        cap_rd_skip(&rd, compression_len) != FV_OK)
        return FV_ERR_PARSE;

    /* Hellos before TLS 1.2 may end here without an extensions block. */
    if (rd.remaining == 0)
        return FV_OK;

    if (cap_rd_be16(&rd, &extensions_len) != FV_OK || extensions_len != rd.remaining)
        return FV_ERR_PARSE;
    (void)cap_rd_sub(&rd, extensions_len, &extensions);

    while (extensions.remaining > 0) {
        uint16_t ext_type, ext_len;
        cap_reader ext;

        if (cap_rd_be16(&extensions, &ext_type) != FV_OK ||
            cap_rd_be16(&extensions, &ext_len) != FV_OK ||
            cap_rd_sub(&extensions, ext_len, &ext) != FV_OK)
            return FV_ERR_PARSE;

        /* A repeated server_name is left to the server to reject; the
         * first one is reported. */
        if (ext_type == CAP_TLS_EXT_SERVER_NAME && !have_sni) {
            int rc = tls_parse_server_name(&ext, out);
            if (rc != FV_OK)
                return rc;
            have_sni = true;
        }
    }
    return FV_OK;
}

/*
 * Parse an SSL 2.0 CLIENT-HELLO, also sent as the v2-compatible hello of
 * RFC 5246 appendix E.2. A 2-byte record header has the high bit set and
 * a 15-bit length. Then come message type 1, version, cipher_spec_length,
 * session_id_length and challenge_length, and the bytes of those three
 * fields. The record length must equal the sum.
 */
static int tls_parse_sslv2_hello(const uint8_t *data, size_t len, cap_tls_hello *out)
{
    cap_reader rd;
    uint8_t b0, b1, msg_type;
    uint16_t version, cipher_len, session_id_len, challenge_len;

    cap_rd_init(&rd, data, len);
    if (cap_rd_u8(&rd, &b0) != FV_OK || cap_rd_u8(&rd, &b1) != FV_OK)
        return FV_ERR_TRUNCATED;
    size_t record_len = ((size_t)(b0 & 0x7F) << 8) | b1;
    if (record_len < CAP_SSL2_HELLO_FIXED_BYTES)
        return FV_ERR_PARSE;

    /* Reject a wrong message type before waiting for the rest. */
    if (cap_rd_u8(&rd, &msg_type) != FV_OK)
        return FV_ERR_TRUNCATED;
    if (msg_type != CAP_TLS_HANDSHAKE_CLIENT_HELLO)
        return FV_ERR_PARSE;
    if (!(record_len - 1 <= rd.remaining))
        return FV_ERR_TRUNCATED;

    (void)cap_rd_be16(&rd, &version);
    (void)cap_rd_be16(&rd, &cipher_len);
    (void)cap_rd_be16(&rd, &session_id_len);
    (void)cap_rd_be16(&rd, &challenge_len);

    if ((version >> 8) != 0 && (version >> 8) != 3)
        return FV_ERR_PARSE;
    if (cipher_len == 0 || cipher_len % CAP_SSL2_CIPHER_SPEC_BYTES != 0)
        return FV_ERR_PARSE;
    if (session_id_len > CAP_TLS_SESSION_ID_MAX)
        return FV_ERR_PARSE;
    if (challenge_len < CAP_SSL2_CHALLENGE_MIN || challenge_len > CAP_SSL2_CHALLENGE_MAX)
        return FV_ERR_PARSE;
    if ((size_t)CAP_SSL2_HELLO_FIXED_BYTES + cipher_len + session_id_len + challenge_len !=
        record_len)
        return FV_ERR_PARSE;

    out->record_version = CAP_SSL2_RECORD_VERSION;
    out->version = version;
    out->sni[0] = '\0';
    return FV_OK;
}

int cap_tls_parse_client_hello(const uint8_t *data, size_t len, cap_tls_hello *out)
{
    tls_hello_span span;
    uint8_t *joined = NULL;
    const uint8_t *hello;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&span, 0, sizeof(span));

    if (len == 0) {
        rc = FV_ERR_TRUNCATED;
        goto out;
    }
    if (data[0] & 0x80) {
        rc = tls_parse_sslv2_hello(data, len, out);
        goto out;
    }

    rc = tls_locate_hello(data, len, &span);
    if (rc != FV_OK)
        goto out;

    /* Parse in place when the first record contains the whole hello, the
     * common case; otherwise join the records into one buffer. */
    size_t hello_len = CAP_TLS_HANDSHAKE_HEADER_BYTES + (size_t)span.body_len;
    if (hello_len <= span.first_body_len) {
        hello = span.first_body;
    } else {
        joined = malloc(hello_len);
        if (joined == NULL) {
            rc = FV_ERR_NOMEM;
            goto out;
        }
        tls_join_records(data, len, joined, hello_len);
        hello = joined;
    }

    out->record_version = span.record_version;
    rc = tls_parse_hello_body(hello + CAP_TLS_HANDSHAKE_HEADER_BYTES, span.body_len, out);

out:
    free(joined);
    if (rc != FV_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
