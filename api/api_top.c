/*
 * api_top.c: /api/v1/top/{destinations,protocols,zones}, traffic totals
 * per group summed over the aggregates class, with every group of fewer
 * than k distinct internal hosts left out and counted.
 *
 * Aggregate records carry a distinct-host count per bucket, not the
 * hosts themselves, so the hosts of a group over several buckets cannot
 * be united. A group's host count is therefore the largest count of any
 * one of its records: a lower bound on its distinct hosts. A group is
 * shown only when that lower bound reaches k, so a shown group always
 * has at least k hosts. The price is that a group whose hosts are spread
 * thinly over many buckets may be suppressed although it has k hosts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* Only hourly records are summed: every flow is counted once into an
 * hourly and once into a daily record, so summing both would count it
 * twice. The width matches FV_AGGREGATE_HOUR_S of cli/aggregate.h. */
#define API_TOP_BUCKET_S 3600u

/* The policy's default reporting.k_threshold, used when the store has
 * none recorded (no capturing process has opened it yet). */
#define API_TOP_DEFAULT_K 5u

int api_aggregate_k_threshold(api_server *srv, uint64_t *k)
{
    int rc = store_meta_get(srv->store, STORE_META_K_THRESHOLD, k);
    if (rc == FV_OK && *k == 0)
        *k = API_TOP_DEFAULT_K;
    return rc;
}

#define API_TOP_LIMIT_DEFAULT 10u
#define API_TOP_SCAN_PAGE 10000u
/* Upper bound on aggregate records read per request; past it the reply
 * carries "complete": false. */
#define API_TOP_SCAN_MAX 2000000u
#define API_TOP_KEY_MAX 128

typedef enum api_top_kind {
    API_TOP_DESTINATIONS,
    API_TOP_PROTOCOLS,
    API_TOP_ZONES,
} api_top_kind;

/* Totals of one group. The identifying fields are those of the first
 * record of the group; only the ones the kind groups by are reported. */
typedef struct api_top_group {
    fv_endpoint peer;
    uint8_t proto;
    uint16_t dport;
    char zone[FV_ZONE_NAME_MAX];
    uint64_t flows, packets, bytes_in, bytes_out;
    uint32_t hosts_at_least; /* largest per-record host count */
} api_top_group;

typedef struct api_top_scan {
    api_top_kind kind;
    uint64_t from_us, to_us; /* bucket start window, inclusive; to_us 0 = unbounded */
    json_t *index;           /* group key -> position in groups */
    api_top_group *groups;
    size_t count, capacity;
    uint64_t last_id, scanned;
    uint32_t page_count;
    bool nomem;
} api_top_scan;

/* Write the text that identifies the group of REC for KIND into KEY. */
static void api_top_key(api_top_kind kind, const fv_aggregate_record *rec,
                        char key[API_TOP_KEY_MAX])
{
    char peer[FV_ENDPOINT_TEXT_MAX] = "-";

    switch (kind) {
    case API_TOP_DESTINATIONS:
        if (rec->peer.kind != FV_EP_NONE)
            fv_endpoint_format(&rec->peer, peer);
        snprintf(key, API_TOP_KEY_MAX, "%s|%u|%u", peer, (unsigned)rec->proto,
                 (unsigned)rec->dport);
        return;
    case API_TOP_PROTOCOLS:
        snprintf(key, API_TOP_KEY_MAX, "%u|%u", (unsigned)rec->proto, (unsigned)rec->dport);
        return;
    case API_TOP_ZONES:
        snprintf(key, API_TOP_KEY_MAX, "%.*s", FV_ZONE_NAME_MAX - 1, rec->zone);
        return;
    }
}

static api_top_group *api_top_group_for(api_top_scan *s, const fv_aggregate_record *rec)
{
    char key[API_TOP_KEY_MAX];
    api_top_key(s->kind, rec, key);

    json_t *pos = json_object_get(s->index, key);
    if (pos != NULL)
        return &s->groups[json_integer_value(pos)];

    if (s->count == s->capacity) {
        size_t capacity = s->capacity == 0 ? 64 : s->capacity * 2;
        api_top_group *grown = realloc(s->groups, capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        s->groups = grown;
        s->capacity = capacity;
    }
    if (json_object_set_new(s->index, key, json_integer((json_int_t)s->count)) != 0)
        return NULL;
    api_top_group *g = &s->groups[s->count++];
    memset(g, 0, sizeof *g);
    g->peer = rec->peer;
    g->proto = rec->proto;
    g->dport = rec->dport;
    memcpy(g->zone, rec->zone, sizeof g->zone);
    g->zone[sizeof g->zone - 1] = '\0';
    return g;
}

static bool api_top_add(void *ctx, const fv_record *rec)
{
    api_top_scan *s = ctx;
    const fv_aggregate_record *a = &rec->u.aggregate;

    s->last_id = rec->id;
    s->page_count++;
    s->scanned++;
    if (a->bucket_s != API_TOP_BUCKET_S || a->bucket_start_us < s->from_us ||
        (s->to_us != 0 && a->bucket_start_us > s->to_us))
        return true;

    api_top_group *g = api_top_group_for(s, a);
    if (g == NULL) {
        s->nomem = true;
        return false;
    }
    g->flows += a->flows;
    g->packets += a->packets;
    g->bytes_in += a->bytes_in;
    g->bytes_out += a->bytes_out;
    if (a->hosts > g->hosts_at_least)
        g->hosts_at_least = a->hosts;
    return true;
}

/* Largest flows first, then largest bytes, so equal totals keep a
 * stable order between requests. */
static int api_top_compare(const void *x, const void *y)
{
    const api_top_group *a = x, *b = y;
    if (a->flows != b->flows)
        return a->flows < b->flows ? 1 : -1;
    uint64_t bytes_a = a->bytes_in + a->bytes_out, bytes_b = b->bytes_in + b->bytes_out;
    if (bytes_a != bytes_b)
        return bytes_a < bytes_b ? 1 : -1;
    int zone = strcmp(a->zone, b->zone);
    if (zone != 0)
        return zone;
    if (a->proto != b->proto)
        return a->proto < b->proto ? -1 : 1;
    if (a->dport != b->dport)
        return a->dport < b->dport ? -1 : 1;
    return memcmp(a->peer.addr, b->peer.addr, sizeof a->peer.addr);
}

static json_t *api_top_row(api_top_kind kind, const api_top_group *g)
{
    uint64_t bytes = g->bytes_in + g->bytes_out;
    json_t *row = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "flows", (json_int_t)g->flows,
                            "packets", (json_int_t)g->packets, "bytes",
                            (json_int_t)bytes, "bytes_in",
                            (json_int_t)g->bytes_in, "bytes_out", (json_int_t)g->bytes_out,
                            "hosts_at_least", (json_int_t)g->hosts_at_least);
    if (row == NULL)
        return NULL;

    int rc = 0;
    if (kind == API_TOP_DESTINATIONS) {
        char peer[FV_ENDPOINT_TEXT_MAX];
        json_t *peer_json = json_null();
        if (g->peer.kind != FV_EP_NONE) {
            fv_endpoint_format(&g->peer, peer);
            json_decref(peer_json);
            peer_json = json_string(peer);
        }
        rc |= json_object_set_new(row, "peer", peer_json);
    }
    if (kind == API_TOP_DESTINATIONS || kind == API_TOP_PROTOCOLS) {
        rc |= json_object_set_new(row, "proto", json_integer(g->proto));
        rc |= json_object_set_new(row, "dport", json_integer(g->dport));
    }
    if (kind == API_TOP_ZONES)
        rc |= json_object_set_new(row, "zone", json_string(g->zone));
    if (rc != 0) {
        json_decref(row);
        return NULL;
    }
    return row;
}

/* Query parameters of a top route, as raw text; NULL when absent. */
typedef struct api_top_params {
    const char *from, *to, *limit;
    bool failed;
    char message[API_MESSAGE_MAX];
} api_top_params;

static enum MHD_Result api_top_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    api_top_params *p = cls;
    const char **slot = NULL;
    char safe[48];

    (void)kind;
    if (strcmp(key, "from") == 0)
        slot = &p->from;
    else if (strcmp(key, "to") == 0)
        slot = &p->to;
    else if (strcmp(key, "limit") == 0)
        slot = &p->limit;

    api_text_sanitize(key, safe, sizeof safe);
    if (slot == NULL) {
        snprintf(p->message, sizeof p->message,
                 "query parameter '%s' is unknown; allowed: from, to, limit", safe);
    } else if (value == NULL) {
        snprintf(p->message, sizeof p->message,
                 "query parameter '%s' has no value; write name=value", safe);
    } else if (*slot != NULL) {
        snprintf(p->message, sizeof p->message,
                 "query parameter '%s' is given more than once; give it once", safe);
    } else {
        *slot = value;
        return MHD_YES;
    }
    /* P is never NULL (the caller passes its own struct). The analyzer
     * assumes it is because slot == &p->from, at offset 0, was compared
     * with NULL above. */
    p->failed = true;  // NOLINT(clang-analyzer-core.NullDereference)
    return MHD_NO;
}

/* Validate the parameters into S and *LIMIT; on failure fill OUT with a
 * 400 reply and return false. */
static bool api_top_parse(struct MHD_Connection *conn, api_top_scan *s, uint32_t *limit,
                          api_reply *out)
{
    api_top_params p = {0};

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, api_top_collect, &p);
    if (p.failed) {
        api_reply_error(out, 400, "invalid_parameter", p.message);
        return false;
    }
    *limit = API_TOP_LIMIT_DEFAULT;
    if (p.limit != NULL && api_limit_parse(p.limit, limit) != FV_OK) {
        api_reply_bad_value(out, "limit", p.limit, "an integer from 1 to 1000");
        return false;
    }
    if (p.from != NULL && api_time_parse(p.from, &s->from_us) != FV_OK) {
        api_reply_bad_value(out, "from", p.from, API_TIME_ALLOWED);
        return false;
    }
    if (p.to != NULL && api_time_parse(p.to, &s->to_us) != FV_OK) {
        api_reply_bad_value(out, "to", p.to, API_TIME_ALLOWED);
        return false;
    }
    if (p.from != NULL && p.to != NULL && s->from_us > s->to_us) {
        api_reply_error(out, 400, "invalid_parameter", "'from' is later than 'to'; give from <= to");
        return false;
    }
    /* An explicit to=0 (the epoch) matches nothing, unlike "unbounded". */
    if (p.to != NULL && s->to_us == 0)
        s->from_us = UINT64_MAX;
    return true;
}

/* Read the hourly aggregates in pages, oldest first, into S. *K gets
 * the threshold from the store's meta database. Called with the store
 * lock held. */
static int api_top_collect_store(api_server *srv, api_top_scan *s, uint64_t *k, bool *complete)
{
    int rc = store_meta_get(srv->store, STORE_META_K_THRESHOLD, k);
    if (rc != FV_OK)
        return rc;

    store_query q = {.cls = FV_CLASS_AGGREGATE, .limit = API_TOP_SCAN_PAGE};
    uint64_t now_us = srv->clock_us();
    *complete = false;
    while (s->scanned < API_TOP_SCAN_MAX) {
        s->page_count = 0;
        q.after_id = s->last_id;
        rc = store_query_run_cached(srv->store, srv->aggregate_cache, &q, now_us, api_top_add, s,
                                    NULL);
        if (rc != FV_OK || s->nomem)
            return rc;
        if (s->page_count < API_TOP_SCAN_PAGE) {
            *complete = true;
            break;
        }
    }
    return FV_OK;
}

void api_route_top(api_server *srv, struct MHD_Connection *conn, const char *what,
                   api_reply *out)
{
    api_top_scan s = {0};
    uint32_t limit = 0;
    uint64_t k = 0;
    bool complete = false;
    json_t *rows = NULL;

    if (strcmp(what, "destinations") == 0) {
        s.kind = API_TOP_DESTINATIONS;
    } else if (strcmp(what, "protocols") == 0) {
        s.kind = API_TOP_PROTOCOLS;
    } else if (strcmp(what, "zones") == 0) {
        s.kind = API_TOP_ZONES;
    } else {
        api_reply_error(out, 404, "not_found",
                        "no such API route; top lists are destinations, protocols and zones");
        return;
    }
    if (!api_top_parse(conn, &s, &limit, out))
        return;

    s.index = json_object();
    rows = json_array();
    if (s.index == NULL || rows == NULL)
        goto nomem;

    pthread_mutex_lock(&srv->store_lock);
    int rc = api_top_collect_store(srv, &s, &k, &complete);
    pthread_mutex_unlock(&srv->store_lock);
    if (s.nomem)
        goto nomem;
    if (rc != FV_OK) {
        char message[API_MESSAGE_MAX];
        fv_warning("api: reading the aggregates failed: %s", fv_strerror(rc));
        snprintf(message, sizeof message, "reading the record store failed: %s",
                 fv_strerror(rc));
        api_reply_error(out, rc == FV_ERR_NOMEM ? 503 : 500, "store_error", message);
        goto done;
    }
    bool k_from_store = k != 0;
    if (!k_from_store)
        k = API_TOP_DEFAULT_K;

    if (s.count > 0)
        qsort(s.groups, s.count, sizeof *s.groups, api_top_compare);
    uint64_t suppressed = 0;
    for (size_t i = 0; i < s.count; i++) {
        if (s.groups[i].hosts_at_least < k) {
            suppressed++;
            continue;
        }
        if (json_array_size(rows) >= limit)
            continue;
        json_t *row = api_top_row(s.kind, &s.groups[i]);
        if (row == NULL || json_array_append_new(rows, row) != 0)
            goto nomem;
    }

    out->status = 200;
    out->body = json_pack("{s:O, s:I, s:I, s:s, s:b, s:I}", "rows", rows, "suppressed_groups",
                          (json_int_t)suppressed, "k_threshold", (json_int_t)k,
                          "k_threshold_source", k_from_store ? "store" : "default", "complete",
                          complete, "count", (json_int_t)json_array_size(rows));
    if (out->body == NULL)
        goto nomem;
    goto done;

nomem:
    api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
done:
    json_decref(rows);
    json_decref(s.index);
    free(s.groups);
}

/* ---- /api/v1/top/talkers and /api/v1/top/domains ------------------------- */

/*
 * These two lists are built from single records (flows, DNS queries)
 * rather than aggregates, which carry no host and no name. Talkers are
 * internal hosts (pseudonyms) ranked by bytes. Each talker is one host,
 * so the k-threshold applies to the list as a whole. With fewer than k
 * distinct hosts in the window no talker is shown, because a ranking of
 * so few hosts singles them out. Domains are ranked by queries, and each
 * domain needs queries from at least k distinct hosts to be shown.
 */

#define API_TOP_HOSTS_PER_DOMAIN_MAX 4096u

typedef struct api_talker {
    char host[FV_ENDPOINT_TEXT_MAX];
    char zone[FV_ZONE_NAME_MAX];
    uint64_t flows, packets, bytes_in, bytes_out;
} api_talker;

typedef struct api_domain {
    char name[FV_NAME_MAX];
    uint64_t queries;
    json_t *hosts;              /* set of client host texts */
    size_t host_count;
} api_domain;

typedef struct api_top_records {
    int kind;                   /* 0 talkers, 1 domains */
    json_t *index;              /* key -> position */
    api_talker *talkers;
    api_domain *domains;
    size_t count, capacity;
    uint64_t scanned;
    bool nomem;
} api_top_records;

static size_t api_top_slot(api_top_records *t, const char *key, bool *created)
{
    json_t *pos = json_object_get(t->index, key);
    *created = false;
    if (pos != NULL)
        return (size_t)json_integer_value(pos);
    if (t->count == t->capacity) {
        size_t capacity = t->capacity == 0 ? 64 : t->capacity * 2;
        if (t->kind == 0) {
            api_talker *grown = realloc(t->talkers, capacity * sizeof *grown);
            if (grown == NULL)
                return SIZE_MAX;
            t->talkers = grown;
        } else {
            api_domain *grown = realloc(t->domains, capacity * sizeof *grown);
            if (grown == NULL)
                return SIZE_MAX;
            t->domains = grown;
        }
        t->capacity = capacity;
    }
    if (json_object_set_new(t->index, key, json_integer((json_int_t)t->count)) != 0)
        return SIZE_MAX;
    *created = true;
    return t->count++;
}

static bool api_talker_add(api_top_records *t, const fv_endpoint *host, uint64_t out_bytes,
                           uint64_t in_bytes, uint64_t packets)
{
    char key[FV_ENDPOINT_TEXT_MAX];
    bool created;
    fv_endpoint_format(host, key);
    if (key[0] == '\0')
        return true;
    size_t i = api_top_slot(t, key, &created);
    if (i == SIZE_MAX)
        return false;
    api_talker *g = &t->talkers[i];
    if (created) {
        memset(g, 0, sizeof *g);
        memcpy(g->host, key, sizeof g->host);
        snprintf(g->zone, sizeof g->zone, "%.*s", FV_ZONE_NAME_MAX - 1, host->zone);
    }
    g->flows++;
    g->packets += packets;
    g->bytes_out += out_bytes;
    g->bytes_in += in_bytes;
    return true;
}

/* The domain a query name is counted under: its last two labels, or
 * three when the last two look like a country's second level (co.uk,
 * com.au). A heuristic, without the public suffix list. */
static void api_domain_key(const char *qname, char out[FV_NAME_MAX])
{
    size_t n = strnlen(qname, FV_NAME_MAX - 1);
    while (n > 0 && qname[n - 1] == '.')
        n--;
    size_t dots[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
    unsigned found = 0;
    for (size_t i = n; i > 0 && found < 3; i--) {
        if (qname[i - 1] == '.')
            dots[found++] = i - 1;
    }
    size_t start = 0;
    if (found >= 2) {
        size_t tld_len = n - dots[0] - 1;
        size_t second_len = dots[0] - dots[1] - 1;
        bool country_second = tld_len == 2 && second_len <= 3;
        if (!country_second)
            start = dots[1] + 1;
        else if (found >= 3)
            start = dots[2] + 1;
    }
    size_t len = n - start;
    for (size_t i = 0; i < len; i++) {
        char c = qname[start + i];
        out[i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    out[len] = '\0';
}

static bool api_top_records_add(void *ctx, const fv_record *rec)
{
    api_top_records *t = ctx;
    t->scanned++;
    if (t->kind == 0 && rec->cls == FV_CLASS_FLOW) {
        const fv_flow_record *f = &rec->u.flow;
        bool ok = true;
        if (fv_endpoint_is_internal(&f->src))
            ok = api_talker_add(t, &f->src, f->bytes_fwd, f->bytes_rev,
                                f->pkts_fwd + f->pkts_rev);
        if (ok && fv_endpoint_is_internal(&f->dst))
            ok = api_talker_add(t, &f->dst, f->bytes_rev, f->bytes_fwd,
                                f->pkts_fwd + f->pkts_rev);
        if (!ok) {
            t->nomem = true;
            return false;
        }
        return true;
    }
    if (t->kind == 1 && rec->cls == FV_CLASS_DNS) {
        const fv_dns_record *d = &rec->u.dns;
        if (d->is_response || d->qname[0] == '\0' || !fv_endpoint_is_internal(&d->client))
            return true;
        char key[FV_NAME_MAX];
        bool created;
        api_domain_key(d->qname, key);
        if (key[0] == '\0')
            return true;
        size_t i = api_top_slot(t, key, &created);
        if (i == SIZE_MAX) {
            t->nomem = true;
            return false;
        }
        api_domain *g = &t->domains[i];
        if (created) {
            memset(g, 0, sizeof *g);
            memcpy(g->name, key, sizeof g->name);
            g->hosts = json_object();
            if (g->hosts == NULL) {
                t->nomem = true;
                return false;
            }
        }
        g->queries++;
        char host[FV_ENDPOINT_TEXT_MAX];
        fv_endpoint_format(&d->client, host);
        if (g->host_count < API_TOP_HOSTS_PER_DOMAIN_MAX &&
            json_object_get(g->hosts, host) == NULL) {
            if (json_object_set_new(g->hosts, host, json_true()) != 0) {
                t->nomem = true;
                return false;
            }
            g->host_count++;
        }
    }
    return true;
}

static int api_talker_compare(const void *x, const void *y)
{
    const api_talker *a = x, *b = y;
    uint64_t ba = a->bytes_in + a->bytes_out, bb = b->bytes_in + b->bytes_out;
    if (ba != bb)
        return ba < bb ? 1 : -1;
    if (a->flows != b->flows)
        return a->flows < b->flows ? 1 : -1;
    return strcmp(a->host, b->host);
}

static int api_domain_compare(const void *x, const void *y)
{
    const api_domain *a = x, *b = y;
    if (a->queries != b->queries)
        return a->queries < b->queries ? 1 : -1;
    if (a->host_count != b->host_count)
        return a->host_count < b->host_count ? 1 : -1;
    return strcmp(a->name, b->name);
}

void api_route_top_records(api_server *srv, struct MHD_Connection *conn, int kind,
                           const api_match *match, api_reply *out)
{
    static const char *const allowed[] = {"from", "to", "limit", NULL};
    api_args a = {.allowed = allowed};
    api_top_records t = {.kind = kind};
    uint64_t from_us = 0, to_us = 0, k = 0;
    uint32_t limit = API_TOP_LIMIT_DEFAULT;
    bool empty = false, complete = false;
    json_t *rows = NULL;
    const char *v;

    (void)match;
    if (!api_args_read(conn, &a, out))
        return;
    if ((v = api_arg(&a, "limit")) != NULL && api_limit_parse(v, &limit) != FV_OK) {
        api_reply_bad_value(out, "limit", v, "an integer from 1 to 1000");
        return;
    }
    if (!api_args_window(&a, &from_us, &to_us, &empty, out))
        return;

    t.index = json_object();
    rows = json_array();
    if (t.index == NULL || rows == NULL)
        goto nomem;

    int rc;
    pthread_mutex_lock(&srv->store_lock);
    rc = store_meta_get(srv->store, STORE_META_K_THRESHOLD, &k);
    store_query q = {.cls = kind == 0 ? FV_CLASS_FLOW : FV_CLASS_DNS, .from_us = from_us,
                     .to_us = to_us, .limit = STORE_QUERY_LIMIT_MAX};
    uint64_t now_us = srv->clock_us();
    complete = empty;
    while (rc == FV_OK && !empty && t.scanned < API_TOP_SCAN_MAX) {
        uint64_t next = 0;
        rc = store_query_run(srv->store, &q, now_us, api_top_records_add, &t, &next);
        if (rc != FV_OK || t.nomem)
            break;
        if (next == 0) {
            complete = true;
            break;
        }
        q.after_id = next;
    }
    pthread_mutex_unlock(&srv->store_lock);
    if (t.nomem)
        goto nomem;
    if (rc != FV_OK) {
        char message[API_MESSAGE_MAX];
        fv_warning("api: reading the records for a top list failed: %s", fv_strerror(rc));
        snprintf(message, sizeof message, "reading the record store failed: %s",
                 fv_strerror(rc));
        api_reply_error(out, rc == FV_ERR_NOMEM ? 503 : 500, "store_error", message);
        goto done;
    }
    bool k_from_store = k != 0;
    if (!k_from_store)
        k = API_TOP_DEFAULT_K;

    uint64_t suppressed = 0;
    if (kind == 0) {
        if (t.count > 0)
            qsort(t.talkers, t.count, sizeof *t.talkers, api_talker_compare);
        if (t.count < k)
            suppressed = t.count;
        for (size_t i = 0; suppressed == 0 && i < t.count && i < limit; i++) {
            const api_talker *g = &t.talkers[i];
            uint64_t bytes = g->bytes_in + g->bytes_out;
            json_t *row = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "host", g->host,
                                    "zone", g->zone, "flows", (json_int_t)g->flows, "packets",
                                    (json_int_t)g->packets, "bytes",
                                    (json_int_t)bytes, "bytes_in",
                                    (json_int_t)g->bytes_in, "bytes_out",
                                    (json_int_t)g->bytes_out);
            if (row == NULL || json_array_append_new(rows, row) != 0)
                goto nomem;
        }
    } else {
        if (t.count > 0)
            qsort(t.domains, t.count, sizeof *t.domains, api_domain_compare);
        for (size_t i = 0; i < t.count; i++) {
            const api_domain *g = &t.domains[i];
            if (g->host_count < k) {
                suppressed++;
                continue;
            }
            if (json_array_size(rows) >= limit)
                continue;
            json_t *row = json_pack("{s:s, s:I, s:I}", "domain", g->name, "queries",
                                    (json_int_t)g->queries, "hosts",
                                    (json_int_t)g->host_count);
            if (row == NULL || json_array_append_new(rows, row) != 0)
                goto nomem;
        }
    }

    out->status = 200;
    out->body = json_pack("{s:O, s:I, s:I, s:s, s:b, s:I}", "rows", rows, "suppressed_groups",
                          (json_int_t)suppressed, "k_threshold", (json_int_t)k,
                          "k_threshold_source", k_from_store ? "store" : "default", "complete",
                          complete, "count", (json_int_t)json_array_size(rows));
    if (out->body == NULL)
        goto nomem;
    goto done;

nomem:
    api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
done:
    json_decref(rows);
    json_decref(t.index);
    free(t.talkers);
    for (size_t i = 0; t.domains != NULL && i < t.count; i++)
        json_decref(t.domains[i].hosts);
    free(t.domains);
}
