/*
 * api_deadline.c: close connections whose request head does not arrive
 * in time.
 *
 * libmicrohttpd's connection timeout measures inactivity: a client that
 * sends one header byte every few seconds (slowloris) keeps its
 * connection forever, and enough such clients from enough addresses
 * exhaust the connection limit. This file gives every request head a
 * deadline counted from the moment the connection opened or the
 * previous request on it finished. A reaper thread shuts down the socket
 * of every connection past its deadline; libmicrohttpd then sees the
 * socket fail and closes the connection itself. When at least half of
 * the connection limit is taken by connections still waiting for a head,
 * the server is under a slow-client attack and the deadline drops to half
 * a second: a real client sends its head within milliseconds of
 * connecting.
 *
 * Caveats
 * - shutdown() is called with the table lock held, and a connection
 *   leaves the table in the CLOSED notification, which libmicrohttpd
 *   sends before it closes the descriptor. So the reaper never touches
 *   a descriptor number that was closed and reused.
 * - The deadline covers the head only; a body is bounded by the upload
 *   limit and the inactivity timeout.
 */
#include "api_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* Head deadline while the server is under a slow-client attack. */
#define API_DEADLINE_PRESSURE_MS 500u

typedef struct api_deadline_slot {
    struct api_deadline_slot *prev, *next;
    int fd;
    uint64_t since_ms;          /* connection opened or previous request ended */
    bool waiting;               /* the head of a request has not arrived yet */
    bool shut;                  /* shutdown() already called */
} api_deadline_slot;

struct api_deadline {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    bool reaper_started;
    bool stop;
    unsigned head_timeout_ms;
    unsigned pressure_waiting;  /* waiting connections that mean an attack */
    api_deadline_slot *slots;   /* open connections */
    uint64_t reaped;            /* connections shut down for a late head */
};

static uint64_t api_deadline_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *api_deadline_reap(void *arg)
{
    api_deadline *d = arg;

    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        uint64_t now = api_deadline_now_ms();
        unsigned waiting = 0;
        for (api_deadline_slot *s = d->slots; s != NULL; s = s->next)
            waiting += s->waiting && !s->shut;
        uint64_t limit_ms = waiting >= d->pressure_waiting ? API_DEADLINE_PRESSURE_MS
                                                           : d->head_timeout_ms;
        for (api_deadline_slot *s = d->slots; s != NULL; s = s->next) {
            if (s->waiting && !s->shut && now - s->since_ms >= limit_ms) {
                (void)shutdown(s->fd, SHUT_RDWR);
                s->shut = true;
                d->reaped++;
            }
        }
        /* Check ten times a second: a deadline is met to within 0.1 s. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&d->wake, &d->lock, &until);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int api_deadline_create(unsigned head_timeout_s, unsigned connection_limit, api_deadline **out)
{
    *out = NULL;
    api_deadline *d = calloc(1, sizeof *d);
    if (d == NULL)
        return FV_ERR_NOMEM;
    d->head_timeout_ms = head_timeout_s * 1000u;
    d->pressure_waiting = connection_limit / 2 > 0 ? connection_limit / 2 : 1;
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d);
        return FV_ERR_NOMEM;
    }
    if (pthread_cond_init(&d->wake, NULL) != 0) {
        pthread_mutex_destroy(&d->lock);
        free(d);
        return FV_ERR_NOMEM;
    }
    if (pthread_create(&d->reaper, NULL, api_deadline_reap, d) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return FV_ERR_NOMEM;
    }
    d->reaper_started = true;
    *out = d;
    return FV_OK;
}

void api_deadline_destroy(api_deadline **deadline)
{
    if (deadline == NULL || *deadline == NULL)
        return;
    api_deadline *d = *deadline;
    if (d->reaper_started) {
        pthread_mutex_lock(&d->lock);
        d->stop = true;
        pthread_cond_signal(&d->wake);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->reaper, NULL);
    }
    /* The daemon is stopped first, so every CLOSED notification has
     * freed its slot; free any left over all the same. */
    api_deadline_slot *s = d->slots;
    while (s != NULL) {
        api_deadline_slot *next = s->next;
        free(s);
        s = next;
    }
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
    *deadline = NULL;
}

void api_deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    api_deadline *d = cls;
    if (d == NULL || socket_context == NULL)
        return;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        api_deadline_slot *s = calloc(1, sizeof *s);
        if (ci == NULL || s == NULL) {
            /* Without a slot the connection keeps only the inactivity
             * timeout; serving it is better than refusing it. */
            free(s);
            *socket_context = NULL;
            return;
        }
        s->fd = ci->connect_fd;
        s->since_ms = api_deadline_now_ms();
        s->waiting = true;
        pthread_mutex_lock(&d->lock);
        s->next = d->slots;
        if (d->slots != NULL)
            d->slots->prev = s;
        d->slots = s;
        pthread_mutex_unlock(&d->lock);
        *socket_context = s;
        return;
    }

    api_deadline_slot *s = *socket_context;
    if (s == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        d->slots = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&d->lock);
    free(s);
    *socket_context = NULL;
}

/* The slot of CONN, or NULL when it has none. */
static api_deadline_slot *api_deadline_slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

void api_deadline_head_received(api_deadline *d, struct MHD_Connection *conn)
{
    if (d == NULL || conn == NULL)
        return;
    api_deadline_slot *s = api_deadline_slot_of(conn);
    if (s == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    s->waiting = false;
    pthread_mutex_unlock(&d->lock);
}

void api_deadline_request_done(api_deadline *d, struct MHD_Connection *conn)
{
    if (d == NULL || conn == NULL)
        return;
    api_deadline_slot *s = api_deadline_slot_of(conn);
    if (s == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    s->since_ms = api_deadline_now_ms();
    s->waiting = true;
    pthread_mutex_unlock(&d->lock);
}

uint64_t api_deadline_reaped(api_deadline *d)
{
    if (d == NULL)
        return 0;
    pthread_mutex_lock(&d->lock);
    uint64_t n = d->reaped;
    pthread_mutex_unlock(&d->lock);
    return n;
}
