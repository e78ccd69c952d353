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

/* Why a DNS name or record was rejected. Each value has its own counter
 * in cap_stats. */
typedef enum cap_dns_error {
    CAP_DNS_ERR_NONE = 0,
    CAP_DNS_ERR_TRUNCATED,      /* the message ends inside a header, name or record */
    CAP_DNS_ERR_LABEL_TYPE,     /* label type 0x40 or 0x80 (not a name label) */
    CAP_DNS_ERR_POINTER,        /* pointer not strictly backwards, or over 64 jumps */
    CAP_DNS_ERR_NAME_LENGTH,    /* name longer than 255 wire bytes */
    CAP_DNS_ERR_RDATA,          /* RDLENGTH does not fit the record type */
} cap_dns_error;

/* Header, questions and answer addresses of one DNS message. */
typedef struct cap_dns_msg {
    uint16_t txid;
    bool is_response;
    uint8_t opcode;
    uint8_t rcode;              /* header RCODE, 4 bits */
    uint16_t qdcount, ancount;
    uint16_t qtype, qclass;     /* of the first question; 0 if qdcount == 0 */
    bool has_question;
    char qname[FV_NAME_MAX];    /* presentation form, see capture.h cap_dns */
    uint8_t error;              /* cap_dns_error: why parsing failed or answers stopped */
    uint8_t question_count;     /* questions kept, min(qdcount, FV_DNS_QUESTIONS_MAX) */
    fv_dns_question questions[FV_DNS_QUESTIONS_MAX];
    uint8_t a_count;            /* A answers kept */
    uint8_t a[FV_DNS_ADDRS_MAX][4];
    uint8_t aaaa_count;         /* AAAA answers kept */
    uint8_t aaaa[FV_DNS_ADDRS_MAX][16];
    uint8_t cname_count;        /* CNAME targets kept */
    char cnames[FV_DNS_CNAMES_MAX][FV_NAME_MAX];
    uint16_t answers_parsed;    /* answer records read before the section ended */
    bool answers_incomplete;    /* fewer than ancount answers could be read; see error */
} cap_dns_msg;

/*
 * Parse one DNS message (for DNS over TCP the caller strips the 2-byte
 * length prefix): the header, every question (the first
 * FV_DNS_QUESTIONS_MAX are kept) and the answer section. Compression
 * pointers are followed with loop protection (a pointer must point
 * strictly backwards, at most 64 jumps) and names longer than 255 wire
 * bytes are rejected. A malformed question fails the whole message; a
 * malformed or cut answer section only stops answer parsing (see
 * answers_incomplete). out->error gives the reason in both cases.
 */
int cap_dns_parse(const uint8_t *data, size_t len, cap_dns_msg *out);

#define CAP_TLS_ALPN_MAX FV_TLS_ALPN_MAX
#define CAP_TLS_ALPN_LEN FV_TLS_ALPN_LEN
#define CAP_TLS_VERSIONS_MAX FV_TLS_VERSIONS_MAX
#define CAP_TLS_JA3_LEN 33          /* 32 hex digits and NUL */
#define CAP_TLS_JA4_LEN 40          /* "t13d1516h2_<12 hex>_<12 hex>" and NUL */

/*
 * Fields of a TLS ClientHello and, once seen, of the ServerHello of the
 * same connection. The client fields come first; the server_ fields are
 * zero/"" until a ServerHello is parsed.
 */
typedef struct cap_tls_hello {
    uint16_t record_version;    /* TLS record layer version */
    uint16_t version;           /* ClientHello legacy_version */
    char sni[FV_NAME_MAX];      /* first host_name of server_name, "" if none */
    bool is_server;             /* the last message parsed was a ServerHello */
    bool sslv2_format;          /* SSLv2-style hello: no extensions, no JA3/JA4 */
    uint8_t alpn_count;         /* offered ALPN values kept in alpn[] */
    char alpn[CAP_TLS_ALPN_MAX][CAP_TLS_ALPN_LEN];  /* wire order, escaped */
    uint8_t supported_versions_count;
    uint16_t supported_versions[CAP_TLS_VERSIONS_MAX];  /* wire order, GREASE included */
    uint16_t cipher_count;      /* cipher suites offered, GREASE included */
    uint16_t extension_count;   /* extensions sent, GREASE included */
    char ja3[CAP_TLS_JA3_LEN];  /* "" for SSLv2-format hellos */
    char ja4[CAP_TLS_JA4_LEN];  /* "" for SSLv2-format hellos */
    uint16_t server_version;    /* selected: supported_versions, else legacy */
    uint16_t server_legacy_version; /* ServerHello legacy_version */
    uint16_t server_cipher;
    char server_alpn[CAP_TLS_ALPN_LEN];  /* selected ALPN, "" if none */
    char ja3s[CAP_TLS_JA3_LEN];          /* "" until a ServerHello is parsed */
} cap_tls_hello;

/* GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa. */
bool cap_tls_is_grease(uint16_t value);

/*
 * Parse ONE raw handshake message: 1-byte type (1 ClientHello or 2
 * ServerHello), 3-byte length, body; no record header. Used for QUIC
 * CRYPTO data and DTLS (after reassembly) as well as TLS over TCP.
 * TRANSPORT is the first character of JA4: 't' (TCP), 'q' (QUIC) or 'd'
 * (DTLS); a DTLS ClientHello body carries a cookie after the session id,
 * which is skipped when TRANSPORT is 'd'.
 * A ClientHello resets and fills the client fields and computes JA3 and
 * JA4; a ServerHello resets and fills the server_ fields and JA3S. The
 * other side's fields are left as they are, so both hellos of one
 * connection can be parsed into the same struct. is_server tells which
 * one the call parsed.
 * Returns FV_OK, FV_ERR_TRUNCATED (MSG is shorter than the 4-byte header
 * plus the length it states) or FV_ERR_PARSE (another message type or a
 * malformed body).
 */
int cap_tls_parse_handshake_hello(const uint8_t *msg, size_t len, char transport,
                                  cap_tls_hello *out);

/*
 * Parse a ClientHello starting at the first byte of a TLS record stream
 * (one or more handshake records; a hello may span several records).
 * Returns FV_ERR_TRUNCATED while the hello is incomplete.
 */
int cap_tls_parse_client_hello(const uint8_t *data, size_t len, cap_tls_hello *out);

/*
 * Parse the ServerHello at the start of the server's TLS record stream
 * into the server_ fields of OUT (the client fields are left alone).
 * Same return codes as cap_tls_parse_client_hello.
 */
int cap_tls_parse_server_hello(const uint8_t *data, size_t len, cap_tls_hello *out);

/*
 * DTLS handshake reassembly (RFC 6347 section 4.2.3) of one hello in one
 * direction. Each datagram may hold several 13-byte-header records; each
 * handshake fragment has a 12-byte header (type, length, message_seq,
 * fragment_offset, fragment_length). Fragments of the first message of
 * the wanted type are joined in order; a fragment that starts past the
 * joined prefix is dropped (a retransmission fills the gap later).
 * buf (at most 4 + 64 KiB) is allocated on first use; call
 * cap_dtls_reasm_clear when done.
 */
typedef struct cap_dtls_reasm {
    uint8_t *buf;               /* 4-byte TLS handshake header, then the body */
    uint32_t msg_len;           /* body length of the message being joined */
    uint32_t filled;            /* body bytes joined from offset 0 */
    uint16_t message_seq;
    bool started;
} cap_dtls_reasm;

/*
 * Feed one UDP payload. WANT_TYPE is 1 (ClientHello) or 2 (ServerHello).
 * Returns FV_OK once the hello is complete and parsed into OUT (like
 * cap_tls_parse_handshake_hello with transport 'd'), FV_ERR_TRUNCATED
 * while fragments are missing, FV_ERR_PARSE when the datagram is not a
 * DTLS record of the expected kind, FV_ERR_NOMEM.
 */
int cap_dtls_feed(cap_dtls_reasm *r, const uint8_t *data, size_t len, uint8_t want_type,
                  cap_tls_hello *out);

/* Wipe and free R's buffer and reset R. Accepts a zeroed R. */
void cap_dtls_reasm_clear(cap_dtls_reasm *r);

/* True if DATA starts like a DTLS handshake record holding a ClientHello. */
bool cap_dtls_looks_like_client_hello(const uint8_t *data, size_t len);

/* Fields of an HTTP/1.x request head. */
typedef struct cap_http_req {
    char method[16];
    char host[FV_NAME_MAX];     /* Host header value as sent, "" if absent */
    uint32_t uri_length;        /* bytes of the request target (0 if there is none) */
    char user_agent[FV_NAME_MAX];   /* User-Agent value, escaped like host, "" if absent */
    size_t head_len;            /* bytes of the head, final empty line included */
    bool has_content_length;
    uint64_t content_length;    /* Content-Length value when has_content_length */
    bool chunked;               /* Transfer-Encoding names chunked */
} cap_http_req;

/* The longest HTTP head read. Servers accept 8 KiB (Apache, Tomcat) to
 * 32 KiB (nginx's default of four 8 KiB buffers), and a request that a
 * server rejects as too large is still worth a record, so the parser
 * reads up to the larger figure. */
#define CAP_HTTP_HEAD_MAX_BYTES 32768

/*
 * Parse an HTTP/1.x request line and headers from the start of DATA
 * (a client stream positioned at a request). Returns FV_ERR_TRUNCATED
 * until the blank line ending the head is seen (heads above
 * CAP_HTTP_HEAD_MAX_BYTES are FV_ERR_PARSE).
 */
int cap_http_parse_request(const uint8_t *data, size_t len, cap_http_req *out);

/* Fields of an HTTP/1.x response head. */
typedef struct cap_http_resp {
    uint16_t status;            /* 100..999 */
    size_t head_len;            /* bytes of the head, final empty line included */
    bool has_content_length;
    uint64_t content_length;
    bool chunked;
} cap_http_resp;

/*
 * Parse a status line "HTTP/1.x NNN [reason]" and the headers after it
 * from the start of DATA (a server stream positioned at a response).
 * Return codes as for cap_http_parse_request.
 */
int cap_http_parse_response(const uint8_t *data, size_t len, cap_http_resp *out);

/* Fields of one BOOTP/DHCPv4 message. */
typedef struct cap_dhcp_msg {
    uint8_t op;                 /* 1 BOOTREQUEST, 2 BOOTREPLY */
    uint8_t msg_type;           /* option 53, 0 if absent */
    bool has_chaddr;            /* htype 1 (Ethernet) and hlen 6 */
    uint8_t chaddr[6];
    uint8_t ciaddr[4], yiaddr[4];
    bool has_requested_ip;      /* option 50 with length 4 */
    uint8_t requested_ip[4];
    char hostname[FV_DHCP_HOSTNAME_MAX];    /* option 12, see cap_dhcp */
    char vendor_class[FV_DHCP_VENDOR_MAX];  /* option 60 */
    bool options_cut;           /* an option's length ran past the end */
} cap_dhcp_msg;

/*
 * Parse one BOOTP/DHCPv4 message (the UDP payload). The options field
 * after the magic cookie is walked with every length checked; a walk that
 * meets an option running past the end keeps what it read so far and
 * sets options_cut. Option 52 (overload) is ignored: options in the sname
 * and file fields are not read. A message without the cookie is plain
 * BOOTP and parses with no options.
 * Returns FV_OK or FV_ERR_PARSE (shorter than the 236-byte fixed header,
 * or op not 1 or 2).
 */
int cap_dhcp_parse(const uint8_t *data, size_t len, cap_dhcp_msg *out);

#define CAP_SSH_BANNER_SCAN 255     /* identification line, CR LF included */
#define CAP_SSH_KEXINIT_MAX 16384   /* largest KEXINIT packet accepted */

/*
 * Read an SSH identification string at the start of DATA ("SSH-" up to
 * CR LF or LF). OUT gets the line without the line end, bytes outside
 * printable ASCII written as '?'. *CONSUMED gets the bytes up to and
 * including the line end.
 * Returns FV_OK, FV_ERR_TRUNCATED (a valid prefix without its line end
 * yet) or FV_ERR_PARSE (no "SSH-" prefix, or no line end within
 * CAP_SSH_BANNER_SCAN bytes).
 */
int cap_ssh_parse_banner(const uint8_t *data, size_t len, char out[FV_SSH_BANNER_MAX],
                         size_t *consumed);

/*
 * Compute the HASSH of the cleartext binary packet at DATA, which must be
 * a KEXINIT (message 20): MD5 of "kex;enc;mac;cmp", where the lists are
 * the client-to-server ones for a client (IS_SERVER false) and the
 * server-to-client ones for a server, as HASSH-server defines it. OUT gets
 * 32 lowercase hex digits.
 * Returns FV_OK, FV_ERR_TRUNCATED (the packet is not complete yet) or
 * FV_ERR_PARSE (not a KEXINIT, or a length field out of bounds).
 */
int cap_ssh_hassh(const uint8_t *data, size_t len, bool is_server, char out[FV_HASSH_TEXT]);

/*
 * Decode the first-level encoded NetBIOS name of a name service message
 * (UDP 137) into OUT: 32 letters 'A'..'P' become 16 bytes, the 16th byte
 * (the suffix) and trailing spaces are dropped, and bytes outside
 * printable ASCII are written as \DDD like DNS names. *OPCODE gets the
 * header opcode (0 query, 5 registration, ...), *IS_RESPONSE the R bit.
 * Returns FV_OK or FV_ERR_PARSE (short header, no question, or a name that
 * is not a 32-letter first-level encoding).
 */
int cap_nbns_parse(const uint8_t *data, size_t len, char out[FV_NAME_MAX], uint8_t *opcode,
                   bool *is_response, uint16_t *txid, uint16_t *qtype, uint16_t *qclass);

#endif /* FV_CAP_PROTO_H */
