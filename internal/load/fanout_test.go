package load_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
			url, metrics := startNode(t, bins["switchboard"], filepath.Join(dir, fmt.Sprintf("data-%d", i)), flags...)
			summary := filepath.Join(dir, fmt.Sprintf("summary-%d.json", i))
			args := []string{"run", "--target", url, "--metrics", metrics, "--scenario", "fanout", "--procs", "2",
				"--groups", fmt.Sprint(groups), "--group-size", fmt.Sprint(users), "--devices-per-user", fmt.Sprint(devices),
				"--senders", "5", "--rate", "4", "--ramp", "2s", "--hold", "3s", "--ack-interval", "500ms"}
			if shape == "pairwise" {
				args = append(args, "--pairwise")
			}
			s, out := runSbload(t, bins["sbload"], summary, args...)
			const conns = groups * users * devices
			if s.Conns.Connected != conns || s.Conns.AtEnd != conns {
				t.Errorf("conns %+v, want all %d connected through the end", s.Conns, conns)
			}
			if s.ErrorsTotal != 0 {
				t.Errorf("errors %v (samples %v), want none", s.Errors, s.ErrorSample)
			}
			f := wantFanoutComplete(t, s, out, users*devices)
			if f.DeliveryLatency.Count != f.Delivered || f.CommitLatency.Count != f.SentOK {
				t.Errorf("latency samples: %d deliveries, %d commits; want one per delivery and per send",
					f.DeliveryLatency.Count, f.CommitLatency.Count)
			}
			if pairwise := strings.HasPrefix(f.Payload, "pairwise"); pairwise != (shape == "pairwise") {
				t.Errorf("summary says payload %q for the %s shape", f.Payload, shape)
			}
			if shape == "shared-redis" {
				// Every stored message went through Redis, not around it.
				if got := metricValue(t, metrics, "switchboard_bus_published_total"); got < float64(f.Stored) {
					t.Errorf("switchboard_bus_published_total %v, want at least the %d messages stored", got, f.Stored)
				}
				if got := metricValue(t, metrics, "switchboard_bus_dropped_total"); got != 0 {
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
