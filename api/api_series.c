/*
 * api_series.c: GET /api/v1/series, one metric per time step for charts.
 *
 * Traffic metrics (bytes, packets, flows) with step 1h or 1d are summed
 * from the hourly or daily records of the aggregates class. These contain
 * one record per zone, destination and bucket instead of one per flow,
 * so a chart over weeks reads a small fraction of the store. Step 5m has
 * no aggregate of its own and is summed from the flow records (bounded,
 * see API_SERIES_SCAN_MAX). Alerts are counted from the alerts class at
 * the start of the traffic the first raise rests on (its first_us; the
 * raise time when it has none), so a replayed capture charts its alerts
 * at traffic time, not at ingest time.
 *
 * Aggregates count only flows with an internal side (cli/aggregate.c),
 * so traffic between two external addresses is not in the series.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* Maximum points of one reply. */
#define API_SERIES_POINTS_MAX 10000u
/* Records read per request at most; past it "complete" is false. */
#define API_SERIES_SCAN_MAX 2000000u

typedef enum api_metric {
    API_METRIC_BYTES,
    API_METRIC_PACKETS,
    API_METRIC_FLOWS,
    API_METRIC_ALERTS,
} api_metric;

typedef struct api_series {
    api_metric metric;
    uint64_t step_us;
    uint32_t bucket_s;          /* aggregate width to read, 0 = read flows */
    uint64_t from_us, to_us;    /* inclusive window of bucket starts; to_us 0 = unbounded */
    /* Buckets keyed by their start, sparse while scanning. */
    uint64_t *starts;
    uint64_t *values;
    size_t count, cap;
    size_t hint;
    uint64_t scanned, last_id;
    uint32_t page_count;
    bool nomem;
} api_series;

/* Add VALUE to the bucket starting at START_US. */
static bool api_series_add_value(api_series *s, uint64_t start_us, uint64_t value)
{
    /* Records mostly arrive in time order: try the last bucket first. */
    if (s->count > 0 && s->starts[s->hint] == start_us) {
        s->values[s->hint] += value;
        return true;
    }
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->starts[mid] < start_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->count && s->starts[lo] == start_us) {
        s->values[lo] += value;
        s->hint = lo;
        return true;
    }
    if (s->count == s->cap) {
        size_t cap = s->cap == 0 ? 256 : s->cap * 2;
        uint64_t *a = realloc(s->starts, cap * sizeof *a);
        if (a == NULL)
            return false;
        s->starts = a;
        uint64_t *b = realloc(s->values, cap * sizeof *b);
        if (b == NULL)
            return false;
        s->values = b;
        s->cap = cap;
    }
    memmove(&s->starts[lo + 1], &s->starts[lo], (s->count - lo) * sizeof *s->starts);
    memmove(&s->values[lo + 1], &s->values[lo], (s->count - lo) * sizeof *s->values);
    s->starts[lo] = start_us;
    s->values[lo] = value;
    s->count++;
    s->hint = lo;
    return true;
}

static bool api_series_in_window(const api_series *s, uint64_t start_us)
{
    return start_us >= s->from_us && (s->to_us == 0 || start_us <= s->to_us);
}

static bool api_series_record(void *ctx, const fv_record *rec)
{
    api_series *s = ctx;
    uint64_t ts_us = 0, value = 0;

    s->scanned++;
    s->page_count++;
    s->last_id = rec->id;
    switch (rec->cls) {
    case FV_CLASS_AGGREGATE: {
        const fv_aggregate_record *a = &rec->u.aggregate;
        if (a->bucket_s != s->bucket_s)
            return true;
        ts_us = a->bucket_start_us;
        value = s->metric == API_METRIC_BYTES     ? a->bytes_in + a->bytes_out
                : s->metric == API_METRIC_PACKETS ? a->packets
                                                  : a->flows;
        break;
    }
    case FV_CLASS_FLOW: {
        const fv_flow_record *f = &rec->u.flow;
        ts_us = f->first_us;
        value = s->metric == API_METRIC_BYTES     ? f->bytes_fwd + f->bytes_rev
                : s->metric == API_METRIC_PACKETS ? f->pkts_fwd + f->pkts_rev
                                                  : 1;
        break;
    }
    case FV_CLASS_ALERT:
        ts_us = rec->u.alert.first_us != 0 ? rec->u.alert.first_us : rec->u.alert.ts_us;
        value = 1;
        break;
    default:
        return true;
    }
    uint64_t start_us = ts_us - ts_us % s->step_us;
    if (!api_series_in_window(s, start_us))
        return true;
    if (!api_series_add_value(s, start_us, value)) {
        s->nomem = true;
        return false;
    }
    return true;
}

/* Read the records of CLS in pages into S. Called with the store lock held. */
static int api_series_scan(api_server *srv, api_series *s, fv_class cls, bool *complete)
{
    /* The store filters by traffic time. The window is widened by one
     * step, so a record in the last bucket is not missed, and
     * api_series_record checks each bucket start again. */
    store_query q = {.cls = cls, .limit = STORE_QUERY_LIMIT_MAX, .from_us = s->from_us,
                     .to_us = s->to_us != 0 ? s->to_us + s->step_us - 1 : 0};
    /* The store matches alerts whose evidence span overlaps the window;
     * api_series_record keeps those that start inside it. */
    uint64_t now_us = srv->clock_us();

    *complete = false;
    while (s->scanned < API_SERIES_SCAN_MAX) {
        uint64_t next = 0;
        s->page_count = 0;
        int rc = store_query_run_cached(srv->store, srv->aggregate_cache, &q, now_us,
                                        api_series_record, s, &next);
        if (rc != FV_OK || s->nomem)
            return rc;
        if (next == 0) {
            *complete = true;
            break;
        }
        q.after_id = next;
    }
    return FV_OK;
}

void api_route_series(api_server *srv, struct MHD_Connection *conn, int kind,
                      const api_match *match, api_reply *out)
{
    static const char *const allowed[] = {"metric", "from", "to", "step", NULL};
    api_args a = {.allowed = allowed};
    api_series s = {0};
    bool empty = false, complete = false;
    const char *v;

    (void)kind;
    (void)match;
    if (!api_args_read(conn, &a, out))
        return;

    v = api_arg(&a, "metric");
    if (v == NULL || strcmp(v, "bytes") == 0)
        s.metric = API_METRIC_BYTES;
    else if (strcmp(v, "packets") == 0)
        s.metric = API_METRIC_PACKETS;
    else if (strcmp(v, "flows") == 0)
        s.metric = API_METRIC_FLOWS;
    else if (strcmp(v, "alerts") == 0)
        s.metric = API_METRIC_ALERTS;
    else {
        api_reply_bad_value(out, "metric", v, "bytes, packets, flows, alerts");
        return;
    }
    const char *metric_name = v != NULL ? v : "bytes";

    v = api_arg(&a, "step");
    uint64_t step_s;
    if (v == NULL || strcmp(v, "1h") == 0) {
        step_s = 3600u;
    } else if (strcmp(v, "1d") == 0) {
        step_s = 86400u;
    } else if (strcmp(v, "5m") == 0) {
        step_s = 300u;
    } else {
        api_reply_bad_value(out, "step", v, "5m, 1h, 1d");
        return;
    }
    s.step_us = step_s * 1000000u;
    if (s.metric != API_METRIC_ALERTS && step_s != 300u)
        s.bucket_s = (uint32_t)step_s;

    if (!api_args_window(&a, &s.from_us, &s.to_us, &empty, out))
        return;
    /* Whole steps: the first bucket is the one holding FROM. */
    s.from_us -= s.from_us % s.step_us;
    if (s.to_us != 0)
        s.to_us -= s.to_us % s.step_us;
    if (s.to_us != 0 && (s.to_us - s.from_us) / s.step_us >= API_SERIES_POINTS_MAX) {
        char message[API_MESSAGE_MAX];
        snprintf(message, sizeof message,
                 "the range from 'from' to 'to' holds more than %u steps of '%s'; allowed: a "
                 "shorter range or a longer step (5m, 1h, 1d)",
                 API_SERIES_POINTS_MAX, v != NULL ? v : "1h");
        api_reply_error(out, 400, "invalid_parameter", message);
        return;
    }

    int rc = FV_OK;
    if (!empty) {
        fv_class cls = s.metric == API_METRIC_ALERTS ? FV_CLASS_ALERT
                       : s.bucket_s != 0             ? FV_CLASS_AGGREGATE
                                                     : FV_CLASS_FLOW;
        pthread_mutex_lock(&srv->store_lock);
        rc = api_series_scan(srv, &s, cls, &complete);
        pthread_mutex_unlock(&srv->store_lock);
    }
    json_t *points = json_array();
    if (rc == FV_OK && (s.nomem || points == NULL))
        rc = FV_ERR_NOMEM;

    /* Dense points from the first to the last step, zeros included, so
     * a chart shows quiet periods. Without from/to the data's own first
     * and last step bound the range. */
    uint64_t first = s.from_us;
    if (api_arg(&a, "from") == NULL)
        first = s.count > 0 ? s.starts[0] : 0;
    uint64_t last = s.to_us;
    if (last == 0 && s.count > 0)
        last = s.starts[s.count - 1];
    bool any = !empty && (s.count > 0 || (api_arg(&a, "from") != NULL && s.to_us != 0));
    if (rc == FV_OK && any && last >= first &&
        (last - first) / s.step_us >= API_SERIES_POINTS_MAX) {
        /* Only without an explicit range: keep the newest points. */
        first = last - (uint64_t)(API_SERIES_POINTS_MAX - 1) * s.step_us;
        complete = false;
    }
    size_t idx = 0;
    for (uint64_t t = first; rc == FV_OK && any && t <= last; t += s.step_us) {
        uint64_t value = 0;
        while (idx < s.count && s.starts[idx] < t)
            idx++;
        if (idx < s.count && s.starts[idx] == t)
            value = s.values[idx];
        json_t *pt = json_pack("[I, I]", (json_int_t)(t / 1000000u), (json_int_t)value);
        if (pt == NULL || json_array_append_new(points, pt) != 0)
            rc = FV_ERR_NOMEM;
        if (last - t < s.step_us)
            break;
    }
    free(s.starts);
    free(s.values);
    if (rc != FV_OK) {
        json_decref(points);
        char message[API_MESSAGE_MAX];
        if (rc == FV_ERR_NOMEM) {
            api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
            return;
        }
        fv_warning("api: reading the series failed: %s", fv_strerror(rc));
        snprintf(message, sizeof message, "reading the record store failed: %s",
                 fv_strerror(rc));
        api_reply_error(out, 500, "store_error", message);
        return;
    }
    const char *source = s.metric == API_METRIC_ALERTS ? "alerts"
                         : s.bucket_s != 0             ? "aggregates"
                                                       : "flows";
    out->status = 200;
    out->body = json_pack("{s:s, s:I, s:s, s:o, s:b, s:I}", "metric", metric_name, "step",
                          (json_int_t)step_s, "source", source, "points", points, "complete",
                          complete || empty, "count", (json_int_t)json_array_size(points));
}
