/*
 * test_cap_pcapng.c: the own pcapng reader (cap_pcapng.c) on hand-built
 * files, and cap_read_file on pcapng files that libpcap 1.10 rejects.
 *
 * Every block below is little-endian unless its comment says otherwise.
 * Block layout: type, total length, body, total length again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cap_pcapng.h"
#include "cap_test_sink.h"
#include "capture.h"
#include "testutil.h"

/* Section Header Block, little-endian, 28 bytes. */
static const uint8_t SHB_LE[] = {
    0x0a, 0x0d, 0x0d, 0x0a,                         /* type SHB */
    0x1c, 0x00, 0x00, 0x00,                         /* total length 28 */
    0x4d, 0x3c, 0x2b, 0x1a,                         /* byte-order magic 0x1a2b3c4d, little-endian */
    0x01, 0x00, 0x00, 0x00,                         /* major 1, minor 0 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* section length -1 (unknown) */
    0x1c, 0x00, 0x00, 0x00,                         /* total length 28 */
};

/* Interface 0 of a section: Ethernet, snap length 65535, no options
 * (microsecond timestamps). */
static const uint8_t IDB_ETHERNET[] = {
    0x01, 0x00, 0x00, 0x00, /* type IDB */
    0x14, 0x00, 0x00, 0x00, /* total length 20 */
    0x01, 0x00, 0x00, 0x00, /* link type 1 (ETHERNET), reserved */
    0xff, 0xff, 0x00, 0x00, /* snap length 65535 */
    0x14, 0x00, 0x00, 0x00, /* total length 20 */
};

/* An interface with link type 101 (RAW, IP without a link header), snap
 * length 2048 and if_tsresol 9 (nanoseconds). */
static const uint8_t IDB_RAW_NS[] = {
    0x01, 0x00, 0x00, 0x00, /* type IDB */
    0x20, 0x00, 0x00, 0x00, /* total length 32 */
    0x65, 0x00, 0x00, 0x00, /* link type 101 (RAW), reserved */
    0x00, 0x08, 0x00, 0x00, /* snap length 2048 */
    0x09, 0x00, 0x01, 0x00, /* option if_tsresol, length 1 */
    0x09, 0x00, 0x00, 0x00, /* 10^-9 s, 3 bytes padding */
    0x00, 0x00, 0x00, 0x00, /* opt_endofopt */
    0x20, 0x00, 0x00, 0x00, /* total length 32 */
};

/* Ethernet interface with if_tsresol 0x8a (2^-10 s) and if_tsoffset 100 s. */
static const uint8_t IDB_ETHERNET_BIN_OFFSET[] = {
    0x01, 0x00, 0x00, 0x00,                         /* type IDB */
    0x2c, 0x00, 0x00, 0x00,                         /* total length 44 */
    0x01, 0x00, 0x00, 0x00,                         /* link type 1, reserved */
    0x00, 0x00, 0x00, 0x00,                         /* snap length 0 (no limit) */
    0x09, 0x00, 0x01, 0x00,                         /* option if_tsresol, length 1 */
    0x8a, 0x00, 0x00, 0x00,                         /* 2^-10 s, padding */
    0x0e, 0x00, 0x08, 0x00,                         /* option if_tsoffset, length 8 */
    0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* +100 s */
    0x00, 0x00, 0x00, 0x00,                         /* opt_endofopt */
    0x2c, 0x00, 0x00, 0x00,                         /* total length 44 */
};

/* Enhanced Packet Block on interface 0, timestamp 1,000,000 us (1 s),
 * 4 captured bytes of a 60-byte frame. */
static const uint8_t EPB_IF0_4B[] = {
    0x06, 0x00, 0x00, 0x00, /* type EPB */
    0x24, 0x00, 0x00, 0x00, /* total length 36 */
    0x00, 0x00, 0x00, 0x00, /* interface 0 */
    0x00, 0x00, 0x00, 0x00, /* timestamp high */
    0x40, 0x42, 0x0f, 0x00, /* timestamp low 1,000,000 */
    0x04, 0x00, 0x00, 0x00, /* captured length 4 */
    0x3c, 0x00, 0x00, 0x00, /* original length 60 */
    0xde, 0xad, 0xbe, 0xef, /* packet data */
    0x24, 0x00, 0x00, 0x00, /* total length 36 */
};

/* The same on interface 1, timestamp 0x00000001_00000000 units. */
static const uint8_t EPB_IF1_4B[] = {
    0x06, 0x00, 0x00, 0x00, /* type EPB */
    0x24, 0x00, 0x00, 0x00, /* total length 36 */
    0x01, 0x00, 0x00, 0x00, /* interface 1 */
    0x01, 0x00, 0x00, 0x00, /* timestamp high 1 */
    0x00, 0x00, 0x00, 0x00, /* timestamp low 0: 2^32 units */
    0x04, 0x00, 0x00, 0x00, /* captured length 4 */
    0x04, 0x00, 0x00, 0x00, /* original length 4 */
    0x01, 0x02, 0x03, 0x04, /* packet data */
    0x24, 0x00, 0x00, 0x00, /* total length 36 */
};

/* An unknown block type (0x0bad), which the reader must skip. */
static const uint8_t BLOCK_UNKNOWN[] = {
    0xad, 0x0b, 0x00, 0x00, /* type 0x00000bad */
    0x10, 0x00, 0x00, 0x00, /* total length 16 */
    0x55, 0x55, 0x55, 0x55, /* body */
    0x10, 0x00, 0x00, 0x00, /* total length 16 */
};

static FILE *open_bytes(const uint8_t *data, size_t len)
{
    FILE *f = fmemopen((void *)(uintptr_t)data, len, "rb");

    assert_non_null(f);
    return f;
}

/* Append BLOCK to OUT (OUT_LEN bytes, *POS used). */
static void append(uint8_t *out, size_t out_len, size_t *pos, const uint8_t *block, size_t len)
{
    assert_true(len <= out_len - *pos);
    if (len > 0)
        memcpy(out + *pos, block, len);
    *pos += len;
}

/* Append up to four blocks to the LEN bytes already in OUT; return the
 * new length. */
static size_t join(uint8_t *out, size_t out_len, size_t len, const uint8_t *a, size_t alen,
                   const uint8_t *b, size_t blen, const uint8_t *c, size_t clen)
{
    append(out, out_len, &len, a, alen);
    append(out, out_len, &len, b, blen);
    append(out, out_len, &len, c, clen);
    return len;
}

/* Read FILE_BYTES to the end or the first error. Store up to 8 packets
 * (their data pointers are not kept) and return the final code. */
static int read_all(const uint8_t *bytes, size_t len, cap_pcapng_packet *pkts, size_t *npkts,
                    char *msg, size_t msg_len)
{
    static uint8_t copy[4096];
    cap_pcapng_reader *r = NULL;
    FILE *f;
    int rc;

    assert_true(len <= sizeof copy);
    memcpy(copy, bytes, len);
    f = open_bytes(copy, len);
    assert_int_equal(cap_pcapng_create(f, &r), FV_OK);
    *npkts = 0;
    for (;;) {
        cap_pcapng_packet pkt;
        bool done = false;

        rc = cap_pcapng_next(r, &pkt, &done);
        if (rc != FV_OK || done)
            break;
        if (*npkts < 8)
            pkts[(*npkts)++] = pkt;
    }
    (void)snprintf(msg, msg_len, "%s", cap_pcapng_error(r));
    cap_pcapng_destroy(&r);
    assert_null(r);
    fclose(f);
    return rc;
}

static void test_pcapng_two_linktypes_per_packet(void **state)
{
    uint8_t file[512];
    cap_pcapng_packet pkts[8];
    size_t n, len;
    char msg[256];

    (void)state;
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               IDB_RAW_NS, sizeof IDB_RAW_NS);
    len = join(file, sizeof file, len, EPB_IF0_4B, sizeof EPB_IF0_4B, NULL, 0, NULL, 0);
    len = join(file, sizeof file, len, BLOCK_UNKNOWN, sizeof BLOCK_UNKNOWN, EPB_IF1_4B,
               sizeof EPB_IF1_4B, NULL, 0);

    assert_int_equal(read_all(file, len, pkts, &n, msg, sizeof msg), FV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pkts[0].interface_id, 0);
    assert_int_equal(pkts[0].linktype, 1);
    assert_int_equal(pkts[0].snaplen, 65535);
    assert_int_equal(pkts[0].ts_us, 1000000);
    assert_int_equal(pkts[0].caplen, 4);
    assert_int_equal(pkts[0].wirelen, 60);
    assert_int_equal(pkts[1].interface_id, 1);
    assert_int_equal(pkts[1].linktype, 101);
    assert_int_equal(pkts[1].snaplen, 2048);
    /* 2^32 ns = 4,294,967,296 ns = 4,294,967 us (truncated). */
    assert_int_equal(pkts[1].ts_us, 4294967);
}

static void test_pcapng_big_endian_section(void **state)
{
    /* SHB, IDB and EPB written big-endian. */
    static const uint8_t file[] = {
        0x0a, 0x0d, 0x0d, 0x0a,                         /* type SHB (same in both orders) */
        0x00, 0x00, 0x00, 0x1c,                         /* total length 28 */
        0x1a, 0x2b, 0x3c, 0x4d,                         /* byte-order magic, big-endian */
        0x00, 0x01, 0x00, 0x00,                         /* major 1, minor 0 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* section length -1 */
        0x00, 0x00, 0x00, 0x1c,                         /* total length 28 */
        0x00, 0x00, 0x00, 0x01,                         /* type IDB */
        0x00, 0x00, 0x00, 0x14,                         /* total length 20 */
        0x00, 0x71, 0x00, 0x00,                         /* link type 113 (LINUX_SLL), reserved */
        0x00, 0x00, 0x10, 0x00,                         /* snap length 4096 */
        0x00, 0x00, 0x00, 0x14,                         /* total length 20 */
        0x00, 0x00, 0x00, 0x06,                         /* type EPB */
        0x00, 0x00, 0x00, 0x24,                         /* total length 36 */
        0x00, 0x00, 0x00, 0x00,                         /* interface 0 */
        0x00, 0x00, 0x00, 0x00,                         /* timestamp high */
        0x00, 0x00, 0x00, 0x2a,                         /* timestamp low 42 us */
        0x00, 0x00, 0x00, 0x03,                         /* captured length 3 */
        0x00, 0x00, 0x00, 0x05,                         /* original length 5 */
        0xaa, 0xbb, 0xcc, 0x00,                         /* 3 data bytes and padding */
        0x00, 0x00, 0x00, 0x24,                         /* total length 36 */
    };
    cap_pcapng_packet pkts[8];
    size_t n;
    char msg[256];

    (void)state;
    assert_int_equal(read_all(file, sizeof file, pkts, &n, msg, sizeof msg), FV_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pkts[0].linktype, 113);
    assert_int_equal(pkts[0].snaplen, 4096);
    assert_int_equal(pkts[0].ts_us, 42);
    assert_int_equal(pkts[0].caplen, 3);
    assert_int_equal(pkts[0].wirelen, 5);
}

static void test_pcapng_tsresol_nano_and_binary(void **state)
{
    /* EPB on interface 0 of a section whose interface 0 is IDB_RAW_NS:
     * 1,700,000,000,123,456,789 ns. */
    static const uint8_t epb_ns[] = {
        0x06, 0x00, 0x00, 0x00, /* type EPB */
        0x20, 0x00, 0x00, 0x00, /* total length 32 */
        0x00, 0x00, 0x00, 0x00, /* interface 0 */
        0xfe, 0x9c, 0x97, 0x17, /* timestamp high 0x17979cfe */
        0x15, 0xcd, 0x85, 0x3d, /* timestamp low 0x3d85cd15 */
        0x00, 0x00, 0x00, 0x00, /* captured length 0 */
        0x00, 0x00, 0x00, 0x00, /* original length 0 */
        0x20, 0x00, 0x00, 0x00, /* total length 32 */
    };
    /* EPB on an interface with 2^-10 s units: 3.5 s = 3584 units. */
    static const uint8_t epb_bin[] = {
        0x06, 0x00, 0x00, 0x00, /* type EPB */
        0x20, 0x00, 0x00, 0x00, /* total length 32 */
        0x00, 0x00, 0x00, 0x00, /* interface 0 */
        0x00, 0x00, 0x00, 0x00, /* timestamp high */
        0x00, 0x0e, 0x00, 0x00, /* timestamp low 3584 */
        0x00, 0x00, 0x00, 0x00, /* captured length 0 */
        0x00, 0x00, 0x00, 0x00, /* original length 0 */
        0x20, 0x00, 0x00, 0x00, /* total length 32 */
    };
    uint8_t file[512];
    cap_pcapng_packet pkts[8];
    size_t n, len;
    char msg[256];

    (void)state;
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_RAW_NS, sizeof IDB_RAW_NS, epb_ns,
               sizeof epb_ns);
    /* A second section: interfaces start again from 0. */
    len = join(file, sizeof file, len, SHB_LE, sizeof SHB_LE, IDB_ETHERNET_BIN_OFFSET,
               sizeof IDB_ETHERNET_BIN_OFFSET, epb_bin, sizeof epb_bin);

    assert_int_equal(read_all(file, len, pkts, &n, msg, sizeof msg), FV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pkts[0].section, 0);
    assert_int_equal(pkts[0].ts_us, 1700000000123456ULL);
    assert_int_equal(pkts[1].section, 1);
    assert_int_equal(pkts[1].linktype, 1);
    /* 3.5 s plus if_tsoffset 100 s. */
    assert_int_equal(pkts[1].ts_us, 103500000ULL);
}

static void test_pcapng_simple_packet_block(void **state)
{
    /* SPB with original length 8 and 8 data bytes; interface 0 is an
     * Ethernet interface with snap length 6, so 6 bytes are captured. */
    static const uint8_t idb_snap6[] = {
        0x01, 0x00, 0x00, 0x00, /* type IDB */
        0x14, 0x00, 0x00, 0x00, /* total length 20 */
        0x01, 0x00, 0x00, 0x00, /* link type 1 */
        0x06, 0x00, 0x00, 0x00, /* snap length 6 */
        0x14, 0x00, 0x00, 0x00, /* total length 20 */
    };
    static const uint8_t spb[] = {
        0x03, 0x00, 0x00, 0x00,                         /* type SPB */
        0x18, 0x00, 0x00, 0x00,                         /* total length 24 */
        0x08, 0x00, 0x00, 0x00,                         /* original length 8 */
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* data */
        0x18, 0x00, 0x00, 0x00,                         /* total length 24 */
    };
    uint8_t file[512];
    cap_pcapng_packet pkts[8];
    size_t n, len;
    char msg[256];

    (void)state;
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, idb_snap6, sizeof idb_snap6, EPB_IF0_4B,
               sizeof EPB_IF0_4B);
    len = join(file, sizeof file, len, spb, sizeof spb, NULL, 0, NULL, 0);
    assert_int_equal(read_all(file, len, pkts, &n, msg, sizeof msg), FV_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pkts[1].caplen, 6);
    assert_int_equal(pkts[1].wirelen, 8);
    /* No timestamp in an SPB: the previous packet's time is kept. */
    assert_int_equal(pkts[1].ts_us, 1000000);
}

/* Read SHB + IDB_ETHERNET + BLOCK and expect FV_ERR_PARSE with a message
 * that contains WORDS. */
static void expect_parse_error(const uint8_t *block, size_t block_len, const char *words)
{
    uint8_t file[512];
    cap_pcapng_packet pkts[8];
    size_t n, len;
    char msg[256];

    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               block, block_len);
    assert_int_equal(read_all(file, len, pkts, &n, msg, sizeof msg), FV_ERR_PARSE);
    assert_int_equal(n, 0);
    assert_non_null(strstr(msg, words));
}

static void test_pcapng_rejects_bogus_lengths(void **state)
{
    /* Total length 34: not a multiple of 4. */
    static const uint8_t odd_len[] = {
        0x06, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00,
    };
    /* Total length 8: shorter than type, length and trailer. */
    static const uint8_t tiny_len[] = {
        0x06, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
    };
    /* Total length 0x7ffffff0: beyond CAP_PCAPNG_MAX_BLOCK. */
    static const uint8_t huge_len[] = {
        0x06, 0x00, 0x00, 0x00, 0xf0, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x00,
    };
    /* EPB whose trailing length (40) differs from the leading 36. */
    static const uint8_t trailer_mismatch[] = {
        0x06, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, /* type EPB, length 36 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* if, ts */
        0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, /* caplen 4, wirelen 4 */
        0x01, 0x02, 0x03, 0x04,                         /* data */
        0x28, 0x00, 0x00, 0x00,                         /* trailing length 40 */
    };
    /* EPB on interface 5 of a section with one interface. */
    static const uint8_t bad_interface[] = {
        0x06, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, /* type EPB, length 36 */
        0x05, 0x00, 0x00, 0x00,                         /* interface 5 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* timestamp */
        0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, /* caplen 4, wirelen 4 */
        0x01, 0x02, 0x03, 0x04,                         /* data */
        0x24, 0x00, 0x00, 0x00,                         /* length 36 */
    };
    /* EPB claiming 200 captured bytes in a 4-byte data area. */
    static const uint8_t caplen_past_body[] = {
        0x06, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, /* type EPB, length 36 */
        0x00, 0x00, 0x00, 0x00,                         /* interface 0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* timestamp */
        0xc8, 0x00, 0x00, 0x00, 0xc8, 0x00, 0x00, 0x00, /* caplen 200, wirelen 200 */
        0x01, 0x02, 0x03, 0x04,                         /* data */
        0x24, 0x00, 0x00, 0x00,                         /* length 36 */
    };

    (void)state;
    expect_parse_error(odd_len, sizeof odd_len, "invalid total length 34");
    expect_parse_error(tiny_len, sizeof tiny_len, "invalid total length 8");
    expect_parse_error(huge_len, sizeof huge_len, "invalid total length");
    expect_parse_error(trailer_mismatch, sizeof trailer_mismatch, "trailing total length 40");
    expect_parse_error(bad_interface, sizeof bad_interface, "interface 5");
    expect_parse_error(caplen_past_body, sizeof caplen_past_body, "captured length 200");
}

static void test_pcapng_truncated_after_complete_blocks(void **state)
{
    uint8_t file[512];
    cap_pcapng_packet pkts[8];
    size_t n, len;
    char msg[256];

    (void)state;
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               EPB_IF0_4B, sizeof EPB_IF0_4B);
    len = join(file, sizeof file, len, EPB_IF0_4B, sizeof EPB_IF0_4B, NULL, 0, NULL, 0);

    /* Cut inside the second EPB's body, then inside its header. */
    assert_int_equal(read_all(file, len - 10, pkts, &n, msg, sizeof msg), FV_ERR_TRUNCATED);
    assert_int_equal(n, 1);
    assert_non_null(strstr(msg, "ends inside"));
    assert_int_equal(read_all(file, len - sizeof EPB_IF0_4B + 5, pkts, &n, msg, sizeof msg),
                     FV_ERR_TRUNCATED);
    assert_int_equal(n, 1);
    /* A file without its first block header is truncated too. */
    assert_int_equal(read_all(file, 3, pkts, &n, msg, sizeof msg), FV_ERR_TRUNCATED);
    assert_int_equal(n, 0);
}

static void test_pcapng_scan_reports_mixed_interfaces(void **state)
{
    uint8_t file[512];
    cap_pcapng_summary sum;
    size_t len;
    char err[256];
    FILE *f;

    (void)state;
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               EPB_IF0_4B, sizeof EPB_IF0_4B);
    len = join(file, sizeof file, len, IDB_RAW_NS, sizeof IDB_RAW_NS, NULL, 0, NULL, 0);
    f = open_bytes(file, len);
    assert_int_equal(cap_pcapng_scan(f, &sum, err, sizeof err), FV_OK);
    fclose(f);
    assert_int_equal(sum.sections, 1);
    assert_int_equal(sum.interfaces, 2);
    assert_true(sum.mixed);
    assert_int_equal(sum.nlinktypes, 2);
    assert_int_equal(sum.linktypes[0], 1);
    assert_int_equal(sum.linktypes[1], 101);

    /* Two identical Ethernet interfaces are not mixed. */
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               IDB_ETHERNET, sizeof IDB_ETHERNET);
    f = open_bytes(file, len);
    assert_int_equal(cap_pcapng_scan(f, &sum, err, sizeof err), FV_OK);
    fclose(f);
    assert_int_equal(sum.interfaces, 2);
    assert_false(sum.mixed);

    /* A second section in the other byte order, with the same interface:
     * mixed, because libpcap reads every section in the first order. */
    static const uint8_t be_section[] = {
        0x0a, 0x0d, 0x0d, 0x0a, 0x00, 0x00, 0x00, 0x1c, /* SHB, total length 28 */
        0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x01, 0x00, 0x00, /* big-endian magic, version 1.0 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* section length -1 */
        0x00, 0x00, 0x00, 0x1c,                         /* total length 28 */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x14, /* IDB, total length 20 */
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, /* Ethernet, snap length 65535 */
        0x00, 0x00, 0x00, 0x14,                         /* total length 20 */
    };
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               be_section, sizeof be_section);
    f = open_bytes(file, len);
    assert_int_equal(cap_pcapng_scan(f, &sum, err, sizeof err), FV_OK);
    fclose(f);
    assert_int_equal(sum.sections, 2);
    assert_int_equal(sum.nlinktypes, 1);
    assert_true(sum.mixed);

    /* Two little-endian sections with the same interface are not. */
    len = join(file, sizeof file, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               SHB_LE, sizeof SHB_LE);
    len = join(file, sizeof file, len, IDB_ETHERNET, sizeof IDB_ETHERNET, NULL, 0, NULL, 0);
    f = open_bytes(file, len);
    assert_int_equal(cap_pcapng_scan(f, &sum, err, sizeof err), FV_OK);
    fclose(f);
    assert_int_equal(sum.sections, 2);
    assert_false(sum.mixed);
}

/* An Ethernet IPv4 UDP frame 192.0.2.1:12345 -> 192.0.2.2:53 (42 bytes)
 * and the same IPv4 packet without the Ethernet header (RAW), each in an
 * EPB. The EPB for the RAW frame uses interface 1. */
static size_t mixed_link_file(uint8_t *file, size_t file_len, uint8_t proto)
{
    uint8_t ip[28] = {
        0x45, 0x00, 0x00, 0x1c, /* IPv4, IHL 5, total length 28 */
        0x00, 0x01, 0x00, 0x00, /* id 1, no fragment */
        0x40, 0x11, 0x00, 0x00, /* TTL 64, protocol 17 (UDP, patched below), checksum 0 */
        0xc0, 0x00, 0x02, 0x01, /* 192.0.2.1 */
        0xc0, 0x00, 0x02, 0x02, /* 192.0.2.2 */
        0x30, 0x39, 0x00, 0x35, /* ports 12345 -> 53 */
        0x00, 0x08, 0x00, 0x00, /* UDP length 8, checksum 0 */
    };
    uint8_t eth_epb[76] = {
        0x06, 0x00, 0x00, 0x00, 0x4c, 0x00, 0x00, 0x00, /* type EPB, length 76 */
        0x00, 0x00, 0x00, 0x00,                         /* interface 0 */
        0x00, 0x00, 0x00, 0x00, 0x40, 0x42, 0x0f, 0x00, /* 1 s */
        0x2a, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, /* caplen 42, wirelen 42 */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02,             /* destination MAC */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01,             /* source MAC */
        0x08, 0x00,                                     /* EtherType IPv4 */
    };
    uint8_t raw_epb[60] = {
        0x06, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x00, /* type EPB, length 60 */
        0x01, 0x00, 0x00, 0x00,                         /* interface 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0 ns... */
        0x1c, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, /* caplen 28, wirelen 28 */
    };
    size_t len;

    /* Time on the nanosecond interface: 2 s = 2,000,000,000 ns. */
    raw_epb[16] = 0x00;
    raw_epb[17] = 0x94;
    raw_epb[18] = 0x35;
    raw_epb[19] = 0x77;
    ip[9] = proto;
    memcpy(eth_epb + 42, ip, sizeof ip);
    eth_epb[72] = 0x4c; /* trailing length 76 (bytes 70..71 are padding) */
    memcpy(raw_epb + 28, ip, sizeof ip);
    raw_epb[56] = 0x3c; /* trailing length 60 */

    len = join(file, file_len, 0, SHB_LE, sizeof SHB_LE, IDB_ETHERNET, sizeof IDB_ETHERNET,
               IDB_RAW_NS, sizeof IDB_RAW_NS);
    len = join(file, file_len, len, eth_epb, sizeof eth_epb, NULL, 0, NULL, 0);
    return join(file, file_len, len, raw_epb, sizeof raw_epb, NULL, 0, NULL, 0);
}

/* Write FILE to a temp dir and read it with cap_read_file. */
static int read_file_bytes(const uint8_t *file, size_t len, const char *bpf, test_sink *ts,
                           cap_stats *st, char *err, size_t err_len)
{
    char dir[512], path[600];
    cap_sink sink = ts_sink(ts);
    cap_engine *eng = NULL;
    int rc;

    tu_make_temp_dir(dir, sizeof dir);
    (void)snprintf(path, sizeof path, "%s/mixed.pcapng", dir);
    tu_write_file(path, file, len);
    assert_int_equal(cap_engine_create(NULL, &sink, &eng), FV_OK);
    rc = cap_read_file(eng, path, bpf, NULL, err, err_len);
    cap_engine_flush(eng);
    cap_engine_stats(eng, st);
    cap_engine_destroy(&eng);
    tu_remove_tree(dir);
    return rc;
}

static test_sink sink_state;

static void test_read_file_mixed_link_types(void **state)
{
    uint8_t file[512];
    size_t len = mixed_link_file(file, sizeof file, 17);
    cap_stats st;
    char err[512];

    (void)state;
    assert_int_equal(read_file_bytes(file, len, NULL, &sink_state, &st, err, sizeof err), FV_OK);
    assert_int_equal(st.packets, 2);
    assert_int_equal(st.ip_packets, 2);
    assert_int_equal(st.unsupported_link, 0);
    /* Both frames carry the same UDP 5-tuple, so they form one flow. */
    assert_int_equal(sink_state.nflows, 1);
    assert_int_equal(sink_state.flows[0].pkts_fwd, 2);
    assert_int_equal(sink_state.flows[0].first_us, 1000000);
    assert_int_equal(sink_state.flows[0].last_us, 2000000);
}

static void test_read_file_mixed_link_filter(void **state)
{
    uint8_t file[512];
    size_t len = mixed_link_file(file, sizeof file, 17);
    cap_stats st;
    char err[512];

    (void)state;
    /* Matches on both link types. */
    assert_int_equal(read_file_bytes(file, len, "udp port 53", &sink_state, &st, err, sizeof err),
                     FV_OK);
    assert_int_equal(st.packets, 2);
    /* Matches nothing. */
    assert_int_equal(read_file_bytes(file, len, "tcp", &sink_state, &st, err, sizeof err), FV_OK);
    assert_int_equal(st.packets, 0);
    /* Valid on Ethernet only: rejected before any frame is processed. */
    assert_int_equal(
        read_file_bytes(file, len, "ether broadcast", &sink_state, &st, err, sizeof err),
        FV_ERR_INVALID);
    assert_int_equal(st.packets, 0);
    assert_non_null(strstr(err, "link type 101"));
}

static void test_corpus_modify_request_reads_all(void **state)
{
    char path[1024], err[512];
    cap_sink sink = ts_sink(&sink_state);
    cap_engine *eng = NULL;
    cap_stats st;

    (void)state;
    (void)snprintf(path, sizeof path, "%s/pcaps/zeek-modify-request.pcapng",
                   tu_env("FLOWVEIL_CORPUS", "../shared/corpus"));
    assert_int_equal(cap_engine_create(NULL, &sink, &eng), FV_OK);
    assert_int_equal(cap_read_file(eng, path, NULL, NULL, err, sizeof err), FV_OK);
    cap_engine_flush(eng);
    cap_engine_stats(eng, &st);
    cap_engine_destroy(&eng);
    /* The reference (tshark) counts 17 frames, all on interface 48. */
    assert_int_equal(st.packets, 17);
    assert_int_equal(st.ip_packets, 17);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcapng_two_linktypes_per_packet),
        cmocka_unit_test(test_pcapng_big_endian_section),
        cmocka_unit_test(test_pcapng_tsresol_nano_and_binary),
        cmocka_unit_test(test_pcapng_simple_packet_block),
        cmocka_unit_test(test_pcapng_rejects_bogus_lengths),
        cmocka_unit_test(test_pcapng_truncated_after_complete_blocks),
        cmocka_unit_test(test_pcapng_scan_reports_mixed_interfaces),
        cmocka_unit_test(test_read_file_mixed_link_types),
        cmocka_unit_test(test_read_file_mixed_link_filter),
        cmocka_unit_test(test_corpus_modify_request_reads_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
