package load_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
)

// TestBroadcastAgainstBareAndNode is the CI's small version of
// scripts/bench-broadcast.sh: the broadcast scenario (200 sockets, 3
// rounds) against the bare broadcast server and against a real node. It
// asserts that every device got every round once and nothing failed, not
// timings.
func TestBroadcastAgainstBareAndNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three binaries")
	}
	dir := t.TempDir()
	bins := buildCommands(t, dir, "switchboard", "sbbare", "sbload")
	const conns, rounds = 200, 3

	tests := []struct {
		name  string
		start func(t *testing.T) (url, metrics string)
	}{
		{"the bare server delivers every round to every socket once", func(t *testing.T) (string, string) {
			return startServer(t, bins["sbbare"], "--addr", "127.0.0.1:0")
		}},
		{"a real node delivers every round to every socket once", func(t *testing.T) (string, string) {
			return startNode(t, bins["switchboard"], filepath.Join(dir, "data"), "--max-members", "100000")
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, metrics := tt.start(t)
			summary := filepath.Join(dir, fmt.Sprintf("summary-%d.json", i))
			s, out := runSbload(t, bins["sbload"], summary, "run", "--target", url, "--metrics", metrics, "--scenario", "broadcast",
				"--conns", strconv.Itoa(conns), "--ramp", "2s", "--hold", "60s", "--rounds", strconv.Itoa(rounds), "--round-timeout", "20s")
			if s.Conns.Connected != conns || s.Conns.AtEnd != conns {
				t.Errorf("conns %+v, want all %d connected through the end", s.Conns, conns)
			}
			if s.ErrorsTotal != 0 {
				t.Errorf("errors %v (samples %v), want none", s.Errors, s.ErrorSample)
			}
			bc := s.Broadcast
			if bc == nil {
				t.Fatalf("no broadcast summary\n%s", out)
			}
			if bc.Sent != rounds || bc.SentOK != rounds || bc.Complete != rounds {
				t.Errorf("sent %d, sent ok %d, rounds complete %d; want %d each", bc.Sent, bc.SentOK, bc.Complete, rounds)
			}
			if want := int64(rounds * (conns - 1)); bc.Expected != want || bc.Delivered != want {
				t.Errorf("delivered %d of %d expected, want %d of %d", bc.Delivered, bc.Expected, want, want)
			}
			if !bc.ZeroLoss || bc.Duplicates != 0 || bc.OwnEcho != 0 || bc.Unexpected != 0 || bc.SendErrors != 0 || bc.Timeouts != 0 {
				t.Errorf("broadcast %+v, want zero loss and nothing extra", *bc)
			}
			if bc.DeliveriesPerSecond <= 0 || bc.DeliveryLatency.Count != int64(rounds*(conns-1)) {
				t.Errorf("deliveries/s %.0f, latency samples %d; want a rate and one sample per delivery", bc.DeliveriesPerSecond, bc.DeliveryLatency.Count)
			}
			if s.Server.RSSAt0 <= 0 || s.Server.AtEnd.CPUSeconds <= 0 {
				t.Errorf("server RSS at 0 = %d, CPU at end = %v; want both read from /metrics", s.Server.RSSAt0, s.Server.AtEnd.CPUSeconds)
			}
			if bytes.Contains(out, []byte("DATA RACE")) {
				t.Error("the race detector found a race in sbload")
			}
			if t.Failed() {
				t.Logf("sbload output:\n%s", out)
			}
		})
	}
}
