/*
 * pipeline.c: capture events -> policy gate -> pseudonyms -> store and
 * detectors. See pipeline.h for the contract.
 */
#include "pipeline.h"
#include "minimize.h"

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
                  d->client_port == 5355) &&
                 (fv_endpoint_is_internal(&r.client) || fv_endpoint_is_internal(&r.server));
    fv_minimize_name(p->policy, p->anon, local ? FV_NAME_LOCAL_DNS : FV_NAME_DNS, r.qname,
                     sizeof r.qname);
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
    store_record(p, FV_CLASS_TLS, &r);
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
    store_record(p, FV_CLASS_HTTP, &r);
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
