package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
	"golang.org/x/sys/unix"
)

// worker is one worker process: its share of devices, one socket each.
type worker struct {
	spec   workerSpec
	conns  []*Conn
	eng    *nbio.Engine
	driver Driver

	addr, host, path string
	sources          []netip.Addr // per ConnsPerSource block of global indexes

	outMu sync.Mutex
	out   *json.Encoder

	attempted, synced, failed, dropped, stoppedSynced, reconnects atomic.Int64
	redialRetries                                                 atomic.Int64
	redials                                                       chan *Conn

	errMu      sync.Mutex
	errs       map[string]int64
	errSamples map[string]string

	tcpHist, upgradeHist, connectHist Histogram
	peakRSS                           atomic.Int64
}

// RunWorker is `sbload worker`: it reads its spec and commands from in and
// writes progress and its result to out. It returns when told to stop, when
// in closes, or at the spec's deadline.
func RunWorker(in io.Reader, out io.Writer) error {
	logging.Output = os.Stderr // nbio logs to stdout by default: that is our pipe
	logging.SetLevel(logging.LevelError)
	raiseFileLimit()

	w := &worker{out: json.NewEncoder(out), errs: map[string]int64{}, errSamples: map[string]string{}}
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 1<<20), 256<<20)
	if !lines.Scan() {
		return fmt.Errorf("worker: no spec on stdin: %v", lines.Err())
	}
	if err := json.Unmarshal(lines.Bytes(), &w.spec); err != nil {
		return w.fatal(fmt.Errorf("worker: spec: %w", err))
	}
	if err := w.init(); err != nil {
		return w.fatal(err)
	}
	defer w.eng.Stop()
	w.send(workerMsg{Type: msgReady})

	cmds := make(chan string, 4)
	go func() {
		for lines.Scan() {
			var c command
			if json.Unmarshal(lines.Bytes(), &c) == nil {
				cmds <- c.Cmd
			}
		}
		close(cmds) // the coordinator is gone: stop
	}()
	return w.loop(cmds)
}

func (w *worker) init() error {
	s := &w.spec
	sc, err := lookupScenario(s.Scenario)
	if err != nil {
		return err
	}
	if w.driver, err = sc.NewDriver(s.Plan, s.Devices); err != nil {
		return err
	}
	u, err := url.Parse(s.Target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("worker: bad target %q", s.Target)
	}
	w.host = u.Host
	w.addr = u.Host
	if u.Port() == "" {
		w.addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme == "https"])
	}
	if u.Scheme != "http" {
		return fmt.Errorf("worker: only http:// targets are supported (got %s)", u.Scheme)
	}
	w.path = strings.TrimSuffix(u.Path, "/") + "/v1/ws"
	if s.SourceBase != "" {
		base, err := netip.ParseAddr(s.SourceBase)
		if err != nil || !base.Is4() || !base.IsLoopback() {
			return fmt.Errorf("worker: source base %q is not an IPv4 loopback address", s.SourceBase)
		}
		for a, i := base, 0; i <= lastIndex(s.Devices)/max(1, s.ConnsPerSource); i++ {
			if !a.IsLoopback() {
				return fmt.Errorf("worker: ran out of loopback source addresses")
			}
			w.sources = append(w.sources, a)
			a = a.Next()
		}
	}
	w.redials = make(chan *Conn, len(s.Devices))
	for range redialers {
		go func() {
			for c := range w.redials {
				w.dial(c)
			}
		}()
	}
	w.conns = make([]*Conn, len(s.Devices))
	for i := range w.conns {
		w.conns[i] = &Conn{w: w, Index: i}
	}

	w.eng = nbio.NewEngine(nbio.Config{Name: fmt.Sprintf("sbload-%d", s.ID), NPoller: max(1, s.Pollers)})
	w.eng.OnData(func(nc *nbio.Conn, data []byte) {
		if c, ok := nc.Session().(*Conn); ok {
			c.onData(nc, data)
		}
	})
	w.eng.OnClose(func(nc *nbio.Conn, err error) {
		if c, ok := nc.Session().(*Conn); ok {
			kind := closeKind(err)
			if st := c.state.Load(); st != stReconnecting && st != stStopped {
				w.sample(kind, fmt.Errorf("closed in state %d: %v", st, err))
			}
			c.closed(nc, kind)
		}
	})
	return w.eng.Start()
}

func lastIndex(devs []Device) int {
	if len(devs) == 0 {
		return 0
	}
	return devs[len(devs)-1].Index
}

// loop follows the coordinator's commands and reports every second.
func (w *worker) loop(cmds <-chan string) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(time.Until(w.spec.Deadline))
	defer deadline.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dialing sync.WaitGroup
	steadyCtx, stopSteady := context.WithCancel(ctx)
	defer stopSteady()
	var steady sync.WaitGroup

	stop := func() error {
		cancel()
		dialing.Wait()
		steady.Wait()
		for _, c := range w.conns {
			c.stop()
		}
		w.send(workerMsg{Type: msgResult, Result: w.result()})
		return nil
	}
	for {
		select {
		case cmd, ok := <-cmds:
			switch {
			case !ok || cmd == cmdStop:
				return stop()
			case cmd == cmdConnect:
				dialing.Add(1)
				go func() { defer dialing.Done(); w.ramp(ctx) }()
			case cmd == cmdSteady:
				steady.Add(1)
				go func() { defer steady.Done(); w.driver.Steady(steadyCtx, w.conns) }()
			case cmd == cmdDrain:
				stopSteady()
			}
		case <-tick.C:
			w.sweep()
			w.send(workerMsg{Type: msgProgress, Stats: w.stats()})
		case <-deadline.C:
			fmt.Fprintf(os.Stderr, "sbload worker %d: deadline reached, stopping\n", w.spec.ID)
			return stop()
		}
	}
}

// ramp dials every device's socket, paced at spec.Rate, with a small pool
// of dialer goroutines (a connect on loopback takes microseconds; the pool
// only covers the odd slow one).
func (w *worker) ramp(ctx context.Context) {
	jobs := make(chan *Conn, 256)
	var wg sync.WaitGroup
	for range max(1, w.spec.Dialers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				w.dial(c)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	start := time.Now()
	for i, c := range w.conns {
		if w.spec.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / w.spec.Rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
		}
		select {
		case jobs <- c:
		case <-ctx.Done():
			return
		}
	}
}

// dial opens one socket and writes the upgrade request; the rest happens
// on the poller (Conn.onData).
func (w *worker) dial(c *Conn) {
	if !c.state.CompareAndSwap(stIdle, stDialing) {
		return
	}
	w.attempted.Add(1)
	c.started = time.Now().UnixNano()
	d := net.Dialer{Timeout: w.spec.DialTimeout}
	if len(w.sources) > 0 {
		src := w.sources[w.spec.Devices[c.Index].Index/max(1, w.spec.ConnsPerSource)]
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		// Pick the port at connect time from the whole 4-tuple, not at
		// bind time from the address alone.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
		}
	}
	std, err := d.Dial("tcp", w.addr)
	if err != nil {
		w.sample(dialKind(err), err)
		c.fail(dialKind(err))
		return
	}
	tcp := std.(*net.TCPConn)
	_ = tcp.SetLinger(0) // close with RST: no TIME_WAIT eating ports between runs
	w.tcpHist.Record(time.Duration(time.Now().UnixNano() - c.started))
	nc, err := nbio.NBConn(tcp) // dups the fd and closes tcp
	if err != nil {
		w.sample("dial_nbconn", err)
		c.fail("dial_nbconn")
		return
	}
	dev := &w.spec.Devices[c.Index]
	path := w.path
	if dev.DeviceID != "" {
		// The routing key of NGINX in front of several nodes (deploy/nginx):
		// each device lands on one node, as the SDK's sockets do.
		path += "?device=" + url.QueryEscape(dev.DeviceID)
	}
	req, accept := upgradeRequest(w.host, path, dev.Token)
	c.accept = accept
	nc.SetSession(c)
	c.mu.Lock()
	c.nc.Store(nc)
	c.mu.Unlock()
	if !c.state.CompareAndSwap(stDialing, stUpgrading) {
		_ = nc.Close()
		return
	}
	if _, err := w.eng.AddConn(nc); err != nil {
		w.sample("register", err)
		c.fail("register")
		return
	}
	if _, err := nc.Write(req); err != nil {
		w.sample("upgrade_write", err)
		c.fail("upgrade_write")
	}
}

// redialers dial the sockets Reconnect closed; they live as long as the
// worker process.
const redialers = 4

// redial queues c, closed by Reconnect, to be dialed again. It never blocks:
// the queue holds every socket of the worker.
func (w *worker) redial(c *Conn) {
	w.redials <- c
}

// sweep fails the sockets that took longer than ConnectTimeout to sync. One
// pass a second over a slice replaces a timer per socket.
func (w *worker) sweep() {
	limit := time.Now().Add(-w.spec.ConnectTimeout).UnixNano()
	for _, c := range w.conns {
		switch c.state.Load() {
		case stUpgrading:
			if c.started < limit {
				c.fail("timeout_upgrade")
			}
		case stSyncing:
			if c.started < limit {
				c.fail("timeout_sync")
			}
		}
	}
}

// ended counts a socket's end once, from Conn.end.
func (w *worker) ended(_, to int32, kind string) {
	if to == stDropped {
		w.dropped.Add(1)
		w.countError("dropped_" + kind)
		return
	}
	w.failed.Add(1)
	w.countError(kind)
}

func (w *worker) countError(kind string) {
	w.errMu.Lock()
	w.errs[kind]++
	w.errMu.Unlock()
}

// sample keeps the first error text of each kind, for the summary.
func (w *worker) sample(kind string, err error) {
	w.errMu.Lock()
	if _, ok := w.errSamples[kind]; !ok {
		w.errSamples[kind] = err.Error()
	}
	w.errMu.Unlock()
}

func dialKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "dial_refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "dial_no_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "dial_too_many_files"
	case errors.As(err, &ne) && ne.Timeout():
		return "dial_timeout"
	}
	return "dial_other"
}

func closeKind(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken_pipe"
	}
	return "closed"
}

func (w *worker) stats() *connStats {
	rss := selfRSS()
	if rss > w.peakRSS.Load() {
		w.peakRSS.Store(rss)
	}
	s := &connStats{
		Wanted:        int64(len(w.conns)),
		Attempted:     w.attempted.Load(),
		Synced:        w.synced.Load(),
		Failed:        w.failed.Load(),
		Dropped:       w.dropped.Load(),
		Reconnects:    w.reconnects.Load(),
		RedialRetries: w.redialRetries.Load(),
		Scenario:      w.driver.Progress(),
		RSS:           rss,
		PeakRSS:       w.peakRSS.Load(),
		CPU:           selfCPU(),
	}
	s.Connected = s.Synced - s.Dropped - w.stoppedSynced.Load() - s.Reconnects
	w.errMu.Lock()
	if len(w.errs) > 0 {
		s.Errors = make(map[string]int64, len(w.errs))
		for k, v := range w.errs {
			s.Errors[k] = v
		}
	}
	w.errMu.Unlock()
	return s
}

func (w *worker) result() *workerResult {
	r := &workerResult{
		connStats: *w.stats(),
		TCP:       w.tcpHist.Data(),
		Upgrade:   w.upgradeHist.Data(),
		Connect:   w.connectHist.Data(),
		Scenario:  w.driver.Report(),
	}
	w.errMu.Lock()
	r.ErrorSamples = w.errSamples
	w.errMu.Unlock()
	return r
}

func (w *worker) send(m workerMsg) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.out.Encode(m)
}

func (w *worker) fatal(err error) error {
	w.send(workerMsg{Type: msgFatal, Error: err.Error()})
	return err
}
