/*
 * test_cap_http.c: cap_http_parse_request and cap_http_parse_response on
 * hand-built message heads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cap_proto.h"

/* Parse the NUL-terminated TEXT (its bytes without the NUL). */
static int parse_text(const char *text, cap_http_req *req)
{
    return cap_http_parse_request((const uint8_t *)text, strlen(text), req);
}

static void test_http_parses_get_with_host(void **state)
{
    (void)state;
    cap_http_req req;

    /* GET with Host, a port, and a body after the head. */
    static const char request[] = "GET /index.html?q=1 HTTP/1.1\r\n"
                                  "Host: www.example.com:8080\r\n"
                                  "User-Agent: test\r\n"
                                  "\r\n"
                                  "body bytes";
    assert_int_equal(parse_text(request, &req), FV_OK);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.host, "www.example.com:8080");
    assert_string_equal(req.user_agent, "test");
    assert_int_equal(req.uri_length, strlen("/index.html?q=1"));
    assert_int_equal(req.head_len, strlen(request) - strlen("body bytes"));
    assert_false(req.has_content_length);
}

static void test_http_escapes_user_agent(void **state)
{
    (void)state;
    cap_http_req req;

    /* User-Agent in lower case with a backslash and a 0xff byte, which
     * are escaped like Host; a second User-Agent is ignored. */
    static const char request[] = "GET / HTTP/1.1\r\n"
                                  "user-agent:  Agent\\1 \xff  \r\n"
                                  "User-Agent: second\r\n"
                                  "\r\n";
    assert_int_equal(parse_text(request, &req), FV_OK);
    assert_string_equal(req.user_agent, "Agent\\0921\\032\\255");
}

static void test_http_reports_body_framing(void **state)
{
    (void)state;
    cap_http_req req;

    /* Content-Length 42 and a chunked Transfer-Encoding, names in mixed case. */
    static const char with_length[] = "POST /p HTTP/1.1\r\ncontent-LENGTH: 42\r\n\r\n";
    static const char chunked[] = "POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n";
    static const char bad_length[] = "POST /p HTTP/1.1\r\nContent-Length: 4x\r\n\r\n";

    assert_int_equal(parse_text(with_length, &req), FV_OK);
    assert_true(req.has_content_length);
    assert_int_equal(req.content_length, 42);
    assert_false(req.chunked);
    assert_int_equal(parse_text(chunked, &req), FV_OK);
    assert_true(req.chunked);
    assert_int_equal(parse_text(bad_length, &req), FV_ERR_PARSE);
}

static void test_http_accepts_broken_request_lines(void **state)
{
    (void)state;
    cap_http_req req;

    /* Request lines clients send on real networks (the zeek-methods
     * capture has each of them), with the target length Zeek reports. */
    static const struct {
        const char *text;
        const char *method;
        uint32_t uri_length;
    } cases[] = {
        {"OPTIONS * HTTP/1.1\nHost: h\n\n", "OPTIONS", 1},
        {"OPTIONS HTTP/1.1\nHost: h\n\n", "OPTIONS", 8},     /* no target */
        {"OPTIONS\nHost: h\n\n", "OPTIONS", 0},              /* method alone */
        {"GET / HTTP/1.\nHost: h\n\n", "GET", 1},            /* no minor digit */
        {"GET /HTTP/1.1\nHost: h\n\n", "GET", 9},            /* no space before the version */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_text(cases[i].text, &req), FV_OK);
        assert_string_equal(req.method, cases[i].method);
        assert_int_equal(req.uri_length, cases[i].uri_length);
        assert_string_equal(req.host, "h");
    }
}

/* Parse the NUL-terminated TEXT as a response head. */
static int parse_response_text(const char *text, cap_http_resp *resp)
{
    return cap_http_parse_response((const uint8_t *)text, strlen(text), resp);
}

static void test_http_parses_response_status(void **state)
{
    (void)state;
    cap_http_resp resp;

    /* 404 with a reason phrase and a 9-byte body after the head. */
    static const char response[] = "HTTP/1.1 404 Not Found\r\n"
                                   "Content-Length: 9\r\n"
                                   "\r\n"
                                   "not found";
    assert_int_equal(parse_response_text(response, &resp), FV_OK);
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.head_len, strlen(response) - 9);
    assert_true(resp.has_content_length);
    assert_int_equal(resp.content_length, 9);

    /* No reason phrase at all is valid (RFC 9112 section 4). */
    assert_int_equal(parse_response_text("HTTP/1.0 200\r\n\r\n", &resp), FV_OK);
    assert_int_equal(resp.status, 200);

    /* Every prefix of a response waits for more bytes. */
    for (size_t len = 0; len < strlen(response) - 9; len++)
        assert_int_equal(cap_http_parse_response((const uint8_t *)response, len, &resp),
                         FV_ERR_TRUNCATED);
}

static void test_http_rejects_bad_status_line(void **state)
{
    (void)state;
    cap_http_resp resp;

    static const char *const bad[] = {
        "HTTP/1.1 20 OK\r\n\r\n",     /* two digits */
        "HTTP/1.1 099 X\r\n\r\n",     /* below 100 */
        "HTTP/1.1 2000\r\n\r\n",      /* four digits */
        "HTTP/2 200\r\n\r\n",         /* not HTTP/1.x */
        "GET / HTTP/1.1\r\n\r\n",     /* a request */
        "\x16\x03\x03",                /* a TLS record header */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_response_text(bad[i], &resp), FV_ERR_PARSE);
}

static void test_http_matches_host_without_case(void **state)
{
    (void)state;
    cap_http_req req;

    /* Header name "hOsT", value padded with spaces and tabs. */
    static const char request[] = "POST /form HTTP/1.0\r\n"
                                  "Content-Length: 0\r\n"
                                  "hOsT: \t Example.ORG \t\r\n"
                                  "\r\n";
    assert_int_equal(parse_text(request, &req), FV_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.host, "Example.ORG");

    /* Only the first Host field is reported. */
    static const char two_hosts[] = "GET / HTTP/1.1\r\n"
                                    "HOST: first.example\r\n"
                                    "host: second.example\r\n"
                                    "\r\n";
    assert_int_equal(parse_text(two_hosts, &req), FV_OK);
    assert_string_equal(req.host, "first.example");

    /* "Hosts" and "X-Host" are other fields. */
    static const char near_misses[] = "GET / HTTP/1.1\r\n"
                                      "Hosts: a.example\r\n"
                                      "X-Host: b.example\r\n"
                                      "\r\n";
    assert_int_equal(parse_text(near_misses, &req), FV_OK);
    assert_string_equal(req.host, "");
}

static void test_http_accepts_missing_host(void **state)
{
    (void)state;
    cap_http_req req;

    /* HTTP/1.0 request with no header fields at all. */
    assert_int_equal(parse_text("GET / HTTP/1.0\r\n\r\n", &req), FV_OK);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.host, "");
}

static void test_http_accepts_extension_methods(void **state)
{
    (void)state;
    cap_http_req req;

    /* SSDP's M-SEARCH and a 15-character method, the maximum. */
    assert_int_equal(parse_text("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n", &req),
                     FV_OK);
    assert_string_equal(req.method, "M-SEARCH");
    assert_string_equal(req.host, "239.255.255.250:1900");

    assert_int_equal(parse_text("CCM_POST / HTTP/1.1\r\n\r\n", &req), FV_OK);
    assert_string_equal(req.method, "CCM_POST");

    assert_int_equal(parse_text("ABCDEFGHIJKLMNO / HTTP/1.1\r\n\r\n", &req), FV_OK);
    assert_string_equal(req.method, "ABCDEFGHIJKLMNO");
}

static void test_http_incomplete_head_is_truncated(void **state)
{
    (void)state;
    cap_http_req req;
    static const char request[] = "GET / HTTP/1.1\r\n"
                                  "Host: www.example.com\r\n"
                                  "\r\n";

    /* Every proper prefix waits for more bytes and reports nothing. */
    for (size_t len = 0; len < strlen(request); len++) {
        assert_int_equal(cap_http_parse_request((const uint8_t *)request, len, &req),
                         FV_ERR_TRUNCATED);
        assert_string_equal(req.method, "");
        assert_string_equal(req.host, "");
    }
    assert_int_equal(parse_text(request, &req), FV_OK);
}

static void test_http_rejects_bad_method(void **state)
{
    (void)state;
    cap_http_req req;

    static const char *const bad[] = {
        "get / HTTP/1.1\r\n\r\n",               /* lower case */
        "G3T / HTTP/1.1\r\n\r\n",               /* digit */
        " GET / HTTP/1.1\r\n\r\n",              /* empty method */
        "ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n",  /* 16 characters */
        "\x16\x03\x01\x00\x05",                 /* a TLS record header */
        "GET\t/ HTTP/1.1\r\n\r\n",              /* tab instead of space */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_text(bad[i], &req), FV_ERR_PARSE);

    /* A bad first byte is rejected without waiting for the head. */
    assert_int_equal(parse_text("\x16", &req), FV_ERR_PARSE);
}

static void test_http_rejects_bad_request_line(void **state)
{
    (void)state;
    cap_http_req req;

    static const char *const bad[] = {
        "GET  / HTTP/1.1\r\n\r\n",              /* empty target */
        "GET / HTTP/2.0\r\n\r\n",               /* not HTTP/1.x */
        "GET / HTTP/1.1 extra\r\n\r\n",         /* bytes after the version */
        "GET /\x01 HTTP/1.1\r\n\r\n",           /* control byte in the target */
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",    /* header without a colon */
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",   /* space before the colon */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",        /* empty field name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_text(bad[i], &req), FV_ERR_PARSE);
}

static void test_http_rejects_oversized_head(void **state)
{
    (void)state;
    cap_http_req req;
    static char request[33000];

    /* "GET / HTTP/1.1\r\n", then a field "X: aaa..." whose value is
     * sized so that the head, with its final CRLF CRLF, has the length
     * passed to the parser. */
    const char *line = "GET / HTTP/1.1\r\nX: ";
    size_t prefix = strlen(line);

    /* A 12,000-byte cookie, which some servers reject: still read. */
    memset(request, 'a', sizeof(request));
    memcpy(request, line, prefix);
    memcpy(request + 12000 - 4, "\r\n\r\n", 4);
    assert_int_equal(cap_http_parse_request((const uint8_t *)request, 12000, &req), FV_OK);
    assert_int_equal(req.head_len, 12000);

    /* 32768 bytes exactly: accepted. */
    memset(request, 'a', sizeof(request));
    memcpy(request, line, prefix);
    memcpy(request + 32768 - 4, "\r\n\r\n", 4);
    assert_int_equal(cap_http_parse_request((const uint8_t *)request, 32768, &req), FV_OK);

    /* 32769 bytes: rejected, whether the end is present or not. */
    memset(request, 'a', sizeof(request));
    memcpy(request, line, prefix);
    memcpy(request + 32769 - 4, "\r\n\r\n", 4);
    assert_int_equal(cap_http_parse_request((const uint8_t *)request, 32769, &req), FV_ERR_PARSE);
    assert_int_equal(cap_http_parse_request((const uint8_t *)request, 32768, &req), FV_ERR_PARSE);

    /* Below 32 KiB with no end yet: still waiting. */
    assert_int_equal(cap_http_parse_request((const uint8_t *)request, 32767, &req),
                     FV_ERR_TRUNCATED);
}

static void test_http_accepts_bare_lf_head(void **state)
{
    (void)state;
    cap_http_req req;

    /* Lines ended by LF alone, as in Zeek's methods trace. */
    assert_int_equal(parse_text("HEAD / HTTP/1.1\nHost: www.google.com\n\n", &req), FV_OK);
    assert_string_equal(req.method, "HEAD");
    assert_string_equal(req.host, "www.google.com");

    /* CRLF and LF mixed. */
    assert_int_equal(parse_text("PUT /x HTTP/1.1\r\nHost: a.example\n\r\n", &req), FV_OK);
    assert_string_equal(req.host, "a.example");

    /* A bare LF head that has not ended yet. */
    assert_int_equal(parse_text("HEAD / HTTP/1.1\nHost: www.google.com\n", &req),
                     FV_ERR_TRUNCATED);
}

static void test_http_escapes_host_bytes(void **state)
{
    (void)state;
    cap_http_req req;

    /* Host value with a Latin-1 byte, an inner space, a backslash and DEL. */
    static const char request[] = "GET / HTTP/1.1\r\n"
                                  "Host: caf\xe9 x\\\x7f\r\n"
                                  "\r\n";
    assert_int_equal(parse_text(request, &req), FV_OK);
    assert_string_equal(req.host, "caf\\233\\032x\\092\\127");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_parses_get_with_host),
        cmocka_unit_test(test_http_escapes_user_agent),
        cmocka_unit_test(test_http_reports_body_framing),
        cmocka_unit_test(test_http_accepts_broken_request_lines),
        cmocka_unit_test(test_http_parses_response_status),
        cmocka_unit_test(test_http_rejects_bad_status_line),
        cmocka_unit_test(test_http_matches_host_without_case),
        cmocka_unit_test(test_http_accepts_missing_host),
        cmocka_unit_test(test_http_accepts_extension_methods),
        cmocka_unit_test(test_http_incomplete_head_is_truncated),
        cmocka_unit_test(test_http_rejects_bad_method),
        cmocka_unit_test(test_http_rejects_bad_request_line),
        cmocka_unit_test(test_http_rejects_oversized_head),
        cmocka_unit_test(test_http_accepts_bare_lf_head),
        cmocka_unit_test(test_http_escapes_host_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
