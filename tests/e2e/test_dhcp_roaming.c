/*
 * test_dhcp_roaming: a DHCP client that first requests its old address
 * from another network, then for one in a zone, keeps one MAC pseudonym
 * across both exchanges. With any zone in the policy, its host name must
 * therefore be a token in every record, or the token and the clear name
 * would be linked through the MAC pseudonym.
 *
 * zeek-dhcp.pcap holds exactly that: DISCOVER and REQUEST for
 * 192.168.211.194 with host name "btest.is.cool", a NAK, then a REQUEST
 * for an address in 128.2.0.0/16 with the same host name.
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

#define NOW_S 1800000000ull   /* ingest and export time, 2027-01-15 */

/* Ingest zeek-dhcp.pcap under a policy with zones ZONES_YAML and return
 * the exported dhcp records. */
static json_t *ingest_dhcp(const char *dir, const char *zones_yaml)
{
    char db[4096], policy[4096], capture[4096], now[32];
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    e2e_write_policy(policy, zones_yaml, "3650d");
    snprintf(capture, sizeof capture, "%s/pcaps/zeek-dhcp.pcap", e2e_corpus());
    snprintf(now, sizeof now, "%llu", NOW_S);

    e2e_result res;
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                            "--now", now, "--allow-future-now", capture, NULL};
    e2e_run(ingest, dir, "ingest", 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("ingest", &res);
        e2e_result_free(&res);
        fail_msg("flowveil ingest of zeek-dhcp.pcap failed");
    }
    e2e_result_free(&res);
    return e2e_export(dir, db, "dhcp", NOW_S);
}

static void test_dhcp_roaming_host_name_always_token(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    json_t *records = ingest_dhcp(dir, "[{name: cmu, networks: [128.2.0.0/16]}]");

    size_t i;
    json_t *r;
    size_t with_name = 0, outside_request = 0;
    json_array_foreach(records, i, r) {
        const char *name = json_string_value(json_object_get(r, "hostname"));
        const char *req = json_string_value(json_object_get(r, "requested_ip"));
        assert_non_null(name);
        assert_non_null(req);
        if (name[0] != '\0') {
            with_name++;
            assert_string_not_equal(name, "btest.is.cool");
            assert_true(strncmp(name, "name-", 5) == 0);
        }
        if (strcmp(req, "192.168.211.194") == 0)
            outside_request++;
        /* The requested address in the zone is a token, never text. */
        assert_null(strstr(req, "128.2."));
    }
    /* The old address outside the zone stays readable (it is external). */
    assert_true(outside_request >= 2);
    assert_true(with_name >= 3);
    json_decref(records);
    tu_remove_tree(dir);
}

/* Without zones nothing is internal, so the host name stays as sent. */
static void test_dhcp_host_name_kept_without_zones(void **state)
{
    (void)state;
    char dir[4096];
    tu_make_temp_dir(dir, sizeof dir);
    json_t *records = ingest_dhcp(dir, "[]");

    size_t i;
    json_t *r;
    size_t clear = 0;
    json_array_foreach(records, i, r) {
        const char *name = json_string_value(json_object_get(r, "hostname"));
        if (name != NULL && strcmp(name, "btest.is.cool") == 0)
            clear++;
    }
    assert_true(clear >= 3);
    json_decref(records);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dhcp_roaming_host_name_always_token),
        cmocka_unit_test(test_dhcp_host_name_kept_without_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
