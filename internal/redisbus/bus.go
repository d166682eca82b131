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
// lost.
//
// A publish Redis cannot take (it is down, the connection broke) is kept,
// with every publish behind it, and sent again once Redis answers: a
// message stored during an outage reaches the online devices as soon as
// Redis is back, without waiting for a later message to reveal the gap.
// What is kept is bounded (65,536 publishes, 64 MiB); past that the oldest
// are dropped and counted (Stats). The kept publishes are the fast path
// only: when Redis was down, every node's subscription broke too, and each
// node reads what its devices missed from the store once its subscription
// is back (the resumed callback of Subscribe), whether the publishes sent
// again reached it or not (they may reach Redis before a node has
// subscribed again). Keeping them covers what that cannot: one node's
// connection broken while the others' subscriptions held. A publish Redis
// answers with an error is dropped and counted: sending it again would get
// the same answer.
//
// Subscribe PSUBSCRIBEs prefix* once per prefix (rueidis subscribes again
// after a reconnect, and then the subscribers' resumed callbacks run) and
// hands what arrives to an in-process bus (inmem), so each subscriber drains
// its own queue in publish order per topic and a slow one never holds up
// the Redis connection. A node's own publishes come back to it this way: one
// path for local and remote recipients.
//
// SubscribeTopics subscribes to exact topics instead (topics.go): a node
// subscribes to the conversations its sockets are in, so it receives only
// their messages. What was added since the last round trip goes as one
// SUBSCRIBE per 1,000 channels on a dedicated connection, which is made
// again, with every channel of the set, when it breaks.
//
// On a Redis Cluster (Config.Cluster, Redis 7), topics under the
// Config.Sharded prefixes go by sharded pub/sub (SPUBLISH/SSUBSCRIBE): each
// message is carried by its slot's shard only. Their channels carry one of
// 32 hash tags whose slots spread over the cluster, so one SSUBSCRIBE holds
// many of them; the other topics go by PUBLISH, which the cluster relays
// to every node, and reach prefix subscribers as on one Redis.
//
// Each Bus registers its own metrics (Register), so that the node's HTTP
// edge needs to know nothing of Redis.
package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/rediscore"
)

var _ switchboard.Bus = (*Bus)(nil)

// ErrClosed is returned by a closed Bus.
var ErrClosed = errors.New("redisbus: bus closed")

const (
	// maxQueued bounds the publishes waiting for Redis: past it (Redis is
	// slower than the node) Publish waits.
	maxQueued = 1 << 16
	// maxKept and maxKeptBytes bound the publishes kept while Redis cannot
	// take them: past either, the oldest are dropped (the store has them,
	// and the subscribers' catch-up reads them).
	maxKept      = 1 << 16
	maxKeptBytes = 64 << 20
	// maxPipeline bounds one DoMulti.
	maxPipeline = 1024
	// retryMin and retryMax bound the wait before kept publishes are sent
	// again: short at first (a blip), longer while Redis stays down.
	retryMin = 50 * time.Millisecond
	retryMax = time.Second
	// subscribeTimeout bounds the wait for Redis to confirm a PSUBSCRIBE.
	subscribeTimeout = 10 * time.Second
	// closeTimeout bounds the flush of what is queued when the bus closes.
	closeTimeout = 5 * time.Second
)

// Bus publishes and subscribes through Redis.
type Bus struct {
	client rueidis.Client
	local  inmem.Bus

	mu        sync.Mutex
	room      sync.Cond // signalled when flush takes the queue, and on Close
	queue     []pub
	spare     []pub
	closed    bool
	patterns  map[string]*pattern // prefixes subscribed in Redis
	topicSubs map[*topicSub]struct{}
	names     naming // topics to channels: sharded on a cluster

	// kept is the writer's: publishes Redis could not take, in publish
	// order, and the bytes they hold. While it is not empty every new
	// publish goes behind it, so one topic's order holds across an outage.
	kept      []pub
	keptBytes int

	wake      chan struct{}
	done      chan struct{}
	ctx       context.Context // cancelled by Close: ends the receivers
	cancel    context.CancelFunc
	writer    sync.WaitGroup
	receivers sync.WaitGroup

	published, dropped, pipelines, retried, resubscribed atomic.Int64
	waiting                                              atomic.Int64 // len(kept), for Stats

	received, subscribeCmds, unsubscribeCmds, subscribeErrors atomic.Int64 // topics.go
}

// pattern is one PSUBSCRIBE and the resumed callbacks of its subscribers.
type pattern struct {
	resumed map[*func()]struct{}
}

type pub struct {
	topic string
	data  []byte
}

// Stats are the bus's counters since Open.
type Stats struct {
	Published    int64 // publishes Redis took
	Dropped      int64 // publishes lost: refused by Redis, or past the bound kept while it was unreachable
	Pipelines    int64 // DoMulti calls that carried them
	Retried      int64 // publishes sent again after Redis could not take them
	Waiting      int64 // publishes kept now, to be sent again when Redis answers
	Resubscribed int64 // subscriptions made again after the connection was lost

	Received        int64 // messages received on exact topics (SubscribeTopics)
	SubscribeCmds   int64 // SUBSCRIBE/SSUBSCRIBE commands sent (each up to 1,000 channels)
	UnsubscribeCmds int64 // UNSUBSCRIBE/SUNSUBSCRIBE commands sent
	SubscribeErrors int64 // those commands that failed (the connection is made again)
	Topics          int64 // exact topics subscribed now, over every subscriber
}

// Config says which Redis a Bus uses.
type Config struct {
	// URL is a single Redis: redis://[user:password@]host:port/db.
	URL string
	// Cluster, instead of URL, lists seed addresses (host:port) of a Redis
	// Cluster (Redis 7 or later).
	Cluster []string
	// Sharded are the topic prefixes that a cluster carries by sharded
	// pub/sub (SPUBLISH/SSUBSCRIBE: only the primary of the topic's slot and
	// its replicas see a message), received by SubscribeTopics only. Other
	// topics go by PUBLISH, which every node of a cluster relays, and reach
	// prefix subscribers too. Ignored on a single Redis, where every topic
	// goes by PUBLISH.
	Sharded []string
}

// Open connects to the Redis at url (redis://[user:password@]host:port/db)
// and checks it answers.
func Open(ctx context.Context, url string) (*Bus, error) {
	return OpenConfig(ctx, Config{URL: url})
}

// OpenConfig connects to the Redis or Redis Cluster of c and checks it
// answers.
func OpenConfig(ctx context.Context, c Config) (*Bus, error) {
	opt, err := rediscore.Options(c.URL, c.Cluster)
	if err != nil {
		return nil, fmt.Errorf("redisbus: %w", err)
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisbus: connect %s: %w", opt.InitAddress, err)
	}
	cluster := len(c.Cluster) > 0
	if cluster && client.Mode() != rueidis.ClientModeCluster {
		client.Close()
		return nil, fmt.Errorf("redisbus: %s is not a Redis Cluster", strings.Join(c.Cluster, ","))
	}
	b := &Bus{client: client, patterns: make(map[string]*pattern), topicSubs: make(map[*topicSub]struct{}),
		names: newNaming(cluster, c.Sharded), wake: make(chan struct{}, 1), done: make(chan struct{})}
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

// write is the one goroutine that sends publishes, in queue order. While
// publishes are kept (Redis could not take them) it sends them again after
// a pause that grows while Redis stays down, instead of at every wake: new
// publishes go behind the kept ones meanwhile.
func (b *Bus) write() {
	defer b.writer.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	pause := time.Duration(0)
	for {
		select {
		case <-b.wake:
			if pause > 0 { // waiting for Redis: queue behind what is kept
				b.keep(b.take())
				continue
			}
		case <-retry.C:
		case <-b.done:
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			b.flush(ctx) // what was published before Close still goes out
			cancel()
			return
		}
		if b.flush(b.ctx) {
			pause = 0
			continue
		}
		pause = min(max(2*pause, retryMin), retryMax)
		retry.Reset(pause)
	}
}

// take empties the queue and wakes the publishers waiting for room.
func (b *Bus) take() []pub {
	b.mu.Lock()
	batch := b.queue
	b.queue, b.spare = b.spare[:0], nil
	b.room.Broadcast()
	b.mu.Unlock()
	return batch
}

// keep puts batch behind the kept publishes, dropping the oldest past the
// bound.
func (b *Bus) keep(batch []pub) {
	for _, p := range batch {
		b.kept = append(b.kept, p)
		b.keptBytes += len(p.data)
	}
	drop := 0
	for len(b.kept)-drop > maxKept || (b.keptBytes > maxKeptBytes && drop < len(b.kept)-1) {
		b.keptBytes -= len(b.kept[drop].data)
		drop++
	}
	if drop > 0 {
		b.dropped.Add(int64(drop))
		clear(b.kept[:drop])
		b.kept = append(b.kept[:0], b.kept[drop:]...)
	}
	b.waiting.Store(int64(len(b.kept)))
	b.recycle(batch)
}

// recycle hands batch's array back to the queue once its publishes are
// sent or kept.
func (b *Bus) recycle(batch []pub) {
	clear(batch)
	b.mu.Lock()
	if b.spare == nil {
		b.spare = batch[:0]
	}
	b.mu.Unlock()
}

// flush sends what is kept and what is queued, maxPipeline publishes per
// round trip, and reports whether Redis took (or refused) every one of
// them. A publish Redis could not take is kept, with every later one, for
// the next try.
func (b *Bus) flush(ctx context.Context) bool {
	batch := b.take()
	if len(b.kept) > 0 {
		b.keep(batch)
		batch = nil
	}
	retrying := len(b.kept) > 0
	sending := batch
	if retrying {
		sending = b.kept
	}
	cmds := make(rueidis.Commands, 0, min(len(sending), maxPipeline))
	sent, ok := 0, true
	for sent < len(sending) && ok {
		n := min(len(sending)-sent, maxPipeline)
		cmds = cmds[:0]
		for _, p := range sending[sent : sent+n] {
			cmds = append(cmds, b.names.publish(b.client.B(), p.topic, p.data))
		}
		b.pipelines.Add(1)
		if retrying {
			b.retried.Add(int64(n))
		}
		var failed []pub
		for i, r := range b.doMulti(ctx, cmds) {
			switch err := r.Error(); {
			case err == nil:
				b.published.Add(1)
			case isRefusal(err):
				b.dropped.Add(1)
			default: // not sent, or no answer: send it again
				failed = append(failed, sending[sent+i])
				ok = false
			}
		}
		sent += n
		if !ok {
			// What failed first, then what was not tried yet: both go
			// again, in publish order.
			rest := append(failed, sending[sent:]...)
			b.kept, b.keptBytes = nil, 0
			b.keep(rest)
		}
	}
	if ok && retrying {
		clear(b.kept)
		b.kept, b.keptBytes = b.kept[:0], 0
		b.waiting.Store(0)
	}
	if batch != nil {
		b.recycle(batch)
	}
	return ok
}

// doMulti sends cmds as one pipeline, or, on a cluster where sharded and
// relayed publishes are mixed, as two (rueidis does not mix commands with
// a slot and without one in a pipeline), the results in cmds's order.
func (b *Bus) doMulti(ctx context.Context, cmds rueidis.Commands) []rueidis.RedisResult {
	if !b.names.cluster {
		return b.client.DoMulti(ctx, cmds...)
	}
	var slotted, other rueidis.Commands
	var at []bool // per cmd, whether it is slotted
	for _, c := range cmds {
		keyed := c.Commands()[0] == "SPUBLISH"
		at = append(at, keyed)
		if keyed {
			slotted = append(slotted, c)
		} else {
			other = append(other, c)
		}
	}
	if len(slotted) == 0 || len(other) == 0 {
		return b.client.DoMulti(ctx, cmds...)
	}
	rs, ro := b.client.DoMulti(ctx, slotted...), b.client.DoMulti(ctx, other...)
	out := make([]rueidis.RedisResult, 0, len(cmds))
	for _, keyed := range at {
		if keyed {
			out, rs = append(out, rs[0]), rs[1:]
		} else {
			out, ro = append(out, ro[0]), ro[1:]
		}
	}
	return out
}

// isRefusal reports whether err is Redis's answer (sending the publish
// again would get the same one), not a lost connection.
func isRefusal(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok
}

// Subscribe calls fn for each message whose topic starts with prefix, from
// any node, in publish order per topic, until cancel is called. It returns
// once Redis has confirmed the subscription, so what is published after it
// returns is received. Each time Redis confirms the subscription again
// after the connection was lost, resumed (unless nil) is called in a new
// goroutine.
func (b *Bus) Subscribe(prefix string, fn func(topic string, data []byte), resumed func()) (func(), error) {
	cancel, err := b.local.Subscribe(prefix, fn, nil)
	if err != nil {
		return nil, ErrClosed
	}
	key := &resumed
	if err := b.subscribeRedis(prefix, key); err != nil {
		cancel()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			if p := b.patterns[prefix]; p != nil {
				delete(p.resumed, key)
			}
			b.mu.Unlock()
			cancel()
		})
	}, nil
}

// subscribeRedis PSUBSCRIBEs prefix* unless it already is, registers
// resumed, and waits for the confirmation.
func (b *Bus) subscribeRedis(prefix string, resumed *func()) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if p := b.patterns[prefix]; p != nil {
		p.resumed[resumed] = struct{}{}
		b.mu.Unlock()
		return nil
	}
	p := &pattern{resumed: map[*func()]struct{}{resumed: {}}}
	b.patterns[prefix] = p
	b.mu.Unlock()

	confirmed := make(chan struct{})
	var first atomic.Bool
	first.Store(true)
	ctx := rueidis.WithOnSubscriptionHook(b.ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind != "psubscribe" {
			return
		}
		if first.Swap(false) {
			close(confirmed)
			return
		}
		b.resubscribed.Add(1)
		b.resume(p)
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

// resume runs the resumed callbacks of p's subscribers, each in its own
// goroutine: the subscription hook runs on rueidis's pipeline and must not
// wait for a subscriber's store reads.
func (b *Bus) resume(p *pattern) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for fn := range p.resumed {
		if *fn != nil {
			go (*fn)()
		}
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
	b.mu.Lock()
	var topics int
	for t := range b.topicSubs {
		topics += t.size()
	}
	b.mu.Unlock()
	return Stats{Published: b.published.Load(), Dropped: b.dropped.Load(), Pipelines: b.pipelines.Load(),
		Retried: b.retried.Load(), Waiting: b.waiting.Load(), Resubscribed: b.resubscribed.Load(),
		Received: b.received.Load(), SubscribeCmds: b.subscribeCmds.Load(), UnsubscribeCmds: b.unsubscribeCmds.Load(),
		SubscribeErrors: b.subscribeErrors.Load(), Topics: int64(topics)}
}

// Close sends what is queued and kept (waiting up to 5 s), then stops every
// subscription and closes the connections.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.room.Broadcast()
	subs := make([]*topicSub, 0, len(b.topicSubs))
	for t := range b.topicSubs {
		subs = append(subs, t)
	}
	b.mu.Unlock()
	close(b.done)
	b.writer.Wait()
	b.cancel()
	for _, t := range subs {
		t.Close()
	}
	b.client.Close()
	b.receivers.Wait()
	return b.local.Close()
}
