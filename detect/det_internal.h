/*
 * det_internal.h: the interface between the detector engine (detect.c)
 * and each detector (det_*.c). Not installed, not used outside detect/.
 *
 * Every detector is an instance of det_module: the engine creates each
 * enabled one from the policy's pol_detect, feeds it the pseudonymized
 * records it asks for, asks it for alerts at each evaluation and moves
 * its per-host state on key rotation. The engine owns alert
 * deduplication; a detector may emit the same finding at every
 * evaluation.
 *
 * Caveats
 * - Called from one thread only.
 * - State must be bounded: each detector documents its limits and evicts
 *   the least recently seen entries beyond them.
 * - A detector never sees a raw identifier; hosts are pseudonymized
 *   fv_endpoint values (compare them with fv_endpoint_equal semantics:
 *   kind + addr bytes).
 */
#ifndef FV_DET_INTERNAL_H
#define FV_DET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"
#include "policy.h"

/* Emit an alert; REC is copied by the engine. */
typedef void (*det_emit_fn)(void *engine_ctx, const fv_alert_record *rec);

typedef struct det_module {
    const char *name;                   /* fv_detector_name of its id */
    int detector;                       /* fv_detector */
    /* Return true when CONFIG enables the detector. */
    bool (*enabled)(const pol_detect *config);
    /* Create the state; return NULL on allocation failure. */
    void *(*create)(const pol_detect *config);
    void (*destroy)(void *state);
    /* Either may be NULL when the detector does not use that class. */
    void (*observe_flow)(void *state, const fv_flow_record *flow);
    void (*observe_dns)(void *state, const fv_dns_record *dns);
    /* Emit findings at NOW_US (ts_us of the alerts). */
    void (*evaluate)(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx);
    /*
     * Key rotation: move state of host OLD to NEW (both FV_PSEUDONYM_BYTES,
     * endpoint kind KIND). rekey_end drops every host no rekey call moved
     * since rekey_begin and returns how many entries it dropped. May be
     * NULL for detectors without per-host state.
     */
    void (*rekey_begin)(void *state);
    void (*rekey)(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                  uint8_t kind);
    size_t (*rekey_end)(void *state);
    /*
     * Optional, added at the end so existing initializers stay valid:
     * evidence slot names (index = slot of fv_alert_record.evidence, never
     * renumbered), and persistence of learned state across restarts.
     * save appends the state to OUT (a det_buf, see det_util.h) and
     * returns FV_OK; load restores it from DATA[0..len), written under
     * state format VERSION (DET_STATE_VERSION or an earlier one it still
     * reads), into a freshly created state and returns FV_OK or
     * FV_ERR_PARSE. Either may be NULL.
     */
    const char *const *evidence_names;
    unsigned evidence_count;
    int (*save)(void *state, void *out);
    int (*load)(void *state, const uint8_t *data, size_t len, uint32_t version);
    /*
     * Optional: start loading the table memory that observe_flow or
     * observe_dns reads first for the same record (det_table_prefetch,
     * det_lru_prefetch). The engine calls every detector's prefetch
     * before the first observe, so the detectors' cache misses overlap
     * instead of following one another. Must not change the state.
     */
    void (*prefetch_flow)(const void *state, const fv_flow_record *flow);
    void (*prefetch_dns)(const void *state, const fv_dns_record *dns);
} det_module;

/* Detector modules, each defined in its own det_*.c file. */
extern const det_module det_module_scan;          /* det_scan.c */
extern const det_module det_module_dns_tunnel;    /* det_dns.c */
extern const det_module det_module_dga;           /* det_dns.c */
extern const det_module det_module_segmentation;  /* det_segment.c */

/* Detector modules of the engine's own files. */
extern const det_module det_module_beacon;          /* det_beacon.c */
extern const det_module det_module_exfil;           /* det_beacon.c */
extern const det_module det_module_long_conn;       /* det_baseline.c */
extern const det_module det_module_baseline;        /* det_baseline.c */
extern const det_module det_module_off_hours;       /* det_baseline.c */
extern const det_module det_module_rare_dest;       /* det_rare.c */

#endif /* FV_DET_INTERNAL_H */
