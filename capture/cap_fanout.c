/*
 * cap_fanout.c: PACKET_FANOUT for live capture with several workers, and
 * the symmetric flow hash that spreads a file's frames the same way.
 */
#include "cap_fanout.h"
#include "cap_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <linux/if_packet.h>
#include <sys/socket.h>
#endif

int cap_fanout_join(pcap_t *p, const char *iface, uint16_t group, char *err, size_t err_len)
{
#if defined(__linux__) && defined(PACKET_FANOUT)
    /* The low 16 bits name the group, the high 16 bits select the mode and
     * flags. PACKET_FANOUT_HASH hashes with the kernel's symmetric flow
     * hash (fanout_demux_hash in net/packet/af_packet.c), so both
     * directions of a TCP or UDP flow reach one socket. FLAG_DEFRAG
     * reassembles IP fragments before hashing, because a non-first
     * fragment has no ports and would hash elsewhere. */
    int fd = pcap_fileno(p);
    /* Unsigned: FLAG_DEFRAG (0x8000) shifted by 16 overflows an int. The
     * kernel reads the same 32 bits as an int. */
    uint32_t arg = (uint32_t)group |
                   ((uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);

    if (fd < 0) {
        snprintf(err, err_len, "%s: the capture handle has no socket for PACKET_FANOUT", iface);
        return FV_ERR_CAPTURE;
    }
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
        snprintf(err, err_len,
                 "%s: joining PACKET_FANOUT group %u failed: %s; another program may use the "
                 "group with other settings, or the interface is not a Linux packet socket "
                 "(run with --workers 1)",
                 iface, (unsigned)group, strerror(errno));
        return FV_ERR_CAPTURE;
    }
    return FV_OK;
#else
    (void)p;
    (void)group;
    snprintf(err, err_len, "%s: this platform has no PACKET_FANOUT; run with --workers 1", iface);
    return FV_ERR_UNSUPPORTED;
#endif
}

/* Mix the bytes of an address into H (FNV-1a step per byte). */
static uint32_t mix_address(uint32_t h, const cap_ip *ip)
{
    size_t n = ip->family == 4 ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        h ^= ip->addr[i];
        h *= 16777619u;
    }
    return h;
}

/* The order of memcmp over the address bytes, compared as big-endian
 * words: the reader thread runs this for every packet, and memcmp of a
 * length chosen at run time is a library call. */
static int address_order(const cap_ip *a, const cap_ip *b)
{
    if (a->family != b->family)
        return (int)a->family - (int)b->family;
    size_t words = a->family == 4 ? 1 : 4;
    for (size_t i = 0; i < words; i++) {
        uint32_t x = cap_be32(a->addr + 4 * i), y = cap_be32(b->addr + 4 * i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

/* Order-independent hash of the address pair (A, B): the smaller
 * address goes in first, so swapping the directions gives the same value. */
static uint32_t pair_hash(const cap_ip *a, const cap_ip *b)
{
    int cmp = address_order(a, b);
    const cap_ip *low = cmp <= 0 ? a : b;
    const cap_ip *high = cmp <= 0 ? b : a;
    uint32_t h = 2166136261u;

    h = mix_address(h, low);
    h = mix_address(h, high);
    /* Final avalanche, so the low bits used for "hash % workers" depend on
     * every input byte. */
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return h;
}

uint32_t cap_flow_hash(int linktype, const uint8_t *data, uint32_t caplen)
{
    cap_packet pkt;

    (void)cap_decode_frame(linktype, data, caplen, &pkt);
    if (!pkt.have_addrs)
        return 0;
    if (pkt.icmp_error && pkt.has_quote)
        return pair_hash(&pkt.quote_src, &pkt.quote_dst);
    return pair_hash(&pkt.src, &pkt.dst);
}
