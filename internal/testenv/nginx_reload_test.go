package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/deploy/nginx"
)

// standIn is a stand-in node: plain requests get its name and the address
// the request came from; a WebSocket gets its name, then is held open.
func standIn(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "%s %s", name, host)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if c.Write(r.Context(), websocket.MessageText, []byte(name)) != nil {
			return
		}
		_, _, _ = c.Read(r.Context()) // until either side closes
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// get asks NGINX for path and returns the stand-in's name and the address
// the request reached it from.
func get(t *testing.T, ng *NGINXServer, path string) (node, from string) {
	t.Helper()
	resp, err := http.Get(ng.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	node, from, _ = strings.Cut(string(b), " ")
	return node, from
}

// TestNGINXReload: after Reload with one more node, the devices the new
// node takes go there and no other device moves (the consistent hash);
// a WebSocket opened before the reload is closed by its old worker at
// worker_shutdown_timeout.
func TestNGINXReload(t *testing.T) {
	a, b := standIn(t, "a"), standIn(t, "b")
	ng := NGINXWith(t, nginx.Private{Upstreams: []string{a, b}, ShutdownTimeout: time.Second})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.ErrorLog())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+ng.Addr+"/v1/ws?device=held", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, msg, err := ws.Read(ctx); err != nil || (string(msg) != "a" && string(msg) != "b") {
		t.Fatalf("socket before the reload: %q %v", msg, err)
	}

	devices := make([]string, 60)
	before := map[string]string{}
	for i := range devices {
		devices[i] = fmt.Sprintf("dev_%02d", i)
		before[devices[i]], _ = get(t, ng, "/v1/ws?device="+devices[i])
	}
	ng.Reload(t, []string{a, b, standIn(t, "c")})
	moved := 0
	for _, d := range devices {
		switch node, _ := get(t, ng, "/v1/ws?device="+d); {
		case node == "c":
			moved++
		case node != before[d]:
			t.Errorf("%s moved from %s to %s, not to the new node", d, before[d], node)
		}
	}
	if moved == 0 || moved == len(devices) {
		t.Errorf("%d of %d devices went to the new node, want some", moved, len(devices))
	}

	// The old worker holds the socket until worker_shutdown_timeout (1 s
	// here), then closes it; the stand-in never does.
	if _, msg, err := ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("the socket opened before the reload is still open (read %q, %v)", msg, err)
	}
}

// TestNGINXBindAddrs: with BindAddrs, the connections of sockets to the
// nodes leave from those addresses, split by device, each device always
// from the same one; API requests are not bound.
func TestNGINXBindAddrs(t *testing.T) {
	binds := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}
	ng := NGINXWith(t, nginx.Private{Upstreams: []string{standIn(t, "a")}, BindAddrs: binds})
	used := map[string]int{}
	for i := range 60 {
		path := fmt.Sprintf("/v1/ws?device=dev_%02d", i)
		_, from := get(t, ng, path)
		if !slices.Contains(binds, from) {
			t.Fatalf("%s reached the node from %s, not one of %v", path, from, binds)
		}
		if _, again := get(t, ng, path); again != from {
			t.Errorf("%s came from %s, then from %s", path, from, again)
		}
		used[from]++
	}
	if len(used) != len(binds) {
		t.Errorf("60 devices came from %v, want all of %v", used, binds)
	}
	if _, from := get(t, ng, "/healthz"); from != "127.0.0.1" {
		t.Errorf("an API request came from %s, want 127.0.0.1 (not bound)", from)
	}
}
