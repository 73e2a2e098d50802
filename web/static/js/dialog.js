// The confirmation dialog every action goes through: fields, then the plan
// (the API's dry run where it has one, else what will be sent and what it
// does), then an explicit confirm; the result or the API's error is shown
// in the same dialog. A native <dialog> gives focus trapping and Escape.
import { h } from './dom.js';
import { ApiError } from './api.js';
import { relearn } from './session.js';

// open shows the dialog. opts:
//   title, intro (node), fields (nodes), values() -> current field values,
//   plan(values) -> Promise<node> (throws to block confirming),
//   confirm: button label, danger: bool, wide: room for a candidate matrix,
//   act(values) -> Promise<node> (the result to show),
//   done(): called when the dialog closes after an action ran.
export function open(opts) {
  const planBox = h('div', { class: 'plan', 'aria-live': 'polite' });
  const result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite' });
  const confirm = h('button', { type: 'submit', class: opts.danger ? 'danger' : 'primary', disabled: true }, opts.confirm);
  const cancel = h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel');
  let acted = false;
  let planGen = 0;

  async function replan() {
    const g = ++planGen;
    confirm.disabled = true;
    planBox.replaceChildren(h('p', { class: 'muted' }, 'Working out the plan…'));
    try {
      const node = await opts.plan(opts.values ? opts.values() : {});
      if (g !== planGen) return;
      planBox.replaceChildren(h('h3', null, 'Plan'), node);
      confirm.disabled = false;
    } catch (e) {
      if (g !== planGen) return;
      // A local check (a missing field) is a hint; an API refusal is an
      // error; a plan that says it would refuse is shown, unconfirmable.
      planBox.replaceChildren(h('h3', null, 'Plan'), e instanceof Blocked ? e.node : e instanceof ApiError
        ? errorBox(e, 'The plan could not be made, so this cannot be confirmed.')
        : h('p', { class: 'hint' }, 'ℹ ' + e.message));
    }
  }

  const form = h('form', {
    method: 'dialog',
    oninput: () => { if (!acted) replan(); },
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (confirm.disabled) return;
      confirm.disabled = true;
      result.replaceChildren(h('p', { class: 'muted' }, 'Working…'));
      try {
        const node = await opts.act(opts.values ? opts.values() : {});
        acted = true;
        result.replaceChildren(h('div', { class: 'ok-box' }, h('strong', null, '✔ Done. '), node));
        confirm.remove();
        cancel.textContent = 'Close';
        cancel.focus();
      } catch (e) {
        result.replaceChildren(errorBox(e, ''));
        if (e instanceof ApiError && e.status === 403) relearn().catch(() => {});
        confirm.disabled = false;
      }
    },
  },
  h('h2', null, opts.title),
  opts.intro || null,
  opts.fields && opts.fields.length ? h('fieldset', null, opts.fields) : null,
  planBox, result,
  h('div', { class: 'row end' }, cancel, confirm));

  const dlg = h('dialog', { class: 'action' + (opts.wide ? ' wide' : ''), 'aria-label': opts.title }, form);
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (acted && opts.done) opts.done();
  });
  document.body.append(dlg);
  dlg.showModal();
  replan();
  return dlg;
}

// Blocked is thrown by a plan() that could be made but says the action
// would be refused (a dry run's refusal): the plan is shown and the
// confirm button stays disabled.
export class Blocked extends Error {
  constructor(node) {
    super('the plan says this would be refused');
    this.node = node;
  }
}

// errorBox shows an error in the API's own words.
export function errorBox(e, lead) {
  return h('div', { class: 'error', role: 'alert' },
    h('strong', null, '✖ ' + (lead || 'Failed.')), ' ',
    h('span', { class: 'mono' }, e instanceof ApiError ? e.text : String(e)));
}

// field wraps a control with its label.
export function field(label, control, hint) {
  const id = control.id || 'f-' + Math.random().toString(36).slice(2);
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { class: 'muted' }, hint) : null);
}

// request shows the HTTP request an action will send, so the plan for
// actions without a dry run is still concrete.
export function requestLine(method, path, body) {
  return h('pre', { class: 'req' }, `${method} /api/v1/${path}` + (body === undefined ? '' : '\n' + JSON.stringify(body, null, 2)));
}
