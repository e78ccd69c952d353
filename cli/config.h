/*
 * config.h: the daemon settings file (`--config FILE`, YAML) and the
 * logging options `--log` and `--log-level` of `flowveil capture` and
 * `flowveil serve`.
 *
 * The file holds operational settings only (interfaces, store, policy
 * path, listen address, TLS files, capture tuning, logging); the
 * compliance policy stays in its own file. Each setting becomes the
 * command-line option of the same meaning, placed before the options
 * given on the command line. A command-line option always wins, because
 * the file's words for an option that the command line sets are left
 * out; so one `-i` on the command line replaces the file's whole
 * interface list. docs/DEPLOYMENT.md lists the keys.
 *
 * NOTE: an option hidden in a bundle of short flags ("-vi eth0") is not
 * recognized as set, so the file's value is then passed as well.
 */
#ifndef FV_CLI_CONFIG_H
#define FV_CLI_CONFIG_H

#include <stddef.h>

#include "fv_common.h"

/* Where the packaged service units read the settings from. */
#define FV_CONFIG_DEFAULT_PATH "/etc/flowveil/flowveil.conf"

/* Settings read from a file, as command-line options for one command. */
typedef struct fv_config_args {
    char **argv;        /* option words, for example "--db", "/var/lib/flowveil" */
    char **origins;     /* per word of argv: "PATH:LINE:COLUMN key" of its setting */
    size_t argc;
    char *log_target;   /* "stderr", "syslog" or "auto"; NULL if unset */
    char *log_level;    /* "error" .. "debug"; NULL if unset */
} fv_config_args;

/*
 * Parse the settings file PATH for COMMAND ("capture" or "serve") into
 * *OUT. Unknown keys, wrong types, duplicate keys and out-of-range values
 * are errors: ERR gets "PATH:LINE:COLUMN: reason; fix" (1-based line and
 * column). Returns FV_OK, FV_ERR_IO (unreadable file), FV_ERR_PARSE (not
 * YAML), FV_ERR_INVALID (a bad key or value) or FV_ERR_NOMEM. Free *OUT
 * with fv_config_args_free, also after an error.
 */
int fv_config_load(const char *path, const char *command, fv_config_args *out, char *err,
                   size_t err_len);

void fv_config_args_free(fv_config_args *args);

/*
 * For `flowveil capture` and `flowveil serve` (ARGV[1]): remove
 * `--config FILE`, `--log TARGET` and `--log-level LEVEL` from the
 * command line, apply the logging settings (command line over file over
 * the default), and put the file's settings before the remaining
 * options. *ARGC and *ARGV are replaced by a new vector that lives until
 * exit. Other commands are left unchanged. Returns -1 to go on, or an
 * exit status after printing the error.
 */
int fv_config_prepare_argv(int *argc, char ***argv);

/*
 * Return "PATH:LINE:COLUMN: key NAME" of the settings-file line that
 * WORD came from, if WORD is one of the words that fv_config_prepare_argv
 * put into the command line (compared by address, so pass optarg
 * itself), or NULL for a word typed on the command line. Commands use it
 * to report a bad file value against its line, with exit status 1,
 * instead of as a command-line usage error.
 */
const char *fv_config_word_origin(const char *word);

/*
 * Report that VALUE of OPTION (for example "--workers") is invalid, with
 * the reason and fix in FMT. A value from the settings file is printed
 * as "PATH:LINE:COLUMN: key NAME: invalid value 'VALUE': reason" and
 * returns CLI_EXIT_FAILURE (1), as every other settings-file error does.
 * A value typed on the command line is a usage error of COMMAND and
 * returns CLI_EXIT_USAGE (2).
 */
int fv_config_value_error(const char *command, const char *option, const char *value,
                          const char *fmt, ...) FV_PRINTF(4, 5);

/*
 * Print "flowveil: error: ERR" and, when ERR names the path VALUE and
 * VALUE came from the settings file, the file line that set it, so that
 * a wrong `policy:` or `data_dir:` is fixed in the file and not looked
 * for on the command line.
 */
void fv_config_print_error(const char *err, const char *value);

#endif /* FV_CLI_CONFIG_H */
