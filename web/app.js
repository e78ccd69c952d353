// flowveil dashboard: a hash-routed single page over the read-only JSON API.
//
// Rules this file keeps:
// - DOM nodes are built with createElement and textContent, never
//   innerHTML, so record fields (names, summaries) cannot inject markup.
// - No inline scripts or styles (the server's CSP forbids them) and no
//   request to any other origin.
// - Times are shown in the browser's time zone, with the UTC value in a
//   title attribute.

const API = '/api/v1/';
const PAGE_SIZE = 50;

// Flows read for the traffic chart: pages of 1000, newest first.
const CHART_PAGE_SIZE = 1000;
const CHART_MAX_PAGES = 4;

const CLASS_LABELS = {flows: 'Flows', dns: 'DNS', tls: 'TLS', http: 'HTTP', alerts: 'Alerts',
  dhcp: 'DHCP', ssh: 'SSH', aggregates: 'Aggregates'};
const PROTOCOLS = {1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP'};
const TLS_VERSIONS = {0x0300: 'SSL 3.0', 0x0301: 'TLS 1.0', 0x0302: 'TLS 1.1', 0x0303: 'TLS 1.2', 0x0304: 'TLS 1.3'};

// ---- DOM helpers -----------------------------------------------------

// Create element TAG with ATTRS (plain attributes, plus "text" for
// textContent and "on" + event name for listeners) and CHILDREN (nodes,
// strings, or null to skip).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

function view() {
  return document.getElementById('view');
}

// Replace the page content, unless the user already navigated elsewhere
// (TOKEN no longer current), which keeps a slow reply from overwriting a
// newer page.
function show(token, ...nodes) {
  if (token !== routeToken) return;
  view().replaceChildren(...nodes);
}

function loadingState(text = 'Loading…') {
  return el('p', {class: 'state state-loading', role: 'status', text});
}

function emptyState(text) {
  return el('p', {class: 'state state-empty', text});
}

function errorState(error, retry) {
  return el('div', {class: 'state state-error', role: 'alert'},
    el('p', {text: `Could not load this page: ${error.message}`}),
    retry ? el('button', {type: 'button', onclick: retry, text: 'Retry'}) : null);
}

// ---- API -------------------------------------------------------------

// GET an API route with query PARAMS; resolve to the parsed JSON body or
// reject with the server's error message.
async function api(route, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== '') query.set(name, value);
  }
  const qs = query.toString();
  let response;
  try {
    response = await fetch(API + route + (qs ? `?${qs}` : ''), {
      headers: {Accept: 'application/json'},
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new Error('the server did not respond; check that flowveil serve is running');
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : `HTTP status ${response.status}`;
    throw new Error(message);
  }
  if (body === null) throw new Error('the server sent a reply that is not JSON');
  return body;
}

// ---- formatting --------------------------------------------------------

const localTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

// Parse an RFC 3339 time from the API. The server writes six fraction
// digits; Date only guarantees three, so the rest is cut first.
function parseTime(text) {
  if (typeof text !== 'string') return null;
  const trimmed = text.replace(/(\.\d{3})\d+/, '$1');
  const date = new Date(trimmed);
  return Number.isNaN(date.getTime()) ? null : date;
}

// A <time> element: local time as text, UTC in the title.
function timeCell(text) {
  const date = parseTime(text);
  if (!date) return el('span', {class: 'muted', text: '—'});
  return el('time', {datetime: date.toISOString(), title: `UTC ${date.toISOString()}`,
    text: localTime.format(date)});
}

function formatCount(n) {
  return typeof n === 'number' ? n.toLocaleString() : '—';
}

function formatBytes(n) {
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

function formatDuration(seconds) {
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

function protoName(proto) {
  return PROTOCOLS[proto] || String(proto);
}

// An endpoint as "name" with its zone, e.g. "ip4-abc… (office)".
function endpoint(rec, name, port) {
  const text = rec[name] || '—';
  const zone = rec[`${name}_zone`];
  const portText = port !== undefined && port !== null && port !== 0 ? `:${port}` : '';
  return el('span', {class: 'endpoint', title: zone ? `zone: ${zone}` : null},
    el('span', {class: 'mono', text: text + portText}),
    zone && zone !== 'external' ? el('span', {class: 'zone', text: zone}) : null);
}

// ---- tables ------------------------------------------------------------

// Build a table from COLUMNS ({label, cell(rec) -> node|string, numeric})
// and ROWS. ONROW, if set, makes each row open details.
function table(caption, columns, rows, onRow) {
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

// ---- record explorers ----------------------------------------------------

const COLUMNS = {
  flows: [
    {label: 'First seen', cell: (r) => timeCell(r.first)},
    {label: 'Protocol', cell: (r) => protoName(r.proto)},
    {label: 'Source', cell: (r) => endpoint(r, 'src', r.sport)},
    {label: 'Destination', cell: (r) => endpoint(r, 'dst', r.dport)},
    {label: 'Packets', numeric: true, cell: (r) => formatCount((r.pkts_fwd || 0) + (r.pkts_rev || 0))},
    {label: 'Bytes', numeric: true, cell: (r) => formatBytes((r.bytes_fwd || 0) + (r.bytes_rev || 0))},
    {label: 'Ended by', cell: (r) => r.end || '—'},
  ],
  dns: [
    {label: 'Time', cell: (r) => timeCell(r.ts)},
    {label: 'Client', cell: (r) => endpoint(r, 'client')},
    {label: 'Server', cell: (r) => endpoint(r, 'server', r.server_port)},
    {label: 'Type', cell: (r) => r.type},
    {label: 'Name', cell: (r) => el('span', {class: 'mono wrap', text: r.qname || '—'})},
    {label: 'QType', cell: (r) => DNS_TYPES[r.qtype] || String(r.qtype)},
    {label: 'Answers', numeric: true, cell: (r) => String(r.answers)},
    {label: 'RCode', cell: (r) => (r.rcode === undefined ? '—' : DNS_RCODES[r.rcode] || String(r.rcode))},
  ],
  tls: [
    {label: 'Time', cell: (r) => timeCell(r.ts)},
    {label: 'Client', cell: (r) => endpoint(r, 'client')},
    {label: 'Server', cell: (r) => endpoint(r, 'server', r.server_port)},
    {label: 'Version', cell: (r) => TLS_VERSIONS[r.version] || String(r.version)},
    {label: 'SNI', cell: (r) => el('span', {class: 'mono wrap', text: r.sni || '—'})},
  ],
  http: [
    {label: 'Time', cell: (r) => timeCell(r.ts)},
    {label: 'Client', cell: (r) => endpoint(r, 'client')},
    {label: 'Server', cell: (r) => endpoint(r, 'server', r.server_port)},
    {label: 'Method', cell: (r) => el('span', {class: 'mono', text: r.method || '—'})},
    {label: 'Host', cell: (r) => el('span', {class: 'mono wrap', text: r.host || '—'})},
  ],
  dhcp: [
    {label: 'Time', cell: (r) => timeCell(r.ts)},
    {label: 'Client', cell: (r) => endpoint(r, 'client')},
    {label: 'Server', cell: (r) => endpoint(r, 'server', r.server_port)},
    {label: 'Message', cell: (r) => DHCP_TYPES[r.msg_type] || (r.msg_type ? String(r.msg_type) : 'BOOTP')},
    {label: 'Client MAC', cell: (r) => el('span', {class: 'mono', text: r.client_mac || '—'})},
    {label: 'Host name', cell: (r) => el('span', {class: 'mono wrap', text: r.hostname || '—'})},
    {label: 'Vendor class', cell: (r) => el('span', {class: 'mono wrap', text: r.vendor_class || '—'})},
    {label: 'Requested', cell: (r) => el('span', {class: 'mono', text: r.requested_ip || '—'})},
  ],
  ssh: [
    {label: 'Time', cell: (r) => timeCell(r.ts)},
    {label: 'Client', cell: (r) => endpoint(r, 'client')},
    {label: 'Server', cell: (r) => endpoint(r, 'server', r.server_port)},
    {label: 'Client software', cell: (r) => el('span', {class: 'mono wrap', text: r.client_banner || '—'})},
    {label: 'Server software', cell: (r) => el('span', {class: 'mono wrap', text: r.server_banner || '—'})},
    {label: 'HASSH', cell: (r) => el('span', {class: 'mono', text: r.hassh || '—'})},
    {label: 'HASSH server', cell: (r) => el('span', {class: 'mono', text: r.hassh_server || '—'})},
  ],
  // Per-zone counts: no host identifier at all, only the zone label.
  aggregates: [
    {label: 'Bucket start', cell: (r) => timeCell(r.bucket_start)},
    {label: 'Bucket', cell: (r) => r.bucket || '—'},
    {label: 'Zone', cell: (r) => r.zone || '—'},
    {label: 'Protocol', cell: (r) => protoName(r.proto)},
    {label: 'Peer', cell: (r) => el('span', {class: 'mono', text: r.peer ? (r.dport ? `${r.peer} port ${r.dport}` : r.peer) : (r.dport ? `internal, port ${r.dport}` : 'internal')})},
    {label: 'Flows', numeric: true, cell: (r) => formatCount(r.flows)},
    {label: 'Hosts', numeric: true, cell: (r) => (r.hosts_capped ? `≥ ${formatCount(r.hosts)}` : formatCount(r.hosts))},
    {label: 'Bytes out', numeric: true, cell: (r) => formatBytes(r.bytes_out)},
    {label: 'Bytes in', numeric: true, cell: (r) => formatBytes(r.bytes_in)},
  ],
  alerts: [
    // The traffic time, not when the alert was raised: a replayed capture
    // raises its alerts long after the activity.
    {label: 'Last activity', cell: (r) => timeCell(r.last)},
    {label: 'Detector', cell: (r) => r.detector},
    {label: 'Severity', cell: (r) => el('span', {class: `badge sev-${r.severity}`, text: r.severity})},
    {label: 'Host', cell: (r) => endpoint(r, 'host')},
    {label: 'Peer', cell: (r) => endpoint(r, 'peer', r.peer_port)},
    {label: 'Score', numeric: true, cell: (r) => (typeof r.score === 'number' ? r.score.toFixed(2) : '—')},
    {label: 'Summary', cell: (r) => el('span', {class: 'wrap', text: r.summary || ''})},
  ],
};

// Names of common DNS question types (RFC 1035, 3596, 2782, 9460) and
// response codes (RFC 1035); other values are shown as numbers.
const DNS_TYPES = {1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT',
  28: 'AAAA', 33: 'SRV', 35: 'NAPTR', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY'};
const DNS_RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP',
  5: 'REFUSED'};

// DHCP message types (option 53, RFC 2132 section 9.6).
const DHCP_TYPES = {1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK',
  7: 'RELEASE', 8: 'INFORM'};

const EMPTY_TEXT = {
  flows: 'No flows stored yet.',
  dns: 'No DNS records stored yet.',
  tls: 'No TLS records stored yet.',
  http: 'No HTTP records stored yet.',
  alerts: 'No alerts yet.',
  dhcp: 'No DHCP records stored yet.',
  ssh: 'No SSH records stored yet.',
  aggregates: 'No aggregates stored yet. A bucket is stored 35 minutes of traffic after its end, or when an ingest or capture run ends.',
};

// Paging state per class: the cursors of the pages before the current
// one (for "Newer") and the current cursor. Kept in memory only.
const paging = {};

function pagingFor(cls) {
  if (!paging[cls]) paging[cls] = {history: [], cursor: null};
  return paging[cls];
}

// Details row shown under an alert: time span, counts and evidence.
function alertDetails(rec, columnCount) {
  const items = [
    ['Raised', timeCell(rec.ts)],
    ['Evidence from', timeCell(rec.first)],
    ['Evidence until', timeCell(rec.last)],
    ['Flows', formatCount(rec.flow_count)],
    ['Protocol', protoName(rec.proto)],
  ];
  for (const [name, value] of Object.entries(rec.evidence || {})) {
    items.push([name.replace(/_/g, ' '), typeof value === 'number' ? value.toLocaleString(undefined, {maximumFractionDigits: 3}) : String(value)]);
  }
  const list = el('dl', {class: 'details'});
  for (const [term, value] of items) list.append(el('dt', {text: term}), el('dd', {}, value));
  return el('tr', {class: 'details-row'}, el('td', {colspan: columnCount}, list));
}

// Make an alert row toggle its details: a real button in the row, and a
// click anywhere on the row does the same.
function attachAlertDetails(tr, rec) {
  const columnCount = COLUMNS.alerts.length + 1;
  const button = el('button', {type: 'button', class: 'link-button', 'aria-expanded': 'false', text: 'Details'});
  let details = null;
  const toggle = () => {
    if (details) {
      details.remove();
      details = null;
      button.setAttribute('aria-expanded', 'false');
      tr.classList.remove('open');
      return;
    }
    details = alertDetails(rec, columnCount);
    tr.after(details);
    button.setAttribute('aria-expanded', 'true');
    tr.classList.add('open');
  };
  button.addEventListener('click', (event) => {
    event.stopPropagation();
    toggle();
  });
  tr.classList.add('clickable');
  tr.addEventListener('click', toggle);
  tr.append(el('td', {}, button));
}

async function renderRecords(token, cls) {
  const state = pagingFor(cls);
  const title = el('h2', {text: CLASS_LABELS[cls]});
  show(token, title, loadingState());

  let page;
  try {
    page = await api(cls, {limit: PAGE_SIZE, cursor: state.cursor});
  } catch (err) {
    show(token, title, errorState(err, () => renderRecords(currentToken(), cls)));
    return;
  }

  const records = page.records || [];
  const newer = el('button', {type: 'button', text: '← Newer', disabled: state.history.length === 0,
    onclick: () => {
      state.cursor = state.history.pop() ?? null;
      renderRecords(currentToken(), cls);
    }});
  const older = el('button', {type: 'button', text: 'Older →', disabled: !page.next_cursor,
    onclick: () => {
      state.history.push(state.cursor);
      state.cursor = page.next_cursor;
      renderRecords(currentToken(), cls);
    }});
  const pager = el('div', {class: 'pager'}, newer,
    el('span', {class: 'muted', text: `${records.length} record${records.length === 1 ? '' : 's'} on this page, newest first`}),
    older);

  if (records.length === 0) {
    const empty = state.history.length === 0 ? emptyState(EMPTY_TEXT[cls]) : emptyState('No older records.');
    show(token, title, empty, state.history.length ? pager : null);
    return;
  }

  const tbl = table(`${CLASS_LABELS[cls]} records`, COLUMNS[cls], records,
    cls === 'alerts' ? attachAlertDetails : null);
  if (cls === 'alerts') {
    tbl.querySelector('thead tr').append(el('th', {scope: 'col'}, el('span', {class: 'visually-hidden', text: 'Details'})));
  }
  show(token, title, tbl, pager);
}

// ---- overview ------------------------------------------------------------

// Sum flow bytes per hour of first-seen time, over up to
// CHART_PAGE_SIZE * CHART_MAX_PAGES of the newest flows.
async function loadHourlyBytes() {
  const buckets = new Map();
  let cursor = null;
  let flows = 0;
  for (let i = 0; i < CHART_MAX_PAGES; i++) {
    const page = await api('flows', {limit: CHART_PAGE_SIZE, cursor});
    for (const rec of page.records || []) {
      const us = typeof rec.first_us === 'number' ? rec.first_us : null;
      if (us === null) continue;
      const hour = Math.floor(us / 3.6e9) * 3600e3;
      buckets.set(hour, (buckets.get(hour) || 0) + (rec.bytes_fwd || 0) + (rec.bytes_rev || 0));
      flows += 1;
    }
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return {buckets, flows};
}

// Draw an SVG bar chart of bytes per hour; gaps between the first and
// last hour appear as empty slots so the time axis stays linear.
function hourlyChart({buckets, flows}) {
  if (buckets.size === 0) return emptyState('No flows to chart yet.');
  const hours = [...buckets.keys()].sort((a, b) => a - b);
  const first = hours[0];
  const last = hours[hours.length - 1];
  const slots = Math.min(Math.round((last - first) / 3600e3) + 1, 24 * 14);
  const start = last - (slots - 1) * 3600e3;
  const max = Math.max(...buckets.values(), 1);

  const width = 720;
  const height = 220;
  const pad = {left: 64, right: 8, top: 10, bottom: 36};
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slotW = plotW / slots;

  const chart = svg('svg', {viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': `Bytes per hour over ${slots} hours, from ${flows} most recent flows`});
  chart.append(svg('line', {x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH, class: 'axis'}));
  chart.append(svg('text', {x: pad.left - 6, y: pad.top + 10, class: 'tick', 'text-anchor': 'end'}, document.createTextNode(formatBytes(max))));
  chart.append(svg('text', {x: pad.left - 6, y: pad.top + plotH, class: 'tick', 'text-anchor': 'end'}, document.createTextNode('0')));

  const labelEvery = Math.max(1, Math.ceil(slots / 8));
  for (let i = 0; i < slots; i++) {
    const hour = start + i * 3600e3;
    const value = buckets.get(hour) || 0;
    const h = (value / max) * plotH;
    const x = pad.left + i * slotW;
    const date = new Date(hour);
    if (value > 0) {
      const bar = svg('rect', {x: x + slotW * 0.1, y: pad.top + plotH - h, width: Math.max(slotW * 0.8, 1), height: Math.max(h, 1), class: 'bar'});
      bar.append(svg('title', {}, document.createTextNode(`${localTime.format(date)}: ${formatBytes(value)}`)));
      chart.append(bar);
    }
    if (i % labelEvery === 0) {
      const label = date.toLocaleString(undefined, {month: 'short', day: 'numeric', hour: '2-digit'});
      chart.append(svg('text', {x: x + slotW / 2, y: height - 12, class: 'tick', 'text-anchor': 'middle'}, document.createTextNode(label)));
    }
  }
  return el('figure', {class: 'chart-figure'}, chart,
    el('figcaption', {class: 'muted', text: `Bytes per hour (both directions) from the ${flows.toLocaleString()} most recent flows, in your time zone.`}));
}

function card(label, value, href) {
  const body = [el('span', {class: 'card-value', text: value}), el('span', {class: 'card-label', text: label})];
  return href ? el('a', {class: 'card', href}, ...body) : el('div', {class: 'card'}, ...body);
}

// The API leaves out every destination reached by fewer than k distinct
// hosts and says how many it left out; the list shows that note as well.
async function loadTopDestinations(token, slot) {
  const heading = el('h3', {text: 'Top destinations'});
  let top;
  try {
    top = await api('top/destinations', {limit: 10});
  } catch (err) {
    if (token !== routeToken) return;
    slot.replaceChildren(heading, errorState(err, () => loadTopDestinations(currentToken(), slot)));
    return;
  }
  if (token !== routeToken) return;
  const rows = top.rows || [];
  const list = rows.length
    ? el('ol', {class: 'top-list'}, ...rows.map((r) => el('li', {},
      el('span', {class: 'mono', text: `${r.peer ?? 'internal'}:${r.dport}/${protoName(r.proto)}`}),
      ` ${formatCount(r.flows)} flows, ${formatBytes(r.bytes)}, at least ${formatCount(r.hosts_at_least)} hosts`)))
    : emptyState('No destination reached by enough hosts to show.');
  const suppressed = top.suppressed_groups || 0;
  const note = el('p', {class: 'muted top-note', text: suppressed
    ? `${formatCount(suppressed)} destination${suppressed === 1 ? '' : 's'} reached by fewer than ${top.k_threshold} hosts not shown (k-threshold).`
    : `Destinations reached by fewer than ${top.k_threshold} hosts are never shown (k-threshold).`});
  slot.replaceChildren(heading, list, note);
}

async function renderOverview(token) {
  const title = el('h2', {text: 'Overview'});
  show(token, title, loadingState());

  let summary;
  try {
    summary = await api('summary');
  } catch (err) {
    show(token, title, errorState(err, () => renderOverview(currentToken())));
    return;
  }

  const records = summary.records || {};
  const alerts = summary.alerts || {};
  const cards = el('div', {class: 'cards'},
    ...['flows', 'dns', 'tls', 'http'].map((cls) => card(CLASS_LABELS[cls], formatCount(records[cls]), `#/${cls}`)),
    card('Alerts', formatCount(alerts.total), '#/alerts'));

  const severities = el('ul', {class: 'inline-list'},
    ...Object.entries(alerts.by_severity || {}).map(([sev, n]) =>
      el('li', {}, el('span', {class: `badge sev-${sev}`, text: sev}), ` ${formatCount(n)}`)));
  const detectors = el('ul', {class: 'inline-list'},
    ...Object.entries(alerts.by_detector || {}).map(([det, n]) => el('li', {text: `${det}: ${formatCount(n)}`})));

  const traffic = summary.traffic || {};
  const ingest = summary.ingest || {};
  const facts = el('dl', {class: 'facts'},
    el('dt', {text: 'Traffic from'}), el('dd', {}, timeCell(traffic.first)),
    el('dt', {text: 'Traffic until'}), el('dd', {}, timeCell(traffic.last)),
    el('dt', {text: 'Last ingest'}), el('dd', {}, timeCell(ingest.last_ingest)),
    el('dt', {text: 'Packets ingested'}), el('dd', {text: formatCount(ingest.packets)}),
    el('dt', {text: 'Capture files'}), el('dd', {text: formatCount(ingest.files)}));

  const alertSection = alerts.total
    ? el('section', {}, el('h3', {text: 'Alerts'}), severities, detectors,
      alerts.complete === false ? el('p', {class: 'muted', text: 'Counted over the oldest alerts only; there are more.'}) : null)
    : el('section', {}, el('h3', {text: 'Alerts'}), emptyState('No alerts yet.'));

  const chartSlot = el('section', {}, el('h3', {text: 'Traffic over time'}), loadingState('Loading traffic…'));
  const topSlot = el('section', {}, el('h3', {text: 'Top destinations'}), loadingState('Loading destinations…'));
  show(token, title, cards, chartSlot, topSlot, alertSection, el('section', {}, el('h3', {text: 'Data'}), facts));
  loadTopDestinations(token, topSlot);

  try {
    const data = await loadHourlyBytes();
    if (token !== routeToken) return;
    chartSlot.replaceChildren(el('h3', {text: 'Traffic over time'}), hourlyChart(data));
  } catch (err) {
    if (token !== routeToken) return;
    chartSlot.replaceChildren(el('h3', {text: 'Traffic over time'}), errorState(err, () => renderOverview(currentToken())));
  }
}

// ---- retention -----------------------------------------------------------

async function renderRetention(token) {
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
  show(token, title, classes.length ? table('Retention per class', columns, classes) : emptyState('No retention data.'), note, history);

  let found;
  try {
    found = await loadDeletions();
  } catch (err) {
    if (token !== routeToken) return;
    history.replaceChildren(el('h3', {text: 'Deletion history'}),
      errorState(err, () => renderRetention(currentToken())));
    return;
  }
  if (token !== routeToken) return;
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

async function renderCompliance(token) {
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

async function renderAudit(token) {
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

// ---- routing -------------------------------------------------------------

const PAGE_TITLES = {...CLASS_LABELS, overview: 'Overview', retention: 'Retention', compliance: 'Compliance',
  audit: 'Audit'};

const ROUTES = {
  overview: renderOverview,
  alerts: (token) => renderRecords(token, 'alerts'),
  flows: (token) => renderRecords(token, 'flows'),
  dns: (token) => renderRecords(token, 'dns'),
  tls: (token) => renderRecords(token, 'tls'),
  http: (token) => renderRecords(token, 'http'),
  dhcp: (token) => renderRecords(token, 'dhcp'),
  ssh: (token) => renderRecords(token, 'ssh'),
  aggregates: (token) => renderRecords(token, 'aggregates'),
  retention: renderRetention,
  compliance: renderCompliance,
  audit: renderAudit,
};

// Incremented on every navigation; a render only writes to the page while
// its token is still current.
let routeToken = 0;

function currentToken() {
  routeToken += 1;
  return routeToken;
}

function route() {
  const name = (location.hash.replace(/^#\/?/, '') || 'overview').split('?')[0];
  const render = ROUTES[name];
  for (const link of document.querySelectorAll('.nav a')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const token = currentToken();
  if (!render) {
    show(token, el('h2', {text: 'Not found'}), emptyState('There is no such page.'),
      el('p', {}, el('a', {href: '#/overview', text: 'Go to the overview'})));
    return;
  }
  document.title = `${PAGE_TITLES[name]} · flowveil`;
  render(token);
}

window.addEventListener('hashchange', () => {
  route();
  view().focus({preventScroll: true});
});
route();
