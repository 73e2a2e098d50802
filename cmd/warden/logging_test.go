package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/test/testutil"
)

// checkJSONLine returns an error unless line is exactly one JSON object in
// which no object, at any depth, has the same name twice. encoding/json
// keeps the last of duplicate names silently, so this walks the tokens.
func checkJSONLine(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object (first token %v, %v)", tok, err)
	}
	if err := checkObject(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more than one JSON value on the line")
	}
	return nil
}

// checkObject reads the members of an object whose '{' was read.
func checkObject(dec *json.Decoder, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		if seen[key] {
			return fmt.Errorf("duplicate key %q", path+key)
		}
		seen[key] = true
		if err := checkValue(dec, path+key+"."); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, path)
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, path); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

// layered logs the way the node's components do: cmd names the component,
// the component names a part, the record repeats a key, an inline group
// repeats another, and one attribute is called like the message field.
func layered(l *slog.Logger) {
	l = l.With("subsystem", "election", "node", "w1")
	l = l.With("subsystem", "raft")
	l.Info("entering leader state", "subsystem", "raft.replication", "node", "w2", "msg", "shadow",
		slog.Group("", "node", "w3", "term", 2))
	l.WithGroup("peer").With("id", "a").Warn("slow", "id", "b", "rtt", time.Millisecond)
}

// TestLoggerUniqueKeys: in both formats a record carries each key once,
// with the innermost value; in JSON every line is one object.
func TestLoggerUniqueKeys(t *testing.T) {
	// The checker itself: slog's own JSON handler writes the duplicates.
	var plain bytes.Buffer
	layered(slog.New(slog.NewJSONHandler(&plain, nil)))
	first, _, _ := bytes.Cut(plain.Bytes(), []byte("\n"))
	if err := checkJSONLine(first); err == nil || !strings.Contains(err.Error(), `duplicate key "subsystem"`) {
		t.Fatalf("checker on slog's plain JSON output %s: %v, want a duplicate subsystem", first, err)
	}

	var buf bytes.Buffer
	layered(newLogger("debug", "json", &buf))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got %d:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		if err := checkJSONLine([]byte(l)); err != nil {
			t.Errorf("%v in %s", err, l)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"msg": "entering leader state", "msg_attr": "shadow", "subsystem": "raft.replication", "node": "w3", "term": float64(2), "level": "INFO"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %#v, want %#v (record %s)", k, rec[k], v, lines[0])
		}
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if peer, _ := rec["peer"].(map[string]any); rec["subsystem"] != "raft" || peer["id"] != "b" || peer["rtt"] == nil {
		t.Errorf("grouped record %s: want subsystem raft and peer.id b", lines[1])
	}

	buf.Reset()
	layered(newLogger("info", "text", &buf))
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		seen := map[string]bool{}
		for _, f := range strings.Fields(l) {
			k, _, ok := strings.Cut(f, "=")
			if !ok {
				continue // inside a quoted message
			}
			if seen[k] {
				t.Errorf("text record repeats %q: %s", k, l)
			}
			seen[k] = true
		}
	}
	if !strings.Contains(buf.String(), "subsystem=raft.replication") || strings.Contains(buf.String(), "subsystem=election") {
		t.Errorf("text output:\n%s", buf.String())
	}
}

// TestServerLogsJSON runs three real `warden server` processes with
// --log-format json at debug level through an election, a leader kill and
// a clean stop, and checks that every line any of them wrote (stdout and
// stderr) is one JSON object with time, level and msg and no duplicate
// key, and that raft and memberlist logged through it.
func TestServerLogsJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three warden processes")
	}
	wc := testutil.StartWardens(t, testutil.WardenOptions{Args: []string{"--log-format", "json", "--log-level", "debug"}})
	leader := wc.WaitLeader(t, 30*time.Second)
	if err := leader.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	next := wc.WaitLeader(t, 30*time.Second)
	if _, err := next.Status(); err != nil {
		t.Fatal(err)
	}
	for _, n := range wc.Nodes {
		if err := n.Proc.Stop(); err != nil {
			t.Fatalf("stop %s: %v", n.ID, err)
		}
	}

	subsystems := map[string]int{}
	total := 0
	for _, n := range wc.Nodes {
		f, err := os.Open(n.Proc.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for line := 1; sc.Scan(); line++ {
			b := sc.Bytes()
			if len(bytes.TrimSpace(b)) == 0 || bytes.HasPrefix(b, []byte("=== testutil:")) {
				continue // the harness marks each start in the same file
			}
			total++
			if err := checkJSONLine(b); err != nil {
				t.Errorf("%s line %d: %v: %s", n.ID, line, err, b)
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := rec[k].(string); !ok {
					t.Errorf("%s line %d: no string %q: %s", n.ID, line, k, b)
				}
			}
			if s, ok := rec["subsystem"].(string); ok {
				subsystems[s]++
			}
		}
		if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("%s: %v", n.ID, err)
		}
		f.Close()
	}
	t.Logf("%d lines; records by subsystem: %v", total, subsystems)
	// The layers that used to repeat "subsystem" (election, then raft or
	// memberlist under it) must have logged.
	for _, s := range []string{"election", "raft", "memberlist"} {
		if subsystems[s] == 0 {
			t.Errorf("no record with subsystem %q (by subsystem: %v)", s, subsystems)
		}
	}
}
