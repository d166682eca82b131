package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebSocketDeviceParameter: ?device= is the proxy's routing key
// (deploy/nginx). The node refuses a socket whose device parameter is not
// its token's device, before the upgrade, so a client cannot land on a node
// that another device's key picks; without the parameter nothing changes.
func TestWebSocketDeviceParameter(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone", "laptop")
	phone, laptop := alice[0], alice[1]

	dial := func(t *testing.T, query string) (*websocket.Conn, int, map[string]any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws"+query,
			&websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + phone.token}}})
		if err == nil {
			t.Cleanup(func() { c.CloseNow() })
			return c, 101, nil
		}
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("refusal %d is not a problem document: %q", resp.StatusCode, raw)
		}
		return nil, resp.StatusCode, body
	}

	for _, tc := range []struct{ name, query string }{
		{"another device of the same user", "?device=" + laptop.id},
		{"an unknown device", "?device=dev_nope"},
		{"an empty device", "?device="},
		{"the right device and then a wrong one", "?device=" + phone.id + "&device=" + laptop.id},
	} {
		t.Run(tc.name+" is refused with 400 device_mismatch", func(t *testing.T) {
			_, st, body := dial(t, tc.query)
			if st != 400 || body["code"] != "device_mismatch" || !strings.Contains(body["detail"].(string), phone.id) {
				t.Fatalf("got %d %v, want 400 device_mismatch naming %s", st, body, phone.id)
			}
		})
	}
	for _, tc := range []struct{ name, query string }{
		{"the token's own device", "?device=" + url.QueryEscape(phone.id)},
		{"no device parameter", ""},
	} {
		t.Run(tc.name+" opens the socket", func(t *testing.T) {
			c, st, body := dial(t, tc.query)
			if st != 101 {
				t.Fatalf("got %d %v, want the upgrade", st, body)
			}
			s := &socket{c}
			s.expect(t, "synced")
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}
