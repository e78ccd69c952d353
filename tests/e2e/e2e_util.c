#include "e2e_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

extern char **environ;

const char *e2e_env(const char *name)
{
    const char *v = tu_env(name, NULL);
    if (v == NULL) {
        fprintf(stderr, "e2e: environment variable %s is not set; run the test through ctest\n",
                name);
        fail();
    }
    return v;
}

const char *e2e_bin(void)
{
    return e2e_env("FLOWVEIL_BIN");
}

const char *e2e_demogen(void)
{
    return e2e_env("FLOWVEIL_DEMOGEN");
}

const char *e2e_corpus(void)
{
    return e2e_env("FLOWVEIL_CORPUS");
}

const char *e2e_source_dir(void)
{
    return e2e_env("FLOWVEIL_SOURCE_DIR");
}

void e2e_path(char out[4096], const char *dir, const char *name)
{
    int n = snprintf(out, 4096, "%s/%s", dir, name);
    if (n < 0 || n >= 4096) {
        fprintf(stderr, "e2e: path too long: %s/%s\n", dir, name);
        fail();
    }
}

void e2e_result_free(e2e_result *res)
{
    free(res->out);
    free(res->err);
    res->out = NULL;
    res->err = NULL;
}

/* Every process e2e_spawn started, so that those still running when the
 * test program exits are killed: a failed assertion skips the kill and
 * wait that would have ended a server, and it would idle on after the
 * test. */
static pid_t spawned[1024];
static size_t spawned_count;

static void kill_spawned_at_exit(void)
{
    for (size_t i = 0; i < spawned_count; i++) {
        int wstatus = 0;
        /* 0: still our child and running. An exited or already reaped
         * process returns its pid or -1 and is left alone, so only
         * running children of this process are signalled, never a
         * process that was given a reaped child's pid elsewhere. */
        if (waitpid(spawned[i], &wstatus, WNOHANG) == 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], &wstatus, 0);
        }
    }
}

static void remember_spawned(pid_t pid)
{
    if (spawned_count == 0 && atexit(kill_spawned_at_exit) != 0)
        fprintf(stderr, "e2e: atexit failed, so a failed test may leave the processes it "
                        "started running\n");
    if (spawned_count < sizeof spawned / sizeof spawned[0])
        spawned[spawned_count++] = pid;
}

pid_t e2e_spawn(const char *const argv[], const char *work_dir, const char *tag)
{
    char out_path[4096], err_path[4096], name[256];
    snprintf(name, sizeof name, "%s.out", tag);
    e2e_path(out_path, work_dir, name);
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(err_path, work_dir, name);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    pid_t pid = -1;
    /* posix_spawn takes char *const argv[]; the strings are not modified. */
    int rc = posix_spawn(&pid, argv[0], &actions, NULL, (char *const *)(uintptr_t)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        fprintf(stderr, "e2e: cannot start %s: %s\n", argv[0], strerror(rc));
        fail();
    }
    remember_spawned(pid);
    return pid;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *read_or_empty(const char *path, size_t *len)
{
    char *text = tu_read_file(path, len);
    if (text == NULL) {
        text = calloc(1, 1);
        *len = 0;
    }
    assert_non_null(text);
    return text;
}

void e2e_wait(pid_t pid, const char *work_dir, const char *tag, unsigned timeout_s,
              e2e_result *res)
{
    int wstatus = 0;
    unsigned waited_ms = 0;
    for (;;) {
        pid_t r = waitpid(pid, &wstatus, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "e2e: waitpid failed for %s: %s\n", tag, strerror(errno));
            fail();
        }
        if (waited_ms >= timeout_s * 1000u) {
            fprintf(stderr, "e2e: %s still running after %u s; killing it\n", tag, timeout_s);
            kill(pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            break;
        }
        sleep_ms(10);
        waited_ms += 10;
    }

    res->exited = WIFEXITED(wstatus);
    res->status = res->exited ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus);

    char path[4096], name[256];
    snprintf(name, sizeof name, "%s.out", tag);
    e2e_path(path, work_dir, name);
    res->out = read_or_empty(path, &res->out_len);
    snprintf(name, sizeof name, "%s.err", tag);
    e2e_path(path, work_dir, name);
    res->err = read_or_empty(path, &res->err_len);
}

void e2e_run(const char *const argv[], const char *work_dir, const char *tag,
             unsigned timeout_s, e2e_result *res)
{
    pid_t pid = e2e_spawn(argv, work_dir, tag);
    e2e_wait(pid, work_dir, tag, timeout_s, res);
}

bool e2e_has_sanitizer_report(const char *text)
{
    return strstr(text, "AddressSanitizer") != NULL || strstr(text, "runtime error") != NULL ||
           strstr(text, "LeakSanitizer") != NULL;
}

void e2e_print_result(const char *what, const e2e_result *res)
{
    fprintf(stderr, "%s: %s %d\n--- stderr ---\n%s--- end ---\n", what,
            res->exited ? "exit status" : "killed by signal", res->status, res->err);
}

void e2e_run_ok(const char *const argv[], const char *work_dir, const char *tag,
                const char *what, unsigned timeout_s)
{
    e2e_result res;
    e2e_run(argv, work_dir, tag, timeout_s, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result(what, &res);
        e2e_result_free(&res);
        fail_msg("%s failed", what);
    }
    e2e_result_free(&res);
}

void e2e_write_policy(const char *path, const char *zones_yaml, const char *retention)
{
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "version: 1\n"
                     "zones: %s\n"
                     "retention:\n"
                     "  flows: %s\n"
                     "  dns: %s\n"
                     "  tls: %s\n"
                     "  http: %s\n"
                     "  alerts: %s\n"
                     "  dhcp: %s\n"
                     "  ssh: %s\n",
                     zones_yaml, retention, retention, retention, retention, retention, retention,
                     retention);
    assert_true(n > 0 && (size_t)n < sizeof text);
    tu_write_file(path, text, (size_t)n);
}

json_t *e2e_parse_json_lines(const char *text, size_t len)
{
    json_t *arr = json_array();
    size_t pos = 0;
    while (arr != NULL && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = (nl != NULL) ? (size_t)(nl - (text + pos)) : len - pos;
        if (line_len > 0) {
            json_error_t jerr;
            json_t *obj = json_loadb(text + pos, line_len, 0, &jerr);
            if (obj == NULL || !json_is_object(obj)) {
                fprintf(stderr, "e2e: JSON Lines line is not an object: %s\n", jerr.text);
                json_decref(obj);
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, obj);
        }
        pos += line_len + 1;
    }
    return arr;
}

json_t *e2e_export(const char *work_dir, const char *db, const char *cls, uint64_t now_s)
{
    char out_path[4096], name[256], tag[128], now_text[32];
    snprintf(name, sizeof name, "export-%s.jsonl", cls);
    e2e_path(out_path, work_dir, name);
    snprintf(tag, sizeof tag, "export-%s", cls);
    snprintf(now_text, sizeof now_text, "%llu", (unsigned long long)now_s);

    const char *argv[] = {e2e_bin(), "export", "--db",     db,       "--class", cls,
                          "--output", out_path, "--now", now_text, NULL};
    if (now_s == 0)
        argv[8] = NULL;

    e2e_result res;
    e2e_run(argv, work_dir, tag, 120, &res);
    if (!res.exited || res.status != 0 || e2e_has_sanitizer_report(res.err)) {
        e2e_print_result("flowveil export", &res);
        e2e_result_free(&res);
        fail();
    }
    e2e_result_free(&res);

    size_t len = 0;
    char *text = tu_read_file(out_path, &len);
    if (text == NULL) {
        fprintf(stderr, "e2e: export wrote no file %s\n", out_path);
        fail();
    }
    json_t *arr = e2e_parse_json_lines(text, len);
    free(text);
    if (arr == NULL)
        fail();
    return arr;
}

/* Decode a chunked body in place; return the decoded length. */
static size_t dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char *end = NULL;
        unsigned long chunk = strtoul(body + in, &end, 16);
        char *crlf = strstr(body + in, "\r\n");
        if (crlf == NULL || end == body + in)
            break;
        in = (size_t)(crlf - body) + 2;
        if (chunk == 0 || chunk > len - in)
            break;
        memmove(body + out, body + in, chunk);
        out += chunk;
        in += chunk + 2;
    }
    body[out] = '\0';
    return out;
}

/* API tokens of the servers started by e2e_serve_start*, by port, so
 * e2e_http_get can authenticate without changing its callers. */
#define E2E_TOKENS_MAX 16
static struct {
    uint16_t port;
    char header[160];   /* "Authorization: Bearer fvt_...\r\n" */
} e2e_tokens[E2E_TOKENS_MAX];
static char e2e_pending_token[160];

/* Create an admin API token in DB for the server about to start; the
 * ready line's port is attached to it in e2e_serve_start_argv. */
static void e2e_prepare_token(const char *work_dir, const char *db)
{
    const char *argv[] = {e2e_bin(), "token", "create", "e2e-client", "--role", "admin",
                          "--db", db, NULL};
    e2e_result res;
    e2e_run(argv, work_dir, "e2e-token", 30, &res);
    if (!res.exited || res.status != 0) {
        e2e_print_result("flowveil token create", &res);
        e2e_result_free(&res);
        fail();
    }
    size_t len = strcspn(res.out, "\r\n");
    snprintf(e2e_pending_token, sizeof e2e_pending_token, "Authorization: Bearer %.*s\r\n",
             (int)len, res.out);
    e2e_result_free(&res);
}

static void e2e_token_register(uint16_t port)
{
    if (e2e_pending_token[0] == '\0')
        return;
    size_t slot = 0;
    for (size_t i = 0; i < E2E_TOKENS_MAX; i++) {
        if (e2e_tokens[i].port == port || e2e_tokens[i].port == 0) {
            slot = i;
            break;
        }
    }
    e2e_tokens[slot].port = port;
    snprintf(e2e_tokens[slot].header, sizeof e2e_tokens[slot].header, "%s", e2e_pending_token);
    e2e_pending_token[0] = '\0';
}

const char *e2e_auth_header(uint16_t port)
{
    for (size_t i = 0; i < E2E_TOKENS_MAX; i++) {
        if (e2e_tokens[i].port == port)
            return e2e_tokens[i].header;
    }
    return "";
}

char *e2e_http_get(uint16_t port, const char *path, int *status, size_t *body_len)
{
    return e2e_http_request(port, "GET", path, e2e_auth_header(port), NULL, status, body_len);
}

char *e2e_http_request(uint16_t port, const char *method, const char *path,
                       const char *headers, const char *json_body, int *status,
                       size_t *body_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }

    char req[4096];
    int n;
    if (json_body != NULL)
        n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, headers, strlen(json_body), json_body);
    else
        n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
                     method, path, headers);
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, 0) != n) {
        close(fd);
        return NULL;
    }

    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2 + 1);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf == NULL)
        return NULL;
    buf[len] = '\0';

    char *head_end = strstr(buf, "\r\n\r\n");
    if (head_end == NULL || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        free(buf);
        return NULL;
    }
    *head_end = '\0';
    bool chunked = false;
    for (char *line = strstr(buf, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Transfer-Encoding:", 18) == 0 &&
            strstr(line + 2, "chunked") != NULL)
            chunked = true;
    }

    char *body_start = head_end + 4;
    size_t blen = len - (size_t)(body_start - buf);
    memmove(buf, body_start, blen);
    buf[blen] = '\0';
    if (chunked)
        blen = dechunk(buf, blen);
    *body_len = blen;
    return buf;
}

pid_t e2e_serve_start(const char *work_dir, const char *db, const char *tag, uint16_t *port)
{
    return e2e_serve_start_policy(work_dir, db, NULL, tag, port);
}

pid_t e2e_serve_start_policy(const char *work_dir, const char *db, const char *policy,
                             const char *tag, uint16_t *port)
{
    const char *argv[] = {e2e_bin(), "serve", "--db", db, "--listen", "127.0.0.1:0",
                          policy != NULL ? "--policy" : NULL, policy, NULL};
    return e2e_serve_start_argv(argv, work_dir, tag, port);
}

pid_t e2e_serve_start_password(const char *work_dir, const char *db, const char *password,
                               const char *tag, uint16_t *port)
{
    char path[4096], name[256];
    snprintf(name, sizeof name, "%s.admin-password", tag);
    e2e_path(path, work_dir, name);
    tu_write_file(path, password, strlen(password));
    const char *argv[] = {e2e_bin(), "serve", "--db", db, "--listen", "127.0.0.1:0",
                          "--admin-password-file", path, NULL};
    return e2e_serve_start_argv(argv, work_dir, tag, port);
}

pid_t e2e_serve_start_argv(const char *const argv[], const char *work_dir, const char *tag,
                           uint16_t *port)
{
    /* Authenticate e2e_http_get with a token in the store being served,
     * unless the caller tests the first-start login itself. */
    const char *db = NULL;
    bool password_given = false;
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (strcmp(argv[i], "--db") == 0 && argv[i + 1] != NULL)
            db = argv[i + 1];
        if (strcmp(argv[i], "--admin-password-file") == 0)
            password_given = true;
    }
    e2e_pending_token[0] = '\0';
    if (db != NULL && !password_given)
        e2e_prepare_token(work_dir, db);

    pid_t pid = e2e_spawn(argv, work_dir, tag);

    char out_path[4096], name[256];
    snprintf(name, sizeof name, "%s.out", tag);
    e2e_path(out_path, work_dir, name);

    const char *marker = "flowveil: serving http://";
    for (unsigned waited_ms = 0; waited_ms < 20000; waited_ms += 20) {
        size_t len = 0;
        char *text = tu_read_file(out_path, &len);
        const char *line = (text != NULL) ? strstr(text, marker) : NULL;
        if (line != NULL && strchr(line, '\n') != NULL) {
            /* The line is "flowveil: serving http://ADDR:PORT/"; PORT follows the last ':'. */
            const char *slash = strchr(line + strlen(marker), '/');
            const char *colon = NULL;
            for (const char *p = line + strlen(marker); slash != NULL && p < slash; p++)
                if (*p == ':')
                    colon = p;
            unsigned long value = (colon != NULL) ? strtoul(colon + 1, NULL, 10) : 0;
            free(text);
            if (value == 0 || value > 65535) {
                fprintf(stderr, "e2e: cannot read the port from the serve line\n");
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                fail();
            }
            *port = (uint16_t)value;
            e2e_token_register(*port);
            return pid;
        }
        free(text);

        int wstatus;
        if (waitpid(pid, &wstatus, WNOHANG) == pid) {
            e2e_result res;
            res.exited = WIFEXITED(wstatus);
            res.status = res.exited ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus);
            snprintf(name, sizeof name, "%s.err", tag);
            e2e_path(out_path, work_dir, name);
            res.err = read_or_empty(out_path, &res.err_len);
            res.out = NULL;
            e2e_print_result("flowveil serve ended before it was ready", &res);
            e2e_result_free(&res);
            fail();
        }
        sleep_ms(20);
    }
    fprintf(stderr, "e2e: flowveil serve printed no ready line within 20 s\n");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail();
    return -1;
}

void e2e_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Bind a socket of TYPE to 127.0.0.1 on a free port; return it and the port. */
static int loopback_socket(int type, uint16_t *port)
{
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

int e2e_udp_receiver(uint16_t *port)
{
    return loopback_socket(SOCK_DGRAM, port);
}

int e2e_tcp_listener(uint16_t *port)
{
    int fd = loopback_socket(SOCK_STREAM, port);
    assert_int_equal(listen(fd, 1), 0);
    return fd;
}

bool e2e_wait_for_text(const char *file, const char *text, unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 20) {
        char *content = tu_read_file(file, NULL);
        bool found = content != NULL && strstr(content, text) != NULL;
        free(content);
        if (found)
            return true;
        e2e_sleep_ms(20);
    }
    return false;
}

void e2e_send_udp_datagrams(int receiver, uint16_t port, int count)
{
    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(sender >= 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; i++) {
        const char payload[] = "flowveil loopback test";
        assert_int_equal(sendto(sender, payload, sizeof payload, 0, (struct sockaddr *)&to,
                                sizeof to),
                         (ssize_t)sizeof payload);
        e2e_sleep_ms(20);
    }

    char buf[256];
    for (int i = 0; i < count; i++)
        assert_true(recv(receiver, buf, sizeof buf, 0) > 0);
    close(sender);
    close(receiver);
}
