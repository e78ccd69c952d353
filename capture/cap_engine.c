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
#include "cap_quic.h"

#if defined(__SANITIZE_ADDRESS__)
#define CAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAP_ASAN 1
#endif
#endif
#ifdef CAP_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define US_PER_S 1000000ULL

#define CAP_DEFAULT_TCP_IDLE_S 300
#define CAP_DEFAULT_UDP_IDLE_S 60
#define CAP_DEFAULT_OTHER_IDLE_S 30
#define CAP_DEFAULT_ACTIVE_S 1800
#define CAP_DEFAULT_MAX_FLOWS 1000000

/* 0 only in the bench-only library fv_capture_flows_only (bench/), which
 * measures decoding and flow tracking without the application parsers. */
#ifndef CAP_PARSE_APPS
#define CAP_PARSE_APPS 1
#endif

/* Expiry runs when packet time passes the previous run by this much. */
#define CAP_EXPIRE_INTERVAL_US CAP_ENGINE_EXPIRE_INTERVAL_US

/* Bytes of one direction of a TCP stream kept for the protocol parsers:
 * a TLS hello may span several 2^14-byte records (post-quantum key shares
 * make ClientHellos grow), so up to 64 KiB. A hello still incomplete at
 * this size counts as malformed. Buffers grow on demand and are freed
 * once the hello is parsed. */
#define CAP_STREAM_MAX_BYTES 65536
#define CAP_STREAM_FIRST_ALLOC 2048
/* Out-of-order segments held per direction until the gap before them fills. */
#define CAP_STREAM_OOO_SEGMENTS 8


/* Hash buckets: a power of two, between these bounds, near max_flows. */
#define CAP_MIN_BUCKETS 1024u
#define CAP_MAX_BUCKETS (1u << 22)

#define PORT_DNS 53
#define PORT_MDNS 5353
#define PORT_LLMNR 5355
#define PORT_DHCP_SERVER 67
#define PORT_DHCP_CLIENT 68
#define PORT_NTP 123
#define PORT_NBNS 137
#define PORT_HTTP 80
#define PORT_HTTP_ALT 8080

#define TLS_HANDSHAKE_RECORD 0x16

/*
 * Canonical bidirectional flow key, as five 64-bit words:
 *   w[0]    family | proto << 8 | port_lo << 16 | port_hi << 32
 *   w[1..2] the "lo" address (16 bytes, network order, IPv4 in the first 4)
 *   w[3..4] the "hi" address
 * The (address, port) pair that sorts lower (address words compared as
 * numbers, then the port) is always the lo side, so both directions of a
 * conversation produce the same key and map to one table entry. Ports are
 * host order and 0 for protocols without ports. The key is written and
 * read only as whole words, so the hash and the comparison that follow
 * key_make read what it just stored without stalling on partial stores.
 */
typedef struct cap_flow_key {
    uint64_t w[5];
} cap_flow_key;

/* Idle-timeout classes, each with its own LRU list. */
/* CLASS_CLOSING contains TCP flows that ended by FIN or RST, kept for a
 * short linger so the final ACK and stray retransmissions join the flow they
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
    APP_SSH,           /* both directions buffered: banners and KEXINITs */
    APP_DTLS,          /* UDP flow that started with a DTLS ClientHello */
    APP_QUIC,          /* UDP flow that started with a QUIC v1/v2 long header */
};

/* Datagrams of a QUIC flow examined for the Initial packets of both
 * sides before the flow is given up on. An estimate with margin: in the
 * four public QUIC captures tried, both hellos came within 5 datagrams. */
#define CAP_QUIC_DATAGRAMS_MAX 16

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
    size_t http_head_scanned; /* HTTP: bytes at buf searched for a head's end (cap_http_conn_feed) */
    /* Segments that arrived beyond next_seq, copied and waiting for the
     * gap to fill. Their bytes count against CAP_STREAM_MAX_BYTES together
     * with len, so one direction never buffers more than that. */
    struct stream_segment {
        uint32_t seq;
        uint8_t *data;
        size_t len;
    } ooo[CAP_STREAM_OOO_SEGMENTS];
    unsigned ooo_count;
    size_t ooo_bytes;
} cap_stream;

/*
 * The TCP stream state of one flow, allocated when the application stage
 * first buffers payload for a parser (TLS, HTTP, DNS over TCP, SSH) and
 * freed when parsing ends or the flow ends. Most flows of a flood or a
 * scan carry no payload and never get one. Index 0: client to server,
 * 1: server to client.
 */
typedef struct flow_streams {
    cap_stream dir[2];
} flow_streams;

/*
 * A flow table entry. rec is the record as it will be emitted: rec.src
 * is the sender of the first packet counted in the entry and "fwd" is the
 * src->dst direction. src_is_lo records which side of the canonical key
 * that is. The entry is on three lists at once: its hash chain, the LRU list of
 * its class (ordered by last packet time, oldest first), and the active
 * list (ordered by active_start_us, oldest first). The fields every
 * packet reads (key, chain, LRU links, class and direction flags, the
 * start of rec) come first, so a lookup touches few cache lines. The
 * others follow without padding between them, because the entries are
 * the engine's largest allocation under a flood (384 bytes on x86-64).
 */
typedef struct flow_entry {
    cap_flow_key key;
    struct flow_entry *hash_next;
    struct flow_entry *lru_prev, *lru_next;
    /* Next sequence number after each direction's SYN (index as in
     * flow_streams), kept here until the streams are allocated. */
    uint32_t syn_next_seq[2];
    uint32_t extra_bytes;  /* flow_extra_cost as last added to cap_engine.extra_bytes */
    uint8_t syn_seq_known; /* bit 0: syn_next_seq[0] is set, bit 1: syn_next_seq[1] */
    uint8_t cls;
    uint8_t fin_seen;   /* bit 0: FIN from src, bit 1: FIN from dst */
    uint8_t close_reason; /* FV_END_FIN or FV_END_RST while cls is CLASS_CLOSING */
    uint8_t app;        /* enum app_kind */
    uint8_t quic_datagrams; /* datagrams fed to quic so far */
    bool src_is_lo : 1;
    bool client_is_src : 1; /* TCP: the initiator, by SYN or else by port */
    bool icmp_set : 1;
    bool quic_server_done : 1;  /* QUIC: the ServerHello was parsed into tls */
    bool synack_seen : 1;       /* TCP: a SYN-ACK was seen after the SYN of syn_us */
    cap_flow rec;
    struct flow_entry *act_prev, *act_next;
    uint64_t active_start_us;
    uint64_t syn_us;       /* time of the client's SYN, 0 until seen */
    /* The link that points to this entry: its bucket, or hash_next of the
     * entry before it. flow_remove so unlinks the entry without reading
     * the bucket, a cache miss for the old flows that expire. */
    struct flow_entry **hash_pprev;
    cap_seq_track seq[2];  /* TCP: index 0 for src->dst, 1 for dst->src */
    flow_streams *streams; /* NULL until a parser needs the payload */
    cap_ssh_state *ssh;   /* APP_SSH only, until its record is emitted */
    struct tls_state *tls; /* TLS/DTLS: parsed ClientHello awaiting its ServerHello */
    cap_quic_flow *quic;  /* APP_QUIC only, until both hellos are parsed */
    cap_http_conn *http;  /* APP_HTTP: requests awaiting their responses */
} flow_entry;

/*
 * A TLS or DTLS connection whose ClientHello was parsed and whose record
 * is not emitted yet: it goes out when the ServerHello is parsed or when
 * the flow ends, whichever comes first.
 */
typedef struct tls_state {
    cap_tls_hello hello;
    uint64_t ts_us;             /* time of the packet that completed the ClientHello */
    uint8_t transport;          /* fv_tls_transport */
    bool client_done;           /* hello contains a parsed ClientHello */
    bool client_is_src;         /* DTLS: the ClientHello came from rec.src */
    cap_dtls_reasm reasm[2];    /* DTLS: index 0 client hello, 1 server hello */
    uint32_t quic_version;      /* QUIC: version of the Initial packets, else 0 */
} tls_state;

typedef struct flow_list {
    flow_entry *head, *tail;
} flow_list;


struct cap_engine {
    cap_config cfg;
    cap_sink sink;
    cap_stats stats;
    uint64_t hash_seed[6]; /* random per engine, see key_hash */
    flow_entry **buckets;
    size_t bucket_mask;
    uint64_t flow_count;
    flow_list lru[CLASS_COUNT];
    flow_list active;
    uint64_t idle_us[CLASS_COUNT];
    uint64_t active_us;
    uint64_t next_expire_us;
    cap_frag_table *reasm; /* IP fragment reassembly (cap_frag.c) */
    uint64_t packet_ts_us; /* timestamp of the frame being processed */
    /* Memory counted against cfg.max_memory_bytes (see cap_engine_memory):
     * the fixed part (engine and buckets), entries, and each entry's
     * extra_bytes; the fragment table reports its own. */
    uint64_t fixed_bytes;
    uint64_t entry_bytes;
    uint64_t extra_bytes;
    uint64_t stream_states; /* entries whose streams are allocated */
    /* Freed entries kept for reuse, linked by hash_next (see entry_alloc). */
    struct flow_entry *spare;
    size_t spare_count;
};

/* Bytes one allocation of SIZE counts against the memory bound. */
#define ALLOC_COST(size) ((uint64_t)(size) + CAP_MEMORY_ALLOC_OVERHEAD)

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

/* Wipe and free every held out-of-order segment of S. */
static void stream_drop_ooo(cap_stream *s)
{
    unsigned i;

    for (i = 0; i < s->ooo_count; i++) {
        sodium_memzero(s->ooo[i].data, s->ooo[i].len);
        free(s->ooo[i].data);
        s->ooo[i].data = NULL;
    }
    s->ooo_count = 0;
    s->ooo_bytes = 0;
}

static void stream_clear(cap_stream *s)
{
    if (s->buf != NULL)
        sodium_memzero(s->buf, s->len);
    s->len = 0;
    s->http_head_scanned = 0;
    stream_drop_ooo(s);
}

/* Wipe and free S's buffers. Only the first len bytes of buf are wiped.
 * The bytes past len never held payload, because consumed bytes are
 * wiped where they are dropped and a grown buffer copies only len. */
static void stream_free(cap_stream *s)
{
    if (s->buf != NULL) {
        sodium_memzero(s->buf, s->len);
        free(s->buf);
    }
    s->buf = NULL;
    s->len = 0;
    s->http_head_scanned = 0;
    s->alloc = 0;
    stream_drop_ooo(s);
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
        sodium_memzero(s->buf, s->len); /* the rest held no payload, see stream_free */
        free(s->buf);
    }
    s->buf = grown;
    s->alloc = alloc;
    return true;
}

enum append_result { APPEND_GAP = -1, APPEND_NOTHING = 0, APPEND_OK = 1, APPEND_NOMEM = -2 };

static int stream_append_in_order(cap_stream *s, uint32_t seq, const uint8_t *data, size_t len);

/*
 * Hold a segment that starts beyond next_seq (SEQ, DATA, LEN) until the
 * gap fills. It is dropped (and counted) when the queue is full, when it
 * would end past CAP_STREAM_MAX_BYTES of stream, or when the held bytes
 * and the buffer together would pass that size.
 */
static int stream_hold(cap_engine *eng, cap_stream *s, uint32_t seq, const uint8_t *data,
                       size_t len)
{
    uint32_t ahead = seq - s->next_seq;
    uint8_t *copy;
    unsigned i;

    for (i = 0; i < s->ooo_count; i++) {
        if (s->ooo[i].seq == seq && s->ooo[i].len >= len)
            return APPEND_GAP; /* already held */
    }
    if (s->ooo_count == CAP_STREAM_OOO_SEGMENTS || ahead > CAP_STREAM_MAX_BYTES ||
        len > CAP_STREAM_MAX_BYTES - s->len - ahead ||
        len > CAP_STREAM_MAX_BYTES - s->len - s->ooo_bytes) {
        eng->stats.tcp_ooo_dropped++;
        return APPEND_GAP;
    }
    copy = malloc(len);
    if (copy == NULL)
        return APPEND_NOMEM;
    memcpy(copy, data, len);
    s->ooo[s->ooo_count].seq = seq;
    s->ooo[s->ooo_count].data = copy;
    s->ooo[s->ooo_count].len = len;
    s->ooo_count++;
    s->ooo_bytes += len;
    eng->stats.tcp_ooo_buffered++;
    return APPEND_GAP;
}

/* Append every held segment that next_seq has reached, wiping each copy. */
static int stream_drain(cap_stream *s)
{
    bool moved = true;
    int rc = APPEND_NOTHING;

    while (moved) {
        unsigned i;

        moved = false;
        for (i = 0; i < s->ooo_count; i++) {
            struct stream_segment seg = s->ooo[i];
            int ar;

            if ((int32_t)(seg.seq - s->next_seq) > 0)
                continue;
            s->ooo[i] = s->ooo[s->ooo_count - 1];
            s->ooo_count--;
            s->ooo_bytes -= seg.len;
            ar = stream_append_in_order(s, seg.seq, seg.data, seg.len);
            sodium_memzero(seg.data, seg.len);
            free(seg.data);
            if (ar == APPEND_NOMEM)
                return APPEND_NOMEM;
            if (ar == APPEND_OK)
                rc = APPEND_OK;
            moved = true;
            break;
        }
    }
    return rc;
}

/*
 * Append a segment (SEQ, DATA, LEN) to S. A retransmission adds only
 * bytes past next_seq. A segment that starts beyond next_seq (loss or
 * reordering) is held, bounded, and appended once the gap fills.
 */
static int stream_append(cap_engine *eng, cap_stream *s, uint32_t seq, const uint8_t *data,
                         size_t len)
{
    int ar, drained;

    if (s->seq_known && (int32_t)(seq - s->next_seq) > 0)
        return stream_hold(eng, s, seq, data, len);
    ar = stream_append_in_order(s, seq, data, len);
    if (ar != APPEND_OK || s->ooo_count == 0)
        return ar;
    drained = stream_drain(s);
    return drained == APPEND_NOMEM ? APPEND_NOMEM : APPEND_OK;
}

/*
 * Append the new in-order part of a segment to S. Bytes past
 * CAP_STREAM_MAX_BYTES are dropped but still advance next_seq.
 */
static int stream_append_in_order(cap_stream *s, uint32_t seq, const uint8_t *data, size_t len)
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

/* Allocate E's stream state. A direction whose SYN was seen starts at
 * the sequence number after it, as if the SYN had been appended. */
static bool streams_alloc(cap_engine *eng, flow_entry *e)
{
    unsigned i;

    e->streams = calloc(1, sizeof *e->streams);
    if (e->streams == NULL)
        return false;
    for (i = 0; i < 2; i++) {
        if ((e->syn_seq_known & (1u << i)) != 0) {
            e->streams->dir[i].next_seq = e->syn_next_seq[i];
            e->streams->dir[i].seq_known = true;
        }
    }
    eng->stream_states++;
    return true;
}

/* Wipe and free E's stream state, if any. */
static void streams_release(cap_engine *eng, flow_entry *e)
{
    if (e->streams == NULL)
        return;
    stream_free(&e->streams->dir[0]);
    stream_free(&e->streams->dir[1]);
    free(e->streams);
    e->streams = NULL;
    eng->stream_states--;
}

/* ---------------------------------------------------------------------- */
/* Flow table                                                             */
/* ---------------------------------------------------------------------- */

/* Freed flow entries kept for the next new flows. Flows come and go in
 * batches (each expiry pass ends many), so the entries one pass frees
 * serve the flows created until the next without malloc and free. The
 * spares are outside the memory bound, at most 1024 * 384 bytes. */
#define CAP_SPARE_ENTRIES 1024u

/* Return a zeroed entry, reused or new; NULL when out of memory. */
static flow_entry *entry_alloc(cap_engine *eng)
{
    flow_entry *e = eng->spare;

    if (e == NULL)
        return calloc(1, sizeof *e);
#ifdef CAP_ASAN
    ASAN_UNPOISON_MEMORY_REGION(e, sizeof *e);
#endif
    eng->spare = e->hash_next;
    eng->spare_count--;
    memset(e, 0, sizeof *e);
    return e;
}

/* Keep E as a spare, or free it when there are enough. E contains no
 * payload, because payload is kept only in the stream state, which is
 * wiped when it is freed. */
static void entry_release(cap_engine *eng, flow_entry *e)
{
    if (eng->spare_count >= CAP_SPARE_ENTRIES) {
        free(e);
        return;
    }
    e->hash_next = eng->spare;
    eng->spare = e;
    eng->spare_count++;
#ifdef CAP_ASAN
    /* A spare is not a live entry, so any access but entry_alloc's is a bug. */
    ASAN_POISON_MEMORY_REGION(e, sizeof *e);
#endif
}

static void entries_free_spares(cap_engine *eng)
{
    while (eng->spare != NULL) {
        flow_entry *e = eng->spare;

#ifdef CAP_ASAN
        ASAN_UNPOISON_MEMORY_REGION(e, sizeof *e);
#endif
        eng->spare = e->hash_next;
        free(e);
    }
    eng->spare_count = 0;
}

/* Multiply two 64-bit words to 128 bits and fold the halves together. */
static inline uint64_t mul_fold(uint64_t a, uint64_t b)
{
    __extension__ typedef unsigned __int128 u128;
    u128 r = (u128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/*
 * Hash a flow key with a multiply-fold construction under 384 random
 * bits drawn when the engine is created. It is seeded, so an outsider who
 * cannot read the seed cannot aim packets at one bucket, and it costs a
 * few nanoseconds where SipHash-2-4 cost about 25 per packet (a fifth of
 * the engine's time in `bench/run.sh` profiles). It is not a
 * cryptographic PRF: the hard flow-table bound with LRU eviction, not
 * the hash, is what keeps a flood from growing the table.
 */
static uint64_t key_hash(const cap_engine *eng, const cap_flow_key *key)
{
    const uint64_t *w = key->w;
    uint64_t h = mul_fold(w[0] ^ eng->hash_seed[0], w[1] ^ eng->hash_seed[1]);
    h = mul_fold(h ^ w[2] ^ eng->hash_seed[2], w[3] ^ eng->hash_seed[3]);
    return mul_fold(h ^ w[4] ^ eng->hash_seed[4], eng->hash_seed[5]);
}

/* Build the canonical key of PKT; return true if PKT travels from the
 * key's lo side to its hi side. */
static bool key_make(const cap_packet *pkt, cap_flow_key *key)
{
    uint64_t src[2], dst[2];
    uint64_t sport = pkt->has_ports ? pkt->sport : 0;
    uint64_t dport = pkt->has_ports ? pkt->dport : 0;

    memcpy(src, pkt->src.addr, 16);
    memcpy(dst, pkt->dst.addr, 16);
    bool src_lo;
    if (src[0] != dst[0])
        src_lo = src[0] < dst[0];
    else if (src[1] != dst[1])
        src_lo = src[1] < dst[1];
    else
        src_lo = sport <= dport;

    uint64_t head = (uint64_t)pkt->src.family | (uint64_t)pkt->proto << 8;
    if (src_lo) {
        key->w[0] = head | sport << 16 | dport << 32;
        key->w[1] = src[0];
        key->w[2] = src[1];
        key->w[3] = dst[0];
        key->w[4] = dst[1];
    } else {
        key->w[0] = head | dport << 16 | sport << 32;
        key->w[1] = dst[0];
        key->w[2] = dst[1];
        key->w[3] = src[0];
        key->w[4] = src[1];
    }
    return src_lo;
}

/* Put E at the head of the chain whose first link is HEAD. */
static void chain_insert(flow_entry **head, flow_entry *e)
{
    e->hash_next = *head;
    if (e->hash_next != NULL)
        e->hash_next->hash_pprev = &e->hash_next;
    *head = e;
    e->hash_pprev = head;
}

static flow_entry **bucket_of(cap_engine *eng, const cap_flow_key *key)
{
    return &eng->buckets[key_hash(eng, key) & eng->bucket_mask];
}

/* Compare two keys word by word; inlined, where a memcmp call was a
 * measurable share of the per-packet cost. */
static inline bool key_equal(const cap_flow_key *a, const cap_flow_key *b)
{
    return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
            (a->w[3] ^ b->w[3]) | (a->w[4] ^ b->w[4])) == 0;
}

static flow_entry *flow_find(cap_engine *eng, const cap_flow_key *key)
{
    flow_entry *e;

    for (e = *bucket_of(eng, key); e != NULL; e = e->hash_next) {
        if (key_equal(&e->key, key))
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

static void tls_finish(cap_engine *eng, flow_entry *e);

static void flow_remove(cap_engine *eng, flow_entry *e)
{
    *e->hash_pprev = e->hash_next;
    if (e->hash_next != NULL)
        e->hash_next->hash_pprev = e->hash_pprev;
    lru_unlink(&eng->lru[e->cls], e);
    act_unlink(&eng->active, e);
    tls_finish(eng, e);
    cap_quic_flow_destroy(&e->quic);
    if (e->ssh != NULL) {
        cap_ssh_finish(e->ssh, &eng->sink, &eng->stats);
        free(e->ssh);
        e->ssh = NULL;
    }
    cap_http_conn_finish(&e->http, &eng->sink, &eng->stats);
    streams_release(eng, e);
    cap_seq_track_free(&e->seq[0]);
    cap_seq_track_free(&e->seq[1]);
    eng->extra_bytes -= e->extra_bytes;
    eng->entry_bytes -= ALLOC_COST(sizeof *e);
    entry_release(eng, e);
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

/* Evict the flow seen least recently across the class lists. FOR_MEMORY:
 * the memory bound, not max_flows, was reached. Return false when the
 * table is empty. */
static bool flow_evict_oldest(cap_engine *eng, bool for_memory)
{
    flow_entry *oldest = NULL;
    int c;

    for (c = 0; c < CLASS_COUNT; c++) {
        flow_entry *h = eng->lru[c].head;

        if (h != NULL && (oldest == NULL || h->rec.last_us < oldest->rec.last_us))
            oldest = h;
    }
    if (oldest == NULL)
        return false;
    eng->stats.flows_evicted++;
    if (for_memory)
        eng->stats.flows_evicted_memory++;
    flow_end(eng, oldest, end_reason_of(oldest, FV_END_EVICT));
    return true;
}

/* Bytes counted against the memory bound right now. */
static uint64_t memory_used(const cap_engine *eng)
{
    return eng->fixed_bytes + eng->entry_bytes + eng->extra_bytes + cap_frag_bytes(eng->reasm);
}

/* Evict the least recently seen flows until EXTRA more bytes fit under
 * the memory bound or the table is empty. */
static void memory_make_room(cap_engine *eng, uint64_t extra)
{
    while (memory_used(eng) + extra > eng->cfg.max_memory_bytes) {
        if (!flow_evict_oldest(eng, true))
            return;
    }
}

/* Bytes of E's allocations other than the entry: stream state with its
 * buffers and held segments, sequence ranges, and the SSH and TLS parser
 * state.
 * NOTE: QUIC decryption state, HTTP pairing queues and DTLS hello
 * buffers are not counted. Each is bounded per flow and exists only
 * while a hello or request is being parsed. */
static uint64_t flow_extra_cost(const flow_entry *e)
{
    uint64_t n = 0;
    unsigned i;

    if (e->streams != NULL) {
        n += ALLOC_COST(sizeof *e->streams);
        for (i = 0; i < 2; i++) {
            const cap_stream *st = &e->streams->dir[i];

            if (st->buf != NULL)
                n += ALLOC_COST(st->alloc);
            n += st->ooo_bytes + (uint64_t)st->ooo_count * CAP_MEMORY_ALLOC_OVERHEAD;
        }
    }
    for (i = 0; i < 2; i++) {
        if (e->seq[i].ranges != NULL)
            n += ALLOC_COST(CAP_SEQ_RANGES * sizeof *e->seq[i].ranges);
    }
    if (e->ssh != NULL)
        n += ALLOC_COST(sizeof *e->ssh);
    if (e->tls != NULL)
        n += ALLOC_COST(sizeof(struct tls_state));
    return n;
}

/* Bring E's share of the memory count up to date after its state changed. */
static void flow_recount(cap_engine *eng, flow_entry *e)
{
    uint64_t now = flow_extra_cost(e);

    eng->extra_bytes = eng->extra_bytes - e->extra_bytes + now;
    e->extra_bytes = (uint32_t)now;
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

/* The fv_initiator, the evidence client_is_sender uses for a first packet. */
static uint8_t initiator_of(const cap_packet *pkt)
{
    if ((pkt->tcp_flags & CAP_TCP_SYN) != 0)
        return FV_INIT_SYN;
    if (pkt->sport != pkt->dport)
        return FV_INIT_PORT;
    return FV_INIT_FIRST;
}

#define SWAP(type, a, b)                                                                           \
    do {                                                                                           \
        type swap_tmp_ = (a);                                                                      \
        (a) = (b);                                                                                 \
        (b) = swap_tmp_;                                                                           \
    } while (0)

/*
 * Exchange the two sides of E's record, so that what was dst becomes src.
 * Every per-direction field moves with its side, so the totals stay the
 * same; the client streams swap because the client is now the other side.
 */
static void flow_swap(flow_entry *e)
{
    cap_flow *r = &e->rec;
    uint8_t mac[6];

    SWAP(cap_ip, r->src, r->dst);
    SWAP(uint16_t, r->sport, r->dport);
    SWAP(uint64_t, r->pkts_fwd, r->pkts_rev);
    SWAP(uint64_t, r->bytes_fwd, r->bytes_rev);
    SWAP(uint16_t, r->tcp_flags_fwd, r->tcp_flags_rev);
    SWAP(uint32_t, r->retrans_fwd, r->retrans_rev);
    SWAP(uint32_t, r->ooo_fwd, r->ooo_rev);
    SWAP(cap_ip, r->outer_src, r->outer_dst);
    memcpy(mac, r->src_mac, 6);
    memcpy(r->src_mac, r->dst_mac, 6);
    memcpy(r->dst_mac, mac, 6);
    SWAP(cap_seq_track, e->seq[0], e->seq[1]);
    if (e->streams != NULL)
        SWAP(cap_stream, e->streams->dir[0], e->streams->dir[1]);
    SWAP(uint32_t, e->syn_next_seq[0], e->syn_next_seq[1]);
    e->syn_seq_known = (uint8_t)(((e->syn_seq_known & 1) << 1) | ((e->syn_seq_known & 2) >> 1));
    e->fin_seen = (uint8_t)(((e->fin_seen & 1) << 1) | ((e->fin_seen & 2) >> 1));
    e->src_is_lo = !e->src_is_lo;
}

static flow_entry *flow_create(cap_engine *eng, const cap_flow_key *key, bool from_lo,
                               const cap_packet *pkt, uint64_t ts_us)
{
    flow_entry *e;
    flow_entry **bucket;

    if (eng->flow_count >= eng->cfg.max_flows)
        (void)flow_evict_oldest(eng, false);
    memory_make_room(eng, ALLOC_COST(sizeof *e));

    e = entry_alloc(eng);
    if (e == NULL)
        return NULL;
    eng->entry_bytes += ALLOC_COST(sizeof *e);
    e->key = *key;
    e->cls = class_of(pkt->proto);
    e->src_is_lo = from_lo;
    /* TCP records are turned so that src is the client (see flow_swap);
     * other protocols keep the first packet's sender as src. */
    e->client_is_src = true;
    e->active_start_us = ts_us;
    e->rec.initiator = pkt->proto == 6 ? initiator_of(pkt) : FV_INIT_FIRST;

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
    if (pkt->proto == 6 && !client_is_sender(pkt))
        flow_swap(e);

    bucket = bucket_of(eng, key);
    chain_insert(bucket, e);
    lru_append(&eng->lru[e->cls], e);
    act_append(&eng->active, e);
    eng->flow_count++;
    eng->stats.flows_created++;
    return e;
}

/* Record the application a parser recognised in E. The first one set
 * stays, so a later, weaker guess does not overwrite it. */
static void cap_flow_set_app(flow_entry *e, fv_app app)
{
    if (e != NULL && e->rec.app == FV_APP_NONE)
        e->rec.app = (uint8_t)app;
}

/* Add PKTS packets of BYTES IP bytes, seen from FIRST_US to LAST_US, to
 * one direction of E (fragments whose flow was known only later). */
static void flow_account_bulk(flow_entry *e, bool fwd, uint32_t pkts, uint64_t bytes,
                              uint64_t first_us, uint64_t last_us)
{
    if (pkts == 0)
        return;
    if (e->rec.pkts_fwd + e->rec.pkts_rev == 0 || first_us < e->rec.first_us)
        e->rec.first_us = first_us;
    if (last_us > e->rec.last_us)
        e->rec.last_us = last_us;
    if (fwd) {
        e->rec.pkts_fwd += pkts;
        e->rec.bytes_fwd += bytes;
    } else {
        e->rec.pkts_rev += pkts;
        e->rec.bytes_rev += bytes;
    }
}

/* ---------------------------------------------------------------------- */
/* Fragments                                                              */
/* ---------------------------------------------------------------------- */

/* Count orphaned fragments (their datagram's first fragment never came)
 * in a portless flow of their protocol between their addresses. */
static void frag_orphan(void *ctx, const cap_frag_orphan *o)
{
    cap_engine *eng = ctx;
    cap_packet pkt;
    cap_flow_key key;
    flow_entry *e;
    bool from_lo, fwd;

    memset(&pkt, 0, sizeof pkt);
    pkt.src = o->src;
    pkt.dst = o->dst;
    pkt.proto = o->proto;
    from_lo = key_make(&pkt, &key);
    e = flow_find(eng, &key);
    if (e == NULL) {
        e = flow_create(eng, &key, from_lo, &pkt, o->first_us);
        if (e == NULL)
            return;
    }
    fwd = from_lo == e->src_is_lo;
    flow_account_bulk(e, fwd, o->pkts, o->bytes, o->first_us, o->last_us);
    lru_unlink(&eng->lru[e->cls], e);
    lru_append(&eng->lru[e->cls], e);
}

/* ---------------------------------------------------------------------- */
/* Application metadata                                                   */
/* ---------------------------------------------------------------------- */

static bool is_dns_port(uint16_t port)
{
    return port == PORT_DNS || port == PORT_MDNS || port == PORT_LLMNR;
}

/* Name the DNS flavour by port: mDNS and LLMNR share the DNS message
 * format but run on their own ports. */
static uint8_t dns_protocol_of(uint16_t port_a, uint16_t port_b)
{
    if (port_a == PORT_MDNS || port_b == PORT_MDNS)
        return FV_DNS_PROTO_MDNS;
    if (port_a == PORT_LLMNR || port_b == PORT_LLMNR)
        return FV_DNS_PROTO_LLMNR;
    return FV_DNS_PROTO_DNS;
}

/* Count a rejected message or a cut answer section under its reason. */
static void dns_count_error(cap_engine *eng, uint8_t error)
{
    switch (error) {
    case CAP_DNS_ERR_TRUNCATED:
        eng->stats.dns_truncated++;
        break;
    case CAP_DNS_ERR_LABEL_TYPE:
        eng->stats.dns_bad_label_type++;
        break;
    case CAP_DNS_ERR_POINTER:
        eng->stats.dns_bad_pointer++;
        break;
    case CAP_DNS_ERR_NAME_LENGTH:
        eng->stats.dns_name_too_long++;
        break;
    case CAP_DNS_ERR_RDATA:
        eng->stats.dns_bad_rdata++;
        break;
    default:
        break;
    }
}

/* Entries of an array of MAX that a count of COUNT uses. */
static size_t dns_used(uint8_t count, size_t max)
{
    return count < max ? count : max;
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
    ev.protocol = dns_protocol_of(sender_port, receiver_port);
    ev.qdcount = m->qdcount;
    ev.question_count = m->question_count;
    ev.a_count = m->a_count;
    ev.aaaa_count = m->aaaa_count;
    ev.cname_count = m->cname_count;
    /* Only the entries in use are copied. The rest are zero in both (the
     * memset above, and cap_dns_parse zeroes M), and copying all 3 KiB
     * of them was a measurable part of each DNS message's cost. */
    memcpy(ev.questions, m->questions, dns_used(m->question_count, FV_DNS_QUESTIONS_MAX) *
                                           sizeof ev.questions[0]);
    memcpy(ev.a, m->a, dns_used(m->a_count, FV_DNS_ADDRS_MAX) * sizeof ev.a[0]);
    memcpy(ev.aaaa, m->aaaa, dns_used(m->aaaa_count, FV_DNS_ADDRS_MAX) * sizeof ev.aaaa[0]);
    memcpy(ev.cnames, m->cnames, dns_used(m->cname_count, FV_DNS_CNAMES_MAX) * sizeof ev.cnames[0]);
    if (eng->sink.on_dns != NULL)
        eng->sink.on_dns(eng->sink.ctx, &ev);
}

static void dns_parse_one(cap_engine *eng, const uint8_t *data, size_t len, const cap_packet *pkt,
                          uint8_t transport, uint64_t ts_us)
{
    cap_dns_msg m; /* cap_dns_parse zeroes all of it first */

    if (cap_dns_parse(data, len, &m) != FV_OK) {
        eng->stats.dns_malformed++;
        dns_count_error(eng, m.error);
        return;
    }
    eng->stats.dns_messages++;
    if (m.answers_incomplete) {
        eng->stats.dns_answers_incomplete++;
        dns_count_error(eng, m.error);
    }
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

/*
 * Return true if DATA starts like an HTTP/1.x request line: an upper-case
 * token of 1 to 15 characters and a space, and, when the first line ends
 * within DATA, "HTTP/1." on that line. Sent to port 80 or 8080, a token
 * alone on its line, or a line without a version, is accepted too,
 * because clients send such broken request lines ("OPTIONS",
 * "GET /HTTP/1.1") and the request parser accepts them.
 */
static bool looks_like_http_request(const uint8_t *data, size_t len, uint16_t dport)
{
    bool http_port = dport == PORT_HTTP || dport == PORT_HTTP_ALT;
    size_t i = 0, eol;

    while (i < len && i < 16 && ((data[i] >= 'A' && data[i] <= 'Z') || data[i] == '-' ||
                                 data[i] == '_'))
        i++;
    if (i == 0 || i >= 16 || i >= len)
        return false;
    if (data[i] != ' ')
        return http_port && (data[i] == '\r' || data[i] == '\n');
    for (eol = i; eol < len && data[eol] != '\n'; eol++)
        ;
    if (eol == len || http_port)
        return true;
    for (; i + 7 <= eol; i++) {
        if (memcmp(data + i, "HTTP/1.", 7) == 0)
            return true;
    }
    return false;
}

/* Hand E's pending TLS record, if any, to the sink and free the state.
 * Without a ServerHello the server fields stay empty. */
static void tls_finish(cap_engine *eng, flow_entry *e)
{
    tls_state *t = e->tls;
    const cap_tls_hello *h;
    cap_tls ev;

    if (t == NULL)
        return;
    e->tls = NULL;
    h = &t->hello;
    if (t->client_done) {
        memset(&ev, 0, sizeof ev);
        ev.ts_us = t->ts_us;
        client_server(e, &ev.client, &ev.client_port, &ev.server, &ev.server_port);
        if ((t->transport == FV_TLS_DTLS || t->transport == FV_TLS_QUIC) &&
            t->client_is_src != e->client_is_src) {
            /* UDP: the DTLS or QUIC client is the ClientHello's sender. */
            cap_ip ip = ev.client;
            uint16_t port = ev.client_port;
            ev.client = ev.server;
            ev.client_port = ev.server_port;
            ev.server = ip;
            ev.server_port = port;
        }
        ev.version = h->version;
        memcpy(ev.sni, h->sni, sizeof ev.sni);
        ev.sni[sizeof ev.sni - 1] = '\0';
        ev.transport = t->transport;
        ev.quic_version = t->quic_version;
        ev.alpn_count = h->alpn_count;
        memcpy(ev.alpn, h->alpn, sizeof ev.alpn);
        ev.supported_versions_count = h->supported_versions_count;
        memcpy(ev.supported_versions, h->supported_versions, sizeof ev.supported_versions);
        ev.cipher_count = h->cipher_count;
        ev.extension_count = h->extension_count;
        memcpy(ev.ja3, h->ja3, sizeof ev.ja3);
        memcpy(ev.ja4, h->ja4, sizeof ev.ja4);
        ev.server_version = h->server_version;
        ev.server_cipher = h->server_cipher;
        memcpy(ev.server_alpn, h->server_alpn, sizeof ev.server_alpn);
        memcpy(ev.ja3s, h->ja3s, sizeof ev.ja3s);
        if (eng->sink.on_tls != NULL)
            eng->sink.on_tls(eng->sink.ctx, &ev);
    }
    cap_dtls_reasm_clear(&t->reasm[0]);
    cap_dtls_reasm_clear(&t->reasm[1]);
    sodium_memzero(t, sizeof *t);
    free(t);
}

/* Return E's TLS state, allocating it on first use (NULL if out of memory). */
static tls_state *tls_state_of(flow_entry *e, uint8_t transport)
{
    if (e->tls == NULL) {
        e->tls = calloc(1, sizeof *e->tls);
        if (e->tls != NULL)
            e->tls->transport = transport;
    }
    return e->tls;
}

/*
 * TLS over TCP. The client stream (CDIR 0) is parsed until its ClientHello
 * is complete. Then the server stream (CDIR 1) is parsed until its
 * ServerHello is complete, which emits the record. The stream buffers are freed as soon as their
 * hello is parsed or found malformed.
 */
static int tls_run(cap_engine *eng, flow_entry *e, unsigned cdir, uint64_t ts_us)
{
    cap_stream *s = &e->streams->dir[cdir];
    tls_state *t;
    int rc;

    if (cdir == 0) {
        cap_tls_hello hello;

        rc = cap_tls_parse_client_hello(s->buf, s->len, &hello);
        if (rc == FV_ERR_TRUNCATED && s->len < CAP_STREAM_MAX_BYTES)
            return FV_OK;
        stream_free(s);
        if (rc != FV_OK) {
            eng->stats.tls_malformed++;
            e->app = APP_NONE;
            stream_free(&e->streams->dir[1]);
            return rc == FV_ERR_NOMEM ? rc : FV_OK;
        }
        eng->stats.tls_hellos++;
        t = tls_state_of(e, FV_TLS_TCP);
        if (t == NULL)
            return FV_ERR_NOMEM;
        t->hello = hello;
        t->ts_us = ts_us;
        t->client_done = true;
        /* The server's hello may already be buffered from the same flight. */
        if (e->streams->dir[1].len == 0)
            return FV_OK;
        s = &e->streams->dir[1];
    }

    t = e->tls;
    if (t == NULL || !t->client_done)
        return FV_OK;   /* server bytes before the ClientHello: keep them */
    rc = cap_tls_parse_server_hello(s->buf, s->len, &t->hello);
    if (rc == FV_ERR_TRUNCATED && s->len < CAP_STREAM_MAX_BYTES)
        return FV_OK;
    stream_free(s);
    e->app = APP_NONE;
    tls_finish(eng, e);
    return rc == FV_ERR_NOMEM ? rc : FV_OK;
}

/*
 * DTLS over UDP: a flow whose first datagram is a DTLS ClientHello. The
 * client's hello fragments are joined, then the server's; the record is
 * emitted at the ServerHello or when the flow ends.
 */
static int dtls_run(cap_engine *eng, flow_entry *e, const cap_packet *pkt, bool fwd,
                    uint64_t ts_us)
{
    tls_state *t = e->tls;
    bool from_client;
    int rc;

    if (t == NULL) {
        if (e->app != APP_UNDECIDED ||
            !cap_dtls_looks_like_client_hello(pkt->payload, pkt->payload_len))
            return FV_OK;
        t = tls_state_of(e, FV_TLS_DTLS);
        if (t == NULL)
            return FV_ERR_NOMEM;
        e->app = APP_DTLS;
        t->client_is_src = fwd;
    }
    if (e->app != APP_DTLS)
        return FV_OK;
    from_client = fwd == t->client_is_src;

    if (from_client && !t->client_done) {
        rc = cap_dtls_feed(&t->reasm[0], pkt->payload, pkt->payload_len, 1, &t->hello);
        if (rc == FV_ERR_TRUNCATED)
            return FV_OK;
        cap_dtls_reasm_clear(&t->reasm[0]);
        if (rc != FV_OK) {
            eng->stats.tls_malformed++;
            e->app = APP_NONE;
            tls_finish(eng, e);
            return rc == FV_ERR_NOMEM ? rc : FV_OK;
        }
        eng->stats.tls_hellos++;
        t->client_done = true;
        t->ts_us = ts_us;
    } else if (!from_client && t->client_done) {
        rc = cap_dtls_feed(&t->reasm[1], pkt->payload, pkt->payload_len, 2, &t->hello);
        if (rc == FV_ERR_TRUNCATED)
            return FV_OK;
        e->app = APP_NONE;
        tls_finish(eng, e);
        return rc == FV_ERR_NOMEM ? rc : FV_OK;
    }
    return FV_OK;
}

/*
 * QUIC over UDP: a flow whose first datagram starts with a version 1 or 2
 * long header. Initial packets of both sides are decrypted (cap_quic.c)
 * until their CRYPTO data contains the ClientHello and the ServerHello.
 * Both are parsed into one TLS record. It is emitted when both are seen,
 * after CAP_QUIC_DATAGRAMS_MAX datagrams, or when the flow ends. The QUIC
 * state, with every decrypted byte, is wiped and freed then.
 */
static int quic_run(cap_engine *eng, flow_entry *e, const cap_packet *pkt, bool fwd,
                    uint64_t ts_us)
{
    cap_quic_hello hello;
    tls_state *t;
    int rc;

    if (e->quic == NULL) {
        if (e->app != APP_UNDECIDED || !cap_quic_looks_long_header(pkt->payload, pkt->payload_len))
            return FV_OK;
        rc = cap_quic_flow_create(&e->quic);
        if (rc != FV_OK)
            return rc;
        e->app = APP_QUIC;
        e->quic_datagrams = 0;
        e->quic_server_done = false;
    }
    if (e->app != APP_QUIC)
        return FV_OK;

    e->quic_datagrams++;
    rc = cap_quic_flow_datagram(e->quic, fwd ? 0 : 1, pkt->payload, pkt->payload_len, &hello);
    if (rc == FV_ERR_TRUNCATED) {
        rc = FV_OK;
        if (e->quic_datagrams < CAP_QUIC_DATAGRAMS_MAX)
            return FV_OK;
        goto out;   /* a hello is missing: not counted as malformed */
    }
    if (rc != FV_OK) {
        eng->stats.tls_malformed++;
        goto out;
    }

    t = tls_state_of(e, FV_TLS_QUIC);
    if (t == NULL) {
        rc = FV_ERR_NOMEM;
        goto out;
    }
    rc = cap_tls_parse_handshake_hello(hello.msg, hello.len, 'q', &t->hello);
    if (rc != FV_OK) {
        eng->stats.tls_malformed++;
        goto out;
    }
    if (hello.is_server) {
        e->quic_server_done = true;
    } else {
        cap_flow_set_app(e, FV_APP_QUIC);
        eng->stats.tls_hellos++;
        t->client_done = true;
        t->client_is_src = fwd;
        t->ts_us = ts_us;
        t->quic_version = hello.version;
    }
    if (!(t->client_done && e->quic_server_done) && e->quic_datagrams < CAP_QUIC_DATAGRAMS_MAX)
        return FV_OK;

out:
    tls_finish(eng, e);
    cap_quic_flow_destroy(&e->quic);
    e->app = APP_NONE;
    return rc == FV_ERR_NOMEM ? rc : FV_OK;
}

/* Run the request/response pairing over stream CDIR and drop the bytes
 * it used. Returns FV_ERR_NOMEM when the pairing state cannot be made. */
static int http_run(cap_engine *eng, flow_entry *e, unsigned cdir, uint64_t ts_us)
{
    cap_stream *s = &e->streams->dir[cdir];
    cap_http tmpl;
    bool resync = false;

    if (e->http == NULL) {
        e->http = cap_http_conn_create();
        if (e->http == NULL)
            return FV_ERR_NOMEM;
    }
    memset(&tmpl, 0, sizeof tmpl);
    tmpl.ts_us = ts_us;
    client_server(e, &tmpl.client, &tmpl.client_port, &tmpl.server, &tmpl.server_port);

    size_t used = cap_http_conn_feed(e->http, cdir, s->buf, s->len,
                                     s->len >= CAP_STREAM_MAX_BYTES, &s->http_head_scanned,
                                     &tmpl, &eng->sink, &eng->stats, &resync);
    if (used >= s->len) {
        stream_clear(s);
    } else if (used > 0) {
        memmove(s->buf, s->buf + used, s->len - used);
        sodium_memzero(s->buf + (s->len - used), used);
        s->len -= used;
    }
    /* The client side lost track of message boundaries: the next request
     * is looked for at the start of a later segment. */
    if (resync)
        s->http_waiting = true;
    return FV_OK;
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

/* An SSL 2.0 CLIENT-HELLO record: 2-byte header with the high bit set,
 * then message type 1 and a version of 0x0002 or 0x03xx. */
static bool looks_like_sslv2_hello(const cap_packet *pkt)
{
    return pkt->payload_len >= 5 && (pkt->payload[0] & 0x80) != 0 && pkt->payload[2] == 1 &&
           ((pkt->payload[3] == 0 && pkt->payload[4] == 2) || pkt->payload[3] == 3);
}

/* Start SSH parsing on E: the first payload of either side began with
 * "SSH-". Returns false when the state cannot be allocated. */
static bool ssh_start(flow_entry *e)
{
    e->ssh = calloc(1, sizeof *e->ssh);
    if (e->ssh == NULL)
        return false;
    client_server(e, &e->ssh->ev.client, &e->ssh->ev.client_port, &e->ssh->ev.server,
                  &e->ssh->ev.server_port);
    e->app = APP_SSH;
    return true;
}

/* Read the buffered start of direction CDIR; once both sides are done,
 * emit the record and stop parsing the flow. */
static void ssh_run(cap_engine *eng, flow_entry *e, unsigned cdir, uint64_t ts_us)
{
    cap_stream *s = &e->streams->dir[cdir];

    if (e->ssh == NULL ||
        !cap_ssh_step(e->ssh, cdir, s->buf, s->len, s->len >= CAP_STREAM_MAX_BYTES, &eng->stats,
                      ts_us))
        return;
    cap_ssh_finish(e->ssh, &eng->sink, &eng->stats);
    free(e->ssh);
    e->ssh = NULL;
    e->app = APP_NONE;
    stream_free(&e->streams->dir[0]);
    stream_free(&e->streams->dir[1]);
}

/* The SSH identification string starts every SSH stream (RFC 4253 4.2),
 * whatever the port. */
static bool looks_like_ssh(const cap_packet *pkt)
{
    return pkt->payload_len >= 4 && memcmp(pkt->payload, "SSH-", 4) == 0;
}

/* Record the sequence number after a SYN from direction CDIR, in the
 * stream when it exists and in the entry until then. */
static void tcp_app_syn(flow_entry *e, unsigned cdir, uint32_t seq)
{
    if (e->streams != NULL) {
        e->streams->dir[cdir].next_seq = seq + 1;
        e->streams->dir[cdir].seq_known = true;
        return;
    }
    e->syn_next_seq[cdir] = seq + 1;
    e->syn_seq_known |= (uint8_t)(1u << cdir);
}

/* True if the client's stream start is known from its SYN and SEQ lies
 * after it, so bytes before this segment are still missing. */
static bool client_start_missing(const flow_entry *e, uint32_t seq)
{
    uint32_t expected;
    if (e->streams != NULL && e->streams->dir[0].seq_known)
        expected = e->streams->dir[0].next_seq;
    else if ((e->syn_seq_known & 1u) != 0)
        expected = e->syn_next_seq[0];
    else
        return false;
    return (int32_t)(seq - expected) > 0;
}

/*
 * Feed one TCP segment to the application stage. The first payload
 * decides the protocol. SSH: either side's first payload starts with
 * "SSH-". DNS: either port is 53. TLS: the client's first payload starts
 * with a handshake record (any port). HTTP: it looks like a request line.
 * A client segment that arrives before the start of the client's stream
 * (reordered, with the SYN seen) is held until the start arrives, which
 * then decides. The stream state is allocated when the first segment is
 * to be buffered. Returns FV_ERR_NOMEM only when the stream state could
 * not be allocated or a stream buffer could not grow.
 */
static int tcp_app_segment(cap_engine *eng, flow_entry *e, const cap_packet *pkt, bool fwd,
                           uint64_t ts_us)
{
    unsigned cdir = (fwd == e->client_is_src) ? 0 : 1;
    cap_stream *s;
    int ar;

    if ((pkt->tcp_flags & CAP_TCP_SYN) != 0) {
        /* Data in a SYN (TCP Fast Open) is not parsed: the stream the
         * parsers see starts after it. */
        tcp_app_syn(e, cdir, pkt->tcp_seq + (uint32_t)pkt->payload_len);
        return FV_OK;
    }
    if (pkt->payload_len == 0 || e->app == APP_NONE)
        return FV_OK;

    if (e->app == APP_UNDECIDED && cdir == 0 && client_start_missing(e, pkt->tcp_seq)) {
        if (e->streams == NULL && !streams_alloc(eng, e))
            return FV_ERR_NOMEM;
        s = &e->streams->dir[0];
        /* A start that was lost, not just late, never arrives. Once the
         * queue is full or the segment lies beyond what a stream keeps,
         * the flow gets no parser and its held segments are freed. */
        if (s->ooo_count == CAP_STREAM_OOO_SEGMENTS ||
            (uint32_t)(pkt->tcp_seq - s->next_seq) > CAP_STREAM_MAX_BYTES) {
            e->app = APP_NONE;
            return FV_OK;
        }
        ar = stream_append(eng, s, pkt->tcp_seq, pkt->payload, pkt->payload_len);
        return ar == APPEND_NOMEM ? FV_ERR_NOMEM : FV_OK;
    }
    if (e->app == APP_UNDECIDED) {
        if (looks_like_ssh(pkt)) {
            if (!ssh_start(e))
                return FV_ERR_NOMEM;
        } else if (e->rec.sport == PORT_DNS || e->rec.dport == PORT_DNS)
            e->app = APP_DNS_TCP;
        else if (cdir != 0)
            return FV_OK; /* server speaks first (banners): wait for the client */
        else if (pkt->payload[0] == TLS_HANDSHAKE_RECORD || looks_like_sslv2_hello(pkt))
            e->app = APP_TLS;
        else if (looks_like_http_request(pkt->payload, pkt->payload_len, pkt->dport))
            e->app = APP_HTTP;
        else
            e->app = APP_NONE;
        if (e->app == APP_NONE)
            return FV_OK;
    }

    if (e->app != APP_DNS_TCP && e->app != APP_TLS && e->app != APP_HTTP && e->app != APP_SSH && cdir != 0)
        return FV_OK;

    if (e->streams == NULL && !streams_alloc(eng, e))
        return FV_ERR_NOMEM;
    s = &e->streams->dir[cdir];

    if (e->app == APP_HTTP && cdir == 0 && s->http_waiting) {
        if (!looks_like_http_request(pkt->payload, pkt->payload_len, pkt->dport))
            return FV_OK;
        stream_clear(s);
        s->next_seq = pkt->tcp_seq;
        s->seq_known = true;
        s->http_waiting = false;
        if (e->http != NULL)
            cap_http_conn_client_resumed(e->http);
    }

    ar = stream_append(eng, s, pkt->tcp_seq, pkt->payload, pkt->payload_len);
    if (ar == APPEND_NOMEM)
        return FV_ERR_NOMEM;
    if (ar != APPEND_OK)
        return FV_OK;

    switch (e->app) {
    case APP_TLS:
        return tls_run(eng, e, cdir, ts_us);
    case APP_HTTP:
        return http_run(eng, e, cdir, ts_us);
    case APP_DNS_TCP:
        dns_tcp_run(eng, s, pkt, ts_us);
        break;
    case APP_SSH:
        ssh_run(eng, e, cdir, ts_us);
        break;
    default:
        break;
    }
    return FV_OK;
}

/* Run the application stage over one TCP segment, then free the stream
 * state of a flow that needs no more parsing. */
static int tcp_app(cap_engine *eng, flow_entry *e, const cap_packet *pkt, bool fwd,
                   uint64_t ts_us)
{
    int rc = tcp_app_segment(eng, e, pkt, fwd, ts_us);

    if (e->app == APP_NONE)
        streams_release(eng, e);
    return rc;
}

/* DHCP (67/68), NetBIOS name service (137) and NTP (123) carry one
 * message per datagram, so no stream state is kept. */
static void udp_extra_apps(cap_engine *eng, flow_entry *e, const cap_packet *pkt, uint64_t ts_us)
{
    bool dhcp_a = pkt->sport == PORT_DHCP_SERVER || pkt->sport == PORT_DHCP_CLIENT;
    bool dhcp_b = pkt->dport == PORT_DHCP_SERVER || pkt->dport == PORT_DHCP_CLIENT;

    if (dhcp_a && dhcp_b)
        cap_dhcp_handle(&eng->sink, &eng->stats, pkt, ts_us);
    else if (pkt->sport == PORT_NBNS || pkt->dport == PORT_NBNS)
        cap_nbns_handle(&eng->sink, &eng->stats, pkt, ts_us);
    else if ((pkt->sport == PORT_NTP || pkt->dport == PORT_NTP) && e->rec.ntp_version == 0 &&
             cap_ntp_peek(pkt->payload, pkt->payload_len, &e->rec.ntp_mode, &e->rec.ntp_version))
        eng->stats.ntp_packets++;
}

/* ---------------------------------------------------------------------- */
/* Per-packet path                                                        */
/* ---------------------------------------------------------------------- */

/* Ask the sink whether the host at IP, seen with MAC (or NULL), is
 * excluded. is_excluded_host wins over is_excluded when both are set. */
static bool host_excluded(const cap_engine *eng, const cap_ip *ip, const uint8_t *mac)
{
    if (eng->sink.is_excluded_host != NULL)
        return eng->sink.is_excluded_host(eng->sink.ctx, ip, mac);
    return eng->sink.is_excluded(eng->sink.ctx, ip);
}

/*
 * Ask the sink whether either address of the innermost IP header, or of
 * any IP header that encloses it in a tunnel, is excluded. The
 * outermost of those is what a flow record keeps as its tunnel
 * endpoints. Each header goes with the MACs of the Ethernet header that
 * directly carries it, if any: the frame's (or, in a Linux cooked
 * capture, the sender's) for the outermost, a tunneled frame's (VXLAN,
 * for one) for the others.
 */
static bool excluded(const cap_engine *eng, const cap_packet *pkt)
{
    if (eng->sink.is_excluded_host == NULL && eng->sink.is_excluded == NULL)
        return false;

    const uint8_t *src_mac = NULL, *dst_mac = NULL;
    if (pkt->tunnel_depth == 0 && pkt->has_mac) {
        src_mac = pkt->src_mac;
        dst_mac = pkt->dst_mac;
    } else if (pkt->tunnel_depth == 0 && pkt->has_sender_mac) {
        src_mac = pkt->sender_mac;
    } else if (pkt->tunnel_depth > 0 && pkt->has_inner_mac) {
        src_mac = pkt->inner_src_mac;
        dst_mac = pkt->inner_dst_mac;
    }
    if (host_excluded(eng, &pkt->src, src_mac) || host_excluded(eng, &pkt->dst, dst_mac))
        return true;

    for (unsigned i = 0; i < pkt->enclosing_count; i++) {
        const cap_enclosing *e = &pkt->enclosing[i];
        if (host_excluded(eng, &e->src, e->has_src_mac ? e->src_mac : NULL) ||
            host_excluded(eng, &e->dst, e->has_dst_mac ? e->dst_mac : NULL))
            return true;
    }
    return false;
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
    /* The first tunneled packet decides the flow's tunnel, stored in the
     * record's direction. */
    if (pkt->tunnel_type != FV_TUNNEL_NONE && e->rec.tunnel_type == FV_TUNNEL_NONE) {
        e->rec.tunnel_type = pkt->tunnel_type;
        e->rec.outer_src = fwd ? pkt->outer_src : pkt->outer_dst;
        e->rec.outer_dst = fwd ? pkt->outer_dst : pkt->outer_src;
    }
    return fwd;
}

/*
 * TCP state of one segment PKT in E, which went src->dst when *FWD:
 * turn the record when a SYN or SYN-ACK shows the client is dst (and
 * update *FWD), time the handshake, and classify the segment's sequence
 * range. The RTT is the client-side handshake time, SYN to the client's
 * ACK of the SYN-ACK, as Zeek and Suricata measure it at the capture point.
 */
static void tcp_track(flow_entry *e, const cap_packet *pkt, bool *fwd, uint64_t ts_us)
{
    uint16_t flags = pkt->tcp_flags;
    bool syn = (flags & CAP_TCP_SYN) != 0, ack = (flags & CAP_TCP_ACK) != 0;
    uint32_t seg_len;
    cap_seq_class cls;

    if (syn && e->rec.initiator != FV_INIT_SYN) {
        /* A SYN's sender or a SYN-ACK's receiver is the client. */
        if ((!ack && !*fwd) || (ack && *fwd)) {
            flow_swap(e);
            *fwd = !*fwd;
        }
        e->rec.initiator = FV_INIT_SYN;
    }

    if (syn && !ack && *fwd && e->syn_us == 0)
        e->syn_us = ts_us;
    else if (syn && ack && !*fwd && e->syn_us != 0 && !e->synack_seen)
        e->synack_seen = ts_us != 0; /* time 0 counts as unseen, as in syn_us */
    else if (!syn && ack && *fwd && e->synack_seen && e->rec.rtt_us == 0) {
        uint64_t rtt = ts_us >= e->syn_us ? ts_us - e->syn_us : 0;

        e->rec.rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    }

    /* A RST's sequence number need not lie in the window: do not classify it. */
    if ((flags & CAP_TCP_RST) != 0)
        return;
    seg_len = pkt->tcp_seg_len + (syn ? 1u : 0u) + ((flags & CAP_TCP_FIN) != 0 ? 1u : 0u);
    cls = cap_seq_track_segment(&e->seq[*fwd ? 0 : 1], pkt->tcp_seq, seg_len);
    if (cls == CAP_SEQ_RETRANS) {
        if (*fwd)
            e->rec.retrans_fwd++;
        else
            e->rec.retrans_rev++;
    } else if (cls == CAP_SEQ_OUT_OF_ORDER) {
        if (*fwd)
            e->rec.ooo_fwd++;
        else
            e->rec.ooo_rev++;
    }
}

/*
 * Attribute an ICMP error (PKT, counted in its own flow E) to the flow its
 * quoted header belongs to: that flow's icmp_errors grows and E is marked
 * icmp_quoted. The quoted packet went from quote_src to quote_dst.
 */
static void icmp_attribute(cap_engine *eng, flow_entry *e, const cap_packet *pkt)
{
    cap_packet quoted;
    cap_flow_key key;
    flow_entry *target;

    if (!pkt->has_quote) {
        eng->stats.icmp_errors_unmatched++;
        return;
    }
    memset(&quoted, 0, sizeof quoted);
    quoted.src = pkt->quote_src;
    quoted.dst = pkt->quote_dst;
    quoted.proto = pkt->quote_proto;
    quoted.has_ports = pkt->quote_has_ports;
    quoted.sport = pkt->quote_sport;
    quoted.dport = pkt->quote_dport;
    (void)key_make(&quoted, &key);
    target = flow_find(eng, &key);
    if (target == NULL || target == e) {
        eng->stats.icmp_errors_unmatched++;
        return;
    }
    target->rec.icmp_errors++;
    e->rec.icmp_quoted = true;
    eng->stats.icmp_errors_matched++;
}

/* Counters that grow when a parser recognises a message, read before and
 * after the application stage to learn which application a flow carries. */
typedef struct app_marks {
    uint64_t dns, tls, http;
} app_marks;

static app_marks app_marks_take(const cap_engine *eng)
{
    app_marks m = {eng->stats.dns_messages, eng->stats.tls_hellos, eng->stats.http_requests};

    return m;
}

static void app_marks_apply(flow_entry *e, const app_marks *before, const app_marks *after)
{
    uint16_t lo = e->rec.sport < e->rec.dport ? e->rec.sport : e->rec.dport;

    if (after->dns != before->dns) {
        if (e->rec.sport == PORT_MDNS || e->rec.dport == PORT_MDNS)
            cap_flow_set_app(e, FV_APP_MDNS);
        else if (e->rec.sport == PORT_LLMNR || e->rec.dport == PORT_LLMNR)
            cap_flow_set_app(e, FV_APP_LLMNR);
        else if (lo == PORT_DNS || e->rec.sport == PORT_DNS || e->rec.dport == PORT_DNS)
            cap_flow_set_app(e, FV_APP_DNS);
    }
    if (after->tls != before->tls)
        cap_flow_set_app(e, FV_APP_TLS);
    if (after->http != before->http)
        cap_flow_set_app(e, FV_APP_HTTP);
}

int cap_engine_packet(cap_engine *engine, int linktype, uint64_t ts_us, const uint8_t *data,
                      uint32_t caplen, uint32_t wirelen)
{
    cap_packet pkt;
    cap_decode_status st;
    cap_flow_key key;
    flow_entry *e;
    bool from_lo, fwd;
    cap_frag_outcome frag;
    app_marks marks_before, marks_after;
    int rc = FV_OK;

    if (engine == NULL || (data == NULL && caplen > 0))
        return FV_ERR_INVALID;
    /* A damaged file can carry a time that no RFC 3339 text can show. */
    if (ts_us > CAP_TS_MAX_US)
        ts_us = CAP_TS_MAX_US;

    /* Decode and apply exclusion before anything is counted or kept. */
    engine->packet_ts_us = ts_us;
    st = cap_decode_frame(linktype, data, caplen, &pkt);
    if (pkt.have_addrs && excluded(engine, &pkt))
        return FV_OK;

    if (!engine->cfg.expire_by_caller && ts_us >= engine->next_expire_us) {
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

    if (pkt.tunnel_too_deep)
        engine->stats.tunnel_too_deep++;

    memset(&frag, 0, sizeof frag);
    if (pkt.is_fragment) {
        engine->stats.fragments++;
        cap_frag_add(engine->reasm, &pkt, ts_us, &frag);
        if (frag.defer)
            return FV_OK; /* counted when its first fragment arrives or its datagram ends */
        if (frag.have_ports) {
            pkt.has_ports = true;
            pkt.sport = frag.sport;
            pkt.dport = frag.dport;
        }
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
    flow_account_bulk(e, fwd, frag.released_pkts, frag.released_bytes, frag.released_first_us,
                      ts_us);
    /* Move E to the tail of its LRU list. In a burst of one flow it is
     * there already, so the unlink, which touches two other entries, is
     * skipped. */
    if (engine->lru[e->cls].tail != e) {
        lru_unlink(&engine->lru[e->cls], e);
        lru_append(&engine->lru[e->cls], e);
    }
    if (pkt.proto == 6 && pkt.has_ports && !pkt.is_fragment)
        tcp_track(e, &pkt, &fwd, ts_us);
    if (pkt.icmp_error)
        icmp_attribute(engine, e, &pkt);

    /* A UDP datagram rebuilt from fragments goes through the application
     * stage like an unfragmented one; its bytes are wiped at the end. */
    if (frag.datagram != NULL && pkt.proto == 17 && frag.datagram_len >= 8) {
        size_t udp_len = cap_be16(frag.datagram + 4);

        pkt.is_fragment = false;
        pkt.payload = frag.datagram + 8;
        pkt.payload_len = frag.datagram_len - 8;
        if (udp_len >= 8 && udp_len - 8 < pkt.payload_len)
            pkt.payload_len = udp_len - 8;
    }
    marks_before = app_marks_take(engine);

    /* Application metadata, only from unfragmented or reassembled datagrams.
     * NOTE: a TCP segment split into IP fragments is counted but not parsed. */
    if (CAP_PARSE_APPS && pkt.proto == 17 && pkt.has_ports && !pkt.is_fragment &&
        pkt.payload_len > 0 && (is_dns_port(pkt.sport) || is_dns_port(pkt.dport)))
        dns_parse_one(engine, pkt.payload, pkt.payload_len, &pkt, 17, ts_us);
    if (CAP_PARSE_APPS && pkt.proto == 17 && pkt.has_ports && !pkt.is_fragment &&
        pkt.payload_len > 0 && !is_dns_port(pkt.sport) && !is_dns_port(pkt.dport)) {
        rc = dtls_run(engine, e, &pkt, fwd, ts_us);
        if (rc == FV_OK)
            rc = quic_run(engine, e, &pkt, fwd, ts_us);
    }
    if (CAP_PARSE_APPS && pkt.proto == 6 && pkt.has_ports && !pkt.is_fragment)
        rc = tcp_app(engine, e, &pkt, fwd, ts_us);
    if (CAP_PARSE_APPS && pkt.proto == 17 && pkt.has_ports && !pkt.is_fragment &&
        pkt.payload_len > 0)
        udp_extra_apps(engine, e, &pkt, ts_us);
    marks_after = app_marks_take(engine);
    app_marks_apply(e, &marks_before, &marks_after);
    cap_frag_done(engine->reasm);
    flow_recount(engine, e);

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

    /* Last, because it may evict E itself when E alone passes the bound. */
    memory_make_room(engine, 0);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Expiry and lifecycle                                                   */
/* ---------------------------------------------------------------------- */

uint64_t cap_engine_packet_time_us(const cap_engine *engine)
{
    return engine != NULL ? engine->packet_ts_us : 0;
}

/*
 * Emit flows past their timeouts at NOW_US. Each class list is ordered by
 * last packet time, so the walk stops at the first flow that is not idle.
 * The active list is ordered by the start of the current record, so its
 * walk stops the same way. Cost is proportional to the number of flows
 * expired, not to the table size. An active-timeout record restarts the
 * counters and keeps the entry (and its parser state).
 */
void cap_engine_expire(cap_engine *engine, uint64_t now_us)
{
    int c;
    flow_entry *e;

    if (engine == NULL)
        return;

    cap_frag_expire(engine->reasm, now_us);
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
        e->rec.retrans_fwd = e->rec.retrans_rev = 0;
        e->rec.ooo_fwd = e->rec.ooo_rev = 0;
        e->rec.icmp_errors = 0;
        e->rec.continued = true;
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
    /* Held fragments join their flows before the flows are emitted. */
    cap_frag_flush(engine->reasm);
    for (c = 0; c < CLASS_COUNT; c++) {
        while ((e = engine->lru[c].head) != NULL)
            flow_end(engine, e, end_reason_of(e, FV_END_FLUSH));
    }
}

static void muted_flow(void *ctx, const cap_flow *flow)
{
    (void)ctx;
    (void)flow;
}

static void muted_dns(void *ctx, const cap_dns *dns)
{
    (void)ctx;
    (void)dns;
}

static void muted_tls(void *ctx, const cap_tls *tls)
{
    (void)ctx;
    (void)tls;
}

static void muted_http(void *ctx, const cap_http *http)
{
    (void)ctx;
    (void)http;
}

static void muted_dhcp(void *ctx, const cap_dhcp *dhcp)
{
    (void)ctx;
    (void)dhcp;
}

static void muted_ssh(void *ctx, const cap_ssh *ssh)
{
    (void)ctx;
    (void)ssh;
}

void cap_engine_discard(cap_engine *engine)
{
    if (engine == NULL)
        return;
    /* Ending each flow also finishes its parsers, which may emit pending
     * records: every record callback goes to a no-op first. */
    engine->sink.on_flow = muted_flow;
    engine->sink.on_dns = muted_dns;
    engine->sink.on_tls = muted_tls;
    engine->sink.on_http = muted_http;
    engine->sink.on_dhcp = muted_dhcp;
    engine->sink.on_ssh = muted_ssh;
    cap_engine_flush(engine);
}

static size_t bucket_count_for(uint64_t max_flows)
{
    size_t n = CAP_MIN_BUCKETS;

    while (n < max_flows && n < CAP_MAX_BUCKETS)
        n *= 2;
    return n;
}

/*
 * Write the zeroed bucket array once, so each page is the process's own
 * from the start. Otherwise a lookup maps the kernel's shared zero page,
 * and the first insert into that page takes a second, copy-on-write
 * fault. In a process with worker threads that fault flushes the TLB of
 * every other CPU by interrupt.
 */
static void buckets_prefault(flow_entry **buckets, size_t nbuckets)
{
    /* sodium_memzero, because a compiler drops a memset after calloc. */
    sodium_memzero((void *)buckets, nbuckets * sizeof *buckets);  // NOLINT(bugprone-sizeof-expression)
}

/* Buckets for the entries that can exist under CFG: max_flows, or fewer
 * when the memory bound is reached first. */
static size_t bucket_count_for_config(const cap_config *cfg)
{
    uint64_t fit = cfg->max_memory_bytes / ALLOC_COST(sizeof(flow_entry));

    return bucket_count_for(fit < cfg->max_flows ? fit : cfg->max_flows);
}

/* Share of the memory bound the fragment reassembly buffers may take. */
#define CAP_FRAG_MEMORY_SHARE 16u

/* Give the fragment table its share of the engine's memory bound. */
static void frag_limit_apply(cap_engine *eng)
{
    /* With the default 256 MiB bound this is 16 MiB, the table's own
     * maximum of 256 datagrams of 64 KiB. */
    uint64_t frag_max = eng->cfg.max_memory_bytes / CAP_FRAG_MEMORY_SHARE;

    cap_frag_set_max_bytes(eng->reasm, frag_max > SIZE_MAX ? SIZE_MAX : (size_t)frag_max);
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
    if (eng->cfg.max_memory_bytes == 0)
        eng->cfg.max_memory_bytes = CAP_MEMORY_DEFAULT_BYTES;
    if (eng->cfg.max_memory_bytes < CAP_MEMORY_MIN_BYTES ||
        eng->cfg.max_memory_bytes > CAP_MEMORY_MAX_BYTES) {
        free(eng);
        return FV_ERR_INVALID;
    }
    eng->idle_us[CLASS_TCP] = eng->cfg.tcp_idle_s * US_PER_S;
    eng->idle_us[CLASS_UDP] = eng->cfg.udp_idle_s * US_PER_S;
    eng->idle_us[CLASS_OTHER] = eng->cfg.other_idle_s * US_PER_S;
    eng->idle_us[CLASS_CLOSING] = CAP_CLOSE_LINGER_US;
    eng->active_us = eng->cfg.active_s * US_PER_S;

    nbuckets = bucket_count_for_config(&eng->cfg);
    /* The buckets are an array of chain heads (flow_entry pointers). */
    eng->buckets = calloc(nbuckets, sizeof *eng->buckets);  // NOLINT(bugprone-sizeof-expression)
    if (eng->buckets == NULL) {
        free(eng);
        return FV_ERR_NOMEM;
    }
    buckets_prefault(eng->buckets, nbuckets);
    eng->bucket_mask = nbuckets - 1;
    randombytes_buf(eng->hash_seed, sizeof eng->hash_seed);
    if (cap_frag_create(&eng->stats, frag_orphan, eng, &eng->reasm) != FV_OK) {
        free(eng->buckets);
        free(eng);
        return FV_ERR_NOMEM;
    }
    frag_limit_apply(eng);
    eng->fixed_bytes = ALLOC_COST(sizeof *eng) + ALLOC_COST(nbuckets * sizeof(flow_entry *));

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
    entries_free_spares(eng);
    cap_frag_destroy(&eng->reasm);
    free(eng->buckets);
    sodium_memzero(eng->hash_seed, sizeof eng->hash_seed);
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

int cap_engine_set_memory_limit(cap_engine *engine, uint64_t max_bytes)
{
    cap_config cfg;
    flow_entry **buckets;
    size_t nbuckets, i;

    if (engine == NULL || max_bytes < CAP_MEMORY_MIN_BYTES || max_bytes > CAP_MEMORY_MAX_BYTES)
        return FV_ERR_INVALID;
    cfg = engine->cfg;
    cfg.max_memory_bytes = max_bytes;
    nbuckets = bucket_count_for_config(&cfg);

    /* Rehash every entry into buckets sized for the new bound. */
    buckets = calloc(nbuckets, sizeof *buckets);  // NOLINT(bugprone-sizeof-expression)
    if (buckets == NULL)
        return FV_ERR_NOMEM;
    buckets_prefault(buckets, nbuckets);
    for (i = 0; i <= engine->bucket_mask; i++) {
        flow_entry *e = engine->buckets[i];

        while (e != NULL) {
            flow_entry *next = e->hash_next;

            chain_insert(&buckets[key_hash(engine, &e->key) & (nbuckets - 1)], e);
            e = next;
        }
    }
    free(engine->buckets);
    engine->buckets = buckets;
    engine->bucket_mask = nbuckets - 1;
    engine->cfg = cfg;
    engine->fixed_bytes = ALLOC_COST(sizeof *engine) + ALLOC_COST(nbuckets * sizeof(flow_entry *));
    frag_limit_apply(engine);
    memory_make_room(engine, 0);
    return FV_OK;
}

void cap_engine_memory(const cap_engine *engine, cap_memory *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (engine == NULL)
        return;
    out->limit_bytes = engine->cfg.max_memory_bytes;
    out->flow_bytes = engine->entry_bytes;
    out->stream_bytes = engine->extra_bytes;
    out->frag_bytes = cap_frag_bytes(engine->reasm);
    out->used_bytes = memory_used(engine);
    out->flows = engine->flow_count;
    out->stream_states = engine->stream_states;
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
