/*
 * cmd_reveal.c: `flowveil reveal`, audited re-identification of one
 * pseudonym token from the escrow database with the officers' secret
 * keys. Every attempt that reaches the store is audited, whether or not
 * it reveals anything; usage errors are not, because nothing was tried.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "anonymize.h"
#include "cli.h"
#include "escrow.h"
#include "store.h"

/* Bytes of a pseudonym a token carries (80 bits, 16 base32 characters). */
#define TOKEN_BYTES 10u
#define TOKEN_CHARS 16u

static void print_reveal_usage(FILE *f)
{
    fprintf(f,
            "usage: flowveil reveal --db DIR --pseudonym TOKEN --secret-key FILE\n"
            "                       [--second-key FILE] --reason TEXT\n"
            "\n"
            "Open the escrow entry of a pseudonym token (such as ip4-abcdefghijklmnop)\n"
            "with the compliance officers' secret keys and print the identifier. Every\n"
            "attempt is written to the audit trail with the reason and the user.\n"
            "\n"
            "  -d, --db DIR            store directory\n"
            "  -t, --pseudonym TOKEN   the token as records show it, with or without\n"
            "                          its type prefix\n"
            "  -k, --secret-key FILE   an officer secret key (keys officer-keygen)\n"
            "  -K, --second-key FILE   the other officer's key, for dual control\n"
            "  -r, --reason TEXT       why the identity is needed, e.g. a case number\n"
            "                          (1 to 255 printable characters)\n");
}

/*
 * Decode TOKEN ("[type-]" and 16 base32 characters, any case) into the
 * first 10 pseudonym bytes, and write its normalized text into NORM.
 * Returns false if it is not a token.
 */
static bool token_decode(const char *token, uint8_t out[TOKEN_BYTES], char *norm, size_t norm_len)
{
    const char *dash = strrchr(token, '-');
    const char *b32 = dash != NULL ? dash + 1 : token;
    if (strlen(b32) != TOKEN_CHARS || strlen(token) >= norm_len)
        return false;
    if (dash != NULL) {
        /* The type prefixes that fv_token_format writes. */
        static const char *const prefixes[] = {"ip4", "ip6", "mac", "name", "dom"};
        size_t prefix_len = (size_t)(dash - token);
        bool known = false;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            known = known || (strlen(prefixes[i]) == prefix_len &&
                              strncasecmp(token, prefixes[i], prefix_len) == 0);
        if (!known)
            return false;
    }

    uint64_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < TOKEN_CHARS; i++) {
        int c = tolower((unsigned char)b32[i]);
        int v;
        if (c >= 'a' && c <= 'z')
            v = c - 'a';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return false;
        acc = (acc << 5) | (unsigned)v;
        bits += 5;
        if (bits >= 8) {
            out[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    for (size_t i = 0; token[i] != '\0'; i++)
        norm[i] = (char)tolower((unsigned char)token[i]);
    norm[strlen(token)] = '\0';
    return o == TOKEN_BYTES;
}

static const char *type_name(anon_type type)
{
    switch (type) {
    case ANON_TYPE_IPV4: return "ipv4";
    case ANON_TYPE_IPV6: return "ipv6";
    case ANON_TYPE_MAC: return "mac";
    case ANON_TYPE_HOSTNAME: return "hostname";
    case ANON_TYPE_DOMAIN: return "domain";
    default: return "unknown";
    }
}

/* Write identifier ID of TYPE as text: an address, a MAC or an escaped name. */
static void identifier_format(anon_type type, const uint8_t *id, size_t len, char *out,
                              size_t out_len)
{
    if (type == ANON_TYPE_IPV4 && len == 4) {
        inet_ntop(AF_INET, id, out, (socklen_t)out_len);
        return;
    }
    if (type == ANON_TYPE_IPV6 && len == 16) {
        inet_ntop(AF_INET6, id, out, (socklen_t)out_len);
        return;
    }
    if (type == ANON_TYPE_MAC && len == 6) {
        snprintf(out, out_len, "%02x:%02x:%02x:%02x:%02x:%02x", id[0], id[1], id[2], id[3],
                 id[4], id[5]);
        return;
    }
    /* A name, or bytes of an unexpected length: printable ASCII as is,
     * everything else as \xHH, so nothing reaches the terminal raw. */
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < out_len; i++) {
        if (id[i] >= 0x21 && id[i] < 0x7f && id[i] != '\\')
            out[o++] = (char)id[i];
        else
            o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", id[i]);
    }
    out[o] = '\0';
}

/* What one reveal attempt found, for the output and the audit entry. */
typedef struct reveal_ctx {
    const fv_officer_key *keys;
    size_t key_count;
    size_t opened, needs_second, wrong_key, damaged;
} reveal_ctx;

static bool reveal_entry(void *arg, const store_escrow_entry *e)
{
    reveal_ctx *ctx = arg;
    anon_type type = 0;
    uint8_t id[FV_ESCROW_ID_MAX];
    size_t len = 0;

    switch (fv_escrow_open(e, ctx->keys, ctx->key_count, &type, id, &len)) {
    case FV_ESCROW_OPENED: {
        char text[4 * FV_ESCROW_ID_MAX + 8];
        char stored[FV_TIME_TEXT_MAX];
        identifier_format(type, id, len, text, sizeof text);
        fv_time_format(e->stored_us, stored);
        printf("%s\t%s\tepoch=%llu\tescrowed=%s\n", type_name(type), text,
               (unsigned long long)e->epoch_id, stored);
        ctx->opened++;
        break;
    }
    case FV_ESCROW_NEEDS_SECOND_KEY: ctx->needs_second++; break;
    case FV_ESCROW_WRONG_KEY: ctx->wrong_key++; break;
    case FV_ESCROW_DAMAGED: ctx->damaged++; break;
    }
    sodium_memzero(id, sizeof id);
    return true;
}

/* Append the "reveal" audit entry of one attempt. */
static int audit_reveal(store_env *store, const char *token, const char *reason,
                        const char *outcome, size_t matches, bool revealed)
{
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    cli_audit_local_actor(e.actor, sizeof e.actor);
    snprintf(e.action, sizeof e.action, "reveal");
    snprintf(e.object, sizeof e.object, "%s", token);
    snprintf(e.params, sizeof e.params, "outcome=%s&matches=%zu", outcome, matches);
    snprintf(e.reason, sizeof e.reason, "%s", reason);
    e.result_count = revealed ? 1 : 0;
    int rc = store_audit_append(store, &e, fv_now_us(), NULL);
    if (rc != FV_OK)
        fprintf(stderr, "flowveil: error: cannot write the audit entry of this reveal: %s\n",
                fv_strerror(rc));
    return rc;
}

int cli_cmd_reveal(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"pseudonym", required_argument, NULL, 't'},
        {"secret-key", required_argument, NULL, 'k'},
        {"second-key", required_argument, NULL, 'K'},
        {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *token = NULL, *key1 = NULL, *key2 = NULL, *reason = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:t:k:K:r:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 't': token = optarg; break;
        case 'k': key1 = optarg; break;
        case 'K': key2 = optarg; break;
        case 'r': reason = optarg; break;
        case 'h': print_reveal_usage(stdout); return CLI_EXIT_OK;
        case ':': return cli_usage_error("reveal", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("reveal", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("reveal", "unexpected argument '%s'", argv[optind]);
    if (db == NULL)
        return cli_usage_error("reveal", "missing --db DIR (the store directory)");
    if (token == NULL)
        return cli_usage_error("reveal", "missing --pseudonym TOKEN (e.g. ip4-abcdefghijklmnop)");
    if (key1 == NULL)
        return cli_usage_error("reveal", "missing --secret-key FILE (an officer secret key)");
    if (reason == NULL)
        return cli_usage_error("reveal", "missing --reason TEXT: every reveal must record why"
                                         " the identity is needed, e.g. a case number");
    size_t reason_len = strlen(reason);
    if (reason_len == 0 || reason_len > 255)
        return cli_usage_error("reveal", "--reason must have 1 to 255 characters (%zu given)",
                               reason_len);
    /* The reason goes into the audit trail and into `audit show` lines,
     * where a tab or newline would forge columns or entries. */
    for (size_t i = 0; i < reason_len; i++) {
        unsigned char ch = (unsigned char)reason[i];
        if (ch < 0x20 || ch == 0x7f)
            return cli_usage_error("reveal",
                                   "invalid --reason: control character 0x%02x at byte %zu;"
                                   " write the reason on one line without tabs or other"
                                   " control characters",
                                   ch, i + 1);
    }

    uint8_t prefix[TOKEN_BYTES];
    char norm[FV_TOKEN_TEXT_MAX];
    if (!token_decode(token, prefix, norm, sizeof norm))
        return cli_usage_error("reveal", "invalid --pseudonym value: expected a token such as"
                                         " ip4-abcdefghijklmnop (16 base32 characters a-z, 2-7,"
                                         " after an optional type prefix ip4-, ip6-, mac-, name- or dom-)");

    char err[1024];
    store_env *store = NULL;
    if (store_open(db, STORE_EXISTING, &store, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }

    int status = CLI_EXIT_FAILURE;
    fv_officer_key *keys = sodium_malloc(2 * sizeof *keys);
    size_t key_count = key2 != NULL ? 2 : 1;
    if (keys == NULL) {
        (void)audit_reveal(store, norm, reason, "error", 0, false);
        fprintf(stderr, "flowveil: error: out of memory\n");
        goto out;
    }
    const char *paths[2] = {key1, key2};
    for (size_t i = 0; i < key_count; i++) {
        if (fv_officer_secret_load(paths[i], keys[i].sk, keys[i].pk, err, sizeof err) != FV_OK) {
            (void)audit_reveal(store, norm, reason, "invalid_key", 0, false);
            fprintf(stderr, "flowveil: error: %s\n", err);
            goto out;
        }
    }
    if (key_count == 2 && sodium_memcmp(keys[0].pk, keys[1].pk, FV_OFFICER_KEY_BYTES) == 0) {
        (void)audit_reveal(store, norm, reason, "invalid_key", 0, false);
        fprintf(stderr, "flowveil: error: --secret-key and --second-key are the same key; dual"
                        " control needs the keys of two different officers\n");
        goto out;
    }

    reveal_ctx ctx = {.keys = keys, .key_count = key_count};
    size_t matches = 0;
    int rc = store_escrow_find(store, prefix, sizeof prefix, reveal_entry, &ctx, &matches);
    if (rc != FV_OK) {
        (void)audit_reveal(store, norm, reason, "error", matches, false);
        fprintf(stderr, "flowveil: error: reading the escrow database failed: %s\n",
                fv_strerror(rc));
        goto out;
    }

    const char *outcome;
    if (ctx.opened > 0)
        outcome = "revealed";
    else if (matches == 0)
        outcome = "not_found";
    else if (ctx.needs_second > 0)
        outcome = "needs_second_key";
    else if (ctx.wrong_key > 0)
        outcome = "wrong_key";
    else
        outcome = "damaged";
    if (audit_reveal(store, norm, reason, outcome, matches, ctx.opened > 0) != FV_OK)
        goto out;

    if (ctx.opened > 0) {
        status = CLI_EXIT_OK;
    } else if (matches == 0) {
        fprintf(stderr, "flowveil: error: no escrow entry for %s; escrow must have been enabled"
                        " when the record was stored, and entries expire with the flows"
                        " retention limit\n",
                norm);
    } else if (ctx.needs_second > 0) {
        fprintf(stderr, "flowveil: error: the escrow entry for %s is under dual control: one"
                        " officer's key opens only a share; pass the other officer's secret key"
                        " with --second-key FILE\n",
                norm);
    } else if (ctx.wrong_key > 0) {
        fprintf(stderr, "flowveil: error: the given key%s cannot open the escrow entry for %s;"
                        " use the secret key%s of the officers the policy named when it was"
                        " stored\n",
                key_count == 2 ? "s" : "", norm, key_count == 2 ? "s" : "");
    } else {
        fprintf(stderr, "flowveil: error: the escrow entry for %s is damaged and cannot be"
                        " opened\n",
                norm);
    }

out:
    if (keys != NULL)
        sodium_free(keys);  /* sodium_free wipes the memory */
    store_close(&store);
    return status;
}
