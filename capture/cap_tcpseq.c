/*
 * cap_tcpseq.c: per-direction TCP sequence tracking that tells in-order
 * segments from retransmissions and out-of-order arrivals.
 *
 * The tracker keeps the next expected sequence number (everything below
 * it was seen) and up to CAP_SEQ_RANGES ranges seen beyond it, as a
 * receiver's SACK blocks would. All comparisons are modulo 2^32 (RFC 793
 * sequence arithmetic), so they hold across wraparound as long as a
 * range stays within 2^31 bytes of next.
 */
#include <stdlib.h>
#include <string.h>

#include "cap_internal.h"

/* a < b in sequence space */
static bool seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static bool seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

/* Advance next over every stored range it now reaches, and drop those. */
static void absorb_ranges(cap_seq_track *t)
{
    bool moved = true;

    while (moved) {
        unsigned i;

        moved = false;
        for (i = 0; i < t->nranges; i++) {
            if (seq_le(t->ranges[i].start, t->next)) {
                if (seq_lt(t->next, t->ranges[i].end))
                    t->next = t->ranges[i].end;
                t->ranges[i] = t->ranges[t->nranges - 1];
                t->nranges--;
                moved = true;
                break;
            }
        }
    }
}

/* Return true if [start, end) lies inside one stored range. */
static bool range_seen(const cap_seq_track *t, uint32_t start, uint32_t end)
{
    unsigned i;

    for (i = 0; i < t->nranges; i++) {
        if (seq_le(t->ranges[i].start, start) && seq_le(end, t->ranges[i].end))
            return true;
    }
    return false;
}

/* Record [start, end) beyond next, merging with ranges it touches. When
 * the list is full the range farthest from next is replaced, so the
 * ranges nearest the gap, which decide the next classifications, stay.
 * When the range array cannot be allocated the range is not recorded, so
 * a later copy of it counts as out of order instead of retransmitted. */
static void range_add(cap_seq_track *t, uint32_t start, uint32_t end)
{
    unsigned i = 0;

    if (t->ranges == NULL) {
        t->ranges = calloc(CAP_SEQ_RANGES, sizeof *t->ranges);
        if (t->ranges == NULL)
            return;
    }

    while (i < t->nranges) {
        cap_seq_range *r = &t->ranges[i];

        if (seq_le(start, r->end) && seq_le(r->start, end)) {
            if (seq_lt(r->start, start))
                start = r->start;
            if (seq_lt(end, r->end))
                end = r->end;
            *r = t->ranges[t->nranges - 1];
            t->nranges--;
            continue;
        }
        i++;
    }
    if (t->nranges == CAP_SEQ_RANGES) {
        unsigned far = 0;

        for (i = 1; i < t->nranges; i++) {
            if (seq_lt(t->ranges[far].start, t->ranges[i].start))
                far = i;
        }
        if (seq_lt(start, t->ranges[far].start))
            t->ranges[far] = (cap_seq_range){start, end};
        return;
    }
    t->ranges[t->nranges].start = start;
    t->ranges[t->nranges].end = end;
    t->nranges++;
}

cap_seq_class cap_seq_track_segment(cap_seq_track *t, uint32_t seq, uint32_t len)
{
    uint32_t end = seq + len;

    if (!t->known) {
        t->known = true;
        t->next = end;
        return CAP_SEQ_IN_ORDER;
    }
    if (len == 0)
        return CAP_SEQ_IN_ORDER;

    if (seq_le(end, t->next))
        return CAP_SEQ_RETRANS;
    if (seq_lt(seq, t->next)) {
        /* Partly old: it repeats bytes already seen, and extends next. */
        t->next = end;
        absorb_ranges(t);
        return CAP_SEQ_RETRANS;
    }
    if (seq == t->next) {
        t->next = end;
        absorb_ranges(t);
        return CAP_SEQ_IN_ORDER;
    }
    if (range_seen(t, seq, end))
        return CAP_SEQ_RETRANS;
    range_add(t, seq, end);
    return CAP_SEQ_OUT_OF_ORDER;
}

void cap_seq_track_free(cap_seq_track *t)
{
    free(t->ranges);
    t->ranges = NULL;
    t->nranges = 0;
}
