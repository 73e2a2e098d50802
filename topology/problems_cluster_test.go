package topology

import (
	"reflect"
	"testing"
)

func TestClusterProblems(t *testing.T) {
	cfg := DefaultProblemConfig()
	m := mariaMaster(keyM, 1, "0-1-100")
	r1 := mariaReplica(keyR1, 2, keyM, "0-1-100")
	r2 := mariaReplica(keyR2, 3, keyM, "0-1-100")
	writable := func(i *Instance) { i.ReadOnly = false }
	down := func(i *Instance) { i.LastError = "connection refused" }

	tests := []struct {
		name      string
		instances []*Instance
		want      []expect
		related   []Key // of the first problem, when set
	}{
		{name: "healthy", instances: []*Instance{m, r1, r2}},
		{name: "empty cluster"},
		{name: "nil entries are skipped", instances: []*Instance{nil, m, nil}},
		{
			name:      "two writable",
			instances: []*Instance{r2, m, with(r1, writable)},
			want:      []expect{{ProblemMultipleWritable, SeverityCritical, []string{"2 instances", "db1:3306, db2:3306"}}},
			related:   []Key{keyM, keyR1},
		},
		{
			name:      "stale read_only=OFF of an unreachable instance is ignored",
			instances: []*Instance{m, with(r1, writable, down)},
		},
		{
			name:      "mixed MariaDB series",
			instances: []*Instance{m, r1, with(r2, func(i *Instance) { i.Version = "11.4.2-MariaDB-log" })},
			want:      []expect{{ProblemMixedMajorVersions, SeverityWarning, []string{"mariadb 10.11 on db1:3306, db2:3306", "mariadb 11.4 on db3:3306"}}},
			related:   []Key{keyM, keyR1, keyR2},
		},
		{
			name:      "same series, different patch releases",
			instances: []*Instance{m, with(r1, func(i *Instance) { i.Version = "10.11.6-MariaDB" })},
		},
		{
			name: "mysql 8.0 and 8.4",
			instances: []*Instance{
				mysqlMaster(keyM, 1, uuidM, ""),
				with(mysqlReplica(keyR1, 2, uuidR1, keyM, ""), func(i *Instance) { i.Version = "8.0.36" }),
			},
			want: []expect{{ProblemMixedMajorVersions, SeverityWarning, []string{"mysql 8.0", "mysql 8.4"}}},
		},
		{
			name:      "duplicate server_id (pitfall 2)",
			instances: []*Instance{m, r1, with(r2, func(i *Instance) { i.ServerID = 1 })},
			want:      []expect{{ProblemDuplicateServerID, SeverityCritical, []string{"server_id 1", "db1:3306, db3:3306", "silently skips"}}},
			related:   []Key{keyM, keyR2},
		},
		{
			name: "duplicate server_uuid",
			instances: []*Instance{
				mysqlMaster(keyM, 1, uuidM, ""),
				mysqlReplica(keyR1, 2, uuidM, keyM, ""),
			},
			want: []expect{{ProblemDuplicateServerUUID, SeverityCritical, []string{uuidM}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClusterProblems(tt.instances, cfg)
			checkProblems(t, got, tt.want)
			if tt.related != nil && !reflect.DeepEqual(got[0].Related, tt.related) {
				t.Errorf("related %v, want %v", got[0].Related, tt.related)
			}
			for _, p := range got {
				if len(p.Related) > 0 && p.Instance != p.Related[0] {
					t.Errorf("%s: instance %s is not the first related %s", p.Code, p.Instance, p.Related[0])
				}
			}
		})
	}
}

func TestAllProblems(t *testing.T) {
	cfg := DefaultProblemConfig()
	m := mariaMaster(keyM, 1, "0-1-100")
	// db2 wrote locally and is writable; db3 shares the master's server_id.
	r1 := with(mariaReplica(keyR1, 2, keyM, "0-1-100"), func(i *Instance) {
		i.ReadOnly = false
		i.GTIDBinlogPos, i.GTIDCurrentPos = "0-2-101", "0-2-101"
	})
	r2 := with(mariaReplica(keyR2, 1, keyM, "0-1-100"))
	got := AllProblems([]*Instance{r2, r1, m}, cfg)
	var codes []string
	for _, p := range got {
		codes = append(codes, p.Instance.String()+" "+string(p.Code))
	}
	want := []string{
		"db1:3306 DuplicateServerID",
		"db1:3306 MultipleWritable",
		"db2:3306 ErrantGTID",
		"db2:3306 WritableReplica",
	}
	if !reflect.DeepEqual(codes, want) {
		t.Errorf("got %q\nwant %q\n%s", codes, want, dump(got))
	}
	// The errant check must have used the master found by address.
	for _, p := range got {
		if p.Code == ProblemErrantGTID && p.Severity != SeverityCritical {
			t.Errorf("errant severity %s, want critical (source db1 at 0-1-100)", p.Severity)
		}
	}
}
