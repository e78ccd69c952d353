/*
 * cap_pcapng.h: a bounds-checked pcapng reader that gives every packet
 * the link type of its own interface. Internal to capture/.
 *
 * libpcap 1.10 reads a pcapng file only while all its interfaces share
 * the first interface's link type and snap length. cap_read_file uses
 * this reader for the files libpcap rejects (see docs/CAPTURE.md).
 *
 * Supported blocks: Section Header (both byte orders, any number of
 * sections), Interface Description (if_tsresol in decimal and binary
 * form, if_tsoffset), Enhanced Packet, Simple Packet and the obsolete
 * Packet Block. Other block types are skipped.
 *
 * Errors: FV_ERR_PARSE for a malformed block (bad length, trailing
 * length mismatch, unknown interface id, captured length beyond the
 * block body, bad option), FV_ERR_UNSUPPORTED for a section of another
 * major version or a time resolution beyond 10^-19 or 2^-63,
 * FV_ERR_TRUNCATED when the file ends inside a block (every complete
 * block before it has been delivered), FV_ERR_IO for a read error and
 * FV_ERR_NOMEM. cap_pcapng_error() then returns a message with the byte
 * offset of the block. Messages never contain packet bytes.
 */
#ifndef FV_CAP_PCAPNG_H
#define FV_CAP_PCAPNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fv_common.h"

/* The first four bytes of every pcapng file (the Section Header Block
 * type, the same in both byte orders). */
#define CAP_PCAPNG_SHB_TYPE 0x0A0D0D0Au

/* Largest block accepted, in bytes. An Enhanced Packet Block for a
 * 262144-byte snap length (libpcap's maximum) plus options fits easily. */
#define CAP_PCAPNG_MAX_BLOCK (16u * 1024u * 1024u)

/* Most interfaces accepted per section. */
#define CAP_PCAPNG_MAX_INTERFACES 65536u

/* Most distinct link types cap_pcapng_scan reports. */
#define CAP_PCAPNG_MAX_LINKTYPES 32u

/* One packet. data borrows the reader's buffer until the next call. */
typedef struct cap_pcapng_packet {
    uint32_t section;       /* 0 for the first section of the file */
    uint32_t interface_id;  /* index of the IDB within its section */
    int linktype;           /* LINKTYPE_* value of the interface */
    uint32_t snaplen;       /* interface snap length, 0 = no limit */
    uint64_t ts_us;         /* microseconds since the epoch, if_tsoffset applied */
    const uint8_t *data;
    uint32_t caplen;        /* bytes at data */
    uint32_t wirelen;       /* original length on the wire */
} cap_pcapng_packet;

/* What cap_pcapng_scan found in the interface blocks of a whole file. */
typedef struct cap_pcapng_summary {
    uint32_t sections;
    uint32_t interfaces;        /* over all sections */
    bool mixed;                 /* interfaces differ in link type or snap length, or
                                   sections in byte order */
    size_t nlinktypes;
    int linktypes[CAP_PCAPNG_MAX_LINKTYPES];  /* distinct, in order of appearance */
    bool linktypes_overflow;    /* more distinct link types than the array holds */
} cap_pcapng_summary;

typedef struct cap_pcapng_reader cap_pcapng_reader;

/* Create a reader over F, positioned at the start of a pcapng file. The
 * reader does not own F. Returns FV_OK, FV_ERR_INVALID or FV_ERR_NOMEM. */
FV_NODISCARD int cap_pcapng_create(FILE *f, cap_pcapng_reader **out);

/* Free the reader. Accepts NULL and sets *reader to NULL. */
void cap_pcapng_destroy(cap_pcapng_reader **reader);

/*
 * Read up to the next packet. Returns FV_OK with *PKT filled and *DONE
 * false, FV_OK with *DONE true at the clean end of the file, or an error
 * listed in the file comment. After an error every later call returns
 * the same error.
 */
int cap_pcapng_next(cap_pcapng_reader *reader, cap_pcapng_packet *pkt, bool *done);

/* Return the message for the last error ("" if none). */
const char *cap_pcapng_error(const cap_pcapng_reader *reader);

/*
 * Read every Section Header and Interface Description Block of F from
 * its current position to the end, seeking past other blocks, and fill
 * *OUT. Returns FV_OK or an error as cap_pcapng_next does, with the
 * message in ERR.
 */
int cap_pcapng_scan(FILE *f, cap_pcapng_summary *out, char *err, size_t err_len);

#endif /* FV_CAP_PCAPNG_H */
