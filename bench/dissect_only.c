/*
 * dissect_only: the dissection side of the benchmark. Feeds every frame
 * of a capture to a cap_engine through cap_read_file, with a sink that
 * only counts events: link and network decoding, flow tracking and the
 * protocol parsers run, pseudonymization and storage do not.
 *
 * usage: dissect_only FILE [REPEAT]
 * Reads FILE REPEAT times (default 1), each time with a new engine, and
 * prints the totals as "packets N flows N dns N tls N http N evicted N",
 * where evicted counts flows pushed out of the full flow table (default
 * bound, as in flowveil ingest). Exit status 0, or 1 if the file cannot
 * be read.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "capture.h"

typedef struct event_counts {
    uint64_t flows, dns, tls, http, evicted;
} event_counts;

static void count_flow(void *ctx, const cap_flow *flow)
{
    (void)flow;
    ((event_counts *)ctx)->flows++;
}

static void count_dns(void *ctx, const cap_dns *dns)
{
    (void)dns;
    ((event_counts *)ctx)->dns++;
}

static void count_tls(void *ctx, const cap_tls *tls)
{
    (void)tls;
    ((event_counts *)ctx)->tls++;
}

static void count_http(void *ctx, const cap_http *http)
{
    (void)http;
    ((event_counts *)ctx)->http++;
}

/* Read PATH once with a new engine, adding to the counters. Returns 0 or
 * 1 after a message. */
static int read_once(const char *path, event_counts *counts, uint64_t *packets)
{
    cap_sink sink = {0};
    cap_engine *engine = NULL;
    cap_stats st;
    char err[512];
    int rc;

    sink.ctx = counts;
    sink.on_flow = count_flow;
    sink.on_dns = count_dns;
    sink.on_tls = count_tls;
    sink.on_http = count_http;

    rc = cap_engine_create(NULL, &sink, &engine);
    if (rc != FV_OK) {
        fprintf(stderr, "dissect_only: creating the engine failed: %s\n", fv_strerror(rc));
        return 1;
    }
    rc = cap_read_file(engine, path, NULL, NULL, err, sizeof err);
    cap_engine_flush(engine);
    cap_engine_stats(engine, &st);
    cap_engine_destroy(&engine);
    if (rc != FV_OK) {
        fprintf(stderr, "dissect_only: %s\n", err);
        return 1;
    }
    *packets += st.packets;
    counts->evicted += st.flows_evicted;
    return 0;
}

int main(int argc, char **argv)
{
    event_counts counts = {0, 0, 0, 0, 0};
    uint64_t packets = 0;
    unsigned long repeat = argc == 3 ? strtoul(argv[2], NULL, 10) : 1;

    if (argc < 2 || argc > 3 || repeat == 0) {
        fprintf(stderr, "usage: dissect_only FILE [REPEAT]\n");
        return 2;
    }
    for (unsigned long i = 0; i < repeat; i++) {
        if (read_once(argv[1], &counts, &packets) != 0)
            return 1;
    }
    printf("packets %" PRIu64 " flows %" PRIu64 " dns %" PRIu64 " tls %" PRIu64 " http %" PRIu64
           " evicted %" PRIu64 "\n",
           packets, counts.flows, counts.dns, counts.tls, counts.http, counts.evicted);
    return 0;
}
