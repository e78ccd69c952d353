/*
 * test_det_dns.c: DNS tunnelling and DGA detectors (det_dns.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_helpers.h"

#define QTYPE_A 1
#define QTYPE_NULL 10
#define QTYPE_TXT 16
#define QTYPE_AAAA 28

static pol_detect dns_config(void)
{
    pol_detect c;
    memset(&c, 0, sizeof c);
    c.dns_tunnel_enabled = true;
    c.dns_tunnel_min_subdomains = 100;
    c.dns_tunnel_window_s = 600;
    c.dns_tunnel_min_entropy = 3.5;
    c.dns_tunnel_min_label_len = 30;
    c.dga_enabled = true;
    c.dga_min_nxdomain = 20;
    c.dga_window_s = 600;
    c.dga_min_score = 0.7;
    return c;
}

/* xorshift32, so the generated names are the same on every run. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Write LEN random characters of ALPHABET into OUT. */
static void random_label(uint32_t *seed, const char *alphabet, size_t len, char *out)
{
    size_t n = strlen(alphabet);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[next_random(seed) % n];
    out[len] = '\0';
}

static size_t run_tunnel(void *state, const char *const *names, size_t count, uint16_t qtype,
                         th_alerts *alerts)
{
    fv_endpoint client = th_internal(21, "office");
    for (size_t i = 0; i < count; i++) {
        fv_dns_record q = th_dns(&client, 50000 + i, names[i], qtype, -1);
        det_module_dns_tunnel.observe_dns(state, &q);
        /* The answer must not count a second time. */
        fv_dns_record r = th_dns(&client, 50000 + i, names[i], qtype, 0);
        det_module_dns_tunnel.observe_dns(state, &r);
    }
    memset(alerts, 0, sizeof *alerts);
    det_module_dns_tunnel.evaluate(state, 60000ull * 1000000u, th_collect, alerts);
    return alerts->count;
}

static void test_tunnel_iodine_names_alert(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dns_tunnel.create(&c);
    assert_non_null(state);

    /* iodine-style: two base32 labels of 55 characters under t.<domain>,
     * NULL queries, 150 within 150 s. */
    static char storage[150][FV_NAME_MAX];
    const char *names[150];
    uint32_t seed = 12345;
    for (size_t i = 0; i < 150; i++) {
        char a[64], b[64];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz012345", 55, a);
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz012345", 55, b);
        snprintf(storage[i], sizeof storage[i], "%s.%s.t.tunnel-example.com", a, b);
        names[i] = storage[i];
    }
    th_alerts alerts;
    assert_int_equal(run_tunnel(state, names, 150, QTYPE_NULL, &alerts), 1);

    const fv_alert_record *a = &alerts.alerts[0];
    assert_int_equal(a->detector, FV_DET_DNS_TUNNEL);
    assert_true(a->evidence[DET_EV_TUNNEL_UNIQUE_NAMES] >= 100);
    assert_true(a->evidence[DET_EV_TUNNEL_MEAN_LABEL_LEN] > 30);
    assert_true(a->evidence[DET_EV_TUNNEL_ENTROPY] > 4.0);
    assert_true(a->evidence[DET_EV_TUNNEL_TYPED_SHARE] > 0.99);
    assert_int_equal(a->evidence[DET_EV_TUNNEL_QUERIES], 150);
    assert_non_null(strstr(a->summary, "tunnel-example.com"));
    det_module_dns_tunnel.destroy(state);
}

/* Fill STORAGE with 150 iodine-style names (two 55-character base32
 * labels) under t.tunnel-example.com. */
static void iodine_names(char storage[150][FV_NAME_MAX], const char *names[150])
{
    uint32_t seed = 4242;
    for (size_t i = 0; i < 150; i++) {
        char a[64], b[64];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz012345", 55, a);
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz012345", 55, b);
        snprintf(storage[i], FV_NAME_MAX, "%s.%s.t.tunnel-example.com", a, b);
        names[i] = storage[i];
    }
}

static void test_tunnel_allow_list_silences_domain(void **unused)
{
    (void)unused;
    static char storage[150][FV_NAME_MAX];
    const char *names[150];
    iodine_names(storage, names);

    /* The suffix matches a whole label run: tunnel-example.com and its
     * subdomain t.tunnel-example.com both silence the names. */
    static const char *const silencing[] = {"tunnel-example.com", "t.tunnel-example.com"};
    for (size_t k = 0; k < 2; k++) {
        pol_detect c = dns_config();
        snprintf(c.dns_tunnel_allow[0], sizeof c.dns_tunnel_allow[0], "%s", silencing[k]);
        c.dns_tunnel_allow_count = 1;
        void *state = det_module_dns_tunnel.create(&c);
        assert_non_null(state);
        th_alerts alerts;
        assert_int_equal(run_tunnel(state, names, 150, QTYPE_NULL, &alerts), 0);
        det_module_dns_tunnel.destroy(state);
    }

    /* "example.com" ends the names too, but not on a label boundary
     * ("tunnel-example.com"), and "other.example" does not match at all. */
    pol_detect c = dns_config();
    snprintf(c.dns_tunnel_allow[0], sizeof c.dns_tunnel_allow[0], "example.com");
    snprintf(c.dns_tunnel_allow[1], sizeof c.dns_tunnel_allow[1], "other.example");
    c.dns_tunnel_allow_count = 2;
    void *state = det_module_dns_tunnel.create(&c);
    assert_non_null(state);
    th_alerts alerts;
    assert_int_equal(run_tunnel(state, names, 150, QTYPE_NULL, &alerts), 1);
    assert_int_equal(alerts.alerts[0].detector, FV_DET_DNS_TUNNEL);
    det_module_dns_tunnel.destroy(state);
}

static void test_tunnel_hex_a_queries_alert(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dns_tunnel.create(&c);
    assert_non_null(state);

    /* A queries with one 40-digit hex label each (long and random, not typed). */
    static char storage[120][FV_NAME_MAX];
    const char *names[120];
    uint32_t seed = 777;
    for (size_t i = 0; i < 120; i++) {
        char a[64];
        random_label(&seed, "0123456789abcdef", 40, a);
        snprintf(storage[i], sizeof storage[i], "%s.exfil.example.net", a);
        names[i] = storage[i];
    }
    th_alerts alerts;
    assert_int_equal(run_tunnel(state, names, 120, QTYPE_A, &alerts), 1);
    det_module_dns_tunnel.destroy(state);
}

static void test_tunnel_cdn_names_quiet(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dns_tunnel.create(&c);
    assert_non_null(state);

    /* 300 CDN edge names like e1234.dscb.akamaiedge.net and
     * r5---sn-4g5e6nsz.googlevideo.com, A and AAAA. */
    static char storage[300][FV_NAME_MAX];
    const char *names[300];
    uint32_t seed = 99;
    for (size_t i = 0; i < 300; i++) {
        char a[16];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz0123456789", 8, a);
        if (i % 2 == 0)
            snprintf(storage[i], sizeof storage[i], "e%zu.dscb.akamaiedge.net", 1000 + i);
        else
            snprintf(storage[i], sizeof storage[i], "r%zu---sn-%s.googlevideo.com", i % 9, a);
        names[i] = storage[i];
    }
    th_alerts alerts;
    assert_int_equal(run_tunnel(state, names, 300, QTYPE_A, &alerts), 0);
    run_tunnel(state, names, 300, QTYPE_AAAA, &alerts);
    assert_int_equal(alerts.count, 0);
    det_module_dns_tunnel.destroy(state);
}

static void test_tunnel_window_resets_counts(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    c.dns_tunnel_window_s = 60;
    void *state = det_module_dns_tunnel.create(&c);
    assert_non_null(state);

    /* 150 tunnel-like names, but one per minute: no window contains 100. */
    fv_endpoint client = th_internal(22, "office");
    uint32_t seed = 4242;
    for (size_t i = 0; i < 150; i++) {
        char a[64], name[FV_NAME_MAX];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz012345", 50, a);
        snprintf(name, sizeof name, "%s.t.tunnel-example.com", a);
        fv_dns_record q = th_dns(&client, 1000 + i * 61, name, QTYPE_TXT, -1);
        det_module_dns_tunnel.observe_dns(state, &q);
    }
    th_alerts alerts;
    memset(&alerts, 0, sizeof alerts);
    det_module_dns_tunnel.evaluate(state, 20000ull * 1000000u, th_collect, &alerts);
    assert_int_equal(alerts.count, 0);
    det_module_dns_tunnel.destroy(state);
}

/* Feed NXDOMAIN answers for NAMES[0..COUNT) and evaluate. */
static size_t run_dga(void *state, const char *const *names, size_t count, th_alerts *alerts)
{
    fv_endpoint client = th_internal(23, "office");
    for (size_t i = 0; i < count; i++) {
        fv_dns_record ok = th_dns(&client, 70000 + i, "www.example.org", QTYPE_A, 0);
        det_module_dga.observe_dns(state, &ok);
        fv_dns_record nx = th_dns(&client, 70000 + i, names[i], QTYPE_A, 3);
        det_module_dga.observe_dns(state, &nx);
    }
    memset(alerts, 0, sizeof *alerts);
    det_module_dga.evaluate(state, 80000ull * 1000000u, th_collect, alerts);
    return alerts->count;
}

static void test_dga_random_nxdomain_burst_alerts(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dga.create(&c);
    assert_non_null(state);

    /* 40 names of 10 to 16 random letters under com, net and info. */
    static const char *const tlds[] = {"com", "net", "info"};
    static char storage[40][FV_NAME_MAX];
    const char *names[40];
    uint32_t seed = 2024;
    for (size_t i = 0; i < 40; i++) {
        char a[32];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz", 10 + next_random(&seed) % 7, a);
        snprintf(storage[i], sizeof storage[i], "%s.%s", a, tlds[i % 3]);
        names[i] = storage[i];
    }
    th_alerts alerts;
    assert_int_equal(run_dga(state, names, 40, &alerts), 1);

    const fv_alert_record *a = &alerts.alerts[0];
    assert_int_equal(a->detector, FV_DET_DGA);
    assert_int_equal(a->evidence[DET_EV_DGA_NXDOMAIN], 40);
    assert_true(a->evidence[DET_EV_DGA_NXDOMAIN_RATE] > 0.45);
    assert_true(a->evidence[DET_EV_DGA_NXDOMAIN_RATE] < 0.55);
    assert_true(a->evidence[DET_EV_DGA_MEAN_SCORE] >= 0.75);
    assert_true(a->evidence[DET_EV_DGA_RARE_BIGRAM_SHARE] > 0.3);
    det_module_dga.destroy(state);
}

static void test_dga_hex_names_alert(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dga.create(&c);
    assert_non_null(state);

    static char storage[30][FV_NAME_MAX];
    const char *names[30];
    uint32_t seed = 5;
    for (size_t i = 0; i < 30; i++) {
        char a[32];
        random_label(&seed, "0123456789abcdef", 12, a);
        snprintf(storage[i], sizeof storage[i], "%s.org", a);
        names[i] = storage[i];
    }
    th_alerts alerts;
    assert_int_equal(run_dga(state, names, 30, &alerts), 1);
    det_module_dga.destroy(state);
}

static void test_dga_allow_list_skips_names(void **unused)
{
    (void)unused;
    /* 30 random NXDOMAIN names under rep.av-vendor.example, the shape of
     * a reputation service that encodes a file hash in the name. */
    static char storage[30][FV_NAME_MAX];
    const char *names[30];
    uint32_t seed = 99;
    for (size_t i = 0; i < 30; i++) {
        char a[32];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz", 14, a);
        snprintf(storage[i], sizeof storage[i], "%s.rep.av-vendor.example", a);
        names[i] = storage[i];
    }

    pol_detect c = dns_config();
    void *state = det_module_dga.create(&c);
    assert_non_null(state);
    th_alerts alerts;
    assert_int_equal(run_dga(state, names, 30, &alerts), 1);
    det_module_dga.destroy(state);

    /* Listed with different case in the query names: still skipped,
     * because names are compared lower case. */
    for (size_t i = 0; i < 30; i += 2)
        storage[i][0] = (char)(storage[i][0] - 'a' + 'A');
    snprintf(c.dga_allow[0], sizeof c.dga_allow[0], "av-vendor.example");
    c.dga_allow_count = 1;
    state = det_module_dga.create(&c);
    assert_non_null(state);
    assert_int_equal(run_dga(state, names, 30, &alerts), 0);
    det_module_dga.destroy(state);

    /* "vendor.example" is no label-boundary suffix of these names. */
    snprintf(c.dga_allow[0], sizeof c.dga_allow[0], "vendor.example");
    state = det_module_dga.create(&c);
    assert_non_null(state);
    assert_int_equal(run_dga(state, names, 30, &alerts), 1);
    det_module_dga.destroy(state);
}

static void test_dga_typos_quiet(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dga.create(&c);
    assert_non_null(state);

    /* 30 mistyped popular names, all NXDOMAIN: enough failures, but
     * pronounceable. */
    static const char *const names[] = {
        "gooogle.com",   "goggle.com",    "facebok.com",  "facebooc.com",      "yotube.com",
        "youtueb.com",   "wikipedai.org", "wikipeda.org", "amazn.com",         "amazom.com",
        "microsfot.com", "mircosoft.com", "netflx.com",   "netflics.com",      "twiter.com",
        "twittter.com",  "linkdin.com",   "linkedn.com",  "githib.com",        "gihtub.com",
        "outlok.com",    "outloook.com",  "dropbx.com",   "dropbox-login.net", "instagarm.com",
        "instagran.com", "reddt.com",     "redditt.com",  "stackoverflw.com",  "stackovreflow.com",
    };
    th_alerts alerts;
    assert_int_equal(run_dga(state, names, sizeof names / sizeof names[0], &alerts), 0);
    det_module_dga.destroy(state);

    /* With every threshold at its minimum the same names alert, which
     * shows their score: far below dga.min_score. */
    c.dga_min_nxdomain = 1;
    c.dga_min_score = 0.0;
    state = det_module_dga.create(&c);
    assert_non_null(state);
    assert_int_equal(run_dga(state, names, sizeof names / sizeof names[0], &alerts), 1);
    assert_true(alerts.alerts[0].evidence[DET_EV_DGA_MEAN_SCORE] < 0.35);
    det_module_dga.destroy(state);
}

static void test_dga_few_random_names_quiet(void **unused)
{
    (void)unused;
    pol_detect c = dns_config();
    void *state = det_module_dga.create(&c);
    assert_non_null(state);

    /* Ten random failures are below dga.min_nxdomain (20). */
    static char storage[10][FV_NAME_MAX];
    const char *names[10];
    uint32_t seed = 31337;
    for (size_t i = 0; i < 10; i++) {
        char a[32];
        random_label(&seed, "abcdefghijklmnopqrstuvwxyz", 14, a);
        snprintf(storage[i], sizeof storage[i], "%s.com", a);
        names[i] = storage[i];
    }
    th_alerts alerts;
    assert_int_equal(run_dga(state, names, 10, &alerts), 0);
    det_module_dga.destroy(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tunnel_iodine_names_alert),
        cmocka_unit_test(test_tunnel_allow_list_silences_domain),
        cmocka_unit_test(test_tunnel_hex_a_queries_alert),
        cmocka_unit_test(test_tunnel_cdn_names_quiet),
        cmocka_unit_test(test_tunnel_window_resets_counts),
        cmocka_unit_test(test_dga_random_nxdomain_burst_alerts),
        cmocka_unit_test(test_dga_hex_names_alert),
        cmocka_unit_test(test_dga_allow_list_skips_names),
        cmocka_unit_test(test_dga_typos_quiet),
        cmocka_unit_test(test_dga_few_random_names_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
