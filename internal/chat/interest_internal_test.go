package chat

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/inmem"
)

// TestInterest: a conversation is subscribed while a socket holds it and
// for the linger after the last one let go, then unsubscribed (and the
// node told to forget it); a Hold of a live conversation waits for nothing.
func TestInterest(t *testing.T) {
	bus := &inmem.Bus{}
	t.Cleanup(func() { bus.Close() })
	var mu sync.Mutex
	var got, forgot []string
	topics, err := bus.SubscribeTopics(func(topic string, _ []byte) {
		mu.Lock()
		got = append(got, topic)
		mu.Unlock()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const linger = 100 * time.Millisecond
	in := newInterest(topics, linger, func(c string) {
		mu.Lock()
		forgot = append(forgot, c)
		mu.Unlock()
	})
	t.Cleanup(in.close)
	ctx := context.Background()

	fresh, wait := in.Hold([]string{"a", "b"})
	if !fresh {
		t.Fatal("a first Hold is not fresh")
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
	if fresh, _ := in.Hold([]string{"a"}); fresh {
		t.Error("a Hold of a live conversation is fresh")
	}
	if n := in.Len(); n != 2 {
		t.Errorf("Len %d, want 2", n)
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			done := ok()
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 20 s for %s; received %q, forgot %q", what, got, forgot)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	bus.Publish(ctx, TopicPrefix+"a", nil)
	until("a's message", func() bool { return slices.Contains(got, TopicPrefix+"a") })

	// b's only holder lets go: b lingers, then goes; a has one holder left.
	in.Release([]string{"a", "b"})
	until("b forgotten after the linger", func() bool { return slices.Equal(forgot, []string{"b"}) })
	if n := in.Len(); n != 1 {
		t.Errorf("Len %d after b went, want 1", n)
	}
	bus.Publish(ctx, TopicPrefix+"b", nil)
	bus.Publish(ctx, TopicPrefix+"a", nil)
	until("a's second message", func() bool { return len(got) == 2 })
	if slices.Contains(got, TopicPrefix+"b") {
		t.Errorf("received %q: b's message after b was unsubscribed", got)
	}

	// Let go and held again within the linger: nothing to wait for.
	in.Release([]string{"a"})
	if fresh, _ := in.Hold([]string{"a"}); fresh {
		t.Error("a conversation held again within its linger is fresh")
	}
	time.Sleep(3 * linger)
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(forgot, "a") {
		t.Error("a held conversation was forgotten")
	}
}
