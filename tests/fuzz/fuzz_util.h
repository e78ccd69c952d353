/*
 * fuzz_util.h: helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Every harness defines LLVMFuzzerTestOneInput, frees everything it
 * allocates before returning (LeakSanitizer runs in the fuzz build) and
 * writes files only inside a directory made with fuzz_temp_dir.
 */
#ifndef FV_FUZZ_UTIL_H
#define FV_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Create a fresh directory under $TMPDIR (or /tmp) and write its path to
 * OUT. Aborts when that fails, because a harness without its directory
 * cannot run at all.
 */
void fuzz_temp_dir(char *out, size_t out_len);

/* Remove DIR and everything below it. Errors are ignored. */
void fuzz_remove_tree(const char *dir);

/* Return a malloc'd copy of DATA[0..LEN) with a NUL appended (NULL when
 * memory ran out). Inner NUL bytes are kept, so C string functions see
 * the prefix before the first one. */
char *fuzz_strndup(const uint8_t *data, size_t len);

/* Split the next field off *DATA: the bytes up to the next NUL (or the
 * end), returned as a malloc'd string; *DATA and *LEN move past the NUL. */
char *fuzz_next_field(const uint8_t **data, size_t *len);

/* Read a big-endian 16-bit value from the front of *DATA, or return 0 and
 * consume what is left when fewer than 2 bytes remain. */
uint16_t fuzz_take_be16(const uint8_t **data, size_t *len);

#endif /* FV_FUZZ_UTIL_H */
