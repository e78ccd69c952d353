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

#include <nettle/md5.h>
#include <nettle/sha2.h>

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
#define CAP_TLS_HANDSHAKE_SERVER_HELLO 2
#define CAP_TLS_EXT_SERVER_NAME 0
#define CAP_TLS_EXT_SUPPORTED_GROUPS 10
#define CAP_TLS_EXT_EC_POINT_FORMATS 11
#define CAP_TLS_EXT_SIGNATURE_ALGORITHMS 13
#define CAP_TLS_EXT_ALPN 16
#define CAP_TLS_EXT_SUPPORTED_VERSIONS 43
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
static int tls_locate_hello(const uint8_t *data, size_t len, uint8_t want_type,
                            tls_hello_span *span)
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
        if (head_have >= 1 && head[0] != want_type)
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
static int tls_join_records(const uint8_t *data, size_t len, uint8_t *buf, size_t buf_len)
{
    cap_reader rd;
    size_t have = 0;

    cap_rd_init(&rd, data, len);
    while (have < buf_len) {
        uint16_t record_len;
        const uint8_t *body;

        /* Unreachable after tls_locate_hello, but a short input must not
         * leave BUF partly uninitialised for the parser. */
        if (cap_rd_skip(&rd, 3) != FV_OK || cap_rd_be16(&rd, &record_len) != FV_OK)
            return FV_ERR_TRUNCATED;
        size_t take = buf_len - have < record_len ? buf_len - have : record_len;
        if (cap_rd_bytes(&rd, take, &body) != FV_OK)
            return FV_ERR_TRUNCATED;
        memcpy(buf + have, body, take);
        have += take;
    }
    return FV_OK;
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

    if (cap_rd_be16(ext, &list_len) != FV_OK || list_len != ext->remaining ||
        cap_rd_sub(ext, list_len, &list) != FV_OK)
        return FV_ERR_PARSE;

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

/* ---------------------------------------------------------------------- */
/* Fingerprint text helpers                                               */
/* ---------------------------------------------------------------------- */

static const char tls_hex_digits[] = "0123456789abcdef";

/*
 * JA3 text on its way into MD5. The text is collected in buf and hashed
 * in chunks instead of one md5_update call per number of at most six
 * bytes. The digest is that of the whole text either way.
 */
typedef struct ja3_text {
    struct md5_ctx ctx;
    size_t len;
    char buf[256];
} ja3_text;

static void ja3_init(ja3_text *t)
{
    md5_init(&t->ctx);
    t->len = 0;
}

static void ja3_flush(ja3_text *t)
{
    md5_update(&t->ctx, t->len, (const uint8_t *)t->buf);
    t->len = 0;
}

/* Append the decimal form of VALUE, preceded by SEP unless *FIRST is set
 * (JA3 lists: "771,4865-4866,..."). */
static void ja3_put(ja3_text *t, bool *first, char sep, unsigned value)
{
    char digits[6];
    size_t d = 0;

    /* A separator and at most 5 digits follow. */
    if (t->len + 6 > sizeof t->buf)
        ja3_flush(t);
    if (!*first)
        t->buf[t->len++] = sep;
    *first = false;
    do {
        digits[d++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && d < sizeof digits);
    while (d > 0)
        t->buf[t->len++] = digits[--d];
}

static void ja3_sep(ja3_text *t)
{
    if (t->len + 1 > sizeof t->buf)
        ja3_flush(t);
    t->buf[t->len++] = ',';
}

static void md5_hex(ja3_text *t, char out[CAP_TLS_JA3_LEN])
{
    uint8_t digest[MD5_DIGEST_SIZE];

    ja3_flush(t);
    md5_digest(&t->ctx, sizeof digest, digest);
    for (size_t i = 0; i < MD5_DIGEST_SIZE; i++) {
        out[2 * i] = tls_hex_digits[digest[i] >> 4];
        out[2 * i + 1] = tls_hex_digits[digest[i] & 0x0f];
    }
    out[2 * MD5_DIGEST_SIZE] = '\0';
}

/* Feed a list of 16-bit values as JA4 text ("002f,0035") to SHA-256, in
 * chunks of up to 64 values (see ja3_text for why). */
static void ja4_put_list(struct sha256_ctx *sha, const uint16_t *vals, size_t n, bool *first)
{
    char text[64 * 5];
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (k + 5 > sizeof text) {
            sha256_update(sha, k, (const uint8_t *)text);
            k = 0;
        }
        if (!*first)
            text[k++] = ',';
        *first = false;
        text[k++] = tls_hex_digits[(vals[i] >> 12) & 0xf];
        text[k++] = tls_hex_digits[(vals[i] >> 8) & 0xf];
        text[k++] = tls_hex_digits[(vals[i] >> 4) & 0xf];
        text[k++] = tls_hex_digits[vals[i] & 0xf];
    }
    if (k > 0)
        sha256_update(sha, k, (const uint8_t *)text);
}

/* First 12 hex digits of the SHA-256 of what SHA was fed. */
static void sha256_hex12(struct sha256_ctx *sha, char out[13])
{
    uint8_t digest[SHA256_DIGEST_SIZE];

    sha256_digest(sha, sizeof digest, digest);
    for (size_t i = 0; i < 6; i++) {
        out[2 * i] = tls_hex_digits[digest[i] >> 4];
        out[2 * i + 1] = tls_hex_digits[digest[i] & 0x0f];
    }
    out[12] = '\0';
}

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

    return (x > y) - (x < y);
}

/* Sort VALS ascending: insertion sort for the short lists of real hellos,
 * qsort beyond 32 values so that a crafted hello cannot make it quadratic. */
static void sort_u16(uint16_t *vals, size_t n)
{
    if (n > 32) {
        qsort(vals, n, sizeof *vals, cmp_u16);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint16_t v = vals[i];
        size_t j = i;

        while (j > 0 && vals[j - 1] > v) {
            vals[j] = vals[j - 1];
            j--;
        }
        vals[j] = v;
    }
}

/* JA4's two-character version code. */
static const char *ja4_version_code(uint16_t v)
{
    switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default: return "00";
    }
}

static bool is_alnum_byte(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---------------------------------------------------------------------- */
/* Hello bodies                                                           */
/* ---------------------------------------------------------------------- */

/*
 * What a ClientHello body holds that the fingerprints need. The arrays
 * point into the body (big-endian 16-bit values), so nothing is copied
 * until the fingerprints are computed.
 */
typedef struct tls_client_view {
    const uint8_t *ciphers;          /* cipher_suites bytes */
    size_t cipher_bytes;
    const uint8_t *groups;           /* supported_groups list bytes */
    size_t group_bytes;
    const uint8_t *point_formats;    /* ec_point_formats list, one byte each */
    size_t point_format_count;
    const uint8_t *sig_algs;         /* signature_algorithms list bytes */
    size_t sig_alg_bytes;
    const uint8_t *ext_types;        /* start of the extensions block */
    size_t ext_block_len;
    const uint8_t *first_alpn;       /* raw bytes of the first ALPN value */
    size_t first_alpn_len;
    bool have_alpn;
    bool have_sni;
} tls_client_view;

/* Read a 16-bit big-endian list with a LEN_BYTES (1 or 2) length prefix
 * that must fill the extension body exactly. */
static int tls_ext_list(cap_reader *ext, unsigned len_bytes, const uint8_t **list, size_t *bytes)
{
    uint16_t n16 = 0;
    uint8_t n8 = 0;
    size_t n;

    if (len_bytes == 1) {
        if (cap_rd_u8(ext, &n8) != FV_OK)
            return FV_ERR_PARSE;
        n = n8;
    } else {
        if (cap_rd_be16(ext, &n16) != FV_OK)
            return FV_ERR_PARSE;
        n = n16;
    }
    if (n != ext->remaining)
        return FV_ERR_PARSE;
    (void)cap_rd_bytes(ext, n, list);
    *bytes = n;
    return FV_OK;
}

/* ALPN extension (RFC 7301): a 2-byte list length, then 1-byte-length
 * protocol names. Names are kept escaped like SNI. */
static int tls_parse_alpn(cap_reader *ext, cap_tls_hello *out, tls_client_view *view,
                          char *server_alpn)
{
    const uint8_t *list;
    size_t list_len;
    cap_reader rd;

    if (tls_ext_list(ext, 2, &list, &list_len) != FV_OK)
        return FV_ERR_PARSE;
    cap_rd_init(&rd, list, list_len);
    while (rd.remaining > 0) {
        uint8_t n;
        const uint8_t *name;
        char *dst;
        size_t pos = 0;

        if (cap_rd_u8(&rd, &n) != FV_OK || cap_rd_bytes(&rd, n, &name) != FV_OK)
            return FV_ERR_PARSE;
        if (view != NULL && !view->have_alpn) {
            view->have_alpn = true;
            view->first_alpn = name;
            view->first_alpn_len = n;
        }
        if (server_alpn != NULL) {
            dst = server_alpn;
        } else {
            if (out->alpn_count >= CAP_TLS_ALPN_MAX)
                continue;
            dst = out->alpn[out->alpn_count++];
        }
        dst[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (!cap_text_append(dst, CAP_TLS_ALPN_LEN, &pos, name[i], false))
                break;
        }
        if (server_alpn != NULL)
            break;  /* the server selects exactly one */
    }
    return FV_OK;
}

/* JA3 (Salesforce): legacy_version, ciphers, extension types, groups and
 * point formats, decimal, '-' inside a list, GREASE values left out. */
static void tls_client_ja3(const tls_client_view *v, cap_tls_hello *out)
{
    ja3_text md5;
    bool first = true;
    cap_reader rd;
    uint16_t val;

    ja3_init(&md5);
    ja3_put(&md5, &first, ',', out->version);
    ja3_sep(&md5);
    first = true;
    for (size_t i = 0; i + 1 < v->cipher_bytes; i += 2) {
        val = (uint16_t)((v->ciphers[i] << 8) | v->ciphers[i + 1]);
        if (!cap_tls_is_grease(val))
            ja3_put(&md5, &first, '-', val);
    }
    ja3_sep(&md5);
    first = true;
    cap_rd_init(&rd, v->ext_types, v->ext_block_len);
    while (rd.remaining >= 4) {
        uint16_t type, len;

        (void)cap_rd_be16(&rd, &type);
        (void)cap_rd_be16(&rd, &len);
        if (cap_rd_skip(&rd, len) != FV_OK)
            break;
        if (!cap_tls_is_grease(type))
            ja3_put(&md5, &first, '-', type);
    }
    ja3_sep(&md5);
    first = true;
    for (size_t i = 0; i + 1 < v->group_bytes; i += 2) {
        val = (uint16_t)((v->groups[i] << 8) | v->groups[i + 1]);
        if (!cap_tls_is_grease(val))
            ja3_put(&md5, &first, '-', val);
    }
    ja3_sep(&md5);
    first = true;
    for (size_t i = 0; i < v->point_format_count; i++)
        ja3_put(&md5, &first, '-', v->point_formats[i]);
    md5_hex(&md5, out->ja3);
}

/* JA4 (FoxIO): "t13d1516h2_<ciphers hash>_<extensions hash>". */
static int tls_client_ja4(const tls_client_view *v, char transport, cap_tls_hello *out)
{
    uint16_t *list = NULL;
    size_t nc = 0, ne = 0, ne_hashed = 0;
    uint16_t version = out->version;
    char alpn_code[3] = "00";
    char hash_c[13], hash_e[13];
    struct sha256_ctx sha;
    bool first;
    cap_reader rd;
    int rc = FV_OK;

    /* Highest non-GREASE supported_versions entry, else legacy_version. */
    if (out->supported_versions_count > 0) {
        uint16_t best = 0;
        for (size_t i = 0; i < out->supported_versions_count; i++) {
            uint16_t sv = out->supported_versions[i];
            if (cap_tls_is_grease(sv))
                continue;
            /* DTLS numbers count down: 0xfefc (1.3) is newer than 0xfefd. */
            bool dtls = (sv >> 8) == 0xfe;
            if (best == 0 || (dtls ? sv < best : sv > best))
                best = sv;
        }
        if (best != 0)
            version = best;
    }

    /* One array big enough for either list: 2^16 bytes of a body hold at
     * most 2^15 values. Real hellos fit the local one. */
    uint16_t local[256];
    size_t cap_vals = v->cipher_bytes / 2 + v->ext_block_len / 4 + 1;
    list = cap_vals <= sizeof local / sizeof local[0] ? local : malloc(cap_vals * sizeof *list);
    if (list == NULL)
        return FV_ERR_NOMEM;

    for (size_t i = 0; i + 1 < v->cipher_bytes; i += 2) {
        uint16_t val = (uint16_t)((v->ciphers[i] << 8) | v->ciphers[i + 1]);
        if (!cap_tls_is_grease(val))
            list[nc++] = val;
    }
    sort_u16(list, nc);
    if (nc == 0) {
        memcpy(hash_c, "000000000000", 13);
    } else {
        sha256_init(&sha);
        first = true;
        ja4_put_list(&sha, list, nc, &first);
        sha256_hex12(&sha, hash_c);
    }

    cap_rd_init(&rd, v->ext_types, v->ext_block_len);
    while (rd.remaining >= 4) {
        uint16_t type, len;

        (void)cap_rd_be16(&rd, &type);
        (void)cap_rd_be16(&rd, &len);
        if (cap_rd_skip(&rd, len) != FV_OK)
            break;
        if (cap_tls_is_grease(type))
            continue;
        ne++;
        if (type != CAP_TLS_EXT_SERVER_NAME && type != CAP_TLS_EXT_ALPN)
            list[ne_hashed++] = type;
    }
    sort_u16(list, ne_hashed);
    if (ne_hashed == 0) {
        memcpy(hash_e, "000000000000", 13);
    } else {
        sha256_init(&sha);
        first = true;
        ja4_put_list(&sha, list, ne_hashed, &first);
        if (v->sig_alg_bytes >= 2) {
            size_t ns = 0;
            for (size_t i = 0; i + 1 < v->sig_alg_bytes && ns < cap_vals; i += 2)
                list[ns++] = (uint16_t)((v->sig_algs[i] << 8) | v->sig_algs[i + 1]);
            sha256_update(&sha, 1, (const uint8_t *)"_");
            first = true;
            ja4_put_list(&sha, list, ns, &first);
        }
        sha256_hex12(&sha, hash_e);
    }

    /* First and last character of the first ALPN value; when either is
     * not an ASCII letter or digit, the first and last hex digit of the
     * whole value instead (spec rule: 0xbaad gives "bd"). */
    if (v->have_alpn && v->first_alpn_len > 0) {
        uint8_t a = v->first_alpn[0], z = v->first_alpn[v->first_alpn_len - 1];
        if (is_alnum_byte(a) && is_alnum_byte(z)) {
            alpn_code[0] = (char)a;
            alpn_code[1] = (char)z;
        } else {
            alpn_code[0] = tls_hex_digits[a >> 4];
            alpn_code[1] = tls_hex_digits[z & 0x0f];
        }
    }

    size_t cc = nc > 99 ? 99 : nc, ec = ne > 99 ? 99 : ne;
    char *p = out->ja4;
    const char *ver = ja4_version_code(version);
    p[0] = transport;
    p[1] = ver[0];
    p[2] = ver[1];
    p[3] = v->have_sni ? 'd' : 'i';
    p[4] = (char)('0' + cc / 10);
    p[5] = (char)('0' + cc % 10);
    p[6] = (char)('0' + ec / 10);
    p[7] = (char)('0' + ec % 10);
    p[8] = alpn_code[0];
    p[9] = alpn_code[1];
    p[10] = '_';
    memcpy(p + 11, hash_c, 12);
    p[23] = '_';
    memcpy(p + 24, hash_e, 12);
    p[36] = '\0';

    if (list != local)
        free(list);
    return rc;
}

/* Reset the client fields of OUT (the server_ fields stay). */
static void tls_reset_client(cap_tls_hello *out)
{
    out->record_version = 0;
    out->version = 0;
    memset(out->sni, 0, sizeof out->sni);
    out->sslv2_format = false;
    out->alpn_count = 0;
    memset(out->alpn, 0, sizeof out->alpn);
    out->supported_versions_count = 0;
    memset(out->supported_versions, 0, sizeof out->supported_versions);
    out->cipher_count = 0;
    out->extension_count = 0;
    memset(out->ja3, 0, sizeof out->ja3);
    memset(out->ja4, 0, sizeof out->ja4);
}

static void tls_reset_server(cap_tls_hello *out)
{
    out->server_version = 0;
    out->server_legacy_version = 0;
    out->server_cipher = 0;
    memset(out->server_alpn, 0, sizeof out->server_alpn);
    memset(out->ja3s, 0, sizeof out->ja3s);
}

/*
 * Parse a complete ClientHello body (RFC 8446 section 4.1.2, RFC 5246
 * section 7.4.1.2, RFC 6347 section 4.2.1 for DTLS, which adds a cookie
 * after the session id): legacy_version, random, legacy_session_id,
 * cipher_suites, legacy_compression_methods, then optional extensions.
 * The body is complete, so running out of bytes is FV_ERR_PARSE.
 */
static int tls_parse_client_body(const uint8_t *body, size_t body_len, char transport,
                                 cap_tls_hello *out)
{
    cap_reader rd;
    uint8_t session_id_len, compression_len;
    uint16_t cipher_len, extensions_len;
    cap_reader extensions;
    tls_client_view view;

    memset(&view, 0, sizeof view);
    cap_rd_init(&rd, body, body_len);

    if (cap_rd_be16(&rd, &out->version) != FV_OK)
        return FV_ERR_PARSE;
    if (transport == 'd' ? (out->version >> 8) != 0xfe : (out->version >> 8) != 3)
        return FV_ERR_PARSE;
    if (cap_rd_skip(&rd, CAP_TLS_RANDOM_BYTES) != FV_OK)
        return FV_ERR_PARSE;

    if (cap_rd_u8(&rd, &session_id_len) != FV_OK || session_id_len > CAP_TLS_SESSION_ID_MAX ||
        cap_rd_skip(&rd, session_id_len) != FV_OK)
        return FV_ERR_PARSE;

    if (transport == 'd') {
        uint8_t cookie_len;
        if (cap_rd_u8(&rd, &cookie_len) != FV_OK || cap_rd_skip(&rd, cookie_len) != FV_OK)
            return FV_ERR_PARSE;
    }

    /* cipher_suites<2..2^16-2>: two bytes per suite. */
    if (cap_rd_be16(&rd, &cipher_len) != FV_OK || cipher_len < 2 || cipher_len % 2 != 0 ||
        cap_rd_bytes(&rd, cipher_len, &view.ciphers) != FV_OK)
        return FV_ERR_PARSE;
    view.cipher_bytes = cipher_len;
    out->cipher_count = (uint16_t)(cipher_len / 2);

    if (cap_rd_u8(&rd, &compression_len) != FV_OK || compression_len < 1 ||
        cap_rd_skip(&rd, compression_len) != FV_OK)
        return FV_ERR_PARSE;

    /* Hellos before TLS 1.2 may end here without an extensions block. */
    if (rd.remaining > 0) {
        if (cap_rd_be16(&rd, &extensions_len) != FV_OK || extensions_len != rd.remaining)
            return FV_ERR_PARSE;
        view.ext_types = rd.p;
        view.ext_block_len = extensions_len;
        if (cap_rd_sub(&rd, extensions_len, &extensions) != FV_OK)
            return FV_ERR_PARSE;
    } else {
        cap_rd_init(&extensions, NULL, 0);
    }

    while (extensions.remaining > 0) {
        uint16_t ext_type, ext_len;
        cap_reader ext;
        int rc = FV_OK;

        if (cap_rd_be16(&extensions, &ext_type) != FV_OK ||
            cap_rd_be16(&extensions, &ext_len) != FV_OK ||
            cap_rd_sub(&extensions, ext_len, &ext) != FV_OK)
            return FV_ERR_PARSE;
        out->extension_count++;

        /* A repeated extension is left to the server to reject; the first
         * one is reported. */
        switch (ext_type) {
        case CAP_TLS_EXT_SERVER_NAME:
            if (!view.have_sni) {
                rc = tls_parse_server_name(&ext, out);
                view.have_sni = true;
            }
            break;
        case CAP_TLS_EXT_ALPN:
            if (!view.have_alpn)
                rc = tls_parse_alpn(&ext, out, &view, NULL);
            break;
        case CAP_TLS_EXT_SUPPORTED_GROUPS:
            if (view.groups == NULL)
                rc = tls_ext_list(&ext, 2, &view.groups, &view.group_bytes);
            break;
        case CAP_TLS_EXT_EC_POINT_FORMATS:
            if (view.point_formats == NULL)
                rc = tls_ext_list(&ext, 1, &view.point_formats, &view.point_format_count);
            break;
        case CAP_TLS_EXT_SIGNATURE_ALGORITHMS:
            if (view.sig_algs == NULL)
                rc = tls_ext_list(&ext, 2, &view.sig_algs, &view.sig_alg_bytes);
            break;
        case CAP_TLS_EXT_SUPPORTED_VERSIONS:
            if (out->supported_versions_count == 0) {
                const uint8_t *list;
                size_t n;
                rc = tls_ext_list(&ext, 1, &list, &n);
                for (size_t i = 0; rc == FV_OK && i + 1 < n; i += 2) {
                    if (out->supported_versions_count < CAP_TLS_VERSIONS_MAX)
                        out->supported_versions[out->supported_versions_count++] =
                            (uint16_t)((list[i] << 8) | list[i + 1]);
                }
            }
            break;
        default:
            break;
        }
        if (rc != FV_OK)
            return rc;
    }

    tls_client_ja3(&view, out);
    return tls_client_ja4(&view, transport, out);
}

/*
 * Parse a complete ServerHello body: legacy_version, random,
 * legacy_session_id_echo, cipher_suite, legacy_compression_method, then
 * optional extensions (supported_versions holds the selected version,
 * ALPN the selected protocol). JA3S is "version,cipher,extensions" over
 * legacy_version and the extension types in wire order, GREASE left out.
 */
static int tls_parse_server_body(const uint8_t *body, size_t body_len, char transport,
                                 cap_tls_hello *out)
{
    cap_reader rd, extensions;
    uint8_t session_id_len, compression;
    uint16_t version, cipher, extensions_len;
    ja3_text md5;
    bool first;

    cap_rd_init(&rd, body, body_len);
    if (cap_rd_be16(&rd, &version) != FV_OK)
        return FV_ERR_PARSE;
    if (transport == 'd' ? (version >> 8) != 0xfe : (version >> 8) != 3)
        return FV_ERR_PARSE;
    if (cap_rd_skip(&rd, CAP_TLS_RANDOM_BYTES) != FV_OK ||
        cap_rd_u8(&rd, &session_id_len) != FV_OK || session_id_len > CAP_TLS_SESSION_ID_MAX ||
        cap_rd_skip(&rd, session_id_len) != FV_OK || cap_rd_be16(&rd, &cipher) != FV_OK ||
        cap_rd_u8(&rd, &compression) != FV_OK)
        return FV_ERR_PARSE;

    out->server_legacy_version = version;
    out->server_version = version;
    out->server_cipher = cipher;

    ja3_init(&md5);
    first = true;
    ja3_put(&md5, &first, ',', version);
    ja3_sep(&md5);
    first = true;
    ja3_put(&md5, &first, ',', cipher);
    ja3_sep(&md5);
    first = true;

    if (rd.remaining > 0) {
        if (cap_rd_be16(&rd, &extensions_len) != FV_OK || extensions_len != rd.remaining ||
            cap_rd_sub(&rd, extensions_len, &extensions) != FV_OK)
            return FV_ERR_PARSE;
    } else {
        cap_rd_init(&extensions, NULL, 0);
    }
    while (extensions.remaining > 0) {
        uint16_t ext_type, ext_len, selected;
        cap_reader ext;

        if (cap_rd_be16(&extensions, &ext_type) != FV_OK ||
            cap_rd_be16(&extensions, &ext_len) != FV_OK ||
            cap_rd_sub(&extensions, ext_len, &ext) != FV_OK)
            return FV_ERR_PARSE;
        if (!cap_tls_is_grease(ext_type))
            ja3_put(&md5, &first, '-', ext_type);
        if (ext_type == CAP_TLS_EXT_SUPPORTED_VERSIONS) {
            if (cap_rd_be16(&ext, &selected) != FV_OK || ext.remaining != 0)
                return FV_ERR_PARSE;
            out->server_version = selected;
        } else if (ext_type == CAP_TLS_EXT_ALPN && out->server_alpn[0] == '\0') {
            if (tls_parse_alpn(&ext, out, NULL, out->server_alpn) != FV_OK)
                return FV_ERR_PARSE;
        }
    }
    md5_hex(&md5, out->ja3s);
    return FV_OK;
}

bool cap_tls_is_grease(uint16_t value)
{
    return (value & 0x0f0f) == 0x0a0a && (value >> 8) == (value & 0xff);
}

int cap_tls_parse_handshake_hello(const uint8_t *msg, size_t len, char transport,
                                  cap_tls_hello *out)
{
    uint32_t body_len;
    int rc;

    if (len < CAP_TLS_HANDSHAKE_HEADER_BYTES)
        return FV_ERR_TRUNCATED;
    if (msg[0] != CAP_TLS_HANDSHAKE_CLIENT_HELLO && msg[0] != CAP_TLS_HANDSHAKE_SERVER_HELLO)
        return FV_ERR_PARSE;
    body_len = ((uint32_t)msg[1] << 16) | ((uint32_t)msg[2] << 8) | msg[3];
    if (body_len > CAP_TLS_HELLO_MAX_BYTES)
        return FV_ERR_PARSE;
    if (!(body_len <= len - CAP_TLS_HANDSHAKE_HEADER_BYTES))
        return FV_ERR_TRUNCATED;

    if (msg[0] == CAP_TLS_HANDSHAKE_CLIENT_HELLO) {
        tls_reset_client(out);
        out->is_server = false;
        rc = tls_parse_client_body(msg + CAP_TLS_HANDSHAKE_HEADER_BYTES, body_len, transport,
                                   out);
        if (rc != FV_OK)
            tls_reset_client(out);
    } else {
        tls_reset_server(out);
        out->is_server = true;
        rc = tls_parse_server_body(msg + CAP_TLS_HANDSHAKE_HEADER_BYTES, body_len, transport,
                                   out);
        if (rc != FV_OK)
            tls_reset_server(out);
    }
    return rc;
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

    if (cap_rd_be16(&rd, &version) != FV_OK || cap_rd_be16(&rd, &cipher_len) != FV_OK ||
        cap_rd_be16(&rd, &session_id_len) != FV_OK || cap_rd_be16(&rd, &challenge_len) != FV_OK)
        return FV_ERR_TRUNCATED;

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
    out->sslv2_format = true;
    out->cipher_count = (uint16_t)(cipher_len / CAP_SSL2_CIPHER_SPEC_BYTES);
    out->sni[0] = '\0';
    return FV_OK;
}

/* Parse the first handshake message, of type WANT_TYPE, of a TLS record
 * stream into OUT. */
static int tls_parse_record_stream(const uint8_t *data, size_t len, uint8_t want_type,
                                   cap_tls_hello *out)
{
    tls_hello_span span;
    uint8_t *joined = NULL;
    const uint8_t *hello;
    int rc;

    memset(&span, 0, sizeof(span));
    rc = tls_locate_hello(data, len, want_type, &span);
    if (rc != FV_OK)
        return rc;

    /* Parse in place when the first record contains the whole hello, the
     * common case; otherwise join the records into one buffer. */
    size_t hello_len = CAP_TLS_HANDSHAKE_HEADER_BYTES + (size_t)span.body_len;
    if (hello_len <= span.first_body_len) {
        hello = span.first_body;
    } else {
        joined = malloc(hello_len);
        if (joined == NULL)
            return FV_ERR_NOMEM;
        if (tls_join_records(data, len, joined, hello_len) != FV_OK) {
            memset(joined, 0, hello_len);
            free(joined);
            return FV_ERR_TRUNCATED;
        }
        hello = joined;
    }

    rc = cap_tls_parse_handshake_hello(hello, hello_len, 't', out);
    if (rc == FV_OK && want_type == CAP_TLS_HANDSHAKE_CLIENT_HELLO)
        out->record_version = span.record_version;
    if (joined != NULL) {
        memset(joined, 0, hello_len);
        free(joined);
    }
    return rc;
}

int cap_tls_parse_client_hello(const uint8_t *data, size_t len, cap_tls_hello *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (len == 0)
        rc = FV_ERR_TRUNCATED;
    else if (data[0] & 0x80)
        rc = tls_parse_sslv2_hello(data, len, out);
    else
        rc = tls_parse_record_stream(data, len, CAP_TLS_HANDSHAKE_CLIENT_HELLO, out);
    if (rc != FV_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

int cap_tls_parse_server_hello(const uint8_t *data, size_t len, cap_tls_hello *out)
{
    int rc;

    if (len == 0)
        return FV_ERR_TRUNCATED;
    rc = tls_parse_record_stream(data, len, CAP_TLS_HANDSHAKE_SERVER_HELLO, out);
    if (rc != FV_OK)
        tls_reset_server(out);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* DTLS                                                                   */
/* ---------------------------------------------------------------------- */

#define CAP_DTLS_RECORD_HEADER_BYTES 13
#define CAP_DTLS_HANDSHAKE_HEADER_BYTES 12

bool cap_dtls_looks_like_client_hello(const uint8_t *data, size_t len)
{
    return len >= CAP_DTLS_RECORD_HEADER_BYTES + CAP_DTLS_HANDSHAKE_HEADER_BYTES &&
           data[0] == CAP_TLS_CONTENT_HANDSHAKE && data[1] == 0xfe &&
           (data[2] == 0xff || data[2] == 0xfd || data[2] == 0xfc) &&
           data[CAP_DTLS_RECORD_HEADER_BYTES] == CAP_TLS_HANDSHAKE_CLIENT_HELLO;
}

void cap_dtls_reasm_clear(cap_dtls_reasm *r)
{
    if (r->buf != NULL) {
        memset(r->buf, 0, CAP_TLS_HANDSHAKE_HEADER_BYTES + (size_t)r->msg_len);
        free(r->buf);
    }
    memset(r, 0, sizeof *r);
}

/* Add one handshake fragment to R. Returns FV_OK when the message is
 * complete, FV_ERR_TRUNCATED otherwise. */
static int dtls_add_fragment(cap_dtls_reasm *r, uint8_t type, uint32_t msg_len, uint16_t seq,
                             uint32_t frag_off, const uint8_t *frag, uint32_t frag_len)
{
    if (!r->started) {
        if (frag_off != 0)
            return FV_ERR_TRUNCATED;  /* wait for the start of the message */
        r->buf = malloc(CAP_TLS_HANDSHAKE_HEADER_BYTES + (size_t)msg_len);
        if (r->buf == NULL)
            return FV_ERR_NOMEM;
        r->buf[0] = type;
        r->buf[1] = (uint8_t)(msg_len >> 16);
        r->buf[2] = (uint8_t)(msg_len >> 8);
        r->buf[3] = (uint8_t)msg_len;
        r->msg_len = msg_len;
        r->message_seq = seq;
        r->filled = 0;
        r->started = true;
    }
    if (seq != r->message_seq || msg_len != r->msg_len)
        return FV_ERR_TRUNCATED;  /* another message or a later hello */
    if (frag_off <= r->filled && frag_off + frag_len > r->filled) {
        uint32_t skip = r->filled - frag_off;
        memcpy(r->buf + CAP_TLS_HANDSHAKE_HEADER_BYTES + r->filled, frag + skip, frag_len - skip);
        r->filled = frag_off + frag_len;
    }
    return r->filled == r->msg_len ? FV_OK : FV_ERR_TRUNCATED;
}

int cap_dtls_feed(cap_dtls_reasm *r, const uint8_t *data, size_t len, uint8_t want_type,
                  cap_tls_hello *out)
{
    cap_reader rd;
    bool any = false;

    if (r->started && r->filled == r->msg_len)
        return FV_ERR_TRUNCATED;  /* already complete; nothing more to do */

    cap_rd_init(&rd, data, len);
    while (rd.remaining > 0) {
        uint8_t content_type;
        uint16_t version, record_len;
        cap_reader rec;

        if (cap_rd_u8(&rd, &content_type) != FV_OK || cap_rd_be16(&rd, &version) != FV_OK ||
            cap_rd_skip(&rd, 8) != FV_OK || cap_rd_be16(&rd, &record_len) != FV_OK ||
            cap_rd_sub(&rd, record_len, &rec) != FV_OK)
            return any ? FV_ERR_TRUNCATED : FV_ERR_PARSE;
        if ((version >> 8) != 0xfe)
            return any ? FV_ERR_TRUNCATED : FV_ERR_PARSE;
        any = true;
        if (content_type != CAP_TLS_CONTENT_HANDSHAKE)
            continue;  /* e.g. ChangeCipherSpec, or encrypted epoch > 0 data */

        while (rec.remaining >= CAP_DTLS_HANDSHAKE_HEADER_BYTES) {
            uint8_t type;
            uint16_t seq;
            uint32_t msg_len, frag_off, frag_len;
            const uint8_t *frag;
            int rc;

            (void)cap_rd_u8(&rec, &type);
            (void)cap_rd_be24(&rec, &msg_len);
            (void)cap_rd_be16(&rec, &seq);
            (void)cap_rd_be24(&rec, &frag_off);
            (void)cap_rd_be24(&rec, &frag_len);
            if (cap_rd_bytes(&rec, frag_len, &frag) != FV_OK)
                break;  /* an encrypted Finished looks like this: not ours */
            if (type != want_type)
                continue;
            if (msg_len > CAP_TLS_HELLO_MAX_BYTES || frag_off > msg_len ||
                frag_len > msg_len - frag_off)
                return FV_ERR_PARSE;
            rc = dtls_add_fragment(r, type, msg_len, seq, frag_off, frag, frag_len);
            if (rc == FV_ERR_NOMEM)
                return rc;
            if (rc == FV_OK)
                return cap_tls_parse_handshake_hello(
                    r->buf, CAP_TLS_HANDSHAKE_HEADER_BYTES + (size_t)r->msg_len, 'd', out);
        }
    }
    return FV_ERR_TRUNCATED;
}
