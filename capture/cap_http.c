/*
 * cap_http.c: HTTP/1.x request head parser (method and Host).
 *
 * Contract (see cap_proto.h for the shared return codes):
 * - Input is the client's byte stream from its first byte. The request
 *   line must be METHOD SP request-target SP "HTTP/1." DIGIT (RFC 9112
 *   section 3). METHOD is 1 to 15 characters of 'A'-'Z', '-' and '_', a
 *   subset of the RFC 9110 token that covers the registered methods and
 *   extensions seen on networks ("M-SEARCH", "CCM_POST"). The target is
 *   one or more bytes other than controls, space and DEL.
 * - Lines end in LF with an optional CR before it, so a head ended by
 *   CRLF CRLF, by bare LF LF or by a mix is accepted. The head ends at the
 *   first empty line.
 * - FV_ERR_TRUNCATED: no empty line yet and everything read so far is
 *   valid. The method is checked as soon as its bytes arrive, so a stream
 *   that is not HTTP is rejected early.
 * - FV_ERR_PARSE: an invalid request line, a header line without a colon
 *   or with a name that is not a token, or no end of head within the
 *   first 8 KiB (the 8192 bytes include the final empty line).
 * - host is the value of the first Host header, whose name is matched
 *   without regard to case. Leading and trailing spaces and tabs are
 *   removed and a port is kept. Bytes outside 0x21..0x7e and '\' are
 *   written as "\DDD", and a value longer than FV_NAME_MAX - 1 characters
 *   is cut at a whole character or escape. host is "" when there is no
 *   Host header.
 * - The request target and the other headers are validated but never
 *   copied.
 * - On any return other than FV_OK, *out is zeroed.
 */
#include <string.h>

#include "cap_proto.h"
#include "cap_reader.h"

#define CAP_HTTP_HEAD_MAX_BYTES 8192
#define CAP_HTTP_METHOD_MAX 15
#define CAP_HTTP_VERSION_PREFIX "HTTP/1."
#define CAP_HTTP_VERSION_BYTES 8         /* "HTTP/1." and one digit */

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

/*
 * Check the method prefix of DATA as far as it goes. Returns FV_OK with
 * *METHOD_LEN set once the space after the method is present,
 * FV_ERR_TRUNCATED while the input ends inside a valid method, and
 * FV_ERR_PARSE on a character that cannot start or continue one.
 */
static int http_scan_method(const uint8_t *data, size_t len, size_t *method_len)
{
    for (size_t i = 0; i <= CAP_HTTP_METHOD_MAX; i++) {
        if (!(i < len))
            return FV_ERR_TRUNCATED;
        if (data[i] == ' ') {
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

/* Validate the request line LINE (without its line ending); the method,
 * METHOD_LEN bytes, is already checked. */
static int http_check_request_line(const uint8_t *line, size_t line_len, size_t method_len)
{
    cap_reader rd;
    const uint8_t *version;

    cap_rd_init(&rd, line, line_len);
    (void)cap_rd_skip(&rd, method_len + 1);

    /* request-target: everything up to the next space. */
    size_t target_len = 0;
    while (target_len < rd.remaining && rd.p[target_len] != ' ') {
        uint8_t c = rd.p[target_len];
        if (c <= 0x20 || c == 0x7f)
            return FV_ERR_PARSE;
        target_len++;
    }
    if (target_len == 0 || cap_rd_skip(&rd, target_len + 1) != FV_OK)
        return FV_ERR_PARSE;

    /* HTTP-version, and nothing after it. */
    if (rd.remaining != CAP_HTTP_VERSION_BYTES)
        return FV_ERR_PARSE;
    (void)cap_rd_bytes(&rd, CAP_HTTP_VERSION_BYTES, &version);
    if (memcmp(version, CAP_HTTP_VERSION_PREFIX, CAP_HTTP_VERSION_BYTES - 1) != 0)
        return FV_ERR_PARSE;
    if (version[7] < '0' || version[7] > '9')
        return FV_ERR_PARSE;
    return FV_OK;
}

/* Validate one header field line and, if it is the first Host field,
 * copy its value into OUT->host. */
static int http_parse_header_line(const uint8_t *line, size_t line_len, bool *have_host,
                                  cap_http_req *out)
{
    static const char host_name[] = "host";
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

    if (*have_host || name_len != sizeof(host_name) - 1)
        return FV_OK;
    for (size_t i = 0; i < name_len; i++) {
        if (http_ascii_lower(line[i]) != (uint8_t)host_name[i])
            return FV_OK;
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

    size_t pos = 0;
    for (size_t i = 0; i < value_len; i++) {
        if (!cap_text_append(out->host, sizeof(out->host), &pos, value[i], false))
            break;
    }
    *have_host = true;
    return FV_OK;
}

/*
 * Walk the head line by line: find each LF within the first 8 KiB, strip
 * one CR before it, check the request line, then each header line, and
 * stop at the first empty line.
 */
static int http_parse_head(const uint8_t *data, size_t len, size_t method_len,
                           cap_http_req *out)
{
    size_t window = len < CAP_HTTP_HEAD_MAX_BYTES ? len : CAP_HTTP_HEAD_MAX_BYTES;
    size_t pos = 0;
    bool request_line = true;
    bool have_host = false;

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
        if (request_line) {
            rc = http_check_request_line(line, line_len, method_len);
            request_line = false;
        } else if (line_len == 0) {
            return FV_OK;
        } else if (http_is_ows(line[0])) {
            /* NOTE: obsolete line folding (RFC 9112 section 5.2) continues
             * the previous field. It is skipped, so a folded Host keeps
             * only its first line. */
            rc = FV_OK;
        } else {
            rc = http_parse_header_line(line, line_len, &have_host, out);
        }
        if (rc != FV_OK)
            return rc;
    }
}

int cap_http_parse_request(const uint8_t *data, size_t len, cap_http_req *out)
{
    size_t method_len = 0;
    int rc;

    memset(out, 0, sizeof(*out));

    rc = http_scan_method(data, len, &method_len);
    if (rc != FV_OK)
        goto out;
    memcpy(out->method, data, method_len);
    out->method[method_len] = '\0';

    rc = http_parse_head(data, len, method_len, out);

out:
    if (rc != FV_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
