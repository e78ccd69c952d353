/*
 * fv_common.h: types shared by every flowveil module.
 *
 * This header defines the project error codes, the logger, and the record
 * structs that leave capture/ after pseudonymization and travel through
 * store/, detect/, api/ and the exporters.
 *
 * Caveats
 * - A record in this header never holds a raw identifier of a monitored
 *   host. Internal addresses and MACs appear only as 16-byte pseudonyms;
 *   external addresses may be kept because the policy says they are not
 *   people. Code that fills a record from capture data must go through
 *   anonymize/ first.
 * - Time values are microseconds since the Unix epoch, UTC, unless a name
 *   says otherwise (`_s` seconds, `_ms` milliseconds).
 * - Strings in records are NUL-terminated and truncated to fit; they hold
 *   metadata fields (names, methods), never payload.
 */
#ifndef FV_COMMON_H
#define FV_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#if defined(__GNUC__)
#define FV_NODISCARD __attribute__((warn_unused_result))
#define FV_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FV_NODISCARD
#define FV_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------------- */
/* Error codes                                                            */
/* ---------------------------------------------------------------------- */

/*
 * Project-wide return codes. The numbers are part of the ABI of the
 * command-line tool's messages and must never change; a retired value
 * stays reserved. Functions return FV_OK (0) or one of these.
 */
typedef enum fv_err {
    FV_OK = 0,
    FV_ERR_NOMEM = 1,          /* allocation failed */
    FV_ERR_IO = 2,             /* read, write, fsync or open failed (errno kept) */
    FV_ERR_INVALID = 3,        /* invalid argument or value */
    FV_ERR_PARSE = 4,          /* malformed input file */
    FV_ERR_NOT_FOUND = 5,      /* requested item does not exist */
    FV_ERR_TRUNCATED = 6,      /* input ended before a complete unit */
    FV_ERR_UNSUPPORTED = 7,    /* valid input that this version cannot handle */
    FV_ERR_STORE = 8,          /* LMDB reported an error */
    FV_ERR_CRYPTO = 9,         /* libsodium failed or a key is invalid */
    FV_ERR_CAPTURE = 10,       /* libpcap reported an error */
    FV_ERR_FULL = 11,          /* a configured bound was reached */
    FV_ERR_STATE = 12,         /* object is in a failed or wrong state */
    FV_ERR_PERMISSION = 13,    /* operating system denied access */
    FV_ERR_INTERRUPTED = 14,   /* stopped by a signal */
} fv_err;

/* Return a static, constant description of CODE (never NULL). */
const char *fv_strerror(int code);

/* ---------------------------------------------------------------------- */
/* Logging                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Levels follow syslog order. Messages go to stderr as
 * "flowveil: LEVEL: text", or to syslog (fv_log_set_target). Never
 * pass a raw address, MAC, host name, payload byte or key byte to the
 * logger: log counts or pseudonyms.
 * Per-packet anomalies are counters, not log lines.
 */
typedef enum fv_log_level {
    FV_LOG_ERROR = 0,
    FV_LOG_WARNING = 1,
    FV_LOG_NOTICE = 2,
    FV_LOG_INFO = 3,
    FV_LOG_DEBUG = 4,
} fv_log_level;

/* Set the most verbose level that is printed (default FV_LOG_NOTICE). */
void fv_log_set_level(fv_log_level level);
/* Return the maximum level that is printed (the most verbose one). */
fv_log_level fv_log_get_level(void);

/* Where log lines go. */
typedef enum fv_log_target {
    FV_LOG_TO_STDERR = 0,   /* "flowveil: LEVEL: text" on stderr (default) */
    FV_LOG_TO_SYSLOG = 1,   /* syslog(3), facility LOG_DAEMON, ident "flowveil" */
} fv_log_target;

/*
 * Send log lines to TARGET from now on. FV_LOG_TO_SYSLOG connects to the
 * syslog socket at once (openlog with LOG_NDELAY), so logging keeps
 * working after a chroot that hides /dev/log. Levels map to the syslog
 * priorities of the same names.
 * NOTE: if the syslog daemon restarts, glibc reconnects by path, which
 * fails inside a chroot; lines are then lost until capture restarts.
 */
void fv_log_set_target(fv_log_target target);
/* Write one log line at LEVEL. Thread-safe. */
void fv_log(fv_log_level level, const char *fmt, ...) FV_PRINTF(2, 3);

#define fv_error(...) fv_log(FV_LOG_ERROR, __VA_ARGS__)
#define fv_warning(...) fv_log(FV_LOG_WARNING, __VA_ARGS__)
#define fv_notice(...) fv_log(FV_LOG_NOTICE, __VA_ARGS__)
#define fv_info(...) fv_log(FV_LOG_INFO, __VA_ARGS__)
#ifdef NDEBUG
#define fv_debug(...) ((void)0)
#else
#define fv_debug(...) fv_log(FV_LOG_DEBUG, __VA_ARGS__)
#endif

/* ---------------------------------------------------------------------- */
/* Record classes                                                          */
/* ---------------------------------------------------------------------- */

/*
 * Each class is one named LMDB database with its own retention limit.
 * The numbers are stored on disk and must never change.
 */
typedef enum fv_class {
    FV_CLASS_FLOW = 0,
    FV_CLASS_DNS = 1,
    FV_CLASS_TLS = 2,
    FV_CLASS_HTTP = 3,
    FV_CLASS_ALERT = 4,
    FV_CLASS_DHCP = 5,
    FV_CLASS_SSH = 6,
    FV_CLASS_AGGREGATE = 7,
    FV_CLASS_COUNT = 8
} fv_class;

/* Return the class name used in policies, the CLI and the API ("flows",
 * "dns", "tls", "http", "alerts", "dhcp", "ssh", "aggregates"), or NULL
 * for an invalid value. */
const char *fv_class_name(fv_class cls);
/* Parse NAME into *OUT. Return FV_OK or FV_ERR_INVALID. */
int fv_class_from_name(const char *name, fv_class *out);

/* ---------------------------------------------------------------------- */
/* Endpoints                                                               */
/* ---------------------------------------------------------------------- */

#define FV_PSEUDONYM_BYTES 16
#define FV_ZONE_NAME_MAX 32     /* including the NUL */
#define FV_ZONE_EXTERNAL "external"

/* How an endpoint address is represented in a stored record. */
typedef enum fv_ep_kind {
    FV_EP_NONE = 0,         /* no address (unused endpoint) */
    FV_EP_IPV4 = 1,         /* kept IPv4 address in addr[0..3], network order */
    FV_EP_IPV6 = 2,         /* kept IPv6 address in addr[0..15], network order */
    FV_EP_PSEUDO_IPV4 = 3,  /* pseudonym of an IPv4 address in addr[0..15] */
    FV_EP_PSEUDO_IPV6 = 4,  /* pseudonym of an IPv6 address in addr[0..15] */
    FV_EP_PREFIX_IPV4 = 5,  /* prefix-preserving pseudonym, a valid IPv4 address in addr[0..3] */
    FV_EP_PREFIX_IPV6 = 6,  /* prefix-preserving pseudonym, a valid IPv6 address in addr[0..15] */
    FV_EP_TRUNC_IPV4 = 7,   /* IPv4 network in addr[0..3], host bits zero, length in prefix_len */
    FV_EP_TRUNC_IPV6 = 8,   /* IPv6 network in addr[0..15], host bits zero, length in prefix_len */
} fv_ep_kind;

/*
 * One side of a flow or transaction, as stored. Invariant: an address in
 * a zone of the policy is stored as its zone's address mode says
 * (pseudonymize by default: a PSEUDO kind), and is kept (IPV4, IPV6) only
 * where the policy sets `addresses: keep` for that zone. Addresses outside
 * every zone (zone "external") follow the policy's external mode, kept by
 * default.
 */
typedef struct fv_endpoint {
    uint8_t kind;                   /* fv_ep_kind */
    uint8_t addr[16];               /* see kind */
    char zone[FV_ZONE_NAME_MAX];    /* zone label, "external" if none */
    uint8_t prefix_len;             /* TRUNC kinds: 0..32 or 0..128; 0 for other kinds */
} fv_endpoint;

/* Text form of an endpoint: dotted or colon address for kept addresses
 * and prefix-preserving pseudonyms, "10.1.0.0/24" for truncated ones, or
 * a typed pseudonym token "ip4-xxxxxxxxxxxxxxxx" / "ip6-..." (16
 * lowercase base32 characters of the first 10 pseudonym bytes). */
#define FV_ENDPOINT_TEXT_MAX 64
void fv_endpoint_format(const fv_endpoint *ep, char out[FV_ENDPOINT_TEXT_MAX]);

/* Typed token for a MAC pseudonym: "mac-" + 16 base32 characters. */
#define FV_TOKEN_TEXT_MAX 32
void fv_token_format(const char *type_prefix, const uint8_t pseudonym[FV_PSEUDONYM_BYTES],
                     char out[FV_TOKEN_TEXT_MAX]);

/* Return true if the endpoint lies in a zone of the policy (an internal
 * host): its zone label is set and is not "external". An endpoint without
 * a zone label counts as internal when its kind is a PSEUDO or PREFIX
 * kind. */
bool fv_endpoint_is_internal(const fv_endpoint *ep);

/* ---------------------------------------------------------------------- */
/* Records                                                                 */
/* ---------------------------------------------------------------------- */

/* Why a flow record was emitted. Stored on disk: numbers never change. */
typedef enum fv_flow_end {
    FV_END_IDLE = 0,      /* no packet for the idle timeout */
    FV_END_ACTIVE = 1,    /* active timeout: the flow continues in a later record */
    FV_END_FIN = 2,       /* TCP FIN seen in both directions */
    FV_END_RST = 3,       /* TCP RST */
    FV_END_FLUSH = 4,     /* end of input or shutdown */
    FV_END_EVICT = 5,     /* flow table full, oldest flow evicted */
} fv_flow_end;

/*
 * A bidirectional flow. "fwd" is the direction from src to dst, where src
 * is the endpoint that sent the first packet seen (the initiator when the
 * capture saw the start). Byte counts are IP bytes (IPv4 total length,
 * IPv6 payload length + 40), as NetFlow and IPFIX count them.
 */
typedef struct fv_flow_record {
    uint64_t first_us, last_us;
    fv_endpoint src, dst;
    uint16_t sport, dport;          /* host order; 0 for ICMP and others */
    uint8_t proto;                  /* IP protocol number */
    uint8_t end_reason;             /* fv_flow_end */
    uint8_t icmp_type, icmp_code;   /* first ICMP/ICMPv6 message of the flow */
    uint16_t tcp_flags_fwd, tcp_flags_rev;   /* OR of TCP flags, low 12 bits */
    uint16_t vlan;                  /* outermost 802.1Q id, 0 if none */
    uint8_t has_mac;                /* 1 if the mac pseudonyms are set */
    uint8_t src_mac[FV_PSEUDONYM_BYTES];    /* pseudonym, never a raw MAC */
    uint8_t dst_mac[FV_PSEUDONYM_BYTES];
    uint64_t pkts_fwd, pkts_rev;
    uint64_t bytes_fwd, bytes_rev;
    /* NTP (UDP port 123): mode and version of the flow's first NTP
     * packet; both 0 when the flow carried no NTP. */
    uint8_t ntp_mode, ntp_version;
    uint8_t app;                    /* fv_app: application detected by a parser */
    uint8_t initiator;              /* fv_initiator: how src was chosen as the client */
    uint8_t continued;              /* 1 after the first record of a flow split by the active timeout */
    uint8_t icmp_quoted;            /* 1: an ICMP error whose quoted header matched an open flow */
    uint32_t rtt_us;                /* TCP handshake, SYN to the ACK of the SYN-ACK; 0 if unknown */
    uint32_t retrans_fwd, retrans_rev;  /* TCP segments whose sequence range was already seen */
    uint32_t ooo_fwd, ooo_rev;      /* TCP segments that started beyond the next expected byte */
    uint32_t icmp_errors;           /* ICMP errors that quoted this flow's packets */
    uint8_t tunnel_type;            /* fv_tunnel, FV_TUNNEL_NONE if not tunneled */
    fv_endpoint outer_src, outer_dst;   /* outermost tunnel's endpoints if tunnel_type is set */
} fv_flow_record;

/* Application detected in a flow. Stored on disk: numbers never change. */
typedef enum fv_app {
    FV_APP_NONE = 0,
    FV_APP_DNS = 1,
    FV_APP_MDNS = 2,
    FV_APP_LLMNR = 3,
    FV_APP_TLS = 4,
    FV_APP_HTTP = 5,
    FV_APP_QUIC = 6,
    FV_APP_SSH = 7,
    FV_APP_DHCP = 8,
    FV_APP_NTP = 9,
    FV_APP_NBNS = 10,
    FV_APP_COUNT = 11
} fv_app;

/* How a flow's client (src) was decided. Stored on disk. */
typedef enum fv_initiator {
    FV_INIT_FIRST = 0,  /* sender of the first packet seen */
    FV_INIT_SYN = 1,    /* TCP SYN or SYN-ACK seen */
    FV_INIT_PORT = 2,   /* TCP joined mid-connection: the lower, well-known port is the server */
} fv_initiator;

/* Outermost tunnel around a flow's packets. Stored on disk. */
typedef enum fv_tunnel {
    FV_TUNNEL_NONE = 0,
    FV_TUNNEL_GRE = 1,
    FV_TUNNEL_ERSPAN = 2,
    FV_TUNNEL_VXLAN = 3,
    FV_TUNNEL_GTPU = 4,
    FV_TUNNEL_IPIP = 5,
    FV_TUNNEL_6IN4 = 6,
    FV_TUNNEL_TEREDO = 7,
    FV_TUNNEL_COUNT = 8
} fv_tunnel;

#define FV_NAME_MAX 256     /* DNS names, SNI and Host, including the NUL */

/* Where a DNS message was seen, by port. Stored on disk: numbers never change. */
typedef enum fv_dns_protocol {
    FV_DNS_PROTO_DNS = 0,   /* port 53 */
    FV_DNS_PROTO_MDNS = 1,  /* port 5353 */
    FV_DNS_PROTO_LLMNR = 2, /* port 5355 */
    FV_DNS_PROTO_NBNS = 3,  /* NetBIOS name service, port 137 */
} fv_dns_protocol;

#define FV_DNS_QUESTIONS_MAX 8  /* questions kept per message */
#define FV_DNS_ADDRS_MAX 8      /* A and AAAA answers kept per message, each */
#define FV_DNS_CNAMES_MAX 4     /* CNAME targets kept per message */

/* One question of a DNS message; name in presentation form. */
typedef struct fv_dns_question {
    uint16_t qtype, qclass;
    char name[FV_NAME_MAX];
} fv_dns_question;

/* An address from a DNS answer, stored like fv_endpoint's address: kind
 * is an fv_ep_kind other than FV_EP_NONE, chosen by the address mode of
 * the zone the address lies in. */
typedef struct fv_dns_addr {
    uint8_t kind;           /* fv_ep_kind */
    uint8_t addr[16];       /* see kind */
    uint8_t prefix_len;     /* TRUNC kinds: 0..32 or 0..128; 0 for other kinds */
} fv_dns_addr;

/* One DNS message (query or response). */
typedef struct fv_dns_record {
    uint64_t ts_us;
    fv_endpoint client, server;     /* client = side that sent the query */
    uint16_t client_port, server_port;
    uint8_t transport;              /* 6 TCP or 17 UDP */
    uint8_t is_response;
    uint8_t rcode;                  /* responses only */
    uint16_t txid;
    uint16_t qtype, qclass;
    uint16_t answer_count;
    char qname[FV_NAME_MAX];        /* presentation form, see capture.h */
    /* Every question and the A, AAAA and CNAME answers. */
    uint8_t protocol;               /* fv_dns_protocol, from the port */
    uint16_t qdcount;               /* QDCOUNT of the header */
    uint8_t question_count;         /* entries used in questions[] */
    fv_dns_question questions[FV_DNS_QUESTIONS_MAX];  /* questions[0] repeats qname */
    uint8_t answers_a_count;        /* entries used in answers_a[] */
    fv_dns_addr answers_a[FV_DNS_ADDRS_MAX];
    uint8_t answers_aaaa_count;     /* entries used in answers_aaaa[] */
    fv_dns_addr answers_aaaa[FV_DNS_ADDRS_MAX];
    uint8_t cname_count;            /* entries used in cnames[] */
    char cnames[FV_DNS_CNAMES_MAX][FV_NAME_MAX];     /* CNAME targets, answer order */
} fv_dns_record;

/* How a TLS hello travelled: the "transport" JSON field. Stored. */
typedef enum fv_tls_transport {
    FV_TLS_TCP = 0,
    FV_TLS_DTLS = 1,
    FV_TLS_QUIC = 2,
} fv_tls_transport;

#define FV_TLS_ALPN_MAX 24      /* ALPN values kept per hello */
#define FV_TLS_ALPN_LEN 64      /* one escaped ALPN value with its NUL */
#define FV_TLS_VERSIONS_MAX 16  /* supported_versions entries kept */

/* One TLS/DTLS/QUIC connection: its ClientHello, and its ServerHello
 * when that was seen before the record was emitted. */
typedef struct fv_tls_record {
    uint64_t ts_us;
    fv_endpoint client, server;
    uint16_t client_port, server_port;
    uint16_t version;               /* legacy_version of the ClientHello */
    char sni[FV_NAME_MAX];          /* empty if the hello has no SNI */
    uint8_t transport;              /* fv_tls_transport */
    uint32_t quic_version;          /* QUIC version of the Initial, 0 if not QUIC */
    uint8_t alpn_count;             /* entries used in alpn[] */
    char alpn[FV_TLS_ALPN_MAX][FV_TLS_ALPN_LEN];   /* offered, wire order, escaped */
    uint8_t supported_versions_count;
    uint16_t supported_versions[FV_TLS_VERSIONS_MAX];   /* wire order, GREASE included */
    uint16_t cipher_count;          /* offered, GREASE included */
    uint16_t extension_count;       /* sent, GREASE included */
    char ja3[33];                   /* 32 hex digits, "" for SSLv2-format hellos */
    char ja4[40];                   /* "" for SSLv2-format hellos */
    uint16_t server_version;        /* selected version, 0 if no ServerHello */
    uint16_t server_cipher;
    char server_alpn[FV_TLS_ALPN_LEN];  /* "" if none */
    char ja3s[33];                  /* "" if no ServerHello */
} fv_tls_record;

/* One HTTP/1.x request. */
typedef struct fv_http_record {
    uint64_t ts_us;
    fv_endpoint client, server;
    uint16_t client_port, server_port;
    char method[16];
    char host[FV_NAME_MAX];         /* Host header as sent, empty if absent */
    uint32_t uri_length;            /* bytes of the request target; the target is never kept */
    uint16_t status;                /* response status code, 0 if no response was seen */
    char user_agent[FV_NAME_MAX];   /* User-Agent value, escaped like host, "" if absent */
} fv_http_record;

/* Detectors. Stored on disk: numbers never change. */
typedef enum fv_detector {
    FV_DET_BEACON = 1,     /* regular connections to one external peer */
    FV_DET_EXFIL = 2,      /* outbound volume far above the host's usual */
    FV_DET_LONG_CONN = 3,  /* a connection open far longer than usual */
    FV_DET_BASELINE = 4,   /* a host's hourly volume outside its own band */
    FV_DET_SCAN = 5,       /* horizontal or vertical scan (threshold random walk) */
    FV_DET_DNS_TUNNEL = 6, /* many unique, long or random labels under one domain */
    FV_DET_DGA = 7,        /* algorithmically generated names, NXDOMAIN bursts */
    FV_DET_RARE_DEST = 8,  /* external destination new to the host or the organization */
    FV_DET_OFF_HOURS = 9,  /* activity outside the host's usual hours */
    FV_DET_SEGMENTATION = 10, /* a flow the policy's zone rules deny */
    FV_DET_INDICATOR = 11, /* address, domain or fingerprint on an indicator list */
} fv_detector;

#define FV_DET_MAX 11      /* highest fv_detector value */

/* Return "beacon", "exfil", "long_connection", "baseline", "scan",
 * "dns_tunnel", "dga", "rare_destination", "off_hours", "segmentation",
 * "indicator", or NULL. */
const char *fv_detector_name(int detector);

typedef enum fv_severity {
    FV_SEV_LOW = 1,
    FV_SEV_MEDIUM = 2,
    FV_SEV_HIGH = 3,
    FV_SEV_CRITICAL = 4,
} fv_severity;

/* Return "low" / "medium" / "high" / "critical", or NULL. */
const char *fv_severity_name(int severity);

#define FV_EVIDENCE_MAX 8

/*
 * An alert raised by a detector over pseudonymized flow records. The
 * evidence values are detector-specific; fv_evidence_name() names them
 * (for example the beacon detector's median interval in seconds).
 */
typedef struct fv_alert_record {
    uint64_t ts_us;                 /* when the alert was raised */
    uint64_t first_us, last_us;     /* time span of the evidence */
    uint8_t detector;               /* fv_detector */
    uint8_t severity;               /* fv_severity */
    double score;                   /* 0.0 .. 1.0 */
    fv_endpoint host;               /* internal host (pseudonym) */
    fv_endpoint peer;               /* external peer, FV_EP_NONE if none */
    uint16_t peer_port;
    uint8_t proto;
    uint32_t flow_count;            /* flows the alert rests on */
    uint8_t evidence_count;
    double evidence[FV_EVIDENCE_MAX];
    char summary[160];              /* one sentence, no raw identifiers */
} fv_alert_record;

#define FV_DHCP_HOSTNAME_MAX 256    /* option 12, including the NUL */
#define FV_DHCP_VENDOR_MAX 256      /* option 60, including the NUL */

/*
 * One BOOTP/DHCPv4 message. client is the BOOTP client side (port 68),
 * server the port-67 side. client_mac is always a pseudonym (chaddr).
 * hostname contains either the host name as sent (client outside every
 * zone) or a "name-..." token. requested_ip contains address text or an
 * "ip4-..." token, and "" when option 50 is absent.
 */
typedef struct fv_dhcp_record {
    uint64_t ts_us;
    fv_endpoint client, server;
    uint16_t client_port, server_port;
    uint8_t op;                     /* 1 BOOTREQUEST, 2 BOOTREPLY */
    uint8_t msg_type;               /* option 53, 0 if absent (plain BOOTP) */
    uint8_t has_client_mac;         /* 1 if client_mac is set (htype 1, hlen 6) */
    uint8_t client_mac[FV_PSEUDONYM_BYTES];
    char hostname[FV_DHCP_HOSTNAME_MAX];
    char vendor_class[FV_DHCP_VENDOR_MAX];
    char requested_ip[FV_ENDPOINT_TEXT_MAX];
} fv_dhcp_record;

#define FV_SSH_BANNER_MAX 256       /* identification string, including the NUL */
#define FV_HASSH_TEXT 33            /* 32 lowercase hex digits and the NUL */

/*
 * One SSH connection: both identification strings ("SSH-2.0-..." without
 * CR LF) and the HASSH fingerprints of both KEXINIT messages ("" when the
 * message was not seen in cleartext).
 */
typedef struct fv_ssh_record {
    uint64_t ts_us;
    fv_endpoint client, server;
    uint16_t client_port, server_port;
    char client_banner[FV_SSH_BANNER_MAX];
    char server_banner[FV_SSH_BANNER_MAX];
    char hassh[FV_HASSH_TEXT];
    char hassh_server[FV_HASSH_TEXT];
} fv_ssh_record;

#define FV_AGGREGATE_HOSTS_MAX 4096  /* distinct hosts counted exactly per record */

/*
 * Traffic of one zone to one destination in one time bucket, counted over
 * the flows of monitored and aggregate-mode hosts. It never contains a
 * pseudonym or an internal address: the internal side is only its zone
 * label. "out" is the direction from the internal host, "in" towards it.
 */
typedef struct fv_aggregate_record {
    uint64_t bucket_start_us;       /* traffic time, a multiple of bucket_s */
    uint32_t bucket_s;              /* 3600 (hour) or 86400 (day) */
    char zone[FV_ZONE_NAME_MAX];    /* zone of the internal side */
    uint8_t proto;                  /* IP protocol number */
    fv_endpoint peer;               /* external side (kept address), FV_EP_NONE if internal */
    uint16_t dport;                 /* the flow's destination port, 0 for ICMP and others */
    uint64_t flows, packets;
    uint64_t bytes_in, bytes_out;   /* IP bytes */
    uint32_t hosts;                 /* distinct internal hosts */
    uint8_t hosts_capped;           /* 1: more than FV_AGGREGATE_HOSTS_MAX, hosts is a lower bound */
} fv_aggregate_record;

/* Return the name of evidence slot INDEX for DETECTOR, or NULL. */
const char *fv_evidence_name(int detector, unsigned index);

/* A stored record of any class, as read back from the store. */
typedef struct fv_record {
    fv_class cls;
    uint64_t stored_us;     /* when flowveil stored it; retention counts from here */
    uint64_t id;            /* store key, unique and ascending within a class */
    union {
        fv_flow_record flow;
        fv_dns_record dns;
        fv_tls_record tls;
        fv_http_record http;
        fv_alert_record alert;
        fv_dhcp_record dhcp;
        fv_ssh_record ssh;
        fv_aggregate_record aggregate;
    } u;
} fv_record;

/*
 * Convert a record into a new JSON object with the field names documented
 * in docs/EXPORT.md. Return NULL on allocation failure; the caller owns
 * the reference.
 */
json_t *fv_record_to_json(const fv_record *rec);

/*
 * The life cycle of an alert, kept by the store beside the immutable
 * alert record (store/store_alerts.c). Strings are NUL-terminated.
 */
typedef struct fv_alert_life {
    uint64_t id;                    /* alert id: the id of its first record */
    const char *state;              /* "new", "acknowledged" or "closed" */
    uint32_t count;                 /* raises merged into the alert */
    uint64_t first_seen_us, last_seen_us;   /* raise times: first and newest raise */
    uint64_t changed_us;            /* last state change, 0 if never */
    const char *changed_by;         /* user name, "" if never changed */
    const char *note;               /* analyst note (UTF-8), "" if none */
    const fv_alert_record *newest;  /* the newest raise, NULL = the record itself */
} fv_alert_life;

/*
 * Convert alert REC with its life cycle LIFE into a new JSON object: the
 * fields of fv_record_to_json, with the newest raise's evidence, score,
 * severity and summary, "first"/"last" spanning every raise, "id" as a
 * decimal string, and the members state, count, first_seen and
 * last_seen (the traffic span, as fv_alert_span), raised (first raise),
 * note, state_changed_by and state_changed_at (docs/EXPORT.md). Return
 * NULL on allocation failure or if REC is not an alert.
 */
json_t *fv_alert_to_json(const fv_record *rec, const fv_alert_life *life);

/*
 * Store in *FIRST_US and *LAST_US the traffic span of alert REC (its
 * first record) with life cycle LIFE (may be NULL): the earliest
 * evidence start and the latest evidence end of the first record and
 * the newest raise. Raises merged in between are not kept, so their
 * spans count only when they lie inside those two. A raise without an
 * evidence span (first_us 0) counts with its raise time ts_us.
 */
void fv_alert_span(const fv_alert_record *rec, const fv_alert_life *life, uint64_t *first_us,
                   uint64_t *last_us);

/* Format microseconds since the epoch as RFC 3339 UTC with microseconds:
 * "2026-12-04T21:03:57.123456Z". */
#define FV_TIME_TEXT_MAX 40
void fv_time_format(uint64_t us, char out[FV_TIME_TEXT_MAX]);

/* Current wall-clock time in microseconds (CLOCK_REALTIME). Code that
 * expires, rotates or retains takes time as a parameter; only the CLI
 * and servers call this to obtain it. */
uint64_t fv_now_us(void);

/* Current wall-clock time in whole seconds, the second that CLOCK_REALTIME
 * shows. It reads the kernel's coarse clock (CLOCK_REALTIME_COARSE),
 * which costs a quarter as much, and CLOCK_REALTIME only in the last
 * 50 ms of a coarse second, where a new second may already have begun.
 * For checks made per packet against times kept in seconds. NOTE: where
 * the coarse clock trails by more than 50 ms, this can still return the
 * second before. */
uint64_t fv_now_coarse_s(void);

/* Parse a point in time: RFC 3339 ("2026-11-30T08:00:00Z", fractions and
 * offsets allowed) or integer seconds since 1970 ("1796025600"), up to
 * 9999-12-31T23:59:59Z. Return FV_OK or FV_ERR_INVALID. */
int fv_time_parse(const char *text, uint64_t *out_us);

/* Parse a duration such as "90s", "15m", "24h", "30d" or "2w" into
 * seconds. Return FV_OK or FV_ERR_INVALID. */
int fv_duration_parse(const char *text, uint64_t *out_s);

/*
 * Open PATH read-only for a settings, key, list or certificate file,
 * without blocking on a FIFO or device. The open uses O_NONBLOCK, and a
 * path that is not a regular file (FIFO, directory, device, socket) is
 * rejected. O_NONBLOCK is cleared again before the descriptor is
 * returned, and O_CLOEXEC stays set. Returns the descriptor, or -1 with
 * errno set and a message naming PATH, what it is and the fix in ERR.
 * Files meant to be pipes, such as --password-file <(...), must not use it.
 */
int fv_open_regular_file(const char *path, char *err, size_t err_len);

#include <stdio.h>

/* fv_open_regular_file as a stdio stream for reading; NULL on failure. */
FILE *fv_fopen_regular_file(const char *path, char *err, size_t err_len);

/*
 * Copy the string SRC into DST of SIZE bytes like snprintf(DST, SIZE,
 * "%s", SRC), without the format parser: at most SIZE - 1 bytes and a
 * terminating NUL, nothing when SIZE is 0. DST and SRC must not overlap.
 * Returns true if all of SRC fit, false if it was truncated.
 */
bool fv_str_copy(char *dst, size_t size, const char *src);

/*
 * Allocate SIZE zeroed bytes for a large table read at random places
 * (a hash table), aligned to 2 MiB and, on Linux, advised to be backed
 * by transparent huge pages (MADV_HUGEPAGE), so its lookups miss the TLB
 * less. Without huge pages it is an ordinary zeroed allocation, but
 * every byte is written, so all of it counts in the resident size at
 * once. Free it with free(). Returns NULL if out of memory.
 */
void *fv_table_calloc(size_t size);

#endif /* FV_COMMON_H */
