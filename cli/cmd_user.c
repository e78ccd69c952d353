/*
 * cmd_user.c: `flowveil user` and `flowveil token`, the accounts of the
 * HTTP API.
 *
 * Users log in to the dashboard with a password, stored as a
 * crypto_pwhash string. Tokens authenticate scripts with
 * "Authorization: Bearer fvt_..."; the store keeps a BLAKE2b hash and
 * the token is printed once at creation. Every change is appended to the audit trail with
 * the local user who ran the command as the actor; no password or token
 * text ever goes into the trail or a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

/* Maximum token lifetime: 10 years, so an expiry is always a valid
 * RFC 3339 time and never wraps around. */
#define TOKEN_EXPIRES_MAX_S (3650ull * 86400ull)
#include "store.h"

/* Shortest password accepted for a user. */
#define CLI_PASSWORD_MIN 8u
/* Maximum password length in bytes; the read buffers have room for it. */
#define CLI_PASSWORD_MAX 1024u

/* Options shared by the subcommands. */
typedef struct user_opts {
    const char *db;
    const char *role;
    const char *password_file;
    const char *expires;
    const char *name;           /* the positional NAME or ID, NULL if none */
    const char *second;         /* a second positional (ROLE of 'user role'), NULL if none */
} user_opts;

/* ---- passwords -------------------------------------------------------- */

/* Check that PASSWORD is acceptable; fill ERR and return false if not. */
static bool password_acceptable(const char *password, char *err, size_t err_len)
{
    size_t len = strlen(password);
    if (len < CLI_PASSWORD_MIN) {
        snprintf(err, err_len, "the password has %zu characters; use at least %u", len,
                 CLI_PASSWORD_MIN);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)password[i];
        if (ch < 0x20 || ch == 0x7f) {
            snprintf(err, err_len,
                     "the password contains a control character (byte %zu); use printable "
                     "characters only",
                     i + 1);
            return false;
        }
    }
    return true;
}

int cli_password_read_file(const char *path, char *out, size_t out_len, char *err,
                           size_t err_len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open password file '%s': %s", path, strerror(errno));
        return FV_ERR_IO;
    }
    size_t used = 0;
    int rc = FV_OK;
    for (;;) {
        if (!(used < out_len - 1)) {
            snprintf(err, err_len, "password file '%s' is longer than %zu bytes; put only the "
                                   "password in it",
                     path, out_len - 2);
            rc = FV_ERR_INVALID;
            break;
        }
        ssize_t n = read(fd, out + used, out_len - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_len, "cannot read password file '%s': %s", path, strerror(errno));
            rc = FV_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc != FV_OK) {
        sodium_memzero(out, out_len);
        return rc;
    }
    out[used] = '\0';
    /* One trailing line break (from an editor or echo) is not part of it. */
    if (used > 0 && out[used - 1] == '\n')
        out[--used] = '\0';
    if (used > 0 && out[used - 1] == '\r')
        out[--used] = '\0';
    if (memchr(out, '\0', used) != NULL || strchr(out, '\n') != NULL) {
        snprintf(err, err_len, "password file '%s' must hold one line with the password", path);
        sodium_memzero(out, out_len);
        return FV_ERR_INVALID;
    }
    char problem[256];
    if (!password_acceptable(out, problem, sizeof problem)) {
        snprintf(err, err_len, "password file '%s': %s", path, problem);
        sodium_memzero(out, out_len);
        return FV_ERR_INVALID;
    }
    return FV_OK;
}

/* Read one line from the terminal with echo off. */
static bool prompt_line(const char *prompt, char *out, size_t out_len)
{
    struct termios old_attr, new_attr;
    if (tcgetattr(STDIN_FILENO, &old_attr) != 0)
        return false;
    new_attr = old_attr;
    new_attr.c_lflag &= ~(tcflag_t)ECHO;
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &new_attr) != 0)
        return false;
    bool ok = fgets(out, (int)out_len, stdin) != NULL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old_attr);
    fprintf(stderr, "\n");
    if (!ok)
        return false;
    out[strcspn(out, "\r\n")] = '\0';
    return true;
}

/* Get the new password of a user from --password-file or the terminal. */
static int password_get(const user_opts *o, char *out, size_t out_len)
{
    char err[512];
    if (o->password_file != NULL) {
        if (cli_password_read_file(o->password_file, out, out_len, err, sizeof err) != FV_OK) {
            fprintf(stderr, "flowveil: error: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
        return CLI_EXIT_OK;
    }
    if (!isatty(STDIN_FILENO))
        return cli_usage_error("user",
                               "no password given and standard input is not a terminal; pass "
                               "--password-file FILE (or '-' to read standard input)");

    char again[CLI_PASSWORD_MAX + 2];
    if (!prompt_line("New password: ", out, out_len) ||
        !prompt_line("Repeat the password: ", again, sizeof again)) {
        fprintf(stderr, "flowveil: error: could not read the password from the terminal\n");
        sodium_memzero(out, out_len);
        return CLI_EXIT_FAILURE;
    }
    bool same = strcmp(out, again) == 0;
    sodium_memzero(again, sizeof again);
    if (!same) {
        fprintf(stderr, "flowveil: error: the two passwords differ; run the command again\n");
        sodium_memzero(out, out_len);
        return CLI_EXIT_FAILURE;
    }
    if (!password_acceptable(out, err, sizeof err)) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        sodium_memzero(out, out_len);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* ---- option parsing --------------------------------------------------- */

static void print_user_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil user add NAME --role ROLE [--password-file FILE] --db DIR\n"
            "       flowveil user passwd NAME [--password-file FILE] --db DIR\n"
            "       flowveil user remove NAME --db DIR\n"
            "       flowveil user role NAME ROLE --db DIR\n"
            "       flowveil user list --db DIR\n"
            "\n"
            "Manage the users who log in to the dashboard and the HTTP API.\n"
            "\n"
            "  -d, --db DIR              store directory\n"
            "  -r, --role ROLE           analyst (records and alerts), compliance (retention,\n"
            "                            policy, reports, audit) or admin (everything)\n"
            "  -P, --password-file FILE  read the password from FILE ('-' = standard input);\n"
            "                            without it the password is asked on the terminal\n"
            "\n"
            "NAME is 1-32 characters of a-z, 0-9, '.', '_', '-', starting with a letter.\n"
            "Passwords need at least 8 characters. 'role' sets the role of an existing\n"
            "user; like 'passwd' and 'remove' it ends the user's sessions. Every change\n"
            "is audited.\n");
}

static void print_token_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil token create NAME --role ROLE [--expires DURATION] --db DIR\n"
            "       flowveil token list --db DIR\n"
            "       flowveil token revoke ID --db DIR\n"
            "\n"
            "Manage API tokens, sent as 'Authorization: Bearer fvt_...'. create prints the\n"
            "token once on standard output; only its hash is stored.\n"
            "\n"
            "  -d, --db DIR              store directory\n"
            "  -r, --role ROLE           analyst, compliance or admin\n"
            "  -e, --expires DURATION    lifetime such as 90d, 12h or 2w (default: no expiry)\n");
}

/* Parse the options after the subcommand word of COMMAND ("user" or
 * "token"). Returns CLI_EXIT_OK, or a usage error's status; -1 means
 * --help was printed. */
static int parse_opts(const char *command, int argc, char **argv, user_opts *o)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"password-file", required_argument, NULL, 'P'},
        {"expires", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:r:P:e:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->db = optarg; break;
        case 'r':
            /* A privilege option given twice is a mistake, not "the last wins". */
            if (o->role != NULL)
                return cli_usage_error(command, "--role given twice ('%s' and '%s'); give it "
                                                "once",
                                       o->role, optarg);
            o->role = optarg;
            break;
        case 'P': o->password_file = optarg; break;
        case 'e': o->expires = optarg; break;
        case 'h':
            if (strcmp(command, "user") == 0)
                print_user_usage(stdout);
            else
                print_token_usage(stdout);
            return -1;
        case ':': return cli_usage_error(command, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(command, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        o->name = argv[optind++];
    if (optind < argc)
        o->second = argv[optind++];
    if (optind < argc)
        return cli_usage_error(command, "unexpected argument '%s'", argv[optind]);
    if (o->db == NULL)
        return cli_usage_error(command, "missing --db DIR (the store directory)");
    return CLI_EXIT_OK;
}

/* Reject options that ACTION does not take. */
static int reject_unused(const char *command, const char *action, const user_opts *o,
                         bool role, bool password, bool expires)
{
    const char *unused = !role && o->role != NULL                ? "--role"
                         : !password && o->password_file != NULL ? "--password-file"
                         : !expires && o->expires != NULL         ? "--expires"
                                                                  : NULL;
    if (unused != NULL)
        return cli_usage_error(command, "'%s %s' does not take %s", command, action, unused);
    return CLI_EXIT_OK;
}

static int parse_role(const char *command, const user_opts *o, unsigned *role)
{
    if (o->role == NULL)
        return cli_usage_error(command, "missing --role ROLE (analyst, compliance or admin)");
    if (store_role_parse(o->role, role) != FV_OK)
        return cli_usage_error(command,
                               "invalid --role value '%s': expected analyst, compliance or admin",
                               o->role);
    return CLI_EXIT_OK;
}

static int require_name(const char *command, const char *action, const user_opts *o,
                        const char *what)
{
    if (o->name == NULL)
        return cli_usage_error(command, "'%s %s' needs %s", command, action, what);
    if (strcmp(what, "ID") != 0 && !store_auth_name_valid(o->name))
        return cli_usage_error(command,
                               "invalid name '%s': use 1-32 characters of a-z, 0-9, '.', '_' "
                               "and '-', starting with a letter",
                               o->name);
    return CLI_EXIT_OK;
}

static store_env *open_store(const char *db)
{
    store_env *store = NULL;
    char err[1024];
    if (store_open(db, STORE_EXISTING, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return NULL;
    }
    return store;
}

static int audit_change(store_env *store, const char *action, const char *object,
                        const char *params)
{
    char actor[64];
    cli_audit_local_actor(actor, sizeof actor);
    int rc = cli_audit_append(store, actor, action, object, params, 0, fv_now_us());
    if (rc != FV_OK)
        fprintf(stderr, "flowveil: error: the change was made but could not be written to the "
                        "audit trail: %s\n",
                fv_strerror(rc));
    return rc;
}

static void time_text(uint64_t us, char out[FV_TIME_TEXT_MAX])
{
    if (us == 0)
        snprintf(out, FV_TIME_TEXT_MAX, "-");
    else
        fv_time_format(us, out);
}

/* ---- user ------------------------------------------------------------- */

typedef struct admin_count {
    size_t admins;
} admin_count;

static bool count_admin(void *ctx, const store_user *u)
{
    if (u->role == STORE_ROLE_ADMIN)
        ((admin_count *)ctx)->admins++;
    return true;
}

static bool print_user(void *ctx, const store_user *u)
{
    char created[FV_TIME_TEXT_MAX], changed[FV_TIME_TEXT_MAX];
    (void)ctx;
    time_text(u->created_us, created);
    time_text(u->changed_us, changed);
    printf("%-32s  %-10s  %-27s  %s\n", u->name, store_role_name(u->role), created, changed);
    return true;
}

/* Set the password of a new or existing user. */
static int user_store_password(store_env *store, const user_opts *o, unsigned role, bool create)
{
    char password[CLI_PASSWORD_MAX + 2];
    store_user u;
    memset(&u, 0, sizeof u);

    if (!create) {
        int rc = store_user_get(store, o->name, &u);
        if (rc == FV_ERR_NOT_FOUND) {
            fprintf(stderr, "flowveil: error: no user '%s'; see 'flowveil user list'\n", o->name);
            return CLI_EXIT_FAILURE;
        }
        if (rc != FV_OK) {
            fprintf(stderr, "flowveil: error: cannot read user '%s': %s\n", o->name,
                    fv_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
    } else {
        store_user existing;
        if (store_user_get(store, o->name, &existing) == FV_OK) {
            fprintf(stderr, "flowveil: error: user '%s' already exists; change its password "
                            "with 'flowveil user passwd %s'\n",
                    o->name, o->name);
            return CLI_EXIT_FAILURE;
        }
    }

    int status = password_get(o, password, sizeof password);
    if (status != CLI_EXIT_OK)
        return status;
    int rc = store_password_hash(password, u.pwhash);
    sodium_memzero(password, sizeof password);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot hash the password: %s\n", fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }

    uint64_t now_us = fv_now_us();
    if (create) {
        snprintf(u.name, sizeof u.name, "%s", o->name);
        u.role = role;
        u.created_us = now_us;
    }
    u.changed_us = now_us;
    rc = store_user_put(store, &u, create);
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    if (rc == FV_ERR_STATE && create) {
        fprintf(stderr, "flowveil: error: user '%s' already exists\n", o->name);
        return CLI_EXIT_FAILURE;
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot store user '%s': %s\n", o->name,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }

    char params[64];
    snprintf(params, sizeof params, "role=%s", store_role_name(u.role));
    if (audit_change(store, create ? "user.add" : "user.passwd", o->name, params) != FV_OK)
        return CLI_EXIT_FAILURE;
    if (create)
        printf("flowveil: added user '%s' with role %s\n", o->name, store_role_name(u.role));
    else
        printf("flowveil: changed the password of user '%s'; its sessions have ended\n",
               o->name);
    return CLI_EXIT_OK;
}

static int user_remove(store_env *store, const user_opts *o)
{
    store_user u;
    int rc = store_user_get(store, o->name, &u);
    if (rc == FV_ERR_NOT_FOUND) {
        fprintf(stderr, "flowveil: error: no user '%s'; see 'flowveil user list'\n", o->name);
        return CLI_EXIT_FAILURE;
    }
    if (rc == FV_OK && u.role == STORE_ROLE_ADMIN) {
        admin_count count = {0};
        rc = store_user_each(store, count_admin, &count, NULL);
        if (rc == FV_OK && count.admins < 2) {
            fprintf(stderr, "flowveil: error: '%s' is the last admin user; add another admin "
                            "with 'flowveil user add NAME --role admin' first\n",
                    o->name);
            return CLI_EXIT_FAILURE;
        }
    }
    if (rc == FV_OK)
        rc = store_user_delete(store, o->name);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot remove user '%s': %s\n", o->name,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (audit_change(store, "user.remove", o->name, NULL) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("flowveil: removed user '%s'; its sessions have ended\n", o->name);
    return CLI_EXIT_OK;
}

/* Count the admin users; *ADMINS receives the count. */
static int count_admins(store_env *store, size_t *admins)
{
    admin_count count = {0};
    int rc = store_user_each(store, count_admin, &count, NULL);
    *admins = count.admins;
    return rc;
}

/* Set the role of user O->name to ROLE. The changed time moves on, which
 * ends the user's sessions, so the new role applies from the next login. */
static int user_set_role(store_env *store, const user_opts *o, unsigned role)
{
    store_user u;
    int rc = store_user_get(store, o->name, &u);
    if (rc == FV_ERR_NOT_FOUND) {
        fprintf(stderr, "flowveil: error: no user '%s'; see 'flowveil user list'\n", o->name);
        return CLI_EXIT_FAILURE;
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot read user '%s': %s\n", o->name,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    unsigned previous = u.role;
    if (previous == role) {
        sodium_memzero(u.pwhash, sizeof u.pwhash);
        printf("flowveil: user '%s' already has role %s; nothing changed\n", o->name,
               store_role_name(role));
        return CLI_EXIT_OK;
    }
    if (previous == STORE_ROLE_ADMIN) {
        size_t admins = 0;
        rc = count_admins(store, &admins);
        if (rc == FV_OK && admins < 2) {
            sodium_memzero(u.pwhash, sizeof u.pwhash);
            fprintf(stderr, "flowveil: error: '%s' is the last admin user; add another admin "
                            "with 'flowveil user add NAME --role admin' first\n",
                    o->name);
            return CLI_EXIT_FAILURE;
        }
    }
    u.role = role;
    u.changed_us = fv_now_us();
    if (rc == FV_OK)
        rc = store_user_put(store, &u, false);
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot change the role of user '%s': %s\n", o->name,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }

    char params[64];
    snprintf(params, sizeof params, "role=%s&previous=%s", store_role_name(role),
             store_role_name(previous));
    if (audit_change(store, "user.role", o->name, params) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("flowveil: changed the role of user '%s' from %s to %s; its sessions have ended\n",
           o->name, store_role_name(previous), store_role_name(role));
    return CLI_EXIT_OK;
}

int cli_cmd_user(int argc, char **argv)
{
    if (argc < 2) {
        print_user_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *action = argv[1];
    if (strcmp(action, "-h") == 0 || strcmp(action, "--help") == 0) {
        print_user_usage(stdout);
        return CLI_EXIT_OK;
    }
    bool add = strcmp(action, "add") == 0, passwd = strcmp(action, "passwd") == 0;
    bool remove = strcmp(action, "remove") == 0, list = strcmp(action, "list") == 0;
    bool set_role = strcmp(action, "role") == 0;
    if (!add && !passwd && !remove && !list && !set_role)
        return cli_usage_error("user", "unknown action '%s': expected add, passwd, remove, "
                                       "role or list",
                               action);

    user_opts o;
    int status = parse_opts("user", argc - 1, argv + 1, &o);
    if (status != CLI_EXIT_OK)
        return status < 0 ? CLI_EXIT_OK : status;
    status = reject_unused("user", action, &o, add, add || passwd, false);
    if (status != CLI_EXIT_OK)
        return status;
    unsigned role = 0;
    if (add && (status = parse_role("user", &o, &role)) != CLI_EXIT_OK)
        return status;
    if (list && o.name != NULL)
        return cli_usage_error("user", "unexpected argument '%s'", o.name);
    if (!set_role && o.second != NULL)
        return cli_usage_error("user", "unexpected argument '%s'", o.second);
    if (!list && (status = require_name("user", action, &o, "a user NAME")) != CLI_EXIT_OK)
        return status;
    if (set_role) {
        if (o.second == NULL)
            return cli_usage_error("user", "'user role' needs NAME and ROLE (analyst, "
                                           "compliance or admin)");
        if (store_role_parse(o.second, &role) != FV_OK)
            return cli_usage_error("user",
                                   "invalid ROLE '%s': expected analyst, compliance or admin",
                                   o.second);
    }

    store_env *store = open_store(o.db);
    if (store == NULL)
        return CLI_EXIT_FAILURE;
    if (add || passwd) {
        status = user_store_password(store, &o, role, add);
    } else if (remove) {
        status = user_remove(store, &o);
    } else if (set_role) {
        status = user_set_role(store, &o, role);
    } else {
        printf("%-32s  %-10s  %-27s  %s\n", "NAME", "ROLE", "CREATED", "CHANGED");
        int rc = store_user_each(store, print_user, NULL, NULL);
        status = rc == FV_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        if (rc != FV_OK)
            fprintf(stderr, "flowveil: error: cannot list the users: %s\n", fv_strerror(rc));
    }
    store_close(&store);
    return status;
}

/* ---- token ------------------------------------------------------------ */

typedef struct token_list_ctx {
    uint64_t now_us;
} token_list_ctx;

static bool print_token(void *ctx, const store_token *t)
{
    const token_list_ctx *c = ctx;
    char created[FV_TIME_TEXT_MAX], expires[FV_TIME_TEXT_MAX];
    const char *state = t->revoked_us != 0                                   ? "revoked"
                        : t->expires_us != 0 && c->now_us >= t->expires_us ? "expired"
                                                                             : "active";
    time_text(t->created_us, created);
    time_text(t->expires_us, expires);
    printf("%-16s  %-32s  %-10s  %-27s  %-27s  %s\n", t->id, t->name, store_role_name(t->role),
           created, expires, state);
    return true;
}

static int token_create(store_env *store, const user_opts *o, unsigned role)
{
    uint64_t expires_s = 0, now_us = fv_now_us();
    if (o->expires != NULL && (fv_duration_parse(o->expires, &expires_s) != FV_OK ||
                               expires_s == 0 || expires_s > TOKEN_EXPIRES_MAX_S)) {
        return cli_usage_error("token",
                               "invalid --expires value '%s': expected a duration from 1s to "
                               "3650d (10 years), such as 90d, 12h or 2w",
                               o->expires);
    }
    char text[STORE_TOKEN_TEXT_LEN + 1];
    store_token t;
    uint64_t expires_us = expires_s != 0 ? now_us + expires_s * 1000000ull : 0;
    int rc = store_token_create(store, o->name, role, expires_us, now_us, text, &t);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot create the token: %s\n", fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    char params[128], expiry[FV_TIME_TEXT_MAX];
    time_text(expires_us, expiry);
    snprintf(params, sizeof params, "name=%s&role=%s&expires=%s", t.name,
             store_role_name(role), expiry);
    if (audit_change(store, "token.create", t.id, params) != FV_OK) {
        /* Do not hand out a token whose creation is not in the trail. */
        store_token_revoke(store, t.id, fv_now_us());
        sodium_memzero(text, sizeof text);
        return CLI_EXIT_FAILURE;
    }
    errno = 0;
    printf("%s\n", text);
    sodium_memzero(text, sizeof text);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* No one received the token, so it must not stay active. */
        int e = errno != 0 ? errno : EIO;
        int revoke_rc = store_token_revoke(store, t.id, fv_now_us());
        if (revoke_rc == FV_OK)
            (void)audit_change(store, "token.revoke", t.id, "reason=output-failed");
        fprintf(stderr, "flowveil: error: writing token %s to standard output failed: %s; %s\n",
                t.id, strerror(e),
                revoke_rc == FV_OK ? "the token was revoked, create it again with a working "
                                     "output"
                                   : "revoking it failed too, run `flowveil token revoke` "
                                     "with this ID");
        return CLI_EXIT_FAILURE;
    }
    fprintf(stderr,
            "flowveil: created token %s for '%s' with role %s%s%s; it is shown only once, "
            "send it as 'Authorization: Bearer TOKEN'\n",
            t.id, t.name, store_role_name(role), expires_us != 0 ? ", expires " : "",
            expires_us != 0 ? expiry : "");
    return CLI_EXIT_OK;
}

static int token_revoke(store_env *store, const user_opts *o)
{
    int rc = store_token_revoke(store, o->name, fv_now_us());
    if (rc == FV_ERR_INVALID || rc == FV_ERR_NOT_FOUND) {
        fprintf(stderr, "flowveil: error: no token with id '%s'; see 'flowveil token list' for "
                        "the ids\n",
                o->name);
        return CLI_EXIT_FAILURE;
    }
    if (rc == FV_ERR_STATE) {
        fprintf(stderr, "flowveil: error: token '%s' is already revoked\n", o->name);
        return CLI_EXIT_FAILURE;
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot revoke token '%s': %s\n", o->name,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (audit_change(store, "token.revoke", o->name, NULL) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("flowveil: revoked token %s\n", o->name);
    return CLI_EXIT_OK;
}

int cli_cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        print_token_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *action = argv[1];
    if (strcmp(action, "-h") == 0 || strcmp(action, "--help") == 0) {
        print_token_usage(stdout);
        return CLI_EXIT_OK;
    }
    bool create = strcmp(action, "create") == 0, list = strcmp(action, "list") == 0;
    bool revoke = strcmp(action, "revoke") == 0;
    if (!create && !list && !revoke)
        return cli_usage_error("token", "unknown action '%s': expected create, list or revoke",
                               action);

    user_opts o;
    int status = parse_opts("token", argc - 1, argv + 1, &o);
    if (status != CLI_EXIT_OK)
        return status < 0 ? CLI_EXIT_OK : status;
    status = reject_unused("token", action, &o, create, false, create);
    if (status != CLI_EXIT_OK)
        return status;
    unsigned role = 0;
    if (create && (status = parse_role("token", &o, &role)) != CLI_EXIT_OK)
        return status;
    if (list && o.name != NULL)
        return cli_usage_error("token", "unexpected argument '%s'", o.name);
    if (o.second != NULL)
        return cli_usage_error("token", "unexpected argument '%s'", o.second);
    if (create && (status = require_name("token", action, &o, "a NAME")) != CLI_EXIT_OK)
        return status;
    if (revoke && (status = require_name("token", action, &o, "ID")) != CLI_EXIT_OK)
        return status;

    store_env *store = open_store(o.db);
    if (store == NULL)
        return CLI_EXIT_FAILURE;
    if (create) {
        status = token_create(store, &o, role);
    } else if (revoke) {
        status = token_revoke(store, &o);
    } else {
        token_list_ctx ctx = {.now_us = fv_now_us()};
        printf("%-16s  %-32s  %-10s  %-27s  %-27s  %s\n", "ID", "NAME", "ROLE", "CREATED",
               "EXPIRES", "STATE");
        int rc = store_token_each(store, print_token, &ctx, NULL);
        status = rc == FV_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        if (rc != FV_OK)
            fprintf(stderr, "flowveil: error: cannot list the tokens: %s\n", fv_strerror(rc));
    }
    store_close(&store);
    return status;
}
