/*
 * demogen_profiles.h: benchmark traffic for flowveil-demogen --profile.
 *
 * Two deterministic traces for bench/, built with the same packet writer
 * as the office demo (demo_wire.h), so every frame has valid IPv4, TCP
 * and UDP checksums:
 * - "mixed": many internal hosts (10.1.0.0/16) talking to servers in
 *   198.18.0.0/15 (the range RFC 2544 reserves for benchmarks) over
 *   DNS, TLS, HTTP/1.1, QUIC, bulk TCP (SMB port 445, stored cut) and
 *   small UDP (NTP, syslog). The default of 270,000 conversations gives
 *   about 2 million packets over 10 minutes.
 * - "synflood": unanswered TCP SYNs, each its own flow. Three
 *   quarters are a spoofed flood from random sources in 198.18.0.0/15
 *   against one web server (10.1.0.80:80), one quarter is a scan of
 *   10.1.0.0/16 on five service ports by 16 external scanners. The
 *   default is 4 million SYNs at about 50,000 per second.
 * - "scan16", "fragments", "dnsnames": worst cases for the capture
 *   engine's memory bound (bench/memory.sh), 20,000 per second each.
 *   scan16: one source SYN-scans 10.1.0.0/16 on eight ports, one flow
 *   per SYN, no target replies (default 524,288 SYNs, every address on
 *   every port). fragments: 4,000-byte UDP datagrams of which no one
 *   completes (default 200,000). dnsnames: lookups of names never asked
 *   before, all NXDOMAIN (default 2 million).
 *
 * Caveats
 * - QUIC conversations carry Initial packets with random ciphertext: a
 *   reader derives the Initial keys from the DCID as for a real Initial
 *   but the AEAD tag check fails, so no SNI is recovered from them.
 * - Everything is held in memory until written: about 1 GB of RSS for the
 *   mixed default and 0.75 GB for the synflood default (GNU time, x86-64).
 */
#ifndef FV_DEMOGEN_PROFILES_H
#define FV_DEMOGEN_PROFILES_H

#include <stddef.h>
#include <stdint.h>

#include "demo_wire.h"

#define DEMO_MIXED_DEFAULT_FLOWS 270000u
#define DEMO_SYNFLOOD_DEFAULT_FLOWS 4000000u
#define DEMO_SCAN16_DEFAULT_FLOWS 524288u
#define DEMO_FRAGMENTS_DEFAULT_FLOWS 200000u
#define DEMO_DNSNAMES_DEFAULT_FLOWS 2000000u
#define DEMO_PROFILE_MAX_FLOWS 20000000u

typedef enum demo_profile {
    DEMO_PROFILE_OFFICE = 0, /* the office demo of demogen.h */
    DEMO_PROFILE_MIXED = 1,
    DEMO_PROFILE_SYNFLOOD = 2,
    DEMO_PROFILE_SCAN16 = 3,
    DEMO_PROFILE_FRAGMENTS = 4,
    DEMO_PROFILE_DNSNAMES = 5,
} demo_profile;

typedef struct demo_profile_config {
    demo_profile profile; /* any but DEMO_PROFILE_OFFICE */
    uint64_t seed;
    uint64_t start_s; /* first timestamp, seconds since the epoch, UTC */
    /* conversations (mixed), SYNs (synflood, scan16), datagrams
     * (fragments) or DNS lookups (dnsnames), 1 .. DEMO_PROFILE_MAX_FLOWS */
    uint64_t flows;
} demo_profile_config;

/* Parse a profile name ("office", "mixed", "synflood", "scan16",
 * "fragments", "dnsnames"). Return 0, or -1 for an unknown name. */
int demo_profile_parse(const char *name, demo_profile *out);

/* The name demo_profile_parse accepts for PROFILE. */
const char *demo_profile_name(demo_profile profile);

/* The default --flows of PROFILE (0 for the office profile). */
uint64_t demo_profile_default_flows(demo_profile profile);

/*
 * Generate the trace for CONFIG into *OUT. Return 0, or -1 with errno
 * EINVAL (unknown profile, flows out of range) or ENOMEM.
 */
int demo_generate_profile(const demo_profile_config *config, demo_trace **out);

#endif /* FV_DEMOGEN_PROFILES_H */
