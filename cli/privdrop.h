/*
 * privdrop.h: switch `flowveil capture -Z USER` to an unprivileged user
 * once the store, the key file and the interface are open.
 *
 * The drop sets USER's supplementary groups (initgroups), its group and
 * its user id, clears every capability, sets PR_SET_NO_NEW_PRIVS, and
 * then verifies each of these. File descriptors opened before the drop
 * stay usable, so LMDB and pseudonym.key keep working through them.
 *
 * Caveats
 * - Linux only (prctl, capset, /proc/self/status).
 * - Irreversible for the process. Anything that opens a path after the
 *   drop (a SIGHUP policy reload) runs with USER's permissions.
 */
#ifndef FV_PRIVDROP_H
#define FV_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The account to drop to, resolved before anything is opened. */
typedef struct fv_privdrop_user {
    char name[256];
    uid_t uid;
    gid_t gid;   /* primary group from the passwd entry */
    /* Supplementary groups, read at lookup so the drop needs no group
     * database (a chroot hides /etc/group). */
    gid_t groups[64];
    int ngroups;
} fv_privdrop_user;

/*
 * Look up NAME in the passwd database (getpwnam_r). Returns FV_OK,
 * FV_ERR_NOT_FOUND (no such user), FV_ERR_INVALID (uid 0, or the name is
 * too long), FV_ERR_NOMEM or FV_ERR_IO, with a message naming the user
 * in ERR.
 */
int fv_privdrop_lookup(const char *name, fv_privdrop_user *out, char *err, size_t err_len);

/*
 * Drop the process to USER and verify the result: real, effective and
 * saved ids equal USER's, setuid(0) fails, CapPrm, CapEff, CapAmb and
 * CapBnd (the bounding set, emptied while still root) in
 * /proc/self/status are 0, and NoNewPrivs is set. Returns FV_OK or
 * FV_ERR_PERMISSION with a message naming the user and the failed call in
 * ERR. After a failure the process may be partly dropped and must exit.
 */
int fv_privdrop_apply(const fv_privdrop_user *user, char *err, size_t err_len);

/*
 * For a process that is not root but holds capabilities (file
 * capabilities from setcap, or ambient ones from a service manager):
 * empty the bounding set if CAP_SETPCAP allows it, clear the permitted,
 * effective and inheritable sets, set PR_SET_NO_NEW_PRIVS and verify
 * CapPrm, CapEff and CapAmb are 0. Sets *BOUNDING_CLEARED to whether
 * CapBnd is 0 afterwards; without CAP_SETPCAP it stays as inherited, and
 * no_new_privs keeps an exec from gaining anything from it. Returns
 * FV_OK or FV_ERR_PERMISSION with the failed step in ERR.
 */
int fv_privdrop_capabilities(bool *bounding_cleared, char *err, size_t err_len);

/* Open /proc/self/status for the checks above; call it before a chroot
 * that hides /proc. Later calls do nothing. */
void fv_privdrop_open_status(void);

/* Return true if /proc/self/status shows any permitted capability. */
bool fv_privdrop_has_capabilities(void);

#endif /* FV_PRIVDROP_H */
