// The seat table's License filter in headless Chromium against the local stack, with
// PagerDuty connected and synced (the runner does both) and every seat carrying its
// sandbox license (Full User or Stakeholder). Needs SEATSCOPE_API, SEATSCOPE_ORG,
// SEATSCOPE_PAGERDUTY (the sandbox, for its ground truth), SEATSCOPE_SCREENSHOTS and
// CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { env, getJson, openPage, ready, signIn } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const ORG = env('SEATSCOPE_ORG');
const PD = env('SEATSCOPE_PAGERDUTY').replace(/\/$/, '');
const SHOTS = env('SEATSCOPE_SCREENSHOTS', path.resolve('../screenshots'));

let browser;
let page;
const pageErrors = [];

before(async () => {
  ({ browser, page } = await openPage(pageErrors));
});

after(async () => {
  await browser?.close();
});

const TABLE = 'table[data-table="seats"]';

/** The seat ids the table shows once it lists `n` rows (one page: the account is small). */
async function shownIds(n) {
  await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.dataset.rows === String(want), [TABLE, n]);
  return page.locator(`${TABLE} tbody tr`).evaluateAll((rows) => rows.map((r) => r.dataset.seatId).sort());
}

test('the License filter lists the licenses present and shows only the chosen one’s seats', { timeout: 120_000 }, async () => {
  const truth = await getJson(`${PD}/_sandbox/ground-truth`);
  const byLicense = new Map();
  for (const s of truth.seats) {
    if (!byLicense.has(s.license)) byLicense.set(s.license, []);
    byLicense.get(s.license).push(s.id);
  }
  const names = [...byLicense.keys()].sort((a, b) => a.localeCompare(b));
  assert.deepEqual(names, ['Business (Full User)', 'Business (Stakeholder)'], 'the sandbox holds both license types');
  assert.ok(truth.seats.length <= 100, 'one page of seats');

  await page.goto(`${API}/apps/pagerduty`);
  await signIn(page, { api: API, email: `admin@${ORG}.example`, org: ORG });
  await page.waitForURL((u) => u.origin === API && u.pathname === '/apps/pagerduty', { timeout: 30_000 });
  await ready(page, 'app');

  const select = page.getByLabel('License', { exact: true });
  assert.equal(await select.evaluate((el) => el.tagName), 'SELECT', 'a labelled <select>');
  const options = await select.locator('option').allTextContents();
  assert.deepEqual(options, ['All licenses', ...names], 'All licenses, then each license present');
  assert.equal(await select.inputValue(), '', 'All licenses by default');
  const all = truth.seats.map((s) => s.id).sort();
  assert.deepEqual(await shownIds(all.length), all);

  for (const name of names) {
    await select.selectOption({ label: name });
    const want = [...byLicense.get(name)].sort();
    assert.deepEqual(await shownIds(want.length), want, `${name}: exactly its seats`);
    const cells = await page.locator(`${TABLE} tbody td[data-col="license"]`).allTextContents();
    assert.ok(cells.every((c) => c === name), `${name}: every license cell says so`);
    if (name.includes('Stakeholder')) await page.locator('section.seats').screenshot({ path: path.join(SHOTS, 'seats-license-filter.png') });
  }

  // It combines with the other filters and the search, and All licenses restores the list.
  await page.getByLabel('Show').selectOption('on_call');
  const onCall = new Set(truth.on_call.map((o) => o.user_id));
  const stakeholders = byLicense.get('Business (Stakeholder)').filter((id) => onCall.has(id));
  assert.deepEqual(await shownIds(stakeholders.length), stakeholders.sort(), 'stakeholders on call (none: they never respond)');
  await page.getByLabel('Show').selectOption('all');
  await select.selectOption({ label: 'All licenses' });
  assert.deepEqual(await shownIds(all.length), all);
  assert.deepEqual(pageErrors, []);
});

test('the Cheaper license column says which full seats could be Stakeholder seats', { timeout: 120_000 }, async () => {
  const truth = await getJson(`${PD}/_sandbox/ground-truth`);
  const responder = new Set(['acknowledge', 'resolve', 'reassign', 'escalate']);
  const onCall = new Set(truth.on_call.map((o) => o.user_id));
  // The data set is 10 days long, inside the 30-day threshold: a full user on no
  // schedule with activity but no responder action is the hint's seat.
  const acted = (id, pred) => truth.daily.some((d) => d.user_id === id && d.count > 0 && pred(d));
  const want = truth.seats
    .filter((s) => s.license === 'Business (Full User)' && !onCall.has(s.id) && acted(s.id, () => true) && !acted(s.id, (d) => responder.has(d.feature)))
    .map((s) => s.id)
    .sort();
  assert.ok(want.length >= 2, `the sandbox's notes-only full users: ${want}`);

  await page.goto(`${API}/apps/pagerduty`);
  await ready(page, 'app');
  await shownIds(truth.seats.length);
  const cells = await page.locator(`${TABLE} tbody td[data-col="downgrade"]`).evaluateAll((tds) =>
    tds.map((td) => ({ id: td.closest('tr').dataset.seatId, to: td.dataset.value, text: td.textContent })),
  );
  const hinted = cells.filter((c) => c.to).map((c) => c.id).sort();
  assert.deepEqual(hinted, want, 'exactly the full seats that responded to nothing and are on no schedule');
  for (const c of cells.filter((c) => c.to)) {
    assert.equal(c.to, 'Business (Stakeholder)');
    assert.equal(c.text, 'Could be a Business (Stakeholder) seat', 'no prices set: no saving shown');
  }
  assert.ok(cells.filter((c) => !c.to).every((c) => c.text === '—'));
  const header = page.locator(`${TABLE} th[data-col="downgrade"] button`);
  assert.equal(await header.textContent(), 'Cheaper license');
  assert.match(await header.getAttribute('title'), /Stakeholder/, 'the column carries its definition');
  await page.locator('section.seats').screenshot({ path: path.join(SHOTS, 'seats-downgrade-hint.png') });
  assert.deepEqual(pageErrors, []);
});
