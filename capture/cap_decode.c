/*
 * cap_decode.c: link, network and transport header decoding.
 *
 * cap_decode_frame() walks one frame from its link header to the
 * innermost IP header and that header's transport header, and fills a
 * cap_packet. It keeps no state between frames (fragment and flow state
 * live in cap_engine.c) and never copies payload: cap_packet.payload
 * points into the frame.
 *
 * Every read goes through a cap_cursor whose remaining length is the
 * smaller of the captured bytes and the length the enclosing header
 * declares, so Ethernet padding and snap-length cuts are both handled by
 * the same `n <= remaining` checks.
 *
 * Tunnels (GRE, VXLAN, GTP-U, IP-in-IP, 6in4, Teredo) are decoded into a
 * copy of the packet; the copy replaces the outer result only when the
 * inner header decodes completely, so a tunnel that carries something
 * other than IP keeps its outer flow key.
 */
#include <stddef.h>
#include <string.h>

#include "cap_internal.h"

/* Tunnels nested deeper than CAP_MAX_TUNNEL_DEPTH (cap_internal.h) keep
 * the key of the last decoded header. */

/* Stacked 802.1Q/802.1ad tags and MPLS labels accepted before giving up. */
#define CAP_MAX_TAGS 8
/* IPv6 extension headers walked before the chain is called invalid. */
#define CAP_MAX_EXT_HEADERS 16

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100
#define ETHERTYPE_MPLS 0x8847
#define ETHERTYPE_PPPOE_SESSION 0x8864
#define ETHERTYPE_TEB 0x6558 /* transparent Ethernet bridging inside GRE */
#define ETHERTYPE_ERSPAN2 0x88be
#define ETHERTYPE_PPP 0x880b /* PPP inside enhanced GRE (PPTP) */

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057

#define IPPROTO_NUM_ICMP 1
#define IPPROTO_NUM_IPIP 4
#define IPPROTO_NUM_TCP 6
#define IPPROTO_NUM_UDP 17
#define IPPROTO_NUM_IPV6 41
#define IPPROTO_NUM_GRE 47
#define IPPROTO_NUM_ICMPV6 58
#define IPPROTO_NUM_SCTP 132

#define UDP_PORT_VXLAN 4789
#define UDP_PORT_GTPU 2152
#define UDP_PORT_TEREDO 3544

/* libpcap link-type numbers. Literals, because the DLT_* macros differ
 * between platforms (DLT_RAW is 12 on Linux, 14 on OpenBSD, and 12 is
 * DLT_LOOP on OpenBSD). */
#define LINK_NULL 0
#define LINK_EN10MB 1
#define LINK_PPP 9
#define LINK_RAW_12 12
#define LINK_RAW_14 14
#define LINK_PPP_SERIAL 50
#define LINK_RAW_101 101 /* LINKTYPE_RAW as stored in files */
#define LINK_LOOP 108
#define LINK_LINUX_SLL 113
#define LINK_IPV4 228
#define LINK_IPV6 229
#define LINK_NFLOG 239
#define LINK_LINUX_SLL2 276

/* NFLOG TLV type that carries the packet (NFULA_PAYLOAD). */
#define NFLOG_TLV_PAYLOAD 9

static cap_decode_status decode_ip(cap_packet *pkt, cap_cursor cur, unsigned depth);
static cap_decode_status decode_ethernet(cap_packet *pkt, cap_cursor cur, unsigned depth);

/* Clear every field below the link layer so a tunnel's inner header can be
 * decoded into a copy of the outer packet. */
static void reset_network(cap_packet *pkt)
{
    cap_packet link = {0};

    link.has_mac = pkt->has_mac;
    memcpy(link.src_mac, pkt->src_mac, sizeof link.src_mac);
    memcpy(link.dst_mac, pkt->dst_mac, sizeof link.dst_mac);
    link.has_sender_mac = pkt->has_sender_mac;
    memcpy(link.sender_mac, pkt->sender_mac, sizeof link.sender_mac);
    link.vlan = pkt->vlan;
    *pkt = link;
}

/*
 * Add OUTER's IP header, at tunnel depth DEPTH, to the headers that
 * enclose INNER, with the MACs of the Ethernet header that carries it.
 * At depth 0 those are the frame's (only the sender's in a Linux cooked
 * capture). Deeper, they are those of the Ethernet frame inside the
 * tunnel, if any.
 */
static void note_enclosing(cap_packet *inner, const cap_packet *outer, unsigned depth)
{
    if (!outer->have_addrs || inner->enclosing_count >= CAP_MAX_TUNNEL_DEPTH)
        return;
    cap_enclosing *e = &inner->enclosing[inner->enclosing_count++];
    memset(e, 0, sizeof *e);
    e->src = outer->src;
    e->dst = outer->dst;
    if (depth == 0 && outer->has_mac) {
        e->has_src_mac = e->has_dst_mac = true;
        memcpy(e->src_mac, outer->src_mac, 6);
        memcpy(e->dst_mac, outer->dst_mac, 6);
    } else if (depth == 0 && outer->has_sender_mac) {
        e->has_src_mac = true;
        memcpy(e->src_mac, outer->sender_mac, 6);
    } else if (depth > 0 && outer->has_inner_mac) {
        e->has_src_mac = e->has_dst_mac = true;
        memcpy(e->src_mac, outer->inner_src_mac, 6);
        memcpy(e->dst_mac, outer->inner_dst_mac, 6);
    }
}

/*
 * Decode the tunnel payload at CUR as INNER_KIND (an IP version nibble
 * dispatch when 0, else Ethernet). Replace *pkt only if the inner packet
 * decodes completely; return whether it did.
 */
enum tunnel_inner { TUNNEL_IP = 0, TUNNEL_ETHERNET = 1 };

static bool try_tunnel(cap_packet *pkt, cap_cursor cur, unsigned depth, enum tunnel_inner kind,
                       fv_tunnel type)
{
    cap_packet inner;
    cap_decode_status st;

    if (depth + 1 > CAP_MAX_TUNNEL_DEPTH) {
        pkt->tunnel_too_deep = true;
        return false;
    }

    inner = *pkt;
    reset_network(&inner);
    if (kind == TUNNEL_ETHERNET)
        st = decode_ethernet(&inner, cur, depth + 1);
    else
        st = decode_ip(&inner, cur, depth + 1);
    if (st != CAP_DECODE_OK)
        return false;

    if (inner.tunnel_depth < depth + 1)
        inner.tunnel_depth = (uint8_t)(depth + 1);
    /* Each enclosing level overwrites these on the way out, so the
     * outermost tunnel is what remains. */
    inner.tunnel_type = (uint8_t)type;
    inner.outer_src = pkt->src;
    inner.outer_dst = pkt->dst;
    note_enclosing(&inner, pkt, depth);
    *pkt = inner;
    return true;
}

/* ---------------------------------------------------------------------- */
/* Tunnels carried in UDP and GRE                                         */
/* ---------------------------------------------------------------------- */

/* VXLAN (RFC 7348): 8-byte header with the I flag, then an Ethernet frame. */
static void decode_vxlan(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    if (!cap_cur_has(&cur, 8) || (cur.p[0] & 0x08) == 0)
        return;
    cap_cur_skip(&cur, 8);
    (void)try_tunnel(pkt, cur, depth, TUNNEL_ETHERNET, FV_TUNNEL_VXLAN);
}

/* GTP-U version 1 G-PDU (3GPP TS 29.281): 8-byte header, 4 optional bytes
 * when any of the E, S or PN flags is set, then extension headers whose
 * length is counted in 4-byte units and whose last byte names the next. */
static void decode_gtpu(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    uint8_t flags;
    uint8_t next_ext;
    size_t ext_len;

    if (!cap_cur_has(&cur, 8))
        return;
    flags = cur.p[0];
    if ((flags >> 5) != 1 || (flags & 0x10) == 0 || cur.p[1] != 0xff)
        return;
    if ((flags & 0x07) == 0) {
        cap_cur_skip(&cur, 8);
    } else {
        if (!cap_cur_has(&cur, 12))
            return;
        next_ext = (flags & 0x04) ? cur.p[11] : 0;
        cap_cur_skip(&cur, 12);
        while (next_ext != 0) {
            if (!cap_cur_has(&cur, 1))
                return;
            ext_len = (size_t)cur.p[0] * 4;
            if (ext_len == 0 || !cap_cur_has(&cur, ext_len))
                return;
            next_ext = cur.p[ext_len - 1];
            cap_cur_skip(&cur, ext_len);
        }
    }
    (void)try_tunnel(pkt, cur, depth, TUNNEL_IP, FV_TUNNEL_GTPU);
}

/*
 * Teredo (RFC 4380): optional authentication and origin indicators, then
 * an IPv6 packet. UDP 3544 also carries Teredo control traffic, so the
 * payload counts as a tunnel only if it is exactly one IPv6 packet:
 * version 6 and 40 + payload length equal to the UDP payload length
 * DECLARED_LEN (which may exceed the captured bytes).
 */
static void decode_teredo(cap_packet *pkt, cap_cursor cur, size_t declared_len, unsigned depth)
{
    size_t hdr = 0;
    size_t auth_len;

    if (cap_cur_has(&cur, 4) && cur.p[0] == 0x00 && cur.p[1] == 0x01) {
        auth_len = 4 + (size_t)cur.p[2] + cur.p[3] + 8 + 1;
        if (!cap_cur_has(&cur, auth_len))
            return;
        cap_cur_skip(&cur, auth_len);
        hdr += auth_len;
    }
    if (cap_cur_has(&cur, 8) && cur.p[0] == 0x00 && cur.p[1] == 0x00) {
        cap_cur_skip(&cur, 8);
        hdr += 8;
    }
    if (!cap_cur_has(&cur, 40) || (cur.p[0] >> 4) != 6)
        return;
    if (hdr > declared_len || 40 + (size_t)cap_be16(cur.p + 4) != declared_len - hdr)
        return;
    (void)try_tunnel(pkt, cur, depth, TUNNEL_IP, FV_TUNNEL_TEREDO);
}

/* Skip the PPP address, control and protocol fields at *CUR. Returns
 * true if the protocol is IPv4 or IPv6, with *CUR at the IP header. */
static bool ppp_carries_ip(cap_cursor *cur)
{
    uint16_t proto;

    if (cap_cur_has(cur, 2) && cur->p[0] == 0xff && cur->p[1] == 0x03)
        cap_cur_skip(cur, 2);
    if (!cap_cur_has(cur, 1))
        return false;
    if (cur->p[0] & 0x01) { /* protocol field compressed to one byte */
        proto = cur->p[0];
        cap_cur_skip(cur, 1);
    } else {
        if (!cap_cur_has(cur, 2))
            return false;
        proto = cap_be16(cur->p);
        cap_cur_skip(cur, 2);
    }
    return proto == PPP_IPV4 || proto == PPP_IPV6;
}

/* PPP inside enhanced GRE (PPTP): decode its IP as a tunnel. */
static bool ppp_tunnel(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    if (!ppp_carries_ip(&cur))
        return false;
    return try_tunnel(pkt, cur, depth, TUNNEL_IP, FV_TUNNEL_GRE);
}

/*
 * GRE version 0 (RFC 2784/2890) with optional checksum, key and sequence
 * words, and enhanced GRE version 1 (PPTP, RFC 2637) carrying PPP.
 * Source-routed GRE (R flag) is left undecoded.
 */
static void decode_gre(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    uint16_t flags, proto;
    size_t hdr = 4;

    if (!cap_cur_has(&cur, 4))
        return;
    flags = cap_be16(cur.p);
    proto = cap_be16(cur.p + 2);
    if (flags & 0x4000)
        return;

    if ((flags & 0x0007) == 0) {
        if (flags & 0x8000)
            hdr += 4;
        if (flags & 0x2000)
            hdr += 4;
        if (flags & 0x1000)
            hdr += 4;
    } else if ((flags & 0x0007) == 1) {
        hdr += 4; /* the key field is mandatory in version 1 */
        if (flags & 0x1000)
            hdr += 4;
        if (flags & 0x0080)
            hdr += 4;
    } else {
        return;
    }
    if (!cap_cur_has(&cur, hdr))
        return;
    cap_cur_skip(&cur, hdr);

    switch (proto) {
    case ETHERTYPE_IPV4:
    case ETHERTYPE_IPV6:
        (void)try_tunnel(pkt, cur, depth, TUNNEL_IP, FV_TUNNEL_GRE);
        break;
    case ETHERTYPE_TEB:
        (void)try_tunnel(pkt, cur, depth, TUNNEL_ETHERNET, FV_TUNNEL_GRE);
        break;
    case ETHERTYPE_ERSPAN2:
        /* ERSPAN type II: 8-byte header (only present with a sequence number). */
        if ((flags & 0x1000) && cap_cur_has(&cur, 8)) {
            cap_cur_skip(&cur, 8);
            (void)try_tunnel(pkt, cur, depth, TUNNEL_ETHERNET, FV_TUNNEL_ERSPAN);
        }
        break;
    case ETHERTYPE_PPP:
        (void)ppp_tunnel(pkt, cur, depth);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------------- */
/* Transport                                                              */
/* ---------------------------------------------------------------------- */

/* ICMP destination unreachable (3), time exceeded (11), parameter problem
 * (12); ICMPv6 destination unreachable (1), packet too big (2), time
 * exceeded (3), parameter problem (4). */
static bool is_icmp_error(uint8_t proto, uint8_t type)
{
    if (proto == IPPROTO_NUM_ICMP)
        return type == 3 || type == 11 || type == 12;
    return type >= 1 && type <= 4;
}

/*
 * Read the IP header an ICMP error quotes (RFC 792, RFC 4443 2.4: as much
 * of the invoking packet as fits) and, for TCP, UDP and SCTP, its first
 * four transport bytes. IPv6 extension headers in the quote are not
 * walked, so such a quote keys on the extension header's number and does
 * not match a flow.
 */
static void decode_quote(cap_packet *pkt, cap_cursor cur)
{
    size_t hdr;
    uint8_t proto;

    if (!cap_cur_has(&cur, 1))
        return;
    if ((cur.p[0] >> 4) == 4) {
        if (!cap_cur_has(&cur, 20))
            return;
        hdr = (size_t)(cur.p[0] & 0x0f) * 4;
        if (hdr < 20)
            return;
        proto = cur.p[9];
        pkt->quote_src.family = 4;
        memcpy(pkt->quote_src.addr, cur.p + 12, 4);
        pkt->quote_dst.family = 4;
        memcpy(pkt->quote_dst.addr, cur.p + 16, 4);
        /* A non-first fragment quotes no transport header. */
        if ((cap_be16(cur.p + 6) & 0x1fff) != 0)
            proto = 0;
    } else if ((cur.p[0] >> 4) == 6) {
        if (!cap_cur_has(&cur, 40))
            return;
        hdr = 40;
        proto = cur.p[6];
        pkt->quote_src.family = 6;
        memcpy(pkt->quote_src.addr, cur.p + 8, 16);
        pkt->quote_dst.family = 6;
        memcpy(pkt->quote_dst.addr, cur.p + 24, 16);
    } else {
        return;
    }
    pkt->has_quote = true;
    pkt->quote_proto = proto;
    if (proto != IPPROTO_NUM_TCP && proto != IPPROTO_NUM_UDP && proto != IPPROTO_NUM_SCTP)
        return;
    if (!cap_cur_has(&cur, hdr + 4)) {
        pkt->has_quote = false;
        return;
    }
    pkt->quote_has_ports = true;
    pkt->quote_sport = cap_be16(cur.p + hdr);
    pkt->quote_dport = cap_be16(cur.p + hdr + 2);
}

/*
 * Decode the transport header of PKT->proto at CUR (which ends where the
 * IP header says the datagram ends). Non-first fragments never get here.
 * Tunnels are only followed in unfragmented datagrams.
 */
static cap_decode_status decode_transport(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    size_t doff, udp_len, declared;

    switch (pkt->proto) {
    case IPPROTO_NUM_TCP:
        if (!cap_cur_has(&cur, 20))
            return CAP_DECODE_TRUNCATED;
        pkt->has_ports = true;
        pkt->sport = cap_be16(cur.p);
        pkt->dport = cap_be16(cur.p + 2);
        pkt->tcp_seq = cap_be32(cur.p + 4);
        pkt->tcp_flags = (uint16_t)(((cur.p[12] & 0x0f) << 8) | cur.p[13]);
        doff = (size_t)(cur.p[12] >> 4) * 4;
        if (doff < 20)
            return CAP_DECODE_BAD_HEADER;
        pkt->tcp_seg_len = pkt->l4_declared > doff ? pkt->l4_declared - (uint32_t)doff : 0;
        if (!cap_cur_has(&cur, doff))
            return CAP_DECODE_TRUNCATED;
        cap_cur_skip(&cur, doff);
        pkt->payload = cur.p;
        pkt->payload_len = cur.remaining;
        return CAP_DECODE_OK;

    case IPPROTO_NUM_UDP:
        if (!cap_cur_has(&cur, 8))
            return CAP_DECODE_TRUNCATED;
        pkt->has_ports = true;
        pkt->sport = cap_be16(cur.p);
        pkt->dport = cap_be16(cur.p + 2);
        udp_len = cap_be16(cur.p + 4);
        cap_cur_skip(&cur, 8);
        /* A UDP length below 8 (0 for jumbograms) is ignored: use the IP length. */
        declared = cur.remaining;
        if (udp_len >= 8) {
            declared = udp_len - 8;
            if (declared < cur.remaining)
                cur.remaining = declared;
        }
        pkt->payload = cur.p;
        pkt->payload_len = cur.remaining;
        if (pkt->is_fragment)
            return CAP_DECODE_OK;

        if (pkt->dport == UDP_PORT_VXLAN)
            decode_vxlan(pkt, cur, depth);
        else if (pkt->sport == UDP_PORT_GTPU || pkt->dport == UDP_PORT_GTPU)
            decode_gtpu(pkt, cur, depth);
        else if (pkt->sport == UDP_PORT_TEREDO || pkt->dport == UDP_PORT_TEREDO)
            decode_teredo(pkt, cur, declared, depth);
        return CAP_DECODE_OK;

    case IPPROTO_NUM_SCTP:
        if (!cap_cur_has(&cur, 12))
            return CAP_DECODE_TRUNCATED;
        pkt->has_ports = true;
        pkt->sport = cap_be16(cur.p);
        pkt->dport = cap_be16(cur.p + 2);
        return CAP_DECODE_OK;

    case IPPROTO_NUM_ICMP:
    case IPPROTO_NUM_ICMPV6:
        if (!cap_cur_has(&cur, 2))
            return CAP_DECODE_TRUNCATED;
        pkt->has_icmp = true;
        pkt->icmp_type = cur.p[0];
        pkt->icmp_code = cur.p[1];
        if (is_icmp_error(pkt->proto, pkt->icmp_type)) {
            pkt->icmp_error = true;
            /* type, code, checksum and 4 unused or MTU/pointer bytes */
            if (cap_cur_has(&cur, 8)) {
                cap_cur_skip(&cur, 8);
                decode_quote(pkt, cur);
            }
        }
        return CAP_DECODE_OK;

    case IPPROTO_NUM_IPIP:
    case IPPROTO_NUM_IPV6:
        /* IPv6 directly in IPv4 is 6in4 (RFC 4213); other IP-in-IP is ipip. */
        if (!pkt->is_fragment)
            (void)try_tunnel(pkt, cur, depth, TUNNEL_IP,
                             pkt->proto == IPPROTO_NUM_IPV6 && pkt->src.family == 4
                                 ? FV_TUNNEL_6IN4
                                 : FV_TUNNEL_IPIP);
        return CAP_DECODE_OK;

    case IPPROTO_NUM_GRE:
        if (!pkt->is_fragment)
            decode_gre(pkt, cur, depth);
        return CAP_DECODE_OK;

    default:
        return CAP_DECODE_OK;
    }
}

/* ---------------------------------------------------------------------- */
/* IPv4 and IPv6                                                          */
/* ---------------------------------------------------------------------- */

/* IPv4 (RFC 791): options are skipped by IHL; a non-first fragment stops
 * before the transport header, which only the first fragment carries. */
static cap_decode_status decode_ipv4(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    size_t ihl, total;
    uint16_t frag;

    if (!cap_cur_has(&cur, 20))
        return CAP_DECODE_TRUNCATED;
    if ((cur.p[0] >> 4) != 4)
        return CAP_DECODE_BAD_HEADER;

    pkt->src.family = 4;
    memcpy(pkt->src.addr, cur.p + 12, 4);
    pkt->dst.family = 4;
    memcpy(pkt->dst.addr, cur.p + 16, 4);
    pkt->have_addrs = true;
    pkt->proto = cur.p[9];

    ihl = (size_t)(cur.p[0] & 0x0f) * 4;
    total = cap_be16(cur.p + 2);
    if (ihl < 20 || total < ihl)
        return CAP_DECODE_BAD_HEADER;
    if (!cap_cur_has(&cur, ihl))
        return CAP_DECODE_TRUNCATED;
    pkt->ip_bytes = (uint32_t)total;

    frag = cap_be16(cur.p + 6);
    if ((frag & 0x3fff) != 0) {
        pkt->is_fragment = true;
        pkt->frag_id = cap_be16(cur.p + 4);
        pkt->first_fragment = (frag & 0x1fff) == 0;
    }

    /* Clip the cursor to the datagram, dropping link-layer padding. */
    if (total < cur.remaining)
        cur.remaining = total;
    cap_cur_skip(&cur, ihl);
    if (pkt->is_fragment) {
        pkt->frag_offset = (uint32_t)(frag & 0x1fff) * 8;
        pkt->frag_more = (frag & 0x2000) != 0;
        pkt->frag_data = cur.p;
        pkt->frag_len = cur.remaining;
        pkt->frag_declared = total - ihl;
    }

    if (pkt->is_fragment && !pkt->first_fragment)
        return CAP_DECODE_OK;
    pkt->l4_declared = (uint32_t)(total - ihl);
    return decode_transport(pkt, cur, depth);
}

/*
 * IPv6 (RFC 8200): walk hop-by-hop, routing, destination options and
 * fragment headers to the upper-layer protocol. ESP, AH and "no next
 * header" end the walk and key the flow by that protocol. A payload
 * length of 0 (jumbogram or offloaded send) keeps the captured length.
 */
static cap_decode_status decode_ipv6(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    const uint8_t *start; /* first byte after the fixed header */
    size_t plen, ext_len;
    uint8_t next;
    unsigned i;

    if (!cap_cur_has(&cur, 40))
        return CAP_DECODE_TRUNCATED;
    if ((cur.p[0] >> 4) != 6)
        return CAP_DECODE_BAD_HEADER;

    pkt->src.family = 6;
    memcpy(pkt->src.addr, cur.p + 8, 16);
    pkt->dst.family = 6;
    memcpy(pkt->dst.addr, cur.p + 24, 16);
    pkt->have_addrs = true;

    plen = cap_be16(cur.p + 4);
    next = cur.p[6];
    pkt->ip_bytes = (uint32_t)(plen + 40);
    cap_cur_skip(&cur, 40);
    start = cur.p;
    if (plen != 0 && plen < cur.remaining)
        cur.remaining = plen;

    for (i = 0; i < CAP_MAX_EXT_HEADERS; i++) {
        pkt->proto = next;
        switch (next) {
        case 0:  /* hop-by-hop options */
        case 43: /* routing */
        case 60: /* destination options */
            if (!cap_cur_has(&cur, 2))
                return CAP_DECODE_TRUNCATED;
            ext_len = ((size_t)cur.p[1] + 1) * 8;
            if (!cap_cur_has(&cur, ext_len))
                return CAP_DECODE_TRUNCATED;
            next = cur.p[0];
            cap_cur_skip(&cur, ext_len);
            break;

        case 44: { /* fragment */
            uint16_t off_flags;

            if (!cap_cur_has(&cur, 8))
                return CAP_DECODE_TRUNCATED;
            next = cur.p[0];
            off_flags = cap_be16(cur.p + 2);
            /* An atomic fragment (offset 0, M clear) is a whole datagram. */
            if ((off_flags & 0xfff9) != 0) {
                pkt->is_fragment = true;
                pkt->frag_id = cap_be32(cur.p + 4);
                pkt->first_fragment = (off_flags & 0xfff8) == 0;
            }
            cap_cur_skip(&cur, 8);
            if (pkt->is_fragment) {
                pkt->frag_offset = off_flags & 0xfff8;
                pkt->frag_more = (off_flags & 0x0001) != 0;
                pkt->frag_data = cur.p;
                pkt->frag_len = cur.remaining;
                /* The bytes after the Fragment header that the payload length declares. */
                pkt->frag_declared = plen >= (size_t)(cur.p - start) ? plen - (size_t)(cur.p - start)
                                                                    : 0;
            }
            if (pkt->is_fragment && !pkt->first_fragment) {
                pkt->proto = next;
                return CAP_DECODE_OK;
            }
            break;
        }

        default: /* upper layer, ESP (50), AH (51), no next header (59) */
            pkt->l4_declared = plen != 0 && plen >= (size_t)(cur.p - start)
                                   ? (uint32_t)(plen - (size_t)(cur.p - start))
                                   : (uint32_t)cur.remaining;
            return decode_transport(pkt, cur, depth);
        }
    }
    return CAP_DECODE_BAD_HEADER;
}

static cap_decode_status decode_ip(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    if (!cap_cur_has(&cur, 1))
        return CAP_DECODE_TRUNCATED;
    switch (cur.p[0] >> 4) {
    case 4:
        return decode_ipv4(pkt, cur, depth);
    case 6:
        return decode_ipv6(pkt, cur, depth);
    default:
        return CAP_DECODE_BAD_HEADER;
    }
}

/* ---------------------------------------------------------------------- */
/* Link layers                                                            */
/* ---------------------------------------------------------------------- */

/* MPLS unicast (RFC 3032): skip labels to the bottom of the stack, then
 * guess IPv4 or IPv6 from the version nibble, as label-switched routers do
 * for explicit-null and implicit payloads. Pseudowires are not decoded. */
static cap_decode_status decode_mpls(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    unsigned i;

    for (i = 0; i < CAP_MAX_TAGS; i++) {
        bool bottom;

        if (!cap_cur_has(&cur, 4))
            return CAP_DECODE_TRUNCATED;
        bottom = (cur.p[2] & 0x01) != 0;
        cap_cur_skip(&cur, 4);
        if (!bottom)
            continue;
        if (!cap_cur_has(&cur, 1))
            return CAP_DECODE_TRUNCATED;
        if ((cur.p[0] >> 4) == 4 || (cur.p[0] >> 4) == 6)
            return decode_ip(pkt, cur, depth);
        return CAP_DECODE_NON_IP;
    }
    return CAP_DECODE_NON_IP;
}

/* PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol. */
static cap_decode_status decode_pppoe(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    uint16_t proto;

    if (!cap_cur_has(&cur, 8))
        return CAP_DECODE_TRUNCATED;
    proto = cap_be16(cur.p + 6);
    cap_cur_skip(&cur, 8);
    if (proto == PPP_IPV4 || proto == PPP_IPV6)
        return decode_ip(pkt, cur, depth);
    return CAP_DECODE_NON_IP;
}

/* Dispatch on an EtherType, unwrapping 802.1Q/802.1ad tags. Only the frame
 * at DEPTH 0 records its outermost VLAN id. */
static cap_decode_status decode_ethertype(cap_packet *pkt, uint16_t type, cap_cursor cur,
                                          unsigned depth)
{
    unsigned tags = 0;

    for (;;) {
        switch (type) {
        case ETHERTYPE_VLAN:
        case ETHERTYPE_QINQ:
        case ETHERTYPE_QINQ_OLD:
            if (++tags > CAP_MAX_TAGS)
                return CAP_DECODE_NON_IP;
            if (!cap_cur_has(&cur, 4))
                return CAP_DECODE_TRUNCATED;
            if (depth == 0 && tags == 1)
                pkt->vlan = cap_be16(cur.p) & 0x0fff;
            type = cap_be16(cur.p + 2);
            cap_cur_skip(&cur, 4);
            break;
        case ETHERTYPE_IPV4:
        case ETHERTYPE_IPV6:
            return decode_ip(pkt, cur, depth);
        case ETHERTYPE_MPLS:
            return decode_mpls(pkt, cur, depth);
        case ETHERTYPE_PPPOE_SESSION:
            return decode_pppoe(pkt, cur, depth);
        default:
            return CAP_DECODE_NON_IP;
        }
    }
}

/* Ethernet II. A type field below 0x0600 is an 802.3 length (LLC frames,
 * spanning tree and the like), which never carries IP here. */
static cap_decode_status decode_ethernet(cap_packet *pkt, cap_cursor cur, unsigned depth)
{
    uint16_t type;

    if (!cap_cur_has(&cur, 14))
        return CAP_DECODE_TRUNCATED;
    if (depth == 0) {
        pkt->has_mac = true;
        memcpy(pkt->dst_mac, cur.p, 6);
        memcpy(pkt->src_mac, cur.p + 6, 6);
    } else {
        /* A tunnel decoded inside this frame starts from a copy that
         * reset_network clears of these, so they stay only while the IP
         * header after them is the innermost. */
        pkt->has_inner_mac = true;
        memcpy(pkt->inner_dst_mac, cur.p, 6);
        memcpy(pkt->inner_src_mac, cur.p + 6, 6);
    }
    type = cap_be16(cur.p + 12);
    cap_cur_skip(&cur, 14);
    if (type < 0x0600)
        return CAP_DECODE_NON_IP;
    return decode_ethertype(pkt, type, cur, depth);
}

/* BSD loopback: a 4-byte address family, host order for DLT_NULL and
 * network order for DLT_LOOP. Files move between machines, so both orders
 * are accepted for both link types. IPv6 is 24, 28 or 30 depending on the
 * BSD that wrote the file. */
static cap_decode_status decode_null(cap_packet *pkt, cap_cursor cur)
{
    uint32_t be, le;

    if (!cap_cur_has(&cur, 4))
        return CAP_DECODE_TRUNCATED;
    be = cap_be32(cur.p);
    le = (uint32_t)cur.p[0] | ((uint32_t)cur.p[1] << 8) | ((uint32_t)cur.p[2] << 16) |
         ((uint32_t)cur.p[3] << 24);
    cap_cur_skip(&cur, 4);
    if (be == 2 || le == 2)
        return decode_ip(pkt, cur, 0);
    if (be == 24 || be == 28 || be == 30 || le == 24 || le == 28 || le == 30)
        return decode_ip(pkt, cur, 0);
    return CAP_DECODE_NON_IP;
}

/* Linux netfilter NFLOG: a 4-byte header, then TLVs whose length and type
 * are in the capturing host's byte order (libpcap swaps them when reading
 * a file of the other order). Lengths include the 4-byte TLV header and
 * each TLV is padded to 4 bytes. */
static cap_decode_status decode_nflog(cap_packet *pkt, cap_cursor cur)
{
    if (!cap_cur_has(&cur, 4))
        return CAP_DECODE_TRUNCATED;
    cap_cur_skip(&cur, 4);

    while (cap_cur_has(&cur, 4)) {
        uint16_t tlv_len, tlv_type;
        size_t padded;

        memcpy(&tlv_len, cur.p, 2);
        memcpy(&tlv_type, cur.p + 2, 2);
        if (tlv_len < 4)
            return CAP_DECODE_TRUNCATED;
        if (!cap_cur_has(&cur, tlv_len))
            return CAP_DECODE_TRUNCATED;
        if (tlv_type == NFLOG_TLV_PAYLOAD) {
            cap_cursor inner = {cur.p + 4, (size_t)tlv_len - 4};

            return decode_ip(pkt, inner, 0);
        }
        padded = ((size_t)tlv_len + 3) & ~(size_t)3;
        if (!cap_cur_has(&cur, padded))
            break;
        cap_cur_skip(&cur, padded);
    }
    return CAP_DECODE_NON_IP;
}

/* PPP in HDLC-like framing (DLT_PPP, DLT_PPP_SERIAL). */
static cap_decode_status decode_ppp_link(cap_packet *pkt, cap_cursor cur)
{
    if (!cap_cur_has(&cur, 2))
        return CAP_DECODE_TRUNCATED;
    /* PPP is this frame's link layer, not a tunnel, so its IP header is
     * the outermost one, and a tunnel inside it gets its outer
     * addresses. */
    if (!ppp_carries_ip(&cur))
        return CAP_DECODE_NON_IP;
    return decode_ip(pkt, cur, 0);
}

/* Keep the sender's MAC of a Linux cooked capture header when the
 * interface is Ethernet (ARPHRD_ETHER, 1), the address is 6 bytes and
 * the packet was not sent by the capturing host (PACKET_OUTGOING, 4).
 * An outgoing packet carries the capturing host's own MAC, which on a
 * router does not belong to the packet's source address. */
static void note_sender_mac(cap_packet *pkt, uint16_t packet_type, uint16_t arphrd,
                            uint16_t addr_len, const uint8_t *addr)
{
    if (packet_type == 4 || arphrd != 1 || addr_len != 6)
        return;
    pkt->has_sender_mac = true;
    memcpy(pkt->sender_mac, addr, 6);
}

cap_decode_status cap_decode_frame(int linktype, const uint8_t *data, size_t caplen,
                                   cap_packet *out)
{
    cap_cursor cur = {data, caplen};

    /* The enclosing headers are written only by tunnels, so clearing
     * their count is enough. */
    memset(out, 0, offsetof(cap_packet, enclosing));

    switch (linktype) {
    case LINK_EN10MB:
        return decode_ethernet(out, cur, 0);

    case LINK_LINUX_SLL:
        /* packet type, ARPHRD type, address length, 8 address bytes, protocol */
        if (!cap_cur_has(&cur, 16))
            return CAP_DECODE_TRUNCATED;
        {
            uint16_t proto = cap_be16(cur.p + 14);

            note_sender_mac(out, cap_be16(cur.p), cap_be16(cur.p + 2), cap_be16(cur.p + 4),
                            cur.p + 6);
            cap_cur_skip(&cur, 16);
            return decode_ethertype(out, proto, cur, 0);
        }

    case LINK_LINUX_SLL2:
        /* protocol, reserved, interface index, ARPHRD type, packet type,
         * address length, 8 address bytes */
        if (!cap_cur_has(&cur, 20))
            return CAP_DECODE_TRUNCATED;
        {
            uint16_t proto = cap_be16(cur.p);

            note_sender_mac(out, cur.p[10], cap_be16(cur.p + 8), cur.p[11], cur.p + 12);
            cap_cur_skip(&cur, 20);
            return decode_ethertype(out, proto, cur, 0);
        }

    case LINK_RAW_12:
    case LINK_RAW_14:
    case LINK_RAW_101:
        return decode_ip(out, cur, 0);

    case LINK_IPV4:
        if (cap_cur_has(&cur, 1) && (cur.p[0] >> 4) != 4)
            return CAP_DECODE_BAD_HEADER;
        return decode_ip(out, cur, 0);

    case LINK_IPV6:
        if (cap_cur_has(&cur, 1) && (cur.p[0] >> 4) != 6)
            return CAP_DECODE_BAD_HEADER;
        return decode_ip(out, cur, 0);

    case LINK_NULL:
    case LINK_LOOP:
        return decode_null(out, cur);

    case LINK_NFLOG:
        return decode_nflog(out, cur);

    case LINK_PPP:
    case LINK_PPP_SERIAL:
        return decode_ppp_link(out, cur);

    default:
        return CAP_DECODE_UNSUPPORTED_LINK;
    }
}
