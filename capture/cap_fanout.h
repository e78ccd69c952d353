/*
 * cap_fanout.h: joining a live libpcap handle to a Linux PACKET_FANOUT
 * group, so several handles (one per worker thread) share one interface.
 */
#ifndef FV_CAP_FANOUT_H
#define FV_CAP_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include <pcap/pcap.h>

/*
 * Join activated handle P on IFACE to fanout group GROUP with
 * PACKET_FANOUT_HASH and PACKET_FANOUT_FLAG_DEFRAG. Returns FV_OK, or
 * FV_ERR_CAPTURE with the reason in ERR (the group is in use with other
 * settings, the socket is not a packet socket, or the platform has no
 * fanout), or FV_ERR_UNSUPPORTED off Linux.
 */
int cap_fanout_join(pcap_t *p, const char *iface, uint16_t group, char *err, size_t err_len);

#endif /* FV_CAP_FANOUT_H */
