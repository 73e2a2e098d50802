package topology

import (
	"fmt"
	"strings"

	"github.com/warden-ha/warden/topology/gtid"
)

// Relation is how two GTID histories compare (Compare).
type Relation string

// Relations.
const (
	RelationEqual    Relation = "equal"    // the same transactions
	RelationBehind   Relation = "behind"   // a lacks some of b's, holds nothing b lacks
	RelationAhead    Relation = "ahead"    // a holds all of b's and more
	RelationDiverged Relation = "diverged" // each holds something the other lacks
)

// MissingGTIDs is what received holds and executed lacks, as canonical text
// ("" when nothing): the transactions some replica received that a
// candidate has not executed. MySQL: set subtraction; MariaDB: the domains
// where received is ahead by sequence number. The flavour is given, never
// guessed from the text.
func MissingGTIDs(f gtid.Flavor, received, executed string) (string, error) {
	if strings.TrimSpace(received) == "" {
		return "", nil
	}
	recv, err := gtid.Parse(f, received)
	if err != nil {
		return "", fmt.Errorf("received %w", err)
	}
	exec, err := gtid.Parse(f, executed)
	if err != nil {
		return "", fmt.Errorf("executed %w", err)
	}
	diff, err := recv.Subtract(exec)
	if err != nil {
		return "", err
	}
	return diff.String(), nil
}

// UnionGTIDs is everything a or b holds, as canonical text: what a
// successor must hold when both a server's own position (a live master
// that was fenced) and what its replicas received count. MySQL: set
// union; MariaDB: per domain the later GTID by sequence number.
func UnionGTIDs(f gtid.Flavor, a, b string) (string, error) {
	switch {
	case strings.TrimSpace(a) == "":
		return b, nil
	case strings.TrimSpace(b) == "":
		return a, nil
	}
	x, err := gtid.Parse(f, a)
	if err != nil {
		return "", err
	}
	y, err := gtid.Parse(f, b)
	if err != nil {
		return "", err
	}
	u, err := x.Union(y)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// HoldsExtra returns the transactions a server that followed the old
// master holds (have) and the new master lacks, and whether that could be
// decided at all: an unknown or unparsable position decides nothing, and
// the caller must not act on it.
//
// MySQL GTID sets are exact: have minus the new master's gtid_executed
// now (succNow; its position at promotion, succAt, when now is unknown).
//
// MariaDB positions keep one GTID per domain, so the comparison is with the
// new master's position when it was promoted (succAt; succNow only when
// succAt is unknown), domain by domain:
//   - a domain the new master never had, or a higher sequence than it had
//     then: the rest of the old master's stream, which it never got;
//   - the same sequence under another server_id: a different history;
//   - the new master's own server_id (succServerID, its @@server_id) up to
//     its current sequence: written by it, reached through a chain;
//   - a lower sequence: in its history, as far as positions can tell (if
//     not, the server's own GTID check refuses the repoint with 1236).
func HoldsExtra(f gtid.Flavor, have, succNow, succAt string, succServerID uint32) (string, bool) {
	if strings.TrimSpace(have) == "" {
		return "", false
	}
	if f != gtid.MariaDB {
		ref := firstNonEmpty(strings.TrimSpace(succNow), strings.TrimSpace(succAt))
		if ref == "" {
			return "", false
		}
		diff, err := MissingGTIDs(f, have, ref)
		if err != nil {
			return "", false
		}
		return diff, true
	}
	h, err := gtid.ParseMariaDB(have)
	if err != nil {
		return "", false
	}
	refText := firstNonEmpty(strings.TrimSpace(succAt), strings.TrimSpace(succNow))
	if refText == "" {
		return "", false
	}
	ref, err := gtid.ParseMariaDB(refText)
	if err != nil {
		return "", false
	}
	now, _ := gtid.ParseMariaDB(succNow) // "" or bad: the empty position
	var extra []string
	for _, g := range h.GTIDs() {
		if n, ok := now.Domain(g.Domain); ok && succServerID != 0 && g.ServerID == succServerID && n.ServerID == g.ServerID && g.Seq <= n.Seq {
			// The new master's own stream up to where it is now (a server
			// that followed a rejoined old master got it through the
			// chain): in its history.
			continue
		}
		r, ok := ref.Domain(g.Domain)
		switch {
		case !ok:
			extra = append(extra, g.String())
		case g.Seq == r.Seq+1:
			extra = append(extra, g.String())
		case g.Seq > r.Seq:
			extra = append(extra, fmt.Sprintf("%d-%d-%d..%d", g.Domain, g.ServerID, r.Seq+1, g.Seq))
		case g.Seq == r.Seq && g.ServerID != r.ServerID:
			extra = append(extra, g.String()+" (the new master has "+r.String()+")")
		}
	}
	return strings.Join(extra, ","), true
}

// HoldsExtraThan is HoldsExtra for two instances' last facts: what old
// holds (Dialect.Written) that succ lacks, against succ's position at its
// promotion (succAt, "" if unknown).
func HoldsExtraThan(old, succ *Instance, succAt string) (string, bool) {
	if old == nil || succ == nil {
		return "", false
	}
	d := old.Dialect()
	if sd := succ.Dialect(); sd.Known() && d.Known() && sd.GTIDFlavor() != d.GTIDFlavor() {
		return "", false
	}
	return HoldsExtra(d.GTIDFlavor(), d.Written(old), succ.Dialect().Written(succ), succAt, succ.ServerID)
}

// Compare says how history a relates to history b. MySQL: by set
// containment. MariaDB: per domain by sequence number, and the same
// sequence under different server_ids in a domain is a divergence (two
// servers wrote different transactions with that number). Empty positions
// are empty histories.
func Compare(f gtid.Flavor, a, b string) (Relation, error) {
	sa, err := gtid.Parse(f, a)
	if err != nil {
		return "", fmt.Errorf("a: %w", err)
	}
	sb, err := gtid.Parse(f, b)
	if err != nil {
		return "", fmt.Errorf("b: %w", err)
	}
	if f == gtid.MariaDB {
		pa, _ := gtid.AsMariaDB(sa)
		pb, _ := gtid.AsMariaDB(sb)
		for _, g := range pa.GTIDs() {
			if o, ok := pb.Domain(g.Domain); ok && o.Seq == g.Seq && o.ServerID != g.ServerID {
				return RelationDiverged, nil
			}
		}
	}
	aExtra, err := sa.Subtract(sb)
	if err != nil {
		return "", err
	}
	bExtra, err := sb.Subtract(sa)
	if err != nil {
		return "", err
	}
	switch {
	case aExtra.IsEmpty() && bExtra.IsEmpty():
		return RelationEqual, nil
	case aExtra.IsEmpty():
		return RelationBehind, nil
	case bExtra.IsEmpty():
		return RelationAhead, nil
	}
	return RelationDiverged, nil
}
