/*
 * test_cap_dns_corpus.c: cap_dns_parse against the tshark reference
 * records of the shared capture corpus.
 *
 * Each reference record gives the first question's name as raw wire
 * bytes (name_wire_hex) and in presentation form (name_presentation,
 * null when tshark could not decode the name). The test wraps the wire
 * bytes in a one-question query and checks that the parser returns the
 * same presentation form: equal when it fits FV_NAME_MAX - 1 characters,
 * otherwise a prefix of it; and an error when the reference has null.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cap_proto.h"
#include "testutil.h"

#define WIRE_MAX 1024

typedef struct corpus_counts {
    unsigned names;         /* names compared for equality */
    unsigned escaped;       /* of those, names with a \DDD escape */
    unsigned cut;           /* names compared as a prefix */
    unsigned rejected;      /* names tshark could not decode */
} corpus_counts;

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

/* Decode HEX into OUT; return the byte count. Fails the test on bad hex. */
static size_t hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    assert_true(n / 2 <= out_len);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

/* Check the first question of one reference DNS record. */
static void check_question(const char *file, json_t *record, corpus_counts *counts)
{
    json_t *queries = json_object_get(record, "queries");
    json_t *query = json_array_get(queries, 0);
    if (query == NULL)
        return;

    const char *wire_hex = json_string_value(json_object_get(query, "name_wire_hex"));
    json_t *presentation = json_object_get(query, "name_presentation");
    json_int_t qtype = json_integer_value(json_object_get(query, "type"));
    json_int_t qclass = json_integer_value(json_object_get(query, "class"));
    assert_non_null(wire_hex);

    /* Query header: id 0x4242, RD, QDCOUNT 1; then name, QTYPE, QCLASS. */
    uint8_t msg[12 + WIRE_MAX + 4] = {0x42, 0x42, 0x01, 0x00, 0x00, 0x01};
    size_t wire_len = hex_decode(wire_hex, msg + 12, WIRE_MAX);
    size_t len = 12 + wire_len;
    msg[len++] = (uint8_t)(qtype >> 8);
    msg[len++] = (uint8_t)qtype;
    msg[len++] = (uint8_t)(qclass >> 8);
    msg[len++] = (uint8_t)qclass;

    cap_dns_msg parsed;
    int rc = cap_dns_parse(msg, len, &parsed);
    long frame = (long)json_integer_value(json_object_get(record, "frame"));

    if (json_is_null(presentation)) {
        if (rc == FV_OK)
            fail_msg("%s frame %ld: accepted a name tshark rejects", file, frame);
        counts->rejected++;
        return;
    }

    const char *expected = json_string_value(presentation);
    assert_non_null(expected);
    if (rc != FV_OK)
        fail_msg("%s frame %ld: rc %d for \"%s\"", file, frame, rc, expected);
    assert_int_equal(parsed.qtype, qtype);
    assert_int_equal(parsed.qclass, qclass);

    size_t expected_len = strlen(expected);
    if (expected_len < sizeof(parsed.qname)) {
        if (strcmp(parsed.qname, expected) != 0)
            fail_msg("%s frame %ld: \"%s\", expected \"%s\"", file, frame, parsed.qname,
                     expected);
        counts->names++;
        if (strchr(expected, '\\') != NULL)
            counts->escaped++;
        return;
    }

    /* Too long for the record: a prefix that stops within 3 characters of
     * the end, because an escape is 4 characters and is never split. */
    size_t got_len = strlen(parsed.qname);
    if (got_len + 4 < sizeof(parsed.qname) || strncmp(parsed.qname, expected, got_len) != 0)
        fail_msg("%s frame %ld: \"%s\" is not a full prefix of \"%s\"", file, frame,
                 parsed.qname, expected);
    counts->cut++;
}

static void test_dns_names_match_tshark(void **state)
{
    (void)state;
    const char *corpus = getenv("FLOWVEIL_CORPUS");
    if (corpus == NULL || corpus[0] == '\0')
        skip();

    char dir_path[PATH_MAX];
    int n = snprintf(dir_path, sizeof(dir_path), "%s/expected", corpus);
    assert_true(n > 0 && (size_t)n < sizeof(dir_path));
    DIR *dir = opendir(dir_path);
    if (dir == NULL)
        fail_msg("cannot open %s: set FLOWVEIL_CORPUS to the corpus directory", dir_path);

    corpus_counts counts = {0};
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t name_len = strlen(entry->d_name);
        if (name_len < 5 || strcmp(entry->d_name + name_len - 5, ".json") != 0)
            continue;

        char path[PATH_MAX];
        n = snprintf(path, sizeof(path), "%s/%s", dir_path, entry->d_name);
        assert_true(n > 0 && (size_t)n < sizeof(path));
        json_error_t error;
        json_t *root = json_load_file(path, 0, &error);
        if (root == NULL)
            fail_msg("cannot parse %s: %s", path, error.text);

        size_t i;
        json_t *record;
        json_array_foreach(json_object_get(root, "dns"), i, record)
            check_question(entry->d_name, record, &counts);
        json_decref(root);
    }
    closedir(dir);

    print_message("compared %u names (%u escaped), %u prefixes, %u rejected\n", counts.names,
                  counts.escaped, counts.cut, counts.rejected);
    assert_true(counts.names > 0);
    assert_true(counts.escaped > 0);
    assert_true(counts.cut > 0);
    assert_true(counts.rejected > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_names_match_tshark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
