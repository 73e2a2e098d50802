// Inline SVG pictures, drawn by code: no library, no markup strings.
// Colours and line styles live in app.css (classes), so the pictures
// follow the console's palette and the CSP (no inline styles).

const NS = 'http://www.w3.org/2000/svg';

// s builds an SVG element like dom.h: s('rect', {x: 1, class: 'bar'}, ...).
// A string child becomes a text node (never markup).
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// tip is a native tooltip for the element it is put in.
export const tip = (text) => s('title', null, text);

// ticks returns round tick values between 0 and span (any unit) and the
// step, about n of them: 1, 2 or 5 times a power of ten, or, with
// steps given, the first of those that yields at most n ticks.
export function ticks(span, n, steps) {
  if (!(span > 0)) return { step: 1, values: [0] };
  let step;
  if (steps) {
    step = steps.find((x) => span / x <= n) || steps[steps.length - 1] * Math.ceil(span / n / steps[steps.length - 1]);
  } else {
    const raw = span / n;
    const p = 10 ** Math.floor(Math.log10(raw));
    step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw);
  }
  const values = [];
  for (let v = 0; v <= span + 1e-9; v += step) values.push(v);
  return { step, values };
}

// clip shortens a label to n characters.
export function clip(text, n) {
  text = String(text || '');
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}
