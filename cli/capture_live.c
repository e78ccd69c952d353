/*
 * capture_live.c: per-interface drop counters, --chroot and the capture
 * option values (see capture_live.h).
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture_live.h"
#include "cli.h"
#include "config.h"
#include "fv_common.h"
#include "policy.h"
#include "privdrop.h"

static int usage_error(const char *fmt, ...) FV_PRINTF(1, 2);

/* Print a usage error of `flowveil capture` as main.c's cli_usage_error
 * does and return the usage exit status. It is defined here so that the
 * in-process pipeline tests can link this file without main.c. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flowveil: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'flowveil capture --help'.\n");
    return CLI_EXIT_USAGE;
}

/* Drop warnings per interface are at least this far apart, so a
 * sustained overload writes one line every 10 seconds, not one a tick. */
#define DROP_WARNING_INTERVAL_US (10ull * 1000000ull)

int fv_live_add_iface(fv_live_settings *s, const char *name)
{
    if (name[0] == '\0')
        return usage_error("-i needs an interface name, for example -i eth1");
    if (s->n_ifaces >= CAP_LIVE_MAX_IFACES)
        return usage_error("more than %d interfaces given; run a second capture "
                                          "process on its own store for the rest",
                               CAP_LIVE_MAX_IFACES);
    /* The kernel limits names to IFNAMSIZ - 1 bytes (15 on Linux), and
     * libpcap would report a longer one only as "no such device". */
    if (!(strlen(name) < IFNAMSIZ))
        return fv_config_value_error("capture", "-i", name,
                                     "the interface name is %zu bytes long, above the kernel's "
                                     "limit of %d; 'ip link' lists the names",
                                     strlen(name), IFNAMSIZ - 1);
    for (size_t i = 0; i < s->n_ifaces; i++) {
        if (strcmp(s->ifaces[i], name) == 0)
            return fv_config_value_error("capture", "-i", name,
                                         "the interface is given twice; name each interface "
                                         "once");
    }
    s->ifaces[s->n_ifaces++] = name;
    return -1;
}

/* Parse TEXT as a decimal number in [MIN, MAX] for OPTION. */
static int parse_bounded(const char *option, const char *unit, const char *text, uint64_t min,
                         uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' || v < min || v > max)
        return fv_config_value_error("capture", option, text,
                                     "give a whole number of %s from %llu to %llu", unit,
                                     (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return -1;
}

int fv_live_parse_snaplen(fv_live_settings *s, const char *text)
{
    uint64_t v = 0;
    int status = parse_bounded("--snaplen", "bytes", text, CAP_LIVE_SNAPLEN_MIN,
                               CAP_LIVE_SNAPLEN_MAX, &v);
    if (status < 0)
        s->snaplen = (uint32_t)v;
    return status;
}

int fv_live_parse_buffer(fv_live_settings *s, const char *text)
{
    uint64_t v = 0;
    /* libpcap takes the size as an int of bytes. */
    int status = parse_bounded("--buffer-size", "MiB", text, 1, INT_MAX / (1024 * 1024), &v);
    if (status < 0)
        s->buffer_bytes = v * 1024 * 1024;
    return status;
}

void fv_live_drops_init(fv_live_drops *d, const fv_live_settings *s)
{
    memset(d, 0, sizeof *d);
    d->n = s->n_ifaces;
    for (size_t i = 0; i < d->n; i++) {
        fv_live_iface_drops *f = &d->ifaces[i];
        snprintf(f->name, sizeof f->name, "%s", s->ifaces[i]);
        /* Store counter names allow [a-z0-9_] only. */
        int n = snprintf(f->counter_base, sizeof f->counter_base, "iface_");
        for (const char *c = s->ifaces[i];
             *c != '\0' && (size_t)n + 1 < sizeof f->counter_base; c++) {
            char ch = *c;
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
                ch = '_';
            f->counter_base[n++] = ch;
        }
        f->counter_base[n] = '\0';
    }
}

void fv_live_drops_update(void *ctx, size_t index, const char *iface, uint64_t received,
                          uint64_t dropped, uint64_t if_dropped)
{
    fv_live_drops *d = ctx;
    (void)iface;
    if (index >= d->n)
        return;
    fv_live_iface_drops *f = &d->ifaces[index];
    f->received = received;
    f->dropped = dropped;
    f->if_dropped = if_dropped;
}

/* Add the growth of F's counters since the last call to the store. */
static void save_iface_counters(fv_live_iface_drops *f, store_env *store)
{
    char names[3][64];
    const char *name_ptrs[3];
    static const char *const suffixes[3] = {"received", "kernel_dropped", "interface_dropped"};
    uint64_t now[3] = {f->received, f->dropped, f->if_dropped};
    uint64_t delta[3];
    bool any = false;

    for (int k = 0; k < 3; k++) {
        snprintf(names[k], sizeof names[k], "%s_%s", f->counter_base, suffixes[k]);
        name_ptrs[k] = names[k];
        /* libpcap's counters are 32-bit on some platforms and wrap. */
        delta[k] = now[k] >= f->saved[k] ? now[k] - f->saved[k] : now[k];
        any = any || delta[k] != 0;
    }
    if (!any)
        return;
    int rc = store_capture_counters_add(store, name_ptrs, delta, 3);
    if (rc != FV_OK) {
        fv_warning("%s: could not store the interface counters: %s", f->name, fv_strerror(rc));
        return;
    }
    memcpy(f->saved, now, sizeof now);
}

void fv_live_drops_tick(fv_live_drops *d, store_env *store, uint64_t now_us)
{
    for (size_t i = 0; i < d->n; i++) {
        fv_live_iface_drops *f = &d->ifaces[i];
        bool rose = f->dropped > f->warned_dropped || f->if_dropped > f->warned_if_dropped;
        if (rose && now_us - f->last_warning_us >= DROP_WARNING_INTERVAL_US) {
            fv_warning("%s: packets dropped since the last report: kernel %llu, interface %llu "
                       "(totals %llu and %llu of %llu received); raise --buffer-size, lower "
                       "the load or add --workers",
                       f->name, (unsigned long long)(f->dropped - f->warned_dropped),
                       (unsigned long long)(f->if_dropped > f->warned_if_dropped
                                                ? f->if_dropped - f->warned_if_dropped
                                                : 0),
                       (unsigned long long)f->dropped, (unsigned long long)f->if_dropped,
                       (unsigned long long)f->received);
            f->warned_dropped = f->dropped;
            f->warned_if_dropped = f->if_dropped;
            f->last_warning_us = now_us;
        }
        if (store != NULL)
            save_iface_counters(f, store);
    }
}

void fv_live_drops_log(const fv_live_drops *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const fv_live_iface_drops *f = &d->ifaces[i];
        fv_notice("%s: %llu packets received, dropped kernel=%llu interface=%llu", f->name,
                  (unsigned long long)f->received, (unsigned long long)f->dropped,
                  (unsigned long long)f->if_dropped);
    }
}

int fv_live_chroot_prepare(fv_live_chroot *c, const char *db, const char *policy, char *err,
                           size_t err_len)
{
    char resolved[PATH_MAX];
    memset(c, 0, sizeof *c);

    if (mkdir(db, 0770) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "--chroot: cannot create the store directory %s: %s", db,
                 strerror(errno));
        return FV_ERR_IO;
    }
    if (realpath(db, resolved) == NULL) {
        snprintf(err, err_len, "--chroot: cannot resolve the store directory %s: %s", db,
                 strerror(errno));
        return FV_ERR_IO;
    }
    if (strcmp(resolved, "/") == 0) {
        snprintf(err, err_len, "--chroot: the store directory resolves to /, which confines "
                               "nothing; give a directory of its own");
        return FV_ERR_INVALID;
    }
    snprintf(c->root, sizeof c->root, "%s", resolved);

    /* SIGHUP rereads the policy inside the root, so only a policy file
     * under the store directory can be reloaded. */
    if (realpath(policy, resolved) != NULL) {
        size_t n = strlen(c->root);
        if (strncmp(resolved, c->root, n) == 0 && resolved[n] == '/')
            snprintf(c->policy_inside, sizeof c->policy_inside, "%s", resolved + n);
    }

    /* The privilege checks read /proc/self/status after the chroot. */
    fv_privdrop_open_status();
    if (chdir(c->root) != 0) {
        snprintf(err, err_len, "--chroot: cannot change to %s: %s", c->root, strerror(errno));
        return FV_ERR_IO;
    }
    return FV_OK;
}

int fv_live_chroot_apply(const fv_live_chroot *c, char *err, size_t err_len)
{
    if (chroot(c->root) != 0) {
        snprintf(err, err_len, "--chroot %s: chroot failed: %s; run capture as root (or with "
                               "CAP_SYS_CHROOT), or leave out --chroot",
                 c->root, strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (chdir("/") != 0) {
        snprintf(err, err_len, "--chroot %s: chdir to the new root failed: %s", c->root,
                 strerror(errno));
        return FV_ERR_IO;
    }
    return FV_OK;
}

/* Copy into ZONE (ZONE_LEN bytes) the zone name of a parser message
 * about windows[N].time_zone, which ends "... time zone (NAME); ...".
 * Returns false when ERR is not such a message or NAME is not a plain
 * IANA name, so it can be printed in a command line. */
static bool zone_of_message(const char *err, char *zone, size_t zone_len)
{
    const char *key = strstr(err, ".time_zone ");
    const char *open = key != NULL ? strchr(key, '(') : NULL;
    const char *close = open != NULL ? strchr(open, ')') : NULL;
    if (close == NULL || close == open + 1)
        return false;
    size_t n = (size_t)(close - open - 1);
    if (!(n < zone_len))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = open[1 + i];
        bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '-' ||
                     ch == '+';
        if (!plain)
            return false;
    }
    memcpy(zone, open + 1, n);
    zone[n] = '\0';
    return strstr(zone, "..") == NULL;
}

bool fv_live_chroot_reload_ready(const fv_live_chroot *c, const char *policy_path)
{
    char err[1024];
    char zone[128];
    pol_policy *next = NULL;

    /* The parser opens the time-zone files of the policy's windows, so a
     * zone missing inside the root fails here, reported by the parser as
     * an unknown zone. */
    if (pol_load(policy_path, &next, err, sizeof err) != FV_OK) {
        if (zone_of_message(err, zone, sizeof zone))
            fv_error("SIGHUP: policy reload rejected, the running policy and indicator lists "
                     "stay in force: %s. Capture runs chrooted in %s, so time zones are read "
                     "from %s/usr/share/zoneinfo/: copy this one there with 'cp -a --parents "
                     "/usr/share/zoneinfo/%s %s', then send SIGHUP again",
                     err, c->root, c->root, zone, c->root);
        else
            fv_error("SIGHUP: policy reload rejected, the running policy and indicator lists "
                     "stay in force: %s. Capture runs chrooted in %s, so every file the policy "
                     "names is read inside it: copy each time zone with 'cp -a --parents "
                     "/usr/share/zoneinfo/ZONE %s', then send SIGHUP again",
                     err, c->root, c->root);
        return false;
    }

    bool ready = true;
    const pol_detect *d = pol_detect_config(next);
    for (size_t i = 0; d->indicators_enabled && i < d->indicator_file_count; i++) {
        const char *path = d->indicator_files[i].path;
        FILE *f = fopen(path, "rb");
        if (f != NULL) {
            fclose(f);
            continue;
        }
        int error = errno;
        ready = false;
        if (error == EACCES)
            fv_error("SIGHUP: policy reload rejected, the running policy and indicator lists "
                     "stay in force: the indicator list %s (on the host %s%s) cannot be read: %s; "
                     "make it readable by the capture user, then send SIGHUP again",
                     path, c->root, path, strerror(error));
        else
            fv_error("SIGHUP: policy reload rejected, the running policy and indicator lists "
                     "stay in force: the indicator list %s cannot be opened: %s. Capture runs "
                     "chrooted in %s, so the list is read from %s%s: copy it there with 'cp "
                     "--parents %s %s' (or bind-mount its directory), then send SIGHUP again",
                     path, strerror(error), c->root, c->root, path, path, c->root);
    }
    pol_destroy(&next);
    return ready;
}

void fv_live_chroot_log_outside(const fv_live_chroot *c, const char *policy)
{
    fv_warning("SIGHUP: the policy file %s lies outside the --chroot directory %s, so it cannot "
               "be reread and the running policy stays; to reload a policy under --chroot, keep "
               "it inside that directory (for example %s/policy.yaml), start capture with "
               "--policy pointing there, and put its indicator lists and time zones inside it "
               "too",
               policy, c->root, c->root);
}
