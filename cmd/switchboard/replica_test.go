package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestHistoryFromReplica runs a node on a PostgreSQL primary with one
// streaming replica (--db-replica): history pages are read from the replica
// while it is healthy (switchboard_db_queries_total{pool="replica-0"}) and
// from the primary while it is paused past --replica-max-lag or stopped,
// with no failed request, and a message just sent is in the next page.
func TestHistoryFromReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pair, primary, replica := testenv.PostgresWithReplica(t)
	m := NewMain()
	logs := &lockedBuffer{}
	m.Stderr = logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", logs.String())
		}
	})
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--db", primary, "--db-replica", replica,
		"--replica-max-lag", "1s", "--argon2-memory", "64", "--argon2-time", "1"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { m.Close() })

	login := func(name string) *client.Session { return testenv.SignupLogin(ctx, t, m.URL(), name) }
	alice, bob := login("alice"), login("bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	sends := 0
	// sendAndRead sends a message from alice and reads bob's history at
	// once: it must end with that message, whichever pool answers.
	sendAndRead := func(t *testing.T) {
		t.Helper()
		sends++
		sent, err := alice.SendHTTP(ctx, client.SendRequest{ID: fmt.Sprint("m-", sends), Conversation: conv,
			Ciphertexts: map[string][]byte{bob.DeviceID: []byte("hi")}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := bob.Messages(ctx, conv, 0, 100)
		if err != nil {
			t.Fatalf("history read failed: %v", err)
		}
		if len(got) != sends || got[len(got)-1].Seq != sent.Seq {
			t.Fatalf("history right after send %d has %d messages, want it to end with seq %d", sends, len(got), sent.Seq)
		}
	}
	// replicaReads is how many statements the replica ran for one history read.
	replicaReads := func(t *testing.T) float64 {
		t.Helper()
		before := testenv.Metric(t, m.AdminURL(), `switchboard_db_queries_total{pool="replica-0"}`)
		if _, err := bob.Messages(ctx, conv, 0, 100); err != nil {
			t.Fatalf("history read failed: %v", err)
		}
		return testenv.Metric(t, m.AdminURL(), `switchboard_db_queries_total{pool="replica-0"}`) - before
	}
	// replicaServes reads history until the replica answers a read: a
	// healthy replica may still be behind (within the lag bound), and a
	// read it fails (a table not replayed yet, a connection from before a
	// restart) goes to the primary and leaves it out until its next check.
	replicaServes := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for replicaReads(t) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no history read ran on the healthy replica in 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitHealthy := func(t *testing.T, want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for testenv.Metric(t, m.AdminURL(), `switchboard_db_replica_healthy{pool="replica-0"}`) != want {
			if time.Now().After(deadline) {
				t.Fatalf("switchboard_db_replica_healthy never became %v", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("a healthy replica serves history", func(t *testing.T) {
		waitHealthy(t, 1)
		sendAndRead(t)
		replicaServes(t)
	})
	t.Run("a replica paused past the lag bound serves none, and no read fails", func(t *testing.T) {
		if err := pair.PauseReplay(); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		sendAndRead(t)
		waitHealthy(t, 0)
		t.Logf("paused replica left out %v after the first write it missed (--replica-max-lag 1s)", time.Since(paused).Round(time.Millisecond))
		sendAndRead(t)
		if n := replicaReads(t); n != 0 {
			t.Fatalf("a history read ran %v statements on a lagging replica", n)
		}
		if err := pair.ResumeReplay(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, 1)
		replicaServes(t)
	})
	t.Run("a stopped replica serves none, and no read fails", func(t *testing.T) {
		if err := pair.StopReplica(); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		sendAndRead(t)
		waitHealthy(t, 0)
		t.Logf("stopped replica left out %v after it stopped", time.Since(stopped).Round(time.Millisecond))
		sendAndRead(t)
		if n := replicaReads(t); n != 0 {
			t.Fatalf("a history read ran %v statements on a stopped replica", n)
		}
		if err := pair.StartReplica(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, 1)
		sendAndRead(t)
		replicaServes(t)
	})
}

// lockedBuffer is a node's log, written by its goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
