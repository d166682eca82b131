package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// The node's own close codes; wire/close.go allocates and documents them.
const (
	CloseDeviceRevoked  = wire.CloseDeviceRevoked
	CloseReplaced       = wire.CloseReplaced
	CloseSessionExpired = wire.CloseSessionExpired // the token expired while the socket was open: log in again
)

var _ gateway.Handler = (*Server)(nil)

// upgrade authenticates the request and hands it to the gateway; a bad token gets 401 before any upgrade.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	if s.full() {
		s.refuseFull(w)
		return
	}
	id, err := s.svc.Authenticate(r.Context(), bearer(r, true))
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	// ?device= is the proxy's routing key (deploy/nginx): one that is not the
	// token's device would put the socket on another device's node.
	if v, ok := r.URL.Query()["device"]; ok && (len(v) != 1 || v[0] != id.DeviceID) {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeDeviceMismatch,
			"the device parameter must be this token's device, %s", id.DeviceID))
		return
	}
	p := &peer{id: id}
	if err := s.holdConn(r, p); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	if _, err := s.gw.Upgrade(w, r, p); err != nil {
		s.releaseConn(p)
		s.log.Debug("upgrade failed", "err", err)
	}
}

// OnOpen registers the device and replays its backlog in the background.
func (s *Server) OnOpen(c *gateway.Conn) {
	p := c.State().(*peer)
	p.conn = c
	p.opened = openedNow()
	p.syncing = true
	s.svc.Connected(p.id) // presence.go in chat
	if old := s.hub.add(p); old != nil {
		old.conn.Close(CloseReplaced, "replaced by a new connection of this device")
	}
	s.syncs.Add(1)
	go func() {
		defer s.syncs.Done()
		s.callsOpened(p)
		s.sync(p)
	}()
}

// sync replays everything above the device's cursors, then releases the live
// messages that arrived meanwhile, skipping any the replay already wrote.
//
// The replay is paced by the socket's drain: a message is written only once
// the socket's send queue has room for it within half of its limit
// (gateway.Conn.WaitQueued), so a backlog of any size goes out as fast as
// the device reads it and never trips the slow-consumer close (4008); the
// other half is left for answers and events written meanwhile. Live
// messages wait in p.pending until the replay is done.
func (s *Server) sync(p *peer) {
	buf := make([]byte, 0, 512)
	replayed := 0
	defer func() { s.metrics.replayed(replayed) }()
	// Subscribe first, then read: the heads are read once the socket's
	// conversations are live on the bus (interest.go).
	heads, err := s.hub.liveHeads(s.ctx, p.id, []*peer{p})
	var last map[string]int64
	if err == nil {
		last, err = s.svc.BacklogTo(s.ctx, p.id, heads, func(_ string, page []sb.Delivery) error {
			replayed += len(page)
			for i := range page {
				buf = appendMessage(buf[:0], &page[i])
				if err := s.writePaced(p.conn, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, gateway.ErrClosed) {
			s.log.Warn("sync failed", "device", p.id.DeviceID, "err", err)
		}
		p.conn.Close(gateway.CloseGoingAway, "sync failed; reconnect")
		return
	}
	p.mu.Lock()
	p.last = last
	p.mu.Unlock()
	if p.conn.Write(syncedFrame) != nil {
		return
	}
	// The live messages that waited go out (those the replay did not
	// write), paced like the replay, before any newer one: deliver keeps
	// adding to pending until it is found empty under the lock that
	// deliver takes, so the socket sees each conversation in seq order.
	for {
		p.mu.Lock()
		batch := p.pending
		p.pending = nil
		if len(batch) == 0 || p.closed {
			p.syncing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for _, m := range batch {
			// A conversation the sync did not know (created after it read
			// the heads): what came before m may never have reached this
			// node live (it subscribed to the conversation only since), so
			// it is read from the store first (interest.go).
			p.mu.Lock()
			_, known := p.last[m.ConversationID]
			p.mu.Unlock()
			if !known && m.Seq > 1 {
				if err := s.hub.readIntoPeer(s.ctx, p, m.ConversationID, m.Seq-1, &buf, true); err != nil {
					s.log.Warn("reading a new conversation during a sync", "conversation", m.ConversationID, "device", p.id.DeviceID, "err", err)
				}
			}
			ct := m.Shared
			if ct == nil {
				ct = m.Ciphertexts[p.id.DeviceID]
			}
			d := delivery(m, ct)
			buf = appendMessage(buf[:0], &d)
			if s.waitRoom(p.conn, len(buf)) != nil {
				return // closing: OnClose drops what is pending
			}
			p.mu.Lock()
			p.writeLocked(m, buf)
			p.mu.Unlock()
		}
	}
}

// waitRoom returns once a frame of n bytes fits in half of c's send-queue
// limit (or c's queue is empty, for a larger frame).
func (s *Server) waitRoom(c *gateway.Conn, n int) error {
	return c.WaitQueued(s.ctx, max(c.MaxQueued()/2-n, 0))
}

// writePaced writes frame once it fits (waitRoom).
func (s *Server) writePaced(c *gateway.Conn, frame []byte) error {
	if err := s.waitRoom(c, len(frame)); err != nil {
		return err
	}
	return c.Write(frame)
}

// OnClose forgets the device's socket.
func (s *Server) OnClose(c *gateway.Conn) {
	p := c.State().(*peer)
	p.mu.Lock()
	p.closed, p.pending = true, nil
	p.mu.Unlock()
	s.hub.remove(p)
	s.callsClosed(p)
	s.watch.drop(p)
	s.svc.Disconnected(p.id)
	s.hub.release(p)
	s.releaseConn(p)
}

// OnMessage handles one client frame. Calls for one socket are serial.
func (s *Server) OnMessage(c *gateway.Conn, data []byte) {
	p := c.State().(*peer)
	s.metrics.reqWS.Inc()
	if !s.admitFrame(c, p, data) {
		return
	}
	// One pass for what encoding/json would answer in two (wire/decode.go).
	var head wire.Head
	var f wire.ClientFrame
	headErr, err := wire.DecodeClientFrame(data, &head, &f)
	if headErr != nil {
		s.writeError(c, "", sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "a frame is one JSON object with a string type"))
		return
	}
	switch head.Type {
	case wire.TypeSend, wire.TypeAck, wire.TypePing, wire.TypePresenceSubscribe, wire.TypeTyping, wire.TypeRead:
	case wire.TypeCall: // rare: decoded apart, with encoding/json (calls.go)
		s.call(c, p, data)
		return
	default:
		s.writeError(c, head.ID, sb.Errorf(sb.EINVALID, wire.CodeUnknownType, "unknown frame type %q", head.Type))
		return
	}
	if err != nil {
		s.writeError(c, head.ID, sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "malformed %s frame: %s", head.Type, describeDecodeError(data, &f, err)))
		return
	}
	ctx := s.ctx
	switch f.Type {
	case wire.TypePing:
		p.waitSends() // a pong answers after every frame before it
		c.Write(pongFrame)
	case wire.TypeAck:
		if f.Conversation == "" || f.Seq == nil {
			s.writeError(c, f.ID, sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "ack needs conversation and seq"))
			return
		}
		// Not waiting for the commit: an ack has no answer (acks.go in chat).
		if err := s.svc.Ack(ctx, p.id, f.Conversation, *f.Seq); err != nil {
			s.writeError(c, f.ID, err)
		}
	case wire.TypeSend:
		if f.Conversation == "" {
			s.writeError(c, f.ID, sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "send needs a conversation"))
			return
		}
		// Rare, and done here on the socket's serial reader (a store read
		// and a small file write per id) so that the grant precedes the
		// send and this socket's sends keep their order.
		if err := s.grantAttachments(ctx, p.id, f.Conversation, f.Attachments); err != nil {
			s.writeError(c, f.ID, err)
			return
		}
		s.send(ctx, c, p, &f)
	case wire.TypePresenceSubscribe: // presence.go
		s.presenceSubscribe(ctx, c, p, data)
	case wire.TypeTyping: // typing.go
		s.typing(ctx, c, p, data)
	case wire.TypeRead:
		s.read(ctx, c, p, data)
	}
}

// maxSendsInFlight is how many of a socket's sends may wait for their
// commit while its next frames are read: a socket that sends faster than
// one commit at a time gets its sends into one group commit, and what one
// socket makes the node hold stays bounded (this many sends, besides the
// gateway's bound on frames read and not yet handled).
const maxSendsInFlight = 16

// send stores a send frame's message without holding up the socket's next
// frames: the answer (sent, or an error) is written when its commit is
// done, so it may come after the answers to later frames (but for a pong:
// see waitSends). Answers to sends into one conversation keep their order
// (so do the seqs). Past maxSendsInFlight the socket waits for this send's
// commit.
func (s *Server) send(ctx context.Context, c *gateway.Conn, p *peer, f *wire.ClientFrame) {
	id := f.ID
	var wait chan struct{}
	if p.sending.Add(1) > maxSendsInFlight {
		wait = make(chan struct{})
	}
	s.sends.Add(1)
	s.svc.SendAsync(ctx, p.id, &chat.SendRequest{ClientID: id, ConversationID: f.Conversation,
		Ciphertexts: f.Ciphertexts, Ciphertext: f.Ciphertext, Plaintext: f.Plaintext},
		func(m *sb.Message, _ bool, err error) {
			if err != nil {
				s.writeError(c, id, err)
			} else {
				var buf [160]byte
				c.Write(appendSent(buf[:0], id, m))
			}
			p.sendDone()
			s.sends.Done()
			if wait != nil {
				close(wait)
			}
		})
	if wait != nil {
		<-wait
	}
}

// sendDone counts a send of p's answered.
func (p *peer) sendDone() {
	if p.sending.Add(-1) != 0 {
		return
	}
	p.mu.Lock()
	// Checked again: a send may have started since, for a ping that now waits for it.
	if p.drained != nil && p.sending.Load() == 0 {
		close(p.drained)
		p.drained = nil
	}
	p.mu.Unlock()
}

// waitSends returns once every send of p has been answered. It runs on the
// socket's serial reader, so no new send starts meanwhile.
func (p *peer) waitSends() {
	p.mu.Lock()
	if p.sending.Load() == 0 {
		p.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	p.drained = ch
	p.mu.Unlock()
	<-ch
}

func (s *Server) writeError(c *gateway.Conn, id string, err error) {
	e := asError(s.log, err)
	s.metrics.error(e.Kind)
	b, _ := json.Marshal(wire.Error{Type: wire.TypeError, ID: id, Code: e.Code, Message: e.Message, Missing: e.Missing, Extra: e.Extra,
		RetryAfterMS: retryAfterMS(e.RetryAfter)})
	c.Write(b)
}
