// Renders recovery plans and candidate matrices. Their exact shape belongs
// to the coordinator (api: "the value is encoded to JSON as the answer's
// plan"), so this renders any object readably: arrays of objects as
// tables, arrays of strings as numbered steps, the rest as facts.
import { h, key, dl, table, isZeroTime, time } from './dom.js';

const isKey = (v) => v && typeof v === 'object' && !Array.isArray(v) && 'host' in v && 'port' in v && Object.keys(v).length === 2;

// value renders one JSON value.
export function value(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? '✔ yes' : '✖ no';
  if (isKey(v)) return h('span', { class: 'mono' }, key(v));
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v)) return isZeroTime(v) ? '—' : time(v);
  if (Array.isArray(v)) {
    if (!v.length) return h('span', { class: 'muted' }, 'none');
    if (v.every((x) => x && typeof x === 'object' && !isKey(x))) return matrix(v);
    if (v.every((x) => typeof x === 'string')) return h('ol', { class: 'steps-list' }, v.map((s) => h('li', null, s)));
    return h('span', { class: 'badges' }, v.map((x) => h('span', { class: 'badge muted' }, value(x))));
  }
  if (typeof v === 'object') return dl(Object.entries(v).map(([k, x]) => [label(k), value(x)]));
  return String(v);
}

// matrix renders a list of objects (e.g. topology.Candidate rows) as a
// table. Wide rows fold their yes/no facts into one "checks" column so the
// table fits a dialog; a row that is not eligible (or was rejected) and
// the chosen one are marked in words as well as colour.
//
// Which row is "chosen" is not always rank 1: an operator may name a
// candidate (the record's requested), and a record knows who was promoted
// (its successor, or promoting while it runs). opts, all optional:
//   chosen: the key (object or "host:port") that was / would be promoted,
//   chosenWord: how to say it ("promoted", "promoting", "would be promoted"),
//   requested: the candidate an operator named (marked "◎ requested"),
//   record: true for a recovery record; then rank 1 means only "ranked
//     first", and no row is chosen unless opts.chosen says so.
// Without opts (a bare dry-run matrix) rank 1 is the one that would be chosen.
const FIRST = ['rank', 'key', 'instance', 'candidate', 'eligible', 'verdict', 'chosen', 'reason', 'reasons',
  'promotion_rule', 'data_center', 'behind', 'backlog'];
const WIDE = 8;

const keyText = (k) => (!k ? '' : typeof k === 'string' ? k : key(k) === '—' ? '' : key(k));

export function matrix(rows, opts = {}) {
  const chosenKey = keyText(opts.chosen);
  const requestedKey = keyText(opts.requested);
  const word = opts.chosenWord || 'chosen';
  let cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  cols.sort((a, b) => rank(a) - rank(b));
  // A wide row keeps the leading columns and folds the rest into one
  // small "details" cell: yes/no facts as ✔/✖ words, others as name value.
  let rest = [];
  if (cols.length > WIDE) {
    rest = cols.filter((c) => !FIRST.includes(c));
    cols = cols.filter((c) => FIRST.includes(c));
  }
  const head = cols.map(label).concat(rest.length ? ['details'] : []);
  return h('div', { class: 'scroll-x' }, table(head, rows.map((r) => {
    const bad = r.eligible === false || r.ok === false || /reject|inelig|skip/i.test(String(r.verdict || ''));
    const rowKey = isKey(r.key) ? key(r.key) : '';
    const chosen = chosenKey ? rowKey === chosenKey
      : !opts.record && !bad && (r.rank === 1 || r.chosen === true || r.selected === true || /chosen|selected|promote/i.test(String(r.verdict || '')));
    const mark = { bad, chosen, word, requested: !!requestedKey && rowKey === requestedKey };
    return h('tr', { class: chosen ? 'row-good' : bad ? 'row-bad' : '', 'data-key': rowKey || null },
      cols.map((c) => h('td', { class: c === 'reason' ? 'reason' : 'nowrap' }, cell(c, r, mark))),
      rest.length ? h('td', { class: 'small details' }, rest.filter((c) => r[c] !== undefined && r[c] !== '').map((c) =>
        typeof r[c] === 'boolean'
          ? h('span', { class: 'check ' + (r[c] ? 'yes' : 'no') }, (r[c] ? '✔ ' : '✖ ') + label(c))
          : h('span', { class: 'check' }, h('span', { class: 'muted' }, label(c) + ' '), cell(c, r, mark)))) : null);
  }), 'grid compact'));
}

function cell(c, r, m) {
  const v = r[c];
  if (c === 'verdict') return (m.bad ? '✖ ' : m.chosen ? '✔ ' : '') + v;
  if (c === 'eligible') return m.chosen ? '✔ ' + m.word + (v ? '' : ' (was not eligible)') : v ? '✔ eligible' : '✖ not eligible';
  if (c === 'key' && m.requested) return h('span', null, value(v), ' ', h('span', { class: 'badge info', title: 'the candidate the operator named' }, '◎ requested'));
  if (c === 'rank') return v ? '#' + v : '—';
  if (typeof v === 'string' && v.length > 40 && c !== 'reason') return h('span', { class: 'mono clip', title: v }, v);
  return value(v);
}

// plan renders a dry-run answer's plan: the candidate matrix and the
// steps get headings of their own, other fields are listed as facts.
//
// Two shapes are accepted. The typed Plan (contracts §1: steps as objects
// with n, kind, target, summary and sql; successor and reason; refusal;
// fence; hooks) and the older untyped one (steps as strings, a
// "candidate"). COMPAT(untyped plan): drop the string-steps path once every
// node serves the typed Plan.
//
// opts.requested is the candidate named in the request: the dry run
// promotes that one (the API refuses it, or fails the recovery, if it is
// not eligible), so it, not rank 1, is marked "would be promoted".
// opts.record: the plan of a recovery record (words in the past tense).
export function plan(p, opts = {}) {
  if (!p || typeof p !== 'object' || Array.isArray(p)) return value(p);
  if (isTyped(p)) return typedPlan(p, opts);
  // The matrix may be the plan's own "candidates" or sit in a nested
  // object (a topology.CandidateMatrix with its received set).
  const nested = Object.entries(p).find(([, x]) => x && typeof x === 'object' && Array.isArray(x.candidates));
  const cands = p.candidates || (nested && nested[1].candidates);
  const extra = nested ? Object.entries(nested[1]).filter(([k]) => k !== 'candidates') : [];
  const rest = Object.entries(p).filter(([k]) => k !== 'candidates' && k !== 'steps' && (!nested || k !== nested[0]));
  return h('div', null,
    rest.length || extra.length ? dl(rest.concat(extra).map(([k, x]) => [label(k), value(x)])) : null,
    cands ? [h('h4', null, 'Candidates'), Array.isArray(cands) && cands.length
      ? matrix(cands, opts.requested ? { chosen: opts.requested, requested: opts.requested, chosenWord: 'would be promoted' } : { chosenWord: 'would be chosen' })
      : value(cands)] : null,
    p.steps ? [h('h4', null, 'Steps it would take'), value(p.steps)] : null);
}

// isTyped tells the typed Plan from the untyped one: its steps are
// objects, or it carries a field only the typed Plan has.
export function isTyped(p) {
  const steps = Array.isArray(p.steps) ? p.steps : [];
  return steps.some((x) => x && typeof x === 'object') || 'successor' in p || 'refusal' in p || 'fence' in p || 'reason' in p;
}

// refusal is the plan's refusal (null when it would act).
export function refusal(p) {
  const r = p && typeof p === 'object' ? p.refusal : null;
  return r && typeof r === 'object' && (r.message || r.code) ? r : null;
}

const TYPED = new Set(['kind', 'cluster', 'alias', 'flavor', 'master', 'master_reachable', 'matrix', 'successor', 'reason',
  'refusal', 'fence', 'steps', 'hooks', 'candidate', 'candidates']);

function typedPlan(p, opts) {
  const past = !!opts.record;
  const ref = refusal(p);
  const succ = keyText(p.successor);
  const req = keyText(opts.requested);
  const m = p.matrix && typeof p.matrix === 'object' ? p.matrix : null;
  const cands = (m && m.candidates) || p.candidates;
  const steps = Array.isArray(p.steps) ? p.steps : [];
  const fence = Array.isArray(p.fence) ? p.fence : [];
  const hooks = Array.isArray(p.hooks) ? p.hooks : [];
  // Other lists of steps (a rollback) get a list of their own; any other
  // field is a fact.
  const isSteps = (x) => Array.isArray(x) && x.length && x.every((s) => s && typeof s === 'object' && 'kind' in s && ('summary' in s || 'sql' in s));
  const other = Object.entries(p).filter(([k, x]) => !TYPED.has(k) && !isSteps(x));
  const lists = Object.entries(p).filter(([k, x]) => !TYPED.has(k) && isSteps(x));
  const chosenWord = past ? 'promoted' : req ? 'would be promoted' : 'would be chosen';
  return h('div', { class: 'typed-plan' },
    ref ? h('div', { class: 'error refusal', role: 'alert' },
      h('strong', null, past ? '✖ Refused: ' : '✖ Warden would refuse this: '),
      h('span', { class: 'mono' }, `${ref.http_status || ''} ${ref.code || ''}`.trim() + (ref.message ? ': ' + ref.message : ''))) : null,
    dl([
      ['Kind', p.kind || '—'],
      ['Cluster', h('span', null, h('span', { class: 'mono' }, p.cluster || '—'), p.alias ? [' ', h('span', { class: 'alias' }, '“' + p.alias + '”')] : null)],
      p.flavor ? ['Flavor', p.flavor] : null,
      ['Master', h('span', null, h('span', { class: 'mono' }, keyText(p.master) || '—'),
        'master_reachable' in p ? (p.master_reachable ? ' ✔ answers probes' : ' ✖ does not answer') : '')],
    ], 'cols'),
    other.length ? dl(other.map(([k, x]) => [label(k), value(x)])) : null,
    succ ? h('p', { class: 'successor' }, past ? '→ planned to promote ' : '→ would promote ', h('strong', { class: 'mono' }, succ),
      p.reason ? h('span', null, ' — ', p.reason) : null)
      : ref ? null : h('p', { class: 'successor muted' }, past ? 'The plan promoted no replica.' : 'No replica would be promoted.', p.reason ? ' ' + p.reason : ''),
    steps.length ? [h('h4', null, ref ? 'Steps it would have taken' : past ? 'Steps planned' : 'Steps it would take'),
      h('ol', { class: 'steps-list typed' }, steps.map(stepItem))] : null,
    lists.map(([k, x]) => [h('h4', null, k === 'rollback' ? 'Rollback (if a step fails)' : label(k)), h('ol', { class: 'steps-list typed' }, x.map(stepItem))]),
    fence.length ? [h('h4', null, 'Fence'), table(['Method', 'Target', 'What'], fence.map((f) => h('tr', null,
      h('td', { class: 'nowrap' }, '⊠ ' + (f.method || '—')), h('td', { class: 'mono nowrap' }, keyText(f.target) || '—'), h('td', null, f.detail || ''))), 'grid compact')] : null,
    cands ? [h('h4', null, 'Candidates'), Array.isArray(cands) && cands.length
      ? matrix(cands, { chosen: succ || req || null, requested: req || null, chosenWord, record: !succ && !req })
      : value(cands)] : null,
    m && (m.received || m.most_data) ? dl([['Received by some replica', h('span', { class: 'mono' }, m.received || '—')],
      ['Most data on', h('span', { class: 'mono' }, keyText(m.most_data) || '—')]], 'small') : null,
    hooks.length ? h('p', { class: 'small' }, h('span', { class: 'muted' }, 'Hooks: '), hooks.map((x) => h('span', { class: 'badge info' }, String(x))), ' ') : null);
}

// stepItem is one typed step: its kind, its target, the sentence and the
// SQL it runs. A string step (a mixed list) is shown as it is.
function stepItem(st) {
  if (!st || typeof st !== 'object') return h('li', null, String(st));
  const sql = Array.isArray(st.sql) ? st.sql : st.sql ? [String(st.sql)] : [];
  return h('li', { 'data-step': st.kind || '', value: Number.isInteger(st.n) && st.n > 0 ? st.n : null },
    st.kind ? h('span', { class: 'badge ' + (/fence/.test(st.kind) ? 'fence' : st.kind === 'promote' ? 'ok' : st.kind === 'hook' ? 'info' : 'muted') }, st.kind) : null, ' ',
    // The target, unless the sentence already names it.
    keyText(st.target) && !String(st.summary || '').includes(keyText(st.target)) ? [h('span', { class: 'mono' }, keyText(st.target)), ' '] : null,
    st.summary || '',
    sql.length ? h('pre', { class: 'sql' }, sql.join('\n')) : null);
}

function rank(c) {
  // FIRST orders the leading columns; the rest keep the API's order.
  const i = FIRST.indexOf(c);
  return i < 0 ? FIRST.length : i;
}

function label(k) {
  return k.replace(/_/g, ' ');
}
