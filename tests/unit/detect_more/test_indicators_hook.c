/*
 * test_indicators_hook.c: indicator matching on raw records in the
 * capturing process (cli/indicators_hook.c): alerts, deduplication and
 * reloading the lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "indicators_hook.h"
#include "test_helpers.h"
#include "testutil.h"

typedef struct fixture {
    char dir[512];
    char list_path[600];
    char policy_path[600];
    pol_policy *policy;
    th_alerts alerts;
} fixture;

static void emit(void *ctx, const fv_alert_record *alert)
{
    th_collect(ctx, alert);
}

/* Write the list and a policy naming it, and load the policy. */
static void write_and_load(fixture *f, const char *list_text)
{
    tu_write_file(f->list_path, list_text, strlen(list_text));
    char policy[2048];
    snprintf(policy, sizeof policy,
             "version: 1\n"
             "zones:\n"
             "  - name: office\n"
             "    networks: [10.0.0.0/8]\n"
             "detect:\n"
             "  alert_window: 1h\n"
             "  indicators:\n"
             "    files:\n"
             "      - {path: %s, format: list, severity: critical}\n",
             f->list_path);
    pol_destroy(&f->policy);
    char err[1024];
    int rc = pol_load_buffer(f->policy_path, policy, strlen(policy), &f->policy, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("policy rejected: %s", err);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_make_temp_dir(f->dir, sizeof f->dir);
    snprintf(f->list_path, sizeof f->list_path, "%s/bad.txt", f->dir);
    snprintf(f->policy_path, sizeof f->policy_path, "%s/policy.yaml", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pol_destroy(&f->policy);
    tu_remove_tree(f->dir);
    free(f);
    return 0;
}

/* A flow from raw 10.1.2.3 (stored as a pseudonym) to raw EXTERNAL. */
static void make_flow(const char *external, uint64_t ts_s, cap_flow *raw, fv_flow_record *rec)
{
    memset(raw, 0, sizeof *raw);
    raw->src.family = 4;
    assert_int_equal(inet_pton(AF_INET, "10.1.2.3", raw->src.addr), 1);
    raw->dst.family = 4;
    assert_int_equal(inet_pton(AF_INET, external, raw->dst.addr), 1);
    raw->proto = 6;
    raw->dport = 443;

    memset(rec, 0, sizeof *rec);
    rec->first_us = ts_s * 1000000u;
    rec->src = th_internal(77, "office");
    rec->dst.kind = FV_EP_IPV4;
    memcpy(rec->dst.addr, raw->dst.addr, 4);
    snprintf(rec->dst.zone, sizeof rec->dst.zone, "%s", FV_ZONE_EXTERNAL);
    rec->proto = 6;
    rec->dport = 443;
}

static void test_hook_flow_hit_alerts_once_per_window(void **state)
{
    fixture *f = *state;
    write_and_load(f, "192.0.2.0/24\n");
    fv_indicator_hook *hook = NULL;
    char err[1024];
    assert_int_equal(fv_indicator_hook_open(f->policy, emit, &f->alerts, &hook, err, sizeof err),
                     FV_OK);
    assert_non_null(hook);

    cap_flow raw;
    fv_flow_record rec;
    make_flow("192.0.2.77", 1000, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec); /* same hour: deduplicated */
    assert_int_equal(f->alerts.count, 1);

    const fv_alert_record *a = &f->alerts.alerts[0];
    assert_int_equal(a->detector, FV_DET_INDICATOR);
    assert_int_equal(a->severity, FV_SEV_CRITICAL);
    assert_int_equal(a->host.kind, FV_EP_PSEUDO_IPV4);
    assert_memory_equal(a->host.addr, rec.src.addr, 16);
    assert_memory_equal(a->peer.addr, rec.dst.addr, 4);
    assert_int_equal(a->evidence[DET_EV_IND_LIST], 0);
    assert_int_equal(a->evidence[DET_EV_IND_TYPE], DET_IND_CIDR);
    assert_int_equal(a->evidence[DET_EV_IND_LINE], 1);
    assert_int_equal(a->evidence[DET_EV_IND_SOURCE], DET_IND_SRC_FLOW);
    assert_null(strstr(a->summary, "10.1.2.3"));

    /* Two hours later the same hit alerts again. */
    make_flow("192.0.2.77", 1000 + 7200, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    assert_int_equal(f->alerts.count, 2);

    /* An address outside the list is quiet. */
    make_flow("198.51.100.1", 9000, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    assert_int_equal(f->alerts.count, 2);
    fv_indicator_hook_close(&hook);
    assert_null(hook);
}

static void test_hook_internal_address_never_matched(void **state)
{
    fixture *f = *state;
    /* The list names the internal host itself. */
    write_and_load(f, "10.1.2.3\n");
    fv_indicator_hook *hook = NULL;
    char err[1024];
    assert_int_equal(fv_indicator_hook_open(f->policy, emit, &f->alerts, &hook, err, sizeof err),
                     FV_OK);
    cap_flow raw;
    fv_flow_record rec;
    make_flow("198.51.100.1", 1000, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    assert_int_equal(f->alerts.count, 0);
    fv_indicator_hook_close(&hook);
}

static void test_hook_zone_addresses_in_names_never_matched(void **state)
{
    fixture *f = *state;
    /* An internal address (in zone office, 10.0.0.0/8) and an external one. */
    write_and_load(f, "10.1.0.80\n10.1.0.55\n203.0.113.5\n");
    fv_indicator_hook *hook = NULL;
    char err[1024];
    assert_int_equal(fv_indicator_hook_open(f->policy, emit, &f->alerts, &hook, err, sizeof err),
                     FV_OK);
    fv_endpoint client = th_internal(79, "office");

    /* A DNS answer with the internal 10.1.0.55, and "10.1.0.55" as the
     * literal query name: neither may match. */
    cap_dns dns;
    memset(&dns, 0, sizeof dns);
    dns.ts_us = 5000000;
    snprintf(dns.qname, sizeof dns.qname, "10.1.0.55");
    dns.a_count = 1;
    memcpy(dns.a[0], (const uint8_t[4]){10, 1, 0, 55}, 4);
    fv_dns_record dns_rec;
    memset(&dns_rec, 0, sizeof dns_rec);
    dns_rec.client = client;
    fv_indicator_hook_dns(hook, &dns, &dns_rec);
    assert_int_equal(f->alerts.count, 0);

    /* An HTTP Host literal with the internal 10.1.0.80 and a port. */
    cap_http http;
    memset(&http, 0, sizeof http);
    http.ts_us = 6000000;
    snprintf(http.host, sizeof http.host, "10.1.0.80:8080");
    fv_http_record http_rec;
    memset(&http_rec, 0, sizeof http_rec);
    http_rec.client = client;
    fv_indicator_hook_http(hook, &http, &http_rec);
    assert_int_equal(f->alerts.count, 0);

    /* The external entry still matches in both places. */
    memcpy(dns.a[0], (const uint8_t[4]){203, 0, 113, 5}, 4);
    fv_indicator_hook_dns(hook, &dns, &dns_rec);
    assert_int_equal(f->alerts.count, 1);
    snprintf(http.host, sizeof http.host, "203.0.113.5");
    fv_indicator_hook_http(hook, &http, &http_rec);
    assert_int_equal(f->alerts.count, 2);
    fv_indicator_hook_close(&hook);
}

static void test_check_files_warns_about_zone_entries(void **state)
{
    fixture *f = *state;
    /* Line 1 lies in the zone, line 2 covers it, line 3 is external. */
    write_and_load(f, "10.1.0.55\n0.0.0.0/0\n203.0.113.5\n");
    char out_path[700];
    snprintf(out_path, sizeof out_path, "%s/check.txt", f->dir);
    FILE *out = fopen(out_path, "w");
    assert_non_null(out);
    (void)fv_indicator_check_files(f->policy, out, 10);
    fclose(out);
    size_t len = 0;
    char *text = tu_read_file(out_path, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "warning: line 1 lies in or covers an internal zone"));
    assert_non_null(strstr(text, "warning: line 2 is a /0 network"));
    assert_null(strstr(text, "line 3"));
    free(text);
}

static void test_hook_dns_tls_http_sources(void **state)
{
    fixture *f = *state;
    write_and_load(f, "evil.example\n203.0.113.5\ne7d705a3286e19ea42f587b344ee6865\n");
    fv_indicator_hook *hook = NULL;
    char err[1024];
    assert_int_equal(fv_indicator_hook_open(f->policy, emit, &f->alerts, &hook, err, sizeof err),
                     FV_OK);

    fv_endpoint client = th_internal(78, "office");
    cap_dns dns;
    memset(&dns, 0, sizeof dns);
    dns.ts_us = 5000000;
    snprintf(dns.qname, sizeof dns.qname, "cdn.example");
    snprintf(dns.cnames[0], sizeof dns.cnames[0], "x.Evil.Example");
    dns.cname_count = 1;
    dns.a_count = 1;
    memcpy(dns.a[0], (const uint8_t[4]){203, 0, 113, 5}, 4);
    fv_dns_record dns_rec;
    memset(&dns_rec, 0, sizeof dns_rec);
    dns_rec.client = client;
    fv_indicator_hook_dns(hook, &dns, &dns_rec);
    assert_int_equal(f->alerts.count, 2);
    assert_int_equal(f->alerts.alerts[0].evidence[DET_EV_IND_SOURCE], DET_IND_SRC_DNS_ANSWER);
    assert_int_equal(f->alerts.alerts[0].evidence[DET_EV_IND_TYPE], DET_IND_DOMAIN);
    assert_int_equal(f->alerts.alerts[1].evidence[DET_EV_IND_TYPE], DET_IND_IPV4);

    cap_tls tls;
    memset(&tls, 0, sizeof tls);
    tls.ts_us = 6000000;
    snprintf(tls.sni, sizeof tls.sni, "www.evil.example");
    snprintf(tls.ja3, sizeof tls.ja3, "E7D705A3286E19EA42F587B344EE6865");
    fv_tls_record tls_rec;
    memset(&tls_rec, 0, sizeof tls_rec);
    tls_rec.client = client;
    tls_rec.server_port = 443;
    fv_indicator_hook_tls(hook, &tls, &tls_rec);
    assert_int_equal(f->alerts.count, 4);
    assert_int_equal(f->alerts.alerts[2].evidence[DET_EV_IND_SOURCE], DET_IND_SRC_TLS_SNI);
    assert_int_equal(f->alerts.alerts[3].evidence[DET_EV_IND_SOURCE], DET_IND_SRC_TLS_JA3);

    cap_http http;
    memset(&http, 0, sizeof http);
    http.ts_us = 7000000;
    snprintf(http.host, sizeof http.host, "evil.example:8080");
    fv_http_record http_rec;
    memset(&http_rec, 0, sizeof http_rec);
    http_rec.client = client;
    fv_indicator_hook_http(hook, &http, &http_rec);
    snprintf(http.host, sizeof http.host, "notevil.example");
    fv_indicator_hook_http(hook, &http, &http_rec);
    assert_int_equal(f->alerts.count, 5);
    assert_int_equal(f->alerts.alerts[4].evidence[DET_EV_IND_SOURCE], DET_IND_SRC_HTTP_HOST);
    fv_indicator_hook_close(&hook);
}

static void test_hook_reload_swaps_lists(void **state)
{
    fixture *f = *state;
    write_and_load(f, "192.0.2.1\n");
    fv_indicator_hook *hook = NULL;
    char err[1024];
    assert_int_equal(fv_indicator_hook_open(f->policy, emit, &f->alerts, &hook, err, sizeof err),
                     FV_OK);

    /* The file changes: the reload drops 192.0.2.1 and adds 192.0.2.2. */
    write_and_load(f, "192.0.2.2\n");
    assert_int_equal(fv_indicator_hook_reload(&hook, f->policy, emit, &f->alerts), FV_OK);
    cap_flow raw;
    fv_flow_record rec;
    make_flow("192.0.2.1", 1000, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    assert_int_equal(f->alerts.count, 0);
    make_flow("192.0.2.2", 1000, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    assert_int_equal(f->alerts.count, 1);

    /* The file disappears: the reload fails and the running lists stay. */
    assert_int_equal(remove(f->list_path), 0);
    assert_int_equal(fv_indicator_hook_reload(&hook, f->policy, emit, &f->alerts), FV_ERR_IO);
    assert_non_null(hook);
    make_flow("192.0.2.2", 9000, &raw, &rec);
    fv_indicator_hook_flow(hook, &raw, &rec);
    assert_int_equal(f->alerts.count, 2);
    fv_indicator_hook_close(&hook);
}

static void test_hook_missing_file_fails_open(void **state)
{
    fixture *f = *state;
    write_and_load(f, "192.0.2.1\n");
    assert_int_equal(remove(f->list_path), 0);
    fv_indicator_hook *hook = NULL;
    char err[1024] = "";
    assert_int_equal(fv_indicator_hook_open(f->policy, emit, &f->alerts, &hook, err, sizeof err),
                     FV_ERR_IO);
    assert_null(hook);
    assert_non_null(strstr(err, "bad.txt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hook_flow_hit_alerts_once_per_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_internal_address_never_matched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_dns_tls_http_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_zone_addresses_in_names_never_matched, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_files_warns_about_zone_entries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hook_reload_swaps_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_missing_file_fails_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
