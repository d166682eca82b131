package load_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/load"
)

// TestHoldAgainstRealNode is the CI's small version of the memory benchmark
// (scripts/bench-memory.sh): a real node process, a real sbload with two
// worker processes, 3,000 authenticated sockets opened over 10 s and held
// for 20 s, so that a socket the gateway drops while idle (a stray
// deadline, a liveness sweep gone wrong) shows. It asserts counts, not
// timings.
func TestHoldAgainstRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	dir := t.TempDir()
	bins := buildCommands(t, dir, "switchboard", "sbload")

	const conns = 3000
	url, metrics := startNode(t, bins["switchboard"], filepath.Join(dir, "data"))

	s, out := runSbload(t, bins["sbload"], filepath.Join(dir, "summary.json"), "run", "--target", url, "--metrics", metrics, "--scenario", "hold",
		"--conns", fmt.Sprint(conns), "--procs", "2", "--ramp", "10s", "--hold", "20s")
	if s.Conns.Wanted != conns || s.Conns.Connected != conns || s.Conns.AtEnd != conns || s.Conns.Dropped != 0 {
		t.Errorf("conns %+v, want %d wanted, connected and still connected at the end", s.Conns, conns)
	}
	if s.ErrorsTotal != 0 || len(s.Errors) != 0 {
		t.Errorf("errors %v (samples %v), want none", s.Errors, s.ErrorSample)
	}
	if s.Server.RSSAt0 <= 0 || s.Server.RSSAtN <= 0 {
		t.Errorf("server RSS at 0 = %d, at N = %d; want both positive (read from /metrics)", s.Server.RSSAt0, s.Server.RSSAtN)
	}
	if s.ConnectLatency.Count != conns {
		t.Errorf("connect latency has %d samples, want %d", s.ConnectLatency.Count, conns)
	}
	if len(s.LoadGen.Workers) != 2 {
		t.Errorf("%d workers reported, want 2", len(s.LoadGen.Workers))
	}
	if bytes.Contains(out, []byte("DATA RACE")) {
		t.Error("the race detector found a race in sbload")
	}
	if t.Failed() {
		t.Logf("sbload output:\n%s", out)
	}
}

// buildCommands builds cmd/<name> for each name into dir and returns the
// binaries by name; sbload gets -race when the test runs under it.
func buildCommands(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	bins := map[string]string{}
	for _, name := range names {
		bins[name] = filepath.Join(dir, name)
		args := []string{"build", "-o", bins[name]}
		if name == "sbload" && raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/switchboard-chat/switchboard/cmd/"+name)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	return bins
}

// startNode runs the node on a free port (its admin listener on another)
// with a fresh data folder and cheap password hashing (plus extra flags), and
// stops it when the test ends. It returns the API's URL and the /metrics URL.
func startNode(t *testing.T, bin, dataDir string, extra ...string) (url, metrics string) {
	t.Helper()
	args := []string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dataDir, "--argon2-time", "1", "--argon2-memory", "64"}
	return startServer(t, bin, append(args, extra...)...)
}

// startServer runs bin with args, waits for the url=http://... it logs on
// stderr, and stops it (SIGTERM, then kill) when the test ends. If the test
// failed, the server's warnings and errors are logged with it. It returns
// that URL and the server's /metrics URL: on the admin=http://... it logs
// on the same line (a node), else beside url (sbbare).
func startServer(t *testing.T, bin string, args ...string) (url, metrics string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var notable []string // the server's WARN and ERROR lines; read after exited
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() && len(notable) > 0 {
			t.Logf("%s logged:\n%s", filepath.Base(bin), strings.Join(notable, "\n"))
		}
	})
	urls := make(chan [2]string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		re, admin := regexp.MustCompile(`url=(http://\S+)`), regexp.MustCompile(`admin=(http://\S+)`)
		for sc.Scan() {
			line := sc.Text()
			if len(notable) < 200 && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
				notable = append(notable, line)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				metrics := m[1] + "/metrics"
				if a := admin.FindStringSubmatch(line); a != nil {
					metrics = a[1] + "/metrics"
				}
				select {
				case urls <- [2]string{m[1], metrics}:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case u := <-urls:
		return u[0], u[1]
	case <-exited:
		t.Fatalf("%s exited before logging its URL", filepath.Base(bin))
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not log its URL within 30s", filepath.Base(bin))
	}
	return "", ""
}

// runSbload runs sbload with args, which write the summary to the file
// summary, for at most 3 minutes, and returns that summary and what sbload
// printed.
func runSbload(t *testing.T, bin, summary string, args ...string) (load.Summary, []byte) {
	t.Helper()
	out, err := runBounded(exec.Command(bin, append(args, "--out", summary)...), 3*time.Minute)
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
	return s, out
}

// wantFanoutComplete fails t unless every send was stored and reached every
// other device of its group (groupDevices in all) once, and nothing else came.
func wantFanoutComplete(t *testing.T, s load.Summary, out []byte, groupDevices int) *load.FanoutSummary {
	t.Helper()
	f := s.Fanout
	if f == nil {
		t.Fatalf("no fanout summary\n%s", out)
	}
	if f.SentOK == 0 || f.SentOK != f.Sent || f.Stored != f.SentOK {
		t.Errorf("sent %d, sent ok %d, stored %d; want every send stored and at least one", f.Sent, f.SentOK, f.Stored)
	}
	if want := f.Stored * int64(groupDevices-1); f.Expected != want || f.Delivered != want {
		t.Errorf("delivered %d of %d expected, want %d of %d", f.Delivered, f.Expected, want, want)
	}
	if !f.ZeroLoss || f.Lost != 0 || f.Duplicates != 0 || f.OwnEcho != 0 || f.Foreign != 0 || f.SendErrors != 0 {
		t.Errorf("fanout %+v, want zero loss and nothing extra", *f)
	}
	return f
}

// runBounded runs cmd and kills it (and so its workers) after limit.
func runBounded(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	timer := time.AfterFunc(limit, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	return cmd.CombinedOutput()
}

// metricValue reads one unlabelled sample from a node's /metrics URL.
func metricValue(t *testing.T, metrics, name string) float64 {
	t.Helper()
	resp, err := http.Get(metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	vals, err := load.ParseMetrics(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := vals[name]
	if !ok {
		t.Fatalf("no %s in the node's metrics", name)
	}
	return v
}
