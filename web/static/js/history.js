// The cluster's history strip: its recoveries on a time axis, coloured
// by outcome (and said in words: ✔ ✖ ⟳), each a link to its record, with
// the open problems on a second lane from their "since". The axis spans
// the last 24 h, or since the first recovery when that is longer (at most
// MAX_DAYS, older ones are counted and linked).
import { h, key, secs, time, isZeroTime } from './dom.js';
import { s, tip, ticks } from './svg.js';

const H24 = 24 * 3600 * 1000;
const MAX_DAYS = 30;
const W = 1200;
const LANE = 110; // lane names
const RIGHT = 40;
const MIN_W = 10; // a recovery of a few ms is still a mark one can click
const LABEL_SHIFT = 160; // how far left of its mark a label may be set

const ms = (t) => new Date(t).getTime();

export function outcomeOf(r) {
  if (isZeroTime(r.finished)) return ['running', '⟳', 'running'];
  if (r.kind === 'set-writable') return ['audit', '●', 'operator set-writable'];
  return r.success ? ['ok', '✔', 'succeeded'] : ['failed', '✖', 'failed'];
}

// historyStrip draws recs (any order) and probs of cluster as of now.
export function historyStrip(recs, probs, cluster, now = Date.now()) {
  const first = recs.length ? Math.min(...recs.map((r) => ms(r.started))) : now;
  const t0 = Math.max(Math.min(now - H24, first), now - MAX_DAYS * H24);
  const span = now - t0;
  const shown = recs.filter((r) => ms(r.started) >= t0 || (!isZeroTime(r.finished) && ms(r.finished) >= t0) || isZeroTime(r.finished));
  const older = recs.length - shown.length;
  const x0 = LANE + 6;
  const xw = W - x0 - RIGHT;
  const X = (t) => x0 + ((Math.max(t, t0) - t0) / span) * xw;
  const lanes = probs.length ? 2 : 1;
  const top = 16; // mark labels above the recoveries lane
  const laneH = 18;
  const axisY = top + lanes * (laneH + 6) + 2;
  const H = axisY + 16;
  const parts = [];

  // Axis: hours (times of day) for a day or two, dates beyond.
  const hours = span / 3600000;
  const tk = ticks(hours, 8, [1, 2, 3, 4, 6, 12, 24, 48, 72, 168]);
  // Ticks on round local hours, counted back from now.
  const end = new Date(now);
  end.setMinutes(0, 0, 0);
  const stepMs = tk.step * 3600000;
  for (let t = end.getTime(); t >= t0; t -= stepMs) {
    const x = X(t);
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, '0');
    const label = span <= 2 * H24 ? `${p(d.getHours())}:${p(d.getMinutes())}` : `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
    // A tick just before now would print over the "now" label.
    parts.push(s('line', { class: 'grid', x1: x, x2: x, y1: top - 2, y2: axisY }),
      X(now) - x > 40 ? s('text', { class: 'axis', x, y: axisY + 12, 'text-anchor': 'middle' }, label) : null);
  }
  parts.push(s('line', { class: 'now-line', x1: X(now), x2: X(now), y1: top - 4, y2: axisY }),
    s('text', { class: 'axis', x: X(now) + 4, y: axisY + 12 }, 'now'));

  const laneY = top;
  parts.push(s('text', { class: 'lane-name', x: LANE, y: laneY + 13, 'text-anchor': 'end' }, 'recoveries'),
    s('rect', { class: 'lane', x: x0, y: laneY, width: xw, height: laneH }));
  // Labels of marks close together (a switchover and a failover minutes
  // apart, on a day's axis) are set side by side, each still the link to
  // its record. They are placed newest first, from the right, since
  // recent marks crowd at "now"; a label that would sit too far left of
  // its mark is counted on the next one instead ("+1").
  const sorted = [...shown].sort((a, b) => ms(a.started) - ms(b.started));
  const geo = sorted.map((r) => {
    const x = X(ms(r.started));
    const stop = isZeroTime(r.finished) ? now : ms(r.finished);
    const w = Math.max(X(stop) - x, MIN_W);
    return { x, stop, w, mx: x - (w === MIN_W ? MIN_W / 2 : 0) };
  });
  const labels = new Array(sorted.length).fill(null);
  let nextStart = W;
  let owner = -1;
  for (let i = sorted.length - 1; i >= 0; i--) {
    const text = `${outcomeOf(sorted[i])[1]} #${sorted[i].id}`;
    const lw = text.length * 7;
    const end = Math.min(geo[i].mx + lw, nextStart - 6);
    if (end - lw >= 0 && geo[i].mx - (end - lw) <= LABEL_SHIFT) {
      labels[i] = { x: end - lw, text, more: 0 };
      nextStart = end - lw;
      owner = i;
    } else if (owner >= 0) {
      // The count widens the label it is put on: to the left, as the
      // space on its right belongs to the newer label.
      const l = labels[owner];
      const was = l.more ? ` +${l.more}`.length : 0;
      l.more++;
      l.x -= (` +${l.more}`.length - was) * 7;
      nextStart = l.x;
    }
  }
  sorted.forEach((r, i) => {
    const [cls, , word] = outcomeOf(r);
    const { x, stop, w, mx } = geo[i];
    const took = isZeroTime(r.finished) ? 'running' : secs((stop - ms(r.started)) / 1000);
    const l = labels[i];
    const text = `#${r.id} ${r.kind || ''} ${r.problem || ''} on ${key(r.failed_key)}: ${word}` +
      (r.successor && key(r.successor) !== '—' ? `, new master ${key(r.successor)}` : '') +
      ` — ${time(r.started)}, took ${took}${r.error ? '; ' + r.error : ''}${r.acknowledged ? '' : isZeroTime(r.finished) ? '' : ' (not acknowledged)'}`;
    parts.push(s('a', { href: '#/recovery/' + r.id, class: 'outcome-' + cls, 'aria-label': text }, tip(text),
      s('rect', { class: 'mark', x: mx, y: laneY + 1, width: w, height: laneH - 2, rx: 2 }),
      l ? s('text', { class: 'mark-label', x: l.x, y: laneY - 3 }, l.text + (l.more ? ` +${l.more}` : '')) : null));
  });
  if (!shown.length) {
    parts.push(s('text', { class: 'axis', x: x0 + 8, y: laneY + 13 }, 'no recovery in this period'));
  }
  if (probs.length) {
    const y = top + laneH + 6;
    parts.push(s('text', { class: 'lane-name', x: LANE, y: y + 13, 'text-anchor': 'end' }, 'open problems'),
      s('rect', { class: 'lane', x: x0, y, width: xw, height: laneH }));
    // Critical last, so it is drawn on top.
    const sorted = [...probs].sort((a, b) => (a.severity === 'critical') - (b.severity === 'critical'));
    const n = sorted.length;
    sorted.forEach((p, i) => {
      const since = isZeroTime(p.since) ? now : ms(p.since);
      const x = X(since);
      const hh = Math.max((laneH - 2) / n, 3);
      parts.push(s('rect', { class: 'prob ' + (p.severity === 'critical' ? 'crit' : 'warn'), x, y: y + 1 + i * hh, width: Math.max(X(now) - x, 3), height: hh - 0.5 },
        tip(`${p.severity === 'critical' ? '✖' : '▲'} ${p.code} on ${key(p.key)} since ${time(p.since)}`)));
    });
  }
  const hoursText = span <= H24 + 60000 ? 'last 24 h' : `since ${time(new Date(t0).toISOString())}`;
  return h('div', { class: 'history' },
    s('svg', { class: 'history-strip', viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
      'aria-label': `Recoveries of ${cluster}, ${hoursText}: ${shown.length}` }, parts),
    h('p', { class: 'legend small muted' }, `History, ${hoursText}: `,
      h('span', { class: 'lg-swatch outcome-ok' }), ' ✔ succeeded ', h('span', { class: 'lg-swatch outcome-failed' }), ' ✖ failed ',
      h('span', { class: 'lg-swatch outcome-running' }), ' ⟳ running',
      probs.length ? [' ', h('span', { class: 'lg-swatch prob crit' }), ' open problem (since)'] : null,
      '. Click a mark for its record. ',
      older > 0 ? h('a', { href: '#/recoveries/' + encodeURIComponent(cluster) }, `${older} older recoveries →`) : null));
}
