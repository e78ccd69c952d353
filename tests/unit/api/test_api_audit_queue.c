/*
 * test_api_audit_queue.c: the batched audit entries of read requests,
 * against a real server on 127.0.0.1 (port 0) and a real LMDB store.
 *
 * Reads are queued and committed by the server's writer thread, so the
 * checks here count entries in the store: concurrent reads give exactly
 * one entry each, entries still queued when the server stops are
 * committed by the stop and found after the store is reopened, a
 * request that changes state is committed before its reply and after
 * the reads queued before it, and a queue shorter than the requests
 * makes them wait instead of losing entries.
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
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"

#define US APITEST_US_PER_S
/* 2026-12-01T00:00:00Z */
#define NOW_US (1796083200ull * US)

/* A flush interval no test outlasts: entries stay queued until the
 * server stops or a state change commits them. */
#define FLUSH_NEVER_MS 600000u

/* ---- counting entries ------------------------------------------------- */

typedef struct audit_tally {
    const char *action;
    const char *object;         /* NULL: any */
    size_t count;
} audit_tally;

static bool tally_entry(void *ctx, const store_audit_entry *e)
{
    audit_tally *t = ctx;
    if (strcmp(e->action, t->action) == 0 && (t->object == NULL || strcmp(e->object, t->object) == 0))
        t->count++;
    return true;
}

/* Entries in STORE with ACTION (and OBJECT unless NULL), committed ones only. */
static size_t committed_count(store_env *store, const char *action, const char *object)
{
    audit_tally t = {.action = action, .object = object, .count = 0};
    uint64_t from = 0, next = 0;
    do {
        assert_int_equal(store_audit_each(store, from, STORE_AUDIT_LIMIT_MAX, false, tally_entry,
                                          &t, &next),
                         FV_OK);
        from = next;
    } while (next != 0);
    return t.count;
}

static void assert_chain_intact(store_env *store)
{
    store_audit_verify_result res;
    assert_int_equal(store_audit_verify(store, &res), FV_OK);
    assert_true(res.ok);
    assert_int_equal(res.checked, res.head_seq);
}

/* ---- a client that can run in threads --------------------------------- */

/*
 * Send REQUESTS GET requests for TARGET on one keep-alive connection and
 * count the 200 replies. Uses no cmocka assertion, because a failed one
 * cannot leave a thread other than the test's. Returns the count of 200
 * replies, or -1 when the connection failed.
 */
static int keep_alive_gets(uint16_t port, const char *auth, const char *target, int requests)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval timeout = {.tv_sec = 20};
    char head[1024], buf[16384];
    int ok = 0;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", target,
                     auth);
    for (int i = 0; i < requests && n > 0 && (size_t)n < sizeof head; i++) {
        if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != (ssize_t)n)
            break;
        /* Read one reply: the head, then Content-Length bytes of body. */
        size_t len = 0;
        char *end = NULL;
        while (end == NULL) {
            ssize_t got = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (got <= 0)
                goto out;
            len += (size_t)got;
            buf[len] = '\0';
            end = strstr(buf, "\r\n\r\n");
        }
        /* libmicrohttpd spells the header name this way. */
        const char *cl = strstr(buf, "\r\nContent-Length:");
        if (cl == NULL || cl > end)
            goto out;
        size_t body = strtoul(cl + strlen("\r\nContent-Length:"), NULL, 10);
        size_t want = (size_t)(end + 4 - buf) + body;
        if (!(want < sizeof buf))
            goto out;
        while (len < want) {
            ssize_t got = recv(fd, buf + len, want - len, 0);
            if (got <= 0)
                goto out;
            len += (size_t)got;
        }
        if (strncmp(buf, "HTTP/1.1 200 ", 13) == 0)
            ok++;
    }
out:
    close(fd);
    return ok;
}

typedef struct client_job {
    uint16_t port;
    const char *auth;
    int requests;
    int ok;
} client_job;

static void *client_main(void *arg)
{
    client_job *job = arg;
    job->ok = keep_alive_gets(job->port, job->auth, "/api/v1/summary", job->requests);
    return NULL;
}

/* ---- tests ------------------------------------------------------------ */

static void test_concurrent_reads_audited_once(void **state)
{
    (void)state;
    enum { CLIENTS = 8, REQUESTS = 40 };
    apitest t;
    apitest_set_now(NOW_US);
    apitest_open(&t);
    apitest_start(&t);

    pthread_t threads[CLIENTS];
    client_job jobs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        jobs[i] = (client_job){.port = t.port, .auth = t.auth[APITEST_ANALYST],
                               .requests = REQUESTS, .ok = 0};
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &jobs[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].ok, REQUESTS);
    }

    assert_int_equal(api_server_audit_flush(t.server), FV_OK);
    assert_int_equal(committed_count(t.store, "api.read", "/api/v1/summary"),
                     CLIENTS * REQUESTS);
    assert_chain_intact(t.store);
    apitest_close(&t);
}

static void test_queued_reads_survive_stop(void **state)
{
    (void)state;
    enum { READS = 12 };
    apitest t;
    char db[600], err[256];
    apitest_set_now(NOW_US);
    apitest_open(&t);
    t.audit_flush_ms = FLUSH_NEVER_MS;
    apitest_start(&t);

    for (int i = 0; i < READS; i++)
        json_decref(apitest_get(&t, "/api/v1/summary", 200));
    /* Replied, but not committed yet: the entries wait in the queue. */
    assert_int_equal(committed_count(t.store, "api.read", NULL), 0);

    /* Stopping the server (what SIGTERM does in `flowveil serve`)
     * commits them; a reopened store has every one. */
    api_server_stop(&t.server);
    store_close(&t.store);
    snprintf(db, sizeof db, "%s/db", t.dir);
    assert_int_equal(store_open(db, 0, &t.store, err, sizeof err), FV_OK);
    assert_int_equal(committed_count(t.store, "api.read", "/api/v1/summary"), READS);
    assert_chain_intact(t.store);
    apitest_close(&t);
}

typedef struct last_entries {
    store_audit_entry e[4];
    size_t count;
} last_entries;

static bool keep_entry(void *ctx, const store_audit_entry *e)
{
    last_entries *last = ctx;
    last->e[last->count++] = *e;
    return last->count < sizeof last->e / sizeof last->e[0];
}

static void test_state_change_committed_before_reply(void **state)
{
    (void)state;
    apitest t;
    apitest_set_now(NOW_US);
    apitest_open(&t);
    t.audit_flush_ms = FLUSH_NEVER_MS;
    apitest_start(&t);

    json_decref(apitest_get(&t, "/api/v1/summary", 200));
    json_decref(apitest_get(&t, "/api/v1/flows?limit=5", 200));
    json_decref(apitest_get(&t, "/api/v1/retention", 200));
    assert_int_equal(committed_count(t.store, "api.read", NULL), 0);

    /* A PATCH is a state change even when it fails: its entry is in the
     * store when the reply arrives, after the three queued reads. */
    json_decref(apitest_json(&t, "PATCH", "/api/v1/alerts/12345", APITEST_ADMIN,
                             "{\"state\": \"acknowledged\"}", 404));
    last_entries last = {.count = 0};
    assert_int_equal(store_audit_each(t.store, 0, 4, true, keep_entry, &last, NULL), FV_OK);
    assert_int_equal(last.count, 4);
    assert_string_equal(last.e[0].action, "api.write");
    assert_string_equal(last.e[0].object, "/api/v1/alerts/12345");
    assert_string_equal(last.e[1].object, "/api/v1/retention");
    assert_string_equal(last.e[2].object, "/api/v1/flows");
    assert_string_equal(last.e[3].object, "/api/v1/summary");
    for (size_t i = 1; i < 4; i++)
        assert_string_equal(last.e[i].action, "api.read");
    assert_chain_intact(t.store);
    apitest_close(&t);
}

static void test_audit_route_lists_queued_reads(void **state)
{
    (void)state;
    apitest t;
    apitest_set_now(NOW_US);
    apitest_open(&t);
    t.audit_flush_ms = FLUSH_NEVER_MS;
    apitest_start(&t);

    json_decref(apitest_get(&t, "/api/v1/flows?limit=7", 200));
    json_t *doc = apitest_json(&t, "GET", "/api/v1/audit?limit=1", APITEST_COMPLIANCE, NULL, 200);
    json_t *entry = json_array_get(json_object_get(doc, "entries"), 0);
    assert_non_null(entry);
    assert_string_equal(json_string_value(json_object_get(entry, "object")), "/api/v1/flows");
    assert_non_null(strstr(json_string_value(json_object_get(entry, "params")), "limit=7"));
    json_decref(doc);

    doc = apitest_json(&t, "GET", "/api/v1/audit/verify", APITEST_COMPLIANCE, NULL, 200);
    assert_true(json_is_true(json_object_get(doc, "ok")));
    json_decref(doc);
    apitest_close(&t);
}

static void test_full_queue_waits_for_room(void **state)
{
    (void)state;
    enum { READS = 20 };
    apitest t;
    apitest_set_now(NOW_US);
    apitest_open(&t);
    /* Two slots for twenty reads: each full queue makes the request ask
     * the writer for a commit and wait for room. */
    t.audit_flush_ms = FLUSH_NEVER_MS;
    t.audit_queue_max = 2;
    apitest_start(&t);

    for (int i = 0; i < READS; i++)
        json_decref(apitest_get(&t, "/api/v1/summary", 200));
    size_t committed = committed_count(t.store, "api.read", "/api/v1/summary");
    assert_true(committed >= READS - 2);
    assert_true(committed <= READS);
    assert_int_equal(api_server_audit_flush(t.server), FV_OK);
    assert_int_equal(committed_count(t.store, "api.read", "/api/v1/summary"), READS);
    assert_chain_intact(t.store);
    apitest_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_reads_audited_once),
        cmocka_unit_test(test_queued_reads_survive_stop),
        cmocka_unit_test(test_state_change_committed_before_reply),
        cmocka_unit_test(test_audit_route_lists_queued_reads),
        cmocka_unit_test(test_full_queue_waits_for_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
