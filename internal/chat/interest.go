package chat

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// Interest is the set of conversations a node subscribes to on the bus:
// those with a member socket on the node (interest-based fan-out). A node
// then receives only the messages it delivers, so its bus work follows its
// own sockets, not the whole cluster's traffic.
//
// Each socket holds a reference to each of its conversations. A
// conversation whose last reference goes is unsubscribed only after
// Linger without one, so a reconnect storm (thousands of sockets closing
// and coming back within seconds) costs no bus work for the conversations
// it leaves and finds again; the unsubscribes of a sweep go to the bus
// together, which sends them as one command per 1,000 topics, as it does
// the subscribes of the Holds made while its previous round trip was out.
//
// Subscribing opens no hole as long as the caller reads the store after
// the subscription is live: Hold's wait returns then, and a caller that
// found a conversation not live reads the heads (again) after waiting,
// so a message committed before the subscription is in what it reads and
// one committed after comes live.
type Interest struct {
	topics sb.Topics
	linger time.Duration
	forget func(convID string) // told of each conversation unsubscribed

	mu    sync.Mutex
	convs map[string]*interest
	stop  chan struct{}
	done  sync.WaitGroup

	received atomic.Int64 // conversation messages received from the bus
}

// interest is one conversation's subscription: kept small, a node holds
// one per conversation of its sockets.
type interest struct {
	refs  int32
	idle  int64         // when refs fell to 0, unix nanoseconds
	ready chan struct{} // closed once the subscription is live (or its Add gave up: then the bus calls resumed when it is); then live, shared
}

// live is the ready channel of every live subscription: one closed
// channel, not one per conversation.
var live = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Linger is how long a conversation no socket of the node is in stays
// subscribed: a socket that reconnects within it costs no bus work.
const Linger = 30 * time.Second

func newInterest(topics sb.Topics, linger time.Duration, forget func(string)) *Interest {
	i := &Interest{topics: topics, linger: linger, forget: forget, convs: make(map[string]*interest), stop: make(chan struct{})}
	i.done.Add(1)
	go i.sweeper()
	return i
}

// Hold adds a reference to each of convs. fresh says whether one of them
// was not live: the caller then calls wait, and reads from the store only
// after it returns (subscribe first, then read). wait returns an error
// when ctx ended first; the bus then subscribes later and calls the
// node's Resumed, which reads what was missed.
func (i *Interest) Hold(convs []string) (fresh bool, wait func(ctx context.Context) error) {
	var adds []string
	var waits []chan struct{}
	i.mu.Lock()
	for _, c := range convs {
		in := i.convs[c]
		if in == nil {
			in = &interest{ready: make(chan struct{})}
			i.convs[c] = in
			adds = append(adds, TopicPrefix+c)
		}
		in.refs++
		select {
		case <-in.ready:
		default:
			waits = append(waits, in.ready)
		}
	}
	i.mu.Unlock()
	if len(waits) == 0 {
		return false, func(context.Context) error { return nil }
	}
	return true, func(ctx context.Context) error {
		var err error
		if len(adds) > 0 {
			err = i.topics.Add(ctx, adds...)
			i.mu.Lock()
			for _, topic := range adds {
				if in := i.convs[topic[len(TopicPrefix):]]; in != nil && in.ready != live {
					close(in.ready)
					in.ready = live
				}
			}
			i.mu.Unlock()
		}
		for _, ch := range waits {
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return err
	}
}

// Release drops a reference to each of convs.
func (i *Interest) Release(convs []string) {
	now := time.Now().UnixNano()
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, c := range convs {
		if in := i.convs[c]; in != nil && in.refs > 0 {
			if in.refs--; in.refs == 0 {
				in.idle = now
			}
		}
	}
}

// Len is how many conversations are subscribed now.
func (i *Interest) Len() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.convs)
}

// sweeper unsubscribes the conversations idle for linger, a batch at a
// time.
func (i *Interest) sweeper() {
	defer i.done.Done()
	tick := time.NewTicker(max(i.linger/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-i.stop:
			return
		case now := <-tick.C:
			i.sweep(now)
		}
	}
}

func (i *Interest) sweep(now time.Time) {
	var gone []string
	i.mu.Lock()
	for c, in := range i.convs {
		if in.refs == 0 && now.UnixNano()-in.idle >= int64(i.linger) {
			delete(i.convs, c)
			gone = append(gone, c)
		}
	}
	if len(gone) > 0 {
		topics := make([]string, len(gone))
		for k, c := range gone {
			topics[k] = TopicPrefix + c
		}
		// Under the lock: a Hold that comes after must reach the bus
		// after this Remove, or the Remove would undo its Add.
		i.topics.Remove(topics...)
	}
	i.mu.Unlock()
	for _, c := range gone {
		i.forget(c)
	}
}

func (i *Interest) close() {
	close(i.stop)
	i.done.Wait()
	i.topics.Close()
}
