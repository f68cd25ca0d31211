package apicheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// publicPackages are the packages apps import, by directory from the module
// root, as docs/packages.md heads their sections.
var publicPackages = []string{"verifier", "verifier/verifiertest", "client", "gate", "token"}

// TestExportedNamesListed: each public package exports exactly the names
// docs/packages.md lists for it (functions, types, constants, variables and
// methods of exported types; struct fields belong to their type).
func TestExportedNamesListed(t *testing.T) {
	listed := listedNames(t, filepath.Join("..", "..", "docs", "packages.md"))
	for _, pkg := range publicPackages {
		t.Run(pkg, func(t *testing.T) {
			exported := exportedNames(t, filepath.Join("..", "..", filepath.FromSlash(pkg)))
			doc, ok := listed[pkg]
			if !ok {
				t.Fatalf("docs/packages.md has no section ### `%s`", pkg)
			}
			for _, name := range exported {
				if !slices.Contains(doc, name) {
					t.Errorf("%s.%s is exported but docs/packages.md does not list it with the reason it is public", pkg, name)
				}
			}
			for _, name := range doc {
				if !slices.Contains(exported, name) {
					t.Errorf("docs/packages.md lists %s.%s, which %s does not export", pkg, name, pkg)
				}
			}
		})
	}
}

// exportedNames parses the package in dir (its non-test files) and returns
// its exported names, methods as Type.Method.
func exportedNames(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", dir, err)
	}
	var names []string
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				names = append(names, declNames(d)...)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func declNames(d ast.Decl) []string {
	var names []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() {
			return nil
		}
		if d.Recv == nil {
			return []string{d.Name.Name}
		}
		if recv := receiverType(d.Recv.List[0].Type); ast.IsExported(recv) {
			return []string{recv + "." + d.Name.Name}
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				if s.Name.IsExported() {
					names = append(names, s.Name.Name)
				}
			case *ast.ValueSpec:
				for _, n := range s.Names {
					if n.IsExported() {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}

// receiverType returns the name of a method's receiver type: T for T, *T,
// T[P] and *T[P].
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

var (
	sectionRE = regexp.MustCompile("^### `([a-z/]+)`\\s*$")
	nameRE    = regexp.MustCompile("`([A-Z][A-Za-z0-9]*(?:\\.[A-Z][A-Za-z0-9]*)?)`")
)

// listedNames reads the tables of docs/packages.md: under each heading
// ### `pkg`, the names in backquotes in the first cell of each row.
func listedNames(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	for line := range strings.Lines(string(data)) {
		if m := sectionRE.FindStringSubmatch(line); m != nil {
			section = m[1]
			out[section] = nil
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = ""
		}
		cells := strings.Split(line, "|")
		if section == "" || len(cells) < 3 {
			continue
		}
		for _, m := range nameRE.FindAllStringSubmatch(cells[1], -1) {
			out[section] = append(out[section], m[1])
		}
	}
	return out
}
