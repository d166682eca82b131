package chat

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryLimiter is the in-process Limiter of a node alone: token buckets and
// holder sets in sharded maps. Buckets idle long enough to be full again are
// dropped, so the maps hold only recently active keys; past maxKeys per shard
// a random key is evicted, so a flood of distinct keys costs bounded memory.
type MemoryLimiter struct {
	now     func() time.Time
	seed    maphash.Seed
	maxKeys int // buckets per shard and limit

	mu     sync.RWMutex
	tables map[string]*limitTable // by limit name
}

var _ Limiter = (*MemoryLimiter)(nil)

const (
	limiterShards  = 16
	defaultMaxKeys = 1 << 16 // per shard and limit: a million keys per limit
)

type limitTable struct {
	shards [limiterShards]limitShard
}

type limitShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	holds   map[string]map[string]int // key -> holder -> holds
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewMemoryLimiter returns an empty in-process limiter on the clock now (time.Now if nil).
func NewMemoryLimiter(now func() time.Time) *MemoryLimiter {
	if now == nil {
		now = time.Now
	}
	return &MemoryLimiter{now: now, seed: maphash.MakeSeed(), maxKeys: defaultMaxKeys, tables: make(map[string]*limitTable)}
}

func (l *MemoryLimiter) shard(name, key string) *limitShard {
	l.mu.RLock()
	t := l.tables[name]
	l.mu.RUnlock()
	if t == nil {
		l.mu.Lock()
		if t = l.tables[name]; t == nil {
			t = &limitTable{}
			l.tables[name] = t
		}
		l.mu.Unlock()
	}
	return &t.shards[maphash.String(l.seed, key)%limiterShards]
}

// Take implements Limiter.
func (l *MemoryLimiter) Take(_ context.Context, name, key string, b Bucket, n float64) (time.Duration, error) {
	now := l.now()
	sh := l.shard(name, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	full := time.Duration(b.Burst / b.Rate * float64(time.Second))
	if sh.buckets == nil {
		sh.buckets = make(map[string]*bucket)
	}
	bk, ok := sh.buckets[key]
	if !ok {
		if now.Sub(sh.swept) > full || len(sh.buckets) >= l.maxKeys {
			sh.sweep(now, full, l.maxKeys)
		}
		bk = &bucket{tokens: b.Burst, last: now}
		sh.buckets[key] = bk
	}
	if now.After(bk.last) {
		bk.tokens = min(b.Burst, bk.tokens+now.Sub(bk.last).Seconds()*b.Rate)
		bk.last = now
	}
	if bk.tokens < n {
		return time.Duration((n - bk.tokens) / b.Rate * float64(time.Second)), nil
	}
	bk.tokens -= n
	return 0, nil
}

// sweep drops the buckets idle for full (they are full again); if the shard
// is still near maxKeys, it evicts keys at random down to 7/8 of it, so a
// flood of keys costs amortized constant time per key.
func (sh *limitShard) sweep(now time.Time, full time.Duration, maxKeys int) {
	for k, bk := range sh.buckets {
		if now.Sub(bk.last) > full {
			delete(sh.buckets, k)
		}
	}
	sh.swept = now
	for k := range sh.buckets {
		if len(sh.buckets) <= maxKeys*7/8 {
			break
		}
		delete(sh.buckets, k)
	}
}

// Hold implements Limiter.
func (l *MemoryLimiter) Hold(_ context.Context, name, key, holder string, max int) (bool, error) {
	sh := l.shard(name, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.holds == nil {
		sh.holds = make(map[string]map[string]int)
	}
	set := sh.holds[key]
	if _, in := set[holder]; !in && len(set) >= max {
		return false, nil
	}
	if set == nil {
		set = make(map[string]int, 1)
		sh.holds[key] = set
	}
	set[holder]++
	return true, nil
}

// Release implements Limiter.
func (l *MemoryLimiter) Release(_ context.Context, name, key, holder string) error {
	sh := l.shard(name, key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	set := sh.holds[key]
	if set[holder] > 1 {
		set[holder]--
		return nil
	}
	delete(set, holder)
	if len(set) == 0 {
		delete(sh.holds, key)
	}
	return nil
}
