// Package sqlite implements switchboard.Store on SQLite, through the pure
// Go driver modernc.org/sqlite (no cgo): the store of a single node, and of
// development and tests.
//
// The database runs in WAL mode so that readers never wait for the writer.
// All writes go through one connection: SQLite has one writer at a time
// anyway, and queuing writers in Go is cheaper and fairer than letting
// them collide on SQLITE_BUSY.
//
// Appends are group-committed (append.go): the sends that arrive while a
// transaction commits share the next one, so a busy node pays one fsync
// per batch instead of one per message.
//
// Durability: the writer runs with synchronous=FULL, so a commit (and the
// send acknowledged after it) survives a power loss or an OS crash, not
// only a crash of the process. WAL with synchronous=NORMAL would skip the
// fsync at each commit and lose the last acknowledged sends on power loss,
// which clients would never retry (they had their ack). Group commit
// already spreads the fsync over a batch, which leaves NORMAL little to
// gain under load (docs/benchmarks.md), so it is not offered.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ switchboard.Store = (*Store)(nil)

// Store is a switchboard.Store in one SQLite file. It is safe for
// concurrent use.
type Store struct {
	w        *sql.DB              // the single writer connection; every transaction is BEGIN IMMEDIATE
	r        *sql.DB              // readers
	appends  *sqlcore.AppendQueue // AppendMessage's batches
	stmts    appendStmts          // the committer's
	acks     *sqlcore.AckQueue    // Ack's batches (acks.go)
	observer sqlcore.Observer     // called by the committer
}

// Connection settings. busy_timeout still matters with one writer: another
// process (a migration, the sqlite3 shell) may hold the lock for a moment.
const (
	common       = "_busy_timeout=5000&_foreign_keys=1"
	writerParams = common + "&_journal_mode=WAL&_txlock=immediate"
	readerParams = common + "&_query_only=1"
)

// Open opens (creating it and its folder if needed) the database at path.
// ":memory:" opens a private in-memory database, for tests. Call Migrate
// before use.
func Open(path string) (*Store, error) {
	return open(path, "FULL")
}

// open is Open with the writer's PRAGMA synchronous (benchmarks compare).
func open(path, synchronous string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		// The driver reads everything after '?' as connection parameters.
		return nil, fmt.Errorf("sqlite: open %q: want a file path without '?'", path)
	}
	memory := path == ":memory:"
	if !memory {
		if err := privateFiles(path); err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}

	w, err := sql.Open("sqlite", path+"?"+writerParams+"&_synchronous="+synchronous)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0) // an in-memory database lives as long as its connection
	w.SetConnMaxIdleTime(0)
	// Connecting now applies WAL mode before any reader opens the file.
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if memory {
		// Another connection would see another, empty database.
		return newStore(w, w), nil
	}

	r, err := sql.Open("sqlite", path+"?"+readerParams)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	return newStore(w, r), nil
}

// privateFiles creates the database's folder (0700) and file (0600) unless
// they exist, and takes group and other access off the file and its WAL and
// shared-memory files: they hold password hashes. SQLite creates the -wal
// and -shm files with the database file's mode, so a new node's are 0600
// too. An existing folder is left as it is: it may be one the operator
// shares with other files (the files in it are private anyway).
func privateFiles(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(name, fi.Mode().Perm()&0o700); err != nil {
				return err
			}
		}
	}
	return nil
}

func newStore(w, r *sql.DB) *Store {
	s := &Store{w: w, r: r}
	s.appends = sqlcore.NewAppendQueue(s.commitAppends)
	s.acks = sqlcore.NewAckQueue("sqlite", 0, s.writeAcks)
	return s
}

// Close waits for the appends already queued to be committed, refusing new
// ones, and closes the database.
func (s *Store) Close() error {
	s.appends.Close()
	s.acks.Close()
	s.stmts.close()
	if s.r == s.w {
		return s.w.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// write runs fn in a transaction on the writer connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Times are stored as microseconds since the epoch, UTC: PostgreSQL's
// precision, so both stores return the same instants.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// orEmpty keeps a nil key from becoming NULL in a NOT NULL column.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// notFound wraps switchboard.ErrNotFound when err says no row matched.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.ErrNotFound
	}
	return err
}

// Register adds the store's metrics to reg (the node's registry): its
// group-commit queues' batch sizes and commit latency.
func (s *Store) Register(reg prometheus.Registerer) error {
	return sqlcore.RegisterQueues(reg, []*sqlcore.AppendQueue{s.appends}, s.acks)
}
