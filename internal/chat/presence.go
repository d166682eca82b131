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

// Presence (issue 19): a user is online while any of their devices has a
// socket on any node. Each node counts its own sockets per user and claims
// those users in the Presence (Config.Presence: in memory alone, Redis in a
// cluster), again every heartbeat, so a node that dies takes its users
// offline within the Presence's TTL. Changes are announced on the bus
// under PresencePrefix, one event per user and change (never per member
// of a group): each node hands them to the sockets that watch that user.
//
// A user whose last socket here closes stays claimed for PresenceGrace:
// a reconnect within it (a phone switching networks) announces nothing.

// PresencePrefix is the bus prefix of presence changes: "pres.<user id>".
const PresencePrefix = "pres."

// PresenceTTL is how long a node's claim on its users lasts without a
// heartbeat (Config.PresenceHeartbeat, 5 s: two may be missed): a node
// that dies takes its users offline within it, and its watchers learn it
// at their next poll (5 s later at most), so within 20 s of the death,
// inside the 30 s the contract allows.
const PresenceTTL = 15 * time.Second

// PresenceGrace is how long a user whose last local socket closed stays
// online here before the node releases them: a reconnect within it is not announced.
const PresenceGrace = 2 * time.Second

// presenceTracker is the node's side of presence: its sockets per user,
// the users in their grace, and the claims and releases in order.
type presenceTracker struct {
	reg  sb.Presence
	bus  sb.Bus
	s    *Service
	beat time.Duration

	mu      sync.Mutex
	local   map[string]int         // user -> sockets on this node
	leaving map[string]*time.Timer // users whose last socket closed, in their grace
	ops     []presenceOp           // claims and releases waiting for the worker, in order
	running bool                   // the worker goroutine exists
	stopped bool                   // StopPresence was called
}

// presenceOp is a claim (first local socket) or a release (grace over).
type presenceOp struct {
	user    string
	release bool
	at      time.Time
}

// presenceEvent is a change on the bus.
type presenceEvent struct {
	Online   bool  `json:"o"`
	LastSeen int64 `json:"ls,omitempty"` // Unix ms
}

func newPresenceTracker(s *Service, reg sb.Presence, beat time.Duration) *presenceTracker {
	return &presenceTracker{reg: reg, bus: s.bus, s: s, beat: beat,
		local: make(map[string]int), leaving: make(map[string]*time.Timer)}
}

// Connected counts a socket of id's user on this node: its user's first
// claims the user (and announces them online), unless the user was in its
// grace, which then ends with nothing announced.
func (s *Service) Connected(id Identity) {
	t := s.pres
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.local[id.UserID]++
	if t.local[id.UserID] > 1 {
		return
	}
	if tm, ok := t.leaving[id.UserID]; ok {
		tm.Stop()
		delete(t.leaving, id.UserID)
		return
	}
	t.queueLocked(presenceOp{user: id.UserID})
}

// Disconnected forgets a socket of id's user: the last one starts the
// user's grace, after which the node releases the user.
func (s *Service) Disconnected(id Identity) {
	t := s.pres
	t.mu.Lock()
	defer t.mu.Unlock()
	u := id.UserID
	if t.stopped {
		return
	}
	if t.local[u]--; t.local[u] > 0 {
		return
	}
	delete(t.local, u)
	at := s.now()
	var tm *time.Timer
	tm = time.AfterFunc(PresenceGrace, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.leaving[u] != tm {
			return // the user came back meanwhile
		}
		delete(t.leaving, u)
		t.queueLocked(presenceOp{user: u, release: true, at: at})
	})
	t.leaving[u] = tm
}

func (t *presenceTracker) queueLocked(op presenceOp) {
	t.ops = append(t.ops, op)
	if !t.running {
		t.running = true
		go t.work()
	}
}

// work does the queued claims and releases in order, a batch of claims in
// one call, until none is left.
func (t *presenceTracker) work() {
	for {
		t.mu.Lock()
		ops := t.ops
		t.ops = nil
		if len(ops) == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for len(ops) > 0 {
			n := 1
			for n < len(ops) && ops[n].release == ops[0].release {
				n++
			}
			if ops[0].release {
				t.release(ctx, ops[:n])
			} else {
				t.claim(ctx, ops[:n])
			}
			ops = ops[n:]
		}
		cancel()
	}
}

func (t *presenceTracker) claim(ctx context.Context, ops []presenceOp) {
	users := make([]string, len(ops))
	for i, op := range ops {
		users[i] = op.user
	}
	if err := t.reg.Claim(ctx, users); err != nil {
		t.s.cfg.Logger.Warn("presence claim failed; the next heartbeat claims again", "err", err)
	}
	for _, u := range users {
		t.publish(ctx, sb.PresenceState{UserID: u, Online: true})
	}
}

func (t *presenceTracker) release(ctx context.Context, ops []presenceOp) {
	users := make([]string, 0, len(ops))
	for _, op := range ops {
		if err := t.reg.Release(ctx, op.user, op.at); err != nil {
			t.s.cfg.Logger.Warn("presence release failed; the claim lapses", "user", op.user, "err", err)
			continue
		}
		users = append(users, op.user)
	}
	// Only a user no other node claims went offline.
	states, err := t.reg.States(ctx, users)
	if err != nil {
		t.s.cfg.Logger.Warn("presence read failed; watchers learn it at their next poll", "err", err)
		return
	}
	for _, st := range states {
		if !st.Online {
			t.publish(ctx, st)
		}
	}
}

func (t *presenceTracker) publish(ctx context.Context, st sb.PresenceState) {
	ev := presenceEvent{Online: st.Online}
	if !st.LastSeen.IsZero() {
		ev.LastSeen = st.LastSeen.UnixMilli()
	}
	b, _ := json.Marshal(ev)
	if err := t.bus.Publish(ctx, PresencePrefix+st.UserID, b); err != nil {
		t.s.cfg.Logger.Warn("presence publish failed", "user", st.UserID, "err", err)
		return
	}
	t.s.metrics.presence.Inc()
}

// RunPresence claims the node's users again every heartbeat until ctx ends:
// the claims of a node that stops doing so lapse.
func (s *Service) RunPresence(ctx context.Context) {
	t := s.pres
	tick := time.NewTicker(t.beat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		users := make([]string, 0, len(t.local)+len(t.leaving))
		for u := range t.local {
			users = append(users, u)
		}
		for u := range t.leaving {
			users = append(users, u)
		}
		t.mu.Unlock()
		if len(users) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, t.beat)
		if err := t.reg.Claim(cctx, users); err != nil {
			s.cfg.Logger.Warn("presence heartbeat failed", "users", len(users), "err", err)
		}
		cancel()
	}
}

// PresenceStates reads the presence of users (already checked: Watchable).
func (s *Service) PresenceStates(ctx context.Context, users []string) ([]sb.PresenceState, error) {
	st, err := s.pres.reg.States(ctx, users)
	if err != nil {
		return nil, sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "presence unreachable")
	}
	return st, nil
}

// SubscribePresence calls fn for each presence change announced by any
// node (and a node may announce one twice: fn's caller keeps the last
// state and drops repeats) until cancel is called.
func (s *Service) SubscribePresence(fn func(st sb.PresenceState)) (cancel func(), err error) {
	cancel, err = s.bus.Subscribe(PresencePrefix, func(topic string, data []byte) {
		var ev presenceEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			s.cfg.Logger.Error("bad presence event", "err", err)
			return
		}
		st := sb.PresenceState{UserID: topic[len(PresencePrefix):], Online: ev.Online}
		if ev.LastSeen != 0 {
			st.LastSeen = time.UnixMilli(ev.LastSeen).UTC()
		}
		fn(st)
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", PresencePrefix, err)
	}
	return cancel, nil
}

// Watchable returns those of users the caller may watch: the caller and
// those sharing a conversation with them (found in a bounded read, like
// devices_changed), without repeats, in the order given. Presence never
// reaches strangers.
func (s *Service) Watchable(ctx context.Context, id Identity, users []string) ([]string, error) {
	if len(users) > wire.MaxWatched {
		return nil, sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "at most %d watched users", wire.MaxWatched)
	}
	contacts, err := s.store.Contacts(ctx, id.UserID, maxContactRows)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	known := make(map[string]bool, len(contacts)+1)
	for _, c := range contacts {
		known[c] = true
	}
	known[id.UserID] = true
	out := make([]string, 0, len(users))
	for _, u := range users {
		if known[u] && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// UserPresence is GET /v1/users/{id}/presence: a user the caller may not
// watch gets the same not_found as an unknown one.
func (s *Service) UserPresence(ctx context.Context, id Identity, user string) (sb.PresenceState, error) {
	ok, err := s.Watchable(ctx, id, []string{user})
	if err != nil {
		return sb.PresenceState{}, err
	}
	if len(ok) == 0 {
		return sb.PresenceState{}, sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such user")
	}
	st, err := s.PresenceStates(ctx, ok)
	if err != nil {
		return sb.PresenceState{}, err
	}
	return st[0], nil
}

// localPresence is the Presence of a Service given none (tests that build
// one node by hand): this process's claims, which cannot lapse.
type localPresence struct {
	mu       sync.Mutex
	online   map[string]bool
	lastSeen map[string]time.Time
}

func (p *localPresence) Claim(_ context.Context, users []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range users {
		p.online[u] = true
	}
	return nil
}

func (p *localPresence) Release(_ context.Context, user string, at time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.online, user)
	if at.After(p.lastSeen[user]) {
		p.lastSeen[user] = at
	}
	return nil
}

func (p *localPresence) States(_ context.Context, users []string) ([]sb.PresenceState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]sb.PresenceState, len(users))
	for i, u := range users {
		out[i] = sb.PresenceState{UserID: u, Online: p.online[u]}
		if !out[i].Online {
			out[i].LastSeen = p.lastSeen[u]
		}
	}
	return out, nil
}

func (p *localPresence) Close() error { return nil }

// StopPresence releases every user this node claims, now, and announces
// those no other node claims offline: a node that shuts down (its sockets
// closed, their grace not over) does not leave its users online until
// their claims lapse. Connected and Disconnected do nothing afterwards.
func (s *Service) StopPresence(ctx context.Context) {
	t := s.pres
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	at := s.now()
	ops := make([]presenceOp, 0, len(t.local)+len(t.leaving))
	for u := range t.local {
		ops = append(ops, presenceOp{user: u, release: true, at: at})
	}
	for u, tm := range t.leaving {
		tm.Stop()
		ops = append(ops, presenceOp{user: u, release: true, at: at})
	}
	clear(t.local)
	clear(t.leaving)
	t.mu.Unlock()
	if len(ops) > 0 {
		t.release(ctx, ops)
	}
}
