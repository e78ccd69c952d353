/*
 * store_codec.c: the binary encoding of stored records, format version 1.
 *
 * A class database stores this encoding encrypted, as a format 2 or 3
 * value (store_keys.c); values written before encryption existed are this
 * encoding in plaintext. Integers are
 * little-endian with the width given, doubles are the 8 bytes of their
 * IEEE 754 binary64 representation read as a little-endian u64, and there
 * is no padding and no alignment. Nothing in a value depends on the
 * memory layout of the C structs, so struct padding never reaches disk.
 *
 *   u8  format version, always 1
 *   u8  class (fv_class number); must match the database it is read from
 *   ... the class body, then nothing: trailing bytes are an error
 *
 * Building blocks:
 *   str       u16 length N, then N bytes. N is less than the size of the
 *             C field (room for the NUL) and the bytes contain no NUL.
 *   endpoint  u8 kind (fv_ep_kind, 0..8), then the address: no bytes for
 *             NONE, 4 for IPV4, PREFIX_IPV4 and TRUNC_IPV4, 16 for IPV6,
 *             both PSEUDO kinds, PREFIX_IPV6 and TRUNC_IPV6; for the TRUNC
 *             kinds then u8 prefix_len (at most 32 or 128); then str zone.
 *             Address bytes not stored decode as zero.
 *   dnsaddr   u8 kind (fv_ep_kind, 1..8), then the address bytes and, for
 *             TRUNC kinds, the prefix length as for an endpoint, and no
 *             zone.
 *
 * Class bodies, fields in this order:
 *   flow   u64 first_us, u64 last_us, endpoint src, endpoint dst,
 *          u16 sport, u16 dport, u8 proto, u8 end_reason, u8 icmp_type,
 *          u8 icmp_code, u16 tcp_flags_fwd, u16 tcp_flags_rev, u16 vlan,
 *          u8 has_mac (0 or 1), then if has_mac is 1: 16 bytes src_mac,
 *          16 bytes dst_mac; then u64 pkts_fwd, u64 pkts_rev,
 *          u64 bytes_fwd, u64 bytes_rev, u8 ntp_mode, u8 ntp_version,
 *          u8 app (fv_app), u8 initiator (fv_initiator), u8 continued (0 or 1),
 *          u8 icmp_quoted (0 or 1), u32 rtt_us, u32 retrans_fwd,
 *          u32 retrans_rev, u32 ooo_fwd, u32 ooo_rev, u32 icmp_errors,
 *          u8 tunnel_type (fv_tunnel), then if tunnel_type is not 0:
 *          endpoint outer_src, endpoint outer_dst
 *   dns    u64 ts_us, endpoint client, endpoint server, u16 client_port,
 *          u16 server_port, u8 transport, u8 is_response, u8 rcode,
 *          u16 txid, u16 qtype, u16 qclass, u16 answer_count, str qname,
 *          u8 protocol, u16 qdcount, u8 question_count (0..8), then per
 *          question u16 qtype, u16 qclass, str name; u8 answers_a_count
 *          (0..8), then per address: dnsaddr; u8 answers_aaaa_count (0..8)
 *          and dnsaddr each; u8 cname_count (0..4), then str each
 *   tls    u64 ts_us, endpoint client, endpoint server, u16 client_port,
 *          u16 server_port, u16 version, str sni, u8 transport
 *          (fv_tls_transport), u32 quic_version, u8 alpn_count (0..8),
 *          then str each; u8 supported_versions_count (0..16), then u16
 *          each; u16 cipher_count, u16 extension_count, str ja3, str ja4,
 *          u16 server_version, u16 server_cipher, str server_alpn, str ja3s
 *   http   u64 ts_us, endpoint client, endpoint server, u16 client_port,
 *          u16 server_port, str method, str host, u32 uri_length,
 *          u16 status, str user_agent
 *   alert  u64 ts_us, u64 first_us, u64 last_us, u8 detector, u8 severity,
 *          f64 score, endpoint host, endpoint peer, u16 peer_port, u8 proto,
 *          u32 flow_count, u8 evidence_count (0..FV_EVIDENCE_MAX), then
 *          evidence_count f64 values, then str summary
 *   dhcp   u64 ts_us, endpoint client, endpoint server, u16 client_port,
 *          u16 server_port, u8 op, u8 msg_type, u8 has_client_mac (0 or 1),
 *          then if has_client_mac is 1: 16 bytes client_mac; then
 *          str hostname, str vendor_class, str requested_ip
 *   ssh    u64 ts_us, endpoint client, endpoint server, u16 client_port,
 *          u16 server_port, str client_banner, str server_banner,
 *          str hassh, str hassh_server
 *
 * The decoder checks every length against the bytes that remain before
 * reading, so any byte string either decodes into a complete record or
 * yields FV_ERR_PARSE. Enum fields other than the endpoint kind and
 * has_mac are passed through unchecked: they do not change the layout.
 * A later format version gets a new version byte and its own decoder.
 */
#include <string.h>

#include "store.h"
#include "store_internal.h"

#define STORE_CODEC_VERSION 1u

/* ---------------------------------------------------------------------- */
/* Writer                                                                  */
/* ---------------------------------------------------------------------- */

/* Output cursor. Once a write does not fit, ok stays false and nothing
 * more is written, so callers check it once at the end. */
typedef struct codec_writer {
    uint8_t *p;         /* next byte to write */
    uint8_t *end;       /* one past the output buffer */
    bool ok;
    bool invalid;       /* the record itself cannot be encoded */
} codec_writer;

static void wr_bytes(codec_writer *w, const void *data, size_t n)
{
    if (!w->ok)
        return;
    if (!(n <= (size_t)(w->end - w->p))) {
        w->ok = false;
        return;
    }
    if (n > 0)
        memcpy(w->p, data, n);
    w->p += n;
}

/* Write V little-endian in WIDTH bytes straight into the output: the
 * encoder calls this for nearly every field, so it avoids a copy. */
static void wr_uint(codec_writer *w, uint64_t v, size_t width)
{
    if (!w->ok)
        return;
    if (!(width <= (size_t)(w->end - w->p))) {
        w->ok = false;
        return;
    }
    for (size_t i = 0; i < width; i++)
        w->p[i] = (uint8_t)(v >> (8 * i));
    w->p += width;
}

static void wr_u8(codec_writer *w, uint8_t v) { wr_uint(w, v, 1); }
static void wr_u16(codec_writer *w, uint16_t v) { wr_uint(w, v, 2); }
static void wr_u32(codec_writer *w, uint32_t v) { wr_uint(w, v, 4); }
static void wr_u64(codec_writer *w, uint64_t v) { wr_uint(w, v, 8); }

static void wr_f64(codec_writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    wr_u64(w, bits);
}

/* Write the NUL-terminated string in a C field of FIELD_SIZE bytes. A
 * field without a NUL is a caller bug and makes the record invalid. */
static void wr_str(codec_writer *w, const char *s, size_t field_size)
{
    size_t n = strnlen(s, field_size);
    if (n == field_size || n > UINT16_MAX) {
        w->invalid = true;
        w->ok = false;
        return;
    }
    wr_u16(w, (uint16_t)n);
    wr_bytes(w, s, n);
}

/* Number of address bytes stored for endpoint KIND, or -1 if unknown. */
static int endpoint_addr_len(uint8_t kind)
{
    switch (kind) {
    case FV_EP_NONE:
        return 0;
    case FV_EP_IPV4:
    case FV_EP_PREFIX_IPV4:
    case FV_EP_TRUNC_IPV4:
        return 4;
    case FV_EP_IPV6:
    case FV_EP_PSEUDO_IPV4:
    case FV_EP_PSEUDO_IPV6:
    case FV_EP_PREFIX_IPV6:
    case FV_EP_TRUNC_IPV6:
        return 16;
    default:
        return -1;
    }
}

/* Largest prefix length of a TRUNC kind, or 0 for kinds that store none. */
static unsigned endpoint_prefix_max(uint8_t kind)
{
    if (kind == FV_EP_TRUNC_IPV4)
        return 32;
    if (kind == FV_EP_TRUNC_IPV6)
        return 128;
    return 0;
}

static void wr_endpoint(codec_writer *w, const fv_endpoint *ep)
{
    int alen = endpoint_addr_len(ep->kind);
    if (alen < 0) {
        w->invalid = true;
        w->ok = false;
        return;
    }
    unsigned prefix_max = endpoint_prefix_max(ep->kind);
    if (prefix_max > 0 && ep->prefix_len > prefix_max) {
        w->invalid = true;
        w->ok = false;
        return;
    }
    wr_u8(w, ep->kind);
    wr_bytes(w, ep->addr, (size_t)alen);
    if (prefix_max > 0)
        wr_u8(w, ep->prefix_len);
    wr_str(w, ep->zone, sizeof ep->zone);
}

static void encode_flow(codec_writer *w, const fv_flow_record *r)
{
    wr_u64(w, r->first_us);
    wr_u64(w, r->last_us);
    wr_endpoint(w, &r->src);
    wr_endpoint(w, &r->dst);
    wr_u16(w, r->sport);
    wr_u16(w, r->dport);
    wr_u8(w, r->proto);
    wr_u8(w, r->end_reason);
    wr_u8(w, r->icmp_type);
    wr_u8(w, r->icmp_code);
    wr_u16(w, r->tcp_flags_fwd);
    wr_u16(w, r->tcp_flags_rev);
    wr_u16(w, r->vlan);
    wr_u8(w, r->has_mac ? 1 : 0);
    if (r->has_mac) {
        wr_bytes(w, r->src_mac, sizeof r->src_mac);
        wr_bytes(w, r->dst_mac, sizeof r->dst_mac);
    }
    wr_u64(w, r->pkts_fwd);
    wr_u64(w, r->pkts_rev);
    wr_u64(w, r->bytes_fwd);
    wr_u64(w, r->bytes_rev);
    wr_u8(w, r->ntp_mode);
    wr_u8(w, r->ntp_version);
    wr_u8(w, r->app);
    wr_u8(w, r->initiator);
    wr_u8(w, r->continued ? 1 : 0);
    wr_u8(w, r->icmp_quoted ? 1 : 0);
    wr_u32(w, r->rtt_us);
    wr_u32(w, r->retrans_fwd);
    wr_u32(w, r->retrans_rev);
    wr_u32(w, r->ooo_fwd);
    wr_u32(w, r->ooo_rev);
    wr_u32(w, r->icmp_errors);
    wr_u8(w, r->tunnel_type);
    if (r->tunnel_type != FV_TUNNEL_NONE) {
        wr_endpoint(w, &r->outer_src);
        wr_endpoint(w, &r->outer_dst);
    }
}

/* An answer address: like an endpoint without the zone. NONE is not a
 * valid answer kind. */
static void wr_dns_addr(codec_writer *w, const fv_dns_addr *a)
{
    int alen = endpoint_addr_len(a->kind);
    unsigned prefix_max = endpoint_prefix_max(a->kind);
    if (alen <= 0 || (prefix_max > 0 && a->prefix_len > prefix_max)) {
        w->invalid = true;
        w->ok = false;
        return;
    }
    wr_u8(w, a->kind);
    wr_bytes(w, a->addr, (size_t)alen);
    if (prefix_max > 0)
        wr_u8(w, a->prefix_len);
}

/* A count that exceeds its array is a caller bug and makes the record
 * invalid rather than reading past the array. */
static bool wr_count(codec_writer *w, uint8_t count, uint8_t max)
{
    if (count > max) {
        w->invalid = true;
        w->ok = false;
        return false;
    }
    wr_u8(w, count);
    return true;
}

static void encode_dns_details(codec_writer *w, const fv_dns_record *r)
{
    wr_u8(w, r->protocol);
    wr_u16(w, r->qdcount);
    if (!wr_count(w, r->question_count, FV_DNS_QUESTIONS_MAX))
        return;
    for (unsigned i = 0; i < r->question_count; i++) {
        wr_u16(w, r->questions[i].qtype);
        wr_u16(w, r->questions[i].qclass);
        wr_str(w, r->questions[i].name, sizeof r->questions[i].name);
    }
    if (!wr_count(w, r->answers_a_count, FV_DNS_ADDRS_MAX))
        return;
    for (unsigned i = 0; i < r->answers_a_count; i++)
        wr_dns_addr(w, &r->answers_a[i]);
    if (!wr_count(w, r->answers_aaaa_count, FV_DNS_ADDRS_MAX))
        return;
    for (unsigned i = 0; i < r->answers_aaaa_count; i++)
        wr_dns_addr(w, &r->answers_aaaa[i]);
    if (!wr_count(w, r->cname_count, FV_DNS_CNAMES_MAX))
        return;
    for (unsigned i = 0; i < r->cname_count; i++)
        wr_str(w, r->cnames[i], sizeof r->cnames[i]);
}

static void encode_dns(codec_writer *w, const fv_dns_record *r)
{
    wr_u64(w, r->ts_us);
    wr_endpoint(w, &r->client);
    wr_endpoint(w, &r->server);
    wr_u16(w, r->client_port);
    wr_u16(w, r->server_port);
    wr_u8(w, r->transport);
    wr_u8(w, r->is_response);
    wr_u8(w, r->rcode);
    wr_u16(w, r->txid);
    wr_u16(w, r->qtype);
    wr_u16(w, r->qclass);
    wr_u16(w, r->answer_count);
    wr_str(w, r->qname, sizeof r->qname);
    encode_dns_details(w, r);
}

static void encode_tls(codec_writer *w, const fv_tls_record *r)
{
    wr_u64(w, r->ts_us);
    wr_endpoint(w, &r->client);
    wr_endpoint(w, &r->server);
    wr_u16(w, r->client_port);
    wr_u16(w, r->server_port);
    wr_u16(w, r->version);
    wr_str(w, r->sni, sizeof r->sni);
    wr_u8(w, r->transport);
    wr_u32(w, r->quic_version);
    if (wr_count(w, r->alpn_count, FV_TLS_ALPN_MAX)) {
        for (unsigned i = 0; i < r->alpn_count; i++)
            wr_str(w, r->alpn[i], sizeof r->alpn[i]);
    }
    if (wr_count(w, r->supported_versions_count, FV_TLS_VERSIONS_MAX)) {
        for (unsigned i = 0; i < r->supported_versions_count; i++)
            wr_u16(w, r->supported_versions[i]);
    }
    wr_u16(w, r->cipher_count);
    wr_u16(w, r->extension_count);
    wr_str(w, r->ja3, sizeof r->ja3);
    wr_str(w, r->ja4, sizeof r->ja4);
    wr_u16(w, r->server_version);
    wr_u16(w, r->server_cipher);
    wr_str(w, r->server_alpn, sizeof r->server_alpn);
    wr_str(w, r->ja3s, sizeof r->ja3s);
}

static void encode_http(codec_writer *w, const fv_http_record *r)
{
    wr_u64(w, r->ts_us);
    wr_endpoint(w, &r->client);
    wr_endpoint(w, &r->server);
    wr_u16(w, r->client_port);
    wr_u16(w, r->server_port);
    wr_str(w, r->method, sizeof r->method);
    wr_str(w, r->host, sizeof r->host);
    wr_u32(w, r->uri_length);
    wr_u16(w, r->status);
    wr_str(w, r->user_agent, sizeof r->user_agent);
}

static void encode_alert(codec_writer *w, const fv_alert_record *r)
{
    if (r->evidence_count > FV_EVIDENCE_MAX) {
        w->invalid = true;
        w->ok = false;
        return;
    }
    wr_u64(w, r->ts_us);
    wr_u64(w, r->first_us);
    wr_u64(w, r->last_us);
    wr_u8(w, r->detector);
    wr_u8(w, r->severity);
    wr_f64(w, r->score);
    wr_endpoint(w, &r->host);
    wr_endpoint(w, &r->peer);
    wr_u16(w, r->peer_port);
    wr_u8(w, r->proto);
    wr_u32(w, r->flow_count);
    wr_u8(w, r->evidence_count);
    for (unsigned i = 0; i < r->evidence_count; i++)
        wr_f64(w, r->evidence[i]);
    wr_str(w, r->summary, sizeof r->summary);
}

static void encode_dhcp(codec_writer *w, const fv_dhcp_record *r)
{
    wr_u64(w, r->ts_us);
    wr_endpoint(w, &r->client);
    wr_endpoint(w, &r->server);
    wr_u16(w, r->client_port);
    wr_u16(w, r->server_port);
    wr_u8(w, r->op);
    wr_u8(w, r->msg_type);
    wr_u8(w, r->has_client_mac ? 1 : 0);
    if (r->has_client_mac)
        wr_bytes(w, r->client_mac, sizeof r->client_mac);
    wr_str(w, r->hostname, sizeof r->hostname);
    wr_str(w, r->vendor_class, sizeof r->vendor_class);
    wr_str(w, r->requested_ip, sizeof r->requested_ip);
}

static void encode_ssh(codec_writer *w, const fv_ssh_record *r)
{
    wr_u64(w, r->ts_us);
    wr_endpoint(w, &r->client);
    wr_endpoint(w, &r->server);
    wr_u16(w, r->client_port);
    wr_u16(w, r->server_port);
    wr_str(w, r->client_banner, sizeof r->client_banner);
    wr_str(w, r->server_banner, sizeof r->server_banner);
    wr_str(w, r->hassh, sizeof r->hassh);
    wr_str(w, r->hassh_server, sizeof r->hassh_server);
}

static void encode_aggregate(codec_writer *w, const fv_aggregate_record *r)
{
    wr_u64(w, r->bucket_start_us);
    wr_u32(w, r->bucket_s);
    wr_str(w, r->zone, sizeof r->zone);
    wr_u8(w, r->proto);
    wr_endpoint(w, &r->peer);
    wr_u16(w, r->dport);
    wr_u64(w, r->flows);
    wr_u64(w, r->packets);
    wr_u64(w, r->bytes_in);
    wr_u64(w, r->bytes_out);
    wr_u32(w, r->hosts);
    wr_u8(w, r->hosts_capped);
}

int store_record_encode(fv_class cls, const void *rec, uint8_t *out, size_t out_len,
                        size_t *written)
{
    if (rec == NULL || out == NULL || written == NULL)
        return FV_ERR_INVALID;

    codec_writer w = {.p = out, .end = out + out_len, .ok = true, .invalid = false};
    wr_u8(&w, STORE_CODEC_VERSION);
    wr_u8(&w, (uint8_t)cls);

    switch (cls) {
    case FV_CLASS_FLOW:
        encode_flow(&w, rec);
        break;
    case FV_CLASS_DNS:
        encode_dns(&w, rec);
        break;
    case FV_CLASS_TLS:
        encode_tls(&w, rec);
        break;
    case FV_CLASS_HTTP:
        encode_http(&w, rec);
        break;
    case FV_CLASS_ALERT:
        encode_alert(&w, rec);
        break;
    case FV_CLASS_DHCP:
        encode_dhcp(&w, rec);
        break;
    case FV_CLASS_SSH:
        encode_ssh(&w, rec);
        break;
    case FV_CLASS_AGGREGATE:
        encode_aggregate(&w, rec);
        break;
    default:
        return FV_ERR_INVALID;
    }

    if (w.invalid)
        return FV_ERR_INVALID;
    if (!w.ok)
        return FV_ERR_FULL;
    *written = (size_t)(w.p - out);
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Reader                                                                  */
/* ---------------------------------------------------------------------- */

/* Input cursor. Every read checks `n <= remaining` first; after a failed
 * read ok stays false and later reads return zeros without touching p. */
typedef struct codec_reader {
    const uint8_t *p;
    size_t remaining;
    bool ok;
} codec_reader;

static void rd_bytes(codec_reader *r, void *out, size_t n)
{
    if (!r->ok || !(n <= r->remaining)) {
        r->ok = false;
        if (n > 0)
            memset(out, 0, n);
        return;
    }
    if (n > 0)
        memcpy(out, r->p, n);
    r->p += n;
    r->remaining -= n;
}

static uint64_t rd_uint(codec_reader *r, size_t width)
{
    uint8_t b[8];
    rd_bytes(r, b, width);
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static uint8_t rd_u8(codec_reader *r) { return (uint8_t)rd_uint(r, 1); }
static uint16_t rd_u16(codec_reader *r) { return (uint16_t)rd_uint(r, 2); }
static uint32_t rd_u32(codec_reader *r) { return (uint32_t)rd_uint(r, 4); }
static uint64_t rd_u64(codec_reader *r) { return rd_uint(r, 8); }

static double rd_f64(codec_reader *r)
{
    uint64_t bits = rd_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Read a str into a C field of FIELD_SIZE bytes, always NUL-terminating
 * it. Reject lengths that do not leave room for the NUL, and NUL bytes
 * inside the string (they would make the decoded field shorter than the
 * stored one, so the record would not round-trip). */
static void rd_str(codec_reader *r, char *field, size_t field_size)
{
    field[0] = '\0';
    uint16_t n = rd_u16(r);
    if (!r->ok)
        return;
    if (!((size_t)n < field_size) || !((size_t)n <= r->remaining)) {
        r->ok = false;
        return;
    }
    if (memchr(r->p, '\0', n) != NULL) {
        r->ok = false;
        return;
    }
    memcpy(field, r->p, n);
    field[n] = '\0';
    r->p += n;
    r->remaining -= n;
}

static void rd_endpoint(codec_reader *r, fv_endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = rd_u8(r);
    int alen = endpoint_addr_len(ep->kind);
    if (alen < 0) {
        r->ok = false;
        return;
    }
    rd_bytes(r, ep->addr, (size_t)alen);
    unsigned prefix_max = endpoint_prefix_max(ep->kind);
    if (prefix_max > 0) {
        ep->prefix_len = rd_u8(r);
        if (ep->prefix_len > prefix_max)
            r->ok = false;
    }
    rd_str(r, ep->zone, sizeof ep->zone);
}

static void decode_flow(codec_reader *r, fv_flow_record *f)
{
    f->first_us = rd_u64(r);
    f->last_us = rd_u64(r);
    rd_endpoint(r, &f->src);
    rd_endpoint(r, &f->dst);
    f->sport = rd_u16(r);
    f->dport = rd_u16(r);
    f->proto = rd_u8(r);
    f->end_reason = rd_u8(r);
    f->icmp_type = rd_u8(r);
    f->icmp_code = rd_u8(r);
    f->tcp_flags_fwd = rd_u16(r);
    f->tcp_flags_rev = rd_u16(r);
    f->vlan = rd_u16(r);
    f->has_mac = rd_u8(r);
    if (f->has_mac > 1) {
        r->ok = false;
        return;
    }
    if (f->has_mac) {
        rd_bytes(r, f->src_mac, sizeof f->src_mac);
        rd_bytes(r, f->dst_mac, sizeof f->dst_mac);
    }
    f->pkts_fwd = rd_u64(r);
    f->pkts_rev = rd_u64(r);
    f->bytes_fwd = rd_u64(r);
    f->bytes_rev = rd_u64(r);
    f->ntp_mode = rd_u8(r);
    f->ntp_version = rd_u8(r);
    f->app = rd_u8(r);
    f->initiator = rd_u8(r);
    f->continued = rd_u8(r);
    f->icmp_quoted = rd_u8(r);
    f->rtt_us = rd_u32(r);
    f->retrans_fwd = rd_u32(r);
    f->retrans_rev = rd_u32(r);
    f->ooo_fwd = rd_u32(r);
    f->ooo_rev = rd_u32(r);
    f->icmp_errors = rd_u32(r);
    f->tunnel_type = rd_u8(r);
    if (f->app >= FV_APP_COUNT || f->initiator > FV_INIT_PORT || f->continued > 1 ||
        f->icmp_quoted > 1 || f->tunnel_type >= FV_TUNNEL_COUNT) {
        r->ok = false;
        return;
    }
    if (f->tunnel_type != FV_TUNNEL_NONE) {
        rd_endpoint(r, &f->outer_src);
        rd_endpoint(r, &f->outer_dst);
    }
}

static void rd_dns_addr(codec_reader *r, fv_dns_addr *a)
{
    memset(a, 0, sizeof *a);
    a->kind = rd_u8(r);
    int alen = endpoint_addr_len(a->kind);
    if (alen <= 0) {
        r->ok = false;
        return;
    }
    rd_bytes(r, a->addr, (size_t)alen);
    unsigned prefix_max = endpoint_prefix_max(a->kind);
    if (prefix_max > 0) {
        a->prefix_len = rd_u8(r);
        if (a->prefix_len > prefix_max)
            r->ok = false;
    }
}

/* Read a count and reject one above MAX, so arrays are never overrun. */
static uint8_t rd_count(codec_reader *r, uint8_t max)
{
    uint8_t n = rd_u8(r);
    if (n > max) {
        r->ok = false;
        return 0;
    }
    return n;
}

static void decode_dns_details(codec_reader *r, fv_dns_record *d)
{
    d->protocol = rd_u8(r);
    d->qdcount = rd_u16(r);
    d->question_count = rd_count(r, FV_DNS_QUESTIONS_MAX);
    for (unsigned i = 0; i < d->question_count && r->ok; i++) {
        d->questions[i].qtype = rd_u16(r);
        d->questions[i].qclass = rd_u16(r);
        rd_str(r, d->questions[i].name, sizeof d->questions[i].name);
    }
    d->answers_a_count = rd_count(r, FV_DNS_ADDRS_MAX);
    for (unsigned i = 0; i < d->answers_a_count && r->ok; i++)
        rd_dns_addr(r, &d->answers_a[i]);
    d->answers_aaaa_count = rd_count(r, FV_DNS_ADDRS_MAX);
    for (unsigned i = 0; i < d->answers_aaaa_count && r->ok; i++)
        rd_dns_addr(r, &d->answers_aaaa[i]);
    d->cname_count = rd_count(r, FV_DNS_CNAMES_MAX);
    for (unsigned i = 0; i < d->cname_count && r->ok; i++)
        rd_str(r, d->cnames[i], sizeof d->cnames[i]);
}

static void decode_dns(codec_reader *r, fv_dns_record *d)
{
    d->ts_us = rd_u64(r);
    rd_endpoint(r, &d->client);
    rd_endpoint(r, &d->server);
    d->client_port = rd_u16(r);
    d->server_port = rd_u16(r);
    d->transport = rd_u8(r);
    d->is_response = rd_u8(r);
    d->rcode = rd_u8(r);
    d->txid = rd_u16(r);
    d->qtype = rd_u16(r);
    d->qclass = rd_u16(r);
    d->answer_count = rd_u16(r);
    rd_str(r, d->qname, sizeof d->qname);
    decode_dns_details(r, d);
}

static void decode_tls(codec_reader *r, fv_tls_record *t)
{
    t->ts_us = rd_u64(r);
    rd_endpoint(r, &t->client);
    rd_endpoint(r, &t->server);
    t->client_port = rd_u16(r);
    t->server_port = rd_u16(r);
    t->version = rd_u16(r);
    rd_str(r, t->sni, sizeof t->sni);
    t->transport = rd_u8(r);
    t->quic_version = rd_u32(r);
    t->alpn_count = rd_count(r, FV_TLS_ALPN_MAX);
    for (unsigned i = 0; i < t->alpn_count && r->ok; i++)
        rd_str(r, t->alpn[i], sizeof t->alpn[i]);
    t->supported_versions_count = rd_count(r, FV_TLS_VERSIONS_MAX);
    for (unsigned i = 0; i < t->supported_versions_count && r->ok; i++)
        t->supported_versions[i] = rd_u16(r);
    t->cipher_count = rd_u16(r);
    t->extension_count = rd_u16(r);
    rd_str(r, t->ja3, sizeof t->ja3);
    rd_str(r, t->ja4, sizeof t->ja4);
    t->server_version = rd_u16(r);
    t->server_cipher = rd_u16(r);
    rd_str(r, t->server_alpn, sizeof t->server_alpn);
    rd_str(r, t->ja3s, sizeof t->ja3s);
}

static void decode_http(codec_reader *r, fv_http_record *h)
{
    h->ts_us = rd_u64(r);
    rd_endpoint(r, &h->client);
    rd_endpoint(r, &h->server);
    h->client_port = rd_u16(r);
    h->server_port = rd_u16(r);
    rd_str(r, h->method, sizeof h->method);
    rd_str(r, h->host, sizeof h->host);
    h->uri_length = rd_u32(r);
    h->status = rd_u16(r);
    rd_str(r, h->user_agent, sizeof h->user_agent);
}

static void decode_alert(codec_reader *r, fv_alert_record *a)
{
    a->ts_us = rd_u64(r);
    a->first_us = rd_u64(r);
    a->last_us = rd_u64(r);
    a->detector = rd_u8(r);
    a->severity = rd_u8(r);
    a->score = rd_f64(r);
    rd_endpoint(r, &a->host);
    rd_endpoint(r, &a->peer);
    a->peer_port = rd_u16(r);
    a->proto = rd_u8(r);
    a->flow_count = rd_u32(r);
    a->evidence_count = rd_u8(r);
    if (a->evidence_count > FV_EVIDENCE_MAX) {
        r->ok = false;
        return;
    }
    for (unsigned i = 0; i < a->evidence_count; i++)
        a->evidence[i] = rd_f64(r);
    rd_str(r, a->summary, sizeof a->summary);
}

static void decode_dhcp(codec_reader *r, fv_dhcp_record *d)
{
    d->ts_us = rd_u64(r);
    rd_endpoint(r, &d->client);
    rd_endpoint(r, &d->server);
    d->client_port = rd_u16(r);
    d->server_port = rd_u16(r);
    d->op = rd_u8(r);
    d->msg_type = rd_u8(r);
    d->has_client_mac = rd_u8(r);
    if (d->has_client_mac > 1) {
        r->ok = false;
        return;
    }
    if (d->has_client_mac)
        rd_bytes(r, d->client_mac, sizeof d->client_mac);
    rd_str(r, d->hostname, sizeof d->hostname);
    rd_str(r, d->vendor_class, sizeof d->vendor_class);
    rd_str(r, d->requested_ip, sizeof d->requested_ip);
}

static void decode_ssh(codec_reader *r, fv_ssh_record *s)
{
    s->ts_us = rd_u64(r);
    rd_endpoint(r, &s->client);
    rd_endpoint(r, &s->server);
    s->client_port = rd_u16(r);
    s->server_port = rd_u16(r);
    rd_str(r, s->client_banner, sizeof s->client_banner);
    rd_str(r, s->server_banner, sizeof s->server_banner);
    rd_str(r, s->hassh, sizeof s->hassh);
    rd_str(r, s->hassh_server, sizeof s->hassh_server);
}

static void decode_aggregate(codec_reader *r, fv_aggregate_record *a)
{
    a->bucket_start_us = rd_u64(r);
    a->bucket_s = rd_u32(r);
    rd_str(r, a->zone, sizeof a->zone);
    a->proto = rd_u8(r);
    rd_endpoint(r, &a->peer);
    a->dport = rd_u16(r);
    a->flows = rd_u64(r);
    a->packets = rd_u64(r);
    a->bytes_in = rd_u64(r);
    a->bytes_out = rd_u64(r);
    a->hosts = rd_u32(r);
    a->hosts_capped = rd_u8(r);
}

int store_record_decode(fv_class cls, const uint8_t *data, size_t len, fv_record *out)
{
    if (out == NULL || (data == NULL && len > 0))
        return FV_ERR_INVALID;
    if ((unsigned)cls >= FV_CLASS_COUNT)
        return FV_ERR_INVALID;

    /* Start from zero so address bytes and MACs not stored read as 0 and
     * padding never carries stale memory to a caller. */
    memset(out, 0, sizeof *out);
    out->cls = cls;

    codec_reader r = {.p = data, .remaining = len, .ok = true};
    uint8_t version = rd_u8(&r);
    uint8_t stored_cls = rd_u8(&r);
    if (!r.ok || version != STORE_CODEC_VERSION || stored_cls != (uint8_t)cls)
        return FV_ERR_PARSE;

    switch (cls) {
    case FV_CLASS_FLOW:
        decode_flow(&r, &out->u.flow);
        break;
    case FV_CLASS_DNS:
        decode_dns(&r, &out->u.dns);
        break;
    case FV_CLASS_TLS:
        decode_tls(&r, &out->u.tls);
        break;
    case FV_CLASS_HTTP:
        decode_http(&r, &out->u.http);
        break;
    case FV_CLASS_ALERT:
        decode_alert(&r, &out->u.alert);
        break;
    case FV_CLASS_DHCP:
        decode_dhcp(&r, &out->u.dhcp);
        break;
    case FV_CLASS_SSH:
        decode_ssh(&r, &out->u.ssh);
        break;
    case FV_CLASS_AGGREGATE:
        decode_aggregate(&r, &out->u.aggregate);
        break;
    default:
        return FV_ERR_INVALID;
    }

    if (!r.ok || r.remaining != 0)
        return FV_ERR_PARSE;
    return FV_OK;
}
