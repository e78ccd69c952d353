/*
 * test_user_agent_cli: the HTTP User-Agent of a client inside a zone
 * keeps only its product tokens, and one of a client outside every zone
 * is stored as sent. Ingests the public Emotet capture, whose clients
 * are 10.x hosts (see its tshark reference in the corpus).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define NOW_S 1767225600ull     /* 2026-01-01T00:00:00Z */

/* Edge on Windows, as the capture's client 10.3.29.101 sent it, in the
 * stored form where each space is the escape \032. */
#define EDGE_SENT                                                                         \
    "Mozilla/5.0\\032(Windows\\032NT\\03210.0;\\032Win64;\\032x64)\\032"                  \
    "AppleWebKit/537.36\\032(KHTML,\\032like\\032Gecko)\\032Chrome/99.0.4844.74\\032"      \
    "Safari/537.36\\032Edg/99.0.1150.55"
#define EDGE_KEPT                                                                         \
    "Mozilla/5.0\\032(redacted)\\032AppleWebKit/537.36\\032(redacted)\\032"                \
    "Chrome/99.0.4844.74\\032Safari/537.36\\032Edg/99.0.1150.55"
#define SPACE "\\032"

/* Ingest the Emotet capture under a policy with zones ZONES_YAML and
 * return the exported http records. */
static json_t *ingest_http(const char *dir, const char *name, const char *zones_yaml)
{
    char db[4096], policy[4096], capture[4096], policy_name[64];
    e2e_path(db, dir, name);
    snprintf(policy_name, sizeof policy_name, "%s.yaml", name);
    e2e_path(policy, dir, policy_name);
    e2e_write_policy(policy, zones_yaml, "30d");
    snprintf(capture, sizeof capture, "%s/pcaps/ndpi-emotet.pcap", e2e_corpus());

    char now[32];
    snprintf(now, sizeof now, "%llu", NOW_S);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", now, capture, NULL};
    e2e_result res;
    e2e_run(ingest, dir, name, 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(name, &res);
        e2e_result_free(&res);
        fail_msg("ingest %s failed", name);
    }
    e2e_result_free(&res);
    return e2e_export(dir, db, "http", NOW_S);
}

/* Count the records whose user_agent equals UA. */
static size_t count_user_agent(json_t *records, const char *ua)
{
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *value = json_string_value(json_object_get(r, "user_agent"));
        if (value != NULL && strcmp(value, ua) == 0)
            n++;
    }
    return n;
}

static void test_internal_client_keeps_products_only(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);

    json_t *as_sent = ingest_http(dir, "no-zones", "[]");
    json_t *reduced = ingest_http(dir, "office", "[{name: office, networks: [\"10.0.0.0/8\"]}]");
    assert_true(json_array_size(as_sent) > 0);
    assert_int_equal(json_array_size(reduced), json_array_size(as_sent));

    /* Without zones nothing is internal: the browser's value is intact. */
    size_t edge = count_user_agent(as_sent, EDGE_SENT);
    assert_true(edge > 0);
    assert_int_equal(count_user_agent(as_sent, EDGE_KEPT), 0);

    /* With the clients in a zone the comments go and the products stay. */
    assert_int_equal(count_user_agent(reduced, EDGE_SENT), 0);
    assert_int_equal(count_user_agent(reduced, EDGE_KEPT), edge);

    /* No internal client's value keeps a comment or a bare word. */
    size_t i;
    json_t *r;
    json_array_foreach(reduced, i, r) {
        const char *ua = json_string_value(json_object_get(r, "user_agent"));
        assert_non_null(ua);
        char *copy = strdup(ua);
        assert_non_null(copy);
        for (char *word = copy; *word != '\0';) {
            char *space = strstr(word, SPACE);
            if (space != NULL)
                *space = '\0';
            if (strcmp(word, "(redacted)") != 0 && strchr(word, '/') == NULL) {
                fprintf(stderr, "kept word \"%s\" in \"%s\"\n", word, ua);
                fail();
            }
            if (space == NULL)
                break;
            word = space + strlen(SPACE);
        }
        free(copy);
    }
    json_decref(as_sent);
    json_decref(reduced);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internal_client_keeps_products_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
