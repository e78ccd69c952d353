/*
 * testutil.h: helpers shared by the cmocka tests.
 */
#ifndef FV_TESTUTIL_H
#define FV_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Create a fresh temporary directory under $TMPDIR (or /tmp) named
 * flowveil-test-XXXXXX and write its path into OUT. Aborts the test on
 * failure. */
void tu_make_temp_dir(char *out, size_t out_len);

/* Remove DIR and everything below it. */
void tu_remove_tree(const char *dir);

/* Return the value of environment variable NAME, or FALLBACK if unset. */
const char *tu_env(const char *name, const char *fallback);

/* Write LEN bytes of DATA to PATH (created 0600, truncated). Aborts on failure. */
void tu_write_file(const char *path, const void *data, size_t len);

/* Read the whole file at PATH into a new NUL-terminated buffer; *LEN gets
 * the size. Returns NULL if the file cannot be read. Caller frees. */
char *tu_read_file(const char *path, size_t *len);

/* Return 1 if NEEDLE (NLEN bytes) occurs anywhere in HAY (HLEN bytes). */
int tu_memmem_found(const void *hay, size_t hlen, const void *needle, size_t nlen);

/* Run the shell command CMD; store its exit status in the return value
 * (-1 if it could not run). Output is left on the test's stdout/stderr. */
int tu_run(const char *cmd);

/* Return the factor by which tests stretch their socket and I/O timeouts:
 * FLOWVEIL_TEST_TIMEOUT_SCALE (1 to 100), or 1 when unset or invalid.
 * scripts/valgrind.sh sets it, because code under memcheck runs 20 to 50
 * times slower. */
unsigned tu_timeout_scale(void);

#endif /* FV_TESTUTIL_H */
