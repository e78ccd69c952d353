/*
 * api_routes.c: the route table and the /api/v1 handlers that read the
 * store. Each handler validates the query string, reads the store under
 * the server's store lock and builds a JSON reply. Records are converted
 * with fv_record_to_json, which only writes pseudonyms, zone labels and
 * kept external addresses.
 *
 * One table (api_routes[] below) gives each route its method, path
 * pattern, roles and handler: the dispatcher, api_route_permission and
 * the OpenAPI test all read it.
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

/* Store calls one filtered page makes at most. Each call examines up to
 * 100,000 keys, so a time window that matches nothing still ends. */
#define API_FILTER_CALLS_MAX 8u

/* Alerts read per store call: their life cycle is fetched per chunk. */
#define API_ALERT_CHUNK 256u

/* Period of a transparency notice requested without "from": 30 days. */
#define API_TRANSPARENCY_DEFAULT_US (30ull * 86400u * 1000000u)

/* Records the host timeline reads per class at most. */
#define API_TIMELINE_SCAN_MAX API_FILTER_SCAN_MAX

/* Kinds of the compliance documents route. */
enum { API_DOC_POLICY = 0, API_DOC_PROCESSING = 1, API_DOC_TRANSPARENCY = 2 };

/* ---- replies ---------------------------------------------------------- */

void api_reply_error(api_reply *out, unsigned status, const char *code, const char *message)
{
    out->status = status;
    out->body = json_pack("{s:s, s:s}", "error", code, "message", message);
    out->text = NULL;
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

/* Reject any query parameter of a route that takes none, so typos show. */
static bool api_no_args(struct MHD_Connection *conn, api_reply *out)
{
    static const char *const none[] = {NULL};
    api_args a = {.allowed = none};
    return api_args_read(conn, &a, out);
}

/* ---- /api/v1/health --------------------------------------------------- */

static void api_route_health(api_server *srv, struct MHD_Connection *conn, int kind,
                             const api_match *match, api_reply *out)
{
    (void)kind;
    (void)match;
    if (!api_no_args(conn, out))
        return;
    out->status = 200;
    out->body = json_pack("{s:s, s:s, s:o}", "status", "ok", "store", "open", "time",
                          api_time_json(api_now_us(srv)));
}

/* ---- record routes: parameters ---------------------------------------- */

/* Parameters each record route accepts, by class. */
static const char *const api_args_traffic[] = {"from", "to", "limit", "cursor", "order", "zone",
                                               "host", "proto", "port", NULL};
static const char *const api_args_named[] = {"from", "to", "limit", "cursor", "order", "zone",
                                             "host", "proto", "port", "domain", NULL};
static const char *const api_args_flows[] = {"from", "to", "limit", "cursor", "order", "zone",
                                             "host", "proto", "port", "sort", NULL};
static const char *const api_args_alerts[] = {"from", "to", "limit", "cursor", "order",
                                              "zone", "host", "proto", "port", "detector",
                                              "severity", "state", "sort", NULL};

static const char *const *api_record_args(fv_class cls)
{
    switch (cls) {
    case FV_CLASS_FLOW:
        return api_args_flows;
    case FV_CLASS_DNS:
    case FV_CLASS_TLS:
    case FV_CLASS_HTTP:
        return api_args_named;
    case FV_CLASS_ALERT:
        return api_args_alerts;
    default:
        return api_args_traffic;
    }
}

/* Orders within a page; the page itself is chosen in store order. */
typedef enum api_sort {
    API_SORT_TIME = 0,  /* store order: newest first, or oldest with order=asc */
    API_SORT_BYTES,     /* flows: bytes both ways, largest first */
    API_SORT_SEVERITY,  /* alerts: severity, then score, highest first */
    API_SORT_SCORE,     /* alerts: score, highest first */
    API_SORT_COUNT,     /* alerts: merged raises, most first */
    API_SORT_LAST_SEEN, /* alerts: newest raise, latest first */
} api_sort;

/* A validated record query. */
typedef struct api_record_query {
    store_query q;
    api_filter filter;
    api_sort sort;
    bool empty;         /* to=0: nothing can match */
} api_record_query;

#define API_DETECTORS_ALLOWED                                                                  \
    "beacon, exfil, long_connection, baseline, scan, dns_tunnel, dga, rare_destination, "     \
    "off_hours, segmentation, indicator"

#define API_HOST_ALLOWED                                                                       \
    "a pseudonym token such as ip4-abcdefghijklmnop as the records show it, an IPv4 or IPv6 "  \
    "address, or a network such as 203.0.113.0/24 with the bits after the prefix length zero"

/* Parse the filter arguments of A into F. Returns false with a 400 reply. */
static bool api_filter_parse(const api_args *a, api_filter *f, api_reply *out)
{
    const char *v;

    memset(f, 0, sizeof *f);
    f->proto = -1;
    f->port = -1;
    f->state = -1;
    if ((v = api_arg(a, "zone")) != NULL) {
        size_t len = strlen(v);
        bool ok = len > 0 && len < sizeof f->zone;
        for (size_t i = 0; ok && i < len; i++)
            ok = (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f;
        if (!ok) {
            api_reply_bad_value(out, "zone", v, "a zone name of the policy, such as office, or "
                                             "external (1 to 31 printable ASCII characters)");
            return false;
        }
        memcpy(f->zone, v, len + 1);
    }
    if ((v = api_arg(a, "host")) != NULL && api_host_filter_parse(v, &f->host) != FV_OK) {
        api_reply_bad_value(out, "host", v, API_HOST_ALLOWED);
        return false;
    }
    if ((v = api_arg(a, "proto")) != NULL && api_proto_parse(v, &f->proto) != FV_OK) {
        api_reply_bad_value(out, "proto", v, "tcp, udp, icmp, icmp6 or a protocol number 0 to 255");
        return false;
    }
    if ((v = api_arg(a, "port")) != NULL && api_port_parse(v, &f->port) != FV_OK) {
        api_reply_bad_value(out, "port", v, "a port number 0 to 65535");
        return false;
    }
    if ((v = api_arg(a, "domain")) != NULL && api_domain_parse(v, f->domain) != FV_OK) {
        api_reply_bad_value(out, "domain", v,
                            "a domain name or suffix such as example.org (letters, digits, "
                            "'-', '_' and dots)");
        return false;
    }
    if ((v = api_arg(a, "detector")) != NULL) {
        for (int d = FV_DET_BEACON; d <= FV_DET_MAX && f->detector == 0; d++) {
            const char *name = fv_detector_name(d);
            if (name != NULL && strcmp(name, v) == 0)
                f->detector = d;
        }
        if (f->detector == 0) {
            api_reply_bad_value(out, "detector", v, API_DETECTORS_ALLOWED);
            return false;
        }
    }
    if ((v = api_arg(a, "severity")) != NULL) {
        for (int s = FV_SEV_LOW; s <= FV_SEV_CRITICAL && f->severity == 0; s++) {
            if (strcmp(fv_severity_name(s), v) == 0)
                f->severity = s;
        }
        if (f->severity == 0) {
            api_reply_bad_value(out, "severity", v, "low, medium, high, critical");
            return false;
        }
    }
    if ((v = api_arg(a, "state")) != NULL) {
        store_alert_state st;
        if (store_alert_state_parse(v, &st) != FV_OK) {
            api_reply_bad_value(out, "state", v, "new, acknowledged, closed");
            return false;
        }
        f->state = (int)st;
    }
    return true;
}

static bool api_sort_parse(const api_args *a, fv_class cls, api_sort *sort, api_reply *out)
{
    static const struct {
        const char *name;
        api_sort sort;
        bool flows, alerts;
    } sorts[] = {
        {"time", API_SORT_TIME, true, true},
        {"bytes", API_SORT_BYTES, true, false},
        {"severity", API_SORT_SEVERITY, false, true},
        {"score", API_SORT_SCORE, false, true},
        {"count", API_SORT_COUNT, false, true},
        {"last_seen", API_SORT_LAST_SEEN, false, true},
    };
    const char *v = api_arg(a, "sort");

    *sort = API_SORT_TIME;
    if (v == NULL)
        return true;
    for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
        bool fits = cls == FV_CLASS_FLOW ? sorts[i].flows : sorts[i].alerts;
        if (fits && strcmp(sorts[i].name, v) == 0) {
            *sort = sorts[i].sort;
            return true;
        }
    }
    api_reply_bad_value(out, "sort", v,
                        cls == FV_CLASS_FLOW ? "time, bytes"
                                             : "time, severity, score, count, last_seen");
    return false;
}

/* Validate the parameters of a record route into RQ. Return false with a
 * 400 reply in OUT when a value is invalid. */
static bool api_records_query(const api_args *a, fv_class cls, api_record_query *rq,
                              api_reply *out)
{
    store_query *q = &rq->q;
    uint64_t cursor_id = 0;
    const char *order = api_arg(a, "order"), *limit = api_arg(a, "limit");
    const char *cursor = api_arg(a, "cursor");

    memset(rq, 0, sizeof *rq);
    q->cls = cls;
    q->limit = API_LIMIT_DEFAULT;
    q->newest_first = true;

    if (order != NULL) {
        if (strcmp(order, "asc") == 0) {
            q->newest_first = false;
        } else if (strcmp(order, "desc") != 0) {
            api_reply_bad_value(out, "order", order, "asc, desc");
            return false;
        }
    }
    if (limit != NULL && api_limit_parse(limit, &q->limit) != FV_OK) {
        api_reply_bad_value(out, "limit", limit, "an integer from 1 to 1000");
        return false;
    }
    if (!api_args_window(a, &q->from_us, &q->to_us, &rq->empty, out))
        return false;
    if (cursor != NULL && api_cursor_parse(cursor, q->newest_first, &cursor_id) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid value for 'cursor'; allowed: the next_cursor of the previous "
                        "page, unchanged and with the same order");
        return false;
    }
    if (!api_filter_parse(a, &rq->filter, out) || !api_sort_parse(a, cls, &rq->sort, out))
        return false;

    if (q->newest_first)
        q->before_id = cursor_id;
    else
        q->after_id = cursor_id;
    return true;
}

/* ---- record routes: the scan ------------------------------------------ */

/* One record of a page. Alerts keep their record until the life cycle
 * is known; other classes are converted at once. */
typedef struct api_hit {
    uint64_t id;
    json_t *json;
    double sort_key;
    double sort_key2;
    fv_record *alert;   /* alerts only, malloc'd */
} api_hit;

typedef struct api_scan {
    const api_record_query *rq;
    api_hit *hits;
    size_t count, cap;
    uint32_t seen;      /* records the store handed over, in all calls */
    bool full;          /* non-alerts: limit + 1 matches found */
    bool budget_hit;    /* API_FILTER_SCAN_MAX records seen */
    bool nomem;
} api_scan;

static void api_hit_free(api_hit *h)
{
    json_decref(h->json);
    h->json = NULL;
    /* Every free of h->alert sets it to NULL, so a second call frees
     * NULL. The analyzer loses that when api_scan_alerts compacts hits[]
     * with symbolic indexes and reports a double free. */
    free(h->alert);  // NOLINT(clang-analyzer-unix.Malloc)
    h->alert = NULL;
}

static api_hit *api_scan_push(api_scan *s)
{
    if (s->count == s->cap) {
        size_t cap = s->cap == 0 ? 128 : s->cap * 2;
        api_hit *grown = realloc(s->hits, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        s->hits = grown;
        s->cap = cap;
    }
    api_hit *h = &s->hits[s->count++];
    memset(h, 0, sizeof *h);
    return h;
}

static bool api_scan_add(void *ctx, const fv_record *rec)
{
    api_scan *s = ctx;
    fv_class cls = s->rq->q.cls;

    s->seen++;
    if (cls == FV_CLASS_ALERT) {
        /* Filters apply to the newest raise, known only after the
         * life cycle is read (api_scan_alerts). */
        api_hit *h = api_scan_push(s);
        if (h == NULL || (h->alert = malloc(sizeof *h->alert)) == NULL) {
            s->nomem = true;
            return false;
        }
        *h->alert = *rec;
        h->id = rec->id;
    } else if (api_filter_match(&s->rq->filter, rec)) {
        api_hit *h = api_scan_push(s);
        if (h == NULL || (h->json = fv_record_to_json(rec)) == NULL) {
            s->nomem = true;
            return false;
        }
        h->id = rec->id;
        if (cls == FV_CLASS_FLOW)
            h->sort_key = (double)(rec->u.flow.bytes_fwd + rec->u.flow.bytes_rev);
        if (s->count > s->rq->q.limit) {
            s->full = true;
            return false;
        }
    }
    if (s->seen >= API_FILTER_SCAN_MAX) {
        s->budget_hit = true;
        return false;
    }
    return true;
}

/* Read the life cycle of the alerts S->hits[FIRST ..], drop those the
 * filters reject and convert the rest. Called with the store lock held. */
static int api_scan_alerts(api_server *srv, api_scan *s, size_t first)
{
    size_t n = s->count - first;
    if (n == 0)
        return FV_OK;
    uint64_t *ids = calloc(n, sizeof *ids);
    fv_alert_record *recs = calloc(n, sizeof *recs);
    store_alert_status *st = calloc(n, sizeof *st);
    int rc = FV_ERR_NOMEM;
    if (ids == NULL || recs == NULL || st == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ids[i] = s->hits[first + i].id;
        recs[i] = s->hits[first + i].alert->u.alert;
    }
    rc = store_alert_status_get(srv->store, ids, recs, n, st);
    if (rc != FV_OK)
        goto out;

    size_t kept = first;
    for (size_t i = 0; i < n; i++) {
        api_hit *h = &s->hits[first + i];
        fv_record view = *h->alert;
        view.u.alert = st[i].newest;
        bool keep = api_filter_match(&s->rq->filter, &view) &&
                    (s->rq->filter.state < 0 || st[i].state == s->rq->filter.state);
        if (keep) {
            h->json = api_alert_json(h->alert, &st[i]);
            if (h->json == NULL) {
                rc = FV_ERR_NOMEM;
                keep = false;
            }
            h->sort_key2 = st[i].newest.score;
            switch (s->rq->sort) {
            case API_SORT_SEVERITY:
                h->sort_key = st[i].newest.severity;
                break;
            case API_SORT_SCORE:
                h->sort_key = st[i].newest.score;
                break;
            case API_SORT_COUNT:
                h->sort_key = st[i].count;
                break;
            case API_SORT_LAST_SEEN: {
                /* Traffic time, as the reply's last_seen. */
                fv_alert_life life = {.newest = &st[i].newest};
                uint64_t first_us = 0, last_us = 0;
                fv_alert_span(&h->alert->u.alert, &life, &first_us, &last_us);
                h->sort_key = (double)last_us;
                break;
            }
            default:
                break;
            }
        }
        free(h->alert);
        h->alert = NULL;
        if (keep)
            s->hits[kept++] = *h;
        else
            api_hit_free(h);
    }
    s->count = kept;
out:
    free(ids);
    free(recs);
    free(st);
    return rc;
}

/* Largest sort key first; equal keys keep store order (by position). */
static int api_hit_compare(const void *x, const void *y)
{
    const api_hit *a = x, *b = y;
    if (a->sort_key != b->sort_key)
        return a->sort_key < b->sort_key ? 1 : -1;
    if (a->sort_key2 != b->sort_key2)
        return a->sort_key2 < b->sort_key2 ? 1 : -1;
    return a < b ? -1 : (a > b ? 1 : 0);
}

/*
 * Run the record query RQ in store calls until the page contains limit
 * records and one more is known to follow, the store is exhausted, or
 * the scan budget is spent. *NEXT receives the cursor id for the next
 * page (0: none). Called with the store lock held.
 */
static int api_scan_run(api_server *srv, api_scan *s, uint64_t *next, store_query_stats *stats)
{
    const api_record_query *rq = s->rq;
    store_query q = rq->q;
    uint32_t limit = rq->q.limit;
    bool alerts = q.cls == FV_CLASS_ALERT;
    uint64_t now_us = api_now_us(srv);

    *next = 0;
    for (unsigned call = 0; call < API_FILTER_CALLS_MAX; call++) {
        uint64_t store_next = 0;
        store_query_stats one = {0};
        size_t first = s->count;
        q.limit = alerts ? API_ALERT_CHUNK : STORE_QUERY_LIMIT_MAX;
        int rc = store_query_run_stats(srv->store, &q, now_us, api_scan_add, s, &store_next,
                                       &one);
        stats->undecryptable += one.undecryptable;
        stats->undecodable += one.undecodable;
        if (s->nomem)
            return FV_ERR_NOMEM;
        if (rc != FV_OK)
            return rc;
        if (alerts) {
            rc = api_scan_alerts(srv, s, first);
            if (rc != FV_OK)
                return rc;
        }
        if (s->count > limit) {
            /* A record follows the page: continue after its last one. */
            for (size_t i = limit; i < s->count; i++)
                api_hit_free(&s->hits[i]);
            s->count = limit;
            *next = s->hits[limit - 1].id;
            return FV_OK;
        }
        if (store_next == 0) {
            *next = 0;
            return FV_OK; /* the store is exhausted */
        }
        *next = store_next;
        if (s->budget_hit)
            break;
        if (q.newest_first)
            q.before_id = store_next;
        else
            q.after_id = store_next;
    }
    /* The budget ran out with the page not full: the cursor resumes
     * where the scan stopped. */
    s->budget_hit = true;
    return FV_OK;
}

/*
 * Serve one page of records. Filters are applied while reading, so a
 * page may end before LIMIT records when the scan budget runs out. The
 * reply then contains "scan_limited": true, and next_cursor continues
 * the scan (docs/API.md, "Filters and paging").
 */
static void api_route_records(api_server *srv, struct MHD_Connection *conn, int kind,
                              const api_match *match, api_reply *out)
{
    fv_class cls = (fv_class)kind;
    api_args a = {.allowed = api_record_args(cls)};
    api_record_query rq;
    api_scan s = {.rq = &rq};
    store_query_stats stats = {0};
    uint64_t next = 0;
    int rc = FV_OK;

    (void)match;
    char zone_note[API_NOTE_MAX];
    if (!api_args_read(conn, &a, out) || !api_records_query(&a, cls, &rq, out) ||
        !api_zone_check(srv, rq.filter.zone, zone_note, sizeof zone_note, out))
        return;

    pthread_mutex_lock(&srv->store_lock);
    if (cls == FV_CLASS_AGGREGATE)
        rc = api_aggregate_k_threshold(srv, &rq.filter.min_hosts);
    if (rc == FV_OK && !rq.empty)
        rc = api_scan_run(srv, &s, &next, &stats);
    pthread_mutex_unlock(&srv->store_lock);
    json_t *records = json_array();
    if (rc == FV_OK && records == NULL)
        rc = FV_ERR_NOMEM;
    if (rc == FV_OK && rq.sort != API_SORT_TIME && s.count > 1)
        qsort(s.hits, s.count, sizeof *s.hits, api_hit_compare);
    for (size_t i = 0; rc == FV_OK && i < s.count; i++) {
        if (json_array_append(records, s.hits[i].json) != 0)
            rc = FV_ERR_NOMEM;
    }
    for (size_t i = 0; i < s.count; i++)
        api_hit_free(&s.hits[i]);
    free(s.hits);
    if (rc != FV_OK) {
        json_decref(records);
        api_reply_store_error(out, rc);
        return;
    }

    json_t *cursor_json = json_null();
    if (next != 0) {
        char cursor[API_CURSOR_TEXT_MAX];
        api_cursor_format(rq.q.newest_first, next, cursor);
        json_decref(cursor_json);
        cursor_json = json_string(cursor);
    }
    out->status = 200;
    out->body = json_pack("{s:o, s:o, s:I}", "records", records, "next_cursor", cursor_json,
                          "count", (json_int_t)json_array_size(records));
    if (out->body != NULL && cls == FV_CLASS_AGGREGATE &&
        json_object_set_new(out->body, "k_threshold",
                            json_integer((json_int_t)rq.filter.min_hosts)) != 0) {
        json_decref(out->body);
        out->body = NULL;
    }
    /* Present only when the store skipped records of this page's range
     * that it could not decrypt, so a client can tell the page is short. */
    if (out->body != NULL && stats.undecryptable > 0 &&
        json_object_set_new(out->body, "undecryptable",
                            json_integer((json_int_t)stats.undecryptable)) != 0) {
        json_decref(out->body);
        out->body = NULL;
    }
    if (out->body != NULL && s.budget_hit && next != 0 &&
        json_object_set_new(out->body, "scan_limited", json_true()) != 0) {
        json_decref(out->body);
        out->body = NULL;
    }
    api_host_note_add(out, zone_note);
}

/* ---- /api/v1/hosts/{token}/timeline ----------------------------------- */

/* Classes on a host timeline (the aggregates carry no host). */
static const fv_class api_timeline_classes[] = {
    FV_CLASS_FLOW, FV_CLASS_DNS, FV_CLASS_TLS, FV_CLASS_HTTP,
    FV_CLASS_DHCP, FV_CLASS_SSH, FV_CLASS_ALERT,
};

/* Position of an event: traffic time, class, record id. */
typedef struct api_event_key {
    uint64_t ts_us;
    uint8_t cls;
    uint64_t id;
} api_event_key;

static int api_event_key_cmp(const api_event_key *a, const api_event_key *b)
{
    if (a->ts_us != b->ts_us)
        return a->ts_us < b->ts_us ? -1 : 1;
    if (a->cls != b->cls)
        return a->cls < b->cls ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return 0;
}

typedef struct api_event {
    api_event_key key;
    json_t *json;
    fv_record *alert;   /* alerts: a copy, converted with its life cycle at the end */
} api_event;

/* The LIMIT + 1 smallest events after the cursor, kept sorted. */
typedef struct api_timeline {
    api_filter filter;
    api_event_key after;        /* cursor; ts_us 0 and cls 0 and id 0 = from the start */
    bool has_after;
    api_event *events;          /* sorted ascending, at most cap */
    size_t count, cap;
    uint32_t seen;
    uint64_t last_id;
    uint32_t page_count;
    bool budget_hit;
    bool nomem;
    fv_class cls;
} api_timeline;

static uint64_t api_record_ts(const fv_record *rec)
{
    switch (rec->cls) {
    case FV_CLASS_FLOW:
        return rec->u.flow.first_us;
    case FV_CLASS_DNS:
        return rec->u.dns.ts_us;
    case FV_CLASS_TLS:
        return rec->u.tls.ts_us;
    case FV_CLASS_HTTP:
        return rec->u.http.ts_us;
    case FV_CLASS_DHCP:
        return rec->u.dhcp.ts_us;
    case FV_CLASS_SSH:
        return rec->u.ssh.ts_us;
    case FV_CLASS_ALERT:
        return rec->u.alert.first_us != 0 ? rec->u.alert.first_us : rec->u.alert.ts_us;
    default:
        return 0;
    }
}

static bool api_timeline_add(void *ctx, const fv_record *rec)
{
    api_timeline *t = ctx;
    t->seen++;
    t->page_count++;
    t->last_id = rec->id;
    if (t->seen >= API_TIMELINE_SCAN_MAX) {
        t->budget_hit = true;
        return false;
    }
    if (!api_filter_match(&t->filter, rec))
        return true;
    api_event_key key = {.ts_us = api_record_ts(rec), .cls = (uint8_t)rec->cls, .id = rec->id};
    if (t->has_after && api_event_key_cmp(&key, &t->after) <= 0)
        return true;
    if (t->count == t->cap && api_event_key_cmp(&key, &t->events[t->count - 1].key) >= 0)
        return true;

    json_t *json = NULL;
    fv_record *alert = NULL;
    if (rec->cls == FV_CLASS_ALERT) {
        alert = malloc(sizeof *alert);
        if (alert != NULL)
            *alert = *rec;
    } else {
        json = fv_record_to_json(rec);
    }
    if (json == NULL && alert == NULL) {
        t->nomem = true;
        return false;
    }
    /* Insert in order; the largest falls off a full array. */
    size_t pos = t->count;
    while (pos > 0 && api_event_key_cmp(&key, &t->events[pos - 1].key) < 0)
        pos--;
    if (t->count == t->cap) {
        json_decref(t->events[t->count - 1].json);
        free(t->events[t->count - 1].alert);
        t->count--;
    }
    memmove(&t->events[pos + 1], &t->events[pos], (t->count - pos) * sizeof *t->events);
    t->events[pos].key = key;
    t->events[pos].json = json;
    t->events[pos].alert = alert;
    t->count++;
    return true;
}

/* Convert the alert events of T with their life cycle, as the alert
 * list shows them. Called with the store lock held. */
static int api_timeline_alerts(api_server *srv, api_timeline *t)
{
    for (size_t i = 0; i < t->count; i++) {
        api_event *ev = &t->events[i];
        if (ev->alert == NULL)
            continue;
        store_alert_status *st = malloc(sizeof *st);
        if (st == NULL)
            return FV_ERR_NOMEM;
        int rc = store_alert_status_get(srv->store, &ev->alert->id, &ev->alert->u.alert, 1, st);
        if (rc == FV_OK) {
            ev->json = api_alert_json(ev->alert, st);
            if (ev->json == NULL)
                rc = FV_ERR_NOMEM;
        }
        free(st);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

/* Timeline cursors: "t", 16 hex digits of the time, 2 of the class and
 * 16 of the id of the last event returned. */
#define API_TIMELINE_CURSOR_MAX 36

static void api_timeline_cursor_format(const api_event_key *k, char out[API_TIMELINE_CURSOR_MAX])
{
    snprintf(out, API_TIMELINE_CURSOR_MAX, "t%016llx%02x%016llx", (unsigned long long)k->ts_us,
             (unsigned)k->cls, (unsigned long long)k->id);
}

static int api_timeline_cursor_parse(const char *text, api_event_key *k)
{
    if (text == NULL || strlen(text) != 35 || text[0] != 't')
        return FV_ERR_INVALID;
    uint64_t parts[3] = {0, 0, 0};
    static const size_t widths[3] = {16, 2, 16};
    size_t pos = 1;
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < widths[p]; i++, pos++) {
            char ch = text[pos];
            unsigned nib;
            if (ch >= '0' && ch <= '9')
                nib = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                nib = (unsigned)(ch - 'a') + 10u;
            else
                return FV_ERR_INVALID;
            parts[p] = parts[p] << 4 | nib;
        }
    }
    if (parts[1] >= FV_CLASS_COUNT || parts[2] == 0)
        return FV_ERR_INVALID;
    k->ts_us = parts[0];
    k->cls = (uint8_t)parts[1];
    k->id = parts[2];
    return FV_OK;
}

static void api_route_timeline(api_server *srv, struct MHD_Connection *conn, int kind,
                               const api_match *match, api_reply *out)
{
    static const char *const allowed[] = {"from", "to", "limit", "cursor", NULL};
    api_args a = {.allowed = allowed};
    api_timeline t = {0};
    uint64_t from_us = 0, to_us = 0;
    uint32_t limit = API_LIMIT_DEFAULT;
    bool empty = false;
    const char *v;

    (void)kind;
    if (!api_args_read(conn, &a, out))
        return;
    if (api_host_filter_parse(match->arg, &t.filter.host) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid host in the path; allowed: " API_HOST_ALLOWED);
        return;
    }
    t.filter.proto = t.filter.port = t.filter.state = -1;
    if ((v = api_arg(&a, "limit")) != NULL && api_limit_parse(v, &limit) != FV_OK) {
        api_reply_bad_value(out, "limit", v, "an integer from 1 to 1000");
        return;
    }
    if (!api_args_window(&a, &from_us, &to_us, &empty, out))
        return;
    if ((v = api_arg(&a, "cursor")) != NULL) {
        if (api_timeline_cursor_parse(v, &t.after) != FV_OK) {
            api_reply_error(out, 400, "invalid_parameter",
                            "invalid value for 'cursor'; allowed: the next_cursor of the "
                            "previous page, unchanged");
            return;
        }
        t.has_after = true;
    }
    t.cap = (size_t)limit + 1;
    t.events = calloc(t.cap, sizeof *t.events);
    if (t.events == NULL) {
        api_reply_nomem(out);
        return;
    }

    int rc = FV_OK;
    bool complete = true;
    uint64_t now_us = api_now_us(srv);
    pthread_mutex_lock(&srv->store_lock);
    for (size_t c = 0; !empty && c < sizeof api_timeline_classes / sizeof api_timeline_classes[0];
         c++) {
        store_query q = {.cls = api_timeline_classes[c], .from_us = from_us, .to_us = to_us,
                         .limit = STORE_QUERY_LIMIT_MAX};
        t.seen = 0;
        t.last_id = 0;
        for (;;) {
            uint64_t store_next = 0;
            t.page_count = 0;
            rc = store_query_run(srv->store, &q, now_us, api_timeline_add, &t, &store_next);
            if (rc != FV_OK || t.nomem || t.budget_hit || store_next == 0)
                break;
            q.after_id = store_next;
        }
        if (rc != FV_OK || t.nomem)
            break;
        if (t.budget_hit) {
            t.budget_hit = false;
            complete = false;
        }
    }
    if (rc == FV_OK && !t.nomem)
        rc = api_timeline_alerts(srv, &t);
    pthread_mutex_unlock(&srv->store_lock);

    json_t *events = json_array();
    if (rc == FV_OK && (t.nomem || events == NULL))
        rc = FV_ERR_NOMEM;
    size_t shown = t.count > limit ? limit : t.count;
    for (size_t i = 0; rc == FV_OK && i < shown; i++) {
        char ts[FV_TIME_TEXT_MAX];
        fv_time_format(t.events[i].key.ts_us, ts);
        json_t *ev = json_pack("{s:s, s:s, s:O}", "class", fv_class_name(t.events[i].key.cls),
                               "ts", ts, "record", t.events[i].json);
        if (ev == NULL || json_array_append_new(events, ev) != 0)
            rc = FV_ERR_NOMEM;
    }
    json_t *cursor_json = json_null();
    if (rc == FV_OK && t.count > limit) {
        char cursor[API_TIMELINE_CURSOR_MAX];
        api_timeline_cursor_format(&t.events[limit - 1].key, cursor);
        json_decref(cursor_json);
        cursor_json = json_string(cursor);
    }
    for (size_t i = 0; i < t.count; i++) {
        json_decref(t.events[i].json);
        free(t.events[i].alert);
    }
    free(t.events);
    if (rc != FV_OK) {
        json_decref(events);
        json_decref(cursor_json);
        api_reply_store_error(out, rc);
        return;
    }
    out->status = 200;
    out->body = json_pack("{s:s, s:o, s:o, s:I, s:b}", "host", t.filter.host.text, "events",
                          events, "next_cursor", cursor_json, "count", (json_int_t)shown,
                          "complete", complete);
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

/* One pass of api_traffic_range: the single-record classes, or only the
 * aggregates when AGGREGATES is true. */
static int api_traffic_range_pass(api_server *srv, uint64_t now_us, bool aggregates,
                                  api_span *span)
{
    for (int cls = FV_CLASS_FLOW; cls < FV_CLASS_COUNT; cls++) {
        if (cls == FV_CLASS_ALERT)
            continue; /* alerts are not traffic */
        if ((cls == FV_CLASS_AGGREGATE) != aggregates)
            continue;
        for (int newest = 0; newest <= 1; newest++) {
            store_query q = {.cls = (fv_class)cls, .limit = 1, .newest_first = newest != 0};
            int rc = store_query_run(srv->store, &q, now_us, api_span_add, span, NULL);

            if (rc != FV_OK)
                return rc;
        }
    }
    return FV_OK;
}

/*
 * Estimate the traffic time range from the oldest and newest stored
 * record of each traffic class. Reading two records per class keeps the
 * summary cheap; the range is exact unless captures were ingested out of
 * traffic order. Aggregates cover whole hours or days, so they count only
 * when no single record is stored (a store of aggregate-mode hosts).
 * Called with the store lock held.
 */
static int api_traffic_range(api_server *srv, uint64_t now_us, api_span *span)
{
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && span->first_us != 0)
            break;
        int rc = api_traffic_range_pass(srv, now_us, pass == 1, span);
        if (rc != FV_OK)
            return rc;
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

/*
 * Render the summary kept earlier in the second of NOW_US into OUT->text
 * with the time of NOW_US. Returns false when there is none, or memory
 * ran out. Building a summary decrypts every alert to count them (about
 * 30 ms on a store of 10 million flows), so under load a body is reused
 * for at most one second. The cache is keyed by time alone: every API
 * request appends an audit entry, so the store's last transaction id
 * changes with each request and cannot key it. The text is copied as it
 * is, so a request costs no JSON parsing.
 */
static bool api_summary_cached(api_server *srv, uint64_t now_us, api_reply *out)
{
    char time_text[FV_TIME_TEXT_MAX];
    fv_time_format(now_us, time_text);

    bool done = false;
    pthread_mutex_lock(&srv->store_lock);
    /* The kept text is an object without "time": "{...}" of at least
     * one member. */
    if (srv->summary_cache_valid && srv->summary_cache_second == now_us / 1000000u) {
        size_t len = srv->summary_cache_len;
        size_t cap = len + strlen(time_text) + 16;
        char *text = malloc(cap);
        if (text != NULL) {
            int n = snprintf(text, cap, "{\"time\":\"%s\",%.*s", time_text, (int)(len - 1),
                             srv->summary_cache + 1);
            if (n > 0 && (size_t)n < cap) {
                out->text = text;
                out->status = 200;
                done = true;
            } else {
                free(text);
            }
        }
    }
    pthread_mutex_unlock(&srv->store_lock);
    return done;
}

/* Keep BODY (without "time") as the summary of the second of NOW_US; a
 * body larger than the cache is not kept. */
static bool api_summary_keep(api_server *srv, const json_t *body, uint64_t now_us)
{
    pthread_mutex_lock(&srv->store_lock);
    size_t len = json_dumpb(body, srv->summary_cache, sizeof srv->summary_cache, JSON_COMPACT);
    srv->summary_cache_valid = len > 2 && len < sizeof srv->summary_cache;
    srv->summary_cache_len = len;
    srv->summary_cache_second = now_us / 1000000u;
    bool kept = srv->summary_cache_valid;
    pthread_mutex_unlock(&srv->store_lock);
    return kept;
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

    if (api_summary_cached(srv, now_us, out))
        return;

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
    uint64_t states[3] = {0, 0, 0};
    if (rc == FV_OK)
        rc = store_alert_state_counts(srv->store, now_us, states);
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

    json_t *alerts = api_alert_tally_json(&tally, complete);
    if (alerts != NULL)
        json_object_set_new(alerts, "by_state",
                            json_pack("{s:I, s:I, s:I}", "new", (json_int_t)states[0],
                                      "acknowledged", (json_int_t)states[1], "closed",
                                      (json_int_t)states[2]));
    json_t *body = json_pack("{s:o, s:o, s:o, s:o}", "records", records, "ingest", ingest,
                             "alerts", alerts, "traffic", traffic);
    if (body == NULL) {
        api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        return;
    }
    /* Reply with the kept text, as later requests of this second do. */
    if (api_summary_keep(srv, body, now_us) && api_summary_cached(srv, now_us, out)) {
        json_decref(body);
        return;
    }
    json_object_set_new(body, "time", api_time_json(now_us));
    out->status = 200;
    out->body = body;
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

/* Serve a compliance document from the serve process's policy. The
 * transparency notice covers a period (from, to), and the others take
 * no parameters. */
static void api_route_compliance(api_server *srv, struct MHD_Connection *conn, int kind,
                                 const api_match *match, api_reply *out)
{
    static const char *const period[] = {"from", "to", NULL};
    static const char *const none[] = {NULL};
    static const char *const documents[] = {"policy", "processing", "transparency"};
    const char *document = documents[kind];
    bool transparency = kind == API_DOC_TRANSPARENCY;
    api_args a = {.allowed = transparency ? period : none};

    (void)match;
    if (!api_args_read(conn, &a, out))
        return;
    if (srv->compliance_fn == NULL) {
        api_reply_error(out, 404, "no_policy",
                        "no policy loaded; start the server with 'flowveil serve --policy FILE'");
        return;
    }
    uint64_t now_us = api_now_us(srv);
    uint64_t from_us = 0, to_us = now_us;
    if (transparency) {
        bool empty = false;
        uint64_t to_given = 0;
        if (!api_args_window(&a, &from_us, &to_given, &empty, out))
            return;
        if (api_arg(&a, "to") != NULL)
            to_us = to_given;
        /* Without from, the notice covers the 30 days before to. */
        if (api_arg(&a, "from") == NULL)
            from_us = to_us > API_TRANSPARENCY_DEFAULT_US ? to_us - API_TRANSPARENCY_DEFAULT_US : 0;
        if (from_us > to_us) {
            api_reply_error(out, 400, "invalid_parameter",
                            "'from' is later than 'to' (default: now); give from <= to");
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

/* ---- handlers without parameters --------------------------------------- */

static void api_route_summary_h(api_server *srv, struct MHD_Connection *conn, int kind,
                                const api_match *match, api_reply *out)
{
    (void)kind;
    (void)match;
    if (api_no_args(conn, out))
        api_route_summary(srv, out);
}

static void api_route_retention_h(api_server *srv, struct MHD_Connection *conn, int kind,
                                  const api_match *match, api_reply *out)
{
    (void)kind;
    (void)match;
    if (api_no_args(conn, out))
        api_route_retention(srv, out);
}

static void api_route_counters_h(api_server *srv, struct MHD_Connection *conn, int kind,
                                 const api_match *match, api_reply *out)
{
    (void)kind;
    (void)match;
    if (api_no_args(conn, out))
        api_route_counters(srv, out);
}

static void api_route_top_h(api_server *srv, struct MHD_Connection *conn, int kind,
                            const api_match *match, api_reply *out)
{
    static const char *const what[] = {"destinations", "protocols", "zones"};
    (void)match;
    api_route_top(srv, conn, what[kind], out);
}

static void api_route_audit_h(api_server *srv, struct MHD_Connection *conn, int kind,
                              const api_match *match, api_reply *out)
{
    (void)match;
    if (kind == 0)
        api_route_audit(srv, conn, out);
    else
        api_route_audit_verify(srv, conn, out);
}

/* ---- the route table ---------------------------------------------------- */

#define ANALYSTS (API_ROLE_ANALYST | API_ROLE_ADMIN)
#define OFFICERS (API_ROLE_COMPLIANCE | API_ROLE_ADMIN)

/*
 * Every route of the server. docs/openapi.yaml lists the same (method,
 * path) pairs, and tests/unit/api/test_api_openapi.c checks that. Routes
 * with a NULL handler never reach the route layer: api_auth.c serves
 * login, logout, me and users, and api.c serves /metrics.
 */
static const api_route api_routes[] = {
    {"GET", "/api/v1/health", API_ROLE_ALL, api_route_health, 0},
    {"GET", "/api/v1/summary", API_ROLE_ALL, api_route_summary_h, 0},
    {"GET", "/api/v1/retention", API_ROLE_ALL, api_route_retention_h, 0},
    {"GET", "/api/v1/counters", API_ROLE_ALL, api_route_counters_h, 0},
    {"GET", "/api/v1/flows", ANALYSTS, api_route_records, FV_CLASS_FLOW},
    {"GET", "/api/v1/dns", ANALYSTS, api_route_records, FV_CLASS_DNS},
    {"GET", "/api/v1/tls", ANALYSTS, api_route_records, FV_CLASS_TLS},
    {"GET", "/api/v1/http", ANALYSTS, api_route_records, FV_CLASS_HTTP},
    {"GET", "/api/v1/dhcp", ANALYSTS, api_route_records, FV_CLASS_DHCP},
    {"GET", "/api/v1/ssh", ANALYSTS, api_route_records, FV_CLASS_SSH},
    {"GET", "/api/v1/aggregates", ANALYSTS, api_route_records, FV_CLASS_AGGREGATE},
    {"GET", "/api/v1/alerts", ANALYSTS, api_route_records, FV_CLASS_ALERT},
    {"GET", "/api/v1/alerts/{id}", ANALYSTS, api_route_alert_get, 0},
    {"PATCH", "/api/v1/alerts/{id}", ANALYSTS, api_route_alert_patch, 0},
    {"GET", "/api/v1/hosts/{token}/timeline", ANALYSTS, api_route_timeline, 0},
    {"GET", "/api/v1/series", ANALYSTS, api_route_series, 0},
    {"GET", "/api/v1/top/destinations", ANALYSTS, api_route_top_h, 0},
    {"GET", "/api/v1/top/protocols", ANALYSTS, api_route_top_h, 1},
    {"GET", "/api/v1/top/zones", ANALYSTS, api_route_top_h, 2},
    {"GET", "/api/v1/top/talkers", ANALYSTS, api_route_top_records, 0},
    {"GET", "/api/v1/top/domains", ANALYSTS, api_route_top_records, 1},
    {"GET", "/api/v1/policy", OFFICERS, api_route_compliance, API_DOC_POLICY},
    {"GET", "/api/v1/reports/processing", OFFICERS, api_route_compliance, API_DOC_PROCESSING},
    {"GET", "/api/v1/reports/transparency", OFFICERS, api_route_compliance,
     API_DOC_TRANSPARENCY},
    {"GET", "/api/v1/audit", OFFICERS, api_route_audit_h, 0},
    {"GET", "/api/v1/audit/verify", OFFICERS, api_route_audit_h, 1},
    {"POST", "/api/v1/login", API_ROLE_ALL, NULL, 0},
    {"POST", "/api/v1/logout", API_ROLE_ALL, NULL, 0},
    {"GET", "/api/v1/me", API_ROLE_ALL, NULL, 0},
    {"GET", "/api/v1/users", API_ROLE_ADMIN, NULL, 0},
    {"GET", "/metrics", API_ROLE_ADMIN, NULL, 0},
};

const api_route *api_route_table(size_t *count)
{
    *count = sizeof api_routes / sizeof api_routes[0];
    return api_routes;
}

/*
 * Match PATH against PATTERN. A pattern contains at most one "{name}",
 * which matches a non-empty run of PATH between the literal text before and
 * after it (a host such as 10.1.0.0/24 contains a slash, so the run may
 * too). The matched text is copied into SEGMENT.
 */
static bool api_pattern_match(const char *pattern, const char *path, char *segment,
                              size_t segment_len, const char **arg)
{
    const char *open = strchr(pattern, '{');
    *arg = NULL;
    if (open == NULL)
        return strcmp(pattern, path) == 0;
    const char *close = strchr(open, '}');
    if (close == NULL)
        return false;
    size_t head = (size_t)(open - pattern);
    const char *tail = close + 1;
    size_t tail_len = strlen(tail), path_len = strlen(path);
    if (strncmp(pattern, path, head) != 0 || !(head + tail_len < path_len) ||
        strcmp(path + path_len - tail_len, tail) != 0)
        return false;
    size_t mid = path_len - tail_len - head;
    if (!(mid < segment_len))
        return false;
    memcpy(segment, path + head, mid);
    segment[mid] = '\0';
    /* Only the timeline's host may contain a slash. */
    if (tail_len == 0 && strchr(segment, '/') != NULL)
        return false;
    *arg = segment;
    return true;
}

const api_route *api_route_find(const char *method, const char *path, api_match *match,
                                char *segment, size_t segment_len, bool *path_known)
{
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    *path_known = false;
    match->arg = NULL;
    for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
        const char *arg = NULL;
        if (!api_pattern_match(api_routes[i].pattern, path, segment, segment_len, &arg))
            continue;
        *path_known = true;
        if (strcmp(api_routes[i].method, method) == 0) {
            match->arg = arg;
            return &api_routes[i];
        }
    }
    return NULL;
}

int api_route_permission(const char *method, const char *path)
{
    char segment[256];
    api_match match;
    bool known = false;
    if (method == NULL || path == NULL)
        return 0;
    const api_route *r = api_route_find(method, path, &match, segment, sizeof segment, &known);
    return r != NULL ? (int)r->roles : 0;
}

void api_route_methods(const char *path, char *out, size_t out_len)
{
    char segment[256];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
        const char *arg;
        if (!api_pattern_match(api_routes[i].pattern, path, segment, sizeof segment, &arg))
            continue;
        bool get = strcmp(api_routes[i].method, "GET") == 0;
        int w = snprintf(out + n, out_len - n, "%s%s%s", n > 0 ? ", " : "",
                         api_routes[i].method, get ? ", HEAD" : "");
        if (w < 0 || !((size_t)w < out_len - n))
            return;
        n += (size_t)w;
    }
}

/* ---- dispatch ----------------------------------------------------------- */

void api_route_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                       api_reply *out)
{
    char segment[256];
    api_match match;
    bool known = false;
    const char *method = api_request_method();

    out->status = 0;
    out->body = NULL;
    if (method == NULL)
        method = "GET";

    if (strncmp(url, "/api/v1/", strlen("/api/v1/")) != 0) {
        api_reply_error(out, 404, "not_found", "no such API route; routes start with /api/v1/");
        return;
    }
    const api_route *r = api_route_find(method, url, &match, segment, sizeof segment, &known);
    if (r == NULL && known) {
        char methods[96], message[API_MESSAGE_MAX];
        api_route_methods(url, methods, sizeof methods);
        snprintf(message, sizeof message, "this route accepts only %s", methods);
        api_reply_error(out, 405, "method_not_allowed", message);
        return;
    }
    if (r == NULL || r->handler == NULL) {
        api_reply_error(out, 404, "not_found", "no such API route; see docs/API.md");
        return;
    }
    char note[API_NOTE_MAX];
    if (!api_host_literal_check(srv, conn, url, note, sizeof note, out))
        return;
    r->handler(srv, conn, r->kind, &match, out);
    api_host_note_add(out, note);
}
