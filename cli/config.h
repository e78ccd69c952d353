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

/* Where the packaged service units read the settings from. */
#define FV_CONFIG_DEFAULT_PATH "/etc/flowveil/flowveil.conf"

/* Settings read from a file, as command-line options for one command. */
typedef struct fv_config_args {
    char **argv;        /* option words, for example "--db", "/var/lib/flowveil" */
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

#endif /* FV_CLI_CONFIG_H */
