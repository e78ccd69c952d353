/*
 * detect.h: detectors over pseudonymized records.
 *
 * The engine keeps one instance of each detector the policy enables
 * (pol_detect), feeds them finished flow records and DNS records (already
 * pseudonymized) and, when evaluated, raises alerts. docs/DETECTION.md
 * describes every detector, its parameters, limits and state bounds:
 * beacon, exfil, long_conn, baseline, off_hours, rare_dest, and when built
 * in, scan, dns_tunnel, dga and segmentation.
 *
 * Caveats
 * - Never receives raw identifiers: hosts are pseudonyms.
 * - State is in memory and bounded (entries beyond each detector's limits
 *   are evicted least recently seen). Not thread-safe.
 * - The engine raises a finding for the same (detector, host, peer, peer
 *   port) again only when its evidence ends (last_us) alert_window_s / 2
 *   or more after that of the last one raised (alert_window_s 0: once per
 *   engine lifetime, unless
 *   det_engine_reset_alerts is called). det_rekey carries that mark over
 *   to the host's new pseudonym. The store merges repeats.
 * - The beacon detector does not count TCP records whose flags are known
 *   but contain no SYN, because they continue an earlier connection.
 *   Volume detectors ignore such records of at most two packets without
 *   PSH, which are teardown remnants.
 */
#ifndef FV_DETECT_H
#define FV_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"
#include "policy.h"

typedef struct det_engine det_engine;

/* Called for each raised alert; REC is valid during the call only. */
typedef void (*det_alert_fn)(void *ctx, const fv_alert_record *rec);

/* Create an engine with CONFIG (copied). */
FV_NODISCARD int det_engine_create(const pol_detect *config, det_engine **out);

/* Free ENGINE. Accepts NULL; clears *engine. */
void det_engine_destroy(det_engine **engine);

/* Feed one flow record. */
void det_observe_flow(det_engine *engine, const fv_flow_record *flow);

/* Feed one DNS record (queries and responses). */
void det_observe_dns(det_engine *engine, const fv_dns_record *dns);

/* Number of detectors the engine runs (enabled in its policy). */
size_t det_module_count(const det_engine *engine);

/*
 * Evaluate the current state at NOW_US (the alert's ts_us) and call FN
 * for every new alert. Exfil alerts may also be raised from
 * det_observe_flow's state at the next evaluation. Return the number of
 * alerts raised.
 */
size_t det_evaluate(det_engine *engine, uint64_t now_us, det_alert_fn fn, void *ctx);

/*
 * Forget which alerts were raised, so every pattern still present in the
 * state alerts again at the next det_evaluate. Observed flows are kept.
 */
void det_engine_reset_alerts(det_engine *engine);

/*
 * Key rotation. The capturing process has each host's raw address, so it
 * can compute the host's pseudonym under the old and the new key. The
 * engine only receives the two pseudonyms. The sequence is:
 *
 *   det_rekey_begin(engine);
 *   for each host still seen: det_rekey(engine, old, new, kind);
 *   det_rekey_end(engine);
 *
 * det_rekey_begin starts a new generation of state. det_rekey moves
 * everything keyed by host OLD_PSEUDONYM of endpoint kind KIND (an
 * fv_ep_kind) to NEW_PSEUDONYM: beacon pairs, the exfil baseline, the
 * marks of alerts already raised (so a pattern does not alert again
 * under its new name) and queued exfil alerts, whose summary is written
 * again. When state under NEW_PSEUDONYM exists already, the flows are
 * merged, the older ones first, keeping the window sizes. det_rekey_end
 * drops all state that no det_rekey call moved in this generation, so no
 * alert raised after the rotation carries a pseudonym of the old epoch,
 * and returns how many entries it dropped. det_rekey may also be called
 * on its own, without begin and end: then nothing is dropped.
 * The engine keeps no record of the old-to-new pairs it was given.
 */
void det_rekey_begin(det_engine *engine);
void det_rekey(det_engine *engine, const uint8_t old_pseudonym[FV_PSEUDONYM_BYTES],
               const uint8_t new_pseudonym[FV_PSEUDONYM_BYTES], uint8_t kind);
size_t det_rekey_end(det_engine *engine);

/*
 * Learned state (baselines, known destinations, usual hours) for storage
 * across restarts. det_engine_save stores a new buffer in *OUT (caller
 * frees) and its length in *OUT_LEN; the bytes contain pseudonyms and
 * must be stored encrypted like records. det_engine_load restores state
 * saved by an engine of any policy into ENGINE, skipping detectors it does
 * not run; call it right after det_engine_create. It reads the current
 * state format and version 1, written by earlier builds. Returns FV_OK,
 * FV_ERR_NOMEM, or FV_ERR_PARSE for bytes that are not saved state or
 * have a newer format version.
 * Pseudonyms in the saved state are those of the epoch at saving time:
 * after a restart in a new epoch, run the det_rekey sequence.
 */
FV_NODISCARD int det_engine_save(det_engine *engine, uint8_t **out, size_t *out_len);
FV_NODISCARD int det_engine_load(det_engine *engine, const uint8_t *data, size_t len);

/*
 * Evidence slots of fv_alert_record.evidence, per detector. The numbers
 * index the array and are stored on disk: never renumber them.
 */
enum det_beacon_evidence {
    DET_EV_BEACON_CONNECTIONS = 0, /* flows in the analysed window */
    DET_EV_BEACON_MEDIAN_INTERVAL_S = 1,
    DET_EV_BEACON_MAD_INTERVAL_S = 2, /* median absolute deviation of the intervals */
    DET_EV_BEACON_DISPERSION = 3,     /* MAD / median */
    DET_EV_BEACON_DURATION_S = 4,     /* first to last connection start */
    DET_EV_BEACON_MEAN_BYTES_OUT = 5, /* mean bytes the host sent per flow */
    DET_EV_BEACON_SCORE_TIMING = 6,   /* interval score 0..1 (skew, dispersion) */
    DET_EV_BEACON_SCORE_SIZE = 7,     /* bytes-sent score 0..1 (skew, dispersion) */
    DET_EV_BEACON_COUNT = 8
};

enum det_exfil_evidence {
    DET_EV_EXFIL_BYTES_OUT = 0,             /* bytes the host sent in the flow */
    DET_EV_EXFIL_BASELINE_MEDIAN_BYTES = 1, /* median of the host's earlier flows */
    DET_EV_EXFIL_RATIO = 2,                 /* bytes_out / baseline median */
    DET_EV_EXFIL_DURATION_S = 3,            /* duration of the flow */
    DET_EV_EXFIL_HISTORY_FLOWS = 4,         /* earlier flows in the baseline */
    DET_EV_EXFIL_COUNT = 5
};

enum det_long_conn_evidence {
    DET_EV_LONG_DURATION_S = 0,         /* duration of the connection so far */
    DET_EV_LONG_FLOOR_S = 1,            /* detect.long_connection.min_duration */
    DET_EV_LONG_HOST_USUAL_S = 2,       /* host's 95th percentile duration, 0 if unknown */
    DET_EV_LONG_BYTES_OUT = 3,          /* bytes the host sent on it */
    DET_EV_LONG_BYTES_IN = 4,           /* bytes it received */
    DET_EV_LONG_COUNT = 5
};

enum det_baseline_evidence {
    DET_EV_BASELINE_METRIC = 0,         /* enum det_baseline_metric */
    DET_EV_BASELINE_VALUE = 1,          /* the hour's value */
    DET_EV_BASELINE_EXPECTED = 2,       /* weighted mean of the same hour of week */
    DET_EV_BASELINE_DEVIATION = 3,      /* weighted mean absolute deviation */
    DET_EV_BASELINE_UPPER = 4,          /* upper band: expected + factor * deviation */
    DET_EV_BASELINE_HISTORY = 5,        /* earlier hours of this hour of week in the model */
    DET_EV_BASELINE_HOUR_OF_WEEK = 6,   /* 0 = Monday 00:00-01:00 UTC */
    DET_EV_BASELINE_ZONE = 7,           /* 1 for a zone baseline, 0 for a host */
    DET_EV_BASELINE_COUNT = 8
};

/* Stored in evidence slot DET_EV_BASELINE_METRIC: never renumber. */
enum det_baseline_metric {
    DET_METRIC_BYTES_OUT = 0,
    DET_METRIC_BYTES_IN = 1,
    DET_METRIC_FLOWS = 2,
    DET_METRIC_DESTINATIONS = 3,
    DET_METRIC_DNS_QUERIES = 4,
    DET_METRIC_COUNT = 5
};

enum det_rare_evidence {
    DET_EV_RARE_HOST_DESTINATIONS = 0,  /* earlier contacts by the host: 0, the destination is new */
    DET_EV_RARE_ORG_HOSTS = 1,          /* internal hosts that contacted it before: 0 */
    DET_EV_RARE_BYTES_OUT = 2,          /* bytes sent to it in the first flow */
    DET_EV_RARE_LEARNED_S = 3,          /* seconds of history the verdict rests on */
    DET_EV_RARE_COUNT = 4
};

enum det_off_hours_evidence {
    DET_EV_OFF_HOUR_OF_WEEK = 0,        /* 0 = Monday 00:00-01:00 UTC */
    DET_EV_OFF_HOUR_SHARE = 1,          /* share of the host's history in that hour */
    DET_EV_OFF_FLOWS = 2,               /* flows in the hour */
    DET_EV_OFF_BYTES = 3,               /* bytes in the hour, both directions */
    DET_EV_OFF_HISTORY_FLOWS = 4,       /* flows in the host's history */
    DET_EV_OFF_COUNT = 5
};

/*
 * Return the name of evidence slot INDEX of DETECTOR (an fv_detector),
 * such as "median_interval_s", or NULL for an unknown detector or slot.
 * The returned string is static.
 */
const char *det_evidence_name(int detector, unsigned index);

/* ---------------------------------------------------------------------- */
/* Scan, DNS, segmentation and indicator detectors (det_scan.c, det_dns.c, */
/* det_segment.c, det_indicators.c)                                         */
/* ---------------------------------------------------------------------- */

/* Evidence slots; stored on disk like the ones above: never renumber. */
enum det_scan_evidence {
    DET_EV_SCAN_TARGETS = 0,        /* first contacts in the walk since its last reset */
    DET_EV_SCAN_FAILURES = 1,       /* of those, failed ones */
    DET_EV_SCAN_DISTINCT_PORTS = 2, /* ports probed (saturates at 64) */
    DET_EV_SCAN_LIKELIHOOD_RATIO = 3, /* of the walk, >= eta1 when alerting */
    DET_EV_SCAN_VERTICAL = 4,       /* 1 vertical (one destination, many ports), 0 horizontal */
    DET_EV_SCAN_COUNT = 5
};

enum det_dns_tunnel_evidence {
    DET_EV_TUNNEL_UNIQUE_NAMES = 0, /* unique names under the domain in the window */
    DET_EV_TUNNEL_MEAN_LABEL_LEN = 1, /* mean of each name's longest label left of the domain */
    DET_EV_TUNNEL_ENTROPY = 2,      /* of the characters left of the domain, bits per character */
    DET_EV_TUNNEL_TYPED_SHARE = 3,  /* share of TXT, NULL and CNAME queries */
    DET_EV_TUNNEL_QUERIES = 4,      /* queries under the domain in the window */
    DET_EV_TUNNEL_COUNT = 5
};

enum det_dga_evidence {
    DET_EV_DGA_NXDOMAIN = 0,        /* unique names answered NXDOMAIN in the window */
    DET_EV_DGA_NXDOMAIN_RATE = 1,   /* NXDOMAIN answers / all answers */
    DET_EV_DGA_MEAN_SCORE = 2,      /* mean character-statistics score of those names */
    DET_EV_DGA_MEAN_ENTROPY = 3,    /* bits per character */
    DET_EV_DGA_RARE_BIGRAM_SHARE = 4, /* bigrams absent from the built-in table */
    DET_EV_DGA_DIGIT_RATIO = 5,
    DET_EV_DGA_COUNT = 6
};

enum det_segmentation_evidence {
    DET_EV_SEG_RULE = 0,            /* 1-based index of the denying rule, 0 = the default */
    DET_EV_SEG_FLOWS = 1,           /* denied flows of this (source, destination, port) */
    DET_EV_SEG_ANSWERED = 2,        /* 1 if the responder answered any of them */
    DET_EV_SEG_BYTES = 3,           /* bytes in both directions */
    DET_EV_SEG_COUNT = 4
};

enum det_indicator_evidence {
    DET_EV_IND_LIST = 0,            /* index of the list in detect.indicators.files */
    DET_EV_IND_TYPE = 1,            /* det_indicator_type */
    DET_EV_IND_LINE = 2,            /* line of the entry in its file */
    DET_EV_IND_SOURCE = 3,          /* det_indicator_source: where the value was seen */
    DET_EV_IND_COUNT = 4
};

/*
 * Name of evidence slot INDEX of the scan, dns_tunnel, dga, segmentation
 * and indicator detectors, or NULL. Static strings.
 */
const char *det_more_evidence_name(int detector, unsigned index);

/* Indicator types. Stored as evidence: never renumber. */
typedef enum det_indicator_type {
    DET_IND_IPV4 = 1,
    DET_IND_IPV6 = 2,
    DET_IND_CIDR = 3,   /* IPv4 or IPv6 network */
    DET_IND_DOMAIN = 4, /* matches the name and every name below it */
    DET_IND_JA3 = 5,    /* 32 hex digits */
    DET_IND_JA4 = 6,    /* e.g. t13d1516h2_8daaf6152771_b186095e22b6 */
    DET_IND_TYPE_COUNT = 7
} det_indicator_type;

/* Return "ipv4", "ipv6", "cidr", "domain", "ja3", "ja4", or NULL. */
const char *det_indicator_type_name(int type);

/* Where a matched value was seen. Stored as evidence: never renumber. */
typedef enum det_indicator_source {
    DET_IND_SRC_FLOW = 1,       /* external address of a flow */
    DET_IND_SRC_DNS_QUERY = 2,  /* DNS question name */
    DET_IND_SRC_DNS_ANSWER = 3, /* DNS A/AAAA answer or CNAME target */
    DET_IND_SRC_TLS_SNI = 4,
    DET_IND_SRC_TLS_JA3 = 5,
    DET_IND_SRC_TLS_JA4 = 6,
    DET_IND_SRC_HTTP_HOST = 7,
} det_indicator_source;

/* Return "flow", "dns_query", "dns_answer", "tls_sni", "ja3", "ja4",
 * "http_host", or NULL. */
const char *det_indicator_source_name(int source);

/*
 * A set of indicators from one or more list files: exact addresses and
 * domains and fingerprints in hash sets, networks in a binary prefix
 * trie per family. Matching costs one hash lookup per address, one per
 * label of a name, and at most 32 or 128 trie steps. Unlike the other
 * detectors it works on raw values, so only the capturing process uses
 * it, before pseudonymization.
 */
typedef struct det_indicators det_indicators;

/* A matched entry. */
typedef struct det_indicator_hit {
    uint32_t entry_id;  /* unique per loaded entry, for deduplication */
    uint16_t list;      /* index of the list file */
    uint8_t type;       /* det_indicator_type */
    uint8_t severity;   /* fv_severity of the list */
    uint32_t line;      /* line in the list file */
} det_indicator_hit;

/* Entries loaded per det_indicator_type (index = type) and lines rejected. */
typedef struct det_indicator_counts {
    size_t loaded[DET_IND_TYPE_COUNT];
    size_t duplicates;  /* entries already in the set, skipped */
    size_t rejected;    /* lines with an error */
} det_indicator_counts;

/* Called for each rejected line with "FILE:LINE: reason; fix". */
typedef void (*det_indicator_error_fn)(void *ctx, const char *message);

/* Create an empty set. Returns FV_OK or FV_ERR_NOMEM. */
FV_NODISCARD int det_indicators_create(det_indicators **out);

/* Free SET. Accepts NULL; clears *set. */
void det_indicators_destroy(det_indicators **set);

/*
 * Parse TEXT (LEN bytes) as an indicator list and add its entries as
 * list LIST with SEVERITY. FORMAT 0 is the plain list (one indicator per
 * line, type detected), 1 is CSV "indicator,type[,note]" with an
 * optional header line. '#' starts a comment line in both; blank lines
 * are skipped. NAME stands for the file in messages. A bad line is
 * reported through ON_ERROR (may be NULL) and skipped; COUNTS (may be
 * NULL) is added to. Returns FV_OK, FV_ERR_INVALID for an unknown
 * FORMAT, or FV_ERR_NOMEM.
 */
FV_NODISCARD int det_indicators_load_buffer(det_indicators *set, const char *name,
                                            const char *text, size_t len, uint8_t format,
                                            uint16_t list, uint8_t severity,
                                            det_indicator_error_fn on_error, void *ctx,
                                            det_indicator_counts *counts);

/*
 * Read the file at PATH (at most 64 MiB) and load it like
 * det_indicators_load_buffer. Returns FV_ERR_IO with "PATH: reason" in
 * ERR when the file cannot be read, FV_ERR_FULL when it is too large.
 */
FV_NODISCARD int det_indicators_load_file(det_indicators *set, const char *path, uint8_t format,
                                          uint16_t list, uint8_t severity,
                                          det_indicator_error_fn on_error, void *ctx,
                                          det_indicator_counts *counts, char *err,
                                          size_t err_len);

/* Number of entries in SET. */
size_t det_indicators_count(const det_indicators *set);

/*
 * Match an address (FAMILY 4 or 6, ADDR in network order, IPv4 in
 * addr[0..3]) against the exact addresses, then the networks (longest
 * prefix). Returns true and fills *HIT on a match.
 */
bool det_indicators_match_addr(const det_indicators *set, int family, const uint8_t addr[16],
                               det_indicator_hit *hit);

/*
 * Match NAME (presentation form, any case, one trailing dot ignored)
 * against the domains: NAME itself, then each parent at a label
 * boundary, so "a.evil.com" matches "evil.com" and "notevil.com" does not.
 */
bool det_indicators_match_domain(const det_indicators *set, const char *name,
                                 det_indicator_hit *hit);

/* Called by det_indicators_each_network for one address or network entry:
 * FAMILY 4 or 6, ADDR in network order, PREFIX 32 or 128 for a single
 * address, LIST and LINE where the entry was loaded from. */
typedef void (*det_indicator_network_fn)(void *ctx, int family, const uint8_t addr[16],
                                         unsigned prefix, uint16_t list, uint32_t line);

/* Call FN for every address and network entry of SET (for load-time
 * checks such as entries that overlap an internal zone). */
void det_indicators_each_network(const det_indicators *set, det_indicator_network_fn fn,
                                 void *ctx);

/* Match a JA3 (TYPE DET_IND_JA3) or JA4 (DET_IND_JA4) fingerprint, any case. */
bool det_indicators_match_fingerprint(const det_indicators *set, int type, const char *text,
                                      det_indicator_hit *hit);

#endif /* FV_DETECT_H */
