/*
 * test_user_cli: `flowveil user`, `flowveil token` and the first start of
 * `flowveil serve`, through the real binary. It checks the first admin
 * and its printed password, logins with the accounts the CLI creates,
 * tokens that stop working when revoked, exit statuses and the audit
 * entries of every change, and that a serve that fails to start adds no
 * user.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include <jansson.h>

#include "e2e_util.h"
#include "fv_common.h"
#include "store.h"
#include "testutil.h"

typedef struct fixture {
    char dir[4096];
    char db[4096];
} fixture;

/* Make a store with a few records (one ingest of a corpus capture). */
static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    e2e_path(fx->db, fx->dir, "db");
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

static void ingest(const fixture *fx)
{
    char policy[4096], capture[4096];
    e2e_path(policy, fx->dir, "policy.yaml");
    e2e_write_policy(policy, "[]", "3650d");
    snprintf(capture, sizeof capture, "%s/pcaps/arkime-dns-tcp.pcap", e2e_corpus());
    const char *argv[] = {e2e_bin(), "ingest", "--policy", policy, "--db", fx->db, capture, NULL};
    e2e_result res;
    e2e_run(argv, fx->dir, "ingest", 120, &res);
    if (!res.exited || res.status != 0)
        e2e_print_result("ingest", &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    e2e_result_free(&res);
}

/* Run ARGV and check its exit status; return the result (caller frees). */
static void run_expect(const fixture *fx, const char *const argv[], const char *tag, int status,
                       e2e_result *res)
{
    e2e_run(argv, fx->dir, tag, 60, res);
    if (!res->exited || res->status != status) {
        fprintf(stderr, "expected exit status %d from %s\n", status, tag);
        e2e_print_result(tag, res);
    }
    assert_true(res->exited);
    assert_int_equal(res->status, status);
    assert_false(e2e_has_sanitizer_report(res->err));
}

/* POST /api/v1/login and return the HTTP status. */
static int login_status(uint16_t port, const char *user, const char *password)
{
    char body[512];
    int status = 0;
    size_t len = 0;
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"password\": \"%s\"}", user, password);
    char *reply = e2e_http_request(port, "POST", "/api/v1/login", "", body, &status, &len);
    assert_non_null(reply);
    free(reply);
    return status;
}

static int get_status(uint16_t port, const char *path, const char *headers)
{
    int status = 0;
    size_t len = 0;
    char *reply = e2e_http_request(port, "GET", path, headers, NULL, &status, &len);
    assert_non_null(reply);
    free(reply);
    return status;
}

static void stop_server(const fixture *fx, pid_t pid, const char *tag)
{
    e2e_result res;
    kill(pid, SIGTERM);
    e2e_wait(pid, fx->dir, tag, 30, &res);
    assert_true(res.exited);
    assert_int_equal(res.status, 0);
    assert_false(e2e_has_sanitizer_report(res.err));
    e2e_result_free(&res);
}

static void test_first_start_prints_admin_password(void **state)
{
    fixture *fx = *state;
    ingest(fx);

    /* No password file: the plain first start. (The helper adds an API
     * token first; a store with tokens but no user still gets its admin.) */
    uint16_t port = 0;
    pid_t pid = e2e_serve_start(fx->dir, fx->db, "serve", &port);
    stop_server(fx, pid, "serve");

    char err_path[4096];
    e2e_path(err_path, fx->dir, "serve.err");
    size_t len = 0;
    char *err = tu_read_file(err_path, &len);
    assert_non_null(err);
    const char *line = strstr(err, "flowveil: created user 'admin' with password ");
    if (line == NULL)
        fprintf(stderr, "serve stderr:\n%s\n", err);
    assert_non_null(line);
    char password[64] = "";
    assert_int_equal(sscanf(line, "flowveil: created user 'admin' with password %63[^;]", password),
                     1);
    assert_int_equal(strlen(password), 20);
    assert_non_null(strstr(line, "; log in at http://127.0.0.1:"));
    assert_non_null(strstr(line, "and change it with 'flowveil user passwd admin --db "));
    free(err);

    /* The second start creates no user and prints no password. */
    pid = e2e_serve_start(fx->dir, fx->db, "serve2", &port);
    assert_int_equal(login_status(port, "admin", password), 200);
    assert_int_equal(login_status(port, "admin", "not-the-password"), 401);
    stop_server(fx, pid, "serve2");
    e2e_path(err_path, fx->dir, "serve2.err");
    err = tu_read_file(err_path, &len);
    assert_non_null(err);
    assert_null(strstr(err, "created user"));
    free(err);
}

static void test_password_file_sets_first_admin(void **state)
{
    fixture *fx = *state;
    ingest(fx);
    uint16_t port = 0;
    pid_t pid = e2e_serve_start_password(fx->dir, fx->db, "e2e-admin-pass\n", "serve", &port);
    assert_int_equal(login_status(port, "admin", "e2e-admin-pass"), 200);
    /* Anonymous callers get nothing but the liveness status. */
    assert_int_equal(get_status(port, "/api/v1/flows", ""), 401);
    assert_int_equal(get_status(port, "/api/v1/health", ""), 200);
    stop_server(fx, pid, "serve");
}

static bool count_user(void *ctx, const store_user *u)
{
    (void)u;
    (*(size_t *)ctx)++;
    return true;
}

/* A serve that cannot listen exits with status 1 and leaves the store
 * without users and without a user.add audit entry, with a password
 * file and with a generated password alike. */
static void test_failed_start_creates_no_user(void **state)
{
    fixture *fx = *state;
    ingest(fx);
    uint16_t port = 0;
    int busy = e2e_tcp_listener(&port);
    char listen_text[64], password_file[4096];
    snprintf(listen_text, sizeof listen_text, "127.0.0.1:%u", (unsigned)port);
    e2e_path(password_file, fx->dir, "admin-password");
    tu_write_file(password_file, "e2e-admin-pass\n", strlen("e2e-admin-pass\n"));

    const char *with_file[] = {e2e_bin(), "serve", "--db", fx->db, "--listen", listen_text,
                               "--admin-password-file", password_file, NULL};
    const char *generated[] = {e2e_bin(), "serve", "--db", fx->db, "--listen", listen_text,
                               NULL};
    const char *const *runs[] = {with_file, generated};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        e2e_result res;
        run_expect(fx, runs[r], "serve-busy", 1, &res);
        assert_non_null(strstr(res.err, "cannot listen on 127.0.0.1 port"));
        assert_null(strstr(res.err, "created user"));
        e2e_result_free(&res);

        store_env *store = NULL;
        char err[512];
        size_t users = 0;
        assert_int_equal(store_open(fx->db, STORE_RDONLY, &store, err, sizeof err), FV_OK);
        assert_int_equal(store_user_each(store, count_user, &users, NULL), FV_OK);
        store_close(&store);
        assert_int_equal(users, 0);
    }
    close(busy);

    const char *show[] = {e2e_bin(), "audit", "show", "--db", fx->db, "--json", NULL};
    e2e_result res;
    run_expect(fx, show, "audit-show", 0, &res);
    assert_null(strstr(res.out, "user.add"));
    e2e_result_free(&res);

    /* Once the port is free the same command creates the admin. */
    pid_t pid = e2e_serve_start_password(fx->dir, fx->db, "e2e-admin-pass\n", "serve", &port);
    assert_int_equal(login_status(port, "admin", "e2e-admin-pass"), 200);
    stop_server(fx, pid, "serve");
    run_expect(fx, show, "audit-show-2", 0, &res);
    assert_non_null(strstr(res.out, "user.add"));
    e2e_result_free(&res);
}

static void test_user_commands_manage_logins(void **state)
{
    fixture *fx = *state;
    ingest(fx);
    e2e_result res;
    char pw_path[4096];
    e2e_path(pw_path, fx->dir, "ana.pw");
    tu_write_file(pw_path, "ana-password-1\n", 15);

    const char *add[] = {e2e_bin(), "user", "add", "ana", "--role", "analyst",
                         "--password-file", pw_path, "--db", fx->db, NULL};
    run_expect(fx, add, "user-add", 0, &res);
    e2e_result_free(&res);
    const char *add_admin[] = {e2e_bin(), "user", "add", "boss", "--role", "admin",
                               "--password-file", pw_path, "--db", fx->db, NULL};
    run_expect(fx, add_admin, "user-add-admin", 0, &res);
    e2e_result_free(&res);
    run_expect(fx, add, "user-add-again", 1, &res);
    assert_non_null(strstr(res.err, "user 'ana' already exists"));
    e2e_result_free(&res);

    const char *bad_role[] = {e2e_bin(), "user", "add", "bob", "--role", "root",
                              "--password-file", pw_path, "--db", fx->db, NULL};
    run_expect(fx, bad_role, "user-bad-role", 2, &res);
    assert_non_null(strstr(res.err, "invalid --role value 'root'"));
    e2e_result_free(&res);

    const char *no_password[] = {e2e_bin(), "user", "add", "bob", "--role", "analyst",
                                 "--db", fx->db, NULL};
    run_expect(fx, no_password, "user-no-password", 2, &res);
    assert_non_null(strstr(res.err, "--password-file"));
    e2e_result_free(&res);

    const char *list[] = {e2e_bin(), "user", "list", "--db", fx->db, NULL};
    run_expect(fx, list, "user-list", 0, &res);
    assert_non_null(strstr(res.out, "ana"));
    assert_non_null(strstr(res.out, "analyst"));
    assert_null(strstr(res.out, "argon2"));
    e2e_result_free(&res);

    /* The store has users, so serve creates no admin of its own. */
    uint16_t port = 0;
    pid_t pid = e2e_serve_start(fx->dir, fx->db, "serve", &port);
    assert_int_equal(login_status(port, "ana", "ana-password-1"), 200);
    assert_int_equal(login_status(port, "admin", "ana-password-1"), 401);

    /* passwd while the server runs: the old password stops working. */
    tu_write_file(pw_path, "ana-password-2\n", 15);
    const char *passwd[] = {e2e_bin(), "user", "passwd", "ana", "--password-file", pw_path,
                            "--db", fx->db, NULL};
    run_expect(fx, passwd, "user-passwd", 0, &res);
    e2e_result_free(&res);
    assert_int_equal(login_status(port, "ana", "ana-password-1"), 401);
    assert_int_equal(login_status(port, "ana", "ana-password-2"), 200);

    const char *remove[] = {e2e_bin(), "user", "remove", "ana", "--db", fx->db, NULL};
    run_expect(fx, remove, "user-remove", 0, &res);
    e2e_result_free(&res);
    run_expect(fx, remove, "user-remove-again", 1, &res);
    assert_non_null(strstr(res.err, "no user 'ana'"));
    e2e_result_free(&res);
    assert_int_equal(login_status(port, "ana", "ana-password-2"), 401);
    stop_server(fx, pid, "serve");

    /* The last admin cannot be removed. */
    const char *remove_admin[] = {e2e_bin(), "user", "remove", "boss", "--db", fx->db, NULL};
    run_expect(fx, remove_admin, "user-remove-admin", 1, &res);
    if (strstr(res.err, "last admin") == NULL)
        e2e_print_result("user remove admin", &res);
    assert_non_null(strstr(res.err, "last admin"));
    e2e_result_free(&res);

    /* Every change is in the audit trail, without the password. */
    const char *show[] = {e2e_bin(), "audit", "show", "--db", fx->db, "--json", NULL};
    run_expect(fx, show, "audit-show", 0, &res);
    assert_non_null(strstr(res.out, "\"user.add\""));
    assert_non_null(strstr(res.out, "\"user.passwd\""));
    assert_non_null(strstr(res.out, "\"user.remove\""));
    assert_non_null(strstr(res.out, "\"auth.login\""));
    assert_null(strstr(res.out, "ana-password"));
    e2e_result_free(&res);
}

/* POST /api/v1/login as USER and copy "fv_session=..." from the
 * Set-Cookie header of the reply into COOKIE. e2e_http_request returns
 * the body only, so this speaks HTTP/1.0 on a socket of its own. */
static void login_cookie(uint16_t port, const char *user, const char *password,
                         char cookie[256])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    char body[256], request[1024];
    int body_len = snprintf(body, sizeof body, "{\"user\": \"%s\", \"password\": \"%s\"}", user,
                            password);
    int len = snprintf(request, sizeof request,
                       "POST /api/v1/login HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                       body_len, body);
    assert_int_equal(write(fd, request, (size_t)len), len);
    char reply[8192];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof reply - 1 && (n = read(fd, reply + used, sizeof reply - 1 - used)) > 0)
        used += (size_t)n;
    reply[used] = '\0';
    close(fd);
    assert_non_null(strstr(reply, " 200 "));
    const char *start = strstr(reply, "fv_session=");
    assert_non_null(start);
    size_t cookie_len = strcspn(start, ";\r\n");
    assert_true(cookie_len < 256);
    memcpy(cookie, start, cookie_len);
    cookie[cookie_len] = '\0';
}

static int cookie_get_status(uint16_t port, const char *path, const char *cookie)
{
    char headers[320];
    snprintf(headers, sizeof headers, "Cookie: %s\r\n", cookie);
    return get_status(port, path, headers);
}

static void test_user_role_changes_access(void **state)
{
    fixture *fx = *state;
    ingest(fx);
    e2e_result res;
    char pw_path[4096];
    e2e_path(pw_path, fx->dir, "ana.pw");
    tu_write_file(pw_path, "ana-password-1\n", 15);
    const char *add[] = {e2e_bin(), "user", "add", "ana", "--role", "analyst",
                         "--password-file", pw_path, "--db", fx->db, NULL};
    run_expect(fx, add, "user-add", 0, &res);
    e2e_result_free(&res);
    const char *add_admin[] = {e2e_bin(), "user", "add", "boss", "--role", "admin",
                               "--password-file", pw_path, "--db", fx->db, NULL};
    run_expect(fx, add_admin, "user-add-admin", 0, &res);
    e2e_result_free(&res);

    uint16_t port = 0;
    pid_t pid = e2e_serve_start(fx->dir, fx->db, "serve", &port);
    char cookie[256];
    login_cookie(port, "ana", "ana-password-1", cookie);
    /* An analyst reads flows but not the audit log. */
    assert_int_equal(cookie_get_status(port, "/api/v1/flows", cookie), 200);
    assert_int_equal(cookie_get_status(port, "/api/v1/audit", cookie), 403);

    const char *to_compliance[] = {e2e_bin(), "user", "role", "ana", "compliance",
                                   "--db", fx->db, NULL};
    run_expect(fx, to_compliance, "user-role", 0, &res);
    assert_non_null(strstr(res.out, "from analyst to compliance; its sessions have ended"));
    e2e_result_free(&res);

    /* The session of the old role has ended; a new login has the new role. */
    assert_int_equal(cookie_get_status(port, "/api/v1/flows", cookie), 401);
    login_cookie(port, "ana", "ana-password-1", cookie);
    assert_int_equal(cookie_get_status(port, "/api/v1/audit", cookie), 200);
    assert_int_equal(cookie_get_status(port, "/api/v1/flows", cookie), 403);
    stop_server(fx, pid, "serve");

    const char *list[] = {e2e_bin(), "user", "list", "--db", fx->db, NULL};
    run_expect(fx, list, "user-list", 0, &res);
    assert_non_null(strstr(res.out, "compliance"));
    e2e_result_free(&res);

    /* The same role again changes nothing and ends no session. */
    run_expect(fx, to_compliance, "user-role-same", 0, &res);
    assert_non_null(strstr(res.out, "already has role compliance"));
    e2e_result_free(&res);

    /* Errors: unknown user, bad role, missing role, the last admin. */
    const char *unknown[] = {e2e_bin(), "user", "role", "nobody", "admin", "--db", fx->db, NULL};
    run_expect(fx, unknown, "user-role-unknown", 1, &res);
    assert_non_null(strstr(res.err, "no user 'nobody'"));
    e2e_result_free(&res);
    const char *bad[] = {e2e_bin(), "user", "role", "ana", "root", "--db", fx->db, NULL};
    run_expect(fx, bad, "user-role-bad", 2, &res);
    assert_non_null(strstr(res.err, "invalid ROLE 'root': expected analyst, compliance or admin"));
    e2e_result_free(&res);
    const char *missing[] = {e2e_bin(), "user", "role", "ana", "--db", fx->db, NULL};
    run_expect(fx, missing, "user-role-missing", 2, &res);
    assert_non_null(strstr(res.err, "'user role' needs NAME and ROLE"));
    e2e_result_free(&res);
    const char *demote[] = {e2e_bin(), "user", "role", "boss", "analyst", "--db", fx->db, NULL};
    run_expect(fx, demote, "user-role-last-admin", 1, &res);
    assert_non_null(strstr(res.err, "'boss' is the last admin user"));
    e2e_result_free(&res);
    const char *extra[] = {e2e_bin(), "user", "remove", "ana", "admin", "--db", fx->db, NULL};
    run_expect(fx, extra, "user-remove-extra", 2, &res);
    assert_non_null(strstr(res.err, "unexpected argument 'admin'"));
    e2e_result_free(&res);

    /* The change is audited with the new and the previous role. */
    const char *show[] = {e2e_bin(), "audit", "show", "--db", fx->db, "--json", NULL};
    run_expect(fx, show, "audit-show", 0, &res);
    assert_non_null(strstr(res.out, "\"user.role\""));
    assert_non_null(strstr(res.out, "role=compliance&previous=analyst"));
    e2e_result_free(&res);
}

static void test_token_commands(void **state)
{
    fixture *fx = *state;
    ingest(fx);
    e2e_result res;
    const char *create[] = {e2e_bin(), "token", "create", "grafana", "--role", "analyst",
                            "--expires", "30d", "--db", fx->db, NULL};
    run_expect(fx, create, "token-create", 0, &res);
    char header[256];
    size_t len = strcspn(res.out, "\n");
    assert_int_equal(len, 85); /* "fvt_", 16 hex id, "_", 64 hex secret */
    assert_true(strncmp(res.out, "fvt_", 4) == 0);
    snprintf(header, sizeof header, "Authorization: Bearer %.*s\r\n", (int)len, res.out);
    char id[17];
    snprintf(id, sizeof id, "%.16s", res.out + 4);
    e2e_result_free(&res);

    const char *bad_expiry[] = {e2e_bin(), "token", "create", "grafana", "--role", "analyst",
                                "--expires", "soon", "--db", fx->db, NULL};
    run_expect(fx, bad_expiry, "token-bad-expiry", 2, &res);
    assert_non_null(strstr(res.err, "invalid --expires value 'soon'"));
    e2e_result_free(&res);

    const char *list[] = {e2e_bin(), "token", "list", "--db", fx->db, NULL};
    run_expect(fx, list, "token-list", 0, &res);
    assert_non_null(strstr(res.out, id));
    assert_non_null(strstr(res.out, "active"));
    /* Only the id is listed, never the secret. */
    assert_null(strstr(res.out, "fvt_"));
    e2e_result_free(&res);

    uint16_t port = 0;
    pid_t pid = e2e_serve_start(fx->dir, fx->db, "serve", &port);
    assert_int_equal(get_status(port, "/api/v1/flows", header), 200);
    /* An analyst token may not read the audit trail. */
    assert_int_equal(get_status(port, "/api/v1/audit", header), 403);

    const char *revoke[] = {e2e_bin(), "token", "revoke", id, "--db", fx->db, NULL};
    run_expect(fx, revoke, "token-revoke", 0, &res);
    e2e_result_free(&res);
    assert_int_equal(get_status(port, "/api/v1/flows", header), 401);
    run_expect(fx, revoke, "token-revoke-again", 1, &res);
    assert_non_null(strstr(res.err, "already revoked"));
    e2e_result_free(&res);
    stop_server(fx, pid, "serve");

    const char *show[] = {e2e_bin(), "audit", "show", "--db", fx->db, "--json", NULL};
    run_expect(fx, show, "audit-show", 0, &res);
    assert_non_null(strstr(res.out, "\"token.create\""));
    assert_non_null(strstr(res.out, "\"token.revoke\""));
    assert_non_null(strstr(res.out, "name=grafana"));
    assert_null(strstr(res.out, "fvt_"));
    e2e_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_prints_admin_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file_sets_first_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_start_creates_no_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_commands_manage_logins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_role_changes_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_commands, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
