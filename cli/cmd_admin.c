/*
 * cmd_admin.c: administrative subcommands: export, sweep, retention
 * status, policy check and key status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert_json.h"
#include "anonymize.h"
#include "cli.h"
#include "escrow.h"
#include "indicators_hook.h"
#include "outfile.h"
#include "policy.h"
#include "store.h"

enum { OPT_NOW = 256, OPT_FROM, OPT_TO, OPT_ALLOW_FUTURE_NOW };

/* ---------------------------------------------------------------------- */
/* export                                                                  */
/* ---------------------------------------------------------------------- */

static void print_export_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil export --db DIR --class CLASS [--from TIME] [--to TIME]\n"
            "                       [--output FILE] [--now SECONDS]\n"
            "\n"
            "Write stored records of one class as JSON Lines, oldest first. The fields are\n"
            "documented in docs/EXPORT.md. Records past their retention limit are never\n"
            "written. If a record cannot be decrypted (its day's data key is missing or the\n"
            "record is damaged), the others are still written, a warning gives the count\n"
            "and the exit status is 1. Aggregate rows with fewer distinct hosts than the\n"
            "policy's reporting.k_threshold (as recorded in the store) are left out.\n"
            "\n"
            "  -d, --db DIR        store directory\n"
            "  -c, --class CLASS   flows, dns, tls, http, dhcp, ssh, alerts or aggregates\n"
            "      --from TIME     only records with traffic at or after TIME: RFC 3339\n"
            "                      (2026-11-30T08:00:00Z) or seconds since 1970 UTC\n"
            "      --to TIME       only records with traffic at or before TIME\n"
            "  -o, --output FILE   write here instead of standard output (replaced\n"
            "                      atomically: a failed export leaves no partial file)\n"
            "      --now SECONDS   evaluate retention at this time instead of the clock\n"
            "\n"
            "With --ipfix HOST:PORT or --kafka BROKERS the records are sent to an IPFIX\n"
            "collector or to Kafka instead; 'flowveil export --ipfix HOST:PORT --help'\n"
            "lists those options.\n");
}

typedef struct export_ctx {
    store_env *store;   /* reads the alerts' life cycle */
    FILE *out;
    uint64_t written;
    int rc;
    int write_errno;    /* errno of the first failed write, 0 if none */
    uint64_t min_hosts; /* aggregates: reporting.k_threshold, 0 for other classes */
    uint64_t below_k;   /* aggregate rows left out for having fewer hosts */
} export_ctx;

static bool export_one(void *ctx, const fv_record *rec)
{
    export_ctx *e = ctx;
    /* A capped host count is a lower bound above FV_AGGREGATE_HOSTS_MAX. */
    if (rec->cls == FV_CLASS_AGGREGATE && !rec->u.aggregate.hosts_capped &&
        rec->u.aggregate.hosts < e->min_hosts) {
        e->below_k++;
        return true;
    }
    json_t *obj = cli_record_json(e->store, rec);
    if (obj == NULL) {
        e->rc = FV_ERR_NOMEM;
        return false;
    }
    int r = json_dumpf(obj, e->out, JSON_COMPACT);
    json_decref(obj);
    if (r != 0 || fputc('\n', e->out) == EOF) {
        e->rc = FV_ERR_IO;
        e->write_errno = errno;
        return false;
    }
    e->written++;
    return true;
}

int cli_cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"class", required_argument, NULL, 'c'},
        {"output", required_argument, NULL, 'o'},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"now", required_argument, NULL, OPT_NOW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    const char *class_name = NULL;
    const char *output = NULL;
    uint64_t from_us = 0, to_us = 0, now_s = 0;

    /* Sending to a collector has options of its own. */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--ipfix", 7) == 0 || strncmp(argv[i], "--kafka", 7) == 0)
            return cli_export_send(argc, argv);
    }

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:c:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'c': class_name = optarg; break;
        case 'o': output = optarg; break;
        case OPT_FROM:
        case OPT_TO:
            if (fv_time_parse(optarg, c == OPT_FROM ? &from_us : &to_us) != FV_OK)
                return cli_usage_error("export",
                                       "invalid %s value '%s': expected RFC 3339 time such as "
                                       "2026-11-30T08:00:00Z, or seconds since 1970 UTC",
                                       c == OPT_FROM ? "--from" : "--to", optarg);
            break;
        case OPT_NOW:
            if (cli_parse_seconds("export", "--now", optarg, &now_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case 'h': print_export_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("export", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (db == NULL)
        return cli_usage_error("export", "missing --db DIR (the store directory)");
    if (class_name == NULL)
        return cli_usage_error("export", "missing --class CLASS (flows, dns, tls, http, dhcp, "
                                         "ssh, alerts or aggregates)");
    fv_class cls;
    if (fv_class_from_name(class_name, &cls) != FV_OK)
        return cli_usage_error("export", "invalid --class '%s': expected flows, dns, tls, "
                                         "http, dhcp, ssh, alerts or aggregates",
                               class_name);
    if (from_us != 0 && to_us != 0 && from_us > to_us)
        return cli_usage_error("export", "--from is after --to; swap the two values");

    char err[1024];
    store_env *store = NULL;
    /* Read-write for the audit entry, but never create a store. */
    if (store_open(db, STORE_EXISTING, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }

    /* OUTPUT is written through a temporary file and renamed at the end,
     * so a failed export never leaves a partial file behind. */
    cli_outfile out_file;
    if (!cli_outfile_open(&out_file, output, false)) {
        store_close(&store);
        return CLI_EXIT_FAILURE;
    }
    export_ctx e = {.store = store, .out = out_file.f, .written = 0, .rc = FV_OK, .write_errno = 0};

    /* Aggregates honour the policy's reporting.k_threshold, which every
     * capturing process records in the store (5 when none has). */
    if (cls == FV_CLASS_AGGREGATE) {
        int k_rc = store_meta_get(store, STORE_META_K_THRESHOLD, &e.min_hosts);
        if (k_rc != FV_OK) {
            fprintf(stderr, "flowveil: error: cannot read the k-threshold of %s: %s\n", db,
                    fv_strerror(k_rc));
            cli_outfile_abort(&out_file);
            store_close(&store);
            return CLI_EXIT_FAILURE;
        }
        if (e.min_hosts == 0)
            e.min_hosts = 5;
    }

    uint64_t now_us = now_s != 0 ? now_s * 1000000u : fv_now_us();
    store_query q = {
        .cls = cls,
        .from_us = from_us,
        .to_us = to_us,
        .limit = 10000,
    };
    int rc;
    uint64_t undecryptable = 0;
    do {
        uint64_t next = 0;
        store_query_stats stats;
        rc = store_query_run_stats(store, &q, now_us, export_one, &e, &next, &stats);
        undecryptable += stats.undecryptable;
        q.after_id = next;
        if (rc == FV_OK && e.rc != FV_OK)
            rc = e.rc;
        if (next == 0)
            break;
    } while (rc == FV_OK);

    /* The export is audited before a file is put in place, so a failed
     * audit leaves no file behind; on standard output the records have
     * already left and the failure is reported with exit status 1. */
    if (rc == FV_OK) {
        char params[512], from_text[FV_TIME_TEXT_MAX], to_text[FV_TIME_TEXT_MAX];
        snprintf(from_text, sizeof from_text, "%s", "");
        snprintf(to_text, sizeof to_text, "%s", "");
        if (from_us != 0)
            fv_time_format(from_us, from_text);
        if (to_us != 0)
            fv_time_format(to_us, to_text);
        int n = snprintf(params, sizeof params, "from=%s&to=%s&output=%s", from_text, to_text,
                         output != NULL ? "file" : "stdout");
        if (cls == FV_CLASS_AGGREGATE && n > 0 && (size_t)n < sizeof params)
            snprintf(params + n, sizeof params - (size_t)n, "&k_threshold=%llu&below_k=%llu",
                     (unsigned long long)e.min_hosts, (unsigned long long)e.below_k);
        char actor[64];
        cli_audit_local_actor(actor, sizeof actor);
        rc = cli_audit_append(store, actor, "export", class_name, params, e.written, now_us);
    }

    /* A failed write is reported by the commit, which also removes the
     * temporary file; any other failure only discards it. */
    if (rc == FV_OK || (rc == FV_ERR_IO && e.write_errno != 0)) {
        char what[64];
        snprintf(what, sizeof what, "the %s export", class_name);
        bool written = cli_outfile_commit(&out_file, what, e.write_errno);
        store_close(&store);
        if (!written)
            return CLI_EXIT_FAILURE;
    } else {
        cli_outfile_abort(&out_file);
        store_close(&store);
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: export of %s from %s failed: %s\n", class_name, db,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    fv_info("exported %llu %s records", (unsigned long long)e.written, class_name);
    if (e.below_k > 0)
        fprintf(stderr,
                "flowveil: left out %llu aggregate rows with fewer than %llu distinct hosts "
                "(the policy's reporting.k_threshold)\n",
                (unsigned long long)e.below_k, (unsigned long long)e.min_hosts);
    /* The readable records are exported and the file is kept, but a
     * script must not take the export for complete. */
    if (undecryptable > 0) {
        fprintf(stderr,
                "flowveil: warning: %llu %s records could not be decrypted and are missing "
                "from the export: the data key of their day is missing from %s/data.keys or "
                "the record is damaged; restore data.keys from the backup taken with the "
                "store\n",
                (unsigned long long)undecryptable, class_name, db);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* sweep and retention status                                              */
/* ---------------------------------------------------------------------- */

/* Parse --db and --now for sweep and retention status, and for the
 * sweep also --allow-future-now (ALLOW_FUTURE not NULL). Returns -1 to go
 * on. */
static int parse_db_now(const char *command, int argc, char **argv, const char **db,
                        uint64_t *now_s, bool *allow_future, void (*usage)(FILE *))
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"now", required_argument, NULL, OPT_NOW},
        {"allow-future-now", no_argument, NULL, OPT_ALLOW_FUTURE_NOW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool allow = false;
    *db = NULL;
    *now_s = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': *db = optarg; break;
        case OPT_NOW:
            if (cli_parse_seconds(command, "--now", optarg, now_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_ALLOW_FUTURE_NOW:
            if (allow_future == NULL)
                return cli_usage_error(command, "option --allow-future-now belongs to "
                                                "'flowveil sweep'; this command deletes nothing");
            allow = true;
            break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error(command, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(command, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(command, "unexpected argument '%s'", argv[optind]);
    if (*db == NULL)
        return cli_usage_error(command, "missing --db DIR (the store directory)");
    if (allow_future != NULL) {
        *allow_future = allow;
        if (*now_s != 0 && cli_check_now_not_future(command, *now_s, allow) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
    }
    return -1;
}

static void print_sweep_usage(FILE *f)
{
    fprintf(f, "usage: flowveil sweep --db DIR [--now SECONDS [--allow-future-now]]\n"
               "\n"
               "Delete every record past its class's retention limit now. The capturing\n"
               "process also sweeps on the policy's sweep interval.\n"
               "\n"
               "  -d, --db DIR        store directory\n"
               "      --now SECONDS   evaluate retention at this time instead of the clock\n"
               "      --allow-future-now\n"
               "                      accept a --now more than one day after the clock;\n"
               "                      records are then deleted before their limit\n");
}

int cli_cmd_sweep(int argc, char **argv)
{
    const char *db;
    uint64_t now_s;
    bool allow_future = false;
    int status = parse_db_now("sweep", argc, argv, &db, &now_s, &allow_future, print_sweep_usage);
    if (status >= 0)
        return status;

    char err[1024];
    store_env *store = NULL;
    /* A sweep must not create a store that does not exist yet. */
    if (store_open(db, STORE_EXISTING, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    uint64_t now_us = now_s != 0 ? now_s * 1000000u : fv_now_us();
    store_sweep_result result;
    int rc = store_sweep(store, now_us, 0, 0, &result);
    /* A manual sweep is always audited, as evidence that it ran. */
    char actor[64];
    cli_audit_local_actor(actor, sizeof actor);
    if (rc == FV_OK)
        rc = cli_audit_sweep(store, actor, &result, now_us);
    store_close(&store);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: sweep of %s failed: %s\n", db, fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    for (unsigned i = 0; i < FV_CLASS_COUNT; i++)
        printf("%-10s deleted %llu\n", fv_class_name((fv_class)i),
               (unsigned long long)result.deleted[i]);
    return CLI_EXIT_OK;
}

static void print_retention_usage(FILE *f)
{
    fprintf(f, "usage: flowveil retention status --db DIR [--now SECONDS]\n"
               "\n"
               "Show per record class: retention limit, live records, records past the\n"
               "limit waiting for the sweeper, age of the oldest record, the last sweep and\n"
               "the next sweep and the records deleted so far. A class is marked WARNING\n"
               "when records past its limit are still stored, or when the sweep is overdue:\n"
               "the last sweep is older than twice the sweep interval the capturing process\n"
               "recorded, or the class was never swept and holds records older than one\n"
               "interval.\n"
               "\n"
               "  -d, --db DIR        store directory\n"
               "      --now SECONDS   evaluate retention at this time instead of the clock\n");
}

static void format_age(uint64_t seconds, char *out, size_t len)
{
    if (seconds >= 86400)
        snprintf(out, len, "%llud%02lluh", (unsigned long long)(seconds / 86400),
                 (unsigned long long)(seconds % 86400 / 3600));
    else if (seconds >= 3600)
        snprintf(out, len, "%lluh%02llum", (unsigned long long)(seconds / 3600),
                 (unsigned long long)(seconds % 3600 / 60));
    else
        snprintf(out, len, "%llum%02llus", (unsigned long long)(seconds / 60),
                 (unsigned long long)(seconds % 60));
}

int cli_cmd_retention(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            print_retention_usage(stdout);
            return CLI_EXIT_OK;
        }
        return cli_usage_error("retention", "expected 'flowveil retention status --db DIR'");
    }
    const char *db;
    uint64_t now_s;
    int status = parse_db_now("retention", argc - 1, argv + 1, &db, &now_s, NULL,
                              print_retention_usage);
    if (status >= 0)
        return status;

    char err[1024];
    store_env *store = NULL;
    if (store_open(db, STORE_RDONLY, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    uint64_t now_us = now_s != 0 ? now_s * 1000000u : fv_now_us();

    printf("%-10s %-9s %10s %9s %-10s %-27s %-27s %9s %s\n", "class", "retention", "records",
           "expired", "oldest", "last sweep", "next sweep", "deleted", "state");
    int exit_status = CLI_EXIT_OK;
    for (unsigned i = 0; i < FV_CLASS_COUNT; i++) {
        store_class_status st;
        int rc = store_class_status_get(store, (fv_class)i, now_us, &st);
        if (rc != FV_OK) {
            fprintf(stderr, "flowveil: error: status of %s in %s failed: %s\n",
                    fv_class_name((fv_class)i), db, fv_strerror(rc));
            exit_status = CLI_EXIT_FAILURE;
            continue;
        }
        char limit[32], oldest[32], sweep[FV_TIME_TEXT_MAX];
        if (st.retention_s == 0)
            snprintf(limit, sizeof limit, "unset");
        else
            format_age(st.retention_s, limit, sizeof limit);
        if (st.oldest_stored_us == 0 || st.oldest_stored_us > now_us)
            snprintf(oldest, sizeof oldest, "-");
        else
            format_age((now_us - st.oldest_stored_us) / 1000000u, oldest, sizeof oldest);
        if (st.last_sweep_us == 0)
            snprintf(sweep, sizeof sweep, "never");
        else
            fv_time_format(st.last_sweep_us, sweep);
        char next[FV_TIME_TEXT_MAX];
        if (st.next_sweep_us == 0)
            snprintf(next, sizeof next, "unknown");
        else
            fv_time_format(st.next_sweep_us, next);
        char state[256] = "ok";
        if (store_class_status_warning(&st)) {
            bool pending = st.expired_pending > 0;
            bool lag = st.sweep_lag == STORE_SWEEP_LATE || st.sweep_lag == STORE_SWEEP_NEVER;
            snprintf(state, sizeof state, "WARNING:%s%s%s%s",
                     pending ? " records past the limit await the sweeper" : "",
                     pending && lag ? ";" : "",
                     st.sweep_lag == STORE_SWEEP_LATE
                         ? " sweep overdue (last sweep older than 2 x the interval)"
                         : "",
                     st.sweep_lag == STORE_SWEEP_NEVER
                         ? " sweep overdue (never swept, records older than the interval)"
                         : "");
        }
        printf("%-10s %-9s %10llu %9llu %-10s %-27s %-27s %9llu %s\n", fv_class_name((fv_class)i),
               limit, (unsigned long long)st.records, (unsigned long long)st.expired_pending,
               oldest, sweep, next, (unsigned long long)st.total_deleted, state);
    }
    store_close(&store);
    return exit_status;
}

/* ---------------------------------------------------------------------- */
/* policy check and keys status                                            */
/* ---------------------------------------------------------------------- */

/* Bad lines printed per indicator file; the rest are counted. */
#define CLI_POLICY_CHECK_ERRORS_SHOWN 5

/* Open the indicator files of POLICY, then print the verdict, SUMMARY and
 * the per-file counts. Frees POLICY. */
static int cli_policy_check_report(const char *path, pol_policy *policy, const char *summary)
{
    char *files = NULL;
    size_t files_len = 0;
    FILE *mem = open_memstream(&files, &files_len);
    if (mem == NULL) {
        pol_destroy(&policy);
        fprintf(stderr, "flowveil: error: out of memory checking the indicator files\n");
        return CLI_EXIT_FAILURE;
    }
    size_t bad_files = fv_indicator_check_files(policy, mem, CLI_POLICY_CHECK_ERRORS_SHOWN);
    fclose(mem);
    pol_destroy(&policy);

    if (bad_files == 0)
        printf("%s: valid\n\n%s%s", path, summary, files);
    else
        printf("%s: valid, but %zu indicator %s errors\n\n%s%s", path, bad_files,
               bad_files == 1 ? "file has" : "files have", summary, files);
    free(files);
    if (bad_files > 0) {
        fflush(stdout);
        fprintf(stderr,
                "flowveil: error: %zu indicator %s errors (listed on standard output); fix or "
                "remove the"
                " lines, because capture skips bad lines and does not start when a file"
                " cannot be read\n",
                bad_files, bad_files == 1 ? "file has" : "files have");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int cli_cmd_policy(int argc, char **argv)
{
    bool help = false;
    for (int i = 1; i < argc; i++)
        help = help || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (help) {
        printf("usage: flowveil policy check FILE\n"
               "\n"
               "Validate FILE and print what will be collected, about whom, and for how "
               "long.\n");
        return CLI_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0)
        return cli_usage_error("policy", "expected 'flowveil policy check FILE'");

    char err[1024];
    pol_policy *policy = NULL;
    if (pol_load(argv[2], &policy, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    static char summary[16384];
    int rc = pol_summary(policy, summary, sizeof summary);
    if (rc != FV_OK) {
        pol_destroy(&policy);
        fprintf(stderr, "flowveil: error: the policy summary does not fit in %zu bytes\n",
                sizeof summary);
        return CLI_EXIT_FAILURE;
    }
    return cli_policy_check_report(argv[2], policy, summary);
}

/* `flowveil keys officer-keygen --output FILE`. */
static int keys_officer_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "usage: flowveil keys officer-keygen --output FILE\n"
        "\n"
        "Create a compliance officer's key pair for key escrow: FILE gets the\n"
        "secret key (mode 0600, keep it offline) and FILE.pub the public key,\n"
        "which the policy's escrow.officers list names. Existing files are\n"
        "never overwritten.\n"
        "\n"
        "  -o, --output FILE   path of the secret key file\n";
    const char *output = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'h': printf("%s", usage); return CLI_EXIT_OK;
        case ':': return cli_usage_error("keys", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("keys", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("keys", "unexpected argument '%s'", argv[optind]);
    if (output == NULL)
        return cli_usage_error("keys", "missing --output FILE (where to write the secret key)");

    char err[1024];
    if (fv_officer_keygen(output, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    printf("secret key: %s (mode 0600; store it offline, it opens escrow entries)\n"
           "public key: %s.pub (list it under escrow.officers in the policy)\n",
           output, output);
    return CLI_EXIT_OK;
}

int cli_cmd_keys(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "officer-keygen") == 0)
        return keys_officer_keygen(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "authority") == 0 || strcmp(argv[1], "sensor-keygen") == 0 ||
                      strcmp(argv[1], "import") == 0))
        return cli_cmd_keys_authority(argc, argv);

    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"policy", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "status") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: flowveil keys status --db DIR --policy FILE\n"
                   "       flowveil keys officer-keygen --output FILE\n"
                   "       flowveil keys authority init|enroll|issue|destroy|remove --dir DIR ...\n"
                   "       flowveil keys sensor-keygen --db DIR [--authority-key FILE]\n"
                   "       flowveil keys import --db DIR [--authority-key FILE] SEALED_FILE\n"
                   "\n"
                   "Show the pseudonymization epoch: id, start and next rotation. Key bytes\n"
                   "are never printed.\n"
                   "\n"
                   "  -d, --db DIR        store directory holding pseudonym.key\n"
                   "  -p, --policy FILE   the policy whose rotation period applies\n");
            return CLI_EXIT_OK;
        }
        return cli_usage_error("keys", "expected 'flowveil keys status --db DIR --policy FILE'");
    }
    const char *db = NULL, *policy_path = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":d:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'p': policy_path = optarg; break;
        case 'h':
            printf("usage: flowveil keys status --db DIR --policy FILE\n");
            return CLI_EXIT_OK;
        case ':': return cli_usage_error("keys", "option '%s' needs a value", argv[optind]);
        default: return cli_usage_error("keys", "unknown option '%s'", argv[optind]);
        }
    }
    if (db == NULL)
        return cli_usage_error("keys", "missing --db DIR (the store directory)");
    if (policy_path == NULL)
        return cli_usage_error("keys", "missing --policy FILE (the policy gives the rotation "
                                       "period)");

    char err[1024];
    pol_policy *policy = NULL;
    if (pol_load(policy_path, &policy, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    uint64_t rotation_s = pol_rotation_s(policy);
    pol_destroy(&policy);

    char key_path[4096];
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", db);
    anon_epoch_info info;
    if (anon_key_file_info(key_path, rotation_s, &info, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    char start[FV_TIME_TEXT_MAX], next[FV_TIME_TEXT_MAX];
    fv_time_format(info.start_s * 1000000u, start);
    fv_time_format(info.next_rotation_s * 1000000u, next);
    printf("epoch:         %llu\n"
           "started:       %s\n"
           "next rotation: %s\n"
           "period:        %llu s\n",
           (unsigned long long)info.epoch_id, start, next, (unsigned long long)info.rotation_s);
    bool authority = anon_authority_mode(key_path);
    if (authority)
        printf("source:        key authority (imported; never rotated locally)\n");
    if (info.next_rotation_s * 1000000u <= fv_now_us())
        printf("note:          %s\n",
               authority ? "the authority's next epoch is overdue; import it with `flowveil keys "
                           "import`"
                         : "rotation is overdue; the next ingest or capture rotates the key");
    return CLI_EXIT_OK;
}
