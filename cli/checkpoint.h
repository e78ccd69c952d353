/*
 * checkpoint.h: commit reports and resumable runs of `flowveil ingest`
 * and `flowveil capture` (checkpoint.c; the store side is
 * store/store_checkpoint.c).
 *
 * Both commands log a line on stderr after a commit of records: the
 * first commit, then at most one every 10 seconds, and the last one
 * before the exit summary. With -v every commit gets a line:
 *
 *   flowveil: notice: committed N records up to packet P: flows=.. dns=.. ...
 *
 * N and the per-class counts are the records on disk; for a resumed
 * ingest they include what the interrupted attempts committed. P counts
 * the packets this process has processed (cap_stats.packets, so without
 * those of excluded hosts), like the per-file lines and the exit summary
 * of ingest. With --workers, P is the sum the
 * workers last published: they publish after about every 4096 packets read
 * from files, about once a second in live capture, and when they end. The
 * writer collects the sums after every 4096 records and once a second.
 * Alerts are left out, because a resumed ingest may raise one again and
 * the alert life cycle merges it.
 */
#ifndef FV_CHECKPOINT_H
#define FV_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

/* Log a line after each commit of P's store (see above): the first one
 * and then one every 10 seconds at notice level, the others at info
 * level. */
void fv_checkpoint_log_commits(fv_pipeline *p);

/* Print the last commit line that was logged at info level only, if any,
 * at notice level, so that the log ends with the state of the store. */
void fv_checkpoint_log_pending(void);

/*
 * Start the resumable ingest of the COUNT capture files FILES read with
 * FILTER (may be NULL): the run id hashes the filter and each file's
 * identity (size, inode, modification time and its first and last 64 KiB),
 * so the same files in the same order resume the same run.
 * If an interrupted ingest of them left a checkpoint, the records it
 * committed are skipped when the files are read again, and an
 * "ingest.resume" audit entry by ACTOR is appended. Standard input ("-") cannot
 * be read twice, so a run that reads it has no checkpoint. Also starts
 * the commit lines. Returns FV_OK or an error with a message in ERR.
 */
int fv_checkpoint_begin(fv_pipeline *p, const char *actor, char *const *files, int count,
                        const char *filter, char *err, size_t err_len);

/*
 * End the run. COMPLETE (every file read to its end and every record
 * stored) deletes the checkpoint in the transaction that writes the
 * last records, the counters the run held and the audit entry FINAL.
 * Otherwise the checkpoint stays for a resume, which counts the input
 * then. Returns true if FINAL was written; the caller appends it
 * otherwise (no checkpoint, run not complete, or a failed commit).
 */
bool fv_checkpoint_end(fv_pipeline *p, bool complete, bool resumable,
                       const store_audit_entry *final);

/* Apply the policy's retention.max_store_size to P's store (no quota
 * when unset). Returns FV_OK or an error with a message in ERR.
 * NOTE: a changed quota takes effect at the next start, not on SIGHUP. */
int fv_store_quota_apply(fv_pipeline *p, char *err, size_t err_len);

#endif /* FV_CHECKPOINT_H */
