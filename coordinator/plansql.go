package coordinator

import (
	"time"

	"github.com/warden-ha/warden/topology"
)

// planSQL spells the statements a plan step will run on one server, in its
// own dialect, for the dry run and the record: topology.PlanSQL, built by
// the same builders the Actor executes, with the server's last facts (they
// decide the statements that depend on its state: semi-sync, how a relay
// log is drained). Passwords are never spelled: '***'.
type planSQL struct {
	d     topology.Dialect
	facts *topology.Instance
}

// sqlFor is the statements of a server whose last facts are inst (nil or
// never probed: the family's guess, which the dialect says is one).
func sqlFor(inst *topology.Instance) planSQL {
	return planSQL{d: inst.Dialect(), facts: inst}
}

// flavor names the dialect's family for display ("" when nothing is known).
func (s planSQL) flavor() string {
	if s.facts == nil || (!s.d.Known() && s.facts.Version == "") {
		return ""
	}
	return s.d.Family()
}

func (s planSQL) render(a topology.Action, args topology.ActionArgs) []string {
	args.Facts = s.facts
	out, err := topology.PlanSQL(s.d, a, args)
	if err != nil {
		return []string{"(cannot spell " + string(a) + ": " + err.Error() + ")"}
	}
	return out
}

func (s planSQL) readOnly(on bool) []string {
	if on {
		return s.render(topology.ActionSetReadOnly, topology.ActionArgs{})
	}
	return s.render(topology.ActionSetWritable, topology.ActionArgs{})
}

func (s planSQL) fence() []string {
	return s.render(topology.ActionFence, topology.ActionArgs{})
}

func (s planSQL) killSessions() []string {
	return s.render(topology.ActionKillClientConnections, topology.ActionArgs{})
}

func (s planSQL) promote() []string { return s.render(topology.ActionPromote, topology.ActionArgs{}) }

func (r *recoveries) source(to topology.Key) topology.SourceOptions {
	o := r.sourceOptions(to)
	o.Password = ""
	return o
}

// changeSource: Actor.ChangeSource (GTID positioning in the server's
// dialect: slave_pos on MariaDB, auto-positioning on MySQL).
func (s planSQL) changeSource(o topology.SourceOptions) []string {
	return s.render(topology.ActionChangeSource, topology.ActionArgs{Source: o})
}

// catchUp: Actor.CatchUpFrom.
func (s planSQL) catchUp(o topology.SourceOptions) []string {
	return s.render(topology.ActionCatchUpFrom, topology.ActionArgs{Source: o})
}

// adoptOwnPosition: Actor.AdoptOwnPosition (an old master about to
// replicate).
func (s planSQL) adoptOwnPosition() []string {
	return s.render(topology.ActionAdoptOwnPosition, topology.ActionArgs{})
}

// waitGTID: Actor.WaitForGTID ("" : the position read at run time).
func (s planSQL) waitGTID(pos string, _ time.Duration) []string {
	return s.render(topology.ActionWaitForGTID, topology.ActionArgs{GTID: pos})
}

// drain: Actor.DrainRelayLog.
func (s planSQL) drain() []string {
	return s.render(topology.ActionDrainRelayLog, topology.ActionArgs{})
}
