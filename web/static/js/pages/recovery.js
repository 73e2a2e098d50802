// One recovery: why it started, what happened step by step, why that
// candidate, what was lost, and whether a person has looked at it.
import { h, key, table, badge, time, between, dl, empty, isZeroTime, clusterLink } from '../dom.js';
import { get } from '../api.js';
import { session } from '../session.js';
import * as act from '../actions.js';
import { outcome } from './overview.js';
import { value, matrix, plan } from '../plan.js';
import { replicaTable } from './problems.js';
import { timelineChart, livenessBox, FENCE_KINDS } from '../timeline.js';

export const title = (id) => `Recovery #${id}`;

export function toolbar() {
  return h('div', { class: 'toolbar' }, h('a', { href: '#/recoveries' }, '← all recoveries'));
}

export const load = (id) => get('recoveries/' + id);

// Fields of the record this page lays out itself; any others the API adds
// are shown under "More", so nothing it records is hidden.
const KNOWN = new Set(['id', 'term', 'cluster', 'failed_key', 'problem', 'node', 'started', 'steps', 'finished', 'success',
  'successor', 'error', 'acknowledged', 'acked_by', 'acked_at', 'ack_comment', 'kind', 'trigger', 'requested', 'matrix',
  'promoting', 'fenced', 'rejoined', 'lost', 'lost_gtids', 'candidates', 'hooks', 'lost_replicas', 'liveness', 'cluster_alias', 'plan']);

const has = (k) => k && (k.host || k.port);

export function render(r, _p, ctx) {
  const steps = r.steps || [];
  const hooks = r.hooks || steps.filter((s) => s.kind === 'hook');
  const extra = Object.entries(r).filter(([k]) => !KNOWN.has(k));
  const done = r.finished && !isZeroTime(r.finished);
  const cands = (r.matrix && r.matrix.candidates) || r.candidates;
  return h('div', { class: 'stack' },
    h('section', { class: 'panel' },
      h('div', { class: 'summary' }, outcome(r),
        r.kind ? badge(r.kind, 'muted', 'automatic, manual (failover) or switchover') : null,
        h('span', null, 'cluster ', clusterLink(r.cluster, r.cluster_alias)),
        h('span', null, r.problem || '—', ' on ', h('span', { class: 'mono' }, key(r.failed_key))),
        has(r.successor) ? h('span', null, '→ new master ', h('strong', { class: 'mono' }, key(r.successor))) : null,
        (r.lost || []).length ? badge(`✖ ${r.lost.length} replica(s) lost`, 'crit') : null,
        r.lost_gtids ? badge('✖ transactions lost', 'crit') : null),
      dl([
        ['Started', time(r.started)],
        ['Finished', done ? `${time(r.finished)} (took ${between(r.started, r.finished)})` : 'still running'],
        ['Run by', `coordinator ${r.node} (Raft term ${r.term}, fencing index ${r.id})`],
        has(r.requested) ? ['Requested candidate', h('span', { class: 'mono' }, key(r.requested))] : null,
        has(r.promoting) && !has(r.successor) ? ['Promoting', h('span', { class: 'mono' }, key(r.promoting))] : null,
        r.error ? ['Error', h('span', { class: 'bad mono' }, '✖ ' + r.error)] : null,
        [r.kind === 'set-writable' ? 'Made writable' : r.kind === 'switchover' || /Master/.test(r.problem || '') ? 'Old master since' : 'Failed instance since', oldMaster(r)],
        ['Acknowledged', ackText(r)],
      ], 'cols'),
      livenessBox(r),
      ackButton(r, done, ctx)),
    h('section', { class: 'panel' }, h('h2', null, 'Timeline'), timelineChart(r), timeline(r, steps)),
    r.trigger ? h('section', { class: 'panel' }, h('h2', null, 'Why it started'), trigger(r.trigger)) : null,
    // The plan the engine decided on, when the record carries it (typed
    // or not): its matrix is the Candidates panel below, not repeated.
    r.plan && typeof r.plan === 'object' ? h('section', { class: 'panel' }, h('h2', null, 'Plan'),
      plan(cands ? withoutMatrix(r.plan) : r.plan, { record: true })) : null,
    h('section', { class: 'panel' }, h('h2', null, 'Candidates'),
      cands ? [r.matrix ? dl([['Received by some replica', h('span', { class: 'mono' }, r.matrix.received || '—')],
        ['Most data on', h('span', { class: 'mono' }, key(r.matrix.most_data))]]) : null, candidates(r, cands)]
        : empty('No candidate matrix recorded.')),
    h('section', { class: 'panel' }, h('h2', null, 'Hooks run'),
      hooks.length ? h('ul', { class: 'hooks' }, hooks.map((s) => h('li', null, typeof s === 'string' ? s
        : [h('span', { class: 'mono small muted' }, time(s.at)), ' ', s.message || value(s), s.error ? h('span', { class: 'bad' }, ' ✖ ' + s.error) : null])))
        : empty('No hooks ran.')),
    h('section', { class: 'panel' }, h('h2', null, 'Lost in this recovery'), lost(r, done)),
    extra.length ? h('section', { class: 'panel' }, h('h2', null, 'More'), dl(extra.map(([k, v]) => [k.replace(/_/g, ' '), value(v)]))) : null);
}

function withoutMatrix(p) {
  const { matrix: _m, candidates: _c, ...rest } = p;
  return rest;
}

// candidates marks the replica the record promoted (successor, or the
// promote intent while it runs) and the one the operator asked for; rank 1
// is only the ranking's first, which an operator's choice overrides.
function candidates(r, cands) {
  const chosen = has(r.successor) ? r.successor : has(r.promoting) ? r.promoting : null;
  return matrix(cands, { record: true, chosen, chosenWord: has(r.successor) ? 'promoted' : 'promoting', requested: has(r.requested) ? r.requested : null });
}

// oldMaster says what became of the failed master once it answered again.
function oldMaster(r) {
  if (r.rejoined) return badge('✔ rejoined as a replica', 'ok');
  if (r.fenced) return badge('■ fenced (read_only=ON), not rejoined', 'warn');
  return h('span', { class: 'muted' }, 'not seen again yet');
}

function trigger(p) {
  const down = p.votes_down || [];
  const up = p.votes_up || [];
  return h('div', null,
    h('p', null, h('strong', null, p.code), ' on ', h('span', { class: 'mono' }, key(p.key)), p.description ? ' — ' + p.description : ''),
    down.length || up.length ? h('p', { class: 'votes' }, `${down.length} of ${down.length + up.length} coordinators could not reach it`,
      p.quorum ? ` (quorum ${p.quorum}) ` : ' ',
      down.map((n) => badge('✖ ' + n, 'crit')), ' ', up.map((n) => badge('✔ ' + n, 'ok'))) : null,
    p.replicas && p.replicas.length ? replicaTable(p.replicas) : null);
}

function lost(r, done) {
  const reps = r.lost || r.lost_replicas || [];
  if (!done) return empty('Known when the recovery finishes.');
  if (!reps.length && !r.lost_gtids) return h('p', null, badge('✔ nothing', 'ok'), ' Every replica was repointed and no transaction is missing.');
  return h('div', null,
    reps.length ? table(['Replica', 'Why it could not be repointed'], reps.map((l) => h('tr', { class: 'row-bad' },
      h('td', { class: 'mono nowrap' }, key(l.key)), h('td', null, l.reason || '—'))), 'grid compact') : null,
    r.lost_gtids ? h('p', null, h('strong', { class: 'bad' }, '✖ Transactions no surviving instance holds: '), h('span', { class: 'mono' }, r.lost_gtids)) : null);
}

function ackText(r) {
  if (!r.acknowledged) return badge('▲ not yet', 'warn');
  return h('span', null, badge('✔ yes', 'ok'), ` by ${r.acked_by} at ${time(r.acked_at)}`, r.ack_comment ? ` — “${r.ack_comment}”` : '');
}

function ackButton(r, done, ctx) {
  if (r.acknowledged || !done || !session.can('operator')) return null;
  return h('div', { class: 'row' }, h('button', { type: 'button', class: 'primary', onclick: () => act.ack(r, ctx.refresh) }, '✔ Acknowledge…'));
}

// timeline lists the steps with the time each took (until the next step,
// or until the recovery finished for the last one).
function timeline(r, steps) {
  if (!steps.length) return empty('No steps recorded.');
  const end = r.finished && !isZeroTime(r.finished) ? r.finished : null;
  return table(['At', '+', 'Took', 'Step', 'Instance', 'What happened'], steps.map((s, i) => {
    const next = i + 1 < steps.length ? steps[i + 1].at : end;
    return h('tr', { class: s.error ? 'row-bad' : '' },
      h('td', { class: 'mono small nowrap' }, time(s.at)),
      h('td', { class: 'num small' }, between(r.started, s.at)),
      h('td', { class: 'num' }, next && new Date(next) >= new Date(s.at) ? between(s.at, next) : '—'),
      h('td', null, s.kind ? badge((FENCE_KINDS.has(s.kind) ? '⊠ ' : '') + s.kind, FENCE_KINDS.has(s.kind) ? 'fence' : s.kind === 'hook' ? 'info' : 'muted') : ''),
      h('td', { class: 'mono small nowrap' }, has(s.instance) ? key(s.instance) : ''),
      h('td', null, s.message, Array.isArray(s.sql) && s.sql.length ? h('pre', { class: 'sql' }, s.sql.join('\n')) : null,
        s.error ? h('div', { class: 'bad mono small' }, '✖ ' + s.error) : null));
  }), 'grid compact timeline');
}
