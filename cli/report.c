/*
 * report.c: the record of processing activities, the transparency notice
 * and the `flowveil report` command.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cli.h"
#include "report.h"

#define RPT_CELL_MAX 2048
#define NOT_SET "not set in the policy"

/* ---------------------------------------------------------------------- */
/* Model                                                                   */
/* ---------------------------------------------------------------------- */

void rpt_doc_free(rpt_doc *doc)
{
    if (doc == NULL)
        return;
    for (size_t i = 0; i < doc->count; i++) {
        for (size_t c = 0; c < doc->blocks[i].cell_count; c++)
            free(doc->blocks[i].cells[c]);
    }
    free(doc->blocks);
    memset(doc, 0, sizeof *doc);
}

static rpt_block *doc_push(rpt_doc *doc, rpt_kind kind)
{
    if (doc->failed_rc != FV_OK)
        return NULL;
    if (doc->count == doc->capacity) {
        size_t cap = doc->capacity == 0 ? 32 : doc->capacity * 2;
        rpt_block *grown = realloc(doc->blocks, cap * sizeof *grown);
        if (grown == NULL) {
            doc->failed_rc = FV_ERR_NOMEM;
            return NULL;
        }
        doc->blocks = grown;
        doc->capacity = cap;
    }
    rpt_block *b = &doc->blocks[doc->count++];
    memset(b, 0, sizeof *b);
    b->kind = kind;
    return b;
}

static void block_add_cell(rpt_doc *doc, rpt_block *b, const char *text)
{
    if (b == NULL || b->cell_count >= RPT_CELLS_MAX)
        return;
    char *copy = strdup(text != NULL ? text : "");
    if (copy == NULL) {
        doc->failed_rc = FV_ERR_NOMEM;
        return;
    }
    b->cells[b->cell_count++] = copy;
}

static void doc_add(rpt_doc *doc, rpt_kind kind, const char *fmt, ...) FV_PRINTF(3, 4);

static void doc_add(rpt_doc *doc, rpt_kind kind, const char *fmt, ...)
{
    char text[RPT_CELL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    block_add_cell(doc, doc_push(doc, kind), text);
}

/* Add a table row of COUNT cells. */
static void doc_row(rpt_doc *doc, rpt_kind kind, size_t count, const char *const *cells)
{
    rpt_block *b = doc_push(doc, kind);
    for (size_t i = 0; i < count; i++)
        block_add_cell(doc, b, cells[i]);
}

/* ---------------------------------------------------------------------- */
/* Formatting helpers                                                      */
/* ---------------------------------------------------------------------- */

/* Split SECONDS into a count of the largest whole unit (day, hour or
 * second) and that unit's singular name. */
static uint64_t duration_unit(uint64_t seconds, const char **unit)
{
    if (seconds % 86400 == 0) {
        *unit = "day";
        return seconds / 86400;
    }
    if (seconds % 3600 == 0) {
        *unit = "hour";
        return seconds / 3600;
    }
    *unit = "second";
    return seconds;
}

/* Write a duration in whole days when it is one, else hours or seconds:
 * "1 day", "30 days", "2 hours". */
static void format_duration(uint64_t seconds, char *out, size_t len)
{
    if (seconds == 0) {
        snprintf(out, len, "no limit set");
        return;
    }
    const char *unit;
    uint64_t count = duration_unit(seconds, &unit);
    snprintf(out, len, "%llu %s%s", (unsigned long long)count, unit, count == 1 ? "" : "s");
}

/* Write an interval to follow "every": "day" for one day, "6 hours"
 * for more than one unit. An interval of 0 means the event never runs. */
static void format_every(uint64_t seconds, char *out, size_t len)
{
    if (seconds == 0) {
        snprintf(out, len, "(never: the interval is 0)");
        return;
    }
    const char *unit;
    uint64_t count = duration_unit(seconds, &unit);
    if (count == 1)
        snprintf(out, len, "%s", unit);
    else
        snprintf(out, len, "%llu %ss", (unsigned long long)count, unit);
}

static void format_date(uint64_t seconds, char *out, size_t len, const char *unbounded)
{
    if (seconds == 0) {
        snprintf(out, len, "%s", unbounded);
        return;
    }
    char text[FV_TIME_TEXT_MAX];
    fv_time_format(seconds * 1000000u, text);
    snprintf(out, len, "%s", text);
}

static const char *or_not_set(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NOT_SET;
}

/* Record classes in the order the documents list them. */
static void add_classes_table(rpt_doc *doc, const pol_policy *policy)
{
    static const char *const head[] = {"Data class", "Collected", "Retention"};
    doc_row(doc, RPT_TABLE_HEAD, 3, head);
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        char retention[64];
        uint64_t limit = c == FV_CLASS_AGGREGATE ? pol_aggregates_retention_s(policy)
                                                 : pol_retention_s(policy, (fv_class)c);
        format_duration(limit, retention, sizeof retention);
        int cls = c == FV_CLASS_AGGREGATE ? POL_CLASS_AGGREGATES : (int)c;
        const char *row[] = {fv_class_name((fv_class)c),
                             pol_class_enabled(policy, cls) ? "yes" : "no", retention};
        doc_row(doc, RPT_TABLE_ROW, 3, row);
    }
    char audit[64];
    format_duration(pol_audit_retention_s(policy), audit, sizeof audit);
    const char *row[] = {"audit log", "yes (always)", audit};
    doc_row(doc, RPT_TABLE_ROW, 3, row);
}

static void add_groups_table(rpt_doc *doc, const pol_policy *policy)
{
    static const char *const head[] = {"Group",    "Mode",       "Legal basis", "Approver",
                                       "Valid from", "Valid until", "Window",     "Purpose"};
    size_t n = pol_group_count(policy);
    if (n == 0) {
        doc_add(doc, RPT_PARAGRAPH, "The policy defines no groups: every internal host is "
                                    "processed in the default mode.");
        return;
    }
    doc_row(doc, RPT_TABLE_HEAD, 8, head);
    for (size_t i = 0; i < n; i++) {
        pol_group_info g;
        pol_group_get(policy, i, &g);
        char from[FV_TIME_TEXT_MAX], until[FV_TIME_TEXT_MAX];
        format_date(g.valid_from_s, from, sizeof from, "unbounded");
        format_date(g.valid_until_s, until, sizeof until, "unbounded");
        const char *row[] = {or_not_set(g.name),     pol_mode_name(g.mode),
                             or_not_set(g.legal_basis), or_not_set(g.approver),
                             from,                   until,
                             g.window != NULL ? g.window : "always", or_not_set(g.purpose)};
        doc_row(doc, RPT_TABLE_ROW, 8, row);
    }
}

static void add_roles(rpt_doc *doc, const pol_policy *policy)
{
    static const char *const what[] = {"flows", "dns",   "tls",       "http",   "dhcp",
                                       "ssh",   "alerts", "aggregates", "audit", "retention",
                                       "policy", "reports", "counters"};
    for (int r = POL_ROLE_ANALYST; r <= POL_ROLE_ADMIN; r++) {
        char list[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < sizeof what / sizeof what[0]; i++) {
            if (!pol_role_may_read(policy, (pol_role)r, what[i]))
                continue;
            int n = snprintf(list + used, sizeof list - used, "%s%s", used > 0 ? ", " : "",
                             what[i]);
            if (n < 0 || (size_t)n >= sizeof list - used)
                break;
            used += (size_t)n;
        }
        doc_add(doc, RPT_ITEM, "%s: may read %s", pol_role_name((pol_role)r),
                used > 0 ? list : "nothing");
    }
}

/* Export destinations receive records, so Art. 30 lists them as recipients. */
static void add_export_recipients(rpt_doc *doc, const pol_policy *policy)
{
    const pol_export *ex = pol_export_config(policy);
    for (size_t i = 0; ex != NULL && i < ex->count; i++) {
        const pol_export_dest *d = &ex->dest[i];
        char classes[256] = "";
        size_t used = 0;
        for (int c = 0; c < FV_CLASS_COUNT; c++) {
            if ((d->classes & (1u << c)) == 0)
                continue;
            int n = snprintf(classes + used, sizeof classes - used, "%s%s", used > 0 ? ", " : "",
                             fv_class_name((fv_class)c));
            if (n < 0 || (size_t)n >= sizeof classes - used)
                break;
            used += (size_t)n;
        }
        const char *all = d->kind == POL_EXPORT_IPFIX ? "flows, dns, tls" : "every class";
        doc_add(doc, RPT_ITEM, "export destination %s (%s, %s): receives %s", d->name,
                d->kind == POL_EXPORT_KAFKA ? "Kafka" : "IPFIX", d->target,
                used > 0 ? classes : all);
    }
}

static void add_safeguards(rpt_doc *doc, const pol_policy *policy)
{
    char rotation[64], sweep[64];
    format_every(pol_rotation_s(policy), rotation, sizeof rotation);
    format_every(pol_sweep_interval_s(policy), sweep, sizeof sweep);
    doc_add(doc, RPT_ITEM,
            "Pseudonymization: internal addresses and MAC addresses are replaced by keyed "
            "BLAKE2b pseudonyms before anything is stored; the key rotates every %s.",
            rotation);
    doc_add(doc, RPT_ITEM, "Key destruction: on rotation the previous key is destroyed, so "
                           "earlier pseudonyms can no longer be recomputed.");
    char bpf[2048];
    bool has_exclusions = pol_bpf_exclusions(policy, bpf, sizeof bpf) == FV_OK && bpf[0] != '\0';
    doc_add(doc, RPT_ITEM,
            "Exclusions: %s Hosts that an excluded group names only by host-name pattern "
            "are recognised once their DHCP message with that name has been seen; until "
            "then they are matched by address and MAC only, so a group that must exclude "
            "a device from its first packet lists its subnet or MAC as well.",
            has_exclusions ? "excluded subnets, and the MAC addresses of excluded groups, are "
                             "compiled into the capture filter of live capture, so those packets "
                             "never reach the analysis; every packet read from a file is checked "
                             "against the same groups before anything is read from it."
                           : "the policy excludes no subnet; packets of hosts in excluded groups "
                             "are dropped before anything is read from them.");
    doc_add(doc, RPT_ITEM,
            "Retention: records past their class's limit are deleted by a sweep every %s "
            "and are never returned by queries or exports, even before the sweep.",
            sweep);
    doc_add(doc, RPT_ITEM, "Audit: sweeps, exports and policy changes are written to a "
                           "hash-chained audit log that detects edited or removed entries.");
    doc_add(doc, RPT_ITEM,
            "Reports: aggregate reports only show groups of at least %u distinct hosts.",
            (unsigned)pol_k_threshold(policy));
}

/* ---------------------------------------------------------------------- */
/* Record of processing activities                                         */
/* ---------------------------------------------------------------------- */

int rpt_processing(const pol_policy *policy, uint64_t now_us, rpt_doc *out)
{
    if (policy == NULL || out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    char now[FV_TIME_TEXT_MAX];
    fv_time_format(now_us, now);
    uint8_t hash[32];
    pol_hash(policy, hash);

    doc_add(out, RPT_TITLE, "Record of processing activities (GDPR Art. 30)");
    doc_add(out, RPT_PARAGRAPH,
            "Generated by flowveil on %s from the policy with hash "
            "%02x%02x%02x%02x%02x%02x%02x%02x.",
            now, hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]);

    doc_add(out, RPT_HEADING, "Controller");
    /* From the policy's organization map; a missing field stays visible
     * as not set so the officer knows what to add. */
    doc_add(out, RPT_ITEM, "Name: %s", or_not_set(pol_organization(policy, "name")));
    doc_add(out, RPT_ITEM, "Contact: %s", or_not_set(pol_organization(policy, "contact")));
    doc_add(out, RPT_ITEM, "Data protection officer: %s",
            or_not_set(pol_organization(policy, "dpo")));

    doc_add(out, RPT_HEADING, "Purposes of the processing");
    doc_add(out, RPT_PARAGRAPH,
            "Network security monitoring: metadata of network traffic (flows and protocol "
            "metadata, never payload) is analysed to detect attacks and data exfiltration. "
            "The purpose of each group of monitored hosts is listed below.");

    doc_add(out, RPT_HEADING, "Data classes collected and retention");
    add_classes_table(out, policy);

    doc_add(out, RPT_HEADING, "Categories of data subjects");
    doc_add(out, RPT_PARAGRAPH, "Users of internal hosts, grouped by the policy. Hosts in no "
                                "group are processed in the default mode.");
    add_groups_table(out, policy);

    doc_add(out, RPT_HEADING, "Recipients");
    add_roles(out, policy);
    add_export_recipients(out, policy);

    doc_add(out, RPT_HEADING, "Technical and organisational safeguards");
    add_safeguards(out, policy);
    return out->failed_rc;
}

/* ---------------------------------------------------------------------- */
/* Transparency notice                                                     */
/* ---------------------------------------------------------------------- */

typedef struct alert_tally {
    uint64_t by_detector[FV_DET_MAX + 1];    /* index fv_detector; 0 counts unknown detectors */
    uint64_t total;
} alert_tally;

static bool tally_alert(void *ctx, const fv_record *rec)
{
    alert_tally *t = ctx;
    unsigned d = rec->u.alert.detector;
    t->by_detector[d <= FV_DET_MAX ? d : 0]++;
    t->total++;
    return true;
}

static int count_alerts(store_env *store, uint64_t from_us, uint64_t to_us, uint64_t now_us,
                        alert_tally *t)
{
    store_query q = {.cls = FV_CLASS_ALERT,
                     .from_us = from_us,
                     .to_us = to_us,
                     .limit = STORE_QUERY_LIMIT_MAX};
    uint64_t cursor = 0;
    do {
        q.after_id = cursor;
        int rc = store_query_run(store, &q, now_us, tally_alert, t, &cursor);
        if (rc != FV_OK)
            return rc;
    } while (cursor != 0);
    return FV_OK;
}

typedef struct audit_tally {
    uint64_t from_us, to_us;
    uint64_t sweeps, deleted, exports, reveals;
} audit_tally;

static bool tally_audit(void *ctx, const store_audit_entry *e)
{
    audit_tally *t = ctx;
    if (e->time_us < t->from_us || e->time_us > t->to_us)
        return true;
    if (strcmp(e->action, "retention.sweep") == 0) {
        t->sweeps++;
        t->deleted += e->result_count;
    } else if (strcmp(e->action, "subject.erase") == 0) {
        t->deleted += e->result_count;
    } else if (strcmp(e->action, "export") == 0 || strcmp(e->action, "subject.export") == 0) {
        t->exports++;
    } else if (strcmp(e->action, "reveal") == 0 && e->result_count > 0) {
        /* Only successful reveals: a failed attempt identified nobody. */
        t->reveals++;
    }
    return true;
}

static int count_audit(store_env *store, audit_tally *t)
{
    uint64_t next = 0;
    do {
        int rc = store_audit_each(store, next, STORE_AUDIT_LIMIT_MAX, false, tally_audit, t,
                                  &next);
        if (rc != FV_OK)
            return rc;
    } while (next != 0);
    return FV_OK;
}

static void add_collected(rpt_doc *doc, const pol_policy *policy)
{
    static const char *const meaning[FV_CLASS_COUNT] = {
        "connections: which device talked to which address, when and how much",
        "DNS: names looked up by devices",
        "TLS: server names, protocol versions, offered protocols (ALPN) and software "
        "fingerprints (JA3, JA4) of encrypted connections; never their content",
        "HTTP: host names, methods, response status, software names (User-Agent) and the "
        "length of the requested path of unencrypted web requests; never the path itself",
        "alerts: findings of the security detectors",
        "DHCP: address assignments and device names",
        "SSH: software versions of SSH connections",
        "aggregates: counts over groups of devices",
    };
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        int cls = c == FV_CLASS_AGGREGATE ? POL_CLASS_AGGREGATES : (int)c;
        if (!pol_class_enabled(policy, cls))
            continue;
        char retention[64];
        uint64_t limit = c == FV_CLASS_AGGREGATE ? pol_aggregates_retention_s(policy)
                                                 : pol_retention_s(policy, (fv_class)c);
        format_duration(limit, retention, sizeof retention);
        doc_add(doc, RPT_ITEM, "%s (kept for %s)", meaning[c], retention);
    }
}

int rpt_transparency(const pol_policy *policy, store_env *store, uint64_t from_us,
                     uint64_t to_us, uint64_t now_us, rpt_doc *out)
{
    if (policy == NULL || out == NULL || from_us > to_us)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    char from[FV_TIME_TEXT_MAX], to[FV_TIME_TEXT_MAX];
    fv_time_format(from_us, from);
    fv_time_format(to_us, to);

    doc_add(out, RPT_TITLE, "Transparency notice on network monitoring");
    doc_add(out, RPT_PARAGRAPH, "Period: %s to %s.", from, to);

    doc_add(out, RPT_HEADING, "What is collected");
    doc_add(out, RPT_PARAGRAPH,
            "Only metadata of network traffic is recorded, never the content of messages, "
            "web pages or files. Devices are identified by pseudonyms, not by their "
            "addresses.");
    add_collected(out, policy);

    doc_add(out, RPT_HEADING, "Why");
    size_t groups = pol_group_count(policy);
    if (groups == 0)
        doc_add(out, RPT_PARAGRAPH, "To detect attacks on the network and data exfiltration.");
    for (size_t i = 0; i < groups; i++) {
        pol_group_info g;
        pol_group_get(policy, i, &g);
        doc_add(out, RPT_ITEM, "%s (%s): %s; legal basis: %s", or_not_set(g.name),
                pol_mode_name(g.mode), or_not_set(g.purpose), or_not_set(g.legal_basis));
    }

    doc_add(out, RPT_HEADING, "Safeguards");
    add_safeguards(out, policy);

    doc_add(out, RPT_HEADING, "Activity in the period");
    if (store == NULL) {
        doc_add(out, RPT_PARAGRAPH, "No store was given, so no counts are reported.");
        return out->failed_rc;
    }
    alert_tally alerts = {0};
    int rc = count_alerts(store, from_us, to_us, now_us, &alerts);
    if (rc != FV_OK)
        return rc;
    static const char *const head[] = {"Event", "Count"};
    doc_row(out, RPT_TABLE_HEAD, 2, head);
    char count[32];
    snprintf(count, sizeof count, "%llu", (unsigned long long)alerts.total);
    const char *total_row[] = {"alerts raised", count};
    doc_row(out, RPT_TABLE_ROW, 2, total_row);
    for (int d = FV_DET_BEACON; d <= FV_DET_MAX; d++) {
        char label[96];
        snprintf(label, sizeof label, "alerts by the %s detector", fv_detector_name(d));
        snprintf(count, sizeof count, "%llu", (unsigned long long)alerts.by_detector[d]);
        const char *row[] = {label, count};
        doc_row(out, RPT_TABLE_ROW, 2, row);
    }

    audit_tally audit = {.from_us = from_us, .to_us = to_us};
    rc = count_audit(store, &audit);
    if (rc != FV_OK)
        return rc;
    const struct {
        const char *label;
        uint64_t value;
    } events[] = {
        {"retention sweeps", audit.sweeps},
        {"records deleted by retention", audit.deleted},
        {"exports", audit.exports},
        {"pseudonyms revealed", audit.reveals},
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        snprintf(count, sizeof count, "%llu", (unsigned long long)events[i].value);
        const char *row[] = {events[i].label, count};
        doc_row(out, RPT_TABLE_ROW, 2, row);
    }
    return out->failed_rc;
}

/* ---------------------------------------------------------------------- */
/* Rendering                                                               */
/* ---------------------------------------------------------------------- */

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static void buf_append(text_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n + 1 > b->cap - b->len || b->data == NULL) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (n + 1 > cap - b->len)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(text_buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static char *buf_finish(text_buf *b)
{
    if (b->failed || b->data == NULL) {
        free(b->data);
        return NULL;
    }
    return b->data;
}

/* Escape Markdown punctuation that could start markup (and '|', which
 * ends a table cell), and turn line breaks into spaces so a cell cannot
 * break the table. */
static void md_text(text_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == '\n' || c == '\r') {
            buf_puts(b, " ");
            continue;
        }
        if (strchr("\\`*_[]<>#|!", c) != NULL)
            buf_puts(b, "\\");
        buf_append(b, &c, 1);
    }
}

char *rpt_render_markdown(const rpt_doc *doc)
{
    text_buf b = {0};
    rpt_kind prev = RPT_TITLE;
    for (size_t i = 0; i < doc->count; i++) {
        const rpt_block *blk = &doc->blocks[i];
        bool list_or_table = blk->kind == RPT_ITEM || blk->kind == RPT_TABLE_ROW;
        bool continues = i > 0 && list_or_table &&
                         (prev == blk->kind || (blk->kind == RPT_TABLE_ROW &&
                                                prev == RPT_TABLE_HEAD));
        if (i > 0 && !continues)
            buf_puts(&b, "\n");
        switch (blk->kind) {
        case RPT_TITLE: buf_puts(&b, "# "); break;
        case RPT_HEADING: buf_puts(&b, "## "); break;
        case RPT_ITEM: buf_puts(&b, "- "); break;
        default: break;
        }
        if (blk->kind == RPT_TABLE_HEAD || blk->kind == RPT_TABLE_ROW) {
            buf_puts(&b, "|");
            for (size_t c = 0; c < blk->cell_count; c++) {
                buf_puts(&b, " ");
                md_text(&b, blk->cells[c]);
                buf_puts(&b, " |");
            }
            buf_puts(&b, "\n");
            if (blk->kind == RPT_TABLE_HEAD) {
                buf_puts(&b, "|");
                for (size_t c = 0; c < blk->cell_count; c++)
                    buf_puts(&b, " --- |");
                buf_puts(&b, "\n");
            }
        } else {
            md_text(&b, blk->cell_count > 0 ? blk->cells[0] : "");
            buf_puts(&b, "\n");
        }
        prev = blk->kind;
    }
    return buf_finish(&b);
}

static void html_text(text_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': buf_puts(b, "&amp;"); break;
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\'': buf_puts(b, "&#39;"); break;
        default: buf_append(b, s, 1); break;
        }
    }
}

static void html_close_open(text_buf *b, rpt_kind open, rpt_kind next)
{
    if (open == RPT_ITEM && next != RPT_ITEM)
        buf_puts(b, "</ul>\n");
    if ((open == RPT_TABLE_HEAD || open == RPT_TABLE_ROW) && next != RPT_TABLE_ROW)
        buf_puts(b, "</tbody></table>\n");
}

char *rpt_render_html(const rpt_doc *doc, const char *css_href)
{
    text_buf b = {0};
    const char *title = doc->count > 0 && doc->blocks[0].kind == RPT_TITLE
                            ? doc->blocks[0].cells[0]
                            : "flowveil report";
    buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    html_text(&b, title);
    buf_puts(&b, "</title>\n");
    if (css_href != NULL) {
        buf_puts(&b, "<link rel=\"stylesheet\" href=\"");
        html_text(&b, css_href);
        buf_puts(&b, "\">\n");
    }
    buf_puts(&b, "</head>\n<body class=\"fv-report\">\n");

    rpt_kind open = RPT_PARAGRAPH;
    for (size_t i = 0; i < doc->count; i++) {
        const rpt_block *blk = &doc->blocks[i];
        html_close_open(&b, open, blk->kind);
        const char *text = blk->cell_count > 0 ? blk->cells[0] : "";
        switch (blk->kind) {
        case RPT_TITLE:
            buf_puts(&b, "<h1>");
            html_text(&b, text);
            buf_puts(&b, "</h1>\n");
            break;
        case RPT_HEADING:
            buf_puts(&b, "<h2>");
            html_text(&b, text);
            buf_puts(&b, "</h2>\n");
            break;
        case RPT_PARAGRAPH:
            buf_puts(&b, "<p>");
            html_text(&b, text);
            buf_puts(&b, "</p>\n");
            break;
        case RPT_ITEM:
            if (open != RPT_ITEM)
                buf_puts(&b, "<ul>\n");
            buf_puts(&b, "<li>");
            html_text(&b, text);
            buf_puts(&b, "</li>\n");
            break;
        case RPT_TABLE_HEAD:
        case RPT_TABLE_ROW: {
            bool head = blk->kind == RPT_TABLE_HEAD;
            if (head)
                buf_puts(&b, "<table>\n<thead>");
            else if (open != RPT_TABLE_HEAD && open != RPT_TABLE_ROW)
                buf_puts(&b, "<table>\n<tbody>");
            buf_puts(&b, "<tr>");
            for (size_t c = 0; c < blk->cell_count; c++) {
                buf_puts(&b, head ? "<th>" : "<td>");
                html_text(&b, blk->cells[c]);
                buf_puts(&b, head ? "</th>" : "</td>");
            }
            buf_puts(&b, head ? "</tr></thead>\n<tbody>\n" : "</tr>\n");
            break;
        }
        }
        open = blk->kind;
    }
    html_close_open(&b, open, RPT_TITLE);
    buf_puts(&b, "</body>\n</html>\n");
    return buf_finish(&b);
}

/* ---------------------------------------------------------------------- */
/* flowveil report                                                         */
/* ---------------------------------------------------------------------- */

static void print_report_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil report processing --policy FILE [--format md|html] [--output FILE]\n"
            "                       [--now SECONDS]\n"
            "       flowveil report transparency --policy FILE --db DIR --period FROM..TO\n"
            "                       [--format md|html] [--output FILE] [--now SECONDS]\n"
            "\n"
            "processing    the record of processing activities (GDPR Art. 30) derived from\n"
            "              the policy\n"
            "transparency  the notice for monitored staff: what is collected, why, for how\n"
            "              long, and counts of alerts, sweeps, deletions, exports and reveals\n"
            "              in the period (no per-person data)\n"
            "\n"
            "  -p, --policy FILE     compliance policy (YAML)\n"
            "  -d, --db DIR          store directory (transparency)\n"
            "      --period FROM..TO period, both ends inclusive: UTC dates, each a whole\n"
            "                        day (2026-11-01..2026-11-30), RFC 3339 times\n"
            "                        (2026-11-01T00:00:00Z..2026-11-30T23:59:59Z) or\n"
            "                        seconds since 1970 (1793491200..1796083199)\n"
            "  -f, --format md|html  output format (default md); the HTML links report.css\n"
            "  -o, --output FILE     write to FILE instead of standard output\n"
            "      --now SECONDS     generation time instead of the clock\n");
}

/* True for a plain calendar date, YYYY-MM-DD. Whether the date exists is
 * left to fv_time_parse. */
static bool is_plain_date(const char *text)
{
    static const char PATTERN[] = "dddd-dd-dd";

    if (strlen(text) != sizeof PATTERN - 1)
        return false;
    for (size_t i = 0; PATTERN[i] != '\0'; i++) {
        bool digit = text[i] >= '0' && text[i] <= '9';
        if (PATTERN[i] == 'd' ? !digit : text[i] != '-')
            return false;
    }
    return true;
}

/* Parse one end of --period (RFC 3339, a plain date or seconds since
 * 1970) into whole seconds; a fraction of a second is dropped. A plain
 * date is a whole UTC day, so FROM starts at its first second and TO
 * ends at its last: 2026-11-01..2026-11-30 covers all of November. */
static int parse_period_end(const char *period, const char *which, const char *text,
                            bool is_end, uint64_t *out_s)
{
    char day_time[32];
    const char *value = text;

    /* Eight digits such as 20261101 would read as seconds in 1970. */
    if (strlen(text) == 8 && strspn(text, "0123456789") == 8)
        return cli_usage_error("report",
                               "invalid --period '%s': %s '%s' is ambiguous; write a date "
                               "with dashes (%.4s-%.2s-%.2s) or RFC 3339",
                               period, which, text, text, text + 4, text + 6);
    if (is_plain_date(text)) {
        snprintf(day_time, sizeof day_time, "%sT%s", text, is_end ? "23:59:59Z" : "00:00:00Z");
        value = day_time;
    }
    uint64_t us = 0;
    if (fv_time_parse(value, &us) != FV_OK)
        return cli_usage_error("report",
                               "invalid --period '%s': %s '%s' is not a time; use RFC 3339 "
                               "such as 2026-11-01T00:00:00Z, a date such as 2026-11-01 or "
                               "seconds since 1970",
                               period, which, text);
    *out_s = us / 1000000u;
    return CLI_EXIT_OK;
}

static int parse_period(const char *text, uint64_t *from_s, uint64_t *to_s)
{
    /* Two RFC 3339 times with fractions fit in well under this. */
    size_t length = strlen(text);
    if (length > 128)
        return cli_usage_error("report",
                               "invalid --period: %zu bytes is too long; expected FROM..TO, "
                               "e.g. 2026-11-01..2026-11-30",
                               length);
    const char *dots = strstr(text, "..");
    if (dots == NULL)
        return cli_usage_error("report", "invalid --period '%s': expected FROM..TO, e.g. "
                                         "2026-11-01..2026-11-30, "
                                         "2026-11-01T00:00:00Z..2026-11-30T23:59:59Z or "
                                         "1793491200..1796083199",
                               text);
    char from[64];
    size_t n = (size_t)(dots - text);
    if (n == 0 || n >= sizeof from)
        return cli_usage_error("report",
                               "invalid --period '%s': FROM is missing or too long; write "
                               "FROM..TO such as 2026-11-01..2026-11-30",
                               text);
    memcpy(from, text, n);
    from[n] = '\0';
    int rc = parse_period_end(text, "FROM", from, false, from_s);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = parse_period_end(text, "TO", dots + 2, true, to_s);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (*from_s > *to_s)
        return cli_usage_error("report", "invalid --period '%s': FROM is after TO; swap them",
                               text);
    return CLI_EXIT_OK;
}

/*
 * Write TEXT to PATH, or to standard output when PATH is NULL. A file is
 * written beside PATH and renamed over it, so a failed write leaves no
 * partial report, and only a regular file or a new name is replaced:
 * never a symbolic link, device or FIFO.
 */
static int write_output(const char *path, const char *text)
{
    if (path == NULL) {
        if (fputs(text, stdout) < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "flowveil: error: writing to standard output failed: %s\n",
                    strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        return CLI_EXIT_OK;
    }

    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "flowveil: error: --output '%s' exists and is not a regular file; name "
                        "a new file\n",
                path);
        return CLI_EXIT_FAILURE;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp) {
        fprintf(stderr, "flowveil: error: --output path is too long\n");
        return CLI_EXIT_FAILURE;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "flowveil: error: cannot create a file beside '%s': %s\n", path,
                strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    size_t len = strlen(text), done = 0;
    bool ok = true;
    while (ok && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        if (ok)
            done += (size_t)n;
    }
    ok = ok && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        fprintf(stderr, "flowveil: error: writing '%s' failed: %s\n", path, strerror(saved));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int cli_cmd_report(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_report_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *kind = argv[1];
    bool transparency = strcmp(kind, "transparency") == 0;
    if (!transparency && strcmp(kind, "processing") != 0)
        return cli_usage_error("report", "unknown report '%s': expected 'processing' or "
                                         "'transparency'",
                               kind);

    static const struct option longopts[] = {
        {"policy", required_argument, NULL, 'p'}, {"db", required_argument, NULL, 'd'},
        {"period", required_argument, NULL, 'P'}, {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'}, {"now", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *policy_path = NULL, *db = NULL, *period = NULL, *output = NULL;
    const char *format = "md";
    uint64_t now_s = 0;
    int rc;

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":p:d:f:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': policy_path = optarg; break;
        case 'd': db = optarg; break;
        case 'P': period = optarg; break;
        case 'f': format = optarg; break;
        case 'o': output = optarg; break;
        case 'n':
            rc = cli_parse_seconds("report", "--now", optarg, &now_s);
            if (rc != CLI_EXIT_OK)
                return rc;
            break;
        case 'h': print_report_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("report", "option '%s' needs a value", argv[optind]);
        default: return cli_usage_error("report", "unknown option '%s'", argv[optind]);
        }
    }
    if (optind + 1 < argc)
        return cli_usage_error("report", "unexpected argument '%s'", argv[optind + 1]);
    if (policy_path == NULL)
        return cli_usage_error("report", "missing --policy FILE (the compliance policy)");
    bool html = strcmp(format, "html") == 0;
    if (!html && strcmp(format, "md") != 0)
        return cli_usage_error("report", "invalid --format '%s': expected md or html", format);
    uint64_t from_s = 0, to_s = 0;
    if (!transparency && (db != NULL || period != NULL))
        return cli_usage_error("report", "%s applies to 'report transparency' only; the record "
                                         "of processing is built from the policy alone, so "
                                         "leave it out",
                               db != NULL ? "--db" : "--period");
    if (transparency) {
        if (db == NULL)
            return cli_usage_error("report", "missing --db DIR (the store directory)");
        if (period == NULL)
            return cli_usage_error("report", "missing --period FROM..TO");
        rc = parse_period(period, &from_s, &to_s);
        if (rc != CLI_EXIT_OK)
            return rc;
    }

    char err[1024];
    pol_policy *policy = NULL;
    if (pol_load(policy_path, &policy, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    uint64_t now_us = now_s != 0 ? now_s * 1000000u : fv_now_us();
    store_env *store = NULL;
    rpt_doc doc = {0};
    int status = CLI_EXIT_FAILURE;
    if (transparency) {
        if (store_open(db, STORE_RDONLY, &store, err, sizeof err) != FV_OK) {
            fprintf(stderr, "flowveil: error: %s\n", err);
            goto out;
        }
        rc = rpt_transparency(policy, store, from_s * 1000000u, to_s * 1000000u + 999999u,
                              now_us, &doc);
    } else {
        rc = rpt_processing(policy, now_us, &doc);
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: building the %s report failed: %s\n", kind,
                fv_strerror(rc));
        goto out;
    }
    char *text = html ? rpt_render_html(&doc, "report.css") : rpt_render_markdown(&doc);
    if (text == NULL) {
        fprintf(stderr, "flowveil: error: out of memory rendering the %s report\n", kind);
        goto out;
    }
    status = write_output(output, text);
    free(text);

out:
    rpt_doc_free(&doc);
    store_close(&store);
    pol_destroy(&policy);
    return status;
}
