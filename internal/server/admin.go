package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// The admin listener (Config.AdminAddr, --admin-addr) serves what only the
// operator's network may reach: /metrics, and Go's profiles under
// /debug/pprof with --pprof. They used to share the API's port, which the
// proxy exposes; a node's metrics name its load, and a profile endpoint lets
// anyone who reaches it make the node work for seconds. /healthz and /readyz
// are on both listeners: load balancers probe the API's port, and a scraper
// that knows only the admin address can still tell a node is up.
// The admin listener is plain net/http: a handful of operator requests,
// none of the API's per-socket machinery.

// adminRouteTable is every route of the admin listener; the authorization
// matrix has a row for each. All are operator routes: no token, so the
// address must be private (loopback by default).
func (s *Server) adminRouteTable() []route {
	rs := []route{
		{pattern: "GET /healthz", access: operator, h: s.healthz},
		{pattern: "GET /readyz", access: operator, h: s.readyz},
		{pattern: "GET /metrics", access: operator, h: s.serveMetrics},
	}
	if s.cfg.Pprof {
		rs = append(rs,
			route{pattern: "GET /debug/pprof/", access: operator, h: pprof.Index},
			route{pattern: "GET /debug/pprof/profile", access: operator, h: pprof.Profile},
			route{pattern: "GET /debug/pprof/trace", access: operator, h: pprof.Trace})
	}
	return rs
}

// startAdmin listens on Config.AdminAddr, if set.
func (s *Server) startAdmin() error {
	if s.cfg.AdminAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", s.cfg.AdminAddr, err)
	}
	mux := http.NewServeMux()
	for _, rt := range s.adminRouteTable() {
		mux.HandleFunc(rt.pattern, rt.h)
	}
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	s.adminLn = ln
	go func() {
		if err := s.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener stopped", "err", err)
		}
	}()
	return nil
}

// AdminAddr is the address the admin listener listens on, nil without one.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

func (s *Server) shutdownAdmin(ctx context.Context) error {
	if s.admin == nil {
		return nil
	}
	return s.admin.Shutdown(ctx)
}
