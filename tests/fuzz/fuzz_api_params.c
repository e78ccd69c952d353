/*
 * Fuzz the API's query-parameter parsers, the record filter and the
 * static-file name check. The input is split at NUL bytes into up to ten
 * fields: a time, a page limit, a cursor, a text for api_text_sanitize
 * that is also read as a query string ("a=1&b&c=2") for api_args_read
 * and api_args_window, a URL path for api_static_name, then the host,
 * proto, port, domain and
 * zone filter values (libmicrohttpd hands the parsers NUL-terminated
 * strings, so a field never contains a NUL). The bytes after the tenth
 * field describe one record for api_filter_match: the class, filter
 * flags, two endpoints (kind, prefix length, 16 address bytes, zone
 * length and zone text), two big-endian ports, the protocol and a name.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "fuzz_util.h"

#define FIELD_COUNT 10
#define QUERY_PAIRS_MAX 40      /* more than API_ARGS_MAX, to reach its check */

static volatile size_t sink_matches;

/* The query arguments that MHD_get_connection_values hands out. */
static const char *g_keys[QUERY_PAIRS_MAX], *g_values[QUERY_PAIRS_MAX];
static size_t g_pair_count;

/*
 * libmicrohttpd's iteration over the query arguments, which api_args_read
 * calls. The executable's definition takes precedence over the shared
 * library's (as in fuzz_api_request.c), so no connection is needed: it
 * walks the pairs of the current input.
 */
int MHD_get_connection_values(struct MHD_Connection *conn, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
    size_t i;

    (void)conn;
    for (i = 0; i < g_pair_count; i++) {
        if (iterator != NULL && iterator(iterator_cls, kind, g_keys[i], g_values[i]) != MHD_YES)
            break;
    }
    return (int)i;
}

/* Split QUERY (modified in place) at '&' into key=value pairs the way
 * libmicrohttpd does. A key without '=' has no value (NULL). */
static void split_query(char *query)
{
    char *p = query;

    g_pair_count = 0;
    while (*p != '\0' && g_pair_count < QUERY_PAIRS_MAX) {
        char *end = strchr(p, '&');
        char *eq;

        if (end != NULL)
            *end = '\0';
        eq = strchr(p, '=');
        if (eq != NULL)
            *eq = '\0';
        g_keys[g_pair_count] = p;
        g_values[g_pair_count] = eq != NULL ? eq + 1 : NULL;
        g_pair_count++;
        if (end == NULL)
            break;
        p = end + 1;
    }
}

/* Read the query as a record route with filters would, and as a route
 * that takes no parameters. */
static void check_args(const char *text)
{
    static const char *const ALLOWED[] = {"from", "to", "limit", "cursor", "host", "proto",
                                          "port", "domain", "zone", NULL};
    char *query = fuzz_strndup((const uint8_t *)text, strlen(text));

    if (query == NULL)
        return;
    split_query(query);
    for (int with_allowed = 0; with_allowed < 2; with_allowed++) {
        api_args args;
        api_reply reply;
        uint64_t from_us, to_us;
        bool empty;

        memset(&args, 0, sizeof args);
        memset(&reply, 0, sizeof reply);
        args.allowed = with_allowed ? ALLOWED : NULL;
        if (api_args_read(NULL, &args, &reply)) {
            if (args.count > API_ARGS_MAX)
                abort();
            if (api_args_window(&args, &from_us, &to_us, &empty, &reply) && to_us != 0 &&
                from_us > to_us)
                abort();    /* an accepted window must not end before it starts */
        } else if (reply.status != 400 || reply.body == NULL) {
            abort();        /* a rejected query must get a 400 error object */
        }
        json_decref(reply.body);
    }
    free(query);
}

static void check_static_name(const char *url)
{
    char name[API_STATIC_NAME_MAX];

    if (!api_static_name(url, name))
        return;
    /* An accepted name must stay inside the web directory. */
    if (name[0] == '.' || name[0] == '/' || strstr(name, "..") != NULL ||
        strstr(name, "//") != NULL || strstr(name, "/.") != NULL ||
        !(strlen(name) < API_STATIC_NAME_MAX))
        abort();
}

static uint8_t take_u8(const uint8_t **data, size_t *size)
{
    uint8_t v;

    if (*size == 0)
        return 0;
    v = (*data)[0];
    (*data)++;
    (*size)--;
    return v;
}

/* Copy up to N bytes (fewer when the input ends) into OUT and return how
 * many were copied. */
static size_t take_bytes(const uint8_t **data, size_t *size, void *out, size_t n)
{
    size_t k = n <= *size ? n : *size;

    if (k > 0)
        memcpy(out, *data, k);
    *data += k;
    *size -= k;
    return k;
}

/* Fill EP from the input. The zone is NUL-terminated by construction,
 * as the store decoder guarantees for stored records. */
static void take_endpoint(const uint8_t **data, size_t *size, fv_endpoint *ep)
{
    size_t zone_len;

    ep->kind = (uint8_t)(take_u8(data, size) % (FV_EP_TRUNC_IPV6 + 1));
    ep->prefix_len = take_u8(data, size);
    (void)take_bytes(data, size, ep->addr, sizeof ep->addr);
    zone_len = take_u8(data, size) % sizeof ep->zone;
    (void)take_bytes(data, size, ep->zone, zone_len);
}

static void take_name(const uint8_t **data, size_t *size, char out[FV_NAME_MAX])
{
    size_t len = take_bytes(data, size, out, FV_NAME_MAX - 1);

    out[len] = '\0';
}

/* Build a record of the class in byte 0 from the rest of the input. */
static void take_record(const uint8_t **data, size_t *size, fv_record *rec)
{
    fv_endpoint a, b;
    uint16_t port_a, port_b;
    uint8_t proto, extra;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    rec->cls = (fv_class)(take_u8(data, size) % FV_CLASS_COUNT);
    take_endpoint(data, size, &a);
    take_endpoint(data, size, &b);
    port_a = fuzz_take_be16(data, size);
    port_b = fuzz_take_be16(data, size);
    proto = take_u8(data, size);
    extra = take_u8(data, size);

    switch (rec->cls) {
    case FV_CLASS_FLOW:
        rec->u.flow.src = a;
        rec->u.flow.dst = b;
        rec->u.flow.sport = port_a;
        rec->u.flow.dport = port_b;
        rec->u.flow.proto = proto;
        break;
    case FV_CLASS_DNS:
        rec->u.dns.client = a;
        rec->u.dns.server = b;
        rec->u.dns.client_port = port_a;
        rec->u.dns.server_port = port_b;
        rec->u.dns.transport = proto;
        take_name(data, size, rec->u.dns.qname);
        break;
    case FV_CLASS_TLS:
        rec->u.tls.client = a;
        rec->u.tls.server = b;
        rec->u.tls.client_port = port_a;
        rec->u.tls.server_port = port_b;
        rec->u.tls.transport = proto & 1u;
        take_name(data, size, rec->u.tls.sni);
        break;
    case FV_CLASS_HTTP:
        rec->u.http.client = a;
        rec->u.http.server = b;
        rec->u.http.client_port = port_a;
        rec->u.http.server_port = port_b;
        take_name(data, size, rec->u.http.host);
        break;
    case FV_CLASS_DHCP:
        rec->u.dhcp.client = a;
        rec->u.dhcp.server = b;
        rec->u.dhcp.client_port = port_a;
        rec->u.dhcp.server_port = port_b;
        break;
    case FV_CLASS_SSH:
        rec->u.ssh.client = a;
        rec->u.ssh.server = b;
        rec->u.ssh.client_port = port_a;
        rec->u.ssh.server_port = port_b;
        break;
    case FV_CLASS_ALERT:
        rec->u.alert.host = a;
        rec->u.alert.peer = b;
        rec->u.alert.peer_port = port_b;
        rec->u.alert.proto = proto;
        rec->u.alert.detector = extra & 15u;
        rec->u.alert.severity = extra >> 4;
        break;
    case FV_CLASS_AGGREGATE:
        memcpy(rec->u.aggregate.zone, a.zone, sizeof rec->u.aggregate.zone);
        rec->u.aggregate.peer = b;
        rec->u.aggregate.dport = port_b;
        rec->u.aggregate.proto = proto;
        rec->u.aggregate.hosts = extra & 0x7fu;
        rec->u.aggregate.hosts_capped = extra >> 7;
        break;
    case FV_CLASS_COUNT:
        break;
    }
}

/* Parse the filter values the way the record routes do and match one
 * record against them. */
static void check_filter(char *const fields[FIELD_COUNT], const uint8_t *data, size_t size)
{
    static const uint64_t MIN_HOSTS[4] = {0, 2, 10, 100000};
    char host_text[FV_ENDPOINT_TEXT_MAX], domain_text[FV_NAME_MAX];
    api_filter filter;
    fv_record *rec;
    uint8_t flags;
    int value;

    memset(&filter, 0, sizeof filter);
    filter.proto = -1;
    filter.port = -1;
    filter.state = -1;
    if (api_host_parse(fields[5], host_text) == FV_OK) {
        /* The normal form is accepted again unchanged. */
        if (api_host_filter_parse(host_text, &filter.host) != FV_OK ||
            strcmp(host_text, filter.host.text) != 0)
            abort();
    }
    if (api_proto_parse(fields[6], &value) == FV_OK) {
        if (value < 0 || value > 255)
            abort();
        filter.proto = value;
    }
    if (api_port_parse(fields[7], &value) == FV_OK) {
        if (value < 0 || value > 65535)
            abort();
        filter.port = value;
    }
    /* A rejected value may leave a partial output, which the routes never
     * use because they reply 400. */
    if (api_domain_parse(fields[8], domain_text) == FV_OK)
        memcpy(filter.domain, domain_text, sizeof filter.domain);
    if (strlen(fields[9]) < sizeof filter.zone)
        memcpy(filter.zone, fields[9], strlen(fields[9]) + 1);

    flags = take_u8(&data, &size);
    filter.detector = flags & 7u;
    filter.severity = (flags >> 3) & 7u;
    filter.min_hosts = MIN_HOSTS[flags >> 6];

    rec = calloc(1, sizeof *rec);
    if (rec == NULL)
        return;
    take_record(&data, &size, rec);
    if (api_filter_match(&filter, rec))
        sink_matches++;
    if (filter.domain[0] != '\0' && api_domain_match(filter.domain, filter.domain) != true)
        abort();    /* a valid suffix always matches itself */
    free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *fields[FIELD_COUNT] = {NULL};
    char sanitized[API_MESSAGE_MAX];
    char formatted[API_CURSOR_TEXT_MAX];
    uint64_t us = 0, id = 0;
    uint32_t limit = 0;

    for (size_t i = 0; i < FIELD_COUNT; i++) {
        fields[i] = fuzz_next_field(&data, &size);
        if (fields[i] == NULL)
            goto out;
    }

    (void)api_time_parse(fields[0], &us);
    if (api_limit_parse(fields[1], &limit) == FV_OK && (limit < 1 || limit > API_LIMIT_MAX))
        abort();
    for (int order = 0; order < 2; order++) {
        bool newest_first = order == 1;
        uint64_t again = 0;
        if (api_cursor_parse(fields[2], newest_first, &id) != FV_OK)
            continue;
        /* A cursor that parses must survive a format and parse cycle. */
        api_cursor_format(newest_first, id, formatted);
        if (api_cursor_parse(formatted, newest_first, &again) != FV_OK || again != id)
            abort();
    }
    api_text_sanitize(fields[3], sanitized, sizeof sanitized);
    for (size_t i = 0; sanitized[i] != '\0'; i++) {
        if (sanitized[i] < 0x20 || sanitized[i] > 0x7e)
            abort();
    }
    check_static_name(fields[4]);
    check_args(fields[3]);
    check_filter(fields, data, size);

out:
    for (size_t i = 0; i < FIELD_COUNT; i++)
        free(fields[i]);
    return 0;
}
