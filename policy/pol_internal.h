/*
 * pol_internal.h: the parsed policy, shared by policy.c (accessors,
 * lookups, summary) and pol_parse.c (YAML to struct). Not installed and
 * not included outside policy/.
 */
#ifndef FV_POL_INTERNAL_H
#define FV_POL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Limits that keep a policy small enough for a linear scan per packet. */
#define POL_MAX_ZONES 64
#define POL_MAX_ZONE_NETWORKS 1024
#define POL_MAX_EXCLUDES 256

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

    uint64_t retention_s[FV_CLASS_COUNT];
    uint64_t rotation_s;
    uint64_t sweep_interval_s;
    pol_detect detect;
};

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
extern const char *const pol_class_names[FV_CLASS_COUNT];

#endif /* FV_POL_INTERNAL_H */
