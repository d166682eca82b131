// Package inmem is the in-process Bus used by a node that runs alone.
//
// Publish hands data to each matching subscriber's queue and returns; one
// goroutine per subscription drains it, so subscribers see one topic's
// messages in publish order and a slow subscriber never blocks a publisher.
package inmem

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/switchboard-chat/switchboard"
)

var _ switchboard.Bus = (*Bus)(nil)

// ErrClosed is returned by a closed Bus.
var ErrClosed = errors.New("inmem: bus closed")

// Bus is an in-process publish/subscribe bus. The zero value is ready to use.
type Bus struct {
	mu     sync.RWMutex
	subs   map[*subscription]struct{}
	closed bool
}

type item struct {
	topic string
	data  []byte
}

type subscription struct {
	prefix string
	topics map[string]struct{} // exact topics (SubscribeTopics), nil for a prefix; guarded by Bus.mu
	fn     func(topic string, data []byte)

	mu    sync.Mutex
	cond  *sync.Cond
	queue []item
	done  bool
}

// Publish queues data for every subscriber whose prefix matches topic.
// The bus keeps data: the caller must not modify it afterwards.
func (b *Bus) Publish(_ context.Context, topic string, data []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	for s := range b.subs {
		if s.topics != nil {
			if _, ok := s.topics[topic]; ok {
				s.push(item{topic, data})
			}
		} else if strings.HasPrefix(topic, s.prefix) {
			s.push(item{topic, data})
		}
	}
	return nil
}

// Subscribe calls fn for each message whose topic starts with prefix. An
// in-process bus is never interrupted: resumed is never called.
func (b *Bus) Subscribe(prefix string, fn func(topic string, data []byte), resumed func()) (func(), error) {
	s := &subscription{prefix: prefix, fn: fn}
	if err := b.start(s); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { b.drop(s) }) }, nil
}

// SubscribeTopics calls fn for each message on a topic in the returned set.
// Add returns at once: an in-process bus has nothing to wait for.
func (b *Bus) SubscribeTopics(fn func(topic string, data []byte), resumed func()) (switchboard.Topics, error) {
	s := &subscription{fn: fn, topics: make(map[string]struct{})}
	if err := b.start(s); err != nil {
		return nil, err
	}
	return &topicSet{b: b, s: s}, nil
}

// topicSet is the Topics of one SubscribeTopics.
type topicSet struct {
	b    *Bus
	s    *subscription
	once sync.Once
}

func (t *topicSet) Add(_ context.Context, topics ...string) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	if t.b.closed {
		return ErrClosed
	}
	if t.s.topics != nil {
		for _, topic := range topics {
			t.s.topics[topic] = struct{}{}
		}
	}
	return nil
}

func (t *topicSet) Remove(topics ...string) {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	for _, topic := range topics {
		delete(t.s.topics, topic)
	}
}

func (t *topicSet) Close() { t.once.Do(func() { t.b.drop(t.s) }) }

// start registers s and starts its delivery.
func (b *Bus) start(s *subscription) error {
	s.cond = sync.NewCond(&s.mu)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.subs == nil {
		b.subs = make(map[*subscription]struct{})
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.run()
	return nil
}

// drop ends s.
func (b *Bus) drop(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
	s.stop()
}

// Ping reports whether the bus is open.
func (b *Bus) Ping(context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	return nil
}

// Close stops every subscription; queued messages not yet delivered are dropped.
func (b *Bus) Close() error {
	b.mu.Lock()
	subs := b.subs
	b.subs, b.closed = nil, true
	b.mu.Unlock()
	for s := range subs {
		s.stop()
	}
	return nil
}

func (s *subscription) push(it item) {
	s.mu.Lock()
	if !s.done {
		s.queue = append(s.queue, it)
		s.cond.Signal()
	}
	s.mu.Unlock()
}

func (s *subscription) stop() {
	s.mu.Lock()
	s.done = true
	s.queue = nil
	s.cond.Signal()
	s.mu.Unlock()
}

func (s *subscription) run() {
	var batch []item
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.done {
			s.cond.Wait()
		}
		if s.done {
			s.mu.Unlock()
			return
		}
		batch, s.queue = s.queue, batch[:0]
		s.mu.Unlock()
		for i := range batch {
			s.fn(batch[i].topic, batch[i].data)
			batch[i] = item{}
		}
	}
}
