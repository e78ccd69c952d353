/*
 * detect_thread.h: the detectors on a thread of their own, for runs with
 * worker threads (workers.h).
 *
 * With --workers the writer thread is the slowest stage: it runs the
 * policy gate, pseudonyms, aggregates, record encryption, the LMDB
 * writes and the detectors. The detectors read only the pseudonymized
 * flow and DNS records the writer has just stored, and they raise
 * alerts only when asked (det_evaluate), so they can run behind the
 * writer. The writer copies each record into a bounded queue and the
 * detector thread replays it into det_observe_flow or det_observe_dns,
 * in the writer's order.
 *
 * Everything else that touches the engine (evaluation, rekeying after a
 * key rotation, saving its state, destroying it) stays on the writer,
 * after fv_detect_thread_sync has waited until the detector thread
 * replayed every queued record. The engine therefore sees the same
 * calls in the same order as without the thread, and raises the same
 * alerts.
 *
 * The queue holds pseudonymized records only, never a raw address.
 */
#ifndef FV_DETECT_THREAD_H
#define FV_DETECT_THREAD_H

#include "detect.h"
#include "fv_common.h"

typedef struct fv_detect_thread fv_detect_thread;

/* Start a thread that replays queued records into ENGINE. The thread
 * inherits the caller's credentials, so start it after a privilege
 * drop. Returns FV_OK or FV_ERR_NOMEM (no memory or no thread). */
FV_NODISCARD int fv_detect_thread_start(det_engine *engine, fv_detect_thread **out);

/* Queue a copy of a record for det_observe_flow or det_observe_dns.
 * Waits while the queue is full. */
void fv_detect_thread_flow(fv_detect_thread *t, const fv_flow_record *flow);
void fv_detect_thread_dns(fv_detect_thread *t, const fv_dns_record *dns);

/* Wait until every queued record was replayed. Until the next queued
 * record the engine is the caller's. Accepts NULL. */
void fv_detect_thread_sync(fv_detect_thread *t);

/* Replay what is queued, end the thread and free it; sets *T to NULL.
 * Accepts NULL and a NULL *T. */
void fv_detect_thread_stop(fv_detect_thread **t);

#endif /* FV_DETECT_THREAD_H */
