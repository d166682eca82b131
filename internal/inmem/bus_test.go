package inmem

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBus(t *testing.T) {
	t.Run("delivers matching topics in publish order", func(t *testing.T) {
		var b Bus
		defer b.Close()
		var mu sync.Mutex
		var got []string
		done := make(chan struct{})
		cancel, err := b.Subscribe("conv.", func(topic string, data []byte) {
			mu.Lock()
			got = append(got, topic+"="+string(data))
			n := len(got)
			mu.Unlock()
			if n == 100 {
				close(done)
			}
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		for i := range 100 {
			if err := b.Publish(context.Background(), "conv.a", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			_ = b.Publish(context.Background(), "user.a", []byte("ignored"))
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("timed out")
		}
		mu.Lock()
		defer mu.Unlock()
		for i, s := range got {
			if want := fmt.Sprintf("conv.a=%d", i); s != want {
				t.Fatalf("message %d = %q, want %q", i, s, want)
			}
		}
	})
	t.Run("cancelled subscriptions get nothing more", func(t *testing.T) {
		var b Bus
		defer b.Close()
		calls := make(chan string, 10)
		cancel, _ := b.Subscribe("", func(topic string, _ []byte) { calls <- topic }, nil)
		_ = b.Publish(context.Background(), "x", nil)
		<-calls
		cancel()
		_ = b.Publish(context.Background(), "y", nil)
		select {
		case topic := <-calls:
			t.Fatalf("got %q after cancel", topic)
		case <-time.After(50 * time.Millisecond):
		}
	})
	t.Run("a closed bus refuses publish and ping", func(t *testing.T) {
		var b Bus
		b.Close()
		if err := b.Publish(context.Background(), "x", nil); err != ErrClosed {
			t.Fatalf("Publish = %v, want ErrClosed", err)
		}
		if err := b.Ping(context.Background()); err != ErrClosed {
			t.Fatalf("Ping = %v, want ErrClosed", err)
		}
	})
}
