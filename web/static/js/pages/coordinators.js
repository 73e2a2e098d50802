// The Raft group as this node sees it, and the global recovery switch.
import { h, table, badge, dl } from '../dom.js';
import { get } from '../api.js';
import { session } from '../session.js';
import * as act from '../actions.js';

export const title = () => 'Coordinators';

export async function load() {
  const [st, mode] = await Promise.all([get('coordinators'), get('recovery-mode').catch(() => null)]);
  return { st, mode };
}

const GOSSIP = { alive: ['✔ alive', 'ok'], dead: ['✖ dead', 'crit'], left: ['⏏ left', 'muted'], unknown: ['? unknown', 'warn'] };

export function render({ st, mode }, _p, ctx) {
  const voters = (st.members || []).filter((m) => m.suffrage === 'voter');
  const alive = voters.filter((m) => m.gossip === 'alive').length;
  return h('div', { class: 'stack' },
    h('section', { class: 'panel' },
      h('div', { class: 'summary' },
        st.has_quorum ? badge('✔ quorum', 'ok') : badge('✖ no quorum', 'crit'),
        h('span', null, 'leader ', h('strong', null, st.leader_id || '✖ none'), st.leader_http_addr ? ` (${st.leader_http_addr})` : ''),
        h('span', null, `term ${st.term}`),
        h('span', null, `${alive} of ${voters.length} voters alive; ${Math.floor(voters.length / 2) + 1} needed`)),
      dl([
        ['This node', h('span', null, h('strong', null, st.node_id), ` is ${st.state}`)],
        ['Last log index', String(st.last_index)],
        ['Applied index', String(st.applied_index)],
      ], 'cols')),
    h('section', { class: 'panel', 'data-key': 'members' }, h('h2', null, 'Members'),
      table(['Id', 'Raft state', 'Suffrage', 'Gossip', 'HTTP', 'Raft', 'Gossip address', ''],
        (st.members || []).map((m) => h('tr', { 'data-key': 'member:' + m.id, class: m.gossip === 'dead' ? 'row-bad' : '' },
          h('td', null, h('strong', null, m.id), m.id === st.node_id ? badge('this node', 'info') : null),
          h('td', null, m.raft_state === 'leader' ? badge('★ leader', 'ok') : m.raft_state),
          h('td', null, m.suffrage),
          h('td', null, badge(...(GOSSIP[m.gossip] || [m.gossip, 'muted']))),
          h('td', { class: 'mono' }, m.http_addr || '—'),
          h('td', { class: 'mono' }, m.raft_addr || '—'),
          h('td', { class: 'mono' }, m.gossip_addr || '—'),
          h('td', null, session.can('admin') && m.id !== st.leader_id && m.gossip !== 'alive'
            ? h('button', { type: 'button', class: 'small danger-outline', onclick: () => act.removeCoordinator(m.id, ctx.refresh) }, 'Remove…')
            : null))), 'grid')),
    mode ? h('section', { class: 'panel', 'data-key': 'mode' }, h('h2', null, 'Automatic recovery'),
      h('p', null, mode.automatic
        ? [badge('✔ ON', 'ok'), ' Warden fails over dead masters and intermediate masters by itself.']
        : [badge('‖ OFF', 'warn'), ' Warden detects problems but does not fail over by itself, in any cluster.']),
      session.can('admin')
        ? h('button', { type: 'button', class: mode.automatic ? 'danger-outline' : 'primary', onclick: () => act.recoveryMode(mode.automatic, ctx.refresh) },
          mode.automatic ? 'Turn OFF…' : 'Turn ON…')
        : null) : null);
}
