/*
 * cap_http.c: HTTP/1.x request and response head parsers.
 *
 * Contract (see cap_proto.h for the shared return codes):
 * - Input is a client (request) or server (response) byte stream
 *   positioned at the first byte of a message head.
 * - Request line. The strict form is METHOD SP request-target SP
 *   "HTTP/1." DIGIT (RFC 9112 section 3). METHOD is 1 to 15 characters of
 *   'A'-'Z', '-' and '_', a subset of the RFC 9110 token that covers the
 *   registered methods and extensions seen on networks ("M-SEARCH",
 *   "CCM_POST"). Like Zeek and tshark, this metadata parser also accepts
 *   three broken forms that clients send: a version without its minor
 *   digit ("GET / HTTP/1."), no version at all, in which case everything
 *   after the method is the target ("GET /HTTP/1.1" has the target
 *   "/HTTP/1.1", "OPTIONS HTTP/1.1" the target "HTTP/1.1"), and a method
 *   alone on the line (target length 0). A version other than HTTP/1.x,
 *   a space inside the target, bytes after the version, and control bytes
 *   are rejected.
 * - Status line: "HTTP/1." DIGIT SP three digits, then SP and a reason
 *   phrase or nothing.
 * - Lines end in LF with an optional CR before it, so a head ended by
 *   CRLF CRLF, by bare LF LF or by a mix is accepted. The head ends at the
 *   first empty line.
 * - FV_ERR_TRUNCATED: no empty line yet and everything read so far is
 *   valid. The method (or "HTTP/") is checked as soon as its bytes
 *   arrive, so a stream that is not HTTP is rejected early.
 * - FV_ERR_PARSE: an invalid start line, a header line without a colon or
 *   with a name that is not a token, an invalid Content-Length, or no end
 *   of head within the first 32 KiB (the 32768 bytes include the final
 *   empty line).
 * - host and user_agent are the values of the first Host and User-Agent
 *   headers, whose names are matched without regard to case. Leading and
 *   trailing spaces and tabs are removed and a port is kept. Bytes outside
 *   0x21..0x7e and '\' are written as "\DDD", and a value longer than
 *   FV_NAME_MAX - 1 characters is cut at a whole character or escape.
 *   Each is "" when its header is absent.
 * - Content-Length (the first one) and a Transfer-Encoding whose value
 *   contains "chunked" are reported so the caller can find where the next
 *   message starts. Bodies are not read.
 * - The request target and the other headers are validated but never
 *   copied; only the target's length is reported.
 * - On any return other than FV_OK, *out is zeroed.
 */
#include <string.h>

#include "cap_proto.h"
#include "cap_reader.h"

#define CAP_HTTP_METHOD_MAX 15
#define CAP_HTTP_VERSION_PREFIX "HTTP/1."
#define CAP_HTTP_VERSION_PREFIX_BYTES 7  /* "HTTP/1." */
#define CAP_HTTP_VERSION_BYTES 8         /* "HTTP/1." and one digit */
#define CAP_HTTP_STATUS_LINE_MIN 12      /* "HTTP/1.1 200" */

/* What one head walk collects; the request and response parsers copy
 * the parts they report. */
typedef struct http_head_fields {
    char *host;                 /* NULL: do not collect */
    char *user_agent;           /* NULL: do not collect */
    bool have_host, have_user_agent;
    bool has_content_length;
    uint64_t content_length;
    bool chunked;
} http_head_fields;

static bool http_is_method_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* tchar of RFC 9110 section 5.6.2. */
static bool http_is_token_char(uint8_t c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool http_is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static uint8_t http_ascii_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

/* Return true if the LEN bytes at A equal the lower-case NAME, ignoring
 * ASCII case. */
static bool http_name_equals(const uint8_t *a, size_t len, const char *name)
{
    if (len != strlen(name))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (http_ascii_lower(a[i]) != (uint8_t)name[i])
            return false;
    }
    return true;
}

/*
 * Check the method prefix of DATA as far as it goes. Returns FV_OK with
 * *METHOD_LEN set once the byte after the method (a space, CR or LF) is
 * present, FV_ERR_TRUNCATED while the input ends inside a valid method,
 * and FV_ERR_PARSE on a character that cannot start or continue one.
 */
static int http_scan_method(const uint8_t *data, size_t len, size_t *method_len)
{
    for (size_t i = 0; i <= CAP_HTTP_METHOD_MAX; i++) {
        if (!(i < len))
            return FV_ERR_TRUNCATED;
        if (data[i] == ' ' || data[i] == '\r' || data[i] == '\n') {
            if (i == 0)
                return FV_ERR_PARSE;
            *method_len = i;
            return FV_OK;
        }
        if (!http_is_method_char(data[i]))
            return FV_ERR_PARSE;
    }
    return FV_ERR_PARSE;     /* longer than CAP_HTTP_METHOD_MAX */
}

/* Return true if the LEN bytes at VERSION are "HTTP/1." with an optional
 * minor digit. */
static bool http_is_lenient_version(const uint8_t *version, size_t len)
{
    if (len != CAP_HTTP_VERSION_PREFIX_BYTES && len != CAP_HTTP_VERSION_BYTES)
        return false;
    if (memcmp(version, CAP_HTTP_VERSION_PREFIX, CAP_HTTP_VERSION_PREFIX_BYTES) != 0)
        return false;
    return len == CAP_HTTP_VERSION_PREFIX_BYTES || (version[7] >= '0' && version[7] <= '9');
}

/* Validate the request line LINE (without its line ending), whose method
 * of METHOD_LEN bytes is already checked, and store the target length in
 * *URI_LENGTH. The accepted forms are listed at the top of this file. */
static int http_check_request_line(const uint8_t *line, size_t line_len, size_t method_len,
                                   uint32_t *uri_length)
{
    *uri_length = 0;
    if (line_len == method_len)
        return FV_OK;                   /* method alone */
    if (line[method_len] != ' ')
        return FV_ERR_PARSE;

    const uint8_t *rest = line + method_len + 1;
    size_t rest_len = line_len - method_len - 1;
    size_t target_len = rest_len;

    /* A last word starting with "HTTP/" is the version. */
    for (size_t i = rest_len; i > 0; i--) {
        if (rest[i - 1] != ' ')
            continue;
        const uint8_t *version = rest + i;
        size_t version_len = rest_len - i;
        if (version_len >= 5 && memcmp(version, "HTTP/", 5) == 0) {
            if (!http_is_lenient_version(version, version_len))
                return FV_ERR_PARSE;
            target_len = i - 1;
            if (target_len == 0)
                return FV_ERR_PARSE;    /* "GET  HTTP/1.1": two spaces, no target */
        }
        break;
    }

    for (size_t i = 0; i < target_len; i++) {
        uint8_t c = rest[i];
        if (c <= 0x20 || c == 0x7f)
            return FV_ERR_PARSE;
    }
    *uri_length = target_len > UINT32_MAX ? UINT32_MAX : (uint32_t)target_len;
    return FV_OK;
}

/* Validate the status line LINE (without its line ending) and store its
 * status code. */
static int http_check_status_line(const uint8_t *line, size_t line_len, uint16_t *status)
{
    if (line_len < CAP_HTTP_STATUS_LINE_MIN)
        return FV_ERR_PARSE;
    if (!http_is_lenient_version(line, CAP_HTTP_VERSION_BYTES) || line[7] == ' ')
        return FV_ERR_PARSE;
    if (line[8] != ' ')
        return FV_ERR_PARSE;
    unsigned code = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return FV_ERR_PARSE;
        code = code * 10 + (unsigned)(line[i] - '0');
    }
    if (code < 100 || (line_len > 12 && line[12] != ' '))
        return FV_ERR_PARSE;
    for (size_t i = 12; i < line_len; i++) {
        if ((line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
            return FV_ERR_PARSE;
    }
    *status = (uint16_t)code;
    return FV_OK;
}

/* Copy VALUE (LEN bytes) into the FV_NAME_MAX field OUT, escaped. */
static void http_copy_value(char *out, const uint8_t *value, size_t len)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (!cap_text_append(out, FV_NAME_MAX, &pos, value[i], false))
            break;
    }
}

/* Parse a Content-Length value: one or more digits, at most 2^63 - 1. */
static int http_parse_length(const uint8_t *value, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0)
        return FV_ERR_PARSE;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return FV_ERR_PARSE;
        uint64_t digit = (uint64_t)(value[i] - '0');
        if (n > (UINT64_MAX / 2 - digit) / 10)
            return FV_ERR_PARSE;
        n = n * 10 + digit;
    }
    *out = n;
    return FV_OK;
}

/* Return true if VALUE contains "chunked", ignoring ASCII case. */
static bool http_mentions_chunked(const uint8_t *value, size_t len)
{
    static const char chunked[] = "chunked";
    const size_t n = sizeof(chunked) - 1;
    for (size_t i = 0; i + n <= len; i++) {
        if (http_name_equals(value + i, n, chunked))
            return true;
    }
    return false;
}

/* Validate one header field line and collect the fields in F. */
static int http_parse_header_line(const uint8_t *line, size_t line_len, http_head_fields *f)
{
    const uint8_t *colon = memchr(line, ':', line_len);
    if (colon == NULL)
        return FV_ERR_PARSE;

    size_t name_len = (size_t)(colon - line);
    if (name_len == 0)
        return FV_ERR_PARSE;
    for (size_t i = 0; i < name_len; i++) {
        if (!http_is_token_char(line[i]))
            return FV_ERR_PARSE;
    }

    /* Trim optional whitespace on both sides of the value. */
    const uint8_t *value = colon + 1;
    size_t value_len = line_len - name_len - 1;
    while (value_len > 0 && http_is_ows(value[0])) {
        value++;
        value_len--;
    }
    while (value_len > 0 && http_is_ows(value[value_len - 1]))
        value_len--;

    if (http_name_equals(line, name_len, "host")) {
        if (f->host != NULL && !f->have_host)
            http_copy_value(f->host, value, value_len);
        f->have_host = true;
    } else if (http_name_equals(line, name_len, "user-agent")) {
        if (f->user_agent != NULL && !f->have_user_agent)
            http_copy_value(f->user_agent, value, value_len);
        f->have_user_agent = true;
    } else if (http_name_equals(line, name_len, "content-length")) {
        if (!f->has_content_length) {
            if (http_parse_length(value, value_len, &f->content_length) != FV_OK)
                return FV_ERR_PARSE;
            f->has_content_length = true;
        }
    } else if (http_name_equals(line, name_len, "transfer-encoding")) {
        if (http_mentions_chunked(value, value_len))
            f->chunked = true;
    }
    return FV_OK;
}

/*
 * Walk the head line by line: find each LF within the first 32 KiB, strip
 * one CR before it, hand the start line to CHECK_START (with CTX), then
 * check each header line, and stop at the first empty line, whose end is
 * stored in *HEAD_LEN.
 */
static int http_parse_head(const uint8_t *data, size_t len,
                           int (*check_start)(const uint8_t *line, size_t line_len, void *ctx),
                           void *ctx, http_head_fields *f, size_t *head_len)
{
    size_t window = len < CAP_HTTP_HEAD_MAX_BYTES ? len : CAP_HTTP_HEAD_MAX_BYTES;
    size_t pos = 0;
    bool start_line = true;

    for (;;) {
        const uint8_t *lf = memchr(data + pos, '\n', window - pos);
        if (lf == NULL)
            return len < CAP_HTTP_HEAD_MAX_BYTES ? FV_ERR_TRUNCATED : FV_ERR_PARSE;

        const uint8_t *line = data + pos;
        size_t line_len = (size_t)(lf - line);
        pos += line_len + 1;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;

        int rc;
        if (start_line) {
            rc = check_start(line, line_len, ctx);
            start_line = false;
        } else if (line_len == 0) {
            *head_len = pos;
            return FV_OK;
        } else if (http_is_ows(line[0])) {
            /* NOTE: obsolete line folding (RFC 9112 section 5.2) continues
             * the previous field. It is skipped, so a folded Host or
             * User-Agent keeps only its first line. */
            rc = FV_OK;
        } else {
            rc = http_parse_header_line(line, line_len, f);
        }
        if (rc != FV_OK)
            return rc;
    }
}

typedef struct http_request_ctx {
    size_t method_len;
    uint32_t uri_length;
} http_request_ctx;

static int http_check_request_start(const uint8_t *line, size_t line_len, void *ctx)
{
    http_request_ctx *rc = ctx;
    return http_check_request_line(line, line_len, rc->method_len, &rc->uri_length);
}

static int http_check_response_start(const uint8_t *line, size_t line_len, void *ctx)
{
    return http_check_status_line(line, line_len, ctx);
}

int cap_http_parse_request(const uint8_t *data, size_t len, cap_http_req *out)
{
    http_request_ctx ctx = {0};
    http_head_fields fields;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&fields, 0, sizeof fields);
    fields.host = out->host;
    fields.user_agent = out->user_agent;

    rc = http_scan_method(data, len, &ctx.method_len);
    if (rc != FV_OK)
        goto out;
    memcpy(out->method, data, ctx.method_len);
    out->method[ctx.method_len] = '\0';

    rc = http_parse_head(data, len, http_check_request_start, &ctx, &fields, &out->head_len);
    if (rc != FV_OK)
        goto out;
    out->uri_length = ctx.uri_length;
    out->has_content_length = fields.has_content_length;
    out->content_length = fields.content_length;
    out->chunked = fields.chunked;

out:
    if (rc != FV_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

int cap_http_parse_response(const uint8_t *data, size_t len, cap_http_resp *out)
{
    static const char prefix[] = "HTTP/";
    http_head_fields fields;
    uint16_t status = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&fields, 0, sizeof fields);

    /* Reject a stream that is not a response as soon as its first bytes
     * differ from "HTTP/". */
    size_t n = len < sizeof(prefix) - 1 ? len : sizeof(prefix) - 1;
    if (memcmp(data, prefix, n) != 0) {
        rc = FV_ERR_PARSE;
        goto out;
    }

    rc = http_parse_head(data, len, http_check_response_start, &status, &fields, &out->head_len);
    if (rc != FV_OK)
        goto out;
    out->status = status;
    out->has_content_length = fields.has_content_length;
    out->content_length = fields.content_length;
    out->chunked = fields.chunked;

out:
    if (rc != FV_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
