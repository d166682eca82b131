package client

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer speaks enough of docs/protocol.md to test the SDK without the
// real server: it authenticates the upgrade, replays every message above the
// device's cursor and then synced on each connection, answers sends (once
// per id), records acks, and lets a test publish messages, drop sockets and
// refuse upgrades. Its frames are written from its own literals, not from
// the SDK's types, so a wire mistake in the SDK is not mirrored here.
type fakeServer struct {
	t     *testing.T
	srv   *httptest.Server
	mux   *http.ServeMux
	token string

	// onSend, if set, answers a send frame instead of the default (store
	// once per id, answer sent). It runs on the socket's reader.
	onSend func(fc *fakeConn, f fakeSend)
	// refuse, if set and returning a status, refuses upgrade number n
	// (1-based) with a problem document.
	refuse func(n int) int

	mu       sync.Mutex
	seqs     map[string]int64          // last seq per conversation
	inbox    map[string][]fakeMessage  // messages for the device, per conversation
	cursors  map[string]int64          // acked, per conversation
	answers  map[string]map[string]any // sent frames by send id
	live     map[*fakeConn]bool
	attempts []time.Time // every upgrade request
	sends    []fakeSend  // every send frame received
	acks     []fakeAck   // every ack frame received
	others   []string    // every other frame received (presence_subscribe, typing, read), raw
	replayed [][]int64   // per socket (n-1), the seqs replayed on it

	conns chan *fakeConn // every accepted socket, after its synced
	wg    sync.WaitGroup
}

// fakeSend is a send frame as the fake reads it: base64 left as strings.
type fakeSend struct {
	Type         string            `json:"type"`
	ID           string            `json:"id"`
	Conversation string            `json:"conversation"`
	Ciphertexts  map[string]string `json:"ciphertexts"`
	Ciphertext   *string           `json:"ciphertext"`
}

type fakeAck struct {
	Conversation string
	Seq          int64
}

type fakeMessage struct {
	seq int64
	ts  string
	ct  []byte
}

// fakeConn is one accepted socket; n counts them from 1.
type fakeConn struct {
	f  *fakeServer
	ws *websocket.Conn
	n  int
}

const fakeToken = "tok_good"

// newFake starts a fake server; it and everything the test started are
// checked for leaked goroutines when the test ends.
func newFake(t *testing.T) *fakeServer {
	t.Helper()
	checkNoLeaks(t)
	f := &fakeServer{
		t:       t,
		mux:     http.NewServeMux(),
		token:   fakeToken,
		seqs:    map[string]int64{},
		inbox:   map[string][]fakeMessage{},
		cursors: map[string]int64{},
		answers: map[string]map[string]any{},
		live:    map[*fakeConn]bool{},
		conns:   make(chan *fakeConn, 100),
	}
	f.mux.HandleFunc("GET /v1/ws", f.serveWS)
	f.srv = httptest.NewServer(f.mux)
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	f.srv.Close()
	f.mu.Lock()
	for fc := range f.live {
		_ = fc.ws.CloseNow()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// session returns a session for the fake's device, on a Client for it.
func (f *fakeServer) session(token string) *Session {
	f.t.Helper()
	c, err := New(f.srv.URL, WithHTTPClient(f.srv.Client()))
	if err != nil {
		f.t.Fatal(err)
	}
	return c.Resume(Session{UserID: "usr_me", DeviceID: "dev_me", Token: token})
}

// connect connects with fast reconnects unless opts says otherwise, waits
// for the first synced, and closes the Conn when the test ends.
func (f *fakeServer) connect(opts ConnOptions) *Conn {
	f.t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, f.session(f.token), opts)
	if err != nil {
		f.t.Fatalf("Connect: %v", err)
	}
	f.t.Cleanup(func() { c.Close() })
	waitSynced(f.t, c)
	f.nextConn()
	return c
}

// nextConn waits for the next accepted socket.
func (f *fakeServer) nextConn() *fakeConn {
	f.t.Helper()
	select {
	case fc := <-f.conns:
		return fc
	case <-time.After(5 * time.Second):
		f.t.Fatal("no connection reached the fake")
		return nil
	}
}

func (f *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	n := len(f.attempts)
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "missing or bad token")
		return
	}
	if r.URL.Query().Get("device") != "dev_me" {
		writeProblem(w, http.StatusBadRequest, "device_mismatch", "the device parameter must be this token's device, dev_me")
		return
	}
	if f.refuse != nil {
		if status := f.refuse(n); status != 0 {
			writeProblem(w, status, "refused", "refused by the test")
			return
		}
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	f.wg.Add(1)
	defer f.wg.Done()
	fc := &fakeConn{f: f, ws: ws, n: n}

	// Replay and synced under the lock, so live publishes come after.
	f.mu.Lock()
	f.live[fc] = true
	f.replayed = append(f.replayed, make([][]int64, n-len(f.replayed))...)
	for _, conv := range slices.Sorted(maps.Keys(f.inbox)) {
		for _, m := range f.inbox[conv] {
			if m.seq > f.cursors[conv] {
				_ = fc.write(messageFrame(conv, m))
				f.replayed[n-1] = append(f.replayed[n-1], m.seq)
			}
		}
	}
	_ = fc.write(map[string]any{"type": "synced"})
	f.mu.Unlock()
	f.conns <- fc

	defer func() {
		f.mu.Lock()
		delete(f.live, fc)
		f.mu.Unlock()
		_ = ws.CloseNow()
	}()
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		f.handle(fc, data)
	}
}

func (f *fakeServer) handle(fc *fakeConn, data []byte) {
	var fr fakeSend
	var ack struct {
		Conversation string `json:"conversation"`
		Seq          int64  `json:"seq"`
	}
	if json.Unmarshal(data, &fr) != nil {
		_ = fc.write(map[string]any{"type": "error", "code": "bad_frame", "message": "not JSON"})
		return
	}
	switch fr.Type {
	case "send":
		f.mu.Lock()
		f.sends = append(f.sends, fr)
		f.mu.Unlock()
		if f.onSend != nil {
			f.onSend(fc, fr)
		} else {
			f.answer(fc, fr)
		}
	case "ack":
		_ = json.Unmarshal(data, &ack)
		f.mu.Lock()
		f.acks = append(f.acks, fakeAck{ack.Conversation, ack.Seq})
		f.cursors[ack.Conversation] = max(f.cursors[ack.Conversation], ack.Seq)
		f.mu.Unlock()
	case "ping":
		_ = fc.write(map[string]any{"type": "pong"})
	case "presence_subscribe", "typing", "read": // no answer: recorded for the test
		f.mu.Lock()
		f.others = append(f.others, string(data))
		f.mu.Unlock()
	default:
		_ = fc.write(map[string]any{"type": "error", "code": "unknown_type", "message": "unknown type"})
	}
}

// answer stores a send once per id and answers sent (the first answer
// again for a repeated id).
func (f *fakeServer) answer(fc *fakeConn, fr fakeSend) {
	f.mu.Lock()
	a, ok := f.answers[fr.ID]
	if !ok {
		f.seqs[fr.Conversation]++
		a = map[string]any{"type": "sent", "id": fr.ID, "conversation": fr.Conversation,
			"seq": f.seqs[fr.Conversation], "ts": fakeTS(time.Now())}
		f.answers[fr.ID] = a
	}
	f.mu.Unlock()
	_ = fc.write(a)
}

// publish stores a message for the device from another device and writes
// it to the live sockets; it returns its seq.
func (f *fakeServer) publish(conv string, ct []byte) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seqs[conv]++
	m := fakeMessage{seq: f.seqs[conv], ts: fakeTS(time.Now()), ct: ct}
	f.inbox[conv] = append(f.inbox[conv], m)
	for fc := range f.live {
		_ = fc.write(messageFrame(conv, m))
	}
	return m.seq
}

// dropAll ends every live socket with code, or abruptly if code is 0.
func (f *fakeServer) dropAll(code websocket.StatusCode, reason string) {
	f.mu.Lock()
	live := slices.Collect(maps.Keys(f.live))
	f.mu.Unlock()
	for _, fc := range live {
		fc.close(code, reason)
	}
}

func (f *fakeServer) cursor(conv string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursors[conv]
}

func (f *fakeServer) attemptCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attempts)
}

func (fc *fakeConn) write(v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return fc.ws.Write(ctx, websocket.MessageText, b)
}

// close ends the socket with code, or abruptly if code is 0. It does not
// wait for the close handshake (that needs the fake's own reader).
func (fc *fakeConn) close(code websocket.StatusCode, reason string) {
	if code == 0 {
		_ = fc.ws.CloseNow()
		return
	}
	fc.f.wg.Go(func() { _ = fc.ws.Close(code, reason) })
}

func messageFrame(conv string, m fakeMessage) map[string]any {
	return map[string]any{
		"type": "message", "conversation": conv, "seq": m.seq,
		"sender": map[string]string{"user_id": "usr_other", "device_id": "dev_other"},
		"ts":     m.ts, "ciphertext": m.ct, // []byte: standard base64
	}
}

// fakeTS formats a time as the protocol does: UTC, milliseconds.
func fakeTS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status,
		"code": code, "detail": detail,
	})
}

// checkNoLeaks fails the test if, a moment after everything it started was
// cleaned up, more goroutines run than when it began.
func checkNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutine(s) leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// waitSynced waits for the next synced signal.
func waitSynced(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case _, ok := <-c.Synced():
		if !ok {
			t.Fatalf("Conn ended before synced: %v", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no synced")
	}
}

// recv waits for the next message.
func recv(t *testing.T, c *Conn) Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("Messages closed: %v", c.Err())
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return Message{}
	}
}

// expectNoMessage fails if a message arrives within d.
func expectNoMessage(t *testing.T, c *Conn, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if ok {
			t.Fatalf("unexpected message %s/%d", m.Conversation, m.Seq)
		}
	case <-time.After(d):
	}
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
