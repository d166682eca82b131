package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestClusterThroughNGINX runs the cluster sbcluster starts, with two
// nodes, and checks through NGINX what must hold across nodes: login
// attempts to one account, spread by NGINX over both nodes, get 429 at the
// same attempt as on one node; and a device revoked through the node that
// does not hold its socket has that socket closed with 4001 and its token
// refused on every node.
func TestClusterThroughNGINX(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testenv.StartCluster(t, testenv.ClusterConfig{Nodes: 2,
		NodeArgs: []string{"--argon2-time", "1", "--argon2-memory", "64", "--login-rate-account", "5/1h"}})
	device := client.DeviceInfo{Name: "phone", KEM: "x25519", PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)}
	api, err := client.New(c.URL())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("login attempts spread over both nodes get 429 at the sixth, as on one node", func(t *testing.T) {
		if _, err := api.CreateAccount(ctx, "mallory", "password-mallory"); err != nil {
			t.Fatal(err)
		}
		before := []float64{testenv.Metric(t, c.Nodes[0].AdminURL(), "switchboard_redis_state_calls_total"),
			testenv.Metric(t, c.Nodes[1].AdminURL(), "switchboard_redis_state_calls_total")}
		refused := 0
		for i := 1; i <= 20 && refused == 0; i++ {
			_, err := api.Login(ctx, "mallory", "wrong password", device)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("login %d: %v", i, err)
			}
			if e.Status == http.StatusTooManyRequests {
				refused = i
			}
		}
		if refused != 6 {
			t.Fatalf("first 429 at attempt %d, want 6", refused)
		}
		for i, n := range c.Nodes {
			if testenv.Metric(t, n.AdminURL(), "switchboard_redis_state_calls_total") == before[i] {
				t.Errorf("node %d decided no login: NGINX did not spread them", i+1)
			}
		}
	})

	t.Run("a revocation through one node closes the socket on the other and the token fails everywhere", func(t *testing.T) {
		if _, err := api.CreateAccount(ctx, "alice", "password-alice"); err != nil {
			t.Fatal(err)
		}
		laptop, err := api.Login(ctx, "alice", "password-alice", device)
		if err != nil {
			t.Fatal(err)
		}
		phone, err := api.Login(ctx, "alice", "password-alice", device)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := client.Connect(ctx, phone, client.ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		<-ws.Synced()
		holder := -1
		for i, n := range c.Nodes {
			if testenv.Metric(t, n.AdminURL(), "switchboard_ws_connections") == 1 {
				holder = i
			}
		}
		if holder < 0 {
			t.Fatal("no node holds the phone's socket")
		}
		other, _ := client.New(c.Nodes[1-holder].URL())
		start := time.Now()
		if err := other.Resume(*laptop).RevokeDevice(ctx, phone.DeviceID); err != nil {
			t.Fatal(err)
		}
		revoked := time.Since(start)
		for _, url := range []string{c.URL(), c.Nodes[0].URL(), c.Nodes[1].URL()} {
			cl, _ := client.New(url)
			_, err := cl.Resume(*phone).Devices(ctx, phone.UserID)
			var e *client.Error
			if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
				t.Errorf("the phone's token at %s right after the revocation: %v, want 401", url, err)
			}
		}
		select {
		case <-ws.Done():
			var ce *client.CloseError
			if !errors.As(ws.Err(), &ce) || ce.Code != 4001 {
				t.Fatalf("the phone's socket ended with %v, want close 4001", ws.Err())
			}
			t.Logf("revocation answered in %v; socket on the other node closed %v after the request began", revoked, time.Since(start))
		case <-ctx.Done():
			t.Fatal("the phone's socket was not closed")
		}
	})
}
