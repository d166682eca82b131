package server

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestAppendTSIsTheLayout(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.UnixMilli(1), time.Date(2000, 2, 29, 23, 59, 59, 999e6, time.UTC),
		time.Date(2026, 12, 31, 0, 0, 0, 0, time.FixedZone("x", 5*3600)), time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), {},
		time.Date(2100, 3, 1, 12, 0, 0, 123456789, time.Local),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		times = append(times, time.UnixMilli(r.Int64N(253402300800000)).Add(time.Duration(r.IntN(1e6))))
	}
	for _, tm := range times {
		want := tm.UTC().Format(tsLayout)
		if got := string(appendTS(nil, tm)); got != want {
			t.Fatalf("appendTS(%v) = %q, want %q", tm, got, want)
		}
	}
}

func BenchmarkAppendTS(b *testing.B) {
	buf := make([]byte, 0, 64)
	now := time.Now()
	for b.Loop() {
		buf = appendTS(buf[:0], now)
	}
}
