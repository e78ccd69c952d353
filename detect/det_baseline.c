/*
 * det_baseline.c: the long_conn, baseline and off_hours detectors.
 *
 * long_conn: connections split by the active timeout arrive as several
 * records (continued = 1 after the first). One chain entry per (host,
 * peer, port, protocol) adds them up; a chain whose duration reaches
 * detect.long_connection.min_duration and exceeds 1.5 times the 95th
 * percentile of the host's earlier connections alerts.
 *
 * baseline: per pseudonymous host and per zone, each clock hour's bytes
 * out, bytes in, flows, distinct destinations and DNS queries are
 * compared, when the hour closes, with a model of the same hour of week:
 * an exponentially weighted mean and mean absolute deviation, updated
 * with the value clipped to the band so one burst does not poison it.
 * An hour above mean + mad_factor * deviation (deviation at least 10% of
 * the mean) and above an absolute floor alerts, after learning_period_s.
 *
 * off_hours: per host, a histogram of flows by hour of week. A closed
 * hour with at least DET_OFF_MIN_FLOWS flows alerts when neither it nor
 * a neighbouring hour is usual (see off_hours_close_hour), after
 * learning_period_s and DET_OFF_MIN_HISTORY flows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "det_internal.h"
#include "det_util.h"
#include "detect.h"

#define US_PER_S 1000000ull
#define US_PER_HOUR 3600000000ull
#define HOURS_PER_WEEK 168u

/* ---------------------------------------------------------------------- */
/* Long connections                                                        */
/* ---------------------------------------------------------------------- */

#define DET_LONG_MAX_CHAINS 65536
#define DET_LONG_MAX_HOSTS 65536
#define DET_LONG_HISTORY 32           /* connection durations kept per host */
#define DET_LONG_MIN_HISTORY 8        /* durations needed for the host's usual */
#define DET_LONG_USUAL_FACTOR 1.5     /* times the host's 95th percentile */
#define DET_LONG_CHAIN_GAP_US (3600ull * US_PER_S) /* records further apart start a new chain */
#define DET_LONG_TRACK_MIN_US (60ull * US_PER_S)   /* shorter first records are not tracked */

typedef struct det_chain {
    det_node node;
    fv_endpoint host, peer;
    uint64_t id;
    uint64_t first_us, last_us;
    uint64_t bytes_out, bytes_in;
    bool reported; /* already alerted */
} det_chain;

typedef struct det_long_host {
    det_node node;
    size_t count, next; /* ring of DET_LONG_HISTORY (chain id, duration) */
    uint64_t ids[DET_LONG_HISTORY];
    double durations_s[DET_LONG_HISTORY];
} det_long_host;

typedef struct det_long {
    pol_detect config;
    det_table chains, hosts;
    uint64_t next_id;
    fv_alert_record *pending;
    size_t pending_count;
} det_long;

#define DET_LONG_MAX_PENDING 1024

static const char *const det_long_evidence_names[DET_EV_LONG_COUNT] = {
    "duration_s", "floor_s", "host_usual_s", "bytes_out", "bytes_in",
};

static bool long_enabled(const pol_detect *c)
{
    return c->long_conn_enabled;
}

static void long_destroy(void *state)
{
    det_long *l = state;
    if (l == NULL)
        return;
    det_table_free(&l->chains);
    det_table_free(&l->hosts);
    free(l->pending);
    free(l);
}

static void *long_create(const pol_detect *config)
{
    det_long *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->config = *config;
    l->pending = calloc(DET_LONG_MAX_PENDING, sizeof *l->pending);
    if (l->pending == NULL ||
        det_table_init(&l->chains, DET_LONG_MAX_CHAINS, sizeof(det_chain), NULL) != FV_OK ||
        det_table_init(&l->hosts, DET_LONG_MAX_HOSTS, sizeof(det_long_host), NULL) != FV_OK) {
        long_destroy(l);
        return NULL;
    }
    return l;
}

/* Record chain ID's DURATION in the host's ring. With WANT_USUAL, return
 * the host's usual duration: 95th percentile of its other connections, or
 * 0. Without it return 0, which saves the selection for the short flows
 * that only feed the ring. */
static double long_host_update(det_long *l, const fv_endpoint *host, uint64_t id, double duration,
                               bool want_usual)
{
    det_key key;
    det_key_make(&key, 0, host, NULL, 0, 0);
    det_long_host *h = (det_long_host *)det_table_get(&l->hosts, &key);
    if (h == NULL) {
        h = (det_long_host *)det_table_alloc(&l->hosts);
        if (h == NULL)
            return 0.0;
        det_table_insert(&l->hosts, &h->node, &key);
    }

    double others[DET_LONG_HISTORY];
    size_t n = 0;
    bool found = false;
    for (size_t i = 0; i < h->count; i++) {
        if (h->ids[i] == id) {
            h->durations_s[i] = duration;
            found = true;
        } else {
            others[n++] = h->durations_s[i];
        }
    }
    if (!found) {
        h->ids[h->next] = id;
        h->durations_s[h->next] = duration;
        h->next = (h->next + 1) % DET_LONG_HISTORY;
        if (h->count < DET_LONG_HISTORY)
            h->count++;
    }
    if (!want_usual || n < DET_LONG_MIN_HISTORY)
        return 0.0;
    return det_select(others, n, (size_t)floor(0.95 * (double)(n - 1)));
}

static void long_queue(det_long *l, const det_chain *c, const fv_endpoint *host, double duration,
                       double usual)
{
    if (l->pending_count >= DET_LONG_MAX_PENDING)
        return;
    fv_alert_record *a = &l->pending[l->pending_count++];
    memset(a, 0, sizeof *a);
    a->first_us = c->first_us;
    a->last_us = c->last_us;
    a->detector = FV_DET_LONG_CONN;
    double floor_s = (double)l->config.long_conn_min_duration_s;
    a->severity = duration >= 3.0 * floor_s ? FV_SEV_HIGH : FV_SEV_MEDIUM;
    /* 0.5 at the floor, 1.0 at four times it. */
    a->score = det_clamp01(0.5 + 0.5 * log2(duration / (floor_s > 0 ? floor_s : 1.0)) / 2.0);
    a->host = *host;
    a->peer = c->peer;
    a->peer_port = (uint16_t)c->node.key.peer_port;
    a->proto = c->node.key.proto;
    a->flow_count = 1;
    a->evidence_count = DET_EV_LONG_COUNT;
    a->evidence[DET_EV_LONG_DURATION_S] = duration;
    a->evidence[DET_EV_LONG_FLOOR_S] = floor_s;
    a->evidence[DET_EV_LONG_HOST_USUAL_S] = usual;
    a->evidence[DET_EV_LONG_BYTES_OUT] = (double)c->bytes_out;
    a->evidence[DET_EV_LONG_BYTES_IN] = (double)c->bytes_in;
    char host_text[FV_ENDPOINT_TEXT_MAX], peer_text[96];
    det_format_host(host, host_text);
    det_format_peer(&c->peer, a->peer_port, a->proto, peer_text, sizeof peer_text);
    int n = snprintf(a->summary, sizeof a->summary,
                     "%s held a connection to %s open for %.1f h (host's usual %.1f h)",
                     host_text, peer_text, duration / 3600.0, usual / 3600.0);
    if (n < 0)
        a->summary[0] = '\0';
}

static void long_prefetch_flow(const void *state, const fv_flow_record *flow)
{
    const det_long *l = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow))
        return;
    det_key key;
    det_key_make(&key, 0, ob.host, ob.peer, ob.peer_port, ob.proto);
    det_table_prefetch(&l->chains, &key);
    det_key_make(&key, 0, ob.host, NULL, 0, 0);
    det_table_prefetch(&l->hosts, &key);
}

static void long_observe_flow(void *state, const fv_flow_record *flow)
{
    det_long *l = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow))
        return;
    uint64_t span = flow->last_us > flow->first_us ? flow->last_us - flow->first_us : 0;

    det_key key;
    det_key_make(&key, 0, ob.host, ob.peer, ob.peer_port, ob.proto);
    det_chain *c = (det_chain *)det_table_get(&l->chains, &key);
    bool extends = c != NULL && flow->continued && flow->first_us >= c->last_us &&
                   flow->first_us - c->last_us <= DET_LONG_CHAIN_GAP_US;
    if (!extends) {
        /* Short first records only feed the host's usual durations. */
        if (span < DET_LONG_TRACK_MIN_US && flow->end_reason != FV_END_ACTIVE) {
            long_host_update(l, ob.host, l->next_id++, (double)span / 1e6, false);
            return;
        }
        if (c == NULL) {
            c = (det_chain *)det_table_alloc(&l->chains);
            if (c == NULL)
                return;
            det_table_insert(&l->chains, &c->node, &key);
        }
        c->host = *ob.host;
        c->peer = *ob.peer;
        c->id = l->next_id++;
        c->first_us = flow->first_us;
        c->bytes_out = 0;
        c->bytes_in = 0;
        c->reported = false;
    }
    c->last_us = flow->last_us > c->last_us ? flow->last_us : c->last_us;
    c->bytes_out += ob.bytes_out;
    c->bytes_in += ob.bytes_in;

    double duration = (double)(c->last_us - c->first_us) / 1e6;
    fv_endpoint host = c->host;
    memcpy(host.addr, c->node.key.host, sizeof host.addr);
    bool candidate = !c->reported && duration >= (double)l->config.long_conn_min_duration_s;
    double usual = long_host_update(l, &host, c->id, duration, candidate);
    if (!candidate)
        return;
    if (usual > 0.0 && duration <= DET_LONG_USUAL_FACTOR * usual)
        return;
    c->reported = true;
    long_queue(l, c, &host, duration, usual);
}

static void long_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    det_long *l = state;
    for (size_t i = 0; i < l->pending_count; i++) {
        l->pending[i].ts_us = now_us;
        emit(engine_ctx, &l->pending[i]);
    }
    l->pending_count = 0;
}

static void long_rekey_begin(void *state)
{
    det_long *l = state;
    det_table_rekey_begin(&l->chains);
    det_table_rekey_begin(&l->hosts);
}

static void long_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                       uint8_t kind)
{
    det_long *l = state;
    /* Without a merge function an existing new entry wins: the newer
     * epoch's state is the current one. */
    det_table_rekey(&l->chains, kind, old_pseudonym, new_pseudonym, NULL);
    det_table_rekey(&l->hosts, kind, old_pseudonym, new_pseudonym, NULL);
    for (size_t i = 0; i < l->pending_count; i++) {
        fv_alert_record *a = &l->pending[i];
        if (a->host.kind == kind && memcmp(a->host.addr, old_pseudonym, 16) == 0)
            memcpy(a->host.addr, new_pseudonym, 16);
    }
}

static size_t long_rekey_end(void *state)
{
    det_long *l = state;
    return det_table_drop_stale(&l->chains) + det_table_drop_stale(&l->hosts);
}

const det_module det_module_long_conn = {
    .name = "long_conn",
    .detector = FV_DET_LONG_CONN,
    .enabled = long_enabled,
    .create = long_create,
    .destroy = long_destroy,
    .observe_flow = long_observe_flow,
    .evaluate = long_evaluate,
    .rekey_begin = long_rekey_begin,
    .rekey = long_rekey,
    .rekey_end = long_rekey_end,
    .evidence_names = det_long_evidence_names,
    .evidence_count = DET_EV_LONG_COUNT,
    .prefetch_flow = long_prefetch_flow,
};

/* ---------------------------------------------------------------------- */
/* Hourly profiles: shared by baseline and off_hours                       */
/* ---------------------------------------------------------------------- */

#define DET_PROFILE_MAX 8192      /* hosts and zones with a profile */
#define DET_EWMA_ALPHA 0.3        /* weight of a new week */
#define DET_BAND_MIN_SHARE 0.1    /* deviation is at least 10% of the mean */
#define DET_DEST_BITS 256         /* linear-counting bitmap of destinations */
#define DET_OFF_MIN_FLOWS 10      /* flows in an unusual hour that alert */
#define DET_OFF_MIN_HISTORY 200   /* flows of history before off_hours judges */
#define DET_PROFILE_MAX_PENDING 4096
#define DET_ZONE_KIND 0xff        /* host_kind of a zone's key */

/* Absolute floors per metric: an hour below them never alerts. */
static const double det_metric_floor[DET_METRIC_COUNT] = {
    0.0 /* bytes out: baseline_min_bytes */, 0.0 /* bytes in: baseline_min_bytes */,
    200.0 /* flows */, 30.0 /* destinations */, 300.0 /* DNS queries */,
};

static const char *const det_metric_names[DET_METRIC_COUNT] = {
    "bytes out", "bytes in", "flows", "distinct destinations", "DNS queries",
};

typedef struct det_slot_model {
    float mean[DET_METRIC_COUNT];
    float dev[DET_METRIC_COUNT];
    uint16_t weeks; /* hours folded in */
} det_slot_model;

/* History of a baseline profile. day_slots, by hour of day, replaces a
 * slot of the week that has no earlier week yet. */
typedef struct det_week_model {
    det_slot_model slots[HOURS_PER_WEEK];
    det_slot_model day_slots[24];
} det_week_model;

/*
 * One host or zone. The history sits in a separate allocation made when
 * the first hour closes, of the kind the detector uses. So a table entry
 * is about 250 bytes, and an off_hours profile never pays for the
 * baseline's 8.4 KB of hourly models.
 */
typedef struct det_profile {
    det_node node;
    fv_endpoint host;  /* zone profiles: kind DET_ZONE_KIND, zone set */
    uint64_t first_us; /* first record seen */
    /* The open hour. */
    uint64_t hour;     /* hours since the epoch */
    double value[DET_METRIC_COUNT];
    uint8_t dest_bits[DET_DEST_BITS / 8];
    uint32_t hour_flows_total;
    det_week_model *model;   /* baseline only; NULL before the first closed hour */
    uint32_t *flows_by_hour; /* off_hours only: HOURS_PER_WEEK counts, or NULL */
    uint64_t flows_total;
} det_profile;

/*
 * Profile record of state version 1, raw bytes after the key: the profile
 * struct as it was when both histories were inline, read so that states
 * written by earlier builds still load. Every field has at most 8-byte
 * alignment, like the old struct after its 8-byte-aligned node, so the
 * field offsets are the old ones.
 */
typedef struct det_profile_saved {
    fv_endpoint host;
    uint64_t first_us;
    uint64_t hour;
    double value[DET_METRIC_COUNT];
    uint8_t dest_bits[DET_DEST_BITS / 8];
    uint32_t hour_flows_total;
    det_slot_model slots[HOURS_PER_WEEK];
    det_slot_model day_slots[24];
    uint32_t flows_by_hour[HOURS_PER_WEEK];
    uint64_t flows_total;
} det_profile_saved;

/* On x86-64 the old struct was 9,384 bytes, the first 104 its node. */
_Static_assert(sizeof(det_profile_saved) == 9280, "the saved profile layout must not change");

typedef struct det_profiles {
    pol_detect config;
    int detector; /* FV_DET_BASELINE or FV_DET_OFF_HOURS */
    det_table table;
    fv_alert_record *pending;
    size_t pending_count;
    uint64_t dropped; /* closed hours lost to a memory shortage */
} det_profiles;

static const char *const det_baseline_evidence_names[DET_EV_BASELINE_COUNT] = {
    "metric", "value", "expected", "deviation", "upper", "history_weeks", "hour_of_week", "zone",
};

static const char *const det_off_hours_evidence_names[DET_EV_OFF_COUNT] = {
    "hour_of_week", "hour_share", "flows", "bytes", "history_flows",
};

static void free_profile(det_node *n)
{
    det_profile *p = (det_profile *)n;
    free(p->model);
    free(p->flows_by_hour);
}

static void profiles_destroy(void *state)
{
    det_profiles *p = state;
    if (p == NULL)
        return;
    det_table_free(&p->table);
    free(p->pending);
    free(p);
}

static det_profiles *profiles_create(const pol_detect *config, int detector)
{
    det_profiles *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->config = *config;
    p->detector = detector;
    p->pending = calloc(DET_PROFILE_MAX_PENDING, sizeof *p->pending);
    if (p->pending == NULL ||
        det_table_init(&p->table, DET_PROFILE_MAX, sizeof(det_profile), free_profile) != FV_OK) {
        profiles_destroy(p);
        return NULL;
    }
    return p;
}

static void *baseline_create(const pol_detect *config)
{
    return profiles_create(config, FV_DET_BASELINE);
}

static void *off_hours_create(const pol_detect *config)
{
    return profiles_create(config, FV_DET_OFF_HOURS);
}

static bool baseline_enabled(const pol_detect *c)
{
    return c->baseline_enabled;
}

static bool off_hours_enabled(const pol_detect *c)
{
    return c->off_hours_enabled;
}

/* Key of a zone's profile: the zone label in the host bytes. */
static void zone_key(det_key *key, const fv_endpoint *host)
{
    memset(key, 0, sizeof *key);
    key->host_kind = DET_ZONE_KIND;
    size_t n = strnlen(host->zone, sizeof host->zone);
    if (n > sizeof key->host)
        n = sizeof key->host;
    memcpy(key->host, host->zone, n);
    /* Longer labels add their tail to the peer bytes. */
    size_t rest = strnlen(host->zone, sizeof host->zone) - n;
    if (rest > sizeof key->peer)
        rest = sizeof key->peer;
    memcpy(key->peer, host->zone + n, rest);
}

static double linear_count(const uint8_t bits[DET_DEST_BITS / 8])
{
    unsigned zero = 0;
    for (unsigned i = 0; i < DET_DEST_BITS; i++)
        zero += ((bits[i / 8] >> (i % 8)) & 1u) == 0;
    if (zero == 0)
        zero = 1;
    return -(double)DET_DEST_BITS * log((double)zero / (double)DET_DEST_BITS);
}

static void profile_queue(det_profiles *ps, const fv_alert_record *a)
{
    if (ps->pending_count < DET_PROFILE_MAX_PENDING)
        ps->pending[ps->pending_count++] = *a;
}

static void profile_alert_base(const det_profile *p, fv_alert_record *a, int detector)
{
    memset(a, 0, sizeof *a);
    a->first_us = p->hour * US_PER_HOUR;
    a->last_us = (p->hour + 1) * US_PER_HOUR - 1;
    a->detector = (uint8_t)detector;
    a->host = p->host;
    if (p->node.key.host_kind != DET_ZONE_KIND)
        memcpy(a->host.addr, p->node.key.host, sizeof a->host.addr);
    a->flow_count = p->hour_flows_total;
}

/* Compare the hour's VALUE of metric K with model M and return its excess
 * in deviations (0 when it stays in the band or under the floor). */
static double baseline_excess(const det_profiles *ps, const det_slot_model *m, int k, double v,
                              double *upper_out, double *dev_out)
{
    double mean = (double)m->mean[k];
    double dev = (double)m->dev[k];
    if (dev < DET_BAND_MIN_SHARE * mean)
        dev = DET_BAND_MIN_SHARE * mean;
    double upper = mean + ps->config.baseline_mad_factor * dev;
    /* Callers pass 0 <= K < DET_METRIC_COUNT, so det_metric_floor[k] is in
     * bounds; cppcheck does not see the callers' loop bound. */
    double floor_v =
        // cppcheck-suppress arrayIndexOutOfBoundsCond
        k <= DET_METRIC_BYTES_IN ? (double)ps->config.baseline_min_bytes : det_metric_floor[k];
    *upper_out = upper;
    *dev_out = dev;
    if (m->weeks == 0 || !(v > upper) || v < floor_v || !(dev > 0.0))
        return 0.0;
    return (v - mean) / dev;
}

/* Fold the hour's VALUE of metric K into model M, clipped to the band so
 * one burst moves the model by at most a band's width. */
static void baseline_update(const det_profiles *ps, det_slot_model *m, int k, double v)
{
    if (m->weeks == 0) {
        m->mean[k] = (float)v;
        m->dev[k] = (float)(0.5 * v);
        return;
    }
    double mean = (double)m->mean[k];
    double dev = (double)m->dev[k];
    if (dev < DET_BAND_MIN_SHARE * mean)
        dev = DET_BAND_MIN_SHARE * mean;
    double upper = mean + ps->config.baseline_mad_factor * dev;
    double clipped = v > upper ? upper : v;
    m->mean[k] = (float)((1.0 - DET_EWMA_ALPHA) * mean + DET_EWMA_ALPHA * clipped);
    m->dev[k] = (float)((1.0 - DET_EWMA_ALPHA) * (double)m->dev[k] +
                        DET_EWMA_ALPHA * fabs(clipped - mean));
}

/* Compare the closed hour of P with the model of its hour of week, or of
 * its hour of day while that hour of week has no earlier week (baseline). */
static void baseline_close_hour(det_profiles *ps, det_profile *p, bool learned)
{
    if (p->model == NULL) {
        p->model = calloc(1, sizeof *p->model);
        if (p->model == NULL) {
            ps->dropped++;
            return;
        }
    }
    unsigned how = (unsigned)((p->hour + 72u) % HOURS_PER_WEEK);
    det_slot_model *week_model = &p->model->slots[how];
    det_slot_model *day_model = &p->model->day_slots[p->hour % 24u];
    const det_slot_model *m = week_model->weeks > 0 ? week_model : day_model;
    bool zone = p->node.key.host_kind == DET_ZONE_KIND;
    double best_excess = 0.0;
    int best_metric = -1;
    double upper_of_best = 0.0, dev_of_best = 0.0;

    for (int k = 0; k < DET_METRIC_COUNT; k++) {
        double upper = 0.0, dev = 0.0;
        double excess = learned ? baseline_excess(ps, m, k, p->value[k], &upper, &dev) : 0.0;
        if (excess > best_excess) {
            best_excess = excess;
            best_metric = k;
            upper_of_best = upper;
            dev_of_best = dev;
        }
    }
    double expected_of_best = best_metric >= 0 ? (double)m->mean[best_metric] : 0.0;
    uint16_t history = m->weeks;
    for (int k = 0; k < DET_METRIC_COUNT; k++) {
        baseline_update(ps, week_model, k, p->value[k]);
        baseline_update(ps, day_model, k, p->value[k]);
    }
    if (week_model->weeks < UINT16_MAX)
        week_model->weeks++;
    if (day_model->weeks < UINT16_MAX)
        day_model->weeks++;
    if (best_metric < 0)
        return;

    fv_alert_record a;
    profile_alert_base(p, &a, FV_DET_BASELINE);
    /* A single metric 'factor' deviations above the mean scores 0.5. */
    a.score = det_clamp01(0.5 + 0.5 * (best_excess - ps->config.baseline_mad_factor) /
                                    (3.0 * ps->config.baseline_mad_factor));
    a.severity = best_excess >= 2.0 * ps->config.baseline_mad_factor ? FV_SEV_HIGH
                                                                     : FV_SEV_MEDIUM;
    a.evidence_count = DET_EV_BASELINE_COUNT;
    a.evidence[DET_EV_BASELINE_METRIC] = best_metric;
    a.evidence[DET_EV_BASELINE_VALUE] = p->value[best_metric];
    a.evidence[DET_EV_BASELINE_EXPECTED] = expected_of_best;
    a.evidence[DET_EV_BASELINE_DEVIATION] = dev_of_best;
    a.evidence[DET_EV_BASELINE_UPPER] = upper_of_best;
    a.evidence[DET_EV_BASELINE_HISTORY] = history;
    a.evidence[DET_EV_BASELINE_HOUR_OF_WEEK] = how;
    a.evidence[DET_EV_BASELINE_ZONE] = zone ? 1.0 : 0.0;
    char who[FV_ENDPOINT_TEXT_MAX + 8];
    if (zone) {
        snprintf(who, sizeof who, "zone %s", p->host.zone);
        memset(&a.host, 0, sizeof a.host);
        snprintf(a.host.zone, sizeof a.host.zone, "%s", p->host.zone);
    } else {
        det_format_host(&a.host, who);
    }
    int n = snprintf(a.summary, sizeof a.summary,
                     "%s: %.0f %s in one hour, above its usual band of %.0f for this hour",
                     who, p->value[best_metric], det_metric_names[best_metric], upper_of_best);
    if (n < 0)
        a.summary[0] = '\0';
    profile_queue(ps, &a);
}

/*
 * Shares of the host's history per hour: of the week when N is 168, of
 * the day when N is 24 (each entry pooling the seven days). Writes them
 * into SHARES.
 */
static void off_hours_shares(const det_profile *p, unsigned n, double shares[HOURS_PER_WEEK])
{
    for (unsigned h = 0; h < n; h++)
        shares[h] = 0.0;
    for (unsigned h = 0; h < HOURS_PER_WEEK; h++)
        shares[h % n] += (double)p->flows_by_hour[h] / (double)p->flows_total;
}

/* Largest share of SLOT and its two neighbours among N slots. */
static double near_share(const double *shares, unsigned n, unsigned slot)
{
    double near = shares[slot];
    if (shares[(slot + 1) % n] > near)
        near = shares[(slot + 1) % n];
    if (shares[(slot + n - 1) % n] > near)
        near = shares[(slot + n - 1) % n];
    return near;
}

/*
 * Share of the host's history below which an hour is unusual: max_share,
 * but at most half the median share of the hours the host was active in.
 * The second bound keeps a host active around the clock quiet, because
 * each of its hours holds about 1/168 of its history.
 */
static double off_hours_threshold(const det_profiles *ps, const double *shares, unsigned n)
{
    double active[HOURS_PER_WEEK];
    size_t count = 0;
    for (unsigned h = 0; h < n; h++) {
        if (shares[h] > 0.0)
            active[count++] = shares[h];
    }
    double threshold = ps->config.off_hours_max_share;
    if (count > 0) {
        double half_median = 0.5 * det_median_select(active, count);
        if (half_median < threshold)
            threshold = half_median;
    }
    return threshold;
}

/*
 * Judge the closed hour of P against its usual hours (off_hours). The hour
 * is usual when it, or an hour next to it, held at least the threshold
 * share of the host's history as an hour of the week (once the history
 * spans a week) or as an hour of the day on any day. The neighbours absorb
 * a working day that starts an hour early, and the hour of day keeps a
 * host that works at 08:00 on some days from alerting on the others.
 */
static void off_hours_close_hour(det_profiles *ps, det_profile *p, bool learned)
{
    unsigned how = (unsigned)((p->hour + 72u) % HOURS_PER_WEEK);
    uint32_t flows = p->hour_flows_total;
    if (learned && p->flows_total >= DET_OFF_MIN_HISTORY && flows >= DET_OFF_MIN_FLOWS) {
        double by_day[HOURS_PER_WEEK], by_week[HOURS_PER_WEEK];
        off_hours_shares(p, 24u, by_day);
        off_hours_shares(p, HOURS_PER_WEEK, by_week);
        unsigned hod = (unsigned)(p->hour % 24u);
        bool usual = near_share(by_day, 24u, hod) >= off_hours_threshold(ps, by_day, 24u);
        uint64_t span_us = p->hour * US_PER_HOUR - (p->first_us / US_PER_HOUR) * US_PER_HOUR;
        if (!usual && span_us >= 7ull * 24u * US_PER_HOUR)
            usual = near_share(by_week, HOURS_PER_WEEK, how) >=
                    off_hours_threshold(ps, by_week, HOURS_PER_WEEK);
        double share = by_week[how];
        if (!usual) {
            fv_alert_record a;
            profile_alert_base(p, &a, FV_DET_OFF_HOURS);
            a.severity = FV_SEV_LOW;
            /* 0.5 at max_share, 1.0 for an hour never used before. */
            a.score = det_clamp01(1.0 - 0.5 * share / ps->config.off_hours_max_share);
            a.evidence_count = DET_EV_OFF_COUNT;
            a.evidence[DET_EV_OFF_HOUR_OF_WEEK] = how;
            a.evidence[DET_EV_OFF_HOUR_SHARE] = share;
            a.evidence[DET_EV_OFF_FLOWS] = flows;
            a.evidence[DET_EV_OFF_BYTES] =
                p->value[DET_METRIC_BYTES_OUT] + p->value[DET_METRIC_BYTES_IN];
            a.evidence[DET_EV_OFF_HISTORY_FLOWS] = (double)p->flows_total;
            char who[FV_ENDPOINT_TEXT_MAX];
            det_format_host(&a.host, who);
            int len = snprintf(a.summary, sizeof a.summary,
                               "%s was active in hour %u of the week (%u flows), an hour that "
                               "held %.2f%% of its history",
                               who, how, (unsigned)flows, 100.0 * share);
            if (len < 0)
                a.summary[0] = '\0';
            profile_queue(ps, &a);
        }
    }
    if (flows == 0)
        return;
    if (p->flows_by_hour == NULL) {
        p->flows_by_hour = calloc(HOURS_PER_WEEK, sizeof *p->flows_by_hour);
        if (p->flows_by_hour == NULL) {
            ps->dropped++;
            return;
        }
    }
    p->flows_by_hour[how] += flows;
    p->flows_total += flows;
}

static void profile_close_hour(det_profiles *ps, det_profile *p)
{
    if (p->hour == 0 && p->hour_flows_total == 0 && p->value[DET_METRIC_DNS_QUERIES] == 0.0)
        return;
    p->value[DET_METRIC_DESTINATIONS] = linear_count(p->dest_bits);
    /* The hour counts as judged only when it started after the learning
     * period, so the last learning hour is never judged against itself. */
    uint64_t start_us = p->hour * US_PER_HOUR;
    bool learned = start_us >= p->first_us &&
                   start_us - p->first_us >= (uint64_t)ps->config.learning_period_s * US_PER_S;
    if (ps->detector == FV_DET_BASELINE)
        baseline_close_hour(ps, p, learned);
    else
        off_hours_close_hour(ps, p, learned);
    memset(p->value, 0, sizeof p->value);
    memset(p->dest_bits, 0, sizeof p->dest_bits);
    p->hour_flows_total = 0;
}

/* Find or create the profile of KEY and move it to the hour of TS_US,
 * closing the open hour first. Records of an hour already closed count
 * in the open one. */
static det_profile *profile_at(det_profiles *ps, const det_key *key, const fv_endpoint *host,
                               uint64_t ts_us)
{
    det_profile *p = (det_profile *)det_table_get(&ps->table, key);
    if (p == NULL) {
        p = (det_profile *)det_table_alloc(&ps->table);
        if (p == NULL)
            return NULL;
        p->host = *host;
        p->first_us = ts_us;
        p->hour = ts_us / US_PER_HOUR;
        det_table_insert(&ps->table, &p->node, key);
    }
    uint64_t hour = ts_us / US_PER_HOUR;
    if (hour > p->hour) {
        profile_close_hour(ps, p);
        p->hour = hour;
    }
    return p;
}

static void profile_add_flow(det_profile *p, const det_outbound *ob)
{
    p->value[DET_METRIC_BYTES_OUT] += (double)ob->bytes_out;
    p->value[DET_METRIC_BYTES_IN] += (double)ob->bytes_in;
    p->value[DET_METRIC_FLOWS] += 1.0;
    p->hour_flows_total++;
    /* Bitmap index from the peer bytes: not keyed, but the bitmap only
     * estimates a count, so collisions cost accuracy, not safety. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof ob->peer->addr; i++)
        h = (h ^ ob->peer->addr[i]) * 16777619u;
    h = (h ^ ob->peer_port) * 16777619u;
    unsigned bit = h % DET_DEST_BITS;
    p->dest_bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

/* Only the host profile: the zone profiles are few and stay cached. */
static void profiles_prefetch_flow(const void *state, const fv_flow_record *flow)
{
    const det_profiles *ps = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow))
        return;
    det_key key;
    det_key_make(&key, 0, ob.host, NULL, 0, 0);
    det_table_prefetch(&ps->table, &key);
}

static void profiles_prefetch_dns(const void *state, const fv_dns_record *d)
{
    const det_profiles *ps = state;
    if (ps->detector != FV_DET_BASELINE || d->is_response || !fv_endpoint_is_internal(&d->client))
        return;
    det_key key;
    det_key_make(&key, 0, &d->client, NULL, 0, 0);
    det_table_prefetch(&ps->table, &key);
}

static void profiles_observe_flow(void *state, const fv_flow_record *flow)
{
    det_profiles *ps = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow))
        return;
    det_key key;
    det_key_make(&key, 0, ob.host, NULL, 0, 0);
    det_profile *p = profile_at(ps, &key, ob.host, flow->first_us);
    if (p != NULL)
        profile_add_flow(p, &ob);
    if (ps->detector == FV_DET_BASELINE && ob.host->zone[0] != '\0') {
        zone_key(&key, ob.host);
        p = profile_at(ps, &key, ob.host, flow->first_us);
        if (p != NULL)
            profile_add_flow(p, &ob);
    }
}

static void profiles_observe_dns(void *state, const fv_dns_record *d)
{
    det_profiles *ps = state;
    if (ps->detector != FV_DET_BASELINE || d->is_response || !fv_endpoint_is_internal(&d->client))
        return;
    det_key key;
    det_key_make(&key, 0, &d->client, NULL, 0, 0);
    det_profile *p = profile_at(ps, &key, &d->client, d->ts_us);
    if (p != NULL)
        p->value[DET_METRIC_DNS_QUERIES] += 1.0;
    if (d->client.zone[0] != '\0') {
        zone_key(&key, &d->client);
        p = profile_at(ps, &key, &d->client, d->ts_us);
        if (p != NULL)
            p->value[DET_METRIC_DNS_QUERIES] += 1.0;
    }
}

static void profiles_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    det_profiles *ps = state;
    /* Close every hour that ended before NOW_US, so a host that went
     * quiet is still judged. */
    uint64_t now_hour = now_us / US_PER_HOUR;
    for (det_node *n = det_table_newest(&ps->table); n != NULL;
         n = det_table_older(&ps->table, n)) {
        det_profile *p = (det_profile *)n;
        if (p->hour < now_hour && (p->hour_flows_total > 0 || p->value[DET_METRIC_DNS_QUERIES] > 0)) {
            profile_close_hour(ps, p);
            p->hour = now_hour;
        }
    }
    for (size_t i = 0; i < ps->pending_count; i++) {
        ps->pending[i].ts_us = now_us;
        emit(engine_ctx, &ps->pending[i]);
    }
    ps->pending_count = 0;
    if (ps->dropped > 0) {
        fv_warning("detect: %s lost %llu closed hours to a memory shortage; alerts may be "
                   "missing",
                   ps->detector == FV_DET_BASELINE ? "baseline" : "off_hours",
                   (unsigned long long)ps->dropped);
        ps->dropped = 0;
    }
}

static void profiles_rekey_begin(void *state)
{
    det_profiles *ps = state;
    det_table_rekey_begin(&ps->table);
}

static void profiles_rekey(void *state, const uint8_t *old_pseudonym,
                           const uint8_t *new_pseudonym, uint8_t kind)
{
    det_profiles *ps = state;
    det_table_rekey(&ps->table, kind, old_pseudonym, new_pseudonym, NULL);
    for (size_t i = 0; i < ps->pending_count; i++) {
        fv_alert_record *a = &ps->pending[i];
        if (a->host.kind == kind && memcmp(a->host.addr, old_pseudonym, 16) == 0)
            memcpy(a->host.addr, new_pseudonym, 16);
    }
}

static size_t profiles_rekey_end(void *state)
{
    det_profiles *ps = state;
    /* Zone profiles have no pseudonym: keep them across the rotation. */
    for (det_node *n = det_table_newest(&ps->table); n != NULL;
         n = det_table_older(&ps->table, n)) {
        if (n->key.host_kind == DET_ZONE_KIND)
            n->generation = ps->table.generation;
    }
    return det_table_drop_stale(&ps->table);
}

/* ORs every byte together without an early exit, so the compiler can
 * vectorize it: saving the detector state tests each of the 192 slot
 * models of every profile with a history, and most of them are empty. */
static bool bytes_all_zero(const void *bytes, size_t n)
{
    const uint8_t *b = bytes;
    uint64_t any = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, b + i, sizeof word);
        any |= word;
    }
    for (; i < n; i++)
        any |= b[i];
    return any == 0;
}

/* Fill P from the version 1 record S, allocating only the histories that
 * hold data. Returns FV_OK or FV_ERR_NOMEM. */
static int profile_from_saved_v1(det_profile *p, const det_profile_saved *s)
{
    p->host = s->host;
    p->first_us = s->first_us;
    p->hour = s->hour;
    memcpy(p->value, s->value, sizeof p->value);
    memcpy(p->dest_bits, s->dest_bits, sizeof p->dest_bits);
    p->hour_flows_total = s->hour_flows_total;
    p->flows_total = s->flows_total;
    if (!bytes_all_zero(s->slots, sizeof s->slots) ||
        !bytes_all_zero(s->day_slots, sizeof s->day_slots)) {
        p->model = malloc(sizeof *p->model);
        if (p->model == NULL)
            return FV_ERR_NOMEM;
        memcpy(p->model->slots, s->slots, sizeof s->slots);
        memcpy(p->model->day_slots, s->day_slots, sizeof s->day_slots);
    }
    if (!bytes_all_zero(s->flows_by_hour, sizeof s->flows_by_hour)) {
        p->flows_by_hour = malloc(sizeof s->flows_by_hour);
        if (p->flows_by_hour == NULL)
            return FV_ERR_NOMEM;
        memcpy(p->flows_by_hour, s->flows_by_hour, sizeof s->flows_by_hour);
    }
    return FV_OK;
}

/* Slot models of a det_week_model in saved order: slots, then day_slots. */
#define DET_MODEL_SLOTS (HOURS_PER_WEEK + 24u)

static det_slot_model *model_slot(det_week_model *m, unsigned i)
{
    return i < HOURS_PER_WEEK ? &m->slots[i] : &m->day_slots[i - HOURS_PER_WEEK];
}

/*
 * Version 2 record after the key: host (raw fv_endpoint), first_us,
 * hour, value[], dest_bits (raw), hour_flows_total and flows_total. Then
 * the count of non-empty slot models follows, each model as its index in
 * DET_MODEL_SLOTS order and its raw bytes. A flag byte ends the record,
 * followed by flows_by_hour as HOURS_PER_WEEK u32 when it is 1. A profile
 * without history takes about 200 bytes where version 1 took 9,320.
 */
static void profile_save_v2(det_buf *b, const det_profile *p)
{
    det_buf_put(b, &p->node.key, sizeof p->node.key);
    det_buf_put(b, &p->host, sizeof p->host);
    det_buf_u64(b, p->first_us);
    det_buf_u64(b, p->hour);
    for (int k = 0; k < DET_METRIC_COUNT; k++)
        det_buf_f64(b, p->value[k]);
    det_buf_put(b, p->dest_bits, sizeof p->dest_bits);
    det_buf_u32(b, p->hour_flows_total);
    det_buf_u64(b, p->flows_total);

    uint32_t used = 0;
    if (p->model != NULL) {
        for (unsigned i = 0; i < DET_MODEL_SLOTS; i++)
            used += !bytes_all_zero(model_slot(p->model, i), sizeof(det_slot_model));
    }
    det_buf_u32(b, used);
    for (unsigned i = 0; used > 0 && i < DET_MODEL_SLOTS; i++) {
        const det_slot_model *m = model_slot(p->model, i);
        if (bytes_all_zero(m, sizeof *m))
            continue;
        det_buf_u32(b, i);
        det_buf_put(b, m, sizeof *m);
    }
    det_buf_u8(b, p->flows_by_hour != NULL ? 1 : 0);
    if (p->flows_by_hour != NULL) {
        for (unsigned h = 0; h < HOURS_PER_WEEK; h++)
            det_buf_u32(b, p->flows_by_hour[h]);
    }
}

/* Read a version 2 record (after its key) into P. Returns FV_OK,
 * FV_ERR_PARSE or FV_ERR_NOMEM. */
static int profile_load_v2(det_reader *r, det_profile *p)
{
    det_read(r, &p->host, sizeof p->host);
    p->first_us = det_read_u64(r);
    p->hour = det_read_u64(r);
    for (int k = 0; k < DET_METRIC_COUNT; k++)
        p->value[k] = det_read_f64(r);
    det_read(r, p->dest_bits, sizeof p->dest_bits);
    p->hour_flows_total = det_read_u32(r);
    p->flows_total = det_read_u64(r);

    uint32_t used = det_read_u32(r);
    if (!r->ok || used > DET_MODEL_SLOTS)
        return FV_ERR_PARSE;
    if (used > 0) {
        p->model = calloc(1, sizeof *p->model);
        if (p->model == NULL)
            return FV_ERR_NOMEM;
    }
    for (uint32_t n = 0; n < used; n++) {
        uint32_t i = det_read_u32(r);
        if (!r->ok || i >= DET_MODEL_SLOTS)
            return FV_ERR_PARSE;
        det_read(r, model_slot(p->model, i), sizeof(det_slot_model));
    }
    uint8_t has_hours = det_read_u8(r);
    if (!r->ok || has_hours > 1)
        return FV_ERR_PARSE;
    if (has_hours == 1) {
        p->flows_by_hour = malloc(HOURS_PER_WEEK * sizeof *p->flows_by_hour);
        if (p->flows_by_hour == NULL)
            return FV_ERR_NOMEM;
        for (unsigned h = 0; h < HOURS_PER_WEEK; h++)
            p->flows_by_hour[h] = det_read_u32(r);
    }
    return r->ok ? FV_OK : FV_ERR_PARSE;
}

/* Saved form: the profile count, then each profile oldest first, as
 * profile_save_v2 writes it. */
static int profiles_save(void *state, void *out)
{
    det_profiles *ps = state;
    det_buf *b = out;
    det_buf_u32(b, (uint32_t)ps->table.count);
    for (det_node *n = det_table_oldest(&ps->table); n != NULL;
         n = det_table_newer(&ps->table, n))
        profile_save_v2(b, (const det_profile *)n);
    return b->failed ? FV_ERR_NOMEM : FV_OK;
}

/*
 * Read one profile (key, then the record of VERSION) into a table entry
 * and insert it, replacing an entry under the same key. SAVED is scratch
 * space for a version 1 record. Returns FV_OK, FV_ERR_PARSE on a short
 * or invalid record, or FV_ERR_NOMEM.
 */
static int profile_load_one(det_profiles *ps, det_reader *r, uint32_t version,
                            det_profile_saved *saved)
{
    det_key key;
    det_read(r, &key, sizeof key);
    if (version == 1)
        det_read(r, saved, sizeof *saved);
    if (!r->ok)
        return FV_ERR_PARSE;

    det_profile *p = (det_profile *)det_table_alloc(&ps->table);
    if (p == NULL)
        return FV_ERR_NOMEM;
    int rc = version == 1 ? profile_from_saved_v1(p, saved) : profile_load_v2(r, p);
    if (rc != FV_OK) {
        free_profile(&p->node);
        det_table_release(&ps->table, &p->node);
        return rc;
    }
    det_node *old = det_table_get(&ps->table, &key);
    if (old != NULL)
        det_table_remove(&ps->table, old);
    det_table_insert(&ps->table, &p->node, &key);
    return FV_OK;
}

static int profiles_load(void *state, const uint8_t *data, size_t len, uint32_t version)
{
    det_profiles *ps = state;
    det_reader r = {data, len, 0, true};
    det_profile_saved *saved = NULL;
    if (version == 1) {
        saved = malloc(sizeof *saved);
        if (saved == NULL)
            return FV_ERR_NOMEM;
    }
    int rc = FV_OK;
    uint32_t count = det_read_u32(&r);
    for (uint32_t i = 0; i < count && r.ok && rc == FV_OK; i++)
        rc = profile_load_one(ps, &r, version, saved);
    if (rc == FV_OK && (!r.ok || r.pos != r.len))
        rc = FV_ERR_PARSE;
    free(saved);
    return rc;
}

const det_module det_module_baseline = {
    .name = "baseline",
    .detector = FV_DET_BASELINE,
    .enabled = baseline_enabled,
    .create = baseline_create,
    .destroy = profiles_destroy,
    .observe_flow = profiles_observe_flow,
    .observe_dns = profiles_observe_dns,
    .evaluate = profiles_evaluate,
    .rekey_begin = profiles_rekey_begin,
    .rekey = profiles_rekey,
    .rekey_end = profiles_rekey_end,
    .evidence_names = det_baseline_evidence_names,
    .evidence_count = DET_EV_BASELINE_COUNT,
    .save = profiles_save,
    .load = profiles_load,
    .prefetch_flow = profiles_prefetch_flow,
    .prefetch_dns = profiles_prefetch_dns,
};

const det_module det_module_off_hours = {
    .name = "off_hours",
    .detector = FV_DET_OFF_HOURS,
    .enabled = off_hours_enabled,
    .create = off_hours_create,
    .destroy = profiles_destroy,
    .observe_flow = profiles_observe_flow,
    .evaluate = profiles_evaluate,
    .rekey_begin = profiles_rekey_begin,
    .rekey = profiles_rekey,
    .rekey_end = profiles_rekey_end,
    .evidence_names = det_off_hours_evidence_names,
    .evidence_count = DET_EV_OFF_COUNT,
    .save = profiles_save,
    .load = profiles_load,
    .prefetch_flow = profiles_prefetch_flow,
};
