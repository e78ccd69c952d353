/*
 * det_index.h: the open-addressing index of the detector tables
 * (det_table in det_util.c, det_lru in det_lru.c).
 *
 * The index is an array of MASK + 1 64-bit words, MASK + 1 a power of
 * two, kept at most half full. A word is the entry's 32-bit hash in the
 * high half and its slot number plus one in the low half, so 0 marks an
 * empty position and a probe compares hashes without reading the entry.
 * Probing is linear from the hash's home position, hash & MASK.
 */
#ifndef DET_INDEX_H
#define DET_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

static inline uint64_t det_index_word(uint32_t hash, uint32_t slot)
{
    return ((uint64_t)hash << 32) | ((uint64_t)slot + 1u);
}

/* Put WORD at the first empty position of its probe run. The caller
 * keeps the index at most half full, so one is always found. */
static inline void det_index_add(uint64_t *index, size_t mask, uint64_t word)
{
    size_t i = (size_t)(word >> 32) & mask;
    while (index[i] != 0)
        i = (i + 1) & mask;
    index[i] = word;
}

/* Remove WORD, which must be present, by backward shift, so the index
 * needs no tombstones. Each later word of the probe run moves into the
 * hole unless its home position lies between the hole and the word. */
static inline void det_index_delete(uint64_t *index, size_t mask, uint64_t word)
{
    size_t hole = (size_t)(word >> 32) & mask;
    while (index[hole] != word)
        hole = (hole + 1) & mask;

    size_t j = hole;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t w = index[j];
        if (w == 0)
            break;
        size_t home = (size_t)(w >> 32) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            index[hole] = w;
            hole = j;
        }
    }
    index[hole] = 0;
}

/* Double *INDEX if COUNT + 1 entries would fill more than half of it and
 * it has fewer than LIMIT words. Called before each insert, so one
 * doubling is enough. The words contain their hashes, so moving them
 * reads no entry. Returns false when the allocation failed, and then
 * keeps the old index. */
static inline bool det_index_reserve(uint64_t **index, size_t *mask, size_t count, size_t limit)
{
    size_t size = *mask + 1;
    if ((count + 1) * 2 <= size || size >= limit)
        return true;
    size_t grown_size = size * 2;
    uint64_t *grown = calloc(grown_size, sizeof *grown);
    if (grown == NULL)
        return false;
    /* Written once before the probes below read it: a read of an
     * untouched page maps the shared zero page, and the write after it
     * faults again and, with the detector thread, flushes every other
     * CPU's TLB (see det_table_alloc). sodium_memzero, because a
     * compiler drops a memset after calloc. */
    sodium_memzero(grown, grown_size * sizeof *grown);
    size_t grown_mask = grown_size - 1;
    for (size_t i = 0; i < size; i++) {
        if ((*index)[i] != 0)
            det_index_add(grown, grown_mask, (*index)[i]);
    }
    free(*index);
    *index = grown;
    *mask = grown_mask;
    return true;
}

#endif /* DET_INDEX_H */
