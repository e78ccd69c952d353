/*
 * cap_stats_names.c: the names of the capture counters, for the store and
 * the API. Keep this table in the order of the fields of cap_stats; the
 * static assertion below catches a field added without a name.
 */
#include "capture.h"

static const char *const stats_names[] = {
    "packets",
    "bytes",
    "ip_packets",
    "non_ip",
    "excluded",
    "truncated",
    "bad_header",
    "unsupported_link",
    "fragments",
    "flows_created",
    "flows_emitted",
    "flows_evicted",
    "flows_active",
    "dns_messages",
    "dns_malformed",
    "tls_hellos",
    "tls_malformed",
    "http_requests",
    "http_malformed",
    "pcap_received",
    "pcap_dropped",
    "pcap_if_dropped",
    "dhcp_messages",
    "dhcp_malformed",
    "dhcp_bad_options",
    "ssh_connections",
    "ssh_bad_banner",
    "ssh_bad_kexinit",
    "ntp_packets",
    "nbns_messages",
    "nbns_malformed",
    "frag_reassembled",
    "frag_evicted",
    "frag_timeouts",
    "frag_invalid",
    "frag_too_many",
    "tcp_ooo_buffered",
    "tcp_ooo_dropped",
    "icmp_errors_matched",
    "icmp_errors_unmatched",
    "tunnel_too_deep",
    "dns_truncated",
    "dns_bad_label_type",
    "dns_bad_pointer",
    "dns_name_too_long",
    "dns_bad_rdata",
    "dns_answers_incomplete",
    "http_responses",
    "http_unpaired",
    "queue_dropped_records",
    "flows_evicted_memory",
};

_Static_assert(sizeof(cap_stats) == sizeof stats_names / sizeof stats_names[0] * sizeof(uint64_t),
               "cap_stats and stats_names must list the same fields");

const char *const *cap_stats_names(size_t *count)
{
    *count = sizeof stats_names / sizeof stats_names[0];
    return stats_names;
}
