// A viewer in headless Chromium against the local stack with roles on
// (ROLE_CLAIM=groups, ADMIN_VALUES=seatscope-admins). Run by tests/tests/browser.rs,
// which connects and syncs PagerDuty as an admin first and sets SEATSCOPE_API,
// SEATSCOPE_ORG, SEATSCOPE_SCREENSHOTS and CHROMIUM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { env, launch, ready, signIn } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const ORG = env('SEATSCOPE_ORG');
const SHOTS = env('SEATSCOPE_SCREENSHOTS', path.resolve('../screenshots'));

let browser;
let page;
const consoleErrors = [];

before(async () => {
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
});

after(async () => {
  await browser?.close();
});

const WHY = /You can read everything; changes need the admin role \(claim groups = seatscope-admins\)/;

test('a viewer signed in through the dev issuer sees the connections but no controls that change them, and why', { timeout: 90_000 }, async () => {
  await page.goto(`${API}/connections`);
  await signIn(page, { api: API, email: `viewer@${ORG}.example`, org: ORG, role: 'viewer' });
  await page.waitForURL((u) => u.origin === API && u.pathname === '/connections', { timeout: 30_000 });
  await ready(page, 'connections');
  const pd = page.locator('section.card[data-provider="pagerduty"]');
  assert.equal(await pd.getAttribute('data-status'), 'connected');
  await page.locator('[data-role-note]').first().waitFor();
  assert.match(await page.locator('[data-role-note]').first().textContent(), WHY);
  for (const action of ['connect', 'reconnect', 'sync', 'disconnect', 'invite', 'revoke-invite']) {
    assert.equal(await page.locator(`[data-action="${action}"]`).count(), 0, `no ${action} control`);
  }
  assert.equal(await page.locator('[data-form="api-key"]').count(), 0, 'no API key form');
  assert.equal(await page.getByRole('button', { name: /Connect|Disconnect|Sync|Invite|Revoke/ }).count(), 0);
  // Reads still work: the app page opens.
  await page.getByRole('link', { name: 'View PagerDuty usage' }).click();
  await ready(page, 'app');
  await page.screenshot({ path: path.join(SHOTS, 'viewer-app.png'), fullPage: false });
});

test('a viewer cannot save settings: the fields are disabled, no Save button, the page says why', { timeout: 60_000 }, async () => {
  const form = page.locator('form[data-form="settings"]');
  await form.waitFor();
  assert.equal(await form.getByRole('button', { name: 'Save settings' }).count(), 0);
  assert.match(await form.locator('[data-role-note]').textContent(), WHY);
  const price = form.getByLabel(/Seat price per month/);
  assert.equal(await price.isDisabled(), true);
  // The server refuses the change too, whatever the page shows.
  const status = await page.evaluate(async () => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith('oidc.user:'));
    const token = JSON.parse(sessionStorage.getItem(key)).access_token;
    const r = await fetch('/api/apps/pagerduty/settings', {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inactive_days: 30, grace_days: 0, exempt_seats: [], seat_price: 1 }),
    });
    return [r.status, (await r.json()).error.code];
  });
  assert.deepEqual(status, [403, 'admin_role_required']);
});

test('a viewer is not offered the Activity page and is told it is for admins', { timeout: 60_000 }, async () => {
  assert.equal(await page.locator('li[data-admin-only]').isHidden(), true, 'no Activity link');
  await page.goto(`${API}/activity`);
  await ready(page, 'activity');
  assert.match(await page.locator('[data-role-note]').textContent(), /is for admins \(claim groups = seatscope-admins\)/);
  assert.equal(await page.locator('table[data-table="audit"]').count(), 0);
});

test('an admin sees on the Activity page what they just did, and the viewer\'s refused change', { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
  const admin = await context.newPage();
  admin.setDefaultTimeout(30_000);
  admin.on('pageerror', (e) => consoleErrors.push(`pageerror (admin): ${e.message}`));
  await admin.goto(`${API}/apps/pagerduty`);
  await signIn(admin, { api: API, email: `admin@${ORG}.example`, org: ORG, role: 'admin' });
  await admin.waitForURL((u) => u.origin === API && u.pathname === '/apps/pagerduty', { timeout: 30_000 });
  await ready(admin, 'app');
  // A change through the page: the seat price.
  const form = admin.locator('form[data-form="settings"]');
  await form.getByLabel(/Seat price per month/).fill('17');
  await form.getByRole('button', { name: 'Save settings' }).click();
  await admin.getByText(/settings saved\./).first().waitFor();
  await ready(admin, 'app');
  await admin.getByRole('link', { name: 'Activity' }).click();
  await ready(admin, 'activity');
  const rows = admin.locator('table[data-table="audit"] tbody tr');
  const first = rows.first();
  assert.equal(await first.getAttribute('data-action'), 'settings');
  assert.equal(await first.getAttribute('data-outcome'), 'done');
  const text = await first.textContent();
  assert.match(text, new RegExp(`admin@${ORG}\\.example`));
  assert.match(text, /seat_price: null → 17|seat_price: \d+(\.\d+)? → 17/);
  const refused = admin.locator('table[data-table="audit"] tbody tr[data-outcome="refused"]').first();
  assert.match(await refused.textContent(), new RegExp(`viewer@${ORG}\\.example.*viewer.*Settings.*refused.*admin_role_required`));
  // Filtered to one action.
  await admin.getByLabel('Action').selectOption('settings');
  await admin.getByRole('button', { name: 'Filter' }).click();
  await admin.waitForURL((u) => u.search === '?action=settings');
  await ready(admin, 'activity');
  const actions = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.action));
  assert.ok(actions.length >= 2 && actions.every((a) => a === 'settings'), actions.join(','));
  await admin.screenshot({ path: path.join(SHOTS, 'activity.png'), fullPage: false });
  await context.close();
});

test('no script errors', () => {
  assert.deepEqual(consoleErrors, []);
});
