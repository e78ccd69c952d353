/*
 * Fuzz the TLS and DTLS hello parsers. Byte 0 selects the entry point:
 *   0  ClientHello from a TLS record stream
 *   1  ServerHello from a TLS record stream
 *   2  one raw handshake message, JA4 transport 't'
 *   3  one raw handshake message, JA4 transport 'q'
 *   4  one raw handshake message, JA4 transport 'd'
 *   5  DTLS ClientHello reassembly: datagrams of 2-byte length + bytes
 *   6  DTLS ServerHello reassembly, same framing
 */
#include <string.h>

#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

static void read_hello(const cap_tls_hello *h)
{
    sink_bytes += strlen(h->sni) + strlen(h->ja3) + strlen(h->ja4) + strlen(h->ja3s) +
                  strlen(h->server_alpn);
    for (unsigned i = 0; i < h->alpn_count && i < CAP_TLS_ALPN_MAX; i++)
        sink_bytes += strlen(h->alpn[i]);
}

static void feed_dtls(const uint8_t *data, size_t size, uint8_t want_type)
{
    cap_dtls_reasm reasm;
    cap_tls_hello hello;

    memset(&reasm, 0, sizeof reasm);
    memset(&hello, 0, sizeof hello);
    while (size > 0) {
        size_t datagram = fuzz_take_be16(&data, &size);
        if (datagram > size)
            datagram = size;
        (void)cap_dtls_looks_like_client_hello(data, datagram);
        if (cap_dtls_feed(&reasm, data, datagram, want_type, &hello) == FV_OK) {
            read_hello(&hello);
            break;
        }
        data += datagram;
        size -= datagram;
    }
    cap_dtls_reasm_clear(&reasm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char TRANSPORTS[] = {'t', 'q', 'd'};
    cap_tls_hello hello;
    unsigned mode;

    if (size < 1)
        return 0;
    mode = data[0] % 7u;
    data++;
    size--;
    memset(&hello, 0, sizeof hello);

    switch (mode) {
    case 0:
        if (cap_tls_parse_client_hello(data, size, &hello) == FV_OK)
            read_hello(&hello);
        break;
    case 1:
        if (cap_tls_parse_server_hello(data, size, &hello) == FV_OK)
            read_hello(&hello);
        break;
    case 2:
    case 3:
    case 4:
        if (cap_tls_parse_handshake_hello(data, size, TRANSPORTS[mode - 2], &hello) == FV_OK)
            read_hello(&hello);
        break;
    default:
        feed_dtls(data, size, (uint8_t)(mode - 4));
        break;
    }
    return 0;
}
