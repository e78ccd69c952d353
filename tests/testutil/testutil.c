#define _GNU_SOURCE /* memmem */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void tu_make_temp_dir(char *out, size_t out_len)
{
    const char *base = tu_env("TMPDIR", "/tmp");
    int n = snprintf(out, out_len, "%s/flowveil-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= out_len || mkdtemp(out) == NULL) {
        fprintf(stderr, "tu_make_temp_dir: cannot create a directory under %s: %s\n", base,
                strerror(errno));
        abort();
    }
}

void tu_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            tu_remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

const char *tu_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : fallback;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        fprintf(stderr, "tu_write_file: cannot open %s: %s\n", path, strerror(errno));
        abort();
    }
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            fprintf(stderr, "tu_write_file: write to %s failed: %s\n", path, strerror(errno));
            abort();
        }
        p += w;
        len -= (size_t)w;
    }
    close(fd);
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
        }
    }
    fclose(f);
    if (buf == NULL)
        return NULL;
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

int tu_memmem_found(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
    if (nlen == 0 || hlen < nlen)
        return 0;
    return memmem(hay, hlen, needle, nlen) != NULL;
}

int tu_run(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

unsigned tu_timeout_scale(void)
{
    const char *text = getenv("FLOWVEIL_TEST_TIMEOUT_SCALE");
    char *end = NULL;
    unsigned long scale;

    if (text == NULL || text[0] == '\0')
        return 1;
    errno = 0;
    scale = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || scale < 1 || scale > 100)
        return 1;
    return (unsigned)scale;
}
