/*
 * api.c: the libmicrohttpd daemon, request dispatch, response headers and
 * the static dashboard files.
 *
 * Every request is answered on the first call of the access handler,
 * once the headers are in: only GET and HEAD exist, and no route takes a
 * body, so there is nothing to wait for. A request announcing a body is
 * rejected before libmicrohttpd reads it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_internal.h"

#define API_DEFAULT_THREADS 2u
#define API_DEFAULT_CONNECTION_LIMIT 256u
#define API_DEFAULT_PER_IP_LIMIT 32u
#define API_DEFAULT_TIMEOUT_S 15u

/* Per-connection memory for the request line and headers. Our requests
 * carry no body, so 32 KiB leaves room for large browser headers. */
#define API_CONNECTION_MEMORY_BYTES (32u * 1024u)

static const char API_CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

static const char API_JSON_TYPE[] = "application/json; charset=utf-8";

/* Reply for the rare case where even the error object could not be built. */
static const char API_NOMEM_BODY[] =
    "{\"error\":\"out_of_memory\",\"message\":\"the server ran out of memory; retry later\"}";

/* ---- responses -------------------------------------------------------- */

/* Add the headers every response carries. Return false on failure. */
static bool api_add_common_headers(struct MHD_Response *resp, bool is_api)
{
    bool ok = true;

    ok = ok && MHD_add_response_header(resp, "Content-Security-Policy", API_CSP) == MHD_YES;
    ok = ok && MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES;
    ok = ok && MHD_add_response_header(resp, "X-Frame-Options", "DENY") == MHD_YES;
    ok = ok && MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES;
    ok = ok && MHD_add_response_header(resp, "Cache-Control", is_api ? "no-store" : "no-cache") ==
                   MHD_YES;
    return ok;
}

/* Queue RESP with STATUS and release our reference to it. */
static enum MHD_Result api_queue(struct MHD_Connection *conn, unsigned status,
                                 struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/*
 * Send REPLY as compact JSON, consuming its body. ALLOW, if not NULL,
 * becomes the Allow header (405 replies). Error bodies sent for static
 * paths still get the no-store cache rule, which is harmless.
 */
static enum MHD_Result api_send_reply(struct MHD_Connection *conn, api_reply *reply,
                                      const char *allow)
{
    struct MHD_Response *resp = NULL;
    unsigned status = reply->status;
    char *text = NULL;

    if (reply->body != NULL)
        text = json_dumps(reply->body, JSON_COMPACT);
    json_decref(reply->body);
    reply->body = NULL;

    if (text != NULL) {
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL)
            free(text);
    } else {
        status = 503;
        resp = MHD_create_response_from_buffer(strlen(API_NOMEM_BODY), (void *)API_NOMEM_BODY,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL)
        return MHD_NO;

    if (!api_add_common_headers(resp, true) ||
        MHD_add_response_header(resp, "Content-Type", API_JSON_TYPE) != MHD_YES ||
        (allow != NULL && MHD_add_response_header(resp, "Allow", allow) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return api_queue(conn, status, resp);
}

static enum MHD_Result api_send_error(struct MHD_Connection *conn, unsigned status,
                                      const char *code, const char *message, const char *allow)
{
    api_reply reply;

    api_reply_error(&reply, status, code, message);
    return api_send_reply(conn, &reply, allow);
}

/* ---- static files ----------------------------------------------------- */

/* Content type for a file name by its extension, or NULL if not served. */
static const char *api_static_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');

    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

/* Declared in api_internal.h, where the accepted names are described. */
bool api_static_name(const char *url, char name[API_STATIC_NAME_MAX])
{
    size_t len;

    if (url[0] != '/')
        return false;
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    url++;

    len = strlen(url);
    if (len == 0 || !(len < API_STATIC_NAME_MAX))
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = url[i];
        bool allowed = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!allowed)
            return false;
    }
    if (url[0] == '.' || strstr(url, "..") != NULL)
        return false;
    memcpy(name, url, len + 1);
    return true;
}

/*
 * Serve a dashboard file. The file is opened relative to the web_root
 * directory descriptor with O_NOFOLLOW, so neither a symbolic link placed
 * in web_root nor a rename of the directory itself can redirect the read.
 */
static enum MHD_Result api_serve_static(api_server *srv, struct MHD_Connection *conn,
                                        const char *url)
{
    char name[API_STATIC_NAME_MAX];
    const char *type;
    struct stat st;
    struct MHD_Response *resp;
    int fd;

    if (srv->web_dir_fd < 0 || !api_static_name(url, name) ||
        (type = api_static_type(name)) == NULL)
        return api_send_error(conn, 404, "not_found", "no such file", NULL);

    fd = openat(srv->web_dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return api_send_error(conn, 404, "not_found", "no such file", NULL);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return api_send_error(conn, 404, "not_found", "no such file", NULL);
    }

    /* libmicrohttpd owns FD from here and closes it with the response. */
    resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (resp == NULL) {
        close(fd);
        return api_send_error(conn, 503, "out_of_memory",
                              "the server ran out of memory; retry later", NULL);
    }
    if (!api_add_common_headers(resp, false) ||
        MHD_add_response_header(resp, "Content-Type", type) != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return api_queue(conn, 200, resp);
}

/* ---- request dispatch ------------------------------------------------- */

/* True if the request announces a body (Content-Length above 0, or any
 * Transfer-Encoding, which means chunked). */
static bool api_request_has_body(struct MHD_Connection *conn)
{
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *encoding =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");

    if (encoding != NULL)
        return true;
    if (length == NULL)
        return false;
    for (const char *p = length; *p != '\0'; p++) {
        if (*p != '0')
            return true;
    }
    return false;
}

static enum MHD_Result api_handle_request(void *cls, struct MHD_Connection *conn,
                                          const char *url, const char *method,
                                          const char *version, const char *upload_data,
                                          size_t *upload_data_size, void **req_ctx)
{
    static int answered_marker;
    api_server *srv = cls;

    (void)version;
    (void)upload_data;

    /* A later call only happens for body bytes of a request we already
     * rejected; drop them. */
    if (*req_ctx != NULL) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    *req_ctx = &answered_marker;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return api_send_error(conn, 405, "method_not_allowed",
                              "only GET and HEAD are supported", "GET, HEAD");
    if (api_request_has_body(conn) || *upload_data_size != 0)
        return api_send_error(conn, 413, "body_not_allowed",
                              "requests must not carry a body; send the parameters in the query "
                              "string",
                              NULL);

    if (strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0) {
        api_reply reply;

        api_route_request(srv, conn, url, &reply);
        /* Serve nothing unaudited. */
        if (!api_audit_request(srv, conn, url, &reply)) {
            json_decref(reply.body);
            api_reply_error(&reply, 503, "audit_unavailable",
                            "the request could not be written to the audit trail; check the "
                            "server log and that the store is writable");
        }
        return api_send_reply(conn, &reply, NULL);
    }
    return api_serve_static(srv, conn, url);
}

/* Value of hex digit CH, or -1. */
static int api_hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * Percent-decode S in place (our replacement for libmicrohttpd's default,
 * used for the path and every query argument). A "%00" would otherwise
 * become a NUL that silently cuts the string short, so it is decoded to
 * DEL (0x7f) instead, which every validator in api/ rejects. Malformed
 * escapes stay as they are; the "%" then fails validation too.
 */
static size_t api_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    size_t in = 0, out = 0;

    (void)cls;
    (void)conn;
    while (s[in] != '\0') {
        int hi, lo;

        if (s[in] == '%' && (hi = api_hex_value(s[in + 1])) >= 0 &&
            (lo = api_hex_value(s[in + 2])) >= 0) {
            char ch = (char)((hi << 4) | lo);
            s[out++] = ch == '\0' ? '\x7f' : ch;
            in += 3;
        } else {
            s[out++] = s[in++];
        }
    }
    s[out] = '\0';
    return out;
}

/* ---- start and stop --------------------------------------------------- */

/* Listening address parsed from the configuration. */
typedef struct api_listen {
    struct sockaddr_storage addr;
    bool ipv6;
} api_listen;

static int api_listen_parse(const api_config *config, api_listen *out, char *err, size_t err_len)
{
    const char *text = config->listen_addr != NULL ? config->listen_addr : "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;

    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(config->port);
        return FV_OK;
    }
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(config->port);
        out->ipv6 = true;
        return FV_OK;
    }

    char safe[64];
    api_text_sanitize(text, safe, sizeof safe);
    snprintf(err, err_len,
             "invalid listen address '%s': give an IPv4 or IPv6 literal such as 127.0.0.1 or ::1",
             safe);
    return FV_ERR_INVALID;
}

/* Daemon flags: epoll where libmicrohttpd has it, else poll, else select. */
static unsigned api_daemon_flags(bool ipv6)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;

    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    else if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    return flags;
}

static unsigned api_or_default(unsigned value, unsigned fallback)
{
    return value != 0 ? value : fallback;
}

int api_server_start(const api_config *config, api_server **out, char *err, size_t err_len)
{
    api_server *srv = NULL;
    api_listen listen;
    const union MHD_DaemonInfo *info;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (config == NULL || out == NULL || config->store == NULL) {
        snprintf(err, err_len, "api_server_start: missing configuration or store handle");
        return FV_ERR_INVALID;
    }
    rc = api_listen_parse(config, &listen, err, err_len);
    if (rc != FV_OK)
        return rc;

    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(err, err_len, "out of memory while starting the HTTP server");
        return FV_ERR_NOMEM;
    }
    srv->web_dir_fd = -1;
    srv->store = config->store;
    srv->clock_us = config->clock_us != NULL ? config->clock_us : fv_now_us;
    srv->compliance_fn = config->compliance_fn;
    srv->compliance_ctx = config->compliance_ctx;
    if (pthread_mutex_init(&srv->store_lock, NULL) != 0) {
        snprintf(err, err_len, "could not create the store lock of the HTTP server");
        rc = FV_ERR_NOMEM;
        goto out;
    }
    srv->lock_ready = true;

    /* Open web_root once; every static file is opened relative to it. */
    if (config->web_root != NULL) {
        srv->web_dir_fd = open(config->web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (srv->web_dir_fd < 0) {
            snprintf(err, err_len, "cannot open web root directory %s: %s; pass --web DIR",
                     config->web_root, strerror(errno));
            rc = FV_ERR_IO;
            goto out;
        }
    }

    errno = 0;
    srv->daemon = MHD_start_daemon(
        api_daemon_flags(listen.ipv6), config->port, NULL, NULL, api_handle_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&listen.addr,
        MHD_OPTION_THREAD_POOL_SIZE, api_or_default(config->threads, API_DEFAULT_THREADS),
        MHD_OPTION_CONNECTION_LIMIT,
        api_or_default(config->connection_limit, API_DEFAULT_CONNECTION_LIMIT),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        api_or_default(config->per_ip_limit, API_DEFAULT_PER_IP_LIMIT),
        MHD_OPTION_CONNECTION_TIMEOUT, api_or_default(config->timeout_s, API_DEFAULT_TIMEOUT_S),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY_BYTES,
        MHD_OPTION_UNESCAPE_CALLBACK, api_unescape, NULL,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        int saved = errno;

        snprintf(err, err_len, "cannot listen on %s port %u: %s; choose another --listen address",
                 config->listen_addr != NULL ? config->listen_addr : "127.0.0.1",
                 (unsigned)config->port, saved != 0 ? strerror(saved) : "libmicrohttpd failed");
        rc = FV_ERR_IO;
        goto out;
    }

    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : config->port;
    *out = srv;
    srv = NULL;
    rc = FV_OK;

out:
    api_server_stop(&srv);
    return rc;
}

uint16_t api_server_port(const api_server *server)
{
    return server != NULL ? server->port : 0;
}

void api_server_stop(api_server **server)
{
    api_server *srv;

    if (server == NULL || *server == NULL)
        return;
    srv = *server;
    *server = NULL;

    if (srv->daemon != NULL)
        MHD_stop_daemon(srv->daemon);
    if (srv->web_dir_fd >= 0)
        close(srv->web_dir_fd);
    if (srv->lock_ready)
        pthread_mutex_destroy(&srv->store_lock);
    free(srv);
}
