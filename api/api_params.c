/*
 * api_params.c: parsers for the query parameters of the record routes.
 *
 * Each parser takes one NUL-terminated value and either accepts all of it
 * or rejects it with FV_ERR_INVALID; nothing is skipped or guessed, so a
 * malformed value always turns into a 400 reply naming the parameter.
 * The values were percent-decoded by our libmicrohttpd unescape callback,
 * which turns %00 into DEL (0x7f), a byte no parser here accepts.
 */
#include <string.h>

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
        out[n] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[n] = '\0';
}
