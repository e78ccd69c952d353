/*
 * Fuzz store_record_decode for every record class. Byte 0 selects the
 * class; the rest is the stored value. A value that decodes must encode
 * again, and that encoding must decode to the same encoding: the store
 * rewrites records (retention, subject deletion) this way.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store.h"

/* The class member of the record's union, which encode takes. */
static const void *record_body(const fv_record *rec)
{
    switch (rec->cls) {
    case FV_CLASS_FLOW: return &rec->u.flow;
    case FV_CLASS_DNS: return &rec->u.dns;
    case FV_CLASS_TLS: return &rec->u.tls;
    case FV_CLASS_HTTP: return &rec->u.http;
    case FV_CLASS_ALERT: return &rec->u.alert;
    case FV_CLASS_DHCP: return &rec->u.dhcp;
    case FV_CLASS_SSH: return &rec->u.ssh;
    case FV_CLASS_AGGREGATE: return &rec->u.aggregate;
    case FV_CLASS_COUNT: break;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t first[STORE_RECORD_MAX_BYTES], second[STORE_RECORD_MAX_BYTES];
    fv_record *rec, *again;
    size_t first_len = 0, second_len = 0;
    fv_class cls;

    if (size < 1)
        return 0;
    cls = (fv_class)(data[0] % FV_CLASS_COUNT);
    data++;
    size--;

    rec = calloc(1, sizeof *rec);
    again = calloc(1, sizeof *again);
    if (rec == NULL || again == NULL)
        goto out;

    if (store_record_decode(cls, data, size, rec) != FV_OK)
        goto out;
    rec->cls = cls;
    if (store_record_encode(cls, record_body(rec), first, sizeof first, &first_len) != FV_OK)
        abort();    /* decode accepted a record that encode rejects */
    if (store_record_decode(cls, first, first_len, again) != FV_OK)
        abort();    /* the encoder wrote a value the decoder rejects */
    again->cls = cls;
    if (store_record_encode(cls, record_body(again), second, sizeof second, &second_len) !=
            FV_OK ||
        second_len != first_len || memcmp(first, second, first_len) != 0)
        abort();    /* the round trip changed the record */

out:
    free(rec);
    free(again);
    return 0;
}
