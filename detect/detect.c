/*
 * detect.c: the detector engine. It keeps one instance of every detector
 * module (det_internal.h) the policy enables, feeds them pseudonymized
 * records, collects their findings at each evaluation, moves their state
 * on key rotation and saves or loads their learned state.
 *
 * The engine suppresses a finding whose (detector, host, peer, peer port)
 * it raised with evidence ending less than alert_window_s / 2 earlier (0:
 * never again in this engine's lifetime). That mark is a first filter only: the store merges repeated
 * alerts of one key into one alert with first/last seen and a count.
 */
#include "detect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "det_internal.h"
#include "det_util.h"

#define DET_MAX_ALERTED 65536
#define DET_STATE_MAGIC 0x46564453u /* "FVDS" */
/* Version 2 writes baseline and off_hours profiles without their empty
 * histories; version 1 states still load. */
#define DET_STATE_VERSION 2u
#define DET_STATE_VERSION_MIN 1u

/*
 * Every module the engine can run, in evaluation order. The modules of
 * det_scan.c, det_dns.c and det_segment.c are listed when
 * detect/CMakeLists.txt finds those files (it defines FV_HAVE_DET_*).
 */
static const det_module *const det_all_modules[] = {
    &det_module_beacon,
    &det_module_exfil,
    &det_module_long_conn,
    &det_module_baseline,
    &det_module_off_hours,
    &det_module_rare_dest,
#ifdef FV_HAVE_DET_SCAN
    &det_module_scan,
#endif
#ifdef FV_HAVE_DET_DNS
    &det_module_dns_tunnel,
    &det_module_dga,
#endif
#ifdef FV_HAVE_DET_SEGMENT
    &det_module_segmentation,
#endif
};

#define DET_MODULE_COUNT (sizeof det_all_modules / sizeof det_all_modules[0])

typedef struct det_instance {
    const det_module *module;
    void *state;
} det_instance;

/* Mark of a raised alert. */
typedef struct det_mark {
    det_node node;
    uint64_t raised_us; /* last_us (evidence end) of the last alert raised under this key */
} det_mark;

struct det_engine {
    pol_detect config;
    det_instance instances[DET_MODULE_COUNT];
    size_t instance_count;
    det_table marks;
    /* Set during det_evaluate only. */
    det_alert_fn fn;
    void *fn_ctx;
    size_t raised;
    /* Length of the last det_engine_save output, the first allocation
     * of the next one. */
    size_t saved_len;
};

/* ---------------------------------------------------------------------- */
/* Evidence names                                                          */
/* ---------------------------------------------------------------------- */

const char *det_evidence_name(int detector, unsigned index)
{
#ifdef FV_HAVE_DET_SEGMENT
    /* det_segment.c names the slots of the scan, DNS, segmentation and
     * indicator detectors. */
    if (detector == FV_DET_SCAN || detector == FV_DET_DNS_TUNNEL || detector == FV_DET_DGA ||
        detector == FV_DET_SEGMENTATION || detector == FV_DET_INDICATOR)
        return det_more_evidence_name(detector, index);
#endif
    for (size_t i = 0; i < DET_MODULE_COUNT; i++) {
        const det_module *m = det_all_modules[i];
        if (m->detector != detector)
            continue;
        if (m->evidence_names == NULL || index >= m->evidence_count)
            return NULL;
        return m->evidence_names[index];
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Engine                                                                  */
/* ---------------------------------------------------------------------- */

static int check_config(const pol_detect *c)
{
    if (c->beacon_enabled) {
        if (c->beacon_min_connections < 3 || c->beacon_min_connections > DET_BEACON_WINDOW) {
            fv_error("detect: beacon_min_connections %u is out of range; use 3 to %d",
                     (unsigned)c->beacon_min_connections, DET_BEACON_WINDOW);
            return FV_ERR_INVALID;
        }
        if (!(c->beacon_max_jitter > 0.0 && c->beacon_max_jitter < 1.0)) {
            fv_error(
                "detect: beacon_max_jitter %g is out of range; use a value above 0 and below 1",
                c->beacon_max_jitter);
            return FV_ERR_INVALID;
        }
        if (!(c->beacon_min_score >= 0.0 && c->beacon_min_score <= 1.0)) {
            fv_error("detect: beacon_min_score %g is out of range; use 0 to 1",
                     c->beacon_min_score);
            return FV_ERR_INVALID;
        }
    }
    if (c->exfil_enabled) {
        if (!(c->exfil_ratio >= 1.0)) {
            fv_error("detect: exfil_ratio %g is out of range; use 1 or more", c->exfil_ratio);
            return FV_ERR_INVALID;
        }
        if (c->exfil_min_history < 1 || c->exfil_min_history > DET_EXFIL_WINDOW) {
            fv_error("detect: exfil_min_history %u is out of range; use 1 to %d",
                     (unsigned)c->exfil_min_history, DET_EXFIL_WINDOW);
            return FV_ERR_INVALID;
        }
    }
    if (c->baseline_enabled && !(c->baseline_mad_factor > 0.0)) {
        fv_error("detect: baseline_mad_factor %g is out of range; use a value above 0",
                 c->baseline_mad_factor);
        return FV_ERR_INVALID;
    }
    if (c->off_hours_enabled && !(c->off_hours_max_share > 0.0 && c->off_hours_max_share < 1.0)) {
        fv_error("detect: off_hours_max_share %g is out of range; use a value above 0 and "
                 "below 1",
                 c->off_hours_max_share);
        return FV_ERR_INVALID;
    }
    return FV_OK;
}

int det_engine_create(const pol_detect *config, det_engine **out)
{
    int rc = FV_OK;
    det_engine *e = NULL;

    if (out == NULL || config == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    rc = check_config(config);
    if (rc != FV_OK)
        goto out;
    if (sodium_init() < 0) {
        rc = FV_ERR_CRYPTO;
        goto out;
    }

    e = calloc(1, sizeof *e);
    if (e == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    e->config = *config;
    rc = det_table_init(&e->marks, DET_MAX_ALERTED, sizeof(det_mark), NULL);
    if (rc != FV_OK)
        goto out;

    for (size_t i = 0; i < DET_MODULE_COUNT; i++) {
        const det_module *m = det_all_modules[i];
        if (!m->enabled(&e->config))
            continue;
        void *state = m->create(&e->config);
        if (state == NULL) {
            rc = FV_ERR_NOMEM;
            goto out;
        }
        e->instances[e->instance_count].module = m;
        e->instances[e->instance_count].state = state;
        e->instance_count++;
    }

    *out = e;
    e = NULL;
out:
    det_engine_destroy(&e);
    return rc;
}

void det_engine_destroy(det_engine **engine)
{
    if (engine == NULL || *engine == NULL)
        return;
    det_engine *e = *engine;
    for (size_t i = 0; i < e->instance_count; i++)
        e->instances[i].module->destroy(e->instances[i].state);
    det_table_free(&e->marks);
    free(e);
    *engine = NULL;
}

void det_engine_reset_alerts(det_engine *engine)
{
    if (engine == NULL)
        return;
    det_table_clear(&engine->marks);
    /* Detectors that report only changes must report everything again. */
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->detector == FV_DET_BEACON)
            det_beacon_mark_all_dirty(engine->instances[i].state);
    }
}

size_t det_module_count(const det_engine *engine)
{
    return engine == NULL ? 0 : engine->instance_count;
}

/* ---------------------------------------------------------------------- */
/* Observation and evaluation                                              */
/* ---------------------------------------------------------------------- */

void det_observe_flow(det_engine *engine, const fv_flow_record *flow)
{
    if (engine == NULL || flow == NULL)
        return;
    /* About ten lookups in different tables follow, most of them cache
     * misses, so start all of their first loads before the first lookup. */
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->prefetch_flow != NULL)
            m->prefetch_flow(engine->instances[i].state, flow);
    }
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->observe_flow != NULL)
            m->observe_flow(engine->instances[i].state, flow);
    }
}

void det_observe_dns(det_engine *engine, const fv_dns_record *dns)
{
    if (engine == NULL || dns == NULL)
        return;
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->prefetch_dns != NULL)
            m->prefetch_dns(engine->instances[i].state, dns);
    }
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->observe_dns != NULL)
            m->observe_dns(engine->instances[i].state, dns);
    }
}

/*
 * Return true if REC repeats an alert whose evidence ended less than half
 * the alert window before REC's evidence ends; otherwise mark it raised. The
 * window is measured in traffic time (last_us), not in ts_us, because
 * `flowveil ingest` evaluates once and gives every alert the same ts_us.
 * A failed allocation returns false without marking, so the alert may
 * repeat rather than be lost.
 */
static bool suppressed(det_engine *e, const fv_alert_record *rec)
{
    det_key key;
    det_key_make(&key, rec->detector, &rec->host, &rec->peer, rec->peer_port, 0);
    det_mark *mark = (det_mark *)det_table_get(&e->marks, &key);
    if (mark != NULL) {
        /* Half the window: a continuing pattern is raised again while the
         * store's merge window of the previous raise is still open, so the
         * store merges it into the same alert. */
        uint64_t window_us = (uint64_t)e->config.alert_window_s * 1000000u / 2u;
        if (window_us == 0 || rec->last_us < mark->raised_us ||
            rec->last_us - mark->raised_us < window_us)
            return true;
        mark->raised_us = rec->last_us;
        return false;
    }
    mark = (det_mark *)det_table_alloc(&e->marks);
    if (mark == NULL)
        return false;
    mark->raised_us = rec->last_us;
    det_table_insert(&e->marks, &mark->node, &key);
    return false;
}

static void engine_emit(void *engine_ctx, const fv_alert_record *rec)
{
    det_engine *e = engine_ctx;
    if (rec == NULL || suppressed(e, rec))
        return;
    if (e->fn != NULL)
        e->fn(e->fn_ctx, rec);
    e->raised++;
}

size_t det_evaluate(det_engine *engine, uint64_t now_us, det_alert_fn fn, void *ctx)
{
    if (engine == NULL)
        return 0;
    engine->fn = fn;
    engine->fn_ctx = ctx;
    engine->raised = 0;
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->evaluate != NULL)
            m->evaluate(engine->instances[i].state, now_us, engine_emit, engine);
    }
    engine->fn = NULL;
    engine->fn_ctx = NULL;
    return engine->raised;
}

/* ---------------------------------------------------------------------- */
/* Re-keying across a key rotation                                         */
/* ---------------------------------------------------------------------- */

void det_rekey_begin(det_engine *engine)
{
    if (engine == NULL)
        return;
    det_table_rekey_begin(&engine->marks);
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->rekey_begin != NULL)
            m->rekey_begin(engine->instances[i].state);
    }
}

void det_rekey(det_engine *engine, const uint8_t old_pseudonym[FV_PSEUDONYM_BYTES],
               const uint8_t new_pseudonym[FV_PSEUDONYM_BYTES], uint8_t kind)
{
    if (engine == NULL || old_pseudonym == NULL || new_pseudonym == NULL)
        return;
    /* A mark whose new key exists already is dropped: one is enough. */
    det_table_rekey(&engine->marks, kind, old_pseudonym, new_pseudonym, NULL);
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->rekey != NULL)
            m->rekey(engine->instances[i].state, old_pseudonym, new_pseudonym, kind);
    }
}

size_t det_rekey_end(det_engine *engine)
{
    if (engine == NULL)
        return 0;
    size_t dropped = det_table_drop_stale(&engine->marks);
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->rekey_end != NULL)
            dropped += m->rekey_end(engine->instances[i].state);
    }
    return dropped;
}

/* ---------------------------------------------------------------------- */
/* Persistence                                                             */
/* ---------------------------------------------------------------------- */

/*
 * Layout (integers big-endian): magic u32, version u32, then for each
 * module with a save function: detector u8, length u32, its bytes.
 */
int det_engine_save(det_engine *engine, uint8_t **out, size_t *out_len)
{
    if (engine == NULL || out == NULL || out_len == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    *out_len = 0;

    /* Every module writes straight after its header, whose length field
     * is filled in afterwards: the state is tens of megabytes on a busy
     * network, and a copy per module cost as much as writing it. */
    det_buf b = {0};
    if (engine->saved_len > 0) {
        b.data = malloc(engine->saved_len);
        b.cap = b.data != NULL ? engine->saved_len : 0;
    }
    det_buf_u32(&b, DET_STATE_MAGIC);
    det_buf_u32(&b, DET_STATE_VERSION);
    for (size_t i = 0; i < engine->instance_count; i++) {
        const det_module *m = engine->instances[i].module;
        if (m->save == NULL)
            continue;
        det_buf_u8(&b, (uint8_t)m->detector);
        size_t len_at = b.len;
        det_buf_u32(&b, 0);
        int rc = m->save(engine->instances[i].state, &b);
        size_t part_len = b.len - len_at - 4;
        if (rc != FV_OK || b.failed || part_len > UINT32_MAX) {
            free(b.data);
            return rc != FV_OK ? rc : FV_ERR_NOMEM;
        }
        for (int k = 0; k < 4; k++)
            b.data[len_at + (size_t)k] = (uint8_t)(part_len >> (8 * (3 - k)));
    }
    if (b.failed) {
        free(b.data);
        return FV_ERR_NOMEM;
    }
    engine->saved_len = b.len;
    *out = b.data;
    *out_len = b.len;
    return FV_OK;
}

int det_engine_load(det_engine *engine, const uint8_t *data, size_t len)
{
    if (engine == NULL || (data == NULL && len > 0))
        return FV_ERR_INVALID;
    det_reader r = {data, len, 0, true};
    uint32_t magic = det_read_u32(&r);
    uint32_t version = det_read_u32(&r);
    if (!r.ok || magic != DET_STATE_MAGIC || version < DET_STATE_VERSION_MIN ||
        version > DET_STATE_VERSION)
        return FV_ERR_PARSE;

    while (r.ok && r.pos < r.len) {
        uint8_t detector = det_read_u8(&r);
        uint32_t part_len = det_read_u32(&r);
        if (!r.ok || part_len > r.len - r.pos)
            return FV_ERR_PARSE;
        const uint8_t *part = r.data + r.pos;
        r.pos += part_len;
        /* State of a detector the policy now disables is skipped. */
        for (size_t i = 0; i < engine->instance_count; i++) {
            const det_module *m = engine->instances[i].module;
            if (m->detector != detector || m->load == NULL)
                continue;
            int rc = m->load(engine->instances[i].state, part, part_len, version);
            if (rc != FV_OK)
                return rc;
        }
    }
    return r.ok ? FV_OK : FV_ERR_PARSE;
}
