/*
 * anon_authority.c: the sensor side of a key authority: the sensor's box
 * key pair, sealing an epoch key to a sensor, and importing a sealed
 * epoch key into the sensor's key file. Formats are in anonymize.h.
 *
 * The sensor secret key file (ANON_SENSOR_KEY_FILE, 80 bytes, mode 0600):
 *   0   8  magic "FVSBOX01"
 *   8  32  box public key (crypto_box_PUBLICKEYBYTES)
 *  40  32  box secret key
 *  72   8  first 8 bytes of unkeyed BLAKE2b-256 over bytes 0..71
 */
#include "anonymize.h"
#include "anon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define SENSOR_MAGIC "FVSBOX01"
#define SENSOR_FILE_BYTES 80
#define SENSOR_OFF_PK 8
#define SENSOR_OFF_SK 40
#define SENSOR_OFF_CHECK 72
#define SENSOR_PUB_TAG "flowveil-sensor-box-v1"

#define SEALED_MAGIC "FVSEAL02"
#define SEALED_MAGIC_UNSIGNED "FVSEAL01"
#define SEALED_OFF_EPOCH 8
#define SEALED_OFF_START 16
#define SEALED_OFF_PK 24
#define SEALED_OFF_BOX 56
#define SEALED_BOX_BYTES (crypto_box_SEALBYTES + ANON_FILE_BYTES)
#define SEALED_OFF_SIG (SEALED_OFF_BOX + SEALED_BOX_BYTES)

/* Authority signing key file (ANON_AUTHORITY_KEY_FILE, 72 bytes, 0600):
 * magic "FVASGN01" and the 64-byte Ed25519 secret key. */
#define SIGN_MAGIC "FVASGN01"
#define SIGN_FILE_BYTES (8 + ANON_SIGN_SECRET_KEY_BYTES)
#define SIGN_PUB_TAG "flowveil-authority-sign-v1"

_Static_assert(crypto_box_PUBLICKEYBYTES == ANON_BOX_PUBLIC_KEY_BYTES, "box public key size");
_Static_assert(SEALED_OFF_SIG + crypto_sign_BYTES == ANON_SEALED_BYTES, "sealed file layout");
_Static_assert(crypto_sign_PUBLICKEYBYTES == ANON_SIGN_PUBLIC_KEY_BYTES, "sign public key size");
_Static_assert(crypto_sign_SECRETKEYBYTES == ANON_SIGN_SECRET_KEY_BYTES, "sign secret key size");

static void put_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

static void sensor_check(const uint8_t buf[SENSOR_FILE_BYTES], uint8_t check[8])
{
    uint8_t digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, buf, SENSOR_OFF_CHECK, NULL, 0);
    memcpy(check, digest, 8);
}

/* Build "DIR/NAME" into OUT. Returns false if it does not fit. */
static bool join_path(char *out, size_t out_len, const char *dir, const char *name)
{
    int n = snprintf(out, out_len, "%s/%s", dir, name);
    return n > 0 && (size_t)n < out_len;
}

bool anon_authority_mode(const char *key_path)
{
    char path[PATH_MAX];
    const char *slash = strrchr(key_path, '/');
    int n = slash == NULL ? snprintf(path, sizeof path, "%s", ANON_SENSOR_KEY_FILE)
                          : snprintf(path, sizeof path, "%.*s/%s", (int)(slash - key_path),
                                     key_path, ANON_SENSOR_KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return false;
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Write LEN bytes of DATA into a new file PATH (O_EXCL, MODE), fsynced.
 * Returns 0 or an errno value; a partial file is removed. */
static int write_new_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return errno;
    int e = fchmod(fd, mode) != 0 ? errno : 0;
    size_t done = 0;
    while (e == 0 && done < len) {
        ssize_t n = write(fd, (const uint8_t *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            e = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    close(fd);
    if (e != 0)
        unlink(path);
    return e;
}

int anon_sensor_keygen(const char *db_dir, char *err, size_t err_len)
{
    char key_path[PATH_MAX], pub_path[PATH_MAX];
    uint8_t buf[SENSOR_FILE_BYTES];
    uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
    char line[128], hex[2 * crypto_box_PUBLICKEYBYTES + 1];
    int rc = FV_OK;

    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }
    if (!join_path(key_path, sizeof key_path, db_dir, ANON_SENSOR_KEY_FILE) ||
        !join_path(pub_path, sizeof pub_path, db_dir, ANON_SENSOR_PUB_FILE)) {
        anon_msg(err, err_len, "the store path is too long (%zu bytes)", strlen(db_dir));
        return FV_ERR_INVALID;
    }
    if (mkdir(db_dir, 0700) != 0 && errno != EEXIST) {
        anon_msg(err, err_len, "%s: cannot create the store directory: %s", db_dir,
                 strerror(errno));
        return FV_ERR_IO;
    }
    struct stat st;
    if (lstat(key_path, &st) == 0 || lstat(pub_path, &st) == 0) {
        anon_msg(err, err_len, "%s: a sensor key already exists (%s or %s); it is never"
                 " overwritten, so remove both files first to make a new one and enroll it again",
                 db_dir, ANON_SENSOR_KEY_FILE, ANON_SENSOR_PUB_FILE);
        return FV_ERR_INVALID;
    }

    crypto_box_keypair(pk, sk);
    memcpy(buf, SENSOR_MAGIC, 8);  // NOLINT(bugprone-not-null-terminated-result): binary magic, no terminator
    memcpy(buf + SENSOR_OFF_PK, pk, sizeof pk);
    memcpy(buf + SENSOR_OFF_SK, sk, sizeof sk);
    sensor_check(buf, buf + SENSOR_OFF_CHECK);

    int e = write_new_file(key_path, buf, sizeof buf, 0600);
    if (e == 0)
        e = anon_sync_parent(key_path);
    if (e != 0) {
        anon_msg(err, err_len, "%s: cannot write the sensor key: %s", key_path, strerror(e));
        rc = FV_ERR_IO;
        goto out;
    }
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    int n = snprintf(line, sizeof line, "%s %s\n", SENSOR_PUB_TAG, hex);
    e = write_new_file(pub_path, line, (size_t)n, 0644);
    if (e != 0) {
        unlink(key_path);
        anon_msg(err, err_len, "%s: cannot write the sensor public key: %s", pub_path,
                 strerror(e));
        rc = FV_ERR_IO;
        goto out;
    }

out:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

int anon_sensor_pub_read(const char *path, uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES], char *err,
                         size_t err_len)
{
    char text[256], open_err[768];
    FILE *f = fv_fopen_regular_file(path, open_err, sizeof open_err);
    if (f == NULL) {
        anon_msg(err, err_len, "sensor public key: %s", open_err);
        return FV_ERR_IO;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';

    size_t tag_len = strlen(SENSOR_PUB_TAG);
    const char *hex = text + tag_len + 1;
    size_t bin_len = 0;
    const char *end = NULL;
    if (n < tag_len + 1 + 2 * ANON_BOX_PUBLIC_KEY_BYTES ||
        strncmp(text, SENSOR_PUB_TAG " ", tag_len + 1) != 0 ||
        sodium_hex2bin(pk, ANON_BOX_PUBLIC_KEY_BYTES, hex, 2 * ANON_BOX_PUBLIC_KEY_BYTES, NULL,
                       &bin_len, &end) != 0 ||
        bin_len != ANON_BOX_PUBLIC_KEY_BYTES || !(*end == '\n' || *end == '\0')) {
        anon_msg(err, err_len, "%s: not a sensor public key (expected one line \"%s\" and 64 hex"
                 " digits, as `flowveil keys sensor-keygen` writes %s)",
                 path, SENSOR_PUB_TAG, ANON_SENSOR_PUB_FILE);
        return FV_ERR_PARSE;
    }
    /* crypto_scalarmult fails when the product is all zeros, which is
     * the case for the zero key and every other low-order point. */
    uint8_t scalar[crypto_scalarmult_SCALARBYTES], product[crypto_scalarmult_BYTES];
    randombytes_buf(scalar, sizeof scalar);
    int bad = sodium_init() < 0 || crypto_scalarmult(product, scalar, pk) != 0;
    sodium_memzero(scalar, sizeof scalar);
    sodium_memzero(product, sizeof product);
    if (bad) {
        anon_msg(err, err_len, "%s: the sensor public key is all zeros or of low order, so no key"
                 " can be sealed to it; make a new one with `flowveil keys sensor-keygen`",
                 path);
        return FV_ERR_CRYPTO;
    }
    return FV_OK;
}

/* Read a one-line "TAG <64 hex digits>" key file into the 32 bytes PK.
 * OPEN_ERR (may be NULL) gets the reason when the file cannot be opened. */
static int read_tagged_key(const char *path, const char *tag, uint8_t pk[32], char *open_err,
                           size_t open_err_len)
{
    char text[256], why[768];
    FILE *f = fv_fopen_regular_file(path, why, sizeof why);
    if (f == NULL) {
        int e = errno;
        if (open_err != NULL)
            snprintf(open_err, open_err_len, "%s", why);
        return e == ENOENT ? FV_ERR_NOT_FOUND : FV_ERR_IO;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';

    size_t tag_len = strlen(tag);
    size_t bin_len = 0;
    const char *end = NULL;
    if (n < tag_len + 1 + 64 || strncmp(text, tag, tag_len) != 0 || text[tag_len] != ' ' ||
        sodium_hex2bin(pk, 32, text + tag_len + 1, 64, NULL, &bin_len, &end) != 0 ||
        bin_len != 32 || !(*end == '\n' || *end == '\0'))
        return FV_ERR_PARSE;
    return FV_OK;
}

int anon_authority_pub_read(const char *path, uint8_t pk[ANON_SIGN_PUBLIC_KEY_BYTES], char *err,
                            size_t err_len)
{
    char open_err[768];
    int rc = read_tagged_key(path, SIGN_PUB_TAG, pk, open_err, sizeof open_err);
    if (rc == FV_ERR_NOT_FOUND || rc == FV_ERR_IO)
        anon_msg(err, err_len, "authority public key: %s", open_err);
    else if (rc == FV_ERR_PARSE)
        anon_msg(err, err_len, "%s: not an authority public key (expected one line \"%s\" and"
                 " 64 hex digits, as `flowveil keys authority init` writes %s)",
                 path, SIGN_PUB_TAG, ANON_AUTHORITY_PUB_FILE);
    return rc;
}

int anon_authority_keygen(const char *dir, char *err, size_t err_len)
{
    char key_path[PATH_MAX], pub_path[PATH_MAX];
    uint8_t buf[SIGN_FILE_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
    char line[128], hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
    int rc = FV_OK;

    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }
    if (!join_path(key_path, sizeof key_path, dir, ANON_AUTHORITY_KEY_FILE) ||
        !join_path(pub_path, sizeof pub_path, dir, ANON_AUTHORITY_PUB_FILE)) {
        anon_msg(err, err_len, "the authority path is too long (%zu bytes)", strlen(dir));
        return FV_ERR_INVALID;
    }
    struct stat st;
    if (lstat(key_path, &st) == 0 || lstat(pub_path, &st) == 0) {
        anon_msg(err, err_len, "%s: an authority signing key already exists (%s or %s); it is"
                 " never overwritten, because every sensor has pinned its public key",
                 dir, ANON_AUTHORITY_KEY_FILE, ANON_AUTHORITY_PUB_FILE);
        return FV_ERR_INVALID;
    }

    memcpy(buf, SIGN_MAGIC, 8);  // NOLINT(bugprone-not-null-terminated-result): binary magic, no terminator
    crypto_sign_keypair(pk, buf + 8);
    int e = write_new_file(key_path, buf, sizeof buf, 0600);
    if (e == 0)
        e = anon_sync_parent(key_path);
    if (e != 0) {
        anon_msg(err, err_len, "%s: cannot write the authority signing key: %s", key_path,
                 strerror(e));
        rc = FV_ERR_IO;
        goto out;
    }
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    int n = snprintf(line, sizeof line, "%s %s\n", SIGN_PUB_TAG, hex);
    e = write_new_file(pub_path, line, (size_t)n, 0644);
    if (e != 0) {
        unlink(key_path);
        anon_msg(err, err_len, "%s: cannot write the authority public key: %s", pub_path,
                 strerror(e));
        rc = FV_ERR_IO;
    }

out:
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int anon_authority_sign_key_read(const char *dir, uint8_t sk[ANON_SIGN_SECRET_KEY_BYTES],
                                 char *err, size_t err_len)
{
    char path[PATH_MAX];
    uint8_t buf[SIGN_FILE_BYTES + 1];
    if (!join_path(path, sizeof path, dir, ANON_AUTHORITY_KEY_FILE)) {
        anon_msg(err, err_len, "the authority path is too long (%zu bytes)", strlen(dir));
        return FV_ERR_INVALID;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        anon_msg(err, err_len, "%s: cannot open the authority signing key: %s%s", path,
                 strerror(e),
                 e == ENOENT ? "; an authority made by an older version has none: run"
                               " `flowveil keys authority init` on its directory to add one,"
                               " then give sensors its authority.sign.pub" : "");
        return e == ENOENT ? FV_ERR_NOT_FOUND : FV_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        anon_msg(err, err_len, "%s: the authority signing key must be a regular file of mode"
                 " 0600; run `chmod 600 %s`",
                 path, path);
        return FV_ERR_PERMISSION;
    }
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    int rc = FV_OK;
    if (n != SIGN_FILE_BYTES || memcmp(buf, SIGN_MAGIC, 8) != 0) {
        anon_msg(err, err_len, "%s: the authority signing key is damaged; restore it from a"
                 " backup",
                 path);
        rc = FV_ERR_PARSE;
    } else {
        memcpy(sk, buf + 8, ANON_SIGN_SECRET_KEY_BYTES);
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int anon_authority_pin(const char *db_dir, const char *pub_path, char *err, size_t err_len)
{
    char pinned_path[PATH_MAX], line[128], hex[2 * ANON_SIGN_PUBLIC_KEY_BYTES + 1];
    uint8_t pk[ANON_SIGN_PUBLIC_KEY_BYTES], pinned[ANON_SIGN_PUBLIC_KEY_BYTES];

    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }
    int rc = anon_authority_pub_read(pub_path, pk, err, err_len);
    if (rc != FV_OK)
        return rc;
    if (!join_path(pinned_path, sizeof pinned_path, db_dir, ANON_AUTHORITY_PUB_FILE)) {
        anon_msg(err, err_len, "the store path is too long (%zu bytes)", strlen(db_dir));
        return FV_ERR_INVALID;
    }
    rc = read_tagged_key(pinned_path, SIGN_PUB_TAG, pinned, NULL, 0);
    if (rc == FV_OK) {
        if (sodium_memcmp(pk, pinned, sizeof pk) == 0)
            return FV_OK;
        anon_msg(err, err_len, "%s: this sensor already trusts another authority key; if the"
                 " authority really changed its key, delete %s and pin the new one",
                 pub_path, pinned_path);
        return FV_ERR_STATE;
    }
    if (rc != FV_ERR_NOT_FOUND) {
        anon_msg(err, err_len, "%s: the pinned authority key is damaged or unreadable; delete it"
                 " and pin the authority's %s again",
                 pinned_path, ANON_AUTHORITY_PUB_FILE);
        return rc;
    }
    if (mkdir(db_dir, 0700) != 0 && errno != EEXIST) {
        anon_msg(err, err_len, "%s: cannot create the store directory: %s", db_dir,
                 strerror(errno));
        return FV_ERR_IO;
    }
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    int n = snprintf(line, sizeof line, "%s %s\n", SIGN_PUB_TAG, hex);
    int e = write_new_file(pinned_path, line, (size_t)n, 0644);
    if (e == 0)
        e = anon_sync_parent(pinned_path);
    if (e != 0) {
        anon_msg(err, err_len, "%s: cannot write the pinned authority key: %s", pinned_path,
                 strerror(e));
        return FV_ERR_IO;
    }
    return FV_OK;
}

int anon_seal_epoch(const uint8_t key[32], uint64_t epoch_id, uint64_t start_s,
                    const uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES],
                    const uint8_t sign_sk[ANON_SIGN_SECRET_KEY_BYTES],
                    uint8_t out[ANON_SEALED_BYTES])
{
    anon_key_record rec = {.epoch_id = epoch_id, .start_s = start_s, .managed = true};
    unsigned char plain[ANON_FILE_BYTES];
    int rc = FV_OK;

    if (epoch_id == 0 || epoch_id > ANON_EPOCH_MAX)
        return FV_ERR_INVALID;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    memcpy(rec.key, key, ANON_KEY_BYTES);
    anon_record_encode(&rec, plain);

    memcpy(out, SEALED_MAGIC, 8);
    put_be64(out + SEALED_OFF_EPOCH, epoch_id);
    put_be64(out + SEALED_OFF_START, start_s);
    memcpy(out + SEALED_OFF_PK, pk, ANON_BOX_PUBLIC_KEY_BYTES);
    if (crypto_box_seal(out + SEALED_OFF_BOX, plain, sizeof plain, pk) != 0 ||
        crypto_sign_detached(out + SEALED_OFF_SIG, NULL, out, SEALED_OFF_SIG, sign_sk) != 0)
        rc = FV_ERR_CRYPTO;

    sodium_memzero(&rec, sizeof rec);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int anon_sealed_header(const uint8_t *sealed, size_t len, uint64_t *epoch_id, uint64_t *start_s)
{
    if (sealed == NULL || len != ANON_SEALED_BYTES || memcmp(sealed, SEALED_MAGIC, 8) != 0)
        return FV_ERR_PARSE;
    *epoch_id = get_be64(sealed + SEALED_OFF_EPOCH);
    *start_s = get_be64(sealed + SEALED_OFF_START);
    return FV_OK;
}

/* Read and check DB_DIR's sensor key file into BUF (wiped by the caller). */
static int read_sensor_key(const char *path, uint8_t buf[SENSOR_FILE_BYTES], char *err,
                           size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        anon_msg(err, err_len, "%s: cannot open the sensor key: %s%s", path, strerror(e),
                 e == ENOENT ? "; create it with `flowveil keys sensor-keygen` and enroll its"
                               " public key at the authority" : "");
        return e == ENOENT ? FV_ERR_NOT_FOUND : FV_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        anon_msg(err, err_len, "%s: the sensor key is not a regular file", path);
        return FV_ERR_PARSE;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        anon_msg(err, err_len, "%s: the sensor key is accessible by group or others; run"
                 " `chmod 600 %s`",
                 path, path);
        return FV_ERR_PERMISSION;
    }
    ssize_t n = pread(fd, buf, SENSOR_FILE_BYTES, 0);
    close(fd);

    uint8_t check[8];
    if (n == SENSOR_FILE_BYTES)
        sensor_check(buf, check);
    if (n != SENSOR_FILE_BYTES || memcmp(buf, SENSOR_MAGIC, 8) != 0 ||
        sodium_memcmp(check, buf + SENSOR_OFF_CHECK, 8) != 0) {
        anon_msg(err, err_len, "%s: the sensor key is damaged; restore it from a backup, or make"
                 " a new one and enroll it again",
                 path);
        return FV_ERR_PARSE;
    }
    return FV_OK;
}

/* Write REC into KEY_PATH: in place when the file exists (only over an
 * older epoch), else as a new 0600 file. */
static int write_imported_key(const char *key_path, const anon_key_record *rec, char *err,
                              size_t err_len)
{
    unsigned char buf[ANON_FILE_BYTES];
    anon_key_record current;
    int rc = FV_OK;

    int fd = open(key_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
        int new_fd = -1;
        rc = anon_create_key_file(key_path, rec, &new_fd, err, err_len);
        if (rc == FV_ERR_NOT_FOUND) {
            anon_msg(err, err_len, "%s: the key file appeared during the import; retry",
                     key_path);
            rc = FV_ERR_IO;
        }
        if (new_fd >= 0)
            close(new_fd);
        return rc;
    }
    if (fd < 0) {
        anon_msg(err, err_len, "%s: cannot open the key file: %s", key_path, strerror(errno));
        return errno == ELOOP ? FV_ERR_PERMISSION : FV_ERR_IO;
    }

    /* A damaged or locally made key file is replaced. An authority
     * epoch is replaced only by a newer one, so an old sealed file
     * cannot roll the key back. */
    char read_err[512];
    if (anon_read_key_file(fd, key_path, &current, read_err, sizeof read_err) == FV_OK &&
        current.managed && current.epoch_id >= rec->epoch_id) {
        anon_msg(err, err_len, "%s: epoch %llu is not newer than the imported epoch %llu in the"
                 " key file; import the authority's latest sealed file",
                 key_path, (unsigned long long)rec->epoch_id,
                 (unsigned long long)current.epoch_id);
        rc = FV_ERR_STATE;
        goto out;
    }
    anon_record_encode(rec, buf);
    int e = anon_write_record(fd, buf);
    if (e != 0) {
        anon_msg(err, err_len, "%s: writing the imported key failed: %s; run the import again",
                 key_path, strerror(e));
        rc = FV_ERR_IO;
    }

out:
    close(fd);
    sodium_memzero(&current, sizeof current);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int anon_import_sealed(const char *db_dir, const uint8_t *sealed, size_t len,
                       anon_epoch_info *out, char *err, size_t err_len)
{
    char sensor_path[PATH_MAX], key_path[PATH_MAX];
    uint8_t sensor[SENSOR_FILE_BYTES];
    unsigned char plain[ANON_FILE_BYTES];
    anon_key_record rec;
    uint64_t epoch_id = 0, start_s = 0;
    int rc;

    memset(&rec, 0, sizeof rec);
    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }
    if (!join_path(sensor_path, sizeof sensor_path, db_dir, ANON_SENSOR_KEY_FILE) ||
        !join_path(key_path, sizeof key_path, db_dir, "pseudonym.key")) {
        anon_msg(err, err_len, "the store path is too long (%zu bytes)", strlen(db_dir));
        return FV_ERR_INVALID;
    }
    if (sealed != NULL && len >= 8 && memcmp(sealed, SEALED_MAGIC_UNSIGNED, 8) == 0) {
        anon_msg(err, err_len, "this sealed epoch file has no authority signature (format"
                 " FVSEAL01), so its origin cannot be checked; issue the epoch again with this"
                 " version's `flowveil keys authority issue`");
        return FV_ERR_CRYPTO;
    }
    if (anon_sealed_header(sealed, len, &epoch_id, &start_s) != FV_OK) {
        anon_msg(err, err_len, "not a sealed epoch file (expected %d bytes starting with"
                 " %s, got %zu bytes); use a file that `flowveil keys authority issue`"
                 " wrote",
                 ANON_SEALED_BYTES, SEALED_MAGIC, len);
        return FV_ERR_PARSE;
    }

    /* The signature is checked first: nothing in an unsigned file,
     * header included, is trusted. */
    uint8_t authority_pk[ANON_SIGN_PUBLIC_KEY_BYTES];
    char pinned_path[PATH_MAX];
    if (!join_path(pinned_path, sizeof pinned_path, db_dir, ANON_AUTHORITY_PUB_FILE)) {
        anon_msg(err, err_len, "the store path is too long (%zu bytes)", strlen(db_dir));
        return FV_ERR_INVALID;
    }
    rc = read_tagged_key(pinned_path, SIGN_PUB_TAG, authority_pk, NULL, 0);
    if (rc != FV_OK) {
        anon_msg(err, err_len, "%s: %s; pin the authority's public key with `flowveil keys"
                 " import --authority-key FILE` (FILE is the authority's %s)",
                 pinned_path, rc == FV_ERR_PARSE ? "the pinned authority key is damaged"
                                                 : "no authority public key is pinned",
                 ANON_AUTHORITY_PUB_FILE);
        return rc == FV_ERR_PARSE ? FV_ERR_PARSE : FV_ERR_NOT_FOUND;
    }
    if (crypto_sign_verify_detached(sealed + SEALED_OFF_SIG, sealed, SEALED_OFF_SIG,
                                    authority_pk) != 0) {
        anon_msg(err, err_len, "the sealed file of epoch %llu is not signed by the pinned key"
                 " authority (%s); it was forged or damaged, so it is not imported",
                 (unsigned long long)epoch_id, pinned_path);
        return FV_ERR_CRYPTO;
    }
    if (epoch_id == 0 || epoch_id > ANON_EPOCH_MAX) {
        anon_msg(err, err_len, "the sealed file has epoch %llu, outside 1..%llu; ask the"
                 " authority for a new file",
                 (unsigned long long)epoch_id, (unsigned long long)ANON_EPOCH_MAX);
        return FV_ERR_PARSE;
    }

    rc = read_sensor_key(sensor_path, sensor, err, err_len);
    if (rc != FV_OK)
        goto out;
    if (sodium_memcmp(sealed + SEALED_OFF_PK, sensor + SENSOR_OFF_PK,
                      ANON_BOX_PUBLIC_KEY_BYTES) != 0) {
        anon_msg(err, err_len, "the sealed file of epoch %llu is for another sensor; import the"
                 " file the authority wrote for this sensor's name",
                 (unsigned long long)epoch_id);
        rc = FV_ERR_CRYPTO;
        goto out;
    }
    const char *reason = "";
    if (crypto_box_seal_open(plain, sealed + SEALED_OFF_BOX, SEALED_BOX_BYTES,
                             sensor + SENSOR_OFF_PK, sensor + SENSOR_OFF_SK) != 0 ||
        !anon_record_decode(plain, &rec, &reason) || !rec.managed || rec.epoch_id != epoch_id ||
        rec.start_s != start_s) {
        anon_msg(err, err_len, "the sealed file of epoch %llu does not open with this sensor's"
                 " key or is damaged; ask the authority for a new copy",
                 (unsigned long long)epoch_id);
        rc = FV_ERR_CRYPTO;
        goto out;
    }

    rc = write_imported_key(key_path, &rec, err, err_len);
    if (rc == FV_OK && out != NULL) {
        memset(out, 0, sizeof *out);
        out->epoch_id = rec.epoch_id;
        out->start_s = rec.start_s;
    }

out:
    sodium_memzero(sensor, sizeof sensor);
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(&rec, sizeof rec);
    return rc;
}

int anon_sealed_verify(const uint8_t *sealed, size_t len,
                       const uint8_t pk[ANON_SIGN_PUBLIC_KEY_BYTES])
{
    uint64_t epoch_id = 0, start_s = 0;
    if (anon_sealed_header(sealed, len, &epoch_id, &start_s) != FV_OK)
        return FV_ERR_PARSE;
    if (sodium_init() < 0 ||
        crypto_sign_verify_detached(sealed + SEALED_OFF_SIG, sealed, SEALED_OFF_SIG, pk) != 0)
        return FV_ERR_CRYPTO;
    return FV_OK;
}
