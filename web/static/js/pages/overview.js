// Clusters overview: one row per cluster with its health at a glance.
import { h, key, table, empty, badge, sevBadge, agoEl } from '../dom.js';
import { get } from '../api.js';

let filter = ''; // kept across visits of the page, like a console would

export const title = () => 'Clusters';

export function toolbar(_params, ctx) {
  return h('div', { class: 'toolbar' },
    h('label', { for: 'filter', class: 'sr' }, 'Filter clusters by name'),
    h('input', {
      id: 'filter', type: 'search', placeholder: 'Filter by name…', value: filter,
      oninput: (e) => { filter = e.target.value; ctx.rerender(); },
    }));
}

export async function load() {
  const [c, p, r] = await Promise.all([get('clusters'), get('problems'), get('recoveries')]);
  return { clusters: c.clusters || [], problems: p.problems || [], recoveries: r.recoveries || [] };
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
  const shown = d.clusters.filter((c) => c.name.toLowerCase().includes(f))
    .sort((a, b) => order[health(a, d.problems)] - order[health(b, d.problems)] || a.name.localeCompare(b.name));
  if (!d.clusters.length) return empty('No clusters known yet. Discovery adds them from the configured seeds (discovery.seeds) or POST /api/v1/discover.');
  if (!shown.length) return empty(`No cluster name contains “${filter}”.`);
  const rows = shown.map((c) => {
    const mine = d.problems.filter((p) => p.cluster === c.name);
    // An operator's set-writable is an audit record, not a recovery: it
    // must not hide an unacknowledged failover here.
    const last = d.recoveries.filter((r) => r.cluster === c.name && r.kind !== 'set-writable').sort((a, b) => b.id - a.id)[0];
    return h('tr', { 'data-key': 'cluster:' + c.name },
      h('td', null, sevBadge(health(c, d.problems))),
      h('td', null, h('a', { href: '#/cluster/' + encodeURIComponent(c.name), class: 'strong' }, c.name)),
      h('td', { class: 'mono' }, key(c.master)),
      h('td', { class: 'num' }, c.instances),
      h('td', null, mine.length ? problemList(mine) : h('span', { class: 'muted' }, 'none')),
      h('td', null, last ? lastRecovery(last) : h('span', { class: 'muted' }, 'never')));
  });
  return h('div', null,
    table(['Health', 'Cluster', 'Master', 'Instances', 'Open problems', 'Last recovery'], rows, 'grid'),
    h('p', { class: 'muted small' }, `${shown.length} of ${d.clusters.length} clusters`));
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
