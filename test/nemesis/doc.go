// Package nemesis is Warden's chaos suite: seeded schedules of faults
// (package schedule) over real MariaDB servers and real `warden server`
// processes, a workload that finds the master through Warden's routing check,
// a history of everything clients saw (package history), and a checker that
// judges the history without knowing Warden's internals (package checker).
// TestChaos runs it; docs/testing.md says how to run, replay and read a run.
package nemesis
