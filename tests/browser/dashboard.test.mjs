// Dashboard browser test, in two phases, each serving a store with
// `flowveil serve` on port 0 and opening every page in headless Chromium
// at 1280 px and 390 px wide:
//   seeded: a store filled by flowveil-seed-store. Every page must render
//           without errors, the alerts table must open evidence details and
//           the flows table must page.
//   demo:   the capture from flowveil-demogen, ingested and served with
//           the example policy. The Alerts page must list the planted beacon
//           (peer 203.0.113.50) and exfiltration (peer 198.51.100.77) with
//           pseudonymized hosts. No page and no API reply may contain one of
//           the demo's internal 10.x addresses. The Overview counts must be
//           non-zero. Compliance must show a group's legal basis and the 2
//           alerts in the transparency notice; Retention must list the
//           ingest's retention sweep; Audit must list this visit's own
//           api.read requests and the ingest, with an intact hash chain.
// Screenshots of each page go to $SCREENSHOT_DIR/<phase>/<page>-<width>.png.
//
// Environment:
//   FLOWVEIL_BIN      path to the flowveil binary (required)
//   FLOWVEIL_SEED     path to flowveil-seed-store (required)
//   FLOWVEIL_DEMOGEN  path to flowveil-demogen (required)
//   FLOWVEIL_POLICY   policy file for the demo ingest
//                     (default: policy/example-policy.yaml in this repository)
//   FLOWVEIL_WEB      dashboard directory (default: web/ in this repository)
//   CHROMIUM          browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR    where to write PNGs (default: a temporary directory)
//   PLAYWRIGHT_CORE   module path of playwright-core
//                     (default: node_modules/playwright-core beside this file)
//   FLOWVEIL_REQUIRE_BROWSER  when 1, a missing playwright-core or Chromium
//                     fails the test instead of skipping it
//
// Exit status 0 when every check passes, 1 when one fails, 2 on a missing
// environment variable, and 77 (the test's SKIP_RETURN_CODE in ctest) when
// playwright-core or Chromium is not installed.

import {spawn, execFileSync} from 'node:child_process';
import {existsSync, mkdtempSync, mkdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {createInterface} from 'node:readline';

const MISSING_DEPENDENCY_STATUS = process.env.FLOWVEIL_REQUIRE_BROWSER === '1' ? 1 : 77;
const testDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(testDir, '..', '..');

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`dashboard test: environment variable ${name} is missing; set it to the built binary`);
    process.exit(2);
  }
  return value;
}

const flowveil = required('FLOWVEIL_BIN');
const seed = required('FLOWVEIL_SEED');
const demogen = required('FLOWVEIL_DEMOGEN');
const policy = process.env.FLOWVEIL_POLICY || path.join(repo, 'policy', 'example-policy.yaml');
const webDir = process.env.FLOWVEIL_WEB || path.join(repo, 'web');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

const playwrightPath = process.env.PLAYWRIGHT_CORE || path.join(testDir, 'node_modules', 'playwright-core', 'index.mjs');
if (!existsSync(playwrightPath)) {
  console.error(`dashboard test: ${playwrightPath} not found; run "npm ci" in ${testDir}`);
  process.exit(MISSING_DEPENDENCY_STATUS);
}
if (!existsSync(chromiumPath)) {
  console.error(`dashboard test: ${chromiumPath} not found; install Debian's chromium package or set CHROMIUM`);
  process.exit(MISSING_DEPENDENCY_STATUS);
}
const {chromium} = await import(pathToFileURL(playwrightPath).href);

const work = mkdtempSync(path.join(tmpdir(), 'flowveil-browser-'));
const shots = process.env.SCREENSHOT_DIR || path.join(work, 'screenshots');

const PAGES = ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'retention', 'audit'];
// Compliance needs a policy, which only the demo phase serves with.
// Audit comes last so that it lists the requests of the pages before it.
const DEMO_PAGES = ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'retention', 'compliance', 'audit'];
const VIEWPORTS = [{width: 1280, height: 900, name: 'wide'}, {width: 390, height: 844, name: 'narrow'}];

// Alerts table columns, 1-based for :nth-child: Time, Detector, Severity,
// Host, Peer, Score, Summary, then the Details button.
const ALERT_DETECTOR_COL = 2;
const ALERT_HOST_COL = 4;
const ALERT_PEER_COL = 5;

// Audit table columns: Seq, Time, Actor, Action, Object, Params, Result
// count.
const AUDIT_TIME_COL = 2;
const AUDIT_ACTION_COL = 4;
const AUDIT_OBJECT_COL = 5;
const AUDIT_PARAMS_COL = 6;

// Older pages of the audit trail searched for the ingest entry.
const AUDIT_MAX_PAGES = 10;

// The demo traffic starts at 08:00 UTC on the latest weekday before
// today: inside the example policy's office hours (Mon-Fri 07:00-19:00
// Europe/Berlin), so the office clients are monitored in full, and inside
// the Compliance page's 30-day transparency window whatever the date.
function demoStartSeconds(now = new Date()) {
  const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 8));
  do {
    day.setUTCDate(day.getUTCDate() - 1);
  } while (day.getUTCDay() === 0 || day.getUTCDay() === 6);
  return Math.floor(day.getTime() / 1000);
}

// The demo's internal addresses lie in 10.0.0.0/8 (10.1.0.x hosts and the
// resolver 10.2.0.53). Any 10.x dotted quad, or its in-addr.arpa name, in
// a page or an API reply means an address escaped pseudonymization. The
// audit entries carry remote=127.0.0.1, the dashboard's own loopback
// client, which is no monitored host and does not match. A 10.x network
// in CIDR form with no host bits set and a prefix of at most 30 bits is
// configuration and names no single host. The Compliance page shows such
// networks from the policy, for example the zone 10.0.0.0/8. Every other
// 10.x dotted quad counts as a leak, a /31 or /32 included.
const TEN_NET_OR_ADDRESS = /(?<![\d.])(10\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])(?:\/(\d{1,2})(?!\d))?|(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.10\.in-addr\.arpa/gi;

function isNetworkPrefix(address, length) {
  if (length === undefined) return false;
  const bits = Number(length);
  if (bits < 8 || bits > 30) return false;
  const value = address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const hostBits = 2 ** (32 - bits);
  return value % hostBits === 0;
}

// The first internal address in TEXT, or null. Network prefixes in CIDR
// form are skipped (see TEN_NET_OR_ADDRESS).
function findInternalAddress(text) {
  for (const match of text.matchAll(TEN_NET_OR_ADDRESS)) {
    if (match[1] && isNetworkPrefix(match[1], match[2])) continue;
    return match[0];
  }
  return null;
}

// The leak check must still catch hosts, including ones written with a
// prefix length, and must pass loopback and networks.
for (const [text, expected] of [['host 10.1.0.17 seen', '10.1.0.17'], ['10.1.0.23/24', '10.1.0.23/24'],
  ['10.1.0.4/32', '10.1.0.4/32'],
  ['53.0.2.10.in-addr.arpa', '53.0.2.10.in-addr.arpa'], ['zone 10.0.0.0/8, group 10.9.0.0/16', null],
  ['remote=127.0.0.1', null], ['110.1.2.3', null]]) {
  const found = findInternalAddress(text);
  if (found !== expected) {
    console.error(`dashboard test: the internal address check finds ${found} in "${text}", expected ${expected}`);
    process.exit(1);
  }
}
const PSEUDONYM_V4 = /^ip4-[a-z0-9]{16}$/;

let failures = 0;
function check(condition, message) {
  if (condition) return;
  failures += 1;
  console.error(`FAIL: ${message}`);
}

// Start `flowveil serve` and resolve to its base URL once it prints the
// ready line.
function startServer(db, extraArgs) {
  const child = spawn(flowveil, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--web', webDir, ...extraArgs],
    {stdio: ['ignore', 'pipe', 'inherit']});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('flowveil serve did not print its ready line within 10 s')), 10000);
    child.on('exit', (code) => reject(new Error(`flowveil serve exited early with status ${code}`)));
    createInterface({input: child.stdout}).on('line', (line) => {
      const match = /^flowveil: serving (http:\/\/\S+\/)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve({child, url: match[1]});
      }
    });
  });
}

// Open a page that records console errors, uncaught exceptions and
// requests to any origin other than URL into PROBLEMS. When
// API_BODIES is set, the text of every API reply is pushed onto it.
async function openPage(browser, url, viewport, problems, apiBodies) {
  const page = await browser.newPage();
  await page.setViewportSize({width: viewport.width, height: viewport.height});
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    if (!req.url().startsWith(url)) problems.push(`request to another origin: ${req.url()}`);
  });
  if (apiBodies) {
    page.on('response', (res) => {
      if (!res.url().startsWith(`${url}api/`)) return;
      apiBodies.push(res.text().then((text) => ({url: res.url(), text}),
        (err) => ({url: res.url(), text: '', error: err.message})));
    });
  }
  return page;
}

// Go to dashboard page NAME, wait until it has finished loading, then run
// the checks common to every page.
async function visit(page, url, label, name) {
  await page.goto(`${url}#/${name}`);
  await page.waitForSelector('#view h2');
  await page.waitForFunction(() => !document.querySelector('#view .state-loading'), null, {timeout: 10000});
  check(await page.locator('#view .state-error').count() === 0, `${label} ${name}: error state shown`);
  check(await page.locator(`.nav a[data-route="${name}"][aria-current="page"]`).count() === 1,
    `${label} ${name}: navigation does not mark the page as current`);
}

// Numbers on the Overview cards, by label ("Flows", "Alerts", ...).
async function overviewCounts(page) {
  const counts = {};
  for (const cardNode of await page.locator('#view .card').all()) {
    const label = (await cardNode.locator('.card-label').textContent()).trim();
    const digits = (await cardNode.locator('.card-value').textContent()).replace(/[^\d]/g, '');
    counts[label] = digits === '' ? NaN : Number(digits);
  }
  return counts;
}

// Check that page NAME fits the viewport's width (wide tables scroll
// inside their own box), then screenshot it.
async function finishPage(page, phase, label, name, viewport) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= viewport.width, `${label} ${name}: page is ${width} px wide, wider than the ${viewport.width} px viewport`);

  const dir = path.join(shots, phase);
  mkdirSync(dir, {recursive: true});
  await page.screenshot({path: path.join(dir, `${name}-${viewport.name}.png`), fullPage: true});
}

// Launch Chromium with a fresh profile under the work directory.
// playwright-core passes the profile as --user-data-dir itself.
function launchBrowser(profile) {
  return chromium.launchPersistentContext(path.join(work, profile), {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Serve DB (with EXTRA_ARGS for flowveil serve), run PHASE(browser,
// url), then stop the server and the browser and remove the profile.
async function withServer(db, extraArgs, profile, phase) {
  const {child, url} = await startServer(db, extraArgs);
  let browser = null;
  try {
    browser = await launchBrowser(profile);
    await phase(browser, url);
  } finally {
    if (browser) await browser.close();
    child.kill('SIGTERM');
    rmSync(path.join(work, profile), {recursive: true, force: true});
  }
}

// ---- phase 1: seeded store ---------------------------------------------

async function seededPhase(browser, url) {
  for (const viewport of VIEWPORTS) {
    const label = `seeded ${viewport.name}`;
    const problems = [];
    const page = await openPage(browser, url, viewport, problems, null);

    for (const name of PAGES) {
      await visit(page, url, label, name);

      if (name === 'alerts') {
        const rows = page.locator('#view tbody tr.clickable');
        check(await rows.count() === 4, `${label} alerts: expected 4 rows, got ${await rows.count()}`);
        const time = page.locator('#view tbody tr.clickable time').first();
        check(/^UTC \d{4}-\d\d-\d\dT/.test(await time.getAttribute('title') || ''), `${label} alerts: time cell lacks the UTC title`);
        await page.locator('#view tbody tr.clickable button').first().click();
        check(await page.locator('#view .details-row dl').count() === 1, `${label} alerts: details row did not open`);
      }
      if (name === 'flows') {
        check(await page.locator('#view tbody tr').count() === 50, `${label} flows: first page should hold 50 rows`);
        await page.getByRole('button', {name: 'Older →'}).click();
        await page.waitForFunction(() => !document.querySelector('#view .state-loading'));
        check(!(await page.getByRole('button', {name: '← Newer'}).isDisabled()), `${label} flows: Newer is disabled on page 2`);
      }
      if (name === 'overview') {
        await page.waitForSelector('#view svg.chart rect.bar, #view .chart-figure, #view .state-empty', {timeout: 10000});
        check(await page.locator('#view svg.chart rect.bar').count() > 0, `${label} overview: traffic chart has no bars`);
      }
      if (name === 'retention') {
        check(await page.locator('#view table').first().locator('tbody tr').count() === 8, `${label} retention: expected one row per class (flows, dns, tls, http, alerts, dhcp, ssh, aggregates)`);
      }
      if (name === 'audit') {
        // The seeded store is written without audit entries; the visit's
        // own requests are the trail.
        check(await page.locator('#view tbody tr').count() > 0, `${label} audit: no entries listed`);
        check(await page.locator('#view .audit-verify .badge.ok').count() === 1, `${label} audit: hash chain not shown as intact`);
      }
      await finishPage(page, 'seeded', label, name, viewport);
    }
    for (const problem of problems) check(false, `${label}: ${problem}`);
    await page.close();
  }
}

// ---- phase 2: the demo capture -----------------------------------------

// Check the demo's Alerts page: one beacon and one exfiltration alert
// with the planted peers and pseudonymized hosts; open the beacon's
// evidence.
async function checkDemoAlerts(page, label) {
  const rows = page.locator('#view tbody tr.clickable');
  const count = await rows.count();
  check(count === 2, `${label} alerts: expected the 2 planted alerts, got ${count} rows`);

  const seen = {};
  for (let i = 0; i < count; i++) {
    const row = rows.nth(i);
    const detector = (await row.locator(`td:nth-child(${ALERT_DETECTOR_COL})`).textContent()).trim();
    const host = (await row.locator(`td:nth-child(${ALERT_HOST_COL}) .mono`).textContent()).trim();
    const peer = (await row.locator(`td:nth-child(${ALERT_PEER_COL}) .mono`).textContent()).trim();
    seen[detector] = {row, peer};
    check(PSEUDONYM_V4.test(host), `${label} alerts: ${detector} host "${host}" is not an ip4- pseudonym token`);
  }

  check(seen.beacon !== undefined, `${label} alerts: no beacon alert listed`);
  check(seen.exfil !== undefined, `${label} alerts: no exfil alert listed`);
  if (seen.beacon) {
    check(seen.beacon.peer === '203.0.113.50:443', `${label} alerts: beacon peer is "${seen.beacon.peer}", expected 203.0.113.50:443`);
  }
  if (seen.exfil) {
    check(seen.exfil.peer === '198.51.100.77:443', `${label} alerts: exfil peer is "${seen.exfil.peer}", expected 198.51.100.77:443`);
  }
  if (!seen.beacon) return;

  await seen.beacon.row.getByRole('button', {name: 'Details'}).click();
  const details = page.locator('#view .details-row dl');
  check(await details.count() === 1, `${label} alerts: beacon evidence did not open`);
  if (await details.count() !== 1) return;
  const terms = (await details.locator('dt').allTextContents()).map((t) => t.trim());
  check(terms.includes('connections'), `${label} alerts: beacon evidence lacks "connections" (has: ${terms.join(', ')})`);
  check(terms.includes('median interval s'), `${label} alerts: beacon evidence lacks "median interval s"`);
  const flowsIndex = terms.indexOf('Flows');
  const flowsText = flowsIndex < 0 ? '' : await details.locator('dd').nth(flowsIndex).textContent();
  check(Number(flowsText.replace(/[^\d]/g, '')) > 0, `${label} alerts: beacon evidence shows flow count "${flowsText}"`);
}

async function checkDemoOverview(page, label) {
  const counts = await overviewCounts(page);
  for (const cardLabel of ['Flows', 'DNS', 'TLS', 'HTTP', 'Alerts']) {
    check(counts[cardLabel] > 0, `${label} overview: ${cardLabel} count is ${counts[cardLabel]}, expected non-zero`);
  }
  check(counts.Alerts === 2, `${label} overview: Alerts count is ${counts.Alerts}, expected the 2 planted alerts`);
  await page.waitForSelector('#view svg.chart rect.bar, #view .chart-figure, #view .state-empty', {timeout: 10000});
  check(await page.locator('#view svg.chart rect.bar').count() > 0, `${label} overview: traffic chart has no bars`);
}

// Retention: the per-class table with its next-sweep column, and the
// deletion history listing the sweep that the ingest ran.
async function checkDemoRetention(page, label) {
  const classTable = page.locator('#view table').first();
  check(await classTable.locator('tbody tr').count() === 8, `${label} retention: expected one row per class (flows, dns, tls, http, alerts, dhcp, ssh, aggregates)`);
  const heads = (await classTable.locator('thead th').allTextContents()).map((t) => t.trim());
  check(heads.includes('Next sweep'), `${label} retention: no "Next sweep" column (has: ${heads.join(', ')})`);

  const history = page.locator('#view .retention-history');
  check(await history.count() === 1, `${label} retention: no deletion history section`);
  if (await history.count() !== 1) return;
  await page.waitForFunction(() => !document.querySelector('#view .retention-history .state-loading'), null, {timeout: 10000});
  check(await history.locator('.state-error').count() === 0, `${label} retention: deletion history shows an error`);
  const actions = (await history.locator('tbody tr td:nth-child(2)').allTextContents()).map((t) => t.trim());
  check(actions.includes('Retention sweep'), `${label} retention: deletion history lacks the ingest's retention sweep (has: ${actions.join(', ') || 'no rows'})`);
  const deleted = await history.locator('tbody tr td:nth-child(4)').allTextContents();
  check(deleted.length > 0 && deleted.every((t) => t.trim() !== ''), `${label} retention: deletion history has empty deleted-per-class cells`);
}

// Compliance: the record of processing names the legal basis of the
// works-council group, and the transparency notice counts the 2 alerts.
async function checkDemoCompliance(page, label) {
  const reports = page.locator('#view .compliance-report');
  check(await reports.count() === 2, `${label} compliance: expected the processing record and the transparency notice, got ${await reports.count()} sections`);
  if (await reports.count() !== 2) return;
  const processing = await reports.nth(0).textContent();
  check(/works agreement/i.test(processing), `${label} compliance: processing record does not show the works-council group's legal basis "works agreement"`);
  check(/legitimate interest/i.test(processing), `${label} compliance: processing record does not show the office-clients group's legal basis "legitimate interest"`);

  let alertsRaised = null;
  for (const row of await reports.nth(1).locator('tbody tr').all()) {
    const cells = (await row.locator('td').allTextContents()).map((t) => t.trim());
    if (cells[0] === 'alerts raised') alertsRaised = cells[1];
  }
  check(alertsRaised === '2', `${label} compliance: transparency notice shows ${alertsRaised === null ? 'no "alerts raised" row' : `"${alertsRaised}" alerts raised`}, expected 2`);
}

// Audit: entries with UTC titles, an intact chain, this visit's api.read
// of /api/v1/summary from the loopback client, and, paging back with
// Older and narrowing with the action filter, the ingest entry.
async function checkDemoAudit(page, label) {
  const rows = page.locator('#view tbody tr');
  check(await rows.count() > 0, `${label} audit: no entries listed`);
  if (await rows.count() === 0) return;
  check(await page.locator('#view .audit-verify .badge.ok').count() === 1, `${label} audit: hash chain not shown as intact`);
  const time = page.locator(`#view tbody tr td:nth-child(${AUDIT_TIME_COL}) time`).first();
  check(/^UTC \d{4}-\d\d-\d\dT/.test(await time.getAttribute('title') || ''), `${label} audit: time cell lacks the UTC title`);

  let ownRead = false;
  for (const row of await rows.all()) {
    const action = (await row.locator(`td:nth-child(${AUDIT_ACTION_COL})`).textContent()).trim();
    const object = (await row.locator(`td:nth-child(${AUDIT_OBJECT_COL})`).textContent()).trim();
    const params = await row.locator(`td:nth-child(${AUDIT_PARAMS_COL})`).textContent();
    if (action === 'api.read' && object === '/api/v1/summary' && params.includes('remote=127.0.0.1')) ownRead = true;
  }
  check(ownRead, `${label} audit: no api.read entry for this visit's /api/v1/summary request from 127.0.0.1`);

  // The ingest ran before the server started, so it is the oldest entry
  // but one or two; page back until a page lists it.
  const older = page.getByRole('button', {name: 'Older →'});
  let found = false;
  for (let i = 0; i < AUDIT_MAX_PAGES; i++) {
    const actions = (await page.locator(`#view tbody tr td:nth-child(${AUDIT_ACTION_COL})`).allTextContents()).map((t) => t.trim());
    if (actions.includes('ingest')) {
      found = true;
      break;
    }
    if (await older.isDisabled()) break;
    await older.press('Enter');
    await page.waitForFunction(() => !document.querySelector('#view .state-loading'), null, {timeout: 10000});
  }
  check(found, `${label} audit: no ingest entry within ${AUDIT_MAX_PAGES} pages`);
  if (!found) return;

  await page.locator('#audit-action').selectOption('ingest');
  const shown = (await page.locator(`#view tbody tr td:nth-child(${AUDIT_ACTION_COL})`).allTextContents()).map((t) => t.trim());
  check(shown.length >= 1 && shown.every((a) => a === 'ingest'), `${label} audit: the action filter shows ${shown.join(', ') || 'no rows'} for "ingest"`);

  // Back to the unfiltered newest page for the screenshot.
  await page.locator('#audit-action').selectOption('');
  const newer = page.getByRole('button', {name: '← Newer'});
  for (let i = 0; i < AUDIT_MAX_PAGES && !(await newer.isDisabled()); i++) {
    await newer.click();
    await page.waitForFunction(() => !document.querySelector('#view .state-loading'), null, {timeout: 10000});
  }
}

async function demoPhase(browser, url) {
  for (const viewport of VIEWPORTS) {
    const label = `demo ${viewport.name}`;
    const problems = [];
    const apiBodies = [];
    const page = await openPage(browser, url, viewport, problems, apiBodies);

    for (const name of DEMO_PAGES) {
      await visit(page, url, label, name);
      if (name === 'overview') await checkDemoOverview(page, label);
      if (name === 'alerts') await checkDemoAlerts(page, label);
      if (name === 'retention') await checkDemoRetention(page, label);
      if (name === 'compliance') await checkDemoCompliance(page, label);
      if (name === 'audit') await checkDemoAudit(page, label);

      // The whole document, so attribute values such as titles count too.
      const html = await page.content();
      const leak = findInternalAddress(html);
      check(leak === null, `${label} ${name}: page contains the internal address ${leak}`);
      await finishPage(page, 'demo', label, name, viewport);
    }

    const bodies = await Promise.all(apiBodies);
    check(bodies.length > 0, `${label}: no API reply was seen`);
    for (const body of bodies) {
      if (body.error) continue;
      const leak = findInternalAddress(body.text);
      check(leak === null, `${label}: API reply ${body.url} contains the internal address ${leak}`);
    }
    for (const problem of problems) check(false, `${label}: ${problem}`);
    await page.close();
  }
}

// ---- main ------------------------------------------------------------------

try {
  const seededDb = path.join(work, 'seeded-db');
  execFileSync(seed, [seededDb, String(Math.floor(Date.now() / 1000))], {stdio: 'inherit'});
  await withServer(seededDb, [], 'seeded-profile', seededPhase);

  const capture = path.join(work, 'demo.pcap');
  const demoDb = path.join(work, 'demo-db');
  execFileSync(demogen, ['--output', capture, '--start', String(demoStartSeconds())], {stdio: 'inherit'});
  execFileSync(flowveil, ['ingest', '--policy', policy, '--db', demoDb, capture], {stdio: 'inherit'});
  await withServer(demoDb, ['--policy', policy], 'demo-profile', demoPhase);
} finally {
  if (!process.env.SCREENSHOT_DIR) console.log(`screenshots kept in ${shots}`);
  for (const name of ['seeded-db', 'demo-db', 'demo.pcap']) {
    rmSync(path.join(work, name), {recursive: true, force: true});
  }
  if (process.env.SCREENSHOT_DIR) rmSync(work, {recursive: true, force: true});
}

if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('dashboard browser test passed');
