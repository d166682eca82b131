package server_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// An idle socket is closed with 4003 when its token expires, not a ping
// interval (30 s by default) later, and never before.
func TestSocketClosesWhenItsTokenExpires(t *testing.T) {
	const ttl = 2 * time.Second
	n := startNode(t, backends[0].open(t), func(c *chat.Config, _ *server.Config) { c.SessionTTL = ttl })
	n.signup(t, "alice")
	start := time.Now()
	alice := n.login(t, "alice", "phone")
	s := n.dial(t, alice.token)
	s.expect(t, "synced")
	_, err := s.readErr(ttl + 10*time.Second)
	closed := time.Since(start)
	if websocket.CloseStatus(err) != server.CloseSessionExpired {
		t.Fatalf("idle socket %v after its token's expiry: %v, want close 4003", closed, err)
	}
	if closed < ttl {
		t.Fatalf("closed %v after the login, before the token's %v were over", closed, ttl)
	}
}
