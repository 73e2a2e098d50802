package history

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	in := []Record{
		{T: at, Kind: KindMeta, Meta: &Meta{Seed: 9, Instances: []string{"db1", "db2"}, Coordinators: []string{"w1"}}},
		{T: at, Kind: KindWrite, Write: &Write{Writer: 1, Row: 1000000001, Instance: "db1", Start: at, Outcome: Ack}},
		{T: at, Kind: KindSample, Sample: &Sample{Reads: []Read{{Instance: "db1", OK: true, At: at}, {Instance: "db2", OK: true, ReadOnly: true, At: at}}}},
		{T: at, Kind: KindFault, Fault: &Fault{ID: 1, Nemesis: "kill-master", Phase: Start, Instances: []string{"db1"}}},
		{T: at, Kind: KindFinal, Final: &Final{Instances: []FinalInstance{{InstanceState: InstanceState{Name: "db2", OK: true}, Rows: []int64{1, 2}}}}},
	}
	for _, r := range in {
		w.Add(r)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\nin  %+v\nout %+v", in, out)
	}
}

func TestReadNamesTheBadLine(t *testing.T) {
	_, err := Parse(strings.NewReader(`{"kind":"note"}` + "\n" + `{"kind":` + "\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want one naming line 2", err)
	}
}
