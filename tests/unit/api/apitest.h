/*
 * apitest.h: shared helpers of the API tests: a real store in a temporary
 * directory, a real server on 127.0.0.1 port 0 with a pinned clock, API
 * tokens for each role, and a blocking HTTP/1.1 client.
 */
#ifndef FV_APITEST_H
#define FV_APITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"
#include "store.h"

#define APITEST_US_PER_S 1000000ull

/* Roles a request can be sent as. */
typedef enum apitest_role {
    APITEST_ANON = 0,
    APITEST_ANALYST,
    APITEST_COMPLIANCE,
    APITEST_ADMIN,
} apitest_role;

typedef struct apitest {
    char dir[512];
    store_env *store;
    api_server *server;
    uint16_t port;
    /* "Authorization: Bearer ...\r\n" per role; "" for APITEST_ANON. */
    char auth[4][STORE_TOKEN_TEXT_LEN + 40];
    /* Passed to api_config before apitest_start; NULL = no policy. */
    int (*compliance_fn)(void *ctx, store_env *store, const char *document, uint64_t from_us,
                         uint64_t to_us, uint64_t now_us, char **out_json);
    /* Passed to api_config before apitest_start; 0 = the defaults. */
    unsigned audit_flush_ms;
    unsigned audit_queue_max;
} apitest;

typedef struct apitest_reply {
    int status;
    char *raw;          /* whole response, NUL-terminated */
    size_t raw_len;
    const char *body;   /* points into RAW */
    size_t body_len;
} apitest_reply;

/* The server clock (microseconds), settable by tests. */
void apitest_set_now(uint64_t now_us);
uint64_t apitest_now(void);

/* Create the temporary directory and open a store in DIR/db. */
void apitest_open(apitest *t);
/* Create one token per role and start the server on the store. */
void apitest_start(apitest *t);
/* Stop the server, close the store, remove the directory. */
void apitest_close(apitest *t);

/* Send METHOD TARGET as ROLE with BODY (NULL: none; sent as JSON). */
void apitest_http(const apitest *t, const char *method, const char *target, apitest_role role,
                  const char *body, apitest_reply *out);
/* The same with HEADERS (complete "Name: value\r\n" lines) instead of a role. */
void apitest_http_headers(const apitest *t, const char *method, const char *target,
                          const char *headers, const char *body, apitest_reply *out);
void apitest_reply_free(apitest_reply *r);
/* A copy of header NAME's value in R (caller frees), or NULL. */
char *apitest_header(const apitest_reply *r, const char *name);

/* Send a request, expect STATUS and a JSON body; return the parsed body. */
json_t *apitest_json(const apitest *t, const char *method, const char *target,
                     apitest_role role, const char *body, int status);
/* GET TARGET as an analyst, expect STATUS. */
json_t *apitest_get(const apitest *t, const char *target, int status);

/* A pseudonymized internal host in ZONE (pseudonym bytes derived from SEED). */
void apitest_internal(fv_endpoint *ep, uint8_t seed, const char *zone);
/* A kept external IPv4 address A.B.C.D. */
void apitest_external(fv_endpoint *ep, uint8_t a, uint8_t b, uint8_t c, uint8_t d);
/* The text form of EP (pseudonym token or address). */
void apitest_endpoint_text(const fv_endpoint *ep, char out[FV_ENDPOINT_TEXT_MAX]);

#endif /* FV_APITEST_H */
