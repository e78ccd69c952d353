/*
 * api.c: the libmicrohttpd daemon, request dispatch, response headers and
 * the static dashboard files.
 *
 * GET and HEAD requests are answered on the first call of the access
 * handler, once the headers are in: they may not carry a body, and one
 * that announces a body is rejected before libmicrohttpd reads it. POST,
 * PATCH, PUT and DELETE (the API routes that change state) may carry a
 * JSON body of at most API_BODY_MAX bytes: it is collected over the
 * following calls and parsed with jansson before the request is
 * authenticated and routed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_internal.h"

#define API_DEFAULT_THREADS 2u
#define API_DEFAULT_CONNECTION_LIMIT 256u
#define API_DEFAULT_PER_IP_LIMIT 32u
#define API_DEFAULT_TIMEOUT_S 15u

/* Per-connection memory of libmicrohttpd for the request line, headers
 * and read buffer: 32 KiB leaves room for large browser headers, and a
 * request whose headers need more is answered 431 by libmicrohttpd.
 * Request bodies are collected in a separate buffer (API_BODY_MAX). */
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
/* Whether the last server started uses TLS. NOTE: one flag per process,
 * so of a TLS and a plain server running at once the one started last
 * decides for both; `flowveil serve` runs one server. */
static _Atomic bool api_tls_started;

static bool api_add_common_headers(struct MHD_Response *resp, bool is_api)
{
    bool ok = true;

    /* Browsers ignore HSTS over plain HTTP, and under TLS it keeps them
     * from downgrading to it (one year, RFC 6797). */
    if (atomic_load(&api_tls_started))
        ok = ok && MHD_add_response_header(resp, "Strict-Transport-Security",
                                           "max-age=31536000") == MHD_YES;

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
    api_metrics_count(status);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/*
 * Send REPLY as compact JSON, consuming its body. ALLOW, if not NULL,
 * becomes the Allow header (405 replies). Error bodies sent for static
 * paths still get the no-store cache rule, which is harmless.
 */
static enum MHD_Result api_send_reply_headers(struct MHD_Connection *conn, api_reply *reply,
                                              const char *allow,
                                              const api_reply_headers *extra)
{
    struct MHD_Response *resp = NULL;
    unsigned status = reply->status;
    char *text = NULL;
    char retry_after[16];

    /* TEXT is set only when BODY is NULL (api_reply). */
    if (reply->body != NULL)
        text = json_dumps(reply->body, JSON_COMPACT);
    else
        text = reply->text;
    reply->text = NULL;
    json_decref(reply->body);
    reply->body = NULL;

    if (status == 204) {
        free(text);
        text = NULL;
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else if (text != NULL) {
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

    snprintf(retry_after, sizeof retry_after, "%u", extra != NULL ? extra->retry_after_s : 0u);
    if (!api_add_common_headers(resp, true) ||
        (status != 204 &&
         MHD_add_response_header(resp, "Content-Type", API_JSON_TYPE) != MHD_YES) ||
        (allow != NULL && MHD_add_response_header(resp, "Allow", allow) != MHD_YES) ||
        (extra != NULL && extra->set_cookie[0] != '\0' &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, extra->set_cookie) !=
             MHD_YES) ||
        (extra != NULL && extra->retry_after_s != 0 &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    return api_queue(conn, status, resp);
}

static enum MHD_Result api_send_reply(struct MHD_Connection *conn, api_reply *reply,
                                      const char *allow)
{
    return api_send_reply_headers(conn, reply, allow, NULL);
}

static enum MHD_Result api_send_error(struct MHD_Connection *conn, unsigned status,
                                      const char *code, const char *message, const char *allow)
{
    api_reply reply = {.status = 0, .body = NULL, .text = NULL};

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
                       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
                       ch == '/';
        if (!allowed)
            return false;
        /* A component may not be empty ("//") or hidden (".x", ".."). */
        if ((i == 0 || url[i - 1] == '/') && (ch == '/' || ch == '.'))
            return false;
    }
    if (url[len - 1] == '/' || strstr(url, "..") != NULL)
        return false;
    memcpy(name, url, len + 1);
    return true;
}

/*
 * Open NAME (accepted by api_static_name) below the directory DIR_FD one
 * component at a time, each with O_NOFOLLOW, because O_NOFOLLOW on the
 * whole path checks only its last component: a symbolic link to a
 * directory ("web/assets -> /etc") would otherwise be followed. Returns
 * the descriptor or -1 with errno set.
 */
static int api_static_open(int dir_fd, const char *name)
{
    char part[API_STATIC_NAME_MAX];
    const char *start = name;
    const char *slash;
    int fd = dir_fd;

    while ((slash = strchr(start, '/')) != NULL) {
        size_t len = (size_t)(slash - start);
        int next;

        memcpy(part, start, len);
        part[len] = '\0';
        next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd != dir_fd)
            close(fd);
        if (next < 0)
            return -1;
        fd = next;
        start = slash + 1;
    }

    int file = openat(fd, start, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd != dir_fd) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return file;
}

/*
 * Serve a dashboard file. The file is opened relative to the web_root
 * directory descriptor, every path component with O_NOFOLLOW, so neither
 * a symbolic link placed in web_root or one of its subdirectories nor a
 * rename of the directory itself can redirect the read.
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

    fd = api_static_open(srv->web_dir_fd, name);
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

/* True if the announced Content-Length is above API_BODY_MAX. */
static bool api_request_body_too_large(struct MHD_Connection *conn)
{
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    size_t digits = 0;
    unsigned long long value = 0;

    if (length == NULL)
        return false;
    while (*length == '0')
        length++;
    for (const char *p = length; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 12)
            return true;
        value = value * 10u + (unsigned long long)(*p - '0');
    }
    return value > API_BODY_MAX;
}

/* ---- the request in progress ------------------------------------------ */

/* What api_request_principal() and friends return inside api_route_request. */
typedef struct api_request_state {
    const api_principal *principal;
    const char *method;
    json_t *json;
} api_request_state;

static _Thread_local const api_request_state *api_current;

const api_principal *api_request_principal(void)
{
    return api_current != NULL ? api_current->principal : NULL;
}

const char *api_request_method(void)
{
    return api_current != NULL ? api_current->method : MHD_HTTP_METHOD_GET;
}

json_t *api_request_json(void)
{
    return api_current != NULL ? api_current->json : NULL;
}

/* Body of a POST, PATCH, PUT or DELETE request, collected over the calls
 * of the access handler. Freed by api_request_completed. */
typedef struct api_upload {
    char *data;
    size_t len;
    bool too_large;
} api_upload;

/* Marker in *req_ctx of a request whose reply is queued. Later calls only
 * drain the body bytes that were rejected. */
static int api_answered_marker;

/*
 * Marker in *req_ctx of a GET or HEAD request whose head has been checked
 * and whose reply is queued on the next call. libmicrohttpd 0.9.75 closes
 * the connection after a response queued on the first call, because it
 * cannot tell that no body is left to read. Replying on the second call
 * keeps the connection open for the next request.
 */
static int api_read_pending_marker;

static void api_request_completed(void *cls, struct MHD_Connection *conn, void **req_ctx,
                                  enum MHD_RequestTerminationCode toe)
{
    api_server *srv = cls;
    (void)toe;
    if (srv != NULL)
        api_deadline_request_done(srv->deadline, conn);
    if (req_ctx == NULL || *req_ctx == NULL || *req_ctx == &api_answered_marker ||
        *req_ctx == &api_read_pending_marker)
        return;
    api_upload *upload = *req_ctx;
    free(upload->data);
    free(upload);
    *req_ctx = NULL;
}

static bool api_method_is(const char *method, const char *name)
{
    return strcmp(method, name) == 0;
}

static bool api_method_reads(const char *method)
{
    return api_method_is(method, MHD_HTTP_METHOD_GET) ||
           api_method_is(method, MHD_HTTP_METHOD_HEAD);
}

static bool api_method_takes_body(const char *method)
{
    return api_method_is(method, MHD_HTTP_METHOD_POST) ||
           api_method_is(method, MHD_HTTP_METHOD_PATCH) ||
           api_method_is(method, MHD_HTTP_METHOD_PUT) ||
           api_method_is(method, MHD_HTTP_METHOD_DELETE);
}

static bool api_is_api_path(const char *url)
{
    return strcmp(url, "/api") == 0 || strncmp(url, "/api/", 5) == 0 ||
           strcmp(url, "/metrics") == 0;
}

/* True if the Content-Type names JSON ("application/json", parameters
 * such as "; charset=utf-8" allowed). */
static bool api_content_type_is_json(struct MHD_Connection *conn)
{
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    size_t len = strlen("application/json");

    if (type == NULL || strncasecmp(type, "application/json", len) != 0)
        return false;
    return type[len] == '\0' || type[len] == ';' || type[len] == ' ';
}

/* Parse the collected body into *JSON. Return false with a 400 or 415
 * reply in OUT when it is not JSON. An empty body gives NULL. */
static bool api_body_parse(struct MHD_Connection *conn, const api_upload *upload, json_t **json,
                           api_reply *out)
{
    json_error_t jerr;
    char message[API_MESSAGE_MAX];
    char safe[128];

    *json = NULL;
    if (upload == NULL || upload->len == 0)
        return true;
    if (!api_content_type_is_json(conn)) {
        api_reply_error(out, 415, "unsupported_media_type",
                        "request bodies must be JSON; send 'Content-Type: application/json'");
        return false;
    }
    *json = json_loadb(upload->data, upload->len, JSON_REJECT_DUPLICATES, &jerr);
    if (*json == NULL) {
        api_text_sanitize(jerr.text, safe, sizeof safe);
        snprintf(message, sizeof message,
                 "malformed JSON body at line %d, column %d (byte %d): %s", jerr.line,
                 jerr.column, jerr.position, safe);
        api_reply_error(out, 400, "invalid_json", message);
        return false;
    }
    return true;
}

/* The audit action of a request by PRINCIPAL. */
static const char *api_audit_action(const char *method, const char *url,
                                    const api_principal *principal)
{
    if (strcmp(url, "/api/v1/login") == 0)
        return principal->auth != API_AUTH_NONE ? "auth.login" : "auth.login_failed";
    if (strcmp(url, "/api/v1/logout") == 0)
        return "auth.logout";
    return api_method_reads(method) ? "api.read" : "api.write";
}

/*
 * Build the Prometheus text of GET /metrics into *RESP, or fill REPLY
 * with the JSON error to send instead. Returns true when *RESP is set.
 */
static bool api_metrics_response(api_server *srv, struct MHD_Response **resp, api_reply *reply)
{
    char *text = NULL;
    size_t len = 0;
    int rc = api_metrics_render(srv, &text, &len);

    *resp = NULL;
    if (rc == FV_OK)
        *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (*resp == NULL) {
        free(text);
        api_reply_error(reply, 503, rc == FV_OK || rc == FV_ERR_NOMEM ? "out_of_memory"
                                                                      : "store_error",
                        "the metrics could not be read; retry later");
        return false;
    }
    if (!api_add_common_headers(*resp, true) ||
        MHD_add_response_header(*resp, "Content-Type", API_METRICS_CONTENT_TYPE) != MHD_YES) {
        MHD_destroy_response(*resp);
        *resp = NULL;
        api_reply_error(reply, 503, "out_of_memory", "the server ran out of memory; retry later");
        return false;
    }
    reply->status = 200;
    return true;
}

/* Authenticate, route, audit and answer one API request. */
static enum MHD_Result api_answer_api(api_server *srv, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const api_upload *upload)
{
    api_reply reply = {.status = 0, .body = NULL};
    api_reply_headers headers;
    api_principal principal;
    json_t *json = NULL;
    bool audit;

    memset(&headers, 0, sizeof headers);
    memset(&principal, 0, sizeof principal);
    bool login = strcmp(url, "/api/v1/login") == 0;
    if (!api_body_parse(conn, upload, &json, &reply)) {
        if (login)
            api_login_rejected(srv, conn, reply.status);
        return api_send_reply(conn, &reply, NULL);
    }

    api_request_state state = {.principal = &principal, .method = method, .json = json};
    struct MHD_Response *metrics = NULL;
    if (api_auth_check(srv, conn, method, url, json, &principal, &reply, &headers)) {
        if (strcmp(url, "/metrics") == 0) {
            api_metrics_response(srv, &metrics, &reply);
        } else {
            api_current = &state;
            api_route_request(srv, conn, url, &reply);
            api_current = NULL;
        }
    }

    /* Every authenticated request and every login that checked a
     * password (200 or 401) is audited. Other anonymous rejections are
     * not, except logins rejected before the password check, which get
     * one summary entry per address and minute, so none of them can
     * flood the trail. */
    bool password_checked = login && (reply.status == 200 || reply.status == 401);
    audit = principal.auth != API_AUTH_NONE || password_checked;
    if (login && !password_checked && principal.auth == API_AUTH_NONE)
        api_login_rejected(srv, conn, reply.status);
    int audit_rc = audit ? api_audit_request(srv, conn, url, &principal,
                                             api_audit_action(method, url, &principal), &reply)
                         : FV_OK;
    if (audit_rc != FV_OK) {
        json_decref(reply.body);
        free(reply.text);
        reply.text = NULL;
        memset(&headers, 0, sizeof headers);
        if (metrics != NULL)
            MHD_destroy_response(metrics);
        metrics = NULL;
        if (audit_rc == FV_ERR_FULL) {
            headers.retry_after_s = 1;
            api_reply_error(&reply, 503, "audit_queue_full",
                            "the audit trail is behind: the queue of audit entries stayed full "
                            "for 1 s; retry the request later");
        } else {
            api_reply_error(&reply, 503, "audit_unavailable",
                            "the request could not be written to the audit trail; check the "
                            "server log and that the store is writable");
        }
    }
    json_decref(json);
    if (metrics != NULL)
        return api_queue(conn, 200, metrics);
    return api_send_reply_headers(conn, &reply, headers.allow, &headers);
}

static enum MHD_Result api_handle_request(void *cls, struct MHD_Connection *conn,
                                          const char *url, const char *method,
                                          const char *version, const char *upload_data,
                                          size_t *upload_data_size, void **req_ctx)
{
    api_server *srv = cls;
    api_upload *upload;

    (void)version;
    if (*req_ctx == NULL)
        api_deadline_head_received(srv->deadline, conn);

    /* Later calls of a request answered on the first call only carry
     * body bytes we rejected; drop them. */
    if (*req_ctx == &api_answered_marker) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*req_ctx == &api_read_pending_marker) {
        *req_ctx = &api_answered_marker;
        if (*upload_data_size != 0) {
            /* A body without Content-Length or chunked framing. */
            *upload_data_size = 0;
            return api_send_error(conn, 413, "body_not_allowed",
                                  "GET and HEAD requests must not carry a body; send the "
                                  "parameters in the query string",
                                  NULL);
        }
        if (api_is_api_path(url))
            return api_answer_api(srv, conn, url, method, NULL);
        return api_serve_static(srv, conn, url);
    }

    if (*req_ctx == NULL) {
        bool reads = api_method_reads(method);

        if (!reads && !(api_method_takes_body(method) && api_is_api_path(url))) {
            *req_ctx = &api_answered_marker;
            return api_send_error(conn, 405, "method_not_allowed",
                                  api_is_api_path(url)
                                      ? "supported methods: GET, HEAD, POST, PATCH, PUT, DELETE"
                                      : "static files accept only GET and HEAD",
                                  api_is_api_path(url) ? "GET, HEAD, POST, PATCH, PUT, DELETE"
                                                       : "GET, HEAD");
        }
        if (reads) {
            if (api_request_has_body(conn) || *upload_data_size != 0) {
                *req_ctx = &api_answered_marker;
                return api_send_error(conn, 413, "body_not_allowed",
                                      "GET and HEAD requests must not carry a body; send the "
                                      "parameters in the query string",
                                      NULL);
            }
            *req_ctx = &api_read_pending_marker;
            return MHD_YES;
        }
        if (api_request_body_too_large(conn)) {
            *req_ctx = &api_answered_marker;
            if (strcmp(url, "/api/v1/login") == 0)
                api_login_rejected(srv, conn, 413);
            return api_send_error(conn, 413, "body_too_large",
                                  "the request body is larger than 65536 bytes", NULL);
        }
        upload = calloc(1, sizeof *upload);
        if (upload == NULL)
            return MHD_NO;
        *req_ctx = upload;
        return MHD_YES;
    }

    upload = *req_ctx;
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (upload->too_large || !(n <= API_BODY_MAX - upload->len)) {
            /* Chunked bodies have no Content-Length to check up front. */
            upload->too_large = true;
            return MHD_YES;
        }
        if (upload->data == NULL) {
            upload->data = malloc(API_BODY_MAX);
            if (upload->data == NULL)
                return MHD_NO;
        }
        memcpy(upload->data + upload->len, upload_data, n);
        upload->len += n;
        return MHD_YES;
    }

    /* The body is complete. */
    if (upload->too_large) {
        if (strcmp(url, "/api/v1/login") == 0)
            api_login_rejected(srv, conn, 413);
        return api_send_error(conn, 413, "body_too_large",
                              "the request body is larger than 65536 bytes", NULL);
    }
    return api_answer_api(srv, conn, url, method, upload);
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
            s[out++] = (char)(ch == '\0' ? '\x7f' : ch);
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
    srv->metrics_public = config->metrics_public;
    srv->role_may_read_fn = config->role_may_read_fn;
    srv->address_zone_fn = config->address_zone_fn;
    srv->zone_known_fn = config->zone_known_fn;
    srv->policy_ctx = config->policy_ctx;

    rc = api_auth_create(srv, config);
    if (rc != FV_OK) {
        snprintf(err, err_len, "could not set up authentication of the HTTP server: %s",
                 fv_strerror(rc));
        goto out;
    }

    /* HTTPS needs a libmicrohttpd built with GnuTLS. */
    bool tls = config->tls_cert_pem != NULL || config->tls_key_pem != NULL;
    if (tls && (config->tls_cert_pem == NULL || config->tls_key_pem == NULL)) {
        snprintf(err, err_len, "HTTPS needs both a certificate and its private key; pass "
                               "--tls-cert FILE and --tls-key FILE");
        rc = FV_ERR_INVALID;
        goto out;
    }
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, err_len, "this libmicrohttpd was built without TLS support, so HTTPS is "
                               "unavailable; install a libmicrohttpd built with GnuTLS or "
                               "serve plain HTTP behind a TLS proxy");
        rc = FV_ERR_UNSUPPORTED;
        goto out;
    }
    srv->tls = tls;
    atomic_store(&api_tls_started, tls);
    struct MHD_OptionItem tls_options[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)config->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)config->tls_cert_pem},
        {MHD_OPTION_END, 0, NULL},
    };

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

    /* Without the cache every series request decrypts the aggregates. */
    if (store_record_cache_create(FV_CLASS_AGGREGATE, API_AGGREGATE_CACHE_ENTRIES,
                                  &srv->aggregate_cache) != FV_OK)
        fv_warning("could not allocate the aggregate cache of the HTTP server; series "
                   "requests read every aggregate from the store");

    rc = api_audit_log_create(srv->store, config->audit_flush_ms, config->audit_queue_max,
                              &srv->audit_log);
    if (rc != FV_OK) {
        snprintf(err, err_len, "could not start the HTTP server's audit writer thread: %s",
                 fv_strerror(rc));
        goto out;
    }

    rc = api_deadline_create(API_HEAD_TIMEOUT_S,
                             api_or_default(config->connection_limit,
                                            API_DEFAULT_CONNECTION_LIMIT),
                             &srv->deadline);
    if (rc != FV_OK) {
        snprintf(err, err_len, "could not start the HTTP server's request deadline thread: %s",
                 fv_strerror(rc));
        goto out;
    }

    errno = 0;
    srv->daemon = MHD_start_daemon(
        api_daemon_flags(listen.ipv6) | (tls ? MHD_USE_TLS : 0u), config->port, NULL, NULL,
        api_handle_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&listen.addr,
        MHD_OPTION_THREAD_POOL_SIZE, api_or_default(config->threads, API_DEFAULT_THREADS),
        MHD_OPTION_CONNECTION_LIMIT,
        api_or_default(config->connection_limit, API_DEFAULT_CONNECTION_LIMIT),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        api_or_default(config->per_ip_limit, API_DEFAULT_PER_IP_LIMIT),
        MHD_OPTION_CONNECTION_TIMEOUT, api_or_default(config->timeout_s, API_DEFAULT_TIMEOUT_S),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY_BYTES,
        MHD_OPTION_UNESCAPE_CALLBACK, api_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, api_request_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, api_deadline_notify, srv->deadline,
        MHD_OPTION_ARRAY, tls_options,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        int saved = errno;

        if (tls)
            snprintf(err, err_len,
                     "cannot start HTTPS on %s port %u (%s); check that the port is free and "
                     "that --tls-cert and --tls-key are a matching PEM certificate and "
                     "unencrypted private key",
                     config->listen_addr != NULL ? config->listen_addr : "127.0.0.1",
                     (unsigned)config->port,
                     saved != 0 ? strerror(saved) : "libmicrohttpd rejected the configuration");
        else
            snprintf(err, err_len,
                     "cannot listen on %s port %u: %s; choose another --listen address",
                     config->listen_addr != NULL ? config->listen_addr : "127.0.0.1",
                     (unsigned)config->port,
                     saved != 0 ? strerror(saved) : "libmicrohttpd failed");
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

int api_server_store_call(api_server *server, int (*fn)(store_env *store, void *ctx), void *ctx)
{
    if (server == NULL || fn == NULL)
        return FV_ERR_INVALID;
    int rc = api_audit_flush(server->audit_log);
    if (rc != FV_OK)
        return rc;
    pthread_mutex_lock(&server->store_lock);
    rc = fn(server->store, ctx);
    pthread_mutex_unlock(&server->store_lock);
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
    /* No request runs any more: commit what is queued. */
    api_audit_log_destroy(&srv->audit_log);
    store_record_cache_destroy(&srv->aggregate_cache);
    api_deadline_destroy(&srv->deadline);
    if (srv->web_dir_fd >= 0)
        close(srv->web_dir_fd);
    if (srv->lock_ready)
        pthread_mutex_destroy(&srv->store_lock);
    api_auth_destroy(srv);
    free(srv);
}
