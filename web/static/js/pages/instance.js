// Every fact Warden holds on one instance, and each coordinator's verdict.
import { h, key, table, badge, sevBadge, dl, time, agoEl, lag, clusterLink } from '../dom.js';
import { get } from '../api.js';
import { session } from '../session.js';
import * as act from '../actions.js';

export const title = (host, port) => `Instance ${host}:${port}`;

export function toolbar() {
  return h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'quiet', onclick: () => history.back() }, '← back'));
}

export const load = (host, port) => get(`instances/${encodeURIComponent(host)}/${port}`);

export function render(v, _p, ctx) {
  const i = v.instance || {};
  const r = i.replication;
  return h('div', { class: 'stack' },
    h('section', { class: 'panel', 'data-key': 'instance' },
      actions(v, ctx),
      h('div', { class: 'summary' },
        h('strong', null, v.role), badge(v.state, v.state === 'ok' ? 'ok' : 'warn'),
        v.cluster ? h('span', null, 'cluster ', clusterLink(v.cluster, v.cluster_alias)) : null,
        // The replicated facts change only when something changes, so their
        // time is when they were recorded, not when the server was last seen.
        h('span', { class: 'muted' }, 'facts recorded ', agoEl(i.last_seen))),
      dl([
        ['Version', `${i.version || '—'} ${i.version_comment || ''}`],
        ['Flavour', i.flavor || '—'], ['server_id', String(i.server_id ?? '—')],
        ['read_only', i.read_only ? 'ON' : 'OFF'], ['Binlog', i.log_bin ? [i.binlog_format, i.binlog_file ? `${i.binlog_file}:${i.binlog_pos}` : ''].filter(Boolean).join(' ') : 'off'],
        ['log_replica_updates', i.log_replica_updates ? 'ON' : 'OFF'],
        ['GTID', h('span', { class: 'mono' }, i.gtid_current_pos || i.gtid_executed || '—')],
        ['Promotion rule', v.promotion_rule], ['Data centre', i.data_center || '—'],
        ['Downtime', v.downtime ? `until ${time(v.downtime.until)}: ${v.downtime.reason}` : 'none'],
        i.last_error ? ['Last error', h('span', { class: 'bad mono' }, i.last_error)] : null,
      ], 'cols')),
    r ? h('section', { class: 'panel' }, h('h2', null, 'Replication'), dl([
      ['Source', h('span', { class: 'mono' }, key({ host: r.source_host, port: r.source_port }))],
      ['IO / SQL', `${r.io_running} / ${r.sql_running ? 'Yes' : 'No'}`],
      ['Lag', lag(r.seconds_behind)],
      ['Using GTID', r.using_gtid || (r.auto_position ? 'auto position' : '—')],
      r.last_io_error ? ['IO error', h('span', { class: 'bad mono' }, `${r.last_io_errno}: ${r.last_io_error}`)] : null,
      r.last_sql_error ? ['SQL error', h('span', { class: 'bad mono' }, `${r.last_sql_errno}: ${r.last_sql_error}`)] : null,
      ['IO state', r.io_state || '—'],
    ], 'cols')) : null,
    h('section', { class: 'panel' }, h('h2', null, 'Coordinators\' verdicts'),
      table(['Coordinator', 'Verdict', 'Since', 'Error'], Object.entries(v.verdicts || {}).map(([n, vd]) => h('tr', null,
        h('td', null, n), h('td', null, vd.reachable ? badge('✔ reachable', 'ok') : badge('✖ unreachable', 'crit')),
        h('td', null, time(vd.since)), h('td', { class: 'mono small' }, vd.error || ''))), 'grid compact')),
    (v.problems || []).length ? h('section', { class: 'panel' }, h('h2', null, 'Problems'),
      h('ul', { class: 'problem-list' }, v.problems.map((p) => h('li', null, sevBadge(p.severity), ' ', h('strong', null, p.code), ' ',
        p.description || '', p.fix ? h('div', { class: 'small' }, h('strong', null, 'Fix: '), p.fix) : null)))) : null,
    h('details', { class: 'panel', 'data-ok': 'raw' }, h('summary', null, 'All facts (raw JSON)'),
      h('pre', { class: 'small' }, JSON.stringify(i, null, 2))));
}

// actions mirrors the card's: downtime and promotion rule (operator).
function actions(v, ctx) {
  if (!session.can('operator')) return null;
  const k = v.instance.key;
  return h('div', { class: 'toolbar right-float' },
    v.downtime
      ? h('button', { type: 'button', class: 'small', onclick: () => act.endDowntime(k, v.downtime, ctx.refresh) }, 'End downtime')
      : h('button', { type: 'button', class: 'small', onclick: () => act.beginDowntime(k, ctx.refresh) }, 'Downtime…'),
    h('button', { type: 'button', class: 'small', onclick: () => act.promotionRule(k, v.promotion_rule || 'neutral', ctx.refresh) }, 'Promotion rule…'));
}
