// Capture page: the capture, parser, collector and export counters from
// GET /api/v1/counters, per-interface libpcap counters, and a warning
// banner whenever a packet or record was dropped.
//
// The counters are sums over every ingest and capture run into the store.
// A capturing process adds its counts once a minute and when it stops, so
// they lag a running capture by up to a minute. The API leaves out
// counters that are still zero; a missing counter reads as 0 here.

import {
  api, currentToken, el, emptyState, errorState, formatBytes, formatCount, isCurrent, loadingState, show,
  table, timeCell, view,
} from './lib.js';

// Counters of lost packets or records: the counter name, where the loss
// happened, the unit, and whether it is a share of the received packets.
// Collector and export drops are listed only when their module wrote
// counters (names starting with collect_ or export_).
export const DROP_COUNTERS = [
  {name: 'pcap_dropped', where: 'Kernel: no room in the capture buffer', unit: 'packets', ofPackets: true},
  {name: 'pcap_if_dropped', where: 'Interface: dropped by the network driver', unit: 'packets', ofPackets: true},
  {name: 'queue_dropped_records', where: 'Worker queue to the writer thread full', unit: 'records', ofPackets: false},
  {name: 'tcp_ooo_dropped', where: 'TCP out-of-order segments not held (reassembly buffer full)', unit: 'segments', ofPackets: true},
  {name: 'frag_evicted', where: 'Incomplete IP datagrams evicted (fragment table full)', unit: 'datagrams', ofPackets: false},
  {name: 'frag_too_many', where: 'IP fragments over the per-datagram limit', unit: 'fragments', ofPackets: true},
  {name: 'collect_sequence_lost', where: 'Collector: lost between exporter and collector (sequence gaps)', unit: 'records or datagrams', ofPackets: false, module: 'collect_'},
  {name: 'collect_domains_refused', where: 'Collector: datagrams from a domain over the domain limit', unit: 'datagrams', ofPackets: false, module: 'collect_'},
  {name: 'export_dropped_queue_full', where: 'Export: Kafka queue full', unit: 'records', ofPackets: false, module: 'export_'},
  {name: 'export_failed', where: 'Export: records lost (Kafka delivery failed after the retries, or an IPFIX send failed)', unit: 'records', ofPackets: false, module: 'export_'},
];

// Groups of the full counter list by name prefix. A counter goes to the
// first group that matches.
const GROUPS = [
  {title: 'Traffic', match: (n) => ['packets', 'bytes', 'ip_packets', 'non_ip', 'excluded', 'truncated', 'bad_header',
    'unsupported_link', 'tunnel_too_deep'].includes(n) || n.startsWith('pcap_')},
  {title: 'Flow table', match: (n) => n.startsWith('flows_') || n.startsWith('icmp_errors_')},
  {title: 'Reassembly', match: (n) => n.startsWith('frag_') || n.startsWith('tcp_ooo_')},
  {title: 'Worker queues', match: (n) => n.startsWith('queue_')},
  {title: 'Parsers', match: (n) => /^(dns|tls|http|dhcp|ssh|ntp|nbns)_/.test(n)},
  {title: 'Collector', match: (n) => n.startsWith('collect_')},
  {title: 'Export', match: (n) => n.startsWith('export_')},
  {title: 'Other', match: () => true},
];

// Per-interface counter names: iface_NAME_received, _kernel_dropped and
// _interface_dropped, where NAME is the interface name lowercased with
// every character other than a letter or digit replaced by "_". The
// greedy NAME keeps names that themselves end in such a word intact.
const IFACE_COUNTER = /^iface_(.+)_(received|kernel_dropped|interface_dropped)$/;

// The interfaces in COUNTERS as [{name, received, kernel, iface}], sorted
// by name.
export function interfaceRows(counters) {
  const byName = new Map();
  for (const [key, value] of Object.entries(counters)) {
    const match = IFACE_COUNTER.exec(key);
    if (!match) continue;
    const row = byName.get(match[1]) || {name: match[1], received: 0, kernel: 0, iface: 0};
    if (match[2] === 'received') row.received = value;
    else if (match[2] === 'kernel_dropped') row.kernel = value;
    else row.iface = value;
    byName.set(match[1], row);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

// The packet count that drop percentages are taken of: libpcap's
// received count when a live capture ran, else the packets read from
// files. NOTE: per pcap_stats(3PCAP), ps_recv may or may not count the
// packets the kernel dropped. Where it does not, the share shown is
// somewhat higher than the true one.
export function packetBase(counters) {
  return counters.pcap_received > 0 ? counters.pcap_received : counters.packets || 0;
}

// DROPPED as a percentage of BASE, with enough digits that a small
// non-zero share never shows as 0 %.
export function percentText(dropped, base) {
  if (!(base > 0)) return '—';
  const share = (100 * dropped) / base;
  if (dropped > 0 && share < 0.01) return '< 0.01 %';
  return `${share.toFixed(share < 10 ? 2 : 1)} %`;
}

// The drop counters that apply to COUNTERS, each with its value.
export function dropRows(counters) {
  const names = Object.keys(counters);
  return DROP_COUNTERS
    .filter((d) => !d.module || names.some((n) => n.startsWith(d.module)))
    .map((d) => ({...d, value: counters[d.name] || 0}));
}

// The warning banner, or null when nothing was dropped. It states every
// non-zero drop counter, the packet drops as a share of the packets.
function dropBanner(counters, drops, interfaces) {
  const lost = drops.filter((d) => d.value > 0);
  const ifaceLost = interfaces.filter((r) => r.kernel > 0 || r.iface > 0);
  if (lost.length === 0 && ifaceLost.length === 0) return null;

  const base = packetBase(counters);
  const packetDrops = lost.filter((d) => d.ofPackets).reduce((sum, d) => sum + d.value, 0);
  const lines = [];
  if (packetDrops > 0) {
    lines.push(`${formatCount(packetDrops)} packets dropped: ${percentText(packetDrops, base)} of ${formatCount(base)} packets received.`);
  }
  for (const d of lost) {
    const share = d.ofPackets ? ` (${percentText(d.value, base)})` : '';
    lines.push(`${d.where}: ${formatCount(d.value)} ${d.unit}${share}.`);
  }
  for (const r of ifaceLost) {
    lines.push(`Interface ${r.name}: kernel ${formatCount(r.kernel)}, interface ${formatCount(r.iface)} of ${formatCount(r.received)} received (${percentText(r.kernel + r.iface, r.received)}).`);
  }
  return el('div', {class: 'state state-warning capture-drops-warning', role: 'alert'},
    el('p', {}, el('strong', {text: 'Drops: the stored records miss some traffic.'})),
    el('ul', {class: 'drop-lines'}, ...lines.map((text) => el('li', {text}))),
    el('p', {text: 'Kernel drops: raise capture --buffer-size or add --workers. Interface drops: check the NIC and the mirror port. Queue drops: add --workers or a faster disk.'}));
}

function card(label, value) {
  return el('div', {class: 'card'}, el('span', {class: 'card-value', text: value}), el('span', {class: 'card-label', text: label}));
}

function interfaceSection(interfaces) {
  const heading = el('h3', {text: 'Interfaces'});
  if (interfaces.length === 0) {
    return el('section', {class: 'capture-interfaces'}, heading,
      emptyState('No live capture has written interface counters to this store; "flowveil capture" adds them.'));
  }
  const columns = [
    {label: 'Interface', cell: (r) => el('span', {class: 'mono', text: r.name})},
    {label: 'Received', numeric: true, cell: (r) => formatCount(r.received)},
    {label: 'Kernel dropped', numeric: true, cell: (r) => formatCount(r.kernel)},
    {label: 'Interface dropped', numeric: true, cell: (r) => formatCount(r.iface)},
    {label: 'Dropped', numeric: true, cell: (r) => {
      const text = percentText(r.kernel + r.iface, r.received);
      return r.kernel + r.iface > 0 ? el('span', {class: 'badge sev-high', text}) : text;
    }},
  ];
  return el('section', {class: 'capture-interfaces'}, heading, table('Counters per interface', columns, interfaces));
}

function dropSection(counters, drops) {
  const base = packetBase(counters);
  const columns = [
    {label: 'Where', cell: (d) => d.where},
    {label: 'Counter', cell: (d) => el('span', {class: 'mono', text: d.name})},
    {label: 'Dropped', numeric: true, cell: (d) => (d.value > 0
      ? el('span', {class: 'badge sev-high', text: `${formatCount(d.value)} ${d.unit}`})
      : `0 ${d.unit}`)},
    {label: 'Of packets', numeric: true, cell: (d) => (d.ofPackets ? percentText(d.value, base) : '—')},
  ];
  return el('section', {class: 'capture-drops'}, el('h3', {text: 'Drops'}),
    table('Drop counters', columns, drops),
    el('p', {class: 'muted', text: 'Shares are of the packets libpcap counted as received (pcap_received), or of the packets read when no live capture ran. Records, datagrams and collector losses have no packet share.'}));
}

// Every counter, one table per group.
function allCounters(counters) {
  const groups = GROUPS.map((g) => ({title: g.title, rows: []}));
  for (const name of Object.keys(counters).sort()) {
    // flows_active is a gauge, and a sum of gauges over runs means
    // nothing; /metrics reports the current value as flowveil_flows_active.
    if (IFACE_COUNTER.test(name) || name === 'flows_active') continue;
    const index = GROUPS.findIndex((g) => g.match(name));
    groups[index].rows.push({name, value: counters[name]});
  }
  const columns = [
    {label: 'Counter', cell: (r) => el('span', {class: 'mono', text: r.name})},
    {label: 'Value', numeric: true, cell: (r) => (r.name === 'bytes' ? `${formatCount(r.value)} (${formatBytes(r.value)})` : formatCount(r.value))},
  ];
  const sections = groups.filter((g) => g.rows.length > 0).map((g) =>
    el('section', {class: 'capture-group'}, el('h4', {text: g.title}), table(`${g.title} counters`, columns, g.rows)));
  return el('section', {class: 'capture-all'}, el('h3', {text: 'All counters'}),
    el('p', {class: 'muted', text: 'Counters still at zero are not stored and not listed.'}), ...sections);
}

// The read time, the end of the last ingest or capture run (from
// /summary, when it loaded) and the Refresh button.
function updateBar(reply, summary) {
  const lastRun = summary && summary.ingest ? summary.ingest.last_ingest : null;
  return el('div', {class: 'capture-updated'},
    el('dl', {class: 'facts'},
      el('dt', {text: 'Counters read'}), el('dd', {}, timeCell(reply.time)),
      el('dt', {text: 'Last run ended'}), el('dd', {}, lastRun ? timeCell(lastRun) : el('span', {class: 'muted', text: 'unknown'}))),
    el('button', {type: 'button', class: 'secondary capture-refresh', text: 'Refresh',
      onclick: () => renderCapture(currentToken(), {refocus: true})}));
}

// Render the Capture page. With REFOCUS (a click on Refresh) the focus
// moves to the new Refresh button, so a keyboard user stays in place.
export async function renderCapture(token, {refocus = false} = {}) {
  const title = el('h2', {text: 'Capture'});
  show(token, title, loadingState('Loading counters…'));

  let reply;
  let summary = null;
  try {
    [reply, summary] = await Promise.all([
      api('counters'),
      // The summary only adds the last run's time; the page works without it.
      api('summary').catch(() => null),
    ]);
  } catch (err) {
    show(token, title, errorState(err, () => renderCapture(currentToken())));
    return;
  }

  const counters = reply.capture || {};
  const note = el('p', {class: 'muted', text: 'Sums over every ingest and capture run into this store. A running capture adds its counts once a minute and when it stops.'});
  if (Object.keys(counters).length === 0) {
    show(token, title, updateBar(reply, summary), note,
      emptyState('No counters yet: run "flowveil ingest" or "flowveil capture" into this store.'));
    if (refocus && isCurrent(token)) view().querySelector('.capture-refresh').focus();
    return;
  }

  const interfaces = interfaceRows(counters);
  const drops = dropRows(counters);
  const banner = dropBanner(counters, drops, interfaces);
  const ok = banner ? null : el('p', {class: 'capture-no-drops'}, el('span', {class: 'badge ok', text: 'no drops'}),
    ' No packet or record was dropped.');
  const cards = el('div', {class: 'cards'},
    card('Packets', formatCount(counters.packets || 0)),
    card('Bytes', formatBytes(counters.bytes || 0)),
    card('Flows created', formatCount(counters.flows_created || 0)),
    card('Flows emitted', formatCount(counters.flows_emitted || 0)),
    card('Undecryptable records (this server)', formatCount(reply.undecryptable_records || 0)));
  show(token, title, updateBar(reply, summary), banner, ok, cards, interfaceSection(interfaces),
    dropSection(counters, drops), allCounters(counters), note);
  if (refocus && isCurrent(token)) view().querySelector('.capture-refresh').focus();
}
