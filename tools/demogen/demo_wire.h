/*
 * demo_wire.h: packet writing shared by the synthetic traffic generators
 * (flowveil-demogen and flowveil-scengen).
 *
 * A demo_trace collects Ethernet frames in memory: DNS exchanges with an
 * internal resolver, TCP connections (handshake, data, close), TLS
 * ClientHellos and HTTP/1.1 requests, each with valid IPv4, TCP and UDP
 * checksums. Every conversation is also recorded as a demo_flow, which
 * lets a test compare flowveil's flow records with what was written.
 * demo_trace_finish() sorts the frames by timestamp.
 *
 * Caveats
 * - The same seed and the same calls always give the same bytes:
 *   randomness comes from a xoshiro256** generator in the trace.
 * - IPv4 only. Every office host sits behind one gateway MAC, and every
 *   DNS query goes to demo_resolver_ip (10.2.0.53).
 * - A frame stored "cut" keeps only its headers (its original length is
 *   larger), as a capture with a short snap length stores it. Payload
 *   bytes that a cut frame does not store count as zeros in the TCP
 *   checksum.
 * - Not thread-safe; a trace is used by one thread.
 */
#ifndef FV_DEMO_WIRE_H
#define FV_DEMO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define US_PER_S 1000000ull

#define ETH_HLEN 14
#define IPV4_HLEN 20
#define UDP_HLEN 8
#define TCP_HLEN_SYN 40 /* MSS, SACK permitted, timestamps, window scale */
#define TCP_HLEN 32     /* NOP, NOP, timestamps */
#define TCP_MSS 1448    /* payload of a full segment with timestamps */
#define CUT_CAPLEN (ETH_HLEN + IPV4_HLEN + TCP_HLEN) /* 66 */
#define FRAME_MAX (ETH_HLEN + IPV4_HLEN + TCP_HLEN_SYN + TCP_MSS)

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_RCODE_NXDOMAIN 3

#define DNS_TYPE_TXT 16
#define STORED_MESSAGE_MAX 70000 /* largest message stored in full (not cut) */
#define SCRATCH_BYTES (STORED_MESSAGE_MAX + 1024)
#define DEMO_SITE_WEIGHTS_MAX 64 /* destinations a host can weigh */

/* Why a conversation is in the trace (demo_flow.role). */
typedef enum demo_role {
    DEMO_ROLE_BACKGROUND = 0, /* browsing, DNS, small uploads */
    DEMO_ROLE_DOWNLOAD = 1,   /* one of the large inbound downloads */
    DEMO_ROLE_BEACON = 2,     /* a planted beacon connection */
    DEMO_ROLE_EXFIL = 3,      /* the planted upload */
} demo_role;

/*
 * One conversation (one TCP connection or one DNS query and its
 * response) as the generator wrote it. "fwd" is client to server; byte
 * counts are IP bytes (IPv4 total length), packet counts include cut
 * frames. Addresses are in network order.
 */
typedef struct demo_flow {
    uint64_t first_us, last_us;
    uint8_t client_ip[4], server_ip[4];
    uint16_t client_port, server_port;
    uint8_t proto; /* 6 or 17 */
    uint8_t role;  /* demo_role */
    uint64_t pkts_fwd, pkts_rev;
    uint64_t bytes_fwd, bytes_rev;
} demo_flow;

/* One frame; DATA points at CAPLEN bytes that live as long as the trace. */
typedef struct demo_packet {
    uint64_t ts_us;
    uint32_t caplen, wirelen;
    const uint8_t *data;
} demo_packet;

typedef struct demo_rng {
    uint64_t s[4];
} demo_rng;

typedef enum site_kind {
    SITE_HTTPS = 0,
    SITE_HTTP = 1,
} site_kind;

/* An external server: the DNS answer for NAME and what it serves. */
typedef struct demo_site {
    const char *name;
    uint8_t ip[4];
    site_kind kind;
    bool has_aaaa;
} demo_site;

/* An office host. SITE_WEIGHT is the generator's preference for each of
 * its destinations; the packet writer does not read it. */
typedef struct demo_host {
    uint8_t ip[4];
    uint8_t mac[6];
    uint16_t ip_id;
    uint16_t next_port;
    double site_weight[DEMO_SITE_WEIGHTS_MAX];
} demo_host;

typedef struct pkt_entry {
    uint64_t ts_us;
    uint64_t order; /* insertion order, keeps the sort stable */
    size_t offset;  /* into demo_trace.bytes */
    uint32_t caplen, wirelen;
} pkt_entry;

typedef struct demo_trace {
    demo_rng rng;
    uint64_t start_us, end_us;
    demo_host *hosts;
    size_t host_count;
    pkt_entry *pkts;
    size_t pkt_count, pkt_capacity;
    uint8_t *bytes;
    size_t byte_count, byte_capacity;
    demo_flow *flows;
    size_t flow_count, flow_capacity;
    bool failed;                    /* an allocation failed: stop adding */
    uint8_t scratch[SCRATCH_BYTES]; /* message being built */
} demo_trace;


/*
 * One TCP connection or UDP exchange between an office host and a server
 * behind the gateway. Sequence numbers are the next ones each side sends.
 */
typedef struct demo_conv {
    demo_trace *g;
    size_t flow;
    demo_host *host;
    uint8_t server_ip[4];
    uint16_t cport, sport;
    uint8_t server_ttl;
    uint16_t server_ip_id;
    uint32_t cseq, sseq;
    uint32_t c_ts_base, s_ts_base;
    uint32_t rtt_us;
} demo_conv;


/* What one TLS connection carries after the handshake. */
typedef struct tls_plan {
    const char *sni;
    size_t request_bytes;  /* client application data */
    size_t response_bytes; /* server application data */
    bool bulk_request;     /* store the request segments cut */
    bool bulk_response;
    double rate; /* bytes per second of bulk data */
    demo_role role;
} tls_plan;

extern const uint8_t demo_gateway_mac[6];
extern const uint8_t demo_resolver_ip[4];

/*
 * Allocate an empty trace from START_US to END_US with HOST_COUNT zeroed
 * hosts and its random generator seeded with SEED. Return NULL with
 * errno ENOMEM.
 */
demo_trace *demo_trace_new(uint64_t seed, uint64_t start_us, uint64_t end_us, size_t host_count);

/* Sort the frames by time. Return 0, or -1 with errno ENOMEM if an
 * allocation failed while frames were added (the trace is then
 * incomplete). */
int demo_trace_finish(demo_trace *trace);

/* Free TRACE. Accepts NULL and clears *trace. */
void demo_trace_destroy(demo_trace **trace);

/* Frames in timestamp order once finished. I must be below demo_packet_count(). */
size_t demo_packet_count(const demo_trace *trace);
demo_packet demo_packet_at(const demo_trace *trace, size_t i);

/* Conversations in the order they were generated (not sorted). */
size_t demo_flow_count(const demo_trace *trace);
const demo_flow *demo_flow_at(const demo_trace *trace, size_t i);

/* Size of the pcap file demo_write_pcap writes, in bytes. */
uint64_t demo_pcap_bytes(const demo_trace *trace);

/* Write every frame of TRACE to a pcap file at PATH (Ethernet,
 * microsecond timestamps). Return 0, or -1 with a message in ERR. */
int demo_write_pcap(const demo_trace *trace, const char *path, char *err, size_t err_len);

/* Random numbers. rng_range is uniform in [LO, HI]; rng_unit in [0, 1);
 * rng_lognormal has median MEDIAN and log spread SIGMA. */
void rng_seed(demo_rng *r, uint64_t seed);
uint64_t rng_next(demo_rng *r);
double rng_unit(demo_rng *r);
uint64_t rng_range(demo_rng *r, uint64_t lo, uint64_t hi);
double rng_uniform(demo_rng *r, double lo, double hi);
double rng_lognormal(demo_rng *r, double median, double sigma);
void rng_fill(demo_rng *r, uint8_t *buf, size_t n);

/* The next ephemeral port of H. Ports advance by small random steps, so
 * every conversation of a host is its own flow. */
uint16_t next_port(demo_trace *g, demo_host *h);

/* Start conversation C from H to SERVER_IP:SPORT (PROTO 6 or 17) with a
 * round trip of RTT_US, and record its demo_flow. */
void conv_open(demo_conv *c, demo_trace *g, demo_host *h, const uint8_t server_ip[4],
               uint16_t sport, uint8_t proto, demo_role role, uint32_t rtt_us);

/* One TCP segment of LEN payload bytes at TS (LEN at most 65483). With
 * CUT only the headers are stored and PAYLOAD may be NULL. */
void emit_tcp(demo_conv *c, bool from_client, uint64_t ts, uint8_t flags,
              const uint8_t *payload, size_t len, bool cut);

/* One UDP datagram of LEN stored payload bytes (at most 1472) at TS. */
void emit_udp(demo_conv *c, bool from_client, uint64_t ts, const uint8_t *payload, size_t len);

/* One IPv4 fragment from SRC_IP to DST_IP of datagram ID (protocol
 * PROTO) at TS: LEN body bytes at byte OFFSET (a multiple of 8) of the
 * datagram's upper-layer data, with the more-fragments flag when MORE.
 * LEN is at most 1480. The frame goes from the gateway to DST_MAC. */
void emit_ipv4_fragment(demo_trace *g, uint64_t ts, const uint8_t dst_mac[6],
                        const uint8_t src_ip[4], const uint8_t dst_ip[4], uint8_t proto,
                        uint16_t id, uint32_t offset, bool more, const uint8_t *body, size_t len);

/* SYN, SYN-ACK, ACK from *T; *T ends at the client's ACK. */
void tcp_handshake(demo_conv *c, uint64_t *t);

/* LEN bytes from one side as full-size segments at RATE bytes per second;
 * see demo_wire.c for the acknowledgement pattern. */
void tcp_stream(demo_conv *c, bool from_client, const uint8_t *data, size_t len, bool cut,
                double rate, unsigned ack_every, uint64_t *t);

/* FIN exchange started by the client (or the server), then the last ACK. */
void tcp_close(demo_conv *c, bool client_first, uint64_t *t);

/* A query from H for NAME (QTYPE) to the resolver at TS and its response:
 * an A or AAAA answer from SITE, no answer (NOERROR) for other types, or
 * NXDOMAIN when SITE is NULL. Return when the response arrives. */
uint64_t dns_exchange(demo_trace *g, demo_host *h, uint64_t ts, const char *name,
                      uint16_t qtype, const demo_site *site, size_t site_index);

/* A browser-like TLS 1.3 ClientHello record for SNI into OUT; return its
 * length, or 0 if CAP is too small. */
size_t build_client_hello(demo_rng *r, const char *sni, uint8_t *out, size_t cap);

/* Application data records totalling about LEN bytes of ciphertext. */
size_t build_app_data(demo_rng *r, size_t len, uint8_t *out, size_t cap);

/* A whole TLS connection from H to SERVER_IP:443 at TS, carrying what
 * PLAN describes. Return the time of its last frame. */
uint64_t tls_session(demo_trace *g, demo_host *h, const uint8_t server_ip[4], uint64_t ts,
                     const tls_plan *plan);

/* An HTTP/1.1 GET from H to SITE port 80 at TS and a response of BODY
 * bytes, stored cut when BULK. Return the time of the last frame. */
uint64_t http_session(demo_trace *g, demo_host *h, const demo_site *site, const char *path,
                      size_t body, bool bulk, demo_role role, uint64_t ts);

#endif /* FV_DEMO_WIRE_H */
