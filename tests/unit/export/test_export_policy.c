/*
 * test_export_policy.c: the policy's export section (parsed in
 * policy/pol_parse.c): accepted values and strict rejections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy.h"

static pol_policy *load(const char *export_yaml, char *err, size_t err_len, int *rc)
{
    char text[4096];
    snprintf(text, sizeof text, "version: 1\nzones: []\n%s", export_yaml);
    pol_policy *pol = NULL;
    *rc = pol_load_buffer("test.yaml", text, strlen(text), &pol, err, err_len);
    return pol;
}

static void test_export_policy_parses_destinations(void **state)
{
    (void)state;
    char err[1024];
    int rc;
    pol_policy *pol = load("export:\n"
                           "  destinations:\n"
                           "    - name: soc\n"
                           "      ipfix: 127.0.0.1:4739\n"
                           "      transport: tcp\n"
                           "      classes: [flows, dns]\n"
                           "      template_refresh: 5m\n"
                           "      observation_domain: 7\n"
                           "    - kafka: \"127.0.0.1:9092,[::1]:9093\"\n"
                           "      topic_prefix: site-1.\n"
                           "      queue_max: 5000\n"
                           "      properties: {message.send.max.retries: 5}\n",
                           err, sizeof err, &rc);
    if (rc != FV_OK)
        print_error("%s\n", err);
    assert_int_equal(rc, FV_OK);
    const pol_export *ex = pol_export_config(pol);
    assert_int_equal(ex->count, 2);
    assert_string_equal(ex->dest[0].name, "soc");
    assert_int_equal(ex->dest[0].kind, POL_EXPORT_IPFIX);
    assert_string_equal(ex->dest[0].target, "127.0.0.1:4739");
    assert_true(ex->dest[0].tcp);
    assert_int_equal(ex->dest[0].classes, (1u << FV_CLASS_FLOW) | (1u << FV_CLASS_DNS));
    assert_int_equal(ex->dest[0].template_refresh_s, 300);
    assert_int_equal(ex->dest[0].observation_domain, 7);
    assert_string_equal(ex->dest[1].name, "destination-2");
    assert_int_equal(ex->dest[1].kind, POL_EXPORT_KAFKA);
    assert_string_equal(ex->dest[1].topic_prefix, "site-1.");
    assert_int_equal(ex->dest[1].queue_max, 5000);
    assert_int_equal(ex->dest[1].property_count, 1);
    assert_string_equal(ex->dest[1].properties[0], "message.send.max.retries=5");
    pol_destroy(&pol);

    pol = load("", err, sizeof err, &rc);
    assert_int_equal(rc, FV_OK);
    assert_int_equal(pol_export_config(pol)->count, 0);
    pol_destroy(&pol);
}

static void test_export_policy_allows_security_properties(void **state)
{
    (void)state;
    char err[1024];
    int rc;
    pol_policy *pol = load("export:\n"
                           "  destinations:\n"
                           "    - kafka: 127.0.0.1:9092\n"
                           "      properties: {security.protocol: sasl_ssl, sasl.mechanism: "
                           "SCRAM-SHA-512, sasl.username: fv, ssl.ca.location: /etc/ca.pem,"
                           " acks: all, linger.ms: 50, compression.type: zstd}\n",
                           err, sizeof err, &rc);
    if (rc != FV_OK)
        print_error("%s\n", err);
    assert_int_equal(rc, FV_OK);
    assert_int_equal(pol_export_config(pol)->dest[0].property_count, 7);
    pol_destroy(&pol);
}

static void test_export_policy_summary_names_destinations(void **state)
{
    (void)state;
    char err[1024];
    int rc;
    pol_policy *pol = load("export:\n"
                           "  destinations:\n"
                           "    - {name: lake, kafka: 127.0.0.1:9092, classes: [dns, alerts]}\n"
                           "    - {name: soc, ipfix: 127.0.0.1:4739}\n",
                           err, sizeof err, &rc);
    assert_int_equal(rc, FV_OK);
    char summary[16384];
    assert_int_equal(pol_summary(pol, summary, sizeof summary), FV_OK);
    assert_non_null(strstr(summary, "Export destinations (recipients of records):"));
    assert_non_null(strstr(summary, "  lake: Kafka brokers 127.0.0.1:9092, topics "
                                    "flowveil.<class>, classes: dns, alerts\n"));
    assert_non_null(strstr(summary, "  soc: IPFIX over UDP to 127.0.0.1:4739, classes: every "
                                    "class IPFIX carries"));
    pol_destroy(&pol);
}

static void test_export_policy_rejects_invalid_entries(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *message;
    } cases[] = {
        {"export:\n  destinations:\n    - {ipfix: 127.0.0.1:4739, kafka: 127.0.0.1:9092}\n",
         "either ipfix or kafka, not both"},
        {"export:\n  destinations:\n    - {name: x}\n", "has neither ipfix nor kafka"},
        {"export:\n  destinations:\n    - {ipfix: 127.0.0.1}\n", "is not HOST:PORT"},
        {"export:\n  destinations:\n    - {ipfix: \"127.0.0.1:70000\"}\n", "is not HOST:PORT"},
        {"export:\n  destinations:\n    - {kafka: \"a:1,b\"}\n", "bootstrap server 'b'"},
        {"export:\n  destinations:\n    - {ipfix: 127.0.0.1:4739, classes: [http]}\n",
         "IPFIX export carries flows, dns and tls only"},
        {"export:\n  destinations:\n    - {ipfix: 127.0.0.1:4739, classes: [mail]}\n",
         "is not a record class"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092, transport: tcp}\n",
         "apply to ipfix only"},
        {"export:\n  destinations:\n    - {ipfix: 127.0.0.1:4739, topic_prefix: x}\n",
         "apply to kafka only"},
        {"export:\n  destinations:\n    - {ipfix: 127.0.0.1:4739, transport: sctp}\n",
         "must be udp or tcp"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092, topic_prefix: \"a/b\"}\n",
         "may contain only letters"},
        {"export:\n  destinations:\n    - {name: a, kafka: 127.0.0.1:9092}\n"
         "    - {name: a, kafka: 127.0.0.1:9092}\n",
         "give each destination its own name"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092, colour: red}\n",
         "unknown key"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092,"
         " properties: {bootstrap.servers: x}}\n",
         "not bootstrap.servers"},
        {"export:\n  sinks: []\n", "unknown key"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092,"
         " properties: {plugin.library.paths: /tmp/plug.so}}\n",
         "property 'plugin.library.paths' is not allowed"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092,"
         " properties: {sasl.kerberos.kinit.cmd: /usr/bin/id}}\n",
         "property 'sasl.kerberos.kinit.cmd' is not allowed"},
        {"export:\n  destinations:\n    - {kafka: 127.0.0.1:9092,"
         " properties: {ssl.engine.location: /tmp/e.so}}\n",
         "property 'ssl.engine.location' is not allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[1024];
        int rc;
        pol_policy *pol = load(cases[i].yaml, err, sizeof err, &rc);
        assert_int_equal(rc, FV_ERR_PARSE);
        assert_null(pol);
        if (strstr(err, cases[i].message) == NULL)
            print_error("case %zu: expected '%s' in: %s\n", i, cases[i].message, err);
        assert_non_null(strstr(err, cases[i].message));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_policy_parses_destinations),
        cmocka_unit_test(test_export_policy_rejects_invalid_entries),
        cmocka_unit_test(test_export_policy_allows_security_properties),
        cmocka_unit_test(test_export_policy_summary_names_destinations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
