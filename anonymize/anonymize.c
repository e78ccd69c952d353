/*
 * anonymize.c: keyed pseudonyms under a rotating epoch key.
 *
 * Key file format (64 bytes, no header or padding; docs/PRIVACY.md
 * repeats it). Tests write this file directly to get known pseudonyms, so
 * the layout is fixed:
 *
 *   offset  size  field
 *        0     8  magic "FVKEY001" (ASCII, no NUL) for a key this store
 *                 made itself, "FVKEYA01" for an epoch key imported from
 *                 a key authority (anon_authority.c), which is never
 *                 rotated locally
 *        8     8  epoch_id, unsigned, big-endian, >= 1
 *       16     8  start_s, seconds since the Unix epoch, big-endian
 *       24    32  key: the epoch key, random bytes
 *       56     8  check: the first 8 bytes of unkeyed BLAKE2b-256
 *                 (crypto_generichash, 32-byte output, no key) over
 *                 bytes 0..55
 *
 * The check detects truncation and corruption. It is no authentication:
 * anyone who can write the file can also compute the check.
 *
 * Rotation overwrites the 64 bytes in place (pwrite at offset 0, then
 * fsync) instead of writing a new file and renaming it, because a rename
 * would leave the old key's data blocks unlinked but unwiped on disk.
 * The record fits one 512-byte sector, which most devices write whole; a
 * torn write would fail the check on the next start.
 */
#include "anonymize.h"
#include "anon_cache.h"
#include "anon_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define ANON_MAGIC "FVKEY001"
#define ANON_MAGIC_AUTHORITY "FVKEYA01"
#define ANON_MAGIC_BYTES 8
#define ANON_CHECK_BYTES 8
#define ANON_CHECKED_BYTES (ANON_FILE_BYTES - ANON_CHECK_BYTES)

/* A managed epoch that is past its rotation period is reported at most
 * this often while the sensor waits for the authority's next key. */
#define ANON_OVERDUE_WARNING_INTERVAL_S 3600u

#define ANON_OFF_EPOCH 8
#define ANON_OFF_START 16
#define ANON_OFF_KEY 24
#define ANON_OFF_CHECK 56

/*
 * The open key. fd stays open for in-place rewrites so rotation still
 * works after the capturing process drops privileges. key points to
 * ANON_KEY_BYTES of sodium_malloc'd memory (guard pages, locked where
 * RLIMIT_MEMLOCK allows). After a failed rotation that could not restore
 * the file, failed is set and every later rotation is refused.
 */
struct anon_ctx {
    int fd;
    char *path;
    uint64_t rotation_s;
    uint64_t epoch_id;
    uint64_t start_s;
    unsigned char *key;
    bool failed;
    /* Called with every pseudonym computed (anon_set_observer), or NULL. */
    anon_observer_fn observer;
    void *observer_ctx;
    bool readonly;      /* opened by anon_open_readonly: never rotates */
    /* The key came from a key authority: rotation only adopts a newer
     * epoch that `flowveil keys import` wrote into the file. */
    bool managed;
    uint64_t overdue_warned_s;
    anon_cache cache;   /* per-epoch pseudonyms (anon_cache.h) */
};

/* ---------------------------------------------------------------------- */
/* Encoding                                                                */
/* ---------------------------------------------------------------------- */

static void anon_store_be64(unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t anon_load_be64(const unsigned char in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* Compute the check field over the first 56 bytes of BUF. */
static void anon_check_compute(const unsigned char buf[ANON_FILE_BYTES],
                               unsigned char check[ANON_CHECK_BYTES])
{
    unsigned char digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, buf, ANON_CHECKED_BYTES, NULL, 0);
    memcpy(check, digest, ANON_CHECK_BYTES);
    sodium_memzero(digest, sizeof digest);
}

void anon_record_encode(const anon_key_record *rec, unsigned char buf[ANON_FILE_BYTES])
{
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): binary magic, no terminator
    memcpy(buf, rec->managed ? ANON_MAGIC_AUTHORITY : ANON_MAGIC, ANON_MAGIC_BYTES);
    anon_store_be64(buf + ANON_OFF_EPOCH, rec->epoch_id);
    anon_store_be64(buf + ANON_OFF_START, rec->start_s);
    memcpy(buf + ANON_OFF_KEY, rec->key, ANON_KEY_BYTES);
    anon_check_compute(buf, buf + ANON_OFF_CHECK);
}

/* Decode BUF into REC. Returns false for a wrong magic, a wrong check or
 * epoch 0; REASON gets a short description (no key bytes). */
bool anon_record_decode(const unsigned char buf[ANON_FILE_BYTES], anon_key_record *rec,
                        const char **reason)
{
    bool managed = memcmp(buf, ANON_MAGIC_AUTHORITY, ANON_MAGIC_BYTES) == 0;
    if (!managed && memcmp(buf, ANON_MAGIC, ANON_MAGIC_BYTES) != 0) {
        *reason = "it does not start with the magic FVKEY001 or FVKEYA01";
        return false;
    }
    unsigned char check[ANON_CHECK_BYTES];
    anon_check_compute(buf, check);
    if (sodium_memcmp(check, buf + ANON_OFF_CHECK, ANON_CHECK_BYTES) != 0) {
        *reason = "its check bytes do not match its content";
        return false;
    }
    rec->epoch_id = anon_load_be64(buf + ANON_OFF_EPOCH);
    rec->start_s = anon_load_be64(buf + ANON_OFF_START);
    if (rec->epoch_id == 0) {
        *reason = "its epoch id is 0";
        return false;
    }
    memcpy(rec->key, buf + ANON_OFF_KEY, ANON_KEY_BYTES);
    rec->managed = managed;
    return true;
}

/* ---------------------------------------------------------------------- */
/* File access                                                             */
/* ---------------------------------------------------------------------- */

void FV_PRINTF(3, 4) anon_msg(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Write all of BUF at offset 0 and fsync. Returns 0 or an errno value. */
int anon_write_record(int fd, const unsigned char buf[ANON_FILE_BYTES])
{
    size_t done = 0;
    while (done < ANON_FILE_BYTES) {
        ssize_t n = pwrite(fd, buf + done, ANON_FILE_BYTES - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        done += (size_t)n;
    }
    if (fsync(fd) != 0)
        return errno;
    return 0;
}

/* Fsync the directory containing PATH so a new file's entry is durable.
 * Returns 0 or an errno value. */
int anon_sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof dir)
            return ENAMETOOLONG;
        memcpy(dir, path, len);
        dir[len] = '\0';
    }

    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno;
    int rc = fsync(dfd) != 0 ? errno : 0;
    close(dfd);
    return rc;
}

/*
 * Check that FD is a regular file of exactly 64 bytes that only its owner
 * can access, then read and decode it. Returns FV_OK, FV_ERR_PERMISSION,
 * FV_ERR_PARSE or FV_ERR_IO with a message naming PATH in ERR.
 */
int anon_read_key_file(int fd, const char *path, anon_key_record *rec, char *err,
                              size_t err_len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        anon_msg(err, err_len, "%s: cannot stat the key file: %s", path, strerror(errno));
        return FV_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        anon_msg(err, err_len, "%s: the key file is not a regular file; point the key path at a"
                 " file",
                 path);
        return FV_ERR_PARSE;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        anon_msg(err, err_len, "%s: the key file is accessible by group or others (mode %04o);"
                 " run `chmod 600 %s`",
                 path, (unsigned)(st.st_mode & 07777), path);
        return FV_ERR_PERMISSION;
    }

    unsigned char buf[ANON_FILE_BYTES + 1];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = pread(fd, buf + got, sizeof buf - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            anon_msg(err, err_len, "%s: cannot read the key file: %s", path, strerror(errno));
            sodium_memzero(buf, sizeof buf);
            return FV_ERR_IO;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }

    const char *reason = "it is not 64 bytes long";
    bool ok = got == ANON_FILE_BYTES && anon_record_decode(buf, rec, &reason);
    sodium_memzero(buf, sizeof buf);
    if (!ok) {
        anon_msg(err, err_len, "%s: the key file is corrupt (%s, %zu%s bytes read); restore it"
                 " from a backup, or remove it to start a new epoch, which makes old and new"
                 " pseudonyms unlinkable",
                 path, reason, got, got > ANON_FILE_BYTES ? " or more" : "");
        return FV_ERR_PARSE;
    }
    return FV_OK;
}

/*
 * Create the key file at PATH with O_EXCL and mode 0600 and write REC into
 * it, syncing the file and its directory. On failure the partial file is
 * removed. *FD_OUT gets the open descriptor. Returns FV_OK, FV_ERR_IO, or
 * FV_ERR_NOT_FOUND if another process created the file first (EEXIST).
 */
int anon_create_key_file(const char *path, const anon_key_record *rec, int *fd_out,
                                char *err, size_t err_len)
{
    unsigned char buf[ANON_FILE_BYTES];
    int rc = FV_OK;

    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return FV_ERR_NOT_FOUND;
        anon_msg(err, err_len, "%s: cannot create the key file: %s; check that its directory"
                 " exists and is writable",
                 path, strerror(errno));
        return FV_ERR_IO;
    }

    /* The umask can only clear bits of 0600. Set the mode exactly so the
     * owner can still rewrite the file after a restart. */
    anon_record_encode(rec, buf);
    int e = fchmod(fd, 0600) != 0 ? errno : anon_write_record(fd, buf);
    if (e == 0)
        e = anon_sync_parent(path);
    if (e != 0) {
        anon_msg(err, err_len, "%s: cannot write the new key file: %s; check free space and"
                 " permissions",
                 path, strerror(e));
        close(fd);
        unlink(path);
        rc = FV_ERR_IO;
        goto out;
    }
    *fd_out = fd;

out:
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Context                                                                 */
/* ---------------------------------------------------------------------- */

/* Allocate a guarded, locked key buffer; NULL if out of memory. */
static unsigned char *anon_key_alloc(void)
{
    unsigned char *key = sodium_malloc(ANON_KEY_BYTES);
    if (key != NULL) {
        /* sodium_malloc locks already where it can; a failing lock (low
         * RLIMIT_MEMLOCK) only means the key may reach swap. */
        (void)sodium_mlock(key, ANON_KEY_BYTES);
    }
    return key;
}

static void anon_key_free(unsigned char *key)
{
    if (key == NULL)
        return;
    sodium_memzero(key, ANON_KEY_BYTES);
    sodium_munlock(key, ANON_KEY_BYTES);
    sodium_free(key);
}

int anon_open(const char *key_path, uint64_t rotation_s, uint64_t now_s, anon_ctx **out,
              char *err, size_t err_len)
{
    anon_key_record rec;
    anon_ctx *ctx = NULL;
    int rc;

    memset(&rec, 0, sizeof rec);
    if (out != NULL)
        *out = NULL;
    if (key_path == NULL || out == NULL || rotation_s == 0) {
        anon_msg(err, err_len, "anonymize: a key path and a rotation period above 0 are required");
        return FV_ERR_INVALID;
    }
    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }

    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    ctx->fd = -1;
    ctx->rotation_s = rotation_s;
    ctx->path = strdup(key_path);
    ctx->key = anon_key_alloc();
    if (ctx->path == NULL || ctx->key == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }

    /* Open the existing file, or create epoch 1; retry the open once if
     * another process creates the file between the two steps. */
    for (int attempt = 0; attempt < 2; attempt++) {
        /* Never follow a symbolic link: rotation overwrites the file in
         * place, and must not do so at a place someone else chose. A
         * FIFO must not block the open either. */
        ctx->fd = open(key_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (ctx->fd >= 0) {
            rc = anon_read_key_file(ctx->fd, key_path, &rec, err, err_len);
            break;
        }
        if (errno == ELOOP) {
            anon_msg(err, err_len, "%s: the key file is a symbolic link; replace it with the key"
                     " file itself",
                     key_path);
            rc = FV_ERR_PERMISSION;
            break;
        }
        if (errno != ENOENT) {
            anon_msg(err, err_len, "%s: cannot open the key file: %s; check the path and its"
                     " permissions",
                     key_path, strerror(errno));
            rc = errno == EACCES ? FV_ERR_PERMISSION : FV_ERR_IO;
            break;
        }
        /* A sensor of a key authority never makes its own epoch key. */
        if (anon_authority_mode(key_path)) {
            anon_msg(err, err_len, "%s: no epoch key yet, and this store has a sensor key"
                     " (sensor.box.key), so its keys come from the key authority; import the"
                     " authority's sealed epoch file with `flowveil keys import`",
                     key_path);
            rc = FV_ERR_NOT_FOUND;
            break;
        }

        rec.epoch_id = 1;
        rec.start_s = now_s;
        rec.managed = false;
        randombytes_buf(rec.key, sizeof rec.key);
        rc = anon_create_key_file(key_path, &rec, &ctx->fd, err, err_len);
        if (rc != FV_ERR_NOT_FOUND)
            break;
        anon_msg(err, err_len, "%s: the key file appeared and vanished during open; retry",
                 key_path);
        rc = FV_ERR_IO;
    }
    if (rc != FV_OK)
        goto out;

    if (!rec.managed && anon_authority_mode(key_path)) {
        anon_msg(err, err_len, "%s: this store has a sensor key (sensor.box.key), so its keys"
                 " come from the key authority, but the key file holds a locally made key;"
                 " import the authority's sealed epoch file with `flowveil keys import`",
                 key_path);
        rc = FV_ERR_STATE;
        goto out;
    }
    memcpy(ctx->key, rec.key, ANON_KEY_BYTES);
    ctx->epoch_id = rec.epoch_id;
    ctx->start_s = rec.start_s;
    ctx->managed = rec.managed;

    /* A key older than the period must not be used for new records. */
    int r = anon_maybe_rotate(ctx, now_s);
    if (r < 0) {
        anon_msg(err, err_len, "%s: the epoch is due for rotation but rewriting the key file"
                 " failed: %s",
                 key_path, fv_strerror(-r));
        rc = -r;
        goto out;
    }

    *out = ctx;
    ctx = NULL;
    rc = FV_OK;

out:
    sodium_memzero(&rec, sizeof rec);
    anon_close(&ctx);
    return rc;
}

void anon_close(anon_ctx **ctx)
{
    if (ctx == NULL || *ctx == NULL)
        return;
    anon_ctx *c = *ctx;
    anon_cache_free(&c->cache);
    anon_key_free(c->key);
    if (c->fd >= 0)
        close(c->fd);
    free(c->path);
    free(c);
    *ctx = NULL;
}

/*
 * Draw a fresh key and write it before touching the old one, so a failed
 * write leaves the context on the old key. If the rewrite failed part way,
 * the old record is written back. If that fails too, the context is marked
 * failed, because the file then contains neither key intact.
 */
int anon_rotate(anon_ctx *ctx, uint64_t now_s)
{
    if (ctx == NULL)
        return FV_ERR_INVALID;
    if (ctx->failed || ctx->readonly || ctx->managed)
        return FV_ERR_STATE;

    unsigned char buf[ANON_FILE_BYTES];
    anon_key_record rec = {.epoch_id = ctx->epoch_id + 1, .start_s = now_s};
    unsigned char *new_key = anon_key_alloc();
    int rc;

    if (new_key == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    randombytes_buf(new_key, ANON_KEY_BYTES);
    memcpy(rec.key, new_key, ANON_KEY_BYTES);
    anon_record_encode(&rec, buf);

    int e = anon_write_record(ctx->fd, buf);
    if (e != 0) {
        fv_error("%s: rewriting the key file failed: %s; keeping epoch %llu", ctx->path,
                 strerror(e), (unsigned long long)ctx->epoch_id);
        anon_key_record old = {.epoch_id = ctx->epoch_id, .start_s = ctx->start_s};
        memcpy(old.key, ctx->key, ANON_KEY_BYTES);
        anon_record_encode(&old, buf);
        sodium_memzero(&old, sizeof old);
        if (anon_write_record(ctx->fd, buf) != 0) {
            fv_error("%s: restoring the previous key record failed as well; restore the file"
                     " or remove it to start a new epoch",
                     ctx->path);
            ctx->failed = true;
        }
        rc = FV_ERR_IO;
        goto out;
    }

    /* The file contains the new key, so swap, then wipe and free the old one. */
    unsigned char *old_key = ctx->key;
    ctx->key = new_key;
    new_key = NULL;
    anon_key_free(old_key);
    /* Cached pseudonyms belong to the old key: none may outlive it. */
    anon_cache_reset(&ctx->cache);
    ctx->epoch_id = rec.epoch_id;
    ctx->start_s = rec.start_s;
    rc = FV_OK;

out:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(&rec, sizeof rec);
    anon_key_free(new_key);
    return rc;
}

/*
 * Adopt the epoch that `flowveil keys import` wrote into the key file,
 * if it is newer than the one in use. Returns 1 if the key changed, 0
 * if not. A managed epoch past its period stays in use (the sensor has
 * no other key it may use) and is reported once an hour.
 */
static int anon_adopt_imported(anon_ctx *ctx, uint64_t now_s)
{
    anon_key_record rec;
    char err[512];
    int changed = 0;

    if (anon_read_key_file(ctx->fd, ctx->path, &rec, err, sizeof err) != FV_OK) {
        fv_error("%s; keeping epoch %llu", err, (unsigned long long)ctx->epoch_id);
    } else if (rec.managed && rec.epoch_id > ctx->epoch_id) {
        memcpy(ctx->key, rec.key, ANON_KEY_BYTES);
        anon_cache_reset(&ctx->cache);
        ctx->epoch_id = rec.epoch_id;
        ctx->start_s = rec.start_s;
        changed = 1;
    } else if (now_s >= ctx->start_s && now_s - ctx->start_s >= ctx->rotation_s &&
               (ctx->overdue_warned_s == 0 ||
                now_s - ctx->overdue_warned_s >= ANON_OVERDUE_WARNING_INTERVAL_S)) {
        fv_warning("%s: authority epoch %llu is past the rotation period and stays in use until"
                   " the next epoch key is imported with `flowveil keys import`",
                   ctx->path, (unsigned long long)ctx->epoch_id);
        ctx->overdue_warned_s = now_s;
    }
    sodium_memzero(&rec, sizeof rec);
    return changed;
}

int anon_maybe_rotate(anon_ctx *ctx, uint64_t now_s)
{
    if (ctx == NULL)
        return -FV_ERR_INVALID;
    if (ctx->managed && !ctx->readonly)
        return anon_adopt_imported(ctx, now_s);

    /* A clock set back before start_s never triggers a rotation. A
     * read-only context keeps the epoch of the file it read. */
    if (ctx->readonly || now_s < ctx->start_s || now_s - ctx->start_s < ctx->rotation_s)
        return 0;
    int rc = anon_rotate(ctx, now_s);
    return rc == FV_OK ? 1 : -rc;
}

void anon_pseudonym(anon_ctx *ctx, anon_type type, const uint8_t *id, size_t len,
                    uint8_t out[FV_PSEUDONYM_BYTES])
{
    crypto_generichash_state st;
    unsigned char tag = (unsigned char)type;

    if (anon_cache_get(&ctx->cache, type, id, len, out))
        goto observe;

    crypto_generichash_init(&st, ctx->key, ANON_KEY_BYTES, FV_PSEUDONYM_BYTES);
    crypto_generichash_update(&st, &tag, 1);
    if (len > 0)
        crypto_generichash_update(&st, id, len);
    crypto_generichash_final(&st, out, FV_PSEUDONYM_BYTES);

    /* The state holds the key block. */
    sodium_memzero(&st, sizeof st);
    anon_cache_put(&ctx->cache, type, id, len, out);

observe:
    if (ctx->observer != NULL)
        ctx->observer(ctx->observer_ctx, type, id, len, out);
}

/* Subkey id and crypto_kdf contexts of the prefix-preserving PRF. Stored
 * addresses depend on them: never change them. */
#define ANON_PFX_SUBKEY_ID 1
#define ANON_PFX_CONTEXT_V4 "fvpfxpv4"
#define ANON_PFX_CONTEXT_V6 "fvpfxpv6"
#define ANON_PFX_PRF_BYTES 16   /* crypto_generichash_BYTES_MIN */

_Static_assert(ANON_KEY_BYTES == crypto_kdf_KEYBYTES, "the epoch key is the crypto_kdf master key");

int anon_prefix_preserving(anon_ctx *ctx, int family, const uint8_t in[16], uint8_t out[16])
{
    if (ctx == NULL || (family != 4 && family != 6))
        return FV_ERR_INVALID;

    size_t addr_len = family == 4 ? 4 : 16;
    unsigned bits = (unsigned)addr_len * 8;
    unsigned char subkey[crypto_generichash_KEYBYTES];
    /* message = u8 bit index || the address bytes with bits from the
     * index on cleared; the index tells apart prefixes that pad alike. */
    unsigned char msg[1 + 16];
    unsigned char prf[ANON_PFX_PRF_BYTES];
    uint8_t result[16] = {0};
    int rc = FV_OK;

    if (crypto_kdf_derive_from_key(subkey, sizeof subkey, ANON_PFX_SUBKEY_ID,
                                   family == 4 ? ANON_PFX_CONTEXT_V4 : ANON_PFX_CONTEXT_V6,
                                   ctx->key) != 0) {
        rc = FV_ERR_CRYPTO;
        goto out;
    }

    memset(msg, 0, sizeof msg);
    for (unsigned i = 0; i < bits; i++) {
        unsigned byte = i / 8;
        unsigned char mask = (unsigned char)(0x80u >> (i % 8));

        /* msg + 1 holds input bits 0..i-1 here: bit i-1 was copied in
         * the previous round, and every later bit is still zero. */
        msg[0] = (unsigned char)i;
        crypto_generichash(prf, sizeof prf, msg, 1 + addr_len, subkey, sizeof subkey);

        unsigned char in_bit = in[byte] & mask;
        unsigned char flip = (prf[0] & 1u) != 0 ? mask : 0;
        result[byte] |= (unsigned char)(in_bit ^ flip);
        msg[1 + byte] |= in_bit;
    }
    memcpy(out, result, 16);

out:
    sodium_memzero(subkey, sizeof subkey);
    sodium_memzero(msg, sizeof msg);
    sodium_memzero(prf, sizeof prf);
    sodium_memzero(result, sizeof result);
    return rc;
}

int anon_truncate(int family, const uint8_t in[16], unsigned prefix_len, uint8_t out[16])
{
    if ((family != 4 && family != 6) || prefix_len > (family == 4 ? 32u : 128u))
        return FV_ERR_INVALID;

    size_t addr_len = family == 4 ? 4 : 16;
    uint8_t result[16] = {0};
    for (size_t byte = 0; byte < addr_len; byte++) {
        unsigned first_bit = (unsigned)byte * 8;
        if (prefix_len >= first_bit + 8) {
            result[byte] = in[byte];
        } else if (prefix_len > first_bit) {
            unsigned keep = prefix_len - first_bit;
            result[byte] = (uint8_t)(in[byte] & (0xffu << (8 - keep)));
        }
    }
    memcpy(out, result, 16);
    return FV_OK;
}

void anon_epoch(const anon_ctx *ctx, anon_epoch_info *out)
{
    out->epoch_id = ctx->epoch_id;
    out->start_s = ctx->start_s;
    out->rotation_s = ctx->rotation_s;
    out->next_rotation_s = ctx->start_s + ctx->rotation_s;
}

int anon_key_file_info(const char *key_path, uint64_t rotation_s, anon_epoch_info *out,
                       char *err, size_t err_len)
{
    if (key_path == NULL || out == NULL)
        return FV_ERR_INVALID;
    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }

    int fd = open(key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        anon_msg(err, err_len, "%s: cannot open the key file: %s%s", key_path,
                 e == ELOOP ? "it is a symbolic link" : strerror(e),
                 e == ENOENT ? "; the first capture or ingest creates it" : "");
        if (e == ENOENT)
            return FV_ERR_NOT_FOUND;
        return e == EACCES ? FV_ERR_PERMISSION : FV_ERR_IO;
    }

    anon_key_record rec;
    int rc = anon_read_key_file(fd, key_path, &rec, err, err_len);
    close(fd);
    if (rc == FV_OK) {
        out->epoch_id = rec.epoch_id;
        out->start_s = rec.start_s;
        out->rotation_s = rotation_s;
        out->next_rotation_s = rec.start_s + rotation_s;
    }
    sodium_memzero(&rec, sizeof rec);
    return rc;
}

void anon_set_observer(anon_ctx *ctx, anon_observer_fn fn, void *fn_ctx)
{
    if (ctx == NULL)
        return;
    ctx->observer = fn;
    ctx->observer_ctx = fn_ctx;
}

int anon_open_readonly(const char *key_path, anon_ctx **out, char *err, size_t err_len)
{
    anon_key_record rec;
    anon_ctx *ctx = NULL;
    int fd = -1;
    int rc;

    memset(&rec, 0, sizeof rec);
    if (out != NULL)
        *out = NULL;
    if (key_path == NULL || out == NULL) {
        anon_msg(err, err_len, "anonymize: a key path is required");
        return FV_ERR_INVALID;
    }
    if (sodium_init() < 0) {
        anon_msg(err, err_len, "anonymize: libsodium failed to initialize");
        return FV_ERR_CRYPTO;
    }

    fd = open(key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        anon_msg(err, err_len, "%s: cannot open the key file: %s%s", key_path,
                 e == ELOOP ? "it is a symbolic link" : strerror(e),
                 e == ENOENT ? "; no capture or ingest has used this store yet" : "");
        if (e == ENOENT)
            return FV_ERR_NOT_FOUND;
        return e == EACCES ? FV_ERR_PERMISSION : FV_ERR_IO;
    }
    rc = anon_read_key_file(fd, key_path, &rec, err, err_len);
    if (rc != FV_OK)
        goto out;

    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    ctx->fd = -1;
    ctx->readonly = true;
    ctx->path = strdup(key_path);
    ctx->key = anon_key_alloc();
    if (ctx->path == NULL || ctx->key == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    memcpy(ctx->key, rec.key, ANON_KEY_BYTES);
    ctx->epoch_id = rec.epoch_id;
    ctx->start_s = rec.start_s;
    *out = ctx;
    ctx = NULL;

out:
    sodium_memzero(&rec, sizeof rec);
    if (fd >= 0)
        close(fd);
    anon_close(&ctx);
    return rc;
}

void anon_set_cache(anon_ctx *ctx, bool enabled)
{
    if (ctx == NULL)
        return;
    if (!enabled)
        anon_cache_free(&ctx->cache);
    ctx->cache.disabled = !enabled;
    ctx->cache.hits = 0;
    ctx->cache.misses = 0;
}

void anon_prefetch(anon_ctx *ctx, anon_type type, const uint8_t *id, size_t len)
{
    if (ctx != NULL)
        anon_cache_prefetch(&ctx->cache, type, id, len);
}

void anon_cache_stats(const anon_ctx *ctx, anon_cache_info *out)
{
    out->hits = ctx != NULL ? ctx->cache.hits : 0;
    out->misses = ctx != NULL ? ctx->cache.misses : 0;
}
