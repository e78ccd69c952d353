/*
 * bare_loop: the baseline of the dissection benchmark. Reads a capture
 * with pcap_next_ex and counts packets and captured bytes, so the cost
 * of reading the file can be subtracted from the cost of dissecting it.
 *
 * usage: bare_loop FILE [REPEAT]
 * Reads FILE REPEAT times (default 1) and prints the totals as
 * "packets N bytes N". Exit status 0, or 1 if the file cannot be
 * read.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <pcap/pcap.h>

/* The stdio buffer that cap_read_file gives libpcap (capture/cap_pcap.c),
 * so that this floor reads the file the same way. */
#define FILE_BUFFER_BYTES (256u * 1024u)

/* Read PATH once, adding to the counters. Returns 0 or 1 after a message. */
static int read_once(const char *path, uint64_t *packets, uint64_t *bytes)
{
    static char file_buffer[FILE_BUFFER_BYTES];
    char errbuf[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *hdr;
    const u_char *data;
    FILE *f;
    pcap_t *p;
    int r;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    (void)setvbuf(f, file_buffer, _IOFBF, sizeof file_buffer);
    p = pcap_fopen_offline(f, errbuf);
    if (p == NULL) {
        fprintf(stderr, "bare_loop: %s: %s\n", path, errbuf);
        fclose(f);
        return 1;
    }
    while ((r = pcap_next_ex(p, &hdr, &data)) == 1) {
        (*packets)++;
        *bytes += hdr->caplen;
        /* Touch the first byte so the loop reads what it counts. */
        if (hdr->caplen > 0 && data[0] == 0xff)
            (*bytes)++;
    }
    if (r == PCAP_ERROR) {
        fprintf(stderr, "bare_loop: %s: %s\n", path, pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t packets = 0, bytes = 0;
    unsigned long repeat = argc == 3 ? strtoul(argv[2], NULL, 10) : 1;

    if (argc < 2 || argc > 3 || repeat == 0) {
        fprintf(stderr, "usage: bare_loop FILE [REPEAT]\n");
        return 2;
    }
    for (unsigned long i = 0; i < repeat; i++) {
        if (read_once(argv[1], &packets, &bytes) != 0)
            return 1;
    }
    printf("packets %" PRIu64 " bytes %" PRIu64 "\n", packets, bytes);
    return 0;
}
