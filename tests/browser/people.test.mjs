// The People page in headless Chromium against the local stack, with PagerDuty and
// PandaDoc connected and synced (the runner does both) and some users sharing an
// address across the two sandboxes (in other letter cases too). The page must list
// every person once with the apps they hold, filter by "inactive in every app they
// hold" and "holds 2+ apps, active in none" exactly as the API does, show the unmatched
// seats per app, offer the CSV, and be reachable from the navigation. Needs
// SEATSCOPE_API, SEATSCOPE_ORG, SEATSCOPE_PEOPLE_WANT (JSON the runner computed from the
// sandboxes' ground truth and the API's filters), SEATSCOPE_SCREENSHOTS and CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile } from 'node:fs/promises';

import { env, openPage, ready, signIn } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const ORG = env('SEATSCOPE_ORG');
const WANT = JSON.parse(env('SEATSCOPE_PEOPLE_WANT'));
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

const TABLE = 'table[data-table="people"]';

/** The rows' emails once every page is shown ("More people" pressed until it hides). */
async function allShown() {
  for (let i = 0; i < 50; i += 1) {
    const more = page.getByRole('button', { name: 'More people' });
    if (!(await more.isVisible())) break;
    const before = await page.locator(`${TABLE} tbody tr`).count();
    await more.click();
    await page.waitForFunction(([sel, n]) => document.querySelectorAll(`${sel} tbody tr`).length > n, [TABLE, before]);
  }
  return page.locator(`${TABLE} tbody tr`).evaluateAll((rows) => rows.map((r) => [r.dataset.email, Number(r.dataset.appsHeld)]));
}

test('the People page joins seats by email, filters, counts unmatched seats and exports CSV', { timeout: 150_000 }, async () => {
  await page.goto(`${API}/`);
  await signIn(page, { api: API, email: `admin@${ORG}.example`, org: ORG });
  await page.waitForURL((u) => u.origin === API && u.pathname === '/', { timeout: 30_000 });
  await ready(page, 'overview');

  console.log('step: reachable');
  // Reachable from the navigation.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'People', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/' && u.searchParams.get('view') === 'people');
  await ready(page, 'people');
  assert.equal(await page.locator('h1').textContent(), 'People');

  console.log('step: listing');
  const rows = await allShown();
  assert.deepEqual(rows, WANT.people, 'every person once, by email, with the apps they hold');
  assert.ok(rows.some(([, n]) => n === 2), 'people in two apps');
  // A shared person's cells: a license in both apps' columns.
  const shared = WANT.people.find(([, n]) => n === 2)[0];
  const row = page.locator(`${TABLE} tbody tr[data-email="${shared}"]`);
  assert.notEqual(await row.locator('td[data-col="pagerduty-license"]').textContent(), '');
  assert.notEqual(await row.locator('td[data-col="pandadoc-license"]').textContent(), '');
  const unmatched = await page.locator('[data-unmatched] li').evaluateAll((lis) => lis.map((li) => [li.dataset.provider, Number(li.dataset.unmatched)]));
  assert.deepEqual(unmatched, WANT.unmatched);
  await page.screenshot({ path: path.join(SHOTS, 'people.png'), fullPage: true });

  console.log('step: csv');
  // The CSV: every person, the same order.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'People CSV' }).click()]);
  assert.equal(download.suggestedFilename(), 'seatscope-people.csv');
  const lines = (await readFile(await download.path(), 'utf8')).trim().split(/\r?\n/);
  assert.equal(lines[0].split(',')[0], 'email');
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), WANT.people.map(([e]) => e));

  console.log('step: inactive filter');
  // Inactive in every app they hold.
  await page.getByLabel('Inactive in every app they hold').check();
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL((u) => u.searchParams.get('inactive_everywhere') === 'true');
  await ready(page, 'people');
  assert.deepEqual((await allShown()).map(([e]) => e), WANT.inactive_everywhere);

  console.log('step: two apps filter');
  // Holds at least 2 apps, active in none.
  await page.getByLabel('Inactive in every app they hold').uncheck();
  await page.getByLabel('Holds at least').fill('2');
  await page.getByLabel('active in none').check();
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL((u) => u.searchParams.get('min_apps') === '2' && u.searchParams.get('active_in_none') === 'true' && !u.searchParams.has('inactive_everywhere'));
  await ready(page, 'people');
  assert.deepEqual((await allShown()).map(([e]) => e), WANT.two_apps_active_in_none);
  await page.screenshot({ path: path.join(SHOTS, 'people-filtered.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
});
