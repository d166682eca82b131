package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// startNodes runs n nodes on one database and one Redis, with extra flags.
func startNodes(t *testing.T, ctx context.Context, n int, db, redis string, extra ...string) []*Main {
	t.Helper()
	return startNodesOn(t, ctx, n, db, []string{"--redis", redis}, extra...)
}

// startNodesOn runs n nodes on one database and the Redis that redisArgs
// name (--redis or --redis-cluster, from eachRedis), with extra flags.
func startNodesOn(t *testing.T, ctx context.Context, n int, db string, redisArgs []string, extra ...string) []*Main {
	t.Helper()
	var nodes []*Main
	for range n {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		args := append([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--db", db}, redisArgs...)
		args = append(append(args, "--argon2-memory", "64", "--argon2-time", "1"), extra...)
		if err := m.ParseFlags(args, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		nodes = append(nodes, m)
	}
	return nodes
}

// eachRedis runs test on a private Redis and on a private 3-primary Redis
// Cluster, as subtests, with the node flags naming each (--redis URL,
// --redis-cluster HOST:PORT,...): the bus, the limits and the session cache
// go on it.
func eachRedis(t *testing.T, test func(t *testing.T, redisArgs []string)) {
	for _, r := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"on one Redis", func(t *testing.T) []string { return []string{"--redis", testenv.Redis(t).URL()} }},
		{"on a Redis Cluster", func(t *testing.T) []string {
			return []string{"--redis-cluster", strings.Join(testenv.NewRedisCluster(t).Addrs(), ",")}
		}},
	} {
		t.Run(r.name, func(t *testing.T) { test(t, r.args(t)) })
	}
}

// TestLimitsCountAcrossNodes: login attempts to one account spread over two
// nodes sharing Redis (or a Redis Cluster) are refused (429) at the same
// count as on one node. The two nodes are reached through the shipped NGINX,
// whose API upstream spreads requests over them (each node's request
// counter shows it took some).
func TestLimitsCountAcrossNodes(t *testing.T) { eachRedis(t, limitsCountAcrossNodes) }

func limitsCountAcrossNodes(t *testing.T, redisArgs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// refusedAt makes wrong-password logins to one account through base and
	// returns the number of the first refused with 429.
	refusedAt := func(t *testing.T, base, user string) int {
		t.Helper()
		c, err := client.New(base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateAccount(ctx, user, "password-"+user); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 20; i++ {
			_, err := c.Login(ctx, user, "wrong password", client.DeviceInfo{Name: "x", KEM: "x25519",
				PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("login %d: %v", i, err)
			}
			if e.Status == http.StatusTooManyRequests {
				return i
			}
		}
		return 0
	}
	flags := []string{"--login-rate-account", "5/1h"}
	one := refusedAt(t, startNodesOn(t, ctx, 1, testenv.Postgres(t), redisArgs, flags...)[0].URL(), "alice")
	nodes := startNodesOn(t, ctx, 2, testenv.Postgres(t), redisArgs, flags...)
	requests := func() (n []float64) {
		for _, m := range nodes {
			n = append(n, testenv.Metric(t, m.AdminURL(), `switchboard_requests_total{via="http"}`))
		}
		return n
	}
	before := requests()
	two := refusedAt(t, testenv.NGINX(t, []string{nodes[0].URL(), nodes[1].URL()}).URL(), "bob")
	after := requests()
	for i := range nodes {
		if after[i] <= before[i] {
			t.Fatalf("node %d took none of the requests through NGINX (%v before, %v after)", i+1, before, after)
		}
	}
	if one != 6 || two != one {
		t.Fatalf("the first 429 came at attempt %d on one node and %d over two; want 6 on both", one, two)
	}
}

// TestRevocationAcrossNodes: a device revoked through one node has its
// socket, opened through NGINX onto the other node, closed with 4001 within
// 1 s, and its token, cached in Redis (or the Redis Cluster) by both nodes,
// then fails on both.
func TestRevocationAcrossNodes(t *testing.T) { eachRedis(t, revocationAcrossNodes) }

func revocationAcrossNodes(t *testing.T, redisArgs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := startNodesOn(t, ctx, 2, testenv.Postgres(t), redisArgs)
	c1, _ := client.New(nodes[0].URL())
	c2, _ := client.New(nodes[1].URL())
	if _, err := c1.CreateAccount(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	login := func(c *client.Client, name string) *client.Session {
		s, err := c.Login(ctx, "alice", "password-alice", client.DeviceInfo{Name: name, KEM: "x25519",
			PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	laptop, phone := login(c1, "laptop"), login(c2, "phone")
	phoneOn := []*client.Session{c1.Resume(*phone), c2.Resume(*phone)}
	// Both nodes look the phone's token up (and cache it) before the revocation.
	for i, s := range phoneOn {
		for range 2 {
			if _, err := s.Devices(ctx, phone.UserID); err != nil {
				t.Fatalf("node %d before the revocation: %v", i+1, err)
			}
		}
	}
	if hits := testenv.Metric(t, nodes[1].AdminURL(), "switchboard_session_cache_hits_total"); hits == 0 {
		t.Fatal("node 2 answered no token lookup from the session cache")
	}
	// The phone's socket goes through the shipped NGINX, which puts it on
	// one node by its device id; the revocation goes to the other node.
	proxy, _ := client.New(testenv.NGINX(t, []string{nodes[0].URL(), nodes[1].URL()}).URL())
	ws, err := client.Connect(ctx, proxy.Resume(*phone), client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	select {
	case <-ws.Synced():
	case <-ctx.Done():
		t.Fatal("no synced")
	}
	on := -1
	for on < 0 && ctx.Err() == nil {
		for i, n := range nodes {
			if testenv.Metric(t, n.AdminURL(), "switchboard_ws_connections") == 1 {
				on = i
			}
		}
		if on < 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	revoker := []*client.Client{c1, c2}[1-on].Resume(*laptop)

	closedAt := make(chan time.Time, 1)
	go func() {
		select {
		case <-ws.Done():
			closedAt <- time.Now()
		case <-ctx.Done():
		}
	}()
	revokedAt := time.Now() // the revocation's request starts
	if err := revoker.RevokeDevice(ctx, phone.DeviceID); err != nil {
		t.Fatal(err)
	}
	for i, s := range phoneOn {
		_, err := s.Devices(ctx, phone.UserID)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			t.Errorf("node %d right after the revocation: %v, want 401", i+1, err)
		}
	}
	select {
	case at := <-closedAt:
		var ce *client.CloseError
		if !errors.As(ws.Err(), &ce) || ce.Code != 4001 {
			t.Fatalf("the phone's socket on node %d ended with %v, want close 4001", on+1, ws.Err())
		}
		// The bound: closed within 1 s of the revocation.
		d := at.Sub(revokedAt)
		if d > time.Second {
			t.Fatalf("the phone's socket on node %d closed %v after the revocation was sent through node %d, want within 1 s", on+1, d, 2-on)
		}
		t.Logf("the phone's socket on node %d closed %v after the revocation was sent through node %d", on+1, d, 2-on)
	case <-ctx.Done():
		t.Fatalf("the phone's socket on node %d was not closed", on+1)
	}
}
