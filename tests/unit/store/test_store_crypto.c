/*
 * test_store_crypto.c: encryption of record values under per-class,
 * per-day keys in DB/data.keys, and crypto-shredding by retention. Runs
 * against a real LMDB environment in a temporary directory. The tests
 * open the environment's transactions themselves to read and tamper
 * with raw values, and parse data.keys by its documented layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nettle/gcm.h>
#include <sodium.h>

#include "store.h"
#include "store_internal.h"
#include "store_records.h"
#include "testutil.h"

#define HOUR_US (3600ull * 1000000ull)
#define DAY_US (24ull * HOUR_US)
#define DAY_S 86400ull
/* A fixed stored-at time: 2026-01-01T00:00:00Z in microseconds, day 20454. */
#define T0_US 1767225600000000ull
#define T0_DAY 20454u

/* data.keys layout: 32-byte header, then 48-byte slots of u8 class,
 * u8 flags (bit 0 in use), u16 zero, u32 day (little-endian), 32-byte
 * key, 8 zero bytes. */
#define KEYS_HEADER 32u
#define KEYS_SLOT 48u

typedef struct fixture {
    char dir[512];
    store_env *env;
} fixture;

/* Open a store in a new directory that seals value format VERSION, or
 * the format store_open chose for this CPU when VERSION is 0. */
static int fixture_open(void **state, unsigned version)
{
    if (sodium_init() < 0)
        return -1;
    fixture *fx = test_calloc(1, sizeof *fx);
    tu_make_temp_dir(fx->dir, sizeof fx->dir);
    char err[512];
    if (store_open(fx->dir, 0, &fx->env, err, sizeof err) != FV_OK) {
        fprintf(stderr, "store_open failed: %s\n", err);
        return -1;
    }
    if (version != 0 && store_keys_set_seal_version(fx->env, version) != FV_OK)
        return -1;
    *state = fx;
    return 0;
}

static int fixture_setup(void **state)
{
    return fixture_open(state, 0);
}

/* The format-specific tests run once per format: 2 (XChaCha20-Poly1305)
 * and 3 (AES-256-GCM). Both are sealed and opened on any CPU. */
static int fixture_setup_v2(void **state)
{
    return fixture_open(state, 2);
}

static int fixture_setup_v3(void **state)
{
    return fixture_open(state, 3);
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;
    store_close(&fx->env);
    tu_remove_tree(fx->dir);
    test_free(fx);
    return 0;
}

static void store_path(char out[600], const fixture *fx, const char *name)
{
    snprintf(out, 600, "%s/%s", fx->dir, name);
}

/* Records collected by a query callback. */
typedef struct collected {
    fv_record recs[32];
    size_t n;
} collected;

static bool collect(void *ctx, const fv_record *rec)
{
    collected *c = ctx;
    if (c->n < sizeof c->recs / sizeof c->recs[0])
        c->recs[c->n] = *rec;
    c->n++;
    return true;
}

static void query_all(store_env *env, fv_class cls, uint64_t now_us, collected *c,
                      store_query_stats *stats)
{
    memset(c, 0, sizeof *c);
    store_query q = {.cls = cls, .limit = STORE_QUERY_LIMIT_MAX};
    assert_int_equal(store_query_run_stats(env, &q, now_us, collect, c, NULL, stats), FV_OK);
}

/* Encode REC of CLS into OUT; return the length. Comparing encodings
 * compares every stored field and ignores struct padding. */
static size_t encode(fv_class cls, const void *rec, uint8_t out[STORE_RECORD_MAX_BYTES])
{
    size_t written = 0;
    assert_int_equal(store_record_encode(cls, rec, out, STORE_RECORD_MAX_BYTES, &written), FV_OK);
    return written;
}

/* Check that GOT has every stored field of WANT, two records of CLS. */
static void assert_same_record(fv_class cls, const void *want, const void *got)
{
    uint8_t want_bytes[STORE_RECORD_MAX_BYTES], got_bytes[STORE_RECORD_MAX_BYTES];
    size_t len = encode(cls, want, want_bytes);
    assert_int_equal(encode(cls, got, got_bytes), len);
    assert_memory_equal(got_bytes, want_bytes, len);
}

/* A DNS record for NAME whose client pseudonym is PSEUDONYM. */
static void make_dns(fv_dns_record *d, uint32_t seed, const char *name,
                     const uint8_t pseudonym[16])
{
    rec_fill_dns(d, seed);
    snprintf(d->qname, sizeof d->qname, "%s", name);
    d->question_count = 1;
    d->questions[0].qtype = 1;
    d->questions[0].qclass = 1;
    snprintf(d->questions[0].name, sizeof d->questions[0].name, "%s", name);
    d->client.kind = FV_EP_PSEUDO_IPV4;
    memcpy(d->client.addr, pseudonym, 16);
}

/* Copy of the raw LMDB value of record ID in class CLS; NULL if absent. */
static uint8_t *raw_get(store_env *env, fv_class cls, uint64_t id, size_t *len)
{
    MDB_txn *txn = NULL;
    assert_int_equal(mdb_txn_begin(env->mdb, NULL, MDB_RDONLY, &txn), MDB_SUCCESS);
    uint8_t keybuf[8];
    store_key_encode(id, keybuf);
    MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf}, v;
    uint8_t *copy = NULL;
    if (mdb_get(txn, env->dbi[cls], &k, &v) == MDB_SUCCESS) {
        copy = malloc(v.mv_size);
        assert_non_null(copy);
        memcpy(copy, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    mdb_txn_abort(txn);
    return copy;
}

/* Write VALUE as record ID of class CLS, bypassing the store's writer. */
static void raw_put(store_env *env, fv_class cls, uint64_t id, const uint8_t *value, size_t len)
{
    MDB_txn *txn = NULL;
    assert_int_equal(mdb_txn_begin(env->mdb, NULL, 0, &txn), MDB_SUCCESS);
    uint8_t keybuf[8];
    store_key_encode(id, keybuf);
    MDB_val k = {.mv_size = sizeof keybuf, .mv_data = keybuf};
    MDB_val v = {.mv_size = len, .mv_data = (void *)(uintptr_t)value};
    assert_int_equal(mdb_put(txn, env->dbi[cls], &k, &v, 0), MDB_SUCCESS);
    assert_int_equal(mdb_txn_commit(txn), MDB_SUCCESS);
}

/* Id of the first record of CLS (the store assigns ids on commit). */
static uint64_t first_id(store_env *env, fv_class cls, uint64_t now_us)
{
    collected c;
    query_all(env, cls, now_us, &c, NULL);
    assert_true(c.n > 0);
    return c.recs[0].id;
}

/* One in-use slot parsed from data.keys. */
typedef struct key_slot {
    uint8_t cls;
    uint32_t day;
    uint8_t key[32];
} key_slot;

/* Parse the in-use slots of the data.keys file at PATH into SLOTS (up
 * to CAP); return how many there are. *FILE_LEN gets the file size. */
static size_t read_key_slots(const char *path, key_slot *slots, size_t cap, size_t *file_len)
{
    size_t len = 0;
    char *data = tu_read_file(path, &len);
    assert_non_null(data);
    assert_true(len >= KEYS_HEADER);
    assert_memory_equal(data, "FVDKEYS\n", 8);
    size_t n = 0;
    for (size_t off = KEYS_HEADER; off + KEYS_SLOT <= len; off += KEYS_SLOT) {
        const uint8_t *s = (const uint8_t *)data + off;
        if ((s[1] & 1u) == 0)
            continue;
        if (n < cap) {
            slots[n].cls = s[0];
            slots[n].day = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 |
                           (uint32_t)s[7] << 24;
            memcpy(slots[n].key, s + 8, 32);
        }
        n++;
    }
    sodium_memzero(data, len);
    free(data);
    if (file_len != NULL)
        *file_len = len;
    return n;
}

/* Associated data of record ID of class CLS: u8 class, 8-byte
 * big-endian id, u32 little-endian day. */
static void make_ad(uint8_t ad[13], uint8_t cls, uint64_t id)
{
    ad[0] = cls;
    store_key_encode(id, ad + 1);
    uint32_t day = (uint32_t)(id / DAY_US);
    for (int i = 0; i < 4; i++)
        ad[9 + i] = (uint8_t)(day >> (8 * i));
}

/* The format 3 AES-256-GCM context for data key KEY and the 16-byte
 * nonce prefix PREFIX, derived here from the format's description in
 * docs/PRIVACY.md, not by the store's code. */
static void v3_context(struct gcm_aes256_ctx *gcm, const uint8_t key[32], const uint8_t *prefix)
{
    static const char label[] = "flowveil value v3 aes-256-gcm";
    uint8_t message[sizeof label - 1 + 16], subkey[32];
    memcpy(message, label, sizeof label - 1);
    memcpy(message + sizeof label - 1, prefix, 16);
    crypto_generichash(subkey, sizeof subkey, message, sizeof message, key, 32);
    gcm_aes256_set_key(gcm, subkey);
}

/* Seal PLAIN as format 3 VALUE bytes after the version and nonce: the
 * ciphertext and tag under KEY with the 24-byte NONCE and AD. */
static void v3_seal(uint8_t *out, const uint8_t *plain, size_t plain_len, const uint8_t ad[13],
                    const uint8_t nonce[24], const uint8_t key[32])
{
    struct gcm_aes256_ctx gcm;
    v3_context(&gcm, key, nonce);
    uint8_t iv[12] = {0};
    memcpy(iv + 4, nonce + 16, 8);
    gcm_aes256_set_iv(&gcm, sizeof iv, iv);
    gcm_aes256_update(&gcm, 13, ad);
    gcm_aes256_encrypt(&gcm, plain_len, out, plain);
    gcm_aes256_digest(&gcm, 16, out + plain_len);
}

/* Return true if KEY decrypts VALUE of record ID, class CLS, into PLAIN
 * (PLAIN_LEN set). The value is the version (2 or 3), a 24-byte nonce
 * and the ciphertext with its 16-byte tag. */
static bool open_with(const uint8_t *value, size_t len, uint8_t cls, uint64_t id,
                      const uint8_t key[32], uint8_t plain[STORE_RECORD_MAX_BYTES],
                      size_t *plain_len)
{
    if (len < 41 || len - 41 > STORE_RECORD_MAX_BYTES)
        return false;
    uint8_t ad[13];
    make_ad(ad, cls, id);
    if (value[0] == 2) {
        unsigned long long mlen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, value + 25,
                                                       len - 25, ad, sizeof ad, value + 1,
                                                       key) != 0)
            return false;
        *plain_len = (size_t)mlen;
        return true;
    }
    if (value[0] != 3)
        return false;
    struct gcm_aes256_ctx gcm;
    v3_context(&gcm, key, value + 1);
    uint8_t iv[12] = {0}, tag[16];
    memcpy(iv + 4, value + 17, 8);
    gcm_aes256_set_iv(&gcm, sizeof iv, iv);
    gcm_aes256_update(&gcm, sizeof ad, ad);
    gcm_aes256_decrypt(&gcm, len - 41, plain, value + 25);
    gcm_aes256_digest(&gcm, sizeof tag, tag);
    *plain_len = len - 41;
    return sodium_memcmp(tag, value + len - 16, sizeof tag) == 0;
}

/* Return true if KEY decrypts VALUE of record ID, class CLS. */
static bool try_decrypt(const uint8_t *value, size_t len, uint8_t cls, uint64_t id,
                        const uint8_t key[32])
{
    uint8_t plain[STORE_RECORD_MAX_BYTES];
    size_t plain_len = 0;
    return open_with(value, len, cls, id, key, plain, &plain_len);
}

/* The first "retention.key_destroyed" audit entry. */
typedef struct audit_find {
    bool found;
    char object[128];
    char params[512];
} audit_find;

static bool find_key_destroyed(void *ctx, const store_audit_entry *e)
{
    audit_find *af = ctx;
    if (strcmp(e->action, "retention.key_destroyed") != 0)
        return true;
    af->found = true;
    snprintf(af->object, sizeof af->object, "%s", e->object);
    snprintf(af->params, sizeof af->params, "%s", e->params);
    return false;
}

/* ---------------------------------------------------------------------- */

static void test_crypto_round_trip_two_days(void **state)
{
    fixture *fx = *state;
    fv_dns_record dns[2];
    fv_flow_record flows[2];
    for (uint32_t i = 0; i < 2; i++) {
        rec_fill_dns(&dns[i], 10 + i);
        rec_fill_flow(&flows[i], 20 + i);
        /* One record of each class on day T0_DAY and one on the next day. */
        uint64_t at = T0_US + i * DAY_US + HOUR_US;
        assert_int_equal(store_put(fx->env, FV_CLASS_DNS, &dns[i], at), FV_OK);
        assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &flows[i], at), FV_OK);
    }
    assert_int_equal(store_commit(fx->env), FV_OK);

    uint64_t now = T0_US + 2 * DAY_US;
    for (int pass = 0; pass < 2; pass++) {
        collected c;
        store_query_stats stats;
        query_all(fx->env, FV_CLASS_DNS, now, &c, &stats);
        assert_int_equal(c.n, 2);
        assert_int_equal(stats.undecryptable, 0);
        uint8_t want[STORE_RECORD_MAX_BYTES], got[STORE_RECORD_MAX_BYTES];
        for (size_t i = 0; i < 2; i++) {
            size_t n = encode(FV_CLASS_DNS, &dns[i], want);
            assert_int_equal(encode(FV_CLASS_DNS, &c.recs[i].u.dns, got), n);
            assert_memory_equal(got, want, n);
        }
        query_all(fx->env, FV_CLASS_FLOW, now, &c, &stats);
        assert_int_equal(c.n, 2);
        for (size_t i = 0; i < 2; i++) {
            size_t n = encode(FV_CLASS_FLOW, &flows[i], want);
            assert_int_equal(encode(FV_CLASS_FLOW, &c.recs[i].u.flow, got), n);
            assert_memory_equal(got, want, n);
        }

        /* The raw value has the fixture's format on the first pass and
         * is 41 bytes longer than the encoding. */
        size_t raw_len = 0;
        uint8_t *raw = raw_get(fx->env, FV_CLASS_FLOW, c.recs[0].id, &raw_len);
        assert_non_null(raw);
        if (pass == 0)
            assert_int_equal(raw[0], store_keys_seal_version(fx->env));
        assert_int_equal(raw_len, encode(FV_CLASS_FLOW, &flows[0], want) + STORE_VALUE_OVERHEAD);
        free(raw);

        /* Second pass: the keys come back from data.keys after a reopen. */
        store_close(&fx->env);
        char err[256];
        assert_int_equal(store_open(fx->dir, 0, &fx->env, err, sizeof err), FV_OK);
    }

    /* Two classes on two days: four keys, the file private to its owner. */
    char path[600];
    store_path(path, fx, "data.keys");
    key_slot slots[8];
    size_t len = 0;
    assert_int_equal(read_key_slots(path, slots, 8, &len), 4);
    assert_int_equal(len, KEYS_HEADER + 4 * KEYS_SLOT);
    /* Group-readable for the serving user, never readable by others
     * (the test runs with a umask that keeps 0640). */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0007, 0);
    assert_int_equal(st.st_mode & 0200, 0200);
}

static void test_crypto_key_reused_within_day(void **state)
{
    fixture *fx = *state;
    for (uint32_t i = 0; i < 3; i++) {
        fv_flow_record f;
        rec_fill_flow(&f, i + 1);
        assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + i * HOUR_US), FV_OK);
        /* A commit per record: each must find the day's key, not add one. */
        assert_int_equal(store_commit(fx->env), FV_OK);
    }
    char path[600];
    store_path(path, fx, "data.keys");
    key_slot slots[4];
    assert_int_equal(read_key_slots(path, slots, 4, NULL), 1);
    assert_int_equal(slots[0].cls, FV_CLASS_FLOW);
    assert_int_equal(slots[0].day, T0_DAY);
}

static void test_crypto_flipped_byte_skipped_and_counted(void **state)
{
    fixture *fx = *state;
    for (uint32_t i = 0; i < 3; i++) {
        fv_flow_record f;
        rec_fill_flow(&f, i + 1);
        assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + i), FV_OK);
    }
    assert_int_equal(store_commit(fx->env), FV_OK);
    uint64_t id = first_id(fx->env, FV_CLASS_FLOW, T0_US) + 1;

    size_t len = 0;
    uint8_t *value = raw_get(fx->env, FV_CLASS_FLOW, id, &len);
    assert_non_null(value);
    /* A ciphertext byte past the version byte and the 24-byte nonce. */
    value[25 + 3] ^= 0x01;
    raw_put(fx->env, FV_CLASS_FLOW, id, value, len);
    free(value);

    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_FLOW, T0_US, &c, &stats);
    assert_int_equal(c.n, 2);
    assert_int_equal(stats.undecryptable, 1);
    assert_int_equal(stats.undecodable, 0);
    assert_int_equal(store_undecryptable_total(fx->env), 1);
    for (size_t i = 0; i < c.n; i++)
        assert_int_not_equal(c.recs[i].id, id);
}

static void test_crypto_truncated_and_garbage_values_skipped(void **state)
{
    fixture *fx = *state;
    fv_flow_record f;
    rec_fill_flow(&f, 1);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);
    uint64_t id = first_id(fx->env, FV_CLASS_FLOW, T0_US);

    size_t len = 0;
    uint8_t *value = raw_get(fx->env, FV_CLASS_FLOW, id, &len);
    assert_non_null(value);
    /* Every prefix of a valid value, including the empty one and one
     * shorter than version + nonce + tag, is rejected without a crash. */
    for (size_t cut = 0; cut < len; cut += 7) {
        raw_put(fx->env, FV_CLASS_FLOW, id, value, cut);
        collected c;
        store_query_stats stats;
        query_all(fx->env, FV_CLASS_FLOW, T0_US, &c, &stats);
        assert_int_equal(c.n, 0);
        assert_int_equal(stats.undecryptable, 1);
    }
    /* An unknown format version byte, and each known format's byte on
     * the other format's value. */
    value[0] = value[0] == 2 ? 3 : 2;
    raw_put(fx->env, FV_CLASS_FLOW, id, value, len);
    {
        collected c;
        store_query_stats stats;
        query_all(fx->env, FV_CLASS_FLOW, T0_US, &c, &stats);
        assert_int_equal(c.n, 0);
        assert_int_equal(stats.undecryptable, 1);
    }
    value[0] = 4;
    raw_put(fx->env, FV_CLASS_FLOW, id, value, len);
    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_FLOW, T0_US, &c, &stats);
    assert_int_equal(c.n, 0);
    assert_int_equal(stats.undecryptable, 1);
    free(value);
}

static void test_crypto_moved_value_fails(void **state)
{
    fixture *fx = *state;
    fv_flow_record f;
    rec_fill_flow(&f, 1);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + HOUR_US), FV_OK);
    /* Keys for the other class and the next day exist too, so a failure
     * below comes from the associated data, not from a missing key. */
    fv_dns_record d;
    rec_fill_dns(&d, 2);
    assert_int_equal(store_put(fx->env, FV_CLASS_DNS, &d, T0_US + 2 * HOUR_US), FV_OK);
    rec_fill_flow(&f, 3);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + DAY_US + HOUR_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);

    uint64_t now = T0_US + 2 * DAY_US;
    uint64_t id = first_id(fx->env, FV_CLASS_FLOW, now);
    size_t len = 0;
    uint8_t *value = raw_get(fx->env, FV_CLASS_FLOW, id, &len);
    assert_non_null(value);

    /* Another id on the same day of the same class. */
    raw_put(fx->env, FV_CLASS_FLOW, id + 5, value, len);
    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_FLOW, now, &c, &stats);
    assert_int_equal(c.n, 2);
    assert_int_equal(stats.undecryptable, 1);

    /* The same id in another class. */
    raw_put(fx->env, FV_CLASS_DNS, id, value, len);
    query_all(fx->env, FV_CLASS_DNS, now, &c, &stats);
    assert_int_equal(c.n, 1);
    assert_int_equal(stats.undecryptable, 1);

    /* Another day (the key of that day exists). */
    raw_put(fx->env, FV_CLASS_FLOW, id + DAY_US + 7, value, len);
    query_all(fx->env, FV_CLASS_FLOW, now, &c, &stats);
    assert_int_equal(c.n, 2);
    assert_int_equal(stats.undecryptable, 2);
    free(value);
}

static void test_crypto_shredding_leaves_nothing_readable(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_DNS, DAY_S), FV_OK);

    /* Distinctive plaintext: a random DNS name and client pseudonym. */
    uint8_t rnd[8], pseudonym[16];
    randombytes_buf(rnd, sizeof rnd);
    randombytes_buf(pseudonym, sizeof pseudonym);
    char name[64];
    snprintf(name, sizeof name, "shredtest-%02x%02x%02x%02x%02x%02x%02x%02x.example", rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);

    /* Five records on day D = T0_DAY, and one on day D + 3 that stays live. */
    for (uint32_t i = 0; i < 5; i++) {
        fv_dns_record d;
        make_dns(&d, i + 1, name, pseudonym);
        assert_int_equal(store_put(fx->env, FV_CLASS_DNS, &d, T0_US + HOUR_US + i), FV_OK);
    }
    fv_dns_record live;
    rec_fill_dns(&live, 99);
    uint64_t live_at = T0_US + 3 * DAY_US;
    assert_int_equal(store_put(fx->env, FV_CLASS_DNS, &live, live_at), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);

    /* Before the sweep: the records are readable, and day D's key is in data.keys. */
    uint64_t id = first_id(fx->env, FV_CLASS_DNS, T0_US + HOUR_US);
    assert_int_equal(id / DAY_US, T0_DAY);
    size_t ct_len = 0;
    uint8_t *ciphertext = raw_get(fx->env, FV_CLASS_DNS, id, &ct_len);
    assert_non_null(ciphertext);

    char keys_path[600], mdb_path[600];
    store_path(keys_path, fx, "data.keys");
    store_path(mdb_path, fx, "data.mdb");
    key_slot slots[8];
    size_t nslots = read_key_slots(keys_path, slots, 8, NULL);
    assert_int_equal(nslots, 2);
    uint8_t old_key[32];
    bool found = false;
    for (size_t i = 0; i < nslots; i++) {
        if (slots[i].cls == FV_CLASS_DNS && slots[i].day == T0_DAY) {
            memcpy(old_key, slots[i].key, sizeof old_key);
            found = true;
        }
    }
    assert_true(found);
    /* Control: the key read from the file does open the value. */
    assert_true(try_decrypt(ciphertext, ct_len, FV_CLASS_DNS, id, old_key));

    /* Sweep when day D is wholly past the one-day limit but D + 3 is live. */
    uint64_t now = live_at + HOUR_US;
    store_sweep_result res;
    assert_int_equal(store_sweep(fx->env, now, 0, 0, &res), FV_OK);
    assert_true(res.complete);
    assert_int_equal(res.deleted[FV_CLASS_DNS], 5);
    assert_int_equal(res.keys_destroyed, 1);

    /* The destruction is audited with the class and the day. */
    audit_find af = {0};
    uint64_t next = 0;
    assert_int_equal(store_audit_each(fx->env, 0, STORE_AUDIT_LIMIT_MAX, false,
                                      find_key_destroyed, &af, &next),
                     FV_OK);
    assert_true(af.found);
    assert_string_equal(af.object, "dns");
    char want_params[32];
    snprintf(want_params, sizeof want_params, "day=%u", T0_DAY);
    assert_string_equal(af.params, want_params);

    /* The live record is still readable after a reopen. */
    store_close(&fx->env);
    char err[256];
    assert_int_equal(store_open(fx->dir, 0, &fx->env, err, sizeof err), FV_OK);
    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_DNS, now, &c, &stats);
    assert_int_equal(c.n, 1);
    assert_int_equal(stats.undecryptable, 0);
    store_close(&fx->env);

    /* Raw bytes on disk: no plaintext in data.mdb or data.keys, and the
     * destroyed key appears nowhere in data.keys. */
    const char *files[] = {mdb_path, keys_path};
    for (size_t f = 0; f < 2; f++) {
        size_t len = 0;
        char *bytes = tu_read_file(files[f], &len);
        assert_non_null(bytes);
        assert_false(tu_memmem_found(bytes, len, name, strlen(name)));
        assert_false(tu_memmem_found(bytes, len, pseudonym, sizeof pseudonym));
        assert_false(tu_memmem_found(bytes, len, old_key, sizeof old_key));
        free(bytes);
    }

    /* The old ciphertext opens under no key left in data.keys. */
    nslots = read_key_slots(keys_path, slots, 8, NULL);
    assert_int_equal(nslots, 1);
    for (size_t i = 0; i < nslots; i++) {
        assert_false(slots[i].cls == FV_CLASS_DNS && slots[i].day == T0_DAY);
        assert_false(try_decrypt(ciphertext, ct_len, FV_CLASS_DNS, id, slots[i].key));
    }
    sodium_memzero(old_key, sizeof old_key);
    free(ciphertext);
}

static void test_crypto_freed_slot_reused(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, DAY_S), FV_OK);
    fv_flow_record f;
    rec_fill_flow(&f, 1);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);

    char path[600];
    store_path(path, fx, "data.keys");
    size_t len_before = 0;
    key_slot slots[4];
    assert_int_equal(read_key_slots(path, slots, 4, &len_before), 1);

    store_sweep_result res;
    assert_int_equal(store_sweep(fx->env, T0_US + 3 * DAY_US, 0, 0, &res), FV_OK);
    assert_int_equal(res.keys_destroyed, 1);
    size_t len_after = 0;
    assert_int_equal(read_key_slots(path, slots, 4, &len_after), 0);
    /* Overwritten in place, never truncated. */
    assert_int_equal(len_after, len_before);

    /* A sweep with nothing due destroys nothing more. */
    assert_int_equal(store_sweep(fx->env, T0_US + 3 * DAY_US, 0, 0, &res), FV_OK);
    assert_int_equal(res.keys_destroyed, 0);

    /* The next day's key takes the freed slot: the file does not grow. */
    rec_fill_flow(&f, 2);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + 3 * DAY_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);
    assert_int_equal(read_key_slots(path, slots, 4, &len_after), 1);
    assert_int_equal(len_after, len_before);
    assert_int_equal(slots[0].day, T0_DAY + 3);
}

/* Open the raw VALUE of record ID of class CLS through the store. */
static store_value_status open_raw(store_env *env, fv_class cls, uint64_t id,
                                   const uint8_t *value, size_t len)
{
    uint8_t plain[STORE_RECORD_MAX_BYTES];
    size_t plain_len = 0;
    bool refreshed = false;
    store_value_status st =
        store_value_open(env, cls, id, value, len, plain, sizeof plain, &plain_len, &refreshed);
    sodium_memzero(plain, sizeof plain);
    return st;
}

/* A value that this process opened just before its day key was
 * destroyed no longer opens here. No subkey that the reader keeps
 * survives the destruction, also when a new key of the same class and
 * day takes the freed slot. */
static void test_crypto_shredded_value_unreadable_in_process(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, DAY_S), FV_OK);
    for (uint32_t i = 0; i < 2; i++) {
        fv_flow_record f;
        rec_fill_flow(&f, i + 1);
        assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + HOUR_US + i), FV_OK);
    }
    assert_int_equal(store_commit(fx->env), FV_OK);
    uint64_t id = first_id(fx->env, FV_CLASS_FLOW, T0_US + HOUR_US);
    size_t len = 0;
    uint8_t *value = raw_get(fx->env, FV_CLASS_FLOW, id, &len);
    assert_non_null(value);
    assert_int_equal(value[0], store_keys_seal_version(fx->env));
    assert_int_equal(open_raw(fx->env, FV_CLASS_FLOW, id, value, len), STORE_VALUE_OK);

    store_sweep_result res;
    assert_int_equal(store_sweep(fx->env, T0_US + 3 * DAY_US, 0, 0, &res), FV_OK);
    assert_int_equal(res.keys_destroyed, 1);
    assert_int_equal(open_raw(fx->env, FV_CLASS_FLOW, id, value, len),
                     STORE_VALUE_UNDECRYPTABLE);

    /* A record stored later on the same day gets a new key in the freed
     * slot. The old value still does not open, and the new one does. */
    fv_flow_record f;
    rec_fill_flow(&f, 3);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + 2 * HOUR_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);
    char path[600];
    store_path(path, fx, "data.keys");
    key_slot slots[4];
    assert_int_equal(read_key_slots(path, slots, 4, NULL), 1);
    assert_int_equal(slots[0].day, T0_DAY);
    assert_int_equal(open_raw(fx->env, FV_CLASS_FLOW, id, value, len),
                     STORE_VALUE_UNDECRYPTABLE);
    uint64_t new_id = first_id(fx->env, FV_CLASS_FLOW, T0_US + 2 * HOUR_US);
    size_t new_len = 0;
    uint8_t *new_value = raw_get(fx->env, FV_CLASS_FLOW, new_id, &new_len);
    assert_non_null(new_value);
    assert_int_equal(open_raw(fx->env, FV_CLASS_FLOW, new_id, new_value, new_len),
                     STORE_VALUE_OK);

    /* The old value put back under its id is skipped by a query. */
    raw_put(fx->env, FV_CLASS_FLOW, id, value, len);
    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_FLOW, T0_US + 2 * HOUR_US, &c, &stats);
    assert_int_equal(stats.undecryptable, 1);
    for (size_t i = 0; i < c.n; i++)
        assert_int_not_equal(c.recs[i].id, id);
    free(new_value);
    free(value);
}

static void test_crypto_partial_day_key_kept(void **state)
{
    fixture *fx = *state;
    /* A two-hour limit: at T0 + 20 h the first records of day D are
     * expired but the day is not over, so its key must stay. */
    assert_int_equal(store_set_retention(fx->env, FV_CLASS_FLOW, 2 * 3600), FV_OK);
    fv_flow_record f;
    rec_fill_flow(&f, 1);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + HOUR_US), FV_OK);
    rec_fill_flow(&f, 2);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US + 19 * HOUR_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);

    store_sweep_result res;
    assert_int_equal(store_sweep(fx->env, T0_US + 20 * HOUR_US, 0, 0, &res), FV_OK);
    assert_int_equal(res.deleted[FV_CLASS_FLOW], 1);
    assert_int_equal(res.keys_destroyed, 0);
    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_FLOW, T0_US + 20 * HOUR_US, &c, &stats);
    assert_int_equal(c.n, 1);
    assert_int_equal(stats.undecryptable, 0);

    /* Once the last possible record of day D (23:59:59.999999) is past
     * the limit, the key goes. */
    assert_int_equal(store_sweep(fx->env, T0_US + DAY_US + 2 * HOUR_US - 1, 0, 0, &res), FV_OK);
    assert_int_equal(res.keys_destroyed, 0);
    assert_int_equal(store_sweep(fx->env, T0_US + DAY_US + 2 * HOUR_US, 0, 0, &res), FV_OK);
    assert_int_equal(res.keys_destroyed, 1);
}

static void test_crypto_missing_key_file_read_only(void **state)
{
    fixture *fx = *state;
    fv_flow_record f;
    rec_fill_flow(&f, 1);
    assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &f, T0_US), FV_OK);
    assert_int_equal(store_commit(fx->env), FV_OK);
    store_close(&fx->env);

    /* Without data.keys a read-only open works, and every record is
     * skipped as undecryptable instead of crashing. */
    char path[600];
    store_path(path, fx, "data.keys");
    assert_int_equal(unlink(path), 0);
    char err[256];
    assert_int_equal(store_open(fx->dir, STORE_RDONLY, &fx->env, err, sizeof err), FV_OK);
    collected c;
    store_query_stats stats;
    query_all(fx->env, FV_CLASS_FLOW, T0_US, &c, &stats);
    assert_int_equal(c.n, 0);
    assert_int_equal(stats.undecryptable, 1);
    /* A read-only open creates nothing. */
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
}

static void test_crypto_key_file_symlink_rejected(void **state)
{
    fixture *fx = *state;
    store_close(&fx->env);

    /* data.keys as a symbolic link to a file elsewhere: the store must
     * not open it, and must write nothing through it. */
    char keys[600], target[600];
    store_path(keys, fx, "data.keys");
    store_path(target, fx, "elsewhere");
    assert_int_equal(rename(keys, target), 0);
    size_t len_before = 0, len_after = 0;
    free(tu_read_file(target, &len_before));
    assert_int_equal(symlink(target, keys), 0);

    char err[256];
    assert_int_not_equal(store_open(fx->dir, 0, &fx->env, err, sizeof err), FV_OK);
    assert_null(fx->env);
    assert_non_null(strstr(err, "data.keys"));
    assert_int_not_equal(store_open(fx->dir, STORE_RDONLY, &fx->env, err, sizeof err), FV_OK);
    free(tu_read_file(target, &len_after));
    assert_int_equal(len_after, len_before);
}

static void test_crypto_world_readable_file_tightened(void **state)
{
    fixture *fx = *state;
    store_close(&fx->env);
    char path[600];
    store_path(path, fx, "data.keys");
    assert_int_equal(chmod(path, 0666), 0);
    char err[256];
    assert_int_equal(store_open(fx->dir, 0, &fx->env, err, sizeof err), FV_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

/* Seal one 8-byte value of record ID (class flows) and copy its nonce. */
static void seal_nonce(store_env *env, uint64_t id, uint8_t nonce[24])
{
    static const uint8_t plain[8] = {1, 2, 3, 4, 5, 6, 7, 8};   /* any payload */
    uint8_t sealed[64];
    size_t sealed_len = 0;
    store_keys_lock(env);
    int rc = store_value_seal(env, FV_CLASS_FLOW, id, plain, sizeof plain, sealed, sizeof sealed,
                              &sealed_len);
    store_keys_unlock(env);
    assert_int_equal(rc, FV_OK);
    memcpy(nonce, sealed + 1, 24);
}

static int compare_nonces(const void *a, const void *b)
{
    return memcmp(a, b, 24);
}

/* Each lock session draws a fresh random nonce prefix: over many
 * sessions no nonce repeats, and a forked child draws other nonces than
 * its parent. */
static void test_crypto_nonces_unique_across_sessions_and_fork(void **state)
{
    fixture *fx = *state;
    enum { SEALS = 1000 };  /* one seal per lock session */
    uint8_t(*nonces)[24] = test_malloc(SEALS * 24);
    for (int i = 0; i < SEALS; i++)
        seal_nonce(fx->env, T0_US + (uint64_t)i, nonces[i]);
    qsort(nonces, SEALS, 24, compare_nonces);
    for (int i = 1; i < SEALS; i++)
        assert_int_not_equal(memcmp(nonces[i - 1], nonces[i], 24), 0);
    test_free(nonces);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        uint8_t mine[24];
        seal_nonce(fx->env, T0_US + SEALS, mine);
        _exit(write(fds[1], mine, sizeof mine) == (ssize_t)sizeof mine ? 0 : 1);
    }
    uint8_t parent_nonce[24], child_nonce[24];
    seal_nonce(fx->env, T0_US + SEALS, parent_nonce);
    assert_int_equal(read(fds[0], child_nonce, sizeof child_nonce), (ssize_t)sizeof child_nonce);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
    assert_int_not_equal(memcmp(parent_nonce, child_nonce, sizeof parent_nonce), 0);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

enum { SESSION_SEALS = 300, SESSION_PLAIN_MAX = 200 };
typedef uint8_t session_value[SESSION_PLAIN_MAX + STORE_VALUE_OVERHEAD];

/* Seal SESSION_SEALS values of PLAIN, of 0 to 199 bytes (partial and
 * whole blocks), for consecutive flow ids in one lock session, and copy
 * the one data key they use to KEY. Checks that every value has format
 * VERSION, that all share the first value's 16-byte nonce prefix and
 * that the counter after it counts up from 0. */
static void seal_session(fixture *fx, unsigned version, const uint8_t *plain,
                         session_value *sealed, size_t *sealed_len, uint8_t key[32])
{
    store_keys_lock(fx->env);
    for (int i = 0; i < SESSION_SEALS; i++) {
        size_t plain_len = (size_t)i % SESSION_PLAIN_MAX;
        int rc = store_value_seal(fx->env, FV_CLASS_FLOW, T0_US + (uint64_t)i, plain,
                                  plain_len, sealed[i], sizeof sealed[i], &sealed_len[i]);
        assert_int_equal(rc, FV_OK);
        assert_int_equal(sealed_len[i], plain_len + STORE_VALUE_OVERHEAD);
    }
    store_keys_unlock(fx->env);

    char path[600];
    store_path(path, fx, "data.keys");
    key_slot slots[4];
    assert_int_equal(read_key_slots(path, slots, 4, NULL), 1);
    memcpy(key, slots[0].key, 32);
    for (int i = 0; i < SESSION_SEALS; i++) {
        assert_int_equal(sealed[i][0], version);
        assert_memory_equal(sealed[i] + 1, sealed[0] + 1, 16);
        assert_int_equal(load_le64(sealed[i] + 17), (uint64_t)i);
    }
}

/* A new lock session after seal_session draws a new prefix and starts
 * its counter again. */
static void check_next_session(fixture *fx, const session_value first)
{
    uint8_t next_nonce[24];
    seal_nonce(fx->env, T0_US + SESSION_SEALS, next_nonce);
    assert_memory_not_equal(next_nonce, first + 1, 16);
    assert_int_equal(load_le64(next_nonce + 16), 0);
}

/* Values sealed in one lock session share a random 16-byte nonce prefix
 * and count up in the last 8 bytes. Each value opens with
 * crypto_aead_xchacha20poly1305_ietf_decrypt, and sealing its plaintext
 * with crypto_aead_xchacha20poly1305_ietf_encrypt under the same nonce
 * gives the same bytes. */
static void test_crypto_session_seal_equals_xchacha(void **state)
{
    fixture *fx = *state;
    session_value *sealed = test_malloc(SESSION_SEALS * sizeof *sealed);
    size_t sealed_len[SESSION_SEALS];
    uint8_t plain[SESSION_PLAIN_MAX], key[32];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 7 + 3);  /* any payload */
    seal_session(fx, 2, plain, sealed, sealed_len, key);

    for (int i = 0; i < SESSION_SEALS; i++) {
        size_t plain_len = (size_t)i % SESSION_PLAIN_MAX;
        uint64_t id = T0_US + (uint64_t)i;
        const uint8_t *nonce = sealed[i] + 1;
        uint8_t ad[13];
        make_ad(ad, FV_CLASS_FLOW, id);
        uint8_t opened[SESSION_PLAIN_MAX];
        unsigned long long opened_len = 0;
        assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                             opened, &opened_len, NULL, sealed[i] + 25, sealed_len[i] - 25, ad,
                             sizeof ad, nonce, key),
                         0);
        assert_int_equal(opened_len, plain_len);
        assert_memory_equal(opened, plain, plain_len);

        uint8_t reference[SESSION_PLAIN_MAX + 16];
        unsigned long long reference_len = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(reference, &reference_len, plain, plain_len,
                                                   ad, sizeof ad, NULL, nonce, key);
        assert_int_equal(reference_len, sealed_len[i] - 25);
        assert_memory_equal(reference, sealed[i] + 25, sealed_len[i] - 25);
    }
    check_next_session(fx, sealed[0]);
    test_free(sealed);
}

/* Format 3: values sealed in one lock session share a random prefix
 * and count up like format 2. Each value opens and seals again to the
 * same bytes under the subkey and nonce that docs/PRIVACY.md describes,
 * computed here with libsodium's BLAKE2b and nettle's AES-256-GCM. */
static void test_crypto_session_seal_equals_aes_gcm(void **state)
{
    fixture *fx = *state;
    session_value *sealed = test_malloc(SESSION_SEALS * sizeof *sealed);
    size_t sealed_len[SESSION_SEALS];
    uint8_t plain[SESSION_PLAIN_MAX], key[32];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 5 + 1);  /* any payload */
    seal_session(fx, 3, plain, sealed, sealed_len, key);

    for (int i = 0; i < SESSION_SEALS; i++) {
        size_t plain_len = (size_t)i % SESSION_PLAIN_MAX;
        uint64_t id = T0_US + (uint64_t)i;
        const uint8_t *nonce = sealed[i] + 1;
        uint8_t opened[STORE_RECORD_MAX_BYTES];
        size_t opened_len = 0;
        assert_true(open_with(sealed[i], sealed_len[i], FV_CLASS_FLOW, id, key, opened,
                              &opened_len));
        assert_int_equal(opened_len, plain_len);
        assert_memory_equal(opened, plain, plain_len);

        uint8_t ad[13], reference[SESSION_PLAIN_MAX + 16];
        make_ad(ad, FV_CLASS_FLOW, id);
        v3_seal(reference, plain, plain_len, ad, nonce, key);
        assert_memory_equal(reference, sealed[i] + 25, plain_len + 16);

        /* The same ciphertext under the data key itself, without the
         * subkey step, does not open: the subkey is not the data key. */
        struct gcm_aes256_ctx direct;
        uint8_t iv[12] = {0}, tag[16], scratch[SESSION_PLAIN_MAX];
        memcpy(iv + 4, nonce + 16, 8);
        gcm_aes256_set_key(&direct, key);
        gcm_aes256_set_iv(&direct, sizeof iv, iv);
        gcm_aes256_update(&direct, sizeof ad, ad);
        gcm_aes256_decrypt(&direct, plain_len, scratch, sealed[i] + 25);
        gcm_aes256_digest(&direct, sizeof tag, tag);
        assert_memory_not_equal(tag, sealed[i] + 25 + plain_len, sizeof tag);
    }
    check_next_session(fx, sealed[0]);
    test_free(sealed);
}

/* store_open picks format 3 exactly where the CPU has AES-NI and
 * PCLMULQDQ, and no other version can be set. */
static void test_crypto_default_format_follows_cpu(void **state)
{
    fixture *fx = *state;
    unsigned expected = sodium_runtime_has_aesni() && sodium_runtime_has_pclmul() ? 3u : 2u;
    assert_int_equal(store_keys_seal_version(fx->env), expected);
    assert_int_equal(store_keys_set_seal_version(fx->env, 1), FV_ERR_INVALID);
    assert_int_equal(store_keys_set_seal_version(fx->env, 4), FV_ERR_INVALID);
    if (expected == 2)
        assert_int_equal(store_keys_set_seal_version(fx->env, 3), FV_ERR_UNSUPPORTED);
    assert_int_equal(store_keys_seal_version(fx->env), expected);
}

/* A store written in format 2 (on another CPU, or by an older flowveil)
 * and then in format 3 reads back whole, before and after a reopen, and
 * the records of each commit keep their format. */
static void test_crypto_mixed_formats_read(void **state)
{
    fixture *fx = *state;
    enum { PER_FORMAT = 3 };
    fv_flow_record flows[2 * PER_FORMAT];
    for (unsigned version = 2; version <= 3; version++) {
        assert_int_equal(store_keys_set_seal_version(fx->env, version), FV_OK);
        for (unsigned i = 0; i < PER_FORMAT; i++) {
            unsigned n = (version - 2) * PER_FORMAT + i;
            rec_fill_flow(&flows[n], 40 + n);
            assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &flows[n], T0_US + n), FV_OK);
        }
        assert_int_equal(store_commit(fx->env), FV_OK);
    }
    for (int pass = 0; pass < 2; pass++) {
        collected c;
        store_query_stats stats;
        query_all(fx->env, FV_CLASS_FLOW, T0_US + DAY_US, &c, &stats);
        assert_int_equal(c.n, 2 * PER_FORMAT);
        assert_int_equal(stats.undecryptable, 0);
        for (size_t n = 0; n < 2 * PER_FORMAT; n++) {
            assert_same_record(FV_CLASS_FLOW, &flows[n], &c.recs[n].u.flow);
            size_t raw_len = 0;
            uint8_t *raw = raw_get(fx->env, FV_CLASS_FLOW, c.recs[n].id, &raw_len);
            assert_non_null(raw);
            assert_int_equal(raw[0], n < PER_FORMAT ? 2 : 3);
            free(raw);
        }
        store_close(&fx->env);
        char err[256];
        assert_int_equal(store_open(fx->dir, 0, &fx->env, err, sizeof err), FV_OK);
    }
}

/* Format 3 opens the same through nettle, the reader of CPUs without
 * AES-NI, as through libsodium, and a flipped byte fails in both. */
static void test_crypto_v3_opens_with_nettle(void **state)
{
    fixture *fx = *state;
    enum { N = 5 };
    fv_flow_record flows[N];
    for (uint32_t i = 0; i < N; i++) {
        rec_fill_flow(&flows[i], 60 + i);
        assert_int_equal(store_put(fx->env, FV_CLASS_FLOW, &flows[i], T0_US + i), FV_OK);
    }
    assert_int_equal(store_commit(fx->env), FV_OK);
    uint64_t flipped_id = first_id(fx->env, FV_CLASS_FLOW, T0_US) + 2;

    for (int pass = 0; pass < 3; pass++) {
        /* Pass 0 reads with the default, pass 1 with nettle, and pass 2
         * with nettle after a byte of the third value was flipped. */
        store_keys_set_open_with_nettle(fx->env, pass > 0);
        if (pass == 2) {
            size_t len = 0;
            uint8_t *raw = raw_get(fx->env, FV_CLASS_FLOW, flipped_id, &len);
            assert_non_null(raw);
            assert_int_equal(raw[0], 3);
            raw[len - 20] ^= 0x01;
            raw_put(fx->env, FV_CLASS_FLOW, flipped_id, raw, len);
            free(raw);
        }
        collected c;
        store_query_stats stats;
        query_all(fx->env, FV_CLASS_FLOW, T0_US + DAY_US, &c, &stats);
        assert_int_equal(c.n, pass < 2 ? N : N - 1);
        assert_int_equal(stats.undecryptable, pass < 2 ? 0 : 1);
        for (size_t n = 0; n < c.n; n++) {
            size_t want_index = pass == 2 && n >= 2 ? n + 1 : n;
            assert_same_record(FV_CLASS_FLOW, &flows[want_index], &c.recs[n].u.flow);
        }
    }
}

/* Within one session each data key gets its own prefix: two classes and
 * two days make four keys with four different prefixes and counters, and
 * every value decrypts through the store's reader. */
static void test_crypto_session_prefix_per_key(void **state)
{
    fixture *fx = *state;
    static const uint8_t plain[5] = {9, 8, 7, 6, 5};  /* any payload */
    const fv_class classes[2] = {FV_CLASS_FLOW, FV_CLASS_DNS};
    const uint64_t ids[2] = {T0_US, T0_US + DAY_US};
    uint8_t sealed[8][64];
    size_t sealed_len[8];

    store_keys_lock(fx->env);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            int n = round * 4 + i;
            int rc = store_value_seal(fx->env, classes[i % 2], ids[i / 2] + (uint64_t)round,
                                      plain, sizeof plain, sealed[n], sizeof sealed[n],
                                      &sealed_len[n]);
            assert_int_equal(rc, FV_OK);
        }
    }
    store_keys_unlock(fx->env);

    for (int i = 0; i < 4; i++) {
        /* The second value of each key continues its counter under its prefix. */
        assert_memory_equal(sealed[i] + 1, sealed[i + 4] + 1, 16);
        assert_int_equal(load_le64(sealed[i] + 17), 0);
        assert_int_equal(load_le64(sealed[i + 4] + 17), 1);
        for (int j = i + 1; j < 4; j++)
            assert_memory_not_equal(sealed[i] + 1, sealed[j] + 1, 16);
    }

    for (int n = 0; n < 8; n++) {
        uint8_t opened[16];
        size_t opened_len = 0;
        bool refreshed = false;
        store_value_status st = store_value_open(
            fx->env, classes[n % 4 % 2], ids[n % 4 / 2] + (uint64_t)(n / 4), sealed[n],
            sealed_len[n], opened, sizeof opened, &opened_len, &refreshed);
        assert_int_equal(st, STORE_VALUE_OK);
        assert_int_equal(opened_len, sizeof plain);
        assert_memory_equal(opened, plain, sizeof plain);
    }
}

/* A child forked in the middle of a lock session may go on sealing,
 * because the forking thread has the key lock. The child must derive a
 * new prefix: continuing the parent's counter would repeat its nonces. */
static void test_crypto_session_fork_new_prefix(void **state)
{
    fixture *fx = *state;
    static const uint8_t plain[4] = {1, 2, 3, 4};  /* any payload */
    uint8_t first[64], parent_next[64];
    size_t len = 0;
    store_keys_lock(fx->env);
    assert_int_equal(store_value_seal(fx->env, FV_CLASS_FLOW, T0_US, plain, sizeof plain, first,
                                      sizeof first, &len),
                     FV_OK);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        uint8_t mine[64];
        size_t mine_len = 0;
        int rc = store_value_seal(fx->env, FV_CLASS_FLOW, T0_US + 1, plain, sizeof plain, mine,
                                  sizeof mine, &mine_len);
        _exit(rc == FV_OK && write(fds[1], mine + 1, 24) == 24 ? 0 : 1);
    }
    assert_int_equal(store_value_seal(fx->env, FV_CLASS_FLOW, T0_US + 1, plain, sizeof plain,
                                      parent_next, sizeof parent_next, &len),
                     FV_OK);
    store_keys_unlock(fx->env);

    uint8_t child_nonce[24];
    assert_int_equal(read(fds[0], child_nonce, sizeof child_nonce), (ssize_t)sizeof child_nonce);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);

    assert_memory_equal(parent_next + 1, first + 1, 16);
    assert_int_equal(load_le64(parent_next + 17), 1);
    assert_memory_not_equal(child_nonce, first + 1, 16);
    assert_int_equal(load_le64(child_nonce + 16), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crypto_round_trip_two_days, fixture_setup_v2,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_key_reused_within_day, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_flipped_byte_skipped_and_counted,
                                        fixture_setup_v2, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_truncated_and_garbage_values_skipped,
                                        fixture_setup_v2, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_moved_value_fails, fixture_setup_v2,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_shredding_leaves_nothing_readable,
                                        fixture_setup_v2, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_freed_slot_reused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_shredded_value_unreadable_in_process,
                                        fixture_setup_v2, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_partial_day_key_kept, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_missing_key_file_read_only, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_key_file_symlink_rejected, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_world_readable_file_tightened, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_nonces_unique_across_sessions_and_fork,
                                        fixture_setup_v2, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_session_seal_equals_xchacha, fixture_setup_v2,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_session_prefix_per_key, fixture_setup_v2,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_session_fork_new_prefix, fixture_setup_v2,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_default_format_follows_cpu, fixture_setup,
                                        fixture_teardown),
    };
    /* Format 3 is sealed with libsodium's AES-256-GCM, which needs AES-NI
     * and PCLMULQDQ. */
    const struct CMUnitTest format3_tests[] = {
        cmocka_unit_test_setup_teardown(test_crypto_round_trip_two_days, fixture_setup_v3,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_flipped_byte_skipped_and_counted,
                                        fixture_setup_v3, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_truncated_and_garbage_values_skipped,
                                        fixture_setup_v3, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_moved_value_fails, fixture_setup_v3,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_shredding_leaves_nothing_readable,
                                        fixture_setup_v3, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_shredded_value_unreadable_in_process,
                                        fixture_setup_v3, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_nonces_unique_across_sessions_and_fork,
                                        fixture_setup_v3, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_session_seal_equals_aes_gcm,
                                        fixture_setup_v3, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_session_prefix_per_key, fixture_setup_v3,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_session_fork_new_prefix, fixture_setup_v3,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_mixed_formats_read, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crypto_v3_opens_with_nettle, fixture_setup_v3,
                                        fixture_teardown),
    };
    int failed = cmocka_run_group_tests_name("store crypto", tests, NULL, NULL);
    if (!crypto_aead_aes256gcm_is_available()) {
        printf("format 3 tests skipped: this CPU lacks AES-NI or PCLMULQDQ\n");
        return failed;
    }
    return failed + cmocka_run_group_tests_name("store crypto, format 3", format3_tests, NULL,
                                                NULL);
}
