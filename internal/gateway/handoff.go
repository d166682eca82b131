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
type handoff struct {
	mu       sync.Mutex
	conn     *nbio.Conn // the connection being handed over, between OnOpen and the next Accept
	upgraded bool       // conn was upgraded before its handoff finished
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
		h.conn, h.upgraded = nbc, false
		h.mu.Unlock()
	})
}

// upgradedSocket clears nbc's read deadline for good once nbc is upgraded:
// if its handoff is still going on, finished does it after the handoff armed
// the deadline; if the handoff is over, it is done here, since the accept
// goroutine may have armed it after the upgrade cleared it (the upgrade runs
// on another goroutine, before this call).
func (h *handoff) upgradedSocket(nbc *nbio.Conn) {
	h.mu.Lock()
	inHandoff := h.conn == nbc
	if inHandoff {
		h.upgraded = true
	}
	h.mu.Unlock()
	if !inHandoff {
		_ = nbc.SetReadDeadline(time.Time{})
	}
}

// finished runs when the accept goroutine enters Accept.
func (h *handoff) finished() {
	h.mu.Lock()
	c, upgraded := h.conn, h.upgraded
	h.conn, h.upgraded = nil, false
	h.mu.Unlock()
	if upgraded {
		_ = c.SetReadDeadline(time.Time{})
	}
}
