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

// matrix renders a list of objects (e.g. candidates with verdict and
// reason) as a table; rows with a false "eligible"/"ok" or a "rejected"
// verdict are marked, with the word shown too, not just the colour.
// Columns an operator reads first; the rest follow in the API's order.
const FIRST = ['key', 'instance', 'candidate', 'verdict', 'eligible', 'chosen', 'reason', 'reasons'];

export function matrix(rows) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  cols.sort((a, b) => rank(a) - rank(b));
  return h('div', { class: 'scroll-x' }, table(cols.map(label), rows.map((r) => {
    const bad = r.eligible === false || r.ok === false || /reject|inelig|skip/i.test(String(r.verdict || ''));
    const chosen = r.chosen === true || r.selected === true || /chosen|selected|promote/i.test(String(r.verdict || ''));
    return h('tr', { class: bad ? 'row-bad' : chosen ? 'row-good' : '' }, cols.map((c) => h('td', { class: c === 'key' ? 'nowrap' : '' },
      c === 'verdict' ? (bad ? '✖ ' : chosen ? '✔ ' : '') + r[c] : value(r[c]))));
  }), 'grid compact'));
}

// plan renders a dry-run answer's plan: the candidate matrix and the
// steps get headings of their own, other fields are listed as facts.
export function plan(p) {
  if (!p || typeof p !== 'object' || Array.isArray(p)) return value(p);
  const rest = Object.entries(p).filter(([k]) => k !== 'candidates' && k !== 'steps');
  return h('div', null,
    rest.length ? dl(rest.map(([k, x]) => [label(k), value(x)])) : null,
    p.candidates ? [h('h4', null, 'Candidates'), value(p.candidates)] : null,
    p.steps ? [h('h4', null, 'Steps it would take'), value(p.steps)] : null);
}

function rank(c) {
  const i = FIRST.indexOf(c);
  return i < 0 ? FIRST.length : i;
}

function label(k) {
  return k.replace(/_/g, ' ');
}
