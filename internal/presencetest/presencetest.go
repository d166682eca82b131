// Package presencetest is the conformance suite of switchboard.Presence:
// one set of tests that the in-process presence (internal/inmem) and the
// Redis one (internal/redisbus) both run, so that who counts as online
// cannot differ between a node alone and a cluster.
//
//	func TestPresenceConformance(t *testing.T) {
//		presencetest.Run(t, func(t *testing.T, ttl time.Duration) presencetest.Backend { ... })
//	}
package presencetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// Backend is one presence implementation under test, fresh for each case.
type Backend struct {
	// Node returns the Presence of the node named name; the nodes of one
	// Backend share their state, as the nodes on one Redis do. The backend
	// closes them when t ends.
	Node func(t *testing.T, name string) switchboard.Presence
}

// Run runs the suite; newBackend is called once per case with the TTL its
// claims must have (short, so that lapsing can be waited for).
func Run(t *testing.T, newBackend func(t *testing.T, ttl time.Duration) Backend) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"a user never claimed is offline and was never seen", neverSeen},
		{"a claimed user is online on every node until released", claimRelease},
		{"a user claimed by two nodes stays online until both released", twoNodes},
		{"a claim not renewed lapses within the TTL and last_seen is its last heartbeat", lapse},
		{"a heartbeat keeps a claim alive past the TTL", heartbeat},
		{"States answers in the order asked, repeats included", order},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend(t, ttl)) })
	}
}

// ttl is the claims' TTL in the suite: long enough that a heartbeat under
// heavy CPU load still renews in time, short enough to wait for.
const ttl = 2 * time.Second

func states(t *testing.T, p switchboard.Presence, users ...string) []switchboard.PresenceState {
	t.Helper()
	st, err := p.States(context.Background(), users)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != len(users) {
		t.Fatalf("States(%v) gave %d states", users, len(st))
	}
	for i := range st {
		if st[i].UserID != users[i] {
			t.Fatalf("States(%v)[%d] is %q", users, i, st[i].UserID)
		}
	}
	return st
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var userN int

// user returns a user id no other case uses (the Redis backend may be shared).
func user() string {
	userN++
	return fmt.Sprintf("usr_presencetest_%d_%d", time.Now().UnixNano(), userN)
}

func neverSeen(t *testing.T, b Backend) {
	st := states(t, b.Node(t, "a"), user())
	if st[0].Online || !st[0].LastSeen.IsZero() {
		t.Fatalf("got %+v, want offline and never seen", st[0])
	}
}

func claimRelease(t *testing.T, b Backend) {
	a, other := b.Node(t, "a"), b.Node(t, "b")
	u := user()
	ctx := context.Background()
	must(t, a.Claim(ctx, []string{u}))
	for _, p := range []switchboard.Presence{a, other} {
		if st := states(t, p, u); !st[0].Online || !st[0].LastSeen.IsZero() {
			t.Fatalf("after Claim got %+v, want online without last_seen", st[0])
		}
	}
	at := time.Now().Truncate(time.Millisecond)
	must(t, a.Release(ctx, u, at))
	for _, p := range []switchboard.Presence{a, other} {
		st := states(t, p, u)
		if st[0].Online || !st[0].LastSeen.Equal(at) {
			t.Fatalf("after Release(%v) got %+v, want offline, last seen then", at, st[0])
		}
	}
}

func twoNodes(t *testing.T, b Backend) {
	a, c := b.Node(t, "a"), b.Node(t, "b")
	u := user()
	ctx := context.Background()
	must(t, a.Claim(ctx, []string{u}))
	must(t, c.Claim(ctx, []string{u}))
	must(t, a.Release(ctx, u, time.Now()))
	if st := states(t, a, u); !st[0].Online {
		t.Fatalf("released by one node of two: got %+v, want online", st[0])
	}
	must(t, c.Release(ctx, u, time.Now()))
	if st := states(t, a, u); st[0].Online {
		t.Fatalf("released by both nodes: got %+v, want offline", st[0])
	}
}

func lapse(t *testing.T, b Backend) {
	a, other := b.Node(t, "a"), b.Node(t, "b")
	u := user()
	before := time.Now().Add(-time.Millisecond)
	must(t, a.Claim(context.Background(), []string{u}))
	after := time.Now().Add(time.Millisecond)
	deadline := time.Now().Add(ttl + 30*time.Second)
	for {
		st := states(t, other, u)
		if !st[0].Online {
			if st[0].LastSeen.Before(before) || st[0].LastSeen.After(after) {
				t.Fatalf("lapsed claim: last_seen %v, want its heartbeat, between %v and %v", st[0].LastSeen, before, after)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a claim never renewed is still online after %v", ttl+30*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func heartbeat(t *testing.T, b Backend) {
	a := b.Node(t, "a")
	u := user()
	ctx := context.Background()
	end := time.Now().Add(2 * ttl)
	must(t, a.Claim(ctx, []string{u}))
	for time.Now().Before(end) {
		time.Sleep(ttl / 8)
		must(t, a.Claim(ctx, []string{u}))
		if st := states(t, a, u); !st[0].Online {
			t.Fatalf("a claim renewed every %v went offline: %+v", ttl/8, st[0])
		}
	}
}

func order(t *testing.T, b Backend) {
	a := b.Node(t, "a")
	u1, u2 := user(), user()
	must(t, a.Claim(context.Background(), []string{u2}))
	st := states(t, a, u1, u2, u1)
	if st[0].Online || !st[1].Online || st[2].Online {
		t.Fatalf("got %+v, want offline, online, offline", st)
	}
}
