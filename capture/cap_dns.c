/*
 * cap_dns.c: DNS message parser (header, questions, answer section).
 *
 * Contract (see cap_proto.h for the shared return codes):
 * - Input is one DNS message starting at its 12-byte header (DNS over TCP
 *   callers strip the 2-byte length prefix first). The header, every
 *   question and the answer section are read; the authority and
 *   additional sections are not.
 * - FV_ERR_TRUNCATED: the header or a question runs past LEN. Over UDP
 *   that means the datagram is malformed; over TCP more bytes may still
 *   arrive.
 * - FV_ERR_PARSE: a question name is invalid. Causes are the reserved
 *   label types 0x40 and 0x80, a name longer than 255 wire bytes after
 *   decompression, a compression pointer that does not point strictly
 *   before the bytes already read for the name, and more than 64 pointer
 *   jumps. out->error names the cause (it is the one field kept on
 *   failure).
 * - The answer section is read record by record up to ANCOUNT. A, AAAA
 *   and CNAME records of class IN (the mDNS cache-flush bit ignored) are
 *   kept, up to FV_DNS_ADDRS_MAX addresses of each family and
 *   FV_DNS_CNAMES_MAX targets. A record that is cut short or invalid (an
 *   invalid owner or target name, an A record whose RDLENGTH is not 4, an
 *   AAAA record whose RDLENGTH is not 16, a CNAME target that does not end
 *   at the end of its RDATA) stops the walk: the records before it are
 *   kept, answers_incomplete is set and error names the cause, and the
 *   call still returns FV_OK because the header and questions are valid.
 * - QDCOUNT 0 is valid: has_question is false, qname is "" and qtype and
 *   qclass are 0.
 * - qname, question names and CNAME targets are in presentation form:
 *   labels joined by '.', no trailing dot, "." for the root, case kept as
 *   sent, and every byte outside 0x21..0x7e, every '\' and every '.'
 *   inside a label written as "\DDD" (three decimal digits). This is the
 *   form dig prints.
 * - On any return other than FV_OK, *out is zeroed except out->error.
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

/* Resource record types and class (RFC 1035 section 3.2, RFC 3596). */
#define CAP_DNS_TYPE_A 1
#define CAP_DNS_TYPE_CNAME 5
#define CAP_DNS_TYPE_AAAA 28
#define CAP_DNS_CLASS_IN 1
/* mDNS uses the top bit of CLASS as its cache-flush flag (RFC 6762 10.2). */
#define CAP_DNS_CLASS_MASK 0x7FFFu

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
 * name is still validated. On failure *WHY is set to a cap_dns_error.
 */
static int dns_read_name(const uint8_t *msg, size_t msg_len, size_t start, char *out,
                         size_t out_len, size_t *end, uint8_t *why)
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
        if (rc != FV_OK) {
            *why = CAP_DNS_ERR_TRUNCATED;
            return rc;
        }

        /* Compression pointer: 14-bit offset from the message start. */
        if ((label_len & CAP_DNS_LABEL_TYPE_MASK) == CAP_DNS_LABEL_POINTER) {
            uint8_t low;
            rc = cap_rd_u8(&rd, &low);
            if (rc != FV_OK) {
                *why = CAP_DNS_ERR_TRUNCATED;
                return rc;
            }

            size_t target = ((size_t)(label_len & 0x3F) << 8) | low;
            if (!jumped) {
                *end = msg_len - rd.remaining;
                jumped = true;
            }
            jumps++;
            if (!(target < segment_start) || jumps > CAP_DNS_MAX_JUMPS) {
                *why = CAP_DNS_ERR_POINTER;
                return FV_ERR_PARSE;
            }

            segment_start = target;
            cap_rd_init(&rd, msg + target, msg_len - target);
            continue;
        }

        /* 0x40 (extended label, RFC 6891) and 0x80 are not names. */
        if (label_len > CAP_DNS_LABEL_MAX) {
            *why = CAP_DNS_ERR_LABEL_TYPE;
            return FV_ERR_PARSE;
        }
        if (label_len == 0)
            break;

        wire_len += 1 + (size_t)label_len;
        if (wire_len > CAP_DNS_NAME_WIRE_MAX) {
            *why = CAP_DNS_ERR_NAME_LENGTH;
            return FV_ERR_PARSE;
        }

        const uint8_t *label;
        rc = cap_rd_bytes(&rd, label_len, &label);
        if (rc != FV_OK) {
            *why = CAP_DNS_ERR_TRUNCATED;
            return rc;
        }

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

/* Read the question at *POS into Q (NAME is cut to fit, as in
 * dns_read_name) and advance *POS past it. */
static int dns_read_question(const uint8_t *data, size_t len, size_t *pos, fv_dns_question *q,
                             uint8_t *why)
{
    cap_reader rd;
    size_t name_end = 0;
    int rc;

    rc = dns_read_name(data, len, *pos, q->name, sizeof q->name, &name_end, why);
    if (rc != FV_OK)
        return rc;

    cap_rd_init(&rd, data + name_end, len - name_end);
    if (cap_rd_be16(&rd, &q->qtype) != FV_OK || cap_rd_be16(&rd, &q->qclass) != FV_OK) {
        *why = CAP_DNS_ERR_TRUNCATED;
        return FV_ERR_TRUNCATED;
    }
    *pos = len - rd.remaining;
    return FV_OK;
}

/* Keep the RDATA of one class-IN answer record of TYPE if it is an A,
 * AAAA or CNAME record and there is room. RDATA_OFF is its offset in the
 * message, so a CNAME target may point back into the message. */
static int dns_keep_answer(const uint8_t *data, uint16_t type, size_t rdata_off,
                           uint16_t rdlength, cap_dns_msg *out)
{
    size_t target_end = 0;
    char scratch[FV_NAME_MAX];

    switch (type) {
    case CAP_DNS_TYPE_A:
        if (rdlength != 4) {
            out->error = CAP_DNS_ERR_RDATA;
            return FV_ERR_PARSE;
        }
        if (out->a_count < FV_DNS_ADDRS_MAX)
            memcpy(out->a[out->a_count++], data + rdata_off, 4);
        return FV_OK;
    case CAP_DNS_TYPE_AAAA:
        if (rdlength != 16) {
            out->error = CAP_DNS_ERR_RDATA;
            return FV_ERR_PARSE;
        }
        if (out->aaaa_count < FV_DNS_ADDRS_MAX)
            memcpy(out->aaaa[out->aaaa_count++], data + rdata_off, 16);
        return FV_OK;
    case CAP_DNS_TYPE_CNAME: {
        /* The target is read within the message, so its pointers may
         * reach earlier names; it must end exactly where RDATA ends. */
        char *dest = out->cname_count < FV_DNS_CNAMES_MAX ? out->cnames[out->cname_count]
                                                          : scratch;
        int rc = dns_read_name(data, rdata_off + rdlength, rdata_off, dest, FV_NAME_MAX,
                               &target_end, &out->error);
        if (rc != FV_OK) {
            dest[0] = '\0';
            return FV_ERR_PARSE;
        }
        if (target_end != rdata_off + rdlength) {
            dest[0] = '\0';
            out->error = CAP_DNS_ERR_RDATA;
            return FV_ERR_PARSE;
        }
        if (dest != scratch)
            out->cname_count++;
        return FV_OK;
    }
    default:
        return FV_OK;
    }
}

/*
 * Walk the answer section from *POS: NAME, TYPE, CLASS, TTL, RDLENGTH,
 * RDATA per record (RFC 1035 section 4.1.3). Stops at the first record
 * that is cut short or invalid and records why.
 */
static void dns_read_answers(const uint8_t *data, size_t len, size_t pos, cap_dns_msg *out)
{
    char owner[FV_NAME_MAX];

    for (uint16_t i = 0; i < out->ancount; i++) {
        cap_reader rd;
        size_t name_end = 0;
        uint16_t type, rclass, rdlength;

        if (dns_read_name(data, len, pos, owner, sizeof owner, &name_end, &out->error) != FV_OK)
            break;
        cap_rd_init(&rd, data + name_end, len - name_end);
        if (cap_rd_be16(&rd, &type) != FV_OK || cap_rd_be16(&rd, &rclass) != FV_OK ||
            cap_rd_skip(&rd, 4) != FV_OK || cap_rd_be16(&rd, &rdlength) != FV_OK ||
            !((size_t)rdlength <= rd.remaining)) {
            out->error = CAP_DNS_ERR_TRUNCATED;
            break;
        }
        size_t rdata_off = len - rd.remaining;

        if ((rclass & CAP_DNS_CLASS_MASK) == CAP_DNS_CLASS_IN &&
            dns_keep_answer(data, type, rdata_off, rdlength, out) != FV_OK)
            break;

        pos = rdata_off + rdlength;
        out->answers_parsed++;
    }
    out->answers_incomplete = out->answers_parsed < out->ancount;
}

int cap_dns_parse(const uint8_t *data, size_t len, cap_dns_msg *out)
{
    cap_reader rd;
    uint16_t flags;
    size_t pos = CAP_DNS_HEADER_BYTES;
    uint8_t why = CAP_DNS_ERR_NONE;
    int rc = FV_OK;

    memset(out, 0, sizeof(*out));
    cap_rd_init(&rd, data, len);

    /* Header: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT. */
    if (!(CAP_DNS_HEADER_BYTES <= rd.remaining)) {
        why = CAP_DNS_ERR_TRUNCATED;
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

    /* Every question is validated (the answers start after the last);
     * the first FV_DNS_QUESTIONS_MAX are kept. */
    for (uint16_t i = 0; i < out->qdcount; i++) {
        fv_dns_question scratch;
        /* scratch is output only: dns_read_question fills it and it is
         * never read, so leaving it uninitialised is safe. */
        // cppcheck-suppress uninitvar
        fv_dns_question *q = i < FV_DNS_QUESTIONS_MAX ? &out->questions[i] : &scratch;

        rc = dns_read_question(data, len, &pos, q, &why);
        if (rc != FV_OK)
            goto out;
        if (i < FV_DNS_QUESTIONS_MAX)
            out->question_count++;
    }

    if (out->question_count > 0) {
        out->has_question = true;
        out->qtype = out->questions[0].qtype;
        out->qclass = out->questions[0].qclass;
        memcpy(out->qname, out->questions[0].name, sizeof out->qname);
    }

    dns_read_answers(data, len, pos, out);

out:
    if (rc != FV_OK) {
        memset(out, 0, sizeof(*out));
        out->error = why;
    }
    return rc;
}
