/*
 * Fuzz QUIC Initial handling (capture/cap_quic.c): long-header parsing
 * and the per-flow decryption and CRYPTO reassembly. Bit 0 of byte 0
 * selects how the rest of the input becomes datagrams:
 *
 * 0 (raw): datagrams as they arrive on the wire, each a 1-byte direction
 *   (low bit), a 2-byte big-endian length and that many bytes. Mutated
 *   ciphertext almost never passes the AEAD tag, so this mode mostly
 *   reaches the header parser and the decryption failure paths.
 * 1 (sealed): Initial packets that the harness protects itself, so the
 *   fuzzer mutates the plaintext frames behind a valid tag. Each packet
 *   is a flags byte, a 2-byte big-endian length and that many bytes of
 *   frames. The flags are:
 *     bit 0     direction;
 *     bit 1     QUIC version 2 (else 1);
 *     bit 2     sealed with the server's Initial keys (else the client's);
 *     bits 3-4  packet number length - 1;
 *     bit 5     coalesce the next packet into the same datagram;
 *     bit 6     the server's connection ID as destination (a client that
 *               switched to it keeps the keys of its first one).
 */
#include <string.h>

#include <nettle/aes.h>
#include <nettle/gcm.h>

#include "cap_quic.h"
#include "fv_common.h"
#include "fuzz_util.h"

#define TAG_LEN 16
#define SAMPLE_LEN 16
#define PAYLOAD_MAX 1400u       /* frames per packet; keeps Length a 2-byte varint */
#define DATAGRAM_MAX 8192u      /* coalesced packets per datagram */

static volatile size_t sink_bytes;

/* The client's first destination connection ID, from which both sides'
 * Initial keys derive (RFC 9001 section 5.2), and the one the server
 * chose, which the client uses after the server's first Initial. */
static const uint8_t FIRST_DCID[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
static const uint8_t SERVER_CID[8] = {0x5c, 0x0f, 0xfe, 0xe5, 0x01, 0x02, 0x03, 0x04};

static void hand_over(cap_quic_flow *flow, unsigned dir, const uint8_t *datagram, size_t len)
{
    cap_quic_hello hello;

    if (cap_quic_flow_datagram(flow, dir, datagram, len, &hello) == FV_OK && hello.len > 0)
        sink_bytes += hello.msg[0] + hello.msg[hello.len - 1];
}

static void run_raw(cap_quic_flow *flow, const uint8_t *data, size_t size)
{
    while (size > 0) {
        unsigned dir = data[0] & 1u;
        size_t datagram;

        data++;
        size--;
        datagram = fuzz_take_be16(&data, &size);
        if (datagram > size)
            datagram = size;
        hand_over(flow, dir, data, datagram);
        data += datagram;
        size -= datagram;
    }
}

/*
 * Append one protected Initial packet carrying FRAMES to OUT at *USED.
 * Returns false when it does not fit. The packet number is PN; frames
 * shorter than the header-protection sample needs are padded with
 * PADDING frames (zero bytes).
 */
static bool seal_packet(uint8_t flags, uint32_t pn, const uint8_t *frames, size_t frames_len,
                        uint8_t *out, size_t out_len, size_t *used)
{
    bool v2 = (flags & 2u) != 0;
    bool server = (flags & 4u) != 0;
    size_t pn_len = ((flags >> 3) & 3u) + 1u;
    const uint8_t *dcid = (flags & 0x40u) != 0 && !server ? SERVER_CID : FIRST_DCID;
    uint32_t version = v2 ? CAP_QUIC_VERSION_2 : CAP_QUIC_VERSION_1;
    size_t payload_len = frames_len < 4 ? 4 : frames_len;
    size_t length = pn_len + payload_len + TAG_LEN;
    size_t header_len = 1 + 4 + 1 + sizeof FIRST_DCID + 1 + 1 + 2 + pn_len;
    uint8_t *p = out + *used, nonce[12], mask[SAMPLE_LEN];
    cap_quic_keys keys;
    struct gcm_aes128_ctx gcm;
    struct aes128_ctx hp;
    size_t n = 0;

    if (!(header_len + payload_len + TAG_LEN <= out_len - *used))
        return false;
    if (cap_quic_derive_initial_keys(version, FIRST_DCID, sizeof FIRST_DCID, server, &keys) !=
        FV_OK)
        return false;

    /* Long header, Initial type: 0 in version 1, 1 in version 2. */
    p[n++] = (uint8_t)(0xc0u | (v2 ? 0x10u : 0u) | (pn_len - 1u));
    p[n++] = (uint8_t)(version >> 24);
    p[n++] = (uint8_t)(version >> 16);
    p[n++] = (uint8_t)(version >> 8);
    p[n++] = (uint8_t)version;
    p[n++] = sizeof FIRST_DCID;
    memcpy(p + n, dcid, sizeof FIRST_DCID);
    n += sizeof FIRST_DCID;
    p[n++] = 0;                                     /* no source connection ID */
    p[n++] = 0;                                     /* no token */
    p[n++] = (uint8_t)(0x40u | (length >> 8));      /* 2-byte varint Length */
    p[n++] = (uint8_t)length;
    for (size_t i = 0; i < pn_len; i++)
        p[n++] = (uint8_t)(pn >> (8 * (pn_len - 1 - i)));
    memset(p + n, 0, payload_len);
    if (frames_len > 0)
        memcpy(p + n, frames, frames_len);

    memcpy(nonce, keys.iv, sizeof nonce);
    for (size_t i = 0; i < 4; i++)
        nonce[sizeof nonce - 1 - i] ^= (uint8_t)(pn >> (8 * i));
    gcm_aes128_set_key(&gcm, keys.key);
    gcm_aes128_set_iv(&gcm, sizeof nonce, nonce);
    gcm_aes128_update(&gcm, header_len, p);
    gcm_aes128_encrypt(&gcm, payload_len, p + header_len, p + header_len);
    gcm_aes128_digest(&gcm, TAG_LEN, p + header_len + payload_len);

    /* Header protection samples 16 bytes, 4 after the packet number starts. */
    aes128_set_encrypt_key(&hp, keys.hp);
    aes128_encrypt(&hp, SAMPLE_LEN, mask, p + (header_len - pn_len) + 4);
    p[0] ^= mask[0] & 0x0fu;
    for (size_t i = 0; i < pn_len; i++)
        p[header_len - pn_len + i] ^= mask[1 + i];

    *used += header_len + payload_len + TAG_LEN;
    return true;
}

static void run_sealed(cap_quic_flow *flow, const uint8_t *data, size_t size)
{
    static uint8_t datagram[DATAGRAM_MAX];
    size_t used = 0;
    uint32_t pn = 0;
    unsigned dir = 0;

    while (size > 0) {
        uint8_t flags = data[0];
        size_t frames_len;

        data++;
        size--;
        frames_len = fuzz_take_be16(&data, &size);
        if (frames_len > size)
            frames_len = size;
        if (frames_len > PAYLOAD_MAX)
            frames_len = PAYLOAD_MAX;
        if (used == 0)
            dir = flags & 1u;
        (void)seal_packet(flags, pn++, data, frames_len, datagram, sizeof datagram, &used);
        data += frames_len;
        size -= frames_len;
        if ((flags & 0x20u) == 0 || size == 0) {
            hand_over(flow, dir, datagram, used);
            used = 0;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_quic_flow *flow = NULL;
    cap_quic_long_header hdr;
    uint8_t mode;

    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;

    if (cap_quic_parse_long_header(data, size, &hdr) == FV_OK && hdr.packet_len > size)
        __builtin_trap();   /* a packet claimed to end past the input */
    (void)cap_quic_looks_long_header(data, size);

    if (cap_quic_flow_create(&flow) != FV_OK)
        return 0;
    if ((mode & 1u) == 0)
        run_raw(flow, data, size);
    else
        run_sealed(flow, data, size);
    cap_quic_flow_destroy(&flow);
    return 0;
}
