package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
	"github.com/switchboard-chat/switchboard/internal/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	t.Run("on a file", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) switchboard.Store {
			return open(t, filepath.Join(t.TempDir(), "db", "switchboard.db"))
		})
	})
	t.Run("in memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) switchboard.Store {
			return open(t, ":memory:")
		})
	})
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	t.Run("running it again changes nothing and keeps the data", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		s := open(t, path)
		u := &switchboard.User{ID: "u-1", Username: "alice", PasswordHash: "h"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		// And from a new process's point of view: a second Store on the file.
		again := open(t, path)
		if _, err := again.UserByName(ctx, "alice"); err != nil {
			t.Fatalf("UserByName after migrating again: %v", err)
		}
	})
}

// TestMigrateFoldsUsernames starts from a database of before migration
// 0004, where Alice and alice could be two accounts: the oldest keeps its
// name, the later one is renamed, and from then on case is ignored.
func TestMigrateFoldsUsernames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	open(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`DROP INDEX users_username_folded`,
		`DELETE FROM schema_migrations WHERE version = 4`,
		`INSERT INTO users (id, username, password_hash, created_at) VALUES
			('usr_older', 'Alice', 'h', 1), ('usr_newer', 'alice', 'h', 2), ('usr_bob', 'bob', 'h', 3)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, path) // migrates
	for name, want := range map[string]string{"ALICE": "usr_older", "alice-newer": "usr_newer", "Bob": "usr_bob"} {
		u, err := s.UserByName(ctx, name)
		if err != nil || u.ID != want {
			t.Errorf("UserByName(%s) = %+v, %v; want %s", name, u, err, want)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Run("Open creates the folder and puts the database in WAL mode", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a", "b", "switchboard.db")
		open(t, path)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var mode string
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Fatalf("journal_mode = %q, want wal", mode)
		}
	})

	t.Run("a path with a question mark is refused", func(t *testing.T) {
		if _, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db?mode=ro")); err == nil {
			t.Fatal("Open succeeded")
		}
	})
}

// BenchmarkAppendMessage measures durable sends on a database file
// (synchronous=FULL: each commit is fsynced):
//
//	go test -run '^$' -bench 'AppendMessage$' -benchtime 5s ./internal/sqlite
func BenchmarkAppendMessage(b *testing.B) {
	storetest.BenchmarkAppendMessage(b, func(b *testing.B) switchboard.Store {
		return open(b, filepath.Join(b.TempDir(), "switchboard.db"))
	})
}

// BenchmarkAppendMessageSync measures the same with the writer's
// synchronous=NORMAL (commits not fsynced: the last ones are lost on power
// loss) and OFF, to show what FULL costs with group commit:
//
//	go test -run '^$' -bench AppendMessageSync -benchtime 5s ./internal/sqlite
func BenchmarkAppendMessageSync(b *testing.B) {
	for _, mode := range []string{"NORMAL", "OFF"} {
		b.Run(mode, func(b *testing.B) {
			storetest.BenchmarkAppendMessage(b, func(b *testing.B) switchboard.Store {
				s, err := sqlite.OpenSynchronous(filepath.Join(b.TempDir(), "switchboard.db"), mode)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				if err := s.Migrate(context.Background()); err != nil {
					b.Fatal(err)
				}
				return s
			})
		})
	}
}

// BenchmarkAppendShared measures durable shared-ciphertext sends in one
// group of 500 devices and in 64 groups of 20:
//
//	go test -run '^$' -bench AppendShared -benchtime 5s ./internal/sqlite
func BenchmarkAppendShared(b *testing.B) {
	storetest.BenchmarkAppendShared(b, func(b *testing.B) switchboard.Store {
		return open(b, filepath.Join(b.TempDir(), "switchboard.db"))
	})
}

// TestFilesArePrivate checks the database, its WAL and shared-memory files
// and a folder Open creates are readable by the node's user alone: they hold
// password hashes (issue 18).
func TestFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	wantMode := func(t *testing.T, name string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", filepath.Base(name), got, want)
		}
	}
	t.Run("a new database, its WAL, its shm and a new folder are private", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "node")
		path := filepath.Join(dir, "switchboard.db")
		s := open(t, path)
		if err := s.CreateUser(ctx, &switchboard.User{ID: "u-1", Username: "alice", PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		wantMode(t, dir, 0o700)
		wantMode(t, filepath.Dir(dir), 0o700)
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			wantMode(t, name, 0o600)
		}
	})
	t.Run("an existing world-readable database and WAL are made private", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "switchboard.db")
		for _, name := range []string{path, path + "-wal"} {
			if err := os.WriteFile(name, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(name, 0o644); err != nil { // whatever the umask
				t.Fatal(err)
			}
		}
		open(t, path)
		wantMode(t, path, 0o600)
		wantMode(t, path+"-wal", 0o600)
	})
}
