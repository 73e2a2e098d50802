// Tiny DOM and formatting helpers. Everything is built with createElement
// and textContent, never innerHTML, so API data can never inject markup.

// h builds an element: h('div', {class: 'x', onclick: fn}, child, ...).
// Children may be strings, nodes, arrays, or null/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// key formats a topology key {host, port} as host:port.
export function key(k) {
  if (!k || (!k.host && !k.port)) return '—';
  return k.host.includes(':') ? `[${k.host}]:${k.port}` : `${k.host}:${k.port}`;
}

// isZeroTime: Go encodes an unset time.Time as year 1.
export function isZeroTime(t) {
  return !t || t.startsWith('0001-01-01');
}

// time formats an RFC 3339 time as local "YYYY-MM-DD HH:MM:SS".
export function time(t) {
  if (isZeroTime(t)) return '—';
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// ago formats the time since t ("12s ago").
export function ago(t) {
  if (isZeroTime(t)) return '—';
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  return s < 1 ? 'just now' : secs(Math.floor(s)) + ' ago';
}

// secs formats a number of seconds compactly: 950ms, 12s, 3m 04s, 2h 10m.
export function secs(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '—';
  if (s < 0) s = 0;
  if (s < 1) return Math.round(s * 1000) + 'ms';
  if (s < 60) return (s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)) + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

// lag formats a whole number of seconds of replication lag; "n/a" when
// the server reports none (Seconds_Behind_Master NULL: a thread is down,
// or it is not a replica), never a raw NULL.
export function lag(s) {
  if (s === null || s === undefined) return 'n/a';
  return s < 60 ? s + 's' : secs(s);
}

// nanos formats a Go time.Duration (JSON: integer nanoseconds).
export function nanos(ns) {
  return ns === null || ns === undefined ? '—' : secs(ns / 1e9);
}

// between formats the duration from a to b (RFC 3339 times).
export function between(a, b) {
  if (isZeroTime(a) || isZeroTime(b)) return '—';
  return secs((new Date(b) - new Date(a)) / 1000);
}

// badge is a small labelled tag. The text always carries the meaning; the
// class only adds colour.
export function badge(text, cls, title) {
  return h('span', { class: 'badge ' + (cls || ''), title }, text);
}

// sevBadge shows a severity with an icon and a word, not colour alone.
export function sevBadge(sev) {
  switch (sev) {
    case 'critical': return badge('✖ critical', 'crit');
    case 'warning': return badge('▲ warning', 'warn');
    case 'ok': return badge('✔ ok', 'ok');
  }
  return badge(sev || 'unknown', 'muted');
}

// table builds a table from a header row and body rows (arrays of cells).
export function table(head, rows, cls) {
  return h('table', { class: cls || '' },
    h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows));
}

// empty is the text shown where a list has nothing in it.
export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

// dl renders label/value pairs (values may be nodes).
export function dl(pairs, cls) {
  return h('dl', { class: 'facts ' + (cls || '') },
    pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

// agoEl is a live "12s ago" (app.js refreshes it every second); the
// absolute time is in the tooltip.
export function agoEl(t) {
  if (isZeroTime(t)) return '—';
  return h('time', { datetime: t, 'data-ago': true, title: time(t) }, ago(t));
}

// clusterLink names a cluster everywhere the same way: a link to its page
// by name, its alias (when it has one) beside it in quotes.
export function clusterLink(name, alias, cls) {
  return h('span', { class: 'cluster-name' },
    h('a', { href: '#/cluster/' + encodeURIComponent(name), class: cls || null }, name),
    alias ? [' ', h('span', { class: 'alias', title: 'alias of ' + name }, '“' + alias + '”')] : null);
}
