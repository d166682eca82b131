package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// limitedNode is a node with every limit off but those set by f, and no
// exempt addresses (loopback counts like any client).
func limitedNode(t *testing.T, f func(*chat.Config, *server.Config)) *node {
	return startNode(t, backends[0].open(t), func(cc *chat.Config, sc *server.Config) {
		cc.Limits, cc.SendRate, cc.SendBurst = noLimits, -1, -1
		sc.LimitExempt = []netip.Prefix{}
		f(cc, sc)
	})
}

// do makes one request with extra headers and returns the response (body read) and the decoded body.
func (n *node) do(t *testing.T, method, path, tok string, body any, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp, out
}

// wantLimited checks a 429 rate_limited problem with a Retry-After of at least min seconds.
func wantLimited(t *testing.T, resp *http.Response, body map[string]any, min int) {
	t.Helper()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || body["code"] != "rate_limited" || ra < min {
		t.Fatalf("got %d %v, Retry-After %q; want 429 rate_limited with Retry-After >= %d", resp.StatusCode, body, resp.Header.Get("Retry-After"), min)
	}
}

func loginBody(user string) map[string]any {
	dev := newKeys()
	dev["name"] = "phone"
	return map[string]any{"username": user, "password": "password-" + user, "device": dev}
}

func TestLoginLimits(t *testing.T) {
	t.Run("logins per address: the fourth from one address in an hour is refused, another address is not", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.LoginPerIP = chat.Rate{N: 3, Per: time.Hour} })
		n.signup(t, "alice")
		n.signup(t, "bob")
		for i := range 3 {
			user := []string{"alice", "bob", "alice"}[i]
			if resp, body := n.do(t, "POST", "/v1/sessions", "", loginBody(user)); resp.StatusCode != 201 {
				t.Fatalf("login %d: %d %v", i, resp.StatusCode, body)
			}
		}
		resp, body := n.do(t, "POST", "/v1/sessions", "", loginBody("bob"))
		wantLimited(t, resp, body, 1000) // one token per 20 minutes
		resp, body = n.do(t, "POST", "/v1/sessions", "", loginBody("bob"), "X-Forwarded-For", "203.0.113.9")
		if resp.StatusCode != 201 {
			t.Fatalf("a login from another address behind the (trusted, loopback) proxy: %d %v", resp.StatusCode, body)
		}
	})
	t.Run("logins per account: wrong passwords count, and a new address does not reset it", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.LoginPerAccount = chat.Rate{N: 2, Per: time.Hour} })
		n.signup(t, "alice")
		bad := loginBody("alice")
		bad["password"] = "not-alices-password"
		if resp, body := n.do(t, "POST", "/v1/sessions", "", bad, "X-Forwarded-For", "203.0.113.1"); resp.StatusCode != 401 {
			t.Fatalf("wrong password: %d %v", resp.StatusCode, body)
		}
		if resp, body := n.do(t, "POST", "/v1/sessions", "", loginBody("alice"), "X-Forwarded-For", "203.0.113.2"); resp.StatusCode != 201 {
			t.Fatalf("right password: %d %v", resp.StatusCode, body)
		}
		resp, body := n.do(t, "POST", "/v1/sessions", "", loginBody("alice"), "X-Forwarded-For", "203.0.113.3")
		wantLimited(t, resp, body, 1000)
	})
}

func TestSignupLimits(t *testing.T) {
	signup := func(t *testing.T, n *node, user string, hdr ...string) (*http.Response, map[string]any) {
		t.Helper()
		return n.do(t, "POST", "/v1/accounts", "", map[string]string{"username": user, "password": "password-" + user}, hdr...)
	}
	t.Run("accounts per address: the third in an hour is refused, another address is not", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.SignupPerIP = chat.Rate{N: 2, Per: time.Hour} })
		for _, u := range []string{"a1", "a2"} {
			if resp, body := signup(t, n, u); resp.StatusCode != 201 {
				t.Fatalf("signup %s: %d %v", u, resp.StatusCode, body)
			}
		}
		resp, body := signup(t, n, "a3")
		wantLimited(t, resp, body, 1000)
		if resp, body := signup(t, n, "a4", "X-Forwarded-For", "2001:db8:1:2::5"); resp.StatusCode != 201 {
			t.Fatalf("from another address: %d %v", resp.StatusCode, body)
		}
		signup(t, n, "a5", "X-Forwarded-For", "2001:db8:1:2::6")
		resp, body = signup(t, n, "a6", "X-Forwarded-For", "2001:db8:1:2:ffff::1")
		if resp.StatusCode != 429 {
			t.Fatalf("a third address in the same IPv6 /64: %d %v, want 429 (one subscriber, one /64)", resp.StatusCode, body)
		}
	})
	t.Run("an untrusted peer cannot choose its address with X-Forwarded-For", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, sc *server.Config) {
			cc.Limits.SignupPerIP = chat.Rate{N: 1, Per: time.Hour}
			sc.TrustedProxies = []netip.Prefix{}
		})
		signup(t, n, "b1", "X-Forwarded-For", "198.51.100.1")
		resp, body := signup(t, n, "b2", "X-Forwarded-For", "198.51.100.2", "X-Real-IP", "198.51.100.3")
		wantLimited(t, resp, body, 1000)
	})
	t.Run("exempt addresses (loopback by default) are not limited, the clients behind them are", func(t *testing.T) {
		n := startNode(t, backends[0].open(t), func(cc *chat.Config, _ *server.Config) {
			cc.Limits.SignupPerIP = chat.Rate{N: 1, Per: time.Hour}
		})
		for i := range 3 {
			if resp, body := signup(t, n, fmt.Sprintf("c%d", i)); resp.StatusCode != 201 {
				t.Fatalf("signup %d from loopback: %d %v", i, resp.StatusCode, body)
			}
		}
		signup(t, n, "d1", "X-Forwarded-For", "192.0.2.77")
		resp, body := signup(t, n, "d2", "X-Forwarded-For", "192.0.2.77")
		wantLimited(t, resp, body, 1000)
	})
}

func TestDeviceLimit(t *testing.T) {
	n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.DevicesPerUser = 2 })
	devs := n.signup(t, "alice", "phone", "laptop")
	resp, body := n.do(t, "POST", "/v1/sessions", "", loginBody("alice"))
	if resp.StatusCode != 409 || body["code"] != "too_many_devices" {
		t.Fatalf("a third device: %d %v, want 409 too_many_devices", resp.StatusCode, body)
	}
	if st, _ := n.call(t, "DELETE", "/v1/devices/"+devs[1].id, devs[0].token, nil); st != 204 {
		t.Fatal("revoke")
	}
	if resp, body := n.do(t, "POST", "/v1/sessions", "", loginBody("alice")); resp.StatusCode != 201 {
		t.Fatalf("a login after revoking one: %d %v", resp.StatusCode, body)
	}
}

func TestSendLimits(t *testing.T) {
	ct := base64.StdEncoding.EncodeToString([]byte("sealed"))
	t.Run("sends per device over HTTP: 429 with Retry-After", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.SendRate, cc.SendBurst = 0.5, 2 })
		a := n.signup(t, "alice", "phone")[0]
		conv := n.conversation(t, a, "group")
		for i := range 2 {
			if resp, body := n.do(t, "POST", "/v1/conversations/"+conv+"/messages", a.token, map[string]any{"id": fmt.Sprint(i), "ciphertext": ct}); resp.StatusCode != 201 {
				t.Fatalf("send %d: %d %v", i, resp.StatusCode, body)
			}
		}
		resp, body := n.do(t, "POST", "/v1/conversations/"+conv+"/messages", a.token, map[string]any{"id": "2", "ciphertext": ct})
		wantLimited(t, resp, body, 1)
	})
	t.Run("sends per conversation on sockets: an error frame with retry_after_ms and the id", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) {
			cc.Limits.SendPerConversation = chat.Rate{N: 2, Per: time.Minute}
		})
		a := n.signup(t, "alice", "phone")[0]
		b := n.signup(t, "bob", "phone")[0]
		conv := n.conversation(t, a, "direct", b.user)
		as, bs := n.dial(t, a.token), n.dial(t, b.token)
		as.expect(t, "synced")
		bs.expect(t, "synced")
		as.send(t, map[string]any{"type": "send", "id": "a1", "conversation": conv, "ciphertext": ct})
		as.expect(t, "sent")
		bs.send(t, map[string]any{"type": "send", "id": "b1", "conversation": conv, "ciphertext": ct})
		for f := bs.read(t); f["type"] != "sent"; f = bs.read(t) {
		}
		as.send(t, map[string]any{"type": "send", "id": "a2", "conversation": conv, "ciphertext": ct})
		for f := as.read(t); ; f = as.read(t) {
			if f["type"] == "message" {
				continue
			}
			if f["type"] != "error" || f["code"] != "rate_limited" || f["id"] != "a2" || f["retry_after_ms"].(float64) < 1000 {
				t.Fatalf("third send into the conversation: %v, want rate_limited for a2 with retry_after_ms", f)
			}
			break
		}
	})
}

func TestSocketLimits(t *testing.T) {
	t.Run("frames per socket: rate_limited past the burst, closed with 1008 when ignored", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.FramesPerSocket = chat.Rate{N: 5, Per: time.Minute} })
		a := n.signup(t, "alice", "phone")[0]
		s := n.dial(t, a.token)
		s.expect(t, "synced")
		for range 5 {
			s.send(t, map[string]any{"type": "ping"})
			s.expect(t, "pong")
		}
		s.send(t, map[string]any{"type": "ping", "id": "p6"})
		if f := s.expect(t, "error", "rate_limited"); f["id"] != "p6" || f["retry_after_ms"].(float64) < 11000 {
			t.Fatalf("sixth frame: %v, want rate_limited naming p6, retry in about 12 s", f)
		}
		for range 20 {
			s.send(t, map[string]any{"type": "ping"})
		}
		for {
			f, err := s.readErr(5 * time.Second)
			if err != nil {
				if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
					t.Fatalf("a socket that ignores rate_limited: %v, want close 1008", err)
				}
				break
			}
			if f["code"] != "rate_limited" {
				t.Fatalf("got %v while flooding", f)
			}
		}
		other := n.dial(t, n.signup(t, "bob", "phone")[0].token)
		other.expect(t, "synced")
		other.send(t, map[string]any{"type": "ping"})
		other.expect(t, "pong")
	})
	t.Run("bytes per device: frames and request bodies share the budget", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) {
			cc.Limits.BytesPerDevice = chat.Rate{N: 4 << 10, Per: time.Minute}
		})
		a := n.signup(t, "alice", "phone")[0]
		conv := n.conversation(t, a, "group")
		s := n.dial(t, a.token)
		s.expect(t, "synced")
		pad := strings.Repeat("x", 1500)
		for range 2 {
			s.send(t, map[string]any{"type": "ping", "pad": pad})
			s.expect(t, "pong")
		}
		s.send(t, map[string]any{"type": "ping", "id": "big", "pad": pad})
		if f := s.expect(t, "error", "rate_limited"); f["id"] != "big" {
			t.Fatalf("third 1.5 KB frame within 4 KiB a minute: %v", f)
		}
		resp, body := n.do(t, "POST", "/v1/conversations/"+conv+"/messages", a.token, map[string]any{"id": "h1", "ciphertext": []byte(pad)})
		wantLimited(t, resp, body, 1)
		if resp, _ := n.do(t, "GET", "/v1/conversations", a.token, nil); resp.StatusCode != 200 {
			t.Fatalf("a request without a body after the budget is spent: %d", resp.StatusCode)
		}
	})
	t.Run("connections per address: refused at the upgrade with 429, a device's reconnect is not", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.ConnsPerIP = 2 })
		a := n.signup(t, "alice", "phone")[0]
		b := n.signup(t, "bob", "phone")[0]
		c := n.signup(t, "carol", "phone")[0]
		as, bs := n.dial(t, a.token), n.dial(t, b.token)
		as.expect(t, "synced")
		bs.expect(t, "synced")
		wantUpgradeLimited(t, n, c.token)
		again := n.dial(t, a.token) // alice's phone reconnects before its old socket is gone
		again.expect(t, "synced")
		if _, err := as.readErr(5 * time.Second); websocket.CloseStatus(err) != server.CloseReplaced {
			t.Fatalf("the replaced socket: %v", err)
		}
		bs.c.Close(websocket.StatusNormalClosure, "")
		waitFor(t, func() bool { c, _, _ := tryDial(t, n, c.token); return c != nil })
	})
	t.Run("connections per user: a third device of one user is refused from any address", func(t *testing.T) {
		n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.ConnsPerUser = 2 })
		devs := n.signup(t, "alice", "phone", "laptop", "tablet")
		for _, d := range devs[:2] {
			n.dial(t, d.token).expect(t, "synced")
		}
		wantUpgradeLimited(t, n, devs[2].token)
	})
}

// wantUpgradeLimited dials with tok and wants a 429 rate_limited problem with Retry-After, before any upgrade.
func wantUpgradeLimited(t *testing.T, n *node, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err == nil {
		c.CloseNow()
		t.Fatal("the upgrade past the limit succeeded")
	}
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &body)
	wantLimited(t, resp, body, 1)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met within 5 s")
}

func TestDefaultLimitsLeaveLoopbackAlone(t *testing.T) {
	// A load generator on the node's host makes thousands of accounts, logins
	// and sockets from loopback: the per-address limits must not get in its way.
	n := startNode(t, backends[0].open(t))
	d := chat.DefaultLimits
	var users []string
	for i := range int(d.SignupPerIP.N) + 3 {
		users = append(users, fmt.Sprintf("u%d", i))
		n.signup(t, users[i])
	}
	logins := 0
	for logins <= int(d.LoginPerIP.N) {
		for _, u := range users {
			n.login(t, u, "phone")
			logins++
		}
	}
}
