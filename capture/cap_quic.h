/*
 * cap_quic.h: capture-internal QUIC Initial packet decryption.
 *
 * QUIC (RFC 9000) protects even its first packets. The Initial keys,
 * though, are derived from the Destination Connection ID in the clear
 * (RFC 9001 section 5.2, RFC 9369 section 3.3.1 for version 2). So a
 * passive observer can read the CRYPTO frames of both sides and with them
 * the TLS ClientHello and ServerHello. This file does exactly that and nothing
 * more: it decrypts Initial packets of QUIC versions 1 and 2, collects
 * CRYPTO data by offset in a bounded buffer per side and hands back each
 * hello handshake message once it is complete. Decrypted bytes live only
 * in buffers owned here, which are wiped before they are freed.
 */
#ifndef FV_CAP_QUIC_H
#define FV_CAP_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAP_QUIC_VERSION_1 0x00000001u  /* RFC 9000 */
#define CAP_QUIC_VERSION_2 0x6b3343cfu  /* RFC 9369 */

#define CAP_QUIC_CID_MAX 20             /* connection ID bytes in versions 1 and 2 */
#define CAP_QUIC_CRYPTO_MAX (64u * 1024u) /* CRYPTO bytes kept per flow */

/* AEAD_AES_128_GCM packet protection keys of one direction. */
typedef struct cap_quic_keys {
    uint8_t key[16];    /* AES-128-GCM key */
    uint8_t iv[12];     /* nonce base, XORed with the packet number */
    uint8_t hp[16];     /* AES-128 header protection key */
} cap_quic_keys;

/* True for the QUIC versions whose Initial packets this file decrypts. */
bool cap_quic_version_known(uint32_t version);

/*
 * True when DATA starts with a long header (form and fixed bits set) of a
 * known version, whatever its packet type. Used on a flow's first
 * datagram, where a client sends its first Initial packet.
 */
bool cap_quic_looks_long_header(const uint8_t *data, size_t len);

/*
 * Derive the client Initial keys of VERSION from the Destination
 * Connection ID DCID (at most CAP_QUIC_CID_MAX bytes). SERVER selects the
 * "server in" secret instead. Returns FV_OK, or FV_ERR_INVALID for an
 * unknown version or an over-long DCID.
 */
int cap_quic_derive_initial_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                                 bool server, cap_quic_keys *out);

/* The fields of one long-header packet that the decryptor needs. */
typedef struct cap_quic_long_header {
    uint32_t version;
    bool is_initial;
    uint8_t dcid_len;
    uint8_t dcid[CAP_QUIC_CID_MAX];
    size_t pn_offset;   /* offset of the protected packet number */
    size_t packet_len;  /* bytes of this packet, header included */
} cap_quic_long_header;

/*
 * Parse the long header at the start of DATA. Returns FV_OK with every
 * field set for an Initial, 0-RTT or Handshake packet of a known version
 * (whatever the fixed bit, which RFC 9287 lets a peer clear),
 * FV_ERR_UNSUPPORTED for a Retry, a Version Negotiation packet or an
 * unknown version, whose end cannot be found,
 * FV_ERR_TRUNCATED when the packet extends past LEN and FV_ERR_PARSE for
 * a short header or invalid field.
 */
int cap_quic_parse_long_header(const uint8_t *data, size_t len, cap_quic_long_header *out);

/*
 * Remove header protection and AEAD protection from the Initial packet
 * described by HDR at the start of DATA with KEYS. On FV_OK, the
 * plaintext payload (frames, without the tag) is in PLAIN, which must
 * hold HDR->packet_len bytes, and *PLAIN_LEN is its length; the caller
 * wipes PLAIN after use. FV_ERR_CRYPTO means the tag did not verify
 * (other keys, e.g. a server Initial, or a corrupted packet), and PLAIN
 * is wiped. FV_ERR_PARSE means the packet is too short to carry a
 * header protection sample and a tag.
 */
int cap_quic_decrypt_initial(const uint8_t *data, const cap_quic_long_header *hdr,
                             const cap_quic_keys *keys, uint8_t *plain, size_t *plain_len);

/*
 * Per-flow state: the Initial keys of the client's first Destination
 * Connection ID and the CRYPTO streams of both sides collected so far.
 */
typedef struct cap_quic_flow cap_quic_flow;

/* Allocate an empty flow state. Returns FV_OK or FV_ERR_NOMEM. */
int cap_quic_flow_create(cap_quic_flow **out);

/* Wipe and free the state. Accepts NULL and sets *FLOW to NULL. */
void cap_quic_flow_destroy(cap_quic_flow **flow);

/* A complete hello handshake message collected from Initial packets. */
typedef struct cap_quic_hello {
    const uint8_t *msg;     /* type, 3-byte length, body; inside the flow state */
    size_t len;
    uint32_t version;       /* QUIC version of the Initial packets */
    bool is_server;         /* msg is the ServerHello, else the ClientHello */
} cap_quic_hello;

/*
 * Feed one UDP payload sent in direction DIR (0 or 1, the caller's
 * choice, e.g. forward and reverse). The first direction whose Initial
 * packet decrypts with client keys is the client. The other direction's
 * Initial packets are decrypted with the server keys of the client's
 * first DCID, so those sent before any client Initial decrypted are
 * skipped. Every coalesced packet of the datagram is examined.
 *
 * Returns FV_OK when this datagram completed a side's hello: the
 * ClientHello from the client, the ServerHello from the server. OUT->msg
 * points into the flow state and stays valid until the next call or
 * destroy, which wipe it. Each side's hello is returned once; that side's
 * later datagrams are ignored. Returns FV_ERR_TRUNCATED while more CRYPTO
 * data is needed or the datagram carried nothing this file decrypts,
 * FV_ERR_PARSE when a side's CRYPTO stream does not start with its hello
 * or the hello exceeds CAP_QUIC_CRYPTO_MAX, FV_ERR_FULL when the received
 * byte ranges are too fragmented to track and FV_ERR_NOMEM.
 */
int cap_quic_flow_datagram(cap_quic_flow *flow, unsigned dir, const uint8_t *data, size_t len,
                           cap_quic_hello *out);

#endif /* FV_CAP_QUIC_H */
