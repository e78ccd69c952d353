/*
 * test_domains_never_record: ingesting the demo capture with a policy
 * whose domains.never_record lists one of the demo's site names drops
 * every DNS, TLS and HTTP record naming it. The name then appears in no
 * file of the store (the pseudonym key aside), in no export, and
 * /api/v1/counters shows how many records were dropped per class. A
 * baseline ingest without the list shows the name is in the demo and
 * gives the expected counts.
 */
#define _GNU_SOURCE /* strcasestr */

#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "testutil.h"

#define NOW_S 1767225600ull /* 2026-01-01T00:00:00Z */

/* A site of tools/demogen/demogen.c that the office hosts browse over
 * HTTPS, so it appears in DNS questions and TLS server names. */
#define NEVER_NAME "wiki.example.org"

static const char *const classes[] = {"flows", "dns", "tls", "http", "dhcp", "ssh", "alerts"};
#define CLASS_COUNT (sizeof classes / sizeof classes[0])

typedef struct ingest_run {
    size_t records[CLASS_COUNT];    /* exported records per class */
    size_t naming[CLASS_COUNT];     /* of which mention NEVER_NAME */
} ingest_run;

static void write_policy(const char *path, const char *domains_yaml)
{
    e2e_write_policy(path, "[{name: office, networks: [\"10.0.0.0/8\", \"fd00::/8\"]}]", "30d");
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    assert_true(fputs(domains_yaml, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void ingest(const char *dir, const char *policy, const char *db, const char *demo)
{
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%llu", NOW_S);
    assert_int_equal(mkdir(db, 0700), 0);
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", db,
                          "--now", now_text, demo, NULL};
    e2e_result res;
    e2e_run(argv, dir, "ingest", 300, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil ingest", &res);
        fail_msg("ingest failed");
    }
    assert_null(strcasestr(res.err, NEVER_NAME));
    assert_null(strcasestr(res.out, NEVER_NAME));
    e2e_result_free(&res);
}

/* Export every class of DB and count the records and those naming
 * NEVER_NAME (in any case). */
static void export_all(const char *dir, const char *db, ingest_run *out)
{
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        json_t *records = e2e_export(dir, db, classes[c], NOW_S);
        assert_non_null(records);
        out->records[c] = json_array_size(records);
        out->naming[c] = 0;
        size_t i;
        json_t *rec;
        json_array_foreach(records, i, rec) {
            char *text = json_dumps(rec, JSON_COMPACT);
            assert_non_null(text);
            out->naming[c] += strcasestr(text, NEVER_NAME) != NULL;
            free(text);
        }
        json_decref(records);
    }
}

/* Fail if NEVER_NAME occurs in any file of DB but the pseudonym key. */
static void expect_name_absent_from_files(const char *db)
{
    DIR *d = opendir(db);
    assert_non_null(d);
    struct dirent *e;
    size_t scanned = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "pseudonym.key") == 0)
            continue;
        char path[4096];
        e2e_path(path, db, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t len = 0;
        char *data = tu_read_file(path, &len);
        assert_non_null(data);
        if (tu_memmem_found(data, len, NEVER_NAME, strlen(NEVER_NAME)))
            fail_msg("%s contains %s", path, NEVER_NAME);
        free(data);
        scanned++;
    }
    closedir(d);
    assert_true(scanned > 0);
}

/* The capture counter NAME from /api/v1/counters of DB, or -1 if absent. */
static json_int_t api_counter(const char *dir, const char *db, const char *name)
{
    uint16_t port = 0;
    pid_t pid = e2e_serve_start(dir, db, "serve", &port);
    int status = 0;
    size_t len = 0;
    char *body = e2e_http_get(port, "/api/v1/counters", &status, &len);
    kill(pid, SIGTERM);
    e2e_result res;
    e2e_wait(pid, dir, "serve", 20, &res);
    e2e_result_free(&res);

    assert_non_null(body);
    assert_int_equal(status, 200);
    assert_null(strcasestr(body, NEVER_NAME));
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    free(body);
    assert_non_null(doc);
    json_t *value = json_object_get(json_object_get(doc, "capture"), name);
    json_int_t n = json_is_integer(value) ? json_integer_value(value) : -1;
    json_decref(doc);
    return n;
}

static size_t class_index(const char *name)
{
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        if (strcmp(classes[c], name) == 0)
            return c;
    }
    fail_msg("unknown class %s", name);
    return 0;
}

static void test_never_record_suffix_drops_and_counts(void **state)
{
    (void)state;
    char dir[512], demo[4096], policy_keep[4096], policy_never[4096], db_keep[4096],
        db_never[4096];
    tu_make_temp_dir(dir, sizeof dir);
    e2e_path(demo, dir, "demo.pcap");
    e2e_path(policy_keep, dir, "keep.yaml");
    e2e_path(policy_never, dir, "never.yaml");
    e2e_path(db_keep, dir, "db-keep");
    e2e_path(db_never, dir, "db-never");

    const char *gen[] = {e2e_demogen(), "--output", demo, NULL};
    e2e_result res;
    e2e_run(gen, dir, "demogen", 120, &res);
    if (!res.exited || res.status != 0) {
        e2e_print_result("demo generator", &res);
        fail();
    }
    e2e_result_free(&res);

    write_policy(policy_keep, "");
    /* The suffix is written in another case to check case-insensitive
     * matching end to end. */
    write_policy(policy_never, "domains:\n"
                               "  never_record:\n"
                               "    suffixes: [\"Wiki.Example.ORG\"]\n");

    /* Baseline: the name is in the demo's DNS and TLS records. */
    ingest_run keep, never;
    ingest(dir, policy_keep, db_keep, demo);
    export_all(dir, db_keep, &keep);
    size_t dns = class_index("dns"), tls = class_index("tls"), http = class_index("http");
    printf("baseline records naming %s: dns %zu, tls %zu, http %zu\n", NEVER_NAME,
           keep.naming[dns], keep.naming[tls], keep.naming[http]);
    assert_true(keep.naming[dns] > 0);
    assert_true(keep.naming[tls] > 0);
    /* Without a never-record list no counter is written. */
    assert_int_equal(api_counter(dir, db_keep, "names_never_recorded_dns"), -1);

    ingest(dir, policy_never, db_never, demo);
    export_all(dir, db_never, &never);
    for (size_t c = 0; c < CLASS_COUNT; c++) {
        if (never.naming[c] != 0)
            fail_msg("the %s export still names %s", classes[c], NEVER_NAME);
        /* Exactly the naming records are gone; flows and the rest stay. */
        assert_int_equal(never.records[c], keep.records[c] - keep.naming[c]);
    }
    assert_true(never.records[dns] > 0);
    assert_true(never.records[tls] > 0);
    assert_true(never.records[class_index("flows")] > 0);

    expect_name_absent_from_files(db_never);

    assert_int_equal(api_counter(dir, db_never, "names_never_recorded_dns"),
                     (json_int_t)keep.naming[dns]);
    assert_int_equal(api_counter(dir, db_never, "names_never_recorded_tls"),
                     (json_int_t)keep.naming[tls]);
    /* The store writes no zero counter: absent means none dropped. */
    json_int_t http_dropped = api_counter(dir, db_never, "names_never_recorded_http");
    assert_int_equal(http_dropped < 0 ? 0 : http_dropped, (json_int_t)keep.naming[http]);

    tu_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_record_suffix_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
