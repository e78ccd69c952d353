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
#define DEMO_PROFILE_MAX_FLOWS 20000000u

typedef enum demo_profile {
    DEMO_PROFILE_OFFICE = 0, /* the office demo of demogen.h */
    DEMO_PROFILE_MIXED = 1,
    DEMO_PROFILE_SYNFLOOD = 2,
} demo_profile;

typedef struct demo_profile_config {
    demo_profile profile; /* DEMO_PROFILE_MIXED or DEMO_PROFILE_SYNFLOOD */
    uint64_t seed;
    uint64_t start_s; /* first timestamp, seconds since the epoch, UTC */
    uint64_t flows;   /* conversations (mixed) or SYNs (synflood), 1 .. DEMO_PROFILE_MAX_FLOWS */
} demo_profile_config;

/* Parse a profile name ("office", "mixed", "synflood"). Return 0, or -1
 * for an unknown name. */
int demo_profile_parse(const char *name, demo_profile *out);

/*
 * Generate the trace for CONFIG into *OUT. Return 0, or -1 with errno
 * EINVAL (unknown profile, flows out of range) or ENOMEM.
 */
int demo_generate_profile(const demo_profile_config *config, demo_trace **out);

#endif /* FV_DEMOGEN_PROFILES_H */
