/*
 * api.h: the HTTP server (libmicrohttpd) with the JSON API and dashboard.
 *
 * Routes (all GET; see docs/API.md):
 *   /api/v1/health              liveness and store state
 *   /api/v1/summary             record counts per class, ingest counters, alerts
 *   /api/v1/flows|dns|tls|http|alerts
 *                               records with from/to (RFC 3339 or epoch
 *                               seconds), limit (1..1000), cursor paging
 *   /api/v1/retention           retention status per class
 *   /api/v1/top/destinations|protocols|zones
 *                               aggregate totals per group, groups of fewer
 *                               than k hosts suppressed and counted
 *   /api/v1/audit               audit entries, limit, cursor and order paging
 *   /                           the dashboard (static files from web_root)
 *
 * Authentication: every /api/v1 route except POST /api/v1/login and the
 * anonymous form of /api/v1/health requires a session cookie (from
 * login) or an API token (Authorization: Bearer fvt_...). Users and
 * tokens live in the store (store_user_*, store_token_*).
 *
 * Caveats
 * - The server only reads records (and never opens the pseudonymization
 *   key): everything it can serve is already pseudonymized. It writes one
 *   audit entry per API request and answers 503 "audit_unavailable" when
 *   that fails, so the store must be open read-write.
 * - Errors are JSON objects {"error": CODE, "message": TEXT} with a 4xx
 *   status for client mistakes.
 * - Uses libmicrohttpd's internal thread pool; api_server_stop joins it.
 */
#ifndef FV_API_H
#define FV_API_H

#include <stdbool.h>
#include <stdint.h>

#include "fv_common.h"
#include "store.h"

/* How the addresses of a host filter's network are stored, from
 * api_config.address_zone_fn. */
typedef enum api_addr_storage {
    API_ADDR_AS_TEXT = 0,       /* some of them as text: the filter can match */
    API_ADDR_PSEUDONYMIZED = 1, /* all as tokens: the filter can never match */
    /* All as tokens, but the policy has a prefix-preserving zone, whose
     * output looks like real addresses and can equal them. */
    API_ADDR_PREFIX_OUTPUT = 2,
} api_addr_storage;

typedef struct api_config {
    store_env *store;           /* opened read-write by the caller (audit entries), outlives
                                   the server */
    const char *listen_addr;    /* IPv4 or IPv6 literal, default "127.0.0.1" */
    uint16_t port;              /* 0 = any free port (tests) */
    const char *web_root;       /* directory of the dashboard files */
    unsigned threads;           /* default 2 */
    unsigned connection_limit;  /* default 256 */
    unsigned per_ip_limit;      /* default 32 */
    unsigned timeout_s;         /* idle connection timeout, default 15 */
    uint64_t (*clock_us)(void); /* time source for retention checks; NULL = wall clock */
    /*
     * Compliance documents (serve --policy); NULL = none, then the routes
     * /api/v1/policy and /api/v1/reports/... answer 404 "no_policy".
     * Called with the store lock held, from server threads. DOCUMENT is
     * "processing", "transparency" (FROM_US..TO_US) or "policy"; *OUT_JSON
     * receives a malloc'd JSON object text. Returns FV_OK,
     * FV_ERR_NOT_FOUND (no policy loaded) or an error.
     */
    int (*compliance_fn)(void *ctx, store_env *store, const char *document, uint64_t from_us,
                         uint64_t to_us, uint64_t now_us, char **out_json);
    void *compliance_ctx;
    /*
     * HTTPS: the PEM text of the certificate chain and of its private
     * key (both NULL = plain HTTP). libmicrohttpd must be built with TLS
     * support (api_server_start fails with FV_ERR_UNSUPPORTED otherwise).
     */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    /* Session lifetime since login and idle timeout, seconds; 0 = the
     * defaults of 12 hours and 30 minutes. */
    unsigned session_ttl_s;
    unsigned session_idle_s;
    /* Serve /metrics without authentication (serve --metrics-public). */
    bool metrics_public;
    /*
     * The policy of serve --policy; all NULL = no policy. Called from
     * server threads without the store lock, with POLICY_CTX.
     * role_may_read_fn: true if ROLE ("analyst", "compliance", "admin")
     * may read ITEM ("flows", "aggregates", "audit", "reports", ...,
     * the items of the policy's roles map). It narrows the fixed route
     * table and never widens it.
     * address_zone_fn: return how the policy stores the addresses of the
     * network ADDR/PREFIX_LEN of FAMILY (api_addr_storage). FAMILY is 4
     * or 6, ADDR 16 bytes in network order, and an address is its /32
     * or /128. Unless the result is API_ADDR_AS_TEXT, the name of the
     * zone that contains the whole network is written into ZONE.
     * zone_known_fn: true if ZONE is a zone label that records stored
     * under the policy carry (a zone name, "external", or "link-local"
     * when the policy has zones); otherwise write those labels, comma
     * separated, into LABELS (LABELS_LEN bytes) and return false.
     */
    bool (*role_may_read_fn)(void *ctx, const char *role, const char *item);
    int (*address_zone_fn)(void *ctx, int family, const uint8_t addr[16], unsigned prefix_len,
                           char *zone, size_t zone_len);
    bool (*zone_known_fn)(void *ctx, const char *zone, char *labels, size_t labels_len);
    void *policy_ctx;
    /*
     * Audit entries of read requests (GET, HEAD) are queued and committed
     * in batches: AUDIT_FLUSH_MS is the longest time an entry waits
     * (0 = 5 ms) and AUDIT_QUEUE_MAX the queue length (0 = 4096). A
     * crash other than SIGINT or SIGTERM loses the queued entries, so at
     * most the reads of the last AUDIT_FLUSH_MS. Entries of requests that
     * change state are committed before their reply.
     */
    unsigned audit_flush_ms;
    unsigned audit_queue_max;
} api_config;

typedef struct api_server api_server;

/* Start listening. Return FV_OK, FV_ERR_INVALID (bad address) or
 * FV_ERR_IO (bind failed), with a message in ERR. */
FV_NODISCARD int api_server_start(const api_config *config, api_server **out,
                                  char *err, size_t err_len);

/* The TCP port actually bound (useful with port 0). */
uint16_t api_server_port(const api_server *server);

/* Commit the queued audit entries of read requests now (tests, and
 * before reading the trail from outside the server). Returns FV_OK or a
 * store error. */
int api_server_audit_flush(api_server *server);

/*
 * Call FN(STORE, CTX) on the server's store while no request uses it,
 * after committing the audit entries queued before the call, so that an
 * entry FN appends follows them. For changes the serving process itself makes
 * to the store, such as serve's first user. Returns FN's result, or
 * FV_ERR_INVALID for a NULL SERVER or FN.
 */
int api_server_store_call(api_server *server, int (*fn)(store_env *store, void *ctx), void *ctx);

/* Stop, commit the queued audit entries, join threads and free. Accepts
 * NULL; clears *server. */
void api_server_stop(api_server **server);

#endif /* FV_API_H */
