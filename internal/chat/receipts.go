package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Read receipts (issue 19). A member's delivered mark is the highest seq
// any of their devices acked (the cursors, acks.go); their read mark is
// stored by a read frame and only moves up. Each move is announced on the
// bus under ReceiptPrefix, coalesced per user and conversation: the node
// keeps the highest marks it saw and publishes them once a second, so a
// device that acks every message costs its conversation one receipt a
// second, not one per message. A user with read receipts off
// (SetReadReceipts) shows nobody their reads and sees nobody's, as in
// Signal; their delivered marks still travel.
//
// In a conversation of more than ReceiptMaxMembers members receipts are
// not pushed to the others: each send would move hundreds of delivered
// marks a second, each to every device of hundreds of members (in the
// chat mix of docs/benchmarks.md, ~10M frames a second for 13 groups of
// 500, against 48k deliveries). There a read goes only to the reader's
// own other devices, delivered marks are not published, and the marks
// are read with GET /v1/conversations/{id}/receipts (as WhatsApp shows
// "message info" for large groups).

// ReceiptPrefix is the bus prefix of receipts: "rcpt.<conversation id>".
// A change of a user's setting goes under ReceiptSettingsPrefix + user.
const (
	ReceiptPrefix         = "rcpt."
	ReceiptSettingsPrefix = "rcps."
)

// ReceiptMaxMembers is the most members a conversation may have for its
// receipts to be pushed to the other members.
const ReceiptMaxMembers = 32

// receiptWindow is how long moves are coalesced before they are published.
const receiptWindow = time.Second

// Receipt is a receipt as the nodes pass it on: the marks this node saw move.
// A zero mark is one this node did not see move; clients keep the highest.
type Receipt struct {
	Conversation string `json:"c"`
	UserID       string `json:"u"`
	DeviceID     string `json:"d"` // the device whose ack or read moved it last: not told
	Delivered    int64  `json:"dl,omitempty"`
	Read         int64  `json:"rd,omitempty"`
	Hidden       bool   `json:"h,omitempty"` // the user has read receipts off: Read is for their own devices only
}

// receiptQueue holds the moves of the current window, and the cached
// setting of each user asked about.
type receiptQueue struct {
	mu      sync.Mutex
	dirty   map[[2]string]*Receipt // (conversation, user) -> marks to publish
	running bool

	offMu sync.Mutex
	off   map[string]bool // user -> read receipts off (cached; dropped on a settings event)
}

// maxReceiptSettings bounds the cached settings: when full the cache starts over.
const maxReceiptSettings = 100_000

func (s *Service) noteReceipt(r Receipt) {
	q := &s.receipts
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dirty == nil {
		q.dirty = make(map[[2]string]*Receipt)
	}
	key := [2]string{r.Conversation, r.UserID}
	if e := q.dirty[key]; e != nil {
		e.Delivered, e.Read = max(e.Delivered, r.Delivered), max(e.Read, r.Read)
		e.DeviceID, e.Hidden = r.DeviceID, e.Hidden || r.Hidden
	} else {
		q.dirty[key] = &r
	}
	if !q.running {
		q.running = true
		go s.publishReceipts()
	}
}

// publishReceipts publishes the window's moves once a second while there are any.
func (s *Service) publishReceipts() {
	q := &s.receipts
	for {
		time.Sleep(receiptWindow)
		q.mu.Lock()
		batch := q.dirty
		q.dirty = nil
		if len(batch) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for _, r := range batch {
			b, _ := json.Marshal(r)
			if err := s.bus.Publish(context.Background(), ReceiptPrefix+r.Conversation, b); err != nil {
				s.cfg.Logger.Warn("receipt publish failed", "err", err)
				continue
			}
			s.metrics.receipts.Inc()
		}
	}
}

// Read moves the caller's read mark in a conversation up to seq, which must
// not be past the conversation's newest message.
func (s *Service) Read(ctx context.Context, id Identity, convID string, seq int64) error {
	if seq < 0 {
		return sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "seq must not be negative")
	}
	if _, err := s.member(ctx, id, convID); err != nil {
		return err
	}
	conv, err := s.store.Conversation(ctx, convID)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if seq > conv.HeadSeq {
		return sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "seq %d is past the conversation's newest message (%d)", seq, conv.HeadSeq)
	}
	read, moved, err := s.store.MarkRead(ctx, id.UserID, convID, seq)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !moved {
		return nil
	}
	off, err := s.ReceiptsOff(ctx, []string{id.UserID})
	if err != nil {
		return err
	}
	s.noteReceipt(Receipt{Conversation: convID, UserID: id.UserID, DeviceID: id.DeviceID, Read: read, Hidden: off[id.UserID]})
	return nil
}

// noteDelivered is an ack's share of receipts: the user's delivered mark
// may have moved. Only in a conversation small enough for receipts to be
// pushed (its members are cached: Ack just checked them).
func (s *Service) noteDelivered(id Identity, convID string, seq int64) {
	if seq <= 0 {
		return
	}
	members, err := s.cache.conversation(context.Background(), convID)
	if err != nil || len(members) > ReceiptMaxMembers {
		return
	}
	s.noteReceipt(Receipt{Conversation: convID, UserID: id.UserID, DeviceID: id.DeviceID, Delivered: seq})
}

// Receipts is GET /v1/conversations/{id}/receipts: every member's marks,
// reads hidden as the settings say (the caller's own always shown).
func (s *Service) Receipts(ctx context.Context, id Identity, convID string) ([]sb.Receipt, error) {
	members, err := s.member(ctx, id, convID)
	if err != nil {
		return nil, err
	}
	rs, err := s.store.Receipts(ctx, convID)
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	off, err := s.ReceiptsOff(ctx, members)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if rs[i].UserID != id.UserID && (off[id.UserID] || off[rs[i].UserID]) {
			rs[i].Read = 0
		}
	}
	return rs, nil
}

// SetReadReceipts turns the caller's read receipts on or off, on every node.
func (s *Service) SetReadReceipts(ctx context.Context, id Identity, on bool) error {
	if err := s.store.SetReadReceipts(ctx, id.UserID, on); err != nil {
		return fmt.Errorf("set read receipts: %w", err)
	}
	s.forgetReceiptSetting(id.UserID)
	if err := s.bus.Publish(ctx, ReceiptSettingsPrefix+id.UserID, []byte{'1'}); err != nil {
		s.cfg.Logger.Warn("receipt setting publish failed", "err", err)
	}
	return nil
}

func (s *Service) forgetReceiptSetting(user string) {
	q := &s.receipts
	q.offMu.Lock()
	delete(q.off, user)
	q.offMu.Unlock()
}

// ReceiptsOff returns which of users have read receipts off (only those
// are in the map), from the cache or, for the others, one store read.
func (s *Service) ReceiptsOff(ctx context.Context, users []string) (map[string]bool, error) {
	q := &s.receipts
	out := make(map[string]bool)
	var unknown []string
	q.offMu.Lock()
	for _, u := range users {
		off, ok := q.off[u]
		switch {
		case !ok:
			unknown = append(unknown, u)
		case off:
			out[u] = true
		}
	}
	q.offMu.Unlock()
	if len(unknown) == 0 {
		return out, nil
	}
	off, err := s.store.ReadReceiptsOff(ctx, unknown)
	if err != nil {
		return nil, fmt.Errorf("receipt settings: %w", err)
	}
	q.offMu.Lock()
	if q.off == nil || len(q.off)+len(unknown) > maxReceiptSettings {
		q.off = make(map[string]bool)
	}
	for _, u := range unknown {
		v := slices.Contains(off, u)
		q.off[u] = v
		if v {
			out[u] = true
		}
	}
	q.offMu.Unlock()
	return out, nil
}

// SubscribeReceipts calls fn for each receipt published by any node, with
// the conversation's members, until cancel is called; it also keeps the
// cached settings fresh.
func (s *Service) SubscribeReceipts(fn func(r *Receipt, members []string)) (cancel func(), err error) {
	unsub, err := s.bus.Subscribe(ReceiptPrefix, func(_ string, data []byte) {
		var r Receipt
		if err := json.Unmarshal(data, &r); err != nil {
			s.cfg.Logger.Error("bad receipt", "err", err)
			return
		}
		members, err := s.cache.conversation(context.Background(), r.Conversation)
		if err != nil {
			s.cfg.Logger.Warn("receipt for an unreadable conversation", "conversation", r.Conversation, "err", err)
			return
		}
		fn(&r, members)
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", ReceiptPrefix, err)
	}
	unsubSet, err := s.bus.Subscribe(ReceiptSettingsPrefix, func(topic string, _ []byte) {
		s.forgetReceiptSetting(topic[len(ReceiptSettingsPrefix):])
	}, func() { // settings changed meanwhile may have been missed
		s.receipts.offMu.Lock()
		s.receipts.off = nil
		s.receipts.offMu.Unlock()
	})
	if err != nil {
		unsub()
		return nil, fmt.Errorf("subscribe %s: %w", ReceiptSettingsPrefix, err)
	}
	return func() { unsub(); unsubSet() }, nil
}
