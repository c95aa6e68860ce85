// Page-load benchmark of the dashboard's app page: loads /apps/{provider} N times in
// headless Chromium and prints p50/p99 of "navigation start → data-charts-drawn"
// (the page stamps document.body.dataset.chartsDrawn with performance.now(), whose
// origin is the navigation start, once the summary is rendered and its charts drawn),
// and of "navigation start → data-ready-at" (everything rendered, the seat table
// included: the page renders it when the seat list arrives, after the charts).
// It prints figures; it asserts nothing about time.
//
//   SEATSCOPE_API          the API base serving the page (required)
//   SEATSCOPE_TOKEN        a bearer token for the API; without it the bench signs in
//                          through the dev issuer's form as SEATSCOPE_EMAIL / SEATSCOPE_ORG
//   SEATSCOPE_BENCH_PROVIDER  the app page to load (default pagerduty)
//   SEATSCOPE_BENCH_RANGE  3 | 6 | 12 months (default 3)
//   SEATSCOPE_BENCH_RUNS   measured loads (default 20); one unmeasured warm-up load comes first
//   CHROMIUM               the browser (default /usr/bin/chromium)
//
// Last line: {"page_load_ms": {"p50": …, "p99": …, "runs": …}, "page_ready_ms": {…}}
import { env, launch, ready, signIn, quantile } from './lib.mjs';

const API = env('SEATSCOPE_API').replace(/\/$/, '');
const TOKEN = env('SEATSCOPE_TOKEN', '');
const PROVIDER = env('SEATSCOPE_BENCH_PROVIDER', 'pagerduty');
const RANGE = env('SEATSCOPE_BENCH_RANGE', '3');
const RUNS = Math.max(1, Number.parseInt(env('SEATSCOPE_BENCH_RUNS', '20'), 10) || 20);
const url = `${API}/apps/${encodeURIComponent(PROVIDER)}?range=${encodeURIComponent(RANGE)}`;

/** The payload of a JWT (no verification: only to fill the stored user's profile). */
function claims(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (TOKEN) {
    // Store the user where oidc-client-ts keeps it (sessionStorage,
    // "oidc.user:<authority>:<client_id>") before the page's scripts run.
    const config = await (await fetch(`${API}/api/config`)).json();
    const c = claims(TOKEN);
    const user = {
      access_token: TOKEN,
      token_type: 'Bearer',
      scope: config.oidc.scope,
      profile: { sub: c.sub || 'bench', email: c.email || c.sub || 'bench', iss: config.oidc.issuer, aud: config.oidc.client_id, exp: c.exp, iat: c.iat },
      expires_at: c.exp || Math.floor(Date.now() / 1000) + 3600,
    };
    const key = `oidc.user:${config.oidc.issuer}:${config.oidc.client_id}`;
    await context.addInitScript(([k, v]) => {
      try {
        sessionStorage.setItem(k, v);
      } catch { /* about:blank has no storage */ }
    }, [key, JSON.stringify(user)]);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  if (!TOKEN) {
    const org = env('SEATSCOPE_ORG', 'demo');
    await page.goto(url);
    await signIn(page, { api: API, email: env('SEATSCOPE_EMAIL', `admin@${org}.example`), org });
    await page.waitForURL((u) => u.origin === API && u.pathname.startsWith('/apps/'));
  } else {
    await page.goto(url);
  }
  await ready(page, 'app', 60_000); // warm-up, not measured

  const drawn = [];
  const done = [];
  for (let i = 0; i < RUNS; i += 1) {
    await page.goto(url, { waitUntil: 'commit' });
    await page.waitForFunction(() => document.body?.dataset.ready === 'app', null, { timeout: 60_000 });
    const [d, r] = await page.evaluate(() => [Number(document.body.dataset.chartsDrawn), Number(document.body.dataset.readyAt)]);
    drawn.push(d);
    done.push(r);
  }
  const round = (v) => Math.round(v * 10) / 10;
  const stats = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return { p50: round(quantile(s, 0.5)), p99: round(quantile(s, 0.99)), min: round(s[0]), max: round(s.at(-1)) };
  };
  const a = stats(drawn);
  const b = stats(done);
  console.log(`app page ${url}: ${RUNS} loads (after one warm-up)`);
  console.log(`  navigation start → charts drawn:        p50 ${a.p50} ms, p99 ${a.p99} ms (min ${a.min}, max ${a.max})`);
  console.log(`  navigation start → seat table rendered: p50 ${b.p50} ms, p99 ${b.p99} ms (min ${b.min}, max ${b.max})`);
  console.log(JSON.stringify({ page_load_ms: { p50: a.p50, p99: a.p99, runs: RUNS }, page_ready_ms: { p50: b.p50, p99: b.p99, runs: RUNS } }));
} finally {
  await browser.close();
}
