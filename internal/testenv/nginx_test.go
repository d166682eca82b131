package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestNGINX runs the deployed configuration in front of two stand-in nodes
// that answer with their name and what they were told about the client.
func TestNGINX(t *testing.T) {
	var backends []string
	for _, name := range []string{"a", "b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				fmt.Fprintf(w, "%s %s|%s|%s", name, r.Header.Get("X-Real-IP"), r.Header.Get("X-Forwarded-For"), r.URL.RequestURI())
				return
			}
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			ctx := r.Context()
			_, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			_ = c.Write(ctx, websocket.MessageText, append([]byte(name+" "), msg...))
			c.Close(websocket.StatusNormalClosure, "")
		}))
		t.Cleanup(srv.Close)
		backends = append(backends, srv.URL)
	}
	ng := NGINX(t, backends)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.ErrorLog())
		}
	})

	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(ng.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("a device's requests always reach the same node", func(t *testing.T) {
		nodes := map[string]string{}
		for d := range 40 {
			dev := fmt.Sprintf("dev_%02d", d)
			for range 3 {
				st, body := get(t, "/v1/ws?device="+dev)
				if st != 200 {
					t.Fatalf("GET: %d %s", st, body)
				}
				node, _, _ := strings.Cut(body, " ")
				if prev, ok := nodes[dev]; ok && prev != node {
					t.Fatalf("%s went to node %s, then to %s", dev, prev, node)
				}
				nodes[dev] = node
			}
		}
		if count := countValues(nodes); len(count) != 2 {
			t.Fatalf("40 devices went to nodes %v, want both used", count)
		}
	})

	t.Run("requests without a device spread over the nodes", func(t *testing.T) {
		seen := map[string]int{}
		for range 40 {
			_, body := get(t, "/v1/conversations")
			node, _, _ := strings.Cut(body, " ")
			seen[node]++
		}
		if len(seen) != 2 {
			t.Fatalf("40 API requests went to %v, want both nodes", seen)
		}
	})

	t.Run("the node is told the client's address and the request as sent", func(t *testing.T) {
		_, body := get(t, "/healthz?x=1")
		if _, rest, _ := strings.Cut(body, " "); rest != "127.0.0.1|127.0.0.1|/healthz?x=1" {
			t.Fatalf("node saw %q, want X-Real-IP and X-Forwarded-For 127.0.0.1", body)
		}
	})

	t.Run("metrics and anything outside the API are not proxied", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/readyz", "/debug/pprof/", "/"} {
			if st, body := get(t, path); st != 404 || strings.Contains(body, "|") {
				t.Errorf("GET %s: %d %q, want NGINX's own 404", path, st, body)
			}
		}
	})

	t.Run("a WebSocket goes through to the device's node", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, want := get(t, "/v1/ws?device=dev_ws")
		c, _, err := websocket.Dial(ctx, "ws://"+ng.Addr+"/v1/ws?device=dev_ws", nil)
		if err != nil {
			t.Fatalf("dial through nginx: %v", err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if node, _, _ := strings.Cut(want, " "); string(msg) != node+" hello" {
			t.Fatalf("echo %q, want %q from the node plain requests of the device reach", msg, node+" hello")
		}
	})
}

func countValues(m map[string]string) map[string]int {
	out := map[string]int{}
	for _, v := range m {
		out[v]++
	}
	return out
}
