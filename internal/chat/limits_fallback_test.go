package chat_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// fakeLimiter is a shared limiter made of function fields.
type fakeLimiter struct {
	take    func(name, key string) (time.Duration, error)
	hold    func(name, key, holder string) (bool, error)
	release func(name, key, holder string) error
}

func (f *fakeLimiter) Take(_ context.Context, name, key string, _ chat.Bucket, _ float64) (time.Duration, error) {
	return f.take(name, key)
}
func (f *fakeLimiter) Hold(_ context.Context, name, key, holder string, _ int) (bool, error) {
	return f.hold(name, key, holder)
}
func (f *fakeLimiter) Release(_ context.Context, name, key, holder string) error {
	return f.release(name, key, holder)
}

func TestFallbackLimiter(t *testing.T) {
	ctx := context.Background()
	down := errors.New("redis: connection refused")
	b := chat.Bucket{Rate: 1.0 / 60, Burst: 3}

	t.Run("while the shared limiter fails, limits count on the node: neither open nor closed, with a log line and a count", func(t *testing.T) {
		var log bytes.Buffer
		shared := &fakeLimiter{take: func(string, string) (time.Duration, error) { return 0, down }}
		l := chat.NewFallbackLimiter(shared, slog.New(slog.NewTextHandler(&log, nil)))
		for i := range 3 {
			if wait, err := l.Take(ctx, chat.LimitLoginAccount, "alice", b, 1); wait != 0 || err != nil {
				t.Fatalf("take %d within the burst: %v, %v", i, wait, err)
			}
		}
		if wait, err := l.Take(ctx, chat.LimitLoginAccount, "alice", b, 1); wait == 0 || err != nil {
			t.Fatalf("take past the burst counted on the node: %v, %v; want a wait", wait, err)
		}
		if got := l.Fallbacks(); got != 4 {
			t.Errorf("Fallbacks = %d, want 4", got)
		}
		if !l.Degraded() {
			t.Error("not Degraded while the shared limiter fails")
		}
		if n := strings.Count(log.String(), "shared limiter failed"); n != 1 {
			t.Errorf("logged the failure %d times, want once:\n%s", n, log.String())
		}
	})

	t.Run("the shared limiter's answer wins while it answers, and again once it is back", func(t *testing.T) {
		var log bytes.Buffer
		fail := true
		shared := &fakeLimiter{take: func(string, string) (time.Duration, error) {
			if fail {
				return 0, down
			}
			return time.Minute, nil
		}}
		l := chat.NewFallbackLimiter(shared, slog.New(slog.NewTextHandler(&log, nil)))
		l.Take(ctx, chat.LimitLoginIP, "10.0.0.1", b, 1)
		fail = false
		deadline := time.Now().Add(30 * time.Second)
		for {
			// Retried at most once a second after a failure.
			if wait, _ := l.Take(ctx, chat.LimitLoginIP, "10.0.0.1", b, 1); wait == time.Minute {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the shared limiter was never asked again")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if l.Degraded() || !strings.Contains(log.String(), "answers again") {
			t.Errorf("back: Degraded %v, log:\n%s", l.Degraded(), log.String())
		}
	})

	t.Run("a hold taken on the node while the shared limiter failed is released on the node", func(t *testing.T) {
		var sharedReleases int
		fail := true
		shared := &fakeLimiter{
			hold: func(string, string, string) (bool, error) {
				if fail {
					return false, down
				}
				return true, nil
			},
			release: func(string, string, string) error { sharedReleases++; return nil },
		}
		l := chat.NewFallbackLimiter(shared, nil)
		if ok, err := l.Hold(ctx, chat.LimitConnsUser, "alice", "phone", 1); !ok || err != nil {
			t.Fatalf("local hold: %v, %v", ok, err)
		}
		if ok, _ := l.Hold(ctx, chat.LimitConnsUser, "alice", "laptop", 1); ok {
			t.Fatal("the local count let a second holder past a max of 1")
		}
		fail = false
		if err := l.Release(ctx, chat.LimitConnsUser, "alice", "phone"); err != nil || sharedReleases != 0 {
			t.Fatalf("release of a local hold: %v, %d shared releases", err, sharedReleases)
		}
	})
}

func TestFallbackLimiterKeepsTheByteBudgetOnTheNode(t *testing.T) {
	asked := 0
	shared := &fakeLimiter{take: func(string, string) (time.Duration, error) { asked++; return 0, nil }}
	l := chat.NewFallbackLimiter(shared, nil)
	l.Take(context.Background(), chat.LimitDeviceBytes, "d1", chat.Bucket{Rate: 1, Burst: 100}, 10)
	l.Take(context.Background(), chat.LimitSendDevice, "d1", chat.Bucket{Rate: 1, Burst: 100}, 1)
	if asked != 1 || l.Fallbacks() != 0 {
		t.Fatalf("shared limiter asked %d times (want 1: the send, not the bytes), %d fallbacks", asked, l.Fallbacks())
	}
}
