package chat

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		text string
	}{
		{"20/1h", Rate{20, time.Hour}, "20/1h"},
		{"60/1m", Rate{60, time.Minute}, "60/1m"},
		{"200/2s", Rate{200, 2 * time.Second}, "200/2s"},
		{"32MiB/1m", Rate{32 << 20, time.Minute}, "32MiB/1m"},
		{"5KiB/10s", Rate{5 << 10, 10 * time.Second}, "5KiB/10s"},
		{"1500/90s", Rate{1500, 90 * time.Second}, "1500/1m30s"},
		{"0", Unlimited, "off"},
		{"off", Unlimited, "off"},
		{"0/1s", Unlimited, "off"},
	} {
		t.Run(tc.in+" reads as "+tc.text, func(t *testing.T) {
			got, err := ParseRate(tc.in)
			if err != nil || got != tc.want || got.String() != tc.text {
				t.Fatalf("ParseRate(%q) = %v (%q), %v; want %v (%q)", tc.in, got, got, err, tc.want, tc.text)
			}
			if back, err := ParseRate(got.String()); err != nil || back != got {
				t.Fatalf("String does not round-trip: %q -> %v, %v", got.String(), back, err)
			}
		})
	}
	for _, bad := range []string{"", "20", "20/", "/1m", "x/1m", "20/0s", "20/-1m", "-5/1m", "9999999999GiB/1s"} {
		if r, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", bad, r)
		}
	}
}

func TestMemoryLimiterTake(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewMemoryLimiter(func() time.Time { return now })
	b := Bucket{Rate: 10, Burst: 3}
	ctx := context.Background()
	take := func(name, key string, n float64) time.Duration {
		w, err := l.Take(ctx, name, key, b, n)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := range 3 {
		if w := take("a", "d", 1); w != 0 {
			t.Fatalf("take %d within burst waited %v", i, w)
		}
	}
	if w := take("a", "d", 1); w != 100*time.Millisecond {
		t.Fatalf("take past burst: wait %v, want 100ms", w)
	}
	if w := take("a", "other", 1); w != 0 {
		t.Fatal("another key shares the bucket")
	}
	if w := take("b", "d", 1); w != 0 {
		t.Fatal("another limit shares the bucket")
	}
	now = now.Add(100 * time.Millisecond)
	if w := take("a", "d", 1); w != 0 {
		t.Fatalf("a token did not come back after 1/rate: wait %v", w)
	}
	if w := take("a", "d", 2); w != 200*time.Millisecond {
		t.Fatalf("taking 2 from an empty bucket: wait %v, want 200ms", w)
	}
	now = now.Add(time.Hour)
	if w := take("a", "d", 3); w != 0 {
		t.Fatalf("after an hour the bucket is not full: wait %v", w)
	}
}

func TestMemoryLimiterBoundsItsKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewMemoryLimiter(func() time.Time { return now })
	l.maxKeys = 64
	b := Bucket{Rate: 1.0 / 3600, Burst: 1} // a bucket stays in use for an hour
	for i := range limiterShards * l.maxKeys * 20 {
		l.Take(context.Background(), "flood", fmt.Sprint(i), b, 1)
	}
	total := 0
	for i := range l.tables["flood"].shards {
		total += len(l.tables["flood"].shards[i].buckets)
	}
	if total > limiterShards*l.maxKeys {
		t.Fatalf("%d buckets kept, want at most %d", total, limiterShards*l.maxKeys)
	}
}

func TestMemoryLimiterHold(t *testing.T) {
	l := NewMemoryLimiter(nil)
	ctx := context.Background()
	hold := func(holder string) bool {
		ok, err := l.Hold(ctx, "conns", "u", holder, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !hold("d1") || !hold("d2") {
		t.Fatal("two holders under a max of 2 were refused")
	}
	if hold("d3") {
		t.Fatal("a third holder got in")
	}
	if !hold("d1") {
		t.Fatal("a holder already in the set was refused (a device reconnecting before its old socket closed)")
	}
	l.Release(ctx, "conns", "u", "d1") // d1's older socket closes: d1 still holds
	if hold("d3") {
		t.Fatal("d3 got in while d1 still held once")
	}
	l.Release(ctx, "conns", "u", "d1")
	if !hold("d3") {
		t.Fatal("d3 refused after d1 released its last hold")
	}
	l.Release(ctx, "conns", "u", "d2")
	l.Release(ctx, "conns", "u", "d3")
	for i := range l.tables["conns"].shards {
		if len(l.tables["conns"].shards[i].holds) != 0 {
			t.Fatal("an empty holder set was kept")
		}
	}
}
