// Package bustest is the conformance suite of switchboard.Bus: one set of
// tests that every bus runs (the in-process one and the Redis one), so that
// what a node relies on (order per topic, prefixes, resubscribing after an
// outage, Close) cannot differ between a node alone and a cluster.
//
// A bus's test calls Run with a function that starts a fresh backend:
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, func(t *testing.T) bustest.Backend { ... })
//	}
package bustest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// Backend is one bus implementation under test, fresh for each case.
type Backend struct {
	// Open returns a bus; the buses one Backend opens share their
	// messages, as the nodes on one Redis do (an in-process bus may return
	// the same bus each time). The backend closes them when t ends;
	// closing one twice must be harmless.
	Open func(t *testing.T) switchboard.Bus
	// Restart, unless nil, makes the backend lose every connection and
	// come back empty (Redis killed and started again on its port). A bus
	// that has nothing to restart leaves it nil: the cases that need it
	// are skipped for it, saying why.
	Restart func(t *testing.T)
	// NoRestart says why Restart is nil.
	NoRestart string
}

// busTest is one contract check on a fresh backend.
type busTest struct {
	name string
	fn   func(t *testing.T, b Backend)
}

// Run runs the suite; newBackend is called once per case.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	for _, tt := range []busTest{
		{"messages on one topic arrive in publish order, byte for byte", inOrder},
		{"a publish reaches every subscriber of its prefix on every bus, and only those", prefixes},
		{"a cancelled subscriber gets nothing more; the others still do", cancel},
		{"after a restart the subscriptions are made again, resumed is called, and publishes arrive again", restart},
		{"Close stops delivery, refuses what comes after it, and is idempotent", closing},
		{"Ping succeeds on an open bus", ping},
		{"a topic subscriber gets the topics of its set in publish order, only those, and nothing of a removed one", topicsOnly},
		{"thousands of topics added at once by many callers are all live when their Adds return", manyTopics},
		{"after a restart every topic of a set is subscribed again and resumed is called", topicsRestart},
		{"a closed topic set gets nothing more, and a closed bus makes no new set", topicsClosed},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend(t)) })
	}
}

// ctx is the context of every call: the suite checks contracts, not cancellation.
var ctx = context.Background()

// wait bounds every "eventually": generous, since the machine is shared.
const wait = 20 * time.Second

// inbox collects what a subscription receives.
type inbox struct {
	mu      sync.Mutex
	got     []string // topic + " " + data
	resumed int
	changed chan struct{}
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{}, 1)} }

func (in *inbox) fn(topic string, data []byte) {
	in.mu.Lock()
	in.got = append(in.got, topic+" "+string(data))
	in.mu.Unlock()
	in.poke()
}

func (in *inbox) onResumed() {
	in.mu.Lock()
	in.resumed++
	in.mu.Unlock()
	in.poke()
}

func (in *inbox) poke() {
	select {
	case in.changed <- struct{}{}:
	default:
	}
}

func (in *inbox) snapshot() ([]string, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got), in.resumed
}

// until waits until ok holds for what the inbox has, and returns it.
func (in *inbox) until(t *testing.T, what string, ok func(got []string, resumed int) bool) []string {
	t.Helper()
	deadline := time.After(wait)
	for {
		got, resumed := in.snapshot()
		if ok(got, resumed) {
			return got
		}
		select {
		case <-in.changed:
		case <-deadline:
			t.Fatalf("waited %s for %s; received %d messages %q, resumed %d times", wait, what, len(got), got, resumed)
		}
	}
}

// wantN waits for n messages and returns them.
func (in *inbox) wantN(t *testing.T, n int) []string {
	t.Helper()
	return in.until(t, fmt.Sprint(n, " messages"), func(got []string, _ int) bool { return len(got) >= n })
}

// quiet gives what is in flight a moment to arrive, for the checks that
// something does not: a short pause, then what the inbox has.
func (in *inbox) quiet() []string {
	time.Sleep(100 * time.Millisecond)
	got, _ := in.snapshot()
	return got
}

func subscribe(t *testing.T, b switchboard.Bus, prefix string, in *inbox) func() {
	t.Helper()
	cancel, err := b.Subscribe(prefix, in.fn, in.onResumed)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", prefix, err)
	}
	return cancel
}

func publish(t *testing.T, b switchboard.Bus, topic string, data []byte) {
	t.Helper()
	if err := b.Publish(ctx, topic, data); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

func inOrder(t *testing.T, be Backend) {
	pub, sub := be.Open(t), be.Open(t)
	in := newInbox()
	subscribe(t, sub, "conv.", in)
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	var want []string
	for i := range 500 {
		topic := fmt.Sprint("conv.", i%3)
		data := append([]byte(fmt.Sprint(i, " ")), binary...)
		publish(t, pub, topic, data)
		want = append(want, topic+" "+string(data))
	}
	got := in.wantN(t, len(want))
	// Per topic, publish order; across topics, any interleaving.
	for topic := range 3 {
		prefix := fmt.Sprint("conv.", topic, " ")
		if g, w := filter(got, prefix), filter(want, prefix); !slices.Equal(g, w) {
			t.Fatalf("topic conv.%d: received %d messages, not the %d published in order", topic, len(g), len(w))
		}
	}
	for _, g := range got {
		if !bytes.HasSuffix([]byte(g), binary) {
			t.Fatalf("a message lost bytes: %q", g)
		}
	}
}

func filter(msgs []string, prefix string) []string {
	var out []string
	for _, m := range msgs {
		if len(m) >= len(prefix) && m[:len(prefix)] == prefix {
			out = append(out, m)
		}
	}
	return out
}

func prefixes(t *testing.T, be Backend) {
	a, b := be.Open(t), be.Open(t)
	convA, convB, users, other := newInbox(), newInbox(), newInbox(), newInbox()
	subscribe(t, a, "conv.", convA)
	subscribe(t, b, "conv.", convB)
	subscribe(t, b, "user.", users)
	subscribe(t, a, "control.", other)
	publish(t, a, "conv.1", []byte("from a"))
	publish(t, b, "user.u1", []byte("from b"))
	publish(t, b, "conv.1", []byte("from b"))
	for name, in := range map[string]*inbox{"a's conv. subscriber": convA, "b's conv. subscriber": convB} {
		in.wantN(t, 2)
		// Two buses are two connections: no order between them.
		if got := slices.Sorted(slices.Values(in.quiet())); !slices.Equal(got, []string{"conv.1 from a", "conv.1 from b"}) {
			t.Errorf("%s received %q, want conv.1 from a and from b", name, got)
		}
	}
	users.wantN(t, 1)
	if got := users.quiet(); !slices.Equal(got, []string{"user.u1 from b"}) {
		t.Errorf("the user. subscriber received %q, want only user.u1", got)
	}
	if got := other.quiet(); len(got) != 0 {
		t.Errorf("the control. subscriber received %q, want nothing", got)
	}
}

func cancel(t *testing.T, be Backend) {
	pub, sub := be.Open(t), be.Open(t)
	kept, gone := newInbox(), newInbox()
	subscribe(t, sub, "conv.", kept)
	stop := subscribe(t, sub, "conv.", gone)
	publish(t, pub, "conv.1", []byte("before"))
	gone.wantN(t, 1)
	stop()
	stop() // twice is harmless
	publish(t, pub, "conv.1", []byte("after"))
	kept.wantN(t, 2)
	if got := gone.quiet(); len(got) != 1 {
		t.Errorf("the cancelled subscriber received %q, want only the message before cancel", got)
	}
}

func restart(t *testing.T, be Backend) {
	if be.Restart == nil {
		t.Skip(be.NoRestart)
	}
	pub, sub := be.Open(t), be.Open(t)
	in := newInbox()
	subscribe(t, sub, "conv.", in)
	publish(t, pub, "conv.1", []byte("before"))
	in.wantN(t, 1)
	if _, resumed := in.snapshot(); resumed != 0 {
		t.Fatalf("resumed called %d times before any restart", resumed)
	}
	be.Restart(t)
	// resumed says the subscription is live again: what is published
	// from then on arrives, and what was published before is for the
	// subscriber to read from the store.
	in.until(t, "resumed after the restart", func(_ []string, resumed int) bool { return resumed > 0 })
	publish(t, pub, "conv.1", []byte("after"))
	got := in.until(t, "the publish after the restart", func(got []string, _ int) bool {
		return slices.Contains(got, "conv.1 after")
	})
	if got[0] != "conv.1 before" {
		t.Errorf("received %q, want what was published before the restart first", got)
	}
	if err := pub.Ping(ctx); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
}

func closing(t *testing.T, be Backend) {
	b := be.Open(t)
	in := newInbox()
	subscribe(t, b, "conv.", in)
	publish(t, b, "conv.1", []byte("open"))
	in.wantN(t, 1)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("a second Close: %v, want nil", err)
	}
	if err := b.Publish(ctx, "conv.1", []byte("closed")); err == nil {
		t.Error("Publish after Close succeeded")
	}
	if _, err := b.Subscribe("conv.", in.fn, nil); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
	if err := b.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
	// Another bus of the backend (another node) still publishes; the
	// closed one delivers none of it. (An in-process backend has one bus:
	// this publish is refused too.)
	_ = be.Open(t).Publish(ctx, "conv.1", []byte("from another node"))
	if got := in.quiet(); len(got) != 1 {
		t.Errorf("received %q, want nothing after Close", got)
	}
}

func ping(t *testing.T, be Backend) {
	if err := be.Open(t).Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
