package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

func TestHTTPBadInput(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) { sc.MaxBody = 4096 })
	alice := n.signup(t, "alice", "phone")[0]
	dev := newKeys()
	dev["name"] = "laptop"
	badKem := newKeys()
	badKem["name"], badKem["kem"] = "laptop", "rsa"
	shortKey := newKeys()
	shortKey["name"], shortKey["public_key"] = "laptop", make([]byte, 31)

	for _, tc := range []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         string
	}{
		{"a duplicate username is refused", "POST", "/v1/accounts", "", map[string]string{"username": "alice", "password": "a-fine-password"}, 409, "username_taken"},
		{"an empty username is refused", "POST", "/v1/accounts", "", map[string]string{"username": "", "password": "12345678"}, 400, "invalid_username"},
		{"a too long username is refused", "POST", "/v1/accounts", "", map[string]string{"username": strings.Repeat("a", 33), "password": "12345678"}, 400, "invalid_username"},
		{"a username with spaces is refused", "POST", "/v1/accounts", "", map[string]string{"username": "a b", "password": "12345678"}, 400, "invalid_username"},
		{"an empty password is refused", "POST", "/v1/accounts", "", map[string]string{"username": "bob", "password": ""}, 400, "invalid_password"},
		{"malformed JSON is refused", "POST", "/v1/accounts", "", `{"username":`, 400, "bad_request"},
		{"unknown fields are refused", "POST", "/v1/accounts", "", `{"username":"bob","password":"12345678","admin":true}`, 400, "bad_request"},
		{"a body over the limit is refused", "POST", "/v1/accounts", "", map[string]string{"username": "bob", "password": strings.Repeat("p", 5000)}, 413, "too_large"},
		{"a wrong password is refused", "POST", "/v1/sessions", "", map[string]any{"username": "alice", "password": "wrong-password", "device": dev}, 401, "bad_credentials"},
		{"an unknown user is refused the same way", "POST", "/v1/sessions", "", map[string]any{"username": "nobody", "password": "wrong-password", "device": dev}, 401, "bad_credentials"},
		{"an unknown kem is refused", "POST", "/v1/sessions", "", map[string]any{"username": "alice", "password": "password-alice", "device": badKem}, 400, "invalid_device"},
		{"a short public key is refused", "POST", "/v1/sessions", "", map[string]any{"username": "alice", "password": "password-alice", "device": shortKey}, 400, "invalid_device"},
		{"a key that is not base64 is refused", "POST", "/v1/sessions", "", `{"username":"alice","password":"password-alice","device":{"name":"x","kem":"x25519","public_key":"%%%","signing_key":"AA=="}}`, 400, "bad_request"},
		{"no token is unauthorized", "GET", "/v1/conversations", "", nil, 401, "unauthorized"},
		{"a bad token is unauthorized", "GET", "/v1/conversations", "not-a-token", nil, 401, "unauthorized"},
		{"an unknown conversation is not found", "GET", "/v1/conversations/cnv_nope/messages", alice.token, nil, 404, "no_such_conversation"},
		{"a bad after is refused", "GET", "/v1/conversations/cnv_nope/messages?after=x", alice.token, nil, 400, "bad_request"},
		{"a direct chat with oneself is refused", "POST", "/v1/conversations", alice.token, map[string]any{"kind": "direct", "members": []string{alice.user}}, 400, "invalid_conversation"},
		{"an unknown member is refused", "POST", "/v1/conversations", alice.token, map[string]any{"kind": "group", "members": []string{"usr_nope"}}, 400, "invalid_conversation"},
		{"an unknown kind is refused", "POST", "/v1/conversations", alice.token, map[string]any{"kind": "channel"}, 400, "invalid_conversation"},
		{"devices of an unknown user are not found", "GET", "/v1/users/usr_nope/devices", alice.token, nil, 404, "not_found"},
		{"an unknown path is not found", "GET", "/v1/nope", "", nil, 404, "not_found"},
		{"a known path with a wrong method is not allowed", "PUT", "/v1/accounts", "", nil, 405, "method_not_allowed"},
		{"a wrong method on a path with a wildcard is not allowed", "POST", "/v1/users/usr_x/devices", alice.token, nil, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, body := n.call(t, tc.method, tc.path, tc.token, tc.body)
			if st != tc.status || body["code"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", st, body, tc.status, tc.code)
			}
			if body["status"] != float64(tc.status) || body["title"] == "" || body["type"] != "about:blank" {
				t.Fatalf("not an RFC 9457 problem document: %v", body)
			}
		})
	}
	t.Run("the first account is intact after all that", func(t *testing.T) {
		st, body := n.call(t, "GET", "/v1/users/"+alice.user+"/devices", alice.token, nil)
		if st != 200 || len(body["devices"].([]any)) != 1 {
			t.Fatalf("alice's devices: %d %v", st, body)
		}
	})
}

func TestWebSocketUpgradeNeedsAToken(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	for _, tc := range []struct{ name, query, header string }{
		{"no token", "", ""},
		{"a bad bearer token", "", "Bearer nope"},
		{"a bad query token", "?token=nope", ""},
	} {
		t.Run(tc.name+" gets 401 before the upgrade", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			opts := &websocket.DialOptions{}
			if tc.header != "" {
				opts.HTTPHeader = map[string][]string{"Authorization": {tc.header}}
			}
			_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws"+tc.query, opts)
			if err == nil || resp == nil || resp.StatusCode != 401 {
				t.Fatalf("dial: err %v resp %v, want a 401", err, resp)
			}
		})
	}
	t.Run("a query token works for browsers", func(t *testing.T) {
		d := n.signup(t, "carol", "browser")[0]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws?token="+d.token, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_, raw, err := c.Read(ctx)
		if err != nil || !strings.Contains(string(raw), `"synced"`) {
			t.Fatalf("first frame %q, %v; want synced", raw, err)
		}
	})
}

func TestWebSocketBadFrames(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(cc *chat.Config, sc *server.Config) {
		sc.MaxFrame = 8 << 10
		cc.MaxCiphertext = 1 << 10
		cc.SendRate, cc.SendBurst = 0.001, 30
	})
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone", "laptop")
	eve := n.signup(t, "eve", "phone")[0]
	direct := n.conversation(t, alice, "direct", bob[0].user)
	private := n.conversation(t, eve, "group")

	a := n.dial(t, alice.token)
	a.expect(t, "synced")
	b := n.dial(t, bob[0].token)
	b.expect(t, "synced")
	ct := base64.StdEncoding.EncodeToString([]byte("sealed"))

	for _, tc := range []struct {
		name  string
		frame any
		code  string
		id    string
	}{
		{"text that is not JSON", `hello`, "bad_frame", ""},
		{"JSON that is not an object", `[1,2]`, "bad_frame", ""},
		{"a frame without a type", `{"id":"x"}`, "unknown_type", "x"},
		{"an unknown type", `{"type":"dance","id":"d1"}`, "unknown_type", "d1"},
		{"a send without conversation", map[string]any{"type": "send", "id": "m1", "ciphertext": ct}, "bad_frame", "m1"},
		{"a send without id", map[string]any{"type": "send", "conversation": direct, "ciphertext": ct}, "invalid_message", ""},
		{"a send with both ciphertext kinds", map[string]any{"type": "send", "id": "m2", "conversation": direct, "ciphertext": ct, "ciphertexts": map[string]string{bob[0].id: ct}}, "invalid_message", "m2"},
		{"a send with invalid base64", `{"type":"send","id":"m3","conversation":"` + direct + `","ciphertext":"%%%"}`, "bad_frame", "m3"},
		{"a ciphertext over the limit", map[string]any{"type": "send", "id": "m4", "conversation": direct, "ciphertext": base64.StdEncoding.EncodeToString(make([]byte, 2000))}, "too_large", "m4"},
		{"a send to a conversation that does not exist", map[string]any{"type": "send", "id": "m5", "conversation": "cnv_nope", "ciphertext": ct}, "no_such_conversation", "m5"},
		{"a send to someone else's conversation", map[string]any{"type": "send", "id": "m6", "conversation": private, "ciphertext": ct}, "not_member", "m6"},
		{"an ack with a string seq", `{"type":"ack","conversation":"` + direct + `","seq":"7"}`, "bad_frame", ""},
		{"an ack of someone else's conversation", map[string]any{"type": "ack", "conversation": private, "seq": 1}, "not_member", ""},
	} {
		t.Run(tc.name+" gets "+tc.code, func(t *testing.T) {
			a.send(t, tc.frame)
			f := a.expect(t, "error", tc.code)
			if tc.id != "" && f["id"] != tc.id {
				t.Fatalf("error frame %v does not name id %s", f, tc.id)
			}
			if f["message"] == "" {
				t.Fatalf("error frame %v has no message", f)
			}
		})
	}

	t.Run("ciphertexts that miss a device and add a stranger get devices_mismatch with both lists", func(t *testing.T) {
		a.send(t, map[string]any{"type": "send", "id": "mm", "conversation": direct,
			"ciphertexts": map[string]string{bob[0].id: ct, eve.id: ct}})
		f := a.expect(t, "error", "devices_mismatch")
		if missing := f["missing"].([]any); len(missing) != 1 || missing[0] != bob[1].id {
			t.Fatalf("missing = %v, want [%s]", f["missing"], bob[1].id)
		}
		if extra := f["extra"].([]any); len(extra) != 1 || extra[0] != eve.id {
			t.Fatalf("extra = %v, want [%s]", f["extra"], eve.id)
		}
	})

	t.Run("after the bad frames the socket still sends and the other side receives", func(t *testing.T) {
		a.send(t, map[string]any{"type": "send", "id": "ok1", "conversation": direct, "ciphertext": ct})
		if f := a.expect(t, "sent"); f["seq"] != float64(1) {
			t.Fatalf("sent %v, want seq 1: nothing else may have been stored", f)
		}
		if f := b.expect(t, "message"); f["ciphertext"] != ct || f["seq"] != float64(1) {
			t.Fatalf("bob got %v", f)
		}
	})

	t.Run("sends past the burst get rate_limited and store nothing", func(t *testing.T) {
		var limited bool
		for i := range 40 {
			a.send(t, map[string]any{"type": "send", "id": "burst" + string(rune('a'+i)), "conversation": direct, "ciphertext": ct})
			if f := a.read(t); f["type"] == "error" {
				if f["code"] != "rate_limited" {
					t.Fatalf("got %v", f)
				}
				limited = true
				break
			}
		}
		if !limited {
			t.Fatal("40 sends at a burst of 30 were never limited")
		}
	})

	t.Run("a frame over the limit closes only that socket with 1009", func(t *testing.T) {
		big := n.dial(t, alice.token)
		big.expect(t, "synced")
		// The node may close before the client has written it all; only the close code matters.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		big.c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","pad":"`+strings.Repeat("x", 9<<10)+`"}`))
		_, err := big.readErr(5 * time.Second)
		if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
			t.Fatalf("read after an oversized frame: %v (code %d), want close 1009", err, code)
		}
		b.send(t, map[string]any{"type": "ping"})
		for f := b.read(t); f["type"] != "pong"; f = b.read(t) {
			if f["type"] != "message" {
				t.Fatalf("bob got %v while waiting for pong", f)
			}
		}
	})
}

func TestASecondSocketOfADeviceReplacesTheFirst(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	d := n.signup(t, "alice", "phone")[0]
	first := n.dial(t, d.token)
	first.expect(t, "synced")
	second := n.dial(t, d.token)
	second.expect(t, "synced")
	_, err := first.readErr(5 * time.Second)
	if code := websocket.CloseStatus(err); code != 4002 {
		t.Fatalf("first socket: %v (code %d), want close 4002", err, code)
	}
	second.send(t, map[string]any{"type": "ping"})
	second.expect(t, "pong")
}

func TestEndToEndOnlyRefusesPlaintext(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(cc *chat.Config, _ *server.Config) { cc.E2EOnly = true })
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	direct := n.conversation(t, alice, "direct", bob.user)
	a := n.dial(t, alice.token)
	a.expect(t, "synced")
	a.send(t, map[string]any{"type": "send", "id": "p1", "conversation": direct, "plaintext": base64.StdEncoding.EncodeToString([]byte("hi"))})
	a.expect(t, "error", "plaintext_refused")
	st, body := n.call(t, "POST", "/v1/conversations/"+direct+"/messages", alice.token, map[string]any{"id": "p2", "plaintext": []byte("hi")})
	if st != 403 || body["code"] != "plaintext_refused" {
		t.Fatalf("HTTP plaintext send: %d %v", st, body)
	}
	if st, body := n.call(t, "GET", "/v1/conversations/"+direct+"/messages", bob.token, nil); st != 200 || len(body["messages"].([]any)) != 0 {
		t.Fatalf("bob's history after refused sends: %d %v", st, body)
	}
}

func TestWrongMethodListsTheAllowedOnes(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/accounts", "POST"},
		{"PATCH", "/v1/conversations", "GET, HEAD, POST"},
		{"GET", "/v1/devices/dev_x", "DELETE"},
		{"DELETE", "/v1/conversations/cnv_x/messages", "GET, HEAD, POST"},
	} {
		t.Run(tc.method+" "+tc.path+" allows "+tc.allow, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, n.url+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != tc.allow {
				t.Fatalf("got %d Allow %q, want 405 Allow %q", resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
			}
		})
	}
}

// A refusal names the field at fault, over HTTP and on the socket.
func TestErrorsNameTheField(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	conv := n.conversation(t, alice, "group")
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		code, field               string
	}{
		{"a public key that is not base64", "POST", "/v1/sessions", "",
			`{"username":"alice","password":"password-alice","device":{"name":"x","kem":"x25519","public_key":"%%%","signing_key":"AA=="}}`,
			"bad_request", "device.public_key"},
		{"a signing key that is not base64", "POST", "/v1/sessions", "",
			`{"username":"alice","password":"password-alice","device":{"name":"x","kem":"x25519","public_key":"AA==","signing_key":"***"}}`,
			"bad_request", "device.signing_key"},
		{"a login without a device", "POST", "/v1/sessions", "",
			map[string]any{"username": "alice", "password": "password-alice"}, "invalid_device", "device is required"},
		{"a ciphertext that is not base64", "POST", "/v1/conversations/" + conv + "/messages", alice.token,
			`{"id":"m1","ciphertexts":{"dev_a":"AA==","dev_b":"!!"}}`, "bad_request", "ciphertexts.dev_b"},
		{"a shared ciphertext of the wrong type", "POST", "/v1/conversations/" + conv + "/messages", alice.token,
			`{"id":"m1","ciphertext":7}`, "bad_request", "ciphertext"},
	} {
		t.Run(tc.name+" is named", func(t *testing.T) {
			st, body := n.call(t, tc.method, tc.path, tc.token, tc.body)
			detail, _ := body["detail"].(string)
			if st != 400 || body["code"] != tc.code || !strings.Contains(detail, tc.field) {
				t.Fatalf("got %d %v, want 400 %s naming %q", st, body, tc.code, tc.field)
			}
		})
	}
	t.Run("a ciphertext that is not base64 on the socket is named", func(t *testing.T) {
		s := n.dial(t, alice.token)
		s.expect(t, "synced")
		s.send(t, map[string]any{"type": "send", "id": "m2", "conversation": conv, "ciphertext": "%%%"})
		f := s.expect(t, "error", "bad_frame")
		if msg, _ := f["message"].(string); !strings.Contains(msg, "ciphertext") {
			t.Fatalf("error %v does not name ciphertext", f)
		}
	})
}

// Every body over --max-body gets 413 with a problem document, whatever its
// size: a little over is refused by the handler, far over by the gateway
// before it is buffered (and the connection is closed after the answer).
func TestEveryOverLimitBodyGets413(t *testing.T) {
	const limit = 4096
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, c *server.Config) { c.MaxBody = limit })
	for _, size := range []int{limit + 1, 200 << 10, 8 << 20} {
		t.Run(fmt.Sprintf("a %d-byte body", size), func(t *testing.T) {
			body := `{"username":"bob","password":"` + strings.Repeat("p", size) + `"}`
			resp, err := http.Post(n.url+"/v1/accounts", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			var p map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("413 body: %v", err)
			}
			if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/problem+json" || p["code"] != "too_large" || p["status"] != float64(413) {
				t.Fatalf("got %d %s %v, want a 413 too_large problem", resp.StatusCode, resp.Header.Get("Content-Type"), p)
			}
		})
	}
	if st, _ := n.call(t, "GET", "/healthz", "", nil); st != 200 {
		t.Fatalf("healthz after the refusals: %d", st)
	}
}
