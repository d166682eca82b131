package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/wire"
)

// TestFullNodeShedsNewSocketsOnly: at MaxConns the next upgrade gets 503
// with Retry-After (before its token is even read) and /readyz fails, while
// the open socket keeps working; once a socket closes, both recover.
func TestFullNodeShedsNewSocketsOnly(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) { sc.MaxConns = 1 })
	devs := n.signup(t, "full", "phone", "laptop")
	first := n.dial(t, devs[0].token)
	first.expect(t, "synced")
	ready := func() int {
		resp, err := http.Get(n.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, func() bool { return ready() == http.StatusServiceUnavailable })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tok := range []string{devs[1].token, "not-a-token"} {
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws",
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err == nil {
			c.CloseNow()
			t.Fatal("an upgrade to a full node succeeded")
		}
		var body map[string]any
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || body["code"] != wire.CodeUnavailable {
			t.Fatalf("upgrade to a full node: %d Retry-After %q %v; want 503, 5, unavailable", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}

	// The open socket still works.
	first.send(t, map[string]any{"type": wire.TypePing})
	first.expect(t, wire.TypePong)

	first.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { return ready() == http.StatusOK })
	second := n.dial(t, devs[1].token)
	second.expect(t, "synced")
}
