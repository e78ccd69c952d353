/*
 * seenhosts.h: the pseudonym of each internal host that the detectors
 * saw in the current key epoch, keyed by its raw address, in the memory
 * of the capturing process only.
 *
 * At a key rotation the pipeline walks this map, computes each host's
 * pseudonym under the new key and moves the detector state with
 * det_rekey, then wipes the map. Nothing here is ever written to disk
 * or logged, so no stored data maps an old pseudonym to a new one.
 *
 * Caveats
 * - Contains raw addresses: the map is zeroed on clear and destroy.
 * - Bounded by FV_SEENHOSTS_MAX hosts (the detectors' own host bound).
 *   Hosts beyond it are not noted, and their detector state is dropped
 *   at the next rotation; fv_seenhosts_not_noted counts them.
 * - Single-threaded.
 */
#ifndef FV_SEENHOSTS_H
#define FV_SEENHOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"

#define FV_SEENHOSTS_MAX 65536u

typedef struct fv_seenhosts fv_seenhosts;

/* Called per host by fv_seenhosts_foreach; ADDR and PSEUDONYM are valid
 * during the call only. KIND is the fv_ep_kind of the stored endpoint. */
typedef void (*fv_seenhosts_fn)(void *ctx, const cap_ip *addr, uint8_t kind,
                                const uint8_t pseudonym[FV_PSEUDONYM_BYTES]);

/* Returns FV_OK or FV_ERR_NOMEM. */
FV_NODISCARD int fv_seenhosts_create(fv_seenhosts **out);

/* Zero and free MAP. Accepts NULL and sets *map to NULL. */
void fv_seenhosts_destroy(fv_seenhosts **map);

/* Zero every entry and the not-noted count. */
void fv_seenhosts_clear(fv_seenhosts *map);

/* Remember that ADDR is stored as endpoint EP (kind and pseudonym). A
 * later call for the same address replaces the pseudonym. */
void fv_seenhosts_note(fv_seenhosts *map, const cap_ip *addr, const fv_endpoint *ep);

/* Start loading the table slot of ADDR into the CPU cache, so that a
 * later fv_seenhosts_note of ADDR waits less on memory. Changes nothing
 * in MAP. */
void fv_seenhosts_prefetch(const fv_seenhosts *map, const cap_ip *addr);

/* Call FN for every noted host, in no particular order. */
void fv_seenhosts_foreach(const fv_seenhosts *map, fv_seenhosts_fn fn, void *ctx);

/* Hosts noted in this epoch, and hosts not noted because the map was full. */
size_t fv_seenhosts_count(const fv_seenhosts *map);
uint64_t fv_seenhosts_not_noted(const fv_seenhosts *map);

#endif /* FV_SEENHOSTS_H */
