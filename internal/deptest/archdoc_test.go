package deptest

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// TestArchitectureTable keeps docs/architecture.md's package table equal to
// the module: one row per package, and a "depends on" column that names
// exactly the module's packages the row's package imports itself (by their
// last path element; "root" for the module's root package). Outside
// dependencies (nbio, pgx, ...) and "stdlib only" are free text.
func TestArchitectureTable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	rows := architectureRows(t)
	pkgs := list(t)
	ours := map[string]*pkg{} // keyed by path in the module: "", "internal/chat", ...
	for _, p := range pkgs {
		if under(p.ImportPath, module) {
			ours[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p
		}
	}
	short := func(rel string) string {
		if rel == "" {
			return "root"
		}
		return path.Base(rel)
	}
	known := map[string]bool{}
	for rel := range ours {
		known[short(rel)] = true
	}
	for rel, p := range ours {
		deps, ok := rows[rel]
		if !ok {
			t.Errorf("package %q has no row in docs/architecture.md's package table", rel)
			continue
		}
		var want []string
		for _, imp := range p.Imports {
			if under(imp, module) {
				want = append(want, short(strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")))
			}
		}
		var got []string
		for _, word := range deps {
			if known[word] {
				got = append(got, word)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(slices.Compact(want), slices.Compact(got)) {
			t.Errorf("row %q says it depends on %v of the module's packages; it imports %v", rel, got, want)
		}
	}
	for rel := range rows {
		if _, ok := ours[rel]; !ok {
			t.Errorf("row %q of docs/architecture.md's package table names no package", rel)
		}
	}
}

// architectureRows reads the package table: package path ("" for the root)
// to the words of its "depends on" column.
func architectureRows(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "| package |"):
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			return rows
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("package table row with %d cells: %q", len(cells), line)
		}
		name := strings.TrimSpace(cells[0])
		name, _, _ = strings.Cut(strings.Trim(name, "`"), "`")
		if name == "switchboard" {
			name = ""
		}
		rows[name] = strings.FieldsFunc(cells[2], func(r rune) bool { return r == ',' || r == ' ' || r == '`' })
	}
	return rows
}
