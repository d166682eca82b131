package gateway

import (
	"errors"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// onData is the engine's handler for every read, in place of nbhttp's own
// (Engine.DataHandler), which closes a connection whose request passes
// MaxBody without a word. Here such a request gets Config.TooLarge as a 413
// answer, whatever its size; the rest of its body is read and dropped for
// up to closeTimeout, so the client, still writing, gets to read the answer
// instead of a reset, and then the connection is closed. Upgraded sockets
// and everything else go to the connection's own handler as before.
// raceRead, if not nil, runs first (see race.go).
func (s *Server) onData(raceRead func()) func(c *nbio.Conn, data []byte) {
	return func(c *nbio.Conn, data []byte) {
		if raceRead != nil {
			raceRead()
		}
		p, ok := c.Session().(*nbhttp.Parser)
		if !ok || p.ParserCloser != nil || s.cfg.TooLarge == nil {
			c.DataHandler()(c, data)
			return
		}
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("gateway: parsing a request panicked", "panic", v, "stack", string(debug.Stack()))
				_ = c.Close()
			}
		}()
		err := p.Parse(data)
		switch {
		case err == nil:
		case errors.Is(err, nbhttp.ErrTooLong):
			s.refuseTooLarge(c)
		default:
			_ = c.CloseWithError(err)
		}
	}
}

// refuseTooLarge answers 413 with Config.TooLarge and then only drains c.
func (s *Server) refuseTooLarge(c *nbio.Conn) {
	body := s.cfg.TooLarge
	head := "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/problem+json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n"
	c.OnData(func(*nbio.Conn, []byte) {}) // the rest of the request is dropped unparsed
	_ = c.SetReadDeadline(time.Now().Add(closeTimeout))
	if _, err := c.Write(append([]byte(head), body...)); err != nil {
		_ = c.Close()
	}
}
