/*
 * cmd_collect.c: `flowveil collect`: receive NetFlow v5, v9 and IPFIX
 * over UDP and run the decoded flows through the pipeline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "aggregate.h"
#include "collect.h"
#include "pipeline.h"

#define COLLECT_MAX_LISTENERS 16
#define COLLECT_DEFAULT_LISTEN "127.0.0.1:2055"
/* Largest UDP payload over IPv4 or IPv6 without jumbograms. */
#define COLLECT_DATAGRAM_MAX 65535u
/* Datagrams read per socket per poll round, so one busy exporter cannot
 * starve the timer work. */
#define COLLECT_BURST 256
/* How often the collector's counters are added to the store. */
#define COLLECT_COUNTER_INTERVAL_US (10u * 1000000u)
/* Receive buffer asked of the kernel: bursts of exports arrive faster
 * than the pipeline stores them. The kernel may grant less. */
#define COLLECT_RCVBUF_BYTES (4 * 1024 * 1024)

enum { OPT_TEMPLATE_TIMEOUT = 256, OPT_MAX_DOMAINS, OPT_MAX_TEMPLATES, OPT_DOMAIN_IDLE };

static void print_collect_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil collect --policy FILE --db DIR [--listen ADDR:PORT]...\n"
            "\n"
            "Receive NetFlow v5, NetFlow v9 and IPFIX over UDP until SIGINT or SIGTERM, and\n"
            "store the flows pseudonymized under the policy, like captured flows. Each\n"
            "exporter record is one direction of traffic and becomes one flow record;\n"
            "sampled counts are multiplied by the sampling interval (docs/SCALING.md).\n"
            "\n"
            "  -p, --policy FILE          compliance policy (YAML)\n"
            "  -d, --db DIR               store directory (created if missing)\n"
            "  -l, --listen ADDR:PORT     UDP address to receive on, IPv6 as [ADDR]:PORT;\n"
            "                             repeat for several (up to %d). Default "
            COLLECT_DEFAULT_LISTEN "\n"
            "      --template-timeout S   drop a v9 or IPFIX template not refreshed for S\n"
            "                             seconds (default 1800)\n"
            "      --max-domains N        exporter and observation domain pairs kept\n"
            "                             (default 1024); datagrams of others are counted\n"
            "                             in collect_domains_refused and dropped\n"
            "      --max-templates N      templates kept over all exporters (default 8192);\n"
            "                             one exporter domain may hold a quarter of them\n"
            "      --domain-idle S        drop an exporter domain and its templates after S\n"
            "                             seconds without a datagram (default 3600)\n"
            "  -v, --verbose              print more progress information\n"
            "\n"
            "Signals: SIGINT or SIGTERM stop after storing what was received, SIGHUP\n"
            "rereads the policy, SIGUSR1 logs the running counters.\n",
            COLLECT_MAX_LISTENERS);
}

/* One bound UDP socket and the text of its address for messages. */
typedef struct collect_listener {
    int fd;
    char name[80];
} collect_listener;

typedef struct collect_options {
    const char *policy;
    const char *db;
    const char *listen[COLLECT_MAX_LISTENERS];
    int listen_count;
    col_config config;
} collect_options;

/* Parse a positive 32-bit count for OPTION. Returns CLI_EXIT_OK or a
 * usage error. */
static int parse_count(const char *option, const char *text, uint32_t *out)
{
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!(text[0] >= '0' && text[0] <= '9') || *end != '\0' || errno != 0 || v == 0 ||
        v > UINT32_MAX)
        return cli_usage_error("collect", "invalid %s value '%s': expected a whole number from "
                                          "1 to 4294967295",
                               option, text);
    *out = (uint32_t)v;
    return CLI_EXIT_OK;
}

/* Parse options. Returns -1 to go on, or an exit status. */
static int parse_collect_options(int argc, char **argv, collect_options *o)
{
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"template-timeout", required_argument, NULL, OPT_TEMPLATE_TIMEOUT},
        {"max-domains", required_argument, NULL, OPT_MAX_DOMAINS},
        {"max-templates", required_argument, NULL, OPT_MAX_TEMPLATES},
        {"domain-idle", required_argument, NULL, OPT_DOMAIN_IDLE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":p:d:l:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o->policy = optarg; break;
        case 'd': o->db = optarg; break;
        case 'l':
            if (o->listen_count == COLLECT_MAX_LISTENERS)
                return cli_usage_error("collect", "too many --listen options: at most %d",
                                       COLLECT_MAX_LISTENERS);
            o->listen[o->listen_count++] = optarg;
            break;
        case OPT_TEMPLATE_TIMEOUT:
            if (parse_count("--template-timeout", optarg, &o->config.template_timeout_s) !=
                CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_MAX_DOMAINS:
            if (parse_count("--max-domains", optarg, &o->config.max_domains) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_MAX_TEMPLATES:
            if (parse_count("--max-templates", optarg, &o->config.max_templates) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_DOMAIN_IDLE:
            if (parse_count("--domain-idle", optarg, &o->config.domain_idle_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case 'v': fv_log_set_level(FV_LOG_INFO); break;
        case 'h': print_collect_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("collect", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("collect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("collect", "unexpected argument '%s'", argv[optind]);
    if (o->policy == NULL)
        return cli_usage_error("collect", "missing --policy FILE (the compliance policy)");
    if (o->db == NULL)
        return cli_usage_error("collect", "missing --db DIR (the store directory)");
    if (o->listen_count == 0)
        o->listen[o->listen_count++] = COLLECT_DEFAULT_LISTEN;
    return -1;
}

/*
 * Parse TEXT ("192.0.2.1:2055" or "[2001:db8::1]:2055", port 0 lets the
 * kernel choose) into *ADDR. Returns true on success.
 */
static bool parse_listen_address(const char *text, struct sockaddr_storage *addr,
                                 socklen_t *addr_len)
{
    char host[64];
    const char *port_text;
    memset(addr, 0, sizeof *addr);

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return false;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || (size_t)(colon - text) >= sizeof host)
            return false;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }

    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(port_text, &end, 10);
    if (!(port_text[0] >= '0' && port_text[0] <= '9') || *end != '\0' || errno != 0 ||
        port > 65535)
        return false;

    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 && text[0] != '[') {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *addr_len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 && text[0] == '[') {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *addr_len = sizeof *v6;
        return true;
    }
    return false;
}

/* Write the bound address of FD as "ADDR:PORT" or "[ADDR]:PORT" into OUT. */
static void format_bound_address(int fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
            port = ntohs(v4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
            port = ntohs(v6->sin6_port);
        }
    }
    if (ss.ss_family == AF_INET6)
        snprintf(out, out_len, "[%s]:%u", host, port);
    else
        snprintf(out, out_len, "%s:%u", host, port);
}

/* Open and bind a UDP socket for TEXT. Returns FV_OK or an error with a
 * message in ERR. */
static int open_listener(const char *text, collect_listener *l, char *err, size_t err_len)
{
    struct sockaddr_storage addr;
    socklen_t addr_len = 0;
    l->fd = -1;
    bool parsed = parse_listen_address(text, &addr, &addr_len);
    if (!parsed) {
        snprintf(err, err_len, "invalid --listen value '%s': expected ADDR:PORT such as "
                 "127.0.0.1:2055, or [ADDR]:PORT for IPv6 such as [::1]:2055",
                 text);
        return FV_ERR_INVALID;
    }
    int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, err_len, "%s: cannot create a UDP socket: %s", text, strerror(errno));
        return FV_ERR_IO;
    }
    if (addr.ss_family == AF_INET6) {
        int only = 1;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
    }
    int rcvbuf = COLLECT_RCVBUF_BYTES;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0) {
        int e = errno;
        if (e == EADDRNOTAVAIL)
            snprintf(err, err_len, "%s: cannot bind the UDP socket: %s; the address is not one "
                     "of this host's, so use a local address such as 0.0.0.0 or 127.0.0.1",
                     text, strerror(e));
        else
            snprintf(err, err_len, "%s: cannot bind the UDP socket: %s; choose a free port, or "
                     "a port from 1024 up when not running as root",
                     text, strerror(e));
        close(fd);
        return FV_ERR_IO;
    }
    l->fd = fd;
    format_bound_address(fd, l->name, sizeof l->name);
    return FV_OK;
}

/* Running state shared with the flow callback. */
typedef struct collect_state {
    fv_pipeline *pipeline;
    col_collector *collector;
    col_stats saved;            /* counters already added to the store */
    uint64_t last_saved_us;
} collect_state;

static void collect_on_flow(void *ctx, const cap_flow *flow)
{
    collect_state *st = ctx;
    fv_pipeline_flow(st->pipeline, flow);
}

/*
 * Add the collector counters gathered since the last call to the store
 * as "collect_<name>", so `flowveil serve` shows them under
 * /api/v1/counters next to the capture counters.
 */
static void save_collect_counters(collect_state *st)
{
    size_t count = 0;
    const char *const *names = col_stats_names(&count);
    enum { MAX_COUNTERS = sizeof(col_stats) / sizeof(uint64_t) };
    char name_buf[MAX_COUNTERS][64];
    const char *prefixed[MAX_COUNTERS];
    uint64_t now_values[MAX_COUNTERS], saved_values[MAX_COUNTERS], delta[MAX_COUNTERS];

    col_stats now;
    col_collector_stats(st->collector, &now);
    memcpy(now_values, &now, sizeof now_values);
    memcpy(saved_values, &st->saved, sizeof saved_values);
    for (size_t i = 0; i < count && i < MAX_COUNTERS; i++) {
        snprintf(name_buf[i], sizeof name_buf[i], "collect_%s", names[i]);
        prefixed[i] = name_buf[i];
        delta[i] = now_values[i] - saved_values[i];
    }
    int rc = store_capture_counters_add(st->pipeline->store, prefixed, delta, count);
    if (rc == FV_OK)
        st->saved = now;
    else
        fv_warning("could not store the collector counters: %s", fv_strerror(rc));
}

static void log_collect_counters(const collect_state *st)
{
    col_stats s;
    col_collector_stats(st->collector, &s);
    fv_notice("counters: %llu datagrams (v5 %llu, v9 %llu, ipfix %llu), %llu records, "
              "%llu flows stored, %llu malformed, %llu template misses, %llu sequence gaps, "
              "%llu unsupported versions, %zu templates held, %llu domains refused, "
              "%llu domains expired, %llu templates refused, %llu records out of range",
              (unsigned long long)s.datagrams, (unsigned long long)s.datagrams_v5,
              (unsigned long long)s.datagrams_v9, (unsigned long long)s.datagrams_ipfix,
              (unsigned long long)s.records,
              (unsigned long long)st->pipeline->records[FV_CLASS_FLOW],
              (unsigned long long)s.malformed, (unsigned long long)s.template_misses,
              (unsigned long long)s.sequence_gaps, (unsigned long long)s.unsupported_version,
              col_collector_template_count(st->collector), (unsigned long long)s.domains_refused,
              (unsigned long long)s.domains_expired, (unsigned long long)s.templates_refused,
              (unsigned long long)s.records_out_of_range);
}

/* Read up to COLLECT_BURST datagrams from L into the collector. */
static void receive_burst(collect_state *st, const collect_listener *l, uint8_t *buf)
{
    for (int i = 0; i < COLLECT_BURST; i++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(l->fd, buf, COLLECT_DATAGRAM_MAX, 0, (struct sockaddr *)&from,
                             &from_len);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                fv_warning("%s: receiving failed: %s", l->name, strerror(errno));
            return;
        }
        cap_ip exporter;
        memset(&exporter, 0, sizeof exporter);
        if (from.ss_family == AF_INET) {
            exporter.family = 4;
            memcpy(exporter.addr, &((struct sockaddr_in *)&from)->sin_addr, 4);
        } else {
            exporter.family = 6;
            memcpy(exporter.addr, &((struct sockaddr_in6 *)&from)->sin6_addr, 16);
        }
        uint64_t now_s = fv_pipeline_now_us(st->pipeline) / 1000000u;
        /* Faults are counted by the collector; one bad datagram never
         * stops the others. */
        (void)col_collector_datagram(st->collector, &exporter, buf, (size_t)n, now_s);
    }
}

/* Append the "collect" audit entry: the records stored per class. */
static void audit_collect(fv_pipeline *p, const char *object)
{
    char params[512];
    size_t used = 0;
    uint64_t total = 0;
    params[0] = '\0';
    for (unsigned c = 0; c < FV_CLASS_COUNT; c++) {
        total += p->records[c];
        int n = snprintf(params + used, sizeof params - used, "%s%s=%llu", c == 0 ? "" : "&",
                         fv_class_name((fv_class)c), (unsigned long long)p->records[c]);
        if (n < 0 || !((size_t)n < sizeof params - used))
            break;
        used += (size_t)n;
    }
    (void)cli_audit_append(p->store, "system", "collect.stop", object, params, total,
                           fv_pipeline_now_us(p));
}

/* Receive until a stop signal, with the pipeline's periodic work about
 * once a second. */
static void collect_loop(collect_state *st, const collect_options *o, collect_listener *listeners,
                         int count, uint8_t *buf)
{
    struct pollfd fds[COLLECT_MAX_LISTENERS];
    for (int i = 0; i < count; i++) {
        fds[i].fd = listeners[i].fd;
        fds[i].events = POLLIN;
    }
    uint64_t last_tick_us = fv_pipeline_now_us(st->pipeline);

    while (!*cli_stop_flag()) {
        int ready = poll(fds, (nfds_t)count, 1000);
        if (ready < 0 && errno != EINTR) {
            fv_error("waiting for datagrams failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; ready > 0 && i < count; i++) {
            if ((fds[i].revents & POLLIN) != 0)
                receive_burst(st, &listeners[i], buf);
        }

        uint64_t now_us = fv_pipeline_now_us(st->pipeline);
        if (cli_reload_take())
            (void)fv_pipeline_reload(st->pipeline, o->policy, now_us);
        if (cli_counters_take())
            log_collect_counters(st);
        if (now_us - last_tick_us >= 1000000u) {
            col_collector_expire(st->collector, now_us / 1000000u);
            if (fv_pipeline_tick(st->pipeline, now_us, false) != FV_OK) {
                fv_error("storing records failed; stopping the collector");
                break;
            }
            last_tick_us = now_us;
        }
        if (now_us - st->last_saved_us >= COLLECT_COUNTER_INTERVAL_US) {
            save_collect_counters(st);
            st->last_saved_us = now_us;
        }
    }
}

int cli_cmd_collect(int argc, char **argv)
{
    collect_options o;
    int status = parse_collect_options(argc, argv, &o);
    if (status >= 0)
        return status;

    char err[1024];
    collect_listener listeners[COLLECT_MAX_LISTENERS];
    int opened = 0;
    int exit_status = CLI_EXIT_FAILURE;
    uint8_t *buf = NULL;
    col_collector *collector = NULL;
    fv_pipeline p;
    bool pipeline_open = false;
    collect_state st = {.pipeline = &p};
    int rc;

    /* Sockets first: a port in use must leave no store behind. */
    for (int i = 0; i < o.listen_count; i++) {
        rc = open_listener(o.listen[i], &listeners[i], err, sizeof err);
        if (rc == FV_ERR_INVALID) {
            exit_status = cli_usage_error("collect", "%s", err);
            goto out;
        }
        if (rc != FV_OK) {
            fprintf(stderr, "flowveil: error: %s\n", err);
            goto out;
        }
        opened++;
    }

    buf = malloc(COLLECT_DATAGRAM_MAX);
    if (buf == NULL) {
        fprintf(stderr, "flowveil: error: out of memory for the receive buffer\n");
        goto out;
    }

    cli_install_stop_handlers();
    cli_install_reload_handler();
    cli_install_counters_handler();

    if (fv_pipeline_open(&p, o.policy, o.db, 0, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        goto out;
    }
    pipeline_open = true;

    st.last_saved_us = fv_pipeline_now_us(&p);
    rc = col_collector_create(&o.config, collect_on_flow, &st, &collector);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot create the collector: %s\n", fv_strerror(rc));
        goto out;
    }
    st.collector = collector;

    for (int i = 0; i < opened; i++)
        printf("flowveil: collecting on udp %s\n", listeners[i].name);
    fflush(stdout);
    (void)cli_audit_append(p.store, "system", "collect.start", listeners[0].name, NULL, 0,
                           fv_pipeline_now_us(&p));

    collect_loop(&st, &o, listeners, opened, buf);
    fv_notice("stopping: storing what was received");

    fv_aggregator_flush(p.aggregates);
    fv_pipeline_tick(&p, fv_pipeline_now_us(&p), true);
    save_collect_counters(&st);
    store_counters delta = {
        .flows = p.records[FV_CLASS_FLOW],
        .last_ingest_us = fv_pipeline_now_us(&p),
    };
    if (store_counters_add(p.store, &delta) != FV_OK)
        fv_warning("could not update the ingest counters in the store");
    log_collect_counters(&st);
    audit_collect(&p, listeners[0].name);
    exit_status = CLI_EXIT_OK;

out:
    if (pipeline_open) {
        rc = fv_pipeline_close(&p);
        if (rc != FV_OK) {
            fprintf(stderr, "flowveil: error: %s: storing records failed: %s\n", o.db,
                    fv_strerror(rc));
            exit_status = CLI_EXIT_FAILURE;
        }
    }
    col_collector_destroy(&collector);
    free(buf);
    for (int i = 0; i < opened; i++)
        close(listeners[i].fd);
    return exit_status;
}
