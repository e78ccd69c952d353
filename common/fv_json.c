/*
 * fv_json.c: the JSON form of stored records, shared by `flowveil export`
 * and the HTTP API. The field names are documented in docs/EXPORT.md and
 * are a public interface: add fields, never rename or remove one.
 */
#include "fv_common.h"

#include <stdio.h>
#include <string.h>

static const char *flow_end_name(int reason)
{
    switch (reason) {
    case FV_END_IDLE: return "idle";
    case FV_END_ACTIVE: return "active";
    case FV_END_FIN: return "fin";
    case FV_END_RST: return "rst";
    case FV_END_FLUSH: return "flush";
    case FV_END_EVICT: return "evict";
    default: return "unknown";
    }
}

/* Set KEY to a new value, tracking allocation failure in *OK. */
static void set_new(json_t *obj, const char *key, json_t *value, bool *ok)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0)
        *ok = false;
}

static void set_time(json_t *obj, const char *key, uint64_t us, bool *ok)
{
    char text[FV_TIME_TEXT_MAX];
    fv_time_format(us, text);
    set_new(obj, key, json_string(text), ok);
}

/* Write endpoint EP as NAME (address or pseudonym token) and NAME_zone. */
static void set_endpoint(json_t *obj, const char *name, const fv_endpoint *ep, bool *ok)
{
    char text[FV_ENDPOINT_TEXT_MAX];
    char zone_key[48];

    if (ep->kind == FV_EP_NONE) {
        set_new(obj, name, json_null(), ok);
    } else {
        fv_endpoint_format(ep, text);
        set_new(obj, name, json_string(text), ok);
    }
    snprintf(zone_key, sizeof zone_key, "%s_zone", name);
    set_new(obj, zone_key, json_string(ep->zone[0] != '\0' ? ep->zone : FV_ZONE_EXTERNAL), ok);
}

/* Strings in records are metadata that may hold any byte; jansson
 * requires UTF-8, so bytes outside printable ASCII become '?'. Capture
 * escapes names as \DDD already; this is a second line of defence. */
static json_t *safe_string(const char *s)
{
    char buf[FV_NAME_MAX];
    size_t i = 0;
    for (; i < sizeof buf - 1 && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (char)((c >= 0x20 && c < 0x7f) ? c : '?');
    }
    buf[i] = '\0';
    return json_string(buf);
}

static const char *flow_app_name(int app)
{
    static const char *const names[FV_APP_COUNT] = {
        [FV_APP_NONE] = "", [FV_APP_DNS] = "dns", [FV_APP_MDNS] = "mdns",
        [FV_APP_LLMNR] = "llmnr", [FV_APP_TLS] = "tls", [FV_APP_HTTP] = "http",
        [FV_APP_QUIC] = "quic", [FV_APP_SSH] = "ssh", [FV_APP_DHCP] = "dhcp",
        [FV_APP_NTP] = "ntp", [FV_APP_NBNS] = "nbns",
    };

    return app >= 0 && app < FV_APP_COUNT ? names[app] : "";
}

static const char *flow_initiator_name(int initiator)
{
    switch (initiator) {
    case FV_INIT_SYN: return "syn";
    case FV_INIT_PORT: return "port";
    default: return "first";
    }
}

static const char *flow_tunnel_name(int tunnel)
{
    switch (tunnel) {
    case FV_TUNNEL_GRE: return "gre";
    case FV_TUNNEL_ERSPAN: return "erspan";
    case FV_TUNNEL_VXLAN: return "vxlan";
    case FV_TUNNEL_GTPU: return "gtpu";
    case FV_TUNNEL_IPIP: return "ipip";
    case FV_TUNNEL_6IN4: return "6in4";
    case FV_TUNNEL_TEREDO: return "teredo";
    default: return "unknown";
    }
}

/* Flow fields from TCP state, tunnels, ICMP errors and application detection. */
static void flow_depth_fields(json_t *o, const fv_flow_record *f, bool *ok)
{
    set_new(o, "app", json_string(flow_app_name(f->app)), ok);
    set_new(o, "initiator", json_string(flow_initiator_name(f->initiator)), ok);
    set_new(o, "rtt_us", json_integer(f->rtt_us), ok);
    set_new(o, "retrans_fwd", json_integer(f->retrans_fwd), ok);
    set_new(o, "retrans_rev", json_integer(f->retrans_rev), ok);
    set_new(o, "ooo_fwd", json_integer(f->ooo_fwd), ok);
    set_new(o, "ooo_rev", json_integer(f->ooo_rev), ok);
    set_new(o, "continued", json_boolean(f->continued != 0), ok);
    set_new(o, "icmp_errors", json_integer(f->icmp_errors), ok);
    if (f->proto == 1 || f->proto == 58)
        set_new(o, "icmp_quoted", json_boolean(f->icmp_quoted != 0), ok);
    if (f->tunnel_type != FV_TUNNEL_NONE) {
        json_t *t = json_object();

        if (t == NULL) {
            *ok = false;
            return;
        }
        set_new(t, "type", json_string(flow_tunnel_name(f->tunnel_type)), ok);
        set_endpoint(t, "outer_src", &f->outer_src, ok);
        set_endpoint(t, "outer_dst", &f->outer_dst, ok);
        set_new(o, "tunnel", t, ok);
    }
}

static void flow_fields(json_t *o, const fv_flow_record *f, bool *ok)
{
    set_time(o, "first", f->first_us, ok);
    set_time(o, "last", f->last_us, ok);
    set_new(o, "first_us", json_integer((json_int_t)f->first_us), ok);
    set_new(o, "last_us", json_integer((json_int_t)f->last_us), ok);
    set_new(o, "proto", json_integer(f->proto), ok);
    set_endpoint(o, "src", &f->src, ok);
    set_new(o, "sport", json_integer(f->sport), ok);
    set_endpoint(o, "dst", &f->dst, ok);
    set_new(o, "dport", json_integer(f->dport), ok);
    set_new(o, "pkts_fwd", json_integer((json_int_t)f->pkts_fwd), ok);
    set_new(o, "pkts_rev", json_integer((json_int_t)f->pkts_rev), ok);
    set_new(o, "bytes_fwd", json_integer((json_int_t)f->bytes_fwd), ok);
    set_new(o, "bytes_rev", json_integer((json_int_t)f->bytes_rev), ok);
    set_new(o, "tcp_flags_fwd", json_integer(f->tcp_flags_fwd), ok);
    set_new(o, "tcp_flags_rev", json_integer(f->tcp_flags_rev), ok);
    set_new(o, "end", json_string(flow_end_name(f->end_reason)), ok);
    set_new(o, "vlan", json_integer(f->vlan), ok);
    if (f->proto == 1 || f->proto == 58) {
        set_new(o, "icmp_type", json_integer(f->icmp_type), ok);
        set_new(o, "icmp_code", json_integer(f->icmp_code), ok);
    }
    if (f->has_mac) {
        char token[FV_TOKEN_TEXT_MAX];
        fv_token_format("mac", f->src_mac, token);
        set_new(o, "src_mac", json_string(token), ok);
        fv_token_format("mac", f->dst_mac, token);
        set_new(o, "dst_mac", json_string(token), ok);
    }
    if (f->ntp_mode != 0 || f->ntp_version != 0) {
        set_new(o, "ntp_mode", json_integer(f->ntp_mode), ok);
        set_new(o, "ntp_version", json_integer(f->ntp_version), ok);
    }
    flow_depth_fields(o, f, ok);
}

/* TLS fields past version and sni (docs/EXPORT.md, tls). */
static void tls_fields(json_t *o, const fv_tls_record *t, bool *ok)
{
    static const char *const transports[] = {
        [FV_TLS_TCP] = "tcp", [FV_TLS_DTLS] = "dtls", [FV_TLS_QUIC] = "quic"};
    const char *transport = t->transport < sizeof transports / sizeof transports[0]
                                ? transports[t->transport]
                                : "tcp";
    json_t *alpn = json_array();
    json_t *versions = json_array();

    if (alpn == NULL || versions == NULL)
        *ok = false;
    for (unsigned i = 0; alpn != NULL && i < t->alpn_count && i < FV_TLS_ALPN_MAX; i++) {
        if (json_array_append_new(alpn, safe_string(t->alpn[i])) != 0)
            *ok = false;
    }
    for (unsigned i = 0; versions != NULL && i < t->supported_versions_count &&
                         i < FV_TLS_VERSIONS_MAX; i++) {
        if (json_array_append_new(versions, json_integer(t->supported_versions[i])) != 0)
            *ok = false;
    }
    set_new(o, "transport", json_string(transport), ok);
    set_new(o, "quic_version", json_integer(t->quic_version), ok);
    set_new(o, "alpn", alpn, ok);
    set_new(o, "supported_versions", versions, ok);
    set_new(o, "cipher_count", json_integer(t->cipher_count), ok);
    set_new(o, "extension_count", json_integer(t->extension_count), ok);
    set_new(o, "ja3", safe_string(t->ja3), ok);
    set_new(o, "ja4", safe_string(t->ja4), ok);
    set_new(o, "server_version", json_integer(t->server_version), ok);
    set_new(o, "server_cipher", json_integer(t->server_cipher), ok);
    set_new(o, "server_alpn", safe_string(t->server_alpn), ok);
    set_new(o, "ja3s", safe_string(t->ja3s), ok);
}

/* Fields common to the transaction classes (dns, tls, http). */
static void txn_fields(json_t *o, uint64_t ts_us, const fv_endpoint *client, uint16_t client_port,
                       const fv_endpoint *server, uint16_t server_port, bool *ok)
{
    set_time(o, "ts", ts_us, ok);
    set_new(o, "ts_us", json_integer((json_int_t)ts_us), ok);
    set_endpoint(o, "client", client, ok);
    set_new(o, "client_port", json_integer(client_port), ok);
    set_endpoint(o, "server", server, ok);
    set_new(o, "server_port", json_integer(server_port), ok);
}

static const char *dns_protocol_name(uint8_t protocol)
{
    switch (protocol) {
    case FV_DNS_PROTO_MDNS:
        return "mdns";
    case FV_DNS_PROTO_LLMNR:
        return "llmnr";
    case FV_DNS_PROTO_NBNS:
        return "nbns";
    default:
        return "dns";
    }
}

/* Array of the first COUNT answer addresses, as text or pseudonym tokens. */
static json_t *dns_addr_array(const fv_dns_addr *addrs, unsigned count)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (unsigned i = 0; i < count && i < FV_DNS_ADDRS_MAX; i++) {
        fv_endpoint ep;
        char text[FV_ENDPOINT_TEXT_MAX];
        memset(&ep, 0, sizeof ep);
        ep.kind = addrs[i].kind;
        memcpy(ep.addr, addrs[i].addr, sizeof ep.addr);
        ep.prefix_len = addrs[i].prefix_len;
        fv_endpoint_format(&ep, text);
        if (json_array_append_new(arr, json_string(text)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static void dns_detail_fields(json_t *o, const fv_dns_record *d, bool *ok)
{
    set_new(o, "protocol", json_string(dns_protocol_name(d->protocol)), ok);

    json_t *questions = json_array();
    for (unsigned i = 0; questions != NULL && i < d->question_count && i < FV_DNS_QUESTIONS_MAX;
         i++) {
        const fv_dns_question *q = &d->questions[i];
        json_t *item = json_object();
        if (item == NULL) {
            *ok = false;
            break;
        }
        set_new(item, "name", safe_string(q->name), ok);
        set_new(item, "qtype", json_integer(q->qtype), ok);
        set_new(item, "qclass", json_integer(q->qclass), ok);
        if (json_array_append_new(questions, item) != 0)
            *ok = false;
    }
    set_new(o, "questions", questions, ok);

    set_new(o, "answers_a", dns_addr_array(d->answers_a, d->answers_a_count), ok);
    set_new(o, "answers_aaaa", dns_addr_array(d->answers_aaaa, d->answers_aaaa_count), ok);

    json_t *cnames = json_array();
    for (unsigned i = 0; cnames != NULL && i < d->cname_count && i < FV_DNS_CNAMES_MAX; i++) {
        if (json_array_append_new(cnames, safe_string(d->cnames[i])) != 0)
            *ok = false;
    }
    set_new(o, "cnames", cnames, ok);
}

static void dns_fields(json_t *o, const fv_dns_record *d, bool *ok)
{
    txn_fields(o, d->ts_us, &d->client, d->client_port, &d->server, d->server_port, ok);
    set_new(o, "transport", json_string(d->transport == 6 ? "tcp" : "udp"), ok);
    set_new(o, "type", json_string(d->is_response ? "response" : "query"), ok);
    set_new(o, "txid", json_integer(d->txid), ok);
    set_new(o, "qname", safe_string(d->qname), ok);
    set_new(o, "qtype", json_integer(d->qtype), ok);
    set_new(o, "qclass", json_integer(d->qclass), ok);
    set_new(o, "answers", json_integer(d->answer_count), ok);
    if (d->is_response)
        set_new(o, "rcode", json_integer(d->rcode), ok);
    dns_detail_fields(o, d, ok);
}

static void dhcp_fields(json_t *o, const fv_dhcp_record *d, bool *ok)
{
    char mac[FV_TOKEN_TEXT_MAX];

    txn_fields(o, d->ts_us, &d->client, d->client_port, &d->server, d->server_port, ok);
    set_new(o, "op", json_integer(d->op), ok);
    set_new(o, "msg_type", json_integer(d->msg_type), ok);
    if (d->has_client_mac) {
        fv_token_format("mac", d->client_mac, mac);
        set_new(o, "client_mac", json_string(mac), ok);
    } else {
        set_new(o, "client_mac", json_string(""), ok);
    }
    set_new(o, "hostname", safe_string(d->hostname), ok);
    set_new(o, "vendor_class", safe_string(d->vendor_class), ok);
    set_new(o, "requested_ip", safe_string(d->requested_ip), ok);
}

static void ssh_fields(json_t *o, const fv_ssh_record *s, bool *ok)
{
    txn_fields(o, s->ts_us, &s->client, s->client_port, &s->server, s->server_port, ok);
    set_new(o, "client_banner", safe_string(s->client_banner), ok);
    set_new(o, "server_banner", safe_string(s->server_banner), ok);
    set_new(o, "hassh", safe_string(s->hassh), ok);
    set_new(o, "hassh_server", safe_string(s->hassh_server), ok);
}

/* An aggregate names its internal side only by zone; peer is "" for
 * traffic between internal hosts. A pseudonym in peer would break that
 * rule, so it is written as "" too. */
static void aggregate_fields(json_t *o, const fv_aggregate_record *a, bool *ok)
{
    char peer[FV_ENDPOINT_TEXT_MAX] = "";

    if (a->peer.kind != FV_EP_PSEUDO_IPV4 && a->peer.kind != FV_EP_PSEUDO_IPV6)
        fv_endpoint_format(&a->peer, peer);
    set_time(o, "bucket_start", a->bucket_start_us, ok);
    set_new(o, "bucket", json_string(a->bucket_s == 86400u ? "day" : "hour"), ok);
    set_new(o, "zone", safe_string(a->zone), ok);
    set_new(o, "proto", json_integer(a->proto), ok);
    set_new(o, "peer", json_string(peer), ok);
    set_new(o, "dport", json_integer(a->dport), ok);
    set_new(o, "flows", json_integer((json_int_t)a->flows), ok);
    set_new(o, "packets", json_integer((json_int_t)a->packets), ok);
    set_new(o, "bytes_in", json_integer((json_int_t)a->bytes_in), ok);
    set_new(o, "bytes_out", json_integer((json_int_t)a->bytes_out), ok);
    set_new(o, "hosts", json_integer(a->hosts), ok);
    set_new(o, "hosts_capped", json_boolean(a->hosts_capped != 0), ok);
}

static void alert_fields(json_t *o, const fv_alert_record *a, bool *ok)
{
    const char *detector = fv_detector_name(a->detector);
    const char *severity = fv_severity_name(a->severity);

    set_time(o, "ts", a->ts_us, ok);
    set_time(o, "first", a->first_us, ok);
    set_time(o, "last", a->last_us, ok);
    set_new(o, "detector", json_string(detector != NULL ? detector : "unknown"), ok);
    set_new(o, "severity", json_string(severity != NULL ? severity : "unknown"), ok);
    set_new(o, "score", json_real(a->score), ok);
    set_endpoint(o, "host", &a->host, ok);
    set_endpoint(o, "peer", &a->peer, ok);
    set_new(o, "peer_port", json_integer(a->peer_port), ok);
    set_new(o, "proto", json_integer(a->proto), ok);
    set_new(o, "flow_count", json_integer(a->flow_count), ok);
    set_new(o, "summary", safe_string(a->summary), ok);

    json_t *evidence = json_object();
    if (evidence == NULL) {
        *ok = false;
        return;
    }
    unsigned n = a->evidence_count <= FV_EVIDENCE_MAX ? a->evidence_count : FV_EVIDENCE_MAX;
    for (unsigned i = 0; i < n; i++) {
        const char *name = fv_evidence_name(a->detector, i);
        if (name != NULL)
            set_new(evidence, name, json_real(a->evidence[i]), ok);
    }
    set_new(o, "evidence", evidence, ok);
}

json_t *fv_record_to_json(const fv_record *rec)
{
    const char *cls = fv_class_name(rec->cls);
    if (cls == NULL)
        return NULL;

    json_t *o = json_object();
    if (o == NULL)
        return NULL;

    bool ok = true;
    set_new(o, "id", json_integer((json_int_t)rec->id), &ok);
    set_new(o, "class", json_string(cls), &ok);
    set_time(o, "stored", rec->stored_us, &ok);

    switch (rec->cls) {
    case FV_CLASS_FLOW:
        flow_fields(o, &rec->u.flow, &ok);
        break;
    case FV_CLASS_DNS:
        dns_fields(o, &rec->u.dns, &ok);
        break;
    case FV_CLASS_TLS:
        txn_fields(o, rec->u.tls.ts_us, &rec->u.tls.client, rec->u.tls.client_port,
                   &rec->u.tls.server, rec->u.tls.server_port, &ok);
        set_new(o, "version", json_integer(rec->u.tls.version), &ok);
        set_new(o, "sni", safe_string(rec->u.tls.sni), &ok);
        tls_fields(o, &rec->u.tls, &ok);
        break;
    case FV_CLASS_HTTP:
        txn_fields(o, rec->u.http.ts_us, &rec->u.http.client, rec->u.http.client_port,
                   &rec->u.http.server, rec->u.http.server_port, &ok);
        set_new(o, "method", safe_string(rec->u.http.method), &ok);
        set_new(o, "host", safe_string(rec->u.http.host), &ok);
        set_new(o, "uri_length", json_integer(rec->u.http.uri_length), &ok);
        set_new(o, "user_agent", safe_string(rec->u.http.user_agent), &ok);
        set_new(o, "status", json_integer(rec->u.http.status), &ok);
        break;
    case FV_CLASS_ALERT:
        alert_fields(o, &rec->u.alert, &ok);
        break;
    case FV_CLASS_DHCP:
        dhcp_fields(o, &rec->u.dhcp, &ok);
        break;
    case FV_CLASS_SSH:
        ssh_fields(o, &rec->u.ssh, &ok);
        break;
    case FV_CLASS_AGGREGATE:
        aggregate_fields(o, &rec->u.aggregate, &ok);
        break;
    case FV_CLASS_COUNT:
        ok = false;
        break;
    }

    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Add the life-cycle members of alert LIFE to O (docs/EXPORT.md). */
static void alert_life_fields(json_t *o, const fv_record *rec, const fv_alert_life *life,
                              bool *ok)
{
    char id[24];
    snprintf(id, sizeof id, "%llu", (unsigned long long)(life->id != 0 ? life->id : rec->id));
    set_new(o, "id", json_string(id), ok);
    set_new(o, "state", json_string(life->state != NULL ? life->state : "new"), ok);
    set_new(o, "count", json_integer(life->count > 0 ? life->count : 1), ok);
    uint64_t first_us = 0, last_us = 0;
    fv_alert_span(&rec->u.alert, life, &first_us, &last_us);
    set_time(o, "first_seen", first_us, ok);
    set_time(o, "last_seen", last_us, ok);
    set_time(o, "raised", life->first_seen_us != 0 ? life->first_seen_us : rec->u.alert.ts_us,
             ok);
    /* The note is validated UTF-8 written by an analyst, kept whole. */
    const char *note = life->note != NULL ? life->note : "";
    set_new(o, "note", json_stringn(note, strlen(note)), ok);
    const char *by = life->changed_by != NULL ? life->changed_by : "";
    set_new(o, "state_changed_by", by[0] != '\0' ? safe_string(by) : json_null(), ok);
    if (life->changed_us != 0)
        set_time(o, "state_changed_at", life->changed_us, ok);
    else
        set_new(o, "state_changed_at", json_null(), ok);
}

/* Evidence span of one raise, or its raise time when it has none. */
static void alert_raise_span(const fv_alert_record *a, uint64_t *first_us, uint64_t *last_us)
{
    *first_us = a->first_us != 0 ? a->first_us : a->ts_us;
    *last_us = a->last_us >= *first_us ? a->last_us : *first_us;
}

void fv_alert_span(const fv_alert_record *rec, const fv_alert_life *life, uint64_t *first_us,
                   uint64_t *last_us)
{
    uint64_t f1, l1, f2, l2;
    alert_raise_span(rec, &f1, &l1);
    const fv_alert_record *newest = life != NULL && life->newest != NULL ? life->newest : rec;
    alert_raise_span(newest, &f2, &l2);
    *first_us = f1 < f2 ? f1 : f2;
    *last_us = l1 > l2 ? l1 : l2;
}

json_t *fv_alert_to_json(const fv_record *rec, const fv_alert_life *life)
{
    if (rec == NULL || life == NULL || rec->cls != FV_CLASS_ALERT)
        return NULL;

    /* The newest raise carries the current evidence; the span covers
     * every raise from the first record on. */
    fv_record merged = *rec;
    if (life->newest != NULL) {
        merged.u.alert = *life->newest;
        if (rec->u.alert.first_us != 0 && rec->u.alert.first_us < merged.u.alert.first_us)
            merged.u.alert.first_us = rec->u.alert.first_us;
        if (rec->u.alert.last_us > merged.u.alert.last_us)
            merged.u.alert.last_us = rec->u.alert.last_us;
    }
    json_t *o = fv_record_to_json(&merged);
    if (o == NULL)
        return NULL;
    bool ok = true;
    alert_life_fields(o, rec, life, &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
