package kvpublish

import (
	"fmt"
	"strconv"
	"strings"
)

// Token is the fencing token of one publication of one cluster. It orders
// publications the way the Raft log orders the states they were read from,
// so etcd can refuse an older one (a deposed leader's) in the transaction
// itself.
//
//   - Term, Index: the Raft term and index of the RecoveryStart of the
//     cluster's latest recovery that named a master (its record's Term and
//     ID); 0/0 for a cluster never recovered.
//   - View: the index of the last Raft entry applied to the state the
//     publication was read from (FSM.AppliedIndex). It is at least the
//     index of the topology update that named the master, and it orders
//     publications that share a recovery (a replica joining or leaving, a
//     master named by discovery, a leader change re-publishing).
//
// Both parts only grow along the log (recovery records are never deleted
// and Index <= View), so comparing (Term, Index, View) in that order is
// comparing positions in the one history every node applies.
type Token struct {
	Term, Index, View uint64
}

// tokenWidth is the digits of the largest uint64: every field is written
// zero-padded to it, so etcd's byte-wise comparison of values orders
// tokens numerically.
const tokenWidth = 20

// String is the stored form: "term/index/view", each zero-padded to 20
// digits.
func (t Token) String() string {
	return fmt.Sprintf("%020d/%020d/%020d", t.Term, t.Index, t.View)
}

// Less reports whether t orders before o.
func (t Token) Less(o Token) bool {
	if t.Term != o.Term {
		return t.Term < o.Term
	}
	if t.Index != o.Index {
		return t.Index < o.Index
	}
	return t.View < o.View
}

// ParseToken reads the stored form.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("fence token %q: want term/index/view", s)
	}
	var v [3]uint64
	for i, p := range parts {
		if len(p) != tokenWidth {
			return Token{}, fmt.Errorf("fence token %q: field %d is not %d digits", s, i+1, tokenWidth)
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Token{}, fmt.Errorf("fence token %q: field %d: %v", s, i+1, err)
		}
		v[i] = n
	}
	return Token{Term: v[0], Index: v[1], View: v[2]}, nil
}
