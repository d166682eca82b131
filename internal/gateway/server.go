package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// Errors returned by the gateway.
var (
	ErrClosed         = errors.New("gateway: connection closed")
	ErrSlowConsumer   = errors.New("gateway: slow consumer")
	ErrServerClosed   = errors.New("gateway: server closed")
	ErrNotStarted     = errors.New("gateway: server not started")
	errBacklog        = errors.New("gateway: inbound backlog exceeded")
	errConcurrentWait = errors.New("gateway: WaitQueued called while another call waits on the socket")
	errStarted        = errors.New("gateway: Start called twice")
)

// Config configures a Server. Zero values get defaults.
type Config struct {
	Addr    string       // listen address, e.g. "127.0.0.1:8080"; port 0 picks a free port
	Handler http.Handler // the HTTP API, served by the same engine on the same port

	// MaxFrame is the largest inbound message in bytes (default 64 KiB). A
	// bigger one closes the socket with 1009 and a reason.
	MaxFrame int
	// MaxQueued is how many outbound bytes may wait for one socket (beyond
	// what the kernel accepted) before it is closed as a slow consumer with
	// 4008 (default 1 MiB). Every frame counts, pongs and pings included.
	MaxQueued int
	// PingInterval: a socket silent for PingInterval is pinged, one silent
	// for 2×PingInterval (no frame, no pong) is closed with 4009 (default 30s).
	PingInterval time.Duration
	// MaxBody bounds one HTTP request (headers + body). nbio buffers the whole
	// request in memory before calling Handler, so http.MaxBytesReader in the
	// handler cannot protect memory; this can (default 16 MiB; larger media
	// uploads need a larger value). Past it the request gets TooLarge.
	MaxBody int
	// TooLarge is the body (application/problem+json) of the 413 answer to
	// a request over MaxBody, whatever its size; the connection is closed
	// after it. Nil: such a connection is closed without an answer.
	TooLarge []byte

	// RequestTimeout bounds every read before a socket is upgraded: a new
	// connection, and a kept-alive one after each response, must deliver a
	// whole request (headers and body) within it or be closed (default 30s).
	// Upgraded sockets are watched by PingInterval instead. It also bounds
	// each HTTP handler: its request's context ends RequestTimeout after
	// the handler starts, or when the connection closes first.
	RequestTimeout time.Duration
	// CheckOrigin decides whether an upgrade request's Origin may open a
	// socket (false: 403 before the upgrade). Nil keeps nbio's check, which
	// allows a request without Origin or whose Origin host equals its Host.
	CheckOrigin func(r *http.Request) bool

	// FlushDelay is how long the writer waits, once a frame is pending, to
	// gather more frames into the same write (default 0: write as soon as
	// the writer is free; under load frames still coalesce behind it).
	FlushDelay time.Duration

	Logger *slog.Logger // default slog.Default()
}

const (
	defaultMaxFrame     = 64 << 10
	defaultMaxQueued    = 1 << 20
	defaultPingInterval = 30 * time.Second
	defaultMaxBody      = 16 << 20
	defaultRequestTime  = 30 * time.Second

	// closeTimeout is how long a socket that was sent a close frame may go
	// without taking any queued byte, or without answering once the close
	// frame reached the kernel, before its TCP connection is dropped.
	closeTimeout = 5 * time.Second
	// closeDrainMax bounds the whole close handshake of a peer that keeps
	// reading, however slowly, what was queued before the close frame.
	closeDrainMax = 30 * time.Second

	// backlogFrames: inbound bytes read but not yet handed to OnMessage may
	// reach backlogFrames×MaxFrame (plus one poller read) before the socket
	// is closed with 1008.
	backlogFrames = 16

	nShards = 32

	// pollerStartGrace: nbio's poller goroutine clears its shutdown flag
	// when it first runs, so an engine stopped before its pollers were
	// scheduled never stops (it spins on the wake-up eventfd and Stop waits
	// forever). Shutdown therefore never stops an engine younger than this.
	pollerStartGrace = 50 * time.Millisecond
)

func (c *Config) setDefaults() {
	if c.MaxFrame <= 0 {
		c.MaxFrame = defaultMaxFrame
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = defaultMaxQueued
	}
	if c.PingInterval <= 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.MaxBody <= 0 {
		c.MaxBody = defaultMaxBody
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTime
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Handler == nil {
		c.Handler = http.NotFoundHandler()
	}
}

// Handler receives the events of every socket. The node implements it.
type Handler interface {
	// OnOpen runs inside Upgrade, before any OnMessage of c.
	OnOpen(c *Conn)
	// OnMessage receives one text message; data is valid only during the
	// call. Calls for one Conn are serial and in order and may block without
	// stalling other sockets' I/O. Messages still arrive after Close, until
	// the close handshake ends (not after an abort: 1008, 4009).
	OnMessage(c *Conn, data []byte)
	// OnClose runs once per Conn, after its last OnMessage has returned.
	OnClose(c *Conn)
}

// PingAdmitter is an optional ability of a Handler: AdmitPing runs for every
// ping a peer sends, serialised with the socket's OnMessage calls, and false
// drops the ping unanswered (the Handler may close the socket). The node
// uses it to count pings against the socket's frame rate.
type PingAdmitter interface {
	AdmitPing(c *Conn) bool
}

// Server is one nbio engine serving the HTTP API and the WebSockets.
type Server struct {
	cfg Config
	h   Handler
	log *slog.Logger

	engine    *nbhttp.Engine
	upgrader  *websocket.Upgrader
	ln        *listener
	handoff   handoff
	requests  requests // the contexts of HTTP requests in flight
	started   atomic.Bool
	startedAt time.Time

	closing  atomic.Bool
	done     chan struct{} // closed when Shutdown stops the sweeper
	doneOnce sync.Once
	sweepWG  sync.WaitGroup

	flusher *flusher
	// flushHook, when set (by tests, before Start), runs in Conn.flush
	// between taking the pending frames and handing them to nbio: it widens
	// the window in which another writer of the socket could overtake.
	flushHook func()
	// upgradeHook, when set (by tests, before Start), runs in Upgrade after
	// the 101 went out and before the socket is handed to its Conn: it
	// widens the window that upgrading covers.
	upgradeHook func()
	upgrading   sync.Map // *nbio.Conn → *Conn, while Upgrade runs (window.go)
	// closeTimeout is the package's closeTimeout; tests shorten it.
	closeTimeout time.Duration

	closes   *closeCounts // metrics.go
	nextID   atomic.Uint64
	count    atomic.Int64
	inflight atomic.Int64 // OnMessage calls running now
	shards   [nShards]shard
}

type shard struct {
	mu    sync.Mutex
	conns map[*Conn]struct{}
}

// New returns a Server; nothing listens before Start.
func New(cfg Config, h Handler) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, h: h, log: cfg.Logger, done: make(chan struct{}), closeTimeout: closeTimeout, closes: newCloseCounts()}
	s.requests.timeout = cfg.RequestTimeout
	for i := range s.shards {
		s.shards[i].conns = make(map[*Conn]struct{})
	}
	setNBIOLogger(cfg.Logger)
	return s
}

// Start listens on cfg.Addr and returns once the engine is serving.
func (s *Server) Start() error {
	if !s.started.CompareAndSwap(false, true) {
		return errStarted
	}
	// Listen before the engine exists: when nbhttp's own listen fails it
	// stops the half-started engine, and that Stop can hang (see
	// pollerStartGrace).
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.started.Store(false)
		return fmt.Errorf("gateway: listen: %w", err)
	}
	s.ln = newListener(ln, s.log, &s.handoff)
	// ReadLimit caps what one connection may buffer: a whole HTTP request,
	// or a partial WebSocket frame plus one poller read (64 KiB).
	readLimit := max(s.cfg.MaxBody, s.cfg.MaxFrame+2*nbio.DefaultReadBufferSize+1024)
	engine := nbhttp.NewEngine(nbhttp.Config{
		Name:    "switchboard",
		Network: "tcp",
		Addrs:   []string{s.cfg.Addr},
		Listen:  s.listen,
		Handler: s.requests.wrap(wrapHTTP(s.cfg.Handler)),

		ReadLimit:       readLimit,
		MaxHTTPBodySize: s.cfg.MaxBody,
		// nbio's read deadline for a connection waiting for (the rest of) a request.
		KeepaliveTime: s.cfg.RequestTimeout,
		// Payload buffers go back to the pool as soon as OnMessage returns.
		ReleaseWebsocketPayload: true,
		// Only nbio's own WriteMessage uses this, to fragment; the gateway
		// encodes its frames itself (conn.go) and never fragments.
		MaxWebsocketFramePayloadSize: math.MaxInt32,
		// No client-side task pool: this engine only serves.
		SupportServerOnly: true,
	})
	engine.OnWrittenSize(onWrittenSize)
	open, read := raceHandoff()
	s.handoff.hook(engine, open)
	engine.Engine.OnData(s.onData(read))
	s.engine = engine
	s.upgrader = s.newUpgrader(engine)

	if err := engine.Start(); err != nil {
		_ = ln.Close()
		s.engine, s.upgrader, s.ln = nil, nil, nil
		s.started.Store(false)
		return fmt.Errorf("gateway: start: %w", err)
	}
	s.startedAt = time.Now()
	s.flusher = newFlusher(s.cfg.FlushDelay)
	s.sweepWG.Add(2)
	go s.sweepLoop()
	go func() {
		defer s.sweepWG.Done()
		s.requests.watch(s.done)
	}()
	return nil
}

// listen hands nbhttp the listener Start opened.
func (s *Server) listen(string, string) (net.Listener, error) { return s.ln, nil }

func (s *Server) newUpgrader(engine *nbhttp.Engine) *websocket.Upgrader {
	u := websocket.NewUpgrader()
	u.Engine = engine
	// KeepaliveTime 0: no per-socket read-deadline timer; the sweeper does
	// liveness for all sockets.
	u.KeepaliveTime = 0
	u.MessageLengthLimit = s.cfg.MaxFrame
	u.CheckOrigin = s.cfg.CheckOrigin
	u.ReleasePayload = true
	u.OnMessage(s.onMessage)
	u.OnClose(s.onClose)
	u.SetPingHandler(s.onPing)
	// Activity was recorded when the pong was read; only the backlog is left.
	u.SetPongHandler(func(ws *websocket.Conn, data string) {
		if c, ok := ws.Session().(*Conn); ok {
			c.backlog.Add(-int64(len(data) + clientFrameOverhead(len(data))))
		}
	})
	u.SetCloseHandler(s.onCloseFrame)
	return u
}

// Addr is the address the server listens on (port 0 resolved), nil before Start.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Count is the number of open sockets.
func (s *Server) Count() int { return int(s.count.Load()) }

// Upgrade turns the request into a WebSocket. Call it from an HTTP handler
// served by this Server (after authenticating the request), before the
// handler returns: OnOpen runs inside Upgrade and the socket's messages are
// queued behind the handler. Middleware that wraps w must offer
// Unwrap() http.ResponseWriter (as http.ResponseController expects), since
// nbio hijacks its own writer. state is kept on the Conn. Headers already
// set on w (for example a chosen Sec-WebSocket-Protocol) are sent with the
// 101 response. On failure an HTTP error has been written.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, state any) (*Conn, error) {
	if s.upgrader == nil {
		http.Error(w, "gateway not started", http.StatusServiceUnavailable)
		return nil, ErrNotStarted
	}
	if s.closing.Load() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil, ErrServerClosed
	}
	// nbio needs its own ResponseWriter to hijack; see through middleware
	// wrappers that follow the http.ResponseController Unwrap convention.
	w = unwrapResponseWriter(w)
	c := &Conn{srv: s, state: state}
	// nbio writes the 101 before this function hands the socket to c: the
	// peer's first frames may come in that window. onData checks their
	// masks with c's scanner, found here (window.go).
	if nbc := requestConn(w); nbc != nil {
		s.upgrading.Store(nbc, c)
		defer s.upgrading.Delete(nbc)
	}
	ws, err := s.upgrader.Upgrade(w, r, w.Header())
	if err != nil {
		return nil, fmt.Errorf("gateway: upgrade: %w", err)
	}
	nbc, ok := netConnOf(ws)
	if !ok {
		_ = ws.Close()
		return nil, errors.New("gateway: upgraded connection is not served by the nbio poller")
	}
	if s.upgradeHook != nil {
		s.upgradeHook()
	}
	c.ws, c.nbc, c.id = ws, nbc, s.nextID.Add(1)
	now := nanotime()
	c.last.Store(now)
	c.pinged.Store(now)
	ws.SetSession(c)
	c.ready.Store(true)
	// From here on the poller hands this socket's bytes to session.Parse.
	nbc.SetSession((*session)(c))
	s.handoff.upgradedSocket(nbc)
	s.register(c)
	s.h.OnOpen(c)
	// A socket closed before it was handed over (its peer left, or the
	// window check refused it) had its close callback find no Conn.
	if closed, _ := nbc.IsClosed(); closed && s.unregister(c) {
		s.h.OnClose(c)
	}
	return c, nil
}

func unwrapResponseWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		if _, ok := w.(*nbhttp.Response); ok {
			return w
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

func netConnOf(ws *websocket.Conn) (*nbio.Conn, bool) {
	nbc := nbioConn(ws.UnderlayerConn())
	return nbc, nbc != nil
}

// nbioConn is the poller's connection under c (nbhttp may wrap it), or nil.
func nbioConn(c net.Conn) *nbio.Conn {
	switch c := c.(type) {
	case *nbio.Conn:
		return c
	case *nbhttp.Conn:
		nbc, _ := c.Conn.(*nbio.Conn)
		return nbc
	}
	return nil
}

func (s *Server) register(c *Conn) {
	sh := &s.shards[c.id%nShards]
	sh.mu.Lock()
	sh.conns[c] = struct{}{}
	sh.mu.Unlock()
	s.count.Add(1)
	// Shutdown sets closing before it walks the shards: either it saw c
	// there, or we see closing here.
	if s.closing.Load() {
		c.Close(CloseGoingAway, "going away")
	}
}

func (s *Server) unregister(c *Conn) bool {
	sh := &s.shards[c.id%nShards]
	sh.mu.Lock()
	_, ok := sh.conns[c]
	delete(sh.conns, c)
	sh.mu.Unlock()
	if ok {
		s.count.Add(-1)
	}
	return ok
}

// onMessage runs on nbio's executor, serialised per socket.
func (s *Server) onMessage(ws *websocket.Conn, mt websocket.MessageType, data []byte) {
	c, ok := ws.Session().(*Conn)
	if !ok {
		return
	}
	c.backlog.Add(-int64(len(data) + clientFrameOverhead(len(data))))
	// After our close frame the peer's frames are still handled until the
	// handshake ends: an ack of a message the peer read before it saw the
	// close counts (its next socket does not replay it). Only an aborted
	// or refused socket's leftovers are dropped. After the peer's close frame nbio
	// reads nothing more.
	if c.dropped.Load() {
		return
	}
	if mt != websocket.TextMessage {
		c.Close(CloseUnsupportedData, "binary messages are not supported")
		return
	}
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.h.OnMessage(c, data)
}

// onPing answers a peer's ping with a pong, on the socket's job list like
// OnMessage. A ping costs the node its pong, so it passes the same limits as
// a message: the Handler's PingAdmitter, if it has one (the node counts it
// against the socket's frame rate), and MaxQueued for the pong
// (writeControl), so a peer that pings and never reads is closed with 4008
// instead of growing the node's memory by every pong.
func (s *Server) onPing(ws *websocket.Conn, data string) {
	c, ok := ws.Session().(*Conn)
	if !ok {
		return
	}
	c.backlog.Add(-int64(len(data) + clientFrameOverhead(len(data))))
	if c.closing.Load() || c.dropped.Load() {
		return
	}
	if a, ok := s.h.(PingAdmitter); ok && !a.AdmitPing(c) {
		return
	}
	_ = c.writeControl(opPong, []byte(data))
}

// onCloseFrame handles a close frame from the peer. nbio drops the TCP
// connection right after it returns.
func (s *Server) onCloseFrame(ws *websocket.Conn, code int, _ string) {
	c, ok := ws.Session().(*Conn)
	if !ok || !c.closing.CompareAndSwap(false, true) {
		return // we started the handshake; the peer's answer completes it
	}
	c.wakeDrain(0, true)
	// The peer started it: echo its code (RFC 6455 §5.5.1).
	if code == 1005 { // no status code
		_ = c.writeFrame(opClose, nil)
		return
	}
	c.writeClose(code, "")
}

// onClose runs on the socket's job list after every queued OnMessage.
func (s *Server) onClose(ws *websocket.Conn, _ error) {
	c, ok := ws.Session().(*Conn)
	if !ok {
		return
	}
	c.closing.Store(true)
	c.wakeDrain(0, true)
	if s.unregister(c) {
		s.h.OnClose(c)
	}
}

// onWrittenSize is nbio's report of n bytes reaching the kernel for nc. It
// runs under nc's lock, so it only does atomics (and, when the queue fell to
// a WaitQueued caller's limit, closes its channel).
func onWrittenSize(nc *nbio.Conn, _ []byte, n int) {
	if h, ok := nc.Session().(*session); ok {
		c := (*Conn)(h)
		c.wakeDrain(c.queued.Add(-int64(n)), false)
	}
}

// sweepLoop pings silent sockets and closes dead ones: one ticker for all.
func (s *Server) sweepLoop() {
	defer s.sweepWG.Done()
	// A quarter interval: a ping goes out 1–1.25 intervals after the last
	// frame, leaving the peer at least 0.75 interval to answer.
	tick := max(s.cfg.PingInterval/4, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	var batch []*Conn
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			batch = s.sweep(nanotime(), batch)
		}
	}
}

func (s *Server) sweep(now int64, batch []*Conn) []*Conn {
	interval := int64(s.cfg.PingInterval)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for c := range sh.conns {
			if c.closing.Load() {
				continue // its close timeout runs on its own
			}
			idle := now - c.last.Load()
			if idle >= 2*interval || (idle >= interval && now-c.pinged.Load() >= interval) {
				batch = append(batch, c)
			}
		}
		sh.mu.Unlock()
		// Write outside the shard lock: a write is a syscall.
		for j, c := range batch {
			if now-c.last.Load() >= 2*interval {
				c.abort(ClosePingTimeout, "ping timeout")
			} else {
				c.pinged.Store(now)
				_ = c.writeControl(opPing, nil)
			}
			batch[j] = nil
		}
		batch = batch[:0]
	}
	return batch
}

// Shutdown stops accepting, closes every socket with 1001 "going away",
// waits for in-flight OnMessage calls and OnClose, then stops the engine.
// If ctx ends first the engine is stopped anyway and ctx.Err() returned;
// sockets still open then may miss OnClose.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.started.Load() {
		return ErrNotStarted
	}
	if !s.closing.CompareAndSwap(false, true) {
		return ErrServerClosed
	}
	if d := pollerStartGrace - time.Since(s.startedAt); d > 0 {
		time.Sleep(d)
	}
	s.ln.stopAccepting()
	s.each(func(c *Conn) { c.Close(CloseGoingAway, "going away") })

	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var err error
wait:
	for s.Count() > 0 || s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-t.C:
		}
	}
	s.doneOnce.Do(func() { close(s.done) })
	s.sweepWG.Wait()
	s.flusher.stop()
	if err != nil {
		go s.engine.Stop() // may block on a handler that never returns
		return err
	}
	return s.engine.Shutdown(ctx)
}

func (s *Server) each(f func(*Conn)) {
	var batch []*Conn
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for c := range sh.conns {
			batch = append(batch, c)
		}
		sh.mu.Unlock()
		for _, c := range batch {
			f(c)
		}
		batch = batch[:0]
	}
}

func nanotime() int64 { return time.Now().UnixNano() }

// clientFrameOverhead is the header size of an unfragmented masked frame
// carrying n payload bytes.
func clientFrameOverhead(n int) int {
	switch {
	case n < 126:
		return 2 + 4
	case n <= 65535:
		return 4 + 4
	default:
		return 10 + 4
	}
}

// serverFrameOverhead is the header size of an unmasked frame.
func serverFrameOverhead(n int) int { return clientFrameOverhead(n) - 4 }

var (
	nbioLog     atomic.Pointer[slog.Logger]
	nbioLogOnce sync.Once
)

// setNBIOLogger routes nbio's process-wide logger to slog. nbio has one
// logger per process, so the last Server created wins.
func setNBIOLogger(l *slog.Logger) {
	nbioLog.Store(l)
	nbioLogOnce.Do(func() { logging.SetLogger(nbioLogger{}) })
}

// nbioLogger adapts nbio's printf logger. nbio logs routine events (engine
// start/stop) at Info and per-connection parse errors at Debug; those become
// Debug and are dropped respectively.
type nbioLogger struct{}

func (nbioLogger) Debug(string, ...any) {}
func (nbioLogger) Info(format string, v ...any) {
	nbioLog.Load().Debug(fmt.Sprintf(format, v...), "component", "nbio")
}
func (nbioLogger) Warn(format string, v ...any) {
	nbioLog.Load().Warn(fmt.Sprintf(format, v...), "component", "nbio")
}
func (nbioLogger) Error(format string, v ...any) {
	nbioLog.Load().Error(fmt.Sprintf(format, v...), "component", "nbio")
}
