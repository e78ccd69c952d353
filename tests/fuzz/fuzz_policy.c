/* Fuzz the YAML policy parser and validator (pol_load_buffer). */
#include <string.h>

#include "fuzz_util.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol_policy *policy = NULL;
    char err[1024];

    if (pol_load_buffer("fuzz.yaml", (const char *)data, size, &policy, err, sizeof err) !=
        FV_OK) {
        /* A rejected policy must still leave a terminated message. */
        (void)strlen(err);
    }
    pol_destroy(&policy);
    return 0;
}
