/*
 * test_demo_alerts: the demo capture, ingested with the example policy,
 * raises exactly one beacon alert (to 203.0.113.50 port 443) and exactly
 * one exfiltration alert (to 198.51.100.77), each about a pseudonymized
 * internal host.
 */
#include <ctype.h>
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

#define DEMO_NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */

/* Return 1 if TEXT is a typed host pseudonym: "ip4-" or "ip6-" followed
 * by 16 lowercase base32 characters (a-z, 2-7). */
static int is_host_token(const char *text)
{
    if (text == NULL || (strncmp(text, "ip4-", 4) != 0 && strncmp(text, "ip6-", 4) != 0))
        return 0;
    if (strlen(text) != 4 + 16)
        return 0;
    for (const char *p = text + 4; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
            return 0;
    }
    return 1;
}

static void generate_demo(const char *dir, char out_path[4096])
{
    e2e_path(out_path, dir, "demo.pcap");
    const char *argv[] = {e2e_demogen(), "--output", out_path, NULL};
    e2e_result res;
    e2e_run(argv, dir, "demogen", 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("demo generator", &res);
        e2e_result_free(&res);
        fail_msg("the demo generator failed");
    }
    e2e_result_free(&res);
}

static void test_demo_raises_beacon_and_exfil(void **state)
{
    (void)state;
    char dir[4096], demo[4096], db[4096], policy[4096];
    tu_make_temp_dir(dir, sizeof dir);
    generate_demo(dir, demo);
    e2e_path(db, dir, "db");
    snprintf(policy, sizeof policy, "%s/policy/example-policy.yaml", e2e_source_dir());

    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", DEMO_NOW_S);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                          "--now", now_text, demo, NULL};
    e2e_result res;
    e2e_run(argv, dir, "ingest", 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest of the demo capture", &res);
        e2e_result_free(&res);
        fail_msg("ingest of the demo capture failed");
    }
    e2e_result_free(&res);

    json_t *alerts = e2e_export(dir, db, "alerts", DEMO_NOW_S);
    int beacons = 0, exfils = 0;
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        char *dump = json_dumps(a, JSON_COMPACT);
        printf("alert: %s\n", dump != NULL ? dump : "?");
        free(dump);

        const char *detector = json_string_value(json_object_get(a, "detector"));
        const char *peer = json_string_value(json_object_get(a, "peer"));
        const char *host = json_string_value(json_object_get(a, "host"));
        const char *host_zone = json_string_value(json_object_get(a, "host_zone"));
        assert_non_null(detector);

        /* Every alert is about an internal host, shown only as a pseudonym. */
        assert_true(is_host_token(host));
        assert_non_null(host_zone);
        assert_string_not_equal(host_zone, "external");

        if (strcmp(detector, "beacon") == 0) {
            beacons++;
            assert_non_null(peer);
            assert_string_equal(peer, "203.0.113.50");
            assert_int_equal(json_integer_value(json_object_get(a, "peer_port")), 443);
        } else if (strcmp(detector, "exfil") == 0) {
            exfils++;
            assert_non_null(peer);
            assert_string_equal(peer, "198.51.100.77");
        } else {
            fail_msg("unexpected detector \"%s\"", detector);
        }
    }
    json_decref(alerts);

    assert_int_equal(beacons, 1);
    assert_int_equal(exfils, 1);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_raises_beacon_and_exfil),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
