/*
 * workers.c: worker threads for `--workers N`. See workers.h for the
 * design and the drop rules.
 */
#include "workers.h"
#include "msg_ring.h"

#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

/* Bytes of records queued from one worker to the writer. A flow takes
 * 192 bytes and a DNS message usually well under 1 KB (event_put_dns),
 * so this has room for several thousand records. */
#define EVENT_RING_BYTES (2u * 1024u * 1024u)

/* Bytes of frames queued from the file reader to one worker: room for
 * at least two frames of libpcap's largest snap length (262144 bytes). */
#define FRAME_RING_BYTES (8u * 1024u * 1024u)

/* How much the file reader and the file workers lower their priority
 * (see lower_thread_priority). */
#define FILE_THREAD_NICE 10

/* Frames a worker processes per hold of the policy read lock. */
#define WORKER_BATCH 64u

/* Records the writer replays from one worker before it visits the next,
 * so one busy worker cannot starve the others' queues. */
#define WRITER_BATCH 256u

/* A worker wakes a sleeping writer once per this many records (a power
 * of two), and whenever it is about to wait itself. */
#define EVENT_WAKE_BATCH 64u

/* The file reader wakes a sleeping worker once this many bytes of frames
 * were queued for it since the last wake-up. */
#define FRAME_WAKE_BYTES (256u * 1024u)

/* How often the periodic callback runs on the writer. */
#define PERIODIC_INTERVAL_US 1000000u

/* ---- record queue: one worker to the writer ----------------------------- */

typedef enum event_type {
    EVENT_FLOW,
    EVENT_DNS,
    EVENT_TLS,
    EVENT_HTTP,
    EVENT_DHCP,
    EVENT_SSH,
    /* Files: the boundary before or after an expiry run (see
     * worker_expire). Carries no record. */
    EVENT_MARK,
} event_type;

/* The longest DNS message in the record queue's encoding (event_put_dns),
 * header included. */
#define EVENT_DNS_MAX                                                                   \
    (sizeof(msg_header) + offsetof(cap_dns, questions) +                                \
     FV_DNS_QUESTIONS_MAX * (4u + FV_NAME_MAX) + 3u + FV_DNS_ADDRS_MAX * (4u + 16u) +   \
     FV_DNS_CNAMES_MAX * FV_NAME_MAX + 8u)

/* ---- frame queue: the file reader to one worker ------------------------- */

typedef enum frame_kind {
    FRAME_PACKET = 1,   /* a frame for cap_engine_packet */
    FRAME_EXPIRE,       /* run cap_engine_expire at ts_us */
    FRAME_END,          /* input ended: flush and stop */
    FRAME_BARRIER,      /* packet time went backwards: start a new section */
    FRAME_FILE_END,     /* the reader finished a file: count its packets */
} frame_kind;

/* The payload of a frame message: this, then CAPLEN bytes of frame. */
typedef struct frame_info {
    int32_t linktype;
    uint32_t caplen;
    uint32_t wirelen;
    uint32_t pad;
    uint64_t ts_us;
} frame_info;

typedef struct worker_set worker_set;

/* Most of the padding comes from the cache-line-aligned ring indexes;
 * the field order groups what each thread touches, so it is kept. */
typedef struct worker {  // NOLINT(clang-analyzer-optin.performance.Padding)
    worker_set *set;
    unsigned index;
    pthread_t thread;
    bool started;
    cap_engine *engine;
    /* This worker's policy decisions per address, read without a lock
     * (fv_pipeline_host_excluded). */
    struct fv_decision_cache *decisions;
    msg_ring frames;        /* files only: frames from the reader */
    msg_ring events;        /* records to the writer */
    uint64_t frames_unannounced;    /* reader only: bytes queued since the last wake-up */
    uint64_t events_published;      /* worker only: records queued, for the wake-ups */
    /* Worker only: the FRAME_FILE_ENDs consumed, which is the index of
     * the file being read, and the engine's packet count at the last one. */
    int files_ended;
    uint64_t packets_at_file_start;

    /* Live: drop records when the queue is full (never wait). Cleared for
     * the final flush, when capture has stopped. */
    atomic_bool drop_when_full;
    atomic_uint_fast64_t dropped_records;
    /* The worker holds the policy read lock while processing a batch and
     * lets go of it while it waits for queue space. */
    bool holds_policy;

    /* Counters published for the writer (fv_pipeline_stats), and live
     * per-interface libpcap counters (received, dropped, interface
     * dropped) of this worker's sockets. */
    pthread_mutex_t stats_lock;
    cap_stats stats;
    uint64_t iface_counts[CAP_LIVE_MAX_IFACES][3];

    bool opened;            /* live: the socket is open (guarded by start_lock) */
    uint64_t marks_replayed;    /* EVENT_MARKs the writer consumed (writer only) */
    /* Writer only: the record DNS messages are restored into, and how
     * many questions, A, AAAA and CNAME entries the previous one used. */
    cap_dns dns;
    uint8_t dns_used[4];
    atomic_bool done;       /* engine flushed, no more records */
    int rc;
    char err[1024];
} worker;

struct worker_set {
    fv_pipeline *pipeline;
    unsigned count;
    worker *workers;
    volatile sig_atomic_t *stop;
    /* The writer waits here for records; workers wake it. */
    wait_point writer_wait;

    /* Files: the reader thread, which the writer signals to cut short a
     * read that waits on a pipe once a stop was requested. */
    pthread_t reader;
    /* Files: the caller's results, one per file. Workers add the packets
     * of each file with atomic adds; the caller reads them after the join. */
    fv_workers_file_result *file_results;
    atomic_bool reader_running;
    /* Files: set by the reader before its FRAME_END when it read every
     * file to its end (or to a cut-short last record) without a stop.
     * A stop after that has nothing to cut short, so the workers flush
     * their open flows, as the caller then completes the run. */
    atomic_bool input_complete;
    /* Files: standard input is among the inputs. No resume can read it
     * again, so after a stop the workers store their open flows too. */
    bool flush_on_stop;
    uint64_t stop_forwarded_us;     /* writer only: 0 until the first forward */

    /* Live start-up: workers report an open socket and wait for go. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    unsigned opened;
    unsigned failed;
    bool go;
    bool abort_start;
    bool clear_worker_capabilities;
    cap_live_options live;
    /* Live: the stop flag the workers poll, raised by the writer when the
     * caller's stop flag is set or a worker failed. */
    volatile sig_atomic_t stop_all;
    bool live_mode;
    /* The caller's per-interface counter hook, run on the writer with
     * the sums over the workers. */
    void (*iface_stats)(void *ctx, size_t index, const char *iface, uint64_t received,
                        uint64_t dropped, uint64_t if_dropped);
    void *iface_stats_ctx;
};

/* ---- worker side: the engine's sink ------------------------------------ */

static void worker_publish_stats(worker *w)
{
    cap_stats st;
    cap_engine_stats(w->engine, &st);
    st.queue_dropped_records = atomic_load_explicit(&w->dropped_records, memory_order_relaxed);
    pthread_mutex_lock(&w->stats_lock);
    w->stats = st;
    pthread_mutex_unlock(&w->stats_lock);
}

/* Reserve MAX bytes for a record, or return NULL after counting a drop
 * (live) when the queue is full. Files wait for the writer. */
static uint8_t *event_reserve(worker *w, size_t max)
{
    msg_ring *r = &w->events;
    uint8_t *msg;
    bool released = false;

    while ((msg = msg_ring_try_reserve(r, max)) == NULL) {
        /* NOTE: no test fills this queue, so the drop path is checked by
         * reading only. */
        if (atomic_load_explicit(&w->drop_when_full, memory_order_relaxed)) {
            atomic_fetch_add_explicit(&w->dropped_records, 1, memory_order_relaxed);
            return NULL;
        }
        /* Let a policy reload through while this worker waits. */
        if (w->holds_policy) {
            fv_pipeline_policy_read_unlock(w->set->pipeline);
            w->holds_policy = false;
            released = true;
        }
        wait_wake(&w->set->writer_wait);
        msg_ring_wait_space(r, max);
    }
    if (released) {
        fv_pipeline_policy_read_lock(w->set->pipeline);
        w->holds_policy = true;
    }
    return msg;
}

/* Queue the record of TYPE that event_reserve's MSG holds: SIZE bytes
 * with the header. */
static void event_publish(worker *w, uint8_t *msg, event_type type, size_t size)
{
    (void)msg_ring_publish(&w->events, msg, type, size);
    if ((++w->events_published & (EVENT_WAKE_BATCH - 1)) == 0)
        wait_wake(&w->set->writer_wait);
}

/* Queue a record that is copied as it is. */
static void event_put(worker *w, event_type type, const void *record, size_t len)
{
    uint8_t *msg = event_reserve(w, sizeof(msg_header) + len + 8u);
    if (msg == NULL)
        return;
    memcpy(msg + sizeof(msg_header), record, len);
    event_publish(w, msg, type, sizeof(msg_header) + len);
}

static uint8_t dns_count(uint8_t count, unsigned max)
{
    return count > max ? (uint8_t)max : count;
}

/* Queue DNS: the fields before the arrays as they are, then only the
 * used array entries, names without their unused bytes. A message of
 * 3.5 KB usually takes a few hundred bytes; dns_get restores it. */
static void event_put_dns(worker *w, const cap_dns *dns)
{
    uint8_t *msg = event_reserve(w, EVENT_DNS_MAX);
    if (msg == NULL)
        return;
    uint8_t *out = msg_put(msg + sizeof(msg_header), dns, offsetof(cap_dns, questions));
    uint8_t nq = dns_count(dns->question_count, FV_DNS_QUESTIONS_MAX);
    for (uint8_t i = 0; i < nq; i++) {
        out = msg_put(out, &dns->questions[i].qtype, sizeof dns->questions[i].qtype);
        out = msg_put(out, &dns->questions[i].qclass, sizeof dns->questions[i].qclass);
        out = msg_put_name(out, dns->questions[i].name, FV_NAME_MAX);
    }
    uint8_t na = dns_count(dns->a_count, FV_DNS_ADDRS_MAX);
    uint8_t naaaa = dns_count(dns->aaaa_count, FV_DNS_ADDRS_MAX);
    uint8_t ncname = dns_count(dns->cname_count, FV_DNS_CNAMES_MAX);
    *out++ = na;
    *out++ = naaaa;
    *out++ = ncname;
    out = msg_put(out, dns->a, na * sizeof dns->a[0]);
    out = msg_put(out, dns->aaaa, naaaa * sizeof dns->aaaa[0]);
    for (uint8_t i = 0; i < ncname; i++)
        out = msg_put_name(out, dns->cnames[i], FV_NAME_MAX);
    event_publish(w, msg, EVENT_DNS, (size_t)(out - msg));
}

static bool worker_is_excluded_host(void *ctx, const cap_ip *addr, const uint8_t *mac)
{
    worker *w = ctx;
    fv_pipeline *p = w->set->pipeline;
    uint64_t ts_us = cap_engine_packet_time_us(w->engine);

    /* File workers already hold the policy for their whole batch. */
    if (w->holds_policy)
        return fv_pipeline_host_excluded(p, w->decisions, addr, mac, ts_us);
    fv_pipeline_policy_read_lock(p);
    bool excluded = fv_pipeline_host_excluded(p, w->decisions, addr, mac, ts_us);
    fv_pipeline_policy_read_unlock(p);
    return excluded;
}

static void worker_on_flow(void *ctx, const cap_flow *flow)
{
    event_put(ctx, EVENT_FLOW, flow, sizeof *flow);
}

static void worker_on_dns(void *ctx, const cap_dns *dns)
{
    event_put_dns(ctx, dns);
}

static void worker_on_tls(void *ctx, const cap_tls *tls)
{
    event_put(ctx, EVENT_TLS, tls, sizeof *tls);
}

static void worker_on_http(void *ctx, const cap_http *http)
{
    event_put(ctx, EVENT_HTTP, http, sizeof *http);
}

static void worker_on_dhcp(void *ctx, const cap_dhcp *dhcp)
{
    event_put(ctx, EVENT_DHCP, dhcp, sizeof *dhcp);
}

static void worker_on_ssh(void *ctx, const cap_ssh *ssh)
{
    event_put(ctx, EVENT_SSH, ssh, sizeof *ssh);
}

/* ---- set up and tear down ---------------------------------------------- */

/* Log each worker's share of the packets, so an uneven spread (few large
 * flows, or one dominant host pair) is visible. */
static void log_worker_totals(worker_set *set)
{
    for (unsigned i = 0; i < set->count; i++) {
        worker *w = &set->workers[i];
        pthread_mutex_lock(&w->stats_lock);
        cap_stats st = w->stats;
        pthread_mutex_unlock(&w->stats_lock);
        /* Only live capture drops records for a full queue: file workers
         * wait for room instead. */
        if (set->file_results != NULL)
            fv_notice("worker %u: %llu packets, %llu flows", i,
                      (unsigned long long)st.packets, (unsigned long long)st.flows_emitted);
        else
            fv_notice("worker %u: %llu packets, %llu flows, %llu records dropped for a full "
                      "queue",
                      i, (unsigned long long)st.packets, (unsigned long long)st.flows_emitted,
                      (unsigned long long)st.queue_dropped_records);
    }
}

static void workers_destroy(worker_set *set)
{
    for (unsigned i = 0; i < set->count; i++) {
        worker *w = &set->workers[i];
        cap_engine_destroy(&w->engine);
        fv_pipeline_decisions_destroy(&w->decisions);
        msg_ring_free(&w->events);
        msg_ring_free(&w->frames);
        /* The last DNS message replayed, with raw addresses and names. */
        sodium_memzero(&w->dns, sizeof w->dns);
        pthread_mutex_destroy(&w->stats_lock);
    }
    free(set->workers);
    set->workers = NULL;
    pthread_cond_destroy(&set->start_cond);
    pthread_mutex_destroy(&set->start_lock);
}

/* Create COUNT workers with engines whose flow-table bounds add up to the
 * default single-engine bound. FILES: workers get a frame queue and leave
 * expiry to the reader. */
static int workers_create(worker_set *set, fv_pipeline *p, unsigned count, bool files,
                          volatile sig_atomic_t *stop)
{
    memset(set, 0, sizeof *set);
    set->pipeline = p;
    set->stop = stop;
    wait_point_init(&set->writer_wait);
    atomic_init(&set->reader_running, false);
    atomic_init(&set->input_complete, false);
    pthread_mutex_init(&set->start_lock, NULL);
    pthread_cond_init(&set->start_cond, NULL);
    set->workers = calloc(count, sizeof *set->workers);
    if (set->workers == NULL)
        return FV_ERR_NOMEM;
    set->count = count;

    /* NOTE: 1,000,000 is the engine's documented default bound
     * (cap_config.max_flows); the workers share it. They also share the
     * memory bound of the pipeline's engine (--flow-memory), at least
     * CAP_MEMORY_MIN_BYTES each. */
    cap_config config = {.max_flows = 1000000u / count, .expire_by_caller = files};
    cap_memory pipeline_memory;
    cap_engine_memory(p->capture, &pipeline_memory);
    config.max_memory_bytes = pipeline_memory.limit_bytes / count;
    if (config.max_memory_bytes < CAP_MEMORY_MIN_BYTES)
        config.max_memory_bytes = CAP_MEMORY_MIN_BYTES;
    for (unsigned i = 0; i < count; i++) {
        worker *w = &set->workers[i];
        w->set = set;
        w->index = i;
        pthread_mutex_init(&w->stats_lock, NULL);
        atomic_init(&w->drop_when_full, !files);
        atomic_init(&w->dropped_records, 0);
        atomic_init(&w->done, false);

        cap_sink sink = {
            .ctx = w,
            .is_excluded_host = worker_is_excluded_host,
            .on_flow = worker_on_flow,
            .on_dns = worker_on_dns,
            .on_tls = worker_on_tls,
            .on_http = worker_on_http,
            .on_dhcp = worker_on_dhcp,
            .on_ssh = worker_on_ssh,
        };
        int rc = cap_engine_create(&config, &sink, &w->engine);
        if (rc == FV_OK)
            rc = fv_pipeline_decisions_create(&w->decisions);
        if (rc == FV_OK)
            rc = msg_ring_init(&w->events, EVENT_RING_BYTES);
        if (rc == FV_OK && files)
            rc = msg_ring_init(&w->frames, FRAME_RING_BYTES);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

/* Sum of the counters the workers published last (the pipeline's stats
 * source while workers run). */
static void workers_stats(void *ctx, cap_stats *out)
{
    worker_set *set = ctx;
    size_t count = 0;
    (void)cap_stats_names(&count);
    uint64_t sum[sizeof(cap_stats) / sizeof(uint64_t)] = {0};

    for (unsigned i = 0; i < set->count; i++) {
        worker *w = &set->workers[i];
        uint64_t one[sizeof(cap_stats) / sizeof(uint64_t)];
        pthread_mutex_lock(&w->stats_lock);
        memcpy(one, &w->stats, sizeof one);
        pthread_mutex_unlock(&w->stats_lock);
        for (size_t f = 0; f < count; f++)
            sum[f] += one[f];
    }
    memcpy(out, sum, sizeof *out);
}

/* ---- writer ------------------------------------------------------------ */

/* Restore event_put_dns's message at IN into W's writer-side record.
 * Entries past the counts that the previous message used are zeroed, so
 * the record equals the worker's entry for entry. */
static const cap_dns *dns_get(worker *w, const uint8_t *in)
{
    cap_dns *d = &w->dns;
    in = msg_get(in, d, offsetof(cap_dns, questions));
    uint8_t nq = dns_count(d->question_count, FV_DNS_QUESTIONS_MAX);
    for (uint8_t i = 0; i < nq; i++) {
        in = msg_get(in, &d->questions[i].qtype, sizeof d->questions[i].qtype);
        in = msg_get(in, &d->questions[i].qclass, sizeof d->questions[i].qclass);
        in = msg_get_name(in, d->questions[i].name, FV_NAME_MAX);
    }
    if (w->dns_used[0] > nq)
        memset(&d->questions[nq], 0, (w->dns_used[0] - nq) * sizeof d->questions[0]);
    d->a_count = *in++;
    d->aaaa_count = *in++;
    d->cname_count = *in++;
    uint8_t na = dns_count(d->a_count, FV_DNS_ADDRS_MAX);
    uint8_t naaaa = dns_count(d->aaaa_count, FV_DNS_ADDRS_MAX);
    uint8_t ncname = dns_count(d->cname_count, FV_DNS_CNAMES_MAX);
    in = msg_get(in, d->a, na * sizeof d->a[0]);
    if (w->dns_used[1] > na)
        memset(d->a[na], 0, (w->dns_used[1] - na) * sizeof d->a[0]);
    in = msg_get(in, d->aaaa, naaaa * sizeof d->aaaa[0]);
    if (w->dns_used[2] > naaaa)
        memset(d->aaaa[naaaa], 0, (w->dns_used[2] - naaaa) * sizeof d->aaaa[0]);
    for (uint8_t i = 0; i < ncname; i++)
        in = msg_get_name(in, d->cnames[i], FV_NAME_MAX);
    if (w->dns_used[3] > ncname)
        memset(d->cnames[ncname], 0, (w->dns_used[3] - ncname) * sizeof d->cnames[0]);
    w->dns_used[0] = nq;
    w->dns_used[1] = na;
    w->dns_used[2] = naaaa;
    w->dns_used[3] = ncname;
    return d;
}

/* Hand the record of TYPE at PAYLOAD (8-byte aligned, written by
 * memcpy of a record of that type) to SINK. */
static void replay_event(worker *w, const cap_sink *sink, uint32_t type, const uint8_t *payload)
{
    switch (type) {
    case EVENT_FLOW: sink->on_flow(sink->ctx, (const cap_flow *)(const void *)payload); break;
    case EVENT_DNS: sink->on_dns(sink->ctx, dns_get(w, payload)); break;
    case EVENT_TLS: sink->on_tls(sink->ctx, (const cap_tls *)(const void *)payload); break;
    case EVENT_HTTP: sink->on_http(sink->ctx, (const cap_http *)(const void *)payload); break;
    case EVENT_DHCP: sink->on_dhcp(sink->ctx, (const cap_dhcp *)(const void *)payload); break;
    case EVENT_SSH: sink->on_ssh(sink->ctx, (const cap_ssh *)(const void *)payload); break;
    default: break;
    }
}

/* Live: stop every worker once the caller's stop flag is set or one
 * worker ended on an error. */
static void propagate_stop(worker_set *set)
{
    bool stop = *set->stop != 0;
    for (unsigned i = 0; i < set->count && !stop; i++)
        stop = atomic_load_explicit(&set->workers[i].done, memory_order_acquire);
    /* cap_live_run_opts reads the flag with an atomic load. */
    if (stop)
        __atomic_store_n(&set->stop_all, 1, __ATOMIC_RELEASE);
}

/* Replay up to WRITER_BATCH queued records of W, stopping after an
 * EVENT_MARK. Returns how many events were consumed. */
static unsigned drain_worker(worker *w, const cap_sink *sink)
{
    msg_ring *r = &w->events;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = msg_ring_tail(r);
    unsigned n = 0;
    msg_header h;
    const uint8_t *payload;

    while (n < WRITER_BATCH && (payload = msg_ring_next(r, &head, tail, &h)) != NULL) {
        /* The next record's first lines load while this one is replayed. */
        __builtin_prefetch(r->buf + head % r->bytes);
        __builtin_prefetch(r->buf + head % r->bytes + 64);
        replay_event(w, sink, h.kind, payload);
        n++;
        /* Free the space at once, so a waiting worker resumes early. */
        msg_ring_consumed(r, head);
        if (h.kind == EVENT_MARK) {
            w->marks_replayed++;
            break;
        }
    }
    msg_ring_consumed(r, head);
    /* A worker waiting for room resumes once half the queue is free. */
    if (n > 0 && tail - head <= EVENT_RING_BYTES / 2)
        wait_wake(&r->space);
    return n;
}

static bool events_empty(worker *w)
{
    return msg_ring_empty(&w->events);
}

/* Files: once a stop was requested, signal the reader thread every 50 ms
 * until it ends, so that a read waiting on a pipe returns. A signal that
 * arrives just before the read starts would be missed, hence the
 * repeats. */
static void forward_stop(worker_set *set)
{
    if (!*set->stop || !atomic_load_explicit(&set->reader_running, memory_order_acquire))
        return;
    uint64_t now_us = fv_now_us();
    if (set->stop_forwarded_us != 0 && now_us - set->stop_forwarded_us < 50000u)
        return;
    set->stop_forwarded_us = now_us;
    (void)pthread_kill(set->reader, SIGINT);
}

/* Live: hand the per-interface libpcap counters, summed over the
 * workers' sockets, to the caller's hook. */
static void report_iface_stats(worker_set *set)
{
    if (!set->live_mode || set->iface_stats == NULL)
        return;
    size_t n_ifaces = set->live.n_ifaces > 0 ? set->live.n_ifaces : 1;
    if (n_ifaces > CAP_LIVE_MAX_IFACES)
        n_ifaces = CAP_LIVE_MAX_IFACES;
    for (size_t i = 0; i < n_ifaces; i++) {
        uint64_t sum[3] = {0, 0, 0};
        for (unsigned k = 0; k < set->count; k++) {
            worker *w = &set->workers[k];
            pthread_mutex_lock(&w->stats_lock);
            for (unsigned c = 0; c < 3; c++)
                sum[c] += w->iface_counts[i][c];
            pthread_mutex_unlock(&w->stats_lock);
        }
        const char *name = set->live.n_ifaces > 0 ? set->live.ifaces[i] : set->live.iface;
        set->iface_stats(set->iface_stats_ctx, i, name, sum[0], sum[1], sum[2]);
    }
}

/* Sleep until a worker in SECTION (see run_writer) queued a record or
 * ended, or the timeout passed. */
static void writer_wait_for_records(worker_set *set, uint64_t section)
{
    unsigned seq = wait_prepare(&set->writer_wait);
    unsigned finished = 0;
    for (unsigned i = 0; i < set->count; i++) {
        worker *w = &set->workers[i];
        bool done = atomic_load_explicit(&w->done, memory_order_acquire);
        bool empty = events_empty(w);
        if (w->marks_replayed == section && !empty) {
            wait_cancel(&set->writer_wait);
            return;
        }
        finished += done && empty;
    }
    if (finished == set->count)
        wait_cancel(&set->writer_wait);
    else
        wait_sleep(&set->writer_wait, seq);
}

/* Writer loop: replay every worker's records into the pipeline until all
 * workers are done and their queues are empty. Calls PERIODIC about once
 * a second. The pipeline's counters are the workers' sum from the start
 * and stay so after the workers end. */
static void run_writer(worker_set *set, fv_workers_periodic_fn periodic, void *periodic_ctx)
{
    fv_pipeline *p = set->pipeline;
    cap_sink sink;
    fv_pipeline_sink(p, &sink);
    workers_stats(set, &p->worker_stats);
    p->worker_stats_valid = true;
    uint64_t next_periodic_us = fv_now_us() + PERIODIC_INTERVAL_US;
    unsigned replayed_since_stats = 0;

    for (;;) {
        unsigned replayed = 0;
        unsigned finished = 0;
        /* Only workers in the earliest section are replayed. */
        uint64_t section = UINT64_MAX;
        for (unsigned i = 0; i < set->count; i++) {
            if (set->workers[i].marks_replayed < section)
                section = set->workers[i].marks_replayed;
        }
        for (unsigned i = 0; i < set->count; i++) {
            worker *w = &set->workers[i];
            /* Read done before the queue, so records published before
             * done was set are not missed. */
            bool done = atomic_load_explicit(&w->done, memory_order_acquire);
            if (w->marks_replayed == section)
                replayed += drain_worker(w, &sink);
            if (done && events_empty(w))
                finished++;
        }
        if (finished == set->count)
            break;
        /* The commit lines report the packets processed (checkpoint.h). */
        replayed_since_stats += replayed;
        if (replayed_since_stats >= 4096u) {
            workers_stats(set, &p->worker_stats);
            replayed_since_stats = 0;
        }
        if (set->live_mode)
            propagate_stop(set);
        else
            forward_stop(set);

        uint64_t wall_us = fv_now_us();
        if (periodic != NULL && wall_us >= next_periodic_us) {
            workers_stats(set, &p->worker_stats);
            report_iface_stats(set);
            periodic(periodic_ctx, fv_pipeline_now_us(p));
            next_periodic_us = wall_us + PERIODIC_INTERVAL_US;
        }
        if (replayed == 0)
            writer_wait_for_records(set, section);
    }
    workers_stats(set, &p->worker_stats);
    report_iface_stats(set);
}

/* ---- files: the reader thread and the workers ------------------------- */

typedef struct reader_state {
    worker_set *set;
    char *const *paths;
    int npaths;
    const char *bpf;
    fv_workers_file_result *results;
    uint64_t next_expire_us;
    uint64_t last_ts_us;
} reader_state;

/* Append a message of KIND with DATA (CAPLEN bytes) to W's frame queue,
 * waiting for space. */
static void frame_push(worker *w, frame_kind kind, int linktype, uint64_t ts_us,
                       const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
    msg_ring *r = &w->frames;
    size_t size = sizeof(msg_header) + sizeof(frame_info) + caplen;
    uint8_t *msg;
    while ((msg = msg_ring_try_reserve(r, size + 8u)) == NULL) {
        /* Full: the worker has plenty to do, so wake it if it sleeps. */
        wait_wake(&r->data);
        w->frames_unannounced = 0;
        msg_ring_wait_space(r, size + 8u);
    }
    frame_info info = {.linktype = linktype, .caplen = caplen, .wirelen = wirelen,
                       .ts_us = ts_us};
    memcpy(msg + sizeof(msg_header), &info, sizeof info);
    if (caplen > 0)
        memcpy(msg + sizeof(msg_header) + sizeof info, data, caplen);
    w->frames_unannounced += msg_ring_publish(r, msg, kind, size);
    /* Wake a waiting worker for a batch of frames, or at once for a
     * control message (expiry, end, barrier). */
    if (kind != FRAME_PACKET || w->frames_unannounced >= FRAME_WAKE_BYTES) {
        wait_wake(&r->data);
        w->frames_unannounced = 0;
    }
}

/* cap_frame_fn of the reader: run the expiry schedule of a single engine
 * in every worker, then queue the frame to the worker of its flow. */
static int reader_frame(void *ctx, int linktype, uint64_t ts_us, const uint8_t *data,
                        uint32_t caplen, uint32_t wirelen)
{
    reader_state *rs = ctx;
    worker_set *set = rs->set;

    /* Same rule as cap_engine_packet: expire when the packet time passes
     * the previous run by the interval. NOTE: a single engine skips this
     * for packets of excluded hosts, and the reader cannot tell those
     * apart. With exclusions the expiry may run slightly earlier than in
     * one engine. */
    if (ts_us >= rs->next_expire_us) {
        for (unsigned i = 0; i < set->count; i++)
            frame_push(&set->workers[i], FRAME_EXPIRE, 0, ts_us, NULL, 0, 0);
        rs->next_expire_us = ts_us + CAP_ENGINE_EXPIRE_INTERVAL_US;
    } else if (ts_us + CAP_ENGINE_EXPIRE_INTERVAL_US < rs->last_ts_us) {
        /* Time ran backwards (the next file is older): records from
         * before this frame are replayed before any from after it, as one
         * engine would emit them. */
        for (unsigned i = 0; i < set->count; i++)
            frame_push(&set->workers[i], FRAME_BARRIER, 0, ts_us, NULL, 0, 0);
    }
    rs->last_ts_us = ts_us;
    uint32_t hash = cap_flow_hash(linktype, data, caplen);
    /* set->count >= 1: callers start at least one worker (cmd_ingest turns
     * --workers 0 into 1). */
    // NOLINTNEXTLINE(clang-analyzer-core.DivideZero)
    frame_push(&set->workers[hash % set->count], FRAME_PACKET, linktype, ts_us, data, caplen,
               wirelen);
    return FV_OK;
}

/*
 * Give the calling thread a lower priority (a higher nice value) than
 * the writer. The writer runs the one stage that cannot be split, and
 * with more threads than cores fair scheduling would give it only its
 * share of the time while the reader and the workers fill their queues
 * and wait for it. Reading a file has no deadline, so the threads that
 * can wait do: with --workers 2 on two cores the ingest takes about 7%
 * less time. Live capture keeps equal priorities, because its workers
 * must keep up with the network. A failure only costs that speed-up.
 */
static void lower_thread_priority(void)
{
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, tid);
    if (nice_now == -1 && errno != 0)
        return;
    (void)setpriority(PRIO_PROCESS, tid, nice_now + FILE_THREAD_NICE);
}

static void *reader_main(void *arg)
{
    lower_thread_priority();
    reader_state *rs = arg;
    worker_set *set = rs->set;

    /* Let SIGINT and SIGTERM in, and only them: a stop interrupts a read
     * that waits on a pipe (the handlers run without SA_RESTART), while
     * SIGHUP and SIGUSR1 stay with the writer. forward_stop sends the
     * signal here when the kernel gave it to the writer. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &stops, NULL);

    bool complete = true;
    for (int i = 0; i < rs->npaths; i++) {
        fv_workers_file_result *res = &rs->results[i];
        if (*set->stop) {
            complete = false;
            break;
        }
        res->opened = true;
        res->rc = cap_read_file_frames(rs->paths[i], rs->bpf, set->stop, reader_frame, rs,
                                       res->err, sizeof res->err);
        /* NOTE: a stop that arrives after the last frame but before the
         * end of the file was seen also marks the file stopped. */
        res->stopped = *set->stop != 0;
        /* Every worker counts its share of the file's packets when it
         * reaches this message (worker_count_file_packets). */
        for (unsigned w = 0; w < set->count; w++)
            frame_push(&set->workers[w], FRAME_FILE_END, 0, 0, NULL, 0, 0);
        if (res->stopped || (res->rc != FV_OK && res->rc != FV_ERR_TRUNCATED))
            complete = false;
    }
    /* Published before FRAME_END, which the workers read after it. */
    atomic_store_explicit(&set->input_complete, complete, memory_order_release);
    sigset_t blocked;
    sigfillset(&blocked);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    atomic_store_explicit(&set->reader_running, false, memory_order_release);
    for (unsigned i = 0; i < set->count; i++)
        frame_push(&set->workers[i], FRAME_END, 0, 0, NULL, 0, 0);
    return NULL;
}

/* Queue an EVENT_MARK (files mode, so it waits for space and is never
 * dropped). */
static void push_mark(worker *w)
{
    uint8_t *msg = event_reserve(w, sizeof(msg_header) + 8u);
    if (msg == NULL)
        return;
    event_publish(w, msg, EVENT_MARK, sizeof(msg_header));
    /* The writer may be waiting for this section to end. */
    wait_wake(&w->set->writer_wait);
}

/*
 * Run the expiry at TS_US between two marks. Every worker gets the same
 * expiry frames, so the marks cut all record queues into matching
 * sections: records before an expiry run, the records the run ended,
 * records after it. The writer replays one section of every worker
 * before the next, so the sink receives records in the order of one
 * engine up to the packets between two expiry runs (one second of
 * packet time).
 * Without it a worker running ahead after a jump in packet time (the
 * next file) would make the aggregator close a bucket that another
 * worker still adds flows to.
 */
static void worker_expire(worker *w, uint64_t ts_us)
{
    push_mark(w);
    cap_engine_expire(w->engine, ts_us);
    push_mark(w);
}

/* Add the packets W's engine counted since the previous FRAME_FILE_END
 * to the result of the file that just ended. The reader sends one to
 * every worker after each file, in file order, so the sum over the
 * workers is the file's count, with excluded hosts left out as in one
 * engine. */
static void worker_count_file_packets(worker *w)
{
    cap_stats st;
    cap_engine_stats(w->engine, &st);
    fv_workers_file_result *res = &w->set->file_results[w->files_ended];
    __atomic_fetch_add(&res->packets, st.packets - w->packets_at_file_start, __ATOMIC_RELAXED);
    w->packets_at_file_start = st.packets;
    w->files_ended++;
}

/* Process the frames of one batch under the policy read lock. Returns
 * false once FRAME_END was consumed. */
static bool worker_process_batch(worker *w, unsigned *processed)
{
    msg_ring *r = &w->frames;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = msg_ring_tail(r);
    bool more = true;

    *processed = 0;
    if (head == tail)
        return true;

    fv_pipeline_policy_read_lock(w->set->pipeline);
    w->holds_policy = true;
    msg_header h;
    const uint8_t *payload;
    while (more && *processed < WORKER_BATCH &&
           (payload = msg_ring_next(r, &head, tail, &h)) != NULL) {
        /* The reader wrote the frames on another core: start loading the
         * next one's header and first bytes while this one is decoded. */
        const uint8_t *next = r->buf + head % r->bytes;
        __builtin_prefetch(next);
        __builtin_prefetch(next + 64);
        __builtin_prefetch(next + 128);
        frame_info info;
        memcpy(&info, payload, sizeof info);
        if (h.kind == FRAME_PACKET && w->rc == FV_OK) {
            int rc = cap_engine_packet(w->engine, info.linktype, info.ts_us,
                                       payload + sizeof info, info.caplen, info.wirelen);
            if (rc != FV_OK) {
                w->rc = rc;
                snprintf(w->err, sizeof w->err, "worker %u: processing a frame failed: %s",
                         w->index, fv_strerror(rc));
            }
        } else if (h.kind == FRAME_EXPIRE) {
            worker_expire(w, info.ts_us);
        } else if (h.kind == FRAME_BARRIER) {
            push_mark(w);
            push_mark(w);
        } else if (h.kind == FRAME_FILE_END) {
            worker_count_file_packets(w);
        } else if (h.kind == FRAME_END) {
            more = false;
        }
        (*processed)++;
        msg_ring_consumed(r, head);
    }
    msg_ring_consumed(r, head);
    if (w->holds_policy) {
        fv_pipeline_policy_read_unlock(w->set->pipeline);
        w->holds_policy = false;
    }
    /* A reader waiting for room resumes once half the queue is free. */
    if (msg_ring_tail(r) - head <= FRAME_RING_BYTES / 2)
        wait_wake(&r->space);
    return more;
}

/* Sleep until the reader queued frames for W or the timeout passed. The
 * records W queued so far are handed to the writer first. */
static void worker_wait_for_frames(worker *w)
{
    wait_wake(&w->set->writer_wait);
    msg_ring_wait_data(&w->frames, atomic_load_explicit(&w->frames.head, memory_order_relaxed));
}

static void *file_worker_main(void *arg)
{
    lower_thread_priority();
    worker *w = arg;
    unsigned since_publish = 0;

    for (;;) {
        unsigned processed = 0;
        bool more = worker_process_batch(w, &processed);
        if (!more)
            break;
        since_publish += processed;
        if (processed == 0 || since_publish >= 4096u) {
            worker_publish_stats(w);
            since_publish = 0;
        }
        if (processed == 0)
            worker_wait_for_frames(w);
    }
    /* Flushing emits records but decides no exclusion: no lock needed.
     * A run of files stopped by a signal before its input ended flushes
     * nothing: the ingest resumes by reading the files again, and stores
     * these flows whole then. Standard input has no resume (flush_on_stop). */
    if (!*w->set->stop || w->set->flush_on_stop ||
        atomic_load_explicit(&w->set->input_complete, memory_order_acquire))
        cap_engine_flush(w->engine);
    else
        cap_engine_discard(w->engine);
    worker_publish_stats(w);
    atomic_store_explicit(&w->done, true, memory_order_release);
    wait_wake(&w->set->writer_wait);
    return NULL;
}

/* pthread_create with every signal blocked in the new thread, so SIGINT,
 * SIGTERM, SIGHUP and SIGUSR1 reach the writer, whose flags the loops
 * poll. Returns pthread_create's result. */
static int create_thread(pthread_t *thread, void *(*main_fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(thread, NULL, main_fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Start a thread running MAIN_FN for every worker. Returns FV_ERR_NOMEM
 * at the first thread that cannot start; worker.started marks the others,
 * which the caller must end and join. */
static int start_threads(worker_set *set, void *(*main_fn)(void *))
{
    for (unsigned i = 0; i < set->count; i++) {
        worker *w = &set->workers[i];
        int rc = create_thread(&w->thread, main_fn, w);
        if (rc != 0) {
            fv_error("cannot start worker thread %u: %s", i, strerror(rc));
            return FV_ERR_NOMEM;
        }
        w->started = true;
    }
    return FV_OK;
}

static void join_threads(worker_set *set)
{
    for (unsigned i = 0; i < set->count; i++) {
        if (set->workers[i].started)
            pthread_join(set->workers[i].thread, NULL);
        set->workers[i].started = false;
    }
}

int fv_workers_run_files(fv_pipeline *p, unsigned workers, char *const *paths, int npaths,
                         const char *bpf, volatile sig_atomic_t *stop,
                         fv_workers_file_result *results, fv_workers_periodic_fn periodic,
                         void *periodic_ctx)
{
    static volatile sig_atomic_t never_stop = 0;
    worker_set set;
    pthread_t reader;
    bool reader_started = false;
    reader_state rs = {.paths = paths, .npaths = npaths, .bpf = bpf, .results = results};

    for (int i = 0; i < npaths; i++) {
        results[i].rc = FV_OK;
        results[i].opened = false;
        results[i].stopped = false;
        results[i].packets = 0;
        results[i].err[0] = '\0';
    }
    int rc = fv_pipeline_threads_enable(p);
    if (rc != FV_OK)
        return rc;  /* SET is not initialised yet, so there is nothing to destroy */
    rc = workers_create(&set, p, workers, true, stop != NULL ? stop : &never_stop);
    if (rc != FV_OK) {
        workers_destroy(&set);
        return rc;
    }
    rs.set = &set;
    set.file_results = results;
    for (int i = 0; i < npaths; i++)
        set.flush_on_stop = set.flush_on_stop || strcmp(paths[i], "-") == 0;

    rc = start_threads(&set, file_worker_main);
    if (rc == FV_OK) {
        atomic_store(&set.reader_running, true);
        int prc = create_thread(&reader, reader_main, &rs);
        if (prc == 0) {
            reader_started = true;
            set.reader = reader;
        } else {
            atomic_store(&set.reader_running, false);
            fv_error("cannot start the file reader thread: %s", strerror(prc));
            rc = FV_ERR_NOMEM;
        }
    }
    if (!reader_started) {
        /* End the started workers as the reader would have; the others
         * never ran. */
        for (unsigned i = 0; i < set.count; i++) {
            if (set.workers[i].started)
                frame_push(&set.workers[i], FRAME_END, 0, 0, NULL, 0, 0);
            else
                atomic_store(&set.workers[i].done, true);
        }
    }
    run_writer(&set, periodic, periodic_ctx);
    if (reader_started)
        pthread_join(reader, NULL);
    join_threads(&set);

    for (unsigned i = 0; i < set.count; i++) {
        if (set.workers[i].rc != FV_OK)
            fv_error("%s", set.workers[i].err);
    }
    log_worker_totals(&set);
    workers_destroy(&set);
    return rc;
}

/* ---- live capture -------------------------------------------------------- */

/* Clear every capability of the calling thread and set no_new_privs on
 * it. Both are per-thread in Linux, so a privilege drop on the writer
 * thread leaves them on the workers. */
static int clear_thread_capabilities(unsigned index, char *err, size_t err_len)
{
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) {
        snprintf(err, err_len, "worker %u: capset (clearing every capability) failed: %s",
                 index, strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
        snprintf(err, err_len, "worker %u: prctl(PR_SET_NO_NEW_PRIVS) failed: %s", index,
                 strerror(errno));
        return FV_ERR_PERMISSION;
    }
    return FV_OK;
}

/* after_open of a worker's cap_live_run_opts: report the open socket
 * and wait until the writer ran after_all_open for every worker. */
static int live_after_open(void *ctx, char *err, size_t err_len)
{
    worker *w = ctx;
    worker_set *set = w->set;

    /* The bounding set can only shrink while this thread still has
     * CAP_SETPCAP, that is before the writer's privilege drop. Without it
     * (file capabilities) it stays, and no_new_privs keeps exec from
     * using it. */
    if (set->clear_worker_capabilities) {
        for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
            (void)prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0L, 0L, 0L);
    }

    pthread_mutex_lock(&set->start_lock);
    w->opened = true;
    set->opened++;
    pthread_cond_broadcast(&set->start_cond);
    while (!set->go && !set->abort_start)
        pthread_cond_wait(&set->start_cond, &set->start_lock);
    bool abort_start = set->abort_start;
    pthread_mutex_unlock(&set->start_lock);

    if (abort_start) {
        snprintf(err, err_len, "worker %u: start cancelled because another worker or the "
                               "privilege drop failed", w->index);
        return FV_ERR_CAPTURE;
    }
    if (set->clear_worker_capabilities)
        return clear_thread_capabilities(w->index, err, err_len);
    return FV_OK;
}

/* Tick of a worker's capture loop (about once a second, after libpcap's
 * drop counters were copied into the engine). */
static void live_tick(void *ctx, uint64_t now_us)
{
    (void)now_us;
    worker_publish_stats(ctx);
}

/* iface_stats hook of a worker's capture loop: keep its sockets'
 * counters for report_iface_stats. */
static void live_iface_stats(void *ctx, size_t index, const char *iface, uint64_t received,
                             uint64_t dropped, uint64_t if_dropped)
{
    worker *w = ctx;
    (void)iface;
    if (index >= CAP_LIVE_MAX_IFACES)
        return;
    pthread_mutex_lock(&w->stats_lock);
    w->iface_counts[index][0] = received;
    w->iface_counts[index][1] = dropped;
    w->iface_counts[index][2] = if_dropped;
    pthread_mutex_unlock(&w->stats_lock);
}

static void *live_worker_main(void *arg)
{
    worker *w = arg;
    worker_set *set = w->set;
    cap_live_options opts = set->live;

    opts.tick = live_tick;
    opts.tick_ctx = w;
    opts.after_open = live_after_open;
    opts.after_open_ctx = w;
    opts.iface_stats = live_iface_stats;
    opts.iface_stats_ctx = w;
    w->rc = cap_live_run_opts(w->engine, &opts, w->err, sizeof w->err);

    pthread_mutex_lock(&set->start_lock);
    if (!w->opened)
        set->failed++;
    pthread_cond_broadcast(&set->start_cond);
    pthread_mutex_unlock(&set->start_lock);

    /* Capture has stopped: the last flows wait for queue space instead
     * of being dropped. */
    atomic_store(&w->drop_when_full, false);
    cap_engine_flush(w->engine);
    worker_publish_stats(w);
    atomic_store_explicit(&w->done, true, memory_order_release);
    wait_wake(&w->set->writer_wait);
    return NULL;
}

/* Wait until every worker opened its socket or ended, then run
 * AFTER_ALL_OPEN and let the workers go, or cancel them. Returns FV_OK or
 * the hook's error (message in ERR). */
static int live_release_workers(worker_set *set, const fv_workers_live *live, char *err,
                                size_t err_len)
{
    int rc = FV_OK;

    pthread_mutex_lock(&set->start_lock);
    while (set->opened + set->failed < set->count)
        pthread_cond_wait(&set->start_cond, &set->start_lock);
    bool all_open = set->failed == 0;
    pthread_mutex_unlock(&set->start_lock);

    if (all_open && live->after_all_open != NULL)
        rc = live->after_all_open(live->after_all_open_ctx, err, err_len);

    pthread_mutex_lock(&set->start_lock);
    if (all_open && rc == FV_OK)
        set->go = true;
    else
        set->abort_start = true;
    pthread_cond_broadcast(&set->start_cond);
    pthread_mutex_unlock(&set->start_lock);
    return rc;
}

int fv_workers_run_live(fv_pipeline *p, const cap_live_options *base,
                        const fv_workers_live *live, char *err, size_t err_len)
{
    static volatile sig_atomic_t never_stop = 0;
    worker_set set;

    int rc = fv_pipeline_threads_enable(p);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create %u capture workers: %s", live->workers,
                 fv_strerror(rc));
        return rc;  /* SET is not initialised yet, so there is nothing to destroy */
    }
    rc = workers_create(&set, p, live->workers, false,
                        base->stop != NULL ? base->stop : &never_stop);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot create %u capture workers: %s", live->workers,
                 fv_strerror(rc));
        workers_destroy(&set);
        return rc;
    }
    set.live_mode = true;
    set.clear_worker_capabilities = live->clear_worker_capabilities;
    set.live = *base;
    set.live.stop = &set.stop_all;
    set.iface_stats = base->iface_stats;
    set.iface_stats_ctx = base->iface_stats_ctx;
    /* One group per process: a second flowveil on the same interface
     * must not share this one's packets. */
    set.live.fanout_group = (uint16_t)((unsigned)getpid() % 65535u + 1u);

    rc = start_threads(&set, live_worker_main);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot start %u capture worker threads", live->workers);
        pthread_mutex_lock(&set.start_lock);
        set.abort_start = true;
        for (unsigned i = 0; i < set.count; i++) {
            if (!set.workers[i].started) {
                set.failed++;
                atomic_store(&set.workers[i].done, true);
            }
        }
        pthread_cond_broadcast(&set.start_cond);
        pthread_mutex_unlock(&set.start_lock);
    }
    int start_rc = live_release_workers(&set, live, err, err_len);
    if (rc == FV_OK)
        rc = start_rc;
    run_writer(&set, live->periodic, live->periodic_ctx);
    join_threads(&set);

    /* The first worker error explains a failed start best, because the
     * workers cancelled after it only report the cancellation. */
    if (rc == FV_OK) {
        for (unsigned i = 0; i < set.count; i++) {
            worker *w = &set.workers[i];
            if (w->rc != FV_OK) {
                rc = w->rc;
                snprintf(err, err_len, "%s", w->err);
                break;
            }
        }
    }
    log_worker_totals(&set);
    workers_destroy(&set);
    return rc;
}
