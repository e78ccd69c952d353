/*
 * scengen.h: a labelled office-traffic scenario for measuring the
 * detectors.
 *
 * sg_generate() builds, in memory, days of background traffic of an
 * office: tens of hosts with working hours, a lunch dip and quiet
 * weekends, DNS through an internal resolver, TLS, QUIC, HTTP, file
 * server sessions, NTP and hourly update checks. It then plants incidents
 * that each detector should find: beacons, exfiltration, long
 * connections, scans, DNS tunnelling, DGA lookups, segmentation
 * violations, indicator hits, off-hours activity, new rare destinations
 * and an hourly volume surge. Each planted incident becomes one line of
 * ground truth (JSON Lines, see docs/DETECTION.md).
 *
 * Caveats
 * - The same config always yields the same capture, truth, policy and
 *   indicator files.
 * - Incidents are planted after the learning period (the first half of
 *   the days), so baselines have history when they happen.
 * - Flows carry few packets: a handshake, the TLS ClientHello, data as a
 *   few large segments stored cut (headers only), and the close. Byte
 *   counts are still those of the flow.
 * - Addresses: office hosts 10.1.0.0/16, servers 10.2.0.0/16 (resolver
 *   10.2.0.53, file server 10.2.0.20), finance 10.3.0.0/16. Background
 *   sites use 192.0.2.0/24 and 198.18.0.0/15; planted peers use
 *   198.51.100.0/24 and 203.0.113.0/24.
 */
#ifndef FV_SCENGEN_H
#define FV_SCENGEN_H

#include <stddef.h>
#include <stdint.h>

#include "demo_wire.h"

#define SG_DEFAULT_START_S 1795996800u /* Monday 2026-11-30T00:00:00Z */
#define SG_DEFAULT_DAYS 14u
#define SG_DEFAULT_HOSTS 40u
#define SG_SMALL_DAYS 2u
#define SG_SMALL_HOSTS 32u
#define SG_MIN_HOSTS 24u /* every planted incident gets a host of its own */
#define SG_MAX_HOSTS 250u
#define SG_MAX_DAYS 60u

typedef struct sg_config {
    uint64_t seed;
    uint64_t start_s; /* seconds since the epoch, UTC; should be a Monday 00:00 */
    uint32_t days;    /* 2 .. SG_MAX_DAYS */
    uint32_t hosts;   /* SG_MIN_HOSTS .. SG_MAX_HOSTS */
} sg_config;

/* Generated text files, each a NUL-terminated heap string. */
typedef struct sg_files {
    char *truth;      /* ground truth, JSON Lines */
    char *policy;     /* scenario policy (YAML) */
    char *indicators_plain; /* indicators.txt: one address or network a line */
    char *indicators_csv;   /* indicators.csv: indicator,type,note */
    char *summary;    /* scenario.json: the parameters and the time to ingest at */
    size_t events;    /* lines in truth */
} sg_files;

/*
 * Generate the scenario for CONFIG: the trace into *TRACE and the text
 * files into *FILES. Return 0, or -1 with errno EINVAL (a value out of
 * range) or ENOMEM.
 */
int sg_generate(const sg_config *config, demo_trace **trace, sg_files *files);

/* Free the strings of FILES and zero it. */
void sg_files_free(sg_files *files);

#endif /* FV_SCENGEN_H */
