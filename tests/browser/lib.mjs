// Helpers shared by dashboard.test.mjs and page-load-bench.mjs.
import { chromium } from 'playwright-core';

export const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`set ${name}`);
    return fallback;
  }
  return v;
};

export async function launch() {
  return chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces it may not have.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** A browser and one page (1280×900, en-US, UTC) whose page errors land in `errors`. */
export async function openPage(errors) {
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return { browser, page };
}

/** Waits until the page has rendered `name` (connections | overview | app). */
export async function ready(page, name, timeout = 30_000) {
  await page.waitForFunction((n) => document.body?.dataset.ready === n, name, { timeout });
}

/** Signs in through the dev issuer's form (fields Email and Organization, the Role
 * radios Admin/Viewer, button Sign in). */
export async function signIn(page, { api, email, org, role }) {
  await page.waitForURL((u) => u.href.startsWith(`${api}/dev-issuer/`), { timeout: 30_000 });
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Organization').fill(org);
  if (role) await page.getByRole('radio', { name: role === 'viewer' ? /^Viewer/ : /^Admin/ }).check();
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function post(url, body) {
  const r = await fetch(url, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`POST ${url} answered ${r.status}: ${text}`);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function getJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}`);
  return r.json();
}

export function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
