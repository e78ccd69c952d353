/*
 * cap_pcapng.c: pcapng reader (see cap_pcapng.h).
 *
 * Block layout (pcapng specification, draft-ietf-opsawg-pcapng): a 4-byte
 * type, a 4-byte total length, the body, and the total length again.
 * Every length counts the whole block and is a multiple of 4. The Section
 * Header Block's byte-order magic sets the byte order of every field up
 * to the next Section Header Block.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cap_pcapng.h"

#define BT_SHB CAP_PCAPNG_SHB_TYPE
#define BT_IDB 0x00000001u
#define BT_OPB 0x00000002u /* obsolete Packet Block */
#define BT_SPB 0x00000003u
#define BT_EPB 0x00000006u

#define BYTE_ORDER_MAGIC 0x1A2B3C4Du
#define BYTE_ORDER_MAGIC_SWAPPED 0x4D3C2B1Au

#define OPT_ENDOFOPT 0
#define OPT_IF_TSRESOL 9
#define OPT_IF_TSOFFSET 14

/* Type, total length, and the trailing total length. */
#define BLOCK_OVERHEAD 12u
#define SHB_MIN_BODY 16u /* magic, major, minor, section length */
#define IDB_MIN_BODY 8u  /* link type, reserved, snap length */
#define EPB_MIN_BODY 20u /* interface, ts high, ts low, caplen, wirelen */
#define OPB_MIN_BODY 20u /* interface (16 bit), drops, ts high, ts low, caplen, wirelen */
#define SPB_MIN_BODY 4u  /* wirelen */

#define US_PER_S 1000000ULL

typedef struct pcapng_iface {
    int linktype;
    uint32_t snaplen;
    bool binary_resolution; /* units are 2^-exponent s, else 10^-exponent s */
    uint8_t exponent;
    int64_t offset_s;       /* if_tsoffset: seconds added to every timestamp */
} pcapng_iface;

struct cap_pcapng_reader {
    FILE *f;
    uint64_t offset;        /* file offset of the next block */
    bool swapped;           /* section byte order differs from the host's */
    bool in_section;
    uint32_t section;       /* index of the current section */
    uint32_t sections_seen;
    pcapng_iface *ifaces;
    uint32_t nifaces, ifaces_cap;
    uint64_t last_ts_us;    /* for Simple Packet Blocks, which carry no time */
    uint8_t *buf;           /* current block body */
    size_t buf_cap;
    int failed;             /* sticky error code, FV_OK while healthy */
    char msg[256];
};

static void fail(cap_pcapng_reader *r, int rc, const char *fmt, ...) FV_PRINTF(3, 4);

static void fail(cap_pcapng_reader *r, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->failed = rc;
}

static uint16_t get16(const cap_pcapng_reader *r, const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof v);
    return r->swapped ? (uint16_t)((v >> 8) | (v << 8)) : v;
}

static uint32_t swap32(uint32_t v)
{
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

static uint32_t get32(const cap_pcapng_reader *r, const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof v);
    return r->swapped ? swap32(v) : v;
}

static uint64_t get64(const cap_pcapng_reader *r, const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
    if (r->swapped)
        v = ((uint64_t)swap32((uint32_t)v) << 32) | swap32((uint32_t)(v >> 32));
    return v;
}

int cap_pcapng_create(FILE *f, cap_pcapng_reader **out)
{
    cap_pcapng_reader *r;

    if (out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (f == NULL)
        return FV_ERR_INVALID;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return FV_ERR_NOMEM;
    r->f = f;
    *out = r;
    return FV_OK;
}

void cap_pcapng_destroy(cap_pcapng_reader **reader)
{
    if (reader == NULL || *reader == NULL)
        return;
    free((*reader)->ifaces);
    free((*reader)->buf);
    free(*reader);
    *reader = NULL;
}

const char *cap_pcapng_error(const cap_pcapng_reader *reader)
{
    return reader != NULL ? reader->msg : "";
}

/* Read exactly N bytes. Returns FV_OK, FV_ERR_TRUNCATED or FV_ERR_IO;
 * *GOT (if not NULL) receives the count actually read. */
static int read_exact(cap_pcapng_reader *r, void *dst, size_t n, size_t *got)
{
    size_t k = n == 0 ? 0 : fread(dst, 1, n, r->f);

    if (got != NULL)
        *got = k;
    if (k == n)
        return FV_OK;
    return ferror(r->f) ? FV_ERR_IO : FV_ERR_TRUNCATED;
}

static int ensure_buf(cap_pcapng_reader *r, size_t n)
{
    uint8_t *p;

    if (n <= r->buf_cap)
        return FV_OK;
    p = realloc(r->buf, n);
    if (p == NULL)
        return FV_ERR_NOMEM;
    r->buf = p;
    r->buf_cap = n;
    return FV_OK;
}

/* Multiply A by B, saturating at UINT64_MAX. */
static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

static uint64_t pow10_u64(unsigned n)
{
    uint64_t v = 1;

    while (n-- > 0)
        v *= 10;
    return v;
}

/* Convert a timestamp in the interface's units to microseconds since the
 * epoch. Values past the uint64_t range saturate; a negative result after
 * if_tsoffset becomes 0. */
static uint64_t ts_to_us(const pcapng_iface *ifc, uint64_t ts)
{
    uint64_t us;

    if (ifc->binary_resolution) {
        unsigned n = ifc->exponent;
        uint64_t whole = ts >> n;
        uint64_t frac = n == 0 ? 0 : ts & ((1ULL << n) - 1);

        /* frac * 10^6 must fit in 64 bits: 10^6 < 2^20, so drop fraction
         * bits below 2^-44 first. They are far below a microsecond. */
        if (n > 44) {
            frac >>= n - 44;
            n = 44;
        }
        us = mul_sat(whole, US_PER_S);
        if (us != UINT64_MAX)
            us += (frac * US_PER_S) >> n;
    } else if (ifc->exponent >= 6) {
        us = ts / pow10_u64(ifc->exponent - 6u);
    } else {
        us = mul_sat(ts, pow10_u64(6u - ifc->exponent));
    }

    if (ifc->offset_s >= 0) {
        uint64_t add = mul_sat((uint64_t)ifc->offset_s, US_PER_S);

        us = add > UINT64_MAX - us ? UINT64_MAX : us + add;
    } else {
        /* -(offset + 1) + 1 avoids negating INT64_MIN. */
        uint64_t sub = mul_sat((uint64_t)(-(ifc->offset_s + 1)) + 1u, US_PER_S);

        us = sub > us ? 0 : us - sub;
    }
    return us;
}

/* Parse the Section Header Block body BODY of LEN bytes (byte order
 * already set). */
static int parse_shb(cap_pcapng_reader *r, const uint8_t *body, size_t len)
{
    uint16_t major;

    (void)len;
    major = get16(r, body + 4);
    if (major != 1) {
        fail(r, FV_ERR_UNSUPPORTED,
             "pcapng section at byte %llu has major version %u; only version 1 is defined",
             (unsigned long long)r->offset, major);
        return r->failed;
    }
    if (r->in_section)
        r->section++;
    r->in_section = true;
    r->sections_seen++;
    r->nifaces = 0;
    r->last_ts_us = 0;
    return FV_OK;
}

/* Apply one IDB option to IFC. */
static int idb_option(cap_pcapng_reader *r, pcapng_iface *ifc, uint16_t code, const uint8_t *val,
                      uint16_t vlen)
{
    if (code == OPT_IF_TSRESOL) {
        uint8_t v;

        if (vlen != 1) {
            fail(r, FV_ERR_PARSE, "pcapng interface block at byte %llu: if_tsresol has length "
                 "%u, expected 1", (unsigned long long)r->offset, vlen);
            return r->failed;
        }
        v = val[0];
        ifc->binary_resolution = (v & 0x80u) != 0;
        ifc->exponent = (uint8_t)(v & 0x7fu);
        if ((ifc->binary_resolution && ifc->exponent > 63) ||
            (!ifc->binary_resolution && ifc->exponent > 19)) {
            fail(r, FV_ERR_UNSUPPORTED, "pcapng interface block at byte %llu: if_tsresol "
                 "0x%02x is finer than 10^-19 or 2^-63 s and does not fit a 64-bit timestamp",
                 (unsigned long long)r->offset, v);
            return r->failed;
        }
    } else if (code == OPT_IF_TSOFFSET) {
        if (vlen != 8) {
            fail(r, FV_ERR_PARSE, "pcapng interface block at byte %llu: if_tsoffset has length "
                 "%u, expected 8", (unsigned long long)r->offset, vlen);
            return r->failed;
        }
        ifc->offset_s = (int64_t)get64(r, val);
    }
    return FV_OK;
}

static int parse_idb(cap_pcapng_reader *r, const uint8_t *body, size_t len)
{
    pcapng_iface ifc;
    size_t pos = IDB_MIN_BODY;

    if (r->nifaces >= CAP_PCAPNG_MAX_INTERFACES) {
        fail(r, FV_ERR_UNSUPPORTED, "pcapng section %u has more than %u interfaces",
             r->section, CAP_PCAPNG_MAX_INTERFACES);
        return r->failed;
    }
    memset(&ifc, 0, sizeof ifc);
    ifc.linktype = get16(r, body);
    ifc.snaplen = get32(r, body + 4);
    ifc.exponent = 6; /* default resolution: microseconds */

    /* Options: 2-byte code, 2-byte length, value padded to 4 bytes. */
    while (4 <= len - pos) {
        uint16_t code = get16(r, body + pos);
        uint16_t vlen = get16(r, body + pos + 2);
        size_t padded = ((size_t)vlen + 3u) & ~(size_t)3u;

        pos += 4;
        if (code == OPT_ENDOFOPT)
            break;
        if (!(padded <= len - pos)) {
            fail(r, FV_ERR_PARSE, "pcapng interface block at byte %llu: option %u of length %u "
                 "runs past the block body", (unsigned long long)r->offset, code, vlen);
            return r->failed;
        }
        if (idb_option(r, &ifc, code, body + pos, vlen) != FV_OK)
            return r->failed;
        pos += padded;
    }

    if (r->nifaces == r->ifaces_cap) {
        uint32_t cap = r->ifaces_cap == 0 ? 8 : r->ifaces_cap * 2;
        pcapng_iface *p = realloc(r->ifaces, cap * sizeof *p);

        if (p == NULL) {
            fail(r, FV_ERR_NOMEM, "out of memory for pcapng interface %u", r->nifaces);
            return r->failed;
        }
        r->ifaces = p;
        r->ifaces_cap = cap;
    }
    r->ifaces[r->nifaces++] = ifc;
    return FV_OK;
}

static int check_interface(cap_pcapng_reader *r, uint32_t id, const char *what)
{
    if (id < r->nifaces)
        return FV_OK;
    fail(r, FV_ERR_PARSE, "pcapng %s at byte %llu names interface %u, but section %u "
         "describes %u interfaces", what, (unsigned long long)r->offset, id, r->section,
         r->nifaces);
    return r->failed;
}

static void fill_packet(const cap_pcapng_reader *r, cap_pcapng_packet *pkt, uint32_t id,
                        uint64_t ts_us, const uint8_t *data, uint32_t caplen, uint32_t wirelen)
{
    pkt->section = r->section;
    pkt->interface_id = id;
    pkt->linktype = r->ifaces[id].linktype;
    pkt->snaplen = r->ifaces[id].snaplen;
    pkt->ts_us = ts_us;
    pkt->data = data;
    pkt->caplen = caplen;
    pkt->wirelen = wirelen;
}

/* Enhanced Packet Block, or with OBSOLETE set the old Packet Block,
 * whose interface id is 16 bits followed by a 16-bit drop count. */
static int parse_epb(cap_pcapng_reader *r, const uint8_t *body, size_t len, bool obsolete,
                     cap_pcapng_packet *pkt)
{
    const char *what = obsolete ? "packet block" : "enhanced packet block";
    uint32_t id = obsolete ? get16(r, body) : get32(r, body);
    uint64_t ts = ((uint64_t)get32(r, body + 4) << 32) | get32(r, body + 8);
    uint32_t caplen = get32(r, body + 12);
    uint32_t wirelen = get32(r, body + 16);
    uint64_t ts_us;

    if (check_interface(r, id, what) != FV_OK)
        return r->failed;
    if (!(caplen <= len - EPB_MIN_BODY)) {
        fail(r, FV_ERR_PARSE, "pcapng %s at byte %llu: captured length %u exceeds the %zu "
             "bytes of the block body", what, (unsigned long long)r->offset, caplen,
             len - EPB_MIN_BODY);
        return r->failed;
    }
    ts_us = ts_to_us(&r->ifaces[id], ts);
    r->last_ts_us = ts_us;
    fill_packet(r, pkt, id, ts_us, body + EPB_MIN_BODY, caplen, wirelen);
    return FV_OK;
}

/* Simple Packet Block: interface 0, no timestamp, captured length is the
 * smaller of the original length, the snap length and the body. */
static int parse_spb(cap_pcapng_reader *r, const uint8_t *body, size_t len,
                     cap_pcapng_packet *pkt)
{
    uint32_t wirelen = get32(r, body);
    size_t room = len - SPB_MIN_BODY;
    uint32_t caplen = wirelen;

    if (check_interface(r, 0, "simple packet block") != FV_OK)
        return r->failed;
    if (r->ifaces[0].snaplen != 0 && caplen > r->ifaces[0].snaplen)
        caplen = r->ifaces[0].snaplen;
    if (caplen > room)
        caplen = (uint32_t)room;
    /* NOTE: a Simple Packet Block has no timestamp. It gets the time of the
     * section's previous packet (0 if none) so flow timeouts do not jump;
     * libpcap 1.10 gives it 0. */
    fill_packet(r, pkt, 0, r->last_ts_us, body + SPB_MIN_BODY, caplen, wirelen);
    return FV_OK;
}

/* Read the 8-byte block header (12 bytes for an SHB, whose magic decides
 * the byte order). Returns FV_OK with *DONE set at a clean end of file. */
static int read_header(cap_pcapng_reader *r, uint32_t *type, uint32_t *total, bool *done)
{
    uint8_t hdr[12];
    size_t got = 0;
    int rc;

    *done = false;
    rc = read_exact(r, hdr, 8, &got);
    if (rc == FV_ERR_TRUNCATED && got == 0 && r->in_section) {
        *done = true;
        return FV_OK;
    }
    if (rc != FV_OK)
        goto short_read;

    memcpy(type, hdr, 4);
    if (*type == BT_SHB) {
        uint32_t magic;

        rc = read_exact(r, hdr + 8, 4, NULL);
        if (rc != FV_OK)
            goto short_read;
        memcpy(&magic, hdr + 8, 4);
        if (magic == BYTE_ORDER_MAGIC) {
            r->swapped = false;
        } else if (magic == BYTE_ORDER_MAGIC_SWAPPED) {
            r->swapped = true;
        } else {
            fail(r, FV_ERR_PARSE, "pcapng section header at byte %llu has byte-order magic "
                 "0x%08x, expected 0x1a2b3c4d in either byte order",
                 (unsigned long long)r->offset, (unsigned)magic);
            return r->failed;
        }
    } else if (!r->in_section) {
        fail(r, FV_ERR_PARSE, "byte %llu: a pcapng file must start with a section header "
             "block", (unsigned long long)r->offset);
        return r->failed;
    }
    *type = get32(r, hdr);
    *total = get32(r, hdr + 4);

    if (*total < BLOCK_OVERHEAD || *total % 4 != 0 || *total > CAP_PCAPNG_MAX_BLOCK ||
        (*type == BT_SHB && *total < BLOCK_OVERHEAD + SHB_MIN_BODY)) {
        fail(r, FV_ERR_PARSE, "pcapng block of type 0x%08x at byte %llu has invalid total "
             "length %u (must be a multiple of 4 between %u and %u)", (unsigned)*type,
             (unsigned long long)r->offset, (unsigned)*total, BLOCK_OVERHEAD,
             CAP_PCAPNG_MAX_BLOCK);
        return r->failed;
    }
    return FV_OK;

short_read:
    if (rc == FV_ERR_IO)
        fail(r, rc, "reading the pcapng block at byte %llu failed: %s",
             (unsigned long long)r->offset, strerror(errno));
    else
        fail(r, rc, "the file ends inside the pcapng block header at byte %llu",
             (unsigned long long)r->offset);
    return r->failed;
}

/* Read the body and trailer of the current block into r->buf, or seek
 * past them when SKIP is set (the trailer is still checked). BODY_LEN
 * excludes the header and trailer; HEAD_READ bytes of it (the SHB magic)
 * were read by read_header and are put back at the start of the buffer. */
static int read_body(cap_pcapng_reader *r, uint32_t total, size_t body_len, size_t head_read,
                     bool skip)
{
    uint8_t trailer[4];
    int rc;

    if (skip) {
        if (fseeko(r->f, (off_t)(body_len - head_read), SEEK_CUR) != 0) {
            fail(r, FV_ERR_IO, "seeking past the pcapng block at byte %llu failed: %s",
                 (unsigned long long)r->offset, strerror(errno));
            return r->failed;
        }
    } else {
        if (ensure_buf(r, body_len) != FV_OK) {
            fail(r, FV_ERR_NOMEM, "out of memory for a pcapng block of %zu bytes", body_len);
            return r->failed;
        }
        rc = read_exact(r, r->buf + head_read, body_len - head_read, NULL);
        if (rc != FV_OK)
            goto short_read;
    }
    /* After a seek past the end of the file the trailer read fails, so a
     * skipped block cut short is reported as truncated as well. */
    rc = read_exact(r, trailer, 4, NULL);
    if (rc != FV_OK)
        goto short_read;
    if (get32(r, trailer) != total) {
        fail(r, FV_ERR_PARSE, "pcapng block at byte %llu: trailing total length %u does not "
             "match the leading %u", (unsigned long long)r->offset,
             (unsigned)get32(r, trailer), (unsigned)total);
        return r->failed;
    }
    return FV_OK;

short_read:
    if (rc == FV_ERR_IO)
        fail(r, rc, "reading the pcapng block at byte %llu failed: %s",
             (unsigned long long)r->offset, strerror(errno));
    else
        fail(r, rc, "the file ends inside the pcapng block at byte %llu (%u bytes declared)",
             (unsigned long long)r->offset, (unsigned)total);
    return r->failed;
}

/* Minimum body length of block TYPE, 0 for types without fixed fields. */
static size_t min_body(uint32_t type)
{
    switch (type) {
    case BT_SHB:
        return SHB_MIN_BODY;
    case BT_IDB:
        return IDB_MIN_BODY;
    case BT_EPB:  // NOLINT(bugprone-branch-clone): EPB and OPB minimums are equal by coincidence
        return EPB_MIN_BODY;
    case BT_OPB:
        return OPB_MIN_BODY;
    case BT_SPB:
        return SPB_MIN_BODY;
    default:
        return 0;
    }
}

int cap_pcapng_next(cap_pcapng_reader *r, cap_pcapng_packet *pkt, bool *done)
{
    if (r == NULL || pkt == NULL || done == NULL)
        return FV_ERR_INVALID;
    *done = false;

    while (r->failed == FV_OK) {
        uint32_t type = 0, total = 0;
        size_t body_len, head_read;
        bool end = false;
        bool skip;
        int rc;

        if (read_header(r, &type, &total, &end) != FV_OK)
            break;
        if (end) {
            *done = true;
            return FV_OK;
        }
        body_len = total - BLOCK_OVERHEAD;
        if (body_len < min_body(type)) {
            fail(r, FV_ERR_PARSE, "pcapng block of type 0x%08x at byte %llu: total length %u "
                 "is too short for its fixed fields", (unsigned)type,
                 (unsigned long long)r->offset, (unsigned)total);
            break;
        }
        head_read = type == BT_SHB ? 4 : 0;
        skip = type != BT_SHB && type != BT_IDB && type != BT_EPB && type != BT_SPB &&
               type != BT_OPB;
        if (read_body(r, total, body_len, head_read, skip) != FV_OK)
            break;

        rc = FV_OK;
        switch (skip ? 0u : type) {
        case BT_SHB:
            rc = parse_shb(r, r->buf, body_len);
            break;
        case BT_IDB:
            rc = parse_idb(r, r->buf, body_len);
            break;
        case BT_EPB:
        case BT_OPB:
            rc = parse_epb(r, r->buf, body_len, type == BT_OPB, pkt);
            if (rc == FV_OK) {
                r->offset += total;
                return FV_OK;
            }
            break;
        case BT_SPB:
            rc = parse_spb(r, r->buf, body_len, pkt);
            if (rc == FV_OK) {
                r->offset += total;
                return FV_OK;
            }
            break;
        default:
            break;
        }
        if (rc != FV_OK)
            break;
        r->offset += total;
    }
    return r->failed;
}

/* Record one interface in *OUT: link type list and the mixed flag. */
static void summarize_iface(cap_pcapng_summary *out, const pcapng_iface *ifc,
                            const pcapng_iface *first)
{
    size_t i;

    out->interfaces++;
    if (first != NULL && (ifc->linktype != first->linktype || ifc->snaplen != first->snaplen))
        out->mixed = true;
    for (i = 0; i < out->nlinktypes; i++) {
        if (out->linktypes[i] == ifc->linktype)
            return;
    }
    if (out->nlinktypes < CAP_PCAPNG_MAX_LINKTYPES)
        out->linktypes[out->nlinktypes++] = ifc->linktype;
    else
        out->linktypes_overflow = true;
}

int cap_pcapng_scan(FILE *f, cap_pcapng_summary *out, char *err, size_t err_len)
{
    cap_pcapng_reader *r = NULL;
    pcapng_iface first;
    bool have_first = false;
    bool first_swapped = false;
    int rc;

    if (out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    rc = cap_pcapng_create(f, &r);
    if (rc != FV_OK)
        return rc;
    memset(&first, 0, sizeof first);

    /* The same block walk as cap_pcapng_next, but every block other than
     * SHB and IDB is skipped with a seek instead of read. */
    for (;;) {
        uint32_t type = 0, total = 0;
        bool end = false;
        size_t body_len;

        if (read_header(r, &type, &total, &end) != FV_OK)
            break;
        if (end)
            break;
        body_len = total - BLOCK_OVERHEAD;
        if (body_len < min_body(type)) {
            fail(r, FV_ERR_PARSE, "pcapng block of type 0x%08x at byte %llu: total length %u "
                 "is too short for its fixed fields", (unsigned)type,
                 (unsigned long long)r->offset, (unsigned)total);
            break;
        }
        if (read_body(r, total, body_len, type == BT_SHB ? 4 : 0,
                      type != BT_SHB && type != BT_IDB) != FV_OK)
            break;
        if (type == BT_SHB && parse_shb(r, r->buf, body_len) != FV_OK)
            break;
        /* libpcap 1.10 reads every section in the first one's byte order,
         * so it takes a later section in the other order for damage. */
        if (type == BT_SHB && r->sections_seen == 1)
            first_swapped = r->swapped;
        else if (type == BT_SHB && r->swapped != first_swapped)
            out->mixed = true;
        if (type == BT_IDB) {
            const pcapng_iface *ifc;

            if (parse_idb(r, r->buf, body_len) != FV_OK)
                break;
            /* Interfaces of later sections are compared with the file's
             * first interface too: libpcap 1.10 rejects those as well. */
            ifc = &r->ifaces[r->nifaces - 1];
            summarize_iface(out, ifc, have_first ? &first : NULL);
            if (!have_first) {
                first = *ifc;
                have_first = true;
            }
        }
        r->offset += total;
    }

    out->sections = r->sections_seen;
    rc = r->failed;
    if (rc != FV_OK && err != NULL && err_len > 0)
        (void)snprintf(err, err_len, "%s", r->msg);
    cap_pcapng_destroy(&r);
    return rc;
}
