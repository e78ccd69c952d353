/*
 * det_lru.h: a bounded hash table with least-recently-used eviction, and
 * the key-rotation helper, shared by the scan, DNS and segmentation
 * detectors. Not used outside detect/.
 *
 * Keys are fixed-size byte strings (KEY_BYTES per table); callers build
 * them in a struct whose every byte is set, so keys compare with memcmp.
 * Each entry carries VALUE_BYTES of caller data, zeroed on insert. Index
 * positions come from a strongly universal multilinear hash under a
 * random per-table key, so keys chosen by an outsider cannot force long
 * probe sequences. Memory for MAX_COUNT entries is reserved at create
 * time; a page costs memory once an entry on it is used.
 *
 * Caveats
 * - One thread only.
 * - Pointers returned by det_lru_find and det_lru_insert stay valid until
 *   the entry is evicted, removed or re-keyed.
 */
#ifndef FV_DET_LRU_H
#define FV_DET_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

typedef struct det_lru det_lru;

/* Called before an entry's VALUE is freed (eviction, removal, destroy),
 * to release memory the value owns. May be NULL. */
typedef void (*det_lru_free_fn)(void *value);

/*
 * Create a table of at most MAX_COUNT entries. Returns NULL on
 * allocation failure, a zero size or a key longer than 64 bytes.
 */
det_lru *det_lru_create(size_t key_bytes, size_t value_bytes, size_t max_count,
                        det_lru_free_fn free_value);

/* Free TABLE and every entry. Accepts NULL; clears *table. */
void det_lru_destroy(det_lru **table);

/* Return the value under KEY, or NULL. Marks the entry most recently used. */
void *det_lru_find(det_lru *table, const void *key);

/* Start loading the memory a later det_lru_find or det_lru_insert of KEY
 * reads first, so several tables' cache misses overlap. Changes nothing
 * in TABLE. */
void det_lru_prefetch(const det_lru *table, const void *key);

/*
 * Return the value under KEY, inserting a zeroed one when absent (then
 * *CREATED is true). A full table evicts its least recently used entry
 * first. Returns NULL on allocation failure.
 */
void *det_lru_insert(det_lru *table, const void *key, bool *created);

size_t det_lru_count(const det_lru *table);

/* Call FN on every entry, newest first. FN must not change the table. */
void det_lru_foreach(det_lru *table, void (*fn)(void *ctx, const void *key, void *value),
                     void *ctx);

/*
 * Re-key every entry: FN may rewrite the entry's KEY (KEY_BYTES) and
 * VALUE in place and returns false to drop the entry. Entries are re-inserted oldest
 * first, so when two end up under one key the newer one stays. Returns
 * the number of entries dropped. O(entries).
 */
size_t det_lru_rekey(det_lru *table, bool (*fn)(void *ctx, void *key, void *value), void *ctx);

/* A host as detector keys store it: endpoint kind and address bytes. */
typedef struct det_host_key {
    uint8_t kind; /* fv_ep_kind */
    uint8_t addr[16];
} det_host_key;

/* Fill KEY from EP (unused address bytes are zero in fv_endpoint). */
void det_host_key_set(det_host_key *key, const fv_endpoint *ep);

/*
 * The old-to-new pseudonym pairs of one key rotation, collected between
 * rekey_begin and rekey_end and wiped at the end, so no detector keeps a
 * link between two epochs. Kinds whose address does not depend on the
 * key (kept and truncated addresses) are never moved nor dropped.
 */
typedef struct det_rekey_map {
    bool active; /* between rekey_begin and rekey_end */
    bool sorted; /* pairs are in det_rekey_map_apply's search order */
    size_t count, capacity;
    struct det_rekey_pair *pairs;
} det_rekey_map;

void det_rekey_map_begin(det_rekey_map *map);
/* Record OLD -> NEW for KIND. Returns FV_OK or FV_ERR_NOMEM. */
int det_rekey_map_add(det_rekey_map *map, const uint8_t *old_pseudonym,
                      const uint8_t *new_pseudonym, uint8_t kind);
/* Wipe and free the pairs; the map becomes inactive. */
void det_rekey_map_end(det_rekey_map *map);

/*
 * Apply MAP to the host (KIND, ADDR). Returns true with ADDR rewritten
 * when its pseudonym is in MAP, and true unchanged when KIND does not
 * depend on the key. Otherwise returns !DROP_UNMAPPED: a lone rekey call
 * passes false, so nothing is dropped.
 */
bool det_rekey_map_apply(det_rekey_map *map, bool drop_unmapped, uint8_t kind, uint8_t addr[16]);

/* True if endpoints of KIND carry a keyed pseudonym that a rotation changes. */
bool det_kind_is_keyed(uint8_t kind);

#endif /* FV_DET_LRU_H */
