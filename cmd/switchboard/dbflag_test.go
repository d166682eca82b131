package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestStoreKind(t *testing.T) {
	for _, tc := range []struct {
		db, kind string // kind "" means refused
	}{
		{"", "sqlite"},
		{"data/switchboard.db", "sqlite"},
		{"/var/lib/switchboard/sb.db", "sqlite"},
		{"postgres://u@127.0.0.1:5432/sb", "postgres"},
		{"postgresql://u@127.0.0.1/sb?sslmode=disable", "postgres"},
		{"host=127.0.0.1 port=5432 user=sb dbname=sb sslmode=disable", "postgres"},
		{"host=/run/postgresql dbname=sb password='a b=c'", "postgres"},
		{"mysql://root@127.0.0.1/sb", ""},
		{"sqlite:///tmp/x.db", ""},
		{"redis://127.0.0.1:6379", ""},
		{"host=127.0.0.1 database=sb", ""},
	} {
		name := tc.db + " is " + tc.kind
		if tc.kind == "" {
			name = tc.db + " is refused"
		}
		t.Run(name, func(t *testing.T) {
			kind, err := storeKind(tc.db)
			if kind != tc.kind || (tc.kind == "") != (err != nil) {
				t.Fatalf("storeKind(%q) = %q, %v; want %q", tc.db, kind, err, tc.kind)
			}
		})
	}
}

// A --db that names no store we have fails migrate with a clear message and
// leaves no SQLite file behind.
func TestMigrateRefusesAnUnknownStore(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	err := run(context.Background(), []string{"migrate", "--db", "mysql://x", "--data-dir", dir})
	if err == nil || !strings.Contains(err.Error(), `"mysql" stores are not supported`) {
		t.Fatalf("migrate --db mysql://x: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("migrate left %s behind", filepath.Join(dir, e.Name()))
	}
}

// A PostgreSQL keyword string migrates that PostgreSQL database.
func TestMigrateTakesAKeywordString(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	kw := "host=" + u.Hostname() + " port=" + u.Port() + " user=" + u.User.Username() +
		" dbname=" + strings.TrimPrefix(u.Path, "/") + " sslmode=disable"
	dir := t.TempDir()
	t.Chdir(dir)
	if err := run(context.Background(), []string{"migrate", "--db", kw}); err != nil {
		t.Fatalf("migrate --db %q: %v", kw, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("migrate --db %q made %s: a SQLite file, not PostgreSQL", kw, entries[0].Name())
	}
}
