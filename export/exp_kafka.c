/*
 * exp_kafka.c: JSON Lines export to Kafka with librdkafka.
 *
 * Each record becomes one message: the JSON object of docs/EXPORT.md
 * with "retention_s" added, on topic PREFIX + class name. The message
 * key is the text form of the record's internal host (a pseudonym token
 * under the default policy), so Kafka's default partitioner keeps one
 * host's records in one partition and in order.
 *
 * Back-pressure: rd_kafka_producev is called without
 * RD_KAFKA_MSG_F_BLOCK, so when librdkafka's local queue holds
 * queue_max messages it returns RD_KAFKA_RESP_ERR__QUEUE_FULL at once
 * and the record is dropped and counted. Retries of a failed produce
 * request follow librdkafka's own settings (message.send.max.retries,
 * retry.backoff.ms, message.timeout.ms), which the configuration's
 * properties may override; a message that still fails is counted in the
 * delivery report as failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "exp_internal.h"
#include "policy.h"

struct exp_kafka {
    rd_kafka_t *rk;
};

/* Delivery report callback: runs inside rd_kafka_poll/rd_kafka_flush on
 * the caller's thread, so the counters need no lock. */
static void kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    exp_exporter *e = opaque;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        e->stats.delivered++;
    else
        e->stats.failed++;
}

/* librdkafka's own log lines go through flowveil's logger; they name
 * brokers, never records. */
static void kafka_on_log(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
    (void)rk;
    if (level <= 3)
        fv_error("kafka: %s: %s", facility, buf);
    else if (level <= 4)
        fv_warning("kafka: %s: %s", facility, buf);
    else
        fv_debug("kafka: %s: %s", facility, buf);
}

/* Set NAME=VALUE on CONF, with the reason in ERR on failure. */
static int kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                     size_t err_len)
{
    char reason[256];
    if (rd_kafka_conf_set(conf, name, value, reason, sizeof reason) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_len, "invalid Kafka property %s: %s", name, reason);
        return FV_ERR_INVALID;
    }
    return FV_OK;
}

int exp_kafka_create(exp_exporter *e, char *err, size_t err_len)
{
    int rc;
    char value[32];
    exp_kafka *k = calloc(1, sizeof *k);
    if (k == NULL)
        return FV_ERR_NOMEM;
    e->kafka = k;

    if (e->cfg.queue_max == 0) {
        snprintf(err, err_len, "the Kafka queue size is 0; set it to 1 or more messages");
        return FV_ERR_INVALID;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rc = kafka_set(conf, "bootstrap.servers", e->cfg.target, err, err_len);
    if (rc == FV_OK)
        rc = kafka_set(conf, "client.id", "flowveil", err, err_len);
    snprintf(value, sizeof value, "%u", e->cfg.queue_max);
    if (rc == FV_OK)
        rc = kafka_set(conf, "queue.buffering.max.messages", value, err, err_len);
    for (size_t i = 0; rc == FV_OK && i < e->cfg.property_count; i++) {
        char name[EXP_PROPERTY_MAX];
        const char *eq = strchr(e->cfg.properties[i], '=');
        if (eq == NULL || eq == e->cfg.properties[i]) {
            snprintf(err, err_len, "invalid Kafka property '%s': expected NAME=VALUE",
                     e->cfg.properties[i]);
            rc = FV_ERR_INVALID;
            break;
        }
        snprintf(name, sizeof name, "%.*s", (int)(eq - e->cfg.properties[i]),
                 e->cfg.properties[i]);
        /* Checked here as well as in the policy and the CLI, because
         * some properties load libraries or run commands in this process. */
        if (strcmp(name, "bootstrap.servers") == 0 || !pol_kafka_property_allowed(name)) {
            snprintf(err, err_len, "the Kafka property '%s' is not allowed; set the brokers with"
                     " the kafka target, and only security, client.id and delivery tuning"
                     " properties otherwise",
                     name);
            rc = FV_ERR_INVALID;
            break;
        }
        rc = kafka_set(conf, name, eq + 1, err, err_len);
    }
    if (rc != FV_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_on_delivery);
    rd_kafka_conf_set_log_cb(conf, kafka_on_log);
    rd_kafka_conf_set_opaque(conf, e);

    char reason[512];
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
    if (k->rk == NULL) {
        /* rd_kafka_new frees CONF only on success. */
        rd_kafka_conf_destroy(conf);
        snprintf(err, err_len, "cannot create the Kafka producer for %s: %s", e->cfg.target,
                 reason);
        return FV_ERR_INVALID;
    }
    return FV_OK;
}

/* Write the text form of the record's internal host into KEY: the
 * internal side of a flow or transaction (the client when both or
 * neither are internal), the alert's host, or an aggregate's zone. */
static void kafka_key(const fv_record *rec, char key[FV_ENDPOINT_TEXT_MAX])
{
    const fv_endpoint *a = NULL, *b = NULL;
    switch (rec->cls) {
    case FV_CLASS_FLOW: a = &rec->u.flow.src; b = &rec->u.flow.dst; break;
    case FV_CLASS_DNS: a = &rec->u.dns.client; b = &rec->u.dns.server; break;
    case FV_CLASS_TLS: a = &rec->u.tls.client; b = &rec->u.tls.server; break;
    case FV_CLASS_HTTP: a = &rec->u.http.client; b = &rec->u.http.server; break;
    case FV_CLASS_DHCP: a = &rec->u.dhcp.client; b = &rec->u.dhcp.server; break;
    case FV_CLASS_SSH: a = &rec->u.ssh.client; b = &rec->u.ssh.server; break;
    case FV_CLASS_ALERT: a = &rec->u.alert.host; b = &rec->u.alert.host; break;
    case FV_CLASS_AGGREGATE:
        snprintf(key, FV_ENDPOINT_TEXT_MAX, "%s", rec->u.aggregate.zone);
        return;
    case FV_CLASS_COUNT: break;
    }
    if (a == NULL) {
        key[0] = '\0';
        return;
    }
    const fv_endpoint *host = (!fv_endpoint_is_internal(a) && fv_endpoint_is_internal(b)) ? b : a;
    fv_endpoint_format(host, key);
}

int exp_kafka_put(exp_exporter *e, const fv_record *rec, const fv_alert_life *life)
{
    exp_kafka *k = e->kafka;
    char topic[EXP_TOPIC_PREFIX_MAX + 16];
    char key[FV_ENDPOINT_TEXT_MAX];

    bool with_life = life != NULL && rec->cls == FV_CLASS_ALERT;
    json_t *obj = with_life ? fv_alert_to_json(rec, life) : fv_record_to_json(rec);
    if (obj == NULL)
        return FV_ERR_NOMEM;
    /* In the capturing process the store key is not known yet; an alert
     * with its life cycle carries the id of its first record. */
    if (rec->id == 0 && !with_life)
        json_object_del(obj, "id");
    if (json_object_set_new(obj, "retention_s",
                            json_integer((json_int_t)e->cfg.retention_s[rec->cls])) != 0) {
        json_decref(obj);
        return FV_ERR_NOMEM;
    }
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        return FV_ERR_NOMEM;

    snprintf(topic, sizeof topic, "%s%s", e->cfg.topic_prefix, fv_class_name(rec->cls));
    kafka_key(rec, key);

    /* The argument array of rd_kafka_produceva rather than the
     * RD_KAFKA_V_ macros of rd_kafka_producev, whose type checks use GNU
     * statement expressions that a pedantic clang build rejects. */
    rd_kafka_vu_t args[4];
    memset(args, 0, sizeof args);
    args[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    args[0].u.cstr = topic;
    args[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    args[1].u.i = RD_KAFKA_MSG_F_COPY;
    args[2].vtype = RD_KAFKA_VTYPE_KEY;
    args[2].u.mem.ptr = key;
    args[2].u.mem.size = strlen(key);
    args[3].vtype = RD_KAFKA_VTYPE_VALUE;
    args[3].u.mem.ptr = text;
    args[3].u.mem.size = strlen(text);

    /* Each wait serves delivery reports for up to 10 ms, which frees
     * queue space as the broker acknowledges. */
    uint32_t waited_ms = 0;
    rd_kafka_resp_err_t err;
    for (;;) {
        rd_kafka_error_t *error = rd_kafka_produceva(k->rk, args, 4);
        err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (error != NULL) {
            err = rd_kafka_error_code(error);
            rd_kafka_error_destroy(error);
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited_ms >= e->cfg.full_wait_ms)
            break;
        rd_kafka_poll(k->rk, 10);
        waited_ms += 10;
    }
    free(text);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        e->stats.dropped_queue_full++;
    } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Unknown topic or partition, message too large and the like:
         * the record cannot be sent, so it counts as failed. */
        e->stats.failed++;
    } else {
        e->stats.sent++;
    }
    /* Serve delivery reports without waiting. */
    rd_kafka_poll(k->rk, 0);
    return FV_OK;
}

void exp_kafka_poll(exp_exporter *e)
{
    rd_kafka_poll(e->kafka->rk, 0);
}

int exp_kafka_flush(exp_exporter *e, uint32_t timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(e->kafka->rk, (int)timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fv_warning("Kafka export to %s: %d messages were still in flight after %u ms",
                   e->cfg.name, rd_kafka_outq_len(e->kafka->rk), timeout_ms);
        return FV_ERR_IO;
    }
    return FV_OK;
}

void exp_kafka_destroy(exp_kafka **kp)
{
    if (kp == NULL || *kp == NULL)
        return;
    exp_kafka *k = *kp;
    if (k->rk != NULL) {
        /* Messages still queued are purged, and their delivery reports
         * (counted as failed) are served before the handle goes. */
        rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->rk, 0);
        rd_kafka_destroy(k->rk);
    }
    free(k);
    *kp = NULL;
}
