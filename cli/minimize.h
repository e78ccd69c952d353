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
 *   ip-10-1-0-5.ec2.internal       -> ip-ip4-xxxxxxxxxxxxxxxx.ec2.internal
 *   app.10.1.0.5.nip.io            -> app.ip4-xxxxxxxxxxxxxxxx.nip.io
 *
 * The examples show the default address mode, pseudonymize. Like the
 * address fields, an address follows the address mode of its zone (see
 * fv_apply_address_mode). A prefix-preserving zone gives the
 * prefix-preserving address text, and a truncating one "10.1.0.0/24". A
 * kept address is left as it is, such as one outside every zone under
 * the default external mode keep.
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

/* Return fv_identity_zone of FAMILY/ADDR and set *EXCLUDED to
 * pol_is_excluded, in one pass over the address (pol_zone_and_exclusion). */
const char *fv_identity_zone_excluded(const pol_policy *policy, int family,
                                      const uint8_t addr[16], bool *excluded);

/* An address as a record stores it: kind is an fv_ep_kind other than
 * FV_EP_NONE, addr and prefix_len as in fv_endpoint. */
typedef struct fv_stored_addr {
    uint8_t kind;
    uint8_t addr[16];
    uint8_t prefix_len;
} fv_stored_addr;

/*
 * Convert the raw address FAMILY/ADDR (ADDR is 16 bytes, IPv4 in
 * addr[0..3]) into the form the policy's address mode for its zone
 * stores: a pseudonym, a prefix-preserving address, a truncated network
 * or the address itself (see pol_zone_address_mode). Addresses outside
 * every zone follow the policy's external mode. If the chosen mode fails,
 * the address is pseudonymized, never kept. Returns the zone label
 * (fv_identity_zone), or NULL for an external address.
 */
const char *fv_apply_address_mode(const pol_policy *policy, anon_ctx *anon, int family,
                                  const uint8_t addr[16], fv_stored_addr *out);

/*
 * Start loading the pseudonym cache slot that fv_apply_address_mode of
 * FAMILY/ADDR will read, when its zone's address mode is pseudonymize
 * (see anon_prefetch). Returns the zone label like fv_apply_address_mode.
 * Changes no result.
 */
const char *fv_prefetch_address(const pol_policy *policy, anon_ctx *anon, int family,
                                const uint8_t addr[16]);

/* Where a name came from; decides which rewrites apply. */
typedef enum fv_name_source {
    FV_NAME_HOST_HEADER = 0,    /* HTTP Host or TLS SNI */
    FV_NAME_DNS = 1,            /* unicast DNS question */
    FV_NAME_LOCAL_DNS = 2,      /* mDNS (port 5353) or LLMNR (port 5355) question */
    FV_NAME_HOST_NAME = 3,      /* a whole host name of an internal host: NetBIOS, DHCP */
    FV_NAME_INTERNAL_DNS = 4,   /* unicast DNS question sent by a host in a zone */
    FV_NAME_INTERNAL_HOST_HEADER = 5,   /* HTTP Host or TLS SNI sent by or to a host in a zone */
} fv_name_source;

/*
 * Rewrite NAME (a NUL-terminated string in a buffer of NAME_LEN bytes) in
 * place. Returns true if it was changed.
 */
bool fv_minimize_name(const pol_policy *policy, anon_ctx *anon, fv_name_source source,
                      char *name, size_t name_len);

/*
 * True if the name NAME (as written in a DNS question or CNAME, a TLS
 * server name or an HTTP Host, which may end in ":PORT") lies under a
 * never-record suffix of the policy (pol_domain_never_record). The
 * caller then drops the whole record and only counts it.
 */
bool fv_name_never_recorded(const pol_policy *policy, const char *name);

/*
 * Rewrite a DNS, TLS or HTTP name in place: fv_minimize_name first, then,
 * for a name that it left alone and that is a domain name (not an IP
 * literal or reverse name, not from mDNS, LLMNR or NetBIOS), the policy's
 * domains.mode:
 *   registrable:  www.example.co.uk:8080 -> example.co.uk:8080 (libpsl);
 *                 a name without a registrable part ("localhost", "co.uk")
 *                 is kept
 *   pseudonymize: www.example.co.uk:8080 -> dom-xxxxxxxxxxxxxxxx:8080, the
 *                 token of the lower-cased name without its trailing dot
 * A port is kept in both modes. Returns true if NAME was changed.
 */
bool fv_minimize_domain(const pol_policy *policy, anon_ctx *anon, fv_name_source source,
                        char *name, size_t name_len);

/*
 * Reduce the HTTP User-Agent UA of a client inside a zone to its product
 * tokens, writing the result to OUT (OUT_LEN bytes, never more than that
 * including the NUL). UA is in the capture's escaped form, where a space
 * is "\032" and a tab "\009"; literal spaces and tabs are accepted too.
 * Elements are separated by whitespace:
 *   - a product "name/version" whose version starts with a digit
 *     ("Mozilla/5.0", "curl/8.5.0") is kept;
 *   - a comment in parentheses, nested ones included, becomes "(redacted)",
 *     because comments carry device names, user names and locales;
 *   - at the first other element (a bare word such as "alice-laptop", a
 *     version that is not a number, "key=value") "(redacted)" is written
 *     and the rest of the value is dropped.
 * RFC 9110 also allows a product without a version, but such a bare
 * token cannot be distinguished from a host or user name, so it ends the
 * kept part. Elements are joined by one escaped space ("\032").
 * Returns true if OUT differs from UA.
 * NOTE: a host name written as a product name with a numeric version
 * ("alice-laptop/1.0") is kept.
 */
bool fv_minimize_user_agent(const char *ua, char *out, size_t out_len);

/* True if public suffix data is available for domains.mode registrable
 * (libpsl's newest list: the system file of the publicsuffix package or
 * the list built into libpsl). */
bool fv_psl_available(void);

#endif /* FV_MINIMIZE_H */
