package server

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// edge holds the HTTP edge's security settings, parsed once: which browser
// origins may call the node, whose X-Forwarded-For to believe, and which
// client addresses the per-address limits leave alone. docs/security.md
// describes each; the tests in security_test.go and limits_test.go keep it true.
type edge struct {
	origins   map[string]bool // normalized "scheme://host[:port]"
	anyOrigin bool
	trusted   []netip.Prefix
	exempt    []netip.Prefix
	frames    chat.Bucket // per socket; Rate 0 is unlimited
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func newEdge(cfg Config, l chat.Limits) *edge {
	e := &edge{origins: make(map[string]bool), trusted: cfg.TrustedProxies, exempt: cfg.LimitExempt}
	for _, o := range cfg.AllowedOrigins {
		if o = strings.TrimSpace(o); o == "*" {
			e.anyOrigin = true
		} else if o != "" {
			e.origins[normalizeOrigin(o)] = true
		}
	}
	if e.trusted == nil {
		e.trusted = loopback
	}
	if e.exempt == nil {
		e.exempt = loopback
	}
	if l.FramesPerSocket.On() {
		e.frames = l.FramesPerSocket.Bucket()
	}
	return e
}

// normalizeOrigin lower-cases an origin and drops a default port and a
// trailing slash, so the allow-list matches what browsers send.
func normalizeOrigin(o string) string {
	o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
	if h, ok := strings.CutPrefix(o, "https://"); ok {
		return "https://" + strings.TrimSuffix(h, ":443")
	}
	if h, ok := strings.CutPrefix(o, "http://"); ok {
		return "http://" + strings.TrimSuffix(h, ":80")
	}
	return o
}

// originAllowed reports whether a request carrying Origin o may be served.
func (e *edge) originAllowed(o string) bool {
	return e.anyOrigin || e.origins[normalizeOrigin(o)]
}

// originOK is the gateway's CheckOrigin: no Origin (not a browser) or an allowed one.
func (e *edge) originOK(r *http.Request) bool {
	o, ok := r.Header["Origin"]
	return !ok || len(o) == 1 && e.originAllowed(o[0])
}

// Headers every answer carries: the API is JSON for programs, never a page
// to render, frame, cache or sniff.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-store",
	"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	"X-Frame-Options":         "DENY",
}

// secure wraps the routes: security headers on every answer; explicit CORS
// for the allowed origins (preflight answered here); any request from a
// browser origin not on the list refused with 403 origin_not_allowed before
// it reaches a handler (so before any WebSocket upgrade, and before a
// cross-site form can create an account or log in).
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h[k] = []string{v}
		}
		h["Vary"] = []string{"Origin"}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			sw := &statusWriter{ResponseWriter: w}
			defer s.logRequest(sw, r, time.Now())
			w = sw
		}
		origins, browser := r.Header["Origin"]
		if !browser {
			next.ServeHTTP(w, r)
			return
		}
		if len(origins) != 1 || !s.edge.originAllowed(origins[0]) {
			writeProblem(w, s.log, sb.Errorf(sb.EFORBIDDEN, wire.CodeOriginNotAllowed,
				"requests from this origin are not allowed (see --allowed-origins)"))
			return
		}
		h.Set("Access-Control-Allow-Origin", origins[0])
		h.Set("Access-Control-Expose-Headers", "Retry-After")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status of an answer for the debug request log. It
// unwraps (for the upgrade) and flushes like the writer it wraps.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequest is the debug request log. It names the path, never the query
// (a browser's socket carries its token there) nor any header or body.
func (s *Server) logRequest(w *statusWriter, r *http.Request, start time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusSwitchingProtocols // hijacked by the upgrade
	}
	s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", status,
		"client", s.edge.clientAddr(r).String(), "duration", time.Since(start).Round(time.Microsecond))
}

// gatewayMaxBody is what the gateway may buffer of one request: nbio reads a
// whole request before the handler runs, so the bound must be there. Within
// the margin a body over MaxBody gets its 413 problem from decode; past it,
// from the gateway (tooLargeProblem), before the rest is read.
func gatewayMaxBody(maxBody int64) int {
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	return int(maxBody + 64<<10)
}

// clientAddr is the address of the client a request comes from: the TCP
// peer, or, when the peer is a trusted proxy, the last address in
// X-Forwarded-For that is not itself a trusted proxy (the first hop a
// trusted proxy saw), else X-Real-IP. A client cannot forge its way past a
// proxy that appends what it saw, since only trusted entries are skipped.
func (e *edge) clientAddr(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, e.trusted) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		addr := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a := parseAddr(hops[i])
			if !a.IsValid() {
				break // garbage: believe only what came after it
			}
			addr = a
			if !inPrefixes(a, e.trusted) {
				break
			}
		}
		return addr
	}
	if a := parseAddr(r.Header.Get("X-Real-IP")); a.IsValid() {
		return a
	}
	return peer
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port"; the zero Addr if none.
func parseAddr(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addressKey is the limiter key of a client address, or "" when the address
// is exempt from per-address limits. An IPv6 client is keyed by its /64:
// one subscriber usually gets a whole /64.
func (e *edge) addressKey(r *http.Request) string {
	a := e.clientAddr(r)
	if !a.IsValid() {
		return "unknown"
	}
	if inPrefixes(a, e.exempt) {
		return ""
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// limitAddress spends one unit of the request's client address under a per-address limit.
func (s *Server) limitAddress(r *http.Request, name string) error {
	key := s.edge.addressKey(r)
	if key == "" {
		return nil
	}
	return s.svc.Allow(r.Context(), name, key, 1)
}

// chargeBody spends an authenticated request's body against its device's
// byte budget (a chunked body, of unknown length, counts as the most allowed).
func (s *Server) chargeBody(r *http.Request, id chat.Identity) error {
	n := r.ContentLength
	if n < 0 && slices.Contains(r.TransferEncoding, "chunked") {
		n = s.cfg.MaxBody
	}
	if n <= 0 {
		return nil
	}
	return s.svc.Allow(r.Context(), chat.LimitDeviceBytes, id.DeviceID, n)
}

// socketLimits is what a socket keeps for its own limits: the address it
// holds a connection slot under, and its frame bucket. OnMessage calls are
// serial per socket, so it needs no lock (heldAcks has its own).
type socketLimits struct {
	ip      string    // conns.ip key held, "" if exempt
	tokens  float32   // frames left in the bucket
	refused int32     // frames refused in a row
	last    int64     // unix nanoseconds of the last refill; 0 before the first frame
	held    *heldAcks // acks over the frame rate; nil until the first
}

// holdConn takes the socket's connection slots (per user, per address).
func (s *Server) holdConn(r *http.Request, p *peer) error {
	p.lim.ip = s.edge.addressKey(r)
	return s.svc.HoldConn(r.Context(), p.id, p.lim.ip)
}

// releaseConn gives them back when the socket closes.
func (s *Server) releaseConn(p *peer) { s.svc.ReleaseConn(p.id, p.lim.ip) }

// admitFrame applies the limits every client frame passes before it is
// decoded: the session must not have expired (else the socket closes with
// 4003), the socket's frame rate and the device's byte budget must allow it
// (else an error frame rate_limited with retry_after_ms). A socket that goes
// on sending after a whole burst's worth of refusals is closed with 1008,
// and its frames after that are not read (Conn.Refuse).
// An ack over the frame rate is the exception: it is held (see holdAck),
// not answered and not counted toward the close, so that a client acking
// every message of a busy conversation is never disconnected for it.
func (s *Server) admitFrame(c *gateway.Conn, p *peer, data []byte) bool {
	if s.svc.SessionExpired(p.id) {
		c.Close(CloseSessionExpired, "session expired; log in again")
		return false
	}
	var err error
	if wait := p.lim.take(s.edge.frames, time.Now().UnixNano()); wait > 0 {
		if s.holdAck(p, data) {
			return false
		}
		err = chat.RateLimited(chat.LimitSocketFrames, wait)
	} else {
		err = s.svc.Allow(s.ctx, chat.LimitDeviceBytes, p.id.DeviceID, int64(len(data)))
	}
	if err == nil {
		p.lim.refused = 0
		return true
	}
	p.lim.refused++
	if burst := int32(max(s.edge.frames.Burst, 16)); p.lim.refused > burst {
		c.Refuse(gateway.ClosePolicy, "rate limit ignored")
		return false
	}
	var head wire.Head
	_ = json.Unmarshal(data, &head) // only to name the refused frame's id
	s.writeError(c, head.ID, err)
	return false
}

// AdmitPing is the gateway's PingAdmitter: a WebSocket ping costs the node
// a pong, so it counts against the socket's frame rate like any frame. One
// over the rate is dropped unanswered (an error frame would cost more than
// the pong) and counts toward the same 1008 close as an ignored
// rate_limited. It runs serialised with OnMessage, so it may touch p.lim.
func (s *Server) AdmitPing(c *gateway.Conn) bool {
	p := c.State().(*peer)
	if s.svc.SessionExpired(p.id) {
		c.Close(CloseSessionExpired, "session expired; log in again")
		return false
	}
	if wait := p.lim.take(s.edge.frames, time.Now().UnixNano()); wait <= 0 {
		p.lim.refused = 0
		return true
	}
	p.lim.refused++
	if burst := int32(max(s.edge.frames.Burst, 16)); p.lim.refused > burst {
		c.Refuse(gateway.ClosePolicy, "rate limit ignored")
	}
	return false
}

var _ gateway.PingAdmitter = (*Server)(nil)

// Acks over the frame rate. An application that acks every message sends
// as many acks as it receives messages, which in a busy group is more than
// any frame rate meant for abuse; refused, they got error frames and then
// the 1008 close, which a client takes as final. Only the highest seq of a
// conversation matters, so such acks are held instead: the socket keeps the
// highest seq per conversation and applies them together heldAckPeriod
// after the first. What a flood of acks costs is bounded: a decode of a
// frame of at most maxHeldAckFrame bytes and a map update each, and at most
// maxHeldAcks acks applied per heldAckPeriod (each a membership check and
// the acker's coalescing; never a store write of its own). An ack over the
// rate for a conversation past maxHeldAcks is dropped unanswered: its
// messages come again on the next connection, like any unacked message, and
// a later ack carries a higher seq anyway.
const (
	heldAckPeriod   = 250 * time.Millisecond
	maxHeldAcks     = 64
	maxHeldAckFrame = 512 // bytes: an ack frame is about 80
)

// heldAcks are a socket's acks over the frame rate, waiting for the timer.
// The timer's goroutine applies them while the socket's reader holds more.
type heldAcks struct {
	mu    sync.Mutex
	seqs  map[string]int64 // conversation -> highest seq held
	timer *time.Timer      // applies seqs; running while seqs is not empty
}

// holdAck holds data if it is a well-formed ack, and reports whether it did.
// It runs for frames over the socket's frame rate only.
func (s *Server) holdAck(p *peer, data []byte) bool {
	if len(data) > maxHeldAckFrame {
		return false
	}
	var head wire.Head
	var f wire.ClientFrame
	if headErr, err := wire.DecodeClientFrame(data, &head, &f); headErr != nil || err != nil ||
		f.Type != wire.TypeAck || f.Conversation == "" || f.Seq == nil || *f.Seq < 0 {
		return false // refused like any frame over the rate
	}
	h := p.lim.held
	if h == nil {
		h = &heldAcks{}
		p.lim.held = h
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq, ok := h.seqs[f.Conversation]; ok {
		h.seqs[f.Conversation] = max(seq, *f.Seq)
		return true
	}
	if len(h.seqs) >= maxHeldAcks {
		return true // dropped: see heldAckPeriod
	}
	if h.seqs == nil {
		h.seqs = make(map[string]int64)
	}
	h.seqs[f.Conversation] = *f.Seq
	if len(h.seqs) == 1 { // the first since the last round: start one
		if h.timer == nil {
			h.timer = time.AfterFunc(heldAckPeriod, func() { s.applyHeldAcks(p, h) })
		} else {
			h.timer.Reset(heldAckPeriod)
		}
	}
	return true
}

// applyHeldAcks applies p's held acks as if they had just arrived: an ack
// that fails (not a member, say) is answered with its error frame. It runs
// after the socket closed too: the client sent those acks.
func (s *Server) applyHeldAcks(p *peer, h *heldAcks) {
	h.mu.Lock()
	seqs := h.seqs
	h.seqs = nil
	h.mu.Unlock()
	if s.ctx.Err() != nil {
		return // shutting down: the acker was flushed; the messages come again
	}
	for conv, seq := range seqs {
		if err := s.svc.Ack(s.ctx, p.id, conv, seq); err != nil {
			s.writeError(p.conn, "", err)
		}
	}
}

// take spends one frame of the socket's bucket, or says how long until one is there.
func (l *socketLimits) take(b chat.Bucket, now int64) time.Duration {
	if b.Rate <= 0 {
		return 0
	}
	if l.last == 0 {
		l.tokens, l.last = float32(b.Burst), now
	}
	if now > l.last {
		l.tokens = float32(min(b.Burst, float64(l.tokens)+float64(now-l.last)/1e9*b.Rate))
		l.last = now
	}
	if l.tokens < 1 {
		return time.Duration((1 - float64(l.tokens)) / b.Rate * float64(time.Second))
	}
	l.tokens--
	return 0
}

// retryAfterMS rounds a wait up to whole milliseconds for an error frame.
func retryAfterMS(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// closeExpiredSessions closes, every second, the sockets whose token
// expired: admitFrame catches the ones that send, this the idle ones, which
// would otherwise go on receiving, so a socket ends within a second of its
// token. One pass over the node's sockets is a time comparison each (about
// a millisecond for 100k); a timer per socket would cost ~250 B of each
// idle socket's memory (docs/benchmarks.md).
func (s *Server) closeExpiredSessions() {
	const every = time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.closeExpired()
		}
	}
}

func (s *Server) closeExpired() {
	var expired []*peer
	s.hub.mu.RLock()
	for _, p := range s.hub.peers {
		if s.svc.SessionExpired(p.id) {
			expired = append(expired, p)
		}
	}
	s.hub.mu.RUnlock()
	for _, p := range expired {
		p.conn.Close(CloseSessionExpired, "session expired; log in again")
	}
}
