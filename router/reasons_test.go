package router_test

import (
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

	"github.com/fleetgate/fleetgate/router"
)

// TestReasonsListed keeps the vocabulary in one place: every Reason
// constant is in one of the lists the metrics initialise, and no non-test
// file of the module spells a reason out instead of using the constant (a
// copy drifts, and its series would start at 1, invisible to increase()).
func TestReasonsListed(t *testing.T) {
	fset := token.NewFileSet()
	// Every Reason constant of the package, wherever it is declared.
	var decls []ast.Decl
	files, _ := filepath.Glob("*.go")
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		decls = append(decls, f.Decls...)
	}
	listed := slices.Concat(router.PermanentReasons(), router.TransientReasons(), router.RefusalReasons())
	words := map[string]string{}
	for _, d := range decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				word, _ := strconv.Unquote(lit.Value)
				words[word] = name.Name
				if !slices.Contains(listed, word) {
					t.Errorf("%s (%q) is in neither PermanentReasons nor TransientReasons: the metrics would not start it at zero", name.Name, word)
				}
			}
		}
	}
	if len(words) != len(listed) {
		t.Errorf("%d Reason constants, %d listed: %v", len(words), len(listed), listed)
	}

	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "third_party" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		file, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				// The declarations themselves.
				if len(n.Names) > 0 && strings.HasPrefix(n.Names[0].Name, "Reason") && filepath.Dir(path) == filepath.Join(root, "router") {
					return false
				}
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				if w, _ := strconv.Unquote(n.Value); words[w] != "" {
					t.Errorf("%s: %s spells out the reason; use router.%s", fset.Position(n.Pos()), n.Value, words[w])
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Reason" {
					if lit, ok := n.Value.(*ast.BasicLit); ok {
						t.Errorf("%s: Reason: %s is not a router.Reason constant; add it to router/reasons.go", fset.Position(n.Pos()), lit.Value)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
