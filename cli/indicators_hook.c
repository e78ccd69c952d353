/*
 * indicators_hook.c: indicator lists matched on raw records in the
 * capturing process. See indicators_hook.h.
 */
#include "indicators_hook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "detect.h"

/* One remembered hit: a keyed hash of (entry, host, source) and when. */
typedef struct dedupe_slot {
    uint64_t hash;
    uint64_t last_us;
} dedupe_slot;

struct fv_indicator_hook {
    det_indicators *set;
    const pol_policy *policy; /* zones; outlives the hook (a reload makes a new hook) */
    fv_indicator_emit_fn emit;
    void *ctx;
    uint64_t window_us;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    dedupe_slot *slots; /* FV_INDICATOR_DEDUPE_SLOTS */
    uint64_t alerts;
};

typedef struct load_errors {
    const char *path;
    size_t logged;
} load_errors;

static void log_bad_line(void *ctx, const char *message)
{
    load_errors *e = ctx;
    if (e->logged++ < FV_INDICATOR_ERRORS_LOGGED)
        fv_warning("indicator list line skipped: %s", message);
}

/* Entries of a set that overlap a zone: such an entry never matches
 * (zone addresses are not matched), and a list of internal addresses
 * would otherwise map pseudonyms back to addresses. */
typedef struct zone_overlaps {
    const pol_policy *policy;
    FILE *out;     /* print here (policy check), or log when NULL */
    size_t count;  /* entries found */
    size_t shown;  /* entries printed or logged */
} zone_overlaps;

#define ZONE_OVERLAPS_SHOWN 10u

static void note_zone_overlap(void *ctx, int family, const uint8_t addr[16], unsigned prefix,
                              uint16_t list, uint32_t line)
{
    zone_overlaps *z = ctx;
    if (!pol_network_overlaps_zone(z->policy, family, addr, prefix))
        return;
    z->count++;
    if (z->shown >= ZONE_OVERLAPS_SHOWN)
        return;
    z->shown++;
    /* Line numbers only: the entry may be an internal address. */
    const char *what = prefix == 0 ? "is a /0 network, which covers every zone"
                                   : "lies in or covers an internal zone";
    if (z->out != NULL)
        fprintf(z->out, "    warning: line %u %s; zone addresses are never matched, so remove "
                        "the entry\n",
                (unsigned)line, what);
    else
        fv_warning("indicator list %u line %u %s; zone addresses are never matched, so remove "
                   "the entry",
                   (unsigned)list, (unsigned)line, what);
}

/* Load every list of POLICY into a new set. */
static int load_lists(const pol_detect *config, const pol_policy *policy, det_indicators **out,
                      char *err, size_t err_len)
{
    det_indicators *set = NULL;
    int rc = det_indicators_create(&set);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create the indicator set: %s", fv_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < config->indicator_file_count; i++) {
        const pol_indicator_file *f = &config->indicator_files[i];
        det_indicator_counts counts;
        memset(&counts, 0, sizeof counts);
        load_errors errors = {.path = f->path, .logged = 0};
        rc = det_indicators_load_file(set, f->path, f->format, (uint16_t)i, f->severity,
                                      log_bad_line, &errors, &counts, err, err_len);
        if (rc != FV_OK) {
            det_indicators_destroy(&set);
            return rc;
        }
        if (errors.logged > FV_INDICATOR_ERRORS_LOGGED)
            fv_warning("%s: %zu more bad lines skipped", f->path,
                       errors.logged - FV_INDICATOR_ERRORS_LOGGED);
        fv_notice("indicator list %zu (%s): %zu ipv4, %zu ipv6, %zu cidr, %zu domain, %zu ja3, "
                  "%zu ja4 loaded; %zu duplicates, %zu bad lines skipped",
                  i, f->path, counts.loaded[DET_IND_IPV4], counts.loaded[DET_IND_IPV6],
                  counts.loaded[DET_IND_CIDR], counts.loaded[DET_IND_DOMAIN],
                  counts.loaded[DET_IND_JA3], counts.loaded[DET_IND_JA4], counts.duplicates,
                  counts.rejected);
    }
    zone_overlaps overlaps = {.policy = policy, .out = NULL, .count = 0, .shown = 0};
    det_indicators_each_network(set, note_zone_overlap, &overlaps);
    if (overlaps.count > overlaps.shown)
        fv_warning("%zu more indicator entries lie in or cover an internal zone",
                   overlaps.count - overlaps.shown);
    *out = set;
    return FV_OK;
}

/* Bad-line messages of one file for fv_indicator_check_files. */
typedef struct check_errors {
    FILE *out;
    size_t printed, max;
} check_errors;

static void print_bad_line(void *ctx, const char *message)
{
    check_errors *e = ctx;
    if (e->printed >= e->max)
        return;
    e->printed++;
    fprintf(e->out, "    %s\n", message);
}

size_t fv_indicator_check_files(const pol_policy *policy, FILE *out, size_t max_errors)
{
    const pol_detect *config = pol_detect_config(policy);
    if (config == NULL || config->indicator_file_count == 0)
        return 0;

    fprintf(out, "\nIndicator files%s:\n",
            config->indicators_enabled ? "" : " (detect.indicators.enabled is false)");
    size_t failed = 0;
    for (size_t i = 0; i < config->indicator_file_count; i++) {
        const pol_indicator_file *f = &config->indicator_files[i];
        const char *format = f->format == 1 ? "csv" : "list";
        /* A set per file, so the duplicate count is that file's own. */
        det_indicators *set = NULL;
        if (det_indicators_create(&set) != FV_OK) {
            fprintf(out, "  %s: out of memory creating the indicator set\n", f->path);
            failed++;
            continue;
        }
        det_indicator_counts counts;
        memset(&counts, 0, sizeof counts);
        check_errors errors = {.out = out, .printed = 0, .max = max_errors};
        char err[1024] = "";
        /* The loader reports bad lines while it reads, so the file's
         * heading goes first. */
        fprintf(out, "  %s (%s, severity %s)\n", f->path, format, fv_severity_name(f->severity));
        int rc = det_indicators_load_file(set, f->path, f->format, (uint16_t)i, f->severity,
                                          print_bad_line, &errors, &counts, err, sizeof err);
        zone_overlaps overlaps = {.policy = policy, .out = out, .count = 0, .shown = 0};
        if (rc == FV_OK)
            det_indicators_each_network(set, note_zone_overlap, &overlaps);
        if (overlaps.count > overlaps.shown)
            fprintf(out, "    warning: %zu more entries lie in or cover an internal zone\n",
                    overlaps.count - overlaps.shown);
        det_indicators_destroy(&set);
        if (rc != FV_OK) {
            fprintf(out, "    error: %s\n", err);
            failed++;
            continue;
        }
        size_t loaded = 0;
        for (int t = 0; t < DET_IND_TYPE_COUNT; t++)
            loaded += counts.loaded[t];
        if (counts.rejected > errors.printed)
            fprintf(out, "    ... %zu more bad lines\n", counts.rejected - errors.printed);
        fprintf(out,
                "    %zu entries: %zu ipv4, %zu ipv6, %zu cidr, %zu domain, %zu ja3, %zu ja4;"
                " %zu duplicates, %zu bad lines\n",
                loaded, counts.loaded[DET_IND_IPV4], counts.loaded[DET_IND_IPV6],
                counts.loaded[DET_IND_CIDR], counts.loaded[DET_IND_DOMAIN],
                counts.loaded[DET_IND_JA3], counts.loaded[DET_IND_JA4], counts.duplicates,
                counts.rejected);
        if (counts.rejected > 0)
            failed++;
    }
    return failed;
}

int fv_indicator_hook_open(const pol_policy *policy, fv_indicator_emit_fn emit, void *ctx,
                           fv_indicator_hook **out, char *err, size_t err_len)
{
    int rc = FV_ERR_NOMEM;
    *out = NULL;
    const pol_detect *config = pol_detect_config(policy);
    if (config == NULL || !config->indicators_enabled || config->indicator_file_count == 0)
        return FV_OK;

    fv_indicator_hook *hook = calloc(1, sizeof *hook);
    if (hook == NULL)
        goto out;
    hook->slots = calloc(FV_INDICATOR_DEDUPE_SLOTS, sizeof *hook->slots);
    if (hook->slots == NULL)
        goto out;
    randombytes_buf(hook->hash_key, sizeof hook->hash_key);
    hook->emit = emit;
    hook->ctx = ctx;
    hook->window_us = (uint64_t)config->alert_window_s * 1000000u;
    hook->policy = policy;
    rc = load_lists(config, policy, &hook->set, err, err_len);
    if (rc != FV_OK)
        goto out;
    *out = hook;
    hook = NULL;
out:
    if (rc == FV_ERR_NOMEM)
        snprintf(err, err_len, "out of memory loading the indicator lists");
    fv_indicator_hook_close(&hook);
    return rc;
}

int fv_indicator_hook_reload(fv_indicator_hook **hook, const pol_policy *policy,
                             fv_indicator_emit_fn emit, void *ctx)
{
    char err[1024];
    fv_indicator_hook *next = NULL;
    int rc = fv_indicator_hook_open(policy, emit, ctx, &next, err, sizeof err);
    if (rc != FV_OK) {
        fv_error("indicator lists not reloaded, the running lists stay in force: %s", err);
        /* The caller frees the old policy after a reload, so the running
         * lists take the new policy's zones. */
        if (*hook != NULL)
            (*hook)->policy = policy;
        return rc;
    }
    /* Keep the memory of earlier hits, so a reload does not repeat them. */
    fv_indicator_hook *old = *hook;
    if (next != NULL && old != NULL) {
        memcpy(next->hash_key, old->hash_key, sizeof next->hash_key);
        memcpy(next->slots, old->slots, FV_INDICATOR_DEDUPE_SLOTS * sizeof *next->slots);
        next->alerts = old->alerts;
    }
    fv_indicator_hook_close(&old);
    *hook = next;
    fv_notice("indicator lists reloaded: %zu entries",
              next != NULL ? det_indicators_count(next->set) : (size_t)0);
    return FV_OK;
}

void fv_indicator_hook_close(fv_indicator_hook **hook)
{
    if (hook == NULL || *hook == NULL)
        return;
    det_indicators_destroy(&(*hook)->set);
    free((*hook)->slots);
    free(*hook);
    *hook = NULL;
}

uint64_t fv_indicator_hook_alerts(const fv_indicator_hook *hook)
{
    return hook != NULL ? hook->alerts : 0;
}

/* ---------------------------------------------------------------------- */
/* Alerts                                                                  */
/* ---------------------------------------------------------------------- */

/* True if this (entry, host, source) alerted less than the window ago;
 * otherwise remember TS_US for it. */
static bool seen_recently(fv_indicator_hook *hook, const det_indicator_hit *hit,
                          const fv_endpoint *host, int source, uint64_t ts_us)
{
    uint8_t key[4 + 1 + 16 + 1];
    memcpy(key, &hit->entry_id, 4);
    key[4] = host->kind;
    memcpy(key + 5, host->addr, 16);
    key[21] = (uint8_t)source;
    uint8_t digest[crypto_shorthash_BYTES];
    crypto_shorthash(digest, key, sizeof key, hook->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];

    dedupe_slot *slot = &hook->slots[h & (FV_INDICATOR_DEDUPE_SLOTS - 1)];
    if (slot->hash == h && slot->last_us != 0 && ts_us >= slot->last_us &&
        ts_us - slot->last_us < hook->window_us)
        return true;
    slot->hash = h;
    slot->last_us = ts_us != 0 ? ts_us : 1;
    return false;
}

static void raise_alert(fv_indicator_hook *hook, const det_indicator_hit *hit, int source,
                        uint64_t ts_us, const fv_endpoint *host, const fv_endpoint *peer,
                        uint16_t peer_port, uint8_t proto)
{
    if (seen_recently(hook, hit, host, source, ts_us))
        return;

    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = ts_us;
    a.first_us = ts_us;
    a.last_us = ts_us;
    a.detector = FV_DET_INDICATOR;
    a.severity = hit->severity != 0 ? hit->severity : FV_SEV_HIGH;
    a.score = 1.0;
    a.host = *host;
    if (peer != NULL) {
        a.peer = *peer;
        a.peer_port = peer_port;
    }
    a.proto = proto;
    a.flow_count = 1;
    a.evidence_count = DET_EV_IND_COUNT;
    a.evidence[DET_EV_IND_LIST] = hit->list;
    a.evidence[DET_EV_IND_TYPE] = hit->type;
    a.evidence[DET_EV_IND_LINE] = hit->line;
    a.evidence[DET_EV_IND_SOURCE] = source;
    snprintf(a.summary, sizeof a.summary, "%s indicator of list %u (line %u) seen in %s",
             det_indicator_type_name(hit->type), (unsigned)hit->list, (unsigned)hit->line,
             det_indicator_source_name(source));
    hook->alerts++;
    hook->emit(hook->ctx, &a);
}

static bool match_cap_ip(const fv_indicator_hook *hook, const cap_ip *ip, det_indicator_hit *hit)
{
    uint8_t addr[16] = {0};
    memcpy(addr, ip->addr, ip->family == 4 ? 4 : 16);
    return det_indicators_match_addr(hook->set, ip->family, addr, hit);
}

/* Match an address seen in a DNS answer or a name, unless it lies in a
 * zone: an internal address must never match, or an indicator list of
 * internal addresses would tie each pseudonym in the alert to the list
 * line that names its address. */
static bool match_outside_zone(const fv_indicator_hook *hook, int family, const uint8_t addr[16],
                               det_indicator_hit *hit)
{
    /* An excluded address is not recorded, not even in an alert. */
    if (pol_zone_of(hook->policy, family, addr) != NULL ||
        pol_is_excluded(hook->policy, family, addr))
        return false;
    return det_indicators_match_addr(hook->set, family, addr, hit);
}

/* Match NAME as a domain or, when it is an address literal, as an address. */
static bool match_name(const fv_indicator_hook *hook, const char *name, det_indicator_hit *hit)
{
    if (name[0] == '\0')
        return false;
    uint8_t addr[16] = {0};
    if (inet_pton(AF_INET, name, addr) == 1)
        return match_outside_zone(hook, 4, addr, hit);
    if (inet_pton(AF_INET6, name, addr) == 1)
        return match_outside_zone(hook, 6, addr, hit);
    return det_indicators_match_domain(hook->set, name, hit);
}

/* ---------------------------------------------------------------------- */
/* Records                                                                 */
/* ---------------------------------------------------------------------- */

void fv_indicator_hook_flow(fv_indicator_hook *hook, const cap_flow *raw, const fv_flow_record *rec)
{
    if (hook == NULL)
        return;
    det_indicator_hit hit;

    /* Only addresses outside every zone are matched: internal hosts are
     * not indicators, and their raw addresses must not leave here. */
    if (!fv_endpoint_is_internal(&rec->dst) && match_cap_ip(hook, &raw->dst, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_FLOW, rec->first_us, &rec->src, &rec->dst, rec->dport,
                    rec->proto);
    if (!fv_endpoint_is_internal(&rec->src) && match_cap_ip(hook, &raw->src, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_FLOW, rec->first_us, &rec->dst, &rec->src, rec->sport,
                    rec->proto);
}

void fv_indicator_hook_dns(fv_indicator_hook *hook, const cap_dns *raw, const fv_dns_record *rec)
{
    if (hook == NULL)
        return;
    det_indicator_hit hit;
    const fv_endpoint *client = &rec->client;

    if (match_name(hook, raw->qname, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_DNS_QUERY, raw->ts_us, client, NULL, 0, raw->transport);
    unsigned questions =
        raw->question_count <= FV_DNS_QUESTIONS_MAX ? raw->question_count : FV_DNS_QUESTIONS_MAX;
    for (unsigned i = 1; i < questions; i++) {
        if (match_name(hook, raw->questions[i].name, &hit))
            raise_alert(hook, &hit, DET_IND_SRC_DNS_QUERY, raw->ts_us, client, NULL, 0,
                        raw->transport);
    }

    unsigned cnames = raw->cname_count <= FV_DNS_CNAMES_MAX ? raw->cname_count : FV_DNS_CNAMES_MAX;
    for (unsigned i = 0; i < cnames; i++) {
        if (match_name(hook, raw->cnames[i], &hit))
            raise_alert(hook, &hit, DET_IND_SRC_DNS_ANSWER, raw->ts_us, client, NULL, 0,
                        raw->transport);
    }
    unsigned a_count = raw->a_count <= FV_DNS_ADDRS_MAX ? raw->a_count : FV_DNS_ADDRS_MAX;
    for (unsigned i = 0; i < a_count; i++) {
        uint8_t addr[16] = {0};
        memcpy(addr, raw->a[i], 4);
        if (match_outside_zone(hook, 4, addr, &hit))
            raise_alert(hook, &hit, DET_IND_SRC_DNS_ANSWER, raw->ts_us, client, NULL, 0,
                        raw->transport);
    }
    unsigned aaaa_count = raw->aaaa_count <= FV_DNS_ADDRS_MAX ? raw->aaaa_count : FV_DNS_ADDRS_MAX;
    for (unsigned i = 0; i < aaaa_count; i++) {
        if (match_outside_zone(hook, 6, raw->aaaa[i], &hit))
            raise_alert(hook, &hit, DET_IND_SRC_DNS_ANSWER, raw->ts_us, client, NULL, 0,
                        raw->transport);
    }
}

void fv_indicator_hook_tls(fv_indicator_hook *hook, const cap_tls *raw, const fv_tls_record *rec)
{
    if (hook == NULL)
        return;
    det_indicator_hit hit;
    uint8_t proto = raw->transport == FV_TLS_TCP ? 6 : 17;

    if (match_name(hook, raw->sni, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_TLS_SNI, raw->ts_us, &rec->client, &rec->server,
                    rec->server_port, proto);
    if (raw->ja3[0] != '\0' &&
        det_indicators_match_fingerprint(hook->set, DET_IND_JA3, raw->ja3, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_TLS_JA3, raw->ts_us, &rec->client, &rec->server,
                    rec->server_port, proto);
    if (raw->ja4[0] != '\0' &&
        det_indicators_match_fingerprint(hook->set, DET_IND_JA4, raw->ja4, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_TLS_JA4, raw->ts_us, &rec->client, &rec->server,
                    rec->server_port, proto);
}

void fv_indicator_hook_http(fv_indicator_hook *hook, const cap_http *raw, const fv_http_record *rec)
{
    if (hook == NULL || raw->host[0] == '\0')
        return;

    /* Host is "name", "name:port", "v4:port" or "[v6]:port". */
    char host[FV_NAME_MAX];
    snprintf(host, sizeof host, "%s", raw->host);
    if (host[0] == '[') {
        char *close = strchr(host, ']');
        if (close == NULL)
            return;
        *close = '\0';
        memmove(host, host + 1, strlen(host + 1) + 1);
    } else {
        char *colon = strchr(host, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL)
            *colon = '\0';
    }

    det_indicator_hit hit;
    if (match_name(hook, host, &hit))
        raise_alert(hook, &hit, DET_IND_SRC_HTTP_HOST, raw->ts_us, &rec->client, &rec->server,
                    rec->server_port, 6);
}
