/*
 * minimize.c: rewrite names that carry internal addresses or local host
 * names. See minimize.h for the rules and examples.
 */
#include "minimize.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"

#include <libpsl.h>

/* Replace NAME with PREFIX_TOKEN followed by REST (copied first, since
 * REST points into NAME). */
static void replace_with_token(char *name, size_t name_len, const char *token, const char *rest)
{
    char tail[FV_NAME_MAX];
    fv_str_copy(tail, sizeof tail, rest);
    snprintf(name, name_len, "%s%s", token, tail);
}

/* fv_identity_zone of FAMILY/ADDR, given ZONE, its pol_zone_of. */
static const char *identity_zone_given(const pol_policy *policy, const char *zone, int family,
                                       const uint8_t addr[16])
{
    if (zone != NULL || pol_zone_count(policy) == 0)
        return zone;

    if (family == 6) {
        bool link_local = addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80;
        static const uint8_t solicited[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
        if (link_local || memcmp(addr, solicited, sizeof solicited) == 0)
            return FV_ZONE_LINK_LOCAL;
    } else if (family == 4 && addr[0] == 169 && addr[1] == 254) {
        return FV_ZONE_LINK_LOCAL;
    }
    return NULL;
}

const char *fv_identity_zone(const pol_policy *policy, int family, const uint8_t addr[16])
{
    return identity_zone_given(policy, pol_zone_of(policy, family, addr), family, addr);
}

const char *fv_identity_zone_excluded(const pol_policy *policy, int family,
                                      const uint8_t addr[16], bool *excluded)
{
    const char *zone = pol_zone_and_exclusion(policy, family, addr, excluded);
    return identity_zone_given(policy, zone, family, addr);
}

const char *fv_apply_address_mode(const pol_policy *policy, anon_ctx *anon, int family,
                                  const uint8_t addr[16], fv_stored_addr *out)
{
    const char *zone = fv_identity_zone(policy, family, addr);
    pol_addr_mode mode = POL_ADDR_PSEUDONYMIZE;
    unsigned prefix_len = 0;
    bool v4 = family == 4;

    memset(out, 0, sizeof *out);
    /* Only an invalid family fails here; it then gets a pseudonym. */
    (void)pol_zone_address_mode(policy, zone, v4 ? 4 : 6, &mode, &prefix_len);

    switch (mode) {
    case POL_ADDR_KEEP:
        out->kind = v4 ? FV_EP_IPV4 : FV_EP_IPV6;
        memcpy(out->addr, addr, v4 ? 4 : 16);
        return zone;
    case POL_ADDR_TRUNCATE:
        /* An IPv6 address that carries an address of an IPv4 zone keeps
         * no more of that IPv4 address than the zone's IPv4 prefix, so a
         * long IPv6 prefix cannot store it whole (6to4 2002:a01:5::/56
         * contains 10.1.0.5). */
        if (!v4) {
            int offset = pol_embedded_ipv4_offset(policy, addr);
            pol_addr_mode mode4;
            unsigned prefix4 = 0;
            if (offset >= 0 && pol_zone_address_mode(policy, zone, 4, &mode4, &prefix4) == FV_OK &&
                (unsigned)offset + prefix4 < prefix_len)
                prefix_len = (unsigned)offset + prefix4;
        }
        if (anon_truncate(v4 ? 4 : 6, addr, prefix_len, out->addr) == FV_OK) {
            out->kind = v4 ? FV_EP_TRUNC_IPV4 : FV_EP_TRUNC_IPV6;
            out->prefix_len = (uint8_t)prefix_len;
            return zone;
        }
        break;
    case POL_ADDR_PREFIX_PRESERVING:
        if (anon_prefix_preserving(anon, v4 ? 4 : 6, addr, out->addr) == FV_OK) {
            out->kind = v4 ? FV_EP_PREFIX_IPV4 : FV_EP_PREFIX_IPV6;
            return zone;
        }
        break;
    case POL_ADDR_PSEUDONYMIZE:
        break;
    }

    /* Pseudonymize, also when another mode failed: never keep the raw
     * address by accident. */
    memset(out, 0, sizeof *out);
    out->kind = v4 ? FV_EP_PSEUDO_IPV4 : FV_EP_PSEUDO_IPV6;
    anon_pseudonym(anon, v4 ? ANON_TYPE_IPV4 : ANON_TYPE_IPV6, addr, v4 ? 4 : 16, out->addr);
    return zone;
}

const char *fv_prefetch_address(const pol_policy *policy, anon_ctx *anon, int family,
                                const uint8_t addr[16])
{
    const char *zone = fv_identity_zone(policy, family, addr);
    pol_addr_mode mode = POL_ADDR_PSEUDONYMIZE;
    unsigned prefix_len = 0;
    bool v4 = family == 4;

    (void)pol_zone_address_mode(policy, zone, v4 ? 4 : 6, &mode, &prefix_len);
    if (mode == POL_ADDR_PSEUDONYMIZE)
        anon_prefetch(anon, v4 ? ANON_TYPE_IPV4 : ANON_TYPE_IPV6, addr, v4 ? 4 : 16);
    return zone;
}

/* Write the reverse-DNS labels of the stored address S (IPv4 "d.c.b.a",
 * IPv6 32 nibbles lowest first) into OUT. */
static void format_reverse(const fv_stored_addr *s, char out[FV_ENDPOINT_TEXT_MAX])
{
    static const char hex[] = "0123456789abcdef";
    bool v4 = s->kind == FV_EP_PREFIX_IPV4 || s->kind == FV_EP_TRUNC_IPV4;

    if (v4) {
        snprintf(out, FV_ENDPOINT_TEXT_MAX, "%u.%u.%u.%u", (unsigned)s->addr[3],
                 (unsigned)s->addr[2], (unsigned)s->addr[1], (unsigned)s->addr[0]);
        return;
    }
    size_t o = 0;
    for (int pos = 31; pos >= 0; pos--) {
        uint8_t byte = s->addr[pos / 2];
        out[o++] = hex[pos % 2 == 0 ? byte >> 4 : byte & 0x0f];
        if (pos > 0)
            out[o++] = '.';
    }
    out[o] = '\0';
}

/*
 * Write into TEXT what replaces the address FAMILY/ADDR found in a name:
 * the pseudonym token, address text or "net/len" that its zone's address
 * mode stores. With REVERSE, an address text is written as reverse-DNS
 * labels. Returns false if the address is kept, so the name stays as it
 * is.
 */
static bool address_replacement(const pol_policy *policy, anon_ctx *anon, int family,
                                const uint8_t addr[16], bool reverse,
                                char text[FV_ENDPOINT_TEXT_MAX])
{
    fv_stored_addr s;
    (void)fv_apply_address_mode(policy, anon, family, addr, &s);
    if (s.kind == FV_EP_IPV4 || s.kind == FV_EP_IPV6)
        return false;

    bool is_address = s.kind != FV_EP_PSEUDO_IPV4 && s.kind != FV_EP_PSEUDO_IPV6;
    if (reverse && is_address) {
        format_reverse(&s, text);
        return true;
    }
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = s.kind;
    memcpy(ep.addr, s.addr, sizeof ep.addr);
    ep.prefix_len = s.prefix_len;
    fv_endpoint_format(&ep, text);
    return true;
}

/*
 * Parse NAME as an IP literal with an optional port: "10.1.0.5",
 * "10.1.0.5:8080", "fd00::5", "[fd00::5]:8080". On success fill
 * FAMILY/ADDR, point *REST at what follows the address (the port part or
 * "") and return true.
 */
static bool parse_ip_literal(const char *name, int *family, uint8_t addr[16], const char **rest)
{
    char literal[INET6_ADDRSTRLEN + 1];
    size_t len;

    memset(addr, 0, 16);
    if (name[0] == '[') {
        const char *close = strchr(name, ']');
        if (close == NULL)
            return false;
        len = (size_t)(close - name - 1);
        if (len == 0 || len >= sizeof literal)
            return false;
        memcpy(literal, name + 1, len);
        literal[len] = '\0';
        /* A zone id ("fe80::1%eth0", "%25eth0" in a URL host) names the
         * interface, not the host: the address is what precedes it. */
        char *zone_id = strchr(literal, '%');
        if (zone_id != NULL)
            *zone_id = '\0';
        *rest = close + 1;
        *family = 6;
        return inet_pton(AF_INET6, literal, addr) == 1;
    }

    const char *colon = strchr(name, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        /* Two or more colons: a bare IPv6 literal without a port. */
        *rest = name + strlen(name);
        *family = 6;
        return inet_pton(AF_INET6, name, addr) == 1;
    }

    len = colon != NULL ? (size_t)(colon - name) : strlen(name);
    if (len == 0 || len >= sizeof literal)
        return false;
    memcpy(literal, name, len);
    literal[len] = '\0';
    *rest = name + len;
    *family = 4;
    if (inet_pton(AF_INET, literal, addr) == 1)
        return true;
    /* Browsers and inet_aton also read the legacy forms 167837701,
     * 0x0a.1.0.5, 012.1.0.5 and 10.1.5 as 10.1.0.5, so a Host written
     * that way names the same internal host. */
    if (!(literal[0] >= '0' && literal[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)literal[i]) && literal[i] != '.' && literal[i] != 'x' &&
            literal[i] != 'X')
            return false;
    }
    struct in_addr legacy;
    if (inet_aton(literal, &legacy) == 0)
        return false;
    memcpy(addr, &legacy.s_addr, 4);
    return true;
}

/* Return true if NAME, of NAME_LEN bytes, ends with the lower-case
 * SUFFIX of SUFFIX_LEN bytes, ignoring ASCII case like strcasecmp in the
 * C locale. *PREFIX_LEN gets the length before the suffix. */
static bool has_suffix_of_length(const char *name, size_t name_len, const char *suffix,
                                 size_t suffix_len, size_t *prefix_len)
{
    if (name_len < suffix_len)
        return false;
    const char *tail = name + name_len - suffix_len;
    for (size_t i = 0; i < suffix_len; i++) {
        char c = tail[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != suffix[i])
            return false;
    }
    *prefix_len = name_len - suffix_len;
    return true;
}

/* has_suffix_of_length for a NUL-terminated NAME and SUFFIX. */
static bool has_suffix(const char *name, const char *suffix, size_t *prefix_len)
{
    return has_suffix_of_length(name, strlen(name), suffix, strlen(suffix), prefix_len);
}

/*
 * Decode the reverse-DNS form of a full host address: four decimal labels
 * before ".in-addr.arpa" or 32 hex nibble labels before ".ip6.arpa".
 * Names of partial (subnet) reverse zones are not host addresses and are
 * left alone.
 */
static bool parse_reverse_name(const char *name, int *family, uint8_t addr[16], const char **rest)
{
    size_t prefix;

    memset(addr, 0, 16);
    if (has_suffix(name, ".in-addr.arpa", &prefix)) {
        char tmp[64];
        if (prefix >= sizeof tmp)
            return false;
        memcpy(tmp, name, prefix);
        tmp[prefix] = '\0';
        /* Four decimal labels of one to three digits, each at most 255,
         * in reverse order. */
        const char *label = tmp;
        for (int i = 0; i < 4; i++) {
            char *end;
            if (!isdigit((unsigned char)label[0]))
                return false;
            unsigned long v = strtoul(label, &end, 10);
            if (end - label > 3 || v > 255)
                return false;
            addr[3 - i] = (uint8_t)v;
            label = end;
            if (i < 3 && *label++ != '.')
                return false;
        }
        if (*label != '\0')
            return false;
        *family = 4;
        *rest = name + prefix;
        return true;
    }

    if (has_suffix(name, ".ip6.arpa", &prefix)) {
        if (prefix != 63)   /* 32 nibbles and 31 dots */
            return false;
        for (int i = 0; i < 32; i++) {
            char c = name[i * 2];
            if (i < 31 && name[i * 2 + 1] != '.')
                return false;
            int nibble;
            if (c >= '0' && c <= '9')
                nibble = c - '0';
            else if (c >= 'a' && c <= 'f')
                nibble = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                nibble = c - 'A' + 10;
            else
                return false;
            /* The first label is the lowest nibble of the address. */
            int pos = 31 - i;
            if (pos % 2 == 0)
                addr[pos / 2] |= (uint8_t)(nibble << 4);
            else
                addr[pos / 2] |= (uint8_t)nibble;
        }
        *family = 6;
        *rest = name + prefix;
        return true;
    }
    return false;
}

/*
 * mDNS and LLMNR names: the leading labels that do not start with '_'
 * (the instance or host name, e.g. "janes-laptop" or "Jane's Mac") name a
 * device or a person. They are pseudonymized together, lower-cased, so
 * case variants of one name get one token. Service labels ("_airplay",
 * "_tcp") and the final "local" label are kept.
 */
static bool minimize_local_name(anon_ctx *anon, char *name, size_t name_len)
{
    size_t n = strlen(name);
    size_t end = 0;

    while (end < n) {
        const char *dot = strchr(name + end, '.');
        size_t label_end = dot != NULL ? (size_t)(dot - name) : n;
        const char *label = name + end;
        size_t label_len = label_end - end;
        if (label_len == 0 || label[0] == '_')
            break;
        if (label_end == n && label_len == 5 && strncasecmp(label, "local", 5) == 0)
            break;
        end = dot != NULL ? label_end + 1 : n;
    }
    /* END now sits after the host part (including its trailing dot, if any). */
    size_t host_len = end;
    if (host_len > 0 && host_len <= n && name[host_len - 1] == '.')
        host_len--;
    if (host_len == 0)
        return false;

    char lowered[FV_NAME_MAX];
    for (size_t i = 0; i < host_len && i < sizeof lowered - 1; i++)
        lowered[i] = (char)tolower((unsigned char)name[i]);
    size_t lowered_len = host_len < sizeof lowered - 1 ? host_len : sizeof lowered - 1;

    uint8_t pseudo[FV_PSEUDONYM_BYTES];
    char token[FV_TOKEN_TEXT_MAX];
    anon_pseudonym(anon, ANON_TYPE_HOSTNAME, (const uint8_t *)lowered, lowered_len, pseudo);
    fv_token_format("name", pseudo, token);
    replace_with_token(name, name_len, token, name + host_len);
    return true;
}

/* A NetBIOS or DHCP host name is one label that names a device as a
 * whole (a DHCP name may carry a domain, which names the host too): the
 * whole name becomes one token, lower-cased so case variants share it. */
static bool minimize_host_name(anon_ctx *anon, char *name, size_t name_len)
{
    char lowered[FV_NAME_MAX];
    size_t n = 0;

    for (; n < sizeof lowered - 1 && name[n] != '\0'; n++)
        lowered[n] = (char)tolower((unsigned char)name[n]);

    uint8_t pseudo[FV_PSEUDONYM_BYTES];
    char token[FV_TOKEN_TEXT_MAX];
    anon_pseudonym(anon, ANON_TYPE_HOSTNAME, (const uint8_t *)lowered, n, pseudo);
    fv_token_format("name", pseudo, token);
    fv_str_copy(name, name_len, token);
    return true;
}

/*
 * Names under special-use or conventional private suffixes (RFC 6762
 * ".local", RFC 8375 ".home.arpa", and the widespread ".lan", ".home",
 * ".internal", ".intranet", ".localdomain", ".private") name machines of
 * the local network, often after their owner. In a unicast question from
 * an internal host, everything before the suffix becomes one host-name
 * token; the suffix is kept.
 */
static bool minimize_private_suffix(anon_ctx *anon, char *name, size_t name_len)
{
    /* Lower case, as has_suffix_of_length expects. */
    static const struct {
        const char *text;
        size_t len;
    } suffixes[] = {
#define PRIVATE_SUFFIX(text) {(text), sizeof(text) - 1}
        PRIVATE_SUFFIX(".local"),    PRIVATE_SUFFIX(".home.arpa"),   PRIVATE_SUFFIX(".lan"),
        PRIVATE_SUFFIX(".home"),     PRIVATE_SUFFIX(".internal"),    PRIVATE_SUFFIX(".intranet"),
        PRIVATE_SUFFIX(".localdomain"), PRIVATE_SUFFIX(".private"),
#undef PRIVATE_SUFFIX
    };
    size_t length = strlen(name);
    size_t prefix = 0;
    bool found = false;

    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && !found; i++)
        found = has_suffix_of_length(name, length, suffixes[i].text, suffixes[i].len, &prefix);
    if (!found || prefix == 0)
        return false;

    char lowered[FV_NAME_MAX];
    size_t n = prefix < sizeof lowered - 1 ? prefix : sizeof lowered - 1;
    for (size_t i = 0; i < n; i++)
        lowered[i] = (char)tolower((unsigned char)name[i]);

    uint8_t pseudo[FV_PSEUDONYM_BYTES];
    char token[FV_TOKEN_TEXT_MAX];
    anon_pseudonym(anon, ANON_TYPE_HOSTNAME, (const uint8_t *)lowered, n, pseudo);
    fv_token_format("name", pseudo, token);
    replace_with_token(name, name_len, token, name + prefix);
    return true;
}

/*
 * Parse up to three decimal digits at TEXT as one IPv4 octet (0..255)
 * into *OCTET; return the number of digits read, 0 if none or too big.
 */
static size_t parse_octet(const char *text, uint8_t *octet)
{
    unsigned value = 0;
    size_t n = 0;
    while (n < 3 && text[n] >= '0' && text[n] <= '9') {
        value = value * 10 + (unsigned)(text[n] - '0');
        n++;
    }
    if (n == 0 || value > 255 || (text[n] >= '0' && text[n] <= '9'))
        return 0;
    *octet = (uint8_t)value;
    return n;
}

/*
 * Find an IPv4 address written inside a domain name, as wildcard DNS
 * services (nip.io, sslip.io) and cloud host names do: four octets
 * joined by SEP ('.' as whole labels, "10.1.0.5.nip.io"; '-' inside a
 * label, "ip-10-1-0-5.ec2.internal"). The match must not continue a
 * longer number on either side. On success store the address, the
 * offset of its first character and its length, and return true.
 */
static bool find_embedded_ipv4(const char *name, char sep, size_t from, uint8_t addr[16],
                               size_t *start, size_t *len)
{
    for (size_t i = from; name[i] != '\0'; i++) {
        if (i > 0) {
            char before = name[i - 1];
            if (before >= '0' && before <= '9')
                continue;
            /* Dotted form: the address starts a label. */
            if (sep == '.' && before != '.')
                continue;
        }
        /* An address starts with a digit: skip other characters before
         * trying to parse one. */
        if (name[i] < '0' || name[i] > '9')
            continue;
        size_t pos = i;
        bool ok = true;
        memset(addr, 0, 16);
        for (int k = 0; k < 4 && ok; k++) {
            size_t n = parse_octet(name + pos, &addr[k]);
            if (n == 0) {
                ok = false;
                break;
            }
            pos += n;
            if (k < 3) {
                if (name[pos] != sep)
                    ok = false;
                else
                    pos++;
            }
        }
        if (!ok)
            continue;
        char after = name[pos];
        if (after >= '0' && after <= '9')
            continue;
        if (sep == '.' && after != '.' && after != '\0' && after != ':')
            continue;
        *start = i;
        *len = pos - i;
        return true;
    }
    return false;
}

/*
 * Rewrite every internal IPv4 address embedded in NAME (see
 * find_embedded_ipv4) with the form its zone's address mode stores, so
 * "10-1-0-55.nip.io" does not carry the address the flow fields hide.
 * In the dashed form the replacement's dots become dashes, keeping the
 * label valid. External and kept addresses stay. Returns true if NAME
 * changed.
 */
static bool minimize_embedded_addresses(const pol_policy *policy, anon_ctx *anon, char *name,
                                        size_t name_len)
{
    static const char seps[] = {'-', '.'};
    bool changed = false;

    /* Four octets need four digits; most names have none. */
    size_t digits = 0;
    for (const char *c = name; *c != '\0' && digits < 4; c++)
        digits += *c >= '0' && *c <= '9';
    if (digits < 4)
        return false;

    for (size_t s = 0; s < sizeof seps; s++) {
        size_t from = 0, start, len;
        uint8_t addr[16];
        /* Each pass replaces one address; a name holds only a few. */
        for (int guard = 0; guard < 8 && name[from] != '\0'; guard++) {
            if (!find_embedded_ipv4(name, seps[s], from, addr, &start, &len))
                break;
            char text[FV_ENDPOINT_TEXT_MAX];
            if (fv_identity_zone(policy, 4, addr) == NULL ||
                !address_replacement(policy, anon, 4, addr, false, text)) {
                from = start + len;
                continue;
            }
            if (seps[s] == '-')
                for (char *c = text; *c != '\0'; c++)
                    if (*c == '.' || *c == '/')
                        *c = '-';
            char out[FV_NAME_MAX];
            int n = snprintf(out, sizeof out, "%.*s%s%s", (int)start, name, text,
                             name + start + len);
            if (n < 0 || (size_t)n >= sizeof out || (size_t)n >= name_len)
                break;      /* would not fit: leave the rest as it is */
            memcpy(name, out, (size_t)n + 1);
            from = start + strlen(text);
            changed = true;
        }
    }
    return changed;
}

static bool split_host_port(const char *name, char host[FV_NAME_MAX], const char **port);

/* Rewrite the host part of the HTTP Host or TLS server name NAME, which
 * may end in ":PORT", as minimize_private_suffix does with a DNS
 * question, so that a local machine's name gets the token it gets in
 * DNS. */
static bool minimize_private_host_header(anon_ctx *anon, char *name, size_t name_len)
{
    char host[FV_NAME_MAX];
    const char *port;
    if (!split_host_port(name, host, &port) || !minimize_private_suffix(anon, host, sizeof host))
        return false;
    char out[FV_NAME_MAX];
    snprintf(out, sizeof out, "%s%s", host, port);
    fv_str_copy(name, name_len, out);
    return true;
}

bool fv_minimize_name(const pol_policy *policy, anon_ctx *anon, fv_name_source source,
                      char *name, size_t name_len)
{
    int family;
    uint8_t addr[16];
    const char *rest;
    char text[FV_ENDPOINT_TEXT_MAX];

    if (name[0] == '\0')
        return false;
    if (source == FV_NAME_HOST_NAME)
        return minimize_host_name(anon, name, name_len);

    bool literal = parse_ip_literal(name, &family, addr, &rest);
    if (literal ||
        (source != FV_NAME_HOST_HEADER && source != FV_NAME_INTERNAL_HOST_HEADER &&
         parse_reverse_name(name, &family, addr, &rest))) {
        if (!address_replacement(policy, anon, family, addr, !literal, text))
            return false;
        /* A bracketed IPv6 literal keeps its brackets around the new
         * address so a port after it stays readable. */
        if (literal && name[0] == '[' && strchr(text, ':') != NULL) {
            char bracketed[FV_ENDPOINT_TEXT_MAX + 2];
            snprintf(bracketed, sizeof bracketed, "[%s]", text);
            replace_with_token(name, name_len, bracketed, rest);
        } else {
            replace_with_token(name, name_len, text, rest);
        }
        return true;
    }

    bool embedded = minimize_embedded_addresses(policy, anon, name, name_len);
    if (source == FV_NAME_LOCAL_DNS)
        return minimize_local_name(anon, name, name_len) || embedded;
    if (source == FV_NAME_INTERNAL_DNS)
        return minimize_private_suffix(anon, name, name_len) || embedded;
    if (source == FV_NAME_INTERNAL_HOST_HEADER)
        return minimize_private_host_header(anon, name, name_len) || embedded;
    return embedded;
}

/* ---------------------------------------------------------------------- */
/* Domain names                                                            */
/* ---------------------------------------------------------------------- */

/*
 * Split NAME into its host part, lower-cased without a trailing dot, in
 * HOST, and its port part (":8080", or "") in *PORT. A name with two or
 * more colons is an IPv6 literal and has no port. Returns false if the
 * host part is empty or does not fit.
 */
static bool split_host_port(const char *name, char host[FV_NAME_MAX], const char **port)
{
    const char *colon = strchr(name, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
        colon = NULL;
    size_t len = colon != NULL ? (size_t)(colon - name) : strlen(name);
    *port = colon != NULL ? colon : name + len;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len >= FV_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        host[i] = (char)tolower((unsigned char)name[i]);
    host[len] = '\0';
    return true;
}

bool fv_name_never_recorded(const pol_policy *policy, const char *name)
{
    char host[FV_NAME_MAX];
    const char *port;

    if (name == NULL || name[0] == '\0' || pol_never_record_count(policy) == 0)
        return false;
    if (!split_host_port(name, host, &port))
        return false;
    return pol_domain_never_record(policy, host);
}

/* The public suffix list, loaded once per process. psl_latest() picks
 * the newer of the system list and the one built into libpsl; the
 * context is kept until exit. Not thread-safe, like the pipeline. */
static const psl_ctx_t *fv_psl(void)
{
    static psl_ctx_t *latest;
    static bool loaded;
    if (!loaded) {
        loaded = true;
        latest = psl_latest(NULL);
    }
    return latest != NULL ? latest : psl_builtin();
}

bool fv_psl_available(void)
{
    return fv_psl() != NULL;
}

bool fv_minimize_domain(const pol_policy *policy, anon_ctx *anon, fv_name_source source,
                        char *name, size_t name_len)
{
    bool changed = fv_minimize_name(policy, anon, source, name, name_len);
    pol_domain_mode mode = pol_domain_mode_get(policy);

    if (changed || mode == POL_DOMAINS_KEEP || name[0] == '\0')
        return changed;
    /* Local host names keep the treatment of fv_minimize_name. */
    if (source == FV_NAME_LOCAL_DNS || source == FV_NAME_HOST_NAME)
        return false;
    /* Addresses are governed by the zones, not by the domain mode. */
    int family;
    uint8_t addr[16];
    const char *rest;
    if (parse_ip_literal(name, &family, addr, &rest) ||
        parse_reverse_name(name, &family, addr, &rest))
        return false;

    char host[FV_NAME_MAX];
    const char *port;
    if (!split_host_port(name, host, &port))
        return false;

    if (mode == POL_DOMAINS_REGISTRABLE) {
        const psl_ctx_t *psl = fv_psl();
        /* NOTE: without public suffix data the name is kept whole;
         * fv_pipeline_open rejects registrable mode in that case. */
        const char *registrable = psl != NULL ? psl_registrable_domain(psl, host) : NULL;
        if (registrable == NULL)
            return false;
        char out[FV_NAME_MAX];
        snprintf(out, sizeof out, "%s%s", registrable, port);
        if (strcmp(out, name) == 0)
            return false;
        fv_str_copy(name, name_len, out);
        return true;
    }

    uint8_t pseudo[FV_PSEUDONYM_BYTES];
    char token[FV_TOKEN_TEXT_MAX];
    anon_pseudonym(anon, ANON_TYPE_DOMAIN, (const uint8_t *)host, strlen(host), pseudo);
    fv_token_format("dom", pseudo, token);
    replace_with_token(name, name_len, token, port);
    return true;
}

/* ---------------------------------------------------------------------- */
/* User-Agent                                                              */
/* ---------------------------------------------------------------------- */

#define UA_REDACTED "(redacted)"
/* The capture writes bytes outside 0x21..0x7e and '\' as \DDD (decimal),
 * so a space arrives as "\032", a tab as "\009" and a backslash as "\092". */
#define UA_SPACE "\\032"

/* Length of the whitespace at TEXT (escaped or literal); 0 if none. */
static size_t ua_space_length(const char *text)
{
    if (text[0] == ' ' || text[0] == '\t')
        return 1;
    if (strncmp(text, "\\032", 4) == 0 || strncmp(text, "\\009", 4) == 0)
        return 4;
    return 0;
}

/* True for an RFC 9110 tchar: the characters of a token. */
static bool ua_is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* True where one User-Agent element ends: the end, whitespace or a comment. */
static bool ua_element_end(const char *text)
{
    return text[0] == '\0' || text[0] == '(' || ua_space_length(text) > 0;
}

/* Length of one character at TEXT: 4 for a \DDD escape, else 1; 0 at the
 * end or for a cut escape. */
static size_t ua_char_length(const char *text)
{
    if (text[0] == '\0')
        return 0;
    if (text[0] != '\\')
        return 1;
    for (size_t i = 1; i <= 3; i++) {
        if (!(text[i] >= '0' && text[i] <= '9'))
            return 0;
    }
    return 4;
}

/* Length of the comment starting at TEXT[0] == '(', with nested comments
 * and quoted pairs (an escaped backslash quotes the next character);
 * 0 if it is never closed. */
static size_t ua_comment_length(const char *text)
{
    size_t depth = 0;
    size_t i = 0;
    for (;;) {
        size_t n = ua_char_length(text + i);
        if (n == 0)
            return 0;
        if (n == 4 && strncmp(text + i, "\\092", 4) == 0) {
            size_t quoted = ua_char_length(text + i + 4);
            if (quoted == 0)
                return 0;
            n += quoted;
        } else if (text[i] == '(') {
            depth++;
        } else if (text[i] == ')') {
            depth--;
            if (depth == 0)
                return i + 1;
        }
        i += n;
    }
}

/* Length of the product "name/version" at TEXT whose version starts with
 * a digit and which ends an element; 0 if TEXT does not start with one. */
static size_t ua_product_length(const char *text)
{
    size_t i = 0;
    while (ua_is_tchar(text[i]))
        i++;
    if (i == 0 || text[i] != '/' || !(text[i + 1] >= '0' && text[i + 1] <= '9'))
        return 0;
    i++;
    while (ua_is_tchar(text[i]))
        i++;
    return ua_element_end(text + i) ? i : 0;
}

/* Append PIECE (N bytes) to OUT at *USED, after an escaped space unless
 * OUT is empty. Returns false, leaving OUT as it was, if it does not fit. */
static bool ua_append(char *out, size_t out_len, size_t *used, const char *piece, size_t n)
{
    size_t sep = *used > 0 ? strlen(UA_SPACE) : 0;
    if (!(sep + n < out_len - *used))
        return false;
    memcpy(out + *used, UA_SPACE, sep);
    *used += sep;
    memcpy(out + *used, piece, n);
    *used += n;
    out[*used] = '\0';
    return true;
}

bool fv_minimize_user_agent(const char *ua, char *out, size_t out_len)
{
    if (out == NULL || out_len == 0)
        return false;
    out[0] = '\0';
    if (ua == NULL)
        return false;

    size_t used = 0;
    size_t i = 0;
    for (;;) {
        for (size_t sp; (sp = ua_space_length(ua + i)) > 0;)
            i += sp;
        if (ua[i] == '\0')
            break;

        size_t n = ua[i] == '(' ? ua_comment_length(ua + i) : ua_product_length(ua + i);
        if (n == 0 || ua[i] == '(') {
            /* A comment is replaced; anything else that is not a product
             * (or an unclosed comment) ends the value. */
            if (!ua_append(out, out_len, &used, UA_REDACTED, strlen(UA_REDACTED)) || n == 0)
                break;
        } else if (!ua_append(out, out_len, &used, ua + i, n)) {
            break;
        }
        i += n;
    }
    return strcmp(out, ua) != 0;
}
