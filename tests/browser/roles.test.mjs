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

test('no script errors', () => {
  assert.deepEqual(consoleErrors, []);
});
