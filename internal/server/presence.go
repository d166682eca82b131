package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// Presence on the node's side (issue 19). A socket that sends
// presence_subscribe gets an entry here; the others cost nothing, so the
// per-socket state of the common socket (peer) does not grow. The node
// keeps, per watched user, the sockets watching and the state they were
// last told: a change (from the bus, or from the poll below) is written
// once to each of them, so its cost is per watched pair, never per member
// of a group.
//
// The poll: every presencePoll the node reads the presence of the users
// its sockets watch (one pipeline for all of them) and tells what changed.
// That is what notices a node that died (its claims lapse; nobody
// announces it), and it mends a change the bus lost.
type watchers struct {
	mu     sync.Mutex
	byUser map[string]*watchEntry // watched user -> its watchers and what they were told
	byPeer map[*peer][]string     // watching socket -> its users (the byUser keys, shared)
}

// watchEntry is one watched user. A slice, not a set: a user has few local
// watchers, and a pair costs a pointer here and a string header in byPeer.
type watchEntry struct {
	user   string
	peers  []*peer
	online bool // what its watchers were told
}

// presencePoll is how often the node reads its watched users' presence (a
// variable for the tests).
var presencePoll = 5 * time.Second

func newWatchers() *watchers {
	return &watchers{byUser: make(map[string]*watchEntry), byPeer: make(map[*peer][]string)}
}

// set replaces p's watched users, telling it each one's state and telling
// the other watchers of a user whose state changed.
func (w *watchers) set(p *peer, states []sb.PresenceState) {
	type note struct {
		st    sb.PresenceState
		peers []*peer
	}
	var notes []note
	w.mu.Lock()
	w.dropLocked(p)
	users := make([]string, 0, len(states))
	for _, st := range states {
		if peers := w.changedLocked(st); len(peers) > 0 {
			notes = append(notes, note{st, peers})
		}
		e := w.byUser[st.UserID]
		if e == nil {
			e = &watchEntry{user: st.UserID, online: st.Online}
			w.byUser[e.user] = e
		}
		e.peers = append(e.peers, p)
		users = append(users, e.user) // the entry's bytes, not another copy from the frame
	}
	if len(users) > 0 {
		w.byPeer[p] = users
	}
	w.mu.Unlock()
	for _, n := range notes {
		writePresence(n.st, n.peers...)
	}
	for _, st := range states {
		writePresence(st, p)
	}
}

// changedLocked records st and returns the watchers to tell, if it is a change.
func (w *watchers) changedLocked(st sb.PresenceState) []*peer {
	e := w.byUser[st.UserID]
	if e == nil || e.online == st.Online {
		return nil
	}
	e.online = st.Online
	return slices.Clone(e.peers)
}

// apply tells the watchers of st's user, if st changes what they were told.
func (w *watchers) apply(st sb.PresenceState) {
	w.mu.Lock()
	peers := w.changedLocked(st)
	w.mu.Unlock()
	writePresence(st, peers...)
}

// drop forgets p's watched users (its socket closed, or it subscribed anew).
func (w *watchers) drop(p *peer) {
	w.mu.Lock()
	w.dropLocked(p)
	w.mu.Unlock()
}

func (w *watchers) dropLocked(p *peer) {
	for _, u := range w.byPeer[p] {
		e := w.byUser[u]
		if e == nil {
			continue
		}
		if i := slices.Index(e.peers, p); i >= 0 {
			e.peers = slices.Delete(e.peers, i, i+1)
		}
		if len(e.peers) == 0 {
			delete(w.byUser, u)
		}
	}
	delete(w.byPeer, p)
}

// watched returns every user some local socket watches.
func (w *watchers) watched() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.byUser))
	for u := range w.byUser {
		out = append(out, u)
	}
	return out
}

func presenceJSON(st sb.PresenceState) wire.Presence {
	out := wire.Presence{UserID: st.UserID, Online: st.Online}
	if !st.Online && !st.LastSeen.IsZero() {
		t := wire.Time(st.LastSeen.UTC())
		out.LastSeen = &t
	}
	return out
}

func writePresence(st sb.PresenceState, peers ...*peer) {
	if len(peers) == 0 {
		return
	}
	f := presenceJSON(st)
	f.Type = wire.TypePresence
	b, _ := json.Marshal(f)
	for _, p := range peers {
		p.conn.Write(b)
	}
}

// errPresenceShed answers presence requests on a node run with NoPresence.
var errPresenceShed = sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "presence is turned off on this node (shed under load)")

// presenceSubscribe handles presence_subscribe: the socket's watched users
// become those of the frame that it may watch.
func (s *Server) presenceSubscribe(ctx context.Context, c *gateway.Conn, p *peer, data []byte) {
	if s.cfg.NoPresence {
		s.writeError(c, "", errPresenceShed)
		return
	}
	var f wire.PresenceSubscribe
	if err := json.Unmarshal(data, &f); err != nil {
		s.writeError(c, "", sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "presence_subscribe needs users, an array of user ids"))
		return
	}
	users, err := s.svc.Watchable(ctx, p.id, f.Users)
	if err != nil {
		s.writeError(c, "", err)
		return
	}
	states, err := s.svc.PresenceStates(ctx, users)
	if err != nil {
		s.writeError(c, "", err)
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed { // OnClose dropped it already: do not add it back
		return
	}
	s.watch.set(p, states)
	// A change published between the read above and set found no watcher
	// of its user here and was dropped: read again, now that p watches,
	// and tell what moved (else p would learn it only from the poll).
	if again, err := s.svc.PresenceStates(ctx, users); err == nil {
		for _, st := range again {
			s.watch.apply(st)
		}
	}
}

// pollPresence reads the watched users' presence every interval until ctx ends.
func (s *Server) pollPresence(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		users := s.watch.watched()
		if len(users) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, every)
		states, err := s.svc.PresenceStates(ctx, users)
		cancel()
		if err != nil {
			s.log.Warn("presence poll failed", "users", len(users), "err", err)
			continue
		}
		for _, st := range states {
			s.watch.apply(st)
		}
	}
}

// userPresence is GET /v1/users/{user}/presence.
func (s *Server) userPresence(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	if s.cfg.NoPresence {
		writeProblem(w, s.log, errPresenceShed)
		return
	}
	st, err := s.svc.UserPresence(r.Context(), id, r.PathValue("user"))
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, presenceJSON(st))
}

// startSocial subscribes to presence changes, typing notices and receipts,
// and starts the heartbeat and the poll; the returned func unsubscribes.
func (s *Server) startSocial() (func(), error) {
	unsubPres, err := s.svc.SubscribePresence(s.watch.apply)
	if err != nil {
		return nil, err
	}
	unsubTyping, err := s.svc.SubscribeTyping(s.relayTyping)
	if err != nil {
		unsubPres()
		return nil, err
	}
	unsubReceipts, err := s.svc.SubscribeReceipts(s.relayReceipt)
	if err != nil {
		unsubPres()
		unsubTyping()
		return nil, err
	}
	s.syncs.Go(func() { s.svc.RunPresence(s.ctx) })
	every := presencePoll
	s.syncs.Go(func() { s.pollPresence(every) })
	return func() { unsubPres(); unsubTyping(); unsubReceipts() }, nil
}
