/*
 * aggregate.h: per-zone traffic counts built in memory from flows.
 *
 * The capturing process adds every flow of a monitored or aggregate-mode
 * host here. Flows are counted into an hourly and a daily bucket of their
 * traffic time (first_us), keyed by (bucket, zone of the internal side,
 * IP protocol, external peer, destination port). A bucket is emitted as
 * an fv_aggregate_record once traffic time (the largest last_us added)
 * passes its end plus CLOSE_DELAY_US, and every bucket is emitted by
 * fv_aggregator_flush.
 *
 * Caveats
 * - Distinct hosts are counted from the 16-byte host ids the caller
 *   passes (pseudonyms). An exact set per record holds up to
 *   FV_AGGREGATE_HOSTS_MAX ids; beyond that hosts_capped is set and hosts
 *   stays at the bound.
 * - A flow that arrives after its bucket was emitted opens the bucket
 *   again, so the same key can appear in two records. Their flows,
 *   packets and bytes add up; their host counts do not.
 * - At most MAX_ENTRIES keys are open at once. Adding a key beyond that
 *   emits every open bucket early (counted in fv_aggregator_stats).
 * - Single-threaded.
 */
#ifndef FV_AGGREGATE_H
#define FV_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

#define FV_AGGREGATE_HOUR_S 3600u
#define FV_AGGREGATE_DAY_S 86400u

/* Receives each finished record; REC is valid only during the call. */
typedef void (*fv_aggregate_emit_fn)(void *ctx, const fv_aggregate_record *rec);

/* One flow as the aggregator counts it. */
typedef struct fv_aggregate_flow {
    uint64_t first_us, last_us;         /* traffic time */
    const char *zone;                   /* zone of the internal side */
    const uint8_t *host;                /* FV_PSEUDONYM_BYTES id of the internal host */
    uint8_t proto;
    const fv_endpoint *peer;            /* external side, NULL if both sides are internal */
    uint16_t dport;
    bool continued;                     /* a later record of a flow split by the active timeout */
    uint64_t packets;
    uint64_t bytes_out, bytes_in;       /* from and towards the internal host */
} fv_aggregate_flow;

/* Counters for tests and logs. */
typedef struct fv_aggregator_stats {
    uint64_t open_entries;
    uint64_t emitted;
    uint64_t early_flushes;             /* table full: every bucket emitted early */
    uint64_t reopened;                  /* flows counted into an already emitted bucket */
} fv_aggregator_stats;

typedef struct fv_aggregator fv_aggregator;

/*
 * Create an aggregator. CLOSE_DELAY_US is how long after a bucket's end
 * flows may still arrive (the capture engine's longest flow timeout);
 * MAX_ENTRIES bounds the open keys (0 = 65536). Returns FV_OK,
 * FV_ERR_INVALID or FV_ERR_NOMEM.
 */
FV_NODISCARD int fv_aggregator_create(uint64_t close_delay_us, size_t max_entries,
                                      fv_aggregate_emit_fn emit, void *emit_ctx,
                                      fv_aggregator **out);

/* Free AGG without emitting. Accepts NULL and sets *agg to NULL. */
void fv_aggregator_destroy(fv_aggregator **agg);

/*
 * Count FLOW into its hourly and daily bucket, then emit the buckets that
 * closed at the new traffic time. Returns FV_OK, FV_ERR_INVALID or
 * FV_ERR_NOMEM (the flow is then not counted).
 */
int fv_aggregator_add(fv_aggregator *agg, const fv_aggregate_flow *flow);

/* Emit every bucket whose end plus the close delay is at or before NOW_US. */
void fv_aggregator_advance(fv_aggregator *agg, uint64_t now_us);

/* Emit every open bucket and empty the table. */
void fv_aggregator_flush(fv_aggregator *agg);

void fv_aggregator_get_stats(const fv_aggregator *agg, fv_aggregator_stats *out);

/* Start of the bucket of BUCKET_S seconds that contains TS_US (UTC). */
uint64_t fv_aggregate_bucket_start(uint64_t ts_us, uint32_t bucket_s);

#endif /* FV_AGGREGATE_H */
