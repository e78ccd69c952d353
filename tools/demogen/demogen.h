/*
 * demogen.h: deterministic synthetic office traffic for demos and tests.
 *
 * demo_generate() builds, in memory, the Ethernet frames of a small office
 * network over a few hours: DNS through an internal resolver, TLS and
 * HTTP/1.1 browsing, two large downloads, and two planted incidents that
 * flowveil's detectors should find:
 * - a beacon: 10.1.0.23 opens a TLS connection to 203.0.113.50:443 (SNI
 *   "update-check.example.net") every 300 s with +-8% jitter and two
 *   skipped beats, for the whole duration;
 * - an exfiltration: 10.1.0.42, which otherwise sends only small flows,
 *   uploads about 120 MB to 198.51.100.77:443 in one TCP flow during the
 *   last hour.
 * Frames are sorted by timestamp. Full-size data segments of the bulk
 * transfers are stored with only their headers (caplen 66, original length
 * 1514), as a capture with a short snap length stores them.
 *
 * Caveats
 * - The same config always yields the same bytes: randomness comes from
 *   a xoshiro256** generator seeded with config.seed.
 * - All traffic is IPv4. External servers use documentation prefixes
 *   (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and a few public
 *   addresses; names are under example.com/.net/.org, .test and .invalid.
 * - Payload bytes that a cut frame does not store count as zeros in the
 *   TCP checksum.
 */
#ifndef FV_DEMOGEN_H
#define FV_DEMOGEN_H

#include <stddef.h>
#include <stdint.h>

#include "demo_wire.h"

#define DEMO_DEFAULT_START_S 1796025600u /* 2026-11-30T08:00:00Z */
#define DEMO_DEFAULT_HOURS 3u
#define DEMO_MAX_HOURS 48u

typedef struct demo_config {
    uint64_t seed;
    uint64_t start_s; /* seconds since the epoch, UTC */
    uint32_t hours;   /* 1 .. DEMO_MAX_HOURS */
} demo_config;

/*
 * Generate the trace for CONFIG into *OUT. Return 0, or -1 with errno
 * EINVAL (hours out of range, or the trace would end after the year 9999)
 * or ENOMEM.
 */
int demo_generate(const demo_config *config, demo_trace **out);

#endif /* FV_DEMOGEN_H */
