/*
 * test_export_kafka.c: the Kafka exporter against librdkafka's
 * in-process mock cluster (rdkafka_mock.h), which listens on 127.0.0.1.
 * Records are produced through exp_put, consumed back with a real
 * consumer and compared with the JSON the store export writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "export.h"

#define PARTITIONS 4

typedef struct mock {
    rd_kafka_t *rk;                 /* the handle that owns the cluster */
    rd_kafka_mock_cluster_t *cluster;
    char bootstraps[256];
} mock;

static void mock_start(mock *m)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(m->rk);
    m->cluster = rd_kafka_mock_cluster_new(m->rk, 1);
    assert_non_null(m->cluster);
    snprintf(m->bootstraps, sizeof m->bootstraps, "%s",
             rd_kafka_mock_cluster_bootstraps(m->cluster));
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, "flowveil.flows", PARTITIONS, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, "flowveil.dns", PARTITIONS, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void mock_stop(mock *m)
{
    rd_kafka_mock_cluster_destroy(m->cluster);
    rd_kafka_destroy(m->rk);
}

/* A flow from internal host HOST (pseudonym bytes HOST, zone office) to
 * the kept external address 93.184.216.34. */
static void make_flow(fv_flow_record *f, uint8_t host, unsigned i)
{
    memset(f, 0, sizeof *f);
    f->first_us = 1764835200000000u + i * 1000000u;
    f->last_us = f->first_us + 250000u;
    f->src.kind = FV_EP_PSEUDO_IPV4;
    memset(f->src.addr, host, sizeof f->src.addr);
    snprintf(f->src.zone, sizeof f->src.zone, "office");
    f->dst.kind = FV_EP_IPV4;
    f->dst.addr[0] = 93;
    f->dst.addr[1] = 184;
    f->dst.addr[2] = 216;
    f->dst.addr[3] = 34;
    snprintf(f->dst.zone, sizeof f->dst.zone, "external");
    f->sport = (uint16_t)(40000 + i);
    f->dport = 443;
    f->proto = 6;
    f->pkts_fwd = 3 + i;
    f->pkts_rev = 2 + i;
    f->bytes_fwd = 300 + i;
    f->bytes_rev = 9000 + i;
}

static exp_exporter *make_exporter(const mock *m, uint32_t queue_max, exp_config *cfg)
{
    exp_config_init(cfg, EXP_KAFKA);
    snprintf(cfg->target, sizeof cfg->target, "%s", m->bootstraps);
    cfg->queue_max = queue_max;
    cfg->retention_s[FV_CLASS_FLOW] = 2592000;
    cfg->retention_s[FV_CLASS_DNS] = 604800;
    exp_exporter *e = NULL;
    char err[512];
    int rc = exp_create(cfg, &e, err, sizeof err);
    if (rc != FV_OK)
        print_error("exp_create: %s\n", err);
    assert_int_equal(rc, FV_OK);
    return e;
}

/* One consumed message. */
typedef struct consumed {
    char topic[64];
    int32_t partition;
    char key[FV_ENDPOINT_TEXT_MAX];
    json_t *value;
} consumed;

/* Consume every partition of TOPICS from the start until COUNT messages
 * arrived or 20 seconds passed. Returns the number consumed. */
static size_t consume(const mock *m, const char *const *topics, size_t topic_count, consumed *out,
                      size_t count)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "flowveil-test", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(PARTITIONS * 2);
    for (size_t t = 0; t < topic_count; t++) {
        for (int32_t p = 0; p < PARTITIONS; p++)
            rd_kafka_topic_partition_list_add(parts, topics[t], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    size_t n = 0;
    time_t deadline = time(NULL) + 20;
    while (n < count && time(NULL) < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            consumed *c = &out[n++];
            snprintf(c->topic, sizeof c->topic, "%s", rd_kafka_topic_name(msg->rkt));
            c->partition = msg->partition;
            snprintf(c->key, sizeof c->key, "%.*s", (int)msg->key_len, (const char *)msg->key);
            json_error_t jerr;
            c->value = json_loadb(msg->payload, msg->len, 0, &jerr);
            assert_non_null(c->value);
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

#define HOSTS 3
#define FLOWS_PER_HOST 8

static void test_kafka_records_consumed_back_equal(void **state)
{
    (void)state;
    mock m;
    mock_start(&m);
    exp_config cfg;
    exp_exporter *e = make_exporter(&m, 1000, &cfg);

    /* 24 flows of 3 hosts, interleaved, and one DNS record. */
    static fv_record sent[HOSTS * FLOWS_PER_HOST + 1];
    size_t sent_count = 0;
    uint64_t now_us = 1764835300000000u;
    for (unsigned i = 0; i < FLOWS_PER_HOST; i++) {
        for (uint8_t h = 0; h < HOSTS; h++) {
            fv_record *r = &sent[sent_count];
            memset(r, 0, sizeof *r);
            r->cls = FV_CLASS_FLOW;
            r->id = 1000 + sent_count;
            r->stored_us = now_us + sent_count;
            make_flow(&r->u.flow, (uint8_t)(0x11 * (h + 1)), i);
            assert_int_equal(exp_put_record(e, r, now_us), FV_OK);
            sent_count++;
        }
    }
    fv_record *d = &sent[sent_count];
    memset(d, 0, sizeof *d);
    d->cls = FV_CLASS_DNS;
    d->id = 5000;
    d->stored_us = now_us;
    d->u.dns.ts_us = 1764835201000000u;
    d->u.dns.client = sent[0].u.flow.src;
    d->u.dns.server = sent[0].u.flow.dst;
    d->u.dns.client_port = 53000;
    d->u.dns.server_port = 53;
    d->u.dns.transport = 17;
    d->u.dns.qtype = 1;
    snprintf(d->u.dns.qname, sizeof d->u.dns.qname, "www.example.org");
    assert_int_equal(exp_put(e, FV_CLASS_DNS, &d->u.dns, d->id, d->stored_us, now_us), FV_OK);
    sent_count++;

    assert_int_equal(exp_flush(e, now_us, 10000), FV_OK);
    exp_stats st;
    exp_stats_get(e, &st);
    assert_int_equal(st.sent, sent_count);
    assert_int_equal(st.delivered, sent_count);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.dropped_queue_full, 0);
    exp_destroy(&e);

    static consumed got[64];
    static const char *const topics[] = {"flowveil.flows", "flowveil.dns"};
    size_t n = consume(&m, topics, 2, got, sent_count);
    assert_int_equal(n, sent_count);

    int32_t partition_of_host[HOSTS] = {-1, -1, -1};
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_object_get(got[i].value, "id");
        assert_non_null(id);
        const fv_record *r = NULL;
        for (size_t k = 0; k < sent_count; k++)
            if ((json_int_t)sent[k].id == json_integer_value(id))
                r = &sent[k];
        assert_non_null(r);

        /* The message is the store export's JSON plus retention_s. */
        json_t *expected = fv_record_to_json(r);
        json_object_set_new(expected, "retention_s",
                            json_integer((json_int_t)cfg.retention_s[r->cls]));
        if (!json_equal(expected, got[i].value)) {
            char *a = json_dumps(expected, JSON_SORT_KEYS), *b = json_dumps(got[i].value,
                                                                              JSON_SORT_KEYS);
            print_error("expected %s\n     got %s\n", a, b);
            free(a);
            free(b);
        }
        assert_true(json_equal(expected, got[i].value));
        json_decref(expected);

        char topic[64];
        snprintf(topic, sizeof topic, "flowveil.%s", fv_class_name(r->cls));
        assert_string_equal(got[i].topic, topic);

        /* Keyed by the internal host's token; one host, one partition. */
        char token[FV_ENDPOINT_TEXT_MAX];
        const fv_endpoint *host = r->cls == FV_CLASS_FLOW ? &r->u.flow.src : &r->u.dns.client;
        fv_endpoint_format(host, token);
        assert_string_equal(got[i].key, token);
        if (r->cls == FV_CLASS_FLOW) {
            unsigned h = (unsigned)(host->addr[0] / 0x11) - 1;
            assert_true(h < HOSTS);
            if (partition_of_host[h] < 0)
                partition_of_host[h] = got[i].partition;
            assert_int_equal(got[i].partition, partition_of_host[h]);
        }
        json_decref(got[i].value);
    }
    mock_stop(&m);
}

static void test_kafka_full_queue_drops_without_waiting(void **state)
{
    (void)state;
    mock m;
    mock_start(&m);
    /* With the only broker down nothing leaves the local queue. */
    assert_int_equal(rd_kafka_mock_broker_set_down(m.cluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    exp_config cfg;
    exp_exporter *e = make_exporter(&m, 5, &cfg);

    fv_flow_record f;
    uint64_t now_us = 1764835300000000u;
    for (unsigned i = 0; i < 50; i++) {
        make_flow(&f, 0x22, i);
        assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, i + 1, now_us, now_us), FV_OK);
    }
    exp_stats st;
    exp_stats_get(e, &st);
    assert_int_equal(st.sent, 5);
    assert_int_equal(st.dropped_queue_full, 45);
    assert_int_equal(st.delivered, 0);

    /* Back up: the queued five are delivered, the dropped stay dropped. */
    assert_int_equal(rd_kafka_mock_broker_set_up(m.cluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(exp_flush(e, now_us, 15000), FV_OK);
    exp_stats_get(e, &st);
    assert_int_equal(st.delivered, 5);
    assert_int_equal(st.dropped_queue_full, 45);
    exp_destroy(&e);

    static consumed got[64];
    static const char *const topics[] = {"flowveil.flows"};
    size_t n = consume(&m, topics, 1, got, 5);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        json_decref(got[i].value);
    mock_stop(&m);
}

static void test_kafka_topic_prefix_and_class_filter(void **state)
{
    (void)state;
    mock m;
    mock_start(&m);
    assert_int_equal(rd_kafka_mock_topic_create(m.cluster, "site1-flows", PARTITIONS, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    exp_config cfg;
    exp_config_init(&cfg, EXP_KAFKA);
    snprintf(cfg.target, sizeof cfg.target, "%s", m.bootstraps);
    snprintf(cfg.topic_prefix, sizeof cfg.topic_prefix, "site1-");
    cfg.classes = EXP_CLASS_BIT(FV_CLASS_FLOW);
    exp_exporter *e = NULL;
    char err[512];
    assert_int_equal(exp_create(&cfg, &e, err, sizeof err), FV_OK);

    fv_flow_record f;
    make_flow(&f, 0x33, 1);
    static fv_dns_record dns;
    memset(&dns, 0, sizeof dns);
    uint64_t now_us = 1764835300000000u;
    assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 0, now_us, now_us), FV_OK);
    assert_int_equal(exp_put(e, FV_CLASS_DNS, &dns, 0, now_us, now_us), FV_OK);
    assert_int_equal(exp_flush(e, now_us, 10000), FV_OK);
    exp_stats st;
    exp_stats_get(e, &st);
    assert_int_equal(st.delivered, 1);
    assert_int_equal(st.filtered, 1);
    exp_destroy(&e);

    static consumed got[4];
    static const char *const topics[] = {"site1-flows"};
    assert_int_equal(consume(&m, topics, 1, got, 1), 1);
    /* Records without a store id (the capturing process) have no "id". */
    assert_null(json_object_get(got[0].value, "id"));
    assert_int_equal(json_integer_value(json_object_get(got[0].value, "sport")), 40001);
    json_decref(got[0].value);
    mock_stop(&m);
}

static void test_kafka_rejects_invalid_property(void **state)
{
    (void)state;
    exp_config cfg;
    exp_config_init(&cfg, EXP_KAFKA);
    snprintf(cfg.target, sizeof cfg.target, "127.0.0.1:9");
    snprintf(cfg.properties[0], sizeof cfg.properties[0], "no.such.property=1");
    cfg.property_count = 1;
    exp_exporter *e = NULL;
    char err[512];
    assert_int_equal(exp_create(&cfg, &e, err, sizeof err), FV_ERR_INVALID);
    assert_null(e);
    assert_non_null(strstr(err, "no.such.property"));

    snprintf(cfg.properties[0], sizeof cfg.properties[0], "novalue");
    assert_int_equal(exp_create(&cfg, &e, err, sizeof err), FV_ERR_INVALID);
    assert_non_null(strstr(err, "expected NAME=VALUE"));

    /* Properties that load code or run commands never reach librdkafka,
     * whose own message for them would differ. */
    static const char *const code_loading[] = {
        "plugin.library.paths=/nonexistent/plug.so",
        "ssl.engine.location=/nonexistent/engine.so",
        "sasl.kerberos.kinit.cmd=touch /nonexistent/ran",
        "bootstrap.servers=127.0.0.1:1",
    };
    for (size_t i = 0; i < sizeof code_loading / sizeof code_loading[0]; i++) {
        snprintf(cfg.properties[0], sizeof cfg.properties[0], "%s", code_loading[i]);
        assert_int_equal(exp_create(&cfg, &e, err, sizeof err), FV_ERR_INVALID);
        assert_null(e);
        assert_non_null(strstr(err, "is not allowed"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_records_consumed_back_equal),
        cmocka_unit_test(test_kafka_full_queue_drops_without_waiting),
        cmocka_unit_test(test_kafka_topic_prefix_and_class_filter),
        cmocka_unit_test(test_kafka_rejects_invalid_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
