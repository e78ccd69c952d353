/*
 * api_auth.c: authentication and access control of the HTTP API.
 *
 * Credentials are an API token (Authorization: Bearer fvt_..., checked
 * against its BLAKE2b hash in the store) or a session cookie fv_session
 * from POST /api/v1/login. Sessions live in this process only, and the
 * table keeps the BLAKE2b hash of each session id, never the id. A
 * session ends at logout, after its lifetime or idle timeout, when its
 * user is removed, and when the user's password or role changes (the
 * user entry's changed_us is later than the login).
 *
 * A session authenticates state-changing requests (POST, PATCH, PUT,
 * DELETE) only together with the header X-CSRF-Token carrying the
 * session's CSRF token, which a cross-site page cannot read.
 *
 * Failed logins are counted per client address and per user name in a
 * fixed window; past the limit the login answers 429 with Retry-After
 * before any password is hashed. An unknown user name is checked against
 * a dummy hash, so it costs the same time and gets the same error as a
 * wrong password.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <sodium.h>

#include "api_internal.h"

#define API_SESSIONS_MAX 1024u
#define API_SESSION_ID_BYTES 32u
#define API_SESSION_ID_HEX (2u * API_SESSION_ID_BYTES)
#define API_CSRF_BYTES 32u
#define API_CSRF_HEX (2u * API_CSRF_BYTES)

/* Password hashes (crypto_pwhash) computed at the same time. Each takes
 * the memory and about a third of a second of a core, and runs on the
 * request pool, so a cap keeps logins from starving data requests. A
 * login past the cap gets 503 with Retry-After. */
#define API_PWHASH_CONCURRENT 1u
/* Minimum time between two summary audit entries of one address's
 * rejected logins. */
#define API_LOGIN_REJECT_AUDIT_S 60u

#define API_US_PER_S 1000000ull

typedef struct api_session {
    uint8_t id_hash[32];
    char csrf[API_CSRF_HEX + 1];
    char user[STORE_AUTH_NAME_MAX + 1];
    uint64_t created_us, last_us;
    bool in_use;
} api_session;

struct api_auth {
    pthread_mutex_t lock;       /* guards sessions and rate */
    bool lock_ready;
    uint64_t ttl_us, idle_us;
    char dummy_hash[STORE_PWHASH_MAX];
    api_session sessions[API_SESSIONS_MAX];
    api_rate_table rates;
    unsigned hashing;           /* password checks running now */
};

static const char *const API_STATE_CHANGING[] = {"POST", "PATCH", "PUT", "DELETE"};

/* ---- setup ------------------------------------------------------------ */

int api_auth_create(api_server *srv, const api_config *config)
{
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    struct api_auth *auth = calloc(1, sizeof *auth);
    if (auth == NULL)
        return FV_ERR_NOMEM;
    if (pthread_mutex_init(&auth->lock, NULL) != 0) {
        free(auth);
        return FV_ERR_NOMEM;
    }
    auth->lock_ready = true;
    auth->ttl_us = (uint64_t)(config->session_ttl_s != 0 ? config->session_ttl_s
                                                         : API_SESSION_TTL_DEFAULT_S) *
                   API_US_PER_S;
    auth->idle_us = (uint64_t)(config->session_idle_s != 0 ? config->session_idle_s
                                                           : API_SESSION_IDLE_DEFAULT_S) *
                    API_US_PER_S;

    /* The dummy hash gives unknown user names the verification cost of
     * a real one; its password is random and never kept. */
    uint8_t random_bytes[24];
    char random_text[2 * sizeof random_bytes + 1];
    randombytes_buf(random_bytes, sizeof random_bytes);
    sodium_bin2hex(random_text, sizeof random_text, random_bytes, sizeof random_bytes);
    int rc = store_password_hash(random_text, auth->dummy_hash);
    sodium_memzero(random_text, sizeof random_text);
    if (rc != FV_OK) {
        pthread_mutex_destroy(&auth->lock);
        free(auth);
        return rc;
    }
    srv->auth = auth;
    return FV_OK;
}

void api_auth_destroy(api_server *srv)
{
    if (srv == NULL || srv->auth == NULL)
        return;
    if (srv->auth->lock_ready)
        pthread_mutex_destroy(&srv->auth->lock);
    sodium_memzero(srv->auth, sizeof *srv->auth);
    free(srv->auth);
    srv->auth = NULL;
}

/* ---- helpers ---------------------------------------------------------- */

static bool api_method_changes_state(const char *method)
{
    for (size_t i = 0; i < sizeof API_STATE_CHANGING / sizeof API_STATE_CHANGING[0]; i++) {
        if (strcmp(method, API_STATE_CHANGING[i]) == 0)
            return true;
    }
    return false;
}

static bool api_method_reads(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static json_t *api_auth_time_json(uint64_t us)
{
    char text[FV_TIME_TEXT_MAX];
    if (us == 0)
        return json_null();
    fv_time_format(us, text);
    return json_string(text);
}

/* Write the client's IP address as text into OUT, or "unknown". */
static void api_client_address(struct MHD_Connection *conn, char *out, size_t out_len)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, out_len, "unknown");
    if (info == NULL || info->client_addr == NULL)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, out, (socklen_t)out_len);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)out_len);
    }
}

static api_rate_slot *api_rate_find(api_rate_table *t, const char *key, bool create,
                                    uint64_t now_us);

/* Rate-limit key of the client: "a:" and the IPv4 address, or for IPv6
 * the /64 prefix, because one host is usually assigned a whole /64. */
static void api_address_key(struct MHD_Connection *conn, char *out, size_t out_len)
{
    char address[INET6_ADDRSTRLEN];
    api_client_address(conn, address, sizeof address);
    struct in6_addr a6;
    if (strchr(address, ':') != NULL && inet_pton(AF_INET6, address, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        inet_ntop(AF_INET6, &a6, address, (socklen_t)sizeof address);
        snprintf(out, out_len, "a:%s/64", address);
        return;
    }
    snprintf(out, out_len, "a:%s", address);
}

void api_login_rejected(api_server *srv, struct MHD_Connection *conn, unsigned status)
{
    struct api_auth *auth = srv->auth;
    char address_key[80];
    api_address_key(conn, address_key, sizeof address_key);

    uint64_t now_us = srv->clock_us();
    uint32_t count = 0;
    pthread_mutex_lock(&auth->lock);
    if (status == 400 || status == 405 || status == 413 || status == 415)
        (void)api_rate_fail(&auth->rates, address_key, now_us);
    api_rate_slot *slot = api_rate_find(&auth->rates, address_key, true, now_us);
    if (slot != NULL) {
        slot->rejected++;
        if (slot->rejected_audit_us == 0 ||
            now_us - slot->rejected_audit_us >= API_LOGIN_REJECT_AUDIT_S * API_US_PER_S) {
            count = slot->rejected;
            slot->rejected = 0;
            slot->rejected_audit_us = now_us;
        }
    }
    pthread_mutex_unlock(&auth->lock);
    if (count == 0)
        return;

    /* One summary entry: the status of the request that triggered it and
     * how many rejected logins from this address it stands for. */
    store_audit_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.actor, sizeof e.actor, "anonymous");
    snprintf(e.action, sizeof e.action, "auth.login_rejected");
    snprintf(e.object, sizeof e.object, "/api/v1/login");
    snprintf(e.params, sizeof e.params, "status=%u&rejected=%u&remote=%s", status,
             (unsigned)count, address_key + 2);
    e.result_count = count;
    int rc = api_audit_append_now(srv, &e, now_us);
    if (rc != FV_OK)
        fv_error("cannot audit rejected logins: %s", fv_strerror(rc));
}

static void api_session_cookie(const api_server *srv, const char *id_hex, uint64_t max_age_s,
                               api_reply_headers *headers)
{
    snprintf(headers->set_cookie, sizeof headers->set_cookie,
             "fv_session=%s; Max-Age=%llu; Path=/; HttpOnly; SameSite=Strict%s", id_hex,
             (unsigned long long)max_age_s, srv->tls ? "; Secure" : "");
}

static void api_session_cookie_clear(const api_server *srv, api_reply_headers *headers)
{
    snprintf(headers->set_cookie, sizeof headers->set_cookie,
             "fv_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict%s",
             srv->tls ? "; Secure" : "");
}

/* ---- sessions (caller holds auth->lock) ------------------------------- */

static api_session *api_session_find(struct api_auth *auth, const uint8_t id_hash[32])
{
    for (size_t i = 0; i < API_SESSIONS_MAX; i++) {
        api_session *s = &auth->sessions[i];
        if (s->in_use && sodium_memcmp(s->id_hash, id_hash, 32) == 0)
            return s;
    }
    return NULL;
}

/* A clock step back beyond this ends a session; smaller differences are
 * requests whose clock was read just before another request's. */
#define API_SESSION_CLOCK_SLACK_US (60u * 1000000u)

/*
 * Request threads read the clock before they take the session lock, so a
 * thread may find last_us set by another thread a moment after its own
 * reading. Such a NOW_US before last_us (or created_us) is no idle time:
 * subtracting it unguarded wrapped around and ended the session, which
 * signed dashboard users out while several of its requests ran at once.
 */
static bool api_session_expired(const struct api_auth *auth, const api_session *s,
                                uint64_t now_us)
{
    if (now_us < s->created_us)
        return s->created_us - now_us > API_SESSION_CLOCK_SLACK_US;
    uint64_t idle_us = now_us > s->last_us ? now_us - s->last_us : 0;
    return now_us - s->created_us >= auth->ttl_us || idle_us >= auth->idle_us;
}

/* A free slot, else an expired one, else the least recently used. */
static api_session *api_session_slot(struct api_auth *auth, uint64_t now_us)
{
    api_session *oldest = &auth->sessions[0];
    for (size_t i = 0; i < API_SESSIONS_MAX; i++) {
        api_session *s = &auth->sessions[i];
        if (!s->in_use || api_session_expired(auth, s, now_us))
            return s;
        if (s->last_us < oldest->last_us)
            oldest = s;
    }
    fv_notice("api: session table full (%u sessions), ending the least recently used one",
              API_SESSIONS_MAX);
    return oldest;
}

static bool api_hex_text(const char *text, size_t len)
{
    if (text == NULL || strlen(text) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return false;
    }
    return true;
}

/* ---- rate limiting (caller holds auth->lock) -------------------------- */

static uint32_t api_rate_limit(const char *key)
{
    return key[0] == 'u' ? API_LOGIN_FAILURES_PER_USER : API_LOGIN_FAILURES_PER_ADDRESS;
}

/* True while SLOT's key is locked out: at its limit in a live window. */
static bool api_rate_locked(const api_rate_slot *slot, uint64_t now_us)
{
    return slot->in_use && slot->failures >= api_rate_limit(slot->key) &&
           now_us - slot->window_start_us < API_LOGIN_WINDOW_S * API_US_PER_S;
}

/* Slot of KEY, or with CREATE a new one: a free or stale slot, else the
 * oldest slot that is not locked out. NULL when every slot is locked
 * out, so flooding the table with new names never unlocks a key. */
static api_rate_slot *api_rate_find(api_rate_table *t, const char *key, bool create,
                                    uint64_t now_us)
{
    api_rate_slot *victim = NULL, *oldest_unlocked = NULL;
    for (size_t i = 0; i < API_RATE_SLOTS; i++) {
        api_rate_slot *slot = &t->slot[i];
        if (slot->in_use && strcmp(slot->key, key) == 0)
            return slot;
        bool stale = !slot->in_use ||
                     now_us - slot->window_start_us >= API_LOGIN_WINDOW_S * API_US_PER_S;
        if (victim == NULL && stale)
            victim = slot;
        if (!api_rate_locked(slot, now_us) &&
            (oldest_unlocked == NULL || slot->window_start_us < oldest_unlocked->window_start_us))
            oldest_unlocked = slot;
    }
    if (!create)
        return NULL;
    if (victim == NULL)
        victim = oldest_unlocked;
    if (victim == NULL)
        return NULL;
    memset(victim, 0, sizeof *victim);
    snprintf(victim->key, sizeof victim->key, "%s", key);
    victim->window_start_us = now_us;
    victim->in_use = true;
    return victim;
}

unsigned api_rate_wait_s(api_rate_table *t, const char *key, uint64_t now_us)
{
    api_rate_slot *slot = api_rate_find(t, key, false, now_us);
    uint64_t window_us = API_LOGIN_WINDOW_S * API_US_PER_S;
    if (slot == NULL || !api_rate_locked(slot, now_us))
        return 0;
    uint64_t left_us = slot->window_start_us + window_us - now_us;
    return (unsigned)((left_us + API_US_PER_S - 1) / API_US_PER_S);
}

bool api_rate_fail(api_rate_table *t, const char *key, uint64_t now_us)
{
    api_rate_slot *slot = api_rate_find(t, key, true, now_us);
    if (slot == NULL)
        return false;
    if (now_us - slot->window_start_us >= API_LOGIN_WINDOW_S * API_US_PER_S) {
        slot->window_start_us = now_us;
        slot->failures = 0;
    }
    slot->failures++;
    return true;
}

bool api_rate_has_room(const api_rate_table *t, const char *key, uint64_t now_us)
{
    for (size_t i = 0; i < API_RATE_SLOTS; i++) {
        const api_rate_slot *slot = &t->slot[i];
        if (!slot->in_use || !api_rate_locked(slot, now_us) || strcmp(slot->key, key) == 0)
            return true;
    }
    return false;
}

static void api_rate_clear(api_rate_table *t, const char *key, uint64_t now_us)
{
    api_rate_slot *slot = api_rate_find(t, key, false, now_us);
    if (slot != NULL)
        memset(slot, 0, sizeof *slot);
}

/* ---- credentials ------------------------------------------------------ */

/* Outcome of reading the credentials of a request. */
typedef enum api_cred {
    API_CRED_NONE,      /* anonymous */
    API_CRED_OK,
    API_CRED_REJECTED,  /* OUT contains the 401 or 503 reply */
} api_cred;

static api_cred api_cred_token(api_server *srv, const char *text, api_principal *p,
                               api_reply *out)
{
    store_token t;
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_token_find(srv->store, text, &t);
    pthread_mutex_unlock(&srv->store_lock);

    if (rc == FV_ERR_INVALID || rc == FV_ERR_NOT_FOUND) {
        api_reply_error(out, 401, "authentication_required",
                        "the API token is unknown or malformed; create one with 'flowveil "
                        "token create NAME --role ROLE'");
        return API_CRED_REJECTED;
    }
    if (rc != FV_OK) {
        api_reply_error(out, 503, "store_error",
                        "the token could not be checked because the store failed; retry later");
        return API_CRED_REJECTED;
    }
    uint64_t now_us = srv->clock_us();
    if (t.revoked_us != 0) {
        api_reply_error(out, 401, "authentication_required",
                        "the API token was revoked; create a new one with 'flowveil token "
                        "create'");
        return API_CRED_REJECTED;
    }
    if (t.expires_us != 0 && now_us >= t.expires_us) {
        api_reply_error(out, 401, "authentication_required",
                        "the API token has expired; create a new one with 'flowveil token "
                        "create'");
        return API_CRED_REJECTED;
    }
    snprintf(p->user, sizeof p->user, "%s", t.name);
    p->role = t.role;
    p->auth = API_AUTH_TOKEN;
    return API_CRED_OK;
}

static api_cred api_cred_session(api_server *srv, const char *cookie, api_principal *p,
                                 char csrf[API_CSRF_HEX + 1], api_reply *out)
{
    struct api_auth *auth = srv->auth;
    uint8_t id_hash[32];
    uint64_t now_us = srv->clock_us();
    uint64_t created_us = 0;
    bool found = false;

    if (api_hex_text(cookie, API_SESSION_ID_HEX)) {
        crypto_generichash(id_hash, sizeof id_hash, (const unsigned char *)cookie,
                           API_SESSION_ID_HEX, NULL, 0);
        pthread_mutex_lock(&auth->lock);
        api_session *s = api_session_find(auth, id_hash);
        if (s != NULL && api_session_expired(auth, s, now_us)) {
            memset(s, 0, sizeof *s);
            s = NULL;
        }
        if (s != NULL) {
            s->last_us = now_us;
            created_us = s->created_us;
            snprintf(p->user, sizeof p->user, "%s", s->user);
            memcpy(csrf, s->csrf, API_CSRF_HEX + 1);
            found = true;
        }
        pthread_mutex_unlock(&auth->lock);
    }
    if (!found) {
        api_reply_error(out, 401, "authentication_required",
                        "the session has expired or is unknown; log in again");
        return API_CRED_REJECTED;
    }

    /* The role comes from the store on every request, so a role change
     * or removal takes effect at once. */
    store_user u;
    pthread_mutex_lock(&srv->store_lock);
    int rc = store_user_get(srv->store, p->user, &u);
    pthread_mutex_unlock(&srv->store_lock);
    if (rc == FV_OK && u.changed_us > created_us)
        rc = FV_ERR_STATE;
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    if (rc == FV_ERR_NOT_FOUND || rc == FV_ERR_STATE) {
        pthread_mutex_lock(&auth->lock);
        api_session *s = api_session_find(auth, id_hash);
        if (s != NULL)
            memset(s, 0, sizeof *s);
        pthread_mutex_unlock(&auth->lock);
        api_reply_error(out, 401, "authentication_required",
                        "the session ended because the user was removed or its password or "
                        "role changed; log in again");
        return API_CRED_REJECTED;
    }
    if (rc != FV_OK) {
        api_reply_error(out, 503, "store_error",
                        "the session could not be checked because the store failed; retry "
                        "later");
        return API_CRED_REJECTED;
    }
    p->role = u.role;
    p->auth = API_AUTH_SESSION;
    return API_CRED_OK;
}

static api_cred api_credentials(api_server *srv, struct MHD_Connection *conn, api_principal *p,
                                char csrf[API_CSRF_HEX + 1], api_reply *out)
{
    const char *authorization =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (authorization != NULL) {
        /* The scheme name is case-insensitive (RFC 7235 section 2.1). */
        if (strncasecmp(authorization, "Bearer ", 7) != 0) {
            api_reply_error(out, 401, "authentication_required",
                            "unsupported Authorization scheme; send 'Authorization: Bearer "
                            "fvt_...' with an API token");
            return API_CRED_REJECTED;
        }
        return api_cred_token(srv, authorization + 7, p, out);
    }
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "fv_session");
    if (cookie != NULL && cookie[0] != '\0')
        return api_cred_session(srv, cookie, p, csrf, out);
    return API_CRED_NONE;
}

/* ---- POST /api/v1/login ----------------------------------------------- */

/* Validate the login body; fill OUT with a 400 and return false if it is
 * not {"user": string, "password": string}. */
static bool api_login_body(json_t *body, const char **user, const char **password,
                           api_reply *out)
{
    if (!json_is_object(body)) {
        api_reply_error(out, 400, "invalid_body",
                        "the login body must be a JSON object {\"user\": \"...\", "
                        "\"password\": \"...\"} sent as application/json");
        return false;
    }
    const char *key;
    json_t *value;
    json_object_foreach(body, key, value) {
        if (strcmp(key, "user") != 0 && strcmp(key, "password") != 0) {
            char safe[48], message[API_MESSAGE_MAX];
            api_text_sanitize(key, safe, sizeof safe);
            snprintf(message, sizeof message,
                     "unknown field '%s' in the login body; allowed: user, password", safe);
            api_reply_error(out, 400, "invalid_body", message);
            return false;
        }
    }
    json_t *u = json_object_get(body, "user");
    json_t *pw = json_object_get(body, "password");
    if (!json_is_string(u) || !json_is_string(pw)) {
        api_reply_error(out, 400, "invalid_body",
                        "the login body needs the string fields 'user' and 'password'");
        return false;
    }
    *user = json_string_value(u);
    *password = json_string_value(pw);
    return true;
}

static void api_rate_limited(api_reply *out, api_reply_headers *headers, unsigned wait_s)
{
    char message[API_MESSAGE_MAX];
    snprintf(message, sizeof message,
             "too many failed logins; retry after %u seconds", wait_s);
    api_reply_error(out, 429, "rate_limited", message);
    headers->retry_after_s = wait_s;
}

static void api_login(api_server *srv, struct MHD_Connection *conn, json_t *body,
                      api_principal *p, api_reply *out, api_reply_headers *headers)
{
    struct api_auth *auth = srv->auth;
    const char *user = NULL, *password = NULL;
    if (!api_login_body(body, &user, &password, out))
        return;

    char address_key[80], user_key[80];
    api_address_key(conn, address_key, sizeof address_key);
    /* Names that are not valid user names share one bucket, so random
     * names cannot fill the table. */
    snprintf(user_key, sizeof user_key, "u:%s",
             store_auth_name_valid(user) ? user : "(invalid)");

    uint64_t now_us = srv->clock_us();
    pthread_mutex_lock(&auth->lock);
    unsigned wait_address = api_rate_wait_s(&auth->rates, address_key, now_us);
    unsigned wait_user = api_rate_wait_s(&auth->rates, user_key, now_us);
    /* A table full of locked-out keys cannot count this attempt, so it
     * is refused rather than checked uncounted. */
    bool room = api_rate_has_room(&auth->rates, address_key, now_us) &&
                api_rate_has_room(&auth->rates, user_key, now_us);
    bool busy = auth->hashing >= API_PWHASH_CONCURRENT;
    if (wait_address == 0 && wait_user == 0 && room && !busy)
        auth->hashing++;
    pthread_mutex_unlock(&auth->lock);
    if (wait_address != 0 || wait_user != 0 || !room) {
        api_rate_limited(out, headers,
                         !room ? API_LOGIN_WINDOW_S
                               : wait_address > wait_user ? wait_address : wait_user);
        return;
    }
    if (busy) {
        api_reply_error(out, 503, "login_busy",
                        "other logins are being checked; retry in a second");
        headers->retry_after_s = 1;
        return;
    }

    store_user u;
    memset(&u, 0, sizeof u);
    int rc = FV_ERR_NOT_FOUND;
    if (store_auth_name_valid(user)) {
        pthread_mutex_lock(&srv->store_lock);
        rc = store_user_get(srv->store, user, &u);
        pthread_mutex_unlock(&srv->store_lock);
    }
    /* Same work for an unknown user as for a wrong password. */
    bool ok = false;
    if (rc == FV_OK || rc == FV_ERR_NOT_FOUND) {
        ok = store_password_verify(rc == FV_OK ? u.pwhash : auth->dummy_hash, password);
        ok = ok && rc == FV_OK;
    }
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    pthread_mutex_lock(&auth->lock);
    auth->hashing--;
    pthread_mutex_unlock(&auth->lock);
    if (rc != FV_OK && rc != FV_ERR_NOT_FOUND) {
        api_reply_error(out, 503, "store_error",
                        "the login could not be checked because the store failed; retry later");
        return;
    }

    now_us = srv->clock_us();
    if (!ok) {
        pthread_mutex_lock(&auth->lock);
        (void)api_rate_fail(&auth->rates, address_key, now_us);
        (void)api_rate_fail(&auth->rates, user_key, now_us);
        pthread_mutex_unlock(&auth->lock);
        api_reply_error(out, 401, "invalid_credentials", "unknown user name or wrong password");
        return;
    }

    uint8_t id[API_SESSION_ID_BYTES], csrf[API_CSRF_BYTES];
    char id_hex[API_SESSION_ID_HEX + 1];
    randombytes_buf(id, sizeof id);
    randombytes_buf(csrf, sizeof csrf);
    sodium_bin2hex(id_hex, sizeof id_hex, id, sizeof id);

    pthread_mutex_lock(&auth->lock);
    api_rate_clear(&auth->rates, user_key, now_us);
    api_session *s = api_session_slot(auth, now_us);
    memset(s, 0, sizeof *s);
    crypto_generichash(s->id_hash, sizeof s->id_hash, (const unsigned char *)id_hex,
                       API_SESSION_ID_HEX, NULL, 0);
    sodium_bin2hex(s->csrf, sizeof s->csrf, csrf, sizeof csrf);
    snprintf(s->user, sizeof s->user, "%s", u.name);
    s->created_us = now_us;
    s->last_us = now_us;
    s->in_use = true;
    out->status = 200;
    out->body = json_pack("{s:s, s:s, s:s}", "user", u.name, "role", store_role_name(u.role),
                          "csrf_token", s->csrf);
    pthread_mutex_unlock(&auth->lock);

    api_session_cookie(srv, id_hex, auth->ttl_us / API_US_PER_S, headers);
    sodium_memzero(id_hex, sizeof id_hex);
    sodium_memzero(id, sizeof id);
    sodium_memzero(csrf, sizeof csrf);

    snprintf(p->user, sizeof p->user, "%s", u.name);
    p->role = u.role;
    p->auth = API_AUTH_SESSION;
}

/* ---- logout, me, users ------------------------------------------------ */

static void api_logout(api_server *srv, struct MHD_Connection *conn, api_reply *out,
                       api_reply_headers *headers)
{
    const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "fv_session");
    if (api_hex_text(cookie, API_SESSION_ID_HEX)) {
        uint8_t id_hash[32];
        crypto_generichash(id_hash, sizeof id_hash, (const unsigned char *)cookie,
                           API_SESSION_ID_HEX, NULL, 0);
        pthread_mutex_lock(&srv->auth->lock);
        api_session *s = api_session_find(srv->auth, id_hash);
        if (s != NULL)
            memset(s, 0, sizeof *s);
        pthread_mutex_unlock(&srv->auth->lock);
    }
    api_session_cookie_clear(srv, headers);
    out->status = 204;
    out->body = NULL;
}

static void api_me(const api_principal *p, const char *csrf, api_reply *out)
{
    out->status = 200;
    out->body = json_pack("{s:s, s:s, s:s, s:o}", "user", p->user, "role",
                          store_role_name(p->role), "auth",
                          p->auth == API_AUTH_SESSION ? "session" : "token", "csrf_token",
                          p->auth == API_AUTH_SESSION ? json_string(csrf) : json_null());
}

static bool api_users_add(void *ctx, const store_user *u)
{
    json_t *row = json_pack("{s:s, s:s, s:o, s:o}", "name", u->name, "role",
                            store_role_name(u->role), "created",
                            api_auth_time_json(u->created_us), "changed",
                            api_auth_time_json(u->changed_us));
    return row != NULL && json_array_append_new(ctx, row) == 0;
}

static bool api_tokens_add(void *ctx, const store_token *t)
{
    json_t *row = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "id", t->id, "name", t->name,
                            "role", store_role_name(t->role), "created",
                            api_auth_time_json(t->created_us), "expires",
                            api_auth_time_json(t->expires_us), "revoked",
                            api_auth_time_json(t->revoked_us));
    return row != NULL && json_array_append_new(ctx, row) == 0;
}

static void api_users(api_server *srv, struct MHD_Connection *conn, api_reply *out)
{
    if (MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0) {
        api_reply_error(out, 400, "invalid_parameter",
                        "this route takes no query parameters");
        return;
    }
    json_t *users = json_array(), *tokens = json_array();
    size_t user_count = 0, token_count = 0;
    int rc = FV_ERR_NOMEM;
    if (users != NULL && tokens != NULL) {
        pthread_mutex_lock(&srv->store_lock);
        rc = store_user_each(srv->store, api_users_add, users, &user_count);
        if (rc == FV_OK)
            rc = store_token_each(srv->store, api_tokens_add, tokens, &token_count);
        pthread_mutex_unlock(&srv->store_lock);
    }
    if (rc == FV_OK && (json_array_size(users) != user_count ||
                        json_array_size(tokens) != token_count))
        rc = FV_ERR_NOMEM;
    if (rc != FV_OK) {
        json_decref(users);
        json_decref(tokens);
        api_reply_error(out, 503, rc == FV_ERR_NOMEM ? "out_of_memory" : "store_error",
                        "the user list could not be read; retry later");
        return;
    }
    out->status = 200;
    out->body = json_pack("{s:o, s:o, s:I}", "users", users, "tokens", tokens, "count",
                          (json_int_t)user_count);
}

/* ---- the gate --------------------------------------------------------- */

static void api_method_not_allowed(api_reply *out, api_reply_headers *headers,
                                   const char *allowed)
{
    char message[API_MESSAGE_MAX];
    snprintf(message, sizeof message, "this route accepts only %s", allowed);
    api_reply_error(out, 405, "method_not_allowed", message);
    headers->allow = allowed;
}

/* Reply 405 with the methods PATH accepts when the route table contains
 * the path, else 404. */
static void api_reply_unrouted(const char *method, const char *path, api_reply *out,
                               api_reply_headers *headers)
{
    char segment[256];
    api_match match;
    bool known = false;
    (void)api_route_find(method, path, &match, segment, sizeof segment, &known);
    if (!known) {
        api_reply_error(out, 404, "not_found", "no such API route; see docs/API.md");
        return;
    }
    api_route_methods(path, headers->allow_text, sizeof headers->allow_text);
    api_method_not_allowed(out, headers, headers->allow_text);
}

/* True if PATH takes METHOD: POST for logout, GET and HEAD for /me and
 * /users, else what the route table lists. */
static bool api_method_routed(const char *method, const char *path)
{
    if (strcmp(path, "/api/v1/logout") == 0)
        return strcmp(method, "POST") == 0;
    if (strcmp(path, "/api/v1/me") == 0 || strcmp(path, "/api/v1/users") == 0)
        return api_method_reads(method);
    return api_route_permission(method, path) != 0;
}

bool api_auth_check(api_server *srv, struct MHD_Connection *conn, const char *method,
                    const char *path, json_t *body, api_principal *principal, api_reply *out,
                    api_reply_headers *headers)
{
    char csrf[API_CSRF_HEX + 1] = "";
    memset(principal, 0, sizeof *principal);
    out->status = 0;
    out->body = NULL;

    /* /metrics is served outside the route layer, so its method is
     * checked here, before the public-metrics shortcut. */
    if (strcmp(path, "/metrics") == 0 && !api_method_reads(method)) {
        api_method_not_allowed(out, headers, "GET, HEAD");
        return false;
    }
    if (strcmp(path, "/metrics") == 0 && srv->metrics_public)
        return true;

    if (strcmp(path, "/api/v1/login") == 0) {
        if (strcmp(method, "POST") != 0) {
            api_method_not_allowed(out, headers, "POST");
            return false;
        }
        api_login(srv, conn, body, principal, out, headers);
        return false;
    }

    api_cred cred = api_credentials(srv, conn, principal, csrf, out);
    if (cred == API_CRED_REJECTED) {
        memset(principal, 0, sizeof *principal);
        return false;
    }
    if (cred == API_CRED_NONE) {
        if (strcmp(path, "/api/v1/health") == 0 && api_method_reads(method)) {
            out->status = 200;
            out->body = json_pack("{s:s}", "status", "ok");
            return false;
        }
        api_reply_error(out, 401, "authentication_required",
                        "log in with POST /api/v1/login or send 'Authorization: Bearer "
                        "fvt_...' with an API token");
        return false;
    }

    /* A cookie is sent by the browser on its own; a state change must
     * also prove that the page could read the CSRF token. A method the
     * route does not take changes nothing and gets its 405 (or 404)
     * below, as it does with a token. */
    if (principal->auth == API_AUTH_SESSION && api_method_changes_state(method) &&
        api_method_routed(method, path)) {
        const char *sent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
        if (sent == NULL || strlen(sent) != API_CSRF_HEX ||
            sodium_memcmp(sent, csrf, API_CSRF_HEX) != 0) {
            api_reply_error(out, 403, "csrf_required",
                            "state-changing requests with a session need the header "
                            "X-CSRF-Token with the csrf_token from login or /api/v1/me");
            return false;
        }
    }

    if (strcmp(path, "/api/v1/logout") == 0) {
        if (strcmp(method, "POST") != 0)
            api_method_not_allowed(out, headers, "POST");
        else
            api_logout(srv, conn, out, headers);
        return false;
    }
    if (strcmp(path, "/api/v1/me") == 0) {
        if (!api_method_reads(method))
            api_method_not_allowed(out, headers, "GET, HEAD");
        else
            api_me(principal, csrf, out);
        return false;
    }
    if (strcmp(path, "/api/v1/users") == 0) {
        if (!api_method_reads(method))
            api_method_not_allowed(out, headers, "GET, HEAD");
        else if (principal->role != API_ROLE_ADMIN)
            api_reply_error(out, 403, "forbidden", "listing users needs the admin role");
        else
            api_users(srv, conn, out);
        return false;
    }

    int allowed = api_route_permission(method, path);
    /* An unknown route or method gets its 404 or 405 here, so no
     * (route, method) pair without a role check reaches a handler. */
    if (allowed == 0) {
        api_reply_unrouted(method, path, out, headers);
        return false;
    }
    if (!api_role_may_use(srv, principal->role, allowed, path)) {
        api_forbidden(srv, principal->role, allowed, path, out);
        return false;
    }
    return true;
}
