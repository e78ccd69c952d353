/*
 * cmd_serve.c: `flowveil serve`, the dashboard and JSON API.
 *
 * serve opens the store read-only and never opens the pseudonymization
 * key file: everything it can return is already pseudonymized, and a
 * compromise of the web side cannot recompute pseudonyms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "store.h"

static void print_serve_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil serve --db DIR [--listen ADDR:PORT] [--web DIR]\n"
            "\n"
            "Serve the dashboard and the JSON API (read-only) until SIGINT or SIGTERM.\n"
            "\n"
            "  -d, --db DIR          store directory written by ingest or capture\n"
            "  -l, --listen ADDR:PORT address and TCP port (default 127.0.0.1:8080;\n"
            "                        IPv6 as [::1]:8080; port 0 picks a free port)\n"
            "  -w, --web DIR         dashboard files (default: the installed copy, else\n"
            "                        the source tree's web/)\n");
}

/* Split "ADDR:PORT" or "[V6]:PORT" into ADDR (copied into BUF) and PORT.
 * Returns true on success. */
static bool parse_listen(const char *text, char *buf, size_t buf_len, uint16_t *port)
{
    const char *colon;
    const char *host;
    size_t host_len;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return false;
        host = text + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return false;
        host = text;
        host_len = (size_t)(colon - text);
    }
    if (host_len == 0 || host_len >= buf_len)
        return false;
    memcpy(buf, host, host_len);
    buf[host_len] = '\0';

    const char *p = colon + 1;
    if (*p == '\0')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(p, &end, 10);
    if (*end != '\0' || errno != 0 || v > 65535 || p[0] == '-' || p[0] == '+')
        return false;
    *port = (uint16_t)v;

    unsigned char tmp[16];
    return inet_pton(AF_INET, buf, tmp) == 1 || inet_pton(AF_INET6, buf, tmp) == 1;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The dashboard directory: --web, then the installed copy, then the
 * source tree (for running straight from a build directory). */
static const char *find_web_root(const char *requested)
{
    if (requested != NULL)
        return requested;
    if (is_dir(FLOWVEIL_WEB_DIR))
        return FLOWVEIL_WEB_DIR;
    return FLOWVEIL_SOURCE_WEB_DIR;
}

int cli_cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"web", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    const char *listen_text = "127.0.0.1:8080";
    const char *web = NULL;

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:l:w:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'l': listen_text = optarg; break;
        case 'w': web = optarg; break;
        case 'h': print_serve_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("serve", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (db == NULL)
        return cli_usage_error("serve", "missing --db DIR (the store directory)");

    char addr[64];
    uint16_t port = 0;
    if (!parse_listen(listen_text, addr, sizeof addr, &port))
        return cli_usage_error("serve",
                               "invalid --listen value '%s': expected ADDR:PORT with an IP "
                               "address and a port 0-65535, e.g. 127.0.0.1:8080 or [::1]:8080",
                               listen_text);

    const char *web_root = find_web_root(web);
    if (!is_dir(web_root)) {
        fprintf(stderr, "flowveil: error: dashboard directory '%s' not found; pass --web DIR "
                        "pointing at the web/ folder\n",
                web_root);
        return CLI_EXIT_FAILURE;
    }

    /* Block the stop signals before the server threads start, so they
     * inherit the mask and only sigsuspend() below receives them: no
     * signal can slip in between testing the flag and waiting. */
    cli_install_stop_handlers();
    sigset_t stop_set, old_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, &old_set);

    char err[1024];
    store_env *store = NULL;
    if (store_open(db, STORE_RDONLY, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }

    api_config cfg = {
        .store = store,
        .listen_addr = addr,
        .port = port,
        .web_root = web_root,
    };
    api_server *server = NULL;
    if (api_server_start(&cfg, &server, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        store_close(&store);
        return CLI_EXIT_FAILURE;
    }

    bool v6 = strchr(addr, ':') != NULL;
    printf("flowveil: serving http://%s%s%s:%u/\n", v6 ? "[" : "", addr, v6 ? "]" : "",
           (unsigned)api_server_port(server));
    fflush(stdout);

    while (!*cli_stop_flag())
        sigsuspend(&old_set);

    fv_notice("stopping the server");
    api_server_stop(&server);
    store_close(&store);
    return CLI_EXIT_OK;
}
