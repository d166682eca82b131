package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Typing notices (issue 19) are relayed, never stored: a device's start or
// stop goes on the bus under TypingPrefix and every node writes it to the
// local devices of the conversation's other members. At most one start per
// second per device and conversation is relayed (the rest are dropped
// silently), and a start not refreshed within TypingTimeout is stopped by
// the node that relayed it, so a device that vanished mid-sentence does
// not leave the others watching "typing…" for ever.

// TypingPrefix is the bus prefix of typing notices: "typ.<conversation id>".
const TypingPrefix = "typ."

// TypingTimeout is how long a start lasts without a refresh.
const TypingTimeout = 6 * time.Second

// typingInterval is the least time between two relayed starts of one
// device in one conversation.
const typingInterval = time.Second

// Typing is a typing notice as the nodes pass it on.
type Typing struct {
	Conversation string `json:"c"`
	UserID       string `json:"u"`
	DeviceID     string `json:"d"` // the sender's device, which is not told
	State        string `json:"s"` // wire.TypingStart or wire.TypingStop
}

// typingState is this node's typing devices: per device and conversation,
// the last start relayed and the timer that stops it.
type typingState struct {
	mu     sync.Mutex
	active map[[2]string]*typingEntry
}

type typingEntry struct {
	last  time.Time
	timer *time.Timer
}

// Typing relays a device's start or stop to the conversation's other
// members' devices. A start within a second of the last relayed one, and a
// stop with no start to end, are dropped without an error.
func (s *Service) Typing(ctx context.Context, id Identity, convID, state string) error {
	if state != wire.TypingStart && state != wire.TypingStop {
		return sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "typing state must be %q or %q", wire.TypingStart, wire.TypingStop)
	}
	if _, err := s.member(ctx, id, convID); err != nil {
		return err
	}
	key := [2]string{id.DeviceID, convID}
	ev := Typing{Conversation: convID, UserID: id.UserID, DeviceID: id.DeviceID, State: state}
	t := &s.typing
	t.mu.Lock()
	e := t.active[key]
	now := s.cfg.Now()
	switch {
	case state == wire.TypingStop && e == nil:
		t.mu.Unlock()
		return nil
	case state == wire.TypingStop:
		e.timer.Stop()
		delete(t.active, key)
	case e != nil && now.Sub(e.last) < typingInterval:
		t.mu.Unlock()
		return nil
	case e != nil:
		e.last = now
		e.timer.Reset(TypingTimeout)
	default:
		if t.active == nil {
			t.active = make(map[[2]string]*typingEntry)
		}
		e = &typingEntry{last: now}
		e.timer = time.AfterFunc(TypingTimeout, func() { s.typingTimedOut(key, e, ev) })
		t.active[key] = e
	}
	t.mu.Unlock()
	s.publishTyping(ctx, ev)
	return nil
}

// typingTimedOut stops a start that was not refreshed in time.
func (s *Service) typingTimedOut(key [2]string, e *typingEntry, ev Typing) {
	t := &s.typing
	t.mu.Lock()
	if t.active[key] != e {
		t.mu.Unlock()
		return
	}
	delete(t.active, key)
	t.mu.Unlock()
	ev.State = wire.TypingStop
	s.publishTyping(context.Background(), ev)
}

func (s *Service) publishTyping(ctx context.Context, ev Typing) {
	b, _ := json.Marshal(ev)
	if err := s.bus.Publish(ctx, TypingPrefix+ev.Conversation, b); err != nil {
		s.cfg.Logger.Warn("typing publish failed", "err", err)
		return
	}
	s.metrics.typing.Inc()
}

// SubscribeTyping calls fn for each typing notice relayed by any node, with
// the conversation's members, until cancel is called.
func (s *Service) SubscribeTyping(fn func(ev *Typing, members []string)) (cancel func(), err error) {
	cancel, err = s.bus.Subscribe(TypingPrefix, func(_ string, data []byte) {
		var ev Typing
		if err := json.Unmarshal(data, &ev); err != nil {
			s.cfg.Logger.Error("bad typing notice", "err", err)
			return
		}
		members, err := s.cache.conversation(context.Background(), ev.Conversation)
		if err != nil {
			s.cfg.Logger.Warn("typing notice for an unreadable conversation", "conversation", ev.Conversation, "err", err)
			return
		}
		fn(&ev, members)
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", TypingPrefix, err)
	}
	return cancel, nil
}
