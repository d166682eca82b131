package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const envSkipRedis = "SWITCHBOARD_SKIP_REDIS"

// RedisServer is a private redis-server for one test: on a free loopback
// port, in the test's temp folder, with nothing saved to disk.
type RedisServer struct {
	Addr string // host:port
	dir  string
	port int
	cmd  *exec.Cmd
	exit chan error // receives the server's exit, once
}

// URL is the server's redis:// URL.
func (r *RedisServer) URL() string { return "redis://" + r.Addr + "/0" }

// Redis starts a private redis-server for t, stopped when t ends. When
// redis-server is not installed, t fails; with SWITCHBOARD_SKIP_REDIS=1 it
// is skipped instead.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	if os.Getenv(envSkipRedis) == "1" {
		t.Skipf("%s=1: skipping a test that needs Redis", envSkipRedis)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: this test needs redis-server (Debian package redis-server): %v\n(set %s=1 to skip)", err, envSkipRedis)
	}
	r := &RedisServer{dir: t.TempDir()}
	var lastErr error
	for range 3 { // a free port can be taken before redis binds it
		r.port = FreePort()
		r.Addr = fmt.Sprintf("127.0.0.1:%d", r.port)
		if lastErr = r.start(bin); lastErr == nil {
			t.Cleanup(r.stop)
			return r
		}
	}
	t.Fatalf("testenv: start redis-server: %v", lastErr)
	return nil
}

func (r *RedisServer) start(bin string) error {
	r.cmd = exec.Command(bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		return err
	}
	cmd, exit := r.cmd, make(chan error, 1)
	r.exit = exit
	go func() { exit <- cmd.Wait() }()
	deadline := time.After(10 * time.Second)
wait:
	for pingRedis(r.Addr) != nil {
		select {
		case err := <-exit:
			exit <- err
			break wait
		case <-deadline:
			break wait
		case <-time.After(20 * time.Millisecond):
		}
	}
	if pingRedis(r.Addr) == nil {
		return nil
	}
	r.stop()
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return fmt.Errorf("redis-server on %s did not answer PING:\n%s", r.Addr, log)
}

// Restart stops the server and starts it again on the same port, empty:
// what clients see when Redis restarts.
func (r *RedisServer) Restart(t testing.TB) {
	t.Helper()
	r.stop()
	bin, _ := exec.LookPath("redis-server")
	if err := r.start(bin); err != nil {
		t.Fatalf("testenv: restart redis-server: %v", err)
	}
}

func (r *RedisServer) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exit
	r.cmd = nil
}

// pingRedis sends one inline PING and expects +PONG.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Kill stops the server at once (kill -9), as a crashed Redis; Start
// brings it back. Its data is gone, as after any restart here.
func (r *RedisServer) Kill() { r.stop() }

// Start starts a killed server again on the same port.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	if r.cmd != nil {
		return
	}
	bin, _ := exec.LookPath("redis-server")
	if err := r.start(bin); err != nil {
		t.Fatalf("testenv: start redis-server again: %v", err)
	}
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// answers, as a Redis stuck on a slow disk or a long command. Resume
// (SIGCONT) lets it go on.
func (r *RedisServer) Pause() {
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume undoes Pause.
func (r *RedisServer) Resume() {
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
}
