/*
 * test_config: the daemon settings file (cli/config.c): each key becomes
 * its command-line option, every mistake is reported with its line and
 * column, and command-line options win over the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "fv_common.h"
#include "testutil.h"

typedef struct fixture {
    char dir[4096];
    char path[4200];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    snprintf(fx->path, sizeof fx->path, "%s/flowveil.conf", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx);
    return 0;
}

static void write_config(const fixture *fx, const char *text)
{
    tu_write_file(fx->path, text, strlen(text));
}

/* Join the option words of ARGS with spaces into OUT. */
static void join_words(const fv_config_args *args, char *out, size_t out_len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < args->argc; i++) {
        int n = snprintf(out + used, out_len - used, "%s%s", i ? " " : "", args->argv[i]);
        assert_true(n > 0 && (size_t)n < out_len - used);
        used += (size_t)n;
    }
}

static const char full_config[] =
    "data_dir: /var/lib/flowveil\n"
    "policy: /etc/flowveil/policy.yaml\n"
    "log:\n"
    "  target: syslog\n"
    "  level: info\n"
    "capture:\n"
    "  interfaces: [eth1, eth2]\n"
    "  user: flowveil-capture\n"
    "  chroot: true\n"
    "  snaplen: 1600\n"
    "  buffer_size_mib: 128\n"
    "  workers: 2\n"
    "serve:\n"
    "  listen: 127.0.0.1:8443\n"
    "  tls_cert: /etc/flowveil/tls/cert.pem\n"
    "  tls_key: /etc/flowveil/tls/key.pem\n";

static void test_config_capture_options(void **state)
{
    fixture *fx = *state;
    write_config(fx, full_config);
    fv_config_args args;
    char err[512] = "";
    assert_int_equal(fv_config_load(fx->path, "capture", &args, err, sizeof err), FV_OK);
    char words[1024];
    join_words(&args, words, sizeof words);
    assert_string_equal(words, "--db /var/lib/flowveil --policy /etc/flowveil/policy.yaml "
                               "--interface eth1 --interface eth2 --user flowveil-capture "
                               "--chroot --snaplen 1600 --buffer-size 128 --workers 2");
    assert_string_equal(args.log_target, "syslog");
    assert_string_equal(args.log_level, "info");
    fv_config_args_free(&args);
}

static void test_config_serve_options(void **state)
{
    fixture *fx = *state;
    write_config(fx, full_config);
    fv_config_args args;
    char err[512] = "";
    assert_int_equal(fv_config_load(fx->path, "serve", &args, err, sizeof err), FV_OK);
    char words[1024];
    join_words(&args, words, sizeof words);
    assert_string_equal(words, "--db /var/lib/flowveil --policy /etc/flowveil/policy.yaml "
                               "--listen 127.0.0.1:8443 --tls-cert /etc/flowveil/tls/cert.pem "
                               "--tls-key /etc/flowveil/tls/key.pem");
    fv_config_args_free(&args);
}

/* Load TEXT for capture and check that it fails with CODE and that the
 * message starts with PATH:WHERE and contains REASON. */
static void expect_error(const fixture *fx, const char *text, int code, const char *where,
                         const char *reason)
{
    write_config(fx, text);
    fv_config_args args;
    char err[1024] = "";
    assert_int_equal(fv_config_load(fx->path, "capture", &args, err, sizeof err), code);
    fv_config_args_free(&args);
    char prefix[4300];
    snprintf(prefix, sizeof prefix, "%s:%s: ", fx->path, where);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, reason) == NULL)
        fail_msg("expected '%s...%s', got '%s'", prefix, reason, err);
}

static void test_config_unknown_key(void **state)
{
    expect_error(*state, "capture:\n  interface: eth0\n", FV_ERR_INVALID, "2:3",
                 "unknown key 'interface' in section capture; the valid keys here are: "
                 "interfaces,");
}

static void test_config_unknown_section(void **state)
{
    expect_error(*state, "data_dir: /x\nexport:\n  a: 1\n", FV_ERR_INVALID, "2:1",
                 "unknown key 'export'");
}

static void test_config_duplicate_key(void **state)
{
    expect_error(*state, "policy: /a.yaml\npolicy: /b.yaml\n", FV_ERR_INVALID, "2:1",
                 "key 'policy' appears twice");
}

static void test_config_duplicate_section(void **state)
{
    expect_error(*state, "log:\n  level: info\nlog:\n  target: syslog\n", FV_ERR_INVALID, "3:1",
                 "section log appears twice");
}

static void test_config_relative_path(void **state)
{
    expect_error(*state, "data_dir: var/lib/flowveil\n", FV_ERR_INVALID, "1:11",
                 "data_dir must be an absolute path");
}

static void test_config_snaplen_range(void **state)
{
    expect_error(*state, "capture:\n  snaplen: 100\n", FV_ERR_INVALID, "2:12",
                 "snaplen must be a whole number from 256 to 262144, got '100'");
}

static void test_config_interfaces_type(void **state)
{
    expect_error(*state, "capture:\n  interfaces: eth0\n", FV_ERR_INVALID, "2:15",
                 "interfaces must be a list");
}

static void test_config_bool_value(void **state)
{
    expect_error(*state, "capture:\n  chroot: maybe\n", FV_ERR_INVALID, "2:11",
                 "chroot must be true or false, got 'maybe'");
}

static void test_config_log_level(void **state)
{
    expect_error(*state, "log:\n  level: loud\n", FV_ERR_INVALID, "2:10",
                 "log level 'loud' is invalid");
}

static void test_config_yaml_syntax(void **state)
{
    expect_error(*state, "capture:\n  interfaces: [eth0\n", FV_ERR_PARSE, "3:1", "invalid YAML");
}

static void test_config_missing_file(void **state)
{
    fixture *fx = *state;
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/none.conf", fx->dir);
    fv_config_args args;
    char err[1024] = "";
    assert_int_equal(fv_config_load(missing, "capture", &args, err, sizeof err), FV_ERR_IO);
    assert_non_null(strstr(err, "No such file"));
    fv_config_args_free(&args);
}

static void test_config_command_line_wins(void **state)
{
    fixture *fx = *state;
    write_config(fx, "data_dir: /srv/store\ncapture:\n  interfaces: [eth1, eth2]\n"
                     "  snaplen: 1600\nlog:\n  target: stderr\n");
    char w[9][4300];
    const char *const words_in[] = {"flowveil", "capture", "--config", fx->path, "-i",
                                    "eth9", "--snaplen=2000", "--log-level", "debug"};
    char *in[10];
    for (int i = 0; i < 9; i++) {
        snprintf(w[i], sizeof w[i], "%s", words_in[i]);
        in[i] = w[i];
    }
    in[9] = NULL;
    int argc = 9;
    char **argv = in;
    assert_int_equal(fv_config_prepare_argv(&argc, &argv), -1);
    char words[1024];
    size_t used = 0;
    words[0] = '\0';
    for (int i = 0; i < argc; i++)
        used += (size_t)snprintf(words + used, sizeof words - used, "%s%s", i ? " " : "",
                                 argv[i]);
    /* The file's interfaces and snap length give way; its store stays. */
    assert_string_equal(words, "flowveil capture --db /srv/store -i eth9 --snaplen=2000");
    assert_null(argv[argc]);
}

static void test_config_other_commands_untouched(void **state)
{
    (void)state;
    char w[4][32] = {"flowveil", "ingest", "--config", "/nonexistent"};
    char *in[] = {w[0], w[1], w[2], w[3], NULL};
    int argc = 4;
    char **argv = in;
    assert_int_equal(fv_config_prepare_argv(&argc, &argv), -1);
    assert_int_equal(argc, 4);
    assert_ptr_equal(argv, in);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_config_capture_options),  T(test_config_serve_options),
        T(test_config_unknown_key),      T(test_config_unknown_section),
        T(test_config_duplicate_key),    T(test_config_duplicate_section),
        T(test_config_relative_path),    T(test_config_snaplen_range),
        T(test_config_interfaces_type),  T(test_config_bool_value),
        T(test_config_log_level),        T(test_config_yaml_syntax),
        T(test_config_missing_file),     T(test_config_command_line_wins),
        T(test_config_other_commands_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
