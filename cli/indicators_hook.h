/*
 * indicators_hook.h: indicator matching in the capturing process.
 *
 * The lists of the policy's detect.indicators.files are matched against
 * the raw values of each record before it is pseudonymized. The values
 * are the external addresses of flows, DNS question names, answer
 * addresses and CNAME targets, TLS server names and JA3/JA4
 * fingerprints, and HTTP Host headers. A hit raises an FV_DET_INDICATOR alert through the
 * pipeline's alert callback. The alert names the host by its stored
 * (pseudonymized) endpoint, the entry by list index, type and line, and
 * never contains the raw value or an internal address.
 *
 * Caveats
 * - Single-threaded, like the pipeline.
 * - A hit of the same entry for the same host and source alerts at most
 *   once per detect.alert_window seconds of traffic time. The memory of
 *   earlier hits has FV_INDICATOR_DEDUPE_SLOTS slots; a collision only
 *   lets one more alert through.
 */
#ifndef FV_INDICATORS_HOOK_H
#define FV_INDICATORS_HOOK_H

#include <stdio.h>

#include "capture.h"
#include "fv_common.h"
#include "policy.h"

#define FV_INDICATOR_DEDUPE_SLOTS 65536u
/* Bad lines logged per list file; the rest are counted. */
#define FV_INDICATOR_ERRORS_LOGGED 20u

typedef struct fv_indicator_hook fv_indicator_hook;

typedef void (*fv_indicator_emit_fn)(void *ctx, const fv_alert_record *alert);

/*
 * Load the lists that POLICY names. With indicators off or no files,
 * store NULL in *OUT and return FV_OK (every match call accepts NULL).
 * Bad lines are logged as warnings and skipped; an unreadable file fails
 * with FV_ERR_IO and "PATH: reason" in ERR. EMIT(CTX, alert) receives
 * every hit.
 */
int fv_indicator_hook_open(const pol_policy *policy, fv_indicator_emit_fn emit, void *ctx,
                           fv_indicator_hook **out, char *err, size_t err_len);

/*
 * Load the lists of POLICY again (after a policy reload or SIGHUP) and
 * swap them in. When a file cannot be read, the error is logged and the
 * running lists stay. Returns FV_OK or the load error.
 */
int fv_indicator_hook_reload(fv_indicator_hook **hook, const pol_policy *policy,
                             fv_indicator_emit_fn emit, void *ctx);

/* Free HOOK; accepts NULL and clears *hook. */
void fv_indicator_hook_close(fv_indicator_hook **hook);

/* Match one record. RAW is the capture event, REC its stored form,
 * which supplies the pseudonymized endpoints of the alert. */
void fv_indicator_hook_flow(fv_indicator_hook *hook, const cap_flow *raw,
                            const fv_flow_record *rec);
void fv_indicator_hook_dns(fv_indicator_hook *hook, const cap_dns *raw, const fv_dns_record *rec);
void fv_indicator_hook_tls(fv_indicator_hook *hook, const cap_tls *raw, const fv_tls_record *rec);
void fv_indicator_hook_http(fv_indicator_hook *hook, const cap_http *raw,
                            const fv_http_record *rec);

/*
 * Load every indicator file POLICY names (also when detect.indicators is
 * off) into a scratch set and write one line per file to OUT: format,
 * severity and the entries loaded by type, duplicates and bad lines,
 * followed by the first MAX_ERRORS bad-line messages, or the reason the
 * file cannot be read. For `flowveil policy check`. Returns the number
 * of files that could not be read or have bad lines.
 */
size_t fv_indicator_check_files(const pol_policy *policy, FILE *out, size_t max_errors);

/* Alerts raised since open (for logs and tests). */
uint64_t fv_indicator_hook_alerts(const fv_indicator_hook *hook);

#endif /* FV_INDICATORS_HOOK_H */
