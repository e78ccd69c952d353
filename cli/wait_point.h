/*
 * wait_point.h: how the threads of --workers wait for each other's
 * queues (workers.c, detect_thread.c).
 *
 * A thread that finds its queue empty (or full) sleeps on a futex until
 * the other side wakes it or WAIT_POINT_TIMEOUT_NS passes. Spinning or
 * yielding instead would take the core from the thread that has the
 * work: with --workers 2 on two cores, the reader, two workers, the
 * writer and the detector thread share them.
 *
 * The sleeper counts itself in SLEEPERS, then reads SEQ, then checks its
 * condition once more. The other side changes the queue, then reads
 * SLEEPERS, and only when a thread sleeps does it bump SEQ and wake it.
 * The two full fences make sure at least one side sees the other's
 * change, so a wake-up is never lost. The timeout bounds the wait anyway, because
 * producers wake a sleeping consumer only once a batch has collected.
 *
 *   consumer:  seq = wait_prepare(wp);
 *              if (queue still empty) wait_sleep(wp, seq);
 *              else wait_cancel(wp);
 *   producer:  publish; wait_wake(wp);
 */
#ifndef FV_WAIT_POINT_H
#define FV_WAIT_POINT_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT_POINT_TIMEOUT_NS (1000L * 1000L)

typedef struct wait_point {
    atomic_uint seq;            /* futex word: bumped by every wake-up */
    atomic_uint sleepers;
} wait_point;

static inline void wait_point_init(wait_point *wp)
{
    atomic_init(&wp->seq, 0);
    atomic_init(&wp->sleepers, 0);
}

/* Announce a sleep; returns the SEQ value to pass to wait_sleep. */
static inline unsigned wait_prepare(wait_point *wp)
{
    atomic_fetch_add_explicit(&wp->sleepers, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&wp->seq, memory_order_acquire);
}

/* Sleep until woken after SEQ was read, or the timeout; then stop
 * counting as a sleeper. */
static inline void wait_sleep(wait_point *wp, unsigned seq)
{
    struct timespec timeout = {0, WAIT_POINT_TIMEOUT_NS};
    /* EAGAIN (SEQ changed), EINTR and ETIMEDOUT all mean: look again. */
    (void)syscall(SYS_futex, &wp->seq, FUTEX_WAIT_PRIVATE, seq, &timeout, NULL, 0);
    atomic_fetch_sub_explicit(&wp->sleepers, 1, memory_order_relaxed);
}

/* Stop counting as a sleeper without sleeping: the condition became true
 * after wait_prepare. */
static inline void wait_cancel(wait_point *wp)
{
    atomic_fetch_sub_explicit(&wp->sleepers, 1, memory_order_relaxed);
}

/* Wake every sleeper of WP, after the caller changed a queue. Costs a
 * fence and a load when no thread sleeps. */
static inline void wait_wake(wait_point *wp)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&wp->sleepers, memory_order_relaxed) == 0)
        return;
    atomic_fetch_add_explicit(&wp->seq, 1, memory_order_release);
    (void)syscall(SYS_futex, &wp->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif /* FV_WAIT_POINT_H */
