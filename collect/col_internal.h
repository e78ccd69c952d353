/*
 * col_internal.h: shared between the collector's files; not public.
 *
 * col_domain.c keeps the per-exporter state (templates, sequence
 * numbers, sampling); col_decode.c reads the datagrams.
 */
#ifndef FV_COL_INTERNAL_H
#define FV_COL_INTERNAL_H

#include "collect.h"

/* Header versions as they appear in the first two bytes. */
#define COL_VERSION_V5 5
#define COL_VERSION_V9 9
#define COL_VERSION_IPFIX 10

/* Upper bound of col_config.max_template_fields: a template is read
 * into a stack array of this many fields before it is stored. */
#define COL_MAX_FIELDS_ON_STACK 1024u

/* One field specifier of a template. LENGTH 65535 marks an IPFIX
 * variable-length field. ENTERPRISE is 0 for IANA elements. */
typedef struct col_field {
    uint16_t id;
    uint16_t length;
    uint32_t enterprise;
} col_field;

/*
 * A template as the exporter defined it. scope_count of the fields are
 * scope fields (options templates only). min_record_bytes counts a
 * variable-length field as its one-byte length prefix, so a data set
 * whose remaining bytes are fewer than that is padding.
 */
typedef struct col_template {
    uint16_t id;
    bool is_options;
    uint16_t scope_count;
    uint16_t field_count;
    col_field *fields;
    uint32_t min_record_bytes;
    uint64_t refreshed_s;
} col_template;

/*
 * State of one (exporter address, version, observation domain or source
 * id). Sequence numbers count flows (v5), datagrams (v9) or data
 * records (IPFIX); next_sequence is valid once seen_sequence is set.
 * sampling_interval and system_init_ms are 0 until an options record
 * (or a v5 header) gives them.
 */
typedef struct col_domain {
    cap_ip exporter;
    uint8_t version;
    uint32_t domain_id;
    bool seen_sequence;
    uint32_t next_sequence;
    uint32_t sampling_interval;
    uint64_t system_init_ms;
    uint64_t last_seen_s;       /* arrival of its last datagram */
    col_template *templates;
    size_t template_count, template_capacity;
} col_domain;

/* Log a refusal WHAT with the running TOTAL, at most once a minute. */
void col_log_refusal(col_collector *col, const char *what, uint64_t total);

struct col_collector {
    col_config config;
    col_flow_fn on_flow;
    void *ctx;
    col_stats stats;
    col_domain **domains;
    size_t domain_count, domain_capacity;
    size_t template_total;
    uint64_t last_expire_s;     /* templates are checked for expiry once a second */
    uint64_t refusal_logged_s;  /* last refusal warning, 0 = none yet */
    uint64_t arrival_s;         /* when the datagram being decoded arrived */
    bool future_logged;         /* the records_out_of_range warning was logged */
    bool ahead_logged;          /* the records_future warning was logged */
};

/* Find the domain, creating it if there is room. Returns NULL (and
 * counts domains_refused) when the table is full or memory ran out. */
col_domain *col_domain_get(col_collector *col, const cap_ip *exporter, uint8_t version,
                           uint32_t domain_id);

/* Find template ID of DOMAIN, NULL if unknown. */
col_template *col_template_find(col_domain *domain, uint16_t id);

/*
 * Add or replace template ID of DOMAIN with COUNT fields (copied), the
 * first SCOPE_COUNT of them scope fields. Returns FV_OK, or FV_ERR_FULL
 * (counted in templates_refused) over the limits, or FV_ERR_NOMEM.
 */
int col_template_put(col_collector *col, col_domain *domain, uint16_t id, bool is_options,
                     uint16_t scope_count, const col_field *fields, uint16_t count,
                     uint64_t now_s);

/* Withdraw template ID of DOMAIN; returns true if it existed. */
bool col_template_withdraw(col_collector *col, col_domain *domain, uint16_t id);

/* Withdraw every template of DOMAIN that is (IS_OPTIONS) or is not an
 * options template. Returns the number withdrawn. */
size_t col_template_withdraw_all(col_collector *col, col_domain *domain, bool is_options);

/*
 * Check the sequence number SEQ of a datagram of DOMAIN against the
 * expected one and count a gap; then expect SEQ + ADVANCE next.
 */
void col_domain_sequence(col_collector *col, col_domain *domain, uint32_t seq, uint32_t advance);

#endif /* FV_COL_INTERNAL_H */
