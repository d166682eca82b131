package server

import (
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// TestFanOutMetricsAllocateNothing: what the hub adds per message for the
// metrics (a clock read, a histogram observation, a counter add) must not
// allocate: it runs once per message per node on the hot path.
func TestFanOutMetricsAllocateNothing(t *testing.T) {
	m := newMetrics()
	msg := &sb.Message{Committed: time.Now()}
	if n := testing.AllocsPerRun(1000, func() { m.fannedOut(msg, 3) }); n != 0 {
		t.Fatalf("fannedOut allocates %.1f times per message", n)
	}
	if n := testing.AllocsPerRun(1000, func() { m.error(sb.ERATELIMIT); m.reqWS.Inc() }); n != 0 {
		t.Fatalf("counting an error frame allocates %.1f times", n)
	}
}

// BenchmarkFanOutMetrics is the per-message cost of the fan-out metrics.
func BenchmarkFanOutMetrics(b *testing.B) {
	m := newMetrics()
	msg := &sb.Message{Committed: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		m.fannedOut(msg, 3)
	}
}
