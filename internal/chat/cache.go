package chat

import (
	"context"
	"sync"

	sb "github.com/switchboard-chat/switchboard"
)

// cache keeps what every send reads: a conversation's members and kind
// (members change by events: every node drops its copy when it reads one
// from the bus, and the node that made the change at once), a user's active devices (which change
// at login and revocation: every node drops its copy on the ctl.devices
// event, and the node that made the change drops its own at once) and
// whether one user blocks another (read by sends in direct conversations;
// dropped on the ctl.blocks event). It is bounded: when full it starts over,
// which costs only store reads.
type cache struct {
	store sb.Store
	max   int

	mu      sync.Mutex
	members map[string]convEntry   // conversation id -> members and kind
	devices map[string][]sb.Device // user id -> active devices
	blocks  map[[2]string]bool     // {blocker, blocked} -> whether it blocks
	// epoch counts device-list and block changes; what is read from the
	// store while one happened may be stale and is not kept.
	epoch uint64
	// convEpoch counts membership changes (members.go), the same way for
	// members.
	convEpoch uint64
}

func newCache(store sb.Store, max int) *cache {
	return &cache{store: store, max: max, members: make(map[string]convEntry),
		devices: make(map[string][]sb.Device), blocks: make(map[[2]string]bool)}
}

// convEntry is what the cache keeps of a conversation.
type convEntry struct {
	members []string
	direct  bool
}

// conversation returns the conversation's members, from the store the first time.
func (c *cache) conversation(ctx context.Context, id string) ([]string, error) {
	e, err := c.entry(ctx, id)
	return e.members, err
}

// entry returns the conversation's members and kind, from the store the first time.
func (c *cache) entry(ctx context.Context, id string) (convEntry, error) {
	c.mu.Lock()
	e, ok := c.members[id]
	epoch := c.convEpoch
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	conv, err := c.store.Conversation(ctx, id)
	if err != nil {
		return convEntry{}, err
	}
	e = convEntry{members: conv.Members, direct: conv.Kind == sb.KindDirect}
	c.mu.Lock()
	if c.convEpoch == epoch { // no membership changed meanwhile
		if len(c.members) >= c.max {
			clear(c.members)
		}
		c.members[id] = e
	}
	c.mu.Unlock()
	return e, nil
}

// blocked reports whether blocker blocks user, from the store the first time.
func (c *cache) blocked(ctx context.Context, blocker, user string) (bool, error) {
	key := [2]string{blocker, user}
	c.mu.Lock()
	b, ok := c.blocks[key]
	epoch := c.epoch
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	by, err := c.store.Blockers(ctx, user, []string{blocker})
	if err != nil {
		return false, err
	}
	b = len(by) > 0
	c.mu.Lock()
	if c.epoch == epoch { // no block changed meanwhile
		if len(c.blocks) >= c.max {
			clear(c.blocks)
		}
		c.blocks[key] = b
	}
	c.mu.Unlock()
	return b, nil
}

// forgetBlock drops what the cache knows of blocker's block of user.
func (c *cache) forgetBlock(blocker, user string) {
	c.mu.Lock()
	delete(c.blocks, [2]string{blocker, user})
	c.epoch++
	c.mu.Unlock()
}

// deviceLists is what activeDevices returns: one list per user, shared with
// the cache (which replaces a list, never changes it), so a send into a
// group of thousands of devices copies none of them. Callers only read it.
type deviceLists [][]sb.Device

// count is the number of devices in l.
func (l deviceLists) count() (n int) {
	for _, ds := range l {
		n += len(ds)
	}
	return n
}

// activeDevices returns the active devices of users, in no particular order.
func (c *cache) activeDevices(ctx context.Context, users []string) (deviceLists, error) {
	out := make(deviceLists, 0, len(users))
	var missing []string
	c.mu.Lock()
	for _, u := range users {
		if ds, ok := c.devices[u]; ok {
			if len(ds) > 0 {
				out = append(out, ds)
			}
		} else {
			missing = append(missing, u)
		}
	}
	epoch := c.epoch
	c.mu.Unlock()
	if missing == nil {
		return out, nil
	}
	fetched, err := c.store.ActiveDevices(ctx, missing...)
	if err != nil {
		return nil, err
	}
	byUser := make(map[string][]sb.Device, len(missing))
	for _, u := range missing {
		byUser[u] = nil // a user without devices is cached too
	}
	for _, d := range fetched {
		byUser[d.UserID] = append(byUser[d.UserID], d)
	}
	c.mu.Lock()
	if c.epoch == epoch {
		if len(c.devices)+len(byUser) > c.max {
			clear(c.devices)
		}
		for u, ds := range byUser {
			c.devices[u] = ds
		}
	}
	c.mu.Unlock()
	for _, ds := range byUser {
		if len(ds) > 0 {
			out = append(out, ds)
		}
	}
	return out, nil
}

// forgetDevices drops a user's cached device list.
func (c *cache) forgetDevices(userID string) {
	c.mu.Lock()
	delete(c.devices, userID)
	c.epoch++
	c.mu.Unlock()
}

// forgetAllDevices drops every cached device list and block: the bus was
// down, and the ctl.devices and ctl.blocks events of that time may be lost.
func (c *cache) forgetAllDevices() {
	c.mu.Lock()
	clear(c.devices)
	clear(c.blocks)
	c.epoch++
	c.mu.Unlock()
}
