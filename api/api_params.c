/*
 * api_params.c: parsers for the query parameters of the record routes.
 *
 * Each parser takes one NUL-terminated value and either accepts all of it
 * or rejects it with FV_ERR_INVALID; nothing is skipped or guessed, so a
 * malformed value always turns into a 400 reply naming the parameter.
 * The values were percent-decoded by our libmicrohttpd unescape callback,
 * which turns %00 into DEL (0x7f), a byte no parser here accepts.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api_internal.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}


int api_time_parse(const char *text, uint64_t *out_us)
{
    return fv_time_parse(text, out_us);
}

int api_limit_parse(const char *text, uint32_t *out)
{
    uint32_t v = 0;
    size_t len;

    if (text == NULL || out == NULL)
        return FV_ERR_INVALID;
    len = strlen(text);
    if (len == 0 || len > 4)
        return FV_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i]))
            return FV_ERR_INVALID;
        v = v * 10u + (uint32_t)(text[i] - '0');
    }
    if (v < 1 || v > API_LIMIT_MAX)
        return FV_ERR_INVALID;
    *out = v;
    return FV_OK;
}

void api_cursor_format(bool newest_first, uint64_t last_id, char out[API_CURSOR_TEXT_MAX])
{
    static const char hex[] = "0123456789abcdef";

    out[0] = newest_first ? 'd' : 'a';
    for (unsigned i = 0; i < 16; i++)
        out[1 + i] = hex[(last_id >> (60u - 4u * i)) & 0xfu];
    out[17] = '\0';
}

int api_cursor_parse(const char *text, bool newest_first, uint64_t *out_id)
{
    uint64_t id = 0;

    if (text == NULL || out_id == NULL || strlen(text) != API_CURSOR_TEXT_MAX - 1)
        return FV_ERR_INVALID;
    if (text[0] != (newest_first ? 'd' : 'a'))
        return FV_ERR_INVALID;
    for (unsigned i = 1; i < API_CURSOR_TEXT_MAX - 1; i++) {
        char ch = text[i];
        unsigned nibble;

        if (is_digit(ch))
            nibble = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            nibble = (unsigned)(ch - 'a') + 10u;
        else
            return FV_ERR_INVALID;
        id = (id << 4) | nibble;
    }

    /* Id 0 never names a stored record, so no page can end there. */
    if (id == 0)
        return FV_ERR_INVALID;
    *out_id = id;
    return FV_OK;
}

void api_text_sanitize(const char *text, char *out, size_t out_len)
{
    size_t n = 0;

    if (out_len == 0)
        return;
    for (; text != NULL && text[n] != '\0' && n + 1 < out_len; n++) {
        unsigned char ch = (unsigned char)text[n];
        out[n] = (char)((ch >= 0x20 && ch < 0x7f) ? ch : '?');
    }
    out[n] = '\0';
}

/* ---- filters ----------------------------------------------------------- */

static char lower(char c)
{
    return (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
}

/* Decode the 16 base32 characters of a token (already lowercase) into
 * the 10 pseudonym bytes they encode: 80 bits, so no padding is left. */
static bool base32_80_decode(const char in[16], uint8_t out[10])
{
    for (unsigned block = 0; block < 2; block++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; i++) {
            char c = in[block * 8 + i];
            unsigned digit;
            if (c >= 'a' && c <= 'z')
                digit = (unsigned)(c - 'a');
            else if (c >= '2' && c <= '7')
                digit = (unsigned)(c - '2') + 26u;
            else
                return false;
            v = (v << 5) | digit;
        }
        for (unsigned i = 0; i < 5; i++)
            out[block * 5 + i] = (uint8_t)(v >> (32u - 8u * i));
    }
    return true;
}

/* True if the first PREFIX_LEN bits of A and B are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix_len)
{
    unsigned whole = prefix_len / 8u, rest = prefix_len % 8u;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8u - rest));
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

int api_host_filter_parse(const char *text, api_host_filter *out)
{
    size_t len = text != NULL ? strlen(text) : 0;
    memset(out, 0, sizeof *out);
    if (len == 0 || !(len < FV_ENDPOINT_TEXT_MAX))
        return FV_ERR_INVALID;

    /* Pseudonym tokens: "ip4-" or "ip6-" and 16 base32 characters. */
    if (len == 20 && (strncasecmp(text, "ip4-", 4) == 0 || strncasecmp(text, "ip6-", 4) == 0)) {
        for (size_t i = 0; i < len; i++)
            out->text[i] = lower(text[i]);
        out->text[len] = '\0';
        if (!base32_80_decode(out->text + 4, out->bytes)) {
            memset(out, 0, sizeof *out);
            return FV_ERR_INVALID;
        }
        out->kind = out->text[2] == '4' ? API_HOST_TOKEN4 : API_HOST_TOKEN6;
        return FV_OK;
    }

    /* Addresses, optionally with a prefix length. */
    char addr[FV_ENDPOINT_TEXT_MAX];
    memcpy(addr, text, len + 1);
    char *slash = strchr(addr, '/');
    unsigned prefix = 0;
    bool has_prefix = slash != NULL;
    if (has_prefix) {
        *slash = '\0';
        const char *p = slash + 1;
        size_t plen = strlen(p);
        /* One to three digits without a leading zero ("/0" alone is fine). */
        if (plen == 0 || plen > 3 || (plen > 1 && p[0] == '0'))
            return FV_ERR_INVALID;
        for (size_t i = 0; i < plen; i++) {
            if (!is_digit(p[i]))
                return FV_ERR_INVALID;
            prefix = prefix * 10u + (unsigned)(p[i] - '0');
        }
    }
    uint8_t bin[16] = {0};
    char norm[INET6_ADDRSTRLEN];
    int af;
    if (inet_pton(AF_INET, addr, bin) == 1)
        af = AF_INET;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
        af = AF_INET6;
    else
        return FV_ERR_INVALID;
    unsigned bits = af == AF_INET ? 32u : 128u;
    if (!has_prefix)
        prefix = bits;
    if (prefix > bits)
        return FV_ERR_INVALID;

    /* Records hold IPv4 addresses as IPv4, so an IPv4-mapped address or
     * network (inside ::ffff:0:0/96) is searched as the IPv4 one. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (af == AF_INET6 && prefix >= 96u && memcmp(bin, mapped, sizeof mapped) == 0) {
        memmove(bin, bin + 12, 4);
        memset(bin + 4, 0, 12);
        af = AF_INET;
        bits = 32u;
        prefix -= 96u;
    }

    /* A network is compared on its first PREFIX bits, so bits set after
     * them would be ignored without a word: reject them instead. */
    for (unsigned bit = prefix; bit < bits; bit++) {
        if (bin[bit / 8u] & (0x80u >> (bit % 8u)))
            return FV_ERR_INVALID;
    }
    if (inet_ntop(af, bin, norm, sizeof norm) == NULL)
        return FV_ERR_INVALID;
    if (has_prefix)
        snprintf(out->text, sizeof out->text, "%s/%u", norm, prefix);
    else
        snprintf(out->text, sizeof out->text, "%s", norm);
    out->kind = af == AF_INET ? API_HOST_NET4 : API_HOST_NET6;
    out->prefix_len = (uint8_t)prefix;
    memcpy(out->bytes, bin, sizeof out->bytes);
    return FV_OK;
}

int api_host_parse(const char *text, char out[FV_ENDPOINT_TEXT_MAX])
{
    api_host_filter h;
    int rc = api_host_filter_parse(text, &h);
    if (rc == FV_OK)
        memcpy(out, h.text, FV_ENDPOINT_TEXT_MAX);
    return rc;
}

bool api_host_filter_match(const api_host_filter *h, const fv_endpoint *ep)
{
    switch (h->kind) {
    case API_HOST_TOKEN4:
        return ep->kind == FV_EP_PSEUDO_IPV4 && memcmp(ep->addr, h->bytes, 10) == 0;
    case API_HOST_TOKEN6:
        return ep->kind == FV_EP_PSEUDO_IPV6 && memcmp(ep->addr, h->bytes, 10) == 0;
    case API_HOST_NET4:
        if (ep->kind == FV_EP_IPV4 || ep->kind == FV_EP_PREFIX_IPV4)
            return prefix_equal(ep->addr, h->bytes, h->prefix_len);
        /* A stored prefix matches only when it lies inside the network. */
        if (ep->kind == FV_EP_TRUNC_IPV4)
            return ep->prefix_len >= h->prefix_len &&
                   prefix_equal(ep->addr, h->bytes, h->prefix_len);
        return false;
    case API_HOST_NET6:
        if (ep->kind == FV_EP_IPV6 || ep->kind == FV_EP_PREFIX_IPV6)
            return prefix_equal(ep->addr, h->bytes, h->prefix_len);
        if (ep->kind == FV_EP_TRUNC_IPV6)
            return ep->prefix_len >= h->prefix_len &&
                   prefix_equal(ep->addr, h->bytes, h->prefix_len);
        return false;
    default:
        return false;
    }
}

int api_proto_parse(const char *text, int *out)
{
    static const struct {
        const char *name;
        int number;
    } names[] = {{"tcp", 6}, {"udp", 17}, {"icmp", 1}, {"icmp6", 58}};

    if (text == NULL || out == NULL)
        return FV_ERR_INVALID;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(text, names[i].name) == 0) {
            *out = names[i].number;
            return FV_OK;
        }
    }
    size_t len = strlen(text);
    if (len == 0 || len > 3)
        return FV_ERR_INVALID;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i]))
            return FV_ERR_INVALID;
        v = v * 10 + (text[i] - '0');
    }
    if (v > 255)
        return FV_ERR_INVALID;
    *out = v;
    return FV_OK;
}

int api_port_parse(const char *text, int *out)
{
    if (text == NULL || out == NULL)
        return FV_ERR_INVALID;
    size_t len = strlen(text);
    if (len == 0 || len > 5)
        return FV_ERR_INVALID;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i]))
            return FV_ERR_INVALID;
        v = v * 10 + (text[i] - '0');
    }
    if (v > 65535)
        return FV_ERR_INVALID;
    *out = (int)v;
    return FV_OK;
}

int api_domain_parse(const char *text, char out[FV_NAME_MAX])
{
    if (text == NULL || out == NULL)
        return FV_ERR_INVALID;
    if (text[0] == '.')
        text++;
    size_t len = strlen(text);
    if (len == 0 || !(len < FV_NAME_MAX))
        return FV_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        char c = lower(text[i]);
        bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_' || c == '.';
        /* No empty label: ".." or a trailing dot. */
        if (!ok || (c == '.' && (i + 1 == len || text[i + 1] == '.')))
            return FV_ERR_INVALID;
        out[i] = c;
    }
    out[len] = '\0';
    return FV_OK;
}

bool api_domain_match(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    /* A trailing root dot in the stored name does not count. */
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (s == 0 || s > n)
        return false;
    if (strncasecmp(name + (n - s), suffix, s) != 0)
        return false;
    return n == s || name[n - s - 1] == '.';
}

static bool zone_is(const fv_endpoint *ep, const char *zone)
{
    return strncmp(ep->zone, zone, FV_ZONE_NAME_MAX) == 0;
}

/* The endpoints, ports, protocol and names of one record, for filtering. */
typedef struct api_rec_view {
    const fv_endpoint *a, *b;   /* either may be NULL */
    const char *zone;           /* aggregates: the internal side's zone */
    int port_a, port_b;         /* -1: none */
    int proto;
    const char *names[3];       /* domain names to match, NULL-terminated */
} api_rec_view;

static void api_rec_view_of(const fv_record *rec, api_rec_view *v)
{
    memset(v, 0, sizeof *v);
    v->port_a = v->port_b = -1;
    v->proto = -1;
    switch (rec->cls) {
    case FV_CLASS_FLOW:
        v->a = &rec->u.flow.src;
        v->b = &rec->u.flow.dst;
        v->port_a = rec->u.flow.sport;
        v->port_b = rec->u.flow.dport;
        v->proto = rec->u.flow.proto;
        break;
    case FV_CLASS_DNS:
        v->a = &rec->u.dns.client;
        v->b = &rec->u.dns.server;
        v->port_a = rec->u.dns.client_port;
        v->port_b = rec->u.dns.server_port;
        v->proto = rec->u.dns.transport;
        v->names[0] = rec->u.dns.qname;
        break;
    case FV_CLASS_TLS:
        v->a = &rec->u.tls.client;
        v->b = &rec->u.tls.server;
        v->port_a = rec->u.tls.client_port;
        v->port_b = rec->u.tls.server_port;
        v->proto = rec->u.tls.transport == FV_TLS_TCP ? 6 : 17;
        v->names[0] = rec->u.tls.sni;
        break;
    case FV_CLASS_HTTP:
        v->a = &rec->u.http.client;
        v->b = &rec->u.http.server;
        v->port_a = rec->u.http.client_port;
        v->port_b = rec->u.http.server_port;
        v->proto = 6;
        v->names[0] = rec->u.http.host;
        break;
    case FV_CLASS_DHCP:
        v->a = &rec->u.dhcp.client;
        v->b = &rec->u.dhcp.server;
        v->port_a = rec->u.dhcp.client_port;
        v->port_b = rec->u.dhcp.server_port;
        v->proto = 17;
        break;
    case FV_CLASS_SSH:
        v->a = &rec->u.ssh.client;
        v->b = &rec->u.ssh.server;
        v->port_a = rec->u.ssh.client_port;
        v->port_b = rec->u.ssh.server_port;
        v->proto = 6;
        break;
    case FV_CLASS_ALERT:
        v->a = &rec->u.alert.host;
        v->b = &rec->u.alert.peer;
        v->port_b = rec->u.alert.peer_port;
        v->proto = rec->u.alert.proto;
        break;
    case FV_CLASS_AGGREGATE:
        v->b = &rec->u.aggregate.peer;
        v->zone = rec->u.aggregate.zone;
        v->port_b = rec->u.aggregate.dport;
        v->proto = rec->u.aggregate.proto;
        break;
    case FV_CLASS_COUNT:
        break;
    }
}

bool api_filter_match(const api_filter *f, const fv_record *rec)
{
    api_rec_view v;
    api_rec_view_of(rec, &v);

    if (f->zone[0] != '\0') {
        bool z = (v.a != NULL && zone_is(v.a, f->zone)) || (v.b != NULL && zone_is(v.b, f->zone)) ||
                 (v.zone != NULL && strncmp(v.zone, f->zone, FV_ZONE_NAME_MAX) == 0);
        if (!z)
            return false;
    }
    if (f->host.kind != API_HOST_UNSET &&
        !(v.a != NULL && api_host_filter_match(&f->host, v.a)) &&
        !(v.b != NULL && api_host_filter_match(&f->host, v.b)))
        return false;
    if (f->proto >= 0 && v.proto != f->proto)
        return false;
    if (f->port >= 0 && v.port_a != f->port && v.port_b != f->port)
        return false;
    if (f->domain[0] != '\0') {
        bool d = false;
        for (size_t i = 0; i < 3 && v.names[i] != NULL && !d; i++)
            d = api_domain_match(v.names[i], f->domain);
        if (!d)
            return false;
    }
    /* A capped count is a lower bound above FV_AGGREGATE_HOSTS_MAX. */
    if (rec->cls == FV_CLASS_AGGREGATE && f->min_hosts > 0 && !rec->u.aggregate.hosts_capped &&
        rec->u.aggregate.hosts < f->min_hosts)
        return false;
    if (rec->cls == FV_CLASS_ALERT) {
        if (f->detector != 0 && rec->u.alert.detector != f->detector)
            return false;
        if (f->severity != 0 && rec->u.alert.severity != f->severity)
            return false;
    }
    return true;
}

/* ---- query arguments ---------------------------------------------------- */

/* Write "a, b, c" of the NULL-terminated NAMES into OUT. */
static void api_names_text(const char *const *names, char *out, size_t out_len)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        int w = snprintf(out + n, out_len - n, "%s%s", i > 0 ? ", " : "", names[i]);
        if (w < 0 || !((size_t)w < out_len - n))
            return;
        n += (size_t)w;
    }
}

static void api_args_fail(api_args *a, const char *name, const char *problem, const char *hint)
{
    char safe[48];
    api_text_sanitize(name, safe, sizeof safe);
    snprintf(a->message, sizeof a->message, "query parameter '%s' %s; %s", safe, problem, hint);
    a->failed = true;
}

static enum MHD_Result api_args_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    api_args *a = cls;
    bool known = false;

    (void)kind;
    for (size_t i = 0; a->allowed != NULL && a->allowed[i] != NULL && !known; i++)
        known = strcmp(key, a->allowed[i]) == 0;
    if (!known) {
        char list[160];
        api_names_text(a->allowed, list, sizeof list);
        char hint[200];
        if (list[0] == '\0')
            snprintf(hint, sizeof hint, "this route takes no parameters");
        else
            snprintf(hint, sizeof hint, "allowed: %s", list);
        api_args_fail(a, key, "is unknown", hint);
        return MHD_NO;
    }
    if (value == NULL) {
        api_args_fail(a, key, "has no value", "write name=value");
        return MHD_NO;
    }
    if (api_arg(a, key) != NULL) {
        api_args_fail(a, key, "is given more than once", "give it once");
        return MHD_NO;
    }
    if (!(a->count < API_ARGS_MAX)) {
        api_args_fail(a, key, "is one too many", "send fewer parameters");
        return MHD_NO;
    }
    a->names[a->count] = key;
    a->values[a->count] = value;
    a->count++;
    return MHD_YES;
}

bool api_args_read(struct MHD_Connection *conn, api_args *a, api_reply *out)
{
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, api_args_collect, a);
    if (a->failed) {
        api_reply_error(out, 400, "invalid_parameter", a->message);
        return false;
    }
    return true;
}

const char *api_arg(const api_args *a, const char *name)
{
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->names[i], name) == 0)
            return a->values[i];
    }
    return NULL;
}

void api_reply_bad_value(api_reply *out, const char *name, const char *value,
                         const char *allowed)
{
    char message[API_MESSAGE_MAX];
    char shown[65];
    char safe[sizeof shown];
    snprintf(shown, sizeof shown, "%s", value != NULL ? value : "");
    api_text_sanitize(shown, safe, sizeof safe);
    snprintf(message, sizeof message, "invalid value '%s' for '%s'; allowed: %s", safe, name,
             allowed);
    api_reply_error(out, 400, "invalid_parameter", message);
}

bool api_args_window(const api_args *a, uint64_t *from_us, uint64_t *to_us, bool *empty,
                     api_reply *out)
{
    const char *from = api_arg(a, "from"), *to = api_arg(a, "to");
    *from_us = 0;
    *to_us = 0;
    *empty = false;
    if (from != NULL && api_time_parse(from, from_us) != FV_OK) {
        api_reply_bad_value(out, "from", from, API_TIME_ALLOWED);
        return false;
    }
    if (to != NULL && api_time_parse(to, to_us) != FV_OK) {
        api_reply_bad_value(out, "to", to, API_TIME_ALLOWED);
        return false;
    }
    if (from != NULL && to != NULL && *from_us > *to_us) {
        api_reply_error(out, 400, "invalid_parameter",
                        "'from' is later than 'to'; give from <= to");
        return false;
    }
    /* The store reads to_us 0 as "unbounded", so an explicit to=0 (the
     * epoch itself) has to be answered here: no traffic is that old. */
    if (to != NULL && *to_us == 0)
        *empty = true;
    return true;
}
