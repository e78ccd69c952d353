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

/* Detector settings. */
typedef struct pol_detect {
    bool beacon_enabled;
    uint32_t beacon_min_connections;    /* default 8 */
    double beacon_max_jitter;           /* max MAD/median of intervals, default 0.2 */
    uint32_t beacon_min_interval_s;     /* default 10 */
    bool exfil_enabled;
    uint64_t exfil_min_bytes;           /* absolute floor, default 50 MB */
    double exfil_ratio;                 /* times the host's usual volume, default 20 */
    uint32_t exfil_min_history;         /* earlier flows needed for a baseline, default 10 */
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
 * The most specific matching network wins. The returned string lives as
 * long as the policy.
 */
const char *pol_zone_of(const pol_policy *policy, int family, const uint8_t addr[16]);

/* Return true if the address lies in an excluded subnet. */
bool pol_is_excluded(const pol_policy *policy, int family, const uint8_t addr[16]);

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

/* Number of zones and the name of zone I, for summaries. */
size_t pol_zone_count(const pol_policy *policy);
const char *pol_zone_name(const pol_policy *policy, size_t i);

/* Write a plain-language summary of what is collected, about whom and for
 * how long, into OUT (for `flowveil policy check`). Returns FV_OK or
 * FV_ERR_FULL. */
int pol_summary(const pol_policy *policy, char *out, size_t out_len);

#endif /* FV_POLICY_H */
