/*
 * cmd_subject.c: `flowveil subject export|erase`, data-subject requests
 * for one IP address or MAC address.
 *
 * The subject's pseudonym is computed under the current epoch key, read
 * without rotating it (anon_open_readonly). Records of earlier epochs
 * carry pseudonyms under keys that rotation destroyed, so they cannot be
 * linked to the subject any more (docs/PRIVACY.md). Addresses outside
 * every zone are stored as they are, so those are matched as well.
 *
 * NOTE: every class is read in full (one pass of store_query_run pages
 * per class), because no index maps a pseudonym to its records. That is
 * proportional to the store's size, which is acceptable for a request
 * that is rare and run by hand.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "alert_json.h"
#include "anonymize.h"
#include "cli.h"
#include "outfile.h"
#include "policy.h"
#include "store.h"

#define SUBJECT_PAGE 1000u

static void print_subject_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil subject export --db DIR --policy FILE (--ip ADDR | --mac ADDR)\n"
            "                               [--output FILE] [--reason TEXT] [--now SECONDS]\n"
            "       flowveil subject erase  --db DIR --policy FILE (--ip ADDR | --mac ADDR)\n"
            "                               [--reason TEXT] [--now SECONDS]\n"
            "\n"
            "Find every stored record that carries the subject's pseudonym under the\n"
            "current epoch key (or the address itself, where the policy keeps it) and\n"
            "export them as JSON Lines or delete them. Records of earlier epochs cannot\n"
            "be linked to the subject. Each request is written to the audit trail with\n"
            "the counts per class, never the address.\n"
            "\n"
            "  -d, --db DIR        store directory (holds pseudonym.key)\n"
            "  -p, --policy FILE   the policy in force\n"
            "  -i, --ip ADDR       an IPv4 or IPv6 address (::ffff:a.b.c.d means a.b.c.d)\n"
            "  -m, --mac ADDR      a MAC address, aa:bb:cc:dd:ee:ff or aa-bb-...\n"
            "  -o, --output FILE   export: a new file (mode 0600) instead of standard output\n"
            "  -r, --reason TEXT   recorded in the audit entry, e.g. the request's reference\n"
            "  -n, --now SECONDS   time for retention, seconds since 1970 (default: now)\n");
}

/* IPv6 forms of an IPv4 subject that records can contain (subject_prepare). */
#define SUBJECT_IPV6_FORMS 4

/* The subject: its raw form and its pseudonym in the current epoch. An
 * IPv4 subject also has the IPv6 forms that carry its address, which the
 * policy puts in its zone, so records may contain their tokens. */
typedef struct subject {
    anon_type type;
    uint8_t raw[16];
    size_t raw_len;
    uint8_t pseudonym[FV_PSEUDONYM_BYTES];
    char b32[FV_TOKEN_TEXT_MAX];    /* token text without its type prefix */
    size_t form_count;
    uint8_t form_raw[SUBJECT_IPV6_FORMS][16];
    uint8_t form_pseudonym[SUBJECT_IPV6_FORMS][FV_PSEUDONYM_BYTES];
    char form_b32[SUBJECT_IPV6_FORMS][FV_TOKEN_TEXT_MAX];
} subject;

/* True if ADDR, 16 bytes, is one of the IPv6 forms of S (with TOKEN set,
 * compared as pseudonyms, else as raw addresses). */
static bool form_matches(const subject *s, const uint8_t *addr, bool token)
{
    for (size_t i = 0; i < s->form_count; i++) {
        if (memcmp(addr, token ? s->form_pseudonym[i] : s->form_raw[i], 16) == 0)
            return true;
    }
    return false;
}

/* Parse six two-digit hex octets separated by one kind of separator,
 * ':' or '-' (aa:bb:cc:dd:ee:ff). */
static bool parse_mac(const char *text, uint8_t out[6])
{
    if (strlen(text) != 17)
        return false;
    char sep = text[2];
    if (sep != ':' && sep != '-')
        return false;
    for (int i = 0; i < 6; i++) {
        const char *octet = text + 3 * i;
        if (!isxdigit((unsigned char)octet[0]) || !isxdigit((unsigned char)octet[1]))
            return false;
        if (i < 5 && octet[2] != sep)
            return false;
        char digits[3] = {octet[0], octet[1], '\0'};
        out[i] = (uint8_t)strtoul(digits, NULL, 16);
    }
    return true;
}

static bool endpoint_matches(const subject *s, const fv_endpoint *ep)
{
    switch (ep->kind) {
    case FV_EP_PSEUDO_IPV4:
        return s->type == ANON_TYPE_IPV4 &&
               memcmp(ep->addr, s->pseudonym, FV_PSEUDONYM_BYTES) == 0;
    case FV_EP_PSEUDO_IPV6:
        return (s->type == ANON_TYPE_IPV6 &&
                memcmp(ep->addr, s->pseudonym, FV_PSEUDONYM_BYTES) == 0) ||
               form_matches(s, ep->addr, true);
    case FV_EP_IPV4:
        return s->type == ANON_TYPE_IPV4 && memcmp(ep->addr, s->raw, 4) == 0;
    case FV_EP_IPV6:
        return (s->type == ANON_TYPE_IPV6 && memcmp(ep->addr, s->raw, 16) == 0) ||
               form_matches(s, ep->addr, false);
    default:
        return false;
    }
}

static bool dns_addr_matches(const subject *s, const fv_dns_addr *a)
{
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = a->kind;
    memcpy(ep.addr, a->addr, sizeof ep.addr);
    return endpoint_matches(s, &ep);
}

/* True if a stored name or text field contains the subject's token,
 * which minimization writes for addresses in reverse names and literals. */
static bool text_matches(const subject *s, const char *text)
{
    if (s->type == ANON_TYPE_MAC)
        return false;
    if (strstr(text, s->b32) != NULL)
        return true;
    for (size_t i = 0; i < s->form_count; i++) {
        if (strstr(text, s->form_b32[i]) != NULL)
            return true;
    }
    return false;
}

static bool mac_matches(const subject *s, const uint8_t mac[FV_PSEUDONYM_BYTES])
{
    return s->type == ANON_TYPE_MAC && memcmp(mac, s->pseudonym, FV_PSEUDONYM_BYTES) == 0;
}

static bool record_matches(const subject *s, const fv_record *rec)
{
    switch (rec->cls) {
    case FV_CLASS_FLOW: {
        const fv_flow_record *r = &rec->u.flow;
        return endpoint_matches(s, &r->src) || endpoint_matches(s, &r->dst) ||
               endpoint_matches(s, &r->outer_src) || endpoint_matches(s, &r->outer_dst) ||
               (r->has_mac && (mac_matches(s, r->src_mac) || mac_matches(s, r->dst_mac)));
    }
    case FV_CLASS_DNS: {
        const fv_dns_record *r = &rec->u.dns;
        if (endpoint_matches(s, &r->client) || endpoint_matches(s, &r->server) ||
            text_matches(s, r->qname))
            return true;
        for (unsigned i = 0; i < r->question_count && i < FV_DNS_QUESTIONS_MAX; i++) {
            if (text_matches(s, r->questions[i].name))
                return true;
        }
        for (unsigned i = 0; i < r->answers_a_count && i < FV_DNS_ADDRS_MAX; i++) {
            if (dns_addr_matches(s, &r->answers_a[i]))
                return true;
        }
        for (unsigned i = 0; i < r->answers_aaaa_count && i < FV_DNS_ADDRS_MAX; i++) {
            if (dns_addr_matches(s, &r->answers_aaaa[i]))
                return true;
        }
        for (unsigned i = 0; i < r->cname_count && i < FV_DNS_CNAMES_MAX; i++) {
            if (text_matches(s, r->cnames[i]))
                return true;
        }
        return false;
    }
    case FV_CLASS_TLS:
        return endpoint_matches(s, &rec->u.tls.client) ||
               endpoint_matches(s, &rec->u.tls.server) || text_matches(s, rec->u.tls.sni);
    case FV_CLASS_HTTP:
        return endpoint_matches(s, &rec->u.http.client) ||
               endpoint_matches(s, &rec->u.http.server) || text_matches(s, rec->u.http.host);
    case FV_CLASS_ALERT:
        return endpoint_matches(s, &rec->u.alert.host) || endpoint_matches(s, &rec->u.alert.peer);
    case FV_CLASS_DHCP: {
        const fv_dhcp_record *r = &rec->u.dhcp;
        return endpoint_matches(s, &r->client) || endpoint_matches(s, &r->server) ||
               (r->has_client_mac && mac_matches(s, r->client_mac)) ||
               text_matches(s, r->requested_ip);
    }
    case FV_CLASS_SSH:
        return endpoint_matches(s, &rec->u.ssh.client) || endpoint_matches(s, &rec->u.ssh.server);
    default:
        /* Aggregates hold zone labels and counts, never a host. */
        return false;
    }
}

/* State of one pass over one class. */
typedef struct subject_scan {
    const subject *s;
    store_env *store;       /* export: reads the alerts' life cycle */
    FILE *out;              /* export: where records go; NULL for erase */
    uint64_t *ids;          /* erase: matching ids */
    size_t ids_len, ids_cap;
    uint64_t matched;
    bool failed;
    int write_errno;        /* export: errno of the failed write, 0 if none */
} subject_scan;

static bool scan_record(void *arg, const fv_record *rec)
{
    subject_scan *scan = arg;
    if (!record_matches(scan->s, rec))
        return true;
    scan->matched++;

    if (scan->out != NULL) {
        json_t *obj = cli_record_json(scan->store, rec);
        char *line = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        if (line == NULL) {
            scan->failed = true;
        } else if (fprintf(scan->out, "%s\n", line) < 0) {
            scan->failed = true;
            scan->write_errno = errno;
        }
        free(line);
        return !scan->failed;
    }

    if (scan->ids_len == scan->ids_cap) {
        size_t cap = scan->ids_cap == 0 ? 256 : scan->ids_cap * 2;
        uint64_t *next = realloc(scan->ids, cap * sizeof *next);
        if (next == NULL) {
            scan->failed = true;
            return false;
        }
        scan->ids = next;
        scan->ids_cap = cap;
    }
    scan->ids[scan->ids_len++] = rec->id;
    return true;
}

/* Run SCAN over every record of CLS live at NOW_US. */
static int scan_class(store_env *store, fv_class cls, uint64_t now_us, subject_scan *scan)
{
    store_query q = {.cls = cls, .limit = SUBJECT_PAGE};
    for (;;) {
        uint64_t next = 0;
        int rc = store_query_run(store, &q, now_us, scan_record, scan, &next);
        if (rc != FV_OK)
            return rc;
        if (scan->failed)
            return FV_ERR_IO;
        if (next == 0)
            return FV_OK;
        q.after_id = next;
    }
}

/* Compute the subject from --ip or --mac; prints a usage error on failure. */
static int subject_prepare(const char *ip, const char *mac, const char *db, subject *s)
{
    memset(s, 0, sizeof *s);
    if (ip != NULL) {
        if (inet_pton(AF_INET, ip, s->raw) == 1) {
            s->type = ANON_TYPE_IPV4;
            s->raw_len = 4;
        } else if (inet_pton(AF_INET6, ip, s->raw) == 1) {
            s->type = ANON_TYPE_IPV6;
            s->raw_len = 16;
            /* ::ffff:a.b.c.d names the IPv4 host a.b.c.d, and records
             * store that host under its IPv4 address. */
            static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (memcmp(s->raw, v4_mapped, sizeof v4_mapped) == 0) {
                memmove(s->raw, s->raw + 12, 4);
                memset(s->raw + 4, 0, 12);
                s->type = ANON_TYPE_IPV4;
                s->raw_len = 4;
            }
        } else {
            return cli_usage_error("subject", "invalid --ip value: expected an IPv4 or IPv6"
                                              " address such as 10.1.0.23 or fd00::17");
        }
    } else if (!parse_mac(mac, s->raw)) {
        return cli_usage_error("subject", "invalid --mac value: expected six hex bytes such as"
                                          " 02:00:5e:10:00:17");
    } else {
        s->type = ANON_TYPE_MAC;
        s->raw_len = 6;
    }

    char key_path[4096], err[1024];
    if (!((size_t)snprintf(key_path, sizeof key_path, "%s/pseudonym.key", db) < sizeof key_path)) {
        fprintf(stderr, "flowveil: error: the --db path is too long\n");
        return CLI_EXIT_FAILURE;
    }
    anon_ctx *anon = NULL;
    if (anon_open_readonly(key_path, &anon, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    anon_pseudonym(anon, s->type, s->raw, s->raw_len, s->pseudonym);
    char token[FV_TOKEN_TEXT_MAX];
    fv_token_format("x", s->pseudonym, token);
    snprintf(s->b32, sizeof s->b32, "%s", token + 2);

    /* IPv4-mapped, IPv4-compatible and the two NAT64 /96 forms. 6to4
     * addresses carry host bits of their own, so they cannot be listed. */
    if (s->type == ANON_TYPE_IPV4) {
        static const uint8_t prefixes[SUBJECT_IPV6_FORMS][12] = {
            {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
            {0},
            {0, 0x64, 0xff, 0x9b},
            {0, 0x64, 0xff, 0x9b, 0, 0x01},
        };
        uint32_t v4 = ((uint32_t)s->raw[0] << 24) | ((uint32_t)s->raw[1] << 16) |
                      ((uint32_t)s->raw[2] << 8) | s->raw[3];
        for (size_t i = 0; i < SUBJECT_IPV6_FORMS; i++) {
            if (i == 1 && v4 <= 1)
                continue;   /* :: and ::1 are not IPv4-compatible addresses */
            uint8_t *form = s->form_raw[s->form_count];
            memcpy(form, prefixes[i], 12);
            memcpy(form + 12, s->raw, 4);
            anon_pseudonym(anon, ANON_TYPE_IPV6, form, 16, s->form_pseudonym[s->form_count]);
            fv_token_format("x", s->form_pseudonym[s->form_count], token);
            snprintf(s->form_b32[s->form_count], sizeof s->form_b32[0], "%s", token + 2);
            s->form_count++;
        }
    }
    anon_close(&anon);
    return CLI_EXIT_OK;
}

/* Append the request's audit entry, with the counts per class in PARAMS. */
static int audit_subject(store_env *store, const char *action, const subject *s,
                         const char *params, uint64_t total, const char *reason)
{
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    cli_audit_local_actor(e.actor, sizeof e.actor);
    snprintf(e.action, sizeof e.action, "%s", action);
    /* The kind of identifier only: the address itself is never audited. */
    snprintf(e.object, sizeof e.object, "%s", s->type == ANON_TYPE_MAC ? "mac" : "ip");
    snprintf(e.params, sizeof e.params, "%s", params);
    snprintf(e.reason, sizeof e.reason, "%s", reason != NULL ? reason : "");
    e.result_count = total;
    int rc = store_audit_append(store, &e, fv_now_us(), NULL);
    if (rc != FV_OK)
        fprintf(stderr, "flowveil: error: cannot write the audit entry of this request: %s\n",
                fv_strerror(rc));
    return rc;
}

int cli_cmd_subject(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"policy", required_argument, NULL, 'p'},
        {"ip", required_argument, NULL, 'i'},
        {"mac", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"reason", required_argument, NULL, 'r'},
        {"now", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_subject_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "export") != 0 && strcmp(argv[1], "erase") != 0))
        return cli_usage_error("subject", "expected 'flowveil subject export' or 'flowveil"
                                          " subject erase'");
    bool erase = strcmp(argv[1], "erase") == 0;

    const char *db = NULL, *policy_path = NULL, *ip = NULL, *mac = NULL, *output = NULL;
    const char *reason = NULL;
    uint64_t now_s = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":d:p:i:m:o:r:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'p': policy_path = optarg; break;
        case 'i': ip = optarg; break;
        case 'm': mac = optarg; break;
        case 'o': output = optarg; break;
        case 'r': reason = optarg; break;
        case 'n':
            if (cli_parse_seconds("subject", "--now", optarg, &now_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case 'h': print_subject_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("subject", "option '%s' needs a value", argv[optind]);
        default: return cli_usage_error("subject", "unknown option '%s'", argv[optind]);
        }
    }
    if (optind + 1 < argc)
        return cli_usage_error("subject", "unexpected argument '%s'", argv[optind + 1]);
    if (db == NULL)
        return cli_usage_error("subject", "missing --db DIR (the store directory)");
    if (policy_path == NULL)
        return cli_usage_error("subject", "missing --policy FILE (the policy in force)");
    if ((ip == NULL) == (mac == NULL))
        return cli_usage_error("subject", "give exactly one of --ip ADDR and --mac ADDR");
    if (erase && output != NULL)
        return cli_usage_error("subject", "--output applies to export only");
    if (reason != NULL && strlen(reason) > 255)
        return cli_usage_error("subject", "--reason must have at most 255 characters");
    /* As for reveal: a tab or newline in the audit trail would forge
     * columns or entries of `audit show`. */
    for (size_t i = 0; reason != NULL && reason[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)reason[i];
        if (ch < 0x20 || ch == 0x7f)
            return cli_usage_error("subject",
                                   "invalid --reason: control character 0x%02x at byte %zu;"
                                   " write the reason on one line without tabs or other"
                                   " control characters",
                                   ch, i + 1);
    }

    char err[1024];
    pol_policy *policy = NULL;
    if (pol_load(policy_path, &policy, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    pol_destroy(&policy);

    subject s;
    int status = subject_prepare(ip, mac, db, &s);
    if (status != CLI_EXIT_OK) {
        sodium_memzero(&s, sizeof s);
        return status;
    }
    status = CLI_EXIT_FAILURE;

    store_env *store = NULL;
    FILE *out = NULL;
    cli_outfile outfile = {0};
    subject_scan scan;
    memset(&scan, 0, sizeof scan);
    uint64_t counts[FV_CLASS_COUNT] = {0};
    uint64_t total = 0;
    bool escrow_deleted = false;

    if (store_open(db, STORE_EXISTING, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        goto out;
    }
    /* The export is personal data: it goes to a new file only, written
     * beside it and linked into place at the end, so a failed export
     * leaves no partial file. */
    if (!erase) {
        if (!cli_outfile_open(&outfile, output, true))
            goto out;
        out = outfile.f;
    }

    uint64_t now_us = now_s != 0 ? now_s * 1000000u : fv_now_us();
    int rc = FV_OK;
    for (unsigned cls = 0; cls < FV_CLASS_COUNT && rc == FV_OK; cls++) {
        scan.s = &s;
        scan.store = store;
        scan.out = out;
        scan.ids_len = 0;
        scan.matched = 0;
        rc = scan_class(store, (fv_class)cls, now_us, &scan);
        if (rc == FV_OK && erase)
            rc = store_delete_records(store, (fv_class)cls, scan.ids, scan.ids_len,
                                      &counts[cls]);
        else
            counts[cls] = scan.matched;
        total += counts[cls];
    }
    if (rc == FV_OK && erase) {
        anon_epoch_info info;
        char key_path[4096];
        snprintf(key_path, sizeof key_path, "%s/pseudonym.key", db);
        if (anon_key_file_info(key_path, 1, &info, err, sizeof err) == FV_OK)
            rc = store_escrow_delete(store, s.pseudonym, info.epoch_id, &escrow_deleted);
    }
    bool write_failed = false;
    if (out != NULL && (rc == FV_OK || scan.write_errno != 0)) {
        write_failed = !cli_outfile_commit(&outfile, "the subject export", scan.write_errno);
        if (rc == FV_OK && write_failed)
            rc = FV_ERR_IO;
    } else if (out != NULL) {
        cli_outfile_abort(&outfile);
    }
    out = NULL;

    char params[512];
    size_t used = 0;
    for (unsigned cls = 0; cls < FV_CLASS_COUNT; cls++) {
        int n = snprintf(params + used, sizeof params - used, "%s=%llu&",
                         fv_class_name((fv_class)cls), (unsigned long long)counts[cls]);
        if (n > 0 && (size_t)n < sizeof params - used)
            used += (size_t)n;
    }
    snprintf(params + used, sizeof params - used, "escrow=%d%s", escrow_deleted ? 1 : 0,
             rc == FV_OK ? "" : "&complete=false");
    if (audit_subject(store, erase ? "subject.erase" : "subject.export", &s, params, total,
                      reason) != FV_OK)
        goto out;
    if (rc != FV_OK) {
        /* A failed write has been reported with its file and errno text,
         * and no part of the export was left on disk. */
        if (!write_failed && erase)
            fprintf(stderr, "flowveil: error: the erase stopped early: %s; the audit entry"
                            " records what was done, run it again to finish\n",
                    fv_strerror(rc));
        else if (!write_failed)
            fprintf(stderr, "flowveil: error: the export stopped early: %s; no file was"
                            " left behind, run it again\n",
                    fv_strerror(rc));
        goto out;
    }

    for (unsigned cls = 0; cls < FV_CLASS_COUNT; cls++) {
        if (cls == FV_CLASS_AGGREGATE)
            continue;   /* aggregates name no host */
        fprintf(stderr, "%-8s %llu %s\n", fv_class_name((fv_class)cls),
                (unsigned long long)counts[cls], erase ? "deleted" : "exported");
    }
    if (erase)
        fprintf(stderr, "escrow   %d deleted\n", escrow_deleted ? 1 : 0);
    status = CLI_EXIT_OK;

out:
    if (out != NULL)
        cli_outfile_abort(&outfile);
    free(scan.ids);
    sodium_memzero(&s, sizeof s);
    store_close(&store);
    return status;
}
