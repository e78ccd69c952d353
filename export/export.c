/*
 * export.c: configuration, class filter and dispatch to the IPFIX and
 * Kafka transports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp_internal.h"

void exp_config_init(exp_config *cfg, exp_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->template_refresh_s = EXP_TEMPLATE_REFRESH_S_DEFAULT;
    cfg->template_refresh_messages = EXP_TEMPLATE_REFRESH_MESSAGES_DEFAULT;
    cfg->queue_max = EXP_KAFKA_QUEUE_MAX_DEFAULT;
    snprintf(cfg->topic_prefix, sizeof cfg->topic_prefix, "%s", EXP_TOPIC_PREFIX_DEFAULT);
}

int exp_parse_host_port(const char *text, char *host, size_t host_len, char *port,
                        size_t port_len)
{
    if (text == NULL || host == NULL || port == NULL)
        return FV_ERR_INVALID;

    const char *host_start = text;
    size_t host_n;
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return FV_ERR_INVALID;
        host_start = text + 1;
        host_n = (size_t)(close - host_start);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || strchr(text, ':') != colon)
            return FV_ERR_INVALID;  /* a bare IPv6 address needs brackets */
        host_n = (size_t)(colon - text);
    }
    const char *port_text = colon + 1;
    size_t port_n = strlen(port_text);
    if (host_n == 0 || host_n + 1 > host_len || port_n == 0 || port_n + 1 > port_len)
        return FV_ERR_INVALID;

    unsigned long value = 0;
    for (size_t i = 0; i < port_n; i++) {
        if (port_text[i] < '0' || port_text[i] > '9')
            return FV_ERR_INVALID;
        value = value * 10 + (unsigned long)(port_text[i] - '0');
        if (value > 65535)
            return FV_ERR_INVALID;
    }
    if (value == 0)
        return FV_ERR_INVALID;

    memcpy(host, host_start, host_n);
    host[host_n] = '\0';
    memcpy(port, port_text, port_n + 1);
    return FV_OK;
}

bool exp_ipfix_carries(fv_class cls)
{
    return cls == FV_CLASS_FLOW || cls == FV_CLASS_DNS || cls == FV_CLASS_TLS;
}

int exp_create(const exp_config *cfg, exp_exporter **out, char *err, size_t err_len)
{
    int rc;
    exp_exporter *e = NULL;

    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (cfg == NULL || out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (cfg->kind != EXP_IPFIX && cfg->kind != EXP_KAFKA) {
        snprintf(err, err_len, "unknown export kind %d; use ipfix or kafka", (int)cfg->kind);
        return FV_ERR_INVALID;
    }
    if (cfg->target[0] == '\0') {
        snprintf(err, err_len, "the export destination has no %s; set it",
                 cfg->kind == EXP_IPFIX ? "collector HOST:PORT" : "Kafka bootstrap servers");
        return FV_ERR_INVALID;
    }

    e = calloc(1, sizeof *e);
    if (e == NULL)
        return FV_ERR_NOMEM;
    e->cfg = *cfg;
    if (e->cfg.name[0] == '\0')
        snprintf(e->cfg.name, sizeof e->cfg.name, "%.*s", (int)sizeof e->cfg.name - 1,
                 cfg->target);

    if (cfg->kind == EXP_IPFIX)
        rc = exp_ipfix_create(e, err, err_len);
    else
        rc = exp_kafka_create(e, err, err_len);
    if (rc != FV_OK)
        goto out;
    *out = e;
    e = NULL;

out:
    exp_destroy(&e);
    return rc;
}

/* True if the destination takes records of CLS; counts the others. */
static bool exp_selects(exp_exporter *e, fv_class cls)
{
    if ((unsigned)cls >= FV_CLASS_COUNT) {
        e->stats.unsupported++;
        return false;
    }
    if (e->cfg.classes != 0 && (e->cfg.classes & EXP_CLASS_BIT(cls)) == 0) {
        e->stats.filtered++;
        return false;
    }
    if (e->cfg.kind == EXP_IPFIX && !exp_ipfix_carries(cls)) {
        e->stats.unsupported++;
        return false;
    }
    return true;
}

/* Size of the fv_*_record of CLS, 0 for an invalid class. */
static size_t exp_record_size(fv_class cls)
{
    switch (cls) {
    case FV_CLASS_FLOW: return sizeof(fv_flow_record);
    case FV_CLASS_DNS: return sizeof(fv_dns_record);
    case FV_CLASS_TLS: return sizeof(fv_tls_record);
    case FV_CLASS_HTTP: return sizeof(fv_http_record);
    case FV_CLASS_ALERT: return sizeof(fv_alert_record);
    case FV_CLASS_DHCP: return sizeof(fv_dhcp_record);
    case FV_CLASS_SSH: return sizeof(fv_ssh_record);
    case FV_CLASS_AGGREGATE: return sizeof(fv_aggregate_record);
    case FV_CLASS_COUNT: break;
    }
    return 0;
}

int exp_put(exp_exporter *e, fv_class cls, const void *rec, uint64_t id, uint64_t stored_us,
            uint64_t now_us)
{
    if (e == NULL || rec == NULL)
        return FV_ERR_INVALID;
    if (!exp_selects(e, cls))
        return FV_OK;
    if (e->cfg.kind == EXP_IPFIX)
        return exp_ipfix_put(e, cls, rec, now_us);

    /* The JSON encoder takes a whole fv_record; copy into the scratch
     * record rather than onto the stack (a DNS record is several KiB). */
    size_t size = exp_record_size(cls);
    e->scratch.cls = cls;
    e->scratch.id = id;
    e->scratch.stored_us = stored_us;
    memcpy(&e->scratch.u, rec, size);
    return exp_kafka_put(e, &e->scratch, NULL);
}

int exp_put_record(exp_exporter *e, const fv_record *rec, uint64_t now_us)
{
    if (e == NULL || rec == NULL)
        return FV_ERR_INVALID;
    if (!exp_selects(e, rec->cls))
        return FV_OK;
    if (e->cfg.kind == EXP_IPFIX)
        return exp_ipfix_put(e, rec->cls, &rec->u, now_us);
    return exp_kafka_put(e, rec, NULL);
}

int exp_put_alert(exp_exporter *e, const fv_record *rec, const fv_alert_life *life,
                  uint64_t now_us)
{
    if (e == NULL || rec == NULL || life == NULL || rec->cls != FV_CLASS_ALERT)
        return FV_ERR_INVALID;
    if (!exp_selects(e, rec->cls))
        return FV_OK;
    if (e->cfg.kind == EXP_IPFIX)
        return exp_ipfix_put(e, rec->cls, &rec->u, now_us);
    return exp_kafka_put(e, rec, life);
}

int exp_poll(exp_exporter *e, uint64_t now_us)
{
    if (e == NULL)
        return FV_ERR_INVALID;
    if (e->cfg.kind == EXP_IPFIX)
        return exp_ipfix_poll(e, now_us);
    exp_kafka_poll(e);
    return FV_OK;
}

int exp_flush(exp_exporter *e, uint64_t now_us, uint32_t timeout_ms)
{
    if (e == NULL)
        return FV_ERR_INVALID;
    if (e->cfg.kind == EXP_IPFIX)
        return exp_ipfix_flush(e, now_us);
    return exp_kafka_flush(e, timeout_ms);
}

void exp_stats_get(const exp_exporter *e, exp_stats *out)
{
    if (e == NULL) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = e->stats;
}

const char *exp_name(const exp_exporter *e)
{
    return e != NULL ? e->cfg.name : "";
}

void exp_destroy(exp_exporter **e)
{
    if (e == NULL || *e == NULL)
        return;
    exp_ipfix_destroy(&(*e)->ipfix);
    exp_kafka_destroy(&(*e)->kafka);
    free(*e);
    *e = NULL;
}
