/*
 * det_dns.c: DNS tunnelling and algorithmically generated names (DGA).
 *
 * Tunnelling. Per (client, registrable domain) and tumbling window of
 * detect.dns_tunnel.window seconds, over the client's queries (not the
 * answers, so each message counts once):
 * - unique names under the domain;
 * - mean length of the longest label left of the registrable domain,
 *   and the Shannon entropy of all characters left of it, both over
 *   unique names only;
 * - the share of TXT, NULL and CNAME queries, the types tunnels use to
 *   carry data back.
 * A window alerts when it has at least min_subdomains unique names and
 * at least two of: mean label length >= min_label_len, entropy >=
 * min_entropy, typed share >= 0.5. Requiring two keeps CDN clients quiet:
 * their names are many and can look random, but their labels are short
 * and their queries are A and AAAA.
 *
 * DGA. Per client and tumbling window of detect.dga.window seconds: the
 * unique names answered NXDOMAIN, the share of NXDOMAIN among all
 * answers, and a character score per failed name, computed on its
 * longest label left of the public suffix:
 *   0.60 x rare-bigram share / 0.4 (capped at 1)
 * + 0.25 x the larger of: consonant run (run of 5+: 1, 4: 0.75, 3: 0.25)
 *          and digit ratio x 3 (capped at 1; only when letters mix in)
 * + 0.15 x (entropy - 2.5 bits) / 1.5 bits (clamped to 0..1)
 * scaled down for labels under 6 characters. A window alerts when it has
 * at least min_nxdomain unique failed names and their mean score is at
 * least min_score. Typing mistakes give few failed names and
 * pronounceable ones, so they stay below both.
 *
 * A bigram is rare when it never occurs in det_dns_words below, a list
 * of common English words and words frequent in domain names, written
 * for this file. The table is counted from it at create time.
 *
 * Allow-lists. A query (tunnel) or answer (DGA) whose name equals or ends
 * in ".SUFFIX" for a suffix on detect.dns_tunnel.allow or detect.dga.allow
 * is skipped before any counting, so it neither raises nor dilutes an
 * alert. Services that encode data in names by design (anti-virus and
 * reputation look-ups, some CDNs' telemetry) belong there.
 *
 * Registrable domains come from libpsl (the newest of the system list
 * and libpsl's built-in one); without a list the last two labels are
 * used. With domains.mode registrable or pseudonymize the names reaching
 * the detectors are already cut or replaced by tokens, so tunnelling
 * cannot be seen and the DGA score only sees tokens.
 *
 * Bounds: DET_DNS_MAX_ENTRIES (client, domain) pairs and clients each,
 * least recently seen evicted; DET_DNS_NAMES_MAX unique names counted
 * per entry and window (the count saturates there).
 */
#include "det_internal.h"
#include "det_lru.h"
#include "detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpsl.h>
#include <sodium.h>

#define DET_DNS_MAX_ENTRIES 16384
#define DET_DNS_NAMES_MAX 4096
#define DET_DNS_ALPHABET 39 /* a-z, 0-9, '-', '_', anything else */
#define DET_DNS_TYPED_SHARE 0.5
#define DET_DGA_RARE_FULL 0.4 /* rare-bigram share that scores 1 */
#define DET_DGA_SHORT_LABEL 6

#define DNS_TYPE_CNAME 5
#define DNS_TYPE_NULL 10
#define DNS_TYPE_TXT 16
#define DNS_RCODE_NXDOMAIN 3

/* ---------------------------------------------------------------------- */
/* Bigram source                                                           */
/* ---------------------------------------------------------------------- */

/* Common English words and words frequent in host and domain names. */
/* clang-format off */
static const char *const det_dns_words[] = {
    "the", "and", "that", "have", "for", "not", "with", "you", "this", "but", "his", "from",
    "they", "say", "her", "she", "will", "one", "all", "would", "there", "their", "what",
    "out", "about", "who", "get", "which", "when", "make", "can", "like", "time", "just",
    "him", "know", "take", "people", "into", "year", "your", "good", "some", "could", "them",
    "see", "other", "than", "then", "now", "look", "only", "come", "its", "over", "think",
    "also", "back", "after", "use", "two", "how", "our", "work", "first", "well", "way",
    "even", "new", "want", "because", "any", "these", "give", "day", "most", "world",
    "great", "between", "through", "under", "water", "light", "night", "right", "place",
    "small", "large", "number", "point", "should", "change", "never", "house", "school",
    "question", "quick", "quiet", "quality", "zone", "size", "amazing", "puzzle", "jazz",
    "exact", "example", "extra", "next", "box", "fox", "mix", "sync", "gym", "yes", "yellow",
    "young", "voice", "value", "video", "visit", "view", "very", "every", "give", "above",
    "knowledge", "judge", "enjoy", "major", "object", "subject", "project", "awkward",
    "mail", "email", "cloud", "login", "secure", "security", "update", "updates", "online",
    "shop", "store", "news", "api", "cdn", "static", "media", "image", "images", "assets",
    "service", "services", "server", "account", "accounts", "office", "microsoft", "google",
    "apple", "amazon", "facebook", "twitter", "github", "youtube", "netflix", "wikipedia",
    "yahoo", "bing", "live", "outlook", "windows", "linux", "ubuntu", "debian", "mozilla",
    "firefox", "chrome", "edge", "adobe", "oracle", "cisco", "intel", "dell", "support",
    "help", "docs", "download", "downloads", "portal", "web", "website", "internet", "net",
    "network", "data", "analytics", "metrics", "tracking", "track", "ads", "advert", "banner",
    "content", "delivery", "global", "local", "edge", "cache", "proxy", "gateway", "router",
    "bank", "banking", "finance", "pay", "payment", "payments", "wallet", "crypto", "market",
    "travel", "hotel", "flight", "booking", "weather", "sports", "games", "game", "play",
    "music", "radio", "stream", "streaming", "photo", "photos", "blog", "forum", "chat",
    "social", "search", "maps", "drive", "files", "share", "sharing", "storage", "backup",
    "status", "health", "time", "clock", "calendar", "contacts", "people", "team", "teams",
    "meet", "zoom", "slack", "discord", "telegram", "whatsapp", "signal", "phone", "mobile",
    "app", "apps", "store", "software", "hardware", "system", "systems", "tech", "digital",
    "smart", "home", "house", "city", "state", "country", "national", "university", "college",
    "library", "hospital", "clinic", "medical", "doctor", "pharmacy", "school", "learning",
    "education", "research", "science", "journal", "press", "times", "post", "daily",
    "weekly", "express", "herald", "tribune", "gazette", "review", "report", "magazine",
    "fashion", "style", "beauty", "food", "recipes", "kitchen", "garden", "pets", "cars",
    "auto", "motors", "energy", "power", "electric", "solar", "green", "blue", "black",
    "white", "red", "orange", "purple", "silver", "gold", "diamond", "star", "sun", "moon",
    "sky", "ocean", "river", "mountain", "valley", "forest", "island", "north", "south",
    "east", "west", "central", "united", "group", "company", "corporation", "industries",
    "solutions", "consulting", "partners", "agency", "studio", "design", "creative",
    "marketing", "sales", "shopping", "deals", "offers", "coupon", "discount", "free",
    "premium", "plus", "pro", "express", "direct", "first", "best", "top", "prime", "smart",
    "easy", "fast", "quick", "simple", "open", "source", "code", "developer", "developers",
    "platform", "connect", "link", "links", "click", "redirect", "short", "auth", "identity",
    "token", "verify", "validation", "certificate", "telemetry", "events", "logs", "monitor",
    "config", "settings", "admin", "dashboard", "console", "manager", "management", "control",
    "remote", "access", "vpn", "firewall", "antivirus", "defender", "protection", "threat",
    "intelligence", "response", "incident", "insurance", "legal", "government", "public",
    "private", "personal", "business", "enterprise", "customer", "client", "partner",
    "community", "foundation", "charity", "church", "museum", "gallery", "theatre", "cinema",
    "movies", "television", "channel", "broadcast", "podcast", "episode", "season", "series",
    "jobs", "careers", "hiring", "resume", "profile", "members", "member", "register",
    "signup", "welcome", "index", "main", "default", "test", "demo", "dev", "staging",
    "production", "prod", "beta", "alpha", "release", "version", "mirror", "archive",
};
/* clang-format on */

/* ---------------------------------------------------------------------- */
/* State                                                                   */
/* ---------------------------------------------------------------------- */

/* Open-addressing set of 64-bit name hashes (0 means empty). */
typedef struct name_set {
    uint64_t *slots;
    uint32_t capacity; /* power of two, or 0 */
    uint32_t count;
} name_set;

typedef struct tunnel_key {
    det_host_key client;
    uint8_t domain_hash[8];
} tunnel_key;

typedef struct tunnel_snapshot {
    uint64_t first_us, last_us;
    uint32_t unique, queries;
    double mean_label_len, entropy, typed_share, score;
} tunnel_snapshot;

typedef struct tunnel_entry {
    fv_endpoint client;
    char domain[FV_NAME_MAX];
    uint64_t window_start_us, first_us, last_us;
    uint32_t queries, typed_queries;
    uint64_t label_chars;     /* sum of the longest label of each unique name */
    uint32_t labels;          /* unique names with a label left of the domain */
    uint64_t subdomain_chars; /* characters in char_counts */
    uint32_t char_counts[DET_DNS_ALPHABET];
    name_set names;
    tunnel_snapshot snap; /* last qualifying state, emitted when dirty */
    bool dirty;
} tunnel_entry;

typedef struct dga_snapshot {
    uint64_t first_us, last_us;
    uint32_t nx_unique;
    double nx_rate, mean_score, mean_entropy, mean_rare, mean_digits;
} dga_snapshot;

typedef struct dga_entry {
    fv_endpoint client;
    uint64_t window_start_us, first_us, last_us;
    uint32_t responses, nx_responses;
    double score_sum, entropy_sum, rare_sum, digit_sum;
    name_set names;
    dga_snapshot snap;
    bool dirty;
} dga_entry;

/*
 * Registrable domain of a recent query name, as the offset of the domain
 * in the lower-cased name, so a repeated name costs no libpsl call. The
 * cache is direct-mapped on the keyed name hash that the detector's name
 * sets use as the name's identity. It is a 64-bit SipHash under a random
 * key, so an outsider can pick neither collisions nor cache slots.
 */
/* Slots, a power of two (16 bytes each). On the mixed benchmark capture
 * (20,000 server names, 121,842 queries) 4,096 slots missed 31% of the
 * queries and 16,384 slots miss 19%. */
#define DET_DNS_DOMAIN_CACHE 16384

typedef struct domain_cache_slot {
    uint64_t name_hash; /* text_hash of the name, 0 for an empty slot */
    uint16_t name_len;
    int16_t offset; /* of the registrable domain in the name, -1 for none */
} domain_cache_slot;

typedef struct dns_state {
    bool is_dga;
    uint64_t window_us;
    uint32_t min_count;     /* unique subdomains, or unique NXDOMAIN names */
    double min_entropy;     /* tunnel */
    uint32_t min_label_len; /* tunnel */
    double min_score;       /* DGA */
    size_t allow_count;     /* entries of detect.dns_tunnel.allow or detect.dga.allow */
    char (*allow)[256];     /* copy of that list, lower case */
    uint8_t bigram[26][26]; /* 1 when the bigram occurs in det_dns_words */
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    det_lru *entries;
    det_rekey_map rekey;
    domain_cache_slot domains[DET_DNS_DOMAIN_CACHE]; /* tunnel only */
} dns_state;

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

static void name_set_free(name_set *set)
{
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* Add H (non-zero). Returns 1 if new, 0 if present or the set is full,
 * -1 on allocation failure. */
static int name_set_add(name_set *set, uint64_t h)
{
    if (set->count >= DET_DNS_NAMES_MAX)
        return 0;
    if (set->capacity == 0 || (set->count + 1) * 2 > set->capacity) {
        uint32_t capacity = set->capacity == 0 ? 64 : set->capacity * 2;
        uint64_t *slots = calloc(capacity, sizeof *slots);
        if (slots == NULL)
            return -1;
        for (uint32_t i = 0; i < set->capacity; i++) {
            uint64_t v = set->slots[i];
            if (v == 0)
                continue;
            uint32_t j = (uint32_t)v & (capacity - 1);
            while (slots[j] != 0)
                j = (j + 1) & (capacity - 1);
            slots[j] = v;
        }
        free(set->slots);
        set->slots = slots;
        set->capacity = capacity;
    }
    uint32_t j = (uint32_t)h & (set->capacity - 1);
    while (set->slots[j] != 0) {
        if (set->slots[j] == h)
            return 0;
        j = (j + 1) & (set->capacity - 1);
    }
    set->slots[j] = h;
    set->count++;
    return 1;
}

static uint64_t text_hash(const dns_state *s, const char *text, size_t len)
{
    uint8_t digest[crypto_shorthash_BYTES];
    crypto_shorthash(digest, (const unsigned char *)text, len, s->hash_key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof digest; i++)
        h = (h << 8) | digest[i];
    return h != 0 ? h : 1;
}

static const psl_ctx_t *det_psl(void)
{
    static psl_ctx_t *latest;
    static bool loaded;
    if (!loaded) {
        loaded = true;
        latest = psl_latest(NULL);
    }
    return latest != NULL ? latest : psl_builtin();
}

/* Copy NAME lower-cased into OUT without a trailing dot. Returns the length. */
static size_t lower_name(const char *name, char out[FV_NAME_MAX])
{
    size_t n = 0;
    while (name[n] != '\0' && n + 1 < FV_NAME_MAX) {
        char c = name[n];
        out[n] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
        n++;
    }
    if (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return n;
}

/* Return the registrable domain inside NAME (lower case), or NULL. */
static const char *registrable_domain(const char *name)
{
    const psl_ctx_t *psl = det_psl();
    if (psl != NULL)
        return psl_registrable_domain(psl, name);
    const char *last = strrchr(name, '.');
    if (last == NULL || last == name)
        return NULL;
    const char *p = last;
    while (p > name && p[-1] != '.')
        p--;
    return p;
}

static unsigned alphabet_index(char c)
{
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a');
    if (c >= '0' && c <= '9')
        return 26u + (unsigned)(c - '0');
    if (c == '-')
        return 36;
    if (c == '_')
        return 37;
    return 38;
}

static double entropy_of_counts(const uint32_t *counts, size_t n, uint64_t total)
{
    if (total == 0)
        return 0.0;
    double h = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (counts[i] == 0)
            continue;
        double p = (double)counts[i] / (double)total;
        h -= p * log2(p);
    }
    return h;
}

static double clamp01(double x)
{
    if (x < 0.0)
        return 0.0;
    if (x > 1.0)
        return 1.0;
    return x;
}

/* Start a new window at TS_US when the current one has passed. */
static bool window_expired(uint64_t window_start_us, uint64_t window_us, uint64_t ts_us)
{
    return ts_us >= window_start_us && ts_us - window_start_us >= window_us;
}

static bool tunnel_enabled(const pol_detect *config)
{
    return config->dns_tunnel_enabled;
}

static bool dga_enabled(const pol_detect *config)
{
    return config->dga_enabled;
}

static void tunnel_free_value(void *value)
{
    tunnel_entry *e = value;
    name_set_free(&e->names);
}

static void dga_free_value(void *value)
{
    dga_entry *e = value;
    name_set_free(&e->names);
}

static void dns_destroy(void *state)
{
    dns_state *s = state;
    if (s == NULL)
        return;
    det_lru_destroy(&s->entries);
    det_rekey_map_end(&s->rekey);
    free(s->allow);
    free(s);
}

static void build_bigrams(dns_state *s)
{
    for (size_t w = 0; w < sizeof det_dns_words / sizeof det_dns_words[0]; w++) {
        const char *word = det_dns_words[w];
        for (size_t i = 0; word[i] != '\0' && word[i + 1] != '\0'; i++)
            s->bigram[word[i] - 'a'][word[i + 1] - 'a'] = 1;
    }
}

static dns_state *dns_create(bool is_dga)
{
    if (sodium_init() < 0)
        return NULL;
    dns_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->is_dga = is_dga;
    randombytes_buf(s->hash_key, sizeof s->hash_key);
    build_bigrams(s);
    s->entries = is_dga ? det_lru_create(sizeof(det_host_key), sizeof(dga_entry),
                                         DET_DNS_MAX_ENTRIES, dga_free_value)
                        : det_lru_create(sizeof(tunnel_key), sizeof(tunnel_entry),
                                         DET_DNS_MAX_ENTRIES, tunnel_free_value);
    if (s->entries == NULL) {
        dns_destroy(s);
        return NULL;
    }
    return s;
}

/* Copy COUNT allow-list suffixes into S. Returns false when out of memory. */
static bool dns_copy_allow(dns_state *s, const char (*allow)[256], size_t count)
{
    if (count > POL_ALLOW_MAX)
        count = POL_ALLOW_MAX;
    if (count == 0)
        return true;
    s->allow = calloc(count, sizeof *s->allow);
    if (s->allow == NULL)
        return false;
    memcpy(s->allow, allow, count * sizeof *s->allow);
    s->allow_count = count;
    return true;
}

/* True if NAME (lower case, no trailing dot, LEN bytes) is an allow-list
 * suffix or lies below one; "badexample.com" is not below "example.com". */
static bool dns_name_allowed(const dns_state *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->allow_count; i++) {
        const char *suffix = s->allow[i];
        size_t n = strnlen(suffix, sizeof s->allow[i]);
        if (n == 0 || n > len || memcmp(name + len - n, suffix, n) != 0)
            continue;
        if (n == len || name[len - n - 1] == '.')
            return true;
    }
    return false;
}

static void *tunnel_create(const pol_detect *config)
{
    dns_state *s = dns_create(false);
    if (s == NULL)
        return NULL;
    s->window_us =
        (uint64_t)(config->dns_tunnel_window_s > 0 ? config->dns_tunnel_window_s : 600) * 1000000u;
    s->min_count = config->dns_tunnel_min_subdomains > 0 ? config->dns_tunnel_min_subdomains : 1;
    s->min_entropy = config->dns_tunnel_min_entropy;
    s->min_label_len = config->dns_tunnel_min_label_len > 0 ? config->dns_tunnel_min_label_len : 1;
    if (!dns_copy_allow(s, config->dns_tunnel_allow, config->dns_tunnel_allow_count)) {
        dns_destroy(s);
        return NULL;
    }
    return s;
}

static void *dga_create(const pol_detect *config)
{
    dns_state *s = dns_create(true);
    if (s == NULL)
        return NULL;
    s->window_us = (uint64_t)(config->dga_window_s > 0 ? config->dga_window_s : 600) * 1000000u;
    s->min_count = config->dga_min_nxdomain > 0 ? config->dga_min_nxdomain : 1;
    s->min_score = config->dga_min_score;
    if (!dns_copy_allow(s, config->dga_allow, config->dga_allow_count)) {
        dns_destroy(s);
        return NULL;
    }
    return s;
}

/* True if DNS is a unicast DNS message of a client with an address. */
static bool dns_usable(const fv_dns_record *dns)
{
    return dns->protocol == FV_DNS_PROTO_DNS && dns->client.kind != FV_EP_NONE &&
           dns->qname[0] != '\0';
}

/* ---------------------------------------------------------------------- */
/* Tunnelling                                                              */
/* ---------------------------------------------------------------------- */

/* Add the characters of SUB (the part left of the registrable domain,
 * LEN bytes) and the length of its longest label. The longest label,
 * not the mean of all, because tunnels add short fixed labels (such as
 * iodine's "t") that would dilute a mean. */
static void tunnel_add_labels(tunnel_entry *e, const char *sub, size_t len)
{
    size_t label = 0, longest = 0;
    for (size_t i = 0; i < len; i++) {
        if (sub[i] == '.') {
            label = 0;
            continue;
        }
        e->char_counts[alphabet_index(sub[i])]++;
        e->subdomain_chars++;
        label++;
        if (label > longest)
            longest = label;
    }
    e->labels++;
    e->label_chars += longest;
}

static void tunnel_judge(const dns_state *s, tunnel_entry *e)
{
    uint32_t unique = e->names.count;
    if (unique < s->min_count)
        return;
    double mean_len = e->labels > 0 ? (double)e->label_chars / (double)e->labels : 0.0;
    double entropy = entropy_of_counts(e->char_counts, DET_DNS_ALPHABET, e->subdomain_chars);
    double typed = e->queries > 0 ? (double)e->typed_queries / (double)e->queries : 0.0;

    bool is_long = mean_len >= (double)s->min_label_len;
    bool is_random = entropy >= s->min_entropy;
    bool is_typed = typed >= DET_DNS_TYPED_SHARE;
    if ((int)is_long + (int)is_random + (int)is_typed < 2)
        return;

    e->snap.first_us = e->first_us;
    e->snap.last_us = e->last_us;
    e->snap.unique = unique;
    e->snap.queries = e->queries;
    e->snap.mean_label_len = mean_len;
    e->snap.entropy = entropy;
    e->snap.typed_share = typed;
    e->snap.score = (clamp01(mean_len / (double)s->min_label_len) +
                     clamp01(s->min_entropy > 0.0 ? entropy / s->min_entropy : 1.0) +
                     clamp01(typed / DET_DNS_TYPED_SHARE)) /
                    3.0;
    e->dirty = true;
}

/* Return the registrable domain inside NAME (LEN bytes, lower case, hash
 * NAME_HASH) like registrable_domain, through the cache of S. */
static const char *cached_registrable_domain(dns_state *s, const char *name, size_t len,
                                             uint64_t name_hash)
{
    domain_cache_slot *slot = &s->domains[name_hash & (DET_DNS_DOMAIN_CACHE - 1)];
    if (slot->name_hash == name_hash && slot->name_len == len)
        return slot->offset < 0 ? NULL : name + slot->offset;

    const char *domain = registrable_domain(name);
    slot->name_hash = name_hash;
    slot->name_len = (uint16_t)len;
    if (domain == NULL)
        slot->offset = -1;
    else
        slot->offset = (int16_t)(domain - name); /* a DNS name is at most 255 bytes */
    return domain;
}

static void tunnel_observe_dns(void *state, const fv_dns_record *dns)
{
    dns_state *s = state;
    if (!dns_usable(dns) || dns->is_response)
        return;

    char name[FV_NAME_MAX];
    size_t len = lower_name(dns->qname, name);
    if (dns_name_allowed(s, name, len))
        return;
    uint64_t name_hash = text_hash(s, name, len);
    const char *domain = cached_registrable_domain(s, name, len, name_hash);
    if (domain == NULL)
        return;

    tunnel_key key;
    memset(&key, 0, sizeof key);
    det_host_key_set(&key.client, &dns->client);
    uint64_t dh = text_hash(s, domain, strlen(domain));
    for (int i = 0; i < 8; i++)
        key.domain_hash[i] = (uint8_t)(dh >> (8 * i));
    bool created;
    tunnel_entry *e = det_lru_insert(s->entries, &key, &created);
    if (e == NULL)
        return;
    if (created) {
        e->client = dns->client;
        snprintf(e->domain, sizeof e->domain, "%s", domain);
    }

    if (created || window_expired(e->window_start_us, s->window_us, dns->ts_us)) {
        name_set_free(&e->names);
        e->window_start_us = dns->ts_us;
        e->first_us = dns->ts_us;
        e->queries = e->typed_queries = 0;
        e->label_chars = e->subdomain_chars = 0;
        e->labels = 0;
        memset(e->char_counts, 0, sizeof e->char_counts);
    }
    if (dns->ts_us > e->last_us)
        e->last_us = dns->ts_us;
    e->queries++;
    if (dns->qtype == DNS_TYPE_TXT || dns->qtype == DNS_TYPE_NULL || dns->qtype == DNS_TYPE_CNAME)
        e->typed_queries++;

    if (name_set_add(&e->names, name_hash) == 1) {
        size_t sub_len = (size_t)(domain - name);
        if (sub_len > 0)
            tunnel_add_labels(e, name, sub_len - 1); /* without the dot before the domain */
    }
    tunnel_judge(s, e);
}

typedef struct dns_emit_ctx {
    uint64_t now_us;
    det_emit_fn emit;
    void *engine_ctx;
} dns_emit_ctx;

static void tunnel_emit_one(void *ctx, const void *key, void *value)
{
    (void)key;
    dns_emit_ctx *c = ctx;
    tunnel_entry *e = value;
    if (!e->dirty)
        return;
    e->dirty = false;

    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = c->now_us;
    a.first_us = e->snap.first_us;
    a.last_us = e->snap.last_us;
    a.detector = FV_DET_DNS_TUNNEL;
    a.severity = FV_SEV_HIGH;
    a.score = e->snap.score;
    a.host = e->client;
    a.peer.kind = FV_EP_NONE;
    a.peer_port = 53;
    a.proto = 17;
    a.flow_count = e->snap.queries;
    a.evidence_count = DET_EV_TUNNEL_COUNT;
    a.evidence[DET_EV_TUNNEL_UNIQUE_NAMES] = e->snap.unique;
    a.evidence[DET_EV_TUNNEL_MEAN_LABEL_LEN] = e->snap.mean_label_len;
    a.evidence[DET_EV_TUNNEL_ENTROPY] = e->snap.entropy;
    a.evidence[DET_EV_TUNNEL_TYPED_SHARE] = e->snap.typed_share;
    a.evidence[DET_EV_TUNNEL_QUERIES] = e->snap.queries;
    snprintf(a.summary, sizeof a.summary,
             "DNS tunnel suspected: %u unique names under %.60s, labels %.0f chars, %.1f bits/char",
             (unsigned)e->snap.unique, e->domain, e->snap.mean_label_len, e->snap.entropy);
    c->emit(c->engine_ctx, &a);
}

/* ---------------------------------------------------------------------- */
/* DGA                                                                     */
/* ---------------------------------------------------------------------- */

typedef struct dga_name_stats {
    double score, entropy, rare_share, digit_ratio;
} dga_name_stats;

static bool is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

/* Score LABEL (LEN bytes, lower case) as described in the file header. */
static dga_name_stats dga_score_label(const dns_state *s, const char *label, size_t len)
{
    dga_name_stats st = {0};
    if (len == 0)
        return st;

    uint32_t counts[DET_DNS_ALPHABET] = {0};
    size_t digits = 0, letters = 0, run = 0, longest_run = 0, rare = 0;
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        counts[alphabet_index(c)]++;
        bool letter = c >= 'a' && c <= 'z';
        letters += letter;
        digits += c >= '0' && c <= '9';
        run = letter && !is_vowel(c) ? run + 1 : 0;
        if (run > longest_run)
            longest_run = run;
        if (i + 1 < len) {
            char d = label[i + 1];
            bool known = letter && d >= 'a' && d <= 'z' && s->bigram[c - 'a'][d - 'a'];
            rare += !known;
        }
    }

    st.entropy = entropy_of_counts(counts, DET_DNS_ALPHABET, len);
    st.rare_share = len > 1 ? (double)rare / (double)(len - 1) : 0.0;
    st.digit_ratio = (double)digits / (double)len;
    double consonant = longest_run >= 5   ? 1.0
                       : longest_run == 4 ? 0.75
                       : longest_run == 3 ? 0.25
                                          : 0.0;
    double digit_mix = letters > 0 && digits > 0 ? clamp01(st.digit_ratio * 3.0) : 0.0;
    /* Consonant runs and mixed digits are alternative signs: letter-only
     * generators give the first, hex-like ones the second. */
    double shape = consonant > digit_mix ? consonant : digit_mix;
    st.score = 0.60 * clamp01(st.rare_share / DET_DGA_RARE_FULL) + 0.25 * shape +
               0.15 * clamp01((st.entropy - 2.5) / 1.5);
    if (len < DET_DGA_SHORT_LABEL)
        st.score *= (double)len / DET_DGA_SHORT_LABEL;
    return st;
}

/* The longest label of NAME left of its public suffix. */
static void dga_pick_label(const char *name, const char **label, size_t *len)
{
    const char *domain = registrable_domain(name);
    const char *end = name + strlen(name);
    if (domain != NULL) {
        const char *dot = strchr(domain, '.');
        end = dot != NULL ? dot : end;
    }
    *label = name;
    *len = 0;
    const char *start = name;
    /* END is at most name + strlen(name), so *p is read only inside the
     * string; the analyzer does not tie END to the terminator. */
    for (const char *p = name;; p++) {
        if (p == end || *p == '.') {  // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
            if ((size_t)(p - start) > *len) {
                *label = start;
                *len = (size_t)(p - start);
            }
            if (p == end)
                break;
            start = p + 1;
        }
    }
}

static void dga_judge(const dns_state *s, dga_entry *e)
{
    uint32_t unique = e->names.count;
    if (unique < s->min_count)
        return;
    double mean_score = e->score_sum / unique;
    if (mean_score < s->min_score)
        return;
    e->snap.first_us = e->first_us;
    e->snap.last_us = e->last_us;
    e->snap.nx_unique = unique;
    e->snap.nx_rate = e->responses > 0 ? (double)e->nx_responses / (double)e->responses : 0.0;
    e->snap.mean_score = mean_score;
    e->snap.mean_entropy = e->entropy_sum / unique;
    e->snap.mean_rare = e->rare_sum / unique;
    e->snap.mean_digits = e->digit_sum / unique;
    e->dirty = true;
}

static void dga_prefetch_dns(const void *state, const fv_dns_record *dns)
{
    const dns_state *s = state;
    if (!dns_usable(dns) || !dns->is_response)
        return;
    det_host_key key;
    det_host_key_set(&key, &dns->client);
    det_lru_prefetch(s->entries, &key);
}

static void dga_observe_dns(void *state, const fv_dns_record *dns)
{
    dns_state *s = state;
    if (!dns_usable(dns) || !dns->is_response)
        return;
    char name[FV_NAME_MAX];
    size_t len = lower_name(dns->qname, name);
    if (dns_name_allowed(s, name, len))
        return;

    det_host_key key;
    det_host_key_set(&key, &dns->client);
    bool created;
    dga_entry *e = det_lru_insert(s->entries, &key, &created);
    if (e == NULL)
        return;
    if (created)
        e->client = dns->client;
    if (created || window_expired(e->window_start_us, s->window_us, dns->ts_us)) {
        name_set_free(&e->names);
        e->window_start_us = dns->ts_us;
        e->first_us = dns->ts_us;
        e->responses = e->nx_responses = 0;
        e->score_sum = e->entropy_sum = e->rare_sum = e->digit_sum = 0.0;
    }
    if (dns->ts_us > e->last_us)
        e->last_us = dns->ts_us;
    e->responses++;
    if (dns->rcode != DNS_RCODE_NXDOMAIN)
        return;
    e->nx_responses++;

    if (name_set_add(&e->names, text_hash(s, name, len)) != 1)
        return;
    const char *label;
    size_t label_len;
    dga_pick_label(name, &label, &label_len);
    dga_name_stats st = dga_score_label(s, label, label_len);
    e->score_sum += st.score;
    e->entropy_sum += st.entropy;
    e->rare_sum += st.rare_share;
    e->digit_sum += st.digit_ratio;
    dga_judge(s, e);
}

static void dga_emit_one(void *ctx, const void *key, void *value)
{
    (void)key;
    dns_emit_ctx *c = ctx;
    dga_entry *e = value;
    if (!e->dirty)
        return;
    e->dirty = false;

    fv_alert_record a;
    memset(&a, 0, sizeof a);
    a.ts_us = c->now_us;
    a.first_us = e->snap.first_us;
    a.last_us = e->snap.last_us;
    a.detector = FV_DET_DGA;
    a.severity = FV_SEV_HIGH;
    a.score = clamp01(e->snap.mean_score);
    a.host = e->client;
    a.peer.kind = FV_EP_NONE;
    a.peer_port = 53;
    a.proto = 17;
    a.flow_count = e->snap.nx_unique;
    a.evidence_count = DET_EV_DGA_COUNT;
    a.evidence[DET_EV_DGA_NXDOMAIN] = e->snap.nx_unique;
    a.evidence[DET_EV_DGA_NXDOMAIN_RATE] = e->snap.nx_rate;
    a.evidence[DET_EV_DGA_MEAN_SCORE] = e->snap.mean_score;
    a.evidence[DET_EV_DGA_MEAN_ENTROPY] = e->snap.mean_entropy;
    a.evidence[DET_EV_DGA_RARE_BIGRAM_SHARE] = e->snap.mean_rare;
    a.evidence[DET_EV_DGA_DIGIT_RATIO] = e->snap.mean_digits;
    snprintf(a.summary, sizeof a.summary,
             "generated names suspected: %u names answered NXDOMAIN (%.0f%% of answers), "
             "character score %.2f",
             (unsigned)e->snap.nx_unique, 100.0 * e->snap.nx_rate, e->snap.mean_score);
    c->emit(c->engine_ctx, &a);
}

static void dns_evaluate(void *state, uint64_t now_us, det_emit_fn emit, void *engine_ctx)
{
    dns_state *s = state;
    dns_emit_ctx c = {.now_us = now_us, .emit = emit, .engine_ctx = engine_ctx};
    det_lru_foreach(s->entries, s->is_dga ? dga_emit_one : tunnel_emit_one, &c);
}

/* ---------------------------------------------------------------------- */
/* Key rotation                                                            */
/* ---------------------------------------------------------------------- */

typedef struct dns_rekey_ctx {
    det_rekey_map *map;
    bool drop_unmapped;
    bool is_dga;
} dns_rekey_ctx;

static bool dns_rekey_entry(void *ctx, void *key, void *value)
{
    dns_rekey_ctx *c = ctx;
    det_host_key *host = key; /* first member of both key types */
    if (!det_rekey_map_apply(c->map, c->drop_unmapped, host->kind, host->addr))
        return false;
    fv_endpoint *client =
        c->is_dga ? &((dga_entry *)value)->client : &((tunnel_entry *)value)->client;
    memcpy(client->addr, host->addr, sizeof host->addr);
    return true;
}

static size_t dns_rekey_apply(dns_state *s, det_rekey_map *map, bool drop_unmapped)
{
    dns_rekey_ctx c = {.map = map, .drop_unmapped = drop_unmapped, .is_dga = s->is_dga};
    return det_lru_rekey(s->entries, dns_rekey_entry, &c);
}

static void dns_rekey_begin(void *state)
{
    dns_state *s = state;
    det_rekey_map_begin(&s->rekey);
}

static void dns_rekey(void *state, const uint8_t *old_pseudonym, const uint8_t *new_pseudonym,
                      uint8_t kind)
{
    dns_state *s = state;
    if (s->rekey.active) {
        (void)det_rekey_map_add(&s->rekey, old_pseudonym, new_pseudonym, kind);
        return;
    }
    det_rekey_map one = {0};
    if (det_rekey_map_add(&one, old_pseudonym, new_pseudonym, kind) == FV_OK)
        (void)dns_rekey_apply(s, &one, false);
    det_rekey_map_end(&one);
}

static size_t dns_rekey_end(void *state)
{
    dns_state *s = state;
    size_t dropped = dns_rekey_apply(s, &s->rekey, true);
    det_rekey_map_end(&s->rekey);
    return dropped;
}

const det_module det_module_dns_tunnel = {
    .name = "dns_tunnel",
    .detector = FV_DET_DNS_TUNNEL,
    .enabled = tunnel_enabled,
    .create = tunnel_create,
    .destroy = dns_destroy,
    .observe_flow = NULL,
    .observe_dns = tunnel_observe_dns,
    .evaluate = dns_evaluate,
    .rekey_begin = dns_rekey_begin,
    .rekey = dns_rekey,
    .rekey_end = dns_rekey_end,
};

const det_module det_module_dga = {
    .name = "dga",
    .detector = FV_DET_DGA,
    .enabled = dga_enabled,
    .create = dga_create,
    .destroy = dns_destroy,
    .observe_flow = NULL,
    .observe_dns = dga_observe_dns,
    .evaluate = dns_evaluate,
    .rekey_begin = dns_rekey_begin,
    .rekey = dns_rekey,
    .rekey_end = dns_rekey_end,
    .prefetch_dns = dga_prefetch_dns,
};
