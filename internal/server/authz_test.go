package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/media"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/wire"
)

// The credentials every endpoint and every frame type is tried with
// (docs/security.md, "Authorization").
const (
	credNone      = "no token"
	credMalformed = "a malformed token"
	credExpired   = "an expired token"
	credRevoked   = "a revoked device's token"
	credOther     = "another user's token" // bob: not the owner of alice's device, a member of her conversation
	credNonMember = "a non-member's token" // eve: in none of alice's conversations
)

var creds = []string{credNone, credMalformed, credExpired, credRevoked, credOther, credNonMember}

// answer is what a call gets: an HTTP status and problem code, or for a
// frame, the type of the answer frame and its error code.
type answer struct {
	status int
	code   string
}

func (a answer) String() string { return strconv.Itoa(a.status) + " " + a.code }

var unauthorized = answer{401, "unauthorized"}

// sameForAll is the answer of a route that ignores tokens.
func sameForAll(a answer) map[string]answer {
	m := map[string]answer{}
	for _, c := range creds {
		m[c] = a
	}
	return m
}

// tokenNeeded is the answer of a route that needs a valid token: 401 for
// every bad one, and the given answers for bob and eve.
func tokenNeeded(other, nonMember answer) map[string]answer {
	return map[string]answer{credNone: unauthorized, credMalformed: unauthorized, credExpired: unauthorized,
		credRevoked: unauthorized, credOther: other, credNonMember: nonMember}
}

// matrix is the fixture: alice owns a device and a conversation with bob;
// eve is in none of her conversations.
type matrix struct {
	n               *node
	alice, bob, eve device
	conv            string
	target          string // a user in no conversation, whom anyone may block
	attachment      string // bob's, sent in conv
	tokens          map[string]string
	seq             atomic.Int64
	advance         func(time.Duration)
}

func newMatrix(t *testing.T) *matrix {
	clock := &atomic.Int64{}
	clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	n := startNode(t, backends[0].open(t), func(cc *chat.Config, sc *server.Config) {
		cc.Now, cc.SessionTTL = now, time.Hour
		sc.Pprof = true
	}, withMedia(t.TempDir(), media.Config{}))
	m := &matrix{n: n, advance: func(d time.Duration) { clock.Add(int64(d)) }}
	stale := n.signup(t, "alice", "stale")[0] // its token expires first
	m.advance(30 * time.Minute)
	m.alice = n.login(t, "alice", "phone")
	laptop := n.login(t, "alice", "laptop")
	m.bob = n.signup(t, "bob", "phone")[0]
	m.eve = n.signup(t, "eve", "phone")[0]
	n.signup(t, "matrix-login")
	m.target = n.signup(t, "matrix-target", "phone")[0].user
	m.conv = n.conversation(t, m.alice, "direct", m.bob.user)
	// bob's, so that his sockets have no backlog (a sender's own device
	// gets none); TestAttachmentAccess has a member who is not the owner.
	m.attachment = sentAttachment(t, n, m.bob, m.conv)
	if st, body := n.call(t, "DELETE", "/v1/devices/"+laptop.id, m.alice.token, nil); st != 204 {
		t.Fatalf("revoke the laptop: %d %v", st, body)
	}
	m.advance(31 * time.Minute) // stale's hour is over; the others have 29 minutes left
	m.tokens = map[string]string{credNone: "", credMalformed: "not a token!", credExpired: stale.token,
		credRevoked: laptop.token, credOther: m.bob.token, credNonMember: m.eve.token}
	return m
}

// httpRow is one endpoint: how to call it and what each credential gets.
type httpRow struct {
	pattern string
	admin   bool // a route of the admin listener (--admin-addr), called there
	request func(m *matrix) (method, path string, body any)
	want    map[string]answer
	check   func(t *testing.T, m *matrix, cred string, body []byte) // more about a success, optional
}

var httpRows = []httpRow{
	{pattern: "GET /healthz", want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/healthz", nil }},
	{pattern: "GET /readyz", want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/readyz", nil }},
	{pattern: "POST /v1/accounts", want: sameForAll(answer{201, ""}),
		request: func(m *matrix) (string, string, any) {
			return "POST", "/v1/accounts", map[string]string{"username": fmt.Sprintf("new%d", m.seq.Add(1)), "password": "password-new"}
		}},
	{pattern: "POST /v1/sessions", want: sameForAll(answer{201, ""}),
		request: func(m *matrix) (string, string, any) {
			dev := newKeys()
			dev["name"] = "matrix"
			return "POST", "/v1/sessions", map[string]any{"username": "matrix-login", "password": "password-matrix-login", "device": dev}
		}},
	{pattern: "GET /v1/users/{user}/devices", want: tokenNeeded(answer{200, ""}, answer{200, ""}),
		request: func(m *matrix) (string, string, any) { return "GET", "/v1/users/" + m.alice.user + "/devices", nil }},
	{pattern: "DELETE /v1/devices/{device}", want: tokenNeeded(answer{404, "not_found"}, answer{404, "not_found"}),
		request: func(m *matrix) (string, string, any) { return "DELETE", "/v1/devices/" + m.alice.id, nil }},
	{pattern: "POST /v1/conversations", want: tokenNeeded(answer{201, ""}, answer{201, ""}),
		request: func(m *matrix) (string, string, any) {
			return "POST", "/v1/conversations", map[string]any{"kind": "group", "members": []string{}}
		}},
	{pattern: "GET /v1/conversations", want: tokenNeeded(answer{200, ""}, answer{200, ""}),
		request: func(m *matrix) (string, string, any) { return "GET", "/v1/conversations", nil },
		check: func(t *testing.T, m *matrix, cred string, body []byte) {
			if in := strings.Contains(string(body), m.conv); in != (cred == credOther) {
				t.Fatalf("alice's conversation listed: %v, want %v", in, cred == credOther)
			}
		}},
	{pattern: "GET /v1/conversations/{conv}/messages", want: tokenNeeded(answer{200, ""}, answer{403, "not_member"}),
		request: func(m *matrix) (string, string, any) { return "GET", "/v1/conversations/" + m.conv + "/messages", nil }},
	{pattern: "POST /v1/conversations/{conv}/messages", want: tokenNeeded(answer{201, ""}, answer{403, "not_member"}),
		request: func(m *matrix) (string, string, any) {
			return "POST", "/v1/conversations/" + m.conv + "/messages", map[string]any{"id": fmt.Sprintf("mx%d", m.seq.Add(1)), "ciphertext": []byte("sealed")}
		}},
	// Membership changes: alice's conversation is direct, so bob (a member) is refused its kind.
	{pattern: "POST /v1/conversations/{conv}/members", want: tokenNeeded(answer{409, "not_group"}, answer{403, "not_member"}),
		request: func(m *matrix) (string, string, any) {
			return "POST", "/v1/conversations/" + m.conv + "/members", map[string]any{"user_ids": []string{m.target}}
		}},
	{pattern: "DELETE /v1/conversations/{conv}/members/{user}", want: tokenNeeded(answer{409, "not_group"}, answer{403, "not_member"}),
		request: func(m *matrix) (string, string, any) {
			return "DELETE", "/v1/conversations/" + m.conv + "/members/" + m.alice.user, nil
		}},
	{pattern: "PATCH /v1/conversations/{conv}/members/{user}", want: tokenNeeded(answer{409, "not_group"}, answer{403, "not_member"}),
		request: func(m *matrix) (string, string, any) {
			return "PATCH", "/v1/conversations/" + m.conv + "/members/" + m.alice.user, map[string]any{"role": "admin"}
		}},
	// Blocks are the caller's own: there is no one else's to reach.
	{pattern: "POST /v1/blocks/{user}", want: tokenNeeded(answer{204, ""}, answer{204, ""}),
		request: func(m *matrix) (string, string, any) { return "POST", "/v1/blocks/" + m.target, nil }},
	{pattern: "DELETE /v1/blocks/{user}", want: tokenNeeded(answer{204, ""}, answer{204, ""}),
		request: func(m *matrix) (string, string, any) { return "DELETE", "/v1/blocks/" + m.target, nil }},
	// Media (media.go): images are public once stored; an attachment is
	// its owner's (bob) and its conversations' members', a 404 to others.
	{pattern: "POST /v1/media", want: tokenNeeded(answer{201, ""}, answer{201, ""}),
		request: func(m *matrix) (string, string, any) { return "POST", "/v1/media", rawBody(pngImage(8, 8)) }},
	{pattern: "GET /media/{name}", want: sameForAll(answer{404, "not_found"}),
		request: func(*matrix) (string, string, any) { return "GET", "/media/" + strings.Repeat("ab", 32) + ".webp", nil }},
	{pattern: "POST /v1/attachments", want: tokenNeeded(answer{201, ""}, answer{201, ""}),
		request: func(m *matrix) (string, string, any) { return "POST", "/v1/attachments", rawBody("sealed bytes") }},
	{pattern: "GET /v1/attachments/{id}", want: tokenNeeded(answer{200, ""}, answer{404, "not_found"}),
		request: func(m *matrix) (string, string, any) { return "GET", "/v1/attachments/" + m.attachment, nil }},
	// Presence only for those who share a conversation: the same 404 as an unknown user.
	{pattern: "GET /v1/users/{user}/presence", want: tokenNeeded(answer{200, ""}, answer{404, "not_found"}),
		request: func(m *matrix) (string, string, any) { return "GET", "/v1/users/" + m.alice.user + "/presence", nil }},
	{pattern: "GET /v1/conversations/{conv}/receipts", want: tokenNeeded(answer{200, ""}, answer{403, "not_member"}),
		request: func(m *matrix) (string, string, any) { return "GET", "/v1/conversations/" + m.conv + "/receipts", nil }},
	// The caller's own account: there is no one else's to reach.
	{pattern: "PATCH /v1/accounts/me", want: tokenNeeded(answer{200, ""}, answer{200, ""}),
		request: func(m *matrix) (string, string, any) {
			return "PATCH", "/v1/accounts/me", map[string]any{"read_receipts": true}
		}},
	// The upgrade: a socket (101) or a problem document; frameRows say what its frames get.
	{pattern: "GET /v1/ws", want: tokenNeeded(answer{101, ""}, answer{101, ""})},
	{pattern: "/", want: sameForAll(answer{404, "not_found"}),
		request: func(*matrix) (string, string, any) { return "GET", "/v1/no-such-endpoint", nil }},
	// Operator routes are on the admin listener only (--admin-addr, loopback
	// by default) and take no token: that address must be private. pprof
	// exists only with --pprof.
	{pattern: "GET /healthz", admin: true, want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/healthz", nil }},
	{pattern: "GET /readyz", admin: true, want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/readyz", nil }},
	{pattern: "GET /metrics", admin: true, want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/metrics", nil }},
	{pattern: "GET /debug/pprof/", admin: true, want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/debug/pprof/", nil }},
	{pattern: "GET /debug/pprof/profile", admin: true, want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/debug/pprof/profile?seconds=1", nil }},
	{pattern: "GET /debug/pprof/trace", admin: true, want: sameForAll(answer{200, ""}),
		request: func(*matrix) (string, string, any) { return "GET", "/debug/pprof/trace?seconds=0.05", nil }},
}

// adminOnly are the admin listener's paths that the API listener must not
// serve: it answers them 404 like any unknown path.
var adminOnly = []string{"/metrics", "/debug/pprof/", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=0.05", "/debug/pprof/heap"}

// frameRows: what a socket's frame gets from each credential. A bad token
// never gets a socket (401 at the upgrade, the "GET /v1/ws" row), so only
// bob's and eve's answers are frames.
type frameRow struct {
	typ        string
	frame      func(m *matrix) map[string]any
	other, non answer // code is the answer frame's type, "error:" + its code, or "" for no answer
}

var frameRows = []frameRow{
	{"send", func(m *matrix) map[string]any {
		return map[string]any{"type": "send", "id": fmt.Sprintf("fx%d", m.seq.Add(1)), "conversation": m.conv, "ciphertext": []byte("sealed")}
	}, answer{code: "sent"}, answer{code: "error:not_member"}},
	{"ack", func(m *matrix) map[string]any {
		return map[string]any{"type": "ack", "conversation": m.conv, "seq": 1}
	}, answer{code: ""}, answer{code: "error:not_member"}},
	{"ping", func(*matrix) map[string]any { return map[string]any{"type": "ping"} },
		answer{code: "pong"}, answer{code: "pong"}},
	{"call", func(m *matrix) map[string]any { // an invite: the other member's devices ring, the caller gets nothing
		return map[string]any{"type": "call", "action": "invite", "call_id": fmt.Sprintf("cx%d", m.seq.Add(1)), "conversation": m.conv}
	}, answer{code: ""}, answer{code: "error:not_member"}},
	// A stranger's watch is ignored: no presence of alice for eve.
	{"presence_subscribe", func(m *matrix) map[string]any {
		return map[string]any{"type": "presence_subscribe", "users": []string{m.alice.user}}
	}, answer{code: "presence"}, answer{code: ""}},
	{"typing", func(m *matrix) map[string]any {
		return map[string]any{"type": "typing", "conversation": m.conv, "state": "start"}
	}, answer{code: ""}, answer{code: "error:not_member"}},
	{"read", func(m *matrix) map[string]any {
		return map[string]any{"type": "read", "conversation": m.conv, "seq": 0}
	}, answer{code: ""}, answer{code: "error:not_member"}},
}

// TestAuthorizationMatrix calls every HTTP endpoint and every socket frame
// type with each credential and checks the documented answer. A route or a
// frame type without a row fails it: add the row (and the docs) with the code.
func TestAuthorizationMatrix(t *testing.T) {
	t.Run("every route has a row and every row a route", func(t *testing.T) {
		for _, admin := range []bool{false, true} {
			routes := server.RouteAccess(server.Config{Pprof: true})
			if admin {
				routes = server.AdminRouteAccess(server.Config{Pprof: true})
			}
			for pattern, access := range routes {
				if !slices.ContainsFunc(httpRows, func(r httpRow) bool { return r.pattern == pattern && r.admin == admin }) {
					t.Errorf("route %q (%s, admin listener %v) has no row in the authorization matrix", pattern, access, admin)
				}
			}
			for _, r := range httpRows {
				if _, ok := routes[r.pattern]; !ok && r.admin == admin {
					t.Errorf("row %q (admin listener %v) matches no route", r.pattern, admin)
				}
			}
		}
	})

	m := newMatrix(t)
	for _, path := range adminOnly {
		t.Run("the API listener answers "+path+" with 404", func(t *testing.T) {
			if st, _, raw := rawCall(t, m.n, "GET", path, "", nil); st != 404 {
				t.Fatalf("got %d %.80q, want 404: /metrics and pprof are on the admin listener only", st, raw)
			}
		})
	}
	t.Run("every frame type the node handles has a row", func(t *testing.T) {
		handled := frameTypesHandled(t)
		for _, typ := range wire.ClientTypes {
			if !slices.Contains(handled, typ) {
				t.Errorf("client frame type %q of package wire is not handled in ws.go", typ)
			}
		}
		for _, typ := range handled {
			if !slices.ContainsFunc(frameRows, func(r frameRow) bool { return r.typ == typ }) {
				t.Errorf("frame type %q has no row in the authorization matrix", typ)
			}
		}
		for _, r := range frameRows {
			if !slices.Contains(handled, r.typ) {
				t.Errorf("row %q is not a frame type ws.go handles (%v)", r.typ, handled)
			}
		}
	})

	for _, row := range httpRows {
		for _, cred := range creds {
			want := row.want[cred]
			where := ""
			if row.admin {
				where = " on the admin listener"
			}
			t.Run(fmt.Sprintf("%s%s with %s gets %s", row.pattern, where, cred, want), func(t *testing.T) {
				if row.request == nil { // the upgrade
					c, status, body := tryDial(t, m.n, m.tokens[cred])
					got := answer{status: status}
					if c != nil {
						(&socket{c}).expect(t, "synced")
						c.Close(websocket.StatusNormalClosure, "")
					} else {
						var p struct{ Code string }
						json.Unmarshal([]byte(body), &p)
						got.code = p.Code
					}
					if got != want {
						t.Fatalf("got %v (%q), want %v", got, body, want)
					}
					return
				}
				method, path, body := row.request(m)
				n := m.n
				if row.admin {
					n = &node{url: m.n.admin}
				}
				st, ct, raw := rawCall(t, n, method, path, m.tokens[cred], body)
				got := answer{status: st}
				if st >= 400 {
					var p struct{ Code string }
					if ct != "application/problem+json" || json.Unmarshal(raw, &p) != nil {
						t.Fatalf("%d is not a problem document: %s %q", st, ct, raw)
					}
					got.code = p.Code
				}
				if got != want {
					t.Fatalf("got %v (%q), want %v", got, raw, want)
				}
				if row.check != nil {
					row.check(t, m, cred, raw)
				}
			})
		}
	}

	sockets := map[string]*socket{credOther: m.n.dial(t, m.bob.token), credNonMember: m.n.dial(t, m.eve.token)}
	for _, s := range sockets {
		s.expect(t, "synced")
	}
	for _, row := range frameRows {
		for _, cred := range creds {
			want := map[string]answer{credOther: row.other, credNonMember: row.non}[cred]
			if cred != credOther && cred != credNonMember {
				t.Run(fmt.Sprintf("frame %s with %s: no socket (401 at the upgrade)", row.typ, cred), func(t *testing.T) {
					if c, status, _ := tryDial(t, m.n, m.tokens[cred]); c != nil || status != 401 {
						t.Fatalf("upgrade: socket %v, %d", c != nil, status)
					}
				})
				continue
			}
			name := "no answer"
			if want.code != "" {
				name = want.code
			}
			t.Run(fmt.Sprintf("frame %s with %s gets %s", row.typ, cred, name), func(t *testing.T) {
				s := sockets[cred]
				s.send(t, row.frame(m))
				s.send(t, map[string]any{"type": "ping"}) // a fence: what comes before pong answers the frame
				var got []string
				for f := s.read(t); ; f = s.read(t) {
					typ, _ := f["type"].(string)
					if typ == "message" || typ == "devices_changed" {
						continue // deliveries, not answers
					}
					if typ == "error" {
						typ += ":" + f["code"].(string)
					}
					if typ == "pong" && (row.typ != "ping" || len(got) == 1) {
						break
					}
					got = append(got, typ)
				}
				wantList := []string{}
				if want.code != "" {
					wantList = []string{want.code}
				}
				if !slices.Equal(got, wantList) {
					t.Fatalf("answers %v, want %v", got, wantList)
				}
			})
		}
	}

	t.Run("nothing above changed alice's device", func(t *testing.T) {
		if st, _ := m.n.call(t, "GET", "/v1/conversations", m.alice.token, nil); st != 200 {
			t.Fatalf("alice's token after the matrix: %d", st)
		}
	})

	t.Run("a socket whose token expires while open is closed with 4003", func(t *testing.T) {
		s := sockets[credOther]
		idle := sockets[credNonMember]
		m.advance(30 * time.Minute) // bob's and eve's hour is over
		s.send(t, map[string]any{"type": "ping"})
		if _, err := s.readErr(5 * time.Second); websocket.CloseStatus(err) != server.CloseSessionExpired {
			t.Fatalf("sending socket after expiry: %v, want close 4003", err)
		}
		server.CloseExpired(m.n.srv) // the sweeper's pass: the idle socket goes too
		if _, err := idle.readErr(5 * time.Second); websocket.CloseStatus(err) != server.CloseSessionExpired {
			t.Fatalf("idle socket after expiry: %v, want close 4003", err)
		}
		if c, status, _ := tryDial(t, m.n, m.bob.token); c != nil || status != 401 {
			t.Fatalf("reconnect with the expired token: socket %v, %d; want 401", c != nil, status)
		}
	})
}

// wireTypes are the client frame types ws.go names, by their wire constant.
var wireTypes = map[string]string{"TypeSend": wire.TypeSend, "TypeAck": wire.TypeAck, "TypePing": wire.TypePing, "TypeCall": wire.TypeCall,
	"TypePresenceSubscribe": wire.TypePresenceSubscribe, "TypeTyping": wire.TypeTyping, "TypeRead": wire.TypeRead}

// frameTypesHandled reads ws.go and returns the cases (strings or wire
// constants) of its switches on a frame's Type: the frame types the node handles.
func frameTypesHandled(t *testing.T) []string {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "ws.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	ast.Inspect(file, func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok {
			return true
		}
		sel, ok := sw.Tag.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Type" {
			return true
		}
		for _, stmt := range sw.Body.List {
			for _, e := range stmt.(*ast.CaseClause).List {
				s := ""
				switch e := e.(type) {
				case *ast.BasicLit:
					s, _ = strconv.Unquote(e.Value)
				case *ast.SelectorExpr: // wire.TypeSend
					if s = wireTypes[e.Sel.Name]; s == "" {
						t.Fatalf("ws.go switches on %s, which is not a wire frame type: teach frameTypesHandled", e.Sel.Name)
					}
				}
				if s != "" && !slices.Contains(types, s) {
					types = append(types, s)
				}
			}
		}
		return true
	})
	if len(types) == 0 {
		t.Fatal("found no switch on a frame's Type in ws.go: teach frameTypesHandled where the frame types are")
	}
	return types
}

// rawCall is call for answers that need not be JSON: status, Content-Type, body.
func rawCall(t *testing.T, n *node, method, path, tok string, body any) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if b, ok := body.(rawBody); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), raw
}

// tryDial opens a socket with tok, or returns the refusal's status and body.
func tryDial(t *testing.T, n *node, tok string) (*websocket.Conn, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{}
	if tok != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + tok}}
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws", opts)
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, 101, ""
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, string(raw)
}
