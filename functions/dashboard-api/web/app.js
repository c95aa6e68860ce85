// Seatscope dashboard: plain modern JS, no framework, no bundler.
// Loaded after /assets/chart.umd.min.js (global `Chart`) and
// /assets/oidc-client-ts.min.js (global `oidc`). Data only ever reaches the DOM
// through textContent / properties / setAttribute, never innerHTML.
'use strict';

(() => {
  const S = {
    config: null,
    mgr: null,
    user: null,
    overview: null, // the last GET /api/overview, for the navigation and provider names
    me: null, // GET /api/me: the caller's org and role (admin or viewer)
    gen: 0, // bumped on every route change; stale async renders check it
    charts: { trend: null, features: null },
  };
  window.seatscopeCharts = { trend: null, features: null };

  const PAGE_SIZE = 100;
  const RANGES = { 3: 90, 6: 182, 12: 365 };

  // ---------- DOM helpers ----------

  const PROPS = new Set(['hidden', 'disabled', 'checked', 'value', 'readOnly', 'selected', 'open', 'type', 'min', 'max', 'step', 'tabIndex']);

  /** h('tag', {class, text, dataset, on, ...attrs}, ...children) */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') {
        for (const [dk, dv] of Object.entries(v)) if (dv !== undefined && dv !== null) el.dataset[dk] = String(dv);
      } else if (k === 'on') {
        for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      } else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function setMain(...children) {
    const main = document.getElementById('main');
    main.replaceChildren();
    append(main, children);
  }

  let idSeq = 0;
  const uid = (p) => `${p}-${++idSeq}`;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const vh = (text) => h('span', { class: 'visually-hidden', text });

  // ---------- formatting ----------

  const nfInt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const nfDec = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const money = (v, cur) =>
    new Intl.NumberFormat(undefined, { style: 'currency', currency: cur || 'USD' }).format(v);
  // One collator for every text sort: localeCompare with options builds one per call,
  // which costs seconds on 10 000 seats.
  const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  function fmt(v, kind, currency) {
    if (!isNum(v)) return '—';
    switch (kind) {
      case 'percent': return `${nfDec.format(v)} %`;
      case 'money': return money(v, currency);
      case 'days': return `${nfInt.format(v)} days`;
      default: return nfInt.format(v);
    }
  }

  function fmtDateTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function ago(iso) {
    const t = new Date(iso).getTime();
    if (Number.isNaN(t)) return '';
    const s = Math.round((Date.now() - t) / 1000);
    if (s < 45) return 'just now';
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min ago`;
    const hrs = Math.round(m / 60);
    if (hrs < 48) return `${hrs} h ago`;
    return `${Math.round(hrs / 24)} days ago`;
  }

  const timeEl = (iso) => (iso ? h('time', { datetime: iso, title: iso, text: fmtDateTime(iso) }) : '—');

  // The server's UTC day (GET /api/config): ranges end where the data's days do, whatever
  // the browser's clock or time zone says.
  const utcToday = () => (S.config && S.config.today) || new Date().toISOString().slice(0, 10);
  function minusDays(ymd, n) {
    const d = new Date(`${ymd}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() - n);
    return d.toISOString().slice(0, 10);
  }

  function plural(n, one, many) {
    return `${nfInt.format(n)} ${n === 1 ? one : many}`;
  }

  /**
   * A number with its meaning: the text (or "—" when null), the raw value in
   * data-value, and a title tooltip with its definition, source and as-of time
   * (or, for null, why there is no number).
   */
  function num(tag, value, o = {}) {
    const known = isNum(value);
    const titleParts = [];
    if (o.label) titleParts.push(o.label);
    if (o.def) titleParts.push(o.def);
    if (!known && o.why) titleParts.push(`No number: ${o.why}`);
    if (known && o.source) titleParts.push(`Source: ${o.source}`);
    if (known && o.asOf) titleParts.push(`As of ${o.asOf}`);
    const el = h(tag, {
      class: [o.class, 'num', known ? '' : 'na'].filter(Boolean).join(' '),
      dataset: { value: known ? value : '', metric: o.metric },
      title: titleParts.join('\n') || undefined,
    });
    el.append(fmt(value, o.kind, o.currency));
    if (!known && o.why) el.append(vh(` (not available: ${o.why})`));
    return el;
  }

  // ---------- banners ----------

  function banner(kind, text, { id } = {}) {
    const host = document.getElementById('banners');
    if (id) host.querySelector(`[data-banner-id="${CSS.escape(id)}"]`)?.remove();
    const close = h('button', { type: 'button', class: 'banner-close', 'aria-label': 'Dismiss this message', text: '×' });
    const el = h(
      'div',
      { class: `banner banner-${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { bannerId: id, kind } },
      h('p', { class: 'banner-text', text }),
      close,
    );
    close.addEventListener('click', () => el.remove());
    host.append(el);
    return el;
  }

  function clearBanners() {
    document.getElementById('banners').replaceChildren();
  }

  // ---------- API ----------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { method = 'GET', body, raw = false } = {}) {
    const headers = { Authorization: `Bearer ${S.user.access_token}`, Accept: raw ? '*/*' : 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    // Same-origin credentials: the connect call's answer sets the OAuth binding cookie.
    const r = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401) {
      signInAgain();
      throw new ApiError(401, 'unauthorized', 'Your session has ended: signing you in again…');
    }
    if (!r.ok) {
      let code = `http_${r.status}`;
      let message = `The server answered ${r.status} ${r.statusText}`.trim();
      try {
        const j = await r.json();
        code = j?.error?.code ?? code;
        message = j?.error?.message ?? j?.message ?? message;
      } catch { /* not JSON */ }
      throw new ApiError(r.status, code, message);
    }
    if (raw) return r;
    const ct = r.headers.get('content-type') || '';
    if (r.status === 204 || !ct.includes('json')) return null;
    return r.json();
  }

  const enc = encodeURIComponent;

  async function loadOverview() {
    const ov = await api('/api/overview');
    S.overview = ov;
    renderNavApps(ov);
    return ov;
  }

  /** A viewer reads everything; the server refuses their changes (403), the page hides them. */
  const isViewer = () => S.me?.role === 'viewer';

  function viewerNote() {
    const claim = S.me?.role_claim || 'role';
    const values = (S.me?.admin_values || []).join(' or ') || 'an admin value';
    return h('p', { class: 'role-note', role: 'note', dataset: { roleNote: '' }, text: `You can read everything; changes need the admin role (claim ${claim} = ${values}) — ask your IdP admin.` });
  }

  async function loadMe() {
    try {
      S.me = await api('/api/me');
    } catch {
      S.me = null; // the server still decides; the page then offers every control
    }
    // The activity log is for admins: a viewer is not offered it.
    const activity = document.querySelector('li[data-admin-only]');
    if (activity) activity.hidden = isViewer();
  }

  const appName = (provider) => S.overview?.apps?.find((a) => a.provider === provider)?.name || provider;

  // ---------- sign-in ----------

  function safeReturn(to) {
    if (typeof to !== 'string' || !to.startsWith('/') || to.startsWith('//') || to.startsWith('/\\')) return '/';
    if (to.startsWith('/signin/callback')) return '/';
    return to;
  }

  async function signIn() {
    sessionStorage.removeItem('seatscope.signedOut');
    const returnTo = safeReturn(location.pathname + location.search);
    setMain(h('p', { class: 'loading', role: 'status', text: 'Signing you in…' }));
    await S.mgr.signinRedirect({ state: { returnTo } });
  }

  let reauthing = false;
  function signInAgain() {
    if (reauthing) return;
    reauthing = true;
    S.mgr.removeUser().finally(() => signIn().catch(showFatal));
  }

  async function signOut() {
    sessionStorage.setItem('seatscope.signedOut', '1');
    try {
      await S.mgr.signoutRedirect();
    } catch {
      // The issuer has no end-session endpoint: forget the user here.
      await S.mgr.removeUser();
      S.user = null;
      renderSignedOut();
    }
  }

  function renderSignedOut() {
    if (location.search) history.replaceState(null, '', location.pathname); // the issuer's ?state=
    document.getElementById('account').hidden = true;
    clearBanners();
    const btn = h('button', { type: 'button', class: 'primary', text: 'Sign in' });
    btn.addEventListener('click', () => signIn().catch(showFatal));
    setMain(h('h1', { tabindex: '-1', text: 'You are signed out' }), h('p', {}, btn));
    markReady('signed-out');
  }

  function showAccount() {
    const p = S.user?.profile || {};
    document.getElementById('account-email').textContent = p.email || p.preferred_username || p.name || p.sub || 'signed in';
    document.getElementById('account').hidden = false;
  }

  function showFatal(e) {
    console.error(e);
    setMain(
      h('h1', { text: 'Something went wrong' }),
      h('p', { role: 'alert', text: e?.message || String(e) }),
    );
  }

  // ---------- routing ----------

  function go(path) {
    if (path === location.pathname + location.search) return;
    history.pushState(null, '', path);
    route({ focus: true });
  }

  /** The People view lives on the overview's path (`/?view=people`): no page route of its own. */
  const isPeople = () => (location.pathname === '/' || location.pathname === '') && new URLSearchParams(location.search).get('view') === 'people';
  const navKey = () => (isPeople() ? '/?view=people' : location.pathname);

  function markNav(path) {
    for (const a of document.querySelectorAll('nav a[data-route]')) {
      const href = a.getAttribute('href');
      if (href === path) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function renderNavApps(ov) {
    const list = document.getElementById('nav-list');
    list.querySelectorAll('li[data-app]').forEach((li) => li.remove());
    for (const a of ov.apps || []) {
      list.append(h('li', { dataset: { app: a.provider } }, h('a', { href: `/apps/${enc(a.provider)}`, 'data-route': true, text: a.name })));
    }
    markNav(navKey());
  }

  function destroyCharts() {
    for (const k of ['trend', 'features']) {
      S.charts[k]?.destroy();
      S.charts[k] = null;
    }
    window.seatscopeCharts = { trend: null, features: null };
  }

  async function route({ focus = false } = {}) {
    const gen = ++S.gen;
    delete document.body.dataset.ready;
    delete document.body.dataset.readyAt;
    delete document.body.dataset.chartsDrawn;
    destroyCharts();
    const path = location.pathname;
    markNav(navKey());
    try {
      if (isPeople()) await pagePeople(gen);
      else if (path === '/' || path === '') await pageOverview(gen);
      else if (path === '/connections' || path === '/connections/') await pageConnections(gen);
      else if (path === '/activity' || path === '/activity/') await pageActivity(gen);
      else {
        const m = path.match(/^\/apps\/([^/]+)\/?$/);
        if (m) await pageApp(gen, decodeURIComponent(m[1]));
        else pageNotFound();
      }
    } catch (e) {
      if (gen !== S.gen) return;
      if (e instanceof ApiError && e.status === 401) return;
      console.error(e);
      setMain(h('h1', { tabindex: '-1', text: 'Could not load this page' }), h('p', { role: 'alert', class: 'error-text', text: e.message || String(e) }));
      markReady('error');
    }
    if (focus && gen === S.gen) document.querySelector('main h1')?.focus({ preventScroll: false });
  }

  function pageNotFound() {
    document.title = 'Not found — Seatscope';
    setMain(h('h1', { tabindex: '-1', text: 'Page not found' }), h('p', {}, 'Go to ', h('a', { href: '/', 'data-route': true, text: 'the overview' }), '.'));
    markReady('not-found');
  }

  /** The page has rendered its data: data-ready=<page>, data-ready-at=performance.now(). */
  function markReady(name) {
    document.body.dataset.readyAt = String(performance.now());
    document.body.dataset.ready = name;
  }

  const loading = (what) => h('p', { class: 'loading', role: 'status', text: `Loading ${what}…` });

  // ---------- connections page ----------

  function statusOf(app) {
    const c = app.connection || { status: 'not_connected' };
    switch (c.status) {
      case 'connected':
        return c.syncing ? { key: 'syncing', label: 'Syncing' } : { key: 'connected', label: 'Connected' };
      case 'needs_reconnect':
        return { key: 'needs_reconnect', label: 'Needs reconnect' };
      case 'error':
        return { key: 'error', label: `Error: ${c.status_reason || 'the vendor gave no reason'}` };
      case 'disconnected':
        return { key: 'disconnected', label: 'Disconnected' };
      default:
        return { key: 'not_connected', label: 'Not connected' };
    }
  }

  const chip = (st) => h('span', { class: `chip chip-${st.key}`, dataset: { status: st.key }, text: st.label });

  /** Reads ?provider&result&reason&message once, then removes them from the address. */
  function takeCallbackResult() {
    const q = new URLSearchParams(location.search);
    if (!q.has('result')) return null;
    const out = {
      provider: q.get('provider') || '',
      result: q.get('result') || '',
      reason: q.get('reason') || '',
      message: q.get('message') || '',
    };
    history.replaceState(null, '', location.pathname);
    return out;
  }

  function showCallbackBanner(r) {
    const name = appName(r.provider) || 'The app';
    if (r.result === 'connected') {
      banner('success', `${name} is connected. Its first sync runs shortly.`, { id: 'callback' });
    } else if (r.reason === 'vendor_account_changed') {
      banner('warning', r.message || `${name}: this sign-in is to another account; choose on its card.`, { id: 'callback' });
    } else {
      const why = [r.message, r.reason && `(${r.reason})`].filter(Boolean).join(' ');
      banner('error', `${name} was not connected${why ? `: ${why}` : '.'}`, { id: 'callback' });
    }
  }

  async function pageConnections(gen) {
    document.title = 'Connections — Seatscope';
    const cb = takeCallbackResult();
    const h1 = h('h1', { tabindex: '-1', text: 'Connections' });
    setMain(h1, loading('your apps'));
    const ov = await loadOverview();
    if (gen !== S.gen) return;
    if (cb) showCallbackBanner(cb);
    const cards = h('div', { class: 'cards' }, (ov.apps || []).map((a) => connectionCard(a, gen)));
    setMain(
      h1,
      h('p', { class: 'lede', text: 'Connect each app once; Seatscope then syncs its seats and activity every hour. Anyone can send an invite link to the app’s admin instead.' }),
      isViewer() ? viewerNote() : null,
      cards,
    );
    markReady('connections');
  }

  function lastSyncLine(c) {
    if (!c.last_sync_at) {
      return h('p', { class: 'last-sync', dataset: { lastSyncAt: '' } }, c.status === 'connected' ? 'Not synced yet: the first sync runs within the hour, or press Sync now.' : 'Never synced.');
    }
    const ls = c.last_sync || null;
    const parts = [];
    if (ls) {
      if (isNum(ls.seats)) parts.push(plural(ls.seats, 'seat', 'seats'));
      if (isNum(ls.activity_events)) parts.push(plural(ls.activity_events, 'event', 'events'));
      if (isNum(ls.days_written)) parts.push(plural(ls.days_written, 'day', 'days'));
    }
    return h(
      'p',
      { class: 'last-sync', dataset: { lastSyncAt: c.last_sync_at } },
      'Last sync: ',
      timeEl(c.last_sync_at),
      ` (${ago(c.last_sync_at)})`,
      parts.length ? h('span', { class: 'sync-brought', text: ` — brought ${parts.join(', ')}` }) : null,
    );
  }

  function connectionCard(app, gen) {
    const c = app.connection || { status: 'not_connected' };
    const st = statusOf(app);
    const titleId = uid('card-title');
    const modes = app.auth_modes || [];
    const msg = h('p', { class: 'card-msg', role: 'status', 'aria-live': 'polite' });
    const card = h('section', { class: 'card', 'aria-labelledby': titleId, dataset: { provider: app.provider, status: st.key } });
    const setMsg = (text, kind = 'info') => {
      msg.textContent = text;
      msg.dataset.kind = kind;
    };

    const head = h('div', { class: 'card-head' }, h('h2', { id: titleId, text: app.name }), chip(st));
    card.append(head);
    if ((c.status === 'needs_reconnect' || c.status === 'error') && c.status_reason) {
      card.append(h('p', { class: 'status-reason', text: `Reason: ${c.status_reason}` }));
    } else if (c.status === 'needs_reconnect') {
      card.append(h('p', { class: 'status-reason', text: 'Access expired or was revoked: reconnect to resume syncing.' }));
    }
    if (c.pending_account_change) card.append(accountChangeBlock(app, c, setMsg));
    if (c.vendor_account) card.append(h('p', { class: 'vendor-account' }, 'Account: ', h('strong', { text: c.vendor_account }), c.vendor_account_id && c.vendor_account_id !== c.vendor_account ? ` (${c.vendor_account_id})` : ''));
    if (c.connected_at && c.status !== 'not_connected') {
      card.append(h(
        'p',
        { class: 'connected-at', dataset: { connectedBy: c.connected_by || '' } },
        'Connected ',
        timeEl(c.connected_at),
        c.connected_by ? ` by ${c.connected_by}` : '',
        c.invited_by ? ` (through an invite link from ${c.invited_by})` : '',
      ));
    }
    if (c.status !== 'not_connected') {
      // What the grant allows and what Seatscope reads with it, in words.
      const facts = h('dl', { class: 'grant', dataset: { grant: '' } });
      if (c.scopes?.length) facts.append(h('dt', { text: 'Scopes granted' }), h('dd', { dataset: { scopes: c.scopes.join(' ') }, text: c.scopes.join(', ') }));
      const reads = Object.values(app.sources || {});
      if (reads.length) facts.append(h('dt', { text: 'Reads' }), h('dd', { dataset: { reads: '' }, text: reads.join(' · ') }));
      if (facts.childElementCount) card.append(facts);
    }
    card.append(lastSyncLine(c));
    for (const a of c.archives || []) {
      card.append(h(
        'p',
        { class: 'archive', dataset: { archive: a.id } },
        `Kept apart: the data of account ${a.vendor_account_id || a.vendor_account || 'unknown'} (${plural(a.items, 'item', 'items')}), archived `,
        timeEl(a.archived_at),
        ` by ${a.archived_by}. It is not in this app's figures; a disconnect with "Delete the history" deletes it.`,
      ));
    }
    if (app.activity_note) card.append(h('p', { class: 'note', text: app.activity_note }));

    const actions = h('div', { class: 'actions' });
    const admin = !isViewer();
    // A connected card always offers Reconnect (a new grant: other scopes, another
    // admin, a token revoked at the vendor); it is the main action only when needed.
    const canReconnect = ['connected', 'needs_reconnect', 'error', 'disconnected'].includes(c.status);
    if (admin && modes.includes('oauth2') && (c.status === 'not_connected' || canReconnect)) {
      const label = canReconnect ? 'Reconnect' : 'Connect';
      const b = h('button', { type: 'button', class: c.status === 'connected' ? '' : 'primary', dataset: { action: canReconnect ? 'reconnect' : 'connect' }, text: label, 'aria-label': `${label} ${app.name}` });
      b.addEventListener('click', async () => {
        b.disabled = true;
        setMsg(`Opening ${app.name}…`);
        try {
          const r = await api(`/api/connections/${enc(app.provider)}/connect`, { method: 'POST', body: { return_to: '/connections' } });
          location.assign(r.authorize_url);
        } catch (e) {
          b.disabled = false;
          setMsg(e.message, 'error');
        }
      });
      actions.append(b);
    }
    if (admin && (c.status === 'connected' || c.status === 'error')) {
      const b = h('button', { type: 'button', dataset: { action: 'sync' }, text: 'Sync now', 'aria-label': `Sync ${app.name} now` });
      b.addEventListener('click', () => syncNow(app, card, b, setMsg, gen));
      actions.append(b);
    }
    if (admin && c.status !== 'not_connected' && c.status !== 'disconnected') {
      const b = h('button', { type: 'button', class: 'danger', dataset: { action: 'disconnect' }, text: 'Disconnect', 'aria-label': `Disconnect ${app.name}` });
      b.addEventListener('click', () => disconnectDialog(app, b));
      actions.append(b);
    }
    if (c.status !== 'connected') {
      if (admin) {
        const b = h('button', { type: 'button', dataset: { action: 'invite' }, text: 'Invite the app’s admin', 'aria-label': `Invite the ${app.name} admin` });
        b.addEventListener('click', () => createInvite(app, card, b, setMsg));
        actions.append(b);
      }
      pendingInvites(app, card, setMsg);
    }
    if (c.status === 'connected' || c.status === 'syncing') {
      actions.append(h('a', { href: `/apps/${enc(app.provider)}`, 'data-route': true, class: 'button-link', text: `View ${app.name} usage` }));
    }
    card.append(actions);
    if (c.status !== 'not_connected') card.append(historyPanel(app));

    if (admin && modes.includes('api_key')) {
      const form = apiKeyForm(app, setMsg);
      if (c.status === 'connected') {
        card.append(h('details', { class: 'replace-key' }, h('summary', { text: modes.includes('oauth2') ? 'Use an API key instead' : 'Replace the API key' }), form));
      } else {
        card.append(form);
      }
    }
    card.append(msg);
    return card;
  }

  /** The connection's past syncs, newest first; loaded when first opened. */
  function historyPanel(app) {
    const tbody = h('tbody');
    const status = h('p', { class: 'muted', role: 'status' });
    const more = h('button', { type: 'button', text: 'Older runs', hidden: true, 'aria-label': `Older ${app.name} runs` });
    const table = h('table', { class: 'data runs-table', dataset: { table: 'runs' } }, h('caption', { text: `${app.name} syncs, newest first (a run's continuations after a time limit are summed into it)` }), h('thead', {}, h('tr', {}, ['Started', 'Duration', 'Outcome', 'Seats', 'Events', 'Requests', 'Retries', '429s', 'Parts', 'Error'].map((t) => h('th', { scope: 'col', text: t })))), tbody);
    const panel = h('details', { class: 'history', dataset: { history: app.provider } }, h('summary', { text: 'Sync history' }), h('div', { class: 'table-wrap' }, table), status, more);
    let cursor = null;
    let loaded = false;
    const load = async () => {
      const q = new URLSearchParams({ limit: '10' });
      if (cursor) q.set('cursor', cursor);
      const page = await api(`/api/connections/${enc(app.provider)}/runs?${q}`);
      for (const r of page.runs) {
        tbody.append(h(
          'tr',
          { dataset: { outcome: r.outcome } },
          h('td', {}, timeEl(r.started_at)),
          h('td', { text: r.duration_seconds === null ? '—' : `${nfInt.format(Math.round(r.duration_seconds))} s` }),
          h('td', { text: r.outcome }),
          h('td', { text: nfInt.format(r.seats) }),
          h('td', { text: nfInt.format(r.activity_events) }),
          h('td', { text: nfInt.format(r.requests) }),
          h('td', { text: nfInt.format(r.retries) }),
          h('td', { text: nfInt.format(r.rate_limited) }),
          h('td', { text: r.parts === null ? '—' : String(r.parts) }),
          h('td', { text: r.error || '' }),
        ));
      }
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = tbody.childElementCount ? '' : 'No sync has run yet.';
    };
    panel.addEventListener('toggle', () => {
      if (!panel.open || loaded) return;
      loaded = true;
      status.textContent = 'Loading…';
      load().catch((e) => { status.textContent = `Could not load the history: ${e.message}`; });
    });
    more.addEventListener('click', () => {
      more.disabled = true;
      load().catch((e) => { status.textContent = `Could not load more: ${e.message}`; }).finally(() => { more.disabled = false; });
    });
    return panel;
  }

  function apiKeyForm(app, setMsg) {
    const inputId = uid('api-key');
    const errId = uid('api-key-err');
    const input = h('input', { id: inputId, type: 'password', name: 'api_key', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': errId });
    const err = h('p', { id: errId, class: 'field-error', role: 'alert', dataset: { for: 'api_key' } });
    const submit = h('button', { type: 'submit', text: 'Connect with key', 'aria-label': `Connect ${app.name} with key` });
    const form = h(
      'form',
      { class: 'api-key-form', dataset: { form: 'api-key' }, novalidate: true },
      h('label', { for: inputId, text: `${app.name} API key` }),
      h('div', { class: 'inline' }, input, submit),
      err,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      input.removeAttribute('aria-invalid');
      const key = input.value.trim();
      if (!key) {
        err.textContent = 'Paste the API key first.';
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      submit.disabled = true;
      setMsg(`Checking the key with ${app.name}…`);
      try {
        const r = await api(`/api/connections/${enc(app.provider)}/api-key`, { method: 'POST', body: { api_key: key } });
        input.value = '';
        setMsg('');
        if (r?.status === 'account_change_pending') {
          banner('warning', r.message, { id: 'callback' });
        } else {
          banner('success', `${app.name} is connected${r?.vendor_account ? ` (account ${r.vendor_account})` : ''}. Its first sync runs shortly.`, { id: 'callback' });
        }
        await refreshCard(app.provider);
      } catch (e) {
        submit.disabled = false;
        setMsg('');
        if (e.status !== 401) {
          err.textContent = e.message;
          err.dataset.status = String(e.status);
          input.setAttribute('aria-invalid', 'true');
        }
      }
    });
    return form;
  }

  /** Rebuilds one card from a fresh overview, keeping focus on the same action if it had it. */
  async function refreshCard(provider, ov) {
    const gen = S.gen;
    ov = ov || (await loadOverview());
    if (gen !== S.gen) return null;
    const app = (ov.apps || []).find((a) => a.provider === provider);
    const old = document.querySelector(`section.card[data-provider="${CSS.escape(provider)}"]`);
    if (!app || !old) return null;
    const focusedAction = old.contains(document.activeElement) ? document.activeElement.dataset?.action : null;
    const fresh = connectionCard(app, gen);
    old.replaceWith(fresh);
    if (focusedAction) fresh.querySelector(`[data-action="${focusedAction}"]`)?.focus();
    return fresh;
  }

  function syncSignature(a) {
    const c = a?.connection || {};
    return { last: c.last_sync_at || null, status: c.status, reason: c.status_reason || null, syncing: !!c.syncing };
  }

  async function syncNow(app, card, btn, setMsg, gen) {
    btn.disabled = true;
    setMsg('Requesting a sync…');
    try {
      await api(`/api/connections/${enc(app.provider)}/sync`, { method: 'POST' });
    } catch (e) {
      btn.disabled = false;
      setMsg(e.message, 'error');
      return;
    }
    setMsg('Sync requested');
    card.dataset.syncRequested = 'true';
    const before = syncSignature(app);
    let sawSyncing = before.syncing;
    const t0 = Date.now();
    while (Date.now() - t0 < 120_000) {
      await sleep(2000);
      if (gen !== S.gen || !card.isConnected) return;
      let ov;
      try {
        ov = await api('/api/overview');
      } catch {
        continue;
      }
      if (gen !== S.gen || !card.isConnected) return;
      S.overview = ov;
      const now = syncSignature((ov.apps || []).find((a) => a.provider === app.provider));
      if (now.syncing && !sawSyncing) {
        sawSyncing = true;
        const c = card.querySelector('.chip');
        if (c) {
          c.textContent = 'Syncing';
          c.className = 'chip chip-syncing';
          c.dataset.status = 'syncing';
          card.dataset.status = 'syncing';
        }
        setMsg('Syncing…');
      }
      const done = now.last !== before.last || now.status !== before.status || now.reason !== before.reason || (sawSyncing && !now.syncing);
      if (done) {
        const fresh = await refreshCard(app.provider, ov);
        const st = (fresh || card).querySelector('.card-msg');
        if (st) {
          st.textContent = now.status === 'connected' ? 'Sync finished' : `Sync finished: ${statusOf((ov.apps || []).find((a) => a.provider === app.provider)).label}`;
        }
        return;
      }
    }
    btn.disabled = false;
    setMsg('No sync has finished after 2 minutes; it runs with the next scheduled tick.');
  }

  async function createInvite(app, card, btn, setMsg) {
    btn.disabled = true;
    setMsg('Creating an invite link…');
    let r;
    try {
      r = await api(`/api/connections/${enc(app.provider)}/invites`, { method: 'POST' });
    } catch (e) {
      btn.disabled = false;
      setMsg(e.message, 'error');
      return;
    }
    setMsg('');
    btn.disabled = false;
    card.querySelector('.invite')?.remove();
    const inputId = uid('invite');
    const input = h('input', { id: inputId, type: 'text', readOnly: true, value: r.url, class: 'invite-url', dataset: { invite: 'url' } });
    const status = h('span', { class: 'copy-status', role: 'status', 'aria-live': 'polite' });
    const copy = h('button', { type: 'button', text: 'Copy', 'aria-label': 'Copy the invite link' });
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(input.value);
        status.textContent = 'Copied';
      } catch {
        input.select();
        status.textContent = 'Could not copy: the link is selected, press Ctrl+C';
      }
    });
    input.addEventListener('focus', () => input.select());
    const panel = h(
      'div',
      { class: 'invite' },
      h('label', { for: inputId, text: `Invite link for the ${app.name} admin` }),
      h('div', { class: 'inline' }, input, copy, status),
      h('p', { class: 'hint' }, 'Single use. ', r.expires_at ? ['Expires ', timeEl(r.expires_at), '.'] : null, ' The admin opens it, approves access at ', app.name, ', and this card turns Connected.'),
    );
    card.querySelector('.actions').after(panel);
    input.focus();
    pendingInvites(app, card, setMsg);
  }

  /** The card's pending invite links (never their tokens), each with a Revoke button. */
  async function pendingInvites(app, card, setMsg) {
    let r;
    try {
      r = await api(`/api/connections/${enc(app.provider)}/invites`);
    } catch {
      return; // the list is a convenience; the card works without it
    }
    card.querySelector('.pending-invites')?.remove();
    const invites = (r && r.invites) || [];
    if (!invites.length) return;
    const titleId = uid('pending');
    const list = h('ul', {}, invites.map((inv) => {
      if (isViewer()) return h('li', { dataset: { invite: inv.id } }, 'Created ', timeEl(inv.created_at), ` by ${inv.invited_by}; expires `, timeEl(inv.expires_at));
      const revoke = h('button', { type: 'button', class: 'danger', dataset: { action: 'revoke-invite', invite: inv.id }, text: 'Revoke', 'aria-label': `Revoke the invite link created ${inv.created_at} by ${inv.invited_by}` });
      revoke.addEventListener('click', async () => {
        revoke.disabled = true;
        try {
          await api(`/api/connections/${enc(app.provider)}/invites/${enc(inv.id)}`, { method: 'DELETE' });
        } catch (e) {
          revoke.disabled = false;
          setMsg(e.message, 'error');
          return;
        }
        setMsg('Invite link revoked: it no longer works.');
        pendingInvites(app, card, setMsg);
      });
      return h('li', { dataset: { invite: inv.id } }, 'Created ', timeEl(inv.created_at), ` by ${inv.invited_by}; expires `, timeEl(inv.expires_at), ' ', revoke);
    }));
    const section = h('div', { class: 'pending-invites', 'aria-labelledby': titleId }, h('p', { id: titleId, text: `Pending invite links (${invites.length})` }), list);
    const after = card.querySelector('.invite') || card.querySelector('.actions');
    after.after(section);
  }

  /**
   * A connect that landed on another vendor account than the connection's: nothing was
   * replaced; an admin switches (keeping the old account's data apart, or deleting it)
   * or keeps the current account.
   */
  function accountChangeBlock(app, c, setMsg) {
    const p = c.pending_account_change;
    const from = p.current_account_id || c.vendor_account || 'the current account';
    const to = p.vendor_account_id;
    const block = h(
      'div',
      { class: 'account-change note', role: 'status', dataset: { accountChange: to } },
      h('p', {},
        h('strong', { text: `Another ${app.name} account is waiting. ` }),
        `A connect by ${p.connected_by} on `,
        timeEl(p.requested_at),
        ` signed in to account ${to}${p.vendor_account && p.vendor_account !== to ? ` (${p.vendor_account})` : ''}, but this connection holds the history of account ${from}. Nothing was replaced: ${from} goes on syncing until an admin chooses.`),
    );
    if (isViewer()) return block;
    const actions = h('div', { class: 'actions' });
    const sw = h('button', { type: 'button', class: 'primary', dataset: { action: 'switch-account' }, text: `Switch to ${to}…`, 'aria-label': `Switch ${app.name} to account ${to}` });
    sw.addEventListener('click', () => switchAccountDialog(app, from, to, sw));
    const keep = h('button', { type: 'button', dataset: { action: 'keep-account' }, text: `Keep ${from}`, 'aria-label': `Keep ${app.name} account ${from}` });
    keep.addEventListener('click', async () => {
      keep.disabled = true;
      try {
        await api(`/api/connections/${enc(app.provider)}/account-change`, { method: 'DELETE' });
        banner('success', `${app.name} stays on account ${from}; the sign-in to ${to} was dropped.`, { id: 'callback' });
        await refreshCard(app.provider);
      } catch (e) {
        keep.disabled = false;
        setMsg(e.message, 'error');
      }
    });
    actions.append(sw, keep);
    block.append(actions);
    return block;
  }

  /**
   * A modal dialog with one choice among radio options, a Confirm and a Cancel; `onConfirm`
   * gets the chosen value and closes the dialog by resolving (an error's message is shown).
   */
  function choiceDialog({ opener, title, intro, legend, name, options, confirmText, confirmClass, onConfirm }) {
    const titleId = uid('dlg-title');
    const err = h('p', { class: 'field-error', role: 'alert' });
    const confirm = h('button', { type: 'submit', class: confirmClass, value: 'confirm', text: confirmText });
    const cancel = h('button', { type: 'button', value: 'cancel', text: 'Cancel' });
    const radios = options.map((o, i) => {
      const id = uid(name);
      return h('div', { class: 'radio' }, h('input', { type: 'radio', name, id, value: o.value, checked: i === 0 }), h('label', { for: id, text: o.label }));
    });
    const form = h(
      'form',
      { method: 'dialog' },
      h('h2', { id: titleId, text: title }),
      h('p', { text: intro }),
      h('fieldset', {}, h('legend', { text: legend }), ...radios),
      err,
      h('div', { class: 'actions' }, confirm, cancel),
    );
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, form);
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener.isConnected) opener.focus();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = form.querySelector(`input[name="${name}"]:checked`)?.value ?? options[0].value;
      confirm.disabled = true;
      try {
        await onConfirm(value, () => dlg.close());
      } catch (e) {
        confirm.disabled = false;
        err.textContent = e.message;
      }
    });
    document.body.append(dlg);
    dlg.showModal();
  }

  function switchAccountDialog(app, from, to, opener) {
    choiceDialog({
      opener,
      title: `Switch ${app.name} to account ${to}?`,
      intro: `The history of ${to} starts with its first sync (due at once). The app's settings (prices, threshold, renewal) stay.`,
      legend: `The history of ${from}`,
      name: 'old_data',
      options: [
        { value: 'keep_apart', label: 'Keep it apart (archived, out of the figures)' },
        { value: 'purge', label: 'Delete it' },
      ],
      confirmText: `Switch to ${to}`,
      confirmClass: 'primary',
      onConfirm: async (oldData, close) => {
        const r = await api(`/api/connections/${enc(app.provider)}/account-change`, { method: 'POST', body: { old_data: oldData } });
        close();
        const what = r.old_data === 'purge' ? `its ${nfInt.format(r.items)} items were deleted` : `its ${nfInt.format(r.items)} items are kept apart`;
        banner('success', `${app.name} now syncs account ${r.vendor_account_id}; ${from}'s history: ${what}.`, { id: 'callback' });
        await refreshCard(app.provider);
      },
    });
  }

  function disconnectDialog(app, opener) {
    choiceDialog({
      opener,
      title: `Disconnect ${app.name}?`,
      intro: 'Seatscope stops syncing and forgets the credentials.',
      legend: 'The synced history',
      name: 'purge',
      options: [
        { value: 'false', label: 'Keep the history (seats, activity, trends)' },
        { value: 'true', label: 'Delete the history' },
      ],
      confirmText: 'Confirm',
      confirmClass: 'danger',
      onConfirm: async (value, close) => {
        const purge = value === 'true';
        const r = await api(`/api/connections/${enc(app.provider)}?purge=${purge}`, { method: 'DELETE' });
        close();
        banner('success', `${app.name} is disconnected${purge ? `; its history was deleted (${nfInt.format(r?.purged_items ?? 0)} items)` : '; its history is kept'}.`, { id: 'callback' });
        await refreshCard(app.provider);
      },
    });
  }

  // ---------- definitions ----------

  const DEF_LABELS = {
    seats: 'Seats',
    dau: 'DAU (daily active users)',
    wau: 'WAU (weekly active users)',
    mau: 'MAU (monthly active users)',
    active_30d: 'Active (30 d)',
    utilization_percent: 'Utilization',
    inactive: 'Inactive seat',
    monthly_cost: 'Monthly cost',
    cost_per_active_user: 'Cost per active user',
    potential_savings: 'Potential savings',
    plan_utilization_percent: 'Plan credits utilization',
    active_days_30: 'Active days (30 d)',
    in_grace: 'In grace',
    headline_day: 'Headline day',
    partial: 'So far (partial day)',
    no_data: 'No data (a gap)',
  };

  function definitionsBlock(defs, sources, asOfLines) {
    const dl = h('dl', { class: 'defs' });
    for (const [k, v] of Object.entries(defs || {})) {
      dl.append(h('dt', { text: DEF_LABELS[k] || k }), h('dd', { text: v }));
    }
    const src = h('ul', { class: 'sources' });
    for (const [k, v] of Object.entries(sources || {})) {
      src.append(h('li', {}, h('strong', { text: `${k}: ` }), v));
    }
    return h(
      'details',
      { class: 'definitions' },
      h('summary', { text: 'How these numbers are defined' }),
      dl,
      Object.keys(sources || {}).length ? [h('h3', { text: 'Where they come from' }), src] : null,
      asOfLines?.length ? [h('h3', { text: 'As of' }), h('ul', {}, asOfLines.map((l) => h('li', {}, l)))] : null,
    );
  }

  // ---------- overview page ----------

  /** Numbers of the headline day (the last complete UTC day); the rest are as of the last sync. */
  const HEADLINE_METRICS = ['dau', 'active_30d', 'utilization_percent', 'cost_per_active_user'];

  function whyNull(app, metric) {
    const c = app.connection || {};
    if (c.status === 'not_connected') return 'the app is not connected';
    if (!app.as_of_date && ['seats', 'active_30d', 'utilization_percent', 'inactive_seats'].includes(metric)) return 'no sync has finished yet';
    if (app.per_seat_activity === false && ['active_30d', 'dau', 'utilization_percent', 'inactive_seats', 'cost_per_active_user', 'potential_savings'].includes(metric)) {
      return app.activity_note || `${app.name} reports no per-seat activity`;
    }
    if (['seat_price', 'monthly_cost', 'cost_per_active_user', 'potential_savings'].includes(metric) && !isNum(app.seat_price)) {
      return 'set a seat price on the app page';
    }
    if (app.as_of_date && !app.headline_day && HEADLINE_METRICS.includes(metric)) {
      return 'no complete day synced yet (today is not over)';
    }
    if (metric === 'cost_per_active_user') return 'no active users in the last 30 days';
    if (!app.as_of_date) return 'no sync has finished yet';
    return 'the vendor did not report it';
  }

  async function pageOverview(gen) {
    document.title = 'Overview — Seatscope';
    const h1 = h('h1', { tabindex: '-1', text: 'Overview' });
    setMain(h1, loading('the overview'));
    const ov = await loadOverview();
    if (gen !== S.gen) return;
    const defs = ov.definitions || {};
    const cur = ov.currency || 'USD';
    const cols = [
      { key: 'seats', label: 'Seats', def: defs.seats, kind: 'int', src: 'seats' },
      { key: 'active_30d', label: 'Active (30 d)', def: defs.active_30d || defs.mau, kind: 'int', src: 'activity' },
      { key: 'utilization_percent', label: 'Utilization', def: defs.utilization_percent, kind: 'percent', src: 'activity' },
      { key: 'inactive_seats', label: 'Inactive seats', def: defs.inactive, kind: 'int', src: 'activity' },
      { key: 'seat_price', label: 'Seat price / month', def: 'The price of one seat per month, as entered on the app page.', kind: 'money' },
      { key: 'monthly_cost', label: 'Monthly cost', def: defs.monthly_cost, kind: 'money' },
      { key: 'cost_per_active_user', label: 'Cost per active user', def: defs.cost_per_active_user, kind: 'money' },
      { key: 'potential_savings', label: 'Potential savings / month', def: defs.potential_savings, kind: 'money' },
    ];
    const thead = h(
      'thead',
      {},
      h('tr', {}, h('th', { scope: 'col', text: 'App' }), h('th', { scope: 'col', text: 'Status' }), cols.map((c) => h('th', { scope: 'col', class: 'num', title: c.def, text: c.label })), h('th', { scope: 'col', text: 'As of' })),
    );
    const tbody = h('tbody');
    for (const a of ov.apps || []) {
      const st = statusOf(a);
      const tr = h('tr', { dataset: { provider: a.provider } });
      tr.append(h('th', { scope: 'row' }, h('a', { href: `/apps/${enc(a.provider)}`, 'data-route': true, text: a.name })));
      tr.append(h('td', {}, chip(st)));
      for (const c of cols) {
        let value = c.key === 'active_30d' ? a.active_30d ?? a.mau : a[c.key];
        if (c.key === 'utilization_percent' && a.pricing === 'usage') {
          value = a.plan_utilization_percent;
          const td = num('td', value, { metric: 'plan_utilization_percent', label: 'Plan credits used ÷ included', def: defs.plan_utilization_percent, kind: 'percent', asOf: a.as_of_date, why: whyNull(a, 'plan') });
          if (isNum(value)) td.append(h('span', { class: 'sub', text: ' of plan credits' }));
          tr.append(td);
          continue;
        }
        tr.append(num('td', value, { metric: c.key, label: c.label, def: c.def, kind: c.kind, currency: cur, source: c.src ? a.sources?.[c.src] : undefined, asOf: HEADLINE_METRICS.includes(c.key) ? a.headline_day : a.as_of_date, why: whyNull(a, c.key) }));
      }
      // The headline day: the last complete UTC day (never today's unfinished one).
      tr.append(h('td', { class: 'as-of', dataset: { headlineDay: a.headline_day || '' } }, a.headline_day || '—'));
      tbody.append(tr);
    }
    const t = ov.totals || {};
    const tfoot = h(
      'tfoot',
      {},
      h(
        'tr',
        { dataset: { row: 'totals' } },
        h('th', { scope: 'row', text: 'Total' }),
        h('td', { text: 'connected apps' }),
        cols.map((c) => {
          if (!(c.key in t)) return h('td', { class: 'num' });
          const priced = (ov.apps || []).some((a) => isNum(a.seat_price));
          return num('td', c.kind === 'money' && !priced ? null : t[c.key], { metric: c.key, label: `Total ${c.label.toLowerCase()}`, def: `${c.def || ''} Summed over connected apps; apps without a number are left out.`.trim(), kind: c.kind, currency: cur, why: c.kind === 'money' ? 'no app has a seat price yet' : 'no app has synced yet' });
        }),
        h('td', { class: 'as-of' }),
      ),
    );
    const table = h('table', { class: 'data overview-table' }, h('caption', { text: 'Seats, activity and cost per app' }), thead, tbody, tfoot);
    const others = (t.apps_in_other_currencies || []).map(appName);
    setMain(
      h1,
      h('p', { class: 'as-of-line' }, 'Generated ', timeEl(ov.generated_at), '. Each app’s activity numbers are of its last complete UTC day (the As of column), never of today’s unfinished day. Amounts in ', cur, '.'),
      others.length ? h('p', { class: 'note', role: 'note', dataset: { note: 'other-currencies' }, text: `The totals leave out ${others.join(', ')}: priced in another currency than ${cur}.` }) : null,
      h('div', { class: 'table-wrap' }, table),
      renewalsSection(ov, defs),
      definitionsBlock(defs, mergedSources(ov.apps), [h('span', {}, 'Generated ', timeEl(ov.generated_at))].concat((ov.apps || []).filter((a) => a.as_of_date).map((a) => `${a.name}: headline day ${a.headline_day || '— (no complete day yet)'}, latest synced day ${a.as_of_date}`))),
    );
    markReady('overview');
  }

  /** A settings form: disabled with a note for a viewer; for an admin, the Save button
   *  and the messages, and `submit` run with the messages cleared. */
  function settingsForm(form, fields, { save, err, status }, submit) {
    if (isViewer()) {
      for (const el of fields) el.disabled = true;
      form.append(viewerNote());
    } else {
      form.append(h('div', { class: 'actions' }, save), err, status);
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (isViewer()) return;
      err.textContent = '';
      status.textContent = '';
      await submit();
    });
  }

  /** PUTs the app's settings, says so, and renders the page again with them. */
  async function saveSettings(provider, body, { save, err, status }, saved) {
    save.disabled = true;
    try {
      await api(`/api/apps/${enc(provider)}/settings`, { method: 'PUT', body });
      status.textContent = 'Saved';
      banner('success', saved, { id: 'settings' });
      await route();
    } catch (e) {
      save.disabled = false;
      err.textContent = e.message;
    }
  }

  /** "Renewals in the next 90 days": app, date, seats, inactive seats and what
   *  reclaiming them before the date saves (a period of their price); CSV. */
  function renewalsSection(ov, defs) {
    const headId = uid('renewals-h');
    const list = ov.renewals || [];
    const status = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
    const csv = h('button', { type: 'button', text: 'Renewals CSV', dataset: { export: 'renewals' } });
    csv.addEventListener('click', async () => {
      csv.disabled = true;
      try {
        await download('/api/renewals/export.csv', 'seatscope-renewals.csv');
        status.textContent = 'Downloaded seatscope-renewals.csv';
      } catch (e) {
        status.textContent = `Could not download the renewals: ${e.message}`;
      } finally {
        csv.disabled = false;
      }
    });
    const body = list.length
      ? h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'data renewals-table', dataset: { table: 'renewals' } },
          h('caption', { text: 'Renewals in the next 90 days, soonest first' }),
          h('thead', {}, h('tr', {}, ['App', 'Renews on', 'In', 'Billing', 'Seats', 'Inactive seats', 'Downgradable seats', 'Saving if reclaimed before'].map((c, i) => h('th', { scope: 'col', class: i > 3 ? 'num' : undefined, text: c })))),
          h(
            'tbody',
            {},
            list.map((r) => h(
              'tr',
              { dataset: { provider: r.provider } },
              h('th', { scope: 'row' }, h('a', { href: `/apps/${enc(r.provider)}`, 'data-route': true, text: r.name })),
              h('td', { text: r.date }),
              h('td', { text: `${nfInt.format(r.days_until)} days` }),
              h('td', { text: r.billing_period === 'annual' ? 'Annual' : 'Monthly' }),
              num('td', r.seats, { metric: 'seats', kind: 'int' }),
              num('td', r.inactive_seats, { metric: 'inactive_seats', kind: 'int', why: 'the app reports no per-seat activity' }),
              num('td', r.downgradable_seats, { metric: 'downgradable_seats', label: 'Seats that could move to a cheaper license', def: defs.downgrade, kind: 'int', why: 'the app has no cheaper license rule' }),
              num('td', r.saving_if_reclaimed, { metric: 'saving_if_reclaimed', label: 'Saving if reclaimed before the renewal', def: defs.saving_if_reclaimed, kind: 'money', currency: r.currency, why: 'no price is set for every seat' }),
            )),
          ),
        ),
      )
      : h('p', { class: 'empty', text: 'No renewal in the next 90 days. Set a renewal date on an app’s page.' });
    return h(
      'section',
      { class: 'renewals', 'aria-labelledby': headId },
      h('h2', { id: headId, text: 'Renewals in the next 90 days' }),
      h('p', { class: 'hint', text: defs.renewal || '' }),
      body,
      list.length ? h('div', { class: 'actions' }, csv) : null,
      status,
    );
  }

  /** Prices per license type, billing, renewal date and currency, with the costs per
   *  license type they give (apps priced per seat). */
  function spendPanel(ctx) {
    const { settings, sum, defs, provider, detail } = ctx;
    const headId = uid('spend-h');
    const cur = settings.currency || 'USD';
    const licenses = [...new Set((sum.by_license || []).map((l) => l.license).filter(Boolean).concat(Object.keys(settings.license_prices || {})))].sort(collator.compare);
    const priceInputs = licenses.map((license) => {
      const id = uid('lp');
      const v = settings.license_prices?.[license];
      const input = h('input', { id, type: 'number', min: '0', step: '0.01', value: isNum(v) ? String(v) : '', placeholder: 'seat price', inputmode: 'decimal', dataset: { license } });
      return { license, input, field: h('div', { class: 'field' }, h('label', { for: id, text: `${license} per seat per month (${cur})` }), input) };
    });
    const curId = uid('cur');
    const currency = h('input', { id: curId, name: 'currency', type: 'text', value: cur, maxlength: '3', size: '4', pattern: '[A-Z]{3}', autocomplete: 'off', spellcheck: 'false' });
    const periodId = uid('period');
    const period = h('select', { id: periodId, name: 'billing_period' }, [['monthly', 'Monthly'], ['annual', 'Annual']].map(([v, text]) => h('option', { value: v, selected: (settings.billing_period || 'monthly') === v, text })));
    const renewId = uid('renew');
    const renewal = h('input', { id: renewId, name: 'renewal_date', type: 'date', value: settings.renewal_date || '' });
    const err = h('p', { class: 'field-error', role: 'alert' });
    const status = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
    const save = h('button', { type: 'submit', class: 'primary', text: 'Save prices and renewal' });
    const form = h(
      'form',
      { class: 'settings-form', novalidate: true, dataset: { form: 'spend' } },
      h('div', { class: 'fields' }, priceInputs.map((p) => p.field)),
      h(
        'div',
        { class: 'fields' },
        h('div', { class: 'field' }, h('label', { for: curId, text: 'Currency (ISO code)' }), currency),
        h('div', { class: 'field' }, h('label', { for: periodId, text: 'Billing period' }), period),
        h('div', { class: 'field' }, h('label', { for: renewId, text: 'Renewal date' }), renewal),
      ),
    );
    settingsForm(form, [...form.querySelectorAll('input, select')], { save, err, status }, async () => {
      const prices = {};
      for (const p of priceInputs) {
        const text = p.input.value.trim();
        if (text === '') continue;
        const v = Number(text);
        if (!Number.isFinite(v) || v < 0) {
          err.textContent = `The ${p.license} price is a number of at least 0 (leave it empty for the seat price).`;
          p.input.focus();
          return;
        }
        prices[p.license] = v;
      }
      const code = currency.value.trim().toUpperCase();
      if (!/^[A-Z]{3}$/.test(code)) {
        err.textContent = 'The currency is an ISO code of three letters, e.g. USD or EUR.';
        currency.focus();
        return;
      }
      const body = { ...settings, license_prices: prices, currency: code, billing_period: period.value, renewal_date: renewal.value || null };
      await saveSettings(provider, body, { save, err, status }, `${detail.name} prices and renewal saved.`);
    });
    const rows = (sum.by_license || []).map((l) => h(
      'tr',
      { dataset: { license: l.license || '' } },
      h('th', { scope: 'row', text: l.license || 'No license' }),
      num('td', l.seats, { metric: 'seats', kind: 'int' }),
      num('td', l.active_30d, { metric: 'active_30d', kind: 'int' }),
      num('td', l.inactive_seats, { metric: 'inactive_seats', kind: 'int' }),
      num('td', l.price, { metric: 'license_price', def: defs.license_price, kind: 'money', currency: cur, why: 'no price set' }),
      num('td', l.monthly_cost, { metric: 'monthly_cost', def: defs.monthly_cost, kind: 'money', currency: cur, why: 'no price set' }),
      num('td', l.cost_per_active_user, { metric: 'cost_per_active_user', def: defs.cost_per_active_user, kind: 'money', currency: cur, why: 'no price set, or no active seat' }),
      num('td', l.potential_savings, { metric: 'potential_savings', def: defs.potential_savings, kind: 'money', currency: cur, why: 'no price set' }),
    ));
    const renewalLine = sum.renewal
      ? h('p', { dataset: { renewal: sum.renewal.date } }, `Next renewal ${sum.renewal.date} (${sum.renewal.billing_period}). Reclaiming the inactive seats before it saves `, num('span', sum.renewal.saving_if_reclaimed, { metric: 'saving_if_reclaimed', def: defs.saving_if_reclaimed, kind: 'money', currency: cur, why: 'no price is set for every seat' }), '.')
      : h('p', { class: 'hint', text: 'No renewal date set.' });
    return h(
      'section',
      { class: 'spend', 'aria-labelledby': headId },
      h('h2', { id: headId, text: 'Prices, costs per license type and renewal' }),
      rows.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data license-costs', dataset: { table: 'license-costs' } }, h('caption', { text: `Costs per license type per month (${cur})` }), h('thead', {}, h('tr', {}, ['License', 'Seats', 'Active (30 d)', 'Inactive', 'Price', 'Monthly cost', 'Cost per active user', 'Potential savings'].map((c, i) => h('th', { scope: 'col', class: i ? 'num' : undefined, text: c })))), h('tbody', {}, rows)))
        : h('p', { class: 'empty', text: 'No seats synced yet.' }),
      renewalLine,
      form,
    );
  }

  function mergedSources(apps) {
    const out = {};
    for (const a of apps || []) for (const [k, v] of Object.entries(a.sources || {})) out[`${a.name} ${k}`] = v;
    return out;
  }

  // ---------- app page ----------

  function rangeMonths() {
    const m = Number(new URLSearchParams(location.search).get('range'));
    return RANGES[m] ? m : 3;
  }

  const PALETTE = ['#1f5fbf', '#c2410c', '#15803d', '#7c3aed', '#a16207', '#be185d', '#0e7490', '#4b5563'];
  const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 1]];

  async function pageApp(gen, provider) {
    const months = rangeMonths();
    const to = utcToday();
    const from = minusDays(to, RANGES[months]);
    document.title = `${appName(provider)} — Seatscope`;
    const h1 = h('h1', { tabindex: '-1', text: appName(provider) });
    setMain(h1, loading('the numbers'));
    const p = enc(provider);
    // Progressive: the summary and charts render as soon as the detail is here; the
    // seat list (10 000 seats is a few MB) fills its two sections when it lands.
    const seatsP = api(`/api/apps/${p}/seats?only=all`);
    seatsP.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    const [detail] = await Promise.all([
      api(`/api/apps/${p}?from=${from}&to=${to}`),
      S.overview ? null : loadOverview().catch(() => null),
    ]);
    if (gen !== S.gen) return;
    document.title = `${detail.name} — Seatscope`;
    h1.textContent = detail.name;
    const defs = detail.definitions || S.overview?.definitions || {};
    const sources = detail.sources || {};
    const sum = detail.summary || {};
    const settings = detail.settings || { inactive_days: sum.inactive_days || 30, grace_days: 0, exempt_seats: [], seat_price: null };
    const cur = settings.currency || S.overview?.currency || 'USD';
    const perSeat = detail.per_seat_activity !== false;
    // Headline numbers are of the last complete UTC day; today's, if synced, is partial.
    const asOf = sum.headline_day || null;
    const ctx = { detail, defs, sources, sum, settings, cur, perSeat, asOf, provider, from, to, months, gen };

    const rangeId = uid('range');
    const rangeSel = h('select', { id: rangeId, name: 'range' }, [3, 6, 12].map((m) => h('option', { value: String(m), selected: m === months, text: `${m} months` })));
    rangeSel.addEventListener('change', () => go(`/apps/${p}?range=${rangeSel.value}`));

    const head = h(
      'div',
      { class: 'page-head' },
      h1,
      chip(statusOf(detail)),
      h('a', { href: '/connections', 'data-route': true, class: 'subtle-link', text: 'Manage the connection' }),
    );
    const asOfLine = h(
      'p',
      { class: 'as-of-line', dataset: { asOf: asOf || '', latestDay: sum.as_of_date || '' } },
      asOf ? ['Numbers as of ', h('strong', { text: asOf }), ' (the last complete UTC day; today so far is shown apart in the chart)'] : sum.as_of_date ? 'No complete synced day yet (today’s numbers are so far only)' : 'No synced day yet',
      detail.connection?.last_sync_at ? ['; last sync ', timeEl(detail.connection.last_sync_at)] : null,
      `. Range ${detail.from || from} to ${detail.to || to}.`,
    );
    const controls = h('div', { class: 'controls' }, h('label', { for: rangeId, text: 'Range' }), rangeSel);

    const sections = [head, asOfLine];
    if (detail.activity_note) sections.push(h('p', { class: 'note', role: 'note', text: detail.activity_note }));
    sections.push(controls, summaryTiles(ctx));
    if (detail.plan) sections.push(planSection(ctx));
    const trend = trendSection(ctx);
    const feats = featuresSection(ctx);
    sections.push(trend.section, feats.section);
    if (detail.tier_hint) sections.push(tierHint(detail.tier_hint));
    const pending = (cls, title) => h('section', { class: cls, 'aria-busy': 'true' }, h('h2', { text: title }), loading('the seats'));
    const seatsHolder = pending('seats', 'Seats');
    const inactiveHolder = pending('inactive-panel', 'Inactive seats');
    sections.push(seatsHolder, inactiveHolder);
    if (detail.pricing === 'per_seat') sections.push(spendPanel(ctx));
    sections.push(exportsSection(ctx));
    sections.push(
      definitionsBlock(defs, Object.fromEntries([...Object.entries(sources), ...(detail.features || []).filter((f) => f.source).map((f) => [`feature ${f.feature}`, f.source])]), [
        asOf ? `Headline day: ${asOf} (the last complete UTC day)` : 'No complete day yet',
        sum.as_of_date ? `Latest synced day: ${sum.as_of_date}` : null,
        sum.computed_at ? h('span', {}, 'Summary computed ', timeEl(sum.computed_at)) : null,
        detail.plan?.as_of ? h('span', {}, 'Plan credits: ', timeEl(detail.plan.as_of)) : null,
        detail.connection?.last_sync_at ? h('span', {}, 'Last sync: ', timeEl(detail.connection.last_sync_at)) : null,
      ].filter(Boolean)),
    );
    setMain(...sections);

    // Charts after the canvases are in the document (they need a size).
    trend.draw();
    feats.draw();
    window.seatscopeCharts = { trend: S.charts.trend, features: S.charts.features };
    document.body.dataset.chartsDrawn = String(performance.now());

    let seatsResp;
    try {
      seatsResp = await seatsP;
    } catch (e) {
      if (gen !== S.gen || e.status === 401) return;
      const fail = h('p', { role: 'alert', class: 'error-text', text: `Could not load the seats: ${e.message}` });
      seatsHolder.replaceChildren(h('h2', { text: 'Seats' }), fail);
      seatsHolder.removeAttribute('aria-busy');
      inactiveHolder.remove();
      markReady('app');
      return;
    }
    if (gen !== S.gen) return;
    seatsHolder.replaceWith(seatsSection(ctx, seatsResp));
    inactiveHolder.replaceWith(inactivePanel(ctx, seatsResp));
    markReady('app');
  }

  function summaryTiles(ctx) {
    const { sum, defs, sources, cur, asOf, perSeat, detail } = ctx;
    const why = (metric) => whyNull({ ...sum, name: detail.name, connection: detail.connection, per_seat_activity: perSeat, activity_note: detail.activity_note }, metric);
    const tiles = [
      { key: 'seats', label: 'Seats', def: defs.seats, src: sources.seats },
      { key: 'dau', label: 'DAU', def: defs.dau, src: sources.activity },
      { key: 'active_30d', label: 'Active (30 d)', def: defs.active_30d || defs.mau, src: sources.activity, value: sum.active_30d ?? sum.mau },
      { key: 'utilization_percent', label: 'Utilization', def: defs.utilization_percent, kind: 'percent', src: sources.activity },
      { key: 'inactive_seats', label: `Inactive (${sum.inactive_days || ctx.settings.inactive_days} d)`, def: defs.inactive, src: sources.activity },
      { key: 'seat_price', label: 'Seat price / month', def: 'The price of one seat per month, as entered below.', kind: 'money' },
      { key: 'monthly_cost', label: 'Monthly cost', def: defs.monthly_cost, kind: 'money' },
      { key: 'cost_per_active_user', label: 'Cost per active user', def: defs.cost_per_active_user, kind: 'money' },
      { key: 'potential_savings', label: 'Potential savings / month', def: defs.potential_savings, kind: 'money' },
    ];
    if (detail.plan) {
      const pl = detail.plan;
      tiles.splice(4, 0, { key: 'plan_utilization_percent', label: 'Plan credits used', def: defs.plan_utilization_percent, kind: 'percent', src: pl.source, value: isNum(pl.utilization_percent) ? pl.utilization_percent : null, asOf: pl.as_of });
    }
    return h(
      'section',
      { class: 'tiles', 'aria-label': 'Summary' },
      h(
        'dl',
        {},
        tiles.map((t) =>
          h('div', { class: 'tile', dataset: { metric: t.key } }, h('dt', { text: t.label, title: t.def }), num('dd', 'value' in t ? t.value : sum[t.key], { metric: t.key, label: t.label, def: t.def, kind: t.kind, currency: cur, source: t.src, asOf: t.asOf || (HEADLINE_METRICS.includes(t.key) ? asOf : sum.as_of_date), why: t.key === 'plan_utilization_percent' ? 'the plan has no included credits' : why(t.key) })),
        ),
      ),
    );
  }

  function planSection(ctx) {
    const { detail, defs } = ctx;
    const plan = detail.plan;
    const meterId = uid('plan');
    const pct = isNum(plan.utilization_percent) ? plan.utilization_percent : plan.total > 0 ? (plan.used * 100) / plan.total : null;
    const title = [defs.plan_utilization_percent, `Source: ${plan.source || ''}`, `As of ${plan.as_of || ''}`].filter(Boolean).join('\n');
    return h(
      'section',
      { class: 'plan', 'aria-labelledby': `${meterId}-h` },
      h('h2', { id: `${meterId}-h`, text: 'Plan credits' }),
      h('label', { for: meterId, class: 'visually-hidden', text: 'Plan credits used' }),
      h('meter', { id: meterId, min: '0', max: String(Math.max(plan.total, 1)), value: String(Math.min(plan.used, Math.max(plan.total, 1))), high: String(Math.max(plan.total, 1) * 0.9), title, dataset: { used: plan.used, total: plan.total } }),
      h(
        'p',
        { class: 'plan-text', title },
        num('strong', plan.used, { metric: 'plan_used', label: 'Credits used', def: defs.plan_utilization_percent, source: plan.source, asOf: plan.as_of }),
        ' of ',
        num('strong', plan.total, { metric: 'plan_total', label: 'Credits included', source: plan.source, asOf: plan.as_of }),
        ' credits used (',
        num('span', pct, { metric: 'plan_utilization_percent', kind: 'percent', def: defs.plan_utilization_percent, source: plan.source, asOf: plan.as_of, why: 'the plan has no included credits' }),
        ')',
        isNum(plan.remain) ? ['; ', nfInt.format(plan.remain), ' remain'] : null,
        plan.next_reset ? [`; resets ${plan.reset_frequency ? `${plan.reset_frequency}, next ` : ''}on `, plan.next_reset] : null,
        '.',
      ),
      projectionLine(plan, defs),
      h('p', { class: 'source-line' }, 'Source: ', plan.source || '—', '. As of ', timeEl(plan.as_of), '.'),
    );
  }

  /** Beside the credits bar: where the credits go at the last 30 days' pace. */
  function projectionLine(plan, defs) {
    const p = plan.projection;
    if (!p) return null;
    const pace = `At the last ${nfInt.format(p.days_measured)} complete days' pace (${nfDec.format(p.pace_per_day)} a day), `;
    const text = p.runs_out_on
      ? `${pace}the credits run out on ${p.runs_out_on}, before the reset${plan.next_reset ? ` on ${plan.next_reset}` : ''}.`
      : `${pace}${nfDec.format(p.unused_at_reset_percent ?? 0)} % of the plan's credits will be left unused at the reset${plan.next_reset ? ` on ${plan.next_reset}` : ''}.`;
    return h('p', { class: 'plan-projection', title: defs.credits_projection || undefined, dataset: { runsOutOn: p.runs_out_on || '', unusedPercent: p.unused_at_reset_percent ?? '' }, text });
  }

  /** A visually hidden table with exactly the numbers a chart draws. */
  function chartTable(kind, caption, head, rows, dayKinds) {
    return h(
      'table',
      { class: 'chart-data visually-hidden', dataset: { chart: kind } },
      h('caption', { text: caption }),
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', text: c })))),
      h(
        'tbody',
        {},
        rows.map((r, j) =>
          h(
            'tr',
            { dataset: { day: dayKinds?.[j] } },
            r.map((v, i) =>
              i === 0
                ? h('th', { scope: 'row', dataset: { date: v } }, v, dayKinds?.[j] === 'partial' ? ' (so far)' : dayKinds?.[j] === 'no-data' ? ' (no data)' : '')
                : h('td', { dataset: { value: isNum(v) ? v : '' }, text: isNum(v) ? String(v) : '—' }),
            ),
          ),
        ),
      ),
    );
  }

  /** "emails_delivered" → "Emails delivered" */
  function metricLabel(k) {
    const t = String(k).replace(/_/g, ' ');
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  function trendSection(ctx) {
    const { detail, defs, perSeat } = ctx;
    // Every day of the range up to today: a day the API has no point for (no synced
    // data) is null, a gap in the line (spanGaps: false), never 0. Today's point, if
    // synced, is partial ("so far"): a dotted segment into a hollow triangle.
    const byDate = new Map((detail.daily || []).map((d) => [d.date, d]));
    const first = detail.from || ctx.from;
    const last = [detail.to || ctx.to, utcToday()].sort()[0];
    const dates = [];
    for (let d = first; d <= last && dates.length < 400; d = minusDays(d, -1)) dates.push(d);
    for (const d of byDate.keys()) if (!dates.includes(d)) dates.push(d);
    dates.sort();
    const daily = dates.map((date) => byDate.get(date) || { date, missing: true });
    const anySynced = byDate.size > 0;
    const partialAt = daily.map((d) => d.partial === true);
    const labels = daily.map((d) => d.date);
    let series;
    if (perSeat) {
      series = [
        { key: 'dau', label: 'DAU', def: defs.dau },
        { key: 'wau', label: 'WAU', def: defs.wau },
        { key: 'mau', label: 'MAU', def: defs.mau },
      ].map((s) => ({ ...s, data: daily.map((d) => (isNum(d[s.key]) ? d[s.key] : null)) }));
    } else {
      const keys = [...new Set(daily.flatMap((d) => Object.keys(d.account || {})))].sort();
      series = keys.map((k) => ({ key: k, label: metricLabel(k), def: `${metricLabel(k)} per day, for the whole account (${k}), as the vendor reports it.`, data: daily.map((d) => (isNum(d.account?.[k]) ? d.account[k] : null)) }));
    }
    const title = perSeat ? 'Active users per day' : 'Account activity per day';
    const headId = uid('trend-h');
    const canvas = h('canvas', { role: 'img', 'aria-label': `${title}: ${series.map((s) => s.label).join(', ')} from ${labels[0] || ctx.from} to ${labels[labels.length - 1] || ctx.to}. The numbers are in the table that follows.` });
    const table = chartTable('trend', `${title} (the numbers in the chart)`, ['Date', ...series.map((s) => s.label)], daily.map((d, i) => [d.date, ...series.map((s) => s.data[i])]), daily.map((d) => (d.partial ? 'partial' : d.missing ? 'no-data' : 'complete')));
    const partialDays = daily.filter((d) => d.partial).map((d) => d.date);
    const gapDays = daily.filter((d) => d.missing).length;
    const legend = h('ul', { class: 'legend' }, series.map((s) => h('li', { title: s.def }, h('strong', { text: s.label }), s.def ? `: ${s.def}` : '')));
    const section = h(
      'section',
      { class: 'chart-section', 'aria-labelledby': headId },
      h('h2', { id: headId, text: title }),
      anySynced ? h('div', { class: 'chart-box' }, canvas) : h('p', { class: 'empty', text: 'No synced days in this range yet.' }),
      table,
      legend,
      anySynced && (partialDays.length || gapDays)
        ? h(
            'p',
            { class: 'hint trend-honesty', dataset: { partialDays: partialDays.join(' '), gapDays: String(gapDays) } },
            partialDays.length ? `${partialDays.join(', ')}: so far (the UTC day is not over), drawn dotted, as a hollow triangle; its counts will still grow. ` : '',
            gapDays ? `${gapDays} day${gapDays === 1 ? '' : 's'} without synced data: gaps in the lines, not 0.` : '',
          )
        : null,
      h('p', { class: 'source-line', text: `Source: ${perSeat ? detail.sources?.activity || '—' : Object.values(detail.sources || {}).join('; ') || '—'}. Each day is as of its own rollup${daily.length && daily[daily.length - 1].as_of ? ` (latest ${daily[daily.length - 1].as_of})` : ''}.` }),
    );
    const soFar = (i) => (partialAt[i] ? `${labels[i]} (so far)` : labels[i]);
    const draw = () => {
      if (!anySynced || typeof Chart === 'undefined') return;
      S.charts.trend = new Chart(canvas, {
        type: 'line',
        data: {
          labels,
          datasets: series.map((s, i) => ({
            label: s.label,
            data: s.data,
            partial: partialAt,
            borderColor: PALETTE[i % PALETTE.length],
            backgroundColor: PALETTE[i % PALETTE.length],
            borderDash: DASHES[i % DASHES.length],
            borderWidth: 2,
            // A partial day always shows its point, apart from the complete ones.
            pointRadius: partialAt.map((p) => (p ? 5 : labels.length > 100 ? 0 : 2)),
            pointStyle: partialAt.map((p) => (p ? 'triangle' : 'circle')),
            pointBackgroundColor: partialAt.map((p) => (p ? '#ffffff' : PALETTE[i % PALETTE.length])),
            // The segment into a partial day is dotted whatever the series' dash.
            segment: { borderDash: (c) => (partialAt[c.p1DataIndex] ? [2, 4] : undefined) },
            spanGaps: false,
            tension: 0,
          })),
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: 'index', intersect: false },
          scales: {
            y: { beginAtZero: true, ticks: { precision: 0 } },
            x: { ticks: { maxTicksLimit: 12, callback: (v) => soFar(v) } },
          },
          plugins: {
            legend: { position: 'bottom' },
            tooltip: { callbacks: { title: (items) => (items.length ? soFar(items[0].dataIndex) : '') } },
          },
        },
      });
    };
    return { section, draw };
  }

  function featuresSection(ctx) {
    const { detail } = ctx;
    const feats = detail.features || [];
    const headId = uid('feat-h');
    const labels = feats.map((f) => f.feature);
    const data = feats.map((f) => (isNum(f.total) ? f.total : null));
    const canvas = h('canvas', { role: 'img', 'aria-label': `Feature usage totals from ${detail.from || ctx.from} to ${detail.to || ctx.to}: ${feats.map((f) => `${f.feature} ${f.total}`).join(', ')}.` });
    const table = chartTable('features', 'Feature usage totals over the range (the numbers in the chart)', ['Feature', 'Events'], feats.map((f) => [f.feature, f.total]));
    const section = h(
      'section',
      { class: 'chart-section', 'aria-labelledby': headId },
      h('h2', { id: headId, text: 'Feature usage' }),
      h('p', { class: 'hint', text: `Total events per feature from ${detail.from || ctx.from} to ${detail.to || ctx.to}.` }),
      feats.length ? h('div', { class: 'chart-box chart-box-short' }, canvas) : h('p', { class: 'empty', text: 'No feature usage recorded in this range.' }),
      table,
      feats.length ? h('ul', { class: 'legend' }, feats.map((f) => h('li', {}, h('strong', { text: f.feature }), ': ', num('span', f.total, { metric: `feature_${f.feature}`, label: f.feature, def: 'Total events over the range.', source: f.source }), f.source ? ` — source: ${f.source}` : ''))) : null,
    );
    const draw = () => {
      if (!feats.length || typeof Chart === 'undefined') return;
      S.charts.features = new Chart(canvas, {
        type: 'bar',
        data: { labels, datasets: [{ label: 'Events', data, backgroundColor: PALETTE[0], borderColor: PALETTE[0] }] },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          indexAxis: 'y',
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { display: false } },
        },
      });
    };
    return { section, draw };
  }

  function tierHint(t) {
    return h(
      'aside',
      { class: 'tier-hint', 'aria-label': 'Plan tier hint' },
      h('h2', { text: t.tier ? `Plan tier: ${t.tier}` : 'Plan tier' }),
      t.message ? h('p', { text: t.message }) : null,
      t.features_used?.length ? h('p', { text: `Features in use: ${t.features_used.join(', ')}` }) : null,
      t.source && /^https?:\/\//.test(t.source) ? h('p', {}, 'Source: ', h('a', { href: t.source, rel: 'noopener noreferrer', target: '_blank', text: t.source })) : t.source ? h('p', { text: `Source: ${t.source}` }) : null,
    );
  }

  // ----- the seat table -----

  const SEAT_COLS = [
    { key: 'email', label: 'Email', type: 'str' },
    { key: 'name', label: 'Name', type: 'str' },
    { key: 'role', label: 'Role', type: 'str' },
    { key: 'license', label: 'License', type: 'str' },
    { key: 'status', label: 'Status', type: 'str' },
    { key: 'last_activity_on', label: 'Last activity', type: 'str' },
    { key: 'active_days_30', label: 'Active days (30 d)', type: 'num', defKey: 'active_days_30' },
    { key: 'inactive', label: 'Inactive', type: 'bool', defKey: 'inactive' },
    { key: 'on_call', label: 'On call', type: 'str', defKey: 'on_call' },
    { key: 'downgrade', label: 'Cheaper license', type: 'str', defKey: 'downgrade' },
  ];

  const FILTERS = [
    ['all', 'All seats'],
    ['active', 'Active'],
    ['inactive', 'Inactive'],
    ['exempt', 'Exempt'],
    ['in_grace', 'In grace'],
    ['on_call', 'On call (never reclaimable)'],
  ];

  /** `active`: activity within the inactive threshold (whatever grace or exemption says). */
  function seatMatches(s, filter, activeSince) {
    switch (filter) {
      case 'active': return !!(activeSince && s.last_activity_on && s.last_activity_on >= activeSince);
      case 'inactive': return s.inactive === true;
      case 'exempt': return !!s.exempt;
      case 'in_grace': return !!s.in_grace;
      case 'on_call': return !!s.on_call;
      default: return true;
    }
  }

  function compareSeats(key, type, dir) {
    // On call sorts by its label and schedule; not on call is empty (last either way).
    const get = (s) => (key === 'on_call' ? (s.on_call ? `${onCallLabel(s)} ${onCallWhere(s)}` : '') : key === 'downgrade' ? s.downgrade?.to ?? '' : s[key]);
    return (a, b) => {
      const x = get(a);
      const y = get(b);
      const xn = x === null || x === undefined || x === '';
      const yn = y === null || y === undefined || y === '';
      if (xn || yn) return xn === yn ? 0 : xn ? 1 : -1; // unknowns last either way
      let c;
      if (type === 'num') c = x - y;
      else if (type === 'bool') c = (x ? 1 : 0) - (y ? 1 : 0);
      else c = collator.compare(String(x), String(y));
      return dir === 'asc' ? c : -c;
    };
  }

  /** The seats CSV's `on_call` cell: 'on call, quiet', 'on call' or ''. */
  function onCallLabel(s) {
    if (!s.on_call) return '';
    return s.on_call.quiet ? 'on call, quiet' : 'on call';
  }

  /** Where the seat is on call: the schedule, or the escalation policy that targets it directly. */
  function onCallWhere(s) {
    return s.on_call ? s.on_call.schedule || s.on_call.escalation_policy || '' : '';
  }

  function inactiveText(s) {
    if (s.inactive === null || s.inactive === undefined) return '—';
    if (s.inactive) return 'Yes';
    if (s.on_call) return s.on_call.quiet ? 'No (on call, quiet)' : 'No (on call)';
    if (s.exempt) return 'No (exempt)';
    if (s.in_grace) return 'No (in grace)';
    return 'No';
  }

  /** Prev / Next over `count` rows in pages of PAGE_SIZE; calls render(page). */
  function pager(label, onPage) {
    const info = h('span', { class: 'pager-info', role: 'status', 'aria-live': 'polite' });
    const prev = h('button', { type: 'button', text: 'Previous', 'aria-label': `Previous page of ${label}`, dataset: { page: 'prev' } });
    const next = h('button', { type: 'button', text: 'Next', 'aria-label': `Next page of ${label}`, dataset: { page: 'next' } });
    const el = h('div', { class: 'pager' }, prev, info, next);
    let page = 0;
    let count = 0;
    const pages = () => Math.max(1, Math.ceil(count / PAGE_SIZE));
    const update = () => {
      prev.disabled = page <= 0;
      next.disabled = page >= pages() - 1;
      const a = count ? page * PAGE_SIZE + 1 : 0;
      const b = Math.min(count, (page + 1) * PAGE_SIZE);
      info.textContent = count ? `Rows ${nfInt.format(a)}–${nfInt.format(b)} of ${nfInt.format(count)} (page ${page + 1} of ${pages()})` : 'No rows';
      el.hidden = count <= PAGE_SIZE; // one page: nothing to page through
    };
    prev.addEventListener('click', () => {
      if (page > 0) { page -= 1; onPage(page); update(); }
    });
    next.addEventListener('click', () => {
      if (page < pages() - 1) { page += 1; onPage(page); update(); }
    });
    return {
      el,
      set(n, p = 0) { count = n; page = Math.min(p, pages() - 1); update(); return page; },
      get page() { return page; },
    };
  }

  function seatsSection(ctx, seatsResp) {
    const { defs, perSeat, detail } = ctx;
    const all = seatsResp.seats || [];
    const thresholdDays = seatsResp.inactive_days ?? ctx.settings.inactive_days;
    const seatsAsOf = seatsResp.as_of_date || ctx.asOf;
    const activeSince = seatsAsOf ? minusDays(seatsAsOf, thresholdDays - 1) : null;
    const st = { sort: 'email', dir: 'asc', filter: 'all', license: '', q: '', rows: all };
    const headId = uid('seats-h');
    const filterId = uid('seat-filter');
    const licenseId = uid('seat-license');
    const searchId = uid('seat-search');
    const filterSel = h('select', { id: filterId, name: 'filter' }, FILTERS.map(([v, t]) => h('option', { value: v, text: v === 'active' ? `Active (activity in the last ${thresholdDays} days)` : t })));
    // The licenses the seats hold (e.g. PagerDuty's Full User / Stakeholder); offered only
    // where the vendor reports any, with "No license" where some seats have none.
    const licenses = [...new Set(all.map((s) => s.license).filter((l) => l))].sort((a, b) => a.localeCompare(b));
    const unlicensed = all.some((s) => !s.license);
    // Option values are indexes into `licenses` ('' all, 'none' no license): a vendor's
    // license name is shown, never used as a value.
    const licenseSel = licenses.length
      ? h('select', { id: licenseId, name: 'license' }, h('option', { value: '', text: 'All licenses' }), licenses.map((l, i) => h('option', { value: String(i), text: l })), unlicensed ? h('option', { value: 'none', text: 'No license' }) : null)
      : null;
    const licenseMatches = (s) => st.license === '' || (st.license === 'none' ? !s.license : s.license === licenses[Number(st.license)]);
    const search = h('input', { id: searchId, type: 'search', name: 'q', placeholder: 'email or name', autocomplete: 'off' });
    const tbody = h('tbody');
    const headCells = SEAT_COLS.map((c) => {
      const b = h('button', { type: 'button', class: 'sort', dataset: { sort: c.key }, text: c.label, title: c.defKey ? defs[c.defKey] : undefined });
      const th = h('th', { scope: 'col', class: c.type === 'num' ? 'num' : undefined, dataset: { col: c.key } }, b);
      b.addEventListener('click', () => {
        if (st.sort === c.key) st.dir = st.dir === 'asc' ? 'desc' : 'asc';
        else { st.sort = c.key; st.dir = c.type === 'num' ? 'desc' : 'asc'; }
        apply(0);
      });
      return th;
    });
    const table = h(
      'table',
      { class: 'data seats-table', dataset: { table: 'seats', asOf: seatsResp.as_of_date || '' }, 'aria-labelledby': headId },
      h('thead', {}, h('tr', {}, headCells)),
      tbody,
    );
    const pg = pager('seats', (page) => renderRows(page));
    const count = h('p', { class: 'count', role: 'status', 'aria-live': 'polite' });

    function renderRows(page) {
      const rows = st.rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
      const frag = document.createDocumentFragment();
      for (const s of rows) {
        const tr = h('tr', { dataset: { seatId: s.id } });
        for (const c of SEAT_COLS) {
          const v = s[c.key];
          if (c.key === 'active_days_30') {
            tr.append(num('td', v, { metric: 'active_days_30', def: defs.active_days_30, asOf: seatsResp.as_of_date, why: perSeat ? 'no activity data' : detail.activity_note || 'the vendor reports no per-seat activity' }));
            tr.lastChild.dataset.col = c.key;
          } else if (c.key === 'inactive') {
            tr.append(h('td', { dataset: { col: c.key, value: v === null || v === undefined ? '' : String(v), exempt: String(!!s.exempt), inGrace: String(!!s.in_grace) }, title: v === null || v === undefined ? detail.activity_note || 'cannot be known' : defs.inactive, text: inactiveText(s) }));
          } else if (c.key === 'on_call') {
            const label = onCallLabel(s);
            const where = onCallWhere(s);
            const text = !label ? '—' : `${label[0].toUpperCase()}${label.slice(1)} · ${where}${s.on_call.now ? ' (now)' : ''}`;
            tr.append(h('td', { dataset: { col: c.key, value: label, schedule: where, now: String(!!(s.on_call && s.on_call.now)) }, title: defs.on_call, text }));
          } else if (c.key === 'downgrade') {
            // "Could be a Stakeholder seat": active, but no responder action in the threshold and on no schedule.
            const d = s.downgrade;
            const saving = d && d.monthly_saving !== null && d.monthly_saving !== undefined ? ` (saves ${d.monthly_saving} a month)` : '';
            tr.append(h('td', { dataset: { col: c.key, value: d ? d.to : '', saving: d && d.monthly_saving !== null ? String(d.monthly_saving) : '' }, title: defs.downgrade, text: d ? `Could be a ${d.to} seat${saving}` : '—' }));
          } else if (c.key === 'status') {
            tr.append(h('td', { dataset: { col: c.key, value: v ?? '' }, text: v === 'invited' ? 'Invited' : v === 'active' ? 'Active' : v ?? '—' }));
          } else {
            tr.append(h('td', { dataset: { col: c.key, value: v ?? '' }, text: v === null || v === undefined || v === '' ? '—' : String(v) }));
          }
        }
        frag.append(tr);
      }
      tbody.replaceChildren(frag);
      table.dataset.page = String(page);
    }

    function apply(page) {
      const q = st.q.trim().toLowerCase();
      const col = SEAT_COLS.find((c) => c.key === st.sort);
      st.rows = all
        .filter((s) => seatMatches(s, st.filter, activeSince))
        .filter(licenseMatches)
        .filter((s) => !q || (s.email || '').toLowerCase().includes(q) || (s.name || '').toLowerCase().includes(q))
        .sort(compareSeats(col.key, col.type, st.dir));
      for (const th of headCells) {
        if (th.dataset.col === st.sort) th.setAttribute('aria-sort', st.dir === 'asc' ? 'ascending' : 'descending');
        else th.setAttribute('aria-sort', 'none');
      }
      const p = pg.set(st.rows.length, page);
      renderRows(p);
      count.textContent = st.rows.length === all.length ? `${nfInt.format(all.length)} seats` : `${nfInt.format(st.rows.length)} of ${nfInt.format(all.length)} seats match`;
      table.dataset.rows = String(st.rows.length);
    }

    filterSel.addEventListener('change', () => { st.filter = filterSel.value; apply(0); });
    licenseSel?.addEventListener('change', () => { st.license = licenseSel.value; apply(0); });
    let t;
    search.addEventListener('input', () => {
      clearTimeout(t);
      t = setTimeout(() => { st.q = search.value; apply(0); }, 120);
    });
    apply(0);

    return h(
      'section',
      { class: 'seats', 'aria-labelledby': headId },
      h('h2', { id: headId, text: `Seats (${nfInt.format(all.length)})` }),
      h('p', { class: 'hint' }, 'As of ', seatsResp.as_of_date || '—', '. Inactive: ', `no activity in ${seatsResp.inactive_days ?? ctx.settings.inactive_days} days, not exempt, past the ${seatsResp.grace_days ?? ctx.settings.grace_days}-day grace period and not on call (a seat on call is never reclaimable; “on call, quiet” when it had no activity). Sort with the column buttons.`),
      h('div', { class: 'controls' }, h('label', { for: filterId, text: 'Show' }), filterSel, licenseSel ? h('label', { for: licenseId, text: 'License' }) : null, licenseSel, h('label', { for: searchId, text: 'Search' }), search, count),
      h('div', { class: 'table-wrap' }, table),
      pg.el,
    );
  }

  function inactivePanel(ctx, seatsResp) {
    const { settings, detail, perSeat, cur, provider } = ctx;
    const headId = uid('inactive-h');
    const exempt = new Set(settings.exempt_seats || []);
    const thrId = uid('thr');
    const graceId = uid('grace');
    const priceId = uid('price');
    const thrOpts = [30, 60, 90];
    if (!thrOpts.includes(settings.inactive_days)) thrOpts.push(settings.inactive_days);
    const thr = h('select', { id: thrId, name: 'inactive_days' }, thrOpts.sort((a, b) => a - b).map((d) => h('option', { value: String(d), selected: d === settings.inactive_days, text: `${d} days` })));
    const grace = h('input', { id: graceId, name: 'grace_days', type: 'number', min: '0', max: '365', step: '1', value: String(settings.grace_days ?? 0), inputmode: 'numeric' });
    const price = h('input', { id: priceId, name: 'seat_price', type: 'number', min: '0', step: '0.01', value: isNum(settings.seat_price) ? String(settings.seat_price) : '', placeholder: 'not set', inputmode: 'decimal' });
    const err = h('p', { class: 'field-error', role: 'alert' });
    const status = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
    const save = h('button', { type: 'submit', class: 'primary', text: 'Save settings' });

    const list = (seatsResp.seats || [])
      .filter((s) => s.inactive === true || s.exempt || exempt.has(s.id))
      .sort((a, b) => collator.compare(String(a.email), String(b.email)));
    const tbody = h('tbody');
    const pg = pager('inactive seats', (page) => rows(page));
    function rows(page) {
      const frag = document.createDocumentFragment();
      for (const s of list.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)) {
        const cb = h('input', { type: 'checkbox', disabled: isViewer(), checked: exempt.has(s.id), 'aria-label': `Exempt ${s.email || s.name || s.id}`, dataset: { seatId: s.id } });
        cb.addEventListener('change', () => (cb.checked ? exempt.add(s.id) : exempt.delete(s.id)));
        frag.append(
          h(
            'tr',
            { dataset: { seatId: s.id } },
            h('td', { class: 'check' }, cb),
            h('td', { text: s.email || '—' }),
            h('td', { text: s.name || '—' }),
            h('td', { text: s.last_activity_on || 'never' }),
            h('td', { text: s.in_grace ? 'Yes' : 'No', title: ctx.defs.in_grace }),
          ),
        );
      }
      tbody.replaceChildren(frag);
    }
    pg.set(list.length);
    rows(0);

    const form = h('form', { class: 'settings-form', novalidate: true, dataset: { form: 'settings' } });
    if (perSeat) {
      append(form, [
        h(
          'div',
          { class: 'fields' },
          h('div', { class: 'field' }, h('label', { for: thrId, text: 'Inactive after' }), thr),
          h('div', { class: 'field' }, h('label', { for: graceId, text: 'Grace period for new seats (days)' }), grace),
          h('div', { class: 'field' }, h('label', { for: priceId, text: `Seat price per month (${cur})` }), price),
        ),
        list.length
          ? [
            h('p', { class: 'hint', text: 'Tick “Exempt” for seats that must stay (service accounts, executives); exempt seats never count as inactive. Seats on call (PagerDuty schedules and escalation policies) are kept without it.' }),
            h(
              'div',
              { class: 'table-wrap' },
              h('table', { class: 'data inactive-table', dataset: { table: 'inactive' } }, h('caption', { text: `Inactive and exempt seats (${nfInt.format(list.length)})` }), h('thead', {}, h('tr', {}, ['Exempt', 'Email', 'Name', 'Last activity', 'In grace'].map((t) => h('th', { scope: 'col', text: t })))), tbody),
            ),
            pg.el,
          ]
          : h('p', { class: 'empty', text: 'No inactive seats with the current settings.' }),
      ]);
    } else {
      append(form, [
        h('p', { class: 'note', text: detail.activity_note || `${detail.name} reports no per-seat activity, so inactive seats cannot be known.` }),
        h('div', { class: 'fields' }, h('div', { class: 'field' }, h('label', { for: priceId, text: `Seat price per month (${cur})` }), price)),
      ]);
    }
    settingsForm(form, [thr, grace, price], { save, err, status }, async () => {
      const priceText = price.value.trim();
      // The fields this form does not show (license prices, billing, renewal, currency)
      // are sent back as they are, so saving the form never resets them.
      const body = {
        ...settings,
        inactive_days: Number(thr.value) || settings.inactive_days,
        grace_days: grace.value.trim() === '' ? 0 : Number(grace.value),
        exempt_seats: [...exempt],
        seat_price: priceText === '' ? null : Number(priceText),
      };
      if (!Number.isInteger(body.grace_days) || body.grace_days < 0 || body.grace_days > 365) {
        err.textContent = 'The grace period is a whole number of days from 0 to 365.';
        grace.focus();
        return;
      }
      if (body.seat_price !== null && (!Number.isFinite(body.seat_price) || body.seat_price < 0)) {
        err.textContent = 'The seat price is a number of at least 0 (leave it empty for no price).';
        price.focus();
        return;
      }
      await saveSettings(provider, body, { save, err, status }, `${detail.name} settings saved.`);
    });
    return h(
      'section',
      { class: 'inactive-panel', 'aria-labelledby': headId },
      h('h2', { id: headId, text: 'Inactive seats' }),
      perSeat
        ? h('p', { class: 'inactive-count' }, num('span', ctx.sum.inactive_seats, { class: 'big', metric: 'inactive_seats', label: 'Inactive seats', def: ctx.defs.inactive, asOf: ctx.asOf, why: 'no sync has finished yet' }), ` inactive ${ctx.sum.inactive_seats === 1 ? 'seat' : 'seats'}: no activity in ${settings.inactive_days} days, not exempt, past the ${settings.grace_days}-day grace period (as of ${ctx.asOf || '—'}).`)
        : null,
      form,
    );
  }

  function exportsSection(ctx) {
    const { provider, from, to, detail } = ctx;
    const p = enc(provider);
    const status = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
    const btn = (text, path, filename, key) => {
      const b = h('button', { type: 'button', text, dataset: { export: key } });
      b.addEventListener('click', async () => {
        b.disabled = true;
        status.textContent = `Preparing ${filename}…`;
        try {
          await download(path, filename);
          status.textContent = `Downloaded ${filename}`;
        } catch (e) {
          status.textContent = `Could not download ${filename}: ${e.message}`;
        } finally {
          b.disabled = false;
        }
      });
      return b;
    };
    return h(
      'section',
      { class: 'exports', 'aria-label': 'CSV exports' },
      h('h2', { text: 'Export (CSV)' }),
      h(
        'div',
        { class: 'actions' },
        btn('Seats CSV', `/api/apps/${p}/export/seats.csv`, `${provider}-seats.csv`, 'seats'),
        detail.per_seat_activity !== false ? btn('Inactive seats CSV', `/api/apps/${p}/export/inactive-seats.csv`, `${provider}-inactive-seats.csv`, 'inactive-seats') : null,
        btn('Trends CSV', `/api/apps/${p}/export/trends.csv?from=${from}&to=${to}`, `${provider}-trends-${from}-${to}.csv`, 'trends'),
      ),
      status,
    );
  }

  async function download(path, filename) {
    const r = await api(path, { raw: true });
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  // ---------- activity page (the audit trail) ----------

  const ACTIONS = {
    connect: 'Connect',
    reconnect: 'Reconnect',
    api_key: 'API key',
    invite_created: 'Invite created',
    invite_used: 'Invite used',
    invite_revoked: 'Invite revoked',
    disconnect: 'Disconnect',
    purge: 'Disconnect and purge',
    settings: 'Settings',
    sync_now: 'Sync now',
    account_change: 'Account change',
  };

  function auditDetail(e) {
    const d = e.details || {};
    const parts = [];
    if (e.action === 'settings' && d.old && d.new) {
      for (const k of Object.keys(d.new)) {
        if (JSON.stringify(d.old[k]) !== JSON.stringify(d.new[k])) parts.push(`${k}: ${JSON.stringify(d.old[k])} → ${JSON.stringify(d.new[k])}`);
      }
      if (!parts.length) parts.push('no value changed');
    }
    if (d.vendor_account) parts.push(`vendor account ${d.vendor_account}`);
    if (d.invited_by) parts.push(`invite from ${d.invited_by}`);
    if (d.invite_id && !d.invited_by) parts.push(`invite ${d.invite_id}`);
    if (d.purged_items !== undefined) parts.push(`${nfInt.format(d.purged_items)} items deleted`);
    if (d.refused_keys !== undefined) parts.push(`${d.refused_keys} refused keys`);
    if (e.error_code) parts.push(`error: ${e.error_code}`);
    if (d.change_committed) parts.push('the change was made before the failure');
    return parts.join('; ');
  }

  async function pageActivity(gen) {
    document.title = 'Activity — Seatscope';
    if (isViewer()) {
      setMain(
        h('h1', { tabindex: '-1', text: 'Activity' }),
        h('p', { class: 'role-note', role: 'note', dataset: { roleNote: '' }, text: `The activity log (who changed what) is for admins (claim ${S.me?.role_claim || 'role'} = ${(S.me?.admin_values || []).join(' or ')}).` }),
      );
      markReady('activity');
      return;
    }
    const q = new URLSearchParams(location.search);
    const filters = { app: q.get('app') || '', action: q.get('action') || '' };
    const ov = S.overview || (await loadOverview());
    if (gen !== S.gen) return;
    const appSelect = h('select', { id: uid('audit-app'), name: 'app' }, h('option', { value: '', text: 'All apps' }), (ov.apps || []).map((a) => h('option', { value: a.provider, text: a.name, selected: a.provider === filters.app })));
    const actionSelect = h('select', { id: uid('audit-action'), name: 'action' }, h('option', { value: '', text: 'All actions' }), Object.entries(ACTIONS).map(([v, t]) => h('option', { value: v, text: t, selected: v === filters.action })));
    const form = h(
      'form',
      { class: 'filters', 'aria-label': 'Filter the activity' },
      h('label', { for: appSelect.id, text: 'App ' }), appSelect,
      h('label', { for: actionSelect.id, text: ' Action ' }), actionSelect,
      h('button', { type: 'submit', text: 'Filter' }),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams();
      if (appSelect.value) p.set('app', appSelect.value);
      if (actionSelect.value) p.set('action', actionSelect.value);
      const qs = p.toString();
      go(`/activity${qs ? `?${qs}` : ''}`);
    });
    const tbody = h('tbody');
    const status = h('p', { role: 'status', class: 'muted' });
    const more = h('button', { type: 'button', text: 'Older entries', hidden: true });
    const params = new URLSearchParams();
    if (filters.app) params.set('app', filters.app);
    if (filters.action) params.set('action', filters.action);
    let cursor = null;
    let shown = 0;
    const load = async () => {
      const p = new URLSearchParams(params);
      p.set('limit', '50');
      if (cursor) p.set('cursor', cursor);
      const page = await api(`/api/audit?${p}`);
      for (const e of page.entries) {
        const who = e.actor.kind === 'invitee' ? `${e.actor.subject} (through an invite link)` : e.actor.email || e.actor.subject;
        tbody.append(h(
          'tr',
          { dataset: { action: e.action, outcome: e.outcome } },
          h('td', {}, timeEl(e.at)),
          h('td', { text: who }),
          h('td', { text: e.actor.role || '—' }),
          h('td', { text: ACTIONS[e.action] || e.action }),
          h('td', { text: e.app ? appName(e.app) : '—' }),
          h('td', {}, h('span', { class: `chip chip-outcome-${e.outcome}`, text: e.outcome })),
          h('td', { text: auditDetail(e) }),
        ));
      }
      shown += page.entries.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = shown ? `${nfInt.format(shown)} entries shown, newest first${cursor ? '' : ' (all of them)'}.` : 'Nothing was changed yet (or nothing matches the filters).';
    };
    more.addEventListener('click', () => {
      more.disabled = true;
      load().catch((e) => { status.textContent = `Could not load more: ${e.message}`; }).finally(() => { more.disabled = false; });
    });
    await load();
    if (gen !== S.gen) return;
    const csv = h('button', { type: 'button', text: 'Activity CSV', dataset: { export: 'audit' } });
    csv.addEventListener('click', async () => {
      csv.disabled = true;
      try {
        await download(`/api/audit/export.csv?${params}`, 'seatscope-activity.csv');
      } catch (e) {
        status.textContent = `Could not download the CSV: ${e.message}`;
      } finally {
        csv.disabled = false;
      }
    });
    const table = h('table', { class: 'data audit-table', dataset: { table: 'audit' } }, h('caption', { text: 'Every change attempt: who, what, which app, and whether it was done, refused or failed (kept 400 days)' }), h('thead', {}, h('tr', {}, ['When', 'Who', 'Role', 'Action', 'App', 'Outcome', 'Detail'].map((t) => h('th', { scope: 'col', text: t })))), tbody);
    setMain(
      h('h1', { tabindex: '-1', text: 'Activity' }),
      form,
      h('div', { class: 'table-wrap' }, table),
      status,
      h('div', { class: 'actions' }, more, csv),
    );
    markReady('activity');
  }

  // ---------- people page (seats joined by email across apps) ----------

  async function pagePeople(gen) {
    document.title = 'People — Seatscope';
    const q = new URLSearchParams(location.search);
    const filters = {
      inactive_everywhere: q.get('inactive_everywhere') === 'true',
      active_in_none: q.get('active_in_none') === 'true',
      min_apps: /^[0-9]{1,3}$/.test(q.get('min_apps') || '') ? q.get('min_apps') : '',
      q: (q.get('q') || '').slice(0, 100),
    };
    const h1 = h('h1', { tabindex: '-1', text: 'People' });
    setMain(h1, loading('people'));
    const params = new URLSearchParams();
    if (filters.inactive_everywhere) params.set('inactive_everywhere', 'true');
    if (filters.active_in_none) params.set('active_in_none', 'true');
    if (filters.min_apps) params.set('min_apps', filters.min_apps);
    if (filters.q) params.set('q', filters.q);
    const first = new URLSearchParams(params);
    first.set('limit', String(PAGE_SIZE));
    const page = await api(`/api/people?${first}`);
    if (gen !== S.gen) return;
    const defs = page.definitions || {};
    const apps = page.apps || [];
    const cur = page.currency;

    const ie = h('input', { type: 'checkbox', id: uid('people-ie'), name: 'inactive_everywhere', checked: filters.inactive_everywhere });
    const ain = h('input', { type: 'checkbox', id: uid('people-ain'), name: 'active_in_none', checked: filters.active_in_none });
    const min = h('input', { type: 'number', id: uid('people-min'), name: 'min_apps', min: 1, max: 100, step: 1, value: filters.min_apps, inputmode: 'numeric', size: 3 });
    const search = h('input', { type: 'search', id: uid('people-q'), name: 'q', value: filters.q, maxlength: 100, placeholder: 'email or name' });
    const form = h(
      'form',
      { class: 'filters people-filters', 'aria-label': 'Filter the people' },
      h('span', { class: 'check' }, ie, h('label', { for: ie.id, title: defs.inactive_everywhere, text: ' Inactive in every app they hold' })),
      h('span', { class: 'check' }, h('label', { for: min.id, text: ' Holds at least ' }), min, ' apps, ', ain, h('label', { for: ain.id, title: defs.active_in_none, text: ' active in none' })),
      h('label', { for: search.id, text: ' Search ' }), search,
      h('button', { type: 'submit', text: 'Filter' }),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams({ view: 'people' });
      if (ie.checked) p.set('inactive_everywhere', 'true');
      if (ain.checked) p.set('active_in_none', 'true');
      const n = min.value.trim();
      if (n) p.set('min_apps', n);
      const text = search.value.trim();
      if (text) p.set('q', text);
      go(`/?${p}`);
    });

    const head = h('tr', {}, h('th', { scope: 'col', text: 'Person' }), h('th', { scope: 'col', title: defs.apps_held, text: 'Apps' }));
    for (const a of apps) {
      head.append(h('th', { scope: 'col', text: `${a.name}: license` }), h('th', { scope: 'col', title: defs.last_activity_on, text: `${a.name}: last active` }));
    }
    head.append(h('th', { scope: 'col', title: defs.monthly_cost, text: 'Monthly cost' }));
    const tbody = h('tbody');
    const status = h('p', { role: 'status', class: 'muted', dataset: { peopleStatus: '' } });
    const more = h('button', { type: 'button', text: 'More people', hidden: true });
    let shown = 0;
    let cursor = null;
    const render = (pg) => {
      for (const p of pg.people) {
        const tr = h('tr', { dataset: { email: p.email, appsHeld: p.apps_held } },
          h('th', { scope: 'row' }, h('span', { class: 'person-name', text: p.name || '—' }), h('br'), h('span', { class: 'muted person-email', text: p.email })),
          h('td', { class: 'num', dataset: { col: 'apps_held' }, text: nfInt.format(p.apps_held) }));
        for (const a of apps) {
          const seats = p.apps.filter((s) => s.provider === a.provider);
          const license = seats.map((s) => s.license || (s.status === 'invited' ? 'invited' : '—')).join(' | ');
          const last = seats.map((s) => {
            const state = s.inactive === true ? ' (inactive)' : s.active === true ? '' : s.active === null ? '' : ' (quiet)';
            return `${s.last_activity_on || (s.active === null ? 'unknown' : 'never')}${state}`;
          }).join(' | ');
          tr.append(
            h('td', { dataset: { col: `${a.provider}-license` }, text: seats.length ? license : '' }),
            h('td', { dataset: { col: `${a.provider}-last` }, title: seats.some((s) => s.active === null) ? `${a.name} reports no per-seat activity` : undefined, text: seats.length ? last : '' }),
          );
        }
        tr.append(num('td', p.monthly_cost, { metric: 'monthly_cost', kind: 'money', currency: cur, def: defs.monthly_cost, asOf: page.as_of, why: 'none of their seats has a price (app settings)' }));
        tbody.append(tr);
      }
      shown += pg.people.length;
      cursor = pg.next_cursor;
      more.hidden = !cursor;
      // The stylesheet's button display would show a hidden button.
      more.style.display = cursor ? '' : 'none';
      status.textContent = pg.total
        ? `${nfInt.format(shown)} of ${nfInt.format(pg.total)} people shown${pg.total !== pg.people_total ? ` (${nfInt.format(pg.people_total)} in all)` : ''}, by email.`
        : (pg.people_total ? 'Nobody matches the filters.' : 'No seats yet: connect an app and let it sync.');
    };
    render(page);
    more.addEventListener('click', async () => {
      if (!cursor) return;
      more.disabled = true;
      try {
        const p = new URLSearchParams(params);
        p.set('limit', String(PAGE_SIZE));
        if (cursor) p.set('cursor', cursor);
        render(await api(`/api/people?${p}`));
      } catch (e) {
        status.textContent = `Could not load more: ${e.message}`;
      } finally {
        more.disabled = false;
      }
    });
    const csv = h('button', { type: 'button', text: 'People CSV', dataset: { export: 'people' } });
    csv.addEventListener('click', async () => {
      csv.disabled = true;
      try {
        await download(`/api/people/export.csv?${params}`, 'seatscope-people.csv');
      } catch (e) {
        status.textContent = `Could not download the CSV: ${e.message}`;
      } finally {
        csv.disabled = false;
      }
    });
    const unmatched = h('ul', { class: 'unmatched', dataset: { unmatched: '' } }, apps.map((a) => h('li', { dataset: { provider: a.provider, unmatched: a.unmatched_seats } }, `${a.name}: `, num('span', a.unmatched_seats, { metric: 'unmatched_seats', def: defs.unmatched_seats, asOf: a.computed_at }), ` of ${plural(a.seats, 'seat', 'seats')}`)));
    const table = h('table', { class: 'data people-table', dataset: { table: 'people' } }, h('caption', { text: 'People across apps: seats joined by email (trimmed, lower-case)' }), h('thead', {}, head), tbody);
    setMain(
      h1,
      h('p', { class: 'lede', text: defs.person || 'Seats of every connected app, joined by email.' }),
      form,
      h('div', { class: 'table-wrap' }, table),
      status,
      h('div', { class: 'actions' }, more, csv),
      h('section', { 'aria-label': 'Seats without an email' }, h('h2', { text: 'Seats without an email (not joined to anyone)' }), unmatched),
      h('p', { class: 'as-of-line' }, 'As of ', timeEl(page.as_of), `. Each app's seats are as of its last sync; inactive is each app's own rule (threshold, grace period, exemptions, on call). Costs in ${cur}${page.apps_in_other_currencies?.length ? ` (apps priced in another currency are left out: ${page.apps_in_other_currencies.map(appName).join(', ')})` : ''}.`),
    );
    markReady('people');
  }

  // ---------- boot ----------

  async function boot() {
    document.addEventListener('click', (e) => {
      const a = e.target.closest?.('a[data-route]');
      if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      const url = new URL(a.href, location.href);
      if (url.origin !== location.origin) return;
      e.preventDefault();
      go(url.pathname + url.search);
    });
    window.addEventListener('popstate', () => route({ focus: true }));
    document.getElementById('sign-out').addEventListener('click', () => signOut().catch(showFatal));

    if (typeof oidc === 'undefined') throw new Error('The sign-in library did not load (/assets/oidc-client-ts.min.js).');
    const r = await fetch('/api/config', { headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`Could not read the sign-in configuration (${r.status}).`);
    S.config = await r.json();
    const o = S.config.oidc || {};
    S.mgr = new oidc.UserManager({
      authority: o.issuer,
      client_id: o.client_id,
      redirect_uri: `${location.origin}/signin/callback`,
      post_logout_redirect_uri: `${location.origin}/`,
      response_type: 'code',
      scope: o.scope || 'openid profile email',
      automaticSilentRenew: false,
      loadUserInfo: false,
    });

    if (location.pathname === '/signin/callback') {
      let user;
      try {
        user = await S.mgr.signinRedirectCallback();
      } catch (e) {
        const btn = h('button', { type: 'button', class: 'primary', text: 'Try again' });
        btn.addEventListener('click', () => { history.replaceState(null, '', '/'); signIn().catch(showFatal); });
        setMain(h('h1', { tabindex: '-1', text: 'Sign-in failed' }), h('p', { role: 'alert', text: e?.error_description || e?.message || String(e) }), h('p', {}, btn));
        markReady('signin-error');
        return;
      }
      S.user = user;
      history.replaceState(null, '', safeReturn(user.state?.returnTo));
    } else {
      const user = await S.mgr.getUser();
      if (!user || user.expired) {
        if (sessionStorage.getItem('seatscope.signedOut')) {
          renderSignedOut();
          return;
        }
        await signIn();
        return;
      }
      S.user = user;
    }
    S.mgr.events.addAccessTokenExpired(() => signInAgain());
    showAccount();
    await loadMe();
    await route();
  }

  boot().catch(showFatal);
})();
