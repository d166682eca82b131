package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/deploy/nginx"
)

const envSkipNGINX = "SWITCHBOARD_SKIP_NGINX"

// NGINXServer is a private NGINX for one test, running the deployed
// configuration (deploy/nginx/switchboard.conf, rendered by deploy/nginx)
// on a free loopback port, with its pid, logs and temp files in the test's
// temp folder.
type NGINXServer struct {
	Addr string // host:port clients connect to
	Dir  string // the prefix: nginx.conf, error.log, access.log, nginx.pid
	cmd  *exec.Cmd
	exit <-chan struct{} // closed when the master has exited
}

// URL is the base URL clients use, e.g. http://127.0.0.1:41234.
func (n *NGINXServer) URL() string { return "http://" + n.Addr }

// ErrorLog returns the end of NGINX's error log, for a failing test's output.
func (n *NGINXServer) ErrorLog() string { return tail(filepath.Join(n.Dir, "error.log"), 4000) }

// NGINXWorkers is worker_processes of the private instances: more than one,
// so that the reuseport listeners and per-worker upstream state of the
// deployed configuration are what the tests go through.
const NGINXWorkers = 2

// NGINX starts a private NGINX in front of upstreams (the nodes' base URLs
// or host:port), stopped when t ends. When nginx is not installed, t fails;
// with SWITCHBOARD_SKIP_NGINX=1 it is skipped instead.
func NGINX(t testing.TB, upstreams []string) *NGINXServer {
	t.Helper()
	if os.Getenv(envSkipNGINX) == "1" {
		t.Skipf("%s=1: skipping a test that needs NGINX", envSkipNGINX)
	}
	bin, err := nginxBin()
	if err != nil {
		t.Fatalf("testenv: this test needs nginx (Debian package nginx): %v\n(set %s=1 to skip)", err, envSkipNGINX)
	}
	n := &NGINXServer{Dir: t.TempDir()}
	var lastErr error
	for range 3 { // a free port can be taken before nginx binds it
		n.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort())
		if lastErr = n.start(bin, upstreams); lastErr == nil {
			t.Cleanup(n.stop)
			return n
		}
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("testenv: start nginx: %v", lastErr)
	return nil
}

func (n *NGINXServer) start(bin string, upstreams []string) error {
	p := nginx.Private{Dir: n.Dir, Listen: n.Addr, Upstreams: upstreams, Workers: NGINXWorkers}
	if os.Geteuid() == 0 {
		// Workers of a root master drop to an unprivileged user, who could
		// not enter the test's temp folder (0700): stay root, like the test.
		p.User = "root"
	}
	conf, err := nginx.Render(p)
	if err != nil {
		return err
	}
	confPath := filepath.Join(n.Dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return err
	}
	errLog := filepath.Join(n.Dir, "error.log")
	_ = os.Remove(errLog) // a failed attempt's lines are not this one's

	cmd := exec.Command(bin, "-p", n.Dir, "-c", confPath, "-e", errLog)
	out, err := os.Create(filepath.Join(n.Dir, "stderr.log"))
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	// SIGTERM is NGINX's fast shutdown: the master stops its workers and
	// exits. Sent when the test binary dies without cleaning up.
	exit, err := startChild(cmd, syscall.SIGTERM)
	if err != nil {
		return err
	}
	n.cmd, n.exit = cmd, exit

	deadline := time.After(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", n.Addr, time.Second); err == nil {
			c.Close()
			if _, err := os.Stat(filepath.Join(n.Dir, "nginx.pid")); err == nil {
				return nil
			}
		}
		select {
		case <-exit:
			n.cmd = nil
			return fmt.Errorf("nginx exited on %s:\n%s\n%s", n.Addr, tail(errLog, 2000), tail(out.Name(), 1000))
		case <-deadline:
			n.stop()
			return fmt.Errorf("nginx not listening on %s after 10s:\n%s", n.Addr, tail(errLog, 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop asks the master for a fast shutdown (it stops its workers first) and
// kills it if that takes too long.
func (n *NGINXServer) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exit:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exit
	}
	n.cmd = nil
}

// nginxBin finds nginx on PATH or where Debian puts it (/usr/sbin, which a
// non-root PATH may lack).
func nginxBin() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("no nginx on PATH or in /usr/sbin (apt-get install nginx)")
}

// Reload renders the configuration again for upstreams and asks the master
// to reload it (SIGHUP), as `nginx -s reload` does: new workers take new
// connections; old workers finish theirs and close the WebSockets they hold
// at worker_shutdown_timeout, or when the last one ends.
func (n *NGINXServer) Reload(t testing.TB, upstreams []string) {
	t.Helper()
	p := nginx.Private{Dir: n.Dir, Listen: n.Addr, Upstreams: upstreams, Workers: NGINXWorkers}
	if os.Geteuid() == 0 {
		p.User = "root"
	}
	conf, err := nginx.Render(p)
	if err != nil {
		t.Fatalf("testenv: render nginx config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "nginx.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("testenv: reload nginx: %v", err)
	}
}
