/*
 * test_export_ipfix.c: the IPFIX exporter against sockets on 127.0.0.1.
 * The test decodes the messages itself (RFC 7011 message, set, template
 * and data record layout) so it checks the bytes on the wire, not what
 * libfixbuf believes it sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "export.h"

/* ---------------------------------------------------------------------- */
/* A minimal IPFIX decoder                                                 */
/* ---------------------------------------------------------------------- */

#define MAX_TEMPLATES 64
#define MAX_FIELDS 40
#define MAX_RECORDS 64

typedef struct field_def {
    uint16_t id;
    uint16_t len;
    uint32_t pen;
} field_def;

typedef struct template_def {
    uint16_t tid;
    uint16_t count;
    field_def fields[MAX_FIELDS];
} template_def;

typedef struct field_value {
    uint16_t id;
    uint32_t pen;
    uint16_t len;
    uint8_t bytes[256];
} field_value;

typedef struct data_record {
    uint16_t tid;
    uint16_t count;
    field_value values[MAX_FIELDS];
} data_record;

typedef struct decoded {
    size_t messages;
    size_t template_sets;
    size_t flow_template_defs;  /* definitions of template 0x200, the first flow template */
    size_t template_count;
    template_def templates[MAX_TEMPLATES];
    size_t record_count;
    data_record records[MAX_RECORDS];
} decoded;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t rd_uint(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = (v << 8) | p[i];
    return v;
}

static void decode_template_set(decoded *d, const uint8_t *p, size_t n)
{
    size_t off = 0;
    d->template_sets++;
    while (4 <= n - off) {
        template_def t;
        memset(&t, 0, sizeof t);
        t.tid = rd16(p + off);
        t.count = rd16(p + off + 2);
        off += 4;
        assert_true(t.count <= MAX_FIELDS);
        for (uint16_t i = 0; i < t.count; i++) {
            assert_true(4 <= n - off);
            uint16_t id = rd16(p + off);
            t.fields[i].len = rd16(p + off + 2);
            off += 4;
            if ((id & 0x8000u) != 0) {
                assert_true(4 <= n - off);
                t.fields[i].pen = rd32(p + off);
                off += 4;
            }
            t.fields[i].id = id & 0x7fffu;
        }
        if (t.tid == 0x200)
            d->flow_template_defs++;
        /* A refresh replaces the earlier definition of the same id. */
        size_t slot = 0;
        while (slot < d->template_count && d->templates[slot].tid != t.tid)
            slot++;
        assert_true(slot < MAX_TEMPLATES);
        d->templates[slot] = t;
        if (slot == d->template_count)
            d->template_count++;
    }
}

static const template_def *find_template(const decoded *d, uint16_t tid)
{
    for (size_t i = 0; i < d->template_count; i++)
        if (d->templates[i].tid == tid)
            return &d->templates[i];
    return NULL;
}

static void decode_data_set(decoded *d, uint16_t tid, const uint8_t *p, size_t n)
{
    const template_def *t = find_template(d, tid);
    assert_non_null(t);
    size_t off = 0;
    /* Records continue while at least one more byte than padding is left. */
    while (off < n && n - off >= 4) {
        assert_true(d->record_count < MAX_RECORDS);
        data_record *r = &d->records[d->record_count++];
        r->tid = tid;
        r->count = t->count;
        for (uint16_t i = 0; i < t->count; i++) {
            size_t len = t->fields[i].len;
            if (len == 65535) {
                assert_true(1 <= n - off);
                len = p[off++];
                if (len == 255) {
                    assert_true(2 <= n - off);
                    len = rd16(p + off);
                    off += 2;
                }
            }
            assert_true(len <= n - off);
            assert_true(len <= sizeof r->values[i].bytes);
            r->values[i].id = t->fields[i].id;
            r->values[i].pen = t->fields[i].pen;
            r->values[i].len = (uint16_t)len;
            memcpy(r->values[i].bytes, p + off, len);
            off += len;
        }
    }
}

/* Decode one IPFIX message of LEN bytes into D. */
static void decode_message(decoded *d, const uint8_t *msg, size_t len)
{
    assert_true(len >= 16);
    assert_int_equal(rd16(msg), 10);            /* version */
    assert_int_equal(rd16(msg + 2), len);       /* message length */
    d->messages++;
    size_t off = 16;
    while (4 <= len - off) {
        uint16_t set_id = rd16(msg + off);
        uint16_t set_len = rd16(msg + off + 2);
        assert_true(set_len >= 4 && set_len <= len - off);
        if (set_id == 2)
            decode_template_set(d, msg + off + 4, set_len - 4u);
        else if (set_id >= 256)
            decode_data_set(d, set_id, msg + off + 4, set_len - 4u);
        off += set_len;
    }
}

static const field_value *get_field(const data_record *r, uint32_t pen, uint16_t id)
{
    for (uint16_t i = 0; i < r->count; i++)
        if (r->values[i].pen == pen && r->values[i].id == id)
            return &r->values[i];
    return NULL;
}

static uint64_t get_uint(const data_record *r, uint32_t pen, uint16_t id)
{
    const field_value *v = get_field(r, pen, id);
    if (v == NULL) {
        fail_msg("element %u/%u is missing", (unsigned)pen, (unsigned)id);
        return 0;
    }
    return rd_uint(v->bytes, v->len);
}

static void assert_text(const data_record *r, uint32_t pen, uint16_t id, const char *expected)
{
    const field_value *v = get_field(r, pen, id);
    if (v == NULL) {
        fail_msg("element %u/%u is missing", (unsigned)pen, (unsigned)id);
        return;
    }
    assert_int_equal(v->len, strlen(expected));
    assert_memory_equal(v->bytes, expected, v->len);
}

/* ---------------------------------------------------------------------- */
/* Sockets                                                                 */
/* ---------------------------------------------------------------------- */

/* Bind a UDP socket to 127.0.0.1 on a free port. */
static int udp_receiver(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Decode every datagram that arrives within 300 ms of the previous one. */
static void receive_all(int fd, decoded *d)
{
    static uint8_t buf[65536];
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 300) <= 0)
            return;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        assert_true(n > 0);
        decode_message(d, buf, (size_t)n);
    }
}

/* ---------------------------------------------------------------------- */
/* Records                                                                 */
/* ---------------------------------------------------------------------- */

/* An internal client under a pseudonym (zone office) talking to a kept
 * external server 93.184.216.34:443 over TCP. */
static void make_flow(fv_flow_record *f)
{
    memset(f, 0, sizeof *f);
    f->first_us = 1764835200123456u;    /* 2025-12-04T08:00:00.123456Z */
    f->last_us = 1764835205987654u;
    f->src.kind = FV_EP_PSEUDO_IPV4;
    for (int i = 0; i < 16; i++)
        f->src.addr[i] = (uint8_t)(0xa0 + i);   /* pseudonym bytes */
    snprintf(f->src.zone, sizeof f->src.zone, "office");
    f->dst.kind = FV_EP_IPV4;
    f->dst.addr[0] = 93;
    f->dst.addr[1] = 184;
    f->dst.addr[2] = 216;
    f->dst.addr[3] = 34;
    snprintf(f->dst.zone, sizeof f->dst.zone, "external");
    f->sport = 40000;
    f->dport = 443;
    f->proto = 6;
    f->end_reason = FV_END_FIN;
    f->tcp_flags_fwd = 0x1b;    /* FIN SYN PSH ACK */
    f->tcp_flags_rev = 0x13;    /* FIN SYN ACK */
    f->pkts_fwd = 12;
    f->pkts_rev = 9;
    f->bytes_fwd = 1500;
    f->bytes_rev = 64000;
}

static exp_exporter *make_exporter(uint16_t port, exp_config *cfg)
{
    snprintf(cfg->target, sizeof cfg->target, "127.0.0.1:%u", (unsigned)port);
    cfg->retention_s[FV_CLASS_FLOW] = 2592000;
    cfg->retention_s[FV_CLASS_DNS] = 604800;
    exp_exporter *e = NULL;
    char err[512];
    int rc = exp_create(cfg, &e, err, sizeof err);
    if (rc != FV_OK)
        print_error("exp_create: %s\n", err);
    assert_int_equal(rc, FV_OK);
    return e;
}

/* IANA element ids used below. */
enum {
    IE_OCTETS = 1, IE_PACKETS = 2, IE_PROTO = 4, IE_TCP_FLAGS = 6, IE_SPORT = 7, IE_SRC4 = 8,
    IE_DPORT = 11, IE_DST4 = 12, IE_END_REASON = 136, IE_START_MS = 152, IE_END_MS = 153,
    IE_BIFLOW = 239,
};

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */
/* ---------------------------------------------------------------------- */

static void test_ipfix_flow_sent_as_two_records(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_receiver(&port);
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    exp_exporter *e = make_exporter(port, &cfg);

    fv_flow_record f;
    make_flow(&f);
    uint64_t now_us = 1764835300000000u;
    assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 7, now_us, now_us), FV_OK);
    assert_int_equal(exp_flush(e, now_us, 1000), FV_OK);

    static decoded d;
    memset(&d, 0, sizeof d);
    receive_all(fd, &d);
    assert_true(d.template_sets >= 1);
    assert_int_equal(d.record_count, 2);

    char token[FV_ENDPOINT_TEXT_MAX];
    fv_endpoint_format(&f.src, token);

    /* Forward: the pseudonymized client is a token, never an address. */
    const data_record *fwd = &d.records[0];
    assert_null(get_field(fwd, 0, IE_SRC4));
    assert_text(fwd, EXP_IPFIX_PEN, 1, token);
    assert_int_equal(get_uint(fwd, 0, IE_DST4), 0x5db8d822u);   /* 93.184.216.34 */
    assert_int_equal(get_uint(fwd, 0, IE_OCTETS), 1500);
    assert_int_equal(get_uint(fwd, 0, IE_PACKETS), 12);
    assert_int_equal(get_uint(fwd, 0, IE_SPORT), 40000);
    assert_int_equal(get_uint(fwd, 0, IE_DPORT), 443);
    assert_int_equal(get_uint(fwd, 0, IE_PROTO), 6);
    assert_int_equal(get_uint(fwd, 0, IE_TCP_FLAGS), 0x1b);
    assert_int_equal(get_uint(fwd, 0, IE_START_MS), 1764835200123u);
    assert_int_equal(get_uint(fwd, 0, IE_END_MS), 1764835205987u);
    assert_int_equal(get_uint(fwd, 0, IE_END_REASON), 3);   /* end of flow detected */
    assert_int_equal(get_uint(fwd, 0, IE_BIFLOW), 1);       /* initiator */
    assert_text(fwd, EXP_IPFIX_PEN, 3, "office");
    assert_text(fwd, EXP_IPFIX_PEN, 4, "external");
    assert_text(fwd, EXP_IPFIX_PEN, 5, "flows");
    assert_int_equal(get_uint(fwd, EXP_IPFIX_PEN, 6), 2592000);

    /* Reverse: source and destination swapped, the reverse counters. */
    const data_record *rev = &d.records[1];
    assert_int_equal(get_uint(rev, 0, IE_SRC4), 0x5db8d822u);
    assert_null(get_field(rev, 0, IE_DST4));
    assert_text(rev, EXP_IPFIX_PEN, 2, token);
    assert_int_equal(get_uint(rev, 0, IE_OCTETS), 64000);
    assert_int_equal(get_uint(rev, 0, IE_PACKETS), 9);
    assert_int_equal(get_uint(rev, 0, IE_SPORT), 443);
    assert_int_equal(get_uint(rev, 0, IE_DPORT), 40000);
    assert_int_equal(get_uint(rev, 0, IE_TCP_FLAGS), 0x13);
    assert_int_equal(get_uint(rev, 0, IE_BIFLOW), 2);       /* reverse initiator */

    exp_stats st;
    exp_stats_get(e, &st);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.failed, 0);
    exp_destroy(&e);
    assert_null(e);
    close(fd);
}

static void test_ipfix_prefix_preserving_sends_address(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_receiver(&port);
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    exp_exporter *e = make_exporter(port, &cfg);

    fv_flow_record f;
    make_flow(&f);
    f.src.kind = FV_EP_PREFIX_IPV4;     /* valid address 10.77.3.9, keyed */
    memset(f.src.addr, 0, sizeof f.src.addr);
    f.src.addr[0] = 10;
    f.src.addr[1] = 77;
    f.src.addr[2] = 3;
    f.src.addr[3] = 9;
    f.pkts_rev = 0;                     /* no reverse record */
    uint64_t now_us = 1764835300000000u;
    assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 1, now_us, now_us), FV_OK);
    assert_int_equal(exp_flush(e, now_us, 1000), FV_OK);

    static decoded d;
    memset(&d, 0, sizeof d);
    receive_all(fd, &d);
    assert_int_equal(d.record_count, 1);
    assert_int_equal(get_uint(&d.records[0], 0, IE_SRC4), 0x0a4d0309u);
    assert_null(get_field(&d.records[0], EXP_IPFIX_PEN, 1));
    exp_destroy(&e);
    close(fd);
}

static void test_ipfix_dns_and_tls_elements(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_receiver(&port);
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    exp_exporter *e = make_exporter(port, &cfg);

    fv_flow_record f;
    make_flow(&f);
    static fv_dns_record dns;
    memset(&dns, 0, sizeof dns);
    dns.ts_us = 1764835201000000u;
    dns.client = f.src;
    dns.server = f.dst;
    dns.client_port = 53000;
    dns.server_port = 53;
    dns.transport = 17;
    dns.is_response = 1;
    dns.rcode = 3;      /* NXDOMAIN */
    dns.qtype = 28;     /* AAAA */
    snprintf(dns.qname, sizeof dns.qname, "www.example.org");
    static fv_tls_record tls;
    memset(&tls, 0, sizeof tls);
    tls.ts_us = 1764835202000000u;
    tls.client = f.src;
    tls.server = f.dst;
    tls.client_port = 40001;
    tls.server_port = 443;
    snprintf(tls.sni, sizeof tls.sni, "example.org");
    snprintf(tls.ja3, sizeof tls.ja3, "%s", "0123456789abcdef0123456789abcdef");
    snprintf(tls.ja4, sizeof tls.ja4, "%s", "t13d1516h2_8daaf6152771_02713d6af862");

    uint64_t now_us = 1764835300000000u;
    assert_int_equal(exp_put(e, FV_CLASS_DNS, &dns, 1, now_us, now_us), FV_OK);
    assert_int_equal(exp_put(e, FV_CLASS_TLS, &tls, 2, now_us, now_us), FV_OK);
    /* HTTP has no IPFIX template: counted, not sent. */
    static fv_http_record http;
    memset(&http, 0, sizeof http);
    assert_int_equal(exp_put(e, FV_CLASS_HTTP, &http, 3, now_us, now_us), FV_OK);
    assert_int_equal(exp_flush(e, now_us, 1000), FV_OK);

    static decoded d;
    memset(&d, 0, sizeof d);
    receive_all(fd, &d);
    assert_int_equal(d.record_count, 2);
    assert_text(&d.records[0], EXP_IPFIX_PEN, 7, "www.example.org");
    assert_int_equal(get_uint(&d.records[0], EXP_IPFIX_PEN, 8), 28);
    assert_int_equal(get_uint(&d.records[0], EXP_IPFIX_PEN, 9), 3);
    assert_int_equal(get_uint(&d.records[0], EXP_IPFIX_PEN, 10), 1);
    assert_text(&d.records[0], EXP_IPFIX_PEN, 5, "dns");
    assert_int_equal(get_uint(&d.records[0], EXP_IPFIX_PEN, 6), 604800);
    assert_int_equal(get_uint(&d.records[0], 0, IE_PROTO), 17);
    assert_text(&d.records[1], EXP_IPFIX_PEN, 11, "example.org");
    assert_text(&d.records[1], EXP_IPFIX_PEN, 12, "0123456789abcdef0123456789abcdef");
    assert_text(&d.records[1], EXP_IPFIX_PEN, 13, "t13d1516h2_8daaf6152771_02713d6af862");
    assert_text(&d.records[1], EXP_IPFIX_PEN, 14, "");

    exp_stats st;
    exp_stats_get(e, &st);
    assert_int_equal(st.sent, 2);
    assert_int_equal(st.unsupported, 1);
    exp_destroy(&e);
    close(fd);
}

static void test_ipfix_class_filter_skips_records(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_receiver(&port);
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    cfg.classes = EXP_CLASS_BIT(FV_CLASS_DNS);
    exp_exporter *e = make_exporter(port, &cfg);

    fv_flow_record f;
    make_flow(&f);
    uint64_t now_us = 1764835300000000u;
    assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 1, now_us, now_us), FV_OK);
    assert_int_equal(exp_flush(e, now_us, 1000), FV_OK);

    static decoded d;
    memset(&d, 0, sizeof d);
    receive_all(fd, &d);
    assert_int_equal(d.record_count, 0);
    exp_stats st;
    exp_stats_get(e, &st);
    assert_int_equal(st.filtered, 1);
    assert_int_equal(st.sent, 0);
    exp_destroy(&e);
    close(fd);
}

static void test_ipfix_templates_refresh_on_schedule(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_receiver(&port);
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    cfg.template_refresh_s = 600;
    exp_exporter *e = make_exporter(port, &cfg);

    fv_flow_record f;
    make_flow(&f);
    uint64_t t0 = 1764835300000000u;
    exp_stats st;

    /* Templates at creation only, until 600 s have passed. */
    assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 1, t0, t0), FV_OK);
    assert_int_equal(exp_poll(e, t0 + 599u * 1000000u), FV_OK);
    exp_stats_get(e, &st);
    assert_int_equal(st.template_sends, 1);
    assert_int_equal(exp_poll(e, t0 + 600u * 1000000u), FV_OK);
    exp_stats_get(e, &st);
    assert_int_equal(st.template_sends, 2);

    static decoded d;
    memset(&d, 0, sizeof d);
    receive_all(fd, &d);
    assert_int_equal(d.flow_template_defs, 2);
    exp_destroy(&e);

    /* By message count: every 2 messages. */
    cfg.template_refresh_s = 0;
    cfg.template_refresh_messages = 2;
    e = make_exporter(port, &cfg);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 1, t0, t0), FV_OK);
        assert_int_equal(exp_poll(e, t0), FV_OK);
    }
    exp_stats_get(e, &st);
    assert_true(st.template_sends >= 3);
    assert_true(st.template_sends <= 4);
    memset(&d, 0, sizeof d);
    receive_all(fd, &d);
    assert_int_equal(d.flow_template_defs, st.template_sends);
    assert_int_equal(d.record_count, 12);
    exp_destroy(&e);
    close(fd);
}

static void test_ipfix_tcp_collector(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    cfg.tcp = true;
    exp_exporter *e = make_exporter(ntohs(sa.sin_port), &cfg);
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);

    fv_flow_record f;
    make_flow(&f);
    uint64_t now_us = 1764835300000000u;
    assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, 1, now_us, now_us), FV_OK);
    assert_int_equal(exp_flush(e, now_us, 1000), FV_OK);
    exp_destroy(&e);    /* closes the connection: the stream ends */

    /* Read the stream and split it at each message's length field. */
    static uint8_t buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(cfd, buf + have, sizeof buf - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    static decoded d;
    memset(&d, 0, sizeof d);
    size_t off = 0;
    while (16 <= have - off) {
        uint16_t len = rd16(buf + off + 2);
        assert_true(len <= have - off);
        decode_message(&d, buf + off, len);
        off += len;
    }
    assert_int_equal(off, have);
    assert_int_equal(d.record_count, 2);
    assert_int_equal(get_uint(&d.records[0], 0, IE_OCTETS), 1500);
    close(cfd);
    close(lfd);
}

/* Many records fill many messages: the exporter's message count equals
 * the datagrams that arrive (UDP on loopback, within the socket buffer). */
static void test_ipfix_counts_every_message(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_receiver(&port);
    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    exp_exporter *e = make_exporter(port, &cfg);

    fv_flow_record f;
    make_flow(&f);
    uint64_t now_us = 1764835300000000u;
    for (int i = 0; i < 200; i++) {
        f.sport = (uint16_t)(40000 + i);
        assert_int_equal(exp_put(e, FV_CLASS_FLOW, &f, (uint64_t)i + 1, now_us, now_us), FV_OK);
    }
    assert_int_equal(exp_flush(e, now_us, 1000), FV_OK);
    exp_stats st;
    exp_stats_get(e, &st);
    exp_destroy(&e);

    size_t datagrams = 0;
    static uint8_t buf[65536];
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 300) <= 0)
            break;
        assert_true(recv(fd, buf, sizeof buf, 0) > 0);
        datagrams++;
    }
    close(fd);
    assert_int_equal(st.sent, 200);     /* sent as 400 directed data records */
    assert_true(datagrams > 5);         /* 400 records do not fit in a few datagrams */
    assert_int_equal(st.messages, datagrams);
}

static void test_ipfix_tcp_refused_fails_create(void **state)
{
    (void)state;
    /* A port that was free a moment ago and has no listener now. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);

    exp_config cfg;
    exp_config_init(&cfg, EXP_IPFIX);
    cfg.tcp = true;
    snprintf(cfg.target, sizeof cfg.target, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    exp_exporter *e = NULL;
    char err[512];
    assert_int_equal(exp_create(&cfg, &e, err, sizeof err), FV_ERR_IO);
    assert_null(e);
    assert_non_null(strstr(err, "check that the collector listens there"));
}

static void test_ipfix_rejects_invalid_target(void **state)
{
    (void)state;
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":4739",
                                      "::1:4739", "[::1]4739", "host:47x9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        exp_config cfg;
        exp_config_init(&cfg, EXP_IPFIX);
        snprintf(cfg.target, sizeof cfg.target, "%s", bad[i]);
        exp_exporter *e = NULL;
        char err[512];
        assert_int_equal(exp_create(&cfg, &e, err, sizeof err), FV_ERR_INVALID);
        assert_null(e);
        assert_non_null(strstr(err, "invalid IPFIX collector"));
    }
    char host[64], port[8];
    assert_int_equal(exp_parse_host_port("[::1]:4739", host, sizeof host, port, sizeof port),
                     FV_OK);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "4739");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipfix_flow_sent_as_two_records),
        cmocka_unit_test(test_ipfix_prefix_preserving_sends_address),
        cmocka_unit_test(test_ipfix_dns_and_tls_elements),
        cmocka_unit_test(test_ipfix_class_filter_skips_records),
        cmocka_unit_test(test_ipfix_templates_refresh_on_schedule),
        cmocka_unit_test(test_ipfix_tcp_collector),
        cmocka_unit_test(test_ipfix_counts_every_message),
        cmocka_unit_test(test_ipfix_tcp_refused_fails_create),
        cmocka_unit_test(test_ipfix_rejects_invalid_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
