/*
 * pol_internal.h: the parsed policy, shared by policy.c (accessors,
 * lookups, summary) and pol_parse.c (YAML to struct). Not installed and
 * not included outside policy/.
 */
#ifndef FV_POL_INTERNAL_H
#define FV_POL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Limits that keep a policy small enough for a linear scan per packet. */
#define POL_MAX_ZONES 64
#define POL_MAX_ZONE_NETWORKS 1024
#define POL_MAX_EXCLUDES 256

/* Limits of the monitoring groups and windows. */
#define POL_MAX_GROUPS 128
#define POL_MAX_GROUP_NETS 1024
#define POL_MAX_GROUP_MACS 1024
#define POL_MAX_GROUP_PATTERNS 256
#define POL_PATTERN_MAX 64          /* characters of a host-name pattern */
#define POL_NAME_MAX 64             /* group and window names, including the NUL */
#define POL_TEXT_MAX 256            /* legal basis, approver, purpose, including the NUL */
#define POL_MAX_WINDOWS 32
#define POL_MAX_TIME_ZONES 8
#define POL_TZ_NAME_MAX 64
#define POL_TZ_MAX_TRANSITIONS 2048
#define POL_TZ_MAX_TYPES 256

/* Retention slots: every fv_class plus the aggregates class, which is
 * fv_class 7 once common/fv_common.h declares FV_CLASS_AGGREGATE. Sizing
 * the arrays this way keeps the policy correct before and after that
 * change. */
#define POL_AGGREGATES_SLOT 7
#define POL_CLASS_SLOTS (FV_CLASS_COUNT > POL_AGGREGATES_SLOT + 1 ? FV_CLASS_COUNT : POL_AGGREGATES_SLOT + 1)

/* Items a role may read, as bits of pol_role_rule.items. The record
 * classes use their slot number. */
enum {
    POL_ITEM_AUDIT = POL_CLASS_SLOTS,
    POL_ITEM_RETENTION,
    POL_ITEM_POLICY,
    POL_ITEM_REPORTS,
    POL_ITEM_COUNTERS,
    POL_ITEM_COUNT,
};
#define POL_ROLE_COUNT 3

/* Limits of domains.never_record: suffixes after expanding categories,
 * and one suffix's text including the NUL (a DNS name has at most 253
 * characters). */
#define POL_MAX_NEVER_RECORD 1024
#define POL_DOMAIN_TEXT_MAX 254
#define POL_MAX_CATEGORIES 32

/* A never-record category compiled from policy/categories/NAME.txt:
 * its name and its NULL-terminated suffix list. */
typedef struct pol_category {
    const char *name;
    const char *const *suffixes;
} pol_category;

/* Every category, sorted by name (generated pol_categories.c). */
extern const pol_category pol_categories[];
extern const size_t pol_category_count;

/* Longest CIDR text: a full IPv6 address, "/", three digits, NUL. */
#define POL_CIDR_TEXT_MAX 64

/*
 * One network. The address and mask are kept as two 64-bit words in host
 * order (hi = first 8 address bytes) so a lookup is two AND-and-compare
 * steps. An IPv4 network uses only the upper 32 bits of hi.
 * Invariant: net_hi & ~mask_hi == 0 and net_lo & ~mask_lo == 0.
 */
typedef struct pol_net {
    uint64_t net_hi, net_lo;
    uint64_t mask_hi, mask_lo;
    uint8_t family;         /* 4 or 6 */
    uint8_t prefix_len;     /* 0..32 or 0..128 */
    uint16_t zone;          /* index into zone_names; 0 for exclusions */
} pol_net;

/*
 * A POSIX TZ rule such as "CET-1CEST,M3.5.0,M10.5.0/3" for times after the
 * last transition of a TZif file. Offsets are seconds east of UTC; only
 * the Mm.w.d date form is supported.
 */
typedef struct pol_tz_rule {
    bool valid;
    bool has_dst;
    int32_t std_offset, dst_offset;
    uint8_t start_month, start_week, start_day;     /* month 1..12, week 1..5, day 0 = Sunday */
    uint8_t end_month, end_week, end_day;
    int32_t start_time, end_time;   /* seconds after local midnight; may be negative */
} pol_tz_rule;

/* One time zone, read from its TZif file once at load. */
typedef struct pol_tz {
    char name[POL_TZ_NAME_MAX];
    size_t transition_count;
    int64_t transition_at[POL_TZ_MAX_TRANSITIONS];  /* UTC seconds, ascending */
    uint8_t transition_type[POL_TZ_MAX_TRANSITIONS];
    size_t type_count;
    int32_t type_offset[POL_TZ_MAX_TYPES];          /* seconds east of UTC */
    pol_tz_rule rule;
} pol_tz;

/* A weekly monitoring window. When end_min <= start_min the window is
 * overnight: it opens on a listed day at start_min and closes on the next
 * day at end_min. */
typedef struct pol_window {
    char name[POL_NAME_MAX];
    uint16_t tz;            /* index into time_zones */
    uint8_t days;           /* bit d set: open on weekday d, 0 = Sunday */
    uint16_t start_min, end_min;    /* minutes after local midnight, end up to 1440 */
} pol_window;

/* A monitoring group. Its subnets, MACs and patterns are the ranges
 * [first, first + count) of the shared arrays in pol_policy. */
typedef struct pol_group {
    char name[POL_NAME_MAX];
    pol_mode mode;
    char legal_basis[POL_TEXT_MAX];     /* "" if absent */
    char approver[POL_TEXT_MAX];
    char purpose[POL_TEXT_MAX];
    uint64_t valid_from_s;      /* first valid second, 0 = unbounded */
    uint64_t valid_until_s;     /* last valid second, 0 = unbounded */
    int window;                 /* index into windows, -1 if none */
    size_t net_first, net_count;
    size_t mac_first, mac_count;
    size_t pattern_first, pattern_count;
} pol_group;

/* How one zone's addresses are stored; prefix4 and prefix6 are used
 * only by POL_ADDR_TRUNCATE, for the networks of that family. */
typedef struct pol_address_rule {
    pol_addr_mode mode;
    uint8_t prefix4;            /* 0..32 */
    uint8_t prefix6;            /* 0..128 */
} pol_address_rule;
#define POL_EXTERNAL_RULE POL_MAX_ZONES

/*
 * The immutable policy. zone_nets and excludes keep file order for the
 * summary and the BPF filter. zone4 and zone6 are copies sorted by prefix
 * length, longest first, so the first match is the most specific.
 */
struct pol_policy {
    uint64_t version;

    size_t zone_count;
    char zone_names[POL_MAX_ZONES][FV_ZONE_NAME_MAX];

    size_t zone_net_count;
    pol_net zone_nets[POL_MAX_ZONE_NETWORKS];
    size_t zone4_count, zone6_count;
    pol_net zone4[POL_MAX_ZONE_NETWORKS];
    pol_net zone6[POL_MAX_ZONE_NETWORKS];

    size_t exclude_count;
    pol_net excludes[POL_MAX_EXCLUDES];
    size_t exclude4_count, exclude6_count;
    pol_net exclude4[POL_MAX_EXCLUDES];
    pol_net exclude6[POL_MAX_EXCLUDES];

    uint64_t retention_s[POL_CLASS_SLOTS];    /* slot POL_AGGREGATES_SLOT: aggregates */
    uint64_t rotation_s;
    uint64_t sweep_interval_s;
    pol_detect detect;

    pol_mode default_mode;
    size_t group_count;
    pol_group groups[POL_MAX_GROUPS];
    size_t group_net_count;
    pol_net group_nets[POL_MAX_GROUP_NETS];     /* zone field: the group index */
    size_t group_mac_count;
    uint8_t group_macs[POL_MAX_GROUP_MACS][6];
    size_t group_pattern_count;
    char group_patterns[POL_MAX_GROUP_PATTERNS][POL_PATTERN_MAX + 1];  /* lower case */

    size_t window_count;
    pol_window windows[POL_MAX_WINDOWS];
    size_t time_zone_count;
    pol_tz time_zones[POL_MAX_TIME_ZONES];

    bool collect[POL_CLASS_SLOTS];
    bool collect_audit;         /* always true: the audit log cannot be switched off */
    uint64_t audit_retention_s;
    uint32_t k_threshold;
    uint32_t role_items[POL_ROLE_COUNT];    /* bit POL_ITEM_* or class slot */

    uint8_t hash[32];           /* BLAKE2b-256 of the policy text */

    /* organization: the controller for reports; "" if absent. */
    char org_name[POL_TEXT_MAX];
    char org_contact[POL_TEXT_MAX];
    char org_dpo[POL_TEXT_MAX];

    /* domains: how kept names are written, and the lower-case suffixes
     * (explicit and from categories, no leading or trailing dot) whose
     * names are never recorded. */
    pol_domain_mode domain_mode;
    size_t never_record_count;
    char never_record[POL_MAX_NEVER_RECORD][POL_DOMAIN_TEXT_MAX];
    size_t never_record_category_count;
    char never_record_categories[POL_MAX_CATEGORIES][POL_NAME_MAX];

    /* escrow: the officers' crypto_box public keys, read from the files
     * the policy names when it is loaded. */
    bool escrow_enabled;
    size_t escrow_officer_count;
    uint8_t escrow_officer_keys[POL_ESCROW_OFFICERS_MAX][POL_OFFICER_KEY_BYTES];

    /* Address mode of zone z in address_rules[z], of addresses outside
     * every zone in address_rules[POL_EXTERNAL_RULE]. */
    pol_address_rule address_rules[POL_MAX_ZONES + 1];

    /* export: destinations of the capturing process (pol_parse.c, end). */
    pol_export export_cfg;

    /* retention.max_store_size in bytes, 0 for no quota (pol_parse.c, end). */
    uint64_t max_store_bytes;
};

/* Read the TZif file of zone NAME (already validated) into TZ. On failure
 * write the reason and fix into ERR and return FV_ERR_IO or
 * FV_ERR_PARSE. */
int pol_tz_load(const char *name, pol_tz *tz, char *err, size_t err_len);

/* Parse a POSIX TZ rule string into RULE. Returns FV_OK or
 * FV_ERR_INVALID for forms not supported. */
int pol_tz_rule_parse(const char *text, pol_tz_rule *rule);

/* Offset of TZ from UTC at UTC second T, in seconds east of UTC. */
int32_t pol_tz_offset(const pol_tz *tz, int64_t t);

/*
 * The first UTC second after T at which pol_tz_offset of TZ may change
 * (INT64_MAX: never), and the last one at or before T (INT64_MIN: none).
 * Between two such points the offset is constant. The points may include
 * transitions that keep the offset, such as a change of abbreviation.
 */
int64_t pol_tz_next_change(const pol_tz *tz, int64_t t);
int64_t pol_tz_last_change(const pol_tz *tz, int64_t t);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t pol_days_from_civil(int64_t year, unsigned month, unsigned day);

/* Match NAME (any case) against lower-case shell PATTERN with *, ? and
 * [...] ([!...] negates). Allocates nothing. */
bool pol_glob_match(const char *pattern, const char *name);

/* Index of item WHAT ("flows", ..., "audit", "retention", "counters") or
 * -1. */
int pol_item_from_name(const char *what);

/* Default readable items of each role. */
uint32_t pol_role_default_items(pol_role role);

/* Find the IPv4 address that the IPv6 address HI:LO carries (mapped,
 * compatible, NAT64 or 6to4; policy.c) as the high word of an IPv4
 * address in *V4_HI. Returns false for other addresses. */
bool pol_embedded_ipv4(uint64_t hi, uint64_t lo, uint64_t *v4_hi);

/* Append the groups, windows, classes, k threshold and roles to a
 * summary (pol_groups.c). T is a pol_text. */
struct pol_text;
void pol_summary_groups(const pol_policy *policy, struct pol_text *t);

/* Append the domain mode and the never-record suffixes to a summary
 * (pol_domains.c). */
void pol_summary_domains(const pol_policy *policy, struct pol_text *t);

/* Fill POLICY with the documented defaults (no zones, no exclusions). */
void pol_set_defaults(pol_policy *policy);

/* Build the sorted lookup arrays from zone_nets and excludes. */
void pol_build_lookup(pol_policy *policy);

/* Write NET as "address/prefix" into OUT. */
void pol_net_format(const pol_net *net, char out[POL_CIDR_TEXT_MAX]);

/* Write SECONDS in the largest unit that divides it exactly ("30d",
 * "90m", "45s") into OUT. */
#define POL_DURATION_TEXT_MAX 32
void pol_duration_format(uint64_t seconds, char out[POL_DURATION_TEXT_MAX]);

/* Class names as written in the policy, indexed by fv_class. */
extern const char *const pol_class_names[POL_CLASS_SLOTS];

/* An output buffer that remembers whether anything was cut off. */
typedef struct pol_text {
    char *buf;
    size_t cap;
    size_t len;
    bool full;
} pol_text;

void pol_text_add(pol_text *t, const char *fmt, ...) FV_PRINTF(2, 3);

#endif /* FV_POL_INTERNAL_H */
