/*
 * cap_test_sink.h: a cap_sink that records what the engine emits, for the
 * capture engine tests.
 */
#ifndef FV_CAP_TEST_SINK_H
#define FV_CAP_TEST_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"

#define TS_MAX_FLOWS 4096
#define TS_MAX_EVENTS 256

typedef struct test_sink {
    size_t nflows;
    cap_flow flows[TS_MAX_FLOWS];
    size_t ndns, ntls, nhttp;
    cap_dns dns[TS_MAX_EVENTS];
    cap_tls tls[TS_MAX_EVENTS];
    cap_http http[TS_MAX_EVENTS];
    /* Addresses for which the exclusion hook returns true (family 0 =
     * unused), and with has_excluded_mac, the MAC it returns true for. */
    cap_ip excluded[4];
    bool has_excluded_mac;
    uint8_t excluded_mac[6];
    /* With a family set, excluded_mac counts only when it comes with
     * this address, so a test can check which address a MAC goes with. */
    cap_ip excluded_mac_addr;
    size_t exclusion_calls;
} test_sink;

/* Reset *TS and return a cap_sink whose hooks record into it. */
cap_sink ts_sink(test_sink *ts);

/* Fill *IP from text ("192.0.2.1" or "2001:db8::1"). */
cap_ip ts_ip(const char *text);

/* Feed one frame at TS_US seconds-based time with caplen == wirelen. */
int ts_feed(cap_engine *eng, int linktype, uint64_t ts_us, const uint8_t *frame, size_t len);

/* Concatenate A and B into OUT (size OUT_LEN); return the total length. */
size_t ts_cat(uint8_t *out, size_t out_len, const uint8_t *a, size_t alen, const uint8_t *b,
              size_t blen);

#endif
