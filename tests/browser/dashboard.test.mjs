// Dashboard browser test, in three phases, each serving a store with
// `flowveil serve` on port 0 (admin password from a file) and driving
// headless Chromium through playwright-core:
//   seeded: a store filled by flowveil-seed-store. After signing in, every
//           page must render without errors at 1280 px and 390 px wide,
//           the alert dialog must open, the flows table must page and a
//           host pseudonym must open its timeline. The Capture page must
//           show the seeded counters: eth1's kernel and interface drops,
//           the worker queue and export drops, and a warning banner that
//           states 2 % of the received packets as dropped.
//   demo:   the capture from flowveil-demogen, ingested and served with
//           the example policy. A wrong password must be rejected. The
//           Alerts page must list the planted beacon (peer 203.0.113.50)
//           and exfiltration (peer 198.51.100.77) with pseudonymized
//           hosts. The beacon is acknowledged and the exfil closed with a
//           note, and both states must survive a reload. The charts must
//           draw non-zero series over the stored span and nothing over a
//           range in 2020. The Capture page must show the ingest's
//           packets and no drop warning. A host timeline must open from the alert, and
//           flows must page and filter. Retention must list the ingest's
//           sweep. Audit must list this visit's own requests and both
//           state changes with an intact hash chain. The navigation must
//           work from the keyboard alone. A lost session must lead to the
//           sign-in form and back, and signing out must end the session.
//           An analyst user must not see the Audit page (hidden link,
//           denied page, 403 from the API), nor a compliance officer the
//           Alerts page. Repeated wrong passwords must
//           end in the rate-limit message. No page and no API reply may
//           contain one of the demo's internal 10.x addresses.
//   overdue: the seeded data stored 40 days ago, past the flows' 30-day
//           limit and never swept: Retention must warn about the flows.
// In every phase the browser must load nothing but the server on
// loopback: a request listener records every other URL as a failure and
// a route aborts it. The vendored uPlot must match the version pinned in
// package.json.
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
import {existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
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

// Known passwords of the test users, written to files for the CLI.
const ADMIN_PASSWORD = 'browser-test-admin-pw-1';
const ANALYST_USER = 'ana';
const ANALYST_PASSWORD = 'browser-test-analyst-pw-1';
const CLOSE_NOTE = 'Closed by the browser test: planted exfiltration';

const PAGES = ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'dhcp', 'ssh', 'aggregates', 'capture', 'retention', 'audit'];
// Compliance needs a policy, which only the demo phase serves with.
// Audit comes last so that it lists the requests of the pages before it.
const DEMO_PAGES = ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'capture', 'retention', 'compliance', 'audit'];
const VIEWPORTS = [{width: 1280, height: 900, name: 'wide'}, {width: 390, height: 844, name: 'narrow'}];

// The nav entries in document order, as index.html lists them.
const NAV_ORDER = ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'dhcp', 'ssh', 'aggregates', 'capture', 'retention', 'compliance', 'audit'];
const ANALYST_HIDDEN = ['compliance', 'audit'];
const OFFICER_USER = 'cora';
const OFFICER_PASSWORD = 'browser-test-officer-pw-1';
const OFFICER_SHOWN = ['overview', 'capture', 'retention', 'compliance', 'audit'];

// Alerts table columns, 1-based for :nth-child: Last activity, Detector,
// Severity, Host, Peer, Score, State, Summary, then the Details button.
const ALERT_DETECTOR_COL = 2;
const ALERT_HOST_COL = 4;
const ALERT_PEER_COL = 5;
const ALERT_STATE_COL = 7;

// Audit table columns: Seq, Time, Actor, Action, Object, Params, Result
// count.
const AUDIT_TIME_COL = 2;
const AUDIT_ACTOR_COL = 3;
const AUDIT_ACTION_COL = 4;
const AUDIT_OBJECT_COL = 5;
const AUDIT_PARAMS_COL = 6;

// Older pages of the audit trail searched for the ingest entry.
const AUDIT_MAX_PAGES = 10;

// Wrong passwords tried at most before the rate limit (429) must apply.
const RATE_LIMIT_MAX_TRIES = 40;

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

// True for a URL the dashboard may load: the server on loopback, or a
// blob: or data: URL that the page made itself.
function isLoopbackUrl(text) {
  if (text.startsWith('blob:')) return isLoopbackUrl(text.slice(5));
  if (text.startsWith('data:')) return true;
  let url;
  try {
    url = new URL(text);
  } catch (err) {
    return false;
  }
  return ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname) && ['http:', 'https:'].includes(url.protocol);
}

// The leak check must still catch hosts, including ones written with a
// prefix length, and must pass loopback and networks; the origin check
// must pass loopback only.
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
for (const [text, expected] of [['http://127.0.0.1:8080/app.js', true], ['blob:http://127.0.0.1:9/x', true],
  ['https://cdn.example.com/uPlot.js', false], ['http://127.0.0.1.example.com/', false], ['ws://127.0.0.1:1/', false]]) {
  if (isLoopbackUrl(text) !== expected) {
    console.error(`dashboard test: the origin check calls "${text}" ${expected ? 'remote' : 'loopback'}`);
    process.exit(1);
  }
}
const PSEUDONYM_V4 = /^ip4-[a-z2-7]{16}$/;

let failures = 0;
function check(condition, message) {
  if (condition) return;
  failures += 1;
  console.error(`FAIL: ${message}`);
}

// The vendored chart library must be the version package.json pins, so
// web/vendor/ cannot drift from the lock file unnoticed.
function checkVendoredUplot() {
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
  const version = pkg.devDependencies && pkg.devDependencies.uplot;
  check(/^\d+\.\d+\.\d+$/.test(version || ''), `package.json: uplot is "${version}", expected an exact version`);
  const esm = path.join(webDir, 'vendor', 'uPlot.esm.js');
  const head = existsSync(esm) ? readFileSync(esm, 'utf8').slice(0, 400) : '';
  check(head.includes(`(v${version})`), `${esm} is not uPlot ${version}; run scripts/vendor-web.sh`);
  check(existsSync(path.join(webDir, 'vendor', 'uPlot.LICENSE')), 'web/vendor/uPlot.LICENSE is missing');
}

// Start `flowveil serve` and resolve to its base URL once it prints the
// ready line.
function startServer(db, extraArgs) {
  const passwordFile = path.join(work, 'admin-password');
  writeFileSync(passwordFile, `${ADMIN_PASSWORD}\n`, {mode: 0o600});
  const child = spawn(flowveil, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--web', webDir,
    '--admin-password-file', passwordFile, ...extraArgs], {stdio: ['ignore', 'pipe', 'inherit']});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('flowveil serve did not print its ready line within 10 s')), 10000);
    child.on('error', (err) => reject(new Error(`flowveil serve could not start: ${err.message}`)));
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

// Add user NAME with ROLE and PASSWORD to the store DB through the CLI.
function addUser(db, name, role, password) {
  const file = path.join(work, `password-${name}`);
  writeFileSync(file, `${password}\n`, {mode: 0o600});
  execFileSync(flowveil, ['user', 'add', name, '--role', role, '--password-file', file, '--db', db], {stdio: 'inherit'});
}

// Open a page that records console errors, uncaught exceptions and
// requests to anything but loopback into PROBLEMS; such requests are
// also aborted. When API_BODIES is set, the text of every API reply is
// pushed onto it.
async function openPage(browser, url, viewport, problems, apiBodies) {
  const page = await browser.newPage();
  // Every wait fails after 10 s, so a missing element costs one check,
  // not the whole ctest timeout.
  page.setDefaultTimeout(10000);
  await page.setViewportSize({width: viewport.width, height: viewport.height});
  // The number of 400 replies that a check provokes on purpose and that
  // have not been logged yet.
  page.expectedBadRequests = 0;
  page.on('console', (msg) => {
    // 401, 403 and 429 replies are expected in the sign-in and role
    // checks; Chromium logs each failed fetch as a console error.
    if (msg.type() !== 'error' || /status of (401|403|429)/.test(msg.text())) return;
    if (/status of 400/.test(msg.text()) && page.expectedBadRequests > 0) {
      page.expectedBadRequests -= 1;
      return;
    }
    problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    const target = req.url();
    const own = target.startsWith(url) || target.startsWith(`blob:${url}`) || target.startsWith('data:');
    if (!isLoopbackUrl(target) || !own) problems.push(`request to another origin: ${target}`);
  });
  await page.route((u) => !isLoopbackUrl(u.href), (route) => route.abort('blockedbyclient'));
  if (apiBodies) {
    page.on('response', (res) => {
      if (!res.url().startsWith(`${url}api/`)) return;
      apiBodies.push(res.text().then((text) => ({url: res.url(), text}),
        (err) => ({url: res.url(), text: '', error: err.message})));
    });
  }
  return page;
}

async function waitLoaded(page) {
  await page.waitForFunction(() => !document.querySelector('#view .state-loading'), null, {timeout: 15000});
}

// Sign in through the form as USER with PASSWORD; resolve once the
// session box shows the user.
async function signIn(page, url, user, password) {
  await page.goto(`${url}#/overview`);
  await page.waitForSelector('#login-user', {timeout: 10000});
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.waitForSelector('#session:not([hidden])', {timeout: 10000});
  check((await page.locator('#session-user').textContent()).startsWith(user), `signing in as ${user}: the header does not name the user`);
}

async function signOut(page) {
  await page.getByRole('button', {name: 'Sign out'}).click();
  await page.waitForSelector('#login-user', {timeout: 10000});
}

// The HTTP status of a GET of API route ROUTE from inside the page, with
// the page's session cookie.
function apiStatus(page, route) {
  return page.evaluate(async (r) => (await fetch(`/api/v1/${r}`, {credentials: 'same-origin'})).status, route);
}

// Go to URL#HASH and wait until the page has rendered it. Right after
// the navigation the previous page can still be shown, finished loading,
// because the hashchange handler runs as a task of its own. So every
// element of the view is marked first, and a render replaces them all.
// Going to the hash already shown renders nothing, so then this only
// waits for loading to end.
async function gotoHash(page, url, hash) {
  const same = await page.evaluate((expected) => {
    for (const node of document.querySelectorAll('#view > *')) node.dataset.beforeNavigation = '1';
    return location.hash === expected;
  }, `#${hash}`);
  await page.goto(`${url}#${hash}`);
  if (!same) {
    await page.waitForFunction(() => !document.querySelector('#view [data-before-navigation]'),
      null, {timeout: 15000}).catch(() => {});
  }
  await waitLoaded(page);
}

// Go to dashboard page NAME, wait until it has finished loading, then run
// the checks common to every page.
async function visit(page, url, label, name) {
  await gotoHash(page, url, `/${name}`);
  await page.waitForSelector('#view h2');
  await waitLoaded(page);
  const errors = await page.locator('#view .state-error').allTextContents();
  check(errors.length === 0, `${label} ${name}: error state shown: ${errors.join(' / ')}`);
  check(await page.locator('#view .state-forbidden').count() === 0, `${label} ${name}: access denied shown to the admin`);
  if (await page.locator(`.nav a[data-route="${name}"][aria-current="page"]`).count() !== 1) {
    // Say what the page shows instead: a sign-in form means the session
    // was lost, another heading means the router went elsewhere.
    const heading = (await page.locator('#view h2').first().textContent()) || '';
    check(false, `${label} ${name}: navigation does not mark the page as current (the page shows "${heading.trim()}" at ${page.url()})`);
  }
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

// Check that the page fits the viewport's width (wide tables scroll
// inside their own box), then screenshot it as NAME.
async function finishPage(page, phase, label, name, viewport) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= viewport.width, `${label} ${name}: page is ${width} px wide, wider than the ${viewport.width} px viewport`);

  const dir = path.join(shots, phase);
  mkdirSync(dir, {recursive: true});
  await page.screenshot({path: path.join(dir, `${name}-${viewport.name}.png`), fullPage: true});
}

// Wait for the Overview charts to finish: a drawn uPlot canvas or an
// empty state in each figure. Returns {metric: total} of the drawn ones.
async function chartTotals(page, label) {
  await page.waitForFunction(() => {
    const figures = [...document.querySelectorAll('#view figure.chart-figure')];
    return figures.length === 3 && figures.every((f) => f.querySelector('.uplot canvas, .state-empty, .state-error'));
  }, null, {timeout: 15000});
  const totals = {};
  for (const figure of await page.locator('#view figure.chart-figure').all()) {
    const metric = await figure.getAttribute('data-metric');
    check(await figure.locator('.state-error').count() === 0, `${label} overview: the ${metric} chart shows an error`);
    totals[metric] = Number(await figure.getAttribute('data-total') || 'NaN');
    // A total from the aggregates counts only flows with an internal
    // side, and the caption must state it, since the tiles count all.
    const source = await figure.getAttribute('data-source');
    const caption = (await figure.locator('figcaption').textContent()) || '';
    check((source === 'aggregates') === caption.includes('internal side only'), `${label} overview: the ${metric} chart (source ${source}) has the caption "${caption}"`);
    if (await figure.locator('.uplot canvas').count() > 0) {
      const box = await figure.locator('.uplot').boundingBox();
      check(box && box.width > 150 && box.height > 100, `${label} overview: the ${metric} chart is ${box ? `${box.width}x${box.height}` : 'not'} drawn`);
    }
  }
  return totals;
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

// Open the host timeline by clicking the first host link in the view.
async function checkHostTimeline(page, label, linkSelector) {
  const link = page.locator(linkSelector).first();
  check(await link.count() === 1, `${label}: no host pseudonym link to click`);
  if (await link.count() !== 1) return;
  const token = (await link.textContent()).trim().replace(/:\d+$/, '');
  await link.click();
  // The view that was shown has a heading and no loading state too, so
  // wait for the timeline's own heading before waiting for its data.
  await page.waitForFunction((t) => (document.querySelector('#view h2')?.textContent || '').includes(t),
    token, {timeout: 15000});
  await waitLoaded(page);
  check(page.url().includes(`#/host/${token}`), `${label}: clicking ${token} did not open its timeline (at ${page.url()})`);
  check(await page.locator('#view .state-error').count() === 0, `${label} host: error state shown`);
  const rows = page.locator('#view tbody tr');
  check(await rows.count() > 0, `${label} host: the timeline of ${token} lists no event`);
  const classes = new Set((await page.locator('#view tbody tr td:nth-child(2)').allTextContents()).map((t) => t.trim()));
  check(classes.has('Flows'), `${label} host: the timeline lists no flow (classes: ${[...classes].join(', ')})`);
}

// ---- phase 1: seeded store ---------------------------------------------

async function seededPhase(browser, url) {
  for (const viewport of VIEWPORTS) {
    const label = `seeded ${viewport.name}`;
    const problems = [];
    const page = await openPage(browser, url, viewport, problems, null);
    if (viewport.name === 'wide') await signIn(page, url, 'admin', ADMIN_PASSWORD);

    for (const name of PAGES) {
      await visit(page, url, label, name);

      if (name === 'alerts') {
        const rows = page.locator('#view tbody tr.clickable');
        check(await rows.count() === 4, `${label} alerts: expected 4 rows, got ${await rows.count()}`);
        const time = page.locator('#view tbody tr.clickable time').first();
        check(/^UTC \d{4}-\d\d-\d\dT/.test(await time.getAttribute('title') || ''), `${label} alerts: time cell lacks the UTC title`);
        await page.locator('#view tbody tr.clickable').first().getByRole('button', {name: 'Details'}).click();
        const dialog = page.locator('dialog.alert-dialog[open]');
        check(await dialog.count() === 1, `${label} alerts: the detail dialog did not open`);
        check(await dialog.locator('dl.details dt').count() > 0, `${label} alerts: the detail dialog lists no facts`);
        await page.keyboard.press('Escape');
        check(await page.locator('dialog.alert-dialog[open]').count() === 0, `${label} alerts: Escape did not close the dialog`);
      }
      if (name === 'flows') {
        check(await page.locator('#view tbody tr').count() === 50, `${label} flows: first page should hold 50 rows`);
        await page.getByRole('button', {name: 'Older →'}).click();
        await waitLoaded(page);
        check(!(await page.getByRole('button', {name: '← Newer'}).isDisabled()), `${label} flows: Newer is disabled on page 2`);
        await page.getByRole('button', {name: '← Newer'}).click();
        await waitLoaded(page);
        check(await page.getByRole('button', {name: '← Newer'}).isDisabled(), `${label} flows: Newer is enabled back on page 1`);
      }
      if (name === 'overview') await chartTotals(page, label);
      if (name === 'capture') await checkSeededCapture(page, label);
      if (name === 'retention') {
        check(await page.locator('#view table').first().locator('tbody tr').count() === 8, `${label} retention: expected one row per class (flows, dns, tls, http, alerts, dhcp, ssh, aggregates)`);
      }
      if (name === 'audit') {
        check(await page.locator('#view tbody tr').count() > 0, `${label} audit: no entries listed`);
        check(await page.locator('#view .audit-verify .badge.ok').count() === 1, `${label} audit: hash chain not shown as intact`);
      }
      await finishPage(page, 'seeded', label, name, viewport);
    }

    await page.goto(`${url}#/flows`);
    await waitLoaded(page);
    await checkHostTimeline(page, label, '#view tbody a.host-link');
    await finishPage(page, 'seeded', label, 'host', viewport);

    for (const problem of problems) check(false, `${label}: ${problem}`);
    await page.close();
  }
}

// The rows of the Capture page's table in SECTION (a class name) as
// arrays of trimmed cell texts.
async function captureRows(page, section) {
  const rows = [];
  for (const row of await page.locator(`#view .${section} tbody tr`).all()) {
    rows.push((await row.locator('td').allTextContents()).map((t) => t.trim()));
  }
  return rows;
}

// Digits of TEXT as a number, so "98,000" and "98.000" both read 98000.
function digits(text) {
  const only = String(text).replace(/[^\d]/g, '');
  return only === '' ? NaN : Number(only);
}

// The seeded counters (seed_store.c, put_counters): 2000 of 100000
// received packets dropped, all on eth1, plus 37 records dropped at the
// worker queue and 10 at the export queue. The banner must say so.
async function checkSeededCapture(page, label) {
  const banner = page.locator('#view .capture-drops-warning');
  check(await banner.count() === 1, `${label} capture: no drop warning banner for the seeded drops`);
  if (await banner.count() === 1) {
    const text = await banner.textContent();
    check(/2\.00 % of 100.000 packets received/.test(text), `${label} capture: the banner does not state 2.00 % of 100,000 packets: "${text}"`);
    check(/Kernel: no room in the capture buffer: 1.500 packets/.test(text), `${label} capture: the banner lacks the 1,500 kernel drops: "${text}"`);
    check(/Worker queue to the writer thread full: 37 records/.test(text), `${label} capture: the banner lacks the 37 queue drops: "${text}"`);
    check(/Export: Kafka queue full: 10 records/.test(text), `${label} capture: the banner lacks the 10 export drops: "${text}"`);
    check(/Interface eth1: kernel 1.500, interface 500 of 60.000 received/.test(text), `${label} capture: the banner does not name eth1's drops: "${text}"`);
    check(!/eth2/.test(text), `${label} capture: the banner names eth2, which dropped nothing: "${text}"`);
  }
  check(await page.locator('#view .capture-no-drops').count() === 0, `${label} capture: "no drops" shown next to the drops`);

  const ifaces = await captureRows(page, 'capture-interfaces');
  const byName = Object.fromEntries(ifaces.map((cells) => [cells[0], cells]));
  check(ifaces.length === 2, `${label} capture: expected the interfaces eth1 and eth2, got ${ifaces.map((c) => c[0]).join(', ') || 'none'}`);
  if (byName.eth1) {
    check(digits(byName.eth1[1]) === 60000 && digits(byName.eth1[2]) === 1500 && digits(byName.eth1[3]) === 500,
      `${label} capture: eth1 shows ${byName.eth1.join(' | ')}, expected 60000 received, 1500 kernel and 500 interface drops`);
    check(byName.eth1[4] === '3.33 %', `${label} capture: eth1's drop share is "${byName.eth1[4]}", expected 3.33 %`);
  }
  if (byName.eth2) {
    check(digits(byName.eth2[1]) === 40000 && digits(byName.eth2[2]) === 0 && digits(byName.eth2[3]) === 0,
      `${label} capture: eth2 shows ${byName.eth2.join(' | ')}, expected 40000 received and no drops`);
  }

  const drops = Object.fromEntries((await captureRows(page, 'capture-drops')).map((cells) => [cells[1], cells]));
  for (const [name, count] of [['pcap_dropped', 1500], ['pcap_if_dropped', 500], ['queue_dropped_records', 37],
    ['tcp_ooo_dropped', 0], ['export_dropped_queue_full', 10]]) {
    check(drops[name] && digits(drops[name][2]) === count, `${label} capture: the drop table shows ${name} as "${drops[name] ? drops[name][2] : 'missing'}", expected ${count}`);
  }
  check(drops.collect_sequence_lost === undefined, `${label} capture: collector drops listed for a store without collector counters`);

  const cards = await overviewCounts(page);
  check(cards.Packets === 98000, `${label} capture: the Packets card shows ${cards.Packets}, expected 98000`);
  const all = (await page.locator('#view .capture-all tbody td:first-child').allTextContents()).map((t) => t.trim());
  check(all.includes('dns_bad_pointer'), `${label} capture: the counter list lacks dns_bad_pointer`);
  check(!all.some((n) => n.startsWith('iface_')), `${label} capture: the counter list repeats the interface counters`);
  const read = page.locator('#view .capture-updated time');
  check(/^UTC \d{4}-\d\d-\d\dT/.test(await read.first().getAttribute('title') || ''), `${label} capture: the read time lacks the UTC title`);

  // Refresh from the keyboard: the page loads again and the focus stays
  // on the Refresh button.
  await page.locator('#view .capture-refresh').focus();
  await page.keyboard.press('Enter');
  await waitLoaded(page);
  await page.waitForFunction(() => document.activeElement && document.activeElement.classList.contains('capture-refresh'), null, {timeout: 5000})
    .catch(() => check(false, `${label} capture: the focus left the Refresh button after a refresh`));
  check(await page.locator('#view .capture-drops-warning').count() === 1, `${label} capture: the banner is gone after a refresh`);
}

// The demo ingest read a file: no live capture, so no interface rows, and
// nothing dropped, so no banner. The packets must equal the Overview's.
async function checkDemoCapture(page, label) {
  const banner = page.locator('#view .capture-drops-warning');
  check(await banner.count() === 0, `${label} capture: drop warning shown for a clean ingest: "${await banner.count() ? await banner.textContent() : ''}"`);
  check(await page.locator('#view .capture-no-drops').count() === 1, `${label} capture: "no drops" is not shown`);
  check(await page.locator('#view .capture-interfaces .state-empty').count() === 1, `${label} capture: an ingest shows interface rows`);
  const packets = (await overviewCounts(page)).Packets;
  const expected = await page.evaluate(async () => (await (await fetch('/api/v1/summary', {credentials: 'same-origin'})).json()).ingest.packets);
  check(packets > 0 && packets === expected, `${label} capture: the Packets card shows ${packets}, the summary ${expected}`);
}

// ---- phase 1b: a store with overdue retention ----------------------------

// The seeded data stored 40 days ago: the flows are past their 30-day
// limit and no sweep ever ran, so Retention must warn about them.
async function overduePhase(browser, url) {
  const label = 'overdue';
  const problems = [];
  const page = await openPage(browser, url, VIEWPORTS[0], problems, null);
  await signIn(page, url, 'admin', ADMIN_PASSWORD);
  await visit(page, url, label, 'retention');
  const banner = page.locator('#view .retention-warning');
  check(await banner.count() === 1, `${label} retention: no warning banner for the expired flows`);
  if (await banner.count() === 1) {
    const text = await banner.textContent();
    check(/Flows \(/.test(text) && /expired awaiting sweep|never swept|overdue/.test(text), `${label} retention: the banner does not name the flows and why: "${text}"`);
  }
  const flowRow = page.locator('#view table').first().locator('tbody tr', {hasText: 'Flows'}).first();
  check(await flowRow.locator('.badge.sev-high').count() === 1, `${label} retention: the Flows row has no warning badge`);
  await visit(page, url, label, 'flows');
  check(await page.locator('#view .state-empty').count() === 1, `${label} flows: records past their limit are listed`);
  await page.goto(`${url}#/retention`);
  await waitLoaded(page);
  await finishPage(page, 'overdue', label, 'retention', VIEWPORTS[0]);
  for (const problem of problems) check(false, `${label}: ${problem}`);
  await page.close();
}

// ---- phase 2: the demo capture -----------------------------------------

// Click the BUTTON (Apply) of a filter form and wait until the page shows
// the result for PARAM: the hash holds it (or, for '!name=', no longer
// holds name=), the page was rendered again and nothing is loading. The
// hashchange handler runs as a task of its own, so right after the click
// the previous result can still be on the page, and it may look like the
// expected one (two filters that both show one row). Every element of
// the view is marked first; a new render replaces them all. The checks
// that follow report a filter that never settles.
async function applyFilter(page, param, button = 'Apply') {
  await page.evaluate(() => {
    for (const node of document.querySelectorAll('#view > *')) node.dataset.beforeFilter = '1';
  });
  await page.getByRole('button', {name: button}).click();
  await page.waitForFunction((expected) => (expected.startsWith('!')
    ? !location.hash.includes(expected.slice(1)) : location.hash.includes(expected)) &&
    !document.querySelector('#view [data-before-filter]') &&
    !document.querySelector('#view .state-loading'),
  param, {timeout: 15000}).catch(() => {});
}

// The planted alerts' rows by detector: {beacon: {row, host, peer, state}}.

async function alertRows(page) {
  const rows = page.locator('#view tbody tr.clickable');
  const seen = {};
  for (let i = 0; i < await rows.count(); i++) {
    const row = rows.nth(i);
    const detector = (await row.locator(`td:nth-child(${ALERT_DETECTOR_COL})`).textContent()).trim();
    seen[detector] = {
      row,
      host: (await row.locator(`td:nth-child(${ALERT_HOST_COL}) .mono`).textContent()).trim(),
      peer: (await row.locator(`td:nth-child(${ALERT_PEER_COL}) .mono`).textContent()).trim(),
      state: (await row.locator(`td:nth-child(${ALERT_STATE_COL})`).textContent()).trim(),
    };
  }
  return {count: await rows.count(), seen};
}

// Check the planted beacon and exfil rows and open the beacon's evidence.
async function checkDemoAlerts(page, label) {
  const {count, seen} = await alertRows(page);
  check(count === 2, `${label} alerts: expected the 2 planted alerts, got ${count} rows`);
  for (const [detector, info] of Object.entries(seen)) {
    check(PSEUDONYM_V4.test(info.host), `${label} alerts: ${detector} host "${info.host}" is not an ip4- pseudonym token`);
  }
  check(seen.beacon !== undefined, `${label} alerts: no beacon alert listed`);
  check(seen.exfil !== undefined, `${label} alerts: no exfil alert listed`);
  if (seen.beacon) check(seen.beacon.peer === '203.0.113.50:443', `${label} alerts: beacon peer is "${seen.beacon.peer}", expected 203.0.113.50:443`);
  if (seen.exfil) check(seen.exfil.peer === '198.51.100.77:443', `${label} alerts: exfil peer is "${seen.exfil.peer}", expected 198.51.100.77:443`);
  if (!seen.beacon) return;

  await seen.beacon.row.getByRole('button', {name: 'Details'}).click();
  const dialog = page.locator('dialog.alert-dialog[open]');
  check(await dialog.count() === 1, `${label} alerts: the beacon dialog did not open`);
  if (await dialog.count() !== 1) return;
  const terms = (await dialog.locator('dl.details dt').allTextContents()).map((t) => t.trim());
  check(terms.includes('connections'), `${label} alerts: beacon evidence lacks "connections" (has: ${terms.join(', ')})`);
  check(terms.includes('median interval s'), `${label} alerts: beacon evidence lacks "median interval s"`);
  // The flow records behind the alert, from GET /alerts/{id}.
  await page.waitForFunction(() => !document.querySelector('dialog[open] .alert-records .state-loading'), null, {timeout: 10000});
  const records = dialog.locator('.alert-records tbody tr');
  check(await dialog.locator('.alert-records .state-error').count() === 0, `${label} alerts: the beacon's records failed to load: ${await dialog.locator('.alert-records').textContent()}`);
  check(await records.count() > 0, `${label} alerts: the beacon dialog lists no flow record`);
  const peers = await dialog.locator('.alert-records tbody tr td:nth-child(4)').allTextContents();
  check(peers.length > 0 && peers.every((p) => p.includes('203.0.113.50')), `${label} alerts: the beacon's records include other peers: ${[...new Set(peers)].join(', ')}`);
  mkdirSync(path.join(shots, 'demo'), {recursive: true});
  await page.screenshot({path: path.join(shots, 'demo', 'alert-dialog-wide.png')});
  await page.keyboard.press('Escape');
  check(await page.locator('dialog.alert-dialog[open]').count() === 0, `${label} alerts: Escape did not close the dialog`);
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  check(focused === 'Details', `${label} alerts: the focus did not return to the Details button after Escape (on "${focused}")`);
}

// Acknowledge the beacon and close the exfil with a note, through the
// dialog; then reload and check that both states persisted.
async function changeAlertStates(page, url, label) {
  await page.goto(`${url}#/alerts`);
  await waitLoaded(page);
  let {seen} = await alertRows(page);
  if (!seen.beacon || !seen.exfil) {
    check(false, `${label} alerts: the planted alerts are missing; no state change tried`);
    return;
  }
  check(seen.beacon.state === 'new' && seen.exfil.state === 'new', `${label} alerts: the planted alerts start as ${seen.beacon.state} and ${seen.exfil.state}, expected new`);

  // Acknowledge: the first choice of a new alert, saved with Enter-free
  // clicks.
  await seen.beacon.row.getByRole('button', {name: 'Details'}).click();
  let dialog = page.locator('dialog.alert-dialog[open]');
  await dialog.getByLabel('Acknowledge').check();
  await dialog.getByRole('button', {name: 'Save'}).click();
  await dialog.locator('.form-message.ok').waitFor({timeout: 10000}).catch(() => {});
  check(await dialog.locator('.form-message.ok').count() === 1, `${label} alerts: acknowledging failed: ${await dialog.locator('.form-message').allTextContents()}`);
  // A rejected attempt after it replaces the confirmation, which would
  // otherwise contradict the error beside it.
  await dialog.getByLabel('Close', {exact: true}).check();
  await dialog.getByRole('button', {name: 'Save'}).click();
  await dialog.locator('.form-message.error').waitFor({timeout: 10000}).catch(() => {});
  check(await dialog.locator('.form-message.error').count() === 1 && await dialog.locator('.form-message.ok').count() === 0, `${label} alerts: after a rejected close the dialog shows ${JSON.stringify(await dialog.locator('.form-message').allTextContents())}`);
  await dialog.getByRole('button', {name: 'Close dialog'}).click();

  // Closing without a note is rejected in the form; with one it is saved.
  ({seen} = await alertRows(page));
  await seen.exfil.row.getByRole('button', {name: 'Details'}).click();
  dialog = page.locator('dialog.alert-dialog[open]');
  await dialog.getByLabel('Close', {exact: true}).check();
  await dialog.getByRole('button', {name: 'Save'}).click();
  // Wait for the message: under load the click's handler can run after
  // the check would.
  await dialog.locator('.form-message.error').waitFor({timeout: 10000}).catch(() => {});
  check(/note/i.test(await dialog.locator('.form-message.error').textContent().catch(() => '')), `${label} alerts: closing without a note was not refused in the form`);
  await dialog.getByLabel('Note').fill(CLOSE_NOTE);
  // Ctrl+Enter in the note saves, so the keyboard alone can close it.
  await dialog.getByLabel('Note').press('Control+Enter');
  await dialog.locator('.form-message.ok').waitFor({timeout: 10000}).catch(() => {});
  check(await dialog.locator('.form-message.ok').count() === 1, `${label} alerts: closing failed: ${await dialog.locator('.form-message').allTextContents()}`);
  await page.keyboard.press('Escape');

  await page.reload();
  await page.waitForSelector('#view h2');
  await waitLoaded(page);
  ({seen} = await alertRows(page));
  check(seen.beacon && seen.beacon.state === 'acknowledged', `${label} alerts: after a reload the beacon is ${seen.beacon && seen.beacon.state}, expected acknowledged`);
  check(seen.exfil && seen.exfil.state === 'closed', `${label} alerts: after a reload the exfil is ${seen.exfil && seen.exfil.state}, expected closed`);
  if (seen.exfil) {
    await seen.exfil.row.getByRole('button', {name: 'Details'}).click();
    dialog = page.locator('dialog.alert-dialog[open]');
    const text = await dialog.locator('dl.details').first().textContent();
    check(text.includes(CLOSE_NOTE), `${label} alerts: the closed alert does not show its note after a reload`);
    check(text.includes('admin'), `${label} alerts: the closed alert does not name who closed it`);
    await page.keyboard.press('Escape');
  }

  // The detector filter narrows the list to the beacon.
  await page.locator('#alert-detector').selectOption('beacon');
  await applyFilter(page, 'detector=beacon');
  const beacons = await alertRows(page);
  check(beacons.count === 1 && beacons.seen.beacon, `${label} alerts: the detector filter "beacon" shows ${beacons.count} rows`);
  await page.locator('#alert-detector').selectOption('');

  // The state filter narrows the list to the closed alert.
  await page.locator('#alert-state').selectOption('closed');
  await applyFilter(page, 'state=closed');
  const filtered = await alertRows(page);
  check(filtered.count === 1 && filtered.seen.exfil, `${label} alerts: the state filter "closed" shows ${filtered.count} rows`);
}

async function checkDemoOverview(page, label) {
  const counts = await overviewCounts(page);
  for (const cardLabel of ['Flows', 'DNS', 'TLS', 'HTTP', 'Alerts']) {
    check(counts[cardLabel] > 0, `${label} overview: ${cardLabel} count is ${counts[cardLabel]}, expected non-zero`);
  }
  check(counts.Alerts === 2, `${label} overview: Alerts count is ${counts.Alerts}, expected the 2 planted alerts`);
  const totals = await chartTotals(page, label);
  check(totals.bytes > 0, `${label} overview: the traffic chart total is ${totals.bytes}, expected non-zero`);
  check(totals.flows > 0, `${label} overview: the flows chart total is ${totals.flows}, expected non-zero`);
  check(totals.alerts === 2, `${label} overview: the alerts chart total is ${totals.alerts}, expected 2`);
  await page.waitForFunction(() => !document.querySelector('#view .tops .state-loading'), null, {timeout: 10000});
  check(await page.locator('#view .tops .state-error').count() === 0, `${label} overview: a top list shows an error`);
  check(await page.locator('#view .tops section').count() === 4, `${label} overview: expected 4 top lists`);
  const talkers = await page.locator('#view .tops section[data-top="top/talkers"] a.host-link').count();
  check(talkers > 0, `${label} overview: the top talkers list no host pseudonym`);

  // A custom range in 2020 contains none of the demo traffic: every chart
  // shows its empty state, and the range is kept in the URL.
  await page.locator('#range-preset').selectOption('custom');
  await page.fill('#range-from', '2020-01-01T00:00');
  await page.fill('#range-to', '2020-01-02T00:00');
  await applyFilter(page, 'range=custom', 'Show');
  await waitLoaded(page);
  const empty = await chartTotals(page, `${label} custom range`);
  check(empty.bytes === 0 && empty.flows === 0 && empty.alerts === 0, `${label} overview: a 2020 range still charts ${JSON.stringify(empty)}`);
  check(await page.locator('#view figure.chart-figure .state-empty').count() === 3, `${label} overview: a 2020 range does not show 3 empty charts`);
  await page.locator('#range-preset').selectOption('span');
  await applyFilter(page, '!range=', 'Show');
  await waitLoaded(page);
  await chartTotals(page, label);
}

// Flows: page forward and back, then filter by port 53.
async function checkDemoFlows(page, url, label) {
  const first = await page.locator('#view tbody tr').count();
  check(first === 50, `${label} flows: first page holds ${first} rows, expected 50`);
  await page.getByRole('button', {name: 'Older →'}).click();
  await waitLoaded(page);
  check(await page.locator('#view tbody tr').count() > 0, `${label} flows: the second page is empty`);
  check(!(await page.getByRole('button', {name: '← Newer'}).isDisabled()), `${label} flows: Newer is disabled on page 2`);
  await page.getByRole('button', {name: '← Newer'}).click();
  await waitLoaded(page);

  await page.fill('#filter-port', '53');
  await applyFilter(page, 'port=53');
  await waitLoaded(page);
  check(page.url().includes('port=53'), `${label} flows: the port filter is not in the URL (${page.url()})`);
  const dsts = await page.locator('#view tbody tr td:nth-child(4)').allTextContents();
  const srcs = await page.locator('#view tbody tr td:nth-child(3)').allTextContents();
  check(dsts.length > 0, `${label} flows: the port 53 filter lists no flow`);
  // A cell reads "ADDRESS:PORT" and then the zone label, if any.
  const port53 = /:53(?!\d)/;
  const others = dsts.filter((d, i) => !port53.test(d) && !port53.test(srcs[i]));
  check(others.length === 0, `${label} flows: the port 53 filter lists other ports: ${others.slice(0, 3).join(', ')}`);

  // Sorted by bytes: the page's byte counts never grow down the table.
  await page.goto(`${url}#/flows?sort=bytes`);
  await waitLoaded(page);
  const bytes = (await page.locator('#view tbody tr td:nth-child(6)').allTextContents()).map(parseBytes);
  check(bytes.length > 1 && bytes.every((b, i) => i === 0 || b <= bytes[i - 1]), `${label} flows: sorted by bytes, the column reads ${bytes.slice(0, 5).join(', ')}…`);

  // A filter value that the API rejects: the error box gives the
  // server's message, which names the value, and offers no Retry,
  // because the same request would fail again.
  page.expectedBadRequests += 1;
  await gotoHash(page, url, '/flows?port=70000');
  const rejected = page.locator('#view .state-rejected');
  const rejectedText = await rejected.count() === 1 ? await rejected.textContent() : '';
  check(rejectedText.includes('70000'), `${label} flows: port 70000 does not show the server's rejection naming the value (the page shows "${(await page.locator('#view').textContent()).slice(0, 200)}")`);
  check(await page.locator('#view').getByRole('button', {name: 'Retry'}).count() === 0, `${label} flows: a rejected filter value offers Retry`);
  await gotoHash(page, url, '/flows');
}

// The number of bytes in a cell such as "4.9 KiB" or "812 B".
function parseBytes(text) {
  const match = /([\d.,]+)\s*(B|KiB|MiB|GiB|TiB)/.exec(text);
  if (!match) return NaN;
  const scale = {B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4}[match[2]];
  return Number(match[1].replace(/,/g, '')) * scale;
}

// DNS: the domain filter keeps names under the given domain only.
async function checkDemoDns(page, url, label) {
  await page.fill('#filter-domain', 'example.com');
  await applyFilter(page, 'domain=example.com');
  await waitLoaded(page);
  const names = (await page.locator('#view tbody tr td:nth-child(5)').allTextContents()).map((t) => t.trim());
  check(names.length > 0, `${label} dns: the domain filter example.com lists no record`);
  const others = names.filter((n) => !/(^|\.)example\.com\.?$/i.test(n));
  check(others.length === 0, `${label} dns: the domain filter example.com lists ${others.slice(0, 3).join(', ')}`);
  await page.goto(`${url}#/dns`);
  await waitLoaded(page);
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
  check(await history.locator('.state-error, .state-forbidden').count() === 0, `${label} retention: deletion history shows an error`);
  const actions = (await history.locator('tbody tr td:nth-child(2)').allTextContents()).map((t) => t.trim());
  check(actions.includes('Retention sweep'), `${label} retention: deletion history lacks the ingest's retention sweep (has: ${actions.join(', ') || 'no rows'})`);
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
  check(await page.locator('#view .compliance-policy pre').count() === 1, `${label} compliance: no policy summary`);
}

// Audit: entries with UTC titles, an intact chain, this visit's read of
// /api/v1/summary by the admin from the loopback client, the alert state
// changes, and, paging back, the ingest entry.
async function checkDemoAudit(page, label) {
  const rows = page.locator('#view tbody tr');
  check(await rows.count() > 0, `${label} audit: no entries listed`);
  if (await rows.count() === 0) return;
  check(await page.locator('#view .audit-verify .badge.ok').count() === 1, `${label} audit: hash chain not shown as intact`);
  const time = page.locator(`#view tbody tr td:nth-child(${AUDIT_TIME_COL}) time`).first();
  check(/^UTC \d{4}-\d\d-\d\dT/.test(await time.getAttribute('title') || ''), `${label} audit: time cell lacks the UTC title`);

  let ownRead = false;
  const stateChanges = new Set();
  for (const row of await rows.all()) {
    const actor = (await row.locator(`td:nth-child(${AUDIT_ACTOR_COL})`).textContent()).trim();
    const action = (await row.locator(`td:nth-child(${AUDIT_ACTION_COL})`).textContent()).trim();
    const object = (await row.locator(`td:nth-child(${AUDIT_OBJECT_COL})`).textContent()).trim();
    const params = await row.locator(`td:nth-child(${AUDIT_PARAMS_COL})`).textContent();
    if (actor === 'admin' && object === '/api/v1/summary' && params.includes('127.0.0.1')) ownRead = true;
    const state = /state=(\w+)/.exec(params);
    if (actor === 'admin' && action === 'alert.state_change' && /alerts\/[^/]+$/.test(object) && state) stateChanges.add(state[1]);
  }
  check(ownRead, `${label} audit: no entry by admin for this visit's /api/v1/summary request from 127.0.0.1`);
  check(stateChanges.has('acknowledged') && stateChanges.has('closed'),
    `${label} audit: expected alert.state_change entries by admin to acknowledged and closed on the newest page, found: ${[...stateChanges].join(', ') || 'none'}`);

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
    await waitLoaded(page);
  }
  check(found, `${label} audit: no ingest entry within ${AUDIT_MAX_PAGES} pages`);
}

// Keyboard only: Tab from the top reaches the skip link, then the nav
// links in order, each with a visible focus outline; Enter on a link
// opens its page and moves the focus to the content.
async function checkKeyboardNavigation(page, url, label) {
  await page.goto(`${url}#/overview`);
  await waitLoaded(page);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => document.activeElement.className);
  check(skip === 'skip-link', `${label} keyboard: the first Tab stop is "${skip}", expected the skip link`);

  const order = [];
  for (let i = 0; i < NAV_ORDER.length; i++) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const a = document.activeElement;
      const style = getComputedStyle(a);
      return {route: a.dataset ? a.dataset.route : null, outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
    });
    order.push(info.route);
    check(info.outline !== 'none' && info.width >= 2, `${label} keyboard: the focused nav link ${info.route} has no visible outline`);
  }
  check(order.join(',') === NAV_ORDER.join(','), `${label} keyboard: Tab goes through ${order.join(', ')}, expected ${NAV_ORDER.join(', ')}`);

  // Back to the Alerts link and open it with Enter.
  for (let i = NAV_ORDER.length - 1; i > NAV_ORDER.indexOf('alerts'); i--) await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/alerts');
  await waitLoaded(page);
  check((await page.locator('#view h2').textContent()).trim() === 'Alerts', `${label} keyboard: Enter on the Alerts link did not open Alerts`);
  check(await page.evaluate(() => document.activeElement.id) === 'view', `${label} keyboard: the focus did not move to the page content`);

  // Tab on to the first Details button and open the dialog with Enter.
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement.textContent === 'Details')) break;
  }
  await page.keyboard.press('Enter');
  check(await page.locator('dialog.alert-dialog[open]').count() === 1, `${label} keyboard: Enter on Details did not open the dialog`);
  await page.keyboard.press('Escape');
  check(await page.locator('dialog.alert-dialog[open]').count() === 0, `${label} keyboard: Escape did not close the dialog`);
}

// A session that ends on the server side (here: the cookie is gone) sends
// the next page to the sign-in form with a notice that stays until the
// next sign-in, and signing in again returns to the last page opened.
async function checkSessionExpiry(page, url, label) {
  await page.context().clearCookies();
  await page.goto(`${url}#/flows`);
  await page.waitForSelector('#login-user');
  const notice = await page.locator('#view .state-notice').allTextContents();
  check(notice.some((t) => /session has ended/i.test(t)), `${label} expiry: no "session has ended" notice (${notice.join(' / ') || 'none'})`);
  // Opening other pages before signing in keeps the notice on the form.
  for (const hash of ['#/dns', '#/flows']) {
    await page.goto(`${url}${hash}`);
    await page.waitForSelector('#login-user');
    const notices = await page.locator('#view .state-notice').allTextContents();
    check(notices.some((t) => /session has ended/i.test(t)), `${label} expiry: the notice was gone after opening ${hash} (${notices.join(' / ') || 'none'})`);
  }
  await page.fill('#login-user', 'admin');
  await page.fill('#login-password', ADMIN_PASSWORD);
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.waitForSelector('#session:not([hidden])');
  await page.waitForFunction(() => location.hash.startsWith('#/flows'));
  await waitLoaded(page);
  check((await page.locator('#view h2').textContent()).trim() === 'Flows', `${label} expiry: signing in again did not return to the Flows page`);
}

// An analyst: no Compliance or Audit link, a denied Audit page, a 403 from
// the audit route, and the alerts still readable.
async function checkAnalyst(page, url, label) {
  await signIn(page, url, ANALYST_USER, ANALYST_PASSWORD);
  for (const name of NAV_ORDER) {
    const visible = await page.locator(`.nav a[data-route="${name}"]`).isVisible();
    const expected = !ANALYST_HIDDEN.includes(name);
    check(visible === expected, `${label} analyst: the ${name} link is ${visible ? 'shown' : 'hidden'}`);
  }
  await page.goto(`${url}#/audit`);
  await page.waitForSelector('#view h2');
  const denied = page.locator('#view .state-forbidden');
  check(await denied.count() === 1 && /denied/i.test(await denied.textContent()), `${label} analyst: the Audit page does not say access is denied`);
  check(await page.locator('#view table').count() === 0, `${label} analyst: the Audit page shows a table`);
  check(await apiStatus(page, 'audit') === 403, `${label} analyst: GET /api/v1/audit does not answer 403`);
  await page.screenshot({path: path.join(shots, 'demo', 'audit-analyst-denied.png'), fullPage: true});

  // The Retention page explains the missing deletion history without
  // asking the audit route, whose 403 would only add an audit entry.
  const auditRequests = [];
  const onRequest = (req) => {
    if (new URL(req.url()).pathname.startsWith('/api/v1/audit')) auditRequests.push(req.url());
  };
  page.on('request', onRequest);
  await gotoHash(page, url, '/retention');
  page.off('request', onRequest);
  const historyNote = page.locator('#view .retention-history .state-forbidden');
  check(await historyNote.count() === 1 && /compliance role/.test(await historyNote.textContent()), `${label} analyst: the Retention page does not explain the missing deletion history`);
  check(auditRequests.length === 0, `${label} analyst: the Retention page requested ${auditRequests.join(', ')}`);

  await visit(page, url, label, 'alerts');
  check(await page.locator('#view tbody tr.clickable').count() === 2, `${label} analyst: the analyst does not see the 2 alerts`);
  await signOut(page);
}

// A compliance officer: Retention, Compliance and Audit, but no record
// explorer. The Alerts page is denied and its route returns 403.
async function checkOfficer(page, url, label) {
  await signIn(page, url, OFFICER_USER, OFFICER_PASSWORD);
  for (const name of NAV_ORDER) {
    const visible = await page.locator(`.nav a[data-route="${name}"]`).isVisible();
    check(visible === OFFICER_SHOWN.includes(name), `${label} officer: the ${name} link is ${visible ? 'shown' : 'hidden'}`);
  }
  await page.goto(`${url}#/alerts`);
  await page.waitForSelector('#view h2');
  check(await page.locator('#view .state-forbidden').count() === 1, `${label} officer: the Alerts page does not say access is denied`);
  check(await apiStatus(page, 'alerts') === 403, `${label} officer: GET /api/v1/alerts does not return 403`);
  await visit(page, url, label, 'audit');
  check(await page.locator('#view tbody tr').count() > 0, `${label} officer: the Audit page lists no entry`);
  await visit(page, url, label, 'overview');
  check(await page.locator('#view .card').count() === 5, `${label} officer: the Overview shows no record counts`);
  await signOut(page);
}

// Sign-in errors: a wrong password, then the rate limit.
async function checkWrongPassword(page, url, label) {
  await page.goto(`${url}#/overview`);
  await page.waitForSelector('#login-user');
  await page.fill('#login-user', 'admin');
  await page.fill('#login-password', 'not-the-password');
  await page.getByRole('button', {name: 'Sign in'}).click();
  await page.waitForFunction(() => document.querySelector('#login-message').textContent !== '');
  const text = await page.locator('#login-message').textContent();
  check(/wrong user name or password/i.test(text), `${label} login: a wrong password shows "${text}"`);
  check(await page.locator('#session').isHidden(), `${label} login: a wrong password signed in`);
}

async function checkRateLimit(page, url, label) {
  await page.goto(`${url}#/overview`);
  await page.waitForSelector('#login-user');
  let text = '';
  for (let i = 0; i < RATE_LIMIT_MAX_TRIES && !/too many/i.test(text); i++) {
    await page.fill('#login-user', 'admin');
    await page.fill('#login-password', `wrong-${i}`);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.waitForFunction(() => !document.querySelector('.login-form button[type=submit]').disabled);
    text = await page.locator('#login-message').textContent();
  }
  check(/too many failed sign-ins/i.test(text), `${label} login: ${RATE_LIMIT_MAX_TRIES} wrong passwords did not show the rate-limit message (last: "${text}")`);
  await page.screenshot({path: path.join(shots, 'demo', 'login-rate-limited.png'), fullPage: true});
}

async function demoPhase(browser, url, db) {
  for (const viewport of VIEWPORTS) {
    const label = `demo ${viewport.name}`;
    const problems = [];
    const apiBodies = [];
    const page = await openPage(browser, url, viewport, problems, apiBodies);

    if (viewport.name === 'wide') {
      // Anonymous: the data routes return 401 and the page shows the sign-in form.
      await page.goto(`${url}#/alerts`);
      await page.waitForSelector('#login-user', {timeout: 10000});
      check(await apiStatus(page, 'summary') === 401, `${label}: GET /api/v1/summary does not answer 401 before signing in`);
      check(await page.locator('.site-header nav').isHidden(), `${label}: the navigation shows before signing in`);
      await finishPage(page, 'demo', label, 'login', viewport);
      await checkWrongPassword(page, url, label);
      await signIn(page, url, 'admin', ADMIN_PASSWORD);
    }

    for (const name of DEMO_PAGES) {
      if (name === 'audit' && viewport.name === 'wide') await changeAlertStates(page, url, label);
      await visit(page, url, label, name);
      if (name === 'overview') await checkDemoOverview(page, label);
      if (name === 'alerts' && viewport.name === 'wide') await checkDemoAlerts(page, label);
      if (name === 'flows') await checkDemoFlows(page, url, label);
      if (name === 'dns') await checkDemoDns(page, url, label);
      if (name === 'capture') await checkDemoCapture(page, label);
      if (name === 'retention') await checkDemoRetention(page, label);
      if (name === 'compliance') await checkDemoCompliance(page, label);
      if (name === 'audit' && viewport.name === 'wide') await checkDemoAudit(page, label);

      // The whole document, so attribute values such as titles count too.
      const html = await page.content();
      const leak = findInternalAddress(html);
      check(leak === null, `${label} ${name}: page contains the internal address ${leak}`);
      await finishPage(page, 'demo', label, name, viewport);
    }

    await page.goto(`${url}#/alerts`);
    await waitLoaded(page);
    await checkHostTimeline(page, label, '#view tbody a.host-link');
    const timelineHtml = await page.content();
    check(findInternalAddress(timelineHtml) === null, `${label} host: the timeline contains an internal address`);
    await finishPage(page, 'demo', label, 'host', viewport);

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

  // Sign-out, the analyst and the rate limit come after both widths,
  // because they end the admin's session, and the rate limit blocks this
  // address's next sign-ins for a while.
  const label = 'demo session';
  const problems = [];
  const page = await openPage(browser, url, VIEWPORTS[0], problems, null);
  await checkKeyboardNavigation(page, url, label);
  await checkSessionExpiry(page, url, label);
  await signOut(page);
  check(await apiStatus(page, 'summary') === 401, `${label}: GET /api/v1/summary does not answer 401 after signing out`);
  // Added while the server runs: serve creates the admin from
  // --admin-password-file only while the store has no user at all.
  addUser(db, ANALYST_USER, 'analyst', ANALYST_PASSWORD);
  await checkAnalyst(page, url, label);
  addUser(db, OFFICER_USER, 'compliance', OFFICER_PASSWORD);
  await checkOfficer(page, url, label);
  await checkRateLimit(page, url, label);
  for (const problem of problems) check(false, `${label}: ${problem}`);
  await page.close();
}

// ---- main ------------------------------------------------------------------

try {
  checkVendoredUplot();

  const seededDb = path.join(work, 'seeded-db');
  execFileSync(seed, [seededDb, String(Math.floor(Date.now() / 1000))], {stdio: 'inherit'});
  await withServer(seededDb, [], 'seeded-profile', seededPhase);

  const overdueDb = path.join(work, 'overdue-db');
  execFileSync(seed, [overdueDb, String(Math.floor(Date.now() / 1000) - 40 * 86400)], {stdio: 'inherit'});
  await withServer(overdueDb, [], 'overdue-profile', overduePhase);

  const capture = path.join(work, 'demo.pcap');
  const demoDb = path.join(work, 'demo-db');
  execFileSync(demogen, ['--output', capture, '--start', String(demoStartSeconds())], {stdio: 'inherit'});
  execFileSync(flowveil, ['ingest', '--policy', policy, '--db', demoDb, capture], {stdio: 'inherit'});
  await withServer(demoDb, ['--policy', policy], 'demo-profile', (browser, url) => demoPhase(browser, url, demoDb));
} finally {
  if (!process.env.SCREENSHOT_DIR) console.log(`screenshots kept in ${shots}`);
  for (const name of ['seeded-db', 'overdue-db', 'demo-db', 'demo.pcap', 'admin-password', `password-${ANALYST_USER}`, `password-${OFFICER_USER}`]) {
    rmSync(path.join(work, name), {recursive: true, force: true});
  }
  if (process.env.SCREENSHOT_DIR) rmSync(work, {recursive: true, force: true});
}

if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('dashboard browser test passed');
