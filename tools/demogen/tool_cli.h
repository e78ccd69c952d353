/*
 * tool_cli.h: command-line helpers shared by the generator and scorer
 * tools (flowveil-demogen, flowveil-scengen, flowveil-score).
 */
#ifndef FV_TOOL_CLI_H
#define FV_TOOL_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Parse TEXT as a decimal unsigned integer no greater than MAX. Return 0,
 * or -1 for an empty, signed, non-numeric or too large value. */
int tool_parse_u64(const char *text, uint64_t max, uint64_t *out);

/* Print "PROGRAM: error: MESSAGE" and then the usage text (USAGE writes it
 * to the stream it is given) to stderr. Return 2, the exit status for bad
 * usage. */
__attribute__((format(printf, 3, 4))) int tool_bad_usage(const char *program,
                                                         void (*usage)(FILE *out),
                                                         const char *fmt, ...);

#endif /* FV_TOOL_CLI_H */
