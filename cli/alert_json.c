/*
 * alert_json.c: records as JSON for the exports. See alert_json.h.
 */
#include "alert_json.h"

#include <stdlib.h>

void cli_alert_life_from(const store_alert_status *st, fv_alert_life *life)
{
    *life = (fv_alert_life){
        .id = st->id,
        .state = store_alert_state_name(st->state),
        .count = st->count,
        .first_seen_us = st->first_seen_us,
        .last_seen_us = st->last_seen_us,
        .changed_us = st->changed_us,
        .changed_by = st->changed_by,
        .note = st->note,
        .newest = &st->newest,
    };
}

json_t *cli_record_json(store_env *store, const fv_record *rec)
{
    if (rec->cls != FV_CLASS_ALERT || store == NULL)
        return fv_record_to_json(rec);

    /* Several KB with the note and the newest raise: kept off the stack
     * of the query callback. */
    store_alert_status *st = malloc(sizeof *st);
    if (st == NULL)
        return NULL;
    json_t *obj = NULL;
    if (store_alert_status_get(store, &rec->id, &rec->u.alert, 1, st) == FV_OK) {
        fv_alert_life life;
        cli_alert_life_from(st, &life);
        obj = fv_alert_to_json(rec, &life);
    }
    free(st);
    return obj;
}
