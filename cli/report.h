/*
 * report.h: compliance documents generated from the policy and the store.
 *
 * A document is built once as a small model (headings, paragraphs, list
 * items and table rows of plain text) and rendered from that model as
 * Markdown or as HTML, so both formats always say the same thing. The
 * HTML links web/report.css instead of carrying inline styles, because
 * the dashboard's Content-Security-Policy forbids inline <style>.
 *
 * Documents contain no per-person data: no pseudonym, address or host
 * name, only policy text and counts.
 */
#ifndef FV_REPORT_H
#define FV_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "store.h"

typedef enum rpt_kind {
    RPT_TITLE = 0,      /* document title (one per document) */
    RPT_HEADING = 1,    /* section heading */
    RPT_PARAGRAPH = 2,
    RPT_ITEM = 3,       /* bullet list item; consecutive items form one list */
    RPT_TABLE_HEAD = 4, /* header row; following RPT_TABLE_ROW blocks form its table */
    RPT_TABLE_ROW = 5,
} rpt_kind;

#define RPT_CELLS_MAX 8

typedef struct rpt_block {
    rpt_kind kind;
    size_t cell_count;              /* 1 except for table rows */
    char *cells[RPT_CELLS_MAX];     /* plain text, never markup */
} rpt_block;

typedef struct rpt_doc {
    rpt_block *blocks;
    size_t count, capacity;
    int failed_rc;                  /* first allocation failure, FV_OK if none */
} rpt_doc;

/* Free DOC's blocks. Accepts NULL. */
void rpt_doc_free(rpt_doc *doc);

/* Build the record of processing activities (GDPR Art. 30) from POLICY.
 * NOW_US is printed as the generation time. Returns FV_OK or FV_ERR_NOMEM. */
int rpt_processing(const pol_policy *policy, uint64_t now_us, rpt_doc *out);

/*
 * Build the transparency notice for monitored staff for the period
 * [FROM_US, TO_US]: what is collected, why and how long, and the number
 * of alerts by detector, sweeps, deleted records, exports and reveals in
 * the period. STORE may be NULL (then no counts are given). Returns
 * FV_OK, FV_ERR_NOMEM or a store error.
 */
int rpt_transparency(const pol_policy *policy, store_env *store, uint64_t from_us,
                     uint64_t to_us, uint64_t now_us, rpt_doc *out);

/* Render DOC as Markdown or as a complete HTML page that links
 * CSS_HREF (may be NULL for no stylesheet). The caller frees the result;
 * NULL when memory ran out. */
char *rpt_render_markdown(const rpt_doc *doc);
char *rpt_render_html(const rpt_doc *doc, const char *css_href);

#endif /* FV_REPORT_H */
