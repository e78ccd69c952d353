/*
 * cli.h: subcommands of the `flowveil` binary and their shared helpers.
 * Each cli_cmd_* takes the arguments after "flowveil" (argv[0] is the
 * subcommand name) and returns the process exit status.
 */
#ifndef FV_CLI_H
#define FV_CLI_H

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>

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

/* Print "flowveil: MESSAGE" and a hint to COMMAND's help; return 2. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse TEXT as whole seconds since the epoch into *OUT for OPTION.
 * Returns CLI_EXIT_OK or prints a usage error and returns 2. */
int cli_parse_seconds(const char *command, const char *option, const char *text, uint64_t *out);

/* SIGINT/SIGTERM set the stop flag; SIGPIPE is ignored. */
void cli_install_stop_handlers(void);
volatile sig_atomic_t *cli_stop_flag(void);

#endif /* FV_CLI_H */
