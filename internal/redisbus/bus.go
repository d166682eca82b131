// Package redisbus is the Bus of nodes that share a Redis: pub/sub through
// rueidis (github.com/redis/rueidis), a well-kept client made for pipelining.
//
// Publish queues and returns at once, as the in-process bus does. One
// goroutine sends whatever is queued as one pipeline (DoMulti: the commands
// written together, the replies read together) and, while Redis answers,
// the next publishes queue behind it: a burst of N publishes costs one round
// trip, not N, and one writer on one connection keeps them in order. When
// 65,536 publishes are queued (Redis is slower than the node), Publish waits
// for room instead of dropping: the sends behind it slow down, nothing is
// lost. A publish Redis refuses or cannot take (it is down) is dropped and
// counted (Stats): pub/sub is the fast path, the store holds every message,
// and a device that missed one gets it from the store at its next sync.
//
// Subscribe PSUBSCRIBEs prefix* once per prefix (rueidis subscribes again
// after a reconnect) and hands what arrives to an in-process bus (inmem),
// so each subscriber drains its own queue in publish order per topic and a
// slow one never holds up the Redis connection. A node's own publishes come
// back to it this way: one path for local and remote recipients.
package redisbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/inmem"
)

var _ switchboard.Bus = (*Bus)(nil)

// ErrClosed is returned by a closed Bus.
var ErrClosed = errors.New("redisbus: bus closed")

const (
	// maxQueued bounds the publishes waiting for Redis: past it (Redis is
	// slower than the node) Publish waits.
	maxQueued = 1 << 16
	// maxPipeline bounds one DoMulti.
	maxPipeline = 1024
	// subscribeTimeout bounds the wait for Redis to confirm a PSUBSCRIBE.
	subscribeTimeout = 10 * time.Second
	// closeTimeout bounds the flush of what is queued when the bus closes.
	closeTimeout = 5 * time.Second
)

// Bus publishes and subscribes through Redis.
type Bus struct {
	client rueidis.Client
	local  inmem.Bus

	mu       sync.Mutex
	room     sync.Cond // signalled when flush takes the queue, and on Close
	queue    []pub
	spare    []pub
	closed   bool
	patterns map[string]bool // prefixes subscribed in Redis

	wake      chan struct{}
	done      chan struct{}
	ctx       context.Context // cancelled by Close: ends the receivers
	cancel    context.CancelFunc
	writer    sync.WaitGroup
	receivers sync.WaitGroup

	published, dropped, pipelines atomic.Int64
}

type pub struct {
	topic string
	data  []byte
}

// Stats are the bus's counters since Open.
type Stats struct {
	Published int64 // publishes Redis took
	Dropped   int64 // publishes lost: refused by Redis, or Redis unreachable
	Pipelines int64 // DoMulti calls that carried them
}

// Open connects to the Redis at url (redis://[user:password@]host:port/db)
// and checks it answers.
func Open(ctx context.Context, url string) (*Bus, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisbus: %w", err)
	}
	opt.DisableCache = true // no client-side caching: the bus only publishes and subscribes
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisbus: connect %s: %w", opt.InitAddress, err)
	}
	b := &Bus{client: client, patterns: make(map[string]bool),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.room.L = &b.mu
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.Ping(ctx); err != nil {
		client.Close()
		return nil, err
	}
	b.writer.Add(1)
	go b.write()
	return b, nil
}

// Publish queues data for every subscriber of topic on every node, waiting
// while the queue is full (until the writer takes it: each round trip does,
// whether Redis took the publishes or not). The bus keeps data: the caller
// must not modify it afterwards.
func (b *Bus) Publish(_ context.Context, topic string, data []byte) error {
	b.mu.Lock()
	for len(b.queue) >= maxQueued && !b.closed {
		b.room.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.queue = append(b.queue, pub{topic, data})
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// write is the one goroutine that sends publishes, in queue order.
func (b *Bus) write() {
	defer b.writer.Done()
	for {
		select {
		case <-b.wake:
			b.flush(b.ctx)
		case <-b.done:
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			b.flush(ctx) // what was published before Close still goes out
			cancel()
			return
		}
	}
}

// flush sends what is queued, maxPipeline publishes per round trip.
func (b *Bus) flush(ctx context.Context) {
	b.mu.Lock()
	batch := b.queue
	b.queue, b.spare = b.spare[:0], nil
	b.room.Broadcast()
	b.mu.Unlock()
	cmds := make(rueidis.Commands, 0, min(len(batch), maxPipeline))
	for len(batch) > 0 {
		n := min(len(batch), maxPipeline)
		cmds = cmds[:0]
		for _, p := range batch[:n] {
			cmds = append(cmds, b.client.B().Publish().Channel(p.topic).Message(rueidis.BinaryString(p.data)).Build())
		}
		b.pipelines.Add(1)
		for _, r := range b.client.DoMulti(ctx, cmds...) {
			if r.Error() != nil {
				b.dropped.Add(1)
			} else {
				b.published.Add(1)
			}
		}
		clear(batch[:n])
		batch = batch[n:]
	}
	b.mu.Lock()
	if b.spare == nil {
		b.spare = batch[:0]
	}
	b.mu.Unlock()
}

// Subscribe calls fn for each message whose topic starts with prefix, from
// any node, in publish order per topic, until cancel is called. It returns
// once Redis has confirmed the subscription, so what is published after it
// returns is received.
func (b *Bus) Subscribe(prefix string, fn func(topic string, data []byte)) (func(), error) {
	cancel, err := b.local.Subscribe(prefix, fn)
	if err != nil {
		return nil, ErrClosed
	}
	if err := b.subscribeRedis(prefix); err != nil {
		cancel()
		return nil, err
	}
	return cancel, nil
}

// subscribeRedis PSUBSCRIBEs prefix* unless it already is, and waits for
// the confirmation.
func (b *Bus) subscribeRedis(prefix string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.patterns[prefix] {
		b.mu.Unlock()
		return nil
	}
	b.patterns[prefix] = true
	b.mu.Unlock()

	confirmed := make(chan struct{})
	var once sync.Once
	ctx := rueidis.WithOnSubscriptionHook(b.ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "psubscribe" {
			once.Do(func() { close(confirmed) })
		}
	})
	// Topic prefixes hold no glob characters (conv., user., control.).
	cmd := func() rueidis.Completed { return b.client.B().Psubscribe().Pattern(prefix + "*").Build() }
	b.receivers.Add(1)
	go func() {
		defer b.receivers.Done()
		for b.ctx.Err() == nil {
			err := b.client.Receive(ctx, cmd(), func(m rueidis.PubSubMessage) {
				// Copied: the subscribers may keep it.
				_ = b.local.Publish(context.Background(), m.Channel, []byte(m.Message))
			})
			if b.ctx.Err() != nil || errors.Is(err, rueidis.ErrClosing) {
				return
			}
			// The connection broke and rueidis gave up retrying: try again.
			select {
			case <-b.ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	select {
	case <-confirmed:
		return nil
	case <-time.After(subscribeTimeout):
		return fmt.Errorf("redisbus: PSUBSCRIBE %s*: no confirmation in %s", prefix, subscribeTimeout)
	}
}

// Ping checks Redis answers.
func (b *Bus) Ping(ctx context.Context) error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if err := b.client.Do(ctx, b.client.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redisbus: ping: %w", err)
	}
	return nil
}

// Stats returns the counters since Open.
func (b *Bus) Stats() Stats {
	return Stats{Published: b.published.Load(), Dropped: b.dropped.Load(), Pipelines: b.pipelines.Load()}
}

// Close sends what is queued (waiting up to 5 s), then stops every
// subscription and closes the connections.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.room.Broadcast()
	b.mu.Unlock()
	close(b.done)
	b.writer.Wait()
	b.cancel()
	b.client.Close()
	b.receivers.Wait()
	return b.local.Close()
}
