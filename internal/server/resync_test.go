package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// backlogNode is a node on SQLite without abuse limits (the test's sender
// pipelines hundreds of large sends), with the default send-queue limit.
func backlogNode(t *testing.T) *node {
	return startNode(t, backends[0].open(t), func(cc *chat.Config, _ *server.Config) {
		cc.Limits, cc.SendRate, cc.SendBurst = noLimits, -1, -1
	})
}

// fillBacklog has from send count messages of size bytes each into conv and
// waits for every "sent".
func fillBacklog(t *testing.T, n *node, from device, conv string, count, size int) {
	t.Helper()
	s := n.dial(t, from.token)
	s.expect(t, "synced")
	ct := bytes.Repeat([]byte{0xA5}, size)
	// In windows of 16: a client that pipelines megabytes of sends faster
	// than they commit is closed with 1008 (inbound backlog).
	for i := 0; i < count; i += 16 {
		w := min(16, count-i)
		for k := range w {
			s.send(t, map[string]any{"type": "send", "id": fmt.Sprintf("m%d", i+k), "conversation": conv, "ciphertext": ct})
		}
		for range w {
			s.expect(t, "sent")
		}
	}
	s.c.Close(websocket.StatusNormalClosure, "")
}

// TestLargeBacklogSyncsInOneConnection: a device that was offline while
// ~5 MB of messages accumulated replays them all in one connection, with the
// default 1 MiB send-queue limit, to a client that reads at a moderate pace:
// every seq once and in order, then synced, and no close. The replay used to
// write its pages as fast as the store read them, passed the limit within
// milliseconds and was closed with 4008 (slow consumer); the next socket
// started over from the same cursor.
func TestLargeBacklogSyncsInOneConnection(t *testing.T) {
	const count, size = 600, 10 << 10 // 6 MB, 8.2 MB on the wire (base64)
	n := backlogNode(t)
	sender := n.signup(t, "sender", "phone")[0]
	reader := n.signup(t, "reader", "phone")[0]
	conv := n.conversation(t, sender, "group", reader.user)
	fillBacklog(t, n, sender, conv, count, size)

	start := time.Now()
	rs := dialSmallWindow(t, n, reader.token)
	var last float64
	for {
		f, err := rs.readErr(20 * time.Second)
		if err != nil {
			t.Fatalf("after seq %v of %d: %v", last, count, err)
		}
		if f["type"] == "synced" {
			break
		}
		if f["type"] != "message" {
			t.Fatalf("after seq %v: frame %v", last, f)
		}
		if seq := f["seq"].(float64); seq != last+1 {
			t.Fatalf("seq %v after %v, want each seq once, in order", seq, last)
		}
		last++
		time.Sleep(2 * time.Millisecond) // a client that does some work per message: 8 MB/s
	}
	if last != count {
		t.Fatalf("synced after %v messages, want %d", last, count)
	}
	t.Logf("%d messages (%d KiB each) synced in one connection in %v", count, size>>10, time.Since(start).Round(time.Millisecond))
	// The socket stays open and live: a ping is answered.
	rs.send(t, map[string]any{"type": "ping"})
	rs.expect(t, "pong")
}

// dialSmallWindow opens a socket whose TCP receive buffer is small, as on a
// path with little buffering between the node and the device (a mobile
// link, a proxy): loopback's default buffers autotune to megabytes and would
// hide the node's own send queue from the test.
func dialSmallWindow(t *testing.T, n *node, token string) *socket {
	t.Helper()
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws",
		&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 22)
	t.Cleanup(func() { c.CloseNow() })
	return &socket{c}
}

// TestAcksAfterTheServerStartedACloseAreStored: a client that acks what it
// read before it saw the server's close frame gets those acks stored (its
// next socket does not replay the messages). The gateway used to drop every
// frame once it had sent a close frame, so a socket closed as a slow
// consumer lost the acks of everything already written to it.
func TestAcksAfterTheServerStartedACloseAreStored(t *testing.T) {
	n := backlogNode(t)
	sender := n.signup(t, "sender", "phone")[0]
	reader := n.signup(t, "reader", "phone")[0]
	conv := n.conversation(t, sender, "group", reader.user)
	fillBacklog(t, n, sender, conv, 3, 10)

	first := n.dial(t, reader.token)
	for range 3 {
		first.expect(t, "message")
	}
	first.expect(t, "synced")
	// A second socket of the device replaces the first: the node closes the
	// first (4002) before the second's replay starts, so once the second
	// has synced, the first's close frame was sent.
	second := n.dial(t, reader.token)
	for range 3 {
		second.expect(t, "message")
	}
	second.expect(t, "synced")
	first.send(t, map[string]any{"type": "ack", "conversation": conv, "seq": 3})

	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := n.store.Cursors(context.Background(), reader.id)
		if err != nil {
			t.Fatal(err)
		}
		if cur[conv] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d after the ack of seq 3 on a closing socket, want 3", cur[conv])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The first socket still ends with its close code.
	_, err := first.readErr(10 * time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != server.CloseReplaced {
		t.Fatalf("first socket ended with %v, want close %d", err, server.CloseReplaced)
	}
}
