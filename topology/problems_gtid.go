package topology

import (
	"fmt"
	"strings"

	"github.com/warden-ha/warden/topology/gtid"
)

// GTID text in an Instance comes from the parsers, which store canonical
// text; a value that still fails to parse cannot be compared, and the
// predicates below then stay silent rather than guess.

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// appliedPos is what a replica has applied, in its flavour's terms.
func appliedPos(inst *Instance) string { return inst.Dialect().Applied(inst) }

// sourcePos is what a source has written, in its flavour's terms.
func sourcePos(src *Instance) string { return src.Dialect().Written(src) }

// gtidLag counts the transactions inst lacks: relative to its source when
// the source's position is known, else relative to what inst has received
// but not applied (Gtid_IO_Pos / Retrieved_Gtid_Set).
func gtidLag(inst, source *Instance) (n uint64, against string, ok bool) {
	d := inst.Dialect()
	f := d.GTIDFlavor()
	applied, err := gtid.Parse(f, appliedPos(inst))
	if err != nil {
		return 0, "", false
	}
	ahead, against := "", ""
	if source != nil && sourcePos(source) != "" && source.Dialect().GTIDFlavor() == f {
		ahead, against = sourcePos(source), "source "+source.Key.String()
	} else {
		ahead, against = d.Received(inst.Replication), "received "+d.Columns().Received
	}
	if ahead == "" {
		return 0, "", false
	}
	set, err := gtid.Parse(f, ahead)
	if err != nil {
		return 0, "", false
	}
	n, err = set.AheadOf(applied)
	return n, against, err == nil
}

func checkReplicaLagging(inst, source *Instance, cfg ProblemConfig) []Problem {
	if !inst.IsReplica() {
		return nil
	}
	rs := inst.Replication
	lagging := func(reason string) []Problem {
		return []Problem{{Code: ProblemReplicaLagging, Severity: SeverityWarning, Instance: inst.Key, Reason: reason}}
	}
	if rs.SecondsBehind != nil {
		// A delayed replica is behind on purpose by SQL_Delay seconds.
		lag := max(*rs.SecondsBehind-rs.SQLDelay, 0)
		if lag <= cfg.MaxLagSeconds {
			return nil
		}
		reason := fmt.Sprintf("%ds behind %s (threshold %ds)", lag, rs.SourceKey(), cfg.MaxLagSeconds)
		if rs.SQLDelay > 0 {
			reason += fmt.Sprintf(" beyond its SQL_Delay of %ds", rs.SQLDelay)
		}
		return lagging(reason)
	}
	// Seconds_Behind is NULL as soon as the source is gone or a thread
	// stopped: measure in transactions instead.
	n, against, ok := gtidLag(inst, source)
	if !ok || n <= cfg.MaxLagTransactions {
		return nil
	}
	return lagging(fmt.Sprintf("%d transactions behind %s (threshold %d; Seconds_Behind is NULL)", n, against, cfg.MaxLagTransactions))
}

func checkErrantGTID(inst, source *Instance, _ ProblemConfig) []Problem {
	if !inst.IsReplica() {
		return nil
	}
	return inst.Dialect().errantGTIDs(inst, source)
}

// errantMySQL: executed − source's executed, less what came in through the
// replication channel (Retrieved_Gtid_Set). The source and the replica are
// probed at different moments; a transaction the replica received after the
// source's probe is in its retrieved set and is not errant. What an
// earlier source sent is still judged only if re-pointing purged the relay
// logs (RESET REPLICA does; CHANGE REPLICATION SOURCE TO is believed to,
// unless relay log options are given). TODO: verify against a real MySQL
// sandbox; if the set survives a source change, errant GTIDs from a former
// source would be hidden here.
func errantMySQL(inst, source *Instance) []Problem {
	if source == nil || source.GTIDExecuted == "" || source.Dialect().GTIDFlavor() != gtid.MySQL {
		return nil
	}
	exec, err1 := gtid.ParseMySQL(appliedPos(inst))
	srcExec, err2 := gtid.ParseMySQL(source.GTIDExecuted)
	retrieved, err3 := gtid.ParseMySQL(inst.Replication.RetrievedSet)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil
	}
	errant := exec.Subtract(srcExec).Subtract(retrieved)
	if errant.IsEmpty() {
		return nil
	}
	return []Problem{{
		Code: ProblemErrantGTID, Severity: SeverityCritical, Instance: inst.Key,
		Reason: fmt.Sprintf("replica executed %d transaction(s) its source %s lacks: %s", errant.Count(), source.Key, errant),
		Fix:    "inspect them; inject empty transactions with these GTIDs on the source, or rebuild the replica",
	}}
}

// errantMariaDB: a MariaDB replica that wrote locally has, in
// gtid_current_pos, GTIDs carrying its own server_id beyond gtid_slave_pos;
// the next replicated event in that domain stops its SQL thread (1950) and
// the write exists only in its binlog.
//
// The source's position refines this. Comparing sequence numbers alone
// cannot tell an errant 0-3-101 from the source's own 0-1-101, so:
//   - the source's GTID for the domain is from this server_id and at or past
//     ours: this server was master before and the source has its writes;
//     not a problem;
//   - the source has not reached our sequence number: we hold writes it
//     lacks; critical;
//   - the source is past our sequence number with another server's GTID:
//     either an errant write or one from when this server was master; a
//     warning that says so.
//
// GTIDs of other servers ahead of the source are not judged: with probes at
// different moments a replica is legitimately "ahead" of a stale snapshot.
func errantMariaDB(inst, source *Instance) []Problem {
	cur, err1 := gtid.ParseMariaDB(firstNonEmpty(inst.GTIDCurrentPos, inst.GTIDBinlogPos))
	slave, err2 := gtid.ParseMariaDB(firstNonEmpty(inst.GTIDSlavePos, inst.Replication.GTIDSlavePos))
	if err1 != nil || err2 != nil {
		return nil
	}
	var srcPos gtid.MariaDBPos
	haveSource := false
	if source != nil && source.Dialect().GTIDFlavor() == gtid.MariaDB {
		p, err := gtid.ParseMariaDB(sourcePos(source))
		srcPos, haveSource = p, err == nil
	}
	var critical, doubtful []string
	for _, g := range cur.WithServerID(inst.ServerID) {
		if slave.ContainsGTID(g) {
			continue
		}
		if !haveSource {
			critical = append(critical, g.String())
			continue
		}
		sg, ok := srcPos.Domain(g.Domain)
		switch {
		case ok && sg.ServerID == g.ServerID && sg.Seq >= g.Seq:
		case !srcPos.ContainsGTID(g):
			critical = append(critical, fmt.Sprintf("%s (source at %s)", g, domainText(srcPos, g.Domain)))
		default:
			doubtful = append(doubtful, fmt.Sprintf("%s (source at %s)", g, sg))
		}
	}
	base := fmt.Sprintf("gtid_current_pos %q has GTIDs with this server's own server_id %d beyond gtid_slave_pos %q", cur, inst.ServerID, slave)
	fix := "find the local writes in this server's binlog; rebuild it or reapply them on the master"
	switch {
	case len(critical) > 0:
		return []Problem{{
			Code: ProblemErrantGTID, Severity: SeverityCritical, Instance: inst.Key,
			Reason: base + ": " + strings.Join(critical, ", ") + "; the next replicated event in that domain stops the SQL thread (error 1950)",
			Fix:    fix,
		}}
	case len(doubtful) > 0:
		return []Problem{{
			Code: ProblemErrantGTID, Severity: SeverityWarning, Instance: inst.Key,
			Reason: base + ": " + strings.Join(doubtful, ", ") + "; the source is past these sequence numbers, " +
				"so they are either errant writes or writes from when this server was master",
			Fix: fix,
		}}
	}
	return nil
}

func domainText(p gtid.MariaDBPos, domain uint32) string {
	if g, ok := p.Domain(domain); ok {
		return g.String()
	}
	return fmt.Sprintf("nothing in domain %d", domain)
}
