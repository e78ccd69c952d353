/*
 * msg_ring.h: the queues between the threads of --workers: the file
 * reader to a worker (frames), a worker to the writer (records) and the
 * writer to the detector thread (stored records).
 *
 * Each is a single-producer single-consumer ring of variable-size
 * messages: a msg_header, then the payload, 8-byte aligned. head and
 * tail count bytes since the start and only grow; each side reads the
 * other's index with acquire and publishes its own with release. A
 * message never wraps: when it does not fit before the end, the producer
 * fills the rest with a MSG_RING_WRAP header (or, with less room than a
 * header, leaves it) and starts again at offset 0.
 *
 * The producer reserves room for the longest message it may write,
 * writes the message in place and publishes its real size, so a record
 * that is mostly empty arrays takes only the bytes it uses. Waiting is
 * the caller's: msg_ring_try_reserve never blocks, and the two wait
 * points (wait_point.h) let each side sleep until the other acts.
 */
#ifndef FV_MSG_RING_H
#define FV_MSG_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wait_point.h"

typedef struct msg_header {
    uint32_t size;      /* header and payload, rounded up to 8 bytes */
    uint32_t kind;      /* the user's message kind, or MSG_RING_WRAP */
} msg_header;

#define MSG_RING_WRAP 0xffffffffu

/* The padding is intended: each index and wait point has its own cache
 * line, so the producer and the consumer do not share one. */
typedef struct msg_ring {  // NOLINT(clang-analyzer-optin.performance.Padding)
    uint8_t *buf;
    size_t bytes;
    alignas(64) atomic_uint_fast64_t head;  /* bytes consumed */
    alignas(64) atomic_uint_fast64_t tail;  /* bytes produced */
    alignas(64) wait_point data;            /* the consumer waits for messages */
    alignas(64) wait_point space;           /* the producer waits for room */
    /* Producer only: of the reservation in progress, and the consumer's
     * head as last read. The producer rereads head only when this copy
     * shows too little room, so it does not pull the consumer's cache
     * line over for every message. */
    uint64_t skip;
    uint64_t head_seen;
} msg_ring;

/* Allocate BYTES of buffer. Returns FV_OK or FV_ERR_NOMEM. */
int msg_ring_init(msg_ring *r, size_t bytes);

/* Wipe and free the buffer (the rings carry raw frames and records). */
void msg_ring_free(msg_ring *r);

/* ---- producer ---------------------------------------------------------- */

/* Reserve MAX contiguous bytes (header included) for the next message
 * and return where it starts, or NULL when the ring has no room now. */
uint8_t *msg_ring_try_reserve(msg_ring *r, size_t max);

/* Sleep until the consumer frees room for MAX bytes, or the wait point's
 * timeout. Returns at once when the room is there already. */
void msg_ring_wait_space(msg_ring *r, size_t max);

/* Publish the message of KIND at MSG (from msg_ring_try_reserve): SIZE
 * bytes with its header, at most the reserved MAX. Returns the bytes the
 * tail moved by. */
size_t msg_ring_publish(msg_ring *r, uint8_t *msg, uint32_t kind, size_t size);

/* ---- consumer ---------------------------------------------------------- */

/* The message at *HEAD, before TAIL (a tail the consumer loaded with
 * acquire), skipping the unused end of the buffer: copies its header
 * into *H, returns its payload and advances *HEAD past it. NULL when
 * *HEAD reached TAIL. The caller publishes *HEAD with
 * msg_ring_consumed once it is done with the message. */
const uint8_t *msg_ring_next(const msg_ring *r, uint64_t *head, uint64_t tail, msg_header *h);

/* Let the producer reuse everything before HEAD. */
static inline void msg_ring_consumed(msg_ring *r, uint64_t head)
{
    atomic_store_explicit(&r->head, head, memory_order_release);
}

static inline uint64_t msg_ring_head(msg_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire);
}

static inline uint64_t msg_ring_tail(msg_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire);
}

static inline bool msg_ring_empty(msg_ring *r)
{
    return msg_ring_head(r) == msg_ring_tail(r);
}

/* Sleep until the producer publishes or the timeout, unless the ring
 * contains a message beyond HEAD already. */
void msg_ring_wait_data(msg_ring *r, uint64_t head);

/* ---- packing records into messages --------------------------------------- */

/* Append LEN bytes of DATA at OUT; returns the end. */
static inline uint8_t *msg_put(uint8_t *out, const void *data, size_t len)
{
    memcpy(out, data, len);
    return out + len;
}

/* Append NAME with its NUL but without the unused bytes of its
 * NAME_MAX-byte array. */
static inline uint8_t *msg_put_name(uint8_t *out, const char *name, size_t name_max)
{
    return msg_put(out, name, strnlen(name, name_max - 1) + 1);
}

static inline const uint8_t *msg_get(const uint8_t *in, void *data, size_t len)
{
    memcpy(data, in, len);
    return in + len;
}

/* Restore msg_put_name's name into OUT (NAME_MAX bytes), zero after the
 * name as in the array it came from. */
static inline const uint8_t *msg_get_name(const uint8_t *in, char *out, size_t name_max)
{
    size_t len = strnlen((const char *)in, name_max - 1);
    memcpy(out, in, len);
    memset(out + len, 0, name_max - len);
    return in + len + 1;
}

#endif /* FV_MSG_RING_H */
