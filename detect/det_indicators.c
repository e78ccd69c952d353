/*
 * det_indicators.c: indicator lists (detect.h, det_indicators_*).
 *
 * Every entry gets an id (its index in entries[]). Exact addresses,
 * domains and fingerprints live in one open-addressing hash table,
 * hashed with SipHash under a random key. Its key is a class byte and
 * the value's bytes: "4" + 4 address bytes, "6" + 16, "d" + lower-case
 * domain, "3" + JA3, "j" + JA4. Networks live in a binary trie per family, one
 * node per prefix bit, so a lookup takes at most 32 or 128 steps and
 * returns the longest matching prefix.
 *
 * The set works on raw values and is used in the capturing process
 * only. Messages name the list file and line, never traffic.
 */
#include "detect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#define DET_IND_MAX_ENTRIES (1u << 24)
#define DET_IND_MAX_FILE_BYTES (64u << 20)
#define DET_IND_LINE_MAX 1024
#define DET_IND_SHOWN_MAX 48 /* characters of a bad value quoted in a message */

/* Returned by the add functions for an entry already in the set. */
#define IND_DUPLICATE (-1)

#define KEY_IPV4 '4'
#define KEY_IPV6 '6'
#define KEY_DOMAIN 'd'
#define KEY_JA3 '3'
#define KEY_JA4 'j'

typedef struct ind_entry {
    uint32_t key_offset; /* into keys */
    uint16_t key_len;
    uint16_t list;
    uint8_t type; /* det_indicator_type */
    uint8_t severity;
    uint32_t line;
} ind_entry;

typedef struct ind_trie_node {
    uint32_t child[2]; /* node index, 0 = none (the root is never a child) */
    int32_t entry;     /* entry id ending here, -1 if none */
} ind_trie_node;

typedef struct ind_trie {
    ind_trie_node *nodes;
    size_t count, capacity;
} ind_trie;

struct det_indicators {
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    ind_entry *entries;
    size_t entry_count, entry_capacity;
    uint8_t *keys;
    size_t keys_len, keys_capacity;
    uint32_t *slots;      /* entry id + 1, 0 = empty */
    size_t slot_capacity; /* power of two */
    size_t slot_used;
    ind_trie trie4, trie6;
};

static const char *const type_names[DET_IND_TYPE_COUNT] = {
    NULL, "ipv4", "ipv6", "cidr", "domain", "ja3", "ja4",
};

const char *det_indicator_type_name(int type)
{
    return type > 0 && type < DET_IND_TYPE_COUNT ? type_names[type] : NULL;
}

const char *det_indicator_source_name(int source)
{
    switch (source) {
    case DET_IND_SRC_FLOW: return "flow";
    case DET_IND_SRC_DNS_QUERY: return "dns_query";
    case DET_IND_SRC_DNS_ANSWER: return "dns_answer";
    case DET_IND_SRC_TLS_SNI: return "tls_sni";
    case DET_IND_SRC_TLS_JA3: return "ja3";
    case DET_IND_SRC_TLS_JA4: return "ja4";
    case DET_IND_SRC_HTTP_HOST: return "http_host";
    default: return NULL;
    }
}

/* ---------------------------------------------------------------------- */
/* Storage                                                                 */
/* ---------------------------------------------------------------------- */

static int trie_init(ind_trie *t)
{
    t->nodes = calloc(1, sizeof *t->nodes);
    if (t->nodes == NULL)
        return FV_ERR_NOMEM;
    t->nodes[0].entry = -1;
    t->count = t->capacity = 1;
    return FV_OK;
}

int det_indicators_create(det_indicators **out)
{
    int rc = FV_ERR_NOMEM;
    *out = NULL;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    det_indicators *set = calloc(1, sizeof *set);
    if (set == NULL)
        goto out;
    randombytes_buf(set->hash_key, sizeof set->hash_key);
    set->slot_capacity = 1024;
    set->slots = calloc(set->slot_capacity, sizeof *set->slots);
    if (set->slots == NULL)
        goto out;
    rc = trie_init(&set->trie4);
    if (rc == FV_OK)
        rc = trie_init(&set->trie6);
    if (rc != FV_OK)
        goto out;
    *out = set;
    set = NULL;
out:
    det_indicators_destroy(&set);
    return rc;
}

void det_indicators_destroy(det_indicators **set)
{
    if (set == NULL || *set == NULL)
        return;
    det_indicators *s = *set;
    free(s->entries);
    free(s->keys);
    free(s->slots);
    free(s->trie4.nodes);
    free(s->trie6.nodes);
    free(s);
    *set = NULL;
}

size_t det_indicators_count(const det_indicators *set)
{
    return set->entry_count;
}

static uint64_t key_hash(const det_indicators *set, const uint8_t *key, size_t len)
{
    uint8_t digest[crypto_shorthash_BYTES];
    crypto_shorthash(digest, key, len, set->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];
    return h;
}

static const uint8_t *entry_key(const det_indicators *set, const ind_entry *e)
{
    return set->keys + e->key_offset;
}

/* Return the slot index holding KEY, or of the empty slot to use. */
static size_t slot_find(const det_indicators *set, const uint8_t *key, size_t len, bool *found)
{
    size_t mask = set->slot_capacity - 1;
    size_t i = (size_t)key_hash(set, key, len) & mask;
    while (set->slots[i] != 0) {
        const ind_entry *e = &set->entries[set->slots[i] - 1];
        if (e->key_len == len && memcmp(entry_key(set, e), key, len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
    *found = false;
    return i;
}

static int slots_grow(det_indicators *set)
{
    size_t capacity = set->slot_capacity * 2;
    uint32_t *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return FV_ERR_NOMEM;
    for (size_t i = 0; i < set->slot_capacity; i++) {
        uint32_t id = set->slots[i];
        if (id == 0)
            continue;
        const ind_entry *e = &set->entries[id - 1];
        size_t j = (size_t)key_hash(set, entry_key(set, e), e->key_len) & (capacity - 1);
        while (slots[j] != 0)
            j = (j + 1) & (capacity - 1);
        slots[j] = id;
    }
    free(set->slots);
    set->slots = slots;
    set->slot_capacity = capacity;
    return FV_OK;
}

/* Append an entry (KEY may be NULL for networks). Returns its id in *ID. */
static int entry_append(det_indicators *set, const uint8_t *key, size_t key_len, uint8_t type,
                        uint16_t list, uint8_t severity, uint32_t line, uint32_t *id)
{
    if (set->entry_count >= DET_IND_MAX_ENTRIES)
        return FV_ERR_FULL;
    if (set->entry_count == set->entry_capacity) {
        size_t capacity = set->entry_capacity == 0 ? 256 : set->entry_capacity * 2;
        ind_entry *entries = realloc(set->entries, capacity * sizeof *entries);
        if (entries == NULL)
            return FV_ERR_NOMEM;
        set->entries = entries;
        set->entry_capacity = capacity;
    }
    if (key_len > set->keys_capacity - set->keys_len) {
        size_t capacity = set->keys_capacity == 0 ? 4096 : set->keys_capacity;
        while (key_len > capacity - set->keys_len)
            capacity *= 2;
        uint8_t *keys = realloc(set->keys, capacity);
        if (keys == NULL)
            return FV_ERR_NOMEM;
        set->keys = keys;
        set->keys_capacity = capacity;
    }
    ind_entry *e = &set->entries[set->entry_count];
    e->key_offset = (uint32_t)set->keys_len;
    e->key_len = (uint16_t)key_len;
    e->list = list;
    e->type = type;
    e->severity = severity;
    e->line = line;
    if (key_len > 0) {
        memcpy(set->keys + set->keys_len, key, key_len);
        set->keys_len += key_len;
    }
    *id = (uint32_t)set->entry_count++;
    return FV_OK;
}

/* Add an exact entry. Returns FV_OK, IND_DUPLICATE, FV_ERR_FULL or FV_ERR_NOMEM. */
static int add_exact(det_indicators *set, const uint8_t *key, size_t key_len, uint8_t type,
                     uint16_t list, uint8_t severity, uint32_t line)
{
    if ((set->slot_used + 1) * 4 > set->slot_capacity * 3) {
        int rc = slots_grow(set);
        if (rc != FV_OK)
            return rc;
    }
    bool found;
    size_t slot = slot_find(set, key, key_len, &found);
    if (found)
        return IND_DUPLICATE;
    uint32_t id;
    int rc = entry_append(set, key, key_len, type, list, severity, line, &id);
    if (rc != FV_OK)
        return rc;
    set->slots[slot] = id + 1;
    set->slot_used++;
    return FV_OK;
}

static int trie_node_new(ind_trie *t, uint32_t *index)
{
    if (t->count == t->capacity) {
        size_t capacity = t->capacity * 2;
        ind_trie_node *nodes = realloc(t->nodes, capacity * sizeof *nodes);
        if (nodes == NULL)
            return FV_ERR_NOMEM;
        t->nodes = nodes;
        t->capacity = capacity;
    }
    ind_trie_node *n = &t->nodes[t->count];
    n->child[0] = n->child[1] = 0;
    n->entry = -1;
    *index = (uint32_t)t->count++;
    return FV_OK;
}

static unsigned addr_bit(const uint8_t *addr, unsigned i)
{
    return (addr[i / 8] >> (7 - i % 8)) & 1u;
}

static int add_network(det_indicators *set, int family, const uint8_t addr[16], unsigned prefix,
                       uint16_t list, uint8_t severity, uint32_t line)
{
    ind_trie *t = family == 4 ? &set->trie4 : &set->trie6;
    uint32_t node = 0;
    for (unsigned i = 0; i < prefix; i++) {
        unsigned bit = addr_bit(addr, i);
        uint32_t next = t->nodes[node].child[bit];
        if (next == 0) {
            int rc = trie_node_new(t, &next);
            if (rc != FV_OK)
                return rc;
            t->nodes[node].child[bit] = next;
        }
        node = next;
    }
    if (t->nodes[node].entry >= 0)
        return IND_DUPLICATE;
    uint32_t id;
    int rc = entry_append(set, NULL, 0, DET_IND_CIDR, list, severity, line, &id);
    if (rc != FV_OK)
        return rc;
    t->nodes[node].entry = (int32_t)id;
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Value syntax                                                            */
/* ---------------------------------------------------------------------- */

/* A parsed indicator: TYPE and either an address or a normalized text. */
typedef struct ind_value {
    uint8_t type;
    int family;
    uint8_t addr[16];
    unsigned prefix;
    char text[FV_NAME_MAX];
    const char *error; /* reason and fix when type is 0 */
} ind_value;

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void lower_copy(const char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        out[i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    out[len] = '\0';
}

static bool all_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_hex(s[i]))
            return false;
    }
    return true;
}

static bool parse_ja3(const char *s, size_t len, ind_value *v)
{
    if (len != 32 || !all_hex(s, len))
        return false;
    lower_copy(s, len, v->text);
    v->type = DET_IND_JA3;
    return true;
}

/*
 * JA4 (FoxIO): "t13d1516h2_8daaf6152771_b186095e22b6": protocol t/q/d,
 * two version characters, d (domain SNI) or i (no SNI), two digits of
 * cipher count, two of extension count, two ALPN characters, then two
 * 12-hex-digit hashes separated by '_'.
 */
static bool parse_ja4(const char *s, size_t len, ind_value *v)
{
    if (len != 36)
        return false;
    /* OR 0x20 lower-cases an ASCII letter. */
    char p = (char)(s[0] | 0x20);
    char sni = (char)(s[3] | 0x20);
    if ((p != 't' && p != 'q' && p != 'd') || !is_alnum(s[1]) || !is_alnum(s[2]) ||
        (sni != 'd' && sni != 'i'))
        return false;
    if (!is_digit(s[4]) || !is_digit(s[5]) || !is_digit(s[6]) || !is_digit(s[7]) ||
        !is_alnum(s[8]) || !is_alnum(s[9]))
        return false;
    if (s[10] != '_' || s[23] != '_' || !all_hex(s + 11, 12) || !all_hex(s + 24, 12))
        return false;
    lower_copy(s, len, v->text);
    v->type = DET_IND_JA4;
    return true;
}

static bool parse_address(const char *s, size_t len, ind_value *v)
{
    char text[64];
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    memset(v->addr, 0, sizeof v->addr);
    if (inet_pton(AF_INET, text, v->addr) == 1) {
        v->family = 4;
        v->type = DET_IND_IPV4;
        return true;
    }
    if (strchr(text, ':') != NULL && inet_pton(AF_INET6, text, v->addr) == 1) {
        v->family = 6;
        v->type = DET_IND_IPV6;
        return true;
    }
    return false;
}

static bool parse_cidr(const char *s, size_t len, ind_value *v)
{
    const char *slash = memchr(s, '/', len);
    if (slash == NULL)
        return false;
    if (!parse_address(s, (size_t)(slash - s), v)) {
        v->error = "the network address before '/' is not a valid IPv4 or IPv6 address; fix it";
        return false;
    }
    size_t digits = len - (size_t)(slash - s) - 1;
    unsigned max = v->family == 4 ? 32 : 128;
    unsigned prefix = 0;
    if (digits == 0 || digits > 3) {
        v->error = "the prefix length after '/' is missing or too long; write e.g. /24";
        return false;
    }
    for (size_t i = 0; i < digits; i++) {
        if (!is_digit(slash[1 + i])) {
            v->error = "the prefix length after '/' is not a number; write e.g. /24";
            return false;
        }
        prefix = prefix * 10 + (unsigned)(slash[1 + i] - '0');
    }
    if (prefix > max) {
        v->error = v->family == 4 ? "the prefix length is above 32; use 0 to 32 for IPv4"
                                  : "the prefix length is above 128; use 0 to 128 for IPv6";
        return false;
    }
    /* Host bits below the prefix are cleared: 10.0.0.5/24 means 10.0.0.0/24. */
    for (unsigned i = prefix; i < max; i++)
        v->addr[i / 8] &= (uint8_t) ~(1u << (7 - i % 8));
    v->prefix = prefix;
    v->type = DET_IND_CIDR;
    return true;
}

/* A domain: labels of letters, digits, '-' and '_', at least two labels.
 * A leading "*." or "." and one trailing dot are dropped. */
static bool parse_domain(const char *s, size_t len, ind_value *v)
{
    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        len -= 2;
    } else if (len >= 1 && s[0] == '.') {
        s++;
        len--;
    }
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return false;
    size_t label = 0, labels = 0;
    bool letter = false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || label > 63)
                return false;
            labels++;
            label = 0;
            continue;
        }
        char c = s[i];
        if (!is_alnum(c) && c != '-' && c != '_')
            return false;
        letter = letter || !is_digit(c);
        label++;
    }
    if (labels < 2 || !letter)
        return false;
    lower_copy(s, len, v->text);
    v->type = DET_IND_DOMAIN;
    return true;
}

/* Detect the type of S (LEN bytes). On failure v->type is 0 and
 * v->error names the reason and the fix. */
static void parse_any(const char *s, size_t len, ind_value *v)
{
    memset(v, 0, sizeof *v);
    if (memchr(s, '/', len) != NULL) {
        if (!parse_cidr(s, len, v)) {
            v->type = 0; /* parse_cidr may have parsed the address part */
            if (v->error == NULL)
                v->error = "not a valid network; write ADDRESS/PREFIX such as 192.0.2.0/24";
        }
        return;
    }
    if (parse_address(s, len, v) || parse_ja3(s, len, v) || parse_ja4(s, len, v) ||
        parse_domain(s, len, v))
        return;
    v->type = 0;
    if (len > 0 && all_hex(s, len)) {
        v->error = "hex digits but not 32 of them; a JA3 value is 32 hex digits";
        return;
    }
    if (len > 0 && memchr(s, '.', len) == NULL) {
        v->error = "a single label is not a domain indicator; write at least two labels such as "
                   "evil.example";
        return;
    }
    v->error = "not an IPv4 or IPv6 address, network, domain, JA3 (32 hex digits) or JA4 "
               "value; correct the value or remove the line";
}

/* Parse S as TYPE_NAME (a CSV type column, LEN bytes). */
static void parse_typed(const char *s, size_t len, const char *type_name, ind_value *v)
{
    if (type_name[0] == '\0') {
        parse_any(s, len, v);
        return;
    }
    memset(v, 0, sizeof *v);
    bool ok;
    if (strcmp(type_name, "ip") == 0 || strcmp(type_name, "ipv4") == 0 ||
        strcmp(type_name, "ipv6") == 0 || strcmp(type_name, "address") == 0) {
        ok = parse_address(s, len, v);
        if (ok && ((strcmp(type_name, "ipv4") == 0 && v->family != 4) ||
                   (strcmp(type_name, "ipv6") == 0 && v->family != 6)))
            ok = false;
        if (!ok)
            v->error = "the value is not an address of the given type; fix the value or the type";
    } else if (strcmp(type_name, "cidr") == 0 || strcmp(type_name, "net") == 0 ||
               strcmp(type_name, "network") == 0) {
        ok = parse_cidr(s, len, v);
        if (!ok && v->error == NULL)
            v->error = "the value is not a network; write ADDRESS/PREFIX such as 192.0.2.0/24";
    } else if (strcmp(type_name, "domain") == 0 || strcmp(type_name, "hostname") == 0) {
        ok = parse_domain(s, len, v);
        if (!ok)
            v->error = "the value is not a domain name of two or more labels; fix the value";
    } else if (strcmp(type_name, "ja3") == 0) {
        ok = parse_ja3(s, len, v);
        if (!ok)
            v->error = "a JA3 value is 32 hex digits; fix the value";
    } else if (strcmp(type_name, "ja4") == 0) {
        ok = parse_ja4(s, len, v);
        if (!ok)
            v->error = "the value is not a JA4 fingerprint such as t13d1516h2_8daaf6152771_"
                       "b186095e22b6; fix the value";
    } else {
        ok = false;
        v->error = "unknown type; use ip, ipv4, ipv6, cidr, domain, ja3 or ja4";
    }
    if (!ok)
        v->type = 0; /* a partial parse may have set it */
}

/* ---------------------------------------------------------------------- */
/* Loading                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct load_ctx {
    det_indicators *set;
    const char *name;
    uint16_t list;
    uint8_t severity;
    det_indicator_error_fn on_error;
    void *error_ctx;
    det_indicator_counts *counts;
} load_ctx;

/* Report LINE's error REASON, quoting up to DET_IND_SHOWN_MAX printable
 * characters of VALUE (may be NULL). */
static void report(load_ctx *c, uint32_t line, const char *reason, const char *value,
                   size_t value_len)
{
    c->counts->rejected++;
    if (c->on_error == NULL)
        return;
    char shown[DET_IND_SHOWN_MAX + 4];
    size_t n = 0;
    for (size_t i = 0; value != NULL && i < value_len && n < DET_IND_SHOWN_MAX; i++)
        shown[n++] = (char)((value[i] >= 0x20 && value[i] < 0x7f) ? value[i] : '?');
    if (value != NULL && value_len > DET_IND_SHOWN_MAX) {
        memcpy(shown + n, "...", 3);
        n += 3;
    }
    shown[n] = '\0';
    char message[512];
    if (value != NULL)
        snprintf(message, sizeof message, "%s:%u: \"%s\": %s", c->name, (unsigned)line, shown,
                 reason);
    else
        snprintf(message, sizeof message, "%s:%u: %s", c->name, (unsigned)line, reason);
    c->on_error(c->error_ctx, message);
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r'))
        (*len)--;
}

/* Add V from LINE. Returns FV_OK or a fatal error (FV_ERR_NOMEM, FV_ERR_FULL). */
static int add_value(load_ctx *c, uint32_t line, const ind_value *v, const char *raw,
                     size_t raw_len)
{
    uint8_t key[1 + FV_NAME_MAX];
    size_t key_len = 0;
    int rc;

    switch (v->type) {
    case DET_IND_CIDR:
        rc = add_network(c->set, v->family, v->addr, v->prefix, c->list, c->severity, line);
        break;
    case DET_IND_IPV4:
    case DET_IND_IPV6:
        key[0] = v->family == 4 ? KEY_IPV4 : KEY_IPV6;
        key_len = v->family == 4 ? 4 : 16;
        memcpy(key + 1, v->addr, key_len);
        rc = add_exact(c->set, key, key_len + 1, v->type, c->list, c->severity, line);
        break;
    default:
        key[0] = v->type == DET_IND_DOMAIN ? KEY_DOMAIN
                 : v->type == DET_IND_JA3  ? KEY_JA3
                                           : KEY_JA4;
        key_len = strlen(v->text);
        memcpy(key + 1, v->text, key_len);
        rc = add_exact(c->set, key, key_len + 1, v->type, c->list, c->severity, line);
        break;
    }
    if (rc == FV_OK) {
        c->counts->loaded[v->type]++;
        return FV_OK;
    }
    if (rc == IND_DUPLICATE) {
        c->counts->duplicates++;
        return FV_OK;
    }
    if (rc == FV_ERR_FULL)
        report(c, line, "more than 16777216 indicators in all lists; split or shorten the lists",
               raw, raw_len);
    return rc;
}

static bool is_header(const char *field, size_t len)
{
    static const char *const names[] = {"indicator", "value", "ioc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if (len == n && strncasecmp(field, names[i], n) == 0)
            return true;
    }
    return false;
}

/* Split the next CSV field off *LINE (LEN). Fields may be in double
 * quotes, without commas inside. */
static void csv_field(const char **line, size_t *len, const char **field, size_t *field_len)
{
    const char *comma = memchr(*line, ',', *len);
    size_t n = comma != NULL ? (size_t)(comma - *line) : *len;
    *field = *line;
    *field_len = n;
    trim(field, field_len);
    if (*field_len >= 2 && (*field)[0] == '"' && (*field)[*field_len - 1] == '"') {
        (*field)++;
        *field_len -= 2;
    }
    if (comma != NULL) {
        *line = comma + 1;
        *len -= n + 1;
    } else {
        *line += n;
        *len = 0;
    }
}

static int load_line(load_ctx *c, uint32_t line, const char *s, size_t len, uint8_t format,
                     bool *header_allowed)
{
    trim(&s, &len);
    if (len == 0 || s[0] == '#')
        return FV_OK;
    if (len > DET_IND_LINE_MAX) {
        report(c, line, "line longer than 1024 bytes; put one indicator per line", NULL, 0);
        return FV_OK;
    }

    ind_value v;
    if (format == 0) {
        /* One value, optionally followed by whitespace and a '#' comment. */
        size_t n = 0;
        while (n < len && s[n] != ' ' && s[n] != '\t')
            n++;
        const char *rest = s + n;
        size_t rest_len = len - n;
        trim(&rest, &rest_len);
        if (rest_len > 0 && rest[0] != '#') {
            report(c, line,
                   "text after the indicator; write one indicator per line, comments after '#'", s,
                   len);
            return FV_OK;
        }
        parse_any(s, n, &v);
        if (v.type == 0) {
            report(c, line, v.error, s, n);
            return FV_OK;
        }
        return add_value(c, line, &v, s, n);
    }

    const char *value, *type_field;
    size_t value_len, type_len;
    const char *rest = s;
    size_t rest_len = len;
    csv_field(&rest, &rest_len, &value, &value_len);
    csv_field(&rest, &rest_len, &type_field, &type_len);
    bool first = *header_allowed;
    *header_allowed = false;
    if (first && is_header(value, value_len))
        return FV_OK;
    if (value_len == 0) {
        report(c, line, "empty indicator field; write indicator,type[,note]", NULL, 0);
        return FV_OK;
    }
    char type_name[16];
    if (type_len >= sizeof type_name) {
        report(c, line, "unknown type; use ip, ipv4, ipv6, cidr, domain, ja3 or ja4", type_field,
               type_len);
        return FV_OK;
    }
    lower_copy(type_field, type_len, type_name);
    parse_typed(value, value_len, type_name, &v);
    if (v.type == 0) {
        report(c, line, v.error, value, value_len);
        return FV_OK;
    }
    return add_value(c, line, &v, value, value_len);
}

int det_indicators_load_buffer(det_indicators *set, const char *name, const char *text, size_t len,
                               uint8_t format, uint16_t list, uint8_t severity,
                               det_indicator_error_fn on_error, void *ctx,
                               det_indicator_counts *counts)
{
    if (format > 1)
        return FV_ERR_INVALID;
    det_indicator_counts unused;
    memset(&unused, 0, sizeof unused);
    load_ctx c = {
        .set = set,
        .name = name,
        .list = list,
        .severity = severity,
        .on_error = on_error,
        .error_ctx = ctx,
        .counts = counts != NULL ? counts : &unused,
    };

    bool header_allowed = true;
    uint32_t line = 0;
    size_t pos = 0;
    /* Editors on Windows start UTF-8 files with a byte order mark. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        line++;
        if (memchr(start, '\0', n) != NULL) {
            report(&c, line, "NUL byte in the line; the file must be text", NULL, 0);
        } else {
            int rc = load_line(&c, line, start, n, format, &header_allowed);
            if (rc != FV_OK)
                return rc;
        }
        pos += n + (nl != NULL ? 1 : 0);
    }
    return FV_OK;
}

int det_indicators_load_file(det_indicators *set, const char *path, uint8_t format, uint16_t list,
                             uint8_t severity, det_indicator_error_fn on_error, void *ctx,
                             det_indicator_counts *counts, char *err, size_t err_len)
{
    int rc = FV_OK;
    char *text = NULL;
    /* A FIFO or device would block the open or the read forever. */
    char open_err[768];
    FILE *f = fv_fopen_regular_file(path, open_err, sizeof open_err);
    if (f == NULL) {
        int e = errno;
        /* EISDIR and EINVAL: a directory, FIFO or device, named in OPEN_ERR. */
        if (e == EISDIR || e == EINVAL)
            snprintf(err, err_len, "indicator list: %s; fix the path in detect.indicators.files",
                     open_err);
        else
            snprintf(err, err_len,
                     "%s: cannot open the indicator list: %s; fix the path in "
                     "detect.indicators.files",
                     path, strerror(e));
        return FV_ERR_IO;
    }
    text = malloc(DET_IND_MAX_FILE_BYTES + 1);
    if (text == NULL) {
        rc = FV_ERR_NOMEM;
        snprintf(err, err_len, "%s: out of memory reading the indicator list", path);
        goto out;
    }
    size_t len = fread(text, 1, DET_IND_MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        rc = FV_ERR_IO;
        snprintf(err, err_len, "%s: cannot read the indicator list: %s", path, strerror(errno));
        goto out;
    }
    if (len > DET_IND_MAX_FILE_BYTES) {
        rc = FV_ERR_FULL;
        snprintf(err, err_len,
                 "%s: the indicator list is larger than 64 MiB; split it into "
                 "several files",
                 path);
        goto out;
    }
    /* A NUL byte marks a binary file (a capture, an archive): one error
     * instead of an error per line that would quote its bytes. */
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL) {
        rc = FV_ERR_PARSE;
        snprintf(err, err_len,
                 "%s: not a text file (byte %zu is NUL); an indicator list has one address, "
                 "network or domain per line; fix the path in detect.indicators.files",
                 path, (size_t)(nul - text) + 1);
        goto out;
    }
    rc = det_indicators_load_buffer(set, path, text, len, format, list, severity, on_error, ctx,
                                    counts);
    if (rc != FV_OK)
        snprintf(err, err_len, "%s: cannot load the indicator list: %s", path, fv_strerror(rc));
out:
    free(text);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Matching                                                                */
/* ---------------------------------------------------------------------- */

static void fill_hit(const det_indicators *set, uint32_t id, det_indicator_hit *hit)
{
    const ind_entry *e = &set->entries[id];
    hit->entry_id = id;
    hit->list = e->list;
    hit->type = e->type;
    hit->severity = e->severity;
    hit->line = e->line;
}

static bool lookup_exact(const det_indicators *set, const uint8_t *key, size_t len,
                         det_indicator_hit *hit)
{
    if (set->slot_used == 0)
        return false;
    bool found;
    size_t slot = slot_find(set, key, len, &found);
    if (found)
        fill_hit(set, set->slots[slot] - 1, hit);
    return found;
}

bool det_indicators_match_addr(const det_indicators *set, int family, const uint8_t addr[16],
                               det_indicator_hit *hit)
{
    if (family != 4 && family != 6)
        return false;
    uint8_t key[17];
    size_t n = family == 4 ? 4 : 16;
    key[0] = family == 4 ? KEY_IPV4 : KEY_IPV6;
    memcpy(key + 1, addr, n);
    if (lookup_exact(set, key, n + 1, hit))
        return true;

    const ind_trie *t = family == 4 ? &set->trie4 : &set->trie6;
    int32_t best = t->nodes[0].entry;
    uint32_t node = 0;
    for (unsigned i = 0; i < n * 8; i++) {
        node = t->nodes[node].child[addr_bit(addr, i)];
        if (node == 0)
            break;
        if (t->nodes[node].entry >= 0)
            best = t->nodes[node].entry;
    }
    if (best < 0)
        return false;
    fill_hit(set, (uint32_t)best, hit);
    return true;
}

bool det_indicators_match_domain(const det_indicators *set, const char *name,
                                 det_indicator_hit *hit)
{
    uint8_t key[1 + FV_NAME_MAX];
    size_t len = strnlen(name, FV_NAME_MAX - 1);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0)
        return false;
    key[0] = KEY_DOMAIN;
    lower_copy(name, len, (char *)key + 1);

    /* The name itself, then each parent at a label boundary. The key of
     * the suffix at name offset OFF starts at key[OFF], where the class
     * byte overwrites the '.' before it. */
    size_t off = 0;
    for (;;) {
        key[off] = KEY_DOMAIN;
        if (lookup_exact(set, key + off, len - off + 1, hit))
            return true;
        const uint8_t *dot = memchr(key + off + 1, '.', len - off);
        if (dot == NULL)
            return false;
        off = (size_t)(dot - key);
    }
}

bool det_indicators_match_fingerprint(const det_indicators *set, int type, const char *text,
                                      det_indicator_hit *hit)
{
    if (type != DET_IND_JA3 && type != DET_IND_JA4)
        return false;
    size_t len = strnlen(text, 64);
    if (len == 0 || len >= 64)
        return false;
    uint8_t key[65];
    key[0] = type == DET_IND_JA3 ? KEY_JA3 : KEY_JA4;
    lower_copy(text, len, (char *)key + 1);
    return lookup_exact(set, key, len + 1, hit);
}

/* Depth-first walk of trie T below NODE, whose path so far is ADDR's
 * first DEPTH bits. The depth is at most 128, so recursion is bounded. */
static void trie_walk(const det_indicators *set, const ind_trie *t, int family, uint32_t node,
                      uint8_t addr[16], unsigned depth, det_indicator_network_fn fn, void *ctx)
{
    const ind_trie_node *n = &t->nodes[node];
    if (n->entry >= 0) {
        const ind_entry *e = &set->entries[n->entry];
        fn(ctx, family, addr, depth, e->list, e->line);
    }
    for (unsigned bit = 0; bit < 2; bit++) {
        if (n->child[bit] == 0 || depth >= (family == 4 ? 32u : 128u))
            continue;
        uint8_t mask = (uint8_t)(0x80u >> (depth % 8));
        if (bit)
            addr[depth / 8] |= mask;
        else
            addr[depth / 8] &= (uint8_t)~mask;
        trie_walk(set, t, family, n->child[bit], addr, depth + 1, fn, ctx);
        addr[depth / 8] &= (uint8_t)~mask;
    }
}

void det_indicators_each_network(const det_indicators *set, det_indicator_network_fn fn,
                                 void *ctx)
{
    if (set == NULL || fn == NULL)
        return;
    for (size_t i = 0; i < set->entry_count; i++) {
        const ind_entry *e = &set->entries[i];
        if (e->type != DET_IND_IPV4 && e->type != DET_IND_IPV6)
            continue;
        uint8_t addr[16] = {0};
        size_t len = e->type == DET_IND_IPV4 ? 4 : 16;
        memcpy(addr, set->keys + e->key_offset + 1, len);
        fn(ctx, e->type == DET_IND_IPV4 ? 4 : 6, addr, (unsigned)len * 8, e->list, e->line);
    }
    uint8_t addr[16] = {0};
    if (set->trie4.count > 0)
        trie_walk(set, &set->trie4, 4, 0, addr, 0, fn, ctx);
    memset(addr, 0, sizeof addr);
    if (set->trie6.count > 0)
        trie_walk(set, &set->trie6, 6, 0, addr, 0, fn, ctx);
}
