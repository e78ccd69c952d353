/*
 * policy.c: accessors, address lookups, the BPF exclusion filter and the
 * plain-language summary of a parsed policy. Parsing lives in
 * pol_parse.c.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pol_internal.h"

const char *const pol_class_names[POL_CLASS_SLOTS] = {
    [POL_AGGREGATES_SLOT] = "aggregates",
    [FV_CLASS_FLOW] = "flows",
    [FV_CLASS_DNS] = "dns",
    [FV_CLASS_TLS] = "tls",
    [FV_CLASS_HTTP] = "http",
    [FV_CLASS_ALERT] = "alerts",
    [FV_CLASS_DHCP] = "dhcp",
    [FV_CLASS_SSH] = "ssh",
};

void pol_set_defaults(pol_policy *policy)
{
    policy->retention_s[FV_CLASS_FLOW] = 30 * 86400u;
    policy->retention_s[FV_CLASS_DNS] = 7 * 86400u;
    policy->retention_s[FV_CLASS_TLS] = 7 * 86400u;
    policy->retention_s[FV_CLASS_HTTP] = 7 * 86400u;
    policy->retention_s[FV_CLASS_ALERT] = 90 * 86400u;
    policy->retention_s[FV_CLASS_DHCP] = 7 * 86400u;
    policy->retention_s[FV_CLASS_SSH] = 7 * 86400u;
    policy->rotation_s = 86400;
    policy->sweep_interval_s = 3600;
    policy->retention_s[POL_AGGREGATES_SLOT] = 400 * 86400u;
    policy->audit_retention_s = 3650 * 86400u;
    policy->default_mode = POL_MONITOR;
    for (size_t c = 0; c < POL_CLASS_SLOTS; c++)
        policy->collect[c] = true;
    policy->collect_audit = true;
    policy->k_threshold = 5;
    for (int r = 0; r < POL_ROLE_COUNT; r++)
        policy->role_items[r] = pol_role_default_items((pol_role)r);

    policy->detect.beacon_enabled = true;
    policy->detect.beacon_min_connections = 12;
    policy->detect.beacon_max_jitter = 0.3;
    policy->detect.beacon_min_interval_s = 10;
    policy->detect.exfil_enabled = true;
    policy->detect.exfil_min_bytes = 50u * 1000u * 1000u;
    policy->detect.exfil_ratio = 20.0;
    policy->detect.exfil_min_history = 10;
    policy->detect.alert_window_s = 3600;
    policy->detect.learning_period_s = 7u * 86400u;
    policy->detect.beacon_min_score = 0.8;
    policy->detect.beacon_min_duration_s = 3600;
    policy->detect.long_conn_enabled = true;
    policy->detect.long_conn_min_duration_s = 4u * 3600u;
    policy->detect.baseline_enabled = true;
    policy->detect.baseline_mad_factor = 6.0;
    policy->detect.baseline_min_bytes = 10u * 1000u * 1000u;
    policy->detect.scan_enabled = true;
    policy->detect.scan_theta0 = 0.8;
    policy->detect.scan_theta1 = 0.2;
    policy->detect.scan_false_positive = 0.01;
    policy->detect.scan_detection = 0.99;
    policy->detect.scan_min_targets = 10;
    policy->detect.dns_tunnel_enabled = true;
    policy->detect.dns_tunnel_min_subdomains = 100;
    policy->detect.dns_tunnel_window_s = 600;
    policy->detect.dns_tunnel_min_entropy = 3.5;
    policy->detect.dns_tunnel_min_label_len = 30;
    policy->detect.dga_enabled = true;
    policy->detect.dga_min_nxdomain = 20;
    policy->detect.dga_window_s = 600;
    policy->detect.dga_min_score = 0.7;
    /* Every new destination of a real office is noisy: opt in. */
    policy->detect.rare_dest_enabled = false;
    policy->detect.off_hours_enabled = true;
    policy->detect.off_hours_max_share = 0.01;
    policy->detect.segmentation_default_allow = true;

    /* Zones pseudonymize by default (POL_ADDR_PSEUDONYMIZE is 0);
     * addresses outside every zone are kept. */
    policy->address_rules[POL_EXTERNAL_RULE].mode = POL_ADDR_KEEP;
}

/* qsort order: longest prefix first; ties keep no particular order
 * because equal networks in two zones are rejected by the parser. */
static int pol_net_cmp_prefix_desc(const void *a, const void *b)
{
    const pol_net *na = a;
    const pol_net *nb = b;
    return (int)nb->prefix_len - (int)na->prefix_len;
}

void pol_build_lookup(pol_policy *policy)
{
    policy->zone4_count = 0;
    policy->zone6_count = 0;
    for (size_t i = 0; i < policy->zone_net_count; i++) {
        const pol_net *n = &policy->zone_nets[i];
        if (n->family == 4)
            policy->zone4[policy->zone4_count++] = *n;
        else
            policy->zone6[policy->zone6_count++] = *n;
    }
    qsort(policy->zone4, policy->zone4_count, sizeof policy->zone4[0], pol_net_cmp_prefix_desc);
    qsort(policy->zone6, policy->zone6_count, sizeof policy->zone6[0], pol_net_cmp_prefix_desc);

    policy->exclude4_count = 0;
    policy->exclude6_count = 0;
    for (size_t i = 0; i < policy->exclude_count; i++) {
        const pol_net *n = &policy->excludes[i];
        if (n->family == 4)
            policy->exclude4[policy->exclude4_count++] = *n;
        else
            policy->exclude6[policy->exclude6_count++] = *n;
    }
}

void pol_destroy(pol_policy **policy)
{
    if (policy == NULL || *policy == NULL)
        return;
    free(*policy);
    *policy = NULL;
}

/* ---------------------------------------------------------------------- */
/* Lookups (per packet: no allocation, no locking)                         */
/* ---------------------------------------------------------------------- */

static uint64_t pol_load_be64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

/* Split ADDR into the two words a pol_net compares against. Returns false
 * for a family other than 4 or 6. */
static bool pol_addr_words(int family, const uint8_t addr[16], uint64_t *hi, uint64_t *lo)
{
    if (family == 4) {
        *hi = ((uint64_t)addr[0] << 56) | ((uint64_t)addr[1] << 48) |
              ((uint64_t)addr[2] << 40) | ((uint64_t)addr[3] << 32);
        *lo = 0;
        return true;
    }
    if (family == 6) {
        *hi = pol_load_be64(addr);
        *lo = pol_load_be64(addr + 8);
        return true;
    }
    return false;
}

/* Return the index of the first network in NETS that contains the
 * address, or -1. */
static long pol_nets_find(const pol_net *nets, size_t count, uint64_t hi, uint64_t lo)
{
    for (size_t i = 0; i < count; i++) {
        if ((hi & nets[i].mask_hi) == nets[i].net_hi && (lo & nets[i].mask_lo) == nets[i].net_lo)
            return (long)i;
    }
    return -1;
}

/*
 * Find the IPv4 address that the IPv6 address HI:LO carries, as the high
 * word of an IPv4 address in pol_addr_words form, in *V4_HI. The forms
 * are IPv4-mapped (::ffff:0:0/96, RFC 4291), IPv4-compatible (::/96 but
 * :: and ::1), the NAT64 well-known prefix (64:ff9b::/96, RFC 6052), the
 * first /96 of the local-use NAT64 prefix (64:ff9b:1::/96, RFC 8215), 6to4
 * (2002::/16, RFC 3056, the address in bits 16 to 47) and ISATAP
 * interface ids (::0:5efe:0:0/96 or ::200:5efe:0:0/96 under any /64,
 * RFC 5214). Zones and
 * exclusions of IPv4 networks apply to these forms too, so that a host
 * reached through one of them is pseudonymized or excluded like the
 * host itself. Returns false for other addresses.
 */
bool pol_embedded_ipv4(uint64_t hi, uint64_t lo, uint64_t *v4_hi)
{
    uint64_t v4 = lo & UINT64_C(0xffffffff);
    if ((hi == 0 && (lo >> 32) == UINT64_C(0xffff)) ||
        (hi == 0 && (lo >> 32) == 0 && v4 > 1) ||
        (hi == UINT64_C(0x0064ff9b00000000) && (lo >> 32) == 0) ||
        (hi == UINT64_C(0x0064ff9b00010000) && (lo >> 32) == 0)) {
        *v4_hi = v4 << 32;
        return true;
    }
    /* 6to4 before ISATAP: a 6to4 site's prefix names the site's IPv4
     * address, which pol_embedded_ipv4_offset reports for every 2002::
     * address, even when the interface id is an ISATAP one. */
    if ((hi >> 48) == UINT64_C(0x2002)) {
        *v4_hi = ((hi >> 16) & UINT64_C(0xffffffff)) << 32;
        return true;
    }
    if (((lo >> 32) & ~UINT64_C(0x02000000)) == UINT64_C(0x00005efe)) {
        *v4_hi = v4 << 32;
        return true;
    }
    return false;
}

int pol_embedded_ipv4_offset(const pol_policy *policy, const uint8_t addr[16])
{
    uint64_t hi, lo, v4_hi;
    if (policy == NULL || addr == NULL || !pol_addr_words(6, addr, &hi, &lo) ||
        pol_nets_find(policy->zone6, policy->zone6_count, hi, lo) >= 0 ||
        !pol_embedded_ipv4(hi, lo, &v4_hi) ||
        pol_nets_find(policy->zone4, policy->zone4_count, v4_hi, 0) < 0)
        return -1;
    return (hi >> 48) == UINT64_C(0x2002) ? 16 : 96;
}

/* Return the zone index of the address HI:LO of FAMILY, or -1 for none.
 * An IPv6 address in no IPv6 zone that carries an IPv4 address gets the
 * zone of that IPv4 address. */
static long pol_zone_index(const pol_policy *policy, int family, uint64_t hi, uint64_t lo)
{
    if (family == 4) {
        long i = pol_nets_find(policy->zone4, policy->zone4_count, hi, lo);
        return i < 0 ? -1 : (long)policy->zone4[i].zone;
    }
    long i = pol_nets_find(policy->zone6, policy->zone6_count, hi, lo);
    if (i >= 0)
        return (long)policy->zone6[i].zone;
    uint64_t v4_hi;
    if (policy->zone4_count == 0 || !pol_embedded_ipv4(hi, lo, &v4_hi))
        return -1;
    i = pol_nets_find(policy->zone4, policy->zone4_count, v4_hi, 0);
    return i < 0 ? -1 : (long)policy->zone4[i].zone;
}

/* True if the address HI:LO of FAMILY is excluded. An IPv6 address that
 * carries an excluded IPv4 address is excluded too. */
static bool pol_excluded_words(const pol_policy *policy, int family, uint64_t hi, uint64_t lo)
{
    if (family == 4)
        return pol_nets_find(policy->exclude4, policy->exclude4_count, hi, lo) >= 0;
    if (pol_nets_find(policy->exclude6, policy->exclude6_count, hi, lo) >= 0)
        return true;
    uint64_t v4_hi;
    return policy->exclude4_count > 0 && pol_embedded_ipv4(hi, lo, &v4_hi) &&
           pol_nets_find(policy->exclude4, policy->exclude4_count, v4_hi, 0) >= 0;
}

const char *pol_zone_of(const pol_policy *policy, int family, const uint8_t addr[16])
{
    uint64_t hi, lo;
    if (policy == NULL || addr == NULL || !pol_addr_words(family, addr, &hi, &lo))
        return NULL;
    if (family == 4) {
        long i = pol_nets_find(policy->zone4, policy->zone4_count, hi, lo);
        return i < 0 ? NULL : policy->zone_names[policy->zone4[i].zone];
    }
    long z = pol_zone_index(policy, family, hi, lo);
    return z < 0 ? NULL : policy->zone_names[z];
}

void pol_network_zones_each(const pol_policy *policy, int family, const uint8_t addr[16],
                            unsigned prefix, pol_zone_net_fn fn, void *ctx)
{
    uint64_t hi, lo;
    unsigned bits = family == 4 ? 32u : 128u;
    if (policy == NULL || addr == NULL || fn == NULL || prefix > bits ||
        !pol_addr_words(family, addr, &hi, &lo))
        return;

    const pol_net *nets = family == 4 ? policy->zone4 : policy->zone6;
    size_t count = family == 4 ? policy->zone4_count : policy->zone6_count;
    for (size_t i = 0; i < count; i++) {
        /* Two networks overlap when they agree on the shorter prefix. */
        unsigned common = prefix < nets[i].prefix_len ? prefix : nets[i].prefix_len;
        uint64_t mask_hi = UINT64_MAX, mask_lo = UINT64_MAX;
        if (common == 0)
            mask_hi = 0;
        else if (common < 64)
            mask_hi = UINT64_MAX << (64 - common);
        if (common <= 64)
            mask_lo = 0;
        else if (common < 128)
            mask_lo = UINT64_MAX << (128 - common);
        if ((hi & mask_hi) != (nets[i].net_hi & mask_hi) ||
            (lo & mask_lo) != (nets[i].net_lo & mask_lo))
            continue;
        if (!fn(ctx, policy->zone_names[nets[i].zone], nets[i].prefix_len,
                nets[i].prefix_len <= prefix))
            return;
    }
}

/* pol_zone_net_fn of pol_network_overlaps_zone: note the first overlap. */
static bool note_overlap(void *ctx, const char *zone, unsigned zone_prefix, bool contains)
{
    (void)zone;
    (void)zone_prefix;
    (void)contains;
    *(bool *)ctx = true;
    return false;
}

bool pol_network_overlaps_zone(const pol_policy *policy, int family, const uint8_t addr[16],
                               unsigned prefix)
{
    bool overlaps = false;
    pol_network_zones_each(policy, family, addr, prefix, note_overlap, &overlaps);
    return overlaps;
}

bool pol_is_excluded(const pol_policy *policy, int family, const uint8_t addr[16])
{
    uint64_t hi, lo;
    if (policy == NULL || addr == NULL || !pol_addr_words(family, addr, &hi, &lo))
        return false;
    return pol_excluded_words(policy, family, hi, lo);
}

const char *pol_zone_and_exclusion(const pol_policy *policy, int family, const uint8_t addr[16],
                                   bool *excluded)
{
    uint64_t hi, lo;
    *excluded = false;
    if (policy == NULL || addr == NULL || !pol_addr_words(family, addr, &hi, &lo))
        return NULL;
    /* The per-packet path: IPv4 looks up its two tables directly. */
    if (family == 4) {
        *excluded = pol_nets_find(policy->exclude4, policy->exclude4_count, hi, lo) >= 0;
        long i = pol_nets_find(policy->zone4, policy->zone4_count, hi, lo);
        return i < 0 ? NULL : policy->zone_names[policy->zone4[i].zone];
    }
    *excluded = pol_excluded_words(policy, family, hi, lo);
    long z = pol_zone_index(policy, family, hi, lo);
    return z < 0 ? NULL : policy->zone_names[z];
}

/* ---------------------------------------------------------------------- */
/* Accessors                                                               */
/* ---------------------------------------------------------------------- */

uint64_t pol_retention_s(const pol_policy *policy, fv_class cls)
{
    if (policy == NULL || (unsigned)cls >= POL_CLASS_SLOTS)
        return 0;
    return policy->retention_s[cls];
}

uint64_t pol_rotation_s(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->rotation_s;
}

uint64_t pol_sweep_interval_s(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->sweep_interval_s;
}

const pol_detect *pol_detect_config(const pol_policy *policy)
{
    return policy == NULL ? NULL : &policy->detect;
}

size_t pol_zone_count(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->zone_count;
}

const char *pol_zone_name(const pol_policy *policy, size_t i)
{
    if (policy == NULL || i >= policy->zone_count)
        return NULL;
    return policy->zone_names[i];
}

const char *pol_addr_mode_name(pol_addr_mode mode)
{
    switch (mode) {
    case POL_ADDR_PSEUDONYMIZE:
        return "pseudonymize";
    case POL_ADDR_PREFIX_PRESERVING:
        return "prefix-preserving";
    case POL_ADDR_TRUNCATE:
        return "truncate";
    case POL_ADDR_KEEP:
        return "keep";
    }
    return "unknown";
}

int pol_zone_address_mode(const pol_policy *policy, const char *zone_name, int family,
                          pol_addr_mode *mode, unsigned *prefix_len)
{
    if (policy == NULL || mode == NULL || prefix_len == NULL || (family != 4 && family != 6))
        return FV_ERR_INVALID;

    pol_address_rule fallback = {.mode = POL_ADDR_PSEUDONYMIZE};
    const pol_address_rule *rule = &fallback;
    /* The record path passes the label that pol_zone_of returned, which
     * points into the policy, so a pointer compare finds it without a
     * string compare per zone and record. NULL, the link-local label
     * and copies of a name fall through to the string compares. */
    size_t z = 0;
    while (z < policy->zone_count && policy->zone_names[z] != zone_name)
        z++;
    if (z < policy->zone_count) {
        rule = &policy->address_rules[z];
    } else if (zone_name == NULL || strcmp(zone_name, FV_ZONE_EXTERNAL) == 0) {
        rule = &policy->address_rules[POL_EXTERNAL_RULE];
    } else {
        for (z = 0; z < policy->zone_count; z++) {
            if (strcmp(policy->zone_names[z], zone_name) == 0) {
                rule = &policy->address_rules[z];
                break;
            }
        }
    }

    *mode = rule->mode;
    *prefix_len = 0;
    if (rule->mode == POL_ADDR_TRUNCATE)
        *prefix_len = family == 4 ? rule->prefix4 : rule->prefix6;
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Text output                                                             */
/* ---------------------------------------------------------------------- */

void pol_net_format(const pol_net *net, char out[POL_CIDR_TEXT_MAX])
{
    uint8_t bytes[16];
    for (int i = 0; i < 8; i++) {
        bytes[i] = (uint8_t)(net->net_hi >> (56 - 8 * i));
        bytes[8 + i] = (uint8_t)(net->net_lo >> (56 - 8 * i));
    }

    char text[INET6_ADDRSTRLEN];
    int af = net->family == 4 ? AF_INET : AF_INET6;
    if (inet_ntop(af, bytes, text, sizeof text) == NULL)
        text[0] = '\0';
    snprintf(out, POL_CIDR_TEXT_MAX, "%s/%u", text, (unsigned)net->prefix_len);
}

void pol_duration_format(uint64_t seconds, char out[POL_DURATION_TEXT_MAX])
{
    static const struct {
        uint64_t unit_s;
        char suffix;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (seconds != 0 && seconds % units[i].unit_s == 0) {
            snprintf(out, POL_DURATION_TEXT_MAX, "%llu%c",
                     (unsigned long long)(seconds / units[i].unit_s), units[i].suffix);
            return;
        }
    }
    snprintf(out, POL_DURATION_TEXT_MAX, "%llus", (unsigned long long)seconds);
}

void pol_text_add(pol_text *t, const char *fmt, ...)
{
    if (t->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->cap - t->len) {
        t->full = true;
        return;
    }
    t->len += (size_t)n;
}

int pol_bpf_exclusions(const pol_policy *policy, char *out, size_t out_len)
{
    if (policy == NULL || out == NULL || out_len == 0)
        return FV_ERR_INVALID;

    out[0] = '\0';
    if (policy->exclude_count == 0)
        return FV_OK;

    pol_text t = {.buf = out, .cap = out_len};
    pol_text_add(&t, "not (");
    for (size_t i = 0; i < policy->exclude_count; i++) {
        char cidr[POL_CIDR_TEXT_MAX];
        pol_net_format(&policy->excludes[i], cidr);
        pol_text_add(&t, "%snet %s", i == 0 ? "" : " or ", cidr);
    }
    pol_text_add(&t, ")");

    if (t.full) {
        out[0] = '\0';
        return FV_ERR_FULL;
    }
    return FV_OK;
}

/* List the networks of zone ZONE, comma-separated. */
static void pol_summary_zone(const pol_policy *policy, size_t zone, pol_text *t)
{
    bool first = true;
    for (size_t i = 0; i < policy->zone_net_count; i++) {
        if (policy->zone_nets[i].zone != zone)
            continue;
        char cidr[POL_CIDR_TEXT_MAX];
        pol_net_format(&policy->zone_nets[i], cidr);
        pol_text_add(t, "%s%s", first ? "" : ", ", cidr);
        first = false;
    }
}

/* The detectors beyond beacon and exfil, one line each, for
 * `flowveil policy check`. */
static void pol_summary_detectors_more(const pol_detect *d, pol_text *t)
{
    char window[POL_DURATION_TEXT_MAX], learning[POL_DURATION_TEXT_MAX];
    char span[POL_DURATION_TEXT_MAX];
    pol_duration_format(d->alert_window_s, window);
    pol_duration_format(d->learning_period_s, learning);

    if (d->beacon_enabled) {
        pol_duration_format(d->beacon_min_duration_s, span);
        pol_text_add(t,
                     "  beacon scoring: a pattern must span %s and score %.2f or more; %zu"
                     " allow-list entries.\n",
                     span, d->beacon_min_score, d->beacon_allow_count);
    }
    if (d->long_conn_enabled) {
        pol_duration_format(d->long_conn_min_duration_s, span);
        pol_text_add(t,
                     "  long_connection: on. Alerts on a connection open %s or more and longer"
                     " than the host's usual connections.\n",
                     span);
    } else {
        pol_text_add(t, "  long_connection: off.\n");
    }
    if (d->baseline_enabled)
        pol_text_add(t,
                     "  baseline: on. Learns each host's and zone's traffic per hour of week"
                     " for %s, then alerts above the usual band by a factor of %.1f (volumes"
                     " under %llu bytes never alert).\n",
                     learning, d->baseline_mad_factor, (unsigned long long)d->baseline_min_bytes);
    else
        pol_text_add(t, "  baseline: off.\n");
    if (d->scan_enabled)
        pol_text_add(t,
                     "  scan: on. Sequential test on first contacts (success probability"
                     " %.2f benign, %.2f scanner; false positive rate %.3f, detection rate"
                     " %.3f; at least %u targets).\n",
                     d->scan_theta0, d->scan_theta1, d->scan_false_positive, d->scan_detection,
                     (unsigned)d->scan_min_targets);
    else
        pol_text_add(t, "  scan: off.\n");
    if (d->dns_tunnel_enabled) {
        pol_duration_format(d->dns_tunnel_window_s, span);
        pol_text_add(t,
                     "  dns_tunnel: on. Alerts on %u or more unique names under one domain"
                     " within %s that show two of three signs: long labels (mean %u"
                     " characters or more), random labels (%.1f bits per character or more)"
                     " and TXT, NULL or CNAME queries (half of them or more); %zu allowed"
                     " domain suffixes.\n",
                     (unsigned)d->dns_tunnel_min_subdomains, span,
                     (unsigned)d->dns_tunnel_min_label_len, d->dns_tunnel_min_entropy,
                     d->dns_tunnel_allow_count);
    } else {
        pol_text_add(t, "  dns_tunnel: off.\n");
    }
    if (d->dga_enabled) {
        pol_duration_format(d->dga_window_s, span);
        pol_text_add(t,
                     "  dga: on. Alerts on %u or more NXDOMAIN answers within %s for names"
                     " scoring %.2f or more; %zu allowed domain suffixes.\n",
                     (unsigned)d->dga_min_nxdomain, span, d->dga_min_score, d->dga_allow_count);
    } else {
        pol_text_add(t, "  dga: off.\n");
    }
    pol_text_add(t, "  rare_destination: %s.\n",
                 d->rare_dest_enabled ? "on, after the learning period" : "off");
    if (d->off_hours_enabled)
        pol_text_add(t,
                     "  off_hours: on. Alerts on activity in an hour of week holding less"
                     " than %.1f%% of the host's history, after the learning period.\n",
                     100.0 * d->off_hours_max_share);
    else
        pol_text_add(t, "  off_hours: off.\n");
    if (d->segmentation_enabled)
        pol_text_add(t, "  segmentation: on. %zu rules; flows no rule matches are %s.\n",
                     d->seg_rule_count, d->segmentation_default_allow ? "allowed" : "denied");
    else
        pol_text_add(t, "  segmentation: off.\n");
    if (d->indicators_enabled) {
        size_t csv = 0;
        for (size_t i = 0; i < d->indicator_file_count; i++)
            csv += d->indicator_files[i].format == 1;
        pol_text_add(t, "  indicators: on. %zu %s (%zu plain %s, %zu CSV).\n",
                     d->indicator_file_count, d->indicator_file_count == 1 ? "file" : "files",
                     d->indicator_file_count - csv,
                     d->indicator_file_count - csv == 1 ? "list" : "lists", csv);
    } else
        pol_text_add(t, "  indicators: off.\n");
    pol_text_add(t, "  The same alert is raised again at most once per %s.\n", window);
}

static void pol_summary_detectors(const pol_policy *policy, pol_text *t)
{
    const pol_detect *d = &policy->detect;
    char interval[POL_DURATION_TEXT_MAX];
    pol_duration_format(d->beacon_min_interval_s, interval);

    pol_text_add(t, "Detectors (they see pseudonyms only):\n");
    if (d->beacon_enabled)
        pol_text_add(t,
                     "  beacon: on. Alerts when an internal host connects to the same"
                     " external peer at least %u times at a regular interval of %s or more"
                     " (jitter at most %.2f of the median interval).\n",
                     (unsigned)d->beacon_min_connections, interval, d->beacon_max_jitter);
    else
        pol_text_add(t, "  beacon: off.\n");

    if (d->exfil_enabled)
        pol_text_add(t,
                     "  exfil: on. Alerts when an internal host sends at least %llu bytes"
                     " and %.1f times its usual outbound volume (baseline needs %u earlier"
                     " flows).\n",
                     (unsigned long long)d->exfil_min_bytes, d->exfil_ratio,
                     (unsigned)d->exfil_min_history);
    else
        pol_text_add(t, "  exfil: off.\n");
    pol_summary_detectors_more(d, t);
}

/* Append " (addresses: MODE)" for a rule other than pseudonymize, with
 * the kept prefix length of each family present (HAS4, HAS6) for
 * truncate. */
static void pol_summary_address_rule(const pol_address_rule *rule, bool has4, bool has6,
                                     pol_text *t)
{
    if (rule->mode == POL_ADDR_PSEUDONYMIZE)
        return;
    pol_text_add(t, " (addresses: %s", pol_addr_mode_name(rule->mode));
    if (rule->mode == POL_ADDR_TRUNCATE && has4)
        pol_text_add(t, ", IPv4 /%u", (unsigned)rule->prefix4);
    if (rule->mode == POL_ADDR_TRUNCATE && has6)
        pol_text_add(t, ", IPv6 /%u", (unsigned)rule->prefix6);
    pol_text_add(t, ")");
}

/* Write the classes of bit set CLASSES ("flows, dns") into OUT; 0 means
 * every class that the destination's protocol carries. */
static void pol_export_classes_text(const pol_export_dest *d, char *out, size_t out_len)
{
    if (d->classes == 0) {
        snprintf(out, out_len, "%s", d->kind == POL_EXPORT_IPFIX
                                         ? "every class IPFIX carries (flows, dns, tls)"
                                         : "every class");
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        if ((d->classes & (1u << c)) == 0)
            continue;
        int n = snprintf(out + used, out_len - used, "%s%s", used > 0 ? ", " : "",
                         fv_class_name((fv_class)c));
        if (n < 0 || (size_t)n >= out_len - used)
            break;
        used += (size_t)n;
    }
}

/* Export destinations are recipients of the data, so the summary names
 * each one with its target and classes. */
static void pol_summary_exports(const pol_policy *policy, pol_text *t)
{
    const pol_export *ex = pol_export_config(policy);
    if (ex == NULL || ex->count == 0) {
        pol_text_add(t, "Export: no destination; records leave only through the API and"
                        " reports.\n");
        return;
    }
    pol_text_add(t, "Export destinations (recipients of records):\n");
    for (size_t i = 0; i < ex->count; i++) {
        const pol_export_dest *d = &ex->dest[i];
        char classes[256];
        pol_export_classes_text(d, classes, sizeof classes);
        if (d->kind == POL_EXPORT_KAFKA)
            pol_text_add(t, "  %s: Kafka brokers %s, topics %s<class>, classes: %s\n", d->name,
                         d->target, d->topic_prefix[0] != '\0' ? d->topic_prefix : "flowveil.",
                         classes);
        else
            pol_text_add(t, "  %s: IPFIX over %s to %s, classes: %s\n", d->name,
                         d->tcp ? "TCP" : "UDP", d->target, classes);
    }
}

int pol_summary(const pol_policy *policy, char *out, size_t out_len)
{
    if (policy == NULL || out == NULL || out_len == 0)
        return FV_ERR_INVALID;

    pol_text t = {.buf = out, .cap = out_len};
    char dur[POL_DURATION_TEXT_MAX];
    out[0] = '\0';

    /* Who is pseudonymized. */
    if (policy->zone_count == 0) {
        pol_text_add(&t, "No internal networks are declared: no address is pseudonymized,"
                         " and every address is stored as seen, labelled \"external\".\n");
    } else {
        /* The address mode of each zone follows its networks, so a zone
         * that keeps or truncates is not called pseudonymized here. */
        pol_text_add(&t, "Internal networks (%zu zone%s): their addresses are replaced by keyed"
                         " pseudonyms before anything is stored, unless the zone's address"
                         " mode says otherwise:\n",
                     policy->zone_count, policy->zone_count == 1 ? "" : "s");
        for (size_t z = 0; z < policy->zone_count; z++) {
            pol_text_add(&t, "  %s: ", policy->zone_names[z]);
            pol_summary_zone(policy, z, &t);
            bool has4 = false;
            bool has6 = false;
            for (size_t i = 0; i < policy->zone_net_count; i++) {
                if (policy->zone_nets[i].zone == z && policy->zone_nets[i].family == 4)
                    has4 = true;
                else if (policy->zone_nets[i].zone == z)
                    has6 = true;
            }
            pol_summary_address_rule(&policy->address_rules[z], has4, has6, &t);
            pol_text_add(&t, "\n");
        }
        const pol_address_rule *ext = &policy->address_rules[POL_EXTERNAL_RULE];
        if (ext->mode == POL_ADDR_KEEP) {
            pol_text_add(&t, "Addresses outside every zone are labelled \"external\" and"
                             " stored as seen.\n");
        } else {
            pol_text_add(&t, "Addresses outside every zone are labelled \"external\" and"
                             " stored");
            pol_summary_address_rule(ext, true, true, &t);
            pol_text_add(&t, ".\n");
        }
    }

    pol_text_add(&t, "MAC addresses are always pseudonymized, whatever the zone.\n");
    pol_duration_format(policy->rotation_s, dur);
    pol_text_add(&t, "The pseudonym key is replaced every %s; pseudonyms from different"
                     " key periods cannot be linked.\n",
                 dur);

    /* What is never monitored. */
    if (policy->exclude_count == 0) {
        pol_text_add(&t, "Never monitored: nothing is excluded.\n");
    } else {
        pol_text_add(&t, "Never monitored (dropped before any metadata is extracted,"
                         " even where they lie inside a zone): ");
        for (size_t i = 0; i < policy->exclude_count; i++) {
            char cidr[POL_CIDR_TEXT_MAX];
            pol_net_format(&policy->excludes[i], cidr);
            pol_text_add(&t, "%s%s", i == 0 ? "" : ", ", cidr);
        }
        pol_text_add(&t, "\n");
    }

    /* What each class keeps and for how long. */
    static const char *const kept[POL_CLASS_SLOTS] = {
        [POL_AGGREGATES_SLOT] = "counts per zone and group of at least k hosts, without per-host records",
        [FV_CLASS_FLOW] = "connection records (endpoints, ports, protocol, byte and packet counts)",
        [FV_CLASS_DNS] = "DNS questions and response codes",
        [FV_CLASS_TLS] = "TLS client hellos (server name and version)",
        [FV_CLASS_HTTP] = "HTTP requests (method and Host header)",
        [FV_CLASS_ALERT] = "detector alerts",
        [FV_CLASS_DHCP] = "DHCP messages (type, pseudonymized client MAC and host name, vendor class)",
        [FV_CLASS_SSH] = "SSH connections (software banners and HASSH fingerprints)",
    };
    pol_duration_format(policy->sweep_interval_s, dur);
    pol_text_add(&t, "Retention (expired records are deleted by a sweep every %s):\n", dur);
    for (size_t c = 0; c < POL_CLASS_SLOTS; c++) {
        pol_duration_format(policy->retention_s[c], dur);
        pol_text_add(&t, "  %s: %s, kept %s%s\n", pol_class_names[c], kept[c], dur,
                     policy->collect[c] ? "" : " (collection switched off)");
    }
    pol_duration_format(policy->audit_retention_s, dur);
    pol_text_add(&t, "  audit: the audit log of policy changes and data access, kept %s\n", dur);
    pol_text_add(&t, "No packet payload is stored.\n");

    pol_summary_detectors(policy, &t);
    pol_summary_groups(policy, &t);
    pol_summary_domains(policy, &t);
    pol_summary_exports(policy, &t);

    if (t.full) {
        out[0] = '\0';
        return FV_ERR_FULL;
    }
    return FV_OK;
}
