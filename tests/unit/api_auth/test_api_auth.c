/*
 * test_api_auth.c: authentication, roles, CSRF, rate limits, body limits
 * and HTTPS of the HTTP API, against a real libmicrohttpd daemon on
 * 127.0.0.1 (port 0) and a real LMDB store in a temporary directory.
 *
 * The store gets three users (one per role) once per run, because each
 * Argon2id password hash takes a noticeable fraction of a second. Every
 * test starts a fresh server, so sessions and login counters never leak
 * between tests. The server clock is pinned through api_config.clock_us.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "api_internal.h"
#include "store.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define MINUTE_US (60ull * US_PER_S)

/* Server time at the start of each test: 2026-12-01T00:00:00Z. */
#define START_US (1796083200ull * US_PER_S)

static const char ADMIN_PASSWORD[] = "admin-password-1";
static const char ANALYST_PASSWORD[] = "analyst-password-2";
static const char OFFICER_PASSWORD[] = "officer-password-3";

static _Atomic uint64_t g_now_us;

static uint64_t test_clock_us(void)
{
    return atomic_load(&g_now_us);
}

typedef struct fixture {
    char dir[512];
    store_env *store;
    api_server *server;
    uint16_t port;
} fixture;

/* The store shared by all tests (see the file comment). */
static fixture g_fx;

/* ---- a blocking HTTP/1.1 client --------------------------------------- */

typedef struct http_reply {
    int status;
    char *raw;          /* whole response, NUL-terminated */
    size_t raw_len;
    const char *body;   /* points into RAW */
    size_t body_len;
} http_reply;

static void http_reply_free(http_reply *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* Send REQUEST (LEN bytes) to the server and read the reply until the
 * server closes the connection (every request sends Connection: close). */
static void http_raw(uint16_t port, const char *request, size_t len_total, http_reply *out)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    /* Stretched under valgrind (scripts/valgrind.sh), where requests run slower. */
    struct timeval timeout = {.tv_sec = 20 * (time_t)tu_timeout_scale()};
    size_t cap = 65536, len = 0;

    memset(out, 0, sizeof *out);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);

    size_t sent = 0;
    while (sent < len_total) {
        ssize_t n = send(fd, request + sent, len_total - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;  /* the server may reply and close before reading everything */
        sent += (size_t)n;
    }

    out->raw = malloc(cap);
    assert_non_null(out->raw);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            out->raw = realloc(out->raw, cap);
            assert_non_null(out->raw);
        }
        ssize_t n = recv(fd, out->raw + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
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

/*
 * Send METHOD TARGET with the extra header lines HEADERS ("" or lines
 * ending in \r\n) and BODY (NULL = none, sent as application/json).
 */
static void http_send(const char *method, const char *target, const char *headers,
                      const char *body, http_reply *out)
{
    char request[8192];
    int n;

    if (body != NULL)
        n = snprintf(request, sizeof request,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, target, headers, strlen(body), body);
    else
        n = snprintf(request, sizeof request,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", method,
                     target, headers);
    assert_true(n > 0 && (size_t)n < sizeof request);
    http_raw(g_fx.port, request, (size_t)n, out);
}

/* Return a copy of header NAME's value (caller frees), or NULL. */
static char *http_header(const http_reply *r, const char *name)
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

static json_t *reply_json(const http_reply *r)
{
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->body_len, 0, &jerr);
    if (doc == NULL)
        print_error("invalid JSON (%s): %.*s\n", jerr.text, (int)r->body_len, r->body);
    assert_non_null(doc);
    return doc;
}

/* Check that R has STATUS and the JSON error CODE. */
static void expect_error(const http_reply *r, int status, const char *code)
{
    if (r->status != status)
        print_error("expected %d %s, got %d: %.*s\n", status, code, r->status,
                    (int)r->body_len, r->body);
    assert_int_equal(r->status, status);
    json_t *doc = reply_json(r);
    assert_string_equal(json_string_value(json_object_get(doc, "error")), code);
    json_decref(doc);
}

/* ---- sessions and tokens ---------------------------------------------- */

/* A logged-in session: header lines to send with it, and its CSRF token. */
typedef struct session {
    char cookie_header[256];    /* "Cookie: fv_session=...\r\n" */
    char csrf_header[160];      /* "X-CSRF-Token: ...\r\n" */
    char both[420];             /* cookie and CSRF header lines */
    char csrf[80];
} session;

static void login_reply(const char *user, const char *password, http_reply *r)
{
    char body[256];
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"password\": \"%s\"}", user, password);
    http_send("POST", "/api/v1/login", "", body, r);
}

static void login(const char *user, const char *password, session *s)
{
    http_reply r;
    login_reply(user, password, &r);
    if (r.status != 200)
        print_error("login of %s: %d %.*s\n", user, r.status, (int)r.body_len, r.body);
    assert_int_equal(r.status, 200);

    char *cookie = http_header(&r, "Set-Cookie");
    assert_non_null(cookie);
    assert_true(strncmp(cookie, "fv_session=", 11) == 0);
    size_t id_len = strcspn(cookie + 11, ";");
    snprintf(s->cookie_header, sizeof s->cookie_header, "Cookie: fv_session=%.*s\r\n",
             (int)id_len, cookie + 11);
    free(cookie);

    json_t *doc = reply_json(&r);
    const char *csrf = json_string_value(json_object_get(doc, "csrf_token"));
    assert_non_null(csrf);
    snprintf(s->csrf, sizeof s->csrf, "%s", csrf);
    snprintf(s->csrf_header, sizeof s->csrf_header, "X-CSRF-Token: %s\r\n", csrf);
    snprintf(s->both, sizeof s->both, "%s%s", s->cookie_header, s->csrf_header);
    json_decref(doc);
    http_reply_free(&r);
}

static int status_of(const char *method, const char *target, const char *headers)
{
    http_reply r;
    http_send(method, target, headers, NULL, &r);
    int status = r.status;
    http_reply_free(&r);
    return status;
}

/* Create a token with ROLE (expiring at EXPIRES_US, 0 = never) and write
 * its Authorization header line into HEADER. */
static void make_token(const char *name, unsigned role, uint64_t expires_us,
                       char header[160], store_token *out)
{
    char text[STORE_TOKEN_TEXT_LEN + 1];
    assert_int_equal(store_token_create(g_fx.store, name, role, expires_us, test_clock_us(),
                                        text, out),
                     FV_OK);
    snprintf(header, 160, "Authorization: Bearer %s\r\n", text);
}

/* ---- setup ------------------------------------------------------------ */

static void add_user(const char *name, unsigned role, const char *password)
{
    store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    u.role = role;
    u.created_us = START_US - MINUTE_US;
    u.changed_us = u.created_us;
    assert_int_equal(store_password_hash(password, u.pwhash), FV_OK);
    assert_int_equal(store_user_put(g_fx.store, &u, true), FV_OK);
}

static int group_setup(void **state)
{
    char err[256], db[600];
    (void)state;
    tu_make_temp_dir(g_fx.dir, sizeof g_fx.dir);
    snprintf(db, sizeof db, "%s/db", g_fx.dir);
    if (store_open(db, 0, &g_fx.store, err, sizeof err) != FV_OK) {
        print_error("store_open: %s\n", err);
        return -1;
    }
    add_user("admin", STORE_ROLE_ADMIN, ADMIN_PASSWORD);
    add_user("ana", STORE_ROLE_ANALYST, ANALYST_PASSWORD);
    add_user("carl", STORE_ROLE_COMPLIANCE, OFFICER_PASSWORD);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    store_close(&g_fx.store);
    tu_remove_tree(g_fx.dir);
    return 0;
}

static void server_start_with(const char *cert_pem, const char *key_pem)
{
    char err[512];
    atomic_store(&g_now_us, START_US);
    api_config cfg = {
        .store = g_fx.store,
        .listen_addr = "127.0.0.1",
        .port = 0,
        .threads = 2,
        .clock_us = test_clock_us,
        .tls_cert_pem = cert_pem,
        .tls_key_pem = key_pem,
    };
    if (api_server_start(&cfg, &g_fx.server, err, sizeof err) != FV_OK)
        print_error("api_server_start: %s\n", err);
    assert_non_null(g_fx.server);
    g_fx.port = api_server_port(g_fx.server);
}

static int server_setup(void **state)
{
    (void)state;
    server_start_with(NULL, NULL);
    return 0;
}

static int server_teardown(void **state)
{
    (void)state;
    api_server_stop(&g_fx.server);
    return 0;
}

/* ---- tests: login ----------------------------------------------------- */

static void test_login_sets_session_cookie(void **state)
{
    (void)state;
    http_reply r;
    login_reply("ana", ANALYST_PASSWORD, &r);
    assert_int_equal(r.status, 200);

    char *cookie = http_header(&r, "Set-Cookie");
    assert_non_null(cookie);
    assert_non_null(strstr(cookie, "; HttpOnly"));
    assert_non_null(strstr(cookie, "; SameSite=Strict"));
    assert_non_null(strstr(cookie, "; Path=/"));
    /* Plain HTTP: a Secure cookie would never be sent back. */
    assert_null(strstr(cookie, "Secure"));
    free(cookie);

    json_t *doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "user")), "ana");
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "analyst");
    assert_int_equal(strlen(json_string_value(json_object_get(doc, "csrf_token"))), 64);
    json_decref(doc);
    http_reply_free(&r);

    session s;
    login("ana", ANALYST_PASSWORD, &s);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);
}

static void test_login_failures_look_the_same(void **state)
{
    (void)state;
    http_reply wrong, unknown, invalid;
    login_reply("ana", "not-the-password", &wrong);
    login_reply("nobody", "not-the-password", &unknown);
    login_reply("Not A Name", "not-the-password", &invalid);

    expect_error(&wrong, 401, "invalid_credentials");
    expect_error(&unknown, 401, "invalid_credentials");
    expect_error(&invalid, 401, "invalid_credentials");
    /* Same body byte for byte: the reply does not tell which was wrong. */
    assert_int_equal(wrong.body_len, unknown.body_len);
    assert_memory_equal(wrong.body, unknown.body, wrong.body_len);
    assert_null(http_header(&wrong, "Set-Cookie"));
    http_reply_free(&wrong);
    http_reply_free(&unknown);
    http_reply_free(&invalid);
}

static void test_login_rejects_bad_bodies(void **state)
{
    (void)state;
    http_reply r;

    http_send("POST", "/api/v1/login", "", "{\"user\": \"ana\"}", &r);
    expect_error(&r, 400, "invalid_body");
    http_reply_free(&r);

    http_send("POST", "/api/v1/login", "", "{\"user\": \"ana\", \"password\": 5}", &r);
    expect_error(&r, 400, "invalid_body");
    http_reply_free(&r);

    http_send("POST", "/api/v1/login", "", "{\"user\": \"ana\", \"password\": \"x\", \"x\": 1}",
              &r);
    expect_error(&r, 400, "invalid_body");
    http_reply_free(&r);

    /* Malformed JSON: the message names the position. */
    http_send("POST", "/api/v1/login", "", "{\"user\": ", &r);
    expect_error(&r, 400, "invalid_json");
    assert_non_null(strstr(r.body, "line 1, column"));
    http_reply_free(&r);

    http_send("GET", "/api/v1/login", "", NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    char *allow = http_header(&r, "Allow");
    assert_non_null(allow);
    assert_string_equal(allow, "POST");
    free(allow);
    http_reply_free(&r);
}

static void test_login_rate_limited_per_user(void **state)
{
    (void)state;
    http_reply r;
    for (int i = 0; i < 5; i++) {
        login_reply("ana", "wrong-password", &r);
        expect_error(&r, 401, "invalid_credentials");
        http_reply_free(&r);
    }
    /* Locked now, even with the right password. */
    login_reply("ana", ANALYST_PASSWORD, &r);
    expect_error(&r, 429, "rate_limited");
    char *retry = http_header(&r, "Retry-After");
    assert_non_null(retry);
    long seconds = strtol(retry, NULL, 10);
    assert_true(seconds > 0 && seconds <= 300);
    free(retry);
    http_reply_free(&r);

    /* Another user from the same address is not locked. */
    session other;
    login("carl", OFFICER_PASSWORD, &other);

    /* After the window the right password works again. */
    atomic_fetch_add(&g_now_us, 301 * US_PER_S);
    session s;
    login("ana", ANALYST_PASSWORD, &s);
}

static void test_login_rate_limited_per_address(void **state)
{
    (void)state;
    http_reply r;
    char name[32];
    /* 20 failures spread over names, so no name reaches its own limit. */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "guess%d", i);
        login_reply(name, "wrong-password", &r);
        expect_error(&r, 401, "invalid_credentials");
        http_reply_free(&r);
    }
    login_reply("admin", ADMIN_PASSWORD, &r);
    expect_error(&r, 429, "rate_limited");
    char *retry = http_header(&r, "Retry-After");
    assert_non_null(retry);
    free(retry);
    http_reply_free(&r);
}

typedef struct audit_tally {
    const char *action;
    size_t count;
    store_audit_entry last;
} audit_tally;

static bool tally_entry(void *ctx, const store_audit_entry *e)
{
    audit_tally *t = ctx;
    if (strcmp(e->action, t->action) == 0) {
        t->count++;
        t->last = *e;
    }
    return true;
}

static audit_tally audit_count(const char *action)
{
    audit_tally t = {.action = action, .count = 0};
    /* Entries of reads are queued; commit them before reading the store. */
    assert_int_equal(api_server_audit_flush(g_fx.server), FV_OK);
    assert_int_equal(store_audit_each(g_fx.store, 0, STORE_AUDIT_LIMIT_MAX, false, tally_entry,
                                      &t, NULL),
                     FV_OK);
    return t;
}

static void test_login_rejects_audited_once_per_minute(void **state)
{
    (void)state;
    size_t failed_before = audit_count("auth.login_failed").count;
    size_t rejected_before = audit_count("auth.login_rejected").count;

    /* 30 malformed bodies, a wrong method and a wrong content type. */
    http_reply r;
    for (int i = 0; i < 30; i++) {
        http_send("POST", "/api/v1/login", "", "{}", &r);
        assert_true(r.status == 400 || r.status == 429);
        http_reply_free(&r);
    }
    assert_int_equal(status_of("GET", "/api/v1/login", ""), 405);
    http_raw(g_fx.port,
             "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
             strlen("POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"),
             &r);
    assert_true(r.status == 415 || r.status == 429);
    http_reply_free(&r);

    /* One summary entry for the whole minute, no entry per request. */
    assert_int_equal(audit_count("auth.login_failed").count, failed_before);
    audit_tally t = audit_count("auth.login_rejected");
    assert_int_equal(t.count, rejected_before + 1);
    assert_string_equal(t.last.actor, "anonymous");
    assert_non_null(strstr(t.last.params, "status=400&rejected=1&"));

    /* The malformed requests counted toward the address's limit. */
    login_reply("admin", ADMIN_PASSWORD, &r);
    expect_error(&r, 429, "rate_limited");
    http_reply_free(&r);

    /* A minute later the next rejection writes the count of the rest. */
    atomic_fetch_add(&g_now_us, 61 * US_PER_S);
    http_send("POST", "/api/v1/login", "", "{}", &r);
    http_reply_free(&r);
    t = audit_count("auth.login_rejected");
    assert_int_equal(t.count, rejected_before + 2);
    assert_non_null(strstr(t.last.params, "rejected=33&"));
}

static void test_login_table_keeps_locked_keys(void **state)
{
    (void)state;
    api_rate_table *t = calloc(1, sizeof *t);
    assert_non_null(t);
    uint64_t now_us = START_US;

    /* The victim's name is locked out. */
    for (unsigned i = 0; i < API_LOGIN_FAILURES_PER_USER; i++)
        assert_true(api_rate_fail(t, "u:victim", now_us + i));
    assert_true(api_rate_wait_s(t, "u:victim", now_us) > 0);

    /* More new names than slots, each failing once, in the same window. */
    char key[32];
    for (unsigned i = 0; i < 2 * API_RATE_SLOTS; i++) {
        snprintf(key, sizeof key, "u:fill%u", i);
        assert_true(api_rate_fail(t, key, now_us + 10 + i));
    }
    assert_true(api_rate_wait_s(t, "u:victim", now_us + 5000) > 0);

    /* A table full of locked keys takes no new key. */
    for (unsigned i = 0; i < API_RATE_SLOTS; i++) {
        snprintf(key, sizeof key, "u:lock%u", i);
        for (unsigned f = 0; f < API_LOGIN_FAILURES_PER_USER; f++)
            (void)api_rate_fail(t, key, now_us + 6000);
    }
    assert_false(api_rate_has_room(t, "u:newcomer", now_us + 7000));
    assert_false(api_rate_fail(t, "u:newcomer", now_us + 7000));
    assert_true(api_rate_wait_s(t, "u:victim", now_us + 7000) > 0);

    /* After the window every slot is free again. */
    uint64_t later_us = now_us + (API_LOGIN_WINDOW_S + 1) * US_PER_S + 7000;
    assert_true(api_rate_has_room(t, "u:newcomer", later_us));
    assert_int_equal(api_rate_wait_s(t, "u:victim", later_us), 0);
    free(t);
}

typedef struct login_thread {
    pthread_t thread;
    uint16_t port;
    int index;
    int statuses[3];
    bool retry_after_on_503;
} login_thread;

/* Three wrong-password logins without cmocka asserts (not thread-safe). */
static void *login_worker(void *arg)
{
    login_thread *w = arg;
    for (int i = 0; i < 3; i++) {
        char body[128], request[512];
        snprintf(body, sizeof body, "{\"user\": \"busy%d\", \"password\": \"wrong\"}",
                 w->index * 3 + i);
        int n = snprintf(request, sizeof request,
                         "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Connection: close\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         strlen(body), body);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(w->port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char reply[4096];
        size_t len = 0;
        if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
            send(fd, request, (size_t)n, MSG_NOSIGNAL) == n) {
            ssize_t got;
            while (len + 1 < sizeof reply &&
                   (got = recv(fd, reply + len, sizeof reply - 1 - len, 0)) > 0)
                len += (size_t)got;
        }
        if (fd >= 0)
            close(fd);
        reply[len] = '\0';
        w->statuses[i] = 0;
        (void)sscanf(reply, "HTTP/1.1 %d", &w->statuses[i]);
        if (w->statuses[i] == 503 && strstr(reply, "Retry-After: 1\r\n") != NULL)
            w->retry_after_on_503 = true;
    }
    return NULL;
}

static void test_login_hashing_is_bounded(void **state)
{
    (void)state;
    login_thread workers[4];
    for (int i = 0; i < 4; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].port = g_fx.port;
        workers[i].index = i;
        assert_int_equal(pthread_create(&workers[i].thread, NULL, login_worker, &workers[i]), 0);
    }
    int busy = 0, checked = 0;
    bool retry_after = false;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(workers[i].thread, NULL), 0);
        for (int j = 0; j < 3; j++) {
            busy += workers[i].statuses[j] == 503;
            checked += workers[i].statuses[j] == 401;
        }
        retry_after = retry_after || workers[i].retry_after_on_503;
    }
    /* With two request threads and one password check at a time, some
     * of the concurrent logins are turned away instead of hashing. */
    printf("concurrent logins: %d checked, %d busy\n", checked, busy);
    assert_true(checked >= 1);
    assert_true(busy >= 1);
    assert_true(retry_after);
}

/* ---- tests: sessions -------------------------------------------------- */

static void test_session_expires_when_idle(void **state)
{
    (void)state;
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    atomic_fetch_add(&g_now_us, 29 * MINUTE_US);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);
    /* 29 minutes after the last use: still alive. 31: gone. */
    atomic_fetch_add(&g_now_us, 29 * MINUTE_US);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);
    atomic_fetch_add(&g_now_us, 31 * MINUTE_US);
    http_reply r;
    http_send("GET", "/api/v1/flows", s.cookie_header, NULL, &r);
    expect_error(&r, 401, "authentication_required");
    http_reply_free(&r);
}

/*
 * Two requests of one session on two threads: the second read the clock
 * a moment before the first updated the session's last use. The session
 * must survive (an unguarded subtraction wrapped around and ended it);
 * a clock stepped back by hours still ends it.
 */
static void test_session_survives_clock_read_before_last_use(void **state)
{
    (void)state;
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    atomic_fetch_add(&g_now_us, MINUTE_US);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);
    atomic_fetch_sub(&g_now_us, 1000u);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);
    atomic_fetch_add(&g_now_us, 1000u);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);
    atomic_fetch_sub(&g_now_us, 120 * MINUTE_US);
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 401);
}

static void test_session_expires_after_lifetime(void **state)
{
    (void)state;
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    /* Used every 20 minutes, it still ends 12 hours after login. */
    for (int i = 0; i < 35; i++) {
        atomic_fetch_add(&g_now_us, 20 * MINUTE_US);
        assert_int_equal(status_of("GET", "/api/v1/summary", s.cookie_header), 200);
    }
    atomic_fetch_add(&g_now_us, 20 * MINUTE_US);
    assert_int_equal(status_of("GET", "/api/v1/summary", s.cookie_header), 401);
}

static void test_logout_ends_session(void **state)
{
    (void)state;
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    http_reply r;

    /* Without the CSRF header the logout is rejected. */
    http_send("POST", "/api/v1/logout", s.cookie_header, NULL, &r);
    expect_error(&r, 403, "csrf_required");
    http_reply_free(&r);

    http_send("POST", "/api/v1/logout", s.both, NULL, &r);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    char *cookie = http_header(&r, "Set-Cookie");
    assert_non_null(cookie);
    assert_non_null(strstr(cookie, "fv_session=;"));
    assert_non_null(strstr(cookie, "Max-Age=0"));
    free(cookie);
    http_reply_free(&r);

    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 401);
}

static void test_csrf_checked_on_state_changes(void **state)
{
    (void)state;
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    http_reply r;
    char wrong[400];
    /* The right length with one digit changed. */
    snprintf(wrong, sizeof wrong, "%sX-CSRF-Token: %.63s%c\r\n", s.cookie_header, s.csrf,
             s.csrf[63] == '0' ? '1' : '0');

    http_send("PATCH", "/api/v1/alerts/1", s.cookie_header, "{\"state\": \"acknowledged\"}",
              &r);
    expect_error(&r, 403, "csrf_required");
    http_reply_free(&r);

    http_send("PATCH", "/api/v1/alerts/1", wrong, "{\"state\": \"acknowledged\"}", &r);
    expect_error(&r, 403, "csrf_required");
    http_reply_free(&r);

    /* With the token the request reaches the route layer. */
    http_send("PATCH", "/api/v1/alerts/1", s.both, "{\"state\": \"acknowledged\"}", &r);
    assert_int_not_equal(r.status, 403);
    assert_int_not_equal(r.status, 401);
    http_reply_free(&r);

    /* Reads need no CSRF header. */
    assert_int_equal(status_of("GET", "/api/v1/flows", s.cookie_header), 200);

    /* A method the route does not take changes nothing: 405 as with a
     * token, before the CSRF check. */
    http_send("DELETE", "/api/v1/flows", s.cookie_header, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    http_reply_free(&r);
    http_send("DELETE", "/api/v1/logout", s.cookie_header, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    http_reply_free(&r);
}

static void test_password_change_ends_sessions(void **state)
{
    (void)state;
    session s;
    login("carl", OFFICER_PASSWORD, &s);
    assert_int_equal(status_of("GET", "/api/v1/audit", s.cookie_header), 200);

    store_user u;
    assert_int_equal(store_user_get(g_fx.store, "carl", &u), FV_OK);
    u.changed_us = test_clock_us() + 1;
    assert_int_equal(store_user_put(g_fx.store, &u, false), FV_OK);
    atomic_fetch_add(&g_now_us, 2);

    assert_int_equal(status_of("GET", "/api/v1/audit", s.cookie_header), 401);
    /* The password itself did not change, so a new login works. */
    session again;
    login("carl", OFFICER_PASSWORD, &again);
    assert_int_equal(status_of("GET", "/api/v1/audit", again.cookie_header), 200);

    /* Later tests restart the clock: put the change time back. */
    u.changed_us = START_US - MINUTE_US;
    assert_int_equal(store_user_put(g_fx.store, &u, false), FV_OK);
}

static void test_me_reports_principal(void **state)
{
    (void)state;
    session s;
    login("carl", OFFICER_PASSWORD, &s);
    http_reply r;
    http_send("GET", "/api/v1/me", s.cookie_header, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "user")), "carl");
    assert_string_equal(json_string_value(json_object_get(doc, "role")), "compliance");
    assert_string_equal(json_string_value(json_object_get(doc, "auth")), "session");
    assert_string_equal(json_string_value(json_object_get(doc, "csrf_token")), s.csrf);
    json_decref(doc);
    http_reply_free(&r);

    char header[160];
    store_token t;
    make_token("ci-bot", STORE_ROLE_ANALYST, 0, header, &t);
    http_send("GET", "/api/v1/me", header, NULL, &r);
    assert_int_equal(r.status, 200);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "user")), "ci-bot");
    assert_string_equal(json_string_value(json_object_get(doc, "auth")), "token");
    assert_true(json_is_null(json_object_get(doc, "csrf_token")));
    json_decref(doc);
    http_reply_free(&r);
}

/* ---- tests: tokens ---------------------------------------------------- */

static void test_token_authenticates_until_revoked(void **state)
{
    (void)state;
    char header[160];
    store_token t;
    make_token("exporter", STORE_ROLE_ANALYST, 0, header, &t);
    assert_int_equal(status_of("GET", "/api/v1/flows", header), 200);

    /* Tokens need no CSRF header for state changes. */
    http_reply r;
    http_send("PATCH", "/api/v1/alerts/1", header, "{\"state\": \"acknowledged\"}", &r);
    assert_int_not_equal(r.status, 403);
    assert_int_not_equal(r.status, 401);
    http_reply_free(&r);

    assert_int_equal(store_token_revoke(g_fx.store, t.id, test_clock_us()), FV_OK);
    http_send("GET", "/api/v1/flows", header, NULL, &r);
    expect_error(&r, 401, "authentication_required");
    assert_non_null(strstr(r.body, "revoked"));
    http_reply_free(&r);
}

static void test_token_expires(void **state)
{
    (void)state;
    char header[160];
    store_token t;
    make_token("short-lived", STORE_ROLE_ANALYST, test_clock_us() + 60 * US_PER_S, header, &t);
    assert_int_equal(status_of("GET", "/api/v1/flows", header), 200);
    atomic_fetch_add(&g_now_us, 61 * US_PER_S);
    http_reply r;
    http_send("GET", "/api/v1/flows", header, NULL, &r);
    expect_error(&r, 401, "authentication_required");
    assert_non_null(strstr(r.body, "expired"));
    http_reply_free(&r);
}

static void test_token_wrong_secret_rejected(void **state)
{
    (void)state;
    char header[160];
    store_token t;
    make_token("forged", STORE_ROLE_ADMIN, 0, header, &t);
    /* Same id, one secret digit changed. */
    char *last = strstr(header, "\r\n") - 1;
    *last = *last == 'a' ? 'b' : 'a';
    assert_int_equal(status_of("GET", "/api/v1/flows", header), 401);
    assert_int_equal(status_of("GET", "/api/v1/flows", "Authorization: Bearer fvt_short\r\n"),
                     401);
    assert_int_equal(status_of("GET", "/api/v1/flows", "Authorization: Basic YWRtaW46eA==\r\n"),
                     401);
}

/* ---- tests: roles ----------------------------------------------------- */

static void test_roles_limit_routes(void **state)
{
    (void)state;
    session analyst, officer, admin;
    login("ana", ANALYST_PASSWORD, &analyst);
    login("carl", OFFICER_PASSWORD, &officer);
    login("admin", ADMIN_PASSWORD, &admin);

    /* A data route. */
    assert_int_equal(status_of("GET", "/api/v1/flows", analyst.cookie_header), 200);
    assert_int_equal(status_of("GET", "/api/v1/flows", officer.cookie_header), 403);
    assert_int_equal(status_of("GET", "/api/v1/flows", admin.cookie_header), 200);
    /* A compliance route. */
    assert_int_equal(status_of("GET", "/api/v1/audit", analyst.cookie_header), 403);
    assert_int_equal(status_of("GET", "/api/v1/audit", officer.cookie_header), 200);
    assert_int_equal(status_of("GET", "/api/v1/audit", admin.cookie_header), 200);
    /* A route for every role. */
    assert_int_equal(status_of("GET", "/api/v1/retention", analyst.cookie_header), 200);
    assert_int_equal(status_of("GET", "/api/v1/retention", officer.cookie_header), 200);
    /* User administration. */
    assert_int_equal(status_of("GET", "/api/v1/users", analyst.cookie_header), 403);
    assert_int_equal(status_of("GET", "/api/v1/users", officer.cookie_header), 403);

    http_reply r;
    http_send("GET", "/api/v1/audit", analyst.cookie_header, NULL, &r);
    expect_error(&r, 403, "forbidden");
    http_reply_free(&r);

    /* Tokens carry their role the same way. */
    char header[160];
    store_token t;
    make_token("officer-bot", STORE_ROLE_COMPLIANCE, 0, header, &t);
    assert_int_equal(status_of("GET", "/api/v1/flows", header), 403);
    assert_int_equal(status_of("GET", "/api/v1/audit", header), 200);
}

static void test_metrics_only_get_and_head(void **state)
{
    (void)state;
    char analyst[160], officer[160], admin[160];
    store_token t;
    make_token("metrics-analyst", STORE_ROLE_ANALYST, 0, analyst, &t);
    make_token("metrics-officer", STORE_ROLE_COMPLIANCE, 0, officer, &t);
    make_token("metrics-admin", STORE_ROLE_ADMIN, 0, admin, &t);

    assert_int_equal(status_of("GET", "/metrics", analyst), 403);
    assert_int_equal(status_of("GET", "/metrics", admin), 200);
    assert_int_equal(status_of("HEAD", "/metrics", admin), 200);

    /* Other methods never serve the metrics, whatever the role. */
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    const char *const headers[] = {analyst, officer, admin};
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        for (size_t h = 0; h < 3; h++) {
            http_reply r;
            http_send(methods[m], "/metrics", headers[h], NULL, &r);
            if (r.status != 405)
                print_error("%s /metrics as role %zu: %d\n", methods[m], h, r.status);
            expect_error(&r, 405, "method_not_allowed");
            assert_null(strstr(r.body, "flowveil_http_requests_total"));
            char *allow = http_header(&r, "Allow");
            assert_non_null(allow);
            assert_string_equal(allow, "GET, HEAD");
            free(allow);
            http_reply_free(&r);
        }
    }
    /* A method no route takes is answered before authentication. */
    assert_int_equal(status_of("OPTIONS", "/metrics", admin), 405);
}

static void test_bearer_scheme_any_case(void **state)
{
    (void)state;
    char header[160];
    store_token t;
    make_token("lower-case", STORE_ROLE_ANALYST, 0, header, &t);
    /* "Authorization: Bearer fvt_..." written as "authorization: bEARER ...". */
    char lower[160];
    snprintf(lower, sizeof lower, "authorization: bEARER %s", header + strlen("Authorization: Bearer "));
    assert_int_equal(status_of("GET", "/api/v1/me", lower), 200);
    /* No HSTS over plain HTTP. */
    http_reply r;
    http_send("GET", "/api/v1/me", lower, NULL, &r);
    assert_null(strstr(r.raw, "Strict-Transport-Security"));
    http_reply_free(&r);
}

static void test_unknown_method_answered_before_routes(void **state)
{
    (void)state;
    char analyst[160];
    store_token t;
    make_token("unknown-method", STORE_ROLE_ANALYST, 0, analyst, &t);

    /* A known path with a method it does not take: 405 and its methods. */
    http_reply r;
    http_send("DELETE", "/api/v1/flows", analyst, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    char *allow = http_header(&r, "Allow");
    assert_non_null(allow);
    assert_string_equal(allow, "GET, HEAD");
    free(allow);
    http_reply_free(&r);

    assert_int_equal(status_of("GET", "/api/v1/no-such-route", analyst), 404);
}

static void test_users_route_lists_accounts(void **state)
{
    (void)state;
    session admin;
    login("admin", ADMIN_PASSWORD, &admin);
    http_reply r;
    http_send("GET", "/api/v1/users", admin.cookie_header, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *doc = reply_json(&r);
    json_t *users = json_object_get(doc, "users");
    assert_true(json_array_size(users) >= 3);
    bool found = false;
    size_t i;
    json_t *row;
    json_array_foreach(users, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (strcmp(name, "ana") == 0) {
            found = true;
            assert_string_equal(json_string_value(json_object_get(row, "role")), "analyst");
        }
        /* No hash ever leaves the server. */
        assert_null(json_object_get(row, "pwhash"));
    }
    assert_true(found);
    assert_null(strstr(r.body, "$argon2"));
    json_decref(doc);
    http_reply_free(&r);
}

/* ---- tests: anonymous access ------------------------------------------ */

static void test_anonymous_rejected_everywhere(void **state)
{
    (void)state;
    static const char *const routes[] = {
        "/api/v1/flows", "/api/v1/dns", "/api/v1/tls", "/api/v1/http", "/api/v1/dhcp",
        "/api/v1/ssh", "/api/v1/alerts", "/api/v1/summary", "/api/v1/retention",
        "/api/v1/counters", "/api/v1/top/destinations", "/api/v1/top/talkers",
        "/api/v1/series?metric=bytes", "/api/v1/hosts/abc/timeline", "/api/v1/audit",
        "/api/v1/audit/verify", "/api/v1/policy", "/api/v1/reports/processing",
        "/api/v1/me", "/api/v1/users", "/api/v1/no-such-route", "/metrics",
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        http_reply r;
        http_send("GET", routes[i], "", NULL, &r);
        if (r.status != 401)
            print_error("GET %s answered %d to an anonymous client\n", routes[i], r.status);
        expect_error(&r, 401, "authentication_required");
        http_reply_free(&r);
    }
    http_reply r;
    http_send("POST", "/api/v1/logout", "", NULL, &r);
    expect_error(&r, 401, "authentication_required");
    http_reply_free(&r);
    http_send("PATCH", "/api/v1/alerts/1", "", "{\"state\": \"closed\"}", &r);
    expect_error(&r, 401, "authentication_required");
    http_reply_free(&r);
}

static void test_anonymous_health_is_minimal(void **state)
{
    (void)state;
    http_reply r;
    http_send("GET", "/api/v1/health", "", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *doc = reply_json(&r);
    assert_int_equal(json_object_size(doc), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);
    http_reply_free(&r);

    /* Logged in, it reports the store state too. */
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    http_send("GET", "/api/v1/health", s.cookie_header, NULL, &r);
    assert_int_equal(r.status, 200);
    doc = reply_json(&r);
    assert_true(json_object_size(doc) > 1);
    json_decref(doc);
    http_reply_free(&r);
}

/* ---- tests: audit ----------------------------------------------------- */

typedef struct last_entry {
    store_audit_entry e;
    bool found;
} last_entry;

static bool keep_entry(void *ctx, const store_audit_entry *e)
{
    last_entry *last = ctx;
    last->e = *e;
    last->found = true;
    return false;
}

static void last_audit_entry(store_audit_entry *out)
{
    last_entry last = {.found = false};
    assert_int_equal(api_server_audit_flush(g_fx.server), FV_OK);
    assert_int_equal(store_audit_each(g_fx.store, 0, 1, true, keep_entry, &last, NULL), FV_OK);
    assert_true(last.found);
    *out = last.e;
}

static void test_audit_names_the_user(void **state)
{
    (void)state;
    store_audit_entry e;
    http_reply r;

    login_reply("ana", "wrong-password", &r);
    http_reply_free(&r);
    last_audit_entry(&e);
    assert_string_equal(e.actor, "anonymous");
    assert_string_equal(e.action, "auth.login_failed");
    /* The attempted password never reaches the trail. */
    assert_null(strstr(e.params, "wrong-password"));

    session s;
    login("ana", ANALYST_PASSWORD, &s);
    last_audit_entry(&e);
    assert_string_equal(e.actor, "ana");
    assert_string_equal(e.action, "auth.login");

    assert_int_equal(status_of("GET", "/api/v1/flows?limit=5", s.cookie_header), 200);
    last_audit_entry(&e);
    assert_string_equal(e.actor, "ana");
    assert_string_equal(e.role, "analyst");
    assert_string_equal(e.action, "api.read");
    assert_string_equal(e.object, "/api/v1/flows");
    assert_non_null(strstr(e.params, "limit=5"));

    /* A forbidden request is audited as well. */
    assert_int_equal(status_of("GET", "/api/v1/audit", s.cookie_header), 403);
    last_audit_entry(&e);
    assert_string_equal(e.actor, "ana");
    assert_string_equal(e.object, "/api/v1/audit");

    char header[160];
    store_token t;
    make_token("nightly-report", STORE_ROLE_COMPLIANCE, 0, header, &t);
    assert_int_equal(status_of("GET", "/api/v1/retention", header), 200);
    last_audit_entry(&e);
    assert_string_equal(e.actor, "nightly-report");
    assert_string_equal(e.role, "compliance");
    assert_null(strstr(e.params, "fvt_"));
}

/* ---- tests: request limits and headers -------------------------------- */

static void test_request_bodies_limited(void **state)
{
    (void)state;
    session s;
    login("ana", ANALYST_PASSWORD, &s);
    http_reply r;
    char request[1024];

    /* Announced above 64 KiB: rejected before the body is read. */
    int n = snprintf(request, sizeof request,
                     "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n{");
    http_raw(g_fx.port, request, (size_t)n, &r);
    expect_error(&r, 413, "body_too_large");
    http_reply_free(&r);

    /* Chunked, so the size is only known while reading: 70,000 bytes. */
    size_t big_len = 70000;
    char *big = malloc(big_len + 512);
    assert_non_null(big);
    n = snprintf(big, 512,
                 "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "%zx\r\n",
                 big_len);
    memset(big + n, ' ', big_len);
    memcpy(big + (size_t)n + big_len, "\r\n0\r\n\r\n", 7);
    http_raw(g_fx.port, big, (size_t)n + big_len + 7, &r);
    expect_error(&r, 413, "body_too_large");
    http_reply_free(&r);
    free(big);

    /* Not JSON. */
    n = snprintf(request, sizeof request,
                 "POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
    http_raw(g_fx.port, request, (size_t)n, &r);
    expect_error(&r, 415, "unsupported_media_type");
    http_reply_free(&r);

    /* GET may not carry a body at all. */
    n = snprintf(request, sizeof request,
                 "GET /api/v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                 "Content-Length: 2\r\n\r\n{}",
                 s.cookie_header);
    http_raw(g_fx.port, request, (size_t)n, &r);
    expect_error(&r, 413, "body_not_allowed");
    http_reply_free(&r);

    /* Unknown methods. */
    http_send("TRACE", "/api/v1/flows", s.cookie_header, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    http_reply_free(&r);
    http_send("DELETE", "/api/v1/flows", s.both, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    http_reply_free(&r);
}

static void check_security_headers(const http_reply *r)
{
    static const struct {
        const char *name, *value;
    } expected[] = {
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-store"},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char *v = http_header(r, expected[i].name);
        if (v == NULL)
            print_error("missing header %s in a %d reply\n", expected[i].name, r->status);
        assert_non_null(v);
        assert_string_equal(v, expected[i].value);
        free(v);
    }
    char *csp = http_header(r, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_non_null(strstr(csp, "script-src 'self'"));
    assert_null(strstr(csp, "unsafe-inline"));
    free(csp);
}

static void test_security_headers_on_every_reply(void **state)
{
    (void)state;
    http_reply r;
    http_send("GET", "/api/v1/flows", "", NULL, &r);            /* 401 */
    check_security_headers(&r);
    http_reply_free(&r);
    login_reply("ana", "wrong-password", &r);                   /* 401 login */
    check_security_headers(&r);
    http_reply_free(&r);
    login_reply("ana", ANALYST_PASSWORD, &r);                   /* 200 login */
    check_security_headers(&r);
    http_reply_free(&r);
    http_send("POST", "/api/v1/login", "", "{", &r);            /* 400 */
    check_security_headers(&r);
    http_reply_free(&r);
}

/* ---- tests: HTTPS ----------------------------------------------------- */

/* Run CMD through the shell and return its standard output (caller frees). */
static char *run_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 65536, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0)
        len += n;
    out[len] = '\0';
    int status = pclose(p);
    if (status != 0)
        print_error("command failed (%d): %s\n%s\n", status, cmd, out);
    assert_int_equal(status, 0);
    return out;
}

static void test_tls_round_trip(void **state)
{
    (void)state;
    char cert[700], key[700], cmd[2400];
    snprintf(cert, sizeof cert, "%s/cert.pem", g_fx.dir);
    snprintf(key, sizeof key, "%s/key.pem", g_fx.dir);
    /* A self-signed certificate for 127.0.0.1, made now so no key is
     * kept in the repository. */
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
             "2>&1",
             key, cert);
    free(run_output(cmd));

    size_t cert_len = 0, key_len = 0;
    char *cert_pem = tu_read_file(cert, &cert_len);
    char *key_pem = tu_read_file(key, &key_len);
    assert_non_null(cert_pem);
    assert_non_null(key_pem);
    server_start_with(cert_pem, key_pem);

    /* Anonymous health over HTTPS, with the certificate verified. */
    snprintf(cmd, sizeof cmd,
             "curl --noproxy '*' --silent --show-error --max-time 20 --cacert '%s' "
             "https://127.0.0.1:%u/api/v1/health",
             cert, (unsigned)g_fx.port);
    char *out = run_output(cmd);
    assert_string_equal(out, "{\"status\":\"ok\"}");
    free(out);

    /* Login: the session cookie is Secure under TLS. */
    snprintf(cmd, sizeof cmd,
             "curl --noproxy '*' --silent --show-error --max-time 20 --cacert '%s' --include "
             "--header 'Content-Type: application/json' "
             "--data '{\"user\":\"ana\",\"password\":\"%s\"}' "
             "https://127.0.0.1:%u/api/v1/login",
             cert, ANALYST_PASSWORD, (unsigned)g_fx.port);
    out = run_output(cmd);
    assert_non_null(strstr(out, " 200"));
    assert_non_null(strstr(out, "; Secure"));
    assert_non_null(strstr(out, "\"csrf_token\""));
    /* Under TLS browsers are told to stay on HTTPS. */
    assert_non_null(strstr(out, "Strict-Transport-Security: max-age=31536000"));
    free(out);

    /* Plain HTTP to the TLS port gets no API reply. */
    snprintf(cmd, sizeof cmd,
             "curl --noproxy '*' --silent --max-time 10 http://127.0.0.1:%u/api/v1/health; true",
             (unsigned)g_fx.port);
    out = run_output(cmd);
    assert_null(strstr(out, "\"status\":\"ok\""));
    free(out);

    api_server_stop(&g_fx.server);
    free(cert_pem);
    free(key_pem);
}

static void test_tls_rejects_mismatched_key(void **state)
{
    (void)state;
    char err[512];
    api_server *srv = NULL;
    api_config cfg = {
        .store = g_fx.store,
        .listen_addr = "127.0.0.1",
        .tls_cert_pem = "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        .tls_key_pem = "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    };
    assert_int_not_equal(api_server_start(&cfg, &srv, err, sizeof err), FV_OK);
    assert_null(srv);
    assert_non_null(strstr(err, "--tls-cert"));

    cfg.tls_key_pem = NULL;
    assert_int_equal(api_server_start(&cfg, &srv, err, sizeof err), FV_ERR_INVALID);
    assert_non_null(strstr(err, "--tls-key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_sets_session_cookie, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_login_failures_look_the_same, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_login_rejects_bad_bodies, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_login_rate_limited_per_user, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_login_rate_limited_per_address, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_session_survives_clock_read_before_last_use,
                                        server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_session_expires_when_idle, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_session_expires_after_lifetime, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_logout_ends_session, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_csrf_checked_on_state_changes, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_password_change_ends_sessions, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_me_reports_principal, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_token_authenticates_until_revoked, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_token_expires, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_token_wrong_secret_rejected, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_login_rejects_audited_once_per_minute, server_setup,
                                        server_teardown),
        cmocka_unit_test(test_login_table_keeps_locked_keys),
        cmocka_unit_test_setup_teardown(test_login_hashing_is_bounded, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_bearer_scheme_any_case, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_only_get_and_head, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method_answered_before_routes, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_roles_limit_routes, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_users_route_lists_accounts, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_rejected_everywhere, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_health_is_minimal, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_audit_names_the_user, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_request_bodies_limited, server_setup,
                                        server_teardown),
        cmocka_unit_test_setup_teardown(test_security_headers_on_every_reply, server_setup,
                                        server_teardown),
        cmocka_unit_test(test_tls_round_trip),
        cmocka_unit_test(test_tls_rejects_mismatched_key),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
