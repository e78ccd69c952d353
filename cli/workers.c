/*
 * workers.c: worker threads for `--workers N`. See workers.h for the
 * design and the drop rules.
 */
#include "workers.h"

#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Records queued from one worker to the writer. A slot fits the largest
 * event (cap_dns, about 3.5 KB), so 2048 slots are about 7 MB per worker. */
#define EVENT_RING_SLOTS 2048u

/* Bytes of frames queued from the file reader to one worker: room for
 * at least two frames of libpcap's largest snap length (262144 bytes). */
#define FRAME_RING_BYTES (8u * 1024u * 1024u)

/* Frames a worker processes per hold of the policy read lock. */
#define WORKER_BATCH 64u

/* Records the writer replays from one worker before it visits the next,
 * so one busy worker cannot starve the others' queues. */
#define WRITER_BATCH 256u

/* How often the periodic callback runs on the writer. */
#define PERIODIC_INTERVAL_US 1000000u

/* ---- waiting ---------------------------------------------------------- */

/* Wait a little for the other side of a queue: yield first, then sleep
 * 50 us at a time, so an idle thread costs little CPU on a small machine
 * where the threads outnumber the cores. */
static void wait_briefly(unsigned *spins)
{
    if (*spins < 16) {
        (*spins)++;
        sched_yield();
        return;
    }
    struct timespec pause = {0, 50 * 1000};
    (void)nanosleep(&pause, NULL);
}

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

typedef struct event {
    event_type type;
    union {
        cap_flow flow;
        cap_dns dns;
        cap_tls tls;
        cap_http http;
        cap_dhcp dhcp;
        cap_ssh ssh;
    } u;
} event;

/* Single-producer single-consumer ring. head and tail count slots since
 * the start and only grow; each side reads the other's index with
 * acquire and publishes its own with release. The padding is intended:
 * each index has its own cache line, so the two threads do not share one. */
typedef struct event_ring {  // NOLINT(clang-analyzer-optin.performance.Padding)
    event *slots;
    _Alignas(64) atomic_uint_fast64_t head;     /* next slot the writer reads */
    _Alignas(64) atomic_uint_fast64_t tail;     /* next slot the worker fills */
} event_ring;

/* ---- frame queue: the file reader to one worker ------------------------- */

typedef enum frame_kind {
    FRAME_PACKET,       /* a frame for cap_engine_packet */
    FRAME_EXPIRE,       /* run cap_engine_expire at ts_us */
    FRAME_END,          /* input ended: flush and stop */
    FRAME_BARRIER,      /* packet time went backwards: start a new section */
    FRAME_WRAP,         /* unused space up to the end of the buffer */
} frame_kind;

typedef struct frame_header {
    uint32_t size;      /* header and data, rounded up to 8 bytes */
    uint32_t kind;      /* frame_kind */
    int32_t linktype;
    uint32_t caplen;
    uint32_t wirelen;
    uint32_t pad;
    uint64_t ts_us;
} frame_header;

/* Byte ring of frame_header + data messages. A message never wraps: when
 * it does not fit before the end, the writer fills the rest with a
 * FRAME_WRAP header (or, with less room than a header, leaves it) and
 * starts again at offset 0. */
typedef struct frame_ring {  // NOLINT(clang-analyzer-optin.performance.Padding): see event_ring
    uint8_t *buf;
    _Alignas(64) atomic_uint_fast64_t head;     /* bytes consumed */
    _Alignas(64) atomic_uint_fast64_t tail;     /* bytes produced */
} frame_ring;

typedef struct worker_set worker_set;

/* Most of the padding comes from the cache-line-aligned ring indexes;
 * the field order groups what each thread touches, so it is kept. */
typedef struct worker {  // NOLINT(clang-analyzer-optin.performance.Padding)
    worker_set *set;
    unsigned index;
    pthread_t thread;
    bool started;
    cap_engine *engine;
    frame_ring frames;      /* files only */
    event_ring events;

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
    atomic_bool done;       /* engine flushed, no more records */
    int rc;
    char err[1024];
} worker;

struct worker_set {
    fv_pipeline *pipeline;
    unsigned count;
    worker *workers;
    volatile sig_atomic_t *stop;

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

static int event_ring_init(event_ring *r)
{
    r->slots = calloc(EVENT_RING_SLOTS, sizeof *r->slots);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return r->slots != NULL ? FV_OK : FV_ERR_NOMEM;
}

static int frame_ring_init(frame_ring *r)
{
    r->buf = malloc(FRAME_RING_BYTES);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return r->buf != NULL ? FV_OK : FV_ERR_NOMEM;
}

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

/* Reserve the next record slot, or return NULL after counting a drop
 * (live) when the queue is full. Files wait for the writer. */
static event *event_slot(worker *w)
{
    event_ring *r = &w->events;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    unsigned spins = 0;
    bool released = false;

    while (tail - atomic_load_explicit(&r->head, memory_order_acquire) >= EVENT_RING_SLOTS) {
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
        wait_briefly(&spins);
    }
    if (released) {
        fv_pipeline_policy_read_lock(w->set->pipeline);
        w->holds_policy = true;
    }
    return &r->slots[tail % EVENT_RING_SLOTS];
}

static void event_publish(worker *w)
{
    uint64_t tail = atomic_load_explicit(&w->events.tail, memory_order_relaxed);
    atomic_store_explicit(&w->events.tail, tail + 1, memory_order_release);
}

static bool worker_is_excluded_host(void *ctx, const cap_ip *addr, const uint8_t *mac)
{
    worker *w = ctx;
    fv_pipeline *p = w->set->pipeline;
    uint64_t ts_us = cap_engine_packet_time_us(w->engine);

    /* File workers already hold the policy for their whole batch. */
    if (w->holds_policy)
        return fv_pipeline_host_excluded(p, addr, mac, ts_us);
    fv_pipeline_policy_read_lock(p);
    bool excluded = fv_pipeline_host_excluded(p, addr, mac, ts_us);
    fv_pipeline_policy_read_unlock(p);
    return excluded;
}

static void worker_on_flow(void *ctx, const cap_flow *flow)
{
    worker *w = ctx;
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_FLOW;
    e->u.flow = *flow;
    event_publish(w);
}

static void worker_on_dns(void *ctx, const cap_dns *dns)
{
    worker *w = ctx;
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_DNS;
    e->u.dns = *dns;
    event_publish(w);
}

static void worker_on_tls(void *ctx, const cap_tls *tls)
{
    worker *w = ctx;
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_TLS;
    e->u.tls = *tls;
    event_publish(w);
}

static void worker_on_http(void *ctx, const cap_http *http)
{
    worker *w = ctx;
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_HTTP;
    e->u.http = *http;
    event_publish(w);
}

static void worker_on_dhcp(void *ctx, const cap_dhcp *dhcp)
{
    worker *w = ctx;
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_DHCP;
    e->u.dhcp = *dhcp;
    event_publish(w);
}

static void worker_on_ssh(void *ctx, const cap_ssh *ssh)
{
    worker *w = ctx;
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_SSH;
    e->u.ssh = *ssh;
    event_publish(w);
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
        fv_notice("worker %u: %llu packets, %llu flows, %llu records dropped for a full queue",
                  i, (unsigned long long)st.packets, (unsigned long long)st.flows_emitted,
                  (unsigned long long)st.queue_dropped_records);
    }
}

static void workers_destroy(worker_set *set)
{
    for (unsigned i = 0; i < set->count; i++) {
        worker *w = &set->workers[i];
        cap_engine_destroy(&w->engine);
        free(w->events.slots);
        free(w->frames.buf);
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
            rc = event_ring_init(&w->events);
        if (rc == FV_OK && files)
            rc = frame_ring_init(&w->frames);
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

static void replay_event(const cap_sink *sink, const event *e)
{
    switch (e->type) {
    case EVENT_FLOW: sink->on_flow(sink->ctx, &e->u.flow); break;
    case EVENT_DNS: sink->on_dns(sink->ctx, &e->u.dns); break;
    case EVENT_TLS: sink->on_tls(sink->ctx, &e->u.tls); break;
    case EVENT_HTTP: sink->on_http(sink->ctx, &e->u.http); break;
    case EVENT_DHCP: sink->on_dhcp(sink->ctx, &e->u.dhcp); break;
    case EVENT_SSH: sink->on_ssh(sink->ctx, &e->u.ssh); break;
    case EVENT_MARK: break;
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
    event_ring *r = &w->events;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    unsigned n = 0;

    while (head != tail && n < WRITER_BATCH) {
        const event *e = &r->slots[head % EVENT_RING_SLOTS];
        bool mark = e->type == EVENT_MARK;
        replay_event(sink, e);
        head++;
        n++;
        /* Free each slot at once, so a waiting worker resumes early. */
        atomic_store_explicit(&r->head, head, memory_order_release);
        if (mark) {
            w->marks_replayed++;
            break;
        }
    }
    return n;
}

static bool events_empty(worker *w)
{
    return atomic_load_explicit(&w->events.head, memory_order_relaxed) ==
           atomic_load_explicit(&w->events.tail, memory_order_acquire);
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
    unsigned spins = 0;

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
        if (set->live_mode)
            propagate_stop(set);

        uint64_t wall_us = fv_now_us();
        if (periodic != NULL && wall_us >= next_periodic_us) {
            workers_stats(set, &p->worker_stats);
            report_iface_stats(set);
            periodic(periodic_ctx, fv_pipeline_now_us(p));
            next_periodic_us = wall_us + PERIODIC_INTERVAL_US;
        }
        if (replayed == 0)
            wait_briefly(&spins);
        else
            spins = 0;
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
    uint64_t frames;
} reader_state;

/* Append a message of KIND with DATA (CAPLEN bytes) to W's frame queue,
 * waiting for space. */
static void frame_push(worker *w, frame_kind kind, int linktype, uint64_t ts_us,
                       const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
    frame_ring *r = &w->frames;
    uint32_t size = (uint32_t)((sizeof(frame_header) + caplen + 7u) & ~7u);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t offset = tail % FRAME_RING_BYTES;
    uint64_t room_to_end = FRAME_RING_BYTES - offset;
    uint64_t skip = room_to_end < size ? room_to_end : 0;
    unsigned spins = 0;

    while (tail + skip + size - atomic_load_explicit(&r->head, memory_order_acquire) >
           FRAME_RING_BYTES)
        wait_briefly(&spins);

    if (skip != 0) {
        if (skip >= sizeof(frame_header)) {
            frame_header wrap = {.size = (uint32_t)skip, .kind = FRAME_WRAP};
            memcpy(r->buf + offset, &wrap, sizeof wrap);
        }
        offset = 0;
    }
    frame_header h = {.size = size,
                      .kind = (uint32_t)kind,
                      .linktype = linktype,
                      .caplen = caplen,
                      .wirelen = wirelen,
                      .ts_us = ts_us};
    memcpy(r->buf + offset, &h, sizeof h);
    if (caplen > 0)
        memcpy(r->buf + offset + sizeof h, data, caplen);
    atomic_store_explicit(&r->tail, tail + skip + size, memory_order_release);
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
    rs->frames++;
    return FV_OK;
}

static void *reader_main(void *arg)
{
    reader_state *rs = arg;
    worker_set *set = rs->set;

    for (int i = 0; i < rs->npaths && !*set->stop; i++) {
        fv_workers_file_result *res = &rs->results[i];
        rs->frames = 0;
        res->rc = cap_read_file_frames(rs->paths[i], rs->bpf, set->stop, reader_frame, rs,
                                       res->err, sizeof res->err);
        res->frames = rs->frames;
    }
    for (unsigned i = 0; i < set->count; i++)
        frame_push(&set->workers[i], FRAME_END, 0, 0, NULL, 0, 0);
    return NULL;
}

/* Queue an EVENT_MARK (files mode, so it waits for space and is never
 * dropped). */
static void push_mark(worker *w)
{
    event *e = event_slot(w);
    if (e == NULL)
        return;
    e->type = EVENT_MARK;
    event_publish(w);
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

/* Process the frames of one batch under the policy read lock. Returns
 * false once FRAME_END was consumed. */
static bool worker_process_batch(worker *w, unsigned *processed)
{
    frame_ring *r = &w->frames;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    bool more = true;

    *processed = 0;
    if (head == tail)
        return true;

    fv_pipeline_policy_read_lock(w->set->pipeline);
    w->holds_policy = true;
    while (head != tail && *processed < WORKER_BATCH) {
        uint64_t offset = head % FRAME_RING_BYTES;
        if (FRAME_RING_BYTES - offset < sizeof(frame_header)) {
            head += FRAME_RING_BYTES - offset;  /* the producer left this tail end unused */
            continue;
        }
        frame_header h;
        memcpy(&h, r->buf + offset, sizeof h);
        if (h.kind == FRAME_PACKET && w->rc == FV_OK) {
            int rc = cap_engine_packet(w->engine, h.linktype, h.ts_us,
                                       r->buf + offset + sizeof h, h.caplen, h.wirelen);
            if (rc != FV_OK) {
                w->rc = rc;
                snprintf(w->err, sizeof w->err, "worker %u: processing a frame failed: %s",
                         w->index, fv_strerror(rc));
            }
        } else if (h.kind == FRAME_EXPIRE) {
            worker_expire(w, h.ts_us);
        } else if (h.kind == FRAME_BARRIER) {
            push_mark(w);
            push_mark(w);
        } else if (h.kind == FRAME_END) {
            more = false;
        }
        head += h.size;
        (*processed)++;
        atomic_store_explicit(&r->head, head, memory_order_release);
        if (!more)
            break;
    }
    if (w->holds_policy) {
        fv_pipeline_policy_read_unlock(w->set->pipeline);
        w->holds_policy = false;
    }
    return more;
}

static void *file_worker_main(void *arg)
{
    worker *w = arg;
    unsigned spins = 0;
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
            wait_briefly(&spins);
        else
            spins = 0;
    }
    /* Flushing emits records but decides no exclusion: no lock needed.
     * A run stopped by a signal flushes nothing: the ingest resumes by
     * reading the files again, and stores these flows whole then. */
    if (!*w->set->stop)
        cap_engine_flush(w->engine);
    else
        cap_engine_discard(w->engine);
    worker_publish_stats(w);
    atomic_store_explicit(&w->done, true, memory_order_release);
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
        results[i].frames = 0;
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

    rc = start_threads(&set, file_worker_main);
    if (rc == FV_OK) {
        int prc = create_thread(&reader, reader_main, &rs);
        if (prc == 0) {
            reader_started = true;
        } else {
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
