/*
 * Tests for the benchmark profiles of tools/demogen (demogen_profiles.h).
 * The mixed trace has the requested conversations with every traffic
 * kind and valid checksums, and the SYN flood has one SYN per flow. The
 * memory-bound profiles (scan16, fragments, dnsnames) have the shape
 * their description promises. Mixed and synflood are deterministic, and
 * bad settings are rejected by the library and the command line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "demogen.h"
#include "demogen_profiles.h"
#include "testutil.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* One's complement sum over N bytes, folded. */
static uint16_t ones_sum(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += get16(p + i);
    if (n % 2 == 1)
        acc += (uint32_t)(p[n - 1] << 8);
    while (acc > 0xffff)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

static demo_trace *generate(demo_profile profile, uint64_t seed, uint64_t flows)
{
    demo_profile_config cfg = {profile, seed, DEMO_DEFAULT_START_S, flows};
    demo_trace *trace = NULL;
    assert_int_equal(demo_generate_profile(&cfg, &trace), 0);
    assert_non_null(trace);
    return trace;
}

/* Conversations of the mixed trace by kind, from the generator's flow list. */
typedef struct kind_counts {
    size_t dns, tls, http, quic, bulk, ntp, syslog, other;
} kind_counts;

static kind_counts count_kinds(const demo_trace *trace)
{
    kind_counts k;
    memset(&k, 0, sizeof k);
    for (size_t i = 0; i < demo_flow_count(trace); i++) {
        const demo_flow *f = demo_flow_at(trace, i);
        if (f->proto == 17 && f->server_port == 53)
            k.dns++;
        else if (f->proto == 6 && f->server_port == 443)
            k.tls++;
        else if (f->proto == 6 && f->server_port == 80)
            k.http++;
        else if (f->proto == 17 && f->server_port == 443)
            k.quic++;
        else if (f->proto == 6 && f->server_port == 445)
            k.bulk++;
        else if (f->proto == 17 && f->server_port == 123)
            k.ntp++;
        else if (f->proto == 17 && f->server_port == 514)
            k.syslog++;
        else
            k.other++;
    }
    return k;
}

static void test_mixed_has_every_kind(void **state)
{
    (void)state;
    demo_trace *trace = generate(DEMO_PROFILE_MIXED, 1, 20000);

    assert_int_equal(demo_flow_count(trace), 20000);
    kind_counts k = count_kinds(trace);
    assert_int_equal(k.other, 0);
    /* Shares are 45% DNS, 22% small UDP, 18% TLS, 8% HTTP, 6.9% QUIC and
     * 0.1% bulk; allow for sampling noise over 20,000 draws. */
    assert_in_range(k.dns, 8500, 9500);
    assert_in_range(k.ntp + k.syslog, 4000, 4800);
    assert_in_range(k.tls, 3300, 3900);
    assert_in_range(k.http, 1400, 1800);
    assert_in_range(k.quic, 1200, 1600);
    assert_in_range(k.bulk, 5, 40);
    assert_true(k.ntp > 0);
    assert_true(k.syslog > 0);

    /* About 7.4 packets per conversation. */
    double per_flow = (double)demo_packet_count(trace) / (double)demo_flow_count(trace);
    assert_true(per_flow > 6.0);
    assert_true(per_flow < 9.0);
    demo_trace_destroy(&trace);
}

static void test_mixed_frames_sorted_and_valid(void **state)
{
    (void)state;
    demo_trace *trace = generate(DEMO_PROFILE_MIXED, 3, 3000);
    uint64_t previous = 0;
    size_t transport_checked = 0;
    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        assert_true(p.ts_us >= previous);
        previous = p.ts_us;
        /* Ethernet II, IPv4 with a 20-byte header and a valid checksum. */
        assert_true(p.caplen >= 34);
        assert_int_equal(get16(p.data + 12), 0x0800);
        assert_int_equal(p.data[14], 0x45);
        const uint8_t *ip = p.data + 14;
        assert_int_equal(ones_sum(0, ip, 20), 0xffff);
        /* TCP and UDP checksums where the whole frame is stored. */
        uint16_t ip_len = get16(ip + 2);
        if (p.caplen == p.wirelen && (ip[9] == 6 || ip[9] == 17)) {
            uint32_t acc = ones_sum(0, ip + 12, 8);
            acc += ip[9] + (uint32_t)(ip_len - 20);
            assert_int_equal(ones_sum(acc, ip + 20, (size_t)ip_len - 20), 0xffff);
            transport_checked++;
        }
    }
    assert_true(transport_checked > demo_packet_count(trace) / 2);
    demo_trace_destroy(&trace);
}

static void test_synflood_one_syn_per_flow(void **state)
{
    (void)state;
    demo_trace *trace = generate(DEMO_PROFILE_SYNFLOOD, 1, 8000);

    assert_int_equal(demo_packet_count(trace), 8000);
    assert_int_equal(demo_flow_count(trace), 8000);
    size_t to_victim = 0, scan = 0;
    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        const uint8_t *ip = p.data + 14;
        assert_int_equal(ip[9], 6);
        /* TCP flags: SYN alone. */
        assert_int_equal(ip[20 + 13], 0x02);
        /* Every target is internal (10.1.0.0/16). */
        assert_int_equal(ip[16], 10);
        assert_int_equal(ip[17], 1);
        if (ip[18] == 0 && ip[19] == 80 && get16(ip + 22) == 80 && ip[12] == 198)
            to_victim++;
        else
            scan++;
    }
    /* Three quarters flood, one quarter scan. */
    assert_int_equal(to_victim, 6000);
    assert_int_equal(scan, 2000);
    demo_trace_destroy(&trace);
}

static void test_scan16_walks_every_address(void **state)
{
    (void)state;
    demo_trace *trace = generate(DEMO_PROFILE_SCAN16, 1, 65536 + 10);
    static bool seen[65536];
    size_t distinct = 0, second_port = 0;

    memset(seen, 0, sizeof seen);
    assert_int_equal(demo_packet_count(trace), 65536 + 10);
    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        const uint8_t *ip = p.data + 14;
        uint16_t port = get16(ip + 22);

        /* A SYN from 203.0.113.7 to 10.1.0.0/16. */
        assert_int_equal(ip[20 + 13], 0x02);
        assert_int_equal(ip[12], 203);
        assert_int_equal(ip[15], 7);
        assert_int_equal(ip[16], 10);
        assert_int_equal(ip[17], 1);
        if (port == 22) {
            size_t target = (size_t)ip[18] << 8 | ip[19];
            if (!seen[target])
                distinct++;
            seen[target] = true;
        } else {
            assert_int_equal(port, 23);
            second_port++;
        }
    }
    /* Every address on the first port before the second port starts. */
    assert_int_equal(distinct, 65536);
    assert_int_equal(second_port, 10);
    demo_trace_destroy(&trace);
}

static void test_fragments_never_complete(void **state)
{
    (void)state;
    demo_trace *trace = generate(DEMO_PROFILE_FRAGMENTS, 1, 400);
    size_t first = 0, third = 0, second_only = 0;

    /* Datagram i % 4 sends: 0 and 1 the first fragment only, 2 the first
     * and the third, 3 the second only. 400 datagrams make 500 frames. */
    assert_int_equal(demo_packet_count(trace), 500);
    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        const uint8_t *ip = p.data + 14;
        uint16_t flags_offset = get16(ip + 6);

        assert_int_equal(ip[9], 17);
        /* More fragments is set on every fragment, so none completes. */
        assert_true((flags_offset & 0x2000) != 0);
        assert_int_equal(ones_sum(0, ip, 20), 0xffff);
        switch (flags_offset & 0x1fff) {
        case 0:
            first++;
            break;
        case 1480 / 8:
            second_only++;
            break;
        case 2960 / 8:
            third++;
            break;
        default:
            fail_msg("unexpected fragment offset %u", (unsigned)(flags_offset & 0x1fff));
        }
    }
    assert_int_equal(first, 300);
    assert_int_equal(third, 100);
    assert_int_equal(second_only, 100);
    demo_trace_destroy(&trace);
}

static void test_dnsnames_asks_distinct_names(void **state)
{
    (void)state;
    demo_trace *trace = generate(DEMO_PROFILE_DNSNAMES, 1, 3000);
    char (*names)[64] = calloc(3000, sizeof *names);
    size_t queries = 0;

    assert_non_null(names);
    for (size_t i = 0; i < demo_packet_count(trace); i++) {
        demo_packet p = demo_packet_at(trace, i);
        const uint8_t *ip = p.data + 14;
        const uint8_t *dns = ip + 20 + 8;

        assert_int_equal(ip[9], 17);
        if (get16(ip + 22) != 53)
            continue; /* the NXDOMAIN response */
        /* The first label of the question: "n" and 14 hex digits. */
        assert_int_equal(dns[12], 15);
        assert_true(queries < 3000);
        memcpy(names[queries], dns + 13, 15);
        queries++;
    }
    assert_int_equal(queries, 3000);
    for (size_t i = 1; i < queries; i++)
        assert_memory_not_equal(names[i], names[i - 1], 15);
    /* The label starts with the query's index, so all are distinct. */
    assert_memory_equal(names[0], "n00000000", 9);
    assert_memory_equal(names[2999], "n00000bb7", 9);
    free(names);
    demo_trace_destroy(&trace);
}

static void test_profiles_deterministic(void **state)
{
    (void)state;
    static const demo_profile profiles[] = {DEMO_PROFILE_MIXED, DEMO_PROFILE_SYNFLOOD};
    for (size_t k = 0; k < 2; k++) {
        demo_trace *a = generate(profiles[k], 5, 1500);
        demo_trace *b = generate(profiles[k], 5, 1500);
        demo_trace *c = generate(profiles[k], 6, 1500);
        assert_int_equal(demo_packet_count(a), demo_packet_count(b));
        for (size_t i = 0; i < demo_packet_count(a); i++) {
            demo_packet x = demo_packet_at(a, i);
            demo_packet y = demo_packet_at(b, i);
            assert_int_equal(x.ts_us, y.ts_us);
            assert_int_equal(x.caplen, y.caplen);
            assert_memory_equal(x.data, y.data, x.caplen);
        }
        bool differs = demo_packet_count(a) != demo_packet_count(c);
        for (size_t i = 0; !differs && i < demo_packet_count(a); i++) {
            demo_packet x = demo_packet_at(a, i);
            demo_packet z = demo_packet_at(c, i);
            differs = x.caplen != z.caplen || memcmp(x.data, z.data, x.caplen) != 0;
        }
        assert_true(differs);
        demo_trace_destroy(&a);
        demo_trace_destroy(&b);
        demo_trace_destroy(&c);
    }
}

static void test_profile_rejects_bad_config(void **state)
{
    (void)state;
    demo_trace *trace = NULL;
    demo_profile_config zero = {DEMO_PROFILE_MIXED, 1, DEMO_DEFAULT_START_S, 0};
    demo_profile_config many = {DEMO_PROFILE_SYNFLOOD, 1, DEMO_DEFAULT_START_S,
                                DEMO_PROFILE_MAX_FLOWS + 1ull};
    demo_profile_config office = {DEMO_PROFILE_OFFICE, 1, DEMO_DEFAULT_START_S, 10};
    demo_profile_config late = {DEMO_PROFILE_MIXED, 1, 253402300799ull, 10};
    const demo_profile_config *bad[] = {&zero, &many, &office, &late};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(demo_generate_profile(bad[i], &trace), -1);
        assert_int_equal(errno, EINVAL);
        assert_null(trace);
    }

    demo_profile parsed = DEMO_PROFILE_OFFICE;
    assert_int_equal(demo_profile_parse("synflood", &parsed), 0);
    assert_int_equal(parsed, DEMO_PROFILE_SYNFLOOD);
    assert_int_equal(demo_profile_parse("mixed", &parsed), 0);
    assert_int_equal(parsed, DEMO_PROFILE_MIXED);
    assert_int_equal(demo_profile_parse("scan16", &parsed), 0);
    assert_int_equal(parsed, DEMO_PROFILE_SCAN16);
    assert_int_equal(demo_profile_parse("fragments", &parsed), 0);
    assert_int_equal(parsed, DEMO_PROFILE_FRAGMENTS);
    assert_int_equal(demo_profile_parse("dnsnames", &parsed), 0);
    assert_int_equal(parsed, DEMO_PROFILE_DNSNAMES);
    assert_string_equal(demo_profile_name(DEMO_PROFILE_DNSNAMES), "dnsnames");
    assert_int_equal(demo_profile_parse("Mixed", &parsed), -1);
    assert_int_equal(demo_profile_parse("", &parsed), -1);
}

static void test_profile_cli_options(void **state)
{
    (void)state;
    const char *bin = tu_env("FLOWVEIL_DEMOGEN", NULL);
    if (bin == NULL)
        fail_msg("FLOWVEIL_DEMOGEN is not set; run the test through ctest, which sets it");
    char dir[512];
    tu_make_temp_dir(dir, sizeof dir);

    static const char *const bad[] = {
        "--profile web",        "--profile mixed --flows 0", "--profile mixed --flows 1x",
        "--flows 100",          "--profile synflood --hours 2",
        "--profile synflood --flows 20000001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "'%s' %s --output '%s/x.pcap' 2>/dev/null", bin, bad[i], dir);
        int status = tu_run(cmd);
        if (status != 2)
            print_error("arguments \"%s\" gave exit status %d\n", bad[i], status);
        assert_int_equal(status, 2);
    }

    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' --profile synflood --flows 500 --output '%s/syn.pcap' 2>/dev/null",
             bin, dir);
    assert_int_equal(tu_run(cmd), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/syn.pcap", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    /* 24-byte file header, then per SYN a 16-byte record header and a
     * 74-byte frame (Ethernet, IPv4, TCP with 20 bytes of options). */
    assert_int_equal(ftell(f), 24 + 500 * (16 + 74));
    fclose(f);
    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_has_every_kind),
        cmocka_unit_test(test_mixed_frames_sorted_and_valid),
        cmocka_unit_test(test_synflood_one_syn_per_flow),
        cmocka_unit_test(test_scan16_walks_every_address),
        cmocka_unit_test(test_fragments_never_complete),
        cmocka_unit_test(test_dnsnames_asks_distinct_names),
        cmocka_unit_test(test_profiles_deterministic),
        cmocka_unit_test(test_profile_rejects_bad_config),
        cmocka_unit_test(test_profile_cli_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
