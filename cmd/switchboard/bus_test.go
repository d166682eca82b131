package main

import (
	"context"
	"os"
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
	nodes := startNodes(t, ctx, 2, testenv.Postgres(t), testenv.Redis(t).URL())
	// alice is on node 0, bob on node 1.
	alice, bob := testenv.SignupLogin(ctx, t, nodes[0].URL(), "alice"), testenv.SignupLogin(ctx, t, nodes[1].URL(), "bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	aliceWS, bobWS := connectSynced(ctx, t, alice), connectSynced(ctx, t, bob)

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
	for i, n := range nodes {
		published := testenv.Metric(t, n.AdminURL(), "switchboard_bus_published_total")
		dropped := testenv.Metric(t, n.AdminURL(), "switchboard_bus_dropped_total")
		if published == 0 || dropped != 0 {
			t.Errorf("node %d: %v published, %v dropped; want some publishes and none dropped", i, published, dropped)
		}
	}
}
