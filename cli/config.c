/*
 * config.c: the daemon settings file and the logging options (see
 * config.h). The file is read with libyaml's document loader, whose node
 * marks give the line and column of every error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "cli.h"
#include "config.h"
#include "fv_common.h"

/* Settings files are a few hundred bytes; this bound stops a wrong file. */
#define CONFIG_MAX_BYTES (1024 * 1024)

typedef enum value_kind {
    KIND_STRING,    /* any scalar */
    KIND_PATH,      /* absolute path */
    KIND_LIST,      /* sequence of names, one option each */
    KIND_BOOL,      /* true or false; true adds the option without a value */
    KIND_UINT,      /* decimal integer in [min, max] */
    KIND_LOG,       /* handled by the logging settings, not an option */
} value_kind;

/* One key of the file and the option it becomes per command. The field
 * order follows the positional initialisers of config_keys below; the
 * table is small and static, so its padding does not matter. */
typedef struct config_key {  // NOLINT(clang-analyzer-optin.performance.Padding)
    const char *section;        /* NULL for the top level */
    const char *name;
    value_kind kind;
    const char *capture_option; /* long option for capture, NULL if none */
    const char *serve_option;
    char capture_short;         /* short option letter, 0 if none */
    char serve_short;
    uint64_t min, max;
} config_key;

static const config_key config_keys[] = {
    {NULL, "data_dir", KIND_PATH, "--db", "--db", 'd', 'd', 0, 0},
    {NULL, "policy", KIND_PATH, "--policy", "--policy", 'p', 'p', 0, 0},
    {"log", "target", KIND_LOG, NULL, NULL, 0, 0, 0, 0},
    {"log", "level", KIND_LOG, NULL, NULL, 0, 0, 0, 0},
    {"capture", "interfaces", KIND_LIST, "--interface", NULL, 'i', 0, 0, 0},
    {"capture", "filter", KIND_STRING, "--filter", NULL, 'f', 0, 0, 0},
    {"capture", "user", KIND_STRING, "--user", NULL, 'Z', 0, 0, 0},
    {"capture", "chroot", KIND_BOOL, "--chroot", NULL, 0, 0, 0, 0},
    {"capture", "snaplen", KIND_UINT, "--snaplen", NULL, 0, 0, 256, 262144},
    {"capture", "buffer_size_mib", KIND_UINT, "--buffer-size", NULL, 0, 0, 1, 2047},
    {"capture", "workers", KIND_UINT, "--workers", NULL, 0, 0, 1, 1024},
    {"capture", "flow_memory_mib", KIND_UINT, "--flow-memory", NULL, 0, 0, 1, 1048576},
    {"serve", "listen", KIND_STRING, NULL, "--listen", 0, 'l', 0, 0},
    {"serve", "tls_cert", KIND_PATH, NULL, "--tls-cert", 0, 0, 0, 0},
    {"serve", "tls_key", KIND_PATH, NULL, "--tls-key", 0, 0, 0, 0},
    {"serve", "web_dir", KIND_PATH, NULL, "--web", 0, 'w', 0, 0},
};

#define CONFIG_KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

static int usage_error(const char *command, const char *fmt, ...) FV_PRINTF(2, 3);

/* Print a usage error as main.c's cli_usage_error does and return the
 * usage exit status. Kept here so that the in-process pipeline tests can
 * link this file without main.c. */
static int usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flowveil: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'flowveil %s --help'.\n", command);
    return CLI_EXIT_USAGE;
}

static const char *const log_targets[] = {"auto", "stderr", "syslog", NULL};
static const char *const log_levels[] = {"error", "warning", "notice", "info", "debug", NULL};

/* Parser state for one file. */
typedef struct config_ctx {
    const char *path;
    const char *command;
    yaml_document_t *doc;
    fv_config_args *out;
    bool seen[CONFIG_KEY_COUNT];
    char *err;
    size_t err_len;
} config_ctx;

static int config_error(config_ctx *c, const yaml_node_t *node, const char *fmt, ...)
    FV_PRINTF(3, 4);

/* Write "PATH:LINE:COLUMN: " and the formatted reason into the error
 * buffer; returns FV_ERR_INVALID. */
static int config_error(config_ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
    int n = snprintf(c->err, c->err_len, "%s:%lu:%lu: ", c->path,
                     (unsigned long)node->start_mark.line + 1,
                     (unsigned long)node->start_mark.column + 1);
    if (n >= 0 && (size_t)n < c->err_len) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return FV_ERR_INVALID;
}

static const char *scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

/* Append a copy of WORD to the option words, with ORIGIN ("PATH:LINE:
 * COLUMN: key NAME") as the place it came from. */
static int push_word(fv_config_args *a, const char *word, const char *origin)
{
    char **grown = realloc(a->argv, (a->argc + 1) * sizeof *grown);
    if (grown == NULL)
        return FV_ERR_NOMEM;
    a->argv = grown;
    grown = realloc(a->origins, (a->argc + 1) * sizeof *grown);
    if (grown == NULL)
        return FV_ERR_NOMEM;
    a->origins = grown;
    a->argv[a->argc] = strdup(word);
    a->origins[a->argc] = strdup(origin);
    if (a->argv[a->argc] == NULL || a->origins[a->argc] == NULL) {
        free(a->argv[a->argc]);
        free(a->origins[a->argc]);
        return FV_ERR_NOMEM;
    }
    a->argc++;
    return FV_OK;
}

/* Push OPTION and, unless NULL, its VALUE, both marked with the file
 * position of NODE and the key name K. */
static int push_option(config_ctx *c, const config_key *k, const yaml_node_t *node,
                       const char *option, const char *value)
{
    char origin[1200];
    snprintf(origin, sizeof origin, "%s:%lu:%lu: key %s", c->path,
             (unsigned long)node->start_mark.line + 1,
             (unsigned long)node->start_mark.column + 1, k->name);
    int rc = push_word(c->out, option, origin);
    if (rc == FV_OK && value != NULL)
        rc = push_word(c->out, value, origin);
    return rc;
}

static bool in_list(const char *text, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(text, list[i]) == 0)
            return true;
    }
    return false;
}

/* Parse TEXT as a decimal integer without sign or suffix. */
static bool parse_uint(const char *text, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* List the key names of SECTION (NULL: top level) into BUF for a hint. */
static void section_keys(const char *section, char *buf, size_t buf_len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        const config_key *k = &config_keys[i];
        bool same = section == NULL ? k->section == NULL
                                    : k->section != NULL && strcmp(k->section, section) == 0;
        if (!same)
            continue;
        int n = snprintf(buf + used, buf_len - used, "%s%s", used == 0 ? "" : ", ", k->name);
        if (n < 0 || !((size_t)n < buf_len - used))
            return;
        used += (size_t)n;
    }
    if (section == NULL) {
        static const char *const sections[] = {"log", "capture", "serve"};
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
            int n = snprintf(buf + used, buf_len - used, ", %s:", sections[i]);
            if (n < 0 || !((size_t)n < buf_len - used))
                return;
            used += (size_t)n;
        }
    }
}

/* Check VALUE (a node of key K) and add the option words it becomes. */
static int apply_value(config_ctx *c, const config_key *k, const yaml_node_t *value)
{
    const char *option = strcmp(c->command, "capture") == 0 ? k->capture_option
                                                             : k->serve_option;

    if (k->kind == KIND_LIST) {
        if (value->type != YAML_SEQUENCE_NODE)
            return config_error(c, value, "%s must be a list, for example [eth1, eth2]; write "
                                          "the names in brackets",
                                k->name);
        /* An empty list sets nothing, so the shipped example parses
         * for serve; capture then reports the missing interface. */
        for (yaml_node_item_t *it = value->data.sequence.items.start;
             it < value->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, *it);
            if (item == NULL || item->type != YAML_SCALAR_NODE || scalar_text(item)[0] == '\0')
                return config_error(c, item != NULL ? item : value,
                                    "each entry of %s must be an interface name; remove the "
                                    "nested list or empty entry",
                                    k->name);
            if (option != NULL) {
                int rc = push_option(c, k, item, option, scalar_text(item));
                if (rc != FV_OK)
                    return rc;
            }
        }
        return FV_OK;
    }

    if (value->type != YAML_SCALAR_NODE)
        return config_error(c, value, "%s must be a single value, not a list or mapping",
                            k->name);
    const char *text = scalar_text(value);
    if (text[0] == '\0')
        return config_error(c, value, "%s has an empty value; give a value or remove the key",
                            k->name);

    switch (k->kind) {
    case KIND_PATH:
        if (text[0] != '/')
            return config_error(c, value, "%s must be an absolute path (starting with /), "
                                          "because the service's working directory is not "
                                          "defined; got '%s'",
                                k->name, text);
        break;
    case KIND_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return config_error(c, value, "%s must be true or false, got '%s'", k->name, text);
        if (option != NULL && strcmp(text, "true") == 0)
            return push_option(c, k, value, option, NULL);
        return FV_OK;
    case KIND_UINT: {
        uint64_t v;
        if (!parse_uint(text, &v) || v < k->min || v > k->max)
            return config_error(c, value, "%s must be a whole number from %llu to %llu, got "
                                          "'%s'",
                                k->name, (unsigned long long)k->min,
                                (unsigned long long)k->max, text);
        break;
    }
    case KIND_LOG: {
        bool target = strcmp(k->name, "target") == 0;
        if (!in_list(text, target ? log_targets : log_levels))
            return config_error(c, value,
                                target ? "log target '%s' is invalid; use auto, stderr or syslog"
                                       : "log level '%s' is invalid; use error, warning, "
                                         "notice, info or debug",
                                text);
        char **slot = target ? &c->out->log_target : &c->out->log_level;
        free(*slot);
        *slot = strdup(text);
        return *slot == NULL ? FV_ERR_NOMEM : FV_OK;
    }
    default:
        break;
    }

    if (option == NULL)
        return FV_OK;
    return push_option(c, k, value, option, text);
}

/* Walk the mapping MAP of SECTION (NULL: top level). */
static int walk_mapping(config_ctx *c, const yaml_node_t *map, const char *section)
{
    if (map->type != YAML_MAPPING_NODE) {
        if (section == NULL)
            return config_error(c, map, "the file must be a mapping of settings (key: value); "
                                        "start from dist/flowveil.conf");
        return config_error(c, map, "%s must be a mapping of settings, for example "
                                    "'%s:' followed by indented 'key: value' lines",
                            section, section);
    }

    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node(c->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(c->doc, pair->value);
        if (key == NULL || value == NULL)
            return config_error(c, map, "damaged mapping");
        if (key->type != YAML_SCALAR_NODE)
            return config_error(c, key, "keys must be plain names");
        const char *name = scalar_text(key);

        if (section == NULL && (strcmp(name, "log") == 0 || strcmp(name, "capture") == 0 ||
                                strcmp(name, "serve") == 0)) {
            /* A repeated section would silently replace the first one. */
            for (yaml_node_pair_t *prev = map->data.mapping.pairs.start; prev < pair; prev++) {
                yaml_node_t *pk = yaml_document_get_node(c->doc, prev->key);
                if (pk != NULL && pk->type == YAML_SCALAR_NODE &&
                    strcmp(scalar_text(pk), name) == 0)
                    return config_error(c, key, "section %s appears twice; merge the two", name);
            }
            int rc = walk_mapping(c, value, name);
            if (rc != FV_OK)
                return rc;
            continue;
        }

        size_t i;
        for (i = 0; i < CONFIG_KEY_COUNT; i++) {
            const config_key *k = &config_keys[i];
            bool same_section = section == NULL
                                    ? k->section == NULL
                                    : k->section != NULL && strcmp(k->section, section) == 0;
            if (same_section && strcmp(k->name, name) == 0)
                break;
        }
        if (i == CONFIG_KEY_COUNT) {
            char keys[512];
            section_keys(section, keys, sizeof keys);
            return config_error(c, key, "unknown key '%s'%s%s; the valid keys here are: %s", name,
                                section != NULL ? " in section " : "",
                                section != NULL ? section : "", keys);
        }
        if (c->seen[i])
            return config_error(c, key, "key '%s' appears twice; keep one", name);
        c->seen[i] = true;

        int rc = apply_value(c, &config_keys[i], value);
        if (rc != FV_OK)
            return rc;
    }
    return FV_OK;
}

/* Read PATH whole into a new buffer. */
static int read_whole_file(const char *path, unsigned char **out, size_t *out_len, char *err,
                           size_t err_len)
{
    *out = NULL;
    char open_err[768];
    FILE *f = fv_fopen_regular_file(path, open_err, sizeof open_err);
    if (f == NULL) {
        snprintf(err, err_len, "settings file: %s; check the path given to --config",
                 open_err);
        return FV_ERR_IO;
    }
    unsigned char *buf = malloc(CONFIG_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return FV_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        snprintf(err, err_len, "%s: reading the settings file failed", path);
        return FV_ERR_IO;
    }
    if (n > CONFIG_MAX_BYTES) {
        free(buf);
        snprintf(err, err_len, "%s: the settings file exceeds %d bytes; is it the right file?",
                 path, CONFIG_MAX_BYTES);
        return FV_ERR_INVALID;
    }
    *out = buf;
    *out_len = n;
    return FV_OK;
}

int fv_config_load(const char *path, const char *command, fv_config_args *out, char *err,
                   size_t err_len)
{
    memset(out, 0, sizeof *out);
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = read_whole_file(path, &text, &len, err, err_len);
    if (rc != FV_OK)
        return rc;

    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_doc = false;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        return FV_ERR_NOMEM;
    }
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, err_len, "%s:%lu:%lu: invalid YAML: %s; fix the syntax (indent with "
                               "spaces, 'key: value')",
                 path, (unsigned long)parser.problem_mark.line + 1,
                 (unsigned long)parser.problem_mark.column + 1,
                 parser.problem != NULL ? parser.problem : "parse error");
        rc = FV_ERR_PARSE;
        goto out;
    }
    have_doc = true;

    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        /* An empty file sets nothing. */
        rc = FV_OK;
        goto out;
    }
    config_ctx c = {.path = path, .command = command, .doc = &doc, .out = out, .err = err,
                    .err_len = err_len};
    rc = walk_mapping(&c, root, NULL);

out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    return rc;
}

void fv_config_args_free(fv_config_args *args)
{
    if (args == NULL)
        return;
    for (size_t i = 0; i < args->argc; i++) {
        free(args->argv[i]);
        free(args->origins[i]);
    }
    free(args->argv);
    free(args->origins);
    free(args->log_target);
    free(args->log_level);
    memset(args, 0, sizeof *args);
}

/* Return true if WORD on the command line sets the option LONG_NAME
 * ("--interface") or SHORT_NAME ('i'): "--interface", "--interface=eth0",
 * "-i" or "-ieth0". */
static bool word_sets_option(const char *word, const char *long_name, char short_name)
{
    if (long_name != NULL) {
        size_t n = strlen(long_name);
        if (strncmp(word, long_name, n) == 0 && (word[n] == '\0' || word[n] == '='))
            return true;
    }
    return short_name != 0 && word[0] == '-' && word[1] == short_name;
}

/* Return true if ARGS (the command line after the command) sets the
 * option of K for COMMAND. */
static bool command_line_sets(const config_key *k, bool capture, int argc, char **argv)
{
    const char *long_name = capture ? k->capture_option : k->serve_option;
    char short_name = k->serve_short;
    if (capture)
        short_name = k->capture_short;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (word_sets_option(argv[i], long_name, short_name))
            return true;
    }
    return false;
}

/* Choose the log target for "auto": stderr when a person or a program
 * reads it (a terminal, a pipe or a file), syslog otherwise (a journal
 * socket, /dev/null or a closed descriptor). */
static fv_log_target auto_log_target(void)
{
    struct stat st;
    if (isatty(STDERR_FILENO))
        return FV_LOG_TO_STDERR;
    if (fstat(STDERR_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode)))
        return FV_LOG_TO_STDERR;
    return FV_LOG_TO_SYSLOG;
}

static fv_log_level level_from_name(const char *name)
{
    for (int i = 0; log_levels[i] != NULL; i++) {
        if (strcmp(name, log_levels[i]) == 0)
            return (fv_log_level)i;
    }
    return FV_LOG_NOTICE;
}

/* The new vector of fv_config_prepare_argv and the words of it that came
 * from the file (the others belong to the original argv). Both live
 * until exit, when free_prepared_argv releases them. */
static char **prepared_argv;
static char **prepared_words;
static char **prepared_origins;     /* per entry of prepared_words */
static size_t prepared_word_count;

static void free_prepared_argv(void)
{
    for (size_t i = 0; i < prepared_word_count; i++) {
        free(prepared_words[i]);
        free(prepared_origins[i]);
    }
    free(prepared_words);
    free(prepared_origins);
    free(prepared_argv);
    prepared_words = NULL;
    prepared_origins = NULL;
    prepared_word_count = 0;
    prepared_argv = NULL;
}

/* Take the value of option NAME at ARGV[*I] ("--name VALUE" or
 * "--name=VALUE") into *VALUE and advance *I past it. Returns 1 if the
 * word is that option, 0 if not, -1 if the value is missing. */
static int take_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *word = argv[*i];
    if (strncmp(word, name, n) != 0)
        return 0;
    if (word[n] == '=') {
        *value = word + n + 1;
        return 1;
    }
    if (word[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[*i + 1];
    (*i)++;
    return 1;
}

int fv_config_prepare_argv(int *argc, char ***argv)
{
    int in_argc = *argc;
    char **in_argv = *argv;
    if (in_argc < 2)
        return -1;
    const char *command = in_argv[1];
    bool capture = strcmp(command, "capture") == 0;
    if (!capture && strcmp(command, "serve") != 0)
        return -1;

    const char *config_path = NULL, *log_target = NULL, *log_level = NULL;
    char **rest = calloc((size_t)in_argc + 1, sizeof *rest);
    if (rest == NULL) {
        fprintf(stderr, "flowveil: error: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int n_rest = 0;
    bool after_dashes = false;
    for (int i = 2; i < in_argc; i++) {
        const char *value = NULL;
        int got = 0;
        if (!after_dashes && strcmp(in_argv[i], "--") == 0)
            after_dashes = true;
        if (!after_dashes) {
            const char *names[] = {"--config", "--log-level", "--log"};
            const char **slots[] = {&config_path, &log_level, &log_target};
            for (size_t j = 0; j < 3 && got == 0; j++) {
                got = take_option(in_argc, in_argv, &i, names[j], &value);
                if (got == 1)
                    *slots[j] = value;
                else if (got < 0) {
                    free(rest);
                    return usage_error(command, "option '%s' needs a value", names[j]);
                }
            }
        }
        if (got == 0)
            rest[n_rest++] = in_argv[i];
    }

    if (log_target != NULL && !in_list(log_target, log_targets)) {
        free(rest);
        return usage_error(command, "invalid --log '%s'; use auto, stderr or syslog",
                               log_target);
    }
    if (log_level != NULL && !in_list(log_level, log_levels)) {
        free(rest);
        return usage_error(command, "invalid --log-level '%s'; use error, warning, notice, "
                                        "info or debug",
                               log_level);
    }

    fv_config_args file = {0};
    if (config_path != NULL) {
        char err[1024];
        int rc = fv_config_load(config_path, command, &file, err, sizeof err);
        if (rc != FV_OK) {
            if (rc == FV_ERR_NOMEM)
                fprintf(stderr, "flowveil: error: %s: out of memory reading the settings\n",
                        config_path);
            else
                fprintf(stderr, "flowveil: error: %s\n", err);
            fv_config_args_free(&file);
            free(rest);
            return CLI_EXIT_FAILURE;
        }
    }
    if (log_target == NULL)
        log_target = file.log_target;
    if (log_level == NULL)
        log_level = file.log_level;

    /* The file's options first, without those the command line sets. */
    char **out = calloc((size_t)in_argc + file.argc + 1, sizeof *out);
    char **owned = calloc(file.argc + 1, sizeof *owned);
    char **owned_origins = calloc(file.argc + 1, sizeof *owned_origins);
    if (out == NULL || owned == NULL || owned_origins == NULL) {
        free(out);
        free(owned);
        free(owned_origins);
        fv_config_args_free(&file);
        free(rest);
        fprintf(stderr, "flowveil: error: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int n_out = 0;
    size_t n_owned = 0;
    out[n_out++] = in_argv[0];
    out[n_out++] = in_argv[1];
    for (size_t w = 0; w < file.argc;) {
        const config_key *k = NULL;
        for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
            const char *opt = capture ? config_keys[i].capture_option
                                      : config_keys[i].serve_option;
            if (opt != NULL && strcmp(opt, file.argv[w]) == 0) {
                k = &config_keys[i];
                break;
            }
        }
        size_t words = (k != NULL && k->kind == KIND_BOOL) ? 1 : 2;
        if (k == NULL || !command_line_sets(k, capture, n_rest, rest)) {
            for (size_t j = 0; j < words && w + j < file.argc; j++) {
                out[n_out++] = file.argv[w + j];
                owned_origins[n_owned] = file.origins[w + j];
                owned[n_owned++] = file.argv[w + j];
                file.argv[w + j] = NULL;   /* now freed by free_prepared_argv */
                file.origins[w + j] = NULL;
            }
        }
        w += words;
    }
    for (int i = 0; i < n_rest; i++)
        out[n_out++] = rest[i];
    out[n_out] = NULL;
    free(rest);

    fv_log_target target = FV_LOG_TO_STDERR;
    if (log_target == NULL || strcmp(log_target, "auto") == 0)
        target = auto_log_target();
    else if (strcmp(log_target, "syslog") == 0)
        target = FV_LOG_TO_SYSLOG;
    if (log_level != NULL)
        fv_log_set_level(level_from_name(log_level));
    fv_log_set_target(target);
    fv_config_args_free(&file);

    free_prepared_argv();
    prepared_argv = out;
    prepared_words = owned;
    prepared_origins = owned_origins;
    prepared_word_count = n_owned;
    static bool cleanup_registered;
    if (!cleanup_registered)
        cleanup_registered = atexit(free_prepared_argv) == 0;
    *argc = n_out;
    *argv = prepared_argv;
    return -1;
}

const char *fv_config_word_origin(const char *word)
{
    for (size_t i = 0; word != NULL && i < prepared_word_count; i++) {
        if (prepared_words[i] == word)
            return prepared_origins[i];
    }
    return NULL;
}

int fv_config_value_error(const char *command, const char *option, const char *value,
                          const char *fmt, ...)
{
    const char *origin = fv_config_word_origin(value);
    va_list ap;
    if (origin != NULL)
        fprintf(stderr, "flowveil: error: %s: invalid value '%s': ", origin, value);
    else
        fprintf(stderr, "flowveil: invalid %s '%s': ", option, value);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (origin != NULL) {
        fprintf(stderr, "\n");
        return CLI_EXIT_FAILURE;
    }
    fprintf(stderr, "\nTry 'flowveil %s --help'.\n", command);
    return CLI_EXIT_USAGE;
}

void fv_config_print_error(const char *err, const char *value)
{
    const char *origin = fv_config_word_origin(value);
    if (origin != NULL && strstr(err, value) != NULL)
        fprintf(stderr, "flowveil: error: %s (the path %s is set by %s of the settings file)\n",
                err, value, origin);
    else
        fprintf(stderr, "flowveil: error: %s\n", err);
}
