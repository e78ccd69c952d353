/*
 * Tests for /api/v1/top/...: totals over the aggregates class with
 * groups of fewer than k distinct hosts suppressed. A real store in a
 * temporary directory and a real server on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "store.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define HOUR1_US (1796025600ull * US_PER_S) /* 2026-11-30T08:00:00Z */
#define HOUR2_US (HOUR1_US + 3600 * US_PER_S)
#define EARLY_US (HOUR1_US - 86400 * US_PER_S) /* a day before HOUR1 */
#define NOW_US (HOUR2_US + 7200 * US_PER_S)

static uint64_t test_clock_us(void)
{
    return NOW_US;
}

/* "Authorization: Bearer ...\r\n" of an admin token made in the fixture:
 * every API request must authenticate. */
static char g_auth[STORE_TOKEN_TEXT_LEN + 40];

/* Create an admin API token in STORE and keep its header in g_auth. */
static void make_admin_token(store_env *store)
{
    char text[STORE_TOKEN_TEXT_LEN + 1];
    assert_int_equal(store_token_create(store, "tests", STORE_ROLE_ADMIN, 0,
                                        NOW_US, text, NULL),
                     FV_OK);
    snprintf(g_auth, sizeof g_auth, "Authorization: Bearer %s\r\n", text);
}

typedef struct fixture {
    char dir[512];
    store_env *store;
    api_server *server;
    uint16_t port;
} fixture;

/* One aggregate record of zone ZONE to A.B.C.D:DPORT over PROTO. */
static void put_aggregate(store_env *store, uint64_t bucket_us, uint32_t bucket_s,
                          const char *zone, const uint8_t peer[4], uint8_t proto, uint16_t dport,
                          uint64_t flows, uint32_t hosts)
{
    fv_aggregate_record r;
    memset(&r, 0, sizeof r);
    r.bucket_start_us = bucket_us;
    r.bucket_s = bucket_s;
    snprintf(r.zone, sizeof r.zone, "%s", zone);
    r.proto = proto;
    r.peer.kind = FV_EP_IPV4;
    memcpy(r.peer.addr, peer, 4);
    snprintf(r.peer.zone, sizeof r.peer.zone, FV_ZONE_EXTERNAL);
    r.dport = dport;
    r.flows = flows;
    r.packets = flows * 10;
    r.bytes_out = flows * 1000;
    r.bytes_in = flows * 3000;
    r.hosts = hosts;
    assert_int_equal(store_put(store, FV_CLASS_AGGREGATE, &r, NOW_US - 60 * US_PER_S), FV_OK);
}

/* Documentation addresses (RFC 5737) for the external peers. */
static const uint8_t PEER_A[4] = {203, 0, 113, 50};
static const uint8_t PEER_B[4] = {198, 51, 100, 7};
static const uint8_t PEER_C[4] = {192, 0, 2, 9};
static const uint8_t PEER_D[4] = {203, 0, 113, 99};
static const uint8_t PEER_E[4] = {192, 0, 2, 200};

/*
 * With k = 5:
 *   A 203.0.113.50:443/tcp  office  hosts 7 then 3, 150 flows: shown
 *   B 198.51.100.7:22/tcp   lab     hosts 2, 500 flows: suppressed
 *   C 192.0.2.9:53/udp      office  hosts 5 (exactly k), 40 flows: shown
 *   D 203.0.113.99:443/tcp  office  hosts 4 (k - 1), 1000 flows: suppressed
 *   E 192.0.2.200:80/tcp    office  hosts 20, 10 flows, a day earlier
 * A also has a daily record (9 hosts, 150 flows) that must not be added
 * to its hourly ones.
 */
static void put_fixture(store_env *store)
{
    put_aggregate(store, HOUR1_US, 3600, "office", PEER_A, 6, 443, 100, 7);
    put_aggregate(store, HOUR2_US, 3600, "office", PEER_A, 6, 443, 50, 3);
    put_aggregate(store, HOUR1_US - HOUR1_US % (86400 * US_PER_S), 86400, "office", PEER_A, 6,
                  443, 150, 9);
    put_aggregate(store, HOUR1_US, 3600, "lab", PEER_B, 6, 22, 500, 2);
    put_aggregate(store, HOUR2_US, 3600, "office", PEER_C, 17, 53, 40, 5);
    put_aggregate(store, HOUR1_US, 3600, "office", PEER_D, 6, 443, 1000, 4);
    put_aggregate(store, EARLY_US, 3600, "office", PEER_E, 6, 80, 10, 20);
    assert_int_equal(store_commit(store), FV_OK);
}

static void start_fixture(void **state, uint64_t k)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[256], db[600];
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    snprintf(db, sizeof db, "%s/db", fx->dir);
    assert_int_equal(store_open(db, 0, &fx->store, err, sizeof err), FV_OK);
    assert_int_equal(store_set_retention(fx->store, FV_CLASS_AGGREGATE, 400 * 86400), FV_OK);
    if (k != 0)
        assert_int_equal(store_meta_set(fx->store, STORE_META_K_THRESHOLD, k), FV_OK);
    put_fixture(fx->store);

    api_config cfg = {
        .store = fx->store,
        .listen_addr = "127.0.0.1",
        .port = 0,
        .threads = 1,
        .clock_us = test_clock_us,
    };
    make_admin_token(fx->store);
    assert_int_equal(api_server_start(&cfg, &fx->server, err, sizeof err), FV_OK);
    fx->port = api_server_port(fx->server);
    *state = fx;
}

static int setup_k5(void **state)
{
    start_fixture(state, 5);
    return 0;
}

static int setup_k2(void **state)
{
    start_fixture(state, 2);
    return 0;
}

static int setup_no_k(void **state)
{
    start_fixture(state, 0);
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    api_server_stop(&fx->server);
    store_close(&fx->store);
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* GET TARGET from the fixture's server, expect STATUS, return the JSON body. */
static json_t *get_json(const fixture *fx, const char *target, int status)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(fx->port)};
    struct timeval timeout = {.tv_sec = 10};
    char request[1024], reply[65536];
    size_t len = 0;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n", target,
                     g_auth);
    assert_int_equal(send(fd, request, (size_t)n, MSG_NOSIGNAL), n);
    for (;;) {
        assert_true(len < sizeof reply - 1);
        ssize_t got = recv(fd, reply + len, sizeof reply - 1 - len, 0);
        assert_true(got >= 0);
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    reply[len] = '\0';

    int got_status = 0;
    assert_int_equal(sscanf(reply, "HTTP/1.1 %d", &got_status), 1);
    const char *body = strstr(reply, "\r\n\r\n");
    assert_non_null(body);
    if (got_status != status)
        print_error("GET %s: status %d, body %s\n", target, got_status, body + 4);
    assert_int_equal(got_status, status);
    json_error_t jerr;
    json_t *doc = json_loads(body + 4, 0, &jerr);
    assert_non_null(doc);
    return doc;
}

static json_int_t int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        print_error("field %s is missing or not an integer\n", key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char *text_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_top_destinations_suppresses_below_k(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/top/destinations?from=2026-11-30T08:00:00Z", 200);

    assert_int_equal(int_at(doc, "k_threshold"), 5);
    assert_string_equal(text_at(doc, "k_threshold_source"), "store");
    assert_int_equal(int_at(doc, "suppressed_groups"), 2);
    json_t *rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 2);

    json_t *a = json_array_get(rows, 0);
    assert_string_equal(text_at(a, "peer"), "203.0.113.50");
    assert_int_equal(int_at(a, "dport"), 443);
    assert_int_equal(int_at(a, "proto"), 6);
    assert_int_equal(int_at(a, "flows"), 150);
    assert_int_equal(int_at(a, "bytes"), 150 * 4000);
    assert_int_equal(int_at(a, "hosts_at_least"), 7);

    json_t *c = json_array_get(rows, 1);
    assert_string_equal(text_at(c, "peer"), "192.0.2.9");
    assert_int_equal(int_at(c, "flows"), 40);
    assert_int_equal(int_at(c, "hosts_at_least"), 5);

    /* Neither suppressed peer is named anywhere in the reply. */
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, "198.51.100.7"));
    assert_null(strstr(text, "203.0.113.99"));
    free(text);
    json_decref(doc);
}

static void test_top_destinations_window_and_limit(void **state)
{
    fixture *fx = *state;

    /* Without a window the early destination E (20 hosts) counts too. */
    json_t *doc = get_json(fx, "/api/v1/top/destinations", 200);
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 3);
    json_decref(doc);

    /* The window ends before HOUR2: A keeps only its first hour. */
    doc = get_json(fx, "/api/v1/top/destinations?from=2026-11-30T08:00:00Z&"
                       "to=2026-11-30T08:30:00Z&limit=1",
                   200);
    json_t *rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(int_at(json_array_get(rows, 0), "flows"), 100);
    assert_int_equal(int_at(doc, "suppressed_groups"), 2);
    json_decref(doc);
}

static void test_top_protocols_and_zones_group(void **state)
{
    fixture *fx = *state;

    /* 443/tcp unites A and D: 1150 flows, at least 7 hosts. */
    json_t *doc = get_json(fx, "/api/v1/top/protocols?from=1796025600", 200);
    json_t *rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(int_at(json_array_get(rows, 0), "dport"), 443);
    assert_int_equal(int_at(json_array_get(rows, 0), "flows"), 1150);
    assert_int_equal(int_at(json_array_get(rows, 1), "dport"), 53);
    assert_int_equal(int_at(doc, "suppressed_groups"), 1);
    json_decref(doc);

    doc = get_json(fx, "/api/v1/top/zones?from=1796025600", 200);
    rows = json_object_get(doc, "rows");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(text_at(json_array_get(rows, 0), "zone"), "office");
    assert_int_equal(int_at(json_array_get(rows, 0), "flows"), 1190);
    assert_int_equal(int_at(doc, "suppressed_groups"), 1);
    json_decref(doc);
}

static void test_top_uses_k_from_store(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/top/destinations?from=1796025600", 200);
    assert_int_equal(int_at(doc, "k_threshold"), 2);
    assert_int_equal(int_at(doc, "suppressed_groups"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "rows")), 4);
    json_decref(doc);
}

static void test_top_defaults_k_without_store_value(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/top/destinations?from=1796025600", 200);
    assert_int_equal(int_at(doc, "k_threshold"), 5);
    assert_string_equal(text_at(doc, "k_threshold_source"), "default");
    assert_int_equal(int_at(doc, "suppressed_groups"), 2);
    json_decref(doc);
}

static void test_top_rejects_bad_requests(void **state)
{
    fixture *fx = *state;
    json_decref(get_json(fx, "/api/v1/top/hosts", 404));
    json_decref(get_json(fx, "/api/v1/top/destinations?order=asc", 400));
    json_decref(get_json(fx, "/api/v1/top/destinations?limit=0", 400));
    json_decref(get_json(fx, "/api/v1/top/zones?from=2026-12-01T00:00:00Z&to=1796025600", 400));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_top_destinations_suppresses_below_k, setup_k5,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_top_destinations_window_and_limit, setup_k5,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_top_protocols_and_zones_group, setup_k5, teardown),
        cmocka_unit_test_setup_teardown(test_top_rejects_bad_requests, setup_k5, teardown),
        cmocka_unit_test_setup_teardown(test_top_uses_k_from_store, setup_k2, teardown),
        cmocka_unit_test_setup_teardown(test_top_defaults_k_without_store_value, setup_no_k,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
