/*
 * apitest.c: see apitest.h.
 */
#include "apitest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static _Atomic uint64_t g_now_us;

void apitest_set_now(uint64_t now_us)
{
    atomic_store(&g_now_us, now_us);
}

uint64_t apitest_now(void)
{
    return atomic_load(&g_now_us);
}

void apitest_open(apitest *t)
{
    char db[600], err[256];

    memset(t, 0, sizeof *t);
    tu_make_temp_dir(t->dir, sizeof t->dir);
    snprintf(db, sizeof db, "%s/db", t->dir);
    assert_int_equal(store_open(db, 0, &t->store, err, sizeof err), FV_OK);
}

static void make_token(apitest *t, apitest_role role, const char *name, unsigned store_role)
{
    char text[STORE_TOKEN_TEXT_LEN + 1];
    assert_int_equal(store_token_create(t->store, name, store_role, 0, apitest_now(), text, NULL),
                     FV_OK);
    snprintf(t->auth[role], sizeof t->auth[role], "Authorization: Bearer %s\r\n", text);
}

void apitest_start(apitest *t)
{
    char err[256];

    make_token(t, APITEST_ANALYST, "analyst-token", STORE_ROLE_ANALYST);
    make_token(t, APITEST_COMPLIANCE, "officer-token", STORE_ROLE_COMPLIANCE);
    make_token(t, APITEST_ADMIN, "admin-token", STORE_ROLE_ADMIN);
    api_config cfg = {
        .store = t->store,
        .listen_addr = "127.0.0.1",
        .port = 0,
        .threads = 2,
        .clock_us = apitest_now,
        .compliance_fn = t->compliance_fn,
        .audit_flush_ms = t->audit_flush_ms,
        .audit_queue_max = t->audit_queue_max,
    };
    assert_int_equal(api_server_start(&cfg, &t->server, err, sizeof err), FV_OK);
    t->port = api_server_port(t->server);
    assert_true(t->port != 0);
}

void apitest_close(apitest *t)
{
    api_server_stop(&t->server);
    store_close(&t->store);
    tu_remove_tree(t->dir);
}

void apitest_reply_free(apitest_reply *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

void apitest_http(const apitest *t, const char *method, const char *target, apitest_role role,
                  const char *body, apitest_reply *out)
{
    apitest_http_headers(t, method, target, t->auth[role], body, out);
}

void apitest_http_headers(const apitest *t, const char *method, const char *target,
                          const char *headers, const char *body, apitest_reply *out)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(t->port)};
    /* Stretched under valgrind (scripts/valgrind.sh), where requests run slower. */
    struct timeval timeout = {.tv_sec = 20 * (time_t)tu_timeout_scale()};
    char head[4096];
    size_t cap = 65536, len = 0;

    memset(out, 0, sizeof *out);
    int n;
    if (body != NULL)
        n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, target, headers, strlen(body));
    else
        n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
                     method, target, headers);
    assert_true(n > 0 && (size_t)n < sizeof head);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    const char *parts[2] = {head, body};
    for (int p = 0; p < 2; p++) {
        if (parts[p] == NULL)
            continue;
        size_t sent = 0, total = strlen(parts[p]);
        while (sent < total) {
            ssize_t w = send(fd, parts[p] + sent, total - sent, MSG_NOSIGNAL);
            assert_true(w > 0);
            sent += (size_t)w;
        }
    }

    out->raw = malloc(cap);
    assert_non_null(out->raw);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            out->raw = realloc(out->raw, cap);
            assert_non_null(out->raw);
        }
        ssize_t got = recv(fd, out->raw + len, cap - len - 1, 0);
        assert_true(got >= 0);
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    out->raw[len] = '\0';
    out->raw_len = len;
    assert_true(sscanf(out->raw, "HTTP/1.1 %d", &out->status) == 1);
    const char *sep = strstr(out->raw, "\r\n\r\n");
    assert_non_null(sep);
    out->body = sep + 4;
    out->body_len = len - (size_t)(out->body - out->raw);
}

json_t *apitest_json(const apitest *t, const char *method, const char *target,
                     apitest_role role, const char *body, int status)
{
    apitest_reply r;
    json_error_t jerr;

    apitest_http(t, method, target, role, body, &r);
    if (r.status != status)
        print_error("%s %s: status %d, body %s\n", method, target, r.status, r.body);
    assert_int_equal(r.status, status);
    json_t *doc = json_loadb(r.body, r.body_len, 0, &jerr);
    if (doc == NULL)
        print_error("%s %s: invalid JSON: %s\n", method, target, jerr.text);
    assert_non_null(doc);
    apitest_reply_free(&r);
    return doc;
}

json_t *apitest_get(const apitest *t, const char *target, int status)
{
    return apitest_json(t, "GET", target, APITEST_ANALYST, NULL, status);
}

void apitest_internal(fv_endpoint *ep, uint8_t seed, const char *zone)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_PSEUDO_IPV4;
    for (unsigned i = 0; i < FV_PSEUDONYM_BYTES; i++)
        ep->addr[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
    snprintf(ep->zone, sizeof ep->zone, "%s", zone);
}

void apitest_external(fv_endpoint *ep, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_IPV4;
    ep->addr[0] = a;
    ep->addr[1] = b;
    ep->addr[2] = c;
    ep->addr[3] = d;
    snprintf(ep->zone, sizeof ep->zone, FV_ZONE_EXTERNAL);
}

void apitest_endpoint_text(const fv_endpoint *ep, char out[FV_ENDPOINT_TEXT_MAX])
{
    fv_endpoint_format(ep, out);
}

char *apitest_header(const apitest_reply *r, const char *name)
{
    size_t name_len = strlen(name);
    const char *line = strstr(r->raw, "\r\n");

    while (line != NULL && line + 2 < r->body) {
        line += 2;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            return strndup(v, (size_t)(end - v));
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}
