/*
 * alert_json.h: records as JSON for the exports, with each alert's life
 * cycle, so `flowveil export`, `flowveil subject export` and the API
 * write the same alert object.
 */
#ifndef FV_CLI_ALERT_JSON_H
#define FV_CLI_ALERT_JSON_H

#include <jansson.h>

#include "fv_common.h"
#include "store.h"

/*
 * Convert REC into a new JSON object. An alert gets its life cycle from
 * STORE, as fv_alert_to_json writes it (id string, state, count,
 * first_seen, last_seen, raised, note and so on). An alert without a
 * life-cycle entry shows as new with count 1. Other classes are
 * converted by fv_record_to_json.
 * May be called from a store_query_run callback: the life cycle is read
 * in a read transaction of its own (the store is opened with MDB_NOTLS).
 * Returns NULL when out of memory or when the store fails.
 */
json_t *cli_record_json(store_env *store, const fv_record *rec);

/* Point LIFE at the life cycle ST (which must outlive LIFE). */
void cli_alert_life_from(const store_alert_status *st, fv_alert_life *life);

#endif /* FV_CLI_ALERT_JSON_H */
