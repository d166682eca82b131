// Package report turns a load run into a performance report: the seed's
// Definition of Done table (target, measured, pass or fail), latency
// distribution, connections, memory and CPU over time, errors, the split
// between nodes, and recommendations worked out from the numbers. Its
// inputs are the run's summary (sbload run --out), optionally its
// per-second series (--series) and what Prometheus recorded of the nodes
// meanwhile (Fetch, or the JSON Fetch saved). It renders one self-contained
// HTML file (inline SVG, nothing fetched to view it) and a Markdown summary.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"time"

	"github.com/switchboard-chat/switchboard/internal/load"
)

// The seed's targets, per node.
const (
	TargetConns         = 100_000
	TargetBytesPerConn  = 10 * 1024
	TargetMessagesPerS  = 100_000
	TargetFanOutP95MS   = 250
	TargetErrorRatio    = 0.01
	TargetCPUPercent    = 80
	defaultReportWindow = time.Minute
)

// SeriesPoint is one line of sbload's --series file.
type SeriesPoint struct {
	T          float64 `json:"t"`
	Phase      string  `json:"phase"`
	Connected  int64   `json:"connected"`
	Failed     int64   `json:"failed"`
	Dropped    int64   `json:"dropped"`
	RSS        int64   `json:"rss_bytes"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// Input is everything a report is made of.
type Input struct {
	Summary load.Summary
	Series  []SeriesPoint // may be empty
	Prom    *PromData     // may be nil
}

// ReadSummary reads sbload's summary JSON.
func ReadSummary(path string) (load.Summary, error) {
	var s load.Summary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadSeries reads sbload's --series JSON lines.
func ReadSeries(path string) ([]SeriesPoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []SeriesPoint
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var p SeriesPoint
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// Window is the run's time span: from its start to the end of its phases.
func Window(s load.Summary) (start, end time.Time) {
	d := s.Phases.ProvisionSeconds + s.Phases.RampSeconds + s.Phases.SteadySeconds + s.Phases.DrainSeconds
	if d <= 0 {
		d = defaultReportWindow.Seconds()
	}
	return s.Date, s.Date.Add(time.Duration((d + 2) * float64(time.Second)))
}

// Row is one line of the DoD table.
type Row struct {
	What     string
	Target   string
	Measured string
	Verdict  string // "pass", "fail", or "n/a" when the run did not measure it
	Source   string // where the figure comes from
	// Use is measured/target oriented so that 1 is the limit (for a
	// capacity target: target/measured-at-this-load is not known, so the
	// run's own share of the target); it orders the recommendations.
	Use float64
}

// Report is what the renderers draw.
type Report struct {
	Title   string
	Command string
	Date    time.Time
	Machine load.Machine
	Nodes   int
	Rows    []Row
	Recs    []string
	Notes   []string
	Latency []Bar // client-measured percentiles, ms
	FanOut  []Bar // server-measured distribution (Prometheus), share of messages per bucket
	Charts  []Chart
	Errors  []KV // error kinds and counts
	PerNode []NodeRow
	in      Input
}

// Bar is one bar of a bar chart.
type Bar struct {
	Label string
	Value float64
}

// KV is a name and a count.
type KV struct {
	Key   string
	Value float64
}

// NodeRow is one node's share of the run (from Prometheus).
type NodeRow struct {
	Instance                   string
	MaxConns, Sent, Delivered  float64
	MaxCPU, MemPerConn, FanP95 float64
}

// scenarioFigures are the send-side figures of the scenarios that send.
type scenarioFigures struct {
	sent, sendErrors, lost, expected int64
	deliveriesPerSecond              float64
	delivery, commit                 load.Latency
}

func figures(s load.Summary) (scenarioFigures, bool) {
	switch {
	case s.Fanout != nil:
		f := s.Fanout
		return scenarioFigures{f.Sent, f.SendErrors, f.Lost, f.Expected, f.DeliveriesPerSecond, f.DeliveryLatency, f.CommitLatency}, true
	case s.Chat != nil:
		c := s.Chat
		return scenarioFigures{c.Sent, c.SendErrors, c.Lost, c.Expected, c.DeliveriesPerSec, c.DeliveryLatency, c.CommitLatency}, true
	}
	return scenarioFigures{}, false
}

// Build works the report out of in.
func Build(in Input) *Report {
	s := in.Summary
	r := &Report{Title: "switchboard performance report: " + s.Scenario, Command: s.Command, Date: s.Date,
		Machine: s.Machine, Nodes: max(len(s.Params.Metrics), 1), in: in}
	fig, sends := figures(s)
	cores := float64(max(s.Machine.NProc, 1))
	p := in.Prom

	// Connections per node.
	perNode := float64(s.Conns.AtEnd) / float64(r.Nodes)
	src := fmt.Sprintf("sbload: %d sockets open at the end over %d node(s)", s.Conns.AtEnd, r.Nodes)
	if p != nil {
		if v, ok := p.maxOf("connections"); ok {
			perNode, src = v, "Prometheus: max of switchboard_ws_connections over nodes and time"
		}
	}
	asked := float64(s.Conns.Wanted) / float64(r.Nodes)
	r.Rows = append(r.Rows, capacity("WebSocket connections per node", TargetConns, perNode, asked, src))

	// Memory per connection.
	if s.Server.BytesPerConn > 0 {
		r.Rows = append(r.Rows, limit("Memory per connection", TargetBytesPerConn, s.Server.BytesPerConn, "%.0f B",
			"sbload: (node RSS at N - RSS at 0) / N"))
	} else {
		r.Rows = append(r.Rows, Row{What: "Memory per connection", Target: "< 10,240 B", Measured: "-", Verdict: "n/a", Source: "no socket held"})
	}

	// Messages per second and latency.
	if sends {
		dps := fig.deliveriesPerSecond / float64(r.Nodes)
		// The rate is the run's own setting: it asked for what it got.
		r.Rows = append(r.Rows, capacity("Messages delivered per second per node", TargetMessagesPerS, dps, dps,
			fmt.Sprintf("sbload: %.0f deliveries/s over %d node(s)", fig.deliveriesPerSecond, r.Nodes)))
		r.Rows = append(r.Rows, limit("Fan-out p95, send to receive (client clock)", TargetFanOutP95MS, fig.delivery.P95, "%.1f ms",
			fmt.Sprintf("sbload: %d deliveries", fig.delivery.Count)))
		r.Latency = []Bar{{"p50", fig.delivery.P50}, {"p95", fig.delivery.P95}, {"p99", fig.delivery.P99}, {"p99.9", fig.delivery.P999}, {"max", fig.delivery.Max}}
	} else {
		r.Rows = append(r.Rows, Row{What: "Messages delivered per second per node", Target: "≥ 100,000", Measured: "-", Verdict: "n/a", Source: "the scenario sends nothing"})
	}
	if p != nil {
		if v, ok := p.lastOf("fanout_p95_run"); ok && !math.IsNaN(v) {
			r.Rows = append(r.Rows, limit("Fan-out p95, commit to socket (node clocks)", TargetFanOutP95MS, v, "%.1f ms",
				"Prometheus: switchboard_message_fan_out_latency_ms over the run"))
		}
		r.FanOut = p.fanOutBars()
	}

	// Errors: failed dials and sends over dials and sends; deliveries lost
	// (the delivery promise says none) on their own row.
	attempts := float64(s.Conns.Attempted + fig.sent)
	errs := float64(s.ErrorsTotal + fig.sendErrors)
	ratio := 0.0
	if attempts > 0 {
		ratio = errs / attempts
	}
	r.Rows = append(r.Rows, limit("Error rate", TargetErrorRatio, ratio, "%.4f",
		fmt.Sprintf("sbload: %.0f socket errors and failed sends over %.0f dials and sends", errs, attempts)))
	if sends && fig.expected > 0 {
		row := Row{What: "Deliveries lost (the delivery promise: none)", Target: "0", Measured: fmt.Sprintf("%d of %d", fig.lost, fig.expected),
			Verdict: verdict(fig.lost == 0), Source: "sbload: expected deliveries never received by the end of the drain"}
		r.Rows = append(r.Rows, row)
	}
	if p != nil {
		if v, ok := p.lastOf("error_ratio_run"); ok && !math.IsNaN(v) {
			r.Rows = append(r.Rows, limit("Error rate, node side (internal + unavailable)", TargetErrorRatio, v, "%.4f",
				"Prometheus: switchboard_errors_total / switchboard_requests_total over the run"))
		}
		r.Errors = p.kvs("errors_by_kind", "kind")
		r.PerNode = p.perNode()
	}
	for k, v := range s.Errors {
		r.Errors = append(r.Errors, KV{"sbload: " + k, float64(v)})
	}
	sortKVs(r.Errors)

	// CPU: the steady phase's node CPU as a share of the host.
	cpu := s.Server.CPUSteadyPercent / cores
	cpuSrc := fmt.Sprintf("sbload: node CPU in the steady phase, %.0f %% of one core over %d cores", s.Server.CPUSteadyPercent, int(cores))
	if p != nil {
		if v, ok := p.maxOf("cpu"); ok {
			cpu, cpuSrc = v, "Prometheus: max of switchboard_cpu_usage_percent over nodes and time"
		}
	}
	r.Rows = append(r.Rows, limit("CPU", TargetCPUPercent, cpu, "%.1f %%", cpuSrc))

	r.Charts = charts(in)
	r.Recs = recommend(r, fig, sends, cpu)
	r.Notes = append(r.Notes, s.Notes...)
	return r
}

// capacity is a row whose target is a load to carry (more is better). A
// run that asked for less than the target did not test it: its verdict is
// "below target", not "fail" (the recommendations project what the target
// would take).
func capacity(what string, target, v, asked float64, src string) Row {
	row := Row{What: what, Target: fmt.Sprintf("≥ %s", thousands(target)), Measured: thousands(math.Round(v)), Source: src, Use: v / target}
	switch {
	case v >= target:
		row.Verdict = "pass"
	case asked < target:
		row.Verdict = "below target"
	default:
		row.Verdict = "fail"
	}
	return row
}

// limit is a row whose target is a ceiling (less is better).
func limit(what string, target, v float64, format, src string) Row {
	row := Row{What: what, Target: "< " + fmt.Sprintf(precision.ReplaceAllString(format, "%g"), target), Measured: fmt.Sprintf(format, v), Source: src, Use: v / target}
	row.Verdict = verdict(v < target)
	return row
}

// precision matches a %.Nf verb: a target is written without the zeros.
var precision = regexp.MustCompile(`%\.\d+f`)

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
