/*
 * outfile.c: output files written through a temporary file and a rename
 * (outfile.h).
 */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool cli_outfile_open(cli_outfile *out, const char *path, bool must_be_new)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    out->must_be_new = must_be_new;
    if (path == NULL) {
        out->f = stdout;
        return true;
    }

    /* The rename would replace whatever PATH is, so only a regular file
     * or a new name is accepted: never a symbolic link, device or FIFO. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (must_be_new) {
            fprintf(stderr, "flowveil: error: %s already exists; this output is personal data, "
                            "so it is written only to a new file: choose a path that does not "
                            "exist\n",
                    path);
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            fprintf(stderr, "flowveil: error: --output '%s' exists and is not a regular file; "
                            "name a new file, or omit --output to write to standard output\n",
                    path);
            return false;
        }
    }
    if ((size_t)snprintf(out->tmp_path, sizeof out->tmp_path, "%s.tmp-XXXXXX", path) >=
        sizeof out->tmp_path) {
        fprintf(stderr, "flowveil: error: the --output path is too long (at most %zu bytes)\n",
                sizeof out->tmp_path - 12);
        return false;
    }
    /* mkstemp creates the file with mode 0600 and O_EXCL. */
    int fd = mkstemp(out->tmp_path);
    if (fd < 0) {
        fprintf(stderr, "flowveil: error: cannot create a temporary file beside %s: %s; check "
                        "that its directory exists and is writable\n",
                path, strerror(errno));
        out->tmp_path[0] = '\0';
        return false;
    }
    out->f = fdopen(fd, "w");
    if (out->f == NULL) {
        fprintf(stderr, "flowveil: error: cannot open %s: %s\n", out->tmp_path, strerror(errno));
        close(fd);
        unlink(out->tmp_path);
        out->tmp_path[0] = '\0';
        return false;
    }
    return true;
}

/* Put the finished temporary file at OUT->path. With must_be_new, link()
 * fails with EEXIST instead of replacing a file that appeared meanwhile. */
static int move_into_place(const cli_outfile *out)
{
    if (!out->must_be_new)
        return rename(out->tmp_path, out->path) == 0 ? 0 : errno;
    if (link(out->tmp_path, out->path) == 0) {
        unlink(out->tmp_path);
        return 0;
    }
    return errno;
}

bool cli_outfile_commit(cli_outfile *out, const char *what, int write_errno)
{
    int e = write_errno;
    if (out->path == NULL) {
        if (fflush(stdout) != 0 && e == 0)
            e = errno;
        if (e == 0 && ferror(stdout))
            e = EIO;
        out->f = NULL;
        if (e != 0)
            fprintf(stderr, "flowveil: error: writing %s to standard output failed: %s\n", what,
                    strerror(e));
        return e == 0;
    }

    if (fflush(out->f) != 0 && e == 0)
        e = errno;
    if (e == 0 && ferror(out->f))
        e = EIO;
    if (e == 0 && fsync(fileno(out->f)) != 0)
        e = errno;
    if (fclose(out->f) != 0 && e == 0)
        e = errno;
    out->f = NULL;
    if (e == 0)
        e = move_into_place(out);
    if (e != 0) {
        unlink(out->tmp_path);
        if (e == EEXIST)
            fprintf(stderr, "flowveil: error: writing %s to %s failed: the file appeared "
                            "meanwhile; choose a path that does not exist\n",
                    what, out->path);
        else
            fprintf(stderr, "flowveil: error: writing %s to %s failed: %s\n", what, out->path,
                    strerror(e));
    }
    out->tmp_path[0] = '\0';
    return e == 0;
}

void cli_outfile_abort(cli_outfile *out)
{
    if (out->path == NULL || out->f == NULL) {
        out->f = NULL;
        return;
    }
    fclose(out->f);
    out->f = NULL;
    unlink(out->tmp_path);
    out->tmp_path[0] = '\0';
}
