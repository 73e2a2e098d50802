// Entry point: hash router, the 1 s poll loop and the header. Pages are
// modules with load() (fetch) and render() (build DOM); the loop repaints
// a page only when its data changed, and keeps focus, open <details> and
// scroll positions across repaints so live updates never lose the
// user's place. Dialogs live outside <main> and are never repainted.
import { h, ago } from './dom.js';
import { get, ApiError } from './api.js';
import { session, restore, signIn, signOut } from './session.js';
import * as overview from './pages/overview.js';
import * as topology from './pages/topology.js';
import * as instance from './pages/instance.js';
import * as problems from './pages/problems.js';
import * as recoveries from './pages/recoveries.js';
import * as recovery from './pages/recovery.js';
import * as coordinators from './pages/coordinators.js';

const POLL_MS = 1000;

const routes = [
  [/^#\/clusters$/, overview, 'clusters'],
  [/^#\/cluster\/([^/]+)$/, topology, 'clusters'],
  [/^#\/instance\/([^/]+)\/(\d+)$/, instance, 'clusters'],
  [/^#\/problems(?:\/([^/]+))?$/, problems, 'problems'],
  [/^#\/recoveries(?:\/([^/]+))?$/, recoveries, 'recoveries'],
  [/^#\/recovery\/(\d+)$/, recovery, 'recoveries'],
  [/^#\/coordinators$/, coordinators, 'coordinators'],
];

const main = document.getElementById('main');
const status = document.getElementById('status');
const who = document.getElementById('who');
let view = null; // the page being shown: {page, params, gen, json, data, body}
let gen = 0;
let timer = null;
let lastOK = 0;
let polls = 0; // successful polls, exposed on <body data-polls> for tests and debugging

const ctx = {
  rerender: () => paint(),
  refresh: () => poll(),
};

function route() {
  const hash = location.hash || '#/clusters';
  for (const [re, page, nav] of routes) {
    const m = hash.match(re);
    if (m) return { page, nav, params: m.slice(1).map((p) => (p === undefined ? '' : decodeURIComponent(p))) };
  }
  return { page: null, nav: '', params: [] };
}

// show mounts the page for the current hash and starts polling it.
function show() {
  clearTimeout(timer);
  const r = route();
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!r.page) {
    gen++;
    view = null;
    main.replaceChildren(h('section', { class: 'panel' }, h('h1', null, 'Not found'),
      h('p', null, 'No page at ', location.hash, '. '), h('a', { href: '#/clusters' }, 'Go to clusters')));
    return;
  }
  gen++;
  const body = h('div', { class: 'page-body' }, h('p', { class: 'loading' }, 'Loading…'));
  const title = r.page.title(...r.params);
  document.title = title + ' · Warden';
  main.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', null, title), r.page.toolbar ? r.page.toolbar(r.params, ctx) : null),
    body);
  view = { page: r.page, params: r.params, gen, json: null, data: null, body };
  poll();
}

// poll fetches the current page's data. One poll runs at a time: a
// refresh asked for while one is in flight (after an action, or a new page
// mounted) runs right after it, so chains of timers never multiply.
let inflight = false;
let again = false;

async function poll() {
  clearTimeout(timer);
  if (inflight) {
    again = true;
    return;
  }
  inflight = true;
  try {
    await pollOnce();
  } finally {
    inflight = false;
  }
  if (again) {
    again = false;
    poll();
  } else if (view) {
    timer = setTimeout(poll, POLL_MS);
  }
}

async function pollOnce() {
  const v = view;
  if (!v) return;
  const g = v.gen;
  try {
    const [data, st, mode] = await Promise.all([
      v.page.load(...v.params),
      get('coordinators'),
      get('recovery-mode').catch(() => null),
    ]);
    if (g !== gen) return;
    lastOK = Date.now();
    document.body.dataset.polls = String(++polls);
    header(st, mode);
    main.classList.remove('stale');
    const json = JSON.stringify(data);
    if (json !== v.json) {
      v.json = json;
      v.data = data;
      paint();
    }
  } catch (e) {
    if (g !== gen) return;
    if (e instanceof ApiError && e.status === 401) {
      signInPage('Your token was not accepted (or has been removed). Sign in again.');
      return;
    }
    stale(e);
    if (v.data === null) {
      v.body.replaceChildren(h('div', { class: 'error', role: 'alert' }, e.text || String(e)));
    }
  }
}

// paint re-renders the current page from its last data, restoring the
// user's focus, open disclosures and scroll offsets.
function paint() {
  const v = view;
  if (!v || v.data === null) return;
  const body = v.body;
  const focus = focusKey(document.activeElement, body);
  const open = [...body.querySelectorAll('details[open][data-ok]')].map((d) => d.dataset.ok);
  const scrolls = [...body.querySelectorAll('[data-sk]')].map((e) => [e.dataset.sk, e.scrollLeft, e.scrollTop]);
  body.replaceChildren(v.page.render(v.data, v.params, ctx));
  // A page may name its subject better once it has the data (a cluster's
  // alias): the heading and the tab's title follow.
  if (v.page.heading) {
    const title = v.page.heading(v.data, v.params);
    const h1 = main.querySelector('.page-head h1');
    if (h1 && h1.textContent !== title) h1.textContent = title;
    document.title = title + ' · Warden';
  }
  for (const k of open) body.querySelector(`details[data-ok="${CSS.escape(k)}"]`)?.setAttribute('open', '');
  for (const [k, x, y] of scrolls) {
    const e = body.querySelector(`[data-sk="${CSS.escape(k)}"]`);
    if (e) { e.scrollLeft = x; e.scrollTop = y; }
  }
  if (focus) refocus(body, focus);
  tickTimes();
}

// focusKey names the focused control by its enclosing [data-key] and its
// own tag and text, which survive a repaint (the element itself does not).
function focusKey(el, body) {
  if (!el || !body.contains(el) || el === body) return null;
  return { scope: el.closest('[data-key]')?.dataset.key || '', tag: el.tagName, text: el.textContent };
}

function refocus(body, f) {
  const scope = f.scope ? body.querySelector(`[data-key="${CSS.escape(f.scope)}"]`) : body;
  if (!scope) return;
  for (const el of scope.querySelectorAll(f.tag)) {
    if (el.textContent === f.text) { el.focus({ preventScroll: true }); return; }
  }
}

// header shows this node, the leader and whether the data is fresh.
function header(st, mode) {
  const q = st.has_quorum ? '✔ quorum' : '✖ no quorum';
  const leader = st.leader_id ? `leader ${st.leader_id}` : '✖ no leader';
  // replaceChildren would print a null as "null": filter the optional parts.
  status.replaceChildren(...[
    h('span', { class: 'live', title: 'Updated every second' }, '● live'),
    h('span', null, `node ${st.node_id} (${st.state})`),
    h('span', { class: st.leader_id ? '' : 'bad' }, leader),
    h('span', null, `term ${st.term}`),
    h('span', { class: st.has_quorum ? '' : 'bad' }, q),
    mode && mode.automatic === false ? h('span', { class: 'badge warn' }, '‖ automatic recovery OFF') : null,
  ].filter(Boolean));
}

// stale says the page stopped updating and greys it out, so nobody acts
// on an old picture without noticing.
function stale(e) {
  const since = lastOK ? `showing data from ${ago(new Date(lastOK).toISOString())}` : 'no data yet';
  status.replaceChildren(h('span', { class: 'badge crit', role: 'alert' },
    `⚠ not updating, ${since}: ${e.text || e}`));
  main.classList.add('stale');
}

function whoami() {
  who.replaceChildren();
  if (session.role === 'none') return;
  const label = session.authOff ? 'auth off · admin' : `${session.name ? session.name + ' · ' : ''}${session.role}`;
  who.append(h('span', { class: 'role', title: 'Your role decides which actions you see' }, label));
  if (!session.authOff) {
    who.append(h('button', { type: 'button', class: 'quiet', onclick: () => { signOut(); signInPage(''); } }, 'Sign out'));
  }
}

// signInPage replaces the page with the token form and stops polling.
function signInPage(msg) {
  clearTimeout(timer);
  gen++;
  view = null;
  whoami();
  status.replaceChildren();
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', size: 40 });
  const err = h('p', { class: msg ? 'error' : 'hidden', role: 'alert' }, msg);
  const form = h('form', {
    class: 'panel signin',
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.className = 'hidden';
      try {
        await signIn(input.value.trim());
        whoami();
        show();
      } catch (e) {
        err.textContent = e.status === 401 ? 'Token not accepted: ' + e.message : e.text || String(e);
        err.className = 'error';
      }
    },
  },
  h('h1', null, 'Sign in'),
  h('p', null, 'Paste an API token. It is kept in this browser tab only (session storage) and sent to this Warden node alone.'),
  h('label', { for: 'token' }, 'API token'), input,
  h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
  err);
  main.replaceChildren(form);
  input.focus();
}

// tickTimes refreshes every "… ago" text without repainting the page.
function tickTimes() {
  for (const el of document.querySelectorAll('time[data-ago]')) {
    el.textContent = ago(el.getAttribute('datetime'));
  }
}

async function start() {
  try {
    if (!(await restore())) {
      signInPage('');
      return;
    }
  } catch (e) {
    main.replaceChildren(h('div', { class: 'error', role: 'alert' }, e.text || String(e)));
    setTimeout(start, 2000);
    return;
  }
  whoami();
  show();
}

// Navigating (a link in a dialog's result, the back button) leaves the
// page a dialog was about, so it closes; polling never does.
window.addEventListener('hashchange', () => {
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  if (session.role !== 'none') show();
});
setInterval(tickTimes, 1000);
start();
