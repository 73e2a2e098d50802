// Recovery history, newest first.
import { h, key, table, empty, badge, agoEl, between, time, clusterLink } from '../dom.js';
import { get } from '../api.js';
import { outcome } from './overview.js';

export const title = (cluster) => (cluster ? `Recoveries of ${cluster}` : 'Recoveries');

export function toolbar([cluster]) {
  return cluster ? h('div', { class: 'toolbar' }, h('a', { href: '#/recoveries' }, 'all clusters'),
    h('a', { href: '#/cluster/' + encodeURIComponent(cluster) }, 'topology →')) : null;
}

export async function load(cluster) {
  const res = await get('recoveries' + (cluster ? '?cluster=' + encodeURIComponent(cluster) : ''));
  return (res.recoveries || []).sort((a, b) => b.id - a.id);
}

export function render(rs) {
  if (!rs.length) return empty('No recoveries yet. Failovers and switchovers, automatic or manual, are listed here.');
  return table(['#', 'Cluster', 'Kind', 'Problem', 'Failed instance', 'Successor', 'Started', 'Took', 'Outcome', 'Acknowledged', ''],
    rs.map((r) => h('tr', { 'data-key': 'rec:' + r.id },
      h('td', null, h('a', { href: '#/recovery/' + r.id, class: 'strong' }, '#' + r.id)),
      h('td', null, clusterLink(r.cluster, r.cluster_alias)),
      h('td', null, r.kind || '—'),
      h('td', null, r.problem || '—'),
      h('td', { class: 'mono' }, key(r.failed_key)),
      h('td', { class: 'mono' }, key(r.successor)),
      h('td', { title: time(r.started) }, agoEl(r.started)),
      h('td', { class: 'num' }, r.finished ? between(r.started, r.finished) : '…'),
      h('td', null, outcome(r)),
      h('td', null, r.acknowledged ? badge('✔ by ' + (r.acked_by || '?'), 'ok') : (r.finished ? badge('▲ no', 'warn') : '—')),
      h('td', null, (r.lost || []).length || r.lost_gtids ? badge('✖ lost data', 'crit') : ''))),
    'grid');
}
