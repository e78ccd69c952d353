/*
 * api_internal.h: declarations shared by the api/ source files. Not part
 * of the public interface; tests include it to check the parsers.
 *
 * File map:
 *   api.c         daemon start/stop, request dispatch, headers, static files
 *   api_routes.c  the /api/v1 handlers that read the store
 *   api_params.c  query-parameter parsers (time, limit, order, cursor)
 *   api_top.c     /api/v1/top/...: aggregate totals with the k-threshold
 *   api_audit.c   the audit entry of each API request and /api/v1/audit
 */
#ifndef FV_API_INTERNAL_H
#define FV_API_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api.h"

/* Largest page a client may request with limit=. */
#define API_LIMIT_MAX 1000u
#define API_LIMIT_DEFAULT 100u

/* Size of the text buffers used for 400 messages. */
#define API_MESSAGE_MAX 256

/*
 * The running server. Every field is set by api_server_start and then
 * only read, except the store, whose calls are serialized by store_lock
 * because store.h promises concurrent readers across processes only, not
 * across threads of one process.
 */
struct api_server {
    struct MHD_Daemon *daemon;
    store_env *store;
    pthread_mutex_t store_lock;
    bool lock_ready;            /* store_lock was initialized */
    int web_dir_fd;             /* open directory of web_root, -1 if none */
    uint64_t (*clock_us)(void); /* never NULL after start */
    uint16_t port;              /* bound TCP port, host order */
    /* From api_config; called under store_lock. NULL = no policy. */
    int (*compliance_fn)(void *ctx, store_env *store, const char *document, uint64_t from_us,
                         uint64_t to_us, uint64_t now_us, char **out_json);
    void *compliance_ctx;
};

/* A JSON reply produced by a route: HTTP status and a body it owns. */
typedef struct api_reply {
    unsigned status;
    json_t *body;
} api_reply;

/*
 * Answer the API request for URL (already percent-decoded, starts with
 * "/api"). Always fills OUT (a 4xx/5xx error object when the request
 * fails); OUT->body is NULL only when memory ran out.
 */
void api_route_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                       api_reply *out);

/* Fill OUT with the error object {"error": CODE, "message": MESSAGE}. */
void api_reply_error(api_reply *out, unsigned status, const char *code, const char *message);

/* ---- api.c ----------------------------------------------------------- */

/* Maximum length of a served file name, which has no directory part. */
#define API_STATIC_NAME_MAX 128

/*
 * Turn the decoded URL path into a file name directly under web_root.
 * Rejects (returns false) anything that could leave the directory or
 * name something unexpected: a byte outside [A-Za-z0-9._-], a "/" after
 * the leading one (no subdirectories are served), "..", a leading dot
 * (hidden files), and names longer than API_STATIC_NAME_MAX. A %00 in
 * the request arrives as DEL and fails the byte check; "//" and "\\"
 * fail it as well. "/" maps to "index.html". Exposed for the fuzz
 * harness and tests.
 */
bool api_static_name(const char *url, char name[API_STATIC_NAME_MAX]);

/* ---- api_params.c ---------------------------------------------------- */

/*
 * Parse TEXT as a point in time: RFC 3339 ("2026-11-30T08:00:00Z", with
 * optional fraction and a Z or +HH:MM/-HH:MM offset) or integer seconds
 * since the epoch. Writes microseconds since the epoch to *OUT_US.
 * Return FV_OK or FV_ERR_INVALID (also for times before 1970 or after
 * year 9999).
 */
int api_time_parse(const char *text, uint64_t *out_us);

/* Parse a page size: decimal digits only, 1 .. API_LIMIT_MAX. */
int api_limit_parse(const char *text, uint32_t *out);

/*
 * Cursors are "a" or "d" (the order they belong to) followed by 16
 * lowercase hex digits of the last record id of the previous page. The
 * text is opaque to clients; the order letter lets us reject a cursor
 * reused with the other order.
 */
#define API_CURSOR_TEXT_MAX 18
void api_cursor_format(bool newest_first, uint64_t last_id, char out[API_CURSOR_TEXT_MAX]);
/* Return FV_OK, or FV_ERR_INVALID if TEXT is malformed or belongs to the other order. */
int api_cursor_parse(const char *text, bool newest_first, uint64_t *out_id);

/* Copy up to OUT_LEN-1 bytes of untrusted TEXT into OUT, replacing every
 * byte outside printable ASCII with '?', so it can go into a message. */
void api_text_sanitize(const char *text, char *out, size_t out_len);

/* ---- api_top.c ------------------------------------------------------- */

/*
 * Answer /api/v1/top/WHAT (WHAT is "destinations", "protocols" or
 * "zones"): totals per group over the hourly aggregates whose bucket
 * starts in from..to, largest flow count first, at most limit rows
 * (default 10), leaving out and counting the groups of fewer than k
 * distinct hosts (meta STORE_META_K_THRESHOLD, or 5 if unset).
 */
void api_route_top(api_server *srv, struct MHD_Connection *conn, const char *what,
                   api_reply *out);

/* ---- api_audit.c ----------------------------------------------------- */

/*
 * Append the audit entry of one API request (URL, its query values cut
 * to 64 bytes, the client address and the "count" of a 200 REPLY).
 * Returns false when the entry could not be written: the caller must
 * then answer 503 instead of sending REPLY.
 */
bool api_audit_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                       const api_reply *reply);

/* Answer /api/v1/audit: entries with limit, cursor and order (default
 * desc), like the record routes. */
void api_route_audit(api_server *srv, struct MHD_Connection *conn, api_reply *out);

/* Answer /api/v1/audit/verify: walk the whole hash chain with
 * store_audit_verify and report ok, checked, first_seq, head_seq,
 * head_hash, broken_seq and reason. Takes no parameters. */
void api_route_audit_verify(api_server *srv, struct MHD_Connection *conn, api_reply *out);

#endif /* FV_API_INTERNAL_H */
