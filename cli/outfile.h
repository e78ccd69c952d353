/*
 * outfile.h: output files written through a temporary file beside the
 * final name and renamed into place at the end, so a failed command
 * leaves neither a partial file nor a stray temporary file behind.
 */
#ifndef FV_CLI_OUTFILE_H
#define FV_CLI_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_outfile {
    const char *path;       /* final name; NULL means standard output */
    char tmp_path[4096];    /* PATH.tmp-XXXXXX while the file is open */
    bool must_be_new;       /* never replace an existing PATH */
    FILE *f;                /* where to write: the temporary file or stdout */
} cli_outfile;

/*
 * Open OUT for PATH (NULL: standard output). A temporary file, mode
 * 0600, is created in PATH's directory. An existing PATH that is not a
 * regular file is rejected; with MUST_BE_NEW any existing PATH is.
 * Returns true, or prints "flowveil: error: ..." naming PATH and false.
 */
bool cli_outfile_open(cli_outfile *out, const char *path, bool must_be_new);

/*
 * Flush, fsync and close OUT, then move the temporary file to PATH.
 * WRITE_ERRNO is the errno of a write that already failed (0 if none).
 * On any failure the temporary file is removed and
 * "flowveil: error: writing WHAT to PATH failed: ERRNO TEXT" is printed.
 * Returns true on success.
 */
bool cli_outfile_commit(cli_outfile *out, const char *what, int write_errno);

/* Close OUT and remove its temporary file without putting it in place.
 * Does nothing for standard output or an OUT that is not open. */
void cli_outfile_abort(cli_outfile *out);

#endif /* FV_CLI_OUTFILE_H */
