/*
 * cap_nbns.c: NetBIOS name service (RFC 1002 section 4.2) name decoder.
 *
 * A name service message has the DNS header layout. Its first name is a
 * 32-byte label that contains the 16-byte NetBIOS name in "first-level
 * encoding": each byte split into two nibbles, each nibble written as
 * 'A' + nibble. The 16th byte is the service suffix and the name is
 * padded with spaces (or NUL bytes for the "*" wildcard). A NetBIOS scope
 * (labels after the encoded one) is not kept.
 */
#include <stdio.h>
#include <string.h>

#include "cap_internal.h"
#include "cap_proto.h"

#define NBNS_HEADER_BYTES 12
#define NBNS_ENCODED_LEN 32
#define NBNS_NAME_BYTES 16
#define NBNS_FLAG_R 0x8000u
#define NBNS_OPCODE_SHIFT 11
#define NBNS_OPCODE_MASK 0x0Fu
#define NBNS_LABEL_MAX 63

int cap_nbns_parse(const uint8_t *data, size_t len, char out[FV_NAME_MAX], uint8_t *opcode,
                   bool *is_response, uint16_t *txid, uint16_t *qtype, uint16_t *qclass)
{
    uint8_t name[NBNS_NAME_BYTES];
    cap_cursor cur;
    size_t n, pos = 0, i;
    uint16_t flags;

    if (data == NULL || out == NULL || opcode == NULL || is_response == NULL || txid == NULL ||
        qtype == NULL || qclass == NULL)
        return FV_ERR_INVALID;
    out[0] = '\0';
    if (!(NBNS_HEADER_BYTES <= len))
        return FV_ERR_PARSE;
    *txid = cap_be16(data);
    flags = cap_be16(data + 2);
    *is_response = (flags & NBNS_FLAG_R) != 0;
    *opcode = (uint8_t)((flags >> NBNS_OPCODE_SHIFT) & NBNS_OPCODE_MASK);
    /* The first name is the question's, or for a message without
     * questions the first answer's; both start right after the header. */
    if (cap_be16(data + 4) == 0 && cap_be16(data + 6) == 0)
        return FV_ERR_PARSE;

    cur.p = data + NBNS_HEADER_BYTES;
    cur.remaining = len - NBNS_HEADER_BYTES;
    if (!cap_cur_has(&cur, 1 + NBNS_ENCODED_LEN) || cur.p[0] != NBNS_ENCODED_LEN)
        return FV_ERR_PARSE;
    for (i = 0; i < NBNS_NAME_BYTES; i++) {
        uint8_t hi = cur.p[1 + 2 * i], lo = cur.p[2 + 2 * i];

        if (hi < 'A' || hi > 'P' || lo < 'A' || lo > 'P')
            return FV_ERR_PARSE;
        name[i] = (uint8_t)(((hi - 'A') << 4) | (lo - 'A'));
    }
    cap_cur_skip(&cur, 1 + NBNS_ENCODED_LEN);

    /* Skip the scope labels up to the root byte, then read type and class. */
    while (cap_cur_has(&cur, 1) && cur.p[0] != 0) {
        n = cur.p[0];
        if (n > NBNS_LABEL_MAX || !cap_cur_has(&cur, 1 + n))
            return FV_ERR_PARSE;
        cap_cur_skip(&cur, 1 + n);
    }
    if (!cap_cur_has(&cur, 5))
        return FV_ERR_PARSE;
    *qtype = cap_be16(cur.p + 1);
    *qclass = cap_be16(cur.p + 3);

    /* Drop the suffix byte, then the padding. */
    n = NBNS_NAME_BYTES - 1;
    while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == 0))
        n--;
    for (i = 0; i < n; i++) {
        uint8_t c = name[i];
        int w;

        if (c > 0x20 && c < 0x7f && c != '.' && c != '\\')
            w = snprintf(out + pos, FV_NAME_MAX - pos, "%c", (char)c);
        else
            w = snprintf(out + pos, FV_NAME_MAX - pos, "\\%03u", (unsigned)c);
        if (w < 0 || (size_t)w >= FV_NAME_MAX - pos)
            break;
        pos += (size_t)w;
    }
    out[pos] = '\0';
    return FV_OK;
}
