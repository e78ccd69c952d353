// Overview page: record counts, traffic and alert charts over a chosen
// time range (uPlot, from GET /api/v1/series) and the top lists
// (GET /api/v1/top/*, k-threshold applied by the server).

import uPlot from './vendor/uPlot.esm.js';
import {
  CLASS_LABELS, api, currentToken, el, emptyState, errorState, formatBytes, formatCount, hostName,
  isCurrent, isoSeconds, loadingState, localInputValue, parseTime, protoName, routeHref, session, show, timeCell,
} from './lib.js';

const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;

// Range presets and their labels. "span" covers the stored traffic from
// the summary, so a replayed capture from last week shows up without
// picking dates.
const PRESETS = {
  span: 'Stored traffic and alerts',
  '24h': 'Last 24 hours',
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
  custom: 'Custom range',
};

// The charts: series metric, title, value formatter and drawing style.
const CHARTS = [
  {metric: 'bytes', title: 'Traffic (bytes)', format: formatBytes, bars: false},
  {metric: 'flows', title: 'Flows', format: formatCount, bars: false},
  {metric: 'alerts', title: 'Alerts', format: formatCount, bars: true},
];

// The top lists: route, title, row label and the measures shown.
const TRAFFIC = (r) => `${formatCount(r.flows)} flows, ${formatBytes(r.bytes)}${r.hosts_at_least !== undefined ? `, ≥ ${formatCount(r.hosts_at_least)} hosts` : ''}`;
const TOPS = [
  {route: 'top/talkers', title: 'Top talkers', label: (r) => hostName(r.host), measure: TRAFFIC},
  {route: 'top/destinations', title: 'Top destinations', label: (r) => el('span', {class: 'mono', text: `${r.peer ?? 'internal'}:${r.dport}/${protoName(r.proto)}`}), measure: TRAFFIC},
  {route: 'top/domains', title: 'Top domains', label: (r) => el('span', {class: 'mono wrap', text: r.domain || '—'}),
    measure: (r) => `${formatCount(r.queries)} queries, ${formatCount(r.hosts)} hosts`},
  {route: 'top/protocols', title: 'Top protocols', label: (r) => el('span', {class: 'mono', text: r.dport ? `${protoName(r.proto)}/${r.dport}` : protoName(r.proto)}), measure: TRAFFIC},
];

// The time window {from, to} (Dates) for the range in PARAMS.
function windowFor(params, summary, now = new Date()) {
  const preset = PRESETS[params.range] ? params.range : 'span';
  if (preset === 'custom') {
    const from = new Date(params.from);
    const to = new Date(params.to);
    if (!Number.isNaN(from.getTime()) && !Number.isNaN(to.getTime()) && from < to) return {preset, from, to};
  }
  if (preset === '24h') return {preset, from: new Date(now - DAY_MS), to: now};
  if (preset === '7d') return {preset, from: new Date(now - 7 * DAY_MS), to: now};
  if (preset === '30d') return {preset, from: new Date(now - 30 * DAY_MS), to: now};
  // First to last traffic: the alert series counts alerts at the time
  // of the traffic they rest on, so the span contains them too.
  const traffic = (summary && summary.traffic) || {};
  const first = parseTime(traffic.first);
  const last = parseTime(traffic.last);
  if (first && last) {
    // Whole hours around the span, so the first and last bucket show.
    const from = new Date(Math.floor(first.getTime() / HOUR_MS) * HOUR_MS);
    const to = new Date(Math.ceil((last.getTime() + 1) / HOUR_MS) * HOUR_MS);
    return {preset: 'span', from, to};
  }
  return {preset: 'span', from: new Date(now - DAY_MS), to: now};
}

// The series step for a window: about 12 to 300 points per chart.
function stepFor(from, to) {
  const span = to - from;
  if (span <= 12 * HOUR_MS) return '5m';
  if (span <= 14 * DAY_MS) return '1h';
  return '1d';
}

function rangeForm(win) {
  const preset = el('select', {id: 'range-preset', name: 'range'},
    ...Object.entries(PRESETS).map(([value, text]) => el('option', {value, selected: value === win.preset, text})));
  const custom = el('div', {class: 'range-custom', hidden: win.preset !== 'custom'},
    el('div', {class: 'field'}, el('label', {for: 'range-from', text: 'From'}),
      el('input', {id: 'range-from', name: 'from', type: 'datetime-local', value: localInputValue(win.from)})),
    el('div', {class: 'field'}, el('label', {for: 'range-to', text: 'To'}),
      el('input', {id: 'range-to', name: 'to', type: 'datetime-local', value: localInputValue(win.to)})));
  const form = el('form', {class: 'filters range-form', 'aria-label': 'Time range'},
    el('div', {class: 'field'}, el('label', {for: 'range-preset', text: 'Time range'}), preset),
    custom,
    el('div', {class: 'field field-buttons'}, el('button', {type: 'submit', text: 'Show'})));
  preset.addEventListener('change', () => {
    custom.hidden = preset.value !== 'custom';
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (preset.value !== 'custom') {
      location.hash = routeHref('overview', preset.value === 'span' ? {} : {range: preset.value});
      return;
    }
    const from = new Date(form.elements.from.value);
    const to = new Date(form.elements.to.value);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || !(from < to)) {
      form.elements.from.setCustomValidity('Pick a start before the end.');
      form.reportValidity();
      form.elements.from.setCustomValidity('');
      return;
    }
    location.hash = routeHref('overview', {range: 'custom', from: isoSeconds(from), to: isoSeconds(to)});
  });
  return form;
}

function card(label, value, href) {
  const body = [el('span', {class: 'card-value', text: value}), el('span', {class: 'card-label', text: label})];
  return href ? el('a', {class: 'card', href}, ...body) : el('div', {class: 'card'}, ...body);
}

// Read the chart's colours from the stylesheet, so the canvas matches
// the page and no colour is written twice.
function cssColor(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

// Points one chart draws at most; a longer window is drawn as returned.
const DENSE_POINTS_MAX = 5000;

// The series reply's points with a 0 at every empty step of WIN, because
// the server leaves out empty buckets and uPlot would draw a line across
// the gap.
function densify(reply, win) {
  const points = reply.points || [];
  const step = reply.step;
  if (!(step > 0)) return points;
  const first = Math.floor(win.from.getTime() / 1000 / step) * step;
  const last = Math.floor(win.to.getTime() / 1000 / step) * step;
  if ((last - first) / step > DENSE_POINTS_MAX) return points;
  const values = new Map(points.map((p) => [p[0], p[1]]));
  const dense = [];
  for (let t = first; t <= last; t += step) dense.push([t, values.get(t) || 0]);
  // Points outside the window (none are expected) are kept.
  for (const p of points) if (p[0] < first || p[0] > last) dense.push(p);
  return dense.sort((a, b) => a[0] - b[0]);
}

// Draw one uPlot chart into FIGURE from the series reply over window
// WIN. Returns the uPlot instance, or null when there is nothing to draw.
function drawChart(figure, spec, reply, win) {
  const points = densify(reply, win);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const total = ys.reduce((a, b) => a + (typeof b === 'number' ? b : 0), 0);
  figure.dataset.points = String(points.length);
  figure.dataset.total = String(total);
  figure.dataset.source = reply.source || '';
  // Hourly and daily traffic comes from the aggregates, which count only
  // flows with an internal side, so the total can be below the tiles'.
  const scope = reply.source === 'aggregates' ? ', flows with an internal side only' : '';
  const caption = el('figcaption', {},
    el('span', {class: 'chart-title', text: spec.title}),
    el('span', {class: 'muted', text: ` ${spec.format(total)} in total, per ${reply.step >= 86400 ? 'day' : reply.step >= 3600 ? 'hour' : `${Math.round((reply.step || 300) / 60)} minutes`}${scope}, your time zone`}));
  if (points.length === 0 || total === 0) {
    figure.replaceChildren(caption, emptyState(`No ${spec.metric} in this time range.`));
    return null;
  }
  const plotSlot = el('div', {class: 'chart-plot', role: 'img',
    'aria-label': `${spec.title}: ${spec.format(total)} over ${points.length} intervals`});
  figure.replaceChildren(caption, plotSlot);

  const accent = cssColor('--accent', '#1f4e79');
  const fill = cssColor('--accent-soft', '#e3edf7');
  const width = Math.max(plotSlot.clientWidth || figure.clientWidth || 300, 200);
  const opts = {
    width,
    height: 180,
    legend: {show: true, live: true},
    cursor: {drag: {x: false, y: false}},
    scales: {x: {time: true}},
    axes: [
      {stroke: cssColor('--muted', '#5b6574')},
      {stroke: cssColor('--muted', '#5b6574'), size: 70, values: (u, splits) => splits.map((v) => spec.format(v))},
    ],
    series: [
      {},
      {
        label: spec.title,
        stroke: accent,
        width: 2,
        fill,
        value: (u, v) => (v === null || v === undefined ? '—' : spec.format(v)),
        paths: spec.bars ? uPlot.paths.bars({size: [0.8, 40]}) : undefined,
        points: {show: points.length <= 24},
      },
    ],
  };
  const chart = new uPlot(opts, [xs, ys], plotSlot);
  const observer = new ResizeObserver(() => {
    if (!plotSlot.isConnected) {
      observer.disconnect();
      chart.destroy();
      return;
    }
    const w = Math.max(plotSlot.clientWidth, 200);
    if (w !== chart.width) chart.setSize({width: w, height: 180});
  });
  observer.observe(plotSlot);
  return chart;
}

async function loadChart(token, figure, spec, win) {
  const params = {metric: spec.metric, from: isoSeconds(win.from), to: isoSeconds(win.to), step: stepFor(win.from, win.to)};
  let reply;
  try {
    reply = await api('series', params);
  } catch (err) {
    if (!isCurrent(token)) return;
    figure.replaceChildren(el('figcaption', {class: 'chart-title', text: spec.title}),
      errorState(err, () => loadChart(token, figure, spec, win)));
    return;
  }
  if (!isCurrent(token)) return;
  drawChart(figure, spec, reply, win);
}

// One top list into SLOT. The API leaves out every group of fewer than k
// distinct hosts and returns how many it left out; the list shows that too.
async function loadTop(token, slot, spec, win) {
  const heading = el('h3', {text: spec.title});
  let top;
  try {
    top = await api(spec.route, {limit: 10, from: isoSeconds(win.from), to: isoSeconds(win.to)});
  } catch (err) {
    if (!isCurrent(token)) return;
    slot.replaceChildren(heading, errorState(err, () => loadTop(token, slot, spec, win)));
    return;
  }
  if (!isCurrent(token)) return;
  const rows = top.rows || [];
  const list = rows.length
    ? el('ol', {class: 'top-list'}, ...rows.map((r) => el('li', {},
      spec.label(r), el('span', {class: 'muted', text: ` ${spec.measure(r)}`}))))
    : emptyState('Nothing to show for this range.');
  const suppressed = top.suppressed_groups || 0;
  const note = top.k_threshold
    ? el('p', {class: 'muted top-note', text: suppressed
      ? `${formatCount(suppressed)} group${suppressed === 1 ? '' : 's'} of fewer than ${top.k_threshold} hosts not shown (k-threshold).`
      : `Groups of fewer than ${top.k_threshold} hosts are never shown (k-threshold).`})
    : null;
  slot.replaceChildren(heading, list, note);
}

// The roles that may read the data routes behind charts and top lists.
function mayReadData() {
  return !session.role || session.role === 'analyst' || session.role === 'admin';
}

export async function renderOverview(token, params = {}) {
  const title = el('h2', {text: 'Overview'});
  show(token, title, loadingState());

  let summary;
  try {
    summary = await api('summary');
  } catch (err) {
    show(token, title, errorState(err, () => renderOverview(currentToken(), params)));
    return;
  }
  const win = windowFor(params, summary);

  const records = summary.records || {};
  const alerts = summary.alerts || {};
  const cards = el('div', {class: 'cards'},
    ...['flows', 'dns', 'tls', 'http'].map((cls) => card(CLASS_LABELS[cls], formatCount(records[cls]), mayReadData() ? `#/${cls}` : null)),
    card('Alerts', formatCount(alerts.total), mayReadData() ? '#/alerts' : null));

  const severities = el('ul', {class: 'inline-list'},
    ...Object.entries(alerts.by_severity || {}).map(([sev, n]) =>
      el('li', {}, el('span', {class: `badge sev-${sev}`, text: sev}), ` ${formatCount(n)}`)));
  const detectors = el('ul', {class: 'inline-list'},
    ...Object.entries(alerts.by_detector || {}).map(([det, n]) => el('li', {text: `${det}: ${formatCount(n)}`})));
  const alertSection = alerts.total
    ? el('section', {}, el('h3', {text: 'Alerts by severity and detector'}), severities, detectors,
      alerts.complete === false ? el('p', {class: 'muted', text: 'Counted over the oldest alerts only; there are more.'}) : null)
    : el('section', {}, el('h3', {text: 'Alerts by severity and detector'}), emptyState('No alerts yet.'));

  const traffic = summary.traffic || {};
  const ingest = summary.ingest || {};
  const facts = el('dl', {class: 'facts'},
    el('dt', {text: 'Traffic from'}), el('dd', {}, timeCell(traffic.first)),
    el('dt', {text: 'Traffic until'}), el('dd', {}, timeCell(traffic.last)),
    el('dt', {text: 'Last ingest'}), el('dd', {}, timeCell(ingest.last_ingest)),
    el('dt', {text: 'Packets ingested'}), el('dd', {text: formatCount(ingest.packets)}),
    el('dt', {text: 'Capture files'}), el('dd', {text: formatCount(ingest.files)}));
  const dataSection = el('section', {}, el('h3', {text: 'Data'}), facts);

  if (!mayReadData()) {
    show(token, title, cards, alertSection, dataSection,
      el('p', {class: 'muted', text: `Charts and top lists need the analyst role; you are signed in as ${session.role}.`}));
    return;
  }

  const figures = CHARTS.map((spec) => el('figure', {class: 'chart-figure', 'data-metric': spec.metric},
    el('figcaption', {class: 'chart-title', text: spec.title}), loadingState(`Loading ${spec.metric}…`)));
  const charts = el('section', {class: 'charts', 'aria-label': 'Charts'}, ...figures);
  const tops = TOPS.map((spec) => el('section', {class: 'top', 'data-top': spec.route},
    el('h3', {text: spec.title}), loadingState()));
  show(token, title, rangeForm(win), cards, charts,
    el('div', {class: 'tops'}, ...tops), alertSection, dataSection);

  CHARTS.forEach((spec, i) => loadChart(token, figures[i], spec, win));
  TOPS.forEach((spec, i) => loadTop(token, tops[i], spec, win));
}
