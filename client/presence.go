package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// Presence, typing and read receipts (docs/protocol.md): what a Conn sends
// with SubscribePresence, Typing and MarkRead, and what it receives on
// Notices.

// Notice is a presence, typing or receipt notice: a *PresenceEvent, a
// *TypingEvent or a *ReceiptEvent. (A conversation's stored events, such
// as membership changes, are an [Event] on a [Message].)
type Notice interface{ notice() }

// PresenceEvent says whether a watched user is online. LastSeen is when an
// offline user was last online (zero for one never seen).
type PresenceEvent struct {
	UserID   string
	Online   bool
	LastSeen time.Time
}

// TypingEvent says a member started or stopped typing in a conversation.
// A start the member does not refresh is stopped by the server after 6 s.
type TypingEvent struct {
	Conversation string
	UserID       string
	Typing       bool
}

// ReceiptEvent is a member's marks in a conversation: Delivered is the
// highest seq one of their devices received, Read the highest they read.
// A mark the event does not carry is 0: keep the highest of each.
type ReceiptEvent struct {
	Conversation string
	UserID       string
	Delivered    int64
	Read         int64
}

func (*PresenceEvent) notice() {}
func (*TypingEvent) notice()   {}
func (*ReceiptEvent) notice()  {}

// eventsBuffer is the capacity of the Notices channel.
const eventsBuffer = 256

// social is a Conn's presence subscription and unsent read marks, written
// again on each new socket, and its events channel.
type social struct {
	once   sync.Once
	events chan Notice

	mu      sync.Mutex
	watched []string         // the last SubscribePresence, nil before any
	reads   map[string]int64 // the highest read mark asked for, per conversation
}

func (c *Conn) eventsChan() chan Notice {
	c.social.once.Do(func() { c.social.events = make(chan Notice, eventsBuffer) })
	return c.social.events
}

// Notices yields presence, typing and receipt notices. The Conn's reader
// never waits for the application: when the channel is full (256 events)
// new events are dropped (logged); call SubscribePresence again to have
// the current presence of every watched user. It is never closed.
func (c *Conn) Notices() <-chan Notice { return c.eventsChan() }

// SubscribePresence sets the users this device watches (at most 256),
// replacing the previous set: the server answers each one's presence at
// once and every change after, as PresenceEvents. Users who share no
// conversation with this user are ignored. The set is sent again after a
// reconnect. It fails only if ctx is done or the Conn has ended.
func (c *Conn) SubscribePresence(ctx context.Context, users []string) error {
	if len(users) > wire.MaxWatched {
		return fmt.Errorf("client: at most %d watched users", wire.MaxWatched)
	}
	c.social.mu.Lock()
	c.social.watched = append(make([]string, 0, len(users)), users...)
	c.social.mu.Unlock()
	return c.writeSocial(ctx, presenceFrame(users))
}

// Typing tells the conversation's other members this user started (true)
// or stopped typing. Call it again every few seconds while typing: the
// server stops a start after 6 s, and drops starts closer than a second
// apart. Nothing is sent while the Conn reconnects.
func (c *Conn) Typing(ctx context.Context, conversation string, typing bool) error {
	state := wire.TypingStop
	if typing {
		state = wire.TypingStart
	}
	b, err := json.Marshal(wire.Typing{Type: wire.TypeTyping, Conversation: conversation, State: state})
	if err != nil {
		return err
	}
	return c.writeSocial(ctx, b)
}

// MarkRead says this user has read the conversation up to seq. Marks only
// move up; one not written because the Conn was reconnecting is written on
// the next socket.
func (c *Conn) MarkRead(ctx context.Context, conversation string, seq int64) error {
	c.social.mu.Lock()
	if seq <= c.social.reads[conversation] {
		c.social.mu.Unlock()
		return nil
	}
	if c.social.reads == nil {
		c.social.reads = make(map[string]int64)
	}
	c.social.reads[conversation] = seq
	c.social.mu.Unlock()
	return c.writeSocial(ctx, readFrame(conversation, seq))
}

func presenceFrame(users []string) []byte {
	b, _ := json.Marshal(wire.PresenceSubscribe{Type: wire.TypePresenceSubscribe, Users: append([]string{}, users...)})
	return b
}

func readFrame(conversation string, seq int64) []byte {
	b, _ := json.Marshal(wire.Read{Type: wire.TypeRead, Conversation: conversation, Seq: seq})
	return b
}

// writeSocial writes frame on the current socket, if there is one.
func (c *Conn) writeSocial(ctx context.Context, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	ws := c.ws
	var prev, mine chan struct{}
	if ws != nil {
		prev, mine = c.writeTurnLocked()
	}
	c.mu.Unlock()
	if ws == nil {
		return nil // attach writes the subscription and the reads again
	}
	defer close(mine)
	<-prev
	_ = c.write(ws, frame) // a broken socket is the reader's to notice
	return nil
}

// socialFrames are the frames a new socket needs: the presence
// subscription and the read marks (the server ignores marks it has).
func (c *Conn) socialFrames() [][]byte {
	c.social.mu.Lock()
	defer c.social.mu.Unlock()
	var out [][]byte
	if c.social.watched != nil {
		out = append(out, presenceFrame(c.social.watched))
	}
	for conv, seq := range c.social.reads {
		out = append(out, readFrame(conv, seq))
	}
	return out
}

// handleSocial hands a presence, typing or receipt frame to Notices.
func (c *Conn) handleSocial(typ string, data []byte) {
	var ev Notice
	switch typ {
	case wire.TypePresence:
		var f wire.Presence
		if json.Unmarshal(data, &f) != nil {
			return
		}
		p := &PresenceEvent{UserID: f.UserID, Online: f.Online}
		if f.LastSeen != nil {
			p.LastSeen = time.Time(*f.LastSeen)
		}
		ev = p
	case wire.TypeTyping:
		var f wire.Typing
		if json.Unmarshal(data, &f) != nil {
			return
		}
		ev = &TypingEvent{Conversation: f.Conversation, UserID: f.UserID, Typing: f.State == wire.TypingStart}
	case wire.TypeReceipt:
		var f wire.Receipt
		if json.Unmarshal(data, &f) != nil {
			return
		}
		ev = &ReceiptEvent{Conversation: f.Conversation, UserID: f.UserID, Delivered: f.Delivered, Read: f.Read}
	default:
		return
	}
	select {
	case c.eventsChan() <- ev:
	default:
		c.log.Warn("switchboard: Notices is full; dropping a notice", "type", typ)
	}
}

// Presence is a user's presence as GET /v1/users/{id}/presence answers it.
type Presence = PresenceEvent

// UserPresence reads a user's presence: a user who shares no conversation
// with this one is not found (an *Error with code not_found), like an unknown one.
func (s *Session) UserPresence(ctx context.Context, userID string) (Presence, error) {
	if s.client == nil {
		return Presence{}, errUnbound
	}
	var out wire.Presence
	u := s.client.url(nil, "v1", "users", userID, "presence")
	if err := s.client.do(ctx, http.MethodGet, u, s.Token, nil, &out); err != nil {
		return Presence{}, err
	}
	p := Presence{UserID: out.UserID, Online: out.Online}
	if out.LastSeen != nil {
		p.LastSeen = time.Time(*out.LastSeen)
	}
	return p, nil
}

// Receipt is one member's marks, as Receipts lists them.
type Receipt struct {
	UserID    string
	Delivered int64
	Read      int64
}

// Receipts lists every member's delivered and read marks in a conversation
// (reads hidden as the members' settings say).
func (s *Session) Receipts(ctx context.Context, conversation string) ([]Receipt, error) {
	if s.client == nil {
		return nil, errUnbound
	}
	var out struct {
		Receipts []wire.Receipt `json:"receipts"`
	}
	u := s.client.url(nil, "v1", "conversations", conversation, "receipts")
	if err := s.client.do(ctx, http.MethodGet, u, s.Token, nil, &out); err != nil {
		return nil, err
	}
	rs := make([]Receipt, len(out.Receipts))
	for i, r := range out.Receipts {
		rs[i] = Receipt{UserID: r.UserID, Delivered: r.Delivered, Read: r.Read}
	}
	return rs, nil
}

// SetReadReceipts turns this user's read receipts on or off. Off, their
// reads are shown to nobody and they see nobody's.
func (s *Session) SetReadReceipts(ctx context.Context, on bool) error {
	if s.client == nil {
		return errUnbound
	}
	return s.client.do(ctx, http.MethodPatch, s.client.url(nil, "v1", "accounts", "me"), s.Token,
		map[string]bool{"read_receipts": on}, nil)
}
