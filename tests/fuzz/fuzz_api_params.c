/*
 * Fuzz the API's query-parameter parsers and the static-file name check.
 * The input is split at NUL bytes into up to five fields: a time, a page
 * limit, a cursor, a text for api_text_sanitize and a URL path for
 * api_static_name (libmicrohttpd hands the parsers NUL-terminated
 * strings, so a field never contains a NUL).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "fuzz_util.h"

static void check_static_name(const char *url)
{
    char name[API_STATIC_NAME_MAX];

    if (!api_static_name(url, name))
        return;
    /* An accepted name must stay inside the web directory. */
    if (name[0] == '.' || name[0] == '/' || strstr(name, "..") != NULL ||
        strstr(name, "//") != NULL || strstr(name, "/.") != NULL ||
        !(strlen(name) < API_STATIC_NAME_MAX))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *time_text = fuzz_next_field(&data, &size);
    char *limit_text = fuzz_next_field(&data, &size);
    char *cursor_text = fuzz_next_field(&data, &size);
    char *free_text = fuzz_next_field(&data, &size);
    char *url = fuzz_next_field(&data, &size);
    char sanitized[API_MESSAGE_MAX];
    char formatted[API_CURSOR_TEXT_MAX];
    uint64_t us = 0, id = 0;
    uint32_t limit = 0;

    if (time_text == NULL || limit_text == NULL || cursor_text == NULL || free_text == NULL ||
        url == NULL)
        goto out;

    (void)api_time_parse(time_text, &us);
    if (api_limit_parse(limit_text, &limit) == FV_OK && (limit < 1 || limit > API_LIMIT_MAX))
        abort();
    for (int order = 0; order < 2; order++) {
        bool newest_first = order == 1;
        uint64_t again = 0;
        if (api_cursor_parse(cursor_text, newest_first, &id) != FV_OK)
            continue;
        /* A cursor that parses must survive a format and parse cycle. */
        api_cursor_format(newest_first, id, formatted);
        if (api_cursor_parse(formatted, newest_first, &again) != FV_OK || again != id)
            abort();
    }
    api_text_sanitize(free_text, sanitized, sizeof sanitized);
    for (size_t i = 0; sanitized[i] != '\0'; i++) {
        if (sanitized[i] < 0x20 || sanitized[i] > 0x7e)
            abort();
    }
    check_static_name(url);

out:
    free(time_text);
    free(limit_text);
    free(cursor_text);
    free(free_text);
    free(url);
    return 0;
}
