package server

import (
	"context"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Interest-based fan-out, the node's side (chat.Interest is the bus's):
// each socket holds the conversations it is in, from its sync on, so the
// node subscribes to those and receives no other conversation's messages.
//
// No message is lost to a subscription made late. A socket's sync reads
// its user's heads, holds their conversations, and, if one was not live,
// waits for it and reads the heads again (liveHeads): what was committed
// before the subscription is in the store read, what comes after is live.
// A conversation created while a member's socket is open, or a member added
// to one, reaches it by a control event (Joined): the node holds it, waits
// for it to be live, and reads it from the store. A resume after a bus outage does the same for
// every local user, so a lost Joined costs a delay, not the messages.

// liveWait bounds a sync's wait for its subscriptions: past it (the bus is
// unreachable) the sync goes on, and the bus calls the node's resume once
// they are live.
const liveWait = 5 * time.Second

// hold makes p hold convs; fresh says one was not live, and wait returns
// once they are (or ctx ends). A closed socket holds nothing.
func (h *hub) hold(p *peer, convs []string) (fresh bool, wait func(context.Context) error) {
	in := h.svc.Interest()
	if in == nil || len(convs) == 0 {
		return false, nil
	}
	p.imu.Lock()
	defer p.imu.Unlock()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return false, nil
	}
	var add []string
	for _, c := range convs {
		if !slices.Contains(p.holds, c) {
			add = append(add, c)
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	p.holds = append(p.holds, add...)
	return in.Hold(add)
}

// release drops what p holds; its conversations are unsubscribed once no
// socket held them for chat.Linger. Called after p is marked closed.
func (h *hub) release(p *peer) {
	in := h.svc.Interest()
	if in == nil {
		return
	}
	p.imu.Lock()
	holds := p.holds
	p.holds = nil
	p.imu.Unlock()
	in.Release(holds)
}

// liveHeads reads the heads of id's user once every conversation in them is
// held by peers and live: subscribe first, then read.
func (h *hub) liveHeads(ctx context.Context, id chat.Identity, peers []*peer) (map[string]int64, error) {
	for range 3 {
		heads, err := h.svc.Heads(ctx, id)
		if err != nil {
			return nil, err
		}
		convs := slices.Collect(maps.Keys(heads))
		var waits []func(context.Context) error
		for _, p := range peers {
			if fresh, wait := h.hold(p, convs); fresh {
				waits = append(waits, wait)
			}
		}
		if len(waits) == 0 {
			return heads, nil // all live before the read
		}
		wctx, cancel := context.WithTimeout(ctx, liveWait)
		var failed error
		for _, wait := range waits {
			// Each is called, even past an error: a wait hands its
			// conversations to the bus, which subscribes them later and
			// calls resume, which reads what this read misses.
			if err := wait(wctx); err != nil && failed == nil {
				failed = err
			}
		}
		cancel()
		if failed != nil {
			h.log.Warn("subscribing a socket's conversations", "user", id.UserID, "err", failed)
		}
		// Read again: a message committed before the subscriptions were
		// live is in this read. A conversation created meanwhile is held
		// by the next round.
	}
	return h.svc.Heads(ctx, id)
}

// joined holds a conversation just created for the local sockets of its
// members and, once it is live, writes them what was sent to it before.
func (h *hub) joined(convID string, users []string) {
	peers := h.ofUsers(users)
	if len(peers) == 0 {
		return
	}
	var waits []func(context.Context) error
	for _, p := range peers {
		if fresh, wait := h.hold(p, []string{convID}); fresh {
			waits = append(waits, wait)
		}
	}
	// Every member socket is read into, even when the conversation was live
	// already: another socket's sync may have subscribed it after messages
	// that no socket here received live.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), resumeWait)
		defer cancel()
		var failed error
		for _, wait := range waits { // each, as in liveHeads
			if err := wait(ctx); err != nil && failed == nil {
				failed = err
			}
		}
		if failed != nil {
			h.log.Warn("subscribing a new conversation", "conversation", convID, "err", failed)
			return // the bus calls resume once it is live
		}
		var buf []byte
		for _, p := range peers {
			// A socket still syncing may have read its heads before the
			// conversation existed: it is caught up once its sync is done.
			for p.isSyncing() && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
			if err := h.readInto(ctx, p, convID, math.MaxInt64, &buf); err != nil {
				h.log.Warn("reading a new conversation", "conversation", convID, "device", p.id.DeviceID, "err", err)
			}
		}
	}()
}

func (p *peer) isSyncing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.syncing && !p.closed
}

// fanoutCollectors are the metrics of interest-based fan-out.
func (s *Server) fanoutCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_fanout_received_total",
			Help: "Conversation messages this node received from the bus: only those of conversations with a member socket here (or left within the linger).",
		}, func() float64 { return float64(s.svc.Received()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_fanout_conversations",
			Help: "Conversations this node subscribes to on the bus.",
		}, func() float64 {
			if in := s.svc.Interest(); in != nil {
				return float64(in.Len())
			}
			return 0
		}),
	}
}
