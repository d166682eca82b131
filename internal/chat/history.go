package chat

import (
	"context"
	"math"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// historyChunk is how many messages a history page reads from the store at
// a time: at most historyChunk ciphertexts (64 KiB each by default) are in
// memory for one page, whatever its limit.
const historyChunk = 32

// historyRetry is the Retry-After of a history read refused for
// concurrency: a slot frees when another read ends, typically well within it.
const historyRetry = time.Second

// historyGate bounds the history reads in progress on this node, per device
// and in all. It is local: the memory it protects is this node's.
type historyGate struct {
	mu       sync.Mutex
	total    int
	byDevice map[string]int
}

// holdHistory admits one history read of id under the limits, or returns
// rate_limited (the device's reads) or unavailable (the node's), both with
// a Retry-After. Every nil error needs one call of release.
func (s *Service) holdHistory(id Identity) (release func(), err error) {
	g, l := &s.history, s.cfg.Limits
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case l.HistoryPerDevice > 0 && g.byDevice[id.DeviceID] >= l.HistoryPerDevice:
		return nil, RateLimited(LimitHistoryDevice, historyRetry)
	case l.HistoryPerNode > 0 && g.total >= l.HistoryPerNode:
		e := sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "%s (%s); retry in %s", limitText[LimitHistoryNode], LimitHistoryNode, historyRetry)
		e.RetryAfter = historyRetry
		return nil, e
	}
	if g.byDevice == nil {
		g.byDevice = make(map[string]int)
	}
	g.total++
	g.byDevice[id.DeviceID]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.total--
		if g.byDevice[id.DeviceID]--; g.byDevice[id.DeviceID] <= 0 {
			delete(g.byDevice, id.DeviceID)
		}
	}, nil
}

// History hands fn, in seq order, what the caller's device receives in a
// conversation after a seq: at most limit messages, and no more ciphertext
// bytes than Limits.HistoryBytes (the first message always goes, so a page moves on
// even past a message bigger than the bound). It reads the store a chunk at
// a time and fn writes each message out, so a page is never held whole.
// It returns the seq to continue after when the page stopped at one of its
// bounds (there may be more), 0 when it reached the end of what is stored.
//
// Reads in progress are bounded per device and per node (Limits): the
// excess is refused before anything is read.
func (s *Service) History(ctx context.Context, id Identity, convID string, after int64, limit int,
	fn func(d *sb.Delivery) error) (next int64, err error) {
	// A former member reads up to their removal, and no later page.
	upTo, err := s.readable(ctx, id, convID, after)
	if err != nil {
		return 0, err
	}
	release, err := s.holdHistory(id)
	if err != nil {
		return 0, err
	}
	defer release()
	maxBytes := s.cfg.Limits.HistoryBytes
	if maxBytes <= 0 {
		maxBytes = math.MaxInt
	}
	sent, bytes := 0, 0
	// A history page is shown, not acted on: a replica may serve it (the
	// store checks a short page against the primary's head, so what the
	// device just sent is there).
	lagging := sb.MayLag(ctx)
	for sent < limit {
		n := min(historyChunk, limit-sent)
		page, err := s.store.Messages(lagging, id.DeviceID, convID, after, n)
		if err != nil {
			return 0, err
		}
		for i := range page {
			d := &page[i]
			if d.Seq > upTo {
				return 0, nil // the end of what a former member reads
			}
			if sent > 0 && bytes+len(d.Ciphertext) > maxBytes {
				return after, nil
			}
			if err := fn(d); err != nil {
				return 0, err
			}
			sent, bytes, after = sent+1, bytes+len(d.Ciphertext), d.Seq
		}
		if len(page) < n {
			return 0, nil // the end of the conversation
		}
	}
	return after, nil
}
