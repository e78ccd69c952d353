/*
 * Fuzz cap_read_file: the input is written to a file in a temporary
 * directory and read as a pcap or pcapng capture, through libpcap or the
 * project's own pcapng reader, into an engine that is then flushed.
 *
 * The last byte of the input also selects a BPF filter from FILTERS. A
 * trailing byte keeps the corpus captures, which are used as inputs
 * unchanged, readable as captures. Most of them read without a filter
 * and the rest with one, which is compiled per link type of a pcapng
 * file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "capture.h"
#include "fuzz_util.h"

/* Filter per value of the last byte (modulo 16): mostly none, some with
 * addresses (kept out of error messages) and one that does not compile. */
static const char *const FILTERS[16] = {
    "udp port 53", "tcp and not port 22", "host 10.0.0.5", "net 10.0.0.0/8 or ip6 net fd00::/8",
    "vlan and udp", "port 99999", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

static char dir[512];
static char path[600];

static void remove_dir(void)
{
    remove(path);
    fuzz_remove_tree(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_sink sink = {0};
    cap_config config = {0};
    cap_engine *engine = NULL;
    char err[512];
    FILE *f;

    if (dir[0] == '\0') {
        fuzz_temp_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/input.pcap", dir);
        atexit(remove_dir);
    }
    f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    if (fclose(f) != 0)
        abort();

    if (cap_engine_create(&config, &sink, &engine) != FV_OK)
        return 0;
    const char *filter = size > 0 ? FILTERS[data[size - 1] % 16u] : NULL;
    if (filter != NULL)
        (void)cap_filter_check(filter, err, sizeof err);
    (void)cap_read_file(engine, path, filter, NULL, err, sizeof err);
    cap_engine_flush(engine);
    cap_engine_destroy(&engine);
    return 0;
}
