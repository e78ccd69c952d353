/*
 * api_internal.h: declarations shared by the api/ source files. Not part
 * of the public interface; tests include it to check the parsers.
 *
 * File map:
 *   api.c         daemon start/stop, request dispatch, headers, static files
 *   api_routes.c  the /api/v1 handlers that read the store
 *   api_params.c  query-parameter parsers (time, limit, order, cursor)
 *   api_top.c     /api/v1/top/...: aggregate totals with the k-threshold
 *   api_audit.c   the audit entry of each API request, the queue that commits
 *                 the entries of reads in batches, and /api/v1/audit
 *   api_policy.c  serve --policy: roles narrowing, address literals in host filters,
 *                 zone filters
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
/* Longest "note" member of a reply (api_host_note_add). */
#define API_NOTE_MAX 512

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
    /* Sessions and login rate limits (api_auth.c). */
    struct api_auth *auth;
    bool tls;                   /* serving HTTPS: session cookies get Secure */
    bool metrics_public;        /* /metrics is served without authentication */
    /* From api_config; all NULL = no policy (api_policy.c). */
    bool (*role_may_read_fn)(void *ctx, const char *role, const char *item);
    int (*address_zone_fn)(void *ctx, int family, const uint8_t addr[16], unsigned prefix_len,
                           char *zone, size_t zone_len);
    bool (*zone_known_fn)(void *ctx, const char *zone, char *labels, size_t labels_len);
    void *policy_ctx;
    /* Request-head deadlines against slow clients (api_deadline.c). */
    struct api_deadline *deadline;
    /* The /api/v1/summary body built in second summary_cache_second of
     * the API clock, reused within that second (api_routes.c). Guarded
     * by store_lock. */
    char summary_cache[8192];
    size_t summary_cache_len;
    uint64_t summary_cache_second;
    bool summary_cache_valid;
    /* The queue of read requests' audit entries (api_audit.c). */
    struct api_audit_log *audit_log;
    /* Decoded aggregate records for /api/v1/series and the top routes
     * (store_query_run_cached); NULL when it could not be created. */
    store_record_cache *aggregate_cache;
};

/* Aggregate records kept decoded at most, about 300 bytes each: at 80
 * aggregates per hour, two months of them. */
#define API_AGGREGATE_CACHE_ENTRIES 131072u

/* A JSON reply produced by a route: HTTP status and a body it owns.
 * A route may instead hand over the body already rendered as TEXT
 * (malloc'd, NUL-terminated JSON; BODY is then NULL), so a reply built
 * from a cache is not parsed and dumped again. */
typedef struct api_reply {
    unsigned status;
    json_t *body;
    char *text;
} api_reply;

/*
 * Answer the API request for URL (already percent-decoded, starts with
 * "/api"). Always fills OUT (a 4xx/5xx error object when the request
 * fails); OUT->body is NULL only when memory ran out.
 */
void api_route_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                       api_reply *out);

/* Fill OUT with the error object {"error": CODE, "message": MESSAGE}.
 * Overwrites OUT's body and text without freeing them. */
void api_reply_error(api_reply *out, unsigned status, const char *code, const char *message);

/* ---- api.c ----------------------------------------------------------- */

/* Maximum length of a served file name, subdirectories included. */
#define API_STATIC_NAME_MAX 128

/*
 * Turn the decoded URL path into a file name relative to web_root, such
 * as "app.js" or "vendor/uPlot.esm.js". Rejects (returns false) anything
 * that could leave the directory or name something unexpected: a byte
 * outside [A-Za-z0-9._-/], an empty component ("//" or a trailing "/"),
 * a component starting with a dot (hidden files, ".."), and names longer
 * than API_STATIC_NAME_MAX. A %00 in the request arrives as DEL and fails
 * the byte check, and "\\" fails it as well. "/" maps to "index.html".
 * Exposed for the fuzz harness and tests.
 * NOTE: api_serve_static opens the name with O_NOFOLLOW, which guards the
 * last component only, so a symbolic link in place of a subdirectory of
 * web_root is followed.
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
 * Append the audit entry of one API request by PRINCIPAL (NULL or
 * API_AUTH_NONE: "anonymous") with ACTION ("api.read", "auth.login",
 * ...): URL, its query values cut to 64 bytes, the status and error code
 * of REPLY, the client address and the "count" of a 200 REPLY. Address
 * literals in the URL and the query values are written as "<address>".
 * Returns FV_OK, or an error when the entry could not be committed or
 * queued (FV_ERR_FULL: the queue stayed full): the caller must then
 * answer 503 instead of sending REPLY.
 */
struct api_principal;
int api_audit_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                      const struct api_principal *principal, const char *action,
                      const api_reply *reply);

/*
 * The queue of read entries. api_audit_request queues the entry of a
 * request whose action is "api.read" (returning before it is committed)
 * and commits every other entry before it returns: those are the
 * requests that change state. A writer thread commits the queue in one
 * transaction per API_AUDIT_BATCH_MAX entries when the oldest entry has
 * waited FLUSH_MS or a batch is full. When the queue is full a request
 * waits up to API_AUDIT_WAIT_MS for room and then gets FV_ERR_FULL;
 * entries are never dropped. After a failed commit the entries stay
 * queued and are retried, and new reads get FV_ERR_STORE until a commit
 * succeeds.
 */
#define API_AUDIT_FLUSH_MS_DEFAULT 5u
#define API_AUDIT_QUEUE_DEFAULT 4096u
#define API_AUDIT_WAIT_MS 1000u

typedef struct api_audit_log api_audit_log;

/* Start the writer thread of a queue of QUEUE_MAX entries (0: defaults
 * for both). Returns FV_OK or FV_ERR_NOMEM. */
int api_audit_log_create(store_env *store, unsigned flush_ms, unsigned queue_max,
                         api_audit_log **out);
/* Commit everything queued, stop the writer and free. Call after the
 * HTTP daemon stopped. Accepts NULL. */
void api_audit_log_destroy(api_audit_log **log);
/* Queue E with time NOW_US. Returns FV_OK, FV_ERR_FULL or FV_ERR_STORE. */
int api_audit_enqueue(api_audit_log *log, const store_audit_entry *e, uint64_t now_us);
/* Commit every queued entry now. Accepts NULL (nothing to do). */
int api_audit_flush(api_audit_log *log);
/* Commit the queued entries, then E with time NOW_US, before returning,
 * so E follows every entry queued before it. For state changes. */
int api_audit_append_now(api_server *srv, const store_audit_entry *e, uint64_t now_us);

/*
 * Copy IN to OUT (OUT_LEN bytes, always NUL-terminated) with every IPv4
 * or IPv6 address literal, and its "/prefix" when one follows, replaced
 * by "<address>". A literal is a maximal run of hex digits, '.' and ':'
 * that inet_pton accepts, so "/hosts/10.1.0.42/timeline" and
 * "10.0.0.0/8" are redacted but times such as "10:00:00" are not.
 */
void api_redact_addresses(const char *in, char *out, size_t out_len);

/* Answer /api/v1/audit: entries with limit, cursor and order (default
 * desc), like the record routes. */
void api_route_audit(api_server *srv, struct MHD_Connection *conn, api_reply *out);

/* Answer /api/v1/audit/verify: walk the whole hash chain with
 * store_audit_verify and report ok, checked, first_seq, head_seq,
 * head_hash, broken_seq and reason. Takes no parameters. */
void api_route_audit_verify(api_server *srv, struct MHD_Connection *conn, api_reply *out);

/* ---- authentication (api_auth.c) ------------------------------------ */

/* Role bits of api_route_permission and api_principal.role. Admin may do
 * everything; the others see the routes their bit is set on. */
#define API_ROLE_ANALYST 1u
#define API_ROLE_COMPLIANCE 2u
#define API_ROLE_ADMIN 4u

/* How the principal of a request proved who it is. */
typedef enum api_auth_kind {
    API_AUTH_NONE = 0,          /* anonymous */
    API_AUTH_SESSION = 1,       /* fv_session cookie from POST /api/v1/login */
    API_AUTH_TOKEN = 2,         /* Authorization: Bearer fvt_... */
} api_auth_kind;

/* The sender of a request. It never contains a password, token or session id. */
typedef struct api_principal {
    char user[STORE_AUTH_NAME_MAX + 1]; /* user name, or the token's name for tokens */
    unsigned role;                      /* one API_ROLE_* bit; 0 when anonymous */
    api_auth_kind auth;
} api_principal;

/*
 * Return the roles allowed to send METHOD ("GET", "PATCH", ...) to PATH
 * (decoded, starting with "/api/v1/", no query string) as a mask of
 * API_ROLE_* bits, or 0 for an unknown route or method. HEAD is checked
 * as GET. Implemented with the route table in api_routes.c.
 */
int api_route_permission(const char *method, const char *path);

/*
 * Failed-login counters of one key ("a:" client address or IPv6 /64,
 * "u:" user name) in a fixed window (api_auth.c). The table has
 * API_RATE_SLOTS slots. A full table evicts the oldest key that is not
 * locked out; a key that is locked out is never evicted, and when every
 * slot is locked out a new key cannot be tracked (api_rate_fail returns
 * false and the login answers 429).
 */
#define API_RATE_SLOTS 512u
#define API_LOGIN_FAILURES_PER_USER 5u
#define API_LOGIN_FAILURES_PER_ADDRESS 20u
#define API_LOGIN_WINDOW_S 300u

typedef struct api_rate_slot {
    char key[80];
    uint32_t failures;
    uint64_t window_start_us;
    uint32_t rejected;          /* logins rejected before a password check, not yet audited */
    uint64_t rejected_audit_us; /* time of the last summary audit entry, 0 = none */
    bool in_use;
} api_rate_slot;

typedef struct api_rate_table {
    api_rate_slot slot[API_RATE_SLOTS];
} api_rate_table;

/* Seconds until KEY may log in again, 0 if it may now. */
unsigned api_rate_wait_s(api_rate_table *t, const char *key, uint64_t now_us);
/* Count a failure of KEY; false if the table has no room for a new key. */
bool api_rate_fail(api_rate_table *t, const char *key, uint64_t now_us);
/* True if KEY is in the table or a slot could be made for it. */
bool api_rate_has_room(const api_rate_table *t, const char *key, uint64_t now_us);

/* Count and audit (at most one summary entry per client address and
 * minute) a request to /api/v1/login answered with STATUS before any
 * password was checked. 400, 405, 413 and 415 also count as failures
 * toward the address's login limit. */
void api_login_rejected(api_server *srv, struct MHD_Connection *conn, unsigned status);

/* Extra headers of an API reply, set by the authentication layer. */
typedef struct api_reply_headers {
    char set_cookie[192];       /* Set-Cookie value, "" for none */
    unsigned retry_after_s;     /* Retry-After seconds, 0 for none */
    const char *allow;          /* Allow header of a 405, NULL for none */
    char allow_text[96];        /* storage for a computed Allow header */
} api_reply_headers;

/* Largest request body accepted (POST, PATCH, PUT, DELETE); more is 413. */
#define API_BODY_MAX (64u * 1024u)

/* Session lifetime and idle timeout when api_config leaves them 0. */
#define API_SESSION_TTL_DEFAULT_S (12u * 3600u)
#define API_SESSION_IDLE_DEFAULT_S (30u * 60u)

/* Create the session table and rate limiter of SRV from CONFIG. Returns
 * FV_OK, FV_ERR_NOMEM or FV_ERR_CRYPTO. */
int api_auth_create(api_server *srv, const api_config *config);
void api_auth_destroy(api_server *srv);

/*
 * Authenticate the API request METHOD PATH (PATH without query string)
 * and reply to what the authentication layer owns: POST /api/v1/login,
 * POST /api/v1/logout, GET /api/v1/me, GET /api/v1/users, the anonymous
 * health check and every rejection (401, 403, 405, 429). Fills
 * *PRINCIPAL (anonymous when no credentials were valid). Returns true
 * when the route layer should answer the request, false when OUT (and
 * HEADERS) hold the reply. BODY is the parsed JSON body or NULL.
 */
bool api_auth_check(api_server *srv, struct MHD_Connection *conn, const char *method,
                    const char *path, json_t *body, api_principal *principal, api_reply *out,
                    api_reply_headers *headers);

/*
 * The request being answered by the calling server thread, for handlers
 * that need more than the URL. The values are only valid inside
 * api_route_request, because api.c keeps them in thread-local storage
 * around that call. Outside it the principal is NULL, the method "GET"
 * and the body NULL.
 */
const api_principal *api_request_principal(void);
const char *api_request_method(void);
/* The request body parsed as JSON (POST, PATCH, PUT, DELETE with a body
 * of type application/json), or NULL. Borrowed: do not decref. */
json_t *api_request_json(void);

/* ---- route table (api_routes.c) --------------------------------------- */

/* Every role: for routes all three roles may read. */
#define API_ROLE_ALL (API_ROLE_ANALYST | API_ROLE_COMPLIANCE | API_ROLE_ADMIN)

/* Values a route pattern's "{...}" segment matched (at most one). */
typedef struct api_match {
    const char *arg;            /* the matched segment, NUL-terminated; NULL if none */
} api_match;

typedef void (*api_handler)(api_server *srv, struct MHD_Connection *conn, int kind,
                            const api_match *match, api_reply *out);

/*
 * One route: METHOD and PATTERN ("/api/v1/alerts/{id}"; a "{name}"
 * segment matches one non-empty path segment), the API_ROLE_* bits
 * allowed, and the handler with its KIND argument. HANDLER is NULL for
 * the routes the authentication layer answers itself (login, logout,
 * me, users) and for /metrics, which api.c serves as text.
 */
typedef struct api_route {
    const char *method;
    const char *pattern;
    unsigned roles;
    api_handler handler;
    int kind;
} api_route;

/* The route table, for the OpenAPI test: *COUNT receives its length. */
const api_route *api_route_table(size_t *count);

/* Find the route of METHOD (HEAD as GET) and PATH; fill *MATCH (its
 * segment points into SEGMENT, a buffer of SEGMENT_LEN bytes). Returns
 * NULL when no route matches. *PATH_KNOWN tells whether some route has
 * PATH with another method (for 405). */
/* Write the methods PATH accepts ("GET, HEAD, PATCH") into OUT. */
void api_route_methods(const char *path, char *out, size_t out_len);

const api_route *api_route_find(const char *method, const char *path, api_match *match,
                                char *segment, size_t segment_len, bool *path_known);

/* ---- query arguments, filters and scans (api_params.c) ---------------- */

#define API_ARGS_MAX 24

/*
 * The query arguments of one request. ALLOWED lists the names a route
 * accepts (NULL-terminated); an unknown, valueless or repeated name
 * rejects the request, because silently ignoring a misspelled filter
 * would return unfiltered data.
 */
typedef struct api_args {
    const char *const *allowed;
    const char *names[API_ARGS_MAX];
    const char *values[API_ARGS_MAX];
    size_t count;
    bool failed;
    char message[API_MESSAGE_MAX];
} api_args;

/* Read the query string of CONN into A (A->allowed set by the caller).
 * Returns false with a 400 reply in OUT when it is invalid. */
bool api_args_read(struct MHD_Connection *conn, api_args *a, api_reply *out);
/* The value of NAME, or NULL when absent. */
const char *api_arg(const api_args *a, const char *name);
/* The values a time parameter (from, to) accepts, for api_reply_bad_value. */
#define API_TIME_ALLOWED                                                                       \
    "RFC 3339 time such as 2026-11-30T08:00:00Z or 2026-11-30T09:00:00+01:00, or integer "  \
    "seconds since the epoch"

/* Fill OUT with the 400 reply "invalid value 'VALUE' for 'NAME'; allowed:
 * ALLOWED", with VALUE made printable and cut to 64 characters. */
void api_reply_bad_value(api_reply *out, const char *name, const char *value,
                         const char *allowed);

/* The time window of from/to: *FROM_US and *TO_US (0 = unbounded),
 * *EMPTY when to=0 (the epoch itself) was given. Returns false with a
 * 400 reply in OUT for a bad value or from later than to. */
bool api_args_window(const api_args *a, uint64_t *from_us, uint64_t *to_us, bool *empty,
                     api_reply *out);

/* Records a filtered page reads from the store at most; past it the page
 * ends early with a cursor to continue (see docs/API.md, "Filters"). */
#define API_FILTER_SCAN_MAX 50000u

/* Kinds of api_host_filter. */
typedef enum api_host_kind {
    API_HOST_UNSET = 0,
    API_HOST_TOKEN4 = 1,        /* "ip4-" token: matches FV_EP_PSEUDO_IPV4 */
    API_HOST_TOKEN6 = 2,        /* "ip6-" token: matches FV_EP_PSEUDO_IPV6 */
    API_HOST_NET4 = 3,          /* IPv4 network; an address is its /32 */
    API_HOST_NET6 = 4,          /* IPv6 network; an address is its /128 */
} api_host_kind;

/*
 * A host filter, parsed once per request so that matching a record only
 * compares bytes. A network matches the endpoints stored as an address
 * inside it: kept addresses, and prefix-preserving pseudonyms, which
 * records show as addresses. It also matches a truncated endpoint whose
 * stored prefix lies inside it, so at least as long as the network's. A
 * truncated endpoint with a shorter prefix may or may not contain a host
 * of the network, so it does not match.
 */
typedef struct api_host_filter {
    uint8_t kind;                       /* api_host_kind */
    uint8_t prefix_len;                 /* networks: 0..32 or 0..128 */
    uint8_t bytes[16];                  /* tokens: the first 10 pseudonym bytes; networks:
                                           the address in network order, bits after
                                           prefix_len zero */
    char text[FV_ENDPOINT_TEXT_MAX];    /* normal form, as api_host_parse writes it */
} api_host_filter;

/* Filter values of a record route, parsed. Zero/empty fields are unset. */
typedef struct api_filter {
    char zone[FV_ZONE_NAME_MAX];
    api_host_filter host;
    int proto;                  /* -1: unset */
    int port;                   /* -1: unset */
    char domain[FV_NAME_MAX];   /* lowercase, no leading dot */
    int detector;               /* 0: unset */
    int severity;               /* 0: unset */
    int state;                  /* -1: unset; store_alert_state */
    /* Aggregate records with fewer distinct hosts are left out
     * (reporting.k_threshold); 0: no threshold. */
    uint64_t min_hosts;
} api_filter;

/* Parse a host filter: a pseudonym token "ip4-" or "ip6-" with 16
 * base32 characters (any case), an IPv4 or IPv6 address, or a network
 * such as "10.1.0.0/24" whose bits after the prefix length are zero.
 * Returns FV_OK or FV_ERR_INVALID (OUT is then zeroed). */
int api_host_filter_parse(const char *text, api_host_filter *out);
/* True if the endpoint EP matches the host filter H (see api_host_filter). */
bool api_host_filter_match(const api_host_filter *h, const fv_endpoint *ep);
/* Check a host like api_host_filter_parse and write its normal form
 * (lowercase, IPv6 compressed) into OUT. Returns FV_OK or FV_ERR_INVALID. */
int api_host_parse(const char *text, char out[FV_ENDPOINT_TEXT_MAX]);
/* Parse "tcp", "udp", "icmp", "icmp6" or a number 0..255. */
int api_proto_parse(const char *text, int *out);
/* Parse a port 0..65535. */
int api_port_parse(const char *text, int *out);
/* Check and lowercase a domain suffix (letters, digits, '-', '_' and
 * dots; one leading dot is dropped) into OUT. */
int api_domain_parse(const char *text, char out[FV_NAME_MAX]);
/* True if NAME equals SUFFIX or ends with "." SUFFIX, ignoring case. */
bool api_domain_match(const char *name, const char *suffix);
/* True if REC passes every set filter of F except the alert state,
 * which needs the life-cycle entry (see api_alerts.c). */
bool api_filter_match(const api_filter *f, const fv_record *rec);

/* ---- alerts (api_alerts.c) -------------------------------------------- */

/* The JSON of alert REC with its life cycle ST merged in: the record's
 * fields with the newest raise's evidence, plus id (text), state, count,
 * first_seen, last_seen, note, state_changed_by and state_changed_at. */
json_t *api_alert_json(const fv_record *rec, const struct store_alert_status *st);

/* GET /api/v1/alerts/{id}, PATCH /api/v1/alerts/{id}. */
void api_route_alert_get(api_server *srv, struct MHD_Connection *conn, int kind,
                         const api_match *match, api_reply *out);
void api_route_alert_patch(api_server *srv, struct MHD_Connection *conn, int kind,
                           const api_match *match, api_reply *out);
/* Parse the text of an alert id (decimal digits, as the API writes it). */
int api_alert_id_parse(const char *text, uint64_t *out);

/* ---- series (api_series.c) -------------------------------------------- */

/* GET /api/v1/series. */
void api_route_series(api_server *srv, struct MHD_Connection *conn, int kind,
                      const api_match *match, api_reply *out);

/* ---- top talkers and domains (api_top.c) ------------------------------ */

/* GET /api/v1/top/talkers (kind 0) and /api/v1/top/domains (kind 1). */
void api_route_top_records(api_server *srv, struct MHD_Connection *conn, int kind,
                           const api_match *match, api_reply *out);

/* ---- metrics (api_metrics.c) ------------------------------------------ */

#define API_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Count one response with HTTP STATUS for flowveil_http_requests_total.
 * api.c calls it for every response it sends (API, static and errors).
 * The counters are per process, since it started. */
void api_metrics_count(unsigned status);

/*
 * Render GET /metrics in the Prometheus text format 0.0.4 into a malloc'd
 * NUL-terminated *OUT (caller frees) of *LEN bytes, reading the store's
 * counters under SRV's store lock. api.c sends it with
 * API_METRICS_CONTENT_TYPE. Returns FV_OK, FV_ERR_NOMEM or a store error.
 */
int api_metrics_render(api_server *srv, char **out, size_t *len);

/* Read the k-threshold of the store (meta STORE_META_K_THRESHOLD, 5 when
 * none is recorded) into *K; /api/v1/aggregates leaves out rows with
 * fewer distinct hosts. Called with the store lock held (api_top.c). */
int api_aggregate_k_threshold(api_server *srv, uint64_t *k);

/* ---- the policy of serve --policy (api_policy.c) ---------------------- */

/* The item of the policy's roles map that PATH reads ("flows", "audit",
 * ...), or NULL for routes every role may use (/health, /summary, /me). */
const char *api_route_policy_item(const char *path);

/* True if ROLE (one API_ROLE_* bit) may use PATH: the fixed route table
 * allows it (TABLE_ROLES, from api_route_permission; admin always) and,
 * with a policy, the role lists the route's item. */
bool api_role_may_use(const api_server *srv, unsigned role, int table_roles, const char *path);

/* Fill OUT with 403 "forbidden" for ROLE on PATH, naming the roles that
 * may use the route and, when the policy closed it, the missing item. */
void api_forbidden(const api_server *srv, unsigned role, int table_roles, const char *path,
                   api_reply *out);

/*
 * Check the host of a record query ("host" parameter) or of a timeline
 * path. When it is an address, or a network whose first and last
 * addresses lie in one zone, that the zone stores as pseudonyms (needs
 * a policy), fill OUT with 400 "address_pseudonymized" and return false.
 * Without a policy an address literal gets a NOTE (NOTE_LEN bytes, ""
 * when none) for api_host_note_add.
 */
bool api_host_literal_check(const api_server *srv, struct MHD_Connection *conn, const char *url,
                            char *note, size_t note_len, api_reply *out);

/*
 * Check ZONE, the parsed "zone" filter of a record route ("" when
 * unset), against the zone labels of the policy. For a label that no
 * record stored under the policy can carry, fill OUT with 400
 * "unknown_zone" naming the value and the valid labels, and return
 * false. Without a policy a zone filter gets a NOTE (NOTE_LEN bytes, ""
 * when none) for api_host_note_add.
 */
bool api_zone_check(const api_server *srv, const char *zone, char *note, size_t note_len,
                    api_reply *out);

/* Add NOTE as the "note" member of a 200 reply, after a note the reply
 * has already; "" adds nothing. */
void api_host_note_add(api_reply *out, const char *note);

/* ---- api_deadline.c: request-head deadlines ---------------------------- */

/* Seconds a client has to send a request head, counted from the moment
 * the connection opened or its previous request finished. */
#define API_HEAD_TIMEOUT_S 10u

typedef struct api_deadline api_deadline;

/* Start the reaper thread for a server with CONNECTION_LIMIT connections
 * (the deadline shortens when half of them wait for a head). Returns
 * FV_OK or FV_ERR_NOMEM. */
int api_deadline_create(unsigned head_timeout_s, unsigned connection_limit, api_deadline **out);

/* Stop the reaper and free. Call after MHD_stop_daemon. Accepts NULL. */
void api_deadline_destroy(api_deadline **deadline);

/* MHD_OPTION_NOTIFY_CONNECTION callback; CLS is the api_deadline. */
void api_deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);

/* The head of a request on CONN arrived (first access-handler call). */
void api_deadline_head_received(api_deadline *d, struct MHD_Connection *conn);

/* A request on CONN finished: the next head's deadline starts now. */
void api_deadline_request_done(api_deadline *d, struct MHD_Connection *conn);

/* Connections shut down because their head came too late. */
uint64_t api_deadline_reaped(api_deadline *d);

#endif /* FV_API_INTERNAL_H */
