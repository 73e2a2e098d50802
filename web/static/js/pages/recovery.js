// One recovery: what happened, step by step, and why that candidate.
import { h, key, table, badge, time, between, dl, empty, isZeroTime } from '../dom.js';
import { get } from '../api.js';
import { session } from '../session.js';
import * as act from '../actions.js';
import { outcome } from './overview.js';
import { value, matrix } from '../plan.js';

export const title = (id) => `Recovery #${id}`;

export function toolbar() {
  return h('div', { class: 'toolbar' }, h('a', { href: '#/recoveries' }, '← all recoveries'));
}

export const load = (id) => get('recoveries/' + id);

// Fields of the record this page lays out itself; any others the API adds
// (lost replicas, lost GTIDs, hooks...) are shown under "More".
const KNOWN = new Set(['id', 'term', 'cluster', 'failed_key', 'problem', 'node', 'started', 'steps', 'finished', 'success',
  'successor', 'error', 'acknowledged', 'acked_by', 'acked_at', 'ack_comment', 'candidates', 'hooks', 'lost_replicas', 'lost_gtids']);

export function render(r, _p, ctx) {
  const steps = r.steps || [];
  const hooks = r.hooks || steps.filter((s) => s.kind === 'hook');
  const extra = Object.entries(r).filter(([k]) => !KNOWN.has(k));
  const done = r.finished && !isZeroTime(r.finished);
  return h('div', { class: 'stack' },
    h('section', { class: 'panel' },
      h('div', { class: 'summary' }, outcome(r),
        h('span', null, 'cluster ', h('a', { href: '#/cluster/' + encodeURIComponent(r.cluster) }, r.cluster)),
        h('span', null, r.problem || '—', ' on ', h('span', { class: 'mono' }, key(r.failed_key))),
        r.successor && r.successor.host ? h('span', null, '→ new master ', h('strong', { class: 'mono' }, key(r.successor))) : null),
      dl([
        ['Started', time(r.started)],
        ['Finished', done ? `${time(r.finished)} (took ${between(r.started, r.finished)})` : 'still running'],
        ['Run by', `coordinator ${r.node} (Raft term ${r.term}, fencing index ${r.id})`],
        r.error ? ['Error', h('span', { class: 'bad mono' }, '✖ ' + r.error)] : null,
        ['Acknowledged', ackText(r)],
      ], 'cols'),
      ackButton(r, done, ctx)),
    h('section', { class: 'panel' }, h('h2', null, 'Timeline'), timeline(r, steps)),
    h('section', { class: 'panel' }, h('h2', null, 'Candidates'),
      r.candidates ? matrix(r.candidates) : empty('The record has no candidate matrix (not provided by the API yet).')),
    h('section', { class: 'panel' }, h('h2', null, 'Hooks run'),
      hooks.length ? h('ul', { class: 'hooks' }, hooks.map((s) => h('li', null, typeof s === 'string' ? s
        : [h('span', { class: 'mono small muted' }, time(s.at)), ' ', s.message || value(s), s.error ? h('span', { class: 'bad' }, ' ✖ ' + s.error) : null])))
        : empty('No hooks ran.')),
    h('section', { class: 'panel' }, h('h2', null, 'Lost in this recovery'),
      dl([
        ['Lost replicas', r.lost_replicas ? value(r.lost_replicas) : h('span', { class: 'muted' }, 'not reported')],
        ['Lost GTIDs', r.lost_gtids ? value(r.lost_gtids) : h('span', { class: 'muted' }, 'not reported')],
      ])),
    extra.length ? h('section', { class: 'panel' }, h('h2', null, 'More'), dl(extra.map(([k, v]) => [k.replace(/_/g, ' '), value(v)]))) : null);
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
  return table(['At', '+', 'Took', 'Step', 'What happened'], steps.map((s, i) => {
    const next = i + 1 < steps.length ? steps[i + 1].at : end;
    return h('tr', { class: s.error ? 'row-bad' : '' },
      h('td', { class: 'mono small' }, time(s.at)),
      h('td', { class: 'num small' }, between(r.started, s.at)),
      h('td', { class: 'num' }, next ? between(s.at, next) : '…'),
      h('td', null, s.kind ? badge(s.kind, s.kind === 'hook' ? 'info' : 'muted') : ''),
      h('td', null, s.message, s.error ? h('div', { class: 'bad mono small' }, '✖ ' + s.error) : null));
  }), 'grid compact timeline');
}
