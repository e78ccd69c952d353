/*
 * det_rare.c: the rare_dest detector. An external destination (kept
 * peer address) that no internal host contacted before, contacted by a
 * host after the organization's learning period, alerts once per (host,
 * destination).
 *
 * State: the organization's known destinations (DET_RARE_MAX_DESTS,
 * least recently seen evicted, so a destination unseen for long enough
 * becomes new again) with the number of hosts that contacted each, and
 * the time of the first record seen. Pseudonymized or truncated peers are
 * counted like kept ones: their bytes identify the destination within one
 * key epoch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "det_internal.h"
#include "det_util.h"
#include "detect.h"

#define DET_RARE_MAX_DESTS 262144
#define DET_RARE_MAX_PENDING 4096
#define US_PER_S 1000000ull

typedef struct det_dest {
    det_node node;
    uint32_t hosts;          /* distinct first contacts, saturating */
    uint64_t first_us, last_us;
    uint8_t first_host[16];  /* pseudonym of the first host, for a repeat check */
} det_dest;

typedef struct det_rare {
    pol_detect config;
    det_table dests;
    uint64_t first_us; /* first record the detector saw, 0 before */
    fv_alert_record *pending;
    size_t pending_count;
} det_rare;

static const char *const det_rare_evidence_names[DET_EV_RARE_COUNT] = {
    "host_destinations", "org_hosts", "bytes_out", "learned_s",
};

static bool rare_enabled(const pol_detect *c)
{
    return c->rare_dest_enabled;
}

static void rare_destroy(void *state)
{
    det_rare *r = state;
    if (r == NULL)
        return;
    det_table_free(&r->dests);
    free(r->pending);
    free(r);
}

static void *rare_create(const pol_detect *config)
{
    det_rare *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->config = *config;
    r->pending = calloc(DET_RARE_MAX_PENDING, sizeof *r->pending);
    if (r->pending == NULL ||
        det_table_init(&r->dests, DET_RARE_MAX_DESTS, sizeof(det_dest), NULL) != FV_OK) {
        rare_destroy(r);
        return NULL;
    }
    return r;
}

static void rare_queue(det_rare *r, const det_outbound *ob, uint64_t learned_us)
{
    if (r->pending_count >= DET_RARE_MAX_PENDING)
        return;
    fv_alert_record *a = &r->pending[r->pending_count++];
    memset(a, 0, sizeof *a);
    a->first_us = ob->first_us;
    a->last_us = ob->last_us;
    a->detector = FV_DET_RARE_DEST;
    a->severity = FV_SEV_LOW;
    a->score = 0.6;
    a->host = *ob->host;
    a->peer = *ob->peer;
    a->peer_port = ob->peer_port;
    a->proto = ob->proto;
    a->flow_count = 1;
    a->evidence_count = DET_EV_RARE_COUNT;
    a->evidence[DET_EV_RARE_HOST_DESTINATIONS] = 0.0;
    a->evidence[DET_EV_RARE_ORG_HOSTS] = 0.0;
    a->evidence[DET_EV_RARE_BYTES_OUT] = (double)ob->bytes_out;
    a->evidence[DET_EV_RARE_LEARNED_S] = (double)learned_us / 1e6;
    char host_text[FV_ENDPOINT_TEXT_MAX], peer_text[96];
    det_format_host(ob->host, host_text);
    det_format_peer(ob->peer, ob->peer_port, ob->proto, peer_text, sizeof peer_text);
    int n = snprintf(a->summary, sizeof a->summary,
                     "%s contacted %s, which no internal host contacted in %.1f days of history",
                     host_text, peer_text, (double)learned_us / 1e6 / 86400.0);
    if (n < 0)
        a->summary[0] = '\0';
}

static void rare_observe_flow(void *state, const fv_flow_record *flow)
{
    det_rare *r = state;
    det_outbound ob;
    if (!det_orient(flow, &ob) || det_tcp_remnant(flow) || det_tcp_without_start(flow))
        return;
    if (r->first_us == 0 || flow->first_us < r->first_us)
        r->first_us = flow->first_us;

    det_key key;
    det_key_make(&key, 0, NULL, ob.peer, 0, 0);
    det_dest *d = (det_dest *)det_table_get(&r->dests, &key);
    if (d != NULL) {
        if (memcmp(d->first_host, ob.host->addr, 16) != 0 && d->hosts < UINT32_MAX)
            d->hosts++;
        if (flow->last_us > d->last_us)
            d->last_us = flow->last_us;
        return;
    }

    d = (det_dest *)det_table_alloc(&r->dests);
    if (d == NULL)
        return;
    d->hosts = 1;
    d->first_us = flow->first_us;
    d->last_us = flow->last_us;
    memcpy(d->first_host, ob.host->addr, sizeof d->first_host);
    det_table_insert(&r->dests, &d->node, &key);

    uint64_t learned_us = flow->first_us - r->first_us;
    if (learned_us >= (uint64_t)r->config.learning_period_s * US_PER_S)
        rare_queue(r, &ob, learned_us);
}

static void rare_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    det_rare *r = state;
    for (size_t i = 0; i < r->pending_count; i++) {
        r->pending[i].ts_us = now_us;
        emit(engine_ctx, &r->pending[i]);
    }
    r->pending_count = 0;
}

/* Destinations are not keyed by host: a rotation only rewrites queued
 * alerts. first_host keeps an old pseudonym, so one more host may count
 * as distinct; the count is evidence only. */
static void rare_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                       uint8_t kind)
{
    det_rare *r = state;
    for (size_t i = 0; i < r->pending_count; i++) {
        fv_alert_record *a = &r->pending[i];
        if (a->host.kind == kind && memcmp(a->host.addr, old_pseudonym, 16) == 0)
            memcpy(a->host.addr, new_pseudonym, 16);
    }
}

static int rare_save(void *state, void *out)
{
    det_rare *r = state;
    det_buf *b = out;
    det_buf_u64(b, r->first_us);
    det_buf_u32(b, (uint32_t)r->dests.count);
    for (det_node *n = det_table_oldest(&r->dests); n != NULL; n = det_table_newer(&r->dests, n)) {
        det_dest *d = (det_dest *)n;
        det_buf_put(b, &n->key, sizeof n->key);
        det_buf_u32(b, d->hosts);
        det_buf_u64(b, d->first_us);
        det_buf_u64(b, d->last_us);
        det_buf_put(b, d->first_host, sizeof d->first_host);
    }
    return b->failed ? FV_ERR_NOMEM : FV_OK;
}

/* The format is the same in every state version. */
static int rare_load(void *state, const uint8_t *data, size_t len, uint32_t version)
{
    (void)version;
    det_rare *r = state;
    det_reader rd = {data, len, 0, true};
    uint64_t first_us = det_read_u64(&rd);
    uint32_t count = det_read_u32(&rd);
    if (!rd.ok)
        return FV_ERR_PARSE;
    if (first_us != 0 && (r->first_us == 0 || first_us < r->first_us))
        r->first_us = first_us;
    for (uint32_t i = 0; i < count && rd.ok; i++) {
        det_key key;
        det_read(&rd, &key, sizeof key);
        uint32_t hosts = det_read_u32(&rd);
        uint64_t first = det_read_u64(&rd);
        uint64_t last = det_read_u64(&rd);
        uint8_t first_host[16];
        det_read(&rd, first_host, sizeof first_host);
        if (!rd.ok || det_table_get(&r->dests, &key) != NULL)
            continue;
        det_dest *d = (det_dest *)det_table_alloc(&r->dests);
        if (d == NULL)
            return FV_ERR_NOMEM;
        d->hosts = hosts;
        d->first_us = first;
        d->last_us = last;
        memcpy(d->first_host, first_host, sizeof d->first_host);
        det_table_insert(&r->dests, &d->node, &key);
    }
    return rd.ok && rd.pos == rd.len ? FV_OK : FV_ERR_PARSE;
}

const det_module det_module_rare_dest = {
    .name = "rare_dest",
    .detector = FV_DET_RARE_DEST,
    .enabled = rare_enabled,
    .create = rare_create,
    .destroy = rare_destroy,
    .observe_flow = rare_observe_flow,
    .evaluate = rare_evaluate,
    .rekey = rare_rekey,
    .evidence_names = det_rare_evidence_names,
    .evidence_count = DET_EV_RARE_COUNT,
    .save = rare_save,
    .load = rare_load,
};
