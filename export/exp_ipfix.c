/*
 * exp_ipfix.c: IPFIX (RFC 7011) export with libfixbuf.
 *
 * Every record is first written into one in-memory struct (ipfix_rec)
 * described by one internal template. Each record then goes out under
 * an external template that lists only the elements the record carries.
 * There is one external template per class (flows, dns, tls), per
 * address family, and per choice for each endpoint: the address itself
 * (a kept or prefix-preserving address) or only its text form in
 * flowveilSourceEndpoint / flowveilDestinationEndpoint. libfixbuf
 * copies the matching elements from the internal to the external
 * layout.
 *
 * The buffer runs in libfixbuf's manual mode while templates and records
 * are written: a full message ends the write with FB_ERROR_EOM, and
 * ipfix_emit sends and counts it before the write is repeated. So the
 * message count is exact, and it drives the template refresh by message
 * count (RFC 7011 section 8.4). The message that carries the templates
 * does not count towards the next refresh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fixbuf/public.h>

#include "exp_internal.h"

/* Elements in the private enterprise EXP_IPFIX_PEN. */
enum {
    EXP_IE_SOURCE_ENDPOINT = 1,
    EXP_IE_DESTINATION_ENDPOINT = 2,
    EXP_IE_SOURCE_ZONE = 3,
    EXP_IE_DESTINATION_ZONE = 4,
    EXP_IE_RECORD_CLASS = 5,
    EXP_IE_RETENTION_SECONDS = 6,
    EXP_IE_DNS_QUERY_NAME = 7,
    EXP_IE_DNS_QUERY_TYPE = 8,
    EXP_IE_DNS_RESPONSE_CODE = 9,
    EXP_IE_DNS_IS_RESPONSE = 10,
    EXP_IE_TLS_SERVER_NAME = 11,
    EXP_IE_TLS_JA3 = 12,
    EXP_IE_TLS_JA4 = 13,
    EXP_IE_TLS_JA3S = 14,
};

/* IANA flowEndReason values. */
enum {
    IPFIX_END_IDLE = 1,
    IPFIX_END_ACTIVE = 2,
    IPFIX_END_OF_FLOW = 3,
    IPFIX_END_FORCED = 4,
    IPFIX_END_RESOURCES = 5,
};

/* IANA biflowDirection values. */
enum { IPFIX_BIFLOW_INITIATOR = 1, IPFIX_BIFLOW_REVERSE_INITIATOR = 2 };

/*
 * The internal record. Its layout must equal the internal template
 * (ipfix_internal_spec) byte for byte: libfixbuf copies fields by the
 * template's offsets and the struct has no padding because the fields
 * are ordered by size (checked by the static assertion below). IPv4
 * addresses are in host order (libfixbuf converts), IPv6 addresses in
 * network order.
 */
typedef struct ipfix_rec {
    uint64_t flow_start_ms;
    uint64_t flow_end_ms;
    uint64_t octets;
    uint64_t packets;
    uint64_t retention_s;
    uint8_t src_ip6[16];
    uint8_t dst_ip6[16];
    fbVarfield_t src_text;
    fbVarfield_t dst_text;
    fbVarfield_t src_zone;
    fbVarfield_t dst_zone;
    fbVarfield_t record_class;
    fbVarfield_t dns_qname;
    fbVarfield_t tls_sni;
    fbVarfield_t tls_ja3;
    fbVarfield_t tls_ja4;
    fbVarfield_t tls_ja3s;
    uint32_t src_ip4;
    uint32_t dst_ip4;
    uint16_t sport;
    uint16_t dport;
    uint16_t tcp_flags;
    uint16_t vlan;
    uint16_t dns_qtype;
    uint8_t proto;
    uint8_t end_reason;
    uint8_t biflow_direction;
    uint8_t ip_version;
    uint8_t dns_rcode;
    uint8_t dns_is_response;
} ipfix_rec;

_Static_assert(sizeof(ipfix_rec) == 5 * 8 + 2 * 16 + 10 * sizeof(fbVarfield_t) + 2 * 4 + 5 * 2 +
                                        6 * 1,
               "ipfix_rec must have no padding: it mirrors the internal template");

/* Element name and its length in ipfix_rec, in struct order. */
typedef struct ipfix_field {
    const char *name;
    uint16_t len;
} ipfix_field;

static const ipfix_field ipfix_internal_fields[] = {
    {"flowStartMilliseconds", 8},
    {"flowEndMilliseconds", 8},
    {"octetDeltaCount", 8},
    {"packetDeltaCount", 8},
    {"flowveilRetentionSeconds", 8},
    {"sourceIPv6Address", 16},
    {"destinationIPv6Address", 16},
    {"flowveilSourceEndpoint", FB_IE_VARLEN},
    {"flowveilDestinationEndpoint", FB_IE_VARLEN},
    {"flowveilSourceZone", FB_IE_VARLEN},
    {"flowveilDestinationZone", FB_IE_VARLEN},
    {"flowveilRecordClass", FB_IE_VARLEN},
    {"flowveilDnsQueryName", FB_IE_VARLEN},
    {"flowveilTlsServerName", FB_IE_VARLEN},
    {"flowveilTlsJa3", FB_IE_VARLEN},
    {"flowveilTlsJa4", FB_IE_VARLEN},
    {"flowveilTlsJa3s", FB_IE_VARLEN},
    {"sourceIPv4Address", 4},
    {"destinationIPv4Address", 4},
    {"sourceTransportPort", 2},
    {"destinationTransportPort", 2},
    {"tcpControlBits", 2},
    {"vlanId", 2},
    {"flowveilDnsQueryType", 2},
    {"protocolIdentifier", 1},
    {"flowEndReason", 1},
    {"biflowDirection", 1},
    {"ipVersion", 1},
    {"flowveilDnsResponseCode", 1},
    {"flowveilDnsIsResponse", 1},
};

/* FB_IE_INIT_FULL stores the name through a cast of the string to the
 * element pointer of a union, which libfixbuf reads back as the string.
 * clang's -Wcast-align reports that cast in libfixbuf's macro; the
 * pointer is never used at the element type here. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wcast-align"
#endif
/* flowveil's enterprise elements for the information model. The
 * descriptions are the ones docs/SCALING.md lists. */
static fbInfoElement_t ipfix_enterprise_elements[] = {
    FB_IE_INIT_FULL("flowveilSourceEndpoint", EXP_IPFIX_PEN, EXP_IE_SOURCE_ENDPOINT,
                    FB_IE_VARLEN, 0, 0, 0, FB_STRING,
                    "source as a pseudonym token or truncated network"),
    FB_IE_INIT_FULL("flowveilDestinationEndpoint", EXP_IPFIX_PEN, EXP_IE_DESTINATION_ENDPOINT,
                    FB_IE_VARLEN, 0, 0, 0, FB_STRING,
                    "destination as a pseudonym token or truncated network"),
    FB_IE_INIT_FULL("flowveilSourceZone", EXP_IPFIX_PEN, EXP_IE_SOURCE_ZONE, FB_IE_VARLEN, 0,
                    0, 0, FB_STRING, "policy zone of the source, external if none"),
    FB_IE_INIT_FULL("flowveilDestinationZone", EXP_IPFIX_PEN, EXP_IE_DESTINATION_ZONE,
                    FB_IE_VARLEN, 0, 0, 0, FB_STRING,
                    "policy zone of the destination, external if none"),
    FB_IE_INIT_FULL("flowveilRecordClass", EXP_IPFIX_PEN, EXP_IE_RECORD_CLASS, FB_IE_VARLEN, 0,
                    0, 0, FB_STRING, "record class: flows, dns or tls"),
    FB_IE_INIT_FULL("flowveilRetentionSeconds", EXP_IPFIX_PEN, EXP_IE_RETENTION_SECONDS, 8,
                    FB_IE_F_ENDIAN, 0, 0, FB_UINT_64,
                    "retention limit of the record class in seconds, 0 if not limited"),
    FB_IE_INIT_FULL("flowveilDnsQueryName", EXP_IPFIX_PEN, EXP_IE_DNS_QUERY_NAME, FB_IE_VARLEN,
                    0, 0, 0, FB_STRING, "first question name as stored"),
    FB_IE_INIT_FULL("flowveilDnsQueryType", EXP_IPFIX_PEN, EXP_IE_DNS_QUERY_TYPE, 2,
                    FB_IE_F_ENDIAN, 0, 0, FB_UINT_16, "first question type"),
    FB_IE_INIT_FULL("flowveilDnsResponseCode", EXP_IPFIX_PEN, EXP_IE_DNS_RESPONSE_CODE, 1,
                    FB_IE_F_ENDIAN, 0, 0, FB_UINT_8, "response code, 0 for queries"),
    FB_IE_INIT_FULL("flowveilDnsIsResponse", EXP_IPFIX_PEN, EXP_IE_DNS_IS_RESPONSE, 1,
                    FB_IE_F_ENDIAN, 0, 0, FB_UINT_8, "1 for a response, 0 for a query"),
    FB_IE_INIT_FULL("flowveilTlsServerName", EXP_IPFIX_PEN, EXP_IE_TLS_SERVER_NAME,
                    FB_IE_VARLEN, 0, 0, 0, FB_STRING, "server name indication as stored"),
    FB_IE_INIT_FULL("flowveilTlsJa3", EXP_IPFIX_PEN, EXP_IE_TLS_JA3, FB_IE_VARLEN, 0, 0, 0,
                    FB_STRING, "JA3 of the ClientHello"),
    FB_IE_INIT_FULL("flowveilTlsJa4", EXP_IPFIX_PEN, EXP_IE_TLS_JA4, FB_IE_VARLEN, 0, 0, 0,
                    FB_STRING, "JA4 of the ClientHello"),
    FB_IE_INIT_FULL("flowveilTlsJa3s", EXP_IPFIX_PEN, EXP_IE_TLS_JA3S, FB_IE_VARLEN, 0, 0, 0,
                    FB_STRING, "JA3S of the ServerHello"),
    FB_IE_NULL,
};
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

/* Template id of the internal template; external ids start above it. */
#define IPFIX_INTERNAL_TID 0x100u
#define IPFIX_EXTERNAL_TID_BASE 0x200u

/* External template variants: bit 0 destination address sent, bit 1
 * source address sent, bit 2 IPv6 (else IPv4). */
#define IPFIX_VARIANTS 8u
#define IPFIX_VARIANT_DST_ADDR 0x1u
#define IPFIX_VARIANT_SRC_ADDR 0x2u
#define IPFIX_VARIANT_IPV6 0x4u

struct exp_ipfix {
    fbInfoModel_t *model;
    fbSession_t *session;       /* owned by fbuf once fbuf exists */
    fbExporter_t *exporter;     /* owned by fbuf once fbuf exists */
    fBuf_t *fbuf;
    char host[256];
    char port[8];
    fbConnSpec_t spec;
    uint64_t last_templates_us;     /* when the templates were last written */
    uint32_t messages_since_templates;  /* not counting the message carrying them */
    bool templates_pending;         /* the pending message ends with the template set */
    bool message_pending;           /* the buffer contains unsent records or templates */
    bool need_templates;            /* after a send failure: resend before the next record */
    uint64_t last_error_log_us;     /* send failures are logged at most once a minute */
    uint64_t errors_since_log;
    /* Text buffers the varfields point into while one record is appended. */
    char src_text[FV_ENDPOINT_TEXT_MAX];
    char dst_text[FV_ENDPOINT_TEXT_MAX];
};

/* Interval between two log lines about failed sends. */
#define IPFIX_ERROR_LOG_INTERVAL_US (60u * 1000000u)

static uint16_t ipfix_external_tid(fv_class cls, unsigned variant)
{
    return (uint16_t)(IPFIX_EXTERNAL_TID_BASE + (unsigned)cls * IPFIX_VARIANTS + variant);
}

/* Append element NAME (length LEN, FB_IE_VARLEN or 0 for the default)
 * to TMPL. */
static bool ipfix_append(fbTemplate_t *tmpl, const char *name, uint16_t len, GError **gerr)
{
    char name_copy[64];
    snprintf(name_copy, sizeof name_copy, "%s", name);
    fbInfoElementSpec_t spec = {.name = name_copy, .len_override = len, .flags = 0};
    return fbTemplateAppendSpec(tmpl, &spec, 0, gerr) != FALSE;
}

/* Build the external template of CLS and VARIANT. */
static fbTemplate_t *ipfix_external_template(fbInfoModel_t *model, fv_class cls,
                                             unsigned variant, GError **gerr)
{
    static const char *const common_start[] = {
        "flowStartMilliseconds", "flowEndMilliseconds",
    };
    static const char *const flow_fields[] = {
        "octetDeltaCount", "packetDeltaCount", "sourceTransportPort", "destinationTransportPort",
        "protocolIdentifier", "tcpControlBits", "flowEndReason", "biflowDirection", "vlanId",
    };
    static const char *const dns_fields[] = {
        "sourceTransportPort", "destinationTransportPort", "protocolIdentifier",
        "flowveilDnsQueryName", "flowveilDnsQueryType", "flowveilDnsResponseCode",
        "flowveilDnsIsResponse",
    };
    static const char *const tls_fields[] = {
        "sourceTransportPort", "destinationTransportPort", "protocolIdentifier",
        "flowveilTlsServerName", "flowveilTlsJa3", "flowveilTlsJa4", "flowveilTlsJa3s",
    };
    static const char *const common_end[] = {
        "ipVersion", "flowveilSourceZone", "flowveilDestinationZone", "flowveilRecordClass",
        "flowveilRetentionSeconds",
    };
    bool v6 = (variant & IPFIX_VARIANT_IPV6) != 0;
    bool ok = true;

    fbTemplate_t *tmpl = fbTemplateAlloc(model);
    for (size_t i = 0; ok && i < sizeof common_start / sizeof common_start[0]; i++)
        ok = ipfix_append(tmpl, common_start[i], 0, gerr);

    if (ok && (variant & IPFIX_VARIANT_SRC_ADDR) != 0)
        ok = ipfix_append(tmpl, v6 ? "sourceIPv6Address" : "sourceIPv4Address", 0, gerr);
    else if (ok)
        ok = ipfix_append(tmpl, "flowveilSourceEndpoint", FB_IE_VARLEN, gerr);
    if (ok && (variant & IPFIX_VARIANT_DST_ADDR) != 0)
        ok = ipfix_append(tmpl, v6 ? "destinationIPv6Address" : "destinationIPv4Address", 0,
                          gerr);
    else if (ok)
        ok = ipfix_append(tmpl, "flowveilDestinationEndpoint", FB_IE_VARLEN, gerr);

    const char *const *fields = flow_fields;
    size_t count = sizeof flow_fields / sizeof flow_fields[0];
    if (cls == FV_CLASS_DNS) {
        fields = dns_fields;
        count = sizeof dns_fields / sizeof dns_fields[0];
    } else if (cls == FV_CLASS_TLS) {
        fields = tls_fields;
        count = sizeof tls_fields / sizeof tls_fields[0];
    }
    for (size_t i = 0; ok && i < count; i++) {
        /* tcpControlBits is unsigned16 since RFC 7125; send both bytes. */
        uint16_t len = strcmp(fields[i], "tcpControlBits") == 0 ? 2 : 0;
        ok = ipfix_append(tmpl, fields[i], len, gerr);
    }
    for (size_t i = 0; ok && i < sizeof common_end / sizeof common_end[0]; i++)
        ok = ipfix_append(tmpl, common_end[i], 0, gerr);

    if (!ok) {
        fbTemplateFreeUnused(tmpl);
        return NULL;
    }
    return tmpl;
}

/* Add the internal and all external templates to the session. */
static int ipfix_add_templates(exp_ipfix *x, char *err, size_t err_len)
{
    GError *gerr = NULL;
    int rc = FV_OK;

    fbTemplate_t *internal = fbTemplateAlloc(x->model);
    for (size_t i = 0; i < sizeof ipfix_internal_fields / sizeof ipfix_internal_fields[0]; i++) {
        if (!ipfix_append(internal, ipfix_internal_fields[i].name, ipfix_internal_fields[i].len,
                          &gerr)) {
            fbTemplateFreeUnused(internal);
            goto fail;
        }
    }
    if (fbSessionAddTemplate(x->session, TRUE, IPFIX_INTERNAL_TID, internal, &gerr) == 0)
        goto fail;

    static const fv_class classes[] = {FV_CLASS_FLOW, FV_CLASS_DNS, FV_CLASS_TLS};
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        for (unsigned v = 0; v < IPFIX_VARIANTS; v++) {
            fbTemplate_t *ext = ipfix_external_template(x->model, classes[c], v, &gerr);
            if (ext == NULL)
                goto fail;
            if (fbSessionAddTemplate(x->session, FALSE, ipfix_external_tid(classes[c], v), ext,
                                     &gerr) == 0)
                goto fail;
        }
    }
    return FV_OK;

fail:
    snprintf(err, err_len, "cannot build the IPFIX templates: %s",
             gerr != NULL ? gerr->message : "unknown libfixbuf error");
    g_clear_error(&gerr);
    rc = FV_ERR_INVALID;
    return rc;
}

/* Log a send failure, at most once a minute, with the count since the
 * last line. The message names the destination, never a record. */
static void ipfix_log_failure(exp_exporter *e, const char *what, const GError *gerr,
                              uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    x->errors_since_log++;
    if (x->last_error_log_us != 0 && now_us - x->last_error_log_us < IPFIX_ERROR_LOG_INTERVAL_US)
        return;
    fv_warning("IPFIX export to %s: %s failed (%llu failures since the last message): %s; "
               "records of the failed message are counted as failed and later records are "
               "still sent",
               e->cfg.name, what, (unsigned long long)x->errors_since_log,
               gerr != NULL ? gerr->message : "unknown error");
    x->errors_since_log = 0;
    x->last_error_log_us = now_us;
}

/* Send the current message. On failure arrange for the templates to be
 * sent again, because a TCP collector that lost the connection also
 * lost the templates. */
static int ipfix_emit(exp_exporter *e, uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    GError *gerr = NULL;
    if (!x->message_pending)
        return FV_OK;

    fBufSetExportTime(x->fbuf, (uint32_t)(now_us / 1000000u));
    bool ok = fBufEmit(x->fbuf, &gerr) != FALSE;
    x->message_pending = false;
    if (!ok) {
        ipfix_log_failure(e, "sending a message", gerr, now_us);
        g_clear_error(&gerr);
        x->need_templates = true;
        return FV_ERR_IO;
    }
    e->stats.messages++;
    if (x->templates_pending)
        x->templates_pending = false;
    else
        x->messages_since_templates++;
    return FV_OK;
}

/*
 * After FB_ERROR_EOM in manual mode: send the full message (counted by
 * ipfix_emit), or, when nothing is pending, let libfixbuf start a new
 * message. It raises FB_ERROR_EOM on an empty buffer too, for example
 * right after templates were sent, and then sends no datagram.
 */
static int ipfix_next_message(exp_exporter *e, uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    GError *gerr = NULL;

    if (x->message_pending)
        return ipfix_emit(e, now_us);
    if (fBufEmit(x->fbuf, &gerr) == FALSE) {
        ipfix_log_failure(e, "starting a message", gerr, now_us);
        g_clear_error(&gerr);
        return FV_ERR_IO;
    }
    return FV_OK;
}

/*
 * Write every external template into the buffer, one at a time in
 * manual mode: when the message is full (FB_ERROR_EOM) it is sent and
 * counted by ipfix_next_message and the template goes into the next
 * one. The last message stays pending. Returns false with *GERR set on
 * failure.
 */
static bool ipfix_export_templates(exp_exporter *e, uint64_t now_us, GError **gerr)
{
    static const fv_class classes[] = {FV_CLASS_FLOW, FV_CLASS_DNS, FV_CLASS_TLS};
    exp_ipfix *x = e->ipfix;
    bool ok = true;

    fBufSetAutomaticMode(x->fbuf, FALSE);
    for (size_t c = 0; ok && c < sizeof classes / sizeof classes[0]; c++) {
        for (unsigned v = 0; ok && v < IPFIX_VARIANTS; v++) {
            uint16_t tid = ipfix_external_tid(classes[c], v);
            ok = fbSessionExportTemplate(x->session, tid, gerr) != FALSE;
            if (ok) {
                x->message_pending = true;
                continue;
            }
            if (!g_error_matches(*gerr, FB_ERROR_DOMAIN, FB_ERROR_EOM))
                break;
            g_clear_error(gerr);
            if (ipfix_next_message(e, now_us) != FV_OK) {
                g_set_error(gerr, FB_ERROR_DOMAIN, FB_ERROR_IO,
                            "sending a message of templates failed");
                break;
            }
            ok = fbSessionExportTemplate(x->session, tid, gerr) != FALSE;
            x->message_pending = ok;
        }
    }
    fBufSetAutomaticMode(x->fbuf, TRUE);
    return ok;
}

/* Write the template set into the buffer (sent with the next message). */
static int ipfix_write_templates(exp_exporter *e, uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    GError *gerr = NULL;

    /* Start the templates in a message of their own. */
    (void)ipfix_emit(e, now_us);
    bool ok = ipfix_export_templates(e, now_us, &gerr);
    if (!ok) {
        ipfix_log_failure(e, "writing the templates", gerr, now_us);
        g_clear_error(&gerr);
        x->need_templates = true;
        return FV_ERR_IO;
    }
    x->message_pending = true;
    x->need_templates = false;
    x->templates_pending = true;
    x->last_templates_us = now_us;
    x->messages_since_templates = 0;
    e->stats.template_sends++;
    return FV_OK;
}

/* True if the UDP template refresh is due at NOW_US. */
static bool ipfix_refresh_due(const exp_exporter *e, uint64_t now_us)
{
    const exp_ipfix *x = e->ipfix;
    if (e->cfg.tcp)
        return false;
    if (e->cfg.template_refresh_s != 0 &&
        now_us - x->last_templates_us >= (uint64_t)e->cfg.template_refresh_s * 1000000u)
        return true;
    return e->cfg.template_refresh_messages != 0 &&
           x->messages_since_templates >= e->cfg.template_refresh_messages;
}

int exp_ipfix_create(exp_exporter *e, char *err, size_t err_len)
{
    int rc;
    GError *gerr = NULL;
    exp_ipfix *x = calloc(1, sizeof *x);
    if (x == NULL)
        return FV_ERR_NOMEM;
    e->ipfix = x;

    if (exp_parse_host_port(e->cfg.target, x->host, sizeof x->host, x->port, sizeof x->port) !=
        FV_OK) {
        snprintf(err, err_len, "invalid IPFIX collector '%s': expected HOST:PORT or [IPV6]:PORT "
                 "with a port from 1 to 65535",
                 e->cfg.target);
        return FV_ERR_INVALID;
    }

    x->model = fbInfoModelAlloc();
    fbInfoModelAddElementArray(x->model, ipfix_enterprise_elements);
    x->session = fbSessionAlloc(x->model);
    fbSessionSetDomain(x->session, e->cfg.observation_domain);
    rc = ipfix_add_templates(x, err, err_len);
    if (rc != FV_OK)
        return rc;

    x->spec.transport = e->cfg.tcp ? FB_TCP : FB_UDP;
    x->spec.host = x->host;
    x->spec.svc = x->port;
    x->exporter = fbExporterAllocNet(&x->spec);
    if (x->exporter == NULL) {
        snprintf(err, err_len, "cannot create the IPFIX exporter for %s", e->cfg.target);
        return FV_ERR_IO;
    }
    x->fbuf = fBufAllocForExport(x->session, x->exporter);

    /* Send the templates now: over TCP this connects, so an unreachable
     * collector is reported here instead of at the first record. */
    /* No time is known yet: a full message of templates is sent with
     * export time 0, as the last one is. */
    bool ok = ipfix_export_templates(e, 0, &gerr);
    if (ok)
        ok = fBufEmit(x->fbuf, &gerr) != FALSE;
    x->message_pending = false;
    x->messages_since_templates = 0;
    if (!ok) {
        snprintf(err, err_len, "cannot send IPFIX templates to %s over %s: %s; check that the "
                 "collector listens there",
                 e->cfg.target, e->cfg.tcp ? "TCP" : "UDP",
                 gerr != NULL ? gerr->message : "unknown error");
        g_clear_error(&gerr);
        return FV_ERR_IO;
    }
    e->stats.messages++;
    e->stats.template_sends++;
    return FV_OK;
}

/* Set the address or text of endpoint EP into REC. Returns true when
 * the address itself is sent; FAMILY (4 or 6) is the family the record
 * carries addresses in, 0 when not decided yet (then set here). */
static bool ipfix_endpoint(const fv_endpoint *ep, char text[FV_ENDPOINT_TEXT_MAX], int *family,
                           uint32_t *ip4, uint8_t ip6[16], fbVarfield_t *text_field)
{
    int ep_family = 0;
    if (ep->kind == FV_EP_IPV4 || ep->kind == FV_EP_PREFIX_IPV4)
        ep_family = 4;
    else if (ep->kind == FV_EP_IPV6 || ep->kind == FV_EP_PREFIX_IPV6)
        ep_family = 6;

    if (ep_family != 0 && (*family == 0 || *family == ep_family)) {
        *family = ep_family;
        if (ep_family == 4)
            *ip4 = ((uint32_t)ep->addr[0] << 24) | ((uint32_t)ep->addr[1] << 16) |
                   ((uint32_t)ep->addr[2] << 8) | (uint32_t)ep->addr[3];
        else
            memcpy(ip6, ep->addr, 16);
        return true;
    }
    fv_endpoint_format(ep, text);
    text_field->buf = (uint8_t *)text;
    text_field->len = strlen(text);
    return false;
}

static void ipfix_set_text(fbVarfield_t *field, const char *text)
{
    field->buf = (uint8_t *)text;  /* libfixbuf only reads it */
    field->len = strlen(text);
}

/* Fill the endpoint, zone, class and retention fields common to every
 * class, and return the external template variant. */
static unsigned ipfix_fill_common(exp_exporter *e, fv_class cls, const fv_endpoint *src,
                                  const fv_endpoint *dst, ipfix_rec *r)
{
    exp_ipfix *x = e->ipfix;
    int family = 0;
    unsigned variant = 0;
    if (ipfix_endpoint(src, x->src_text, &family, &r->src_ip4, r->src_ip6, &r->src_text))
        variant |= IPFIX_VARIANT_SRC_ADDR;
    if (ipfix_endpoint(dst, x->dst_text, &family, &r->dst_ip4, r->dst_ip6, &r->dst_text))
        variant |= IPFIX_VARIANT_DST_ADDR;
    if (family == 6)
        variant |= IPFIX_VARIANT_IPV6;

    /* ipVersion from the endpoint kinds: a pseudonym keeps its family. */
    uint8_t kind = src->kind != FV_EP_NONE ? src->kind : dst->kind;
    bool v6 = kind == FV_EP_IPV6 || kind == FV_EP_PSEUDO_IPV6 || kind == FV_EP_PREFIX_IPV6 ||
              kind == FV_EP_TRUNC_IPV6;
    r->ip_version = v6 ? 6 : 4;

    ipfix_set_text(&r->src_zone, src->zone);
    ipfix_set_text(&r->dst_zone, dst->zone);
    ipfix_set_text(&r->record_class, fv_class_name(cls));
    r->retention_s = e->cfg.retention_s[cls];
    return variant;
}

static uint8_t ipfix_end_reason(uint8_t end)
{
    switch (end) {
    case FV_END_IDLE: return IPFIX_END_IDLE;
    case FV_END_ACTIVE: return IPFIX_END_ACTIVE;
    case FV_END_FIN:
    case FV_END_RST: return IPFIX_END_OF_FLOW;
    case FV_END_FLUSH: return IPFIX_END_FORCED;
    case FV_END_EVICT: return IPFIX_END_RESOURCES;
    default: return 0;
    }
}

static bool ipfix_try_append(exp_ipfix *x, uint16_t tid, const ipfix_rec *r, GError **gerr)
{
    return fBufSetInternalTemplate(x->fbuf, IPFIX_INTERNAL_TID, gerr) &&
           fBufSetExportTemplate(x->fbuf, tid, gerr) &&
           fBufAppend(x->fbuf, (uint8_t *)r, sizeof *r, gerr);
}

/* Append R under external template TID. The message is sent
 * first when R does not fit. If that send fails, R counts as failed and
 * the templates are sent again before the next record. */
static int ipfix_append_record(exp_exporter *e, uint16_t tid, const ipfix_rec *r,
                               uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    GError *gerr = NULL;

    fBufSetExportTime(x->fbuf, (uint32_t)(now_us / 1000000u));
    /* Records go in manual mode: a full message ends the append with
     * FB_ERROR_EOM, and ipfix_emit sends and counts it. libfixbuf's
     * automatic mode would send it unseen, and its free space is not a
     * reliable sign of that. */
    fBufSetAutomaticMode(x->fbuf, FALSE);
    bool ok = ipfix_try_append(x, tid, r, &gerr);
    if (!ok && g_error_matches(gerr, FB_ERROR_DOMAIN, FB_ERROR_EOM)) {
        g_clear_error(&gerr);
        if (ipfix_next_message(e, now_us) != FV_OK) {
            fBufSetAutomaticMode(x->fbuf, TRUE);
            e->stats.failed++;
            return FV_ERR_IO;
        }
        ok = ipfix_try_append(x, tid, r, &gerr);
    }
    fBufSetAutomaticMode(x->fbuf, TRUE);
    if (ok) {
        x->message_pending = true;
        return FV_OK;
    }
    ipfix_log_failure(e, "sending a record", gerr, now_us);
    g_clear_error(&gerr);
    e->stats.failed++;
    x->need_templates = true;
    return FV_ERR_IO;
}

static int ipfix_put_flow(exp_exporter *e, const fv_flow_record *f, uint64_t now_us)
{
    ipfix_rec r;
    memset(&r, 0, sizeof r);
    unsigned variant = ipfix_fill_common(e, FV_CLASS_FLOW, &f->src, &f->dst, &r);
    r.flow_start_ms = f->first_us / 1000u;
    r.flow_end_ms = f->last_us / 1000u;
    r.octets = f->bytes_fwd;
    r.packets = f->pkts_fwd;
    r.sport = f->sport;
    r.dport = f->dport;
    r.proto = f->proto;
    r.tcp_flags = f->tcp_flags_fwd;
    r.vlan = f->vlan;
    r.end_reason = ipfix_end_reason(f->end_reason);
    r.biflow_direction = IPFIX_BIFLOW_INITIATOR;
    int rc = ipfix_append_record(e, ipfix_external_tid(FV_CLASS_FLOW, variant), &r, now_us);
    if (rc != FV_OK || f->pkts_rev == 0)
        return rc;

    /* The reverse direction as a record of its own, source and
     * destination swapped. */
    memset(&r, 0, sizeof r);
    variant = ipfix_fill_common(e, FV_CLASS_FLOW, &f->dst, &f->src, &r);
    r.flow_start_ms = f->first_us / 1000u;
    r.flow_end_ms = f->last_us / 1000u;
    r.octets = f->bytes_rev;
    r.packets = f->pkts_rev;
    r.sport = f->dport;
    r.dport = f->sport;
    r.proto = f->proto;
    r.tcp_flags = f->tcp_flags_rev;
    r.vlan = f->vlan;
    r.end_reason = ipfix_end_reason(f->end_reason);
    r.biflow_direction = IPFIX_BIFLOW_REVERSE_INITIATOR;
    return ipfix_append_record(e, ipfix_external_tid(FV_CLASS_FLOW, variant), &r, now_us);
}

static int ipfix_put_dns(exp_exporter *e, const fv_dns_record *d, uint64_t now_us)
{
    ipfix_rec r;
    memset(&r, 0, sizeof r);
    unsigned variant = ipfix_fill_common(e, FV_CLASS_DNS, &d->client, &d->server, &r);
    r.flow_start_ms = d->ts_us / 1000u;
    r.flow_end_ms = d->ts_us / 1000u;
    r.sport = d->client_port;
    r.dport = d->server_port;
    r.proto = d->transport;
    ipfix_set_text(&r.dns_qname, d->qname);
    r.dns_qtype = d->qtype;
    r.dns_rcode = d->is_response ? d->rcode : 0;
    r.dns_is_response = d->is_response ? 1 : 0;
    return ipfix_append_record(e, ipfix_external_tid(FV_CLASS_DNS, variant), &r, now_us);
}

static int ipfix_put_tls(exp_exporter *e, const fv_tls_record *t, uint64_t now_us)
{
    ipfix_rec r;
    memset(&r, 0, sizeof r);
    unsigned variant = ipfix_fill_common(e, FV_CLASS_TLS, &t->client, &t->server, &r);
    r.flow_start_ms = t->ts_us / 1000u;
    r.flow_end_ms = t->ts_us / 1000u;
    r.sport = t->client_port;
    r.dport = t->server_port;
    r.proto = t->transport == FV_TLS_TCP ? 6 : 17;
    ipfix_set_text(&r.tls_sni, t->sni);
    ipfix_set_text(&r.tls_ja3, t->ja3);
    ipfix_set_text(&r.tls_ja4, t->ja4);
    ipfix_set_text(&r.tls_ja3s, t->ja3s);
    return ipfix_append_record(e, ipfix_external_tid(FV_CLASS_TLS, variant), &r, now_us);
}

/* The templates sent by exp_ipfix_create count from the first time
 * the caller passes in. */
static void ipfix_start_clock(exp_ipfix *x, uint64_t now_us)
{
    if (x->last_templates_us == 0)
        x->last_templates_us = now_us;
}

int exp_ipfix_put(exp_exporter *e, fv_class cls, const void *rec, uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    ipfix_start_clock(x, now_us);
    if (x->need_templates || ipfix_refresh_due(e, now_us))
        (void)ipfix_write_templates(e, now_us);

    int rc;
    if (cls == FV_CLASS_FLOW)
        rc = ipfix_put_flow(e, rec, now_us);
    else if (cls == FV_CLASS_DNS)
        rc = ipfix_put_dns(e, rec, now_us);
    else
        rc = ipfix_put_tls(e, rec, now_us);
    /* A failed send is counted in stats.failed; capture goes on. */
    if (rc == FV_OK)
        e->stats.sent++;
    return FV_OK;
}

int exp_ipfix_poll(exp_exporter *e, uint64_t now_us)
{
    exp_ipfix *x = e->ipfix;
    ipfix_start_clock(x, now_us);
    if (x->need_templates || ipfix_refresh_due(e, now_us))
        (void)ipfix_write_templates(e, now_us);
    (void)ipfix_emit(e, now_us);
    return FV_OK;
}

int exp_ipfix_flush(exp_exporter *e, uint64_t now_us)
{
    return ipfix_emit(e, now_us);
}

void exp_ipfix_destroy(exp_ipfix **xp)
{
    if (xp == NULL || *xp == NULL)
        return;
    exp_ipfix *x = *xp;
    if (x->fbuf != NULL) {
        /* Frees the session and the exporter too, and closes the socket. */
        fBufFree(x->fbuf);
    } else {
        if (x->exporter != NULL)
            fbExporterClose(x->exporter);
        if (x->session != NULL)
            fbSessionFree(x->session);
    }
    if (x->model != NULL)
        fbInfoModelFree(x->model);
    free(x);
    *xp = NULL;
}
