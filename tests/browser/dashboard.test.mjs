// The dashboard page in headless Chromium against the local stack.
// Run by tests/tests/browser.rs, which starts the stack and sets:
//   SEATSCOPE_API          the local API (the page is served there)
//   SEATSCOPE_PAGERDUTY    the PagerDuty sandbox (ground truth, token switches)
//   SEATSCOPE_SENDGRID     the SendGrid sandbox
//   SEATSCOPE_SENDGRID_KEY a key the SendGrid sandbox accepts
//   SEATSCOPE_ORG / SEATSCOPE_EMAIL  who signs in at the dev issuer
//   SEATSCOPE_SCREENSHOTS  where the screenshots go
//   SEATSCOPE_TODAY_UTC    today by the stack's clock (YYYY-MM-DD)
//   CHROMIUM               the browser (default /usr/bin/chromium)
// The tests run in order and share one signed-in page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { env, launch, ready, signIn, post, getJson } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const PD = env('SEATSCOPE_PAGERDUTY').replace(/\/$/, '');
const SG_KEY = env('SEATSCOPE_SENDGRID_KEY');
const ORG = env('SEATSCOPE_ORG', 'browser');
const EMAIL = env('SEATSCOPE_EMAIL', `admin@${ORG}.example`);
// Today's UTC day by the stack's clock (pinned in tests): where the page's ranges end.
const TODAY = env('SEATSCOPE_TODAY_UTC');
const SHOTS = env('SEATSCOPE_SCREENSHOTS', path.resolve('../screenshots'));

let browser;
let context;
let page;
let truth; // the PagerDuty sandbox's ground truth
const consoleErrors = [];

before(async () => {
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, locale: 'en-US', timezoneId: 'UTC' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: API });
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
});

after(async () => {
  await browser?.close();
});

// ---------- helpers ----------

const card = (provider) => page.locator(`section.card[data-provider="${provider}"]`);

async function cardStatus(provider) {
  return card(provider).getAttribute('data-status');
}

async function waitCardStatus(provider, status, timeout = 30_000) {
  await page.locator(`section.card[data-provider="${provider}"][data-status="${status}"]`).waitFor({ timeout });
}

async function atPath(pathname) {
  await page.waitForURL((u) => u.origin === API && u.pathname === pathname, { timeout: 30_000 });
}

async function gotoReady(pathname, name) {
  await page.goto(`${API}${pathname}`);
  await ready(page, name);
}

/** The sandbox's consent page: press Approve or Deny, land back on /connections. */
async function consent(decision) {
  await page.waitForURL((u) => u.href.startsWith(`${PD}/oauth/authorize`), { timeout: 30_000 });
  await page.getByRole('button', { name: decision === 'approve' ? 'Approve' : 'Deny', exact: true }).click();
  await atPath('/connections');
  await ready(page, 'connections');
}

const DAY = 86_400_000;
const t = (ymd) => Date.parse(`${ymd}T00:00:00Z`);

/** UTC day → the set of users with ≥ 1 counted event that day. */
function activeByDay(gt) {
  const by = new Map();
  for (const d of gt.daily) {
    if (d.count <= 0) continue;
    const k = t(d.date);
    if (!by.has(k)) by.set(k, new Set());
    by.get(k).add(d.user_id);
  }
  return by;
}

/** Distinct users active in the n days ending `ymd` (DESIGN §4). */
function activeWithin(by, ymd, n) {
  const end = t(ymd);
  const s = new Set();
  for (let i = 0; i < n; i += 1) for (const u of by.get(end - i * DAY) || []) s.add(u);
  return s.size;
}

async function chartTable(kind) {
  return page.evaluate((k) => {
    const tbl = document.querySelector(`table.chart-data[data-chart="${k}"]`);
    if (!tbl) return null;
    const head = [...tbl.tHead.rows[0].cells].map((c) => c.textContent.trim());
    const rows = [...tbl.tBodies[0].rows].map((r) => [...r.cells].map((c, i) => (i === 0 ? c.dataset.date || c.textContent.trim() : c.dataset.value === '' ? null : Number(c.dataset.value))));
    // Per row: complete, partial (today so far) or no-data (a gap); the row header's text.
    const kinds = [...tbl.tBodies[0].rows].map((r) => r.dataset.day || null);
    const rowText = [...tbl.tBodies[0].rows].map((r) => r.cells[0].textContent.trim());
    return { head, rows, kinds, rowText };
  }, kind);
}

async function chartData(kind) {
  return page.evaluate((k) => {
    const c = window.seatscopeCharts?.[k];
    if (!c) return null;
    return { labels: [...c.data.labels], datasets: c.data.datasets.map((d) => ({ label: d.label, data: [...d.data] })) };
  }, kind);
}

function assertChartEqualsTable(chart, table, kind) {
  assert.ok(chart, `window.seatscopeCharts.${kind} is a Chart`);
  assert.ok(table, `the ${kind} data table is present`);
  assert.deepEqual(chart.labels, table.rows.map((r) => r[0]), `${kind}: chart labels = table rows`);
  assert.deepEqual(chart.datasets.map((d) => d.label), table.head.slice(1), `${kind}: dataset labels = table columns`);
  chart.datasets.forEach((d, i) => {
    assert.deepEqual(d.data.map((v) => (v === undefined ? null : v)), table.rows.map((r) => r[i + 1]), `${kind}: dataset ${d.label} = its column`);
  });
}

/** Every row of the seat table, page by page: {col: data-value}. */
async function readSeatTable() {
  const rows = [];
  const table = 'table[data-table="seats"]';
  for (;;) {
    rows.push(
      ...(await page.evaluate(
        (sel) => [...document.querySelectorAll(`${sel} tbody tr`)].map((tr) => ({
          id: tr.dataset.seatId,
          ...Object.fromEntries([...tr.cells].map((td) => [td.dataset.col, td.dataset.value ?? ''])),
        })),
        table,
      )),
    );
    const next = page.locator('section.seats button[data-page="next"]');
    if (await next.isDisabled()) break;
    const before = await page.getAttribute(table, 'data-page');
    await next.click();
    await page.waitForFunction(([sel, b]) => document.querySelector(sel).dataset.page !== b, [table, before]);
  }
  return rows;
}

function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i += 1; } else if (ch === '"') q = false;
      else cell += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { row.push(cell); cell = ''; } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

/** Every input/select/button/textarea/link/summary the browser exposes has a non-empty accessible name. */
async function assertAccessibleNames(label) {
  const cdp = await context.newCDPSession(page);
  try {
    await cdp.send('DOM.enable');
    await cdp.send('Accessibility.enable');
    const { root } = await cdp.send('DOM.getDocument', { depth: -1 });
    const { nodeIds } = await cdp.send('DOM.querySelectorAll', { nodeId: root.nodeId, selector: 'input, select, button, textarea, a[href], summary' });
    const missing = [];
    let checked = 0;
    for (const nodeId of nodeIds) {
      const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
      const n = nodes[0];
      if (!n || n.ignored) continue;
      checked += 1;
      if (!String(n.name?.value ?? '').trim()) {
        const { outerHTML } = await cdp.send('DOM.getOuterHTML', { nodeId });
        missing.push(outerHTML.slice(0, 160));
      }
    }
    assert.ok(checked > 0, `${label}: some controls were checked`);
    assert.deepEqual(missing, [], `${label}: controls without an accessible name`);
    return checked;
  } finally {
    await cdp.detach();
  }
}

/** Tab from the top of a freshly loaded page; every visible, enabled interactive element must be reached. */
async function assertTabReachesEverything(label) {
  const total = await page.evaluate(() => {
    const sel = 'a[href], button, input:not([type="hidden"]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
    let n = 0;
    for (const el of document.querySelectorAll(sel)) {
      if (el.disabled || el.tabIndex < 0 || el.closest('[inert]')) continue;
      const closed = el.closest('details:not([open])');
      if (closed && !(el.tagName === 'SUMMARY' && el.parentElement === closed)) continue;
      if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: false })) continue;
      if (el.type === 'radio' && !el.checked && document.querySelector(`input[type="radio"][name="${el.name}"]:checked`)) continue;
      el.dataset.tabwalk = String(n);
      n += 1;
    }
    return n;
  });
  const seen = [];
  const extra = [];
  for (let i = 0; i < total + 40; i += 1) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body || a === document.documentElement) return null;
      return a.dataset.tabwalk ?? `?${a.tagName.toLowerCase()}${a.id ? `#${a.id}` : ''}${a.className ? `.${a.className}` : ''}`;
    });
    if (id === null) continue;
    if (seen.length && id === seen[0]) break; // wrapped around
    seen.push(id);
    if (id.startsWith('?')) extra.push(id);
  }
  const reached = new Set(seen.filter((s) => !s.startsWith('?')));
  const unreached = [];
  for (let i = 0; i < total; i += 1) if (!reached.has(String(i))) unreached.push(i);
  const describe = await page.evaluate((ids) => ids.map((i) => document.querySelector(`[data-tabwalk="${i}"]`)?.outerHTML.slice(0, 120)), unreached);
  assert.deepEqual(describe, [], `${label}: interactive elements Tab never reached`);
  assert.ok(total > 3, `${label}: the page has controls (${total})`);
  if (extra.length) console.log(`${label}: focusable but not counted as interactive: ${extra.join(', ')}`);
  return { total, extra };
}

// ---------- the tests ----------

test('signs in through the dev issuer and lands on the page it asked for', { timeout: 90_000 }, async () => {
  await page.goto(`${API}/connections`);
  await signIn(page, { api: API, email: EMAIL, org: ORG });
  await atPath('/connections');
  await ready(page, 'connections');
  assert.equal((await page.locator('#account-email').textContent()).trim(), EMAIL);
  assert.ok(await page.getByRole('button', { name: 'Sign out' }).isVisible());
  for (const p of ['pagerduty', 'pandadoc', 'sendgrid']) {
    assert.equal(await card(p).count(), 1, `a card for ${p}`);
    assert.equal(await cardStatus(p), 'not_connected');
    assert.match(await card(p).locator('.chip').textContent(), /Not connected/);
  }
});

test('PagerDuty: consent denied shows the reason; approved, Sync now, and the app page equals the ground truth', { timeout: 180_000 }, async () => {
  truth = await getJson(`${PD}/_sandbox/ground-truth`);
  assert.ok(truth.seats.length > 100, 'more than one page of seats');

  // Deny first: the banner says why, as text.
  await card('pagerduty').getByRole('button', { name: 'Connect PagerDuty', exact: true }).click();
  await consent('deny');
  const denied = page.locator('.banner[data-kind="error"]');
  await denied.waitFor();
  assert.match(await denied.textContent(), /PagerDuty was not connected/);
  assert.match(await denied.textContent(), /access_denied/);
  assert.equal(new URL(page.url()).search, '', 'the callback query is removed from the address');
  await denied.getByRole('button', { name: 'Dismiss this message' }).click();
  assert.equal(await denied.count(), 0);
  assert.equal(await cardStatus('pagerduty'), 'not_connected');

  // Approve.
  await card('pagerduty').getByRole('button', { name: 'Connect PagerDuty', exact: true }).click();
  await consent('approve');
  assert.match(await page.locator('.banner[data-kind="success"]').textContent(), /PagerDuty is connected/);
  assert.match(await card('pagerduty').locator('.chip').textContent(), /Connected|Syncing/);

  // Sync now → the tick → the card shows what the sync brought.
  await card('pagerduty').getByRole('button', { name: 'Sync PagerDuty now' }).click();
  await page.waitForFunction(() => /Sync requested/.test(document.querySelector('section.card[data-provider="pagerduty"] .card-msg')?.textContent || ''));
  const report = await post(`${API}/_local/tick`);
  assert.ok(report.synced >= 1, `the tick synced: ${JSON.stringify(report)}`);
  await page.waitForFunction(() => /Sync finished/.test(document.querySelector('section.card[data-provider="pagerduty"] .card-msg')?.textContent || ''), null, { timeout: 30_000 });
  await waitCardStatus('pagerduty', 'connected');
  const last = card('pagerduty').locator('.last-sync');
  assert.ok(await last.getAttribute('data-last-sync-at'), 'a last sync time');
  const lastText = await last.textContent();
  assert.match(lastText, /Last sync:/);
  assert.ok(lastText.includes(`${truth.seats.length} seats`), `the card says what the sync brought: ${lastText}`);
  assert.match(lastText, /[\d,]+ events/);
  // A connected card says what it holds and still offers Reconnect.
  const pd = card('pagerduty');
  assert.equal(await pd.getByRole('button', { name: 'Reconnect PagerDuty' }).count(), 1, 'Reconnect on a connected card');
  assert.match(await pd.locator('.connected-at').textContent(), /Connected .* by \S+@\S+/);
  assert.match(await pd.locator('[data-scopes]').getAttribute('data-scopes'), /\bread\b/);
  assert.match(await pd.locator('[data-reads]').textContent(), /users/i);
  // Its sync history: the run just made, newest first.
  await pd.locator('details[data-history] summary').click();
  const firstRun = pd.locator('table[data-table="runs"] tbody tr').first();
  await firstRun.waitFor();
  assert.equal(await firstRun.getAttribute('data-outcome'), 'succeeded');
  const cells = await firstRun.locator('td').allTextContents();
  assert.equal(cells[3], String(truth.seats.length), `seats in the history row: ${cells}`);
  assert.ok(Number(cells[5].replace(/,/g, '')) > 0, `requests in the history row: ${cells}`);

  // The app page.
  await card('pagerduty').getByRole('link', { name: 'View PagerDuty usage' }).click();
  await atPath('/apps/pagerduty');
  await ready(page, 'app');
  assert.ok(Number(await page.evaluate(() => document.body.dataset.chartsDrawn)) > 0, 'data-charts-drawn is set');

  // Trend: DAU/WAU/MAU of every day equal the ones computed from the ground truth.
  const by = activeByDay(truth);
  const trend = await chartTable('trend');
  assert.deepEqual(trend.head, ['Date', 'DAU', 'WAU', 'MAU']);
  assert.ok(trend.rows.length > 0, 'trend rows');
  for (const [date, dau, wau, mau] of trend.rows) {
    assert.deepEqual([dau, wau, mau], [activeWithin(by, date, 1), activeWithin(by, date, 7), activeWithin(by, date, 30)], `DAU/WAU/MAU of ${date}`);
  }

  // Days are honest (the stack's clock: 12:00 UTC of TODAY). The headline is of the
  // last complete day, yesterday: the sandbox's DAU and MAU of that day, not today's
  // 0 so far.
  const yesterday = new Date(t(TODAY) - DAY).toISOString().slice(0, 10);
  assert.equal(await page.getAttribute('.as-of-line', 'data-as-of'), yesterday, 'the headline day is yesterday');
  assert.match(await page.locator('.as-of-line').textContent(), /last complete UTC day/);
  const tile = (m) => page.locator(`.tiles [data-metric="${m}"] dd`);
  const dauWant = activeWithin(by, yesterday, 1);
  assert.ok(dauWant > 0, 'the sandbox had users active yesterday');
  assert.equal(Number(await tile('dau').getAttribute('data-value')), dauWant, 'headline DAU = the truth of yesterday');
  assert.equal(Number(await tile('active_30d').getAttribute('data-value')), activeWithin(by, yesterday, 30), 'headline active (30 d) = MAU of yesterday');
  // Today's point: in the chart, marked partial ("so far"), drawn apart.
  const todayAt = trend.rows.findIndex((r) => r[0] === TODAY);
  assert.equal(todayAt, trend.rows.length - 1, 'today is the last point');
  assert.equal(trend.kinds[todayAt], 'partial', 'today is partial');
  assert.match(trend.rowText[todayAt], /so far/);
  assert.ok(trend.kinds.slice(0, todayAt).every((k) => k === 'complete'), 'every synced day before today is complete');
  assert.deepEqual(trend.rows[todayAt].slice(1, 2), [activeWithin(by, TODAY, 1)], 'today so far = the truth so far');
  const todayStyle = await page.evaluate((i) => {
    const ds = window.seatscopeCharts.trend.data.datasets;
    return ds.map((d) => ({ style: d.pointStyle[i], before: d.pointStyle[i - 1], radius: d.pointRadius[i], partial: d.partial[i] }));
  }, todayAt);
  for (const d of todayStyle) {
    assert.deepEqual([d.style, d.partial], ['triangle', true], 'today drawn apart');
    assert.notEqual(d.before, d.style, 'yesterday is drawn as a complete day');
    assert.ok(d.radius > 0, "today's point is shown");
  }
  assert.match(await page.locator('.trend-honesty').textContent(), new RegExp(`${TODAY}: so far`));
  const shown = new Set(trend.rows.map((r) => r[0]));
  for (const d of new Set(truth.daily.map((x) => x.date))) assert.ok(shown.has(d), `the trend shows ${d}`);
  assertChartEqualsTable(await chartData('trend'), trend, 'trend');

  // Features: totals over the range equal the ground truth's, and the chart draws the table.
  const features = await chartTable('features');
  const want = {};
  for (const d of truth.daily) want[d.feature] = (want[d.feature] || 0) + d.count;
  for (const [feature, total] of features.rows) assert.equal(total, want[feature] || 0, `feature ${feature}`);
  for (const f of Object.keys(want)) assert.ok(features.rows.some((r) => r[0] === f), `feature ${f} is shown`);
  assertChartEqualsTable(await chartData('features'), features, 'features');

  // Seats: every seat (both pages), with last activity and active days from the ground truth.
  const asOf = await page.getAttribute('table[data-table="seats"]', 'data-as-of');
  assert.match(asOf, /^\d{4}-\d{2}-\d{2}$/, 'the seat table says its as-of day');
  const rows = await readSeatTable();
  assert.equal(rows.length, truth.seats.length, 'one row per seat, over all pages');
  const byEmail = new Map(rows.map((r) => [r.email, r]));
  for (const s of truth.seats) {
    const r = byEmail.get(s.email);
    assert.ok(r, `a row for ${s.email}`);
    const mine = truth.daily.filter((d) => d.user_id === s.id && d.count > 0);
    const lastDay = mine.map((d) => d.date).sort().at(-1) || '';
    const days30 = new Set(mine.filter((d) => t(d.date) <= t(asOf) && t(d.date) > t(asOf) - 30 * DAY).map((d) => d.date)).size;
    assert.equal(r.name, s.name, `name of ${s.email}`);
    assert.equal(r.role, s.role, `role of ${s.email}`);
    assert.equal(r.last_activity_on, lastDay, `last activity of ${s.email}`);
    assert.equal(Number(r.active_days_30), days30, `active days (30 d) of ${s.email}`);
    // On call (the sandbox's schedules): never inactive; never active at all = on call, quiet.
    const onCall = truth.on_call.find((o) => o.user_id === s.id);
    if (onCall) {
      assert.equal(r.inactive, 'false', `${s.email} is on call: never reclaimable`);
      if (!mine.length) assert.equal(r.on_call, 'on call, quiet', `${s.email} is on call and never acted`);
      else assert.match(r.on_call, /^on call/, `${s.email} is on call`);
    } else {
      assert.equal(r.on_call, '', `${s.email} is not on call`);
    }
  }
  // The label names the schedule: a quiet on-call seat of "Payments Primary" reads so.
  const quietId = truth.on_call.find((o) => o.schedule === 'Payments Primary' && !truth.daily.some((d) => d.user_id === o.user_id && d.count > 0)).user_id;
  const quietEmail = truth.seats.find((s) => s.id === quietId).email;
  await page.getByLabel('Search').fill(quietEmail);
  await page.waitForFunction(() => document.querySelector('table[data-table="seats"]').dataset.rows === '1');
  assert.match(await page.locator(`table[data-table="seats"] tr[data-seat-id="${quietId}"] td[data-col="on_call"]`).textContent(), /^On call, quiet · Payments Primary/);
  await page.getByLabel('Search').fill('');
  await page.waitForFunction((n) => document.querySelector('table[data-table="seats"]').dataset.rows === String(n), truth.seats.length);

  // The range selector: 6 months asks for today − 182 days … today (UTC).
  const threeMonths = trend.rows.length;
  const asked = page.waitForRequest((r) => r.url().includes('/api/apps/pagerduty?from='));
  await page.getByLabel('Range').selectOption('6');
  const query = new URL((await asked).url()).searchParams;
  await page.waitForURL((u) => u.pathname === '/apps/pagerduty' && u.search === '?range=6');
  await ready(page, 'app');
  const today = TODAY;
  const from6 = new Date(t(today) - 182 * DAY).toISOString().slice(0, 10);
  assert.deepEqual([query.get('from'), query.get('to')], [from6, today], '6 months = today − 182 days … today');
  const six = await chartTable('trend');
  // The API answers the days inside the synced history only (here fewer than 6
  // months); the page shows every day of the range, the days before the first synced
  // day as gaps (null), never 0.
  assert.ok(six.rows.length >= threeMonths && six.rows[0][0] === from6 && six.rows.at(-1)[0] === today);
  const firstSynced = six.rows.find((r, i) => six.kinds[i] !== 'no-data')[0];
  assert.ok(firstSynced > from6, `days before the first synced day (${firstSynced}) are in the 6-month range`);
  six.rows.forEach((r, i) => {
    if (r[0] < firstSynced) {
      assert.equal(six.kinds[i], 'no-data', `${r[0]} has no data`);
      assert.deepEqual(r.slice(1), [null, null, null], `${r[0]} is a gap, not 0`);
    } else assert.notEqual(six.kinds[i], 'no-data', `${r[0]} is synced`);
  });
  const sixChart = await chartData('trend');
  assertChartEqualsTable(sixChart, six, 'trend (6 months)');
  assert.ok(sixChart.datasets.every((d) => d.data[0] === null), 'the chart draws the first day as a gap');
  assert.equal(await page.evaluate(() => window.seatscopeCharts.trend.data.datasets.every((d) => d.spanGaps === false)), true, 'gaps are not spanned');
  await page.goBack();
  await ready(page, 'app');
  assert.equal((await chartTable('trend')).rows.length, threeMonths, 'Back returns to 3 months');

  // Filters: active = activity within the threshold (30 days ending the as-of day).
  const activeWant = truth.seats.filter((s) => truth.daily.some((d) => d.user_id === s.id && d.count > 0 && t(d.date) <= t(asOf) && t(d.date) > t(asOf) - 30 * DAY)).length;
  await page.getByLabel('Show').selectOption('active');
  await page.waitForFunction((n) => document.querySelector('table[data-table="seats"]').dataset.rows === String(n), activeWant);
  await page.getByLabel('Show').selectOption('all');

  // Sort and search work from the keyboard.
  const emailSort = page.locator('th[data-col="email"]');
  assert.equal(await emailSort.getAttribute('aria-sort'), 'ascending');
  await emailSort.getByRole('button').focus();
  await page.keyboard.press('Enter');
  assert.equal(await emailSort.getAttribute('aria-sort'), 'descending');
  const firstDesc = await page.locator('table[data-table="seats"] tbody tr').first().getAttribute('data-seat-id');
  const maxEmail = [...truth.seats].sort((a, b) => b.email.localeCompare(a.email, undefined, { sensitivity: 'base', numeric: true }))[0];
  assert.equal(firstDesc, maxEmail.id, 'sorted by email, descending');
  const someone = truth.seats[7];
  await page.getByLabel('Search').fill(someone.email);
  await page.waitForFunction(() => document.querySelector('table[data-table="seats"]').dataset.rows === '1');
  assert.equal(await page.locator('table[data-table="seats"] tbody tr').first().getAttribute('data-seat-id'), someone.id);
});

test('CSV: seats.csv from the page button equals the seat table, row by row', { timeout: 90_000 }, async () => {
  await gotoReady('/apps/pagerduty', 'app');
  const table = await readSeatTable();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Seats CSV', exact: true }).click()]);
  assert.match(download.suggestedFilename(), /seats\.csv$/);
  const csv = parseCsv(await readFile(await download.path(), 'utf8')).filter((r) => r.length > 1 || r[0] !== '');
  const cols = ['email', 'name', 'role', 'license', 'status', 'last_activity_on', 'active_days_30', 'inactive', 'exempt', 'in_grace', 'on_call', 'on_call_schedule', 'downgrade_to', 'downgrade_monthly_saving'];
  assert.deepEqual(csv[0], cols, 'the CSV header');
  const body = csv.slice(1);
  assert.equal(body.length, table.length, 'as many CSV rows as table rows');
  const byEmail = new Map(table.map((r) => [r.email, r]));
  for (const line of body) {
    const rec = Object.fromEntries(cols.map((c, i) => [c, line[i]]));
    const row = byEmail.get(rec.email);
    assert.ok(row, `the table has ${rec.email}`);
    for (const c of ['email', 'name', 'role', 'license', 'status', 'last_activity_on', 'active_days_30', 'inactive', 'on_call']) {
      assert.equal(row[c], rec[c], `${rec.email}: ${c}`);
    }
    assert.equal(row.downgrade, rec.downgrade_to, `${rec.email}: the cheaper license`);
  }
});

test('settings: a seat price and no grace period; the numbers follow; a seat can be exempted', { timeout: 90_000 }, async () => {
  await gotoReady('/apps/pagerduty', 'app');
  const seats = Number(await page.locator('.tile[data-metric="seats"] dd').getAttribute('data-value'));
  assert.equal(seats, truth.seats.length);
  await page.getByLabel('Grace period for new seats (days)').fill('0');
  await page.getByLabel('Seat price per month (USD)').fill('21');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('.banner[data-banner-id="settings"]').waitFor();
  await ready(page, 'app');
  const tile = async (m) => page.locator(`.tile[data-metric="${m}"] dd`).getAttribute('data-value');
  assert.equal(Number(await tile('seat_price')), 21);
  assert.equal(Number(await tile('monthly_cost')), 21 * seats);
  const inactive = Number(await tile('inactive_seats'));
  assert.equal(Number(await tile('potential_savings')), 21 * inactive);
  const table = await readSeatTable();
  assert.equal(table.filter((r) => r.inactive === 'true').length, inactive, 'the seat table agrees with the summary');
  if (inactive > 0) {
    const victim = table.find((r) => r.inactive === 'true');
    await gotoReady('/apps/pagerduty', 'app');
    await page.getByRole('checkbox', { name: `Exempt ${victim.email}`, exact: true }).check();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.locator('.banner[data-banner-id="settings"]').waitFor();
    await ready(page, 'app');
    assert.equal(Number(await tile('inactive_seats')), inactive - 1, 'an exempt seat is not inactive');
    const cell = page.locator(`table[data-table="seats"] tr[data-seat-id="${victim.id}"] td[data-col="inactive"]`);
    await page.getByLabel('Search').fill(victim.email);
    await page.waitForFunction(() => document.querySelector('table[data-table="seats"]').dataset.rows === '1');
    assert.equal(await cell.getAttribute('data-exempt'), 'true');
    assert.equal(await cell.getAttribute('data-value'), 'false');
  } else {
    console.log('no inactive seats in this data set: exemption not exercised');
  }
});

test('SendGrid: a wrong API key shows the 422 message; the sandbox key connects', { timeout: 90_000 }, async () => {
  await gotoReady('/connections', 'connections');
  const sg = card('sendgrid');
  const input = sg.getByLabel('SendGrid API key');
  // Shaped like a SendGrid key, unknown to the sandbox.
  await input.fill(`SG.${'x'.repeat(22)}.${'y'.repeat(43)}`);
  await sg.getByRole('button', { name: 'Connect SendGrid with key' }).click();
  const err = sg.locator('.field-error[data-for="api_key"]');
  await page.waitForFunction(() => document.querySelector('section.card[data-provider="sendgrid"] .field-error[data-for="api_key"]')?.dataset.status);
  assert.equal(await err.getAttribute('data-status'), '422');
  const message = (await err.textContent()).trim();
  assert.ok(message.length > 10, `the server's message is shown: ${message}`);
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  assert.equal(await cardStatus('sendgrid'), 'not_connected');

  await input.fill(SG_KEY);
  await sg.getByRole('button', { name: 'Connect SendGrid with key' }).click();
  await waitCardStatus('sendgrid', 'connected');
  assert.match(await page.locator('.banner[data-kind="success"]').textContent(), /SendGrid is connected/);
  assert.equal(await card('sendgrid').locator('input[type="password"]').isVisible(), false, 'the key field is tucked away once connected');
});

test('invite link for the app admin: shown in a labelled read-only field, Copy says Copied', { timeout: 60_000 }, async () => {
  const pd = card('pandadoc');
  await pd.getByRole('button', { name: 'Invite the PandaDoc admin' }).click();
  const field = pd.getByLabel('Invite link for the PandaDoc admin');
  await field.waitFor();
  const url = await field.inputValue();
  assert.ok(url.startsWith(`${API}/`), `an invite URL on the API: ${url}`);
  assert.equal(await field.getAttribute('readonly'), '');
  await pd.getByRole('button', { name: 'Copy the invite link' }).click();
  await page.waitForFunction(() => /Copied/.test(document.querySelector('section.card[data-provider="pandadoc"] .copy-status')?.textContent || ''));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url);
  // The card lists the pending link (never its token) with a Revoke button; revoking it empties the list.
  const pending = pd.locator('.pending-invites li');
  await pending.first().waitFor();
  const before = await pending.count();
  assert.ok(before >= 1, 'the new link is listed as pending');
  assert.ok(!(await pd.locator('.pending-invites').textContent()).includes(url.split('/').pop()), 'a token is shown');
  await pending.first().getByRole('button', { name: /^Revoke the invite link created / }).click();
  await page.waitForFunction((n) => document.querySelectorAll('section.card[data-provider="pandadoc"] .pending-invites li').length === n - 1, before);
  assert.match(await pd.locator('.card-msg').textContent(), /revoked/);
});

test('PagerDuty reconnect: revoked tokens → Needs reconnect with the reason → Reconnect → Connected', { timeout: 180_000 }, async () => {
  await post(`${PD}/_sandbox/revoke-refresh-tokens`);
  await post(`${PD}/_sandbox/expire-access-tokens`);
  await gotoReady('/connections', 'connections');
  await card('pagerduty').getByRole('button', { name: 'Sync PagerDuty now' }).click();
  await page.waitForFunction(() => /Sync requested/.test(document.querySelector('section.card[data-provider="pagerduty"] .card-msg')?.textContent || ''));
  await post(`${API}/_local/tick`);
  await waitCardStatus('pagerduty', 'needs_reconnect', 30_000);
  assert.match(await card('pagerduty').locator('.chip').textContent(), /Needs reconnect/);
  const reason = (await card('pagerduty').locator('.status-reason').textContent()).trim();
  assert.ok(reason.length > 'Reason: '.length, `the vendor's reason is shown: ${reason}`);
  assert.equal(await card('pagerduty').getByRole('button', { name: 'Sync PagerDuty now' }).count(), 0, 'no Sync now while access is gone');

  await card('pagerduty').getByRole('button', { name: 'Reconnect PagerDuty' }).click();
  await consent('approve');
  await waitCardStatus('pagerduty', 'connected');
  assert.match(await card('pagerduty').locator('.chip').textContent(), /Connected/);
  // A sync with the new tokens works.
  await post(`${API}/_local/tick`);
  await gotoReady('/connections', 'connections');
  assert.equal(await cardStatus('pagerduty'), 'connected');
});

test('overview: a row per app with the synced numbers, a totals row, and the definitions', { timeout: 60_000 }, async () => {
  await gotoReady('/', 'overview');
  const row = page.locator('tr[data-provider="pagerduty"]');
  const cell = (m) => row.locator(`[data-metric="${m}"]`);
  assert.equal(Number(await cell('seats').getAttribute('data-value')), truth.seats.length);
  const asOf = (await row.locator('.as-of').textContent()).trim();
  assert.equal(asOf, new Date(t(TODAY) - DAY).toISOString().slice(0, 10), 'the as-of day is the last complete day, yesterday');
  assert.equal(Number(await cell('active_30d').getAttribute('data-value')), activeWithin(activeByDay(truth), asOf, 30), 'active (30 d) = MAU of the as-of day');
  assert.ok((await cell('seats').getAttribute('title')).length > 10, 'a number carries its definition');
  // SendGrid: no per-seat activity → "—" that says why.
  const sgActive = page.locator('tr[data-provider="sendgrid"] [data-metric="active_30d"]');
  assert.equal((await sgActive.getAttribute('data-value')), '');
  assert.match(await sgActive.getAttribute('title'), /No number:/);
  assert.equal(await page.locator('tr[data-row="totals"]').count(), 1);
  const details = page.locator('details.definitions');
  await details.locator('summary').click();
  assert.match(await details.textContent(), /How these numbers are defined/);
  assert.ok((await details.locator('dd').count()) >= 5, 'the definitions are listed');
});

test('accessibility: every control has a name and Tab reaches every interactive element', { timeout: 240_000 }, async () => {
  for (const [p, name] of [['/connections', 'connections'], ['/', 'overview'], ['/apps/pagerduty', 'app'], ['/apps/sendgrid', 'app']]) {
    await gotoReady(p, name);
    const named = await assertAccessibleNames(p);
    const { total } = await assertTabReachesEverything(p);
    console.log(`${p}: ${named} controls named, ${total} reached by Tab`);
    // Charts are images with a name, and their numbers are in a table.
    if (name === 'app') {
      for (const c of await page.locator('canvas').all()) {
        assert.equal(await c.getAttribute('role'), 'img');
        assert.ok((await c.getAttribute('aria-label')).length > 10);
      }
      assert.equal(await page.locator('table.chart-data[data-chart="trend"]').count(), 1);
    }
  }
});

test('screenshots of the connections, overview and app pages', { timeout: 90_000 }, async () => {
  for (const [p, name, file] of [
    ['/connections', 'connections', 'connections.png'],
    ['/', 'overview', 'overview.png'],
    ['/apps/pagerduty', 'app', 'app-pagerduty.png'],
    ['/apps/sendgrid', 'app', 'app-sendgrid.png'],
  ]) {
    await gotoReady(p, name);
    await page.screenshot({ path: path.join(SHOTS, file), fullPage: true });
  }
});

test('disconnect asks first (keep or delete the history), then the card says Disconnected', { timeout: 60_000 }, async () => {
  await gotoReady('/connections', 'connections');
  await card('sendgrid').getByRole('button', { name: 'Disconnect SendGrid' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.waitFor();
  assert.equal(await dlg.getByLabel('Keep the history (seats, activity, trends)').isChecked(), true);
  await dlg.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.getByRole('dialog').count(), 0);
  assert.equal(await cardStatus('sendgrid'), 'connected');
  await card('sendgrid').getByRole('button', { name: 'Disconnect SendGrid' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await waitCardStatus('sendgrid', 'disconnected');
  assert.match(await card('sendgrid').locator('.chip').textContent(), /Disconnected/);
});

test('a 401 from the API signs in again and comes back to the page asked for', { timeout: 60_000 }, async () => {
  await gotoReady('/', 'overview');
  await page.evaluate(() => {
    for (const k of Object.keys(sessionStorage)) {
      if (!k.startsWith('oidc.user:')) continue;
      const u = JSON.parse(sessionStorage.getItem(k));
      u.access_token = 'not-a-token';
      sessionStorage.setItem(k, JSON.stringify(u));
    }
  });
  await page.goto(`${API}/apps/pagerduty?range=6`);
  await signIn(page, { api: API, email: EMAIL, org: ORG });
  await page.waitForURL((u) => u.origin === API && u.pathname === '/apps/pagerduty' && u.search === '?range=6');
  await ready(page, 'app');
  assert.equal((await page.locator('#account-email').textContent()).trim(), EMAIL);
});

test('sign out ends the session at the issuer and says so', { timeout: 60_000 }, async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL((u) => u.origin === API && u.pathname === '/');
  await ready(page, 'signed-out');
  assert.equal((await page.locator('main h1').textContent()).trim(), 'You are signed out');
  assert.equal(await page.locator('#account').isVisible(), false);
  const stored = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.user:')));
  assert.deepEqual(stored, [], 'no user left in storage');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await signIn(page, { api: API, email: EMAIL, org: ORG });
  await atPath('/');
  await ready(page, 'overview');
});

test('no script errors on any page', () => {
  // 401s from the API would be shown, not thrown; anything here is a bug in the page.
  const real = consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(e));
  assert.deepEqual(real, []);
});
