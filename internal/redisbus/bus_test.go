package redisbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard/internal/redisbus"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var ctx = context.Background()

func open(t testing.TB, url string) *redisbus.Bus {
	t.Helper()
	b, err := redisbus.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// inbox collects what a subscription receives.
type inbox struct {
	mu   sync.Mutex
	got  []string // topic + " " + data
	data [][]byte
}

func (in *inbox) fn(topic string, data []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got = append(in.got, topic+" "+string(data))
	in.data = append(in.data, data)
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.got)
}

// wait waits until the inbox holds n messages and returns them.
func (in *inbox) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for in.len() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.got) < n {
		t.Fatalf("received %d messages, want %d: %q", len(in.got), n, in.got)
	}
	return append([]string(nil), in.got...)
}

// eventually waits (generously: the machine is shared) until ok holds.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBus(t *testing.T) {
	t.Run("a publish on one node reaches the subscribers of its prefix on every node, in order", func(t *testing.T) {
		srv := testenv.Redis(t)
		a, b := open(t, srv.URL()), open(t, srv.URL())
		var convA, convB, users inbox
		for _, s := range []struct {
			bus    *redisbus.Bus
			prefix string
			in     *inbox
		}{{a, "conv.", &convA}, {b, "conv.", &convB}, {b, "user.", &users}} {
			if _, err := s.bus.Subscribe(s.prefix, s.in.fn, nil); err != nil {
				t.Fatalf("Subscribe(%s): %v", s.prefix, err)
			}
		}
		var want []string
		for i := range 200 {
			topic := fmt.Sprintf("conv.%d", i%3)
			if err := a.Publish(ctx, topic, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%s %d", topic, i))
		}
		if err := b.Publish(ctx, "user.u1", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		for name, in := range map[string]*inbox{"node a": &convA, "node b": &convB} {
			got := in.wait(t, len(want))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s received %q,\nwant %q", name, got, want)
			}
		}
		if got := users.wait(t, 1); len(got) != 1 || got[0] != "user.u1 hello" {
			t.Errorf("user. subscriber received %q, want only user.u1 hello", got)
		}
	})

	t.Run("binary data arrives byte for byte, and a burst travels in few round trips", func(t *testing.T) {
		srv := testenv.Redis(t)
		a, b := open(t, srv.URL()), open(t, srv.URL())
		var in inbox
		if _, err := b.Subscribe("conv.", in.fn, nil); err != nil {
			t.Fatal(err)
		}
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		const n = 10000
		for range n {
			if err := a.Publish(ctx, "conv.x", all); err != nil {
				t.Fatal(err)
			}
		}
		in.wait(t, n)
		for i, d := range in.data {
			if !bytes.Equal(d, all) {
				t.Fatalf("message %d: %d bytes, not the 256 published", i, len(d))
			}
		}
		st := a.Stats()
		if st.Published != n || st.Dropped != 0 {
			t.Errorf("stats %+v, want %d published and none dropped", st, n)
		}
		// One Publish at a time from one goroutine: without pipelining
		// this is one round trip each.
		if st.Pipelines*10 > n {
			t.Errorf("%d publishes took %d pipelines, want them coalesced (at most %d)", n, st.Pipelines, n/10)
		}
	})

	t.Run("cancel stops one subscriber; the others still receive", func(t *testing.T) {
		srv := testenv.Redis(t)
		a := open(t, srv.URL())
		var kept, gone inbox
		if _, err := a.Subscribe("conv.", kept.fn, nil); err != nil {
			t.Fatal(err)
		}
		cancel, err := a.Subscribe("conv.", gone.fn, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Publish(ctx, "conv.1", []byte("before"))
		gone.wait(t, 1)
		cancel()
		a.Publish(ctx, "conv.1", []byte("after"))
		kept.wait(t, 2)
		time.Sleep(50 * time.Millisecond)
		if n := gone.len(); n != 1 {
			t.Errorf("cancelled subscriber received %d messages, want 1", n)
		}
	})

	t.Run("what was published before Close is still sent; after Close, ErrClosed", func(t *testing.T) {
		srv := testenv.Redis(t)
		a, b := open(t, srv.URL()), open(t, srv.URL())
		var in inbox
		if _, err := b.Subscribe("conv.", in.fn, nil); err != nil {
			t.Fatal(err)
		}
		for i := range 500 {
			a.Publish(ctx, "conv.1", []byte(fmt.Sprint(i)))
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		in.wait(t, 500)
		if err := a.Publish(ctx, "conv.1", nil); !errors.Is(err, redisbus.ErrClosed) {
			t.Errorf("Publish after Close: %v, want ErrClosed", err)
		}
		if _, err := a.Subscribe("conv.", in.fn, nil); !errors.Is(err, redisbus.ErrClosed) {
			t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
		}
		if err := a.Ping(ctx); !errors.Is(err, redisbus.ErrClosed) {
			t.Errorf("Ping after Close: %v, want ErrClosed", err)
		}
	})

	t.Run("publishes Redis could not take are sent, in order, once it is back", func(t *testing.T) {
		srv := testenv.Redis(t)
		a := open(t, srv.URL())
		srv.Kill()
		const n = 100
		for i := range n {
			if err := a.Publish(ctx, "conv.1", []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "the publishes kept while Redis is down", func() bool { return a.Stats().Waiting == n })
		srv.Start(t)
		// A subscriber on a raw connection sees them go out again.
		sub, err := rueidis.NewClient(rueidis.MustParseURL(srv.URL()))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var in inbox
		go sub.Receive(ctx, sub.B().Subscribe().Channel("conv.1").Build(), func(m rueidis.PubSubMessage) {
			in.fn(m.Channel, []byte(m.Message))
		})
		eventually(t, "the kept publishes sent", func() bool { st := a.Stats(); return st.Waiting == 0 && st.Published == n })
		if st := a.Stats(); st.Dropped != 0 || st.Retried < n {
			t.Errorf("stats %+v: want all %d sent again, none dropped", st, n)
		}
		// The raw subscriber may have subscribed after some went out, and
		// may still be receiving: what it has is a run of 0..n-1, in order.
		in.mu.Lock()
		got := slices.Clone(in.data)
		in.mu.Unlock()
		for i := 1; i < len(got); i++ {
			var prev, cur int
			fmt.Sscan(string(got[i-1]), &prev)
			fmt.Sscan(string(got[i]), &cur)
			if cur != prev+1 {
				t.Fatalf("received %q, want a run of 0..%d in order", got, n-1)
			}
		}
	})

	t.Run("Open fails clearly when nothing listens", func(t *testing.T) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := redisbus.Open(c, fmt.Sprintf("redis://127.0.0.1:%d/0", testenv.FreePort()))
		if err == nil {
			t.Fatal("Open of a port nothing listens on succeeded")
		}
	})
}

// BenchmarkPublish measures messages/s from one publishing goroutine to a
// subscriber on another connection, through the Bus (pipelined) and, for
// comparison, one PUBLISH round trip at a time:
//
//	go test -run '^$' -bench Publish -benchtime 200000x ./internal/redisbus
func BenchmarkPublish(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 300)
	run := func(b *testing.B, publisher func(url string) (publish func(data []byte), stats func() string)) {
		srv := testenv.Redis(b)
		sub := open(b, srv.URL())
		var got atomic.Int64
		all := make(chan struct{})
		n := int64(b.N)
		if _, err := sub.Subscribe("conv.", func(string, []byte) {
			if got.Add(1) == n {
				close(all)
			}
		}, nil); err != nil {
			b.Fatal(err)
		}
		publish, stats := publisher(srv.URL())
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			publish(payload)
		}
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("received %d of %d publishes in a minute; publisher %s", got.Load(), n, stats())
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	}
	b.Run("bus", func(b *testing.B) {
		run(b, func(url string) (func([]byte), func() string) {
			bus := open(b, url)
			return func(data []byte) { bus.Publish(ctx, "conv.bench", data) },
				func() string { return fmt.Sprintf("%+v", bus.Stats()) }
		})
	})
	b.Run("one-round-trip-each", func(b *testing.B) {
		run(b, func(url string) (func([]byte), func() string) {
			client, err := rueidis.NewClient(rueidis.MustParseURL(url))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(client.Close)
			return func(data []byte) {
				if err := client.Do(ctx, client.B().Publish().Channel("conv.bench").Message(rueidis.BinaryString(data)).Build()).Error(); err != nil {
					b.Fatal(err)
				}
			}, func() string { return "one PUBLISH at a time" }
		})
	})
}
