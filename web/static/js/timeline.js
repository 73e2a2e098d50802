// A recovery drawn over time: one bar per step (from its time to the next
// step's), the writable gap as a band behind them, the fence steps in a
// look of their own. Plus the old master's liveness class in words.
// Everything comes from the record's step timestamps (`at`).
import { h, key, secs, time, isZeroTime } from './dom.js';
import { s, tip, ticks, clip } from './svg.js';

// Step kinds of the fence chain (coordinator/fencechain.go).
export const FENCE_KINDS = new Set(['fence', 'fence-sql', 'fence-command', 'fenced', 'unfenced']);

const ms = (t) => new Date(t).getTime();
const done = (r) => r.finished && !isZeroTime(r.finished);

// writableGap is the time the cluster had no writable master, as
// {from, to, label, open}: for a failover from the detection of the failure
// (the trigger's since; the recovery's start without one) to the
// `promoted` step; for a switchover from the old master's `read-only` step
// to `promoted` (or to the `rollback` that made it writable again). A
// recovery of an intermediate master, or an operator's set-writable,
// leaves the master writable: null. open: no master was writable at the
// end (a failed failover), or not yet (one still running).
export function writableGap(r, now = Date.now()) {
  const steps = r.steps || [];
  const at = (kind) => steps.find((x) => x.kind === kind);
  const promoted = at('promoted');
  if (r.kind === 'set-writable' || /Intermediate/.test(r.problem || '')) return null;
  if (r.kind === 'switchover') {
    const ro = at('read-only');
    if (!ro) return null;
    const end = promoted || at('rollback');
    if (end) return { from: ms(ro.at), to: ms(end.at), label: 'writes refused', open: false };
    return { from: ms(ro.at), to: done(r) ? ms(r.finished) : now, label: 'writes refused', open: true };
  }
  const started = ms(r.started);
  const since = r.trigger && !isZeroTime(r.trigger.since) ? ms(r.trigger.since) : started;
  const from = Math.min(since, started);
  if (promoted) return { from, to: ms(promoted.at), label: 'no writable master', open: false };
  return { from, to: done(r) ? ms(r.finished) : now, label: 'no writable master', open: true };
}

// liveness reads the old master's liveness class from the record's
// `liveness` steps (the last one counts: under fence_policy=require a
// hung master that is later killed is classified again, "now dead: …")
// and what the fence chain did. null when the record has none.
export function liveness(r) {
  const steps = r.steps || [];
  const lv = steps.filter((x) => x.kind === 'liveness');
  if (!lv.length) return null;
  const last = lv[lv.length - 1];
  const m = /^(?:now )?(dead|unresponsive|partitioned|unknown):\s*(.*)$/s.exec(last.message || '');
  // The API names the class too (the same rule: the last liveness step).
  const cls = r.liveness || (m ? m[1] : 'unknown');
  const why = m ? m[2] : last.message || '';
  const first = /^(dead|unresponsive|partitioned|unknown):/.exec(lv[0].message || '');
  const fenced = steps.find((x) => x.kind === 'fenced');
  const unfenced = steps.find((x) => x.kind === 'unfenced');
  const promoted = steps.find((x) => x.kind === 'promoted');
  const fencedFirst = fenced && (!promoted || ms(fenced.at) <= ms(promoted.at));
  const tries = steps.filter((x) => FENCE_KINDS.has(x.kind) && x.error).length;
  let head;
  let tone;
  let detail = '';
  if (cls === 'dead') {
    tone = 'ok';
    head = first && first[1] !== 'dead'
      ? `✔ process gone: the old master was ${first[1]} at first, then refused connections (dead); no fence needed`
      : '✔ process gone: the old master refused connections (dead); no fence needed before promotion';
  } else if (fencedFirst) {
    tone = 'warn';
    head = `⚠ old master may be alive (${cls}): fenced before promotion`;
    detail = fenced.message;
  } else if (unfenced) {
    tone = 'crit';
    head = `✖ old master may be alive (${cls}): NOT fenced, promoted anyway (recovery.fence_policy=best_effort)`;
    detail = 'every coordinator fences it the moment it answers; until then it may take writes if it resumes';
  } else if (fenced) {
    tone = 'warn';
    head = `⚠ old master may be alive (${cls}): fenced after the promotion`;
    detail = fenced.message;
  } else {
    tone = done(r) ? 'warn' : 'crit';
    head = `✖ old master may be alive (${cls}): ${done(r) ? 'no fence recorded' : 'not fenced yet, no promotion until it is'}`;
    if (tries) detail = `${tries} fence attempt(s) failed so far`;
  }
  return { cls, tone, head, why, detail };
}

// livenessBox is the banner of the recovery page.
export function livenessBox(r) {
  const l = liveness(r);
  if (!l) return null;
  return h('div', { class: 'liveness ' + l.tone, role: 'note' },
    h('strong', null, l.head),
    h('div', { class: 'small' }, h('span', { class: 'badge muted' }, 'liveness: ' + l.cls), ' ', l.why),
    l.detail ? h('div', { class: 'small' }, l.detail) : null);
}

// Layout of the chart, in viewBox units (the SVG scales to the panel's
// width; at 1366x768 one unit is about one pixel).
const W = 1200;
const LABEL = 150; // step names
const RIGHT = 16;
const ROW = 20;
const TOP = 44; // gap label and time axis
const BAR = 12;

// timelineChart draws the steps of r as bars, with the writable gap.
// Steps recorded long after the end (the old master fenced or rejoined
// when it answered again, minutes later) would squash the picture: they
// are listed under it instead.
export function timelineChart(r, now = Date.now()) {
  const all = (r.steps || []).filter((x) => !isZeroTime(x.at));
  if (!all.length) return null;
  const start = ms(r.started);
  const end = done(r) ? ms(r.finished) : Math.max(now, ms(all[all.length - 1].at));
  const limit = end + Math.max(1000, (end - start) / 2);
  const inside = all.filter((x) => ms(x.at) <= limit);
  const later = all.filter((x) => ms(x.at) > limit);
  const gap = writableGap(r, now);
  // The axis starts at the recovery's start, or earlier to show the
  // detection; a detection long before (automatic recovery was off, an
  // operator failed over later) is clipped and said in words.
  const span0 = Math.max(end, ...inside.map((x) => ms(x.at))) - start;
  let t0 = start;
  let clipped = false;
  if (gap && gap.from < start) {
    if (start - gap.from <= Math.max(10000, 2 * span0)) t0 = gap.from;
    else clipped = true;
  }
  const t1 = Math.max(end, ...inside.map((x) => ms(x.at)), gap ? gap.to : 0);
  const span = Math.max(t1 - t0, 1);
  const x0 = LABEL + 8;
  const xw = W - x0 - RIGHT;
  const X = (t) => x0 + ((Math.max(t, t0) - t0) / span) * xw;
  const H = TOP + inside.length * ROW + 8;

  const parts = [];
  if (gap) {
    const gx = X(gap.from);
    const gw = Math.max(X(gap.to) - gx, 2);
    const took = secs((gap.to - gap.from) / 1000);
    const text = gap.open
      ? `${gap.label}: ${took}${done(r) ? ' and still none at the end' : ' so far'}`
      : `${gap.label}: ${took}` + (gap.label === 'writes refused' ? '' : r.trigger ? ' (detection → promoted)' : ' (start → promoted)');
    const lx = Math.min(Math.max(gx, x0), W - RIGHT);
    parts.push(s('g', { class: 'gap' + (gap.open ? ' open' : '') },
      tip(`${text}${clipped ? `; detected at ${time(new Date(gap.from).toISOString())}, before this axis` : ''}`),
      s('rect', { class: 'gap-band', x: gx, y: 2, width: gw, height: H - 6 }),
      s('line', { class: 'gap-edge', x1: gx + gw, x2: gx + gw, y1: 2, y2: H - 4 }),
      s('text', { class: 'gap-label', x: lx + 4, y: 14 }, (clipped ? '◀ ' : '') + text)));
  }
  // Time axis, drawn over the gap band: ticks at round times relative
  // to the recovery's start (negative before it: the detection).
  const tk = ticks(span / 1000, 8, [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]);
  const stepMs = tk.step * 1000;
  for (let i = Math.ceil((t0 - start) / stepMs); start + i * stepMs <= t1 + 1e-6; i++) {
    const rel = (i * stepMs) / 1000;
    const x = X(start + i * stepMs);
    parts.push(s('line', { class: 'grid', x1: x, x2: x, y1: TOP - 6, y2: H - 4 }),
      s('text', { class: 'axis', x, y: TOP - 10, 'text-anchor': 'middle' }, rel === 0 ? 'start' : (rel < 0 ? '−' : '+') + secs(Math.abs(rel))));
  }
  inside.forEach((st, i) => {
    const t = ms(st.at);
    const next = i + 1 < inside.length ? ms(inside[i + 1].at) : end;
    const stop = Math.max(t, Math.min(next, t1));
    const y = TOP + i * ROW;
    const x = X(t);
    const w = Math.max(X(stop) - x, 2);
    const fence = FENCE_KINDS.has(st.kind);
    const cls = ['bar', fence ? 'fence' : '', st.kind === 'unfenced' ? 'unfenced' : '', st.kind === 'liveness' ? 'liveness' : '',
      st.kind === 'promoted' || st.kind === 'promote-intent' ? 'promote' : '', st.kind === 'hook' ? 'hook' : '', st.error ? 'err' : '']
      .filter(Boolean).join(' ');
    const took = secs((stop - t) / 1000);
    const who = st.instance && (st.instance.host || st.instance.port) ? key(st.instance) : '';
    const note = `${took}${who ? '  ' + clip(who, 34) : ''}`;
    // The duration goes right of the bar, else left of it, else (a bar
    // across most of the width) inside it, never over the step names.
    const tw = note.length * 6.5;
    const place = x + w + 6 + tw < W ? 'right' : x - 6 - tw > x0 ? 'left' : 'inside';
    parts.push(s('g', { class: 'step' + (st.error ? ' err' : '') },
      tip(`${st.kind || 'step'} at ${time(st.at)}, took ${took}${who ? ' on ' + who : ''}: ${st.message || ''}${st.error ? ' ✖ ' + st.error : ''}`),
      s('text', { class: 'step-name', x: LABEL, y: y + BAR - 1, 'text-anchor': 'end' }, (st.error ? '✖ ' : fence ? '⊠ ' : '') + clip(st.kind || 'step', 20)),
      s('rect', { class: cls, 'data-step': st.kind || 'step', x, y: y + 1, width: w, height: BAR, rx: 2 }),
      s('text', { class: 'took' + (place === 'inside' ? ' inside' : ''), x: place === 'right' ? x + w + 6 : place === 'left' ? x - 6 : x + 6,
        y: y + BAR - 1, 'text-anchor': place === 'left' ? 'end' : 'start' }, note)));
  });
  // The moment a master was writable again.
  const promoted = inside.find((x) => x.kind === 'promoted');
  if (promoted) {
    const px = X(ms(promoted.at));
    parts.push(s('line', { class: 'writable-line', x1: px, x2: px, y1: TOP - 6, y2: H - 4 }));
  }
  const svg = s('svg', {
    class: 'timeline-chart', viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
    'aria-label': `Recovery #${r.id} over time: ${inside.length} steps` + (gap ? `, ${gap.label} ${secs((gap.to - gap.from) / 1000)}` : ''),
  }, parts);
  return h('div', { class: 'timeline-wrap' }, svg,
    h('p', { class: 'legend small muted' },
      h('span', { class: 'lg-swatch gap-band' }), ' ', gap ? gap.label : 'writable gap', '  ',
      h('span', { class: 'lg-swatch bar' }), ' step (until the next one)  ',
      h('span', { class: 'lg-swatch bar fence' }), ' ⊠ fence chain  ',
      h('span', { class: 'lg-swatch bar promote' }), ' promotion  ',
      h('span', { class: 'lg-swatch bar err' }), ' ✖ failed step. Times are relative to the start ', time(r.started), '.'),
    later.length ? h('p', { class: 'small later' }, h('strong', null, 'After the end: '),
      later.map((x, i) => [i ? '; ' : '', h('span', { class: 'badge muted' }, x.kind || 'step'), ` +${secs((ms(x.at) - start) / 1000)} `, x.message || ''])) : null);
}
