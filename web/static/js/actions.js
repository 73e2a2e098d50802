// The operator actions. Each opens the confirmation dialog; which buttons
// appear is decided by the pages from session.can(role), mirroring the
// API's route table (operator: downtime, promotion rule, ack, switchover;
// admin: failover, recovery mode, coordinator removal).
import { h, key, time } from './dom.js';
import { request, keyPath } from './api.js';
import { open, field, requestLine, Blocked } from './dialog.js';
import { plan, refusal } from './plan.js';

// recoveryAction is a switchover or a failover: the plan comes from the
// API's dry run, for the candidate chosen in the dialog. cluster is its
// name or {name, alias} (the title then shows the alias too).
function recoveryAction(kind, cl, candidates, preset, done) {
  const cluster = typeof cl === 'string' ? cl : cl.name;
  const shown = typeof cl === 'string' || !cl.alias ? cluster : `${cluster} “${cl.alias}”`;
  const select = h('select', { name: 'candidate' },
    h('option', { value: '' }, 'Let Warden choose (suggested)'),
    candidates.map((k) => h('option', { value: key(k), selected: key(k) === preset }, key(k))));
  const path = `clusters/${encodeURIComponent(cluster)}/${kind}`;
  const body = (v) => (v.candidate ? { candidate: v.candidate } : {});
  return open({
    title: `${kind === 'switchover' ? 'Switch over' : 'Fail over'} cluster ${shown}`,
    intro: h('p', null, kind === 'switchover'
      ? 'A planned change of master: the current master is demoted and a replica promoted. The dry run below is what Warden would do right now.'
      : 'Promote a replica in place of the master, whether or not Warden sees it as dead. Use it when automatic recovery did not act. The dry run below is what Warden would do right now.'),
    fields: [field('Candidate', select)],
    values: () => ({ candidate: select.value }),
    plan: async (v) => {
      const res = await request('POST', path + '?dry_run=true', body(v));
      const node = h('div', null, requestLine('POST', path, body(v)), plan(res.plan, { requested: v.candidate }));
      // A dry run that would refuse still answers 200, with the refusal in
      // the plan: the same request without dry_run would get its status.
      if (refusal(res.plan)) throw new Blocked(node);
      return node;
    },
    confirm: kind === 'switchover' ? 'Switch over now' : 'Fail over now',
    danger: true,
    wide: true,
    act: async (v) => {
      const res = await request('POST', path, body(v));
      return h('span', null, `${kind} started as recovery `, h('a', { href: '#/recovery/' + res.recovery_id }, '#' + res.recovery_id), '.');
    },
    done,
  });
}

export const switchover = (cluster, candidates, preset, done) => recoveryAction('switchover', cluster, candidates, preset, done);
export const failover = (cluster, candidates, preset, done) => recoveryAction('failover', cluster, candidates, preset, done);

export function beginDowntime(k, done) {
  const dur = h('input', { name: 'duration', value: '1h', required: true, size: 8, pattern: '[0-9hms.]+' });
  const reason = h('input', { name: 'reason', required: true, size: 40, placeholder: 'e.g. kernel upgrade, ticket OPS-123' });
  const path = keyPath(k) + '/downtime';
  const body = () => ({ duration: dur.value.trim(), reason: reason.value.trim() });
  return open({
    title: `Downtime ${key(k)}`,
    intro: h('p', null, 'While downtimed, Warden does not recover this instance or fail over because of it. Problems are still shown.'),
    fields: [field('Duration', dur, 'Go duration: 30m, 2h, 1h30m (at most 720h)'), field('Reason', reason, 'Required; recorded with your name')],
    values: body,
    plan: async (v) => {
      if (!v.reason) throw new Error('Give a reason first.');
      return h('div', null, requestLine('PUT', path, v),
        h('p', null, `Recovery of ${key(k)} is suspended for ${v.duration}, until you end the downtime or it expires.`));
    },
    confirm: 'Begin downtime',
    act: async (v) => {
      const d = await request('PUT', path, v);
      return h('span', null, `${key(k)} is downtimed until ${time(d.until)}.`);
    },
    done,
  });
}

export function endDowntime(k, dt, done) {
  const path = keyPath(k) + '/downtime';
  return open({
    title: `End downtime of ${key(k)}`,
    plan: async () => h('div', null, requestLine('DELETE', path),
      h('p', null, `The downtime (until ${time(dt.until)}, “${dt.reason}”, by ${dt.owner}) ends now; Warden may recover ${key(k)} again.`)),
    confirm: 'End downtime',
    act: async () => { await request('DELETE', path); return h('span', null, 'Downtime ended.'); },
    done,
  });
}

const RULES = [
  ['prefer', 'prefer: promote before others'],
  ['neutral', 'neutral: no preference (default)'],
  ['prefer_not', 'prefer_not: only if nothing better'],
  ['must_not', 'must_not: never promote'],
];

export function promotionRule(k, current, done) {
  const select = h('select', { name: 'rule' }, RULES.map(([v, t]) => h('option', { value: v, selected: v === current }, t)));
  const path = keyPath(k) + '/promotion-rule';
  return open({
    title: `Promotion rule of ${key(k)}`,
    fields: [field('Rule', select)],
    values: () => ({ rule: select.value }),
    plan: async (v) => {
      if (v.rule === current) throw new Error(`The rule is already ${current}.`);
      return h('div', null, requestLine('PUT', path, v), h('p', null, `Changes ${key(k)} from ${current} to ${v.rule} for future failovers and switchovers.`));
    },
    confirm: 'Set rule',
    act: async (v) => { await request('PUT', path, v); return h('span', null, `Promotion rule is now ${v.rule}.`); },
    done,
  });
}

export function makeWritable(k, done) {
  const path = keyPath(k) + '/read-only';
  const body = { read_only: false };
  return open({
    title: `Make ${key(k)} writable`,
    plan: async () => h('div', null, requestLine('PUT', path, body),
      h('p', null, `${key(k)} is its cluster's master but read-only, so the application cannot write. `,
        'Warden first checks that no recovery is running and that every other instance of the cluster is read-only ',
        '(never two writable masters), then sets read_only=OFF.')),
    confirm: 'Make writable',
    danger: true,
    act: async () => { await request('PUT', path, body); return h('span', null, `${key(k)} takes writes.`); },
    done,
  });
}

export function ack(r, done) {
  const comment = h('input', { name: 'comment', size: 50, placeholder: 'optional: what you checked' });
  const path = `recoveries/${r.id}/ack`;
  return open({
    title: `Acknowledge recovery #${r.id}`,
    intro: h('p', null, 'Acknowledging records that a person has looked at this recovery and its outcome.'),
    fields: [field('Comment', comment)],
    values: () => ({ comment: comment.value.trim() }),
    plan: async (v) => h('div', null, requestLine('POST', path, v)),
    confirm: 'Acknowledge',
    act: async (v) => { await request('POST', path, v); return h('span', null, `Recovery #${r.id} acknowledged.`); },
    done,
  });
}

export function recoveryMode(automatic, done) {
  const next = !automatic;
  return open({
    title: next ? 'Turn automatic recovery ON' : 'Turn automatic recovery OFF',
    plan: async () => h('div', null, requestLine('PUT', 'recovery-mode', { automatic: next }),
      h('p', null, next
        ? 'Warden will again fail over dead masters and intermediate masters by itself, in every cluster.'
        : 'Warden keeps detecting problems but will NOT fail over anything by itself, in any cluster, until this is turned back on. Manual failover and switchover still work.')),
    confirm: next ? 'Turn ON' : 'Turn OFF',
    danger: !next,
    act: async () => { await request('PUT', 'recovery-mode', { automatic: next }); return h('span', null, `Automatic recovery is ${next ? 'ON' : 'OFF'}.`); },
    done,
  });
}

export function removeCoordinator(id, done) {
  const path = `coordinators/${encodeURIComponent(id)}`;
  return open({
    title: `Remove coordinator ${id}`,
    plan: async () => h('div', null, requestLine('DELETE', path),
      h('p', null, `${id} leaves the Raft configuration: the quorum is computed without it. Do this only for a node that is gone for good.`)),
    confirm: 'Remove',
    danger: true,
    act: async () => { await request('DELETE', path); return h('span', null, `${id} removed.`); },
    done,
  });
}

// The alias grammar of the API (contracts: never contains ':', so it can
// never look like a host:port cluster name).
export const ALIAS_RE = /^[a-z][a-z0-9_-]{0,62}$/;

// alias sets or clears a cluster's alias (operator). An empty field clears
// it. The API refuses a bad alias (400, naming the field) and one another
// cluster holds (409); either answer is shown in the dialog as it came.
export function alias(cluster, current, done) {
  const input = h('input', { name: 'alias', value: current || '', size: 30, maxlength: 63, autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. orders' });
  const path = `clusters/${encodeURIComponent(cluster)}/alias`;
  return open({
    title: `Alias of cluster ${cluster}`,
    intro: h('p', null, 'A name people use for this cluster. It is shown beside the cluster name and accepted wherever a cluster name is (API, CLI, this console). Empty the field to clear it.'),
    fields: [field('Alias', input, 'a lowercase letter first, then lowercase letters, digits, - or _ (at most 63 characters)')],
    values: () => ({ alias: input.value.trim() }),
    plan: async (v) => {
      if (!v.alias) {
        if (!current) throw new Error('The cluster has no alias: type one to set it.');
        return h('div', null, requestLine('DELETE', path), h('p', null, `Clears the alias “${current}”; the cluster is named ${cluster} only.`));
      }
      if (v.alias === current) throw new Error(`The alias is already “${current}”.`);
      if (!ALIAS_RE.test(v.alias)) throw new Error(`alias “${v.alias}” is not valid: a lowercase letter first, then lowercase letters, digits, - or _ (at most 63 characters).`);
      return h('div', null, requestLine('PUT', path, v),
        h('p', null, current ? `Renames the alias from “${current}” to “${v.alias}”.` : `Cluster ${cluster} can then be called “${v.alias}”.`));
    },
    confirm: 'Save alias',
    act: async (v) => {
      if (!v.alias) {
        await request('DELETE', path);
        return h('span', null, `Alias “${current}” cleared.`);
      }
      const r = await request('PUT', path, v);
      return h('span', null, `Cluster ${cluster} is now also “${(r && r.alias) || v.alias}”.`);
    },
    done,
  });
}
