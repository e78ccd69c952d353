/*
 * test_cap_ssh.c: SSH identification strings, HASSH, and the per-connection
 * state machine that pairs both sides (capture/cap_ssh.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_internal.h"
#include "cap_proto.h"

/* The ten name-lists of the KEXINIT the tests build. */
static const char *const lists[10] = {
    "curve25519-sha256,diffie-hellman-group14-sha1", /* kex */
    "ssh-ed25519",                                   /* server host key */
    "aes128-ctr",                                    /* encryption client to server */
    "chacha20-poly1305@openssh.com",                 /* encryption server to client */
    "hmac-sha2-256",                                 /* mac client to server */
    "umac-64@openssh.com",                           /* mac server to client */
    "none",                                          /* compression client to server */
    "zlib",                                          /* compression server to client */
    "",                                              /* languages client to server */
    "",                                              /* languages server to client */
};

/* MD5 of "kex;aes128-ctr;hmac-sha2-256;none" and of the server-to-client
 * lists, computed independently (Python hashlib) for these lists. */
#define HASSH_C2S "c10186e7085a862e2fddf54d4e7d61fa"
#define HASSH_S2C "2069b2f67f0e64a29b2a415c784dd8b5"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Write a cleartext binary packet holding a KEXINIT with LISTS into OUT:
 * u32 packet_length, u8 padding_length (4), payload (message 20, a
 * 16-byte cookie of 0xAA, ten name-lists, first_kex_packet_follows 0,
 * u32 reserved 0), 4 padding bytes. Returns the packet length. */
static size_t build_kexinit(uint8_t *out, size_t cap)
{
    size_t pos = 5, i;

    out[pos++] = 20;                       /* SSH_MSG_KEXINIT */
    memset(out + pos, 0xAA, 16);           /* cookie */
    pos += 16;
    for (i = 0; i < 10; i++) {
        size_t n = strlen(lists[i]);

        assert_true(pos + 4 + n < cap);
        put32(out + pos, (uint32_t)n);     /* name-list length */
        memcpy(out + pos + 4, lists[i], n);
        pos += 4 + n;
    }
    out[pos++] = 0;                        /* first_kex_packet_follows */
    put32(out + pos, 0);                   /* reserved */
    pos += 4;
    memset(out + pos, 0, 4);               /* padding */
    pos += 4;
    put32(out, (uint32_t)(pos - 4));       /* packet_length excludes itself */
    out[4] = 4;                            /* padding_length */
    return pos;
}

static void test_ssh_banner_strips_line_end(void **state)
{
    (void)state;
    char out[FV_SSH_BANNER_MAX];
    size_t used;
    /* Banner with CR LF, then the start of the next packet. */
    static const char text[] = "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.1\r\n\x00\x00";

    assert_int_equal(cap_ssh_parse_banner((const uint8_t *)text, sizeof text - 1, out, &used),
                     FV_OK);
    assert_string_equal(out, "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.1");
    assert_int_equal(used, strlen("SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.1\r\n"));

    /* A bare LF ends the line too (old SSH-1 servers). */
    static const char lf[] = "SSH-1.5-old\n";
    assert_int_equal(cap_ssh_parse_banner((const uint8_t *)lf, sizeof lf - 1, out, &used), FV_OK);
    assert_string_equal(out, "SSH-1.5-old");
}

static void test_ssh_banner_waits_then_rejects(void **state)
{
    (void)state;
    char out[FV_SSH_BANNER_MAX];
    uint8_t line[300];
    size_t used;

    /* No line end yet: a valid prefix. */
    static const char part[] = "SSH-2.0-Open";
    assert_int_equal(cap_ssh_parse_banner((const uint8_t *)part, sizeof part - 1, out, &used),
                     FV_ERR_TRUNCATED);
    /* Even the prefix "SS" may still become a banner. */
    assert_int_equal(cap_ssh_parse_banner((const uint8_t *)"SS", 2, out, &used), FV_ERR_TRUNCATED);
    /* Not SSH at all. */
    static const char http[] = "GET / HTTP/1.1\r\n";
    assert_int_equal(cap_ssh_parse_banner((const uint8_t *)http, sizeof http - 1, out, &used),
                     FV_ERR_PARSE);
    /* 300 bytes after "SSH-" without a line end: over the 255-byte limit. */
    memset(line, 'x', sizeof line);
    memcpy(line, "SSH-", 4);
    assert_int_equal(cap_ssh_parse_banner(line, sizeof line, out, &used), FV_ERR_PARSE);
}

static void test_ssh_banner_masks_control_bytes(void **state)
{
    (void)state;
    char out[FV_SSH_BANNER_MAX];
    size_t used;
    /* A tab and a byte 0xff inside the software version. */
    static const char text[] = "SSH-2.0-a\tb\xff" "c\r\n";

    assert_int_equal(cap_ssh_parse_banner((const uint8_t *)text, sizeof text - 1, out, &used),
                     FV_OK);
    assert_string_equal(out, "SSH-2.0-a?b?c");
}

static void test_ssh_hassh_matches_reference(void **state)
{
    (void)state;
    uint8_t pkt[1024];
    char out[FV_HASSH_TEXT];
    size_t len = build_kexinit(pkt, sizeof pkt);

    assert_int_equal(cap_ssh_hassh(pkt, len, false, out), FV_OK);
    assert_string_equal(out, HASSH_C2S);
    assert_int_equal(cap_ssh_hassh(pkt, len, true, out), FV_OK);
    assert_string_equal(out, HASSH_S2C);
}

static void test_ssh_hassh_waits_for_whole_packet(void **state)
{
    (void)state;
    uint8_t pkt[1024];
    char out[FV_HASSH_TEXT];
    size_t len = build_kexinit(pkt, sizeof pkt);

    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(cap_ssh_hassh(pkt, cut, false, out), FV_ERR_TRUNCATED);
}

static void test_ssh_hassh_rejects_bad_lengths(void **state)
{
    (void)state;
    uint8_t pkt[1024];
    char out[FV_HASSH_TEXT];
    size_t len = build_kexinit(pkt, sizeof pkt);

    /* Message 21 (NEWKEYS) instead of KEXINIT. */
    pkt[5] = 21;
    assert_int_equal(cap_ssh_hassh(pkt, len, false, out), FV_ERR_PARSE);
    pkt[5] = 20;

    /* The kex name-list claims more bytes than the payload holds. */
    put32(pkt + 5 + 1 + 16, 0x7fffffff);
    assert_int_equal(cap_ssh_hassh(pkt, len, false, out), FV_ERR_PARSE);
    len = build_kexinit(pkt, sizeof pkt);

    /* padding_length larger than the packet. */
    pkt[4] = 0xff;
    assert_int_equal(cap_ssh_hassh(pkt, len, false, out), FV_ERR_PARSE);
    len = build_kexinit(pkt, sizeof pkt);

    /* packet_length past the 16 KiB limit. */
    put32(pkt, 1u << 20);
    assert_int_equal(cap_ssh_hassh(pkt, len, false, out), FV_ERR_PARSE);
}

typedef struct ssh_seen {
    int count;
    cap_ssh last;
} ssh_seen;

static void on_ssh(void *ctx, const cap_ssh *ev)
{
    ssh_seen *seen = ctx;

    seen->count++;
    seen->last = *ev;
}

static void test_ssh_state_pairs_both_sides_once(void **state)
{
    (void)state;
    uint8_t client[1200], server[1200];
    static const char cb[] = "SSH-2.0-client_1.0\r\n";
    static const char sb[] = "SSH-2.0-server_2.0\r\n";
    size_t clen, slen;
    cap_ssh_state st;
    cap_stats stats;
    ssh_seen seen = {0};
    cap_sink sink = {.ctx = &seen, .on_ssh = on_ssh};

    memset(&st, 0, sizeof st);
    memset(&stats, 0, sizeof stats);
    memcpy(client, cb, sizeof cb - 1);
    clen = sizeof cb - 1 + build_kexinit(client + sizeof cb - 1, sizeof client - sizeof cb);
    memcpy(server, sb, sizeof sb - 1);
    slen = sizeof sb - 1 + build_kexinit(server + sizeof sb - 1, sizeof server - sizeof sb);

    /* Server banner alone, then the server's KEXINIT cut short. */
    assert_false(cap_ssh_step(&st, 1, server, sizeof sb - 1, false, &stats, 100));
    assert_false(cap_ssh_step(&st, 1, server, slen - 3, false, &stats, 110));
    assert_false(cap_ssh_step(&st, 1, server, slen, false, &stats, 120));
    /* The client side completes the connection. */
    assert_true(cap_ssh_step(&st, 0, client, clen, false, &stats, 130));
    cap_ssh_finish(&st, &sink, &stats);
    cap_ssh_finish(&st, &sink, &stats);

    assert_int_equal(seen.count, 1);
    assert_int_equal(stats.ssh_connections, 1);
    assert_int_equal(seen.last.ts_us, 100);
    assert_string_equal(seen.last.client_banner, "SSH-2.0-client_1.0");
    assert_string_equal(seen.last.server_banner, "SSH-2.0-server_2.0");
    assert_string_equal(seen.last.hassh, HASSH_C2S);
    assert_string_equal(seen.last.hassh_server, HASSH_S2C);
}

static void test_ssh_state_emits_partial_at_flow_end(void **state)
{
    (void)state;
    static const char sb[] = "SSH-1.99-OpenSSH_3.9p1\n";
    cap_ssh_state st;
    cap_stats stats;
    ssh_seen seen = {0};
    cap_sink sink = {.ctx = &seen, .on_ssh = on_ssh};

    memset(&st, 0, sizeof st);
    memset(&stats, 0, sizeof stats);
    /* Only the server banner; no KEXINIT and no client before the end. */
    assert_false(cap_ssh_step(&st, 1, (const uint8_t *)sb, sizeof sb - 1, false, &stats, 7));
    cap_ssh_finish(&st, &sink, &stats);
    assert_int_equal(seen.count, 1);
    assert_string_equal(seen.last.server_banner, "SSH-1.99-OpenSSH_3.9p1");
    assert_string_equal(seen.last.client_banner, "");
    assert_string_equal(seen.last.hassh_server, "");

    /* A side that never sent a banner gives no record at all. */
    memset(&st, 0, sizeof st);
    seen.count = 0;
    assert_false(cap_ssh_step(&st, 0, (const uint8_t *)"HELO x\r\n", 8, false, &stats, 7));
    cap_ssh_finish(&st, &sink, &stats);
    assert_int_equal(seen.count, 0);
    assert_int_equal(stats.ssh_bad_banner, 1);
}

static void test_ssh1_banner_needs_no_kexinit(void **state)
{
    (void)state;
    static const char cb[] = "SSH-1.5-client\n";
    static const char sb[] = "SSH-1.5-server\n";
    cap_ssh_state st;
    cap_stats stats;

    memset(&st, 0, sizeof st);
    memset(&stats, 0, sizeof stats);
    /* SSH-1 has no KEXINIT: both banners complete the connection. */
    assert_false(cap_ssh_step(&st, 0, (const uint8_t *)cb, sizeof cb - 1, false, &stats, 1));
    assert_true(cap_ssh_step(&st, 1, (const uint8_t *)sb, sizeof sb - 1, false, &stats, 2));
    assert_string_equal(st.ev.hassh, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssh_banner_strips_line_end),
        cmocka_unit_test(test_ssh_banner_waits_then_rejects),
        cmocka_unit_test(test_ssh_banner_masks_control_bytes),
        cmocka_unit_test(test_ssh_hassh_matches_reference),
        cmocka_unit_test(test_ssh_hassh_waits_for_whole_packet),
        cmocka_unit_test(test_ssh_hassh_rejects_bad_lengths),
        cmocka_unit_test(test_ssh_state_pairs_both_sides_once),
        cmocka_unit_test(test_ssh_state_emits_partial_at_flow_end),
        cmocka_unit_test(test_ssh1_banner_needs_no_kexinit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
