/*
 * scengen.c: the scenario model (who talks to whom, when) and its ground
 * truth. demo_wire.c writes the frames.
 */
#include "scengen.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define TCP_RST 0x04
#define DAY_US (86400ull * US_PER_S)
#define HOUR_US (3600ull * US_PER_S)
#define MIN_US (60ull * US_PER_S)
#define BIG_SEGMENT 60000u /* bytes of one cut data segment (a TSO-sized frame) */

/* ---------------------------------------------------------------------- */
/* Network plan                                                            */
/* ---------------------------------------------------------------------- */

#define SITE_COUNT 40
#define SITES_PER_HOST 12

static const char *const site_words[SITE_COUNT] = {
    "www",     "news",    "mail",     "docs",   "calendar", "chat",    "wiki",   "shop",
    "maps",    "video",   "forum",    "status", "weather",  "search",  "social", "music",
    "photos",  "drive",   "meet",     "crm",    "tickets",  "hr",      "travel", "bank",
    "learn",   "code",    "registry", "ci",     "monitor",  "payroll", "stock",  "sports",
    "recipes", "science", "jobs",     "radio",  "books",    "cloud",   "print",  "translate",
};

static const char *const site_domains[3] = {"example.com", "example.net", "example.org"};

/* Background destinations: names and addresses are fixed by the index. */
typedef struct sg_site {
    char name[64];
    demo_site site;
    bool quic; /* also reached over QUIC (UDP 443) */
} sg_site;

static const uint8_t fileserver_ip[4] = {10, 2, 0, 20};
static const uint8_t finance_db_ip[4] = {10, 3, 0, 10};
static const uint8_t ntp_ip[4] = {192, 0, 2, 123};
static const uint8_t update_ip[4] = {192, 0, 2, 200};
static const char update_name[] = "updates.example-vendor.net";

/* Per host: its working day and its own set of sites. */
typedef struct sg_worker {
    double start_h, end_h; /* local working hours, UTC in this scenario */
    double visits_per_h;
    bool weekend_worker;   /* works a short session on Saturdays */
    size_t sites[SITES_PER_HOST];
    double update_phase_s; /* offset of the hourly update check */
    bool planted;          /* reserved for one planted incident */
} sg_worker;

typedef struct sg_state {
    demo_trace *g;
    const sg_config *cfg;
    sg_site sites[SITE_COUNT];
    sg_worker *workers;
    uint64_t plant_day_us; /* midnight of the first day after the learning period */
    json_t *truth;         /* array of event objects */
    char *indicators_plain;
    char *indicators_csv;
} sg_state;

static void init_sites(sg_state *s)
{
    for (size_t i = 0; i < SITE_COUNT; i++) {
        sg_site *site = &s->sites[i];
        snprintf(site->name, sizeof site->name, "%s.%s", site_words[i], site_domains[i % 3]);
        site->site.name = site->name;
        if (i < 20) {
            const uint8_t ip[4] = {198, 18, (uint8_t)(1 + i / 8), (uint8_t)(10 + i * 7)};
            memcpy(site->site.ip, ip, 4);
        } else {
            const uint8_t ip[4] = {192, 0, 2, (uint8_t)(i * 3)};
            memcpy(site->site.ip, ip, 4);
        }
        site->site.kind = (i % 9 == 4) ? SITE_HTTP : SITE_HTTPS;
        site->site.has_aaaa = i % 2 == 0;
        site->quic = i % 4 == 1;
    }
}

static void init_hosts(sg_state *s)
{
    demo_trace *g = s->g;
    demo_rng *r = &g->rng;
    for (size_t i = 0; i < g->host_count; i++) {
        demo_host *h = &g->hosts[i];
        const uint8_t ip[4] = {10, 1, (uint8_t)(i / 200), (uint8_t)(10 + i % 200)};
        memcpy(h->ip, ip, 4);
        const uint8_t mac[6] = {0x02, 0x1a, 0xc4, 0x20, (uint8_t)(i >> 8), (uint8_t)i};
        memcpy(h->mac, mac, 6);
        h->ip_id = (uint16_t)rng_next(r);
        h->next_port = (uint16_t)rng_range(r, 32768, 50000);

        sg_worker *w = &s->workers[i];
        w->start_h = rng_uniform(r, 7.5, 9.5);
        w->end_h = w->start_h + rng_uniform(r, 8.0, 9.5);
        w->visits_per_h = rng_uniform(r, 8.0, 20.0);
        w->weekend_worker = i % 11 == 3;
        w->update_phase_s = rng_uniform(r, 0.0, 3600.0);
        /* Three sites everybody uses, the rest the host's own choice. */
        w->sites[0] = 0;
        w->sites[1] = 1;
        w->sites[2] = 2;
        for (size_t k = 3; k < SITES_PER_HOST; k++)
            w->sites[k] = (size_t)rng_range(r, 3, SITE_COUNT - 1);
        for (size_t k = 0; k < SITES_PER_HOST; k++)
            h->site_weight[k] = 1.0 / (double)(k + 1); /* Zipf-like preference */
    }
}

/* ---------------------------------------------------------------------- */
/* Compact conversations                                                   */
/* ---------------------------------------------------------------------- */

/* Send BYTES from one side as segments of at most BIG_SEGMENT bytes,
 * stored cut, at RATE bytes per second; the receiver acknowledges the
 * last one. */
static void bulk(demo_conv *c, bool from_client, uint64_t bytes, double rate, uint64_t *t)
{
    uint64_t left = bytes;
    while (left > 0 && !c->g->failed) {
        size_t n = left < BIG_SEGMENT ? (size_t)left : BIG_SEGMENT;
        left -= n;
        emit_tcp(c, from_client, *t, TCP_ACK | (left == 0 ? TCP_PSH : 0), NULL, n, true);
        *t += (uint64_t)((double)n / rate * 1e6) + 1;
    }
    if (bytes > 0) {
        *t += from_client ? c->rtt_us : 60;
        emit_tcp(c, !from_client, *t, TCP_ACK, NULL, 0, false);
    }
}

/*
 * One TCP connection from H to IP:PORT at TS: handshake, a ClientHello
 * for SNI (NULL for none), UP bytes from the client and DOWN bytes back,
 * then the client closes after LINGER_US. Return the last frame's time.
 */
static uint64_t tcp_flow(sg_state *s, demo_host *h, const uint8_t ip[4], uint16_t port,
                         uint64_t ts, const char *sni, uint64_t up, uint64_t down, double rate,
                         uint64_t linger_us)
{
    demo_trace *g = s->g;
    demo_conv c;
    uint64_t t = ts;
    uint32_t rtt = ip[0] == 10 ? (uint32_t)rng_range(&g->rng, 200, 900)
                               : (uint32_t)rng_range(&g->rng, 8000, 90000);
    conv_open(&c, g, h, ip, port, 6, DEMO_ROLE_BACKGROUND, rtt);
    tcp_handshake(&c, &t);
    if (sni != NULL) {
        t += rng_range(&g->rng, 100, 900);
        size_t n = build_client_hello(&g->rng, sni, g->scratch, sizeof g->scratch);
        if (n > 0)
            emit_tcp(&c, true, t, TCP_PSH | TCP_ACK, g->scratch, n, false);
        t += rtt;
    }
    t += rng_range(&g->rng, 200, 3000);
    bulk(&c, true, up, rate, &t);
    t += rtt;
    bulk(&c, false, down, rate, &t);
    t += linger_us + rng_range(&g->rng, 1000, 200000);
    tcp_close(&c, true, &t);
    return t;
}

/* A connection attempt that fails: a SYN answered by RST (REFUSED) or by
 * nothing (a filtered port or an absent host). */
static void tcp_probe(sg_state *s, demo_host *h, const uint8_t ip[4], uint16_t port, uint64_t ts,
                      bool refused)
{
    demo_trace *g = s->g;
    demo_conv c;
    conv_open(&c, g, h, ip, port, 6, DEMO_ROLE_BACKGROUND, (uint32_t)rng_range(&g->rng, 300, 30000));
    emit_tcp(&c, true, ts, TCP_SYN, NULL, 0, false);
    if (refused) {
        /* The RST acknowledges the SYN, whose sequence number emit_tcp advanced. */
        emit_tcp(&c, false, ts + c.rtt_us, TCP_RST | TCP_ACK, NULL, 0, false);
    }
}

/* A UDP exchange: the client sends UP_LEN stored bytes, the server
 * answers DOWN_LEN, REPLIES times. PAYLOAD of each datagram is random. */
static void udp_flow(sg_state *s, demo_host *h, const uint8_t ip[4], uint16_t port, uint64_t ts,
                     const uint8_t *first, size_t up_len, size_t down_len, unsigned replies)
{
    demo_trace *g = s->g;
    demo_conv c;
    uint8_t buf[1400];
    conv_open(&c, g, h, ip, port, 17, DEMO_ROLE_BACKGROUND, (uint32_t)rng_range(&g->rng, 8000, 60000));
    if (up_len > sizeof buf)
        up_len = sizeof buf;
    if (down_len > sizeof buf)
        down_len = sizeof buf;
    rng_fill(&g->rng, buf, up_len);
    if (first != NULL)
        memcpy(buf, first, up_len < 48 ? up_len : 48);
    emit_udp(&c, true, ts, buf, up_len);
    uint64_t t = ts + c.rtt_us;
    for (unsigned i = 0; i < replies; i++) {
        rng_fill(&g->rng, buf, down_len);
        if (first != NULL && down_len >= 48) {
            memcpy(buf, first, 48);
            buf[0] = (uint8_t)((buf[0] & 0xf8) | 4); /* NTP server mode */
        }
        emit_udp(&c, false, t, buf, down_len);
        t += rng_range(&g->rng, 100, 2000);
    }
}

/* An NTP client request (version 4, mode 3) and the server's answer. */
static void ntp_poll(sg_state *s, demo_host *h, uint64_t ts)
{
    uint8_t req[48];
    memset(req, 0, sizeof req);
    req[0] = (4 << 3) | 3;
    udp_flow(s, h, ntp_ip, 123, ts, req, sizeof req, sizeof req, 1);
}

/* A QUIC connection: a padded Initial from the client (long header,
 * version 1) and two server datagrams. The payload is random, so it does
 * not decrypt; it stands for the volume. */
static void quic_flow(sg_state *s, demo_host *h, const uint8_t ip[4], uint64_t ts)
{
    uint8_t hdr[48];
    rng_fill(&s->g->rng, hdr, sizeof hdr);
    hdr[0] = 0xc3;
    hdr[1] = 0;
    hdr[2] = 0;
    hdr[3] = 0;
    hdr[4] = 1;
    hdr[5] = 8; /* destination connection id length */
    demo_trace *g = s->g;
    demo_conv c;
    uint8_t buf[1200];
    conv_open(&c, g, h, ip, 443, 17, DEMO_ROLE_BACKGROUND, (uint32_t)rng_range(&g->rng, 8000, 60000));
    rng_fill(&g->rng, buf, sizeof buf);
    memcpy(buf, hdr, sizeof hdr);
    emit_udp(&c, true, ts, buf, sizeof buf);
    uint64_t t = ts + c.rtt_us;
    buf[0] = 0xc1;
    emit_udp(&c, false, t, buf, sizeof buf);
    emit_udp(&c, false, t + 300, buf, 900);
    buf[0] = 0x41; /* short header */
    emit_udp(&c, true, t + 2000, buf, 60);
}

/* ---------------------------------------------------------------------- */
/* Background                                                              */
/* ---------------------------------------------------------------------- */

static size_t pick_site(sg_state *s, size_t host)
{
    demo_host *h = &s->g->hosts[host];
    double total = 0.0;
    for (size_t k = 0; k < SITES_PER_HOST; k++)
        total += h->site_weight[k];
    double x = rng_unit(&s->g->rng) * total;
    for (size_t k = 0; k < SITES_PER_HOST; k++) {
        if (x < h->site_weight[k])
            return s->workers[host].sites[k];
        x -= h->site_weight[k];
    }
    return s->workers[host].sites[SITES_PER_HOST - 1];
}

/* One page visit of HOST to site SITE at T: DNS, then TLS, HTTP or QUIC. */
static void visit(sg_state *s, size_t host, size_t site, uint64_t t)
{
    demo_trace *g = s->g;
    demo_rng *r = &g->rng;
    demo_host *h = &g->hosts[host];
    sg_site *st = &s->sites[site];
    uint64_t ready = dns_exchange(g, h, t, st->name, DNS_TYPE_A, &st->site, site);
    if (st->site.has_aaaa && rng_unit(r) < 0.5)
        (void)dns_exchange(g, h, t + rng_range(r, 50, 400), st->name, DNS_TYPE_AAAA, &st->site,
                           site);
    ready += rng_range(r, 200, 3000);
    uint64_t up = (uint64_t)rng_lognormal(r, 900.0, 0.6);
    uint64_t down = (uint64_t)rng_lognormal(r, 25000.0, 1.2);
    if (down > 4000000)
        down = 4000000;
    /* HTTP bodies are stored in full, so they stay small here. */
    if (st->quic && rng_unit(r) < 0.5)
        quic_flow(s, h, st->site.ip, ready);
    else if (st->site.kind == SITE_HTTP)
        (void)http_session(g, h, &st->site, "/", (size_t)(down < 3000 ? down : 3000), false,
                           DEMO_ROLE_BACKGROUND, ready);
    else
        (void)tcp_flow(s, h, st->site.ip, 443, ready, st->name, up, down, 2.0e6, 0);
}

/* The file server: an SMB session with some data each way. */
static void fileserver_session(sg_state *s, size_t host, uint64_t t)
{
    demo_rng *r = &s->g->rng;
    (void)tcp_flow(s, &s->g->hosts[host], fileserver_ip, 445, t, NULL,
                   (uint64_t)rng_lognormal(r, 40000.0, 1.0), (uint64_t)rng_lognormal(r, 300000.0, 1.0),
                   20.0e6, rng_range(r, 1, 20) * US_PER_S);
}

/* The hourly update check: a short TLS connection to the vendor. It is
 * periodic on purpose and allow-listed in the scenario policy. */
static void update_check(sg_state *s, size_t host, uint64_t t)
{
    demo_rng *r = &s->g->rng;
    demo_site site = {update_name, {0}, SITE_HTTPS, false};
    memcpy(site.ip, update_ip, 4);
    demo_host *h = &s->g->hosts[host];
    uint64_t ready = dns_exchange(s->g, h, t, update_name, DNS_TYPE_A, &site, 0);
    (void)tcp_flow(s, h, update_ip, 443, ready + 500, update_name, rng_range(r, 500, 700),
                   rng_range(r, 1500, 2500), 2.0e6, 0);
}

/* HOST's activity from FROM_US to TO_US: visits at VISITS_PER_H with a
 * dip at lunch, a file server session now and then, NTP every 1024 s
 * and the update check every hour while the machine is on. */
static void work_session(sg_state *s, size_t host, uint64_t day_us, uint64_t from_us,
                         uint64_t to_us, double visits_per_h)
{
    demo_rng *r = &s->g->rng;
    sg_worker *w = &s->workers[host];
    uint64_t t = from_us + (uint64_t)(rng_uniform(r, 5.0, 120.0) * 1e6);
    fileserver_session(s, host, t + 30 * US_PER_S);
    while (t < to_us && !s->g->failed) {
        double hour = (double)(t - day_us) / (double)HOUR_US;
        bool lunch = hour >= 12.0 && hour < 13.0;
        if (!lunch || rng_unit(r) < 0.25)
            visit(s, host, pick_site(s, host), t);
        if (rng_unit(r) < 0.02)
            fileserver_session(s, host, t + 5 * US_PER_S);
        t += (uint64_t)(-log(1.0 - rng_unit(r)) * 3600.0 / visits_per_h * 1e6) + 1;
    }
    for (uint64_t n = from_us + 20 * US_PER_S; n < to_us; n += 1024 * US_PER_S)
        ntp_poll(s, &s->g->hosts[host], n + rng_range(r, 0, 2 * US_PER_S));
    uint64_t first = day_us + (uint64_t)(w->update_phase_s * 1e6);
    for (uint64_t u = first; u < to_us; u += HOUR_US) {
        if (u >= from_us)
            update_check(s, host, u + rng_range(r, 0, 20 * US_PER_S));
    }
}

static void background(sg_state *s)
{
    demo_trace *g = s->g;
    for (uint32_t d = 0; d < s->cfg->days; d++) {
        uint64_t day_us = g->start_us + d * DAY_US;
        unsigned weekday = d % 7; /* 0 = Monday: the scenario starts on a Monday */
        for (size_t i = 0; i < g->host_count; i++) {
            sg_worker *w = &s->workers[i];
            if (weekday < 5) {
                double start_h = w->start_h + rng_uniform(&g->rng, -0.25, 0.25);
                double end_h = w->end_h + rng_uniform(&g->rng, -0.25, 0.25);
                work_session(s, i, day_us, day_us + (uint64_t)(start_h * 3600e6),
                             day_us + (uint64_t)(end_h * 3600e6), w->visits_per_h);
            } else if (weekday == 5 && w->weekend_worker) {
                work_session(s, i, day_us, day_us + 10 * HOUR_US, day_us + 12 * HOUR_US,
                             w->visits_per_h / 2.0);
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Ground truth                                                            */
/* ---------------------------------------------------------------------- */

static void ip_text(const uint8_t ip[4], char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
}

static void time_text(uint64_t us, char out[32])
{
    time_t secs = (time_t)(us / US_PER_S);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

/*
 * Add one planted event. PEER NULL means the alert may name any peer (or
 * none); PORT 0 any port. INCIDENTAL lists detectors whose alerts on this
 * event are expected side effects (neither true nor false positives),
 * comma-separated. PARAMS (may be NULL) is stolen.
 */
static json_t *add_event(sg_state *s, const char *detector, size_t host, const uint8_t *peer,
                         uint16_t port, uint8_t proto, uint64_t first_us, uint64_t last_us,
                         const char *incidental, json_t *params)
{
    char text[32];
    json_t *e = json_object();
    json_object_set_new(e, "id", json_integer((json_int_t)json_array_size(s->truth) + 1));
    json_object_set_new(e, "detector", json_string(detector));
    ip_text(s->g->hosts[host].ip, text);
    json_object_set_new(e, "host", json_string(text));
    json_object_set_new(e, "zone", json_string("office"));
    if (peer != NULL) {
        ip_text(peer, text);
        json_object_set_new(e, "peer", json_string(text));
        json_object_set_new(e, "peer_internal", json_boolean(peer[0] == 10));
    }
    if (port != 0)
        json_object_set_new(e, "port", json_integer(port));
    if (proto != 0)
        json_object_set_new(e, "proto", json_integer(proto));
    json_object_set_new(e, "first_us", json_integer((json_int_t)first_us));
    json_object_set_new(e, "last_us", json_integer((json_int_t)last_us));
    time_text(first_us, text);
    json_object_set_new(e, "first", json_string(text));
    time_text(last_us, text);
    json_object_set_new(e, "last", json_string(text));
    json_t *inc = json_array();
    char list[128];
    snprintf(list, sizeof list, "%s", incidental != NULL ? incidental : "");
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save))
        json_array_append_new(inc, json_string(p));
    json_object_set_new(e, "incidental", inc);
    json_object_set_new(e, "params", params != NULL ? params : json_object());
    json_array_append_new(s->truth, e);
    s->workers[host].planted = true;
    return e;
}

/* Take the next host not yet used by a planted incident, walking from a
 * seeded offset so the choice depends on the seed. */
static size_t take_host(sg_state *s, size_t *cursor)
{
    size_t n = s->g->host_count;
    for (size_t k = 0; k < n; k++) {
        size_t i = (*cursor + k * 7) % n;
        if (!s->workers[i].planted && !s->workers[i].weekend_worker) {
            *cursor = i + 1;
            s->workers[i].planted = true;
            return i;
        }
    }
    /* Unreachable: sg_generate rejects fewer than SG_MIN_HOSTS hosts, so n > 0
     * and some host is free. */
    return *cursor % n;  // NOLINT(clang-analyzer-core.DivideZero)
}

/* ---------------------------------------------------------------------- */
/* Planted incidents                                                       */
/* ---------------------------------------------------------------------- */

/* A static six-entry table: its padding costs nothing, and the field
 * order matches the positional initialisers below. */
typedef struct beacon_spec {  // NOLINT(clang-analyzer-optin.performance.Padding)
    double period_s, jitter, drop;
    uint8_t peer[4];
    const char *sni;
    uint16_t port;
} beacon_spec;

static const beacon_spec beacon_specs[] = {
    {30.0, 0.0, 0.0, {203, 0, 113, 11}, "cdn-sync.example-c2.net", 443},
    {120.0, 0.10, 0.05, {203, 0, 113, 12}, "telemetry.example-c2.net", 443},
    {300.0, 0.20, 0.10, {203, 0, 113, 13}, "api.example-c2.org", 8443},
    {900.0, 0.30, 0.0, {203, 0, 113, 14}, "img.example-c2.com", 443},
    {1800.0, 0.15, 0.20, {203, 0, 113, 15}, "feed.example-c2.net", 443},
    {3600.0, 0.05, 0.10, {203, 0, 113, 16}, "check.example-c2.org", 443},
};

static void plant_beacons(sg_state *s, size_t *cursor)
{
    demo_trace *g = s->g;
    demo_rng *r = &g->rng;
    for (size_t b = 0; b < sizeof beacon_specs / sizeof beacon_specs[0]; b++) {
        const beacon_spec *spec = &beacon_specs[b];
        size_t host = take_host(s, cursor);
        demo_host *h = &g->hosts[host];
        /* Short periods run 8 hours, long ones most of a day, so every
         * beacon has at least 16 beats. */
        double span_s = spec->period_s < 900.0 ? 8 * 3600.0 : 22 * 3600.0;
        uint64_t start = s->plant_day_us + HOUR_US / 2 + b * 7 * MIN_US;
        double t_s = 0.0;
        uint64_t first = 0, last = 0;
        unsigned sent = 0, dropped = 0;
        demo_site site = {spec->sni, {0}, SITE_HTTPS, false};
        memcpy(site.ip, spec->peer, 4);
        while (t_s < span_s && !g->failed) {
            uint64_t t = start + (uint64_t)(t_s * 1e6);
            if (spec->drop > 0.0 && rng_unit(r) < spec->drop) {
                dropped++;
            } else {
                uint64_t ready = t;
                if (sent % 10 == 0) /* the resolver's answer is cached for a while */
                    ready = dns_exchange(g, h, t, spec->sni, DNS_TYPE_A, &site, 0) + 300;
                uint64_t end = tcp_flow(s, h, spec->peer, spec->port, ready, spec->sni,
                                        rng_range(r, 300, 420), rng_range(r, 150, 260), 2.0e6, 0);
                if (first == 0)
                    first = t;
                last = end;
                sent++;
            }
            t_s += spec->period_s * (1.0 + rng_uniform(r, -spec->jitter, spec->jitter));
        }
        json_t *p = json_pack("{s:f,s:f,s:f,s:i,s:i}", "period_s", spec->period_s, "jitter",
                              spec->jitter, "drop_rate", spec->drop, "beats_sent", (int)sent,
                              "beats_dropped", (int)dropped);
        add_event(s, "beacon", host, spec->peer, spec->port, 6, first, last,
                  "rare_destination,off_hours,baseline", p);
    }
}

static void plant_exfil(sg_state *s, size_t *cursor)
{
    static const uint8_t peers[2][4] = {{198, 51, 100, 21}, {198, 51, 100, 22}};
    static const char *const names[2] = {"upload.example-files.net", "share.example-drop.com"};
    static const uint64_t sizes[2] = {150000000u, 400000000u};
    for (size_t k = 0; k < 2; k++) {
        size_t host = take_host(s, cursor);
        uint64_t t = s->plant_day_us + (uint64_t)((11.0 + 3.0 * (double)k) * 3600e6);
        uint64_t end = tcp_flow(s, &s->g->hosts[host], peers[k], 443, t, names[k], sizes[k],
                                4000, 6.0e6, 0);
        json_t *p = json_pack("{s:I,s:f}", "bytes_out", (json_int_t)sizes[k], "rate_bytes_per_s",
                              6.0e6);
        add_event(s, "exfil", host, peers[k], 443, 6, t, end,
                  "rare_destination,baseline,long_connection", p);
    }
}

/* A connection held open for hours: a keep-alive every two minutes keeps
 * it under the capture's idle timeout (300 s), so flowveil writes it as
 * one flow split by the active timeout. */
static void plant_long_connections(sg_state *s, size_t *cursor)
{
    static const uint8_t peers[2][4] = {{198, 51, 100, 31}, {203, 0, 113, 32}};
    static const uint16_t ports[2] = {22, 443};
    static const double hours[2] = {6.0, 9.0};
    demo_trace *g = s->g;
    for (size_t k = 0; k < 2; k++) {
        size_t host = take_host(s, cursor);
        demo_host *h = &g->hosts[host];
        demo_conv c;
        uint64_t t0 = s->plant_day_us + (uint64_t)((1.0 + 2.0 * (double)k) * 3600e6);
        uint64_t t = t0;
        conv_open(&c, g, h, peers[k], ports[k], 6, DEMO_ROLE_BACKGROUND, 30000);
        tcp_handshake(&c, &t);
        uint64_t end = t0 + (uint64_t)(hours[k] * 3600e6);
        uint8_t ka[48];
        while (t < end && !g->failed) {
            t += 120 * US_PER_S + rng_range(&g->rng, 0, 5 * US_PER_S);
            rng_fill(&g->rng, ka, sizeof ka);
            emit_tcp(&c, true, t, TCP_PSH | TCP_ACK, ka, sizeof ka, false);
            emit_tcp(&c, false, t + c.rtt_us, TCP_PSH | TCP_ACK, ka, sizeof ka, false);
            emit_tcp(&c, true, t + c.rtt_us + 50, TCP_ACK, NULL, 0, false);
        }
        tcp_close(&c, true, &t);
        json_t *p = json_pack("{s:f,s:i}", "duration_h", hours[k], "keepalive_s", 120);
        add_event(s, "long_connection", host, peers[k], ports[k], 6, t0, t,
                  "rare_destination,off_hours,segmentation,beacon", p);
    }
}

static void plant_scans(sg_state *s, size_t *cursor)
{
    demo_trace *g = s->g;
    demo_rng *r = &g->rng;

    /* Fast horizontal: 250 external addresses on port 23 in about a
     * minute; a few answer, most are filtered. */
    size_t host = take_host(s, cursor);
    uint64_t t0 = s->plant_day_us + 10 * HOUR_US + 5 * MIN_US;
    uint64_t t = t0;
    for (unsigned i = 1; i <= 250; i++) {
        const uint8_t ip[4] = {198, 18, 200, (uint8_t)i};
        double u = rng_unit(r);
        if (u < 0.03)
            (void)tcp_flow(s, &g->hosts[host], ip, 23, t, NULL, 0, 0, 1e6, 0);
        else
            tcp_probe(s, &g->hosts[host], ip, 23, t, u < 0.2);
        t += rng_range(r, 100000, 400000);
    }
    add_event(s, "scan", host, NULL, 23, 6, t0, t, "rare_destination,baseline",
              json_pack("{s:s,s:i,s:f}", "kind", "horizontal", "targets", 250, "rate_per_s", 4.0));

    /* Slow horizontal: 60 office addresses on port 445, one every 90 s.
     * Existing hosts refuse, absent addresses do not answer. */
    host = take_host(s, cursor);
    t0 = s->plant_day_us + 13 * HOUR_US;
    t = t0;
    for (unsigned i = 0; i < 60; i++) {
        const uint8_t ip[4] = {10, 1, 5, (uint8_t)(20 + i * 3)};
        tcp_probe(s, &g->hosts[host], ip, 445, t, i % 4 == 0);
        t += 90 * US_PER_S + rng_range(r, 0, 20 * US_PER_S);
    }
    add_event(s, "scan", host, NULL, 445, 6, t0, t, "segmentation,baseline",
              json_pack("{s:s,s:i,s:f}", "kind", "horizontal_slow", "targets", 60, "interval_s",
                        90.0));

    /* Vertical: ports 1 to 1024 of one external address in a minute; the
     * host refuses all but 22 and 443. */
    host = take_host(s, cursor);
    static const uint8_t target[4] = {203, 0, 113, 40};
    t0 = s->plant_day_us + 15 * HOUR_US + 20 * MIN_US;
    t = t0;
    for (unsigned port = 1; port <= 1024; port++) {
        if (port == 22 || port == 443)
            (void)tcp_flow(s, &g->hosts[host], target, (uint16_t)port, t, NULL, 0, 0, 1e6, 0);
        else
            tcp_probe(s, &g->hosts[host], target, (uint16_t)port, t, true);
        t += rng_range(r, 20000, 80000);
    }
    add_event(s, "scan", host, target, 0, 6, t0, t, "rare_destination,baseline",
              json_pack("{s:s,s:i}", "kind", "vertical", "ports", 1024));
}

/* Lowercase base32 text of N random characters. */
static void random_label(demo_rng *r, char *out, size_t n, const char *alphabet)
{
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[rng_range(r, 0, k - 1)];
    out[n] = '\0';
}

static void plant_dns(sg_state *s, size_t *cursor)
{
    demo_trace *g = s->g;
    demo_rng *r = &g->rng;
    static const char base32[] = "abcdefghijklmnopqrstuvwxyz234567";
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    char name[256], a[64], b[64];

    /* Tunnel: 400 TXT queries with 50 + 24 random base32 characters under
     * one domain in about 15 minutes. */
    size_t host = take_host(s, cursor);
    demo_host *h = &g->hosts[host];
    demo_site tunnel = {"t.example-tunnel.net", {203, 0, 113, 53}, SITE_HTTPS, false};
    uint64_t t0 = s->plant_day_us + 9 * HOUR_US + 40 * MIN_US;
    uint64_t t = t0;
    for (unsigned i = 0; i < 400; i++) {
        random_label(r, a, 50, base32);
        random_label(r, b, 24, base32);
        snprintf(name, sizeof name, "%s.%s.t.example-tunnel.net", a, b);
        t = dns_exchange(g, h, t, name, DNS_TYPE_TXT, &tunnel, 0) + rng_range(r, 500000, 3500000);
    }
    add_event(s, "dns_tunnel", host, NULL, 0, 0, t0, t, "baseline",
              json_pack("{s:s,s:i,s:i,s:s}", "domain", "example-tunnel.net", "queries", 400,
                        "label_chars", 74, "qtype", "TXT"));

    /* DGA: 120 lookups of random names in 4 minutes; all NXDOMAIN but
     * two, and the host then connects to the one that resolved. */
    host = take_host(s, cursor);
    h = &g->hosts[host];
    static const char *const tlds[] = {"com", "net", "org", "info", "biz"};
    static const uint8_t dga_peer[4] = {203, 0, 113, 77};
    t0 = s->plant_day_us + 14 * HOUR_US + 30 * MIN_US;
    t = t0;
    for (unsigned i = 0; i < 120; i++) {
        random_label(r, a, (size_t)rng_range(r, 10, 18), letters);
        snprintf(name, sizeof name, "%s.%s", a, tlds[i % 5]);
        demo_site hit = {name, {0}, SITE_HTTPS, false};
        memcpy(hit.ip, dga_peer, 4);
        bool resolves = i == 80 || i == 110;
        uint64_t done = dns_exchange(g, h, t, name, DNS_TYPE_A, resolves ? &hit : NULL, 0);
        if (resolves)
            (void)tcp_flow(s, h, dga_peer, 443, done + 500, name, 600, 3000, 2.0e6, 0);
        t += rng_range(r, 1000000, 3000000);
    }
    add_event(s, "dga", host, NULL, 0, 0, t0, t, "rare_destination,baseline",
              json_pack("{s:i,s:i}", "lookups", 120, "nxdomain", 118));
}

static void plant_segmentation(sg_state *s, size_t *cursor)
{
    /* Office to the finance database: denied by the zone rules. */
    size_t host = take_host(s, cursor);
    uint64_t t0 = s->plant_day_us + 10 * HOUR_US + 30 * MIN_US;
    uint64_t t = t0;
    for (unsigned i = 0; i < 3; i++)
        t = tcp_flow(s, &s->g->hosts[host], finance_db_ip, 1433, t + 20 * US_PER_S, NULL, 2000,
                     50000, 10.0e6, 2 * US_PER_S);
    add_event(s, "segmentation", host, finance_db_ip, 1433, 6, t0, t, "scan",
              json_pack("{s:s,s:s,s:i}", "from_zone", "office", "to_zone", "finance",
                        "connections", 3));

    /* Office to the file server on SSH: only SMB is allowed there. */
    host = take_host(s, cursor);
    t0 = s->plant_day_us + 16 * HOUR_US + 10 * MIN_US;
    t = tcp_flow(s, &s->g->hosts[host], fileserver_ip, 22, t0, NULL, 3000, 4000, 1.0e6,
                 30 * US_PER_S);
    add_event(s, "segmentation", host, fileserver_ip, 22, 6, t0, t, "scan",
              json_pack("{s:s,s:s,s:i}", "from_zone", "office", "to_zone", "servers",
                        "connections", 1));
}

static void plant_indicators(sg_state *s, size_t *cursor)
{
    demo_trace *g = s->g;

    /* A listed address. */
    static const uint8_t listed_ip[4] = {203, 0, 113, 66};
    size_t host = take_host(s, cursor);
    uint64_t t0 = s->plant_day_us + 9 * HOUR_US + 15 * MIN_US;
    uint64_t t = tcp_flow(s, &g->hosts[host], listed_ip, 443, t0, "static.example-cdn.net", 700,
                          9000, 2.0e6, 0);
    add_event(s, "indicator", host, listed_ip, 443, 6, t0, t, "rare_destination",
              json_pack("{s:s,s:s}", "type", "ip", "file", "indicators.txt"));

    /* An address inside a listed network. */
    static const uint8_t in_cidr[4] = {198, 51, 100, 133};
    host = take_host(s, cursor);
    t0 = s->plant_day_us + 11 * HOUR_US + 45 * MIN_US;
    t = tcp_flow(s, &g->hosts[host], in_cidr, 8443, t0, NULL, 1200, 800, 2.0e6, 0);
    add_event(s, "indicator", host, in_cidr, 8443, 6, t0, t, "rare_destination",
              json_pack("{s:s,s:s,s:s}", "type", "cidr", "network", "198.51.100.128/28", "file",
                        "indicators.txt"));

    /* A listed domain (suffix match), looked up and then contacted. */
    static const uint8_t dom_ip[4] = {203, 0, 113, 99};
    host = take_host(s, cursor);
    demo_site site = {"login.example-phish.org", {0}, SITE_HTTPS, false};
    memcpy(site.ip, dom_ip, 4);
    t0 = s->plant_day_us + 15 * HOUR_US + 5 * MIN_US;
    uint64_t ready = dns_exchange(g, &g->hosts[host], t0, site.name, DNS_TYPE_A, &site, 0);
    t = tcp_flow(s, &g->hosts[host], dom_ip, 443, ready + 400, site.name, 900, 15000, 2.0e6, 0);
    add_event(s, "indicator", host, NULL, 0, 0, t0, t, "rare_destination",
              json_pack("{s:s,s:s,s:s}", "type", "domain", "domain", "example-phish.org", "file",
                        "indicators.csv"));

    /* Decoys that nothing contacts keep the lists realistic. */
    s->indicators_plain = strdup("# scenario indicators: one address or network a line\n"
                                 "203.0.113.66\n"
                                 "198.51.100.128/28\n"
                                 "192.0.2.250\n"
                                 "2001:db8:bad::/48\n");
    s->indicators_csv = strdup("indicator,type,note\n"
                               "example-phish.org,domain,credential phishing\n"
                               "bad.example-malware.com,domain,decoy never contacted\n"
                               "e7d705a3286e19ea42f587b344ee6865,ja3,decoy never seen\n");
}

/* Browsing by a day worker late in the evening. It happens at the end of
 * the first day after the learning period, because the learning period
 * runs from each host's first flow, in the morning of the first day. */
static void plant_off_hours(sg_state *s, size_t *cursor)
{
    size_t host = take_host(s, cursor);
    uint64_t t0 = s->plant_day_us + 22 * HOUR_US + 40 * MIN_US;
    uint64_t t = t0;
    for (unsigned i = 0; i < 25; i++) {
        visit(s, host, pick_site(s, host), t);
        t += rng_range(&s->g->rng, 60 * US_PER_S, 150 * US_PER_S);
    }
    add_event(s, "off_hours", host, NULL, 0, 0, t0, t, "baseline",
              json_pack("{s:s,s:i}", "local_time", "22:40", "visits", 25));
}

/* A destination that nobody in the organization has contacted before,
 * reached three times within ten minutes. */
static void plant_rare(sg_state *s, size_t *cursor)
{
    static const uint8_t peers[2][4] = {{198, 51, 100, 50}, {198, 51, 100, 51}};
    static const char *const names[2] = {"portal.example-rare.net", "files.example-unseen.org"};
    for (size_t k = 0; k < 2; k++) {
        size_t host = take_host(s, cursor);
        demo_host *h = &s->g->hosts[host];
        demo_site site = {names[k], {0}, SITE_HTTPS, false};
        memcpy(site.ip, peers[k], 4);
        uint64_t t0 = s->plant_day_us + (uint64_t)((10.0 + 4.0 * (double)k) * 3600e6);
        uint64_t t = t0;
        for (unsigned i = 0; i < 3; i++) {
            uint64_t ready = dns_exchange(s->g, h, t, names[k], DNS_TYPE_A, &site, 0);
            t = tcp_flow(s, h, peers[k], 443, ready + 300, names[k], 800, 30000, 2.0e6, 0) +
                150 * US_PER_S;
        }
        add_event(s, "rare_destination", host, peers[k], 443, 6, t0, t, NULL,
                  json_pack("{s:s,s:i}", "name", names[k], "connections", 3));
    }
}

/* An hour in which a host sends about 30 times its usual volume, spread
 * over many ordinary-sized flows to its usual sites (so no single flow is
 * an exfiltration). */
static void plant_baseline(sg_state *s, size_t *cursor)
{
    size_t host = take_host(s, cursor);
    demo_rng *r = &s->g->rng;
    uint64_t t0 = s->plant_day_us + 10 * HOUR_US + 15 * MIN_US;
    uint64_t t = t0, end = t0;
    for (unsigned i = 0; i < 50; i++) {
        size_t site = pick_site(s, host);
        const sg_site *st = &s->sites[site];
        end = tcp_flow(s, &s->g->hosts[host], st->site.ip, 443, t, st->name,
                       rng_range(r, 1000000, 1600000), rng_range(r, 5000, 20000), 4.0e6, 0);
        t += rng_range(r, 40 * US_PER_S, 80 * US_PER_S);
    }
    add_event(s, "baseline", host, NULL, 0, 0, t0, end, NULL,
              json_pack("{s:i,s:I}", "flows", 50, "bytes_out_approx", (json_int_t)65000000));
}

/* ---------------------------------------------------------------------- */
/* Policy                                                                  */
/* ---------------------------------------------------------------------- */

static char *policy_text(const sg_state *s)
{
    uint32_t learning_days = s->cfg->days / 2;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    fprintf(f,
            "# flowveil policy for the detection-quality scenario (flowveil-scengen).\n"
            "# Office hosts, servers and the finance zone are pseudonymized as usual.\n"
            "version: 1\n"
            "zones:\n"
            "  - name: office\n"
            "    networks: [10.1.0.0/16]\n"
            "  - name: servers\n"
            "    networks: [10.2.0.0/16]\n"
            "  - name: finance\n"
            "    networks: [10.3.0.0/16]\n"
            "pseudonymization:\n"
            "  # Longer than the scenario, so the scorer can recompute the\n"
            "  # pseudonyms of the planted hosts from the one epoch key.\n"
            "  rotation: %ud\n"
            "retention:\n"
            "  flows: 90d\n"
            "  dns: 90d\n"
            "  tls: 90d\n"
            "  http: 90d\n"
            "  alerts: 90d\n"
            "detect:\n"
            "  learning_period: %ud\n"
            "  beacon:\n"
            "    allow:\n"
            "      - {domain: example-vendor.net, port: 443}\n"
            "      - {address: 192.0.2.200/32, port: 443}\n"
            "      - {address: 192.0.2.123/32, port: 123}\n"
            "  rare_destination:\n"
            "    enabled: true\n"
            "  segmentation:\n"
            "    default: allow\n"
            "    rules:\n"
            "      - {from: office, to: servers, proto: udp, ports: 53, action: allow}\n"
            "      - {from: office, to: servers, proto: tcp, ports: 445, action: allow}\n"
            "      - {from: office, to: servers, action: deny}\n"
            "      - {from: office, to: finance, action: deny}\n"
            "  indicators:\n"
            "    files:\n"
            "      - {path: indicators.txt, format: list}\n"
            "      - {path: indicators.csv, format: csv}\n",
            s->cfg->days + 30u, learning_days);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------- */
/* Entry points                                                            */
/* ---------------------------------------------------------------------- */

static char *truth_text(json_t *truth)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    size_t i;
    json_t *e;
    json_array_foreach(truth, i, e) {
        char *line = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line == NULL)
            break;
        fprintf(f, "%s\n", line);
        free(line);
    }
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The parameters, for the scripts that ingest and score the scenario.
 * ingest_now_s is an hour after the last day: ingesting with that fixed
 * --now keeps every record in one key epoch. */
static char *summary_text(const sg_state *s)
{
    const sg_config *c = s->cfg;
    uint64_t end_s = c->start_s + (uint64_t)c->days * 86400u;
    uint64_t ingest_now_s = end_s + 3600u;
    json_t *obj = json_pack("{s:I,s:I,s:I,s:i,s:i,s:i,s:I,s:i}", "seed", (json_int_t)c->seed,
                            "start_s", (json_int_t)c->start_s, "end_s", (json_int_t)end_s,
                            "days", (int)c->days, "hosts", (int)c->hosts, "learning_days",
                            (int)(c->days / 2), "ingest_now_s", (json_int_t)ingest_now_s,
                            "events", (int)json_array_size(s->truth));
    if (obj == NULL)
        return NULL;
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return text;
}

int sg_generate(const sg_config *config, demo_trace **trace, sg_files *files)
{
    if (config == NULL || trace == NULL || files == NULL || config->days < 2 ||
        config->days > SG_MAX_DAYS || config->hosts < SG_MIN_HOSTS ||
        config->hosts > SG_MAX_HOSTS || config->start_s > UINT32_MAX - SG_MAX_DAYS * 86400ull) {
        errno = EINVAL;
        return -1;
    }
    *trace = NULL;
    memset(files, 0, sizeof *files);

    int rc = -1;
    sg_state s;
    memset(&s, 0, sizeof s);
    s.cfg = config;
    uint64_t start_us = config->start_s * US_PER_S;
    s.g = demo_trace_new(config->seed, start_us, start_us + config->days * DAY_US, config->hosts);
    s.workers = calloc(config->hosts, sizeof *s.workers);
    s.truth = json_array();
    if (s.g == NULL || s.workers == NULL || s.truth == NULL)
        goto out;
    s.plant_day_us = start_us + (config->days / 2) * DAY_US;

    init_sites(&s);
    init_hosts(&s);

    /* Planted hosts are chosen first, so background and incidents draw
     * from the generator in a fixed order. */
    size_t cursor = (size_t)rng_range(&s.g->rng, 0, config->hosts - 1);
    plant_beacons(&s, &cursor);
    plant_exfil(&s, &cursor);
    plant_long_connections(&s, &cursor);
    plant_scans(&s, &cursor);
    plant_dns(&s, &cursor);
    plant_segmentation(&s, &cursor);
    plant_indicators(&s, &cursor);
    plant_off_hours(&s, &cursor);
    plant_rare(&s, &cursor);
    plant_baseline(&s, &cursor);
    background(&s);

    if (demo_trace_finish(s.g) != 0)
        goto out;
    files->truth = truth_text(s.truth);
    files->policy = policy_text(&s);
    files->indicators_plain = s.indicators_plain;
    files->indicators_csv = s.indicators_csv;
    s.indicators_plain = NULL;
    s.indicators_csv = NULL;
    files->events = json_array_size(s.truth);
    files->summary = summary_text(&s);
    if (files->truth == NULL || files->policy == NULL || files->indicators_plain == NULL ||
        files->indicators_csv == NULL || files->summary == NULL) {
        sg_files_free(files);
        goto out;
    }
    *trace = s.g;
    s.g = NULL;
    rc = 0;
out:
    if (rc != 0)
        errno = ENOMEM;
    demo_trace_destroy(&s.g);
    free(s.workers);
    free(s.indicators_plain);
    free(s.indicators_csv);
    json_decref(s.truth);
    return rc;
}

void sg_files_free(sg_files *files)
{
    if (files == NULL)
        return;
    free(files->truth);
    free(files->policy);
    free(files->indicators_plain);
    free(files->indicators_csv);
    free(files->summary);
    memset(files, 0, sizeof *files);
}
