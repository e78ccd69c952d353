/*
 * cmd_ingest.c: `flowveil ingest` (capture files) and `flowveil capture`
 * (live interface). Both run the pipeline; they differ in the packet
 * source and in how time advances.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "aggregate.h"
#include "pipeline.h"
#include "privdrop.h"

static void print_ingest_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil ingest --policy FILE --db DIR [--filter BPF] [--now SECONDS] "
            "CAPTURE...\n"
            "\n"
            "Read pcap or pcapng files, reduce them to pseudonymized metadata, store it in\n"
            "DIR and run the detectors.\n"
            "\n"
            "  -p, --policy FILE   compliance policy (YAML)\n"
            "  -d, --db DIR        store directory (created if missing)\n"
            "  -f, --filter BPF    only read packets matching this BPF expression\n"
            "      --now SECONDS   use this time (seconds since 1970 UTC) as the stored-at\n"
            "                      time instead of the clock, for tests and replays\n"
            "  -v, --verbose       print more progress information\n");
}

static void print_capture_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil capture --policy FILE --db DIR -i IFACE [--filter BPF] "
            "[-Z USER]\n"
            "\n"
            "Capture live until SIGINT or SIGTERM, then flush open flows and exit.\n"
            "\n"
            "  -p, --policy FILE   compliance policy (YAML)\n"
            "  -d, --db DIR        store directory (created if missing)\n"
            "  -i, --interface IF  network interface to capture on\n"
            "  -f, --filter BPF    only capture packets matching this BPF expression\n"
            "                      (the policy's excluded subnets are always filtered)\n"
            "  -Z, --user USER     after opening the store, the key file and the interface\n"
            "                      as root, switch to USER and its groups, clear every\n"
            "                      capability and set no_new_privs; exit 1 if any step\n"
            "                      fails. SIGHUP then rereads the policy as USER\n"
            "  -v, --verbose       print more progress information\n"
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
} run_options;

enum { OPT_NOW = 256 };

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
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool is_capture = strcmp(command, "capture") == 0;

    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
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
    if (o->policy == NULL)
        return cli_usage_error(command, "missing --policy FILE (start from "
                                        "policy/example-policy.yaml)");
    if (o->db == NULL)
        return cli_usage_error(command, "missing --db DIR (the store directory)");
    if (is_capture && o->iface == NULL)
        return cli_usage_error(command, "missing -i IFACE (the interface to capture on)");
    return -1;
}

static void print_totals(const fv_pipeline *p)
{
    cap_stats st;
    cap_engine_stats(p->capture, &st);
    fv_notice("%llu packets (%llu not IP, %llu truncated, %llu malformed headers), "
              "%llu flows, %llu dns, %llu tls, %llu http records, %llu alerts",
              (unsigned long long)st.packets, (unsigned long long)st.non_ip,
              (unsigned long long)st.truncated, (unsigned long long)st.bad_header,
              (unsigned long long)p->records[FV_CLASS_FLOW],
              (unsigned long long)p->records[FV_CLASS_DNS],
              (unsigned long long)p->records[FV_CLASS_TLS],
              (unsigned long long)p->records[FV_CLASS_HTTP],
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
    cap_engine_stats(p->capture, &st);
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

    char drops[96] = "";
    if (live)
        snprintf(drops, sizeof drops, ", dropped kernel=%llu interface=%llu",
                 (unsigned long long)st.pcap_dropped, (unsigned long long)st.pcap_if_dropped);

    fv_notice("counters: %llu packets, %llu bytes, flows active=%llu emitted=%llu "
              "evicted=%llu, records%s%s, %llu parser rejections",
              (unsigned long long)st.packets, (unsigned long long)st.bytes,
              (unsigned long long)st.flows_active, (unsigned long long)st.flows_emitted,
              (unsigned long long)st.flows_evicted, records, drops,
              (unsigned long long)rejected);
}

/* Add this run's packet and flow counts to the store's ingest counters. */
static void record_counters(fv_pipeline *p, uint64_t files)
{
    cap_stats st;
    cap_engine_stats(p->capture, &st);
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

/* Append an audit entry for an ingest or capture run by ACTOR: the files
 * read (ingest only) and the records stored per class by this process. */
static void audit_run(fv_pipeline *p, const char *actor, const char *action, const char *object,
                      bool with_files, uint64_t files)
{
    char params[512];
    size_t used = 0;
    uint64_t total = 0;
    if (with_files) {
        int n = snprintf(params, sizeof params, "files=%llu&", (unsigned long long)files);
        if (n > 0 && (size_t)n < sizeof params)
            used = (size_t)n;
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
    (void)cli_audit_append(p->store, actor, action, object, params, total,
                           fv_pipeline_now_us(p));
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
    for (int i = optind; i < argc; i++) {
        struct stat st;
        const char *why = NULL;
        if (strcmp(argv[i], "-") == 0)
            continue;   /* standard input, as libpcap reads it */
        if (stat(argv[i], &st) != 0)
            why = strerror(errno);
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
    cli_install_counters_handler();

    fv_pipeline p;
    if (fv_pipeline_open(&p, o.policy, o.db, o.now_s * 1000000u, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }

    int exit_status = CLI_EXIT_OK;
    uint64_t files_read = 0;
    for (int i = optind; i < argc && !*cli_stop_flag(); i++) {
        const char *path = argv[i];
        cap_stats before;
        cap_engine_stats(p.capture, &before);

        /* Exclusions are enforced per packet by the engine, so files only
         * get the user's filter: a BPF "net" test cannot see inside
         * tunnels or every link type a file may hold. */
        int rc = cap_read_file(p.capture, path, o.filter, cli_stop_flag(), err, sizeof err);

        cap_stats after;
        cap_engine_stats(p.capture, &after);
        unsigned long long pkts = (unsigned long long)(after.packets - before.packets);
        if (rc == FV_OK) {
            fv_notice("%s: %llu packet%s read", path, pkts, pkts == 1 ? "" : "s");
            files_read++;
        } else if (rc == FV_ERR_TRUNCATED) {
            fprintf(stderr, "flowveil: warning: %s (the %llu complete packets before the cut "
                            "were ingested)\n",
                    err, pkts);
            files_read++;
            exit_status = CLI_EXIT_FAILURE;
        } else {
            fprintf(stderr, "flowveil: error: %s\n", err);
            exit_status = CLI_EXIT_FAILURE;
        }
        /* NOTE: ingest checks for SIGUSR1 between files only, so during
         * a long file the counters line waits until that file ends. */
        if (cli_counters_take())
            log_counters(&p, false);
        if (fv_pipeline_tick(&p, fv_pipeline_now_us(&p), false) != FV_OK)
            break;
    }
    if (*cli_stop_flag())
        fv_notice("stopped by signal; flushing open flows");

    /* Flush flows and aggregates before counting, so the audit entry
     * and the totals include every record of the run. */
    cap_engine_flush(p.capture);
    fv_aggregator_flush(p.aggregates);
    fv_pipeline_tick(&p, fv_pipeline_now_us(&p), true);
    record_counters(&p, files_read);
    print_totals(&p);
    char actor[64];
    cli_audit_local_actor(actor, sizeof actor);
    audit_run(&p, actor, "ingest", "", true, files_read);

    int rc = fv_pipeline_close(&p);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s: storing records failed: %s\n", o.db,
                fv_strerror(rc));
        exit_status = CLI_EXIT_FAILURE;
    }
    return exit_status;
}

typedef struct capture_state {
    fv_pipeline *pipeline;
    const char *policy_path;
    const char *iface;
    const fv_privdrop_user *drop_to;   /* NULL without -Z */
    bool dropped;
    bool announced;
} capture_state;

/* Called by the capture loop once the interface is open and filtering:
 * with -Z, drop to the user before any packet is read. */
static int capture_after_open(void *ctx, char *err, size_t err_len)
{
    capture_state *st = ctx;
    if (st->drop_to == NULL || st->dropped)
        return FV_OK;
    int rc = fv_privdrop_apply(st->drop_to, err, err_len);
    if (rc != FV_OK)
        return rc;
    st->dropped = true;
    fv_notice("dropped privileges to user %s (uid %lu, gid %lu), no capabilities",
              st->drop_to->name, (unsigned long)st->drop_to->uid,
              (unsigned long)st->drop_to->gid);
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
    if (cli_reload_take())
        (void)fv_pipeline_reload(st->pipeline, st->policy_path, now_us);
    if (cli_counters_take())
        log_counters(st->pipeline, true);
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
            fprintf(stderr, "flowveil: error: %s\n", user_err);
            return CLI_EXIT_FAILURE;
        }
    }

    cli_install_stop_handlers();
    cli_install_reload_handler();
    cli_install_counters_handler();

    fv_pipeline p;
    char err[1024];
    if (fv_pipeline_open(&p, o.policy, o.db, 0, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }

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

    fv_info("opening %s", o.iface);
    int exit_status = CLI_EXIT_OK;
    capture_state state = {.pipeline = &p,
                           .policy_path = o.policy,
                           .iface = o.iface,
                           .drop_to = o.user != NULL ? &drop_to : NULL};
    cap_live_options live = {.iface = o.iface,
                             .bpf = filter[0] != '\0' ? filter : NULL,
                             .stop = cli_stop_flag(),
                             .tick = capture_tick,
                             .tick_ctx = &state,
                             .after_open = capture_after_open,
                             .after_open_ctx = &state};
    int rc = cap_live_run_opts(p.capture, &live, err, sizeof err);
    /* The filter is installed before the drop, so a rejected filter means
     * the process can still reopen the interface. */
    if (rc == FV_ERR_INVALID && !state.dropped && strcmp(filter, filter_no_mac) != 0) {
        fv_notice("%s: the link type rejects MAC terms in the filter; capturing with the "
                  "excluded subnets only, excluded MACs are dropped in the engine",
                  o.iface);
        live.bpf = filter_no_mac[0] != '\0' ? filter_no_mac : NULL;
        rc = cap_live_run_opts(p.capture, &live, err, sizeof err);
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
    print_totals(&p);
    if (state.announced)
        audit_run(&p, "system", "capture.stop", o.iface, false, 0);

    cap_stats st;
    cap_engine_stats(p.capture, &st);
    if (st.pcap_dropped != 0 || st.pcap_if_dropped != 0)
        fv_warning("the kernel dropped %llu packets and the interface %llu during capture",
                   (unsigned long long)st.pcap_dropped, (unsigned long long)st.pcap_if_dropped);

    rc = fv_pipeline_close(&p);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s: storing records failed: %s\n", o.db,
                fv_strerror(rc));
        exit_status = CLI_EXIT_FAILURE;
    }
    return exit_status;
}
