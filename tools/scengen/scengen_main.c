/*
 * flowveil-scengen: write the labelled detection scenario (see scengen.h)
 * into a directory: scenario.pcap, truth.jsonl, policy.yaml,
 * indicators.txt, indicators.csv and scenario.json.
 *
 * Exit status: 0 on success, 1 if generating or writing failed, 2 on bad
 * usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scengen.h"
#include "tool_cli.h"

#define PROGRAM "flowveil-scengen"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROGRAM " --output-dir DIR [--small] [--seed N] [--days D] [--hosts H]\n"
            "                        [--start EPOCH_SECONDS]\n"
            "  --output-dir DIR  directory to write into (created if missing): scenario.pcap,\n"
            "                    truth.jsonl, policy.yaml, indicators.txt, indicators.csv,\n"
            "                    scenario.json\n"
            "  --small           the CI scenario: %u days, %u hosts (--days and --hosts\n"
            "                    given after it override)\n"
            "  --seed N          random seed, an unsigned integer (default 1)\n"
            "  --days D          days of traffic, %u to %u (default %u); incidents are\n"
            "                    planted after the first half, the learning period\n"
            "  --hosts H         office hosts, %u to %u (default %u)\n"
            "  --start SECONDS   first day's midnight in seconds since the epoch, UTC; the\n"
            "                    rhythm assumes a Monday (default %u, 2026-11-30)\n",
            SG_SMALL_DAYS, SG_SMALL_HOSTS, 2u, SG_MAX_DAYS, SG_DEFAULT_DAYS, SG_MIN_HOSTS,
            SG_MAX_HOSTS, SG_DEFAULT_HOSTS, SG_DEFAULT_START_S);
}

#define bad_usage(...) tool_bad_usage(PROGRAM, usage, __VA_ARGS__)

/* Write TEXT to DIR/NAME. Return 0 or -1 after a message. */
static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        fprintf(stderr, PROGRAM ": error: %s/%s: path too long\n", dir, name);
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, PROGRAM ": error: %s: cannot open for writing: %s\n", path,
                strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, PROGRAM ": error: %s: write failed: %s\n", path, strerror(errno));
    return rc;
}

int main(int argc, char **argv)
{
    sg_config config = {1, SG_DEFAULT_START_S, SG_DEFAULT_DAYS, SG_DEFAULT_HOSTS};
    const char *dir = NULL;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(opt, "--small") == 0) {
            config.days = SG_SMALL_DAYS;
            config.hosts = SG_SMALL_HOSTS;
            continue;
        }
        if (strcmp(opt, "--output-dir") != 0 && strcmp(opt, "--seed") != 0 &&
            strcmp(opt, "--days") != 0 && strcmp(opt, "--hosts") != 0 &&
            strcmp(opt, "--start") != 0)
            return bad_usage("unknown option '%s'", opt);
        if (i + 1 >= argc)
            return bad_usage("option %s needs a value", opt);
        const char *value = argv[++i];
        uint64_t v = 0;
        if (strcmp(opt, "--output-dir") == 0) {
            if (value[0] == '\0')
                return bad_usage("--output-dir is empty; give a directory");
            dir = value;
        } else if (strcmp(opt, "--seed") == 0) {
            if (tool_parse_u64(value, UINT64_MAX, &v) != 0)
                return bad_usage("--seed '%s' is invalid; use an unsigned decimal integer", value);
            config.seed = v;
        } else if (strcmp(opt, "--days") == 0) {
            if (tool_parse_u64(value, SG_MAX_DAYS, &v) != 0 || v < 2)
                return bad_usage("--days '%s' is out of range; use a whole number from 2 to %u",
                                 value, SG_MAX_DAYS);
            config.days = (uint32_t)v;
        } else if (strcmp(opt, "--hosts") == 0) {
            if (tool_parse_u64(value, SG_MAX_HOSTS, &v) != 0 || v < SG_MIN_HOSTS)
                return bad_usage("--hosts '%s' is out of range; use a whole number from %u to %u",
                                 value, SG_MIN_HOSTS, SG_MAX_HOSTS);
            config.hosts = (uint32_t)v;
        } else {
            /* pcap stores seconds in 32 bits; leave room for the days. */
            if (tool_parse_u64(value, UINT32_MAX - SG_MAX_DAYS * 86400ull, &v) != 0)
                return bad_usage("--start '%s' is invalid; use seconds since 1970 before 2100",
                                 value);
            config.start_s = v;
        }
    }
    if (dir == NULL)
        return bad_usage("--output-dir DIR is missing");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, PROGRAM ": error: %s: cannot create the directory: %s\n", dir,
                strerror(errno));
        return 1;
    }

    demo_trace *trace = NULL;
    sg_files files;
    if (sg_generate(&config, &trace, &files) != 0) {
        fprintf(stderr, PROGRAM ": error: generating the scenario failed: %s\n", strerror(errno));
        return 1;
    }

    int rc = 1;
    char path[4096], err[512];
    if ((size_t)snprintf(path, sizeof path, "%s/scenario.pcap", dir) >= sizeof path) {
        fprintf(stderr, PROGRAM ": error: %s: path too long\n", dir);
        goto out;
    }
    if (demo_write_pcap(trace, path, err, sizeof err) != 0) {
        fprintf(stderr, PROGRAM ": error: %s\n", err);
        goto out;
    }
    if (write_text(dir, "truth.jsonl", files.truth) != 0 ||
        write_text(dir, "policy.yaml", files.policy) != 0 ||
        write_text(dir, "indicators.txt", files.indicators_plain) != 0 ||
        write_text(dir, "indicators.csv", files.indicators_csv) != 0 ||
        write_text(dir, "scenario.json", files.summary) != 0)
        goto out;
    fprintf(stderr,
            PROGRAM ": wrote %zu packets, %zu conversations, %.1f MB over %u days for %u hosts "
                    "(seed %" PRIu64 ") and %zu planted events to %s\n",
            demo_packet_count(trace), demo_flow_count(trace),
            (double)demo_pcap_bytes(trace) / 1e6, (unsigned)config.days, (unsigned)config.hosts,
            config.seed, files.events, dir);
    rc = 0;
out:
    sg_files_free(&files);
    demo_trace_destroy(&trace);
    return rc;
}
