package wire

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestEachNameHasOneHome is issue 17's acceptance as a test: each frame
// type name and each close code is defined in exactly one Go file of the
// repository, in this package. Elsewhere code must use the constants and
// the encoders. A definition is, in a non-test file: a constant with that
// value (a close code: named Close… or in 4000-4999; a type name: named
// Type… or …Frame…); a frame type name compared with, switched on or put
// in a Type field or a "type" key, or passed to a function named …frame…;
// a string holding "type":"name" (a frame written by hand); a close code
// written as a number in a Close call.
// Tests may spell frames out: they check the contract from outside.
func TestEachNameHasOneHome(t *testing.T) {
	types := map[string]bool{}
	for _, ty := range slices.Concat(ClientTypes, ServerTypes) {
		types[ty] = true
	}
	closes := map[int]bool{}
	for _, c := range CloseCodes {
		closes[c] = true
	}
	homes := map[string]map[string]bool{} // "type send", "close 4001" → files
	found := func(what, file string) {
		if homes[what] == nil {
			homes[what] = map[string]bool{}
		}
		homes[what][file] = true
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		for _, what := range definitions(f, types, closes) {
			found(what, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for ty := range types {
		all = append(all, "type "+ty)
	}
	for c := range closes {
		all = append(all, "close "+strconv.Itoa(c))
	}
	slices.Sort(all)
	for _, what := range all {
		files := slices.Sorted(func(yield func(string) bool) {
			for f := range homes[what] {
				if !yield(f) {
					return
				}
			}
		})
		if len(files) != 1 || !strings.HasPrefix(files[0], "wire/") {
			t.Errorf("%s is defined in %v; want one file of wire/ (use the wire constants elsewhere)", what, files)
		}
	}
}

// definitions returns what f defines: "type NAME" and "close CODE" items.
func definitions(f *ast.File, types map[string]bool, closes map[int]bool) []string {
	var out []string
	typeLit := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil && types[s]
	}
	closeLit := func(e ast.Expr) (int, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.INT {
			return 0, false
		}
		n, err := strconv.Atoi(lit.Value)
		return n, err == nil && closes[n]
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ImportSpec, *ast.Field:
			return false // import paths and struct tags
		case *ast.GenDecl:
			if n.Tok != token.CONST {
				return true
			}
			for _, spec := range n.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if s, ok := typeLit(vs.Values[i]); ok && (strings.HasPrefix(name.Name, "Type") || strings.Contains(strings.ToLower(name.Name), "frame")) {
						out = append(out, "type "+s)
					}
					if c, ok := closeLit(vs.Values[i]); ok && (strings.HasPrefix(name.Name, "Close") || c >= 4000) {
						out = append(out, fmt.Sprint("close ", c))
					}
				}
			}
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				s, _ := strconv.Unquote(n.Value)
				for ty := range types {
					if strings.Contains(s, `"type":"`+ty+`"`) || strings.Contains(s, `"type": "`+ty+`"`) {
						out = append(out, "type "+ty)
					}
				}
			}
		case *ast.KeyValueExpr:
			if isTypeName(n.Key) || isTypeKey(n.Key) {
				if s, ok := typeLit(n.Value); ok {
					out = append(out, "type "+s)
				}
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				for _, pair := range [2][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
					if s, ok := typeLit(pair[0]); ok && isTypeName(pair[1]) {
						out = append(out, "type "+s)
					}
				}
			}
		case *ast.SwitchStmt:
			if n.Tag != nil && isTypeName(n.Tag) {
				for _, st := range n.Body.List {
					for _, e := range st.(*ast.CaseClause).List {
						if s, ok := typeLit(e); ok {
							out = append(out, "type "+s)
						}
					}
				}
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Close" && len(n.Args) > 0 {
				if c, ok := closeLit(n.Args[0]); ok {
					out = append(out, fmt.Sprint("close ", c))
				}
			}
			if strings.Contains(strings.ToLower(funcName(n.Fun)), "frame") {
				for _, arg := range n.Args {
					if s, ok := typeLit(arg); ok {
						out = append(out, "type "+s)
					}
				}
			}
		}
		return true
	})
	return out
}

// isTypeName reports whether e names a frame's type: Type, typ, x.Type or string(typ).
func isTypeName(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "Type" || e.Name == "typ"
	case *ast.SelectorExpr:
		return e.Sel.Name == "Type"
	case *ast.CallExpr:
		return len(e.Args) == 1 && isTypeName(e.Args[0])
	}
	return false
}

// funcName is the name of the function or method fun calls, or "".
func funcName(fun ast.Expr) string {
	switch fun := fun.(type) {
	case *ast.Ident:
		return fun.Name
	case *ast.SelectorExpr:
		return fun.Sel.Name
	}
	return ""
}

// isTypeKey reports whether e is the map key "type".
func isTypeKey(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING && lit.Value == `"type"`
}
