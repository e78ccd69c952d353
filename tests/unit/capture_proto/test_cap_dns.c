/*
 * test_cap_dns.c: cap_dns_parse on hand-built DNS messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_proto.h"

/* Standard query, id 0x1234, RD, one question www.example.com A IN. */
static const uint8_t query_www_example_com[] = {
    0x12, 0x34,             /* ID */
    0x01, 0x00,             /* flags: QR=0 opcode 0 RD=1 */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x00,             /* ANCOUNT 0 */
    0x00, 0x00,             /* NSCOUNT 0 */
    0x00, 0x00,             /* ARCOUNT 0 */
    0x03, 'w', 'w', 'w',
    0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
    0x03, 'c', 'o', 'm',
    0x00,                   /* root */
    0x00, 0x01,             /* QTYPE A */
    0x00, 0x01,             /* QCLASS IN */
};

static void test_dns_parses_query(void **state)
{
    (void)state;
    cap_dns_msg msg;

    assert_int_equal(cap_dns_parse(query_www_example_com, sizeof(query_www_example_com), &msg),
                     FV_OK);
    assert_int_equal(msg.txid, 0x1234);
    assert_false(msg.is_response);
    assert_int_equal(msg.opcode, 0);
    assert_int_equal(msg.rcode, 0);
    assert_int_equal(msg.qdcount, 1);
    assert_int_equal(msg.ancount, 0);
    assert_true(msg.has_question);
    assert_int_equal(msg.qtype, 1);
    assert_int_equal(msg.qclass, 1);
    assert_string_equal(msg.qname, "www.example.com");
}

/* NXDOMAIN response, id 0xbeef, mixed-case name Mail.Example.ORG AAAA IN,
 * with one answer record that points back at the question name. */
static const uint8_t response_nxdomain[] = {
    0xbe, 0xef,             /* ID */
    0x81, 0x83,             /* flags: QR=1 opcode 0 RD=1 RA=1 RCODE 3 */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x01,             /* ANCOUNT 1 */
    0x00, 0x00,             /* NSCOUNT 0 */
    0x00, 0x00,             /* ARCOUNT 0 */
    0x04, 'M', 'a', 'i', 'l',
    0x07, 'E', 'x', 'a', 'm', 'p', 'l', 'e',
    0x03, 'O', 'R', 'G',
    0x00,                   /* root */
    0x00, 0x1c,             /* QTYPE AAAA */
    0x00, 0x01,             /* QCLASS IN */
    0xc0, 0x0c,             /* answer NAME: pointer to offset 12 */
    0x00, 0x05,             /* TYPE CNAME */
    0x00, 0x01,             /* CLASS IN */
    0x00, 0x00, 0x0e, 0x10, /* TTL 3600 */
    0x00, 0x02,             /* RDLENGTH 2 */
    0xc0, 0x0c,             /* RDATA: pointer to offset 12 */
};

static void test_dns_parses_response(void **state)
{
    (void)state;
    cap_dns_msg msg;

    assert_int_equal(cap_dns_parse(response_nxdomain, sizeof(response_nxdomain), &msg), FV_OK);
    assert_int_equal(msg.txid, 0xbeef);
    assert_true(msg.is_response);
    assert_int_equal(msg.opcode, 0);
    assert_int_equal(msg.rcode, 3);
    assert_int_equal(msg.ancount, 1);
    assert_int_equal(msg.qtype, 28);
    assert_int_equal(msg.qclass, 1);
    assert_string_equal(msg.qname, "Mail.Example.ORG");
}

static void test_dns_reads_opcode(void **state)
{
    (void)state;
    cap_dns_msg msg;
    uint8_t update[sizeof(query_www_example_com)];

    /* The query above with flags 0x2800: opcode 5 (UPDATE), QR=0. */
    memcpy(update, query_www_example_com, sizeof(update));
    update[2] = 0x28;
    update[3] = 0x00;

    assert_int_equal(cap_dns_parse(update, sizeof(update), &msg), FV_OK);
    assert_int_equal(msg.opcode, 5);
    assert_false(msg.is_response);
}

/*
 * The first question can only point back into the header, so the header
 * counts double as name bytes here: NSCOUNT 0x0161 reads as the label
 * "a" (length 1, 'a') and ARCOUNT 0x0000 as the root.
 */
static const uint8_t query_pointer_into_header[] = {
    0x00, 0x07,             /* ID */
    0x01, 0x00,             /* flags: RD */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x00,             /* ANCOUNT 0 */
    0x01, 0x61,             /* NSCOUNT 0x0161; offset 8: label "a" */
    0x00, 0x00,             /* ARCOUNT 0; offset 10: root */
    0x03, 'w', 'w', 'w',    /* offset 12: label "www" */
    0xc0, 0x08,             /* pointer to offset 8 */
    0x00, 0x10,             /* QTYPE TXT, read after the pointer */
    0x00, 0x03,             /* QCLASS CH */
};

static void test_dns_follows_compression_pointer(void **state)
{
    (void)state;
    cap_dns_msg msg;

    assert_int_equal(
        cap_dns_parse(query_pointer_into_header, sizeof(query_pointer_into_header), &msg), FV_OK);
    assert_string_equal(msg.qname, "www.a");
    assert_int_equal(msg.qtype, 16);
    assert_int_equal(msg.qclass, 3);
}

/* Question name that is a pointer to its own offset, as in Zeek's
 * dns-invalid-names trace. */
static const uint8_t query_self_pointer[] = {
    0x22, 0x23,             /* ID */
    0x01, 0x00,             /* flags: RD */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ANCOUNT, NSCOUNT, ARCOUNT 0 */
    0xc0, 0x0c,             /* offset 12: pointer to offset 12 */
    0x00, 0x01,             /* QTYPE A */
    0x00, 0x01,             /* QCLASS IN */
};

/* Two-step loop: the name points back to ANCOUNT (offset 6), whose bytes
 * c0 0c are a pointer forward to the name again. */
static const uint8_t query_two_step_loop[] = {
    0x00, 0x08,             /* ID */
    0x01, 0x00,             /* flags: RD */
    0x00, 0x01,             /* QDCOUNT 1 */
    0xc0, 0x0c,             /* ANCOUNT; offset 6: pointer to offset 12 */
    0x00, 0x00, 0x00, 0x00, /* NSCOUNT, ARCOUNT 0 */
    0xc0, 0x06,             /* offset 12: pointer to offset 6 */
    0x00, 0x01,             /* QTYPE A */
    0x00, 0x01,             /* QCLASS IN */
};

static void test_dns_rejects_pointer_loop(void **state)
{
    (void)state;
    cap_dns_msg msg;

    assert_int_equal(cap_dns_parse(query_self_pointer, sizeof(query_self_pointer), &msg),
                     FV_ERR_PARSE);
    assert_int_equal(cap_dns_parse(query_two_step_loop, sizeof(query_two_step_loop), &msg),
                     FV_ERR_PARSE);
}

/* Question name "www" then a pointer forward to a valid name at offset 22. */
static const uint8_t query_forward_pointer[] = {
    0x00, 0x09,             /* ID */
    0x01, 0x00,             /* flags: RD */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ANCOUNT, NSCOUNT, ARCOUNT 0 */
    0x03, 'w', 'w', 'w',    /* offset 12 */
    0xc0, 0x16,             /* offset 16: pointer to offset 22 */
    0x00, 0x01,             /* QTYPE A */
    0x00, 0x01,             /* QCLASS IN */
    0x03, 'c', 'o', 'm', 0x00, /* offset 22: "com" */
};

static void test_dns_rejects_forward_pointer(void **state)
{
    (void)state;
    cap_dns_msg msg;

    assert_int_equal(cap_dns_parse(query_forward_pointer, sizeof(query_forward_pointer), &msg),
                     FV_ERR_PARSE);
}

/* Header of a one-question query (id 0x000a, RD) for the built names. */
static const uint8_t query_header[] = {
    0x00, 0x0a, 0x01, 0x00, /* ID, flags: RD */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ANCOUNT, NSCOUNT, ARCOUNT 0 */
};

/* Build query_header + NAME (NAME_LEN wire bytes) + QTYPE A + QCLASS IN
 * into BUF and return the message length. */
static size_t build_query(uint8_t *buf, size_t buf_len, const uint8_t *name, size_t name_len)
{
    size_t len = sizeof(query_header) + name_len + 4;
    assert_true(len <= buf_len);
    memcpy(buf, query_header, sizeof(query_header));
    memcpy(buf + sizeof(query_header), name, name_len);
    memcpy(buf + sizeof(query_header) + name_len, "\x00\x01\x00\x01", 4);
    return len;
}

/* Write LABELS labels of LABEL_LEN copies of byte FILL, then the root,
 * into NAME; return the wire length. */
static size_t build_name(uint8_t *name, size_t name_size, unsigned labels, uint8_t label_len,
                         uint8_t fill)
{
    size_t len = 0;
    for (unsigned i = 0; i < labels; i++) {
        assert_true(len + 1 + label_len < name_size);
        name[len++] = label_len;
        memset(name + len, fill, label_len);
        len += label_len;
    }
    name[len++] = 0x00;
    return len;
}

static void test_dns_rejects_label_over_63(void **state)
{
    (void)state;
    cap_dns_msg msg;
    uint8_t name[128];
    uint8_t buf[256];

    /* One 64-byte label of 'x': length byte 0x40, the extended label type. */
    size_t name_len = build_name(name, sizeof(name), 1, 64, 'x');
    size_t len = build_query(buf, sizeof(buf), name, name_len);
    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_ERR_PARSE);

    /* Length byte 0x80 (reserved label type) followed by the root. */
    static const uint8_t reserved_label_type[] = {0x80, 0x00};
    len = build_query(buf, sizeof(buf), reserved_label_type, sizeof(reserved_label_type));
    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_ERR_PARSE);

    /* A 63-byte label is the largest allowed. */
    name_len = build_name(name, sizeof(name), 1, 63, 'x');
    len = build_query(buf, sizeof(buf), name, name_len);
    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_OK);
    assert_int_equal(strlen(msg.qname), 63);
}

static void test_dns_rejects_name_over_255(void **state)
{
    (void)state;
    cap_dns_msg msg;
    uint8_t name[300];
    uint8_t buf[400];

    /* Four 63-byte labels of 'a': 4 * 64 + 1 = 257 wire bytes. */
    size_t name_len = build_name(name, sizeof(name), 4, 63, 'a');
    assert_int_equal(name_len, 257);
    size_t len = build_query(buf, sizeof(buf), name, name_len);
    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_ERR_PARSE);

    /* Three 63-byte labels and one 61-byte label: exactly 255 wire bytes,
     * the maximum, giving 63 * 3 + 61 + 3 dots = 253 characters. */
    name_len = build_name(name, sizeof(name), 3, 63, 'a');
    name_len--;                             /* drop the root */
    name[name_len++] = 61;
    memset(name + name_len, 'b', 61);
    name_len += 61;
    name[name_len++] = 0x00;
    assert_int_equal(name_len, 255);
    len = build_query(buf, sizeof(buf), name, name_len);
    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_OK);
    assert_int_equal(strlen(msg.qname), 253);
    assert_int_equal(msg.qname[63], '.');
    assert_int_equal(msg.qname[252], 'b');
}

static void test_dns_parses_root_name(void **state)
{
    (void)state;
    cap_dns_msg msg;
    uint8_t buf[64];

    /* The root name alone: one zero byte. Query type NS. */
    static const uint8_t root[] = {0x00};
    size_t len = build_query(buf, sizeof(buf), root, sizeof(root));
    buf[len - 3] = 0x02;                    /* QTYPE NS */

    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_OK);
    assert_string_equal(msg.qname, ".");
    assert_int_equal(msg.qtype, 2);
}

static void test_dns_escapes_bytes(void **state)
{
    (void)state;
    cap_dns_msg msg;
    uint8_t buf[128];

    static const uint8_t name[] = {
        0x03, 'a', '.', 'b',            /* dot inside a label */
        0x04, 's', ' ', 'p', '\\',      /* space and backslash */
        0x03, 0xe4, 0x7f, 0x00,         /* a Latin-1 byte, DEL and NUL */
        0x05, 'M', 'i', 'X', '-', '_',  /* case and punctuation kept */
        0x00,                           /* root */
    };
    size_t len = build_query(buf, sizeof(buf), name, sizeof(name));

    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_OK);
    assert_string_equal(msg.qname, "a\\046b.s\\032p\\092.\\228\\127\\000.MiX-_");
}

static void test_dns_cuts_long_presentation_at_escape(void **state)
{
    (void)state;
    cap_dns_msg msg;
    uint8_t name[256];
    uint8_t buf[300];

    /* Three 63-byte labels of 0xff: 193 wire bytes, but 758 characters in
     * presentation form. The first label fills 252 characters, the dot
     * makes 253, and the next "\255" no longer fits in 255. */
    size_t name_len = build_name(name, sizeof(name), 3, 63, 0xff);
    size_t len = build_query(buf, sizeof(buf), name, name_len);

    assert_int_equal(cap_dns_parse(buf, len, &msg), FV_OK);
    assert_int_equal(strlen(msg.qname), 253);
    for (size_t i = 0; i < 252; i += 4)
        assert_memory_equal(msg.qname + i, "\\255", 4);
    assert_int_equal(msg.qname[252], '.');
    assert_true(msg.has_question);
    assert_int_equal(msg.qtype, 1);
}

static void test_dns_accepts_qdcount_zero(void **state)
{
    (void)state;
    cap_dns_msg msg;

    /* Response id 0x2222 with no question and ANCOUNT 2; no bytes follow. */
    static const uint8_t no_question[] = {
        0x22, 0x22,             /* ID */
        0x84, 0x00,             /* flags: QR=1 AA=1 */
        0x00, 0x00,             /* QDCOUNT 0 */
        0x00, 0x02,             /* ANCOUNT 2 */
        0x00, 0x00, 0x00, 0x00, /* NSCOUNT, ARCOUNT 0 */
    };

    assert_int_equal(cap_dns_parse(no_question, sizeof(no_question), &msg), FV_OK);
    assert_false(msg.has_question);
    assert_string_equal(msg.qname, "");
    assert_int_equal(msg.qtype, 0);
    assert_int_equal(msg.qclass, 0);
    assert_int_equal(msg.ancount, 2);
    assert_true(msg.is_response);
}

static void test_dns_reports_truncation(void **state)
{
    (void)state;
    cap_dns_msg msg;

    /* Every proper prefix of the query is cut short somewhere: in the
     * header, the name, QTYPE or QCLASS. */
    for (size_t len = 0; len < sizeof(query_www_example_com); len++) {
        assert_int_equal(cap_dns_parse(query_www_example_com, len, &msg), FV_ERR_TRUNCATED);
        assert_string_equal(msg.qname, "");
    }

    /* Zeek's truncated question: QDCOUNT 1 and the label "a" announced
     * with length 3 but only one byte present. */
    static const uint8_t cut_label[] = {
        0x22, 0x22, 0x01, 0x00, /* ID, flags: RD */
        0x00, 0x01,             /* QDCOUNT 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ANCOUNT, NSCOUNT, ARCOUNT 0 */
        0x03, 'a',              /* label of length 3, one byte present */
    };
    assert_int_equal(cap_dns_parse(cut_label, sizeof(cut_label), &msg), FV_ERR_TRUNCATED);
}

static void test_dns_keeps_every_question(void **state)
{
    (void)state;
    cap_dns_msg m;

    /* Query with QDCOUNT 2: "a.ex" type A class IN, then "b" + pointer to
     * "ex" (offset 14) type AAAA class IN. */
    static const uint8_t msg[] = {
        0x00, 0x07, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* header */
        0x01, 'a', 0x02, 'e', 'x', 0x00, 0x00, 0x01, 0x00, 0x01,    /* a.ex A IN */
        0x01, 'b', 0xC0, 0x0E, 0x00, 0x1C, 0x00, 0x01,              /* b.ex AAAA IN */
    };
    assert_int_equal(cap_dns_parse(msg, sizeof msg, &m), FV_OK);
    assert_int_equal(m.qdcount, 2);
    assert_int_equal(m.question_count, 2);
    assert_string_equal(m.questions[0].name, "a.ex");
    assert_int_equal(m.questions[0].qtype, 1);
    assert_string_equal(m.questions[1].name, "b.ex");
    assert_int_equal(m.questions[1].qtype, 28);
    assert_int_equal(m.questions[1].qclass, 1);
    assert_string_equal(m.qname, "a.ex");
    assert_int_equal(m.qtype, 1);
}

static void test_dns_reads_compressed_answers(void **state)
{
    (void)state;
    cap_dns_msg m;

    /* Response, RCODE 0, QDCOUNT 1, ANCOUNT 3 for "w.ex":
     *   question  w.ex A IN (name at offset 12)
     *   answer 1  ptr->12 CNAME IN ttl 60, RDATA "c" + ptr->14 ("c.ex")
     *   answer 2  ptr->c.ex (offset 34) A IN ttl 60, 192.0.2.7
     *   answer 3  ptr->12 AAAA IN ttl 60, 2001:db8::9 */
    static const uint8_t msg[] = {
        0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
        0x01, 'w', 0x02, 'e', 'x', 0x00, 0x00, 0x01, 0x00, 0x01,
        0xC0, 0x0C, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x04,
        0x01, 'c', 0xC0, 0x0E,
        0xC0, 0x22, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x04,
        192, 0, 2, 7,
        0xC0, 0x0C, 0x00, 0x1C, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x10,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x09,
    };
    assert_int_equal(cap_dns_parse(msg, sizeof msg, &m), FV_OK);
    assert_int_equal(m.answers_parsed, 3);
    assert_false(m.answers_incomplete);
    assert_int_equal(m.cname_count, 1);
    assert_string_equal(m.cnames[0], "c.ex");
    assert_int_equal(m.a_count, 1);
    assert_memory_equal(m.a[0], ((const uint8_t[]){192, 0, 2, 7}), 4);
    assert_int_equal(m.aaaa_count, 1);
    assert_int_equal(m.aaaa[0][0], 0x20);
    assert_int_equal(m.aaaa[0][15], 0x09);
}

static void test_dns_follows_cname_chain(void **state)
{
    (void)state;
    cap_dns_msg m;

    /* Response with ANCOUNT 2: q.ex CNAME r.ex, r.ex CNAME s.ex; both
     * targets are written in full, the owners use pointers. The mDNS
     * cache-flush bit (class 0x8001) is ignored. */
    static const uint8_t msg[] = {
        0x00, 0x01, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x01, 'q', 0x02, 'e', 'x', 0x00, 0x00, 0x01, 0x00, 0x01,    /* offset 12 */
        0xC0, 0x0C, 0x00, 0x05, 0x80, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x06,
        0x01, 'r', 0x02, 'e', 'x', 0x00,                            /* offset 34: r.ex */
        0xC0, 0x22, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x06,
        0x01, 's', 0x02, 'e', 'x', 0x00,
    };
    assert_int_equal(cap_dns_parse(msg, sizeof msg, &m), FV_OK);
    assert_int_equal(m.cname_count, 2);
    assert_string_equal(m.cnames[0], "r.ex");
    assert_string_equal(m.cnames[1], "s.ex");
    assert_int_equal(m.a_count, 0);
}

static void test_dns_truncated_answers_keep_earlier(void **state)
{
    (void)state;
    cap_dns_msg m;

    /* ANCOUNT 2: one complete A record (198.51.100.1), then a second A
     * record cut after its TYPE field. The question and the first answer
     * are kept; answer parsing stops with CAP_DNS_ERR_TRUNCATED. */
    static const uint8_t msg[] = {
        0x00, 0x02, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x01, 'x', 0x00, 0x00, 0x01, 0x00, 0x01,
        0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x04,
        198, 51, 100, 1,
        0xC0, 0x0C, 0x00, 0x01,
    };
    assert_int_equal(cap_dns_parse(msg, sizeof msg, &m), FV_OK);
    assert_string_equal(m.qname, "x");
    assert_int_equal(m.a_count, 1);
    assert_int_equal(m.answers_parsed, 1);
    assert_true(m.answers_incomplete);
    assert_int_equal(m.error, CAP_DNS_ERR_TRUNCATED);
}

static void test_dns_rejects_bad_answer_rdata(void **state)
{
    (void)state;
    cap_dns_msg m;

    /* An A record with RDLENGTH 5: the address is not trusted. */
    static const uint8_t msg[] = {
        0x00, 0x03, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x01, 'x', 0x00, 0x00, 0x01, 0x00, 0x01,
        0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x05,
        192, 0, 2, 1, 0,
    };
    assert_int_equal(cap_dns_parse(msg, sizeof msg, &m), FV_OK);
    assert_int_equal(m.a_count, 0);
    assert_true(m.answers_incomplete);
    assert_int_equal(m.error, CAP_DNS_ERR_RDATA);
}

static void test_dns_reports_question_error_reason(void **state)
{
    (void)state;
    cap_dns_msg m;

    /* QDCOUNT 2: the first question is valid, the second name is a
     * pointer to itself (offset 19), a loop. The whole message fails. */
    static const uint8_t msg[] = {
        0x00, 0x04, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, 'x', 0x00, 0x00, 0x01, 0x00, 0x01,
        0xC0, 0x13, 0x00, 0x01, 0x00, 0x01,
    };
    assert_int_equal(cap_dns_parse(msg, sizeof msg, &m), FV_ERR_PARSE);
    assert_int_equal(m.error, CAP_DNS_ERR_POINTER);
    assert_int_equal(m.question_count, 0);

    /* Label type 0x40 in the question name. */
    static const uint8_t ext[] = {
        0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x41, 'x', 0x00, 0x00, 0x01, 0x00, 0x01,
    };
    assert_int_equal(cap_dns_parse(ext, sizeof ext, &m), FV_ERR_PARSE);
    assert_int_equal(m.error, CAP_DNS_ERR_LABEL_TYPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_parses_query),
        cmocka_unit_test(test_dns_keeps_every_question),
        cmocka_unit_test(test_dns_reads_compressed_answers),
        cmocka_unit_test(test_dns_follows_cname_chain),
        cmocka_unit_test(test_dns_truncated_answers_keep_earlier),
        cmocka_unit_test(test_dns_rejects_bad_answer_rdata),
        cmocka_unit_test(test_dns_reports_question_error_reason),
        cmocka_unit_test(test_dns_parses_response),
        cmocka_unit_test(test_dns_reads_opcode),
        cmocka_unit_test(test_dns_follows_compression_pointer),
        cmocka_unit_test(test_dns_rejects_pointer_loop),
        cmocka_unit_test(test_dns_rejects_forward_pointer),
        cmocka_unit_test(test_dns_rejects_label_over_63),
        cmocka_unit_test(test_dns_rejects_name_over_255),
        cmocka_unit_test(test_dns_parses_root_name),
        cmocka_unit_test(test_dns_escapes_bytes),
        cmocka_unit_test(test_dns_cuts_long_presentation_at_escape),
        cmocka_unit_test(test_dns_accepts_qdcount_zero),
        cmocka_unit_test(test_dns_reports_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
