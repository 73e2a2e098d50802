// Command nemesischeck re-judges recorded nemesis histories with the
// checker: `go run ./test/nemesis/cmd/nemesischeck test/artifacts/nemesis/*/history.jsonl`.
// It prints each file's violations and counts, and exits 1 if any file has
// a violation (2 on a bad file).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/warden-ha/warden/test/nemesis/checker"
	"github.com/warden-ha/warden/test/nemesis/history"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nemesischeck HISTORY.jsonl...")
		os.Exit(2)
	}
	code := 0
	for _, path := range os.Args[1:] {
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
	}
	os.Exit(code)
}
