/*
 * Fuzz cli/minimize.c's name rewriting. Bits 0-2 of byte 0 select the
 * name source (fv_name_source, modulo 5), and the value 7 selects the
 * User-Agent reduction (fv_minimize_user_agent) instead. Bits 3-4 select
 * one of four policies. The first two set domains.mode registrable or
 * pseudonymize, both with an internal zone and a never-record suffix.
 * The other two have every address mode (prefix-preserving, truncate and
 * keep zones, truncated or pseudonymized external addresses). The rest of the input is the name,
 * cut at FV_NAME_MAX - 1 bytes. The pseudonym key lives in a temporary
 * directory that is removed at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "minimize.h"

#define NOW_S 1764489600u
#define ZONES "zones:\n  - name: office\n    networks: [10.0.0.0/8, fd00::/8]\n"

#define MODE_ZONES                                                                   \
    "zones:\n"                                                                      \
    "  - name: office\n    networks: [10.1.0.0/16]\n    addresses: prefix-preserving\n" \
    "  - name: lab\n    networks: [10.2.0.0/16, fd00:2::/48]\n    addresses: truncate\n"  \
    "    truncate_prefix: {ipv4: 24, ipv6: 56}\n"                                      \
    "  - name: servers\n    networks: [10.3.0.0/16, fd00:3::/48]\n    addresses: keep\n"  \
    "  - name: wifi\n    networks: [fd00:4::/48]\n    addresses: prefix-preserving\n"

#define POLICY_COUNT 4

static const char *const POLICIES[POLICY_COUNT] = {
    "version: 1\n" ZONES
    "domains:\n  mode: registrable\n  never_record:\n    suffixes: [example-health.org]\n",
    "version: 1\n" ZONES
    "domains:\n  mode: pseudonymize\n  never_record:\n    suffixes: [example-health.org]\n",
    "version: 1\n" MODE_ZONES
    "external:\n  addresses: truncate\n  truncate_prefix: {ipv4: 24, ipv6: 48}\n"
    "domains:\n  mode: registrable\n",
    "version: 1\n" MODE_ZONES
    "external:\n  addresses: pseudonymize\n"
    "domains:\n  mode: pseudonymize\n",
};

static char dir[512];
static anon_ctx *anon;
static pol_policy *policies[POLICY_COUNT];

static void cleanup(void)
{
    anon_close(&anon);
    for (size_t i = 0; i < POLICY_COUNT; i++)
        pol_destroy(&policies[i]);
    fuzz_remove_tree(dir);
}

static void setup(void)
{
    char err[1024], key_path[600];

    fuzz_temp_dir(dir, sizeof dir);
    atexit(cleanup);
    snprintf(key_path, sizeof key_path, "%s/pseudonym.key", dir);
    if (anon_open(key_path, 86400, NOW_S, &anon, err, sizeof err) != FV_OK) {
        fprintf(stderr, "fuzz_minimize: anon_open failed: %s\n", err);
        abort();
    }
    for (size_t i = 0; i < POLICY_COUNT; i++) {
        if (pol_load_buffer("fuzz.yaml", POLICIES[i], strlen(POLICIES[i]), &policies[i], err,
                            sizeof err) != FV_OK) {
            fprintf(stderr, "fuzz_minimize: policy rejected: %s\n", err);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[FV_NAME_MAX], copy[FV_NAME_MAX], agent[FV_NAME_MAX];
    const pol_policy *policy;
    fv_name_source source;
    size_t len;

    if (anon == NULL)
        setup();
    if (size < 1)
        return 0;
    source = (fv_name_source)((data[0] & 7u) % 5u);
    policy = policies[(data[0] >> 3) & 3u];
    bool user_agent = (data[0] & 7u) == 7u;
    data++;
    size--;

    len = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, len);
    name[len] = '\0';
    memcpy(copy, name, sizeof copy);

    if (user_agent) {
        /* A small output buffer, sized by the first byte of the name,
         * exercises the cut. */
        size_t agent_len = len > 0 ? (unsigned char)name[0] % sizeof agent + 1u : sizeof agent;
        (void)fv_minimize_user_agent(name, agent, agent_len);
        if (strnlen(agent, agent_len) == agent_len)
            abort();    /* the reduced value lost its terminating NUL */
        return 0;
    }

    (void)fv_name_never_recorded(policy, name);
    (void)fv_minimize_name(policy, anon, source, name, sizeof name);
    if (strnlen(name, sizeof name) == sizeof name)
        abort();    /* the rewrite lost the terminating NUL */
    (void)fv_minimize_domain(policy, anon, source, copy, sizeof copy);
    if (strnlen(copy, sizeof copy) == sizeof copy)
        abort();
    return 0;
}
