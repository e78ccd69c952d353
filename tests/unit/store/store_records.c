#include "store_records.h"

#include <stdio.h>
#include <string.h>

static void fill_endpoint(fv_endpoint *ep, uint8_t kind, uint32_t seed, const char *zone)
{
    ep->kind = kind;
    for (size_t i = 0; i < sizeof ep->addr; i++)
        ep->addr[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
    snprintf(ep->zone, sizeof ep->zone, "%s", zone);
}

void rec_fill_flow(fv_flow_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->first_us = (uint64_t)seed * 1000000u;
    r->last_us = r->first_us + 250000u;
    fill_endpoint(&r->src, FV_EP_PSEUDO_IPV4, seed, "office");
    fill_endpoint(&r->dst, FV_EP_PSEUDO_IPV6, seed + 1, "lab");
    r->sport = (uint16_t)(40000u + seed);
    r->dport = 443;
    r->proto = 6;
    r->end_reason = FV_END_FIN;
    r->icmp_type = 3;
    r->icmp_code = 1;
    r->tcp_flags_fwd = 0x01b;
    r->tcp_flags_rev = 0x012;
    r->vlan = 100;
    r->has_mac = 1;
    for (size_t i = 0; i < FV_PSEUDONYM_BYTES; i++) {
        r->src_mac[i] = (uint8_t)(0xa0u + i + seed);
        r->dst_mac[i] = (uint8_t)(0x50u + i + seed);
    }
    r->pkts_fwd = 10u + seed;
    r->pkts_rev = 8u + seed;
    r->bytes_fwd = 0x0102030405060708ull + seed;
    r->bytes_rev = 9000u + seed;
}

void rec_fill_dns(fv_dns_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->ts_us = (uint64_t)seed * 1000000u;
    fill_endpoint(&r->client, FV_EP_PSEUDO_IPV4, seed, "office");
    fill_endpoint(&r->server, FV_EP_IPV6, seed + 2, FV_ZONE_EXTERNAL);
    r->client_port = (uint16_t)(50000u + seed);
    r->server_port = 53;
    r->transport = 17;
    r->is_response = 1;
    r->rcode = 3;
    r->txid = (uint16_t)(0xbeefu + seed);
    r->qtype = 28;
    r->qclass = 1;
    r->answer_count = 2;
    snprintf(r->qname, sizeof r->qname, "host%u.example.org", (unsigned)seed);
}

void rec_fill_tls(fv_tls_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->ts_us = (uint64_t)seed * 1000000u;
    fill_endpoint(&r->client, FV_EP_PSEUDO_IPV6, seed, "office");
    fill_endpoint(&r->server, FV_EP_PSEUDO_IPV4, seed + 3, "servers");
    r->client_port = (uint16_t)(51000u + seed);
    r->server_port = 8443;
    r->version = 0x0303;
    snprintf(r->sni, sizeof r->sni, "sni%u.example.net", (unsigned)seed);
}

void rec_fill_http(fv_http_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->ts_us = (uint64_t)seed * 1000000u;
    fill_endpoint(&r->client, FV_EP_PSEUDO_IPV4, seed, "office");
    fill_endpoint(&r->server, FV_EP_PSEUDO_IPV4, seed + 4, "dmz");
    r->client_port = (uint16_t)(52000u + seed);
    r->server_port = 80;
    snprintf(r->method, sizeof r->method, "%s", seed % 2 ? "POST" : "GET");
    snprintf(r->host, sizeof r->host, "www%u.example.com", (unsigned)seed);
}

void rec_fill_alert(fv_alert_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->ts_us = (uint64_t)seed * 1000000u;
    r->first_us = r->ts_us / 2;
    r->last_us = r->ts_us - 1u;
    r->detector = FV_DET_BEACON;
    r->severity = FV_SEV_HIGH;
    r->score = 0.875 + seed * 1e-6;
    fill_endpoint(&r->host, FV_EP_PSEUDO_IPV4, seed, "office");
    fill_endpoint(&r->peer, FV_EP_PSEUDO_IPV6, seed + 5, "partners");
    r->peer_port = 4444;
    r->proto = 6;
    r->flow_count = 120u + seed;
    r->evidence_count = FV_EVIDENCE_MAX;
    for (unsigned i = 0; i < FV_EVIDENCE_MAX; i++)
        r->evidence[i] = 60.5 * (i + 1) + seed;
    snprintf(r->summary, sizeof r->summary, "periodic connections every %u s", 60u + seed);
}

void rec_fill_dhcp(fv_dhcp_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->ts_us = (uint64_t)seed * 1000000u;
    fill_endpoint(&r->client, FV_EP_PSEUDO_IPV4, seed, "office");
    fill_endpoint(&r->server, FV_EP_PSEUDO_IPV4, seed + 4, "servers");
    r->client_port = 68;
    r->server_port = 67;
    r->op = (uint8_t)(1 + seed % 2);
    r->msg_type = (uint8_t)(1 + seed % 8);
    r->has_client_mac = 1;
    for (size_t i = 0; i < sizeof r->client_mac; i++)
        r->client_mac[i] = (uint8_t)(seed * 3 + i);
    snprintf(r->hostname, sizeof r->hostname, "name-host%u", (unsigned)seed);
    snprintf(r->vendor_class, sizeof r->vendor_class, "MSFT 5.%u", (unsigned)seed % 10);
    snprintf(r->requested_ip, sizeof r->requested_ip, "ip4-req%u", (unsigned)seed);
}

void rec_fill_ssh(fv_ssh_record *r, uint32_t seed)
{
    memset(r, 0, sizeof *r);
    r->ts_us = (uint64_t)seed * 1000000u;
    fill_endpoint(&r->client, FV_EP_PSEUDO_IPV6, seed, "office");
    fill_endpoint(&r->server, FV_EP_PSEUDO_IPV4, seed + 4, "dmz");
    r->client_port = (uint16_t)(40000u + seed);
    r->server_port = 22;
    snprintf(r->client_banner, sizeof r->client_banner, "SSH-2.0-client_%u", (unsigned)seed);
    snprintf(r->server_banner, sizeof r->server_banner, "SSH-2.0-server_%u", (unsigned)seed);
    for (size_t i = 0; i < 32; i++) {
        r->hassh[i] = "0123456789abcdef"[(seed + i) % 16];
        r->hassh_server[i] = "0123456789abcdef"[(seed * 7 + i) % 16];
    }
}
