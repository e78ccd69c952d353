/*
 * Fuzz the packet path: cap_engine_packet with every link type the
 * engine decodes, through flow tracking and the protocol parsers.
 *
 * Input: byte 0 selects the link type (modulo the table below). The rest
 * is a sequence of frames, each a 2-byte big-endian length and that many
 * bytes (cut at the end of the input), so one input can open a flow and
 * carry its later segments. Frames are 1 ms apart; the engine is flushed
 * at the end so every flow reaches the sink.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "capture.h"
#include "fuzz_util.h"

static const int LINK_TYPES[] = {
    1,      /* Ethernet */
    113,    /* Linux cooked (SLL) */
    276,    /* Linux cooked v2 (SLL2) */
    101,    /* raw IP as stored in files */
    0,      /* BSD loopback (NULL) */
    239,    /* NFLOG */
    9,      /* PPP */
};

/* The sink reads every string it is given, so a missing NUL shows up as
 * an out-of-bounds read under ASan. */
static volatile size_t sink_bytes;

static void on_flow(void *ctx, const cap_flow *f)
{
    (void)ctx;
    sink_bytes += f->pkts_fwd + f->pkts_rev;
}

static void on_dns(void *ctx, const cap_dns *d)
{
    (void)ctx;
    sink_bytes += strlen(d->qname);
    for (unsigned i = 0; i < d->cname_count && i < FV_DNS_CNAMES_MAX; i++)
        sink_bytes += strlen(d->cnames[i]);
}

static void on_tls(void *ctx, const cap_tls *t)
{
    (void)ctx;
    sink_bytes += strlen(t->sni) + strlen(t->ja3) + strlen(t->ja4) + strlen(t->ja3s) +
                  strlen(t->server_alpn);
    for (unsigned i = 0; i < t->alpn_count && i < FV_TLS_ALPN_MAX; i++)
        sink_bytes += strlen(t->alpn[i]);
}

static void on_http(void *ctx, const cap_http *h)
{
    (void)ctx;
    sink_bytes += strlen(h->method) + strlen(h->host) + strlen(h->user_agent);
}

static void on_dhcp(void *ctx, const cap_dhcp *d)
{
    (void)ctx;
    sink_bytes += strlen(d->hostname) + strlen(d->vendor_class);
}

static void on_ssh(void *ctx, const cap_ssh *s)
{
    (void)ctx;
    sink_bytes += strlen(s->client_banner) + strlen(s->server_banner) + strlen(s->hassh) +
                  strlen(s->hassh_server);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_sink sink = {.on_flow = on_flow, .on_dns = on_dns, .on_tls = on_tls,
                     .on_http = on_http, .on_dhcp = on_dhcp, .on_ssh = on_ssh};
    cap_config config = {0};
    cap_engine *engine = NULL;
    uint64_t ts_us = 1764489600000000ull;
    int linktype;

    if (size < 1)
        return 0;
    linktype = LINK_TYPES[data[0] % (sizeof LINK_TYPES / sizeof LINK_TYPES[0])];
    data++;
    size--;

    if (cap_engine_create(&config, &sink, &engine) != FV_OK)
        return 0;
    while (size > 0) {
        size_t frame = fuzz_take_be16(&data, &size);
        if (frame > size)
            frame = size;
        (void)cap_engine_packet(engine, linktype, ts_us, data, (uint32_t)frame,
                                (uint32_t)frame);
        data += frame;
        size -= frame;
        ts_us += 1000;
    }
    cap_engine_flush(engine);
    cap_engine_destroy(&engine);
    return 0;
}
