/*
 * cap_proto.h: capture-internal application protocol parsers.
 *
 * Pure functions over one buffer of payload bytes (already reassembled in
 * order by the flow engine where the protocol runs over TCP). They copy
 * named metadata fields out and keep no reference to the buffer. Every
 * read is bounds-checked against the remaining length.
 *
 * Return codes shared by the parsers:
 *   FV_OK            a complete message was parsed into *out
 *   FV_ERR_TRUNCATED the bytes so far are a valid prefix; more are needed
 *                    (the engine waits for more segments, up to its limit)
 *   FV_ERR_PARSE     not this protocol, or malformed (counted by the engine)
 */
#ifndef FV_CAP_PROTO_H
#define FV_CAP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* Header fields and first question of one DNS message. */
typedef struct cap_dns_msg {
    uint16_t txid;
    bool is_response;
    uint8_t opcode;
    uint8_t rcode;              /* header RCODE, 4 bits */
    uint16_t qdcount, ancount;
    uint16_t qtype, qclass;     /* of the first question; 0 if qdcount == 0 */
    bool has_question;
    char qname[FV_NAME_MAX];    /* presentation form, see capture.h cap_dns */
} cap_dns_msg;

/*
 * Parse one DNS message (for DNS over TCP the caller strips the 2-byte
 * length prefix). Compression pointers are followed with loop protection
 * (a pointer must point strictly backwards, at most 64 jumps) and names
 * longer than 255 wire bytes are rejected.
 */
int cap_dns_parse(const uint8_t *data, size_t len, cap_dns_msg *out);

/* Fields of a TLS ClientHello. */
typedef struct cap_tls_hello {
    uint16_t record_version;    /* TLS record layer version */
    uint16_t version;           /* ClientHello legacy_version */
    char sni[FV_NAME_MAX];      /* first host_name of server_name, "" if none */
} cap_tls_hello;

/*
 * Parse a ClientHello starting at the first byte of a TLS record stream
 * (one or more handshake records; a hello may span several records).
 * Returns FV_ERR_TRUNCATED while the hello is incomplete.
 */
int cap_tls_parse_client_hello(const uint8_t *data, size_t len, cap_tls_hello *out);

/* Fields of an HTTP/1.x request head. */
typedef struct cap_http_req {
    char method[16];
    char host[FV_NAME_MAX];     /* Host header value as sent, "" if absent */
} cap_http_req;

/*
 * Parse an HTTP/1.x request line and headers from the start of a client
 * stream. Returns FV_ERR_TRUNCATED until the blank line ending the head is
 * seen (heads above 8 KiB are FV_ERR_PARSE).
 */
int cap_http_parse_request(const uint8_t *data, size_t len, cap_http_req *out);

#endif /* FV_CAP_PROTO_H */
