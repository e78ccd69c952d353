/*
 * cap_pcap.c: feed frames from libpcap (capture files and live
 * interfaces) into the capture engine.
 *
 * Error messages name the file or interface and the fix. They never
 * contain packet data, and they show a BPF expression only when it contains
 * no address literal, because the live filter carries the policy's
 * excluded hosts.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#if defined(__has_include)
#if __has_include(<stdio_ext.h>)
#include <stdio_ext.h>
#define CAP_HAVE_FSETLOCKING 1
#endif
#endif

#include <pcap/pcap.h>

#include "cap_internal.h"
#include "cap_fanout.h"
#include "cap_pcapng.h"

#define CAP_LIVE_TIMEOUT_MS 100
#define CAP_TICK_INTERVAL_US 1000000ULL

static void set_err(char *err, size_t err_len, const char *fmt, ...) FV_PRINTF(3, 4);

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Return true if TEXT contains something that may be an IPv4 or IPv6
 * address literal: a digit next to a '.', or a ':'. */
static bool has_address_literal(const char *text)
{
    size_t i;

    for (i = 0; text[i] != '\0'; i++) {
        if (text[i] == ':')
            return true;
        if (text[i] == '.' && i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9')
            return true;
    }
    return false;
}

/* The time of a frame in microseconds. A pcap record stores its seconds
 * and its fraction in 32 bits each, which libpcap reads as signed, so
 * times from 2038 to 2106 arrive negative. They are read as unsigned, as
 * tshark does. A negative fraction, which only a damaged record has,
 * counts as 0. */
static uint64_t timeval_us(const struct timeval *tv)
{
    int64_t sec = (int64_t)tv->tv_sec;
    if (sec < 0 && sec >= INT32_MIN)
        sec += INT64_C(1) << 32;
    if (sec < 0)
        return 0;
    uint64_t usec = tv->tv_usec < 0 ? 0 : (uint64_t)tv->tv_usec;
    return (uint64_t)sec * 1000000ULL + usec;
}

/* Compile and install the BPF filter EXPR on P. WHAT names the file or
 * interface in the message. Returns FV_OK, FV_ERR_INVALID (bad
 * expression) or FV_ERR_CAPTURE. */
static int apply_filter(pcap_t *p, const char *what, const char *expr, char *err, size_t err_len)
{
    struct bpf_program prog;
    const char *shown;
    char quoted[512];

    if (expr == NULL || expr[0] == '\0')
        return FV_OK;

    if (has_address_literal(expr)) {
        shown = "(expression not shown: it contains addresses)";
    } else {
        (void)snprintf(quoted, sizeof quoted, "\"%s\"", expr);
        shown = quoted;
    }

    if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        set_err(err, err_len,
                "%s: invalid BPF filter %s: %s; fix the expression (pcap-filter(7) syntax, "
                "test it with 'tcpdump -d')",
                what, shown, pcap_geterr(p));
        return FV_ERR_INVALID;
    }
    if (pcap_setfilter(p, &prog) != 0) {
        set_err(err, err_len, "%s: libpcap could not install BPF filter %s: %s", what, shown,
                pcap_geterr(p));
        pcap_freecode(&prog);
        return FV_ERR_CAPTURE;
    }
    pcap_freecode(&prog);
    return FV_OK;
}

/* Map libpcap's message for a file it cannot open to our code and text. */
static int open_failure(const char *path, const char *msg, char *err, size_t err_len)
{
    if (strstr(msg, "unknown file format") != NULL || strstr(msg, "bad dump file format") != NULL) {
        set_err(err, err_len,
                "%s: not a pcap or pcapng file (libpcap: %s); convert it with editcap or "
                "tshark -F pcapng",
                path, msg);
        return FV_ERR_CAPTURE;
    }
    if (strstr(msg, "truncated") != NULL) {
        set_err(err, err_len, "%s: the file ends inside its header (libpcap: %s)", path, msg);
        return FV_ERR_TRUNCATED;
    }
    set_err(err, err_len, "%s: libpcap: %s; check that this is a capture file, and rewrite it "
                          "with `editcap -F pcapng FILE NEW` if another tool reads it", path, msg);
    return FV_ERR_CAPTURE;
}

/* LINKTYPE_RAW as stored in files, which libpcap's filter compiler knows
 * as DLT_RAW. The decoder accepts both numbers. */
#define LINKTYPE_RAW_FILE 101

/* BPF programs compiled per link type for the own pcapng reader. */
typedef struct ng_filter {
    size_t n;
    int linktypes[CAP_PCAPNG_MAX_LINKTYPES];
    struct bpf_program progs[CAP_PCAPNG_MAX_LINKTYPES];
} ng_filter;

static void ng_filter_free(ng_filter *flt)
{
    for (size_t i = 0; i < flt->n; i++)
        pcap_freecode(&flt->progs[i]);
    flt->n = 0;
}

/* Return the program for LINKTYPE in *OUT, compiling EXPR for it on first
 * use. Returns FV_OK, FV_ERR_INVALID (the expression does not compile for
 * this link type) or FV_ERR_UNSUPPORTED (too many link types). */
static int ng_filter_get(ng_filter *flt, int linktype, const char *path, const char *expr,
                         const struct bpf_program **out, char *err, size_t err_len)
{
    pcap_t *dead;
    size_t i;

    for (i = 0; i < flt->n; i++) {
        if (flt->linktypes[i] == linktype) {
            *out = &flt->progs[i];
            return FV_OK;
        }
    }
    if (flt->n >= CAP_PCAPNG_MAX_LINKTYPES) {
        set_err(err, err_len, "%s: more than %u link types in one file with a BPF filter; "
                "split the file per interface", path, CAP_PCAPNG_MAX_LINKTYPES);
        return FV_ERR_UNSUPPORTED;
    }
    dead = pcap_open_dead(linktype == LINKTYPE_RAW_FILE ? DLT_RAW : linktype, 262144);
    if (dead == NULL) {
        set_err(err, err_len, "%s: libpcap could not create a handle for link type %d", path,
                linktype);
        return FV_ERR_CAPTURE;
    }
    if (pcap_compile(dead, &flt->progs[flt->n], expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        set_err(err, err_len,
                "%s: the BPF filter %s does not compile for link type %d (%s): %s; the file "
                "mixes link types, so the filter must be valid for each of them, or split the "
                "file per interface (tshark -r FILE -Y frame.interface_id==N -w OUT)",
                path,
                has_address_literal(expr) ? "(expression not shown: it contains addresses)"
                                          : expr,
                linktype, pcap_datalink_val_to_name(linktype) != NULL
                              ? pcap_datalink_val_to_name(linktype)
                              : "unknown",
                pcap_geterr(dead));
        pcap_close(dead);
        return FV_ERR_INVALID;
    }
    pcap_close(dead);
    flt->linktypes[flt->n] = linktype;
    *out = &flt->progs[flt->n++];
    return FV_OK;
}

/* Return true if F starts with a pcapng Section Header Block. Then read
 * every interface block into *SUM and set *SCAN_OK, which stays false
 * when a block is malformed. F is rewound either way. */
static bool pcapng_peek(FILE *f, cap_pcapng_summary *sum, bool *scan_ok)
{
    uint8_t magic[4];
    uint32_t type;
    char scan_err[256];
    size_t got = fread(magic, 1, sizeof magic, f);

    *scan_ok = false;
    rewind(f);
    if (got != sizeof magic)
        return false;
    memcpy(&type, magic, sizeof type);
    if (type != CAP_PCAPNG_SHB_TYPE)
        return false;
    *scan_ok = cap_pcapng_scan(f, sum, scan_err, sizeof scan_err) == FV_OK;
    rewind(f);
    return true;
}

/*
 * Read pcapng file F with the own reader, each packet with the link type
 * of its interface. With a BPF expression every link type of SUM is
 * compiled before the first packet, so a filter that fails for one of
 * them stops the read before any packet is processed.
 */
static int read_pcapng_own(cap_frame_fn on_frame, void *ctx, FILE *f, const char *path,
                           const char *bpf, const cap_pcapng_summary *sum,
                           volatile sig_atomic_t *stop, char *err, size_t err_len)
{
    cap_pcapng_reader *reader = NULL;
    ng_filter flt;
    bool filtering = bpf != NULL && bpf[0] != '\0';
    int rc;

    flt.n = 0;
    if (filtering && sum != NULL) {
        for (size_t i = 0; i < sum->nlinktypes; i++) {
            const struct bpf_program *prog;

            rc = ng_filter_get(&flt, sum->linktypes[i], path, bpf, &prog, err, err_len);
            if (rc != FV_OK)
                goto out;
        }
    }

    rc = cap_pcapng_create(f, &reader);
    if (rc != FV_OK) {
        set_err(err, err_len, "%s: %s", path, fv_strerror(rc));
        goto out;
    }

    while (stop == NULL || !*stop) {
        cap_pcapng_packet pkt;
        bool done = false;

        rc = cap_pcapng_next(reader, &pkt, &done);
        if (rc != FV_OK) {
            set_err(err, err_len, "%s: %s", path, cap_pcapng_error(reader));
            /* Keep the documented codes of cap_read_file: a malformed or
             * unsupported block is a capture error. */
            if (rc == FV_ERR_PARSE || rc == FV_ERR_UNSUPPORTED)
                rc = FV_ERR_CAPTURE;
            goto out;
        }
        if (done)
            break;

        if (filtering) {
            const struct bpf_program *prog;
            struct pcap_pkthdr hdr;

            rc = ng_filter_get(&flt, pkt.linktype, path, bpf, &prog, err, err_len);
            if (rc != FV_OK)
                goto out;
            memset(&hdr, 0, sizeof hdr);
            hdr.caplen = pkt.caplen;
            hdr.len = pkt.wirelen;
            if (pcap_offline_filter(prog, &hdr, pkt.data) == 0)
                continue;
        }

        rc = on_frame(ctx, pkt.linktype, pkt.ts_us, pkt.data, pkt.caplen, pkt.wirelen);
        if (rc != FV_OK) {
            set_err(err, err_len, "%s: processing a frame failed: %s", path, fv_strerror(rc));
            goto out;
        }
    }
    rc = FV_OK;

out:
    cap_pcapng_destroy(&reader);
    ng_filter_free(&flt);
    return rc;
}

/*
 * libpcap 1.10 gives a pcapng file one link type and snap length, those
 * of its first interface, and fails at a later interface block with
 * another link type or snap length. Such files, and pcapng files libpcap
 * cannot open at all, go to the own reader (cap_pcapng.c). Everything
 * else is read by libpcap.
 */
/* The engine that cap_read_file feeds, and the link type of the last
 * frame, which names the link type in the "not supported" message. */
typedef struct engine_feed {
    cap_engine *engine;
    int last_linktype;
} engine_feed;

static int engine_frame(void *ctx, int linktype, uint64_t ts_us, const uint8_t *data,
                        uint32_t caplen, uint32_t wirelen)
{
    engine_feed *feed = ctx;
    feed->last_linktype = linktype;
    return cap_engine_packet(feed->engine, linktype, ts_us, data, caplen, wirelen);
}

int cap_read_file(cap_engine *engine, const char *path, const char *bpf,
                  volatile sig_atomic_t *stop, char *err, size_t err_len)
{
    if (engine == NULL) {
        set_err(err, err_len, "cap_read_file: engine and path are required");
        return FV_ERR_INVALID;
    }
    cap_stats before, after;
    cap_engine_stats(engine, &before);
    engine_feed feed = {.engine = engine, .last_linktype = -1};
    int rc = cap_read_file_frames(path, bpf, stop, engine_frame, &feed, err, err_len);
    cap_engine_stats(engine, &after);

    /* Frames of a link type the decoder lacks are only counted, so a
     * file of such frames would otherwise "succeed" with nothing stored. */
    unsigned long long skipped = after.unsupported_link - before.unsupported_link;
    unsigned long long packets = after.packets - before.packets;
    if (rc != FV_OK || skipped == 0)
        return rc;
    if (skipped == packets) {
        const char *name = pcap_datalink_val_to_name(feed.last_linktype);
        set_err(err, err_len, "%s: link type %d (%s) is not supported; %llu packet%s skipped and "
                              "nothing decoded; flowveil decodes Ethernet, Linux cooked capture "
                              "(SLL, SLL2), raw IP, BSD loopback, NFLOG and PPP",
                path, feed.last_linktype, name != NULL ? name : "unknown", skipped,
                skipped == 1 ? "" : "s");
        return FV_ERR_UNSUPPORTED;
    }
    fv_warning("%s: %llu of %llu packets are on a link type that is not supported and were "
               "skipped", path, skipped, packets);
    return FV_OK;
}

/* stdio buffer of a capture file that libpcap reads. glibc's default is
 * st_blksize (4 KiB on ext4), so one read system call per 4 KiB. With
 * 256 KiB, bench_bare_loop took 0.16 instead of 0.24 CPU s for an 867 MB
 * capture on a 2-core AMD EPYC VM. */
#define CAP_FILE_BUFFER_BYTES (256u * 1024u)

/*
 * Open PATH for libpcap through a FILE with a CAP_FILE_BUFFER_BYTES
 * buffer (pcap_fopen_offline; libpcap reads records with fread). The
 * buffer goes to *BUF, which the caller frees after pcap_close. Without
 * memory for the buffer the FILE keeps glibc's default. Returns NULL with
 * libpcap's message in ERRBUF, or with strerror's when PATH cannot be
 * opened.
 */
static pcap_t *open_offline_buffered(const char *path, char **buf, char *errbuf)
{
    FILE *f = fopen(path, "rb");
    pcap_t *p;

    *buf = NULL;
    if (f == NULL) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", strerror(errno));
        return NULL;
    }
    *buf = malloc(CAP_FILE_BUFFER_BYTES);
    /* setvbuf must come before the first read. With a NULL buffer glibc
     * 2.36 ignores the size. */
    if (*buf != NULL && setvbuf(f, *buf, _IOFBF, CAP_FILE_BUFFER_BYTES) != 0) {
        free(*buf);
        *buf = NULL;
    }
#ifdef CAP_HAVE_FSETLOCKING
    /* One thread reads the FILE from open to close, so stdio need not
     * lock it. In a process with threads (ingest --workers) glibc would
     * otherwise take the stream lock twice per record, for the header
     * and for the data. */
    (void)__fsetlocking(f, FSETLOCKING_BYCALLER);
#endif
    p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (p == NULL) {
        fclose(f);
        free(*buf);
        *buf = NULL;
    }
    return p;
}

int cap_read_file_frames(const char *path, const char *bpf, volatile sig_atomic_t *stop,
                         cap_frame_fn on_frame, void *ctx, char *err, size_t err_len)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    struct stat sb;
    cap_pcapng_summary sum;
    bool is_pcapng, scan_ok;
    FILE *f = NULL;
    pcap_t *p = NULL;
    char *read_buf = NULL;
    int rc = FV_OK;

    set_err(err, err_len, "%s", "");
    if (on_frame == NULL || path == NULL) {
        set_err(err, err_len, "cap_read_file: a frame receiver and a path are required");
        return FV_ERR_INVALID;
    }

    /* "-" is standard input, as with tcpdump -r -: it cannot be peeked
     * at or reopened, so it always goes through libpcap. */
    bool from_stdin = strcmp(path, "-") == 0;
    if (from_stdin) {
        errbuf[0] = '\0';
        p = pcap_fopen_offline_with_tstamp_precision(stdin, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
        /* A stop while the header was awaited is a stop, not bad input. */
        if (p == NULL && stop != NULL && *stop)
            return FV_OK;
        if (p == NULL) {
            set_err(err, err_len, "standard input: not a pcap or pcapng stream (%s)", errbuf);
            return FV_ERR_CAPTURE;
        }
        goto opened;
    }

    /* Check the path first: libpcap's open errors do not separate a
     * missing file from an unreadable one. */
    if (stat(path, &sb) != 0) {
        set_err(err, err_len, "%s: cannot open: %s; check the path", path, strerror(errno));
        return FV_ERR_IO;
    }
    if (S_ISDIR(sb.st_mode)) {
        set_err(err, err_len, "%s: is a directory; give a pcap or pcapng file", path);
        return FV_ERR_IO;
    }

    f = fopen(path, "rb");
    if (f == NULL) {
        set_err(err, err_len, "%s: cannot open: %s; check the permissions", path,
                strerror(errno));
        return FV_ERR_IO;
    }
    is_pcapng = pcapng_peek(f, &sum, &scan_ok);
    if (is_pcapng && scan_ok && sum.mixed) {
        rc = read_pcapng_own(on_frame, ctx, f, path, bpf, &sum, stop, err, err_len);
        goto out;
    }

    errbuf[0] = '\0';
    p = open_offline_buffered(path, &read_buf, errbuf);
    if (p == NULL) {
        if (is_pcapng) {
            /* The own reader reports a malformed block with its offset. */
            rc = read_pcapng_own(on_frame, ctx, f, path, bpf, scan_ok ? &sum : NULL, stop, err,
                                 err_len);
            goto out;
        }
        /* Compressed captures are common, so name the tool that unpacks them. */
        unsigned char magic[4] = {0};
        bool compressed = fseek(f, 0, SEEK_SET) == 0 && fread(magic, 1, sizeof magic, f) >= 3 &&
                          ((magic[0] == 0x1f && magic[1] == 0x8b) ||
                           (magic[0] == 0xfd && magic[1] == '7' && magic[2] == 'z') ||
                           (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f) ||
                           (magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h'));
        fclose(f);
        if (sb.st_size == 0) {
            set_err(err, err_len, "%s: empty file: not a pcap or pcapng file; give a capture "
                                  "that tcpdump -w, dumpcap or tshark wrote", path);
            return FV_ERR_CAPTURE;
        }
        if (compressed) {
            set_err(err, err_len, "%s: a compressed file (gzip, xz, zstd or bzip2), not a pcap "
                                  "or pcapng file; decompress it first, or pipe it in with "
                                  "`gunzip -c FILE | flowveil ingest ... -`", path);
            return FV_ERR_CAPTURE;
        }
        return open_failure(path, errbuf, err, err_len);
    }

opened:
    rc = apply_filter(p, path, bpf, err, err_len);
    if (rc != FV_OK)
        goto out;

    for (;;) {
        struct pcap_pkthdr *hdr;
        const u_char *data;
        int r;

        if (stop != NULL && *stop)
            break;
        r = pcap_next_ex(p, &hdr, &data);
        if (r == 1) {
            rc = on_frame(ctx, pcap_datalink(p), timeval_us(&hdr->ts), data, hdr->caplen,
                          hdr->len);
            if (rc != FV_OK) {
                set_err(err, err_len, "%s: processing a frame failed: %s", path, fv_strerror(rc));
                goto out;
            }
            continue;
        }
        if (r == 0)
            continue;
        if (r == PCAP_ERROR_BREAK)
            break;

        /* A stop signal interrupts a read that waits on a pipe: that is
         * the stop, not a damaged file. */
        if (stop != NULL && *stop)
            break;
        /* A read error ends the file after every complete frame was processed. */
        {
            const char *msg = pcap_geterr(p);

            rc = strstr(msg, "truncated") != NULL ? FV_ERR_TRUNCATED : FV_ERR_CAPTURE;
            if (strstr(msg, "different from") != NULL)
                set_err(err, err_len,
                        "%s: libpcap: %s; this libpcap reads a pcapng file only while all "
                        "its interfaces share one link type and snap length: split the file "
                        "per interface (tshark -r FILE -Y frame.interface_id==N -w OUT)",
                        path, msg);
            else if (rc == FV_ERR_TRUNCATED)
                set_err(err, err_len, "%s: libpcap: %s", path, msg);
            else
                set_err(err, err_len, "%s: libpcap: %s; the file is damaged at this record, and "
                                      "the packets before it were read; a pcap repair tool "
                                      "may recover the rest", path, msg);
        }
        goto out;
    }

out:
    if (p != NULL)
        pcap_close(p);
    free(read_buf); /* after pcap_close, which closes the FILE that used it */
    if (f != NULL)
        fclose(f);
    return rc;
}

/* One open interface: its handle and what the pcap_dispatch callback
 * needs. */
typedef struct live_ctx {
    cap_engine *engine;
    const char *iface;
    int linktype;
    int rc;
    int fd;             /* pcap_get_selectable_fd, -1 if none */
    pcap_t *pcap;
} live_ctx;

static void live_frame(u_char *user, const struct pcap_pkthdr *hdr, const u_char *data)
{
    live_ctx *ctx = (live_ctx *)(void *)user;
    int rc;

    if (ctx->rc != FV_OK)
        return;
    rc = cap_engine_packet(ctx->engine, ctx->linktype, timeval_us(&hdr->ts), data, hdr->caplen,
                           hdr->len);
    if (rc != FV_OK) {
        ctx->rc = rc;
        pcap_breakloop(ctx->pcap);
    }
}

/* Turn a negative pcap_activate result into our code and message. */
static int activate_failure(pcap_t *p, const char *iface, int status, char *err, size_t err_len)
{
    switch (status) {
    case PCAP_ERROR_PERM_DENIED:
    case PCAP_ERROR_PROMISC_PERM_DENIED:
        set_err(err, err_len,
                "%s: permission denied opening the interface for capture (%s); run as root, "
                "start as root with -Z USER, or grant CAP_NET_RAW, which is the only "
                "capability capture needs (setcap cap_net_raw=eip on the binary, or "
                "AmbientCapabilities=CAP_NET_RAW in a systemd unit)",
                iface, pcap_geterr(p));
        return FV_ERR_PERMISSION;
    case PCAP_ERROR_NO_SUCH_DEVICE:
        set_err(err, err_len, "%s: no such interface; list interfaces with 'ip link'", iface);
        return FV_ERR_CAPTURE;
    case PCAP_ERROR_IFACE_NOT_UP:
        set_err(err, err_len, "%s: interface is down; bring it up with 'ip link set %s up'",
                iface, iface);
        return FV_ERR_CAPTURE;
    default:
        set_err(err, err_len, "%s: libpcap could not start the capture: %s (%s)", iface,
                pcap_statustostr(status), pcap_geterr(p));
        return FV_ERR_CAPTURE;
    }
}

int cap_live_run(cap_engine *engine, const char *iface, const char *bpf,
                 volatile sig_atomic_t *stop, void (*tick)(void *ctx, uint64_t now_us),
                 void *tick_ctx, char *err, size_t err_len)
{
    cap_live_options opts = {
        .iface = iface, .bpf = bpf, .stop = stop, .tick = tick, .tick_ctx = tick_ctx};

    return cap_live_run_opts(engine, &opts, err, err_len);
}

/*
 * Open IFACE for capture with the settings of OPTS: snap length, kernel
 * ring size, promiscuous mode, immediate mode off (so TPACKET_V3 hands
 * over whole ring blocks, at most CAP_LIVE_TIMEOUT_MS late), the filter
 * and, with a fanout group, the group GROUP. On success *OUT is the
 * activated handle in non-blocking mode.
 */
static int live_open(const char *iface, const cap_live_options *opts, uint16_t group,
                     pcap_t **out, char *err, size_t err_len)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    uint32_t snaplen = opts->snaplen != 0 ? opts->snaplen : CAP_LIVE_SNAPLEN_DEFAULT;
    uint64_t buffer = opts->buffer_bytes != 0 ? opts->buffer_bytes : CAP_LIVE_BUFFER_DEFAULT;
    pcap_t *p;
    int status;
    int rc = FV_OK;

    *out = NULL;
    if (iface == NULL || iface[0] == '\0') {
        set_err(err, err_len, "cap_live_run: an empty interface name was given");
        return FV_ERR_INVALID;
    }
    if (snaplen < CAP_LIVE_SNAPLEN_MIN || snaplen > CAP_LIVE_SNAPLEN_MAX) {
        set_err(err, err_len, "%s: snap length %u is outside %u..%u bytes", iface,
                (unsigned)snaplen, CAP_LIVE_SNAPLEN_MIN, CAP_LIVE_SNAPLEN_MAX);
        return FV_ERR_INVALID;
    }
    /* pcap_set_buffer_size takes an int. */
    if (buffer > (uint64_t)INT_MAX) {
        set_err(err, err_len, "%s: a kernel buffer of %llu bytes exceeds libpcap's limit of %d",
                iface, (unsigned long long)buffer, INT_MAX);
        return FV_ERR_INVALID;
    }

    errbuf[0] = '\0';
    p = pcap_create(iface, errbuf);
    if (p == NULL) {
        set_err(err, err_len, "%s: libpcap could not create a capture handle: %s", iface, errbuf);
        return FV_ERR_CAPTURE;
    }
    if (pcap_set_snaplen(p, (int)snaplen) != 0 || pcap_set_promisc(p, 1) != 0 ||
        pcap_set_timeout(p, CAP_LIVE_TIMEOUT_MS) != 0 ||
        pcap_set_immediate_mode(p, 0) != 0 || pcap_set_buffer_size(p, (int)buffer) != 0) {
        set_err(err, err_len, "%s: libpcap rejected the capture settings: %s", iface,
                pcap_geterr(p));
        rc = FV_ERR_CAPTURE;
        goto out;
    }
    /* Microsecond timestamps are the default; a failure here only means
     * the platform cannot offer a choice. */
    (void)pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);

    status = pcap_activate(p);
    if (status < 0) {
        rc = activate_failure(p, iface, status, err, err_len);
        goto out;
    }
    if (status > 0)
        fv_warning("capture on %s started with a warning: %s", iface, pcap_statustostr(status));

    rc = apply_filter(p, iface, opts->bpf, err, err_len);
    if (rc != FV_OK)
        goto out;
    if (group != 0) {
        rc = cap_fanout_join(p, iface, group, err, err_len);
        if (rc != FV_OK)
            goto out;
    }

    /* Wait in poll() ourselves: with TPACKET_V3 (Linux, libpcap 1.10) a
     * blocking pcap_dispatch can sleep until traffic arrives, so neither
     * the stop flag nor the once-a-second tick would be served. */
    if (pcap_setnonblock(p, 1, errbuf) != 0) {
        set_err(err, err_len, "%s: libpcap could not enter non-blocking mode: %s", iface, errbuf);
        rc = FV_ERR_CAPTURE;
        goto out;
    }

out:
    if (rc != FV_OK)
        pcap_close(p);
    else
        *out = p;
    return rc;
}

/* Read every handle's pcap_stats, report each through OPTS->iface_stats
 * and store their sums in the engine. */
static void live_read_stats(cap_engine *engine, const cap_live_options *opts, live_ctx *ctx,
                            size_t n)
{
    uint64_t received = 0, dropped = 0, if_dropped = 0;

    for (size_t i = 0; i < n; i++) {
        struct pcap_stat ps;

        if (pcap_stats(ctx[i].pcap, &ps) != 0)
            continue;
        received += ps.ps_recv;
        dropped += ps.ps_drop;
        if_dropped += ps.ps_ifdrop;
        if (opts->iface_stats != NULL)
            opts->iface_stats(opts->iface_stats_ctx, i, ctx[i].iface, ps.ps_recv, ps.ps_drop,
                              ps.ps_ifdrop);
    }
    cap_engine_set_pcap_stats(engine, received, dropped, if_dropped);
}

/* Wait up to CAP_LIVE_TIMEOUT_MS for any handle to become readable, then
 * dispatch the frames of every handle. Returns FV_OK or the first error
 * with its message. */
static int live_poll_once(live_ctx *ctx, size_t n, char *err, size_t err_len)
{
    struct pollfd pfd[CAP_LIVE_MAX_IFACES];
    bool all_selectable = true;

    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = ctx[i].fd;
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
        if (ctx[i].fd < 0)
            all_selectable = false;
    }
    if (all_selectable) {
        (void)poll(pfd, (nfds_t)n, CAP_LIVE_TIMEOUT_MS);
    } else {
        struct timespec pause = {0, 10 * 1000 * 1000};

        (void)nanosleep(&pause, NULL);
    }

    /* Every handle is dispatched after each wait, readable or not; in
     * non-blocking mode pcap_dispatch returns at once when nothing is
     * ready, so an idle handle costs one call. */
    for (size_t i = 0; i < n; i++) {
        int got = pcap_dispatch(ctx[i].pcap, -1, live_frame, (u_char *)(void *)&ctx[i]);

        if (ctx[i].rc != FV_OK) {
            set_err(err, err_len, "%s: processing a frame failed: %s", ctx[i].iface,
                    fv_strerror(ctx[i].rc));
            return ctx[i].rc;
        }
        if (got == PCAP_ERROR) {
            set_err(err, err_len, "%s: libpcap: %s", ctx[i].iface, pcap_geterr(ctx[i].pcap));
            return FV_ERR_CAPTURE;
        }
    }
    return FV_OK;
}

int cap_live_run_opts(cap_engine *engine, const cap_live_options *opts, char *err,
                      size_t err_len)
{
    live_ctx ctx[CAP_LIVE_MAX_IFACES];
    const char *const *ifaces;
    size_t n_ifaces;
    size_t opened = 0;
    uint64_t next_tick_us = 0;
    int rc = FV_OK;

    set_err(err, err_len, "%s", "");
    if (engine == NULL || opts == NULL) {
        set_err(err, err_len, "cap_live_run: engine and options are required");
        return FV_ERR_INVALID;
    }
    ifaces = opts->n_ifaces > 0 ? opts->ifaces : &opts->iface;
    n_ifaces = opts->n_ifaces > 0 ? opts->n_ifaces : 1;
    if (ifaces == NULL || ifaces[0] == NULL || ifaces[0][0] == '\0') {
        set_err(err, err_len, "cap_live_run: an interface name is required");
        return FV_ERR_INVALID;
    }
    if (n_ifaces > CAP_LIVE_MAX_IFACES) {
        set_err(err, err_len, "%zu interfaces given, above the limit of %d; run several "
                "capture processes on separate stores",
                n_ifaces, CAP_LIVE_MAX_IFACES);
        return FV_ERR_INVALID;
    }

    /* Open every interface before after_open, so privileges are dropped
     * only once nothing else needs them. */
    for (size_t i = 0; i < n_ifaces; i++) {
        pcap_t *p = NULL;
        /* A fanout group belongs to one device, so each interface gets
         * its own group id, counted up from the given one. */
        uint16_t group = 0;
        if (opts->fanout_group != 0)
            group = (uint16_t)(1u + ((unsigned)opts->fanout_group - 1u + (unsigned)i) % 65535u);

        rc = live_open(ifaces[i], opts, group, &p, err, err_len);
        if (rc != FV_OK)
            goto out;
        ctx[i].engine = engine;
        ctx[i].iface = ifaces[i];
        ctx[i].linktype = pcap_datalink(p);
        ctx[i].rc = FV_OK;
        ctx[i].fd = pcap_get_selectable_fd(p);
        ctx[i].pcap = p;
        opened++;
    }

    if (opts->after_open != NULL) {
        rc = opts->after_open(opts->after_open_ctx, err, err_len);
        if (rc != FV_OK)
            goto out;
    }

    /* An atomic load, because with worker threads (cli/workers.c) another
     * thread raises the flag. */
    while (opts->stop == NULL || !__atomic_load_n(opts->stop, __ATOMIC_ACQUIRE)) {
        uint64_t now_us;

        rc = live_poll_once(ctx, opened, err, err_len);
        if (rc != FV_OK)
            break;

        now_us = fv_now_us();
        if (now_us >= next_tick_us) {
            cap_engine_expire(engine, now_us);
            /* Refresh the drop counters once a second too, so the tick
             * (and a counters dump it writes) sees them while capture runs. */
            live_read_stats(engine, opts, ctx, opened);
            if (opts->tick != NULL)
                opts->tick(opts->tick_ctx, now_us);
            next_tick_us = now_us + CAP_TICK_INTERVAL_US;
        }
    }

    live_read_stats(engine, opts, ctx, opened);

out:
    for (size_t i = 0; i < opened; i++)
        pcap_close(ctx[i].pcap);
    return rc;
}

int cap_filter_check(const char *bpf, char *err, size_t err_len)
{
    size_t len = strlen(bpf);
    if (len > CAP_FILTER_MAX_BYTES) {
        snprintf(err, err_len,
                 "the filter is %zu bytes long, above the limit of %d; shorten it, for example "
                 "by merging hosts into networks",
                 len, CAP_FILTER_MAX_BYTES);
        return FV_ERR_INVALID;
    }

    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    if (dead == NULL) {
        snprintf(err, err_len, "libpcap cannot check the filter (out of memory)");
        return FV_ERR_NOMEM;
    }
    struct bpf_program prog;
    int rc = FV_OK;
    if (pcap_compile(dead, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, err_len, "invalid filter '%s': %s; see pcap-filter(7) for the syntax", bpf,
                 pcap_geterr(dead));
        rc = FV_ERR_INVALID;
    } else {
        pcap_freecode(&prog);
    }
    pcap_close(dead);
    return rc;
}
