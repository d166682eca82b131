package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// phase is one row of the table: a replay (or its setup) and what the
// node did during it.
type phase struct {
	Name     string         `json:"name"`
	What     string         `json:"what"`
	Requests int            `json:"requests"`
	Answers  map[string]int `json:"answers"` // "201", "429 rate_limited", "error: EOF"...
	Notes    []string       `json:"notes,omitempty"`
	Start    time.Time      `json:"start"`
	Seconds  float64        `json:"seconds"`
	PeakRSS  int64          `json:"peak_rss_bytes"`
	CPU      float64        `json:"node_cpu_seconds"` // user + system, from /proc/PID/stat; 0 without --pid
	cpu0     float64
	Healthz  []float64 `json:"-"` // latencies in ms
	HealthzN int       `json:"healthz_samples"`
	HealthzF int       `json:"healthz_failures"` // no 200 within 5 s
	P50, P99 float64   `json:"-"`
	Max      float64   `json:"-"`
}

// bench holds the run: the phases so far and the sampler feeding the
// current one.
type bench struct {
	cfg  Config
	log  io.Writer
	hc   *http.Client // the replays' client
	mu   sync.Mutex
	cur  *phase
	all  []*phase
	stop chan struct{}
	done chan struct{}

	series *os.File // t_ms,phase,rss_bytes,healthz_ms; nil without --out
	t0     time.Time
	state  state
}

func newBench(cfg Config, log io.Writer) (*bench, error) {
	b := &bench{cfg: cfg, log: &lockedWriter{w: log}, stop: make(chan struct{}), done: make(chan struct{}), t0: time.Now(),
		hc: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 512}}}
	if cfg.Out != "" {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(filepath.Join(cfg.Out, "series.csv"))
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(f, "t_ms,phase,rss_bytes,healthz_ms")
		b.series = f
	}
	b.begin("idle", "the node before any replay")
	go b.sample()
	return b, nil
}

func (b *bench) close() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
		<-b.done
	}
	if b.series != nil {
		b.series.Close()
	}
}

// begin ends the current phase and starts the next one.
func (b *bench) begin(name, what string) *phase {
	cpu := b.cpu()
	p := &phase{Name: name, What: what, Answers: map[string]int{}, Start: time.Now(), cpu0: cpu}
	b.mu.Lock()
	if b.cur != nil {
		b.cur.Seconds = time.Since(b.cur.Start).Seconds()
		b.cur.CPU = cpu - b.cur.cpu0
	}
	b.cur = p
	b.all = append(b.all, p)
	b.mu.Unlock()
	fmt.Fprintf(b.log, "sbabuse: %s: %s\n", name, what)
	return p
}

// answer counts one answer of the current phase.
func (b *bench) answer(p *phase, key string) {
	b.mu.Lock()
	p.Requests++
	p.Answers[key]++
	b.mu.Unlock()
}

// count counts one answer without counting a request (the caller counted
// the requests, e.g. frames, itself).
func (b *bench) count(p *phase, key string) {
	b.mu.Lock()
	p.Answers[key]++
	b.mu.Unlock()
}

func (b *bench) note(p *phase, format string, args ...any) {
	b.mu.Lock()
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
	b.mu.Unlock()
	fmt.Fprintf(b.log, "sbabuse:   %s\n", fmt.Sprintf(format, args...))
}

// sample records, until close, what the prober process (probeMain)
// measures every cfg.Sample: the node's RSS and the time of one /healthz. The
// prober is a process of its own so that the replays' goroutines, which
// flood the node as fast as they can, do not delay its requests inside this
// process's scheduler: its latencies are the node's (and the machine's).
func (b *bench) sample() {
	defer close(b.done)
	fail := func(err error) { fmt.Fprintf(b.log, "sbabuse: prober: %v\n", err) }
	exe, err := os.Executable()
	if err != nil {
		fail(err)
		return
	}
	conf, _ := json.Marshal(probeConfig{Target: b.cfg.Target, Admin: b.cfg.Admin, PID: b.cfg.PID, Sample: b.cfg.Sample})
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), probeEnv+"="+string(conf))
	cmd.Stderr = b.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fail(err)
		return
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
		return
	}
	if err := cmd.Start(); err != nil {
		fail(err)
		return
	}
	go func() { <-b.stop; stdin.Close() }() // the prober exits when its stdin ends
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var rss int64
		var ms float64
		var ok bool
		if _, err := fmt.Sscan(lines.Text(), &rss, &ms, &ok); err != nil {
			fail(fmt.Errorf("%q: %w", lines.Text(), err))
			continue
		}
		t := time.Now()
		b.mu.Lock()
		p := b.cur
		p.PeakRSS = max(p.PeakRSS, rss)
		if ok {
			p.Healthz = append(p.Healthz, ms)
		} else {
			p.HealthzF++
		}
		p.HealthzN++
		if b.series != nil {
			fmt.Fprintf(b.series, "%d,%s,%d,%.2f\n", t.Sub(b.t0).Milliseconds(), p.Name, rss, ms)
		}
		b.mu.Unlock()
	}
	if err := cmd.Wait(); err != nil {
		fail(err)
	}
}

// probeEnv, when set (to a probeConfig in JSON), makes the program the
// prober (probeMain) instead of sbabuse: bench.sample starts it so.
const probeEnv = "SBABUSE_PROBE"

// probeConfig is what the prober measures and how often.
type probeConfig struct {
	Target string        // the node's API base URL: /healthz
	Admin  string        // the node's admin base URL: RSS from /metrics when PID is 0
	PID    int           // the node's process id: RSS from /proc/PID/status
	Sample time.Duration // time between samples
}

// probeMain is the prober process: every c.Sample it reads the node's RSS
// and times one /healthz, and prints "rss_bytes healthz_ms ok" on stdout,
// until its stdin ends. A /healthz that takes longer delays the next
// sample: at most one is in flight, as with a real health checker.
func probeMain(conf string) int {
	var c probeConfig
	if err := json.Unmarshal([]byte(conf), &c); err != nil || c.Sample <= 0 {
		fmt.Fprintf(os.Stderr, "sbabuse prober: bad %s %q: %v\n", probeEnv, conf, err)
		return 2
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	w := bufio.NewWriter(os.Stdout)
	tick := time.NewTicker(c.Sample)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
		rss := nodeRSS(hc, c.PID, c.Admin)
		t := time.Now()
		ok := false
		if resp, err := hc.Get(c.Target + "/healthz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		fmt.Fprintf(w, "%d %.2f %t\n", rss, float64(time.Since(t).Microseconds())/1000, ok)
		if w.Flush() != nil {
			return 0 // sbabuse is gone
		}
	}
}

// nodeRSS is the node's resident memory in bytes: VmRSS of /proc/PID/status,
// or process_resident_memory_bytes of its /metrics at admin; 0 if neither
// answers.
func nodeRSS(hc *http.Client, pid int, admin string) int64 {
	if pid != 0 {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10
			}
		}
		return 0
	}
	resp, err := hc.Get(admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}

// cpu is the node's CPU time so far in seconds (utime + stime of
// /proc/PID/stat, in clock ticks of 1/100 s); 0 without --pid.
func (b *bench) cpu() float64 {
	if b.cfg.PID == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.cfg.PID))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// finish ends the last phase and computes the latency percentiles.
func (b *bench) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && b.cur.Seconds == 0 {
		b.cur.Seconds = time.Since(b.cur.Start).Seconds()
		b.cur.CPU = b.cpu() - b.cur.cpu0
	}
	for _, p := range b.all {
		slices.Sort(p.Healthz)
		p.P50, p.P99, p.Max = quantile(p.Healthz, 0.5), quantile(p.Healthz, 0.99), quantile(p.Healthz, 1)
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// report prints the table (and writes it with summary.json under --out).
func (b *bench) report(w io.Writer) error {
	close(b.stop)
	<-b.done
	b.finish()
	var sb strings.Builder
	sb.WriteString("| item | replayed | requests | answers | s | node CPU s | peak RSS MiB | /healthz p50 / p99 / max ms (samples, failed) |\n")
	sb.WriteString("|---|---|---:|---|---:|---:|---:|---|\n")
	var peak int64
	var worst float64
	for _, p := range b.all {
		peak, worst = max(peak, p.PeakRSS), max(worst, p.Max)
		rss, lat := "–", "–"
		if p.PeakRSS > 0 {
			rss = fmt.Sprintf("%.0f", float64(p.PeakRSS)/(1<<20))
		}
		if p.HealthzN > 0 {
			lat = fmt.Sprintf("%.1f / %.1f / %.1f (%d, %d)", p.P50, p.P99, p.Max, p.HealthzN, p.HealthzF)
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %s | %.1f | %.1f | %s | %s |\n", p.Name, p.What, p.Requests,
			answers(p.Answers), p.Seconds, p.CPU, rss, lat)
	}
	fmt.Fprintf(&sb, "\npeak RSS over the run: %.0f MiB; slowest /healthz: %.1f ms\n", float64(peak)/(1<<20), worst)
	for _, p := range b.all {
		for _, n := range p.Notes {
			fmt.Fprintf(&sb, "- %s: %s\n", p.Name, n)
		}
	}
	if _, err := io.WriteString(w, sb.String()); err != nil {
		return err
	}
	if b.cfg.Out == "" {
		return nil
	}
	if err := os.WriteFile(filepath.Join(b.cfg.Out, "table.md"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	type row struct {
		*phase
		P50 float64 `json:"healthz_p50_ms"`
		P99 float64 `json:"healthz_p99_ms"`
		Max float64 `json:"healthz_max_ms"`
	}
	rows := make([]row, len(b.all))
	for i, p := range b.all {
		rows[i] = row{p, p.P50, p.P99, p.Max}
	}
	j, _ := json.MarshalIndent(map[string]any{"target": b.cfg.Target, "sizes": b.cfg.Sizes, "phases": rows,
		"peak_rss_bytes": peak, "healthz_max_ms": worst}, "", "  ")
	return os.WriteFile(filepath.Join(b.cfg.Out, "summary.json"), j, 0o644)
}

// answers formats counts by answer, most frequent first.
func answers(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// loopbackOnly refuses a target that is not on 127.0.0.0/8 or ::1: the
// replays are abuse, for one's own node on one's own host.
func loopbackOnly(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("--target %s is not a loopback address: sbabuse runs only against a node on this host", target)
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// lockedWriter serialises writes to w: the run's goroutines and the
// prober's stderr (copied by os/exec's goroutine) share the log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
