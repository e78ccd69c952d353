/*
 * col_decode.c: read NetFlow v5, NetFlow v9 and IPFIX datagrams.
 *
 * Formats: NetFlow v5 (Cisco's fixed 24-byte header and 48-byte
 * records), NetFlow v9 (RFC 3954) and IPFIX (RFC 7011, elements from
 * RFC 7012 and the IANA registry). v9 and IPFIX share the element ids
 * below 128 used here.
 *
 * Every length read from the wire is checked against the bytes that
 * remain before it is used (`n <= remaining`). A fault ends the datagram:
 * records decoded before it are kept, and the datagram counts as
 * malformed.
 */
#include "col_internal.h"

#include <string.h>

#define COL_V5_HEADER_BYTES 24u
#define COL_V5_RECORD_BYTES 48u
#define COL_V5_MAX_RECORDS 30u
#define COL_V9_HEADER_BYTES 20u
#define COL_IPFIX_HEADER_BYTES 16u
#define COL_SET_HEADER_BYTES 4u
#define COL_VARIABLE_LENGTH 0xffffu

/* Set ids below 256 that carry templates. */
#define COL_V9_TEMPLATE_SET 0u
#define COL_V9_OPTIONS_SET 1u
#define COL_IPFIX_TEMPLATE_SET 2u
#define COL_IPFIX_OPTIONS_SET 3u
#define COL_FIRST_DATA_SET 256u

/* IANA IPFIX information elements (and NetFlow v9 field types). */
enum {
    COL_IE_OCTETS = 1,
    COL_IE_PACKETS = 2,
    COL_IE_PROTOCOL = 4,
    COL_IE_TCP_FLAGS = 6,
    COL_IE_SRC_PORT = 7,
    COL_IE_SRC_IPV4 = 8,
    COL_IE_DST_PORT = 11,
    COL_IE_DST_IPV4 = 12,
    COL_IE_END_SYSUPTIME = 21,
    COL_IE_START_SYSUPTIME = 22,
    COL_IE_SRC_IPV6 = 27,
    COL_IE_DST_IPV6 = 28,
    COL_IE_ICMP_TYPE_CODE_V4 = 32,
    COL_IE_SAMPLING_INTERVAL = 34,
    COL_IE_SAMPLER_RANDOM_INTERVAL = 50,
    COL_IE_SRC_MAC = 56,
    COL_IE_VLAN = 58,
    COL_IE_DST_MAC = 80,
    COL_IE_OCTETS_TOTAL = 85,
    COL_IE_PACKETS_TOTAL = 86,
    COL_IE_FLOW_END_REASON = 136,
    COL_IE_ICMP_TYPE_CODE_V6 = 139,
    COL_IE_START_SECONDS = 150,
    COL_IE_END_SECONDS = 151,
    COL_IE_START_MILLISECONDS = 152,
    COL_IE_END_MILLISECONDS = 153,
    COL_IE_START_MICROSECONDS = 154,
    COL_IE_END_MICROSECONDS = 155,
    COL_IE_SYSTEM_INIT_MS = 160,
    COL_IE_SAMPLING_PACKET_INTERVAL = 305,
    COL_IE_SAMPLING_PACKET_SPACE = 306,
};

/* RFC 5103 reverse elements: the forward id under this enterprise number. */
#define COL_REVERSE_PEN 29305u

/* Seconds from 1900-01-01 (NTP era 0) to 1970-01-01. */
#define COL_NTP_UNIX_OFFSET_S 2208988800ull

/* The values of one data record that a flow needs. */
typedef struct col_values {
    bool has_src, has_dst;
    uint8_t family;
    uint8_t src[16], dst[16];
    uint64_t octets, packets;
    bool has_reverse;
    uint64_t reverse_octets, reverse_packets;
    uint16_t sport, dport;
    uint8_t proto;
    uint16_t tcp_flags, reverse_tcp_flags;
    bool has_icmp;
    uint16_t icmp_type_code;
    uint16_t vlan;
    bool has_src_mac, has_dst_mac;
    uint8_t src_mac[6], dst_mac[6];
    bool has_start_uptime, has_end_uptime;
    uint32_t start_uptime_ms, end_uptime_ms;
    uint64_t start_us, end_us;         /* absolute, 0 if not given */
    bool has_end_reason;
    uint8_t end_reason;
    bool has_sampling;                 /* a sampling field was present */
    uint64_t sampling_interval;        /* 1 out of N, 0 if not given */
    uint64_t packet_interval, packet_space;
    uint64_t system_init_ms;
} col_values;

/* The header facts a record's times are relative to. */
typedef struct col_clock {
    uint32_t uptime_ms;         /* v5, v9: system uptime at export */
    uint64_t export_ms;         /* Unix time of the export in milliseconds */
} col_clock;

static uint16_t col_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t col_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An unsigned integer of 1 to 8 bytes (reduced-size encoding, RFC 7011
 * section 6.2); longer fields give their last 8 bytes. */
static uint64_t col_be_uint(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    size_t start = len > 8 ? len - 8 : 0;
    for (size_t i = start; i < len; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Absolute time in microseconds of a v5/v9 switch time UPTIME_MS. The
 * difference to the header's uptime is taken modulo 2^32 because the
 * uptime counter wraps after 49.7 days. */
static uint64_t col_uptime_to_us(const col_clock *clock, uint32_t uptime_ms)
{
    uint32_t before_export_ms = clock->uptime_ms - uptime_ms;
    if (before_export_ms > clock->export_ms)
        return 0;
    return (clock->export_ms - before_export_ms) * 1000u;
}

static uint64_t col_ntp_to_us(uint64_t ntp)
{
    uint64_t seconds = ntp >> 32;
    uint64_t fraction_us = ((ntp & 0xffffffffu) * 1000000u) >> 32;
    if (seconds < COL_NTP_UNIX_OFFSET_S)
        return 0;
    return (seconds - COL_NTP_UNIX_OFFSET_S) * 1000000u + fraction_us;
}

/* VALUE in units of 1/PER_SECOND s as microseconds, saturating, so a
 * huge value stays out of range instead of wrapping to a plausible time. */
static uint64_t col_time_us(uint64_t value, uint64_t per_second)
{
    uint64_t factor = 1000000u / per_second;
    return value > UINT64_MAX / factor ? UINT64_MAX : value * factor;
}

/* Store the value of an IANA element (ENTERPRISE 0) or of an RFC 5103
 * reverse element into V. Fields of an unexpected size are ignored. */
static void col_read_field(const col_field *f, const uint8_t *p, size_t len, col_values *v)
{
    if (f->enterprise == COL_REVERSE_PEN) {
        if (f->id == COL_IE_OCTETS || f->id == COL_IE_OCTETS_TOTAL) {
            v->reverse_octets = col_be_uint(p, len);
            v->has_reverse = true;
        } else if (f->id == COL_IE_PACKETS || f->id == COL_IE_PACKETS_TOTAL) {
            v->reverse_packets = col_be_uint(p, len);
            v->has_reverse = true;
        } else if (f->id == COL_IE_TCP_FLAGS) {
            v->reverse_tcp_flags = (uint16_t)col_be_uint(p, len);
        }
        return;
    }
    if (f->enterprise != 0)
        return;

    switch (f->id) {
    case COL_IE_OCTETS:
    case COL_IE_OCTETS_TOTAL:
        v->octets = col_be_uint(p, len);
        break;
    case COL_IE_PACKETS:
    case COL_IE_PACKETS_TOTAL:
        v->packets = col_be_uint(p, len);
        break;
    case COL_IE_PROTOCOL:
        v->proto = (uint8_t)col_be_uint(p, len);
        break;
    case COL_IE_TCP_FLAGS:
        v->tcp_flags = (uint16_t)(col_be_uint(p, len) & 0x0fffu);
        break;
    case COL_IE_SRC_PORT:
        v->sport = (uint16_t)col_be_uint(p, len);
        break;
    case COL_IE_DST_PORT:
        v->dport = (uint16_t)col_be_uint(p, len);
        break;
    case COL_IE_SRC_IPV4:
    case COL_IE_DST_IPV4:
    case COL_IE_SRC_IPV6:
    case COL_IE_DST_IPV6: {
        bool v4 = f->id == COL_IE_SRC_IPV4 || f->id == COL_IE_DST_IPV4;
        bool src = f->id == COL_IE_SRC_IPV4 || f->id == COL_IE_SRC_IPV6;
        size_t want = v4 ? 4 : 16;
        uint8_t family = v4 ? 4 : 6;
        /* A record with addresses of both families is not a flow. */
        if (len != want || ((v->has_src || v->has_dst) && v->family != family))
            break;
        v->family = family;
        memcpy(src ? v->src : v->dst, p, want);
        if (src)
            v->has_src = true;
        else
            v->has_dst = true;
        break;
    }
    case COL_IE_ICMP_TYPE_CODE_V4:
    case COL_IE_ICMP_TYPE_CODE_V6:
        v->icmp_type_code = (uint16_t)col_be_uint(p, len);
        v->has_icmp = true;
        break;
    case COL_IE_VLAN:
        v->vlan = (uint16_t)(col_be_uint(p, len) & 0x0fffu);
        break;
    case COL_IE_SRC_MAC:
    case COL_IE_DST_MAC:
        if (len != 6)
            break;
        if (f->id == COL_IE_SRC_MAC) {
            memcpy(v->src_mac, p, 6);
            v->has_src_mac = true;
        } else {
            memcpy(v->dst_mac, p, 6);
            v->has_dst_mac = true;
        }
        break;
    case COL_IE_START_SYSUPTIME:
        v->start_uptime_ms = (uint32_t)col_be_uint(p, len);
        v->has_start_uptime = true;
        break;
    case COL_IE_END_SYSUPTIME:
        v->end_uptime_ms = (uint32_t)col_be_uint(p, len);
        v->has_end_uptime = true;
        break;
    case COL_IE_START_SECONDS:
        v->start_us = col_time_us(col_be_uint(p, len), 1u);
        break;
    case COL_IE_END_SECONDS:
        v->end_us = col_time_us(col_be_uint(p, len), 1u);
        break;
    case COL_IE_START_MILLISECONDS:
        v->start_us = col_time_us(col_be_uint(p, len), 1000u);
        break;
    case COL_IE_END_MILLISECONDS:
        v->end_us = col_time_us(col_be_uint(p, len), 1000u);
        break;
    case COL_IE_START_MICROSECONDS:
        if (len == 8)
            v->start_us = col_ntp_to_us(col_be_uint(p, len));
        break;
    case COL_IE_END_MICROSECONDS:
        if (len == 8)
            v->end_us = col_ntp_to_us(col_be_uint(p, len));
        break;
    case COL_IE_FLOW_END_REASON:
        v->end_reason = (uint8_t)col_be_uint(p, len);
        v->has_end_reason = true;
        break;
    case COL_IE_SAMPLING_INTERVAL:
    case COL_IE_SAMPLER_RANDOM_INTERVAL:
        v->sampling_interval = col_be_uint(p, len);
        v->has_sampling = true;
        break;
    case COL_IE_SAMPLING_PACKET_INTERVAL:
        v->packet_interval = col_be_uint(p, len);
        v->has_sampling = true;
        break;
    case COL_IE_SAMPLING_PACKET_SPACE:
        v->packet_space = col_be_uint(p, len);
        break;
    case COL_IE_SYSTEM_INIT_MS:
        v->system_init_ms = col_be_uint(p, len);
        break;
    default:
        break;
    }
}

/* The 1-out-of-N interval V gives, 0 if none. Packet interval and space
 * (RFC 5477) select INTERVAL packets out of every INTERVAL + SPACE. */
static uint64_t col_sampling_of(const col_values *v)
{
    if (v->sampling_interval > 1)
        return v->sampling_interval;
    if (v->packet_interval > 0 && v->packet_space > 0)
        return (v->packet_interval + v->packet_space + v->packet_interval / 2) / v->packet_interval;
    return 0;
}

/* Map IPFIX flowEndReason (IANA registry) to fv_flow_end. */
static uint8_t col_end_reason(const col_values *v)
{
    if (!v->has_end_reason)
        return FV_END_IDLE;
    switch (v->end_reason) {
    case 2: return FV_END_ACTIVE;
    case 3: return FV_END_FIN;
    case 4: return FV_END_FLUSH;
    case 5: return FV_END_EVICT;
    default: return FV_END_IDLE;
    }
}

static uint64_t col_saturating_mul(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

/* Turn the values of one flow record into a cap_flow and hand it on. */
static void col_emit(col_collector *col, const col_domain *domain, const col_values *v,
                     uint64_t start_us, uint64_t end_us)
{
    if (!v->has_src || !v->has_dst) {
        col->stats.records_no_address++;
        return;
    }
    cap_flow f;
    memset(&f, 0, sizeof f);
    f.first_us = start_us;
    f.last_us = end_us >= start_us ? end_us : start_us;
    f.src.family = v->family;
    f.dst.family = v->family;
    memcpy(f.src.addr, v->src, sizeof f.src.addr);
    memcpy(f.dst.addr, v->dst, sizeof f.dst.addr);
    f.proto = v->proto;
    f.end_reason = col_end_reason(v);
    f.initiator = FV_INIT_FIRST;

    /* ICMP has no ports. v5 and many v9 exporters put type * 256 + code
     * in the destination port instead of an ICMP element. */
    if (v->proto == 1 || v->proto == 58) {
        uint16_t type_code = v->has_icmp ? v->icmp_type_code : v->dport;
        f.icmp_type = (uint8_t)(type_code >> 8);
        f.icmp_code = (uint8_t)type_code;
    } else {
        f.sport = v->sport;
        f.dport = v->dport;
    }
    if (v->proto == 6) {
        f.tcp_flags_fwd = v->tcp_flags;
        f.tcp_flags_rev = v->reverse_tcp_flags;
    }
    f.vlan = v->vlan;
    if (v->has_src_mac && v->has_dst_mac) {
        f.has_mac = true;
        memcpy(f.src_mac, v->src_mac, 6);
        memcpy(f.dst_mac, v->dst_mac, 6);
    }

    /* NOTE: fv_flow_record has no sampled flag, so only the
     * sampled_records counter tells scaled flows from exact ones. */
    uint64_t sampling = col_sampling_of(v);
    if (sampling == 0)
        sampling = domain->sampling_interval;
    if (sampling <= 1)
        sampling = 1;
    else
        col->stats.sampled_records++;
    f.pkts_fwd = col_saturating_mul(v->packets, sampling);
    f.bytes_fwd = col_saturating_mul(v->octets, sampling);
    if (v->has_reverse) {
        f.pkts_rev = col_saturating_mul(v->reverse_packets, sampling);
        f.bytes_rev = col_saturating_mul(v->reverse_octets, sampling);
    }

    /* Records with impossible values are dropped: stored, a time years
     * in the future or before 1990 would stretch every time series, and
     * a count of 2^63 or more reads as negative in JSON exports. A time
     * a little ahead (more than a day, less than COL_FUTURE_DROP_S) is
     * kept and counted: exporters with a drifting clock or uptime, and
     * softflowd replaying a file, produce such times for real traffic. */
    uint64_t start_s = start_us / 1000000u, end_s = end_us / 1000000u;
    bool ahead = start_s > col->arrival_s + COL_FUTURE_MAX_S ||
                 end_s > col->arrival_s + COL_FUTURE_MAX_S;
    bool future = start_s > col->arrival_s + COL_FUTURE_DROP_S ||
                  end_s > col->arrival_s + COL_FUTURE_DROP_S;
    bool past = start_s < COL_TIME_MIN_S || end_s < COL_TIME_MIN_S;
    uint64_t count_max = UINT64_C(1) << 63;
    bool huge = f.pkts_fwd >= count_max || f.bytes_fwd >= count_max ||
                f.pkts_rev >= count_max || f.bytes_rev >= count_max;
    if (ahead)
        col->stats.records_future++;
    if (ahead && !future && !col->ahead_logged) {
        col->ahead_logged = true;
        fv_warning("a flow record starts or ends more than a day after its datagram arrived; "
                   "it is stored and counted as records_future (this warning is logged "
                   "once); check the clock of the exporting router");
    }
    if (future || past || huge) {
        col->stats.records_out_of_range++;
        if (!col->future_logged) {
            col->future_logged = true;
            fv_warning("a flow record was dropped because %s; such records are counted as "
                       "records_out_of_range (this warning is logged once); check the clock "
                       "and the software of the exporting router",
                       future ? "it lies more than a year after its datagram arrived"
                       : past ? "it starts or ends before 1990"
                              : "a packet or byte count is 2^63 or more");
        }
        return;
    }
    col->stats.records++;
    col->on_flow(col->ctx, &f);
}

/* ---------------------------------------------------------------------- */
/* NetFlow v5                                                              */
/* ---------------------------------------------------------------------- */

static int col_decode_v5(col_collector *col, const cap_ip *exporter, const uint8_t *data,
                         size_t len)
{
    if (len < COL_V5_HEADER_BYTES) {
        col->stats.malformed++;
        return FV_ERR_PARSE;
    }
    uint16_t count = col_be16(data + 2);
    if (count == 0 || count > COL_V5_MAX_RECORDS ||
        !((size_t)count * COL_V5_RECORD_BYTES <= len - COL_V5_HEADER_BYTES)) {
        col->stats.malformed++;
        return FV_ERR_PARSE;
    }

    col_clock clock = {
        .uptime_ms = col_be32(data + 4),
        .export_ms = (uint64_t)col_be32(data + 8) * 1000u + col_be32(data + 12) / 1000000u,
    };
    uint32_t sequence = col_be32(data + 16);
    uint32_t domain_id = ((uint32_t)data[20] << 8) | data[21];  /* engine type, engine id */
    uint16_t sampling = col_be16(data + 22) & 0x3fffu;          /* top 2 bits: mode */

    col_domain *domain = col_domain_get(col, exporter, COL_VERSION_V5, domain_id);
    if (domain == NULL)
        return FV_ERR_FULL;
    domain->sampling_interval = sampling;
    col_domain_sequence(col, domain, sequence, count);

    for (uint16_t i = 0; i < count; i++) {
        const uint8_t *r = data + COL_V5_HEADER_BYTES + (size_t)i * COL_V5_RECORD_BYTES;
        col_values v;
        memset(&v, 0, sizeof v);
        v.family = 4;
        v.has_src = v.has_dst = true;
        memcpy(v.src, r + 0, 4);
        memcpy(v.dst, r + 4, 4);
        v.packets = col_be32(r + 16);
        v.octets = col_be32(r + 20);
        v.sport = col_be16(r + 32);
        v.dport = col_be16(r + 34);
        v.tcp_flags = r[37];
        v.proto = r[38];
        col_emit(col, domain, &v, col_uptime_to_us(&clock, col_be32(r + 24)),
                 col_uptime_to_us(&clock, col_be32(r + 28)));
    }
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* NetFlow v9 and IPFIX                                                    */
/* ---------------------------------------------------------------------- */

/* Read one template record at P (REMAINING bytes) of a template set
 * (OPTIONS false) or options template set. *USED gets its size. Returns
 * FV_OK, FV_ERR_PARSE, or FV_ERR_FULL for a template over the limits
 * (which is then skipped). */
static int col_read_template(col_collector *col, col_domain *domain, bool ipfix, bool options,
                             const uint8_t *p, size_t remaining, uint64_t now_s, size_t *used)
{
    col_field fields[COL_MAX_FIELDS_ON_STACK];
    size_t pos;
    uint16_t id, field_count, scope_count = 0;

    /* Header: id and field count; v9 options templates give the scope
     * and option lengths in bytes, IPFIX ones the total and scope counts
     * (except in a withdrawal, which has field count 0 and ends there). */
    if (!(4 <= remaining))
        return FV_ERR_PARSE;
    id = col_be16(p);
    size_t header = options && !(ipfix && col_be16(p + 2) == 0) ? 6 : 4;
    if (!(header <= remaining))
        return FV_ERR_PARSE;
    if (options && !ipfix) {
        uint16_t scope_bytes = col_be16(p + 2);
        uint16_t option_bytes = col_be16(p + 4);
        if (scope_bytes % 4 != 0 || option_bytes % 4 != 0)
            return FV_ERR_PARSE;
        scope_count = scope_bytes / 4;
        field_count = (uint16_t)(scope_count + option_bytes / 4);
    } else {
        field_count = col_be16(p + 2);
        if (header == 6)
            scope_count = col_be16(p + 4);
    }
    pos = header;

    /* IPFIX withdrawal (field count 0): the id itself, or every template
     * of the set's kind when the id equals the set id. */
    if (ipfix && field_count == 0) {
        uint16_t set_id = options ? COL_IPFIX_OPTIONS_SET : COL_IPFIX_TEMPLATE_SET;
        if (id == set_id)
            (void)col_template_withdraw_all(col, domain, options);
        else
            (void)col_template_withdraw(col, domain, id);
        *used = pos;
        return FV_OK;
    }
    if (id < COL_FIRST_DATA_SET || field_count == 0 || scope_count > field_count ||
        (ipfix && options && scope_count == 0))
        return FV_ERR_PARSE;

    bool too_many = field_count > col->config.max_template_fields ||
                    field_count > COL_MAX_FIELDS_ON_STACK;
    for (uint16_t i = 0; i < field_count; i++) {
        if (!(4 <= remaining - pos))
            return FV_ERR_PARSE;
        uint16_t type = col_be16(p + pos);
        col_field f = {.id = type, .length = col_be16(p + pos + 2), .enterprise = 0};
        pos += 4;
        if (ipfix && (type & 0x8000u) != 0) {
            if (!(4 <= remaining - pos))
                return FV_ERR_PARSE;
            f.id = type & 0x7fffu;
            f.enterprise = col_be32(p + pos);
            pos += 4;
        }
        if (f.length == 0 || (!ipfix && f.length == COL_VARIABLE_LENGTH))
            return FV_ERR_PARSE;
        if (!too_many)
            fields[i] = f;
    }
    *used = pos;

    if (too_many) {
        col->stats.templates_refused++;
        return FV_ERR_FULL;
    }
    return col_template_put(col, domain, id, options, scope_count, fields, field_count, now_s);
}

/* Read a template or options template set body (P, LEN bytes after the
 * set header). v9 pads sets to 4 bytes, so fewer than 4 bytes left end
 * the set. */
static int col_read_template_set(col_collector *col, col_domain *domain, bool ipfix,
                                 bool options, const uint8_t *p, size_t len, uint64_t now_s)
{
    size_t pos = 0;
    while (4 <= len - pos) {
        size_t used = 0;
        int rc = col_read_template(col, domain, ipfix, options, p + pos, len - pos, now_s, &used);
        if (rc == FV_ERR_PARSE || rc == FV_ERR_NOMEM)
            return rc;
        pos += used;
    }
    return FV_OK;
}

/* Apply an options data record: sampling and the system init time are
 * remembered for the domain's later flow records. */
static void col_apply_options(col_collector *col, col_domain *domain, const col_values *v)
{
    col->stats.options_records++;
    if (v->has_sampling) {
        uint64_t sampling = col_sampling_of(v);
        domain->sampling_interval = sampling > UINT32_MAX ? UINT32_MAX : (uint32_t)sampling;
    }
    if (v->system_init_ms != 0)
        domain->system_init_ms = v->system_init_ms;
}

/* Times of flow record V in microseconds: absolute fields first, then
 * uptime fields. Returns false if the record has neither. */
static bool col_record_times(const col_domain *domain, const col_clock *clock, bool ipfix,
                             const col_values *v, uint64_t *start_us, uint64_t *end_us)
{
    if (v->start_us != 0 || v->end_us != 0) {
        *start_us = v->start_us != 0 ? v->start_us : v->end_us;
        *end_us = v->end_us != 0 ? v->end_us : v->start_us;
        return true;
    }
    if (!v->has_start_uptime && !v->has_end_uptime)
        return false;
    uint32_t start_ms = v->has_start_uptime ? v->start_uptime_ms : v->end_uptime_ms;
    uint32_t end_ms = v->has_end_uptime ? v->end_uptime_ms : v->start_uptime_ms;
    if (!ipfix) {
        *start_us = col_uptime_to_us(clock, start_ms);
        *end_us = col_uptime_to_us(clock, end_ms);
        return true;
    }
    if (domain->system_init_ms == 0)
        return false;
    *start_us = (domain->system_init_ms + start_ms) * 1000u;
    *end_us = (domain->system_init_ms + end_ms) * 1000u;
    return true;
}

/* Read the records of data set T (P, LEN bytes after the set header).
 * *RECORDS gets the number of data records read. */
static int col_read_data_set(col_collector *col, col_domain *domain, const col_template *t,
                             bool ipfix, const col_clock *clock, const uint8_t *p, size_t len,
                             uint32_t *records)
{
    size_t pos = 0;
    /* Fewer bytes than the shortest record are padding. */
    while (t->min_record_bytes <= len - pos && t->min_record_bytes > 0) {
        col_values v;
        memset(&v, 0, sizeof v);
        for (uint16_t i = 0; i < t->field_count; i++) {
            const col_field *f = &t->fields[i];
            size_t flen = f->length;
            if (flen == COL_VARIABLE_LENGTH) {
                if (!(1 <= len - pos))
                    return FV_ERR_PARSE;
                flen = p[pos++];
                if (flen == 255) {
                    if (!(2 <= len - pos))
                        return FV_ERR_PARSE;
                    flen = col_be16(p + pos);
                    pos += 2;
                }
            }
            if (!(flen <= len - pos))
                return FV_ERR_PARSE;
            col_read_field(f, p + pos, flen, &v);
            pos += flen;
        }
        (*records)++;

        if (t->is_options) {
            col_apply_options(col, domain, &v);
            continue;
        }
        uint64_t start_us = 0, end_us = 0;
        if (!col_record_times(domain, clock, ipfix, &v, &start_us, &end_us)) {
            col->stats.time_unknown++;
            start_us = end_us = clock->export_ms * 1000u;
        }
        col_emit(col, domain, &v, start_us, end_us);
    }
    return FV_OK;
}

/*
 * Read the sets of a v9 or IPFIX message body (P, LEN bytes after the
 * message header). *RECORDS gets the number of data records read
 * (IPFIX sequence numbers count them); *TEMPLATE_MISSED is set when a
 * data set was skipped for an unknown template.
 */
static int col_read_sets(col_collector *col, col_domain *domain, bool ipfix,
                         const col_clock *clock, const uint8_t *p, size_t len, uint64_t now_s,
                         uint32_t *records, bool *template_missed)
{
    size_t pos = 0;
    while (COL_SET_HEADER_BYTES <= len - pos) {
        uint16_t set_id = col_be16(p + pos);
        uint16_t set_len = col_be16(p + pos + 2);
        if (set_len < COL_SET_HEADER_BYTES || !(set_len <= len - pos))
            return FV_ERR_PARSE;
        const uint8_t *body = p + pos + COL_SET_HEADER_BYTES;
        size_t body_len = set_len - COL_SET_HEADER_BYTES;
        pos += set_len;

        int rc = FV_OK;
        bool template_set = ipfix ? set_id == COL_IPFIX_TEMPLATE_SET : set_id == COL_V9_TEMPLATE_SET;
        bool options_set = ipfix ? set_id == COL_IPFIX_OPTIONS_SET : set_id == COL_V9_OPTIONS_SET;
        if (template_set || options_set) {
            rc = col_read_template_set(col, domain, ipfix, options_set, body, body_len, now_s);
        } else if (set_id >= COL_FIRST_DATA_SET) {
            const col_template *t = col_template_find(domain, set_id);
            if (t == NULL) {
                col->stats.template_misses++;
                *template_missed = true;
            } else {
                rc = col_read_data_set(col, domain, t, ipfix, clock, body, body_len, records);
            }
        }
        /* Set ids 4..255 are reserved: skipped by their length. */
        if (rc != FV_OK)
            return rc;
    }
    /* v9 allows padding after the last set; IPFIX lengths must add up. */
    if (ipfix && pos != len)
        return FV_ERR_PARSE;
    return FV_OK;
}

static int col_decode_v9(col_collector *col, const cap_ip *exporter, const uint8_t *data,
                         size_t len, uint64_t now_s)
{
    if (len < COL_V9_HEADER_BYTES) {
        col->stats.malformed++;
        return FV_ERR_PARSE;
    }
    col_clock clock = {
        .uptime_ms = col_be32(data + 4),
        .export_ms = (uint64_t)col_be32(data + 8) * 1000u,
    };
    uint32_t sequence = col_be32(data + 12);
    uint32_t source_id = col_be32(data + 16);

    col_domain *domain = col_domain_get(col, exporter, COL_VERSION_V9, source_id);
    if (domain == NULL)
        return FV_ERR_FULL;
    /* v9 sequence numbers count export packets. */
    col_domain_sequence(col, domain, sequence, 1);

    uint32_t records = 0;
    bool template_missed = false;
    int rc = col_read_sets(col, domain, false, &clock, data + COL_V9_HEADER_BYTES,
                           len - COL_V9_HEADER_BYTES, now_s, &records, &template_missed);
    if (rc == FV_ERR_PARSE)
        col->stats.malformed++;
    return rc;
}

static int col_decode_ipfix(col_collector *col, const cap_ip *exporter, const uint8_t *data,
                            size_t len, uint64_t now_s)
{
    if (len < COL_IPFIX_HEADER_BYTES) {
        col->stats.malformed++;
        return FV_ERR_PARSE;
    }
    uint16_t message_len = col_be16(data + 2);
    if (message_len < COL_IPFIX_HEADER_BYTES || !(message_len <= len)) {
        col->stats.malformed++;
        return FV_ERR_PARSE;
    }
    col_clock clock = {.uptime_ms = 0, .export_ms = (uint64_t)col_be32(data + 4) * 1000u};
    uint32_t sequence = col_be32(data + 8);
    uint32_t domain_id = col_be32(data + 12);

    col_domain *domain = col_domain_get(col, exporter, COL_VERSION_IPFIX, domain_id);
    if (domain == NULL)
        return FV_ERR_FULL;

    uint32_t records = 0;
    bool template_missed = false;
    int rc = col_read_sets(col, domain, true, &clock, data + COL_IPFIX_HEADER_BYTES,
                           message_len - COL_IPFIX_HEADER_BYTES, now_s, &records,
                           &template_missed);
    /* IPFIX sequence numbers count data records, so the next expected
     * number is known only after the message is read. A data set whose
     * template is unknown has an unknown record count: the next message
     * starts a new expectation instead of reporting a false gap. */
    col_domain_sequence(col, domain, sequence, records);
    if (template_missed || rc != FV_OK)
        domain->seen_sequence = false;
    if (rc == FV_ERR_PARSE)
        col->stats.malformed++;
    return rc;
}

int col_collector_datagram(col_collector *col, const cap_ip *exporter, const uint8_t *data,
                           size_t len, uint64_t now_s)
{
    if (col == NULL || exporter == NULL || (data == NULL && len > 0))
        return FV_ERR_INVALID;
    col->stats.datagrams++;
    col->arrival_s = now_s;
    col_collector_expire(col, now_s);

    if (len < 2) {
        col->stats.malformed++;
        return FV_ERR_PARSE;
    }
    switch (col_be16(data)) {
    case COL_VERSION_V5:
        col->stats.datagrams_v5++;
        return col_decode_v5(col, exporter, data, len);
    case COL_VERSION_V9:
        col->stats.datagrams_v9++;
        return col_decode_v9(col, exporter, data, len, now_s);
    case COL_VERSION_IPFIX:
        col->stats.datagrams_ipfix++;
        return col_decode_ipfix(col, exporter, data, len, now_s);
    default:
        col->stats.unsupported_version++;
        return FV_ERR_UNSUPPORTED;
    }
}
