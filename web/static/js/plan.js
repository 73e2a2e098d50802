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
export function matrix(rows) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  return h('div', { class: 'scroll-x' }, table(cols.map(label), rows.map((r) => {
    const bad = r.eligible === false || r.ok === false || /reject|inelig|skip/i.test(String(r.verdict || ''));
    const chosen = r.chosen === true || r.selected === true || /chosen|selected|promote/i.test(String(r.verdict || ''));
    return h('tr', { class: bad ? 'row-bad' : chosen ? 'row-good' : '' }, cols.map((c) => h('td', null, value(r[c]))));
  }), 'grid compact'));
}

// plan renders a dry-run answer's plan.
export function plan(p) {
  if (!p || typeof p !== 'object') return h('p', null, String(p));
  return value(p);
}

function label(k) {
  return k.replace(/_/g, ' ');
}
