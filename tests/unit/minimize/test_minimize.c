/*
 * Unit tests for cli/minimize.c: internal addresses and local host names
 * hidden inside HTTP Host, TLS SNI and DNS names become pseudonym tokens,
 * and everything else is left as sent. The User-Agent of an internal
 * client keeps only its product tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "minimize.h"
#include "testutil.h"

#define NOW_S 1764489600u

static const char POLICY[] = "version: 1\n"
                             "zones:\n"
                             "  - name: office\n"
                             "    networks: [10.0.0.0/8, fd00::/8]\n";

typedef struct fixture {
    char dir[512];
    pol_policy *policy;
    anon_ctx *anon;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char err[1024], key_path[600];

    memset(&f, 0, sizeof f);
    tu_make_temp_dir(f.dir, sizeof f.dir);
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", f.dir);
    assert_int_equal(pol_load_buffer("policy.yaml", POLICY, sizeof POLICY - 1, &f.policy, err,
                                     sizeof err),
                     FV_OK);
    assert_int_equal(anon_open(key_path, 86400, NOW_S, &f.anon, err, sizeof err), FV_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    anon_close(&f->anon);
    pol_destroy(&f->policy);
    tu_remove_tree(f->dir);
    return 0;
}

/* The token the address fields get for TEXT, so names and fields agree. */
static void address_token(fixture *f, const char *text, char token[FV_TOKEN_TEXT_MAX])
{
    uint8_t addr[16] = {0}, pseudo[FV_PSEUDONYM_BYTES];
    if (inet_pton(AF_INET, text, addr) == 1) {
        anon_pseudonym(f->anon, ANON_TYPE_IPV4, addr, 4, pseudo);
        fv_token_format("ip4", pseudo, token);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, addr), 1);
        anon_pseudonym(f->anon, ANON_TYPE_IPV6, addr, 16, pseudo);
        fv_token_format("ip6", pseudo, token);
    }
}

static void expect_rewrite(fixture *f, fv_name_source source, const char *input,
                           const char *address, const char *suffix)
{
    char name[FV_NAME_MAX], token[FV_TOKEN_TEXT_MAX], expected[FV_NAME_MAX];
    snprintf(name, sizeof name, "%s", input);
    address_token(f, address, token);
    snprintf(expected, sizeof expected, "%s%s", token, suffix);

    assert_true(fv_minimize_name(f->policy, f->anon, source, name, sizeof name));
    assert_string_equal(name, expected);
    assert_null(strstr(name, address));
}

static void expect_unchanged(fixture *f, fv_name_source source, const char *input)
{
    char name[FV_NAME_MAX];
    snprintf(name, sizeof name, "%s", input);
    assert_false(fv_minimize_name(f->policy, f->anon, source, name, sizeof name));
    assert_string_equal(name, input);
}

static void test_host_ipv4_literal_with_port(void **state)
{
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "10.1.0.5:8080", "10.1.0.5", ":8080");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "10.1.0.5", "10.1.0.5", "");
}

/* The legacy IPv4 forms that browsers and inet_aton read: one decimal
 * number (167837701), hexadecimal or octal parts, and three parts. */
static void test_host_ipv4_legacy_forms(void **state)
{
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "167837701", "10.1.0.5", "");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "0x0a.1.0.5:8080", "10.1.0.5", ":8080");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "012.1.0.5", "10.1.0.5", "");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "10.1.5", "10.1.0.5", "");
    /* External in legacy form, and names that only look numeric. */
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "3221225991");
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "123.abc");
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "1e100.net");
}

static void test_host_ipv6_literal_bracketed(void **state)
{
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "[fd00::5]:443", "fd00::5", ":443");
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "fd00::5", "fd00::5", "");
    /* A zone id after the address is dropped with it. */
    expect_rewrite(*state, FV_NAME_HOST_HEADER, "[fd00::5%25eth0]:443", "fd00::5", ":443");
}

static void test_external_literals_kept(void **state)
{
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "192.0.2.7:8080");
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "[2001:db8::1]:443");
    expect_unchanged(*state, FV_NAME_DNS, "7.2.0.192.in-addr.arpa");
}

static void test_ordinary_names_kept(void **state)
{
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "www.example.com");
    expect_unchanged(*state, FV_NAME_HOST_HEADER, "www.example.com:8080");
    expect_unchanged(*state, FV_NAME_DNS, "10.example.com");
    expect_unchanged(*state, FV_NAME_DNS, "mail.example.org");
}

static void test_reverse_ipv4_name_rewritten(void **state)
{
    expect_rewrite(*state, FV_NAME_DNS, "5.0.1.10.in-addr.arpa", "10.1.0.5", ".in-addr.arpa");
    expect_rewrite(*state, FV_NAME_DNS, "5.0.1.10.IN-ADDR.ARPA", "10.1.0.5", ".IN-ADDR.ARPA");
}

static void test_reverse_subnet_name_kept(void **state)
{
    /* A reverse zone of a /24 names a network, not a host. */
    expect_unchanged(*state, FV_NAME_DNS, "0.1.10.in-addr.arpa");
    expect_unchanged(*state, FV_NAME_DNS, "256.0.1.10.in-addr.arpa");
}

static void test_reverse_ipv6_name_rewritten(void **state)
{
    /* fd00::5 as 32 nibble labels, lowest nibble first. */
    expect_rewrite(*state, FV_NAME_DNS,
                   "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
                   "fd00::5", ".ip6.arpa");
}

static void test_local_host_name_pseudonymized(void **state)
{
    fixture *f = *state;
    char a[FV_NAME_MAX] = "janes-laptop.local";
    char b[FV_NAME_MAX] = "Janes-Laptop.local";

    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_LOCAL_DNS, a, sizeof a));
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_LOCAL_DNS, b, sizeof b));
    assert_null(strstr(a, "janes"));
    assert_int_equal(strncmp(a, "name-", 5), 0);
    assert_non_null(strstr(a, ".local"));
    /* Case variants of one host name get one token. */
    assert_string_equal(a, b);
}

static void test_local_service_instance_pseudonymized(void **state)
{
    fixture *f = *state;
    char name[FV_NAME_MAX] = "Jane\\226\\128\\153s Mac._airplay._tcp.local";

    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_LOCAL_DNS, name, sizeof name));
    assert_null(strstr(name, "Jane"));
    size_t len = strlen(name);
    const char *suffix = "._airplay._tcp.local";
    assert_true(len > strlen(suffix));
    assert_string_equal(name + len - strlen(suffix), suffix);
}

static void test_local_service_type_kept(void **state)
{
    expect_unchanged(*state, FV_NAME_LOCAL_DNS, "_airplay._tcp.local");
    expect_unchanged(*state, FV_NAME_LOCAL_DNS, "local");
}

static void test_local_names_untouched_in_unicast_dns(void **state)
{
    expect_unchanged(*state, FV_NAME_DNS, "janes-laptop.local");
}

static void test_private_suffix_in_internal_dns(void **state)
{
    fixture *f = *state;
    char name[FV_NAME_MAX] = "GRIMM.corp.local";
    char lan[FV_NAME_MAX] = "laptop-jane.lan";

    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_INTERNAL_DNS, name, sizeof name));
    assert_null(strstr(name, "GRIMM"));
    assert_int_equal(strncmp(name, "name-", 5), 0);
    assert_string_equal(name + strlen(name) - 6, ".local");
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_INTERNAL_DNS, lan, sizeof lan));
    assert_null(strstr(lan, "jane"));
    assert_string_equal(lan + strlen(lan) - 4, ".lan");
    /* Public names, and the same name from outside every zone, are kept. */
    expect_unchanged(f, FV_NAME_INTERNAL_DNS, "www.example.com");
    expect_unchanged(f, FV_NAME_DNS, "GRIMM.corp.local");
}

/* An HTTP Host or TLS server name to or from a host in a zone gets the
 * token that the same name gets in a DNS question, with its port kept.
 * Between hosts outside every zone it is kept. */
static void test_private_suffix_in_internal_host_header(void **state)
{
    fixture *f = *state;
    char dns[FV_NAME_MAX] = "janes-laptop.lan";
    char host[FV_NAME_MAX] = "Janes-Laptop.lan:8080";
    char sni[FV_NAME_MAX] = "nas.home.arpa";

    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_INTERNAL_DNS, dns, sizeof dns));
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_INTERNAL_HOST_HEADER, host,
                                 sizeof host));
    char expected[FV_NAME_MAX];
    snprintf(expected, sizeof expected, "%s:8080", dns);
    assert_string_equal(host, expected);
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_INTERNAL_HOST_HEADER, sni,
                                 sizeof sni));
    assert_int_equal(strncmp(sni, "name-", 5), 0);
    assert_string_equal(sni + strlen(sni) - 10, ".home.arpa");

    expect_unchanged(f, FV_NAME_INTERNAL_HOST_HEADER, "www.example.com:8443");
    expect_unchanged(f, FV_NAME_HOST_HEADER, "janes-laptop.lan");
}

/* Wildcard-DNS and cloud host names carry an internal IPv4 address as
 * dashed digits inside a label or as four whole labels. */
static void test_embedded_internal_ipv4_rewritten(void **state)
{
    fixture *f = *state;
    char name[FV_NAME_MAX], token[FV_TOKEN_TEXT_MAX], expected[FV_NAME_MAX];

    address_token(f, "10.1.0.55", token);
    snprintf(name, sizeof name, "%s", "10-1-0-55.nip.io");
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_DNS, name, sizeof name));
    snprintf(expected, sizeof expected, "%s.nip.io", token);
    assert_string_equal(name, expected);

    snprintf(name, sizeof name, "%s", "ip-10-1-0-55.ec2.internal");
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_DNS, name, sizeof name));
    snprintf(expected, sizeof expected, "ip-%s.ec2.internal", token);
    assert_string_equal(name, expected);

    snprintf(name, sizeof name, "%s", "app.10.1.0.55.sslip.io:8443");
    assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_HOST_HEADER, name, sizeof name));
    snprintf(expected, sizeof expected, "app.%s.sslip.io:8443", token);
    assert_string_equal(name, expected);
}

/* Addresses outside every zone, longer digit runs and version-like
 * labels are not internal addresses and stay as sent. */
static void test_embedded_external_or_partial_kept(void **state)
{
    fixture *f = *state;
    static const char *const kept[] = {
        "192-0-2-7.nip.io",         /* external: kept like the address fields */
        "110-1-0-55.example.com",   /* 110.1.0.55 is outside 10.0.0.0/8 */
        "v10-1-0-5551.cdn.example", /* last group is not an octet */
        "10.1.0.example.com",       /* three octets only */
        "a10.1.0.55.example.com",   /* dotted form must start a label */
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char name[FV_NAME_MAX];
        snprintf(name, sizeof name, "%s", kept[i]);
        assert_false(fv_minimize_name(f->policy, f->anon, FV_NAME_DNS, name, sizeof name));
        assert_string_equal(name, kept[i]);
    }
}

/* Suffix matching ignores ASCII case, and the suffix stays as sent. */
static void test_private_suffix_ignores_case(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *sent;
        const char *suffix;
    } cases[] = {
        {"Laptop-Jane.LAN", ".LAN"},
        {"nas.Home.Arpa", ".Home.Arpa"},
        {"printer.LocalDomain", ".LocalDomain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[FV_NAME_MAX];
        snprintf(name, sizeof name, "%s", cases[i].sent);
        assert_true(fv_minimize_name(f->policy, f->anon, FV_NAME_INTERNAL_DNS, name, sizeof name));
        assert_int_equal(strncmp(name, "name-", 5), 0);
        size_t n = strlen(name), s = strlen(cases[i].suffix);
        assert_true(n > s);
        assert_string_equal(name + n - s, cases[i].suffix);
    }
    expect_rewrite(f, FV_NAME_DNS, "55.0.1.10.IN-ADDR.ARPA", "10.1.0.55", ".IN-ADDR.ARPA");
    /* ".lan" must be a whole suffix label. */
    expect_unchanged(f, FV_NAME_INTERNAL_DNS, "www.example.plan");
}

/* An embedded address needs at least four digits: one with exactly four
 * is found, three single digits are not an address. */
static void test_embedded_address_four_digits(void **state)
{
    fixture *f = *state;
    static const char one_net[] = "version: 1\n"
                                  "zones:\n"
                                  "  - name: office\n"
                                  "    networks: [1.0.0.0/8]\n";
    char err[1024], name[FV_NAME_MAX], expected[FV_NAME_MAX], token[FV_TOKEN_TEXT_MAX];
    pol_policy *policy = NULL;

    assert_int_equal(pol_load_buffer("one.yaml", one_net, sizeof one_net - 1, &policy, err,
                                     sizeof err),
                     FV_OK);
    address_token(f, "1.2.3.4", token);
    snprintf(name, sizeof name, "%s", "1-2-3-4.nip.io");
    assert_true(fv_minimize_name(policy, f->anon, FV_NAME_DNS, name, sizeof name));
    snprintf(expected, sizeof expected, "%s.nip.io", token);
    assert_string_equal(name, expected);

    snprintf(name, sizeof name, "%s", "1-2-3.nip.io");
    assert_false(fv_minimize_name(policy, f->anon, FV_NAME_DNS, name, sizeof name));
    assert_string_equal(name, "1-2-3.nip.io");
    pol_destroy(&policy);
}

/* In a truncating zone, an IPv6 address that gets its zone from the IPv4
 * address it carries keeps no more of that address than the zone's IPv4
 * prefix: 6to4 is cut to 16 + 24 bits, NAT64 to 96 + 24, and a shorter
 * IPv6 prefix stays as it is. */
static void test_truncate_caps_embedded_ipv4(void **state)
{
    fixture *f = *state;
    static const char text[] = "version: 1\n"
                               "zones:\n"
                               "  - name: office\n"
                               "    networks: [10.0.0.0/8, \"fd00::/8\"]\n"
                               "    addresses: truncate\n"
                               "    truncate_prefix: {ipv4: 24, ipv6: 124}\n";
    char err[1024];
    pol_policy *policy = NULL;
    assert_int_equal(pol_load_buffer("trunc.yaml", text, sizeof text - 1, &policy, err,
                                     sizeof err),
                     FV_OK);
    static const struct {
        const char *address;
        unsigned prefix;
        const char *kept;
    } cases[] = {
        {"2002:a01:5::1", 40, "2002:a01::"},
        {"64:ff9b::a01:5", 120, "64:ff9b::a01:0"},
        {"::ffff:10.1.0.5", 120, "::ffff:10.1.0.0"},
        {"fd00::1234:5678", 124, "fd00::1234:5670"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t addr[16], kept[16];
        assert_int_equal(inet_pton(AF_INET6, cases[i].address, addr), 1);
        assert_int_equal(inet_pton(AF_INET6, cases[i].kept, kept), 1);
        fv_stored_addr out;
        const char *zone = fv_apply_address_mode(policy, f->anon, 6, addr, &out);
        assert_non_null(zone);
        assert_string_equal(zone, "office");
        assert_int_equal(out.kind, FV_EP_TRUNC_IPV6);
        if (out.prefix_len != cases[i].prefix || memcmp(out.addr, kept, 16) != 0)
            fail_msg("%s: stored with prefix %u, expected %s/%u", cases[i].address,
                     (unsigned)out.prefix_len, cases[i].kept, cases[i].prefix);
    }
    pol_destroy(&policy);
}

/* fv_identity_zone_excluded returns fv_identity_zone, link-local label
 * included, and pol_is_excluded of the same address. */
static void test_identity_zone_excluded_agrees(void **state)
{
    (void)state;
    static const char text[] = "version: 1\n"
                               "zones:\n"
                               "  - name: office\n"
                               "    networks: [10.0.0.0/8]\n"
                               "exclude: [10.9.0.0/16]\n";
    char err[1024];
    pol_policy *policy = NULL;
    assert_int_equal(pol_load_buffer("x.yaml", text, sizeof text - 1, &policy, err, sizeof err),
                     FV_OK);
    static const struct {
        int family;
        const char *text;
    } cases[] = {
        {4, "10.1.0.5"}, {4, "10.9.0.5"}, {4, "169.254.1.1"}, {4, "192.0.2.1"},
        {6, "fe80::1"},  {6, "2001:db8::1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t addr[16] = {0};
        assert_int_equal(inet_pton(cases[i].family == 4 ? AF_INET : AF_INET6, cases[i].text, addr),
                         1);
        bool excluded = !pol_is_excluded(policy, cases[i].family, addr);
        const char *zone = fv_identity_zone_excluded(policy, cases[i].family, addr, &excluded);
        assert_ptr_equal(zone, fv_identity_zone(policy, cases[i].family, addr));
        assert_int_equal(excluded, pol_is_excluded(policy, cases[i].family, addr));
    }
    pol_destroy(&policy);
}

static void test_link_local_is_identity_zone(void **state)
{
    fixture *f = *state;
    /* fe80::20c:29ff:fe0e:4c67 embeds the MAC 00:0c:29:0e:4c:67 (EUI-64). */
    uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x0c, 0x29, 0xff, 0xfe, 0x0e, 0x4c, 0x67};
    /* ff02::1:ff0e:4c67, its solicited-node multicast address. */
    uint8_t sn[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x0e, 0x4c, 0x67};
    uint8_t v4[16] = {169, 254, 10, 20};
    uint8_t global[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

    assert_string_equal(fv_identity_zone(f->policy, 6, ll), FV_ZONE_LINK_LOCAL);
    assert_string_equal(fv_identity_zone(f->policy, 6, sn), FV_ZONE_LINK_LOCAL);
    assert_string_equal(fv_identity_zone(f->policy, 4, v4), FV_ZONE_LINK_LOCAL);
    assert_null(fv_identity_zone(f->policy, 6, global));
    uint8_t office[16] = {10, 1, 0, 5};
    assert_string_equal(fv_identity_zone(f->policy, 4, office), "office");
}

static void test_link_local_kept_without_zones(void **state)
{
    (void)state;
    static const char none[] = "version: 1\nzones: []\n";
    char err[1024];
    pol_policy *policy = NULL;
    uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x0c, 0x29, 0xff, 0xfe, 0x0e, 0x4c, 0x67};

    assert_int_equal(pol_load_buffer("none.yaml", none, sizeof none - 1, &policy, err, sizeof err),
                     FV_OK);
    /* A policy without zones declares nothing internal, not even the link. */
    assert_null(fv_identity_zone(policy, 6, ll));
    pol_destroy(&policy);
}

/* Copy TEXT to OUT escaped as the capture stores header values: bytes
 * outside 0x21..0x7e and the backslash as \DDD (decimal). */
static void escape_like_capture(const char *text, char *out, size_t out_len)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        int n = (*p < 0x21 || *p > 0x7e || *p == '\\')
                    ? snprintf(out + o, out_len - o, "\\%03u", (unsigned)*p)
                    : snprintf(out + o, out_len - o, "%c", *p);
        assert_true(n > 0 && (size_t)n < out_len - o);
        o += (size_t)n;
    }
    out[o] = '\0';
}

/* One User-Agent of an internal client, unescaped, and what is kept of it. */
typedef struct ua_case {
    const char *sent;
    const char *kept;
} ua_case;

static void test_user_agent_keeps_product_tokens(void **state)
{
    (void)state;
    static const ua_case cases[] = {
        /* Chrome on Windows: the platform comment goes, the engines stay. */
        {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36",
         "Mozilla/5.0 (redacted) AppleWebKit/537.36 (redacted) Chrome/120.0.0.0 Safari/537.36"},
        /* Firefox on Linux. */
        {"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
         "Mozilla/5.0 (redacted) Gecko/20100101 Firefox/121.0"},
        /* Safari on an iPhone: "Mobile/15E148" is a build number, kept. */
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
         "Mozilla/5.0 (redacted) AppleWebKit/605.1.15 (redacted) Version/17.2 Mobile/15E148 "
         "Safari/604.1"},
        /* Command-line clients. */
        {"Wget/1.21.3 (linux-gnu)", "Wget/1.21.3 (redacted)"},
        {"python-requests/2.31.0", "python-requests/2.31.0"},
        /* A custom agent that names its host: nothing after the last product. */
        {"alice-laptop agent", "(redacted)"},
        {"backup-agent/2.1 host=alice-laptop.corp.example", "backup-agent/2.1 (redacted)"},
        {"sync-client/3.0 alice-laptop (Ubuntu 22.04)", "sync-client/3.0 (redacted)"},
        /* A version that is not a number can be a host name. */
        {"agent/alice-laptop", "(redacted)"},
        /* Nested comments and a quoted ')' stay inside one comment. */
        {"Foo/1.0 (alice (home\\) laptop) x) Bar/2", "Foo/1.0 (redacted) Bar/2"},
        /* An unclosed comment ends the value. */
        {"Foo/1.0 (alice-laptop", "Foo/1.0 (redacted)"},
        /* Text glued to a product is not a product. */
        {"Foo/1.0;alice", "(redacted)"},
        /* Tabs and repeated spaces become one space. */
        {"Foo/1.0 \t  Bar/2.0", "Foo/1.0 Bar/2.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sent[FV_NAME_MAX], kept[FV_NAME_MAX], out[FV_NAME_MAX];
        escape_like_capture(cases[i].sent, sent, sizeof sent);
        escape_like_capture(cases[i].kept, kept, sizeof kept);
        bool changed = fv_minimize_user_agent(sent, out, sizeof out);
        if (strcmp(out, kept) != 0)
            fprintf(stderr, "User-Agent %zu \"%s\" gave \"%s\"\n", i, sent, out);
        assert_string_equal(out, kept);
        assert_true(changed == (strcmp(sent, kept) != 0));
    }
}

static void test_user_agent_accepts_literal_spaces(void **state)
{
    (void)state;
    char out[FV_NAME_MAX];
    assert_true(fv_minimize_user_agent("Wget/1.21.3 (linux-gnu)", out, sizeof out));
    assert_string_equal(out, "Wget/1.21.3\\032(redacted)");
}

static void test_user_agent_unchanged_product_only(void **state)
{
    (void)state;
    char out[FV_NAME_MAX];
    assert_false(fv_minimize_user_agent("curl/8.5.0", out, sizeof out));
    assert_string_equal(out, "curl/8.5.0");
    assert_false(fv_minimize_user_agent("", out, sizeof out));
    assert_string_equal(out, "");
}

static void test_user_agent_small_buffer_stops_at_element(void **state)
{
    (void)state;
    /* 12 bytes hold "Mozilla/5.0" but not the " (redacted)" after it. */
    char out[12];
    memset(out, 'x', sizeof out);
    assert_true(fv_minimize_user_agent("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101", out,
                                       sizeof out));
    assert_string_equal(out, "Mozilla/5.0");
    /* Too small for the first element: an empty value, never a cut one. */
    char tiny[5];
    assert_true(fv_minimize_user_agent("curl/8.5.0", tiny, sizeof tiny));
    assert_string_equal(tiny, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_ipv4_literal_with_port),
        cmocka_unit_test(test_host_ipv4_legacy_forms),
        cmocka_unit_test(test_embedded_internal_ipv4_rewritten),
        cmocka_unit_test(test_embedded_external_or_partial_kept),
        cmocka_unit_test(test_host_ipv6_literal_bracketed),
        cmocka_unit_test(test_external_literals_kept),
        cmocka_unit_test(test_ordinary_names_kept),
        cmocka_unit_test(test_reverse_ipv4_name_rewritten),
        cmocka_unit_test(test_reverse_subnet_name_kept),
        cmocka_unit_test(test_reverse_ipv6_name_rewritten),
        cmocka_unit_test(test_local_host_name_pseudonymized),
        cmocka_unit_test(test_local_service_instance_pseudonymized),
        cmocka_unit_test(test_local_service_type_kept),
        cmocka_unit_test(test_local_names_untouched_in_unicast_dns),
        cmocka_unit_test(test_private_suffix_in_internal_dns),
        cmocka_unit_test(test_private_suffix_in_internal_host_header),
        cmocka_unit_test(test_link_local_is_identity_zone),
        cmocka_unit_test(test_link_local_kept_without_zones),
        cmocka_unit_test(test_private_suffix_ignores_case),
        cmocka_unit_test(test_embedded_address_four_digits),
        cmocka_unit_test(test_truncate_caps_embedded_ipv4),
        cmocka_unit_test(test_identity_zone_excluded_agrees),
        cmocka_unit_test(test_user_agent_keeps_product_tokens),
        cmocka_unit_test(test_user_agent_accepts_literal_spaces),
        cmocka_unit_test(test_user_agent_unchanged_product_only),
        cmocka_unit_test(test_user_agent_small_buffer_stops_at_element),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
