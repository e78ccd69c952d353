/*
 * cap_http_conn.c: pair HTTP/1.x requests with their responses on one
 * TCP connection.
 *
 * HTTP/1.1 answers requests in the order they were sent (RFC 9112
 * section 9.3.2), so the oldest waiting request owns the next final
 * response. Message boundaries are found from the heads: a body of
 * Content-Length bytes is skipped (never stored). Interim 1xx responses
 * are skipped without pairing. A response without a body (HEAD request,
 * 204, 304) is followed directly by the next response.
 *
 * Limits:
 * - At most CAP_HTTP_PENDING_MAX requests wait for responses. A further
 *   request emits the oldest waiting one with status 0 first.
 * - A response whose body length is unknown (chunked, or ending at
 *   connection close) stops pairing: the requests waiting then and every
 *   later one are emitted with status 0.
 * - A chunked request body, or a client head that does not parse, makes
 *   the caller resynchronise at the next segment that starts a request;
 *   pairing continues.
 * - NOTE: body skipping counts the bytes the engine buffers. A single
 *   segment larger than the engine's 64 KiB stream buffer loses its tail,
 *   so a body spanning such a segment shifts the next message boundary
 *   and that message is lost.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cap_internal.h"
#include "cap_proto.h"

#define CAP_HTTP_PENDING_MAX 8

struct cap_http_conn {
    cap_http pending[CAP_HTTP_PENDING_MAX]; /* ring, oldest at head */
    unsigned head, count;
    uint64_t body_left[2];      /* body bytes to skip per direction */
    bool pairing_stopped;       /* a response body of unknown length was seen */
    bool client_lost;           /* client side waits for a resync */
};

cap_http_conn *cap_http_conn_create(void)
{
    /* Only the counters need zeroing: a pending[] slot is written by
     * http_push before http_pop reads it. */
    cap_http_conn *c = malloc(sizeof *c);

    if (c == NULL)
        return NULL;
    c->head = 0;
    c->count = 0;
    c->body_left[0] = 0;
    c->body_left[1] = 0;
    c->pairing_stopped = false;
    c->client_lost = false;
    return c;
}

/* Bytes at the start of a message that the head parser always reads,
 * so that a stream that is not HTTP is rejected by its first bytes. */
#define HTTP_HEAD_EARLY_BYTES 64

/*
 * True if the head at BUF (LEN bytes) may be complete: its empty line
 * ("\n\n" or "\n\r\n") is there, or the parser must read it anyway (its
 * first bytes, the size limit, a full stream). *SCANNED is the number of
 * bytes at BUF searched before without finding the empty line. The search
 * resumes there, so a head that arrives in many small segments is
 * searched once in all instead of parsed again for every segment.
 */
static bool http_head_may_end(const uint8_t *buf, size_t len, bool full, size_t *scanned)
{
    if (full || len <= HTTP_HEAD_EARLY_BYTES || len >= CAP_HTTP_HEAD_MAX_BYTES)
        return true;
    size_t from = *scanned > 2 && *scanned <= len ? *scanned - 2 : 0;
    for (const uint8_t *lf = memchr(buf + from, '\n', len - from); lf != NULL;
         lf = memchr(lf + 1, '\n', len - (size_t)(lf + 1 - buf))) {
        size_t at = (size_t)(lf - buf);
        if ((at + 1 < len && buf[at + 1] == '\n') ||
            (at + 2 < len && buf[at + 1] == '\r' && buf[at + 2] == '\n'))
            return true;
        if (at + 1 >= len)
            break;
    }
    *scanned = len;
    return false;
}

static void http_emit(cap_http *ev, const cap_sink *sink, cap_stats *stats)
{
    if (ev->status == 0)
        stats->http_unpaired++;
    if (sink->on_http != NULL)
        sink->on_http(sink->ctx, ev);
}

/* Remove the oldest waiting request into *OUT. */
static bool http_pop(cap_http_conn *c, cap_http *out)
{
    if (c->count == 0)
        return false;
    *out = c->pending[c->head];
    sodium_memzero(&c->pending[c->head], sizeof c->pending[c->head]);
    c->head = (c->head + 1) % CAP_HTTP_PENDING_MAX;
    c->count--;
    return true;
}

static void http_flush_pending(cap_http_conn *c, const cap_sink *sink, cap_stats *stats)
{
    cap_http ev;
    while (http_pop(c, &ev))
        http_emit(&ev, sink, stats);
}

/* Queue EV, or emit it now when pairing has stopped. */
static void http_push(cap_http_conn *c, const cap_http *ev, const cap_sink *sink,
                      cap_stats *stats)
{
    if (c->pairing_stopped) {
        cap_http now = *ev;
        http_emit(&now, sink, stats);
        return;
    }
    if (c->count == CAP_HTTP_PENDING_MAX) {
        cap_http oldest;
        (void)http_pop(c, &oldest);
        http_emit(&oldest, sink, stats);
    }
    c->pending[(c->head + c->count) % CAP_HTTP_PENDING_MAX] = *ev;
    c->count++;
}

/* Skip body bytes of direction DIR; returns how many of LEN were used. */
static size_t http_skip_body(cap_http_conn *c, unsigned dir, size_t len)
{
    size_t take = c->body_left[dir] < len ? (size_t)c->body_left[dir] : len;
    c->body_left[dir] -= take;
    return take;
}

/* Parse one request head at BUF; returns the bytes used (0: wait). */
static size_t http_client_step(cap_http_conn *c, const uint8_t *buf, size_t len, bool full,
                               const cap_http *tmpl, const cap_sink *sink, cap_stats *stats,
                               bool *resync)
{
    cap_http_req req;
    int rc = cap_http_parse_request(buf, len, &req);

    if (rc == FV_ERR_TRUNCATED && !full)
        return 0;
    if (rc != FV_OK) {
        stats->http_malformed++;
        c->client_lost = true;
        *resync = true;
        return len;
    }

    cap_http ev = *tmpl;
    stats->http_requests++;
    memcpy(ev.method, req.method, sizeof ev.method);
    ev.method[sizeof ev.method - 1] = '\0';
    memcpy(ev.host, req.host, sizeof ev.host);
    ev.host[sizeof ev.host - 1] = '\0';
    memcpy(ev.user_agent, req.user_agent, sizeof ev.user_agent);
    ev.user_agent[sizeof ev.user_agent - 1] = '\0';
    ev.uri_length = req.uri_length;
    ev.status = 0;
    http_push(c, &ev, sink, stats);

    if (req.chunked) {
        /* NOTE: chunked request bodies are not walked; the next request
         * is looked for at the start of a later segment instead. */
        c->client_lost = true;
        *resync = true;
        return len;
    }
    c->body_left[0] = req.has_content_length ? req.content_length : 0;
    return req.head_len;
}

/* Parse one response head at BUF; returns the bytes used (0: wait). */
static size_t http_server_step(cap_http_conn *c, const uint8_t *buf, size_t len, bool full,
                               const cap_sink *sink, cap_stats *stats)
{
    cap_http_resp resp;
    int rc = cap_http_parse_response(buf, len, &resp);

    if (rc == FV_ERR_TRUNCATED && !full)
        return 0;
    if (rc != FV_OK) {
        /* The server stream cannot be followed any more. */
        c->pairing_stopped = true;
        http_flush_pending(c, sink, stats);
        return len;
    }
    if (resp.status < 200)
        return resp.head_len;           /* interim response: the final one follows */

    cap_http ev;
    bool paired = http_pop(c, &ev);
    if (paired) {
        ev.status = resp.status;
        stats->http_responses++;
        http_emit(&ev, sink, stats);
    }

    bool no_body = resp.status == 204 || resp.status == 304 ||
                   (paired && strcmp(ev.method, "HEAD") == 0);
    if (no_body) {
        c->body_left[1] = 0;
    } else if (resp.has_content_length && !resp.chunked) {
        c->body_left[1] = resp.content_length;
    } else {
        /* NOTE: a chunked body, or one that ends at connection close, is
         * not walked, so pairing stops after this response and later
         * requests are emitted with status 0. */
        c->pairing_stopped = true;
        http_flush_pending(c, sink, stats);
        return len;
    }
    return resp.head_len;
}

size_t cap_http_conn_feed(cap_http_conn *conn, unsigned dir, const uint8_t *buf, size_t len,
                          bool full, size_t *head_scanned, const cap_http *tmpl,
                          const cap_sink *sink, cap_stats *stats, bool *resync)
{
    size_t used = 0;

    *resync = false;
    if (dir == 1 && conn->pairing_stopped)
        return len;
    if (dir == 0 && conn->client_lost)
        return len;

    while (used < len) {
        size_t step;

        if (conn->body_left[dir] > 0) {
            used += http_skip_body(conn, dir, len - used);
            *head_scanned = 0;
            continue;
        }
        if (!http_head_may_end(buf + used, len - used, full, head_scanned))
            break;
        if (dir == 0)
            step = http_client_step(conn, buf + used, len - used, full, tmpl, sink, stats,
                                    resync);
        else
            step = http_server_step(conn, buf + used, len - used, full, sink, stats);
        if (step == 0)
            break;
        used += step;
        *head_scanned = 0;
        if (*resync || (dir == 1 && conn->pairing_stopped))
            return len;
    }
    return used;
}

void cap_http_conn_client_resumed(cap_http_conn *conn)
{
    conn->client_lost = false;
    conn->body_left[0] = 0;
}

void cap_http_conn_finish(cap_http_conn **conn, const cap_sink *sink, cap_stats *stats)
{
    if (conn == NULL || *conn == NULL)
        return;
    /* http_pop wipes each slot it empties, so once every request is
     * flushed no slot contains request data and only the counters remain. */
    http_flush_pending(*conn, sink, stats);
    free(*conn);
    *conn = NULL;
}
