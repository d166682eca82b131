package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestNGINXAccessLogHoldsNoToken: a browser's socket carries its bearer
// token in the query string. Through the shipped NGINX configuration
// (deploy/nginx/switchboard.conf, rendered for a private instance) the
// request is logged, with its path and device, and without the token. The
// shipped log format used to be "combined", whose request line is the whole
// URL, token included.
func TestNGINXAccessLogHoldsNoToken(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	ng := testenv.NGINX(t, []string{n.url})
	a := n.signup(t, "alice", "phone")[0]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(ng.URL(), "http") + "/v1/ws?device=" + a.id + "&token=" + a.token
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial through NGINX: %v\n%s", err, ng.ErrorLog())
	}
	(&socket{c}).expect(t, "synced")
	c.Close(websocket.StatusNormalClosure, "") // NGINX logs a socket when it closes

	// The log is buffered (flush=5s): wait for the line.
	var log string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(ng.Dir, "access.log"))
		if log = string(b); strings.Contains(log, "/v1/ws") {
			break
		}
	}
	if !strings.Contains(log, "/v1/ws") {
		t.Fatalf("the socket's request was not logged within 20 s: %q", log)
	}
	if strings.Contains(log, a.token) || strings.Contains(log, "token=") {
		t.Fatalf("NGINX's access log holds the bearer token:\n%s", log)
	}
	if !strings.Contains(log, "device="+a.id) {
		t.Errorf("the log line does not name the device:\n%s", log)
	}
}
