/*
 * store_bench: LMDB ingest rate and retention sweep pauses of store/.
 *
 * usage: store_bench seed DIR N
 *   Store N synthetic flow records (pseudonymized internal side, kept
 *   external side, traffic spread over the 30 days before the seed time),
 *   with hourly aggregate records for that span and 2,000 alerts, through
 *   store_put (encrypted, 4,096 records per transaction). Prints
 *   "seeded N flows in S s: R records/s".
 *
 * usage: store_bench sweep DIR [BATCH]
 *   Make every flow record of DIR expire and delete them with store_sweep
 *   in transactions of BATCH records (default 10,000), as a writer would
 *   between its own writes: after each sweep transaction this process
 *   stores 100 new flow records and commits. A reader process queries
 *   the newest 50 flows of the same store in a loop meanwhile. Prints the
 *   sweep's total time, the longest single sweep call (the longest time
 *   the writer waits), the longest store_put + store_commit, and the
 *   reader's query count, 99th percentile and maximum latency.
 *
 * Times are wall-clock (CLOCK_MONOTONIC). Exit status 0, 1 on a runtime
 * error, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define US_PER_S 1000000ull
#define HOUR_US (3600ull * US_PER_S)
#define SEED_NOW_S 1796025600ull /* 2026-11-30T08:00:00Z */
#define SEED_SPAN_US (30ull * 24 * HOUR_US)
#define FLOW_RETENTION_S (90ull * 86400)
#define SWEEP_AFTER_S (100ull * 86400)  /* sweep time, past the retention limit */
#define ALERTS 2000u
#define WRITES_PER_STEP 100u
#define READER_LIMIT 50u
#define READER_SAMPLES_MAX 1000000u

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * US_PER_S + (uint64_t)ts.tv_nsec / 1000u;
}

/* A pseudonym-like internal endpoint for host number HOST. */
static void internal_endpoint(fv_endpoint *ep, uint32_t host)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_PSEUDO_IPV4;
    for (unsigned i = 0; i < FV_PSEUDONYM_BYTES; i++)
        ep->addr[i] = (uint8_t)((host >> (8 * (i % 4))) * 131u + i * 29u);
    snprintf(ep->zone, sizeof ep->zone, "office");
}

/* A kept external address in 198.18.0.0/15 (reserved for benchmarks). */
static void external_endpoint(fv_endpoint *ep, uint32_t peer)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_IPV4;
    ep->addr[0] = 198;
    ep->addr[1] = (uint8_t)(18 + (peer >> 16) % 2);
    ep->addr[2] = (uint8_t)(peer >> 8);
    ep->addr[3] = (uint8_t)peer;
    snprintf(ep->zone, sizeof ep->zone, FV_ZONE_EXTERNAL);
}

static void make_flow(uint64_t i, uint64_t first_us, fv_flow_record *f)
{
    memset(f, 0, sizeof *f);
    f->first_us = first_us;
    f->last_us = first_us + (i % 30) * US_PER_S + 200000;
    internal_endpoint(&f->src, (uint32_t)(i * 2654435761u % 2000u));
    external_endpoint(&f->dst, (uint32_t)(i * 40503u % 20000u));
    f->sport = (uint16_t)(32768 + i % 28000);
    f->dport = i % 5 == 0 ? 53 : 443;
    f->proto = i % 5 == 0 ? 17 : 6;
    f->end_reason = i % 5 == 0 ? FV_END_IDLE : FV_END_FIN;
    f->pkts_fwd = 3 + i % 11;
    f->pkts_rev = 2 + i % 13;
    f->bytes_fwd = 300 + (i % 17) * 700;
    f->bytes_rev = 1500 + (i % 23) * 3000;
}

static int seed(const char *dir, uint64_t count)
{
    char err[512];
    store_env *st = NULL;
    uint64_t now_us = SEED_NOW_S * US_PER_S;
    uint64_t start_us = now_us - SEED_SPAN_US;
    int rc = store_open(dir, 0, &st, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    rc = store_set_retention(st, FV_CLASS_FLOW, FLOW_RETENTION_S);
    for (fv_class c = FV_CLASS_DNS; c < FV_CLASS_COUNT && rc == FV_OK; c++)
        rc = store_set_retention(st, c, 365ull * 86400);

    uint64_t t0 = mono_us();
    for (uint64_t i = 0; i < count && rc == FV_OK; i++) {
        fv_flow_record f;
        make_flow(i, start_us + i * (SEED_SPAN_US / count), &f);
        rc = store_put(st, FV_CLASS_FLOW, &f, now_us);
    }
    if (rc == FV_OK)
        rc = store_commit(st);
    uint64_t flow_us = mono_us() - t0;

    /* Hourly aggregates: 40 peers and two ports per hour, as the pipeline
     * writes them for the busiest destinations. */
    for (uint64_t h = 0; h < SEED_SPAN_US / HOUR_US && rc == FV_OK; h++) {
        for (uint32_t k = 0; k < 80 && rc == FV_OK; k++) {
            fv_aggregate_record a;
            memset(&a, 0, sizeof a);
            a.bucket_start_us = start_us - start_us % HOUR_US + h * HOUR_US;
            a.bucket_s = 3600;
            snprintf(a.zone, sizeof a.zone, "office");
            a.proto = k % 2 ? 6 : 17;
            external_endpoint(&a.peer, k / 2);
            a.dport = k % 2 ? 443 : 53;
            a.flows = count / (SEED_SPAN_US / HOUR_US) / 80 + 1;
            a.packets = a.flows * 12;
            a.bytes_in = a.flows * 9000;
            a.bytes_out = a.flows * 2000;
            a.hosts = 1 + k % 50;
            rc = store_put(st, FV_CLASS_AGGREGATE, &a, now_us);
        }
    }
    for (uint32_t i = 0; i < ALERTS && rc == FV_OK; i++) {
        fv_alert_record a;
        memset(&a, 0, sizeof a);
        a.ts_us = start_us + (uint64_t)i * (SEED_SPAN_US / ALERTS);
        a.first_us = a.ts_us - HOUR_US;
        a.last_us = a.ts_us;
        a.detector = i % 2 ? FV_DET_EXFIL : FV_DET_BEACON;
        a.severity = (uint8_t)(FV_SEV_LOW + i % 4);
        a.score = 0.5;
        internal_endpoint(&a.host, i % 2000u);
        external_endpoint(&a.peer, i);
        a.peer_port = 443;
        a.proto = 6;
        a.flow_count = 20;
        snprintf(a.summary, sizeof a.summary, "synthetic alert number %u", i + 1);
        rc = store_put(st, FV_CLASS_ALERT, &a, now_us);
    }
    if (rc == FV_OK)
        rc = store_commit(st);
    store_close(&st);
    if (rc != FV_OK) {
        fprintf(stderr, "store_bench: seeding %s failed: %s\n", dir, fv_strerror(rc));
        return 1;
    }
    printf("seeded %" PRIu64 " flows in %.2f s: %.0f records/s\n", count, (double)flow_us / 1e6,
           (double)count / ((double)flow_us / 1e6));
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bool count_record(void *ctx, const fv_record *rec)
{
    (void)rec;
    (*(uint64_t *)ctx)++;
    return true;
}

/* The reader process: wait for the start byte on START_FD, then query
 * until STOP_FD has data (or is closed); write "queries p99_us max_us"
 * to RESULT_FD. */
static int reader(const char *dir, int start_fd, int stop_fd, int result_fd)
{
    char byte;
    if (read(start_fd, &byte, 1) != 1)
        return 1;
    char err[512];
    store_env *st = NULL;
    if (store_open(dir, STORE_RDONLY, &st, err, sizeof err) != FV_OK) {
        fprintf(stderr, "store_bench reader: %s\n", err);
        return 1;
    }
    uint64_t *samples = calloc(READER_SAMPLES_MAX, sizeof *samples);
    if (samples == NULL)
        return 1;
    size_t n = 0;
    uint64_t now_us = (SEED_NOW_S + SWEEP_AFTER_S) * US_PER_S;
    for (;;) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(stop_fd, &fds);
        struct timeval zero = {0, 0};
        if (select(stop_fd + 1, &fds, NULL, NULL, &zero) != 0)
            break;
        store_query q = {FV_CLASS_FLOW, 0, 0, 0, READER_LIMIT, true, 0};
        uint64_t found = 0, t0 = mono_us();
        int rc = store_query_run(st, &q, now_us, count_record, &found, NULL);
        uint64_t dt = mono_us() - t0;
        if (rc != FV_OK) {
            fprintf(stderr, "store_bench reader: query failed: %s\n", fv_strerror(rc));
            break;
        }
        if (n < READER_SAMPLES_MAX)
            samples[n++] = dt;
    }
    store_close(&st);
    qsort(samples, n, sizeof *samples, compare_u64);
    char line[128];
    int len = snprintf(line, sizeof line, "%zu %" PRIu64 " %" PRIu64 "\n", n,
                       n > 0 ? samples[n * 99 / 100] : 0, n > 0 ? samples[n - 1] : 0);
    free(samples);
    return write(result_fd, line, (size_t)len) == len ? 0 : 1;
}

static int sweep(const char *dir, uint32_t batch)
{
    int start_pipe[2], stop_pipe[2], result_pipe[2];
    if (pipe(start_pipe) != 0 || pipe(stop_pipe) != 0 || pipe(result_pipe) != 0) {
        fprintf(stderr, "store_bench: pipe failed: %s\n", strerror(errno));
        return 1;
    }
    /* Fork before this process opens the store: LMDB forbids using an
     * environment across fork. */
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "store_bench: fork failed: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0)
        _exit(reader(dir, start_pipe[0], stop_pipe[0], result_pipe[1]));

    char err[512];
    store_env *st = NULL;
    int rc = store_open(dir, 0, &st, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "store_bench: %s\n", err);
        kill(child, SIGTERM);
        return 1;
    }
    uint64_t now_us = (SEED_NOW_S + SWEEP_AFTER_S) * US_PER_S;
    uint64_t written = 0, max_sweep_us = 0, max_write_us = 0, calls = 0;
    store_sweep_result total;
    memset(&total, 0, sizeof total);

    /* Fresh records first, so the reader's newest-first page is found
     * without walking expired ones. */
    for (uint32_t i = 0; i < 1000 && rc == FV_OK; i++, written++) {
        fv_flow_record f;
        make_flow(written, now_us - HOUR_US + written * 1000u, &f);
        rc = store_put(st, FV_CLASS_FLOW, &f, now_us);
    }
    if (rc == FV_OK)
        rc = store_commit(st);
    if (write(start_pipe[1], "s", 1) != 1)
        rc = FV_ERR_IO;
    usleep(200000); /* let the reader open the store */

    uint64_t t_start = mono_us();
    bool complete = false;
    while (rc == FV_OK && !complete) {
        store_sweep_result r;
        uint64_t t0 = mono_us();
        rc = store_sweep(st, now_us, batch, 1, &r);
        uint64_t dt = mono_us() - t0;
        if (rc != FV_OK)
            break;
        calls++;
        if (dt > max_sweep_us)
            max_sweep_us = dt;
        for (unsigned c = 0; c < FV_CLASS_COUNT; c++)
            total.deleted[c] += r.deleted[c];

        t0 = mono_us();
        for (uint32_t i = 0; i < WRITES_PER_STEP && rc == FV_OK; i++, written++) {
            fv_flow_record f;
            make_flow(written, now_us - HOUR_US + written * 1000u, &f);
            rc = store_put(st, FV_CLASS_FLOW, &f, now_us);
        }
        if (rc == FV_OK)
            rc = store_commit(st);
        dt = mono_us() - t0;
        if (dt > max_write_us)
            max_write_us = dt;
        /* Each call resumes at the class where the previous one ran out
         * of its budget of one transaction, as the pipeline's tick does. */
        complete = r.complete;
    }
    if (rc == FV_OK && !complete) {
        store_sweep_result r;
        uint64_t t0 = mono_us();
        rc = store_sweep(st, now_us, batch, 0, &r);
        uint64_t dt = mono_us() - t0;
        calls++;
        if (dt > max_sweep_us)
            max_sweep_us = dt;
        for (unsigned c = 0; c < FV_CLASS_COUNT; c++)
            total.deleted[c] += r.deleted[c];
    }
    uint64_t sweep_total_us = mono_us() - t_start;
    store_close(&st);

    if (write(stop_pipe[1], "x", 1) != 1)
        rc = FV_ERR_IO;
    char line[128] = "";
    ssize_t got = read(result_pipe[0], line, sizeof line - 1);
    if (got > 0)
        line[got] = '\0';
    int status = 0;
    waitpid(child, &status, 0);
    if (rc != FV_OK) {
        fprintf(stderr, "store_bench: sweep of %s failed: %s\n", dir, fv_strerror(rc));
        return 1;
    }
    unsigned long long queries = 0, p99 = 0, max = 0;
    if (sscanf(line, "%llu %llu %llu", &queries, &p99, &max) != 3 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "store_bench: the reader process failed\n");
        return 1;
    }
    printf("swept %" PRIu64 " flows in %.2f s with %" PRIu64 " calls of batch %u: "
           "longest sweep call %.1f ms, longest put+commit of %u records %.1f ms; "
           "reader %llu queries, p99 %.2f ms, max %.2f ms\n",
           total.deleted[FV_CLASS_FLOW], (double)sweep_total_us / 1e6, calls, (unsigned)batch,
           (double)max_sweep_us / 1e3, WRITES_PER_STEP, (double)max_write_us / 1e3, queries,
           (double)p99 / 1e3, (double)max / 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "seed") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(argv[3], &end, 10);
        if (errno == 0 && end != argv[3] && *end == '\0' && n > 0)
            return seed(argv[2], n);
    } else if ((argc == 3 || argc == 4) && strcmp(argv[1], "sweep") == 0) {
        unsigned long batch = 10000;
        if (argc == 4) {
            char *end = NULL;
            batch = strtoul(argv[3], &end, 10);
            if (end == argv[3] || *end != '\0' || batch == 0 || batch > 1000000)
                batch = 0;
        }
        if (batch != 0)
            return sweep(argv[2], (uint32_t)batch);
    }
    fprintf(stderr, "usage: store_bench seed DIR N\n"
                    "       store_bench sweep DIR [BATCH]\n"
                    "  N: flow records to store; BATCH: records per sweep transaction, "
                    "1 to 1000000 (default 10000)\n");
    return 2;
}
