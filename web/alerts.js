// Alerts page: filters by detector, severity and state (kept in the URL
// hash), sorting within the page, and a detail dialog with the evidence,
// the flow records behind the alert and the life-cycle change
// (acknowledge, close with a note).

import {
  ApiError, PAGE_SIZE, api, currentToken, el, emptyState, endpoint, errorState, formatCount,
  loadingState, pager, protoName, request, routeHref, show, table, timeCell,
} from './lib.js';
import {COLUMNS as RECORD_COLUMNS} from './records.js';

// Detector names as the API writes them (fv_detector_name).
const DETECTORS = ['beacon', 'exfil', 'long_connection', 'baseline', 'scan', 'dns_tunnel', 'dga',
  'rare_destination', 'off_hours', 'segmentation', 'indicator'];
const SEVERITIES = ['low', 'medium', 'high', 'critical'];
const SEVERITY_RANK = {low: 1, medium: 2, high: 3, critical: 4};
const STATES = ['new', 'acknowledged', 'closed'];
const STATE_LABELS = {new: 'new', acknowledged: 'acknowledged', closed: 'closed'};

// The server's limit on a life-cycle note, in characters.
export const NOTE_MAX = 1000;

const SORTS = {
  time: {label: 'Newest raised first', compare: null},
  severity: {label: 'Severity, highest first', compare: (a, b) => (SEVERITY_RANK[b.severity] || 0) - (SEVERITY_RANK[a.severity] || 0)},
  score: {label: 'Score, highest first', compare: (a, b) => (b.score || 0) - (a.score || 0)},
};

export function stateBadge(state) {
  const value = state || 'new';
  return el('span', {class: `badge state-${value}`, text: STATE_LABELS[value] || value});
}

const COLUMNS = [
  // The traffic time, not when the alert was raised: a replayed capture
  // raises its alerts long after the activity.
  {label: 'Last activity', cell: (r) => timeCell(r.last_seen || r.last)},
  {label: 'Detector', cell: (r) => r.detector},
  {label: 'Severity', cell: (r) => el('span', {class: `badge sev-${r.severity}`, text: r.severity})},
  {label: 'Host', cell: (r) => endpoint(r, 'host')},
  {label: 'Peer', cell: (r) => endpoint(r, 'peer', r.peer_port)},
  {label: 'Score', numeric: true, cell: (r) => (typeof r.score === 'number' ? r.score.toFixed(2) : '—')},
  {label: 'State', cell: (r) => stateBadge(r.state)},
  {label: 'Summary', cell: (r) => el('span', {class: 'wrap', text: r.summary || ''})},
];

const paging = new Map();

function pagingFor(key) {
  if (!paging.has(key)) paging.set(key, {history: [], cursor: null});
  return paging.get(key);
}

function select(id, label, name, options, value) {
  return el('div', {class: 'field'}, el('label', {for: id, text: label}),
    el('select', {id, name},
      ...options.map(([v, t]) => el('option', {value: v, selected: v === (value || ''), text: t}))));
}

function filterForm(params) {
  const form = el('form', {class: 'filters', 'aria-label': 'Filter alerts'},
    select('alert-detector', 'Detector', 'detector', [['', 'any'], ...DETECTORS.map((d) => [d, d])], params.detector),
    select('alert-severity', 'Severity', 'severity', [['', 'any'], ...SEVERITIES.map((s) => [s, s])], params.severity),
    select('alert-state', 'State', 'state', [['', 'any'], ...STATES.map((s) => [s, s])], params.state),
    select('alert-sort', 'Sort', 'sort', Object.entries(SORTS).map(([k, s]) => [k === 'time' ? '' : k, s.label]), params.sort),
    el('div', {class: 'field field-buttons'},
      el('button', {type: 'submit', text: 'Apply'}),
      el('button', {type: 'button', class: 'secondary', text: 'Clear', onclick: () => { location.hash = routeHref('alerts'); }})));
  // Applied on submit only: applying on change would re-render the page
  // at each arrow key in a select and lose the keyboard focus.
  const apply = (event) => {
    event.preventDefault();
    const next = {};
    for (const name of ['detector', 'severity', 'state', 'sort']) {
      if (form.elements[name].value) next[name] = form.elements[name].value;
    }
    location.hash = routeHref('alerts', next);
  };
  form.addEventListener('submit', apply);
  return form;
}

// Render the Alerts page with the filters in PARAMS (from the hash).
export async function renderAlerts(token, params = {}) {
  const filters = {};
  for (const name of ['detector', 'severity', 'state']) if (params[name]) filters[name] = params[name];
  const sort = SORTS[params.sort] ? params.sort : 'time';
  const key = new URLSearchParams(filters).toString();
  const state = pagingFor(key);
  const title = el('h2', {text: 'Alerts'});
  const form = filterForm(params);
  show(token, title, form, loadingState());

  let page;
  try {
    page = await api('alerts', {...filters, limit: PAGE_SIZE, cursor: state.cursor});
  } catch (err) {
    show(token, title, form, errorState(err, () => renderAlerts(currentToken(), params)));
    return;
  }
  const records = [...(page.records || [])];
  if (SORTS[sort].compare) records.sort(SORTS[sort].compare);

  const nav = pager(state, page.next_cursor,
    `${records.length} alert${records.length === 1 ? '' : 's'} on this page, ${SORTS[sort].label.toLowerCase()}`,
    () => renderAlerts(currentToken(), params));
  if (records.length === 0) {
    let text = 'No alerts yet.';
    if (state.history.length) text = 'No older alerts.';
    else if (Object.keys(filters).length) text = 'No alerts match these filters.';
    show(token, title, form, emptyState(text), state.history.length ? nav : null);
    return;
  }

  const tbl = table('Alerts', COLUMNS, records, (tr, rec) => attachDetails(tr, rec));
  tbl.querySelector('thead tr').append(el('th', {scope: 'col'}, el('span', {class: 'visually-hidden', text: 'Details'})));
  show(token, title, form, tbl, nav);
}

// Give an alert row a Details button; a click anywhere on the row opens
// the dialog too.
function attachDetails(tr, rec) {
  const button = el('button', {type: 'button', class: 'link-button', 'aria-haspopup': 'dialog', text: 'Details'});
  const open = () => openAlertDialog(rec, button, (updated) => {
    Object.assign(rec, updated);
    const stateCell = tr.children[COLUMNS.findIndex((c) => c.label === 'State')];
    stateCell.replaceChildren(stateBadge(rec.state));
  });
  button.addEventListener('click', (event) => {
    event.stopPropagation();
    open();
  });
  tr.classList.add('clickable');
  tr.addEventListener('click', (event) => {
    // Host links in the row navigate; only other clicks open the dialog.
    if (event.target.closest('a')) return;
    open();
  });
  tr.append(el('td', {}, button));
}

function formatEvidence(value) {
  if (typeof value === 'number') return value.toLocaleString(undefined, {maximumFractionDigits: 3});
  return String(value);
}

function factList(items) {
  const list = el('dl', {class: 'details'});
  for (const [term, value] of items) {
    if (value === null || value === undefined) continue;
    list.append(el('dt', {text: term}), el('dd', {}, value));
  }
  return list;
}

// The facts of alert REC: time span, counts, life cycle.
function alertFacts(rec) {
  return factList([
    ['Activity from', timeCell(rec.first_seen || rec.first)],
    ['Activity until', timeCell(rec.last_seen || rec.last)],
    ['First raised', timeCell(rec.raised || rec.ts)],
    ['Last raised', rec.count > 1 ? timeCell(rec.ts) : null],
    ['Times raised', rec.count !== undefined ? formatCount(rec.count) : null],
    ['Flows', formatCount(rec.flow_count)],
    ['Protocol', protoName(rec.proto)],
    ['State', stateBadge(rec.state)],
    ['Changed by', rec.state_changed_by ? rec.state_changed_by : null],
    ['Changed at', rec.state_changed_at ? timeCell(rec.state_changed_at) : null],
    ['Note', rec.note ? el('span', {class: 'wrap note', text: rec.note}) : null],
  ]);
}

function evidenceList(rec) {
  const entries = Object.entries(rec.evidence || {});
  if (entries.length === 0) return emptyState('This alert carries no evidence values.');
  return factList(entries.map(([name, value]) => [name.replace(/_/g, ' '), formatEvidence(value)]));
}

// The flow records the alert rests on, from GET /alerts/{id}.
async function loadRecords(rec, slot) {
  let reply;
  try {
    reply = await api(`alerts/${encodeURIComponent(String(rec.id))}`);
  } catch (err) {
    slot.replaceChildren(errorState(err, () => loadRecords(rec, slot)));
    return null;
  }
  const records = reply.records || [];
  slot.replaceChildren(records.length
    ? table('Flow records behind the alert', RECORD_COLUMNS.flows, records)
    : emptyState('No flow record of this host and peer is stored for the alert\'s time span (retention may have removed them).'));
  return reply.alert || null;
}

// The life-cycle form: the next state and a note. A closed alert takes
// no further change.
function actionForm(rec, onSaved) {
  const current = rec.state || 'new';
  if (current === 'closed') {
    return el('p', {class: 'muted', text: 'This alert is closed; it takes no further change.'});
  }
  const choices = current === 'new' ? ['acknowledged', 'closed'] : ['closed'];
  const message = el('p', {class: 'form-message', role: 'status'});
  const note = el('textarea', {id: 'alert-note', name: 'note', rows: 3, maxlength: NOTE_MAX,
    'aria-describedby': 'alert-note-help'});
  const radios = choices.map((value, i) => el('label', {class: 'choice'},
    el('input', {type: 'radio', name: 'next', value, checked: i === 0}),
    value === 'acknowledged' ? ' Acknowledge' : ' Close'));
  const save = el('button', {type: 'submit', text: 'Save'});
  const form = el('form', {class: 'alert-action'},
    el('fieldset', {}, el('legend', {text: 'Change state'}), ...radios),
    el('label', {for: 'alert-note', text: 'Note'}),
    note,
    el('p', {id: 'alert-note-help', class: 'muted', text: `Required to close, at most ${NOTE_MAX} characters. Ctrl+Enter saves.`}),
    el('div', {class: 'dialog-buttons'}, save),
    message);

  note.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const next = form.elements.next.value;
    const text = note.value.trim();
    message.classList.remove('error');
    // The confirmation of an earlier change would contradict what this
    // attempt reports.
    if (form.parentElement) {
      for (const done of form.parentElement.querySelectorAll(':scope > .form-message.ok')) done.remove();
    }
    if (next === 'closed' && text === '') {
      message.classList.add('error');
      message.textContent = 'Write a note before closing the alert: why it is closed.';
      note.focus();
      return;
    }
    save.disabled = true;
    message.textContent = 'Saving…';
    try {
      const body = {state: next};
      if (text !== '') body.note = text;
      const reply = await request(`alerts/${encodeURIComponent(String(rec.id))}`, {method: 'PATCH', body});
      const updated = reply && reply.alert ? reply.alert : reply;
      onSaved(updated || {state: next, note: text});
    } catch (err) {
      save.disabled = false;
      message.classList.add('error');
      message.textContent = saveErrorText(err);
    }
  });
  return form;
}

function saveErrorText(err) {
  if (err instanceof ApiError) {
    if (err.code === 'invalid_transition') return `The change was rejected: ${err.message}. Reload the alerts; someone may have changed it.`;
    if (err.status === 403 && err.code === 'csrf_required') return 'The change was rejected because the session token is stale; reload the page and try again.';
    if (err.status === 403) return 'Your role may not change alerts.';
  }
  return `Saving failed: ${err.message}`;
}

// Open the modal detail dialog of alert REC. Escape or the Close button
// closes it and gives the focus back to OPENER. ONCHANGE receives the
// updated alert after a saved change.
function openAlertDialog(rec, opener, onChange) {
  const headingId = 'alert-dialog-title';
  const dialog = el('dialog', {class: 'alert-dialog', 'aria-labelledby': headingId});
  const recordsSlot = el('div', {class: 'alert-records'}, loadingState('Loading the flow records…'));
  const actionSlot = el('section', {class: 'alert-actions', 'aria-label': 'Change state'});
  const factsSlot = el('div', {}, alertFacts(rec));

  const fill = (current) => {
    factsSlot.replaceChildren(alertFacts(current));
    actionSlot.replaceChildren(actionForm(current, (updated) => {
      Object.assign(current, updated);
      onChange(current);
      fill(current);
      const done = el('p', {class: 'form-message ok', role: 'status', text: `Saved: the alert is ${current.state}.`});
      actionSlot.append(done);
      done.setAttribute('tabindex', '-1');
      done.focus();
    }));
  };

  dialog.append(
    el('div', {class: 'dialog-head'},
      el('h3', {id: headingId, text: `${rec.detector} alert`}),
      el('button', {type: 'button', class: 'secondary dialog-close', text: 'Close dialog', onclick: () => dialog.close()})),
    el('p', {class: 'wrap', text: rec.summary || ''}),
    el('p', {}, 'Host ', endpoint(rec, 'host'), ', peer ', endpoint(rec, 'peer', rec.peer_port)),
    factsSlot,
    el('h4', {text: 'Life cycle'}),
    actionSlot,
    el('h4', {text: 'Evidence'}),
    evidenceList(rec),
    el('h4', {text: 'Flow records'}),
    recordsSlot);
  fill(rec);

  // A host link inside the dialog navigates away; close the dialog first.
  dialog.addEventListener('click', (event) => {
    if (event.target.closest('a[href^="#/"]')) dialog.close();
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();

  loadRecords(rec, recordsSlot).then((fresh) => {
    // The single-alert route has the current life-cycle fields.
    if (fresh && dialog.open) {
      Object.assign(rec, fresh);
      fill(rec);
    }
  });
}
