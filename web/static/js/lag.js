// Replication lag over the last hour, one sparkline per replica, from
// GET /clusters/{cluster}/lag: the serving node's own probes, sampled every
// interval_seconds into a bounded ring buffer (window_seconds, 1 h). The
// first fetch takes the whole window; later ones ask only for newer points
// (?since=) every interval, so the picture moves without a reload and
// without re-reading the hour.
import { h, secs } from './dom.js';
import { get, ApiError } from './api.js';
import { s, tip } from './svg.js';

// A point is [unix_seconds, lag_seconds_or_null]; null means the replica
// was not replicating (or its lag was unknown) at that sample.

const MIN_POLL_S = 2;
const MAX_POLL_S = 30;
const RETRY_MS = 60000; // a node without the endpoint is asked again after this

// state of the one cluster page being shown.
let st = fresh('');

function fresh(cluster) {
  return { cluster, at: 0, shape: '', interval: 10, window: 3600, series: new Map(), error: null, missing: false };
}

// lagHistory returns the cluster's lag history as a plain object for the
// page's data (so a new point repaints the page): {interval, window,
// series: [{instance, points}], error}. shape (the tree's members) forces a
// full fetch when replicas come or go.
export async function lagHistory(cluster, shape, now = Date.now()) {
  if (st.cluster !== cluster) st = fresh(cluster);
  const wait = st.missing ? RETRY_MS : clamp(st.interval, MIN_POLL_S, MAX_POLL_S) * 1000;
  const full = st.at === 0 || st.shape !== shape;
  if (full || now - st.at >= wait) {
    const since = full ? 0 : newest(st);
    try {
      const r = await get(`clusters/${encodeURIComponent(cluster)}/lag` + (since ? `?since=${since}` : ''));
      if (st.cluster !== cluster) return view();
      merge(r, full);
      st.error = null;
      st.missing = false;
    } catch (e) {
      // A node that predates the endpoint answers 404 for the route: the
      // panel says so instead of an empty chart.
      st.missing = e instanceof ApiError && e.status === 404 && !st.series.size;
      st.error = e instanceof ApiError ? e.text : String(e);
    }
    st.at = now;
    st.shape = shape;
  }
  return view();
}

function merge(r, full) {
  st.interval = r.interval_seconds > 0 ? r.interval_seconds : st.interval;
  st.window = r.window_seconds > 0 ? r.window_seconds : st.window;
  if (full) st.series = new Map();
  for (const sr of r.series || []) {
    const old = st.series.get(sr.instance) || [];
    const last = old.length ? old[old.length - 1][0] : -Infinity;
    st.series.set(sr.instance, old.concat((sr.points || []).filter((p) => Array.isArray(p) && p[0] > last)));
  }
  // Keep the window: drop points older than it, counted from the newest.
  const end = newest(st);
  for (const [k, pts] of st.series) {
    const i = pts.findIndex((p) => p[0] > end - st.window);
    st.series.set(k, i < 0 ? [] : i ? pts.slice(i) : pts);
  }
}

function newest(x) {
  let t = 0;
  for (const pts of x.series.values()) if (pts.length && pts[pts.length - 1][0] > t) t = pts[pts.length - 1][0];
  return t;
}

function view() {
  return {
    interval: st.interval, window: st.window, error: st.error, missing: st.missing,
    series: [...st.series].map(([instance, points]) => ({ instance, points })).sort((a, b) => a.instance.localeCompare(b.instance)),
  };
}

const clamp = (v, a, b) => Math.min(Math.max(v, a), b);

// Layout, in viewBox units (1200 wide: about a pixel at 1366x768).
const W = 1200;
const NAME = 220; // instance names, right-aligned at this x
const VALUES = 190; // "now … max …" on the right
const ROW = 30;
const CH = 21; // chart height inside a row
const TOP = 4;
const AXIS = 18;
const WARN_S = 10; // the cluster page draws links lagging more than this as lagging

// niceMax rounds a lag up to a scale a person reads at a glance.
function niceMax(v) {
  for (const m of [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]) if (v <= m) return m;
  return Math.ceil(v / 3600) * 3600;
}

// fmt is a lag value as words: seconds, or n/a for "not replicating".
export function fmtLag(v) {
  if (v === null || v === undefined) return 'n/a';
  return v < 60 ? (v < 10 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v)) + 's' : secs(v);
}

// stats says what a series' labels say: the last value, the largest,
// how much of it was null (not replicating).
export function stats(points) {
  let max = null;
  let nulls = 0;
  for (const [, v] of points) {
    if (v === null || v === undefined) nulls++;
    else if (max === null || v > max) max = v;
  }
  const last = points.length ? points[points.length - 1] : null;
  return { last, max, nulls };
}

// lagPanel draws the replicas' lag as sparklines on one time axis: the
// hour up to the newest sample. A null sample is a gap in the line with a
// hatched band ("not replicating"); samples missing altogether (the node
// was down) are a gap without a band.
// order lists instances in the order to draw them (the tree's); series
// of instances not in it come last.
export function lagPanel(d, order = []) {
  const head = h('h2', null, 'Replication lag, last hour');
  if (d.missing) {
    return h('section', { class: 'panel lag-panel' }, head,
      h('p', { class: 'muted small' }, 'This Warden node does not serve lag history (', d.error, ').'));
  }
  const pos = (k) => { const i = order.indexOf(k); return i < 0 ? order.length : i; };
  const rows = [...d.series].sort((a, b) => pos(a.instance) - pos(b.instance) || a.instance.localeCompare(b.instance));
  const end = Math.max(0, ...rows.map((x) => (x.points.length ? x.points[x.points.length - 1][0] : 0)));
  if (!rows.length || !end) {
    return h('section', { class: 'panel lag-panel' }, head,
      h('p', { class: 'muted small' }, d.error ? ['✖ ', d.error] : rows.length ? `No sample yet: the first comes within ${d.interval}s.` : 'No replica has lag history yet.'));
  }
  const t0 = end - d.window;
  const first = Math.min(...rows.filter((x) => x.points.length).map((x) => x.points[0][0]));
  const x0 = NAME + 10;
  const xw = W - x0 - VALUES - 10;
  const X = (t) => x0 + ((t - t0) / d.window) * xw;
  const H = TOP + rows.length * ROW + AXIS;
  // The hatch of "not replicating" bands (app.css fills them with it).
  const parts = [s('defs', null, s('pattern', { id: 'lag-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
    s('rect', { class: 'hatch-bg', width: 6, height: 6 }), s('line', { class: 'hatch', x1: 0, y1: 0, x2: 0, y2: 6 })))];
  // Time axis: every 10 minutes back from the newest sample.
  const step = d.window >= 1800 ? 600 : d.window >= 600 ? 120 : 60;
  for (let back = 0; back <= d.window; back += step) {
    const x = X(end - back);
    parts.push(s('line', { class: 'grid', x1: x, x2: x, y1: TOP, y2: H - AXIS + 2 }),
      s('text', { class: 'axis', x, y: H - 5, 'text-anchor': back === d.window ? 'start' : back === 0 ? 'end' : 'middle' },
        back === 0 ? 'now' : `−${Math.round(back / 60)} min`));
  }
  rows.forEach((sr, i) => parts.push(row(sr, i, d, X, t0, end)));
  return h('section', { class: 'panel lag-panel' }, head,
    s('svg', { class: 'lag-chart', viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
      'aria-label': `Replication lag of ${rows.length} replica(s) over the last ${Math.round(d.window / 60)} minutes` }, parts),
    h('p', { class: 'legend small muted' },
      'Seconds behind the source, sampled every ', d.interval, 's by this node; each row has its own scale (0 at the bottom, the top value on its left). ',
      h('span', { class: 'lg-swatch lag-line' }), ' lag  ',
      h('span', { class: 'lg-swatch lag-null' }), ' ▨ not replicating (no value)  ',
      h('span', { class: 'lg-swatch lag-warn' }), ` - - ${WARN_S}s (lagging)`,
      '. Newest sample ', h('span', { class: 'mono lag-newest' }, clock(end)),
      first > t0 + 2 * d.interval ? [', first ', h('span', { class: 'mono' }, clock(first)), ' (this node keeps what it sampled since it started)'] : null, '.',
      d.error ? h('span', { class: 'bad' }, ' ✖ not updating: ', d.error) : null));
}

function row(sr, i, d, X, t0, end) {
  const pts = sr.points.filter((p) => p[0] >= t0);
  const { last, max, nulls } = stats(pts);
  const top = niceMax(Math.max(max || 0, 1));
  const y0 = TOP + i * ROW + 3;
  const Y = (v) => y0 + CH - (Math.min(v, top) / top) * CH;
  // Consecutive samples further apart than this are not joined: there was
  // no sample in between (the node did not probe).
  const joinGap = d.interval * 2.5;
  const parts = [s('rect', { class: 'lag-bg', x: X(t0), y: y0, width: X(end) - X(t0), height: CH })];
  if (top >= WARN_S) parts.push(s('line', { class: 'lag-warn', x1: X(t0), x2: X(end), y1: Y(WARN_S), y2: Y(WARN_S) }));
  let seg = [];
  let nullFrom = null;
  const flush = () => {
    if (seg.length === 1) parts.push(s('circle', { class: 'lag-dot', cx: seg[0][0], cy: seg[0][1], r: 1.8 }));
    else if (seg.length > 1) parts.push(s('polyline', { class: 'lag-line', points: seg.map((p) => p.join(',')).join(' ') }));
    seg = [];
  };
  const closeNull = (t) => {
    if (nullFrom === null) return;
    const x = X(nullFrom);
    parts.push(s('rect', { class: 'lag-null', x, y: y0, width: Math.max(X(t) - x, 2), height: CH }));
    nullFrom = null;
  };
  pts.forEach(([t, v], j) => {
    const prev = j ? pts[j - 1][0] : null;
    if (prev !== null && t - prev > joinGap) { flush(); closeNull(prev + d.interval); }
    if (v === null || v === undefined) {
      flush();
      if (nullFrom === null) nullFrom = t;
    } else {
      closeNull(t);
      seg.push([+X(t).toFixed(1), +Y(v).toFixed(1)]);
    }
  });
  flush();
  closeNull(end);
  const now = last ? fmtLag(last[1]) : 'n/a';
  const nowWord = last && (last[1] === null || last[1] === undefined) ? 'n/a (not replicating)' : now;
  const stale = last && end - last[0] > d.interval * 2.5 ? ` (last sample ${secs(end - last[0])} earlier)` : '';
  const summary = `${sr.instance}: now ${nowWord}${stale}, max ${fmtLag(max)} in the last ${Math.round(d.window / 60)} min` +
    (nulls ? `, not replicating in ${nulls} of ${pts.length} samples` : '');
  const warn = last && last[1] !== null && last[1] > WARN_S;
  return s('g', { class: 'lag-row' + (warn ? ' warn' : '') + (last && last[1] === null ? ' null' : ''), 'data-instance': sr.instance,
    'data-points': pts.length, 'data-now': last ? String(last[1]) : '', 'data-max': max === null ? '' : String(max) },
  tip(summary),
  s('text', { class: 'lag-name', x: NAME, y: y0 + 10, 'text-anchor': 'end' }, sr.instance),
  s('text', { class: 'lag-scale', x: NAME, y: y0 + CH, 'text-anchor': 'end' }, `0–${scaleText(top)}`),
  parts,
  s('text', { class: 'lag-now', x: W - VALUES + 4, y: y0 + 10 }, (warn ? '▲ ' : last && last[1] === null ? '✖ ' : '') + 'now ' + nowWord),
  s('text', { class: 'lag-max', x: W - VALUES + 4, y: y0 + CH }, 'max ' + fmtLag(max) + (nulls ? ` · ▨ ${Math.round((100 * nulls) / pts.length)}%` : '')));
}

// scaleText is a row's top value: 60s, 5 min, 2 h.
function scaleText(v) {
  if (v <= 60) return v + 's';
  if (v < 3600) return Math.round(v / 60) + ' min';
  return Math.round(v / 3600) + ' h';
}

function clock(t) {
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
