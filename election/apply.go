package election

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/warden-ha/warden/topology"
)

// The appliers below follow two rules: validate everything before changing
// anything (a rejected command leaves the state untouched on every node), and
// never mutate a stored value in place (see State).

func init() {
	registerCommand(TopologyUpdateType, applyTopologyUpdate)
	registerCommand(VerdictsUpdateType, applyVerdictsUpdate)
	registerCommand(ProblemsSetType, applyProblemsSet)
	registerCommand(RecoveryStartType, applyRecoveryStart)
	registerCommand(RecoveryStepType, applyRecoveryStep)
	registerCommand(RecoveryFinishType, applyRecoveryFinish)
	registerCommand(RecoveryAckType, applyRecoveryAck)
	registerCommand(DowntimeBeginType, applyDowntimeBegin)
	registerCommand(DowntimeEndType, applyDowntimeEnd)
	registerCommand(PromotionRuleSetType, applyPromotionRuleSet)
	registerCommand(SettingsUpdateType, applySettingsUpdate)
}

func decodeBody(index uint64, t MessageType, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("raft index %d: type %d: %w: %v", index, t, ErrBadCommand, err)
	}
	return nil
}

func badCommand(index uint64, t MessageType, format string, args ...any) error {
	return fmt.Errorf("raft index %d: type %d: %w: %s", index, t, ErrBadCommand, fmt.Sprintf(format, args...))
}

func applyTopologyUpdate(s *State, index, _ uint64, body []byte) any {
	var c TopologyUpdate
	if err := decodeBody(index, TopologyUpdateType, body, &c); err != nil {
		return err
	}
	for _, in := range c.Upsert {
		if in.Key.IsZero() {
			return badCommand(index, TopologyUpdateType, "instance with empty key")
		}
	}
	for _, cl := range c.UpsertClusters {
		if cl.Name == "" {
			return badCommand(index, TopologyUpdateType, "cluster with empty name")
		}
	}
	for _, k := range c.Delete {
		delete(s.Instances, k)
	}
	for i := range c.Upsert {
		in := c.Upsert[i] // a fresh copy per entry: stored values must not alias
		s.Instances[in.Key] = &in
	}
	for _, name := range c.DeleteClusters {
		delete(s.Clusters, name)
	}
	for i := range c.UpsertClusters {
		cl := c.UpsertClusters[i]
		s.Clusters[cl.Name] = &cl
	}
	// An alias belongs to its cluster record: it goes when the record
	// goes (not when it is replaced in the same update).
	for _, name := range c.DeleteClusters {
		if _, ok := s.Clusters[name]; !ok {
			delete(s.Aliases, name)
		}
	}
	return dropAliasesNamedAfter(s, c.UpsertClusters)
}

// AliasesDropped is what a TopologyUpdate answers when it named a cluster
// after another cluster's alias: those aliases were removed (cluster name
// -> the alias it lost). The FSM logs it on every node.
type AliasesDropped map[string]string

// dropAliasesNamedAfter removes the alias of any other cluster that an
// upserted cluster is now named after (a seed-named cluster,
// discovery.seeds "orders=host:port", can be created after "orders" was
// given to another cluster as an alias). Names resolve before aliases, so
// the alias could never be reached again and a caller using it would
// silently address the new cluster; the name wins, deterministically, and
// the alias goes.
func dropAliasesNamedAfter(s *State, upserted []Cluster) any {
	var dropped AliasesDropped
	for _, cl := range upserted {
		for holder, a := range s.Aliases {
			if a == cl.Name && holder != cl.Name {
				if dropped == nil {
					dropped = AliasesDropped{}
				}
				dropped[holder] = a
				delete(s.Aliases, holder)
			}
		}
	}
	if dropped == nil {
		return nil
	}
	return dropped
}

func applyVerdictsUpdate(s *State, index, _ uint64, body []byte) any {
	var c VerdictsUpdate
	if err := decodeBody(index, VerdictsUpdateType, body, &c); err != nil {
		return err
	}
	if c.Node == "" {
		return badCommand(index, VerdictsUpdateType, "empty node")
	}
	// Copy on write: a snapshot in progress may share the old inner map.
	var m map[topology.Key]Verdict
	if c.Replace {
		m = make(map[topology.Key]Verdict, len(c.Verdicts))
	} else {
		m = maps.Clone(s.Verdicts[c.Node])
		if m == nil {
			m = make(map[topology.Key]Verdict, len(c.Verdicts))
		}
	}
	for _, k := range c.Delete {
		delete(m, k)
	}
	for _, v := range c.Verdicts {
		m[v.Key] = v
	}
	if len(m) == 0 {
		delete(s.Verdicts, c.Node)
	} else {
		s.Verdicts[c.Node] = m
	}
	return nil
}

func applyProblemsSet(s *State, index, _ uint64, body []byte) any {
	var c ProblemsSet
	if err := decodeBody(index, ProblemsSetType, body, &c); err != nil {
		return err
	}
	s.Problems = c.Problems
	s.ProblemsAt = c.At
	return nil
}

func applyRecoveryStart(s *State, index, term uint64, body []byte) any {
	var c RecoveryStart
	if err := decodeBody(index, RecoveryStartType, body, &c); err != nil {
		return err
	}
	if c.Cluster == "" {
		return badCommand(index, RecoveryStartType, "empty cluster")
	}
	for _, r := range s.Recoveries {
		if r.Cluster == c.Cluster && !r.Done() {
			return fmt.Errorf("raft index %d: cluster %q: recovery %d is still running: %w",
				index, c.Cluster, r.ID, ErrConflict)
		}
	}
	s.Recoveries[index] = &Recovery{
		ID:        index,
		Term:      term,
		Cluster:   c.Cluster,
		FailedKey: c.FailedKey,
		Problem:   c.Problem,
		Node:      c.Node,
		Started:   c.At,
		Kind:      c.Kind,
		Trigger:   c.Trigger,
		Requested: c.Requested,
	}
	return nil
}

// openRecovery returns a copy of an unfinished recovery for modification.
func openRecovery(s *State, index uint64, t MessageType, id uint64) (*Recovery, error) {
	r, ok := s.Recoveries[id]
	if !ok {
		return nil, fmt.Errorf("raft index %d: type %d: recovery %d: %w", index, t, id, ErrNotFound)
	}
	if r.Done() {
		return nil, fmt.Errorf("raft index %d: type %d: recovery %d already finished: %w", index, t, id, ErrConflict)
	}
	return cloneRecovery(r), nil
}

func applyRecoveryStep(s *State, index, _ uint64, body []byte) any {
	var c RecoveryStep
	if err := decodeBody(index, RecoveryStepType, body, &c); err != nil {
		return err
	}
	var r *Recovery
	var err error
	if k := c.Step.Kind; k == StepFenced || k == StepRejoined || k == StepHook || k == StepAdopted || k == StepDiverged {
		// These happen after the end: the old master or a lost replica
		// answers again.
		old, ok := s.Recoveries[c.ID]
		if !ok {
			return fmt.Errorf("raft index %d: recovery %d: %w", index, c.ID, ErrNotFound)
		}
		r = cloneRecovery(old)
		r.Fenced = r.Fenced || k == StepFenced
		r.Rejoined = r.Rejoined || k == StepRejoined
	} else if r, err = openRecovery(s, index, RecoveryStepType, c.ID); err != nil {
		return err
	}
	step := c.Step
	if step.Matrix != nil {
		r.Matrix = step.Matrix
		step.Matrix = nil
	}
	if step.Kind == StepPromoteIntent {
		if step.Instance.IsZero() {
			return badCommand(index, RecoveryStepType, "promote-intent without an instance")
		}
		if !r.Promoting.IsZero() && r.Promoting != step.Instance {
			// Never two promotions in one recovery: the first may already
			// have made its replica writable.
			return fmt.Errorf("raft index %d: recovery %d already promoting %s, not %s: %w",
				index, c.ID, r.Promoting, step.Instance, ErrConflict)
		}
		r.Promoting = step.Instance
	}
	r.Steps = append(r.Steps, step)
	s.Recoveries[c.ID] = r
	return nil
}

func applyRecoveryFinish(s *State, index, _ uint64, body []byte) any {
	var c RecoveryFinish
	if err := decodeBody(index, RecoveryFinishType, body, &c); err != nil {
		return err
	}
	if c.At.IsZero() {
		return badCommand(index, RecoveryFinishType, "zero finish time")
	}
	r, err := openRecovery(s, index, RecoveryFinishType, c.ID)
	if err != nil {
		return err
	}
	r.Finished, r.Success, r.Successor, r.Error = c.At, c.Success, c.Successor, c.Error
	r.Lost, r.LostGTIDs = c.Lost, c.LostGTIDs
	s.Recoveries[c.ID] = r
	return nil
}

func applyRecoveryAck(s *State, index, _ uint64, body []byte) any {
	var c RecoveryAck
	if err := decodeBody(index, RecoveryAckType, body, &c); err != nil {
		return err
	}
	if len(c.IDs) == 0 && c.Cluster == "" {
		return badCommand(index, RecoveryAckType, "neither ids nor cluster")
	}
	ids := c.IDs
	for _, id := range ids {
		if _, ok := s.Recoveries[id]; !ok {
			return fmt.Errorf("raft index %d: ack recovery %d: %w", index, id, ErrNotFound)
		}
	}
	if c.Cluster != "" {
		for id, r := range s.Recoveries {
			if r.Cluster == c.Cluster {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range ids {
		r := s.Recoveries[id]
		// An unfinished recovery cannot be acknowledged: the ack re-arms
		// automatic recovery, which must wait for the running one to end.
		if r.Acknowledged || !r.Done() {
			continue
		}
		r = cloneRecovery(r)
		r.Acknowledged, r.AckedBy, r.AckedAt, r.AckComment = true, c.By, c.At, c.Comment
		s.Recoveries[id] = r
	}
	return nil
}

func applyDowntimeBegin(s *State, index, _ uint64, body []byte) any {
	var c DowntimeBegin
	if err := decodeBody(index, DowntimeBeginType, body, &c); err != nil {
		return err
	}
	d := c.Downtime
	if d.Key.IsZero() {
		return badCommand(index, DowntimeBeginType, "empty key")
	}
	if d.Until.IsZero() {
		return badCommand(index, DowntimeBeginType, "%s: zero until", d.Key)
	}
	s.Downtimes[d.Key] = d
	return nil
}

func applyDowntimeEnd(s *State, index, _ uint64, body []byte) any {
	var c DowntimeEnd
	if err := decodeBody(index, DowntimeEndType, body, &c); err != nil {
		return err
	}
	for _, k := range c.Keys {
		delete(s.Downtimes, k)
	}
	if !c.Before.IsZero() {
		for k, d := range s.Downtimes {
			if d.Until.Before(c.Before) {
				delete(s.Downtimes, k)
			}
		}
	}
	return nil
}

func applyPromotionRuleSet(s *State, index, _ uint64, body []byte) any {
	var c PromotionRuleSet
	if err := decodeBody(index, PromotionRuleSetType, body, &c); err != nil {
		return err
	}
	if c.Key.IsZero() {
		return badCommand(index, PromotionRuleSetType, "empty key")
	}
	if err := c.Rule.Validate(); err != nil {
		return badCommand(index, PromotionRuleSetType, "%s: %v", c.Key, err)
	}
	if c.Rule == PromotionNeutral {
		delete(s.Promotion, c.Key)
	} else {
		s.Promotion[c.Key] = c.Rule
	}
	return nil
}

func applySettingsUpdate(s *State, index, _ uint64, body []byte) any {
	var c SettingsUpdate
	if err := decodeBody(index, SettingsUpdateType, body, &c); err != nil {
		return err
	}
	if c.AutomaticRecovery != nil {
		s.Settings.AutomaticRecovery = *c.AutomaticRecovery
	}
	return nil
}
