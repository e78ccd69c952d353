/*
 * pol_groups.c: monitoring decisions per host (groups, validity, windows),
 * the time-dependent BPF filter, data classes, roles, the policy hash and
 * the change summary. Parsing of these keys lives in pol_parse.c.
 */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#include "pol_internal.h"

/* ---------------------------------------------------------------------- */
/* Names                                                                   */
/* ---------------------------------------------------------------------- */

const char *pol_mode_name(pol_mode mode)
{
    switch (mode) {
    case POL_MONITOR:
        return "monitor";
    case POL_AGGREGATE:
        return "aggregate";
    case POL_EXCLUDE:
        return "exclude";
    default:
        return "unknown";
    }
}

static const char *const pol_role_names[POL_ROLE_COUNT] = {
    [POL_ROLE_ANALYST] = "analyst",
    [POL_ROLE_COMPLIANCE] = "compliance",
    [POL_ROLE_ADMIN] = "admin",
};

int pol_role_from_name(const char *name, pol_role *out)
{
    if (name == NULL || out == NULL)
        return FV_ERR_INVALID;
    for (int r = 0; r < POL_ROLE_COUNT; r++) {
        if (strcmp(name, pol_role_names[r]) == 0) {
            *out = (pol_role)r;
            return FV_OK;
        }
    }
    return FV_ERR_INVALID;
}

const char *pol_role_name(pol_role role)
{
    if ((unsigned)role >= POL_ROLE_COUNT)
        return "unknown";
    return pol_role_names[role];
}

int pol_item_from_name(const char *what)
{
    static const struct {
        const char *name;
        int item;
    } extra[] = {
        {"audit", POL_ITEM_AUDIT},       {"retention", POL_ITEM_RETENTION},
        {"policy", POL_ITEM_POLICY},     {"reports", POL_ITEM_REPORTS},
        {"counters", POL_ITEM_COUNTERS},
    };
    if (what == NULL)
        return -1;
    for (int c = 0; c < (int)POL_CLASS_SLOTS; c++) {
        if (pol_class_names[c] != NULL && strcmp(what, pol_class_names[c]) == 0)
            return c;
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        if (strcmp(what, extra[i].name) == 0)
            return extra[i].item;
    }
    return -1;
}

#define POL_BIT(item) (UINT32_C(1) << (item))

uint32_t pol_role_default_items(pol_role role)
{
    switch (role) {
    case POL_ROLE_ANALYST:
        return POL_BIT(FV_CLASS_FLOW) | POL_BIT(FV_CLASS_DNS) | POL_BIT(FV_CLASS_TLS) |
               POL_BIT(FV_CLASS_HTTP) | POL_BIT(FV_CLASS_DHCP) | POL_BIT(FV_CLASS_SSH) |
               POL_BIT(FV_CLASS_ALERT) | POL_BIT(POL_AGGREGATES_SLOT) |
               POL_BIT(POL_ITEM_COUNTERS) | POL_BIT(POL_ITEM_RETENTION);
    case POL_ROLE_COMPLIANCE:
        /* The route table keeps aggregates from compliance users (they
         * name peers and ports per zone), so the default does not list it. */
        return POL_BIT(POL_ITEM_AUDIT) |
               POL_BIT(POL_ITEM_RETENTION) | POL_BIT(POL_ITEM_POLICY) |
               POL_BIT(POL_ITEM_REPORTS) | POL_BIT(POL_ITEM_COUNTERS);
    case POL_ROLE_ADMIN:
        return POL_BIT(POL_ITEM_COUNT) - 1;
    default:
        return 0;
    }
}

bool pol_role_may_read(const pol_policy *policy, pol_role role, const char *what)
{
    if (policy == NULL || (unsigned)role >= POL_ROLE_COUNT)
        return false;
    int item = pol_item_from_name(what);
    if (item < 0)
        return false;
    return (policy->role_items[role] & POL_BIT(item)) != 0;
}

/* ---------------------------------------------------------------------- */
/* Classes and simple accessors                                            */
/* ---------------------------------------------------------------------- */

bool pol_class_enabled(const pol_policy *policy, int cls)
{
    if (policy == NULL)
        return false;
    if (cls == POL_CLASS_AUDIT)
        return policy->collect_audit;
    if (cls == POL_CLASS_AGGREGATES)
        return policy->collect[POL_AGGREGATES_SLOT];
    if (cls < 0 || cls >= (int)POL_CLASS_SLOTS)
        return false;
    return policy->collect[cls];
}

uint64_t pol_aggregates_retention_s(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->retention_s[POL_AGGREGATES_SLOT];
}

uint64_t pol_audit_retention_s(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->audit_retention_s;
}

uint32_t pol_k_threshold(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->k_threshold;
}

void pol_hash(const pol_policy *policy, uint8_t out[32])
{
    if (out == NULL)
        return;
    if (policy == NULL) {
        memset(out, 0, 32);
        return;
    }
    memcpy(out, policy->hash, 32);
}

size_t pol_group_count(const pol_policy *policy)
{
    return policy == NULL ? 0 : policy->group_count;
}

void pol_group_get(const pol_policy *policy, size_t i, pol_group_info *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (policy == NULL || i >= policy->group_count)
        return;

    const pol_group *g = &policy->groups[i];
    out->name = g->name;
    out->mode = g->mode;
    out->legal_basis = g->legal_basis[0] != '\0' ? g->legal_basis : NULL;
    out->approver = g->approver[0] != '\0' ? g->approver : NULL;
    out->valid_from_s = g->valid_from_s;
    out->valid_until_s = g->valid_until_s;
    out->window = g->window >= 0 ? policy->windows[g->window].name : NULL;
    out->purpose = g->purpose[0] != '\0' ? g->purpose : NULL;
}

const char *pol_organization(const pol_policy *policy, const char *field)
{
    if (policy == NULL || field == NULL)
        return NULL;
    const char *text = NULL;
    if (strcmp(field, "name") == 0)
        text = policy->org_name;
    else if (strcmp(field, "contact") == 0)
        text = policy->org_contact;
    else if (strcmp(field, "dpo") == 0)
        text = policy->org_dpo;
    return (text != NULL && text[0] != '\0') ? text : NULL;
}

bool pol_has_hostname_groups(const pol_policy *policy)
{
    if (policy == NULL)
        return false;
    for (size_t i = 0; i < policy->group_count; i++) {
        if (policy->groups[i].pattern_count > 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* Matching                                                                */
/* ---------------------------------------------------------------------- */

static char pol_lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* Match one bracket expression at *P against C; advance *P past "]". */
static bool pol_glob_bracket(const char **p, char c)
{
    const char *s = *p + 1;
    bool negate = *s == '!';
    if (negate)
        s++;
    bool hit = false;
    bool first = true;
    while (*s != '\0' && (*s != ']' || first)) {
        char lo = *s;
        char hi = lo;
        if (s[1] == '-' && s[2] != ']' && s[2] != '\0') {
            hi = s[2];
            s += 2;
        }
        if (c >= lo && c <= hi)
            hit = true;
        s++;
        first = false;
    }
    *p = *s == ']' ? s + 1 : s;
    return hit != negate;
}

bool pol_glob_match(const char *pattern, const char *name)
{
    const char *p = pattern;
    const char *n = name;
    const char *star_p = NULL;
    const char *star_n = NULL;

    /* Greedy matching with one backtrack point: on a mismatch, let the
     * last '*' absorb one more character. */
    while (*n != '\0') {
        char c = pol_lower(*n);
        if (*p == '*') {
            star_p = ++p;
            star_n = n;
            continue;
        }
        if (*p == '?' || (*p != '\0' && *p != '[' && *p == c)) {
            p++;
            n++;
            continue;
        }
        if (*p == '[') {
            const char *after = p;
            if (pol_glob_bracket(&after, c)) {
                p = after;
                n++;
                continue;
            }
        }
        if (star_p == NULL)
            return false;
        p = star_p;
        n = ++star_n;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* True if group G matches HOST: its address HI:LO (if HAS_ADDR), the
 * IPv4 address V4_HI it carries (if HAS_V4, see pol_embedded_ipv4), its
 * MAC or its lower-case HOSTNAME. */
static bool pol_group_matches(const pol_policy *policy, const pol_group *g, const pol_host *host,
                              uint64_t hi, uint64_t lo, bool has_addr, bool has_v4,
                              uint64_t v4_hi, const char *hostname)
{
    if (has_addr) {
        for (size_t i = g->net_first; i < g->net_first + g->net_count; i++) {
            const pol_net *n = &policy->group_nets[i];
            if (n->family == host->family && (hi & n->mask_hi) == n->net_hi &&
                (lo & n->mask_lo) == n->net_lo)
                return true;
            if (has_v4 && n->family == 4 && (v4_hi & n->mask_hi) == n->net_hi)
                return true;
        }
    }
    if (host->mac != NULL) {
        for (size_t i = g->mac_first; i < g->mac_first + g->mac_count; i++) {
            if (memcmp(policy->group_macs[i], host->mac, 6) == 0)
                return true;
        }
    }
    if (hostname != NULL) {
        for (size_t i = g->pattern_first; i < g->pattern_first + g->pattern_count; i++) {
            if (pol_glob_match(policy->group_patterns[i], hostname))
                return true;
        }
    }
    return false;
}

/* True if window W is open at UTC second NOW_S. */
static bool pol_window_open(const pol_policy *policy, const pol_window *w, uint64_t now_s)
{
    int64_t local = (int64_t)now_s + pol_tz_offset(&policy->time_zones[w->tz], (int64_t)now_s);
    int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    unsigned minute = (unsigned)((local - days * 86400) / 60);
    unsigned wday = (unsigned)(((days % 7) + 7 + 4) % 7);   /* 1970-01-01 was a Thursday */
    unsigned yesterday = (wday + 6) % 7;

    if (w->start_min < w->end_min)
        return (w->days & (1u << wday)) != 0 && minute >= w->start_min && minute < w->end_min;
    /* Overnight: the evening part belongs to today, the morning part to
     * the window that opened yesterday. */
    return ((w->days & (1u << wday)) != 0 && minute >= w->start_min) ||
           ((w->days & (1u << yesterday)) != 0 && minute < w->end_min);
}

static bool pol_group_expired(const pol_group *g, uint64_t now_s)
{
    return (g->valid_from_s != 0 && now_s < g->valid_from_s) ||
           (g->valid_until_s != 0 && now_s > g->valid_until_s);
}

#define POL_MINUTES_PER_WEEK (7 * 1440)

/* Floor division of A by the positive B. */
static int64_t pol_floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/*
 * Minutes from MINUTE (of the week, 0 = Sunday 00:00) forward to the
 * next point where window W may open or close (1..POL_MINUTES_PER_WEEK)
 * in *NEXT, and back to the last such point at or before MINUTE
 * (0..POL_MINUTES_PER_WEEK - 1) in *PREV. Returns false when W has no
 * such point (no days), so it never opens.
 */
static bool pol_window_edges(const pol_window *w, int64_t minute, int64_t *next, int64_t *prev)
{
    bool any = false;
    *next = POL_MINUTES_PER_WEEK;
    *prev = POL_MINUTES_PER_WEEK - 1;
    for (int64_t day = 0; day < 7; day++) {
        if ((w->days & (1u << day)) == 0)
            continue;
        int64_t close_day = w->start_min < w->end_min ? day : day + 1;
        int64_t edges[2] = {day * 1440 + w->start_min, close_day * 1440 + w->end_min};
        for (size_t i = 0; i < 2; i++) {
            int64_t forward = ((edges[i] - minute) % POL_MINUTES_PER_WEEK + POL_MINUTES_PER_WEEK) %
                              POL_MINUTES_PER_WEEK;
            int64_t back = (POL_MINUTES_PER_WEEK - forward) % POL_MINUTES_PER_WEEK;
            if (forward == 0)
                forward = POL_MINUTES_PER_WEEK;
            if (forward < *next)
                *next = forward;
            if (back < *prev)
                *prev = back;
            any = true;
        }
    }
    return any;
}

/*
 * Narrow [*FROM_S, *UNTIL_S], which contains NOW_S, to seconds over which
 * pol_window_open of W gives the same answer as at NOW_S: the span
 * between the window's edges around NOW_S in local time, cut at the
 * time zone's offset changes around NOW_S, since local time jumps there.
 */
static void pol_window_span(const pol_policy *policy, const pol_window *w, uint64_t now_s,
                            uint64_t *from_s, uint64_t *until_s)
{
    const pol_tz *tz = &policy->time_zones[w->tz];
    int64_t now = (int64_t)now_s;
    int64_t local = now + pol_tz_offset(tz, now);
    int64_t minute_start = pol_floor_div(local, 60) * 60;
    int64_t days = pol_floor_div(local, 86400);
    int64_t wday = ((days % 7) + 7 + 4) % 7;  /* 1970-01-01 was a Thursday */
    int64_t minute_of_week = wday * 1440 + (local - days * 86400) / 60;

    int64_t next = 0, prev = 0;
    if (!pol_window_edges(w, minute_of_week, &next, &prev))
        return; /* never open: no narrowing */

    int64_t from = now - (local - (minute_start - prev * 60));
    int64_t until = now + (minute_start + next * 60 - 1 - local);
    int64_t last_change = pol_tz_last_change(tz, now);
    int64_t next_change = pol_tz_next_change(tz, now);
    if (last_change > from)
        from = last_change;
    if (next_change <= until)
        until = next_change - 1;

    if (from < 0)
        from = 0;
    if ((uint64_t)from > *from_s)
        *from_s = (uint64_t)from;
    if ((uint64_t)until < *until_s)
        *until_s = (uint64_t)until;
}

/* Narrow [*FROM_S, *UNTIL_S] to seconds over which the validity of G
 * (pol_group_expired) is the same as at NOW_S. */
static void pol_group_validity_span(const pol_group *g, uint64_t now_s, uint64_t *from_s,
                                    uint64_t *until_s)
{
    uint64_t from = 0, until = UINT64_MAX;
    if (g->valid_from_s != 0 && now_s < g->valid_from_s) {
        until = g->valid_from_s - 1;
    } else if (g->valid_until_s != 0 && now_s > g->valid_until_s) {
        from = g->valid_until_s + 1;
    } else {
        from = g->valid_from_s;
        if (g->valid_until_s != 0)
            until = g->valid_until_s;
    }
    if (from > *from_s)
        *from_s = from;
    if (until < *until_s)
        *until_s = until;
}

pol_decision pol_decide(const pol_policy *policy, const pol_host *host, uint64_t now_s)
{
    uint64_t from_s, until_s;
    return pol_decide_span(policy, host, now_s, &from_s, &until_s);
}

pol_decision pol_decide_span(const pol_policy *policy, const pol_host *host, uint64_t now_s,
                             uint64_t *from_s, uint64_t *until_s)
{
    pol_decision d = {.mode = POL_EXCLUDE, .group = NULL, .expired = false, .outside_window = false};
    *from_s = 0;
    *until_s = UINT64_MAX;
    if (policy == NULL || host == NULL)
        return d;

    uint64_t hi = 0, lo = 0;
    bool has_addr = false;
    if (host->addr != NULL && (host->family == 4 || host->family == 6)) {
        has_addr = true;
        for (int i = 0; i < 8; i++) {
            hi = (hi << 8) | host->addr[i];
            lo = (lo << 8) | host->addr[8 + i];
        }
        if (host->family == 4)
            hi &= UINT64_C(0xffffffff00000000);
        /* The top-level exclude list wins over every group. */
        if (pol_is_excluded(policy, host->family, host->addr))
            return d;
    }
    uint64_t v4_hi = 0;
    bool has_v4 = has_addr && host->family == 6 && pol_embedded_ipv4(hi, lo, &v4_hi);

    /* Host names are compared in lower case; longer names than DHCP
     * allows (255 bytes) match no pattern. */
    char name[256];
    const char *hostname = NULL;
    if (host->hostname != NULL) {
        size_t len = strnlen(host->hostname, sizeof name);
        if (len < sizeof name) {
            for (size_t i = 0; i <= len; i++)
                name[i] = pol_lower(host->hostname[i]);
            hostname = name;
        }
    }

    for (size_t i = 0; i < policy->group_count; i++) {
        const pol_group *g = &policy->groups[i];
        if (!pol_group_matches(policy, g, host, hi, lo, has_addr, has_v4, v4_hi, hostname))
            continue;
        d.group = g->name;
        pol_group_validity_span(g, now_s, from_s, until_s);
        if (pol_group_expired(g, now_s)) {
            d.mode = POL_EXCLUDE;
            d.expired = true;
            return d;
        }
        d.mode = g->mode;
        if (g->mode == POL_MONITOR && g->window >= 0) {
            const pol_window *w = &policy->windows[g->window];
            pol_window_span(policy, w, now_s, from_s, until_s);
            if (!pol_window_open(policy, w, now_s)) {
                d.mode = POL_AGGREGATE;
                d.outside_window = true;
            }
        }
        return d;
    }
    d.mode = policy->default_mode;
    return d;
}

/* ---------------------------------------------------------------------- */
/* BPF                                                                     */
/* ---------------------------------------------------------------------- */

int pol_bpf_exclusions_at(const pol_policy *policy, bool link_has_mac, uint64_t now_s, char *out,
                          size_t out_len)
{
    if (policy == NULL || out == NULL || out_len == 0)
        return FV_ERR_INVALID;
    out[0] = '\0';

    pol_text t = {.buf = out, .cap = out_len};
    size_t terms = 0;
    char cidr[POL_CIDR_TEXT_MAX];

    for (size_t i = 0; i < policy->exclude_count; i++) {
        pol_net_format(&policy->excludes[i], cidr);
        pol_text_add(&t, "%snet %s", terms++ == 0 ? "not (" : " or ", cidr);
    }
    for (size_t gi = 0; gi < policy->group_count; gi++) {
        const pol_group *g = &policy->groups[gi];
        if (g->mode != POL_EXCLUDE && !pol_group_expired(g, now_s))
            continue;
        for (size_t i = g->net_first; i < g->net_first + g->net_count; i++) {
            pol_net_format(&policy->group_nets[i], cidr);
            pol_text_add(&t, "%snet %s", terms++ == 0 ? "not (" : " or ", cidr);
        }
        if (!link_has_mac)
            continue;
        for (size_t i = g->mac_first; i < g->mac_first + g->mac_count; i++) {
            const uint8_t *m = policy->group_macs[i];
            pol_text_add(&t, "%sether host %02x:%02x:%02x:%02x:%02x:%02x",
                         terms++ == 0 ? "not (" : " or ", m[0], m[1], m[2], m[3], m[4], m[5]);
        }
    }
    if (terms > 0)
        pol_text_add(&t, ")");

    if (t.full) {
        out[0] = '\0';
        return FV_ERR_FULL;
    }
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Summary                                                                 */
/* ---------------------------------------------------------------------- */

static void pol_format_day(uint64_t s, char out[48])
{
    /* civil_from_days, the inverse of pol_days_from_civil. */
    int64_t z = (int64_t)(s / 86400) + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    snprintf(out, 48, "%04lld-%02lld-%02lld", (long long)year, (long long)month, (long long)day);
}

static const char *const pol_day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static void pol_summary_window(const pol_window *w, const pol_tz *tz, pol_text *t)
{
    pol_text_add(t, "  %s: ", w->name);
    bool first = true;
    for (unsigned d = 1; d <= 7; d++) {
        unsigned day = d % 7;   /* Monday first, Sunday last */
        if ((w->days & (1u << day)) == 0)
            continue;
        pol_text_add(t, "%s%s", first ? "" : ", ", pol_day_names[day]);
        first = false;
    }
    pol_text_add(t, " %02u:%02u-%02u:%02u (%s)%s\n", w->start_min / 60u, w->start_min % 60u,
                 w->end_min / 60u, w->end_min % 60u, tz->name,
                 w->end_min <= w->start_min ? ", overnight into the next day" : "");
}

/* Append the names of the items in ITEMS (POL_BIT of a class slot or
 * POL_ITEM_*) to T, each after a space. */
static void summary_role_items(uint32_t items, pol_text *t)
{
    static const char *const extra[] = {"audit", "retention", "policy", "reports", "counters"};
    for (size_t c = 0; c < POL_CLASS_SLOTS; c++) {
        if (items & POL_BIT(c))
            pol_text_add(t, " %s", pol_class_names[c]);
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        if (items & POL_BIT(POL_ITEM_AUDIT + (int)i))
            pol_text_add(t, " %s", extra[i]);
    }
}

void pol_summary_groups(const pol_policy *policy, pol_text *t)
{
    pol_text_add(t, "Internal hosts in no group: %s.\n", pol_mode_name(policy->default_mode));
    if (policy->group_count == 0) {
        pol_text_add(t, "Monitoring groups: none.\n");
    } else {
        pol_text_add(t, "Monitoring groups (the first matching group decides):\n");
    }
    for (size_t i = 0; i < policy->group_count; i++) {
        const pol_group *g = &policy->groups[i];
        pol_text_add(t, "  %s: %s, matched by %zu subnet(s), %zu MAC address(es), %zu host-name"
                        " pattern(s)",
                     g->name, pol_mode_name(g->mode), g->net_count, g->mac_count,
                     g->pattern_count);
        pol_text_add(t, "; legal basis: %s; approved by: %s",
                     g->legal_basis[0] != '\0' ? g->legal_basis : "not given",
                     g->approver[0] != '\0' ? g->approver : "not given");
        char day[48];
        if (g->valid_from_s != 0) {
            pol_format_day(g->valid_from_s, day);
            pol_text_add(t, "; valid from %s", day);
        }
        if (g->valid_until_s != 0) {
            pol_format_day(g->valid_until_s, day);
            pol_text_add(t, "; valid until %s (then excluded)", day);
        }
        if (g->window >= 0)
            pol_text_add(t, "; monitored only in window %s, aggregated outside it",
                         policy->windows[g->window].name);
        if (g->purpose[0] != '\0')
            pol_text_add(t, "; purpose: %s", g->purpose);
        pol_text_add(t, ".\n");
    }

    if (policy->window_count > 0) {
        pol_text_add(t, "Monitoring windows (local time of the named zone):\n");
        for (size_t i = 0; i < policy->window_count; i++) {
            const pol_window *w = &policy->windows[i];
            pol_summary_window(w, &policy->time_zones[w->tz], t);
        }
    }

    bool any_off = false;
    for (size_t c = 0; c < POL_CLASS_SLOTS; c++) {
        if (policy->collect[c])
            continue;
        pol_text_add(t, "%s%s", any_off ? ", " : "Data classes switched off: ", pol_class_names[c]);
        any_off = true;
    }
    pol_text_add(t, "%s", any_off ? ".\n" : "All data classes are collected.\n");
    pol_text_add(t, "Reports and aggregates show only groups of at least %u distinct hosts.\n",
                 (unsigned)policy->k_threshold);

    /* The API serves a role only what its fixed route table allows, and
     * the defaults are that table, so an item the map lists beyond them
     * is never served. The summary goes into compliance documents, so it
     * lists those items apart instead of as readable. */
    pol_text_add(t, "Roles may read:\n");
    for (int r = 0; r < POL_ROLE_COUNT; r++) {
        uint32_t ceiling = pol_role_default_items((pol_role)r);
        uint32_t readable = policy->role_items[r] & ceiling;
        uint32_t closed = policy->role_items[r] & ~ceiling;
        pol_text_add(t, "  %s:", pol_role_names[r]);
        if (readable == 0)
            pol_text_add(t, " nothing");
        summary_role_items(readable, t);
        if (closed != 0) {
            pol_text_add(t, " (also listed, but never served to this role by the API:");
            summary_role_items(closed, t);
            pol_text_add(t, ")");
        }
        pol_text_add(t, "\n");
    }
}

/* ---------------------------------------------------------------------- */
/* Change summary                                                          */
/* ---------------------------------------------------------------------- */

static bool pol_has_zone(const pol_policy *p, const char *name)
{
    for (size_t i = 0; i < p->zone_count; i++) {
        if (strcmp(p->zone_names[i], name) == 0)
            return true;
    }
    return false;
}

static const pol_group *pol_find_group(const pol_policy *p, const char *name)
{
    for (size_t i = 0; i < p->group_count; i++) {
        if (strcmp(p->groups[i].name, name) == 0)
            return &p->groups[i];
    }
    return NULL;
}

/* Append one sentence, counting it. */
#define POL_SENTENCE(t, count, ...)                                                                \
    do {                                                                                           \
        pol_text_add((t), "%s", (count)++ == 0 ? "" : " ");                                        \
        pol_text_add((t), __VA_ARGS__);                                                            \
    } while (0)

int pol_diff_summary(const pol_policy *old_policy, const pol_policy *new_policy, char *out,
                     size_t out_len)
{
    if (old_policy == NULL || new_policy == NULL || out == NULL || out_len == 0)
        return FV_ERR_INVALID;
    out[0] = '\0';

    const pol_policy *a = old_policy;
    const pol_policy *b = new_policy;
    pol_text t = {.buf = out, .cap = out_len};
    unsigned n = 0;
    char d1[POL_DURATION_TEXT_MAX], d2[POL_DURATION_TEXT_MAX];

    for (size_t i = 0; i < b->zone_count; i++) {
        if (!pol_has_zone(a, b->zone_names[i]))
            POL_SENTENCE(&t, n, "Zone %s was added.", b->zone_names[i]);
    }
    for (size_t i = 0; i < a->zone_count; i++) {
        if (!pol_has_zone(b, a->zone_names[i]))
            POL_SENTENCE(&t, n, "Zone %s was removed.", a->zone_names[i]);
    }
    if (a->zone_net_count != b->zone_net_count ||
        memcmp(a->zone_nets, b->zone_nets, a->zone_net_count * sizeof a->zone_nets[0]) != 0)
        POL_SENTENCE(&t, n, "The networks of the zones changed.");
    if (a->exclude_count != b->exclude_count ||
        memcmp(a->excludes, b->excludes, a->exclude_count * sizeof a->excludes[0]) != 0)
        POL_SENTENCE(&t, n, "The list of excluded networks changed.");
    if (a->default_mode != b->default_mode)
        POL_SENTENCE(&t, n, "Hosts in no group changed from %s to %s.",
                     pol_mode_name(a->default_mode), pol_mode_name(b->default_mode));

    for (size_t i = 0; i < b->group_count; i++) {
        const pol_group *g = &b->groups[i];
        const pol_group *old = pol_find_group(a, g->name);
        if (old == NULL)
            POL_SENTENCE(&t, n, "Group %s was added with mode %s.", g->name,
                         pol_mode_name(g->mode));
        else if (old->mode != g->mode)
            POL_SENTENCE(&t, n, "Group %s changed mode from %s to %s.", g->name,
                         pol_mode_name(old->mode), pol_mode_name(g->mode));
        else if (old->valid_from_s != g->valid_from_s || old->valid_until_s != g->valid_until_s)
            POL_SENTENCE(&t, n, "Group %s changed its validity.", g->name);
    }
    for (size_t i = 0; i < a->group_count; i++) {
        if (pol_find_group(b, a->groups[i].name) == NULL)
            POL_SENTENCE(&t, n, "Group %s was removed.", a->groups[i].name);
    }

    for (size_t c = 0; c < POL_CLASS_SLOTS; c++) {
        if (a->collect[c] != b->collect[c])
            POL_SENTENCE(&t, n, "Collection of %s was switched %s.", pol_class_names[c],
                         b->collect[c] ? "on" : "off");
        if (a->retention_s[c] != b->retention_s[c]) {
            pol_duration_format(a->retention_s[c], d1);
            pol_duration_format(b->retention_s[c], d2);
            POL_SENTENCE(&t, n, "Retention of %s changed from %s to %s.", pol_class_names[c], d1,
                         d2);
        }
    }
    if (a->audit_retention_s != b->audit_retention_s) {
        pol_duration_format(a->audit_retention_s, d1);
        pol_duration_format(b->audit_retention_s, d2);
        POL_SENTENCE(&t, n, "Retention of the audit log changed from %s to %s.", d1, d2);
    }
    if (a->detect.beacon_enabled != b->detect.beacon_enabled)
        POL_SENTENCE(&t, n, "The beacon detector was switched %s.",
                     b->detect.beacon_enabled ? "on" : "off");
    if (a->detect.exfil_enabled != b->detect.exfil_enabled)
        POL_SENTENCE(&t, n, "The exfil detector was switched %s.",
                     b->detect.exfil_enabled ? "on" : "off");
    if (a->k_threshold != b->k_threshold)
        POL_SENTENCE(&t, n, "The k threshold of reports changed from %u to %u.",
                     (unsigned)a->k_threshold, (unsigned)b->k_threshold);
    if (memcmp(a->role_items, b->role_items, sizeof a->role_items) != 0)
        POL_SENTENCE(&t, n, "What the roles may read changed.");
    if (strcmp(a->org_name, b->org_name) != 0 || strcmp(a->org_contact, b->org_contact) != 0 ||
        strcmp(a->org_dpo, b->org_dpo) != 0)
        POL_SENTENCE(&t, n, "The organization (controller) details changed.");

    if (n == 0) {
        if (memcmp(a->hash, b->hash, sizeof a->hash) == 0)
            pol_text_add(&t, "no change");
        else
            pol_text_add(&t, "No change to zones, groups, classes, retention, detectors or"
                             " roles; other settings, layout or comments differ.");
    }

    if (t.full) {
        out[0] = '\0';
        return FV_ERR_FULL;
    }
    return FV_OK;
}
