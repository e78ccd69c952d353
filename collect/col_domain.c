/*
 * col_domain.c: per-exporter state of the collector: the domain table,
 * templates with their limits and expiry, and sequence numbers.
 */
#include "col_internal.h"

#include <stdlib.h>
#include <string.h>

#define COL_DEFAULT_MAX_DOMAINS 1024u
#define COL_DEFAULT_MAX_TEMPLATES 8192u
#define COL_DEFAULT_MAX_TEMPLATE_FIELDS 128u
#define COL_DEFAULT_TEMPLATE_TIMEOUT_S 1800u
#define COL_DEFAULT_DOMAIN_IDLE_S 3600u
/* Refusals are logged at most this often. */
#define COL_REFUSAL_LOG_INTERVAL_S 60u

/* Sequence differences of 2^31 or more are taken as a datagram that
 * arrived late or a restarted exporter, not as lost records. */
#define COL_SEQUENCE_FORWARD_MAX 0x80000000u

static const char *const col_stat_names[] = {
    "datagrams",         "datagrams_v5",       "datagrams_v9",        "datagrams_ipfix",
    "unsupported_version", "malformed",        "records",             "records_no_address",
    "sampled_records",   "template_misses",    "templates_added",     "templates_withdrawn",
    "templates_expired", "templates_refused",  "options_records",     "domains_refused",
    "sequence_gaps",     "sequence_lost",      "time_unknown",        "records_future",
    "domains_expired",   "records_out_of_range",
};

_Static_assert(sizeof(col_stats) == sizeof col_stat_names / sizeof col_stat_names[0] *
                                         sizeof(uint64_t),
               "col_stat_names lists every col_stats field");

const char *const *col_stats_names(size_t *count)
{
    *count = sizeof col_stat_names / sizeof col_stat_names[0];
    return col_stat_names;
}

int col_collector_create(const col_config *config, col_flow_fn on_flow, void *ctx,
                         col_collector **out)
{
    if (out == NULL || on_flow == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    col_collector *col = calloc(1, sizeof *col);
    if (col == NULL)
        return FV_ERR_NOMEM;
    if (config != NULL)
        col->config = *config;
    if (col->config.max_domains == 0)
        col->config.max_domains = COL_DEFAULT_MAX_DOMAINS;
    if (col->config.max_templates == 0)
        col->config.max_templates = COL_DEFAULT_MAX_TEMPLATES;
    if (col->config.max_template_fields == 0)
        col->config.max_template_fields = COL_DEFAULT_MAX_TEMPLATE_FIELDS;
    if (col->config.max_template_fields > COL_MAX_FIELDS_ON_STACK) {
        free(col);
        return FV_ERR_INVALID;
    }
    if (col->config.template_timeout_s == 0)
        col->config.template_timeout_s = COL_DEFAULT_TEMPLATE_TIMEOUT_S;
    if (col->config.domain_idle_s == 0)
        col->config.domain_idle_s = COL_DEFAULT_DOMAIN_IDLE_S;
    col->on_flow = on_flow;
    col->ctx = ctx;
    *out = col;
    return FV_OK;
}

static void col_domain_free(col_domain *domain)
{
    if (domain == NULL)
        return;
    for (size_t i = 0; i < domain->template_count; i++)
        free(domain->templates[i].fields);
    free(domain->templates);
    free(domain);
}

void col_collector_destroy(col_collector **col)
{
    if (col == NULL || *col == NULL)
        return;
    col_collector *c = *col;
    for (size_t i = 0; i < c->domain_count; i++)
        col_domain_free(c->domains[i]);
    free(c->domains);
    free(c);
    *col = NULL;
}

void col_collector_stats(const col_collector *col, col_stats *out)
{
    *out = col->stats;
}

size_t col_collector_template_count(const col_collector *col)
{
    return col->template_total;
}

static bool col_ip_equal(const cap_ip *a, const cap_ip *b)
{
    size_t n = a->family == 4 ? 4 : 16;
    return a->family == b->family && memcmp(a->addr, b->addr, n) == 0;
}

/* Drop every domain idle for domain_idle_s at NOW_S, with its templates. */
static void col_domains_expire_idle(col_collector *col, uint64_t now_s)
{
    size_t i = 0;
    while (i < col->domain_count) {
        col_domain *d = col->domains[i];
        if (now_s > d->last_seen_s && now_s - d->last_seen_s >= col->config.domain_idle_s) {
            col->template_total -= d->template_count;
            col_domain_free(d);
            col->domains[i] = col->domains[--col->domain_count];
            col->stats.domains_expired++;
        } else {
            i++;
        }
    }
}

void col_log_refusal(col_collector *col, const char *what, uint64_t total)
{
    uint64_t now_s = col->arrival_s;
    if (col->refusal_logged_s != 0 && now_s - col->refusal_logged_s < COL_REFUSAL_LOG_INTERVAL_S)
        return;
    col->refusal_logged_s = now_s;
    fv_warning("collect: %s (%llu so far); the limits are --max-domains and --max-templates, and "
               "idle domains are dropped after %u s",
               what, (unsigned long long)total, (unsigned)col->config.domain_idle_s);
}

col_domain *col_domain_get(col_collector *col, const cap_ip *exporter, uint8_t version,
                           uint32_t domain_id)
{
    for (size_t i = 0; i < col->domain_count; i++) {
        col_domain *d = col->domains[i];
        if (d->version == version && d->domain_id == domain_id && col_ip_equal(&d->exporter, exporter)) {
            d->last_seen_s = col->arrival_s;
            return d;
        }
    }

    if (col->domain_count >= col->config.max_domains)
        col_domains_expire_idle(col, col->arrival_s);
    if (col->domain_count >= col->config.max_domains) {
        col->stats.domains_refused++;
        col_log_refusal(col, "a datagram from a new exporter domain was rejected because the "
                             "domain table is full",
                        col->stats.domains_refused);
        return NULL;
    }
    if (col->domain_count == col->domain_capacity) {
        size_t capacity = col->domain_capacity == 0 ? 16 : col->domain_capacity * 2;
        col_domain **grown = realloc(col->domains, capacity * sizeof *grown);  // NOLINT(bugprone-sizeof-expression): array of domain pointers
        if (grown == NULL) {
            col->stats.domains_refused++;
            return NULL;
        }
        col->domains = grown;
        col->domain_capacity = capacity;
    }
    col_domain *d = calloc(1, sizeof *d);
    if (d == NULL) {
        col->stats.domains_refused++;
        return NULL;
    }
    d->exporter = *exporter;
    d->version = version;
    d->domain_id = domain_id;
    d->last_seen_s = col->arrival_s;
    col->domains[col->domain_count++] = d;
    return d;
}

col_template *col_template_find(col_domain *domain, uint16_t id)
{
    for (size_t i = 0; i < domain->template_count; i++) {
        if (domain->templates[i].id == id)
            return &domain->templates[i];
    }
    return NULL;
}

int col_template_put(col_collector *col, col_domain *domain, uint16_t id, bool is_options,
                     uint16_t scope_count, const col_field *fields, uint16_t count,
                     uint64_t now_s)
{
    if (count == 0 || count > col->config.max_template_fields) {
        col->stats.templates_refused++;
        return FV_ERR_FULL;
    }

    uint32_t min_bytes = 0;
    for (uint16_t i = 0; i < count; i++)
        min_bytes += fields[i].length == 0xffff ? 1u : fields[i].length;

    col_template *t = col_template_find(domain, id);
    bool same = t != NULL && t->is_options == is_options && t->scope_count == scope_count &&
                t->field_count == count &&
                memcmp(t->fields, fields, (size_t)count * sizeof *fields) == 0;
    if (same) {
        /* A refresh of an unchanged template only renews its lifetime. */
        t->refreshed_s = now_s;
        return FV_OK;
    }

    col_field *copy = malloc((size_t)count * sizeof *copy);
    if (copy == NULL)
        return FV_ERR_NOMEM;
    memcpy(copy, fields, (size_t)count * sizeof *copy);

    if (t == NULL) {
        /* One domain may hold a quarter of the table, so a single
         * exporter (or a spoofed one) cannot refuse every other one. */
        size_t share = col->config.max_templates / 4u > 0 ? col->config.max_templates / 4u : 1u;
        if (col->template_total >= col->config.max_templates || domain->template_count >= share) {
            free(copy);
            col->stats.templates_refused++;
            col_log_refusal(col, "a template was rejected because the template table or the "
                                 "exporter domain's quarter of it is full",
                            col->stats.templates_refused);
            return FV_ERR_FULL;
        }
        if (domain->template_count == domain->template_capacity) {
            size_t capacity = domain->template_capacity == 0 ? 8 : domain->template_capacity * 2;
            col_template *grown = realloc(domain->templates, capacity * sizeof *grown);
            if (grown == NULL) {
                free(copy);
                return FV_ERR_NOMEM;
            }
            domain->templates = grown;
            domain->template_capacity = capacity;
        }
        t = &domain->templates[domain->template_count++];
        memset(t, 0, sizeof *t);
        col->template_total++;
    } else {
        free(t->fields);
    }

    t->id = id;
    t->is_options = is_options;
    t->scope_count = scope_count;
    t->field_count = count;
    t->fields = copy;
    t->min_record_bytes = min_bytes;
    t->refreshed_s = now_s;
    col->stats.templates_added++;
    return FV_OK;
}

/* Remove the template at INDEX of DOMAIN, keeping the others in place. */
static void col_template_remove_at(col_collector *col, col_domain *domain, size_t index)
{
    free(domain->templates[index].fields);
    domain->templates[index] = domain->templates[domain->template_count - 1];
    domain->template_count--;
    /* The vacated last slot must not keep a copy of a moved or freed pointer. */
    domain->templates[domain->template_count].fields = NULL;
    col->template_total--;
}

bool col_template_withdraw(col_collector *col, col_domain *domain, uint16_t id)
{
    for (size_t i = 0; i < domain->template_count; i++) {
        if (domain->templates[i].id == id) {
            col_template_remove_at(col, domain, i);
            col->stats.templates_withdrawn++;
            return true;
        }
    }
    return false;
}

size_t col_template_withdraw_all(col_collector *col, col_domain *domain, bool is_options)
{
    size_t withdrawn = 0;
    size_t i = 0;
    while (i < domain->template_count) {
        if (domain->templates[i].is_options == is_options) {
            col_template_remove_at(col, domain, i);
            col->stats.templates_withdrawn++;
            withdrawn++;
        } else {
            i++;
        }
    }
    return withdrawn;
}

void col_collector_expire(col_collector *col, uint64_t now_s)
{
    if (now_s == col->last_expire_s)
        return;
    col->last_expire_s = now_s;
    col_domains_expire_idle(col, now_s);
    uint64_t timeout_s = col->config.template_timeout_s;
    for (size_t d = 0; d < col->domain_count; d++) {
        col_domain *domain = col->domains[d];
        size_t i = 0;
        while (i < domain->template_count) {
            const col_template *t = &domain->templates[i];
            if (now_s > t->refreshed_s && now_s - t->refreshed_s >= timeout_s) {
                col_template_remove_at(col, domain, i);
                col->stats.templates_expired++;
            } else {
                i++;
            }
        }
    }
}

void col_domain_sequence(col_collector *col, col_domain *domain, uint32_t seq, uint32_t advance)
{
    if (domain->seen_sequence && seq != domain->next_sequence) {
        uint32_t skipped = seq - domain->next_sequence;
        col->stats.sequence_gaps++;
        if (skipped < COL_SEQUENCE_FORWARD_MAX)
            col->stats.sequence_lost += skipped;
    }
    domain->seen_sequence = true;
    domain->next_sequence = seq + advance;
}
