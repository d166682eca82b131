package gateway

import (
	"net"
	"sync"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// handoff closes a window in nbio v1.6.8's accept path. nbio's accept
// goroutine builds each connection, registers it with a poller (AddConn) and
// only then arms its read deadline (KeepaliveTime, our RequestTimeout). A
// poller may read the request and a handler may upgrade the socket in
// between: the upgrade clears the deadline, the accept goroutine arms it
// again, and the healthy, upgraded socket is closed RequestTimeout later.
//
// The accept goroutine is one loop per listener: it arms the deadline as the
// last step for a connection and then calls Accept again. So when Accept is
// entered, the connection handed over before it is done with, and a socket
// upgraded inside the window can have its deadline cleared for good there.
//
// A connection refused on its first read (strict.go, toolarge.go) is in the
// same window: its drain deadline (closeTimeout) was replaced by
// RequestTimeout, and it stayed open that long after the answer. So every
// deadline the gateway sets during a handoff (none, for an upgrade) is set
// again when the handoff is over.
type handoff struct {
	mu       sync.Mutex
	conn     *nbio.Conn // the connection being handed over, between OnOpen and the next Accept
	set      bool       // a read deadline was set on conn before its handoff finished
	deadline time.Time  // ... this one (zero: none)
}

// hook registers the start of every handoff: nbio calls the engine's OnOpen
// on the accept goroutine, before AddConn.
func (h *handoff) hook(e *nbhttp.Engine, open func(net.Conn)) {
	e.OnOpen(func(c net.Conn) {
		if open != nil {
			open(c)
		}
		nbc, _ := c.(*nbio.Conn)
		h.mu.Lock()
		h.conn, h.set, h.deadline = nbc, false, time.Time{}
		h.mu.Unlock()
	})
}

// upgradedSocket clears nbc's read deadline for good once nbc is upgraded
// (the upgrade runs on another goroutine, before this call).
func (h *handoff) upgradedSocket(nbc *nbio.Conn) { h.setReadDeadline(nbc, time.Time{}) }

// setReadDeadline sets nbc's read deadline to t for good: if nbc's handoff
// is still going on, finished sets it again after the handoff armed its own;
// if the handoff is over, the accept goroutine is done with nbc.
func (h *handoff) setReadDeadline(nbc *nbio.Conn, t time.Time) {
	h.mu.Lock()
	if h.conn == nbc {
		h.set, h.deadline = true, t
	}
	h.mu.Unlock()
	_ = nbc.SetReadDeadline(t)
}

// finished runs when the accept goroutine enters Accept.
func (h *handoff) finished() {
	h.mu.Lock()
	c, set, t := h.conn, h.set, h.deadline
	h.conn, h.set, h.deadline = nil, false, time.Time{}
	h.mu.Unlock()
	if set {
		_ = c.SetReadDeadline(t)
	}
}
