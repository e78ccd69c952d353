/*
 * cmd_audit.c: `flowveil audit verify|show` and the helpers other
 * subcommands use to write audit entries. docs/AUDIT.md lists what is
 * audited.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "store.h"

void cli_audit_entry_fill(store_audit_entry *e, const char *actor, const char *action,
                          const char *object, const char *params, uint64_t result_count)
{
    memset(e, 0, sizeof *e);
    snprintf(e->actor, sizeof e->actor, "%s", actor);
    snprintf(e->action, sizeof e->action, "%s", action);
    snprintf(e->object, sizeof e->object, "%s", object != NULL ? object : "");
    snprintf(e->params, sizeof e->params, "%s", params != NULL ? params : "");
    e->result_count = result_count;
}

int cli_audit_append_entry(store_env *store, const store_audit_entry *e)
{
    /* Audit time is always the wall clock: a --now given for tests and
     * replays decides retention, but must never date the evidence. */
    int rc = store_audit_append(store, e, fv_now_us(), NULL);
    if (rc != FV_OK)
        fv_error("cannot write the audit entry for %s: %s", e->action, fv_strerror(rc));
    return rc;
}

int cli_audit_append(store_env *store, const char *actor, const char *action, const char *object,
                     const char *params, uint64_t result_count, uint64_t now_us)
{
    store_audit_entry e;
    cli_audit_entry_fill(&e, actor, action, object, params, result_count);
    (void)now_us;   /* see cli_audit_append_entry */
    return cli_audit_append_entry(store, &e);
}

void cli_audit_local_actor(char *out, size_t out_len)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL)
        snprintf(out, out_len, "%s", found->pw_name);
    else
        snprintf(out, out_len, "uid:%lu", (unsigned long)uid);
}

int cli_audit_sweep(store_env *store, const char *actor, const store_sweep_result *result,
                    uint64_t now_us)
{
    char params[512];
    size_t used = 0;
    uint64_t total = result->audit_deleted;

    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        int n = snprintf(params + used, sizeof params - used, "%s=%llu&",
                         fv_class_name((fv_class)c), (unsigned long long)result->deleted[c]);
        if (n < 0 || !((size_t)n < sizeof params - used))
            return FV_ERR_FULL;
        used += (size_t)n;
        total += result->deleted[c];
    }
    char now_text[FV_TIME_TEXT_MAX];
    fv_time_format(now_us, now_text);
    int n = snprintf(params + used, sizeof params - used, "audit=%llu&escrow=%llu&at=%s%s",
                     (unsigned long long)result->audit_deleted,
                     (unsigned long long)result->escrow_deleted, now_text,
                     result->complete ? "" : "&complete=false");
    if (n < 0 || !((size_t)n < sizeof params - used))
        return FV_ERR_FULL;
    return cli_audit_append(store, actor, "retention.sweep", "", params, total, now_us);
}

/* ---------------------------------------------------------------------- */
/* flowveil audit                                                          */
/* ---------------------------------------------------------------------- */

static void print_audit_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil audit verify --db DIR\n"
            "       flowveil audit show --db DIR [--limit N] [--json]\n"
            "\n"
            "verify  check the hash chain of the audit trail; print the number of entries\n"
            "        checked, the head hash (keep a copy elsewhere to detect a rewritten\n"
            "        chain) and OK, or the first broken link and exit with status 1\n"
            "show    list audit entries, newest first\n"
            "\n"
            "  -d, --db DIR      store directory\n"
            "  -n, --limit N     show at most N entries (1 to 10000, default 50)\n"
            "      --json        one JSON object per line instead of a table\n");
}

static void hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int audit_verify(store_env *store, const char *db)
{
    store_audit_verify_result res;
    int rc = store_audit_verify(store, &res);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot read the audit trail of %s: %s\n", db,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    char head[2 * STORE_AUDIT_HASH_BYTES + 1];
    hex_encode(res.head_hash, sizeof res.head_hash, head);
    printf("entries checked: %" PRIu64 " (sequence %" PRIu64 " to %" PRIu64 ")\n", res.checked,
           res.first_seq, res.head_seq);
    printf("head hash:       %s\n", head);
    if (!res.ok) {
        printf("BROKEN at sequence %" PRIu64 ": %s\n", res.broken_seq, res.reason);
        return CLI_EXIT_FAILURE;
    }
    printf("OK\n");
    return CLI_EXIT_OK;
}

typedef struct show_ctx {
    bool json;
    int rc;
} show_ctx;

static json_t *entry_to_json(const store_audit_entry *e)
{
    char time_text[FV_TIME_TEXT_MAX], hash[2 * STORE_AUDIT_HASH_BYTES + 1];
    fv_time_format(e->time_us, time_text);
    hex_encode(e->hash, sizeof e->hash, hash);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "seq",
                     (json_int_t)e->seq, "time", time_text, "actor", e->actor, "role", e->role,
                     "action", e->action, "object", e->object, "params", e->params,
                     "result_count", (json_int_t)e->result_count, "reason", e->reason, "hash",
                     hash);
}

static bool show_one(void *arg, const store_audit_entry *e)
{
    show_ctx *ctx = arg;
    if (ctx->json) {
        json_t *obj = entry_to_json(e);
        if (obj == NULL || json_dumpf(obj, stdout, JSON_COMPACT) != 0 || putchar('\n') == EOF) {
            json_decref(obj);
            ctx->rc = FV_ERR_IO;
            return false;
        }
        json_decref(obj);
        return true;
    }
    char time_text[FV_TIME_TEXT_MAX];
    fv_time_format(e->time_us, time_text);
    printf("%6" PRIu64 "  %-27s  %-10s  %-16s  %-24s  %8" PRIu64 "  %s\n", e->seq, time_text,
           e->actor, e->action, e->object, e->result_count, e->params);
    return true;
}

static int audit_show(store_env *store, const char *db, uint32_t limit, bool json)
{
    show_ctx ctx = {.json = json, .rc = FV_OK};
    if (!json)
        printf("%6s  %-27s  %-10s  %-16s  %-24s  %8s  %s\n", "seq", "time", "actor", "action",
               "object", "results", "params");
    int rc = store_audit_each(store, 0, limit, true, show_one, &ctx, NULL);
    if (rc == FV_OK)
        rc = ctx.rc;
    if (rc == FV_OK && fflush(stdout) != 0) {
        /* The errno text names the cause, such as "No space left on device". */
        fprintf(stderr, "flowveil: error: writing the audit trail of %s to standard output "
                        "failed: %s\n",
                db, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot list the audit trail of %s: %s\n", db,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

enum { OPT_JSON = 256 };

int cli_cmd_audit(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_audit_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2)
        return cli_usage_error("audit", "missing action: verify or show");
    const char *action = argv[1];
    bool is_verify = strcmp(action, "verify") == 0;
    if (!is_verify && strcmp(action, "show") != 0)
        return cli_usage_error("audit", "invalid action '%s': expected verify or show", action);

    const char *db = NULL;
    uint32_t limit = 50;
    bool json = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, ":d:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'n': {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!(optarg[0] >= '0' && optarg[0] <= '9') || *end != '\0' || v == 0 ||
                v > STORE_AUDIT_LIMIT_MAX)
                return cli_usage_error("audit", "invalid --limit '%s': expected 1 to %u", optarg,
                                       STORE_AUDIT_LIMIT_MAX);
            limit = (uint32_t)v;
            break;
        }
        case OPT_JSON: json = true; break;
        case 'h': print_audit_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("audit", "option '%s' needs a value", argv[optind]);
        default: return cli_usage_error("audit", "unknown option '%s'", argv[optind]);
        }
    }
    if (optind < argc - 1)
        return cli_usage_error("audit", "unexpected argument '%s'", argv[optind + 1]);
    if (db == NULL)
        return cli_usage_error("audit", "missing --db DIR (the store directory)");
    if (is_verify && (json || limit != 50))
        return cli_usage_error("audit", "--limit and --json apply to 'audit show' only");

    char err[1024];
    store_env *store = NULL;
    if (store_open(db, STORE_RDONLY, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    int status = is_verify ? audit_verify(store, db) : audit_show(store, db, limit, json);
    store_close(&store);
    return status;
}
