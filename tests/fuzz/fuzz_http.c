/* Fuzz the HTTP/1.x head parsers. Byte 0 selects the request parser
 * (even) or the response parser (odd). */
#include <string.h>

#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_http_req req;
    cap_http_resp resp;

    if (size < 1)
        return 0;
    if (data[0] % 2 == 0) {
        memset(&req, 0, sizeof req);
        if (cap_http_parse_request(data + 1, size - 1, &req) == FV_OK) {
            if (req.head_len > size - 1)
                __builtin_trap();   /* the head cannot be longer than the input */
            sink_bytes += strlen(req.method) + strlen(req.host) + strlen(req.user_agent);
        }
    } else {
        memset(&resp, 0, sizeof resp);
        if (cap_http_parse_response(data + 1, size - 1, &resp) == FV_OK &&
            resp.head_len > size - 1)
            __builtin_trap();
    }
    return 0;
}
