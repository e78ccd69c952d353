/*
 * privdrop.c: drop `flowveil capture` to an unprivileged user after the
 * interface is open (see privdrop.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "fv_common.h"
#include "privdrop.h"

static void set_err(char *err, size_t err_len, const char *fmt, ...) FV_PRINTF(3, 4);

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int fv_privdrop_lookup(const char *name, fv_privdrop_user *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (name == NULL || name[0] == '\0') {
        set_err(err, err_len, "-Z needs a user name, for example -Z nobody");
        return FV_ERR_INVALID;
    }
    size_t len = strlen(name);
    if (!(len < sizeof out->name)) {
        set_err(err, err_len, "-Z: the user name is %zu bytes long, above the limit of %zu",
                len, sizeof out->name - 1);
        return FV_ERR_INVALID;
    }

    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t buf_len = size > 0 ? (size_t)size : 16384;
    struct passwd pw;
    struct passwd *found = NULL;
    char *buf = NULL;
    int e;
    /* getpwnam_r returns ERANGE while the buffer is too small for the
     * entry, so the buffer doubles up to 1 MiB before the lookup fails. */
    for (;;) {
        char *bigger = realloc(buf, buf_len);
        if (bigger == NULL) {
            free(buf);
            set_err(err, err_len, "-Z %s: out of memory looking up the user", name);
            return FV_ERR_NOMEM;
        }
        buf = bigger;
        e = getpwnam_r(name, &pw, buf, buf_len, &found);
        if (e != ERANGE || buf_len >= 1024 * 1024)
            break;
        buf_len *= 2;
    }
    if (e != 0) {
        free(buf);
        set_err(err, err_len, "-Z %s: getpwnam_r failed: %s; check /etc/nsswitch.conf", name,
                strerror(e));
        return FV_ERR_IO;
    }
    if (found == NULL) {
        free(buf);
        set_err(err, err_len, "-Z %s: no such user; name an existing unprivileged account "
                              "(getent passwd lists them)",
                name);
        return FV_ERR_NOT_FOUND;
    }
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    out->ngroups = (int)(sizeof out->groups / sizeof out->groups[0]);
    if (getgrouplist(pw.pw_name, pw.pw_gid, out->groups, &out->ngroups) < 0) {
        free(buf);
        set_err(err, err_len, "-Z %s: the user is in more than %zu groups; remove it from some",
                name, sizeof out->groups / sizeof out->groups[0]);
        return FV_ERR_INVALID;
    }
    free(buf);
    memcpy(out->name, name, len + 1);

    if (out->uid == 0) {
        set_err(err, err_len, "-Z %s: the user has uid 0, so nothing would be dropped; name an "
                              "unprivileged account",
                name);
        return FV_ERR_INVALID;
    }
    return FV_OK;
}

/* /proc/self/status, opened once and reread from offset 0 on each use,
 * so the checks still work after a chroot hides /proc. */
static int status_fd = -1;

void fv_privdrop_open_status(void)
{
    if (status_fd < 0)
        status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
}

/* Read the value of FIELD ("CapEff", "Uid") from /proc/self/status into
 * VALUE. Returns 0, or an errno value (ENOENT: no such line). */
static int read_status_field(const char *field, char *value, size_t value_len)
{
    char text[8192];
    if (value_len > 0)
        value[0] = '\0';
    fv_privdrop_open_status();
    /* Never return 0 (found) on a failure whose errno is not set. */
    if (status_fd < 0)
        return errno != 0 ? errno : EBADF;
    ssize_t got = pread(status_fd, text, sizeof text - 1, 0);
    if (got < 0)
        return errno != 0 ? errno : EIO;
    text[got] = '\0';

    size_t field_len = strlen(field);
    for (const char *line = text; *line != '\0';) {
        size_t line_len = strcspn(line, "\n");
        if (strncmp(line, field, field_len) == 0 && line[field_len] == ':') {
            const char *v = line + field_len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = (size_t)(line + line_len - v);
            if (!(n < value_len))
                return ENAMETOOLONG;
            memcpy(value, v, n);
            value[n] = '\0';
            return 0;
        }
        line += line_len;
        if (*line == '\n')
            line++;
    }
    return ENOENT;
}

/* Check that /proc/self/status FIELD has every tab-separated value equal
 * to ID ("Uid:" and "Gid:" list real, effective, saved and file system
 * ids). Returns true if so. */
static bool status_ids_equal(const char *field, unsigned long id)
{
    char value[256];
    if (read_status_field(field, value, sizeof value) != 0)
        return false;
    unsigned count = 0;
    char *p = value;
    while (*p != '\0') {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || errno != 0 || v != id)
            return false;
        count++;
        p = end;
        while (*p == '\t' || *p == ' ')
            p++;
    }
    return count == 4;
}

/* Check that /proc/self/status FIELD is a hexadecimal capability set
 * equal to 0. */
static bool status_caps_empty(const char *field)
{
    char value[64];
    if (read_status_field(field, value, sizeof value) != 0 || value[0] == '\0')
        return false;
    char *end;
    errno = 0;
    unsigned long long caps = strtoull(value, &end, 16);
    return errno == 0 && *end == '\0' && caps == 0;
}

/* Switch to U's groups, then its gid, then its uid: each step needs the
 * privilege that the next one gives up. */
static int switch_ids(const fv_privdrop_user *u, char *err, size_t err_len)
{
    /* Without PR_SET_KEEPCAPS the kernel clears the permitted set when
     * setuid leaves uid 0; make sure an inherited setting cannot keep it. */
    if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) {
        set_err(err, err_len, "-Z %s: prctl(PR_SET_KEEPCAPS, 0) failed: %s", u->name,
                strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (setgroups((size_t)u->ngroups, u->groups) != 0) {
        set_err(err, err_len, "-Z %s: setgroups failed: %s; run capture as root (or with "
                              "CAP_SETGID) to use -Z",
                u->name, strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (setgid(u->gid) != 0) {
        set_err(err, err_len, "-Z %s: setgid(%lu) failed: %s; run capture as root (or with "
                              "CAP_SETGID) to use -Z",
                u->name, (unsigned long)u->gid, strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (setuid(u->uid) != 0) {
        set_err(err, err_len, "-Z %s: setuid(%lu) failed: %s; run capture as root (or with "
                              "CAP_SETUID) to use -Z",
                u->name, (unsigned long)u->uid, strerror(errno));
        return FV_ERR_PERMISSION;
    }
    return FV_OK;
}

/* Remove every capability from the bounding set. Needs CAP_SETPCAP;
 * returns FV_OK, or FV_ERR_PERMISSION if a drop failed. */
static int clear_bounding_set(char *err, size_t err_len)
{
    for (unsigned long cap = 0; cap <= 63; cap++) {
        int r = prctl(PR_CAPBSET_READ, cap, 0L, 0L, 0L);
        if (r < 0)
            break;      /* EINVAL: past the kernel's last capability */
        if (r == 1 && prctl(PR_CAPBSET_DROP, cap, 0L, 0L, 0L) != 0) {
            set_err(err, err_len, "prctl(PR_CAPBSET_DROP, %lu) failed: %s", cap,
                    strerror(errno));
            return FV_ERR_PERMISSION;
        }
    }
    return FV_OK;
}

/* Clear the permitted, effective and inheritable sets (and so the
 * ambient set). setuid from root already cleared them, but a process
 * that started as another user with file or ambient capabilities keeps
 * its permitted set across setuid. */
static int clear_capabilities(const fv_privdrop_user *u, char *err, size_t err_len)
{
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) {
        set_err(err, err_len, "-Z %s: capset (clearing every capability) failed: %s", u->name,
                strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
        set_err(err, err_len, "-Z %s: prctl(PR_SET_NO_NEW_PRIVS) failed: %s", u->name,
                strerror(errno));
        return FV_ERR_PERMISSION;
    }
    return FV_OK;
}

/* Verify the drop from the system's point of view. */
static int verify_dropped(const fv_privdrop_user *u, char *err, size_t err_len)
{
    if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
        getegid() != u->gid) {
        set_err(err, err_len, "-Z %s: after the drop getuid/geteuid/getgid/getegid return "
                              "%lu/%lu/%lu/%lu, expected uid %lu and gid %lu",
                u->name, (unsigned long)getuid(), (unsigned long)geteuid(),
                (unsigned long)getgid(), (unsigned long)getegid(), (unsigned long)u->uid,
                (unsigned long)u->gid);
        return FV_ERR_PERMISSION;
    }
    if (!status_ids_equal("Uid", u->uid) || !status_ids_equal("Gid", u->gid)) {
        set_err(err, err_len, "-Z %s: /proc/self/status shows a saved or file system id "
                              "other than uid %lu and gid %lu after the drop",
                u->name, (unsigned long)u->uid, (unsigned long)u->gid);
        return FV_ERR_PERMISSION;
    }
    if (setuid(0) == 0) {
        set_err(err, err_len, "-Z %s: setuid(0) succeeded after the drop; root can still be "
                              "regained, so capture stops",
                u->name);
        return FV_ERR_PERMISSION;
    }
    static const char *const cap_fields[] = {"CapPrm", "CapEff", "CapAmb", "CapBnd"};
    for (size_t i = 0; i < sizeof cap_fields / sizeof cap_fields[0]; i++) {
        if (!status_caps_empty(cap_fields[i])) {
            set_err(err, err_len, "-Z %s: %s in /proc/self/status is not 0 after the drop",
                    u->name, cap_fields[i]);
            return FV_ERR_PERMISSION;
        }
    }
    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0L, 0L, 0L, 0L);
    if (nnp != 1) {
        set_err(err, err_len, "-Z %s: prctl(PR_GET_NO_NEW_PRIVS) returned %d after the drop, "
                              "expected 1",
                u->name, nnp);
        return FV_ERR_PERMISSION;
    }
    return FV_OK;
}

int fv_privdrop_apply(const fv_privdrop_user *user, char *err, size_t err_len)
{
    char why[256];
    /* The bounding set can only be emptied while CAP_SETPCAP is held,
     * that is before setuid leaves root. */
    int rc = clear_bounding_set(why, sizeof why);
    if (rc != FV_OK) {
        set_err(err, err_len, "-Z %s: %s", user->name, why);
        return rc;
    }
    rc = switch_ids(user, err, err_len);
    if (rc == FV_OK)
        rc = clear_capabilities(user, err, err_len);
    if (rc == FV_OK)
        rc = verify_dropped(user, err, err_len);
    return rc;
}

bool fv_privdrop_has_capabilities(void)
{
    return !status_caps_empty("CapPrm");
}

int fv_privdrop_capabilities(bool *bounding_cleared, char *err, size_t err_len)
{
    char why[256];

    /* Without CAP_SETPCAP the bounding set stays; that is not an error. */
    (void)clear_bounding_set(why, sizeof why);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) {
        set_err(err, err_len, "capset (clearing every capability) failed: %s", strerror(errno));
        return FV_ERR_PERMISSION;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
        set_err(err, err_len, "prctl(PR_SET_NO_NEW_PRIVS) failed: %s", strerror(errno));
        return FV_ERR_PERMISSION;
    }
    static const char *const cap_fields[] = {"CapPrm", "CapEff", "CapAmb"};
    for (size_t i = 0; i < sizeof cap_fields / sizeof cap_fields[0]; i++) {
        if (!status_caps_empty(cap_fields[i])) {
            set_err(err, err_len, "%s in /proc/self/status is not 0 after clearing the "
                                  "capabilities",
                    cap_fields[i]);
            return FV_ERR_PERMISSION;
        }
    }
    *bounding_cleared = status_caps_empty("CapBnd");
    return FV_OK;
}
