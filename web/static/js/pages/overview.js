// Clusters overview: one row per cluster with its health at a glance.
import { h, key, table, empty, badge, sevBadge, agoEl, clusterLink } from '../dom.js';
import { get } from '../api.js';

let filter = ''; // kept across visits of the page, like a console would

export const title = () => 'Clusters';

export function toolbar(_params, ctx) {
  return h('div', { class: 'toolbar' },
    h('label', { for: 'filter', class: 'sr' }, 'Filter clusters by name or alias'),
    h('input', {
      id: 'filter', type: 'search', placeholder: 'Filter by name or alias…', value: filter,
      oninput: (e) => { filter = e.target.value; ctx.rerender(); },
    }));
}

// Instances detached from each cluster's tree (after a failover, the old
// master), read from the cluster's tree when GET /clusters does not count
// them itself: each cluster at most every DETAIL_MS, DETAIL_MAX per poll,
// so a big fleet costs a flat trickle of requests.
const DETAIL_MS = 5000;
const DETAIL_MAX = 20;
const detached = new Map(); // cluster name -> {at, list: [{key, sev}]}

export async function load() {
  const [c, p, r] = await Promise.all([get('clusters'), get('problems'), get('recoveries')]);
  const clusters = c.clusters || [];
  const now = Date.now();
  const due = clusters.filter((x) => typeof x.detached !== 'number')
    .filter((x) => now - (detached.get(x.name)?.at || 0) >= DETAIL_MS)
    .sort((a, b) => (detached.get(a.name)?.at || 0) - (detached.get(b.name)?.at || 0)).slice(0, DETAIL_MAX);
  await Promise.all(due.map((x) => get('clusters/' + encodeURIComponent(x.name))
    .then((v) => detached.set(x.name, { at: now, list: detachedOf(v.tree) }))
    .catch(() => {})));
  const names = new Set(clusters.map((x) => x.name));
  for (const k of detached.keys()) if (!names.has(k)) detached.delete(k);
  return {
    clusters: clusters.map((x) => ({ ...x, detachedList: typeof x.detached === 'number' ? null : detached.get(x.name)?.list || null })),
    problems: p.problems || [], recoveries: r.recoveries || [],
  };
}

// detachedOf lists a tree's detached instances with how grave each is: a
// warning (someone has to rebuild or remove it), critical when it answers
// and is writable (the cluster may have two writable masters).
export function detachedOf(tree) {
  const out = [];
  const walk = (ns) => {
    for (const n of ns || []) {
      if (n.role === 'detached') {
        const reachable = n.state !== 'unreachable' && n.state !== 'unknown';
        out.push({ key: key(n.key), sev: reachable && !n.read_only ? 'critical' : 'warning', state: n.state });
      }
      walk(n.replicas);
    }
  };
  walk(tree);
  return out;
}

// detachedCount is the number the API gives, else the one read from the tree
// (null while not known yet).
const detachedCount = (c) => (typeof c.detached === 'number' ? c.detached : c.detachedList ? c.detachedList.length : null);

// rowHealth is health() made worse by detached instances, as the cluster
// page's header does: never "ok" while a detached old master exists.
function rowHealth(c, problems) {
  const base = health(c, problems);
  const n = detachedCount(c);
  if (!n || base === 'critical') return base;
  return c.detachedList && c.detachedList.some((x) => x.sev === 'critical') ? 'critical' : 'warning';
}

// health is the worst severity among the cluster's open problems. A
// cluster without a known master is critical whatever the problems say.
export function health(cluster, problems) {
  const mine = problems.filter((p) => p.cluster === cluster.name);
  if (!cluster.master || !cluster.master.host) return 'critical';
  if (mine.some((p) => p.severity === 'critical')) return 'critical';
  return mine.length ? 'warning' : 'ok';
}

export function render(d) {
  const f = filter.trim().toLowerCase();
  // Worst first: the cluster that needs a person is at the top.
  const order = { critical: 0, warning: 1, ok: 2 };
  const shown = d.clusters.filter((c) => c.name.toLowerCase().includes(f) || (c.alias || '').toLowerCase().includes(f))
    .sort((a, b) => order[rowHealth(a, d.problems)] - order[rowHealth(b, d.problems)] || a.name.localeCompare(b.name));
  if (!d.clusters.length) return empty('No clusters known yet. Discovery adds them from the configured seeds (discovery.seeds) or POST /api/v1/discover.');
  if (!shown.length) return empty(`No cluster name or alias contains “${filter}”.`);
  const rows = shown.map((c) => {
    const mine = d.problems.filter((p) => p.cluster === c.name);
    // An operator's set-writable is an audit record, not a recovery: it
    // must not hide an unacknowledged failover here.
    const last = d.recoveries.filter((r) => r.cluster === c.name && r.kind !== 'set-writable').sort((a, b) => b.id - a.id)[0];
    return h('tr', { 'data-key': 'cluster:' + c.name },
      h('td', null, sevBadge(rowHealth(c, d.problems))),
      h('td', null, clusterLink(c.name, c.alias, 'strong')),
      h('td', { class: 'mono' }, key(c.master)),
      h('td', { class: 'num' }, c.instances),
      h('td', { class: 'num detached' }, detachedCell(c)),
      h('td', null, mine.length ? problemList(mine) : h('span', { class: 'muted' }, 'none')),
      h('td', null, last ? lastRecovery(last) : h('span', { class: 'muted' }, 'never')));
  });
  return h('div', null,
    table(['Health', 'Cluster', 'Master', 'Instances', 'Detached', 'Open problems', 'Last recovery'], rows, 'grid'),
    h('p', { class: 'muted small' }, `${shown.length} of ${d.clusters.length} clusters`));
}

// detachedCell says how many instances are outside the tree, in words
// and a sign as well as colour; the tooltip names them.
function detachedCell(c) {
  const n = detachedCount(c);
  if (n === null) return h('span', { class: 'muted', title: 'not known yet' }, '…');
  if (!n) return h('span', { class: 'muted', title: 'every instance replicates in the tree' }, '0');
  const list = c.detachedList || [];
  const crit = list.some((x) => x.sev === 'critical');
  return h('a', { href: '#/cluster/' + encodeURIComponent(c.name), title: list.map((x) => `${x.key} (${x.state})`).join(', ') || 'detached from the tree' },
    badge(`${crit ? '✖' : '⚠'} ${n} detached`, crit ? 'crit' : 'warn'));
}

function problemList(ps) {
  const more = ps.length > 3 ? badge(`+${ps.length - 3} more`, 'muted') : null;
  return h('span', { class: 'badges' },
    h('a', { href: '#/problems', class: 'count' }, `${ps.length}`),
    ps.slice(0, 3).map((p) => badge(`${p.severity === 'critical' ? '✖' : '▲'} ${p.code} @ ${key(p.key)}`, p.severity === 'critical' ? 'crit' : 'warn')),
    more);
}

export function outcome(r) {
  if (!r.finished || r.finished.startsWith('0001')) return badge('⟳ running', 'info');
  return r.success ? badge('✔ succeeded', 'ok') : badge('✖ failed', 'crit');
}

function lastRecovery(r) {
  return h('span', { class: 'badges' },
    h('a', { href: '#/recovery/' + r.id }, `#${r.id}`), outcome(r),
    h('span', { class: 'muted' }, agoEl(r.started)),
    r.acknowledged ? null : badge('unacknowledged', 'warn'));
}
