package gateway

import (
	"errors"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// onData is the engine's handler for every read, in place of nbhttp's own
// (Engine.DataHandler), which closes a connection whose request passes
// MaxBody without a word. Here such a request gets Config.TooLarge as a 413
// answer, whatever its size; the rest of its body is read and dropped for
// up to closeTimeout, so the client, still writing, gets to read the answer
// instead of a reset, and then the connection is closed. Before it is
// parsed, every request head passes strictScan (strict.go), which refuses
// what nbio's parser would let through with 400. A socket in the upgrade
// window (window.go) has its frames' masks checked first. Upgraded sockets
// and everything else go to the connection's own handler as before.
// raceRead, if not nil, runs first (see race.go).
func (s *Server) onData(raceRead func()) func(c *nbio.Conn, data []byte) {
	return func(c *nbio.Conn, data []byte) {
		if raceRead != nil {
			raceRead()
		}
		var p *nbhttp.Parser
		switch sess := c.Session().(type) {
		case *nbhttp.Parser:
			p = sess
		case *websocket.Conn: // the upgrade window (window.go)
			if !s.checkWindow(c, data) {
				return
			}
		}
		if p == nil || p.ParserCloser != nil {
			c.DataHandler()(c, data)
			return
		}
		st := strictOf(p)
		if st.drop {
			return // refused: read only to let the client read the answer
		}
		why, good := st.scan(data)
		if good > 0 && !s.parse(c, p, data[:good]) {
			return
		}
		if why != "" {
			s.refuseBadRequest(c, p, why)
		}
	}
}

// parse hands data to c's parser; false if c was refused or closed.
func (s *Server) parse(c *nbio.Conn, p *nbhttp.Parser, data []byte) (open bool) {
	if s.cfg.TooLarge == nil {
		c.DataHandler()(c, data)
		return true // a close shows in the next read, which nbio then skips
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("gateway: parsing a request panicked", "panic", v, "stack", string(debug.Stack()))
			_ = c.Close()
			open = false
		}
	}()
	err := p.Parse(data)
	switch {
	case err == nil:
		return true
	case errors.Is(err, nbhttp.ErrTooLong):
		s.refuseTooLarge(c, p)
	default:
		_ = c.CloseWithError(err)
	}
	return false
}

// refuseTooLarge answers 413 with Config.TooLarge and then only drains c,
// for closeTimeout (set through the handoff tracker, as in
// refuseBadRequest).
func (s *Server) refuseTooLarge(c *nbio.Conn, p *nbhttp.Parser) {
	body := s.cfg.TooLarge
	head := "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/problem+json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n"
	// The rest of the request is dropped unparsed. (nbio's Conn.OnData
	// would not do it: the engine's handler, onData, gets every read.)
	strictOf(p).drop = true
	s.handoff.setReadDeadline(c, time.Now().Add(s.closeTimeout))
	if _, err := c.Write(append([]byte(head), body...)); err != nil {
		_ = c.Close()
	}
}
