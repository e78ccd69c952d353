/*
 * api_alerts.c: one alert with the records behind it, and its life-cycle
 * changes (GET and PATCH /api/v1/alerts/{id}).
 *
 * The life cycle lives in the store (store_alerts.c). This file checks
 * the request, requests the change from the store and writes an audit
 * entry "alert.state_change" naming the user who made it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* Flow records listed with one alert at most. */
#define API_ALERT_RECORDS_MAX 200u

/* ---- helpers -------------------------------------------------------------- */

int api_alert_id_parse(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    size_t len = text != NULL ? strlen(text) : 0;

    if (len == 0 || len > 20 || out == NULL)
        return FV_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return FV_ERR_INVALID;
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - digit) / 10u)
            return FV_ERR_INVALID;
        v = v * 10u + digit;
    }
    if (v == 0)
        return FV_ERR_INVALID;
    *out = v;
    return FV_OK;
}

json_t *api_alert_json(const fv_record *rec, const store_alert_status *st)
{
    fv_alert_life life = {
        .id = st->id,
        .state = store_alert_state_name(st->state),
        .count = st->count,
        .first_seen_us = st->first_seen_us,
        .last_seen_us = st->last_seen_us,
        .changed_us = st->changed_us,
        .changed_by = st->changed_by,
        .note = st->note,
        .newest = &st->newest,
    };
    return fv_alert_to_json(rec, &life);
}

/* Parse the {id} segment; fill OUT with a 400 reply on failure. */
static bool api_alert_id_from(const api_match *match, uint64_t *id, api_reply *out)
{
    if (match->arg == NULL || api_alert_id_parse(match->arg, id) != FV_OK) {
        api_reply_error(out, 400, "invalid_parameter",
                        "invalid alert id in the path; allowed: the decimal id string of an "
                        "alert as /api/v1/alerts lists it");
        return false;
    }
    return true;
}

static void api_alert_not_found(api_reply *out, uint64_t id)
{
    char message[API_MESSAGE_MAX];
    snprintf(message, sizeof message,
             "no alert %llu: it never existed or has expired under the retention limit",
             (unsigned long long)id);
    api_reply_error(out, 404, "not_found", message);
}

static void api_alert_store_error(api_reply *out, int rc)
{
    char message[API_MESSAGE_MAX];
    if (rc == FV_ERR_NOMEM) {
        api_reply_error(out, 503, "out_of_memory", "the server ran out of memory; retry later");
        return;
    }
    fv_warning("api: alert request failed in the store: %s", fv_strerror(rc));
    snprintf(message, sizeof message, "the record store failed: %s", fv_strerror(rc));
    api_reply_error(out, 500, "store_error", message);
}

/* ---- GET /api/v1/alerts/{id} ---------------------------------------------- */

/* The flows between the alert's host and peer in the alert's span. */
typedef struct api_alert_flows {
    char host[FV_ENDPOINT_TEXT_MAX];
    char peer[FV_ENDPOINT_TEXT_MAX];    /* "" when the alert has no peer */
    json_t *records;
    uint32_t seen;
    bool truncated;
    bool nomem;
} api_alert_flows;

static bool api_endpoint_is(const fv_endpoint *ep, const char *text)
{
    char buf[FV_ENDPOINT_TEXT_MAX];
    if (ep->kind == FV_EP_NONE)
        return false;
    fv_endpoint_format(ep, buf);
    return strcmp(buf, text) == 0;
}

static bool api_alert_flow_add(void *ctx, const fv_record *rec)
{
    api_alert_flows *f = ctx;
    const fv_flow_record *fl = &rec->u.flow;

    f->seen++;
    bool host_src = api_endpoint_is(&fl->src, f->host);
    bool host_dst = api_endpoint_is(&fl->dst, f->host);
    if (!host_src && !host_dst)
        return f->seen < API_FILTER_SCAN_MAX;
    if (f->peer[0] != '\0' && !(host_src && api_endpoint_is(&fl->dst, f->peer)) &&
        !(host_dst && api_endpoint_is(&fl->src, f->peer)))
        return f->seen < API_FILTER_SCAN_MAX;
    if (json_array_size(f->records) >= API_ALERT_RECORDS_MAX) {
        f->truncated = true;
        return false;
    }
    json_t *obj = fv_record_to_json(rec);
    if (obj == NULL || json_array_append_new(f->records, obj) != 0) {
        f->nomem = true;
        return false;
    }
    if (f->seen >= API_FILTER_SCAN_MAX) {
        f->truncated = true;
        return false;
    }
    return true;
}

void api_route_alert_get(api_server *srv, struct MHD_Connection *conn, int kind,
                         const api_match *match, api_reply *out)
{
    static const char *const none[] = {NULL};
    api_args a = {.allowed = none};
    uint64_t id = 0;
    fv_record rec;
    store_alert_status *st = NULL;
    api_alert_flows f = {0};

    (void)kind;
    if (!api_args_read(conn, &a, out) || !api_alert_id_from(match, &id, out))
        return;
    st = calloc(1, sizeof *st);
    f.records = json_array();
    if (st == NULL || f.records == NULL) {
        api_alert_store_error(out, FV_ERR_NOMEM);
        goto done;
    }

    uint64_t now_us = srv->clock_us();
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_alert_find(srv->store, id, now_us, &rec, st);
    if (rc == FV_OK) {
        /* The records the alert rests on: flows of its host (and peer)
         * over the span of every raise. */
        const fv_alert_record *first = &rec.u.alert;
        uint64_t from = first->first_us, to = st->newest.last_us;
        if (st->newest.first_us != 0 && (from == 0 || st->newest.first_us < from))
            from = st->newest.first_us;
        if (first->last_us > to)
            to = first->last_us;
        fv_endpoint_format(&first->host, f.host);
        if (first->peer.kind != FV_EP_NONE)
            fv_endpoint_format(&first->peer, f.peer);
        store_query q = {.cls = FV_CLASS_FLOW, .from_us = from, .to_us = to,
                         .limit = STORE_QUERY_LIMIT_MAX};
        for (unsigned call = 0; call < 8 && rc == FV_OK && to != 0; call++) {
            uint64_t next = 0;
            rc = store_query_run(srv->store, &q, now_us, api_alert_flow_add, &f, &next);
            if (f.truncated || f.nomem || next == 0)
                break;
            q.after_id = next;
            if (call == 7)
                f.truncated = true;
        }
        if (rc != FV_OK)
            rc = rc == FV_ERR_NOT_FOUND ? FV_ERR_STORE : rc;
    }
    pthread_mutex_unlock(&srv->store_lock);
    if (rc == FV_ERR_NOT_FOUND) {
        api_alert_not_found(out, id);
        goto done;
    }
    if (rc == FV_OK && f.nomem)
        rc = FV_ERR_NOMEM;
    if (rc != FV_OK) {
        api_alert_store_error(out, rc);
        goto done;
    }
    json_t *alert = api_alert_json(&rec, st);
    if (alert == NULL) {
        api_alert_store_error(out, FV_ERR_NOMEM);
        goto done;
    }
    out->status = 200;
    out->body = json_pack("{s:o, s:O, s:I, s:b}", "alert", alert, "records", f.records,
                          "count", (json_int_t)json_array_size(f.records), "records_complete",
                          !f.truncated);
done:
    json_decref(f.records);
    free(st);
}

/* ---- PATCH /api/v1/alerts/{id} -------------------------------------------- */

/* Write the audit entry of a state change. Returns false on failure. */
static bool api_alert_audit(api_server *srv, const api_principal *who, uint64_t id,
                            store_alert_state to, uint64_t now_us)
{
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.actor, sizeof e.actor, "%s", who != NULL && who->user[0] != '\0' ? who->user
                                                                                : "anonymous");
    const char *role = who == NULL                        ? ""
                       : who->role == API_ROLE_ADMIN      ? "admin"
                       : who->role == API_ROLE_COMPLIANCE ? "compliance"
                       : who->role == API_ROLE_ANALYST    ? "analyst"
                                                          : "";
    snprintf(e.role, sizeof e.role, "%s", role);
    snprintf(e.action, sizeof e.action, "alert.state_change");
    snprintf(e.object, sizeof e.object, "alerts/%llu", (unsigned long long)id);
    snprintf(e.params, sizeof e.params, "state=%s", store_alert_state_name(to));
    e.result_count = 1;
    return api_audit_append_now(srv, &e, now_us) == FV_OK;
}

/* Check the body {"state": ..., "note": ...}; fill OUT on failure. */
static bool api_alert_patch_body(json_t *body, store_alert_state *to, const char **note,
                                 api_reply *out)
{
    const char *key;
    json_t *value;

    if (body == NULL || !json_is_object(body)) {
        api_reply_error(out, 400, "invalid_body",
                        "send a JSON object {\"state\": \"acknowledged\" or \"closed\", "
                        "\"note\": \"...\"} with Content-Type: application/json");
        return false;
    }
    json_object_foreach(body, key, value) {
        if (strcmp(key, "state") != 0 && strcmp(key, "note") != 0) {
            char safe[48], message[API_MESSAGE_MAX];
            api_text_sanitize(key, safe, sizeof safe);
            snprintf(message, sizeof message, "unknown member '%s'; allowed: state, note", safe);
            api_reply_error(out, 400, "invalid_body", message);
            return false;
        }
    }
    const char *state = json_string_value(json_object_get(body, "state"));
    if (state == NULL || store_alert_state_parse(state, to) != FV_OK ||
        *to == STORE_ALERT_NEW) {
        api_reply_error(out, 400, "invalid_body",
                        "invalid value for 'state'; allowed: acknowledged, closed");
        return false;
    }
    json_t *note_json = json_object_get(body, "note");
    *note = NULL;
    if (note_json != NULL && !json_is_null(note_json)) {
        *note = json_string_value(note_json);
        size_t chars = *note != NULL ? json_string_length(note_json) : 0;
        if (*note == NULL || strlen(*note) != chars) {
            /* Not a string, or one with an embedded NUL. */
            api_reply_error(out, 400, "invalid_body",
                            "invalid value for 'note'; allowed: a string of at most 1000 "
                            "characters");
            return false;
        }
        size_t code_points = 0;
        for (const unsigned char *p = (const unsigned char *)*note; *p != 0; p++) {
            code_points += (*p & 0xc0u) != 0x80u;
            /* The store rejects control characters other than tab, LF
             * and CR. A 400 naming the character replaces the store error. */
            if ((*p < 0x20u && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7fu) {
                char message[API_MESSAGE_MAX];
                snprintf(message, sizeof message,
                         "'note' contains the control character U+%04X at character %zu; "
                         "remove it (tab, line feed and carriage return are allowed)",
                         (unsigned)*p, code_points);
                api_reply_error(out, 400, "invalid_body", message);
                return false;
            }
        }
        if (code_points > STORE_ALERT_NOTE_MAX_CHARS || chars > STORE_ALERT_NOTE_MAX_BYTES) {
            api_reply_error(out, 400, "invalid_body",
                            "'note' is too long; allowed: at most 1000 characters and 3000 "
                            "bytes of UTF-8");
            return false;
        }
    }
    bool blank = true;
    for (const char *p = *note; p != NULL && *p != '\0' && blank; p++)
        blank = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
    if (*to == STORE_ALERT_CLOSED && blank) {
        api_reply_error(out, 400, "note_required",
                        "closing an alert needs a 'note' saying why; add \"note\": \"...\"");
        return false;
    }
    return true;
}

void api_route_alert_patch(api_server *srv, struct MHD_Connection *conn, int kind,
                           const api_match *match, api_reply *out)
{
    static const char *const none[] = {NULL};
    api_args a = {.allowed = none};
    uint64_t id = 0;
    store_alert_state to;
    const char *note = NULL;

    (void)kind;
    if (!api_args_read(conn, &a, out) || !api_alert_id_from(match, &id, out) ||
        !api_alert_patch_body(api_request_json(), &to, &note, out))
        return;

    const api_principal *who = api_request_principal();
    const char *user = who != NULL && who->user[0] != '\0' ? who->user : "anonymous";
    store_alert_status *st = calloc(1, sizeof *st);
    if (st == NULL) {
        api_alert_store_error(out, FV_ERR_NOMEM);
        return;
    }
    uint64_t now_us = srv->clock_us();
    fv_record rec;
    bool audited = true;
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_alert_find(srv->store, id, now_us, &rec, st);
    uint8_t from = st->state;
    if (rc == FV_OK)
        rc = store_alert_transition(srv->store, id, to, note, user, now_us, st);
    if (rc == FV_OK)
        audited = api_alert_audit(srv, who, id, to, now_us);
    pthread_mutex_unlock(&srv->store_lock);

    if (rc == FV_ERR_NOT_FOUND) {
        api_alert_not_found(out, id);
    } else if (rc == FV_ERR_STATE && !(from == STORE_ALERT_NEW && to != STORE_ALERT_NEW) &&
               !(from == STORE_ALERT_ACKNOWLEDGED && to == STORE_ALERT_CLOSED)) {
        char message[API_MESSAGE_MAX];
        snprintf(message, sizeof message,
                 "alert %llu is %s and cannot become %s; allowed: new -> acknowledged, "
                 "new -> closed, acknowledged -> closed",
                 (unsigned long long)id, store_alert_state_name(from),
                 store_alert_state_name(to));
        api_reply_error(out, 409, "invalid_transition", message);
    } else if (rc == FV_ERR_STATE) {
        /* An allowed transition refused: the store is read-only or failed. */
        api_reply_error(out, 503, "store_unavailable",
                        "the store refused the change; check the server log and that the store "
                        "is writable");
    } else if (rc != FV_OK) {
        api_alert_store_error(out, rc);
    } else if (!audited) {
        api_reply_error(out, 503, "audit_unavailable",
                        "the state change was saved but its audit entry could not be written; "
                        "check the server log and that the store is writable");
    } else {
        out->status = 200;
        out->body = api_alert_json(&rec, st);
        if (out->body == NULL)
            api_alert_store_error(out, FV_ERR_NOMEM);
    }
    free(st);
}
