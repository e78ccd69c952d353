/*
 * export.h: hand-off of stored records to external collectors.
 *
 * One exp_exporter sends records to one destination:
 *
 *   - IPFIX (RFC 7011) over UDP or TCP with libfixbuf. Flow records use
 *     the IANA elements for times, counters, ports, protocol and TCP
 *     flags. A bidirectional flow is sent as two unidirectional records
 *     told apart by biflowDirection (1 initiator, 2 reverseInitiator); the
 *     reverse record is left out when no packet went back. Addresses are
 *     sent in sourceIPv4Address and the like only when they are valid
 *     addresses that reveal nothing (kept external addresses and
 *     prefix-preserving pseudonyms); every other endpoint is sent as its
 *     text form (pseudonym token or truncated network) in an
 *     enterprise-specific element. DNS and TLS records get their own
 *     templates. docs/SCALING.md lists every element.
 *   - Kafka with librdkafka: one JSON object per message (the fields of
 *     docs/EXPORT.md plus "retention_s"), to the topic PREFIX + class
 *     name, keyed by the internal host's pseudonym.
 *
 * Caveats
 * - Records given to an exporter must already be pseudonymized records as
 *   the store holds them; the exporter never sees a raw identifier.
 * - exp_put never waits for the network on the Kafka path: when the
 *   local queue (queue_max messages) is full the record is dropped and
 *   counted. On the IPFIX path a full message is sent at once; over UDP
 *   that does not wait, and over TCP a stalled collector can make the
 *   send wait (see the NOTE in exp_ipfix.c).
 * - Not thread-safe: one thread calls every function of one exporter.
 * - Time is passed in (NOW_US, microseconds since 1970); the template
 *   refresh schedule runs on it.
 */
#ifndef FV_EXPORT_H
#define FV_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

typedef struct exp_exporter exp_exporter;

/* Destination protocol. */
typedef enum exp_kind {
    EXP_IPFIX = 1,
    EXP_KAFKA = 2,
} exp_kind;

/* Private enterprise number of flowveil's IPFIX elements.
 * NOTE: 32473 is the number RFC 5612 reserves for documentation and
 * examples. It is a placeholder until flowveil registers its own number
 * with IANA; collectors must be configured for it explicitly. */
#define EXP_IPFIX_PEN 32473u

/* Defaults. */
#define EXP_TEMPLATE_REFRESH_S_DEFAULT 600u      /* RFC 7011 section 8.4 timeout */
#define EXP_TEMPLATE_REFRESH_MESSAGES_DEFAULT 0u /* 0: refresh by time only */
#define EXP_KAFKA_QUEUE_MAX_DEFAULT 100000u      /* messages waiting in librdkafka */
#define EXP_TOPIC_PREFIX_DEFAULT "flowveil."
#define EXP_PROPERTIES_MAX 16

/* Largest text of one destination field. */
#define EXP_TARGET_MAX 512
#define EXP_NAME_MAX 64
#define EXP_TOPIC_PREFIX_MAX 128
#define EXP_PROPERTY_MAX 256

/* One destination. */
typedef struct exp_config {
    exp_kind kind;
    char name[EXP_NAME_MAX];            /* for log lines and counters, "" = the target */
    /* IPFIX: "HOST:PORT" or "[V6]:PORT"; Kafka: bootstrap servers,
     * "HOST:PORT[,HOST:PORT...]". */
    char target[EXP_TARGET_MAX];
    bool tcp;                           /* IPFIX over TCP instead of UDP */
    /* Classes sent, bit (1u << fv_class); 0 = every class the protocol
     * carries (IPFIX: flows, dns, tls; Kafka: all). */
    uint32_t classes;
    /* Retention limit of each class in seconds, sent with every record
     * so the receiver can expire it (0 = not limited). */
    uint64_t retention_s[FV_CLASS_COUNT];
    /* IPFIX over UDP: resend the templates when this many seconds have
     * passed, or (if not 0) this many messages were sent, since the
     * last send. Over TCP templates are sent once per connection. */
    uint32_t template_refresh_s;
    uint32_t template_refresh_messages;
    uint32_t observation_domain;        /* IPFIX observation domain id */
    char topic_prefix[EXP_TOPIC_PREFIX_MAX];    /* Kafka topic = prefix + class name */
    uint32_t queue_max;                 /* Kafka: queue.buffering.max.messages */
    /* Kafka: when the local queue is full, serve delivery reports and
     * retry for up to this many milliseconds before dropping the record.
     * 0 (the default, and what a capturing process uses) drops at once;
     * batch export from the store sets it so that nothing is dropped. */
    uint32_t full_wait_ms;
    /* Kafka: extra librdkafka properties "key=value" (for example
     * "message.send.max.retries=5"), applied after the defaults. */
    size_t property_count;
    char properties[EXP_PROPERTIES_MAX][EXP_PROPERTY_MAX];
} exp_config;

/* Counters of one exporter since it was created. */
typedef struct exp_stats {
    uint64_t sent;              /* records handed to the transport (IPFIX data records count
                                   once per flow record, even when sent as two) */
    uint64_t delivered;         /* Kafka: acknowledged by the broker */
    uint64_t failed;            /* Kafka: delivery failed after the retries, or rejected at
                                   once; IPFIX: data records lost to a failed send (a failed
                                   send of a pending message at exp_poll is logged only) */
    uint64_t dropped_queue_full;    /* Kafka: local queue full, record dropped */
    uint64_t filtered;          /* class not selected for this destination */
    uint64_t unsupported;       /* class the protocol does not carry (IPFIX: not flows, dns, tls) */
    uint64_t messages;          /* IPFIX messages sent */
    uint64_t template_sends;    /* IPFIX template sets sent */
} exp_stats;

/* Fill CFG with the defaults for KIND. */
void exp_config_init(exp_config *cfg, exp_kind kind);

/*
 * Parse "HOST:PORT" or "[IPV6]:PORT" into HOST and PORT (text). Returns
 * FV_OK or FV_ERR_INVALID (no port, port not 1..65535, empty host, or
 * too long for the buffers).
 */
int exp_parse_host_port(const char *text, char *host, size_t host_len, char *port,
                        size_t port_len);

/*
 * Create an exporter for CFG (copied). IPFIX: resolves the collector and
 * opens the socket (TCP connects here); Kafka: creates the producer,
 * which connects in the background. Returns FV_OK, FV_ERR_INVALID (bad
 * configuration), FV_ERR_IO (socket or connection failed) or
 * FV_ERR_NOMEM, with a message in ERR.
 */
FV_NODISCARD int exp_create(const exp_config *cfg, exp_exporter **out, char *err,
                            size_t err_len);

/*
 * Hand one record of class CLS (REC points to the matching fv_*_record)
 * to the exporter. ID and STORED_US are the store key and stored-at time
 * (ID 0 when not known yet, as in the capturing process; the JSON then
 * has no "id"). Returns FV_OK (sent, queued, filtered or counted as
 * dropped), FV_ERR_STATE after an earlier fatal IPFIX send error, or
 * FV_ERR_NOMEM.
 */
int exp_put(exp_exporter *e, fv_class cls, const void *rec, uint64_t id, uint64_t stored_us,
            uint64_t now_us);

/* exp_put for a record read back from the store. */
int exp_put_record(exp_exporter *e, const fv_record *rec, uint64_t now_us);

/*
 * exp_put_record for alert REC (its first stored record) with its life
 * cycle LIFE: Kafka receives the object the API shows (fv_alert_to_json:
 * id string, state, count, first_seen, last_seen, raised, note, ...).
 * Returns as exp_put, or FV_ERR_INVALID when REC is not an alert.
 */
int exp_put_alert(exp_exporter *e, const fv_record *rec, const fv_alert_life *life,
                  uint64_t now_us);

/*
 * Periodic work at NOW_US: serve Kafka delivery reports; send the
 * pending IPFIX message and refresh templates when due. Never waits.
 * Returns FV_OK or FV_ERR_STATE after a fatal IPFIX error.
 */
int exp_poll(exp_exporter *e, uint64_t now_us);

/*
 * Send everything pending and wait up to TIMEOUT_MS for Kafka delivery
 * reports. Returns FV_OK, or FV_ERR_IO when the IPFIX message could not
 * be sent or Kafka messages were still in flight at the timeout (they
 * are lost when the exporter is destroyed).
 */
int exp_flush(exp_exporter *e, uint64_t now_us, uint32_t timeout_ms);

/* Copy the counters into *OUT. */
void exp_stats_get(const exp_exporter *e, exp_stats *out);

/* The destination's name for messages (CFG name, or its target). */
const char *exp_name(const exp_exporter *e);

/* Close the exporter without waiting (call exp_flush first). Accepts
 * NULL; clears *E. */
void exp_destroy(exp_exporter **e);

/* Class bit for exp_config.classes. */
#define EXP_CLASS_BIT(cls) (1u << (unsigned)(cls))

/* True if the IPFIX exporter has templates for CLS. */
bool exp_ipfix_carries(fv_class cls);

#endif /* FV_EXPORT_H */
