package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	envPostgresURL  = "SWITCHBOARD_TEST_POSTGRES"
	envSkipPostgres = "SWITCHBOARD_SKIP_POSTGRES"
	envPostgresSync = "SWITCHBOARD_TEST_PG_FSYNC"
)

// durablePostgres reports whether the private server must be as durable as
// a production one (fsync, synchronous_commit and full_page_writes on, the
// defaults), for benchmarks of commits acknowledged after fsync.
func durablePostgres() bool { return os.Getenv(envPostgresSync) == "1" }

var (
	pgMu     sync.Mutex
	pgServer *postgresServer // the private server, nil until started
	pgAdmin  string          // URL of a database to run CREATE DATABASE from
	pgErr    error           // why the server could not be had; sticky
	pgTried  bool

	// dbSeq and dbRunID make database names unique within this binary and,
	// on a shared server, across binaries and machines.
	dbSeq   atomic.Int64
	dbRunID = randomHex(4)
)

// Postgres returns the URL of a new, empty database for t, dropped when t ends.
//
// The database lives on a private PostgreSQL server that the first call
// starts (once per test binary, stopped by Main), or on the server named by
// SWITCHBOARD_TEST_POSTGRES. When neither can be had, t fails; with
// SWITCHBOARD_SKIP_POSTGRES=1 it is skipped instead.
func Postgres(t testing.TB) string {
	t.Helper()
	if os.Getenv(envSkipPostgres) == "1" {
		t.Skipf("%s=1: skipping a test that needs PostgreSQL", envSkipPostgres)
	}
	admin, err := postgresAdminURL()
	if err != nil {
		t.Fatalf("testenv: this test needs PostgreSQL, which could not be had: %v\n"+
			"(set %s=postgres://user@host:port/db to use a running server, or %s=1 to skip)",
			err, envPostgresURL, envSkipPostgres)
	}

	name := fmt.Sprintf("sbtest_%s_%d", dbRunID, dbSeq.Add(1))
	if err := adminExec(admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE: a pool the test forgot to close must not keep the database alive.
		err := adminExec(admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// postgresAdminURL starts the private server on first use, or checks the one
// named in the environment. A failure is remembered: retrying a server that
// did not start would only make every test wait again.
func postgresAdminURL() (string, error) {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgTried {
		return pgAdmin, pgErr
	}
	pgTried = true
	if u := os.Getenv(envPostgresURL); u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
			pgErr = fmt.Errorf("%s is not a postgres:// URL", envPostgresURL)
			return "", pgErr
		}
		if err := adminExec(u, "SELECT 1"); err != nil {
			pgErr = fmt.Errorf("server in %s: %w", envPostgresURL, err)
			return "", pgErr
		}
		pgAdmin = u
		return pgAdmin, nil
	}
	if !mainRunning.Load() {
		pgErr = fmt.Errorf("the package's TestMain must call os.Exit(testenv.Main(m)) " +
			"so that the private PostgreSQL server is stopped after its tests")
		return "", pgErr
	}
	pgServer, pgErr = startPostgres()
	if pgErr == nil {
		pgAdmin = pgServer.url
	}
	return pgAdmin, pgErr
}

// stopPostgres stops the private server, if one was started.
func stopPostgres() error {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgServer == nil {
		return nil
	}
	err := pgServer.stop()
	pgServer = nil
	return err
}

// adminExec runs one statement on its own short-lived connection.
// CREATE and DROP DATABASE cannot run inside a transaction, so no pool.
func adminExec(connURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns connURL pointing at database name instead.
func withDatabase(connURL, name string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		// Checked when the URL was first accepted.
		panic(err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// RestartPostgres stops the private PostgreSQL server (a fast shutdown:
// clients are disconnected, nothing committed is lost), waits down, and
// starts it again on the same port with the same data. It fails t when the
// server is one named by SWITCHBOARD_TEST_POSTGRES (not ours to restart).
func RestartPostgres(t testing.TB, down time.Duration) {
	t.Helper()
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgServer == nil {
		t.Fatalf("testenv: no private PostgreSQL server to restart (%s set, or none started)", envPostgresURL)
	}
	if err := pgServer.restart(down); err != nil {
		t.Fatalf("testenv: restart postgres: %v", err)
	}
}
