/*
 * cmd_serve.c: `flowveil serve`, the dashboard and JSON API.
 *
 * serve reads records only and never opens the pseudonymization key
 * file: everything it can return is already pseudonymized, and a
 * compromise of the web side cannot recompute pseudonyms. It opens the
 * store read-write for the audit entry of each API request and for the
 * first user: a store without users gets the user "admin" with a random
 * password (or the one of --admin-password-file), printed once. That user
 * is created only once the server listens, so a failed start adds none.
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

#include <jansson.h>
#include <sodium.h>

#include "api.h"
#include "cli.h"
#include "config.h"
#include "minimize.h"
#include "policy.h"
#include "report.h"
#include "store.h"

/* The policy of `serve --policy`, swapped on SIGHUP under LOCK while the
 * API threads read it for the compliance routes. */
typedef struct serve_policy {
    pthread_mutex_t lock;
    pol_policy *policy;     /* NULL without --policy */
    const char *path;
} serve_policy;

static char *hash_hex16(const pol_policy *policy, char out[17])
{
    uint8_t hash[32];
    pol_hash(policy, hash);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
    return out;
}

/* Serialize a document model as {"markdown", "html", "blocks"}: blocks
 * let the dashboard build DOM nodes with text content only. */
static json_t *document_json(const rpt_doc *doc)
{
    char *md = rpt_render_markdown(doc);
    char *html = rpt_render_html(doc, "/report.css");
    json_t *blocks = json_array();
    static const char *const kinds[] = {"title", "heading", "paragraph", "item", "head", "row"};
    for (size_t i = 0; blocks != NULL && i < doc->count; i++) {
        json_t *cells = json_array();
        for (size_t c = 0; cells != NULL && c < doc->blocks[i].cell_count; c++)
            json_array_append_new(cells, json_string(doc->blocks[i].cells[c]));
        json_array_append_new(blocks, json_pack("{s:s, s:o*}", "kind",
                                                kinds[doc->blocks[i].kind], "cells", cells));
    }
    json_t *obj = NULL;
    if (md != NULL && html != NULL && blocks != NULL)
        obj = json_pack("{s:s, s:s, s:o}", "markdown", md, "html", html, "blocks", blocks);
    else
        json_decref(blocks);
    free(md);
    free(html);
    return obj;
}

/* api_config.role_may_read_fn: the policy's roles map. */
static bool serve_role_may_read(void *ctx, const char *role, const char *item)
{
    serve_policy *sp = ctx;
    pol_role r;
    bool may = false;

    if (pol_role_from_name(role, &r) != FV_OK)
        return false;
    pthread_mutex_lock(&sp->lock);
    may = sp->policy == NULL || pol_role_may_read(sp->policy, r, item);
    pthread_mutex_unlock(&sp->lock);
    return may;
}

/* The zone networks that overlap a host filter's network (note_zone_net). */
typedef struct net_zones {
    const pol_policy *policy;
    int family;
    const char *container;      /* the most specific zone containing the whole network */
    bool text;                  /* a zone inside it stores addresses as text */
} net_zones;

/* True if ZONE stores the addresses of FAMILY as text (keep, truncate). */
static bool zone_stores_text(const pol_policy *policy, const char *zone, int family)
{
    pol_addr_mode mode = POL_ADDR_PSEUDONYMIZE;
    unsigned prefix = 0;
    return pol_zone_address_mode(policy, zone, family, &mode, &prefix) == FV_OK &&
           (mode == POL_ADDR_KEEP || mode == POL_ADDR_TRUNCATE);
}

/* pol_zone_net_fn of serve_address_zone. Networks come longest prefix
 * first, so the first one that contains the whole filter is the
 * most specific. */
static bool note_zone_net(void *ctx, const char *zone, unsigned zone_prefix, bool contains)
{
    net_zones *z = ctx;
    (void)zone_prefix;
    if (contains) {
        if (z->container == NULL)
            z->container = zone;
        return true;
    }
    z->text = z->text || zone_stores_text(z->policy, zone, z->family);
    return !z->text;
}

/* True if some zone of POLICY stores the addresses of FAMILY in
 * prefix-preserving mode, whose output can lie anywhere, even inside a
 * pseudonymizing zone. */
static bool policy_has_prefix_output(const pol_policy *policy, int family)
{
    for (size_t i = 0; i < pol_zone_count(policy); i++) {
        pol_addr_mode mode = POL_ADDR_PSEUDONYMIZE;
        unsigned prefix = 0;
        if (pol_zone_address_mode(policy, pol_zone_name(policy, i), family, &mode, &prefix) ==
                FV_OK &&
            mode == POL_ADDR_PREFIX_PRESERVING)
            return true;
    }
    return false;
}

/* The zone of the IPv6 network FIRST to LAST when every address in it
 * carries one and the same IPv4 address of a zone, else NULL. The forms
 * are those of pol_zone_of: IPv4-compatible, NAT64, 6to4 and ISATAP. */
static const char *embedded_network_zone(const pol_policy *policy, const uint8_t first[16],
                                         const uint8_t last[16])
{
    int offset = pol_embedded_ipv4_offset(policy, first);
    if (offset < 0 || pol_embedded_ipv4_offset(policy, last) != offset ||
        memcmp(first + offset / 8, last + offset / 8, 4) != 0)
        return NULL;
    return pol_zone_of(policy, 6, first);
}

/*
 * api_config.address_zone_fn. The filter network ADDR/PREFIX_LEN can
 * never match when one zone contains all of it, that zone stores its
 * addresses as pseudonyms (pseudonymize, prefix-preserving), and no
 * zone nested inside it stores them as text. Link-local networks
 * outside every zone are pseudonymized under their own label.
 */
static int serve_address_zone(void *ctx, int family, const uint8_t addr[16], unsigned prefix_len,
                              char *zone, size_t zone_len)
{
    serve_policy *sp = ctx;
    int storage = API_ADDR_AS_TEXT;

    pthread_mutex_lock(&sp->lock);
    net_zones z = {.policy = sp->policy, .family = family};
    if (sp->policy != NULL)
        pol_network_zones_each(sp->policy, family, addr, prefix_len, note_zone_net, &z);
    if (sp->policy != NULL && z.container == NULL && !z.text) {
        uint8_t last[16];
        unsigned bits = family == 4 ? 32u : 128u;
        memcpy(last, addr, 16);
        for (unsigned bit = prefix_len; bit < bits; bit++)
            last[bit / 8u] |= (uint8_t)(0x80u >> (bit % 8u));
        if (family == 6)
            z.container = embedded_network_zone(sp->policy, addr, last);
        const char *first_label = fv_identity_zone(sp->policy, family, addr);
        const char *last_label = fv_identity_zone(sp->policy, family, last);
        if (first_label != NULL && last_label != NULL &&
            strcmp(first_label, FV_ZONE_LINK_LOCAL) == 0 &&
            strcmp(last_label, FV_ZONE_LINK_LOCAL) == 0)
            z.container = FV_ZONE_LINK_LOCAL;
    }
    if (z.container != NULL && !z.text &&
        !zone_stores_text(sp->policy, z.container, family)) {
        snprintf(zone, zone_len, "%s", z.container);
        storage = policy_has_prefix_output(sp->policy, family) ? API_ADDR_PREFIX_OUTPUT
                                                                : API_ADDR_PSEUDONYMIZED;
    }
    pthread_mutex_unlock(&sp->lock);
    return storage;
}

/* Append LABEL to the comma-separated LIST of LIST_LEN bytes; a label
 * that does not fit is left out and the list ends with ", ...". */
static void label_append(char *list, size_t list_len, const char *label)
{
    size_t used = strlen(list);
    int n = snprintf(list + used, list_len - used, "%s%s", used > 0 ? ", " : "", label);
    if (n < 0 || !((size_t)n < list_len - used)) {
        list[used] = '\0';
        if (used + 5 < list_len)
            memcpy(list + used, ", ...", 6);
    }
}

/* api_config.zone_known_fn: the zone names of the policy, "external"
 * for addresses outside every zone and, when the policy has zones, the
 * label of link-local addresses (fv_identity_zone). */
static bool serve_zone_known(void *ctx, const char *zone, char *labels, size_t labels_len)
{
    serve_policy *sp = ctx;
    bool known = strcmp(zone, FV_ZONE_EXTERNAL) == 0;

    labels[0] = '\0';
    pthread_mutex_lock(&sp->lock);
    size_t zones = sp->policy != NULL ? pol_zone_count(sp->policy) : 0;
    for (size_t i = 0; i < zones; i++) {
        const char *name = pol_zone_name(sp->policy, i);
        known = known || strcmp(zone, name) == 0;
        label_append(labels, labels_len, name);
    }
    pthread_mutex_unlock(&sp->lock);
    label_append(labels, labels_len, FV_ZONE_EXTERNAL);
    if (zones > 0) {
        known = known || strcmp(zone, FV_ZONE_LINK_LOCAL) == 0;
        label_append(labels, labels_len, FV_ZONE_LINK_LOCAL);
    }
    return known;
}

static int serve_compliance(void *ctx, store_env *store, const char *document, uint64_t from_us,
                            uint64_t to_us, uint64_t now_us, char **out_json)
{
    serve_policy *sp = ctx;
    *out_json = NULL;
    json_t *obj = NULL;
    rpt_doc doc = {0};
    int rc = FV_OK;

    pthread_mutex_lock(&sp->lock);
    if (sp->policy == NULL) {
        rc = FV_ERR_NOT_FOUND;
    } else if (strcmp(document, "policy") == 0) {
        char summary[8192], hex[17];
        rc = pol_summary(sp->policy, summary, sizeof summary);
        if (rc == FV_OK)
            obj = json_pack("{s:s, s:s}", "summary", summary, "hash",
                            hash_hex16(sp->policy, hex));
    } else if (strcmp(document, "processing") == 0) {
        rc = rpt_processing(sp->policy, now_us, &doc);
        if (rc == FV_OK)
            obj = document_json(&doc);
    } else {
        rc = rpt_transparency(sp->policy, store, from_us, to_us, now_us, &doc);
        if (rc == FV_OK)
            obj = document_json(&doc);
    }
    pthread_mutex_unlock(&sp->lock);
    rpt_doc_free(&doc);

    if (rc == FV_OK && obj == NULL)
        rc = FV_ERR_NOMEM;
    if (obj != NULL) {
        *out_json = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        if (*out_json == NULL && rc == FV_OK)
            rc = FV_ERR_NOMEM;
    }
    return rc;
}

/* Reload the policy file after SIGHUP. An invalid file is logged and the
 * running policy stays. */
static void serve_reload(serve_policy *sp, store_env *store)
{
    char err[1024];
    pol_policy *next = NULL;
    if (pol_load(sp->path, &next, err, sizeof err) != FV_OK) {
        fv_error("policy reload rejected, the running policy stays in force: %s", err);
        return;
    }
    pthread_mutex_lock(&sp->lock);
    pol_policy *old_policy = sp->policy;
    sp->policy = next;
    pthread_mutex_unlock(&sp->lock);

    char old_hex[17], new_hex[17], summary[1024];
    hash_hex16(old_policy, old_hex);
    hash_hex16(next, new_hex);
    if (pol_diff_summary(old_policy, next, summary, sizeof summary) != FV_OK)
        snprintf(summary, sizeof summary, "policy changed (summary too long to record)");
    fv_notice("policy reloaded from %s: old=%s new=%s: %s", sp->path, old_hex, new_hex, summary);

    if (strcmp(old_hex, new_hex) != 0) {
        store_audit_entry e;
        memset(&e, 0, sizeof e);
        snprintf(e.actor, sizeof e.actor, "system");
        snprintf(e.action, sizeof e.action, "policy.change");
        snprintf(e.object, sizeof e.object, "policy");
        snprintf(e.params, sizeof e.params, "old=%s new=%s", old_hex, new_hex);
        snprintf(e.reason, sizeof e.reason, "%.255s", summary);
        int rc = store_audit_append(store, &e, fv_now_us(), NULL);
        if (rc != FV_OK)
            fv_warning("could not append the policy change to the audit log: %s",
                       fv_strerror(rc));
    }
    pol_destroy(&old_policy);
}

static void print_serve_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil serve --db DIR [--listen ADDR:PORT] [--web DIR] [--policy FILE]\n"
            "                      [--tls-cert FILE --tls-key FILE] [--admin-password-file FILE]\n"
            "                      [--metrics-public] [--config FILE] [--log TARGET]\n"
            "                      [--log-level LEVEL]\n"
            "\n"
            "Serve the dashboard and the JSON API until SIGINT or SIGTERM.\n"
            "\n"
            "  -d, --db DIR          store directory written by ingest or capture\n"
            "  -l, --listen ADDR:PORT address and TCP port (default 127.0.0.1:8080;\n"
            "                        IPv6 as [::1]:8080; port 0 picks a free port)\n"
            "  -w, --web DIR         dashboard files (default: the installed copy, else\n"
            "                        the source tree's web/)\n"
            "  -p, --policy FILE     compliance policy: enables /api/v1/policy and the\n"
            "                        generated reports; SIGHUP reloads it\n"
            "      --tls-cert FILE   serve HTTPS with this PEM certificate (chain)\n"
            "      --tls-key FILE    the certificate's unencrypted PEM private key\n"
            "      --admin-password-file FILE\n"
            "                        on first start (no user in the store), give the user\n"
            "                        'admin' the password in FILE instead of a random one\n"
            "      --metrics-public  serve /metrics without authentication\n"
            "      --config FILE     read daemon settings from FILE (YAML); options given\n"
            "                        on the command line override them\n"
            "      --log TARGET      auto, stderr or syslog (default auto: stderr when it is\n"
            "                        a terminal, pipe or file, otherwise syslog)\n"
            "      --log-level L     error, warning, notice (default), info or debug\n"
            "\n"
            "Every /api/v1 route needs a login or an API token; see 'flowveil user' and\n"
            "'flowveil token'.\n");
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
        /* An IPv6 address needs brackets, or its last group would read
         * as the port ("::1:80"). */
        if (memchr(text, ':', (size_t)(colon - text)) != NULL)
            return false;
        host = text;
        host_len = (size_t)(colon - text);
    }
    if (host_len == 0 || host_len >= buf_len)
        return false;
    memcpy(buf, host, host_len);
    buf[host_len] = '\0';

    const char *p = colon + 1;
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
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

/* Largest PEM file accepted for --tls-cert and --tls-key. */
#define SERVE_PEM_MAX (1024u * 1024u)
/* Length of the generated first admin password. */
#define SERVE_ADMIN_PASSWORD_LEN 20u

/* Read the PEM file PATH of OPTION into a NUL-terminated malloc'd text. */
static char *read_pem(const char *option, const char *path)
{
    /* serve blocks its stop signals before this, so a FIFO here would
     * hang it beyond Ctrl-C: only regular files are read. */
    char err[768];
    FILE *f = fv_fopen_regular_file(path, err, sizeof err);
    if (f == NULL) {
        fprintf(stderr, "flowveil: error: %s file: %s\n", option, err);
        return NULL;
    }
    char *text = malloc(SERVE_PEM_MAX + 1);
    size_t len = text != NULL ? fread(text, 1, SERVE_PEM_MAX + 1, f) : 0;
    bool failed = text == NULL || ferror(f) || len == 0 || len > SERVE_PEM_MAX;
    fclose(f);
    if (!failed) {
        text[len] = '\0';
        failed = memchr(text, '\0', len) != NULL || strstr(text, "-----BEGIN ") == NULL;
    }
    if (failed) {
        fprintf(stderr, "flowveil: error: %s file '%s' is not a PEM file of at most %u bytes; "
                        "give a PEM certificate or key (-----BEGIN ...)\n",
                option, path, SERVE_PEM_MAX);
        free(text);
        return NULL;
    }
    return text;
}

/* Fill OUT with SERVE_ADMIN_PASSWORD_LEN random letters and digits
 * (about 115 bits), leaving out look-alikes such as 0/O and 1/l. */
static void random_password(char out[SERVE_ADMIN_PASSWORD_LEN + 1])
{
    static const char alphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    for (unsigned i = 0; i < SERVE_ADMIN_PASSWORD_LEN; i++)
        out[i] = alphabet[randombytes_uniform((uint32_t)(sizeof alphabet - 1))];
    out[SERVE_ADMIN_PASSWORD_LEN] = '\0';
}

/* The first user of a store without users: prepared before the server
 * starts, created once it serves. */
typedef struct first_user {
    bool needed;                /* the store had no user when serve started */
    bool created;
    bool from_file;             /* the password came from --admin-password-file */
    char password[1026];        /* wiped once the user is created or serve gives up */
} first_user;

/*
 * Find out whether STORE has no user, and if so read the password of
 * PASSWORD_FILE or make a random one into OUT. Nothing is written, so a
 * serve that then fails to start leaves the store as it was. Returns
 * CLI_EXIT_OK or CLI_EXIT_FAILURE (message printed).
 */
static int first_user_prepare(store_env *store, const char *password_file, first_user *out)
{
    size_t users = 0;
    char err[512];
    memset(out, 0, sizeof *out);
    int rc = store_user_each(store, NULL, NULL, &users);
    if (rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot read the users of the store: %s\n",
                fv_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (users > 0) {
        if (password_file != NULL)
            fv_notice("--admin-password-file ignored: the store already has users; change a "
                      "password with 'flowveil user passwd NAME'");
        return CLI_EXIT_OK;
    }

    if (password_file != NULL) {
        if (cli_password_read_file(password_file, out->password, sizeof out->password, err,
                                   sizeof err) != FV_OK) {
            sodium_memzero(out->password, sizeof out->password);
            fprintf(stderr, "flowveil: error: --admin-password-file: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
        out->from_file = true;
    } else {
        random_password(out->password);
    }
    out->needed = true;
    return CLI_EXIT_OK;
}

/*
 * api_server_store_call callback: create the user "admin" with the
 * prepared password and audit it, unless another process (`flowveil user
 * add`, or a second serve) added a user since first_user_prepare. The
 * check and the write share one write transaction (store_user_put_first),
 * so only one first user can be created.
 */
static int first_user_create(store_env *store, void *ctx)
{
    first_user *first = ctx;
    size_t users = 0;
    int rc = store_user_each(store, NULL, NULL, &users);
    if (rc != FV_OK || users > 0)
        return rc;

    store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "admin");
    u.role = STORE_ROLE_ADMIN;
    u.created_us = fv_now_us();
    u.changed_us = u.created_us;
    rc = store_password_hash(first->password, u.pwhash);
    if (rc == FV_OK)
        rc = store_user_put_first(store, &u);
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    if (rc == FV_ERR_STATE)
        return FV_OK;   /* a user appeared meanwhile: first->created stays false */
    if (rc != FV_OK)
        return rc;
    first->created = true;
    return cli_audit_append(store, "system", "user.add", "admin",
                            first->from_file ? "role=admin&source=password-file"
                                             : "role=admin&source=first-start",
                            0, fv_now_us());
}

/* Free the PEM texts (the key wiped first), the store and the policy of
 * serve, once its server is stopped or never started. */
static void serve_release(char *tls_cert, char *tls_key, store_env **store, serve_policy *sp)
{
    free(tls_cert);
    if (tls_key != NULL)
        sodium_memzero(tls_key, strlen(tls_key));
    free(tls_key);
    store_close(store);
    pol_destroy(&sp->policy);
    pthread_mutex_destroy(&sp->lock);
}

int cli_cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"web", required_argument, NULL, 'w'},
        {"policy", required_argument, NULL, 'p'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"admin-password-file", required_argument, NULL, 'A'},
        {"metrics-public", no_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    const char *listen_text = "127.0.0.1:8080";
    const char *web = NULL;
    const char *policy_path = NULL;
    const char *tls_cert_path = NULL, *tls_key_path = NULL, *admin_password_file = NULL;
    bool metrics_public = false;

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:l:w:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'l': listen_text = optarg; break;
        case 'w': web = optarg; break;
        case 'p': policy_path = optarg; break;
        case 'C': tls_cert_path = optarg; break;
        case 'K': tls_key_path = optarg; break;
        case 'A': admin_password_file = optarg; break;
        case 'M': metrics_public = true; break;
        case 'h': print_serve_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("serve", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (db == NULL)
        return cli_usage_error("serve", "missing --db DIR (the store directory)");
    if ((tls_cert_path == NULL) != (tls_key_path == NULL))
        return cli_usage_error("serve", "%s given without %s: HTTPS needs both the certificate "
                                        "and its private key",
                               tls_cert_path != NULL ? "--tls-cert" : "--tls-key",
                               tls_cert_path != NULL ? "--tls-key" : "--tls-cert");

    char addr[64];
    uint16_t port = 0;
    /* A value from --config is reported at its FILE:LINE with status 1. */
    if (!parse_listen(listen_text, addr, sizeof addr, &port))
        return fv_config_value_error("serve", "--listen", listen_text,
                                     "expected ADDR:PORT with an IP address and a port 0-65535, "
                                     "e.g. 127.0.0.1:8080 or [::1]:8080");

    const char *web_root = find_web_root(web);
    if (!is_dir(web_root)) {
        struct stat web_st;
        bool exists = stat(web_root, &web_st) == 0;
        fprintf(stderr, "flowveil: error: dashboard directory '%s' %s; pass --web DIR "
                        "pointing at the web/ folder\n",
                web_root, exists ? "is not a directory" : "not found");
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
    sigaddset(&stop_set, SIGHUP);
    cli_install_reload_handler();
    pthread_sigmask(SIG_BLOCK, &stop_set, &old_set);

    char err[1024];
    serve_policy sp = {.policy = NULL, .path = policy_path};
    pthread_mutex_init(&sp.lock, NULL);
    if (policy_path != NULL && pol_load(policy_path, &sp.policy, err, sizeof err) != FV_OK) {
        fv_config_print_error(err, policy_path);
        pthread_mutex_destroy(&sp.lock);
        return CLI_EXIT_FAILURE;
    }

    store_env *store = NULL;
    /* Read-write only to append an audit entry per API request; a store
     * that does not exist is not created. */
    if (store_open(db, STORE_EXISTING, &store, err, sizeof err) != FV_OK) {
        fv_config_print_error(err, db);
        pol_destroy(&sp.policy);
        pthread_mutex_destroy(&sp.lock);
        return CLI_EXIT_FAILURE;
    }

    first_user first = {0};
    char *tls_cert = NULL, *tls_key = NULL;
    if (tls_cert_path != NULL) {
        tls_cert = read_pem("--tls-cert", tls_cert_path);
        tls_key = tls_cert != NULL ? read_pem("--tls-key", tls_key_path) : NULL;
        struct stat key_st;
        if (tls_key != NULL && stat(tls_key_path, &key_st) == 0 &&
            (key_st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
            fprintf(stderr, "flowveil: warning: --tls-key file '%s' is readable by group or "
                            "others (mode %03o); run `chmod 600 %s`\n",
                    tls_key_path, (unsigned)(key_st.st_mode & 0777), tls_key_path);
    }
    /* The first user is only prepared here and created once the server
     * listens, so a serve that fails to start adds no user. */
    if ((tls_cert_path != NULL && tls_key == NULL) ||
        first_user_prepare(store, admin_password_file, &first) != CLI_EXIT_OK) {
        serve_release(tls_cert, tls_key, &store, &sp);
        return CLI_EXIT_FAILURE;
    }

    api_config cfg = {
        .tls_cert_pem = tls_cert,
        .tls_key_pem = tls_key,
        .metrics_public = metrics_public,
        .store = store,
        .listen_addr = addr,
        .port = port,
        .web_root = web_root,
        .compliance_fn = policy_path != NULL ? serve_compliance : NULL,
        .compliance_ctx = &sp,
        .role_may_read_fn = policy_path != NULL ? serve_role_may_read : NULL,
        .address_zone_fn = policy_path != NULL ? serve_address_zone : NULL,
        .zone_known_fn = policy_path != NULL ? serve_zone_known : NULL,
        .policy_ctx = &sp,
    };
    api_server *server = NULL;
    int start_rc = api_server_start(&cfg, &server, err, sizeof err);
    /* libmicrohttpd copies neither text: both stay until the server stops. */
    if (start_rc != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        sodium_memzero(first.password, sizeof first.password);
        serve_release(tls_cert, tls_key, &store, &sp);
        return CLI_EXIT_FAILURE;
    }

    int user_rc = first.needed ? api_server_store_call(server, first_user_create, &first)
                               : FV_OK;
    if (user_rc != FV_OK) {
        fprintf(stderr, "flowveil: error: cannot create the first user 'admin': %s\n",
                fv_strerror(user_rc));
        if (first.created)
            fprintf(stderr, "flowveil: error: the user 'admin' was created but its audit "
                            "entry was not written; remove it with 'flowveil user remove admin' "
                            "and start serve again\n");
        sodium_memzero(first.password, sizeof first.password);
        api_server_stop(&server);
        serve_release(tls_cert, tls_key, &store, &sp);
        return CLI_EXIT_FAILURE;
    }

    bool v6 = strchr(addr, ':') != NULL;
    char url[128];
    snprintf(url, sizeof url, "%s://%s%s%s:%u/", tls_cert != NULL ? "https" : "http",
             v6 ? "[" : "", addr, v6 ? "]" : "", (unsigned)api_server_port(server));
    if (first.needed && !first.created)
        fv_notice("another process added a user while serve started, so the first user "
                  "'admin' was not created%s; list the users with 'flowveil user list --db %s'",
                  first.from_file ? " and --admin-password-file was ignored" : "", db);
    if (first.created && !first.from_file)
        fprintf(stderr,
                "flowveil: created user 'admin' with password %s; log in at %s and change it "
                "with 'flowveil user passwd admin --db %s'\n",
                first.password, url, db);
    else if (first.created)
        fprintf(stderr,
                "flowveil: created user 'admin' with the password from %s; log in at %s and "
                "change it with 'flowveil user passwd admin --db %s'\n",
                admin_password_file, url, db);
    sodium_memzero(first.password, sizeof first.password);
    fflush(stderr);
    printf("flowveil: serving %s\n", url);
    fflush(stdout);

    while (!*cli_stop_flag()) {
        sigsuspend(&old_set);
        if (cli_reload_take()) {
            if (policy_path != NULL)
                serve_reload(&sp, store);
            else
                fv_notice("SIGHUP ignored: serve runs without --policy");
        }
    }

    fv_notice("stopping the server");
    api_server_stop(&server);
    serve_release(tls_cert, tls_key, &store, &sp);
    return CLI_EXIT_OK;
}
