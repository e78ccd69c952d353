/*
 * Fuzz the HTTP request handler of api/ without a socket: URL, query
 * parameters, headers, cookies and the JSON bodies of login, PATCH and
 * the other state-changing routes.
 *
 * The harness defines the libmicrohttpd functions that api/ calls. An
 * executable's own definitions take precedence over those of the shared
 * libmicrohttpd, so api_server_start() reaches the MHD_start_daemon below,
 * which opens no socket and keeps the access handler, the unescape
 * callback and the completion callback. Each input is then fed to the
 * access handler the way libmicrohttpd would: one first call after the
 * headers, the body in chunks, a final call with no data and the
 * completion callback. Every libmicrohttpd function that api/ uses must
 * be defined here; MHD_start_daemon aborts on an option it does not know.
 *
 * Input: byte 0 contains flags. Bit 0 adds an admin API token, bit 1 an
 * analyst token, bits 2-3 select the client address family and bits 4-7
 * the body chunk size. NUL-separated fields follow: the method, the URL
 * with its query string (unescaped by the server's own callback), header
 * lines "Name: value" separated by '\n', and the body (the rest).
 *
 * Properties checked besides the sanitizers: exactly one response is
 * queued per request with a status of 100..599, no response header
 * contains CR or LF, and every response to an /api path carries a JSON
 * object with "error" and "message" when its status is 400 or above.
 */
#include <microhttpd.h>

#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "fuzz_util.h"
#include "store.h"

#define FUZZ_MAX_VALUES 64

typedef struct fuzz_value {
    enum MHD_ValueKind kind;
    char *key;
    char *value;
} fuzz_value;

struct MHD_Connection {
    fuzz_value values[FUZZ_MAX_VALUES];
    size_t count;
    struct sockaddr_storage addr;
    union MHD_ConnectionInfo info;
    unsigned queued;
    unsigned status;
    bool is_api;
    char *body;
    size_t body_len;
};

struct MHD_Response {
    char *data;
    size_t len;
    bool owned;
    int fd;
};

struct MHD_Daemon {
    MHD_AccessHandlerCallback handler;
    void *handler_cls;
    MHD_RequestCompletedCallback completed;
    void *completed_cls;
    size_t (*unescape)(void *cls, struct MHD_Connection *conn, char *s);
    void *unescape_cls;
};

static struct MHD_Daemon *g_daemon;
static store_env *g_store;
static api_server *g_server;
static char g_dir[512];
static char g_admin_token[STORE_TOKEN_TEXT_LEN + 1];
static char g_analyst_token[STORE_TOKEN_TEXT_LEN + 1];
static uint64_t g_now_us = 1767225600000000ull; /* 2026-01-01T00:00:00Z */

/* ---- libmicrohttpd replacements --------------------------------------- */

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
                                    MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    struct MHD_Daemon *d = calloc(1, sizeof *d);
    va_list ap;
    enum MHD_OPTION opt;

    (void)flags;
    (void)port;
    (void)apc;
    (void)apc_cls;
    if (d == NULL)
        abort();
    d->handler = dh;
    d->handler_cls = dh_cls;
    va_start(ap, dh_cls);
    while ((opt = (enum MHD_OPTION)va_arg(ap, int)) != MHD_OPTION_END) {
        switch (opt) {
        case MHD_OPTION_SOCK_ADDR:
        case MHD_OPTION_ARRAY:
            (void)va_arg(ap, void *);
            break;
        case MHD_OPTION_THREAD_POOL_SIZE:
        case MHD_OPTION_CONNECTION_LIMIT:
        case MHD_OPTION_PER_IP_CONNECTION_LIMIT:
        case MHD_OPTION_CONNECTION_TIMEOUT:
            (void)va_arg(ap, unsigned int);
            break;
        case MHD_OPTION_CONNECTION_MEMORY_LIMIT:
            (void)va_arg(ap, size_t);
            break;
        case MHD_OPTION_UNESCAPE_CALLBACK:
            d->unescape = va_arg(ap, size_t (*)(void *, struct MHD_Connection *, char *));
            d->unescape_cls = va_arg(ap, void *);
            break;
        case MHD_OPTION_NOTIFY_COMPLETED:
            d->completed = va_arg(ap, MHD_RequestCompletedCallback);
            d->completed_cls = va_arg(ap, void *);
            break;
        case MHD_OPTION_NOTIFY_CONNECTION:
            /* The harness has no sockets, so the request-head deadline
             * (api_deadline.c) never sees a connection start. */
            (void)va_arg(ap, MHD_NotifyConnectionCallback);
            (void)va_arg(ap, void *);
            break;
        default:
            fprintf(stderr, "fuzz_api_request: MHD_start_daemon option %d is not handled; "
                            "add it to the harness\n", (int)opt);
            abort();
        }
    }
    va_end(ap);
    g_daemon = d;
    return d;
}

void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
    if (daemon == g_daemon)
        g_daemon = NULL;
    free(daemon);
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon,
                                                enum MHD_DaemonInfoType info_type, ...)
{
    static union MHD_DaemonInfo info;

    (void)daemon;
    (void)info_type;
    info.port = 8080;
    return &info;
}

const char *MHD_lookup_connection_value(struct MHD_Connection *conn, enum MHD_ValueKind kind,
                                        const char *key)
{
    for (size_t i = 0; i < conn->count; i++) {
        const fuzz_value *v = &conn->values[i];
        if ((v->kind & kind) == 0 || key == NULL)
            continue;
        if (kind == MHD_HEADER_KIND ? strcasecmp(v->key, key) == 0 : strcmp(v->key, key) == 0)
            return v->value;
    }
    return NULL;
}

int MHD_get_connection_values(struct MHD_Connection *conn, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
    int count = 0;

    for (size_t i = 0; i < conn->count; i++) {
        const fuzz_value *v = &conn->values[i];
        if ((v->kind & kind) == 0)
            continue;
        count++;
        if (iterator != NULL && iterator(iterator_cls, v->kind, v->key, v->value) != MHD_YES)
            break;
    }
    return count;
}

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *conn,
                                                        enum MHD_ConnectionInfoType info_type,
                                                        ...)
{
    if (info_type != MHD_CONNECTION_INFO_CLIENT_ADDRESS)
        return NULL;
    conn->info.client_addr = (struct sockaddr *)&conn->addr;
    return &conn->info;
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
                                                     enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = calloc(1, sizeof *r);

    if (r == NULL)
        abort();
    r->fd = -1;
    r->len = size;
    if (mode == MHD_RESPMEM_MUST_COPY) {
        r->data = malloc(size + 1);
        if (r->data == NULL)
            abort();
        if (size > 0)
            memcpy(r->data, buffer, size);
        r->owned = true;
    } else {
        r->data = buffer;
        r->owned = mode == MHD_RESPMEM_MUST_FREE;
    }
    return r;
}

struct MHD_Response *MHD_create_response_from_fd(size_t size, int fd)
{
    struct MHD_Response *r = calloc(1, sizeof *r);

    if (r == NULL)
        abort();
    r->fd = fd;
    r->len = size;
    return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
                                        const char *content)
{
    (void)response;
    if (header == NULL || content == NULL || strpbrk(header, "\r\n:") != NULL ||
        strpbrk(content, "\r\n") != NULL) {
        fprintf(stderr, "fuzz_api_request: response header with CR or LF, or a name with ':'\n");
        abort();
    }
    return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *response)
{
    if (response == NULL)
        return;
    if (response->owned)
        free(response->data);
    if (response->fd >= 0)
        close(response->fd);
    free(response);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *conn, unsigned int status_code,
                                   struct MHD_Response *response)
{
    if (++conn->queued > 1 || status_code < 100 || status_code > 599 || response == NULL) {
        fprintf(stderr, "fuzz_api_request: response %u queued with status %u\n", conn->queued,
                status_code);
        abort();
    }
    conn->status = status_code;
    if (response->fd < 0 && response->len > 0) {
        conn->body = malloc(response->len);
        if (conn->body == NULL)
            abort();
        memcpy(conn->body, response->data, response->len);
        conn->body_len = response->len;
    }
    return MHD_YES;
}

/* ---- setup ------------------------------------------------------------ */

static uint64_t fuzz_clock_us(void)
{
    return g_now_us;
}

/* Store records of every class the routes read, so the record, top,
 * series, timeline and alert routes have rows to page, filter and
 * aggregate. The addresses are pseudonym bytes and TEST-NET-2. */
static void put_records(void)
{
    uint64_t t0 = g_now_us - 6ull * 3600ull * 1000000ull;
    int rc = FV_OK;

    for (unsigned i = 0; i < 12 && rc == FV_OK; i++) {
        fv_flow_record f;
        memset(&f, 0, sizeof f);
        f.first_us = t0 + i * 600000000ull;
        f.last_us = f.first_us + 1000000ull;
        f.src.kind = FV_EP_PSEUDO_IPV4;
        memset(f.src.addr, (int)(i % 3 + 1), FV_PSEUDONYM_BYTES);
        snprintf(f.src.zone, sizeof f.src.zone, i % 2 ? "office" : "servers");
        f.dst.kind = FV_EP_IPV4;
        f.dst.addr[0] = 198;
        f.dst.addr[1] = 51;
        f.dst.addr[2] = 100;
        f.dst.addr[3] = (uint8_t)(i % 4);
        snprintf(f.dst.zone, sizeof f.dst.zone, FV_ZONE_EXTERNAL);
        f.sport = (uint16_t)(40000 + i);
        f.dport = i % 2 ? 443 : 53;
        f.proto = i % 2 ? 6 : 17;
        f.pkts_fwd = 10 + i;
        f.bytes_fwd = 1000u * (i + 1);
        rc = store_put(g_store, FV_CLASS_FLOW, &f, f.last_us);
    }
    for (unsigned i = 0; i < 3 && rc == FV_OK; i++) {
        fv_dns_record d;
        memset(&d, 0, sizeof d);
        d.ts_us = t0 + i * 1000000ull;
        d.client.kind = FV_EP_PSEUDO_IPV4;
        memset(d.client.addr, 1, FV_PSEUDONYM_BYTES);
        d.server.kind = FV_EP_IPV4;
        d.server.addr[0] = 198;
        d.server_port = 53;
        d.transport = 17;
        d.qtype = 1;
        snprintf(d.qname, sizeof d.qname, "host%u.example.org", i);
        rc = store_put(g_store, FV_CLASS_DNS, &d, d.ts_us);
    }
    for (unsigned i = 0; i < 2 && rc == FV_OK; i++) {
        fv_alert_record a;
        memset(&a, 0, sizeof a);
        a.ts_us = t0 + (i + 1) * 3600000000ull;
        a.first_us = t0;
        a.last_us = a.ts_us;
        a.detector = i == 0 ? FV_DET_BEACON : FV_DET_EXFIL;
        a.severity = i == 0 ? FV_SEV_HIGH : FV_SEV_LOW;
        a.score = 0.5;
        a.host.kind = FV_EP_PSEUDO_IPV4;
        memset(a.host.addr, 2, FV_PSEUDONYM_BYTES);
        a.peer.kind = FV_EP_IPV4;
        a.peer.addr[0] = 198;
        a.peer_port = 443;
        a.proto = 6;
        snprintf(a.summary, sizeof a.summary, "fuzz alert %u", i);
        rc = store_put(g_store, FV_CLASS_ALERT, &a, a.ts_us);
    }
    if (rc == FV_OK)
        rc = store_commit(g_store);
    if (rc != FV_OK) {
        fprintf(stderr, "fuzz_api_request: storing the fixture records failed: %s\n",
                fv_strerror(rc));
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    fv_log_set_level(FV_LOG_ERROR);
    fuzz_temp_dir(g_dir, sizeof g_dir);
    if (store_open(g_dir, 0, &g_store, err, sizeof err) != FV_OK ||
        store_token_create(g_store, "fuzz-admin", STORE_ROLE_ADMIN, 0, g_now_us, g_admin_token,
                           NULL) != FV_OK ||
        store_token_create(g_store, "fuzz-analyst", STORE_ROLE_ANALYST, 0, g_now_us,
                           g_analyst_token, NULL) != FV_OK) {
        fprintf(stderr, "fuzz_api_request: store setup in %s failed: %s\n", g_dir, err);
        abort();
    }

    put_records();

    api_config config = {.store = g_store, .listen_addr = "127.0.0.1", .clock_us = fuzz_clock_us};
    if (api_server_start(&config, &g_server, err, sizeof err) != FV_OK || g_daemon == NULL) {
        fprintf(stderr, "fuzz_api_request: api_server_start failed: %s\n", err);
        abort();
    }
    return 0;
}

/* ---- one request ------------------------------------------------------ */

static void add_value(struct MHD_Connection *conn, enum MHD_ValueKind kind, const char *key,
                      size_t key_len, const char *value, size_t value_len)
{
    fuzz_value *v;

    if (conn->count == FUZZ_MAX_VALUES)
        return;
    v = &conn->values[conn->count];
    v->kind = kind;
    v->key = strndup(key, key_len);
    v->value = strndup(value, value_len);
    if (v->key == NULL || v->value == NULL)
        abort();
    if (kind == MHD_GET_ARGUMENT_KIND) {
        g_daemon->unescape(g_daemon->unescape_cls, conn, v->key);
        g_daemon->unescape(g_daemon->unescape_cls, conn, v->value);
    }
    conn->count++;
}

/* Split "a=1&b=2" into GET arguments, as libmicrohttpd does. */
static void add_query(struct MHD_Connection *conn, const char *query)
{
    while (*query != '\0') {
        const char *end = strchr(query, '&');
        size_t len = end != NULL ? (size_t)(end - query) : strlen(query);
        const char *eq = memchr(query, '=', len);

        if (eq != NULL)
            add_value(conn, MHD_GET_ARGUMENT_KIND, query, (size_t)(eq - query), eq + 1,
                      len - (size_t)(eq - query) - 1);
        else if (len > 0)
            add_value(conn, MHD_GET_ARGUMENT_KIND, query, len, "", 0);
        query += len;
        if (*query == '&')
            query++;
    }
}

/* Split "a=1; b=2" into cookies. */
static void add_cookies(struct MHD_Connection *conn, const char *text)
{
    while (*text != '\0') {
        while (*text == ' ' || *text == ';')
            text++;
        const char *end = strchr(text, ';');
        size_t len = end != NULL ? (size_t)(end - text) : strlen(text);
        const char *eq = memchr(text, '=', len);

        if (eq != NULL)
            add_value(conn, MHD_COOKIE_KIND, text, (size_t)(eq - text), eq + 1,
                      len - (size_t)(eq - text) - 1);
        text += len;
    }
}

static void add_headers(struct MHD_Connection *conn, const char *text)
{
    while (*text != '\0') {
        const char *end = strchr(text, '\n');
        size_t len = end != NULL ? (size_t)(end - text) : strlen(text);
        const char *colon = memchr(text, ':', len);

        if (colon != NULL && colon != text) {
            const char *value = colon + 1;
            size_t value_len = len - (size_t)(value - text);

            while (value_len > 0 && *value == ' ') {
                value++;
                value_len--;
            }
            add_value(conn, MHD_HEADER_KIND, text, (size_t)(colon - text), value, value_len);
            if ((size_t)(colon - text) == 6 && strncasecmp(text, "Cookie", 6) == 0) {
                char *cookies = strndup(value, value_len);
                if (cookies == NULL)
                    abort();
                add_cookies(conn, cookies);
                free(cookies);
            }
        }
        text += len;
        if (*text == '\n')
            text++;
    }
}

static void check_reply(const struct MHD_Connection *conn)
{
    if (conn->queued != 1) {
        fprintf(stderr, "fuzz_api_request: %u responses queued for one request\n", conn->queued);
        abort();
    }
    if (!conn->is_api || conn->status < 400)
        return;

    json_error_t jerr;
    json_t *body = json_loadb(conn->body != NULL ? conn->body : "", conn->body_len, 0, &jerr);
    if (!json_is_string(json_object_get(body, "error")) ||
        !json_is_string(json_object_get(body, "message"))) {
        fprintf(stderr, "fuzz_api_request: error %u without a JSON error object\n", conn->status);
        abort();
    }
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct MHD_Connection conn;
    uint8_t flags;
    char *method, *url, *headers;
    void *req_ctx = NULL;

    if (size < 1)
        return 0;
    flags = data[0];
    data++;
    size--;
    memset(&conn, 0, sizeof conn);

    method = fuzz_next_field(&data, &size);
    url = fuzz_next_field(&data, &size);
    headers = fuzz_next_field(&data, &size);
    if (method == NULL || url == NULL || headers == NULL)
        abort();

    if ((flags & 0x0c) == 0x04) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&conn.addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr.s6_addr[15] = 1;
    } else if ((flags & 0x0c) != 0x08) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&conn.addr;
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(0x7f000001u + (flags >> 4));
    }

    /* libmicrohttpd unescapes the path and splits the query string off. */
    char *query = strchr(url, '?');
    if (query != NULL) {
        *query++ = '\0';
        add_query(&conn, query);
    }
    g_daemon->unescape(g_daemon->unescape_cls, &conn, url);
    conn.is_api = strncmp(url, "/api", 4) == 0 || strcmp(url, "/metrics") == 0;

    char bearer[STORE_TOKEN_TEXT_LEN + 16];
    if (flags & 0x01) {
        snprintf(bearer, sizeof bearer, "Bearer %s", g_admin_token);
        add_value(&conn, MHD_HEADER_KIND, "Authorization", 13, bearer, strlen(bearer));
    } else if (flags & 0x02) {
        snprintf(bearer, sizeof bearer, "Bearer %s", g_analyst_token);
        add_value(&conn, MHD_HEADER_KIND, "Authorization", 13, bearer, strlen(bearer));
    }
    add_headers(&conn, headers);

    /* The first call comes with the headers and no body. */
    size_t none = 0;
    enum MHD_Result ret = g_daemon->handler(g_daemon->handler_cls, &conn, url, method,
                                            "HTTP/1.1", NULL, &none, &req_ctx);

    /* Then the body in chunks, then a call with no data that completes it. */
    size_t chunk = ((size_t)(flags >> 4) + 1u) * 97u;
    size_t offset = 0;
    while (ret == MHD_YES && conn.queued == 0 && offset < size) {
        size_t n = size - offset < chunk ? size - offset : chunk;
        size_t left = n;

        ret = g_daemon->handler(g_daemon->handler_cls, &conn, url, method, "HTTP/1.1",
                                (const char *)data + offset, &left, &req_ctx);
        if (left != 0) {
            fprintf(stderr, "fuzz_api_request: handler left %zu body bytes unread\n", left);
            abort();
        }
        offset += n;
    }
    if (ret == MHD_YES && conn.queued == 0)
        ret = g_daemon->handler(g_daemon->handler_cls, &conn, url, method, "HTTP/1.1", NULL,
                                &none, &req_ctx);
    if (g_daemon->completed != NULL)
        g_daemon->completed(g_daemon->completed_cls, &conn, &req_ctx,
                            MHD_REQUEST_TERMINATED_COMPLETED_OK);

    /* MHD_NO closes the connection without a reply, which only an
     * allocation failure may cause. */
    if (ret == MHD_YES)
        check_reply(&conn);

    g_now_us += 10000; /* 10 ms per request, so rate-limit windows pass */
    for (size_t i = 0; i < conn.count; i++) {
        free(conn.values[i].key);
        free(conn.values[i].value);
    }
    free(conn.body);
    free(method);
    free(url);
    free(headers);
    return 0;
}
