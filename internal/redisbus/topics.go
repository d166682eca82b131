package redisbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/inmem"
)

// Exact-topic subscriptions (SubscribeTopics): a node subscribes to the
// channels of the conversations its sockets are in, so it receives only
// their messages. Each subscriber holds one dedicated connection per shard
// (one on a single Redis; on a cluster, one per hash-tag bucket, each
// bucket's channels in one slot, so one SSUBSCRIBE carries many of them).
// One goroutine per connection sends what was added and removed since its
// last round trip as one SUBSCRIBE and one UNSUBSCRIBE (up to maxChannels
// channels each): a storm of thousands of Adds costs a few commands per
// round trip, not one per socket. A broken connection is made again, every
// channel of the set subscribed again, and then resumed is called.

const (
	// maxChannels bounds the channels of one SUBSCRIBE or UNSUBSCRIBE.
	maxChannels = 1000
	// commandTimeout bounds one round trip of the subscriber's connection:
	// past it (Redis paused, a dead primary) the connection is made again.
	commandTimeout = 5 * time.Second
)

var _ switchboard.Topics = (*topicSub)(nil)

// topicSub is one SubscribeTopics: its set of topics, spread over shards.
type topicSub struct {
	b       *Bus
	local   inmem.Bus // hands messages to fn in order, off the connection's reader
	resumed func()
	shards  []*shard
	ctx     context.Context
	cancel  context.CancelFunc
	done    sync.WaitGroup
	once    sync.Once
}

// shard is the channels of a topicSub on one connection, and the
// goroutine that keeps Redis's subscriptions equal to them.
type shard struct {
	t    *topicSub
	wake chan struct{}

	mu    sync.Mutex
	want  map[string]bool     // channels in the set: true once Redis confirmed them on this connection
	add   map[string]struct{} // to SUBSCRIBE at the next round trip
	del   map[string]struct{} // to UNSUBSCRIBE at the next round trip
	waits []*addWait          // Adds waiting for their channels
	late  bool                // an Add gave up waiting: call resumed once its channels are live
}

// addWait is one Add's wait for its channels on one shard.
type addWait struct {
	chans []string
	done  chan struct{}
}

// SubscribeTopics calls fn for each message on the topics added to the
// returned set (switchboard.Bus).
func (b *Bus) SubscribeTopics(fn func(topic string, data []byte), resumed func()) (switchboard.Topics, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	t := &topicSub{b: b, resumed: resumed}
	if _, err := t.local.Subscribe("", fn, nil); err != nil {
		return nil, ErrClosed
	}
	t.ctx, t.cancel = context.WithCancel(b.ctx)
	for range b.names.buckets() {
		s := &shard{t: t, wake: make(chan struct{}, 1), want: make(map[string]bool),
			add: make(map[string]struct{}), del: make(map[string]struct{})}
		t.shards = append(t.shards, s)
		t.done.Add(1)
		go s.run()
	}
	b.mu.Lock()
	b.topicSubs[t] = struct{}{}
	b.mu.Unlock()
	return t, nil
}

// Add subscribes to topics and waits until Redis confirmed them.
func (t *topicSub) Add(ctx context.Context, topics ...string) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	byShard := make(map[*shard][]string)
	for _, topic := range topics {
		i, ch := t.b.names.channel(topic)
		byShard[t.shards[i]] = append(byShard[t.shards[i]], ch)
	}
	var waits []*addWait
	for s, chans := range byShard {
		if w := s.queueAdd(chans); w != nil {
			waits = append(waits, w)
		}
	}
	for i, w := range waits {
		select {
		case <-w.done:
		case <-ctx.Done():
			for _, w := range waits[i:] {
				for s := range byShard {
					s.giveUp(w)
				}
			}
			return fmt.Errorf("redisbus: subscribe: %w", ctx.Err())
		case <-t.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

// Remove unsubscribes from topics.
func (t *topicSub) Remove(topics ...string) {
	for _, topic := range topics {
		i, ch := t.b.names.channel(topic)
		s := t.shards[i]
		s.mu.Lock()
		if _, ok := s.want[ch]; ok {
			delete(s.want, ch)
			delete(s.add, ch)
			s.del[ch] = struct{}{}
		}
		s.mu.Unlock()
		s.poke()
	}
}

// Close ends the subscription and its connections.
func (t *topicSub) Close() {
	t.once.Do(func() {
		t.cancel()
		t.done.Wait()
		t.local.Close()
		t.b.mu.Lock()
		delete(t.b.topicSubs, t)
		t.b.mu.Unlock()
	})
}

// queueAdd puts chans in the set and returns the wait for those not live
// yet, or nil when all are.
func (s *shard) queueAdd(chans []string) *addWait {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pending []string
	for _, ch := range chans {
		live, ok := s.want[ch]
		if !ok {
			s.want[ch] = false
			s.add[ch] = struct{}{}
			delete(s.del, ch)
		}
		if !live {
			pending = append(pending, ch)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	w := &addWait{chans: pending, done: make(chan struct{})}
	s.waits = append(s.waits, w)
	s.poke()
	return w
}

// giveUp drops w if it is one of s's: its channels stay in the set, and
// resumed is called once they are live (what was published meanwhile is
// for the subscriber to read from the store).
func (s *shard) giveUp(w *addWait) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.waits, w); i >= 0 {
		s.waits = slices.Delete(s.waits, i, i+1)
		s.late = true
	}
}

func (s *shard) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run keeps one connection subscribed to the shard's channels, making it
// again (and subscribing every channel again) when it breaks.
func (s *shard) run() {
	defer s.t.done.Done()
	pause := time.Duration(0)
	for first := true; s.t.ctx.Err() == nil; first = false {
		if pause > 0 {
			select {
			case <-s.t.ctx.Done():
				return
			case <-time.After(pause):
			}
		}
		if s.serve(!first) {
			pause = 0
		}
		pause = min(max(2*pause, retryMin), retryMax)
	}
}

// serve subscribes a new connection to every channel of the set, then
// follows the set's changes until the connection breaks or the subscriber
// closes. It reports whether a round trip succeeded (to reset the pause
// between tries). After a reconnect, resumed is called once every channel
// is live again.
func (s *shard) serve(reconnect bool) (worked bool) {
	b := s.t.b
	dc, release := b.client.Dedicate()
	defer func() { dc.Close(); release() }()
	moved := make(chan struct{}, 1)
	lost := dc.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		b.received.Add(1)
		// Copied: the subscriber may keep it.
		_ = s.t.local.Publish(context.Background(), b.names.topic(m.Channel), []byte(m.Message))
	}, OnSubscription: func(sub rueidis.PubSubSubscription) {
		// Redis ends a sharded subscription by itself when the slot moves
		// to another primary: subscribe again where it is now.
		if sub.Kind == "sunsubscribe" && s.wanted(sub.Channel) {
			select {
			case moved <- struct{}{}:
			default:
			}
		}
	}})
	s.mu.Lock()
	clear(s.add)
	clear(s.del)
	for ch := range s.want {
		s.want[ch] = false
		s.add[ch] = struct{}{}
	}
	s.late = s.late || (reconnect && len(s.want) > 0)
	s.mu.Unlock()
	for {
		if !s.flush(dc) {
			return worked
		}
		worked = true
		select {
		case <-s.wake:
		case <-lost:
			return worked
		case <-moved:
			return worked
		case <-s.t.ctx.Done():
			return worked
		}
	}
}

// flush sends what was added and removed since the last round trip, marks
// the added channels live, wakes the Adds whose channels all are, and runs
// resumed if an Add gave up or the connection was made again. It reports
// false when the connection failed.
func (s *shard) flush(dc rueidis.DedicatedClient) bool {
	b := s.t.b
	s.mu.Lock()
	add := make([]string, 0, len(s.add))
	for ch := range s.add {
		add = append(add, ch)
	}
	del := make([]string, 0, len(s.del))
	for ch := range s.del {
		del = append(del, ch)
	}
	clear(s.add)
	clear(s.del)
	s.mu.Unlock()

	var cmds rueidis.Commands
	for chunk := range slices.Chunk(add, maxChannels) {
		cmds = append(cmds, b.names.subscribe(dc.B(), chunk))
		b.subscribeCmds.Add(1)
	}
	for chunk := range slices.Chunk(del, maxChannels) {
		cmds = append(cmds, b.names.unsubscribe(dc.B(), chunk))
		b.unsubscribeCmds.Add(1)
	}
	if len(cmds) > 0 {
		ctx, cancel := context.WithTimeout(s.t.ctx, commandTimeout)
		failed := false
		for _, r := range dc.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				failed = true
				if !errors.Is(err, context.Canceled) {
					b.subscribeErrors.Add(1)
				}
			}
		}
		cancel()
		if failed {
			// Whatever was not confirmed goes again on the next connection
			// (serve subscribes the whole set).
			return false
		}
	}
	s.mu.Lock()
	for _, ch := range add {
		if _, ok := s.want[ch]; ok {
			s.want[ch] = true
		}
	}
	waits := s.waits[:0]
	for _, w := range s.waits {
		if s.liveLocked(w.chans) {
			close(w.done)
		} else {
			waits = append(waits, w)
		}
	}
	clear(s.waits[len(waits):])
	s.waits = waits
	late := s.late && len(s.add) == 0
	if late {
		s.late = false
	}
	s.mu.Unlock()
	if late && s.t.resumed != nil && s.t.ctx.Err() == nil {
		b.resubscribed.Add(1)
		go s.t.resumed()
	}
	return true
}

// wanted reports whether ch is in the set and not being removed.
func (s *shard) wanted(ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.want[ch]
	_, going := s.del[ch]
	return ok && !going
}

// liveLocked reports whether every channel of chans is confirmed (or was
// removed since). s.mu is held.
func (s *shard) liveLocked(chans []string) bool {
	for _, ch := range chans {
		if live, ok := s.want[ch]; ok && !live {
			return false
		}
	}
	return true
}

// naming maps topics to Redis channels and commands: on a single Redis a
// channel is its topic (PUBLISH, SUBSCRIBE); on a cluster, a sharded topic
// is a channel with a hash tag of one of nBuckets buckets (SPUBLISH,
// SSUBSCRIBE), the buckets' slots spread evenly over 0..16383 so that they
// spread over the shards whatever slot ranges each primary holds.
type naming struct {
	cluster bool
	sharded []string // topic prefixes sharded on a cluster
	tags    []string // per bucket, its hash tag, "{...}"
}

// nBuckets is how many hash-tag buckets the sharded topics of a cluster
// spread over: each a connection per subscriber, enough for a few dozen
// primaries.
const nBuckets = 32

func newNaming(cluster bool, sharded []string) naming {
	n := naming{cluster: cluster, sharded: sharded}
	if !cluster {
		return n
	}
	for i := range nBuckets {
		lo, hi := i*16384/nBuckets, (i+1)*16384/nBuckets
		for k := 0; ; k++ {
			tag := fmt.Sprint(k)
			if slot := int(crc16(tag) % 16384); slot >= lo && slot < hi {
				n.tags = append(n.tags, "{"+tag+"}")
				break
			}
		}
	}
	return n
}

// buckets is how many connections a topic subscriber holds: one per
// bucket, and one for the topics that are not sharded (the only one on a
// single Redis).
func (n naming) buckets() int { return len(n.tags) + 1 }

// isSharded reports whether topic goes by SPUBLISH.
func (n naming) isSharded(topic string) bool {
	if !n.cluster {
		return false
	}
	for _, p := range n.sharded {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// channel returns topic's bucket and Redis channel.
func (n naming) channel(topic string) (int, string) {
	if !n.isSharded(topic) {
		return len(n.tags), topic
	}
	i := int(fnv32(topic) % uint32(len(n.tags)))
	return i, n.tags[i] + topic
}

// topic is channel's topic.
func (n naming) topic(channel string) string {
	if n.cluster && strings.HasPrefix(channel, "{") {
		if i := strings.IndexByte(channel, '}'); i > 0 {
			return channel[i+1:]
		}
	}
	return channel
}

func (n naming) publish(c rueidis.Builder, topic string, data []byte) rueidis.Completed {
	if n.isSharded(topic) {
		_, ch := n.channel(topic)
		return c.Spublish().Channel(ch).Message(rueidis.BinaryString(data)).Build()
	}
	return c.Publish().Channel(topic).Message(rueidis.BinaryString(data)).Build()
}

// subscribe and unsubscribe build the commands of one bucket's channels.
// A topic that is not sharded (the single Redis) goes by SUBSCRIBE.
func (n naming) subscribe(c rueidis.Builder, chans []string) rueidis.Completed {
	if n.cluster && strings.HasPrefix(chans[0], "{") {
		return c.Ssubscribe().Channel(chans...).Build()
	}
	return c.Subscribe().Channel(chans...).Build()
}

func (n naming) unsubscribe(c rueidis.Builder, chans []string) rueidis.Completed {
	if n.cluster && strings.HasPrefix(chans[0], "{") {
		return c.Sunsubscribe().Channel(chans...).Build()
	}
	return c.Unsubscribe().Channel(chans...).Build()
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// size is how many topics the set holds.
func (t *topicSub) size() int {
	n := 0
	for _, s := range t.shards {
		s.mu.Lock()
		n += len(s.want)
		s.mu.Unlock()
	}
	return n
}

// ClusterSlot is the hash slot of a sharded topic's channel on a Redis
// Cluster: tests use it to find the shard a conversation is on.
func ClusterSlot(topic string) int {
	n := newNaming(true, []string{""})
	_, ch := n.channel(topic)
	tag := ch[1:strings.IndexByte(ch, '}')]
	return int(crc16(tag) % 16384)
}
