package sqlcore

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migration is one file of a store's embedded migrations/ folder, named
// <version>_<what>.sql. Each store applies them in its own way (a write
// lock, an advisory lock), each in its own transaction.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ReadMigrations returns the migrations of fsys's migrations/ folder sorted
// by version, refusing names without a version and two files with the same
// one.
func ReadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := make(map[int]string)
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		prefix, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must be <version>_<what>.sql", name)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version", other, name)
		}
		seen[version] = name
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: version, Name: name, SQL: string(b)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}
