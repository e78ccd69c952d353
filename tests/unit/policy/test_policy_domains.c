/*
 * Unit tests for the domains section of the policy: the mode, the
 * never-record suffixes and categories, suffix matching on label
 * boundaries, and the rejection messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define ERR_MAX 1024

/* The lines before every never_record list: the list starts on line 5. */
#define NEVER_HEAD "version: 1\nzones: []\ndomains:\n  never_record:\n"

static pol_policy *load_ok(const char *text)
{
    pol_policy *pol = NULL;
    char err[ERR_MAX] = "";
    int rc = pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err);
    if (rc != FV_OK)
        fail_msg("policy rejected: %s", err);
    assert_non_null(pol);
    return pol;
}

/* Check that TEXT is rejected with an error naming LINE and containing
 * every non-NULL fragment. */
static void expect_reject(const char *text, unsigned line, const char *fragment1,
                          const char *fragment2)
{
    pol_policy *pol = NULL;
    char err[ERR_MAX] = "";
    int rc = pol_load_buffer("policy.yaml", text, strlen(text), &pol, err, sizeof err);
    assert_int_equal(rc, FV_ERR_PARSE);
    assert_null(pol);

    char where[32];
    snprintf(where, sizeof where, "policy.yaml:%u:", line);
    if (strstr(err, where) == NULL)
        fail_msg("expected %s in: %s", where, err);
    if (fragment1 != NULL && strstr(err, fragment1) == NULL)
        fail_msg("expected \"%s\" in: %s", fragment1, err);
    if (fragment2 != NULL && strstr(err, fragment2) == NULL)
        fail_msg("expected \"%s\" in: %s", fragment2, err);
}

static void test_domains_default_keep_without_list(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\n");
    assert_int_equal(pol_domain_mode_get(pol), POL_DOMAINS_KEEP);
    assert_int_equal(pol_never_record_count(pol), 0);
    assert_false(pol_domain_never_record(pol, "example-health.org"));
    pol_destroy(&pol);
}

static void test_domains_modes_read_back(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        pol_domain_mode mode;
    } cases[] = {
        {"version: 1\nzones: []\ndomains:\n  mode: keep\n", POL_DOMAINS_KEEP},
        {"version: 1\nzones: []\ndomains:\n  mode: registrable\n", POL_DOMAINS_REGISTRABLE},
        {"version: 1\nzones: []\ndomains:\n  mode: pseudonymize\n", POL_DOMAINS_PSEUDONYMIZE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pol_policy *pol = load_ok(cases[i].text);
        assert_int_equal(pol_domain_mode_get(pol), cases[i].mode);
        assert_string_equal(pol_domain_mode_name(pol_domain_mode_get(pol)),
                            cases[i].mode == POL_DOMAINS_KEEP          ? "keep"
                            : cases[i].mode == POL_DOMAINS_REGISTRABLE ? "registrable"
                                                                       : "pseudonymize");
        pol_destroy(&pol);
    }
}

static void test_never_record_suffix_matches_label_boundary(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\n"
                              "domains:\n"
                              "  never_record:\n"
                              "    suffixes: [\".Example-Health.ORG.\", clinic.example]\n");
    assert_int_equal(pol_never_record_count(pol), 2);
    /* Stored normalized: lower case, without leading and trailing dots. */
    assert_string_equal(pol_never_record_suffix(pol, 0), "example-health.org");
    assert_string_equal(pol_never_record_suffix(pol, 1), "clinic.example");
    assert_null(pol_never_record_suffix(pol, 2));

    assert_true(pol_domain_never_record(pol, "example-health.org"));
    assert_true(pol_domain_never_record(pol, "www.example-health.org"));
    assert_true(pol_domain_never_record(pol, "WWW.EXAMPLE-HEALTH.ORG."));
    assert_true(pol_domain_never_record(pol, "a.b.clinic.example"));
    assert_false(pol_domain_never_record(pol, "notexample-health.org"));
    assert_false(pol_domain_never_record(pol, "example-health.org.evil.com"));
    assert_false(pol_domain_never_record(pol, "health.org"));
    assert_false(pol_domain_never_record(pol, ""));
    pol_destroy(&pol);
}

static void test_never_record_category_expands(void **state)
{
    (void)state;
    pol_policy *pol = load_ok("version: 1\nzones: []\n"
                              "domains:\n"
                              "  mode: registrable\n"
                              "  never_record:\n"
                              "    suffixes: [nhs.uk]\n"
                              "    categories: [health, union]\n");
    assert_true(pol_domain_never_record(pol, "www.nhs.uk"));
    assert_true(pol_domain_never_record(pol, "www.webmd.com"));
    assert_true(pol_domain_never_record(pol, "mitglieder.verdi.de"));
    assert_false(pol_domain_never_record(pol, "www.vatican.va"));
    assert_false(pol_domain_never_record(pol, "example.com"));

    /* nhs.uk from the explicit list and from the health category is kept
     * once. */
    size_t nhs = 0;
    for (size_t i = 0; i < pol_never_record_count(pol); i++)
        nhs += strcmp(pol_never_record_suffix(pol, i), "nhs.uk") == 0;
    assert_int_equal(nhs, 1);

    char summary[8192];
    assert_int_equal(pol_summary(pol, summary, sizeof summary), FV_OK);
    assert_non_null(strstr(summary, "registrable domain"));
    assert_non_null(strstr(summary, "webmd.com"));
    assert_non_null(strstr(summary, "categories health, union"));
    pol_destroy(&pol);
}

static void test_reject_unknown_category_lists_known(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\n"
                  "domains:\n"
                  "  never_record:\n"
                  "    categories: [health, gambling]\n",
                  5, "unknown category (gambling)", "health, politics, religion, union");
}

static void test_reject_unknown_mode(void **state)
{
    (void)state;
    expect_reject("version: 1\nzones: []\ndomains:\n  mode: hash\n", 4, "unknown mode (hash)",
                  "keep, registrable or pseudonymize");
}

static void test_reject_invalid_suffixes(void **state)
{
    (void)state;
    expect_reject(NEVER_HEAD "    suffixes: [\"*.example.org\"]\n", 5,
                  "not a valid domain suffix", "wildcards are not needed");
    expect_reject(NEVER_HEAD "    suffixes: [\"a..b\"]\n", 5,
                  "empty label", NULL);
    expect_reject(NEVER_HEAD "    suffixes: [\"exa mple.org\"]\n", 5,
                  "contains a character", NULL);
    expect_reject(NEVER_HEAD "    suffixes: [\".\"]\n", 5,
                  "it is empty", NULL);
    expect_reject(NEVER_HEAD "    suffixes: example.org\n", 5,
                  "must be a list", NULL);
    expect_reject(NEVER_HEAD "    suffixes: [a.org, A.org]\n", 5,
                  "repeats the suffix \"a.org\"", NULL);
}

static void test_reject_repeated_category_and_unknown_key(void **state)
{
    (void)state;
    expect_reject(NEVER_HEAD "    categories: [union, union]\n", 5,
                  "repeats the category", NULL);
    expect_reject(NEVER_HEAD "    domains: [a.org]\n", 5,
                  "unknown key", "suffixes, categories");
    expect_reject("version: 1\nzones: []\ndomains:\n  keep: true\n", 4, "unknown key",
                  "mode, never_record");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domains_default_keep_without_list),
        cmocka_unit_test(test_domains_modes_read_back),
        cmocka_unit_test(test_never_record_suffix_matches_label_boundary),
        cmocka_unit_test(test_never_record_category_expands),
        cmocka_unit_test(test_reject_unknown_category_lists_known),
        cmocka_unit_test(test_reject_unknown_mode),
        cmocka_unit_test(test_reject_invalid_suffixes),
        cmocka_unit_test(test_reject_repeated_category_and_unknown_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
