// Prices per license type and the renewal in headless Chromium against the local stack,
// with PandaDoc connected and synced (the runner does both): an admin prices each
// license, sets an annual renewal 30 days from the stack's today and the currency on
// the app page; the page shows the costs per license type as the API computes them,
// and the overview's "Renewals in the next 90 days" lists PandaDoc with the saving.
// Needs SEATSCOPE_API, SEATSCOPE_ORG, SEATSCOPE_SCREENSHOTS and CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { env, getJson, openPage, ready, signIn } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const ORG = env('SEATSCOPE_ORG');
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

/** YYYY-MM-DD `days` after `day`. */
function plusDays(day, days) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

test('an admin prices each license and sets the renewal; the overview lists it with the saving', { timeout: 180_000 }, async () => {
  const { today } = await getJson(`${API}/api/config`);
  assert.match(today, /^\d{4}-\d{2}-\d{2}$/);
  await page.goto(`${API}/apps/pandadoc`);
  await signIn(page, { api: API, email: `admin@${ORG}.example`, org: ORG });
  await page.waitForURL((u) => u.origin === API && u.pathname === '/apps/pandadoc', { timeout: 30_000 });
  await ready(page, 'app');

  const form = page.locator('form[data-form="spend"]');
  const inputs = form.locator('input[data-license]');
  const licenses = await inputs.evaluateAll((els) => els.map((e) => e.dataset.license));
  assert.ok(licenses.length >= 3, `a price field per license present: ${licenses}`);
  const price = (i) => 10 + i * 7.5;
  for (const [i, license] of licenses.entries()) {
    await form.getByLabel(`${license} per seat per month`, { exact: false }).fill(String(price(i)));
  }
  await form.getByLabel('Currency (ISO code)').fill('EUR');
  await form.getByLabel('Billing period').selectOption('annual');
  const renews = plusDays(today, 30);
  await form.getByLabel('Renewal date').fill(renews);
  await form.getByRole('button', { name: 'Save prices and renewal' }).click();
  await page.waitForSelector('[data-banner-id="settings"][data-kind="success"]');
  // The page renders again with the new summary: its renewal line is the sign.
  await page.locator(`[data-renewal="${renews}"]`).waitFor();
  await ready(page, 'app');

  // The costs per license type the page shows are the API's.
  const detail = await page.evaluate(async (api) => {
    const token = sessionStorage.getItem(Object.keys(sessionStorage).find((k) => k.startsWith('oidc.user')) || '');
    const bearer = token ? JSON.parse(token).access_token : null;
    const r = await fetch(`${api}/api/apps/pandadoc`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    return r.ok ? r.json() : null;
  }, API);
  assert.ok(detail, 'the API answers with the page token');
  const table = page.locator('table[data-table="license-costs"]');
  const shown = await table.locator('tbody tr').evaluateAll((rows) => rows.map((r) => ({
    license: r.dataset.license,
    monthly: r.querySelector('[data-metric="monthly_cost"]')?.dataset.value,
    price: r.querySelector('[data-metric="license_price"]')?.dataset.value,
  })));
  assert.equal(shown.length, licenses.length, 'a row per license');
  for (const [i, license] of licenses.entries()) {
    const row = shown.find((r) => r.license === license);
    assert.ok(row, `${license} has a row`);
    assert.equal(Number(row.price), price(i), `${license}: its price`);
    const api = detail.summary.by_license.find((l) => l.license === license);
    assert.equal(Number(row.monthly), api.monthly_cost, `${license}: the API's monthly cost`);
  }
  assert.ok(await page.locator(`[data-renewal="${renews}"]`).isVisible(), 'the next renewal is shown');
  await page.locator('section.spend').screenshot({ path: path.join(SHOTS, 'app-license-costs.png') });

  // The overview: PandaDoc renews in 30 days; the saving is a year of its inactive seats.
  await page.goto(`${API}/`);
  await ready(page, 'overview');
  const row = page.locator('table[data-table="renewals"] tbody tr[data-provider="pandadoc"]');
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[0], renews);
  assert.equal(cells[1], '30 days');
  assert.equal(cells[2], 'Annual');
  const saving = await row.locator('[data-metric="saving_if_reclaimed"]').getAttribute('data-value');
  const inactive = Number(await row.locator('[data-metric="inactive_seats"]').getAttribute('data-value'));
  assert.ok(inactive > 0, 'the data set has inactive seats');
  assert.ok(Number(saving) > 0, `a saving is shown: ${saving}`);
  assert.match(cells.at(-1), /€/, 'in euros');
  await page.locator('section.renewals').screenshot({ path: path.join(SHOTS, 'overview-renewals.png') });
  assert.deepEqual(pageErrors, []);
});
