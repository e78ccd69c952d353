/*
 * pol_escrow.c: the escrow accessors and the officer public key format.
 */
#include <string.h>

#include <sodium.h>

#include "pol_internal.h"
#include "policy.h"

bool pol_escrow_enabled(const pol_policy *policy)
{
    return policy->escrow_enabled && policy->escrow_officer_count > 0;
}

size_t pol_escrow_officer_count(const pol_policy *policy)
{
    return policy->escrow_officer_count;
}

const uint8_t *pol_escrow_officer_key(const pol_policy *policy, size_t i)
{
    if (i >= policy->escrow_officer_count)
        return NULL;
    return policy->escrow_officer_keys[i];
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pol_officer_public_key_parse(const char *text, size_t len, uint8_t out[POL_OFFICER_KEY_BYTES])
{
    const size_t tag_len = strlen(POL_OFFICER_PUBLIC_KEY_TAG);
    const size_t line_len = tag_len + 1 + 2 * POL_OFFICER_KEY_BYTES;

    if (text == NULL || out == NULL)
        return FV_ERR_INVALID;
    /* One line break, LF or CRLF (a key file copied through Windows). */
    if ((len == line_len + 1 && text[line_len] == '\n') ||
        (len == line_len + 2 && text[line_len] == '\r' && text[line_len + 1] == '\n'))
        len = line_len;
    if (len != line_len || memcmp(text, POL_OFFICER_PUBLIC_KEY_TAG, tag_len) != 0 ||
        text[tag_len] != ' ')
        return FV_ERR_PARSE;

    const char *hex = text + tag_len + 1;
    uint8_t key[POL_OFFICER_KEY_BYTES];
    for (size_t i = 0; i < POL_OFFICER_KEY_BYTES; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FV_ERR_PARSE;
        key[i] = (uint8_t)(hi << 4 | lo);
    }

    /* A key of low order (all zeros, for example) parses but cannot be
     * sealed to: find out now, not when the first record needs escrow. */
    static const uint8_t probe[1] = {0};
    uint8_t sealed[crypto_box_SEALBYTES + sizeof probe];
    if (sodium_init() < 0 || crypto_box_seal(sealed, probe, sizeof probe, key) != 0)
        return FV_ERR_PARSE;
    memcpy(out, key, sizeof key);
    return FV_OK;
}
