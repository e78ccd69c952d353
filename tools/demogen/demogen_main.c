/*
 * flowveil-demogen: write the synthetic office trace (see demogen.h) or
 * a benchmark trace (--profile mixed, synflood, scan16, fragments or
 * dnsnames, see demogen_profiles.h)
 * to a pcap file.
 *
 * Exit status: 0 on success, 1 if generating or writing failed, 2 on bad
 * usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demogen.h"
#include "demogen_profiles.h"
#include "tool_cli.h"

#define PROGRAM "flowveil-demogen"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROGRAM " --output FILE [--profile NAME] [--seed N] [--start EPOCH_SECONDS]\n"
            "                        [--hours H] [--flows N]\n"
            "  --output FILE   pcap file to write (Ethernet, microsecond timestamps)\n"
            "  --seed N        random seed, an unsigned integer (default 1)\n"
            "  --start SECONDS first timestamp in seconds since the epoch, UTC\n"
            "                  (default %u, 2026-11-30T08:00:00Z)\n"
            "  --hours H       duration in whole hours, 1 to %u (default %u); office only\n"
            "  --profile NAME  office (default): a small office with two planted incidents;\n"
            "                  mixed: benchmark traffic, DNS, TLS, HTTP, QUIC, bulk TCP and\n"
            "                  small UDP from 2,000 hosts over 10 minutes; synflood: unanswered\n"
            "                  SYNs, a spoofed flood and a /16 scan, one flow per SYN;\n"
            "                  scan16: one source SYN-scans 10.1.0.0/16 on eight ports;\n"
            "                  fragments: UDP datagrams whose fragments never complete;\n"
            "                  dnsnames: lookups of distinct names, all NXDOMAIN\n"
            "  --flows N       conversations (mixed, default %u, about 7.4 packets each),\n"
            "                  SYNs (synflood, default %u; scan16, default %u),\n"
            "                  datagrams (fragments, default %u) or lookups (dnsnames,\n"
            "                  default %u), 1 to %u\n",
            DEMO_DEFAULT_START_S, DEMO_MAX_HOURS, DEMO_DEFAULT_HOURS, DEMO_MIXED_DEFAULT_FLOWS,
            DEMO_SYNFLOOD_DEFAULT_FLOWS, DEMO_SCAN16_DEFAULT_FLOWS, DEMO_FRAGMENTS_DEFAULT_FLOWS,
            DEMO_DNSNAMES_DEFAULT_FLOWS, DEMO_PROFILE_MAX_FLOWS);
}

#define bad_usage(...) tool_bad_usage(PROGRAM, usage, __VA_ARGS__)

/* Write every frame of TRACE to PATH. Return 0 or 1 after a message. */
static int write_pcap(const demo_trace *trace, const char *path)
{
    char err[512];
    if (demo_write_pcap(trace, path, err, sizeof err) != 0) {
        fprintf(stderr, PROGRAM ": error: %s\n", err);
        return 1;
    }
    return 0;
}

/* Generate and write a benchmark profile. Return the exit status. */
static int write_profile(demo_profile profile, const demo_config *office, uint64_t flows,
                         const char *output)
{
    demo_profile_config config = {profile, office->seed, office->start_s, flows};
    if (config.flows == 0)
        config.flows = demo_profile_default_flows(profile);
    demo_trace *trace = NULL;
    if (demo_generate_profile(&config, &trace) != 0) {
        fprintf(stderr, PROGRAM ": error: generating the trace failed: %s\n", strerror(errno));
        return 1;
    }
    int rc = write_pcap(trace, output);
    if (rc == 0)
        fprintf(stderr,
                PROGRAM ": wrote %zu packets, %zu conversations, %.1f MB (profile %s, seed %" PRIu64
                        ") to %s\n",
                demo_packet_count(trace), demo_flow_count(trace),
                (double)demo_pcap_bytes(trace) / 1e6,
                demo_profile_name(profile), config.seed, output);
    demo_trace_destroy(&trace);
    return rc;
}

int main(int argc, char **argv)
{
    demo_config config = {1, DEMO_DEFAULT_START_S, DEMO_DEFAULT_HOURS};
    const char *output = NULL;
    demo_profile profile = DEMO_PROFILE_OFFICE;
    uint64_t flows = 0; /* 0 = the profile's default */
    bool hours_given = false;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(opt, "--output") != 0 && strcmp(opt, "--seed") != 0 &&
            strcmp(opt, "--start") != 0 && strcmp(opt, "--hours") != 0 &&
            strcmp(opt, "--profile") != 0 && strcmp(opt, "--flows") != 0)
            return bad_usage("unknown option '%s'", opt);
        if (i + 1 >= argc)
            return bad_usage("option %s needs a value", opt);
        const char *value = argv[++i];
        uint64_t v = 0;
        if (strcmp(opt, "--output") == 0) {
            if (value[0] == '\0')
                return bad_usage("--output '%s' is empty; give a file name", value);
            output = value;
        } else if (strcmp(opt, "--seed") == 0) {
            if (tool_parse_u64(value, UINT64_MAX, &v) != 0)
                return bad_usage("--seed '%s' is invalid; use an unsigned decimal integer", value);
            config.seed = v;
        } else if (strcmp(opt, "--start") == 0) {
            /* pcap stores seconds in 32 bits; leave room for the duration. */
            uint64_t max_start = UINT32_MAX - (uint64_t)DEMO_MAX_HOURS * 3600u - 86400u;
            if (tool_parse_u64(value, max_start, &v) != 0)
                return bad_usage("--start '%s' is invalid; use seconds since 1970 before 2105",
                                 value);
            config.start_s = v;
        } else if (strcmp(opt, "--profile") == 0) {
            if (demo_profile_parse(value, &profile) != 0)
                return bad_usage("--profile '%s' is unknown; use office, mixed, synflood, "
                                 "scan16, fragments or dnsnames",
                                 value);
        } else if (strcmp(opt, "--flows") == 0) {
            if (tool_parse_u64(value, DEMO_PROFILE_MAX_FLOWS, &v) != 0 || v == 0)
                return bad_usage("--flows '%s' is out of range; use a whole number from 1 to %u",
                                 value, DEMO_PROFILE_MAX_FLOWS);
            flows = v;
        } else {
            hours_given = true;
            if (tool_parse_u64(value, DEMO_MAX_HOURS, &v) != 0 || v == 0)
                return bad_usage("--hours '%s' is out of range; use a whole number from 1 to %u",
                                 value, DEMO_MAX_HOURS);
            config.hours = (uint32_t)v;
        }
    }
    if (output == NULL)
        return bad_usage("%s", "--output FILE is missing");
    if (profile == DEMO_PROFILE_OFFICE && flows != 0)
        return bad_usage("%s", "--flows applies to the benchmark profiles only, not office");
    if (profile != DEMO_PROFILE_OFFICE && hours_given)
        return bad_usage("%s", "--hours applies to the office profile only; use --flows");
    if (profile != DEMO_PROFILE_OFFICE)
        return write_profile(profile, &config, flows, output);

    demo_trace *trace = NULL;
    if (demo_generate(&config, &trace) != 0) {
        fprintf(stderr, PROGRAM ": error: generating the trace failed: %s\n", strerror(errno));
        return 1;
    }
    int rc = write_pcap(trace, output);
    if (rc == 0) {
        uint64_t file_bytes = demo_pcap_bytes(trace);
        fprintf(stderr,
                PROGRAM ": wrote %zu packets, %zu conversations, %.1f MB over %u h (seed %" PRIu64
                        ") to %s; planted one beacon and one 120 MB upload\n",
                demo_packet_count(trace), demo_flow_count(trace), (double)file_bytes / 1e6,
                (unsigned)config.hours, config.seed, output);
    }
    demo_trace_destroy(&trace);
    return rc;
}
