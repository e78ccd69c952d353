/*
 * pipeline.h: the capturing process's data path.
 *
 * Wires capture events through the policy gate and anonymize/ into
 * store/ and detect/:
 *
 *   cap_engine --events--> pipeline --pseudonymized records--> store
 *                                    \--flow records--> det_engine --alerts--> store
 *
 * This is the only place where raw identifiers (from capture) meet the
 * pseudonymization key; nothing after it sees a raw identifier.
 *
 * Caveats
 * - One pipeline per capturing process. Its sinks, ticks and reloads
 *   run on one thread (the writer). With worker threads (workers.h)
 *   only fv_pipeline_host_excluded is called from the workers, under
 *   fv_pipeline_policy_read_lock, and the detectors run behind the
 *   writer on a thread of their own (detect_thread.h).
 * - Time: when fixed_now_us is non-zero every stored-at time and every
 *   rotation, sweep and evaluation uses it (tests and replays);
 *   otherwise the wall clock.
 */
#ifndef FV_PIPELINE_H
#define FV_PIPELINE_H

#include <signal.h>
#include <stdint.h>

#include "anonymize.h"
#include "capture.h"
#include "detect.h"
#include "policy.h"
#include "store.h"

typedef struct fv_pipeline {
    pol_policy *policy;
    anon_ctx *anon;
    store_env *store;
    det_engine *detect;
    cap_engine *capture;
    uint64_t fixed_now_us;      /* 0 = wall clock */
    uint64_t last_sweep_us;
    uint64_t last_evaluate_us;
    uint64_t records[FV_CLASS_COUNT];   /* stored by this process */
    int failed_rc;              /* first store error, FV_OK if none */
    cap_stats counters_saved;   /* capture counters already added to the store */
    /* Per-zone counts of monitored and aggregate-mode flows (aggregate.h). */
    struct fv_aggregator *aggregates;
    /* MACs and DHCP host names of internal hosts, for policy groups that
     * match by MAC or host name (hostmap.h); wiped on key rotation. */
    struct fv_hostmap *hosts;
    /* host_mode decisions cached per address and frame MAC for the span
     * of time they hold (pipeline.c), or NULL to decide every time.
     * Guarded like hosts. */
    struct fv_decision_cache *decisions;
    /* Time of the last audited sweep that deleted nothing (once a day). */
    uint64_t last_quiet_sweep_audit_us;
    /* Raw address to current pseudonym of each internal host the
     * detectors saw in this key epoch (seenhosts.h), so a rotation can
     * move their state to the new pseudonyms; wiped on rotation. */
    struct fv_seenhosts *seen_hosts;
    /* DNS, TLS and HTTP records dropped because a name lies under a
     * never-record suffix (indexed by fv_class), not yet added to the
     * store's "names_never_recorded_<class>" counters. */
    uint64_t names_never_recorded[FV_CLASS_COUNT];
    /* Key escrow writer, NULL unless the policy enables escrow. */
    struct fv_escrow *escrow;
    /* Export destinations of the policy's export section
     * (pipeline_export.h), NULL when it has none. */
    struct fv_export_set *exports;
    /* Indicator lists matched on raw records (indicators_hook.h), NULL
     * when the policy names none. */
    struct fv_indicator_hook *indicators;
    /* Locks for a run with worker threads; NULL when single-threaded. */
    struct fv_pipeline_sync *sync;
    /* With worker threads: the thread that runs the detectors behind the
     * writer (detect_thread.h), started at the first record, or NULL. */
    struct fv_detect_thread *detect_thread;
    bool detect_thread_failed;  /* it could not start: detect inline */
    /* Capture counters summed over the worker threads' engines
     * (workers.c), which fv_pipeline_stats returns instead of the
     * pipeline engine's once worker_stats_valid is set. Written on the
     * writer thread only. */
    cap_stats worker_stats;
    bool worker_stats_valid;
    /* A retention sweep that ran out of its per-tick time budget: it
     * continues on the next tick, and sweep_sum adds up what its calls
     * deleted so the sweep gets one audit entry when it completes. */
    bool sweep_pending;
    struct store_sweep_result sweep_sum;
    /* Count of records stored, alerts and policy reloads, and its value
     * and the time at the end of the last forced tick, so that
     * fv_pipeline_close can skip a forced tick that would repeat it. */
    uint64_t activity;
    uint64_t activity_at_forced_tick;
    uint64_t forced_tick_us;
    bool forced_tick_done;
    /* An ingest stopped by a signal: open flows and partial aggregates
     * are dropped instead of flushed, because the resume reads the files
     * again and stores them whole. Flushing them would store a cut flow
     * that the resume, which skips only identical records, stores again
     * in full. */
    bool discard_open;
    /* Set by ingest. Only a forced tick then evaluates the detectors and
     * saves their state, so they judge the whole input once, as for one
     * file. The other ticks run at clock times unrelated to the packet
     * times of the files, and an evaluation there would judge beacons on
     * part of the input and close every open baseline hour. A forced
     * tick with discard_open set does neither, because the resume
     * observes every record again.
     * NOTE: alerts queue in the detectors until then, with bounds per
     * detector (docs/DETECTION.md, "Limits"); the ones past them are lost. */
    bool detect_at_end_only;
    /* Set by ingest when a file could not be read to its end, the
     * worker threads did not start or the store stopped taking records,
     * and a checkpoint keeps the run for a resume. The final tick then
     * neither evaluates the detectors nor saves their state, as after a
     * stop, because the resume feeds them every record of the input. */
    bool input_incomplete;
    /* Set by ingest of files, which a checkpoint makes resumable. A
     * store error during the final tick then skips the detector state
     * save, so that the resume evaluates again (fv_pipeline_tick). */
    bool input_resumable;
    /* Set by ingest when it resumes a run whose interrupted attempt
     * saved the detector state (store_run_info.detect_saved): the state
     * loaded at open already contains this input. No record then reaches
     * the detectors, no tick evaluates them, and their state is saved
     * again only if a key rotation re-keyed it (detect_rekeyed). */
    bool detect_input_saved;
    bool detect_rekeyed;        /* a key rotation moved the detector state */
    bool detstate_loaded;       /* fv_pipeline_open restored a saved state */
    /* Called on the writer thread after each commit of the store, by
     * the commit line hook (checkpoint.c); NULL for none. ingest logs
     * the counters there for a SIGUSR1 while it reads a long file. */
    void (*after_commit)(const struct fv_pipeline *p);
} fv_pipeline;

/*
 * Open the policy, the store in DB_DIR (read-write), the key file
 * DB_DIR/pseudonym.key, the detectors and the capture engine. Writes the
 * policy's retention limits into the store. Returns FV_OK or an error
 * with a message in ERR.
 */
int fv_pipeline_open(fv_pipeline *p, const char *policy_path, const char *db_dir,
                     uint64_t fixed_now_us, char *err, size_t err_len);

/* Current time for this pipeline (fixed or wall clock). */
uint64_t fv_pipeline_now_us(const fv_pipeline *p);

/*
 * Periodic work at NOW_US: rotate the key when due, evaluate detectors
 * (at most once a minute unless FORCE), sweep when the policy's interval
 * has passed (or FORCE), save the detectors' state after a sweep, and
 * commit. With detect_at_end_only, only FORCE evaluates and saves, and
 * not when discard_open or input_incomplete is set. With
 * detect_input_saved nothing is evaluated, and FORCE saves the state
 * only after a re-keying. Returns the first error.
 */
int fv_pipeline_tick(fv_pipeline *p, uint64_t now_us, bool force);

/*
 * Compare the policy's hash with the one last recorded in the store
 * (meta "policy/hash"). When they differ, append a "policy.change" audit
 * entry with params "old=<hex16> new=<hex16>" and, when OLD_POLICY is
 * given, pol_diff_summary as the reason, then record the new hash.
 * Failures are logged, not returned: they must not stop capture.
 */
void fv_pipeline_record_policy(fv_pipeline *p, const pol_policy *old_policy, uint64_t now_us);

/*
 * Parse POLICY_PATH and, if it is valid, make it the running policy:
 * update the retention limits and the sweep interval in the store and
 * record the change. An invalid file is logged and the running policy
 * stays. Call between packets (from the tick). Returns FV_OK or the
 * parse error.
 * The indicator lists of detect.indicators are read again; when one
 * cannot be read, the running lists stay.
 * NOTE: the capture filter, the key rotation period and the other
 * detector settings were fixed at start and only change on restart.
 */
int fv_pipeline_reload(fv_pipeline *p, const char *policy_path, uint64_t now_us);

/* Flush open flows, evaluate detectors, commit and close everything.
 * Returns the first error seen during the pipeline's life. */
int fv_pipeline_close(fv_pipeline *p);

/* The BPF filter for capture: the policy's exclusions combined with the
 * user's USER_FILTER (may be NULL). Returns FV_OK or FV_ERR_FULL. */
int fv_pipeline_filter(const fv_pipeline *p, const char *user_filter, char *out, size_t out_len);

/*
 * Like fv_pipeline_filter, with the groups excluded at NOW_US: their
 * subnets and, when LINK_HAS_MAC, their MACs as "ether host" terms.
 * Host-name groups are enforced in the capturing process only.
 */
int fv_pipeline_filter_at(const fv_pipeline *p, const char *user_filter, bool link_has_mac,
                          uint64_t now_us, char *out, size_t out_len);

/* Pass FLOW from a source other than the capture engine (`flowveil
 * collect`) through the same policy gate, pseudonymization, storage and
 * detectors as a captured flow. Its addresses and MACs are raw. */
void fv_pipeline_flow(fv_pipeline *p, const cap_flow *flow);

/*
 * Prepare P for worker threads: from here on the host map is locked and
 * a policy reload waits for fv_pipeline_policy_read_lock holders.
 * Returns FV_OK or FV_ERR_NOMEM. fv_pipeline_close frees the locks.
 */
int fv_pipeline_threads_enable(fv_pipeline *p);

/* Hold the running policy in place (no reload can swap it) until the
 * matching unlock. No-ops without fv_pipeline_threads_enable. */
void fv_pipeline_policy_read_lock(fv_pipeline *p);
void fv_pipeline_policy_read_unlock(fv_pipeline *p);

/* A decision cache of one worker thread: created by the worker set,
 * used only by its worker, wiped when destroyed. */
FV_NODISCARD int fv_pipeline_decisions_create(struct fv_decision_cache **out);
void fv_pipeline_decisions_destroy(struct fv_decision_cache **cache);

/* Decide packet exclusion as the pipeline's own engine does, for the
 * engine of a worker thread, with the worker's CACHE (or NULL to decide
 * through the writer's cache under its lock). Returns true when the host
 * at ADDR is excluded for traffic at TRAFFIC_US. MAC is the frame's MAC
 * of ADDR, or NULL. */
bool fv_pipeline_host_excluded(fv_pipeline *p, struct fv_decision_cache *cache,
                               const cap_ip *addr, const uint8_t *mac, uint64_t traffic_us);

/* The sink that the pipeline's engine feeds (policy gate,
 * pseudonymization, storage, detectors), for events that worker threads
 * extracted and the writer thread replays in order per worker. */
void fv_pipeline_sink(fv_pipeline *p, cap_sink *out);

/* The capture counters: the workers' engines summed after a run with
 * workers, else the pipeline's own engine. */
void fv_pipeline_stats(const fv_pipeline *p, cap_stats *out);

#endif /* FV_PIPELINE_H */
