package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

func TestOrigins(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) {
		sc.AllowedOrigins = []string{"https://chat.example.com", "http://localhost:3000/"}
	})
	d := n.signup(t, "alice", "browser")[0]
	self := n.url // the node's own origin: not on the list, so not allowed either
	dial := func(origin string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h := http.Header{"Authorization": {"Bearer " + d.token}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws", &websocket.DialOptions{HTTPHeader: h})
	}
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{"https://chat.example.com", true},
		{"HTTPS://Chat.Example.com:443", true},
		{"http://localhost:3000", true},
		{"https://evil.example", false},
		{"https://chat.example.com.evil.example", false},
		{"http://chat.example.com", false},
		{"null", false},
		{self, false},
	} {
		name := fmt.Sprintf("a socket with Origin %q is refused", tc.origin)
		if tc.ok {
			name = fmt.Sprintf("a socket with Origin %q opens", tc.origin)
		}
		t.Run(name, func(t *testing.T) {
			c, resp, err := dial(tc.origin)
			if tc.ok {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				(&socket{c}).expect(t, "synced")
				c.Close(websocket.StatusNormalClosure, "")
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("upgraded")
			}
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 403 || !strings.Contains(string(raw), `"origin_not_allowed"`) {
				t.Fatalf("got %d %q, want 403 origin_not_allowed", resp.StatusCode, raw)
			}
		})
	}
	t.Run("an API request from a disallowed origin is refused before its handler", func(t *testing.T) {
		resp, body := n.do(t, "POST", "/v1/accounts", "", map[string]string{"username": "csrf", "password": "password-csrf"}, "Origin", "https://evil.example")
		if resp.StatusCode != 403 || body["code"] != "origin_not_allowed" {
			t.Fatalf("got %d %v", resp.StatusCode, body)
		}
		if resp, _ := n.do(t, "POST", "/v1/sessions", "", loginBody("csrf")); resp.StatusCode != 401 {
			t.Fatalf("the account was created anyway: login got %d", resp.StatusCode)
		}
	})
	t.Run("CORS: an allowed origin is named, with Retry-After exposed", func(t *testing.T) {
		resp, _ := n.do(t, "GET", "/v1/conversations", d.token, nil, "Origin", "https://chat.example.com")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.com" ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") || resp.Header.Get("Vary") != "Origin" {
			t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
		}
		resp, _ = n.do(t, "GET", "/v1/conversations", d.token, nil)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("Access-Control-Allow-Origin on a request without Origin")
		}
	})
	t.Run("CORS: a preflight from an allowed origin is answered 204", func(t *testing.T) {
		resp, _ := n.do(t, "OPTIONS", "/v1/conversations", "", nil, "Origin", "http://localhost:3000",
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("got %d %v", resp.StatusCode, h)
		}
	})
	t.Run("CORS: a preflight from another origin is refused", func(t *testing.T) {
		resp, body := n.do(t, "OPTIONS", "/v1/conversations", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
		if resp.StatusCode != 403 || body["code"] != "origin_not_allowed" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("got %d %v %v", resp.StatusCode, body, resp.Header)
		}
	})
}

func TestAnyOrigin(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) { sc.AllowedOrigins = []string{"*"} })
	resp, _ := n.do(t, "GET", "/healthz", "", nil, "Origin", "https://anywhere.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://anywhere.example" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
}

func TestSecurityHeaders(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	d := n.signup(t, "alice", "phone")[0]
	for _, tc := range []struct {
		name, method, path, token string
	}{
		{"a JSON answer", "GET", "/v1/conversations", d.token},
		{"a refusal", "GET", "/v1/conversations", ""},
		{"an unknown path", "GET", "/nope", ""},
		{"health", "GET", "/healthz", ""},
		{"a refused upgrade", "GET", "/v1/ws", ""},
	} {
		t.Run(tc.name+" carries the security headers", func(t *testing.T) {
			resp, _ := n.do(t, tc.method, tc.path, tc.token, nil)
			for k, v := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
				"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
				"X-Frame-Options":         "DENY",
			} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRequestTimeouts(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) { sc.RequestTimeout = 300 * time.Millisecond })
	host := strings.TrimPrefix(n.url, "http://")
	closedWithin := func(t *testing.T, c net.Conn, d time.Duration) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(d))
		start := time.Now()
		_, err := io.Copy(io.Discard, c) // until the node closes it
		if err != nil {
			t.Fatalf("the node did not close the connection within %v: %v", d, err)
		}
		if time.Since(start) < 200*time.Millisecond {
			t.Fatalf("closed after %v, before the timeout", time.Since(start))
		}
	}
	for _, tc := range []struct{ name, sent string }{
		{"a connection that sends nothing", ""},
		{"half a request head", "GET /healthz HTTP/1.1\r\nHost: x\r\n"},
		{"a head and half its body", "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"username\":"},
	} {
		t.Run(tc.name+" is closed after the request timeout", func(t *testing.T) {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.sent)
			closedWithin(t, c, 3*time.Second)
		})
	}
	t.Run("an idle kept-alive connection is closed after the request timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		closedWithin(t, c, 3*time.Second)
	})
	t.Run("an upgraded socket is not subject to it", func(t *testing.T) {
		s := n.dial(t, n.signup(t, "alice", "phone")[0].token)
		s.expect(t, "synced")
		time.Sleep(time.Second)
		s.send(t, map[string]any{"type": "ping"})
		s.expect(t, "pong")
	})
}

func TestBodyLimitAtTheGateway(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) { sc.MaxBody = 4096 })
	t.Run("a body a little over --max-body gets 413 too_large", func(t *testing.T) {
		resp, body := n.do(t, "POST", "/v1/accounts", "", map[string]string{"username": "x", "password": strings.Repeat("p", 8000)})
		if resp.StatusCode != 413 || body["code"] != "too_large" {
			t.Fatalf("got %d %v", resp.StatusCode, body)
		}
	})
	t.Run("a body far over it is never buffered: the connection is closed", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 8<<20)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		chunk := []byte(strings.Repeat("a", 64<<10))
		var werr error
		for i := 0; i < 128 && werr == nil; i++ {
			_, werr = c.Write(chunk)
		}
		if werr == nil {
			raw, _ := io.ReadAll(c)
			if strings.HasPrefix(string(raw), "HTTP/1.1 2") {
				t.Fatalf("an 8 MiB body was accepted: %q", raw)
			}
		}
	})
}
