/*
 * tool_cli.c: command-line helpers shared by the generator and scorer
 * tools.
 */
#include "tool_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

int tool_parse_u64(const char *text, uint64_t max, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v > max)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int tool_bad_usage(const char *program, void (*usage)(FILE *out), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", program);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage(stderr);
    return 2;
}
