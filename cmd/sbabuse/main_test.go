package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestMain runs the prober when the run under test starts this binary as
// one (bench.sample), and the tests otherwise.
func TestMain(m *testing.M) {
	if conf, ok := os.LookupEnv(probeEnv); ok {
		os.Exit(probeMain(conf))
	}
	os.Exit(testenv.Main(m))
}

// TestTinyRunAgainstANode runs every replay at the tiny sizes against a real
// node, so that the benchmark keeps building and working. It asserts how
// the node answered (the limits of docs/security.md), never how fast.
func TestTinyRunAgainstANode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	bin := testenv.Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")
	// Cheap hashing: the test checks the replays' plumbing, not argon2's cost.
	node := testenv.StartNode(t, bin, "--data-dir", t.TempDir(), "--argon2-time", "1", "--argon2-memory", "64")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	if err := m.ParseFlags([]string{"--target", node.URL(), "--admin", node.AdminURL(), "--tiny", "--out", out}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Logf("table:\n%s", stdout.String())

	var sum struct {
		Phases []struct {
			Name     string         `json:"name"`
			Answers  map[string]int `json:"answers"`
			PeakRSS  int64          `json:"peak_rss_bytes"`
			HealthzN int            `json:"healthz_samples"`
		} `json:"phases"`
		PeakRSS int64 `json:"peak_rss_bytes"`
	}
	data, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int{}
	for _, p := range sum.Phases {
		got[p.Name] = p.Answers
	}
	for _, c := range []struct{ phase, answer string }{
		{"1a", "413 too_large"}, // 85 KiB is over --max-assisted-bytes
		{"1b", "201"},           // at the caps, with budget left
		{"2a", "401 bad_credentials"},
		{"2b", "401 bad_credentials"},
		{"3a", "socket closed 1008"}, // the ping flood is closed
		{"3b", "socket closed 1008"},
		{"5a", "201"},
		{"5b", "200"},
		{"6", "reader: 200"},
	} {
		t.Run("phase "+c.phase+" is answered "+c.answer, func(t *testing.T) {
			if got[c.phase][c.answer] == 0 {
				t.Errorf("phase %s answers %v, want some %q", c.phase, got[c.phase], c.answer)
			}
		})
	}
	t.Run("the stalled history requests were answered", func(t *testing.T) {
		// 200, or 503 when the readers hold the node's history slots: an
		// answer either way, never a cut connection.
		n := 0
		for k, v := range got["6"] {
			if k == "staller: 200" || k == "staller: 503" {
				n += v
			}
		}
		if n != TinySizes().HistoryStallers {
			t.Errorf("phase 6 answers %v, want a status for each of the %d stalled requests", got["6"], TinySizes().HistoryStallers)
		}
	})
	t.Run("the node's memory and health were sampled", func(t *testing.T) {
		if sum.PeakRSS <= 0 {
			t.Errorf("peak RSS %d, want the node's RSS from its /metrics", sum.PeakRSS)
		}
		if !strings.Contains(stdout.String(), "| 6 |") {
			t.Errorf("the table has no row for item 6:\n%s", stdout.String())
		}
	})
}

func TestFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"a loopback target with a pid is accepted", []string{"--target", "http://127.0.0.1:1", "--pid", "1"}, true},
		{"a target is required", []string{"--pid", "1"}, false},
		{"a source of RSS is required", []string{"--target", "http://127.0.0.1:1"}, false},
		{"item 4 is not a replay", []string{"--target", "http://127.0.0.1:1", "--pid", "1", "--items", "1,4"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
			if err := m.ParseFlags(c.args); (err == nil) != c.ok {
				t.Errorf("ParseFlags(%q) = %v, want ok %v", c.args, err, c.ok)
			}
		})
	}
	t.Run("a target off this host is refused", func(t *testing.T) {
		m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
			Config: Config{Target: "http://192.0.2.1:8080", PID: 1}}
		if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Run against 192.0.2.1: %v, want the loopback refusal", err)
		}
	})
}
