// Command nemesischeck re-judges recorded nemesis histories with the
// checker: `go run ./test/nemesis/cmd/nemesischeck test/artifacts/nemesis/*/history.jsonl`.
// It prints each file's violations and counts, and exits 1 if any file has
// a violation (2 on a bad file).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/history"
	"github.com/warden-ha/warden/test/nemesis/timeline"
)

func main() {
	svg := flag.Bool("svg", false, "also (re)draw timeline.svg beside each history with this checker")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: nemesischeck [-svg] HISTORY.jsonl...")
		os.Exit(2)
	}
	code := 0
	for _, path := range flag.Args() {
		recs, err := history.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		res := checker.Check(recs, checker.Default())
		st, _ := json.Marshal(res.Stats)
		fmt.Printf("%s: %d violation(s) %s\n", path, len(res.Violations), st)
		for _, v := range res.Violations {
			fmt.Printf("  %s\n", v)
			code = 1
		}
		if *svg {
			out := filepath.Join(filepath.Dir(path), "timeline.svg")
			if err := os.WriteFile(out, timeline.SVG(recs, res), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
	}
	os.Exit(code)
}
