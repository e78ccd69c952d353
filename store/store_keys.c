/*
 * store_keys.c: the data key file DB/data.keys and the encryption of
 * record values (record format version 2).
 *
 * Every record value is encrypted under a random key of its class and
 * its stored-at day. Retention destroys a day's key once every record of
 * that day has expired, so a copy of data.mdb taken afterwards (or its
 * free pages) cannot be read even where the deleted rows still linger.
 *
 * Key file layout. Integers are little-endian. The file is a 32-byte
 * header followed by fixed 48-byte slots. A slot of all zero bytes is
 * free, and free slots are reused before the file grows.
 *
 *   header  8 bytes magic "FVDKEYS\n", u32 version (1), u32 slot size (48),
 *           u64 generation (raised by every change, so readers notice
 *           changes made by another process), 8 bytes zero
 *   slot    u8 class (fv_class), u8 flags (bit 0: in use), u16 zero,
 *           u32 day (days since 1970-01-01 UTC of the stored-at time),
 *           32 bytes key, 8 bytes zero
 *
 * Record value, format version 2 or 3:
 *
 *   u8  version, 2 or 3
 *   24 bytes nonce: a random 16-byte prefix, drawn once per data key
 *   and lock session, then a u64 little-endian counter (see
 *   seal_subkey_get)
 *   the ciphertext of the format 1 encoding (store_codec.c), with its
 *   16-byte tag
 *
 * Format 2 is crypto_aead_xchacha20poly1305_ietf under the data key and
 * the 24-byte nonce. Format 3 is AES-256-GCM under a subkey
 * BLAKE2b-256(key = data key, message = VALUE_V3_LABEL || prefix), with
 * the 12-byte nonce 00000000 || counter. Both have 41 bytes of overhead.
 * A writer seals format 3 where the CPU has AES-NI and PCLMULQDQ, with
 * libsodium's crypto_aead_aes256gcm, whose key expansion and rounds use
 * those instructions. Other CPUs seal format 2, because AES without them
 * is slower than ChaCha20 and looks up tables whose timing depends on
 * the key. Readers open both formats on any CPU: format 3 with libsodium
 * where it offers AES-256-GCM, else with nettle's portable gcm_aes256.
 *
 * The associated data is u8 class | the 8-byte big-endian LMDB key (the
 * record id) | u32 day, so a value copied to another class, id or day
 * fails authentication.
 *
 * Concurrency: every change to the file is made while the caller holds
 * an LMDB write transaction, which LMDB serializes across processes, and
 * the in-memory table is re-read first whenever the generation changed.
 * keys.lock guards the table against the threads of this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/gcm.h>
#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define KEYS_FILE_NAME "data.keys"
#define KEYS_MAGIC "FVDKEYS\n"
#define KEYS_VERSION 1u
#define KEYS_HEADER_BYTES 32u
#define KEYS_SLOT_BYTES 48u
#define KEYS_FLAG_IN_USE 0x01u
#define KEYS_GENERATION_OFFSET 16

/* Slots a table may hold: every class for the longest retention, plus
 * slack for days created late (ingest with an old --now). A larger file
 * is damaged and rejected. */
#define KEYS_SLOTS_MAX ((size_t)FV_CLASS_COUNT * (STORE_RETENTION_MAX_S / 86400u + 2u) + 256u)

#define VALUE_VERSION_XCHACHA 2u
#define VALUE_VERSION_AES_GCM 3u
#define VALUE_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define VALUE_TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* Domain separation of the format 3 subkey from every other use of a
 * data key. */
#define VALUE_V3_LABEL "flowveil value v3 aes-256-gcm"
#define VALUE_AD_BYTES 13u
/* The nonce is HChaCha20 input (prefix) followed by the 8 bytes that
 * become the last 8 of the inner ChaCha20-Poly1305 IETF nonce. */
#define VALUE_PREFIX_BYTES crypto_core_hchacha20_INPUTBYTES
#define VALUE_COUNTER_BYTES (VALUE_NONCE_BYTES - VALUE_PREFIX_BYTES)

/* Subkeys cached per lock session: a commit batch touches one key per
 * class and day, so a few classes across midnight fit. A session that
 * uses more keys replaces entries and derives again under a new prefix. */
#define STORE_SEAL_SUBKEYS 16u

/* The sealing state of one data key in a lock session: for format 2 the
 * XChaCha20 subkey HChaCha20(data key of (cls, day), prefix), for
 * format 3 libsodium's expanded AES-256-GCM key of the subkey of the
 * prefix. */
struct store_seal_subkey {
    crypto_aead_aes256gcm_state aes; /* 16-byte aligned, see the assertion below */
    uint8_t subkey[crypto_core_hchacha20_OUTPUTBYTES];
    uint8_t prefix[VALUE_PREFIX_BYTES];
    uint64_t counter;               /* next counter value under this prefix */
    uint64_t process;               /* current_process_mark() at derivation */
    uint32_t day;
    uint8_t cls;
    uint8_t version;                /* value format the entry seals */
    bool in_use;
};

/* The format 3 subkey of one data key and nonce prefix, kept by
 * store_value_open for the next value under the same prefix. */
struct store_open_subkey {
    crypto_aead_aes256gcm_state aes; /* with libsodium (use_sodium) */
    struct gcm_aes256_ctx gcm;       /* with nettle otherwise */
    bool use_sodium;
    uint8_t prefix[VALUE_PREFIX_BYTES];
    size_t index;                   /* slot of the data key */
    uint32_t day;
    uint8_t cls;
    bool valid;
};

_Static_assert(STORE_DATA_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "data keys are XChaCha20-Poly1305 keys");
_Static_assert(STORE_VALUE_OVERHEAD == 1u + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                           crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "value overhead is version, nonce and tag");
_Static_assert(VALUE_COUNTER_BYTES == 8u &&
                   crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 4u + VALUE_COUNTER_BYTES,
               "XChaCha20 nonce is a 16-byte HChaCha20 input and the 8-byte tail of the "
               "inner IETF nonce");
_Static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES ==
                   crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "same tag size");
/* libsodium's AES-GCM state must be 16-byte aligned. sodium_malloc ends
 * its block at a guard page (sodium/utils.h), so a block whose size is a
 * multiple of 16 starts 16-byte aligned. */
_Static_assert(sizeof(struct store_seal_subkey) % 16u == 0 &&
                   sizeof(struct store_open_subkey) % 16u == 0,
               "sodium_malloc'd subkey entries keep libsodium's AES-GCM state aligned");
_Static_assert(GCM_DIGEST_SIZE == VALUE_TAG_BYTES && GCM_IV_SIZE == 4u + VALUE_COUNTER_BYTES &&
                   STORE_DATA_KEY_BYTES == AES256_KEY_SIZE,
               "format 3 has the tag size, nonce tail and key size of format 2");

/* The format 3 subkey of data key KEY and nonce prefix PREFIX. */
static void aes_gcm_subkey(uint8_t subkey[STORE_DATA_KEY_BYTES],
                           const uint8_t key[STORE_DATA_KEY_BYTES],
                           const uint8_t prefix[VALUE_PREFIX_BYTES])
{
    uint8_t message[sizeof VALUE_V3_LABEL - 1 + VALUE_PREFIX_BYTES];
    memcpy(message, VALUE_V3_LABEL, sizeof VALUE_V3_LABEL - 1);
    memcpy(message + sizeof VALUE_V3_LABEL - 1, prefix, VALUE_PREFIX_BYTES);
    crypto_generichash(subkey, STORE_DATA_KEY_BYTES, message, sizeof message, key,
                       STORE_DATA_KEY_BYTES);
}

/* The 12-byte AES-GCM and ChaCha20-Poly1305 IETF nonce of a value: four
 * zero bytes, then the last 8 bytes of its 24-byte nonce. */
static void inner_nonce(uint8_t inner[GCM_IV_SIZE], const uint8_t nonce[VALUE_NONCE_BYTES])
{
    memset(inner, 0, 4);
    memcpy(inner + 4, nonce + VALUE_PREFIX_BYTES, VALUE_COUNTER_BYTES);
}

/* True where libsodium offers AES-256-GCM: x86 with AES-NI and
 * PCLMULQDQ. Sealing format 3 is then faster than format 2 and free of
 * key-dependent table lookups. */
static bool cpu_seals_aes_gcm(void)
{
    return crypto_aead_aes256gcm_is_available() != 0;
}

static void put_le(uint8_t *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = width; i > 0; i--)
        v = (v << 8) | p[i - 1];
    return v;
}

uint32_t store_day_of(uint64_t stored_us)
{
    uint64_t day = stored_us / STORE_DAY_US;
    return day > UINT32_MAX ? UINT32_MAX : (uint32_t)day;
}

static bool keys_path(const store_env *env, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "%s/%s", env->dir, KEYS_FILE_NAME);
    return n > 0 && (size_t)n < out_len;
}

/* Write all of BUF at OFF. */
static int pwrite_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Read LEN bytes at OFF; return the count read (short at end of file) or -1. */
static ssize_t pread_full(int fd, uint8_t *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* ---------------------------------------------------------------------- */
/* In-memory table                                                         */
/* ---------------------------------------------------------------------- */

/* Wipe every cached subkey. Caller holds k->lock. */
static void seal_subkeys_wipe(store_keys *k)
{
    if (!k->seal_dirty || k->seal == NULL)
        return;
    sodium_memzero(k->seal, STORE_SEAL_SUBKEYS * sizeof *k->seal);
    k->seal_next = 0;
    k->seal_dirty = false;
}

/* Forget the subkey that store_value_open keeps. Caller holds k->lock;
 * called whenever a key may have changed or been destroyed. */
static void open_cache_wipe(store_keys *k)
{
    if (k->open_cache != NULL && k->open_cache->valid)
        sodium_memzero(k->open_cache, sizeof *k->open_cache);
}

/* Grow the table to at least N slots. Keys live only in sodium_malloc'd
 * memory (guard pages, locked where the system allows), so the old table
 * is copied over and freed with sodium_free, which wipes it. */
static int table_reserve(store_keys *k, size_t n)
{
    if (n <= k->cap)
        return FV_OK;
    if (n > KEYS_SLOTS_MAX)
        return FV_ERR_FULL;
    size_t cap = k->cap == 0 ? 64 : k->cap;
    while (cap < n)
        cap *= 2;
    if (cap > KEYS_SLOTS_MAX)
        cap = KEYS_SLOTS_MAX;
    store_key_slot *slots = sodium_malloc(cap * sizeof *slots);
    if (slots == NULL)
        return FV_ERR_NOMEM;
    memset(slots, 0, cap * sizeof *slots);
    if (k->slots != NULL) {
        memcpy(slots, k->slots, k->count * sizeof *slots);
        sodium_free(k->slots);
    }
    k->slots = slots;
    k->cap = cap;
    return FV_OK;
}

static void header_encode(uint8_t out[KEYS_HEADER_BYTES], uint64_t generation)
{
    memset(out, 0, KEYS_HEADER_BYTES);
    memcpy(out, KEYS_MAGIC, 8);  // NOLINT(bugprone-not-null-terminated-result): 8-byte file magic, no terminator
    put_le(out + 8, KEYS_VERSION, 4);
    put_le(out + 12, KEYS_SLOT_BYTES, 4);
    put_le(out + KEYS_GENERATION_OFFSET, generation, 8);
}

/* Check a header read from the file and return its generation. */
static int header_decode(const store_env *env, const uint8_t in[KEYS_HEADER_BYTES],
                         uint64_t *generation)
{
    if (memcmp(in, KEYS_MAGIC, 8) != 0) {
        fv_error("store %s: %s has no data key file header; restore it from the store's "
                 "backup or move the store aside",
                 env->dir, KEYS_FILE_NAME);
        return FV_ERR_PARSE;
    }
    uint64_t version = get_le(in + 8, 4), slot_bytes = get_le(in + 12, 4);
    if (version != KEYS_VERSION || slot_bytes != KEYS_SLOT_BYTES) {
        fv_error("store %s: %s has version %llu with %llu-byte slots; this flowveil reads "
                 "version %u with %u-byte slots",
                 env->dir, KEYS_FILE_NAME, (unsigned long long)version,
                 (unsigned long long)slot_bytes, KEYS_VERSION, KEYS_SLOT_BYTES);
        return FV_ERR_UNSUPPORTED;
    }
    *generation = get_le(in + KEYS_GENERATION_OFFSET, 8);
    return FV_OK;
}

/* Re-read every slot of the file into the table. Caller holds k->lock. */
static int table_reload(store_env *env, uint64_t generation)
{
    store_keys *k = &env->keys;
    struct stat st;
    if (fstat(k->fd, &st) != 0) {
        fv_error("store %s: cannot stat %s: %s", env->dir, KEYS_FILE_NAME, strerror(errno));
        return FV_ERR_IO;
    }
    if (st.st_size < (off_t)KEYS_HEADER_BYTES) {
        fv_error("store %s: %s is truncated (%lld bytes)", env->dir, KEYS_FILE_NAME,
                 (long long)st.st_size);
        return FV_ERR_PARSE;
    }
    size_t body = (size_t)st.st_size - KEYS_HEADER_BYTES;
    size_t count = body / KEYS_SLOT_BYTES;
    /* A partial slot at the end is an append cut short by a crash. Its
     * key was never synced before a commit, so no record depends on it. */
    if (body % KEYS_SLOT_BYTES != 0)
        fv_warning("store %s: ignoring a partial slot at the end of %s", env->dir,
                   KEYS_FILE_NAME);
    int rc = table_reserve(k, count);
    if (rc != FV_OK) {
        fv_error("store %s: %s has %zu key slots, more than the maximum of %zu; the file is "
                 "damaged",
                 env->dir, KEYS_FILE_NAME, count, (size_t)KEYS_SLOTS_MAX);
        return rc;
    }

    uint8_t raw[KEYS_SLOT_BYTES];
    for (size_t i = 0; i < count; i++) {
        off_t off = (off_t)(KEYS_HEADER_BYTES + i * KEYS_SLOT_BYTES);
        if (pread_full(k->fd, raw, sizeof raw, off) != (ssize_t)sizeof raw) {
            sodium_memzero(raw, sizeof raw);
            fv_error("store %s: cannot read slot %zu of %s", env->dir, i, KEYS_FILE_NAME);
            return FV_ERR_IO;
        }
        store_key_slot *s = &k->slots[i];
        s->in_use = (raw[1] & KEYS_FLAG_IN_USE) != 0 && raw[0] < FV_CLASS_COUNT;
        s->cls = raw[0];
        s->day = (uint32_t)get_le(raw + 4, 4);
        if (s->in_use)
            memcpy(s->key, raw + 8, STORE_DATA_KEY_BYTES);
        else
            sodium_memzero(s->key, sizeof s->key);
        if ((raw[1] & KEYS_FLAG_IN_USE) != 0 && !s->in_use)
            fv_warning("store %s: slot %zu of %s names unknown class %u; treating it as free",
                       env->dir, i, KEYS_FILE_NAME, raw[0]);
    }
    sodium_memzero(raw, sizeof raw);
    /* Wipe slots the file no longer has (it never shrinks, but be exact). */
    for (size_t i = count; i < k->count; i++)
        sodium_memzero(&k->slots[i], sizeof k->slots[i]);
    k->count = count;
    k->generation = generation;
    k->loaded = true;
    k->hint = 0;
    /* A re-read table may hold other keys for the same (class, day). */
    seal_subkeys_wipe(k);
    open_cache_wipe(k);
    return FV_OK;
}

/* Open the key file if it exists (read-only stores) or create it. */
static int keys_file_open(store_env *env, bool create)
{
    store_keys *k = &env->keys;
    char path[PATH_MAX + 16];
    if (!keys_path(env, path, sizeof path))
        return FV_ERR_INVALID;

    /* O_NOFOLLOW: a symlink planted in the store directory must not
     * redirect where keys are written or read from. O_NONBLOCK keeps a
     * planted FIFO from blocking the open; regular files ignore it. */
    int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (env->rdonly ? O_RDONLY : O_RDWR);
    if (create)
        flags |= O_CREAT;
    /* 0640: the serving process runs as another user in the store's
     * group and must read the data keys to decrypt records; nobody else
     * may. (The pseudonymization key is a different file and stays 0600.) */
    int fd = open(path, flags, 0640);
    k->read_only = env->rdonly;
    if (fd < 0 && errno == EACCES && !env->rdonly) {
        /* A group member of the store (the serving user) may read the
         * data keys but not write them: it can decrypt, but not seal. */
        fd = open(path, O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_RDONLY);
        if (fd >= 0)
            k->read_only = true;
        else
            errno = EACCES;
    }
    if (fd < 0) {
        if (errno == ENOENT && !create)
            return FV_ERR_NOT_FOUND;
        int e = errno;
        fv_error("store %s: cannot open %s: %s%s", env->dir, KEYS_FILE_NAME, strerror(e),
                 e == ELOOP ? " (it is a symbolic link; replace it with the real file)" : "");
        return e == EACCES || e == EPERM ? FV_ERR_PERMISSION : FV_ERR_IO;
    }

    int rc = FV_OK;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fv_error("store %s: %s is not a regular file; move it aside", env->dir, KEYS_FILE_NAME);
        rc = FV_ERR_IO;
        goto out;
    }
    if ((st.st_mode & 0027) != 0) {
        if (!k->read_only && fchmod(fd, st.st_mode & 0740) == 0)
            fv_notice("store %s: tightened the mode of %s to %03o", env->dir, KEYS_FILE_NAME,
                      (unsigned)(st.st_mode & 0740));
        else
            fv_warning("store %s: %s is readable by other users or writable by its group "
                       "(mode %03o); set it to 0640 or 0600",
                       env->dir, KEYS_FILE_NAME, (unsigned)(st.st_mode & 0777));
    }

    if (st.st_size == 0 && !k->read_only) {
        /* A new file: write the header and make the file and its
         * directory entry durable before any key goes in. */
        uint8_t header[KEYS_HEADER_BYTES];
        header_encode(header, 0);
        if (pwrite_all(fd, header, sizeof header, 0) != 0 || fsync(fd) != 0) {
            fv_error("store %s: cannot write %s: %s", env->dir, KEYS_FILE_NAME,
                     strerror(errno));
            rc = FV_ERR_IO;
            goto out;
        }
        int dfd = open(env->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0)
                fv_warning("store %s: cannot sync the directory after creating %s: %s",
                           env->dir, KEYS_FILE_NAME, strerror(errno));
            close(dfd);
        }
    } else if (st.st_size == 0) {
        /* Read-only, and a writer has just created the file: treat it as
         * absent, so the next query looks again. */
        rc = FV_ERR_NOT_FOUND;
        goto out;
    } else if (st.st_size < (off_t)KEYS_HEADER_BYTES) {
        fv_error("store %s: %s is truncated (%lld bytes); restore it from the store's backup",
                 env->dir, KEYS_FILE_NAME, (long long)st.st_size);
        rc = FV_ERR_PARSE;
        goto out;
    }

out:
    if (rc != FV_OK)
        close(fd);
    else
        k->fd = fd;
    return rc;
}

/* Bring the table up to date with the file. Caller holds k->lock. */
static int keys_refresh_locked(store_env *env)
{
    store_keys *k = &env->keys;
    if (k->fd < 0) {
        /* A read-only open of a store whose writer has not created the
         * file yet: look again, it may exist by now. */
        int rc = keys_file_open(env, false);
        if (rc == FV_ERR_NOT_FOUND)
            return FV_OK;
        if (rc != FV_OK)
            return rc;
    }
    uint8_t header[KEYS_HEADER_BYTES];
    if (pread_full(k->fd, header, sizeof header, 0) != (ssize_t)sizeof header) {
        fv_error("store %s: cannot read the header of %s", env->dir, KEYS_FILE_NAME);
        return FV_ERR_IO;
    }
    uint64_t generation = 0;
    int rc = header_decode(env, header, &generation);
    if (rc != FV_OK)
        return rc;
    if (k->loaded && generation == k->generation)
        return FV_OK;
    return table_reload(env, generation);
}

/* Write the raised generation into the header and sync the file. */
static int keys_commit_locked(store_env *env)
{
    store_keys *k = &env->keys;
    uint8_t header[KEYS_HEADER_BYTES];
    header_encode(header, k->generation + 1);
    if (pwrite_all(k->fd, header, sizeof header, 0) != 0 || fsync(k->fd) != 0) {
        fv_error("store %s: cannot write or sync %s: %s", env->dir, KEYS_FILE_NAME,
                 strerror(errno));
        return FV_ERR_IO;
    }
    k->generation++;
    return FV_OK;
}

/* Index of the key of (CLS, DAY), or SIZE_MAX. Caller holds k->lock. */
static size_t table_find(store_keys *k, uint8_t cls, uint32_t day)
{
    if (k->hint < k->count) {
        const store_key_slot *s = &k->slots[k->hint];
        if (s->in_use && s->cls == cls && s->day == day)
            return k->hint;
    }
    for (size_t i = 0; i < k->count; i++) {
        const store_key_slot *s = &k->slots[i];
        if (s->in_use && s->cls == cls && s->day == day) {
            k->hint = i;
            return i;
        }
    }
    return SIZE_MAX;
}

/* Create a random key for (CLS, DAY) in the first free slot, write it
 * and sync the file. Caller holds k->lock and an LMDB write transaction. */
static int table_create(store_env *env, uint8_t cls, uint32_t day, size_t *index)
{
    store_keys *k = &env->keys;
    if (k->read_only) {
        fv_error("store %s: this user may read but not write %s, so it cannot create a "
                 "data key; write records as the store's owner", env->dir, KEYS_FILE_NAME);
        return FV_ERR_PERMISSION;
    }
    size_t i = 0;
    while (i < k->count && k->slots[i].in_use)
        i++;
    bool append = i == k->count;
    if (append) {
        int rc = table_reserve(k, k->count + 1);
        if (rc != FV_OK) {
            fv_error("store %s: no free slot in %s for a new data key (%zu slots in use); "
                     "the file is damaged or retention never frees keys",
                     env->dir, KEYS_FILE_NAME, k->count);
            return rc;
        }
    }

    store_key_slot *s = &k->slots[i];
    randombytes_buf(s->key, sizeof s->key);

    uint8_t raw[KEYS_SLOT_BYTES];
    memset(raw, 0, sizeof raw);
    raw[0] = cls;
    raw[1] = KEYS_FLAG_IN_USE;
    put_le(raw + 4, day, 4);
    memcpy(raw + 8, s->key, STORE_DATA_KEY_BYTES);
    int wrc = pwrite_all(k->fd, raw, sizeof raw, (off_t)(KEYS_HEADER_BYTES + i * KEYS_SLOT_BYTES));
    sodium_memzero(raw, sizeof raw);
    if (wrc != 0) {
        fv_error("store %s: cannot write a data key to %s: %s", env->dir, KEYS_FILE_NAME,
                 strerror(errno));
        sodium_memzero(s->key, sizeof s->key);
        return FV_ERR_IO;
    }
    s->cls = cls;
    s->day = day;
    s->in_use = true;
    if (append)
        k->count++;

    /* The key must be durable before any record encrypted under it is
     * committed; otherwise a crash could keep records and lose the key. */
    int rc = keys_commit_locked(env);
    if (rc != FV_OK) {
        s->in_use = false;
        sodium_memzero(s->key, sizeof s->key);
        return rc;
    }
    *index = i;
    return FV_OK;
}

/*
 * Process mark for the cached sealing subkeys (seal_subkey_get), so a
 * forked child never seals under its parent's prefix: getpid() is a system
 * call in glibc (no cached pid since 2.25), and calling it per record
 * cost about 2% of ingest CPU. A pthread_atfork child handler counts
 * the forks instead, and the mark is 1 + that count, so it differs in
 * every child from what its parent recorded. fork_watch_ok stays false
 * if the handler could not be registered, and the mark falls back to
 * the pid then. NOTE: a child created by a raw clone system call skips
 * the fork handlers and so keeps its parent's mark. Nothing in flowveil
 * creates children that way.
 */
static atomic_uint_fast64_t forks_seen;
static atomic_bool fork_watch_ok;
static pthread_once_t fork_watch_once = PTHREAD_ONCE_INIT;

static void fork_watch_child(void)
{
    atomic_fetch_add(&forks_seen, 1);
}

static void fork_watch_register(void)
{
    atomic_store(&fork_watch_ok, pthread_atfork(NULL, NULL, fork_watch_child) == 0);
}

static uint64_t current_process_mark(void)
{
    if (!atomic_load_explicit(&fork_watch_ok, memory_order_relaxed))
        return (uint64_t)getpid() << 32 | 1u;
    return (uint64_t)atomic_load_explicit(&forks_seen, memory_order_relaxed) + 1u;
}

/* ---------------------------------------------------------------------- */
/* Open and close                                                          */
/* ---------------------------------------------------------------------- */

int store_keys_open(store_env *env, char *err, size_t err_len)
{
    store_keys *k = &env->keys;
    k->fd = -1;
    if (sodium_init() < 0) {
        snprintf(err, err_len, "cannot initialize libsodium for store %s", env->dir);
        return FV_ERR_CRYPTO;
    }
    if (pthread_mutex_init(&k->lock, NULL) != 0) {
        snprintf(err, err_len, "cannot create the key lock of store %s", env->dir);
        return FV_ERR_NOMEM;
    }
    k->lock_ready = true;
    k->seal_version = cpu_seals_aes_gcm() ? VALUE_VERSION_AES_GCM : VALUE_VERSION_XCHACHA;
    (void)pthread_once(&fork_watch_once, fork_watch_register);

    int rc = keys_file_open(env, !env->rdonly);
    if (rc == FV_ERR_NOT_FOUND)
        return FV_OK; /* read-only and no key file yet: nothing is decryptable */
    if (rc == FV_OK) {
        pthread_mutex_lock(&k->lock);
        rc = keys_refresh_locked(env);
        pthread_mutex_unlock(&k->lock);
    }
    if (rc != FV_OK)
        snprintf(err, err_len, "cannot load the data key file %s/%s: %s", env->dir,
                 KEYS_FILE_NAME, fv_strerror(rc));
    return rc;
}

void store_keys_close(store_env *env)
{
    store_keys *k = &env->keys;
    if (k->slots != NULL)
        sodium_free(k->slots);  /* wipes the keys before releasing the pages */
    k->slots = NULL;
    k->count = k->cap = 0;
    if (k->seal != NULL)
        sodium_free(k->seal);  /* wipes the subkeys */
    k->seal = NULL;
    if (k->open_cache != NULL)
        sodium_free(k->open_cache);
    k->open_cache = NULL;
    k->seal_next = 0;
    k->seal_dirty = false;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    if (k->lock_ready)
        pthread_mutex_destroy(&k->lock);
    k->lock_ready = false;
}

void store_keys_lock(store_env *env)
{
    pthread_mutex_lock(&env->keys.lock);
}

void store_keys_unlock(store_env *env)
{
    /* Subkeys and their counters last one lock session, so each session
     * seals under fresh prefixes and no subkey outlives it in memory. */
    seal_subkeys_wipe(&env->keys);
    pthread_mutex_unlock(&env->keys.lock);
}

int store_keys_set_seal_version(store_env *env, unsigned version)
{
    if (version != VALUE_VERSION_XCHACHA && version != VALUE_VERSION_AES_GCM)
        return FV_ERR_INVALID;
    /* libsodium's AES-256-GCM executes AES-NI instructions unchecked. */
    if (version == VALUE_VERSION_AES_GCM && !cpu_seals_aes_gcm())
        return FV_ERR_UNSUPPORTED;
    pthread_mutex_lock(&env->keys.lock);
    env->keys.seal_version = (uint8_t)version;
    pthread_mutex_unlock(&env->keys.lock);
    return FV_OK;
}

void store_keys_set_open_with_nettle(store_env *env, bool nettle)
{
    pthread_mutex_lock(&env->keys.lock);
    env->keys.open_with_nettle = nettle;
    pthread_mutex_unlock(&env->keys.lock);
}

unsigned store_keys_seal_version(store_env *env)
{
    pthread_mutex_lock(&env->keys.lock);
    unsigned version = env->keys.seal_version;
    pthread_mutex_unlock(&env->keys.lock);
    return version;
}

int store_keys_refresh(store_env *env)
{
    return keys_refresh_locked(env);
}

/* ---------------------------------------------------------------------- */
/* Values                                                                  */
/* ---------------------------------------------------------------------- */

/*
 * Return the subkey entry for the data key at slot INDEX, deriving it on
 * first use in this lock session, or NULL if no cache can be allocated.
 *
 * libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt_detached
 * (aead_xchacha20poly1305.c) computes subkey = HChaCha20(key,
 * nonce[0..16)) and then seals with ChaCha20-Poly1305 IETF under subkey
 * and nonce 0x00000000 || nonce[16..24). Sealing many records under one
 * prefix therefore needs the HChaCha20 step once; the store unit test
 * test_crypto_session_seal_equals_xchacha checks the equality against
 * the installed libsodium. Nonces stay unique per data key because
 * every derivation draws a fresh random prefix from the operating
 * system and the counter never repeats under a prefix. An entry is
 * derived again before its counter could wrap, and before its first use
 * in a process other than the one that derived it (a forked child).
 */
static struct store_seal_subkey *seal_subkey_get(store_keys *k, size_t index)
{
    const store_key_slot *slot = &k->slots[index];
    if (k->seal == NULL) {
        k->seal = sodium_malloc(STORE_SEAL_SUBKEYS * sizeof *k->seal);
        if (k->seal == NULL)
            return NULL;
        sodium_memzero(k->seal, STORE_SEAL_SUBKEYS * sizeof *k->seal);
        k->seal_next = 0;
    }
    uint64_t process = current_process_mark();
    struct store_seal_subkey *e = NULL;
    for (unsigned i = 0; i < STORE_SEAL_SUBKEYS; i++) {
        struct store_seal_subkey *c = &k->seal[i];
        if (c->in_use && c->cls == slot->cls && c->day == slot->day) {
            e = c;
            break;
        }
    }
    if (e != NULL && e->process == process && e->counter != UINT64_MAX &&
        e->version == k->seal_version)
        return e;
    if (e == NULL) {
        e = &k->seal[k->seal_next];
        k->seal_next = (k->seal_next + 1) % STORE_SEAL_SUBKEYS;
    }
    randombytes_buf(e->prefix, sizeof e->prefix);
    if (k->seal_version == VALUE_VERSION_AES_GCM) {
        uint8_t subkey[STORE_DATA_KEY_BYTES];
        aes_gcm_subkey(subkey, slot->key, e->prefix);
        crypto_aead_aes256gcm_beforenm(&e->aes, subkey);
        sodium_memzero(subkey, sizeof subkey);
    } else
        crypto_core_hchacha20(e->subkey, e->prefix, slot->key, NULL);
    e->version = k->seal_version;
    e->counter = 0;
    e->process = process;
    e->day = slot->day;
    e->cls = slot->cls;
    e->in_use = true;
    k->seal_dirty = true;
    return e;
}

static void value_ad(uint8_t ad[VALUE_AD_BYTES], uint8_t cls, uint64_t id, uint32_t day)
{
    ad[0] = cls;
    store_key_encode(id, ad + 1);
    put_le(ad + 9, day, 4);
}

int store_value_seal(store_env *env, fv_class cls, uint64_t id, const uint8_t *plain,
                     size_t plain_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    store_keys *k = &env->keys;
    if (!(plain_len <= STORE_RECORD_MAX_BYTES) || !(plain_len + STORE_VALUE_OVERHEAD <= out_cap))
        return FV_ERR_FULL;
    if (k->fd < 0)
        return FV_ERR_STATE;

    uint32_t day = store_day_of(id);
    size_t index = table_find(k, (uint8_t)cls, day);
    if (index == SIZE_MAX) {
        int rc = table_create(env, (uint8_t)cls, day, &index);
        if (rc != FV_OK)
            return rc;
    }

    struct store_seal_subkey *e = seal_subkey_get(k, index);
    if (e == NULL)
        return FV_ERR_NOMEM;

    uint8_t ad[VALUE_AD_BYTES];
    value_ad(ad, (uint8_t)cls, id, day);
    out[0] = e->version;
    uint8_t *nonce = out + 1;
    memcpy(nonce, e->prefix, VALUE_PREFIX_BYTES);
    put_le(nonce + VALUE_PREFIX_BYTES, e->counter, VALUE_COUNTER_BYTES);
    e->counter++;

    uint8_t inner[GCM_IV_SIZE];
    inner_nonce(inner, nonce);
    uint8_t *cipher = out + 1 + VALUE_NONCE_BYTES;
    if (e->version == VALUE_VERSION_AES_GCM) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(cipher, cipher + plain_len, NULL, plain,
                                                       plain_len, ad, sizeof ad, NULL, inner,
                                                       &e->aes);
        *out_len = 1 + VALUE_NONCE_BYTES + plain_len + VALUE_TAG_BYTES;
        return FV_OK;
    }
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(cipher, &clen, plain, plain_len, ad, sizeof ad,
                                              NULL, inner, e->subkey);
    *out_len = 1 + VALUE_NONCE_BYTES + (size_t)clen;
    return FV_OK;
}

/*
 * Decrypt the format 3 VALUE (VALUE_LEN bytes) with AD under the data key
 * at slot INDEX into PLAIN. The subkey of the last prefix opened is kept,
 * because the values of one commit share a prefix and are mostly read
 * together. Caller holds k->lock and has checked the lengths.
 */
static bool open_aes_gcm(store_keys *k, size_t index, const uint8_t *value, size_t value_len,
                         const uint8_t ad[VALUE_AD_BYTES], uint8_t *plain)
{
    const store_key_slot *slot = &k->slots[index];
    const uint8_t *nonce = value + 1;
    if (k->open_cache == NULL) {
        k->open_cache = sodium_malloc(sizeof *k->open_cache);
        if (k->open_cache == NULL)
            return false;
        sodium_memzero(k->open_cache, sizeof *k->open_cache);
    }
    struct store_open_subkey *c = k->open_cache;
    bool use_sodium = crypto_aead_aes256gcm_is_available() != 0 && !k->open_with_nettle;
    if (!c->valid || c->index != index || c->cls != slot->cls || c->day != slot->day ||
        c->use_sodium != use_sodium || sodium_memcmp(c->prefix, nonce, VALUE_PREFIX_BYTES) != 0) {
        uint8_t subkey[STORE_DATA_KEY_BYTES];
        aes_gcm_subkey(subkey, slot->key, nonce);
        if (use_sodium)
            crypto_aead_aes256gcm_beforenm(&c->aes, subkey);
        else
            gcm_aes256_set_key(&c->gcm, subkey);
        sodium_memzero(subkey, sizeof subkey);
        c->use_sodium = use_sodium;
        memcpy(c->prefix, nonce, VALUE_PREFIX_BYTES);
        c->index = index;
        c->cls = slot->cls;
        c->day = slot->day;
        c->valid = true;
    }

    uint8_t inner[GCM_IV_SIZE];
    inner_nonce(inner, nonce);
    const uint8_t *cipher = value + 1 + VALUE_NONCE_BYTES;
    size_t plain_len = value_len - 1 - VALUE_NONCE_BYTES - VALUE_TAG_BYTES;
    if (c->use_sodium) {
        if (crypto_aead_aes256gcm_decrypt_detached_afternm(plain, NULL, cipher, plain_len,
                                                           cipher + plain_len, ad,
                                                           VALUE_AD_BYTES, inner, &c->aes) == 0)
            return true;
        sodium_memzero(plain, plain_len);
        return false;
    }
    uint8_t tag[VALUE_TAG_BYTES];
    gcm_aes256_set_iv(&c->gcm, sizeof inner, inner);
    gcm_aes256_update(&c->gcm, VALUE_AD_BYTES, ad);
    gcm_aes256_decrypt(&c->gcm, plain_len, plain, cipher);
    gcm_aes256_digest(&c->gcm, sizeof tag, tag);
    if (sodium_memcmp(tag, cipher + plain_len, sizeof tag) != 0) {
        sodium_memzero(plain, plain_len); /* a forged value's output is never returned */
        return false;
    }
    return true;
}

store_value_status store_value_open(store_env *env, fv_class cls, uint64_t id,
                                    const uint8_t *value, size_t value_len, uint8_t *plain,
                                    size_t plain_cap, size_t *plain_len, bool *refreshed)
{
    store_keys *k = &env->keys;
    if (value_len >= 1 && value[0] == 1) {
        /* Format 1: a plaintext record written before encryption. */
        if (!(value_len <= plain_cap))
            return STORE_VALUE_UNDECRYPTABLE;
        memcpy(plain, value, value_len);
        *plain_len = value_len;
        return STORE_VALUE_LEGACY;
    }
    if (value_len < STORE_VALUE_OVERHEAD + 1 ||
        (value[0] != VALUE_VERSION_XCHACHA && value[0] != VALUE_VERSION_AES_GCM))
        return STORE_VALUE_UNDECRYPTABLE;
    size_t clen = value_len - 1 - VALUE_NONCE_BYTES;
    if (!(clen - VALUE_TAG_BYTES <= plain_cap))
        return STORE_VALUE_UNDECRYPTABLE;

    uint32_t day = store_day_of(id);
    uint8_t ad[VALUE_AD_BYTES];
    value_ad(ad, (uint8_t)cls, id, day);

    store_value_status status = STORE_VALUE_UNDECRYPTABLE;
    pthread_mutex_lock(&k->lock);
    size_t index = table_find(k, (uint8_t)cls, day);
    if (index == SIZE_MAX && refreshed != NULL && !*refreshed) {
        /* The writer may have created the key after this query began. */
        *refreshed = true;
        if (keys_refresh_locked(env) == FV_OK)
            index = table_find(k, (uint8_t)cls, day);
    }
    if (index != SIZE_MAX && value[0] == VALUE_VERSION_AES_GCM) {
        if (open_aes_gcm(k, index, value, value_len, ad, plain)) {
            *plain_len = clen - VALUE_TAG_BYTES;
            status = STORE_VALUE_OK;
        }
    } else if (index != SIZE_MAX) {
        unsigned long long mlen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                plain, &mlen, NULL, value + 1 + VALUE_NONCE_BYTES, clen, ad, sizeof ad,
                value + 1, k->slots[index].key) == 0) {
            *plain_len = (size_t)mlen;
            status = STORE_VALUE_OK;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return status;
}

/* ---------------------------------------------------------------------- */
/* Destruction                                                             */
/* ---------------------------------------------------------------------- */

bool store_keys_any_before(store_env *env, fv_class cls, uint32_t before_day)
{
    store_keys *k = &env->keys;
    bool found = false;
    pthread_mutex_lock(&k->lock);
    if (k->fd >= 0 && keys_refresh_locked(env) == FV_OK) {
        for (size_t i = 0; i < k->count && !found; i++) {
            const store_key_slot *s = &k->slots[i];
            found = s->in_use && s->cls == (uint8_t)cls && s->day < before_day;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return found;
}

int store_keys_destroy_before(store_env *env, fv_class cls, uint32_t before_day,
                              uint32_t **days, size_t *days_len)
{
    store_keys *k = &env->keys;
    int rc = FV_OK;
    size_t destroyed = 0;
    pthread_mutex_lock(&k->lock);
    if (k->fd < 0 || k->read_only) {
        rc = FV_ERR_STATE;
        goto out;
    }
    rc = keys_refresh_locked(env);
    if (rc != FV_OK)
        goto out;

    static const uint8_t zeros[KEYS_SLOT_BYTES];
    for (size_t i = 0; i < k->count; i++) {
        store_key_slot *s = &k->slots[i];
        if (!s->in_use || s->cls != (uint8_t)cls || s->day >= before_day)
            continue;
        uint32_t *grown = realloc(*days, (*days_len + 1) * sizeof **days);
        if (grown == NULL) {
            rc = FV_ERR_NOMEM;
            break;
        }
        *days = grown;
        /* Overwrite in place: the slot's old bytes must not survive in
         * the file, so it is never truncated, rewritten or renamed. */
        if (pwrite_all(k->fd, zeros, sizeof zeros,
                       (off_t)(KEYS_HEADER_BYTES + i * KEYS_SLOT_BYTES)) != 0) {
            fv_error("store %s: cannot overwrite the %s key of day %u in %s: %s", env->dir,
                     fv_class_name(cls), s->day, KEYS_FILE_NAME, strerror(errno));
            rc = FV_ERR_IO;
            break;
        }
        (*days)[(*days_len)++] = s->day;
        sodium_memzero(s->key, sizeof s->key);
        s->in_use = false;
        s->day = 0;
        s->cls = 0;
        destroyed++;
    }
    if (destroyed > 0) {
        /* No session holds subkeys here (store_keys_unlock wipes them),
         * but a destroyed key must never leave a derived subkey behind. */
        seal_subkeys_wipe(k);
        open_cache_wipe(k);
        int crc = keys_commit_locked(env);
        if (rc == FV_OK)
            rc = crc;
    }

out:
    pthread_mutex_unlock(&k->lock);
    return rc;
}
