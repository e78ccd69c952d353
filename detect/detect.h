/*
 * detect.h: detectors over pseudonymized flow records.
 *
 * The engine observes finished flow records (already pseudonymized) and,
 * when evaluated, raises alerts:
 * - beacon: an internal host connecting to one external peer (address,
 *   port, protocol) at regular intervals. Intervals between connection
 *   starts are scored by their median and median absolute deviation
 *   (MAD), which tolerate jitter and a few missed beats.
 * - exfil: an internal host sending to an external peer far more bytes
 *   in one flow than it usually sends, measured against the median of
 *   its own earlier outbound flows, above an absolute floor.
 *
 * Caveats
 * - Never receives raw identifiers: hosts are pseudonyms.
 * - State is in memory and bounded (hosts and pairs beyond the limits are
 *   evicted least recently seen). Not thread-safe.
 * - An alert for the same (detector, host, peer, peer port) is raised
 *   once per engine lifetime unless det_engine_reset_alerts is called.
 *   det_rekey carries that mark over to the host's new pseudonym.
 * - The beacon detector does not count TCP records whose flags are known
 *   but contain no SYN, because they continue an earlier connection.
 *   Both detectors ignore such records of at most two packets without
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
    DET_EV_BEACON_COUNT = 6
};

enum det_exfil_evidence {
    DET_EV_EXFIL_BYTES_OUT = 0,             /* bytes the host sent in the flow */
    DET_EV_EXFIL_BASELINE_MEDIAN_BYTES = 1, /* median of the host's earlier flows */
    DET_EV_EXFIL_RATIO = 2,                 /* bytes_out / baseline median */
    DET_EV_EXFIL_DURATION_S = 3,            /* duration of the flow */
    DET_EV_EXFIL_HISTORY_FLOWS = 4,         /* earlier flows in the baseline */
    DET_EV_EXFIL_COUNT = 5
};

/*
 * Return the name of evidence slot INDEX of DETECTOR (an fv_detector),
 * such as "median_interval_s", or NULL for an unknown detector or slot.
 * The returned string is static.
 */
const char *det_evidence_name(int detector, unsigned index);

#endif /* FV_DETECT_H */
