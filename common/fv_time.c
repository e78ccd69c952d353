/*
 * fv_time.c: parse a point in time given as RFC 3339 text or as integer
 * seconds since 1970, for the CLI's and the API's time options.
 *
 * The parser accepts all of its input or rejects it with FV_ERR_INVALID;
 * nothing is skipped or guessed.
 */
#include <stdbool.h>
#include <string.h>

#include "fv_common.h"

/* 9999-12-31T23:59:59Z: the largest time fv_time_parse accepts. */
#define FV_TIME_MAX_S 253402300799ull

#define US_PER_S 1000000ull

/* A read position in a value; LEFT is the number of bytes after P. */
typedef struct parse_cursor {
    const char *p;
    size_t left;
} parse_cursor;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Read exactly N decimal digits into *OUT and advance. */
static bool take_digits(parse_cursor *c, size_t n, unsigned *out)
{
    unsigned v = 0;

    if (!(n <= c->left))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        v = v * 10u + (unsigned)(c->p[i] - '0');
    }
    c->p += n;
    c->left -= n;
    *out = v;
    return true;
}

/* Consume one byte if it is one of the bytes in SET; store it in *OUT. */
static bool take_one_of(parse_cursor *c, const char *set, char *out)
{
    if (!(1 <= c->left) || strchr(set, c->p[0]) == NULL)
        return false;
    if (out != NULL)
        *out = c->p[0];
    c->p++;
    c->left--;
    return true;
}

static bool is_leap_year(unsigned y)
{
    return (y % 4u == 0 && y % 100u != 0) || y % 400u == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && is_leap_year(y))
        return 29;
    return days[m - 1];
}

/* Days from 1970-01-01 to Y-M-D (Y >= 1970, the date already validated). */
static uint64_t days_since_epoch(unsigned y, unsigned m, unsigned d)
{
    /* Leap years in [1970, y): multiples of 4, minus centuries, plus 400s,
     * counted as the closed-form totals up to y-1 minus those up to 1969. */
    unsigned prev = y - 1u;
    uint64_t leaps = (uint64_t)(prev / 4u - prev / 100u + prev / 400u) -
                     (1969u / 4u - 1969u / 100u + 1969u / 400u);
    uint64_t days = 365ull * (y - 1970u) + leaps;

    for (unsigned month = 1; month < m; month++)
        days += days_in_month(y, month);
    return days + (d - 1u);
}

/* Integer seconds since the epoch: 1 to 12 digits, nothing else. */
static int parse_epoch_seconds(const char *text, size_t len, uint64_t *out_us)
{
    uint64_t s = 0;

    if (len == 0 || len > 12)
        return FV_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i]))
            return FV_ERR_INVALID;
        s = s * 10u + (uint64_t)(text[i] - '0');
    }
    if (s > FV_TIME_MAX_S)
        return FV_ERR_INVALID;
    *out_us = s * US_PER_S;
    return FV_OK;
}

/*
 * RFC 3339 date-time: YYYY-MM-DD "T" HH:MM:SS [.fraction] ("Z" | +HH:MM |
 * -HH:MM). Lowercase t and z are accepted as RFC 3339 section 5.6 allows.
 * A space in place of "+" is accepted because libmicrohttpd decodes an
 * unencoded "+" in a query string as a space. Fraction digits past the
 * sixth are checked but dropped (microsecond resolution). A leap second
 * (:60) is accepted and counts as the next second.
 */
static int parse_rfc3339(const char *text, size_t len, uint64_t *out_us)
{
    parse_cursor c = {text, len};
    unsigned year, month, day, hour, minute, second;
    uint64_t frac_us = 0;
    char sign = 'Z';
    unsigned off_h = 0, off_m = 0;

    /* Date and time fields. */
    if (!take_digits(&c, 4, &year) || !take_one_of(&c, "-", NULL) ||
        !take_digits(&c, 2, &month) || !take_one_of(&c, "-", NULL) ||
        !take_digits(&c, 2, &day) || !take_one_of(&c, "Tt", NULL) ||
        !take_digits(&c, 2, &hour) || !take_one_of(&c, ":", NULL) ||
        !take_digits(&c, 2, &minute) || !take_one_of(&c, ":", NULL) ||
        !take_digits(&c, 2, &second))
        return FV_ERR_INVALID;
    if (year < 1969 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 60)
        return FV_ERR_INVALID;

    /* Optional fraction: 1 to 9 digits. */
    if (take_one_of(&c, ".", NULL)) {
        size_t digits = 0;
        uint64_t scale = 100000u;

        while (1 <= c.left && is_digit(c.p[0])) {
            if (digits < 6) {
                frac_us += (uint64_t)(c.p[0] - '0') * scale;
                scale /= 10u;
            }
            digits++;
            c.p++;
            c.left--;
        }
        if (digits == 0 || digits > 9)
            return FV_ERR_INVALID;
    }

    /* Offset: Z, or a sign and HH:MM. */
    if (!take_one_of(&c, "Zz+- ", &sign))
        return FV_ERR_INVALID;
    if (sign != 'Z' && sign != 'z') {
        if (!take_digits(&c, 2, &off_h) || !take_one_of(&c, ":", NULL) ||
            !take_digits(&c, 2, &off_m) || off_h > 23 || off_m > 59)
            return FV_ERR_INVALID;
    }
    if (c.left != 0)
        return FV_ERR_INVALID;

    /* Convert to UTC seconds; 1969-12-31 is allowed above only so that a
     * positive offset can still land at or after the epoch. */
    int64_t local_s;
    if (year == 1969) {
        if (month != 12 || day != 31)
            return FV_ERR_INVALID;
        local_s = -86400;
    } else {
        local_s = (int64_t)days_since_epoch(year, month, day) * 86400;
    }
    local_s += (int64_t)hour * 3600 + (int64_t)minute * 60 + (int64_t)second;

    int64_t offset_s = (int64_t)off_h * 3600 + (int64_t)off_m * 60;
    int64_t utc_s = (sign == '-') ? local_s + offset_s : local_s - offset_s;
    if (utc_s < 0 || (uint64_t)utc_s > FV_TIME_MAX_S)
        return FV_ERR_INVALID;

    *out_us = (uint64_t)utc_s * US_PER_S + frac_us;
    return FV_OK;
}

int fv_time_parse(const char *text, uint64_t *out_us)
{
    size_t len;

    if (text == NULL || out_us == NULL)
        return FV_ERR_INVALID;
    len = strlen(text);
    if (len > 64)
        return FV_ERR_INVALID;
    if (parse_epoch_seconds(text, len, out_us) == FV_OK)
        return FV_OK;
    return parse_rfc3339(text, len, out_us);
}
