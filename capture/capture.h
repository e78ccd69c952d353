/*
 * capture.h: turn packets into flow records and protocol metadata.
 *
 * The capture engine reads frames from libpcap (files or a live
 * interface), decodes link, network and transport headers, tracks
 * bidirectional flows, and runs the DNS, TLS and HTTP parsers over the
 * first payload bytes of each flow. It emits events through a cap_sink.
 * Payload is read in memory only; no payload byte leaves this module.
 *
 * Caveats
 * - Events carry RAW identifiers (addresses, MACs). The sink must pass
 *   them through anonymize/ before storing, logging or exporting them.
 *   Capture itself never logs an address.
 * - A cap_engine is single-threaded: call it from one thread only.
 * - Event pointers passed to the sink are valid only during the call.
 * - The sink's is_excluded_host hook (or, when it is NULL, is_excluded)
 *   is called for every IP packet before any metadata is extracted. A
 *   packet with an excluded source or destination is dropped and counted
 *   nowhere.
 * - Flow expiry is driven by packet timestamps (files) or by
 *   cap_engine_expire() with the wall clock (live capture).
 */
#ifndef FV_CAPTURE_H
#define FV_CAPTURE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* An IP address as seen on the wire. family is 4 or 6; IPv4 uses addr[0..3]. */
typedef struct cap_ip {
    uint8_t family;
    uint8_t addr[16];       /* network byte order */
} cap_ip;

/* A finished (or, for FV_END_ACTIVE, continuing) bidirectional flow. The
 * fields mean what fv_flow_record's fields mean; addresses and MACs are raw. */
typedef struct cap_flow {
    uint64_t first_us, last_us;
    cap_ip src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    uint8_t end_reason;             /* fv_flow_end */
    uint8_t icmp_type, icmp_code;
    uint16_t tcp_flags_fwd, tcp_flags_rev;
    uint16_t vlan;
    bool has_mac;
    uint8_t src_mac[6], dst_mac[6]; /* Ethernet source of each direction's first frame */
    uint64_t pkts_fwd, pkts_rev;
    uint64_t bytes_fwd, bytes_rev;  /* IP bytes */
    uint8_t ntp_mode, ntp_version;  /* first NTP packet (UDP 123), 0 if none */
    uint8_t app;                    /* fv_app */
    uint8_t initiator;              /* fv_initiator */
    bool continued;                 /* not the first record of a flow split by the active timeout */
    bool icmp_quoted;               /* ICMP error flow whose quote matched an open flow */
    uint32_t rtt_us;                /* TCP SYN to the ACK of the SYN-ACK, 0 if unknown */
    uint32_t retrans_fwd, retrans_rev;
    uint32_t ooo_fwd, ooo_rev;
    uint32_t icmp_errors;           /* ICMP errors quoting this flow */
    uint8_t tunnel_type;            /* fv_tunnel of the first tunneled packet */
    cap_ip outer_src, outer_dst;    /* that tunnel's outermost IP header */
} cap_flow;

/*
 * One DNS message. qname is the first question's name in presentation
 * form: labels joined by '.', no trailing dot, "." for the root, and any
 * byte outside 0x21..0x7e (and '.' or '\' inside a label) written as \DDD.
 */
typedef struct cap_dns {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    uint8_t transport;          /* 6 or 17 */
    bool is_response;
    uint8_t rcode;
    uint16_t txid, qtype, qclass, answer_count;
    char qname[FV_NAME_MAX];
    uint8_t protocol;           /* fv_dns_protocol, from the DNS port */
    uint16_t qdcount;           /* QDCOUNT of the header */
    uint8_t question_count;     /* entries used in questions[]; [0] repeats qname */
    fv_dns_question questions[FV_DNS_QUESTIONS_MAX];
    uint8_t a_count, aaaa_count, cname_count;
    uint8_t a[FV_DNS_ADDRS_MAX][4];         /* A answers, network order */
    uint8_t aaaa[FV_DNS_ADDRS_MAX][16];     /* AAAA answers, network order */
    char cnames[FV_DNS_CNAMES_MAX][FV_NAME_MAX];   /* CNAME targets, presentation form */
} cap_dns;

/* One TLS, DTLS or QUIC connection's hellos (fields as fv_tls_record). */
typedef struct cap_tls {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    uint16_t version;
    char sni[FV_NAME_MAX];
    uint8_t transport;          /* fv_tls_transport */
    uint32_t quic_version;      /* 0 if not QUIC */
    uint8_t alpn_count;
    char alpn[FV_TLS_ALPN_MAX][FV_TLS_ALPN_LEN];
    uint8_t supported_versions_count;
    uint16_t supported_versions[FV_TLS_VERSIONS_MAX];
    uint16_t cipher_count, extension_count;
    char ja3[33], ja4[40];
    uint16_t server_version;    /* 0 if no ServerHello was seen */
    uint16_t server_cipher;
    char server_alpn[FV_TLS_ALPN_LEN];
    char ja3s[33];
} cap_tls;

/*
 * One HTTP/1.x request, emitted when the status line of its response is
 * parsed or, with status 0, when the flow ends first.
 */
typedef struct cap_http {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    char method[16];
    char host[FV_NAME_MAX];
    uint32_t uri_length;        /* bytes of the request target, never the target */
    uint16_t status;            /* paired response's status code, 0 if none was seen */
    char user_agent[FV_NAME_MAX];   /* User-Agent value, escaped like host */
} cap_http;

/*
 * One BOOTP/DHCPv4 message (UDP 67/68). client is the port-68 side.
 * ciaddr and yiaddr are the header fields (0.0.0.0 when unset);
 * requested_ip is option 50 when has_requested_ip. hostname (option 12)
 * and vendor_class (option 60) are printable ASCII, other bytes written
 * as '?', "" when absent. chaddr is the client MAC when has_chaddr
 * (htype 1, hlen 6).
 */
typedef struct cap_dhcp {
    uint64_t ts_us;
    cap_ip client, server;
    uint16_t client_port, server_port;
    uint8_t op;                 /* 1 request, 2 reply */
    uint8_t msg_type;           /* option 53, 0 if absent */
    bool has_chaddr;
    uint8_t chaddr[6];
    uint8_t ciaddr[4], yiaddr[4];
    bool has_requested_ip;
    uint8_t requested_ip[4];
    char hostname[FV_DHCP_HOSTNAME_MAX];
    char vendor_class[FV_DHCP_VENDOR_MAX];
} cap_dhcp;

/*
 * One SSH connection: identification strings without CR LF (printable
 * ASCII, "" when that side was not seen) and the HASSH / HASSH-server
 * MD5 digests as 32 lowercase hex digits ("" when that side's KEXINIT was
 * not seen in the first bytes of its direction).
 */
typedef struct cap_ssh {
    uint64_t ts_us;             /* first banner seen */
    cap_ip client, server;
    uint16_t client_port, server_port;
    char client_banner[FV_SSH_BANNER_MAX];
    char server_banner[FV_SSH_BANNER_MAX];
    char hassh[FV_HASSH_TEXT];
    char hassh_server[FV_HASSH_TEXT];
} cap_ssh;

/* Where the engine sends what it extracts. Any hook may be NULL. */
typedef struct cap_sink {
    void *ctx;
    /* Return true to drop the packet before any metadata is extracted. */
    bool (*is_excluded)(void *ctx, const cap_ip *addr);
    void (*on_flow)(void *ctx, const cap_flow *flow);
    void (*on_dns)(void *ctx, const cap_dns *dns);
    void (*on_tls)(void *ctx, const cap_tls *tls);
    void (*on_http)(void *ctx, const cap_http *http);
    void (*on_dhcp)(void *ctx, const cap_dhcp *dhcp);
    void (*on_ssh)(void *ctx, const cap_ssh *ssh);
    /* Like is_excluded, with the frame's MAC of that address (6 bytes, or
     * NULL when the link layer has none or the address is inside a
     * tunnel). When set, it is called instead of is_excluded. */
    bool (*is_excluded_host)(void *ctx, const cap_ip *addr, const uint8_t *mac);
} cap_sink;

/* Engine settings. Zero fields take the documented defaults. */
typedef struct cap_config {
    uint32_t tcp_idle_s;        /* default 300 */
    uint32_t udp_idle_s;        /* default 60 */
    uint32_t other_idle_s;      /* ICMP and others, default 30 */
    uint32_t active_s;          /* default 1800: long flows are split */
    uint32_t max_flows;         /* default 1,000,000: oldest evicted beyond */
    /* When true, idle and active timeouts are applied only by
     * cap_engine_expire, never by packet timestamps. A dispatcher that
     * spreads one capture over several engines uses it to run every
     * engine's expiry at the times one engine would run it. */
    bool expire_by_caller;
    /* Bytes the engine may hold for flow state: the hash buckets, the
     * flow entries, the TCP stream buffers and parser state allocated
     * for some flows, and the IP fragment reassembly buffers. Beyond it
     * the least recently seen flows are evicted (counted in
     * flows_evicted and flows_evicted_memory). 0 takes
     * CAP_MEMORY_DEFAULT_BYTES; cap_engine_create rejects values
     * outside CAP_MEMORY_MIN_BYTES .. CAP_MEMORY_MAX_BYTES. Each
     * allocation counts with an estimated CAP_MEMORY_ALLOC_OVERHEAD
     * bytes of allocator overhead. */
    uint64_t max_memory_bytes;
} cap_config;

/* Default flow-state memory bound, 256 MiB: about 650,000 flows that
 * carry no payload (400 bytes each on x86-64). */
#define CAP_MEMORY_DEFAULT_BYTES (256ull * 1024 * 1024)
/* Smallest accepted bound: the fixed tables of a small engine and a few
 * thousand flows. */
#define CAP_MEMORY_MIN_BYTES (1ull * 1024 * 1024)
/* Largest accepted bound (1 TiB), so sums stay far from overflow. */
#define CAP_MEMORY_MAX_BYTES (1ull << 40)
/* Bytes added to each allocation when it is counted against the bound:
 * glibc's malloc keeps an 8-byte header and rounds chunks to 16 bytes. */
#define CAP_MEMORY_ALLOC_OVERHEAD 16u

/* Counters. Every reason a packet is not fully decoded has its own field. */
typedef struct cap_stats {
    uint64_t packets;           /* frames handed to the engine */
    uint64_t bytes;             /* their wire length */
    uint64_t ip_packets;
    uint64_t non_ip;            /* ARP, LLDP and other non-IP frames */
    uint64_t excluded;          /* NOTE: always 0 on purpose; excluded packets are not counted */
    uint64_t truncated;         /* header cut short by the snap length or file end */
    uint64_t bad_header;        /* invalid IP header (version, length fields) */
    uint64_t unsupported_link;  /* frames on a link type the decoder lacks */
    uint64_t fragments;         /* IP fragments (non-first fragments carry no ports) */
    uint64_t flows_created;
    uint64_t flows_emitted;
    uint64_t flows_evicted;
    uint64_t flows_active;      /* currently in the table */
    uint64_t dns_messages, dns_malformed;
    uint64_t tls_hellos, tls_malformed;
    uint64_t http_requests, http_malformed;
    uint64_t pcap_received, pcap_dropped, pcap_if_dropped;  /* live capture only */
    uint64_t dhcp_messages;
    uint64_t dhcp_malformed;        /* BOOTP header cut short or bad magic cookie */
    uint64_t dhcp_bad_options;      /* option walk stopped at a length past the end */
    uint64_t ssh_connections;       /* ssh records emitted */
    uint64_t ssh_bad_banner;        /* "SSH-" line without CR LF in 255 bytes */
    uint64_t ssh_bad_kexinit;       /* KEXINIT packet malformed */
    uint64_t ntp_packets;           /* NTP headers read (the first of each flow) */
    uint64_t nbns_messages, nbns_malformed;
    uint64_t frag_reassembled;      /* IP datagrams rebuilt from fragments */
    uint64_t frag_evicted;          /* incomplete datagrams dropped for a full table */
    uint64_t frag_timeouts;         /* incomplete datagrams dropped after the reassembly timeout */
    uint64_t frag_invalid;          /* fragments past 64 KiB, overlapping or past a declared end */
    uint64_t frag_too_many;         /* fragments beyond the per-datagram limit */
    uint64_t tcp_ooo_buffered;      /* out-of-order segments held for the protocol parsers */
    uint64_t tcp_ooo_dropped;       /* out-of-order segments not held: queue or buffer full */
    uint64_t icmp_errors_matched;   /* ICMP errors whose quoted header matched an open flow */
    uint64_t icmp_errors_unmatched; /* ICMP errors quoting no open flow, or an unreadable quote */
    uint64_t tunnel_too_deep;       /* tunnels nested past the decoder's depth limit */
    /* DNS messages rejected, and answer sections cut short, by reason
     * (cap_dns_error); each message counts once, under its first fault. */
    uint64_t dns_truncated;         /* ends inside a header, name or record */
    uint64_t dns_bad_label_type;    /* label type 0x40 or 0x80 */
    uint64_t dns_bad_pointer;       /* compression pointer not backwards, or over 64 jumps */
    uint64_t dns_name_too_long;     /* name over 255 wire bytes */
    uint64_t dns_bad_rdata;         /* A/AAAA/CNAME RDLENGTH does not fit the type */
    uint64_t dns_answers_incomplete; /* messages whose answer section stopped early */
    uint64_t http_responses;        /* status lines paired with a request */
    uint64_t http_unpaired;         /* requests emitted without a response (status 0) */
    /* Live capture with worker threads (--workers): flows and metadata
     * records dropped because the queue from a worker to the writer
     * thread was full. Reading files never drops (the reader waits). */
    uint64_t queue_dropped_records;
    /* Flows evicted because the engine reached max_memory_bytes (also
     * counted in flows_evicted). */
    uint64_t flows_evicted_memory;
} cap_stats;

typedef struct cap_engine cap_engine;

/*
 * Create an engine. CONFIG may be NULL for defaults; SINK is copied.
 * Return FV_OK, FV_ERR_NOMEM or FV_ERR_INVALID.
 */
FV_NODISCARD int cap_engine_create(const cap_config *config, const cap_sink *sink,
                                   cap_engine **out);

/* Emit every open flow with FV_END_FLUSH, then free the engine. Accepts
 * NULL and sets *engine to NULL. */
void cap_engine_destroy(cap_engine **engine);

/* The latest packet time the engine takes, 9999-12-31T23:59:59.999999Z
 * in microseconds: later times, from damaged files, are set to it. */
#define CAP_TS_MAX_US UINT64_C(253402300799999999)

/*
 * Process one frame of libpcap link type LINKTYPE (a DLT_* value).
 * CAPLEN bytes are present at DATA; WIRELEN is the original length.
 * Malformed frames are counted, never fatal: the return is FV_OK unless
 * the sink or memory failed.
 */
int cap_engine_packet(cap_engine *engine, int linktype, uint64_t ts_us,
                      const uint8_t *data, uint32_t caplen, uint32_t wirelen);

/* Timestamp of the frame cap_engine_packet is processing (the last one
 * after it returns), 0 before the first. Exclusion hooks use it as the
 * traffic time of the packet they are asked about. */
uint64_t cap_engine_packet_time_us(const cap_engine *engine);

/* Emit flows idle or active past their timeouts at NOW_US. */
void cap_engine_expire(cap_engine *engine, uint64_t now_us);

/* Emit every open flow with FV_END_FLUSH and empty the table. */
void cap_engine_flush(cap_engine *engine);

/*
 * Empty the table without emitting anything: open flows, held fragments
 * and pending parser records are dropped (the counters still count what
 * was read). The engine stays muted afterwards, so destroy it next. An
 * ingest stopped by a signal uses it: its resume reads the files again and
 * stores these flows whole.
 */
void cap_engine_discard(cap_engine *engine);

/*
 * Names of the cap_stats fields in declaration order ("packets",
 * "dns_malformed", ...), for exporting the counters. cap_stats consists
 * of exactly *COUNT uint64_t fields, so it can be read as an array of
 * that length. The table is static and constant.
 */
const char *const *cap_stats_names(size_t *count);

/* Copy the counters into *OUT. */
void cap_engine_stats(const cap_engine *engine, cap_stats *out);

/* Memory the engine holds for flow state at one moment, in bytes as
 * counted against cap_config.max_memory_bytes. */
typedef struct cap_memory {
    uint64_t limit_bytes;       /* the configured bound */
    uint64_t used_bytes;        /* the three below, the engine and its hash buckets */
    uint64_t flow_bytes;        /* flow entries */
    uint64_t stream_bytes;      /* TCP stream state, buffers and parser state */
    uint64_t frag_bytes;        /* fragment reassembly table and buffers */
    uint64_t flows;             /* entries in the table */
    uint64_t stream_states;     /* flows that hold TCP stream state */
} cap_memory;

/* Fill *OUT with ENGINE's current memory use (zeros for NULL). */
void cap_engine_memory(const cap_engine *engine, cap_memory *out);

/*
 * Change ENGINE's memory bound (cap_config.max_memory_bytes) to
 * MAX_BYTES, resizing the hash buckets for it and evicting the least
 * recently seen flows at once when the engine uses more. Returns FV_OK,
 * FV_ERR_INVALID when MAX_BYTES is outside CAP_MEMORY_MIN_BYTES ..
 * CAP_MEMORY_MAX_BYTES, or FV_ERR_NOMEM (the old bound then stays).
 */
FV_NODISCARD int cap_engine_set_memory_limit(cap_engine *engine, uint64_t max_bytes);

/*
 * Read a pcap or pcapng file through libpcap and feed every frame to the
 * engine (open flows stay open; call cap_engine_flush at the end of
 * input). BPF, if not NULL, is applied as a filter. A pcapng file whose
 * interfaces differ in link type or snap length, or that libpcap cannot
 * open, is read by capture's own pcapng reader, each frame with its own
 * interface's link type; BPF is then compiled for each link type of the
 * file, and FV_ERR_INVALID is returned before any frame is processed if it
 * does not compile for one of them. STOP, if not NULL, is polled between
 * packets; a stop returns FV_OK.
 * On failure return FV_ERR_CAPTURE/FV_ERR_TRUNCATED/FV_ERR_IO/FV_ERR_INVALID
 * and write a message naming the file and the fix into ERR (never an
 * address). A file cut short mid-record returns FV_ERR_TRUNCATED after
 * processing every complete frame.
 */
int cap_read_file(cap_engine *engine, const char *path, const char *bpf,
                  volatile sig_atomic_t *stop, char *err, size_t err_len);

/*
 * Capture live from IFACE until *STOP becomes non-zero, then return
 * (without flushing). BPF as above. Calls cap_engine_expire about once a
 * second and TICK (if not NULL) after it with the current time so the
 * caller can commit and run periodic work. Copies libpcap's drop
 * counters into the engine's stats before each TICK and on return.
 */
int cap_live_run(cap_engine *engine, const char *iface, const char *bpf,
                 volatile sig_atomic_t *stop,
                 void (*tick)(void *ctx, uint64_t now_us), void *tick_ctx,
                 char *err, size_t err_len);

/* Arguments of cap_live_run_opts. Fields added later go at the end. */
typedef struct cap_live_options {
    const char *iface;
    const char *bpf;                    /* may be NULL */
    volatile sig_atomic_t *stop;        /* may be NULL */
    void (*tick)(void *ctx, uint64_t now_us);   /* may be NULL */
    void *tick_ctx;
    /* Called once, after pcap_activate and the filter succeeded and
     * before the first packet is read (to drop privileges). Returns
     * FV_OK, or an error code with a message in ERR that ends the run
     * before any packet is processed. May be NULL. */
    int (*after_open)(void *ctx, char *err, size_t err_len);
    void *after_open_ctx;
    /* Linux PACKET_FANOUT group to join (1..65535), 0 for none. The
     * handles of one group share the interface's packets by the kernel's
     * symmetric flow hash (PACKET_FANOUT_HASH with
     * PACKET_FANOUT_FLAG_DEFRAG), so both directions of a flow reach the
     * same handle. Joined after the filter, before after_open. */
    uint16_t fanout_group;
    /* Capture on IFACES[0..N_IFACES-1] at once, one libpcap handle each,
     * polled together and fed to the one engine; N_IFACES 0 captures on
     * IFACE alone. At most CAP_LIVE_MAX_IFACES. With a fanout group,
     * interface i joins group FANOUT_GROUP + i, because a group is bound
     * to one device. Every interface is open before after_open runs. */
    const char *const *ifaces;
    size_t n_ifaces;
    /* Bytes kept of each frame, CAP_LIVE_SNAPLEN_MIN..MAX; 0 takes
     * CAP_LIVE_SNAPLEN_DEFAULT. */
    uint32_t snaplen;
    /* Kernel ring size of each handle in bytes; 0 takes
     * CAP_LIVE_BUFFER_DEFAULT. */
    uint64_t buffer_bytes;
    /* Called with each interface's cumulative pcap_stats counters when
     * they are read: about once a second before TICK, and once on
     * return. INDEX is the position in IFACES (0 with IFACE alone). The
     * engine's pcap_* counters hold the sums. May be NULL. */
    void (*iface_stats)(void *ctx, size_t index, const char *iface, uint64_t received,
                        uint64_t dropped, uint64_t if_dropped);
    void *iface_stats_ctx;
} cap_live_options;

/* Interfaces one capture run may open. */
#define CAP_LIVE_MAX_IFACES 16
/* Default snap length in bytes. 65535 keeps every byte of a full IPv4
 * datagram behind any link header, so TCP segments merged by GRO or LRO
 * and jumbo frames reach the stream reassembly whole. TPACKET_V3 stores
 * only the captured bytes of each frame in the ring, so a large snap
 * length costs no ring space for small packets. */
#define CAP_LIVE_SNAPLEN_DEFAULT 65535u
/* Smallest accepted snap length: Ethernet, two VLAN tags, an IPv6
 * header with extension headers and a TCP header with options fit. */
#define CAP_LIVE_SNAPLEN_MIN 256u
#define CAP_LIVE_SNAPLEN_MAX 262144u
/* Default kernel ring per interface (64 MiB): about 0.5 s of a saturated
 * 1 Gbit/s link while the pipeline commits to the store. */
#define CAP_LIVE_BUFFER_DEFAULT (64ull * 1024 * 1024)

/*
 * cap_live_run with an after_open hook. Returns what cap_live_run
 * returns, or the hook's error code with its message.
 */
int cap_live_run_opts(cap_engine *engine, const cap_live_options *opts, char *err,
                      size_t err_len);

/* Longest BPF expression accepted from a user, in bytes. libpcap's
 * optimizer takes time and memory that grow much faster than the
 * expression (hundreds of "or" terms take seconds and gigabytes), so
 * longer filters are rejected up front. */
#define CAP_FILTER_MAX_BYTES 4096

/*
 * Check that BPF is a valid expression of at most CAP_FILTER_MAX_BYTES
 * for an Ethernet capture, before any store or key is touched. Returns
 * FV_OK or FV_ERR_INVALID with libpcap's message and the fix in ERR.
 */
int cap_filter_check(const char *bpf, char *err, size_t err_len);

/* Packet time after which an engine runs its expiry again, when the
 * previous run was at least this long ago (packet time, microseconds). */
#define CAP_ENGINE_EXPIRE_INTERVAL_US 1000000u

/* Receiver of one frame from cap_read_file_frames: link type (DLT_*),
 * timestamp, CAPLEN bytes at DATA, original length WIRELEN. DATA is valid
 * only during the call. A return other than FV_OK stops the read. */
typedef int (*cap_frame_fn)(void *ctx, int linktype, uint64_t ts_us, const uint8_t *data,
                            uint32_t caplen, uint32_t wirelen);

/*
 * Read a capture file like cap_read_file, with the same file handling,
 * filter and errors, but hand every frame to ON_FRAME instead of an
 * engine. A non-FV_OK return of ON_FRAME ends the read with that code
 * and a "processing a frame failed" message.
 */
int cap_read_file_frames(const char *path, const char *bpf, volatile sig_atomic_t *stop,
                         cap_frame_fn on_frame, void *ctx, char *err, size_t err_len);

/*
 * Symmetric hash of the flow a frame belongs to, for spreading frames
 * over several engines: equal for both directions. It covers only the
 * innermost IP address pair, because non-first IP fragments carry no
 * ports and an engine counts an ICMP error in the ICMP flow of the same
 * address pair. An ICMP error hashes as the packet it quotes, so it also
 * meets the flow it reports on. NOTE: an error from a router (not the
 * quoted destination) then leaves the router's other ICMP traffic with
 * that host, which can split one ICMP flow record in two. Frames without
 * readable IP addresses (ARP, LLDP, cut headers) return 0.
 */
uint32_t cap_flow_hash(int linktype, const uint8_t *data, uint32_t caplen);

/* Write the text form of ADDR ("192.0.2.1", "2001:db8::1") into OUT.
 * For tests and the comparison tool only: never log the result. */
void cap_ip_format(const cap_ip *addr, char *out, size_t out_len);

#endif /* FV_CAPTURE_H */
