/*
 * demogen.c: the demo scenario (which hosts browse what, and the two
 * planted incidents). demo_wire.c writes the frames.
 */
#include "demogen.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Network plan                                                            */
/* ---------------------------------------------------------------------- */

/* Sites the office hosts browse. The last two only serve the downloads. */
static const demo_site demo_sites[] = {
    {"www.example.com", {93, 184, 216, 34}, SITE_HTTPS, true},
    {"news.example.org", {192, 0, 2, 10}, SITE_HTTPS, false},
    {"mail.example.com", {198, 51, 100, 25}, SITE_HTTPS, true},
    {"docs.example.org", {198, 51, 100, 40}, SITE_HTTPS, false},
    {"api.example.net", {203, 0, 113, 15}, SITE_HTTPS, true},
    {"chat.example.com", {203, 0, 113, 30}, SITE_HTTPS, false},
    {"wiki.example.org", {93, 184, 215, 14}, SITE_HTTPS, true},
    {"shop.example.com", {23, 215, 0, 136}, SITE_HTTPS, false},
    {"calendar.example.com", {198, 51, 100, 31}, SITE_HTTPS, true},
    {"maps.example.org", {203, 0, 113, 44}, SITE_HTTPS, false},
    {"video.example.com", {192, 0, 2, 35}, SITE_HTTPS, true},
    {"forum.example.net", {198, 51, 100, 88}, SITE_HTTPS, false},
    {"status.example.org", {203, 0, 113, 120}, SITE_HTTPS, false},
    {"weather.example.com", {198, 51, 100, 60}, SITE_HTTP, false},
    {"cdn.example.net", {192, 0, 2, 20}, SITE_HTTPS, true},
    {"downloads.example.org", {192, 0, 2, 80}, SITE_HTTP, false},
    {"media.example.net", {203, 0, 113, 90}, SITE_HTTPS, true},
};
#define SITE_COUNT (sizeof demo_sites / sizeof demo_sites[0])
#define SITE_BROWSED 14 /* sites 0..13 are visited directly */
#define SITE_CDN 14     /* fetched alongside some visits */
#define SITE_DOWNLOADS 15
#define SITE_MEDIA 16

/* Names that the resolver answers with NXDOMAIN. */
static const char *const demo_bad_names[] = {
    "wpad.example.test",
    "old-share.example.test",
    "printer-2f.example.test",
    "www.exampel.invalid",
};
#define BAD_NAME_COUNT (sizeof demo_bad_names / sizeof demo_bad_names[0])

static const uint8_t demo_beacon_host_ip[4] = {10, 1, 0, 23};
static const uint8_t demo_beacon_peer_ip[4] = {203, 0, 113, 50};
static const char demo_beacon_sni[] = "update-check.example.net";
static const uint8_t demo_exfil_host_ip[4] = {10, 1, 0, 42};
static const uint8_t demo_exfil_peer_ip[4] = {198, 51, 100, 77};
static const char demo_exfil_sni[] = "files.example.net";

#define HOST_COUNT 7
static const uint8_t demo_host_last_octet[HOST_COUNT] = {11, 15, 23, 31, 42, 57, 64};

#define BEACON_PERIOD_S 300.0
#define BEACON_JITTER 0.08
#define EXFIL_BYTES 120000000u
#define EXFIL_HISTORY_VISITS 18 /* small flows of the exfil host before the upload */


/* ---------------------------------------------------------------------- */
/* HTTP                                                                    */
/* ---------------------------------------------------------------------- */

static const char *const demo_paths[] = {
    "/", "/index.html", "/forecast/today", "/assets/app.js", "/styles/main.css", "/api/v1/status",
};


/* ---------------------------------------------------------------------- */
/* Scenario                                                                */
/* ---------------------------------------------------------------------- */

static size_t pick_site(demo_trace *g, const demo_host *h)
{
    double total = 0.0;
    for (size_t i = 0; i < SITE_BROWSED; i++)
        total += h->site_weight[i];
    double x = rng_unit(&g->rng) * total;
    for (size_t i = 0; i < SITE_BROWSED; i++) {
        if (x < h->site_weight[i])
            return i;
        x -= h->site_weight[i];
    }
    return SITE_BROWSED - 1;
}

/* Resolve SITE (A, and AAAA half of the time); return when the A answer
 * arrived. */
static uint64_t resolve(demo_trace *g, demo_host *h, size_t site, uint64_t t)
{
    const demo_site *s = &demo_sites[site];
    uint64_t done = dns_exchange(g, h, t, s->name, DNS_TYPE_A, s, site);
    if (rng_unit(&g->rng) < 0.5)
        (void)dns_exchange(g, h, t + rng_range(&g->rng, 50, 400), s->name, DNS_TYPE_AAAA, s, site);
    return done;
}

/* A page visit at T: DNS, then one to three connections opened within
 * half a second, sometimes assets from the CDN as well. */
static void visit(demo_trace *g, demo_host *h, size_t site, uint64_t t)
{
    demo_rng *r = &g->rng;
    const demo_site *s = &demo_sites[site];
    uint64_t ready = resolve(g, h, site, t) + rng_range(r, 200, 3000);

    if (rng_unit(r) < 0.06) {
        const char *bad = demo_bad_names[rng_range(r, 0, BAD_NAME_COUNT - 1)];
        (void)dns_exchange(g, h, t + rng_range(r, 1000, 5000), bad, DNS_TYPE_A, NULL, 0);
    }

    double u = rng_unit(r);
    unsigned connections = u < 0.6 ? 1 : (u < 0.9 ? 2 : 3);
    for (unsigned i = 0; i < connections; i++) {
        uint64_t start = ready + (i == 0 ? 0 : rng_range(r, 20000, 500000));
        size_t body = (size_t)rng_lognormal(r, 3500.0, 1.0);
        if (body > 60000)
            body = 60000;
        if (s->kind == SITE_HTTP) {
            const char *path =
                demo_paths[rng_range(r, 0, sizeof demo_paths / sizeof demo_paths[0] - 1)];
            (void)http_session(g, h, s, path, body, false, DEMO_ROLE_BACKGROUND, start);
        } else {
            tls_plan plan = {s->name,
                             (size_t)rng_range(r, 250, 900),
                             body,
                             false,
                             false,
                             0.0,
                             DEMO_ROLE_BACKGROUND};
            (void)tls_session(g, h, s->ip, start, &plan);
        }
    }

    /* The CDN answers with one of four addresses, as round-robin DNS does. */
    if (s->kind == SITE_HTTPS && rng_unit(r) < 0.3) {
        demo_site cdn = demo_sites[SITE_CDN];
        cdn.ip[3] = (uint8_t)(cdn.ip[3] + rng_range(r, 0, 3));
        uint64_t cdn_t = ready + rng_range(r, 300000, 900000);
        uint64_t cdn_ready = dns_exchange(g, h, cdn_t, cdn.name, DNS_TYPE_A, &cdn, SITE_CDN) +
                             rng_range(r, 200, 2000);
        tls_plan plan = {cdn.name,
                         (size_t)rng_range(r, 250, 700),
                         (size_t)rng_lognormal(r, 8000.0, 0.8),
                         false,
                         false,
                         0.0,
                         DEMO_ROLE_BACKGROUND};
        if (plan.response_bytes > 60000)
            plan.response_bytes = 60000;
        (void)tls_session(g, h, cdn.ip, cdn_ready, &plan);
    }
}

/*
 * Background browsing of host H from FROM_US to TO_US. Gaps between
 * visits are log-normal (median 6 minutes), with occasional long breaks,
 * so no site is contacted at a regular rhythm.
 */
static void browse(demo_trace *g, demo_host *h, uint64_t from_us, uint64_t to_us)
{
    demo_rng *r = &g->rng;
    uint64_t t = from_us + (uint64_t)(rng_uniform(r, 10.0, 400.0) * 1e6);
    while (t < to_us && !g->failed) {
        visit(g, h, pick_site(g, h), t);
        double gap_s = rng_lognormal(r, 360.0, 0.9);
        if (rng_unit(r) < 0.08)
            gap_s += rng_uniform(r, 1200.0, 3600.0);
        t += (uint64_t)(gap_s * 1e6);
    }
}

static demo_host *host_by_ip(demo_trace *g, const uint8_t ip[4])
{
    for (size_t i = 0; i < HOST_COUNT; i++) {
        if (memcmp(g->hosts[i].ip, ip, 4) == 0)
            return &g->hosts[i];
    }
    return &g->hosts[0];
}

/* The planted beacon: a short TLS connection every 300 s +-8%, each
 * preceded by a DNS lookup, with two beats skipped. */
static void plant_beacon(demo_trace *g)
{
    demo_rng *r = &g->rng;
    demo_host *h = host_by_ip(g, demo_beacon_host_ip);
    size_t beats = (size_t)((double)(g->end_us - g->start_us) / 1e6 / BEACON_PERIOD_S);
    size_t skip1 = (size_t)rng_range(r, 2, beats / 2);
    size_t skip2 = (size_t)rng_range(r, beats / 2 + 1, beats - 2);
    demo_site peer = {demo_beacon_sni, {0}, SITE_HTTPS, false};
    memcpy(peer.ip, demo_beacon_peer_ip, 4);

    double t_s = rng_uniform(r, 20.0, 200.0);
    for (size_t i = 0; i < beats && !g->failed; i++) {
        uint64_t t = g->start_us + (uint64_t)(t_s * 1e6);
        if (t >= g->end_us)
            break;
        if (i != skip1 && i != skip2) {
            uint64_t ready = dns_exchange(g, h, t, demo_beacon_sni, DNS_TYPE_A, &peer, 0);
            tls_plan plan = {demo_beacon_sni,
                             (size_t)rng_range(r, 380, 460),
                             (size_t)rng_range(r, 180, 260),
                             false,
                             false,
                             0.0,
                             DEMO_ROLE_BEACON};
            (void)tls_session(g, h, demo_beacon_peer_ip, ready + rng_range(r, 200, 800), &plan);
        }
        t_s += BEACON_PERIOD_S * (1.0 + rng_uniform(r, -BEACON_JITTER, BEACON_JITTER));
    }
}

/* The planted exfiltration: small visits by the host first (so it has a
 * baseline of a few KB per flow), then one 120 MB upload in the last
 * hour. The extra visits go round the sites so that they add no
 * repeated pattern to any one site. */
static void plant_exfil(demo_trace *g)
{
    demo_rng *r = &g->rng;
    demo_host *h = host_by_ip(g, demo_exfil_host_ip);
    uint64_t upload_at = g->end_us - (uint64_t)(rng_uniform(r, 900.0, 2400.0) * 1e6);

    uint64_t span = upload_at - g->start_us - 120 * US_PER_S;
    for (size_t i = 0; i < EXFIL_HISTORY_VISITS; i++) {
        uint64_t t = g->start_us + (uint64_t)(rng_unit(r) * (double)span);
        visit(g, h, i % SITE_BROWSED, t);
    }

    demo_site peer = {demo_exfil_sni, {0}, SITE_HTTPS, false};
    memcpy(peer.ip, demo_exfil_peer_ip, 4);
    uint64_t ready = dns_exchange(g, h, upload_at, demo_exfil_sni, DNS_TYPE_A, &peer, 0);
    tls_plan plan = {demo_exfil_sni, EXFIL_BYTES, 420, true, false, rng_uniform(r, 1.2e6, 2.0e6),
                     DEMO_ROLE_EXFIL};
    (void)tls_session(g, h, demo_exfil_peer_ip, ready + 500, &plan);
}

/* Two large inbound downloads by other hosts: an HTTP file and a TLS
 * media stream, both stored cut. */
static void plant_downloads(demo_trace *g)
{
    demo_rng *r = &g->rng;
    uint64_t span = g->end_us - g->start_us;

    demo_host *h1 = &g->hosts[1];
    uint64_t t1 = g->start_us + (uint64_t)(rng_uniform(r, 0.15, 0.45) * (double)span);
    uint64_t ready = resolve(g, h1, SITE_DOWNLOADS, t1) + 900;
    (void)http_session(g, h1, &demo_sites[SITE_DOWNLOADS], "/releases/office-suite-24.2.tar.xz",
                       (size_t)rng_range(r, 24000000, 27000000), true, DEMO_ROLE_DOWNLOAD, ready);

    demo_host *h5 = &g->hosts[5];
    uint64_t t2 = g->start_us + (uint64_t)(rng_uniform(r, 0.5, 0.8) * (double)span);
    ready = resolve(g, h5, SITE_MEDIA, t2) + 700;
    tls_plan plan = {demo_sites[SITE_MEDIA].name,
                     600,
                     (size_t)rng_range(r, 14000000, 16000000),
                     false,
                     true,
                     rng_uniform(r, 2.5e6, 5.0e6),
                     DEMO_ROLE_DOWNLOAD};
    (void)tls_session(g, h5, demo_sites[SITE_MEDIA].ip, ready, &plan);
}

static void init_hosts(demo_trace *g)
{
    for (size_t i = 0; i < HOST_COUNT; i++) {
        demo_host *h = &g->hosts[i];
        const uint8_t ip[4] = {10, 1, 0, demo_host_last_octet[i]};
        memcpy(h->ip, ip, 4);
        /* Locally administered unicast MACs, one per host. */
        const uint8_t mac[6] = {0x02, 0x1a, 0xc4, 0x10, 0x00, demo_host_last_octet[i]};
        memcpy(h->mac, mac, 6);
        h->ip_id = (uint16_t)rng_next(&g->rng);
        h->next_port = (uint16_t)rng_range(&g->rng, 32768, 50000);
        for (size_t s = 0; s < SITE_BROWSED; s++)
            h->site_weight[s] = 0.05 + rng_unit(&g->rng);
    }
}

int demo_generate(const demo_config *config, demo_trace **out)
{
    /* 9999-12-31T23:59:59Z: pcap's 32-bit seconds overflow long before,
     * but gmtime_r and the date header are fine up to here. */
    const uint64_t last_s = 253402300799ull;
    if (config == NULL || out == NULL || config->hours < 1 || config->hours > DEMO_MAX_HOURS ||
        config->start_s > last_s - (uint64_t)config->hours * 3600u) {
        errno = EINVAL;
        return -1;
    }
    *out = NULL;

    uint64_t start_us = config->start_s * US_PER_S;
    uint64_t end_us = start_us + (uint64_t)config->hours * 3600u * US_PER_S;
    demo_trace *g = demo_trace_new(config->seed, start_us, end_us, HOST_COUNT);
    if (g == NULL)
        return -1;

    init_hosts(g);
    for (size_t i = 0; i < HOST_COUNT; i++)
        browse(g, &g->hosts[i], g->start_us, g->end_us - 120 * US_PER_S);
    plant_downloads(g);
    plant_beacon(g);
    plant_exfil(g);

    if (demo_trace_finish(g) != 0) {
        demo_trace_destroy(&g);
        return -1;
    }
    *out = g;
    return 0;
}
