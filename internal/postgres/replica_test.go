package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/postgres"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestReadReplicas runs one store on a primary with a streaming replica:
// reads marked MayLag go to the replica while it is healthy and to the
// primary while it is paused past the lag bound or stopped, and never fail
// or miss what was just written.
func TestReadReplicas(t *testing.T) {
	ctx := context.Background()
	lagging := switchboard.MayLag(ctx)
	pair, primaryURL, replicaURL := testenv.PostgresWithReplica(t)
	s, err := postgres.OpenConfig(ctx, primaryURL, postgres.Config{Replicas: []string{replicaURL}, MaxLag: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	migrate(t, s)

	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, u := range []string{"alice", "bob"} {
		if err := s.CreateUser(ctx, &switchboard.User{ID: "u-" + u, Username: u, PasswordHash: "h", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		d := &switchboard.Device{ID: "d-" + u, UserID: "u-" + u, Name: "phone", KEM: "x25519", CreatedAt: now}
		if err := s.CreateDevice(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	conv := &switchboard.Conversation{ID: "c-1", Kind: switchboard.KindDirect, CreatedBy: "u-alice", CreatedAt: now, Members: []string{"u-alice", "u-bob"}}
	if err := s.CreateConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	n := 0
	send := func(t *testing.T) int64 {
		t.Helper()
		n++
		m, _, err := s.AppendMessage(ctx, &switchboard.Message{ConversationID: "c-1", SenderUserID: "u-alice", SenderDeviceID: "d-alice",
			ClientID: fmt.Sprint("m", n), SentAt: now, Ciphertexts: map[string][]byte{"d-bob": []byte("hi")}})
		if err != nil {
			t.Fatal(err)
		}
		return m.Seq
	}
	// history reads bob's messages as a lagging read and checks the last
	// one is seq. It returns who answered: replica-0 (with the primary's
	// head check of a short page), primary, or both (the replica was behind).
	history := func(t *testing.T, seq int64) string {
		t.Helper()
		before := s.PoolQueries()
		ds, err := s.Messages(lagging, "d-bob", "c-1", 0, 100)
		if err != nil {
			t.Fatalf("history read failed: %v", err)
		}
		if len(ds) == 0 || ds[len(ds)-1].Seq != seq {
			t.Fatalf("history read misses seq %d: %+v", seq, ds)
		}
		after := s.PoolQueries()
		switch {
		case after["replica-0"] > before["replica-0"] && after["primary"] == before["primary"]+1:
			return "replica-0" // and the primary's head check
		case after["replica-0"] == before["replica-0"]:
			return "primary"
		}
		return "both"
	}
	waitHealthy := func(t *testing.T, want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for s.ReplicaHealthy(0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("replica healthy = %v after 30 s, want %v", !want, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// replicaServes reads history until the replica alone answers: a healthy
	// replica may be behind within the lag bound (the page then comes from
	// the primary too), and one that fails a read is left out until its next
	// check.
	replicaServes := func(t *testing.T, seq int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for history(t, seq) != "replica-0" {
			if time.Now().After(deadline) {
				t.Fatal("history never read from the replica alone in 30 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("a healthy replica serves history, and a message just sent is in it", func(t *testing.T) {
		waitHealthy(t, true)
		replicaServes(t, send(t))
	})

	t.Run("a conversation list and device directory just written read back, and unmarked reads stay on the primary", func(t *testing.T) {
		before := s.PoolQueries()
		if _, err := s.Conversations(ctx, "u-bob", "", 10); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActiveDevices(ctx, "u-bob"); err != nil {
			t.Fatal(err)
		}
		if got := s.PoolQueries()["replica-0"]; got != before["replica-0"] {
			t.Fatalf("unmarked reads ran %d statements on the replica", got-before["replica-0"])
		}
		c2 := &switchboard.Conversation{ID: "c-2", Kind: switchboard.KindGroup, CreatedBy: "u-bob", CreatedAt: now, Members: []string{"u-alice", "u-bob"}}
		if err := s.CreateConversation(ctx, c2); err != nil {
			t.Fatal(err)
		}
		cs, err := s.Conversations(lagging, "u-bob", "", 10)
		if err != nil || len(cs) != 2 {
			t.Fatalf("conversation list right after a creation: %d conversations, %v; want 2", len(cs), err)
		}
		d2 := &switchboard.Device{ID: "d-bob-2", UserID: "u-bob", Name: "laptop", KEM: "x25519", CreatedAt: now}
		if err := s.CreateDevice(ctx, d2, nil); err != nil {
			t.Fatal(err)
		}
		ds, err := s.ActiveDevices(lagging, "u-bob")
		if err != nil || len(ds) != 2 {
			t.Fatalf("device directory right after a login: %d devices, %v; want 2", len(ds), err)
		}
	})

	t.Run("a replica paused past the lag bound is left for the primary, and used again once resumed", func(t *testing.T) {
		if err := pair.PauseReplay(); err != nil {
			t.Fatal(err)
		}
		seq := send(t)
		if pool := history(t, seq); pool == "replica-0" {
			t.Fatal("a paused replica answered a page missing the message just sent")
		}
		waitHealthy(t, false)
		seq = send(t)
		if pool := history(t, seq); pool != "primary" {
			t.Fatalf("history read from %s with the replica lagging, want the primary", pool)
		}
		if err := pair.ResumeReplay(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, true)
		replicaServes(t, seq)
	})

	t.Run("a stopped replica fails no read, and is used again once back", func(t *testing.T) {
		if err := pair.StopReplica(); err != nil {
			t.Fatal(err)
		}
		seq := send(t)
		history(t, seq) // may try the replica once, then the primary
		waitHealthy(t, false)
		if pool := history(t, seq); pool != "primary" {
			t.Fatalf("history read from %s with the replica down, want the primary", pool)
		}
		if err := pair.StartReplica(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, true)
		replicaServes(t, seq)
	})
}

func TestRecordsEnd(t *testing.T) {
	const block, segment = 8192, 16 << 20
	for _, tc := range []struct {
		name      string
		lsn, want int64
	}{
		{"inside a page, the insert position", 3*segment + 5*block + 1000, 3*segment + 5*block + 1000},
		{"past an empty page's header, the page's start", 3*segment + 5*block + 24, 3*segment + 5*block},
		{"past an empty segment's long header, the segment's start", 3*segment + 40, 3 * segment},
		{"40 bytes into a page that is not a segment's first, the insert position", 3*segment + 5*block + 40, 3*segment + 5*block + 40},
		{"24 bytes into a segment's first page (inside its long header: never an insert position), unchanged", 3*segment + 24, 3*segment + 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := postgres.RecordsEnd(tc.lsn, block, segment); got != tc.want {
				t.Fatalf("RecordsEnd(%d) = %d, want %d", tc.lsn, got, tc.want)
			}
		})
	}
}
