package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/media"
	"github.com/switchboard-chat/switchboard/internal/postgres"
	"github.com/switchboard-chat/switchboard/internal/redisbus"
	"github.com/switchboard-chat/switchboard/internal/redisstate"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
	"github.com/switchboard-chat/switchboard/wire"
)

// Config is every setting of a node.
type Config struct {
	DB              string        // "postgres://..." or a SQLite file path; empty: <data-dir>/switchboard.db
	DBReplicas      []string      // PostgreSQL streaming replicas for reads that may lag
	ReplicaMaxLag   time.Duration // how far behind a replica may be and still serve them
	Redis           string        // "redis://..." for the bus, limits and session cache nodes share; empty: in-process, per node
	RedisCluster    []string      // seed addresses (host:port) of a Redis Cluster for the same, instead of Redis
	DataDir         string
	MediaDir        string        // images and attachments; empty: <data-dir>/media
	MediaSweep      time.Duration // how often attachments past retention are deleted; 0: never
	Media           media.Config
	MediaOff        bool // no media routes (503)
	Server          server.Config
	Chat            chat.Config
	Retention       chat.RetentionConfig
	Calls           calls.Config // call signalling's timeouts (tests shorten them)
	GCPercent       int          // Go's GOGC for this process; lower trades CPU for memory
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
}

// Main is the program: a test starts one on port 0 with ParseFlags + Run and stops it with Close.
type Main struct {
	Config Config
	Stderr io.Writer

	log    *slog.Logger
	stop   context.CancelFunc // stops background jobs
	jobs   sync.WaitGroup
	store  sb.Store
	bus    sb.Bus
	calls  *calls.Service
	shared *redisstate.State // limits and session cache in Redis (--redis or --redis-cluster)
	server *server.Server
}

// NewMain returns a Main with default settings.
func NewMain() *Main {
	return &Main{Stderr: os.Stderr, Config: Config{
		DataDir: "data", Media: media.Config{MaxBytes: 20 << 20, MaxPixels: 50_000_000, Quality: 80}, GCPercent: 100, ReplicaMaxLag: time.Second, LogLevel: "info", LogFormat: "text", ShutdownTimeout: 10 * time.Second,
		Server: server.Config{Addr: "127.0.0.1:8080", AdminAddr: "127.0.0.1:9464", MaxBody: 1 << 20, MaxFrame: 64 << 10, MaxQueued: 1 << 20, PingInterval: 30 * time.Second,
			TrustedProxies: loopback, LimitExempt: loopback, RequestTimeout: 30 * time.Second},
		Retention:  chat.RetentionConfig{Period: 30 * 24 * time.Hour, Interval: time.Minute, Batch: 500},
		MediaSweep: time.Hour,
		Chat: chat.Config{Argon2: chat.DefaultArgon2, SessionTTL: 30 * 24 * time.Hour, MaxMembers: 1000,
			SendRate: 50, SendBurst: 100, Limits: chat.DefaultLimits,
			MaxAssistedBytes: 64 << 10, MaxAssistedRecipients: 256, HashWait: 2 * time.Second},
	}}
}

// ParseFlags reads settings from getenv (SWITCHBOARD_*) and then from args.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c := &m.Config
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "Usage: switchboard [serve|migrate] [flags]\n\n"+
			"Every flag can also be set as SWITCHBOARD_<NAME> (upper case, '-' as '_'); flags win.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Server.Addr, "addr", c.Server.Addr, "listen address (HTTP API and WebSocket)")
	fs.StringVar(&c.Server.AdminAddr, "admin-addr", c.Server.AdminAddr, "listen address of /metrics (and /debug/pprof with --pprof); keep it private; empty = none")
	fs.StringVar(&c.DB, "db", c.DB, "store: a postgres:// URL or PostgreSQL keyword string (host=... dbname=...), or a SQLite file path (default <data-dir>/switchboard.db); anything else is refused")
	fs.Func("db-replica", "a PostgreSQL streaming replica of --db (URL or keyword string; repeat the flag, or comma-separate in the variable, for several): history pages, conversation lists and device directories read from healthy replicas, round robin", func(v string) error {
		for _, u := range splitList(v) {
			if kind, err := storeKind(u); err != nil || kind != "postgres" {
				return fmt.Errorf("want a PostgreSQL URL or keyword string")
			}
			c.DBReplicas = append(c.DBReplicas, u)
		}
		return nil
	})
	fs.DurationVar(&c.ReplicaMaxLag, "replica-max-lag", c.ReplicaMaxLag, "a replica further behind the primary than this (WAL positions) serves no reads until it catches up")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "folder for the embedded store")
	fs.StringVar(&c.Redis, "redis", c.Redis, "redis://host:port/db URL of the Redis that nodes sharing one PostgreSQL use for the bus, the abuse limits and the session cache (default: in-process, one node)")
	fs.StringVar(&c.MediaDir, "media-dir", c.MediaDir, "folder for uploaded images and encrypted attachments (default <data-dir>/media); nodes behind one NGINX need it shared")
	fs.Int64Var(&c.Media.MaxBytes, "media-max-bytes", c.Media.MaxBytes, "largest image or attachment upload in bytes; every HTTP request may be buffered up to this size")
	fs.Int64Var(&c.Media.MaxPixels, "media-max-pixels", c.Media.MaxPixels, "largest image (width x height) the node decodes; larger ones get too_many_pixels before decoding")
	fs.IntVar(&c.Media.Workers, "media-workers", c.Media.Workers, "images processed at once (0 = one per core but one, at least 1: a core stays with the sockets)")
	fs.IntVar(&c.Media.Quality, "media-quality", c.Media.Quality, "lossy WebP quality of processed images (1-100)")
	fs.StringVar(&c.Server.MediaURL, "media-url", c.Server.MediaURL, "base URL put before /media/... in upload answers (a CDN's address); empty = paths on the node")
	fs.DurationVar(&c.MediaSweep, "media-sweep-interval", c.MediaSweep, "how often to delete attachments last sent (or uploaded) more than --retention plus an hour ago; 0 keeps them forever")
	fs.BoolVar(&c.MediaOff, "media-off", c.MediaOff, "disable image and attachment uploads (503 unavailable)")
	fs.Func("redis-cluster", "seed addresses HOST:PORT[,HOST:PORT...] of a Redis Cluster (7 or later) instead of --redis, for the bus (conversations by sharded pub/sub), the abuse limits and the session cache", func(s string) error {
		c.RedisCluster = splitList(s)
		return nil
	})
	fs.DurationVar(&c.Server.InterestLinger, "interest-linger", chat.Linger, "how long a conversation no socket on this node is in stays subscribed on the bus (a reconnect within it costs no bus work)")
	fs.Int64Var(&c.Server.MaxBody, "max-body", c.Server.MaxBody, "HTTP request body limit in bytes")
	fs.IntVar(&c.Server.MaxFrame, "max-frame", c.Server.MaxFrame, "WebSocket message limit in bytes (also the largest ciphertext)")
	fs.IntVar(&c.Server.MaxQueued, "max-queued", c.Server.MaxQueued, "bytes queued for one socket before it is dropped as a slow consumer")
	fs.DurationVar(&c.Server.PingInterval, "ping-interval", c.Server.PingInterval, "WebSocket keepalive ping interval; a socket silent for twice this is closed")
	fs.DurationVar(&c.Chat.SessionTTL, "session-ttl", c.Chat.SessionTTL, "lifetime of a login token")
	fs.IntVar(&c.Chat.MaxMembers, "max-members", c.Chat.MaxMembers, "members per conversation")
	fs.Float64Var(&c.Chat.SendRate, "send-rate", c.Chat.SendRate, "sends per second per device")
	fs.IntVar(&c.Chat.SendBurst, "send-burst", c.Chat.SendBurst, "sends a device may burst above the rate")
	fs.Func("argon2-time", fmt.Sprintf("argon2id passes for new password hashes (default %d)", c.Chat.Argon2.Time), uintFlag(&c.Chat.Argon2.Time))
	fs.Func("argon2-memory", fmt.Sprintf("argon2id memory in KiB for new password hashes (default %d)", c.Chat.Argon2.MemoryKiB), uintFlag(&c.Chat.Argon2.MemoryKiB))
	// Abuse limits and the edge's security settings (docs/security.md). For a
	// count, 0 is unlimited; a rate is N/PERIOD (20/1m, 32MiB/1m) or 0 for unlimited.
	fs.Var(rateFlag{&c.Chat.Limits.LoginPerAccount}, "login-rate-account", "login attempts per username (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.LoginPerIP}, "login-rate-ip", "login attempts per client address (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.SignupPerIP}, "signup-rate-ip", "accounts created per client address (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.ConvPerDevice}, "conversation-rate-device", "conversations a device creates (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.ConvPerIP}, "conversation-rate-ip", "conversations created per client address (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.SendPerConversation}, "send-rate-conversation", "sends into one conversation from all its members (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.FramesPerSocket}, "frame-rate", "client frames per socket (N/PERIOD, 0 = unlimited)")
	fs.Var(rateFlag{&c.Chat.Limits.BytesPerDevice}, "device-bytes", "bytes a device sends in frames and request bodies (N/PERIOD, 0 = unlimited)")
	fs.IntVar(&c.Chat.Limits.ConnsPerIP, "max-conns-per-ip", c.Chat.Limits.ConnsPerIP, "open sockets per client address (0 = unlimited)")
	fs.IntVar(&c.Chat.Limits.ConnsPerUser, "max-conns-per-user", c.Chat.Limits.ConnsPerUser, "devices of one user connected at once (0 = unlimited)")
	fs.IntVar(&c.Chat.Limits.HistoryBytes, "history-bytes", c.Chat.Limits.HistoryBytes, "ciphertext bytes of one history page; next_after continues it (0 = unlimited)")
	fs.IntVar(&c.Chat.Limits.HistoryPerDevice, "history-reads-per-device", c.Chat.Limits.HistoryPerDevice, "history pages one device reads at once; more get 429 (0 = unlimited)")
	fs.IntVar(&c.Chat.Limits.HistoryPerNode, "history-reads", c.Chat.Limits.HistoryPerNode, "history pages read at once on this node, 4 x cores unless set; more get 503 (0 = unlimited)")
	fs.IntVar(&c.Chat.Limits.DevicesPerUser, "max-devices", c.Chat.Limits.DevicesPerUser, "active devices per user; a login past it gets too_many_devices (0 = unlimited)")
	fs.IntVar(&c.Chat.MaxAssistedBytes, "max-assisted-bytes", c.Chat.MaxAssistedBytes, "plaintext bytes of a server-assisted send, which the node seals once per recipient device (0 = only --max-frame)")
	fs.IntVar(&c.Chat.MaxAssistedRecipients, "max-assisted-recipients", c.Chat.MaxAssistedRecipients, "recipient devices of a server-assisted send (0 = unlimited)")
	fs.IntVar(&c.Chat.HashSlots, "hash-slots", c.Chat.HashSlots, "password hashes run at once, each holding --argon2-memory (0 = one per core but one, at least one)")
	fs.DurationVar(&c.Chat.HashWait, "hash-wait", c.Chat.HashWait, "how long a login or signup waits for a hashing slot before 503 unavailable (0 = not at all)")
	fs.Var(prefixesFlag{&c.Server.LimitExempt}, "limit-exempt", "client addresses or CIDRs no per-address limit applies to (comma-separated; empty = none)")
	fs.Var(prefixesFlag{&c.Server.TrustedProxies}, "trusted-proxies", "proxy addresses or CIDRs whose X-Forwarded-For / X-Real-IP name the client (comma-separated; empty = none)")
	fs.Func("allowed-origins", "browser origins (scheme://host[:port], comma-separated; * = any) allowed to call the API and open sockets; requests without Origin are always allowed", func(v string) error {
		c.Server.AllowedOrigins = splitList(v)
		return nil
	})
	fs.IntVar(&c.Server.MaxConns, "max-conns", c.Server.MaxConns, "open sockets on this node; past it an upgrade gets 503 with Retry-After and /readyz fails, so a balancer sends new sockets elsewhere (0 = unlimited)")
	fs.BoolVar(&c.Server.NoPresence, "no-presence", c.Server.NoPresence, "shed presence: presence_subscribe gets an error frame unavailable, GET /v1/users/{id}/presence 503 (the first thing to turn off on an overloaded node)")
	fs.BoolVar(&c.Server.NoTyping, "no-typing", c.Server.NoTyping, "shed typing: typing frames are dropped and no typing notice is written to this node's sockets")
	fs.DurationVar(&c.Server.FlushDelay, "flush-delay", c.Server.FlushDelay, "how long the socket writer waits once a frame is pending, so that more frames share one write syscall (0 = write at once; frames still coalesce while the writer is busy)")
	fs.DurationVar(&c.Server.RequestTimeout, "request-timeout", c.Server.RequestTimeout, "time to receive a whole HTTP request (headers and body), and to keep an idle HTTP connection")
	fs.BoolVar(&c.Chat.E2EOnly, "e2e-only", c.Chat.E2EOnly, "refuse server-assisted sends (plaintext) with plaintext_refused: clients must encrypt")
	fs.DurationVar(&c.Retention.Period, "retention", c.Retention.Period, "delete stored ciphertexts older than this")
	fs.BoolVar(&c.Retention.OnAck, "purge-acked", c.Retention.OnAck, "also delete a device's ciphertext as soon as that device acked it")
	fs.DurationVar(&c.Retention.Interval, "purge-interval", c.Retention.Interval, "pause between retention passes")
	fs.IntVar(&c.GCPercent, "gc-percent", c.GCPercent, "garbage collector target (Go's GOGC): 25 keeps about a quarter less memory per idle socket, for about twice the collector's CPU under traffic")
	fs.BoolVar(&c.Server.Pprof, "pprof", c.Server.Pprof, "serve Go profiles under /debug/pprof on the admin listener (for benchmarks; never on a public address)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGTERM waits for in-flight work")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	// 0 on the command line is unlimited; in chat.Config, 0 is the default.
	for _, n := range []*int{&c.Chat.Limits.ConnsPerIP, &c.Chat.Limits.ConnsPerUser, &c.Chat.Limits.DevicesPerUser,
		&c.Chat.Limits.HistoryBytes, &c.Chat.Limits.HistoryPerDevice, &c.Chat.Limits.HistoryPerNode,
		&c.Chat.MaxAssistedBytes, &c.Chat.MaxAssistedRecipients} {
		if *n == 0 {
			*n = -1
		}
	}
	if c.Chat.HashWait == 0 {
		c.Chat.HashWait = -1
	}
	if c.Chat.SendRate == 0 || c.Chat.SendBurst == 0 {
		c.Chat.SendRate, c.Chat.SendBurst = -1, -1
	}
	return nil
}

func uintFlag(p *uint32) func(string) error {
	return func(s string) error {
		var v uint32
		if _, err := fmt.Sscan(s, &v); err != nil || v == 0 {
			return fmt.Errorf("want a positive integer")
		}
		*p = v
		return nil
	}
}

func (m *Main) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch m.Config.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(m.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(m.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log-format must be text or json, not %q", m.Config.LogFormat)
}

// openStore opens and migrates the configured store.
func (m *Main) openStore(ctx context.Context) (sb.Store, string, error) {
	db := m.Config.DB
	kind, err := storeKind(db)
	if err != nil {
		return nil, "", err
	}
	if len(m.Config.DBReplicas) > 0 && kind != "postgres" {
		return nil, "", fmt.Errorf("--db-replica needs --db to be PostgreSQL")
	}
	if kind == "postgres" {
		s, err := postgres.OpenConfig(ctx, db, postgres.Config{Replicas: m.Config.DBReplicas, MaxLag: m.Config.ReplicaMaxLag, Logger: m.log})
		if err != nil {
			return nil, "", fmt.Errorf("open postgres: %w", err)
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, "", fmt.Errorf("migrate postgres: %w", err)
		}
		return s, "postgres", nil
	}
	if db == "" {
		db = filepath.Join(m.Config.DataDir, "switchboard.db")
	}
	s, err := sqlite.Open(db)
	if err != nil {
		return nil, "", fmt.Errorf("open sqlite %s: %w", db, err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, "", fmt.Errorf("migrate sqlite %s: %w", db, err)
	}
	return s, "sqlite:" + db, nil
}

// Migrate applies the store's migrations and closes it.
func (m *Main) Migrate(ctx context.Context) error {
	s, name, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "switchboard: %s is migrated\n", name)
	return s.Close()
}

// Run opens the store and bus and starts serving; it returns once listening.
func (m *Main) Run(ctx context.Context) error {
	log, err := m.logger()
	if err != nil {
		return err
	}
	m.log = log
	debug.SetGCPercent(m.Config.GCPercent)
	store, name, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	m.store = store
	// One registry per node, served at /metrics on the admin listener: each
	// adapter registers its own collectors, the server adds its own.
	metrics := prometheus.NewRegistry()
	if r, ok := store.(interface {
		Register(prometheus.Registerer) error
	}); ok {
		if err := r.Register(metrics); err != nil {
			m.Close()
			return fmt.Errorf("store metrics: %w", err)
		}
	}
	busName := "in-process"
	var callState calls.KV = &calls.MemoryKV{}
	cc := m.Config.Chat
	switch {
	case m.Config.Redis != "" && len(m.Config.RedisCluster) > 0:
		m.Close()
		return fmt.Errorf("--redis and --redis-cluster: set one")
	case m.Config.Redis == "" && len(m.Config.RedisCluster) == 0:
		m.bus = &inmem.Bus{}
		cc.Presence = inmem.NewPresence(chat.PresenceTTL, nil).Node("local")
	default:
		// Conversation topics are sharded on a cluster: each goes to its
		// slot's shard only, and a node subscribes to those it has sockets
		// in. Control events go everywhere.
		bus, err := redisbus.OpenConfig(ctx, redisbus.Config{URL: m.Config.Redis, Cluster: m.Config.RedisCluster,
			Sharded: []string{chat.TopicPrefix}})
		if err != nil {
			m.Close()
			return err
		}
		m.bus, busName = bus, "redis"
		callState = bus // every node sees one state per call (docs/architecture.md, "Calls")
		// Each process claims its users under its own name: a restarted
		// node is a new one, and the old one's claims lapse.
		cc.Presence = bus.Presence(chat.NewID("node"), chat.PresenceTTL)
		if len(m.Config.RedisCluster) > 0 {
			busName = "redis-cluster"
		}
		if err := bus.Register(metrics); err != nil {
			m.Close()
			return fmt.Errorf("bus metrics: %w", err)
		}
	}
	sc := m.Config.Server
	cc.Logger, sc.Logger, sc.Metrics = log, log, metrics
	if m.Config.Redis != "" || len(m.Config.RedisCluster) > 0 {
		rc := redisstate.Config{URL: m.Config.Redis, Cluster: m.Config.RedisCluster}
		if m.shared, err = openShared(ctx, rc, &cc, metrics, log); err != nil {
			m.Close()
			return err
		}
	}
	if cc.MaxCiphertext == 0 {
		cc.MaxCiphertext = sc.MaxFrame
	}
	if !m.Config.MediaOff {
		dir := m.Config.MediaDir
		if dir == "" {
			dir = filepath.Join(m.Config.DataDir, "media")
		}
		blobs := &media.Dir{Path: filepath.Join(dir, "blobs")}
		sc.Media = media.New(blobs, m.Config.Media)
		if native, detail := media.Encoder(); native {
			log.Info("media: WebP encoder", "encoder", detail)
		} else {
			log.Warn("media: WebP encoder in WebAssembly: image uploads stall the garbage collector and so every socket; install libwebp-dev (docs/runbook.md)", "encoder", detail)
		}
		sc.Attachments = &media.Attachments{Blobs: blobs, Path: filepath.Join(dir, "attachments")}
	}
	svc := chat.New(store, m.bus, cc)
	kc := m.Config.Calls
	kc.Logger = log
	if kc.Missed == nil {
		kc.Missed = missedEvents{svc}
	}
	m.calls = calls.New(svc, callState, m.bus, kc)
	if err := m.calls.Register(metrics); err != nil {
		m.Close()
		return fmt.Errorf("calls metrics: %w", err)
	}
	sc.Calls = m.calls
	if cc.Sessions != nil {
		if err := registerSessionCache(metrics, svc); err != nil {
			m.Close()
			return fmt.Errorf("session cache metrics: %w", err)
		}
	}
	m.server = server.New(svc, sc)
	if err := m.server.Start(); err != nil {
		m.Close()
		return err
	}
	jobCtx, stop := context.WithCancel(context.Background())
	m.stop = stop
	m.jobs.Go(func() { svc.RunRetention(jobCtx, m.Config.Retention) })
	if att := sc.Attachments; att != nil && m.Config.MediaSweep > 0 {
		m.jobs.Go(func() { att.RunSweep(jobCtx, m.Config.Retention.Period, m.Config.MediaSweep, log) })
	}
	log.Info("switchboard listening", "url", "http://"+m.server.Addr().String(), "admin", m.AdminURL(), "store", name,
		"replicas", len(m.Config.DBReplicas), "bus", busName)
	return nil
}

// URL is the node's base URL once Run returned.
func (m *Main) URL() string { return "http://" + m.server.Addr().String() }

// AdminURL is the base URL of the node's admin listener (/metrics) once Run
// returned, or "" without one (--admin-addr "").
func (m *Main) AdminURL() string {
	if a := m.server.AdminAddr(); a != nil {
		return "http://" + a.String()
	}
	return ""
}

// Close shuts the node down gracefully: sockets get 1001, in-flight commits finish.
func (m *Main) Close() error {
	var err error
	if m.stop != nil {
		m.stop()
		m.jobs.Wait()
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		err = m.server.Shutdown(ctx)
		cancel()
	}
	if m.calls != nil {
		m.calls.Close()
	}
	if m.bus != nil {
		m.bus.Close()
	}
	if m.shared != nil {
		m.shared.Close()
	}
	if m.store != nil {
		m.store.Close()
	}
	if m.log != nil {
		m.log.Info("switchboard stopped")
	}
	return err
}

// missedEvents stores a missed call as a call_missed event of its
// conversation (calls.MissedRecorder), from the caller's device: the
// callee's devices get it live, at sync and in history.
type missedEvents struct{ svc *chat.Service }

func (m missedEvents) RecordMissed(ctx context.Context, conv, callID string, caller calls.Party, callee string) error {
	_, err := m.svc.AppendEvent(ctx, chat.Identity{UserID: caller.User, DeviceID: caller.Device}, conv,
		wire.Event{Kind: wire.EventCallMissed, UserID: callee, By: caller.User, CallID: callID})
	return err
}
