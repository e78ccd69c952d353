/*
 * ingest_repeat.h: warn when `flowveil ingest` reads files that an
 * earlier ingest into the same store already read completely
 * (ingest_repeat.c).
 *
 * The resumable checkpoint (checkpoint.h) only covers an interrupted
 * run: once a run completes, its checkpoint is deleted, so running the
 * same command again stores every record a second time. The completed
 * run's "ingest" audit entry carries "input=HEX", an identity of the
 * files and the filter, and the next ingest of the same input finds it
 * and warns. It does not refuse, because ingesting a file twice on
 * purpose (a test, a changed policy) is allowed.
 */
#ifndef FV_INGEST_REPEAT_H
#define FV_INGEST_REPEAT_H

#include <stddef.h>

#include "pipeline.h"

/* Hex length of the input identity, with the NUL. */
#define FV_INGEST_INPUT_HEX_LEN 33u

/*
 * Compute the identity of the COUNT files FILES read with FILTER (may be
 * NULL) into HEX: the BLAKE2b-128 of the filter and each file's size,
 * inode number and modification time in nanoseconds, in order. Sets HEX
 * to "" when a file is standard input ("-") or cannot be examined, so
 * that no check is made.
 */
void fv_ingest_input_id(char *const *files, int count, const char *filter,
                        char hex[FV_INGEST_INPUT_HEX_LEN]);

/*
 * Search the newest audit entries of P's store for a completed "ingest"
 * of the input HEX and log a warning naming its sequence number and
 * time if one is found. Does nothing when HEX is "".
 */
void fv_ingest_repeat_warn(fv_pipeline *p, const char *hex);

#endif /* FV_INGEST_REPEAT_H */
