/*
 * stages: the cost of each privacy stage of the ingest path, measured by
 * adding one stage at a time on top of the capture engine.
 *
 * usage: stages STAGE FILE [DIR]
 *   metadata         capture engine, and every flow and DNS event turned
 *                    into an fv_flow_record or fv_dns_record (addresses
 *                    kept raw)
 *   pseudonyms       plus keyed BLAKE2b pseudonyms (anonymize/, cache on)
 *                    for every 10.0.0.0/8 address and MAC
 *   store-plain      plus the store's record encoding written to LMDB
 *                    (ascending keys, 4096 records per transaction) with
 *                    no encryption; a bench-only path, the product has no
 *                    way to store records unencrypted
 *   store-encrypted  plus store_put into a real store in DIR, which
 *                    encrypts every value (XChaCha20-Poly1305)
 * The stage below "metadata", decoding and flow tracking without the
 * application parsers, is bench_stage_flows (dissect_only.c built on
 * fv_capture_flows_only).
 *
 * TLS, HTTP and other metadata events are counted but not converted or
 * stored here (about 12% of the records on the mixed profile), and the
 * policy gate, aggregates and detectors of `flowveil ingest` are left
 * out, so the difference between store-encrypted and ingest is their
 * cost.
 *
 * Prints "packets N flows N dns N other N stored N". Exit status 0, 1 on
 * a runtime error, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "anonymize.h"
#include "capture.h"
#include "store.h"

typedef enum stage {
    STAGE_METADATA = 1,
    STAGE_PSEUDONYMS = 2,
    STAGE_STORE_PLAIN = 3,
    STAGE_STORE_ENCRYPTED = 4,
} stage;

#define PLAIN_BATCH 4096u
#define NOW_S 1796025600u

typedef struct bench_ctx {
    stage stage;
    anon_ctx *anon;
    store_env *store;
    MDB_env *plain_env;
    MDB_dbi plain_dbi;
    MDB_txn *plain_txn;
    uint64_t plain_key;
    uint32_t plain_pending;
    uint64_t flows, dns, other, stored;
    int failed; /* first error, FV_OK if none */
} bench_ctx;

static bool is_internal(const cap_ip *ip)
{
    return ip->family == 4 && ip->addr[0] == 10;
}

/* Fill EP from IP: a pseudonym for internal addresses from the
 * pseudonyms stage on, the kept address otherwise. */
static void endpoint_from(bench_ctx *b, const cap_ip *ip, fv_endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    bool internal = is_internal(ip);
    snprintf(ep->zone, sizeof ep->zone, "%s", internal ? "office" : "external");
    if (internal && b->stage >= STAGE_PSEUDONYMS) {
        ep->kind = FV_EP_PSEUDO_IPV4;
        anon_pseudonym(b->anon, ANON_TYPE_IPV4, ip->addr, 4, ep->addr);
    } else if (ip->family == 4) {
        ep->kind = FV_EP_IPV4;
        memcpy(ep->addr, ip->addr, 4);
    } else {
        ep->kind = FV_EP_IPV6;
        memcpy(ep->addr, ip->addr, 16);
    }
}

static void plain_put(bench_ctx *b, fv_class cls, const void *rec)
{
    uint8_t buf[STORE_RECORD_MAX_BYTES];
    size_t len = 0;
    int rc = store_record_encode(cls, rec, buf, sizeof buf, &len);
    if (rc != FV_OK) {
        b->failed = rc;
        return;
    }
    if (b->plain_txn == NULL && mdb_txn_begin(b->plain_env, NULL, 0, &b->plain_txn) != 0) {
        b->failed = FV_ERR_STORE;
        return;
    }
    /* Big-endian keys sort in insertion order, like the store's ids. */
    uint8_t key_bytes[8];
    for (int i = 0; i < 8; i++)
        key_bytes[i] = (uint8_t)(b->plain_key >> (56 - 8 * i));
    b->plain_key++;
    MDB_val key = {sizeof key_bytes, key_bytes};
    MDB_val value = {len, buf};
    if (mdb_put(b->plain_txn, b->plain_dbi, &key, &value, MDB_APPEND) != 0) {
        b->failed = FV_ERR_STORE;
        return;
    }
    if (++b->plain_pending >= PLAIN_BATCH) {
        if (mdb_txn_commit(b->plain_txn) != 0)
            b->failed = FV_ERR_STORE;
        b->plain_txn = NULL;
        b->plain_pending = 0;
    }
}

static void store_one(bench_ctx *b, fv_class cls, const void *rec)
{
    if (b->failed != FV_OK)
        return;
    if (b->stage == STAGE_STORE_PLAIN) {
        plain_put(b, cls, rec);
    } else if (b->stage == STAGE_STORE_ENCRYPTED) {
        int rc = store_put(b->store, cls, rec, (uint64_t)NOW_S * 1000000u);
        if (rc != FV_OK)
            b->failed = rc;
    } else {
        return;
    }
    b->stored++;
}

static void on_flow(void *ctx, const cap_flow *f)
{
    bench_ctx *b = ctx;
    fv_flow_record r;
    memset(&r, 0, sizeof r);
    r.first_us = f->first_us;
    r.last_us = f->last_us;
    endpoint_from(b, &f->src, &r.src);
    endpoint_from(b, &f->dst, &r.dst);
    r.sport = f->sport;
    r.dport = f->dport;
    r.proto = f->proto;
    r.end_reason = f->end_reason;
    r.tcp_flags_fwd = f->tcp_flags_fwd;
    r.tcp_flags_rev = f->tcp_flags_rev;
    if (f->has_mac && b->stage >= STAGE_PSEUDONYMS) {
        r.has_mac = 1;
        anon_pseudonym(b->anon, ANON_TYPE_MAC, f->src_mac, 6, r.src_mac);
        anon_pseudonym(b->anon, ANON_TYPE_MAC, f->dst_mac, 6, r.dst_mac);
    }
    r.pkts_fwd = f->pkts_fwd;
    r.pkts_rev = f->pkts_rev;
    r.bytes_fwd = f->bytes_fwd;
    r.bytes_rev = f->bytes_rev;
    r.app = f->app;
    r.initiator = f->initiator;
    r.rtt_us = f->rtt_us;
    b->flows++;
    store_one(b, FV_CLASS_FLOW, &r);
}

static void on_dns(void *ctx, const cap_dns *d)
{
    bench_ctx *b = ctx;
    fv_dns_record r;
    memset(&r, 0, sizeof r);
    r.ts_us = d->ts_us;
    endpoint_from(b, &d->client, &r.client);
    endpoint_from(b, &d->server, &r.server);
    r.client_port = d->client_port;
    r.server_port = d->server_port;
    r.transport = d->transport;
    r.is_response = d->is_response;
    r.rcode = d->rcode;
    r.txid = d->txid;
    r.qtype = d->qtype;
    r.qclass = d->qclass;
    r.answer_count = d->answer_count;
    memcpy(r.qname, d->qname, sizeof r.qname);
    r.protocol = d->protocol;
    r.qdcount = d->qdcount;
    r.question_count = d->question_count;
    memcpy(r.questions, d->questions, sizeof r.questions);
    r.answers_a_count = d->a_count;
    for (uint8_t i = 0; i < d->a_count && i < FV_DNS_ADDRS_MAX; i++) {
        r.answers_a[i].kind = FV_EP_IPV4;
        memcpy(r.answers_a[i].addr, d->a[i], 4);
    }
    r.answers_aaaa_count = d->aaaa_count;
    for (uint8_t i = 0; i < d->aaaa_count && i < FV_DNS_ADDRS_MAX; i++) {
        r.answers_aaaa[i].kind = FV_EP_IPV6;
        memcpy(r.answers_aaaa[i].addr, d->aaaa[i], 16);
    }
    r.cname_count = d->cname_count;
    memcpy(r.cnames, d->cnames, sizeof r.cnames);
    b->dns++;
    store_one(b, FV_CLASS_DNS, &r);
}

static void on_tls(void *ctx, const cap_tls *tls)
{
    (void)tls;
    ((bench_ctx *)ctx)->other++;
}

static void on_http(void *ctx, const cap_http *http)
{
    (void)http;
    ((bench_ctx *)ctx)->other++;
}

static int open_plain(bench_ctx *b, const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "stages: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    MDB_txn *txn = NULL;
    if (mdb_env_create(&b->plain_env) != 0 ||
        mdb_env_set_mapsize(b->plain_env, (size_t)16 << 30) != 0 ||
        mdb_env_open(b->plain_env, dir, MDB_NOSYNC, 0600) != 0 ||
        mdb_txn_begin(b->plain_env, NULL, 0, &txn) != 0 ||
        mdb_dbi_open(txn, NULL, 0, &b->plain_dbi) != 0 || mdb_txn_commit(txn) != 0) {
        fprintf(stderr, "stages: cannot open an LMDB environment in %s\n", dir);
        return 1;
    }
    return 0;
}

static int parse_stage(const char *name, stage *out)
{
    static const struct {
        const char *name;
        stage value;
    } stages[] = {{"metadata", STAGE_METADATA},
                  {"pseudonyms", STAGE_PSEUDONYMS},
                  {"store-plain", STAGE_STORE_PLAIN},
                  {"store-encrypted", STAGE_STORE_ENCRYPTED}};
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        if (strcmp(name, stages[i].name) == 0) {
            *out = stages[i].value;
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    bench_ctx b;
    memset(&b, 0, sizeof b);
    if (argc < 3 || argc > 4 || parse_stage(argv[1], &b.stage) != 0 ||
        (b.stage >= STAGE_PSEUDONYMS && argc != 4)) {
        fprintf(stderr, "usage: stages metadata|pseudonyms|store-plain|store-encrypted FILE "
                        "[DIR]\n  DIR (created if missing) holds the key and the store; "
                        "required from pseudonyms on\n");
        return 2;
    }
    const char *file = argv[2];
    const char *dir = argc == 4 ? argv[3] : NULL;
    char err[512];
    int status = 1;
    cap_engine *engine = NULL;

    if (dir != NULL && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "stages: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (b.stage >= STAGE_PSEUDONYMS) {
        char key_path[4096];
        snprintf(key_path, sizeof key_path, "%s/pseudonym.key", dir);
        if (anon_open(key_path, 86400u, NOW_S, &b.anon, err, sizeof err) != FV_OK) {
            fprintf(stderr, "stages: %s\n", err);
            goto out;
        }
    }
    if (b.stage == STAGE_STORE_PLAIN) {
        char plain_dir[4096];
        snprintf(plain_dir, sizeof plain_dir, "%s/plain", dir);
        if (open_plain(&b, plain_dir) != 0)
            goto out;
    }
    if (b.stage == STAGE_STORE_ENCRYPTED) {
        char store_dir[4096];
        snprintf(store_dir, sizeof store_dir, "%s/store", dir);
        if (store_open(store_dir, 0, &b.store, err, sizeof err) != FV_OK) {
            fprintf(stderr, "stages: %s\n", err);
            goto out;
        }
    }

    cap_sink sink = {0};
    sink.ctx = &b;
    sink.on_flow = on_flow;
    sink.on_dns = on_dns;
    sink.on_tls = on_tls;
    sink.on_http = on_http;
    int rc = cap_engine_create(NULL, &sink, &engine);
    if (rc != FV_OK) {
        fprintf(stderr, "stages: creating the engine failed: %s\n", fv_strerror(rc));
        goto out;
    }
    rc = cap_read_file(engine, file, NULL, NULL, err, sizeof err);
    cap_engine_flush(engine);
    if (rc != FV_OK) {
        fprintf(stderr, "stages: %s\n", err);
        goto out;
    }
    if (b.plain_txn != NULL) {
        if (mdb_txn_commit(b.plain_txn) != 0)
            b.failed = FV_ERR_STORE;
        b.plain_txn = NULL;
    }
    if (b.store != NULL && b.failed == FV_OK)
        b.failed = store_commit(b.store);
    if (b.failed != FV_OK) {
        fprintf(stderr, "stages: storing a record failed: %s\n", fv_strerror(b.failed));
        goto out;
    }
    cap_stats st;
    cap_engine_stats(engine, &st);
    printf("packets %" PRIu64 " flows %" PRIu64 " dns %" PRIu64 " other %" PRIu64
           " stored %" PRIu64 "\n",
           st.packets, b.flows, b.dns, b.other, b.stored);
    status = 0;
out:
    cap_engine_destroy(&engine);
    if (b.plain_txn != NULL)
        mdb_txn_abort(b.plain_txn);
    if (b.plain_env != NULL)
        mdb_env_close(b.plain_env);
    store_close(&b.store);
    anon_close(&b.anon);
    return status;
}
