/* Fuzz the NetBIOS name service parser (cap_nbns_parse). */
#include <stdbool.h>
#include <string.h>

#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[FV_NAME_MAX];
    uint8_t opcode = 0;
    bool is_response = false;
    uint16_t txid = 0, qtype = 0, qclass = 0;

    if (cap_nbns_parse(data, size, name, &opcode, &is_response, &txid, &qtype, &qclass) ==
        FV_OK)
        sink_bytes += strlen(name);
    return 0;
}
