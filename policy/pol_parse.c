/*
 * pol_parse.c: YAML policy text to a validated pol_policy.
 *
 * libyaml loads the whole document into a node tree (aliases become
 * shared node references, never copies, so no input expands). The tree is
 * then walked by small functions, one per section, each checking the
 * types, ranges and cross-references of its keys. Every error rejects the
 * whole policy: a compliance policy that is partly applied would collect
 * data the author meant to exclude. The first error found is reported as
 * "NAME:LINE:COL: what is wrong (value); how to fix", with line and column
 * 1-based from the libyaml mark of the offending node.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <yaml.h>

#include "pol_internal.h"

/* Largest policy file accepted; real policies are a few kilobytes. */
#define POL_MAX_FILE_BYTES (1024u * 1024u)

/* Only this policy format version exists. */
#define POL_VERSION 1

/* Maximum length of a value quoted back in an error message. */
#define POL_QUOTE_MAX 64

/* Maximum length of a location path such as "detect.beacon.min_connections". */
#define POL_WHERE_MAX 96

/* Duration bounds in seconds, documented in docs/POLICY.md. */
#define POL_MINUTE_S 60u
#define POL_DAY_S 86400u
#define POL_YEAR_S (365u * POL_DAY_S)
#define POL_ROTATION_MIN_S POL_MINUTE_S
#define POL_ROTATION_MAX_S POL_YEAR_S
#define POL_SWEEP_MIN_S POL_MINUTE_S
#define POL_SWEEP_MAX_S POL_DAY_S
#define POL_RETENTION_MAX_S (10u * POL_YEAR_S)
/* Audit logs may have to outlive the data they describe. */
#define POL_AUDIT_RETENTION_MAX_S (30ull * POL_YEAR_S)
#define POL_BEACON_INTERVAL_MAX_S POL_DAY_S

typedef struct pol_parser {
    const char *name;           /* file name for messages */
    const char *text;           /* the policy text, for hints in messages */
    size_t text_len;
    yaml_document_t *doc;
    pol_policy *pol;
    char *err;
    size_t err_len;

    /* Retention values are checked against sweep_interval after the walk,
     * because the two keys may come in either order. */
    bool retention_set[POL_CLASS_SLOTS];
    yaml_mark_t retention_mark[POL_CLASS_SLOTS];
    char retention_text[POL_CLASS_SLOTS][POL_QUOTE_MAX];
    bool audit_retention_set;
    yaml_mark_t audit_retention_mark;
    char audit_retention_text[POL_QUOTE_MAX];
    bool zones_seen;

    pol_group *group;               /* group being parsed */
    void *detect_item;              /* detect list entry being parsed (pol_parse_detect.inc) */
    struct pol_parse_marks *marks;  /* positions for checks after the walk */
} pol_parser;

/* Positions of group entries, kept for the checks that run after the
 * whole document is read (zones and windows may follow the groups). */
typedef struct pol_parse_marks {
    yaml_mark_t net[POL_MAX_GROUP_NETS];
    char net_text[POL_MAX_GROUP_NETS][POL_QUOTE_MAX];
    yaml_mark_t window[POL_MAX_GROUPS];
    char window_name[POL_MAX_GROUPS][POL_NAME_MAX];
    yaml_mark_t group[POL_MAX_GROUPS];
    yaml_mark_t seg_rule[POL_SEG_RULES_MAX];
} pol_parse_marks;

/* A mapping key and the function that parses its value. ARG is passed
 * through (for example the record class of a retention key). */
typedef int (*pol_value_fn)(pol_parser *p, yaml_node_t *value, const char *where, int arg);
typedef struct pol_key {
    const char *key;
    pol_value_fn parse;
    int arg;
} pol_key;

/* ---------------------------------------------------------------------- */
/* Errors                                                                  */
/* ---------------------------------------------------------------------- */


/* Write the location WHERE + SUFFIX (+ "[INDEX]" if WITH_INDEX) into OUT
 * for error messages. A location too long for OUT is cut, which only
 * shortens a message. */
static void pol_join_where(char *out, size_t out_len, const char *where, const char *suffix,
                           size_t index, bool with_index)
{
    int n;
    if (with_index)
        n = snprintf(out, out_len, "%s%s[%zu]", where, suffix, index);
    else
        n = snprintf(out, out_len, "%s%s", where, suffix);
    if (n < 0 && out_len > 0)
        out[0] = '\0';
}

static int FV_PRINTF(3, 4) pol_fail(pol_parser *p, yaml_mark_t mark, const char *fmt, ...)
{
    if (p->err == NULL || p->err_len == 0)
        return FV_ERR_PARSE;

    int n = snprintf(p->err, p->err_len, "%s:%zu:%zu: ", p->name, mark.line + 1, mark.column + 1);
    if (n >= 0 && (size_t)n < p->err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return FV_ERR_PARSE;
}

/* Copy scalar text for an error message: printable ASCII only, cut at
 * POL_QUOTE_MAX - 4 characters with "..." appended. */
static void pol_quote(const yaml_node_t *node, char out[POL_QUOTE_MAX])
{
    if (node->type != YAML_SCALAR_NODE) {
        snprintf(out, POL_QUOTE_MAX, "%s", node->type == YAML_MAPPING_NODE ? "a mapping" : "a list");
        return;
    }

    const unsigned char *v = node->data.scalar.value;
    size_t len = node->data.scalar.length;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < POL_QUOTE_MAX; i++) {
        if (o == POL_QUOTE_MAX - 4 && i + 1 < len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = (char)((v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?');
    }
    out[o] = '\0';
}

static const char *pol_node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a single value";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

/* ---------------------------------------------------------------------- */
/* Scalars                                                                 */
/* ---------------------------------------------------------------------- */

/* Return the NUL-terminated text of a scalar node, or fail with a type
 * error naming WHAT was expected. Scalars holding a NUL byte are rejected
 * because the rest of the parser works on C strings. */
static int pol_scalar(pol_parser *p, yaml_node_t *node, const char *where, const char *what,
                      const char **out)
{
    *out = "";  /* defined on failure too, for callers that test rc late */
    if (node->type != YAML_SCALAR_NODE)
        return pol_fail(p, node->start_mark, "%s must be %s, not %s; write it as %s", where, what,
                        pol_node_kind(node), what);

    const char *text = (const char *)node->data.scalar.value;
    if (strlen(text) != node->data.scalar.length)
        return pol_fail(p, node->start_mark, "%s contains a NUL byte; remove it", where);
    *out = text;
    return FV_OK;
}

/* True if the scalar was written without quotes, which is how YAML
 * distinguishes the number 1 from the string "1". */
static bool pol_is_plain(const yaml_node_t *node)
{
    return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int pol_get_uint(pol_parser *p, yaml_node_t *node, const char *where, uint64_t min,
                        uint64_t max, uint64_t *out)
{
    const char *text;
    int rc = pol_scalar(p, node, where, "a whole number", &text);
    if (rc != FV_OK)
        return rc;

    char q[POL_QUOTE_MAX];
    pol_quote(node, q);

    uint64_t v = 0;
    /* Decimal digits only, and no leading zero ("01" would read as octal
     * to some readers). */
    bool ok = pol_is_plain(node) && text[0] != '\0' && strlen(text) <= 20 &&
              !(text[0] == '0' && text[1] != '\0');
    for (const char *c = text; ok && *c != '\0'; c++) {
        if (*c < '0' || *c > '9' || v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
            ok = false;
        else
            v = v * 10 + (uint64_t)(*c - '0');
    }
    if (!ok)
        return pol_fail(p, node->start_mark,
                        "%s must be a whole number (%s); write digits only, without quotes",
                        where, q);
    if (v < min || v > max)
        return pol_fail(p, node->start_mark, "%s is out of range (%s); use a value from %llu to %llu",
                        where, q, (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return FV_OK;
}

static int pol_get_double(pol_parser *p, yaml_node_t *node, const char *where, double min,
                          double max, double *out)
{
    const char *text;
    int rc = pol_scalar(p, node, where, "a number", &text);
    if (rc != FV_OK)
        return rc;

    char q[POL_QUOTE_MAX];
    pol_quote(node, q);

    char *end = NULL;
    errno = 0;
    double v = text[0] == '\0' ? 0.0 : strtod(text, &end);
    if (!pol_is_plain(node) || text[0] == '\0' || end == NULL || *end != '\0' || errno != 0 ||
        !isfinite(v) || strspn(text, "0123456789.-+eE") != strlen(text))
        return pol_fail(p, node->start_mark,
                        "%s must be a decimal number (%s); write it like 0.2 or 20, without quotes",
                        where, q);
    if (v < min || v > max)
        return pol_fail(p, node->start_mark, "%s is out of range (%s); use a value from %g to %g",
                        where, q, min, max);
    *out = v;
    return FV_OK;
}

static int pol_get_bool(pol_parser *p, yaml_node_t *node, const char *where, bool *out)
{
    const char *text;
    int rc = pol_scalar(p, node, where, "true or false", &text);
    if (rc != FV_OK)
        return rc;

    if (pol_is_plain(node) && strcmp(text, "true") == 0) {
        *out = true;
        return FV_OK;
    }
    if (pol_is_plain(node) && strcmp(text, "false") == 0) {
        *out = false;
        return FV_OK;
    }
    char q[POL_QUOTE_MAX];
    pol_quote(node, q);
    return pol_fail(p, node->start_mark, "%s must be true or false (%s); write true or false",
                    where, q);
}

static int pol_get_duration(pol_parser *p, yaml_node_t *node, const char *where, uint64_t min_s,
                            uint64_t max_s, uint64_t *out_s)
{
    const char *text;
    int rc = pol_scalar(p, node, where, "a duration such as 24h", &text);
    if (rc != FV_OK)
        return rc;

    char q[POL_QUOTE_MAX];
    pol_quote(node, q);

    uint64_t v;
    if (fv_duration_parse(text, &v) != FV_OK)
        return pol_fail(p, node->start_mark,
                        "%s is not a valid duration (%s); write a whole number followed by one"
                        " unit: s, m, h, d or w (for example 90s, 15m, 24h, 30d, 2w)",
                        where, q);

    char lo[POL_DURATION_TEXT_MAX], hi[POL_DURATION_TEXT_MAX];
    pol_duration_format(min_s, lo);
    pol_duration_format(max_s, hi);
    if (v == 0)
        return pol_fail(p, node->start_mark, "%s must not be zero (%s); use a duration from %s to %s",
                        where, q, lo, hi);
    if (v < min_s || v > max_s)
        return pol_fail(p, node->start_mark, "%s is out of range (%s); use a duration from %s to %s",
                        where, q, lo, hi);
    *out_s = v;
    return FV_OK;
}

/* Parse a byte size: digits, optionally followed by B, KB, MB, GB
 * (powers of 1000) or KiB, MiB, GiB (powers of 1024). */
static int pol_size_parse(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000},
        {"MB", 1000 * 1000},
        {"GB", 1000 * 1000 * 1000},
        {"KiB", 1024},
        {"MiB", 1024 * 1024},
        {"GiB", 1024 * 1024 * 1024},
    };

    uint64_t n = 0;
    size_t digits = 0;
    const char *c = text;
    for (; *c >= '0' && *c <= '9'; c++, digits++) {
        if (n > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
            return FV_ERR_INVALID;
        n = n * 10 + (uint64_t)(*c - '0');
    }
    if (digits == 0)
        return FV_ERR_INVALID;

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(c, units[i].suffix) != 0)
            continue;
        if (n > UINT64_MAX / units[i].mult)
            return FV_ERR_INVALID;
        *out = n * units[i].mult;
        return FV_OK;
    }
    return FV_ERR_INVALID;
}

static int pol_get_size(pol_parser *p, yaml_node_t *node, const char *where, uint64_t min,
                        uint64_t max, uint64_t *out)
{
    const char *text;
    int rc = pol_scalar(p, node, where, "a size such as 50MB", &text);
    if (rc != FV_OK)
        return rc;

    char q[POL_QUOTE_MAX];
    pol_quote(node, q);

    uint64_t v;
    if (pol_size_parse(text, &v) != FV_OK)
        return pol_fail(p, node->start_mark,
                        "%s is not a valid size (%s); write a whole number with an optional unit:"
                        " B, KB, MB, GB (1000-based) or KiB, MiB, GiB (1024-based), such as 50MB",
                        where, q);
    if (v < min || v > max)
        return pol_fail(p, node->start_mark,
                        "%s is out of range (%s); use a size from %llu to %llu bytes", where, q,
                        (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Networks                                                                */
/* ---------------------------------------------------------------------- */

/* Set NET from network-order BYTES and PREFIX_LEN; the mask is applied. */
static void pol_net_set(pol_net *net, int family, const uint8_t bytes[16], unsigned prefix_len)
{
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = (hi << 8) | bytes[i];
        lo = (lo << 8) | bytes[8 + i];
    }
    if (family == 4)
        lo = 0;

    /* The mask covers PREFIX_LEN leading bits of the 128-bit word pair.
     * Shifting a 64-bit value by 64 is undefined, hence the cases. */
    uint64_t mhi = UINT64_MAX;
    uint64_t mlo = 0;
    if (prefix_len == 0)
        mhi = 0;
    else if (prefix_len < 64)
        mhi = UINT64_MAX << (64 - prefix_len);
    else if (prefix_len == 128)
        mlo = UINT64_MAX;
    else if (prefix_len > 64)
        mlo = UINT64_MAX << (128 - prefix_len);

    net->family = (uint8_t)family;
    net->prefix_len = (uint8_t)prefix_len;
    net->mask_hi = mhi;
    net->mask_lo = mlo;
    net->net_hi = hi & mhi;
    net->net_lo = lo & mlo;
    net->zone = 0;
}

/*
 * Parse "ADDRESS/PREFIX" (or a bare address, meaning one host: /32 or
 * /128) into NET. Rejects a bad address, a prefix longer than the family
 * allows, and host bits set below the prefix (naming the network form to
 * write instead).
 */
static int pol_get_net(pol_parser *p, yaml_node_t *node, const char *where, pol_net *net)
{
    /* Zeroed padding too: pol_diff_summary compares networks with memcmp. */
    memset(net, 0, sizeof *net);
    const char *text;
    int rc = pol_scalar(p, node, where, "a network such as 10.1.0.0/16", &text);
    if (rc != FV_OK)
        return rc;

    char q[POL_QUOTE_MAX];
    pol_quote(node, q);

    /* Split at the slash; the address part must fit an IPv6 text form. */
    char addr_text[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t addr_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (addr_len == 0 || addr_len >= sizeof addr_text)
        return pol_fail(p, node->start_mark,
                        "%s is not a valid network (%s); write ADDRESS/PREFIX such as 10.1.0.0/16"
                        " or fd00:1::/64",
                        where, q);
    memcpy(addr_text, text, addr_len);
    addr_text[addr_len] = '\0';

    uint8_t bytes[16] = {0};
    int family = strchr(addr_text, ':') != NULL ? 6 : 4;
    if (inet_pton(family == 4 ? AF_INET : AF_INET6, addr_text, bytes) != 1)
        return pol_fail(p, node->start_mark,
                        "%s has an invalid IPv%d address (%s); write ADDRESS/PREFIX such as %s",
                        where, family, q, family == 4 ? "10.1.0.0/16" : "fd00:1::/64");

    unsigned max_len = family == 4 ? 32 : 128;
    unsigned prefix_len = max_len;
    if (slash != NULL) {
        const char *c = slash + 1;
        unsigned v = 0;
        size_t digits = 0;
        for (; *c >= '0' && *c <= '9' && digits < 4; c++, digits++)
            v = v * 10 + (unsigned)(*c - '0');
        if (digits == 0 || *c != '\0' || (digits > 1 && slash[1] == '0'))
            return pol_fail(p, node->start_mark,
                            "%s has an invalid prefix length (%s); write a number from 0 to %u"
                            " after the slash, without leading zeros",
                            where, q, max_len);
        if (v > max_len)
            return pol_fail(p, node->start_mark,
                            "%s has a prefix length longer than %u bits (%s); use a prefix"
                            " length from 0 to %u",
                            where, max_len, q, max_len);
        prefix_len = v;
    }

    /* An IPv4-mapped IPv6 network (::ffff:0:0/96) names IPv4 hosts that
     * the IPv4 rules already cover, so a second rule for them would be
     * ambiguous. */
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == 6 && prefix_len >= 96 && memcmp(bytes, v4mapped, sizeof v4mapped) == 0)
        return pol_fail(p, node->start_mark,
                        "%s is an IPv4-mapped IPv6 network (%s); write the IPv4 network instead,"
                        " such as %u.%u.%u.%u/%u",
                        where, q, bytes[12], bytes[13], bytes[14], bytes[15], prefix_len - 96);

    pol_net_set(net, family, bytes, prefix_len);

    /* Host bits set: the author probably meant the enclosing network. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = (hi << 8) | bytes[i];
        lo = (lo << 8) | bytes[8 + i];
    }
    if (hi != net->net_hi || lo != net->net_lo) {
        char fixed[POL_CIDR_TEXT_MAX];
        pol_net_format(net, fixed);
        return pol_fail(p, node->start_mark,
                        "%s has host bits set below the prefix (%s); write the network address"
                        " %s",
                        where, q, fixed);
    }
    return FV_OK;
}

static bool pol_net_equal(const pol_net *a, const pol_net *b)
{
    return a->family == b->family && a->prefix_len == b->prefix_len && a->net_hi == b->net_hi &&
           a->net_lo == b->net_lo;
}

/* ---------------------------------------------------------------------- */
/* Mappings                                                                */
/* ---------------------------------------------------------------------- */

/* Write the allowed keys of TABLE, comma-separated, into OUT. */
static void pol_key_list(const pol_key *table, size_t n, char *out, size_t out_len)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + len, out_len - len, "%s%s", i == 0 ? "" : ", ", table[i].key);
        if (w < 0 || (size_t)w >= out_len - len)
            return;
        len += (size_t)w;
    }
}

/*
 * Walk mapping NODE at WHERE ("" for the top level): reject anything but
 * a mapping, keys that are not plain strings, duplicate keys and keys
 * missing from TABLE, and call the table entry of every known key.
 */
static int pol_walk_mapping(pol_parser *p, yaml_node_t *node, const char *where,
                            const pol_key *table, size_t n)
{
    const char *label = where[0] == '\0' ? "the policy" : where;
    if (node->type != YAML_MAPPING_NODE)
        return pol_fail(p, node->start_mark, "%s must be a mapping of keys to values, not %s; see"
                        " docs/POLICY.md for its keys",
                        label, pol_node_kind(node));

    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *key = yaml_document_get_node(p->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(p->doc, pair->value);
        if (key == NULL || value == NULL)
            return pol_fail(p, node->start_mark, "%s has an incomplete entry; complete or remove it",
                            label);

        const char *name;
        int rc = pol_scalar(p, key, "a key", "a plain name", &name);
        if (rc != FV_OK)
            return rc;

        /* Duplicate keys: YAML forbids them, libyaml does not check. */
        for (yaml_node_pair_t *prev = node->data.mapping.pairs.start; prev < pair; prev++) {
            yaml_node_t *pk = yaml_document_get_node(p->doc, prev->key);
            if (pk != NULL && pk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)pk->data.scalar.value, name) == 0) {
                char q[POL_QUOTE_MAX];
                pol_quote(key, q);
                return pol_fail(p, key->start_mark,
                                "duplicate key in %s (%s); keep only one of line %zu and this one",
                                label, q, pk->start_mark.line + 1);
            }
        }

        size_t i = 0;
        while (i < n && strcmp(table[i].key, name) != 0)
            i++;
        if (i == n) {
            char q[POL_QUOTE_MAX];
            char allowed[256];
            pol_quote(key, q);
            pol_key_list(table, n, allowed, sizeof allowed);
            return pol_fail(p, key->start_mark, "unknown key in %s (%s); allowed keys are: %s",
                            label, q, allowed);
        }

        char sub[POL_WHERE_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", where, where[0] == '\0' ? "" : ".", name);
        rc = table[i].parse(p, value, sub, table[i].arg);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

/* Find the value of KEY in mapping NODE, or NULL. */
static yaml_node_t *pol_mapping_get(pol_parser *p, yaml_node_t *node, const char *key)
{
    if (node->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, pair->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(p->doc, pair->value);
    }
    return NULL;
}

static int pol_require_sequence(pol_parser *p, yaml_node_t *node, const char *where,
                                const char *example)
{
    if (node->type == YAML_SEQUENCE_NODE)
        return FV_OK;
    char q[POL_QUOTE_MAX];
    pol_quote(node, q);
    return pol_fail(p, node->start_mark, "%s must be a list, not %s (%s); write it as %s, or [] for"
                    " none",
                    where, pol_node_kind(node), q, example);
}

/* ---------------------------------------------------------------------- */
/* Sections                                                                */
/* ---------------------------------------------------------------------- */

static int pol_parse_version(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    uint64_t v;
    int rc = pol_get_uint(p, value, where, 0, UINT64_MAX, &v);
    if (rc != FV_OK)
        return rc;
    if (v != POL_VERSION) {
        char q[POL_QUOTE_MAX];
        pol_quote(value, q);
        return pol_fail(p, value->start_mark,
                        "unsupported policy version (%s); this flowveil reads version %d only,"
                        " so write 'version: %d' and check docs/POLICY.md for the format",
                        q, POL_VERSION, POL_VERSION);
    }
    p->pol->version = v;
    return FV_OK;
}

/* Zone names become labels in records and the API, so they are short,
 * lower-case identifiers and never the label of addresses outside every
 * zone. */
static int pol_check_zone_name(pol_parser *p, yaml_node_t *node, const char *where,
                               const char *name)
{
    char q[POL_QUOTE_MAX];
    pol_quote(node, q);
    size_t len = strlen(name);
    if (len == 0)
        return pol_fail(p, node->start_mark, "%s is empty (\"\"); give the zone a name such as"
                        " office",
                        where);
    if (len >= FV_ZONE_NAME_MAX)
        return pol_fail(p, node->start_mark, "%s is longer than %d characters (%s); shorten it",
                        where, FV_ZONE_NAME_MAX - 1, q);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return pol_fail(p, node->start_mark,
                            "%s contains a character other than a-z, 0-9, _ and - (%s); use"
                            " lower-case letters, digits, _ and - only",
                            where, q);
    }
    if (strcmp(name, FV_ZONE_EXTERNAL) == 0)
        return pol_fail(p, node->start_mark,
                        "%s is reserved (%s): it labels addresses outside every zone; choose"
                        " another name",
                        where, q);
    for (size_t z = 0; z < p->pol->zone_count; z++) {
        if (strcmp(p->pol->zone_names[z], name) == 0)
            return pol_fail(p, node->start_mark,
                            "duplicate zone name (%s); give each zone its own name, or merge"
                            " their networks into one zone",
                            q);
    }
    return FV_OK;
}

/* Append one network of zone ZONE, rejecting the same network in any
 * zone (nested networks of different sizes are allowed: the longest
 * prefix wins). */
static int pol_add_zone_net(pol_parser *p, yaml_node_t *node, const char *where, size_t zone)
{
    pol_net net;
    int rc = pol_get_net(p, node, where, &net);
    if (rc != FV_OK)
        return rc;

    char q[POL_QUOTE_MAX];
    pol_quote(node, q);
    for (size_t i = 0; i < p->pol->zone_net_count; i++) {
        const pol_net *other = &p->pol->zone_nets[i];
        if (!pol_net_equal(other, &net))
            continue;
        if (other->zone == zone)
            return pol_fail(p, node->start_mark,
                            "%s repeats a network of the same zone (%s); remove the duplicate",
                            where, q);
        return pol_fail(p, node->start_mark,
                        "%s is already in zone %s (%s); a network can belong to one zone only,"
                        " so remove it from one of them",
                        where, p->pol->zone_names[other->zone], q);
    }
    if (p->pol->zone_net_count >= POL_MAX_ZONE_NETWORKS)
        return pol_fail(p, node->start_mark,
                        "too many zone networks (more than %d) at %s (%s); merge them into"
                        " larger networks",
                        POL_MAX_ZONE_NETWORKS, where, q);

    net.zone = (uint16_t)zone;
    p->pol->zone_nets[p->pol->zone_net_count++] = net;
    return FV_OK;
}

#include "pol_parse_addresses.inc"

static int pol_parse_zone(pol_parser *p, yaml_node_t *node, const char *where)
{
    if (node->type != YAML_MAPPING_NODE)
        return pol_fail(p, node->start_mark,
                        "%s must be a mapping with name and networks, not %s; write"
                        " '- name: office' and 'networks: [10.1.0.0/16]'",
                        where, pol_node_kind(node));

    /* Check the keys first so a typo or a repeated key is reported as
     * such; the values are read below. */
    static const pol_key keys[] = {
        {"name", pol_parse_key_later, 0},
        {"networks", pol_parse_key_later, 0},
        {"addresses", pol_parse_key_later, 0},
        {"truncate_prefix", pol_parse_key_later, 0},
    };
    int rc = pol_walk_mapping(p, node, where, keys, sizeof keys / sizeof keys[0]);
    if (rc != FV_OK)
        return rc;

    char sub[POL_WHERE_MAX];
    yaml_node_t *name_node = pol_mapping_get(p, node, "name");
    if (name_node == NULL)
        return pol_fail(p, node->start_mark, "%s has no name; add 'name: office' (a-z, 0-9, _, -)",
                        where);
    pol_join_where(sub, sizeof sub, where, ".name", 0, false);
    const char *name;
    rc = pol_scalar(p, name_node, sub, "a zone name", &name);
    if (rc != FV_OK)
        return rc;
    rc = pol_check_zone_name(p, name_node, sub, name);
    if (rc != FV_OK)
        return rc;
    if (p->pol->zone_count >= POL_MAX_ZONES)
        return pol_fail(p, name_node->start_mark,
                        "too many zones (more than %d); merge zones that share a purpose",
                        POL_MAX_ZONES);
    size_t zone = p->pol->zone_count++;
    snprintf(p->pol->zone_names[zone], sizeof p->pol->zone_names[zone], "%s", name);

    yaml_node_t *nets = pol_mapping_get(p, node, "networks");
    if (nets == NULL)
        return pol_fail(p, node->start_mark,
                        "zone %s has no networks; add 'networks: [10.1.0.0/16]' or remove the zone",
                        name);
    pol_join_where(sub, sizeof sub, where, ".networks", 0, false);
    rc = pol_require_sequence(p, nets, sub, "[10.1.0.0/16, fd00:1::/64]");
    if (rc != FV_OK)
        return rc;
    if (nets->data.sequence.items.start == nets->data.sequence.items.top)
        return pol_fail(p, nets->start_mark,
                        "zone %s has an empty network list ([]); add its networks or remove the"
                        " zone",
                        name);

    size_t idx = 0;
    for (yaml_node_item_t *it = nets->data.sequence.items.start; it < nets->data.sequence.items.top;
         it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, *it);
        if (item == NULL)
            continue;
        pol_join_where(sub, sizeof sub, where, ".networks", idx, true);
        rc = pol_add_zone_net(p, item, sub, zone);
        if (rc != FV_OK)
            return rc;
    }
    return pol_parse_zone_addresses(p, node, where, zone);
}

static int pol_parse_zones(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    p->zones_seen = true;
    int rc = pol_require_sequence(p, value, where, "a list of '- name: ...' entries");
    if (rc != FV_OK)
        return rc;

    size_t idx = 0;
    for (yaml_node_item_t *it = value->data.sequence.items.start;
         it < value->data.sequence.items.top; it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, *it);
        if (item == NULL)
            continue;
        char sub[POL_WHERE_MAX];
        snprintf(sub, sizeof sub, "zones[%zu]", idx);
        rc = pol_parse_zone(p, item, sub);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

/* An excluded network may also lie inside a zone. The exclusion wins
 * because excluded packets are dropped (by the BPF filter and
 * pol_is_excluded) before any zone lookup. Repeating an exclusion is
 * rejected. */
static int pol_parse_exclude(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    int rc = pol_require_sequence(p, value, where, "[10.9.0.0/16]");
    if (rc != FV_OK)
        return rc;

    size_t idx = 0;
    for (yaml_node_item_t *it = value->data.sequence.items.start;
         it < value->data.sequence.items.top; it++, idx++) {
        yaml_node_t *item = yaml_document_get_node(p->doc, *it);
        if (item == NULL)
            continue;

        char sub[POL_WHERE_MAX];
        snprintf(sub, sizeof sub, "exclude[%zu]", idx);
        pol_net net;
        rc = pol_get_net(p, item, sub, &net);
        if (rc != FV_OK)
            return rc;

        char q[POL_QUOTE_MAX];
        pol_quote(item, q);
        for (size_t i = 0; i < p->pol->exclude_count; i++) {
            if (pol_net_equal(&p->pol->excludes[i], &net))
                return pol_fail(p, item->start_mark,
                                "%s repeats an excluded network (%s); remove the duplicate", sub, q);
        }
        if (p->pol->exclude_count >= POL_MAX_EXCLUDES)
            return pol_fail(p, item->start_mark,
                            "too many excluded networks (more than %d) at %s (%s); merge them"
                            " into larger networks",
                            POL_MAX_EXCLUDES, sub, q);
        p->pol->excludes[p->pol->exclude_count++] = net;
    }
    return FV_OK;
}

static int pol_parse_rotation(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    return pol_get_duration(p, value, where, POL_ROTATION_MIN_S, POL_ROTATION_MAX_S,
                            &p->pol->rotation_s);
}

static int pol_parse_pseudonymization(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    static const pol_key keys[] = {{"rotation", pol_parse_rotation, 0}};
    return pol_walk_mapping(p, value, where, keys, sizeof keys / sizeof keys[0]);
}

static int pol_parse_retention_class(pol_parser *p, yaml_node_t *value, const char *where, int cls)
{
    /* The lower bound against sweep_interval is checked after the walk. */
    int rc = pol_get_duration(p, value, where, 1, POL_RETENTION_MAX_S, &p->pol->retention_s[cls]);
    if (rc != FV_OK)
        return rc;
    p->retention_set[cls] = true;
    p->retention_mark[cls] = value->start_mark;
    pol_quote(value, p->retention_text[cls]);
    return FV_OK;
}

static int pol_parse_retention_audit(pol_parser *p, yaml_node_t *value, const char *where,
                                     int arg)
{
    (void)arg;
    int rc = pol_get_duration(p, value, where, 1, POL_AUDIT_RETENTION_MAX_S,
                              &p->pol->audit_retention_s);
    if (rc != FV_OK)
        return rc;
    p->audit_retention_set = true;
    p->audit_retention_mark = value->start_mark;
    pol_quote(value, p->audit_retention_text);
    return FV_OK;
}

static int pol_parse_retention_max_store_size(pol_parser *p, yaml_node_t *value,
                                              const char *where, int arg);

static int pol_parse_retention(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    static const pol_key keys[] = {
        {"flows", pol_parse_retention_class, FV_CLASS_FLOW},
        {"dns", pol_parse_retention_class, FV_CLASS_DNS},
        {"tls", pol_parse_retention_class, FV_CLASS_TLS},
        {"http", pol_parse_retention_class, FV_CLASS_HTTP},
        {"alerts", pol_parse_retention_class, FV_CLASS_ALERT},
        {"dhcp", pol_parse_retention_class, FV_CLASS_DHCP},
        {"ssh", pol_parse_retention_class, FV_CLASS_SSH},
        {"aggregates", pol_parse_retention_class, POL_AGGREGATES_SLOT},
        {"audit", pol_parse_retention_audit, 0},
        {"max_store_size", pol_parse_retention_max_store_size, 0},
    };
    return pol_walk_mapping(p, value, where, keys, sizeof keys / sizeof keys[0]);
}

static int pol_parse_sweep(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    return pol_get_duration(p, value, where, POL_SWEEP_MIN_S, POL_SWEEP_MAX_S,
                            &p->pol->sweep_interval_s);
}

#include "pol_parse_detect.inc"
#include "pol_parse_groups.inc"
#include "pol_parse_escrow.inc"
#include "pol_parse_domains.inc"

/* Checks that need the whole document: required keys and retention
 * against the sweep interval. */
static int pol_check_document(pol_parser *p, yaml_node_t *root)
{
    if (!p->zones_seen)
        return pol_fail(p, root->start_mark,
                        "missing key zones; list the internal networks whose addresses are"
                        " pseudonymized, or write 'zones: []' if there are none");

    if (p->pol->audit_retention_s < p->pol->sweep_interval_s) {
        char sweep[POL_DURATION_TEXT_MAX];
        pol_duration_format(p->pol->sweep_interval_s, sweep);
        return pol_fail(p, p->audit_retention_mark,
                        "retention.audit is shorter than sweep_interval (%s < %s); set it to %s or"
                        " more, or shorten sweep_interval",
                        p->audit_retention_text, sweep, sweep);
    }
    int rc = pol_check_groups(p);
    if (rc != FV_OK)
        return rc;
    rc = pol_check_seg_zones(p, root);
    if (rc != FV_OK)
        return rc;

    for (size_t c = 0; c < POL_CLASS_SLOTS; c++) {
        if (p->pol->retention_s[c] >= p->pol->sweep_interval_s)
            continue;
        char sweep[POL_DURATION_TEXT_MAX];
        pol_duration_format(p->pol->sweep_interval_s, sweep);
        if (!p->retention_set[c])
            return pol_fail(p, root->start_mark,
                            "the default retention of %s is shorter than sweep_interval (%s);"
                            " set retention.%s to %s or more",
                            pol_class_names[c], sweep, pol_class_names[c], sweep);
        return pol_fail(p, p->retention_mark[c],
                        "retention.%s is shorter than sweep_interval (%s < %s); set it to %s or"
                        " more, or shorten sweep_interval",
                        pol_class_names[c], p->retention_text[c], sweep, sweep);
    }
    return FV_OK;
}

/* organization.name, .contact and .dpo: ARG picks the field. */
static int pol_parse_org_field(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    char *fields[] = {p->pol->org_name, p->pol->org_contact, p->pol->org_dpo};
    return pol_get_text(p, value, where, fields[arg]);
}

static int pol_parse_organization(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    static const pol_key keys[] = {
        {"name", pol_parse_org_field, 0},
        {"contact", pol_parse_org_field, 1},
        {"dpo", pol_parse_org_field, 2},
    };
    return pol_walk_mapping(p, value, where, keys, sizeof keys / sizeof keys[0]);
}

static int pol_parse_export(pol_parser *p, yaml_node_t *value, const char *where, int arg);

static int pol_parse_root(pol_parser *p, yaml_node_t *root)
{
    static const pol_key keys[] = {
        {"version", pol_parse_version, 0},
        {"zones", pol_parse_zones, 0},
        {"exclude", pol_parse_exclude, 0},
        {"pseudonymization", pol_parse_pseudonymization, 0},
        {"retention", pol_parse_retention, 0},
        {"sweep_interval", pol_parse_sweep, 0},
        {"detect", pol_parse_detect, 0},
        {"monitoring", pol_parse_monitoring, 0},
        {"groups", pol_parse_groups, 0},
        {"windows", pol_parse_windows, 0},
        {"collect", pol_parse_collect, 0},
        {"reporting", pol_parse_reporting, 0},
        {"roles", pol_parse_roles, 0},
        {"organization", pol_parse_organization, 0},
        {"external", pol_parse_external, 0},
        {"escrow", pol_parse_escrow, 0},
        {"domains", pol_parse_domains, 0},
        {"export", pol_parse_export, 0},
    };

    if (root->type != YAML_MAPPING_NODE)
        return pol_fail(p, root->start_mark,
                        "the policy must be a mapping of keys to values, not %s; start it with"
                        " 'version: %d'",
                        pol_node_kind(root), POL_VERSION);

    /* The version decides how everything else reads, so check it first. */
    yaml_node_t *version = pol_mapping_get(p, root, "version");
    if (version == NULL)
        return pol_fail(p, root->start_mark, "missing key version; add 'version: %d' at the top",
                        POL_VERSION);
    int rc = pol_parse_version(p, version, "version", 0);
    if (rc != FV_OK)
        return rc;

    rc = pol_walk_mapping(p, root, "", keys, sizeof keys / sizeof keys[0]);
    if (rc != FV_OK)
        return rc;
    return pol_check_document(p, root);
}

/* Report a libyaml loader error with its position and problem text. */
static int pol_fail_yaml(pol_parser *p, const yaml_parser_t *parser);

/* Deepest nesting of mappings and sequences a policy may use; the
 * documented format needs four levels. */
#define POL_MAX_DEPTH 16

/*
 * Walk the events of TEXT and reject nesting deeper than POL_MAX_DEPTH
 * and explicit tags ("!!str", "!foo"), which the format never uses and
 * which would change how a value reads. Stops at the first problem.
 */
static int pol_prescan(pol_parser *p, const char *text, size_t len)
{
    yaml_parser_t scan;
    yaml_event_t event;
    int depth = 0, rc = FV_OK;
    bool done = false;

    if (!yaml_parser_initialize(&scan))
        return FV_ERR_NOMEM;
    yaml_parser_set_input_string(&scan, (const unsigned char *)text, len);
    while (!done && rc == FV_OK) {
        if (!yaml_parser_parse(&scan, &event)) {
            rc = pol_fail_yaml(p, &scan);
            break;
        }
        const unsigned char *tag = NULL;
        bool implicit = true;
        switch (event.type) {
        case YAML_SEQUENCE_START_EVENT:
            tag = event.data.sequence_start.tag;
            implicit = event.data.sequence_start.implicit;
            depth++;
            break;
        case YAML_MAPPING_START_EVENT:
            tag = event.data.mapping_start.tag;
            implicit = event.data.mapping_start.implicit;
            depth++;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            tag = event.data.scalar.tag;
            implicit = event.data.scalar.plain_implicit || event.data.scalar.quoted_implicit;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        if (depth > POL_MAX_DEPTH)
            rc = pol_fail(p, event.start_mark,
                          "nesting deeper than %d levels; the policy format needs at most four,"
                          " so check the brackets and indentation here",
                          POL_MAX_DEPTH);
        else if (tag != NULL && !implicit)
            rc = pol_fail(p, event.start_mark,
                          "explicit YAML tag '%.40s'; policies use plain values, so remove the"
                          " tag",
                          (const char *)tag);
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&scan);
    return rc;
}

/* Return the byte offset in TEXT of MARK, whose line and column libyaml
 * counts in characters, or LEN when it lies past the end. */
static size_t pol_mark_byte_offset(const char *text, size_t len, const yaml_mark_t *mark)
{
    size_t i = 0;
    for (size_t line = 0; line < mark->line && i < len; i++) {
        if (text[i] == '\n')
            line++;
    }
    /* Count characters by their first byte: UTF-8 continuation bytes are
     * 10xxxxxx. */
    for (size_t column = 0; i < len; i++) {
        if (((unsigned char)text[i] & 0xc0u) == 0x80u)
            continue;
        if (column == mark->column)
            return i;
        column++;
    }
    return len;
}

static int pol_fail_yaml(pol_parser *p, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        if (p->err != NULL && p->err_len > 0)
            snprintf(p->err, p->err_len, "%s: out of memory while parsing the policy", p->name);
        return FV_ERR_NOMEM;
    }
    const char *problem = parser->problem != NULL ? parser->problem : "malformed input";
    /* A plain value cannot start with ':' inside [ ], so "[10.0.0.0/8,
     * ::/0]" fails here; the fix is to quote the IPv6 network. */
    size_t at = pol_mark_byte_offset(p->text, p->text_len, &parser->problem_mark);
    const char *hint = at < p->text_len && p->text[at] == ':'
                           ? "; a value that starts with ':', such as the IPv6 network ::/0, "
                             "must be quoted: \"::/0\""
                           : "";
    if (parser->context != NULL)
        return pol_fail(p, parser->problem_mark,
                        "invalid YAML: %s %s (from line %zu); fix the syntax at this position%s",
                        problem, parser->context, parser->context_mark.line + 1, hint);
    return pol_fail(p, parser->problem_mark,
                    "invalid YAML: %s; fix the syntax at this position%s", problem, hint);
}

int pol_load_buffer(const char *name, const char *text, size_t len, pol_policy **out, char *err,
                    size_t err_len)
{
    if (out == NULL || text == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (err != NULL && err_len > 0)
        err[0] = '\0';

    pol_parser p = {.name = name != NULL ? name : "policy", .text = text, .text_len = len,
                    .err = err, .err_len = err_len};
    yaml_parser_t parser;
    yaml_document_t doc;
    bool parser_ready = false, doc_ready = false;
    pol_policy *pol = NULL;
    pol_parse_marks *marks = NULL;
    int rc;

    if (len > POL_MAX_FILE_BYTES) {
        yaml_mark_t start = {0, 0, 0};
        rc = pol_fail(&p, start, "the policy is larger than %u bytes (%zu bytes); a policy is a"
                      " few kilobytes, so check that this is the right file",
                      POL_MAX_FILE_BYTES, len);
        goto out;
    }

    pol = calloc(1, sizeof *pol);
    if (pol == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    pol_set_defaults(pol);
    p.pol = pol;
    if (sodium_init() < 0) {
        rc = FV_ERR_CRYPTO;
        goto out;
    }
    crypto_generichash(pol->hash, sizeof pol->hash, (const unsigned char *)text, len, NULL, 0);

    marks = calloc(1, sizeof *marks);
    if (marks == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    p.marks = marks;

    if (!yaml_parser_initialize(&parser)) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    /* Check nesting depth and tags with the event parser first: libyaml's
     * document loader takes time quadratic in the nesting depth, so a
     * deeply nested file must be rejected before it is loaded. */
    rc = pol_prescan(&p, text, len);
    if (rc != FV_OK)
        goto out;

    /* Load the first document. */
    if (!yaml_parser_load(&parser, &doc)) {
        rc = pol_fail_yaml(&p, &parser);
        goto out;
    }
    doc_ready = true;
    p.doc = &doc;

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        yaml_mark_t start = {0, 0, 0};
        rc = pol_fail(&p, start, "the policy is empty; start it with 'version: %d' and see"
                      " policy/example-policy.yaml",
                      POL_VERSION);
        goto out;
    }
    rc = pol_parse_root(&p, root);
    if (rc != FV_OK)
        goto out;

    /* A second document would be silently ignored, so reject it. */
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
        rc = pol_fail_yaml(&p, &parser);
        goto out;
    }
    yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
    yaml_mark_t extra_mark = extra.start_mark;
    yaml_document_delete(&extra);
    if (extra_root != NULL) {
        rc = pol_fail(&p, extra_mark, "a second YAML document follows the policy; remove"
                      " everything from this '---' on");
        goto out;
    }

    pol_build_lookup(pol);
    *out = pol;
    pol = NULL;
    rc = FV_OK;

out:
    if (doc_ready)
        yaml_document_delete(&doc);
    if (parser_ready)
        yaml_parser_delete(&parser);
    free(marks);
    free(pol);
    return rc;
}

int pol_load(const char *path, pol_policy **out, char *err, size_t err_len)
{
    if (path == NULL || out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;

    char *text = NULL;
    size_t len = 0;
    int fd = -1;
    int rc;

    /* O_NONBLOCK: a FIFO must not hang the open; only regular files pass. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "%s: cannot open the policy: %s; check the path and its"
                     " permissions",
                     path, strerror(errno));
        rc = FV_ERR_IO;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "%s: the policy is not a regular file; name the YAML policy"
                     " file itself",
                     path);
        rc = FV_ERR_IO;
        goto out;
    }

    /* Read at most one byte more than the limit so oversize is seen. */
    text = malloc(POL_MAX_FILE_BYTES + 2);
    if (text == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    while (len <= POL_MAX_FILE_BYTES) {
        ssize_t n = read(fd, text + len, POL_MAX_FILE_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (err != NULL && err_len > 0)
                snprintf(err, err_len, "%s: cannot read the policy: %s; check that it is a"
                         " readable file",
                         path, strerror(errno));
            rc = FV_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    text[len] = '\0';
    /* Only the cap plus one byte was read: report the file's own size. */
    if (len > POL_MAX_FILE_BYTES) {
        if (err != NULL && err_len > 0)
            snprintf(err, err_len, "%s: the policy is larger than %u bytes (the file has %lld"
                     " bytes); a policy is a few kilobytes, so check that this is the right file",
                     path, POL_MAX_FILE_BYTES, (long long)st.st_size);
        rc = FV_ERR_PARSE;
        goto out;
    }

    rc = pol_load_buffer(path, text, len, out, err, err_len);

out:
    free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* export: destinations of the capturing process                           */
/* ---------------------------------------------------------------------- */

/*
 *   export:
 *     destinations:
 *       - name: soc-collector
 *         ipfix: 127.0.0.1:4739
 *         transport: udp
 *         classes: [flows, dns]
 *       - name: lake
 *         kafka: 127.0.0.1:9092
 *         topic_prefix: sensor1.
 *
 * Each key's parser writes into the destination being read, the one at
 * index export_cfg.count; pol_parse_export_dest advances count after a
 * complete entry.
 */

static pol_export_dest *pol_export_current(pol_parser *p)
{
    return &p->pol->export_cfg.dest[p->pol->export_cfg.count];
}

/* Copy the scalar NODE into OUT (OUT_LEN bytes with the NUL): printable
 * ASCII without spaces, 1 .. OUT_LEN - 1 characters. WHAT names the
 * expected value in the message. */
static int pol_export_word(pol_parser *p, yaml_node_t *node, const char *where, const char *what,
                           char *out, size_t out_len)
{
    const char *text;
    int rc = pol_scalar(p, node, where, what, &text);
    if (rc != FV_OK)
        return rc;
    char q[POL_QUOTE_MAX];
    pol_quote(node, q);
    size_t len = strlen(text);
    if (len == 0 || len >= out_len)
        return pol_fail(p, node->start_mark, "%s must have 1 to %zu characters (%s); write %s",
                        where, out_len - 1, q, what);
    for (size_t i = 0; i < len; i++) {
        if (text[i] <= ' ' || text[i] > '~')
            return pol_fail(p, node->start_mark, "%s contains a space or a character outside"
                            " printable ASCII (%s); write %s",
                            where, q, what);
    }
    memcpy(out, text, len + 1);
    return FV_OK;
}

/* True if TEXT is HOST:PORT or [IPV6]:PORT with a port from 1 to 65535. */
static bool pol_export_host_port_ok(const char *text)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return false;
    if (text[0] == '[' ? colon[-1] != ']' : strchr(text, ':') != colon)
        return false;
    const char *port = colon + 1;
    size_t n = strlen(port);
    if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
        return false;
    long v = strtol(port, NULL, 10);
    return v >= 1 && v <= 65535;
}

static int pol_parse_export_name(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    pol_export_dest *d = pol_export_current(p);
    int rc = pol_export_word(p, value, where, "a short name such as soc-collector", d->name,
                             sizeof d->name);
    if (rc != FV_OK)
        return rc;
    for (size_t i = 0; i < p->pol->export_cfg.count; i++) {
        if (strcmp(p->pol->export_cfg.dest[i].name, d->name) == 0)
            return pol_fail(p, value->start_mark, "%s (%s) is used by destination %zu too; give"
                            " each destination its own name",
                            where, d->name, i + 1);
    }
    return FV_OK;
}

/* ipfix: HOST:PORT, or kafka: bootstrap servers. ARG is the kind. */
static int pol_parse_export_target(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    pol_export_dest *d = pol_export_current(p);
    if (d->kind != 0)
        return pol_fail(p, value->start_mark, "%s: a destination has either ipfix or kafka, not"
                        " both; split it into two destinations",
                        where);
    d->kind = (pol_export_kind)arg;
    if (arg == POL_EXPORT_IPFIX) {
        int rc = pol_export_word(p, value, where, "the collector as HOST:PORT, such as"
                                 " 127.0.0.1:4739", d->target, sizeof d->target);
        if (rc != FV_OK)
            return rc;
        if (!pol_export_host_port_ok(d->target))
            return pol_fail(p, value->start_mark, "%s is not HOST:PORT (%.64s); write the"
                            " collector as 127.0.0.1:4739 or [::1]:4739, port 1 to 65535",
                            where, d->target);
        return FV_OK;
    }
    int rc = pol_export_word(p, value, where, "the bootstrap servers as HOST:PORT[,HOST:PORT]",
                             d->target, sizeof d->target);
    if (rc != FV_OK)
        return rc;
    char copy[sizeof d->target];
    memcpy(copy, d->target, sizeof copy);
    char *save = NULL;
    for (char *server = strtok_r(copy, ",", &save); server != NULL;
         server = strtok_r(NULL, ",", &save)) {
        if (!pol_export_host_port_ok(server))
            return pol_fail(p, value->start_mark, "%s: bootstrap server '%.64s' is not HOST:PORT;"
                            " write the servers as broker1:9092,broker2:9092",
                            where, server);
    }
    return FV_OK;
}

static int pol_parse_export_transport(pol_parser *p, yaml_node_t *value, const char *where,
                                      int arg)
{
    (void)arg;
    char text[8];
    int rc = pol_export_word(p, value, where, "udp or tcp", text, sizeof text);
    if (rc != FV_OK)
        return rc;
    if (strcmp(text, "udp") != 0 && strcmp(text, "tcp") != 0)
        return pol_fail(p, value->start_mark, "%s must be udp or tcp (%s)", where, text);
    pol_export_current(p)->tcp = strcmp(text, "tcp") == 0;
    /* Checked against the kind after the entry: keys may come in any order. */
    return FV_OK;
}

static int pol_parse_export_classes(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    int rc = pol_require_sequence(p, value, where, "[flows, dns, tls]");
    if (rc != FV_OK)
        return rc;
    uint32_t bits = 0;
    size_t i = 0;
    for (yaml_node_item_t *item = value->data.sequence.items.start;
         item < value->data.sequence.items.top; item++, i++) {
        yaml_node_t *node = yaml_document_get_node(p->doc, *item);
        if (node == NULL)
            return pol_fail(p, value->start_mark, "%s has an incomplete entry; remove it", where);
        char sub[POL_WHERE_MAX];
        pol_join_where(sub, sizeof sub, where, "", i, true);
        char name[32];
        rc = pol_export_word(p, node, sub, "a class name such as flows", name, sizeof name);
        if (rc != FV_OK)
            return rc;
        fv_class cls;
        if (fv_class_from_name(name, &cls) != FV_OK)
            return pol_fail(p, node->start_mark, "%s is not a record class (%s); use flows, dns,"
                            " tls, http, dhcp, ssh, alerts or aggregates",
                            sub, name);
        bits |= 1u << (unsigned)cls;
    }
    if (bits == 0)
        return pol_fail(p, value->start_mark, "%s lists no class; list the classes to send, or"
                        " remove the key to send every class the protocol carries",
                        where);
    pol_export_current(p)->classes = bits;
    return FV_OK;
}

/* template_refresh (a duration), template_refresh_messages,
 * observation_domain and queue_max; ARG picks the field. */
enum {
    POL_EXPORT_TEMPLATE_REFRESH,
    POL_EXPORT_TEMPLATE_REFRESH_MESSAGES,
    POL_EXPORT_OBSERVATION_DOMAIN,
    POL_EXPORT_QUEUE_MAX,
};

static int pol_parse_export_number(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    pol_export_dest *d = pol_export_current(p);
    uint64_t v = 0;
    int rc;
    switch (arg) {
    case POL_EXPORT_TEMPLATE_REFRESH:
        rc = pol_get_duration(p, value, where, 1, 86400, &v);
        d->template_refresh_s = (uint32_t)v;
        break;
    case POL_EXPORT_TEMPLATE_REFRESH_MESSAGES:
        rc = pol_get_uint(p, value, where, 0, 1000000, &v);
        d->template_refresh_messages = (uint32_t)v;
        break;
    case POL_EXPORT_OBSERVATION_DOMAIN:
        rc = pol_get_uint(p, value, where, 0, UINT32_MAX, &v);
        d->observation_domain = (uint32_t)v;
        break;
    default:
        rc = pol_get_uint(p, value, where, 1, 10000000, &v);
        d->queue_max = (uint32_t)v;
        break;
    }
    return rc;
}

static int pol_parse_export_topic_prefix(pol_parser *p, yaml_node_t *value, const char *where,
                                         int arg)
{
    (void)arg;
    pol_export_dest *d = pol_export_current(p);
    int rc = pol_export_word(p, value, where, "a topic prefix such as flowveil.", d->topic_prefix,
                             sizeof d->topic_prefix);
    if (rc != FV_OK)
        return rc;
    /* Kafka topic names: ASCII letters, digits, '.', '_' and '-'. */
    if (strspn(d->topic_prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
        strlen(d->topic_prefix))
        return pol_fail(p, value->start_mark, "%s (%.64s) may contain only letters, digits, '.',"
                        " '_' and '-', as Kafka topic names do",
                        where, d->topic_prefix);
    return FV_OK;
}

/* librdkafka producer properties (names from librdkafka's CONFIGURATION.md,
 * version 2.x) that change no more than transport security, identity and
 * delivery tuning. */
static const char *const pol_kafka_allowed[] = {
    "client.id", "acks", "request.required.acks", "compression.type", "compression.codec",
    "compression.level", "linger.ms", "queue.buffering.max.ms", "batch.size",
    "batch.num.messages", "message.timeout.ms", "delivery.timeout.ms", "request.timeout.ms",
    "message.send.max.retries", "retries", "retry.backoff.ms", "retry.backoff.max.ms",
    "message.max.bytes", "queue.buffering.max.messages", "queue.buffering.max.kbytes",
    "enable.idempotence", "socket.timeout.ms", "socket.keepalive.enable",
    "socket.connection.setup.timeout.ms", "reconnect.backoff.ms", "reconnect.backoff.max.ms",
    "broker.address.family", "topic.metadata.refresh.interval.ms", "metadata.max.age.ms",
    "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
    "sasl.kerberos.service.name", "sasl.kerberos.principal", "sasl.kerberos.keytab",
    "sasl.kerberos.min.time.before.relogin", "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id", "sasl.oauthbearer.client.secret", "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions", "sasl.oauthbearer.token.endpoint.url",
    "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
    "ssl.crl.location", "ssl.keystore.location", "ssl.keystore.password", "ssl.cipher.suites",
    "ssl.curves.list", "ssl.sigalgs.list", "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
};

bool pol_kafka_property_allowed(const char *name)
{
    for (size_t i = 0; i < sizeof pol_kafka_allowed / sizeof pol_kafka_allowed[0]; i++) {
        if (strcmp(name, pol_kafka_allowed[i]) == 0)
            return true;
    }
    return false;
}

/* properties: a mapping of librdkafka property names to values. */
static int pol_parse_export_properties(pol_parser *p, yaml_node_t *value, const char *where,
                                       int arg)
{
    (void)arg;
    pol_export_dest *d = pol_export_current(p);
    if (value->type != YAML_MAPPING_NODE)
        return pol_fail(p, value->start_mark, "%s must be a mapping of librdkafka property names"
                        " to values, not %s; write it as {message.send.max.retries: 5}",
                        where, pol_node_kind(value));
    for (yaml_node_pair_t *pair = value->data.mapping.pairs.start;
         pair < value->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(p->doc, pair->key);
        yaml_node_t *val = yaml_document_get_node(p->doc, pair->value);
        if (key == NULL || val == NULL)
            return pol_fail(p, value->start_mark, "%s has an incomplete entry; complete or remove"
                            " it",
                            where);
        if (d->property_count == POL_EXPORT_PROPERTIES_MAX)
            return pol_fail(p, key->start_mark, "%s has more than %d properties; keep the ones"
                            " that differ from librdkafka's defaults",
                            where, POL_EXPORT_PROPERTIES_MAX);
        char name[128], text[120];
        int rc = pol_export_word(p, key, where, "a librdkafka property name", name, sizeof name);
        if (rc == FV_OK)
            rc = pol_export_word(p, val, where, "the property's value", text, sizeof text);
        if (rc != FV_OK)
            return rc;
        if (strcmp(name, "bootstrap.servers") == 0)
            return pol_fail(p, key->start_mark, "%s: set the brokers with the kafka key, not"
                            " bootstrap.servers",
                            where);
        if (!pol_kafka_property_allowed(name))
            return pol_fail(p, key->start_mark, "%s: the librdkafka property '%s' is not allowed"
                            " in a policy; only security (security.protocol, sasl.*, ssl.* file"
                            " paths), client.id and delivery tuning (acks, compression.type,"
                            " linger.ms, batch.size, message.timeout.ms, ...) may be set, and"
                            " nothing that loads code or runs a command",
                            where, name);
        snprintf(d->properties[d->property_count++], sizeof d->properties[0], "%s=%s", name,
                 text);
    }
    return FV_OK;
}

/* Checks that need the whole entry: kind present, options of the other
 * kind absent, IPFIX classes limited to what IPFIX carries. */
static int pol_check_export_dest(pol_parser *p, yaml_node_t *node, const char *where,
                                 const pol_export_dest *d)
{
    if (d->kind == 0)
        return pol_fail(p, node->start_mark, "%s has neither ipfix nor kafka; add"
                        " 'ipfix: HOST:PORT' or 'kafka: HOST:PORT'",
                        where);
    if (d->kind == POL_EXPORT_KAFKA &&
        (pol_mapping_get(p, node, "transport") != NULL ||
         pol_mapping_get(p, node, "template_refresh") != NULL ||
         pol_mapping_get(p, node, "template_refresh_messages") != NULL ||
         pol_mapping_get(p, node, "observation_domain") != NULL))
        return pol_fail(p, node->start_mark, "%s is a kafka destination, but transport,"
                        " template_refresh, template_refresh_messages and observation_domain"
                        " apply to ipfix only; remove them",
                        where);
    if (d->kind == POL_EXPORT_IPFIX &&
        (pol_mapping_get(p, node, "topic_prefix") != NULL ||
         pol_mapping_get(p, node, "queue_max") != NULL ||
         pol_mapping_get(p, node, "properties") != NULL))
        return pol_fail(p, node->start_mark, "%s is an ipfix destination, but topic_prefix,"
                        " queue_max and properties apply to kafka only; remove them",
                        where);
    uint32_t ipfix_classes = (1u << FV_CLASS_FLOW) | (1u << FV_CLASS_DNS) | (1u << FV_CLASS_TLS);
    if (d->kind == POL_EXPORT_IPFIX && (d->classes & ~ipfix_classes) != 0)
        return pol_fail(p, node->start_mark, "%s.classes: IPFIX export carries flows, dns and tls"
                        " only; send the other classes to a kafka destination",
                        where);
    return FV_OK;
}

static int pol_parse_export_dest(pol_parser *p, yaml_node_t *node, const char *where)
{
    static const pol_key keys[] = {
        {"name", pol_parse_export_name, 0},
        {"ipfix", pol_parse_export_target, POL_EXPORT_IPFIX},
        {"kafka", pol_parse_export_target, POL_EXPORT_KAFKA},
        {"transport", pol_parse_export_transport, 0},
        {"classes", pol_parse_export_classes, 0},
        {"template_refresh", pol_parse_export_number, POL_EXPORT_TEMPLATE_REFRESH},
        {"template_refresh_messages", pol_parse_export_number,
         POL_EXPORT_TEMPLATE_REFRESH_MESSAGES},
        {"observation_domain", pol_parse_export_number, POL_EXPORT_OBSERVATION_DOMAIN},
        {"topic_prefix", pol_parse_export_topic_prefix, 0},
        {"queue_max", pol_parse_export_number, POL_EXPORT_QUEUE_MAX},
        {"properties", pol_parse_export_properties, 0},
    };
    pol_export *ex = &p->pol->export_cfg;
    memset(&ex->dest[ex->count], 0, sizeof ex->dest[0]);
    int rc = pol_walk_mapping(p, node, where, keys, sizeof keys / sizeof keys[0]);
    if (rc != FV_OK)
        return rc;
    pol_export_dest *d = &ex->dest[ex->count];
    rc = pol_check_export_dest(p, node, where, d);
    if (rc != FV_OK)
        return rc;
    if (d->name[0] == '\0')
        snprintf(d->name, sizeof d->name, "destination-%zu", ex->count + 1);
    ex->count++;
    return FV_OK;
}

static int pol_parse_export_destinations(pol_parser *p, yaml_node_t *value, const char *where,
                                         int arg)
{
    (void)arg;
    int rc = pol_require_sequence(p, value, where, "a list of destinations");
    if (rc != FV_OK)
        return rc;
    size_t i = 0;
    for (yaml_node_item_t *item = value->data.sequence.items.start;
         item < value->data.sequence.items.top; item++, i++) {
        yaml_node_t *node = yaml_document_get_node(p->doc, *item);
        if (node == NULL)
            return pol_fail(p, value->start_mark, "%s has an incomplete entry; remove it", where);
        if (i == POL_EXPORT_DESTINATIONS_MAX)
            return pol_fail(p, node->start_mark, "%s lists more than %d destinations; send to a"
                            " Kafka cluster or one collector that fans out instead",
                            where, POL_EXPORT_DESTINATIONS_MAX);
        char sub[POL_WHERE_MAX];
        pol_join_where(sub, sizeof sub, where, "", i, true);
        rc = pol_parse_export_dest(p, node, sub);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

static int pol_parse_export(pol_parser *p, yaml_node_t *value, const char *where, int arg)
{
    (void)arg;
    static const pol_key keys[] = {
        {"destinations", pol_parse_export_destinations, 0},
    };
    return pol_walk_mapping(p, value, where, keys, sizeof keys / sizeof keys[0]);
}

const pol_export *pol_export_config(const pol_policy *policy)
{
    return &policy->export_cfg;
}

/* ---------------------------------------------------------------------- */
/* retention.max_store_size                                                */
/* ---------------------------------------------------------------------- */

/* The store's size quota (store_size_limit_set): at it, new records are
 * dropped until the retention sweep frees space. */
static int pol_parse_retention_max_store_size(pol_parser *p, yaml_node_t *value,
                                              const char *where, int arg)
{
    (void)arg;
    return pol_get_size(p, value, where, POL_MAX_STORE_SIZE_MIN, POL_MAX_STORE_SIZE_MAX,
                        &p->pol->max_store_bytes);
}

uint64_t pol_max_store_bytes(const pol_policy *policy)
{
    return policy->max_store_bytes;
}
