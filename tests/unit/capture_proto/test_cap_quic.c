/*
 * test_cap_quic.c: QUIC Initial key derivation, packet decryption, hello
 * collection (capture/cap_quic.c) and the engine's QUIC path.
 *
 * The vectors are the client Initial examples of RFC 9001 Appendix A
 * (QUIC version 1) and RFC 9369 Appendix A (QUIC version 2). Both use the
 * Destination Connection ID 8394c8f03e515708 and packet number 2, and
 * protect the same payload: one CRYPTO frame at offset 0 carrying a
 * 241-byte ClientHello for "example.com" with ALPN "alpn", then 917 bytes
 * of PADDING, 1162 bytes in all. The server Initial examples of the same
 * appendices (A.3) carry the 90-byte ServerHello.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_proto.h"
#include "cap_quic.h"
#include "capture.h"
#include "fv_common.h"

#define RFC_PACKET_LEN 1200
#define RFC_PAYLOAD_LEN 1162    /* packet minus the 22-byte header and the 16-byte tag */
#define RFC_CRYPTO_FRAME_LEN 245
#define RFC_HELLO_LEN 241       /* handshake header 4 + body 0xed */
#define RFC_SERVER_PACKET_LEN 135
#define RFC_SERVER_HELLO_LEN 90 /* handshake header 4 + body 0x56 */

/* RFC 9001 Appendix A.2: the protected client Initial packet, 1200 bytes. */
static const char rfc9001_a2_packet_hex[] =
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934";

/* RFC 9369 Appendix A.2: the same client Initial protected for QUIC
 * version 2 (first byte 0xd7, version 6b3343cf), 1200 bytes. */
static const char rfc9369_a2_packet_hex[] =
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc";

/* RFC 9001 Appendix A.2 (and RFC 9369 Appendix A.2): the unprotected
 * payload before its PADDING. 06 = CRYPTO frame, 00 = offset 0, 40f1 =
 * length 241, then the ClientHello: 01 (type), 0000ed (length 237), body. */
static const char rfc_a2_crypto_frame_hex[] =
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff";

/* RFC 9001 Appendix A.3: the server's Initial response, 135 bytes, protected
 * with the server keys of the client's DCID. Its payload is an ACK frame
 * and a CRYPTO frame with a 90-byte ServerHello (02 000056 ...). */
static const char rfc9001_a3_server_packet_hex[] =
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee";

/* RFC 9369 Appendix A.3: the same server Initial for QUIC version 2. */
static const char rfc9369_a3_server_packet_hex[] =
    "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698"
    "baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17"
    "f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2"
    "c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8"
    "4bed8521e2e140";

/* RFC 9001 Appendix A.1: DCID and the client keys derived from it. */
static const uint8_t rfc_dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
static const uint8_t rfc9001_client_key[16] = {
    0x1f, 0x36, 0x96, 0x13, 0xdd, 0x76, 0xd5, 0x46,
    0x77, 0x30, 0xef, 0xcb, 0xe3, 0xb1, 0xa2, 0x2d,
};
static const uint8_t rfc9001_client_iv[12] = {
    0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c,
};
static const uint8_t rfc9001_client_hp[16] = {
    0x9f, 0x50, 0x44, 0x9e, 0x04, 0xa0, 0xe8, 0x10,
    0x28, 0x3a, 0x1e, 0x99, 0x33, 0xad, 0xed, 0xd2,
};

/* RFC 9369 Appendix A.1: the version 2 client keys for the same DCID. */
static const uint8_t rfc9369_client_key[16] = {
    0x8b, 0x1a, 0x0b, 0xc1, 0x21, 0x28, 0x42, 0x90,
    0xa2, 0x9e, 0x09, 0x71, 0xb5, 0xcd, 0x04, 0x5d,
};
static const uint8_t rfc9369_client_iv[12] = {
    0x91, 0xf7, 0x3e, 0x23, 0x51, 0xd8, 0xfa, 0x91, 0x66, 0x0e, 0x90, 0x9f,
};
static const uint8_t rfc9369_client_hp[16] = {
    0x45, 0xb9, 0x5e, 0x15, 0x23, 0x5d, 0x6f, 0x45,
    0xa6, 0xb1, 0x9c, 0xbc, 0xb0, 0x29, 0x4b, 0xa9,
};

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode HEX into OUT (OUT_LEN bytes exactly); fails the test otherwise. */
static void hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
    size_t i;

    assert_int_equal(strlen(hex), out_len * 2);
    for (i = 0; i < out_len; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);

        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

/* Decrypt the single packet in PACKET and return the payload length. */
static size_t decrypt_one(const uint8_t *packet, size_t len, uint32_t version, uint8_t *plain)
{
    cap_quic_long_header hdr;
    cap_quic_keys keys;
    size_t plain_len = 0;

    assert_int_equal(cap_quic_parse_long_header(packet, len, &hdr), FV_OK);
    assert_int_equal(hdr.version, version);
    assert_true(hdr.is_initial);
    assert_int_equal(hdr.packet_len, len);
    assert_int_equal(cap_quic_derive_initial_keys(version, hdr.dcid, hdr.dcid_len, false, &keys),
                     FV_OK);
    assert_int_equal(cap_quic_decrypt_initial(packet, &hdr, &keys, plain, &plain_len), FV_OK);
    return plain_len;
}

static void test_quic_v1_keys_match_rfc9001(void **state)
{
    cap_quic_keys keys;

    (void)state;
    assert_int_equal(cap_quic_derive_initial_keys(CAP_QUIC_VERSION_1, rfc_dcid, sizeof rfc_dcid,
                                                  false, &keys),
                     FV_OK);
    assert_memory_equal(keys.key, rfc9001_client_key, sizeof keys.key);
    assert_memory_equal(keys.iv, rfc9001_client_iv, sizeof keys.iv);
    assert_memory_equal(keys.hp, rfc9001_client_hp, sizeof keys.hp);
}

static void test_quic_v2_keys_match_rfc9369(void **state)
{
    cap_quic_keys keys;

    (void)state;
    assert_int_equal(cap_quic_derive_initial_keys(CAP_QUIC_VERSION_2, rfc_dcid, sizeof rfc_dcid,
                                                  false, &keys),
                     FV_OK);
    assert_memory_equal(keys.key, rfc9369_client_key, sizeof keys.key);
    assert_memory_equal(keys.iv, rfc9369_client_iv, sizeof keys.iv);
    assert_memory_equal(keys.hp, rfc9369_client_hp, sizeof keys.hp);
}

static void test_quic_unknown_version_has_no_keys(void **state)
{
    cap_quic_keys keys;

    (void)state;
    /* 0xff00001d is draft-29, which used another salt. */
    assert_int_equal(cap_quic_derive_initial_keys(0xff00001du, rfc_dcid, sizeof rfc_dcid, false,
                                                  &keys),
                     FV_ERR_INVALID);
}

/* Decrypt the RFC packet of VERSION and check the payload byte for byte. */
static void check_rfc_packet_decrypts(const char *packet_hex, uint32_t version)
{
    uint8_t packet[RFC_PACKET_LEN];
    uint8_t plain[RFC_PACKET_LEN];
    uint8_t frame[RFC_CRYPTO_FRAME_LEN];
    uint8_t zeros[RFC_PAYLOAD_LEN - RFC_CRYPTO_FRAME_LEN];
    size_t plain_len;

    hex_decode(packet_hex, packet, sizeof packet);
    hex_decode(rfc_a2_crypto_frame_hex, frame, sizeof frame);
    memset(zeros, 0, sizeof zeros);

    plain_len = decrypt_one(packet, sizeof packet, version, plain);
    assert_int_equal(plain_len, RFC_PAYLOAD_LEN);
    assert_memory_equal(plain, frame, sizeof frame);
    assert_memory_equal(plain + sizeof frame, zeros, sizeof zeros);
}

static void test_quic_v1_initial_decrypts(void **state)
{
    (void)state;
    check_rfc_packet_decrypts(rfc9001_a2_packet_hex, CAP_QUIC_VERSION_1);
}

static void test_quic_v2_initial_decrypts(void **state)
{
    (void)state;
    check_rfc_packet_decrypts(rfc9369_a2_packet_hex, CAP_QUIC_VERSION_2);
}

static void test_quic_wrong_tag_rejected(void **state)
{
    uint8_t packet[RFC_PACKET_LEN];
    uint8_t plain[RFC_PACKET_LEN];
    cap_quic_long_header hdr;
    cap_quic_keys keys;
    size_t plain_len = 99;
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;

    (void)state;
    hex_decode(rfc9001_a2_packet_hex, packet, sizeof packet);
    packet[RFC_PACKET_LEN - 1] ^= 0x01;     /* last byte of the GCM tag */

    assert_int_equal(cap_quic_parse_long_header(packet, sizeof packet, &hdr), FV_OK);
    assert_int_equal(cap_quic_derive_initial_keys(CAP_QUIC_VERSION_1, hdr.dcid, hdr.dcid_len,
                                                  false, &keys),
                     FV_OK);
    assert_int_equal(cap_quic_decrypt_initial(packet, &hdr, &keys, plain, &plain_len),
                     FV_ERR_CRYPTO);
    assert_int_equal(plain_len, 0);

    /* The flow layer skips the packet and collects nothing. */
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, packet, sizeof packet, &hello),
                     FV_ERR_TRUNCATED);
    assert_null(hello.msg);
    cap_quic_flow_destroy(&flow);
    assert_null(flow);
}

static void test_quic_server_keys_do_not_decrypt_client_packet(void **state)
{
    uint8_t packet[RFC_PACKET_LEN];
    uint8_t plain[RFC_PACKET_LEN];
    cap_quic_long_header hdr;
    cap_quic_keys keys;
    size_t plain_len;

    (void)state;
    hex_decode(rfc9001_a2_packet_hex, packet, sizeof packet);
    assert_int_equal(cap_quic_parse_long_header(packet, sizeof packet, &hdr), FV_OK);
    assert_int_equal(cap_quic_derive_initial_keys(CAP_QUIC_VERSION_1, hdr.dcid, hdr.dcid_len,
                                                  true, &keys),
                     FV_OK);
    assert_int_equal(cap_quic_decrypt_initial(packet, &hdr, &keys, plain, &plain_len),
                     FV_ERR_CRYPTO);
}

static void test_quic_truncated_packets(void **state)
{
    uint8_t packet[RFC_PACKET_LEN];
    cap_quic_long_header hdr;
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;
    /* Cut points: inside the version, inside the DCID, before the Length
     * field, inside the protected payload, one byte short of the tag. */
    static const size_t cuts[] = {3, 9, 17, 600, RFC_PACKET_LEN - 1};
    size_t i;

    (void)state;
    hex_decode(rfc9001_a2_packet_hex, packet, sizeof packet);
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(cap_quic_parse_long_header(packet, cuts[i], &hdr), FV_ERR_TRUNCATED);
        assert_int_equal(cap_quic_flow_datagram(flow, 0, packet, cuts[i], &hello),
                         FV_ERR_TRUNCATED);
        assert_null(hello.msg);
    }
    cap_quic_flow_destroy(&flow);
}

static void test_quic_length_too_short_for_sample(void **state)
{
    /* Version 1 Initial: DCID 8394c8f03e515708, no SCID, no token, Length
     * 10: fewer than the 4 + 16 bytes the header protection sample needs. */
    static const uint8_t packet[] = {
        0xc0, 0x00, 0x00, 0x00, 0x01,                   /* long header, Initial, version 1 */
        0x08, 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08, /* DCID */
        0x00,                                           /* SCID length 0 */
        0x00,                                           /* token length 0 */
        0x0a,                                           /* Length 10 */
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    };
    cap_quic_long_header hdr;
    cap_quic_keys keys;
    uint8_t plain[sizeof packet];
    size_t plain_len;

    (void)state;
    assert_int_equal(cap_quic_parse_long_header(packet, sizeof packet, &hdr), FV_OK);
    assert_int_equal(hdr.packet_len, sizeof packet);
    assert_int_equal(cap_quic_derive_initial_keys(CAP_QUIC_VERSION_1, hdr.dcid, hdr.dcid_len,
                                                  false, &keys),
                     FV_OK);
    assert_int_equal(cap_quic_decrypt_initial(packet, &hdr, &keys, plain, &plain_len),
                     FV_ERR_PARSE);
}

static void test_quic_non_initial_ignored(void **state)
{
    uint8_t packet[RFC_PACKET_LEN];
    cap_quic_long_header hdr;
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;

    (void)state;
    hex_decode(rfc9001_a2_packet_hex, packet, sizeof packet);
    /* Type bits 10: a version 1 Handshake packet, which has no token, so
     * the byte that was the token length becomes Length 0. */
    packet[0] = (uint8_t)((packet[0] & 0xcf) | 0x20);

    assert_int_equal(cap_quic_parse_long_header(packet, sizeof packet, &hdr), FV_OK);
    assert_false(hdr.is_initial);

    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, packet, sizeof packet, &hello),
                     FV_ERR_TRUNCATED);
    assert_null(hello.msg);
    cap_quic_flow_destroy(&flow);
}

static void test_quic_retry_and_short_header_not_parsed(void **state)
{
    /* Version 1 Retry (type bits 11): no Length field, so the datagram
     * cannot be walked past it. */
    static const uint8_t retry[] = {0xf0, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};
    /* Short header (form bit clear) as used after the handshake. */
    static const uint8_t short_header[] = {0x40, 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51};
    /* Version Negotiation: version 0. */
    static const uint8_t version_negotiation[] = {0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    cap_quic_long_header hdr;

    (void)state;
    assert_int_equal(cap_quic_parse_long_header(retry, sizeof retry, &hdr), FV_ERR_UNSUPPORTED);
    assert_int_equal(cap_quic_parse_long_header(short_header, sizeof short_header, &hdr),
                     FV_ERR_PARSE);
    assert_int_equal(cap_quic_parse_long_header(version_negotiation, sizeof version_negotiation,
                                                &hdr),
                     FV_ERR_UNSUPPORTED);
    assert_false(cap_quic_looks_long_header(short_header, sizeof short_header));
    assert_false(cap_quic_looks_long_header(version_negotiation, sizeof version_negotiation));
    assert_true(cap_quic_looks_long_header(retry, sizeof retry));
}

/* Feed PACKET_HEX as one datagram and check the collected ClientHello. */
static void check_flow_collects_hello(const char *packet_hex, uint32_t expected_version)
{
    uint8_t packet[RFC_PACKET_LEN];
    uint8_t frame[RFC_CRYPTO_FRAME_LEN];
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;

    hex_decode(packet_hex, packet, sizeof packet);
    hex_decode(rfc_a2_crypto_frame_hex, frame, sizeof frame);
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 1, packet, sizeof packet, &hello),
                     FV_OK);
    assert_int_equal(hello.version, expected_version);
    assert_false(hello.is_server);
    assert_int_equal(hello.len, RFC_HELLO_LEN);
    /* The hello is the frame minus its 4-byte CRYPTO header (06 00 40f1). */
    assert_memory_equal(hello.msg, frame + 4, RFC_HELLO_LEN);
    cap_quic_flow_destroy(&flow);
}

static void test_quic_flow_collects_v1_hello(void **state)
{
    (void)state;
    check_flow_collects_hello(rfc9001_a2_packet_hex, CAP_QUIC_VERSION_1);
}

static void test_quic_flow_collects_v2_hello(void **state)
{
    (void)state;
    check_flow_collects_hello(rfc9369_a2_packet_hex, CAP_QUIC_VERSION_2);
}

/* Feed the client packet, then the server packet of the same RFC. */
static void check_flow_collects_server_hello(const char *client_hex, const char *server_hex,
                                             uint32_t expected_version)
{
    uint8_t client[RFC_PACKET_LEN];
    uint8_t server[RFC_SERVER_PACKET_LEN];
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;
    cap_tls_hello parsed;

    hex_decode(client_hex, client, sizeof client);
    hex_decode(server_hex, server, sizeof server);
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);

    /* Before any client Initial the server keys are unknown. */
    assert_int_equal(cap_quic_flow_datagram(flow, 1, server, sizeof server, &hello),
                     FV_ERR_TRUNCATED);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, client, sizeof client, &hello), FV_OK);
    assert_false(hello.is_server);
    assert_int_equal(cap_quic_flow_datagram(flow, 1, server, sizeof server, &hello), FV_OK);
    assert_true(hello.is_server);
    assert_int_equal(hello.version, expected_version);
    assert_int_equal(hello.len, RFC_SERVER_HELLO_LEN);
    assert_int_equal(hello.msg[0], 2);      /* ServerHello */

    memset(&parsed, 0, sizeof parsed);
    assert_int_equal(cap_tls_parse_handshake_hello(hello.msg, hello.len, 'q', &parsed), FV_OK);
    assert_true(parsed.is_server);
    assert_int_equal(parsed.server_version, 0x0304);    /* supported_versions: TLS 1.3 */
    assert_int_equal(parsed.server_cipher, 0x1301);     /* TLS_AES_128_GCM_SHA256 */

    /* Each side's hello is returned once. */
    assert_int_equal(cap_quic_flow_datagram(flow, 1, server, sizeof server, &hello),
                     FV_ERR_TRUNCATED);
    cap_quic_flow_destroy(&flow);
}

static void test_quic_flow_collects_v1_server_hello(void **state)
{
    (void)state;
    check_flow_collects_server_hello(rfc9001_a2_packet_hex, rfc9001_a3_server_packet_hex,
                                     CAP_QUIC_VERSION_1);
}

static void test_quic_flow_collects_v2_server_hello(void **state)
{
    (void)state;
    check_flow_collects_server_hello(rfc9369_a2_packet_hex, rfc9369_a3_server_packet_hex,
                                     CAP_QUIC_VERSION_2);
}

static void test_quic_flow_walks_coalesced_packets(void **state)
{
    /* A version 1 Handshake packet (type bits 10) with Length 20 comes
     * first; the walk must step over it to the Initial behind it. */
    static const uint8_t handshake[] = {
        0xe0, 0x00, 0x00, 0x00, 0x01,   /* long header, Handshake, version 1 */
        0x00,                           /* DCID length 0 */
        0x00,                           /* SCID length 0 */
        0x14,                           /* Length 20 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    uint8_t datagram[sizeof handshake + RFC_PACKET_LEN];
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;

    (void)state;
    memcpy(datagram, handshake, sizeof handshake);
    hex_decode(rfc9001_a2_packet_hex, datagram + sizeof handshake, RFC_PACKET_LEN);
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, datagram, sizeof datagram, &hello),
                     FV_OK);
    assert_int_equal(hello.len, RFC_HELLO_LEN);
    cap_quic_flow_destroy(&flow);
}

static void test_quic_flow_fixes_client_direction(void **state)
{
    uint8_t packet[RFC_PACKET_LEN];
    uint8_t broken[RFC_PACKET_LEN];
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;

    (void)state;
    hex_decode(rfc9001_a2_packet_hex, packet, sizeof packet);
    memcpy(broken, packet, sizeof broken);
    broken[RFC_PACKET_LEN - 1] ^= 0x80;     /* fails the tag in either direction */

    /* Direction 0 sends nothing decryptable; direction 1 becomes the
     * client; after that direction 0 is the server, and server keys do
     * not open a client packet. */
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, broken, sizeof broken, &hello),
                     FV_ERR_TRUNCATED);
    assert_int_equal(cap_quic_flow_datagram(flow, 1, packet, sizeof packet, &hello),
                     FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, packet, sizeof packet, &hello),
                     FV_ERR_TRUNCATED);
    assert_null(hello.msg);
    cap_quic_flow_destroy(&flow);
}

static void test_quic_hello_parses_as_tls(void **state)
{
    uint8_t packet[RFC_PACKET_LEN];
    cap_quic_hello hello;
    cap_quic_flow *flow = NULL;
    cap_tls_hello parsed;

    (void)state;
    hex_decode(rfc9001_a2_packet_hex, packet, sizeof packet);
    assert_int_equal(cap_quic_flow_create(&flow), FV_OK);
    assert_int_equal(cap_quic_flow_datagram(flow, 0, packet, sizeof packet, &hello),
                     FV_OK);
    memset(&parsed, 0, sizeof parsed);
    assert_int_equal(cap_tls_parse_handshake_hello(hello.msg, hello.len, 'q', &parsed), FV_OK);
    assert_string_equal(parsed.sni, "example.com");
    assert_int_equal(parsed.alpn_count, 1);
    assert_string_equal(parsed.alpn[0], "alpn");
    assert_int_equal(parsed.ja4[0], 'q');
    cap_quic_flow_destroy(&flow);
}

/* What the engine test's sink received. */
typedef struct quic_sink_state {
    int tls_count;
    cap_tls tls;
    int flow_count;
    cap_flow flow;
} quic_sink_state;

static void quic_sink_on_tls(void *ctx, const cap_tls *tls)
{
    quic_sink_state *st = ctx;

    st->tls_count++;
    st->tls = *tls;
}

static void quic_sink_on_flow(void *ctx, const cap_flow *flow)
{
    quic_sink_state *st = ctx;

    st->flow_count++;
    st->flow = *flow;
}

/* Wrap PAYLOAD in Ethernet, IPv4 (SRC_HOST -> DST_HOST in 192.0.2.0/24)
 * and UDP headers into FRAME; return the frame length. */
static size_t build_udp_frame(uint8_t *frame, uint8_t src_host, uint16_t sport, uint8_t dst_host,
                              uint16_t dport, const uint8_t *payload, size_t payload_len)
{
    size_t ip_len = 20 + 8 + payload_len;
    size_t udp_len = 8 + payload_len;
    static const uint8_t test_net[3] = {192, 0, 2};   /* TEST-NET-1, RFC 5737 */
    uint8_t *ip = frame + 14;
    uint8_t *udp = ip + 20;

    memset(frame, 0, 14 + 20 + 8);
    frame[5] = 0x01;                        /* destination MAC 00:00:00:00:00:01 */
    frame[11] = 0x02;                       /* source MAC 00:00:00:00:00:02 */
    frame[12] = 0x08;                       /* EtherType IPv4 */
    ip[0] = 0x45;                           /* version 4, header 20 bytes */
    ip[2] = (uint8_t)(ip_len >> 8);         /* total length */
    ip[3] = (uint8_t)ip_len;
    ip[8] = 64;                             /* TTL */
    ip[9] = 17;                             /* protocol UDP */
    memcpy(ip + 12, test_net, sizeof test_net);     /* source 192.0.2.SRC_HOST */
    ip[15] = src_host;
    memcpy(ip + 16, test_net, sizeof test_net);     /* destination 192.0.2.DST_HOST */
    ip[19] = dst_host;
    udp[0] = (uint8_t)(sport >> 8);
    udp[1] = (uint8_t)sport;
    udp[2] = (uint8_t)(dport >> 8);
    udp[3] = (uint8_t)dport;
    udp[4] = (uint8_t)(udp_len >> 8);
    udp[5] = (uint8_t)udp_len;
    memcpy(udp + 8, payload, payload_len);
    return 14 + ip_len;
}

static void test_quic_engine_emits_tls_record(void **state)
{
    uint8_t client[RFC_PACKET_LEN];
    uint8_t server[RFC_SERVER_PACKET_LEN];
    uint8_t frame[14 + 20 + 8 + RFC_PACKET_LEN];
    size_t frame_len;
    quic_sink_state seen;
    cap_sink sink;
    cap_engine *eng = NULL;
    cap_stats stats;

    (void)state;
    memset(&seen, 0, sizeof seen);
    memset(&sink, 0, sizeof sink);
    sink.ctx = &seen;
    sink.on_tls = quic_sink_on_tls;
    sink.on_flow = quic_sink_on_flow;
    hex_decode(rfc9001_a2_packet_hex, client, sizeof client);
    hex_decode(rfc9001_a3_server_packet_hex, server, sizeof server);
    assert_int_equal(cap_engine_create(NULL, &sink, &eng), FV_OK);

    /* Client 192.0.2.1:50000 -> server 192.0.2.2:443, then the answer. */
    frame_len = build_udp_frame(frame, 1, 50000, 2, 443, client, sizeof client);
    assert_int_equal(cap_engine_packet(eng, 1, 1000000, frame, (uint32_t)frame_len,
                                       (uint32_t)frame_len),
                     FV_OK);
    assert_int_equal(seen.tls_count, 0);    /* waits for the ServerHello */
    frame_len = build_udp_frame(frame, 2, 443, 1, 50000, server, sizeof server);
    assert_int_equal(cap_engine_packet(eng, 1, 1001000, frame, (uint32_t)frame_len,
                                       (uint32_t)frame_len),
                     FV_OK);

    assert_int_equal(seen.tls_count, 1);
    assert_int_equal(seen.tls.transport, FV_TLS_QUIC);
    assert_int_equal(seen.tls.quic_version, CAP_QUIC_VERSION_1);
    assert_string_equal(seen.tls.sni, "example.com");
    assert_int_equal(seen.tls.client.addr[3], 1);
    assert_int_equal(seen.tls.client_port, 50000);
    assert_int_equal(seen.tls.server_port, 443);
    assert_int_equal(seen.tls.server_cipher, 0x1301);
    assert_int_equal(seen.tls.ja4[0], 'q');
    cap_engine_stats(eng, &stats);
    assert_int_equal(stats.tls_hellos, 1);
    assert_int_equal(stats.tls_malformed, 0);

    cap_engine_destroy(&eng);
    assert_int_equal(seen.flow_count, 1);
    assert_int_equal(seen.flow.app, FV_APP_QUIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quic_v1_keys_match_rfc9001),
        cmocka_unit_test(test_quic_v2_keys_match_rfc9369),
        cmocka_unit_test(test_quic_unknown_version_has_no_keys),
        cmocka_unit_test(test_quic_v1_initial_decrypts),
        cmocka_unit_test(test_quic_v2_initial_decrypts),
        cmocka_unit_test(test_quic_wrong_tag_rejected),
        cmocka_unit_test(test_quic_server_keys_do_not_decrypt_client_packet),
        cmocka_unit_test(test_quic_truncated_packets),
        cmocka_unit_test(test_quic_length_too_short_for_sample),
        cmocka_unit_test(test_quic_non_initial_ignored),
        cmocka_unit_test(test_quic_retry_and_short_header_not_parsed),
        cmocka_unit_test(test_quic_flow_collects_v1_hello),
        cmocka_unit_test(test_quic_flow_collects_v2_hello),
        cmocka_unit_test(test_quic_flow_collects_v1_server_hello),
        cmocka_unit_test(test_quic_flow_collects_v2_server_hello),
        cmocka_unit_test(test_quic_flow_walks_coalesced_packets),
        cmocka_unit_test(test_quic_flow_fixes_client_direction),
        cmocka_unit_test(test_quic_hello_parses_as_tls),
        cmocka_unit_test(test_quic_engine_emits_tls_record),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
