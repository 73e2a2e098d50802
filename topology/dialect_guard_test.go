package topology

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// flavorCheckAllowlist are the files outside topology that still decide by
// flavour or version themselves. COMPAT(issue 14): to be removed by issue
// 14 migration (each moves to topology.Dialect, PlanSQL and
// divergence.go); the lead empties this list at the end. A file that no
// longer offends is reported by the test so its line can go.
//
// coordinator/failover.go, fence.go and plansql.go left it in 7966b8d.
var flavorCheckAllowlist = []string{}

// flavorCheckExempt are not consumers of topology: they play servers of a
// given flavour (a simulated fleet), so naming the flavour is what they do.
var flavorCheckExempt = []string{
	"test/fleetsim/",
}

// TestNoFlavorChecksOutsideTopology: outside topology, nothing checks a
// flavour or a version itself; it asks the instance's Dialect.
func TestNoFlavorChecksOutsideTopology(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from topology/: %v", err)
	}
	found, err := scanFlavorChecks(root)
	if err != nil {
		t.Fatal(err)
	}
	offending := map[string]bool{}
	for _, f := range found {
		if slices.Contains(flavorCheckAllowlist, f.file) || exempt(f.file) {
			offending[f.file] = true
			continue
		}
		t.Errorf("%s:%d: %s: ask the instance's topology.Dialect instead (topology/DESIGN.md, the dialect seam)", f.file, f.line, f.what)
	}
	for _, f := range flavorCheckAllowlist {
		if !offending[f] {
			t.Logf("allowlist entry %s no longer offends: remove it", f)
		}
	}
}

func exempt(file string) bool {
	for _, p := range flavorCheckExempt {
		if strings.HasPrefix(file, p) {
			return true
		}
	}
	return false
}

// TestFlavorCheckScanner: the scanner finds each kind of flavour check in
// a file it has never seen, and leaves alone what merely uses a dialect.
func TestFlavorCheckScanner(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example\n")
	write("newpkg/bad.go", `package newpkg

import (
	"example/topology"
	"example/topology/gtid"
)

func a(in *topology.Instance) bool { return in.Flavor.IsMariaDB() }
func b(v topology.ServerVersion) bool { return v.AtLeast(8, 0, 23) }
func c(in *topology.Instance) bool { return in.Flavor == topology.FlavorMySQL }
func d(f string) bool { return f != "MariaDB" }
func e(in *topology.Instance) gtid.Flavor { return gtid.MySQL }
func f(in *topology.Instance) bool { return in.Dialect().Family() == "mysql" }
func g(in *topology.Instance) int {
	switch in.Flavor {
	case "percona":
		return 1
	}
	return 0
}
func h(v topology.ServerVersion) bool { return v.UsesReplicaKeyword() }
func i(a, b *topology.Instance) bool { return a.Flavor != b.Flavor }
func j(a *topology.Instance) bool { return a.Dialect().GTIDFlavor() == gtid.MariaDB }
`)
	write("newpkg/good.go", `package newpkg

import "example/topology"

func ok(in *topology.Instance) []string { return in.Dialect().SetReadOnly(true) }
func ok2(in *topology.Instance) string { return in.Dialect().Family() }
func ok3(s string) bool { return s == "maria" }
func ok4(in *topology.Instance) bool { return in.Flavor != "" }
`)
	write("newpkg/bad_test.go", "package newpkg\n\nfunc t(f string) bool { return f == \"mysql\" }\n")
	write("topology/inside.go", "package topology\n\nfunc (f Flavor) IsMariaDB() bool { return f == FlavorMariaDB }\n")
	write("vendor/x/x.go", "package x\n\nfunc v(f string) bool { return f == \"mysql\" }\n")

	found, err := scanFlavorChecks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		got = append(got, fmt.Sprintf("%s:%d", f.file, f.line))
	}
	want := []string{"newpkg/bad.go:8", "newpkg/bad.go:9", "newpkg/bad.go:10", "newpkg/bad.go:11", "newpkg/bad.go:12",
		"newpkg/bad.go:13", "newpkg/bad.go:15", "newpkg/bad.go:21", "newpkg/bad.go:22", "newpkg/bad.go:23"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("found %v\nwant  %v\n(%v)", got, want, found)
	}
	// A syntax error is reported, not skipped: a file the scanner cannot
	// read could hide anything.
	write("broken/x.go", "package broken\nfunc {")
	if _, err := scanFlavorChecks(dir); err == nil {
		t.Fatal("a file that does not parse was skipped silently")
	}
}

type flavorCheck struct {
	file string // slash-separated, relative to the root
	line int
	what string
}

// Method names that are version or flavour gates (ServerVersion's and
// Flavor's), not Dialect methods: calling one outside topology decides by
// flavour or version by hand.
var flavorGateMethods = []string{
	"IsMariaDB", "IsMySQL", "IsPercona", "AtLeast", "UsesReplicaKeyword", "UsesSourceColumns",
	"HasBinaryLogStatus", "ReplicaStatusStatement", "BinlogStatusStatement", "ReplicaHostsStatement",
}

// Names of flavour values: topology's Flavor constants and gtid's flavours.
var flavorConstants = []string{"FlavorMariaDB", "FlavorMySQL", "FlavorPercona", "FlavorUnknown"}

var flavorWords = []string{"mariadb", "mysql", "percona"}

// scanFlavorChecks parses every non-test .go file under root outside
// topology/ (and vendor, testdata, hidden directories) and returns the
// flavour checks it holds: calls of flavour/version gates, uses of flavour
// constants (naming a flavour is deciding by it), and comparisons or
// switches against a flavour word or a dialect's Family/Row/GTIDFlavor.
func scanFlavorChecks(root string) ([]flavorCheck, error) {
	var out []flavorCheck
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			name := e.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "vendor" || name == "testdata" || name == "node_modules" || rel == "topology") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("flavour-check scan: %w", err)
		}
		seen := map[int]bool{}
		add := func(n ast.Node, what string) {
			line := fset.Position(n.Pos()).Line
			if !seen[line] { // one finding per line is enough to point at it
				seen[line] = true
				out = append(out, flavorCheck{file: rel, line: line, what: what})
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && slices.Contains(flavorGateMethods, sel.Sel.Name) {
					add(x, "calls "+sel.Sel.Name)
				}
			case *ast.SelectorExpr:
				if slices.Contains(flavorConstants, x.Sel.Name) {
					add(x, "names "+x.Sel.Name)
				}
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "gtid" && (x.Sel.Name == "MariaDB" || x.Sel.Name == "MySQL") {
					add(x, "names gtid."+x.Sel.Name)
				}
			case *ast.BinaryExpr:
				if (x.Op == token.EQL || x.Op == token.NEQ) && flavorComparison(x.X, x.Y) {
					add(x, "compares a flavour")
				}
			case *ast.SwitchStmt:
				if x.Tag != nil && flavorOperand(x.Tag) {
					add(x, "switches on a flavour")
					break
				}
				for _, s := range x.Body.List {
					cc, ok := s.(*ast.CaseClause)
					if !ok {
						continue
					}
					for _, v := range cc.List {
						if flavorWord(v) {
							add(x, "switches on a flavour")
							return true
						}
					}
				}
			}
			return true
		})
		return nil
	})
	return out, err
}

// flavorComparison: a flavour word on either side, or a flavour operand
// compared with another or with a flavour constant (comparing a Flavor
// field with "" asks whether it is known, which decides nothing).
func flavorComparison(a, b ast.Expr) bool {
	if flavorWord(a) || flavorWord(b) {
		return true
	}
	return flavorOperand(a) && (flavorOperand(b) || flavorConstant(b)) ||
		flavorOperand(b) && flavorConstant(a)
}

func flavorConstant(e ast.Expr) bool {
	x, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	if id, ok := x.X.(*ast.Ident); ok && id.Name == "gtid" && (x.Sel.Name == "MariaDB" || x.Sel.Name == "MySQL") {
		return true
	}
	return slices.Contains(flavorConstants, x.Sel.Name)
}

// flavorOperand: a flavour word, or what only a flavour check reads (a
// Flavor field, a dialect's Family, Row or GTIDFlavor).
func flavorOperand(e ast.Expr) bool {
	if flavorWord(e) {
		return true
	}
	switch x := e.(type) {
	case *ast.SelectorExpr:
		return x.Sel.Name == "Flavor"
	case *ast.CallExpr:
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
			return sel.Sel.Name == "Family" || sel.Sel.Name == "Row" || sel.Sel.Name == "GTIDFlavor"
		}
	}
	return false
}

func flavorWord(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return false
	}
	s, err := strconv.Unquote(lit.Value)
	return err == nil && slices.Contains(flavorWords, strings.ToLower(s))
}
