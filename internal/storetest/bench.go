package storetest

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// Benchmark shape: conversations between two users of two devices each,
// so that every message has 3 recipient devices (the sender's other device
// and the peer's two), each with its own 200-byte ciphertext.
const (
	benchConversations = 16
	benchCiphertext    = 200
)

// benchSenders are the numbers of goroutines sending at once in the
// parallel benchmarks: one per socket with a send in flight.
var benchSenders = []int{64, 256}

// BenchmarkAppendMessage measures AppendMessage on stores from open, which
// must return a new empty store, durable as in production:
//
//   - sequential: one send at a time, each waiting for its commit, as a
//     store without group commit would do them all;
//   - parallel-N: N goroutines sending at once, as a node's sockets do, so
//     that their sends share commits; the more wait, the larger a batch.
//
// It reports sends/s (successful AppendMessage calls per second, each
// acknowledged after its commit) and, for a store with AppendStats, the
// average number of messages per committed batch.
func BenchmarkAppendMessage(b *testing.B, open func(b *testing.B) switchboard.Store) {
	b.Run("sequential", func(b *testing.B) {
		f := newBenchFixture(b, open(b))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			f.send(b)
		}
		f.report(b)
	})
	for _, senders := range benchSenders {
		b.Run(fmt.Sprintf("parallel-%d", senders), func(b *testing.B) {
			f := newBenchFixture(b, open(b))
			sendParallel(b, senders, f.send)
			f.report(b)
		})
	}
}

// sendParallel calls send b.N times from about senders goroutines at once.
func sendParallel(b *testing.B, senders int, send func(b *testing.B)) {
	b.SetParallelism((senders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			send(b)
		}
	})
}

type benchConv struct {
	id, senderUser, senderDevice string
	recipients                   [3]string
}

type benchFixture struct {
	s          switchboard.Store
	convs      []benchConv
	ciphertext []byte
	next       atomic.Int64 // client ids, unique per store
	stats      groupcommit.Stats
}

// newBenchFixture sets up a fresh store for every b.N the framework tries
// (the timer is reset after it).
func newBenchFixture(b *testing.B, s switchboard.Store) *benchFixture {
	b.Helper()
	f := &benchFixture{s: s, ciphertext: make([]byte, benchCiphertext)}
	rand.Read(f.ciphertext)
	for i := range benchConversations {
		sender := createUser(b, s, fmt.Sprintf("u-s%d", i), fmt.Sprintf("s%d", i)).ID
		peer := createUser(b, s, fmt.Sprintf("u-p%d", i), fmt.Sprintf("p%d", i)).ID
		c := benchConv{id: fmt.Sprintf("conv-%d", i), senderUser: sender, senderDevice: fmt.Sprintf("d-s%d-1", i)}
		c.recipients = [3]string{fmt.Sprintf("d-s%d-2", i), fmt.Sprintf("d-p%d-1", i), fmt.Sprintf("d-p%d-2", i)}
		createDevice(b, s, sender, c.senderDevice, at(1))
		createDevice(b, s, sender, c.recipients[0], at(1))
		createDevice(b, s, peer, c.recipients[1], at(1))
		createDevice(b, s, peer, c.recipients[2], at(1))
		createConversation(b, s, c.id, sender, sender, peer)
		f.convs = append(f.convs, c)
	}
	if st, ok := s.(interface{ AppendStats() groupcommit.Stats }); ok {
		f.stats = st.AppendStats()
	}
	return f
}

// send appends one new message, the conversations taking turns.
func (f *benchFixture) send(b *testing.B) {
	n := f.next.Add(1)
	c := &f.convs[n%int64(len(f.convs))]
	m := &switchboard.Message{
		ConversationID: c.id, SenderUserID: c.senderUser, SenderDeviceID: c.senderDevice,
		ClientID: fmt.Sprintf("bench-%d", n), Ciphertexts: make(map[string][]byte, len(c.recipients)),
	}
	for _, d := range c.recipients {
		m.Ciphertexts[d] = f.ciphertext
	}
	if _, dup, err := f.s.AppendMessage(ctx, m); err != nil || dup {
		b.Errorf("AppendMessage: dup %v, err %v", dup, err)
	}
}

func (f *benchFixture) report(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	if st, ok := f.s.(interface{ AppendStats() groupcommit.Stats }); ok {
		now := st.AppendStats()
		if batches := now.Batches - f.stats.Batches; batches > 0 {
			b.ReportMetric(float64(now.Jobs-f.stats.Jobs)/float64(batches), "msgs/batch")
		}
	}
}

// Shapes of BenchmarkAppendShared: one big group, where every append
// queues on the same conversation, and many small ones, as a node's
// traffic spreads over its groups.
var benchGroupShapes = []struct{ groups, devices int }{{1, 500}, {64, 20}}

// BenchmarkAppendShared measures AppendMessage of shared ciphertexts (one
// ciphertext for every recipient) in groups of users of 5 devices: one
// group of 500 devices, then 64 groups of 20. The groups take turns, and a
// group's devices take turns sending, each to the others, as chat.Send
// addresses a message: the recipient set changes with the sender, the
// group does not. Sub-benchmarks and metrics are those of
// BenchmarkAppendMessage.
func BenchmarkAppendShared(b *testing.B, open func(b *testing.B) switchboard.Store) {
	for _, shape := range benchGroupShapes {
		name := fmt.Sprintf("%dx%d", shape.groups, shape.devices)
		b.Run(name+"/sequential", func(b *testing.B) {
			f := newGroupFixture(b, open(b), shape.groups, shape.devices)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.send(b)
			}
			f.report(b)
		})
		for _, senders := range benchSenders {
			b.Run(fmt.Sprintf("%s/parallel-%d", name, senders), func(b *testing.B) {
				f := newGroupFixture(b, open(b), shape.groups, shape.devices)
				sendParallel(b, senders, f.send)
				f.report(b)
			})
		}
	}
}

type benchGroup struct {
	id      string
	users   []string // of each device
	devices []string
}

type groupFixture struct {
	benchFixture
	groups []benchGroup
	shared []byte
}

func newGroupFixture(b *testing.B, s switchboard.Store, groups, devices int) *groupFixture {
	b.Helper()
	f := &groupFixture{benchFixture: benchFixture{s: s}, shared: make([]byte, benchCiphertext)}
	rand.Read(f.shared)
	for g := range groups {
		bg := benchGroup{id: fmt.Sprintf("group-%d", g)}
		var members []string
		for u := range devices / 5 {
			user := createUser(b, s, fmt.Sprintf("u-%d-%03d", g, u), fmt.Sprintf("user%d-%03d", g, u)).ID
			members = append(members, user)
			for d := range 5 {
				bg.devices = append(bg.devices, createDevice(b, s, user, fmt.Sprintf("d-%d-%03d-%d", g, u, d), at(1)).ID)
				bg.users = append(bg.users, user)
			}
		}
		createConversation(b, s, bg.id, members[0], members...)
		f.groups = append(f.groups, bg)
	}
	if st, ok := s.(interface{ AppendStats() groupcommit.Stats }); ok {
		f.stats = st.AppendStats()
	}
	return f
}

// send appends one new shared message from the next group's next device
// to the group's others.
func (f *groupFixture) send(b *testing.B) {
	n := f.next.Add(1)
	g := &f.groups[n%int64(len(f.groups))]
	from := int(n / int64(len(f.groups)) % int64(len(g.devices)))
	m := &switchboard.Message{
		ConversationID: g.id, SenderUserID: g.users[from], SenderDeviceID: g.devices[from],
		ClientID: fmt.Sprintf("bench-%d", n), Shared: f.shared,
		Ciphertexts: make(map[string][]byte, len(g.devices)-1),
	}
	for i, d := range g.devices {
		if i != from {
			m.Ciphertexts[d] = nil
		}
	}
	if _, dup, err := f.s.AppendMessage(ctx, m); err != nil || dup {
		b.Errorf("AppendMessage: dup %v, err %v", dup, err)
	}
}
