package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestRun starts the command's cluster with --redis-cluster (a Redis
// Cluster for the bus, the limits and the session cache; one Redis is
// TestClusterThroughNGINX's), chats through its URL (NGINX), sees the
// shared state in the cluster used and a history page read from the
// replica, and stops it.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, w := io.Pipe()
	stop, exited := make(chan struct{}), make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		exited <- run([]string{"--nodes", "2", "--redis-cluster", "--", "--argon2-time", "1", "--argon2-memory", "64"}, w, &stderr, stop)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	var url string
	var admins []string
	redisCluster := false
	for lines.Scan() {
		line := lines.Text()
		if u, ok := strings.CutPrefix(line, "switchboard cluster: "); ok {
			url = u
		}
		if m := regexp.MustCompile(`metrics (\S+)/metrics`).FindStringSubmatch(line); m != nil {
			admins = append(admins, m[1])
		}
		if strings.Contains(line, "(--redis-cluster") {
			redisCluster = true
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	if url == "" || len(admins) != 2 || !redisCluster {
		close(stop)
		t.Fatalf("no URL, not 2 nodes or no Redis Cluster printed (exit %d):\n%s", <-exited, stderr.String())
	}

	login := func(name string) *client.Session { return testenv.SignupLogin(ctx, t, url, name) }
	alice, bob := login("alice"), login("bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := client.Connect(ctx, bob, client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	<-ws.Synced()
	sent, err := alice.SendHTTP(ctx, client.SendRequest{ID: "m-1", Conversation: conv, Ciphertexts: map[string][]byte{bob.DeviceID: []byte("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ws.Messages():
		if m.Seq != sent.Seq {
			t.Fatalf("received seq %d, want %d", m.Seq, sent.Seq)
		}
	case <-ctx.Done():
		t.Fatal("the message never arrived")
	}
	// Logins and sends took their limits, and lookups their cached
	// sessions, in the Redis Cluster.
	if calls := testenv.Metric(t, admins[0], "switchboard_redis_state_calls_total") +
		testenv.Metric(t, admins[1], "switchboard_redis_state_calls_total"); calls == 0 {
		t.Fatal("no node called the Redis Cluster for limits or sessions")
	}
	// History pages go to the replica once it has the message.
	deadline := time.Now().Add(time.Minute)
	for replicaQueries(t, admins) == 0 {
		if _, err := bob.Messages(ctx, conv, 0, 10); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no node read history from the replica")
		}
		time.Sleep(100 * time.Millisecond)
	}

	close(stop)
	if code := <-exited; code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("NGINX still answers after the command returned")
	}
}

func replicaQueries(t *testing.T, admins []string) float64 {
	var sum float64
	for _, a := range admins {
		sum += testenv.Metric(t, a, `switchboard_db_queries_total{pool="replica-0"}`)
	}
	return sum
}
