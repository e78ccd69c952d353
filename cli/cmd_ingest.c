/*
 * cmd_ingest.c: `flowveil ingest` (capture files) and `flowveil capture`
 * (live interface). Both run the pipeline; they differ in the packet
 * source and in how time advances.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "aggregate.h"
#include "checkpoint.h"
#include "ingest_repeat.h"
#include "pipeline.h"
#include "privdrop.h"
#include "test_hooks.h"
#include "workers.h"
#include "capture_live.h"
#include "config.h"

static void print_ingest_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil ingest --policy FILE --db DIR [--filter BPF] [--now SECONDS]\n"
            "                       [--allow-future-now] [--workers N] [--flow-memory MIB] [-v]\n"
            "                       CAPTURE...\n"
            "\n"
            "Read pcap or pcapng files (CAPTURE '-' is standard input, once), reduce them to\n"
            "pseudonymized metadata, store it in DIR and run the detectors. An interrupted\n"
            "ingest of files resumes when the same command runs again, without storing twice\n"
            "what it committed.\n"
            "\n"
            "  -p, --policy FILE   compliance policy (YAML)\n"
            "  -d, --db DIR        store directory (created if missing)\n"
            "  -f, --filter BPF    only read packets matching this BPF expression\n"
            "      --now SECONDS   use this time (seconds since 1970 UTC) as the stored-at\n"
            "                      time instead of the clock, for tests and replays; the\n"
            "                      store is swept as of that time\n"
            "      --allow-future-now\n"
            "                      accept a --now more than one day after the clock\n"
            "      --workers N     decode with N threads (1 to the number of CPUs, default\n"
            "                      1); a reader thread spreads packets by flow and this\n"
            "                      thread stores the records\n"
            "      --flow-memory MIB  memory for flow state in MiB (1 to 1048576, default\n"
            "                      256); beyond it the oldest flows are evicted\n"
            "  -v, --verbose       print more progress information, among it a line after\n"
            "                      every commit instead of one every 10 seconds\n"
            "\n"
            "Signals: SIGINT, SIGTERM or SIGHUP stop after the current packet (run the same\n"
            "command again to resume), SIGUSR1 logs the running counters.\n");
}

static void print_capture_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil capture --policy FILE --db DIR -i IFACE [-i IFACE]...\n"
            "                        [--filter BPF] [-Z USER] [--chroot] [--snaplen BYTES]\n"
            "                        [--buffer-size MIB] [--config FILE] [--log TARGET]\n"
            "                        [--log-level LEVEL] [--workers N] [--flow-memory MIB] [-v]\n"
            "\n"
            "Capture live until SIGINT or SIGTERM, then flush open flows and exit.\n"
            "\n"
            "  -p, --policy FILE   compliance policy (YAML)\n"
            "  -d, --db DIR        store directory (created if missing)\n"
            "  -i, --interface IF  network interface to capture on; repeat for several\n"
            "                      interfaces (at most 16), captured together\n"
            "  -f, --filter BPF    only capture packets matching this BPF expression\n"
            "                      (the policy's excluded subnets are always filtered)\n"
            "  -Z, --user USER     after opening the store, the key file and the interface\n"
            "                      as root, switch to USER and its groups, clear every\n"
            "                      capability and set no_new_privs; exit 1 if any step\n"
            "                      fails. SIGHUP then rereads the policy as USER\n"
            "      --chroot        after opening, chroot to the store directory (before -Z);\n"
            "                      SIGHUP then rereads the policy only if it lies inside it\n"
            "      --snaplen BYTES bytes kept of each frame, 256 to 262144 (default 65535)\n"
            "      --buffer-size MIB  kernel ring per interface in MiB (default 64)\n"
            "      --config FILE   read daemon settings from FILE (YAML); options given on\n"
            "                      the command line override them\n"
            "      --log TARGET    auto, stderr or syslog (default auto: stderr when it is a\n"
            "                      terminal, pipe or file, otherwise syslog)\n"
            "      --log-level L   error, warning, notice (default), info or debug\n"
            "      --workers N     capture with N threads (1 to the number of CPUs, default\n"
            "                      1), each with its own socket in a PACKET_FANOUT group,\n"
            "                      so both directions of a flow reach one thread\n"
            "      --flow-memory MIB  memory for flow state in MiB (1 to 1048576, default\n"
            "                      256); beyond it the oldest flows are evicted\n"
            "  -v, --verbose       print more progress information, among it a line after\n"
            "                      every commit instead of one every 10 seconds\n"
            "\n"
            "Signals: SIGINT or SIGTERM stop after flushing open flows, SIGHUP rereads the\n"
            "policy, SIGUSR1 logs the running counters.\n");
}

/* Options shared by ingest and capture. */
typedef struct run_options {
    const char *policy;
    const char *db;
    const char *filter;
    const char *iface;
    const char *user;
    uint64_t now_s;
    bool allow_future_now;      /* --allow-future-now */
    fv_live_settings live;      /* capture only */
    unsigned workers;           /* --workers; 1 runs without worker threads */
    uint64_t flow_memory_bytes; /* --flow-memory; 0 keeps the engine's default */
} run_options;

enum {
    OPT_NOW = 256, OPT_CHROOT, OPT_SNAPLEN, OPT_BUFFER_SIZE, OPT_WORKERS, OPT_FLOW_MEMORY,
    OPT_ALLOW_FUTURE_NOW
};

/*
 * Parse the --flow-memory value TEXT, in MiB, into *OUT in bytes: the
 * capture engine's bound on flow state (cap_config.max_memory_bytes).
 * Returns -1 to go on, or the usage exit status.
 */
static int parse_flow_memory(const char *command, const char *text, uint64_t *out)
{
    const unsigned long long max_mib = CAP_MEMORY_MAX_BYTES >> 20;
    char *end = NULL;
    errno = 0;
    unsigned long long mib = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || end == text || *end != '\0' || errno != 0 ||
        mib < (CAP_MEMORY_MIN_BYTES >> 20) || mib > max_mib)
        return fv_config_value_error(command, "--flow-memory", text,
                                     "give a whole number of MiB from %llu to %llu "
                                     "(default %llu)",
                                     (unsigned long long)(CAP_MEMORY_MIN_BYTES >> 20), max_mib,
                                     (unsigned long long)(CAP_MEMORY_DEFAULT_BYTES >> 20));
    *out = (uint64_t)mib << 20;
    return -1;
}

/* Apply --flow-memory to P's engine; the worker engines take their share
 * from it (workers.c). Returns false after a message when it failed. */
static bool apply_flow_memory(fv_pipeline *p, const run_options *o)
{
    if (o->flow_memory_bytes == 0)
        return true;
    int rc = cap_engine_set_memory_limit(p->capture, o->flow_memory_bytes);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: setting --flow-memory to %llu MiB failed: %s; give "
                        "a smaller value\n",
                (unsigned long long)(o->flow_memory_bytes >> 20), fv_strerror(rc));
        return false;
    }
    return true;
}

/*
 * Parse the --workers value TEXT into *OUT: 1 to the number of online
 * CPUs (at most FV_WORKERS_MAX), because more threads than cores only
 * add switching. Returns -1 to go on, or the usage exit status.
 */
static int parse_workers(const char *command, const char *text, unsigned *out)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned max = cpus > 0 && cpus < FV_WORKERS_MAX ? (unsigned)cpus : FV_WORKERS_MAX;
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || end == text || *end != '\0' || errno != 0 || n < 1 ||
        n > max)
        return fv_config_value_error(command, "--workers", text,
                                     "give a whole number from 1 to %u (the number of online "
                                     "CPUs)",
                                     max);
    *out = (unsigned)n;
    return -1;
}

/* Parse options for COMMAND ("ingest" or "capture"). Returns -1 to go
 * on, or an exit status. */
static int parse_run_options(const char *command, int argc, char **argv, run_options *o)
{
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"filter", required_argument, NULL, 'f'},
        {"interface", required_argument, NULL, 'i'},
        {"user", required_argument, NULL, 'Z'},
        {"now", required_argument, NULL, OPT_NOW},
        {"allow-future-now", no_argument, NULL, OPT_ALLOW_FUTURE_NOW},
        {"chroot", no_argument, NULL, OPT_CHROOT},
        {"snaplen", required_argument, NULL, OPT_SNAPLEN},
        {"buffer-size", required_argument, NULL, OPT_BUFFER_SIZE},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"flow-memory", required_argument, NULL, OPT_FLOW_MEMORY},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool is_capture = strcmp(command, "capture") == 0;

    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    int status;
    while ((c = getopt_long(argc, argv, is_capture ? ":p:d:f:i:Z:vh" : ":p:d:f:vh", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'p': o->policy = optarg; break;
        case 'd': o->db = optarg; break;
        case 'f': o->filter = optarg; break;
        case 'i':
            if (!is_capture)
                return cli_usage_error(command, "option --interface belongs to 'flowveil "
                                                "capture'; ingest reads files");
            o->iface = optarg;
            status = fv_live_add_iface(&o->live, optarg);
            if (status >= 0)
                return status;
            break;
        case OPT_CHROOT:
        case OPT_SNAPLEN:
        case OPT_BUFFER_SIZE:
            if (!is_capture)
                return cli_usage_error(command, "option '%s' belongs to 'flowveil capture'",
                                       argv[optind - 1]);
            status = -1;
            if (c == OPT_CHROOT)
                o->live.chroot = true;
            else if (c == OPT_SNAPLEN)
                status = fv_live_parse_snaplen(&o->live, optarg);
            else
                status = fv_live_parse_buffer(&o->live, optarg);
            if (status >= 0)
                return status;
            break;
        case 'Z':
            if (!is_capture)
                return cli_usage_error(command, "option --user belongs to 'flowveil capture'; "
                                                "ingest opens no interface");
            o->user = optarg;
            break;
        case OPT_NOW:
            if (is_capture)
                return cli_usage_error(command, "option --now is for ingest only; live "
                                                "capture always uses the clock");
            if (cli_parse_seconds(command, "--now", optarg, &o->now_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_ALLOW_FUTURE_NOW:
            if (is_capture)
                return cli_usage_error(command, "option --allow-future-now is for ingest "
                                                "only; live capture always uses the clock");
            o->allow_future_now = true;
            break;
        case OPT_WORKERS:
            status = parse_workers(command, optarg, &o->workers);
            if (status >= 0)
                return status;
            break;
        case OPT_FLOW_MEMORY:
            status = parse_flow_memory(command, optarg, &o->flow_memory_bytes);
            if (status >= 0)
                return status;
            break;
        case 'v': fv_log_set_level(FV_LOG_INFO); break;
        case 'h':
            if (is_capture)
                print_capture_usage(stdout);
            else
                print_ingest_usage(stdout);
            return CLI_EXIT_OK;
        case ':':
            return cli_usage_error(command, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(command, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (o->workers == 0)
        o->workers = 1;
    if (o->policy == NULL)
        return cli_usage_error(command, "missing --policy FILE (start from "
                                        "policy/example-policy.yaml)");
    if (o->db == NULL)
        return cli_usage_error(command, "missing --db DIR (the store directory)");
    if (is_capture && o->iface == NULL)
        return cli_usage_error(command, "missing -i IFACE (the interface to capture on)");
    /* Ingest sweeps the store at --now, so a mistyped future time would
     * delete records before their retention limit. */
    if (o->now_s != 0 && cli_check_now_not_future(command, o->now_s, o->allow_future_now) !=
                             CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    return -1;
}

static void print_totals(const fv_pipeline *p)
{
    fv_checkpoint_log_pending();
    cap_stats st;
    fv_pipeline_stats(p, &st);
    fv_notice("%llu packets (%llu not IP, %llu truncated, %llu malformed headers, %llu on "
              "unsupported link types), %llu flows, %llu dns, %llu tls, %llu http, %llu dhcp, "
              "%llu ssh, %llu aggregates records, %llu alerts",
              (unsigned long long)st.packets, (unsigned long long)st.non_ip,
              (unsigned long long)st.truncated, (unsigned long long)st.bad_header,
              (unsigned long long)st.unsupported_link,
              (unsigned long long)p->records[FV_CLASS_FLOW],
              (unsigned long long)p->records[FV_CLASS_DNS],
              (unsigned long long)p->records[FV_CLASS_TLS],
              (unsigned long long)p->records[FV_CLASS_HTTP],
              (unsigned long long)p->records[FV_CLASS_DHCP],
              (unsigned long long)p->records[FV_CLASS_SSH],
              (unsigned long long)p->records[FV_CLASS_AGGREGATE],
              (unsigned long long)p->records[FV_CLASS_ALERT]);
}

/* Log the running counters on one line (SIGUSR1). Parser rejections
 * sum the frames whose link or IP header was cut short or invalid and
 * the DNS, TLS, HTTP, DHCP, SSH and NBNS messages their parsers
 * rejected as malformed. LIVE adds libpcap's kernel and interface drop
 * counts, which files do not have. */
static void log_counters(const fv_pipeline *p, bool live)
{
    cap_stats st;
    fv_pipeline_stats(p, &st);
    uint64_t rejected = st.truncated + st.bad_header + st.dns_malformed + st.tls_malformed +
                        st.http_malformed + st.dhcp_malformed + st.dhcp_bad_options +
                        st.ssh_bad_banner + st.ssh_bad_kexinit + st.nbns_malformed;

    char records[256];
    size_t used = 0;
    records[0] = '\0';
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        int n = snprintf(records + used, sizeof records - used, " %s=%llu",
                         fv_class_name((fv_class)c), (unsigned long long)p->records[c]);
        if (n < 0 || !((size_t)n < sizeof records - used))
            break;
        used += (size_t)n;
    }

    char drops[128] = "";
    if (live)
        snprintf(drops, sizeof drops, ", dropped kernel=%llu interface=%llu queue=%llu",
                 (unsigned long long)st.pcap_dropped, (unsigned long long)st.pcap_if_dropped,
                 (unsigned long long)st.queue_dropped_records);

    fv_notice("counters: %llu packets, %llu bytes, flows active=%llu emitted=%llu "
              "evicted=%llu, records%s%s, %llu parser rejections",
              (unsigned long long)st.packets, (unsigned long long)st.bytes,
              (unsigned long long)st.flows_active, (unsigned long long)st.flows_emitted,
              (unsigned long long)st.flows_evicted, records, drops,
              (unsigned long long)rejected);
}

/* fv_pipeline.after_commit of ingest: log the counters for a SIGUSR1 that
 * arrived while a file is read, at the commit after it (every 4,096
 * records). */
static void ingest_after_commit(const fv_pipeline *p)
{
    if (cli_counters_take())
        log_counters(p, false);
}

/* Add this run's packet and flow counts to the store's ingest counters. */
static void record_counters(fv_pipeline *p, uint64_t files)
{
    cap_stats st;
    fv_pipeline_stats(p, &st);
    store_counters delta = {
        .packets = st.packets,
        .bytes = st.bytes,
        .flows = p->records[FV_CLASS_FLOW],
        .files = files,
        .last_ingest_us = fv_pipeline_now_us(p),
    };
    if (store_counters_add(p->store, &delta) != FV_OK)
        fv_warning("could not update the ingest counters in the store");
}

/* Fill E with the audit entry of an ingest or capture run by ACTOR. Its
 * parameters are the files read (ingest only), the input identity
 * INPUT_ID of a completed ingest (NULL or "" for none, see
 * ingest_repeat.h) and the records stored per class by this process. */
static void run_audit_entry(fv_pipeline *p, const char *actor, const char *action,
                            const char *object, bool with_files, uint64_t files,
                            const char *input_id, store_audit_entry *e)
{
    char params[512];
    size_t used = 0;
    uint64_t total = 0;
    if (with_files) {
        int n = snprintf(params, sizeof params, "files=%llu&", (unsigned long long)files);
        if (n > 0 && (size_t)n < sizeof params)
            used = (size_t)n;
    }
    if (input_id != NULL && input_id[0] != '\0') {
        int n = snprintf(params + used, sizeof params - used, "input=%s&", input_id);
        if (n > 0 && (size_t)n < sizeof params - used)
            used += (size_t)n;
    }
    params[used] = '\0';
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        total += p->records[c];
        int n = snprintf(params + used, sizeof params - used, "%s%s=%llu", c == 0 ? "" : "&",
                         fv_class_name((fv_class)c), (unsigned long long)p->records[c]);
        if (n < 0 || !((size_t)n < sizeof params - used))
            break;
        used += (size_t)n;
    }
    cli_audit_entry_fill(e, actor, action, object, params, total);
}

/* Append the entry of run_audit_entry. */
static void audit_run(fv_pipeline *p, const char *actor, const char *action, const char *object,
                      bool with_files, uint64_t files, const char *input_id)
{
    store_audit_entry e;
    run_audit_entry(p, actor, action, object, with_files, files, input_id, &e);
    (void)cli_audit_append_entry(p->store, &e);
}

/* How the read of one ingest input ended. */
typedef struct ingest_file_outcome {
    const char *path;       /* as given; "-" is standard input */
    int rc;                 /* cap_read_file's return */
    const char *err;        /* its message when rc is not FV_OK */
    uint64_t packets;       /* as cap_stats.packets counts them: excluded hosts left out */
    bool stopped;           /* a stop signal ended the read, maybe before the end */
} ingest_file_outcome;

/* Counts and status of an ingest run, updated after each input. */
typedef struct ingest_tally {
    bool resumable;         /* no input is standard input, so a checkpoint is kept */
    uint64_t files_read;    /* inputs read to their end, or to a cut-short last record */
    bool files_complete;    /* every input read to its end */
    int exit_status;
} ingest_tally;

/*
 * Log the line of one input and count it in T, the same way with and
 * without --workers. The packet figure is the engine's packet counter,
 * which leaves out the packets of hosts the policy excludes: a file of
 * excluded traffic reads "0 packets processed", as in live capture,
 * where the kernel filter drops those packets before anything counts.
 */
static void report_file(const ingest_file_outcome *f, ingest_tally *t)
{
    const char *name = strcmp(f->path, "-") == 0 ? "standard input" : f->path;
    unsigned long long pkts = (unsigned long long)f->packets;
    const char *plural = pkts == 1 ? "" : "s";

    if (f->rc == FV_OK && f->stopped) {
        fv_notice("%s: stopped by signal after %llu packet%s processed (packets of excluded "
                  "hosts are not counted); %s",
                  name, pkts, plural,
                  t->resumable ? "run the same command again to resume"
                               : "this ingest reads standard input, so it cannot be resumed");
        t->files_complete = false;
    } else if (f->rc == FV_OK) {
        fv_notice("%s: %llu packet%s processed (packets of excluded hosts are not counted)",
                  name, pkts, plural);
        t->files_read++;
    } else if (f->rc == FV_ERR_TRUNCATED) {
        fprintf(stderr, "flowveil: warning: %s (the %llu complete packet%s before the cut "
                        "%s ingested)\n",
                f->err, pkts, plural, pkts == 1 ? "was" : "were");
        t->files_read++;
        t->exit_status = CLI_EXIT_FAILURE;
    } else {
        fprintf(stderr, "flowveil: error: %s\n", f->err);
        t->exit_status = CLI_EXIT_FAILURE;
        t->files_complete = false;
    }
}

/* Writer-thread callback of an ingest with workers (about once a
 * second): the counters line on SIGUSR1 and the periodic commit. */
static void ingest_periodic(void *ctx, uint64_t now_us)
{
    fv_pipeline *p = ctx;
    if (cli_counters_take())
        log_counters(p, false);
    (void)fv_pipeline_tick(p, now_us, false);
}

/*
 * Read the COUNT files of PATHS with WORKERS worker threads (workers.h)
 * and report each file as the single-threaded loop does, in T. Files
 * that a stop signal kept the reader from opening get no line.
 */
static void ingest_with_workers(fv_pipeline *p, unsigned workers, char *const *paths, int count,
                                const char *filter, ingest_tally *t)
{
    fv_workers_file_result *results = calloc((size_t)count, sizeof *results);
    if (results == NULL) {
        fprintf(stderr, "flowveil: error: out of memory for %d file results\n", count);
        t->exit_status = CLI_EXIT_FAILURE;
        t->files_complete = false;
        return;
    }
    fv_info("ingesting with %u worker threads", workers);
    int rc = fv_workers_run_files(p, workers, paths, count, filter, cli_stop_flag(), results,
                                  ingest_periodic, p);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot start %u worker threads: %s; retry with "
                        "--workers 1\n",
                workers, fv_strerror(rc));
        t->exit_status = CLI_EXIT_FAILURE;
        t->files_complete = false;
    }
    for (int i = 0; i < count && rc == FV_OK; i++) {
        if (!results[i].opened)
            continue;
        ingest_file_outcome f = {.path = paths[i],
                                 .rc = results[i].rc,
                                 .err = results[i].err,
                                 .packets = results[i].packets,
                                 .stopped = results[i].stopped};
        report_file(&f, t);
    }
    free(results);
    /* A SIGUSR1 in the last second, after the writer's last periodic
     * call, is answered here, as the single-threaded loop answers it
     * after each file. */
    if (cli_counters_take())
        log_counters(p, false);
}

int cli_cmd_ingest(int argc, char **argv)
{
    run_options o;
    int status = parse_run_options("ingest", argc, argv, &o);
    if (status >= 0)
        return status;
    if (optind >= argc)
        return cli_usage_error("ingest", "no capture files given: name one or more pcap or "
                                         "pcapng files after the options");

    /* Check the filter and the files before the store and the key file
     * are created, so a typo leaves nothing behind. */
    char err[1024];
    if (o.filter != NULL && cap_filter_check(o.filter, err, sizeof err) != FV_OK)
        return cli_usage_error("ingest", "%s", err);
    bool stdin_named = false;
    for (int i = optind; i < argc; i++) {
        struct stat st;
        const char *why = NULL;
        if (strcmp(argv[i], "-") == 0) {
            /* Standard input, as libpcap reads it, and only once. */
            if (stdin_named)
                return cli_usage_error("ingest", "'-' (standard input) is given twice; it can "
                                                 "be read only once, so name it once");
            stdin_named = true;
            continue;
        }
        if (stat(argv[i], &st) != 0)
            why = strerror(errno);  // NOLINT(bugprone-branch-clone): errno of stat, then of access
        else if (!S_ISREG(st.st_mode))
            why = "not a regular file";
        else if (access(argv[i], R_OK) != 0)
            why = strerror(errno);
        if (why != NULL) {
            fprintf(stderr, "flowveil: error: %s: %s; name a readable pcap or pcapng file, or - "
                            "for standard input\n",
                    argv[i], why);
            return CLI_EXIT_FAILURE;
        }
    }

    cli_install_stop_handlers();
    cli_install_hangup_stop_handler();
    cli_install_counters_handler();

    fv_pipeline p;
    if (fv_pipeline_open(&p, o.policy, o.db, o.now_s * 1000000u, err, sizeof err) != FV_OK) {
        fv_config_print_error(err, o.policy);
        return CLI_EXIT_FAILURE;
    }
    if (!apply_flow_memory(&p, &o)) {
        fv_pipeline_close(&p);
        return CLI_EXIT_FAILURE;
    }
    p.after_commit = ingest_after_commit;
    /* The detectors judge the whole input once, at its end, so a run
     * that takes minutes or reads several files raises the alerts of one
     * file read at once. */
    p.detect_at_end_only = true;
    char resume_actor[64];
    cli_audit_local_actor(resume_actor, sizeof resume_actor);
    if (fv_checkpoint_begin(&p, resume_actor, argv + optind, argc - optind, o.filter, err,
                            sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        fv_pipeline_close(&p);
        return CLI_EXIT_FAILURE;
    }
    char input_id[FV_INGEST_INPUT_HEX_LEN];
    fv_ingest_input_id(argv + optind, argc - optind, o.filter, input_id);
    fv_ingest_repeat_warn(&p, input_id);

    ingest_tally tally = {.resumable = true, .files_complete = true,
                          .exit_status = CLI_EXIT_OK};
    for (int i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0)
            tally.resumable = false;    /* no checkpoint (fv_checkpoint_begin) */
    }
    p.input_resumable = tally.resumable;
    if (o.workers > 1)
        ingest_with_workers(&p, o.workers, argv + optind, argc - optind, o.filter, &tally);
    for (int i = optind; i < argc && !*cli_stop_flag() && o.workers <= 1; i++) {
        const char *path = argv[i];
        cap_stats before;
        cap_engine_stats(p.capture, &before);

        /* Exclusions are enforced per packet by the engine, so files only
         * get the user's filter: a BPF "net" test cannot see inside
         * tunnels or every link type a file may hold. */
        int rc = cap_read_file(p.capture, path, o.filter, cli_stop_flag(), err, sizeof err);

        cap_stats after;
        cap_engine_stats(p.capture, &after);
        /* NOTE: a stop that arrives after the last frame but before the
         * end of the file was seen also marks the file stopped. */
        ingest_file_outcome f = {.path = path,
                                 .rc = rc,
                                 .err = err,
                                 .packets = after.packets - before.packets,
                                 .stopped = *cli_stop_flag() != 0};
        report_file(&f, &tally);
        /* A SIGUSR1 during the file was handled at the next commit
         * (ingest_after_commit); one after the last commit is handled here. */
        if (cli_counters_take())
            log_counters(&p, false);
        if (fv_pipeline_tick(&p, fv_pipeline_now_us(&p), false) != FV_OK)
            break;
    }
    /* A stop that arrives once every input was read to its end has
     * nothing left to cut short, so the flush below completes the run.
     * The flag is read once here: a signal during the flush changes
     * nothing either. */
    bool all_read = tally.files_complete && tally.files_read == (uint64_t)(argc - optind);
    bool stopped = *cli_stop_flag() != 0 && !all_read;
    if (stopped) {
        /* The input was not read to its end: a script that checks the
         * exit status must not take this run for a finished one. */
        tally.exit_status = CLI_EXIT_FAILURE;
    }
    if (stopped && tally.resumable) {
        /* The resume reads the files again from the start and skips only
         * records identical to the ones this run stored. So a flow cut
         * here would be stored twice: cut now, and whole by the resume.
         * The resume also feeds every record to the detectors again, so
         * this run neither evaluates them nor saves their state
         * (detect_at_end_only). */
        fv_notice("stopped by signal; open flows are not stored, the resume stores them. "
                  "The detectors were not evaluated and their saved state is unchanged, "
                  "because the resume runs them over all the input");
        p.discard_open = true;
    } else {
        /* Standard input cannot be read again, so after a stop no later
         * run would store the open flows: they are stored as the stop cut
         * them, as live capture does. */
        if (stopped)
            fv_notice("stopped by signal; the flows still open are stored as the stop cut "
                      "them, and the unread rest of the input is lost, because standard input "
                      "cannot be read again to resume. Feeding the same input again stores "
                      "these records a second time: ingest only the part not yet read, or a "
                      "saved copy as a file");
        /* Flush flows and aggregates before counting, so the audit entry
         * and the totals include every record of the run. */
        cap_engine_flush(p.capture);
        fv_aggregator_flush(p.aggregates);
    }
    /* A file error or failed worker start keeps the checkpoint, and the
     * run that finishes the input feeds all of it to the detectors. So
     * this run, like a stopped one, leaves them unevaluated and their
     * saved state as it was. */
    if (!all_read && !stopped && tally.resumable) {
        p.input_incomplete = true;
        /* A run that stored nothing keeps no checkpoint, and the next
         * run evaluates the detectors anyway. */
        if (!store_run_empty(p.store))
            fv_notice("the input was not read to its end, so the detectors were not "
                      "evaluated and their saved state is unchanged; the run that finishes "
                      "this ingest evaluates them over all of the input");
    } else if (p.failed_rc != FV_OK && !stopped && tally.resumable) {
        /* The store stopped taking records (a full quota, say) while
         * the last file was read. Its resume feeds every record again. */
        p.input_incomplete = true;
        fv_notice("records were not stored after the store error above, so the detectors "
                  "were not evaluated and their saved state is unchanged; the run that "
                  "finishes this ingest evaluates them over all of the input");
    }
    fv_pipeline_tick(&p, fv_pipeline_now_us(&p), true);
    fv_test_kill_point("ingest-after-final-tick");
    if (!stopped && *cli_stop_flag())
        fv_notice("stop signal received after the last input was read; the run was finished "
                  "and every flow stored");
    record_counters(&p, tally.files_read);
    print_totals(&p);
    char actor[64];
    cli_audit_local_actor(actor, sizeof actor);
    bool complete = all_read && !stopped && p.failed_rc == FV_OK;
    store_audit_entry entry;
    run_audit_entry(&p, actor, "ingest", "", true, tally.files_read, complete ? input_id : NULL,
                    &entry);
    fv_test_kill_point("ingest-before-checkpoint-end");
    /* Running the command again finishes a run that a signal or a store
     * failure cut short; a file that could not be read fails again. A
     * completed run's audit entry is written with its checkpoint's
     * deletion, so a crash cannot leave one without the other. */
    if (!fv_checkpoint_end(&p, complete, stopped || p.failed_rc != FV_OK || tally.files_complete,
                           &entry)) {
        if (complete && tally.resumable)    /* the completion failed: the checkpoint stays */
            run_audit_entry(&p, actor, "ingest", "", true, tally.files_read, NULL, &entry);
        (void)cli_audit_append_entry(p.store, &entry);
    }

    int rc = fv_pipeline_close(&p);
    fv_checkpoint_log_pending();
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s: storing records failed: %s\n", o.db,
                fv_strerror(rc));
        tally.exit_status = CLI_EXIT_FAILURE;
    }
    return tally.exit_status;
}

/* Capture with the options LIVE: on the pipeline's engine, or with
 * WORKERS > 1 on one engine per worker thread, each with its own socket
 * per interface in a PACKET_FANOUT group. The tick and after_open hooks
 * then run on this thread. */
static int run_live(fv_pipeline *p, const cap_live_options *live, unsigned workers, char *err,
                    size_t err_len)
{
    if (workers <= 1)
        return cap_live_run_opts(p->capture, live, err, err_len);
    fv_workers_live opts = {
        .workers = workers,
        .after_all_open = live->after_open,
        .after_all_open_ctx = live->after_open_ctx,
        .clear_worker_capabilities = true,
        .periodic = live->tick,
        .periodic_ctx = live->tick_ctx,
    };
    fv_info("capturing with %u worker threads", workers);
    return fv_workers_run_live(p, live, &opts, err, err_len);
}

typedef struct capture_state {
    fv_pipeline *pipeline;
    const char *policy_path;            /* NULL: SIGHUP cannot reread it (chroot) */
    const char *policy_given;           /* --policy as given, for messages */
    const char *iface;                  /* the interface names, comma-separated */
    const fv_privdrop_user *drop_to;   /* NULL without -Z */
    const fv_live_chroot *chroot_to;    /* NULL without --chroot */
    fv_live_drops *drops;
    bool dropped;
    bool announced;
} capture_state;

/* Called by the capture loop once every interface is open and
 * filtering, before any packet is read: chroot with --chroot, then drop
 * to the -Z user, or clear the capabilities of an unprivileged process
 * that got them from setcap. */
static int capture_after_open(void *ctx, char *err, size_t err_len)
{
    capture_state *st = ctx;
    if (st->dropped)
        return FV_OK;
    if (st->chroot_to != NULL) {
        int rc = fv_live_chroot_apply(st->chroot_to, err, err_len);
        if (rc != FV_OK)
            return rc;
        fv_notice("changed root to the store directory");
    }
    if (st->drop_to != NULL) {
        int rc = fv_privdrop_apply(st->drop_to, err, err_len);
        if (rc != FV_OK)
            return rc;
        fv_notice("dropped privileges to user %s (uid %lu, gid %lu), no capabilities",
                  st->drop_to->name, (unsigned long)st->drop_to->uid,
                  (unsigned long)st->drop_to->gid);
    } else if (geteuid() != 0 && fv_privdrop_has_capabilities()) {
        bool bounding_cleared = false;
        int rc = fv_privdrop_capabilities(&bounding_cleared, err, err_len);
        if (rc != FV_OK)
            return rc;
        fv_notice("cleared every capability after opening the interfaces%s",
                  bounding_cleared ? "" : " (the bounding set stays without CAP_SETPCAP; "
                                          "no_new_privs keeps exec from using it)");
    }
    st->dropped = true;
    return FV_OK;
}

/* Called by the capture loop about once a second, after the interface
 * is open; the first call announces that capture runs. */
static void capture_tick(void *ctx, uint64_t now_us)
{
    capture_state *st = ctx;
    if (!st->announced) {
        fv_notice("capturing on %s until SIGINT or SIGTERM", st->iface);
        st->announced = true;
        (void)cli_audit_append(st->pipeline->store, "system", "capture.start", st->iface, NULL,
                               0, now_us);
    }
    /* The tick runs between packets, so no sink sees the policy change
     * in the middle of a record. */
    if (cli_reload_take()) {
        /* Under --chroot the policy, its time zones and its indicator
         * lists are read inside the new root. Check them all first, so a
         * missing file is reported with its host path and nothing loads
         * halfway. */
        if (st->policy_path == NULL)
            fv_live_chroot_log_outside(st->chroot_to, st->policy_given);
        else if (st->chroot_to == NULL ||
                 fv_live_chroot_reload_ready(st->chroot_to, st->policy_path))
            (void)fv_pipeline_reload(st->pipeline, st->policy_path, now_us);
    }
    fv_live_drops_tick(st->drops, st->pipeline->store, now_us);
    if (cli_counters_take()) {
        log_counters(st->pipeline, true);
        fv_live_drops_log(st->drops);
    }
    (void)fv_pipeline_tick(st->pipeline, now_us, false);
}

int cli_cmd_capture(int argc, char **argv)
{
    run_options o;
    int status = parse_run_options("capture", argc, argv, &o);
    if (status >= 0)
        return status;
    if (optind < argc)
        return cli_usage_error("capture", "unexpected argument '%s' (live capture reads no "
                                          "files; use 'flowveil ingest' for files)",
                               argv[optind]);

    /* Resolve -Z USER before the store is created, so a typo leaves
     * nothing behind. */
    fv_privdrop_user drop_to;
    if (o.user != NULL) {
        char user_err[512];
        if (fv_privdrop_lookup(o.user, &drop_to, user_err, sizeof user_err) != FV_OK) {
            const char *origin = fv_config_word_origin(o.user);
            if (origin != NULL)
                fprintf(stderr, "flowveil: error: %s: %s\n", origin,
                        strncmp(user_err, "-Z ", 3) == 0 ? user_err + 3 : user_err);
            else
                fprintf(stderr, "flowveil: error: %s\n", user_err);
            return CLI_EXIT_FAILURE;
        }
    }

    /* Check the interfaces and the filter before the store, the key
     * file and the policy audit entry are created, so a typo leaves
     * nothing behind.
     * NOTE: a missing permission (CAP_NET_RAW) only shows when libpcap
     * opens the interface, after the store is created. */
    for (size_t i = 0; i < o.live.n_ifaces; i++) {
        /* "any" is libpcap's pseudo-device for every interface. */
        if (strcmp(o.live.ifaces[i], "any") != 0 && if_nametoindex(o.live.ifaces[i]) == 0) {
            const char *origin = fv_config_word_origin(o.live.ifaces[i]);
            fprintf(stderr, "flowveil: error: %s%sinterface %s not found: %s; 'ip link' lists "
                            "the interfaces\n",
                    origin != NULL ? origin : "", origin != NULL ? ": " : "",
                    o.live.ifaces[i], strerror(errno));
            return CLI_EXIT_FAILURE;
        }
    }
    char precheck_err[1024];
    if (o.filter != NULL && cap_filter_check(o.filter, precheck_err, sizeof precheck_err) != FV_OK)
    {
        const char *origin = fv_config_word_origin(o.filter);
        if (origin == NULL)
            return cli_usage_error("capture", "%s", precheck_err);
        fprintf(stderr, "flowveil: error: %s: %s\n", origin, precheck_err);
        return CLI_EXIT_FAILURE;
    }

    cli_install_stop_handlers();
    cli_install_reload_handler();
    cli_install_counters_handler();

    /* With --chroot the store is opened as "." from inside the store
     * directory, so its paths stay valid after the chroot. */
    char err[1024];
    fv_live_chroot chroot_to;
    const char *db_path = o.db;
    const char *reload_path = o.policy;
    if (o.live.chroot) {
        if (fv_live_chroot_prepare(&chroot_to, o.db, o.policy, err, sizeof err) != FV_OK) {
            fprintf(stderr, "flowveil: error: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
        db_path = ".";
        reload_path = chroot_to.policy_inside[0] != '\0' ? chroot_to.policy_inside : NULL;
    }

    fv_pipeline p;
    if (fv_pipeline_open(&p, o.policy, db_path, 0, err, sizeof err) != FV_OK) {
        fv_config_print_error(err, o.policy);
        return CLI_EXIT_FAILURE;
    }
    if (!apply_flow_memory(&p, &o)) {
        fv_pipeline_close(&p);
        return CLI_EXIT_FAILURE;
    }
    fv_checkpoint_log_commits(&p);

    /* Excluded groups' MACs go into the filter as "ether host" terms.
     * Those compile only on links with Ethernet headers, so when the
     * interface rejects them, capture runs with the subnets alone and the
     * engine's own check drops the MACs' frames. */
    char filter[8192];
    char filter_no_mac[8192];
    uint64_t filter_now_us = fv_pipeline_now_us(&p);
    if (fv_pipeline_filter_at(&p, o.filter, true, filter_now_us, filter, sizeof filter) != FV_OK ||
        fv_pipeline_filter_at(&p, o.filter, false, filter_now_us, filter_no_mac,
                              sizeof filter_no_mac) != FV_OK) {
        fprintf(stderr, "flowveil: error: the capture filter with the policy's exclusions "
                        "exceeds %zu bytes; shorten --filter or merge excluded subnets\n",
                sizeof filter);
        fv_pipeline_close(&p);
        return CLI_EXIT_FAILURE;
    }

    /* The interface names for log lines and the audit trail. */
    char iface_list[CAP_LIVE_MAX_IFACES * 17];
    size_t used = 0;
    iface_list[0] = '\0';
    for (size_t i = 0; i < o.live.n_ifaces; i++) {
        int n = snprintf(iface_list + used, sizeof iface_list - used, "%s%s", i ? "," : "",
                         o.live.ifaces[i]);
        if (n < 0 || !((size_t)n < sizeof iface_list - used))
            break;
        used += (size_t)n;
    }

    fv_info("opening %s", iface_list);
    int exit_status = CLI_EXIT_OK;
    fv_live_drops drops;
    fv_live_drops_init(&drops, &o.live);
    capture_state state = {.pipeline = &p,
                           .policy_path = reload_path,
                           .policy_given = o.policy,
                           .iface = iface_list,
                           .drop_to = o.user != NULL ? &drop_to : NULL,
                           .chroot_to = o.live.chroot ? &chroot_to : NULL,
                           .drops = &drops};
    cap_live_options live = {.iface = o.live.ifaces[0],
                             .bpf = filter[0] != '\0' ? filter : NULL,
                             .stop = cli_stop_flag(),
                             .tick = capture_tick,
                             .tick_ctx = &state,
                             .after_open = capture_after_open,
                             .after_open_ctx = &state,
                             .ifaces = o.live.ifaces,
                             .n_ifaces = o.live.n_ifaces,
                             .snaplen = o.live.snaplen,
                             .buffer_bytes = o.live.buffer_bytes,
                             .iface_stats = fv_live_drops_update,
                             .iface_stats_ctx = &drops};
    int rc = run_live(&p, &live, o.workers, err, sizeof err);
    /* The filter is installed before the drop, so a rejected filter means
     * the process can still reopen the interface. */
    if (rc == FV_ERR_INVALID && !state.dropped && strcmp(filter, filter_no_mac) != 0) {
        fv_notice("%s: the link type rejects MAC terms in the filter; capturing with the "
                  "excluded subnets only, excluded MACs are dropped in the engine",
                  iface_list);
        live.bpf = filter_no_mac[0] != '\0' ? filter_no_mac : NULL;
        rc = run_live(&p, &live, o.workers, err, sizeof err);
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        exit_status = CLI_EXIT_FAILURE;
    } else {
        fv_notice("stopping: flushing open flows");
    }

    cap_engine_flush(p.capture);
    fv_aggregator_flush(p.aggregates);
    fv_pipeline_tick(&p, fv_pipeline_now_us(&p), true);
    record_counters(&p, 0);
    /* A start that failed before the first tick read no packet, so an
     * exit summary of zeros would only read like a run. */
    if (state.announced)
        print_totals(&p);
    if (state.announced)
        audit_run(&p, "system", "capture.stop", iface_list, false, 0, NULL);

    /* The last counters, read when the handles closed, go to the store
     * and the exit summary. */
    fv_live_drops_tick(&drops, p.store, fv_now_us());
    fv_live_drops_log(&drops);
    cap_stats st;
    fv_pipeline_stats(&p, &st);
    if (st.pcap_dropped != 0 || st.pcap_if_dropped != 0)
        fv_warning("the kernel dropped %llu packets and the interface %llu during capture",
                   (unsigned long long)st.pcap_dropped, (unsigned long long)st.pcap_if_dropped);
    if (st.queue_dropped_records != 0)
        fv_warning("%llu records were dropped because a worker's queue to the writer thread "
                   "was full; the writer could not keep up, so run with fewer --workers to "
                   "leave it more CPU",
                   (unsigned long long)st.queue_dropped_records);

    rc = fv_pipeline_close(&p);
    fv_checkpoint_log_pending();
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s: storing records failed: %s\n", o.db,
                fv_strerror(rc));
        exit_status = CLI_EXIT_FAILURE;
    }
    return exit_status;
}
