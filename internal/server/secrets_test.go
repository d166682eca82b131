package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// TestNoSecretInLogs runs a full scenario on a node logging at debug level:
// signups, logins (right and wrong passwords), sockets authenticated by
// header and by query, sends of every kind over both transports, refusals,
// revocation, reuse of the revoked token. Then it looks for every password,
// token and ciphertext it used, as is, hex and base64 at every alignment, in
// everything the node logged: none may appear.
func TestNoSecretInLogs(t *testing.T) {
	n := startNodeOn(t, backends[0].open(t), &inmem.Bus{}, slog.LevelDebug, func(cc *chat.Config, sc *server.Config) {
		cc.Limits.FramesPerSocket = chat.Rate{N: 40, Per: time.Minute} // refusals are part of the scenario
		sc.LimitExempt = nil
	})
	var secrets []string
	secret := func(prefix string) string {
		b := make([]byte, 18)
		rand.Read(b)
		s := prefix + base64.RawURLEncoding.EncodeToString(b)
		secrets = append(secrets, s)
		return s
	}
	keep := func(s string) string { secrets = append(secrets, s); return s }

	pw := map[string]string{"alice": secret("pw-"), "bob": secret("pw-")}
	for u, p := range pw {
		if st, body := n.call(t, "POST", "/v1/accounts", "", map[string]string{"username": u, "password": p}); st != 201 {
			t.Fatalf("signup %s: %d %v", u, st, body)
		}
	}
	login := func(u, name string) device {
		dev := newKeys()
		dev["name"] = name
		st, body := n.call(t, "POST", "/v1/sessions", "", map[string]any{"username": u, "password": pw[u], "device": dev})
		if st != 201 {
			t.Fatalf("login %s: %d %v", u, st, body)
		}
		return device{body["user_id"].(string), body["device_id"].(string), keep(body["token"].(string))}
	}
	alice, bob, bobLaptop := login("alice", "phone"), login("bob", "phone"), login("bob", "laptop")
	if st, _ := n.call(t, "POST", "/v1/sessions", "", map[string]any{"username": "alice", "password": secret("wrong-"), "device": newKeys()}); st < 400 {
		t.Fatal("a wrong password logged in")
	}
	conv := n.conversation(t, alice, "direct", bob.user)

	// Sockets: bob's phone by header, bob's laptop by ?token= (as a browser would).
	bs := n.dial(t, bob.token)
	bs.expect(t, "synced")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lc, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws?token="+bobLaptop.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls := &socket{lc}
	t.Cleanup(func() { lc.CloseNow() })
	ls.expect(t, "synced")
	as := n.dial(t, alice.token)
	as.expect(t, "synced")

	ct := func() []byte { return []byte(secret("ct-")) }
	as.send(t, map[string]any{"type": "send", "id": "pairwise", "conversation": conv,
		"ciphertexts": map[string][]byte{bob.id: ct(), bobLaptop.id: ct()}})
	as.expect(t, "sent")
	as.send(t, map[string]any{"type": "send", "id": "shared", "conversation": conv, "ciphertext": ct()})
	as.expect(t, "sent")
	as.send(t, map[string]any{"type": "send", "id": "assisted", "conversation": conv, "plaintext": []byte(secret("plain-"))})
	as.expect(t, "sent")
	as.send(t, map[string]any{"type": "send", "id": "mismatch", "conversation": conv, "ciphertexts": map[string][]byte{bob.id: ct()}})
	as.expect(t, "error", "devices_mismatch")
	as.send(t, `{"type":"send","id":"garbage","conversation":"`+conv+`","ciphertext":"`+secret("notb64%")+`"}`)
	as.expect(t, "error", "bad_frame")
	if st, body := n.call(t, "POST", "/v1/conversations/"+conv+"/messages", bob.token, map[string]any{"id": "http", "ciphertext": ct()}); st != 201 {
		t.Fatalf("HTTP send: %d %v", st, body)
	}
	if st, _ := n.call(t, "GET", "/v1/conversations/"+conv+"/messages", bob.token, nil); st != 200 {
		t.Fatal("history")
	}
	for range 45 { // past the frame limit: refusals
		as.send(t, map[string]any{"type": "ping"})
	}

	// Revocation, then the revoked token on both transports, and a token in a bad place.
	if st, _ := n.call(t, "DELETE", "/v1/devices/"+bobLaptop.id, bob.token, nil); st != 204 {
		t.Fatal("revoke")
	}
	if st, _ := n.call(t, "GET", "/v1/conversations", bobLaptop.token, nil); st != 401 {
		t.Fatal("the revoked token still works")
	}
	if c, status, _ := tryDial(t, n, bobLaptop.token); c != nil || status != 401 {
		t.Fatal("the revoked token still opens a socket")
	}
	req, _ := http.NewRequest("GET", n.url+"/v1/conversations?token="+alice.token, nil)
	req.Header.Set("Authorization", "Token "+alice.token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("a token outside a Bearer header: %v %v", resp, err)
	}

	logs := n.logText()
	if !strings.Contains(logs, "http request") || !strings.Contains(logs, "/v1/ws") || !strings.Contains(logs, "/v1/sessions") {
		t.Fatalf("the debug log has no request lines; the test would prove nothing:\n%s", logs)
	}
	for _, s := range secrets {
		for _, enc := range encodings(s) {
			if strings.Contains(logs, enc) {
				t.Errorf("the node's log holds the secret %q as %q", s, enc)
			}
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}
