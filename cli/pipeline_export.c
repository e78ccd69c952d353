/*
 * pipeline_export.c: export destinations of the capturing process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_json.h"
#include "export.h"
#include "pipeline_export.h"

/* How long closing waits for the last Kafka acknowledgements. */
#define EXPORT_CLOSE_TIMEOUT_MS 5000u
/* How often the export counters are added to the store. */
#define EXPORT_COUNTERS_INTERVAL_US (60u * 1000000u)

struct fv_export_set {
    size_t count;
    exp_exporter *exporters[POL_EXPORT_DESTINATIONS_MAX];
    exp_stats saved;                /* totals already added to the store */
    uint64_t last_counters_us;
};

/* Translate the policy's destination D into an exporter configuration. */
static void export_config_from_policy(const fv_pipeline *p, const pol_export_dest *d,
                                      exp_config *cfg)
{
    exp_config_init(cfg, d->kind == POL_EXPORT_IPFIX ? EXP_IPFIX : EXP_KAFKA);
    snprintf(cfg->name, sizeof cfg->name, "%s", d->name);
    snprintf(cfg->target, sizeof cfg->target, "%s", d->target);
    cfg->tcp = d->tcp;
    cfg->classes = d->classes;
    if (d->template_refresh_s != 0)
        cfg->template_refresh_s = d->template_refresh_s;
    cfg->template_refresh_messages = d->template_refresh_messages;
    cfg->observation_domain = d->observation_domain;
    if (d->topic_prefix[0] != '\0')
        snprintf(cfg->topic_prefix, sizeof cfg->topic_prefix, "%s", d->topic_prefix);
    if (d->queue_max != 0)
        cfg->queue_max = d->queue_max;
    /* full_wait_ms stays 0: a full queue drops, capture never waits. */
    cfg->property_count = d->property_count;
    for (size_t i = 0; i < d->property_count; i++)
        snprintf(cfg->properties[i], sizeof cfg->properties[i], "%s", d->properties[i]);
    /* From the policy, not the store: the exporters open before the
     * store so a bad destination leaves no store behind. */
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++)
        cfg->retention_s[c] = c == FV_CLASS_AGGREGATE
                                  ? pol_aggregates_retention_s(p->policy)
                                  : pol_retention_s(p->policy, (fv_class)c);
}

int fv_pipeline_export_open(fv_pipeline *p, char *err, size_t err_len)
{
    const pol_export *ex = pol_export_config(p->policy);
    if (ex->count == 0)
        return FV_OK;

    struct fv_export_set *set = calloc(1, sizeof *set);
    exp_config *cfg = malloc(sizeof *cfg);
    int rc = FV_OK;
    if (set == NULL || cfg == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < ex->count; i++) {
        char reason[512];
        export_config_from_policy(p, &ex->dest[i], cfg);
        exp_exporter *e = NULL;
        rc = exp_create(cfg, &e, reason, sizeof reason);
        if (rc == FV_ERR_IO) {
            fv_error("export destination %s is left out until the next start: %s",
                     ex->dest[i].name, reason);
            rc = FV_OK;
            continue;
        }
        if (rc != FV_OK) {
            snprintf(err, err_len, "export destination %s: %s", ex->dest[i].name, reason);
            goto out;
        }
        set->exporters[set->count++] = e;
        fv_info("exporting records to %s (%s %s)", ex->dest[i].name,
                ex->dest[i].kind == POL_EXPORT_IPFIX ? "IPFIX" : "Kafka",
                ex->dest[i].kind == POL_EXPORT_IPFIX ? (ex->dest[i].tcp ? "over TCP"
                                                                        : "over UDP")
                                                     : "producer");
    }
    p->exports = set;
    set = NULL;

out:
    if (set != NULL) {
        for (size_t i = 0; i < set->count; i++)
            exp_destroy(&set->exporters[i]);
        free(set);
    }
    free(cfg);
    return rc;
}

void fv_pipeline_export(fv_pipeline *p, fv_class cls, const void *rec, uint64_t now_us)
{
    struct fv_export_set *set = p->exports;
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++) {
        int rc = exp_put(set->exporters[i], cls, rec, 0, now_us, now_us);
        if (rc == FV_ERR_NOMEM)
            fv_warning("export to %s: out of memory, record not sent",
                       exp_name(set->exporters[i]));
    }
}

void fv_pipeline_export_alert(fv_pipeline *p, uint64_t id, uint64_t now_us)
{
    struct fv_export_set *set = p->exports;
    if (set == NULL || id == 0)
        return;
    fv_record *rec = malloc(sizeof *rec);
    store_alert_status *st = malloc(sizeof *st);
    int rc = rec != NULL && st != NULL ? store_alert_find(p->store, id, now_us, rec, st)
                                       : FV_ERR_NOMEM;
    if (rc != FV_OK) {
        fv_warning("export: alert %llu not sent: %s", (unsigned long long)id, fv_strerror(rc));
        goto out;
    }
    fv_alert_life life;
    cli_alert_life_from(st, &life);
    for (size_t i = 0; i < set->count; i++) {
        rc = exp_put_alert(set->exporters[i], rec, &life, now_us);
        if (rc == FV_ERR_NOMEM)
            fv_warning("export to %s: out of memory, alert not sent",
                       exp_name(set->exporters[i]));
    }
out:
    free(st);
    free(rec);
}

/* Sum the counters of every destination. */
static void export_totals(const struct fv_export_set *set, exp_stats *total)
{
    memset(total, 0, sizeof *total);
    for (size_t i = 0; i < set->count; i++) {
        exp_stats s;
        exp_stats_get(set->exporters[i], &s);
        total->sent += s.sent;
        total->delivered += s.delivered;
        total->failed += s.failed;
        total->dropped_queue_full += s.dropped_queue_full;
    }
}

/* Add the change of the summed counters since the last call to the
 * store's capture counters, which `flowveil serve` shows. */
static void export_save_counters(fv_pipeline *p, struct fv_export_set *set)
{
    static const char *const names[] = {"export_sent", "export_delivered", "export_failed",
                                        "export_dropped_queue_full"};
    exp_stats now;
    export_totals(set, &now);
    uint64_t values[] = {
        now.sent - set->saved.sent,
        now.delivered - set->saved.delivered,
        now.failed - set->saved.failed,
        now.dropped_queue_full - set->saved.dropped_queue_full,
    };
    int rc = store_capture_counters_add(p->store, names, values, sizeof values / sizeof values[0]);
    if (rc != FV_OK) {
        fv_warning("could not store the export counters: %s", fv_strerror(rc));
        return;
    }
    set->saved = now;
}

void fv_pipeline_export_tick(fv_pipeline *p, uint64_t now_us)
{
    struct fv_export_set *set = p->exports;
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++)
        (void)exp_poll(set->exporters[i], now_us);
    if (now_us - set->last_counters_us >= EXPORT_COUNTERS_INTERVAL_US) {
        export_save_counters(p, set);
        set->last_counters_us = now_us;
    }
}

void fv_pipeline_export_close(fv_pipeline *p)
{
    struct fv_export_set *set = p->exports;
    if (set == NULL)
        return;
    uint64_t now_us = fv_pipeline_now_us(p);
    for (size_t i = 0; i < set->count; i++) {
        exp_exporter *e = set->exporters[i];
        (void)exp_flush(e, now_us, EXPORT_CLOSE_TIMEOUT_MS);
        exp_stats s;
        exp_stats_get(e, &s);
        fv_info("export to %s: %llu records sent, %llu delivered, %llu failed, %llu dropped "
                "because the queue was full",
                exp_name(e), (unsigned long long)s.sent, (unsigned long long)s.delivered,
                (unsigned long long)s.failed, (unsigned long long)s.dropped_queue_full);
    }
    if (p->store != NULL)
        export_save_counters(p, set);
    for (size_t i = 0; i < set->count; i++)
        exp_destroy(&set->exporters[i]);
    free(set);
    p->exports = NULL;
}
