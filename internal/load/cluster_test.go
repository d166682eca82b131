package load_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/load"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFanoutThroughNGINX is the CI's small version of scripts/bench-cluster.sh:
// two node processes on one private PostgreSQL and one private Redis, behind
// a private NGINX running deploy/nginx/switchboard.conf, and sbload's
// fan-out through NGINX's URL only. 20 groups of 10 users × 2 devices (400
// sockets): NGINX's hash on ?device= spreads each group over both nodes, so
// most deliveries cross from one node to the other through Redis. It asserts
// counts, not timings: every socket connected, no error, every stored
// message delivered once to every other device of its group, and both nodes
// holding sockets (read from each node's own /metrics), so that NGINX
// sending everything to one node fails it.
//
// Three senders a group, so that a group's messages are committed and
// published by both nodes: two nodes' publishes of one conversation can
// reach the others out of seq order (18 of 34,200 deliveries were lost that
// way in one of three runs before the hub put them back in order,
// internal/server/sequence.go).
func TestFanoutThroughNGINX(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries, PostgreSQL, Redis and NGINX")
	}
	dir := t.TempDir()
	bins := buildCommands(t, dir, "switchboard", "sbload")
	db, redis := testenv.Postgres(t), testenv.Redis(t)
	const groups, users, devices = 20, 10, 2
	const conns = groups * users * devices

	var nodes, metrics []string
	for i := range 2 {
		// One after the other: the first applies the migrations.
		u, m := startNode(t, bins["switchboard"], filepath.Join(dir, fmt.Sprintf("data-%d", i)),
			"--db", db, "--redis", redis.URL(), "--send-rate-conversation", "0")
		nodes, metrics = append(nodes, u), append(metrics, m)
	}
	ng := testenv.NGINX(t, nodes)

	// sbload reads the nodes' RSS and CPU; the sockets each node holds are
	// read here, during the run, from each node's own gauge.
	peak := make([]float64, len(nodes))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for i, u := range metrics {
				if v, err := gauge(u, "switchboard_sockets_open"); err == nil {
					peak[i] = max(peak[i], v)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	summary := filepath.Join(dir, "summary.json")
	args := []string{"run", "--target", ng.URL(), "--metrics", strings.Join(metrics, ","),
		"--scenario", "fanout", "--procs", "2",
		"--groups", fmt.Sprint(groups), "--group-size", fmt.Sprint(users), "--devices-per-user", fmt.Sprint(devices),
		"--senders", "3", "--rate", "2", "--ramp", "5s", "--hold", "15s", "--ack-interval", "500ms"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.ErrorLog())
		}
	})
	stopSampler := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopSampler) // also when sbload fails the test
	s, out := runSbload(t, bins["sbload"], summary, args...)
	stopSampler()

	if s.Conns.Connected != conns || s.Conns.AtEnd != conns || s.Conns.Failed != 0 || s.Conns.Dropped != 0 {
		t.Errorf("conns %+v, want all %d connected through the end", s.Conns, conns)
	}
	if s.ErrorsTotal != 0 {
		t.Errorf("errors %v (samples %v), want none", s.Errors, s.ErrorSample)
	}
	// Every socket was on one node or the other, and each node had a fair
	// part of them: the hash of 400 device ids over two nodes.
	if peak[0]+peak[1] != conns || min(peak[0], peak[1]) < conns/4 {
		t.Errorf("nodes held %v sockets at their peaks, want %d in all and at least %d on each", peak, conns, conns/4)
	}
	if len(s.Params.Metrics) != 2 || s.Server.RSSAt0 <= 0 || s.Server.RSSAtN <= 0 {
		t.Errorf("metrics URLs %v, RSS at 0 %d and at N %d: want both nodes sampled", s.Params.Metrics, s.Server.RSSAt0, s.Server.RSSAtN)
	}
	wantFanoutComplete(t, s, out, users*devices)
	// Both nodes took sends and published them on Redis; none was dropped.
	for i, u := range metrics {
		if got := metricValue(t, u, "switchboard_bus_published_total"); got == 0 {
			t.Errorf("node %d published nothing on Redis", i)
		}
		if got := metricValue(t, u, "switchboard_bus_dropped_total"); got != 0 {
			t.Errorf("node %d: switchboard_bus_dropped_total %v, want 0", i, got)
		}
	}
	if bytes.Contains(out, []byte("DATA RACE")) {
		t.Error("the race detector found a race in sbload")
	}
	if t.Failed() {
		t.Logf("sbload output:\n%s", out)
	}
}

// gauge reads one unlabelled sample from a node's /metrics URL, or fails
// quietly (the node may be busy for a moment; the poll goes on).
func gauge(metrics, name string) (float64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	vals, err := load.ParseMetrics(resp.Body)
	if err != nil {
		return 0, err
	}
	v, ok := vals[name]
	if !ok {
		return 0, fmt.Errorf("no %s", name)
	}
	return v, nil
}
