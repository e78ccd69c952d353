/*
 * policy.h: the compliance policy, parsed from one YAML file.
 *
 * The policy names the internal networks (each with a zone label), the
 * subnets that are never monitored, the retention limit of each record
 * class, the pseudonymization key rotation period, the sweep interval and
 * the detector settings. docs/POLICY.md documents every key.
 *
 * Caveats
 * - A pol_policy is immutable after pol_load() and may be read from any
 *   number of threads.
 * - Rejection messages name the file, line and column, the offending
 *   value, and the fix. They never contain traffic data.
 * - Lookups take raw addresses and must be called only where raw
 *   addresses are allowed (the capturing process).
 */
#ifndef FV_POLICY_H
#define FV_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* A destination a detector must not alert on (detect.beacon.allow). */
typedef struct pol_allow_dest {
    char domain[256];           /* registrable domain or suffix, "" = any */
    uint8_t family;             /* 0 = no address given, else 4 or 6 */
    uint8_t addr[16];           /* network, network order */
    uint8_t prefix_len;
    uint16_t port;              /* 0 = any */
    uint8_t proto;              /* 0 = any, else IPPROTO_TCP/UDP */
} pol_allow_dest;

/* One zone-to-zone rule (detect.segmentation.rules). */
typedef struct pol_seg_rule {
    char from_zone[64];         /* zone label, "*" any, "external" outside every zone */
    char to_zone[64];           /* same */
    uint8_t proto;              /* 0 = any, else IPPROTO_TCP/UDP/ICMP */
    uint16_t port_lo, port_hi;  /* responder port range, 0..65535 = any */
    bool allow;                 /* true allow, false deny */
} pol_seg_rule;

/* One indicator file (detect.indicators.files). */
typedef struct pol_indicator_file {
    char path[512];             /* relative paths resolved against the policy's directory */
    uint8_t format;             /* 0 = plain list (one per line), 1 = CSV (indicator,type[,note]) */
    uint8_t severity;           /* fv_severity of a hit, default FV_SEV_HIGH */
} pol_indicator_file;

#define POL_ALLOW_MAX 64
#define POL_SEG_RULES_MAX 256
#define POL_INDICATOR_FILES_MAX 16

/* Detector settings. Durations in seconds. */
typedef struct pol_detect {
    uint32_t alert_window_s;            /* dedupe window per (detector, host, peer), default 3600 */
    uint32_t learning_period_s;         /* baselines observe before alerting, default 7 days */

    bool beacon_enabled;
    uint32_t beacon_min_connections;    /* default 12 */
    double beacon_max_jitter;           /* max MAD/median of intervals, default 0.3 */
    uint32_t beacon_min_interval_s;     /* default 10 */
    double beacon_min_score;            /* RITA-style combined score 0..1, default 0.8 */
    uint32_t beacon_min_duration_s;     /* pattern span needed, default 3600 */
    size_t beacon_allow_count;
    pol_allow_dest beacon_allow[POL_ALLOW_MAX];

    bool exfil_enabled;
    uint64_t exfil_min_bytes;           /* absolute floor, default 50 MB */
    double exfil_ratio;                 /* times the host's usual volume, default 20 */
    uint32_t exfil_min_history;         /* earlier flows needed for a baseline, default 10 */

    bool long_conn_enabled;
    uint32_t long_conn_min_duration_s;  /* absolute floor, default 4 hours */

    bool baseline_enabled;
    double baseline_mad_factor;         /* band = median +- factor * MAD, default 6 */
    uint64_t baseline_min_bytes;        /* ignore hours below this outbound volume, default 10 MB */

    bool scan_enabled;
    double scan_theta0;                 /* P(success) benign, default 0.8 */
    double scan_theta1;                 /* P(success) scanner, default 0.2 */
    double scan_false_positive;         /* alpha, default 0.01 */
    double scan_detection;              /* beta, default 0.99 */
    uint32_t scan_min_targets;          /* distinct first contacts before alerting, default 10 */

    bool dns_tunnel_enabled;
    uint32_t dns_tunnel_min_subdomains; /* unique names under one domain per window, default 100 */
    uint32_t dns_tunnel_window_s;       /* default 600 */
    double dns_tunnel_min_entropy;      /* bits per character of the labels, default 3.5 */
    uint32_t dns_tunnel_min_label_len;  /* mean label length that counts as long, default 30 */

    bool dga_enabled;
    uint32_t dga_min_nxdomain;          /* NXDOMAIN answers per window, default 20 */
    uint32_t dga_window_s;              /* default 600 */
    double dga_min_score;               /* character-statistics score 0..1, default 0.7 */

    /* Domain suffixes (lower case, no leading or trailing dot) whose names
     * the tunnel or DGA detector ignores; "example.com" covers
     * "a.example.com" but not "badexample.com". */
    size_t dns_tunnel_allow_count;
    char dns_tunnel_allow[POL_ALLOW_MAX][256];
    size_t dga_allow_count;
    char dga_allow[POL_ALLOW_MAX][256];

    bool rare_dest_enabled;             /* new destination for the host and the organization */

    bool off_hours_enabled;
    double off_hours_max_share;         /* an hour of week is usual when it held at least this share, default 0.01 */

    bool segmentation_enabled;          /* true when rules are present */
    bool segmentation_default_allow;    /* what no rule matches, default true */
    size_t seg_rule_count;
    pol_seg_rule seg_rules[POL_SEG_RULES_MAX];

    bool indicators_enabled;
    size_t indicator_file_count;
    pol_indicator_file indicator_files[POL_INDICATOR_FILES_MAX];
} pol_detect;

typedef struct pol_policy pol_policy;

/*
 * Parse and validate the policy at PATH. On success store a new policy in
 * *OUT. On failure return FV_ERR_IO (unreadable) or FV_ERR_PARSE
 * (malformed or invalid) and write "PATH:LINE:COL: reason; fix" into ERR.
 */
FV_NODISCARD int pol_load(const char *path, pol_policy **out, char *err, size_t err_len);

/* Parse a policy from memory; NAME stands for the file name in messages. */
FV_NODISCARD int pol_load_buffer(const char *name, const char *text, size_t len,
                                 pol_policy **out, char *err, size_t err_len);

/* Free POLICY. Accepts NULL and sets *policy to NULL. */
void pol_destroy(pol_policy **policy);

/*
 * Return the zone label of an address (FAMILY 4 or 6, ADDR in network
 * order; IPv4 in addr[0..3]), or NULL if it lies in no zone (external).
 * The most specific matching network wins. An IPv6 address in no IPv6
 * zone that carries an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64
 * 64:ff9b::/96 and 64:ff9b:1::/96, or 6to4 2002::/16) gets the zone of
 * that IPv4 address.
 * The returned string lives as long as the policy.
 */
const char *pol_zone_of(const pol_policy *policy, int family, const uint8_t addr[16]);

/*
 * For an IPv6 address ADDR that gets its zone from the IPv4 address it
 * carries (see pol_zone_of), return the bit offset of that IPv4 address
 * in ADDR: 96, or 16 for 6to4. Return -1 for any other address. A
 * truncating zone keeps no more of such an address than its IPv4 prefix.
 */
int pol_embedded_ipv4_offset(const pol_policy *policy, const uint8_t addr[16]);

/* Return true if the address lies in an excluded subnet, or carries an
 * IPv4 address that does (see pol_zone_of). */
bool pol_is_excluded(const pol_policy *policy, int family, const uint8_t addr[16]);

/*
 * Look up the zone and the exclusion of FAMILY/ADDR together, splitting
 * the address into words once, for the per-packet path. Returns
 * pol_zone_of and sets *EXCLUDED to pol_is_excluded of the address.
 */
const char *pol_zone_and_exclusion(const pol_policy *policy, int family, const uint8_t addr[16],
                                   bool *excluded);

/* Retention limit of CLS in seconds. */
uint64_t pol_retention_s(const pol_policy *policy, fv_class cls);

/* Key rotation period in seconds (default 86400). */
uint64_t pol_rotation_s(const pol_policy *policy);

/* Sweep interval in seconds (default 3600). */
uint64_t pol_sweep_interval_s(const pol_policy *policy);

/* Detector settings. */
const pol_detect *pol_detect_config(const pol_policy *policy);

/*
 * Write a BPF expression that drops every excluded subnet, such as
 * "not (net 10.9.0.0/16 or net fd00:9::/32)", into OUT. Writes an empty
 * string when nothing is excluded. Return FV_OK or FV_ERR_FULL if OUT is
 * too small.
 */
int pol_bpf_exclusions(const pol_policy *policy, char *out, size_t out_len);

/* How the addresses of a zone are stored. Numbered for the policy
 * struct only, never stored in records. */
typedef enum pol_addr_mode {
    POL_ADDR_PSEUDONYMIZE = 0,      /* 16-byte keyed pseudonym token (zone default) */
    POL_ADDR_PREFIX_PRESERVING = 1, /* valid address, keyed, subnet structure kept */
    POL_ADDR_TRUNCATE = 2,          /* network prefix only, host bits zero */
    POL_ADDR_KEEP = 3,              /* the address itself (external default) */
} pol_addr_mode;

/* Return "pseudonymize", "prefix-preserving", "truncate" or "keep". */
const char *pol_addr_mode_name(pol_addr_mode mode);

/*
 * Look up the address mode of ZONE_NAME (a zone label as returned by
 * pol_zone_of, or NULL or "external" for addresses outside every zone)
 * for FAMILY (4 or 6) into *MODE, and for POL_ADDR_TRUNCATE the prefix
 * length to keep into *PREFIX_LEN (0 otherwise). A label that names no
 * zone of the policy, such as the link-local label, gets
 * POL_ADDR_PSEUDONYMIZE. Returns FV_OK, or FV_ERR_INVALID for another
 * FAMILY or a NULL output pointer.
 */
int pol_zone_address_mode(const pol_policy *policy, const char *zone_name, int family,
                          pol_addr_mode *mode, unsigned *prefix_len);

/* Number of zones and the name of zone I, for summaries. */
size_t pol_zone_count(const pol_policy *policy);
const char *pol_zone_name(const pol_policy *policy, size_t i);

/* Write a plain-language summary of what is collected, about whom and for
 * how long, into OUT (for `flowveil policy check`). Returns FV_OK or
 * FV_ERR_FULL. */
int pol_summary(const pol_policy *policy, char *out, size_t out_len);

/* ---------------------------------------------------------------------- */
/* Monitoring groups, windows, data classes, functions and roles          */
/* ---------------------------------------------------------------------- */

/* How the traffic of a host may be processed. Stored in audit entries:
 * the numbers never change. */
typedef enum pol_mode {
    POL_MONITOR = 0,    /* full metadata records */
    POL_AGGREGATE = 1,  /* counted in aggregates only, no per-host records */
    POL_EXCLUDE = 2,    /* dropped before any processing, not even counted */
} pol_mode;

/* Return "monitor", "aggregate" or "exclude". */
const char *pol_mode_name(pol_mode mode);

/* What is known about one internal host; any member may be absent. */
typedef struct pol_host {
    int family;                 /* 4 or 6; 0 if no address */
    const uint8_t *addr;        /* 16 bytes (IPv4 in addr[0..3]) or NULL */
    const uint8_t *mac;         /* 6 bytes or NULL */
    const char *hostname;       /* DHCP host name or NULL */
} pol_host;

/* The effective rule for one host at one time. */
typedef struct pol_decision {
    pol_mode mode;              /* after validity and window rules */
    const char *group;          /* matching group's name, NULL if the default applied */
    bool expired;               /* the group's validity has ended: mode is POL_EXCLUDE */
    bool outside_window;        /* a window applies and is closed: mode is POL_AGGREGATE */
} pol_decision;

/*
 * Decide how HOST may be processed at NOW_S (seconds since 1970 UTC).
 * The first group in file order that matches by subnet, MAC or host-name
 * pattern decides; a host in no group gets monitoring.default_mode
 * (default monitor). A group whose validity has ended gives POL_EXCLUDE;
 * outside the group's monitoring window a monitor group gives
 * POL_AGGREGATE. Fast enough to call per packet; allocates nothing.
 */
pol_decision pol_decide(const pol_policy *policy, const pol_host *host, uint64_t now_s);

/*
 * pol_decide, and set [*FROM_S, *UNTIL_S] to a span of seconds around
 * NOW_S over which pol_decide for the same host and policy returns the
 * same decision (*UNTIL_S = UINT64_MAX: for ever). The span may be
 * shorter than the true one. It ends at the matching group's validity
 * bounds. For a group with a window, it also ends at the window's
 * openings and closings around NOW_S and at the time zone's offset
 * changes around NOW_S.
 */
pol_decision pol_decide_span(const pol_policy *policy, const pol_host *host, uint64_t now_s,
                             uint64_t *from_s, uint64_t *until_s);

/* True if the policy has any group matched by host-name pattern (then
 * the capturing process must learn host names from DHCP). */
bool pol_has_hostname_groups(const pol_policy *policy);

/*
 * Like pol_bpf_exclusions, but also with the subnets of groups whose mode
 * is exclude at NOW_S and, when LINK_HAS_MAC, their MAC addresses as
 * "ether host" terms. Host-name groups cannot be compiled into BPF; the
 * capturing process enforces them itself.
 */
int pol_bpf_exclusions_at(const pol_policy *policy, bool link_has_mac, uint64_t now_s, char *out,
                          size_t out_len);

/* Data classes and monitoring functions. Classes beyond fv_class: */
typedef enum pol_extra_class {
    POL_CLASS_AGGREGATES = 100,
    POL_CLASS_AUDIT = 101,
} pol_extra_class;

/* True if collection of CLS (an fv_class, or POL_CLASS_AGGREGATES /
 * POL_CLASS_AUDIT) is switched on (collect.<class>, default true). */
bool pol_class_enabled(const pol_policy *policy, int cls);

/* Retention of aggregates and of the audit log in seconds (retention.
 * aggregates default 400d, retention.audit default 3650d). */
uint64_t pol_aggregates_retention_s(const pol_policy *policy);
uint64_t pol_audit_retention_s(const pol_policy *policy);

/* Smallest number of distinct hosts a reported group must have
 * (reporting.k_threshold, default 5). */
uint32_t pol_k_threshold(const pol_policy *policy);

/* Roles. What a role may read: */
typedef enum pol_role {
    POL_ROLE_ANALYST = 0,
    POL_ROLE_COMPLIANCE = 1,
    POL_ROLE_ADMIN = 2,
} pol_role;

/* Parse "analyst", "compliance" or "admin". Returns FV_OK or FV_ERR_INVALID. */
int pol_role_from_name(const char *name, pol_role *out);
const char *pol_role_name(pol_role role);

/* True if ROLE may read WHAT: a class name ("flows", "dns", ...,
 * "aggregates", "audit") or "retention", "policy", "reports",
 * "counters". From the policy's roles map, defaults documented in
 * docs/POLICY.md. */
bool pol_role_may_read(const pol_policy *policy, pol_role role, const char *what);

/* BLAKE2b-256 of the policy file's bytes, identifying the version. */
void pol_hash(const pol_policy *policy, uint8_t out[32]);

/* Write a one-paragraph, plain summary of what changed from OLD to NEW
 * (zones, groups and their modes, classes, retention, detectors) into
 * OUT, or "no change". Returns FV_OK or FV_ERR_FULL. */
int pol_diff_summary(const pol_policy *old_policy, const pol_policy *new_policy, char *out,
                     size_t out_len);

/* Groups for reports: count and the facts of group I (strings live as
 * long as the policy). */
typedef struct pol_group_info {
    const char *name;
    pol_mode mode;
    const char *legal_basis;    /* e.g. "legitimate interest", "works agreement", "consent" */
    const char *approver;
    uint64_t valid_from_s, valid_until_s;   /* 0 = unbounded */
    const char *window;         /* window name or NULL */
    const char *purpose;        /* free text or NULL */
} pol_group_info;

size_t pol_group_count(const pol_policy *policy);
void pol_group_get(const pol_policy *policy, size_t i, pol_group_info *out);

/* The controller from the policy's organization map, for the record of
 * processing. FIELD is "name", "contact" or "dpo" (data protection
 * officer). Returns the text (lives as long as the policy), or NULL if
 * the policy does not set it or FIELD is none of these. */
const char *pol_organization(const pol_policy *policy, const char *field);

/* ---------------------------------------------------------------------- */
/* Domain names                                                           */
/* ---------------------------------------------------------------------- */

/* How DNS names, TLS server names and HTTP hosts are written into
 * records (domains.mode). The numbers never change. */
typedef enum pol_domain_mode {
    POL_DOMAINS_KEEP = 0,           /* as seen (the default) */
    POL_DOMAINS_REGISTRABLE = 1,    /* cut to the registrable domain: www.example.co.uk -> example.co.uk */
    POL_DOMAINS_PSEUDONYMIZE = 2,   /* a keyed "dom-" token of the whole name */
} pol_domain_mode;

/* The policy's domains.mode (POL_DOMAINS_KEEP if absent). */
pol_domain_mode pol_domain_mode_get(const pol_policy *policy);

/* Return "keep", "registrable" or "pseudonymize". */
const char *pol_domain_mode_name(pol_domain_mode mode);

/*
 * True if NAME lies under a suffix of domains.never_record (explicit or
 * from a category): it equals the suffix or ends with "." and the
 * suffix, compared without regard to case. One trailing dot of NAME is
 * ignored. NAME is a bare domain name without a port. Allocates nothing.
 */
bool pol_domain_never_record(const pol_policy *policy, const char *name);

/* Number of never-record suffixes (after expanding categories) and
 * suffix I, lower case, for summaries. */
size_t pol_never_record_count(const pol_policy *policy);
const char *pol_never_record_suffix(const pol_policy *policy, size_t i);

/* ---------------------------------------------------------------------- */
/* Key escrow                                                              */
/* ---------------------------------------------------------------------- */

/* Officers an escrow entry is sealed to: one, or two for dual control. */
#define POL_ESCROW_OFFICERS_MAX 2
/* Length of an officer's public key (crypto_box_PUBLICKEYBYTES). */
#define POL_OFFICER_KEY_BYTES 32

/* True if escrow.enabled is set (then at least one officer key is loaded). */
bool pol_escrow_enabled(const pol_policy *policy);

/* Number of officer keys in escrow.officers: 0, 1 or 2. */
size_t pol_escrow_officer_count(const pol_policy *policy);

/* Public key of officer I (POL_OFFICER_KEY_BYTES bytes, lives as long as
 * the policy), or NULL if I is out of range. */
const uint8_t *pol_escrow_officer_key(const pol_policy *policy, size_t i);

/*
 * Parse the text of an officer public key file (written by `flowveil keys
 * officer-keygen`): the line "flowveil-officer-public-key-v1 " followed by
 * 64 lowercase or uppercase hex digits and an optional newline, nothing
 * else. Returns FV_OK with the key in OUT, or FV_ERR_PARSE.
 */
int pol_officer_public_key_parse(const char *text, size_t len,
                                 uint8_t out[POL_OFFICER_KEY_BYTES]);

/* The first word of an officer public key file. */
#define POL_OFFICER_PUBLIC_KEY_TAG "flowveil-officer-public-key-v1"

/* ---------------------------------------------------------------------- */
/* Export destinations                                                     */
/* ---------------------------------------------------------------------- */

/* The policy's export section: where the capturing process sends each
 * record as it is stored (docs/POLICY.md, docs/SCALING.md). Only records
 * that the rest of the policy lets into the store can be sent. */
#define POL_EXPORT_DESTINATIONS_MAX 8
#define POL_EXPORT_PROPERTIES_MAX 16

typedef enum pol_export_kind {
    POL_EXPORT_IPFIX = 1,
    POL_EXPORT_KAFKA = 2,
} pol_export_kind;

/* One destination. Zero means "the exporter's default" for the numbers
 * and "" for the texts. */
typedef struct pol_export_dest {
    char name[64];                      /* unique, "destination-N" when not given */
    pol_export_kind kind;
    char target[512];                   /* ipfix HOST:PORT, or Kafka bootstrap servers */
    bool tcp;                           /* ipfix transport: tcp (true) or udp */
    uint32_t classes;                   /* bit (1u << fv_class); 0 = all the protocol carries */
    uint32_t template_refresh_s;        /* ipfix over UDP */
    uint32_t template_refresh_messages; /* ipfix over UDP, 0 = by time only */
    uint32_t observation_domain;
    char topic_prefix[128];             /* kafka */
    uint32_t queue_max;                 /* kafka, messages */
    size_t property_count;              /* kafka: librdkafka properties "name=value" */
    char properties[POL_EXPORT_PROPERTIES_MAX][256];
} pol_export_dest;

typedef struct pol_export {
    size_t count;
    pol_export_dest dest[POL_EXPORT_DESTINATIONS_MAX];
} pol_export;

/* The export destinations (count 0 when the policy has no export key). */
const pol_export *pol_export_config(const pol_policy *policy);

/*
 * Return true if a policy or `export --kafka-property` may set the
 * librdkafka property NAME. The allow-list covers security, SASL, TLS
 * file paths and delivery tuning; everything else is rejected, above
 * all properties that load code or run commands (plugin.library.paths,
 * ssl.engine.location, ssl.providers, sasl.kerberos.kinit.cmd), because
 * they would run inside the process that holds the pseudonymization key.
 */
bool pol_kafka_property_allowed(const char *name);

/* retention.max_store_size: the store's size quota in bytes, 0 when the
 * policy sets none. Limits: POL_MAX_STORE_SIZE_MIN .. _MAX. */
uint64_t pol_max_store_bytes(const pol_policy *policy);
#define POL_MAX_STORE_SIZE_MIN ((uint64_t)1 << 20)
#define POL_MAX_STORE_SIZE_MAX ((uint64_t)1 << 50)

/*
 * Return true if the network ADDR/PREFIX (FAMILY 4 or 6, network order)
 * overlaps a zone: it lies inside a zone network or contains one, as
 * 0.0.0.0/0 does. A single address is PREFIX 32 or 128.
 */
bool pol_network_overlaps_zone(const pol_policy *policy, int family, const uint8_t addr[16],
                               unsigned prefix);

/*
 * Call FN(CTX, ZONE, ZONE_PREFIX, CONTAINS) for every zone network of
 * FAMILY that overlaps the network ADDR/PREFIX. ZONE is the name of its
 * zone and ZONE_PREFIX its prefix length. CONTAINS is true when it
 * contains the whole of ADDR/PREFIX and false when it lies inside it.
 * Networks come longest prefix first, and FN returns false to stop.
 */
typedef bool (*pol_zone_net_fn)(void *ctx, const char *zone, unsigned zone_prefix,
                                bool contains);
void pol_network_zones_each(const pol_policy *policy, int family, const uint8_t addr[16],
                            unsigned prefix, pol_zone_net_fn fn, void *ctx);

#endif /* FV_POLICY_H */
