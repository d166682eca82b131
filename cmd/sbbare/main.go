// Command sbbare is the bare broadcast server: the ceiling that
// switchboard's fan-out is measured against, not a product.
//
// It runs on the node's own socket layer (internal/gateway, on nbio) and
// speaks just enough of docs/protocol.md for sbload: accounts and logins
// are kept in memory (no password hashing, no store), a socket is
// authenticated by looking its token up in a map, gets {"type":"synced"}
// at once, and a `send` frame is answered with `sent` while one `message`
// frame, encoded once, is written to every other open socket in a plain
// loop over Conn.Write. POST /bench/broadcast does the same from HTTP.
// Nothing is stored, nothing is checked (membership, ids, rate), there is
// no bus: what is left is the socket layer's cost of a broadcast, which
// scripts/bench-broadcast.sh runs next to a real node with the same client.
//
//	sbbare --addr 127.0.0.1:0     (logs "url=http://127.0.0.1:PORT")
//
// GET /metrics serves the process and Go collectors, as a node does, so
// sbload reads RSS and CPU the same way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sbbare:", err)
		os.Exit(2)
	}
	if err := m.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "sbbare:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "sbbare:", err)
		os.Exit(1)
	}
}

// Config is every setting of sbbare. The socket limits default to the
// node's, so both run the gateway the same way.
type Config struct {
	Addr            string
	MaxFrame        int
	MaxQueued       int
	PingInterval    time.Duration
	RequestTimeout  time.Duration
	GCPercent       int
	Pprof           bool
	LogLevel        string
	ShutdownTimeout time.Duration
}

// Main is the program: a test starts one on port 0 with ParseFlags + Run
// and stops it with Close.
type Main struct {
	Config Config
	Stderr io.Writer

	srv *bare
}

// NewMain returns a Main with the node's default socket settings.
func NewMain() *Main {
	return &Main{Stderr: os.Stderr, Config: Config{
		Addr: "127.0.0.1:8090", MaxFrame: 64 << 10, MaxQueued: 1 << 20, PingInterval: 30 * time.Second,
		RequestTimeout: 30 * time.Second, GCPercent: 100, LogLevel: "info", ShutdownTimeout: 10 * time.Second,
	}}
}

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	c := &m.Config
	fs := flag.NewFlagSet("sbbare", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (HTTP and WebSocket); port 0 picks one")
	fs.IntVar(&c.MaxFrame, "max-frame", c.MaxFrame, "WebSocket message limit in bytes")
	fs.IntVar(&c.MaxQueued, "max-queued", c.MaxQueued, "bytes queued for one socket before it is dropped as a slow consumer")
	fs.DurationVar(&c.PingInterval, "ping-interval", c.PingInterval, "WebSocket keepalive ping interval")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "time to receive a whole HTTP request (and the upgrade request), as a node's --request-timeout")
	fs.IntVar(&c.GCPercent, "gc-percent", c.GCPercent, "garbage collector target (Go's GOGC)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve Go profiles under /debug/pprof")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGTERM waits for the sockets to close")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return nil
}

// Run starts serving and returns once listening.
func (m *Main) Run() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	debug.SetGCPercent(m.Config.GCPercent)
	srv := newBare(m.Config, log)
	if err := srv.start(); err != nil {
		return err
	}
	m.srv = srv
	log.Info("sbbare listening (a broadcast ceiling, not a product)", "url", m.URL())
	return nil
}

// URL is the server's base URL once Run returned.
func (m *Main) URL() string { return "http://" + m.srv.gw.Addr().String() }

// Close closes every socket with 1001 and stops.
func (m *Main) Close() error {
	if m.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	return m.srv.gw.Shutdown(ctx)
}
