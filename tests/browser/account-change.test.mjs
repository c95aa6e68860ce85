// A Reconnect that lands on another vendor account, in headless Chromium against the
// local stack. The runner connected and synced PagerDuty account `SEATSCOPE_FIRST_ACCOUNT`,
// then made the same vendor URL serve account `SEATSCOPE_OTHER_ACCOUNT`. Here the admin
// presses Reconnect on the connected card, approves at the vendor, is warned instead of
// having the history replaced, and switches keeping the old account's data apart. Needs
// SEATSCOPE_API, SEATSCOPE_ORG, SEATSCOPE_PAGERDUTY, SEATSCOPE_FIRST_ACCOUNT,
// SEATSCOPE_OTHER_ACCOUNT, SEATSCOPE_SCREENSHOTS and CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { env, openPage, ready, signIn } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const ORG = env('SEATSCOPE_ORG');
const PD = env('SEATSCOPE_PAGERDUTY').replace(/\/$/, '');
const FIRST = env('SEATSCOPE_FIRST_ACCOUNT');
const OTHER = env('SEATSCOPE_OTHER_ACCOUNT');
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

const card = () => page.locator('section.card[data-provider="pagerduty"]');

test('Reconnect to another account warns, keeps the history, and the admin keeps the old data apart', { timeout: 180_000 }, async () => {
  await page.goto(`${API}/connections`);
  await signIn(page, { api: API, email: `admin@${ORG}.example`, org: ORG });
  await page.waitForURL((u) => u.origin === API && u.pathname === '/connections', { timeout: 30_000 });
  await ready(page, 'connections');
  assert.equal(await card().getAttribute('data-status'), 'connected');
  assert.match(await card().locator('.vendor-account').textContent(), new RegExp(FIRST));

  // Reconnect on the connected card → the vendor's consent (now the other account).
  await card().getByRole('button', { name: 'Reconnect PagerDuty' }).click();
  await page.waitForURL((u) => u.href.startsWith(`${PD}/oauth/authorize`), { timeout: 30_000 });
  await page.getByRole('button', { name: 'Approve', exact: true }).click();
  await page.waitForURL((u) => u.origin === API && u.pathname === '/connections', { timeout: 30_000 });
  await ready(page, 'connections');

  // Warned, not replaced: a warning banner naming both accounts, the card still on the first.
  const warning = page.locator('[data-banner-id="callback"]');
  assert.equal(await warning.getAttribute('data-kind'), 'warning');
  const said = await warning.textContent();
  assert.ok(said.includes(FIRST) && said.includes(OTHER), said);
  assert.equal(await card().getAttribute('data-status'), 'connected');
  const block = card().locator(`[data-account-change="${OTHER}"]`);
  assert.equal(await block.count(), 1, 'the card shows the waiting account');
  const text = await block.textContent();
  assert.ok(text.includes(FIRST) && text.includes(OTHER), text);
  await card().screenshot({ path: path.join(SHOTS, 'account-change-pending.png') });

  // Switch, keeping the old account's data apart (the dialog's default).
  await block.getByRole('button', { name: `Switch PagerDuty to account ${OTHER}` }).click();
  const dialog = page.getByRole('dialog', { name: `Switch PagerDuty to account ${OTHER}?` });
  assert.equal(await dialog.getByLabel('Keep it apart (archived, out of the figures)').isChecked(), true);
  await dialog.getByRole('button', { name: `Switch to ${OTHER}` }).click();
  await page.waitForFunction(() => document.querySelector('[data-banner-id="callback"]')?.dataset.kind === 'success');
  assert.match(await page.locator('[data-banner-id="callback"]').textContent(), /items are kept apart/);
  await page.waitForFunction(() => !document.querySelector('section.card[data-provider="pagerduty"] [data-account-change]'));
  const archive = card().locator('p.archive');
  assert.equal(await archive.count(), 1);
  assert.match(await archive.textContent(), new RegExp(`account ${FIRST} \\(\\d+ items\\)`));
  assert.equal(await card().getAttribute('data-status'), 'connected');
  await card().screenshot({ path: path.join(SHOTS, 'account-change-switched.png') });

  // The activity page names the choice.
  await page.goto(`${API}/activity`);
  await ready(page, 'activity');
  assert.match(await page.locator('main').textContent(), /Account change/);
  assert.deepEqual(pageErrors, []);
});
