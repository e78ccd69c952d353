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

    /* Transport payload bytes present in the capture (TCP/UDP only),
     * clipped to the length the IP header declares. */
    const uint8_t *payload;
    size_t payload_len;
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

/* Store libpcap's receive and drop counters (live capture) in the stats. */
void cap_engine_set_pcap_stats(cap_engine *engine, uint64_t received, uint64_t dropped,
                               uint64_t if_dropped);

#endif /* FV_CAP_INTERNAL_H */
