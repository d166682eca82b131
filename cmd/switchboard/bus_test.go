package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestNodesShareRedis runs two nodes on one PostgreSQL and one Redis: a
// message sent to one node reaches a device connected to the other, both
// ways, through the Redis bus.
func TestNodesShareRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, redis := testenv.Postgres(t), testenv.Redis(t)
	var urls, admins []string
	for range 2 {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--db", db, "--redis", redis.URL(),
			"--argon2-memory", "64", "--argon2-time", "1"}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		urls, admins = append(urls, m.URL()), append(admins, m.AdminURL())
	}

	// alice is on node 0, bob on node 1.
	login := func(url, name string) *client.Session {
		c, err := client.New(url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateAccount(ctx, name, "password-"+name); err != nil {
			t.Fatal(err)
		}
		s, err := c.Login(ctx, name, "password-"+name, client.DeviceInfo{Name: "phone", KEM: "x25519",
			PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, bob := login(urls[0], "alice"), login(urls[1], "bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	connect := func(s *client.Session) *client.Conn {
		c, err := client.Connect(ctx, s, client.ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case <-c.Synced():
		case <-ctx.Done():
			t.Fatal("no synced")
		}
		return c
	}
	aliceWS, bobWS := connect(alice), connect(bob)

	for _, tc := range []struct {
		from, to       *client.Conn
		fromS, toS     *client.Session
		text, fromNode string
	}{
		{aliceWS, bobWS, alice, bob, "hello from node 0", "0"},
		{bobWS, aliceWS, bob, alice, "hello from node 1", "1"},
	} {
		sent, err := tc.from.Send(ctx, client.SendRequest{ID: "m-" + tc.fromNode, Conversation: conv,
			Ciphertexts: map[string][]byte{tc.toS.DeviceID: []byte(tc.text)}})
		if err != nil {
			t.Fatalf("send from node %s: %v", tc.fromNode, err)
		}
		select {
		case m := <-tc.to.Messages():
			if m.Seq != sent.Seq || string(m.Ciphertext) != tc.text || m.SenderDeviceID != tc.fromS.DeviceID {
				t.Errorf("received %+v, want seq %d %q from %s", m, sent.Seq, tc.text, tc.fromS.DeviceID)
			}
		case <-ctx.Done():
			t.Fatalf("the message sent on node %s never reached the other node's device", tc.fromNode)
		}
	}

	// Each node counts what it published; nothing was dropped.
	for i, url := range admins {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		published := regexp.MustCompile(`(?m)^switchboard_bus_published_total (\d+)`).FindSubmatch(body)
		if published == nil || string(published[1]) == "0" || !regexp.MustCompile(`(?m)^switchboard_bus_dropped_total 0$`).Match(body) {
			t.Errorf("node %d metrics: want some publishes and none dropped:\n%s", i,
				regexp.MustCompile(`(?m)^switchboard_bus_.*$`).FindAll(body, -1))
		}
	}
}
