/*
 * cli.h: subcommands of the `flowveil` binary and their shared helpers.
 * Each cli_cmd_* takes the arguments after "flowveil" (argv[0] is the
 * subcommand name) and returns the process exit status.
 */
#ifndef FV_CLI_H
#define FV_CLI_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <getopt.h>

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,
    CLI_EXIT_USAGE = 2,
};

int cli_cmd_ingest(int argc, char **argv);
int cli_cmd_capture(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);
int cli_cmd_export(int argc, char **argv);
int cli_cmd_sweep(int argc, char **argv);
int cli_cmd_retention(int argc, char **argv);
int cli_cmd_policy(int argc, char **argv);
int cli_cmd_keys(int argc, char **argv);
int cli_cmd_audit(int argc, char **argv);
int cli_cmd_report(int argc, char **argv);
int cli_cmd_reveal(int argc, char **argv);
int cli_cmd_subject(int argc, char **argv);
/* `flowveil export` with --ipfix or --kafka (cmd_export_send.c). */
int cli_export_send(int argc, char **argv);
int cli_cmd_collect(int argc, char **argv);
/* `flowveil keys authority|sensor-keygen|import` (cmd_keys_authority.c). */
int cli_cmd_keys_authority(int argc, char **argv);

/*
 * Parse options as getopt_long does, for every command (cli.h maps the
 * name to it). Two checks apply to options that take a value. An empty
 * value, or a second use of a single-value option (such as --db twice),
 * prints a usage error naming the option and exits with status 2.
 * Options that collect several values (capture --interface, collect
 * --listen, export --kafka-property) and values that came from a --config settings file, which
 * the command line overrides, are exempt from the second check.
 */
int cli_getopt_long(int argc, char *const argv[], const char *shortopts,
                    const struct option *longopts, int *longindex);
#define getopt_long cli_getopt_long

/* Print "flowveil: MESSAGE" and a hint to COMMAND's help; return 2. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse TEXT as whole seconds since the epoch into *OUT for OPTION.
 * Returns CLI_EXIT_OK or prints a usage error and returns 2. */
int cli_parse_seconds(const char *command, const char *option, const char *text, uint64_t *out);

/* Seconds that --now may be ahead of the clock before a command that
 * sweeps requires --allow-future-now: one day, for clocks a little behind. */
#define CLI_NOW_FUTURE_SLACK_S 86400u

/* Return CLI_EXIT_OK, or print a usage error and return CLI_EXIT_USAGE
 * when NOW_S is more than CLI_NOW_FUTURE_SLACK_S after the clock and the
 * user did not pass --allow-future-now (ALLOWED). */
int cli_check_now_not_future(const char *command, uint64_t now_s, bool allowed);

/* SIGINT/SIGTERM set the stop flag; SIGPIPE is ignored. */
void cli_install_stop_handlers(void);
/* SIGHUP sets the stop flag too, for commands that have nothing to
 * reload (ingest): a closed terminal then stops them cleanly instead of
 * killing them between commits. An inherited SIG_IGN (nohup) is kept. */
void cli_install_hangup_stop_handler(void);
volatile sig_atomic_t *cli_stop_flag(void);

/* SIGHUP requests a policy reload; cli_reload_take() returns true once
 * per request and clears it. */
void cli_install_reload_handler(void);
bool cli_reload_take(void);

/* SIGUSR1 requests a log line with the running counters; the handler
 * only sets a flag, and cli_counters_take() returns true once per
 * request and clears it, so the line is written from the main loop. */
void cli_install_counters_handler(void);
bool cli_counters_take(void);

/* Audit helpers (cmd_audit.c). The store must be open read-write. */
typedef struct store_env store_env;
typedef struct store_sweep_result store_sweep_result;
typedef struct store_audit_entry store_audit_entry;

/* Append one audit entry with an empty role; log and return the error
 * on failure. OBJECT and PARAMS may be NULL. */
int cli_audit_append(store_env *store, const char *actor, const char *action, const char *object,
                     const char *params, uint64_t result_count, uint64_t now_us);

/* Fill E as cli_audit_append would write it, truncating long strings. */
void cli_audit_entry_fill(store_audit_entry *e, const char *actor, const char *action,
                          const char *object, const char *params, uint64_t result_count);

/* Append E at the current wall-clock time; log and return the error on
 * failure. */
int cli_audit_append_entry(store_env *store, const store_audit_entry *e);

/* Append a "retention.sweep" entry by ACTOR for RESULT: the deleted
 * count per class and of audit entries, and the sweep time. */
int cli_audit_sweep(store_env *store, const char *actor, const store_sweep_result *result,
                    uint64_t now_us);

/* Write the name of the user running the command (or "uid:N") into OUT:
 * the actor of commands run by hand, such as export and sweep. */
void cli_audit_local_actor(char *out, size_t out_len);

/* Accounts of the HTTP API (cmd_user.c). */
int cli_cmd_user(int argc, char **argv);
int cli_cmd_token(int argc, char **argv);

/*
 * Read a password from PATH ("-" = standard input) into OUT: the whole
 * content without one trailing line break, at least 8 printable
 * characters. Returns FV_OK, or FV_ERR_IO / FV_ERR_INVALID with a
 * message naming the file in ERR.
 */
int cli_password_read_file(const char *path, char *out, size_t out_len, char *err,
                           size_t err_len);

#endif /* FV_CLI_H */
