package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryMetricIsDocumented: every Prometheus metric name the code
// registers ("warden_..." string literals outside tests) has a row in
// docs/metrics.md, and the doc lists no metric the code lacks.
func TestEveryMetricIsDocumented(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	lit := regexp.MustCompile(`"(warden_[a-z_]*[a-z])"`)
	inCode := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "test" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			inCode[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inCode) < 15 {
		t.Fatalf("found only %d metric names in the code: %v", len(inCode), inCode)
	}
	for name := range inCode {
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("metric %s is not documented in docs/metrics.md", name)
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `(warden_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		if !inCode[m[1]] {
			t.Errorf("docs/metrics.md lists %s, which the code does not register", m[1])
		}
	}
}
