/*
 * cap_frag.c: bounded IP fragment reassembly for metadata.
 *
 * Each datagram (source, destination, protocol, IPv4 id or IPv6
 * fragment id) gets a slot in a table of CAP_FRAG_MAX_DATAGRAMS. The
 * slot does two jobs:
 * - It gives every fragment the ports of its datagram, so all fragments
 *   count in the 5-tuple flow. Fragments that arrive before the first
 *   fragment are held as counts only (no bytes) and released with it;
 *   if the first fragment never comes, they go to a portless flow
 *   through the orphan callback when the slot ends.
 * - It copies the fragment bodies into one buffer of at most
 *   CAP_FRAG_MAX_BYTES, so that the complete datagram can be parsed. The
 *   buffer is wiped and freed as soon as the caller has parsed it, and
 *   whenever the slot ends.
 *
 * The buffers of all slots together stay within a byte limit
 * (cap_frag_set_max_bytes): a buffer that would pass it first ends the
 * slots with the oldest other buffers (counted in frag_evicted),
 * and is given up on when that is not enough.
 *
 * Overlapping fragments (other than exact duplicates), bodies cut short
 * by the capture, and a second, different end offset stop reassembly of
 * that datagram (RFC 5722 drops such IPv6 datagrams), but its fragments
 * are still counted in its flow.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cap_internal.h"

#define CAP_FRAG_FIRST_ALLOC 2048u

typedef struct frag_piece {
    uint32_t start, end; /* byte range [start, end) of the upper-layer data */
} frag_piece;

typedef struct frag_dgram {
    bool used;
    bool done;        /* reassembled and handed out once; kept for its ports */
    bool failed;      /* reassembly given up; ports and counts still kept */
    bool have_ports;
    bool total_known; /* the fragment without MF was seen */
    uint8_t family, proto;
    uint32_t id;
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint64_t first_us, last_us;
    uint32_t total;
    uint8_t *buf;
    size_t alloc;
    frag_piece pieces[CAP_FRAG_MAX_PIECES];
    unsigned npieces;
    uint32_t pending_pkts;   /* fragments held until the ports are known */
    uint64_t pending_bytes;  /* their IP bytes */
    uint64_t pending_first_us, pending_last_us;
} frag_dgram;

struct cap_frag_table {
    frag_dgram slots[CAP_FRAG_MAX_DATAGRAMS];
    frag_dgram *handed_out; /* slot whose buffer the caller is parsing */
    cap_stats *stats;
    cap_frag_orphan_fn on_orphan;
    void *ctx;
    size_t buf_bytes;     /* sum of the slots' buffer sizes (alloc) */
    size_t buf_count;     /* slots with a buffer */
    size_t max_buf_bytes; /* limit on buf_bytes */
};

int cap_frag_create(cap_stats *stats, cap_frag_orphan_fn on_orphan, void *ctx,
                    cap_frag_table **out)
{
    cap_frag_table *t;

    if (out == NULL || stats == NULL)
        return FV_ERR_INVALID;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return FV_ERR_NOMEM;
    t->stats = stats;
    t->on_orphan = on_orphan;
    t->ctx = ctx;
    t->max_buf_bytes = (size_t)CAP_FRAG_MAX_DATAGRAMS * CAP_FRAG_MAX_BYTES;
    *out = t;
    return FV_OK;
}

static void buf_free(cap_frag_table *t, frag_dgram *d)
{
    if (d->buf != NULL) {
        sodium_memzero(d->buf, d->alloc);
        free(d->buf);
        t->buf_bytes -= d->alloc;
        t->buf_count--;
    }
    d->buf = NULL;
    d->alloc = 0;
}

/* End slot D: count an incomplete datagram under COUNTER (if not NULL),
 * release held fragments to the orphan callback, wipe the buffer. */
static void slot_end(cap_frag_table *t, frag_dgram *d, uint64_t *counter)
{
    if (!d->done && !d->failed && counter != NULL)
        (*counter)++;
    if (d->pending_pkts > 0 && t->on_orphan != NULL) {
        cap_frag_orphan o;

        memset(&o, 0, sizeof o);
        o.src.family = d->family;
        memcpy(o.src.addr, d->src, 16);
        o.dst.family = d->family;
        memcpy(o.dst.addr, d->dst, 16);
        o.proto = d->proto;
        o.pkts = d->pending_pkts;
        o.bytes = d->pending_bytes;
        o.first_us = d->pending_first_us;
        o.last_us = d->pending_last_us;
        t->on_orphan(t->ctx, &o);
    }
    buf_free(t, d);
    if (t->handed_out == d)
        t->handed_out = NULL;
    memset(d, 0, sizeof *d);
}

void cap_frag_flush(cap_frag_table *t)
{
    unsigned i;

    if (t == NULL)
        return;
    for (i = 0; i < CAP_FRAG_MAX_DATAGRAMS; i++) {
        if (t->slots[i].used)
            slot_end(t, &t->slots[i], &t->stats->frag_timeouts);
    }
}

void cap_frag_destroy(cap_frag_table **table)
{
    if (table == NULL || *table == NULL)
        return;
    cap_frag_flush(*table);
    free(*table);
    *table = NULL;
}

void cap_frag_expire(cap_frag_table *t, uint64_t now_us)
{
    unsigned i;

    if (t == NULL)
        return;
    for (i = 0; i < CAP_FRAG_MAX_DATAGRAMS; i++) {
        frag_dgram *d = &t->slots[i];

        if (d->used && now_us >= d->first_us + CAP_FRAG_TIMEOUT_US)
            slot_end(t, d, &t->stats->frag_timeouts);
    }
}

void cap_frag_done(cap_frag_table *t)
{
    if (t == NULL || t->handed_out == NULL)
        return;
    buf_free(t, t->handed_out);
    t->handed_out = NULL;
}

static bool slot_matches(const frag_dgram *d, const cap_packet *pkt)
{
    return d->used && d->family == pkt->src.family && d->proto == pkt->proto &&
           d->id == pkt->frag_id && memcmp(d->src, pkt->src.addr, 16) == 0 &&
           memcmp(d->dst, pkt->dst.addr, 16) == 0;
}

/* Find PKT's datagram or start one, ending the oldest slot when all are in use. */
static frag_dgram *slot_get(cap_frag_table *t, const cap_packet *pkt, uint64_t ts_us)
{
    frag_dgram *free_slot = NULL, *oldest = NULL;
    unsigned i;

    for (i = 0; i < CAP_FRAG_MAX_DATAGRAMS; i++) {
        frag_dgram *d = &t->slots[i];

        if (slot_matches(d, pkt))
            return d;
        if (!d->used) {
            if (free_slot == NULL)
                free_slot = d;
        } else if (oldest == NULL || d->last_us < oldest->last_us) {
            oldest = d;
        }
    }
    if (free_slot == NULL) {
        slot_end(t, oldest, &t->stats->frag_evicted);
        free_slot = oldest;
    }
    free_slot->used = true;
    free_slot->family = pkt->src.family;
    free_slot->proto = pkt->proto;
    free_slot->id = pkt->frag_id;
    memcpy(free_slot->src, pkt->src.addr, 16);
    memcpy(free_slot->dst, pkt->dst.addr, 16);
    free_slot->first_us = ts_us;
    return free_slot;
}

static void slot_fail(cap_frag_table *t, frag_dgram *d, uint64_t *counter)
{
    if (!d->failed && !d->done)
        (*counter)++;
    d->failed = true;
    buf_free(t, d);
}

/* End the slot, other than KEEP and the one handed out, whose buffer
 * belongs to the datagram seen least recently. Return false when no
 * other slot has a buffer. */
static bool end_oldest_buffer(cap_frag_table *t, const frag_dgram *keep)
{
    frag_dgram *oldest = NULL;
    unsigned i;

    for (i = 0; i < CAP_FRAG_MAX_DATAGRAMS; i++) {
        frag_dgram *d = &t->slots[i];

        if (d == keep || d == t->handed_out || d->buf == NULL)
            continue;
        if (oldest == NULL || d->last_us < oldest->last_us)
            oldest = d;
    }
    if (oldest == NULL)
        return false;
    slot_end(t, oldest, &t->stats->frag_evicted);
    return true;
}

/* Copy PKT's body into D's buffer. Return true when the datagram is complete. */
static bool slot_insert(cap_frag_table *t, frag_dgram *d, const cap_packet *pkt)
{
    uint32_t start = pkt->frag_offset;
    uint64_t end64 = (uint64_t)start + pkt->frag_declared;
    uint32_t end, covered = 0;
    unsigned i;

    if (d->failed || d->done)
        return false;
    if (pkt->frag_len != pkt->frag_declared || end64 > CAP_FRAG_MAX_BYTES ||
        (pkt->frag_more && pkt->frag_declared == 0)) {
        slot_fail(t, d, &t->stats->frag_invalid);
        return false;
    }
    end = (uint32_t)end64;

    if (!pkt->frag_more) {
        if (d->total_known && d->total != end) {
            slot_fail(t, d, &t->stats->frag_invalid);
            return false;
        }
        d->total = end;
        d->total_known = true;
    }
    if (d->total_known && end > d->total) {
        slot_fail(t, d, &t->stats->frag_invalid);
        return false;
    }
    for (i = 0; i < d->npieces; i++) {
        const frag_piece *p = &d->pieces[i];

        if (p->start == start && p->end == end)
            return false; /* exact duplicate: a retransmitted fragment */
        if (start < p->end && p->start < end) {
            slot_fail(t, d, &t->stats->frag_invalid);
            return false;
        }
        if (d->total_known && p->end > d->total) {
            slot_fail(t, d, &t->stats->frag_invalid);
            return false;
        }
    }
    if (d->npieces == CAP_FRAG_MAX_PIECES) {
        slot_fail(t, d, &t->stats->frag_too_many);
        return false;
    }

    if (end > d->alloc) {
        size_t alloc = d->alloc ? d->alloc : CAP_FRAG_FIRST_ALLOC;
        uint8_t *grown;

        while (alloc < end)
            alloc *= 2;
        if (alloc > CAP_FRAG_MAX_BYTES)
            alloc = CAP_FRAG_MAX_BYTES;
        while (t->buf_bytes - d->alloc + alloc > t->max_buf_bytes) {
            if (!end_oldest_buffer(t, d)) {
                slot_fail(t, d, &t->stats->frag_evicted);
                return false;
            }
        }
        grown = calloc(1, alloc);
        if (grown == NULL) {
            slot_fail(t, d, &t->stats->frag_invalid);
            return false;
        }
        if (d->buf != NULL)
            memcpy(grown, d->buf, d->alloc);
        buf_free(t, d);
        d->buf = grown;
        d->alloc = alloc;
        t->buf_bytes += alloc;
        t->buf_count++;
    }
    if (end > start)
        memcpy(d->buf + start, pkt->frag_data, end - start);
    d->pieces[d->npieces].start = start;
    d->pieces[d->npieces].end = end;
    d->npieces++;

    if (!d->total_known)
        return false;
    for (i = 0; i < d->npieces; i++)
        covered += d->pieces[i].end - d->pieces[i].start;
    return covered == d->total;
}

void cap_frag_add(cap_frag_table *t, const cap_packet *pkt, uint64_t ts_us, cap_frag_outcome *out)
{
    frag_dgram *d;
    bool ported = pkt->proto == 6 || pkt->proto == 17 || pkt->proto == 132;

    memset(out, 0, sizeof *out);
    cap_frag_done(t);
    d = slot_get(t, pkt, ts_us);
    if (ts_us > d->last_us)
        d->last_us = ts_us;

    if (pkt->first_fragment && pkt->has_ports && !d->have_ports) {
        d->have_ports = true;
        d->sport = pkt->sport;
        d->dport = pkt->dport;
        out->released_pkts = d->pending_pkts;
        out->released_bytes = d->pending_bytes;
        out->released_first_us = d->pending_first_us;
        d->pending_pkts = 0;
        d->pending_bytes = 0;
    }
    if (d->have_ports) {
        out->have_ports = true;
        out->sport = d->sport;
        out->dport = d->dport;
    } else if (ported && !pkt->first_fragment) {
        /* Hold the count until the first fragment brings the ports. */
        if (d->pending_pkts == 0)
            d->pending_first_us = ts_us;
        d->pending_pkts++;
        d->pending_bytes += pkt->ip_bytes;
        d->pending_last_us = ts_us;
        out->defer = true;
    }

    if (slot_insert(t, d, pkt)) {
        d->done = true;
        t->stats->frag_reassembled++;
        out->datagram = d->buf;
        out->datagram_len = d->total;
        t->handed_out = d;
    }
}

void cap_frag_set_max_bytes(cap_frag_table *t, size_t max_bytes)
{
    if (t != NULL)
        t->max_buf_bytes = max_bytes;
}

size_t cap_frag_bytes(const cap_frag_table *t)
{
    if (t == NULL)
        return 0;
    return sizeof *t + CAP_MEMORY_ALLOC_OVERHEAD +
           t->buf_bytes + t->buf_count * CAP_MEMORY_ALLOC_OVERHEAD;
}
