/*
 * test_api_openapi.c: docs/openapi.yaml against the server.
 *
 * The document is parsed with libyaml. The set of (method, path) pairs
 * under "paths" must equal the route table (api_route_table), and every
 * operation's roles (x-roles) must equal the table's. Each route is then
 * called on a real server (127.0.0.1 port 0, real LMDB store). It must
 * return its first documented 2xx status, and the JSON reply must contain
 * the documented required top-level members. Routes that read query
 * parameters must list exactly the documented ones in their 400 reply
 * for an unknown parameter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <jansson.h>
#include <yaml.h>

#include "api_internal.h"
#include "apitest.h"
#include "testutil.h"

#define US APITEST_US_PER_S
#define T0_US (1796025600ull * US)     /* 2026-11-30T08:00:00Z, traffic */
#define STORED_US (1796083200ull * US) /* 2026-12-01T00:00:00Z */

static const char LOGIN_PASSWORD[] = "openapi-password-1";

static yaml_document_t g_doc;
static apitest g_t;
static uint64_t g_alert_id;
static char g_host[FV_ENDPOINT_TEXT_MAX];

/* ---- YAML helpers ----------------------------------------------------------- */

static yaml_node_t *node_at(int index)
{
    return yaml_document_get_node(&g_doc, index);
}

static bool scalar_is(const yaml_node_t *n, const char *text)
{
    return n != NULL && n->type == YAML_SCALAR_NODE &&
           n->data.scalar.length == strlen(text) &&
           memcmp(n->data.scalar.value, text, n->data.scalar.length) == 0;
}

/* Value of KEY in mapping N, or NULL. */
static yaml_node_t *map_get(const yaml_node_t *n, const char *key)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        if (scalar_is(node_at(p->key), key))
            return node_at(p->value);
    }
    return NULL;
}

static const char *scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Follow a {$ref: "#/components/..."} to its node. */
static yaml_node_t *resolve(yaml_node_t *n)
{
    const char *ref = scalar(map_get(n, "$ref"));
    if (ref == NULL)
        return n;
    assert_true(strncmp(ref, "#/", 2) == 0);
    yaml_node_t *cur = yaml_document_get_root_node(&g_doc);
    char part[128];
    const char *p = ref + 2;
    while (*p != '\0') {
        size_t len = strcspn(p, "/");
        assert_true(len < sizeof part);
        memcpy(part, p, len);
        part[len] = '\0';
        cur = map_get(cur, part);
        if (cur == NULL)
            fail_msg("unresolved reference %s", ref);
        p += len;
        if (*p == '/')
            p++;
    }
    return cur;
}

static void upper(const char *in, char *out, size_t out_len)
{
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < out_len; i++)
        out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 'a' + 'A' : in[i]);
    out[i] = '\0';
}

static const char *const http_methods[] = {"get", "post", "patch", "put", "delete", NULL};

/* ---- fixture ---------------------------------------------------------------- */

static int test_compliance(void *ctx, store_env *store, const char *document, uint64_t from_us,
                           uint64_t to_us, uint64_t now_us, char **out_json)
{
    (void)ctx;
    (void)store;
    (void)from_us;
    (void)to_us;
    (void)now_us;
    char buf[128];
    snprintf(buf, sizeof buf, "{\"document\": \"%s\"}", document);
    *out_json = strdup(buf);
    return *out_json != NULL ? FV_OK : FV_ERR_NOMEM;
}

static int group_setup(void **state)
{
    (void)state;
    yaml_parser_t parser;
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/openapi.yaml", tu_env("FLOWVEIL_SOURCE_DIR", "."));
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s; set FLOWVEIL_SOURCE_DIR", path);
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &g_doc))
        fail_msg("%s: YAML error at line %zu: %s", path, parser.problem_mark.line + 1,
                 parser.problem != NULL ? parser.problem : "?");
    yaml_parser_delete(&parser);
    fclose(f);

    apitest_set_now(STORED_US + 60 * US);
    apitest_open(&g_t);
    g_t.compliance_fn = test_compliance;

    fv_flow_record fl;
    memset(&fl, 0, sizeof fl);
    fl.first_us = fl.last_us = T0_US;
    apitest_internal(&fl.src, 1, "office");
    apitest_external(&fl.dst, 198, 51, 100, 7); /* 198.51.100.7, TEST-NET-2 */
    fl.sport = 40000;
    fl.dport = 443;
    fl.proto = 6;
    fl.bytes_fwd = 100;
    assert_int_equal(store_put(g_t.store, FV_CLASS_FLOW, &fl, STORED_US), FV_OK);
    assert_int_equal(store_commit(g_t.store), FV_OK);
    apitest_endpoint_text(&fl.src, g_host);

    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = a.first_us = a.last_us = T0_US;
    a.detector = FV_DET_BEACON;
    a.severity = FV_SEV_LOW;
    a.host = fl.src;
    a.peer = fl.dst;
    a.peer_port = 443;
    a.proto = 6;
    assert_int_equal(store_alert_upsert(g_t.store, &a, 3600, STORED_US, &g_alert_id, NULL),
                     FV_OK);

    store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "olga");
    u.role = STORE_ROLE_ANALYST;
    u.created_us = u.changed_us = STORED_US;
    assert_int_equal(store_password_hash(LOGIN_PASSWORD, u.pwhash), FV_OK);
    assert_int_equal(store_user_put(g_t.store, &u, true), FV_OK);
    apitest_start(&g_t);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    apitest_close(&g_t);
    yaml_document_delete(&g_doc);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_document_is_openapi_303(void **state)
{
    (void)state;
    yaml_node_t *root = yaml_document_get_root_node(&g_doc);
    assert_non_null(root);
    assert_string_equal(scalar(map_get(root, "openapi")), "3.0.3");
    assert_non_null(map_get(map_get(map_get(root, "components"), "schemas"), "Error"));
}

static void test_document_routes_equal_route_table(void **state)
{
    (void)state;
    size_t count = 0;
    const api_route *table = api_route_table(&count);
    bool *matched = calloc(count, sizeof *matched);
    assert_non_null(matched);
    yaml_node_t *paths = map_get(yaml_document_get_root_node(&g_doc), "paths");
    assert_non_null(paths);
    assert_int_equal(paths->type, YAML_MAPPING_NODE);

    size_t documented = 0;
    for (yaml_node_pair_t *p = paths->data.mapping.pairs.start; p < paths->data.mapping.pairs.top;
         p++) {
        const char *path = scalar(node_at(p->key));
        assert_non_null(path);
        yaml_node_t *item = node_at(p->value);
        for (size_t m = 0; http_methods[m] != NULL; m++) {
            yaml_node_t *op = map_get(item, http_methods[m]);
            if (op == NULL)
                continue;
            char method[16];
            upper(http_methods[m], method, sizeof method);
            documented++;
            size_t i = 0;
            while (i < count &&
                   !(strcmp(table[i].method, method) == 0 && strcmp(table[i].pattern, path) == 0))
                i++;
            if (i == count)
                fail_msg("%s %s is documented but not a route", method, path);
            matched[i] = true;

            /* x-roles names the same roles as the table. */
            yaml_node_t *roles = map_get(op, "x-roles");
            assert_non_null(roles);
            unsigned mask = 0;
            for (yaml_node_item_t *r = roles->data.sequence.items.start;
                 r < roles->data.sequence.items.top; r++) {
                const char *name = scalar(node_at(*r));
                assert_non_null(name);
                if (strcmp(name, "analyst") == 0)
                    mask |= API_ROLE_ANALYST;
                else if (strcmp(name, "compliance") == 0)
                    mask |= API_ROLE_COMPLIANCE;
                else if (strcmp(name, "admin") == 0)
                    mask |= API_ROLE_ADMIN;
            }
            /* Login is for anyone; the table marks it for every role. */
            if (strcmp(path, "/api/v1/login") != 0 && mask != table[i].roles)
                fail_msg("%s %s: x-roles %u, route table %u", method, path, mask,
                         table[i].roles);
            assert_non_null(map_get(op, "responses"));
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (!matched[i])
            fail_msg("route %s %s is missing from docs/openapi.yaml", table[i].method,
                     table[i].pattern);
    }
    assert_int_equal(documented, count);
    free(matched);
}

/* Write PATTERN with its {param} replaced into OUT. */
static void fill_path(const char *pattern, char *out, size_t out_len)
{
    const char *open = strchr(pattern, '{');
    if (open == NULL) {
        snprintf(out, out_len, "%s", pattern);
        return;
    }
    const char *close = strchr(open, '}');
    char value[64];
    if (strncmp(open, "{id}", 4) == 0)
        snprintf(value, sizeof value, "%llu", (unsigned long long)g_alert_id);
    else
        snprintf(value, sizeof value, "%s", g_host);
    snprintf(out, out_len, "%.*s%s%s", (int)(open - pattern), pattern, value, close + 1);
}

/* The first 2xx status of OP's responses, and its JSON schema (or NULL). */
static int success_of(yaml_node_t *op, yaml_node_t **schema)
{
    yaml_node_t *responses = map_get(op, "responses");
    *schema = NULL;
    for (yaml_node_pair_t *p = responses->data.mapping.pairs.start;
         p < responses->data.mapping.pairs.top; p++) {
        const char *code = scalar(node_at(p->key));
        if (code == NULL || code[0] != '2')
            continue;
        yaml_node_t *resp = resolve(node_at(p->value));
        yaml_node_t *json = map_get(map_get(resp, "content"), "application/json");
        if (json != NULL)
            *schema = resolve(map_get(json, "schema"));
        return atoi(code);
    }
    fail_msg("an operation documents no 2xx response");
    return 0;
}

/* Documented query parameter names of OP and its path item, "a, b". */
static void query_names(yaml_node_t *item, yaml_node_t *op, char *out, size_t out_len,
                        size_t *count)
{
    out[0] = '\0';
    *count = 0;
    yaml_node_t *lists[2] = {map_get(item, "parameters"), map_get(op, "parameters")};
    for (int l = 0; l < 2; l++) {
        if (lists[l] == NULL)
            continue;
        for (yaml_node_item_t *i = lists[l]->data.sequence.items.start;
             i < lists[l]->data.sequence.items.top; i++) {
            yaml_node_t *param = resolve(node_at(*i));
            const char *in = scalar(map_get(param, "in"));
            if (in == NULL || strcmp(in, "query") != 0)
                continue;
            size_t used = strlen(out);
            snprintf(out + used, out_len - used, "%s%s", *count > 0 ? ", " : "",
                     scalar(map_get(param, "name")));
            (*count)++;
        }
    }
}

/* True if the lists "a, b, c" A and B hold the same names in any order. */
static bool same_name_set(const char *a, const char *b)
{
    size_t na = 1, nb = 1;
    for (const char *p = a; *p != '\0'; p++)
        na += *p == ',';
    for (const char *p = b; *p != '\0'; p++)
        nb += *p == ',';
    if (na != nb)
        return false;
    for (const char *p = b; *p != '\0';) {
        size_t len = strcspn(p, ",");
        bool found = false;
        for (const char *q = a; *q != '\0' && !found;) {
            size_t qlen = strcspn(q, ",");
            found = qlen == len && strncmp(p, q, len) == 0;
            q += qlen;
            while (*q == ',' || *q == ' ')
                q++;
        }
        if (!found)
            return false;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return true;
}

static void check_members(const char *what, json_t *doc, yaml_node_t *schema)
{
    yaml_node_t *required = map_get(schema, "required");
    if (required == NULL)
        return;
    for (yaml_node_item_t *i = required->data.sequence.items.start;
         i < required->data.sequence.items.top; i++) {
        const char *name = scalar(node_at(*i));
        assert_non_null(name);
        if (json_object_get(doc, name) == NULL)
            fail_msg("%s: documented member '%s' is missing", what, name);
    }
}

static void test_each_route_answers_as_documented(void **state)
{
    (void)state;
    yaml_node_t *paths = map_get(yaml_document_get_root_node(&g_doc), "paths");
    char session_headers[512] = "";
    size_t routes_called = 0;

    /* Log in first: logout needs the session (and runs last). */
    {
        apitest_reply r;
        char body[128];
        snprintf(body, sizeof body, "{\"user\": \"olga\", \"password\": \"%s\"}", LOGIN_PASSWORD);
        apitest_http_headers(&g_t, "POST", "/api/v1/login", "", body, &r);
        assert_int_equal(r.status, 200);
        char *cookie = apitest_header(&r, "Set-Cookie");
        assert_non_null(cookie);
        json_t *doc = json_loadb(r.body, r.body_len, 0, NULL);
        assert_non_null(doc);
        size_t semi = strcspn(cookie, ";");
        snprintf(session_headers, sizeof session_headers, "Cookie: %.*s\r\nX-CSRF-Token: %s\r\n",
                 (int)semi, cookie, json_string_value(json_object_get(doc, "csrf_token")));
        json_decref(doc);
        free(cookie);
        apitest_reply_free(&r);
    }

    for (yaml_node_pair_t *p = paths->data.mapping.pairs.start; p < paths->data.mapping.pairs.top;
         p++) {
        const char *pattern = scalar(node_at(p->key));
        assert_non_null(pattern);
        yaml_node_t *item = node_at(p->value);
        for (size_t m = 0; http_methods[m] != NULL; m++) {
            yaml_node_t *op = map_get(item, http_methods[m]);
            if (op == NULL)
                continue;
            char method[16], target[256], what[320];
            upper(http_methods[m], method, sizeof method);
            fill_path(pattern, target, sizeof target);
            snprintf(what, sizeof what, "%s %s", method, target);

            const char *headers = g_t.auth[APITEST_ADMIN];
            const char *body = NULL;
            char login_body[128];
            if (strcmp(pattern, "/api/v1/login") == 0) {
                snprintf(login_body, sizeof login_body,
                         "{\"user\": \"olga\", \"password\": \"%s\"}", LOGIN_PASSWORD);
                body = login_body;
                headers = "";
            } else if (strcmp(pattern, "/api/v1/logout") == 0) {
                continue; /* after the loop, so the session stays usable */
            } else if (strcmp(method, "PATCH") == 0) {
                body = "{\"state\": \"acknowledged\"}";
            }

            yaml_node_t *schema = NULL;
            int want = success_of(op, &schema);
            apitest_reply r;
            apitest_http_headers(&g_t, method, target, headers, body, &r);
            if (r.status != want)
                fail_msg("%s: status %d, documented %d; body %s", what, r.status, want, r.body);
            if (schema != NULL) {
                json_t *doc = json_loadb(r.body, r.body_len, 0, NULL);
                if (doc == NULL)
                    fail_msg("%s: reply is not JSON", what);
                check_members(what, doc, schema);
                json_decref(doc);
            } else {
                char *type = apitest_header(&r, "Content-Type");
                assert_non_null(type);
                assert_true(strncmp(type, "text/plain", 10) == 0);
                free(type);
            }
            apitest_reply_free(&r);
            routes_called++;

            /* Routes of the route layer list their query parameters in
             * the 400 reply for an unknown one: it must match the document. */
            size_t count = 0;
            char names[512], unknown[300];
            query_names(item, op, names, sizeof names, &count);
            if (strcmp(method, "GET") == 0 && strncmp(pattern, "/api/v1/", 8) == 0 &&
                strcmp(pattern, "/api/v1/me") != 0 && strcmp(pattern, "/api/v1/users") != 0) {
                snprintf(unknown, sizeof unknown, "%s?zz_unknown=1", target);
                json_t *doc = apitest_json(&g_t, "GET", unknown, APITEST_ADMIN, NULL, 400);
                const char *message = json_string_value(json_object_get(doc, "message"));
                assert_non_null(message);
                if (count == 0) {
                    if (strstr(message, "takes no parameters") == NULL)
                        fail_msg("%s: undocumented parameters? %s", what, message);
                } else {
                    const char *allowed = strstr(message, "allowed: ");
                    if (allowed == NULL || !same_name_set(allowed + 9, names))
                        fail_msg("%s: server allows '%s', document lists '%s'", what,
                                 allowed != NULL ? allowed + 9 : message, names);
                }
                json_decref(doc);
            }
        }
    }

    /* Logout ends the session: 204 without a body. */
    apitest_reply r;
    apitest_http_headers(&g_t, "POST", "/api/v1/logout", session_headers, NULL, &r);
    assert_int_equal(r.status, 204);
    apitest_reply_free(&r);
    routes_called++;

    size_t table_count = 0;
    (void)api_route_table(&table_count);
    assert_int_equal(routes_called, table_count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_is_openapi_303),
        cmocka_unit_test(test_document_routes_equal_route_table),
        cmocka_unit_test(test_each_route_answers_as_documented),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
