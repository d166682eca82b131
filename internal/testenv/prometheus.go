package testenv

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const envSkipPrometheus = "SWITCHBOARD_SKIP_PROMETHEUS"

// lookPrometheusTool returns the path of one of the Prometheus tools
// (prometheus, promtool: Debian package prometheus; prometheus-alertmanager,
// amtool: prometheus-alertmanager). When it is missing t fails, or with
// SWITCHBOARD_SKIP_PROMETHEUS=1 is skipped.
func lookPrometheusTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if os.Getenv(envSkipPrometheus) == "1" {
		t.Skipf("%s=1: skipping a test that needs %s", envSkipPrometheus, name)
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testenv: this test needs %s (Debian package %s; scripts/test-deps.sh installs it): %v\n(set %s=1 to skip)",
			name, pkg, err, envSkipPrometheus)
	}
	return bin
}

// Promtool returns the path of promtool (Debian package prometheus).
func Promtool(t testing.TB) string { return lookPrometheusTool(t, "promtool", "prometheus") }

// Monitor is a private Prometheus or Alertmanager for one test: on a free
// loopback port, its data and the files it was given in the test's temp
// folder, stopped when the test ends.
type Monitor struct {
	Addr string // host:port
	Dir  string // its config and files; data under Dir/data
	cmd  *exec.Cmd
	done <-chan struct{}
}

// URL is the server's base URL.
func (m *Monitor) URL() string { return "http://" + m.Addr }

// Log is the end of what the server wrote to stderr.
func (m *Monitor) Log() string { return tail(filepath.Join(m.Dir, "stderr.log"), 4000) }

// Prometheus starts a private prometheus with config (prometheus.yml) and
// files (e.g. rule files the config names, relative to its folder).
func Prometheus(t testing.TB, config string, files map[string]string) *Monitor {
	t.Helper()
	bin := lookPrometheusTool(t, "prometheus", "prometheus")
	return startMonitor(t, bin, "prometheus.yml", config, files, func(dir, addr string) []string {
		return []string{"--config.file=" + filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
			"--web.enable-lifecycle"}
	})
}

// Alertmanager starts a private Alertmanager with config (alertmanager.yml)
// and no cluster listener.
func Alertmanager(t testing.TB, config string) *Monitor {
	t.Helper()
	bin := lookPrometheusTool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	return startMonitor(t, bin, "alertmanager.yml", config, nil, func(dir, addr string) []string {
		return []string{"--config.file=" + filepath.Join(dir, "alertmanager.yml"),
			"--storage.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr,
			"--cluster.listen-address="}
	})
}

func startMonitor(t testing.TB, bin, confName, config string, files map[string]string, args func(dir, addr string) []string) *Monitor {
	t.Helper()
	dir := t.TempDir()
	files = mapWith(files, confName, config)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var lastErr error
	for range 3 { // a free port can be taken before the server binds it
		m := &Monitor{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort()), Dir: dir}
		if lastErr = m.start(bin, args(dir, m.Addr)); lastErr == nil {
			t.Cleanup(m.stop)
			return m
		}
	}
	t.Fatalf("testenv: start %s: %v", filepath.Base(bin), lastErr)
	return nil
}

func mapWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (m *Monitor) start(bin string, args []string) error {
	stderr, err := os.Create(filepath.Join(m.Dir, "stderr.log"))
	if err != nil {
		return err
	}
	defer stderr.Close()
	m.cmd = exec.Command(bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = stderr, stderr
	m.done, err = startChild(m.cmd, syscall.SIGKILL)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second) // tens of seconds: the box may be loaded
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("%s exited:\n%s", filepath.Base(bin), m.Log())
		default:
		}
		if resp, err := http.Get(m.URL() + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.stop()
	return fmt.Errorf("%s on %s not ready in 30 s:\n%s", filepath.Base(bin), m.Addr, m.Log())
}

// stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (m *Monitor) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// Amtool returns the path of amtool (Debian package prometheus-alertmanager).
func Amtool(t testing.TB) string { return lookPrometheusTool(t, "amtool", "prometheus-alertmanager") }
