// Shared helpers of the flowveil dashboard: DOM building, the API client,
// formatting, tables and the page-token guard.
//
// Rules every dashboard module keeps:
// - DOM nodes are built with createElement and textContent, never
//   innerHTML, so record fields (names, summaries) cannot inject markup.
// - No inline scripts or style attributes (the server's CSP forbids them)
//   and no request to any other origin.
// - Times are shown in the browser's time zone, with the UTC value in a
//   title attribute.

export const API = '/api/v1/';
export const PAGE_SIZE = 50;

export const CLASS_LABELS = {flows: 'Flows', dns: 'DNS', tls: 'TLS', http: 'HTTP', alerts: 'Alerts',
  dhcp: 'DHCP', ssh: 'SSH', aggregates: 'Aggregates'};
export const PROTOCOLS = {1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP'};

// ---- DOM helpers -----------------------------------------------------

// Create element TAG with ATTRS (plain attributes, plus "text" for
// textContent and "on" + event name for listeners) and CHILDREN (nodes,
// strings, or null to skip).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function view() {
  return document.getElementById('view');
}

// ---- page tokens ---------------------------------------------------------

// Incremented on every navigation. A render only writes to the page while
// its token is still current, so a slow reply cannot overwrite a newer
// page.
let routeToken = 0;

export function currentToken() {
  routeToken += 1;
  return routeToken;
}

export function isCurrent(token) {
  return token === routeToken;
}

// Replace the page content, unless the user already navigated elsewhere.
export function show(token, ...nodes) {
  if (token !== routeToken) return;
  view().replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

// ---- states --------------------------------------------------------------

export function loadingState(text = 'Loading…') {
  return el('p', {class: 'state state-loading', role: 'status', text});
}

export function emptyState(text) {
  return el('p', {class: 'state state-empty', text});
}

// An error box. A 403 gets its own wording and class, because retrying
// cannot help when the signed-in role lacks the permission. Nor can it
// help after the other 4xx replies except 408 and 429, because the
// request itself was wrong (most often a filter value). So for those the
// box shows the server's message without a Retry button.
export function errorState(error, retry) {
  if (error instanceof ApiError && error.status === 403) {
    return el('div', {class: 'state state-forbidden', role: 'alert'},
      el('p', {text: forbiddenText(error)}));
  }
  if (error instanceof ApiError && error.status >= 400 && error.status < 500 &&
      error.status !== 408 && error.status !== 429) {
    return el('div', {class: 'state state-error state-rejected', role: 'alert'},
      el('p', {text: `The server rejected this request: ${error.message}`}),
      el('p', {text: 'Correct the value named above and apply the filter again; retrying the same request gives the same answer.'}));
  }
  return el('div', {class: 'state state-error', role: 'alert'},
    el('p', {text: `Could not load this page: ${error.message}`}),
    retry ? el('button', {type: 'button', onclick: retry, text: 'Retry'}) : null);
}

function forbiddenText(error) {
  if (error.code === 'csrf_required') {
    return 'The server rejected the change because the session token is missing or stale; reload the page and try again.';
  }
  const role = session.role ? `your role (${session.role})` : 'your account';
  return `Access denied: ${role} may not see or change this. Ask an administrator for the analyst or compliance role if you need it.`;
}

// ---- session -------------------------------------------------------------

// The signed-in principal from GET /api/v1/me or the login reply. The
// CSRF token is kept in memory only, never in storage, so another tab or
// a page reload fetches it from /me again.
export const session = {user: null, role: null, csrf: null, auth: null};

// Called by api() on a 401 reply; app.js sets it to show the login page.
let onUnauthorized = () => {};

export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

// ---- API -------------------------------------------------------------

// An API error reply: HTTP STATUS, the server's error CODE and MESSAGE,
// and the Retry-After seconds when the server sent them.
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export function buildQuery(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') query.set(name, value);
  }
  const qs = query.toString();
  return qs ? `?${qs}` : '';
}

// Send a request to API route ROUTE. OPTIONS: method, params (query) and
// body (sent as JSON). Resolves to the parsed JSON body (null for 204) or
// rejects with an ApiError. A 401 on any route but login also calls the
// unauthorized handler, which shows the login page.
export async function request(route, {method = 'GET', params = {}, body} = {}) {
  const headers = {Accept: 'application/json'};
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && session.csrf) headers['X-CSRF-Token'] = session.csrf;

  let response;
  try {
    response = await fetch(API + route + buildQuery(params), init);
  } catch (err) {
    throw new ApiError(0, 'network', 'the server did not respond; check that flowveil serve is running');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const code = data && data.error ? data.error : '';
    const message = data && data.message ? data.message : `HTTP status ${response.status}${code ? ` (${code})` : ''}`;
    const retryAfter = Number(response.headers.get('Retry-After')) || null;
    const error = new ApiError(response.status, code, message, retryAfter);
    if (response.status === 401 && route !== 'login') onUnauthorized(error);
    throw error;
  }
  if (data === null) throw new ApiError(response.status, 'not_json', 'the server sent a reply that is not JSON');
  return data;
}

// GET ROUTE with query PARAMS.
export function api(route, params = {}) {
  return request(route, {params});
}

// ---- formatting --------------------------------------------------------

export const localTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

// Parse an RFC 3339 time from the API. The server writes six fraction
// digits; Date only guarantees three, so the rest is cut first.
export function parseTime(text) {
  if (typeof text !== 'string') return null;
  const trimmed = text.replace(/(\.\d{3})\d+/, '$1');
  const date = new Date(trimmed);
  return Number.isNaN(date.getTime()) ? null : date;
}

// A <time> element: local time as text, UTC in the title.
export function timeCell(text) {
  const date = parseTime(text);
  if (!date) return el('span', {class: 'muted', text: '—'});
  return timeNode(date);
}

export function timeNode(date) {
  return el('time', {datetime: date.toISOString(), title: `UTC ${date.toISOString()}`,
    text: localTime.format(date)});
}

// A datetime-local input value (browser time zone, minutes) for the API
// time TEXT, or '' when TEXT is empty or invalid.
export function localInputValue(text) {
  const date = text instanceof Date ? text : parseTime(String(text || ''));
  if (!date) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// An RFC 3339 UTC time with whole seconds, as the API's from/to take it.
export function isoSeconds(date) {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function formatCount(n) {
  return typeof n === 'number' ? n.toLocaleString() : '—';
}

export function formatBytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || seconds <= 0) return 'not set (kept forever)';
  const units = [[604800, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}

export function protoName(proto) {
  return PROTOCOLS[proto] || String(proto);
}

// ---- hosts ----------------------------------------------------------------

// Pseudonym tokens as the API writes them: ip4-, ip6- or mac- and 16
// lowercase base32 characters.
const PSEUDONYM = /^(ip4|ip6|mac)-[a-z2-7]{16}$/;

export function isPseudonym(text) {
  return typeof text === 'string' && PSEUDONYM.test(text);
}

export function hostHref(token) {
  return `#/host/${encodeURIComponent(token)}`;
}

// A host pseudonym as a link to its timeline; anything else (kept
// external addresses) as plain text.
export function hostName(text, suffix = '') {
  if (isPseudonym(text)) {
    return el('a', {class: 'mono host-link', href: hostHref(text), title: 'Open the host timeline', text: text + suffix});
  }
  return el('span', {class: 'mono', text: (text || '—') + suffix});
}

// An endpoint field NAME of REC with its port and zone label.
export function endpoint(rec, name, port) {
  const text = rec[name];
  const zone = rec[`${name}_zone`];
  const portText = port !== undefined && port !== null && port !== 0 ? `:${port}` : '';
  return el('span', {class: 'endpoint', title: zone ? `zone: ${zone}` : null},
    hostName(text, portText),
    zone && zone !== 'external' ? el('span', {class: 'zone', text: zone}) : null);
}

// ---- tables ------------------------------------------------------------

// Build a table from COLUMNS ({label, cell(rec) -> node|string, numeric})
// and ROWS. ONROW(tr, rec), if set, is called for each row.
export function table(caption, columns, rows, onRow) {
  const head = el('tr', {}, ...columns.map((c) => el('th', {scope: 'col', class: c.numeric ? 'num' : null, text: c.label})));
  const body = el('tbody');
  for (const rec of rows) {
    const tr = el('tr');
    for (const c of columns) {
      tr.append(el('td', {class: c.numeric ? 'num' : null}, c.cell(rec)));
    }
    if (onRow) onRow(tr, rec, body);
    body.append(tr);
  }
  return el('div', {class: 'table-wrap'},
    el('table', {}, el('caption', {class: 'visually-hidden', text: caption}), el('thead', {}, head), body));
}

// A "← Newer" / "Older →" pager over cursor pages. STATE holds the
// current cursor and the cursors of the pages before it; RELOAD renders
// again after a move. NOTE is the text between the buttons.
export function pager(state, nextCursor, note, reload) {
  const newer = el('button', {type: 'button', text: '← Newer', disabled: state.history.length === 0,
    onclick: () => {
      state.cursor = state.history.pop() ?? null;
      reload();
    }});
  const older = el('button', {type: 'button', text: 'Older →', disabled: !nextCursor,
    onclick: () => {
      state.history.push(state.cursor);
      state.cursor = nextCursor;
      reload();
    }});
  return el('div', {class: 'pager'}, newer, el('span', {class: 'muted', text: note}), older);
}

// ---- hash routes -------------------------------------------------------------

// The current route: the page NAME, the path parts after it and the
// query parameters, from "#/name/part?key=value".
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const at = raw.indexOf('?');
  const pathText = at < 0 ? raw : raw.slice(0, at);
  const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  const parts = pathText.split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (err) {
      return p;
    }
  });
  return {name: parts[0] || '', parts: parts.slice(1), params};
}

// The hash for page NAME with query PARAMS (empty values left out).
export function routeHref(name, params = {}) {
  return `#/${name}${buildQuery(params)}`;
}
