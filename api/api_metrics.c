/*
 * api_metrics.c: GET /metrics in the Prometheus text exposition format
 * 0.0.4.
 *
 * Most values come from the store, written there by the capturing
 * process (ingest and capture counters, gauges at each tick, retention
 * history), so `serve` can report them without talking to that process.
 * The HTTP request counters are this server process's own.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* Status codes 100 .. 599 are counted; others go to the "other" slot 0. */
#define API_STATUS_SLOTS 600u

static _Atomic uint64_t api_status_counts[API_STATUS_SLOTS];

void api_metrics_count(unsigned status)
{
    unsigned slot = status >= 100u && status < API_STATUS_SLOTS ? status : 0u;
    atomic_fetch_add_explicit(&api_status_counts[slot], 1u, memory_order_relaxed);
}

/* A growing text buffer. */
typedef struct api_text {
    char *buf;
    size_t len, cap;
    bool nomem;
} api_text;

static void api_text_printf(api_text *t, const char *fmt, ...) FV_PRINTF(2, 3);

static void api_text_printf(api_text *t, const char *fmt, ...)
{
    if (t->nomem)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->nomem = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *grown = realloc(t->buf, cap);
        if (grown == NULL) {
            t->nomem = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static void api_metric_head(api_text *t, const char *name, const char *type, const char *help)
{
    api_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Capture counters by name, collected from the store. */
typedef struct api_capture_values {
    api_text *text;
    uint64_t kernel, interface, queue, reassembly;
} api_capture_values;

static bool api_capture_value(void *ctx, const char *name, uint64_t value)
{
    api_capture_values *c = ctx;
    if (strcmp(name, "pcap_dropped") == 0)
        c->kernel = value;
    else if (strcmp(name, "pcap_if_dropped") == 0)
        c->interface = value;
    else if (strcmp(name, "queue_dropped_records") == 0)
        c->queue += value;
    else if (strcmp(name, "tcp_ooo_dropped") == 0 || strcmp(name, "frag_evicted") == 0 ||
             strcmp(name, "frag_too_many") == 0)
        c->reassembly += value;
    /* flows_active is a gauge, reported from the meta value instead. */
    if (strcmp(name, "flows_active") != 0)
        api_text_printf(c->text, "flowveil_capture_events_total{counter=\"%s\"} %llu\n", name,
                        (unsigned long long)value);
    return true;
}

int api_metrics_render(api_server *srv, char **out, size_t *len)
{
    api_text t = {0};
    store_counters counters = {0};
    store_class_status status[FV_CLASS_COUNT];
    uint64_t flows_active = 0, epoch_start_s = 0;
    uint64_t alert_states[3] = {0, 0, 0};
    uint64_t now_us = srv->clock_us();
    api_capture_values cap = {.text = &t};

    *out = NULL;
    *len = 0;
    t.cap = 8192;
    t.buf = malloc(t.cap);
    if (t.buf == NULL)
        return FV_ERR_NOMEM;
    t.buf[0] = '\0';

    /* The capture counters are printed while they are read, so their
     * head comes first; everything else is read in the same section. */
    api_metric_head(&t, "flowveil_capture_events_total", "counter",
                    "Capture and parser counters summed over every capture and ingest run.");
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_capture_counters_each(srv->store, api_capture_value, &cap);
    if (rc == FV_OK)
        rc = store_counters_get(srv->store, &counters);
    for (int c = 0; rc == FV_OK && c < FV_CLASS_COUNT; c++)
        rc = store_class_status_get(srv->store, (fv_class)c, now_us, &status[c]);
    if (rc == FV_OK)
        rc = store_meta_get(srv->store, STORE_META_FLOWS_ACTIVE, &flows_active);
    if (rc == FV_OK)
        rc = store_meta_get(srv->store, STORE_META_EPOCH_START, &epoch_start_s);
    if (rc == FV_OK)
        rc = store_alert_state_counts(srv->store, now_us, alert_states);
    uint64_t undecryptable = store_undecryptable_total(srv->store);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc != FV_OK) {
        free(t.buf);
        return rc;
    }

    api_metric_head(&t, "flowveil_packets_total", "counter",
                    "Packets read by every capture and ingest run into this store.");
    api_text_printf(&t, "flowveil_packets_total %llu\n", (unsigned long long)counters.packets);

    api_metric_head(&t, "flowveil_drops_total", "counter",
                    "Data lost: kernel (pcap buffer) and interface (driver) packets, queue "
                    "(records dropped between workers and the writer), reassembly (TCP "
                    "segments and IP fragments dropped from full buffers).");
    api_text_printf(&t, "flowveil_drops_total{source=\"kernel\"} %llu\n",
                    (unsigned long long)cap.kernel);
    api_text_printf(&t, "flowveil_drops_total{source=\"interface\"} %llu\n",
                    (unsigned long long)cap.interface);
    api_text_printf(&t, "flowveil_drops_total{source=\"queue\"} %llu\n",
                    (unsigned long long)cap.queue);
    api_text_printf(&t, "flowveil_drops_total{source=\"reassembly\"} %llu\n",
                    (unsigned long long)cap.reassembly);

    api_metric_head(&t, "flowveil_flows_active", "gauge",
                    "Flows in the flow table at the capturing process's last tick.");
    api_text_printf(&t, "flowveil_flows_active %llu\n", (unsigned long long)flows_active);

    api_metric_head(&t, "flowveil_records_written_total", "counter",
                    "Records written per class: stored now plus deleted by retention.");
    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        const store_class_status *st = &status[c];
        uint64_t written = st->records + st->expired_pending + st->total_deleted;
        api_text_printf(&t, "flowveil_records_written_total{class=\"%s\"} %llu\n",
                        fv_class_name((fv_class)c), (unsigned long long)written);
    }

    api_metric_head(&t, "flowveil_records_stored", "gauge",
                    "Records per class within the retention limit.");
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        api_text_printf(&t, "flowveil_records_stored{class=\"%s\"} %llu\n",
                        fv_class_name((fv_class)c), (unsigned long long)status[c].records);

    api_metric_head(&t, "flowveil_retention_expired_pending", "gauge",
                    "Records past the retention limit that the sweeper has not deleted yet.");
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        api_text_printf(&t, "flowveil_retention_expired_pending{class=\"%s\"} %llu\n",
                        fv_class_name((fv_class)c),
                        (unsigned long long)status[c].expired_pending);

    api_metric_head(&t, "flowveil_sweeper_deleted_total", "counter",
                    "Records deleted by the retention sweeper per class.");
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        api_text_printf(&t, "flowveil_sweeper_deleted_total{class=\"%s\"} %llu\n",
                        fv_class_name((fv_class)c), (unsigned long long)status[c].total_deleted);

    api_metric_head(&t, "flowveil_key_epoch_age_seconds", "gauge",
                    "Age of the current pseudonymization key; absent until a capturing "
                    "process recorded it.");
    if (epoch_start_s != 0) {
        uint64_t now_s = now_us / 1000000u;
        api_text_printf(&t, "flowveil_key_epoch_age_seconds %llu\n",
                        (unsigned long long)(now_s > epoch_start_s ? now_s - epoch_start_s : 0));
    }

    api_metric_head(&t, "flowveil_alerts", "gauge",
                    "Live alerts by life-cycle state.");
    for (int s = STORE_ALERT_NEW; s <= STORE_ALERT_CLOSED; s++)
        api_text_printf(&t, "flowveil_alerts{state=\"%s\"} %llu\n",
                        store_alert_state_name(s), (unsigned long long)alert_states[s]);

    api_metric_head(&t, "flowveil_undecryptable_records_total", "counter",
                    "Records this server skipped because they could not be decrypted.");
    api_text_printf(&t, "flowveil_undecryptable_records_total %llu\n",
                    (unsigned long long)undecryptable);

    api_metric_head(&t, "flowveil_http_requests_total", "counter",
                    "HTTP responses of this server process by status code.");
    for (unsigned code = 100; code < API_STATUS_SLOTS; code++) {
        uint64_t n = atomic_load_explicit(&api_status_counts[code], memory_order_relaxed);
        if (n > 0)
            api_text_printf(&t, "flowveil_http_requests_total{code=\"%u\"} %llu\n", code,
                            (unsigned long long)n);
    }
    uint64_t other = atomic_load_explicit(&api_status_counts[0], memory_order_relaxed);
    if (other > 0)
        api_text_printf(&t, "flowveil_http_requests_total{code=\"other\"} %llu\n",
                        (unsigned long long)other);

    if (t.nomem) {
        free(t.buf);
        return FV_ERR_NOMEM;
    }
    *out = t.buf;
    *len = t.len;
    return FV_OK;
}
