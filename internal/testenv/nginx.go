package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	p    nginx.Private
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
	return NGINXWith(t, nginx.Private{Upstreams: upstreams})
}

// NGINXWith is NGINX with what p sets of the deployed configuration
// besides the upstreams (ShutdownTimeout, BindAddrs, Workers: 0 means
// NGINXWorkers). Dir, Listen and User are the test's own; Reload keeps
// the rest of p.
func NGINXWith(t testing.TB, p nginx.Private) *NGINXServer {
	t.Helper()
	if os.Getenv(envSkipNGINX) == "1" {
		t.Skipf("%s=1: skipping a test that needs NGINX", envSkipNGINX)
	}
	bin, err := nginxBin()
	if err != nil {
		t.Fatalf("testenv: this test needs nginx (Debian package nginx): %v\n(set %s=1 to skip)", err, envSkipNGINX)
	}
	n := &NGINXServer{Dir: t.TempDir(), p: p}
	var lastErr error
	for range 3 { // a free port can be taken before nginx binds it
		n.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort())
		if lastErr = n.start(bin); lastErr == nil {
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

// writeConf renders the configuration for n.p, with the test's folder,
// address and user, into n.Dir/nginx.conf.
func (n *NGINXServer) writeConf() (string, error) {
	p := n.p
	p.Dir, p.Listen, p.User = n.Dir, n.Addr, ""
	if p.Workers == 0 {
		p.Workers = NGINXWorkers
	}
	if os.Geteuid() == 0 {
		// Workers of a root master drop to an unprivileged user, who could
		// not enter the test's temp folder (0700): stay root, like the test.
		p.User = "root"
	}
	conf, err := nginx.Render(p)
	if err != nil {
		return "", err
	}
	confPath := filepath.Join(n.Dir, "nginx.conf")
	return confPath, os.WriteFile(confPath, conf, 0o644)
}

func (n *NGINXServer) start(bin string) error {
	confPath, err := n.writeConf()
	if err != nil {
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

// Reload renders the configuration again for upstreams (the rest as
// started) and asks the master to reload it (SIGHUP), as `nginx -s reload`
// does, then waits until every worker of the old configuration has
// stopped accepting: new connections go by the new upstream list once
// Reload returns. The old workers finish their requests and close the
// WebSockets they still hold at worker_shutdown_timeout (10 s as
// deployed; nginx.Private.ShutdownTimeout), or when the last one ends.
func (n *NGINXServer) Reload(t testing.TB, upstreams []string) {
	t.Helper()
	old := n.workers()
	n.p.Upstreams = upstreams
	if _, err := n.writeConf(); err != nil {
		t.Fatalf("testenv: render nginx config: %v", err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("testenv: reload nginx: %v", err)
	}
	// The master starts new workers, then tells the old ones to stop
	// accepting; an old one that stopped is "nginx: worker process is
	// shutting down", or gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		accepting := 0
		for _, pid := range old {
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err == nil && !strings.Contains(string(cmdline), "shutting down") {
				accepting++
			}
		}
		if accepting == 0 {
			return
		}
		select {
		case <-n.exit:
			t.Fatalf("testenv: nginx exited on reload:\n%s", n.ErrorLog())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %d old nginx workers still accept 10s after the reload:\n%s", accepting, n.ErrorLog())
		}
	}
}

// workers lists the pids of the master's worker processes (/proc), by
// their title (ngx_setproctitle).
func (n *NGINXServer) workers() []int {
	master := n.cmd.Process.Pid
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read past ")".
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(master) {
				// Not the cache manager and loader: they accept nothing.
				if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), "worker process") {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}
