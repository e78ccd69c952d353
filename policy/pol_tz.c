/*
 * pol_tz.c: local time for monitoring windows without the C library's
 * global time zone state.
 *
 * localtime_r depends on the process-wide TZ setting, so each window's
 * zone is read from its TZif file (RFC 8536) once at load: the
 * transition times, the UTC offsets and the POSIX TZ rule of the footer,
 * which gives the offsets after the last transition. pol_tz_offset then
 * only reads the policy, so pol_decide stays thread-safe and does no I/O.
 */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pol_internal.h"

#define POL_ZONEINFO_DIR "/usr/share/zoneinfo/"

/* TZif files are a few kilobytes; this bound only stops a wrong file. */
#define POL_TZIF_MAX_BYTES (256u * 1024u)
#define POL_TZIF_HEADER_LEN 44u

static uint32_t pol_be32(const uint8_t *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static int64_t pol_be64s(const uint8_t *b)
{
    uint64_t v = ((uint64_t)pol_be32(b) << 32) | pol_be32(b + 4);
    return (int64_t)v;
}

int64_t pol_days_from_civil(int64_t year, unsigned month, unsigned day)
{
    /* Howard Hinnant's days_from_civil: March-based years make the leap
     * day the last day of the year. */
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t mp = (int64_t)month + (month > 2 ? -3 : 9);
    int64_t doy = (153 * mp + 2) / 5 + (int64_t)day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The counts of one TZif header. */
typedef struct pol_tzif_counts {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} pol_tzif_counts;

static bool pol_tzif_header(const uint8_t *b, size_t len, pol_tzif_counts *c, char *version)
{
    if (len < POL_TZIF_HEADER_LEN || memcmp(b, "TZif", 4) != 0)
        return false;
    *version = (char)b[4];
    c->isutcnt = pol_be32(b + 20);
    c->isstdcnt = pol_be32(b + 24);
    c->leapcnt = pol_be32(b + 28);
    c->timecnt = pol_be32(b + 32);
    c->typecnt = pol_be32(b + 36);
    c->charcnt = pol_be32(b + 40);
    return c->typecnt >= 1 && c->typecnt <= POL_TZ_MAX_TYPES && c->timecnt <= 1000000 &&
           c->charcnt <= 1000000 && c->leapcnt <= 1000000 && c->isstdcnt <= 1000000 &&
           c->isutcnt <= 1000000;
}

/* Size of the data block after a header, with TIME_LEN-byte times. */
static size_t pol_tzif_block_len(const pol_tzif_counts *c, size_t time_len)
{
    return (size_t)c->timecnt * time_len + c->timecnt + (size_t)c->typecnt * 6 + c->charcnt +
           (size_t)c->leapcnt * (time_len + 4) + c->isstdcnt + c->isutcnt;
}

/* Fill TZ from the data block at B with TIME_LEN-byte times. */
static int pol_tzif_read_block(const uint8_t *b, const pol_tzif_counts *c, size_t time_len,
                               pol_tz *tz)
{
    if (c->timecnt > POL_TZ_MAX_TRANSITIONS)
        return FV_ERR_PARSE;
    const uint8_t *times = b;
    const uint8_t *idx = times + (size_t)c->timecnt * time_len;
    const uint8_t *types = idx + c->timecnt;

    for (uint32_t i = 0; i < c->timecnt; i++) {
        int64_t at = time_len == 8 ? pol_be64s(times + 8 * i) : (int32_t)pol_be32(times + 4 * i);
        if (idx[i] >= c->typecnt || (i > 0 && at <= tz->transition_at[i - 1]))
            return FV_ERR_PARSE;
        tz->transition_at[i] = at;
        tz->transition_type[i] = idx[i];
    }
    tz->transition_count = c->timecnt;
    for (uint32_t i = 0; i < c->typecnt; i++) {
        int32_t off = (int32_t)pol_be32(types + 6 * i);
        if (off < -25 * 3600 || off > 26 * 3600)
            return FV_ERR_PARSE;
        tz->type_offset[i] = off;
    }
    tz->type_count = c->typecnt;
    return FV_OK;
}

/* Parse the TZif bytes B of LEN into TZ. */
static int pol_tzif_parse(const uint8_t *b, size_t len, pol_tz *tz)
{
    pol_tzif_counts c1, c2;
    char version;
    if (!pol_tzif_header(b, len, &c1, &version))
        return FV_ERR_PARSE;
    size_t v1_len = pol_tzif_block_len(&c1, 4);
    if (v1_len > len - POL_TZIF_HEADER_LEN)
        return FV_ERR_PARSE;
    if (c1.leapcnt != 0)
        return FV_ERR_UNSUPPORTED;

    if (version < '2')
        return pol_tzif_read_block(b + POL_TZIF_HEADER_LEN, &c1, 4, tz);

    /* Version 2 and later repeat the data with 64-bit times, then a
     * footer "\nRULE\n". */
    const uint8_t *h2 = b + POL_TZIF_HEADER_LEN + v1_len;
    size_t rest = len - POL_TZIF_HEADER_LEN - v1_len;
    char version2;
    if (!pol_tzif_header(h2, rest, &c2, &version2))
        return FV_ERR_PARSE;
    size_t v2_len = pol_tzif_block_len(&c2, 8);
    if (v2_len > rest - POL_TZIF_HEADER_LEN)
        return FV_ERR_PARSE;
    if (c2.leapcnt != 0)
        return FV_ERR_UNSUPPORTED;
    int rc = pol_tzif_read_block(h2 + POL_TZIF_HEADER_LEN, &c2, 8, tz);
    if (rc != FV_OK)
        return rc;

    const uint8_t *footer = h2 + POL_TZIF_HEADER_LEN + v2_len;
    size_t footer_len = rest - POL_TZIF_HEADER_LEN - v2_len;
    char rule[128];
    if (footer_len >= 2 && footer[0] == '\n' && footer_len - 1 < sizeof rule) {
        const uint8_t *nl = memchr(footer + 1, '\n', footer_len - 1);
        if (nl != NULL) {
            size_t n = (size_t)(nl - footer - 1);
            memcpy(rule, footer + 1, n);
            rule[n] = '\0';
            /* A rule this parser does not support leaves rule.valid false,
             * so the last transition's offset is used after the table. */
            if (pol_tz_rule_parse(rule, &tz->rule) != FV_OK)
                memset(&tz->rule, 0, sizeof tz->rule);
        }
    }
    return FV_OK;
}

int pol_tz_load(const char *name, pol_tz *tz, char *err, size_t err_len)
{
    char path[sizeof POL_ZONEINFO_DIR + POL_TZ_NAME_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = -1;
    int rc;

    memset(tz, 0, sizeof *tz);
    snprintf(tz->name, sizeof tz->name, "%s", name);
    snprintf(path, sizeof path, "%s%s", POL_ZONEINFO_DIR, name);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s; install the tzdata package or use another"
                 " IANA name",
                 path, strerror(errno));
        rc = FV_ERR_IO;
        goto out;
    }
    buf = malloc(POL_TZIF_MAX_BYTES + 1);
    if (buf == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    while (len <= POL_TZIF_MAX_BYTES) {
        ssize_t n = read(fd, buf + len, POL_TZIF_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_len, "cannot read %s: %s; check the tzdata installation", path,
                     strerror(errno));
            rc = FV_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }

    rc = len > POL_TZIF_MAX_BYTES ? FV_ERR_PARSE : pol_tzif_parse(buf, len, tz);
    if (rc == FV_ERR_UNSUPPORTED) {
        snprintf(err, err_len, "%s counts leap seconds; use the zone name without the right/"
                 " prefix",
                 path);
        rc = FV_ERR_PARSE;
    } else if (rc != FV_OK) {
        snprintf(err, err_len, "%s is not a valid TZif file (or has more than %d transitions);"
                 " reinstall the tzdata package",
                 path, POL_TZ_MAX_TRANSITIONS);
        rc = FV_ERR_PARSE;
    }

out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* POSIX TZ rules                                                          */
/* ---------------------------------------------------------------------- */

/* Skip a zone abbreviation: letters, or "<...>" for forms like "<+03>". */
static const char *pol_rule_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e == NULL || e == s + 1 ? NULL : e + 1;
    }
    const char *start = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    return s - start >= 3 ? s : NULL;
}

/* Parse "[+-]hh[:mm[:ss]]" into seconds; hours up to 167 as RFC 8536
 * allows for rule times. */
static const char *pol_rule_time(const char *s, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int32_t parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        int digits = 0;
        int32_t v = 0;
        for (; *s >= '0' && *s <= '9' && digits < 3; s++, digits++)
            v = v * 10 + (*s - '0');
        if (digits == 0)
            return NULL;
        parts[i] = v;
    }
    if (parts[0] > 167 || parts[1] > 59 || parts[2] > 59)
        return NULL;
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    return s;
}

/* Parse ",Mm.w.d[/time]". */
static const char *pol_rule_date(const char *s, uint8_t *month, uint8_t *week, uint8_t *day,
                                 int32_t *time)
{
    unsigned m = 0, w = 0, d = 0;
    if (s[0] != ',' || s[1] != 'M')
        return NULL;
    s += 2;
    for (; *s >= '0' && *s <= '9' && m < 100; s++)
        m = m * 10 + (unsigned)(*s - '0');
    if (*s++ != '.' || *s < '1' || *s > '5')
        return NULL;
    w = (unsigned)(*s++ - '0');
    if (*s++ != '.' || *s < '0' || *s > '6')
        return NULL;
    d = (unsigned)(*s++ - '0');
    if (m < 1 || m > 12)
        return NULL;
    *month = (uint8_t)m;
    *week = (uint8_t)w;
    *day = (uint8_t)d;
    *time = 7200;
    if (*s == '/')
        s = pol_rule_time(s + 1, time);
    return s;
}

int pol_tz_rule_parse(const char *text, pol_tz_rule *rule)
{
    memset(rule, 0, sizeof *rule);
    const char *s = pol_rule_name(text);
    int32_t posix_off;
    if (s == NULL || (s = pol_rule_time(s, &posix_off)) == NULL)
        return FV_ERR_INVALID;
    /* POSIX offsets count west of UTC: "CET-1" is one hour east. */
    rule->std_offset = -posix_off;
    if (*s == '\0') {
        rule->valid = true;
        return FV_OK;
    }

    if ((s = pol_rule_name(s)) == NULL)
        return FV_ERR_INVALID;
    rule->dst_offset = rule->std_offset + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = pol_rule_time(s, &posix_off)) == NULL)
            return FV_ERR_INVALID;
        rule->dst_offset = -posix_off;
    }
    s = pol_rule_date(s, &rule->start_month, &rule->start_week, &rule->start_day,
                      &rule->start_time);
    if (s == NULL)
        return FV_ERR_INVALID;
    s = pol_rule_date(s, &rule->end_month, &rule->end_week, &rule->end_day, &rule->end_time);
    if (s == NULL || *s != '\0')
        return FV_ERR_INVALID;
    rule->has_dst = true;
    rule->valid = true;
    return FV_OK;
}

static bool pol_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Local seconds since 1970 of the Mm.w.d date at TIME in YEAR. */
static int64_t pol_rule_local(int64_t year, unsigned month, unsigned week, unsigned day,
                              int32_t time)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned len = mdays[month - 1] + (month == 2 && pol_is_leap(year) ? 1u : 0u);
    int64_t first = pol_days_from_civil(year, month, 1);
    /* 1970-01-01 was a Thursday (weekday 4). */
    unsigned first_wday = (unsigned)(((first % 7) + 7 + 4) % 7);
    unsigned dom = 1 + (day + 7 - first_wday) % 7 + 7 * (week - 1);
    while (dom > len)
        dom -= 7;
    return (pol_days_from_civil(year, month, dom)) * 86400 + time;
}

/* Year of the UTC second T. */
static int64_t pol_year_of(int64_t t)
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t year = 1970 + days / 366;
    while (pol_days_from_civil(year + 1, 1, 1) <= days)
        year++;
    return year;
}

static int32_t pol_rule_offset(const pol_tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_offset;
    int64_t year = pol_year_of(t + r->std_offset);
    int64_t start = pol_rule_local(year, r->start_month, r->start_week, r->start_day,
                                   r->start_time) - r->std_offset;
    int64_t end = pol_rule_local(year, r->end_month, r->end_week, r->end_day, r->end_time) -
                  r->dst_offset;
    bool dst = start < end ? (t >= start && t < end) : (t < end || t >= start);
    return dst ? r->dst_offset : r->std_offset;
}

int32_t pol_tz_offset(const pol_tz *tz, int64_t t)
{
    size_t n = tz->transition_count;
    if (n == 0)
        return tz->rule.valid ? pol_rule_offset(&tz->rule, t) : tz->type_offset[0];
    if (t < tz->transition_at[0])
        return tz->type_offset[0];
    if (t >= tz->transition_at[n - 1] && tz->rule.valid)
        return pol_rule_offset(&tz->rule, t);

    /* Last transition at or before T. */
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->transition_at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->type_offset[tz->transition_type[lo]];
}

/* Points in the UTC seconds around YEAR where pol_rule_offset of R may
 * change: the start and end of DST, and the local New Year, where it
 * moves to the next year's dates. */
static void pol_rule_points(const pol_tz_rule *r, int64_t year, int64_t points[3])
{
    points[0] = pol_rule_local(year, r->start_month, r->start_week, r->start_day, r->start_time) -
                r->std_offset;
    points[1] = pol_rule_local(year, r->end_month, r->end_week, r->end_day, r->end_time) -
                r->dst_offset;
    points[2] = pol_days_from_civil(year, 1, 1) * 86400 - r->std_offset;
}

/* The first change point of rule R after T, or INT64_MAX. Every year
 * has a New Year point, so the years around T hold the answer. */
static int64_t pol_rule_next_change(const pol_tz_rule *r, int64_t t)
{
    int64_t best = INT64_MAX;
    if (!r->has_dst)
        return best;
    int64_t year = pol_year_of(t + r->std_offset);
    for (int64_t y = year - 1; y <= year + 2; y++) {
        int64_t points[3];
        pol_rule_points(r, y, points);
        for (size_t i = 0; i < 3; i++) {
            if (points[i] > t && points[i] < best)
                best = points[i];
        }
    }
    return best;
}

/* The last change point of rule R at or before T, or INT64_MIN. */
static int64_t pol_rule_last_change(const pol_tz_rule *r, int64_t t)
{
    int64_t best = INT64_MIN;
    if (!r->has_dst)
        return best;
    int64_t year = pol_year_of(t + r->std_offset);
    for (int64_t y = year - 2; y <= year + 1; y++) {
        int64_t points[3];
        pol_rule_points(r, y, points);
        for (size_t i = 0; i < 3; i++) {
            if (points[i] <= t && points[i] > best)
                best = points[i];
        }
    }
    return best;
}

/* Index of the first transition of TZ after T (transition_count if none). */
static size_t pol_tz_first_after(const pol_tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->transition_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->transition_at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int64_t pol_tz_next_change(const pol_tz *tz, int64_t t)
{
    size_t n = tz->transition_count;
    if (n == 0)
        return tz->rule.valid ? pol_rule_next_change(&tz->rule, t) : INT64_MAX;
    size_t after = pol_tz_first_after(tz, t);
    if (after < n)
        return tz->transition_at[after];
    /* After the last transition the rule gives the offsets. */
    return tz->rule.valid ? pol_rule_next_change(&tz->rule, t) : INT64_MAX;
}

int64_t pol_tz_last_change(const pol_tz *tz, int64_t t)
{
    size_t n = tz->transition_count;
    if (n == 0)
        return tz->rule.valid ? pol_rule_last_change(&tz->rule, t) : INT64_MIN;
    size_t after = pol_tz_first_after(tz, t);
    if (after == 0)
        return INT64_MIN; /* before the first transition: type 0 */
    int64_t last = tz->transition_at[after - 1];
    if (after == n && tz->rule.valid) {
        int64_t rule_last = pol_rule_last_change(&tz->rule, t);
        if (rule_last > last)
            last = rule_last;
    }
    return last;
}
