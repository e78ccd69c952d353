/*
 * Fuzz capture/cap_ssh.c. Bit 0 of byte 0 selects the entry point:
 *
 * 0: the SSH identification-string parser and the HASSH computation over
 *    a KEXINIT packet. The banner is parsed at the start of the rest of
 *    the input, and the bytes after it (or, when there is no complete
 *    banner, all of them) are read as a KEXINIT for both the client and
 *    the server lists.
 * 1: the per-connection tracking (cap_ssh_step, cap_ssh_finish) as the
 *    capture engine drives it. The rest is the client stream and the
 *    server stream, each behind a 2-byte big-endian length. Each stream
 *    is handed over as a growing prefix, (byte 0 >> 1) + 1 bytes more
 *    each time, and the whole stream last with the end-of-stream flag.
 */
#include <stdbool.h>
#include <string.h>

#include "cap_internal.h"
#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

static void parse_direct(const uint8_t *data, size_t size)
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
}

static void on_ssh(void *ctx, const cap_ssh *ssh)
{
    (void)ctx;
    /* Both banners and fingerprints must be NUL-terminated. */
    sink_bytes += strnlen(ssh->client_banner, sizeof ssh->client_banner) +
                  strnlen(ssh->server_banner, sizeof ssh->server_banner) +
                  strnlen(ssh->hassh, sizeof ssh->hassh) +
                  strnlen(ssh->hassh_server, sizeof ssh->hassh_server);
    if (strnlen(ssh->client_banner, sizeof ssh->client_banner) == sizeof ssh->client_banner ||
        strnlen(ssh->server_banner, sizeof ssh->server_banner) == sizeof ssh->server_banner ||
        strnlen(ssh->hassh, sizeof ssh->hassh) == sizeof ssh->hassh ||
        strnlen(ssh->hassh_server, sizeof ssh->hassh_server) == sizeof ssh->hassh_server)
        __builtin_trap();
}

static void track_connection(unsigned step, const uint8_t *data, size_t size)
{
    cap_ssh_state st;
    cap_stats stats;
    cap_sink sink;
    const uint8_t *stream[2];
    size_t len[2], given[2] = {0, 0};
    bool done = false;

    memset(&st, 0, sizeof st);
    memset(&stats, 0, sizeof stats);
    memset(&sink, 0, sizeof sink);
    sink.on_ssh = on_ssh;

    for (unsigned dir = 0; dir < 2; dir++) {
        len[dir] = fuzz_take_be16(&data, &size);
        if (len[dir] > size)
            len[dir] = size;
        stream[dir] = data;
        data += len[dir];
        size -= len[dir];
    }
    /* Alternate the directions, as packets of both sides arrive. */
    while (!done && (given[0] < len[0] || given[1] < len[1])) {
        for (unsigned dir = 0; dir < 2 && !done; dir++) {
            if (given[dir] >= len[dir])
                continue;
            given[dir] = len[dir] - given[dir] > step ? given[dir] + step : len[dir];
            done = cap_ssh_step(&st, dir, stream[dir], given[dir], given[dir] == len[dir],
                                &stats, 1764489600000000u);
        }
    }
    cap_ssh_finish(&st, &sink, &stats);
    cap_ssh_finish(&st, &sink, &stats);     /* a second call must emit nothing */
    if (stats.ssh_connections > 1)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;

    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    if ((mode & 1u) == 0)
        parse_direct(data, size);
    else
        track_connection((mode >> 1) + 1u, data, size);
    return 0;
}
