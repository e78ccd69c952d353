// Retention, Compliance and Audit pages: retention status per class
// with warnings, the deletion history from the audit trail, the policy
// summary with the generated documents, and the audit trail itself.

import {
  ApiError, CLASS_LABELS, PAGE_SIZE, api, currentToken, el, emptyState, errorState, formatBytes,
  formatCount, formatDuration, isCurrent, loadingState, session, show, table, timeCell,
} from './lib.js';

// ---- retention -----------------------------------------------------------

export async function renderRetention(token) {
  const title = el('h2', {text: 'Retention'});
  show(token, title, loadingState());

  let status;
  try {
    status = await api('retention');
  } catch (err) {
    show(token, title, errorState(err, () => renderRetention(currentToken())));
    return;
  }

  const columns = [
    {label: 'Class', cell: (c) => CLASS_LABELS[c.class] || c.class},
    {label: 'Limit', cell: (c) => formatDuration(c.retention_s)},
    {label: 'Records', numeric: true, cell: (c) => formatCount(c.records)},
    {label: 'Stored size', numeric: true, cell: (c) => formatBytes(c.bytes)},
    {label: 'Oldest stored', cell: (c) => timeCell(c.oldest_stored)},
    {label: 'Last sweep', cell: (c) => (c.last_sweep ? timeCell(c.last_sweep) : el('span', {class: 'muted', text: 'never'}))},
    {label: 'Deleted by last sweep', numeric: true, cell: (c) => formatCount(c.last_sweep_deleted)},
    {label: 'Next sweep', cell: (c) => (c.next_sweep ? timeCell(c.next_sweep) : el('span', {class: 'muted', text: 'unknown'}))},
    {label: 'State', cell: (c) => (c.state === 'warning'
      ? el('span', {class: 'badge sev-high', title: 'Records past the limit are never shown, even before the sweep', text: `warning: ${retentionReasons(c)}`})
      : el('span', {class: 'badge ok', text: 'ok'}))},
  ];
  const classes = status.classes || [];
  const note = el('p', {class: 'muted', text: 'Retention age counts from when flowveil stored a record, not from the traffic time.'});
  const history = el('section', {class: 'retention-history'},
    el('h3', {text: 'Deletion history'}), loadingState('Loading deletion history…'));
  const warned = classes.filter((c) => c.state === 'warning');
  const banner = warned.length
    ? el('div', {class: 'state state-warning retention-warning', role: 'alert'},
      el('p', {text: `${warned.length} class${warned.length === 1 ? ' needs' : 'es need'} attention: ${warned.map((c) => `${CLASS_LABELS[c.class] || c.class} (${retentionReasons(c)})`).join('; ')}.`}),
      el('p', {text: 'Check that the sweeper runs: "flowveil capture" sweeps every sweep_interval of the policy, and "flowveil sweep" runs a sweep by hand.'}))
    : null;
  show(token, title, banner, classes.length ? table('Retention per class', columns, classes) : emptyState('No retention data.'), note, history);

  // The history comes from the audit trail, which only the compliance
  // and admin roles may read. The route table always denies analysts, so
  // their page does not send a request that every denial adds to the
  // audit trail. A policy can still deny a compliance user: then the 403
  // gets the same note.
  const auditDenied = () => history.replaceChildren(el('h3', {text: 'Deletion history'}),
    el('p', {class: 'state state-forbidden', text: 'The deletion history comes from the audit trail, which needs the compliance role.'}));
  if (session.role === 'analyst') {
    auditDenied();
    return;
  }
  let found;
  try {
    found = await loadDeletions();
  } catch (err) {
    if (!isCurrent(token)) return;
    if (err instanceof ApiError && err.status === 403) {
      auditDenied();
    } else {
      history.replaceChildren(el('h3', {text: 'Deletion history'}), errorState(err, () => renderRetention(currentToken())));
    }
    return;
  }
  if (!isCurrent(token)) return;
  history.replaceChildren(el('h3', {text: 'Deletion history'}), ...deletionNodes(found));
}

// Audit actions that delete records, with their labels.
const DELETION_ACTIONS = {'retention.sweep': 'Retention sweep', 'subject.erase': 'Subject erasure'};
const DELETIONS_SHOWN = 10;

// Audit entries read when looking for deletions: pages of 1000, newest
// first. The API has no action filter, so the scan stops after
// DELETION_SCAN_PAGES pages even if fewer than DELETIONS_SHOWN were found.
const DELETION_SCAN_PAGE = 1000;
const DELETION_SCAN_PAGES = 5;

async function loadDeletions() {
  const entries = [];
  let cursor = null;
  let scanned = 0;
  let complete = true;
  for (let i = 0; i < DELETION_SCAN_PAGES && entries.length < DELETIONS_SHOWN; i++) {
    const page = await api('audit', {limit: DELETION_SCAN_PAGE, cursor});
    for (const e of page.entries || []) {
      scanned += 1;
      if (DELETION_ACTIONS[e.action] && entries.length < DELETIONS_SHOWN) entries.push(e);
    }
    cursor = page.next_cursor;
    if (!cursor) break;
    if (i === DELETION_SCAN_PAGES - 1) complete = false;
  }
  return {entries, scanned, complete};
}

// Per-class deleted counts from an entry's params: the class names (and
// "audit" for pruned audit entries) map to counts; other keys, such as
// "at" (the sweep time) and "complete", are left out or flagged.
function deletedCounts(e) {
  const parts = [];
  let incomplete = false;
  for (const [key, value] of auditParams(e.params)) {
    if (key === 'complete') {
      incomplete = value === 'false';
      continue;
    }
    if (key === 'at') continue;
    const n = Number(value);
    const extraLabels = {audit: 'Audit entries', escrow: 'Escrow entries', keys: 'Day keys'};
    if (CLASS_LABELS[key] || extraLabels[key]) {
      if (Number.isFinite(n) && n > 0) parts.push(`${CLASS_LABELS[key] || extraLabels[key]} ${formatCount(n)}`);
    } else {
      parts.push(value === '' ? key : `${key}=${value}`);
    }
  }
  return {text: parts.length ? parts.join(', ') : 'nothing deleted', incomplete};
}

function deletionNodes({entries, scanned, complete}) {
  const scope = complete
    ? `Searched all ${formatCount(scanned)} audit entries.`
    : `Searched the newest ${formatCount(scanned)} audit entries; older deletions are in the Audit page.`;
  if (entries.length === 0) {
    return [emptyState('No retention sweep or erasure is recorded in the audit trail yet.'), el('p', {class: 'muted', text: scope})];
  }
  const columns = [
    {label: 'Time', cell: (e) => timeCell(e.time)},
    {label: 'Action', cell: (e) => DELETION_ACTIONS[e.action]},
    {label: 'Actor', cell: (e) => e.actor || '—'},
    {label: 'Deleted per class', cell: (e) => {
      const {text, incomplete} = deletedCounts(e);
      return el('span', {class: 'wrap'}, text, incomplete ? ' ' : null,
        incomplete ? el('span', {class: 'badge sev-medium', title: 'The sweep stopped at its time budget; the next sweep continues.', text: 'incomplete'}) : null);
    }},
    {label: 'Total', numeric: true, cell: (e) => formatCount(e.result_count)},
  ];
  return [
    table('Deletion history', columns, entries),
    el('p', {class: 'muted', text: `The latest ${entries.length === 1 ? 'deletion' : `${entries.length} deletions`} from the audit trail, newest first. ${scope}`}),
  ];
}

function retentionReasons(c) {
  const texts = {
    expired_pending: `${formatCount(c.expired_pending)} expired awaiting sweep`,
    sweep_overdue: 'sweep overdue (last sweep older than twice the interval)',
    never_swept: 'never swept, records older than the sweep interval',
  };
  return (c.reasons || ['expired_pending']).map((r) => texts[r] || r).join('; ');
}

// ---- compliance ----------------------------------------------------------

// Builds DOM nodes from the document model with textContent only, so no
// text from the policy is ever parsed as HTML.
function documentNodes(blocks) {
  const nodes = [];
  let list = null;
  let tbody = null;
  for (const block of blocks || []) {
    const cells = block.cells || [];
    if (block.kind !== 'item') list = null;
    if (block.kind !== 'row') tbody = block.kind === 'head' ? tbody : null;
    if (block.kind === 'title') nodes.push(el('h3', {text: cells[0]}));
    else if (block.kind === 'heading') nodes.push(el('h4', {text: cells[0]}));
    else if (block.kind === 'paragraph') nodes.push(el('p', {text: cells[0]}));
    else if (block.kind === 'item') {
      if (!list) { list = el('ul'); nodes.push(list); }
      list.append(el('li', {text: cells[0]}));
    } else if (block.kind === 'head') {
      tbody = el('tbody');
      nodes.push(el('div', {class: 'table-wrap'}, el('table', {},
        el('thead', {}, el('tr', {}, ...cells.map((c) => el('th', {scope: 'col', text: c})))), tbody)));
    } else if (block.kind === 'row' && tbody) {
      tbody.append(el('tr', {}, ...cells.map((c) => el('td', {text: c}))));
    }
  }
  return nodes;
}

function downloadLinks(name, doc) {
  const md = URL.createObjectURL(new Blob([doc.markdown], {type: 'text/markdown'}));
  const html = URL.createObjectURL(new Blob([doc.html], {type: 'text/html'}));
  return el('p', {},
    el('a', {href: md, download: `${name}.md`, text: 'Download Markdown'}), ' · ',
    el('a', {href: html, download: `${name}.html`, text: 'Download HTML'}));
}

export async function renderCompliance(token) {
  const title = el('h2', {text: 'Compliance'});
  show(token, title, loadingState());
  const to = new Date();
  const from = new Date(to.getTime() - 30 * 86400 * 1000);
  let policy, processing, transparency;
  try {
    [policy, processing, transparency] = await Promise.all([
      api('policy'),
      api('reports/processing'),
      api('reports/transparency', {from: from.toISOString().replace(/\.\d+Z$/, 'Z'), to: to.toISOString().replace(/\.\d+Z$/, 'Z')}),
    ]);
  } catch (err) {
    show(token, title, errorState(err, () => renderCompliance(currentToken())));
    return;
  }
  show(token, title,
    el('section', {class: 'compliance-policy'},
      el('h3', {text: 'Policy'}),
      el('p', {class: 'muted', text: `Policy hash ${policy.hash}`}),
      el('pre', {text: policy.summary})),
    el('section', {class: 'compliance-report'}, downloadLinks('record-of-processing', processing), ...documentNodes(processing.blocks)),
    el('section', {class: 'compliance-report'}, el('p', {class: 'muted', text: 'Transparency notice for the last 30 days'}),
      downloadLinks('transparency-notice', transparency), ...documentNodes(transparency.blocks)));
}

// ---- audit trail ---------------------------------------------------------

// Split an audit entry's params ("key=value&key=value") into pairs. The
// server copies query values as received, so a value may hold any
// printable text; it is only ever shown through textContent.
function auditParams(text) {
  if (typeof text !== 'string' || text === '') return [];
  return text.split('&').map((pair) => {
    const at = pair.indexOf('=');
    return at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
  });
}

function paramsCell(text) {
  const pairs = auditParams(text);
  if (pairs.length === 0) return el('span', {class: 'muted', text: '—'});
  return el('span', {class: 'params'},
    ...pairs.map(([key, value]) => el('span', {class: 'param mono', text: value === '' ? key : `${key}=${value}`})));
}

const AUDIT_COLUMNS = [
  {label: 'Seq', numeric: true, cell: (e) => el('span', {class: 'mono', title: e.hash ? `hash ${e.hash}` : null, text: String(e.seq)})},
  {label: 'Time', cell: (e) => timeCell(e.time)},
  {label: 'Actor', cell: (e) => el('span', {title: e.role ? `role: ${e.role}` : null, text: e.actor || '—'})},
  {label: 'Action', cell: (e) => el('span', {class: 'mono', title: e.reason ? `reason: ${e.reason}` : null, text: e.action || '—'})},
  {label: 'Object', cell: (e) => el('span', {class: 'mono wrap', text: e.object || '—'})},
  {label: 'Params', cell: (e) => paramsCell(e.params)},
  {label: 'Result count', numeric: true, cell: (e) => formatCount(e.result_count)},
];

// Paging and filter state of the Audit page, in memory only, like the
// record explorers.
const auditState = {history: [], cursor: null, action: ''};

// The hash chain check, shown above the table. A server without the
// verify route answers 404; the page then says so instead of failing.
function verifyStatus(result, error) {
  const box = el('section', {class: 'audit-verify', 'aria-label': 'Hash chain verification'});
  if (error) {
    box.append(el('p', {class: 'muted', text: `Chain verification not available: ${error.message}`}));
    return box;
  }
  const head = result.head_hash || '';
  if (result.ok) {
    box.append(el('p', {},
      el('span', {class: 'badge ok', text: 'chain intact'}),
      ` ${formatCount(result.checked)} entr${result.checked === 1 ? 'y' : 'ies'} checked; head hash `,
      el('span', {class: 'mono', title: head, text: head.slice(0, 16) + (head.length > 16 ? '…' : '')})));
    box.append(el('p', {class: 'muted', text: 'Keep a copy of the head hash elsewhere: a chain rewritten as a whole verifies too, but its head hash changes.'}));
  } else {
    box.append(el('p', {role: 'alert'},
      el('span', {class: 'badge sev-critical', text: 'chain broken'}),
      ` at entry ${result.broken_seq}: ${result.reason || 'no reason given'} (${formatCount(result.checked)} entries checked before it).`));
  }
  return box;
}

export async function renderAudit(token) {
  const state = auditState;
  const title = el('h2', {text: 'Audit trail'});
  show(token, title, loadingState());

  let page;
  let verify = null;
  let verifyError = null;
  try {
    [page, verify] = await Promise.all([
      api('audit', {limit: PAGE_SIZE, cursor: state.cursor}),
      api('audit/verify').catch((err) => {
        verifyError = err;
        return null;
      }),
    ]);
  } catch (err) {
    show(token, title, errorState(err, () => renderAudit(currentToken())));
    return;
  }

  const entries = page.entries || [];
  const newer = el('button', {type: 'button', text: '← Newer', disabled: state.history.length === 0,
    onclick: () => {
      state.cursor = state.history.pop() ?? null;
      renderAudit(currentToken());
    }});
  const older = el('button', {type: 'button', text: 'Older →', disabled: !page.next_cursor,
    onclick: () => {
      state.history.push(state.cursor);
      state.cursor = page.next_cursor;
      renderAudit(currentToken());
    }});
  const pageNote = el('span', {class: 'muted'});
  const pager = el('div', {class: 'pager'}, newer, pageNote, older);
  const status = verifyStatus(verify, verifyError);

  if (entries.length === 0) {
    const empty = state.history.length === 0 ? emptyState('No audit entries yet.') : emptyState('No older entries.');
    show(token, title, status, empty, state.history.length ? pager : null);
    return;
  }

  // The filter lists the actions on this page, plus the chosen one so
  // that it stays selected on a page without it.
  const actions = [...new Set(entries.map((e) => e.action))];
  if (state.action && !actions.includes(state.action)) actions.push(state.action);
  actions.sort();
  const select = el('select', {id: 'audit-action'},
    el('option', {value: '', text: 'All actions'}),
    ...actions.map((a) => el('option', {value: a, selected: a === state.action, text: a})));
  const filter = el('div', {class: 'filter'},
    el('label', {for: 'audit-action', text: 'Action on this page'}), select);

  const tableSlot = el('div', {class: 'audit-table'});
  const fill = () => {
    const shown = state.action ? entries.filter((e) => e.action === state.action) : entries;
    pageNote.textContent = state.action
      ? `${shown.length} of ${entries.length} entries on this page, newest first`
      : `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} on this page, newest first`;
    tableSlot.replaceChildren(shown.length
      ? table('Audit entries', AUDIT_COLUMNS, shown)
      : emptyState(`No "${state.action}" entries on this page; try Older or All actions.`));
  };
  select.addEventListener('change', () => {
    state.action = select.value;
    fill();
  });
  fill();
  show(token, title, status, filter, tableSlot, pager);
}

