package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// bare is the whole server: in-memory accounts and tokens, the open sockets
// and the broadcast loop.
type bare struct {
	cfg Config
	log *slog.Logger
	gw  *gateway.Server

	amu      sync.Mutex
	accounts map[string]account  // by username
	tokens   map[string]identity // by bearer token
	nextID   atomic.Int64        // users, devices and conversations

	mu    sync.Mutex
	conns []*gateway.Conn // open sockets; a socket's device.idx is its place here

	bmu  sync.Mutex // one broadcast at a time: seq order, and snap is reused
	seq  int64
	snap []*gateway.Conn
}

type account struct {
	userID, password string
}

type identity struct {
	UserID   string
	DeviceID string
}

// device is a socket's state (gateway.Conn.State).
type device struct {
	id     identity
	idx    int  // guarded by bare.mu
	listed bool // guarded by bare.mu
}

var _ gateway.Handler = (*bare)(nil)

func newBare(cfg Config, log *slog.Logger) *bare {
	b := &bare{cfg: cfg, log: log, accounts: map[string]account{}, tokens: map[string]identity{}}
	b.gw = gateway.New(gateway.Config{Addr: cfg.Addr, Handler: b.routes(), MaxFrame: cfg.MaxFrame,
		MaxQueued: cfg.MaxQueued, PingInterval: cfg.PingInterval, RequestTimeout: cfg.RequestTimeout, Logger: log}, b)
	return b
}

func (b *bare) start() error { return b.gw.Start() }

func (b *bare) routes() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.Handle("GET /metrics", b.metrics())
	mux.HandleFunc("POST /v1/accounts", b.createAccount)
	mux.HandleFunc("POST /v1/sessions", b.createSession)
	mux.HandleFunc("POST /v1/conversations", b.createConversation)
	mux.HandleFunc("GET /v1/ws", b.upgrade)
	mux.HandleFunc("POST /bench/broadcast", b.benchBroadcast)
	if b.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, wire.CodeNotFound, "sbbare serves only what sbload needs: no "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// metrics serves the same process and Go collectors as a node.
func (b *bare) metrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sbbare_sockets_open", Help: "WebSocket connections open.",
		}, func() float64 { return float64(b.gw.Count()) }),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true}) // as the node's
}

func (b *bare) newID(prefix string) string {
	return prefix + strconv.FormatInt(b.nextID.Add(1), 36)
}

func (b *bare) createAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Username == "" {
		writeProblem(w, http.StatusBadRequest, wire.CodeInvalidUsername, "username is empty")
		return
	}
	b.amu.Lock()
	_, taken := b.accounts[req.Username]
	id := b.newID("usr_")
	if !taken {
		b.accounts[req.Username] = account{userID: id, password: req.Password}
	}
	b.amu.Unlock()
	if taken {
		writeProblem(w, http.StatusConflict, wire.CodeUsernameTaken, "username is taken")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user_id": id})
}

// createSession logs in a new device. The device's keys are not kept.
func (b *bare) createSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string          `json:"username"`
		Password string          `json:"password"`
		Device   json.RawMessage `json:"device"`
	}
	if !decode(w, r, &req) {
		return
	}
	var tok [32]byte
	_, _ = rand.Read(tok[:])
	token := base64.RawURLEncoding.EncodeToString(tok[:])
	b.amu.Lock()
	a, ok := b.accounts[req.Username]
	ok = ok && a.password == req.Password
	id := identity{UserID: a.userID, DeviceID: b.newID("dev_")}
	if ok {
		b.tokens[token] = id
	}
	b.amu.Unlock()
	if !ok {
		writeProblem(w, http.StatusUnauthorized, wire.CodeBadCredentials, "wrong username or password")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user_id": id.UserID, "device_id": id.DeviceID, "token": token,
		"expires_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)})
}

// createConversation returns a new id and remembers nothing: every
// broadcast goes to every socket.
func (b *bare) createConversation(w http.ResponseWriter, r *http.Request) {
	if _, ok := b.authenticate(r); !ok {
		writeProblem(w, http.StatusUnauthorized, wire.CodeUnauthorized, "missing or unknown token")
		return
	}
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 16<<20))
	writeJSON(w, http.StatusCreated, map[string]string{"conversation_id": b.newID("cnv_")})
}

func (b *bare) authenticate(r *http.Request) (identity, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		token = r.URL.Query().Get("token")
	}
	b.amu.Lock()
	id, found := b.tokens[token]
	b.amu.Unlock()
	return id, found && token != ""
}

func (b *bare) upgrade(w http.ResponseWriter, r *http.Request) {
	id, ok := b.authenticate(r)
	if !ok {
		writeProblem(w, http.StatusUnauthorized, wire.CodeUnauthorized, "missing or unknown token")
		return
	}
	if _, err := b.gw.Upgrade(w, r, &device{id: id}); err != nil {
		b.log.Debug("upgrade failed", "err", err)
	}
}

var (
	syncedFrame = wire.AppendSynced(nil)
	pongFrame   = wire.AppendPong(nil)
)

// OnOpen lists the socket and tells it there is no backlog.
func (b *bare) OnOpen(c *gateway.Conn) {
	d := c.State().(*device)
	b.mu.Lock()
	d.idx, d.listed = len(b.conns), true
	b.conns = append(b.conns, c)
	b.mu.Unlock()
	_ = c.Write(syncedFrame)
}

// OnClose unlists the socket.
func (b *bare) OnClose(c *gateway.Conn) {
	d := c.State().(*device)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !d.listed {
		return
	}
	d.listed = false
	last := len(b.conns) - 1
	moved := b.conns[last]
	b.conns[d.idx] = moved
	moved.State().(*device).idx = d.idx
	b.conns[last] = nil
	b.conns = b.conns[:last]
}

// OnMessage answers send (sent to the sender, the message to every other
// socket), ping and ack; nothing is validated beyond what the frame needs.
func (b *bare) OnMessage(c *gateway.Conn, data []byte) {
	var head wire.Head
	var f wire.ClientFrame
	if headErr, err := wire.DecodeClientFrame(data, &head, &f); headErr != nil || err != nil {
		_ = c.Write(errorFrame(head.ID, wire.CodeBadFrame, "a frame is one JSON object"))
		return
	}
	switch f.Type {
	case wire.TypeSend:
		if f.ID == "" || f.Conversation == "" || len(f.Ciphertext) == 0 {
			_ = c.Write(errorFrame(f.ID, wire.CodeInvalidMessage, "sbbare needs id, conversation and one shared ciphertext"))
			return
		}
		b.broadcast(c, f.ID, f.Conversation, c.State().(*device).id, f.Ciphertext)
	case wire.TypePing:
		_ = c.Write(pongFrame)
	case wire.TypeAck:
	default:
		_ = c.Write(errorFrame(f.ID, wire.CodeUnknownType, "unknown frame type "+strconv.Quote(f.Type)))
	}
}

// benchBroadcast sends the request body (raw bytes, at most MaxFrame) as the
// ciphertext of one message to every socket.
func (b *bare) benchBroadcast(w http.ResponseWriter, r *http.Request) {
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(b.cfg.MaxFrame)))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, err.Error())
		return
	}
	conv := r.URL.Query().Get("conversation")
	if conv == "" {
		conv = "cnv_bench"
	}
	start := time.Now()
	seq, n := b.broadcast(nil, "", conv, identity{UserID: "usr_bench", DeviceID: "dev_bench"}, payload)
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "recipients": n, "write_loop_ms": float64(time.Since(start).Microseconds()) / 1000})
}

// broadcast encodes one message frame and writes it to every open socket
// but from (which gets sent, when it is a socket). It returns the message's
// seq and how many sockets took the frame.
func (b *bare) broadcast(from *gateway.Conn, clientID, conv string, sender identity, ciphertext []byte) (int64, int) {
	b.bmu.Lock()
	defer b.bmu.Unlock()
	b.seq++
	ts := wire.Time(time.Now())
	frame := make([]byte, 0, 160+len(conv)+len(sender.UserID)+len(sender.DeviceID)+base64.StdEncoding.EncodedLen(len(ciphertext)))
	frame = wire.AppendMessage(frame, &wire.Message{Conversation: conv, Seq: b.seq,
		Sender: wire.Sender{UserID: sender.UserID, DeviceID: sender.DeviceID}, TS: ts, Ciphertext: ciphertext})
	if from != nil {
		_ = from.Write(wire.AppendSent(nil, &wire.Sent{ID: clientID, Conversation: conv, Seq: b.seq, TS: ts}))
	}

	// A snapshot, so a socket that closes during the loop (its OnClose
	// takes b.mu) never waits for the loop.
	b.mu.Lock()
	b.snap = append(b.snap[:0], b.conns...)
	b.mu.Unlock()
	n := 0
	for i, c := range b.snap {
		if c != from && c.Write(frame) == nil {
			n++
		}
		b.snap[i] = nil
	}
	return b.seq, n
}

func errorFrame(id, code, msg string) []byte {
	b, _ := json.Marshal(wire.Error{Type: wire.TypeError, ID: id, Code: code, Message: msg})
	return b
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeProblem(w, http.StatusBadRequest, wire.CodeBadRequest, fmt.Sprintf("malformed JSON: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeProblem writes an RFC 9457 problem document, as a node does.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	b, _ := json.Marshal(wire.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail})
	w.Header().Set("Content-Type", wire.ProblemMediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
