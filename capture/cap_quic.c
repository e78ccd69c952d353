/*
 * cap_quic.c: decrypt QUIC v1/v2 Initial packets and collect the
 * ClientHello and ServerHello from their CRYPTO frames.
 *
 * Steps for one Initial packet (RFC 9001 section 5, RFC 9369 section 3.3):
 *   1. initial_secret = HKDF-Extract(version salt, client's first DCID);
 *      secret = HKDF-Expand-Label(initial_secret, "client in" or
 *      "server in", 32);
 *      key/iv/hp = HKDF-Expand-Label(secret, "quic key"/"quic iv"/
 *      "quic hp") for version 1, "quicv2 key"/"quicv2 iv"/"quicv2 hp" for
 *      version 2.
 *   2. Header protection: mask = AES-128-ECB(hp, 16 bytes sampled 4 bytes
 *      after the start of the packet number); the low 4 bits of the first
 *      byte and the packet number bytes are XORed with the mask.
 *   3. AEAD: AES-128-GCM with nonce = iv XOR packet number and the
 *      unprotected header as associated data; the 16-byte tag must verify.
 *   4. Frames: PADDING, PING, ACK and CRYPTO are read; any other frame type
 *      ends the packet (an Initial may also carry CONNECTION_CLOSE, which
 *      contains nothing this file needs).
 */
#include "cap_quic.h"

#include <stdlib.h>
#include <string.h>

#include <nettle/aes.h>
#include <nettle/gcm.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <sodium.h>

#include "cap_internal.h"
#include "fv_common.h"

#define QUIC_TAG_LEN 16
#define QUIC_SAMPLE_LEN 16
#define QUIC_PN_MAX_LEN 4
#define QUIC_SECRET_LEN 32      /* SHA-256 output */
#define QUIC_RANGES_MAX 64      /* disjoint CRYPTO byte ranges tracked per flow */
#define QUIC_CRYPTO_FIRST_ALLOC 4096u

#define QUIC_FRAME_PADDING 0x00
#define QUIC_FRAME_PING 0x01
#define QUIC_FRAME_ACK 0x02
#define QUIC_FRAME_ACK_ECN 0x03
#define QUIC_FRAME_CRYPTO 0x06

#define TLS_CLIENT_HELLO 1
#define TLS_SERVER_HELLO 2

/* Initial salts: RFC 9001 section 5.2 (version 1), RFC 9369 section 3.3.1
 * (version 2). */
static const uint8_t quic_v1_salt[20] = {
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
};
static const uint8_t quic_v2_salt[20] = {
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
    0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
};

/* A received CRYPTO byte range [start, end), offsets in the stream. */
typedef struct quic_range {
    uint32_t start, end;
} quic_range;

/*
 * The Initial CRYPTO stream of one side. buf contains stream bytes
 * [0, alloc); ranges lists which of them were received, sorted by start,
 * disjoint and not adjacent. done is set once the stream's hello was
 * handed out; buf is then wiped and freed at the next call.
 */
typedef struct quic_crypto_stream {
    uint8_t *buf;
    size_t alloc;
    size_t range_count;
    quic_range ranges[QUIC_RANGES_MAX];
    bool done;
} quic_crypto_stream;

/*
 * Per-flow state. The keys belong to (version, dcid) of the first client
 * Initial that decrypted: RFC 9001 section 5.2 keeps them in use after the
 * client switches to the server's connection ID, and the server's Initial
 * keys come from the same DCID. stream[0] is the client's CRYPTO stream,
 * stream[1] the server's.
 */
struct cap_quic_flow {
    int client_dir;             /* -1 until a client Initial decrypted */
    bool have_keys;
    uint32_t version;
    uint8_t dcid_len;
    uint8_t dcid[CAP_QUIC_CID_MAX];
    cap_quic_keys keys;         /* client Initial keys */
    cap_quic_keys server_keys;  /* server Initial keys, valid with have_keys */
    quic_crypto_stream stream[2];
};

/* ---------------------------------------------------------------------- */
/* Key derivation                                                         */
/* ---------------------------------------------------------------------- */

bool cap_quic_version_known(uint32_t version)
{
    return version == CAP_QUIC_VERSION_1 || version == CAP_QUIC_VERSION_2;
}

bool cap_quic_looks_long_header(const uint8_t *data, size_t len)
{
    if (data == NULL || len < 5)
        return false;
    if ((data[0] & 0xc0) != 0xc0)
        return false;
    return cap_quic_version_known(cap_be32(data + 1));
}

/* Adapters with the exact signatures nettle's HKDF expects, so no
 * function pointer is cast. */
static void hmac_sha256_update_fn(void *ctx, size_t len, const uint8_t *src)
{
    hmac_sha256_update(ctx, len, src);
}

static void hmac_sha256_digest_fn(void *ctx, size_t len, uint8_t *dst)
{
    hmac_sha256_digest(ctx, len, dst);
}

/*
 * HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context: the
 * info is the output length (2 bytes), the label length (1 byte), "tls13 "
 * and LABEL, and a zero context length. OUT_LEN is at most 32 here.
 */
static void hkdf_expand_label(const uint8_t secret[QUIC_SECRET_LEN], const char *label,
                              uint8_t *out, size_t out_len)
{
    static const char prefix[] = "tls13 ";
    struct hmac_sha256_ctx ctx;
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t label_len = strlen(label);
    size_t full_len = (sizeof prefix - 1) + label_len;
    size_t n = 0;

    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)full_len;
    memcpy(info + n, prefix, sizeof prefix - 1);
    n += sizeof prefix - 1;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = 0;

    hmac_sha256_set_key(&ctx, QUIC_SECRET_LEN, secret);
    hkdf_expand(&ctx, hmac_sha256_update_fn, hmac_sha256_digest_fn, SHA256_DIGEST_SIZE, n, info,
                out_len, out);
    sodium_memzero(&ctx, sizeof ctx);
}

int cap_quic_derive_initial_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                                 bool server, cap_quic_keys *out)
{
    struct hmac_sha256_ctx ctx;
    uint8_t initial_secret[QUIC_SECRET_LEN];
    uint8_t secret[QUIC_SECRET_LEN];
    const uint8_t *salt;
    bool v2 = version == CAP_QUIC_VERSION_2;

    if (out == NULL || !cap_quic_version_known(version) || dcid_len > CAP_QUIC_CID_MAX ||
        (dcid == NULL && dcid_len > 0))
        return FV_ERR_INVALID;
    salt = v2 ? quic_v2_salt : quic_v1_salt;

    hmac_sha256_set_key(&ctx, sizeof quic_v1_salt, salt);
    hkdf_extract(&ctx, hmac_sha256_update_fn, hmac_sha256_digest_fn, SHA256_DIGEST_SIZE, dcid_len,
                 dcid, initial_secret);
    hkdf_expand_label(initial_secret, server ? "server in" : "client in", secret, sizeof secret);

    hkdf_expand_label(secret, v2 ? "quicv2 key" : "quic key", out->key, sizeof out->key);
    hkdf_expand_label(secret, v2 ? "quicv2 iv" : "quic iv", out->iv, sizeof out->iv);
    hkdf_expand_label(secret, v2 ? "quicv2 hp" : "quic hp", out->hp, sizeof out->hp);

    sodium_memzero(&ctx, sizeof ctx);
    sodium_memzero(initial_secret, sizeof initial_secret);
    sodium_memzero(secret, sizeof secret);
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Packet parsing and decryption                                          */
/* ---------------------------------------------------------------------- */

/* Read a variable-length integer (RFC 9000 section 16). */
static bool read_varint(cap_cursor *cur, uint64_t *out)
{
    size_t n, i;
    uint64_t v;

    if (!cap_cur_has(cur, 1))
        return false;
    n = (size_t)1 << (cur->p[0] >> 6);
    if (!cap_cur_has(cur, n))
        return false;
    v = cur->p[0] & 0x3f;
    for (i = 1; i < n; i++)
        v = (v << 8) | cur->p[i];
    cap_cur_skip(cur, n);
    *out = v;
    return true;
}

/* Packet types by the two type bits: RFC 9000 section 17.2 (version 1)
 * and RFC 9369 section 3.2 (version 2) number them differently. */
static bool type_is_initial(uint32_t version, unsigned type)
{
    return version == CAP_QUIC_VERSION_2 ? type == 1 : type == 0;
}

static bool type_is_retry(uint32_t version, unsigned type)
{
    return version == CAP_QUIC_VERSION_2 ? type == 0 : type == 3;
}

int cap_quic_parse_long_header(const uint8_t *data, size_t len, cap_quic_long_header *out)
{
    cap_cursor cur = {data, len};
    uint8_t first;
    unsigned type;
    uint8_t cid_len;
    uint64_t token_len, length;

    memset(out, 0, sizeof *out);
    if (!cap_cur_has(&cur, 5))
        return FV_ERR_TRUNCATED;
    first = cur.p[0];
    if ((first & 0x80) == 0)
        return FV_ERR_PARSE;
    out->version = cap_be32(cur.p + 1);
    if (!cap_quic_version_known(out->version))
        return FV_ERR_UNSUPPORTED;
    /* The fixed bit is not checked: a peer that received the
     * grease_quic_bit transport parameter (RFC 9287) may clear it, and
     * servers do so in their first Initial packets. */
    type = (first >> 4) & 0x3;
    if (type_is_retry(out->version, type))
        return FV_ERR_UNSUPPORTED;
    out->is_initial = type_is_initial(out->version, type);
    cap_cur_skip(&cur, 5);

    /* Destination and Source Connection IDs, at most 20 bytes each. */
    if (!cap_cur_has(&cur, 1))
        return FV_ERR_TRUNCATED;
    cid_len = cur.p[0];
    if (cid_len > CAP_QUIC_CID_MAX)
        return FV_ERR_PARSE;
    cap_cur_skip(&cur, 1);
    if (!cap_cur_has(&cur, cid_len))
        return FV_ERR_TRUNCATED;
    out->dcid_len = cid_len;
    memcpy(out->dcid, cur.p, cid_len);
    cap_cur_skip(&cur, cid_len);
    if (!cap_cur_has(&cur, 1))
        return FV_ERR_TRUNCATED;
    cid_len = cur.p[0];
    if (cid_len > CAP_QUIC_CID_MAX)
        return FV_ERR_PARSE;
    cap_cur_skip(&cur, 1);
    if (!cap_cur_has(&cur, cid_len))
        return FV_ERR_TRUNCATED;
    cap_cur_skip(&cur, cid_len);

    /* Initial packets carry a token before the Length field. */
    if (out->is_initial) {
        if (!read_varint(&cur, &token_len))
            return FV_ERR_TRUNCATED;
        if (!(token_len <= cur.remaining))
            return FV_ERR_TRUNCATED;
        cap_cur_skip(&cur, (size_t)token_len);
    }
    if (!read_varint(&cur, &length))
        return FV_ERR_TRUNCATED;
    if (!(length <= cur.remaining))
        return FV_ERR_TRUNCATED;
    out->pn_offset = len - cur.remaining;
    out->packet_len = out->pn_offset + (size_t)length;
    return FV_OK;
}

int cap_quic_decrypt_initial(const uint8_t *data, const cap_quic_long_header *hdr,
                             const cap_quic_keys *keys, uint8_t *plain, size_t *plain_len)
{
    struct aes128_ctx hp_ctx;
    struct gcm_aes128_ctx gcm;
    uint8_t mask[QUIC_SAMPLE_LEN];
    uint8_t nonce[sizeof keys->iv];
    uint8_t tag[QUIC_TAG_LEN];
    size_t pn_len, header_len, cipher_len, i;
    uint32_t pn = 0;
    int rc = FV_OK;

    *plain_len = 0;
    /* The sample starts 4 bytes after the packet number field begins
     * (RFC 9001 section 5.4.2), whatever the packet number length. */
    if (!(QUIC_PN_MAX_LEN + QUIC_SAMPLE_LEN <= hdr->packet_len - hdr->pn_offset))
        return FV_ERR_PARSE;

    /* Work on a copy: PLAIN receives the header (for the associated data)
     * and then the payload, decrypted in place. */
    memcpy(plain, data, hdr->packet_len);

    aes128_set_encrypt_key(&hp_ctx, keys->hp);
    aes128_encrypt(&hp_ctx, QUIC_SAMPLE_LEN, mask, plain + hdr->pn_offset + QUIC_PN_MAX_LEN);
    plain[0] ^= mask[0] & 0x0f;
    pn_len = (size_t)(plain[0] & 0x03) + 1;
    for (i = 0; i < pn_len; i++) {
        plain[hdr->pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | plain[hdr->pn_offset + i];
    }
    header_len = hdr->pn_offset + pn_len;
    if (!(QUIC_TAG_LEN <= hdr->packet_len - header_len)) {
        rc = FV_ERR_PARSE;
        goto out;
    }
    cipher_len = hdr->packet_len - header_len - QUIC_TAG_LEN;

    /* NOTE: the nonce uses the truncated packet number. Reconstructing
     * the full number needs the largest number received so far, but
     * Initial packet numbers stay far below 2^(8 * pn_len - 1), where both
     * are equal. */
    memcpy(nonce, keys->iv, sizeof nonce);
    for (i = 0; i < 4; i++)
        nonce[sizeof nonce - 1 - i] ^= (uint8_t)(pn >> (8 * i));

    gcm_aes128_set_key(&gcm, keys->key);
    gcm_aes128_set_iv(&gcm, sizeof nonce, nonce);
    gcm_aes128_update(&gcm, header_len, plain);
    gcm_aes128_decrypt(&gcm, cipher_len, plain + header_len, plain + header_len);
    gcm_aes128_digest(&gcm, sizeof tag, tag);
    if (!memeql_sec(tag, plain + header_len + cipher_len, sizeof tag)) {
        rc = FV_ERR_CRYPTO;
        goto out;
    }

    /* Hand back the payload alone, at the start of PLAIN. */
    memmove(plain, plain + header_len, cipher_len);
    sodium_memzero(plain + cipher_len, hdr->packet_len - cipher_len);
    *plain_len = cipher_len;

out:
    if (rc != FV_OK)
        sodium_memzero(plain, hdr->packet_len);
    sodium_memzero(&hp_ctx, sizeof hp_ctx);
    sodium_memzero(&gcm, sizeof gcm);
    sodium_memzero(mask, sizeof mask);
    sodium_memzero(nonce, sizeof nonce);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* CRYPTO stream                                                          */
/* ---------------------------------------------------------------------- */

int cap_quic_flow_create(cap_quic_flow **out)
{
    cap_quic_flow *f;

    if (out == NULL)
        return FV_ERR_INVALID;
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return FV_ERR_NOMEM;
    f->client_dir = -1;
    *out = f;
    return FV_OK;
}

/* Wipe and free a stream's buffer. */
static void stream_release(quic_crypto_stream *st)
{
    if (st->buf != NULL) {
        sodium_memzero(st->buf, st->alloc);
        free(st->buf);
    }
    st->buf = NULL;
    st->alloc = 0;
}

void cap_quic_flow_destroy(cap_quic_flow **flow)
{
    cap_quic_flow *f;

    if (flow == NULL || *flow == NULL)
        return;
    f = *flow;
    stream_release(&f->stream[0]);
    stream_release(&f->stream[1]);
    sodium_memzero(f, sizeof *f);
    free(f);
    *flow = NULL;
}

/* Grow the CRYPTO buffer to hold at least NEED bytes (NEED is at most
 * CAP_QUIC_CRYPTO_MAX). The old buffer is wiped before it is freed. */
static int crypto_reserve(quic_crypto_stream *f, size_t need)
{
    size_t alloc = f->alloc ? f->alloc : QUIC_CRYPTO_FIRST_ALLOC;
    uint8_t *buf;

    if (need <= f->alloc)
        return FV_OK;
    while (alloc < need)
        alloc *= 2;
    if (alloc > CAP_QUIC_CRYPTO_MAX)
        alloc = CAP_QUIC_CRYPTO_MAX;
    buf = calloc(1, alloc);
    if (buf == NULL)
        return FV_ERR_NOMEM;
    if (f->buf != NULL) {
        memcpy(buf, f->buf, f->alloc);
        sodium_memzero(f->buf, f->alloc);
        free(f->buf);
    }
    f->buf = buf;
    f->alloc = alloc;
    return FV_OK;
}

/* Record that bytes [START, END) were received, merging overlapping and
 * adjacent ranges. Returns FV_ERR_FULL when QUIC_RANGES_MAX disjoint
 * ranges are already tracked. */
static int ranges_add(quic_crypto_stream *f, uint32_t start, uint32_t end)
{
    size_t i = 0, j;

    while (i < f->range_count && f->ranges[i].end < start)
        i++;
    /* ranges[i] is the first range that ends at or after START. */
    if (i == f->range_count || f->ranges[i].start > end) {
        if (f->range_count == QUIC_RANGES_MAX)
            return FV_ERR_FULL;
        memmove(&f->ranges[i + 1], &f->ranges[i], (f->range_count - i) * sizeof f->ranges[0]);
        f->ranges[i].start = start;
        f->ranges[i].end = end;
        f->range_count++;
        return FV_OK;
    }
    if (start < f->ranges[i].start)
        f->ranges[i].start = start;
    if (end > f->ranges[i].end)
        f->ranges[i].end = end;

    /* Absorb the following ranges that now overlap or touch. */
    j = i + 1;
    while (j < f->range_count && f->ranges[j].start <= f->ranges[i].end) {
        if (f->ranges[j].end > f->ranges[i].end)
            f->ranges[i].end = f->ranges[j].end;
        j++;
    }
    memmove(&f->ranges[i + 1], &f->ranges[j], (f->range_count - j) * sizeof f->ranges[0]);
    f->range_count -= j - (i + 1);
    return FV_OK;
}

/* Copy one CRYPTO frame's DATA at stream OFFSET into the buffer. Bytes at
 * or beyond CAP_QUIC_CRYPTO_MAX are dropped: a ClientHello that needs them
 * is rejected when it is checked for completeness. */
static int crypto_store(quic_crypto_stream *f, uint64_t offset, const uint8_t *data, size_t len)
{
    size_t end;
    int rc;

    if (len == 0 || offset >= CAP_QUIC_CRYPTO_MAX)
        return FV_OK;
    end = len <= CAP_QUIC_CRYPTO_MAX - offset ? (size_t)offset + len : CAP_QUIC_CRYPTO_MAX;
    rc = crypto_reserve(f, end);
    if (rc != FV_OK)
        return rc;
    memcpy(f->buf + offset, data, end - (size_t)offset);
    return ranges_add(f, (uint32_t)offset, (uint32_t)end);
}

/* Skip the body of an ACK or ACK_ECN frame (RFC 9000 section 19.3). */
static bool skip_ack(cap_cursor *cur, bool ecn)
{
    uint64_t largest, delay, range_count, first_range, gap, range_len, count, i;

    if (!read_varint(cur, &largest) || !read_varint(cur, &delay) ||
        !read_varint(cur, &range_count) || !read_varint(cur, &first_range))
        return false;
    for (i = 0; i < range_count; i++) {
        if (!read_varint(cur, &gap) || !read_varint(cur, &range_len))
            return false;
    }
    if (ecn) {
        /* ECT(0), ECT(1) and ECN-CE counts. */
        for (i = 0; i < 3; i++) {
            if (!read_varint(cur, &count))
                return false;
        }
    }
    return true;
}

/*
 * Read the frames of one decrypted Initial payload and store CRYPTO data.
 * A malformed frame or a frame type other than PADDING, PING, ACK and
 * CRYPTO ends the payload without error: what was read before it is kept.
 */
static int parse_frames(quic_crypto_stream *f, const uint8_t *payload, size_t len)
{
    cap_cursor cur = {payload, len};
    uint64_t type, offset, length;
    int rc;

    while (cap_cur_has(&cur, 1)) {
        if (!read_varint(&cur, &type))
            return FV_OK;
        switch (type) {
        case QUIC_FRAME_PADDING:
        case QUIC_FRAME_PING:
            break;
        case QUIC_FRAME_ACK:
        case QUIC_FRAME_ACK_ECN:
            if (!skip_ack(&cur, type == QUIC_FRAME_ACK_ECN))
                return FV_OK;
            break;
        case QUIC_FRAME_CRYPTO:
            if (!read_varint(&cur, &offset) || !read_varint(&cur, &length))
                return FV_OK;
            if (!(length <= cur.remaining))
                return FV_OK;
            rc = crypto_store(f, offset, cur.p, (size_t)length);
            if (rc != FV_OK)
                return rc;
            cap_cur_skip(&cur, (size_t)length);
            break;
        default:
            return FV_OK;
        }
    }
    return FV_OK;
}

/* Datagrams                                                              */
/* ---------------------------------------------------------------------- */

/* Remember KEYS as the client keys of the DCID in HDR and derive the
 * server's Initial keys from the same DCID. */
static void flow_set_keys(cap_quic_flow *f, const cap_quic_long_header *hdr,
                          const cap_quic_keys *keys)
{
    f->have_keys = true;
    f->version = hdr->version;
    f->dcid_len = hdr->dcid_len;
    memcpy(f->dcid, hdr->dcid, hdr->dcid_len);
    f->keys = *keys;
    /* Cannot fail: the version and DCID length were checked for KEYS. */
    (void)cap_quic_derive_initial_keys(hdr->version, hdr->dcid, hdr->dcid_len, true,
                                       &f->server_keys);
}

/*
 * Decrypt one client Initial packet into PLAIN. The keys of the packet's
 * own DCID are tried first (the first packet, or the first after a Retry,
 * which restarts key derivation from a new DCID); then the flow's stored
 * keys, because a client keeps the keys of its first DCID after it
 * switches to the connection ID the server chose. Returns FV_ERR_CRYPTO
 * when neither decrypts the packet (a server Initial, another flow's
 * packet, a corrupted one).
 */
static int decrypt_client(cap_quic_flow *f, const uint8_t *data, const cap_quic_long_header *hdr,
                          uint8_t *plain, size_t *plain_len)
{
    cap_quic_keys keys;
    bool same_id;
    int rc;

    same_id = f->have_keys && f->version == hdr->version && f->dcid_len == hdr->dcid_len &&
              memcmp(f->dcid, hdr->dcid, hdr->dcid_len) == 0;
    if (same_id)
        return cap_quic_decrypt_initial(data, hdr, &f->keys, plain, plain_len);

    rc = cap_quic_derive_initial_keys(hdr->version, hdr->dcid, hdr->dcid_len, false, &keys);
    if (rc == FV_OK)
        rc = cap_quic_decrypt_initial(data, hdr, &keys, plain, plain_len);
    if (rc == FV_OK)
        flow_set_keys(f, hdr, &keys);
    else if (rc == FV_ERR_CRYPTO && f->have_keys && f->version == hdr->version)
        rc = cap_quic_decrypt_initial(data, hdr, &f->keys, plain, plain_len);
    sodium_memzero(&keys, sizeof keys);
    return rc;
}

/*
 * Decrypt one Initial packet of side SIDE (0 client, 1 server) and store
 * its CRYPTO data. Server packets need the keys of a client Initial seen
 * before: the server's keys come from the client's DCID, which the
 * server's own packets do not carry. A packet that does not decrypt is
 * skipped: returns FV_ERR_CRYPTO.
 */
static int decrypt_and_collect(cap_quic_flow *f, unsigned side, const uint8_t *data,
                               const cap_quic_long_header *hdr)
{
    uint8_t *plain;
    size_t plain_len = 0;
    int rc;

    if (side == 1 && (!f->have_keys || f->version != hdr->version))
        return FV_ERR_CRYPTO;
    plain = malloc(hdr->packet_len);
    if (plain == NULL)
        return FV_ERR_NOMEM;

    if (side == 0)
        rc = decrypt_client(f, data, hdr, plain, &plain_len);
    else
        rc = cap_quic_decrypt_initial(data, hdr, &f->server_keys, plain, &plain_len);
    if (rc == FV_OK)
        rc = parse_frames(&f->stream[side], plain, plain_len);

    sodium_memzero(plain, hdr->packet_len);
    free(plain);
    return rc;
}

/* Return FV_OK when stream ST contains a complete handshake message of type
 * MSG_TYPE from offset 0, FV_ERR_TRUNCATED while bytes are missing,
 * FV_ERR_PARSE when it cannot become one. */
static int hello_check(const quic_crypto_stream *st, uint8_t msg_type, size_t *msg_len)
{
    size_t have, need;

    if (st->range_count == 0 || st->ranges[0].start != 0)
        return FV_ERR_TRUNCATED;
    have = st->ranges[0].end;
    if (st->buf[0] != msg_type)
        return FV_ERR_PARSE;
    if (have < 4)
        return FV_ERR_TRUNCATED;
    need = 4 + (((size_t)st->buf[1] << 16) | ((size_t)st->buf[2] << 8) | st->buf[3]);
    if (need > CAP_QUIC_CRYPTO_MAX)
        return FV_ERR_PARSE;
    if (have < need)
        return FV_ERR_TRUNCATED;
    *msg_len = need;
    return FV_OK;
}

int cap_quic_flow_datagram(cap_quic_flow *flow, unsigned dir, const uint8_t *data, size_t len,
                           cap_quic_hello *out)
{
    cap_quic_long_header hdr;
    quic_crypto_stream *st;
    unsigned side;
    size_t off = 0, msg_len = 0;
    int rc;

    if (flow == NULL || (data == NULL && len > 0) || out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);

    /* A hello handed out by the previous call is no longer needed. */
    if (flow->stream[0].done)
        stream_release(&flow->stream[0]);
    if (flow->stream[1].done)
        stream_release(&flow->stream[1]);

    side = flow->client_dir < 0 || (unsigned)flow->client_dir == dir ? 0 : 1;
    st = &flow->stream[side];
    if (st->done)
        return FV_ERR_TRUNCATED;

    /* Walk the coalesced packets (RFC 9000 section 12.2); a short header,
     * a Retry or anything unparsable ends the walk because its end cannot
     * be known. */
    while (off < len) {
        if (cap_quic_parse_long_header(data + off, len - off, &hdr) != FV_OK)
            break;
        if (hdr.is_initial) {
            rc = decrypt_and_collect(flow, side, data + off, &hdr);
            if (rc == FV_OK && flow->client_dir < 0)
                flow->client_dir = (int)dir;
            if (rc == FV_ERR_NOMEM || rc == FV_ERR_FULL)
                return rc;
        }
        off += hdr.packet_len;
    }

    rc = hello_check(st, side == 0 ? TLS_CLIENT_HELLO : TLS_SERVER_HELLO, &msg_len);
    if (rc != FV_OK)
        return rc;
    st->done = true;
    out->msg = st->buf;
    out->len = msg_len;
    out->version = flow->version;
    out->is_server = side == 1;
    return FV_OK;
}
