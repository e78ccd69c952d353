/* Fuzz the indicator list parser (det_indicators_load_buffer, and
 * det_indicators_load_file when bit 1 of byte 0 is set) in both formats,
 * then match a few values against whatever it loaded and walk its
 * address and network entries. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "fuzz_util.h"

static void ignore_error(void *ctx, const char *message);

static char dir[512];
static char path[600];
static volatile size_t sink_entries;

static void remove_dir(void)
{
    remove(path);
    fuzz_remove_tree(dir);
}

static void on_network(void *ctx, int family, const uint8_t addr[16], unsigned prefix,
                       uint16_t list, uint32_t line)
{
    (void)ctx;
    (void)addr;
    (void)list;
    (void)line;
    if ((family != 4 && family != 6) || prefix > (family == 4 ? 32u : 128u))
        abort();    /* an entry outside its family's prefix range */
    sink_entries++;
}

/* Write TEXT to the harness's file and load it with
 * det_indicators_load_file as list 1. */
static void load_from_file(det_indicators *set, const char *text, size_t len, uint8_t format,
                           det_indicator_counts *counts)
{
    char err[512];
    FILE *f;

    if (dir[0] == '\0') {
        fuzz_temp_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/indicators.txt", dir);
        atexit(remove_dir);
    }
    f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (len > 0 && fwrite(text, 1, len, f) != len)
        abort();
    if (fclose(f) != 0)
        abort();
    (void)det_indicators_load_file(set, path, format, 1, FV_SEV_MEDIUM, ignore_error, NULL, counts,
                                   err, sizeof err);
}

static void ignore_error(void *ctx, const char *message)
{
    (void)ctx;
    /* Every message must be a terminated string. */
    (void)strlen(message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    det_indicators *set = NULL;
    if (det_indicators_create(&set) != FV_OK)
        return 0;

    /* Bit 0 of the first byte picks the format, bit 1 loads the list
     * from a file as well; the rest is the list. */
    uint8_t format = size > 0 ? (data[0] & 1u) : 0;
    bool from_file = size > 0 && (data[0] & 2u) != 0;
    const char *text = size > 0 ? (const char *)data + 1 : "";
    size_t len = size > 0 ? size - 1 : 0;
    det_indicator_counts counts;
    memset(&counts, 0, sizeof counts);
    (void)det_indicators_load_buffer(set, "fuzz.txt", text, len, format, 0, FV_SEV_HIGH,
                                     ignore_error, NULL, &counts);
    if (from_file)
        load_from_file(set, text, len, format, &counts);
    det_indicators_each_network(set, on_network, NULL);
    sink_entries += det_indicators_count(set);
    for (int i = 0; i <= DET_IND_TYPE_COUNT; i++) {
        const char *name = det_indicator_type_name(i);
        sink_entries += name != NULL ? strlen(name) : 0;
    }
    for (int i = 0; i <= DET_IND_SRC_HTTP_HOST + 1; i++) {
        const char *name = det_indicator_source_name(i);
        sink_entries += name != NULL ? strlen(name) : 0;
    }

    det_indicator_hit hit;
    static const uint8_t v4[16] = {192, 0, 2, 1};
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    (void)det_indicators_match_addr(set, 4, v4, &hit);
    (void)det_indicators_match_addr(set, 6, v6, &hit);
    (void)det_indicators_match_domain(set, "a.b.evil.example.com.", &hit);
    (void)det_indicators_match_fingerprint(set, DET_IND_JA3, "e7d705a3286e19ea42f587b344ee6865",
                                           &hit);
    (void)det_indicators_match_fingerprint(set, DET_IND_JA4, "t13d1516h2_8daaf6152771_b186095e22b6",
                                           &hit);
    det_indicators_destroy(&set);
    return 0;
}
