/* Fuzz the indicator list parser (det_indicators_load_buffer) in both
 * formats, then match a few values against whatever it loaded. */
#include <string.h>

#include "detect.h"
#include "fuzz_util.h"

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

    /* The first byte picks the format; the rest is the file. */
    uint8_t format = size > 0 ? (data[0] & 1u) : 0;
    const char *text = size > 0 ? (const char *)data + 1 : "";
    size_t len = size > 0 ? size - 1 : 0;
    det_indicator_counts counts;
    memset(&counts, 0, sizeof counts);
    (void)det_indicators_load_buffer(set, "fuzz.txt", text, len, format, 0, FV_SEV_HIGH,
                                     ignore_error, NULL, &counts);

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
