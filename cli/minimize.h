/*
 * minimize.h: remove identities hidden inside names.
 *
 * Metadata names can carry the very identifiers that pseudonymization
 * removes from the address fields: an HTTP Host or TLS SNI written as an
 * internal IP literal ("10.1.0.5:8080"), a reverse-DNS question
 * ("5.0.1.10.in-addr.arpa"), or an mDNS/LLMNR host name
 * ("janes-laptop.local"). These functions rewrite such names in place so
 * the internal address or host name appears only as a pseudonym token:
 *
 *   10.1.0.5:8080                  -> ip4-xxxxxxxxxxxxxxxx:8080
 *   5.0.1.10.in-addr.arpa          -> ip4-xxxxxxxxxxxxxxxx.in-addr.arpa
 *   janes-laptop.local             -> name-xxxxxxxxxxxxxxxx.local
 *   Jane's Mac._airplay._tcp.local -> name-xxxxxxxxxxxxxxxx._airplay._tcp.local
 *   GRIMM.corp.local (unicast DNS from a host in a zone)
 *                                  -> name-xxxxxxxxxxxxxxxx.local
 *
 * Addresses outside every zone are left as they are, like the address
 * fields.
 */
#ifndef FV_MINIMIZE_H
#define FV_MINIMIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anonymize.h"
#include "policy.h"

/* Zone label of addresses that are local by nature (see fv_identity_zone). */
#define FV_ZONE_LINK_LOCAL "link-local"

/*
 * Return the zone whose addresses are identities: the policy zone of the
 * address, or FV_ZONE_LINK_LOCAL for IPv6 link-local (fe80::/10),
 * solicited-node multicast (ff02::1:ff00:0/104) and IPv4 link-local
 * (169.254.0.0/16) addresses when the policy declares any zone. Those
 * addresses live on the monitored link itself and often embed the
 * interface's MAC address (EUI-64), so they are pseudonymized like MACs.
 * Returns NULL for an external address. ADDR is 16 bytes, IPv4 in
 * addr[0..3].
 */
const char *fv_identity_zone(const pol_policy *policy, int family, const uint8_t addr[16]);

/* Where a name came from; decides which rewrites apply. */
typedef enum fv_name_source {
    FV_NAME_HOST_HEADER = 0,    /* HTTP Host or TLS SNI */
    FV_NAME_DNS = 1,            /* unicast DNS question */
    FV_NAME_LOCAL_DNS = 2,      /* mDNS (port 5353) or LLMNR (port 5355) question */
    FV_NAME_HOST_NAME = 3,      /* a whole host name of an internal host: NetBIOS, DHCP */
    FV_NAME_INTERNAL_DNS = 4,   /* unicast DNS question sent by a host in a zone */
} fv_name_source;

/*
 * Rewrite NAME (a NUL-terminated string in a buffer of NAME_LEN bytes) in
 * place. Returns true if it was changed.
 */
bool fv_minimize_name(const pol_policy *policy, anon_ctx *anon, fv_name_source source,
                      char *name, size_t name_len);

#endif /* FV_MINIMIZE_H */
