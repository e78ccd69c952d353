/*
 * detect_thread.c: the detectors behind the writer. See detect_thread.h.
 */
#include "detect_thread.h"
#include "msg_ring.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Bytes of queued records. A flow takes 344 bytes and a DNS message
 * usually 600 to 900, so this has room for several thousand records:
 * enough that neither side waits for the other on every record. */
#define QUEUE_BYTES (4u * 1024u * 1024u)

/* The writer wakes a sleeping detector thread once this many bytes were
 * queued since the last wake-up. */
#define WAKE_BYTES (64u * 1024u)

/* Records replayed before the thread looks at the writer's side again. */
#define REPLAY_BATCH 256u

typedef enum msg_kind {
    MSG_FLOW = 1,
    MSG_DNS = 2,
} msg_kind;

/* The longest DNS message in the queue's encoding (dns_encode), header
 * included: the fixed part, then every array entry at full size plus
 * its count. */
#define DNS_MSG_MAX                                                                   \
    (sizeof(msg_header) + offsetof(fv_dns_record, questions) +                        \
     FV_DNS_QUESTIONS_MAX * (4u + FV_NAME_MAX) + 1u + FV_DNS_ADDRS_MAX * sizeof(fv_dns_addr) + \
     1u + FV_DNS_ADDRS_MAX * sizeof(fv_dns_addr) + 1u + FV_DNS_CNAMES_MAX * FV_NAME_MAX + 8u)

#define FLOW_MSG_MAX (sizeof(msg_header) + sizeof(fv_flow_record) + 8u)

struct fv_detect_thread {
    msg_ring queue;         /* first: its cache-line-aligned members pad least there */
    det_engine *engine;
    pthread_t thread;

    /* Writer only: bytes queued since the last wake-up. */
    uint64_t unannounced;

    /* Detector thread only: the record that DNS messages decode into,
     * and how many entries of each array the previous one used. */
    fv_dns_record dns;
    uint8_t used_questions, used_a, used_aaaa, used_cnames;
    atomic_bool stopping;
};

/* ---- writer side --------------------------------------------------------- */

/* Reserve MAX bytes for a message, waiting while the queue is full. */
static uint8_t *queue_reserve(fv_detect_thread *t, size_t max)
{
    uint8_t *msg;
    while ((msg = msg_ring_try_reserve(&t->queue, max)) == NULL) {
        wait_wake(&t->queue.data);
        t->unannounced = 0;
        msg_ring_wait_space(&t->queue, max);
    }
    return msg;
}

static void queue_publish(fv_detect_thread *t, uint8_t *msg, msg_kind kind, size_t size)
{
    t->unannounced += msg_ring_publish(&t->queue, msg, kind, size);
    if (t->unannounced >= WAKE_BYTES) {
        wait_wake(&t->queue.data);
        t->unannounced = 0;
    }
}

void fv_detect_thread_flow(fv_detect_thread *t, const fv_flow_record *flow)
{
    uint8_t *msg = queue_reserve(t, FLOW_MSG_MAX);
    memcpy(msg + sizeof(msg_header), flow, sizeof *flow);
    queue_publish(t, msg, MSG_FLOW, sizeof(msg_header) + sizeof *flow);
}

static uint8_t clamp_count(uint8_t count, unsigned max)
{
    return count > max ? (uint8_t)max : count;
}

/* Encode DNS at OUT: the fields before the arrays as they are, then
 * only the used entries of each array, names without their unused
 * bytes. A record of 3.7 KB usually takes under 1 KB. Returns the end. */
static uint8_t *dns_encode(uint8_t *out, const fv_dns_record *dns)
{
    out = msg_put(out, dns, offsetof(fv_dns_record, questions));
    uint8_t n = clamp_count(dns->question_count, FV_DNS_QUESTIONS_MAX);
    for (uint8_t i = 0; i < n; i++) {
        out = msg_put(out, &dns->questions[i].qtype, sizeof dns->questions[i].qtype);
        out = msg_put(out, &dns->questions[i].qclass, sizeof dns->questions[i].qclass);
        out = msg_put_name(out, dns->questions[i].name, FV_NAME_MAX);
    }
    n = clamp_count(dns->answers_a_count, FV_DNS_ADDRS_MAX);
    *out++ = n;
    out = msg_put(out, dns->answers_a, n * sizeof dns->answers_a[0]);
    n = clamp_count(dns->answers_aaaa_count, FV_DNS_ADDRS_MAX);
    *out++ = n;
    out = msg_put(out, dns->answers_aaaa, n * sizeof dns->answers_aaaa[0]);
    n = clamp_count(dns->cname_count, FV_DNS_CNAMES_MAX);
    *out++ = n;
    for (uint8_t i = 0; i < n; i++)
        out = msg_put_name(out, dns->cnames[i], FV_NAME_MAX);
    return out;
}

void fv_detect_thread_dns(fv_detect_thread *t, const fv_dns_record *dns)
{
    uint8_t *msg = queue_reserve(t, DNS_MSG_MAX);
    uint8_t *end = dns_encode(msg + sizeof(msg_header), dns);
    queue_publish(t, msg, MSG_DNS, (size_t)(end - msg));
}

void fv_detect_thread_sync(fv_detect_thread *t)
{
    if (t == NULL)
        return;
    wait_wake(&t->queue.data);
    t->unannounced = 0;
    uint64_t tail = atomic_load_explicit(&t->queue.tail, memory_order_relaxed);
    while (msg_ring_head(&t->queue) != tail) {
        unsigned seq = wait_prepare(&t->queue.space);
        if (msg_ring_head(&t->queue) == tail) {
            wait_cancel(&t->queue.space);
            break;
        }
        wait_sleep(&t->queue.space, seq);
    }
}

/* ---- detector thread ------------------------------------------------------ */

/* Decode dns_encode's message at IN into t->dns. Entries past the counts
 * that the previous message used are zeroed, so the record equals the
 * writer's entry for entry. */
static const fv_dns_record *dns_decode(fv_detect_thread *t, const uint8_t *in)
{
    fv_dns_record *d = &t->dns;
    in = msg_get(in, d, offsetof(fv_dns_record, questions));
    uint8_t n = clamp_count(d->question_count, FV_DNS_QUESTIONS_MAX);
    for (uint8_t i = 0; i < n; i++) {
        in = msg_get(in, &d->questions[i].qtype, sizeof d->questions[i].qtype);
        in = msg_get(in, &d->questions[i].qclass, sizeof d->questions[i].qclass);
        in = msg_get_name(in, d->questions[i].name, FV_NAME_MAX);
    }
    if (t->used_questions > n)
        memset(&d->questions[n], 0, (t->used_questions - n) * sizeof d->questions[0]);
    t->used_questions = n;

    d->answers_a_count = *in++;
    n = clamp_count(d->answers_a_count, FV_DNS_ADDRS_MAX);
    in = msg_get(in, d->answers_a, n * sizeof d->answers_a[0]);
    if (t->used_a > n)
        memset(&d->answers_a[n], 0, (t->used_a - n) * sizeof d->answers_a[0]);
    t->used_a = n;

    d->answers_aaaa_count = *in++;
    n = clamp_count(d->answers_aaaa_count, FV_DNS_ADDRS_MAX);
    in = msg_get(in, d->answers_aaaa, n * sizeof d->answers_aaaa[0]);
    if (t->used_aaaa > n)
        memset(&d->answers_aaaa[n], 0, (t->used_aaaa - n) * sizeof d->answers_aaaa[0]);
    t->used_aaaa = n;

    d->cname_count = *in++;
    n = clamp_count(d->cname_count, FV_DNS_CNAMES_MAX);
    for (uint8_t i = 0; i < n; i++)
        in = msg_get_name(in, d->cnames[i], FV_NAME_MAX);
    if (t->used_cnames > n)
        memset(d->cnames[n], 0, (t->used_cnames - n) * sizeof d->cnames[0]);
    t->used_cnames = n;
    return d;
}

/* Replay up to REPLAY_BATCH messages from HEAD. Returns the new head,
 * published after each message, so a sync that sees the head reach its
 * tail knows every record before it was replayed. */
static uint64_t replay(fv_detect_thread *t, uint64_t head)
{
    uint64_t tail = msg_ring_tail(&t->queue);
    msg_header h;
    const uint8_t *payload;
    for (unsigned n = 0; n < REPLAY_BATCH &&
                         (payload = msg_ring_next(&t->queue, &head, tail, &h)) != NULL;
         n++) {
        if (h.kind == MSG_FLOW) {
            /* Written by memcpy of a record at an 8-byte boundary. */
            det_observe_flow(t->engine, (const fv_flow_record *)(const void *)payload);
        } else if (h.kind == MSG_DNS) {
            det_observe_dns(t->engine, dns_decode(t, payload));
        }
        msg_ring_consumed(&t->queue, head);
    }
    msg_ring_consumed(&t->queue, head);
    return head;
}

static void *detect_main(void *arg)
{
    fv_detect_thread *t = arg;
    uint64_t head = 0;

    for (;;) {
        if (msg_ring_tail(&t->queue) != head) {
            head = replay(t, head);
            /* The writer may wait for room or in a sync. */
            if (msg_ring_tail(&t->queue) - head <= QUEUE_BYTES / 2)
                wait_wake(&t->queue.space);
            continue;
        }
        wait_wake(&t->queue.space);
        if (atomic_load_explicit(&t->stopping, memory_order_acquire)) {
            /* Stop only with nothing queued: the writer syncs before it
             * sets the flag, so this tail is final. */
            if (msg_ring_tail(&t->queue) == head)
                break;
            continue;
        }
        unsigned seq = wait_prepare(&t->queue.data);
        if (msg_ring_tail(&t->queue) == head &&
            !atomic_load_explicit(&t->stopping, memory_order_acquire))
            wait_sleep(&t->queue.data, seq);
        else
            wait_cancel(&t->queue.data);
    }
    return NULL;
}

int fv_detect_thread_start(det_engine *engine, fv_detect_thread **out)
{
    *out = NULL;
    fv_detect_thread *t = calloc(1, sizeof *t);
    if (t == NULL)
        return FV_ERR_NOMEM;
    if (msg_ring_init(&t->queue, QUEUE_BYTES) != FV_OK) {
        free(t);
        return FV_ERR_NOMEM;
    }
    t->engine = engine;
    atomic_init(&t->stopping, false);

    /* Signals go to the writer, whose loops poll the flags they set. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&t->thread, NULL, detect_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        msg_ring_free(&t->queue);
        free(t);
        return FV_ERR_NOMEM;
    }
    *out = t;
    return FV_OK;
}

void fv_detect_thread_stop(fv_detect_thread **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    fv_detect_thread *t = *tp;
    fv_detect_thread_sync(t);
    atomic_store_explicit(&t->stopping, true, memory_order_release);
    wait_wake(&t->queue.data);
    pthread_join(t->thread, NULL);
    /* Pseudonymized records only, but no reason to leave them behind. */
    msg_ring_free(&t->queue);
    sodium_memzero(&t->dns, sizeof t->dns);
    free(t);
    *tp = NULL;
}
