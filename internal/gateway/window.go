package gateway

import (
	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// The upgrade window. nbio's Upgrader makes the socket's session its
// *websocket.Conn and then writes the 101; only after it returns does
// Server.Upgrade hand the socket to the gateway's Conn (session.Parse, where
// every read passes the mask scan). A client that sends a frame as soon as
// it reads the 101 can land in between, where nbio parses whatever comes,
// unmasked frames included. So Upgrade makes its Conn first and lists it
// under the nbio connection in Server.upgrading while it runs; a read that
// finds the socket's session still a *websocket.Conn is scanned with that
// Conn's scanner, which the Conn keeps using afterwards, so frame
// boundaries carry over. Only the poller goroutine of the socket touches
// the scanner, before and after the handoff alike.

// requestConn is the nbio connection a request came on, or nil when w is
// not nbio's (then nbio's Upgrader refuses it anyway).
func requestConn(w any) *nbio.Conn {
	res, ok := w.(*nbhttp.Response)
	if !ok || res.Parser == nil {
		return nil
	}
	return nbioConn(res.Parser.Conn)
}

// checkWindow scans a read of a socket in the upgrade window; false when it
// held an unmasked frame, and the socket was closed with 1002 (written
// straight to the connection: its Conn cannot write yet).
func (s *Server) checkWindow(nbc *nbio.Conn, data []byte) bool {
	v, ok := s.upgrading.Load(nbc)
	if !ok {
		return true // not ours, or Upgrade returned already: session.Parse scans
	}
	if v.(*Conn).masks.scan(data) {
		return true
	}
	s.closes.add(CloseProtocolError)
	var buf [2 + maxCloseReason]byte
	payload := closePayload(&buf, CloseProtocolError, "client frames must be masked")
	_, _ = nbc.Write(append(appendFrameHeader(nil, opClose, len(payload)), payload...))
	_ = nbc.Close()
	return false
}
