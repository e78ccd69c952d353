/* fuzz_util.c: see fuzz_util.h. */
/* nftw is an X/Open extension of POSIX. */
#define _XOPEN_SOURCE 700
#include "fuzz_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fuzz_temp_dir(char *out, size_t out_len)
{
    const char *base = getenv("TMPDIR");
    int n;

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    n = snprintf(out, out_len, "%s/flowveil-fuzz-XXXXXX", base);
    if (n < 0 || !((size_t)n < out_len) || mkdtemp(out) == NULL) {
        fprintf(stderr, "fuzz: cannot create a temporary directory under %s; "
                        "set TMPDIR to a writable directory\n", base);
        abort();
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void fuzz_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *fuzz_strndup(const uint8_t *data, size_t len)
{
    char *s = malloc(len + 1);

    if (s == NULL)
        return NULL;
    if (len > 0)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

char *fuzz_next_field(const uint8_t **data, size_t *len)
{
    const uint8_t *nul = *len > 0 ? memchr(*data, 0, *len) : NULL;
    size_t field = nul != NULL ? (size_t)(nul - *data) : *len;
    char *s = fuzz_strndup(*data, field);
    size_t used = nul != NULL ? field + 1 : field;

    *data += used;
    *len -= used;
    return s;
}

uint16_t fuzz_take_be16(const uint8_t **data, size_t *len)
{
    uint16_t v;

    if (*len < 2) {
        *data += *len;
        *len = 0;
        return 0;
    }
    v = (uint16_t)(((unsigned)(*data)[0] << 8) | (*data)[1]);
    *data += 2;
    *len -= 2;
    return v;
}
