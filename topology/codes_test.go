package topology

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryCodeIsInTheTable: every AnalysisCode and ProblemCode constant
// declared in this package (non-test files) is a row of the code table,
// and every row is declared: a new code cannot be reported without its
// description and severity.
func TestEveryCodeIsInTheTable(t *testing.T) {
	declared := declaredCodes(t, ".")
	if len(declared) < 20 {
		t.Fatalf("found only %d code constants: the scan is broken", len(declared))
	}
	for name, val := range declared {
		if val == "" {
			continue // NoProblem
		}
		if _, ok := LookupCode(val); !ok {
			t.Errorf("%s = %q is not in the code table (codes.go)", name, val)
		}
	}
	values := map[string]bool{}
	for _, v := range declared {
		values[v] = true
	}
	seen := map[string]bool{}
	for _, c := range Codes() {
		if seen[c.Code] {
			t.Errorf("%s: two rows", c.Code)
		}
		seen[c.Code] = true
		if !values[c.Code] {
			t.Errorf("row %s has no constant", c.Code)
		}
		if c.Description == "" || (c.Severity != SeverityCritical && c.Severity != SeverityWarning) || c.Source == "" {
			t.Errorf("row %s incomplete: %+v", c.Code, c)
		}
	}
}

// TestTableSeverityIsTheGravest: the predicates never report a code
// graver than its row says (the table is what alerting keys on).
func TestTableSeverityIsTheGravest(t *testing.T) {
	name := map[string]string{}
	for n, v := range declaredCodes(t, ".") {
		name[v] = n
	}
	var lines []string
	for _, f := range goFiles(t, ".") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	for _, c := range Codes() {
		if c.Source == SourceAnalysis || c.Severity != SeverityWarning {
			continue
		}
		for _, line := range lines {
			if strings.Contains(line, "Code: "+name[c.Code]+",") && strings.Contains(line, "SeverityCritical") {
				t.Errorf("%s reported critical, its row says warning: %s", c.Code, strings.TrimSpace(line))
			}
		}
	}
}

func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		if !strings.HasSuffix(f, "_test.go") {
			out = append(out, f)
		}
	}
	return out
}

// declaredCodes maps each constant of type AnalysisCode or ProblemCode to
// its value.
func declaredCodes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range goFiles(t, dir) {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				id, ok := vs.Type.(*ast.Ident)
				if !ok || (id.Name != "AnalysisCode" && id.Name != "ProblemCode") {
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("%s: %s is not a string literal", f, n.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					out[n.Name] = v
				}
			}
		}
	}
	return out
}
