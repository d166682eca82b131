// Package kvtest is the conformance suite of calls.KV, run by each
// implementation (calls.MemoryKV, the Redis bus), as bustest is the bus's.
package kvtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/calls"
)

// Run runs the suite; each case gets a fresh key space from newKV.
func Run(t *testing.T, newKV func(t *testing.T) calls.KV) {
	ctx := context.Background()
	t.Run("a key never set reads as nil", func(t *testing.T) {
		kv := newKV(t)
		if v, err := kv.Get(ctx, "nothing"); err != nil || v != nil {
			t.Fatalf("Get = %q, %v; want nil", v, err)
		}
	})
	t.Run("compare-and-swap sets, replaces and deletes only from the value it names", func(t *testing.T) {
		kv := newKV(t)
		steps := []struct {
			old, new string // "" is nil
			ok       bool
			after    string
		}{
			{"", "a", true, "a"},
			{"", "b", false, "a"}, // it exists
			{"x", "b", false, "a"},
			{"a", "b", true, "b"},
			{"a", "", false, "b"},
			{"b", "", true, ""},
			{"b", "c", false, ""},
		}
		for i, s := range steps {
			ok, err := kv.CompareAndSwap(ctx, "k", bytesOf(s.old), bytesOf(s.new), time.Minute)
			if err != nil || ok != s.ok {
				t.Fatalf("step %d (%q -> %q) = %v, %v; want %v", i, s.old, s.new, ok, err, s.ok)
			}
			if v, err := kv.Get(ctx, "k"); err != nil || string(v) != s.after || (s.after == "") != (v == nil) {
				t.Fatalf("after step %d: %q, %v; want %q", i, v, err, s.after)
			}
		}
	})
	t.Run("a value expires after its time to live", func(t *testing.T) {
		kv := newKV(t)
		if ok, err := kv.CompareAndSwap(ctx, "short", nil, []byte("v"), 100*time.Millisecond); !ok || err != nil {
			t.Fatalf("set: %v, %v", ok, err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			v, err := kv.Get(ctx, "short")
			if err != nil {
				t.Fatal(err)
			}
			if v == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the value outlived its ttl by 20 s")
			}
		}
		if ok, err := kv.CompareAndSwap(ctx, "short", nil, []byte("again"), time.Minute); !ok || err != nil {
			t.Fatalf("an expired key is not free: %v, %v", ok, err)
		}
	})
	t.Run("of concurrent swaps from one value exactly one wins", func(t *testing.T) {
		kv := newKV(t)
		if _, err := kv.CompareAndSwap(ctx, "race", nil, []byte("0"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				ok, err := kv.CompareAndSwap(ctx, "race", []byte("0"), fmt.Appendf(nil, "w%d", i), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d swaps won, want 1", wins.Load())
		}
	})
}

func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}
