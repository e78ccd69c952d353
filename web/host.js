// Host timeline: every stored record of one pseudonym, all classes, in
// time order, from GET /api/v1/hosts/{token}/timeline.

import {
  CLASS_LABELS, PAGE_SIZE, api, currentToken, el, emptyState, endpoint, errorState, formatBytes,
  isPseudonym, isoSeconds, loadingState, localInputValue, pager, protoName, show, table, timeCell,
} from './lib.js';

const paging = new Map();

function pagingFor(key) {
  if (!paging.has(key)) paging.set(key, {history: [], cursor: null});
  return paging.get(key);
}

// A one-line description of record REC of class CLS, seen from HOST:
// the other endpoint as a node and what happened as text.
function describe(cls, rec, host) {
  const side = (a, b) => (rec[a] === host ? b : a);
  switch (cls) {
    case 'flows': {
      const other = side('src', 'dst');
      const port = other === 'src' ? rec.sport : rec.dport;
      const bytes = (rec.bytes_fwd || 0) + (rec.bytes_rev || 0);
      return [endpoint(rec, other, port), `${protoName(rec.proto)} flow, ${formatBytes(bytes)}${rec.app ? `, ${rec.app}` : ''}`];
    }
    case 'dns':
      return [endpoint(rec, side('client', 'server'), rec.server_port), `DNS ${rec.type || 'message'} ${rec.qname || ''}`.trim()];
    case 'tls':
      return [endpoint(rec, side('client', 'server'), rec.server_port), `TLS handshake${rec.sni ? `, SNI ${rec.sni}` : ''}`];
    case 'http':
      return [endpoint(rec, side('client', 'server'), rec.server_port), `HTTP ${rec.method || ''} ${rec.host || ''}`.trim()];
    case 'dhcp':
      return [endpoint(rec, side('client', 'server'), rec.server_port), `DHCP ${rec.hostname ? `host name ${rec.hostname}` : 'message'}`];
    case 'ssh':
      return [endpoint(rec, side('client', 'server'), rec.server_port), `SSH ${rec.client_banner || ''}`.trim()];
    case 'alerts':
      return [endpoint(rec, 'peer', rec.peer_port), `${rec.severity || ''} ${rec.detector || ''} alert: ${rec.summary || ''}`.trim()];
    default:
      return [el('span', {class: 'muted', text: '—'}), ''];
  }
}

const COLUMNS = (host) => [
  {label: 'Time', cell: (e) => timeCell(e.ts)},
  {label: 'Class', cell: (e) => el('span', {class: `badge class-${e.class}`, text: CLASS_LABELS[e.class] || e.class})},
  {label: 'Other side', cell: (e) => describe(e.class, e.record || {}, host)[0]},
  {label: 'What', cell: (e) => el('span', {class: 'wrap', text: describe(e.class, e.record || {}, host)[1]})},
];

function rangeForm(host, params) {
  const form = el('form', {class: 'filters', 'aria-label': 'Time range'},
    el('div', {class: 'field'}, el('label', {for: 'host-from', text: 'From'}),
      el('input', {id: 'host-from', name: 'from', type: 'datetime-local', value: localInputValue(params.from)})),
    el('div', {class: 'field'}, el('label', {for: 'host-to', text: 'To'}),
      el('input', {id: 'host-to', name: 'to', type: 'datetime-local', value: localInputValue(params.to)})),
    el('div', {class: 'field field-buttons'}, el('button', {type: 'submit', text: 'Apply'})));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const name of ['from', 'to']) {
      const date = new Date(form.elements[name].value);
      if (form.elements[name].value && !Number.isNaN(date.getTime())) query.set(name, isoSeconds(date));
    }
    const qs = query.toString();
    location.hash = `#/host/${encodeURIComponent(host)}${qs ? `?${qs}` : ''}`;
  });
  return form;
}

// Render the timeline of pseudonym HOST with the time range in PARAMS.
export async function renderHost(token, host, params = {}) {
  const title = el('h2', {}, 'Host ', el('span', {class: 'mono', text: host || '?'}));
  if (!isPseudonym(host)) {
    show(token, el('h2', {text: 'Host timeline'}),
      emptyState('Open a host from a table: click any host pseudonym (ip4-…, ip6-… or mac-…) on the Alerts or Flows pages.'));
    return;
  }
  const range = {};
  for (const name of ['from', 'to']) if (params[name]) range[name] = params[name];
  const state = pagingFor(`${host}?${new URLSearchParams(range).toString()}`);
  const form = rangeForm(host, range);
  const intro = el('p', {class: 'muted', text: 'Every stored record of this pseudonym, all classes, in time order. The pseudonym changes at each key rotation, so earlier epochs are not linked.'});
  show(token, title, intro, form, loadingState());

  let page;
  try {
    page = await api(`hosts/${encodeURIComponent(host)}/timeline`, {...range, limit: PAGE_SIZE, cursor: state.cursor});
  } catch (err) {
    show(token, title, intro, form, errorState(err, () => renderHost(currentToken(), host, params)));
    return;
  }
  const events = page.events || [];
  const nav = pager(state, page.next_cursor, `${events.length} event${events.length === 1 ? '' : 's'} on this page`,
    () => renderHost(currentToken(), host, params));
  if (events.length === 0) {
    show(token, title, intro, form,
      emptyState(state.history.length ? 'No further events.' : 'No stored record of this host in this time range.'),
      state.history.length ? nav : null);
    return;
  }
  show(token, title, intro, form, table(`Timeline of ${host}`, COLUMNS(host), events), nav);
}
