// A cluster as a replication tree of instance cards. The tree comes from
// GET /clusters/{cluster}; the facts it lacks (IO/SQL threads, data
// centre, errors) come from GET /instances/{host}/{port}, fetched every
// few seconds per instance rather than every poll, to keep the load flat.
import { h, key, badge, sevBadge, secs, lag as fmtLag, time, empty } from '../dom.js';
import { get, keyPath } from '../api.js';
import { session } from '../session.js';
import * as act from '../actions.js';
import { health } from './overview.js';
import { historyStrip } from '../history.js';
import { lagHistory, lagPanel } from '../lag.js';

const DETAIL_MS = 5000;
const LAG_WARN_S = 10; // a link lagging more than this is drawn as lagging
const details = new Map(); // host:port -> {at, state, data}
const RECS_MS = 5000;
// The cluster's recoveries, for the header and the history strip:
// fetched on each visit, when the tree changes shape (a new master, an
// instance detached or rejoined: a recovery ran) and every RECS_MS.
let recs = { cluster: '', at: 0, shape: '', list: [] };

export const title = (name) => `Cluster ${name}`;

// heading names the cluster with its alias once the data says it (the
// route may carry either: the API resolves an alias).
export function heading(d) {
  const c = d.cluster;
  return c.alias ? `Cluster ${c.alias} (${c.name})` : `Cluster ${c.name}`;
}

export function toolbar([name], ctx) {
  recs.at = 0; // a new visit: fetch the history afresh
  lastName = '';
  lastAlias = '';
  const bar = h('div', { class: 'toolbar' },
    h('a', { href: '#/clusters' }, '← all clusters'));
  if (session.can('operator')) {
    bar.append(h('button', { type: 'button', onclick: () => act.switchover(named(name), replicasOf(ctx), '', ctx.refresh) }, '⇄ Switch over…'));
  }
  if (session.can('admin')) {
    bar.append(h('button', { type: 'button', class: 'danger-outline', onclick: () => act.failover(named(name), replicasOf(ctx), '', ctx.refresh) }, '⚡ Fail over…'));
  }
  if (session.can('operator')) {
    // The alias as last painted: the dialog starts from it.
    bar.append(h('button', { type: 'button', onclick: () => act.alias(lastName || name, lastAlias, ctx.refresh) }, '✎ Alias…'));
  }
  return bar;
}

let lastTree = []; // the latest tree, for the toolbar's candidate lists
let lastMaster = null;
let lastName = ''; // the cluster's name (the route may hold its alias)
let lastAlias = '';

// replicasOf lists the candidates the API accepts for a switchover or a
// failover: the master's own replicas (coordinator checkCandidate answers
// 400 to anything else, such as a replica of an intermediate master).
function replicasOf() {
  const root = lastTree.find((n) => lastMaster && key(n.key) === key(lastMaster));
  return (root?.replicas || []).map((n) => n.key);
}

// named is the cluster as last painted (the route may hold its alias),
// for the dialogs' titles.
const named = (route) => ({ name: lastName || route, alias: lastName ? lastAlias : '' });

function flatten(nodes, out = []) {
  for (const n of nodes || []) { out.push(n); flatten(n.replicas, out); }
  return out;
}

export async function load(name) {
  const c = await get('clusters/' + encodeURIComponent(name));
  const nodes = flatten(c.tree);
  const now = Date.now();
  // Refresh an instance's details when they are old or its state changed,
  // so a break shows its error at once.
  // When the tree itself carries the thread states (asked of the API),
  // the per-instance fetches are not needed.
  const inTree = nodes.every((n) => 'io_running' in n);
  const due = inTree ? [] : nodes.filter((n) => {
    const d = details.get(key(n.key));
    return !d || now - d.at > DETAIL_MS || d.state !== n.state;
  }).slice(0, 50);
  await Promise.all(due.map((n) => get(keyPath(n.key))
    .then((d) => details.set(key(n.key), { at: now, state: n.state, data: slim(d) }))
    .catch(() => {})));
  const extra = {};
  for (const n of nodes) extra[key(n.key)] = inTree ? fromTree(n) : details.get(key(n.key))?.data || null;
  const shape = key(c.master) + ' ' + nodes.map((n) => key(n.key) + '=' + n.role).join(',');
  if (recs.cluster !== name || recs.shape !== shape || now - recs.at > RECS_MS) {
    try {
      const r = await get('recoveries?cluster=' + encodeURIComponent(name));
      recs = { cluster: name, at: now, shape, list: (r.recoveries || []).map(slimRec).sort((a, b) => a.id - b.id) };
    } catch (e) {
      if (recs.cluster !== name) recs = { cluster: name, at: 0, shape: '', list: [] };
    }
  }
  const lag = await lagHistory(c.name, nodes.map((n) => key(n.key)).sort().join(','), now);
  return { cluster: c, extra, recs: recs.list, lag };
}

// fromTree reads the same facts from a tree node that has them.
function fromTree(n) {
  return {
    dc: n.data_center || '', error: n.last_error || '',
    repl: n.role === 'master' && !n.io_running ? null : {
      io: n.io_running, sql: n.sql_running, io_error: n.last_io_error || '', sql_error: n.last_sql_error || '', delay: n.sql_delay || 0,
    },
  };
}

// slimRec keeps what the header and the history strip use of a recovery.
function slimRec(r) {
  return {
    id: r.id, kind: r.kind || '', problem: r.problem || '', failed_key: r.failed_key, successor: r.successor || r.promoting || null,
    started: r.started, finished: r.finished || '', success: !!r.success, error: r.error || '',
    fenced: !!r.fenced, rejoined: !!r.rejoined, acknowledged: !!r.acknowledged,
  };
}

// slim keeps the facts the cards show, leaving out ones that change on
// every probe (last_seen), which would repaint the page every second.
function slim(v) {
  const i = v.instance || {};
  const r = i.replication || null;
  return {
    dc: i.data_center || '', flavor: i.flavor || '', server_id: i.server_id, error: i.last_error || '',
    semi: i.semi_sync || {},
    repl: r && {
      source: { host: r.source_host, port: r.source_port }, io: r.io_running, sql: r.sql_running,
      io_error: r.last_io_error || '', sql_error: r.last_sql_error || '', delay: r.sql_delay || 0, using_gtid: r.using_gtid || '',
    },
  };
}

export function render(d, [name], ctx) {
  const c = d.cluster;
  lastTree = c.tree || [];
  lastMaster = c.master;
  lastName = c.name;
  lastAlias = c.alias || '';
  const probs = c.problems || [];
  const byKey = {};
  for (const p of probs) (byKey[key(p.key)] ||= []).push(p);
  const outside = detachedNotes(c, d.recs || []);
  const sev = worse(health(c, probs), ...outside.map((o) => o.sev));
  return h('div', null,
    h('div', { class: 'summary' },
      sevBadge(sev),
      c.alias ? h('span', { class: 'alias', title: 'alias of ' + c.name }, '“' + c.alias + '”') : null,
      h('span', null, 'master ', h('strong', { class: 'mono' }, key(c.master))),
      h('span', null, `${c.instances} instances`),
      outside.length ? h('span', { class: 'detached-count' }, badge(`⚠ ${outside.length} detached`, 'warn', 'instances outside the replication tree')) : null,
      h('span', null, probs.length ? `${probs.length} open problems` : 'no open problems'),
      h('a', { href: '#/problems/' + encodeURIComponent(c.name) }, 'problems →'),
      h('a', { href: '#/recoveries/' + encodeURIComponent(c.name) }, 'recoveries →')),
    outside.length ? h('ul', { class: 'problem-strip detached-strip' }, outside.map((o) => o.node)) : null,
    // What needs a person first, then the pictures, then the tree.
    probs.length ? problemStrip(probs, c.name) : null,
    historyStrip(d.recs || [], probs, c.name),
    d.lag ? lagPanel(d.lag, flatten(c.tree).map((n) => key(n.key))) : null,
    c.tree && c.tree.length
      ? h('div', { class: 'tree-wrap', 'data-sk': 'tree' }, h('ul', { class: 'tree' }, c.tree.map((n) => branch(n, null, d.extra, byKey, c, ctx))))
      : empty('This cluster has no instances.'),
    legend());
}

const SEV = ['ok', 'warning', 'critical'];
const worse = (...sevs) => sevs.reduce((a, b) => (SEV.indexOf(b) > SEV.indexOf(a) ? b : a), 'ok');

// detachedNotes says, one line each, what the instances outside the tree
// are. After a failover the old master stays in the cluster, replicating
// from nobody: the header must not say "ok" while it is a red card, but
// it is not a problem of the new master either. It is a warning: a person
// has to rebuild or remove it. One that answers and is writable is
// critical: the cluster may have two writable masters.
function detachedNotes(c, recs) {
  const out = [];
  for (const n of flatten(c.tree)) {
    if (n.role !== 'detached') continue;
    const k = key(n.key);
    const rec = [...recs].reverse().find((r) => key(r.failed_key) === k && r.successor && key(r.successor) !== '—');
    const reachable = n.state !== 'unreachable' && n.state !== 'unknown';
    const sev = reachable && !n.read_only ? 'critical' : 'warning';
    const state = n.state === 'unreachable' ? 'unreachable' : n.state === 'unknown' ? 'not probed yet'
      : n.read_only ? 'answers, read-only' : 'answers and is WRITABLE';
    const what = rec ? 'old master' : 'instance';
    const fate = rec ? [', replaced by ', h('span', { class: 'mono' }, key(rec.successor)), ' in ',
      h('a', { href: '#/recovery/' + rec.id }, 'recovery #' + rec.id),
      rec.rejoined ? ' (rejoined)' : rec.fenced ? ' (fenced)' : ' (not seen again yet)'] : ': replicates from nobody in this cluster';
    out.push({
      sev,
      node: h('li', { class: sev === 'critical' ? 'crit' : 'warn' }, sevBadge(sev), ' ',
        h('strong', null, `${what} `, h('span', { class: 'mono' }, k), ' detached'), ` — ${state}`, fate,
        '. It stays in the cluster until it rejoins or is removed.'),
    });
  }
  return out;
}

// problemStrip lists the cluster's problems one line each (the full text
// is in the tooltip and on the problems page), critical first, so the
// tree stays on screen.
const STRIP_MAX = 6;
function problemStrip(probs, cluster) {
  const sorted = [...probs].sort((a, b) => (a.severity === 'critical' ? 0 : 1) - (b.severity === 'critical' ? 0 : 1));
  const more = sorted.length - STRIP_MAX;
  return h('ul', { class: 'problem-strip' }, sorted.slice(0, STRIP_MAX).map((p) => h('li', { class: p.severity === 'critical' ? 'crit' : 'warn', title: p.description || '' },
    sevBadge(p.severity), ' ', h('strong', null, p.code), ' on ', h('span', { class: 'mono' }, key(p.key)),
    p.description ? h('span', { class: 'muted' }, ' — ' + p.description) : null)),
  more > 0 ? h('li', null, h('a', { href: '#/problems/' + encodeURIComponent(cluster) }, `+ ${more} more problems →`)) : null);
}

// linkState classifies the replication link into the card's parent. Each
// state has a word and an icon, and a line style in the CSS.
function linkState(n, x) {
  const lag = n.lag_seconds;
  switch (n.state) {
    case 'unreachable': return ['broken', '✖ unreachable'];
    case 'unknown': return ['unknown', '? not probed yet'];
    case 'replication_broken': return ['broken', '✖ replication broken'];
    case 'replication_stopped': return ['stopped', '■ replication stopped'];
    case 'replication_connecting': return ['broken', '… IO connecting'];
  }
  if (x && x.repl && x.repl.delay) return ['ok', `✔ replicating (delayed ${secs(x.repl.delay)})`];
  if (lag !== null && lag !== undefined && lag > LAG_WARN_S) return ['lagging', `▲ lagging ${fmtLag(lag)}`];
  return ['ok', `✔ replicating${lag !== null && lag !== undefined ? ', lag ' + fmtLag(lag) : ''}`];
}

function branch(n, parent, extra, byKey, c, ctx) {
  const x = extra[key(n.key)];
  const [ls, ltext] = parent ? linkState(n, x) : ['root', ''];
  return h('li', { class: 'link-' + ls },
    card(n, parent, x, byKey[key(n.key)] || [], ltext, ls, c, ctx),
    n.replicas && n.replicas.length ? h('ul', null, n.replicas.map((r) => branch(r, n, extra, byKey, c, ctx))) : null);
}

// Promotion rules with a sign, so must_not stands out without colour.
const RULE = { prefer: '▲ prefer', neutral: 'neutral', prefer_not: '▽ prefer_not', must_not: '⊘ must_not' };

const ROLE = { master: '★ MASTER', intermediate_master: '◆ INTERMEDIATE', replica: 'REPLICA', detached: '⚠ DETACHED' };

function card(n, parent, x, probs, ltext, ls, c, ctx) {
  const k = key(n.key);
  const repl = x && x.repl;
  const worst = probs.some((p) => p.severity === 'critical') ? 'crit' : probs.length ? 'warn' : '';
  return h('article', { class: `card role-${n.role} state-${n.state} ${worst}`, 'data-key': k, 'aria-label': `${n.role} ${k}` },
    h('header', null,
      h('span', { class: 'role-tag' }, ROLE[n.role] || n.role),
      h('a', { class: 'addr', href: `#/instance/${encodeURIComponent(n.key.host)}/${n.key.port}` }, k),
      n.read_only ? badge('RO', 'muted', 'read_only=ON') : badge('RW', n.role === 'master' ? 'info' : 'warn', 'read_only=OFF: writable'),
      x && x.dc ? badge('DC ' + x.dc, 'muted', 'data centre') : null,
      n.downtime ? badge('‖ downtimed', 'info', `until ${time(n.downtime.until)}: ${n.downtime.reason}`) : null,
      actions(n, parent, c, ctx)),
    parent ? h('div', { class: 'link-text link-' + ls }, ltext, ' from ', h('span', { class: 'mono' }, key(parent.key))) : null,
    h('div', { class: 'facts-row' },
      fact('version', n.version || '—'),
      n.role === 'master' && !parent ? null : repl ? fact('IO / SQL', `${repl.io || '—'} / ${repl.sql ? 'Yes' : 'No'}`)
        : x && !parent ? fact('IO / SQL', h('span', { class: 'muted', title: 'no replication configured' }, 'n/a')) : fact('IO / SQL', '…', 'pending'),
      n.role === 'master' ? null : fact('lag', lagText(n)),
      fact('GTID', h('span', { class: 'mono gtid', title: n.gtid || '' }, n.gtid || '—')),
      fact('promotion', RULE[n.promotion_rule] || n.promotion_rule || 'neutral')),
    n.downtime ? h('div', { class: 'note' }, `‖ Downtimed until ${time(n.downtime.until)} by ${n.downtime.owner}: ${n.downtime.reason}`) : null,
    x && x.error ? h('div', { class: 'note bad' }, '✖ probe: ' + x.error) : null,
    repl && repl.io_error ? h('div', { class: 'note bad' }, '✖ IO: ' + repl.io_error) : null,
    repl && repl.sql_error ? h('div', { class: 'note bad' }, '✖ SQL: ' + repl.sql_error) : null,
    probs.length ? h('div', { class: 'badges' }, probs.map((p) => badge(`${p.severity === 'critical' ? '✖' : '▲'} ${p.code}`, p.severity === 'critical' ? 'crit' : 'warn', p.description))) : null);
}

// lagText is the card's lag. The server reports NULL when it cannot say
// (threads stopped, or not a replica at all), and an unreachable instance
// reports nothing: words, not a raw NULL.
function lagText(n) {
  const v = n.lag_seconds;
  if (v !== null && v !== undefined) return fmtLag(v);
  if (n.role === 'detached' || n.state === 'unreachable' || n.state === 'unknown') {
    return h('span', { class: 'muted', title: n.state === 'unreachable' ? 'unreachable: no probe answer' : 'not replicating from this cluster' }, 'n/a');
  }
  return h('span', { class: 'muted', title: 'Seconds_Behind_Master is NULL: replication is not running' }, '— (not running)');
}

function fact(label, v, cls) {
  return h('div', { class: 'fact' }, h('span', { class: 'fl' }, label), h('span', { class: 'fv ' + (cls || '') }, v));
}

// canMakeMaster mirrors what the API accepts for a switchover to n: a
// direct replica of the cluster's master (else 400, coordinator
// checkCandidate), that master answering and writable (else 409: "use a
// failover" / "is read-only"). n itself must replicate fine.
function canMakeMaster(n, parent, c) {
  return !!parent && parent.role === 'master' && key(parent.key) === key(c.master) &&
    parent.state === 'ok' && !parent.read_only && n.role !== 'master' && n.role !== 'detached' && n.state === 'ok';
}

function actions(n, parent, c, ctx) {
  if (!session.can('operator')) return null;
  const root = (c.tree || []).find((m) => key(m.key) === key(c.master));
  const others = (root?.replicas || []).map((m) => m.key);
  return h('div', { class: 'actions' },
    n.downtime
      ? h('button', { type: 'button', class: 'small', onclick: () => act.endDowntime(n.key, n.downtime, ctx.refresh) }, 'End downtime')
      : h('button', { type: 'button', class: 'small', onclick: () => act.beginDowntime(n.key, ctx.refresh) }, 'Downtime…'),
    h('button', { type: 'button', class: 'small', onclick: () => act.promotionRule(n.key, n.promotion_rule || 'neutral', ctx.refresh) }, 'Promotion rule…'),
    canMakeMaster(n, parent, c)
      ? h('button', { type: 'button', class: 'small', onclick: () => act.switchover({ name: c.name, alias: c.alias || '' }, others, key(n.key), ctx.refresh) }, '⇄ Make master…')
      : null,
    // A master that came back read-only (restarted without a failover):
    // admins may let it take writes again; the API refuses if unsafe.
    n.role === 'master' && n.read_only && n.state === 'ok' && session.can('admin')
      ? h('button', { type: 'button', class: 'small', onclick: () => act.makeWritable(n.key, ctx.refresh) }, 'Make writable…')
      : null);
}

function legend() {
  return h('p', { class: 'legend muted small' },
    'Links: ', h('span', { class: 'lg link-ok' }, '—— ✔ replicating'), ' ',
    h('span', { class: 'lg link-lagging' }, `- - ▲ lagging > ${LAG_WARN_S}s`), ' ',
    h('span', { class: 'lg link-stopped' }, '- - ■ stopped'), ' ',
    h('span', { class: 'lg link-broken' }, '··· ✖ broken / unreachable'),
    '. Updated every second; IO/SQL threads and errors every 5 s. Lag and GTID come from the probes of the node serving this page (once a second).');
}
