// Current problems with the evidence behind each: the coordinators' votes
// against the quorum, and what the instance's replicas see.
import { h, key, table, empty, badge, sevBadge, agoEl, lag, nanos, time, clusterLink } from '../dom.js';
import { get } from '../api.js';

export const title = (cluster) => (cluster ? `Problems in ${cluster}` : 'Problems');

export function toolbar([cluster]) {
  return cluster ? h('div', { class: 'toolbar' }, h('a', { href: '#/problems' }, 'all clusters'),
    h('a', { href: '#/cluster/' + encodeURIComponent(cluster) }, 'topology →')) : null;
}

export async function load(cluster) {
  const res = await get('problems' + (cluster ? '?cluster=' + encodeURIComponent(cluster) : ''));
  return res.problems || [];
}

const rank = (p) => (p.severity === 'critical' ? 0 : p.severity === 'warning' ? 1 : 2);

export function render(ps) {
  if (!ps.length) return empty('✔ No open problems.');
  const sorted = [...ps].sort((a, b) => rank(a) - rank(b) || a.cluster.localeCompare(b.cluster));
  return h('div', { class: 'stack' }, sorted.map(problem));
}

function problem(p) {
  const id = `${p.cluster}/${key(p.key)}/${p.code}`;
  return h('article', { class: 'panel problem ' + (p.severity === 'critical' ? 'crit' : 'warn'), 'data-key': id },
    h('header', null,
      sevBadge(p.severity), h('strong', null, p.code), ' on ', h('span', { class: 'mono' }, key(p.key)),
      ' in ', clusterLink(p.cluster, p.cluster_alias),
      h('span', { class: 'muted right' }, 'since ', agoEl(p.since))),
    p.description ? h('p', null, p.description) : null,
    p.fix ? h('p', null, h('strong', null, 'Fix: '), p.fix) : null,
    p.related && p.related.length ? h('p', { class: 'small' }, 'Involves ', p.related.map((k) => h('span', { class: 'mono chip' }, key(k)))) : null,
    why(p));
}

// why shows the evidence, when the problem came from the quorum analysis.
function why(p) {
  const down = p.votes_down || [];
  const up = p.votes_up || [];
  const votes = Object.entries(p.votes || {});
  const replicas = p.replicas || [];
  const current = p.current_replicas || [];
  if (!down.length && !up.length && !votes.length && !replicas.length && !current.length) return null;
  // Open by default only where the quorum analysis voted: that is the
  // evidence behind a failover; the rest is background.
  return h('details', { open: down.length || up.length ? true : null, 'data-ok': 'why:' + p.cluster + key(p.key) + p.code },
    h('summary', null, 'Why Warden thinks so'),
    down.length || up.length || p.quorum ? h('p', { class: 'votes' },
      h('strong', null, `${down.length} of ${down.length + up.length} coordinators`), ' cannot reach it',
      p.quorum ? ` (quorum to act: ${p.quorum}) ` : ' ',
      p.quorum ? (down.length >= p.quorum ? badge('■ quorum reached: the coordinators agree it is down', 'crit') : badge('□ quorum not reached: no action', 'muted')) : null,
      h('br'),
      down.map((n) => badge('✖ ' + n + ': unreachable', 'crit')), ' ',
      up.map((n) => badge('✔ ' + n + ': reachable', 'ok'))) : null,
    votes.length ? h('div', null, h('h4', null, 'Each coordinator\'s verdict'),
      table(['Coordinator', 'Verdict', 'Since', 'Error'], votes.sort((a, b) => a[0].localeCompare(b[0])).map(([node, v]) => h('tr', null,
        h('td', null, node),
        h('td', null, v.reachable ? badge('✔ reachable', 'ok') : badge('✖ unreachable', 'crit')),
        h('td', null, time(v.since)), h('td', { class: 'mono small' }, v.error || '')
      )), 'grid compact')) : null,
    replicas.length ? h('div', null, h('h4', null, 'Its replicas\' view, as the analysis saw it'), replicaTable(replicas)) : null,
    current.length ? h('div', null, h('h4', null, 'Its replicas now'), replicaTable(current)) : null);
}

// replicaTable renders both shapes the API has used for a replica's view:
// the analysis' ReplicaView (source_matches, since_last_receive) and the
// API's ReplicaLink (sql_running, lag, errors).
export function replicaTable(rs) {
  const has = (f) => rs.some((r) => r[f] !== undefined);
  const cols = [
    ['Replica', (r) => h('span', { class: 'mono' }, key(r.key))],
    ['Reachable', (r) => (r.reachable ? '✔ yes' : '✖ no')],
    has('source_matches') && ['Replicates from it', (r) => (r.source_matches ? '✔ yes' : '✖ no')],
    ['IO thread', (r) => r.io_running || '—'],
    has('sql_running') && ['SQL thread', (r) => (r.sql_running ? 'Yes' : 'No')],
    has('lag_seconds') && ['Lag', (r) => lag(r.lag_seconds)],
    has('since_last_receive') && ['Last received', (r) => nanos(r.since_last_receive) + ' ago'],
    has('heartbeat_period') && ['Heartbeat', (r) => nanos(r.heartbeat_period)],
    ['Error', (r) => h('span', { class: 'mono small' }, [r.error, r.last_io_error, r.last_sql_error, r.last_io_errno ? 'IO errno ' + r.last_io_errno : ''].filter(Boolean).join('; '))],
  ].filter(Boolean);
  return table(cols.map((c) => c[0]), rs.map((r) => h('tr', null, cols.map((c) => h('td', null, c[1](r))))), 'grid compact');
}
