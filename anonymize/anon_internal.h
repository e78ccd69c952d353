/*
 * anon_internal.h: key file helpers shared by anonymize.c and
 * anon_authority.c; not part of the public interface.
 */
#ifndef FV_ANON_INTERNAL_H
#define FV_ANON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

#define ANON_KEY_BYTES 32
#define ANON_FILE_BYTES 64

/* The decoded key file; key is secret and wiped by the caller. managed
 * is set for an epoch key imported from a key authority. */
typedef struct anon_key_record {
    uint64_t epoch_id;
    uint64_t start_s;
    unsigned char key[ANON_KEY_BYTES];
    bool managed;
} anon_key_record;

void anon_record_encode(const anon_key_record *rec, unsigned char buf[ANON_FILE_BYTES]);

/* Decode BUF into REC. Returns false for a wrong magic, a wrong check or
 * epoch 0; REASON gets a short description (no key bytes). */
bool anon_record_decode(const unsigned char buf[ANON_FILE_BYTES], anon_key_record *rec,
                        const char **reason);

void anon_msg(char *err, size_t err_len, const char *fmt, ...) FV_PRINTF(3, 4);

/* Write all of BUF at offset 0 and fsync. Returns 0 or an errno value. */
int anon_write_record(int fd, const unsigned char buf[ANON_FILE_BYTES]);

/* Fsync the directory containing PATH. Returns 0 or an errno value. */
int anon_sync_parent(const char *path);

/* Check that FD is a private regular file of 64 bytes, read and decode
 * it. Returns FV_OK, FV_ERR_PERMISSION, FV_ERR_PARSE or FV_ERR_IO. */
int anon_read_key_file(int fd, const char *path, anon_key_record *rec, char *err,
                       size_t err_len);

/* Create PATH (O_EXCL, 0600) holding REC. Returns FV_OK, FV_ERR_IO, or
 * FV_ERR_NOT_FOUND if the file already exists. */
int anon_create_key_file(const char *path, const anon_key_record *rec, int *fd_out, char *err,
                         size_t err_len);

#endif /* FV_ANON_INTERNAL_H */
