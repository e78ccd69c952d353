/*
 * Fuzz QUIC Initial handling (capture/cap_quic.c): long-header parsing
 * and the per-flow decryption and CRYPTO reassembly. The input is a
 * sequence of datagrams, each a 1-byte direction (low bit), a 2-byte
 * big-endian length and that many bytes. Random bytes rarely decrypt, so
 * the seeds carry real Initial packets built with the RFC 9001 keys.
 */
#include <string.h>

#include "cap_quic.h"
#include "fv_common.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_quic_flow *flow = NULL;
    cap_quic_long_header hdr;
    cap_quic_hello hello;

    if (cap_quic_parse_long_header(data, size, &hdr) == FV_OK && hdr.packet_len > size)
        __builtin_trap();   /* a packet claimed to end past the input */
    (void)cap_quic_looks_long_header(data, size);

    if (cap_quic_flow_create(&flow) != FV_OK)
        return 0;
    while (size > 0) {
        unsigned dir = data[0] & 1u;
        size_t datagram;

        data++;
        size--;
        datagram = fuzz_take_be16(&data, &size);
        if (datagram > size)
            datagram = size;
        if (cap_quic_flow_datagram(flow, dir, data, datagram, &hello) == FV_OK &&
            hello.len > 0)
            sink_bytes += hello.msg[0] + hello.msg[hello.len - 1];
        data += datagram;
        size -= datagram;
    }
    cap_quic_flow_destroy(&flow);
    return 0;
}
