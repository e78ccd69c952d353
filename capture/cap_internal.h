/*
 * cap_internal.h: declarations shared by the capture engine's own files
 * (cap_engine.c, cap_decode.c, cap_pcap.c). Not part of the public API.
 */
#ifndef FV_CAP_INTERNAL_H
#define FV_CAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"

/*
 * A bounds-checked read cursor over captured bytes. Every read first
 * tests `n <= cur->remaining`; nothing reads past the captured length.
 */
typedef struct cap_cursor {
    const uint8_t *p;
    size_t remaining;
} cap_cursor;

static inline bool cap_cur_has(const cap_cursor *cur, size_t n)
{
    return n <= cur->remaining;
}

/* Advance by N bytes. The caller has checked cap_cur_has(cur, n). */
static inline void cap_cur_skip(cap_cursor *cur, size_t n)
{
    cur->p += n;
    cur->remaining -= n;
}

static inline uint16_t cap_be16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static inline uint32_t cap_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Why a frame was not decoded down to a flow key. Each value has its own
 * counter in cap_stats. */
typedef enum cap_decode_status {
    CAP_DECODE_OK = 0,
    CAP_DECODE_NON_IP,           /* ARP, LLDP, PPP control, MPLS pseudowire ... */
    CAP_DECODE_TRUNCATED,        /* a header is cut short by the capture length */
    CAP_DECODE_BAD_HEADER,       /* IP version or length fields are invalid */
    CAP_DECODE_UNSUPPORTED_LINK, /* link type the decoder lacks */
} cap_decode_status;

/* Tunnels nested deeper than this are left undecoded. */
#define CAP_MAX_TUNNEL_DEPTH 4

/* One IP header that encloses a tunnel, with the MACs of the Ethernet
 * header that directly carries it (none when has_*_mac is false). */
typedef struct cap_enclosing {
    cap_ip src, dst;
    bool has_src_mac, has_dst_mac;
    uint8_t src_mac[6], dst_mac[6];
} cap_enclosing;

/*
 * The decoded headers of one frame, keyed on the innermost IP header.
 * Addresses are network order; ports, ids and sequence numbers are host
 * order. payload points into the caller's frame and is valid only while
 * that frame is: it is never copied here.
 */
typedef struct cap_packet {
    /* Link layer: the outermost Ethernet header and 802.1Q tag. */
    bool has_mac;
    uint8_t src_mac[6], dst_mac[6];
    uint16_t vlan;

    /* The MACs of the Ethernet header that directly carries the
     * innermost IP header when that header is inside a tunnel (VXLAN,
     * GRE with transparent Ethernet bridging, ERSPAN). The flow record
     * keeps the outer MACs, but exclusion by MAC must see these. */
    bool has_inner_mac;
    uint8_t inner_src_mac[6], inner_dst_mac[6];

    /* Linux cooked captures (SLL, SLL2) carry only the sender's MAC. It
     * is used for exclusion, not stored. */
    bool has_sender_mac;
    uint8_t sender_mac[6];

    /* Innermost IP header. have_addrs is set as soon as both addresses
     * were readable, even when a later check failed, so the engine can
     * apply exclusion before counting the failure. */
    bool have_addrs;
    cap_ip src, dst;
    uint8_t proto;              /* after IPv6 extension headers */
    uint32_t ip_bytes;          /* IPv4 total length, IPv6 payload length + 40 */
    uint8_t tunnel_depth;       /* IP headers that enclosed the key header */

    /* Fragmentation. frag_id is the IPv4 id or the IPv6 fragment id. */
    bool is_fragment;
    bool first_fragment;        /* offset 0: carries the transport header */
    uint32_t frag_id;

    /* Transport. has_ports is false for non-first fragments and for
     * protocols without ports. */
    bool has_ports;
    uint16_t sport, dport;
    bool has_icmp;
    uint8_t icmp_type, icmp_code;
    uint16_t tcp_flags;         /* low 12 bits of the TCP header */
    uint32_t tcp_seq;
    uint32_t l4_declared;       /* transport bytes the IP header declares */
    uint32_t tcp_seg_len;       /* TCP payload bytes declared, captured or not */

    /* Transport payload bytes present in the capture (TCP/UDP only),
     * clipped to the length the IP header declares. */
    const uint8_t *payload;
    size_t payload_len;

    /* Outermost tunnel (fv_tunnel) and the addresses of the IP header
     * that carried it; tunnel_type is FV_TUNNEL_NONE without a tunnel.
     * tunnel_too_deep: a tunnel nested past the depth limit was left
     * undecoded. */
    uint8_t tunnel_type;
    cap_ip outer_src, outer_dst;
    bool tunnel_too_deep;

    /* Fragment body for reassembly: the bytes after the IPv4 header or
     * the IPv6 Fragment header, at byte offset frag_offset of the
     * datagram's upper-layer data. frag_len is what the capture holds,
     * frag_declared what the IP header declares. frag_more: MF flag. */
    uint32_t frag_offset;
    bool frag_more;
    const uint8_t *frag_data;
    size_t frag_len, frag_declared;

    /* ICMP error (IPv4 types 3, 11, 12; ICMPv6 types 1 to 4) with the
     * header it quotes: addresses, protocol and, for TCP, UDP and SCTP,
     * the ports of the packet that caused the error. has_quote is false
     * when the quote is cut short or is not IP. */
    bool icmp_error;
    bool has_quote;
    cap_ip quote_src, quote_dst;
    uint8_t quote_proto;
    bool quote_has_ports;
    uint16_t quote_sport, quote_dport;

    /* Every IP header that encloses the innermost one in a decoded
     * tunnel, outermost included, with the MACs of the Ethernet header
     * that directly carries it, if any. The exclusion check covers them
     * all. cap_decode_frame clears every field before the array, the
     * count included, so a packet without tunnels pays nothing for it. */
    uint8_t enclosing_count;
    cap_enclosing enclosing[CAP_MAX_TUNNEL_DEPTH];
} cap_packet;

#define CAP_TCP_FIN 0x001
#define CAP_TCP_SYN 0x002
#define CAP_TCP_RST 0x004
#define CAP_TCP_ACK 0x010

/*
 * Decode one frame of link type LINKTYPE into *OUT (zeroed first).
 * Return CAP_DECODE_OK when a complete key header (IP and, where the
 * protocol has one, the transport header) was found.
 */
cap_decode_status cap_decode_frame(int linktype, const uint8_t *data, size_t caplen,
                                   cap_packet *out);

/* TCP sequence tracking for one direction (cap_tcpseq.c). */
#define CAP_SEQ_RANGES 4u

typedef struct cap_seq_range {
    uint32_t start, end;
} cap_seq_range;

/* Zero-initialised before first use. The range array is allocated when
 * the first out-of-order segment arrives, so a connection that never
 * reorders costs 16 bytes per direction; cap_seq_track_free releases it. */
typedef struct cap_seq_track {
    uint32_t next;                  /* next expected sequence number */
    bool known;
    uint8_t nranges;
    cap_seq_range *ranges;          /* CAP_SEQ_RANGES seen beyond next, disjoint; or NULL */
} cap_seq_track;

typedef enum cap_seq_class {
    CAP_SEQ_IN_ORDER = 0,
    CAP_SEQ_RETRANS,        /* every byte of the segment was seen before, or some were */
    CAP_SEQ_OUT_OF_ORDER,   /* starts beyond the next expected byte */
} cap_seq_class;

/*
 * Classify a segment of sequence space [SEQ, SEQ + LEN), where LEN counts
 * payload bytes plus one each for SYN and FIN, and update the tracker.
 * The first segment seen sets the next expected number; a segment of
 * LEN 0 (a pure ACK) is always in order.
 */
cap_seq_class cap_seq_track_segment(cap_seq_track *t, uint32_t seq, uint32_t len);

/* Free T's range array. T stays usable and forgets the ranges. */
void cap_seq_track_free(cap_seq_track *t);

/* IP fragment reassembly (cap_frag.c). Limits: datagrams in progress,
 * reassembled bytes per datagram (the IPv4 maximum), fragments per
 * datagram, and the time from a datagram's first fragment to its end. */
#define CAP_FRAG_MAX_DATAGRAMS 256u
#define CAP_FRAG_MAX_BYTES 65535u
#define CAP_FRAG_MAX_PIECES 64u
#define CAP_FRAG_TIMEOUT_US (30u * 1000000u)

typedef struct cap_frag_table cap_frag_table;

/* Fragments of a datagram whose first fragment never arrived: they count
 * in a portless flow between SRC and DST. */
typedef struct cap_frag_orphan {
    cap_ip src, dst;
    uint8_t proto;
    uint32_t pkts;
    uint64_t bytes;
    uint64_t first_us, last_us;
} cap_frag_orphan;

typedef void (*cap_frag_orphan_fn)(void *ctx, const cap_frag_orphan *orphan);

/*
 * What cap_frag_add decided for one fragment. defer: the fragment is held
 * (ports unknown) and must not be counted now. Otherwise it counts in the
 * flow with the ports below (if have_ports), together with released_pkts
 * earlier fragments of released_bytes IP bytes, the first at
 * released_first_us. datagram is the complete upper-layer data when this
 * fragment completed it; it stays valid until cap_frag_done or the next
 * call into the table.
 */
typedef struct cap_frag_outcome {
    bool defer;
    bool have_ports;
    uint16_t sport, dport;
    uint32_t released_pkts;
    uint64_t released_bytes;
    uint64_t released_first_us;
    const uint8_t *datagram;
    size_t datagram_len;
} cap_frag_outcome;

/* Counters go to STATS (which must outlive the table). */
int cap_frag_create(cap_stats *stats, cap_frag_orphan_fn on_orphan, void *ctx,
                    cap_frag_table **out);
/* Flush (orphans are reported), wipe and free. Accepts NULL. */
void cap_frag_destroy(cap_frag_table **table);
void cap_frag_add(cap_frag_table *t, const cap_packet *pkt, uint64_t ts_us, cap_frag_outcome *out);
/* Wipe and free the datagram handed out by the last cap_frag_add. */
void cap_frag_done(cap_frag_table *t);
/* End datagrams older than CAP_FRAG_TIMEOUT_US at NOW_US. */
void cap_frag_expire(cap_frag_table *t, uint64_t now_us);
/* End every datagram. */
void cap_frag_flush(cap_frag_table *t);
/* Limit the reassembly buffers of all datagrams together to MAX_BYTES
 * (default: CAP_FRAG_MAX_DATAGRAMS full buffers). */
void cap_frag_set_max_bytes(cap_frag_table *t, size_t max_bytes);
/* Bytes the table holds: the table itself and every buffer, each
 * allocation with CAP_MEMORY_ALLOC_OVERHEAD. */
size_t cap_frag_bytes(const cap_frag_table *t);

/* Store libpcap's receive and drop counters (live capture) in the stats. */
void cap_engine_set_pcap_stats(cap_engine *engine, uint64_t received, uint64_t dropped,
                               uint64_t if_dropped);

/* ---- DHCP, NetBIOS name service, NTP and SSH (cap_udp_apps.c, cap_ssh.c) */

/* Parse the UDP payload of PKT (a port 67/68 datagram) as DHCP and emit
 * one cap_dhcp event. Failures count in STATS. */
void cap_dhcp_handle(const cap_sink *sink, cap_stats *stats, const cap_packet *pkt,
                     uint64_t ts_us);

/* Parse the UDP payload of PKT (a port 137 datagram) as NetBIOS name
 * service and emit a query or registration as a cap_dns event with
 * protocol FV_DNS_PROTO_NBNS. Responses are not emitted. */
void cap_nbns_handle(const cap_sink *sink, cap_stats *stats, const cap_packet *pkt,
                     uint64_t ts_us);

/* Read mode and version from the first byte of an NTP header (RFC 5905
 * figure 8). Return false when LEN is shorter than the 48-byte header
 * (12 bytes for control messages, mode 6) or the version is not 1..4. */
bool cap_ntp_peek(const uint8_t *data, size_t len, uint8_t *mode, uint8_t *version);

/* Per-connection SSH state: one event filled as both sides are read. */
typedef struct cap_ssh_state {
    cap_ssh ev;
    uint8_t phase[2];       /* per direction (0 client, 1 server): cap_ssh_phase */
    size_t kex_off[2];      /* where the KEXINIT starts, after the banner line */
    bool emitted;
} cap_ssh_state;

enum cap_ssh_phase { CAP_SSH_BANNER = 0, CAP_SSH_KEXINIT = 1, CAP_SSH_DONE = 2 };

/*
 * Read the first bytes of direction DIR (BUF, LEN: everything buffered so
 * far from the stream start). FULL says the buffer cannot grow. Return
 * true once both directions are done (banner and KEXINIT read, or given
 * up on), which is when the record can be emitted.
 */
bool cap_ssh_step(cap_ssh_state *st, unsigned dir, const uint8_t *buf, size_t len, bool full,
                  cap_stats *stats, uint64_t ts_us);

/* Emit the record once, if at least one banner was read. */
void cap_ssh_finish(cap_ssh_state *st, const cap_sink *sink, cap_stats *stats);

/* Per-connection HTTP/1.x state: requests waiting for their responses
 * and the body bytes still to skip in each direction (cap_http_conn.c). */
typedef struct cap_http_conn cap_http_conn;

/* Return a new connection state, or NULL when out of memory. */
cap_http_conn *cap_http_conn_create(void);

/*
 * Read the in-order bytes BUF/LEN buffered for direction DIR (0 client,
 * 1 server) from where the previous call stopped. Requests are parsed
 * from the client side and queued; each parsed response status line is
 * paired with the oldest queued request, which is then emitted through
 * SINK. TEMPLATE gives the time and endpoints of new requests. FULL says
 * the buffer cannot grow. *HEAD_SCANNED counts the bytes at the start of
 * the buffer already searched for the end of a head. The caller keeps it
 * with the buffer and sets it to 0 when the buffer is emptied, and this
 * function updates it. Returns the number of bytes used, which the
 * caller drops from the front of its buffer. Sets *RESYNC when the
 * client side lost track of where the next request starts (a malformed
 * head or a chunked request body): the caller then looks for the next
 * request at the start of a later segment.
 */
size_t cap_http_conn_feed(cap_http_conn *conn, unsigned dir, const uint8_t *buf, size_t len,
                          bool full, size_t *head_scanned, const cap_http *tmpl,
                          const cap_sink *sink, cap_stats *stats, bool *resync);

/* Tell the state that the client side resumes at a new request after a
 * resync. */
void cap_http_conn_client_resumed(cap_http_conn *conn);

/* Emit every queued request with status 0, then free CONN. Accepts NULL
 * and sets *CONN to NULL. */
void cap_http_conn_finish(cap_http_conn **conn, const cap_sink *sink, cap_stats *stats);

#endif /* FV_CAP_INTERNAL_H */
