/* Fuzz the BOOTP/DHCPv4 parser (cap_dhcp_parse) and its option walk. */
#include <string.h>

#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_dhcp_msg msg;

    memset(&msg, 0, sizeof msg);
    if (cap_dhcp_parse(data, size, &msg) == FV_OK)
        sink_bytes += strlen(msg.hostname) + strlen(msg.vendor_class);
    return 0;
}
