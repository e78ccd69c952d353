/*
 * collect.h: decode NetFlow v5, NetFlow v9 and IPFIX datagrams from
 * routers and other exporters into the flow input of the pipeline.
 *
 * A col_collector receives whole UDP datagrams with the exporter's
 * address and turns every flow data record into a cap_flow, the same
 * structure the capture engine hands the pipeline, so pseudonymization,
 * policy groups, storage, aggregates and detectors apply unchanged.
 *
 * Mapping of exporter records to cap_flow:
 * - Each record is one direction of traffic. It becomes one flow with
 *   its counters in the forward fields and zero reverse counters; the
 *   reverse record of the same conversation becomes a second flow. No
 *   records are merged. Biflow records (RFC 5103 reverse elements,
 *   enterprise number 29305) fill the reverse fields.
 * - When a sampling interval N is known (the v5 header, a samplingInterval
 *   or samplingPacketInterval field of the record, or an options record
 *   of the same exporter and domain), packet and byte counts are
 *   multiplied by N and the record is counted in sampled_records.
 * - Times: v5 and v9 give switch times in milliseconds of system uptime,
 *   converted with the header's uptime and Unix time. IPFIX times come
 *   from flowStart/End Seconds, Milliseconds or Microseconds, or from
 *   SysUpTime fields with the systemInitTimeMilliseconds an options
 *   record announced; without one of these the export time is used.
 *
 * Bounded memory: at most max_domains (exporter address, version,
 * observation domain or source id) entries, max_templates templates in
 * all, and max_template_fields fields per template. What does not fit is
 * rejected and counted, never evicted silently.
 *
 * Caveats
 * - Records carry RAW addresses and MACs: the flow callback must pass
 *   them through the pipeline before anything stores or logs them. The
 *   collector itself never logs an address.
 * - Not thread-safe; time is passed in by the caller.
 * - The flow pointer passed to the callback is valid only during the call.
 */
#ifndef FV_COLLECT_H
#define FV_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"
#include "fv_common.h"

/* Limits. Zero fields take the defaults in brackets. */
typedef struct col_config {
    uint32_t max_domains;           /* exporter and domain entries [1024] */
    uint32_t max_templates;         /* templates over all domains [8192] */
    uint32_t max_template_fields;   /* fields of one template [128], at most 1024 */
    uint32_t template_timeout_s;    /* a template not refreshed this long is dropped [1800] */
    /* An exporter domain that sent no datagram this long is dropped with
     * its templates, so a flood of short-lived domains cannot lock new
     * exporters out until a restart [3600]. */
    uint32_t domain_idle_s;
} col_config;

/*
 * Counters. Every reason a record is not turned into a flow has its own
 * field. col_stats consists of uint64_t fields only, in the order of
 * col_stats_names.
 */
typedef struct col_stats {
    uint64_t datagrams;             /* datagrams handed to col_collector_datagram */
    uint64_t datagrams_v5, datagrams_v9, datagrams_ipfix;
    uint64_t unsupported_version;   /* datagrams of another version (v1, v7, sFlow...) */
    uint64_t malformed;             /* datagrams, sets or templates with an invalid length */
    uint64_t records;               /* flow data records decoded into flows */
    uint64_t records_no_address;    /* data records without both addresses, skipped */
    uint64_t sampled_records;       /* records whose counters were scaled by a sampling interval */
    uint64_t template_misses;       /* data sets whose template is unknown or expired */
    uint64_t templates_added;       /* new or changed templates */
    uint64_t templates_withdrawn;   /* IPFIX template withdrawals applied */
    uint64_t templates_expired;     /* dropped after template_timeout_s without use */
    uint64_t templates_refused;     /* over max_templates or max_template_fields */
    uint64_t options_records;       /* options data records read (sampling, init time) */
    uint64_t domains_refused;       /* datagrams from a new domain over max_domains */
    uint64_t sequence_gaps;         /* datagrams whose sequence number was not the expected one */
    uint64_t sequence_lost;         /* records (v5, IPFIX) or datagrams (v9) the gaps skipped */
    uint64_t time_unknown;          /* IPFIX records timed by the export time */
    uint64_t records_future;        /* records starting or ending more than COL_FUTURE_MAX_S
                                       after their datagram arrived (stored up to
                                       COL_FUTURE_DROP_S, dropped beyond) */
    uint64_t domains_expired;       /* domains dropped after domain_idle_s without a datagram */
    uint64_t records_out_of_range;  /* records dropped: a time before COL_TIME_MIN_S or more
                                       than COL_FUTURE_DROP_S ahead, or a count of 2^63 or
                                       more (after sampling) */
} col_stats;

/* How far a record's times may lie after its arrival before they are
 * counted as records_future: one day. */
#define COL_FUTURE_MAX_S 86400u
/* How far before the record is dropped as out of range: 366 days. */
#define COL_FUTURE_DROP_S (366u * 86400u)
/* Earliest start or end time accepted: 1990-01-01T00:00:00Z. */
#define COL_TIME_MIN_S 631152000u

/* Names of the col_stats fields in declaration order; *COUNT gets their
 * number. The table is static and constant. */
const char *const *col_stats_names(size_t *count);

/* Called for every decoded flow. */
typedef void (*col_flow_fn)(void *ctx, const cap_flow *flow);

typedef struct col_collector col_collector;

/* Create a collector. CONFIG may be NULL for the defaults. Returns FV_OK,
 * FV_ERR_INVALID or FV_ERR_NOMEM. */
FV_NODISCARD int col_collector_create(const col_config *config, col_flow_fn on_flow, void *ctx,
                                      col_collector **out);

/* Free the collector and its templates. Accepts NULL; clears *COL. */
void col_collector_destroy(col_collector **col);

/*
 * Decode one datagram of LEN bytes that EXPORTER sent, received at NOW_S
 * (seconds since the Unix epoch). Flows go to the callback as their
 * records are read. Returns FV_OK when the datagram was read whole,
 * FV_ERR_PARSE when it was malformed (records before the fault are kept
 * and the rest is skipped), FV_ERR_UNSUPPORTED for another version and
 * FV_ERR_FULL when the exporter's domain was refused.
 */
int col_collector_datagram(col_collector *col, const cap_ip *exporter, const uint8_t *data,
                           size_t len, uint64_t now_s);

/* Drop templates not refreshed for template_timeout_s at NOW_S. Datagrams call
 * this too; a quiet collector calls it from its timer. */
void col_collector_expire(col_collector *col, uint64_t now_s);

/* Copy the counters into *OUT. */
void col_collector_stats(const col_collector *col, col_stats *out);

/* Templates currently held, over all domains. */
size_t col_collector_template_count(const col_collector *col);

#endif /* FV_COLLECT_H */
