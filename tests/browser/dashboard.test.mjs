// Dashboard browser test: seed a store, start `flowveil serve` on port 0,
// open every page in headless Chromium and check it renders without
// errors; the alerts table must show rows and open evidence details.
// Screenshots of each page (1280 px and 390 px wide) go to $SCREENSHOT_DIR.
//
// Environment:
//   FLOWVEIL_BIN      path to the flowveil binary (required)
//   FLOWVEIL_SEED     path to flowveil-seed-store (required)
//   FLOWVEIL_WEB      dashboard directory (default: web/ beside this file's repository)
//   CHROMIUM          browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR    where to write PNGs (default: a temporary directory)
//   PLAYWRIGHT_CORE   module path of playwright-core (default 'playwright-core')
//
// Exit status 0 when every check passes, 1 otherwise.

import {spawn, execFileSync} from 'node:child_process';
import {mkdtempSync, mkdirSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {createInterface} from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const {chromium} = await import(process.env.PLAYWRIGHT_CORE || 'playwright-core');

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
const webDir = process.env.FLOWVEIL_WEB || path.join(repo, 'web');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

const work = mkdtempSync(path.join(tmpdir(), 'flowveil-browser-'));
const shots = process.env.SCREENSHOT_DIR || path.join(work, 'screenshots');
mkdirSync(shots, {recursive: true});

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

const db = path.join(work, 'db');
execFileSync(seed, [db, String(Math.floor(Date.now() / 1000))], {stdio: 'inherit'});

const {child, url} = await startServer(db);
// playwright-core passes the fresh profile as --user-data-dir itself.
const browser = await chromium.launchPersistentContext(path.join(work, 'profile'), {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  for (const viewport of [{width: 1280, height: 900, name: 'wide'}, {width: 390, height: 844, name: 'narrow'}]) {
    const page = await browser.newPage();
    await page.setViewportSize({width: viewport.width, height: viewport.height});
    const problems = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('request', (req) => {
      if (!req.url().startsWith(url)) problems.push(`request to another origin: ${req.url()}`);
    });

    for (const name of ['overview', 'alerts', 'flows', 'dns', 'tls', 'http', 'retention']) {
      await page.goto(`${url}#/${name}`);
      await page.waitForSelector('#view h2');
      await page.waitForFunction(() => !document.querySelector('#view .state-loading'), null, {timeout: 10000});
      check(await page.locator('#view .state-error').count() === 0, `${viewport.name} ${name}: error state shown`);
      check(await page.locator(`.nav a[data-route="${name}"][aria-current="page"]`).count() === 1,
        `${viewport.name} ${name}: navigation does not mark the page as current`);

      if (name === 'alerts') {
        const rows = page.locator('#view tbody tr.clickable');
        check(await rows.count() === 4, `${viewport.name} alerts: expected 4 rows, got ${await rows.count()}`);
        const time = page.locator('#view tbody tr.clickable time').first();
        check(/^UTC \d{4}-\d\d-\d\dT/.test(await time.getAttribute('title') || ''), 'alerts: time cell lacks the UTC title');
        await page.locator('#view tbody tr.clickable button').first().click();
        check(await page.locator('#view .details-row dl').count() === 1, 'alerts: details row did not open');
      }
      if (name === 'flows') {
        check(await page.locator('#view tbody tr').count() === 50, 'flows: first page should hold 50 rows');
        await page.getByRole('button', {name: 'Older →'}).click();
        await page.waitForFunction(() => !document.querySelector('#view .state-loading'));
        check(!(await page.getByRole('button', {name: '← Newer'}).isDisabled()), 'flows: Newer is disabled on page 2');
      }
      if (name === 'overview') {
        await page.waitForSelector('#view svg.chart rect.bar, #view .chart-figure, #view .state-empty', {timeout: 10000});
        check(await page.locator('#view svg.chart rect.bar').count() > 0, 'overview: traffic chart has no bars');
      }
      if (name === 'retention') {
        check(await page.locator('#view tbody tr').count() === 5, 'retention: expected one row per class');
      }
      await page.screenshot({path: path.join(shots, `${name}-${viewport.name}.png`), fullPage: true});
    }
    for (const problem of problems) check(false, `${viewport.name}: ${problem}`);
    await page.close();
  }
} finally {
  await browser.close();
  child.kill('SIGTERM');
  if (!process.env.SCREENSHOT_DIR) console.log(`screenshots kept in ${shots}`);
  rmSync(path.join(work, 'profile'), {recursive: true, force: true});
  rmSync(db, {recursive: true, force: true});
}

if (failures > 0) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('dashboard browser test passed');
