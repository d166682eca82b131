package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/client"
)

// coordinator runs one `sbload run`.
type coordinator struct {
	cfg     Config
	sc      Scenario
	log     io.Writer
	scr     *scraper
	sum     *Summary
	workers []*workerProc
	series  *json.Encoder
	t0      time.Time
	plan    json.RawMessage
	points  []rssPoint // one per second of ramp and steady
	rampCPU []float64  // each worker's CPU seconds when the ramp began
	phase   string
}

// Run is `sbload run`: it logs in the devices, runs the scenario on
// cfg.Procs worker processes and returns (and writes to cfg.Out) the
// summary. Progress goes to log.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Summary, error) {
	cfg = cfg.withDefaults()
	sc, err := lookupScenario(cfg.Scenario)
	if err != nil {
		return nil, err
	}
	if err := sc.Check(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MediaDir != "" {
		if _, err := loadPhotos(cfg.MediaDir); err != nil { // fail before the long provisioning
			return nil, err
		}
	}
	exe, err := executable(cfg)
	if err != nil {
		return nil, err
	}
	raiseFileLimit()
	c := &coordinator{cfg: cfg, sc: sc, log: log, scr: newScraper(cfg.Metrics), t0: time.Now(), phase: "provision"}
	c.sum = &Summary{
		Scenario: cfg.Scenario, Date: time.Now().UTC().Truncate(time.Second), Command: cfg.Command,
		Machine: machine(), Target: cfg.Target, Errors: map[string]int64{}, ErrorSample: map[string]string{},
		Params: Params{
			Conns: cfg.Conns, Procs: cfg.Procs, Ramp: cfg.Ramp.String(), Hold: cfg.Hold.String(),
			DevicesPerUser: cfg.DevicesPerUser, ConnectTimeout: cfg.ConnectTimeout.String(), Metrics: cfg.Metrics,
		},
	}
	if cfg.Series != "" {
		f, err := os.Create(cfg.Series)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		c.series = json.NewEncoder(f)
	}
	defer func() {
		for _, w := range c.workers {
			w.kill()
		}
	}()
	if err := c.run(ctx, exe); err != nil {
		return c.sum, err
	}
	if cfg.Out != "" {
		if err := writeJSON(cfg.Out, c.sum); err != nil {
			return c.sum, err
		}
	}
	return c.sum, nil
}

func (c *coordinator) run(ctx context.Context, exe string) error {
	cfg := c.cfg
	hc := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.HTTPConcurrency, MaxConnsPerHost: cfg.HTTPConcurrency},
	}
	defer hc.CloseIdleConnections()
	if err := waitReady(ctx, hc, cfg); err != nil {
		return err
	}

	// 1. accounts and devices
	cl, err := client.New(cfg.Target, client.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	p, err := newProvisioner(cfg, cl, c.log)
	if err != nil {
		return err
	}
	users, devs, err := p.run(ctx)
	maps.Copy(c.sum.Errors, p.errs)
	maps.Copy(c.sum.ErrorSample, p.sample)
	if err != nil {
		return err
	}
	c.sum.Params.Users = len(users)
	c.sum.Conns = ConnCounts{Wanted: cfg.Conns, LoggedIn: len(devs)}
	plan, err := c.sc.Plan(ctx, &PlanEnv{Config: cfg, Client: cl, Users: users, Devices: devs, Log: c.log})
	if err != nil {
		return fmt.Errorf("%s: plan: %w", cfg.Scenario, err)
	}
	c.plan = plan
	var up *uploader
	if cfg.MediaDir != "" {
		if up, err = newUploader(cfg, devs); err != nil {
			return err
		}
	}
	hc.CloseIdleConnections() // the node should hold no socket of ours at 0
	c.sum.Phases.ProvisionSeconds = secs(time.Since(c.t0))

	// 2. workers
	if err := c.startWorkers(exe, devs, plan); err != nil {
		return err
	}
	c.sum.Params.SourceAddrs = sourceAddrs(cfg, len(devs))

	// 3. ramp
	time.Sleep(time.Second) // let the node settle after the logins
	c.sum.Server.AtZero = c.scr.sample(ctx)
	c.note(c.sum.Server.AtZero)
	c.phase = "ramp"
	rampStart := time.Now()
	for _, w := range c.workers {
		c.rampCPU = append(c.rampCPU, w.stats().CPU)
	}
	c.broadcast(cmdConnect)
	rampLimit := cfg.Ramp + cfg.ConnectTimeout + cfg.DialTimeout + 5*time.Second
	err = c.until(ctx, rampLimit, func(s connStats) bool { return s.Synced+s.Failed >= s.Wanted })
	if err != nil {
		return err
	}
	c.sum.Phases.RampSeconds = secs(time.Since(rampStart))
	full := c.total()
	c.sum.Conns.Connected = full.Connected
	var rampCPU float64
	for i, w := range c.workers {
		c.rampCPU[i] = w.stats().CPU - c.rampCPU[i]
		rampCPU += c.rampCPU[i]
	}
	c.sum.LoadGen.RampCPUPercent = round3(rampCPU / time.Since(rampStart).Seconds() * 100)
	c.sum.Server.AtFull = c.scr.sample(ctx)
	if full.Synced+full.Failed < full.Wanted {
		c.sum.Notes = append(c.sum.Notes, fmt.Sprintf("ramp gave up after %s with %d sockets neither synced nor failed", rampLimit, full.Wanted-full.Synced-full.Failed))
	}

	// 4. steady phase
	c.phase = "steady"
	steadyStart := time.Now()
	c.broadcast(cmdSteady)
	stopUploads := func() {}
	if up != nil {
		uctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { up.run(uctx); close(done) }()
		stopUploads = func() { cancel(); <-done }
	}
	var steadyDone func(connStats) bool
	if f, ok := c.sc.(finisher); ok {
		steadyDone = func(s connStats) bool { return s.Scenario != nil && f.Finished(s.Scenario) }
	}
	err = c.until(ctx, cfg.Hold, steadyDone)
	steady := time.Since(steadyStart)
	stopUploads() // the uploads in flight are answered first
	if err != nil {
		return err
	}
	c.sum.Phases.SteadySeconds = secs(steady)
	if up != nil {
		c.sum.Uploads = up.summary(steady)
	}
	end := c.total()
	c.sum.Conns.AtEnd = end.Connected
	c.sum.Server.AtEnd = c.scr.sample(ctx)
	c.note(c.sum.Server.AtEnd)

	// 5. drain: wait until the scenario says all is in (or, for one that
	// does not say, until its counters stop moving)
	c.phase = "drain"
	drainStart := time.Now()
	c.broadcast(cmdDrain)
	if c.total().Scenario != nil {
		dr, _ := c.sc.(drainer)
		var last map[string]int64
		quiet, settled := 0, false
		err := c.until(ctx, cfg.Drain, func(s connStats) bool {
			if maps.Equal(s.Scenario, last) {
				quiet++
			} else {
				quiet = 0
			}
			last = s.Scenario
			settled = quiet >= 2 && (dr == nil || dr.Drained(s.Scenario))
			return settled
		})
		if err != nil {
			return err
		}
		if !settled {
			c.sum.Notes = append(c.sum.Notes, fmt.Sprintf("drain stopped after %s with work in flight (%v); loss counts include it", cfg.Drain, last))
		}
	}
	c.sum.Phases.DrainSeconds = secs(time.Since(drainStart))

	// 6. stop and merge
	c.phase = "stop"
	return c.finish()
}

// startWorkers splits devs into cfg.Procs contiguous shares.
func (c *coordinator) startWorkers(exe string, devs []Device, plan json.RawMessage) error {
	cfg := c.cfg
	procs := min(cfg.Procs, len(devs))
	deadline := time.Now().Add(30*time.Second + cfg.Ramp + cfg.ConnectTimeout + cfg.DialTimeout + cfg.Hold + cfg.Drain + time.Minute)
	for i := range procs {
		lo, hi := i*len(devs)/procs, (i+1)*len(devs)/procs
		rate := 0.0
		if cfg.Ramp > 0 {
			rate = float64(hi-lo) / cfg.Ramp.Seconds()
		}
		spec := workerSpec{
			ID: i, Scenario: cfg.Scenario, Target: cfg.Target, Devices: devs[lo:hi], Rate: rate,
			ConnsPerSource: cfg.ConnsPerSource, SourceBase: cfg.SourceBase, Dialers: cfg.Dialers, Pollers: cfg.Pollers,
			DialTimeout: cfg.DialTimeout, ConnectTimeout: cfg.ConnectTimeout, Deadline: deadline, Plan: plan,
		}
		w, err := startWorker(exe, spec, c.log)
		if err != nil {
			return err
		}
		c.workers = append(c.workers, w)
	}
	return nil
}

func (c *coordinator) broadcast(cmd string) {
	for _, w := range c.workers {
		w.command(cmd)
	}
}

// until ticks every second (series line, progress line) until done says
// so, d has passed, or a worker dies.
func (c *coordinator) until(ctx context.Context, d time.Duration, done func(connStats) bool) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.Now().Add(d)
	lastLine := time.Now()
	for {
		s := c.total()
		if done != nil && done(s) {
			return nil
		}
		if !time.Now().Before(end) {
			return nil
		}
		for _, w := range c.workers {
			if w.dead() {
				return fmt.Errorf("worker %d exited during the %s phase: %s %v", w.id, c.phase, w.fatal, w.err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		smp := c.scr.sample(ctx)
		s = c.total()
		if c.phase == "ramp" || c.phase == "steady" {
			c.points = append(c.points, rssPoint{s.Connected, smp.RSS})
		}
		if c.series != nil {
			c.writeSeries(s, smp)
		}
		if time.Since(lastLine) >= c.cfg.ProgressEvery {
			lastLine = time.Now()
			c.progress(s, smp)
		}
	}
}

// total adds up the workers' last progress.
func (c *coordinator) total() connStats {
	var t connStats
	for _, w := range c.workers {
		s := w.stats()
		t.Wanted += int64(w.devices)
		t.Attempted += s.Attempted
		t.Synced += s.Synced
		t.Connected += s.Connected
		t.Failed += s.Failed
		t.Dropped += s.Dropped
		t.RSS += s.RSS
		for k, v := range s.Errors {
			if t.Errors == nil {
				t.Errors = map[string]int64{}
			}
			t.Errors[k] += v
		}
		for k, v := range s.Scenario {
			if t.Scenario == nil {
				t.Scenario = map[string]int64{}
			}
			t.Scenario[k] += v
		}
	}
	return t
}

func (c *coordinator) progress(s connStats, smp Sample) {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs %-6s connected %d/%d failed %d dropped %d", time.Since(c.t0).Seconds(), c.phase, s.Connected, s.Wanted, s.Failed, s.Dropped)
	if smp.RSS > 0 {
		fmt.Fprintf(&b, "  node rss %.1f MiB cpu %.1fs", float64(smp.RSS)/(1<<20), smp.CPUSeconds)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Scenario)) {
		fmt.Fprintf(&b, " %s %d", k, s.Scenario[k])
	}
	if len(s.Errors) > 0 {
		fmt.Fprintf(&b, "  errors %v", s.Errors)
	}
	fmt.Fprintln(c.log, b.String())
}

// seriesPoint is one line of --series.
type seriesPoint struct {
	T          float64          `json:"t"`
	Phase      string           `json:"phase"`
	Connected  int64            `json:"connected"`
	Failed     int64            `json:"failed"`
	Dropped    int64            `json:"dropped"`
	RSS        int64            `json:"rss_bytes"`
	CPUSeconds float64          `json:"cpu_seconds"`
	LoadGenRSS int64            `json:"load_generator_rss_bytes"`
	Scenario   map[string]int64 `json:"scenario,omitempty"`
}

func (c *coordinator) writeSeries(s connStats, smp Sample) {
	_ = c.series.Encode(seriesPoint{
		T: secs(time.Since(c.t0)), Phase: c.phase, Connected: s.Connected, Failed: s.Failed, Dropped: s.Dropped,
		RSS: smp.RSS, CPUSeconds: smp.CPUSeconds, LoadGenRSS: s.RSS, Scenario: s.Scenario,
	})
}

// note records a node that could not be scraped.
func (c *coordinator) note(s Sample) {
	for _, n := range s.Nodes {
		if n.Err != "" {
			c.sum.Notes = append(c.sum.Notes, "metrics "+n.URL+": "+n.Err)
		}
	}
}

// finish stops the workers and merges their results into the summary.
func (c *coordinator) finish() error {
	sum := c.sum
	var hists [3]HistogramData
	var reports []json.RawMessage
	var lost []string
	var peak int64
	for i, w := range c.workers {
		r := w.stop(30 * time.Second)
		if r == nil {
			lost = append(lost, fmt.Sprintf("worker %d: no result (%s %v)", w.id, w.fatal, w.err))
			continue
		}
		sum.Conns.Attempted += r.Attempted
		sum.Conns.Failed += r.Failed
		sum.Conns.Dropped += r.Dropped
		sum.Conns.RedialRetries += r.RedialRetries
		for k, v := range r.Errors {
			sum.Errors[k] += v
		}
		for k, v := range r.ErrorSamples {
			if _, ok := sum.ErrorSample[k]; !ok {
				sum.ErrorSample[k] = v
			}
		}
		hists[0].Merge(r.TCP)
		hists[1].Merge(r.Upgrade)
		hists[2].Merge(r.Connect)
		reports = append(reports, r.Scenario)
		peak += r.PeakRSS
		ws := WorkerSummary{
			ID: w.id, Pid: w.cmd.Process.Pid, Devices: w.devices, Connected: r.Synced - r.Dropped - r.Reconnects, PeakRSS: r.PeakRSS, CPU: round3(r.CPU),
		}
		if i < len(c.rampCPU) {
			ws.RampCPU = round3(c.rampCPU[i])
		}
		sum.LoadGen.Workers = append(sum.LoadGen.Workers, ws)
	}
	c.workers = nil
	sum.TCPLatency, sum.UpgradeLatency, sum.ConnectLatency = hists[0].Latency(), hists[1].Latency(), hists[2].Latency()
	for _, v := range sum.Errors {
		sum.ErrorsTotal += v
	}
	if sum.Conns.Connected > 0 {
		sum.LoadGen.PeakRSSPerConn = round3(float64(peak) / float64(sum.Conns.Connected))
	}

	sv := &sum.Server
	sv.RSSAt0, sv.RSSAtN, sv.N = sv.AtZero.RSS, sv.AtEnd.RSS, sum.Conns.AtEnd
	sv.CPUSecondsAt0, sv.CPUSecondsAtN = sv.AtZero.CPUSeconds, sv.AtEnd.CPUSeconds
	if sv.N > 0 && sv.AtZero.complete() && sv.AtEnd.complete() {
		sv.BytesPerConn = round3(float64(sv.RSSAtN-sv.RSSAt0) / float64(sv.N))
		sv.HeapBytesPerConn = round3(float64(sumNodes(sv.AtEnd, heapOf)-sumNodes(sv.AtZero, heapOf)) / float64(sv.N))
	}
	sv.GoroutinesAt0, sv.GoroutinesAtN = sumNodes(sv.AtZero, goroutinesOf), sumNodes(sv.AtEnd, goroutinesOf)
	if sv.AtZero.complete() && sv.AtFull.complete() {
		sv.CPURampSeconds = round3(sv.AtFull.CPUSeconds - sv.AtZero.CPUSeconds)
		if d := sv.AtFull.At.Sub(sv.AtZero.At).Seconds(); d > 0 {
			sv.CPURampPercent = round3(sv.CPURampSeconds / d * 100)
		}
		if sum.Conns.Connected > 0 {
			sv.CPUPerConnectMS = round3(sv.CPURampSeconds * 1000 / float64(sum.Conns.Connected))
		}
	}
	sv.RSSSlope = round3(slope(c.points, sum.Conns.Connected/4))
	sum.LoadGen.CoordinatorCPU = round3(selfCPU())
	if sv.AtFull.complete() && sv.AtEnd.complete() {
		sv.CPUSteadySeconds = round3(sv.AtEnd.CPUSeconds - sv.AtFull.CPUSeconds)
		if d := sv.AtEnd.At.Sub(sv.AtFull.At).Seconds(); d > 0 {
			sv.CPUSteadyPercent = round3(sv.CPUSteadySeconds / d * 100)
		}
	}
	if err := c.sc.Merge(c.plan, reports, sum); err != nil {
		return err
	}
	if len(lost) > 0 {
		return errors.New(strings.Join(lost, "; "))
	}
	return nil
}

// waitReady waits up to 10 s for every node's /readyz (beside its /metrics
// URL) and, when the target is not one of them (NGINX in front of several),
// for the target's /healthz, which that proxy passes on to a node: a proxy
// keeps the nodes' readiness for itself.
func waitReady(ctx context.Context, hc *http.Client, cfg Config) error {
	var urls []string
	direct := false
	for _, m := range cfg.Metrics {
		if base, ok := strings.CutSuffix(m, "/metrics"); ok {
			urls = append(urls, base+"/readyz")
			direct = direct || base == strings.TrimSuffix(cfg.Target, "/")
		}
	}
	if !direct {
		urls = append(urls, strings.TrimSuffix(cfg.Target, "/")+"/healthz")
	}
	for _, u := range urls {
		if err := waitOK(ctx, hc, u); err != nil {
			return err
		}
	}
	return nil
}

// waitOK waits up to 10 s for url to answer 200.
func waitOK(ctx context.Context, hc *http.Client, url string) error {
	var last error
	for range 20 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready: GET %s: %w", url, last)
}

// sourceAddrs lists the loopback source addresses n sockets use.
func sourceAddrs(cfg Config, n int) []string {
	if cfg.SourceBase == "" || n == 0 {
		return nil
	}
	a, err := netip.ParseAddr(cfg.SourceBase)
	if err != nil {
		return nil
	}
	var out []string
	for i := 0; i <= (n-1)/cfg.ConnsPerSource; i++ {
		out = append(out, a.String())
		a = a.Next()
	}
	return out
}

// rssPoint is the node RSS with so many sockets connected.
type rssPoint struct {
	conns int64
	rss   int64
}

// slope fits rss = a + b·conns by least squares over the points with at
// least from sockets, and returns b (0 if the points do not vary).
func slope(pts []rssPoint, from int64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, p := range pts {
		if p.conns < from || p.rss == 0 {
			continue
		}
		x, y := float64(p.conns), float64(p.rss)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if n < 3 || d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func sumNodes(s Sample, f func(NodeSample) int64) int64 {
	var t int64
	for _, n := range s.Nodes {
		t += f(n)
	}
	return t
}

func heapOf(n NodeSample) int64       { return n.HeapInuse }
func goroutinesOf(n NodeSample) int64 { return n.Goroutines }

func secs(d time.Duration) float64 { return round3(d.Seconds()) }
