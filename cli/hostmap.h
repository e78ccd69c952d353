/*
 * hostmap.h: what the capturing process has learned about internal
 * hosts, in memory only: the MAC of each internal address (from DHCP
 * and from Ethernet frames) and the host name of each MAC (DHCP option
 * 12). Policy groups that match by MAC or host name use it.
 *
 * Caveats
 * - Contains raw identifiers. It never leaves the process, is never
 *   logged, and the pipeline wipes it on every key rotation.
 * - Bounded: at most FV_HOSTMAP_MAX entries per table. Learning past the
 *   bound wipes that table first, so the map can forget a host.
 * - A MAC learned from a DHCP message is kept for its address over a
 *   MAC seen in a frame, because routed frames carry the router's MAC.
 * - Single-threaded.
 */
#ifndef FV_HOSTMAP_H
#define FV_HOSTMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "capture.h"

#define FV_HOSTMAP_MAX 4096u

typedef struct fv_hostmap fv_hostmap;

/* Returns FV_OK or FV_ERR_NOMEM. */
FV_NODISCARD int fv_hostmap_create(fv_hostmap **out);
/* Accepts NULL and sets *map to NULL; the memory is zeroed before it is freed. */
void fv_hostmap_destroy(fv_hostmap **map);
/* Forget everything. */
void fv_hostmap_clear(fv_hostmap *map);

/* Remember MAC for ADDR. FROM_DHCP: learned from a DHCP binding.
 * Returns true if fv_hostmap_mac_of(ADDR) changed. A wipe past the bound
 * changes fv_hostmap_generation instead. */
bool fv_hostmap_learn_mac(fv_hostmap *map, const cap_ip *addr, const uint8_t mac[6],
                          bool from_dhcp);
/* Remember NAME (non-empty) as the host name of MAC. */
void fv_hostmap_learn_name(fv_hostmap *map, const uint8_t mac[6], const char *name);

/* The MAC known for ADDR, or NULL. Valid until the next call that learns or clears. */
const uint8_t *fv_hostmap_mac_of(const fv_hostmap *map, const cap_ip *addr);

/* Remember MAC, which a frame from or to ADDR carried and which a group
 * of the policy lists with a stricter mode than ADDR's own, so that later
 * decisions for ADDR without that frame are as strict. ADDR must be known
 * already (fv_hostmap_learn_mac). Returns true if what
 * fv_hostmap_group_mac_of(ADDR) returns changed. */
bool fv_hostmap_note_group_mac(fv_hostmap *map, const cap_ip *addr, const uint8_t mac[6]);
/* The MAC remembered by fv_hostmap_note_group_mac for ADDR, or NULL.
 * Same lifetime as fv_hostmap_mac_of's result. */
const uint8_t *fv_hostmap_group_mac_of(const fv_hostmap *map, const cap_ip *addr);
/* The host name known for MAC, or NULL. Same lifetime. */
const char *fv_hostmap_name_of(const fv_hostmap *map, const uint8_t mac[6]);

/* A counter that changes whenever what the map returns may change for
 * any address: a clear, a wipe past the bound or a changed host name.
 * A change for one address only is reported by fv_hostmap_learn_mac's
 * result instead. Together they let a caller cache what it derived from
 * the map. */
uint64_t fv_hostmap_generation(const fv_hostmap *map);

#endif /* FV_HOSTMAP_H */
