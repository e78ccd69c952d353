/*
 * exp_internal.h: the two transports behind exp_exporter. Not part of
 * the public interface.
 */
#ifndef FV_EXP_INTERNAL_H
#define FV_EXP_INTERNAL_H

#include "export.h"

typedef struct exp_ipfix exp_ipfix;
typedef struct exp_kafka exp_kafka;

struct exp_exporter {
    exp_config cfg;
    exp_stats stats;
    exp_ipfix *ipfix;           /* set when cfg.kind is EXP_IPFIX */
    exp_kafka *kafka;           /* set when cfg.kind is EXP_KAFKA */
    fv_record scratch;          /* exp_put copies its record here for the JSON path */
};

int exp_ipfix_create(exp_exporter *e, char *err, size_t err_len);
int exp_ipfix_put(exp_exporter *e, fv_class cls, const void *rec, uint64_t now_us);
int exp_ipfix_poll(exp_exporter *e, uint64_t now_us);
int exp_ipfix_flush(exp_exporter *e, uint64_t now_us);
void exp_ipfix_destroy(exp_ipfix **x);

int exp_kafka_create(exp_exporter *e, char *err, size_t err_len);
/* Send REC as JSON; an alert with LIFE (may be NULL) as fv_alert_to_json. */
int exp_kafka_put(exp_exporter *e, const fv_record *rec, const fv_alert_life *life);
void exp_kafka_poll(exp_exporter *e);
int exp_kafka_flush(exp_exporter *e, uint32_t timeout_ms);
void exp_kafka_destroy(exp_kafka **k);

#endif /* FV_EXP_INTERNAL_H */
