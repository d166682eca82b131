package load

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// workerProc is the coordinator's handle on one worker process.
type workerProc struct {
	id      int
	devices int
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ready   chan struct{}
	exited  chan struct{} // stdout closed and the process waited for

	mu     sync.Mutex
	last   connStats
	result *workerResult
	fatal  string
	err    error
}

// startWorker runs `exe worker`, sends spec and waits for it to be ready.
func startWorker(exe string, spec workerSpec, log io.Writer) (*workerProc, error) {
	w := &workerProc{id: spec.ID, devices: len(spec.Devices), ready: make(chan struct{}), exited: make(chan struct{})}
	w.cmd = exec.Command(exe, "worker")
	// A worker dies with the coordinator; it would also stop on its own at
	// stdin EOF or its deadline.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	w.cmd.Stderr = &prefixWriter{w: log, prefix: fmt.Sprintf("[worker %d] ", spec.ID)}
	var err error
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", spec.ID, err)
	}
	go w.read(stdout)
	b, _ := json.Marshal(spec)
	if _, err := w.stdin.Write(append(b, '\n')); err != nil {
		w.kill()
		return nil, fmt.Errorf("worker %d: sending spec: %w", spec.ID, err)
	}
	select {
	case <-w.ready:
		return w, nil
	case <-w.exited:
		return nil, fmt.Errorf("worker %d exited before it was ready: %s %v", spec.ID, w.fatal, w.err)
	case <-time.After(30 * time.Second):
		w.kill()
		return nil, fmt.Errorf("worker %d: not ready after 30s", spec.ID)
	}
}

func (w *workerProc) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	readyOnce := sync.OnceFunc(func() { close(w.ready) })
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		w.mu.Lock()
		switch m.Type {
		case msgReady:
			readyOnce()
		case msgProgress:
			if m.Stats != nil {
				w.last = *m.Stats
			}
		case msgResult:
			w.result = m.Result
			if m.Result != nil {
				w.last = m.Result.connStats
			}
		case msgFatal:
			w.fatal = m.Error
		}
		w.mu.Unlock()
	}
	err := w.cmd.Wait()
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	close(w.exited)
}

func (w *workerProc) command(cmd string) {
	b, _ := json.Marshal(command{Cmd: cmd})
	_, _ = w.stdin.Write(append(b, '\n'))
}

func (w *workerProc) stats() connStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *workerProc) dead() bool {
	select {
	case <-w.exited:
		return true
	default:
		return false
	}
}

// stop asks the worker to stop and waits up to timeout for its result.
func (w *workerProc) stop(timeout time.Duration) *workerResult {
	w.command(cmdStop)
	_ = w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(timeout):
		w.kill()
		<-w.exited
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.result
}

func (w *workerProc) kill() {
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Kill()
	}
}

// prefixWriter prefixes every line written through it.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// executable is the binary to re-run as a worker.
func executable(cfg Config) (string, error) {
	if cfg.Executable != "" {
		return cfg.Executable, nil
	}
	return os.Executable()
}
