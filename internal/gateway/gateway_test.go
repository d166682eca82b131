package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeHandler is a Handler made of function fields; nil ones do nothing.
type fakeHandler struct {
	open    func(*Conn)
	message func(*Conn, []byte)
	close   func(*Conn)
}

func (f *fakeHandler) OnOpen(c *Conn) {
	if f.open != nil {
		f.open(c)
	}
}

func (f *fakeHandler) OnMessage(c *Conn, data []byte) {
	if f.message != nil {
		f.message(c, data)
	}
}

func (f *fakeHandler) OnClose(c *Conn) {
	if f.close != nil {
		f.close(c)
	}
}

var _ Handler = (*fakeHandler)(nil)

// echo writes every message back.
func echo(c *Conn, data []byte) { _ = c.Write(data) }

// startServer runs a Server on a free loopback port with a small HTTP API:
// /v1/ws upgrades, /hello answers JSON, /echo returns the POSTed body.
func startServer(t testing.TB, cfg Config, h Handler) (*Server, string) {
	t.Helper()
	var s *Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) {
		_, _ = s.Upgrade(w, r, "device-1")
	})
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"hello":"world"}`)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	})
	cfg.Addr = "127.0.0.1:0"
	cfg.Handler = mux
	s = New(cfg, h)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s, s.Addr().String()
}

func dial(t testing.TB, addr string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	ws.SetReadLimit(1 << 20)
	return ws
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func send(t testing.TB, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.Write(ctxT(t), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

func recv(t testing.TB, ws *websocket.Conn) string {
	t.Helper()
	_, data, err := ws.Read(ctxT(t))
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	return string(data)
}

// readClose reads until the connection ends and returns the close frame.
func readClose(t testing.TB, ws *websocket.Conn) websocket.CloseError {
	t.Helper()
	ws.SetReadLimit(-1)
	for {
		_, _, err := ws.Read(ctxT(t))
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	var opened, closed atomic.Int32
	var state atomic.Value
	s, addr := startServer(t, Config{}, &fakeHandler{
		open: func(c *Conn) {
			opened.Add(1)
			state.Store(fmt.Sprint(c.State(), " from ", c.RemoteAddr() != nil))
		},
		message: echo,
		close:   func(*Conn) { closed.Add(1) },
	})
	ws := dial(t, addr)
	for _, msg := range []string{"hello", `{"type":"ping"}`, string(bytes.Repeat([]byte("x"), 60<<10))} {
		send(t, ws, msg)
		if got := recv(t, ws); got != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
	if got := state.Load(); got != "device-1 from true" {
		t.Errorf("State/RemoteAddr in OnOpen = %q", got)
	}
	if n := s.Count(); n != 1 {
		t.Errorf("Count = %d with one socket open", n)
	}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("client close handshake: %v", err)
	}
	waitFor(t, "OnClose", func() bool { return closed.Load() == 1 })
	if opened.Load() != 1 || s.Count() != 0 {
		t.Errorf("opened=%d count=%d after close", opened.Load(), s.Count())
	}
}

func TestHTTPStillServesPlainRequests(t *testing.T) {
	_, addr := startServer(t, Config{}, &fakeHandler{})
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}

	t.Run("GET answers JSON", func(t *testing.T) {
		res, err := client.Get(base + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 || string(body) != `{"hello":"world"}` || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	})
	t.Run("POST with a 1 MiB body is echoed", func(t *testing.T) {
		want := make([]byte, 1<<20)
		_, _ = rand.Read(want)
		res, err := client.Post(base+"/echo", "application/octet-stream", bytes.NewReader(want))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Fatalf("got %d with %d bytes", res.StatusCode, len(got))
		}
	})
	t.Run("HEAD has no body", func(t *testing.T) {
		res, err := client.Head(base + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("got %d with %d bytes", res.StatusCode, len(body))
		}
	})
	t.Run("unknown path is 404", func(t *testing.T) {
		res, err := client.Get(base + "/nope")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("got %d", res.StatusCode)
		}
	})
	t.Run("the socket path without upgrade headers is 400", func(t *testing.T) {
		res, err := client.Get(base + "/v1/ws")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %d", res.StatusCode)
		}
	})
	t.Run("many requests on one keep-alive connection", func(t *testing.T) {
		for i := range 50 {
			res, err := client.Get(base + "/hello")
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
		}
	})
}

func TestOnMessageIsSerialAndOrderedPerConn(t *testing.T) {
	const n = 200
	var (
		mu      sync.Mutex
		got     []string
		running atomic.Int32
		overlap atomic.Bool
	)
	_, addr := startServer(t, Config{}, &fakeHandler{
		message: func(c *Conn, data []byte) {
			if running.Add(1) > 1 {
				overlap.Store(true)
			}
			time.Sleep(200 * time.Microsecond)
			mu.Lock()
			got = append(got, string(data))
			mu.Unlock()
			running.Add(-1)
		},
	})
	ws := dial(t, addr)
	for i := range n {
		send(t, ws, strconv.Itoa(i))
	}
	waitFor(t, "all messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	if overlap.Load() {
		t.Error("two OnMessage calls for one Conn ran at once")
	}
	for i, s := range got {
		if s != strconv.Itoa(i) {
			t.Fatalf("message %d was %q: out of order", i, s)
		}
	}
}

func TestBlockedHandlerDoesNotStallOtherSockets(t *testing.T) {
	release := make(chan struct{})
	var blocked atomic.Bool
	_, addr := startServer(t, Config{}, &fakeHandler{
		message: func(c *Conn, data []byte) {
			if string(data) == "block" {
				blocked.Store(true)
				<-release // a slow database commit
				return
			}
			echo(c, data)
		},
	})
	defer close(release)
	slow, fast := dial(t, addr), dial(t, addr)
	send(t, slow, "block")
	waitFor(t, "the handler to block", blocked.Load)
	for i := range 20 {
		msg := "m" + strconv.Itoa(i)
		send(t, fast, msg)
		if got := recv(t, fast); got != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
}

func TestWriteFromOneGoroutineArrivesInOrder(t *testing.T) {
	const n = 2000
	_, addr := startServer(t, Config{}, &fakeHandler{
		open: func(c *Conn) {
			go func() {
				for i := range n {
					if err := c.Write([]byte(strconv.Itoa(i))); err != nil {
						return
					}
				}
			}()
		},
	})
	ws := dial(t, addr)
	for i := range n {
		if got := recv(t, ws); got != strconv.Itoa(i) {
			t.Fatalf("frame %d was %q", i, got)
		}
	}
}

func TestOversizedFrameClosesWith1009AndOthersKeepWorking(t *testing.T) {
	_, addr := startServer(t, Config{MaxFrame: 1024}, &fakeHandler{message: echo})
	big, other := dial(t, addr), dial(t, addr)

	send(t, other, "before")
	if got := recv(t, other); got != "before" {
		t.Fatalf("got %q", got)
	}
	send(t, big, string(bytes.Repeat([]byte("a"), 1024))) // exactly MaxFrame is fine
	if got := recv(t, big); len(got) != 1024 {
		t.Fatalf("a frame of MaxFrame bytes came back as %d bytes", len(got))
	}
	_ = big.Write(ctxT(t), websocket.MessageText, bytes.Repeat([]byte("a"), 100<<10))
	ce := readClose(t, big)
	if ce.Code != CloseTooBig || ce.Reason == "" {
		t.Fatalf("closed with %d %q, want %d and a reason", ce.Code, ce.Reason, CloseTooBig)
	}
	send(t, other, "after")
	if got := recv(t, other); got != "after" {
		t.Fatalf("got %q", got)
	}
}

func TestShutdownClosesSocketsWith1001(t *testing.T) {
	var (
		closed   atomic.Int32
		entered  = make(chan struct{})
		finished atomic.Bool
	)
	s := New(Config{Addr: "127.0.0.1:0"}, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/ws", func(w http.ResponseWriter, r *http.Request) { _, _ = s.Upgrade(w, r, nil) })
	s.cfg.Handler = mux
	s.h = &fakeHandler{
		message: func(c *Conn, data []byte) {
			close(entered)
			time.Sleep(300 * time.Millisecond) // in flight when Shutdown starts
			finished.Store(true)
		},
		close: func(*Conn) { closed.Add(1) },
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	clients := []*websocket.Conn{dial(t, addr), dial(t, addr), dial(t, addr)}
	send(t, clients[0], "slow")
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Shutdown(ctx) }()
	for i, ws := range clients {
		if ce := readClose(t, ws); ce.Code != CloseGoingAway || ce.Reason != "going away" {
			t.Errorf("client %d closed with %d %q", i, ce.Code, ce.Reason)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !finished.Load() {
		t.Error("Shutdown returned while an OnMessage call was still running")
	}
	if n := closed.Load(); n != 3 || s.Count() != 0 {
		t.Errorf("OnClose ran %d times, Count = %d", n, s.Count())
	}
	if _, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil); err == nil {
		t.Error("a new socket was accepted after Shutdown")
	}
}

func TestWritePastMaxQueuedClosesWith4008(t *testing.T) {
	var conn atomic.Pointer[Conn]
	_, addr := startServer(t, Config{MaxQueued: 64 << 10}, &fakeHandler{
		open: func(c *Conn) { conn.Store(c) },
	})
	ws := dial(t, addr) // never reads until the server gave up on it
	waitFor(t, "OnOpen", func() bool { return conn.Load() != nil })
	c := conn.Load()

	frame := bytes.Repeat([]byte("z"), 128<<10)
	var err error
	for i := 0; i < 4000 && err == nil; i++ { // ≤ 512 MiB; loopback buffers take a few MiB
		err = c.Write(frame)
	}
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Write kept failing to report a slow consumer: %v", err)
	}
	if err := c.Write([]byte("more")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after the slow-consumer close = %v, want ErrClosed", err)
	}
	ce := readClose(t, ws)
	if ce.Code != CloseSlowConsumer || ce.Reason != "slow consumer" {
		t.Fatalf("closed with %d %q", ce.Code, ce.Reason)
	}
}

func TestCloseSendsCodeAndReason(t *testing.T) {
	var closed atomic.Int32
	var conn atomic.Pointer[Conn]
	_, addr := startServer(t, Config{}, &fakeHandler{
		message: func(c *Conn, data []byte) {
			conn.Store(c)
			c.Close(4001, "device revoked")
		},
		close: func(*Conn) { closed.Add(1) },
	})
	ws := dial(t, addr)
	send(t, ws, "anything")
	ce := readClose(t, ws)
	if ce.Code != 4001 || ce.Reason != "device revoked" {
		t.Fatalf("closed with %d %q", ce.Code, ce.Reason)
	}
	waitFor(t, "OnClose", func() bool { return closed.Load() == 1 })
	if err := conn.Load().Write([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestSilentClientIsClosedAfterTwoPingIntervals(t *testing.T) {
	t.Run("a client that answers pings stays open", func(t *testing.T) {
		const interval = 250 * time.Millisecond
		_, addr := startServer(t, Config{PingInterval: interval}, &fakeHandler{message: echo})
		ws := dial(t, addr)
		readErr := make(chan error, 1)
		go func() { _, _, err := ws.Read(context.Background()); readErr <- err }() // answers pings
		select {
		case err := <-readErr:
			t.Fatalf("closed while answering pings: %v", err)
		case <-time.After(5 * interval):
		}
	})

	t.Run("a client that never answers pings is closed", func(t *testing.T) {
		const interval = 100 * time.Millisecond
		closedAt := make(chan time.Time, 1)
		_, addr := startServer(t, Config{PingInterval: interval}, &fakeHandler{
			close: func(*Conn) { closedAt <- time.Now() },
		})
		ctx := ctxT(t)
		start := time.Now()
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", &websocket.DialOptions{
			OnPingReceived: func(context.Context, []byte) bool { return false }, // no pong
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ws.CloseNow() }()
		readErr := make(chan error, 1)
		go func() { _, _, err := ws.Read(ctx); readErr <- err }()
		select {
		case at := <-closedAt:
			if idle := at.Sub(start); idle < 2*interval {
				t.Errorf("closed after %v, before 2×PingInterval", idle)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a silent client was never closed")
		}
		if code := websocket.CloseStatus(<-readErr); code != ClosePingTimeout && code != -1 {
			t.Errorf("client saw close code %d", code)
		}
	})
}

func TestUpgradeRefusedDuringShutdown(t *testing.T) {
	s, addr := startServer(t, Config{}, &fakeHandler{})
	s.closing.Store(true) // as Shutdown does before it closes the listener
	defer s.closing.Store(false)
	_, res, err := websocket.Dial(ctxT(t), "ws://"+addr+"/v1/ws", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial during shutdown: %v %v", res, err)
	}
}

func TestCloseReasonIsCutOnARuneBoundary(t *testing.T) {
	long := string(bytes.Repeat([]byte("é"), 100)) // 200 bytes
	got := closeReason(long)
	if len(got) > maxCloseReason || len(got)%2 != 0 {
		t.Fatalf("cut to %d bytes", len(got))
	}
	if closeReason("short") != "short" {
		t.Fatal("short reason changed")
	}
}

func TestLargeChunkedResponsesKeepBuffersApart(t *testing.T) {
	// nbhttp's chunked writer reuses a pooled buffer after freeing it once a
	// response passes 64 KiB; wrapHTTP must keep that from corrupting other
	// connections' buffers (here: WebSocket frames being parsed).
	s := New(Config{Addr: "127.0.0.1:0"}, &fakeHandler{message: echo})
	body := make([]byte, 300<<10)
	_, _ = rand.Read(body)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) { _, _ = s.Upgrade(w, r, nil) })
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body[:100])          // small, then one large write
		_, _ = w.Write(body[100 : 200<<10]) // crosses 64 KiB in one call
		for i := 200 << 10; i < len(body); i += 1000 {
			_, _ = w.Write(body[i:min(i+1000, len(body))])
		}
	})
	s.cfg.Handler = mux
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	addr := s.Addr().String()

	ws := dial(t, addr)
	done := make(chan struct{})
	wsErr := make(chan error, 1)
	go func() {
		defer close(wsErr)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			msg := []byte(strconv.Itoa(i) + "-frame-payload")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := ws.Write(ctx, websocket.MessageText, msg)
			if err == nil {
				var got []byte
				_, got, err = ws.Read(ctx)
				if err == nil && !bytes.Equal(got, msg) {
					err = fmt.Errorf("echo %q came back as %q", msg, got)
				}
			}
			cancel()
			if err != nil {
				wsErr <- err
				return
			}
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 30 {
		res, err := client.Get("http://" + addr + "/big")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("request %d: %d bytes, err %v, intact=%v", i, len(got), err, bytes.Equal(got, body))
		}
	}
	close(done)
	if err := <-wsErr; err != nil {
		t.Fatalf("socket traffic next to chunked responses: %v", err)
	}
}

func TestFloodWhileHandlerBlocksClosesWith1008(t *testing.T) {
	release := make(chan struct{})
	var closed atomic.Int32
	s, addr := startServer(t, Config{MaxFrame: 1024}, &fakeHandler{
		message: func(c *Conn, data []byte) { <-release },
		close:   func(*Conn) { closed.Add(1) },
	})
	ws := dial(t, addr)
	msg := bytes.Repeat([]byte("f"), 1000)
	for range 200 { // 200 KB against a bound of 16×1 KiB + one 64 KiB read
		if err := ws.Write(ctxT(t), websocket.MessageText, msg); err != nil {
			break // the server may already have closed
		}
	}
	if ce := readClose(t, ws); ce.Code != ClosePolicy {
		t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Reason, ClosePolicy)
	}
	close(release) // a handler still blocked must return before OnClose
	waitFor(t, "OnClose", func() bool { return closed.Load() == 1 })
	if s.Count() != 0 {
		t.Fatalf("Count = %d", s.Count())
	}
}

func TestBinaryMessageClosesWith1003(t *testing.T) {
	_, addr := startServer(t, Config{}, &fakeHandler{message: echo})
	ws := dial(t, addr)
	if err := ws.Write(ctxT(t), websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if ce := readClose(t, ws); ce.Code != CloseUnsupportedData {
		t.Fatalf("closed with %d %q", ce.Code, ce.Reason)
	}
}

func TestStartFailsOnABusyAddress(t *testing.T) {
	_, addr := startServer(t, Config{}, &fakeHandler{})
	s := New(Config{Addr: addr}, &fakeHandler{})
	if err := s.Start(); err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatal("a second server started on a busy address")
	}
	if err := s.Shutdown(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Shutdown of a server that failed to start = %v", err)
	}
}

// TestRefuseSkipsThePeersLaterFrames: after Refuse the peer still gets the
// close frame with its code, but nothing it sends afterwards reaches the
// handler (after Close, frames are handled until the handshake ends).
func TestRefuseSkipsThePeersLaterFrames(t *testing.T) {
	var mu sync.Mutex
	var got []string
	_, addr := startServer(t, Config{}, &fakeHandler{
		message: func(c *Conn, data []byte) {
			mu.Lock()
			got = append(got, string(data))
			mu.Unlock()
			if string(data) == "refuse" {
				c.Refuse(ClosePolicy, "rate limit ignored")
			}
		},
	})
	ws := dial(t, addr)
	for _, m := range []string{"first", "refuse", "after-1", "after-2"} {
		send(t, ws, m)
	}
	if ce := readClose(t, ws); ce.Code != ClosePolicy {
		t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Reason, ClosePolicy)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"first", "refuse"}) {
		t.Fatalf("handled %q, want first and refuse only", got)
	}
}
