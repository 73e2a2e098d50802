package topology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestActorAdoptOwnPositionStatements: a former master loses its semi-sync
// master side (nobody acknowledges its commits any more, and its applier
// would wait rpl_semi_sync_master_timeout on each binlogged commit) before,
// on MariaDB, its own position becomes its slave position.
func TestActorAdoptOwnPositionStatements(t *testing.T) {
	vars := func(kv ...string) []Row {
		var rows []Row
		for i := 0; i+1 < len(kv); i += 2 {
			rows = append(rows, row("Variable_name", kv[i], "Value", kv[i+1]))
		}
		return rows
	}
	const maria = "10.11.19-MariaDB-0+deb12u1-log"
	adopt := []string{"STOP REPLICA", "SET GLOBAL gtid_slave_pos = @@gtid_current_pos"}
	for _, tc := range []struct {
		name, version string
		vars          []Row
		want          []string
	}{
		{"mariadb master side on", maria, vars("rpl_semi_sync_master_enabled", "ON"),
			append([]string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF"}, adopt...)},
		{"mariadb master side off", maria, vars("rpl_semi_sync_master_enabled", "OFF"), adopt},
		{"mariadb 10.4", "10.4.34-MariaDB-log", vars("rpl_semi_sync_master_enabled", "1"),
			[]string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF", "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@gtid_current_pos"}},
		{"mysql 8.0 source side on", "8.0.36", vars("rpl_semi_sync_source_enabled", "ON"),
			[]string{"SET GLOBAL rpl_semi_sync_source_enabled = OFF"}},
		{"mysql 5.7 old plugin on", "5.7.44-log", vars("rpl_semi_sync_master_enabled", "ON"),
			[]string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF"}},
		{"mysql no plugin", "8.0.36", []Row{}, nil},
		{"unexpected name ignored", "8.0.36", vars("rpl_semi_sync_master_timeout", "ON"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, f := fakeActor(t, tc.version)
			f.answer("SHOW GLOBAL VARIABLES", tc.vars)
			if err := a.AdoptOwnPosition(deadline(t)); err != nil {
				t.Fatal(err)
			}
			if got := f.statements(); !slices.Equal(got, tc.want) {
				t.Fatalf("statements %q, want %q", got, tc.want)
			}
		})
	}
}

func TestActorAdoptOwnPositionErrors(t *testing.T) {
	a, f := fakeActor(t, "10.11.19-MariaDB-0+deb12u1-log")
	if err := a.AdoptOwnPosition(context.Background()); !errors.Is(err, ErrNoDeadline) {
		t.Fatalf("without a deadline: %v, want ErrNoDeadline", err)
	}
	// The variables cannot be read: nothing is changed.
	if err := a.AdoptOwnPosition(deadline(t)); err == nil {
		t.Fatal("want an error when the semi-sync variables cannot be read")
	}
	f.answer("SHOW GLOBAL VARIABLES", []Row{row("Variable_name", "rpl_semi_sync_master_enabled", "Value", "ON")})
	f.errs["SET GLOBAL rpl_semi_sync_master_enabled"] = fmt.Errorf("access denied")
	err := a.AdoptOwnPosition(deadline(t))
	if err == nil {
		t.Fatal("want the failed SET reported")
	}
	if got := f.statements(); !slices.Equal(got, []string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF"}) {
		t.Fatalf("after a failed SET: %q, want nothing more", got)
	}
}
