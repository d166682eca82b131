package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresWithReplica(t *testing.T) {
	ctx := context.Background()
	pair, primaryURL, replicaURL := PostgresWithReplica(t)
	primary, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	count := func(t *testing.T) (int, error) {
		t.Helper()
		var n int
		err := queryOne(ctx, replicaURL, "SELECT count(*) FROM t", &n)
		return n, err
	}
	// waitCount waits until the replica has n rows.
	waitCount := func(t *testing.T, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := count(t)
			if err == nil && got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica has %d rows (%v), want %d", got, err, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := primary.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	t.Run("the replica streams what the primary commits and refuses writes", func(t *testing.T) {
		waitCount(t, 1)
		if err := adminExec(replicaURL, "INSERT INTO t VALUES (2)"); err == nil {
			t.Fatal("the replica took a write")
		}
	})

	t.Run("a paused replica keeps what it had until resumed", func(t *testing.T) {
		if err := pair.PauseReplay(); err != nil {
			t.Fatal(err)
		}
		if _, err := primary.Exec(ctx, "INSERT INTO t VALUES (3)"); err != nil {
			t.Fatal(err)
		}
		var lsn string
		if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
			t.Fatal(err)
		}
		// Once the replica has received the insert, it still shows 1 row.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var received bool
			if err := queryOne(ctx, replicaURL, "SELECT pg_last_wal_receive_lsn() >= '"+lsn+"'::pg_lsn", &received); err != nil {
				t.Fatal(err)
			}
			if received {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the paused replica never received the insert")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n, err := count(t); err != nil || n != 1 {
			t.Fatalf("paused replica: %d rows, %v; want 1", n, err)
		}
		if err := pair.ResumeReplay(); err != nil {
			t.Fatal(err)
		}
		waitCount(t, 2)
	})

	t.Run("a stopped replica starts again on its port and catches up", func(t *testing.T) {
		if err := pair.StopReplica(); err != nil {
			t.Fatal(err)
		}
		if _, err := count(t); err == nil {
			t.Fatal("a stopped replica answered")
		}
		if _, err := primary.Exec(ctx, "INSERT INTO t VALUES (4)"); err != nil {
			t.Fatal(err)
		}
		if err := pair.StartReplica(); err != nil {
			t.Fatal(err)
		}
		waitCount(t, 3)
	})
}
