/*
 * workers.h: `--workers N` for ingest and capture.
 *
 * N worker threads each own a capture engine (decoding, flow table,
 * protocol parsers) and receive the packets of a share of the flows,
 * chosen by a symmetric hash so both directions of a flow meet in one
 * worker. Each worker hands the flows and metadata records it extracts,
 * still raw, through a bounded single-producer single-consumer queue to
 * the calling thread, the writer. The writer replays them into the
 * pipeline's sink (policy gate, pseudonymization, minimization, LMDB,
 * aggregates) and runs the periodic work (commit, rotation, sweep,
 * evaluation) between records. The pipeline hands the stored flow and
 * DNS records on to the detector thread (detect_thread.h).
 *
 *   files: reader thread --frames by cap_flow_hash--> worker engines
 *   live:  one PACKET_FANOUT socket per worker      --> worker engines
 *          worker engines --raw records--> writer (pipeline sink, store)
 *          writer --pseudonymized records--> detector thread
 *
 * The queues are msg_ring.h rings; a thread with nothing to do sleeps on
 * a wait_point.h futex. While reading files the reader and the workers
 * run at a lower priority than the writer (workers.c,
 * lower_thread_priority).
 *
 * Pseudonymization stays on the writer: every pseudonym is computed on
 * one thread under one epoch key, so a key rotation needs no barrier and
 * no record mixes epochs. Workers call into the pipeline only for the
 * per-packet exclusion decision (fv_pipeline_host_excluded), under the
 * policy read lock.
 *
 * Queues: files never lose data (the reader and the workers wait for
 * space). Live capture never blocks the kernel ring: a worker whose queue
 * to the writer is full drops the record and counts it in the capture
 * counter "queue_dropped_records"; packets the kernel could not hand over
 * are counted by libpcap (pcap_dropped).
 */
#ifndef FV_WORKERS_H
#define FV_WORKERS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "capture.h"
#include "pipeline.h"

/* Most worker threads accepted; the command line also caps N at the
 * number of online CPUs. */
#define FV_WORKERS_MAX 64

/* Called on the writer thread about once a second (wall clock) with the
 * pipeline's current time, between records: commit, reload, counters. */
typedef void (*fv_workers_periodic_fn)(void *ctx, uint64_t now_us);

/* Result of one file of fv_workers_run_files. */
typedef struct fv_workers_file_result {
    int rc;                 /* cap_read_file_frames' return */
    bool opened;            /* the reader began the file (false after an earlier stop) */
    bool stopped;           /* the stop flag was set when the read returned, so the
                             * file may not have been read to its end */
    /* Packets the workers' engines counted for this file, as
     * cap_stats.packets counts them: frames of excluded hosts are left
     * out, so this equals what a single engine counts for the file. */
    uint64_t packets;
    char err[1024];         /* message when rc is not FV_OK */
} fv_workers_file_result;

/*
 * Read PATHS (NPATHS capture files, "-" for standard input) in order on
 * a reader thread with BPF as filter, spread the frames over WORKERS
 * engines and store what they extract through P's sink on the calling
 * thread. Expiry runs in every engine at the packet times a single
 * engine would run it. STOP is polled between frames. RESULTS (NPATHS
 * entries) receive each file's outcome. PERIODIC may be NULL. The
 * engines are flushed before return, so every flow of the input reached
 * the sink. Returns FV_OK, or FV_ERR_NOMEM when the threads or queues
 * could not be created (nothing was read then).
 */
int fv_workers_run_files(fv_pipeline *p, unsigned workers, char *const *paths, int npaths,
                         const char *bpf, volatile sig_atomic_t *stop,
                         fv_workers_file_result *results, fv_workers_periodic_fn periodic,
                         void *periodic_ctx);

/* Options of fv_workers_run_live beyond cap_live_options. */
typedef struct fv_workers_live {
    unsigned workers;
    /* Called once on the writer thread after every worker opened its
     * socket, before any packet is read (to drop privileges). An error
     * stops every worker. May be NULL. */
    int (*after_all_open)(void *ctx, char *err, size_t err_len);
    void *after_all_open_ctx;
    /* Each worker drops its capability bounding set once its sockets
     * are open (where it may). After after_all_open succeeded, it also
     * clears every capability and sets no_new_privs. Linux keeps these
     * per thread, so a privilege drop on the writer does not reach them. */
    bool clear_worker_capabilities;
    fv_workers_periodic_fn periodic;
    void *periodic_ctx;
} fv_workers_live;

/*
 * Capture live with LIVE->workers threads until *BASE->stop. Each worker
 * opens its own socket on every interface of BASE, and the sockets of
 * one interface share a PACKET_FANOUT group (id derived from the process
 * id). BASE->tick, after_open and fanout_group are replaced (the writer
 * runs LIVE->periodic); BASE->iface_stats is called on the writer with
 * the sums over the workers. Returns FV_OK or the first error, with its
 * message in ERR.
 */
int fv_workers_run_live(fv_pipeline *p, const cap_live_options *base,
                        const fv_workers_live *live, char *err, size_t err_len);

#endif /* FV_WORKERS_H */
