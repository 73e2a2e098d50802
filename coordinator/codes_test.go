package coordinator

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ha/warden/election"
	"github.com/warden-ha/warden/topology"
)

// TestProblemCodesComeFromTopologysTable: every election.Problem this
// package builds takes its code from topology's code table: either a
// topology constant that is a row of it, or a topology result's code
// passed through (an Analysis' or a Problem's, produced by topology's
// own predicates, whose codes its own test keeps in the table). A literal
// string or a local constant fails here.
func TestProblemCodesComeFromTopologysTable(t *testing.T) {
	consts := topologyCodeConsts(t)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	literals := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok || exprText(fset, cl.Type) != "election.Problem" {
				return true
			}
			literals++
			for _, el := range cl.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok || exprText(fset, kv.Key) != "Code" {
					continue
				}
				code := exprText(fset, kv.Value)
				switch {
				case code == "string(a.Code)" || code == "string(p.Code)":
					// A topology Analysis' or Problem's code.
				case strings.HasPrefix(code, "string(topology.") && strings.HasSuffix(code, ")"):
					name := strings.TrimSuffix(strings.TrimPrefix(code, "string(topology."), ")")
					v, ok := consts[name]
					if !ok {
						t.Errorf("%s: %s: topology.%s is not a code constant", fset.Position(kv.Pos()), code, name)
					} else if _, ok := topology.LookupCode(v); !ok {
						t.Errorf("%s: %s (%q) is not in topology's code table", fset.Position(kv.Pos()), code, v)
					}
				default:
					t.Errorf("%s: a problem code not from topology's table: %s", fset.Position(kv.Pos()), code)
				}
			}
			return true
		})
	}
	if literals < 5 {
		t.Fatalf("found %d election.Problem literals: the scan is broken", literals)
	}
}

// And at run time: whatever the detector reports in a few scenarios (a
// dead master held by automatic recovery being off, a stall, an instance
// with an invalid reported host) is a row of the table, with its severity.
func TestDetectorReportsTableCodes(t *testing.T) {
	e := newTestEnv(t, mariadb, nil)
	n := e.standard()
	off := false
	e.must(n, election.SettingsUpdate{AutomaticRecovery: &off})
	e.kill(n, key(1))
	var codes []election.Problem
	codes = append(codes, n.c.detector.evaluate(time.Now())...)
	e2 := newTestEnv(t, mysql, nil)
	n2 := e2.standard()
	e2.stall(n2)
	codes = append(codes, n2.c.detector.evaluate(time.Now())...)
	seen := map[string]bool{}
	for _, p := range codes {
		seen[p.Code] = true
		row, ok := topology.LookupCode(p.Code)
		if !ok {
			t.Errorf("the detector reported %s, not in topology's code table", p.Code)
			continue
		}
		if p.Severity != string(row.Severity) && !(row.Source != topology.SourceAnalysis && p.Severity == string(topology.SeverityWarning)) {
			t.Errorf("%s reported %s, its row says %s", p.Code, p.Severity, row.Severity)
		}
	}
	for _, want := range []string{string(topology.DeadMaster), string(topology.ProblemRecoveryBlocked), string(topology.StalledMaster)} {
		if !seen[want] {
			t.Errorf("scenario did not produce %s (got %v)", want, seen)
		}
	}
}

func exprText(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	_ = printer.Fprint(&b, fset, e)
	return b.String()
}

// topologyCodeConsts maps topology's AnalysisCode and ProblemCode
// constants to their values.
func topologyCodeConsts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../topology/*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
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
				if id, ok := vs.Type.(*ast.Ident); !ok || (id.Name != "AnalysisCode" && id.Name != "ProblemCode") {
					continue
				}
				for i, n := range vs.Names {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						out[n.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	return out
}
