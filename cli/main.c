/*
 * main.c: the `flowveil` command: subcommand dispatch and option parsing.
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "config.h"
#include "pipeline.h"

#ifndef FLOWVEIL_VERSION
#define FLOWVEIL_VERSION "0.0.0"
#endif

static volatile sig_atomic_t stop_requested;

/* Install FN as the handler of SIG with FLAGS, blocking no other signal. */
static void install_handler(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void cli_install_stop_handlers(void)
{
    /* No SA_RESTART: a read blocked on a pipe ends with EINTR, so a stop
     * does not wait for the next packet. */
    install_handler(SIGINT, on_stop_signal, 0);
    install_handler(SIGTERM, on_stop_signal, 0);
    signal(SIGPIPE, SIG_IGN);
}

void cli_install_hangup_stop_handler(void)
{
    /* A SIGHUP that the parent ignores (nohup) stays ignored. */
    struct sigaction old;
    if (sigaction(SIGHUP, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
        return;
    install_handler(SIGHUP, on_stop_signal, 0);
}

volatile sig_atomic_t *cli_stop_flag(void)
{
    return &stop_requested;
}

static volatile sig_atomic_t reload_requested;

static void on_reload_signal(int sig)
{
    (void)sig;
    reload_requested = 1;
}

void cli_install_reload_handler(void)
{
    /* A blocking read (ingest from a pipe) resumes after the handler.
     * poll, nanosleep and sigsuspend, which the loops wait in, still
     * return early, so the flag is seen at once. */
    install_handler(SIGHUP, on_reload_signal, SA_RESTART);
}

bool cli_reload_take(void)
{
    if (!reload_requested)
        return false;
    reload_requested = 0;
    return true;
}

static volatile sig_atomic_t counters_requested;

static void on_counters_signal(int sig)
{
    (void)sig;
    counters_requested = 1;
}

void cli_install_counters_handler(void)
{
    /* As for SIGHUP: a counters request must not cut a read short. */
    install_handler(SIGUSR1, on_counters_signal, SA_RESTART);
}

bool cli_counters_take(void)
{
    if (!counters_requested)
        return false;
    counters_requested = 0;
    return true;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flowveil: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'flowveil %s --help'.\n", command);
    return CLI_EXIT_USAGE;
}

int cli_parse_seconds(const char *command, const char *option, const char *text, uint64_t *out)
{
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!(text[0] >= '0' && text[0] <= '9') || *end != '\0' || errno != 0 || v == 0 ||
        v > 253402300799ull) {
        return cli_usage_error(command,
                               "invalid %s value '%s': expected whole seconds since "
                               "1970-01-01 UTC from 1 to 253402300799, e.g. 1764489600",
                               option, text);
    }
    *out = (uint64_t)v;
    return CLI_EXIT_OK;
}

int cli_check_now_not_future(const char *command, uint64_t now_s, bool allowed)
{
    time_t clock_s = time(NULL);
    if (allowed || clock_s == (time_t)-1 || now_s <= (uint64_t)clock_s + CLI_NOW_FUTURE_SLACK_S)
        return CLI_EXIT_OK;
    uint64_t days = (now_s - (uint64_t)clock_s) / 86400u;
    return cli_usage_error(command,
                           "--now %llu is %llu day%s after this machine's clock; a sweep at that "
                           "time deletes records before their retention limit and destroys "
                           "their keys, which cannot be undone. Check the value, or add "
                           "--allow-future-now if you mean to apply retention as of that time",
                           (unsigned long long)now_s, (unsigned long long)days,
                           days == 1 ? "" : "s");
}

/*
 * Flush and close standard output after a command returned STATUS. A
 * result printed to a full disk must not end with exit status 0, so a
 * failed write turns STATUS 0 into 1 with a message.
 */
static int finish_stdout(int status)
{
    int e = 0;
    if (fflush(stdout) != 0)
        e = errno;
    else if (ferror(stdout))
        e = EIO;    /* an earlier write failed; its errno is gone */
    errno = 0;
    /* EBADF: standard output was closed before the start, and nothing
     * was written to it. */
    if (fclose(stdout) != 0 && e == 0 && errno != EBADF)
        e = errno != 0 ? errno : EIO;
    /* EPIPE: the reader ended early, as `| head` does. A command that
     * failed has reported its own error already. */
    if (e == 0 || e == EPIPE || status != CLI_EXIT_OK)
        return status;
    fprintf(stderr, "flowveil: error: writing the output failed: %s\n", strerror(e));
    return CLI_EXIT_FAILURE;
}

/* The subcommand being run, for the help hint of option errors. */
static const char *current_command = "COMMAND";

/* Options that collect one value per use, by subcommand. */
static bool option_repeatable(const char *long_name)
{
    static const struct {
        const char *command, *option;
    } repeatable[] = {
        {"capture", "interface"},
        {"collect", "listen"},
        {"export", "kafka-property"},
    };
    for (size_t i = 0; i < sizeof repeatable / sizeof repeatable[0]; i++) {
        if (strcmp(current_command, repeatable[i].command) == 0 &&
            strcmp(long_name, repeatable[i].option) == 0)
            return true;
    }
    return false;
}

#undef getopt_long
int cli_getopt_long(int argc, char *const argv[], const char *shortopts,
                    const struct option *longopts, int *longindex)
{
    /* Values of the current parse by option; a parse starts at optind 1. */
    static struct {
        int val;
        const char *value;
    } seen[64];
    static size_t seen_len;
    if (optind <= 1)
        seen_len = 0;

    int index = -1;
    int c = getopt_long(argc, argv, shortopts, longopts, &index);
    if (longindex != NULL)
        *longindex = index;
    if (c == -1 || c == '?' || c == ':' || optarg == NULL)
        return c;

    /* The long name, also for the short form of the option. */
    const struct option *opt = index >= 0 ? &longopts[index] : NULL;
    for (size_t i = 0; opt == NULL && longopts != NULL && longopts[i].name != NULL; i++) {
        if (longopts[i].flag == NULL && longopts[i].val == c)
            opt = &longopts[i];
    }
    if (opt == NULL || opt->has_arg != required_argument)
        return c;

    if (optarg[0] == '\0')
        exit(cli_usage_error(current_command, "--%s needs a value, but an empty one was given; "
                                              "give --%s VALUE or leave the option out",
                             opt->name, opt->name));
    if (option_repeatable(opt->name) || fv_config_word_origin(optarg) != NULL)
        return c;
    for (size_t i = 0; i < seen_len; i++) {
        if (seen[i].val == c && fv_config_word_origin(seen[i].value) == NULL)
            exit(cli_usage_error(current_command, "--%s given twice ('%s' and '%s'); give it "
                                                  "once",
                                 opt->name, seen[i].value, optarg));
    }
    if (seen_len < sizeof seen / sizeof seen[0]) {
        seen[seen_len].val = c;
        seen[seen_len].value = optarg;
        seen_len++;
    }
    return c;
}

static void print_main_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil COMMAND [OPTIONS]\n"
            "\n"
            "Private-by-construction network traffic analysis.\n"
            "\n"
            "Commands:\n"
            "  ingest     read pcap/pcapng files into the store\n"
            "  capture    capture live from an interface until SIGINT/SIGTERM\n"
            "  collect    receive NetFlow v5/v9 and IPFIX from exporters over UDP\n"
            "  serve      serve the dashboard and the JSON API\n"
            "  export     write stored records as JSON Lines, or send them by IPFIX or Kafka\n"
            "  sweep      delete records past their retention limit now\n"
            "  retention  show retention status per record class\n"
            "  policy     validate a policy file and summarize it\n"
            "  keys       key epoch, officer keys and the key authority of several sensors\n"
            "  audit      verify or list the hash-chained audit trail\n"
            "  report     write the record of processing or the transparency notice\n"
            "  reveal     open an escrow entry with the officers' keys (audited)\n"
            "  subject    export or erase the records of one data subject (audited)\n"
            "  user       add, remove or list dashboard users, change passwords (audited)\n"
            "  token      create, list or revoke API tokens (audited)\n"
            "  version    print the version (also --version)\n"
            "\n"
            "Run 'flowveil COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];

    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        print_main_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("flowveil %s\n", FLOWVEIL_VERSION);
        return CLI_EXIT_OK;
    }

    /* --config, --log and --log-level of capture and serve (config.c). */
    int config_status = fv_config_prepare_argv(&argc, &argv);
    if (config_status >= 0)
        return config_status;

    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } commands[] = {
        {"ingest", cli_cmd_ingest},   {"capture", cli_cmd_capture},
        {"serve", cli_cmd_serve},     {"export", cli_cmd_export},
        {"sweep", cli_cmd_sweep},     {"retention", cli_cmd_retention},
        {"policy", cli_cmd_policy},   {"keys", cli_cmd_keys},
        {"report", cli_cmd_report},   {"audit", cli_cmd_audit},
        {"reveal", cli_cmd_reveal},   {"subject", cli_cmd_subject},
        {"user", cli_cmd_user},       {"token", cli_cmd_token},
        {"collect", cli_cmd_collect},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            current_command = cmd;
            return finish_stdout(commands[i].fn(argc - 1, argv + 1));
        }
    }

    fprintf(stderr, "flowveil: unknown command '%s'\n", cmd);
    print_main_usage(stderr);
    return CLI_EXIT_USAGE;
}
