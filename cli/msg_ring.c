/*
 * msg_ring.c: single-producer single-consumer message rings. See
 * msg_ring.h.
 */
#include "msg_ring.h"
#include "fv_common.h"

#include <stdlib.h>

#include <sodium.h>

int msg_ring_init(msg_ring *r, size_t bytes)
{
    r->buf = malloc(bytes);
    r->bytes = bytes;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    wait_point_init(&r->data);
    wait_point_init(&r->space);
    r->skip = 0;
    r->head_seen = 0;
    return r->buf != NULL ? FV_OK : FV_ERR_NOMEM;
}

void msg_ring_free(msg_ring *r)
{
    if (r->buf != NULL)
        sodium_memzero(r->buf, r->bytes);
    free(r->buf);
    r->buf = NULL;
}

/* Bytes to leave unused at the end before a message of MAX bytes, when
 * it would not fit there. */
static uint64_t skip_for(const msg_ring *r, uint64_t tail, size_t max)
{
    uint64_t room_to_end = r->bytes - tail % r->bytes;
    return room_to_end < max ? room_to_end : 0;
}

static bool has_room(msg_ring *r, uint64_t tail, size_t max)
{
    uint64_t need = tail + skip_for(r, tail, max) + max;
    if (need - r->head_seen <= r->bytes)
        return true;
    r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    return need - r->head_seen <= r->bytes;
}

uint8_t *msg_ring_try_reserve(msg_ring *r, size_t max)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (!has_room(r, tail, max))
        return NULL;
    uint64_t offset = tail % r->bytes;
    uint64_t skip = skip_for(r, tail, max);
    if (skip != 0) {
        if (skip >= sizeof(msg_header)) {
            msg_header wrap = {.size = (uint32_t)skip, .kind = MSG_RING_WRAP};
            memcpy(r->buf + offset, &wrap, sizeof wrap);
        }
        offset = 0;
    }
    r->skip = skip;
    return r->buf + offset;
}

void msg_ring_wait_space(msg_ring *r, size_t max)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    unsigned seq = wait_prepare(&r->space);
    if (has_room(r, tail, max))
        wait_cancel(&r->space);
    else
        wait_sleep(&r->space, seq);
}

size_t msg_ring_publish(msg_ring *r, uint8_t *msg, uint32_t kind, size_t size)
{
    size = (size + 7u) & ~(size_t)7u;
    msg_header h = {.size = (uint32_t)size, .kind = kind};
    memcpy(msg, &h, sizeof h);
    size_t moved = (size_t)r->skip + size;
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed) + moved;
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    r->skip = 0;
    return moved;
}

const uint8_t *msg_ring_next(const msg_ring *r, uint64_t *head, uint64_t tail, msg_header *h)
{
    while (*head != tail) {
        uint64_t offset = *head % r->bytes;
        if (r->bytes - offset < sizeof(msg_header)) {
            *head += r->bytes - offset;  /* the producer left this end unused */
            continue;
        }
        memcpy(h, r->buf + offset, sizeof *h);
        *head += h->size;
        if (h->kind != MSG_RING_WRAP)
            return r->buf + offset + sizeof *h;
    }
    return NULL;
}

void msg_ring_wait_data(msg_ring *r, uint64_t head)
{
    unsigned seq = wait_prepare(&r->data);
    if (atomic_load_explicit(&r->tail, memory_order_acquire) != head)
        wait_cancel(&r->data);
    else
        wait_sleep(&r->data, seq);
}
