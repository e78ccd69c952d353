/*
 * pseudonym_bench: nanoseconds per anon_pseudonym call with and without
 * the per-epoch cache, over an address mix like an office network: HOSTS
 * internal IPv4 hosts, picked with Zipf-like (s = 1) reuse so a few hosts
 * send most packets. Each run uses the same pseudo-random sequence.
 *
 * usage: bench_pseudonym [--calls N] [--hosts H]
 * Prints one line per mode: "cache on|off  N calls  X ns/call".
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anonymize.h"

#define DEFAULT_CALLS 2000000u
#define DEFAULT_HOSTS 2000u
#define NOW_S 1767225600u

/* xorshift64*: a fixed, seedable sequence; no quality needs beyond that. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Fill PICKS with host indexes drawn with probability proportional to
 * 1/(rank + 1), by inverting the cumulative weights. */
static void make_zipf_picks(uint32_t *picks, size_t calls, uint32_t hosts)
{
    double *cumulative = malloc(hosts * sizeof *cumulative);
    if (cumulative == NULL) {
        fprintf(stderr, "bench_pseudonym: out of memory\n");
        exit(1);
    }
    double total = 0;
    for (uint32_t i = 0; i < hosts; i++) {
        total += 1.0 / (double)(i + 1);
        cumulative[i] = total;
    }
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t c = 0; c < calls; c++) {
        double u = (double)(next_random(&state) >> 11) / 9007199254740992.0 * total;
        uint32_t lo = 0, hi = hosts - 1;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (cumulative[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        picks[c] = lo;
    }
    free(cumulative);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Run CALLS pseudonyms and return ns per call; the sum of all outputs goes
 * to *SINK so the work cannot be optimized away. */
static double run(anon_ctx *anon, const uint32_t *picks, size_t calls, uint8_t *sink)
{
    double start = now_ns();
    for (size_t c = 0; c < calls; c++) {
        uint8_t addr[4] = {10, 1, (uint8_t)(picks[c] >> 8), (uint8_t)picks[c]};
        uint8_t out[FV_PSEUDONYM_BYTES];
        anon_pseudonym(anon, ANON_TYPE_IPV4, addr, sizeof addr, out);
        *sink = (uint8_t)(*sink + out[0]);
    }
    return (now_ns() - start) / (double)calls;
}

int main(int argc, char **argv)
{
    size_t calls = DEFAULT_CALLS;
    uint32_t hosts = DEFAULT_HOSTS;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--calls") == 0)
            calls = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--hosts") == 0)
            hosts = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    }
    if (calls == 0 || hosts == 0 || hosts > 65536) {
        fprintf(stderr, "bench_pseudonym: --calls must be above 0 and --hosts 1 to 65536\n");
        return 2;
    }

    char dir[] = "/tmp/flowveil-pseudonym-bench-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("bench_pseudonym: mkdtemp");
        return 1;
    }
    char key_path[sizeof dir + 32];
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", dir);

    uint32_t *picks = malloc(calls * sizeof *picks);
    anon_ctx *anon = NULL;
    char err[512];
    int rc = 1;
    if (picks == NULL) {
        fprintf(stderr, "bench_pseudonym: out of memory\n");
        goto out;
    }
    make_zipf_picks(picks, calls, hosts);
    if (anon_open(key_path, 86400, NOW_S, &anon, err, sizeof err) != FV_OK) {
        fprintf(stderr, "bench_pseudonym: %s\n", err);
        goto out;
    }

    uint8_t sink = 0;
    anon_set_cache(anon, false);
    double off = run(anon, picks, calls, &sink);
    anon_set_cache(anon, true);
    double on = run(anon, picks, calls, &sink);
    anon_cache_info info;
    anon_cache_stats(anon, &info);

    printf("pseudonym bench: %zu calls over %u hosts (Zipf-like reuse)\n", calls, hosts);
    printf("cache off  %8.1f ns/call\n", off);
    printf("cache on   %8.1f ns/call  (hit rate %.1f%%)\n", on,
           100.0 * (double)info.hits / (double)(info.hits + info.misses));
    printf("(checksum %02x)\n", sink);
    rc = 0;

out:
    anon_close(&anon);
    free(picks);
    unlink(key_path);
    rmdir(dir);
    return rc;
}
