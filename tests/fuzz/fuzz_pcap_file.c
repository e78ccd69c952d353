/*
 * Fuzz cap_read_file: the input is written to a file in a temporary
 * directory and read as a pcap or pcapng capture, through libpcap or the
 * project's own pcapng reader, into an engine that is then flushed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "capture.h"
#include "fuzz_util.h"

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
    (void)cap_read_file(engine, path, NULL, NULL, err, sizeof err);
    cap_engine_flush(engine);
    cap_engine_destroy(&engine);
    return 0;
}
