/*
 * e2e_util.h: helpers for the end-to-end tests, which drive the real
 * `flowveil` binary as a child process.
 *
 * Paths come from the environment that flowveil_add_test sets:
 * FLOWVEIL_BIN (the binary), FLOWVEIL_DEMOGEN (the demo generator),
 * FLOWVEIL_CORPUS (the shared capture corpus) and FLOWVEIL_SOURCE_DIR.
 *
 * Caveats
 * - Children run with posix_spawn. Their stdout and stderr go to files in
 *   a directory the caller owns, so a test can read them after exit.
 * - Helpers that fail in a way no test can continue from print why and
 *   call fail() (cmocka), so they may only be called from a test body.
 */
#ifndef FV_E2E_UTIL_H
#define FV_E2E_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* Paths from the environment. Each aborts the test if its variable is unset. */
const char *e2e_bin(void);
const char *e2e_demogen(void);
const char *e2e_corpus(void);
const char *e2e_source_dir(void);

/* How a finished child ended, with what it printed. */
typedef struct e2e_result {
    bool exited;        /* true if it called exit(); false if a signal killed it */
    int status;         /* exit status if exited, else the signal number */
    char *out;          /* whole stdout, NUL-terminated (never NULL) */
    char *err;          /* whole stderr, NUL-terminated (never NULL) */
    size_t out_len, err_len;
} e2e_result;

/* Free the buffers of RES. */
void e2e_result_free(e2e_result *res);

/*
 * Run ARGV (NULL-terminated, argv[0] is the program path) to completion.
 * Stdout and stderr go to WORK_DIR/TAG.out and WORK_DIR/TAG.err; stdin is
 * /dev/null. The child is killed after TIMEOUT_S seconds (reported as
 * killed by SIGKILL). Aborts the test if the child cannot be started.
 */
void e2e_run(const char *const argv[], const char *work_dir, const char *tag,
             unsigned timeout_s, e2e_result *res);

/* Start ARGV in the background with the same redirection; return its pid. */
pid_t e2e_spawn(const char *const argv[], const char *work_dir, const char *tag);

/* Wait up to TIMEOUT_S for PID, killing it with SIGKILL after that. Fill
 * RES with the way it ended and the contents of WORK_DIR/TAG.{out,err}. */
void e2e_wait(pid_t pid, const char *work_dir, const char *tag, unsigned timeout_s,
              e2e_result *res);

/* Return true if TEXT contains an AddressSanitizer, UBSan or LeakSanitizer report. */
bool e2e_has_sanitizer_report(const char *text);

/* Print a one-paragraph description of RES (status and stderr) for a failure. */
void e2e_print_result(const char *what, const e2e_result *res);

/* Return the value of the environment variable NAME, which ctest sets
 * (a program path, say); fail the test if it is missing or empty. */
const char *e2e_env(const char *name);

/* Run ARGV like e2e_run; fail the test with WHAT when it does not exit
 * with status 0 or prints a sanitizer report. */
void e2e_run_ok(const char *const argv[], const char *work_dir, const char *tag,
                const char *what, unsigned timeout_s);

/*
 * Write a policy file at PATH. ZONES_YAML is the text of the "zones:"
 * value (for example "[]"); RETENTION is the retention of every class
 * as a duration ("30d"). Every other key keeps its documented default.
 */
void e2e_write_policy(const char *path, const char *zones_yaml, const char *retention);

/*
 * Run `flowveil export --db DB --class CLS --output FILE [--now NOW_S]`
 * (NOW_S 0 leaves --now out) and return the records as a new JSON array.
 * Fails the test if export fails or a line is not a JSON object.
 */
json_t *e2e_export(const char *work_dir, const char *db, const char *cls, uint64_t now_s);

/* Parse a JSON Lines buffer into a new array; NULL if a line is not an object. */
json_t *e2e_parse_json_lines(const char *text, size_t len);

/*
 * Send "GET PATH HTTP/1.1" to 127.0.0.1:PORT and read the reply until
 * the server closes. Return the body as a new NUL-terminated string and
 * the status code in *STATUS, or NULL if the exchange failed. It
 * authenticates with the API token of the server (e2e_auth_header).
 */
char *e2e_http_get(uint16_t port, const char *path, int *status, size_t *body_len);

/*
 * Send METHOD PATH with the extra header lines HEADERS ("" or lines that
 * end in "\r\n") and JSON_BODY (NULL = no body; else sent as
 * application/json), like e2e_http_get. e2e_http_get sends the
 * Authorization header of e2e_auth_header(PORT).
 */
char *e2e_http_request(uint16_t port, const char *method, const char *path,
                       const char *headers, const char *json_body, int *status,
                       size_t *body_len);

/*
 * The "Authorization: Bearer ...\r\n" line of the admin API token that
 * e2e_serve_start* created (as user "e2e-client", with one token.create
 * audit entry) in the store of the server on PORT, or "" if none.
 */
const char *e2e_auth_header(uint16_t port);

/*
 * Start `flowveil serve --db DB --listen 127.0.0.1:0` and wait for its
 * "flowveil: serving http://ADDR:PORT/" line. Return the pid and store
 * the port in *PORT. Fails the test if the line does not appear within
 * 20 seconds.
 */
pid_t e2e_serve_start(const char *work_dir, const char *db, const char *tag, uint16_t *port);

/*
 * Start serve on a store without users with `--admin-password-file`
 * holding PASSWORD, so the first start creates user "admin" with it.
 * No API token is created: log in with e2e_http_request.
 */
pid_t e2e_serve_start_password(const char *work_dir, const char *db, const char *password,
                               const char *tag, uint16_t *port);

/* The same with `--policy POLICY` added; POLICY NULL leaves it out. */
pid_t e2e_serve_start_policy(const char *work_dir, const char *db, const char *policy,
                             const char *tag, uint16_t *port);

/*
 * Start the serve command line ARGV (for example `setpriv ... -- flowveil
 * serve ...`) and wait for its ready line like e2e_serve_start. Unless
 * ARGV has --admin-password-file, an admin API token is first created in
 * the store of ARGV's --db; e2e_http_get then sends it.
 */
pid_t e2e_serve_start_argv(const char *const argv[], const char *work_dir, const char *tag,
                           uint16_t *port);

/* Build "DIR/NAME" into OUT (4096 bytes). Aborts the test on overflow. */
void e2e_path(char out[4096], const char *dir, const char *name);

/* Sleep for MS milliseconds. */
void e2e_sleep_ms(unsigned ms);

/* Bind a UDP socket to 127.0.0.1 on a kernel-chosen port (stored in
 * *PORT), so test datagrams are received and draw no ICMP
 * port-unreachable replies. Returns the socket; aborts the test on
 * failure. */
int e2e_udp_receiver(uint16_t *port);

/* A TCP socket listening on 127.0.0.1 on a free port, written to *PORT,
 * for tests that need a port in use. The caller closes it. */
int e2e_tcp_listener(uint16_t *port);

/* Send COUNT UDP datagrams to 127.0.0.1:PORT and receive each on
 * RECEIVER (from e2e_udp_receiver), so all of them crossed the loopback
 * interface before the function returns; then close RECEIVER. */
void e2e_send_udp_datagrams(int receiver, uint16_t port, int count);

/* Wait up to TIMEOUT_MS for TEXT to appear in FILE; return true if it did. */
bool e2e_wait_for_text(const char *file, const char *text, unsigned timeout_ms);

#endif /* FV_E2E_UTIL_H */
