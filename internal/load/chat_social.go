package load

import (
	"encoding/json"
	"math/rand/v2"
	"sync/atomic"

	"github.com/switchboard-chat/switchboard/wire"
)

// The chat scenario's presence and typing load (issue 19), off unless
// asked for: with --watch N every socket, once synced (again after each
// reconnect), watches N users who share a conversation with its user
// (presence_subscribe; fewer if its user has fewer contacts); with
// --typing-rate R the run sends R typing starts a second, each from a
// random connected device into one of its user's conversations. The
// presence, typing and receipt frames the sockets receive are counted with
// their bytes, so that the summary says what they add per socket.

// socialPlan is what the workers need for it.
type socialPlan struct {
	Watch      int      `json:",omitempty"` // users each socket watches
	TypingRate float64  `json:",omitempty"` // typing starts per second, the whole run
	UserIDs    []string `json:",omitempty"` // by user index, when Watch > 0
}

func newSocialPlan(cfg Config, users []User) socialPlan {
	p := socialPlan{Watch: min(cfg.Watch, wire.MaxWatched), TypingRate: cfg.TypingRate}
	if p.Watch > 0 {
		p.UserIDs = make([]string, len(users))
		for i, u := range users {
			p.UserIDs[i] = u.ID
		}
	}
	return p
}

// socialCounts is a worker's count of it.
type socialCounts struct {
	subscribes, typingSent                                 atomic.Int64
	presence, typing, receipts                             atomic.Int64
	presenceBytes, typingBytes, receiptBytes, nextTypingAt atomic.Int64
}

// socialReport is a worker's share of the summary.
type socialReport struct {
	Subscribes, TypingSent                   int64
	Presence, Typing, Receipts               int64
	PresenceBytes, TypingBytes, ReceiptBytes int64
}

// SocialSummary is the presence and typing part of a chat summary.
type SocialSummary struct {
	Watch          int     `json:"watch_per_socket"`
	TypingRate     float64 `json:"typing_rate_per_second"`
	Subscribes     int64   `json:"presence_subscribes"`
	TypingSent     int64   `json:"typing_sent"`
	PresenceFrames int64   `json:"presence_frames"`
	PresenceBytes  int64   `json:"presence_bytes"`
	TypingFrames   int64   `json:"typing_frames"`
	TypingBytes    int64   `json:"typing_bytes"`
	ReceiptFrames  int64   `json:"receipt_frames"`
	ReceiptBytes   int64   `json:"receipt_bytes"`
}

// socialSynced subscribes a socket that just synced to its watched users.
func (d *chatDriver) socialSynced(c *Conn) {
	p := &d.plan.Social
	if p.Watch <= 0 {
		return
	}
	u := d.devs[c.Index].User
	var users []string
	seen := map[int32]bool{int32(u): true}
	for _, conv := range d.layout.ofUser[u] {
		for _, m := range d.layout.members[conv] {
			if len(users) == p.Watch {
				break
			}
			if !seen[m] && int(m) < len(p.UserIDs) && p.UserIDs[m] != "" {
				seen[m] = true
				users = append(users, p.UserIDs[m])
			}
		}
	}
	b, _ := json.Marshal(wire.PresenceSubscribe{Type: wire.TypePresenceSubscribe, Users: users})
	if c.SendText(b) == nil {
		d.social.subscribes.Add(1)
	}
}

// socialFrame counts a presence, typing or receipt frame; it reports
// whether m was one.
func (d *chatDriver) socialFrame(typ string, m []byte) bool {
	s := &d.social
	switch typ {
	case wire.TypePresence:
		s.presence.Add(1)
		s.presenceBytes.Add(int64(len(m)))
	case wire.TypeTyping:
		s.typing.Add(1)
		s.typingBytes.Add(int64(len(m)))
	case wire.TypeReceipt:
		s.receipts.Add(1)
		s.receiptBytes.Add(int64(len(m)))
	default:
		return false
	}
	return true
}

// socialTick sends the typing starts due el seconds into the steady phase.
func (d *chatDriver) socialTick(rng *rand.Rand, conns []*Conn, el, share float64, buf []byte) {
	rate := d.plan.Social.TypingRate * share
	if rate <= 0 {
		return
	}
	for due := int64(el * rate); d.social.nextTypingAt.Load() < due; d.social.nextTypingAt.Add(1) {
		i := rng.IntN(len(d.devs))
		if !conns[i].Synced() {
			continue
		}
		conv, ok := d.pick(rng, i)
		if !ok {
			continue
		}
		b, _ := json.Marshal(wire.Typing{Type: wire.TypeTyping, Conversation: d.plan.Conversations[conv], State: wire.TypingStart})
		if conns[i].SendText(append(buf[:0], b...)) == nil {
			d.social.typingSent.Add(1)
		}
	}
}

func (d *chatDriver) socialReport() socialReport {
	s := &d.social
	return socialReport{Subscribes: s.subscribes.Load(), TypingSent: s.typingSent.Load(),
		Presence: s.presence.Load(), Typing: s.typing.Load(), Receipts: s.receipts.Load(),
		PresenceBytes: s.presenceBytes.Load(), TypingBytes: s.typingBytes.Load(), ReceiptBytes: s.receiptBytes.Load()}
}

// mergeSocial adds a worker's report to the summary's.
func mergeSocial(plan socialPlan, sum **SocialSummary, r socialReport) {
	if *sum == nil {
		*sum = &SocialSummary{Watch: plan.Watch, TypingRate: plan.TypingRate}
	}
	s := *sum
	s.Subscribes += r.Subscribes
	s.TypingSent += r.TypingSent
	s.PresenceFrames += r.Presence
	s.PresenceBytes += r.PresenceBytes
	s.TypingFrames += r.Typing
	s.TypingBytes += r.TypingBytes
	s.ReceiptFrames += r.Receipts
	s.ReceiptBytes += r.ReceiptBytes
}
