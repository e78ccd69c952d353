/*
 * test_escrow_cli: officer key generation, key escrow during ingest of
 * the demo capture, `flowveil reveal` with one and two officers (every
 * attempt audited), escrow expiry with the flows retention limit, and
 * `flowveil subject export|erase` for the demo host 10.1.0.23.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define T0_S 1767225600ull      /* ingest time, 2026-01-01T00:00:00Z */
#define DAY_S 86400ull

/* The demo generator's beacon host and its MAC (tools/demogen). */
#define DEMO_HOST "10.1.0.23"

typedef struct escrow_env {
    char dir[4096];
    char db[4096];
    char policy[4096];
    char key_a[4096], key_b[4096];
    char demo[4096];
} escrow_env;

static void run_ok(const char *const argv[], const char *dir, const char *tag, e2e_result *res)
{
    e2e_run(argv, dir, tag, 300, res);
    if (!res->exited || res->status != 0 || e2e_has_sanitizer_report(res->err)) {
        e2e_print_result(tag, res);
        e2e_result_free(res);
        fail_msg("flowveil %s failed", tag);
    }
}

static void keygen(escrow_env *env, char out[4096], const char *name)
{
    e2e_path(out, env->dir, name);
    const char *argv[] = {e2e_bin(), "keys", "officer-keygen", "--output", out, NULL};
    e2e_result res;
    run_ok(argv, env->dir, "keygen", &res);
    e2e_result_free(&res);
}

/*
 * Generate two officer keys and the demo capture, write a policy that
 * escrows to OFFICERS (1 or 2) with flows kept RETENTION, and ingest.
 */
static void prepare(escrow_env *env, int officers, const char *retention)
{
    memset(env, 0, sizeof *env);
    tu_make_temp_dir(env->dir, sizeof env->dir);
    e2e_path(env->db, env->dir, "db");
    e2e_path(env->policy, env->dir, "policy.yaml");
    e2e_path(env->demo, env->dir, "demo.pcap");
    keygen(env, env->key_a, "officer-a.key");
    keygen(env, env->key_b, "officer-b.key");

    char text[8192];
    int n = snprintf(text, sizeof text,
                     "version: 1\n"
                     "zones: [{name: lan, networks: [\"10.0.0.0/8\"]}]\n"
                     "retention: {flows: %s, dns: %s, tls: %s, http: %s, alerts: %s,"
                     " dhcp: %s, ssh: %s}\n"
                     "escrow:\n"
                     "  enabled: true\n"
                     "  officers: [%s.pub%s%s%s]\n",
                     retention, retention, retention, retention, retention, retention, retention,
                     env->key_a, officers == 2 ? ", " : "", officers == 2 ? env->key_b : "",
                     officers == 2 ? ".pub" : "");
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(env->policy, text, (size_t)n);

    const char *gen[] = {e2e_demogen(), "--output", env->demo, NULL};
    e2e_result res;
    run_ok(gen, env->dir, "demogen", &res);
    e2e_result_free(&res);

    char now[32];
    snprintf(now, sizeof now, "%llu", T0_S);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", env->policy, "--db", env->db,
                            "--now", now, env->demo, NULL};
    run_ok(ingest, env->dir, "ingest", &res);
    e2e_result_free(&res);
}

/* Export CLS at T0 and return the "src" token of the first flow whose
 * source is a pseudonymized host. */
static char *first_src_token(escrow_env *env)
{
    json_t *flows = e2e_export(env->dir, env->db, "flows", T0_S);
    char *token = NULL;
    size_t i;
    json_t *rec;
    json_array_foreach(flows, i, rec) {
        const char *src = json_string_value(json_object_get(rec, "src"));
        if (src != NULL && strncmp(src, "ip4-", 4) == 0) {
            token = strdup(src);
            break;
        }
    }
    json_decref(flows);
    assert_non_null(token);
    return token;
}

/* Run reveal with KEY1 and optional KEY2; return the result. */
static void reveal(escrow_env *env, const char *token, const char *key1, const char *key2,
                   const char *reason, e2e_result *res)
{
    const char *argv[14];
    size_t n = 0;
    argv[n++] = e2e_bin();
    argv[n++] = "reveal";
    argv[n++] = "--db";
    argv[n++] = env->db;
    argv[n++] = "--pseudonym";
    argv[n++] = token;
    argv[n++] = "--secret-key";
    argv[n++] = key1;
    if (key2 != NULL) {
        argv[n++] = "--second-key";
        argv[n++] = key2;
    }
    if (reason != NULL) {
        argv[n++] = "--reason";
        argv[n++] = reason;
    }
    argv[n] = NULL;
    e2e_run(argv, env->dir, "reveal", 60, res);
    assert_false(e2e_has_sanitizer_report(res->err));
}

/* Return the audit trail as a JSON array, newest first. */
static json_t *audit_entries(escrow_env *env)
{
    const char *argv[] = {e2e_bin(), "audit", "show", "--db", env->db, "--json", NULL};
    e2e_result res;
    run_ok(argv, env->dir, "audit-show", &res);
    json_t *entries = e2e_parse_json_lines(res.out, res.out_len);
    e2e_result_free(&res);
    assert_non_null(entries);
    return entries;
}

static size_t count_entries(json_t *entries, const char *action, json_int_t result)
{
    size_t count = 0, i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *a = json_string_value(json_object_get(e, "action"));
        if (a != NULL && strcmp(a, action) == 0 &&
            (result < 0 || json_integer_value(json_object_get(e, "result_count")) == result))
            count++;
    }
    return count;
}

static void audit_verify_ok(escrow_env *env)
{
    const char *argv[] = {e2e_bin(), "audit", "verify", "--db", env->db, NULL};
    e2e_result res;
    run_ok(argv, env->dir, "audit-verify", &res);
    assert_non_null(strstr(res.out, "OK"));
    e2e_result_free(&res);
}

/* ---------------------------------------------------------------------- */

static void test_officer_keygen_modes_and_no_overwrite(void **state)
{
    (void)state;
    escrow_env env;
    memset(&env, 0, sizeof env);
    tu_make_temp_dir(env.dir, sizeof env.dir);
    keygen(&env, env.key_a, "officer.key");

    struct stat st;
    assert_int_equal(stat(env.key_a, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char pub[4096 + 8];
    snprintf(pub, sizeof pub, "%s.pub", env.key_a);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 077, 044);    /* public: readable by all, writable by none */
    size_t len = 0;
    char *text = tu_read_file(pub, &len);
    assert_non_null(strstr(text, "flowveil-officer-public-key-v1 "));
    free(text);

    /* A second keygen to the same path must fail and keep the key. */
    char *before = tu_read_file(env.key_a, &len);
    const char *again[] = {e2e_bin(), "keys", "officer-keygen", "--output", env.key_a, NULL};
    e2e_result res;
    e2e_run(again, env.dir, "keygen-again", 60, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 1);
    e2e_result_free(&res);
    size_t after_len = 0;
    char *after = tu_read_file(env.key_a, &after_len);
    assert_int_equal(after_len, len);
    assert_memory_equal(before, after, len);
    free(before);
    free(after);

    /* A symbolic link at the output path is not followed. */
    char target[4096], link_path[4096];
    e2e_path(target, env.dir, "target");
    e2e_path(link_path, env.dir, "link.key");
    assert_int_equal(symlink(target, link_path), 0);
    const char *via_link[] = {e2e_bin(), "keys", "officer-keygen", "--output", link_path, NULL};
    e2e_run(via_link, env.dir, "keygen-link", 60, &res);
    assert_int_equal(res.status, 1);
    e2e_result_free(&res);
    assert_int_not_equal(access(target, F_OK), 0);
    tu_remove_tree(env.dir);
}

static void test_reveal_with_one_officer(void **state)
{
    (void)state;
    escrow_env env;
    prepare(&env, 1, "30d");
    char *token = first_src_token(&env);

    e2e_result res;
    reveal(&env, token, env.key_a, NULL, "case 2026-001", &res);
    if (res.status != 0)
        e2e_print_result("reveal", &res);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(res.out, "ipv4\t10.1.0."));
    e2e_result_free(&res);

    /* The other key is not an officer of this policy. */
    reveal(&env, token, env.key_b, NULL, "case 2026-001", &res);
    assert_int_equal(res.status, 1);
    assert_null(strstr(res.out, "10.1.0."));
    e2e_result_free(&res);

    /* Without a reason nothing is tried: a usage error. */
    reveal(&env, token, env.key_a, NULL, NULL, &res);
    assert_int_equal(res.status, 2);
    assert_non_null(strstr(res.err, "--reason"));
    e2e_result_free(&res);

    /* A reason with a tab or a newline is rejected before anything is
     * tried or audited, because it would forge audit show columns. */
    static const char *const bad_reasons[] = {"case\t2026-001", "case 2026-001\nforged line",
                                              "case\r2026-001"};
    for (size_t i = 0; i < sizeof bad_reasons / sizeof bad_reasons[0]; i++) {
        reveal(&env, token, env.key_a, NULL, bad_reasons[i], &res);
        assert_int_equal(res.status, 2);
        assert_non_null(strstr(res.err, "invalid --reason: control character"));
        assert_null(strstr(res.out, "10.1.0."));
        e2e_result_free(&res);
    }

    json_t *entries = audit_entries(&env);
    assert_int_equal(count_entries(entries, "reveal", -1), 2);
    assert_int_equal(count_entries(entries, "reveal", 1), 1);
    assert_int_equal(count_entries(entries, "reveal", 0), 1);
    json_decref(entries);
    audit_verify_ok(&env);
    free(token);
    tu_remove_tree(env.dir);
}

static void test_dual_control_needs_both_keys(void **state)
{
    (void)state;
    escrow_env env;
    prepare(&env, 2, "30d");
    char *token = first_src_token(&env);
    e2e_result res;

    reveal(&env, token, env.key_a, NULL, "case 2026-002", &res);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.err, "dual control"));
    assert_null(strstr(res.out, "10.1.0."));
    e2e_result_free(&res);

    reveal(&env, token, env.key_b, NULL, "case 2026-002", &res);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.err, "dual control"));
    e2e_result_free(&res);

    /* Both keys, in either order. */
    reveal(&env, token, env.key_b, env.key_a, "case 2026-002", &res);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(res.out, "ipv4\t10.1.0."));
    e2e_result_free(&res);
    reveal(&env, token, env.key_a, env.key_b, "case 2026-002", &res);
    assert_int_equal(res.status, 0);
    e2e_result_free(&res);

    /* An unknown token is audited as a failed attempt too. */
    reveal(&env, "ip4-aaaaaaaaaaaaaaaa", env.key_a, env.key_b, "case 2026-002", &res);
    assert_int_equal(res.status, 1);
    e2e_result_free(&res);

    json_t *entries = audit_entries(&env);
    assert_int_equal(count_entries(entries, "reveal", -1), 5);
    assert_int_equal(count_entries(entries, "reveal", 0), 3);
    assert_int_equal(count_entries(entries, "reveal", 1), 2);
    json_t *newest = json_array_get(entries, 0);
    assert_string_equal(json_string_value(json_object_get(newest, "reason")), "case 2026-002");
    assert_string_equal(json_string_value(json_object_get(newest, "object")),
                        "ip4-aaaaaaaaaaaaaaaa");
    json_decref(entries);
    audit_verify_ok(&env);
    free(token);
    tu_remove_tree(env.dir);
}

static void test_escrow_entries_expire_with_retention(void **state)
{
    (void)state;
    escrow_env env;
    prepare(&env, 1, "1d");
    char *token = first_src_token(&env);
    e2e_result res;

    reveal(&env, token, env.key_a, NULL, "before expiry", &res);
    assert_int_equal(res.status, 0);
    e2e_result_free(&res);

    char later[32];
    snprintf(later, sizeof later, "%llu", T0_S + 2 * DAY_S);
    const char *sweep[] = {e2e_bin(), "sweep", "--db", env.db, "--now", later, NULL};
    run_ok(sweep, env.dir, "sweep", &res);
    e2e_result_free(&res);

    reveal(&env, token, env.key_a, NULL, "after expiry", &res);
    assert_int_equal(res.status, 1);
    assert_non_null(strstr(res.err, "no escrow entry"));
    e2e_result_free(&res);
    free(token);
    tu_remove_tree(env.dir);
}

/* Run `subject ACTION --ip IP` and return its result. */
static void subject(escrow_env *env, const char *action, const char *ip, const char *output,
                    e2e_result *res)
{
    char now[32];
    snprintf(now, sizeof now, "%llu", T0_S);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = e2e_bin();
    argv[n++] = "subject";
    argv[n++] = action;
    argv[n++] = "--db";
    argv[n++] = env->db;
    argv[n++] = "--policy";
    argv[n++] = env->policy;
    argv[n++] = "--ip";
    argv[n++] = ip;
    argv[n++] = "--now";
    argv[n++] = now;
    if (output != NULL) {
        argv[n++] = "--output";
        argv[n++] = output;
    }
    argv[n] = NULL;
    run_ok(argv, env->dir, action, res);
}

/* Count the records of the JSON Lines file PATH: all, flows and dns. */
static size_t read_export(const char *path, size_t *flows, size_t *dns)
{
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    json_t *records = e2e_parse_json_lines(text, len);
    free(text);
    assert_non_null(records);
    size_t i;
    json_t *r;
    *flows = *dns = 0;
    json_array_foreach(records, i, r) {
        const char *cls = json_string_value(json_object_get(r, "class"));
        assert_non_null(cls);
        *flows += strcmp(cls, "flows") == 0;
        *dns += strcmp(cls, "dns") == 0;
    }
    size_t total = json_array_size(records);
    json_decref(records);
    return total;
}

static void test_subject_export_then_erase_everywhere(void **state)
{
    (void)state;
    escrow_env env;
    prepare(&env, 1, "30d");
    e2e_result res;

    char out1[4096], out2[4096];
    e2e_path(out1, env.dir, "subject-1.jsonl");
    e2e_path(out2, env.dir, "subject-2.jsonl");
    subject(&env, "export", DEMO_HOST, out1, &res);
    e2e_result_free(&res);
    struct stat st;
    assert_int_equal(stat(out1, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);      /* personal data: owner only */
    size_t flows = 0, dns = 0;
    size_t total = read_export(out1, &flows, &dns);
    /* The beacon host connects over TCP to its peer and sends DNS queries. */
    assert_true(flows > 0);
    assert_true(dns > 0);
    size_t subject_flows = flows;

    /* The IPv4-mapped IPv6 form names the same host and finds the same records. */
    char out_mapped[4096];
    e2e_path(out_mapped, env.dir, "subject-mapped.jsonl");
    subject(&env, "export", "::ffff:" DEMO_HOST, out_mapped, &res);
    e2e_result_free(&res);
    size_t mapped_flows = 0, mapped_dns = 0;
    assert_int_equal(read_export(out_mapped, &mapped_flows, &mapped_dns), total);
    assert_int_equal(mapped_flows, flows);
    assert_int_equal(mapped_dns, dns);

    json_t *all_flows = e2e_export(env.dir, env.db, "flows", T0_S);
    size_t before_flows = json_array_size(all_flows);
    json_decref(all_flows);
    assert_true(before_flows > flows);  /* other hosts are left alone */

    /* Erasing by the mapped form removes the records of the IPv4 host. */
    subject(&env, "erase", "::ffff:" DEMO_HOST, NULL, &res);
    assert_non_null(strstr(res.err, "deleted"));
    e2e_result_free(&res);

    subject(&env, "export", DEMO_HOST, out2, &res);
    e2e_result_free(&res);
    assert_int_equal(read_export(out2, &flows, &dns), 0);

    all_flows = e2e_export(env.dir, env.db, "flows", T0_S);
    assert_int_equal(json_array_size(all_flows), before_flows - subject_flows);
    json_decref(all_flows);

    json_t *entries = audit_entries(&env);
    assert_int_equal(count_entries(entries, "subject.export", -1), 3);
    assert_int_equal(count_entries(entries, "subject.erase", (json_int_t)total), 1);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        const char *a = json_string_value(json_object_get(e, "action"));
        if (a == NULL || strncmp(a, "subject.", 8) != 0)
            continue;
        char *dump = json_dumps(e, JSON_COMPACT);
        assert_null(strstr(dump, DEMO_HOST));   /* the address is never audited */
        assert_non_null(strstr(dump, "flows="));
        free(dump);
    }
    json_decref(entries);
    audit_verify_ok(&env);
    tu_remove_tree(env.dir);
}

/* Write to PATH one raw IPv6 UDP datagram per address in SOURCES (COUNT
 * of them) to 2001:db8::1, each from its own port. */
static void write_ipv6_sources(const char *path, const char *const *sources, size_t count)
{
    pcap_t *dead = pcap_open_dead(DLT_RAW, 65535);
    assert_non_null(dead);
    pcap_dumper_t *d = pcap_dump_open(dead, path);
    assert_non_null(d);
    for (size_t i = 0; i < count; i++) {
        uint8_t frame[40 + 8 + 1] = {0};
        frame[0] = 0x60;
        frame[5] = 9;      /* payload length: UDP header and one byte */
        frame[6] = 17;     /* next header: UDP */
        frame[7] = 64;
        assert_int_equal(inet_pton(AF_INET6, sources[i], frame + 8), 1);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", frame + 24), 1);
        uint16_t sport = (uint16_t)(40000 + i);
        frame[40] = (uint8_t)(sport >> 8);
        frame[41] = (uint8_t)sport;
        frame[42] = 0x1f;  /* port 8000 */
        frame[43] = 0x40;
        frame[45] = 9;
        struct pcap_pkthdr h;
        memset(&h, 0, sizeof h);
        h.ts.tv_sec = (time_t)(T0_S - 3600 + i);
        h.caplen = h.len = sizeof frame;
        pcap_dump((u_char *)d, &h, frame);
    }
    pcap_dump_close(d);
    pcap_close(dead);
}

/* Records of IPv6 addresses that carry the subject's IPv4 address are
 * found and erased with it: the mapped, compatible and NAT64 forms. The
 * same forms of another host are left alone. */
static void test_subject_finds_ipv6_forms(void **state)
{
    (void)state;
    escrow_env env;
    prepare(&env, 1, "30d");
    e2e_result res;
    char out[4096], capture[4096], now[32];
    e2e_path(out, env.dir, "subject.jsonl");
    subject(&env, "export", DEMO_HOST, out, &res);
    e2e_result_free(&res);
    size_t flows_before = 0, dns = 0;
    (void)read_export(out, &flows_before, &dns);
    assert_true(flows_before > 0);

    static const char *const sources[] = {"::ffff:" DEMO_HOST, "::" DEMO_HOST,
                                          "64:ff9b::" DEMO_HOST, "64:ff9b:1::" DEMO_HOST,
                                          "::ffff:10.1.0.99"};
    e2e_path(capture, env.dir, "ipv6-forms.pcap");
    write_ipv6_sources(capture, sources, sizeof sources / sizeof sources[0]);
    snprintf(now, sizeof now, "%llu", T0_S);
    const char *ingest[] = {e2e_bin(), "ingest", "--policy", env.policy, "--db", env.db,
                            "--now", now, capture, NULL};
    run_ok(ingest, env.dir, "ingest-ipv6", &res);
    e2e_result_free(&res);

    assert_int_equal(unlink(out), 0);
    subject(&env, "export", DEMO_HOST, out, &res);
    e2e_result_free(&res);
    size_t flows_after = 0;
    (void)read_export(out, &flows_after, &dns);
    /* The four forms of the subject, not the other host's. */
    assert_int_equal(flows_after, flows_before + 4);

    subject(&env, "erase", DEMO_HOST, NULL, &res);
    e2e_result_free(&res);
    json_t *all_flows = e2e_export(env.dir, env.db, "flows", T0_S);
    size_t i;
    json_t *flow;
    size_t ipv6_left = 0;
    json_array_foreach(all_flows, i, flow) {
        const char *src = json_string_value(json_object_get(flow, "src"));
        if (src != NULL && strncmp(src, "ip6-", 4) == 0)
            ipv6_left++;
    }
    json_decref(all_flows);
    assert_int_equal(ipv6_left, 1);
    tu_remove_tree(env.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_officer_keygen_modes_and_no_overwrite),
        cmocka_unit_test(test_reveal_with_one_officer),
        cmocka_unit_test(test_dual_control_needs_both_keys),
        cmocka_unit_test(test_escrow_entries_expire_with_retention),
        cmocka_unit_test(test_subject_export_then_erase_everywhere),
        cmocka_unit_test(test_subject_finds_ipv6_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
