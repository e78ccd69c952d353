/*
 * pipeline_export.h: the capturing process's hand-off to the export
 * destinations of the policy (export/export.h).
 *
 * Records are handed over right after store_put accepted them, so only
 * what the policy lets into the store can leave: classes switched off,
 * excluded and aggregate-only hosts, closed monitoring windows and
 * never-record names are filtered before this point.
 */
#ifndef FV_PIPELINE_EXPORT_H
#define FV_PIPELINE_EXPORT_H

#include "pipeline.h"

/*
 * Create one exporter per destination of the policy's export section
 * into P->exports (left NULL when there is none). A destination whose
 * configuration librdkafka or libfixbuf rejects fails the start with
 * FV_ERR_INVALID and a message in ERR; an IPFIX collector that cannot
 * be reached is logged and left out, so capture starts anyway.
 * NOTE: the destinations and the retention limits they send are read
 * here only; a policy reload does not change them until the next start.
 */
int fv_pipeline_export_open(fv_pipeline *p, char *err, size_t err_len);

/* Hand the record REC of class CLS, stored at NOW_US, to every
 * destination. Never waits for the network. */
void fv_pipeline_export(fv_pipeline *p, fv_class cls, const void *rec, uint64_t now_us);

/*
 * Hand alert ID (as store_alert_upsert returned it) to every destination
 * with its life cycle as stored at NOW_US, so Kafka receives the object
 * the API shows. A raise merged into an earlier
 * alert is sent again under that alert's id with the new count and
 * last_seen; consumers keep the newest object per id. Never waits for
 * the network.
 */
void fv_pipeline_export_alert(fv_pipeline *p, uint64_t id, uint64_t now_us);

/* Periodic work: delivery reports, pending IPFIX messages, template
 * refresh, and once a minute the export counters into the store. */
void fv_pipeline_export_tick(fv_pipeline *p, uint64_t now_us);

/* Send what is pending, wait up to 5 seconds for Kafka
 * acknowledgements, log the counters and free everything. */
void fv_pipeline_export_close(fv_pipeline *p);

#endif /* FV_PIPELINE_EXPORT_H */
