package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// loginGate holds up the store's read of one username during a login until
// release is closed, then until the login's context ends (at most 10 s),
// and sends on ended what the context said then.
type loginGate struct {
	sb.Store
	name    string
	mu      sync.Mutex
	entered chan struct{}
	release chan struct{}
	ended   chan error
}

func (s *loginGate) UserByName(ctx context.Context, name string) (*sb.User, error) {
	s.mu.Lock()
	gated := name == s.name
	s.name = ""
	s.mu.Unlock()
	if gated {
		close(s.entered)
		<-s.release
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		s.ended <- ctx.Err()
	}
	return s.Store.UserByName(ctx, name)
}

// TestLoginAbandonedByItsClientCreatesNoDevice: a login whose client closed
// its connection before the answer creates no device (issue 18, item 7):
// nobody holds its token, and enough such devices locked the user out with
// too_many_devices.
func TestLoginAbandonedByItsClientCreatesNoDevice(t *testing.T) {
	store := &loginGate{Store: backends[0].open(t), entered: make(chan struct{}), release: make(chan struct{}), ended: make(chan error, 1)}
	n := startNode(t, store)
	alice := n.signup(t, "alice", "phone")[0]
	store.mu.Lock()
	store.name = "alice"
	store.mu.Unlock()

	c, err := net.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	dev := newKeys()
	dev["name"] = "laptop"
	body, _ := json.Marshal(map[string]any{"username": "alice", "password": "password-alice", "device": dev})
	fmt.Fprintf(c, "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	<-store.entered
	c.Close() // the client gives up
	close(store.release)

	if err := <-store.ended; err == nil {
		t.Fatal("the login's context had not ended 10 s after its client closed the connection")
	}
	// Its check before the commit sees it (chat's own tests cover that
	// check): alice keeps her one device.
	st, got := n.call(t, "GET", "/v1/users/"+alice.user+"/devices", alice.token, nil)
	if devices, _ := got["devices"].([]any); st != 200 || len(devices) != 1 {
		t.Fatalf("devices: %d %v, want alice's one", st, got)
	}
}
