package chat

import (
	"context"
	"fmt"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Live is what feeds a node's sockets: the bus's traffic, decoded, with the
// service's own bookkeeping done before it is handed on. The service
// publishes each stored message and control event, so it is the one that
// reads them back: the node sees messages and events, never topics or the
// bus's encoding.
type Live struct {
	// Message gets each stored message of a conversation the node holds
	// (Interest), from any node, in publish order per conversation (each
	// node publishes its commits in seq order; two nodes' publishes can
	// still cross). It must not block for long: it holds up the messages
	// behind it.
	Message func(m *sb.Message)
	// Control gets each control event, after the service dropped what it
	// cached of a changed device list.
	Control func(c *Control)
	// Resumed, unless nil, is called (in its own goroutine) when the bus
	// was interrupted and its subscriptions are live again: messages and
	// control events (a conversation created meanwhile) published
	// meanwhile may be lost. The node reads what its sockets missed from
	// the store (Heads, Messages), holding the conversations it finds
	// there: the store is the truth, the bus the fast path.
	Resumed func()
	// Forget, unless nil, is told of each conversation the node stopped
	// subscribing to (no socket held it for Linger): what the node kept of
	// its seqs is stale from then on.
	Forget func(convID string)
	// Linger is how long a conversation no socket holds stays subscribed
	// [Linger].
	Linger time.Duration
}

// Subscribe feeds l from the bus until cancel is called. It returns once
// the control events' subscription is live; conversations' messages come
// once they are held (Interest).
func (s *Service) Subscribe(l Live) (cancel func(), err error) {
	topics, err := s.bus.SubscribeTopics(func(_ string, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			s.cfg.Logger.Error("bad bus message", "err", err)
			return
		}
		if m.Event != nil {
			s.cache.forgetConversation(m.ConversationID) // members.go
		}
		s.metrics.receivedMessage(m.Committed)
		s.interest.received.Add(1)
		l.Message(m)
	}, s.resumed(l.Resumed))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s topics: %w", TopicPrefix, err)
	}
	if l.Linger == 0 {
		l.Linger = Linger
	}
	forget := l.Forget
	if forget == nil {
		forget = func(string) {}
	}
	s.interest = newInterest(topics, l.Linger, forget)
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
	}, func() {
		// Device-list changes and conversations created meanwhile may
		// have been lost (on a cluster, this subscription's node can fail
		// alone).
		s.cache.forgetAllDevices()
		if l.Resumed != nil {
			l.Resumed()
		}
	})
	if err != nil {
		s.interest.close()
		return nil, fmt.Errorf("subscribe %s: %w", ControlPrefix, err)
	}
	return func() { unsubCtl(); s.interest.close() }, nil
}

// Interest is the node's set of conversations subscribed on the bus; nil
// before Subscribe.
func (s *Service) Interest() *Interest { return s.interest }

// Received is how many conversation messages the node received from the
// bus: with interest-based fan-out, only those of conversations with a
// member socket here.
func (s *Service) Received() int64 {
	if s.interest == nil {
		return 0
	}
	return s.interest.received.Load()
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
