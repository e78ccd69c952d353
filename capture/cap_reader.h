/*
 * cap_reader.h: bounds-checked byte reader and presentation-form text
 * helper shared by the protocol parsers (cap_dns.c, cap_tls.c,
 * cap_http.c). Internal to capture/.
 *
 * The reader is a pointer plus the count of bytes left. Every read tests
 * `n <= remaining` before touching memory and returns FV_ERR_TRUNCATED
 * when the bytes are not there, leaving the reader unchanged. The type is
 * named cap_reader (not cap_cursor) so that it never clashes with the
 * engine's own cursor in cap_internal.h when both headers are included.
 */
#ifndef FV_CAP_READER_H
#define FV_CAP_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

typedef struct cap_reader {
    const uint8_t *p;       /* next unread byte */
    size_t remaining;       /* bytes readable from p */
} cap_reader;

static inline void cap_rd_init(cap_reader *rd, const uint8_t *data, size_t len)
{
    rd->p = data;
    rd->remaining = len;
}

static inline int cap_rd_skip(cap_reader *rd, size_t n)
{
    if (!(n <= rd->remaining))
        return FV_ERR_TRUNCATED;
    rd->p += n;
    rd->remaining -= n;
    return FV_OK;
}

/* Point *OUT at the next N bytes and advance past them. *OUT borrows the
 * reader's buffer. */
static inline int cap_rd_bytes(cap_reader *rd, size_t n, const uint8_t **out)
{
    if (!(n <= rd->remaining))
        return FV_ERR_TRUNCATED;
    *out = rd->p;
    rd->p += n;
    rd->remaining -= n;
    return FV_OK;
}

/* Split the next N bytes off into SUB (a reader over just those bytes)
 * and advance past them. */
static inline int cap_rd_sub(cap_reader *rd, size_t n, cap_reader *sub)
{
    const uint8_t *start;
    int rc = cap_rd_bytes(rd, n, &start);
    if (rc != FV_OK)
        return rc;
    cap_rd_init(sub, start, n);
    return FV_OK;
}

static inline int cap_rd_u8(cap_reader *rd, uint8_t *out)
{
    if (!(1 <= rd->remaining))
        return FV_ERR_TRUNCATED;
    *out = rd->p[0];
    rd->p += 1;
    rd->remaining -= 1;
    return FV_OK;
}

/* Read a big-endian (network order) 16-bit value. */
static inline int cap_rd_be16(cap_reader *rd, uint16_t *out)
{
    if (!(2 <= rd->remaining))
        return FV_ERR_TRUNCATED;
    *out = (uint16_t)(((unsigned)rd->p[0] << 8) | rd->p[1]);
    rd->p += 2;
    rd->remaining -= 2;
    return FV_OK;
}

/* Read a big-endian 24-bit value (TLS handshake lengths). */
static inline int cap_rd_be24(cap_reader *rd, uint32_t *out)
{
    if (!(3 <= rd->remaining))
        return FV_ERR_TRUNCATED;
    *out = ((uint32_t)rd->p[0] << 16) | ((uint32_t)rd->p[1] << 8) | rd->p[2];
    rd->p += 3;
    rd->remaining -= 3;
    return FV_OK;
}

/*
 * Append byte C to the NUL-terminated text OUT (OUT_LEN bytes of storage,
 * *POS characters used) in the presentation form shared by DNS names, SNI
 * and Host. A byte in 0x21..0x7e is written as itself. Any other byte, a
 * backslash, and a dot when ESCAPE_DOT is set (bytes inside a DNS label)
 * are written as a backslash and three decimal digits ("\032").
 * Returns false and leaves OUT unchanged when the character or its escape
 * does not fit, so a full buffer contains a prefix that never ends inside
 * an escape.
 */
static inline bool cap_text_append(char *out, size_t out_len, size_t *pos, uint8_t c,
                                   bool escape_dot)
{
    bool plain = c >= 0x21 && c <= 0x7e && c != '\\' && !(escape_dot && c == '.');
    size_t need = plain ? 1 : 4;

    /* One byte of storage stays reserved for the NUL. */
    if (!(*pos < out_len && need < out_len - *pos))
        return false;

    if (plain) {
        out[(*pos)++] = (char)c;
    } else {
        out[(*pos)++] = '\\';
        out[(*pos)++] = (char)('0' + c / 100);
        out[(*pos)++] = (char)('0' + (c / 10) % 10);
        out[(*pos)++] = (char)('0' + c % 10);
    }
    out[*pos] = '\0';
    return true;
}

#endif /* FV_CAP_READER_H */
