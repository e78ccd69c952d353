/*
 * store_alerts.c: the life cycle of alerts (count, first and last seen,
 * newest evidence, state, note, who changed it when).
 *
 * Alert records stay immutable in the alerts class. The mutable part of
 * each alert is one entry of the named database "alert_state". Its key
 * is the alert id (8 bytes big-endian, the stored-at time of the alert's
 * first record). Its value is sealed with store_value_seal under the
 * alerts class day key of that id, with the same associated data as the
 * record. Retention therefore removes both the same way: store_sweep
 * deletes the entries of expired alerts (store_alerts_sweep), and
 * destroying the day's key makes any copy left on disk unreadable.
 *
 * Plaintext of an entry (little-endian integers):
 *   magic 'L', format version 1, state u8, count u32,
 *   first_seen_us u64, last_seen_us u64, changed_us u64,
 *   changed_by length u8 + bytes, note length u16 + bytes,
 *   newest raise: length u16 + alerts-class record encoding (store_codec.c).
 * The magic keeps an entry from decoding as a record (and the reverse) if
 * a value were moved between the two databases.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define ALERT_STATE_MAGIC 0x4cu /* 'L' */
#define ALERT_STATE_VERSION 1u

/* Largest plaintext of one entry; store_value_seal accepts at most
 * STORE_RECORD_MAX_BYTES. */
#define ALERT_STATE_PLAIN_MAX STORE_RECORD_MAX_BYTES

static const char *const alert_state_names[] = {"new", "acknowledged", "closed"};

const char *store_alert_state_name(int state)
{
    if (state < 0 || state > STORE_ALERT_CLOSED)
        return NULL;
    return alert_state_names[state];
}

int store_alert_state_parse(const char *name, store_alert_state *out)
{
    if (name == NULL || out == NULL)
        return FV_ERR_INVALID;
    for (int s = STORE_ALERT_NEW; s <= STORE_ALERT_CLOSED; s++) {
        if (strcmp(name, alert_state_names[s]) == 0) {
            *out = (store_alert_state)s;
            return FV_OK;
        }
    }
    return FV_ERR_INVALID;
}

/* ---- encoding ---------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Encode S into OUT (ALERT_STATE_PLAIN_MAX bytes). Return FV_OK,
 * FV_ERR_INVALID (unterminated string) or FV_ERR_FULL. */
static int state_encode(const store_alert_status *s, uint8_t *out, size_t *written)
{
    size_t by_len = strnlen(s->changed_by, sizeof s->changed_by);
    size_t note_len = strnlen(s->note, sizeof s->note);
    if (by_len == sizeof s->changed_by || note_len == sizeof s->note)
        return FV_ERR_INVALID;

    uint8_t rec[STORE_RECORD_MAX_BYTES];
    size_t rec_len = 0;
    int rc = store_record_encode(FV_CLASS_ALERT, &s->newest, rec, sizeof rec, &rec_len);
    if (rc != FV_OK)
        return rc;

    size_t need = 3 + 4 + 24 + 1 + by_len + 2 + note_len + 2 + rec_len;
    if (!(need <= ALERT_STATE_PLAIN_MAX))
        return FV_ERR_FULL;

    size_t n = 0;
    out[n++] = ALERT_STATE_MAGIC;
    out[n++] = ALERT_STATE_VERSION;
    out[n++] = s->state;
    put_u32(out + n, s->count);
    n += 4;
    put_u64(out + n, s->first_seen_us);
    n += 8;
    put_u64(out + n, s->last_seen_us);
    n += 8;
    put_u64(out + n, s->changed_us);
    n += 8;
    out[n++] = (uint8_t)by_len;
    memcpy(out + n, s->changed_by, by_len);
    n += by_len;
    put_u16(out + n, (uint16_t)note_len);
    n += 2;
    memcpy(out + n, s->note, note_len);
    n += note_len;
    put_u16(out + n, (uint16_t)rec_len);
    n += 2;
    memcpy(out + n, rec, rec_len);
    n += rec_len;
    *written = n;
    return FV_OK;
}

/* Decode DATA[0 .. LEN) into *S (id is left alone). Return FV_OK or
 * FV_ERR_PARSE. Every length is checked against what remains. */
static int state_decode(const uint8_t *data, size_t len, store_alert_status *s)
{
    size_t n = 0;
    if (!(3 + 4 + 24 + 1 <= len) || data[0] != ALERT_STATE_MAGIC ||
        data[1] != ALERT_STATE_VERSION || data[2] > STORE_ALERT_CLOSED)
        return FV_ERR_PARSE;
    s->state = data[2];
    n = 3;
    s->count = get_u32(data + n);
    n += 4;
    s->first_seen_us = get_u64(data + n);
    n += 8;
    s->last_seen_us = get_u64(data + n);
    n += 8;
    s->changed_us = get_u64(data + n);
    n += 8;

    size_t by_len = data[n++];
    if (!(by_len < sizeof s->changed_by) || !(by_len <= len - n))
        return FV_ERR_PARSE;
    memcpy(s->changed_by, data + n, by_len);
    s->changed_by[by_len] = '\0';
    n += by_len;

    if (!(2 <= len - n))
        return FV_ERR_PARSE;
    size_t note_len = get_u16(data + n);
    n += 2;
    if (!(note_len < sizeof s->note) || !(note_len <= len - n))
        return FV_ERR_PARSE;
    memcpy(s->note, data + n, note_len);
    s->note[note_len] = '\0';
    n += note_len;

    if (!(2 <= len - n))
        return FV_ERR_PARSE;
    size_t rec_len = get_u16(data + n);
    n += 2;
    if (rec_len != len - n)
        return FV_ERR_PARSE;
    fv_record rec;
    if (store_record_decode(FV_CLASS_ALERT, data + n, rec_len, &rec) != FV_OK)
        return FV_ERR_PARSE;
    s->newest = rec.u.alert;
    if (s->count == 0)
        return FV_ERR_PARSE;
    return FV_OK;
}

/* The life cycle of an alert that has no entry: its record alone. */
static void state_default(uint64_t id, const fv_alert_record *rec, store_alert_status *s)
{
    memset(s, 0, sizeof *s);
    s->id = id;
    s->state = STORE_ALERT_NEW;
    s->count = 1;
    s->first_seen_us = rec->ts_us;
    s->last_seen_us = rec->ts_us;
    s->newest = *rec;
}

/* Read and open the entry of ID inside TXN. Return MDB_SUCCESS (entry
 * decoded into *S), MDB_NOTFOUND (no entry, or one that cannot be
 * opened or decoded) or another LMDB code. */
static int state_read(store_env *env, MDB_txn *txn, uint64_t id, store_alert_status *s)
{
    uint8_t keybuf[8];
    store_key_encode(id, keybuf);
    MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
    MDB_val v;
    int mrc = mdb_get(txn, env->alert_state, &k, &v);
    if (mrc != MDB_SUCCESS)
        return mrc;

    uint8_t plain[ALERT_STATE_PLAIN_MAX];
    size_t plain_len = 0;
    bool refreshed = false;
    store_value_status st = store_value_open(env, FV_CLASS_ALERT, id, v.mv_data, v.mv_size,
                                             plain, sizeof plain, &plain_len, &refreshed);
    /* A legacy (unencrypted) value never existed for this database. */
    int rc = st == STORE_VALUE_OK ? state_decode(plain, plain_len, s) : FV_ERR_PARSE;
    sodium_memzero(plain, sizeof plain);
    if (rc != FV_OK) {
        fv_warning("store %s: the life-cycle entry of alert %llu cannot be read; showing the "
                   "alert as new",
                   env->dir, (unsigned long long)id);
        return MDB_NOTFOUND;
    }
    s->id = id;
    return MDB_SUCCESS;
}

/* Seal S and write it as the entry of S->id inside TXN. Return an LMDB
 * code (EIO when sealing fails). */
static int state_write(store_env *env, MDB_txn *txn, const store_alert_status *s)
{
    uint8_t plain[ALERT_STATE_PLAIN_MAX];
    uint8_t sealed[ALERT_STATE_PLAIN_MAX + STORE_VALUE_OVERHEAD];
    size_t plain_len = 0, sealed_len = 0;

    int rc = state_encode(s, plain, &plain_len);
    if (rc == FV_OK) {
        store_keys_lock(env);
        rc = store_value_seal(env, FV_CLASS_ALERT, s->id, plain, plain_len, sealed,
                              sizeof sealed, &sealed_len);
        store_keys_unlock(env);
    }
    sodium_memzero(plain, sizeof plain);
    if (rc != FV_OK) {
        fv_error("store %s: cannot seal the life-cycle entry of an alert: %s", env->dir,
                 fv_strerror(rc));
        return EIO;
    }
    uint8_t keybuf[8];
    store_key_encode(s->id, keybuf);
    MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
    MDB_val v = {.mv_size = sealed_len, .mv_data = sealed};
    return mdb_put(txn, env->alert_state, &k, &v, 0);
}

/* ---- upsert ------------------------------------------------------------ */

static bool endpoint_same(const fv_endpoint *a, const fv_endpoint *b)
{
    return a->kind == b->kind && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

/* True if alerts A and B describe the same thing: detector, host, peer,
 * peer port and protocol. */
static bool alert_same_key(const fv_alert_record *a, const fv_alert_record *b)
{
    return a->detector == b->detector && endpoint_same(&a->host, &b->host) &&
           endpoint_same(&a->peer, &b->peer) && a->peer_port == b->peer_port &&
           a->proto == b->proto;
}

static uint64_t abs_diff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

typedef struct upsert_ctx {
    const fv_alert_record *alert;
    uint64_t window_us;
    uint64_t now_us;
    bool merged;
    uint64_t id;
} upsert_ctx;

/* Look for an open alert to merge into and update it. Runs in a write
 * transaction (and may run again after the map grew). */
static int upsert_merge_write(store_env *env, MDB_txn *txn, void *ctx)
{
    upsert_ctx *u = ctx;
    u->merged = false;
    u->id = 0;

    uint64_t retention_s = store_retention_in_txn(env, txn, FV_CLASS_ALERT);
    uint64_t cutoff_us = store_live_cutoff_us(retention_s, u->now_us);

    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, env->alert_state, &cur);
    if (mrc != MDB_SUCCESS)
        return mrc;

    store_alert_status s;
    uint64_t found = 0;
    uint32_t examined = 0;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
         mrc == MDB_SUCCESS && examined < STORE_ALERT_DEDUPE_SCAN_MAX;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        uint64_t id;
        if (!store_key_decode(&k, &id)) {
            mrc = MDB_CORRUPTED;
            break;
        }
        if (id < cutoff_us)
            break; /* expired alerts are never merged into */
        examined++;
        if (state_read(env, txn, id, &s) != MDB_SUCCESS)
            continue;
        if (s.state != STORE_ALERT_CLOSED && alert_same_key(&s.newest, u->alert) &&
            abs_diff(s.last_seen_us, u->alert->ts_us) <= u->window_us) {
            found = id;
            break;
        }
    }
    mdb_cursor_close(cur);
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        return mrc;
    if (found == 0)
        return MDB_SUCCESS;

    if (s.count < UINT32_MAX)
        s.count++;
    if (u->alert->ts_us >= s.last_seen_us) {
        s.last_seen_us = u->alert->ts_us;
        s.newest = *u->alert;
    }
    if (u->alert->ts_us < s.first_seen_us)
        s.first_seen_us = u->alert->ts_us;
    mrc = state_write(env, txn, &s);
    if (mrc == MDB_SUCCESS) {
        u->merged = true;
        u->id = found;
    }
    return mrc;
}

typedef struct create_ctx {
    store_alert_status status;
} create_ctx;

static int upsert_create_write(store_env *env, MDB_txn *txn, void *ctx)
{
    create_ctx *c = ctx;
    return state_write(env, txn, &c->status);
}

int store_alert_upsert(store_env *env, const fv_alert_record *a, uint32_t window_s,
                       uint64_t now_us, uint64_t *id, bool *merged)
{
    if (id != NULL)
        *id = 0;
    if (merged != NULL)
        *merged = false;
    if (env == NULL || a == NULL)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed || !env->has_alert_state)
        return FV_ERR_STATE;

    /* Alerts of this batch still in the queue must be visible to the
     * search, and a new alert needs its final id. */
    int rc = store_commit(env);
    if (rc != FV_OK)
        return rc;

    upsert_ctx u = {.alert = a, .window_us = (uint64_t)window_s * 1000000u, .now_us = now_us};
    if (window_s > 0) {
        rc = store_write_txn(env, "merge an alert", upsert_merge_write, &u);
        if (rc != FV_OK)
            return rc;
        if (u.merged) {
            if (id != NULL)
                *id = u.id;
            if (merged != NULL)
                *merged = true;
            return FV_OK;
        }
    }

    rc = store_put(env, FV_CLASS_ALERT, a, now_us);
    if (rc == FV_OK)
        rc = store_commit(env);
    if (rc != FV_OK)
        return rc;

    /* The commit fixed the id: the alert is the last record of its class
     * this writer queued. */
    create_ctx c;
    state_default(env->last_id[FV_CLASS_ALERT], a, &c.status);
    rc = store_write_txn(env, "record a new alert", upsert_create_write, &c);
    if (rc != FV_OK)
        return rc;
    if (id != NULL)
        *id = c.status.id;
    return FV_OK;
}

/* ---- reading ----------------------------------------------------------- */

int store_alert_status_get(store_env *env, const uint64_t *ids, const fv_alert_record *recs,
                           size_t count, store_alert_status *out)
{
    if (env == NULL || (count > 0 && (ids == NULL || recs == NULL || out == NULL)))
        return FV_ERR_INVALID;
    for (size_t i = 0; i < count; i++)
        state_default(ids[i], &recs[i], &out[i]);
    if (count == 0 || !env->has_alert_state)
        return FV_OK;

    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    int mrc = MDB_SUCCESS;
    for (size_t i = 0; i < count; i++) {
        mrc = state_read(env, txn, ids[i], &out[i]);
        if (mrc == MDB_NOTFOUND) {
            state_default(ids[i], &recs[i], &out[i]);
            mrc = MDB_SUCCESS;
        }
        if (mrc != MDB_SUCCESS)
            break;
    }
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read alert life-cycle entries: %s", env->dir,
                 mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    return FV_OK;
}

/* Read record ID of the alerts class inside TXN. Return MDB_SUCCESS,
 * MDB_NOTFOUND (absent, expired or unreadable) or another LMDB code. */
static int alert_record_read(store_env *env, MDB_txn *txn, uint64_t id, uint64_t now_us,
                             fv_record *rec)
{
    if (!env->has_dbi[FV_CLASS_ALERT])
        return MDB_NOTFOUND;
    uint64_t retention_s = store_retention_in_txn(env, txn, FV_CLASS_ALERT);
    if (id < store_live_cutoff_us(retention_s, now_us))
        return MDB_NOTFOUND;

    uint8_t keybuf[8];
    store_key_encode(id, keybuf);
    MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
    MDB_val v;
    int mrc = mdb_get(txn, env->dbi[FV_CLASS_ALERT], &k, &v);
    if (mrc != MDB_SUCCESS)
        return mrc;

    uint8_t plain[STORE_RECORD_MAX_BYTES];
    size_t plain_len = 0;
    bool refreshed = false;
    store_value_status st = store_value_open(env, FV_CLASS_ALERT, id, v.mv_data, v.mv_size,
                                             plain, sizeof plain, &plain_len, &refreshed);
    bool ok = st != STORE_VALUE_UNDECRYPTABLE &&
              store_record_decode(FV_CLASS_ALERT, plain, plain_len, rec) == FV_OK;
    sodium_memzero(plain, sizeof plain);
    if (!ok)
        return MDB_NOTFOUND;
    rec->id = id;
    rec->stored_us = id;
    return MDB_SUCCESS;
}

int store_alert_find(store_env *env, uint64_t id, uint64_t now_us, fv_record *rec,
                     store_alert_status *status)
{
    if (env == NULL || id == 0)
        return FV_ERR_INVALID;
    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;

    fv_record local;
    int mrc = alert_record_read(env, txn, id, now_us, &local);
    if (mrc == MDB_SUCCESS && status != NULL) {
        int smrc = env->has_alert_state ? state_read(env, txn, id, status) : MDB_NOTFOUND;
        if (smrc == MDB_NOTFOUND)
            state_default(id, &local.u.alert, status);
        else
            mrc = smrc;
    }
    store_read_end(env, &txn);
    if (mrc == MDB_NOTFOUND)
        return FV_ERR_NOT_FOUND;
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot read alert %llu: %s", env->dir, (unsigned long long)id,
                 mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    if (rec != NULL)
        *rec = local;
    return FV_OK;
}

/* ---- state changes ----------------------------------------------------- */

/* Count the code points of valid UTF-8 TEXT into *CHARS. Return false
 * for invalid UTF-8 (overlong forms, surrogates, values past U+10FFFF)
 * or a control character other than tab and line breaks. */
static bool note_valid_utf8(const char *text, size_t *chars)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0;
    while (*p != 0) {
        unsigned c = *p;
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                return false;
            len = 1;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false; /* also stops at the NUL */
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += len;
        n++;
    }
    *chars = n;
    return true;
}

static bool transition_allowed(uint8_t from, store_alert_state to)
{
    if (from == STORE_ALERT_NEW)
        return to == STORE_ALERT_ACKNOWLEDGED || to == STORE_ALERT_CLOSED;
    if (from == STORE_ALERT_ACKNOWLEDGED)
        return to == STORE_ALERT_CLOSED;
    return false;
}

typedef struct transition_ctx {
    uint64_t id;
    store_alert_state to;
    const char *note;
    const char *user;
    uint64_t now_us;
    int result;                 /* FV_OK, FV_ERR_NOT_FOUND or FV_ERR_STATE */
    store_alert_status status;
} transition_ctx;

static int transition_write(store_env *env, MDB_txn *txn, void *ctx)
{
    transition_ctx *t = ctx;
    fv_record rec;
    t->result = FV_ERR_NOT_FOUND;
    int mrc = alert_record_read(env, txn, t->id, t->now_us, &rec);
    if (mrc == MDB_NOTFOUND)
        return MDB_SUCCESS;
    if (mrc != MDB_SUCCESS)
        return mrc;

    mrc = state_read(env, txn, t->id, &t->status);
    if (mrc == MDB_NOTFOUND)
        state_default(t->id, &rec.u.alert, &t->status);
    else if (mrc != MDB_SUCCESS)
        return mrc;

    if (!transition_allowed(t->status.state, t->to)) {
        t->result = FV_ERR_STATE;
        return MDB_SUCCESS;
    }
    t->status.state = (uint8_t)t->to;
    t->status.changed_us = t->now_us;
    snprintf(t->status.changed_by, sizeof t->status.changed_by, "%s", t->user);
    if (t->note != NULL)
        snprintf(t->status.note, sizeof t->status.note, "%s", t->note);
    mrc = state_write(env, txn, &t->status);
    if (mrc == MDB_SUCCESS)
        t->result = FV_OK;
    return mrc;
}

int store_alert_transition(store_env *env, uint64_t id, store_alert_state to, const char *note,
                           const char *user, uint64_t now_us, store_alert_status *out)
{
    if (env == NULL || id == 0 || user == NULL || to > STORE_ALERT_CLOSED)
        return FV_ERR_INVALID;
    size_t user_len = strlen(user);
    if (user_len == 0 || !(user_len < STORE_ALERT_USER_MAX))
        return FV_ERR_INVALID;
    if (note != NULL) {
        size_t chars = 0;
        if (!(strlen(note) <= STORE_ALERT_NOTE_MAX_BYTES) || !note_valid_utf8(note, &chars) ||
            !(chars <= STORE_ALERT_NOTE_MAX_CHARS))
            return FV_ERR_INVALID;
    }
    if (to == STORE_ALERT_CLOSED && (note == NULL || note[0] == '\0'))
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed || !env->has_alert_state)
        return FV_ERR_STATE;

    transition_ctx *t = calloc(1, sizeof *t);
    if (t == NULL)
        return FV_ERR_NOMEM;
    t->id = id;
    t->to = to;
    t->note = note;
    t->user = user;
    t->now_us = now_us;
    int rc = store_write_txn(env, "change the state of an alert", transition_write, t);
    if (rc == FV_OK)
        rc = t->result;
    if (rc == FV_OK && out != NULL)
        *out = t->status;
    free(t);
    return rc;
}

/* ---- counts, sweep and erasure ------------------------------------------ */

int store_alert_state_counts(store_env *env, uint64_t now_us, uint64_t counts[3])
{
    if (env == NULL || counts == NULL)
        return FV_ERR_INVALID;
    counts[0] = counts[1] = counts[2] = 0;
    store_class_status cs;
    int rc = store_class_status_get(env, FV_CLASS_ALERT, now_us, &cs);
    if (rc != FV_OK || !env->has_alert_state)
        return rc;

    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    uint64_t cutoff_us =
        store_live_cutoff_us(store_retention_in_txn(env, txn, FV_CLASS_ALERT), now_us);
    uint64_t with_entry = 0;
    int mrc = mdb_cursor_open(txn, env->alert_state, &cur);
    if (mrc == MDB_SUCCESS) {
        uint8_t keybuf[8];
        store_key_encode(cutoff_us, keybuf);
        MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf}, v;
        store_alert_status s;
        for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == MDB_SUCCESS;
             mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t id;
            if (!store_key_decode(&k, &id)) {
                mrc = MDB_CORRUPTED;
                break;
            }
            with_entry++;
            if (state_read(env, txn, id, &s) == MDB_SUCCESS)
                counts[s.state]++;
            else
                counts[STORE_ALERT_NEW]++;
        }
        if (mrc == MDB_NOTFOUND)
            mrc = MDB_SUCCESS;
        mdb_cursor_close(cur);
    }
    store_read_end(env, &txn);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot count alert states: %s", env->dir, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    /* Live alerts written before the life-cycle database existed. */
    if (cs.records > with_entry)
        counts[STORE_ALERT_NEW] += cs.records - with_entry;
    return FV_OK;
}

typedef struct sweep_ctx {
    uint64_t now_us;
    uint64_t deleted;
} sweep_ctx;

static int alerts_sweep_write(store_env *env, MDB_txn *txn, void *ctx)
{
    sweep_ctx *s = ctx;
    s->deleted = 0;
    uint64_t cutoff_us =
        store_live_cutoff_us(store_retention_in_txn(env, txn, FV_CLASS_ALERT), s->now_us);
    if (cutoff_us == 0)
        return MDB_SUCCESS;

    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(txn, env->alert_state, &cur);
    if (mrc != MDB_SUCCESS)
        return mrc;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t id;
        if (!store_key_decode(&k, &id)) {
            mrc = MDB_CORRUPTED;
            break;
        }
        if (id >= cutoff_us)
            break;
        mrc = mdb_cursor_del(cur, 0);
        if (mrc != MDB_SUCCESS)
            break;
        s->deleted++;
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? MDB_SUCCESS : mrc;
}

int store_alerts_sweep(store_env *env, uint64_t now_us, uint64_t *deleted)
{
    if (env == NULL)
        return FV_ERR_INVALID;
    if (!env->has_alert_state)
        return FV_OK;
    sweep_ctx s = {.now_us = now_us};
    int rc = store_write_txn(env, "delete expired alert life-cycle entries", alerts_sweep_write,
                             &s);
    if (rc == FV_OK && deleted != NULL)
        *deleted += s.deleted;
    return rc;
}

typedef struct forget_ctx {
    const uint64_t *ids;
    size_t count;
} forget_ctx;

static int alerts_forget_write(store_env *env, MDB_txn *txn, void *ctx)
{
    forget_ctx *f = ctx;
    for (size_t i = 0; i < f->count; i++) {
        uint8_t keybuf[8];
        store_key_encode(f->ids[i], keybuf);
        MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
        int mrc = mdb_del(txn, env->alert_state, &k, NULL);
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
            return mrc;
    }
    return MDB_SUCCESS;
}

int store_alerts_forget(store_env *env, const uint64_t *ids, size_t count)
{
    if (env == NULL || (ids == NULL && count > 0))
        return FV_ERR_INVALID;
    if (!env->has_alert_state || count == 0)
        return FV_OK;
    forget_ctx f = {.ids = ids, .count = count};
    return store_write_txn(env, "delete alert life-cycle entries", alerts_forget_write, &f);
}
