/*
 * export_bench.c: export throughput of export/ in records per second.
 *
 *   bench_export kafka-mock RECORDS   librdkafka's in-process mock cluster
 *   bench_export ipfix HOST:PORT RECORDS   IPFIX over UDP to a collector
 *
 * Each record is a synthetic TCP flow between a pseudonymized internal
 * host (one of 1,000) and a kept external address; IPFIX sends it as
 * two data records. The clock (CLOCK_MONOTONIC) runs from the first
 * exp_put to the end of exp_flush, so Kafka figures include waiting for
 * every acknowledgement. Prints one line: "RECORDS records in SECONDS s:
 * RATE records/s (sent S, delivered D, failed F, dropped X)".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "export.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_flow(fv_flow_record *f, unsigned i)
{
    memset(f, 0, sizeof *f);
    f->first_us = 1764835200000000u + (uint64_t)i * 1000u;
    f->last_us = f->first_us + 800000u;
    f->src.kind = FV_EP_PSEUDO_IPV4;
    memset(f->src.addr, 0, sizeof f->src.addr);
    f->src.addr[0] = (uint8_t)(i % 1000u);
    f->src.addr[1] = (uint8_t)((i % 1000u) >> 8);
    snprintf(f->src.zone, sizeof f->src.zone, "office");
    f->dst.kind = FV_EP_IPV4;
    f->dst.addr[0] = 198;
    f->dst.addr[1] = 51;
    f->dst.addr[2] = 100;
    f->dst.addr[3] = (uint8_t)(i % 250u);
    snprintf(f->dst.zone, sizeof f->dst.zone, "external");
    f->sport = (uint16_t)(32768u + i % 28000u);
    f->dport = 443;
    f->proto = 6;
    f->tcp_flags_fwd = 0x1b;
    f->tcp_flags_rev = 0x1b;
    f->pkts_fwd = 10;
    f->pkts_rev = 12;
    f->bytes_fwd = 1200;
    f->bytes_rev = 15000;
}

static int run(exp_config *cfg, unsigned records)
{
    char err[512];
    exp_exporter *e = NULL;
    if (exp_create(cfg, &e, err, sizeof err) != FV_OK) {
        fprintf(stderr, "bench_export: %s\n", err);
        return 1;
    }
    fv_flow_record f;
    uint64_t now_us = 1764835300000000u;
    double start = now_s();
    for (unsigned i = 0; i < records; i++) {
        make_flow(&f, i);
        if (exp_put(e, FV_CLASS_FLOW, &f, i + 1u, now_us, now_us) != FV_OK) {
            fprintf(stderr, "bench_export: exp_put failed at record %u\n", i);
            exp_destroy(&e);
            return 1;
        }
        if (i % 1000u == 999u)
            (void)exp_poll(e, now_us);
    }
    int flush_rc = exp_flush(e, now_us, 60000);
    double elapsed = now_s() - start;
    exp_stats st;
    exp_stats_get(e, &st);
    exp_destroy(&e);
    printf("%u records in %.3f s: %.0f records/s (sent %llu, delivered %llu, failed %llu, "
           "dropped %llu)\n",
           records, elapsed, (double)records / elapsed, (unsigned long long)st.sent,
           (unsigned long long)st.delivered, (unsigned long long)st.failed,
           (unsigned long long)st.dropped_queue_full);
    return flush_rc == FV_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    exp_config cfg;
    if (argc == 3 && strcmp(argv[1], "kafka-mock") == 0) {
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
        rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (owner == NULL) {
            fprintf(stderr, "bench_export: %s\n", err);
            return 1;
        }
        rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(owner, 1);
        rd_kafka_mock_topic_create(cluster, "flowveil.flows", 4, 1);
        exp_config_init(&cfg, EXP_KAFKA);
        snprintf(cfg.target, sizeof cfg.target, "%s", rd_kafka_mock_cluster_bootstraps(cluster));
        /* Batch mode: wait for queue space instead of dropping. */
        cfg.full_wait_ms = 60000;
        int rc = run(&cfg, (unsigned)strtoul(argv[2], NULL, 10));
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(owner);
        return rc;
    }
    if (argc == 4 && strcmp(argv[1], "ipfix") == 0) {
        exp_config_init(&cfg, EXP_IPFIX);
        snprintf(cfg.target, sizeof cfg.target, "%s", argv[2]);
        return run(&cfg, (unsigned)strtoul(argv[3], NULL, 10));
    }
    fprintf(stderr, "usage: bench_export kafka-mock RECORDS\n"
                    "       bench_export ipfix HOST:PORT RECORDS\n");
    return 2;
}
