package server_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/postgres"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// backends opens a fresh, migrated store of each kind; tests that cross the
// store run once per backend.
var backends = []struct {
	name string
	open func(t *testing.T) sb.Store
}{
	{"sqlite", func(t *testing.T) sb.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "sb.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"postgres", func(t *testing.T) sb.Store { return openPostgres(t, testenv.Postgres(t)) }},
}

func openPostgres(t *testing.T, url string) sb.Store {
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

type node struct {
	url   string
	admin string // the admin listener's base URL (/metrics)
	srv   *server.Server
	store sb.Store
	logs  *lockedWriter
}

// logText is everything the node logged so far.
func (n *node) logText() string {
	n.logs.mu.Lock()
	defer n.logs.mu.Unlock()
	return n.logs.w.String()
}

type nodeOption func(*chat.Config, *server.Config)

// startNode serves a node on a free loopback port until the test ends.
func startNode(t *testing.T, store sb.Store, opts ...nodeOption) *node {
	t.Helper()
	return startNodeOn(t, store, &inmem.Bus{}, slog.LevelInfo, opts...)
}

// startNodeOn is startNode with a given bus and log level.
func startNodeOn(t *testing.T, store sb.Store, bus sb.Bus, level slog.Level, opts ...nodeOption) *node {
	t.Helper()
	logs := &lockedWriter{w: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	cc := chat.Config{Argon2: chat.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Logger: log}
	sc := server.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Logger: log}
	for _, o := range opts {
		o(&cc, &sc)
	}
	svc := chat.New(store, bus, cc)
	if sc.Calls == nil {
		sc.Calls = calls.New(svc, &calls.MemoryKV{}, bus, calls.Config{Logger: log})
	}
	srv := server.New(svc, sc)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		sc.Calls.Close()
		bus.Close()
		store.Close()
	})
	n := &node{url: "http://" + srv.Addr().String(), srv: srv, store: store, logs: logs}
	if a := srv.AdminAddr(); a != nil {
		n.admin = "http://" + a.String()
	}
	return n
}

// lockedWriter lets the node log from many goroutines into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// call makes one JSON request and returns the status and the decoded body.
func (n *node) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s: error %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}

// device is a logged-in device of a test user.
type device struct {
	user, id, token string
}

func newKeys() map[string]any {
	k, _ := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	pub, _, _ := ed25519.GenerateKey(nil)
	return map[string]any{"kem": "x25519", "public_key": k.PublicKey().Bytes(), "signing_key": []byte(pub)}
}

// signup creates a user with one device per name in devices.
func (n *node) signup(t *testing.T, username string, devices ...string) []device {
	t.Helper()
	st, body := n.call(t, "POST", "/v1/accounts", "", map[string]string{"username": username, "password": "password-" + username})
	if st != 201 {
		t.Fatalf("create %s: %d %v", username, st, body)
	}
	var out []device
	for _, name := range devices {
		out = append(out, n.login(t, username, name))
	}
	return out
}

// login creates a new device of an existing test user.
func (n *node) login(t *testing.T, username, name string) device {
	t.Helper()
	dev := newKeys()
	dev["name"] = name
	st, body := n.call(t, "POST", "/v1/sessions", "", map[string]any{"username": username, "password": "password-" + username, "device": dev})
	if st != 201 {
		t.Fatalf("login %s: %d %v", username, st, body)
	}
	return device{body["user_id"].(string), body["device_id"].(string), body["token"].(string)}
}

func (n *node) conversation(t *testing.T, d device, kind string, members ...string) string {
	t.Helper()
	st, body := n.call(t, "POST", "/v1/conversations", d.token, map[string]any{"kind": kind, "members": members})
	if st != 201 {
		t.Fatalf("create conversation: %d %v", st, body)
	}
	return body["conversation_id"].(string)
}

// socket is a raw WebSocket for tests that must send what the SDK never would.
type socket struct {
	c *websocket.Conn
}

func (n *node) dial(t *testing.T, token string) *socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 22)
	t.Cleanup(func() { c.CloseNow() })
	return &socket{c}
}

func (s *socket) send(t *testing.T, v any) {
	t.Helper()
	var raw []byte
	if str, ok := v.(string); ok {
		raw = []byte(str)
	} else {
		raw, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.c.Write(ctx, websocket.MessageText, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, failing the test after 5 s.
func (s *socket) read(t *testing.T) map[string]any {
	t.Helper()
	f, err := s.readErr(5 * time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

func (s *socket) readErr(d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, raw, err := s.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("frame is not JSON: %q", raw)
	}
	return f, nil
}

// expect reads the next frame and checks its type (and code for errors).
func (s *socket) expect(t *testing.T, typ string, code ...string) map[string]any {
	t.Helper()
	f := s.read(t)
	if f["type"] != typ || (len(code) > 0 && f["code"] != code[0]) {
		t.Fatalf("got frame %v, want type %s %v", f, typ, code)
	}
	return f
}
