/*
 * Fuzz the project's own pcapng reader (capture/cap_pcapng.c): every
 * packet is read with cap_pcapng_next, then the whole input is scanned
 * with cap_pcapng_scan. The input is read from memory with fmemopen.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cap_pcapng.h"
#include "fuzz_util.h"

static volatile uint32_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_pcapng_reader *reader = NULL;
    cap_pcapng_summary summary;
    cap_pcapng_packet pkt;
    char err[256];
    bool done = false;
    FILE *f;

    /* fmemopen rejects a zero-length buffer. */
    if (size == 0)
        return 0;

    f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (f == NULL)
        return 0;
    if (cap_pcapng_create(f, &reader) == FV_OK) {
        while (cap_pcapng_next(reader, &pkt, &done) == FV_OK && !done) {
            /* Touch the first and last captured byte of every packet. */
            if (pkt.caplen > 0)
                sink_bytes += pkt.data[0] + pkt.data[pkt.caplen - 1];
        }
        sink_bytes += (uint32_t)strlen(cap_pcapng_error(reader));
        cap_pcapng_destroy(&reader);
    }
    fclose(f);

    f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (f == NULL)
        return 0;
    memset(&summary, 0, sizeof summary);
    (void)cap_pcapng_scan(f, &summary, err, sizeof err);
    fclose(f);
    return 0;
}
