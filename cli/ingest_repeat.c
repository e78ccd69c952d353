/*
 * ingest_repeat.c: the warning for an ingest of input that an earlier
 * ingest already read completely (ingest_repeat.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "fv_common.h"
#include "ingest_repeat.h"
#include "store.h"

/* Audit entries searched, newest first. API reads append one entry per
 * request, so the search stops here to bound the time ingest takes to
 * start on a busy store.
 * NOTE: an ingest older than the newest 100000 audit entries, or one
 * whose entry the audit retention removed, is not found. */
#define REPEAT_SEARCH_MAX 100000u

static void put_u64_le(crypto_generichash_state *state, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(state, le, sizeof le);
}

void fv_ingest_input_id(char *const *files, int count, const char *filter,
                        char hex[FV_INGEST_INPUT_HEX_LEN])
{
    static const char domain[] = "flowveil ingest input v1";
    hex[0] = '\0';
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, 16);
    crypto_generichash_update(&state, (const uint8_t *)domain, sizeof domain);
    /* The filter, NUL-terminated, or a lone 0xff byte for none. */
    if (filter != NULL)
        crypto_generichash_update(&state, (const uint8_t *)filter, strlen(filter) + 1);
    else
        crypto_generichash_update(&state, (const uint8_t *)"\xff", 1);
    for (int i = 0; i < count; i++) {
        struct stat st;
        if (strcmp(files[i], "-") == 0 || stat(files[i], &st) != 0 || !S_ISREG(st.st_mode))
            return;
        put_u64_le(&state, (uint64_t)st.st_size);
        put_u64_le(&state, (uint64_t)st.st_ino);
        put_u64_le(&state, (uint64_t)st.st_mtim.tv_sec);
        put_u64_le(&state, (uint64_t)st.st_mtim.tv_nsec);
    }
    uint8_t id[16];
    crypto_generichash_final(&state, id, sizeof id);
    sodium_bin2hex(hex, FV_INGEST_INPUT_HEX_LEN, id, sizeof id);
}

typedef struct repeat_search {
    char needle[48];            /* "input=HEX" */
    uint32_t seen;
    bool found;
    uint64_t seq, time_us;
} repeat_search;

/* Return true if PARAMS ("k=v&k=v") contains the pair NEEDLE. */
static bool has_param(const char *params, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = params; p != NULL; p = strchr(p, '&')) {
        if (*p == '&')
            p++;
        if (strncmp(p, needle, n) == 0 && (p[n] == '&' || p[n] == '\0'))
            return true;
    }
    return false;
}

static bool match_entry(void *ctx, const store_audit_entry *e)
{
    repeat_search *s = ctx;
    s->seen++;
    if (strcmp(e->action, "ingest") == 0 && has_param(e->params, s->needle)) {
        s->found = true;
        s->seq = e->seq;
        s->time_us = e->time_us;
        return false;
    }
    return true;
}

void fv_ingest_repeat_warn(fv_pipeline *p, const char *hex)
{
    if (hex[0] == '\0')
        return;
    repeat_search s = {0};
    snprintf(s.needle, sizeof s.needle, "input=%s", hex);
    uint64_t from = 0;
    while (!s.found && s.seen < REPEAT_SEARCH_MAX) {
        uint64_t next = 0;
        if (store_audit_each(p->store, from, STORE_AUDIT_LIMIT_MAX, true, match_entry, &s,
                             &next) != FV_OK)
            return;
        if (next == 0)
            break;
        from = next;
    }
    if (!s.found)
        return;

    char when[32] = "an unknown time";
    time_t t = (time_t)(s.time_us / 1000000u);
    struct tm tm;
    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fv_warning("these files were already ingested completely into this store (audit entry "
               "#%llu at %s, same files, sizes, modification times and filter); this run "
               "stores every record a second time, so their counts and top lists double",
               (unsigned long long)s.seq, when);
}
