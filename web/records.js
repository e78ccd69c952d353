// Flows and metadata explorer: one page per record class, with filters
// kept in the URL hash (so a filtered view can be bookmarked and Back
// works) and cursor paging kept in memory.

import {
  CLASS_LABELS, PAGE_SIZE, api, currentToken, el, emptyState, endpoint, errorState, formatBytes,
  formatCount, isoSeconds, loadingState, localInputValue, pager, protoName, routeHref, show, table, timeCell,
} from './lib.js';

const TLS_VERSIONS = {0x0300: 'SSL 3.0', 0x0301: 'TLS 1.0', 0x0302: 'TLS 1.1', 0x0303: 'TLS 1.2', 0x0304: 'TLS 1.3'};

// Names of common DNS question types (RFC 1035, 3596, 2782, 9460) and
// response codes (RFC 1035); other values are shown as numbers.
const DNS_TYPES = {1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT',
  28: 'AAAA', 33: 'SRV', 35: 'NAPTR', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY'};
const DNS_RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP',
  5: 'REFUSED'};

// DHCP message types (option 53, RFC 2132 section 9.6).
const DHCP_TYPES = {1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK',
  7: 'RELEASE', 8: 'INFORM'};

export const COLUMNS = {
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
    {label: 'Client MAC', cell: (r) => endpoint(r, 'client_mac')},
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
};

const EMPTY_TEXT = {
  flows: 'No flows stored yet.',
  dns: 'No DNS records stored yet.',
  tls: 'No TLS records stored yet.',
  http: 'No HTTP records stored yet.',
  dhcp: 'No DHCP records stored yet.',
  ssh: 'No SSH records stored yet.',
  aggregates: 'No aggregates stored yet. A bucket is stored 35 minutes of traffic after its end, or when an ingest or capture run ends.',
};

// The filters each class offers, as API query parameters. Aggregates
// hold no host, so they take the time range only.
const FILTERS = {
  flows: ['from', 'to', 'zone', 'host', 'proto', 'port', 'sort'],
  dns: ['from', 'to', 'zone', 'host', 'port', 'domain'],
  tls: ['from', 'to', 'zone', 'host', 'port', 'domain'],
  http: ['from', 'to', 'zone', 'host', 'port', 'domain'],
  dhcp: ['from', 'to', 'zone', 'host', 'port'],
  ssh: ['from', 'to', 'zone', 'host', 'port'],
  aggregates: ['from', 'to'],
};

const FILTER_LABELS = {from: 'From', to: 'To', zone: 'Zone', host: 'Host (token, address or network)', proto: 'Protocol',
  port: 'Port', domain: 'Domain (suffix)', sort: 'Sort'};

// Paging state per class and filter set: the cursors of the pages before
// the current one (for "Newer") and the current cursor. In memory only.
const paging = new Map();

function pagingFor(key) {
  if (!paging.has(key)) paging.set(key, {history: [], cursor: null});
  return paging.get(key);
}

function filterInput(cls, name, value) {
  const id = `filter-${name}`;
  let input;
  if (name === 'from' || name === 'to') {
    input = el('input', {id, name, type: 'datetime-local', value: localInputValue(value)});
  } else if (name === 'proto') {
    input = el('select', {id, name},
      ...[['', 'any'], ['tcp', 'TCP'], ['udp', 'UDP'], ['icmp', 'ICMP']].map(([v, t]) =>
        el('option', {value: v, selected: v === value, text: t})));
  } else if (name === 'sort') {
    input = el('select', {id, name},
      el('option', {value: '', selected: !value, text: 'newest first'}),
      el('option', {value: 'bytes', selected: value === 'bytes', text: 'bytes (within the page)'}));
  } else if (name === 'port') {
    input = el('input', {id, name, type: 'number', min: 0, max: 65535, inputmode: 'numeric', value: value || ''});
  } else {
    const placeholder = {zone: 'office', host: 'ip4-… or 203.0.113.0/24', domain: 'example.com'}[name];
    input = el('input', {id, name, type: 'text', value: value || '', placeholder, autocomplete: 'off',
      spellcheck: 'false', class: name === 'host' ? 'mono' : null});
  }
  return el('div', {class: 'field'}, el('label', {for: id, text: FILTER_LABELS[name]}), input);
}

// The filter form of class CLS with the values of PARAMS. Applying it
// changes the hash, which renders the page again.
function filterForm(cls, params) {
  const names = FILTERS[cls];
  const form = el('form', {class: 'filters', 'aria-label': `Filter ${CLASS_LABELS[cls]}`},
    ...names.map((name) => filterInput(cls, name, params[name])),
    el('div', {class: 'field field-buttons'},
      el('button', {type: 'submit', text: 'Apply'}),
      el('button', {type: 'button', class: 'secondary', text: 'Clear',
        onclick: () => { location.hash = routeHref(cls); }})));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = {};
    for (const name of names) {
      const value = form.elements[name].value.trim();
      if (value === '') continue;
      if (name === 'from' || name === 'to') {
        const date = new Date(value);
        if (!Number.isNaN(date.getTime())) next[name] = isoSeconds(date);
      } else {
        next[name] = value;
      }
    }
    location.hash = routeHref(cls, next);
  });
  return form;
}

// Render the explorer of class CLS with the filters in PARAMS (from the
// hash).
export async function renderRecords(token, cls, params = {}) {
  const filters = {};
  for (const name of FILTERS[cls] || []) if (params[name]) filters[name] = params[name];
  const key = `${cls}?${new URLSearchParams(filters).toString()}`;
  const state = pagingFor(key);
  const title = el('h2', {text: CLASS_LABELS[cls]});
  const form = filterForm(cls, filters);
  show(token, title, form, loadingState());

  let page;
  try {
    page = await api(cls, {...filters, limit: PAGE_SIZE, cursor: state.cursor});
  } catch (err) {
    show(token, title, form, errorState(err, () => renderRecords(currentToken(), cls, params)));
    return;
  }

  const records = page.records || [];
  const filtered = Object.keys(filters).length > 0;
  const order = filters.sort === 'bytes' ? 'largest first' : 'newest first';
  const nav = pager(state, page.next_cursor,
    `${records.length} record${records.length === 1 ? '' : 's'} on this page, ${order}`,
    () => renderRecords(currentToken(), cls, params));
  const skipped = page.undecryptable
    ? el('p', {class: 'state state-warning', role: 'status', text: `${formatCount(page.undecryptable)} records of this page could not be decrypted and are left out (missing day key or damaged value).`})
    : null;

  if (records.length === 0) {
    let text = EMPTY_TEXT[cls];
    if (state.history.length) text = 'No older records.';
    else if (filtered) text = 'No records match these filters.';
    show(token, title, form, skipped, emptyState(text), state.history.length ? nav : null);
    return;
  }
  show(token, title, form, skipped, table(`${CLASS_LABELS[cls]} records`, COLUMNS[cls], records), nav);
}
