/*
 * checkpoint.c: commit lines and resumable ingest runs (checkpoint.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "checkpoint.h"
#include "cli.h"

/* Seconds between two commit lines at notice level. The lines between
 * them are logged at info level (shown with -v), and the last of those
 * is kept to be printed by fv_checkpoint_log_pending. */
#define COMMIT_LINE_INTERVAL_S 10

/* The commit-line state. With --workers, commits run on the writer
 * thread while the main thread may print the pending line. */
static pthread_mutex_t commit_log_lock = PTHREAD_MUTEX_INITIALIZER;
/* The classes part of the last line: a commit that adds no record of a
 * listed class (counters, gauges or an alert alone) logs nothing new. */
static char last_logged[320];
static bool notice_logged;           /* a line was logged at notice level */
static struct timespec last_notice;  /* CLOCK_MONOTONIC of that line */
static char pending[400];            /* the last line logged at info level only, or "" */

static double seconds_since(const struct timespec *then)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - then->tv_sec) + (double)(now.tv_nsec - then->tv_nsec) / 1e9;
}

static void log_commit(void *ctx, const uint64_t committed[FV_CLASS_COUNT])
{
    const fv_pipeline *p = ctx;
    if (p->after_commit != NULL)
        p->after_commit(p);

    char classes[256];
    size_t used = 0;
    uint64_t total = 0;
    classes[0] = '\0';
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        if (c == FV_CLASS_ALERT)
            continue;
        total += committed[c];
        int n = snprintf(classes + used, sizeof classes - used, " %s=%llu",
                         fv_class_name((fv_class)c), (unsigned long long)committed[c]);
        if (n < 0 || !((size_t)n < sizeof classes - used))
            break;
        used += (size_t)n;
    }

    pthread_mutex_lock(&commit_log_lock);
    if (strcmp(classes, last_logged) == 0) {
        pthread_mutex_unlock(&commit_log_lock);
        return;
    }
    snprintf(last_logged, sizeof last_logged, "%s", classes);

    /* fv_pipeline_stats, not p->capture: with --workers the pipeline's
     * own engine reads no packet. Commits run on the writer thread, which
     * is the only thread that writes the workers' summed counters. */
    cap_stats st = {0};
    if (p->capture != NULL)
        fv_pipeline_stats(p, &st);
    char line[sizeof pending];
    snprintf(line, sizeof line, "committed %llu records up to packet %llu:%s",
             (unsigned long long)total, (unsigned long long)st.packets, classes);
    if (!notice_logged || seconds_since(&last_notice) >= COMMIT_LINE_INTERVAL_S) {
        fv_notice("%s", line);
        notice_logged = true;
        clock_gettime(CLOCK_MONOTONIC, &last_notice);
        pending[0] = '\0';
    } else {
        fv_info("%s", line);
        snprintf(pending, sizeof pending, "%s", line);
    }
    pthread_mutex_unlock(&commit_log_lock);
}

void fv_checkpoint_log_pending(void)
{
    pthread_mutex_lock(&commit_log_lock);
    if (pending[0] != '\0') {
        /* With -v the line was printed already, at info level. */
        if (fv_log_get_level() < FV_LOG_INFO)
            fv_notice("%s", pending);
        pending[0] = '\0';
        notice_logged = true;
        clock_gettime(CLOCK_MONOTONIC, &last_notice);
    }
    pthread_mutex_unlock(&commit_log_lock);
}

void fv_checkpoint_log_commits(fv_pipeline *p)
{
    store_commit_hook_set(p->store, log_commit, p);
}

/* Bytes hashed at each end of an input file for its identity. */
#define ID_EDGE_BYTES 65536u

static void put_u64_le(crypto_generichash_state *state, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(state, le, sizeof le);
}

/* Hash LEN bytes of FD from OFFSET into STATE. */
static int hash_range(crypto_generichash_state *state, int fd, uint64_t offset, size_t len)
{
    uint8_t buf[ID_EDGE_BYTES];
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FV_ERR_IO;
        crypto_generichash_update(state, buf, (size_t)n);
        done += (size_t)n;
    }
    return FV_OK;
}

/*
 * Add the identity of the file at PATH to STATE: its size, inode number,
 * modification time in nanoseconds and the BLAKE2b of its first and last
 * 64 KiB. Hashing the whole file cost a second full read of it (13% of
 * ingest CPU on an 868 MB capture). A capture file that is rewritten or
 * replaced gets a new inode or modification time, and an appended one a
 * new size and tail. The device number is left out because it can change
 * across the reboot after a crash. A wrong match is not a silent loss:
 * the resume skips only records whose encoding equals a stored one.
 */
static int hash_file(crypto_generichash_state *state, const char *path, char *err,
                     size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "%s: cannot open for the ingest checkpoint: %s", path,
                 strerror(errno));
        return FV_ERR_IO;
    }
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? FV_OK : FV_ERR_IO;
    if (rc == FV_OK && !S_ISREG(st.st_mode)) {
        /* A pipe or device has no stable identity; hash what a read gives. */
        crypto_generichash_state file_state;
        crypto_generichash_init(&file_state, NULL, 0, 32);
        uint8_t buf[ID_EDGE_BYTES];
        uint64_t size = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = FV_ERR_IO;
                break;
            }
            crypto_generichash_update(&file_state, buf, (size_t)n);
            size += (uint64_t)n;
        }
        uint8_t digest[32];
        crypto_generichash_final(&file_state, digest, sizeof digest);
        put_u64_le(state, size);
        crypto_generichash_update(state, digest, sizeof digest);
    } else if (rc == FV_OK) {
        uint64_t size = (uint64_t)st.st_size;
        size_t head = size < ID_EDGE_BYTES ? (size_t)size : ID_EDGE_BYTES;
        uint64_t tail_off = size > ID_EDGE_BYTES ? size - ID_EDGE_BYTES : 0;
        put_u64_le(state, size);
        put_u64_le(state, (uint64_t)st.st_ino);
        put_u64_le(state, (uint64_t)st.st_mtim.tv_sec);
        put_u64_le(state, (uint64_t)st.st_mtim.tv_nsec);
        rc = hash_range(state, fd, 0, head);
        if (rc == FV_OK && tail_off > 0)
            rc = hash_range(state, fd, tail_off, (size_t)(size - tail_off));
    }
    close(fd);
    if (rc != FV_OK)
        snprintf(err, err_len, "%s: read error while identifying it for the ingest checkpoint",
                 path);
    return rc;
}

int fv_checkpoint_begin(fv_pipeline *p, const char *actor, char *const *files, int count,
                        const char *filter, char *err, size_t err_len)
{
    fv_checkpoint_log_commits(p);
    for (int i = 0; i < count; i++) {
        if (strcmp(files[i], "-") == 0) {
            fv_notice("reading standard input: this ingest cannot be resumed if interrupted; "
                      "save the capture to a file and ingest the file to make it resumable");
            return FV_OK;
        }
    }

    static const char domain[] = "flowveil ingest run v1";
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, STORE_RUN_ID_BYTES);
    crypto_generichash_update(&state, (const uint8_t *)domain, sizeof domain);
    /* The filter, NUL-terminated, or a lone 0xff byte for none. */
    if (filter != NULL)
        crypto_generichash_update(&state, (const uint8_t *)filter, strlen(filter) + 1);
    else
        crypto_generichash_update(&state, (const uint8_t *)"\xff", 1);
    for (int i = 0; i < count; i++) {
        int rc = hash_file(&state, files[i], err, err_len);
        if (rc != FV_OK)
            return rc;
    }
    uint8_t id[STORE_RUN_ID_BYTES];
    crypto_generichash_final(&state, id, sizeof id);

    store_run_info info;
    int rc = store_run_begin(p->store, id, &info);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot start the ingest checkpoint: %s", fv_strerror(rc));
        return rc;
    }
    if (info.resumed) {
        uint64_t stored = 0;
        for (unsigned c = 0; c < FV_CLASS_COUNT; c++)
            stored += info.stored[c];
        fv_notice("resuming an interrupted ingest of the same files: %llu records it "
                  "committed are stored and will not be stored again",
                  (unsigned long long)stored);
        if (info.detect_saved && p->detstate_loaded) {
            /* The attempt stopped after it saved the detector state,
             * which already contains every record of these files. */
            p->detect_input_saved = true;
            fv_notice("the interrupted ingest saved the detector state after reading all "
                      "of its input: this run does not feed records to the detectors or "
                      "evaluate them, and keeps that state");
        } else if (info.detect_saved) {
            fv_notice("the interrupted ingest saved the detector state after reading all "
                      "of its input, but that state could not be restored, so this run "
                      "feeds its input to the detectors again");
        }
        char params[64];
        snprintf(params, sizeof params, "stored=%llu&detect_saved=%d", (unsigned long long)stored,
                 info.detect_saved ? 1 : 0);
        (void)cli_audit_append(p->store, actor, "ingest.resume", "", params, stored,
                               fv_pipeline_now_us(p));
    }
    return FV_OK;
}

bool fv_checkpoint_end(fv_pipeline *p, bool complete, bool resumable,
                       const store_audit_entry *final)
{
    /* A run cut short by an error (an unreadable file, a failed worker
     * start) before it stored anything keeps no checkpoint. Its resume
     * would skip nothing, and a fixed file changes the run id, so the
     * checkpoint would stay behind. */
    bool forgotten = false;
    if (!complete && !resumable && store_run_empty(p->store))
        forgotten = store_run_forget(p->store) == FV_OK;
    uint64_t skipped = 0;
    int rc = store_run_end(p->store, complete, final, fv_now_us(), &skipped);
    if (rc == FV_ERR_STATE)
        return false;   /* no run: standard input */
    if (skipped > 0)
        fv_notice("skipped %llu records that the interrupted ingest had stored",
                  (unsigned long long)skipped);
    if (rc != FV_OK) {
        fv_error("cannot delete the ingest checkpoint (%s); the next ingest of the same files "
                 "skips records equal to the ones stored now and adds the packet counters",
                 fv_strerror(rc));
        /* The run did not complete, so the command must not exit 0. */
        if (p->failed_rc == FV_OK)
            p->failed_rc = rc;
    } else if (!complete && resumable)
        fv_notice("the ingest did not finish; run the same command again to resume it. The "
                  "store's packet and parser counters include this input once the resume "
                  "finishes");
    else if (!complete && forgotten)
        fv_notice("the ingest stored nothing before the error above, so it keeps no "
                  "checkpoint; once the cause is fixed, the same command ingests the files "
                  "afresh");
    else if (!complete)
        fv_notice("the ingest did not finish because of the file error above, so its "
                  "checkpoint stays: if the error passes and the files stay unchanged, the same "
                  "command resumes it. A repaired, replaced or left-out file makes the next "
                  "command a new ingest, which stores the records this run stored a second "
                  "time and evaluates the detectors over all the files it reads");
    return complete && rc == FV_OK && final != NULL;
}

int fv_store_quota_apply(fv_pipeline *p, char *err, size_t err_len)
{
    uint64_t quota = pol_max_store_bytes(p->policy);
    int rc = store_size_limit_set(p->store, quota);
    if (rc != FV_OK) {
        snprintf(err, err_len, "cannot apply retention.max_store_size (%llu bytes): %s",
                 (unsigned long long)quota, fv_strerror(rc));
        return rc;
    }
    uint64_t used = 0;
    if (quota > 0 && store_size_used(p->store, &used) == FV_OK)
        fv_info("store size quota %llu bytes, %llu bytes used", (unsigned long long)quota,
                (unsigned long long)used);
    return FV_OK;
}
