/*
 * Fuzz store_audit_decode. An entry that decodes must encode again, the
 * encoding must decode to the same entry, and the entry must hash,
 * because store_audit_verify recomputes every hash from the decoded form.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t encoded[STORE_AUDIT_ENTRY_MAX_BYTES];
    store_audit_entry *entry, *again;
    uint8_t hash[32];
    size_t written = 0;

    entry = calloc(1, sizeof *entry);
    again = calloc(1, sizeof *again);
    if (entry == NULL || again == NULL)
        goto out;

    if (store_audit_decode(data, size, entry) != FV_OK)
        goto out;
    if (store_audit_encode(entry, encoded, sizeof encoded, &written) != FV_OK)
        abort();    /* decode accepted an entry that encode rejects */
    if (store_audit_decode(encoded, written, again) != FV_OK)
        abort();    /* the encoder wrote bytes the decoder rejects */
    if (memcmp(entry, again, sizeof *entry) != 0)
        abort();    /* the round trip changed the entry */
    if (store_audit_hash(entry, hash) != FV_OK)
        abort();

out:
    free(entry);
    free(again);
    return 0;
}
