/*
 * api_routes.c: the /api/v1 handlers. Each handler validates the query
 * string, reads the store under the server's store lock and builds a
 * JSON reply. Records are converted with fv_record_to_json, which only
 * writes pseudonyms, zone labels and kept external addresses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* Upper bound on alerts scanned for the summary's per-detector and
 * per-severity totals; past it the summary says "complete": false. */
#define API_SUMMARY_ALERT_SCAN_MAX 100000u

/* Page size used when the summary walks the alert class. */
#define API_SCAN_PAGE 10000u

/* ---- replies ---------------------------------------------------------- */

void api_reply_error(api_reply *out, unsigned status, const char *code, const char *message)
{
    out->status = status;
    out->body = json_pack("{s:s, s:s}", "error", code, "message", message);
}

/* Map a store error to an HTTP status and a stable error string. */
static void api_reply_store_error(api_reply *out, int rc)
{
    char message[API_MESSAGE_MAX];

    if (rc == FV_ERR_NOMEM) {
        api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        return;
    }
    fv_warning("api: reading the record store failed: %s", fv_strerror(rc));
    snprintf(message, sizeof message, "reading the record store failed: %s", fv_strerror(rc));
    api_reply_error(out, 500, "store_error", message);
}

static void api_reply_nomem(api_reply *out)
{
    api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
}

/* Return a JSON string with the RFC 3339 form of US, or JSON null for 0
 * (the store's "never" / "empty" value). */
static json_t *api_time_json(uint64_t us)
{
    char text[FV_TIME_TEXT_MAX];

    if (us == 0)
        return json_null();
    fv_time_format(us, text);
    return json_string(text);
}

static uint64_t api_now_us(const api_server *srv)
{
    return srv->clock_us();
}

/* ---- query parameters ------------------------------------------------- */

/* Parameters of a record route, as raw text; NULL when absent. */
typedef struct api_params {
    bool allow_records;     /* the route accepts from/to/limit/cursor/order */
    const char *from, *to, *limit, *cursor, *order;
    bool failed;
    char message[API_MESSAGE_MAX];
} api_params;

/* Record a 400 message "query parameter 'NAME' PROBLEM; HINT". */
static void api_params_fail(api_params *p, const char *name, const char *problem,
                            const char *hint)
{
    char safe[48];

    api_text_sanitize(name, safe, sizeof safe);
    snprintf(p->message, sizeof p->message, "query parameter '%s' %s; %s", safe, problem, hint);
    p->failed = true;
}

/*
 * Collect one query argument. Unknown names, missing values and repeated
 * names reject the whole request, because silently ignoring a misspelled
 * filter would return unfiltered data.
 */
static enum MHD_Result api_params_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
    api_params *p = cls;
    const char **slot = NULL;

    (void)kind;
    if (p->allow_records) {
        if (strcmp(key, "from") == 0)
            slot = &p->from;
        else if (strcmp(key, "to") == 0)
            slot = &p->to;
        else if (strcmp(key, "limit") == 0)
            slot = &p->limit;
        else if (strcmp(key, "cursor") == 0)
            slot = &p->cursor;
        else if (strcmp(key, "order") == 0)
            slot = &p->order;
    }

    if (slot == NULL) {
        api_params_fail(p, key, "is unknown",
                        p->allow_records ? "allowed: from, to, limit, cursor, order"
                                         : "this route takes no parameters");
        return MHD_NO;
    }
    if (value == NULL) {
        api_params_fail(p, key, "has no value", "write name=value");
        return MHD_NO;
    }
    if (*slot != NULL) {
        api_params_fail(p, key, "is given more than once", "give it once");
        return MHD_NO;
    }
    *slot = value;
    return MHD_YES;
}

/* Read the query string of CONN into P. Return false (and fill OUT with
 * a 400 reply) if it is invalid. */
static bool api_params_read(struct MHD_Connection *conn, api_params *p, api_reply *out)
{
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, api_params_collect, p);
    if (p->failed) {
        api_reply_error(out, 400, "invalid_parameter", p->message);
        return false;
    }
    return true;
}

/* ---- /api/v1/health --------------------------------------------------- */

static void api_route_health(api_server *srv, api_reply *out)
{
    out->status = 200;
    out->body = json_pack("{s:s, s:s, s:o}", "status", "ok", "store", "open", "time",
                          api_time_json(api_now_us(srv)));
}

/* ---- /api/v1/{flows,dns,tls,http,alerts,dhcp,ssh} --------------------- */

/* State of one page being collected from the store. */
typedef struct api_page {
    json_t *records;
    uint32_t limit;     /* records to return; one more is read to detect a next page */
    uint32_t count;
    uint64_t last_id;   /* id of the last record put into RECORDS */
    bool more;          /* the store had a record after the page */
    bool nomem;
} api_page;

static bool api_page_add(void *ctx, const fv_record *rec)
{
    api_page *page = ctx;
    json_t *obj;

    if (page->count == page->limit) {
        page->more = true;
        return false;
    }
    obj = fv_record_to_json(rec);
    if (obj == NULL || json_array_append_new(page->records, obj) != 0) {
        page->nomem = true;
        return false;
    }
    page->count++;
    page->last_id = rec->id;
    return true;
}

/* Validate the parameters of a record route into Q. Return false with a
 * 400 reply in OUT when a value is invalid. */
static bool api_records_query(const api_params *p, fv_class cls, store_query *q, bool *empty,
                              api_reply *out)
{
    uint64_t cursor_id = 0;

    memset(q, 0, sizeof *q);
    q->cls = cls;
    q->limit = API_LIMIT_DEFAULT;
    q->newest_first = true;
    *empty = false;

    if (p->order != NULL) {
        if (strcmp(p->order, "asc") == 0) {
            q->newest_first = false;
        } else if (strcmp(p->order, "desc") != 0) {
            api_reply_error(out, 400, "invalid_parameter",
                            "invalid value for 'order'; allowed: asc, desc");
            return false;
        }
    }
    if (p->limit != NULL && api_limit_parse(p->limit, &q->limit) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid value for 'limit'; allowed: an integer from 1 to 1000");
        return false;
    }
    if (p->from != NULL && api_time_parse(p->from, &q->from_us) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid value for 'from'; allowed: RFC 3339 UTC time such as "
                        "2026-11-30T08:00:00Z, or integer seconds since the epoch");
        return false;
    }
    if (p->to != NULL && api_time_parse(p->to, &q->to_us) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid value for 'to'; allowed: RFC 3339 UTC time such as "
                        "2026-11-30T08:00:00Z, or integer seconds since the epoch");
        return false;
    }
    if (p->from != NULL && p->to != NULL && q->from_us > q->to_us) {
        api_reply_error(out, 400, "invalid_parameter",
                        "'from' is later than 'to'; give from <= to");
        return false;
    }
    if (p->cursor != NULL && api_cursor_parse(p->cursor, q->newest_first, &cursor_id) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid value for 'cursor'; pass next_cursor from the previous page "
                        "unchanged, with the same order");
        return false;
    }

    /* The store reads to_us 0 as "unbounded", so an explicit to=0 (the
     * epoch itself) has to be answered here: no traffic is that old. */
    if (p->to != NULL && q->to_us == 0)
        *empty = true;

    if (q->newest_first)
        q->before_id = cursor_id;
    else
        q->after_id = cursor_id;
    return true;
}

/*
 * Serve one page of records. The store is asked for limit + 1 records so
 * that a next page is only announced when a record really follows; the
 * cursor is then the id of the last record returned, which does not
 * depend on how the store reports its own resume point.
 */
static void api_route_records(api_server *srv, struct MHD_Connection *conn, fv_class cls,
                              api_reply *out)
{
    api_params p = {.allow_records = true};
    store_query q;
    api_page page = {0};
    bool empty;
    int rc;

    if (!api_params_read(conn, &p, out) || !api_records_query(&p, cls, &q, &empty, out))
        return;

    page.records = json_array();
    if (page.records == NULL) {
        api_reply_nomem(out);
        return;
    }
    page.limit = q.limit;
    q.limit = q.limit + 1u;

    rc = FV_OK;
    store_query_stats stats = {0};
    if (!empty) {
        pthread_mutex_lock(&srv->store_lock);
        rc = store_query_run_stats(srv->store, &q, api_now_us(srv), api_page_add, &page, NULL,
                                   &stats);
        pthread_mutex_unlock(&srv->store_lock);
    }
    if (page.nomem) {
        json_decref(page.records);
        api_reply_nomem(out);
        return;
    }
    if (rc != FV_OK) {
        json_decref(page.records);
        api_reply_store_error(out, rc);
        return;
    }

    json_t *next = json_null();
    if (page.more) {
        char cursor[API_CURSOR_TEXT_MAX];

        api_cursor_format(q.newest_first, page.last_id, cursor);
        json_decref(next);
        next = json_string(cursor);
    }
    out->status = 200;
    out->body = json_pack("{s:o, s:o, s:I}", "records", page.records, "next_cursor", next,
                          "count", (json_int_t)page.count);
    /* Present only when the store skipped records of this page's range
     * that it could not decrypt, so a client can tell the page is short. */
    if (out->body != NULL && stats.undecryptable > 0 &&
        json_object_set_new(out->body, "undecryptable",
                            json_integer((json_int_t)stats.undecryptable)) != 0) {
        json_decref(out->body);
        out->body = NULL;
    }
}

/* ---- /api/v1/summary -------------------------------------------------- */

/* Totals over the alert class. */
typedef struct api_alert_tally {
    uint64_t total;
    uint64_t by_detector[FV_DET_MAX + 1];    /* indexed by fv_detector; 0 counts unknown values */
    uint64_t by_severity[5];    /* indexed by fv_severity; 0 counts unknown values */
    uint64_t last_id;
    uint32_t page_count;
} api_alert_tally;

static bool api_alert_count(void *ctx, const fv_record *rec)
{
    api_alert_tally *t = ctx;
    unsigned det = rec->u.alert.detector;
    unsigned sev = rec->u.alert.severity;

    t->total++;
    t->by_detector[det <= FV_DET_MAX ? det : 0]++;
    t->by_severity[sev < 5 ? sev : 0]++;
    t->last_id = rec->id;
    t->page_count++;
    return true;
}

/* Walk the alert class oldest first in pages, counting. *COMPLETE is
 * false when API_SUMMARY_ALERT_SCAN_MAX stopped the walk. Called with
 * the store lock held. */
static int api_alerts_tally(api_server *srv, uint64_t now_us, api_alert_tally *t, bool *complete)
{
    store_query q = {.cls = FV_CLASS_ALERT, .limit = API_SCAN_PAGE};
    int rc;

    *complete = false;
    while (t->total < API_SUMMARY_ALERT_SCAN_MAX) {
        t->page_count = 0;
        q.after_id = t->last_id;
        rc = store_query_run(srv->store, &q, now_us, api_alert_count, t, NULL);
        if (rc != FV_OK)
            return rc;
        if (t->page_count < API_SCAN_PAGE) {
            *complete = true;
            break;
        }
    }
    return FV_OK;
}

/* Traffic time of a record: when the flow or transaction happened. */
static void api_traffic_span(const fv_record *rec, uint64_t *first_us, uint64_t *last_us)
{
    switch (rec->cls) {
    case FV_CLASS_FLOW:
        *first_us = rec->u.flow.first_us;
        *last_us = rec->u.flow.last_us;
        return;
    case FV_CLASS_DNS:
        *first_us = *last_us = rec->u.dns.ts_us;
        return;
    case FV_CLASS_TLS:
        *first_us = *last_us = rec->u.tls.ts_us;
        return;
    case FV_CLASS_HTTP:
        *first_us = *last_us = rec->u.http.ts_us;
        return;
    case FV_CLASS_DHCP:
        *first_us = *last_us = rec->u.dhcp.ts_us;
        return;
    case FV_CLASS_SSH:
        *first_us = *last_us = rec->u.ssh.ts_us;
        return;
    case FV_CLASS_AGGREGATE:
        *first_us = rec->u.aggregate.bucket_start_us;
        *last_us = *first_us + (uint64_t)rec->u.aggregate.bucket_s * 1000000u - 1u;
        return;
    case FV_CLASS_ALERT:
    case FV_CLASS_COUNT:
        break;
    }
    *first_us = *last_us = 0;
}

/* Earliest and latest traffic time seen while looking at single records. */
typedef struct api_span {
    uint64_t first_us, last_us;
} api_span;

static bool api_span_add(void *ctx, const fv_record *rec)
{
    api_span *span = ctx;
    uint64_t first, last;

    api_traffic_span(rec, &first, &last);
    if (first != 0 && (span->first_us == 0 || first < span->first_us))
        span->first_us = first;
    if (last > span->last_us)
        span->last_us = last;
    return true;
}

/*
 * Estimate the traffic time range from the oldest and newest stored
 * record of each traffic class. Reading two records per class keeps the
 * summary cheap; the range is exact unless captures were ingested out of
 * traffic order. Called with the store lock held.
 */
static int api_traffic_range(api_server *srv, uint64_t now_us, api_span *span)
{
    for (int cls = FV_CLASS_FLOW; cls < FV_CLASS_COUNT; cls++) {
        if (cls == FV_CLASS_ALERT)
            continue; /* alerts are not traffic */
        for (int newest = 0; newest <= 1; newest++) {
            store_query q = {.cls = (fv_class)cls, .limit = 1, .newest_first = newest != 0};
            int rc = store_query_run(srv->store, &q, now_us, api_span_add, span, NULL);

            if (rc != FV_OK)
                return rc;
        }
    }
    return FV_OK;
}

static json_t *api_alert_tally_json(const api_alert_tally *t, bool complete)
{
    json_t *det = json_object();
    json_t *sev = json_object();

    for (int d = FV_DET_BEACON; d <= FV_DET_MAX; d++)
        json_object_set_new(det, fv_detector_name(d), json_integer((json_int_t)t->by_detector[d]));
    for (int s = FV_SEV_LOW; s <= FV_SEV_CRITICAL; s++)
        json_object_set_new(sev, fv_severity_name(s), json_integer((json_int_t)t->by_severity[s]));
    return json_pack("{s:I, s:o, s:o, s:b}", "total", (json_int_t)t->total, "by_detector", det,
                     "by_severity", sev, "complete", complete);
}

static void api_route_summary(api_server *srv, api_reply *out)
{
    store_class_status status[FV_CLASS_COUNT];
    store_counters counters = {0};
    api_alert_tally tally = {0};
    api_span span = {0};
    bool complete = false;
    uint64_t now_us = api_now_us(srv);
    int rc = FV_OK;

    /* Read everything in one locked section so the numbers agree. */
    pthread_mutex_lock(&srv->store_lock);
    for (int cls = 0; cls < FV_CLASS_COUNT && rc == FV_OK; cls++)
        rc = store_class_status_get(srv->store, (fv_class)cls, now_us, &status[cls]);
    if (rc == FV_OK)
        rc = store_counters_get(srv->store, &counters);
    if (rc == FV_OK)
        rc = api_alerts_tally(srv, now_us, &tally, &complete);
    if (rc == FV_OK)
        rc = api_traffic_range(srv, now_us, &span);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc != FV_OK) {
        api_reply_store_error(out, rc);
        return;
    }

    json_t *records = json_object();
    for (int cls = 0; cls < FV_CLASS_COUNT; cls++)
        json_object_set_new(records, fv_class_name((fv_class)cls),
                            json_integer((json_int_t)status[cls].records));

    json_t *ingest = json_pack("{s:I, s:I, s:I, s:I, s:o}", "packets", (json_int_t)counters.packets,
                               "bytes", (json_int_t)counters.bytes, "flows",
                               (json_int_t)counters.flows, "files", (json_int_t)counters.files,
                               "last_ingest", api_time_json(counters.last_ingest_us));
    json_t *traffic = json_pack("{s:o, s:o}", "first", api_time_json(span.first_us), "last",
                                api_time_json(span.last_us));

    out->status = 200;
    out->body = json_pack("{s:o, s:o, s:o, s:o, s:o}", "time", api_time_json(now_us), "records",
                          records, "ingest", ingest, "alerts",
                          api_alert_tally_json(&tally, complete), "traffic", traffic);
}

/* ---- /api/v1/retention ------------------------------------------------ */

static json_t *api_retention_class_base_json(fv_class cls, const store_class_status *st);

/* Codes of the reasons for a "warning" state, in a stable order. */
static json_t *api_retention_reasons_json(const store_class_status *st)
{
    json_t *reasons = json_array();
    if (reasons == NULL)
        return NULL;
    if (st->expired_pending > 0)
        json_array_append_new(reasons, json_string("expired_pending"));
    if (st->sweep_lag == STORE_SWEEP_LATE)
        json_array_append_new(reasons, json_string("sweep_overdue"));
    if (st->sweep_lag == STORE_SWEEP_NEVER)
        json_array_append_new(reasons, json_string("never_swept"));
    return reasons;
}

static json_t *api_retention_class_json(fv_class cls, const store_class_status *st)
{
    json_t *obj = api_retention_class_base_json(cls, st);
    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "sweep_interval_s", json_integer((json_int_t)st->sweep_interval_s));
    json_object_set_new(obj, "next_sweep", api_time_json(st->next_sweep_us));
    json_object_set_new(obj, "overdue", json_boolean(st->sweep_lag != STORE_SWEEP_ON_TIME));
    json_object_set_new(obj, "reasons", api_retention_reasons_json(st));
    json_object_set_new(obj, "state",
                        json_string(store_class_status_warning(st) ? "warning" : "ok"));
    return obj;
}

static json_t *api_retention_class_base_json(fv_class cls, const store_class_status *st)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:s}", "class",
                     fv_class_name(cls), "retention_s", (json_int_t)st->retention_s, "records",
                     (json_int_t)st->records, "expired_pending", (json_int_t)st->expired_pending,
                     "bytes", (json_int_t)st->bytes, "oldest_stored",
                     api_time_json(st->oldest_stored_us), "newest_stored",
                     api_time_json(st->newest_stored_us), "last_sweep",
                     api_time_json(st->last_sweep_us), "last_sweep_deleted",
                     (json_int_t)st->last_sweep_deleted, "total_deleted",
                     (json_int_t)st->total_deleted, "state",
                     st->expired_pending > 0 ? "warning" : "ok");
}

static void api_route_retention(api_server *srv, api_reply *out)
{
    store_class_status status[FV_CLASS_COUNT];
    uint64_t now_us = api_now_us(srv);
    int rc = FV_OK;

    pthread_mutex_lock(&srv->store_lock);
    for (int cls = 0; cls < FV_CLASS_COUNT && rc == FV_OK; cls++)
        rc = store_class_status_get(srv->store, (fv_class)cls, now_us, &status[cls]);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc != FV_OK) {
        api_reply_store_error(out, rc);
        return;
    }

    json_t *classes = json_array();
    for (int cls = 0; cls < FV_CLASS_COUNT; cls++)
        json_array_append_new(classes, api_retention_class_json((fv_class)cls, &status[cls]));

    out->status = 200;
    out->body = json_pack("{s:o, s:o}", "time", api_time_json(now_us), "classes", classes);
}

/* ---- /api/v1/counters ------------------------------------------------- */

static bool api_counter_add(void *ctx, const char *name, uint64_t value)
{
    json_t *obj = ctx;
    return json_object_set_new(obj, name, json_integer((json_int_t)value)) == 0;
}

/* Capture and parser counters summed over every ingest and capture run
 * into this store: packets, drops, and each parser's rejection reasons. */
static void api_route_counters(api_server *srv, api_reply *out)
{
    json_t *counters = json_object();
    if (counters == NULL) {
        api_reply_store_error(out, FV_ERR_NOMEM);
        return;
    }
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_capture_counters_each(srv->store, api_counter_add, counters);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc != FV_OK) {
        json_decref(counters);
        api_reply_store_error(out, rc);
        return;
    }
    /* This serve process's own count, not a sum stored in the store:
     * records its queries skipped because they could not be decrypted. */
    uint64_t undecryptable = store_undecryptable_total(srv->store);
    out->status = 200;
    out->body = json_pack("{s:o, s:o, s:I}", "time", api_time_json(api_now_us(srv)), "capture",
                          counters, "undecryptable_records", (json_int_t)undecryptable);
}

/* ---- /api/v1/policy and /api/v1/reports/... --------------------------- */

/* Answer a compliance document from the serve process's policy. */
static void api_route_compliance(api_server *srv, struct MHD_Connection *conn,
                                 const char *document, api_reply *out)
{
    bool transparency = strcmp(document, "transparency") == 0;
    api_params p = {.allow_records = transparency};
    if (!api_params_read(conn, &p, out))
        return;
    if (srv->compliance_fn == NULL) {
        api_reply_error(out, 404, "no_policy",
                        "no policy loaded; start the server with 'flowveil serve --policy FILE'");
        return;
    }
    uint64_t now_us = api_now_us(srv);
    uint64_t from_us = 0, to_us = now_us;
    if (transparency) {
        /* The notice covers a period: paging and order do not apply. */
        const char *unused = p.limit != NULL ? "limit" : p.cursor != NULL ? "cursor"
                             : p.order != NULL ? "order" : NULL;
        if (unused != NULL) {
            char msg[API_MESSAGE_MAX];
            snprintf(msg, sizeof msg, "unknown parameter '%s' for this route; allowed: from, to",
                     unused);
            api_reply_error(out, 400, "invalid_parameter", msg);
            return;
        }
        if (p.from != NULL && api_time_parse(p.from, &from_us) != FV_OK) {
            api_reply_error(out, 400, "invalid_parameter",
                            "invalid from: expected RFC 3339 or seconds since the epoch");
            return;
        }
        if (p.to != NULL && api_time_parse(p.to, &to_us) != FV_OK) {
            api_reply_error(out, 400, "invalid_parameter",
                            "invalid to: expected RFC 3339 or seconds since the epoch");
            return;
        }
        if (from_us > to_us) {
            api_reply_error(out, 400, "invalid_parameter", "from is after to");
            return;
        }
    }

    char *text = NULL;
    pthread_mutex_lock(&srv->store_lock);
    int rc = srv->compliance_fn(srv->compliance_ctx, srv->store, document, from_us, to_us,
                                now_us, &text);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc == FV_ERR_NOT_FOUND) {
        api_reply_error(out, 404, "no_policy",
                        "no policy loaded; start the server with 'flowveil serve --policy FILE'");
        return;
    }
    if (rc != FV_OK || text == NULL) {
        free(text);
        api_reply_store_error(out, rc != FV_OK ? rc : FV_ERR_NOMEM);
        return;
    }
    json_error_t jerr;
    out->body = json_loads(text, 0, &jerr);
    free(text);
    if (out->body == NULL) {
        api_reply_nomem(out);
        return;
    }
    out->status = 200;
}

/* ---- dispatch --------------------------------------------------------- */

#define API_PREFIX "/api/v1/"

void api_route_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                       api_reply *out)
{
    const char *name;
    fv_class cls;

    out->status = 0;
    out->body = NULL;

    if (strncmp(url, API_PREFIX, strlen(API_PREFIX)) != 0) {
        api_reply_error(out, 404, "not_found", "no such API route; routes start with /api/v1/");
        return;
    }
    name = url + strlen(API_PREFIX);

    if (fv_class_from_name(name, &cls) == FV_OK) {
        api_route_records(srv, conn, cls, out);
        return;
    }
    if (strcmp(name, "audit") == 0) {
        api_route_audit(srv, conn, out);
        return;
    }
    if (strcmp(name, "audit/verify") == 0) {
        api_route_audit_verify(srv, conn, out);
        return;
    }
    if (strncmp(name, "top/", strlen("top/")) == 0) {
        api_route_top(srv, conn, name + strlen("top/"), out);
        return;
    }
    if (strcmp(name, "policy") == 0) {
        api_route_compliance(srv, conn, "policy", out);
        return;
    }
    if (strcmp(name, "reports/processing") == 0 || strcmp(name, "reports/transparency") == 0) {
        api_route_compliance(srv, conn, name + strlen("reports/"), out);
        return;
    }
    if (strcmp(name, "health") != 0 && strcmp(name, "summary") != 0 &&
        strcmp(name, "retention") != 0 && strcmp(name, "counters") != 0) {
        api_reply_error(out, 404, "not_found", "no such API route");
        return;
    }

    /* The remaining routes take no parameters; reject any so typos show. */
    api_params p = {.allow_records = false};
    if (!api_params_read(conn, &p, out))
        return;

    if (strcmp(name, "health") == 0)
        api_route_health(srv, out);
    else if (strcmp(name, "summary") == 0)
        api_route_summary(srv, out);
    else if (strcmp(name, "counters") == 0)
        api_route_counters(srv, out);
    else
        api_route_retention(srv, out);
}
