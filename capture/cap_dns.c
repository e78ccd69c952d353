/*
 * cap_dns.c: DNS message header and first-question parser.
 *
 * Contract (see cap_proto.h for the shared return codes):
 * - Input is one DNS message starting at its 12-byte header (DNS over TCP
 *   callers strip the 2-byte length prefix first). Only the header and the
 *   first question are read; answer records are counted via ANCOUNT and
 *   never parsed.
 * - FV_ERR_TRUNCATED: the header or the first question runs past LEN.
 *   Over UDP that means the datagram is malformed; over TCP more bytes may
 *   still arrive.
 * - FV_ERR_PARSE: the question name is invalid. Causes are a label longer
 *   than 63 bytes, the reserved label types 0x40 and 0x80, and a name
 *   longer than 255 wire bytes after decompression. A compression pointer
 *   that does not point strictly before the bytes already read for the
 *   name, and more than 64 pointer jumps, are rejected too.
 * - QDCOUNT 0 is valid: has_question is false, qname is "" and qtype and
 *   qclass are 0.
 * - qname is the name in presentation form: labels joined by '.', no
 *   trailing dot, "." for the root, case kept as sent, and every byte
 *   outside 0x21..0x7e, every '\' and every '.' inside a label written as
 *   "\DDD" (three decimal digits). This is the form dig prints.
 * - On any return other than FV_OK, *out is zeroed.
 */
#include <string.h>

#include "cap_proto.h"
#include "cap_reader.h"

#define CAP_DNS_HEADER_BYTES 12
#define CAP_DNS_LABEL_MAX 63           /* RFC 1035 section 2.3.4 */
#define CAP_DNS_NAME_WIRE_MAX 255      /* RFC 1035 section 2.3.4, root byte included */
#define CAP_DNS_MAX_JUMPS 64

#define CAP_DNS_LABEL_TYPE_MASK 0xC0
#define CAP_DNS_LABEL_POINTER 0xC0

/* Header flag bits (RFC 1035 section 4.1.1), host order. */
#define CAP_DNS_FLAG_QR 0x8000u
#define CAP_DNS_OPCODE_SHIFT 11
#define CAP_DNS_OPCODE_MASK 0x0Fu
#define CAP_DNS_RCODE_MASK 0x0Fu

/* Append the '.' that separates two labels. Returns false when it does not
 * fit, like cap_text_append. */
static bool dns_append_separator(char *out, size_t out_len, size_t *pos)
{
    if (!(*pos < out_len && 1 < out_len - *pos))
        return false;
    out[(*pos)++] = '.';
    out[*pos] = '\0';
    return true;
}

/*
 * Decode the name starting at offset START of MSG into OUT in
 * presentation form, and store in *END the offset of the first byte after
 * the name as it sits at START (after the first pointer if there is one).
 *
 * Loop protection: a pointer must point before SEGMENT_START, the offset
 * where the reader last started reading (the name's start or the previous
 * pointer's target). Every jump therefore lands strictly before every byte
 * read so far for this name, so the walk cannot revisit a byte and always
 * ends. The 64-jump limit bounds the work on top of that. Real
 * compressors only point at names written earlier in the message, so
 * valid messages meet this rule.
 *
 * When the presentation form does not fit OUT, OUT keeps the longest
 * prefix that ends on a whole character or escape, and the rest of the
 * name is still validated.
 */
static int dns_read_name(const uint8_t *msg, size_t msg_len, size_t start, char *out,
                         size_t out_len, size_t *end)
{
    cap_reader rd;
    size_t segment_start = start;
    size_t wire_len = 1;            /* the terminating root byte */
    size_t pos = 0;
    unsigned jumps = 0;
    bool jumped = false;
    bool first_label = true;
    bool out_full = false;

    out[0] = '\0';
    cap_rd_init(&rd, msg + start, msg_len - start);

    for (;;) {
        uint8_t label_len;
        int rc = cap_rd_u8(&rd, &label_len);
        if (rc != FV_OK)
            return rc;

        /* Compression pointer: 14-bit offset from the message start. */
        if ((label_len & CAP_DNS_LABEL_TYPE_MASK) == CAP_DNS_LABEL_POINTER) {
            uint8_t low;
            rc = cap_rd_u8(&rd, &low);
            if (rc != FV_OK)
                return rc;

            size_t target = ((size_t)(label_len & 0x3F) << 8) | low;
            if (!jumped) {
                *end = msg_len - rd.remaining;
                jumped = true;
            }
            if (!(target < segment_start))
                return FV_ERR_PARSE;
            jumps++;
            if (jumps > CAP_DNS_MAX_JUMPS)
                return FV_ERR_PARSE;

            segment_start = target;
            cap_rd_init(&rd, msg + target, msg_len - target);
            continue;
        }

        /* 0x40 (extended label, RFC 6891) and 0x80 are not names. */
        if (label_len > CAP_DNS_LABEL_MAX)
            return FV_ERR_PARSE;
        if (label_len == 0)
            break;

        wire_len += 1 + (size_t)label_len;
        if (wire_len > CAP_DNS_NAME_WIRE_MAX)
            return FV_ERR_PARSE;

        const uint8_t *label;
        rc = cap_rd_bytes(&rd, label_len, &label);
        if (rc != FV_OK)
            return rc;

        /* Append the label; once anything fails to fit, append nothing
         * more so OUT stays a prefix of the full presentation form. */
        if (!first_label && !out_full)
            out_full = !dns_append_separator(out, out_len, &pos);
        for (size_t i = 0; i < label_len && !out_full; i++)
            out_full = !cap_text_append(out, out_len, &pos, label[i], true);
        first_label = false;
    }

    if (!jumped)
        *end = msg_len - rd.remaining;

    if (first_label && out_len >= 2) {
        out[0] = '.';
        out[1] = '\0';
    }
    return FV_OK;
}

int cap_dns_parse(const uint8_t *data, size_t len, cap_dns_msg *out)
{
    cap_reader rd;
    uint16_t flags;
    size_t name_end = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    cap_rd_init(&rd, data, len);

    /* Header: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT. */
    if (!(CAP_DNS_HEADER_BYTES <= rd.remaining)) {
        rc = FV_ERR_TRUNCATED;
        goto out;
    }
    (void)cap_rd_be16(&rd, &out->txid);
    (void)cap_rd_be16(&rd, &flags);
    (void)cap_rd_be16(&rd, &out->qdcount);
    (void)cap_rd_be16(&rd, &out->ancount);
    (void)cap_rd_skip(&rd, 4);      /* NSCOUNT and ARCOUNT are not reported */

    out->is_response = (flags & CAP_DNS_FLAG_QR) != 0;
    out->opcode = (uint8_t)((flags >> CAP_DNS_OPCODE_SHIFT) & CAP_DNS_OPCODE_MASK);
    out->rcode = (uint8_t)(flags & CAP_DNS_RCODE_MASK);

    if (out->qdcount == 0) {
        rc = FV_OK;
        goto out;
    }

    /* First question: QNAME, QTYPE, QCLASS. */
    rc = dns_read_name(data, len, CAP_DNS_HEADER_BYTES, out->qname, sizeof(out->qname),
                       &name_end);
    if (rc != FV_OK)
        goto out;

    cap_rd_init(&rd, data + name_end, len - name_end);
    rc = cap_rd_be16(&rd, &out->qtype);
    if (rc != FV_OK)
        goto out;
    rc = cap_rd_be16(&rd, &out->qclass);
    if (rc != FV_OK)
        goto out;

    out->has_question = true;

out:
    if (rc != FV_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
