/*
 * escrow.c: officer key files, sealing and opening of escrow entries, and
 * the pipeline's escrow writer. Formats in escrow.h.
 */
#include "escrow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define ESCROW_VERSION 1u
#define ESCROW_PLAIN_HEADER (FV_PSEUDONYM_BYTES + 8u + 1u)
#define ESCROW_PLAIN_MAX (ESCROW_PLAIN_HEADER + FV_ESCROW_ID_MAX)
#define ESCROW_SHARE_BYTES crypto_secretbox_KEYBYTES
#define ESCROW_SEALED_SHARE (crypto_box_SEALBYTES + ESCROW_SHARE_BYTES)

/* Identifiers kept for the record being built. A DNS record, the
 * largest, needs 2 endpoints, 16 answer addresses and a token for each
 * of its 12 names: 30. */
#define ESCROW_PENDING_MAX 64u
/* Sealed entries buffered before one write transaction. */
#define ESCROW_BUFFER_MAX 64u
/* Maximum slots of the per-epoch set of sealed pseudonyms (16 MiB). A
 * full set stops growing, so later pseudonyms are sealed again, and the
 * store keeps the first entry of each. */
#define ESCROW_SET_MAX_SLOTS (1u << 20)
#define ESCROW_SET_INITIAL_SLOTS 4096u

static void FV_PRINTF(3, 4) escrow_msg(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------- */
/* Officer key files                                                       */
/* ---------------------------------------------------------------------- */

/* Create PATH exclusively with MODE and write TEXT. Returns 0 or errno. */
static int write_new_file(const char *path, mode_t mode, const char *text, size_t len)
{
    /* O_EXCL also fails on an existing symbolic link, dangling or not. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return errno;
    int e = fchmod(fd, mode) != 0 ? errno : 0;
    size_t done = 0;
    while (e == 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
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

int fv_officer_keygen(const char *path, char *err, size_t err_len)
{
    uint8_t pk[FV_OFFICER_KEY_BYTES], sk[FV_OFFICER_KEY_BYTES];
    char pub_path[4096];
    /* "TAG " + 64 hex digits + "\n" + NUL: 97 bytes for either tag */
    char line[128];
    char hex[2 * FV_OFFICER_KEY_BYTES + 1];
    int rc = FV_OK;

    if (path == NULL || path[0] == '\0' ||
        !((size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", path) < sizeof pub_path)) {
        escrow_msg(err, err_len, "the key file path is empty or too long; choose a shorter"
                   " --output path");
        return FV_ERR_INVALID;
    }
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;

    /* Check both first, so an existing .pub does not leave a new secret
     * key without its public half. */
    struct stat st;
    const char *existing = lstat(path, &st) == 0 ? path : lstat(pub_path, &st) == 0 ? pub_path
                                                                                     : NULL;
    if (existing != NULL) {
        escrow_msg(err, err_len, "%s already exists; officer keys are never overwritten, so"
                   " choose another --output path or move the old key away first",
                   existing);
        return FV_ERR_IO;
    }

    if (crypto_box_keypair(pk, sk) != 0) {
        rc = FV_ERR_CRYPTO;
        goto out;
    }
    sodium_bin2hex(hex, sizeof hex, sk, sizeof sk);
    int n = snprintf(line, sizeof line, "%s %s\n", FV_OFFICER_SECRET_KEY_TAG, hex);
    if (n < 0 || !((size_t)n < sizeof line)) {
        rc = FV_ERR_INVALID;
        goto out;
    }
    int e = write_new_file(path, 0600, line, (size_t)n);
    if (e != 0) {
        escrow_msg(err, err_len, "cannot create the secret key file %s: %s; check that its"
                   " directory exists and is writable, and that the file does not exist",
                   path, strerror(e));
        rc = FV_ERR_IO;
        goto out;
    }

    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    n = snprintf(line, sizeof line, "%s %s\n", POL_OFFICER_PUBLIC_KEY_TAG, hex);
    if (n < 0 || !((size_t)n < sizeof line)) {
        unlink(path);
        rc = FV_ERR_INVALID;
        goto out;
    }
    e = write_new_file(pub_path, 0644, line, (size_t)n);
    if (e != 0) {
        escrow_msg(err, err_len, "cannot create the public key file %s: %s; the secret key"
                   " file was removed again, fix the cause and retry",
                   pub_path, strerror(e));
        unlink(path);
        rc = FV_ERR_IO;
        goto out;
    }

out:
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(line, sizeof line);
    sodium_memzero(hex, sizeof hex);
    return rc;
}

int fv_officer_secret_load(const char *path, uint8_t sk[FV_OFFICER_KEY_BYTES],
                           uint8_t pk[FV_OFFICER_KEY_BYTES], char *err, size_t err_len)
{
    char text[128];
    size_t len = 0;
    int rc = FV_OK;

    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        escrow_msg(err, err_len, "%s: cannot open the officer secret key: %s", path,
                   e == ELOOP ? "it is a symbolic link; name the key file itself" : strerror(e));
        return e == EACCES ? FV_ERR_PERMISSION : FV_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        escrow_msg(err, err_len, "%s: the officer secret key is not a regular file", path);
        rc = FV_ERR_IO;
        goto out;
    }
    /* The mode is checked after the format, so a public key or another
     * file of mode 0644 is named as the wrong file, not sent to chmod. */
    bool open_to_others = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
    while (len < sizeof text) {
        ssize_t n = read(fd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            escrow_msg(err, err_len, "%s: cannot read the officer secret key: %s", path,
                       strerror(errno));
            rc = FV_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }

    const size_t tag_len = strlen(FV_OFFICER_SECRET_KEY_TAG);
    const size_t line_len = tag_len + 1 + 2 * FV_OFFICER_KEY_BYTES;
    if (len == line_len + 1 && text[line_len] == '\n')
        len = line_len;
    size_t bin_len = 0;
    const char *hex_end = NULL;
    if (len != line_len || memcmp(text, FV_OFFICER_SECRET_KEY_TAG, tag_len) != 0 ||
        text[tag_len] != ' ' ||
        sodium_hex2bin(sk, FV_OFFICER_KEY_BYTES, text + tag_len + 1, 2 * FV_OFFICER_KEY_BYTES,
                       NULL, &bin_len, &hex_end) != 0 ||
        bin_len != FV_OFFICER_KEY_BYTES || hex_end != text + line_len) {
        escrow_msg(err, err_len, "%s: not an officer secret key file (expected one line"
                   " \"%s\" and 64 hex digits); name the file written by `flowveil keys"
                   " officer-keygen`, not its .pub file",
                   path, FV_OFFICER_SECRET_KEY_TAG);
        sodium_memzero(sk, FV_OFFICER_KEY_BYTES);
        rc = FV_ERR_PARSE;
        goto out;
    }
    if (open_to_others) {
        escrow_msg(err, err_len, "%s: the officer secret key is accessible by group or others"
                   " (mode %04o); run `chmod 600 %s`",
                   path, (unsigned)(st.st_mode & 07777), path);
        sodium_memzero(sk, FV_OFFICER_KEY_BYTES);
        rc = FV_ERR_PERMISSION;
        goto out;
    }
    if (crypto_scalarmult_base(pk, sk) != 0)
        rc = FV_ERR_CRYPTO;

out:
    sodium_memzero(text, sizeof text);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Sealing and opening                                                     */
/* ---------------------------------------------------------------------- */

static void be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

int fv_escrow_seal(const uint8_t *const keys[], size_t count,
                   const uint8_t pseudonym[FV_PSEUDONYM_BYTES], uint64_t epoch_id,
                   anon_type type, const uint8_t *id, size_t len, uint8_t *out,
                   uint32_t *out_len)
{
    uint8_t plain[ESCROW_PLAIN_MAX];
    uint8_t k[ESCROW_SHARE_BYTES], r[ESCROW_SHARE_BYTES], kr[ESCROW_SHARE_BYTES];
    int rc = FV_OK;

    if (keys == NULL || (count != 1 && count != 2) || id == NULL || len == 0 ||
        len > FV_ESCROW_ID_MAX || out == NULL || out_len == NULL)
        return FV_ERR_INVALID;

    memcpy(plain, pseudonym, FV_PSEUDONYM_BYTES);
    be64_put(plain + FV_PSEUDONYM_BYTES, epoch_id);
    plain[FV_PSEUDONYM_BYTES + 8] = (uint8_t)type;
    memcpy(plain + ESCROW_PLAIN_HEADER, id, len);
    size_t plain_len = ESCROW_PLAIN_HEADER + len;

    size_t o = 0;
    out[o++] = ESCROW_VERSION;
    out[o++] = (uint8_t)count;
    if (count == 1) {
        if (crypto_box_seal(out + o, plain, plain_len, keys[0]) != 0) {
            rc = FV_ERR_CRYPTO;
            goto out;
        }
        o += crypto_box_SEALBYTES + plain_len;
    } else {
        /* Dual control: the data key K opens P; officer 1 gets K XOR R
         * and officer 2 gets R, so each share alone is a random value. */
        randombytes_buf(k, sizeof k);
        randombytes_buf(r, sizeof r);
        for (size_t i = 0; i < sizeof kr; i++)
            kr[i] = k[i] ^ r[i];
        randombytes_buf(out + o, crypto_secretbox_NONCEBYTES);
        const uint8_t *nonce = out + o;
        o += crypto_secretbox_NONCEBYTES;
        size_t ct_len = crypto_secretbox_MACBYTES + plain_len;
        out[o++] = (uint8_t)(ct_len >> 8);
        out[o++] = (uint8_t)ct_len;
        if (crypto_secretbox_easy(out + o, plain, plain_len, nonce, k) != 0) {
            rc = FV_ERR_CRYPTO;
            goto out;
        }
        o += ct_len;
        if (crypto_box_seal(out + o, kr, sizeof kr, keys[0]) != 0 ||
            crypto_box_seal(out + o + ESCROW_SEALED_SHARE, r, sizeof r, keys[1]) != 0) {
            rc = FV_ERR_CRYPTO;
            goto out;
        }
        o += 2 * ESCROW_SEALED_SHARE;
    }
    *out_len = (uint32_t)o;

out:
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(k, sizeof k);
    sodium_memzero(r, sizeof r);
    sodium_memzero(kr, sizeof kr);
    return rc;
}

/* Open one sealed share with whichever of KEYS opens it; -1 if none. */
static int open_share(const uint8_t *sealed, const fv_officer_key *keys, size_t key_count,
                      int skip, uint8_t share[ESCROW_SHARE_BYTES])
{
    for (size_t i = 0; i < key_count; i++) {
        if ((int)i == skip)
            continue;
        if (crypto_box_seal_open(share, sealed, ESCROW_SEALED_SHARE, keys[i].pk, keys[i].sk) == 0)
            return (int)i;
    }
    return -1;
}

/* Check the header of P against the entry and copy the identifier out. */
static fv_escrow_open_result plain_check(const store_escrow_entry *e, const uint8_t *plain,
                                         size_t plain_len, anon_type *type, uint8_t *id,
                                         size_t *len)
{
    if (plain_len <= ESCROW_PLAIN_HEADER || plain_len > ESCROW_PLAIN_MAX ||
        memcmp(plain, e->pseudonym, FV_PSEUDONYM_BYTES) != 0 ||
        be64_get(plain + FV_PSEUDONYM_BYTES) != e->epoch_id)
        return FV_ESCROW_DAMAGED;
    *type = (anon_type)plain[FV_PSEUDONYM_BYTES + 8];
    *len = plain_len - ESCROW_PLAIN_HEADER;
    memcpy(id, plain + ESCROW_PLAIN_HEADER, *len);
    return FV_ESCROW_OPENED;
}

fv_escrow_open_result fv_escrow_open(const store_escrow_entry *e, const fv_officer_key *keys,
                                     size_t key_count, anon_type *type, uint8_t *id,
                                     size_t *len)
{
    uint8_t plain[ESCROW_PLAIN_MAX];
    uint8_t s1[ESCROW_SHARE_BYTES], s2[ESCROW_SHARE_BYTES];
    fv_escrow_open_result res = FV_ESCROW_DAMAGED;
    const uint8_t *b = e->blob;
    size_t n = e->blob_len;

    if (n < 2 || b[0] != ESCROW_VERSION || key_count == 0)
        return FV_ESCROW_DAMAGED;

    if (b[1] == 1) {
        if (n < 2 + crypto_box_SEALBYTES + 1 || n - 2 - crypto_box_SEALBYTES > sizeof plain)
            goto out;
        size_t plain_len = n - 2 - crypto_box_SEALBYTES;
        res = FV_ESCROW_WRONG_KEY;
        for (size_t i = 0; i < key_count; i++) {
            if (crypto_box_seal_open(plain, b + 2, n - 2, keys[i].pk, keys[i].sk) == 0) {
                res = plain_check(e, plain, plain_len, type, id, len);
                break;
            }
        }
        goto out;
    }
    if (b[1] != 2)
        goto out;

    size_t o = 2 + crypto_secretbox_NONCEBYTES;
    if (n < o + 2)
        goto out;
    size_t ct_len = (size_t)b[o] << 8 | b[o + 1];
    o += 2;
    if (ct_len <= crypto_secretbox_MACBYTES || ct_len - crypto_secretbox_MACBYTES > sizeof plain ||
        n != o + ct_len + 2 * ESCROW_SEALED_SHARE)
        goto out;
    const uint8_t *nonce = b + 2;
    const uint8_t *ct = b + o;
    const uint8_t *share1 = ct + ct_len;
    const uint8_t *share2 = share1 + ESCROW_SEALED_SHARE;

    int k1 = open_share(share1, keys, key_count, -1, s1);
    int k2 = open_share(share2, keys, key_count, k1, s2);
    if (k1 < 0 || k2 < 0) {
        /* One key that opens one share: the other officer is missing. */
        res = key_count == 1 && (k1 >= 0 || k2 >= 0) ? FV_ESCROW_NEEDS_SECOND_KEY
                                                     : FV_ESCROW_WRONG_KEY;
        goto out;
    }
    for (size_t i = 0; i < sizeof s1; i++)
        s1[i] ^= s2[i];
    size_t plain_len = ct_len - crypto_secretbox_MACBYTES;
    if (crypto_secretbox_open_easy(plain, ct, ct_len, nonce, s1) != 0)
        goto out;
    res = plain_check(e, plain, plain_len, type, id, len);

out:
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(s1, sizeof s1);
    sodium_memzero(s2, sizeof s2);
    return res;
}

/* ---------------------------------------------------------------------- */
/* The pipeline's writer                                                   */
/* ---------------------------------------------------------------------- */

/* One identifier seen while building a record. Raw: wiped on reuse. */
typedef struct escrow_pending {
    uint8_t pseudonym[FV_PSEUDONYM_BYTES];
    uint8_t type;
    uint8_t len;
    uint8_t id[FV_ESCROW_ID_MAX];
} escrow_pending;

struct fv_escrow {
    store_env *store;
    size_t officer_count;
    uint8_t officer_keys[POL_ESCROW_OFFICERS_MAX][POL_OFFICER_KEY_BYTES];

    escrow_pending pending[ESCROW_PENDING_MAX];
    size_t pending_len;
    uint64_t pending_dropped;   /* identifiers past ESCROW_PENDING_MAX */

    /* Pseudonyms already sealed in set_epoch: open addressing, an
     * all-zero slot is empty (a zero pseudonym is stored in has_zero). */
    uint8_t (*set)[FV_PSEUDONYM_BYTES];
    size_t set_slots, set_used;
    bool has_zero;
    uint64_t set_epoch;

    store_escrow_entry *buffer;     /* ESCROW_BUFFER_MAX entries */
    size_t buffer_len;
    uint64_t sealed;
};

int fv_escrow_create(const pol_policy *policy, store_env *store, fv_escrow **out)
{
    *out = NULL;
    if (!pol_escrow_enabled(policy))
        return FV_ERR_INVALID;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    fv_escrow *e = calloc(1, sizeof *e);
    if (e == NULL)
        return FV_ERR_NOMEM;
    e->store = store;
    e->officer_count = pol_escrow_officer_count(policy);
    for (size_t i = 0; i < e->officer_count; i++)
        memcpy(e->officer_keys[i], pol_escrow_officer_key(policy, i), POL_OFFICER_KEY_BYTES);
    e->set_slots = ESCROW_SET_INITIAL_SLOTS;
    e->set = calloc(e->set_slots, sizeof *e->set);
    e->buffer = calloc(ESCROW_BUFFER_MAX, sizeof *e->buffer);
    if (e->set == NULL || e->buffer == NULL) {
        fv_escrow_destroy(&e);
        return FV_ERR_NOMEM;
    }
    *out = e;
    return FV_OK;
}

void fv_escrow_destroy(fv_escrow **escrow)
{
    if (escrow == NULL || *escrow == NULL)
        return;
    fv_escrow *e = *escrow;
    if (e->buffer != NULL && e->buffer_len > 0 && fv_escrow_flush(e) != FV_OK)
        fv_error("%zu escrow entries were lost at close", e->buffer_len);
    if (e->pending_dropped > 0)
        fv_warning("%llu identifiers were not escrowed: a record had more than %u",
                   (unsigned long long)e->pending_dropped, ESCROW_PENDING_MAX);
    if (e->set != NULL) {
        sodium_memzero(e->set, e->set_slots * sizeof *e->set);
        free(e->set);
    }
    free(e->buffer);
    sodium_memzero(e, sizeof *e);
    free(e);
    *escrow = NULL;
}

void fv_escrow_observe(void *escrow, anon_type type, const uint8_t *id, size_t len,
                       const uint8_t pseudonym[FV_PSEUDONYM_BYTES])
{
    fv_escrow *e = escrow;
    if (len == 0 || len > FV_ESCROW_ID_MAX)
        return;
    /* The same identifier often appears twice in one record (both MACs,
     * an endpoint and its reverse name). */
    for (size_t i = 0; i < e->pending_len; i++) {
        if (memcmp(e->pending[i].pseudonym, pseudonym, FV_PSEUDONYM_BYTES) == 0)
            return;
    }
    if (e->pending_len >= ESCROW_PENDING_MAX) {
        e->pending_dropped++;
        return;
    }
    escrow_pending *p = &e->pending[e->pending_len++];
    memcpy(p->pseudonym, pseudonym, FV_PSEUDONYM_BYTES);
    p->type = (uint8_t)type;
    p->len = (uint8_t)len;
    memcpy(p->id, id, len);
}

void fv_escrow_begin_record(fv_escrow *escrow)
{
    if (escrow == NULL || escrow->pending_len == 0)
        return;
    sodium_memzero(escrow->pending, escrow->pending_len * sizeof escrow->pending[0]);
    escrow->pending_len = 0;
}

static size_t set_index(const fv_escrow *e, const uint8_t pseudonym[FV_PSEUDONYM_BYTES])
{
    /* Pseudonyms are uniform keyed-hash output: any 8 bytes are a hash. */
    uint64_t h = 0;
    memcpy(&h, pseudonym, sizeof h);
    return (size_t)(h & (e->set_slots - 1));
}

static bool slot_empty(const uint8_t slot[FV_PSEUDONYM_BYTES])
{
    static const uint8_t zero[FV_PSEUDONYM_BYTES];
    return memcmp(slot, zero, FV_PSEUDONYM_BYTES) == 0;
}

static void set_wipe(fv_escrow *e)
{
    sodium_memzero(e->set, e->set_slots * sizeof *e->set);
    e->set_used = 0;
    e->has_zero = false;
}

/* Double the set (up to the maximum); false if it cannot grow. */
static bool set_grow(fv_escrow *e)
{
    if (e->set_slots >= ESCROW_SET_MAX_SLOTS)
        return false;
    size_t slots = e->set_slots * 2;
    uint8_t (*next)[FV_PSEUDONYM_BYTES] = calloc(slots, sizeof *next);
    if (next == NULL)
        return false;
    uint8_t (*old)[FV_PSEUDONYM_BYTES] = e->set;
    size_t old_slots = e->set_slots;
    e->set = next;
    e->set_slots = slots;
    for (size_t i = 0; i < old_slots; i++) {
        if (slot_empty(old[i]))
            continue;
        size_t j = set_index(e, old[i]);
        while (!slot_empty(e->set[j]))
            j = (j + 1) & (slots - 1);
        memcpy(e->set[j], old[i], FV_PSEUDONYM_BYTES);
    }
    sodium_memzero(old, old_slots * sizeof *old);
    free(old);
    return true;
}

/* Add PSEUDONYM to the set; true if it was not there before. When the
 * set is full it is not added, and reported new. */
static bool set_add(fv_escrow *e, const uint8_t pseudonym[FV_PSEUDONYM_BYTES])
{
    if (slot_empty(pseudonym)) {
        bool was = e->has_zero;
        e->has_zero = true;
        return !was;
    }
    size_t i = set_index(e, pseudonym);
    while (!slot_empty(e->set[i])) {
        if (memcmp(e->set[i], pseudonym, FV_PSEUDONYM_BYTES) == 0)
            return false;
        i = (i + 1) & (e->set_slots - 1);
    }
    /* Keep the load at most one half so probes stay short. */
    if (2 * (e->set_used + 1) > e->set_slots) {
        if (!set_grow(e))
            return true;
        i = set_index(e, pseudonym);
        while (!slot_empty(e->set[i]))
            i = (i + 1) & (e->set_slots - 1);
    }
    memcpy(e->set[i], pseudonym, FV_PSEUDONYM_BYTES);
    e->set_used++;
    return true;
}

int fv_escrow_record_stored(fv_escrow *escrow, uint64_t epoch_id, uint64_t now_us)
{
    if (escrow == NULL)
        return FV_OK;
    fv_escrow *e = escrow;
    int rc = FV_OK;

    /* A new epoch: its pseudonyms are all new, and the old set must not
     * outlive the old key. */
    if (epoch_id != e->set_epoch) {
        set_wipe(e);
        e->set_epoch = epoch_id;
    }

    const uint8_t *keys[POL_ESCROW_OFFICERS_MAX];
    for (size_t i = 0; i < e->officer_count; i++)
        keys[i] = e->officer_keys[i];

    for (size_t i = 0; i < e->pending_len && rc == FV_OK; i++) {
        escrow_pending *p = &e->pending[i];
        if (!set_add(e, p->pseudonym))
            continue;
        if (e->buffer_len >= ESCROW_BUFFER_MAX)
            rc = fv_escrow_flush(e);
        if (rc != FV_OK)
            break;
        store_escrow_entry *entry = &e->buffer[e->buffer_len];
        memcpy(entry->pseudonym, p->pseudonym, FV_PSEUDONYM_BYTES);
        entry->epoch_id = epoch_id;
        entry->stored_us = now_us;
        int src = fv_escrow_seal(keys, e->officer_count, p->pseudonym, epoch_id,
                                 (anon_type)p->type, p->id, p->len, entry->blob,
                                 &entry->blob_len);
        if (src != FV_OK) {
            fv_error("sealing an escrow entry failed: %s", fv_strerror(src));
            rc = src;
            break;
        }
        e->buffer_len++;
        e->sealed++;
    }
    fv_escrow_begin_record(e);
    return rc;
}

int fv_escrow_flush(fv_escrow *escrow)
{
    if (escrow == NULL || escrow->buffer_len == 0)
        return FV_OK;
    int rc = store_escrow_put(escrow->store, escrow->buffer, escrow->buffer_len, NULL);
    if (rc != FV_OK)
        fv_error("writing %zu escrow entries failed: %s", escrow->buffer_len, fv_strerror(rc));
    /* The blobs are ciphertext, but there is no reason to keep them. */
    sodium_memzero(escrow->buffer, escrow->buffer_len * sizeof escrow->buffer[0]);
    escrow->buffer_len = 0;
    return rc;
}

uint64_t fv_escrow_sealed(const fv_escrow *escrow)
{
    return escrow != NULL ? escrow->sealed : 0;
}
