/*
 * cmd_export_send.c: `flowveil export --ipfix ... | --kafka ...`, which
 * sends stored records to an IPFIX collector or to Kafka instead of
 * writing JSON Lines. cli_cmd_export hands over to cli_export_send when
 * either option is present.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert_json.h"
#include "cli.h"
#include "export.h"
#include "policy.h"
#include "store.h"

enum {
    OPT_NOW = 256,
    OPT_FROM,
    OPT_TO,
    OPT_IPFIX,
    OPT_TCP,
    OPT_KAFKA,
    OPT_TOPIC_PREFIX,
    OPT_KAFKA_PROPERTY,
    OPT_QUEUE_MAX,
    OPT_TEMPLATE_REFRESH,
    OPT_OBSERVATION_DOMAIN,
    OPT_TIMEOUT,
    OPT_RATE,
};

/* Seconds batch export waits for the last Kafka acknowledgements. */
#define SEND_FLUSH_TIMEOUT_S_DEFAULT 30u

/* Records per second sent over IPFIX/UDP unless --rate sets another
 * rate. UDP has no flow control, so a collector whose socket buffer is
 * full drops datagrams without the sender seeing it. */
#define SEND_UDP_RATE_DEFAULT 50000u

/* Records sent between two pacing checks. */
#define SEND_PACE_EVERY 64u

static void print_send_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil export --db DIR --ipfix HOST:PORT [--tcp] [OPTIONS]\n"
            "       flowveil export --db DIR --kafka BROKERS [--topic-prefix PREFIX] [OPTIONS]\n"
            "\n"
            "Send stored records to an IPFIX collector (RFC 7011, over UDP or TCP) or to\n"
            "Kafka (JSON Lines, one topic per class). Only pseudonymized records leave;\n"
            "docs/SCALING.md lists the IPFIX elements and the Kafka message format.\n"
            "\n"
            "  -d, --db DIR                 store directory\n"
            "      --ipfix HOST:PORT        IPFIX collector ([V6]:PORT for IPv6)\n"
            "      --tcp                    IPFIX over TCP instead of UDP\n"
            "      --template-refresh SECONDS  resend IPFIX templates over UDP this often\n"
            "                               (default 600)\n"
            "      --observation-domain ID  IPFIX observation domain id (default 0)\n"
            "      --kafka BROKERS          Kafka bootstrap servers HOST:PORT[,HOST:PORT...]\n"
            "      --topic-prefix PREFIX    Kafka topic is PREFIX + class (default flowveil.)\n"
            "      --kafka-property NAME=VALUE  librdkafka property, repeatable\n"
            "      --queue-max MESSAGES     Kafka local queue size (default 100000)\n"
            "      --timeout SECONDS        wait this long for the last Kafka\n"
            "                               acknowledgements (default 30)\n"
            "      --rate RECORDS_PER_S     send at most this many stored records per second\n"
            "                               (default 50000 for IPFIX over UDP, else 0;\n"
            "                               0 = unlimited)\n"
            "  -c, --class LIST             comma-separated classes (default: flows for\n"
            "                               IPFIX, every class for Kafka; IPFIX also\n"
            "                               carries dns and tls)\n"
            "      --from TIME, --to TIME   traffic time window, as for the JSON export\n"
            "      --now SECONDS            evaluate retention at this time\n");
}

/* Parse the comma-separated class LIST into bits. */
static int send_parse_classes(const char *list, uint32_t *out)
{
    char copy[256];
    uint32_t bits = 0;
    if (snprintf(copy, sizeof copy, "%s", list) >= (int)sizeof copy)
        return cli_usage_error("export", "--class list '%.40s...' is too long", list);

    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        fv_class cls;
        if (fv_class_from_name(name, &cls) != FV_OK)
            return cli_usage_error("export", "invalid class '%s' in --class: expected flows, dns, "
                                   "tls, http, dhcp, ssh, alerts or aggregates",
                                   name);
        bits |= EXP_CLASS_BIT(cls);
    }
    if (bits == 0)
        return cli_usage_error("export", "--class lists no class");
    *out = bits;
    return CLI_EXIT_OK;
}

typedef struct send_ctx {
    store_env *store;       /* reads the alerts' life cycle */
    store_alert_status *alert_status; /* scratch for one alert */
    exp_exporter *exporter;
    uint64_t now_us;
    uint64_t read;
    int rc;
    uint32_t rate;          /* records per second, 0 = unlimited */
    struct timespec start;  /* CLOCK_MONOTONIC at the first record */
} send_ctx;

static uint64_t send_elapsed_ns(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - start->tv_sec) * 1000000000 +
                 (int64_t)(now.tv_nsec - start->tv_nsec);
    return ns > 0 ? (uint64_t)ns : 0;
}

/* Sleep until sending S->read records has taken at least S->read / rate
 * seconds since the first record.
 * NOTE: it sleeps inside the store's read transaction of the page (up to
 * 10,000 records), which keeps old pages of the store pinned meanwhile. */
static void send_pace(send_ctx *s)
{
    if (s->rate == 0)
        return;
    if (s->read == 1) {
        clock_gettime(CLOCK_MONOTONIC, &s->start);
        return;
    }
    if (s->read % SEND_PACE_EVERY != 0)
        return;
    uint64_t due_ns = s->read * (1000000000u / s->rate) +
                      s->read * (1000000000u % s->rate) / s->rate;
    uint64_t elapsed_ns = send_elapsed_ns(&s->start);
    if (elapsed_ns >= due_ns)
        return;
    uint64_t wait_ns = due_ns - elapsed_ns;
    struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                          .tv_nsec = (long)(wait_ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool send_one(void *ctx, const fv_record *rec)
{
    send_ctx *s = ctx;
    int rc;
    if (rec->cls == FV_CLASS_ALERT) {
        /* The same alert object as the API and `flowveil export`. */
        rc = store_alert_status_get(s->store, &rec->id, &rec->u.alert, 1, s->alert_status);
        if (rc == FV_OK) {
            fv_alert_life life;
            cli_alert_life_from(s->alert_status, &life);
            rc = exp_put_alert(s->exporter, rec, &life, s->now_us);
        }
    } else {
        rc = exp_put_record(s->exporter, rec, s->now_us);
    }
    if (rc != FV_OK) {
        s->rc = rc;
        return false;
    }
    s->read++;
    send_pace(s);
    return true;
}

/* Send every stored record of CLS in [FROM_US, TO_US]. */
static int send_class(store_env *store, fv_class cls, uint64_t from_us, uint64_t to_us,
                      send_ctx *s, uint64_t *undecryptable)
{
    store_query q = {.cls = cls, .from_us = from_us, .to_us = to_us, .limit = 10000};
    int rc;
    do {
        uint64_t next = 0;
        store_query_stats stats;
        rc = store_query_run_stats(store, &q, s->now_us, send_one, s, &next, &stats);
        *undecryptable += stats.undecryptable;
        if (rc == FV_OK && s->rc != FV_OK)
            rc = s->rc;
        if (rc == FV_OK)
            rc = exp_poll(s->exporter, s->now_us);
        q.after_id = next;
        if (next == 0)
            break;
    } while (rc == FV_OK);
    return rc;
}

/* Parse a positive 32-bit option value. */
static int send_parse_u32(const char *option, const char *text, uint32_t min, uint32_t *out)
{
    /* A parser of its own: cli_parse_seconds would describe a time of
     * day since 1970, which is not what these options take. */
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!(text[0] >= '0' && text[0] <= '9') || *end != '\0' || errno != 0 || v < min ||
        v > UINT32_MAX)
        return cli_usage_error("export", "invalid %s value '%s': expected a whole number from %u"
                               " to %u",
                               option, text, min, UINT32_MAX);
    *out = (uint32_t)v;
    return CLI_EXIT_OK;
}

int cli_export_send(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"class", required_argument, NULL, 'c'},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"now", required_argument, NULL, OPT_NOW},
        {"ipfix", required_argument, NULL, OPT_IPFIX},
        {"tcp", no_argument, NULL, OPT_TCP},
        {"kafka", required_argument, NULL, OPT_KAFKA},
        {"topic-prefix", required_argument, NULL, OPT_TOPIC_PREFIX},
        {"kafka-property", required_argument, NULL, OPT_KAFKA_PROPERTY},
        {"queue-max", required_argument, NULL, OPT_QUEUE_MAX},
        {"template-refresh", required_argument, NULL, OPT_TEMPLATE_REFRESH},
        {"observation-domain", required_argument, NULL, OPT_OBSERVATION_DOMAIN},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *class_list = NULL, *ipfix = NULL, *kafka = NULL;
    const char *topic_prefix = NULL;
    uint64_t from_us = 0, to_us = 0, now_s = 0;
    uint32_t timeout_s = SEND_FLUSH_TIMEOUT_S_DEFAULT;
    uint32_t rate = 0;
    bool rate_given = false;
    bool tcp = false;
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'c': class_list = optarg; break;
        case OPT_IPFIX: ipfix = optarg; break;
        case OPT_TCP: tcp = true; break;
        case OPT_KAFKA: kafka = optarg; break;
        case OPT_TOPIC_PREFIX: topic_prefix = optarg; break;
        case OPT_KAFKA_PROPERTY:
            if (cfg.property_count == EXP_PROPERTIES_MAX)
                return cli_usage_error("export", "more than %d --kafka-property options",
                                       EXP_PROPERTIES_MAX);
            if (strchr(optarg, '=') == NULL || optarg[0] == '=' ||
                strlen(optarg) >= EXP_PROPERTY_MAX)
                return cli_usage_error("export", "invalid --kafka-property '%s': expected "
                                       "NAME=VALUE, such as message.send.max.retries=5",
                                       optarg);
            {
                char name[EXP_PROPERTY_MAX];
                snprintf(name, sizeof name, "%.*s", (int)(strchr(optarg, '=') - optarg), optarg);
                if (!pol_kafka_property_allowed(name))
                    return cli_usage_error("export", "invalid --kafka-property '%s': the "
                                           "librdkafka property '%s' is not allowed; only "
                                           "security, sasl.*, ssl.* paths, client.id and "
                                           "delivery tuning may be set (--kafka sets the "
                                           "brokers)",
                                           optarg, name);
            }
            snprintf(cfg.properties[cfg.property_count++], EXP_PROPERTY_MAX, "%s", optarg);
            break;
        case OPT_QUEUE_MAX:
            if (send_parse_u32("--queue-max", optarg, 1, &cfg.queue_max) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_TEMPLATE_REFRESH:
            if (send_parse_u32("--template-refresh", optarg, 1, &cfg.template_refresh_s) !=
                CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_OBSERVATION_DOMAIN:
            if (send_parse_u32("--observation-domain", optarg, 0, &cfg.observation_domain) !=
                CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_TIMEOUT:
            if (send_parse_u32("--timeout", optarg, 1, &timeout_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_RATE:
            if (send_parse_u32("--rate", optarg, 0, &rate) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            rate_given = true;
            break;
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
        case 'h': print_send_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("export", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (db == NULL)
        return cli_usage_error("export", "missing --db DIR (the store directory)");
    if (ipfix == NULL && kafka == NULL)
        return cli_usage_error("export", "missing --ipfix HOST:PORT or --kafka BROKERS (the "
                                         "destination)");
    if (ipfix != NULL && kafka != NULL)
        return cli_usage_error("export", "--ipfix and --kafka exclude each other; run the "
                                         "export once per destination");
    if (kafka == NULL && (topic_prefix != NULL || cfg.property_count > 0))
        return cli_usage_error("export", "--topic-prefix and --kafka-property need --kafka");
    if (ipfix == NULL && tcp)
        return cli_usage_error("export", "--tcp needs --ipfix");
    if (from_us != 0 && to_us != 0 && from_us > to_us)
        return cli_usage_error("export", "--from is after --to; swap the two values");

    cfg.kind = ipfix != NULL ? EXP_IPFIX : EXP_KAFKA;
    cfg.tcp = tcp;
    /* Batch export must not lose records to a full queue: wait instead. */
    cfg.full_wait_ms = timeout_s * 1000u;
    const char *target = ipfix != NULL ? ipfix : kafka;
    if (strlen(target) >= sizeof cfg.target)
        return cli_usage_error("export", "destination '%.40s...' is too long", target);
    snprintf(cfg.target, sizeof cfg.target, "%s", target);
    if (topic_prefix != NULL) {
        if (strlen(topic_prefix) >= sizeof cfg.topic_prefix)
            return cli_usage_error("export", "--topic-prefix is longer than %zu bytes",
                                   sizeof cfg.topic_prefix - 1);
        /* The same rule as the policy's export topic_prefix: Kafka topic
         * names hold ASCII letters, digits, '.', '_' and '-'. */
        size_t valid = strspn(topic_prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789._-");
        if (topic_prefix[valid] != '\0')
            return cli_usage_error("export", "invalid --topic-prefix '%s': byte %zu is not a "
                                             "letter, digit, '.', '_' or '-', which are the "
                                             "characters of Kafka topic names",
                                   topic_prefix, valid + 1);
        snprintf(cfg.topic_prefix, sizeof cfg.topic_prefix, "%s", topic_prefix);
    }
    char host[256], port[8];
    if (cfg.kind == EXP_IPFIX &&
        exp_parse_host_port(target, host, sizeof host, port, sizeof port) != FV_OK)
        return cli_usage_error("export", "invalid --ipfix '%s': expected HOST:PORT or "
                               "[IPV6]:PORT with a port from 1 to 65535",
                               target);

    uint32_t classes = 0;
    if (class_list != NULL && send_parse_classes(class_list, &classes) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    /* IPFIX collectors such as nfdump store DNS and TLS records as flows
     * without packets, which inflates their flow counts. So only flows
     * are sent unless --class names more classes. */
    if (classes == 0) {
        for (unsigned k = 0; k < FV_CLASS_COUNT; k++)
            if (cfg.kind == EXP_KAFKA || k == FV_CLASS_FLOW)
                classes |= EXP_CLASS_BIT(k);
    }
    if (!rate_given)
        rate = cfg.kind == EXP_IPFIX && !tcp ? SEND_UDP_RATE_DEFAULT : 0;
    for (unsigned k = 0; k < FV_CLASS_COUNT; k++) {
        if ((classes & EXP_CLASS_BIT(k)) != 0 && cfg.kind == EXP_IPFIX &&
            !exp_ipfix_carries((fv_class)k))
            return cli_usage_error("export", "IPFIX export carries flows, dns and tls, not %s; "
                                   "send %s records with --kafka",
                                   fv_class_name((fv_class)k), fv_class_name((fv_class)k));
    }
    cfg.classes = classes;

    char err[1024];
    store_env *store = NULL;
    exp_exporter *exporter = NULL;
    int rc;
    uint64_t undecryptable = 0;
    uint64_t now_us = now_s != 0 ? now_s * 1000000u : fv_now_us();

    /* Read-write for the audit entry, but never create a store. */
    rc = store_open(db, STORE_EXISTING, &store, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    for (unsigned k = 0; k < FV_CLASS_COUNT; k++)
        cfg.retention_s[k] = store_retention_s(store, (fv_class)k);

    rc = exp_create(&cfg, &exporter, err, sizeof err);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        store_close(&store);
        return CLI_EXIT_FAILURE;
    }

    send_ctx s = {.store = store, .exporter = exporter, .now_us = now_us, .read = 0,
                  .rc = FV_OK, .rate = rate};
    s.alert_status = malloc(sizeof *s.alert_status);
    if (s.alert_status == NULL)
        rc = FV_ERR_NOMEM;
    for (unsigned k = 0; rc == FV_OK && k < FV_CLASS_COUNT; k++) {
        if ((classes & EXP_CLASS_BIT(k)) != 0)
            rc = send_class(store, (fv_class)k, from_us, to_us, &s, &undecryptable);
    }
    free(s.alert_status);
    int flush_rc = exp_flush(exporter, now_us, timeout_s * 1000u);
    exp_stats st;
    exp_stats_get(exporter, &st);
    exp_destroy(&exporter);

    if (rc == FV_OK) {
        char params[512], classes_text[128] = "";
        size_t used = 0;
        for (unsigned k = 0; k < FV_CLASS_COUNT; k++) {
            if ((classes & EXP_CLASS_BIT(k)) == 0)
                continue;
            int n = snprintf(classes_text + used, sizeof classes_text - used, "%s%s",
                             used > 0 ? "," : "", fv_class_name((fv_class)k));
            if (n < 0 || (size_t)n >= sizeof classes_text - used)
                break;
            used += (size_t)n;
        }
        snprintf(params, sizeof params, "to=%s&transport=%s&destination=%.200s",
                 cfg.kind == EXP_IPFIX ? "ipfix" : "kafka",
                 cfg.kind == EXP_KAFKA ? "kafka" : (tcp ? "tcp" : "udp"), target);
        char actor[64];
        cli_audit_local_actor(actor, sizeof actor);
        rc = cli_audit_append(store, actor, "export", classes_text, params, st.sent, now_us);
    }
    store_close(&store);

    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: export from %s to %s failed: %s\n", db, target,
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    /* Only Kafka acknowledges records. UDP cannot tell whether a datagram
     * arrived, and TCP only that the kernel took the bytes. */
    if (cfg.kind == EXP_KAFKA)
        fprintf(stderr,
                "flowveil: read %llu records, sent %llu to %s (Kafka): delivered %llu, failed "
                "%llu, dropped %llu\n",
                (unsigned long long)s.read, (unsigned long long)st.sent, target,
                (unsigned long long)st.delivered, (unsigned long long)st.failed,
                (unsigned long long)st.dropped_queue_full);
    else
        fprintf(stderr,
                "flowveil: read %llu records, sent %llu to %s (IPFIX over %s, %s): failed "
                "%llu, IPFIX messages %llu\n",
                (unsigned long long)s.read, (unsigned long long)st.sent, target,
                tcp ? "TCP" : "UDP",
                tcp ? "accepted by the connection, not confirmed by the collector"
                    : "not confirmed: UDP reports no loss",
                (unsigned long long)st.failed, (unsigned long long)st.messages);
    if (flush_rc != FV_OK || st.failed > 0 || st.dropped_queue_full > 0 ||
        (cfg.kind == EXP_KAFKA && st.delivered < st.sent)) {
        fprintf(stderr, "flowveil: error: not every record reached %s; check that the "
                        "destination is reachable and run the export again\n",
                target);
        return CLI_EXIT_FAILURE;
    }
    if (undecryptable > 0) {
        fprintf(stderr,
                "flowveil: warning: %llu records could not be decrypted and were not sent: the "
                "data key of their day is missing from %s/data.keys or the record is damaged\n",
                (unsigned long long)undecryptable, db);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
