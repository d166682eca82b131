package server

import (
	"net/http"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Load shedding (Config.MaxConns, --max-conns): a full node refuses new
// sockets at the upgrade with 503 and Retry-After, before the token is
// checked (the cheapest answer), and fails /readyz so that a balancer that
// probes it stops sending new sockets here. The open sockets keep working.
// The count is read without a reservation, so concurrent upgrades can pass
// the cap by the few that race; it bounds memory, not an exact number.

// fullRetryAfter is what a refused client is told to wait: long enough for
// a balancer to notice /readyz, short enough to reconnect soon.
const fullRetryAfter = 5 * time.Second

var errFull = &sb.Error{Kind: sb.EUNAVAILABLE, Code: wire.CodeUnavailable,
	Message: "this node holds its maximum of sockets; retry (another node)", RetryAfter: fullRetryAfter}

// full says the node holds MaxConns sockets or more.
func (s *Server) full() bool {
	return s.cfg.MaxConns > 0 && s.gw.Count() >= s.cfg.MaxConns
}

func (s *Server) refuseFull(w http.ResponseWriter) {
	s.metrics.refused.Inc()
	writeProblem(w, s.log, errFull)
}
