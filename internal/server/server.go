package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/internal/media"
)

// Config is the edge's settings; zero values get the defaults in brackets.
type Config struct {
	Addr         string        // listen address ["127.0.0.1:8080"]
	MaxBody      int64         // HTTP request body limit [1 MiB]
	MaxFrame     int           // WebSocket message limit [64 KiB]
	MaxQueued    int           // bytes queued per socket before it is dropped [1 MiB]
	PingInterval time.Duration // WebSocket keepalive [30s]
	AdminAddr    string        // listen address of /metrics (and /debug/pprof); "" = none (admin.go) [""; the binary's default is 127.0.0.1:9464]
	Pprof        bool          // serve /debug/pprof on the admin listener (profiling; keep that address private)
	Logger       *slog.Logger

	// The edge's security settings (security.go, docs/security.md).
	AllowedOrigins []string       // browser origins allowed to call the API and open sockets ("*": any) [none]
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For names the client [loopback]; empty, not nil: none
	LimitExempt    []netip.Prefix // client addresses no per-address limit applies to [loopback]; empty, not nil: none
	RequestTimeout time.Duration  // to receive a whole HTTP request, and idle keep-alive [30s]
	FlushDelay     time.Duration  // how long a socket's first pending frame waits for more to share its write [0]
	InterestLinger time.Duration  // how long a conversation no socket here is in stays subscribed on the bus [chat.Linger, 30s]
	// MaxConns caps the sockets of this node: past it an upgrade gets 503
	// with Retry-After and /readyz fails, so a balancer sends new sockets
	// elsewhere while the open ones keep working (load shedding) [0: none].
	MaxConns int
	// NoPresence and NoTyping shed presence and typing, the first things
	// to turn off on an overloaded node (docs/runbook.md, the backup
	// plan): presence_subscribe gets an error frame unavailable and GET
	// .../presence 503; typing frames are dropped, and no typing notice is
	// written to this node's sockets [false: both on].
	NoPresence, NoTyping bool

	// Calls is the node's call signalling (internal/calls); nil answers
	// call frames with not_supported.
	Calls *calls.Service
	// Media serves POST /v1/media and GET /media/{hash}.webp (media.go);
	// Attachments, POST and GET /v1/attachments. Nil: those answer 503
	// (and GET 404). MediaURL prefixes the URLs an upload answers with
	// (a CDN's origin, e.g. "https://cdn.example"); "" gives paths.
	Media       *media.Pipeline
	Attachments *media.Attachments
	MediaURL    string

	// Metrics is the node's registry, served at /metrics on the admin listener, in which the
	// adapters (the Redis bus) registered their own collectors; the server
	// adds its own [a new registry].
	Metrics *prometheus.Registry
}

// Server is one node's HTTP API and WebSocket gateway.
type Server struct {
	cfg   Config
	svc   *chat.Service
	log   *slog.Logger
	gw    *gateway.Server
	hub   *hub
	edge  *edge
	watch *watchers // sockets that watch presence (presence.go)

	metrics *metrics // metrics.go

	ctx      context.Context // cancelled at shutdown: stops syncs and in-flight work
	cancel   context.CancelFunc
	syncs    sync.WaitGroup
	sends    sync.WaitGroup // socket sends waiting for their commit (ws.go)
	unsubBus func()

	admin   *http.Server // the admin listener (admin.go); nil without AdminAddr
	adminLn net.Listener
}

// New wires a server over the service, which owns the store and the bus;
// Start listens.
func New(svc *chat.Service, cfg Config) *Server {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := newMetrics()
	s := &Server{cfg: cfg, svc: svc, log: cfg.Logger, hub: newHub(svc, cfg.Logger, m), edge: newEdge(cfg, svc.Limits()), metrics: m,
		watch: newWatchers()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.gw = gateway.New(gateway.Config{Addr: cfg.Addr, Handler: s.countHTTP(s.secure(s.routes())), MaxFrame: cfg.MaxFrame,
		MaxQueued: cfg.MaxQueued, PingInterval: cfg.PingInterval, Logger: cfg.Logger,
		MaxBody: gatewayMaxBody(max(cfg.MaxBody, mediaMaxBytes(cfg.Media))), TooLarge: tooLargeProblem(cfg.MaxBody), RequestTimeout: cfg.RequestTimeout, CheckOrigin: s.edge.originOK,
		FlushDelay: cfg.FlushDelay}, s)
	return s
}

// Start subscribes to the bus and starts listening.
func (s *Server) Start() error {
	unsub, err := s.svc.Subscribe(chat.Live{Message: s.hub.onBus, Control: s.hub.onControl,
		Resumed: func() { s.hub.resume(s.ctx) }, Forget: s.hub.seq.forget, Linger: s.cfg.InterestLinger})
	if err != nil {
		return err
	}
	unsubCalls, err := s.subscribeCalls()
	if err != nil {
		unsub()
		return err
	}
	unsubSocial, err := s.startSocial() // presence.go
	if err != nil {
		unsub()
		unsubCalls()
		return err
	}
	s.unsubBus = func() { unsub(); unsubCalls(); unsubSocial() }
	if err := s.gw.Start(); err != nil {
		s.unsubBus()
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	if err := s.startAdmin(); err != nil {
		_ = s.gw.Shutdown(context.Background())
		s.unsubBus()
		return err
	}
	s.syncs.Go(s.closeExpiredSessions)
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.gw.Addr() }

// Shutdown stops accepting, closes every socket with 1001 going away and
// waits for in-flight frames (and their commits) to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.gw.Shutdown(ctx)
	if aerr := s.shutdownAdmin(ctx); aerr != nil && err == nil {
		err = aerr
	}
	s.cancel()
	s.syncs.Wait()
	s.sends.Wait() // their answers go nowhere, but their messages are published
	// Every socket is closed: their users go offline now, not when their claims lapse.
	s.svc.StopPresence(ctx)
	// Every socket is closed: commit the acks they sent.
	if ferr := s.svc.FlushAcks(ctx); ferr != nil && err == nil {
		err = ferr
	}
	if s.unsubBus != nil {
		s.unsubBus()
	}
	return err
}
