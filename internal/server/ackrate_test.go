package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// TestAcksOverTheFrameRate: an application that acks every message sends
// as many acks as it gets messages, more than the frame rate in a busy
// conversation (issue 16). Such acks are held, not refused.
func TestAcksOverTheFrameRate(t *testing.T) {
	const n = 150
	node := limitedNode(t, func(cc *chat.Config, _ *server.Config) {
		cc.Limits.FramesPerSocket = chat.Rate{N: 10, Per: time.Second}
	})
	alice := node.signup(t, "alice", "phone")[0]
	bob := node.signup(t, "bob", "phone")[0]
	group := node.conversation(t, alice, "group", bob.user)
	bs := node.dial(t, bob.token)
	bs.expect(t, "synced")

	t.Run("a client acking every message of a busy conversation is never refused nor closed", func(t *testing.T) {
		sent := make(chan error, 1)
		go func() { sent <- postMessages(node, alice.token, group, n) }()
		for want := int64(1); want <= n; want++ {
			f := bs.read(t)
			if f["type"] != "message" || f["seq"] != float64(want) {
				t.Fatalf("while acking every message: got %v, want message %d", f, want)
			}
			bs.send(t, map[string]any{"type": "ack", "conversation": group, "seq": want})
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("its cursor ends at the highest ack", func(t *testing.T) {
		waitFor(t, func() bool {
			cur, err := node.store.Cursors(context.Background(), bob.id)
			return err == nil && cur[group] == n
		})
	})

	t.Run("the socket is open and answers, with no error frame before the pong", func(t *testing.T) {
		// The frame bucket (10 a second) is full again a second after the
		// last ack, whatever the cursor's wait took.
		time.Sleep(1100 * time.Millisecond)
		bs.send(t, map[string]any{"type": "ping"})
		bs.expect(t, "pong")
	})
}

// postMessages sends n messages into conv over HTTP, one after the other.
func postMessages(n *node, token, conv string, count int) error {
	for i := range count {
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprint("m", i), "ciphertext": []byte("x")})
		req, _ := http.NewRequest("POST", n.url+"/v1/conversations/"+conv+"/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("send %d: status %d", i, resp.StatusCode)
		}
	}
	return nil
}
