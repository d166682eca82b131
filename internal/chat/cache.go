package chat

import (
	"context"
	"sync"

	sb "github.com/switchboard-chat/switchboard"
)

// cache keeps what every send reads: a conversation's members (which never
// change after creation) and a user's active devices (which change at login
// and revocation: every node drops its copy on the ctl.devices event, and the
// node that made the change drops its own at once). It is bounded: when full
// it starts over, which costs only store reads.
type cache struct {
	store sb.Store
	max   int

	mu      sync.Mutex
	members map[string][]string    // conversation id -> member user ids
	devices map[string][]sb.Device // user id -> active devices
	// epoch counts device-list changes; a list read from the store while one
	// happened may be stale and is not kept.
	epoch uint64
}

func newCache(store sb.Store, max int) *cache {
	return &cache{store: store, max: max, members: make(map[string][]string), devices: make(map[string][]sb.Device)}
}

// conversation returns the conversation's members, from the store the first time.
func (c *cache) conversation(ctx context.Context, id string) ([]string, error) {
	c.mu.Lock()
	m, ok := c.members[id]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	conv, err := c.store.Conversation(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.members) >= c.max {
		clear(c.members)
	}
	c.members[id] = conv.Members
	c.mu.Unlock()
	return conv.Members, nil
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

// forgetAllDevices drops every cached device list: the bus was down, and
// the ctl.devices events of that time may be lost.
func (c *cache) forgetAllDevices() {
	c.mu.Lock()
	clear(c.devices)
	c.epoch++
	c.mu.Unlock()
}
