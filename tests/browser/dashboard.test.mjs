// Dashboard browser test, in two phases, each serving a store with
// `flowveil serve` on port 0 and opening every page in headless Chromium
// at 1280 px and 390 px wide:
//   seeded: a store filled by flowveil-seed-store. Every page must render
//           without errors, the alerts table must open evidence details and
//           the flows table must page.
//   demo:   the capture from flowveil-demogen, ingested with the example
//           policy. The Alerts page must list the planted beacon (peer
//           203.0.113.50) and exfiltration (peer 198.51.100.77) with
//           pseudonymized hosts. No page and no API reply may contain one of
//           the demo's internal 10.x addresses. The Overview counts must be
//           non-zero.
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

const PAGES = ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'retention'];
const VIEWPORTS = [{width: 1280, height: 900, name: 'wide'}, {width: 390, height: 844, name: 'narrow'}];

// Alerts table columns, 1-based for :nth-child: Time, Detector, Severity,
// Host, Peer, Score, Summary, then the Details button.
const ALERT_DETECTOR_COL = 2;
const ALERT_HOST_COL = 4;
const ALERT_PEER_COL = 5;

// The demo's internal addresses lie in 10.0.0.0/8 (10.1.0.x hosts and the
// resolver 10.2.0.53). Any 10.x dotted quad, or its in-addr.arpa name, in
// a page or an API reply means an address escaped pseudonymization.
const INTERNAL_ADDRESS = /(?<![\d.])10\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])|(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.10\.in-addr\.arpa/i;
const PSEUDONYM_V4 = /^ip4-[a-z0-9]{16}$/;

let failures = 0;
function check(condition, message) {
  if (condition) return;
  failures += 1;
  console.error(`FAIL: ${message}`);
}

// Start `flowveil serve` and resolve to its base URL once it prints the
// ready line.
function startServer(db) {
  const child = spawn(flowveil, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--web', webDir],
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

// Serve DB, run PHASE(browser, url), then stop the server and the browser
// and remove the profile.
async function withServer(db, profile, phase) {
  const {child, url} = await startServer(db);
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
        check(await page.locator('#view tbody tr').count() === 8, `${label} retention: expected one row per class (flows, dns, tls, http, alerts, dhcp, ssh, aggregates)`);
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

async function demoPhase(browser, url) {
  for (const viewport of VIEWPORTS) {
    const label = `demo ${viewport.name}`;
    const problems = [];
    const apiBodies = [];
    const page = await openPage(browser, url, viewport, problems, apiBodies);

    for (const name of PAGES) {
      await visit(page, url, label, name);
      if (name === 'overview') await checkDemoOverview(page, label);
      if (name === 'alerts') await checkDemoAlerts(page, label);
      if (name === 'retention') {
        check(await page.locator('#view tbody tr').count() === 8, `${label} retention: expected one row per class (flows, dns, tls, http, alerts, dhcp, ssh, aggregates)`);
      }

      // The whole document, so attribute values such as titles count too.
      const html = await page.content();
      const leak = INTERNAL_ADDRESS.exec(html);
      check(leak === null, `${label} ${name}: page contains the internal address ${leak && leak[0]}`);
      await finishPage(page, 'demo', label, name, viewport);
    }

    const bodies = await Promise.all(apiBodies);
    check(bodies.length > 0, `${label}: no API reply was seen`);
    for (const body of bodies) {
      if (body.error) continue;
      const leak = INTERNAL_ADDRESS.exec(body.text);
      check(leak === null, `${label}: API reply ${body.url} contains the internal address ${leak && leak[0]}`);
    }
    for (const problem of problems) check(false, `${label}: ${problem}`);
    await page.close();
  }
}

// ---- main ------------------------------------------------------------------

try {
  const seededDb = path.join(work, 'seeded-db');
  execFileSync(seed, [seededDb, String(Math.floor(Date.now() / 1000))], {stdio: 'inherit'});
  await withServer(seededDb, 'seeded-profile', seededPhase);

  const capture = path.join(work, 'demo.pcap');
  const demoDb = path.join(work, 'demo-db');
  execFileSync(demogen, ['--output', capture], {stdio: 'inherit'});
  execFileSync(flowveil, ['ingest', '--policy', policy, '--db', demoDb, capture], {stdio: 'inherit'});
  await withServer(demoDb, 'demo-profile', demoPhase);
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
