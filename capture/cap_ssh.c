/*
 * cap_ssh.c: SSH identification strings and HASSH fingerprints
 * (RFC 4253 sections 4.2, 6 and 7.1).
 *
 * The banner is the "SSH-protoversion-softwareversion" line each side
 * sends first. The KEXINIT that follows it is still cleartext, so its
 * algorithm name-lists can be hashed: HASSH is MD5 over
 * "kex;enc;mac;cmp" with the client-to-server lists of the client's
 * KEXINIT, HASSH-server the same over the server-to-client lists of the
 * server's KEXINIT. Only the digest leaves this file.
 */
#include <string.h>

#include <nettle/md5.h>

#include "cap_internal.h"
#include "cap_proto.h"

#define SSH_MSG_KEXINIT 20
#define SSH_KEXINIT_COOKIE 16
#define SSH_NAME_LISTS 10   /* kex, hostkey, enc x2, mac x2, comp x2, lang x2 */

int cap_ssh_parse_banner(const uint8_t *data, size_t len, char out[FV_SSH_BANNER_MAX],
                         size_t *consumed)
{
    size_t i, end, n;

    if (data == NULL || out == NULL || consumed == NULL)
        return FV_ERR_INVALID;
    out[0] = '\0';
    *consumed = 0;
    n = len < 4 ? len : 4;
    if (memcmp(data, "SSH-", n) != 0)
        return FV_ERR_PARSE;

    for (end = 0; end < len && end < CAP_SSH_BANNER_SCAN; end++) {
        if (data[end] == '\n')
            break;
    }
    if (end == len)
        return len < CAP_SSH_BANNER_SCAN ? FV_ERR_TRUNCATED : FV_ERR_PARSE;
    if (end == CAP_SSH_BANNER_SCAN || end < 4)
        return FV_ERR_PARSE;

    *consumed = end + 1;
    n = end;
    if (n > 0 && data[n - 1] == '\r')
        n--;
    if (n > FV_SSH_BANNER_MAX - 1)
        n = FV_SSH_BANNER_MAX - 1;
    for (i = 0; i < n; i++)
        out[i] = (char)((data[i] >= 0x20 && data[i] < 0x7f) ? data[i] : '?');
    out[n] = '\0';
    return FV_OK;
}

int cap_ssh_hassh(const uint8_t *data, size_t len, bool is_server, char out[FV_HASSH_TEXT])
{
    static const char hex[] = "0123456789abcdef";
    /* Indexes of the hashed name-lists: kex (0), then enc, mac and cmp,
     * which are 2, 4, 6 for a client and 3, 5, 7 for a server. */
    const unsigned pick[4] = {0, is_server ? 3u : 2u, is_server ? 5u : 4u, is_server ? 7u : 6u};
    const uint8_t *list[SSH_NAME_LISTS];
    uint32_t list_len[SSH_NAME_LISTS];
    struct md5_ctx md5;
    uint8_t digest[MD5_DIGEST_SIZE];
    cap_cursor cur;
    uint32_t plen;
    unsigned i;

    if (data == NULL || out == NULL)
        return FV_ERR_INVALID;
    out[0] = '\0';
    if (!(5 <= len))
        return FV_ERR_TRUNCATED;
    plen = cap_be32(data);
    if (plen < 2 || plen > CAP_SSH_KEXINIT_MAX)
        return FV_ERR_PARSE;
    if (data[4] >= plen - 1) /* padding_length must leave a payload */
        return FV_ERR_PARSE;
    if (!(plen <= len - 4))
        return len - 4 < CAP_SSH_KEXINIT_MAX ? FV_ERR_TRUNCATED : FV_ERR_PARSE;

    /* Payload: packet_length - padding_length - 1 bytes after the padding
     * length byte. */
    cur.p = data + 5;
    cur.remaining = plen - 1 - data[4];
    if (!cap_cur_has(&cur, 1) || cur.p[0] != SSH_MSG_KEXINIT)
        return FV_ERR_PARSE;
    cap_cur_skip(&cur, 1);
    if (!cap_cur_has(&cur, SSH_KEXINIT_COOKIE))
        return FV_ERR_PARSE;
    cap_cur_skip(&cur, SSH_KEXINIT_COOKIE);
    for (i = 0; i < SSH_NAME_LISTS; i++) {
        if (!cap_cur_has(&cur, 4))
            return FV_ERR_PARSE;
        list_len[i] = cap_be32(cur.p);
        cap_cur_skip(&cur, 4);
        if (!cap_cur_has(&cur, list_len[i]))
            return FV_ERR_PARSE;
        list[i] = cur.p;
        cap_cur_skip(&cur, list_len[i]);
    }

    md5_init(&md5);
    for (i = 0; i < 4; i++) {
        if (i > 0)
            md5_update(&md5, 1, (const uint8_t *)";");
        md5_update(&md5, list_len[pick[i]], list[pick[i]]);
    }
    md5_digest(&md5, sizeof digest, digest);
    for (i = 0; i < MD5_DIGEST_SIZE; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    out[2 * MD5_DIGEST_SIZE] = '\0';
    return FV_OK;
}

/* An "SSH-1.x" banner other than "SSH-1.99" (which announces SSH-2
 * compatibility) starts an SSH-1 session, which has no KEXINIT. */
static bool is_ssh1_only(const char *banner)
{
    return strncmp(banner, "SSH-1.", 6) == 0 && strncmp(banner, "SSH-1.99", 8) != 0;
}

bool cap_ssh_step(cap_ssh_state *st, unsigned dir, const uint8_t *buf, size_t len, bool full,
                  cap_stats *stats, uint64_t ts_us)
{
    char *banner, *hassh;
    size_t used = 0;
    int rc;

    if (st == NULL || dir > 1 || buf == NULL)
        return false;
    banner = dir == 0 ? st->ev.client_banner : st->ev.server_banner;
    hassh = dir == 0 ? st->ev.hassh : st->ev.hassh_server;

    if (st->phase[dir] == CAP_SSH_BANNER) {
        rc = cap_ssh_parse_banner(buf, len, banner, &used);
        if (rc == FV_ERR_TRUNCATED && !full)
            return false;
        if (rc != FV_OK) {
            stats->ssh_bad_banner++;
            banner[0] = '\0';
            st->phase[dir] = CAP_SSH_DONE;
        } else {
            if (st->ev.ts_us == 0)
                st->ev.ts_us = ts_us;
            st->kex_off[dir] = used;
            st->phase[dir] = is_ssh1_only(banner) ? CAP_SSH_DONE : CAP_SSH_KEXINIT;
        }
    }
    if (st->phase[dir] == CAP_SSH_KEXINIT) {
        rc = cap_ssh_hassh(buf + st->kex_off[dir], len - st->kex_off[dir], dir == 1, hassh);
        if (rc == FV_ERR_TRUNCATED && !full)
            return false;
        if (rc != FV_OK) {
            stats->ssh_bad_kexinit++;
            hassh[0] = '\0';
        }
        st->phase[dir] = CAP_SSH_DONE;
    }
    return st->phase[0] == CAP_SSH_DONE && st->phase[1] == CAP_SSH_DONE;
}

void cap_ssh_finish(cap_ssh_state *st, const cap_sink *sink, cap_stats *stats)
{
    if (st == NULL || st->emitted)
        return;
    st->emitted = true;
    if (st->ev.client_banner[0] == '\0' && st->ev.server_banner[0] == '\0')
        return;
    stats->ssh_connections++;
    if (sink->on_ssh != NULL)
        sink->on_ssh(sink->ctx, &st->ev);
}
