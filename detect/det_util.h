/*
 * det_util.h: helpers shared by the detectors written in detect/: a
 * bounded hash table with least-recently-used eviction and key-rotation
 * support, robust statistics, flow orientation and text formatting.
 * Not installed, not used outside detect/.
 *
 * Caveats
 * - One thread only, like the engine.
 * - Every table has its own random key for a strongly universal hash
 *   (det_util.c, multilinear_hash). Two keys chosen by an outsider
 *   (external peer addresses) collide with probability about 2^-32, so
 *   they are unlikely to force long probe sequences.
 */
#ifndef FV_DET_UTIL_H
#define FV_DET_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "fv_common.h"

/*
 * Table key. Every byte is set (unused fields zero) so keys compare and
 * hash with memcmp and a hash over the whole struct, as ten 32-bit
 * words.
 */
typedef struct det_key {
    uint8_t detector;             /* fv_detector or 0 */
    uint8_t host_kind, peer_kind; /* fv_ep_kind */
    uint8_t proto;
    uint16_t peer_port; /* host order */
    uint8_t slot;       /* free use by a detector (such as an hour of week / 256) */
    uint8_t reserved;
    uint8_t host[16];
    uint8_t peer[16];
} det_key;

_Static_assert(sizeof(det_key) == 40, "det_key must be ten 32-bit words for the table hash");

/* Slot number meaning "no entry" in det_links and at the list ends. */
#define DET_NIL UINT32_MAX

/* Header of every table entry: make it the first member of the entry
 * struct. An entry needs no allocation of its own. Slab slots are
 * 8-byte aligned, and the 8-byte alignment here lets callers cast a node
 * to an entry with 64-bit members (clang's -Wcast-align checks this). */
typedef struct det_node {
    _Alignas(8) uint32_t hash; /* of the whole key */
    uint32_t host_hash;  /* of (host_kind, host) */
    uint32_t generation; /* table generation when created or last rekeyed */
    uint32_t slot;       /* this entry's slot number in the slab */
    det_key key;
} det_node;

/* Links of one slot, as slot numbers (DET_NIL at the ends). They sit in
 * an array apart from the entries, so relinking an entry reads its
 * neighbours' 16 bytes of links and not their entries. */
typedef struct det_links {
    uint32_t lru_newer, lru_older; /* lru_older also links free slots */
    uint32_t host_next, host_prev; /* host index chain, for det_table_rekey */
} det_links;

/*
 * Bounded table with exact least-recently-used eviction. Entries live in
 * one slab of max_count + 1 fixed-size slots allocated at init (pages
 * are touched only when a slot is first used), so entries need no malloc
 * of their own. The LRU list and the host index link slot numbers in a
 * separate det_links array. Lookups go through an open-addressing index
 * with linear probing: each index word contains the key's 32-bit hash and
 * slot + 1, so a probe compares the hash first and reads the entry only
 * on a match. The index starts at 64 words and doubles as entries
 * arrive, up to twice max_count words, so a table far below its bound
 * keeps its index in cache. Growing it is the only allocation of an
 * insert, at most log2(max_count) times over the table's life.
 *
 * Invariant: count <= max_count; lru_newest..lru_oldest links every entry
 * once; index has one word per entry, at most half full. free_node
 * releases what an entry owns (never the entry itself) and may be NULL.
 */
typedef struct det_table {
    uint8_t *slab;        /* (max_count + 1) slots of entry_size bytes */
    det_links *links;     /* max_count + 1 records */
    size_t entry_size;    /* multiple of 8 */
    uint32_t slots_used;  /* slots handed out at least once */
    uint32_t free_head;   /* released slots, linked through lru_older */
    uint64_t *index;      /* (hash << 32) | (slot + 1); 0 is empty */
    size_t index_mask;    /* index size - 1, size a power of two */
    size_t index_limit;   /* index size for max_count entries */
    uint32_t *host_heads; /* host index chain heads, host_mask + 1 of them */
    size_t host_mask;
    size_t count, max_count;
    uint32_t lru_newest, lru_oldest;
    void (*free_node)(det_node *node);
    uint32_t generation;
    /* Multilinear hash key: one word more than the 32-bit words of a det_key. */
    uint64_t hash_key[1 + sizeof(det_key) / sizeof(uint32_t)];
} det_table;

/* Called by det_table_rekey when the host's new key exists already:
 * merge OLD's data into TARGET (OLD is removed afterwards). */
typedef void (*det_merge_fn)(det_node *target, det_node *old);

/* Prepare T for at most MAX_COUNT entries of ENTRY_SIZE bytes (the entry
 * struct's size, det_node first). FREE_NODE may be NULL. */
FV_NODISCARD int det_table_init(det_table *t, size_t max_count, size_t entry_size,
                                void (*free_node)(det_node *));
void det_table_free(det_table *t);
void det_table_clear(det_table *t);
void det_key_make(det_key *key, int detector, const fv_endpoint *host, const fv_endpoint *peer,
                  uint16_t peer_port, uint8_t proto);
/* Find KEY; a found node becomes the most recently used. */
det_node *det_table_get(det_table *t, const det_key *key);
/*
 * Start loading the memory a later det_table_get or insert of KEY reads
 * first (its index word, and the oldest entry when the table is full),
 * so the cache misses of several tables' lookups overlap. Changes
 * nothing in T: a prefetch of a key that is never looked up only costs
 * memory bandwidth.
 */
void det_table_prefetch(const det_table *t, const det_key *key);
/*
 * Return a zeroed entry from the slab, not yet in the table. Pass it to
 * det_table_insert, or to det_table_release, before the next call that
 * allocates: the slab has one spare slot for it, so this returns NULL only
 * when an earlier allocated entry was neither inserted nor released.
 */
det_node *det_table_alloc(det_table *t);
/* Give back an entry from det_table_alloc that was not inserted. */
void det_table_release(det_table *t, det_node *n);
/* Insert N (from det_table_alloc) under KEY (not present), evicting the
 * least recently used node first when the table is full. Growing the
 * index may allocate; if that fails, the insert still succeeds, and it
 * evicts the oldest entry when the index would otherwise fill up. */
void det_table_insert(det_table *t, det_node *n, const det_key *key);
/* Remove N, call free_node on it and return its slot to the slab. */
void det_table_remove(det_table *t, det_node *n);

/* Entries in LRU order; NULL past the end. */
static inline det_node *det_table_slot_node(const det_table *t, uint32_t slot)
{
    return slot == DET_NIL ? NULL : (det_node *)(void *)(t->slab + (size_t)slot * t->entry_size);
}

static inline det_node *det_table_newest(const det_table *t)
{
    return det_table_slot_node(t, t->lru_newest);
}

static inline det_node *det_table_oldest(const det_table *t)
{
    return det_table_slot_node(t, t->lru_oldest);
}

static inline det_node *det_table_older(const det_table *t, const det_node *n)
{
    return det_table_slot_node(t, t->links[n->slot].lru_older);
}

static inline det_node *det_table_newer(const det_table *t, const det_node *n)
{
    return det_table_slot_node(t, t->links[n->slot].lru_newer);
}

/* Start a rotation generation. */
void det_table_rekey_begin(det_table *t);
/* Move every node of host (KIND, OLD) to NEW, merging with MERGE (or
 * dropping the old node when MERGE is NULL) when the new key exists. */
void det_table_rekey(det_table *t, uint8_t kind, const uint8_t old_host[16],
                     const uint8_t new_host[16], det_merge_fn merge);
/* Remove nodes not moved in this generation; return how many. */
size_t det_table_drop_stale(det_table *t);

/* Statistics over V[0..n), n >= 1, none of them NaN. det_median sorts V. */
double det_median(double *v, size_t n);
/* Median of V like det_median, to the bit, but only partitions V around
 * its middle (quickselect), which costs O(n) instead of a sort. */
double det_median_select(double *v, size_t n);
/* K-th smallest of V (k < n, 0 is the minimum): the value V[k] would hold
 * after sorting. Reorders V. */
double det_select(double *v, size_t n, size_t k);
/* Median absolute deviation around MEDIAN, using N values of SCRATCH. */
double det_mad(const double *v, size_t n, double median, double *scratch);
/* Bowley (quartile) skewness of sorted V, in [-1, 1]; 0 if n < 3. */
double det_bowley_skew(const double *sorted, size_t n);
double det_clamp01(double x);
int det_compare_u64(const void *a, const void *b);

/* A flow seen from the internal host's side. */
typedef struct det_outbound {
    const fv_endpoint *host, *peer;
    uint16_t peer_port;
    uint8_t proto;
    uint64_t first_us, last_us;
    uint64_t bytes_out, bytes_in;
} det_outbound;

/* Fill OB for a flow between an internal host and an external peer;
 * return false for any other flow (internal to internal, external to
 * external, or no peer). */
bool det_orient(const fv_flow_record *flow, det_outbound *ob);

/* TCP record whose flags are known and contain no SYN: it continues a
 * connection an earlier record started. Flags 0 means unknown. */
bool det_tcp_without_start(const fv_flow_record *f);
/* At most two TCP packets without SYN or PSH: a teardown remnant. */
bool det_tcp_remnant(const fv_flow_record *f);

/* Hour of week 0..167 (Monday 00:00 UTC = 0) of TS_US. */
unsigned det_hour_of_week(uint64_t ts_us);

/* Write "ADDR:PORT/PROTO" (IPv6 in brackets) into OUT. */
void det_format_peer(const fv_endpoint *peer, uint16_t port, uint8_t proto, char *out,
                     size_t out_len);
/* Write a byte count in decimal units ("512 B", "4.2 KB"). */
void det_format_bytes(double bytes, char *out, size_t out_len);
/* Write the host's text form into OUT. */
void det_format_host(const fv_endpoint *host, char out[FV_ENDPOINT_TEXT_MAX]);

/* Growable byte buffer for state serialization. */
typedef struct det_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* an allocation failed; data is incomplete */
} det_buf;

void det_buf_put(det_buf *b, const void *bytes, size_t n);
void det_buf_u8(det_buf *b, uint8_t v);
void det_buf_u32(det_buf *b, uint32_t v);
void det_buf_u64(det_buf *b, uint64_t v);
void det_buf_f64(det_buf *b, double v);

/* Reader over serialized state; ok turns false on a short read. */
typedef struct det_reader {
    const uint8_t *data;
    size_t len, pos;
    bool ok;
} det_reader;

void det_read(det_reader *r, void *out, size_t n);
uint8_t det_read_u8(det_reader *r);
uint32_t det_read_u32(det_reader *r);
uint64_t det_read_u64(det_reader *r);
double det_read_f64(det_reader *r);

/* Window sizes the engine checks the policy against (det_beacon.c). */
#define DET_BEACON_WINDOW 64 /* flows kept per (host, peer, port, protocol) */
#define DET_EXFIL_WINDOW 128 /* outbound flows kept per host */

/* Make every beacon pair report again at the next evaluation. */
void det_beacon_mark_all_dirty(void *beacon_state);

#endif /* FV_DET_UTIL_H */
