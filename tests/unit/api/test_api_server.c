/*
 * test_api_server.c: the HTTP API against a real libmicrohttpd daemon on
 * 127.0.0.1 (port 0) and a real LMDB store in a temporary directory.
 *
 * Each test gets a fresh store holding 25 flows one hour apart, 3 DNS,
 * 2 TLS, 1 HTTP record and 2 alerts, a web root with two dashboard files,
 * a secret file beside (outside) the web root and a symbolic link to it
 * inside. The server clock is pinned through api_config.clock_us.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "store.h"
#include "testutil.h"

#define US_PER_S 1000000ull
#define HOUR_US (3600ull * US_PER_S)
#define DAY_S 86400ull

/* Traffic time of the first flow: 2026-11-30T08:00:00Z. */
#define TRAFFIC0_S 1796025600ull
#define TRAFFIC0_US (TRAFFIC0_S * US_PER_S)

/* Stored-at time of every fixture record: 2026-12-01T00:00:00Z. */
#define STORED_US (1796083200ull * US_PER_S)

#define FLOW_COUNT 25
#define FLOW_RETENTION_S (7 * DAY_S)
#define ALERT_RETENTION_S (30 * DAY_S)

static const char SECRET_TEXT[] = "flowveil-secret-outside-web-root";
static const char INDEX_TEXT[] = "<!doctype html><title>test dashboard</title>";
static const char SCRIPT_TEXT[] = "export const answer = 42;\n";

static const char EXPECTED_CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

static _Atomic uint64_t g_now_us;

static uint64_t test_clock_us(void)
{
    return atomic_load(&g_now_us);
}

/* "Authorization: Bearer ...\r\n" of an admin token made in the fixture:
 * every API request must authenticate. */
static char g_auth[STORE_TOKEN_TEXT_LEN + 40];

/* Create an admin API token in STORE and keep its header in g_auth. */
static void make_admin_token(store_env *store)
{
    char text[STORE_TOKEN_TEXT_LEN + 1];
    assert_int_equal(store_token_create(store, "tests", STORE_ROLE_ADMIN, 0,
                                        atomic_load(&g_now_us), text, NULL),
                     FV_OK);
    snprintf(g_auth, sizeof g_auth, "Authorization: Bearer %s\r\n", text);
}

typedef struct fixture {
    char dir[512];
    store_env *store;
    api_server *server;
    uint16_t port;
} fixture;

/* ---- fixture records -------------------------------------------------- */

/* A pseudonymized office host: the pseudonym bytes are arbitrary. */
static void internal_endpoint(fv_endpoint *ep, uint8_t seed)
{
    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_PSEUDO_IPV4;
    for (unsigned i = 0; i < FV_PSEUDONYM_BYTES; i++)
        ep->addr[i] = (uint8_t)(seed + i * 7u);
    snprintf(ep->zone, sizeof ep->zone, "office");
}

/* A kept external server address, 198.51.100.7 (TEST-NET-2). */
static void external_endpoint(fv_endpoint *ep)
{
    static const uint8_t addr[4] = {198, 51, 100, 7}; /* 198.51.100.7, network order */

    memset(ep, 0, sizeof *ep);
    ep->kind = FV_EP_IPV4;
    memcpy(ep->addr, addr, sizeof addr);
    snprintf(ep->zone, sizeof ep->zone, FV_ZONE_EXTERNAL);
}

static void put_fixture_records(store_env *store)
{
    /* Flows one hour apart, each lasting no time, so a time window
     * selects them the same way whether it matches start or overlap. */
    for (unsigned i = 0; i < FLOW_COUNT; i++) {
        fv_flow_record f;

        memset(&f, 0, sizeof f);
        f.first_us = TRAFFIC0_US + i * HOUR_US;
        f.last_us = f.first_us;
        internal_endpoint(&f.src, (uint8_t)i);
        external_endpoint(&f.dst);
        f.sport = (uint16_t)(40000 + i);
        f.dport = 443;
        f.proto = 6;
        f.end_reason = FV_END_FIN;
        f.pkts_fwd = 10;
        f.pkts_rev = 12;
        f.bytes_fwd = 1000 + i;
        f.bytes_rev = 5000;
        assert_int_equal(store_put(store, FV_CLASS_FLOW, &f, STORED_US), FV_OK);
    }

    for (unsigned i = 0; i < 3; i++) {
        fv_dns_record d;

        memset(&d, 0, sizeof d);
        d.ts_us = TRAFFIC0_US + i * US_PER_S;
        internal_endpoint(&d.client, 1);
        external_endpoint(&d.server);
        d.client_port = 53000;
        d.server_port = 53;
        d.transport = 17;
        d.txid = (uint16_t)(0x1000 + i);
        d.qtype = 1;
        d.qclass = 1;
        snprintf(d.qname, sizeof d.qname, "example.org");
        assert_int_equal(store_put(store, FV_CLASS_DNS, &d, STORED_US), FV_OK);
    }

    for (unsigned i = 0; i < 2; i++) {
        fv_tls_record t;

        memset(&t, 0, sizeof t);
        t.ts_us = TRAFFIC0_US + i * US_PER_S;
        internal_endpoint(&t.client, 2);
        external_endpoint(&t.server);
        t.client_port = 50000;
        t.server_port = 443;
        t.version = 0x0303;
        snprintf(t.sni, sizeof t.sni, "example.org");
        assert_int_equal(store_put(store, FV_CLASS_TLS, &t, STORED_US), FV_OK);
    }

    fv_http_record h;
    memset(&h, 0, sizeof h);
    h.ts_us = TRAFFIC0_US;
    internal_endpoint(&h.client, 3);
    external_endpoint(&h.server);
    h.client_port = 50001;
    h.server_port = 80;
    snprintf(h.method, sizeof h.method, "GET");
    snprintf(h.host, sizeof h.host, "example.org");
    assert_int_equal(store_put(store, FV_CLASS_HTTP, &h, STORED_US), FV_OK);

    fv_dhcp_record d;
    memset(&d, 0, sizeof d);
    d.ts_us = TRAFFIC0_US + 5 * US_PER_S;
    internal_endpoint(&d.client, 5);
    internal_endpoint(&d.server, 6);
    d.client_port = 68;
    d.server_port = 67;
    d.op = 1;
    d.msg_type = 3;
    d.has_client_mac = 1;
    memset(d.client_mac, 0x5a, sizeof d.client_mac);
    snprintf(d.hostname, sizeof d.hostname, "name-abcdefghijklmnop");
    snprintf(d.vendor_class, sizeof d.vendor_class, "MSFT 5.0");
    assert_int_equal(store_put(store, FV_CLASS_DHCP, &d, STORED_US), FV_OK);

    fv_ssh_record s;
    memset(&s, 0, sizeof s);
    s.ts_us = TRAFFIC0_US + 6 * US_PER_S;
    internal_endpoint(&s.client, 7);
    external_endpoint(&s.server);
    s.client_port = 50022;
    s.server_port = 22;
    snprintf(s.client_banner, sizeof s.client_banner, "SSH-2.0-OpenSSH_9.6");
    snprintf(s.server_banner, sizeof s.server_banner, "SSH-2.0-dropbear");
    snprintf(s.hassh, sizeof s.hassh, "ae8bd7dd09970555aa4c6ed22adbbf56");
    assert_int_equal(store_put(store, FV_CLASS_SSH, &s, STORED_US), FV_OK);

    static const struct {
        uint8_t detector, severity;
    } alerts[2] = {{FV_DET_BEACON, FV_SEV_HIGH}, {FV_DET_EXFIL, FV_SEV_LOW}};
    for (unsigned i = 0; i < 2; i++) {
        fv_alert_record a;

        memset(&a, 0, sizeof a);
        a.ts_us = TRAFFIC0_US + 10 * HOUR_US;
        a.first_us = TRAFFIC0_US;
        a.last_us = a.ts_us;
        a.detector = alerts[i].detector;
        a.severity = alerts[i].severity;
        a.score = 0.75;
        internal_endpoint(&a.host, 4);
        external_endpoint(&a.peer);
        a.peer_port = 443;
        a.proto = 6;
        a.flow_count = 12;
        snprintf(a.summary, sizeof a.summary, "test alert %u", i);
        assert_int_equal(store_put(store, FV_CLASS_ALERT, &a, STORED_US), FV_OK);
    }
}

/* ---- setup ------------------------------------------------------------ */

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[640];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    tu_write_file(path, text, strlen(text));
}

static int fixture_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[256];
    char web[600], link_path[640], secret_path[640];

    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    atomic_store(&g_now_us, STORED_US + 60 * US_PER_S);

    /* Store with retention limits and the fixture records. */
    char db[600];
    snprintf(db, sizeof db, "%s/db", fx->dir);
    assert_int_equal(store_open(db, 0, &fx->store, err, sizeof err), FV_OK);
    assert_int_equal(store_set_retention(fx->store, FV_CLASS_FLOW, FLOW_RETENTION_S), FV_OK);
    assert_int_equal(store_set_retention(fx->store, FV_CLASS_ALERT, ALERT_RETENTION_S), FV_OK);
    put_fixture_records(fx->store);
    store_counters delta = {.packets = 500, .bytes = 123456, .flows = FLOW_COUNT, .files = 1,
                            .last_ingest_us = STORED_US};
    assert_int_equal(store_counters_add(fx->store, &delta), FV_OK);
    assert_int_equal(store_commit(fx->store), FV_OK);
    static const char *const counter_names[] = {"packets", "dns_malformed"};
    static const uint64_t counter_values[] = {500, 7};
    assert_int_equal(store_capture_counters_add(fx->store, counter_names, counter_values, 2),
                     FV_OK);

    /* Web root, a secret beside it, and a link from inside to the secret. */
    snprintf(web, sizeof web, "%s/web", fx->dir);
    assert_int_equal(mkdir(web, 0700), 0);
    write_text(web, "index.html", INDEX_TEXT);
    write_text(web, "app.js", SCRIPT_TEXT);
    write_text(web, ".hidden.html", SECRET_TEXT);
    write_text(fx->dir, "secret.html", SECRET_TEXT);
    snprintf(secret_path, sizeof secret_path, "%s/secret.html", fx->dir);
    snprintf(link_path, sizeof link_path, "%s/link.html", web);
    assert_int_equal(symlink(secret_path, link_path), 0);

    api_config cfg = {
        .store = fx->store,
        .listen_addr = "127.0.0.1",
        .port = 0,
        .web_root = web,
        .threads = 2,
        .clock_us = test_clock_us,
    };
    make_admin_token(fx->store);
    assert_int_equal(api_server_start(&cfg, &fx->server, err, sizeof err), FV_OK);
    fx->port = api_server_port(fx->server);
    assert_true(fx->port != 0);

    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;

    api_server_stop(&fx->server);
    assert_null(fx->server);
    store_close(&fx->store);
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

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

/* Send REQUEST verbatim to the server and read the reply until the
 * server closes the connection (every request says Connection: close). */
static void http_raw(uint16_t port, const char *request, http_reply *out)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval timeout = {.tv_sec = 10};
    size_t cap = 65536, len = 0;
    int fd;

    memset(out, 0, sizeof *out);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);

    size_t sent = 0, total = strlen(request);
    while (sent < total) {
        ssize_t n = send(fd, request + sent, total - sent, MSG_NOSIGNAL);
        assert_true(n > 0);
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
        assert_true(n >= 0);
        if (n == 0)
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

static void http_request(uint16_t port, const char *method, const char *target,
                         http_reply *out)
{
    char request[2048];

    snprintf(request, sizeof request,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n", method, target,
             g_auth);
    http_raw(port, request, out);
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

/* GET TARGET, expect STATUS and a JSON body; return the parsed body. */
static json_t *get_json(const fixture *fx, const char *target, int status)
{
    http_reply r;
    json_error_t jerr;

    http_request(fx->port, "GET", target, &r);
    if (r.status != status)
        print_error("GET %s: status %d, body %s\n", target, r.status, r.body);
    assert_int_equal(r.status, status);
    json_t *doc = json_loadb(r.body, r.body_len, 0, &jerr);
    if (doc == NULL)
        print_error("GET %s: invalid JSON: %s\n", target, jerr.text);
    assert_non_null(doc);
    http_reply_free(&r);
    return doc;
}

static json_int_t json_int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    assert_non_null(v);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* ---- tests: routes ---------------------------------------------------- */

static void test_health_reports_ok(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/health", 200);

    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(doc, "store")), "open");
    assert_string_equal(json_string_value(json_object_get(doc, "time")),
                        "2026-12-01T00:01:00.000000Z");
    json_decref(doc);
}

static void test_summary_counts_match_store(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/summary", 200);
    json_t *records = json_object_get(doc, "records");
    json_t *alerts = json_object_get(doc, "alerts");

    assert_int_equal(json_int_at(records, "flows"), FLOW_COUNT);
    assert_int_equal(json_int_at(records, "dns"), 3);
    assert_int_equal(json_int_at(records, "tls"), 2);
    assert_int_equal(json_int_at(records, "http"), 1);
    assert_int_equal(json_int_at(records, "alerts"), 2);

    assert_int_equal(json_int_at(alerts, "total"), 2);
    assert_int_equal(json_int_at(json_object_get(alerts, "by_detector"), "beacon"), 1);
    assert_int_equal(json_int_at(json_object_get(alerts, "by_detector"), "exfil"), 1);
    assert_int_equal(json_int_at(json_object_get(alerts, "by_severity"), "high"), 1);
    assert_int_equal(json_int_at(json_object_get(alerts, "by_severity"), "low"), 1);
    assert_int_equal(json_int_at(json_object_get(alerts, "by_severity"), "critical"), 0);
    assert_true(json_is_true(json_object_get(alerts, "complete")));

    json_t *ingest = json_object_get(doc, "ingest");
    assert_int_equal(json_int_at(ingest, "packets"), 500);
    assert_int_equal(json_int_at(ingest, "files"), 1);

    /* Flow 0 starts the traffic, flow 24 ends it. */
    json_t *traffic = json_object_get(doc, "traffic");
    assert_string_equal(json_string_value(json_object_get(traffic, "first")),
                        "2026-11-30T08:00:00.000000Z");
    assert_string_equal(json_string_value(json_object_get(traffic, "last")),
                        "2026-12-01T08:00:00.000000Z");
    json_decref(doc);
}

/* Follow next_cursor through every page of TARGET_BASE (which ends in a
 * query string) and check each flow id comes back exactly once. */
static void check_paging(const fixture *fx, const char *target_base, bool newest_first)
{
    json_int_t seen[FLOW_COUNT];
    size_t seen_count = 0;
    int pages = 0;
    char cursor[64] = "";

    for (;;) {
        char target[256];

        if (cursor[0] != '\0')
            snprintf(target, sizeof target, "%s&cursor=%s", target_base, cursor);
        else
            snprintf(target, sizeof target, "%s", target_base);
        json_t *doc = get_json(fx, target, 200);
        json_t *records = json_object_get(doc, "records");
        size_t i;
        json_t *rec;

        pages++;
        assert_true(pages <= FLOW_COUNT);
        assert_int_equal(json_int_at(doc, "count"), (json_int_t)json_array_size(records));
        json_array_foreach(records, i, rec) {
            json_int_t id = json_int_at(rec, "id");

            for (size_t k = 0; k < seen_count; k++)
                assert_true(seen[k] != id);
            if (seen_count > 0) {
                if (newest_first)
                    assert_true(id < seen[seen_count - 1]);
                else
                    assert_true(id > seen[seen_count - 1]);
            }
            assert_true(seen_count < FLOW_COUNT);
            seen[seen_count++] = id;
        }

        json_t *next = json_object_get(doc, "next_cursor");
        assert_non_null(next);
        if (json_is_null(next)) {
            json_decref(doc);
            break;
        }
        assert_true(json_is_string(next));
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(doc);
    }
    assert_int_equal(seen_count, FLOW_COUNT);
    assert_int_equal(pages, 4); /* 7 + 7 + 7 + 4 */
}

static void test_flows_paging_returns_each_once(void **state)
{
    fixture *fx = *state;

    check_paging(fx, "/api/v1/flows?limit=7", true);
    check_paging(fx, "/api/v1/flows?limit=7&order=asc", false);
}

static void test_flows_page_size_is_exact(void **state)
{
    fixture *fx = *state;

    /* A page that ends exactly at the last record announces no next page. */
    json_t *doc = get_json(fx, "/api/v1/flows?limit=25", 200);
    assert_int_equal(json_int_at(doc, "count"), FLOW_COUNT);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    json_decref(doc);

    doc = get_json(fx, "/api/v1/flows", 200);
    assert_int_equal(json_int_at(doc, "count"), FLOW_COUNT);
    json_decref(doc);
}

static void test_flows_time_filter(void **state)
{
    fixture *fx = *state;
    char target[256];

    /* Flows 2..5 lie in [08:00 + 2 h, 08:00 + 5 h]; "to" is given as
     * epoch seconds and "from" as RFC 3339 to cover both forms. */
    snprintf(target, sizeof target, "/api/v1/flows?from=2026-11-30T10:00:00Z&to=%llu",
             (unsigned long long)(TRAFFIC0_S + 5 * 3600));
    json_t *doc = get_json(fx, target, 200);
    json_t *records = json_object_get(doc, "records");
    size_t i;
    json_t *rec;

    assert_int_equal(json_int_at(doc, "count"), 4);
    json_array_foreach(records, i, rec) {
        json_int_t first = json_int_at(rec, "first_us");
        assert_true((uint64_t)first >= TRAFFIC0_US + 2 * HOUR_US);
        assert_true((uint64_t)first <= TRAFFIC0_US + 5 * HOUR_US);
    }
    json_decref(doc);

    /* An offset is applied: 11:00+01:00 is 10:00Z, so 20 flows remain. */
    doc = get_json(fx, "/api/v1/flows?from=2026-11-30T11:00:00%2B01:00&limit=1000", 200);
    assert_int_equal(json_int_at(doc, "count"), FLOW_COUNT - 2);
    json_decref(doc);
}

/* The summary is built at most once per second of the server clock: an
 * alert stored within the same second shows from the next second on. */
static void test_summary_reused_within_one_second(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/summary", 200);
    assert_int_equal(json_int_at(json_object_get(doc, "alerts"), "total"), 2);
    json_decref(doc);

    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = TRAFFIC0_US + 11 * HOUR_US;
    a.first_us = TRAFFIC0_US;
    a.last_us = a.ts_us;
    a.detector = FV_DET_SCAN;
    a.severity = FV_SEV_MEDIUM;
    internal_endpoint(&a.host, 5);
    external_endpoint(&a.peer);
    snprintf(a.summary, sizeof a.summary, "alert stored after the first summary");
    assert_int_equal(store_put(fx->store, FV_CLASS_ALERT, &a, STORED_US + 1), FV_OK);
    assert_int_equal(store_commit(fx->store), FV_OK);

    doc = get_json(fx, "/api/v1/summary", 200);
    assert_int_equal(json_int_at(json_object_get(doc, "alerts"), "total"), 2);
    json_decref(doc);

    atomic_store(&g_now_us, atomic_load(&g_now_us) + US_PER_S);
    doc = get_json(fx, "/api/v1/summary", 200);
    assert_int_equal(json_int_at(json_object_get(doc, "alerts"), "total"), 3);
    json_decref(doc);
}

static void test_expired_records_not_returned(void **state)
{
    fixture *fx = *state;

    /* Eight days after storing: flows (7 d) expired, alerts (30 d) kept,
     * and the sweeper has not run. */
    atomic_store(&g_now_us, STORED_US + 8 * DAY_S * US_PER_S);

    json_t *doc = get_json(fx, "/api/v1/flows", 200);
    assert_int_equal(json_int_at(doc, "count"), 0);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    json_decref(doc);

    doc = get_json(fx, "/api/v1/alerts", 200);
    assert_int_equal(json_int_at(doc, "count"), 2);
    json_decref(doc);

    doc = get_json(fx, "/api/v1/summary", 200);
    assert_int_equal(json_int_at(json_object_get(doc, "records"), "flows"), 0);
    json_decref(doc);
}

static json_t *retention_class(json_t *doc, const char *name);

static void test_dhcp_and_ssh_routes_return_records(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/dhcp", 200);
    json_t *rec;

    assert_int_equal(json_int_at(doc, "count"), 1);
    rec = json_array_get(json_object_get(doc, "records"), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "class")), "dhcp");
    assert_int_equal(json_int_at(rec, "msg_type"), 3);
    assert_string_equal(json_string_value(json_object_get(rec, "hostname")),
                        "name-abcdefghijklmnop");
    assert_string_equal(json_string_value(json_object_get(rec, "vendor_class")), "MSFT 5.0");
    assert_memory_equal(json_string_value(json_object_get(rec, "client_mac")), "mac-", 4);
    json_decref(doc);

    doc = get_json(fx, "/api/v1/ssh?order=asc", 200);
    assert_int_equal(json_int_at(doc, "count"), 1);
    rec = json_array_get(json_object_get(doc, "records"), 0);
    assert_string_equal(json_string_value(json_object_get(rec, "client_banner")),
                        "SSH-2.0-OpenSSH_9.6");
    assert_string_equal(json_string_value(json_object_get(rec, "server_banner")),
                        "SSH-2.0-dropbear");
    assert_string_equal(json_string_value(json_object_get(rec, "hassh")),
                        "ae8bd7dd09970555aa4c6ed22adbbf56");
    assert_string_equal(json_string_value(json_object_get(rec, "hassh_server")), "");
    json_decref(doc);

    /* Both classes appear in the summary and the retention report. */
    doc = get_json(fx, "/api/v1/summary", 200);
    assert_int_equal(json_int_at(json_object_get(doc, "records"), "dhcp"), 1);
    assert_int_equal(json_int_at(json_object_get(doc, "records"), "ssh"), 1);
    json_decref(doc);
    doc = get_json(fx, "/api/v1/retention", 200);
    assert_int_equal(json_int_at(retention_class(doc, "dhcp"), "records"), 1);
    assert_int_equal(json_int_at(retention_class(doc, "ssh"), "records"), 1);
    json_decref(doc);
}

/* Return the retention entry for class NAME in a /retention reply. */
static json_t *retention_class(json_t *doc, const char *name)
{
    json_t *classes = json_object_get(doc, "classes");
    size_t i;
    json_t *entry;

    json_array_foreach(classes, i, entry) {
        if (strcmp(json_string_value(json_object_get(entry, "class")), name) == 0)
            return entry;
    }
    fail_msg("class %s missing from /api/v1/retention", name);
    return NULL;
}

static void test_retention_reports_limits(void **state)
{
    fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/retention", 200);
    json_t *flows = retention_class(doc, "flows");

    assert_int_equal(json_array_size(json_object_get(doc, "classes")), FV_CLASS_COUNT);
    assert_int_equal(json_int_at(flows, "retention_s"), FLOW_RETENTION_S);
    assert_int_equal(json_int_at(flows, "records"), FLOW_COUNT);
    assert_int_equal(json_int_at(flows, "expired_pending"), 0);
    assert_string_equal(json_string_value(json_object_get(flows, "state")), "ok");
    assert_true(json_is_string(json_object_get(flows, "oldest_stored")));
    assert_true(json_is_null(json_object_get(flows, "last_sweep")));
    assert_int_equal(json_int_at(retention_class(doc, "alerts"), "retention_s"),
                     ALERT_RETENTION_S);
    json_decref(doc);
}

static void test_retention_warns_on_pending(void **state)
{
    fixture *fx = *state;

    atomic_store(&g_now_us, STORED_US + 8 * DAY_S * US_PER_S);
    json_t *doc = get_json(fx, "/api/v1/retention", 200);
    json_t *flows = retention_class(doc, "flows");
    json_t *alerts = retention_class(doc, "alerts");

    assert_int_equal(json_int_at(flows, "records"), 0);
    assert_int_equal(json_int_at(flows, "expired_pending"), FLOW_COUNT);
    assert_string_equal(json_string_value(json_object_get(flows, "state")), "warning");
    assert_string_equal(json_string_value(json_object_get(alerts, "state")), "ok");
    json_decref(doc);
}

/* ---- tests: rejections ------------------------------------------------ */

static void test_bad_parameters_rejected(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *target;
        const char *named;  /* the message must name this parameter */
    } cases[] = {
        {"/api/v1/flows?limit=0", "limit"},
        {"/api/v1/flows?limit=1001", "limit"},
        {"/api/v1/flows?limit=abc", "limit"},
        {"/api/v1/flows?limit=-5", "limit"},
        {"/api/v1/flows?limit=5&limit=6", "limit"},
        {"/api/v1/flows?limit", "limit"},
        {"/api/v1/flows?from=yesterday", "from"},
        {"/api/v1/flows?from=2026-02-29T00:00:00Z", "from"},   /* 2026 is no leap year */
        {"/api/v1/flows?to=2026-13-01T00:00:00Z", "to"},
        {"/api/v1/flows?from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z", "from"},
        {"/api/v1/flows?cursor=zzz", "cursor"},
        {"/api/v1/flows?cursor=a0000000000000001", "cursor"}, /* asc cursor, desc order */
        {"/api/v1/flows?cursor=d0000000000000001%00", "cursor"},
        {"/api/v1/flows?order=newest", "order"},
        {"/api/v1/flows?colour=blue", "colour"},
        {"/api/v1/health?verbose=1", "verbose"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = get_json(fx, cases[i].target, 400);
        const char *message = json_string_value(json_object_get(doc, "message"));

        assert_string_equal(json_string_value(json_object_get(doc, "error")),
                            "invalid_parameter");
        assert_non_null(message);
        if (strstr(message, cases[i].named) == NULL)
            fail_msg("%s: message '%s' does not name '%s'", cases[i].target, message,
                     cases[i].named);
        json_decref(doc);
    }
}

static void test_counters_route_reports_capture(void **state)
{
    const fixture *fx = *state;
    json_t *doc = get_json(fx, "/api/v1/counters", 200);
    json_t *capture = json_object_get(doc, "capture");

    assert_non_null(capture);
    assert_int_equal(json_int_at(capture, "packets"), 500);
    assert_int_equal(json_int_at(capture, "dns_malformed"), 7);
    assert_int_equal(json_object_size(capture), 2);
    json_decref(doc);

    /* Like the other summary routes, it takes no parameters. */
    json_decref(get_json(fx, "/api/v1/counters?limit=5", 400));
}

/* The verify route walks the chain as it stands before its own entry is
 * appended: its head is the entry of the request just before it, which a
 * later /api/v1/audit page shows with the same hash. */
static void test_audit_verify_reports_chain_head(void **state)
{
    fixture *fx = *state;

    json_decref(get_json(fx, "/api/v1/health", 200));
    json_decref(get_json(fx, "/api/v1/flows?limit=3", 200));

    json_t *verify = get_json(fx, "/api/v1/audit/verify", 200);
    assert_true(json_is_true(json_object_get(verify, "ok")));
    /* Two entries so far: health and flows. */
    assert_int_equal(json_int_at(verify, "checked"), 2);
    assert_int_equal(json_int_at(verify, "first_seq"), 1);
    assert_int_equal(json_int_at(verify, "head_seq"), 2);
    assert_true(json_is_null(json_object_get(verify, "broken_seq")));
    assert_true(json_is_null(json_object_get(verify, "reason")));
    char head_hash[65];
    const char *head_text = json_string_value(json_object_get(verify, "head_hash"));
    assert_non_null(head_text);
    assert_int_equal(strlen(head_text), 64);
    snprintf(head_hash, sizeof head_hash, "%s", head_text);

    /* Newest first: the verify request (seq 3), then flows (seq 2). */
    json_t *page = get_json(fx, "/api/v1/audit?limit=2", 200);
    json_t *entries = json_object_get(page, "entries");
    assert_int_equal(json_array_size(entries), 2);
    json_t *verify_entry = json_array_get(entries, 0);
    json_t *flows_entry = json_array_get(entries, 1);
    assert_string_equal(json_string_value(json_object_get(verify_entry, "object")),
                        "/api/v1/audit/verify");
    assert_int_equal(json_int_at(flows_entry, "seq"), 2);
    assert_string_equal(json_string_value(json_object_get(flows_entry, "hash")), head_hash);
    json_decref(page);
    json_decref(verify);

    /* A second walk covers the two entries added since. */
    verify = get_json(fx, "/api/v1/audit/verify", 200);
    assert_true(json_is_true(json_object_get(verify, "ok")));
    assert_int_equal(json_int_at(verify, "checked"), 4);
    assert_string_not_equal(json_string_value(json_object_get(verify, "head_hash")), head_hash);
    json_decref(verify);

    /* It takes no parameters. */
    json_t *bad = get_json(fx, "/api/v1/audit/verify?limit=5", 400);
    assert_string_equal(json_string_value(json_object_get(bad, "error")), "invalid_parameter");
    json_decref(bad);
}

static void test_unknown_api_path_404(void **state)
{
    fixture *fx = *state;
    static const char *const targets[] = {"/api/v1/nothing", "/api", "/api/v2/flows",
                                          "/api/v1/flows/extra", "/api/v1/"};

    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        json_t *doc = get_json(fx, targets[i], 404);
        assert_string_equal(json_string_value(json_object_get(doc, "error")), "not_found");
        json_decref(doc);
    }
}

static void test_post_rejected_405(void **state)
{
    fixture *fx = *state;
    http_reply r;
    char request[512];

    /* An authenticated POST to a read-only route. */
    snprintf(request, sizeof request,
             "POST /api/v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n"
             "Content-Length: 0\r\n\r\n",
             g_auth);
    http_raw(fx->port, request, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.body, "\"method_not_allowed\""));
    http_reply_free(&r);

    /* Static files only accept GET and HEAD, and say so. */
    http_raw(fx->port,
             "POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "Content-Length: 0\r\n\r\n",
             &r);
    assert_int_equal(r.status, 405);
    char *allow = http_header(&r, "Allow");
    assert_non_null(allow);
    assert_string_equal(allow, "GET, HEAD");
    free(allow);
    http_reply_free(&r);

    http_request(fx->port, "DELETE", "/api/v1/alerts", &r);
    assert_int_equal(r.status, 405);
    http_reply_free(&r);
}

static void test_get_with_body_rejected_413(void **state)
{
    fixture *fx = *state;
    http_reply r;

    /* A GET announcing a 5-byte body "hello". */
    http_raw(fx->port,
             "GET /api/v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "Content-Length: 5\r\n\r\nhello",
             &r);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"body_not_allowed\""));
    http_reply_free(&r);
}

/*
 * Two requests on one connection: the first without "Connection: close"
 * must be answered without closing the connection, so the second request
 * gets its own reply on the same socket. A dashboard page load and any
 * API client rely on this; a server that closes after every reply pays a
 * TCP handshake per request and, under load, runs into its own per-address
 * connection limit.
 */
static void test_keep_alive_serves_second_request(void **state)
{
    fixture *fx = *state;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(fx->port)};
    struct timeval timeout = {.tv_sec = 10};
    char first[1024], second[1024];
    char buf[65536];
    size_t len = 0;

    snprintf(first, sizeof first, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
             g_auth);
    snprintf(second, sizeof second,
             "GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
             g_auth);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);

    /* Send the first request and read its whole reply (Content-Length). */
    assert_int_equal(send(fd, first, strlen(first), MSG_NOSIGNAL), (ssize_t)strlen(first));
    const char *end = NULL;
    long body_len = -1;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(buf, "\r\nContent-Length:");
            assert_non_null(cl);
            body_len = strtol(cl + 17, NULL, 10);
            if ((long)(len - (size_t)(end + 4 - buf)) >= body_len)
                break;
        }
    }
    assert_int_equal(strncmp(buf, "HTTP/1.1 200", 12), 0);
    const char *conn_close = strstr(buf, "\r\nConnection: close");
    if (conn_close != NULL && conn_close < end)
        fail_msg("the server closes the connection after a plain GET:\n%s", buf);

    /* The same socket carries the second request. */
    assert_int_equal(send(fd, second, strlen(second), MSG_NOSIGNAL), (ssize_t)strlen(second));
    len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        fail_msg("no reply to the second request on a kept-alive connection: '%s'", buf);
    assert_non_null(strstr(buf, "\"flows\""));
}

static void test_path_traversal_never_leaks(void **state)
{
    fixture *fx = *state;
    static const char *const targets[] = {
        "/../secret.html",          "/%2e%2e/secret.html",     "/%2E%2E%2Fsecret.html",
        "/..%2fsecret.html",        "//etc/passwd",            "/..%5csecret.html",
        "/..\\secret.html",         "/link.html",              "/.hidden.html",
        "/index.html%00.png",       "/web/index.html",         "/./index.html",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/etc/passwd",      "/index.html/",
    };

    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        http_reply r;

        http_request(fx->port, "GET", targets[i], &r);
        if (r.status != 404 && r.status != 400)
            fail_msg("%s: status %d", targets[i], r.status);
        assert_false(tu_memmem_found(r.raw, r.raw_len, SECRET_TEXT, strlen(SECRET_TEXT)));
        assert_false(tu_memmem_found(r.raw, r.raw_len, "root:", 5));
        http_reply_free(&r);
    }
}

static void check_security_headers(const http_reply *r, const char *cache_control)
{
    static const struct {
        const char *name, *value;
    } expected[] = {
        {"Content-Security-Policy", EXPECTED_CSP},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
    };

    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        char *value = http_header(r, expected[i].name);
        if (value == NULL)
            fail_msg("header %s missing", expected[i].name);
        assert_string_equal(value, expected[i].value);
        free(value);
    }
    if (cache_control != NULL) {
        char *value = http_header(r, "Cache-Control");
        assert_non_null(value);
        assert_string_equal(value, cache_control);
        free(value);
    }
}

static void test_security_headers_present(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *method, *target, *cache_control;
    } cases[] = {
        {"GET", "/api/v1/health", "no-store"},
        {"GET", "/api/v1/flows?limit=0", "no-store"},
        {"GET", "/api/v1/missing", "no-store"},
        {"POST", "/api/v1/health", "no-store"},
        {"GET", "/", NULL},
        {"GET", "/missing.html", NULL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_reply r;

        http_request(fx->port, cases[i].method, cases[i].target, &r);
        check_security_headers(&r, cases[i].cache_control);
        http_reply_free(&r);
    }
}

static void test_static_index_served(void **state)
{
    fixture *fx = *state;
    http_reply r;

    http_request(fx->port, "GET", "/", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(INDEX_TEXT));
    assert_memory_equal(r.body, INDEX_TEXT, r.body_len);
    char *type = http_header(&r, "Content-Type");
    assert_non_null(type);
    assert_string_equal(type, "text/html; charset=utf-8");
    free(type);
    http_reply_free(&r);

    http_request(fx->port, "GET", "/app.js", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(SCRIPT_TEXT));
    type = http_header(&r, "Content-Type");
    assert_non_null(type);
    assert_string_equal(type, "text/javascript; charset=utf-8");
    free(type);
    http_reply_free(&r);
}

static void test_head_sends_no_body(void **state)
{
    fixture *fx = *state;
    http_reply r;

    http_request(fx->port, "HEAD", "/api/v1/health", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    char *type = http_header(&r, "Content-Type");
    assert_non_null(type);
    assert_string_equal(type, "application/json; charset=utf-8");
    free(type);
    http_reply_free(&r);
}

static void test_invalid_listen_address_rejected(void **state)
{
    fixture *fx = *state;
    api_server *srv = NULL;
    char err[256] = "";
    api_config cfg = {.store = fx->store, .listen_addr = "local-host", .port = 0};

    assert_int_equal(api_server_start(&cfg, &srv, err, sizeof err), FV_ERR_INVALID);
    assert_null(srv);
    assert_non_null(strstr(err, "local-host"));

    cfg.listen_addr = "127.0.0.1";
    cfg.web_root = "/nonexistent/flowveil-web";
    assert_int_equal(api_server_start(&cfg, &srv, err, sizeof err), FV_ERR_IO);
    assert_null(srv);
}

static void test_ipv6_loopback_listens(void **state)
{
    fixture *fx = *state;
    api_server *srv = NULL;
    char err[256] = "";
    api_config cfg = {.store = fx->store, .listen_addr = "::1", .port = 0};
    int rc = api_server_start(&cfg, &srv, err, sizeof err);

    /* Hosts without IPv6 loopback cannot bind ::1; that is not our bug. */
    if (rc == FV_ERR_IO) {
        skip();
        return;
    }
    assert_int_equal(rc, FV_OK);
    assert_true(api_server_port(srv) != 0);
    api_server_stop(&srv);
    assert_null(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_reports_ok, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_counters_route_reports_capture, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_summary_counts_match_store, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_summary_reused_within_one_second, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_flows_paging_returns_each_once, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_flows_page_size_is_exact, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_flows_time_filter, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_expired_records_not_returned, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_retention_reports_limits, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_retention_warns_on_pending, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bad_parameters_rejected, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_verify_reports_chain_head, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_api_path_404, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_post_rejected_405, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_get_with_body_rejected_413, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_serves_second_request, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_path_traversal_never_leaks, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_security_headers_present, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_static_index_served, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_head_sends_no_body, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_dhcp_and_ssh_routes_return_records, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_listen_address_rejected, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_loopback_listens, fixture_setup,
                                        fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
