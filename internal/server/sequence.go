package server

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// sequencer puts the bus's messages back in seq order per conversation
// before the hub delivers them. One node publishes its commits in order
// (the store's AppendObserver), but the commits of two nodes to one
// conversation reach a third over two Redis connections, so seq 7 can
// arrive before seq 6; a socket that got 7 would then drop 6 (its per
// conversation high-water mark), and a client that drops what is at or
// below the last seq it saw would too.
//
// A message past the next expected seq waits, with any others past it,
// until the gap fills, or for at most grace: then the gap's messages are
// read from the store for each local device of the conversation (a
// publish that never came: a node that died between its commit and its
// publish, a Redis restart) and the waiting ones go out after them.
//
// The per-conversation state is small (the next seq) and dropped after
// idle without waiting messages, so a node that sees many conversations
// keeps only the busy ones. A conversation's first message since (or since
// the node started) learns the next seq from the local sockets it goes to:
// one past the highest seq any of them has had (their sync read the heads),
// so a message that overtook the one before it waits for it here too.
type sequencer struct {
	grace   time.Duration
	idle    time.Duration
	deliver func(m *sb.Message)                 // the hub's delivery, in order
	catchUp func(convID string, from, to int64) // reads seqs from..to from the store for local devices
	start   func(m *sb.Message) int64           // the next seq of a conversation not tracked yet, m its first message; -1: m has no local recipient to order it for
	waited  func(d time.Duration)               // how long a held message waited, at its delivery; nil: not told

	mu      sync.Mutex
	convs   map[string]*convSeq
	swept   time.Time
	holding int // resumes in progress: gaps wait for them, not for grace (hub.resume)
}

// heldMsg is a message that arrived past its conversation's next seq, and when.
type heldMsg struct {
	m  *sb.Message
	at time.Time
}

type convSeq struct {
	next  int64             // the seq delivered next
	held  map[int64]heldMsg // arrived past next
	timer *time.Timer       // running while held is not empty
	seen  time.Time         // last arrival
}

func newSequencer(grace time.Duration, deliver func(*sb.Message), catchUp func(string, int64, int64), start func(*sb.Message) int64) *sequencer {
	return &sequencer{grace: grace, idle: 10 * time.Minute, deliver: deliver, catchUp: catchUp, start: start,
		convs: make(map[string]*convSeq), swept: time.Now()}
}

// add hands m to the hub now, or once the seqs before it have gone out.
func (q *sequencer) add(m *sb.Message) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sweep(now)
	c := q.convs[m.ConversationID]
	if c == nil {
		next := q.start(m)
		if next < 0 {
			// No local socket to order it for (its recipients are
			// elsewhere, or still syncing, which read the store): hand it
			// on and do not start tracking the conversation here. Tracking
			// from m.Seq would take the seqs before it as gone out, and an
			// earlier message that comes later (a publish Redis took only
			// after it was back) would go to a local recipient after later
			// ones, which then drops it (issue 16: a device lost the first
			// seqs of a direct conversation whose newest message, its own,
			// came first after a Redis outage).
			q.deliver(m)
			return
		}
		c = &convSeq{next: next}
		q.convs[m.ConversationID] = c
	}
	c.seen = now
	switch {
	case m.Seq < c.next:
		// Already past it: a duplicate, or a message that came after its
		// gap was read from the store. Sockets drop what they have.
		q.deliver(m)
	case m.Seq == c.next:
		q.deliver(m)
		c.next++
		q.release(c)
	default:
		if c.held == nil {
			c.held = make(map[int64]heldMsg)
		}
		c.held[m.Seq] = heldMsg{m, now}
		if c.timer == nil {
			conv := m.ConversationID
			c.timer = time.AfterFunc(q.grace, func() { q.expire(conv, c) })
		}
	}
}

// deliverHeld delivers a held message and tells how long it waited. q.mu is held.
func (q *sequencer) deliverHeld(h heldMsg) {
	q.deliver(h.m)
	if q.waited != nil {
		q.waited(time.Since(h.at))
	}
}

// release delivers the held messages that are next in line. q.mu is held.
func (q *sequencer) release(c *convSeq) {
	for len(c.held) > 0 {
		h, ok := c.held[c.next]
		if !ok {
			return
		}
		delete(c.held, c.next)
		q.deliverHeld(h)
		c.next++
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// expire ends a wait of grace: the missing seqs are read from the store,
// then the held messages go out in order. While a resume is in progress the
// wait goes on: the resume reads the gap for every local socket, including
// those still syncing, which this read would miss (hub.resume).
func (q *sequencer) expire(convID string, c *convSeq) {
	q.mu.Lock()
	if q.convs[convID] != c || len(c.held) == 0 {
		q.mu.Unlock()
		return
	}
	if q.holding > 0 {
		c.timer = time.AfterFunc(q.grace, func() { q.expire(convID, c) })
		q.mu.Unlock()
		return
	}
	from, to := c.next, c.next
	for seq := range c.held {
		if to == from || seq < to {
			to = seq
		}
	}
	q.mu.Unlock()

	// Outside the lock: store reads. New messages of the conversation wait
	// in held meanwhile (next has not moved), so order still holds.
	q.catchUp(convID, from, to-1)

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.convs[convID] != c {
		return
	}
	c.timer = nil
	if c.next < to {
		c.next = to
	}
	q.release(c)
	if len(c.held) > 0 && c.timer == nil { // another gap further on
		c.timer = time.AfterFunc(q.grace, func() { q.expire(convID, c) })
	}
}

// hold makes gaps wait until done is called, instead of grace: a resume
// is reading them from the store (hub.resume).
func (q *sequencer) hold() (done func()) {
	q.mu.Lock()
	q.holding++
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		q.holding--
		q.mu.Unlock()
	}
}

// advance moves a conversation's next seq up to next: every local socket
// has had the seqs before it, read from the store. The held messages below
// it go out (sockets skip what they have), then those next in line.
func (q *sequencer) advance(convID string, next int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.convs[convID]
	if c == nil || c.next >= next {
		return
	}
	for _, seq := range slices.Sorted(maps.Keys(c.held)) {
		if seq >= next {
			break
		}
		q.deliverHeld(c.held[seq])
		delete(c.held, seq)
	}
	c.next = next
	q.release(c)
}

// forget drops a conversation's state, unless messages are held in it:
// the node stopped subscribing to it, so the next seq it knew is stale by
// the time it subscribes again (its first message then starts it afresh,
// from the local sockets' seqs, instead of waiting grace for a gap that
// only means the node was not listening).
func (q *sequencer) forget(convID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := q.convs[convID]; c != nil && len(c.held) == 0 {
		delete(q.convs, convID)
	}
}

// sweep forgets conversations idle for q.idle with nothing held, at most
// once a minute. q.mu is held.
func (q *sequencer) sweep(now time.Time) {
	if now.Sub(q.swept) < time.Minute {
		return
	}
	q.swept = now
	for id, c := range q.convs {
		if len(c.held) == 0 && now.Sub(c.seen) > q.idle {
			delete(q.convs, id)
		}
	}
}

// nextSeq is where the sequencer starts a conversation it does not track,
// m its first message here: one past the lowest seq of it that a local
// recipient of m has had, so no recipient misses what came before m (one
// that has had more skips it). A recipient that has had none of it (the
// conversation began after its sync read the heads) starts from seq 1: the
// messages before m, whose publishes this node never saw (lost while the
// bus was down, say), are read from the store like any gap, and the
// recipient is noted as having had nothing, so the gap's read includes it.
// Recipients still syncing read the store themselves; with no other local
// recipient ready, -1: the sequencer does not track the conversation for m.
func (h *hub) nextSeq(m *sb.Message) int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	next := int64(-1)
	for deviceID := range m.Ciphertexts {
		p := h.peers[deviceID]
		if p == nil {
			continue
		}
		p.mu.Lock()
		if !p.syncing && !p.closed && p.last != nil {
			last, ok := p.last[m.ConversationID]
			if !ok {
				p.last[m.ConversationID] = 0
			}
			if next < 0 || last+1 < next {
				next = last + 1
			}
		}
		p.mu.Unlock()
	}
	return next
}

// catchUp writes seqs from..to of a conversation, read from the store, to
// each local socket of the conversation that has not had them, in order
// and before anything later (the sequencer holds the later ones meanwhile).
func (h *hub) catchUp(convID string, from, to int64) {
	h.gaps.Add(1)
	h.mu.RLock()
	var peers []*peer
	for _, p := range h.peers {
		p.mu.Lock()
		last, ok := p.last[convID]
		p.mu.Unlock()
		if ok && last < to {
			peers = append(peers, p)
		}
	}
	h.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var buf []byte
	for _, p := range peers {
		if err := h.readInto(ctx, p, convID, to, &buf); err != nil {
			h.log.Warn("reading a gap from the store", "conversation", convID, "from", from, "to", to, "device", p.id.DeviceID, "err", err)
		}
	}
}

// catchUpPage is how many messages one store read of a catch-up returns.
const catchUpPage = 500

// readInto writes to p what it has not had of a conversation up to seq to,
// read from the store, in seq order. A socket that got those seqs
// meanwhile (live, or from another catch-up) has nothing read; one that
// is syncing or closed gets nothing (its sync reads the store itself).
func (h *hub) readInto(ctx context.Context, p *peer, convID string, to int64, buf *[]byte) error {
	return h.readIntoPeer(ctx, p, convID, to, buf, false)
}

// readIntoPeer is readInto; fromSync says the socket's own sync calls it,
// which writes while the socket is still syncing.
func (h *hub) readIntoPeer(ctx context.Context, p *peer, convID string, to int64, buf *[]byte, fromSync bool) error {
	p.mu.Lock()
	after := p.last[convID]
	p.mu.Unlock()
	for after < to {
		limit := int(min(to-after, catchUpPage))
		ds, err := h.svc.Messages(ctx, p.id, convID, after, limit)
		if err != nil {
			return err
		}
		p.mu.Lock()
		if (p.syncing && !fromSync) || p.closed {
			p.mu.Unlock()
			return nil
		}
		for i := range ds {
			if d := &ds[i]; d.Seq <= to && d.Seq > p.last[convID] {
				p.last[convID] = d.Seq
				*buf = appendMessage((*buf)[:0], d)
				p.conn.Write(*buf)
			}
		}
		p.mu.Unlock()
		if len(ds) < limit { // nothing more for this device up to to
			return nil
		}
		after = ds[len(ds)-1].Seq
	}
	return nil
}

// resumeWait bounds how long a resume waits for the sockets that were
// syncing when it began; the gaps of their conversations wait meanwhile.
const resumeWait = 30 * time.Second

// closeRevoked closes, with 4001, the sockets of user's devices that the
// store no longer lists as active: a revocation's control event may have
// been lost while the bus was down. It returns the others.
func (h *hub) closeRevoked(ctx context.Context, user string, peers []*peer) []*peer {
	devs, err := h.svc.Devices(ctx, user)
	if err != nil {
		h.log.Warn("reading devices after the bus was back", "user", user, "err", err)
		return peers
	}
	active := make(map[string]bool, len(devs))
	for _, d := range devs {
		active[d.ID] = true
	}
	kept := peers[:0]
	for _, p := range peers {
		if active[p.id.DeviceID] {
			kept = append(kept, p)
		} else {
			p.conn.Close(CloseDeviceRevoked, "device revoked")
		}
	}
	return kept
}

// resume catches every local socket up after the bus was interrupted and
// subscribed again (Bus.Subscribe's resumed): what was published meanwhile
// may be lost (a Redis outage, a broken connection), and nothing else
// would reveal it until a later message of the same conversation arrived
// (the sequencer's gap), or ever, if none does. The store is the truth:
// per local user, its heads are compared with what each socket of the user
// has had, and the difference is read and written in seq order. A socket
// of a device revoked meanwhile is closed (its event may be lost too).
//
// The bus is live again before this runs, so a message stored after the
// heads were read comes live; one stored before comes from here (or both
// ways: sockets skip what they have). Meanwhile the sequencer's gaps wait
// for the resume rather than for their grace, so a later live message
// never goes out before the seqs read here: the conversations are then
// advanced past the heads, which releases what they held. A socket that
// is syncing read its heads before the bus was back, maybe during the
// outage: it is caught up when its sync is done (polled, bounded by
// resumeWait), and before any held message goes out to it.
func (h *hub) resume(ctx context.Context) {
	h.resuming.Lock() // one at a time: a second outage's resume runs after
	defer h.resuming.Unlock()
	h.resumes.Add(1)
	defer h.seq.hold()()

	users := make(map[string][]*peer)
	h.mu.RLock()
	for user, set := range h.byUser {
		for p := range set {
			users[user] = append(users[user], p)
		}
	}
	h.mu.RUnlock()

	// The conversations to advance: those every local socket is caught up
	// in. One that is not (a failed read, a sync that outlasts resumeWait)
	// keeps its gap, which the sequencer reads when its grace ends.
	var mu sync.Mutex // guards the three below, written by the workers
	heads, behind := make(map[string]int64), make(map[string]bool)
	complete := true // every user's heads were read
	deadline := time.Now().Add(resumeWait)
	for len(users) > 0 {
		syncing := make(map[string][]*peer)
		// A few users at a time: a node with thousands of users is caught
		// up in a fraction of the time, and the store (shared by every
		// node, all resuming at once) sees a bounded number of reads.
		var wg sync.WaitGroup
		sem := make(chan struct{}, resumeWorkers)
		for user, peers := range users {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				got, busy, lagging, err := h.resumeUser(ctx, user, peers)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					h.log.Warn("reading heads after the bus was back", "user", user, "err", err)
					complete = false
					return
				}
				// The lowest head any user read: a user whose read came
				// earlier was caught up only to it, and advancing past it
				// would hand its sockets a later seq over a missing one.
				for conv, head := range got {
					if cur, ok := heads[conv]; !ok || head < cur {
						heads[conv] = head
					}
				}
				for _, conv := range lagging {
					behind[conv] = true
				}
				if len(busy) > 0 {
					syncing[user] = busy
				}
			})
		}
		wg.Wait()
		users = syncing
		if len(users) == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			complete = false
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !complete { // a socket's conversations are not known: advance none
		return
	}
	for conv, head := range heads {
		if !behind[conv] {
			h.seq.advance(conv, head+1)
		}
	}
}

// resumeWorkers is how many users a resume catches up at once.
const resumeWorkers = 4

// resumeUser catches up the sockets of one user (resume): it returns the
// user's heads, the sockets still syncing (to look at again), and the
// conversations a socket could not be caught up in.
func (h *hub) resumeUser(ctx context.Context, user string, peers []*peer) (heads map[string]int64, syncing []*peer, behind []string, err error) {
	// The conversations found are held and live before the heads are
	// read: one created while the bus was down (its Joined event lost)
	// is subscribed here.
	heads, err = h.liveHeads(ctx, peers[0].id, peers)
	if err != nil {
		return nil, nil, nil, err
	}
	var buf []byte
	for _, p := range h.closeRevoked(ctx, user, peers) {
		p.mu.Lock()
		busy := p.syncing && !p.closed
		p.mu.Unlock()
		if busy {
			syncing = append(syncing, p)
			continue
		}
		for conv, head := range heads {
			if err := h.readInto(ctx, p, conv, head, &buf); err != nil {
				h.log.Warn("reading what a socket missed while the bus was down", "conversation", conv, "device", p.id.DeviceID, "err", err)
				behind = append(behind, conv)
			}
		}
	}
	return heads, syncing, behind, nil
}
