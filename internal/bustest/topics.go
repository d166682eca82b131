package bustest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// The exact-topic cases (SubscribeTopics) use room. topics: a sharded
// backend (Redis Cluster) shards that prefix, so they cover sharded
// pub/sub there; user. topics are never sharded.

func subscribeTopics(t *testing.T, b switchboard.Bus, in *inbox) switchboard.Topics {
	t.Helper()
	set, err := b.SubscribeTopics(in.fn, in.onResumed)
	if err != nil {
		t.Fatalf("SubscribeTopics: %v", err)
	}
	t.Cleanup(set.Close)
	return set
}

func add(t *testing.T, set switchboard.Topics, topics ...string) {
	t.Helper()
	if err := set.Add(ctx, topics...); err != nil {
		t.Fatalf("Add(%q): %v", topics, err)
	}
}

func topicsOnly(t *testing.T, be Backend) {
	pub, sub := be.Open(t), be.Open(t)
	in, other := newInbox(), newInbox()
	set := subscribeTopics(t, sub, in)
	add(t, set, "room.1", "room.2", "user.u1")
	add(t, set, "room.2") // twice is harmless
	add(t, subscribeTopics(t, pub, other), "room.9")
	// Live once Add returned: published at once, from another bus, they arrive.
	var want []string
	for i := range 30 {
		topic := []string{"room.1", "room.2", "room.3", "user.u1", "user.u2"}[i%5]
		data := fmt.Sprint(i)
		publish(t, pub, topic, []byte(data))
		if topic != "room.3" && topic != "user.u2" {
			want = append(want, topic+" "+data)
		}
	}
	got := in.wantN(t, len(want))
	for _, topic := range []string{"room.1 ", "room.2 ", "user.u1 "} {
		if g, w := filter(got, topic), filter(want, topic); !slices.Equal(g, w) {
			t.Fatalf("topic %s: received %q, want %q in publish order", topic, g, w)
		}
	}
	if got := in.quiet(); len(got) != len(want) {
		t.Fatalf("received %d messages, want %d: none of the topics not added (%q)", len(got), len(want), got)
	}
	if got := other.quiet(); len(got) != 0 {
		t.Errorf("a subscriber of room.9 received %q, want nothing", got)
	}

	// Remove takes effect at the bus's next round trip: what is published
	// meanwhile may still arrive, what is published after it does not.
	set.Remove("room.1", "user.u1")
	set.Remove("room.7") // never added: harmless
	deadline := time.Now().Add(wait)
	for k := 0; ; k++ {
		gone := fmt.Sprint("gone ", k)
		publish(t, pub, "room.1", []byte(gone))
		publish(t, pub, "user.u1", []byte(gone))
		publish(t, pub, "room.2", []byte(gone))
		got := in.until(t, "room.2 "+gone, func(got []string, _ int) bool { return slices.Contains(got, "room.2 "+gone) })
		if got = in.quiet(); !slices.Contains(got, "room.1 "+gone) && !slices.Contains(got, "user.u1 "+gone) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still receiving room.1 and user.u1 %s after Remove", wait)
		}
	}
	add(t, set, "room.1")
	publish(t, pub, "room.1", []byte("back"))
	in.until(t, "room.1 back after it was added again", func(got []string, _ int) bool { return slices.Contains(got, "room.1 back") })
}

// manyTopics adds thousands of topics from many callers at once, as the
// sockets of a node reconnecting together do, and checks every one is
// live once its Add returned.
func manyTopics(t *testing.T, be Backend) {
	pub, sub := be.Open(t), be.Open(t)
	in := newInbox()
	set := subscribeTopics(t, sub, in)
	const callers, each = 200, 15
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			topics := make([]string, 0, each)
			for k := range each {
				topics = append(topics, fmt.Sprint("room.", (c*each+k)%(callers*each*2/3)))
			}
			if err := set.Add(ctx, topics...); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Add: %v", err)
	}
	n := callers * each * 2 / 3
	for i := range n {
		publish(t, pub, fmt.Sprint("room.", i), []byte("x"))
	}
	got := in.wantN(t, n)
	slices.Sort(got)
	if got = slices.Compact(got); len(got) != n {
		t.Fatalf("received %d distinct topics, want %d", len(got), n)
	}
}

func topicsRestart(t *testing.T, be Backend) {
	if be.Restart == nil {
		t.Skip(be.NoRestart)
	}
	pub, sub := be.Open(t), be.Open(t)
	in := newInbox()
	set := subscribeTopics(t, sub, in)
	add(t, set, "room.1", "room.2", "user.u1")
	publish(t, pub, "room.1", []byte("before"))
	in.wantN(t, 1)
	be.Restart(t)
	in.until(t, "resumed after the restart", func(_ []string, resumed int) bool { return resumed > 0 })
	for _, topic := range []string{"room.1", "room.2", "user.u1"} {
		publish(t, pub, topic, []byte("after"))
	}
	in.until(t, "every topic's publish after the restart", func(got []string, _ int) bool {
		return slices.Contains(got, "room.1 after") && slices.Contains(got, "room.2 after") && slices.Contains(got, "user.u1 after")
	})
}

func topicsClosed(t *testing.T, be Backend) {
	pub, sub := be.Open(t), be.Open(t)
	in := newInbox()
	set := subscribeTopics(t, sub, in)
	add(t, set, "room.1")
	publish(t, pub, "room.1", []byte("open"))
	in.wantN(t, 1)
	set.Close()
	set.Close() // twice is harmless
	publish(t, pub, "room.1", []byte("closed"))
	if got := in.quiet(); len(got) != 1 {
		t.Errorf("received %q, want nothing after Close", got)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.SubscribeTopics(in.fn, nil); err == nil {
		t.Error("SubscribeTopics after the bus's Close succeeded")
	}
}
