/*
 * capture.h: turn packets into flow records and protocol metadata.
 *
 * The capture engine reads frames from libpcap (files or a live
 * interface), decodes link, network and transport headers, tracks
 * bidirectional flows, and runs the DNS, TLS and HTTP parsers over the
 * first payload bytes of each flow. It emits events through a cap_sink.
 * Payload is read in memory only; no payload byte leaves this module.
 *
 * Caveats
 * - Events carry RAW identifiers (addresses, MACs). The sink must pass
 *   them through anonymize/ before storing, logging or exporting them.
 *   Capture itself never logs an address.
 * - A cap_engine is single-threaded: call it from one thread only.
 * - Event pointers passed to the sink are valid only during the call.
 * - The sink's is_excluded hook is called for every IP packet before any
 *   metadata is extracted. A packet with an excluded source or
 *   destination is dropped and counted nowhere.
 * - Flow expiry is driven by packet timestamps (files) or by
 *   cap_engine_expire() with the wall clock (live capture).
 */
#ifndef FV_CAPTURE_H
#define FV_CAPTURE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* An IP address as seen on the wire. family is 4 or 6; IPv4 uses addr[0..3]. */
typedef struct cap_ip {
    uint8_t family;
    uint8_t addr[16];       /* network byte order */
} cap_ip;

/* A finished (or, for FV_END_ACTIVE, continuing) bidirectional flow. The
 * fields mean what fv_flow_record's fields mean; addresses and MACs are raw. */
typedef struct cap_flow {
    uint64_t first_us, last_us;
    cap_ip src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    uint8_t end_reason;             /* fv_flow_end */
    uint8_t icmp_type, icmp_code;
    uint16_t tcp_flags_fwd, tcp_flags_rev;
    uint16_t vlan;
    bool has_mac;
    uint8_t src_mac[6], dst_mac[6]; /* Ethernet source of each direction's first frame */
    uint64_t pkts_fwd, pkts_rev;
    uint64_t bytes_fwd, bytes_rev;  /* IP bytes */
} cap_flow;

/*
 * One DNS message. qname is the first question's name in presentation
 * form: labels joined by '.', no trailing dot, "." for the root, and any
 * byte outside 0x21..0x7e (and '.' or '\' inside a label) written as \DDD.
 */
typedef struct cap_dns {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    uint8_t transport;          /* 6 or 17 */
    bool is_response;
    uint8_t rcode;
    uint16_t txid, qtype, qclass, answer_count;
    char qname[FV_NAME_MAX];
} cap_dns;

/* One TLS ClientHello. */
typedef struct cap_tls {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    uint16_t version;
    char sni[FV_NAME_MAX];
} cap_tls;

/* One HTTP/1.x request. */
typedef struct cap_http {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    char method[16];
    char host[FV_NAME_MAX];
} cap_http;

/* Where the engine sends what it extracts. Any hook may be NULL. */
typedef struct cap_sink {
    void *ctx;
    /* Return true to drop the packet before any metadata is extracted. */
    bool (*is_excluded)(void *ctx, const cap_ip *addr);
    void (*on_flow)(void *ctx, const cap_flow *flow);
    void (*on_dns)(void *ctx, const cap_dns *dns);
    void (*on_tls)(void *ctx, const cap_tls *tls);
    void (*on_http)(void *ctx, const cap_http *http);
} cap_sink;

/* Engine settings. Zero fields take the documented defaults. */
typedef struct cap_config {
    uint32_t tcp_idle_s;        /* default 300 */
    uint32_t udp_idle_s;        /* default 60 */
    uint32_t other_idle_s;      /* ICMP and others, default 30 */
    uint32_t active_s;          /* default 1800: long flows are split */
    uint32_t max_flows;         /* default 1,000,000: oldest evicted beyond */
} cap_config;

/* Counters. Every reason a packet is not fully decoded has its own field. */
typedef struct cap_stats {
    uint64_t packets;           /* frames handed to the engine */
    uint64_t bytes;             /* their wire length */
    uint64_t ip_packets;
    uint64_t non_ip;            /* ARP, LLDP and other non-IP frames */
    uint64_t excluded;          /* NOTE: always 0 on purpose; excluded packets are not counted */
    uint64_t truncated;         /* header cut short by the snap length or file end */
    uint64_t bad_header;        /* invalid IP header (version, length fields) */
    uint64_t unsupported_link;  /* frames on a link type the decoder lacks */
    uint64_t fragments;         /* IP fragments (non-first fragments carry no ports) */
    uint64_t flows_created;
    uint64_t flows_emitted;
    uint64_t flows_evicted;
    uint64_t flows_active;      /* currently in the table */
    uint64_t dns_messages, dns_malformed;
    uint64_t tls_hellos, tls_malformed;
    uint64_t http_requests, http_malformed;
    uint64_t pcap_received, pcap_dropped, pcap_if_dropped;  /* live capture only */
} cap_stats;

typedef struct cap_engine cap_engine;

/*
 * Create an engine. CONFIG may be NULL for defaults; SINK is copied.
 * Return FV_OK, FV_ERR_NOMEM or FV_ERR_INVALID.
 */
FV_NODISCARD int cap_engine_create(const cap_config *config, const cap_sink *sink,
                                   cap_engine **out);

/* Emit every open flow with FV_END_FLUSH, then free the engine. Accepts
 * NULL and sets *engine to NULL. */
void cap_engine_destroy(cap_engine **engine);

/*
 * Process one frame of libpcap link type LINKTYPE (a DLT_* value).
 * CAPLEN bytes are present at DATA; WIRELEN is the original length.
 * Malformed frames are counted, never fatal: the return is FV_OK unless
 * the sink or memory failed.
 */
int cap_engine_packet(cap_engine *engine, int linktype, uint64_t ts_us,
                      const uint8_t *data, uint32_t caplen, uint32_t wirelen);

/* Emit flows idle or active past their timeouts at NOW_US. */
void cap_engine_expire(cap_engine *engine, uint64_t now_us);

/* Emit every open flow with FV_END_FLUSH and empty the table. */
void cap_engine_flush(cap_engine *engine);

/* Copy the counters into *OUT. */
void cap_engine_stats(const cap_engine *engine, cap_stats *out);

/*
 * Read a pcap or pcapng file through libpcap and feed every frame to the
 * engine (open flows stay open; call cap_engine_flush at the end of
 * input). BPF, if not NULL, is applied as a filter. pcapng files are read
 * through libpcap, which (as of 1.10) requires every interface of a file to
 * share the first interface's link type and snap length: at a mismatching
 * interface the frames before it have been processed and FV_ERR_CAPTURE is
 * returned. STOP, if not NULL, is polled between packets; a stop returns
 * FV_OK.
 * On failure return FV_ERR_CAPTURE/FV_ERR_TRUNCATED/FV_ERR_IO/FV_ERR_INVALID
 * and write a message naming the file and the fix into ERR (never an
 * address). A file cut short mid-record returns FV_ERR_TRUNCATED after
 * processing every complete frame.
 */
int cap_read_file(cap_engine *engine, const char *path, const char *bpf,
                  volatile sig_atomic_t *stop, char *err, size_t err_len);

/*
 * Capture live from IFACE until *STOP becomes non-zero, then return
 * (without flushing). BPF as above. Calls cap_engine_expire about once a
 * second and TICK (if not NULL) after it with the current time so the
 * caller can commit and run periodic work. Records libpcap's drop
 * counters into the engine's stats.
 */
int cap_live_run(cap_engine *engine, const char *iface, const char *bpf,
                 volatile sig_atomic_t *stop,
                 void (*tick)(void *ctx, uint64_t now_us), void *tick_ctx,
                 char *err, size_t err_len);

/* Write the text form of ADDR ("192.0.2.1", "2001:db8::1") into OUT.
 * For tests and the comparison tool only: never log the result. */
void cap_ip_format(const cap_ip *addr, char *out, size_t out_len);

#endif /* FV_CAPTURE_H */
