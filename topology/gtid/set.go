// Package gtid parses and compares GTID sets of both server families:
// MySQL sets of UUID (and 8.4 tag) intervals, and MariaDB positions of one
// domain-server_id-seq GTID per replication domain.
//
// The concrete types, MySQLSet and MariaDBPos, are immutable values with
// typed methods. Set wraps either behind one interface for callers that
// handle both flavours alike, such as the problem predicates and candidate
// ranking.
package gtid

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrSyntax: the text is not a GTID set of the requested flavour.
	ErrSyntax = errors.New("malformed gtid")
	// ErrFlavorMismatch: a MySQL set was combined with a MariaDB position.
	ErrFlavorMismatch = errors.New("gtid flavours differ")
	// ErrUnknownFlavor: Parse was asked for a flavour it does not know.
	ErrUnknownFlavor = errors.New("unknown gtid flavour")
)

// Flavor is the GTID format.
type Flavor string

// GTID formats.
const (
	MySQL   Flavor = "mysql"   // uuid:intervals (MySQL, Percona Server)
	MariaDB Flavor = "mariadb" // domain-server_id-seq positions
)

// Set is a GTID set of either flavour. Operations between different
// flavours fail with ErrFlavorMismatch, except that an empty set of any
// flavour acts as the empty set of the other.
type Set interface {
	Flavor() Flavor
	// String is the canonical text; Parse(Flavor(), String()) gives the set back.
	String() string
	IsEmpty() bool
	// Equal reports whether both sets are the same; different flavours are
	// equal only when both are empty.
	Equal(other Set) bool
	// Contains reports whether the receiver has every transaction of other
	// (MariaDB: has reached it in every domain).
	Contains(other Set) (bool, error)
	Union(other Set) (Set, error)
	// Subtract returns what the receiver has and other lacks.
	Subtract(other Set) (Set, error)
	// AheadOf counts the transactions other lacks relative to the receiver.
	AheadOf(other Set) (uint64, error)
}

// Parse parses s as a GTID set of the given flavour.
func Parse(f Flavor, s string) (Set, error) {
	switch f {
	case MySQL:
		set, err := ParseMySQL(s)
		if err != nil {
			return nil, err
		}
		return mysqlSet{set}, nil
	case MariaDB:
		p, err := ParseMariaDB(s)
		if err != nil {
			return nil, err
		}
		return mariaSet{p}, nil
	default:
		return nil, fmt.Errorf("gtid: parse %q: flavour %q: %w", abbreviate(s), f, ErrUnknownFlavor)
	}
}

// Empty returns the empty set of a flavour (MySQL for an unknown one).
func Empty(f Flavor) Set {
	if f == MariaDB {
		return mariaSet{}
	}
	return mysqlSet{}
}

// FromMySQL wraps a MySQL set as a Set.
func FromMySQL(s MySQLSet) Set { return mysqlSet{s} }

// FromMariaDB wraps a MariaDB position as a Set.
func FromMariaDB(p MariaDBPos) Set { return mariaSet{p} }

// AsMySQL returns the MySQL set inside s; an empty set of any flavour
// converts to the empty MySQL set.
func AsMySQL(s Set) (MySQLSet, bool) {
	switch v := s.(type) {
	case mysqlSet:
		return v.MySQLSet, true
	case nil:
		return MySQLSet{}, true
	}
	if s.IsEmpty() {
		return MySQLSet{}, true
	}
	return MySQLSet{}, false
}

// AsMariaDB returns the MariaDB position inside s; an empty set of any
// flavour converts to the empty position.
func AsMariaDB(s Set) (MariaDBPos, bool) {
	switch v := s.(type) {
	case mariaSet:
		return v.MariaDBPos, true
	case nil:
		return MariaDBPos{}, true
	}
	if s.IsEmpty() {
		return MariaDBPos{}, true
	}
	return MariaDBPos{}, false
}

// Behind is how many transactions b lacks relative to a.
func Behind(a, b Set) (uint64, error) { return a.AheadOf(b) }

func mismatch(a, b Set) error {
	return fmt.Errorf("gtid: %s set %q with %s set %q: %w", a.Flavor(), abbreviate(a.String()), b.Flavor(), abbreviate(b.String()), ErrFlavorMismatch)
}

type mysqlSet struct{ MySQLSet }

func (mysqlSet) Flavor() Flavor { return MySQL }

func (s mysqlSet) other(o Set) (MySQLSet, error) {
	v, ok := AsMySQL(o)
	if !ok {
		return MySQLSet{}, mismatch(s, o)
	}
	return v, nil
}

func (s mysqlSet) Equal(o Set) bool {
	v, ok := AsMySQL(o)
	return ok && s.MySQLSet.Equal(v)
}

func (s mysqlSet) Contains(o Set) (bool, error) {
	v, err := s.other(o)
	return err == nil && s.MySQLSet.Contains(v), err
}

func (s mysqlSet) Union(o Set) (Set, error) {
	v, err := s.other(o)
	if err != nil {
		return nil, err
	}
	return mysqlSet{s.MySQLSet.Union(v)}, nil
}

func (s mysqlSet) Subtract(o Set) (Set, error) {
	v, err := s.other(o)
	if err != nil {
		return nil, err
	}
	return mysqlSet{s.MySQLSet.Subtract(v)}, nil
}

func (s mysqlSet) AheadOf(o Set) (uint64, error) {
	v, err := s.other(o)
	if err != nil {
		return 0, err
	}
	return s.MySQLSet.AheadOf(v), nil
}

type mariaSet struct{ MariaDBPos }

func (mariaSet) Flavor() Flavor { return MariaDB }

func (p mariaSet) other(o Set) (MariaDBPos, error) {
	v, ok := AsMariaDB(o)
	if !ok {
		return MariaDBPos{}, mismatch(p, o)
	}
	return v, nil
}

func (p mariaSet) Equal(o Set) bool {
	v, ok := AsMariaDB(o)
	return ok && p.MariaDBPos.Equal(v)
}

func (p mariaSet) Contains(o Set) (bool, error) {
	v, err := p.other(o)
	return err == nil && p.MariaDBPos.Contains(v), err
}

func (p mariaSet) Union(o Set) (Set, error) {
	v, err := p.other(o)
	if err != nil {
		return nil, err
	}
	return mariaSet{p.MariaDBPos.Union(v)}, nil
}

func (p mariaSet) Subtract(o Set) (Set, error) {
	v, err := p.other(o)
	if err != nil {
		return nil, err
	}
	return mariaSet{p.MariaDBPos.Subtract(v)}, nil
}

func (p mariaSet) AheadOf(o Set) (uint64, error) {
	v, err := p.other(o)
	if err != nil {
		return 0, err
	}
	return p.MariaDBPos.AheadOf(v), nil
}
