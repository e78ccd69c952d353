/*
 * capture_live.h: the live-capture parts of `flowveil capture` that are
 * not option parsing: per-interface drop counters, --chroot and clearing
 * capabilities when capture runs unprivileged with file capabilities.
 */
#ifndef FV_CAPTURE_LIVE_H
#define FV_CAPTURE_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"
#include "store.h"

/* Settings of the live capture options. */
typedef struct fv_live_settings {
    const char *ifaces[CAP_LIVE_MAX_IFACES];
    size_t n_ifaces;
    uint32_t snaplen;           /* 0: CAP_LIVE_SNAPLEN_DEFAULT */
    uint64_t buffer_bytes;      /* 0: CAP_LIVE_BUFFER_DEFAULT */
    bool chroot;
} fv_live_settings;

/* Add interface NAME (-i). Returns -1 to go on or a usage exit status. */
int fv_live_add_iface(fv_live_settings *s, const char *name);
/* Parse --snaplen BYTES and --buffer-size MIB. Return -1 or an exit status. */
int fv_live_parse_snaplen(fv_live_settings *s, const char *text);
int fv_live_parse_buffer(fv_live_settings *s, const char *text);

/* libpcap's counters of one interface. */
typedef struct fv_live_iface_drops {
    char name[64];
    char counter_base[32];      /* "iface_" + the name in [a-z0-9_] */
    uint64_t received, dropped, if_dropped;         /* latest cumulative values */
    uint64_t saved[3];          /* values already added to the store */
    uint64_t warned_dropped, warned_if_dropped;     /* values at the last warning */
    uint64_t last_warning_us;
} fv_live_iface_drops;

typedef struct fv_live_drops {
    fv_live_iface_drops ifaces[CAP_LIVE_MAX_IFACES];
    size_t n;
} fv_live_drops;

void fv_live_drops_init(fv_live_drops *d, const fv_live_settings *s);

/* cap_live_options.iface_stats callback; CTX is the fv_live_drops. */
void fv_live_drops_update(void *ctx, size_t index, const char *iface, uint64_t received,
                          uint64_t dropped, uint64_t if_dropped);

/*
 * Log a warning for each interface whose drop counters rose since the
 * last warning (at most one per interface every 10 seconds, with the
 * drops since then), and add the counters' growth to the store as
 * "iface_NAME_received", "iface_NAME_kernel_dropped" and
 * "iface_NAME_interface_dropped".
 */
void fv_live_drops_tick(fv_live_drops *d, store_env *store, uint64_t now_us);

/* Log one line per interface with its received and dropped counts. */
void fv_live_drops_log(const fv_live_drops *d);

/* What --chroot needs between opening and dropping privileges. */
typedef struct fv_live_chroot {
    char root[4096];            /* the store directory, resolved */
    char policy_inside[4096];   /* the policy path seen inside the root, "" if outside */
} fv_live_chroot;

/*
 * Before the store is opened: create DB if missing, resolve it, change
 * the working directory to it and find POLICY's path inside it. The
 * caller then opens the store as "." so every later store path resolves
 * inside the root as well. Returns FV_OK or an error with the path and
 * the fix in ERR.
 */
int fv_live_chroot_prepare(fv_live_chroot *c, const char *db, const char *policy, char *err,
                           size_t err_len);

/* chroot(2) to C->root and change to "/". Needs root or CAP_SYS_CHROOT. */
int fv_live_chroot_apply(const fv_live_chroot *c, char *err, size_t err_len);

/*
 * Before a SIGHUP reload inside the root C: load the policy at
 * POLICY_PATH (a path inside the root) and open every indicator list it
 * names, as the reload will. Returns true when all of them can be read.
 * Otherwise logs an error that names the file, its path on the host
 * (C->root followed by the path) and what to copy or bind-mount there,
 * and returns false: the caller then keeps the running policy and
 * indicator lists together instead of loading one without the other.
 */
bool fv_live_chroot_reload_ready(const fv_live_chroot *c, const char *policy_path);

/* Log why SIGHUP cannot reread POLICY (a path outside the root C) and
 * how to set up a policy that can be reread. */
void fv_live_chroot_log_outside(const fv_live_chroot *c, const char *policy);

#endif /* FV_CAPTURE_LIVE_H */
