package chat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// acker takes socket acks off the socket's serial path. An ack has no
// answer, but handled like a send it held its socket until its commit, so a
// sender's next send waited behind its own ack's fsync: with every device
// acking every second, half the send latency of the fan-out runs
// (docs/benchmarks.md). Acks are kept per (device, conversation), the highest
// seq only, and committed in rounds by one goroutine that exists while acks
// are pending; a device acking while a round commits has its ack coalesced
// into the next. The sync reads what is not committed yet (of), so a
// reconnect never replays what its device acked. A node that dies loses the
// acks of its last round: those messages are sent again, as for any
// unacked message (docs/protocol.md).
type acker struct {
	store sb.Store
	log   *slog.Logger

	metrics *metrics // metrics.go: acks committed and failed

	mu       sync.Mutex
	pending  map[string]map[string]int64 // device -> conversation -> seq, waiting for the next round
	inflight map[string]map[string]int64 // the round being committed
	running  bool                        // the round goroutine exists
}

// ackRoundConcurrency bounds the Ack calls of one round in flight at once;
// the store commits them together (group commit).
const ackRoundConcurrency = 256

func (a *acker) add(device, conv string, seq int64) {
	a.mu.Lock()
	if a.pending == nil {
		a.pending = make(map[string]map[string]int64)
	}
	m := a.pending[device]
	if m == nil {
		m = make(map[string]int64, 1)
		a.pending[device] = m
	}
	if old, ok := m[conv]; !ok || seq > old {
		m[conv] = seq
	}
	start := !a.running
	a.running = true
	a.mu.Unlock()
	if start {
		go a.run()
	}
}

func (a *acker) run() {
	for {
		a.mu.Lock()
		round := a.pending
		a.pending, a.inflight = nil, round
		if len(round) == 0 {
			a.running = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		a.commit(round)
	}
}

func (a *acker) commit(round map[string]map[string]int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sem := make(chan struct{}, ackRoundConcurrency)
	var wg sync.WaitGroup
	for device, convs := range round {
		for conv, seq := range convs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := a.store.Ack(ctx, device, conv, seq); err != nil {
					// The device gets these messages again at its next sync.
					a.log.Warn("ack not stored", "device", device, "conversation", conv, "seq", seq, "err", err)
					a.metrics.ackFailures.Inc()
					return
				}
				a.metrics.acks.Inc()
			})
		}
	}
	wg.Wait()
}

// of returns the acks of device not committed yet, per conversation.
func (a *acker) of(device string) map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out map[string]int64
	for _, m := range []map[string]int64{a.inflight[device], a.pending[device]} {
		for conv, seq := range m {
			if out == nil {
				out = make(map[string]int64, len(m))
			}
			out[conv] = max(out[conv], seq)
		}
	}
	return out
}

// flush waits until every ack taken so far is committed, or ctx ends.
func (a *acker) flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		running := a.running
		a.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Ack moves the device's cursor in a conversation. It returns once the ack
// is checked (membership, seq) and taken, before it is committed: the
// socket's next frame does not wait for the commit. Backlog sees it at once;
// FlushAcks waits for the commit.
func (s *Service) Ack(ctx context.Context, id Identity, convID string, seq int64) error {
	if seq < 0 {
		return sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "seq must not be negative")
	}
	// A former member acks up to their removal, which their devices get.
	if _, err := s.readable(ctx, id, convID, seq-1); err != nil {
		return err
	}
	s.acks.add(id.DeviceID, convID, seq)
	s.noteDelivered(id, convID, seq) // receipts.go
	return nil
}

// FlushAcks waits until every ack taken by Ack is committed (or ctx
// ends): the node calls it on shutdown, after its sockets are closed.
func (s *Service) FlushAcks(ctx context.Context) error { return s.acks.flush(ctx) }
