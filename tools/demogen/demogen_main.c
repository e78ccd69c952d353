/*
 * flowveil-demogen: write the synthetic office trace (see demogen.h) to a
 * pcap file.
 *
 * Exit status: 0 on success, 1 if generating or writing failed, 2 on bad
 * usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "demogen.h"

#define PROGRAM "flowveil-demogen"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROGRAM " --output FILE [--seed N] [--start EPOCH_SECONDS] [--hours H]\n"
            "  --output FILE   pcap file to write (Ethernet, microsecond timestamps)\n"
            "  --seed N        random seed, an unsigned integer (default 1)\n"
            "  --start SECONDS first timestamp in seconds since the epoch, UTC\n"
            "                  (default %u, 2026-11-30T08:00:00Z)\n"
            "  --hours H       duration in whole hours, 1 to %u (default %u)\n",
            DEMO_DEFAULT_START_S, DEMO_MAX_HOURS, DEMO_DEFAULT_HOURS);
}

/* Parse TEXT as a decimal unsigned integer no greater than MAX. */
static int parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Print "PROGRAM: error: MESSAGE" and the usage; return exit status 2. */
__attribute__((format(printf, 1, 2))) static int bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROGRAM ": error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage(stderr);
    return 2;
}

/* Write every frame of TRACE to PATH. Return 0 or 1 after a message. */
static int write_pcap(const demo_trace *trace, const char *path)
{
    int rc = 1;
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t *dumper = NULL;
    if (dead == NULL) {
        fprintf(stderr, PROGRAM ": error: libpcap could not create a pcap handle\n");
        goto out;
    }
    dumper = pcap_dump_open(dead, path);
    if (dumper == NULL) {
        fprintf(stderr, PROGRAM ": error: %s: cannot open for writing: %s\n", path,
                pcap_geterr(dead));
        goto out;
    }

    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        struct pcap_pkthdr hdr;
        memset(&hdr, 0, sizeof hdr);
        hdr.ts.tv_sec = (time_t)(p.ts_us / 1000000u);
        hdr.ts.tv_usec = (suseconds_t)(p.ts_us % 1000000u);
        hdr.caplen = p.caplen;
        hdr.len = p.wirelen;
        pcap_dump((u_char *)dumper, &hdr, p.data);
    }
    if (pcap_dump_flush(dumper) != 0) {
        fprintf(stderr, PROGRAM ": error: %s: write failed: %s\n", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (dumper != NULL)
        pcap_dump_close(dumper);
    if (dead != NULL)
        pcap_close(dead);
    return rc;
}

int main(int argc, char **argv)
{
    demo_config config = {1, DEMO_DEFAULT_START_S, DEMO_DEFAULT_HOURS};
    const char *output = NULL;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(opt, "--output") != 0 && strcmp(opt, "--seed") != 0 &&
            strcmp(opt, "--start") != 0 && strcmp(opt, "--hours") != 0)
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
            if (parse_u64(value, UINT64_MAX, &v) != 0)
                return bad_usage("--seed '%s' is invalid; use an unsigned decimal integer", value);
            config.seed = v;
        } else if (strcmp(opt, "--start") == 0) {
            /* pcap stores seconds in 32 bits; leave room for the duration. */
            if (parse_u64(value, UINT32_MAX - (uint64_t)DEMO_MAX_HOURS * 3600u - 86400u, &v) != 0)
                return bad_usage("--start '%s' is invalid; use seconds since 1970 before 2105",
                                 value);
            config.start_s = v;
        } else {
            if (parse_u64(value, DEMO_MAX_HOURS, &v) != 0 || v == 0)
                return bad_usage("--hours '%s' is out of range; use a whole number from 1 to %u",
                                 value, DEMO_MAX_HOURS);
            config.hours = (uint32_t)v;
        }
    }
    if (output == NULL)
        return bad_usage("%s", "--output FILE is missing");

    demo_trace *trace = NULL;
    if (demo_generate(&config, &trace) != 0) {
        fprintf(stderr, PROGRAM ": error: generating the trace failed: %s\n", strerror(errno));
        return 1;
    }
    int rc = write_pcap(trace, output);
    if (rc == 0) {
        size_t file_bytes = 24; /* pcap file header */
        for (size_t i = 0; i < demo_packet_count(trace); i++)
            file_bytes += demo_packet_at(trace, i).caplen + 16u; /* record header + frame */
        fprintf(stderr,
                PROGRAM ": wrote %zu packets, %zu conversations, %.1f MB over %u h (seed %" PRIu64
                        ") to %s; planted one beacon and one 120 MB upload\n",
                demo_packet_count(trace), demo_flow_count(trace), (double)file_bytes / 1e6,
                (unsigned)config.hours, config.seed, output);
    }
    demo_trace_destroy(&trace);
    return rc;
}
