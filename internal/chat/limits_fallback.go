package chat

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// FallbackLimiter counts in a Limiter the cluster shares (Redis) and, while
// that one fails, on this node (a MemoryLimiter): a limit then holds per
// node, K times looser behind K nodes, but neither fails open nor refuses
// everyone. A failure is logged once when it starts and once when the
// shared limiter answers again; Fallbacks counts the decisions made
// locally. After a failure the shared limiter is tried again at most once
// a second, so a hung Redis costs one timeout a second, not one a request.
type FallbackLimiter struct {
	shared Limiter
	local  *MemoryLimiter
	log    *slog.Logger

	fallbacks atomic.Int64
	downSince atomic.Int64 // unix ns of the last failure; 0 while the shared one answers

	mu        sync.Mutex
	localHeld map[[3]string]int // holds taken locally: their releases go there too
}

var _ Limiter = (*FallbackLimiter)(nil)

// nodeLimits count on the node even when a shared limiter is set.
// bytes.device is charged on every frame a socket reads (acks and pings
// too): a round trip to Redis per frame would cost more than the limit
// protects, and a device's frames come over its socket, which NGINX keeps
// on one node (only its HTTP bodies spread over the nodes).
var nodeLimits = map[string]bool{LimitDeviceBytes: true}

// fallbackRetry is how long after a failure the shared limiter is left alone.
const fallbackRetry = time.Second

// NewFallbackLimiter returns a limiter over shared that falls back to a
// local one (log may be nil: slog.Default).
func NewFallbackLimiter(shared Limiter, log *slog.Logger) *FallbackLimiter {
	if log == nil {
		log = slog.Default()
	}
	return &FallbackLimiter{shared: shared, local: NewMemoryLimiter(nil), log: log, localHeld: make(map[[3]string]int)}
}

// Fallbacks is how many decisions were made on this node because the shared
// limiter failed (switchboard_limiter_fallbacks_total).
func (l *FallbackLimiter) Fallbacks() int64 { return l.fallbacks.Load() }

// Degraded reports whether the last decision was made locally.
func (l *FallbackLimiter) Degraded() bool { return l.downSince.Load() != 0 }

// useShared reports whether to try the shared limiter now.
func (l *FallbackLimiter) useShared() bool {
	since := l.downSince.Load()
	return since == 0 || time.Since(time.Unix(0, since)) >= fallbackRetry
}

func (l *FallbackLimiter) failed(op string, err error) {
	l.fallbacks.Add(1)
	if l.downSince.Swap(time.Now().UnixNano()) == 0 {
		l.log.Warn("shared limiter failed; counting limits on this node only until it answers", "op", op, "err", err)
	}
}

func (l *FallbackLimiter) answered() {
	if l.downSince.Load() != 0 && l.downSince.Swap(0) != 0 {
		l.log.Info("shared limiter answers again; limits count across the cluster")
	}
}

// Take implements Limiter.
func (l *FallbackLimiter) Take(ctx context.Context, name, key string, b Bucket, n float64) (time.Duration, error) {
	if nodeLimits[name] {
		return l.local.Take(ctx, name, key, b, n)
	}
	if l.useShared() {
		wait, err := l.shared.Take(ctx, name, key, b, n)
		if err == nil {
			l.answered()
			return wait, nil
		}
		l.failed("take "+name, err)
	} else {
		l.fallbacks.Add(1)
	}
	return l.local.Take(ctx, name, key, b, n)
}

// Hold implements Limiter.
func (l *FallbackLimiter) Hold(ctx context.Context, name, key, holder string, max int) (bool, error) {
	if l.useShared() {
		ok, err := l.shared.Hold(ctx, name, key, holder, max)
		if err == nil {
			l.answered()
			return ok, nil
		}
		l.failed("hold "+name, err)
	} else {
		l.fallbacks.Add(1)
	}
	ok, err := l.local.Hold(ctx, name, key, holder, max)
	if ok {
		l.mu.Lock()
		l.localHeld[[3]string{name, key, holder}]++
		l.mu.Unlock()
	}
	return ok, err
}

// Release implements Limiter: a hold taken locally is released locally.
func (l *FallbackLimiter) Release(ctx context.Context, name, key, holder string) error {
	k := [3]string{name, key, holder}
	l.mu.Lock()
	local := l.localHeld[k] > 0
	if local {
		if l.localHeld[k]--; l.localHeld[k] == 0 {
			delete(l.localHeld, k)
		}
	}
	l.mu.Unlock()
	if local {
		return l.local.Release(ctx, name, key, holder)
	}
	return l.shared.Release(ctx, name, key, holder)
}
