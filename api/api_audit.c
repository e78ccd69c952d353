/*
 * api_audit.c: the audit entry written for every API request, the queue
 * that commits the entries of read requests in batches, the
 * /api/v1/audit route that lists the audit trail, and /api/v1/audit/verify
 * that checks its hash chain.
 *
 * Requests are audited after the route has built its reply and before
 * the reply is sent, so the entry can carry the number of records
 * returned. The entry of a request that changes state (every method but
 * GET and HEAD, logins and logouts) is committed before its reply. The
 * entry of a read is queued and committed by the writer thread with the
 * other queued entries in one transaction, at most flush_ms later. No
 * reply leaves without its entry committed or queued: when the queue
 * stays full or the store fails, the client receives 503 instead.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api_internal.h"

/* Maximum length of a query value copied into an audit entry. */
#define API_AUDIT_VALUE_MAX 64

/* Query string being rebuilt for the audit entry's params. */
typedef struct audit_params {
    char text[512];
    size_t used;
    bool truncated;
} audit_params;

static void params_append(audit_params *p, const char *key, const char *value)
{
    if (p->truncated)
        return;
    size_t room = sizeof p->text - p->used;
    int n = snprintf(p->text + p->used, room, "%s%s=%.*s", p->used > 0 ? "&" : "", key,
                     API_AUDIT_VALUE_MAX, value != NULL ? value : "");
    if (n < 0 || !((size_t)n < room)) {
        /* Keep the entry well-formed: drop the pair that did not fit. */
        p->text[p->used] = '\0';
        p->truncated = true;
        return;
    }
    p->used += (size_t)n;
}

/* Append the first N bytes of TEXT to OUT, cutting what does not fit. */
static void redact_append(char *out, size_t out_len, size_t *used, const char *text, size_t n)
{
    size_t room = out_len - 1 - *used;
    if (n > room)
        n = room;
    memcpy(out + *used, text, n);
    *used += n;
    out[*used] = '\0';
}

static bool address_char(char c)
{
    return isxdigit((unsigned char)c) || c == '.' || c == ':';
}

/* True if the N bytes at TEXT are an IPv4 or IPv6 address literal. */
static bool address_literal(const char *text, size_t n)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char addr[16];

    if (n == 0 || !(n < sizeof buf))
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

/* Length of a "/prefix" (1 to 3 digits, not followed by a letter or
 * digit) at TEXT, or 0. */
static size_t prefix_length(const char *text)
{
    size_t n = 1;

    if (text[0] != '/')
        return 0;
    while (n <= 3 && isdigit((unsigned char)text[n]))
        n++;
    if (n == 1 || isalnum((unsigned char)text[n]))
        return 0;
    return n;
}

void api_redact_addresses(const char *in, char *out, size_t out_len)
{
    size_t used = 0;

    if (out_len == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; in[i] != '\0';) {
        size_t run = 0;
        while (address_char(in[i + run]))
            run++;
        if (run == 0) {
            redact_append(out, out_len, &used, in + i, 1);
            i++;
            continue;
        }

        /* A dot after the literal ends a sentence, and a single colon
         * before it separates a label ("peer:10.1.0.42"). */
        size_t len = run, skip = 0;
        while (len > 0 && in[i + len - 1] == '.')
            len--;
        if (len > 1 && in[i] == ':' && in[i + 1] != ':')
            skip = 1;
        if (len > skip && address_literal(in + i + skip, len - skip)) {
            redact_append(out, out_len, &used, in + i, skip);
            redact_append(out, out_len, &used, "<address>", strlen("<address>"));
            i += len;
            i += prefix_length(in + i);
        } else {
            redact_append(out, out_len, &used, in + i, run);
            i += run;
        }
    }
}

static enum MHD_Result params_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    char safe_key[API_AUDIT_VALUE_MAX + 1];
    char redacted_key[API_AUDIT_VALUE_MAX + 1];
    char redacted_value[512];

    api_text_sanitize(key, safe_key, sizeof safe_key);
    api_redact_addresses(safe_key, redacted_key, sizeof redacted_key);
    /* Redact before the value is cut to 64 bytes, so a cut never leaves
     * the first part of an address behind. */
    api_redact_addresses(value != NULL ? value : "", redacted_value, sizeof redacted_value);
    params_append(cls, redacted_key, redacted_value);
    return MHD_YES;
}

/* Write the client's IP address as text into OUT, or "unknown". */
static void remote_address(struct MHD_Connection *conn, char *out, size_t out_len)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, out_len, "unknown");
    if (info == NULL || info->client_addr == NULL)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, out, (socklen_t)out_len);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)out_len);
    }
}

int api_audit_request(api_server *srv, struct MHD_Connection *conn, const char *url,
                      const api_principal *principal, const char *action,
                      const api_reply *reply)
{
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    bool known = principal != NULL && principal->auth != API_AUTH_NONE;
    const char *role = known ? store_role_name(principal->role) : NULL;
    snprintf(e.actor, sizeof e.actor, "%s", known ? principal->user : "anonymous");
    snprintf(e.role, sizeof e.role, "%s", role != NULL ? role : "");
    snprintf(e.action, sizeof e.action, "%s", action);
    api_redact_addresses(url, e.object, sizeof e.object);

    audit_params p = {.used = 0, .truncated = false};
    p.text[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, params_collect, &p);
    /* The outcome, so a refused request reads differently from a read,
     * then the client address. Both go last and must not be lost to a
     * long query. */
    audit_params tail = {.used = 0, .truncated = false};
    tail.text[0] = '\0';
    if (reply->status != 0) {
        char status[12];
        snprintf(status, sizeof status, "%u", reply->status);
        params_append(&tail, "status", status);
    }
    const char *error = reply->status >= 400 && json_is_object(reply->body)
                            ? json_string_value(json_object_get(reply->body, "error"))
                            : NULL;
    if (error != NULL) {
        char safe_error[API_AUDIT_VALUE_MAX + 1];
        api_text_sanitize(error, safe_error, sizeof safe_error);
        params_append(&tail, "error", safe_error);
    }
    char remote[INET6_ADDRSTRLEN];
    remote_address(conn, remote, sizeof remote);
    params_append(&tail, "remote", remote);
    if (p.truncated || !(p.used + 1 + tail.used < sizeof p.text)) {
        size_t keep = sizeof p.text - 2 - tail.used;
        if (p.used > keep)
            p.used = keep;
        p.text[p.used] = '\0';
    }
    snprintf(p.text + p.used, sizeof p.text - p.used, "%s%s", p.used > 0 ? "&" : "", tail.text);
    snprintf(e.params, sizeof e.params, "%s", p.text);

    /* Record routes and the audit route report the records they return. */
    json_t *count = reply->status == 200 && json_is_object(reply->body)
                        ? json_object_get(reply->body, "count")
                        : NULL;
    if (json_is_integer(count) && json_integer_value(count) >= 0)
        e.result_count = (uint64_t)json_integer_value(count);

    uint64_t now_us = srv->clock_us();
    bool queued = strcmp(action, "api.read") == 0 && srv->audit_log != NULL;
    int rc = queued ? api_audit_enqueue(srv->audit_log, &e, now_us)
                    : api_audit_append_now(srv, &e, now_us);
    if (rc != FV_OK)
        fv_error("cannot audit an API request, answering 503 instead: %s", fv_strerror(rc));
    return rc;
}

/* ---- the queue of read entries ---------------------------------------- */

/* Entries committed in one transaction at most. */
#define API_AUDIT_BATCH_MAX 256u

struct api_audit_log {
    store_env *store;
    unsigned flush_ms;          /* maximum time an entry waits in the queue before a commit starts */
    unsigned wait_ms;           /* maximum time a request waits for room */

    pthread_mutex_t lock;       /* guards everything from here to the thread */
    pthread_cond_t wake;        /* to the writer: entries, a flush request or stop */
    pthread_cond_t room;        /* to requests: the writer removed entries */
    store_audit_entry *ring;    /* CAP slots; LEN entries from HEAD, oldest first */
    uint64_t *time_us;          /* request time of each slot */
    size_t cap, head, len;
    struct timespec oldest_at;  /* CLOCK_MONOTONIC time the oldest entry was queued */
    bool flush_requested;
    bool failing;               /* the last commit failed: new reads get 503 */
    bool stop;

    /* Held while entries are removed from the head and committed, so the
     * trail keeps the order in which entries were queued, and a
     * synchronous append never overtakes an older queued entry. */
    pthread_mutex_t commit_lock;
    pthread_t thread;
    bool thread_started;
    bool locks_ready;
};

static void timespec_add_ms(struct timespec *t, unsigned ms)
{
    t->tv_sec += (time_t)(ms / 1000u);
    t->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static bool timespec_reached(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/*
 * Commit the queued entries, oldest first, in transactions of at most
 * API_AUDIT_BATCH_MAX, and then EXTRA (if not NULL) with time EXTRA_US in
 * a transaction of its own. Caller holds commit_lock. The slots being committed stay
 * in the ring until the commit succeeded, so a failed commit loses
 * nothing; requests append only behind them, so no lock is needed to
 * read them.
 */
static int audit_commit_queued(api_audit_log *log, const store_audit_entry *extra,
                               uint64_t extra_us)
{
    int rc = FV_OK;

    for (;;) {
        pthread_mutex_lock(&log->lock);
        size_t head = log->head;
        size_t n = log->len;
        pthread_mutex_unlock(&log->lock);

        /* A batch is contiguous in the ring, so it ends at the wrap. */
        if (n > log->cap - head)
            n = log->cap - head;
        if (n > API_AUDIT_BATCH_MAX)
            n = API_AUDIT_BATCH_MAX;
        if (n == 0)
            break;
        rc = store_audit_append_batch(log->store, &log->ring[head], &log->time_us[head], n,
                                      NULL);
        pthread_mutex_lock(&log->lock);
        log->failing = rc != FV_OK;
        if (rc == FV_OK) {
            log->head = (log->head + n) % log->cap;
            log->len -= n;
            clock_gettime(CLOCK_MONOTONIC, &log->oldest_at);
            pthread_cond_broadcast(&log->room);
        }
        pthread_mutex_unlock(&log->lock);
        if (rc != FV_OK)
            return rc;
    }
    if (extra != NULL)
        rc = store_audit_append(log->store, extra, extra_us, NULL);
    return rc;
}

static void *audit_writer_main(void *arg)
{
    api_audit_log *log = arg;

    pthread_mutex_lock(&log->lock);
    for (;;) {
        while (log->len == 0 && !log->stop && !log->flush_requested)
            pthread_cond_wait(&log->wake, &log->lock);
        if (log->len == 0 && log->stop)
            break;

        /* Wait for a full batch, a flush request, stop, or the oldest
         * entry's deadline, whichever comes first. */
        struct timespec deadline = log->oldest_at;
        timespec_add_ms(&deadline, log->flush_ms);
        while (log->len < API_AUDIT_BATCH_MAX && !log->stop && !log->flush_requested &&
               !timespec_reached(&deadline))
            pthread_cond_timedwait(&log->wake, &log->lock, &deadline);
        log->flush_requested = false;
        pthread_mutex_unlock(&log->lock);

        pthread_mutex_lock(&log->commit_lock);
        int rc = audit_commit_queued(log, NULL, 0);
        pthread_mutex_unlock(&log->commit_lock);

        pthread_mutex_lock(&log->lock);
        if (rc != FV_OK) {
            fv_error("cannot commit %zu queued audit entries, retrying in %u ms; read requests "
                     "are answered 503 until it succeeds: %s",
                     log->len, log->flush_ms, fv_strerror(rc));
            if (log->stop)
                break;
            /* Retry after one flush interval, not in a busy loop. */
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            timespec_add_ms(&deadline, log->flush_ms);
            while (!log->stop && !timespec_reached(&deadline))
                pthread_cond_timedwait(&log->wake, &log->lock, &deadline);
        }
    }
    if (log->len > 0)
        fv_error("%zu audit entries of read requests could not be committed and are lost",
                 log->len);
    pthread_mutex_unlock(&log->lock);
    return NULL;
}

int api_audit_log_create(store_env *store, unsigned flush_ms, unsigned queue_max,
                         api_audit_log **out)
{
    *out = NULL;
    api_audit_log *log = calloc(1, sizeof *log);
    if (log == NULL)
        return FV_ERR_NOMEM;
    log->store = store;
    log->flush_ms = flush_ms != 0 ? flush_ms : API_AUDIT_FLUSH_MS_DEFAULT;
    log->cap = queue_max != 0 ? queue_max : API_AUDIT_QUEUE_DEFAULT;
    log->wait_ms = API_AUDIT_WAIT_MS;
    log->ring = calloc(log->cap, sizeof *log->ring);
    log->time_us = calloc(log->cap, sizeof *log->time_us);
    if (log->ring == NULL || log->time_us == NULL) {
        api_audit_log_destroy(&log);
        return FV_ERR_NOMEM;
    }

    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        api_audit_log_destroy(&log);
        return FV_ERR_NOMEM;
    }
    /* Deadlines are CLOCK_MONOTONIC, so a wall-clock step cannot stall
     * or rush the writer. */
    bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0;
    if (ok && pthread_mutex_init(&log->lock, NULL) != 0)
        ok = false;
    else if (ok && pthread_mutex_init(&log->commit_lock, NULL) != 0) {
        pthread_mutex_destroy(&log->lock);
        ok = false;
    } else if (ok && pthread_cond_init(&log->wake, &attr) != 0) {
        pthread_mutex_destroy(&log->lock);
        pthread_mutex_destroy(&log->commit_lock);
        ok = false;
    } else if (ok && pthread_cond_init(&log->room, &attr) != 0) {
        pthread_mutex_destroy(&log->lock);
        pthread_mutex_destroy(&log->commit_lock);
        pthread_cond_destroy(&log->wake);
        ok = false;
    }
    pthread_condattr_destroy(&attr);
    if (!ok) {
        api_audit_log_destroy(&log);
        return FV_ERR_NOMEM;
    }
    log->locks_ready = true;
    clock_gettime(CLOCK_MONOTONIC, &log->oldest_at);

    if (pthread_create(&log->thread, NULL, audit_writer_main, log) != 0) {
        api_audit_log_destroy(&log);
        return FV_ERR_NOMEM;
    }
    log->thread_started = true;
    *out = log;
    return FV_OK;
}

void api_audit_log_destroy(api_audit_log **logp)
{
    if (logp == NULL || *logp == NULL)
        return;
    api_audit_log *log = *logp;
    *logp = NULL;

    if (log->thread_started) {
        /* The writer commits everything still queued before it exits. */
        pthread_mutex_lock(&log->lock);
        log->stop = true;
        pthread_cond_signal(&log->wake);
        pthread_mutex_unlock(&log->lock);
        pthread_join(log->thread, NULL);
    }
    if (log->locks_ready) {
        pthread_mutex_destroy(&log->lock);
        pthread_mutex_destroy(&log->commit_lock);
        pthread_cond_destroy(&log->wake);
        pthread_cond_destroy(&log->room);
    }
    free(log->ring);
    free(log->time_us);
    free(log);
}

int api_audit_enqueue(api_audit_log *log, const store_audit_entry *e, uint64_t now_us)
{
    int rc = FV_OK;

    pthread_mutex_lock(&log->lock);
    if (log->failing) {
        pthread_mutex_unlock(&log->lock);
        return FV_ERR_STORE;
    }
    if (log->len == log->cap) {
        /* Ask the writer to commit now and wait for room. */
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        timespec_add_ms(&deadline, log->wait_ms);
        log->flush_requested = true;
        pthread_cond_signal(&log->wake);
        while (log->len == log->cap && !log->failing && !log->stop) {
            int wrc = pthread_cond_timedwait(&log->room, &log->lock, &deadline);
            if (wrc == ETIMEDOUT)
                break;
        }
        if (log->len == log->cap || log->stop)
            rc = FV_ERR_FULL;
        else if (log->failing)
            rc = FV_ERR_STORE;
    }
    if (rc == FV_OK) {
        size_t slot = (log->head + log->len) % log->cap;
        log->ring[slot] = *e;
        log->time_us[slot] = now_us;
        log->len++;
        if (log->len == 1)
            clock_gettime(CLOCK_MONOTONIC, &log->oldest_at);
        if (log->len == 1 || log->len >= API_AUDIT_BATCH_MAX)
            pthread_cond_signal(&log->wake);
    }
    pthread_mutex_unlock(&log->lock);
    return rc;
}

int api_audit_flush(api_audit_log *log)
{
    if (log == NULL)
        return FV_OK;
    pthread_mutex_lock(&log->commit_lock);
    int rc = audit_commit_queued(log, NULL, 0);
    pthread_mutex_unlock(&log->commit_lock);
    return rc;
}

int api_audit_append_now(api_server *srv, const store_audit_entry *e, uint64_t now_us)
{
    if (srv->audit_log == NULL)
        return store_audit_append(srv->store, e, now_us, NULL);
    pthread_mutex_lock(&srv->audit_log->commit_lock);
    int rc = audit_commit_queued(srv->audit_log, e, now_us);
    pthread_mutex_unlock(&srv->audit_log->commit_lock);
    return rc;
}

int api_server_audit_flush(api_server *server)
{
    return server != NULL ? api_audit_flush(server->audit_log) : FV_ERR_INVALID;
}

/* ---- /api/v1/audit ---------------------------------------------------- */

typedef struct audit_query {
    const char *limit, *cursor, *order;
    bool failed;
    char message[API_MESSAGE_MAX];
} audit_query;

static enum MHD_Result audit_query_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    audit_query *q = cls;
    const char **slot = NULL;
    char safe[48];

    (void)kind;
    if (strcmp(key, "limit") == 0)
        slot = &q->limit;
    else if (strcmp(key, "cursor") == 0)
        slot = &q->cursor;
    else if (strcmp(key, "order") == 0)
        slot = &q->order;
    api_text_sanitize(key, safe, sizeof safe);
    if (slot == NULL) {
        snprintf(q->message, sizeof q->message,
                 "query parameter '%s' is unknown; allowed: limit, cursor, order", safe);
    } else if (value == NULL) {
        snprintf(q->message, sizeof q->message,
                 "query parameter '%s' has no value; write name=value", safe);
    } else if (*slot != NULL) {
        snprintf(q->message, sizeof q->message,
                 "query parameter '%s' is given more than once; give it once", safe);
    } else {
        *slot = value;
        return MHD_YES;
    }
    /* Q is never NULL (the caller passes its own struct). The analyzer
     * assumes it is because a slot at offset 0 of Q was compared with NULL. */
    q->failed = true;  // NOLINT(clang-analyzer-core.NullDereference)
    return MHD_NO;
}

typedef struct audit_page {
    json_t *entries;
    uint32_t limit, count;
    uint64_t last_seq;
    bool more, nomem;
} audit_page;

static void hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static bool audit_page_add(void *ctx, const store_audit_entry *e)
{
    audit_page *page = ctx;
    if (page->count == page->limit) {
        page->more = true;
        return false;
    }
    char time_text[FV_TIME_TEXT_MAX], hash[2 * STORE_AUDIT_HASH_BYTES + 1];
    fv_time_format(e->time_us, time_text);
    hex_encode(e->hash, sizeof e->hash, hash);
    json_t *obj = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "seq",
                            (json_int_t)e->seq, "time", time_text, "actor", e->actor, "role",
                            e->role, "action", e->action, "object", e->object, "params",
                            e->params, "result_count", (json_int_t)e->result_count, "reason",
                            e->reason, "hash", hash);
    if (obj == NULL || json_array_append_new(page->entries, obj) != 0) {
        page->nomem = true;
        return false;
    }
    page->count++;
    page->last_seq = e->seq;
    return true;
}

void api_route_audit(api_server *srv, struct MHD_Connection *conn, api_reply *out)
{
    audit_query q = {.failed = false};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, audit_query_collect, &q);
    if (q.failed) {
        api_reply_error(out, 400, "invalid_parameter", q.message);
        return;
    }

    bool newest_first = true;
    uint32_t limit = API_LIMIT_DEFAULT;
    uint64_t cursor = 0;
    if (q.order != NULL) {
        if (strcmp(q.order, "asc") == 0) {
            newest_first = false;
        } else if (strcmp(q.order, "desc") != 0) {
            api_reply_bad_value(out, "order", q.order, "asc, desc");
            return;
        }
    }
    if (q.limit != NULL && api_limit_parse(q.limit, &limit) != FV_OK) {
        api_reply_bad_value(out, "limit", q.limit, "an integer from 1 to 1000");
        return;
    }
    if (q.cursor != NULL && (api_cursor_parse(q.cursor, newest_first, &cursor) != FV_OK ||
                             cursor == 0 || (newest_first && cursor == 1))) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid value for 'cursor'; pass next_cursor from the previous page "
                        "unchanged, with the same order");
        return;
    }

    audit_page page = {.entries = json_array(), .limit = limit};
    if (page.entries == NULL) {
        api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        return;
    }
    /* The cursor is the last sequence number returned; the next page
     * starts on the far side of it. */
    uint64_t from = 0;
    if (cursor != 0)
        from = newest_first ? cursor - 1 : cursor + 1;
    /* Show the entries of earlier reads still in the queue as well. */
    if (api_audit_flush(srv->audit_log) != FV_OK) {
        json_decref(page.entries);
        api_reply_error(out, 503, "audit_unavailable",
                        "the queued audit entries could not be committed; check the server log "
                        "and that the store is writable");
        return;
    }
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_audit_each(srv->store, from, limit + 1u, newest_first, audit_page_add, &page,
                              NULL);
    pthread_mutex_unlock(&srv->store_lock);
    if (page.nomem || rc != FV_OK) {
        json_decref(page.entries);
        if (page.nomem)
            api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        else
            api_reply_error(out, 500, "store_error", "reading the audit trail failed");
        return;
    }

    json_t *next = json_null();
    if (page.more) {
        char text[API_CURSOR_TEXT_MAX];
        api_cursor_format(newest_first, page.last_seq, text);
        json_decref(next);
        next = json_string(text);
    }
    out->status = 200;
    out->body = json_pack("{s:o, s:o, s:I}", "entries", page.entries, "next_cursor", next,
                          "count", (json_int_t)page.count);
}

/* ---- /api/v1/audit/verify --------------------------------------------- */

/* Reject every query parameter, so a typo such as ?limit=5 shows. */
static enum MHD_Result verify_query_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    audit_query *q = cls;
    char safe[48];

    (void)kind;
    (void)value;
    api_text_sanitize(key, safe, sizeof safe);
    snprintf(q->message, sizeof q->message,
             "query parameter '%s' is unknown; /api/v1/audit/verify takes no parameters", safe);
    q->failed = true;
    return MHD_NO;
}

void api_route_audit_verify(api_server *srv, struct MHD_Connection *conn, api_reply *out)
{
    audit_query q = {.failed = false};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, verify_query_collect, &q);
    if (q.failed) {
        api_reply_error(out, 400, "invalid_parameter", q.message);
        return;
    }

    store_audit_verify_result res;
    memset(&res, 0, sizeof res);
    if (api_audit_flush(srv->audit_log) != FV_OK) {
        api_reply_error(out, 503, "audit_unavailable",
                        "the queued audit entries could not be committed; check the server log "
                        "and that the store is writable");
        return;
    }
    /* The walk reads the whole chain in one read transaction; the lock
     * only keeps it from interleaving with this server's appends. */
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_audit_verify(srv->store, &res);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc != FV_OK) {
        api_reply_error(out, 500, "store_error", "reading the audit trail failed");
        return;
    }

    char head_hash[2 * STORE_AUDIT_HASH_BYTES + 1];
    hex_encode(res.head_hash, sizeof res.head_hash, head_hash);
    json_t *broken = res.ok ? json_null() : json_integer((json_int_t)res.broken_seq);
    json_t *reason = res.ok ? json_null() : json_string(res.reason);
    if (broken == NULL || reason == NULL) {
        json_decref(broken);
        json_decref(reason);
        api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        return;
    }
    out->body = json_pack("{s:b, s:I, s:I, s:I, s:s, s:o, s:o}", "ok", res.ok, "checked",
                          (json_int_t)res.checked, "first_seq", (json_int_t)res.first_seq,
                          "head_seq", (json_int_t)res.head_seq, "head_hash", head_hash,
                          "broken_seq", broken, "reason", reason);
    if (out->body == NULL) {
        api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        return;
    }
    out->status = 200;
}
