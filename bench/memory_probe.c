/*
 * memory_probe.c: run the capture engine over a capture file with a given
 * memory bound and print how much of the bound it used, for
 * bench/memory.sh.
 *
 * usage: bench_memory_probe [--max-memory-mib N] FILE
 *
 * Prints one line of "name value" pairs: packets, flows created and
 * evicted (all and for memory), fragment datagrams evicted, the bound
 * and the highest count of bytes, flows and stream states seen after any
 * packet. Exit status 0, 1 when reading failed, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"

typedef struct probe {
    cap_engine *engine;
    cap_memory peak;
} probe;

static void keep_max(uint64_t *peak, uint64_t now)
{
    if (now > *peak)
        *peak = now;
}

static int on_frame(void *ctx, int linktype, uint64_t ts_us, const uint8_t *data, uint32_t caplen,
                    uint32_t wirelen)
{
    probe *p = ctx;
    cap_memory now;
    int rc = cap_engine_packet(p->engine, linktype, ts_us, data, caplen, wirelen);

    cap_engine_memory(p->engine, &now);
    keep_max(&p->peak.used_bytes, now.used_bytes);
    keep_max(&p->peak.flow_bytes, now.flow_bytes);
    keep_max(&p->peak.stream_bytes, now.stream_bytes);
    keep_max(&p->peak.frag_bytes, now.frag_bytes);
    keep_max(&p->peak.flows, now.flows);
    keep_max(&p->peak.stream_states, now.stream_states);
    p->peak.limit_bytes = now.limit_bytes;
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_memory_probe [--max-memory-mib N] FILE\n"
                    "  --max-memory-mib N  the engine's memory bound in MiB (default %llu)\n",
            (unsigned long long)(CAP_MEMORY_DEFAULT_BYTES >> 20));
    return 2;
}

int main(int argc, char **argv)
{
    cap_config cfg;
    cap_sink sink;
    probe p;
    cap_stats st;
    char err[512];
    const char *file = NULL;
    int rc;

    memset(&cfg, 0, sizeof cfg);
    memset(&sink, 0, sizeof sink);
    memset(&p, 0, sizeof p);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-memory-mib") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            unsigned long long mib = strtoull(argv[++i], &end, 10);
            if (errno != 0 || end == argv[i] || *end != '\0' || mib == 0 || mib > (1ull << 20)) {
                fprintf(stderr, "bench_memory_probe: --max-memory-mib '%s' is invalid; give "
                                "a whole number of MiB from 1 to 1048576\n",
                        argv[i]);
                return 2;
            }
            cfg.max_memory_bytes = (uint64_t)mib << 20;
        } else if (argv[i][0] == '-' || file != NULL) {
            return usage();
        } else {
            file = argv[i];
        }
    }
    if (file == NULL)
        return usage();

    rc = cap_engine_create(&cfg, &sink, &p.engine);
    if (rc != FV_OK) {
        fprintf(stderr, "bench_memory_probe: creating the engine failed: %s\n", fv_strerror(rc));
        return 1;
    }
    rc = cap_read_file_frames(file, NULL, NULL, on_frame, &p, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "bench_memory_probe: %s\n", err);
        cap_engine_destroy(&p.engine);
        return 1;
    }
    cap_engine_flush(p.engine);
    cap_engine_stats(p.engine, &st);
    printf("packets %" PRIu64 " flows_created %" PRIu64 " flows_evicted %" PRIu64
           " flows_evicted_memory %" PRIu64 " frag_evicted %" PRIu64 " limit_bytes %" PRIu64
           " peak_used_bytes %" PRIu64 " peak_flow_bytes %" PRIu64 " peak_stream_bytes %" PRIu64
           " peak_frag_bytes %" PRIu64 " peak_flows %" PRIu64 " peak_stream_states %" PRIu64 "\n",
           st.packets, st.flows_created, st.flows_evicted, st.flows_evicted_memory,
           st.frag_evicted, p.peak.limit_bytes, p.peak.used_bytes, p.peak.flow_bytes,
           p.peak.stream_bytes, p.peak.frag_bytes, p.peak.flows, p.peak.stream_states);
    cap_engine_destroy(&p.engine);
    return 0;
}
