/*
 * Fuzz cli/minimize.c's name rewriting. Byte 0 selects the name source
 * (fv_name_source, modulo 5) in bits 0-2 and the policy in bit 3:
 * domains.mode registrable or pseudonymize, both with an internal zone
 * and a never-record suffix. The rest of the input is the name, cut at
 * FV_NAME_MAX - 1 bytes. The pseudonym key lives in a temporary
 * directory that is removed at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "minimize.h"

#define NOW_S 1764489600u
#define ZONES "zones:\n  - name: office\n    networks: [10.0.0.0/8, fd00::/8]\n"

static const char *const POLICIES[2] = {
    "version: 1\n" ZONES
    "domains:\n  mode: registrable\n  never_record:\n    suffixes: [example-health.org]\n",
    "version: 1\n" ZONES
    "domains:\n  mode: pseudonymize\n  never_record:\n    suffixes: [example-health.org]\n",
};

static char dir[512];
static anon_ctx *anon;
static pol_policy *policies[2];

static void cleanup(void)
{
    anon_close(&anon);
    pol_destroy(&policies[0]);
    pol_destroy(&policies[1]);
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
    for (size_t i = 0; i < 2; i++) {
        if (pol_load_buffer("fuzz.yaml", POLICIES[i], strlen(POLICIES[i]), &policies[i], err,
                            sizeof err) != FV_OK) {
            fprintf(stderr, "fuzz_minimize: policy rejected: %s\n", err);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[FV_NAME_MAX], copy[FV_NAME_MAX];
    const pol_policy *policy;
    fv_name_source source;
    size_t len;

    if (anon == NULL)
        setup();
    if (size < 1)
        return 0;
    source = (fv_name_source)((data[0] & 7u) % 5u);
    policy = policies[(data[0] >> 3) & 1u];
    data++;
    size--;

    len = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, len);
    name[len] = '\0';
    memcpy(copy, name, sizeof copy);

    (void)fv_name_never_recorded(policy, name);
    (void)fv_minimize_name(policy, anon, source, name, sizeof name);
    if (strnlen(name, sizeof name) == sizeof name)
        abort();    /* the rewrite lost the terminating NUL */
    (void)fv_minimize_domain(policy, anon, source, copy, sizeof copy);
    if (strnlen(copy, sizeof copy) == sizeof copy)
        abort();
    return 0;
}
