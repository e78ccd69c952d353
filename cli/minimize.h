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

/* Where a name came from; decides which rewrites apply. */
typedef enum fv_name_source {
    FV_NAME_HOST_HEADER = 0,    /* HTTP Host or TLS SNI */
    FV_NAME_DNS = 1,            /* unicast DNS question */
    FV_NAME_LOCAL_DNS = 2,      /* mDNS (port 5353) or LLMNR (port 5355) question */
    FV_NAME_HOST_NAME = 3,      /* a whole host name of an internal host: NetBIOS, DHCP */
} fv_name_source;

/*
 * Rewrite NAME (a NUL-terminated string in a buffer of NAME_LEN bytes) in
 * place. Returns true if it was changed.
 */
bool fv_minimize_name(const pol_policy *policy, anon_ctx *anon, fv_name_source source,
                      char *name, size_t name_len);

#endif /* FV_MINIMIZE_H */
