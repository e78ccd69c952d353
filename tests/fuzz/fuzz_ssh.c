/*
 * Fuzz the SSH identification-string parser and the HASSH computation
 * over a KEXINIT packet. The banner is parsed at the start of the input,
 * and the bytes after it (or, when there is no complete banner, the whole
 * input) are read as a KEXINIT for both the client and the server lists.
 */
#include <stdbool.h>
#include <string.h>

#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char banner[FV_SSH_BANNER_MAX];
    char hassh[FV_HASSH_TEXT];
    size_t consumed = 0;

    if (cap_ssh_parse_banner(data, size, banner, &consumed) == FV_OK) {
        if (consumed > size)
            __builtin_trap();   /* consumed past the input */
        sink_bytes += strlen(banner);
        data += consumed;
        size -= consumed;
    }
    if (cap_ssh_hassh(data, size, false, hassh) == FV_OK)
        sink_bytes += strlen(hassh);
    if (cap_ssh_hassh(data, size, true, hassh) == FV_OK)
        sink_bytes += strlen(hassh);
    return 0;
}
