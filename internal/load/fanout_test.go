package load_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/load"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestFanoutAgainstRealNode is the CI's small version of the group-chat
// fan-out runs of docs/benchmarks.md: 4 groups of 5 users × 3 devices
// (60 sockets over two worker processes), 5 senders a group at 4 messages a
// second each, once with one shared ciphertext per send and once with one
// ciphertext per recipient device, and once more shared with the node on a
// private Redis bus (--redis) instead of its in-process one. It asserts that
// every stored message reached every other device of its group once and
// nothing failed, not timings.
func TestFanoutAgainstRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	dir := t.TempDir()
	bins := buildCommands(t, dir, "switchboard", "sbload")
	const groups, users, devices = 4, 5, 3

	for i, shape := range []string{"shared", "pairwise", "shared-redis"} {
		t.Run(shape, func(t *testing.T) {
			flags := []string{"--send-rate-conversation", "0"}
			if shape == "shared-redis" {
				flags = append(flags, "--redis", testenv.Redis(t).URL())
			}
			url := startNode(t, bins["switchboard"], filepath.Join(dir, fmt.Sprintf("data-%d", i)), flags...)
			summary := filepath.Join(dir, fmt.Sprintf("summary-%d.json", i))
			args := []string{"run", "--target", url, "--scenario", "fanout", "--procs", "2",
				"--groups", fmt.Sprint(groups), "--group-size", fmt.Sprint(users), "--devices-per-user", fmt.Sprint(devices),
				"--senders", "5", "--rate", "4", "--ramp", "2s", "--hold", "3s", "--ack-interval", "500ms", "--out", summary}
			if shape == "pairwise" {
				args = append(args, "--pairwise")
			}
			out, err := runBounded(exec.Command(bins["sbload"], args...), 3*time.Minute)
			if err != nil {
				t.Fatalf("sbload run: %v\n%s", err, out)
			}
			b, err := os.ReadFile(summary)
			if err != nil {
				t.Fatalf("no summary: %v\n%s", err, out)
			}
			var s load.Summary
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			const conns = groups * users * devices
			if s.Conns.Connected != conns || s.Conns.AtEnd != conns {
				t.Errorf("conns %+v, want all %d connected through the end", s.Conns, conns)
			}
			if s.ErrorsTotal != 0 {
				t.Errorf("errors %v (samples %v), want none", s.Errors, s.ErrorSample)
			}
			f := s.Fanout
			if f == nil {
				t.Fatalf("no fanout summary\n%s", out)
			}
			if f.SentOK == 0 || f.SentOK != f.Sent || f.Stored != f.SentOK {
				t.Errorf("sent %d, sent ok %d, stored %d; want every send stored and at least one", f.Sent, f.SentOK, f.Stored)
			}
			if want := f.Stored * (users*devices - 1); f.Expected != want || f.Delivered != want {
				t.Errorf("delivered %d of %d expected, want %d of %d", f.Delivered, f.Expected, want, want)
			}
			if !f.ZeroLoss || f.Lost != 0 || f.Duplicates != 0 || f.OwnEcho != 0 || f.Foreign != 0 || f.SendErrors != 0 {
				t.Errorf("fanout %+v, want zero loss and nothing extra", *f)
			}
			if f.DeliveryLatency.Count != f.Delivered || f.CommitLatency.Count != f.SentOK {
				t.Errorf("latency samples: %d deliveries, %d commits; want one per delivery and per send",
					f.DeliveryLatency.Count, f.CommitLatency.Count)
			}
			if pairwise := strings.HasPrefix(f.Payload, "pairwise"); pairwise != (shape == "pairwise") {
				t.Errorf("summary says payload %q for the %s shape", f.Payload, shape)
			}
			if shape == "shared-redis" {
				// Every stored message went through Redis, not around it.
				if got := metricValue(t, url, "switchboard_bus_published_total"); got < float64(f.Stored) {
					t.Errorf("switchboard_bus_published_total %v, want at least the %d messages stored", got, f.Stored)
				}
				if got := metricValue(t, url, "switchboard_bus_dropped_total"); got != 0 {
					t.Errorf("switchboard_bus_dropped_total %v, want 0", got)
				}
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
