package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestProtocolDocCodes keeps docs/protocol.md, the human contract, equal to
// this package: its tables of error codes (HTTP and WebSocket) name exactly
// Codes, its table of close codes lists exactly CloseCodes, and those lists
// hold every Code and Close constant declared here.
func TestProtocolDocCodes(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	codeCell := regexp.MustCompile("^`([a-z_]+)`$")
	closeRow := regexp.MustCompile(`^\| *([0-9]{4}) *\|`)
	var codes, kinds []string
	var closes []int
	// Codes are read from the tables with a "code" column only: other
	// tables (the call actions) name things in backquotes too. The table
	// of event kinds (event.go) is read for the kinds.
	header, codeTable, inKinds := "", false, false
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "|") {
			header = ""
			continue
		}
		if header == "" {
			header = line
			inKinds = strings.HasPrefix(line, "| kind |")
			codeTable = slices.Contains(strings.Fields(strings.ReplaceAll(line, "|", " ")), "code")
		}
		if inKinds {
			if m := codeCell.FindStringSubmatch(strings.TrimSpace(strings.Split(line, "|")[1])); m != nil {
				kinds = append(kinds, m[1])
			}
			continue
		}
		if !codeTable {
			continue
		}
		if m := closeRow.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			closes = append(closes, n)
			continue
		}
		for _, cell := range strings.Split(line, "|") {
			if m := codeCell.FindStringSubmatch(strings.TrimSpace(cell)); m != nil {
				codes = append(codes, m[1])
				break // a row's first code is the one it defines
			}
		}
	}
	t.Run("every error code in the docs is a constant and every constant is in the docs", func(t *testing.T) {
		sameSet(t, "docs/protocol.md's code tables", codes, "wire.Codes", Codes)
	})
	t.Run("the event kinds in the docs are exactly EventKinds", func(t *testing.T) {
		sameSet(t, "docs/protocol.md's event kinds", kinds, "wire.EventKinds", EventKinds)
	})
	t.Run("every close code in the docs is a constant and every constant is in the docs", func(t *testing.T) {
		sameSet(t, "docs/protocol.md's close codes", closes, "wire.CloseCodes", CloseCodes)
	})

	// The lists against the constants, read from this package's source.
	consts := declaredConsts(t)
	var codeConsts []string
	var closeConsts []int
	for name, v := range consts {
		switch {
		case strings.HasPrefix(name, "Code"):
			s, _ := strconv.Unquote(v)
			codeConsts = append(codeConsts, s)
		case strings.HasPrefix(name, "Close") && !strings.HasPrefix(name, "CloseReserved"):
			n, _ := strconv.Atoi(v)
			closeConsts = append(closeConsts, n)
		}
	}
	t.Run("Codes holds every Code constant", func(t *testing.T) {
		sameSet(t, "the Code constants", codeConsts, "wire.Codes", Codes)
	})
	t.Run("CloseCodes holds every Close constant", func(t *testing.T) {
		sameSet(t, "the Close constants", closeConsts, "wire.CloseCodes", CloseCodes)
	})
}

// sameSet fails t unless a and b hold the same values; b (a list of this
// package) must hold each once, a (the docs, where a code may be in the
// HTTP table and the WebSocket table) may repeat one.
func sameSet[T int | string](t *testing.T, aName string, a []T, bName string, b []T) {
	t.Helper()
	count := map[T][2]int{}
	for _, v := range a {
		c := count[v]
		c[0]++
		count[v] = c
	}
	for _, v := range b {
		c := count[v]
		c[1]++
		count[v] = c
	}
	keys := make([]T, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch c := count[k]; {
		case c[0] == 0:
			t.Errorf("%v is in %s but not in %s", k, bName, aName)
		case c[1] == 0:
			t.Errorf("%v is in %s but not in %s", k, aName, bName)
		case c[1] > 1:
			t.Errorf("%v is listed %d times in %s", k, c[1], bName)
		}
	}
}

// declaredConsts returns the constants with a literal value declared in
// this package's non-test files, by name, with the literal as written.
func declaredConsts(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
							consts[name.Name] = lit.Value
						}
					}
				}
			}
		}
	}
	return consts
}
