package testenv

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package path -> binary, once per test binary
	// buildDir holds the binaries; it outlives any one test, so it is a
	// process temp folder removed by nothing but the OS's temp cleanup.
	buildDir string
)

// Build compiles the command at pkg (e.g.
// "github.com/switchboard-chat/switchboard/cmd/switchboard") once per test
// binary and returns the path of the binary: real processes, so that a test
// can kill -9 them.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "switchboard-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	bin := filepath.Join(buildDir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("testenv: go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// Node is a switchboard node process on a fixed loopback port, so that it
// can be killed, stopped and started again where NGINX expects it.
type Node struct {
	Addr      string // 127.0.0.1:port
	AdminAddr string // 127.0.0.1:port of its admin listener (/metrics)
	bin       string
	args      []string
	log       string // the node's stderr, appended across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit <-chan struct{}
}

// URL is the node's base URL.
func (n *Node) URL() string { return "http://" + n.Addr }

// LogPath is the file the node's stderr (its log) goes to.
func (n *Node) LogPath() string { return n.log }

// AdminURL is the base URL of the node's admin listener (/metrics).
func (n *Node) AdminURL() string { return "http://" + n.AdminAddr }

// StartNode runs bin (cmd/switchboard) with args plus --addr and
// --admin-addr on free ports,
// waits until /readyz answers 200, and stops the node when t ends.
func StartNode(t testing.TB, bin string, args ...string) *Node {
	t.Helper()
	n := &Node{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort()), AdminAddr: fmt.Sprintf("127.0.0.1:%d", FreePort()), bin: bin, args: args,
		log: filepath.Join(t.TempDir(), "node.log")}
	if err := n.Start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		n.Stop(15 * time.Second)
		if d := os.Getenv("SWITCHBOARD_KEEP_NODE_LOGS"); d != "" {
			b, _ := os.ReadFile(n.log)
			_ = os.WriteFile(filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_")+"-"+n.Addr+".log"), b, 0o644)
		}
		if t.Failed() {
			t.Logf("node %s logged (warnings and errors, last 40):\n%s", n.Addr, n.Notable(40))
		}
	})
	return n
}

// Start starts the node again (after Kill or Stop) on the same port and
// waits until it is ready.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("node %s is running", n.Addr)
	}
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(n.bin, append([]string{"--addr", n.Addr, "--admin-addr", n.AdminAddr}, n.args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exit, err := startChild(cmd, syscall.SIGKILL)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	hc := http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(n.URL() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				n.cmd, n.exit = cmd, exit
				return nil
			}
		}
		select {
		case <-exit:
			return fmt.Errorf("node %s exited while starting:\n%s", n.Addr, tail(n.log, 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exit
			return fmt.Errorf("node %s not ready after 30s:\n%s", n.Addr, tail(n.log, 2000))
		}
	}
}

// Kill is kill -9: no close frames, no flush; the node's sockets just end.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.exit
	n.cmd = nil
}

// Stop sends SIGTERM (the node closes its sockets with 1001 and finishes
// in-flight commits) and waits up to limit before it kills.
func (n *Node) Stop(limit time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exit:
	case <-time.After(limit):
		_ = n.cmd.Process.Kill()
		<-n.exit
	}
	n.cmd = nil
}

// Notable returns the node's last max WARN and ERROR log lines.
func (n *Node) Notable(max int) string {
	f, err := os.Open(n.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "panic") {
			lines = append(lines, l)
		}
	}
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return strings.Join(lines, "\n")
}
