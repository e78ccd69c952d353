/*
 * cap_dhcp.c: BOOTP/DHCPv4 message parser (RFC 2131, RFC 2132).
 *
 * Reads the fixed BOOTP header and walks the options after the magic
 * cookie. Only the fields flowveil keeps are copied out: op, the client
 * hardware address, ciaddr/yiaddr, and options 12 (host name), 50
 * (requested address), 53 (message type) and 60 (vendor class). Every
 * read checks `n <= remaining` first.
 */
#include <string.h>

#include "cap_internal.h"
#include "cap_proto.h"

/* Offsets in the fixed header (RFC 2131 section 2, figure 1). */
#define DHCP_OFF_OP 0
#define DHCP_OFF_HTYPE 1
#define DHCP_OFF_HLEN 2
#define DHCP_OFF_CIADDR 12
#define DHCP_OFF_YIADDR 16
#define DHCP_OFF_CHADDR 28
#define DHCP_FIXED_LEN 236  /* up to and including the 128-byte file field */
#define DHCP_COOKIE 0x63825363u

#define DHCP_OPT_PAD 0
#define DHCP_OPT_HOSTNAME 12
#define DHCP_OPT_REQUESTED_IP 50
#define DHCP_OPT_MSG_TYPE 53
#define DHCP_OPT_VENDOR_CLASS 60
#define DHCP_OPT_END 255

#define HTYPE_ETHERNET 1

/* Copy an option value as text: printable ASCII kept, other bytes '?',
 * trailing NUL bytes (some clients terminate the name) dropped. */
static void copy_text(const uint8_t *v, size_t n, char *out, size_t out_len)
{
    size_t i;

    while (n > 0 && v[n - 1] == 0)
        n--;
    if (n > out_len - 1)
        n = out_len - 1;
    for (i = 0; i < n; i++)
        out[i] = (char)((v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?');
    out[n] = '\0';
}

static void take_option(uint8_t code, const uint8_t *v, size_t n, cap_dhcp_msg *out)
{
    switch (code) {
    case DHCP_OPT_MSG_TYPE:
        if (n == 1)
            out->msg_type = v[0];
        break;
    case DHCP_OPT_HOSTNAME:
        copy_text(v, n, out->hostname, sizeof out->hostname);
        break;
    case DHCP_OPT_VENDOR_CLASS:
        copy_text(v, n, out->vendor_class, sizeof out->vendor_class);
        break;
    case DHCP_OPT_REQUESTED_IP:
        if (n == 4) {
            memcpy(out->requested_ip, v, 4);
            out->has_requested_ip = true;
        }
        break;
    default:
        /* Option 52 (overload) lands here too: the sname and file fields
         * are never read as options, so an overload cannot redirect the
         * walk. */
        break;
    }
}

int cap_dhcp_parse(const uint8_t *data, size_t len, cap_dhcp_msg *out)
{
    cap_cursor cur;

    if (data == NULL || out == NULL)
        return FV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!(DHCP_FIXED_LEN <= len))
        return FV_ERR_PARSE;
    out->op = data[DHCP_OFF_OP];
    if (out->op != 1 && out->op != 2)
        return FV_ERR_PARSE;
    if (data[DHCP_OFF_HTYPE] == HTYPE_ETHERNET && data[DHCP_OFF_HLEN] == 6) {
        out->has_chaddr = true;
        memcpy(out->chaddr, data + DHCP_OFF_CHADDR, 6);
    }
    memcpy(out->ciaddr, data + DHCP_OFF_CIADDR, 4);
    memcpy(out->yiaddr, data + DHCP_OFF_YIADDR, 4);

    cur.p = data + DHCP_FIXED_LEN;
    cur.remaining = len - DHCP_FIXED_LEN;
    if (!cap_cur_has(&cur, 4) || cap_be32(cur.p) != DHCP_COOKIE)
        return FV_OK; /* plain BOOTP: no options */
    cap_cur_skip(&cur, 4);

    while (cap_cur_has(&cur, 1)) {
        uint8_t code = cur.p[0];
        size_t n;

        if (code == DHCP_OPT_END)
            break;
        cap_cur_skip(&cur, 1);
        if (code == DHCP_OPT_PAD)
            continue;
        if (!cap_cur_has(&cur, 1)) {
            out->options_cut = true;
            break;
        }
        n = cur.p[0];
        cap_cur_skip(&cur, 1);
        if (!cap_cur_has(&cur, n)) {
            out->options_cut = true;
            break;
        }
        take_option(code, cur.p, n, out);
        cap_cur_skip(&cur, n);
    }
    return FV_OK;
}
