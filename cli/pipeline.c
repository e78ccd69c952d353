/*
 * pipeline.c: capture events -> policy gate -> pseudonyms -> store and
 * detectors. See pipeline.h for the contract.
 */
#include "pipeline.h"
#include "minimize.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#define EVALUATE_INTERVAL_US (60u * 1000000u)

uint64_t fv_pipeline_now_us(const fv_pipeline *p)
{
    return p->fixed_now_us != 0 ? p->fixed_now_us : fv_now_us();
}

/* Remember the first store error; later records are dropped by the
 * store itself once it is marked failed. */
static void note_rc(fv_pipeline *p, int rc)
{
    if (rc != FV_OK && p->failed_rc == FV_OK) {
        p->failed_rc = rc;
        fv_error("store write failed (%s); records from here on are not stored",
                 fv_strerror(rc));
    }
}

/*
 * Turn a raw address into a stored endpoint. Addresses in a policy zone
 * become pseudonyms under the current epoch key; addresses outside every
 * zone are kept, because the policy declares them not to be people.
 */
static void make_endpoint(fv_pipeline *p, const cap_ip *ip, fv_endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    const char *zone = pol_zone_of(p->policy, ip->family, ip->addr);

    if (zone == NULL) {
        snprintf(ep->zone, sizeof ep->zone, "%s", FV_ZONE_EXTERNAL);
        if (ip->family == 4) {
            ep->kind = FV_EP_IPV4;
            memcpy(ep->addr, ip->addr, 4);
        } else {
            ep->kind = FV_EP_IPV6;
            memcpy(ep->addr, ip->addr, 16);
        }
        return;
    }

    snprintf(ep->zone, sizeof ep->zone, "%s", zone);
    if (ip->family == 4) {
        ep->kind = FV_EP_PSEUDO_IPV4;
        anon_pseudonym(p->anon, ANON_TYPE_IPV4, ip->addr, 4, ep->addr);
    } else {
        ep->kind = FV_EP_PSEUDO_IPV6;
        anon_pseudonym(p->anon, ANON_TYPE_IPV6, ip->addr, 16, ep->addr);
    }
}

static bool sink_is_excluded(void *ctx, const cap_ip *addr)
{
    fv_pipeline *p = ctx;
    return pol_is_excluded(p->policy, addr->family, addr->addr);
}

static void store_record(fv_pipeline *p, fv_class cls, const void *rec)
{
    int rc = store_put(p->store, cls, rec, fv_pipeline_now_us(p));
    if (rc == FV_OK)
        p->records[cls]++;
    else
        note_rc(p, rc);
}

static void sink_on_flow(void *ctx, const cap_flow *f)
{
    fv_pipeline *p = ctx;
    fv_flow_record r;
    memset(&r, 0, sizeof r);

    r.first_us = f->first_us;
    r.last_us = f->last_us;
    make_endpoint(p, &f->src, &r.src);
    make_endpoint(p, &f->dst, &r.dst);
    r.sport = f->sport;
    r.dport = f->dport;
    r.proto = f->proto;
    r.end_reason = f->end_reason;
    r.icmp_type = f->icmp_type;
    r.icmp_code = f->icmp_code;
    r.tcp_flags_fwd = f->tcp_flags_fwd;
    r.tcp_flags_rev = f->tcp_flags_rev;
    r.vlan = f->vlan;
    r.pkts_fwd = f->pkts_fwd;
    r.pkts_rev = f->pkts_rev;
    r.bytes_fwd = f->bytes_fwd;
    r.bytes_rev = f->bytes_rev;
    r.app = f->app;
    r.initiator = f->initiator;
    r.continued = f->continued ? 1 : 0;
    r.icmp_quoted = f->icmp_quoted ? 1 : 0;
    r.rtt_us = f->rtt_us;
    r.retrans_fwd = f->retrans_fwd;
    r.retrans_rev = f->retrans_rev;
    r.ooo_fwd = f->ooo_fwd;
    r.ooo_rev = f->ooo_rev;
    r.icmp_errors = f->icmp_errors;
    /* Tunnel endpoints are addresses like any other: pseudonymized in a zone. */
    r.tunnel_type = f->tunnel_type;
    if (f->tunnel_type != FV_TUNNEL_NONE) {
        make_endpoint(p, &f->outer_src, &r.outer_src);
        make_endpoint(p, &f->outer_dst, &r.outer_dst);
    }

    /* MAC addresses identify devices, so they are always pseudonymized,
     * whatever zone the IP address is in. */
    if (f->has_mac) {
        r.has_mac = 1;
        anon_pseudonym(p->anon, ANON_TYPE_MAC, f->src_mac, 6, r.src_mac);
        anon_pseudonym(p->anon, ANON_TYPE_MAC, f->dst_mac, 6, r.dst_mac);
    }

    store_record(p, FV_CLASS_FLOW, &r);
    det_observe_flow(p->detect, &r);
}

/* Store answer address ADDR (FAMILY 4 or 6) like an endpoint address:
 * a pseudonym when it lies in a policy zone, else the address itself. */
static void make_dns_addr(fv_pipeline *p, uint8_t family, const uint8_t *addr, fv_dns_addr *out)
{
    uint8_t full[16] = {0};    /* pol_zone_of reads a 16-byte buffer */
    memcpy(full, addr, family == 4 ? 4 : 16);
    memset(out, 0, sizeof *out);
    const char *zone = pol_zone_of(p->policy, family, full);

    if (family == 4) {
        if (zone != NULL) {
            out->kind = FV_EP_PSEUDO_IPV4;
            anon_pseudonym(p->anon, ANON_TYPE_IPV4, addr, 4, out->addr);
        } else {
            out->kind = FV_EP_IPV4;
            memcpy(out->addr, addr, 4);
        }
    } else {
        if (zone != NULL) {
            out->kind = FV_EP_PSEUDO_IPV6;
            anon_pseudonym(p->anon, ANON_TYPE_IPV6, addr, 16, out->addr);
        } else {
            out->kind = FV_EP_IPV6;
            memcpy(out->addr, addr, 16);
        }
    }
}

/* Copy the questions and answers of D into R. Every name goes through
 * fv_minimize_name like qname, because reverse names and mDNS names in
 * any question or CNAME target can hold an internal address or a host
 * name. */
static void dns_copy_details(fv_pipeline *p, const cap_dns *d, fv_name_source source,
                             fv_dns_record *r)
{
    r->protocol = d->protocol;
    r->qdcount = d->qdcount;

    r->question_count = d->question_count <= FV_DNS_QUESTIONS_MAX ? d->question_count
                                                                   : FV_DNS_QUESTIONS_MAX;
    for (unsigned i = 0; i < r->question_count; i++) {
        fv_dns_question *q = &r->questions[i];
        q->qtype = d->questions[i].qtype;
        q->qclass = d->questions[i].qclass;
        snprintf(q->name, sizeof q->name, "%s", d->questions[i].name);
        fv_minimize_name(p->policy, p->anon, source, q->name, sizeof q->name);
    }

    r->answers_a_count = d->a_count <= FV_DNS_ADDRS_MAX ? d->a_count : FV_DNS_ADDRS_MAX;
    for (unsigned i = 0; i < r->answers_a_count; i++)
        make_dns_addr(p, 4, d->a[i], &r->answers_a[i]);
    r->answers_aaaa_count = d->aaaa_count <= FV_DNS_ADDRS_MAX ? d->aaaa_count : FV_DNS_ADDRS_MAX;
    for (unsigned i = 0; i < r->answers_aaaa_count; i++)
        make_dns_addr(p, 6, d->aaaa[i], &r->answers_aaaa[i]);

    r->cname_count = d->cname_count <= FV_DNS_CNAMES_MAX ? d->cname_count : FV_DNS_CNAMES_MAX;
    for (unsigned i = 0; i < r->cname_count; i++) {
        snprintf(r->cnames[i], sizeof r->cnames[i], "%s", d->cnames[i]);
        fv_minimize_name(p->policy, p->anon, source, r->cnames[i], sizeof r->cnames[i]);
    }
}

static void sink_on_dns(void *ctx, const cap_dns *d)
{
    fv_pipeline *p = ctx;
    fv_dns_record r;
    memset(&r, 0, sizeof r);

    r.ts_us = d->ts_us;
    make_endpoint(p, &d->client, &r.client);
    make_endpoint(p, &d->server, &r.server);
    r.client_port = d->client_port;
    r.server_port = d->server_port;
    r.transport = d->transport;
    r.is_response = d->is_response ? 1 : 0;
    r.rcode = d->rcode;
    r.txid = d->txid;
    r.qtype = d->qtype;
    r.qclass = d->qclass;
    r.answer_count = d->answer_count;
    snprintf(r.qname, sizeof r.qname, "%s", d->qname);
    /* mDNS and LLMNR names are device and person names when they come
     * from a host in a zone; from outside every zone they are kept like
     * the addresses. */
    bool local = (d->server_port == 5353 || d->server_port == 5355 || d->client_port == 5353 ||
                  d->client_port == 5355 || d->protocol != FV_DNS_PROTO_DNS) &&
                 (fv_endpoint_is_internal(&r.client) || fv_endpoint_is_internal(&r.server));
    fv_name_source source = local ? FV_NAME_LOCAL_DNS : FV_NAME_DNS;
    /* A NetBIOS name is a host name as a whole, dots and all. */
    if (local && d->protocol == FV_DNS_PROTO_NBNS)
        source = FV_NAME_HOST_NAME;
    fv_minimize_name(p->policy, p->anon, source, r.qname, sizeof r.qname);
    dns_copy_details(p, d, source, &r);
    store_record(p, FV_CLASS_DNS, &r);
}

static void sink_on_tls(void *ctx, const cap_tls *t)
{
    fv_pipeline *p = ctx;
    fv_tls_record r;
    memset(&r, 0, sizeof r);

    r.ts_us = t->ts_us;
    make_endpoint(p, &t->client, &r.client);
    make_endpoint(p, &t->server, &r.server);
    r.client_port = t->client_port;
    r.server_port = t->server_port;
    r.version = t->version;
    snprintf(r.sni, sizeof r.sni, "%s", t->sni);
    fv_minimize_name(p->policy, p->anon, FV_NAME_HOST_HEADER, r.sni, sizeof r.sni);
    /* Software fingerprints and protocol parameters, not identities: kept. */
    r.transport = t->transport;
    r.quic_version = t->quic_version;
    r.alpn_count = t->alpn_count <= FV_TLS_ALPN_MAX ? t->alpn_count : FV_TLS_ALPN_MAX;
    memcpy(r.alpn, t->alpn, sizeof r.alpn);
    r.supported_versions_count = t->supported_versions_count <= FV_TLS_VERSIONS_MAX
                                     ? t->supported_versions_count
                                     : FV_TLS_VERSIONS_MAX;
    memcpy(r.supported_versions, t->supported_versions, sizeof r.supported_versions);
    r.cipher_count = t->cipher_count;
    r.extension_count = t->extension_count;
    snprintf(r.ja3, sizeof r.ja3, "%s", t->ja3);
    snprintf(r.ja4, sizeof r.ja4, "%s", t->ja4);
    r.server_version = t->server_version;
    r.server_cipher = t->server_cipher;
    snprintf(r.server_alpn, sizeof r.server_alpn, "%s", t->server_alpn);
    snprintf(r.ja3s, sizeof r.ja3s, "%s", t->ja3s);
    store_record(p, FV_CLASS_TLS, &r);
}

static bool is_address_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           c == ':' || c == '.';
}

/*
 * Copy free text IN to OUT (OUT_LEN bytes), replacing every IPv4 or IPv6
 * literal that lies in a policy zone by its pseudonym token, the same
 * token the address fields get. A literal is a maximal run of hex digits,
 * ':' and '.' that inet_pton accepts (a trailing '.' is left out).
 */
static void scrub_address_literals(fv_pipeline *p, const char *in, char *out, size_t out_len)
{
    size_t o = 0;
    size_t i = 0;

    out[0] = '\0';
    while (in[i] != '\0' && o + 1 < out_len) {
        char literal[INET6_ADDRSTRLEN + 1];
        uint8_t addr[16] = {0};
        int family = 0;

        /* An IPv4 literal is a run of digits and dots, so a port after
         * it ("10.0.0.5:1389") does not hide it. */
        size_t run = 0;
        while ((in[i + run] >= '0' && in[i + run] <= '9') || in[i + run] == '.')
            run++;
        while (run > 0 && in[i + run - 1] == '.')
            run--;
        if (run >= 7 && run < sizeof literal) {
            memcpy(literal, in + i, run);
            literal[run] = '\0';
            if (inet_pton(AF_INET, literal, addr) == 1)
                family = 4;
        }
        if (family == 0) {
            run = 0;
            while (is_address_char(in[i + run]))
                run++;
            while (run > 0 && in[i + run - 1] == '.')
                run--;
            if (run >= 2 && run < sizeof literal) {
                memcpy(literal, in + i, run);
                literal[run] = '\0';
                if (strchr(literal, ':') != NULL && inet_pton(AF_INET6, literal, addr) == 1)
                    family = 6;
            }
        }
        if (family != 0 && pol_zone_of(p->policy, family, addr) != NULL) {
            uint8_t pseudonym[FV_PSEUDONYM_BYTES];
            char token[FV_TOKEN_TEXT_MAX];
            anon_pseudonym(p->anon, family == 4 ? ANON_TYPE_IPV4 : ANON_TYPE_IPV6, addr,
                           family == 4 ? 4 : 16, pseudonym);
            fv_token_format(family == 4 ? "ip4" : "ip6", pseudonym, token);
            size_t n = strlen(token);
            if (!(n < out_len - o))
                break;
            memcpy(out + o, token, n);
            o += n;
            i += run;
            continue;
        }
        /* Not a zone address here: copy one character and try again at
         * the next, so a literal glued to a word is still found. */
        out[o++] = in[i++];
    }
    out[o] = '\0';
}

static void sink_on_http(void *ctx, const cap_http *h)
{
    fv_pipeline *p = ctx;
    fv_http_record r;
    memset(&r, 0, sizeof r);

    r.ts_us = h->ts_us;
    make_endpoint(p, &h->client, &r.client);
    make_endpoint(p, &h->server, &r.server);
    r.client_port = h->client_port;
    r.server_port = h->server_port;
    snprintf(r.method, sizeof r.method, "%s", h->method);
    snprintf(r.host, sizeof r.host, "%s", h->host);
    fv_minimize_name(p->policy, p->anon, FV_NAME_HOST_HEADER, r.host, sizeof r.host);
    r.uri_length = h->uri_length;
    r.status = h->status;
    /* A User-Agent names software, not a person, so it is kept, except
     * for address literals inside it (exploit strings carry them). */
    scrub_address_literals(p, h->user_agent, r.user_agent, sizeof r.user_agent);
    store_record(p, FV_CLASS_HTTP, &r);
}

/* Return true if IPv4 address A (network order) is set and in a zone. */
static bool ipv4_internal(const fv_pipeline *p, const uint8_t a[4])
{
    uint8_t full[16] = {0};    /* pol_zone_of reads a 16-byte buffer */

    memcpy(full, a, 4);
    if (memcmp(full, "\0\0\0\0", 4) == 0)
        return false;
    return pol_zone_of(p->policy, 4, full) != NULL;
}

/*
 * Decide whether a DHCP message's host name belongs to a monitored host:
 * yes when any address known for the client (requested address, ciaddr,
 * yiaddr, the client side's IP) is in a zone. A client that has no
 * address yet (all of them 0.0.0.0) cannot be placed, so its name counts
 * as an identity whenever the policy has any zone at all.
 */
static bool dhcp_client_internal(const fv_pipeline *p, const cap_dhcp *d)
{
    bool known = false;
    const uint8_t *addrs[3] = {d->ciaddr, d->yiaddr, d->has_requested_ip ? d->requested_ip : NULL};

    for (unsigned i = 0; i < 3; i++) {
        if (addrs[i] == NULL || memcmp(addrs[i], "\0\0\0\0", 4) == 0)
            continue;
        known = true;
        if (ipv4_internal(p, addrs[i]))
            return true;
    }
    if (d->client.family == 4 && memcmp(d->client.addr, "\0\0\0\0", 4) != 0 &&
        memcmp(d->client.addr, "\xff\xff\xff\xff", 4) != 0) {
        known = true;
        if (ipv4_internal(p, d->client.addr))
            return true;
    }
    return !known && pol_zone_count(p->policy) > 0;
}

static void sink_on_dhcp(void *ctx, const cap_dhcp *d)
{
    fv_pipeline *p = ctx;
    fv_dhcp_record r;
    memset(&r, 0, sizeof r);

    r.ts_us = d->ts_us;
    make_endpoint(p, &d->client, &r.client);
    make_endpoint(p, &d->server, &r.server);
    r.client_port = d->client_port;
    r.server_port = d->server_port;
    r.op = d->op;
    r.msg_type = d->msg_type;
    /* The client MAC identifies a device wherever it is: always a pseudonym. */
    if (d->has_chaddr) {
        r.has_client_mac = 1;
        anon_pseudonym(p->anon, ANON_TYPE_MAC, d->chaddr, 6, r.client_mac);
    }
    snprintf(r.hostname, sizeof r.hostname, "%s", d->hostname);
    if (dhcp_client_internal(p, d))
        fv_minimize_name(p->policy, p->anon, FV_NAME_HOST_NAME, r.hostname, sizeof r.hostname);
    /* A vendor class names the client software, not a person: kept. */
    snprintf(r.vendor_class, sizeof r.vendor_class, "%s", d->vendor_class);
    if (d->has_requested_ip) {
        cap_ip req = {.family = 4};
        fv_endpoint ep;

        memcpy(req.addr, d->requested_ip, 4);
        make_endpoint(p, &req, &ep);
        fv_endpoint_format(&ep, r.requested_ip);
    }
    store_record(p, FV_CLASS_DHCP, &r);
}

static void sink_on_ssh(void *ctx, const cap_ssh *s)
{
    fv_pipeline *p = ctx;
    fv_ssh_record r;
    memset(&r, 0, sizeof r);

    r.ts_us = s->ts_us;
    make_endpoint(p, &s->client, &r.client);
    make_endpoint(p, &s->server, &r.server);
    r.client_port = s->client_port;
    r.server_port = s->server_port;
    /* Banners and HASSH name software, not people: kept. */
    snprintf(r.client_banner, sizeof r.client_banner, "%s", s->client_banner);
    snprintf(r.server_banner, sizeof r.server_banner, "%s", s->server_banner);
    snprintf(r.hassh, sizeof r.hassh, "%s", s->hassh);
    snprintf(r.hassh_server, sizeof r.hassh_server, "%s", s->hassh_server);
    store_record(p, FV_CLASS_SSH, &r);
}

static void on_alert(void *ctx, const fv_alert_record *alert)
{
    store_record(ctx, FV_CLASS_ALERT, alert);
}

int fv_pipeline_open(fv_pipeline *p, const char *policy_path, const char *db_dir,
                     uint64_t fixed_now_us, char *err, size_t err_len)
{
    int rc;
    char key_path[4096];

    memset(p, 0, sizeof *p);
    p->fixed_now_us = fixed_now_us;
    uint64_t now_us = fv_pipeline_now_us(p);

    rc = pol_load(policy_path, &p->policy, err, err_len);
    if (rc != FV_OK)
        goto out;

    rc = store_open(db_dir, 0, &p->store, err, err_len);
    if (rc != FV_OK)
        goto out;

    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        rc = store_set_retention(p->store, (fv_class)c, pol_retention_s(p->policy, (fv_class)c));
        if (rc != FV_OK) {
            snprintf(err, err_len, "%s: cannot record the retention limits: %s", db_dir,
                     fv_strerror(rc));
            goto out;
        }
    }

    if (snprintf(key_path, sizeof key_path, "%s/pseudonym.key", db_dir) >= (int)sizeof key_path) {
        snprintf(err, err_len, "database path is too long (%zu bytes)", strlen(db_dir));
        rc = FV_ERR_INVALID;
        goto out;
    }
    rc = anon_open(key_path, pol_rotation_s(p->policy), now_us / 1000000u, &p->anon, err,
                   err_len);
    if (rc != FV_OK)
        goto out;

    rc = det_engine_create(pol_detect_config(p->policy), &p->detect);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create the detectors: %s", fv_strerror(rc));
        goto out;
    }

    cap_sink sink = {
        .ctx = p,
        .is_excluded = sink_is_excluded,
        .on_flow = sink_on_flow,
        .on_dns = sink_on_dns,
        .on_tls = sink_on_tls,
        .on_http = sink_on_http,
        .on_dhcp = sink_on_dhcp,
        .on_ssh = sink_on_ssh,
    };
    rc = cap_engine_create(NULL, &sink, &p->capture);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create the capture engine: %s", fv_strerror(rc));
        goto out;
    }
    p->last_sweep_us = now_us;
    p->last_evaluate_us = now_us;

out:
    if (rc != FV_OK) {
        cap_engine_destroy(&p->capture);
        det_engine_destroy(&p->detect);
        anon_close(&p->anon);
        store_close(&p->store);
        pol_destroy(&p->policy);
    }
    return rc;
}

/*
 * Add the capture counters gathered since the last call to the store, so
 * `flowveil serve` can show parser rejections and drops. flows_active is
 * a gauge, not a count, and is not stored.
 */
static void save_capture_counters(fv_pipeline *p)
{
    size_t count = 0;
    const char *const *names = cap_stats_names(&count);
    cap_stats now;
    cap_engine_stats(p->capture, &now);

    uint64_t current[sizeof(cap_stats) / sizeof(uint64_t)];
    uint64_t saved[sizeof(cap_stats) / sizeof(uint64_t)];
    uint64_t delta[sizeof(cap_stats) / sizeof(uint64_t)];
    memcpy(current, &now, sizeof current);
    memcpy(saved, &p->counters_saved, sizeof saved);
    for (size_t i = 0; i < count; i++) {
        bool gauge = strcmp(names[i], "flows_active") == 0;
        delta[i] = (!gauge && current[i] > saved[i]) ? current[i] - saved[i] : 0;
    }

    int rc = store_capture_counters_add(p->store, names, delta, count);
    if (rc == FV_OK)
        p->counters_saved = now;
    else
        fv_warning("could not store the capture counters: %s", fv_strerror(rc));
}

int fv_pipeline_tick(fv_pipeline *p, uint64_t now_us, bool force)
{
    int rc = anon_maybe_rotate(p->anon, now_us / 1000000u);
    if (rc < 0)
        fv_error("key rotation failed (%s); the current epoch key stays in use",
                 fv_strerror(-rc));
    else if (rc == 1)
        fv_notice("pseudonymization key rotated; earlier pseudonyms can no longer be recomputed");

    if (force || now_us - p->last_evaluate_us >= EVALUATE_INTERVAL_US) {
        det_evaluate(p->detect, now_us, on_alert, p);
        p->last_evaluate_us = now_us;
        if (p->failed_rc == FV_OK)
            save_capture_counters(p);
    }

    note_rc(p, store_commit(p->store));

    uint64_t sweep_us = pol_sweep_interval_s(p->policy) * 1000000u;
    if (force || now_us - p->last_sweep_us >= sweep_us) {
        store_sweep_result result;
        rc = store_sweep(p->store, now_us, 0, 0, &result);
        if (rc != FV_OK)
            fv_error("retention sweep failed: %s", fv_strerror(rc));
        p->last_sweep_us = now_us;
    }
    return p->failed_rc;
}

int fv_pipeline_close(fv_pipeline *p)
{
    if (p->capture != NULL) {
        cap_engine_flush(p->capture);
        fv_pipeline_tick(p, fv_pipeline_now_us(p), true);
    }
    cap_engine_destroy(&p->capture);
    if (p->store != NULL)
        note_rc(p, store_commit(p->store));
    det_engine_destroy(&p->detect);
    anon_close(&p->anon);
    store_close(&p->store);
    pol_destroy(&p->policy);
    return p->failed_rc;
}

int fv_pipeline_filter(const fv_pipeline *p, const char *user_filter, char *out, size_t out_len)
{
    char exclusions[4096];
    int rc = pol_bpf_exclusions(p->policy, exclusions, sizeof exclusions);
    if (rc != FV_OK)
        return rc;

    bool has_user = user_filter != NULL && user_filter[0] != '\0';
    bool has_excl = exclusions[0] != '\0';
    int n;
    if (has_user && has_excl)
        n = snprintf(out, out_len, "(%s) and (%s)", user_filter, exclusions);
    else if (has_user)
        n = snprintf(out, out_len, "%s", user_filter);
    else
        n = snprintf(out, out_len, "%s", exclusions);
    return (n < 0 || (size_t)n >= out_len) ? FV_ERR_FULL : FV_OK;
}
