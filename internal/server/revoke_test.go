package server_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestRevocation(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { testRevocation(t, startNode(t, be.open(t))) })
	}
}

func testRevocation(t *testing.T, n *node) {
	alice := n.signup(t, "alice", "phone", "laptop")
	phone, laptop := alice[0], alice[1]
	bob := n.signup(t, "bob", "phone")[0]
	direct := n.conversation(t, phone, "direct", bob.user)
	ps, ls, bs := n.dial(t, phone.token), n.dial(t, laptop.token), n.dial(t, bob.token)
	for _, s := range []*socket{ps, ls, bs} {
		s.expect(t, "synced")
	}

	t.Run("revoking someone else's device is not found, like a missing one", func(t *testing.T) {
		for _, dev := range []string{bob.id, "dev_nope"} {
			if st, body := n.call(t, "DELETE", "/v1/devices/"+dev, phone.token, nil); st != 404 || body["code"] != "not_found" {
				t.Fatalf("DELETE %s: %d %v", dev, st, body)
			}
		}
	})

	t.Run("the revoked device's socket closes with 4001 within a second", func(t *testing.T) {
		if st, body := n.call(t, "DELETE", "/v1/devices/"+laptop.id, phone.token, nil); st != 204 {
			t.Fatalf("DELETE: %d %v", st, body)
		}
		_, err := ls.readErr(time.Second)
		if code := websocket.CloseStatus(err); code != 4001 {
			t.Fatalf("laptop socket: %v (code %d), want 4001", err, code)
		}
	})

	t.Run("members sharing a conversation are told the device list changed", func(t *testing.T) {
		for _, s := range []*socket{bs, ps} {
			if f := s.expect(t, "devices_changed"); f["user_id"] != phone.user {
				t.Fatalf("devices_changed %v, want user %s", f, phone.user)
			}
		}
	})

	t.Run("the revoked token is refused over HTTP and WebSocket", func(t *testing.T) {
		if st, body := n.call(t, "GET", "/v1/conversations", laptop.token, nil); st != 401 || body["code"] != "unauthorized" {
			t.Fatalf("GET with a revoked token: %d %v", st, body)
		}
		if st, _ := n.call(t, "GET", "/v1/ws", laptop.token, nil); st != 401 {
			t.Fatalf("upgrade with a revoked token: %d", st)
		}
	})

	ct := base64.StdEncoding.EncodeToString([]byte("sealed"))
	t.Run("a send that still includes the revoked device gets it under extra", func(t *testing.T) {
		bs.send(t, map[string]any{"type": "send", "id": "x1", "conversation": direct,
			"ciphertexts": map[string]string{phone.id: ct, laptop.id: ct}})
		f := bs.expect(t, "error", "devices_mismatch")
		if extra := f["extra"].([]any); len(extra) != 1 || extra[0] != laptop.id || !isEmptyList(f["missing"]) {
			t.Fatalf("error %v, want extra [%s] and nothing missing", f, laptop.id)
		}
	})

	t.Run("the directory no longer lists it and a new device is announced", func(t *testing.T) {
		_, body := n.call(t, "GET", "/v1/users/"+phone.user+"/devices", bob.token, nil)
		if devs := body["devices"].([]any); len(devs) != 1 || devs[0].(map[string]any)["device_id"] != phone.id {
			t.Fatalf("alice's devices: %v", body)
		}
		tablet := n.login(t, "alice", "tablet")
		if f := bs.expect(t, "devices_changed"); f["user_id"] != tablet.user {
			t.Fatalf("after a login bob got %v", f)
		}
		bs.send(t, map[string]any{"type": "send", "id": "x2", "conversation": direct,
			"ciphertexts": map[string]string{phone.id: ct, tablet.id: ct}})
		bs.expect(t, "sent")
	})
}

// isEmptyList reports whether a decoded JSON value is [] (present and empty).
func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}
