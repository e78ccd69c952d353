/*
 * store_auth.c: users and API tokens of the HTTP API, in the named
 * database "auth".
 *
 *   key "u/NAME"  user, value format version 1:
 *       u8 version (1) | u8 role bit | u64 created_us | u64 changed_us
 *       | u8 hash length | crypto_pwhash_str text (no NUL)
 *   key "t/ID"    token, value format version 1:
 *       u8 version (1) | u8 role bit | u64 created_us | u64 expires_us
 *       | u64 revoked_us | 32 bytes BLAKE2b-256 of the token text
 *       | u8 name length | name
 *
 * Integers are big-endian. A token text is "fvt_" ID "_" SECRET, where ID
 * is 16 and SECRET 64 lowercase hex digits from randombytes_buf. The ID
 * locates the entry, and the hash of the whole text proves the secret.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store.h"
#include "store_internal.h"

#define AUTH_FORMAT_VERSION 1u
#define AUTH_KEY_MAX (2u + STORE_AUTH_NAME_MAX)
#define AUTH_USER_HEADER (1u + 1u + 8u + 8u + 1u)
#define AUTH_TOKEN_HEADER (1u + 1u + 8u + 8u + 8u + 32u + 1u)
#define AUTH_VALUE_MAX (AUTH_TOKEN_HEADER + STORE_PWHASH_MAX + STORE_AUTH_NAME_MAX)
#define AUTH_PASSWORD_MAX 1024u
#define AUTH_TOKEN_PREFIX "fvt_"
#define AUTH_SECRET_BYTES 32u

static void be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

static bool role_valid(unsigned role)
{
    return role == STORE_ROLE_ANALYST || role == STORE_ROLE_COMPLIANCE ||
           role == STORE_ROLE_ADMIN;
}

/* ---- names and roles -------------------------------------------------- */

bool store_auth_name_valid(const char *name)
{
    if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    size_t len = strnlen(name, STORE_AUTH_NAME_MAX + 1);
    if (len > STORE_AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

const char *store_role_name(unsigned role)
{
    switch (role) {
    case STORE_ROLE_ANALYST: return "analyst";
    case STORE_ROLE_COMPLIANCE: return "compliance";
    case STORE_ROLE_ADMIN: return "admin";
    default: return NULL;
    }
}

int store_role_parse(const char *text, unsigned *out)
{
    static const unsigned roles[] = {STORE_ROLE_ANALYST, STORE_ROLE_COMPLIANCE, STORE_ROLE_ADMIN};
    if (text == NULL || out == NULL)
        return FV_ERR_INVALID;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strcmp(text, store_role_name(roles[i])) == 0) {
            *out = roles[i];
            return FV_OK;
        }
    }
    return FV_ERR_INVALID;
}

/* ---- passwords -------------------------------------------------------- */

int store_password_hash(const char *password, char out[STORE_PWHASH_MAX])
{
    if (password == NULL || out == NULL)
        return FV_ERR_INVALID;
    size_t len = strnlen(password, AUTH_PASSWORD_MAX + 1);
    if (len == 0 || len > AUTH_PASSWORD_MAX)
        return FV_ERR_INVALID;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;
    /* With valid limits, crypto_pwhash_str fails when it cannot allocate
     * its working memory (64 MiB at the interactive limit). */
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return FV_ERR_NOMEM;
    return FV_OK;
}

bool store_password_verify(const char *hash, const char *password)
{
    if (hash == NULL || password == NULL)
        return false;
    size_t len = strnlen(password, AUTH_PASSWORD_MAX + 1);
    if (len > AUTH_PASSWORD_MAX || sodium_init() < 0)
        return false;
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

/* ---- encodings -------------------------------------------------------- */

static size_t user_key(const char *name, uint8_t key[AUTH_KEY_MAX])
{
    size_t len = strlen(name);
    key[0] = 'u';
    key[1] = '/';
    memcpy(key + 2, name, len);  // NOLINT(bugprone-not-null-terminated-result): binary LMDB key with its length
    return 2 + len;
}

static size_t token_key(const char *id, uint8_t key[AUTH_KEY_MAX])
{
    key[0] = 't';
    key[1] = '/';
    memcpy(key + 2, id, STORE_TOKEN_ID_LEN);
    return 2 + STORE_TOKEN_ID_LEN;
}

static size_t user_encode(const store_user *u, uint8_t out[AUTH_VALUE_MAX])
{
    size_t hash_len = strlen(u->pwhash);
    out[0] = AUTH_FORMAT_VERSION;
    out[1] = (uint8_t)u->role;
    be64_put(out + 2, u->created_us);
    be64_put(out + 10, u->changed_us);
    out[18] = (uint8_t)hash_len;
    memcpy(out + AUTH_USER_HEADER, u->pwhash, hash_len);
    return AUTH_USER_HEADER + hash_len;
}

/* Decode the user at key K (with its "u/" prefix) and value V. */
static bool user_decode(const MDB_val *k, const MDB_val *v, store_user *u)
{
    const uint8_t *b = v->mv_data;
    memset(u, 0, sizeof *u);
    if (k->mv_size < 3 || k->mv_size - 2 > STORE_AUTH_NAME_MAX || v->mv_size < AUTH_USER_HEADER ||
        b[0] != AUTH_FORMAT_VERSION)
        return false;
    size_t hash_len = b[18];
    if (!(hash_len < STORE_PWHASH_MAX) || v->mv_size != AUTH_USER_HEADER + hash_len)
        return false;
    memcpy(u->name, (const uint8_t *)k->mv_data + 2, k->mv_size - 2);
    u->role = b[1];
    u->created_us = be64_get(b + 2);
    u->changed_us = be64_get(b + 10);
    memcpy(u->pwhash, b + AUTH_USER_HEADER, hash_len);
    return role_valid(u->role) && store_auth_name_valid(u->name);
}

static size_t token_encode(const store_token *t, uint8_t out[AUTH_VALUE_MAX])
{
    size_t name_len = strlen(t->name);
    out[0] = AUTH_FORMAT_VERSION;
    out[1] = (uint8_t)t->role;
    be64_put(out + 2, t->created_us);
    be64_put(out + 10, t->expires_us);
    be64_put(out + 18, t->revoked_us);
    memcpy(out + 26, t->hash, 32);
    out[58] = (uint8_t)name_len;
    memcpy(out + AUTH_TOKEN_HEADER, t->name, name_len);
    return AUTH_TOKEN_HEADER + name_len;
}

static bool token_decode(const MDB_val *k, const MDB_val *v, store_token *t)
{
    const uint8_t *b = v->mv_data;
    memset(t, 0, sizeof *t);
    if (k->mv_size != 2 + STORE_TOKEN_ID_LEN || v->mv_size < AUTH_TOKEN_HEADER ||
        b[0] != AUTH_FORMAT_VERSION)
        return false;
    size_t name_len = b[58];
    if (name_len > STORE_AUTH_NAME_MAX || v->mv_size != AUTH_TOKEN_HEADER + name_len)
        return false;
    memcpy(t->id, (const uint8_t *)k->mv_data + 2, STORE_TOKEN_ID_LEN);
    t->role = b[1];
    t->created_us = be64_get(b + 2);
    t->expires_us = be64_get(b + 10);
    t->revoked_us = be64_get(b + 18);
    memcpy(t->hash, b + 26, 32);
    memcpy(t->name, b + AUTH_TOKEN_HEADER, name_len);
    return role_valid(t->role) && store_auth_name_valid(t->name);
}

/* ---- generic helpers -------------------------------------------------- */

/* One write: put VALUE at KEY (or delete KEY when VALUE is NULL). The
 * outcome of the existence check goes to RESULT, not to the LMDB code,
 * because store_write_txn marks the store failed on any error code. */
typedef struct auth_write_ctx {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int require;            /* 1: key must not exist, -1: key must exist, 0: either,
                               2: no key with the same 2-byte prefix may exist */
    int result;             /* FV_OK, FV_ERR_STATE (exists) or FV_ERR_NOT_FOUND */
} auth_write_ctx;

static int auth_write(store_env *env, MDB_txn *txn, void *arg)
{
    auth_write_ctx *ctx = arg;
    MDB_val k = {.mv_size = ctx->key_len, .mv_data = (void *)ctx->key};
    MDB_val old;
    int mrc = mdb_get(txn, env->auth, &k, &old);

    ctx->result = FV_OK;
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        return mrc;
    if (ctx->require == 2) {
        /* Look for the first key at or after the prefix in this write
         * transaction, so no other writer can add one in between. */
        MDB_cursor *cur = NULL;
        int crc = mdb_cursor_open(txn, env->auth, &cur);
        if (crc != MDB_SUCCESS)
            return crc;
        MDB_val first = {.mv_size = 2, .mv_data = (void *)ctx->key};
        MDB_val data;
        crc = mdb_cursor_get(cur, &first, &data, MDB_SET_RANGE);
        bool prefix_in_use = crc == MDB_SUCCESS && first.mv_size >= 2 &&
                             memcmp(first.mv_data, ctx->key, 2) == 0;
        mdb_cursor_close(cur);
        if (crc != MDB_SUCCESS && crc != MDB_NOTFOUND)
            return crc;
        if (prefix_in_use) {
            ctx->result = FV_ERR_STATE;
            return MDB_SUCCESS;
        }
    }
    if (ctx->require > 0 && mrc == MDB_SUCCESS) {
        ctx->result = FV_ERR_STATE;
        return MDB_SUCCESS;
    }
    if (ctx->require < 0 && mrc == MDB_NOTFOUND) {
        ctx->result = FV_ERR_NOT_FOUND;
        return MDB_SUCCESS;
    }
    if (ctx->value == NULL)
        return mdb_del(txn, env->auth, &k, NULL);
    MDB_val v = {.mv_size = ctx->value_len, .mv_data = (void *)ctx->value};
    return mdb_put(txn, env->auth, &k, &v, 0);
}

static int auth_write_run(store_env *env, const char *action, auth_write_ctx *ctx)
{
    if (!env->has_auth || env->rdonly)
        return FV_ERR_STATE;
    int rc = store_write_txn(env, action, auth_write, ctx);
    return rc != FV_OK ? rc : ctx->result;
}

/* Read KEY into a copy of at most AUTH_VALUE_MAX bytes. */
static int auth_get(store_env *env, const uint8_t *key, size_t key_len, uint8_t *value,
                    size_t *value_len)
{
    if (!env->has_auth)
        return FV_ERR_NOT_FOUND;
    MDB_txn *txn = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    int mrc = mdb_get(txn, env->auth, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        rc = FV_ERR_NOT_FOUND;
    } else if (mrc != MDB_SUCCESS || v.mv_size > AUTH_VALUE_MAX) {
        rc = FV_ERR_STORE;
    } else {
        memcpy(value, v.mv_data, v.mv_size);
        *value_len = v.mv_size;
    }
    store_read_end(env, &txn);
    return rc;
}

/* Call ITEM_FN for every item whose key starts with the 2-byte PREFIX. */
typedef bool (*auth_item_fn)(void *ctx, const MDB_val *k, const MDB_val *v);

static int auth_each(store_env *env, const char prefix[2], auth_item_fn item_fn, void *ctx)
{
    if (!env->has_auth)
        return FV_OK;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int rc = store_read_begin(env, &txn);
    if (rc != FV_OK)
        return rc;
    int mrc = mdb_cursor_open(txn, env->auth, &cur);
    MDB_val k = {.mv_size = 2, .mv_data = (void *)prefix};
    MDB_val v;
    if (mrc == MDB_SUCCESS)
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == MDB_SUCCESS) {
        if (k.mv_size < 2 || memcmp(k.mv_data, prefix, 2) != 0)
            break;
        if (!item_fn(ctx, &k, &v))
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        rc = FV_ERR_STORE;
    mdb_cursor_close(cur);
    store_read_end(env, &txn);
    return rc;
}

/* ---- users ------------------------------------------------------------ */

/* Write user U with the REQUIRE rule of auth_write_ctx, as ACTION. */
static int user_write(store_env *env, const store_user *u, int require, const char *action)
{
    if (env == NULL || u == NULL || !store_auth_name_valid(u->name) || !role_valid(u->role) ||
        strnlen(u->pwhash, STORE_PWHASH_MAX) == 0 ||
        !(strnlen(u->pwhash, STORE_PWHASH_MAX) < STORE_PWHASH_MAX))
        return FV_ERR_INVALID;

    uint8_t key[AUTH_KEY_MAX], value[AUTH_VALUE_MAX];
    auth_write_ctx ctx = {.key = key, .key_len = user_key(u->name, key), .value = value,
                          .value_len = user_encode(u, value), .require = require};
    return auth_write_run(env, action, &ctx);
}

int store_user_put(store_env *env, const store_user *u, bool create)
{
    return user_write(env, u, create ? 1 : -1, create ? "add a user" : "update a user");
}

int store_user_put_first(store_env *env, const store_user *u)
{
    return user_write(env, u, 2, "add the first user");
}

int store_user_get(store_env *env, const char *name, store_user *out)
{
    if (env == NULL || out == NULL || !store_auth_name_valid(name))
        return FV_ERR_INVALID;
    uint8_t key[AUTH_KEY_MAX], value[AUTH_VALUE_MAX];
    size_t key_len = user_key(name, key), value_len = 0;
    int rc = auth_get(env, key, key_len, value, &value_len);
    if (rc != FV_OK)
        return rc;
    MDB_val k = {.mv_size = key_len, .mv_data = key};
    MDB_val v = {.mv_size = value_len, .mv_data = value};
    if (!user_decode(&k, &v, out)) {
        fv_warning("store: the entry of a user in the auth database is malformed");
        return FV_ERR_STORE;
    }
    return FV_OK;
}

int store_user_delete(store_env *env, const char *name)
{
    if (env == NULL || !store_auth_name_valid(name))
        return FV_ERR_INVALID;
    uint8_t key[AUTH_KEY_MAX];
    auth_write_ctx ctx = {.key = key, .key_len = user_key(name, key), .require = -1};
    return auth_write_run(env, "remove a user", &ctx);
}

typedef struct user_each_ctx {
    store_user_fn fn;
    void *ctx;
    size_t count;
} user_each_ctx;

static bool user_item(void *arg, const MDB_val *k, const MDB_val *v)
{
    user_each_ctx *c = arg;
    store_user u;
    if (!user_decode(k, v, &u)) {
        fv_warning("store: skipping a malformed user entry in the auth database");
        return true;
    }
    c->count++;
    return c->fn == NULL || c->fn(c->ctx, &u);
}

int store_user_each(store_env *env, store_user_fn fn, void *ctx, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (env == NULL)
        return FV_ERR_INVALID;
    user_each_ctx c = {.fn = fn, .ctx = ctx};
    int rc = auth_each(env, "u/", user_item, &c);
    if (count != NULL)
        *count = c.count;
    return rc;
}

/* ---- tokens ----------------------------------------------------------- */

static void hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static void token_hash(const char *text, uint8_t out[32])
{
    crypto_generichash(out, 32, (const unsigned char *)text, strlen(text), NULL, 0);
}

int store_token_create(store_env *env, const char *name, unsigned role, uint64_t expires_us,
                       uint64_t now_us, char text[STORE_TOKEN_TEXT_LEN + 1], store_token *out)
{
    if (env == NULL || text == NULL || !store_auth_name_valid(name) || !role_valid(role))
        return FV_ERR_INVALID;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;

    store_token t;
    memset(&t, 0, sizeof t);
    uint8_t id_bytes[STORE_TOKEN_ID_LEN / 2], secret[AUTH_SECRET_BYTES];
    char secret_hex[2 * AUTH_SECRET_BYTES + 1];
    snprintf(t.name, sizeof t.name, "%s", name);
    t.role = role;
    t.created_us = now_us;
    t.expires_us = expires_us;

    uint8_t key[AUTH_KEY_MAX], value[AUTH_VALUE_MAX];
    int rc = FV_ERR_STATE;
    /* A random 64-bit id collides only by astronomical chance; the
     * create-only write turns that chance into a retry, not an overwrite. */
    for (int attempt = 0; attempt < 4 && rc == FV_ERR_STATE; attempt++) {
        randombytes_buf(id_bytes, sizeof id_bytes);
        randombytes_buf(secret, sizeof secret);
        hex_encode(id_bytes, sizeof id_bytes, t.id);
        hex_encode(secret, sizeof secret, secret_hex);
        snprintf(text, STORE_TOKEN_TEXT_LEN + 1, AUTH_TOKEN_PREFIX "%s_%s", t.id, secret_hex);
        token_hash(text, t.hash);
        auth_write_ctx ctx = {.key = key, .key_len = token_key(t.id, key), .value = value,
                              .value_len = token_encode(&t, value), .require = 1};
        rc = auth_write_run(env, "create an API token", &ctx);
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(secret_hex, sizeof secret_hex);
    if (rc != FV_OK) {
        sodium_memzero(text, STORE_TOKEN_TEXT_LEN + 1);
        return rc;
    }
    if (out != NULL)
        *out = t;
    return FV_OK;
}

static bool is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static int token_get(store_env *env, const char *id, store_token *out)
{
    uint8_t key[AUTH_KEY_MAX], value[AUTH_VALUE_MAX];
    size_t key_len = token_key(id, key), value_len = 0;
    int rc = auth_get(env, key, key_len, value, &value_len);
    if (rc != FV_OK)
        return rc;
    MDB_val k = {.mv_size = key_len, .mv_data = key};
    MDB_val v = {.mv_size = value_len, .mv_data = value};
    if (!token_decode(&k, &v, out)) {
        fv_warning("store: the entry of an API token in the auth database is malformed");
        return FV_ERR_STORE;
    }
    return FV_OK;
}

int store_token_find(store_env *env, const char *text, store_token *out)
{
    const size_t prefix_len = strlen(AUTH_TOKEN_PREFIX);
    if (env == NULL || text == NULL || out == NULL)
        return FV_ERR_INVALID;
    if (strnlen(text, STORE_TOKEN_TEXT_LEN + 1) != STORE_TOKEN_TEXT_LEN ||
        memcmp(text, AUTH_TOKEN_PREFIX, prefix_len) != 0 ||
        text[prefix_len + STORE_TOKEN_ID_LEN] != '_' ||
        !is_lower_hex(text + prefix_len, STORE_TOKEN_ID_LEN) ||
        !is_lower_hex(text + prefix_len + STORE_TOKEN_ID_LEN + 1, 64))
        return FV_ERR_INVALID;

    char id[STORE_TOKEN_ID_LEN + 1];
    memcpy(id, text + prefix_len, STORE_TOKEN_ID_LEN);
    id[STORE_TOKEN_ID_LEN] = '\0';
    int rc = token_get(env, id, out);
    if (rc != FV_OK)
        return rc;
    uint8_t hash[32];
    token_hash(text, hash);
    if (sodium_memcmp(hash, out->hash, sizeof hash) != 0) {
        memset(out, 0, sizeof *out);
        return FV_ERR_NOT_FOUND;
    }
    return FV_OK;
}

int store_token_revoke(store_env *env, const char *id, uint64_t now_us)
{
    if (env == NULL || id == NULL || strlen(id) != STORE_TOKEN_ID_LEN ||
        !is_lower_hex(id, STORE_TOKEN_ID_LEN))
        return FV_ERR_INVALID;
    store_token t;
    int rc = token_get(env, id, &t);
    if (rc != FV_OK)
        return rc;
    if (t.revoked_us != 0)
        return FV_ERR_STATE;
    t.revoked_us = now_us != 0 ? now_us : 1;

    uint8_t key[AUTH_KEY_MAX], value[AUTH_VALUE_MAX];
    auth_write_ctx ctx = {.key = key, .key_len = token_key(id, key), .value = value,
                          .value_len = token_encode(&t, value), .require = -1};
    return auth_write_run(env, "revoke an API token", &ctx);
}

typedef struct token_each_ctx {
    store_token_fn fn;
    void *ctx;
    size_t count;
} token_each_ctx;

static bool token_item(void *arg, const MDB_val *k, const MDB_val *v)
{
    token_each_ctx *c = arg;
    store_token t;
    if (!token_decode(k, v, &t)) {
        fv_warning("store: skipping a malformed API token entry in the auth database");
        return true;
    }
    c->count++;
    return c->fn == NULL || c->fn(c->ctx, &t);
}

int store_token_each(store_env *env, store_token_fn fn, void *ctx, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (env == NULL)
        return FV_ERR_INVALID;
    token_each_ctx c = {.fn = fn, .ctx = ctx};
    int rc = auth_each(env, "t/", token_item, &c);
    if (count != NULL)
        *count = c.count;
    return rc;
}
