package server

import (
	"sync"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
)

// peer is one connected device: the state the node keeps per socket. It is
// kept small (no goroutine, no buffer) because idle sockets dominate.
type peer struct {
	id   chat.Identity
	conn *gateway.Conn

	mu      sync.Mutex
	syncing bool             // backlog replay in progress: live messages wait in pending
	pending []*sb.Message    // live messages that arrived while syncing
	last    map[string]int64 // per conversation, the highest seq written to this socket
	closed  bool
}

// deliver writes m to the peer unless it was already written (or, while
// syncing, queues it). frame is the encoded message for this device.
func (p *peer) deliver(m *sb.Message, frame func() []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
	case p.syncing:
		p.pending = append(p.pending, m)
	case m.Seq > p.last[m.ConversationID]:
		p.last[m.ConversationID] = m.Seq
		p.conn.Write(frame())
	}
}

// hub routes messages from the bus to the local sockets of their recipient devices.
type hub struct {
	mu     sync.RWMutex
	peers  map[string]*peer              // by device id
	byUser map[string]map[*peer]struct{} // by user id, for user-wide events
}

func newHub() *hub {
	return &hub{peers: make(map[string]*peer), byUser: make(map[string]map[*peer]struct{})}
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
	if c.DevicesChanged != "" {
		frame := append(append([]byte(`{"type":"devices_changed","user_id":`), appendString(nil, c.DevicesChanged)...), '}')
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

// onBus is the bus subscriber: it hands a published message to each local recipient.
// A shared ciphertext is encoded once for every recipient.
func (h *hub) onBus(m *sb.Message) {
	var shared []byte
	buf := make([]byte, 0, 256)
	for deviceID, ct := range m.Ciphertexts {
		p := h.get(deviceID)
		if p == nil {
			continue
		}
		p.deliver(m, func() []byte {
			if m.Shared != nil {
				if shared == nil {
					shared = appendMessage(nil, delivery(m, m.Shared))
				}
				return shared
			}
			buf = appendMessage(buf[:0], delivery(m, ct))
			return buf
		})
	}
}

func delivery(m *sb.Message, ct []byte) *sb.Delivery {
	return &sb.Delivery{ConversationID: m.ConversationID, Seq: m.Seq, SenderUserID: m.SenderUserID,
		SenderDeviceID: m.SenderDeviceID, SentAt: m.SentAt, Ciphertext: ct}
}
