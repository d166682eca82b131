package calls

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// KV is where call records live: small values under string keys, each with
// a time to live, changed only by compare-and-swap so that two nodes acting
// on one call at once cannot both win. internal/redisbus's KV keeps them in
// Redis for nodes that share one; MemoryKV keeps them for a node alone.
type KV interface {
	// Get returns the value at key, or nil when there is none (or it expired).
	Get(ctx context.Context, key string) ([]byte, error)
	// CompareAndSwap sets key to new, living ttl, if its value is old (nil:
	// if there is none), and reports whether it did. A nil new deletes key.
	CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error)
}

// MemoryKV is the KV of a node alone. The zero value is ready to use.
type MemoryKV struct {
	// Now is the clock for expiry [time.Now].
	Now func() time.Time

	mu     sync.Mutex
	m      map[string]memEntry
	writes int
}

type memEntry struct {
	v       []byte
	expires time.Time
}

var _ KV = (*MemoryKV)(nil)

func (k *MemoryKV) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Get implements KV.
func (k *MemoryKV) Get(_ context.Context, key string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[key]
	if !ok || !k.now().Before(e.expires) {
		return nil, nil
	}
	return bytes.Clone(e.v), nil
}

// CompareAndSwap implements KV.
func (k *MemoryKV) CompareAndSwap(_ context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	var cur []byte
	if e, ok := k.m[key]; ok && now.Before(e.expires) {
		cur = e.v
	}
	if (cur == nil) != (old == nil) || !bytes.Equal(cur, old) {
		return false, nil
	}
	if k.m == nil {
		k.m = make(map[string]memEntry)
	}
	if new == nil {
		delete(k.m, key)
		return true, nil
	}
	k.m[key] = memEntry{v: bytes.Clone(new), expires: now.Add(ttl)}
	// Expired entries are only found when read: sweep now and then so that
	// calls nobody ended (a node gone mid-call) do not pile up.
	if k.writes++; k.writes%1024 == 0 {
		for key, e := range k.m {
			if !now.Before(e.expires) {
				delete(k.m, key)
			}
		}
	}
	return true, nil
}

// Len is how many unexpired records the KV holds (tests: nothing leaks).
func (k *MemoryKV) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, now := 0, k.now()
	for _, e := range k.m {
		if now.Before(e.expires) {
			n++
		}
	}
	return n
}
