/*
 * cap_udp_apps.c: the engine's glue for the UDP protocols read from a
 * single datagram: DHCP (ports 67/68), NetBIOS name service (port 137)
 * and NTP (port 123). The parsers live in cap_dhcp.c and cap_nbns.c; this
 * file fills the events and counts failures.
 */
#include <string.h>

#include "cap_internal.h"
#include "cap_proto.h"

#define PORT_DHCP_CLIENT 68
#define NTP_HEADER_BYTES 48
#define NTP_CONTROL_HEADER_BYTES 12
#define NTP_MODE_CONTROL 6

void cap_dhcp_handle(const cap_sink *sink, cap_stats *stats, const cap_packet *pkt,
                     uint64_t ts_us)
{
    cap_dhcp_msg m;
    cap_dhcp ev;
    bool client_is_src;

    if (cap_dhcp_parse(pkt->payload, pkt->payload_len, &m) != FV_OK) {
        stats->dhcp_malformed++;
        return;
    }
    stats->dhcp_messages++;
    if (m.options_cut)
        stats->dhcp_bad_options++;

    memset(&ev, 0, sizeof ev);
    ev.ts_us = ts_us;
    /* The client is the port-68 side. Between two port-67 agents (a relay
     * and a server) the sender takes its place. */
    client_is_src = !(pkt->dport == PORT_DHCP_CLIENT && pkt->sport != PORT_DHCP_CLIENT);
    ev.client = client_is_src ? pkt->src : pkt->dst;
    ev.client_port = client_is_src ? pkt->sport : pkt->dport;
    ev.server = client_is_src ? pkt->dst : pkt->src;
    ev.server_port = client_is_src ? pkt->dport : pkt->sport;
    ev.op = m.op;
    ev.msg_type = m.msg_type;
    ev.has_chaddr = m.has_chaddr;
    memcpy(ev.chaddr, m.chaddr, sizeof ev.chaddr);
    memcpy(ev.ciaddr, m.ciaddr, sizeof ev.ciaddr);
    memcpy(ev.yiaddr, m.yiaddr, sizeof ev.yiaddr);
    ev.has_requested_ip = m.has_requested_ip;
    memcpy(ev.requested_ip, m.requested_ip, sizeof ev.requested_ip);
    memcpy(ev.hostname, m.hostname, sizeof ev.hostname);
    memcpy(ev.vendor_class, m.vendor_class, sizeof ev.vendor_class);
    if (sink->on_dhcp != NULL)
        sink->on_dhcp(sink->ctx, &ev);
}

void cap_nbns_handle(const cap_sink *sink, cap_stats *stats, const cap_packet *pkt,
                     uint64_t ts_us)
{
    cap_dns ev;
    uint8_t opcode;
    bool is_response;

    memset(&ev, 0, sizeof ev);
    if (cap_nbns_parse(pkt->payload, pkt->payload_len, ev.qname, &opcode, &is_response, &ev.txid,
                       &ev.qtype, &ev.qclass) != FV_OK) {
        stats->nbns_malformed++;
        return;
    }
    stats->nbns_messages++;
    if (is_response)
        return;
    (void)opcode; /* queries (0), registrations (5), releases, refreshes: all name a host */
    ev.ts_us = ts_us;
    ev.client = pkt->src;
    ev.client_port = pkt->sport;
    ev.server = pkt->dst;
    ev.server_port = pkt->dport;
    ev.transport = 17;
    ev.protocol = FV_DNS_PROTO_NBNS;
    ev.qdcount = 1;
    ev.question_count = 1;
    ev.questions[0].qtype = ev.qtype;
    ev.questions[0].qclass = ev.qclass;
    memcpy(ev.questions[0].name, ev.qname, sizeof ev.questions[0].name);
    if (sink->on_dns != NULL)
        sink->on_dns(sink->ctx, &ev);
}

bool cap_ntp_peek(const uint8_t *data, size_t len, uint8_t *mode, uint8_t *version)
{
    uint8_t m, v;

    if (data == NULL || !(1 <= len))
        return false;
    v = (uint8_t)((data[0] >> 3) & 0x07);
    m = (uint8_t)(data[0] & 0x07);
    if (v < 1 || v > 4)
        return false;
    if (!((m == NTP_MODE_CONTROL ? NTP_CONTROL_HEADER_BYTES : NTP_HEADER_BYTES) <= len))
        return false;
    *mode = m;
    *version = v;
    return true;
}
