/*
 * Fuzz the NetFlow v5/v9 and IPFIX decoder (col_collector_datagram).
 *
 * The input is read twice. First it is one datagram, then a chain of
 * datagrams, each behind a 2-byte big-endian length, from two exporters
 * in turn and one second apart, so templates, withdrawals, expiry and
 * sequence numbers carry from one datagram to the next. Small limits
 * make the refusal paths reachable.
 */
#include <stdint.h>
#include <string.h>

#include "collect.h"
#include "fuzz_util.h"

static volatile uint64_t sink_total;

static void on_flow(void *ctx, const cap_flow *flow)
{
    (void)ctx;
    sink_total += flow->pkts_fwd + flow->bytes_fwd + flow->pkts_rev + flow->first_us;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    col_config config = {.max_domains = 4, .max_templates = 16, .max_template_fields = 64,
                         .template_timeout_s = 30};
    col_collector *col = NULL;
    if (col_collector_create(&config, on_flow, NULL, &col) != FV_OK)
        return 0;

    const cap_ip exporters[2] = {{.family = 4, .addr = {192, 0, 2, 1}},
                                 {.family = 6, .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}}};
    uint64_t now_s = 1764583168;
    (void)col_collector_datagram(col, &exporters[0], data, size, now_s);

    size_t pos = 0;
    unsigned n = 0;
    while (2 <= size - pos) {
        size_t len = ((size_t)data[pos] << 8) | data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        (void)col_collector_datagram(col, &exporters[n % 2], data + pos, len, now_s + n);
        pos += len;
        n++;
    }
    col_collector_expire(col, now_s + n + 3600);

    col_stats stats;
    col_collector_stats(col, &stats);
    sink_total += stats.records + col_collector_template_count(col);
    col_collector_destroy(&col);
    return 0;
}
