package server

import (
	"encoding/json"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// Call signalling on the socket: the frames go to internal/calls, which
// keeps each call's state and relays its events over the bus; this file
// only decodes, answers refusals and delivers to local sockets.

// call handles a call frame. Call frames are rare, so they are decoded
// with encoding/json into wire.Call, not by the hot path's decoder.
func (s *Server) call(c *gateway.Conn, p *peer, data []byte) {
	var f wire.Call
	if err := json.Unmarshal(data, &f); err != nil {
		s.writeCallError(c, "", sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "malformed call frame"))
		return
	}
	if s.cfg.Calls == nil {
		s.writeCallError(c, f.CallID, sb.Errorf(sb.EINVALID, wire.CodeNotSupported, "this node has no call signalling"))
		return
	}
	if err := s.cfg.Calls.Handle(s.ctx, calls.Party{User: p.id.UserID, Device: p.id.DeviceID}, p.opened, &f); err != nil {
		s.writeCallError(c, f.CallID, err)
	}
}

// writeCallError is writeError for a frame about a call: it names the call.
func (s *Server) writeCallError(c *gateway.Conn, callID string, err error) {
	e := asError(s.log, err)
	b, _ := json.Marshal(wire.Error{Type: wire.TypeError, CallID: callID, Code: e.Code, Message: e.Message})
	c.Write(b)
}

// subscribeCalls relays call events from the bus to local sockets.
func (s *Server) subscribeCalls() (cancel func(), err error) {
	if s.cfg.Calls == nil {
		return func() {}, nil
	}
	return s.cfg.Calls.Subscribe(func(device string, frame []byte) bool {
		p := s.hub.get(device)
		if p == nil {
			return false
		}
		p.conn.Write(frame)
		return true
	})
}

// callsOpened tells the signalling a socket opened, so that a device back
// within the reconnect grace keeps its call. It does not hold up the sync:
// with Redis it reads the KV, which may be slow or down.
func (s *Server) callsOpened(p *peer) {
	if s.cfg.Calls != nil {
		s.syncs.Go(func() { s.cfg.Calls.Connected(p.id.DeviceID, p.opened) })
	}
}

// callsClosed tells the signalling a device has no socket here any more.
func (s *Server) callsClosed(p *peer) {
	if s.cfg.Calls != nil && s.hub.get(p.id.DeviceID) == nil {
		s.cfg.Calls.Disconnected(p.id.DeviceID, p.opened)
	}
}

// openedNow is a socket's opening time as the signalling compares them.
func openedNow() int64 { return time.Now().UnixNano() }
