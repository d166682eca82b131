package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresPair is a private PostgreSQL primary with one streaming replica
// (pg_basebackup -R, hot standby), each on its own free loopback port in
// its own temp folder. Databases created on the primary appear on the
// replica; the replica refuses writes.
type PostgresPair struct {
	primary, replica *postgresServer
	replicaPort      int
}

// PostgresWithReplica starts a PostgresPair for t, stopped when t ends, and
// returns it with the URLs of one new database on the primary and on the
// replica (which has it once the replica has replayed its creation).
// Like Postgres, t fails when PostgreSQL cannot be had and is skipped with
// SWITCHBOARD_SKIP_POSTGRES=1.
func PostgresWithReplica(t testing.TB) (pair *PostgresPair, primaryURL, replicaURL string) {
	t.Helper()
	return PostgresWithReplicaDB(t, "sbtest_"+randomHex(4))
}

// PostgresWithReplicaDB is PostgresWithReplica with the database's name.
func PostgresWithReplicaDB(t testing.TB, name string) (pair *PostgresPair, primaryURL, replicaURL string) {
	t.Helper()
	if os.Getenv(envSkipPostgres) == "1" {
		t.Skipf("%s=1: skipping a test that needs PostgreSQL", envSkipPostgres)
	}
	pair, err := StartPostgresPair()
	if err != nil {
		t.Fatalf("testenv: this test needs PostgreSQL with a replica, which could not be had: %v\n(set %s=1 to skip)", err, envSkipPostgres)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Logf("testenv: %v", err)
		}
	})
	primaryURL, replicaURL, err = pair.CreateDatabase(name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return pair, primaryURL, replicaURL
}

// StartPostgresPair starts a primary and its replica and waits until the
// replica streams. Close stops both and removes their folders. It needs no
// test (cmd/sbcluster uses it); its servers are children of this process
// and die with it.
func StartPostgresPair() (*PostgresPair, error) {
	primary, err := startPostgres()
	if err != nil {
		return nil, fmt.Errorf("primary: %w", err)
	}
	p := &PostgresPair{primary: primary}
	if err := p.startReplica(); err != nil {
		primary.stop()
		return nil, fmt.Errorf("replica: %w", err)
	}
	return p, nil
}

func (p *PostgresPair) startReplica() error {
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return err
	}
	r := &postgresServer{bin: p.primary.bin, dir: dir, data: filepath.Join(dir, "data"), asUser: p.primary.asUser}
	if r.asUser != "" {
		if err := chownTo(dir, r.asUser); err != nil {
			os.RemoveAll(dir)
			return err
		}
	}
	u, _ := url.Parse(p.primary.url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// -R writes standby.signal and primary_conninfo: the copy starts as a
	// hot standby streaming from the primary.
	if out, err := r.command(ctx, "pg_basebackup", "-h", u.Hostname(), "-p", u.Port(), "-U", "postgres",
		"-D", r.data, "-R", "-X", "stream", "-c", "fast", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		p.replicaPort = FreePort()
		if err = r.run(ctx, p.replicaPort); err == nil {
			break
		}
		if attempt == 2 || ctx.Err() != nil {
			os.RemoveAll(dir)
			return err
		}
	}
	p.replica = r
	return p.waitStreaming(ctx)
}

// waitStreaming waits until the primary lists the replica as streaming.
func (p *PostgresPair) waitStreaming(ctx context.Context) error {
	for {
		var n int
		err := queryOne(ctx, p.primary.url, `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`, &n)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica not streaming: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CreateDatabase creates a database on the primary and waits until the
// replica has it; it returns the database's URL on each.
func (p *PostgresPair) CreateDatabase(name string) (primaryURL, replicaURL string, err error) {
	if err := adminExec(p.primary.url, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	primaryURL, replicaURL = withDatabase(p.primary.url, name), withDatabase(p.replica.url, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var one int
		if err = queryOne(ctx, replicaURL, "SELECT 1", &one); err == nil {
			return primaryURL, replicaURL, nil
		}
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("database %s not on the replica: %w", name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PauseReplay pauses the replica's replay (pg_wal_replay_pause): it still
// answers, with data that falls behind as the primary commits.
//
// It returns once replay has paused, not when the pause is requested: a
// replica waiting for WAL pauses only at the next record, and one that
// applies a record meanwhile (the write a test makes right after) would
// not be paused for it. So it writes a record on the primary (a
// checkpoint) until the replica says it is paused, for 30 s at most.
func (p *PostgresPair) PauseReplay() error {
	if err := adminExec(p.replica.url, "SELECT pg_wal_replay_pause()"); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		if err := queryOne(context.Background(), p.replica.url, "SELECT pg_get_wal_replay_pause_state()", &state); err != nil {
			return err
		}
		if state == "paused" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica replay still %q 30 s after the pause", state)
		}
		if err := adminExec(p.primary.url, "CHECKPOINT"); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ResumeReplay resumes the replica's replay.
func (p *PostgresPair) ResumeReplay() error {
	return adminExec(p.replica.url, "SELECT pg_wal_replay_resume()")
}

// StopReplica stops the replica (a fast shutdown: its clients are cut off).
func (p *PostgresPair) StopReplica() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := p.replica
	if out, err := r.command(ctx, "pg_ctl", "-D", r.data, "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop replica: %w\n%s", err, out)
	}
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.kill()
	}
	return nil
}

// StartReplica starts the stopped replica again on its port and waits until
// it streams.
func (p *PostgresPair) StartReplica() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.replica.run(ctx, p.replicaPort); err != nil {
		return err
	}
	return p.waitStreaming(ctx)
}

// PrimaryPort and ReplicaPort are the servers' loopback ports.
func (p *PostgresPair) PrimaryPort() int {
	u, _ := url.Parse(p.primary.url)
	port, _ := strconv.Atoi(u.Port())
	return port
}

// ReplicaPort is the replica's loopback port.
func (p *PostgresPair) ReplicaPort() int { return p.replicaPort }

// Close stops both servers and removes their folders.
func (p *PostgresPair) Close() error {
	var errs []error
	if p.replica != nil {
		errs = append(errs, p.replica.stop())
	}
	errs = append(errs, p.primary.stop())
	return errors.Join(errs...)
}

// queryOne runs sql on its own connection and scans its one value.
func queryOne(ctx context.Context, connURL, sql string, dest any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest)
}
