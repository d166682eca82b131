// Package testenv gives integration tests the real services they need,
// started by the test binary itself so that `go test` works on a bare
// machine with the packages installed and nothing running.
//
// A package whose tests use it calls Main from TestMain, so that what was
// started is stopped and removed when its tests end:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// Environment:
//
//	SWITCHBOARD_TEST_POSTGRES=postgres://...  use this server instead of starting one
//	SWITCHBOARD_SKIP_POSTGRES=1               skip the tests that need PostgreSQL
//	SWITCHBOARD_TEST_PG_FSYNC=1               start the private server durable: fsync,
//	                                          synchronous_commit and full_page_writes on
//	                                          (by default off, for speed), for benchmarks
//	                                          of durable commits; no effect on a server
//	                                          named by SWITCHBOARD_TEST_POSTGRES
//	SWITCHBOARD_SKIP_REDIS=1                  skip the tests that need redis-server
//	SWITCHBOARD_SKIP_NGINX=1                  skip the tests that need nginx (NGINX runs
//	                                          deploy/nginx/switchboard.conf, rendered)
//	SWITCHBOARD_SKIP_PROMETHEUS=1             skip the tests that need prometheus, promtool
//	                                          or prometheus-alertmanager
//
// Without the SKIP variable a test that needs a service fails when it cannot
// have it: a silently skipped integration test looks like a passing one.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
)

// mainRunning is set by Main; a private server started without it would
// outlive the tests and leave its folder behind.
var mainRunning atomic.Bool

// Main runs the tests of m and then stops and removes whatever this package
// started for them. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	if err := stopPostgres(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it, so a caller that
// can should retry with a new port when binding fails.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("testenv: no free port on 127.0.0.1: %v", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startChild starts cmd so that it gets sig when the test binary dies
// without stopping it (Pdeathsig), and returns a channel closed when it has
// exited (and been waited for).
func startChild(cmd *exec.Cmd, sig syscall.Signal) (<-chan struct{}, error) {
	// Setpgid: a Ctrl-C in the terminal reaches only this process
	// (cmd/sbcluster), which then stops its children in order, instead of
	// every child at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: sig, Setpgid: true}
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		// Pdeathsig fires when the thread that started the child ends, not
		// the process: keep this goroutine on its thread while the child lives.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
