/*
 * store.c: opening the LMDB environment, the write queue, transactions
 * with map growth, retention settings and ingest counters.
 *
 * Meta database keys (values are u64 little-endian):
 *   retention/<class>            retention limit in seconds
 *   sweep/<class>/last_us        time of the last sweep that reached the class
 *   sweep/<class>/last_deleted   records deleted by that sweep
 *   sweep/<class>/total_deleted  records deleted by all sweeps
 *   counters/<name>              ingest counters (packets, bytes, flows,
 *                                files, last_ingest_us)
 *   retention/audit, audit/...   audit trail state, see store_audit.c
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define STORE_MAXDBS 32
#define STORE_META_DB "meta"
#define STORE_AUDIT_DB "audit"
#define STORE_ESCROW_DB "escrow"
#define STORE_AUTH_DB "auth"
#define STORE_ALERT_STATE_DB "alert_state"

static void err_set(char *err, size_t err_len, const char *fmt, ...) FV_PRINTF(3, 4);

static void err_set(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

void store_key_encode(uint64_t id, uint8_t key[8])
{
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(id >> (56 - 8 * i));
}

bool store_key_decode(const MDB_val *key, uint64_t *id)
{
    if (key->mv_size != 8)
        return false;
    const uint8_t *k = key->mv_data;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | k[i];
    *id = v;
    return true;
}

bool store_meta_key(char *out, size_t out_len, const char *prefix, fv_class cls,
                    const char *suffix)
{
    const char *name = fv_class_name(cls);
    if (name == NULL)
        return false;
    int n = suffix != NULL ? snprintf(out, out_len, "%s/%s/%s", prefix, name, suffix)
                           : snprintf(out, out_len, "%s/%s", prefix, name);
    return n > 0 && (size_t)n < out_len;
}

uint64_t store_live_cutoff_us(uint64_t retention_s, uint64_t now_us)
{
    if (retention_s == 0)
        return 0;
    /* A limit above the maximum can only come from a damaged meta value;
     * clamp it so the multiplication cannot overflow. */
    if (retention_s > STORE_RETENTION_MAX_S)
        retention_s = STORE_RETENTION_MAX_S;
    uint64_t span_us = retention_s * 1000000u;
    return now_us > span_us ? now_us - span_us : 0;
}

/* ---------------------------------------------------------------------- */
/* Meta values                                                             */
/* ---------------------------------------------------------------------- */

int store_meta_get_u64(store_env *env, MDB_txn *txn, const char *key, uint64_t *out)
{
    *out = 0;
    if (!env->has_meta)
        return MDB_SUCCESS;
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
    MDB_val v;
    int mrc = mdb_get(txn, env->meta, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return MDB_SUCCESS;
    if (mrc != MDB_SUCCESS)
        return mrc;
    if (v.mv_size != 8) {
        fv_warning("store %s: meta value %s has %zu bytes, expected 8; reading it as 0",
                   env->dir, key, v.mv_size);
        return MDB_SUCCESS;
    }
    const uint8_t *b = v.mv_data;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | b[i];
    *out = x;
    return MDB_SUCCESS;
}

int store_meta_put_u64(store_env *env, MDB_txn *txn, const char *key, uint64_t value)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(value >> (8 * i));
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
    MDB_val v = {.mv_size = sizeof b, .mv_data = b};
    return mdb_put(txn, env->meta, &k, &v, 0);
}

uint64_t store_retention_in_txn(store_env *env, MDB_txn *txn, fv_class cls)
{
    char key[64];
    uint64_t v = 0;
    if (!store_meta_key(key, sizeof key, "retention", cls, NULL))
        return 0;
    if (store_meta_get_u64(env, txn, key, &v) != MDB_SUCCESS)
        return 0;
    atomic_store(&env->retention_cache[cls], v);
    return v;
}

/* ---------------------------------------------------------------------- */
/* Transactions                                                            */
/* ---------------------------------------------------------------------- */

/* Adopt the map size written by another process after MDB_MAP_RESIZED.
 * Takes map_lock exclusively, so no transaction of ours is open. */
static int store_map_adopt(store_env *env)
{
    pthread_rwlock_wrlock(&env->map_lock);
    int mrc = mdb_env_set_mapsize(env->mdb, 0);
    if (mrc == MDB_SUCCESS) {
        MDB_envinfo info;
        if (mdb_env_info(env->mdb, &info) == MDB_SUCCESS)
            env->map_bytes = info.me_mapsize;
    }
    pthread_rwlock_unlock(&env->map_lock);
    return mrc;
}

/* Run store_reader_check when STORE_READER_CHECK_INTERVAL_S have passed
 * since the last one, so a long-running reader such as serve frees the
 * slots of killed processes without a timer of its own. */
static void store_reader_check_due(store_env *env)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return;
    int64_t last = atomic_load(&env->reader_check_s);
    if (ts.tv_sec - last < STORE_READER_CHECK_INTERVAL_S)
        return;
    if (!atomic_compare_exchange_strong(&env->reader_check_s, &last, (int64_t)ts.tv_sec))
        return;     /* another thread runs it */
    (void)store_reader_check(env, NULL);
}

int store_reader_check(store_env *env, int *cleared)
{
    if (cleared != NULL)
        *cleared = 0;
    if (env == NULL)
        return FV_ERR_INVALID;
    int stale = 0;
    int mrc = mdb_reader_check(env->mdb, &stale);
    if (mrc != MDB_SUCCESS) {
        fv_warning("store %s: reader table check failed: %s", env->dir, mdb_strerror(mrc));
        return FV_ERR_STORE;
    }
    if (stale > 0)
        fv_notice("store %s: cleared %d stale reader slot%s of exited processes", env->dir,
                  stale, stale == 1 ? "" : "s");
    if (cleared != NULL)
        *cleared = stale;
    return FV_OK;
}

int store_read_begin(store_env *env, MDB_txn **txn)
{
    *txn = NULL;
    store_reader_check_due(env);
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_rwlock_rdlock(&env->map_lock);
        int mrc = mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, txn);
        if (mrc == MDB_SUCCESS)
            return FV_OK;
        pthread_rwlock_unlock(&env->map_lock);
        *txn = NULL;
        if (mrc != MDB_MAP_RESIZED || attempt > 0) {
            fv_error("store %s: cannot begin a read transaction: %s", env->dir,
                     mdb_strerror(mrc));
            return FV_ERR_STORE;
        }
        if (store_map_adopt(env) != MDB_SUCCESS)
            return FV_ERR_STORE;
    }
    return FV_ERR_STORE;
}

void store_read_end(store_env *env, MDB_txn **txn)
{
    if (*txn == NULL)
        return;
    mdb_txn_abort(*txn);
    *txn = NULL;
    pthread_rwlock_unlock(&env->map_lock);
}

/* Double the map size, up to map_max_bytes. Return FV_OK, FV_ERR_FULL
 * when the map is already at its maximum, or FV_ERR_STORE. */
static int store_map_grow(store_env *env)
{
    int rc = FV_OK;
    pthread_rwlock_wrlock(&env->map_lock);

    if (env->map_bytes >= env->map_max_bytes) {
        if (env->quota_bytes > 0)
            fv_error("store %s: the map is full at %zu bytes, the size quota of %llu bytes "
                     "plus its headroom; raise retention.max_store_size or shorten retention",
                     env->dir, env->map_max_bytes, (unsigned long long)env->quota_bytes);
        else
            fv_error("store %s: the map is full at its maximum of %zu bytes; "
                     "shorten retention or free disk space",
                     env->dir, env->map_max_bytes);
        rc = FV_ERR_FULL;
        goto out;
    }
    size_t next = env->map_bytes > env->map_max_bytes / 2 ? env->map_max_bytes
                                                          : env->map_bytes * 2;
    int mrc = mdb_env_set_mapsize(env->mdb, next);
    if (mrc != MDB_SUCCESS) {
        fv_error("store %s: cannot grow the map to %zu bytes: %s", env->dir, next,
                 mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }
    fv_info("store %s: map grown from %zu to %zu bytes", env->dir, env->map_bytes, next);
    env->map_bytes = next;

out:
    pthread_rwlock_unlock(&env->map_lock);
    return rc;
}

/* Log a failed write. A full file system shows up as ENOSPC, or as EIO
 * when LMDB's write of a page was cut short, so name it when little space
 * is left. */
static void store_write_error(store_env *env, const char *action, int mrc)
{
    struct statvfs fs;
    if ((mrc == ENOSPC || mrc == EIO) && statvfs(env->dir, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < STORE_QUOTA_MIN_BYTES) {
        fv_error("store %s: cannot %s: the file system is full (%llu bytes free); free disk "
                 "space or set retention.max_store_size below the free space, then run the "
                 "command again (or restart the service). Records committed before stay intact",
                 env->dir, action, (unsigned long long)fs.f_bavail * fs.f_frsize);
        return;
    }
    fv_error("store %s: cannot %s: %s", env->dir, action, mdb_strerror(mrc));
}

/*
 * Run FN in a write transaction until it commits. MDB_MAP_FULL (from a
 * put or from the commit) aborts the transaction, doubles the map and
 * runs FN again on a fresh transaction; MDB_MAP_RESIZED adopts the size
 * another process set. Every other failure marks the env failed: after
 * a failed write the caller's queue and ids may no longer match the
 * disk, so later writes are rejected rather than guessed at.
 */
int store_write_txn(store_env *env, const char *action, store_write_fn fn, void *ctx)
{
    if (env->rdonly) {
        fv_error("store %s: cannot %s: the store is open read-only", env->dir, action);
        return FV_ERR_STATE;
    }
    if (env->failed)
        return FV_ERR_STATE;

    for (;;) {
        MDB_txn *txn = NULL;
        pthread_rwlock_rdlock(&env->map_lock);
        int mrc = mdb_txn_begin(env->mdb, NULL, 0, &txn);
        if (mrc == MDB_SUCCESS) {
            mrc = fn(env, txn, ctx);
            if (mrc == MDB_SUCCESS)
                mrc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&env->map_lock);

        if (mrc == MDB_SUCCESS)
            return FV_OK;

        int rc;
        if (mrc == MDB_MAP_FULL)
            rc = store_map_grow(env);
        else if (mrc == MDB_MAP_RESIZED)
            rc = store_map_adopt(env) == MDB_SUCCESS ? FV_OK : FV_ERR_STORE;
        else {
            store_write_error(env, action, mrc);
            rc = FV_ERR_STORE;
        }
        if (rc != FV_OK) {
            env->failed = true;
            return rc;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Open and close                                                          */
/* ---------------------------------------------------------------------- */

/* Write DIR/data.mdb into PATH. Return false, with a message in ERR,
 * when it does not fit. */
static bool store_data_path(const char *dir, char *path, size_t path_len, char *err,
                            size_t err_len)
{
    int n = snprintf(path, path_len, "%s/data.mdb", dir);
    if (n < 0 || (size_t)n >= path_len) {
        err_set(err, err_len, "store directory path is too long: %s", dir);
        return false;
    }
    return true;
}

/* True if DIR/NAME exists (any type; a planted link counts too). */
static bool store_dir_has(const char *dir, const char *name)
{
    char path[PATH_MAX + 16];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return n > 0 && (size_t)n < sizeof path && lstat(path, &st) == 0;
}

static void store_lost_data_error(const char *dir, const char *state, char *err,
                                  size_t err_len)
{
    err_set(err, err_len,
            "the store in %s has lost its data file: data.mdb is %s while its data.keys "
            "remains, so its records and audit trail are gone from this directory; restore "
            "the whole directory from a backup, or move it aside and start a new store",
            dir, state);
}

/* Files and directories flowveil itself may keep in a store directory
 * before its data.mdb exists (sensor keys, an imported pseudonymization
 * key), plus what a file system puts at the root of a mount. */
static bool store_dir_entry_known(const char *name)
{
    static const char *const known[] = {
        ".", "..", "lost+found", "lock.mdb", "data.mdb", "data.keys", "pseudonym.key",
        "sensor.box.key", "sensor.box.pub", "authority.sign.pub",
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i]) == 0)
            return true;
    /* Temporary files of flowveil's atomic writes start with a dot. */
    return name[0] == '.';
}

/* Create DIR with mode 0770 (less the umask) unless it exists; it must be
 * a directory. The group lets the serving process, a different user,
 * read the store and append audit entries. */
static int store_dir_prepare(const char *dir, char *err, size_t err_len)
{
    if (mkdir(dir, 0770) != 0 && errno != EEXIST) {
        int e = errno;
        err_set(err, err_len, "cannot create store directory %s: %s", dir, strerror(e));
        return e == EACCES || e == EPERM ? FV_ERR_PERMISSION : FV_ERR_IO;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set(err, err_len, "store path %s is not a directory", dir);
        return FV_ERR_IO;
    }
    return FV_OK;
}

/* Check that a read-only open has a store to read. */
static int store_dir_check_existing(const char *dir, char *err, size_t err_len)
{
    char path[PATH_MAX + 16];
    if (!store_data_path(dir, path, sizeof path, err, err_len))
        return FV_ERR_INVALID;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            err_set(err, err_len, "no store found in %s; run `flowveil ingest` first", dir);
            return FV_ERR_NOT_FOUND;
        }
        err_set(err, err_len, "cannot read store directory %s: %s", dir, strerror(errno));
        return errno == EACCES ? FV_ERR_PERMISSION : FV_ERR_IO;
    }
    /* LMDB creates data.mdb empty and writes its first pages in the same
     * open; a writer killed in between leaves an empty file. A writer
     * initializes it on its next open, but this open must not: a
     * read-only open cannot (LMDB would report the bare "Bad file
     * descriptor" of its failed write), and a command that only reads and
     * audits must never create a store. */
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        if (store_dir_has(dir, "data.keys")) {
            store_lost_data_error(dir, "empty", err, err_len);
            return FV_ERR_STORE;
        }
        err_set(err, err_len,
                "the store in %s holds no data yet: the program that created it stopped "
                "before its first commit; run `flowveil ingest` or `flowveil capture` with "
                "this --db to initialize it",
                dir);
        return FV_ERR_NOT_FOUND;
    }
    return FV_OK;
}

/*
 * Check, before a writer opens DIR, that it is a store or may become one.
 * data.keys is created right after LMDB has written the first pages of
 * data.mdb. So a missing or empty data.mdb next to a data.keys means the
 * data file was lost, not that a first run was interrupted, and creating a
 * new one would silently start an empty store with a new audit trail. A
 * directory without data.mdb that contains files flowveil does not write may
 * be a mistyped --db, or a chroot set up with the policy, indicator lists
 * and time-zone files beside the store: the new store is created, with a
 * warning that names one such file.
 */
static int store_dir_check_writable(const char *dir, char *err, size_t err_len)
{
    char path[PATH_MAX + 16];
    if (!store_data_path(dir, path, sizeof path, err, err_len))
        return FV_ERR_INVALID;
    struct stat st;
    bool missing = stat(path, &st) != 0;
    if (!missing && st.st_size > 0)
        return FV_OK;
    if (store_dir_has(dir, "data.keys")) {
        store_lost_data_error(dir, missing ? "missing" : "empty", err, err_len);
        return FV_ERR_STORE;
    }
    if (!missing)
        return FV_OK;   /* an interrupted first open: LMDB initializes it */

    DIR *d = opendir(dir);
    if (d == NULL)
        return FV_OK;   /* store_dir_prepare reports it */
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!store_dir_entry_known(e->d_name)) {
            /* The name may hold control bytes: show printable ASCII only. */
            char name[64];
            size_t k = 0;
            for (const char *c = e->d_name; *c != '\0' && k + 1 < sizeof name; c++)
                name[k++] = (char)(*c >= 0x20 && *c < 0x7f ? *c : '?');
            name[k] = '\0';
            fv_warning("creating a new store in %s, which already holds other files (such "
                       "as '%s'); if --db was mistyped, stop now and remove the data.mdb, "
                       "lock.mdb and data.keys files created there",
                       dir, name);
            break;
        }
    }
    closedir(d);
    return FV_OK;
}

/*
 * LMDB calls this for a failed internal check, which a damaged page can
 * cause, before it prints MSG and aborts the process (liblmdb 0.9,
 * mdb_env_set_assert). Nothing can be recovered at that point, so name
 * the store and the remedy.
 */
static void store_lmdb_assert(MDB_env *mdb, const char *msg)
{
    const char *path = NULL;
    if (mdb_env_get_path(mdb, &path) != MDB_SUCCESS || path == NULL)
        path = "(unknown)";
    fprintf(stderr,
            "flowveil: error: the store %s is damaged (LMDB: %s), and the process stops;"
            " restore data.mdb and data.keys together from a backup\n",
            path, msg != NULL ? msg : "");
}

/*
 * Check that data.mdb is as long as its newest meta page says. LMDB maps
 * the file, so reading a page past the end of a truncated file kills the
 * process with SIGBUS instead of returning an error. The meta page layout
 * (64-bit LMDB 0.9): magic at byte 16, the page size in the free
 * database's md_pad at byte 40, the last page number at byte 136 and the
 * transaction id at byte 144; the second meta page starts one page in.
 */
static int store_file_check(const char *dir, char *err, size_t err_len)
{
    char path[PATH_MAX + 16];
    if (!store_data_path(dir, path, sizeof path, err, err_len))
        return FV_ERR_INVALID;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return FV_OK;   /* a new store, or mdb_env_open reports the problem */

    struct stat st;
    int rc = FV_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set(err, err_len, "%s is not a regular file; restore the store or choose another "
                              "--db directory", path);
        rc = FV_ERR_STORE;
        goto out;
    }
    if (st.st_size == 0)
        goto out;

    uint64_t best_txn = 0, needed = 0;
    bool valid = false;
    uint32_t psize = 0;
    for (int m = 0; m < 2; m++) {
        uint8_t meta[152];
        off_t off = m == 0 ? 0 : (off_t)psize;
        if (m == 1 && psize == 0)
            break;
        if (pread(fd, meta, sizeof meta, off) != (ssize_t)sizeof meta)
            continue;
        uint32_t magic, page;
        uint64_t last_pg, txnid;
        memcpy(&magic, meta + 16, 4);
        memcpy(&page, meta + 40, 4);
        memcpy(&last_pg, meta + 136, 8);
        memcpy(&txnid, meta + 144, 8);
        if (magic != 0xBEEFC0DEu || page < 512 || page > 65536)
            continue;
        if (m == 0)
            psize = page;
        if (!valid || txnid > best_txn) {
            best_txn = txnid;
            needed = (last_pg + 1) * (uint64_t)page;
            valid = true;
        }
    }
    if (!valid) {
        err_set(err, err_len, "%s is not an LMDB data file (no valid meta page); restore the "
                              "store from a backup or choose another --db directory", path);
        rc = FV_ERR_STORE;
    } else if ((uint64_t)st.st_size < needed) {
        err_set(err, err_len, "%s is truncated (%lld bytes, its last page needs %llu); restore "
                              "the store from a backup", path, (long long)st.st_size,
                (unsigned long long)needed);
        rc = FV_ERR_STORE;
    }
out:
    close(fd);
    return rc;
}

/* Return true if every database in the main database of TXN is one of
 * flowveil's: another program's LMDB environment must not be written. */
static bool store_is_ours(MDB_txn *txn, size_t *foreign)
{
    MDB_dbi main_dbi;
    MDB_cursor *cur = NULL;
    *foreign = 0;
    if (mdb_dbi_open(txn, NULL, 0, &main_dbi) != MDB_SUCCESS ||
        mdb_cursor_open(txn, main_dbi, &cur) != MDB_SUCCESS)
        return false;

    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == MDB_SUCCESS) {
        bool known = false;
        for (int c = 0; c < FV_CLASS_COUNT && !known; c++) {
            const char *name = fv_class_name((fv_class)c);
            known = name != NULL && k.mv_size == strlen(name) &&
                    memcmp(k.mv_data, name, k.mv_size) == 0;
        }
        static const char *const extra[] = {STORE_META_DB, STORE_AUDIT_DB, STORE_ESCROW_DB,
                                            STORE_AUTH_DB, STORE_ALERT_STATE_DB,
                                            "detstate" /* store_detstate.c */};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0] && !known; i++)
            known = k.mv_size == strlen(extra[i]) && memcmp(k.mv_data, extra[i], k.mv_size) == 0;
        if (!known)
            (*foreign)++;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return *foreign == 0;
}

/* Open or create the named databases, then read the last id of each
 * class. A read-only open creates nothing: a missing database reads as
 * an empty class. */
static int store_dbs_open(store_env *env, char *err, size_t err_len)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    unsigned dbflags = env->rdonly ? 0 : MDB_CREATE;
    int rc = FV_OK;

    int mrc = mdb_txn_begin(env->mdb, NULL, env->rdonly ? MDB_RDONLY : 0, &txn);
    if (mrc != MDB_SUCCESS) {
        err_set(err, err_len, "cannot begin a transaction in store %s: %s", env->dir,
                mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }

    size_t foreign = 0;
    if (!store_is_ours(txn, &foreign)) {
        err_set(err, err_len,
                "%s is not a flowveil store: its LMDB environment holds %zu database(s) or "
                "key(s) flowveil does not use; point --db at a flowveil store or a new directory",
                env->dir, foreign);
        rc = FV_ERR_STORE;
        goto out;
    }

    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        const char *name = fv_class_name((fv_class)c);
        mrc = name != NULL ? mdb_dbi_open(txn, name, dbflags, &env->dbi[c]) : MDB_INVALID;
        if (mrc == MDB_NOTFOUND && env->rdonly)
            continue;
        if (mrc != MDB_SUCCESS) {
            err_set(err, err_len, "cannot open database %s in store %s: %s",
                    name != NULL ? name : "(unnamed class)", env->dir, mdb_strerror(mrc));
            rc = FV_ERR_STORE;
            goto out;
        }
        env->has_dbi[c] = true;

        mrc = mdb_cursor_open(txn, env->dbi[c], &cur);
        if (mrc == MDB_SUCCESS) {
            MDB_val k, v;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
            if (mrc == MDB_SUCCESS && !store_key_decode(&k, &env->last_id[c]))
                mrc = MDB_CORRUPTED;
            if (mrc == MDB_NOTFOUND)
                mrc = MDB_SUCCESS;
            mdb_cursor_close(cur);
            cur = NULL;
        }
        if (mrc != MDB_SUCCESS) {
            err_set(err, err_len, "cannot read the last key of %s in store %s: %s", name,
                    env->dir, mdb_strerror(mrc));
            rc = FV_ERR_STORE;
            goto out;
        }
    }

    mrc = mdb_dbi_open(txn, STORE_META_DB, dbflags, &env->meta);
    if (mrc == MDB_SUCCESS)
        env->has_meta = true;
    else if (!(mrc == MDB_NOTFOUND && env->rdonly)) {
        err_set(err, err_len, "cannot open database %s in store %s: %s", STORE_META_DB,
                env->dir, mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }

    mrc = mdb_dbi_open(txn, STORE_AUDIT_DB, dbflags, &env->audit);
    if (mrc == MDB_SUCCESS)
        env->has_audit = true;
    else if (!(mrc == MDB_NOTFOUND && env->rdonly)) {
        err_set(err, err_len, "cannot open database %s in store %s: %s", STORE_AUDIT_DB,
                env->dir, mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }

    mrc = mdb_dbi_open(txn, STORE_ESCROW_DB, dbflags, &env->escrow);
    if (mrc == MDB_SUCCESS)
        env->has_escrow = true;
    else if (!(mrc == MDB_NOTFOUND && env->rdonly)) {
        err_set(err, err_len, "cannot open database %s in store %s: %s", STORE_ESCROW_DB,
                env->dir, mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }

    mrc = mdb_dbi_open(txn, STORE_AUTH_DB, dbflags, &env->auth);
    if (mrc == MDB_SUCCESS)
        env->has_auth = true;
    else if (!(mrc == MDB_NOTFOUND && env->rdonly)) {
        err_set(err, err_len, "cannot open database %s in store %s: %s", STORE_AUTH_DB,
                env->dir, mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }

    mrc = mdb_dbi_open(txn, STORE_ALERT_STATE_DB, dbflags, &env->alert_state);
    if (mrc == MDB_SUCCESS)
        env->has_alert_state = true;
    else if (!(mrc == MDB_NOTFOUND && env->rdonly)) {
        err_set(err, err_len, "cannot open database %s in store %s: %s", STORE_ALERT_STATE_DB,
                env->dir, mdb_strerror(mrc));
        rc = FV_ERR_STORE;
        goto out;
    }

    /* Committing (also for read-only) makes the handles usable later. */
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc != MDB_SUCCESS) {
        err_set(err, err_len, "cannot commit the database setup of store %s: %s", env->dir,
                mdb_strerror(mrc));
        rc = FV_ERR_STORE;
    }

out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    return rc;
}

/*
 * A writer opening a store whose data.keys is missing or empty would
 * create a new key file, and every record already stored would stay
 * encrypted under keys that no longer exist. That is right for a new
 * store (or one whose first open was cut short before data.keys got its
 * header) and wrong as soon as any record class contains a record.
 */
static int store_keys_check_present(store_env *env, char *err, size_t err_len)
{
    char path[PATH_MAX + 16];
    int n = snprintf(path, sizeof path, "%s/data.keys", env->dir);
    struct stat st;
    if (n < 0 || (size_t)n >= sizeof path)
        return FV_OK;   /* store_keys_open reports the path */
    if (lstat(path, &st) == 0 && st.st_size > 0)
        return FV_OK;
    bool missing = lstat(path, &st) != 0;

    MDB_txn *txn = NULL;
    if (mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn) != MDB_SUCCESS)
        return FV_OK;   /* the next transaction reports the problem */
    size_t records = 0;
    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        MDB_stat ms;
        if (env->has_dbi[c] && mdb_stat(txn, env->dbi[c], &ms) == MDB_SUCCESS)
            records += ms.ms_entries;
    }
    mdb_txn_abort(txn);
    if (records == 0)
        return FV_OK;
    err_set(err, err_len,
            "the store in %s holds %zu encrypted records but its data.keys is %s, so none "
            "of them could be read again; restore data.keys from the store's backup (a new "
            "key file is not created over them)",
            env->dir, records, missing ? "missing" : "empty");
    return FV_ERR_STORE;
}

int store_open_with_options(const char *dir, unsigned flags, const store_open_opts *opts,
                            store_env **out, char *err, size_t err_len)
{
    store_env *env = NULL;
    int rc = FV_OK;
    bool lock_ready = false;

    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (dir == NULL || dir[0] == '\0' || strlen(dir) >= PATH_MAX) {
        err_set(err, err_len, "invalid store directory: empty or longer than %d bytes",
                PATH_MAX - 1);
        return FV_ERR_INVALID;
    }

    env = calloc(1, sizeof *env);
    if (env == NULL) {
        err_set(err, err_len, "out of memory opening store %s", dir);
        return FV_ERR_NOMEM;
    }
    env->keys.fd = -1;
    memcpy(env->dir, dir, strlen(dir) + 1);
    env->rdonly = (flags & STORE_RDONLY) != 0;
    env->map_bytes = opts != NULL && opts->map_initial_bytes > 0 ? opts->map_initial_bytes
                                                                 : STORE_MAP_INITIAL_BYTES;
    env->map_max_bytes = opts != NULL && opts->map_max_bytes > 0 ? opts->map_max_bytes
                                                                 : STORE_MAP_MAX_BYTES;
    if (env->map_max_bytes < env->map_bytes)
        env->map_max_bytes = env->map_bytes;
    for (int c = 0; c < FV_CLASS_COUNT; c++)
        atomic_init(&env->retention_cache[c], STORE_RETENTION_UNKNOWN);

    if (pthread_rwlock_init(&env->map_lock, NULL) != 0) {
        err_set(err, err_len, "cannot create the map lock of store %s", dir);
        rc = FV_ERR_NOMEM;
        goto out;
    }
    lock_ready = true;

    rc = env->rdonly || (flags & STORE_EXISTING) != 0
             ? store_dir_check_existing(dir, err, err_len)
             : store_dir_prepare(dir, err, err_len);
    if (rc == FV_OK && !env->rdonly)
        rc = store_dir_check_writable(dir, err, err_len);
    if (rc != FV_OK)
        goto out;

    rc = store_file_check(dir, err, err_len);
    if (rc != FV_OK)
        goto out;

    int mrc = mdb_env_create(&env->mdb);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_env_set_assert(env->mdb, store_lmdb_assert);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_env_set_maxdbs(env->mdb, STORE_MAXDBS);
    /* A reader adopts the size the writer recorded (0 means "use the
     * file's"); a writer requests at least its initial size. */
    if (mrc == MDB_SUCCESS)
        mrc = mdb_env_set_mapsize(env->mdb, env->rdonly ? 0 : env->map_bytes);
    if (mrc == MDB_SUCCESS)
        mrc = mdb_env_open(env->mdb, dir, MDB_NOTLS | (env->rdonly ? MDB_RDONLY : 0), 0660);
    if (mrc != MDB_SUCCESS) {
        err_set(err, err_len, "cannot open store %s: %s", dir, mdb_strerror(mrc));
        rc = mrc == EACCES ? FV_ERR_PERMISSION : FV_ERR_STORE;
        goto out;
    }

    MDB_envinfo info;
    if (mdb_env_info(env->mdb, &info) == MDB_SUCCESS)
        env->map_bytes = info.me_mapsize;
    if (env->map_max_bytes < env->map_bytes)
        env->map_max_bytes = env->map_bytes;

    /* Free reader slots left by processes that died inside a transaction,
     * so they do not pin old pages forever. */
    (void)store_reader_check(env, NULL);
    struct timespec now_mono;
    if (clock_gettime(CLOCK_MONOTONIC, &now_mono) == 0)
        atomic_init(&env->reader_check_s, (int64_t)now_mono.tv_sec);

    rc = store_dbs_open(env, err, err_len);
    if (rc != FV_OK)
        goto out;

    if (!env->rdonly) {
        rc = store_keys_check_present(env, err, err_len);
        if (rc != FV_OK)
            goto out;
    }
    rc = store_keys_open(env, err, err_len);
    if (rc != FV_OK)
        goto out;

    *out = env;
    env = NULL;

out:
    if (env != NULL) {
        store_keys_close(env);
        if (env->mdb != NULL)
            mdb_env_close(env->mdb);
        if (lock_ready)
            pthread_rwlock_destroy(&env->map_lock);
        free(env);
    }
    return rc;
}

int store_open(const char *dir, unsigned flags, store_env **out, char *err, size_t err_len)
{
    return store_open_with_options(dir, flags, NULL, out, err, err_len);
}

void store_close(store_env **envp)
{
    if (envp == NULL || *envp == NULL)
        return;
    store_env *env = *envp;

    if (!env->rdonly && !env->failed && (env->queue_len > 0 || env->counters_pending)) {
        if (store_commit(env) != FV_OK)
            fv_error("store %s: %zu queued records were lost at close", env->dir,
                     env->queue_len);
    }
    mdb_env_close(env->mdb);
    store_keys_close(env);
    store_run_free(env);
    pthread_rwlock_destroy(&env->map_lock);
    free(env->held);
    free(env->queue);
    /* The queue buffer held plaintext record encodings. */
    if (env->buf != NULL)
        sodium_memzero(env->buf, env->buf_cap);
    free(env->buf);
    free(env);
    *envp = NULL;
}

/* ---------------------------------------------------------------------- */
/* Retention                                                               */
/* ---------------------------------------------------------------------- */

typedef struct retention_ctx {
    const char *key;
    uint64_t value;
} retention_ctx;

static int retention_write(store_env *env, MDB_txn *txn, void *ctx)
{
    const retention_ctx *r = ctx;
    return store_meta_put_u64(env, txn, r->key, r->value);
}

int store_set_retention(store_env *env, fv_class cls, uint64_t retention_s)
{
    if (env == NULL || (unsigned)cls >= FV_CLASS_COUNT)
        return FV_ERR_INVALID;
    if (retention_s > STORE_RETENTION_MAX_S) {
        fv_error("store %s: retention of %llu s for %s exceeds the maximum of %llu s", env->dir,
                 (unsigned long long)retention_s, fv_class_name(cls),
                 (unsigned long long)STORE_RETENTION_MAX_S);
        return FV_ERR_INVALID;
    }
    char key[64];
    if (!store_meta_key(key, sizeof key, "retention", cls, NULL))
        return FV_ERR_INVALID;

    retention_ctx r = {.key = key, .value = retention_s};
    int rc = store_write_txn(env, "write the retention limit", retention_write, &r);
    if (rc == FV_OK)
        atomic_store(&env->retention_cache[cls], retention_s);
    return rc;
}

uint64_t store_retention_s(store_env *env, fv_class cls)
{
    if (env == NULL || (unsigned)cls >= FV_CLASS_COUNT)
        return 0;
    uint64_t cached = atomic_load(&env->retention_cache[cls]);
    if (cached != STORE_RETENTION_UNKNOWN)
        return cached;

    MDB_txn *txn = NULL;
    if (store_read_begin(env, &txn) != FV_OK)
        return 0;
    uint64_t v = store_retention_in_txn(env, txn, cls);
    store_read_end(env, &txn);
    return v;
}

/* ---------------------------------------------------------------------- */
/* Write queue                                                             */
/* ---------------------------------------------------------------------- */

/* Make room for one more queued record of up to STORE_RECORD_MAX_BYTES. */
static int queue_reserve(store_env *env)
{
    if (env->queue_len == env->queue_cap) {
        size_t cap = env->queue_cap == 0 ? 256 : env->queue_cap * 2;
        store_pending *q = realloc(env->queue, cap * sizeof *q);
        if (q == NULL)
            return FV_ERR_NOMEM;
        env->queue = q;
        env->queue_cap = cap;
    }
    if (!(STORE_RECORD_MAX_BYTES <= env->buf_cap - env->buf_len)) {
        size_t cap = env->buf_cap == 0 ? 64 * STORE_RECORD_MAX_BYTES : env->buf_cap * 2;
        uint8_t *b = realloc(env->buf, cap);
        if (b == NULL)
            return FV_ERR_NOMEM;
        env->buf = b;
        env->buf_cap = cap;
    }
    return FV_OK;
}

int store_put(store_env *env, fv_class cls, const void *rec, uint64_t now_us)
{
    if (env == NULL || rec == NULL || (unsigned)cls >= FV_CLASS_COUNT)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;

    int rc = queue_reserve(env);
    if (rc != FV_OK) {
        fv_error("store %s: out of memory queueing a record", env->dir);
        env->failed = true;
        return rc;
    }

    size_t written = 0;
    rc = store_record_encode(cls, rec, env->buf + env->buf_len, STORE_RECORD_MAX_BYTES,
                             &written);
    if (rc != FV_OK) {
        /* A record that cannot be encoded is rejected alone; the queue
         * is untouched, so the writer stays usable. */
        fv_error("store %s: cannot encode a %s record: %s", env->dir, fv_class_name(cls),
                 fv_strerror(rc));
        return rc;
    }
    /* A resumed run skips what its interrupted attempt committed. */
    if (env->run != NULL && store_run_take_stored(env, cls, env->buf + env->buf_len, written))
        return FV_OK;

    /* Ids are the stored-at time, bumped past the previous id so they
     * stay unique and ascending even when the clock repeats or steps back. */
    uint64_t id = now_us > env->last_id[cls] ? now_us : env->last_id[cls] + 1;
    env->last_id[cls] = id;

    env->queue[env->queue_len++] = (store_pending){
        .id = id, .off = env->buf_len, .len = (uint32_t)written, .cls = (uint8_t)cls};
    env->buf_len += written;

    if (env->queue_len >= STORE_QUEUE_MAX)
        return store_commit(env);
    return FV_OK;
}

static const char *const counter_keys[] = {
    "counters/packets", "counters/bytes", "counters/flows", "counters/files",
    "counters/last_ingest_us",
};

/* Add the pending counter delta inside TXN. last_ingest_us keeps the
 * maximum; the others are sums. */
static int counters_apply(store_env *env, MDB_txn *txn)
{
    const store_counters *d = &env->counters_delta;
    const uint64_t delta[] = {d->packets, d->bytes, d->flows, d->files, d->last_ingest_us};

    for (size_t i = 0; i < sizeof counter_keys / sizeof counter_keys[0]; i++) {
        uint64_t cur = 0;
        int mrc = store_meta_get_u64(env, txn, counter_keys[i], &cur);
        if (mrc != MDB_SUCCESS)
            return mrc;
        uint64_t next;
        if (i == 4)
            next = delta[i] > cur ? delta[i] : cur;
        else
            next = cur + delta[i];
        mrc = store_meta_put_u64(env, txn, counter_keys[i], next);
        if (mrc != MDB_SUCCESS)
            return mrc;
    }
    return MDB_SUCCESS;
}

/*
 * Write the queue inside TXN. Before appending, check each class's last
 * key in this transaction: if another writer added records since open,
 * the queued ids are moved past it so MDB_APPEND still gets ascending
 * keys. Reassigning is idempotent, so a retry after map growth is safe.
 * Each value is encrypted under the key of its class and day, created
 * on first use (store_keys.c). The caller holds the key lock.
 */
static int commit_write_locked(store_env *env, MDB_txn *txn)
{
    uint64_t floor_id[FV_CLASS_COUNT] = {0};

    /* Another process may have created or destroyed day keys since the
     * last commit; the write transaction keeps it from doing so now. */
    if (store_keys_refresh(env) != FV_OK)
        return EIO;

    for (int c = 0; c < FV_CLASS_COUNT; c++) {
        MDB_cursor *cur = NULL;
        int mrc = mdb_cursor_open(txn, env->dbi[c], &cur);
        if (mrc != MDB_SUCCESS)
            return mrc;
        MDB_val k, v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (mrc == MDB_SUCCESS && !store_key_decode(&k, &floor_id[c]))
            mrc = MDB_CORRUPTED;
        mdb_cursor_close(cur);
        if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
            return mrc;
    }

    for (size_t i = 0; i < env->queue_len; i++) {
        store_pending *p = &env->queue[i];
        if (p->id <= floor_id[p->cls])
            p->id = floor_id[p->cls] + 1;
        floor_id[p->cls] = p->id;
        if (p->id > env->last_id[p->cls])
            env->last_id[p->cls] = p->id;

        /* Reserve the value in the page and encrypt straight into it,
         * only now: the id, and with it the day and the associated data,
         * is final here. */
        uint8_t keybuf[8];
        store_key_encode(p->id, keybuf);
        MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
        MDB_val v = {.mv_size = p->len + STORE_VALUE_OVERHEAD, .mv_data = NULL};
        int mrc = mdb_put(txn, env->dbi[p->cls], &k, &v, MDB_APPEND | MDB_RESERVE);
        if (mrc != MDB_SUCCESS)
            return mrc;
        size_t sealed_len = 0;
        int rc = store_value_seal(env, (fv_class)p->cls, p->id, env->buf + p->off, p->len,
                                  v.mv_data, v.mv_size, &sealed_len);
        if (rc == FV_OK && sealed_len != v.mv_size)
            rc = FV_ERR_CRYPTO;
        if (rc != FV_OK) {
            fv_error("store %s: cannot encrypt a %s record: %s", env->dir,
                     fv_class_name((fv_class)p->cls), fv_strerror(rc));
            return EIO;
        }
    }

    if (store_run_finishing(env)) {
        int mrc = store_run_finish_write(env, txn);
        if (mrc != MDB_SUCCESS)
            return mrc;
    } else if (env->run != NULL) {
        uint64_t queued[FV_CLASS_COUNT] = {0};
        for (size_t i = 0; i < env->queue_len; i++)
            queued[env->queue[i].cls]++;
        int mrc = store_run_write_progress(env, txn, queued);
        if (mrc != MDB_SUCCESS)
            return mrc;
    }

    if (env->counters_pending && !store_run_holds_counters(env))
        return counters_apply(env, txn);
    return MDB_SUCCESS;
}

static int commit_write(store_env *env, MDB_txn *txn, void *ctx)
{
    (void)ctx;
    store_keys_lock(env);
    int mrc = commit_write_locked(env, txn);
    store_keys_unlock(env);
    return mrc;
}

/*
 * Find LMDB's map of data.mdb: the mapping of the file's device and
 * inode at offset 0 in /proc/self/maps. LMDB reports the map's address
 * (mdb_env_info's me_mapaddr) only for MDB_FIXEDMAP maps, and the map
 * moves when it grows, so it is looked up at each use.
 */
static bool store_map_range(store_env *env, void **base, size_t *len)
{
    mdb_filehandle_t fd;
    struct stat st;
    if (mdb_env_get_fd(env->mdb, &fd) != MDB_SUCCESS || fstat(fd, &st) != 0)
        return false;
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return false;
    char line[256];
    bool found = false, line_start = true;
    while (!found && fgets(line, sizeof line, maps) != NULL) {
        bool at_start = line_start;
        line_start = strchr(line, '\n') != NULL;
        if (!at_start)
            continue;
        /* "start-end perms offset major:minor inode path", numbers in hex
         * but the inode in decimal. */
        char *rest = NULL;
        unsigned long start = strtoul(line, &rest, 16);
        if (*rest != '-')
            continue;
        unsigned long end = strtoul(rest + 1, &rest, 16);
        if (*rest != ' ' || (rest = strchr(rest + 1, ' ')) == NULL)
            continue;
        unsigned long offset = strtoul(rest + 1, &rest, 16);
        if (*rest != ' ')
            continue;
        unsigned long dev_major = strtoul(rest + 1, &rest, 16);
        if (*rest != ':')
            continue;
        unsigned long dev_minor = strtoul(rest + 1, &rest, 16);
        if (*rest != ' ')
            continue;
        unsigned long long inode = strtoull(rest + 1, &rest, 10);
        if (inode == (unsigned long long)st.st_ino && dev_major == major(st.st_dev) &&
            dev_minor == minor(st.st_dev) && offset == 0 && end > start) {
            // NOLINTNEXTLINE(performance-no-int-to-ptr): madvise needs the map's address, which /proc/self/maps gives as text
            *base = (void *)(uintptr_t)start;
            *len = end - start;
            found = true;
        }
    }
    fclose(maps);
    return found;
}

/*
 * Drop this process's mappings of the pages of data.mdb. LMDB reads
 * pages through its read-only map, and the kernel maps the cached pages
 * around each fault too, so over a long ingest most of the file would
 * count in the writer's RSS, which the OOM killer ranks processes by.
 * The pages stay in the page cache and the next access maps them again,
 * so readers see no difference. MADV_DONTNEED is safe here because the
 * map is a shared file map that the process never writes (no
 * MDB_WRITEMAP). Failures are ignored: this only lowers the RSS.
 * Caller holds map_lock, so the map cannot move meanwhile.
 */
static void store_unmap_cached_pages(store_env *env)
{
    unsigned flags = 0;
    void *base = NULL;
    size_t len = 0;
    if (mdb_env_get_flags(env->mdb, &flags) != MDB_SUCCESS || (flags & MDB_WRITEMAP) != 0 ||
        !store_map_range(env, &base, &len))
        return;
    (void)madvise(base, len, MADV_DONTNEED);
}

int store_commit(store_env *env)
{
    if (env == NULL)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;
    /* A run keeps its counters in memory until it completes (store_run_end). */
    bool counters_due = env->counters_pending && !store_run_holds_counters(env);
    bool finishing = store_run_finishing(env);
    if (env->queue_len == 0 && !counters_due && !finishing)
        return FV_OK;

    /* Over the quota the queued records are dropped, but the store stays
     * usable for audit entries and sweeps, which free pages. */
    if (env->queue_len > 0 && store_quota_check(env) != FV_OK) {
        env->queue_len = 0;
        env->buf_len = 0;
        return FV_ERR_FULL;
    }

    int rc = store_write_txn(env, "commit queued records", commit_write, NULL);
    if (rc != FV_OK)
        return rc;
    pthread_rwlock_rdlock(&env->map_lock);
    store_unmap_cached_pages(env);
    pthread_rwlock_unlock(&env->map_lock);

    for (size_t i = 0; i < env->queue_len; i++)
        env->committed[env->queue[i].cls]++;
    bool report = env->queue_len > 0 && env->commit_hook != NULL;
    env->queue_len = 0;
    env->buf_len = 0;
    if (counters_due) {
        memset(&env->counters_delta, 0, sizeof env->counters_delta);
        env->counters_pending = false;
    }
    if (finishing)
        env->held_len = 0;
    if (report)
        store_commit_report(env);
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Ingest counters                                                         */
/* ---------------------------------------------------------------------- */

int store_counters_add(store_env *env, const store_counters *delta)
{
    if (env == NULL || delta == NULL)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;
    if (env->run_counts_dropped)
        return FV_OK;

    store_counters *d = &env->counters_delta;
    d->packets += delta->packets;
    d->bytes += delta->bytes;
    d->flows += delta->flows;
    d->files += delta->files;
    if (delta->last_ingest_us > d->last_ingest_us)
        d->last_ingest_us = delta->last_ingest_us;
    env->counters_pending = true;
    return FV_OK;
}

int store_counters_get(store_env *env, store_counters *out)
{
    if (env == NULL || out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);

    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;

    uint64_t *dst[] = {&out->packets, &out->bytes, &out->flows, &out->files,
                       &out->last_ingest_us};
    for (size_t i = 0; i < sizeof counter_keys / sizeof counter_keys[0]; i++) {
        int mrc = store_meta_get_u64(env, txn, counter_keys[i], dst[i]);
        if (mrc != MDB_SUCCESS) {
            fv_error("store %s: cannot read %s: %s", env->dir, counter_keys[i],
                     mdb_strerror(mrc));
            rc = FV_ERR_STORE;
            break;
        }
    }
    store_read_end(env, &txn);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Capture counters                                                        */
/* ---------------------------------------------------------------------- */

#define CAPTURE_COUNTER_PREFIX "capture/"
#define CAPTURE_COUNTER_NAME_MAX 64

typedef struct capture_add {
    const char *const *names;
    const uint64_t *values;
    size_t count;
} capture_add;

/* A capture counter held during a run (store_run_counters_add). */
struct store_held_counter {
    char name[CAPTURE_COUNTER_NAME_MAX + 1];
    uint64_t value;
};

static bool counter_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CAPTURE_COUNTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int capture_add_write(store_env *env, MDB_txn *txn, void *ctx)
{
    const capture_add *a = ctx;
    char key[sizeof CAPTURE_COUNTER_PREFIX + CAPTURE_COUNTER_NAME_MAX];

    for (size_t i = 0; i < a->count; i++) {
        if (a->values[i] == 0)
            continue;
        snprintf(key, sizeof key, "%s%s", CAPTURE_COUNTER_PREFIX, a->names[i]);
        uint64_t cur = 0;
        int mrc = store_meta_get_u64(env, txn, key, &cur);
        if (mrc != MDB_SUCCESS)
            return mrc;
        uint64_t next = UINT64_MAX - cur < a->values[i] ? UINT64_MAX : cur + a->values[i];
        mrc = store_meta_put_u64(env, txn, key, next);
        if (mrc != MDB_SUCCESS)
            return mrc;
    }
    return MDB_SUCCESS;
}

int store_capture_counters_add(store_env *env, const char *const *names, const uint64_t *values,
                               size_t count)
{
    if (env == NULL || names == NULL || values == NULL)
        return FV_ERR_INVALID;
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;
    for (size_t i = 0; i < count; i++) {
        if (names[i] == NULL || !counter_name_valid(names[i]))
            return FV_ERR_INVALID;
    }
    capture_add a = {.names = names, .values = values, .count = count};
    return store_write_txn(env, "update capture counters", capture_add_write, &a);
}

/* Add VALUE to the held counter NAME, a valid name. */
static int held_add(store_env *env, const char *name, uint64_t value)
{
    for (size_t i = 0; i < env->held_len; i++) {
        struct store_held_counter *h = &env->held[i];
        if (strcmp(h->name, name) == 0) {
            h->value = UINT64_MAX - h->value < value ? UINT64_MAX : h->value + value;
            return FV_OK;
        }
    }
    if (env->held_len == env->held_cap) {
        size_t cap = env->held_cap == 0 ? 32 : env->held_cap * 2;
        struct store_held_counter *grown = realloc(env->held, cap * sizeof *grown);
        if (grown == NULL)
            return FV_ERR_NOMEM;
        env->held = grown;
        env->held_cap = cap;
    }
    struct store_held_counter *h = &env->held[env->held_len++];
    snprintf(h->name, sizeof h->name, "%s", name);
    h->value = value;
    return FV_OK;
}

int store_run_counters_add(store_env *env, const char *const *names, const uint64_t *values,
                           size_t count)
{
    if (env == NULL || names == NULL || values == NULL)
        return FV_ERR_INVALID;
    if (env->run_counts_dropped) {
        for (size_t i = 0; i < count; i++) {
            if (names[i] == NULL || !counter_name_valid(names[i]))
                return FV_ERR_INVALID;
        }
        return env->rdonly || env->failed ? FV_ERR_STATE : FV_OK;
    }
    if (!store_run_holds_counters(env))
        return store_capture_counters_add(env, names, values, count);
    if (env->rdonly || env->failed)
        return FV_ERR_STATE;
    for (size_t i = 0; i < count; i++) {
        if (names[i] == NULL || !counter_name_valid(names[i]))
            return FV_ERR_INVALID;
    }
    for (size_t i = 0; i < count; i++) {
        if (values[i] == 0)
            continue;
        int rc = held_add(env, names[i], values[i]);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

int store_held_counters_write(store_env *env, MDB_txn *txn)
{
    for (size_t i = 0; i < env->held_len; i++) {
        const char *name = env->held[i].name;
        capture_add a = {.names = &name, .values = &env->held[i].value, .count = 1};
        int mrc = capture_add_write(env, txn, &a);
        if (mrc != MDB_SUCCESS)
            return mrc;
    }
    return MDB_SUCCESS;
}

void store_held_counters_drop(store_env *env)
{
    env->held_len = 0;
}

int store_capture_counters_each(store_env *env, store_counter_fn fn, void *ctx)
{
    if (env == NULL || fn == NULL)
        return FV_ERR_INVALID;

    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;

    MDB_cursor *cur = NULL;
    int mrc = env->has_meta ? mdb_cursor_open(txn, env->meta, &cur) : MDB_NOTFOUND;
    if (mrc == MDB_SUCCESS) {
        const size_t prefix_len = sizeof CAPTURE_COUNTER_PREFIX - 1;
        MDB_val k = {.mv_size = prefix_len, .mv_data = (void *)CAPTURE_COUNTER_PREFIX};
        MDB_val v;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (mrc == MDB_SUCCESS) {
            if (k.mv_size <= prefix_len || k.mv_size > prefix_len + CAPTURE_COUNTER_NAME_MAX ||
                memcmp(k.mv_data, CAPTURE_COUNTER_PREFIX, prefix_len) != 0)
                break;
            if (v.mv_size != 8) {
                mrc = MDB_CORRUPTED;
                break;
            }
            char name[CAPTURE_COUNTER_NAME_MAX + 1];
            size_t name_len = k.mv_size - prefix_len;
            memcpy(name, (const char *)k.mv_data + prefix_len, name_len);
            name[name_len] = '\0';
            /* Meta values are little-endian, as store_meta_put_u64 writes them. */
            uint64_t value = 0;
            const uint8_t *b = v.mv_data;
            for (int i = 7; i >= 0; i--)
                value = value << 8 | b[i];
            if (!fn(ctx, name, value))
                break;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (mrc == MDB_NOTFOUND)
            mrc = MDB_SUCCESS;
        mdb_cursor_close(cur);
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        fv_error("store %s: cannot read the capture counters: %s", env->dir, mdb_strerror(mrc));
        rc = FV_ERR_STORE;
    }
    store_read_end(env, &txn);
    return rc;
}
