package redisstate_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/redisstate"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// open returns a State on the Redis of c, as one node of a cluster.
func open(t testing.TB, c redisstate.Config) *redisstate.State {
	t.Helper()
	s, err := redisstate.OpenConfig(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eachRedis runs test on a private Redis and on a private 3-primary Redis
// Cluster, as subtests: every case holds on both.
func eachRedis(t *testing.T, test func(t *testing.T, c redisstate.Config)) {
	t.Run("on one Redis", func(t *testing.T) {
		test(t, redisstate.Config{URL: testenv.Redis(t).URL()})
	})
	t.Run("on a Redis Cluster", func(t *testing.T) {
		test(t, redisstate.Config{Cluster: testenv.NewRedisCluster(t).Addrs()})
	})
}

func TestOpenCluster(t *testing.T) {
	t.Run("a single Redis given as a cluster's seed is refused", func(t *testing.T) {
		addr := testenv.Redis(t).Addr
		if s, err := redisstate.OpenConfig(context.Background(), redisstate.Config{Cluster: []string{addr}}); err == nil {
			s.Close()
			t.Fatalf("OpenConfig on a single Redis %s as a cluster: no error", addr)
		}
	})
}

func TestTake(t *testing.T) { eachRedis(t, testTake) }

func testTake(t *testing.T, c redisstate.Config) {
	ctx := context.Background()
	a, b := open(t, c), open(t, c)
	defer a.Close()
	defer b.Close()

	t.Run("two nodes spend one bucket: its burst, then a wait of about one unit", func(t *testing.T) {
		// 1 unit a minute: the refill during the test is negligible.
		for i := range 6 {
			node := []*redisstate.State{a, b}[i%2]
			wait, err := node.Take(ctx, "login.account", "alice", 1.0/60, 6, 1)
			if err != nil || wait != 0 {
				t.Fatalf("take %d of a burst of 6: wait %v, %v", i+1, wait, err)
			}
		}
		wait, err := a.Take(ctx, "login.account", "alice", 1.0/60, 6, 1)
		if err != nil || wait < 50*time.Second || wait > 60*time.Second {
			t.Fatalf("take past the burst: wait %v, %v; want about a minute", wait, err)
		}
		// A refused take spends nothing: it is refused again, no longer.
		again, err := b.Take(ctx, "login.account", "alice", 1.0/60, 6, 1)
		if err != nil || again == 0 || again > wait {
			t.Fatalf("second refused take: wait %v after %v, %v", again, wait, err)
		}
	})

	t.Run("limits and keys have their own buckets", func(t *testing.T) {
		for _, k := range [][2]string{{"login.account", "bob"}, {"login.ip", "alice"}} {
			if wait, err := a.Take(ctx, k[0], k[1], 1.0/60, 6, 1); err != nil || wait != 0 {
				t.Fatalf("%v: wait %v, %v", k, wait, err)
			}
		}
	})

	t.Run("a bucket refills at its rate", func(t *testing.T) {
		// 100 a second, burst 2: spent, then free again within a second.
		for range 2 {
			a.Take(ctx, "send.device", "d1", 100, 2, 1)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			wait, err := b.Take(ctx, "send.device", "d1", 100, 2, 1)
			if err != nil {
				t.Fatal(err)
			}
			if wait == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the bucket never refilled")
			}
			time.Sleep(wait)
		}
	})
}

func TestHold(t *testing.T) { eachRedis(t, testHold) }

func testHold(t *testing.T, c redisstate.Config) {
	ctx := context.Background()
	a, b := open(t, c), open(t, c)
	defer a.Close()
	defer b.Close()
	hold := func(t *testing.T, s *redisstate.State, holder string, want bool) {
		t.Helper()
		ok, err := s.Hold(ctx, "conns.user", "alice", holder, 2)
		if err != nil || ok != want {
			t.Fatalf("hold %s: %v, %v; want %v", holder, ok, err, want)
		}
	}

	t.Run("holders on two nodes count together, and a holder already in gets in again", func(t *testing.T) {
		hold(t, a, "phone", true)
		hold(t, b, "laptop", true)
		hold(t, a, "tablet", false)
		hold(t, b, "phone", true) // the phone's socket moved to node b
		if err := a.Release(ctx, "conns.user", "alice", "phone"); err != nil {
			t.Fatal(err)
		}
		hold(t, a, "tablet", false) // the phone is still held on b
		for _, r := range []struct {
			s      *redisstate.State
			holder string
		}{{b, "phone"}, {b, "laptop"}} {
			if err := r.s.Release(ctx, "conns.user", "alice", r.holder); err != nil {
				t.Fatal(err)
			}
		}
		hold(t, a, "tablet", true)
		a.Release(ctx, "conns.user", "alice", "tablet")
	})

	t.Run("the holds of a node that died expire with their lease", func(t *testing.T) {
		dead, err := redisstate.OpenLease(ctx, c, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"d1", "d2"} {
			if ok, err := dead.Hold(ctx, "conns.user", "bob", h, 2); !ok || err != nil {
				t.Fatalf("hold %s: %v, %v", h, ok, err)
			}
		}
		dead.Abandon()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := a.Hold(ctx, "conns.user", "bob", "d3", 2)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a dead node's holds never expired")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("a live node's holds outlast their lease: it renews them", func(t *testing.T) {
		// A lease of 2 s is renewed every 667 ms: a renewal may run over a
		// second late on a loaded machine and still be in time.
		live, err := redisstate.OpenLease(ctx, c, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		for _, h := range []string{"d1", "d2"} {
			if ok, err := live.Hold(ctx, "conns.user", "carol", h, 2); !ok || err != nil {
				t.Fatalf("hold %s: %v, %v", h, ok, err)
			}
		}
		for range 12 { // three leases
			time.Sleep(500 * time.Millisecond)
			if ok, err := a.Hold(ctx, "conns.user", "carol", "d3", 2); ok || err != nil {
				t.Fatalf("a third holder got in while the live node held two: %v, %v", ok, err)
			}
		}
	})
}

func TestSessions(t *testing.T) { eachRedis(t, testSessions) }

func testSessions(t *testing.T, c redisstate.Config) {
	ctx := context.Background()
	a, b := open(t, c), open(t, c)
	defer a.Close()
	defer b.Close()
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	t.Run("a session cached on one node is found on another", func(t *testing.T) {
		if err := a.SessionPut(ctx, []byte("h1"), "u1", "d1", expires); err != nil {
			t.Fatal(err)
		}
		user, dev, exp, ok, err := b.SessionGet(ctx, []byte("h1"))
		if err != nil || !ok || user != "u1" || dev != "d1" || !exp.Equal(expires) {
			t.Fatalf("get: %q %q %v %v %v", user, dev, exp, ok, err)
		}
		if _, _, _, ok, err := b.SessionGet(ctx, []byte("nope")); ok || err != nil {
			t.Fatalf("get of an unknown hash: %v, %v", ok, err)
		}
	})

	t.Run("a revocation on one node drops every token of the device for all", func(t *testing.T) {
		a.SessionPut(ctx, []byte("h2"), "u1", "d2", expires)
		b.SessionPut(ctx, []byte("h3"), "u1", "d2", expires)
		if err := b.SessionRevoke(ctx, "d2"); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"h2", "h3"} {
			if _, _, _, ok, err := a.SessionGet(ctx, []byte(h)); ok || err != nil {
				t.Fatalf("%s after the revocation: cached %v, %v", h, ok, err)
			}
		}
		if _, _, _, ok, _ := a.SessionGet(ctx, []byte("h1")); !ok {
			t.Fatal("another device's token was dropped")
		}
	})

	t.Run("a lookup that read the store before a revocation does not cache after it", func(t *testing.T) {
		if err := a.SessionRevoke(ctx, "d3"); err != nil {
			t.Fatal(err)
		}
		if err := b.SessionPut(ctx, []byte("h4"), "u1", "d3", expires); err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok, err := a.SessionGet(ctx, []byte("h4")); ok || err != nil {
			t.Fatalf("a revoked device's token was cached: %v, %v", ok, err)
		}
	})
}

// BenchmarkTake is one limit decision in Redis (a GCRA script call) on
// loopback, the cost a login, signup, send or conversation creation pays
// per limit in a cluster.
func BenchmarkTake(b *testing.B) {
	s := open(b, redisstate.Config{URL: testenv.Redis(b).URL()})
	defer s.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Take(ctx, "send.device", "d"+string(rune('a'+i%16)), 1e9, 1e9, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionGet is one cached token lookup (a GET) on loopback.
func BenchmarkSessionGet(b *testing.B) {
	s := open(b, redisstate.Config{URL: testenv.Redis(b).URL()})
	defer s.Close()
	ctx := context.Background()
	if err := s.SessionPut(ctx, []byte("h"), "u", "d", time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, _, ok, err := s.SessionGet(ctx, []byte("h")); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
