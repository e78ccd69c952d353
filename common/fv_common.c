/*
 * fv_common.c: error strings, logging, names and small formatting helpers
 * shared by every module.
 */
#include "fv_common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

const char *fv_strerror(int code)
{
    switch (code) {
    case FV_OK: return "success";
    case FV_ERR_NOMEM: return "out of memory";
    case FV_ERR_IO: return "input/output error";
    case FV_ERR_INVALID: return "invalid argument";
    case FV_ERR_PARSE: return "malformed input";
    case FV_ERR_NOT_FOUND: return "not found";
    case FV_ERR_TRUNCATED: return "input cut short";
    case FV_ERR_UNSUPPORTED: return "unsupported input";
    case FV_ERR_STORE: return "store error";
    case FV_ERR_CRYPTO: return "cryptographic error";
    case FV_ERR_CAPTURE: return "capture error";
    case FV_ERR_FULL: return "limit reached";
    case FV_ERR_STATE: return "object in failed state";
    case FV_ERR_PERMISSION: return "permission denied";
    case FV_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

/* ---------------------------------------------------------------------- */

static fv_log_level log_max_level = FV_LOG_NOTICE;
static fv_log_target log_target = FV_LOG_TO_STDERR;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void fv_log_set_target(fv_log_target target)
{
    pthread_mutex_lock(&log_lock);
    if (target == FV_LOG_TO_SYSLOG && log_target != FV_LOG_TO_SYSLOG)
        openlog("flowveil", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (target != FV_LOG_TO_SYSLOG && log_target == FV_LOG_TO_SYSLOG)
        closelog();
    log_target = target;
    pthread_mutex_unlock(&log_lock);
}

void fv_log_set_level(fv_log_level level)
{
    log_max_level = level;
}

fv_log_level fv_log_get_level(void)
{
    return log_max_level;
}

void fv_log(fv_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "notice", "info", "debug"};

    if (level > log_max_level)
        return;

    /* Format first, then write the whole line at once so lines from
     * different threads do not interleave. */
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;

    static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

    pthread_mutex_lock(&log_lock);
    if (log_target == FV_LOG_TO_SYSLOG) {
        syslog(priorities[level], "%s", line);
    } else {
        fprintf(stderr, "flowveil: %s: %s\n", names[level], line);
        fflush(stderr);
    }
    pthread_mutex_unlock(&log_lock);
}

/* ---------------------------------------------------------------------- */

static const char *const class_names[FV_CLASS_COUNT] = {
    "flows", "dns", "tls", "http", "alerts", "dhcp", "ssh", "aggregates"};

const char *fv_class_name(fv_class cls)
{
    if ((unsigned)cls >= FV_CLASS_COUNT)
        return NULL;
    return class_names[cls];
}

int fv_class_from_name(const char *name, fv_class *out)
{
    if (name == NULL)
        return FV_ERR_INVALID;
    for (unsigned i = 0; i < FV_CLASS_COUNT; i++) {
        if (strcmp(name, class_names[i]) == 0) {
            *out = (fv_class)i;
            return FV_OK;
        }
    }
    return FV_ERR_INVALID;
}

const char *fv_detector_name(int detector)
{
    switch (detector) {
    case FV_DET_BEACON: return "beacon";
    case FV_DET_EXFIL: return "exfil";
    case FV_DET_LONG_CONN: return "long_connection";
    case FV_DET_BASELINE: return "baseline";
    case FV_DET_SCAN: return "scan";
    case FV_DET_DNS_TUNNEL: return "dns_tunnel";
    case FV_DET_DGA: return "dga";
    case FV_DET_RARE_DEST: return "rare_destination";
    case FV_DET_OFF_HOURS: return "off_hours";
    case FV_DET_SEGMENTATION: return "segmentation";
    case FV_DET_INDICATOR: return "indicator";
    default: return NULL;
    }
}

const char *fv_severity_name(int severity)
{
    switch (severity) {
    case FV_SEV_LOW: return "low";
    case FV_SEV_MEDIUM: return "medium";
    case FV_SEV_HIGH: return "high";
    case FV_SEV_CRITICAL: return "critical";
    default: return NULL;
    }
}

/* Evidence slot names per detector. The detectors fill the slots in this
 * order; the names appear in exports and the API. */
static const char *const beacon_evidence[] = {
    "connections", "median_interval_s", "mad_interval_s",
    "dispersion", "duration_s", "mean_bytes_out", "timing_score", "size_score",
};
static const char *const exfil_evidence[] = {
    "bytes_out", "baseline_median_bytes", "ratio", "duration_s", "history_flows",
};
static const char *const long_conn_evidence[] = {
    "duration_s", "floor_s", "host_usual_s", "bytes_out", "bytes_in",
};
static const char *const baseline_evidence[] = {
    "metric", "value", "expected", "deviation", "upper", "history_weeks", "hour_of_week", "zone",
};
static const char *const rare_dest_evidence[] = {
    "host_destinations", "org_hosts", "bytes_out", "learned_s",
};
static const char *const off_hours_evidence[] = {
    "hour_of_week", "hour_share", "flows", "bytes", "history_flows",
};
/* Scan, DNS, segmentation and indicator detectors; the same names as
 * det_more_evidence_name in detect/det_segment.c. */
static const char *const scan_evidence[] = {
    "targets", "failures", "distinct_ports", "likelihood_ratio", "vertical",
};
static const char *const dns_tunnel_evidence[] = {
    "unique_names", "mean_label_length", "entropy_bits", "typed_query_share", "queries",
};
static const char *const dga_evidence[] = {
    "nxdomain_names", "nxdomain_rate", "mean_score", "mean_entropy_bits", "rare_bigram_share",
    "digit_ratio",
};
static const char *const segmentation_evidence[] = {
    "rule", "flows", "answered", "bytes",
};
static const char *const indicator_evidence[] = {
    "list", "type", "line", "source",
};
#define FV_EVIDENCE_PICK(table) \
    (index < sizeof(table) / sizeof((table)[0]) ? (table)[index] : NULL)

const char *fv_evidence_name(int detector, unsigned index)
{
    switch (detector) {
    case FV_DET_BEACON:
        return index < sizeof beacon_evidence / sizeof beacon_evidence[0] ? beacon_evidence[index]
                                                                          : NULL;
    case FV_DET_EXFIL:
        return index < sizeof exfil_evidence / sizeof exfil_evidence[0] ? exfil_evidence[index]
                                                                        : NULL;
    case FV_DET_LONG_CONN:
        return FV_EVIDENCE_PICK(long_conn_evidence);
    case FV_DET_BASELINE:
        return FV_EVIDENCE_PICK(baseline_evidence);
    case FV_DET_RARE_DEST:
        return FV_EVIDENCE_PICK(rare_dest_evidence);
    case FV_DET_OFF_HOURS:
        return FV_EVIDENCE_PICK(off_hours_evidence);
    case FV_DET_SCAN:
        return FV_EVIDENCE_PICK(scan_evidence);
    case FV_DET_DNS_TUNNEL:
        return FV_EVIDENCE_PICK(dns_tunnel_evidence);
    case FV_DET_DGA:
        return FV_EVIDENCE_PICK(dga_evidence);
    case FV_DET_SEGMENTATION:
        return FV_EVIDENCE_PICK(segmentation_evidence);
    case FV_DET_INDICATOR:
        return FV_EVIDENCE_PICK(indicator_evidence);
    default:
        return NULL;
    }
}

/* ---------------------------------------------------------------------- */

/* RFC 4648 base32 alphabet in lower case. Tokens use the first 10 bytes
 * (80 bits) of a pseudonym: 16 characters, no padding. */
static void base32_80(const uint8_t in[10], char out[17])
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned o = 0;
    for (unsigned block = 0; block < 2; block++) {
        const uint8_t *b = in + block * 5;
        uint64_t v = ((uint64_t)b[0] << 32) | ((uint64_t)b[1] << 24) | ((uint64_t)b[2] << 16) |
                     ((uint64_t)b[3] << 8) | (uint64_t)b[4];
        for (int shift = 35; shift >= 0; shift -= 5)
            out[o++] = alphabet[(v >> shift) & 31];
    }
    out[o] = '\0';
}

void fv_token_format(const char *type_prefix, const uint8_t pseudonym[FV_PSEUDONYM_BYTES],
                     char out[FV_TOKEN_TEXT_MAX])
{
    char b32[17];
    base32_80(pseudonym, b32);
    snprintf(out, FV_TOKEN_TEXT_MAX, "%s-%s", type_prefix, b32);
}

void fv_endpoint_format(const fv_endpoint *ep, char out[FV_ENDPOINT_TEXT_MAX])
{
    switch (ep->kind) {
    case FV_EP_IPV4:
        if (inet_ntop(AF_INET, ep->addr, out, FV_ENDPOINT_TEXT_MAX) == NULL)
            out[0] = '\0';
        return;
    case FV_EP_IPV6:
        if (inet_ntop(AF_INET6, ep->addr, out, FV_ENDPOINT_TEXT_MAX) == NULL)
            out[0] = '\0';
        return;
    case FV_EP_PSEUDO_IPV4:
        fv_token_format("ip4", ep->addr, out);
        return;
    case FV_EP_PSEUDO_IPV6:
        fv_token_format("ip6", ep->addr, out);
        return;
    case FV_EP_PREFIX_IPV4:
        if (inet_ntop(AF_INET, ep->addr, out, FV_ENDPOINT_TEXT_MAX) == NULL)
            out[0] = '\0';
        return;
    case FV_EP_PREFIX_IPV6:
        if (inet_ntop(AF_INET6, ep->addr, out, FV_ENDPOINT_TEXT_MAX) == NULL)
            out[0] = '\0';
        return;
    case FV_EP_TRUNC_IPV4:
    case FV_EP_TRUNC_IPV6: {
        int af = ep->kind == FV_EP_TRUNC_IPV4 ? AF_INET : AF_INET6;
        char net[INET6_ADDRSTRLEN];
        if (inet_ntop(af, ep->addr, net, sizeof net) == NULL)
            out[0] = '\0';
        else
            snprintf(out, FV_ENDPOINT_TEXT_MAX, "%s/%u", net, (unsigned)ep->prefix_len);
        return;
    }
    default:
        out[0] = '\0';
        return;
    }
}

bool fv_endpoint_is_internal(const fv_endpoint *ep)
{
    if (ep->kind == FV_EP_NONE)
        return false;
    if (ep->zone[0] != '\0')
        return strcmp(ep->zone, FV_ZONE_EXTERNAL) != 0;
    return ep->kind == FV_EP_PSEUDO_IPV4 || ep->kind == FV_EP_PSEUDO_IPV6 ||
           ep->kind == FV_EP_PREFIX_IPV4 || ep->kind == FV_EP_PREFIX_IPV6;
}

/* ---------------------------------------------------------------------- */

void fv_time_format(uint64_t us, char out[FV_TIME_TEXT_MAX])
{
    time_t secs = (time_t)(us / 1000000u);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(out, FV_TIME_TEXT_MAX, "invalid-time");
        return;
    }
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, FV_TIME_TEXT_MAX, "%s.%06uZ", base, (unsigned)(us % 1000000u));
}

uint64_t fv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The max lag of CLOCK_REALTIME_COARSE behind CLOCK_REALTIME that
 * fv_now_coarse_s allows for. The kernel advances the coarse clock once
 * per timer tick, but on a 2-core Firecracker VM with a 4 ms tick it
 * trailed by 3 to 8 ms, so the margin is generous. The precise clock is
 * then read in about 5% of the calls. */
#define COARSE_LAG_MAX_NS 50000000L

uint64_t fv_now_coarse_s(void)
{
    struct timespec ts;
#ifdef CLOCK_REALTIME_COARSE
    /* The coarse clock never runs ahead, so its second is the precise
     * one unless a new second may have begun since its last update. */
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0 &&
        ts.tv_nsec < 1000000000L - COARSE_LAG_MAX_NS)
        return (uint64_t)ts.tv_sec;
#endif
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

int fv_duration_parse(const char *text, uint64_t *out_s)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return FV_ERR_INVALID;

    errno = 0;
    char *end = NULL;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return FV_ERR_INVALID;

    uint64_t mult;
    if (strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else if (strcmp(end, "d") == 0)
        mult = 86400;
    else if (strcmp(end, "w") == 0)
        mult = 7 * 86400;
    else
        return FV_ERR_INVALID;

    /* Reject values whose product would overflow (beyond ~500 billion years). */
    if (n > UINT64_MAX / mult)
        return FV_ERR_INVALID;
    *out_s = (uint64_t)n * mult;
    return FV_OK;
}

/* Name the kind of a file that is not a regular file, for messages. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

int fv_open_regular_file(const char *path, char *err, size_t err_len)
{
    /* O_NONBLOCK keeps open() from waiting for a FIFO's writer or a
     * device; the fstat below rejects both before anything is read. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == EISDIR)
            snprintf(err, err_len, "%s is a directory, not a file; give the path of the file "
                                   "itself", path);
        else
            snprintf(err, err_len, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(err, err_len, "cannot read the status of %s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s is %s, not a regular file; %s", path, file_kind(st.st_mode),
                 S_ISDIR(st.st_mode) ? "give the path of a file in it"
                 : S_ISFIFO(st.st_mode) ? "write the content to a regular file and give its path"
                                        : "give the path of a regular file");
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

FILE *fv_fopen_regular_file(const char *path, char *err, size_t err_len)
{
    int fd = fv_open_regular_file(path, err, err_len);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        int e = errno;
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(e));
        close(fd);
        errno = e;
    }
    return f;
}

bool fv_str_copy(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return src[0] == '\0';
    size_t len = strnlen(src, size);
    bool fits = len < size;
    if (!fits)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return fits;
}

#include <sys/mman.h>

#define FV_HUGE_PAGE_BYTES ((size_t)2 << 20)

void *fv_table_calloc(size_t size)
{
    if (size == 0 || size > SIZE_MAX - FV_HUGE_PAGE_BYTES)
        return NULL;
    /* aligned_alloc wants a multiple of the alignment. */
    size_t rounded = (size + FV_HUGE_PAGE_BYTES - 1) / FV_HUGE_PAGE_BYTES * FV_HUGE_PAGE_BYTES;
    void *table = aligned_alloc(FV_HUGE_PAGE_BYTES, rounded);
    if (table == NULL)
        return NULL;
#ifdef MADV_HUGEPAGE
    /* Advice that fails (no transparent huge pages) only costs speed. */
    (void)madvise(table, rounded, MADV_HUGEPAGE);
#endif
    memset(table, 0, size);
    return table;
}
