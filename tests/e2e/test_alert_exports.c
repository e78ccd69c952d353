/*
 * test_alert_exports: `flowveil export`, `flowveil subject export`, the
 * batch Kafka export and the capturing process's live Kafka export all
 * write each alert with its life cycle (id string, state, count,
 * first_seen and last_seen in traffic time, raised, note), the object
 * the API shows. Kafka is librdkafka's in-process mock cluster.
 *
 * The demo capture (tools/demogen) raises a beacon of 10.1.0.23 and an
 * exfiltration of 10.1.0.42 under the example policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "e2e_util.h"
#include "store.h"
#include "testutil.h"

/* 2026-12-01T00:00:00Z, the ingest ("raise") time: the day after the
 * demo traffic (2026-11-30 from 08:00 UTC). */
#define NOW_S 1796083200ull
#define CLOSE_NOTE "known vendor update check"

static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 300, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        fail_msg("%s failed", tag);
    }
}

/* Consume partitions 0..3 of TOPIC from the start until WAIT_MS pass
 * without a message; return the values as a JSON array. */
static json_t *consume_topic(const char *bootstraps, const char *topic, unsigned wait_ms)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "flowveil-alerts", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(4);
    for (int32_t p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    json_t *out = json_array();
    unsigned idle_ms = 0;
    while (idle_ms < wait_ms) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (msg == NULL) {
            idle_ms += 100;
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_error_t jerr;
            json_t *v = json_loadb(msg->payload, msg->len, 0, &jerr);
            assert_non_null(v);
            json_array_append_new(out, v);
            idle_ms = 0;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}

/* The alert of ARRAY with detector DETECTOR; the last one when there
 * are several (the live export resends an alert on every merge). */
static json_t *alert_of(json_t *array, const char *detector)
{
    json_t *found = NULL;
    size_t i;
    json_t *a;
    json_array_foreach(array, i, a) {
        const char *d = json_string_value(json_object_get(a, "detector"));
        if (d != NULL && strcmp(d, detector) == 0)
            found = a;
    }
    if (found == NULL)
        fail_msg("no %s alert", detector);
    return found;
}

static const char *text_of(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v == NULL)
        fail_msg("member %s is missing or not a string", key);
    return v;
}

/* The life-cycle members every exported alert carries. */
static void check_life_cycle(json_t *a, const char *state)
{
    const char *id = text_of(a, "id");
    assert_true(strlen(id) > 0 && strspn(id, "0123456789") == strlen(id));
    assert_string_equal(text_of(a, "state"), state);
    assert_true(json_integer_value(json_object_get(a, "count")) >= 1);
    /* first_seen/last_seen are the traffic span ("first".."last"), which
     * the demo capture puts before the ingest time that raised it. */
    assert_string_equal(text_of(a, "first_seen"), text_of(a, "first"));
    assert_string_equal(text_of(a, "last_seen"), text_of(a, "last"));
    assert_true(strcmp(text_of(a, "last_seen"), "2026-12-01T00:00:00") < 0);
    assert_true(strncmp(text_of(a, "raised"), "2026-12-01T00:", 14) == 0);
    assert_non_null(json_object_get(a, "note"));
    assert_non_null(json_object_get(a, "state_changed_at"));
}

static void test_exports_carry_alert_life_cycle(void **state)
{
    (void)state;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(owner);
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(owner, 1);
    assert_non_null(cluster);
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, "live.alerts", 4, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(cluster, "batch.alerts", 4, 1), 0);

    char dir[4096], demo[4096], db[4096], policy[4096], example[4096], now_text[32];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(demo, dir, "demo.pcap");
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    snprintf(now_text, sizeof now_text, "%llu", NOW_S);
    e2e_result res;
    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    run_ok(gen, dir, "demogen", &res);
    e2e_result_free(&res);

    /* The example policy with a Kafka destination for the live export. */
    snprintf(example, sizeof example, "%s/policy/example-policy.yaml", e2e_source_dir());
    size_t len = 0;
    char *text = tu_read_file(example, &len);
    assert_non_null(text);
    char tail[1024];
    int n = snprintf(tail, sizeof tail,
                     "\nexport:\n  destinations:\n    - name: lake\n      kafka: \"%s\"\n"
                     "      topic_prefix: live.\n",
                     bootstraps);
    assert_true(n > 0 && (size_t)n < sizeof tail);
    char *full = malloc(len + (size_t)n + 1);
    assert_non_null(full);
    memcpy(full, text, len);
    memcpy(full + len, tail, (size_t)n + 1);
    tu_write_file(policy, full, len + (size_t)n);
    free(full);
    free(text);

    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now",   now_text, demo,     NULL};
    run_ok(ingest, dir, "ingest", &res);
    e2e_result_free(&res);

    /* flowveil export: both alerts, new, with their life cycle. */
    json_t *stored = e2e_export(dir, db, "alerts", NOW_S);
    assert_int_equal(json_array_size(stored), 2);
    check_life_cycle(alert_of(stored, "beacon"), "new");
    check_life_cycle(alert_of(stored, "exfil"), "new");
    assert_true(json_is_null(json_object_get(alert_of(stored, "beacon"), "state_changed_by")));

    /* The live export sent the same objects, plus the retention. */
    json_t *live = consume_topic(bootstraps, "live.alerts", 2000);
    const char *const detectors[] = {"beacon", "exfil"};
    for (size_t d = 0; d < 2; d++) {
        json_t *sent = alert_of(live, detectors[d]);
        assert_int_equal(json_integer_value(json_object_get(sent, "retention_s")), 90 * 86400);
        json_object_del(sent, "retention_s");
        if (!json_equal(sent, alert_of(stored, detectors[d]))) {
            char *a = json_dumps(sent, JSON_SORT_KEYS);
            char *b = json_dumps(alert_of(stored, detectors[d]), JSON_SORT_KEYS);
            print_error("live:   %s\nstored: %s\n", a, b);
            free(a);
            free(b);
            fail();
        }
    }
    json_decref(live);

    /* An analyst closes the beacon; every export shows it closed. */
    uint64_t beacon_id = strtoull(text_of(alert_of(stored, "beacon"), "id"), NULL, 10);
    store_env *store = NULL;
    assert_int_equal(store_open(db, STORE_EXISTING, &store, err, sizeof err), FV_OK);
    assert_int_equal(store_alert_transition(store, beacon_id, STORE_ALERT_CLOSED, CLOSE_NOTE,
                                            "analyst1", NOW_S * 1000000u + 5000000u, NULL),
                     FV_OK);
    store_close(&store);
    json_decref(stored);

    stored = e2e_export(dir, db, "alerts", NOW_S + 10);
    json_t *beacon = alert_of(stored, "beacon");
    check_life_cycle(beacon, "closed");
    assert_string_equal(text_of(beacon, "note"), CLOSE_NOTE);
    assert_string_equal(text_of(beacon, "state_changed_by"), "analyst1");
    assert_string_equal(text_of(beacon, "state_changed_at"), "2026-12-01T00:00:05.000000Z");

    /* flowveil export --kafka sends what flowveil export writes. */
    char later[32];
    snprintf(later, sizeof later, "%llu", NOW_S + 10);
    const char *batch_argv[] = {e2e_bin(), "export", "--db", db, "--kafka", bootstraps,
                                "--topic-prefix", "batch.", "--class", "alerts", "--now",
                                later, NULL};
    run_ok(batch_argv, dir, "export-kafka", &res);
    e2e_result_free(&res);
    json_t *batch = consume_topic(bootstraps, "batch.alerts", 2000);
    assert_int_equal(json_array_size(batch), 2);
    json_t *sent = alert_of(batch, "beacon");
    json_object_del(sent, "retention_s");
    assert_true(json_equal(sent, beacon));
    json_decref(batch);

    /* flowveil subject export of the beacon's host includes the closed alert. */
    char subject_out[4096];
    e2e_path(subject_out, dir, "subject.jsonl");
    const char *subject_argv[] = {e2e_bin(), "subject", "export", "--db", db, "--policy", policy,
                                  "--ip", "10.1.0.23", "--output", subject_out, "--now", later,
                                  NULL};
    run_ok(subject_argv, dir, "subject-export", &res);
    e2e_result_free(&res);
    char *lines = tu_read_file(subject_out, &len);
    assert_non_null(lines);
    json_t *subject_alert = NULL;
    for (char *line = lines; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        assert_non_null(rec);
        const char *cls = json_string_value(json_object_get(rec, "class"));
        if (cls != NULL && strcmp(cls, "alerts") == 0 && subject_alert == NULL)
            subject_alert = rec;
        else
            json_decref(rec);
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(lines);
    assert_non_null(subject_alert);
    assert_true(json_equal(subject_alert, beacon));
    json_decref(subject_alert);

    json_decref(stored);
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(owner);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exports_carry_alert_life_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
