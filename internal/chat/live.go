package chat

import (
	"context"
	"fmt"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Live is what feeds a node's sockets: the bus's traffic, decoded, with the
// service's own bookkeeping done before it is handed on. The service
// publishes each stored message and control event, so it is the one that
// reads them back: the node sees messages and events, never topics or the
// bus's encoding.
type Live struct {
	// Message gets each stored message, from any node, in publish order
	// per conversation (each node publishes its commits in seq order; two
	// nodes' publishes can still cross). It must not block for long: it
	// holds up the messages behind it.
	Message func(m *sb.Message)
	// Control gets each control event, after the service dropped what it
	// cached of a changed device list.
	Control func(c *Control)
	// Resumed, unless nil, is called (in its own goroutine) when the bus
	// was interrupted and its subscription is live again: messages
	// published meanwhile may be lost. The node reads what its sockets
	// missed from the store (Heads, Messages): the store is the truth,
	// the bus the fast path.
	Resumed func()
}

// Subscribe feeds l from the bus until cancel is called. It returns once
// the subscriptions are live: what is published after it returns reaches l.
func (s *Service) Subscribe(l Live) (cancel func(), err error) {
	unsub, err := s.bus.Subscribe(TopicPrefix, func(_ string, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			s.cfg.Logger.Error("bad bus message", "err", err)
			return
		}
		if m.Event != nil {
			s.cache.forgetConversation(m.ConversationID) // members.go
		}
		s.metrics.receivedMessage(m.Committed)
		l.Message(m)
	}, s.resumed(l.Resumed))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", TopicPrefix, err)
	}
	unsubCtl, err := s.bus.Subscribe(ControlPrefix, func(_ string, data []byte) {
		c, err := DecodeControl(data)
		if err != nil {
			s.cfg.Logger.Error("bad control event", "err", err)
			return
		}
		if c.DevicesChanged != "" {
			s.cache.forgetDevices(c.DevicesChanged)
		}
		if len(c.Block) == 2 {
			s.cache.forgetBlock(c.Block[0], c.Block[1])
		}
		l.Control(c)
	}, s.cache.forgetAllDevices) // device-list changes may have been lost meanwhile
	if err != nil {
		unsub()
		return nil, fmt.Errorf("subscribe %s: %w", ControlPrefix, err)
	}
	return func() { unsub(); unsubCtl() }, nil
}

// Heads returns the head seq of each conversation of the caller's user:
// what a node compares with what it wrote to the user's sockets when the
// bus is back after an outage, to read what they missed.
func (s *Service) Heads(ctx context.Context, id Identity) (map[string]int64, error) {
	return s.store.Heads(ctx, id.UserID)
}

// Ready checks the store and the bus answer; an EUNAVAILABLE error says
// which does not.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "store unreachable")
	}
	if err := s.bus.Ping(ctx); err != nil {
		return sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "bus unreachable")
	}
	return nil
}
