package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// peer is one connected device: the state the node keeps per socket. It is
// kept small (no goroutine, no buffer) because idle sockets dominate.
type peer struct {
	id   chat.Identity
	conn *gateway.Conn
	lim  socketLimits // abuse limits of this socket (security.go)
	// opened is when the socket opened (Unix ns): call signalling tells a
	// device's newer socket from its older one by it (calls.go).
	opened int64

	sending atomic.Int32 // sends waiting for their commit (ws.go)

	mu      sync.Mutex
	syncing bool             // backlog replay in progress: live messages wait in pending
	pending []*sb.Message    // live messages that arrived while syncing
	last    map[string]int64 // per conversation, the highest seq written to this socket
	closed  bool
	drained chan struct{} // closed when no send waits for its commit any more, for a ping

	imu   sync.Mutex // guards holds; taken before mu (interest.go)
	holds []string   // conversations this socket holds on the bus (interest.go)
}

// deliver writes frame (m encoded for this device) unless it was already
// written; while the peer syncs, m waits in pending instead.
func (p *peer) deliver(m *sb.Message, frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
	case p.syncing:
		p.pending = append(p.pending, m)
	default:
		p.writeLocked(m, frame)
	}
}

// writeLocked writes frame (m encoded for this device) unless this socket
// already has m: the replay wrote it or a later seq went out. p.mu is held.
// Live messages arrive in seq order per conversation (the store publishes
// in commit order), so the highest seq written is all a peer keeps.
func (p *peer) writeLocked(m *sb.Message, frame []byte) {
	if m.Seq > p.last[m.ConversationID] {
		p.last[m.ConversationID] = m.Seq
		p.conn.Write(frame)
	}
}

// hub routes messages from the bus to the local sockets of their recipient
// devices, in seq order per conversation (sequence.go).
type hub struct {
	svc  *chat.Service
	log  *slog.Logger
	seq  *sequencer
	gaps atomic.Uint64 // gaps read from the store (a publish that never came)

	metrics *metrics // metrics.go

	resuming sync.Mutex    // held by a resume (sequence.go)
	resumes  atomic.Uint64 // catch-ups after the bus was back

	mu     sync.RWMutex
	peers  map[string]*peer              // by device id
	byUser map[string]map[*peer]struct{} // by user id, for user-wide events
}

// gapGrace is how long a message that arrived past a gap in its
// conversation's seqs waits for the gap to fill before the gap is read
// from the store. Out-of-order arrivals from two nodes fill it within
// milliseconds; only a publish that never comes waits the whole time.
const gapGrace = time.Second

func newHub(svc *chat.Service, log *slog.Logger, m *metrics) *hub {
	h := &hub{svc: svc, log: log, metrics: m, peers: make(map[string]*peer), byUser: make(map[string]map[*peer]struct{})}
	h.seq = newSequencer(gapGrace, h.fanOut, h.catchUp, h.nextSeq)
	h.seq.waited = func(d time.Duration) { m.held.Observe(float64(d.Microseconds()) / 1000) }
	return h
}

// add registers p and returns the peer it replaces (the same device's older socket), if any.
func (h *hub) add(p *peer) (old *peer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old = h.peers[p.id.DeviceID]
	h.peers[p.id.DeviceID] = p
	set := h.byUser[p.id.UserID]
	if set == nil {
		set = make(map[*peer]struct{})
		h.byUser[p.id.UserID] = set
	}
	set[p] = struct{}{}
	return old
}

func (h *hub) remove(p *peer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peers[p.id.DeviceID] == p {
		delete(h.peers, p.id.DeviceID)
	}
	if set := h.byUser[p.id.UserID]; set != nil {
		delete(set, p)
		if len(set) == 0 {
			delete(h.byUser, p.id.UserID)
		}
	}
}

// ofUsers returns the local peers of the given users.
func (h *hub) ofUsers(userIDs []string) []*peer {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*peer
	for _, u := range userIDs {
		for p := range h.byUser[u] {
			out = append(out, p)
		}
	}
	return out
}

// onControl acts on a control event: a revoked device's socket closes with
// 4001 wherever it is; a changed device list is announced to the users told.
func (h *hub) onControl(c *chat.Control) {
	if c.Revoked != "" {
		if p := h.get(c.Revoked); p != nil {
			p.conn.Close(CloseDeviceRevoked, "device revoked")
		}
	}
	if c.Joined != "" {
		h.joined(c.Joined, c.Notify)
	}
	if c.DevicesChanged != "" {
		frame := wire.AppendDevicesChanged(nil, c.DevicesChanged)
		for _, p := range h.ofUsers(c.Notify) {
			p.conn.Write(frame)
		}
	}
}

func (h *hub) get(deviceID string) *peer {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.peers[deviceID]
}

// onBus is the bus subscriber: it hands each published message to fanOut
// in seq order per conversation.
func (h *hub) onBus(m *sb.Message) { h.seq.add(m) }

// fanOut hands a message to each local recipient. A shared ciphertext is
// encoded once for all its recipients; a per-device one is encoded into one
// reused buffer (Write copies it).
func (h *hub) fanOut(m *sb.Message) {
	var shared, buf []byte
	d := delivery(m, m.Shared)
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for deviceID, ct := range m.Ciphertexts {
		p := h.peers[deviceID]
		if p == nil {
			continue
		}
		n++
		var frame []byte
		if m.Shared != nil {
			if shared == nil {
				shared = appendMessage(nil, &d)
			}
			frame = shared
		} else {
			d.Ciphertext = ct
			buf = appendMessage(buf[:0], &d)
			frame = buf
		}
		p.deliver(m, frame)
	}
	h.metrics.fannedOut(m, n)
}

func delivery(m *sb.Message, ct []byte) sb.Delivery {
	return sb.Delivery{ConversationID: m.ConversationID, Seq: m.Seq, SenderUserID: m.SenderUserID,
		SenderDeviceID: m.SenderDeviceID, SentAt: m.SentAt, Ciphertext: ct, Event: m.Event}
}
