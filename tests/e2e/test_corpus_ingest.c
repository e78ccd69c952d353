/*
 * test_corpus_ingest: ingest every capture of the shared corpus on its
 * own and compare what flowveil exports with the tshark reference answers
 * in $FLOWVEIL_CORPUS/expected/<file>.json.
 *
 * The policy has no zones, so every address is kept as text and can be
 * compared with the reference. Compared fields:
 *   flows       packets and IP bytes per unordered 5-tuple (both
 *               directions summed, so the two tools may pick different
 *               initiators and split a flow into several records)
 *   dns         the set of "name|qtype" over every question of every
 *               query and response
 *   dns_rcodes  responses per RCODE
 *   tls_sni     the set of ClientHello SNI values
 *   tls_alpn    the set of ALPN values, offered and selected
 *   ja3, ja3s, ja4  the sets of TLS fingerprints
 *   http_hosts  the set of HTTP Host values
 *   http_methods  requests per method
 *   dhcp_hostnames  the set of DHCP host names (option 12)
 *   ssh_banners the set of SSH identification strings, both sides
 *
 * Explained disagreements are listed in tests/e2e/known_differences.txt
 * ("FILE FIELD reason"). The test fails on any disagreement that is not
 * listed and on any listed one that no longer occurs.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "fv_common.h"
#include "testutil.h"

/* The stored-at time given to ingest and export; any fixed value works. */
#define CORPUS_NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */

/* At most this many detail lines per file and field, to keep logs readable. */
#define DETAIL_LINES_MAX 12

static const char *const compared_fields[] = {"flows", "dns", "tls_sni", "http_hosts",
                                             "tls_alpn", "ja3", "ja3s", "ja4",
                                             "dhcp_hostnames", "ssh_banners", "dns_rcodes",
                                             "http_methods"};

/* Write the canonical text of address TEXT (inet_ntop after inet_pton),
 * so "2001:0db8::1" and "2001:db8::1" compare equal. Unparsable text is
 * copied as is. */
static void canonical_address(const char *text, char out[INET6_ADDRSTRLEN])
{
    unsigned char bin[16];
    if (inet_pton(AF_INET, text, bin) == 1 && inet_ntop(AF_INET, bin, out, INET6_ADDRSTRLEN))
        return;
    if (inet_pton(AF_INET6, text, bin) == 1 && inet_ntop(AF_INET6, bin, out, INET6_ADDRSTRLEN))
        return;
    snprintf(out, INET6_ADDRSTRLEN, "%s", text);
}

static json_int_t int_or_zero(const json_t *value)
{
    return json_is_integer(value) ? json_integer_value(value) : 0;
}

/* Build the direction-independent key "proto A#pa B#pb" with the two
 * endpoints in sorted order. */
static void flow_key(json_int_t proto, const char *a, json_int_t pa, const char *b, json_int_t pb,
                     char *out, size_t out_len)
{
    char ca[INET6_ADDRSTRLEN], cb[INET6_ADDRSTRLEN];
    char ea[INET6_ADDRSTRLEN + 8], eb[INET6_ADDRSTRLEN + 8];
    canonical_address(a, ca);
    canonical_address(b, cb);
    snprintf(ea, sizeof ea, "%s#%lld", ca, (long long)pa);
    snprintf(eb, sizeof eb, "%s#%lld", cb, (long long)pb);
    if (strcmp(ea, eb) <= 0)
        snprintf(out, out_len, "%lld %s %s", (long long)proto, ea, eb);
    else
        snprintf(out, out_len, "%lld %s %s", (long long)proto, eb, ea);
}

/* Add PACKETS and BYTES to the totals of KEY in MAP ({key: [packets, bytes]}). */
static void flow_add(json_t *map, const char *key, json_int_t packets, json_int_t bytes)
{
    json_t *entry = json_object_get(map, key);
    if (entry == NULL) {
        json_object_set_new(map, key, json_pack("[II]", packets, bytes));
        return;
    }
    json_array_set_new(entry, 0, json_integer(json_integer_value(json_array_get(entry, 0)) + packets));
    json_array_set_new(entry, 1, json_integer(json_integer_value(json_array_get(entry, 1)) + bytes));
}

static json_t *reference_flows(const json_t *expected)
{
    json_t *map = json_object();
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(expected, "flows"), i, f) {
        char key[256];
        flow_key(int_or_zero(json_object_get(f, "proto")),
                 json_string_value(json_object_get(f, "src")),
                 int_or_zero(json_object_get(f, "sport")),
                 json_string_value(json_object_get(f, "dst")),
                 int_or_zero(json_object_get(f, "dport")), key, sizeof key);
        flow_add(map, key,
                 int_or_zero(json_object_get(f, "packets_fwd")) +
                     int_or_zero(json_object_get(f, "packets_rev")),
                 int_or_zero(json_object_get(f, "ip_bytes_fwd")) +
                     int_or_zero(json_object_get(f, "ip_bytes_rev")));
    }
    return map;
}

static json_t *our_flows(const json_t *records)
{
    json_t *map = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *src = json_string_value(json_object_get(r, "src"));
        const char *dst = json_string_value(json_object_get(r, "dst"));
        char key[256];
        flow_key(int_or_zero(json_object_get(r, "proto")), src != NULL ? src : "?",
                 int_or_zero(json_object_get(r, "sport")), dst != NULL ? dst : "?",
                 int_or_zero(json_object_get(r, "dport")), key, sizeof key);
        flow_add(map, key,
                 int_or_zero(json_object_get(r, "pkts_fwd")) +
                     int_or_zero(json_object_get(r, "pkts_rev")),
                 int_or_zero(json_object_get(r, "bytes_fwd")) +
                     int_or_zero(json_object_get(r, "bytes_rev")));
    }
    return map;
}

/* A list of disagreements, one text line each, keyed by "FILE FIELD". */
typedef struct diff_report {
    json_t *found;      /* {"FILE FIELD": [detail lines]} */
} diff_report;

static void report_line(diff_report *rep, const char *file, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void report_line(diff_report *rep, const char *file, const char *field, const char *fmt,
                        ...)
{
    char key[512], line[1024];
    snprintf(key, sizeof key, "%s %s", file, field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);

    json_t *lines = json_object_get(rep->found, key);
    if (lines == NULL) {
        lines = json_array();
        json_object_set_new(rep->found, key, lines);
    }
    if (json_array_size(lines) < DETAIL_LINES_MAX)
        json_array_append_new(lines, json_string(line));
    else if (json_array_size(lines) == DETAIL_LINES_MAX)
        json_array_append_new(lines, json_string("... (more differences not shown)"));
}

static void compare_flows(diff_report *rep, const char *file, const json_t *expected,
                          const json_t *records)
{
    json_t *ref = reference_flows(expected);
    json_t *ours = our_flows(records);
    const char *key;
    json_t *value;

    json_object_foreach(ref, key, value) {
        json_t *mine = json_object_get(ours, key);
        json_int_t rp = json_integer_value(json_array_get(value, 0));
        json_int_t rb = json_integer_value(json_array_get(value, 1));
        if (mine == NULL) {
            report_line(rep, file, "flows", "missing flow %s (reference: %lld packets, %lld bytes)",
                        key, (long long)rp, (long long)rb);
            continue;
        }
        json_int_t op = json_integer_value(json_array_get(mine, 0));
        json_int_t ob = json_integer_value(json_array_get(mine, 1));
        if (op != rp || ob != rb)
            report_line(rep, file, "flows",
                        "flow %s: ours %lld packets %lld bytes, reference %lld packets %lld bytes",
                        key, (long long)op, (long long)ob, (long long)rp, (long long)rb);
    }
    json_object_foreach(ours, key, value) {
        if (json_object_get(ref, key) == NULL)
            report_line(rep, file, "flows", "extra flow %s (ours: %lld packets, %lld bytes)", key,
                        (long long)json_integer_value(json_array_get(value, 0)),
                        (long long)json_integer_value(json_array_get(value, 1)));
    }
    json_decref(ref);
    json_decref(ours);
}

/* Compare two sets (JSON objects used as sets of keys) and report both ways. */
static void compare_sets(diff_report *rep, const char *file, const char *field, const json_t *ref,
                         const json_t *ours)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)(uintptr_t)ref, key, value) {
        if (json_object_get(ours, key) == NULL)
            report_line(rep, file, field, "missing \"%s\"", key);
    }
    json_object_foreach((json_t *)(uintptr_t)ours, key, value) {
        if (json_object_get(ref, key) == NULL)
            report_line(rep, file, field, "extra \"%s\"", key);
    }
}

/*
 * Cut presentation-form NAME the way fv_dns_record.qname is cut: the
 * longest prefix of at most FV_NAME_MAX - 1 (255) characters that ends on
 * a whole character or a whole escape ("\DDD", "\." or "\\"). Names from
 * DNS tunnels, full of escaped bytes, exceed that limit.
 */
static void cut_like_record(const char *name, char *out, size_t out_len)
{
    const size_t limit = FV_NAME_MAX - 1;
    size_t pos = 0;
    while (name[pos] != '\0') {
        size_t step = 1;
        if (name[pos] == '\\')
            step = (name[pos + 1] >= '0' && name[pos + 1] <= '9') ? 4 : 2;
        if (pos + step > limit || pos + step >= out_len)
            break;
        pos += step;
    }
    snprintf(out, out_len, "%.*s", (int)pos, name);
}

/*
 * Collect the reference's "name|qtype" set over every question of every
 * message.
 * - Messages without a question (mDNS announcements, and malformed
 *   messages tshark lists with none) add nothing, on both sides.
 * - name_presentation is null when the question name uses a compression
 *   pointer. tshark's `name` is then the decompressed name, which equals
 *   the presentation form for names of printable ASCII. When tshark could
 *   not read the name at all, `name` is a placeholder in angle brackets
 *   ("<Name contains a pointer that loops>"); flowveil rejects such a
 *   message, so it is left out here.
 * - flowveil keeps at most FV_DNS_QUESTIONS_MAX questions per message, so
 *   only those are compared.
 */
static json_t *reference_dns(const json_t *expected)
{
    json_t *set = json_object();
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(expected, "dns"), i, msg) {
        size_t j;
        json_t *q;
        json_array_foreach(json_object_get(msg, "queries"), j, q) {
            if (j >= FV_DNS_QUESTIONS_MAX)
                break;
            const char *name = json_string_value(json_object_get(q, "name_presentation"));
            if (name == NULL) {
                name = json_string_value(json_object_get(q, "name"));
                if (name == NULL || name[0] == '<')
                    continue;
            }
            char cut[FV_NAME_MAX], key[FV_NAME_MAX + 16];
            cut_like_record(name, cut, sizeof cut);
            snprintf(key, sizeof key, "%s|%lld", cut,
                     (long long)int_or_zero(json_object_get(q, "type")));
            json_object_set_new(set, key, json_true());
        }
    }
    return set;
}

/* Our "name|qtype" set over the questions arrays. NBNS records share the
 * dns class but the reference lists only DNS, mDNS and LLMNR. */
static json_t *our_dns(const json_t *records)
{
    json_t *set = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *protocol = json_string_value(json_object_get(r, "protocol"));
        if (protocol != NULL && strcmp(protocol, "nbns") == 0)
            continue;
        size_t j;
        json_t *q;
        json_array_foreach(json_object_get(r, "questions"), j, q) {
            const char *name = json_string_value(json_object_get(q, "name"));
            char key[1024];
            snprintf(key, sizeof key, "%s|%lld", name != NULL ? name : "?",
                     (long long)int_or_zero(json_object_get(q, "qtype")));
            json_object_set_new(set, key, json_true());
        }
    }
    return set;
}

/* Responses per RCODE ({"0": n, ...}), like the reference's
 * summary.dns_rcodes; NBNS records are left out as in our_dns(). */
static json_t *our_dns_rcodes(const json_t *records)
{
    json_t *counts = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *protocol = json_string_value(json_object_get(r, "protocol"));
        const char *type = json_string_value(json_object_get(r, "type"));
        if ((protocol != NULL && strcmp(protocol, "nbns") == 0) || type == NULL ||
            strcmp(type, "response") != 0)
            continue;
        char key[16];
        snprintf(key, sizeof key, "%lld", (long long)int_or_zero(json_object_get(r, "rcode")));
        json_object_set_new(counts, key,
                            json_integer(int_or_zero(json_object_get(counts, key)) + 1));
    }
    return counts;
}

/* Records per value of string FIELD ({"GET": n, ...}). */
static json_t *our_counts(const json_t *records, const char *field)
{
    json_t *counts = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *v = json_string_value(json_object_get(r, field));
        if (v == NULL || v[0] == '\0')
            continue;
        json_object_set_new(counts, v, json_integer(int_or_zero(json_object_get(counts, v)) + 1));
    }
    return counts;
}

/* Compare two {key: count} maps and report every key whose counts differ. */
static void compare_counts(diff_report *rep, const char *file, const char *field,
                           const json_t *ref, const json_t *ours)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)(uintptr_t)ref, key, value) {
        json_int_t mine = int_or_zero(json_object_get(ours, key));
        if (mine != int_or_zero(value))
            report_line(rep, file, field, "\"%s\": ours %lld, reference %lld", key,
                        (long long)mine, (long long)int_or_zero(value));
    }
    json_object_foreach((json_t *)(uintptr_t)ours, key, value) {
        if (json_object_get(ref, key) == NULL)
            report_line(rep, file, field, "\"%s\": ours %lld, reference 0", key,
                        (long long)int_or_zero(value));
    }
}

/* Set of the non-empty string values of FIELD over RECORDS. */
static json_t *our_strings(const json_t *records, const char *field)
{
    json_t *set = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r) {
        const char *v = json_string_value(json_object_get(r, field));
        if (v != NULL && v[0] != '\0')
            json_object_set_new(set, v, json_true());
    }
    return set;
}

/* Set of the ALPN values of our tls records: each "alpn" array entry and
 * each non-empty "server_alpn", as the reference's summary.tls_alpn. */
static json_t *our_alpn(const json_t *records)
{
    json_t *set = our_strings(records, "server_alpn");
    size_t i, j;
    json_t *r, *v;
    json_array_foreach(records, i, r) {
        json_array_foreach(json_object_get(r, "alpn"), j, v) {
            if (json_is_string(v) && json_string_value(v)[0] != '\0')
                json_object_set_new(set, json_string_value(v), json_true());
        }
    }
    return set;
}

/* Set of the strings in the reference's summary.FIELD array. */
static json_t *reference_strings(const json_t *expected, const char *field)
{
    json_t *set = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(expected, "summary"), field), i, v) {
        if (json_is_string(v))
            json_object_set_new(set, json_string_value(v), json_true());
    }
    return set;
}

/* Ingest one capture into a fresh store, check how the process ended and
 * compare the exports with the reference. Return 0 if the run itself was
 * sound (comparison differences go into REP), -1 if it crashed or
 * failed without the required message. */
static int check_one_capture(diff_report *rep, const char *work_root, const char *name)
{
    char dir[4096], db[4096], policy[4096], capture[4096], expected_path[4096];
    e2e_path(dir, work_root, name);
    if (mkdir(dir, 0700) != 0)
        fail_msg("cannot create %s", dir);
    e2e_path(db, dir, "db");
    e2e_path(policy, dir, "policy.yaml");
    snprintf(capture, sizeof capture, "%s/pcaps/%s", e2e_corpus(), name);
    snprintf(expected_path, sizeof expected_path, "%s/expected/%s.json", e2e_corpus(), name);
    e2e_write_policy(policy, "[]", "3650d");

    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", CORPUS_NOW_S);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                          "--now", now_text, capture, NULL};
    e2e_result res;
    e2e_run(argv, dir, "ingest", 300, &res);

    int rc = 0;
    if (!res.exited) {
        fprintf(stderr, "%s: ingest killed by signal %d\n", name, res.status);
        rc = -1;
    } else if (e2e_has_sanitizer_report(res.err)) {
        fprintf(stderr, "%s: sanitizer report on ingest\n", name);
        rc = -1;
    } else if (res.status != 0) {
        /* A failing exit must explain itself and name the file. */
        const char *msg = strstr(res.err, "flowveil: error:");
        if (msg == NULL)
            msg = strstr(res.err, "warning:");
        if (res.status != 1 || msg == NULL || strstr(msg, name) == NULL) {
            fprintf(stderr, "%s: ingest failed without an error or warning naming the file\n",
                    name);
            rc = -1;
        } else {
            printf("note: %s: ingest exit status 1: %.*s\n", name,
                   (int)strcspn(msg, "\n"), msg);
        }
    }
    if (rc != 0) {
        e2e_print_result(name, &res);
        e2e_result_free(&res);
        return rc;
    }
    e2e_result_free(&res);

    json_error_t jerr;
    json_t *expected = json_load_file(expected_path, 0, &jerr);
    if (expected == NULL)
        fail_msg("cannot read %s: %s", expected_path, jerr.text);

    /* The store exists only if ingest created it (an empty capture still should). */
    json_t *flows = e2e_export(dir, db, "flows", CORPUS_NOW_S);
    json_t *dns = e2e_export(dir, db, "dns", CORPUS_NOW_S);
    json_t *tls = e2e_export(dir, db, "tls", CORPUS_NOW_S);
    json_t *http = e2e_export(dir, db, "http", CORPUS_NOW_S);
    json_t *dhcp = e2e_export(dir, db, "dhcp", CORPUS_NOW_S);
    json_t *ssh = e2e_export(dir, db, "ssh", CORPUS_NOW_S);

    compare_flows(rep, name, expected, flows);

    json_t *ref_set = reference_dns(expected);
    json_t *our_set = our_dns(dns);
    compare_sets(rep, name, "dns", ref_set, our_set);
    json_decref(ref_set);
    json_decref(our_set);

    ref_set = reference_strings(expected, "tls_sni");
    our_set = our_strings(tls, "sni");
    compare_sets(rep, name, "tls_sni", ref_set, our_set);
    json_decref(ref_set);
    json_decref(our_set);

    ref_set = reference_strings(expected, "tls_alpn");
    our_set = our_alpn(tls);
    compare_sets(rep, name, "tls_alpn", ref_set, our_set);
    json_decref(ref_set);
    json_decref(our_set);

    static const char *const fingerprints[] = {"ja3", "ja3s", "ja4"};
    for (size_t i = 0; i < sizeof fingerprints / sizeof fingerprints[0]; i++) {
        ref_set = reference_strings(expected, fingerprints[i]);
        our_set = our_strings(tls, fingerprints[i]);
        compare_sets(rep, name, fingerprints[i], ref_set, our_set);
        json_decref(ref_set);
        json_decref(our_set);
    }

    ref_set = reference_strings(expected, "http_hosts");
    our_set = our_strings(http, "host");
    compare_sets(rep, name, "http_hosts", ref_set, our_set);
    json_decref(ref_set);
    json_decref(our_set);

    our_set = our_counts(http, "method");
    compare_counts(rep, name, "http_methods",
                   json_object_get(json_object_get(expected, "summary"), "http_methods"), our_set);
    json_decref(our_set);

    our_set = our_dns_rcodes(dns);
    compare_counts(rep, name, "dns_rcodes",
                   json_object_get(json_object_get(expected, "summary"), "dns_rcodes"), our_set);
    json_decref(our_set);

    /* With zones: [] no host is internal, so host names are kept as sent. */
    ref_set = reference_strings(expected, "dhcp_hostnames");
    our_set = our_strings(dhcp, "hostname");
    compare_sets(rep, name, "dhcp_hostnames", ref_set, our_set);
    json_decref(ref_set);
    json_decref(our_set);

    /* The reference lists each identification string; ours pairs both
     * sides of a connection in one record. */
    ref_set = reference_strings(expected, "ssh_banners");
    our_set = our_strings(ssh, "client_banner");
    json_t *server_banners = our_strings(ssh, "server_banner");
    json_object_update(our_set, server_banners);
    json_decref(server_banners);
    compare_sets(rep, name, "ssh_banners", ref_set, our_set);
    json_decref(ref_set);
    json_decref(our_set);

    json_decref(dhcp);
    json_decref(ssh);
    json_decref(flows);
    json_decref(dns);
    json_decref(tls);
    json_decref(http);
    json_decref(expected);
    return 0;
}

/* Load known_differences.txt into {"FILE FIELD": "reason"}. */
static json_t *load_known_differences(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/e2e/known_differences.txt", e2e_source_dir());
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    if (text == NULL)
        fail_msg("cannot read %s", path);

    json_t *known = json_object();
    int line_no = 0;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        line_no++;
        if (line[0] != '#' && line[0] != '\0') {
            char file[512], field[64];
            int consumed = 0;
            if (sscanf(line, "%511s %63s %n", file, field, &consumed) < 2 || line[consumed] == '\0')
                fail_msg("%s:%d: expected \"FILE FIELD reason\"", path, line_no);
            int field_ok = 0;
            for (size_t i = 0; i < sizeof compared_fields / sizeof compared_fields[0]; i++)
                field_ok |= strcmp(field, compared_fields[i]) == 0;
            if (!field_ok)
                fail_msg("%s:%d: unknown field \"%s\"; use flows, dns, tls_sni, http_hosts, "
                         "tls_alpn, ja3, ja3s, ja4, dhcp_hostnames, ssh_banners, dns_rcodes or "
                         "http_methods",
                         path, line_no, field);
            char key[600];
            snprintf(key, sizeof key, "%s %s", file, field);
            json_object_set_new(known, key, json_string(line + consumed));
        }
        line = next;
    }
    free(text);
    return known;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_corpus_matches_reference(void **state)
{
    (void)state;
    char pcap_dir[4096];
    snprintf(pcap_dir, sizeof pcap_dir, "%s/pcaps", e2e_corpus());
    DIR *d = opendir(pcap_dir);
    if (d == NULL)
        fail_msg("cannot open the corpus directory %s; set FLOWVEIL_CORPUS", pcap_dir);
    char *names[512];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < sizeof names / sizeof names[0]) {
        if (e->d_name[0] != '.')
            names[count++] = strdup(e->d_name);
    }
    closedir(d);
    assert_true(count > 0);
    qsort(names, count, sizeof names[0], compare_names);

    json_t *known = load_known_differences();
    diff_report rep = {.found = json_object()};
    char work_root[4096];
    tu_make_temp_dir(work_root, sizeof work_root);

    int broken_runs = 0;
    for (size_t i = 0; i < count; i++) {
        if (check_one_capture(&rep, work_root, names[i]) != 0)
            broken_runs++;
    }

    /* Print every disagreement, marking those already explained. */
    int unexplained = 0, stale = 0;
    const char *key;
    json_t *lines;
    json_object_foreach(rep.found, key, lines) {
        const char *reason = json_string_value(json_object_get(known, key));
        printf("%s %s:\n", reason != NULL ? "known" : "UNEXPLAINED", key);
        if (reason != NULL)
            printf("  reason: %s\n", reason);
        size_t j;
        json_t *line;
        json_array_foreach(lines, j, line)
            printf("  %s\n", json_string_value(line));
        if (reason == NULL)
            unexplained++;
    }
    json_t *reason;
    json_object_foreach(known, key, reason) {
        if (json_object_get(rep.found, key) == NULL) {
            printf("STALE %s: listed in known_differences.txt but no longer occurs; "
                   "remove the line and its row in docs/KNOWN_DIFFERENCES.md\n", key);
            stale++;
        }
    }
    printf("corpus: %zu captures, %d broken runs, %zu disagreements (%d unexplained), %d stale "
           "entries\n", count, broken_runs, json_object_size(rep.found), unexplained, stale);

    json_decref(rep.found);
    json_decref(known);
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    if (broken_runs == 0 && unexplained == 0 && stale == 0)
        tu_remove_tree(work_root);
    else
        printf("work files kept in %s\n", work_root);

    assert_int_equal(broken_runs, 0);
    assert_int_equal(unexplained, 0);
    assert_int_equal(stale, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
