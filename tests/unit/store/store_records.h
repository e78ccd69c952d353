/*
 * store_records.h: sample records with every field set, for the store tests.
 */
#ifndef FV_TEST_STORE_RECORDS_H
#define FV_TEST_STORE_RECORDS_H

#include <stdint.h>

#include "fv_common.h"

/* Fill the record at R (zeroed first, padding included) with values
 * derived from SEED, so records built from different seeds differ in
 * every field. Endpoints use kinds whose 16 address bytes are all
 * stored (IPv6 and the pseudonym kinds). Traffic times are SEED * 1,000,000 microseconds. */
void rec_fill_flow(fv_flow_record *r, uint32_t seed);
void rec_fill_dns(fv_dns_record *r, uint32_t seed);
void rec_fill_tls(fv_tls_record *r, uint32_t seed);
void rec_fill_http(fv_http_record *r, uint32_t seed);
void rec_fill_alert(fv_alert_record *r, uint32_t seed);
void rec_fill_dhcp(fv_dhcp_record *r, uint32_t seed);
void rec_fill_ssh(fv_ssh_record *r, uint32_t seed);

#endif /* FV_TEST_STORE_RECORDS_H */
