package inmem

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard"
)

var _ switchboard.Presence = (*PresenceNode)(nil)

// Presence keeps presence in memory for the nodes of one process: a node
// alone (Node("local")), or the conformance suite's several nodes.
type Presence struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	users map[string]*presenceEntry
}

type presenceEntry struct {
	claims   map[string]time.Time // node -> last heartbeat
	released time.Time            // latest release
}

// NewPresence returns an empty presence whose claims lapse after ttl
// without a heartbeat; now is the clock (nil: time.Now).
func NewPresence(ttl time.Duration, now func() time.Time) *Presence {
	if now == nil {
		now = time.Now
	}
	return &Presence{ttl: ttl, now: now, users: make(map[string]*presenceEntry)}
}

// Node returns the Presence of one node named node.
func (p *Presence) Node(node string) *PresenceNode { return &PresenceNode{p: p, node: node} }

// PresenceNode is one node's view of a Presence.
type PresenceNode struct {
	p    *Presence
	node string
}

// Claim marks users online on this node until the TTL passes without another Claim.
func (n *PresenceNode) Claim(_ context.Context, users []string) error {
	p := n.p
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range users {
		e := p.users[u]
		if e == nil {
			e = &presenceEntry{claims: make(map[string]time.Time, 1)}
			p.users[u] = e
		}
		e.claims[n.node] = now
	}
	return nil
}

// Release drops this node's claim on user.
func (n *PresenceNode) Release(_ context.Context, user string, at time.Time) error {
	p := n.p
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.users[user]
	if e == nil {
		e = &presenceEntry{claims: make(map[string]time.Time, 1)}
		p.users[user] = e
	}
	delete(e.claims, n.node)
	if at.After(e.released) {
		e.released = at
	}
	return nil
}

// States returns the presence of each user.
func (n *PresenceNode) States(_ context.Context, users []string) ([]switchboard.PresenceState, error) {
	p := n.p
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]switchboard.PresenceState, len(users))
	for i, u := range users {
		out[i].UserID = u
		e := p.users[u]
		if e == nil {
			continue
		}
		last := e.released
		for node, beat := range e.claims {
			if now.Sub(beat) < p.ttl {
				out[i].Online = true
			} else {
				delete(e.claims, node) // lapsed: its node died; its last heartbeat is when it was seen
				if beat.After(e.released) {
					e.released = beat
				}
			}
			if beat.After(last) {
				last = beat
			}
		}
		if !out[i].Online {
			out[i].LastSeen = last
		}
	}
	return out, nil
}

// Close does nothing: a node's claims lapse by themselves.
func (n *PresenceNode) Close() error { return nil }
