#include "cap_test_sink.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static void on_flow(void *ctx, const cap_flow *f)
{
    test_sink *ts = ctx;

    if (ts->nflows < TS_MAX_FLOWS)
        ts->flows[ts->nflows++] = *f;
}

static void on_dns(void *ctx, const cap_dns *d)
{
    test_sink *ts = ctx;

    if (ts->ndns < TS_MAX_EVENTS)
        ts->dns[ts->ndns++] = *d;
}

static void on_tls(void *ctx, const cap_tls *t)
{
    test_sink *ts = ctx;

    if (ts->ntls < TS_MAX_EVENTS)
        ts->tls[ts->ntls++] = *t;
}

static void on_http(void *ctx, const cap_http *h)
{
    test_sink *ts = ctx;

    if (ts->nhttp < TS_MAX_EVENTS)
        ts->http[ts->nhttp++] = *h;
}

static bool is_excluded(void *ctx, const cap_ip *addr)
{
    test_sink *ts = ctx;
    size_t i;

    ts->exclusion_calls++;
    for (i = 0; i < sizeof ts->excluded / sizeof ts->excluded[0]; i++) {
        if (ts->excluded[i].family == addr->family &&
            memcmp(ts->excluded[i].addr, addr->addr, 16) == 0)
            return true;
    }
    return false;
}

static bool is_excluded_host(void *ctx, const cap_ip *addr, const uint8_t *mac)
{
    test_sink *ts = ctx;

    if (mac != NULL && ts->has_excluded_mac && memcmp(mac, ts->excluded_mac, 6) == 0 &&
        (ts->excluded_mac_addr.family == 0 ||
         (ts->excluded_mac_addr.family == addr->family &&
          memcmp(ts->excluded_mac_addr.addr, addr->addr, 16) == 0))) {
        ts->exclusion_calls++;
        return true;
    }
    return is_excluded(ctx, addr);
}

cap_sink ts_sink(test_sink *ts)
{
    cap_sink s;

    memset(ts, 0, sizeof *ts);
    memset(&s, 0, sizeof s);
    s.ctx = ts;
    s.is_excluded = is_excluded;
    s.is_excluded_host = is_excluded_host;
    s.on_flow = on_flow;
    s.on_dns = on_dns;
    s.on_tls = on_tls;
    s.on_http = on_http;
    return s;
}

cap_ip ts_ip(const char *text)
{
    cap_ip ip;

    memset(&ip, 0, sizeof ip);
    if (inet_pton(AF_INET, text, ip.addr) == 1) {
        ip.family = 4;
    } else if (inet_pton(AF_INET6, text, ip.addr) == 1) {
        ip.family = 6;
    } else {
        abort();
    }
    return ip;
}

int ts_feed(cap_engine *eng, int linktype, uint64_t ts_us, const uint8_t *frame, size_t len)
{
    return cap_engine_packet(eng, linktype, ts_us, frame, (uint32_t)len, (uint32_t)len);
}

size_t ts_cat(uint8_t *out, size_t out_len, const uint8_t *a, size_t alen, const uint8_t *b,
              size_t blen)
{
    if (alen + blen > out_len)
        abort();
    memcpy(out, a, alen);
    memcpy(out + alen, b, blen);
    return alen + blen;
}
