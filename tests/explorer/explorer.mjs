// Browser test of the block explorer (explorer/), in headless Chromium.
//
//   EXPLORER_TEST='{"url": "http://127.0.0.1:8545/explorer/", "okTx": "0x…", ...}' node explorer.mjs
//
// Input (one JSON object in the env var EXPLORER_TEST):
//   url               the explorer page (may carry ?rpc=…)
//   okTx              a committed, successful native transfer
//   failedTx          a committed, failed transaction
//   failedReason      text expected in its failure reason
//   address           a 0x+64 hex account with transactions
//   xssTx             a committed kv put whose key/value hold HTML/script
//   xssText           text of it that must show literally
//   refusedTx         a transaction execution refused (in a block, not committed)
//   refusedHeight     the height of its block
//   revokeTx          a committed transaction of that block (it made refusedTx inadmissible)
//   stoppedValidator  consensus key of a validator stopped some blocks ago
//   allowNoValidatorCheck  true: a missing stoppedValidator is not a failure
//   artifacts         directory for the screenshots
//   chromium          optional browser path (default /usr/bin/chromium, or env CHROMIUM)
//
// Prints one JSON line {"ok", "checks": [{name, ok, detail}], "screenshots"}
// and exits 0 only if every check passed. Every wait is bounded; the browser
// is always closed.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const WAIT = 20_000; // longest single wait
const OVERALL = 240_000; // the whole run

const checks = [];
const screenshots = [];

function check(name, ok, detail = '') {
  checks.push({ name, ok: !!ok, detail: String(detail).slice(0, 1000) });
  process.stderr.write(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${String(detail).slice(0, 300)}` : ''}\n`);
  return !!ok;
}

function finish(code) {
  const ok = code === 0 && checks.length > 0 && checks.every((c) => c.ok);
  process.stdout.write(JSON.stringify({ ok, checks, screenshots }) + '\n');
  process.exit(ok ? 0 : 1);
}

let cfg;
try {
  cfg = JSON.parse(process.env.EXPLORER_TEST ?? '');
} catch (e) {
  check('input', false, `EXPLORER_TEST is not JSON: ${e.message}`);
  finish(1);
}
for (const k of ['url', 'okTx', 'failedTx', 'failedReason', 'address', 'xssTx', 'xssText', 'refusedTx', 'revokeTx', 'artifacts']) {
  if (typeof cfg[k] !== 'string' || !cfg[k]) {
    check('input', false, `EXPLORER_TEST lacks "${k}"`);
    finish(1);
  }
}
if (!Number.isSafeInteger(cfg.refusedHeight) || cfg.refusedHeight < 1) {
  check('input', false, 'EXPLORER_TEST lacks "refusedHeight" (a height)');
  finish(1);
}
const artifacts = resolve(cfg.artifacts);
mkdirSync(artifacts, { recursive: true });

const consoleErrors = [];
const tolerated = [];
// Failed network requests to a stopped node are expected; nothing else is.
const TOLERATED_RE = /net::ERR_CONNECTION_(REFUSED|RESET|CLOSED)|net::ERR_EMPTY_RESPONSE|WebSocket connection to .* failed/;

let browser;
const watchdog = setTimeout(async () => {
  check('overall time', false, `the test ran over ${OVERALL / 1000} s`);
  try {
    await browser?.close();
  } catch {
    // ignore
  }
  finish(1);
}, OVERALL);

async function shot(page, name) {
  const path = join(artifacts, `${name}.png`);
  try {
    await page.screenshot({ path, fullPage: true, timeout: WAIT });
    screenshots.push(path);
  } catch (e) {
    check(`screenshot ${name}`, false, e.message);
  }
}

/** Go to an explorer route, keeping the page's query (?rpc=). */
async function go(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
  await page.waitForFunction((h) => location.hash === h, hash, { timeout: WAIT });
}

async function search(page, q) {
  await page.getByTestId('search-input').fill(q, { timeout: WAIT });
  await page.getByTestId('search-button').click({ timeout: WAIT });
}

async function heightNow(page) {
  const t = (await page.getByTestId('latest-height').textContent({ timeout: WAIT })) ?? '';
  const n = Number(t.trim());
  return Number.isFinite(n) && /^\d+$/.test(t.trim()) ? n : null;
}

async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    check(name, false, e && e.message ? e.message.split('\n')[0] : String(e));
  }
}

async function main() {
  browser = await chromium.launch({
    executablePath: cfg.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox'],
    timeout: WAIT,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.setDefaultNavigationTimeout(WAIT);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const loc = msg.location();
    const entry = `${text}${loc && loc.url ? ` (${loc.url})` : ''}`;
    if (TOLERATED_RE.test(text)) tolerated.push(entry);
    else consoleErrors.push(entry);
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));

  // 1. Dashboard, live height
  await step('dashboard loads', async () => {
    await page.goto(cfg.url, { waitUntil: 'load', timeout: WAIT });
    await page.waitForFunction(() => /^\d+$/.test(document.querySelector('[data-testid=latest-height]')?.textContent?.trim() ?? ''), null, { timeout: WAIT });
    await page.locator('[data-testid=block-row]').first().waitFor({ state: 'visible', timeout: WAIT });
    const rows = await page.locator('[data-testid=block-row]').count();
    check('dashboard loads', rows > 0, `${rows} block rows`);
  });
  await step('live height', async () => {
    const h0 = await heightNow(page);
    const deadline = Date.now() + 20_000;
    let h1 = h0;
    while (Date.now() < deadline) {
      await page.waitForTimeout(250);
      h1 = await heightNow(page);
      if (h0 !== null && h1 !== null && h1 > h0) break;
    }
    check('live height', h0 !== null && h1 !== null && h1 > h0, `header height ${h0} -> ${h1} within 20 s`);
    // The dashboard's newest row follows too.
    const top = await page.locator('[data-testid=block-row]').first().getAttribute('data-height');
    check('dashboard follows heads', Number(top) >= (h0 ?? Infinity), `newest row ${top}, first height seen ${h0}`);
  });
  await page.waitForTimeout(1000);
  await shot(page, 'dashboard');

  // 2. A transaction link from the dashboard, else from okTx's block page.
  await step('tx link shows a receipt', async () => {
    let from = 'dashboard';
    const dashLink = page.locator('[data-testid=latest-txs] [data-testid=tx-link]').first();
    try {
      await dashLink.waitFor({ state: 'visible', timeout: 5000 });
    } catch {
      from = '';
    }
    if (from) {
      await dashLink.click();
    } else {
      from = 'block page';
      await go(page, `#/tx/${cfg.okTx}`);
      const blockLink = page.locator('[data-testid=tx-overview] a[href^="#/block/"]').first();
      await blockLink.waitFor({ state: 'visible', timeout: WAIT });
      await blockLink.click();
      const link = page.locator('[data-testid=block-txs] [data-testid=tx-link]').first();
      await link.waitFor({ state: 'visible', timeout: WAIT });
      await link.click();
    }
    await page.waitForFunction(() => location.hash.startsWith('#/tx/'), null, { timeout: WAIT });
    await page.getByTestId('receipt').waitFor({ state: 'visible', timeout: WAIT });
    const st = await page.getByTestId('tx-status').first().textContent();
    check('tx link shows a receipt', true, `from the ${from}: ${await page.evaluate(() => location.hash)} status ${st?.trim()}`);
  });

  // 3. Block page of okTx (screenshot), with its commit signatures.
  await step('block page', async () => {
    await go(page, `#/tx/${cfg.okTx}`);
    const blockLink = page.locator('[data-testid=tx-overview] a[href^="#/block/"]').first();
    await blockLink.waitFor({ state: 'visible', timeout: WAIT });
    await blockLink.click();
    await page.getByTestId('block-header').waitFor({ state: 'visible', timeout: WAIT });
    await page.locator('[data-testid=block-txs] [data-testid=tx-link]').first().waitFor({ state: 'visible', timeout: WAIT });
    const txOnPage = await page.locator(`[data-testid=block-txs] [data-testid=tx-link][title="${cfg.okTx.toLowerCase()}"]`).count();
    await page.getByTestId('signed-power').waitFor({ state: 'visible', timeout: WAIT });
    const power = (await page.getByTestId('signed-power').textContent())?.trim();
    check('block page', txOnPage === 1, `okTx listed: ${txOnPage === 1}; signed power ${power}`);
    await shot(page, 'block');
  });

  // 3b. refusedTx's block marks it refused (and only it), beside the
  // committed revocation that made it inadmissible.
  await step('block page marks the refused transaction', async () => {
    await go(page, `#/block/${cfg.refusedHeight}`);
    const row = (h) => page.locator('[data-testid=block-txs] tr', { has: page.locator(`[data-testid=tx-link][title="${h.toLowerCase()}"]`) });
    await row(cfg.refusedTx).waitFor({ state: 'visible', timeout: WAIT });
    await row(cfg.revokeTx).locator('.badge.ok').waitFor({ state: 'visible', timeout: WAIT });
    const onRow = await row(cfg.refusedTx).locator('[data-testid=tx-refused]').count();
    const marked = await page.locator('[data-testid=block-txs] [data-testid=tx-refused]').count();
    const title = ((await page.locator('h2', { hasText: 'Transactions' }).first().textContent()) ?? '').trim();
    check('block page marks the refused transaction', onRow === 1 && marked === 1 && /, 1 refused\)$/.test(title), `its row marked: ${onRow}; rows marked: ${marked}; title "${title}"`);
    await shot(page, 'block-refused');
  });

  // 4. okTx through the search box
  await step('search okTx: success', async () => {
    await go(page, '#/');
    await search(page, cfg.okTx);
    await page.waitForFunction((h) => location.hash === `#/tx/${h}`, cfg.okTx.toLowerCase(), { timeout: WAIT });
    await page.getByTestId('receipt').waitFor({ state: 'visible', timeout: WAIT });
    const st = ((await page.getByTestId('tx-status').first().textContent()) ?? '').trim();
    check('search okTx: success', /success/i.test(st), `status "${st}"`);
    await shot(page, 'tx');
  });

  // 5. failedTx: failure and its reason
  await step('failedTx: reason', async () => {
    await search(page, cfg.failedTx);
    await page.waitForFunction((h) => location.hash === `#/tx/${h}`, cfg.failedTx.toLowerCase(), { timeout: WAIT });
    await page.getByTestId('tx-error').first().waitFor({ state: 'visible', timeout: WAIT });
    const st = ((await page.getByTestId('tx-status').first().textContent()) ?? '').trim();
    const reason = ((await page.getByTestId('tx-error').first().textContent()) ?? '').trim();
    check('failedTx: status failed', /fail/i.test(st), `status "${st}"`);
    check('failedTx: reason', reason.includes(cfg.failedReason), `reason "${reason}", expected "${cfg.failedReason}"`);
    await shot(page, 'failed-tx');
  });

  // 6. The account through the search box
  await step('account page', async () => {
    await search(page, cfg.address);
    await page.waitForFunction((a) => location.hash === `#/account/${a}`, cfg.address.toLowerCase(), { timeout: WAIT });
    await page.getByTestId('account-balance').waitFor({ state: 'visible', timeout: WAIT });
    const bal = ((await page.getByTestId('account-balance').textContent()) ?? '').trim();
    check('account balance', /^[\d,]+$/.test(bal), `balance "${bal}"`);
    let txs = 0;
    let detail = '';
    try {
      await page.locator('[data-testid=account-txs] [data-testid=tx-link]').first().waitFor({ state: 'visible', timeout: WAIT });
      txs = await page.locator('[data-testid=account-txs] [data-testid=tx-link]').count();
    } catch {
      detail = ((await page.locator('[data-testid=method-missing], [data-testid=error]').allTextContents()) ?? []).join(' | ');
    }
    check('account transactions', txs >= 1, `${txs} transaction(s) listed${detail ? `; ${detail}` : ''}`);
    await shot(page, 'account');
  });

  // 7. XSS: chain data shows as text, never runs
  await step('xss', async () => {
    await go(page, `#/tx/${cfg.xssTx.toLowerCase()}`);
    await page.getByTestId('receipt').waitFor({ state: 'visible', timeout: WAIT });
    const visible = await page.getByText(cfg.xssText, { exact: false }).first().isVisible();
    const xss = await page.evaluate(() => typeof window.__xss === 'undefined' ? 'undefined' : String(window.__xss));
    const imgs = await page.evaluate(() => document.querySelectorAll('img[src="x"], img[src=x]').length);
    const scripts = await page.evaluate(() => [...document.scripts].filter((s) => s.textContent?.includes('__xss')).length);
    check('xss: text shown literally', visible, `"${cfg.xssText}" visible: ${visible}`);
    check('xss: nothing ran', xss === 'undefined' && imgs === 0 && scripts === 0, `window.__xss ${xss}; img[src=x] ${imgs}; scripts ${scripts}`);
    await shot(page, 'xss-tx');
  });

  // 8. Validators: the stopped one misses blocks, another does not
  await step('validators', async () => {
    await go(page, '#/validators');
    await page.getByTestId('validator-row').first().waitFor({ state: 'visible', timeout: WAIT });
    const rows = await page.$$eval('[data-testid=validator-row]', (trs) =>
      trs.map((tr) => ({ key: (tr.getAttribute('data-key') ?? '').toLowerCase(), missed: tr.querySelector('[data-testid=missed]')?.textContent?.trim() ?? '' })),
    );
    await shot(page, 'validators');
    const errs = ((await page.locator('[data-testid=method-missing], [data-testid=error]').allTextContents()) ?? []).join(' | ');
    if (!cfg.stoppedValidator) {
      const numeric = rows.every((r) => /^\d+$/.test(r.missed));
      if (cfg.allowNoValidatorCheck) check('validators', rows.length > 0, `${rows.length} row(s), missed counts ${rows.map((r) => r.missed).join(',')}; stopped-validator check skipped (allowNoValidatorCheck)${numeric ? '' : `; activity: ${errs}`}`);
      else check('validators', false, 'no stoppedValidator given (set allowNoValidatorCheck to skip)');
      return;
    }
    const key = cfg.stoppedValidator.toLowerCase();
    const stopped = rows.find((r) => r.key === key);
    const others = rows.filter((r) => r.key !== key);
    const stoppedMissed = stopped ? Number(stopped.missed) : NaN;
    const healthy = others.filter((r) => r.missed === '0').length;
    check('validators: stopped one missed >= 3', stopped && /^\d+$/.test(stopped.missed) && stoppedMissed >= 3, stopped ? `missed ${stopped.missed}${errs ? `; ${errs}` : ''}` : `no row for ${key} among ${rows.length}`);
    check('validators: another missed 0', healthy >= 1, `${healthy} of ${others.length} other row(s) with missed 0`);
  });

  check('no console errors', consoleErrors.length === 0, consoleErrors.length ? consoleErrors.slice(0, 10).join(' || ') : `none${tolerated.length ? ` (${tolerated.length} tolerated network failure(s))` : ''}`);
}

let code = 0;
try {
  await main();
} catch (e) {
  check('run', false, e && e.stack ? e.stack.split('\n').slice(0, 3).join(' ') : String(e));
  code = 1;
} finally {
  clearTimeout(watchdog);
  try {
    await browser?.close();
  } catch {
    // ignore
  }
}
finish(code);
