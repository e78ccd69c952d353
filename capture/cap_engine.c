/*
 * cap_engine.c: the flow table, flow expiry, and the application
 * metadata stage (DNS, TLS, HTTP) of the capture engine.
 *
 * Per packet: decode (cap_decode.c), apply the sink's exclusion hook,
 * count, find or create the bidirectional flow, update its counters, run
 * the protocol parsers over the payload, and end the flow on TCP FIN/RST.
 * Time comes only from packet timestamps or from cap_engine_expire()'s
 * argument.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cap_internal.h"
#include "cap_proto.h"

#define US_PER_S 1000000ULL

#define CAP_DEFAULT_TCP_IDLE_S 300
#define CAP_DEFAULT_UDP_IDLE_S 60
#define CAP_DEFAULT_OTHER_IDLE_S 30
#define CAP_DEFAULT_ACTIVE_S 1800
#define CAP_DEFAULT_MAX_FLOWS 1000000

/* Expiry runs when packet time passes the previous run by this much. */
#define CAP_EXPIRE_INTERVAL_US US_PER_S

/* Bytes of one direction of a TCP stream kept for the protocol parsers:
 * the maximum TLS record payload (2^14 bytes). A hello still incomplete
 * at this size counts as malformed. */
#define CAP_STREAM_MAX_BYTES 16384
#define CAP_STREAM_FIRST_ALLOC 2048

/* Fragment table: maps (addresses, protocol, datagram id) of a first
 * fragment to its ports so that later fragments join the same flow. */
#define CAP_FRAG_SLOTS 256
#define CAP_FRAG_TTL_US (30 * US_PER_S)

/* Hash buckets: a power of two, between these bounds, near max_flows. */
#define CAP_MIN_BUCKETS 1024u
#define CAP_MAX_BUCKETS (1u << 22)

#define PORT_DNS 53
#define PORT_MDNS 5353
#define PORT_LLMNR 5355

#define TLS_HANDSHAKE_RECORD 0x16

/*
 * Canonical bidirectional flow key. The (address, port) pair that sorts
 * lower (memcmp of the 16 address bytes, then the port) is always stored
 * in the _lo fields, so both directions of a conversation produce the same
 * key and map to one table entry. Addresses are network order (IPv4 in the
 * first 4 bytes, the rest zero); ports are host order and 0 for protocols
 * without ports. The struct has no padding and is zeroed before being
 * filled, because it is hashed and compared as bytes.
 */
typedef struct cap_flow_key {
    uint8_t family;
    uint8_t proto;
    uint16_t port_lo, port_hi;
    uint8_t addr_lo[16], addr_hi[16];
} cap_flow_key;

/* Idle-timeout classes, each with its own LRU list. */
/* CLASS_CLOSING holds TCP flows that ended by FIN or RST for a short
 * linger, so the final ACK and stray retransmissions join the flow they
 * belong to instead of starting a one-packet flow of their own. */
enum flow_class {
    CLASS_TCP = 0,
    CLASS_UDP = 1,
    CLASS_OTHER = 2,
    CLASS_CLOSING = 3,
    CLASS_COUNT = 4
};

/* How long a closed TCP flow waits for its last packets, in packet time. */
#define CAP_CLOSE_LINGER_US (5u * 1000000u)

/* Protocol the application stage parses in a TCP flow's payload. */
enum app_kind {
    APP_UNDECIDED = 0, /* no client payload seen yet */
    APP_NONE,          /* nothing to parse, or parsing finished */
    APP_TLS,
    APP_HTTP,
    APP_DNS_TCP,
};

/*
 * One direction of a TCP stream as seen by the parsers: in-order payload
 * bytes, at most CAP_STREAM_MAX_BYTES, allocated on first use and wiped
 * and freed with the flow or when parsing ends. next_seq is the sequence
 * number of the next expected byte once seq_known is set.
 */
typedef struct cap_stream {
    uint8_t *buf;
    size_t len, alloc;
    uint32_t next_seq;
    bool seq_known;
    bool http_waiting; /* HTTP: a request was parsed; wait for a segment starting a new one */
} cap_stream;

/*
 * A flow table entry. rec is the record as it will be emitted: rec.src
 * is the sender of the first packet counted in the entry and "fwd" is the
 * src->dst direction. src_is_lo says which side of the canonical key that
 * is. The entry is on three lists at once: its hash chain, the LRU list of
 * its class (ordered by last packet time, oldest first), and the active
 * list (ordered by active_start_us, oldest first).
 */
typedef struct flow_entry {
    cap_flow_key key;
    struct flow_entry *hash_next;
    struct flow_entry *lru_prev, *lru_next;
    struct flow_entry *act_prev, *act_next;
    uint8_t cls;
    bool src_is_lo;
    bool client_is_src; /* TCP: the initiator, by SYN or else by port */
    bool icmp_set;
    uint8_t fin_seen;   /* bit 0: FIN from src, bit 1: FIN from dst */
    uint8_t close_reason; /* FV_END_FIN or FV_END_RST while cls is CLASS_CLOSING */
    uint8_t app;        /* enum app_kind */
    uint64_t active_start_us;
    cap_flow rec;
    cap_stream stream[2]; /* index 0: client to server, 1: server to client */
} flow_entry;

typedef struct flow_list {
    flow_entry *head, *tail;
} flow_list;

typedef struct frag_slot {
    bool used;
    uint8_t family, proto;
    uint32_t id;
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint64_t ts_us;
} frag_slot;

struct cap_engine {
    cap_config cfg;
    cap_sink sink;
    cap_stats stats;
    unsigned char hash_key[crypto_shorthash_KEYBYTES]; /* random per engine */
    flow_entry **buckets;
    size_t bucket_mask;
    uint64_t flow_count;
    flow_list lru[CLASS_COUNT];
    flow_list active;
    uint64_t idle_us[CLASS_COUNT];
    uint64_t active_us;
    uint64_t next_expire_us;
    frag_slot frags[CAP_FRAG_SLOTS];
    unsigned frag_next; /* round-robin replacement cursor */
};

/* ---------------------------------------------------------------------- */
/* Lists                                                                  */
/* ---------------------------------------------------------------------- */

static void lru_unlink(flow_list *l, flow_entry *e)
{
    if (e->lru_prev != NULL)
        e->lru_prev->lru_next = e->lru_next;
    else
        l->head = e->lru_next;
    if (e->lru_next != NULL)
        e->lru_next->lru_prev = e->lru_prev;
    else
        l->tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_append(flow_list *l, flow_entry *e)
{
    e->lru_next = NULL;
    e->lru_prev = l->tail;
    if (l->tail != NULL)
        l->tail->lru_next = e;
    else
        l->head = e;
    l->tail = e;
}

static void act_unlink(flow_list *l, flow_entry *e)
{
    if (e->act_prev != NULL)
        e->act_prev->act_next = e->act_next;
    else
        l->head = e->act_next;
    if (e->act_next != NULL)
        e->act_next->act_prev = e->act_prev;
    else
        l->tail = e->act_prev;
    e->act_prev = e->act_next = NULL;
}

static void act_append(flow_list *l, flow_entry *e)
{
    e->act_next = NULL;
    e->act_prev = l->tail;
    if (l->tail != NULL)
        l->tail->act_next = e;
    else
        l->head = e;
    l->tail = e;
}

/* ---------------------------------------------------------------------- */
/* Streams                                                                */
/* ---------------------------------------------------------------------- */

static void stream_clear(cap_stream *s)
{
    if (s->buf != NULL)
        sodium_memzero(s->buf, s->len);
    s->len = 0;
}

static void stream_free(cap_stream *s)
{
    if (s->buf != NULL) {
        sodium_memzero(s->buf, s->alloc);
        free(s->buf);
    }
    s->buf = NULL;
    s->len = 0;
    s->alloc = 0;
}

/* Grow S->buf to hold at least NEED bytes (at most CAP_STREAM_MAX_BYTES).
 * The old buffer is wiped before it is freed, so no payload is left in
 * released heap memory. */
static bool stream_reserve(cap_stream *s, size_t need)
{
    size_t alloc = s->alloc ? s->alloc : CAP_STREAM_FIRST_ALLOC;
    uint8_t *grown;

    if (need <= s->alloc)
        return true;
    while (alloc < need)
        alloc *= 2;
    if (alloc > CAP_STREAM_MAX_BYTES)
        alloc = CAP_STREAM_MAX_BYTES;
    grown = malloc(alloc);
    if (grown == NULL)
        return false;
    if (s->buf != NULL) {
        memcpy(grown, s->buf, s->len);
        sodium_memzero(s->buf, s->alloc);
        free(s->buf);
    }
    s->buf = grown;
    s->alloc = alloc;
    return true;
}

enum append_result { APPEND_GAP = -1, APPEND_NOTHING = 0, APPEND_OK = 1, APPEND_NOMEM = -2 };

/*
 * Append the new in-order part of a segment (SEQ, DATA, LEN) to S. A
 * retransmission adds only bytes past next_seq; a segment that starts
 * beyond next_seq (a gap: loss or reordering) is ignored, since buffering
 * out-of-order segments would cost more than the metadata is worth. Bytes
 * past CAP_STREAM_MAX_BYTES are dropped but still advance next_seq.
 */
static int stream_append(cap_stream *s, uint32_t seq, const uint8_t *data, size_t len)
{
    int32_t delta;
    size_t room, take;

    if (!s->seq_known) {
        s->next_seq = seq;
        s->seq_known = true;
    }
    delta = (int32_t)(seq - s->next_seq);
    if (delta > 0)
        return APPEND_GAP;
    if (delta < 0) {
        size_t skip = (size_t)(-(int64_t)delta);

        if (skip >= len)
            return APPEND_NOTHING;
        data += skip;
        len -= skip;
    }
    s->next_seq += (uint32_t)len;

    room = CAP_STREAM_MAX_BYTES - s->len;
    take = len < room ? len : room;
    if (take == 0)
        return APPEND_NOTHING;
    if (!stream_reserve(s, s->len + take))
        return APPEND_NOMEM;
    memcpy(s->buf + s->len, data, take);
    s->len += take;
    return APPEND_OK;
}

/* ---------------------------------------------------------------------- */
/* Flow table                                                             */
/* ---------------------------------------------------------------------- */

static uint64_t key_hash(const cap_engine *eng, const cap_flow_key *key)
{
    unsigned char out[crypto_shorthash_BYTES];
    uint64_t h;

    crypto_shorthash(out, (const unsigned char *)key, sizeof *key, eng->hash_key);
    memcpy(&h, out, sizeof h);
    return h;
}

/* Build the canonical key of PKT; return true if PKT travels from the
 * key's lo side to its hi side. */
static bool key_make(const cap_packet *pkt, cap_flow_key *key)
{
    uint16_t sport = pkt->has_ports ? pkt->sport : 0;
    uint16_t dport = pkt->has_ports ? pkt->dport : 0;
    int cmp;

    memset(key, 0, sizeof *key);
    key->family = pkt->src.family;
    key->proto = pkt->proto;
    cmp = memcmp(pkt->src.addr, pkt->dst.addr, 16);
    if (cmp == 0)
        cmp = (sport > dport) - (sport < dport);
    if (cmp <= 0) {
        memcpy(key->addr_lo, pkt->src.addr, 16);
        memcpy(key->addr_hi, pkt->dst.addr, 16);
        key->port_lo = sport;
        key->port_hi = dport;
        return true;
    }
    memcpy(key->addr_lo, pkt->dst.addr, 16);
    memcpy(key->addr_hi, pkt->src.addr, 16);
    key->port_lo = dport;
    key->port_hi = sport;
    return false;
}

static flow_entry **bucket_of(cap_engine *eng, const cap_flow_key *key)
{
    return &eng->buckets[key_hash(eng, key) & eng->bucket_mask];
}

static flow_entry *flow_find(cap_engine *eng, const cap_flow_key *key)
{
    flow_entry *e;

    for (e = *bucket_of(eng, key); e != NULL; e = e->hash_next) {
        if (memcmp(&e->key, key, sizeof *key) == 0)
            return e;
    }
    return NULL;
}

/* Hand a copy of E's record to the sink. Entries with no packets since an
 * active-timeout restart are not emitted. */
static void flow_emit(cap_engine *eng, flow_entry *e, fv_flow_end reason)
{
    cap_flow rec;

    if (e->rec.pkts_fwd + e->rec.pkts_rev == 0)
        return;
    rec = e->rec;
    rec.end_reason = (uint8_t)reason;
    eng->stats.flows_emitted++;
    if (eng->sink.on_flow != NULL)
        eng->sink.on_flow(eng->sink.ctx, &rec);
}

static void flow_remove(cap_engine *eng, flow_entry *e)
{
    flow_entry **pp = bucket_of(eng, &e->key);

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->hash_next;
    if (*pp == e)
        *pp = e->hash_next;
    lru_unlink(&eng->lru[e->cls], e);
    act_unlink(&eng->active, e);
    stream_free(&e->stream[0]);
    stream_free(&e->stream[1]);
    free(e);
    eng->flow_count--;
}

static void flow_end(cap_engine *eng, flow_entry *e, fv_flow_end reason)
{
    flow_emit(eng, e, reason);
    flow_remove(eng, e);
}

/* The reason to record when E ends by timeout or flush: a flow that had
 * closed keeps its FIN or RST reason. */
static fv_flow_end end_reason_of(const flow_entry *e, fv_flow_end otherwise)
{
    return e->cls == CLASS_CLOSING ? (fv_flow_end)e->close_reason : otherwise;
}

/* Move a TCP flow that ended by REASON to the closing list. */
static void flow_close(cap_engine *eng, flow_entry *e, fv_flow_end reason)
{
    if (e->cls == CLASS_CLOSING)
        return;
    lru_unlink(&eng->lru[e->cls], e);
    e->cls = CLASS_CLOSING;
    e->close_reason = (uint8_t)reason;
    lru_append(&eng->lru[CLASS_CLOSING], e);
}

/* Evict the flow seen least recently across the class lists. */
static void flow_evict_oldest(cap_engine *eng)
{
    flow_entry *oldest = NULL;
    int c;

    for (c = 0; c < CLASS_COUNT; c++) {
        flow_entry *h = eng->lru[c].head;

        if (h != NULL && (oldest == NULL || h->rec.last_us < oldest->rec.last_us))
            oldest = h;
    }
    if (oldest == NULL)
        return;
    eng->stats.flows_evicted++;
    flow_end(eng, oldest, end_reason_of(oldest, FV_END_EVICT));
}

static uint8_t class_of(uint8_t proto)
{
    if (proto == 6)
        return CLASS_TCP;
    if (proto == 17)
        return CLASS_UDP;
    return CLASS_OTHER;
}

/*
 * Decide which endpoint is the TCP client: the sender of a SYN, the
 * receiver of a SYN-ACK, else the side with the higher port, since
 * servers listen on the lower, well-known port.
 */
static bool client_is_sender(const cap_packet *pkt)
{
    if ((pkt->tcp_flags & CAP_TCP_SYN) != 0)
        return (pkt->tcp_flags & CAP_TCP_ACK) == 0;
    return pkt->sport >= pkt->dport;
}

static flow_entry *flow_create(cap_engine *eng, const cap_flow_key *key, bool from_lo,
                               const cap_packet *pkt, uint64_t ts_us)
{
    flow_entry *e;
    flow_entry **bucket;

    if (eng->flow_count >= eng->cfg.max_flows)
        flow_evict_oldest(eng);

    e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->key = *key;
    e->cls = class_of(pkt->proto);
    e->src_is_lo = from_lo;
    e->client_is_src = pkt->proto == 6 ? client_is_sender(pkt) : true;
    e->active_start_us = ts_us;

    e->rec.first_us = ts_us;
    e->rec.last_us = ts_us;
    e->rec.src = pkt->src;
    e->rec.dst = pkt->dst;
    e->rec.sport = pkt->has_ports ? pkt->sport : 0;
    e->rec.dport = pkt->has_ports ? pkt->dport : 0;
    e->rec.proto = pkt->proto;
    e->rec.vlan = pkt->vlan;
    e->rec.has_mac = pkt->has_mac;
    memcpy(e->rec.src_mac, pkt->src_mac, 6);
    memcpy(e->rec.dst_mac, pkt->dst_mac, 6);

    bucket = bucket_of(eng, key);
    e->hash_next = *bucket;
    *bucket = e;
    lru_append(&eng->lru[e->cls], e);
    act_append(&eng->active, e);
    eng->flow_count++;
    eng->stats.flows_created++;
    return e;
}

/* ---------------------------------------------------------------------- */
/* Fragments                                                              */
/* ---------------------------------------------------------------------- */

static bool frag_matches(const frag_slot *s, const cap_packet *pkt)
{
    return s->used && s->family == pkt->src.family && s->proto == pkt->proto &&
           s->id == pkt->frag_id && memcmp(s->src, pkt->src.addr, 16) == 0 &&
           memcmp(s->dst, pkt->dst.addr, 16) == 0;
}

/*
 * Give a fragment the ports of its datagram. A first fragment records its
 * ports in the table; a later fragment takes them from there when the
 * first fragment was seen within CAP_FRAG_TTL_US, and otherwise stays
 * portless. The table is a small ring, so a burst of more than
 * CAP_FRAG_SLOTS interleaved datagrams loses the oldest mappings.
 */
static void frag_resolve(cap_engine *eng, cap_packet *pkt, uint64_t ts_us)
{
    unsigned i;

    if (pkt->first_fragment) {
        frag_slot *s;

        if (!pkt->has_ports)
            return;
        s = &eng->frags[eng->frag_next];
        eng->frag_next = (eng->frag_next + 1) % CAP_FRAG_SLOTS;
        s->used = true;
        s->family = pkt->src.family;
        s->proto = pkt->proto;
        s->id = pkt->frag_id;
        memcpy(s->src, pkt->src.addr, 16);
        memcpy(s->dst, pkt->dst.addr, 16);
        s->sport = pkt->sport;
        s->dport = pkt->dport;
        s->ts_us = ts_us;
        return;
    }

    for (i = 0; i < CAP_FRAG_SLOTS; i++) {
        const frag_slot *s = &eng->frags[i];

        if (frag_matches(s, pkt) && ts_us - s->ts_us <= CAP_FRAG_TTL_US) {
            pkt->has_ports = true;
            pkt->sport = s->sport;
            pkt->dport = s->dport;
            return;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Application metadata                                                   */
/* ---------------------------------------------------------------------- */

static bool is_dns_port(uint16_t port)
{
    return port == PORT_DNS || port == PORT_MDNS || port == PORT_LLMNR;
}

/* Emit one parsed DNS message. The query's sender is the client, so for a
 * response the sender is the server. */
static void dns_emit(cap_engine *eng, const cap_dns_msg *m, const cap_ip *sender,
                     uint16_t sender_port, const cap_ip *receiver, uint16_t receiver_port,
                     uint8_t transport, uint64_t ts_us)
{
    cap_dns ev;

    memset(&ev, 0, sizeof ev);
    ev.ts_us = ts_us;
    if (m->is_response) {
        ev.client = *receiver;
        ev.client_port = receiver_port;
        ev.server = *sender;
        ev.server_port = sender_port;
    } else {
        ev.client = *sender;
        ev.client_port = sender_port;
        ev.server = *receiver;
        ev.server_port = receiver_port;
    }
    ev.transport = transport;
    ev.is_response = m->is_response;
    ev.rcode = m->rcode;
    ev.txid = m->txid;
    ev.qtype = m->qtype;
    ev.qclass = m->qclass;
    ev.answer_count = m->ancount;
    memcpy(ev.qname, m->qname, sizeof ev.qname);
    ev.qname[sizeof ev.qname - 1] = '\0';
    if (eng->sink.on_dns != NULL)
        eng->sink.on_dns(eng->sink.ctx, &ev);
}

static void dns_parse_one(cap_engine *eng, const uint8_t *data, size_t len, const cap_packet *pkt,
                          uint8_t transport, uint64_t ts_us)
{
    cap_dns_msg m;

    memset(&m, 0, sizeof m);
    if (cap_dns_parse(data, len, &m) != FV_OK) {
        eng->stats.dns_malformed++;
        return;
    }
    eng->stats.dns_messages++;
    dns_emit(eng, &m, &pkt->src, pkt->sport, &pkt->dst, pkt->dport, transport, ts_us);
}

/* Fill the endpoints of a TLS or HTTP event from the flow's client side. */
static void client_server(const flow_entry *e, cap_ip *client, uint16_t *cport, cap_ip *server,
                          uint16_t *sport)
{
    if (e->client_is_src) {
        *client = e->rec.src;
        *cport = e->rec.sport;
        *server = e->rec.dst;
        *sport = e->rec.dport;
    } else {
        *client = e->rec.dst;
        *cport = e->rec.dport;
        *server = e->rec.src;
        *sport = e->rec.sport;
    }
}

/* Return true if DATA starts like an HTTP/1.x request line: an upper-case
 * token of 1 to 15 characters and a space, and, when the first line ends
 * within DATA, " HTTP/1." on that line. */
static bool looks_like_http_request(const uint8_t *data, size_t len)
{
    size_t i = 0, eol;

    while (i < len && i < 16 && ((data[i] >= 'A' && data[i] <= 'Z') || data[i] == '-' ||
                                 data[i] == '_'))
        i++;
    if (i == 0 || i >= 16 || i >= len || data[i] != ' ')
        return false;
    for (eol = i; eol < len && data[eol] != '\n'; eol++)
        ;
    if (eol == len)
        return true;
    for (; i + 7 <= eol; i++) {
        if (memcmp(data + i, " HTTP/1.", 7) == 0)
            return true;
    }
    return false;
}

static void tls_run(cap_engine *eng, flow_entry *e, uint64_t ts_us)
{
    cap_stream *s = &e->stream[0];
    cap_tls_hello hello;
    cap_tls ev;
    int rc;

    memset(&hello, 0, sizeof hello);
    rc = cap_tls_parse_client_hello(s->buf, s->len, &hello);
    if (rc == FV_ERR_TRUNCATED && s->len < CAP_STREAM_MAX_BYTES)
        return;
    if (rc != FV_OK) {
        eng->stats.tls_malformed++;
        goto done;
    }

    eng->stats.tls_hellos++;
    memset(&ev, 0, sizeof ev);
    ev.ts_us = ts_us;
    client_server(e, &ev.client, &ev.client_port, &ev.server, &ev.server_port);
    ev.version = hello.version;
    memcpy(ev.sni, hello.sni, sizeof ev.sni);
    ev.sni[sizeof ev.sni - 1] = '\0';
    if (eng->sink.on_tls != NULL)
        eng->sink.on_tls(eng->sink.ctx, &ev);

done:
    e->app = APP_NONE;
    stream_free(s);
}

static void http_run(cap_engine *eng, flow_entry *e, uint64_t ts_us)
{
    cap_stream *s = &e->stream[0];
    cap_http_req req;
    cap_http ev;
    int rc;

    memset(&req, 0, sizeof req);
    rc = cap_http_parse_request(s->buf, s->len, &req);
    if (rc == FV_ERR_TRUNCATED && s->len < CAP_STREAM_MAX_BYTES)
        return;
    if (rc != FV_OK) {
        eng->stats.http_malformed++;
    } else {
        eng->stats.http_requests++;
        memset(&ev, 0, sizeof ev);
        ev.ts_us = ts_us;
        client_server(e, &ev.client, &ev.client_port, &ev.server, &ev.server_port);
        memcpy(ev.method, req.method, sizeof ev.method);
        ev.method[sizeof ev.method - 1] = '\0';
        memcpy(ev.host, req.host, sizeof ev.host);
        ev.host[sizeof ev.host - 1] = '\0';
        if (eng->sink.on_http != NULL)
            eng->sink.on_http(eng->sink.ctx, &ev);
    }

    /* Keep-alive: the next request is looked for at the start of a later segment. */
    stream_clear(s);
    s->http_waiting = true;
}

/* Parse every complete length-prefixed DNS message (RFC 1035 4.2.2) in
 * stream S, which carries bytes sent by PKT's source, and drop them. */
static void dns_tcp_run(cap_engine *eng, cap_stream *s, const cap_packet *pkt, uint64_t ts_us)
{
    size_t used = 0;

    while (2 <= s->len - used) {
        size_t mlen = cap_be16(s->buf + used);

        if (mlen > s->len - used - 2) {
            if (mlen + 2 > CAP_STREAM_MAX_BYTES) {
                eng->stats.dns_malformed++;
                stream_free(s);
                return;
            }
            break;
        }
        if (mlen > 0)
            dns_parse_one(eng, s->buf + used + 2, mlen, pkt, 6, ts_us);
        used += 2 + mlen;
    }
    if (used > 0) {
        memmove(s->buf, s->buf + used, s->len - used);
        sodium_memzero(s->buf + (s->len - used), used);
        s->len -= used;
    }
}

/*
 * Feed one TCP segment to the application stage. The first payload the
 * client sends decides the protocol: DNS when either port is 53, TLS when
 * it starts with a handshake record (any port), HTTP when it looks like a
 * request line. Returns FV_ERR_NOMEM only when a stream buffer could not
 * grow.
 */
static int tcp_app(cap_engine *eng, flow_entry *e, const cap_packet *pkt, bool fwd,
                   uint64_t ts_us)
{
    unsigned cdir = (fwd == e->client_is_src) ? 0 : 1;
    cap_stream *s = &e->stream[cdir];
    int ar;

    if ((pkt->tcp_flags & CAP_TCP_SYN) != 0) {
        s->next_seq = pkt->tcp_seq + 1;
        s->seq_known = true;
        return FV_OK;
    }
    if (pkt->payload_len == 0 || e->app == APP_NONE)
        return FV_OK;

    if (e->app == APP_UNDECIDED) {
        if (e->rec.sport == PORT_DNS || e->rec.dport == PORT_DNS)
            e->app = APP_DNS_TCP;
        else if (cdir != 0)
            return FV_OK; /* server speaks first (banners): wait for the client */
        else if (pkt->payload[0] == TLS_HANDSHAKE_RECORD)
            e->app = APP_TLS;
        else if (looks_like_http_request(pkt->payload, pkt->payload_len))
            e->app = APP_HTTP;
        else
            e->app = APP_NONE;
        if (e->app == APP_NONE)
            return FV_OK;
    }

    if (e->app != APP_DNS_TCP && cdir != 0)
        return FV_OK;

    if (e->app == APP_HTTP && s->http_waiting) {
        if (!looks_like_http_request(pkt->payload, pkt->payload_len))
            return FV_OK;
        stream_clear(s);
        s->next_seq = pkt->tcp_seq;
        s->seq_known = true;
        s->http_waiting = false;
    }

    ar = stream_append(s, pkt->tcp_seq, pkt->payload, pkt->payload_len);
    if (ar == APPEND_NOMEM)
        return FV_ERR_NOMEM;
    if (ar != APPEND_OK)
        return FV_OK;

    switch (e->app) {
    case APP_TLS:
        tls_run(eng, e, ts_us);
        break;
    case APP_HTTP:
        http_run(eng, e, ts_us);
        break;
    case APP_DNS_TCP:
        dns_tcp_run(eng, s, pkt, ts_us);
        break;
    default:
        break;
    }
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Per-packet path                                                        */
/* ---------------------------------------------------------------------- */

static bool excluded(const cap_engine *eng, const cap_packet *pkt)
{
    if (eng->sink.is_excluded == NULL)
        return false;
    return eng->sink.is_excluded(eng->sink.ctx, &pkt->src) ||
           eng->sink.is_excluded(eng->sink.ctx, &pkt->dst);
}

static void count_decode_failure(cap_engine *eng, cap_decode_status st)
{
    switch (st) {
    case CAP_DECODE_NON_IP:
        eng->stats.non_ip++;
        break;
    case CAP_DECODE_TRUNCATED:
        eng->stats.truncated++;
        break;
    case CAP_DECODE_BAD_HEADER:
        eng->stats.bad_header++;
        break;
    case CAP_DECODE_UNSUPPORTED_LINK:
        eng->stats.unsupported_link++;
        break;
    case CAP_DECODE_OK:
        break;
    }
}

/* Add PKT to its flow entry's counters; return true if PKT went src->dst. */
static bool flow_account(flow_entry *e, const cap_packet *pkt, bool from_lo, uint64_t ts_us)
{
    bool fwd = from_lo == e->src_is_lo;

    if (e->rec.pkts_fwd + e->rec.pkts_rev == 0)
        e->rec.first_us = ts_us;
    if (ts_us > e->rec.last_us)
        e->rec.last_us = ts_us;
    if (fwd) {
        e->rec.pkts_fwd++;
        e->rec.bytes_fwd += pkt->ip_bytes;
        e->rec.tcp_flags_fwd |= pkt->tcp_flags;
    } else {
        e->rec.pkts_rev++;
        e->rec.bytes_rev += pkt->ip_bytes;
        e->rec.tcp_flags_rev |= pkt->tcp_flags;
    }
    if (pkt->has_icmp && !e->icmp_set) {
        e->icmp_set = true;
        e->rec.icmp_type = pkt->icmp_type;
        e->rec.icmp_code = pkt->icmp_code;
    }
    return fwd;
}

int cap_engine_packet(cap_engine *engine, int linktype, uint64_t ts_us, const uint8_t *data,
                      uint32_t caplen, uint32_t wirelen)
{
    cap_packet pkt;
    cap_decode_status st;
    cap_flow_key key;
    flow_entry *e;
    bool from_lo, fwd;
    int rc = FV_OK;

    if (engine == NULL || (data == NULL && caplen > 0))
        return FV_ERR_INVALID;

    /* Decode and apply exclusion before anything is counted or kept. */
    st = cap_decode_frame(linktype, data, caplen, &pkt);
    if (pkt.have_addrs && excluded(engine, &pkt))
        return FV_OK;

    if (ts_us >= engine->next_expire_us) {
        cap_engine_expire(engine, ts_us);
        engine->next_expire_us = ts_us + CAP_EXPIRE_INTERVAL_US;
    }

    engine->stats.packets++;
    engine->stats.bytes += wirelen;
    if (st != CAP_DECODE_OK) {
        count_decode_failure(engine, st);
        return FV_OK;
    }
    engine->stats.ip_packets++;

    if (pkt.is_fragment) {
        engine->stats.fragments++;
        frag_resolve(engine, &pkt, ts_us);
    }

    /* Find the flow; one idle past its timeout ends before the packet counts. */
    from_lo = key_make(&pkt, &key);
    e = flow_find(engine, &key);
    if (e != NULL && ts_us >= e->rec.last_us + engine->idle_us[e->cls]) {
        flow_end(engine, e, end_reason_of(e, FV_END_IDLE));
        e = NULL;
    }
    /* A new SYN on the tuple of a closed flow opens a new connection. */
    if (e != NULL && e->cls == CLASS_CLOSING && pkt.proto == 6 &&
        (pkt.tcp_flags & (CAP_TCP_SYN | CAP_TCP_ACK)) == CAP_TCP_SYN) {
        flow_end(engine, e, end_reason_of(e, FV_END_IDLE));
        e = NULL;
    }
    if (e == NULL) {
        e = flow_create(engine, &key, from_lo, &pkt, ts_us);
        if (e == NULL)
            return FV_ERR_NOMEM;
    }
    fwd = flow_account(e, &pkt, from_lo, ts_us);
    lru_unlink(&engine->lru[e->cls], e);
    lru_append(&engine->lru[e->cls], e);

    /* Application metadata, only from unfragmented datagrams.
     * NOTE: a fragmented DNS message (large responses, EDNS) is counted in
     * its flow but not parsed, because fragments are not reassembled. */
    if (pkt.proto == 17 && pkt.has_ports && !pkt.is_fragment && pkt.payload_len > 0 &&
        (is_dns_port(pkt.sport) || is_dns_port(pkt.dport)))
        dns_parse_one(engine, pkt.payload, pkt.payload_len, &pkt, 17, ts_us);
    if (pkt.proto == 6 && pkt.has_ports && !pkt.is_fragment)
        rc = tcp_app(engine, e, &pkt, fwd, ts_us);

    /* TCP teardown: RST ends the flow at once, FIN once from each side. */
    if (pkt.proto == 6 && pkt.has_ports) {
        if ((pkt.tcp_flags & CAP_TCP_RST) != 0) {
            flow_close(engine, e, FV_END_RST);
        } else if ((pkt.tcp_flags & CAP_TCP_FIN) != 0) {
            e->fin_seen |= fwd ? 1 : 2;
            if (e->fin_seen == 3)
                flow_close(engine, e, FV_END_FIN);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Expiry and lifecycle                                                   */
/* ---------------------------------------------------------------------- */

/*
 * Emit flows past their timeouts at NOW_US. Each class list is ordered by
 * last packet time, so the walk stops at the first flow that is not idle;
 * the active list is ordered by start of the current record, so the same
 * holds there. Cost is proportional to the number of flows expired, not to
 * the table size. An active-timeout record restarts the counters and keeps
 * the entry (and its parser state).
 */
void cap_engine_expire(cap_engine *engine, uint64_t now_us)
{
    int c;
    flow_entry *e;

    if (engine == NULL)
        return;

    for (c = 0; c < CLASS_COUNT; c++) {
        while ((e = engine->lru[c].head) != NULL &&
               now_us >= e->rec.last_us + engine->idle_us[c])
            flow_end(engine, e, end_reason_of(e, FV_END_IDLE));
    }

    while ((e = engine->active.head) != NULL && now_us >= e->active_start_us + engine->active_us) {
        flow_emit(engine, e, FV_END_ACTIVE);
        e->rec.pkts_fwd = e->rec.pkts_rev = 0;
        e->rec.bytes_fwd = e->rec.bytes_rev = 0;
        e->rec.tcp_flags_fwd = e->rec.tcp_flags_rev = 0;
        e->active_start_us = now_us;
        act_unlink(&engine->active, e);
        act_append(&engine->active, e);
    }
}

void cap_engine_flush(cap_engine *engine)
{
    int c;
    flow_entry *e;

    if (engine == NULL)
        return;
    for (c = 0; c < CLASS_COUNT; c++) {
        while ((e = engine->lru[c].head) != NULL)
            flow_end(engine, e, end_reason_of(e, FV_END_FLUSH));
    }
}

static size_t bucket_count_for(uint32_t max_flows)
{
    size_t n = CAP_MIN_BUCKETS;

    while (n < max_flows && n < CAP_MAX_BUCKETS)
        n *= 2;
    return n;
}

int cap_engine_create(const cap_config *config, const cap_sink *sink, cap_engine **out)
{
    cap_engine *eng;
    size_t nbuckets;

    if (out == NULL)
        return FV_ERR_INVALID;
    *out = NULL;
    if (sodium_init() < 0)
        return FV_ERR_CRYPTO;

    eng = calloc(1, sizeof *eng);
    if (eng == NULL)
        return FV_ERR_NOMEM;
    if (config != NULL)
        eng->cfg = *config;
    if (sink != NULL)
        eng->sink = *sink;
    if (eng->cfg.tcp_idle_s == 0)
        eng->cfg.tcp_idle_s = CAP_DEFAULT_TCP_IDLE_S;
    if (eng->cfg.udp_idle_s == 0)
        eng->cfg.udp_idle_s = CAP_DEFAULT_UDP_IDLE_S;
    if (eng->cfg.other_idle_s == 0)
        eng->cfg.other_idle_s = CAP_DEFAULT_OTHER_IDLE_S;
    if (eng->cfg.active_s == 0)
        eng->cfg.active_s = CAP_DEFAULT_ACTIVE_S;
    if (eng->cfg.max_flows == 0)
        eng->cfg.max_flows = CAP_DEFAULT_MAX_FLOWS;
    eng->idle_us[CLASS_TCP] = eng->cfg.tcp_idle_s * US_PER_S;
    eng->idle_us[CLASS_UDP] = eng->cfg.udp_idle_s * US_PER_S;
    eng->idle_us[CLASS_OTHER] = eng->cfg.other_idle_s * US_PER_S;
    eng->idle_us[CLASS_CLOSING] = CAP_CLOSE_LINGER_US;
    eng->active_us = eng->cfg.active_s * US_PER_S;

    nbuckets = bucket_count_for(eng->cfg.max_flows);
    eng->buckets = calloc(nbuckets, sizeof *eng->buckets);
    if (eng->buckets == NULL) {
        free(eng);
        return FV_ERR_NOMEM;
    }
    eng->bucket_mask = nbuckets - 1;
    randombytes_buf(eng->hash_key, sizeof eng->hash_key);

    *out = eng;
    return FV_OK;
}

void cap_engine_destroy(cap_engine **engine)
{
    cap_engine *eng;

    if (engine == NULL || *engine == NULL)
        return;
    eng = *engine;
    cap_engine_flush(eng);
    free(eng->buckets);
    sodium_memzero(eng->hash_key, sizeof eng->hash_key);
    free(eng);
    *engine = NULL;
}

void cap_engine_stats(const cap_engine *engine, cap_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (engine == NULL)
        return;
    *out = engine->stats;
    out->excluded = 0;
    out->flows_active = engine->flow_count;
}

void cap_engine_set_pcap_stats(cap_engine *engine, uint64_t received, uint64_t dropped,
                               uint64_t if_dropped)
{
    if (engine == NULL)
        return;
    engine->stats.pcap_received = received;
    engine->stats.pcap_dropped = dropped;
    engine->stats.pcap_if_dropped = if_dropped;
}

void cap_ip_format(const cap_ip *addr, char *out, size_t out_len)
{
    char text[INET6_ADDRSTRLEN];
    const char *r = NULL;

    if (out == NULL || out_len == 0)
        return;
    out[0] = '\0';
    if (addr == NULL)
        return;
    if (addr->family == 4)
        r = inet_ntop(AF_INET, addr->addr, text, sizeof text);
    else if (addr->family == 6)
        r = inet_ntop(AF_INET6, addr->addr, text, sizeof text);
    if (r == NULL)
        return;
    if (strlen(text) < out_len)
        memcpy(out, text, strlen(text) + 1);
}
