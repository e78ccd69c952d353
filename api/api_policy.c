/*
 * api_policy.c: what the policy of `serve --policy` changes in the API.
 *
 * - Roles: the policy's roles map narrows the fixed route table. A route
 *   that reads an item ("flows", "audit", ...) is open to a role only if
 *   the table allows it and the role lists the item. The table stays the
 *   ceiling, so a policy never opens a route to a role the table closes.
 * - Address literals: a host filter or a timeline path given as an
 *   address in a zone can never match, because the store contains such
 *   addresses only as pseudonyms. With a policy the request gets a 400
 *   that names the zone; without one the reply gets a "note" member.
 * - Zone filters: with a policy, a zone label that no stored record can
 *   carry gets a 400 listing the valid labels. Without one it gets a note.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* Item of the policy's roles map that a route reads, by path prefix. */
typedef struct route_item {
    const char *prefix;         /* the path, or its start when it ends in '/' */
    const char *item;
} route_item;

static const route_item route_items[] = {
    {"/api/v1/flows", "flows"},
    {"/api/v1/dns", "dns"},
    {"/api/v1/tls", "tls"},
    {"/api/v1/http", "http"},
    {"/api/v1/dhcp", "dhcp"},
    {"/api/v1/ssh", "ssh"},
    {"/api/v1/aggregates", "aggregates"},
    {"/api/v1/alerts", "alerts"},
    {"/api/v1/alerts/", "alerts"},
    /* A timeline lists a host's flows first of all. */
    {"/api/v1/hosts/", "flows"},
    /* Series and the top lists are totals over the aggregates. */
    {"/api/v1/series", "aggregates"},
    {"/api/v1/top/destinations", "aggregates"},
    {"/api/v1/top/protocols", "aggregates"},
    {"/api/v1/top/zones", "aggregates"},
    {"/api/v1/top/talkers", "flows"},
    {"/api/v1/top/domains", "dns"},
    {"/api/v1/policy", "policy"},
    {"/api/v1/reports/", "reports"},
    {"/api/v1/audit", "audit"},
    {"/api/v1/audit/verify", "audit"},
    {"/api/v1/retention", "retention"},
    {"/api/v1/counters", "counters"},
};

const char *api_route_policy_item(const char *path)
{
    for (size_t i = 0; i < sizeof route_items / sizeof route_items[0]; i++) {
        const char *prefix = route_items[i].prefix;
        size_t n = strlen(prefix);
        bool open_end = n > 0 && prefix[n - 1] == '/';
        if (open_end ? strncmp(path, prefix, n) == 0 && path[n] != '\0'
                     : strcmp(path, prefix) == 0)
            return route_items[i].item;
    }
    return NULL;
}

/* The role bits and names, in the order the 403 message lists them. */
static const struct {
    unsigned bit;
    const char *name;
} api_roles[] = {
    {API_ROLE_ANALYST, "analyst"},
    {API_ROLE_COMPLIANCE, "compliance"},
    {API_ROLE_ADMIN, "admin"},
};

bool api_role_may_use(const api_server *srv, unsigned role, int table_roles, const char *path)
{
    const char *name = NULL;
    for (size_t i = 0; i < sizeof api_roles / sizeof api_roles[0]; i++) {
        if (api_roles[i].bit == role)
            name = api_roles[i].name;
    }
    if (name == NULL)
        return false;
    if (role != API_ROLE_ADMIN && ((unsigned)table_roles & role) == 0)
        return false;
    const char *item = api_route_policy_item(path);
    if (srv->role_may_read_fn == NULL || item == NULL)
        return true;
    return srv->role_may_read_fn(srv->policy_ctx, name, item);
}

void api_forbidden(const api_server *srv, unsigned role, int table_roles, const char *path,
                   api_reply *out)
{
    char allowed[64] = "";
    size_t used = 0;
    const char *role_name = "unknown";

    for (size_t i = 0; i < sizeof api_roles / sizeof api_roles[0]; i++) {
        if (api_roles[i].bit == role)
            role_name = api_roles[i].name;
        if (!api_role_may_use(srv, api_roles[i].bit, table_roles, path))
            continue;
        int n = snprintf(allowed + used, sizeof allowed - used, "%s%s", used > 0 ? ", " : "",
                         api_roles[i].name);
        if (n < 0 || !((size_t)n < sizeof allowed - used))
            break;
        used += (size_t)n;
    }

    const char *item = api_route_policy_item(path);
    bool narrowed = srv->role_may_read_fn != NULL && item != NULL &&
                    (role == API_ROLE_ADMIN || ((unsigned)table_roles & role) != 0);
    char message[API_MESSAGE_MAX];
    if (narrowed)
        snprintf(message, sizeof message,
                 "the role '%s' may not use this route: the policy's roles.%s does not list "
                 "'%s'; roles that may use it: %s",
                 role_name, role_name, item, used > 0 ? allowed : "none");
    else
        snprintf(message, sizeof message,
                 "the role '%s' may not use this route; roles that may use it: %s", role_name,
                 used > 0 ? allowed : "none");
    api_reply_error(out, 403, "forbidden", message);
}

/* ---- address literals in host filters --------------------------------- */

/*
 * Parse TEXT as an address or network into FAMILY, its first address
 * ADDR (16 bytes) and PREFIX (32 or 128 for an address), as the host
 * filter reads it. Returns false for anything else, pseudonym tokens
 * included; invalid values get their 400 from the route handler.
 */
static bool parse_address(const char *text, int *family, uint8_t addr[16], unsigned *prefix)
{
    api_host_filter h;
    if (api_host_filter_parse(text, &h) != FV_OK ||
        (h.kind != API_HOST_NET4 && h.kind != API_HOST_NET6))
        return false;
    *family = h.kind == API_HOST_NET4 ? 4 : 6;
    memcpy(addr, h.bytes, 16);
    *prefix = h.prefix_len;
    return true;
}

/* The host of a request: the "host" query value, or the {token} of
 * /api/v1/hosts/{token}/timeline written into SEGMENT. NULL if none. */
static const char *request_host(struct MHD_Connection *conn, const char *url, char *segment,
                                size_t segment_len)
{
    static const char prefix[] = "/api/v1/hosts/";
    static const char suffix[] = "/timeline";
    size_t url_len = strlen(url);
    size_t p = strlen(prefix), s = strlen(suffix);

    if (strncmp(url, prefix, p) == 0 && url_len > p + s &&
        strcmp(url + url_len - s, suffix) == 0) {
        size_t n = url_len - p - s;
        if (!(n < segment_len))
            return NULL;
        memcpy(segment, url + p, n);
        segment[n] = '\0';
        return segment;
    }
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "host");
}

bool api_host_literal_check(const api_server *srv, struct MHD_Connection *conn, const char *url,
                            char *note, size_t note_len, api_reply *out)
{
    char segment[256];
    int family = 0;
    uint8_t addr[16];
    unsigned prefix = 0;

    note[0] = '\0';
    const char *host = request_host(conn, url, segment, sizeof segment);
    if (host == NULL || !parse_address(host, &family, addr, &prefix))
        return true;
    bool network = prefix < (family == 4 ? 32u : 128u);
    const char *what = network ? "network" : "address";

    if (srv->address_zone_fn == NULL) {
        snprintf(note, note_len,
                 "%s matches addresses as the records show them: external addresses, "
                 "those of zones in keep or truncate mode, and the addresses that "
                 "prefix-preserving pseudonymization wrote. Addresses of a zone in pseudonymize "
                 "mode are stored as tokens; search by the token the records show",
                 network ? "A network" : "An address");
        return true;
    }

    char zone[64] = "";
    int storage = srv->address_zone_fn(srv->policy_ctx, family, addr, prefix, zone, sizeof zone);
    if (storage == API_ADDR_AS_TEXT)
        return true;
    char safe_zone[64];
    api_text_sanitize(zone, safe_zone, sizeof safe_zone);
    if (storage == API_ADDR_PREFIX_OUTPUT) {
        snprintf(note, note_len,
                 "The %s lies in zone %s, whose addresses are stored as pseudonyms, so it "
                 "matches only the addresses that prefix-preserving pseudonymization wrote, "
                 "never the real ones",
                 what, safe_zone);
        return true;
    }
    char message[API_MESSAGE_MAX];
    snprintf(message, sizeof message,
             "the %s lies in zone %s, whose addresses are stored as pseudonyms, so it "
             "can never match; search by the host's ip4- or ip6- token as the records show it",
             what, safe_zone);
    api_reply_error(out, 400, "address_pseudonymized", message);
    return false;
}

/* ---- zone filters ------------------------------------------------------- */

/* Maximum length of the list of zone labels: 64 zones of up to 31
 * characters, the two labels outside the policy's zones, and the
 * separators. */
#define API_ZONE_LABELS_MAX 2400

bool api_zone_check(const api_server *srv, const char *zone, char *note, size_t note_len,
                    api_reply *out)
{
    note[0] = '\0';
    if (zone == NULL || zone[0] == '\0')
        return true;
    if (srv->zone_known_fn == NULL) {
        snprintf(note, note_len,
                 "The zone name is not checked because serve runs without --policy, so a name "
                 "that no record carries returns no records; check its spelling against the "
                 "zone labels the records show");
        return true;
    }

    char labels[API_ZONE_LABELS_MAX] = "";
    if (srv->zone_known_fn(srv->policy_ctx, zone, labels, sizeof labels))
        return true;
    char safe_zone[FV_ZONE_NAME_MAX];
    char message[API_ZONE_LABELS_MAX + 128];
    api_text_sanitize(zone, safe_zone, sizeof safe_zone);
    snprintf(message, sizeof message,
             "invalid value for 'zone': '%s' is not a zone label of the policy; allowed: %s",
             safe_zone, labels);
    api_reply_error(out, 400, "unknown_zone", message);
    return false;
}

void api_host_note_add(api_reply *out, const char *note)
{
    if (note[0] == '\0' || out->status != 200 || !json_is_object(out->body))
        return;
    const char *before = json_string_value(json_object_get(out->body, "note"));
    if (before == NULL) {
        json_object_set_new(out->body, "note", json_string(note));
        return;
    }
    size_t len = strlen(before) + 2 + strlen(note) + 1;
    char *both = malloc(len);
    if (both == NULL)
        return;
    snprintf(both, len, "%s. %s", before, note);
    json_object_set_new(out->body, "note", json_string(both));
    free(both);
}
