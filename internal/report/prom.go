package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PromData is what Prometheus recorded of the nodes during a run, as the
// report reads it: a few range series and a few figures over the whole run.
// It is saved as JSON next to the run's summary, so the report can be made
// again (and checked) without that Prometheus.
type PromData struct {
	URL     string                  `json:"url"`
	Start   time.Time               `json:"start"`
	End     time.Time               `json:"end"`
	Step    float64                 `json:"step_seconds"`
	Range   map[string][]PromSeries `json:"range"`
	Instant map[string][]PromSeries `json:"instant"` // one value each
	Queries map[string]string       `json:"queries"`
}

// PromSeries is one series: its labels and (unix seconds, value) points.
type PromSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]float64      `json:"values"`
}

// rangeQueries are charted over time; window is the rate window.
func rangeQueries(window string) map[string]string {
	return map[string]string{
		"connections":    `switchboard_ws_connections`,
		"mem_per_conn":   `switchboard_memory_per_connection_bytes`,
		"cpu":            `switchboard_cpu_usage_percent`,
		"fanout_p95":     `histogram_quantile(0.95, sum by (le) (rate(switchboard_message_fan_out_latency_ms_bucket[` + window + `])))`,
		"delivered_rate": `sum(rate(switchboard_messages_delivered_total[` + window + `]))`,
		"sent_rate":      `sum(rate(switchboard_messages_sent_total[` + window + `]))`,
	}
}

// instantQueries are figures over the whole run (dur), read at its end.
func instantQueries(dur string) map[string]string {
	inc := func(m string) string { return "increase(" + m + "[" + dur + "])" }
	return map[string]string{
		"fanout_p95_run":  `histogram_quantile(0.95, sum by (le) (` + inc("switchboard_message_fan_out_latency_ms_bucket") + `))`,
		"fanout_buckets":  `sum by (le) (` + inc("switchboard_message_fan_out_latency_ms_bucket") + `)`,
		"error_ratio_run": `sum(` + inc(`switchboard_errors_total{kind=~"internal|unavailable"}`) + `) / clamp_min(sum(` + inc("switchboard_requests_total") + `), 1)`,
		"errors_by_kind":  `sum by (kind) (` + inc("switchboard_errors_total") + `) > 0`,
		"node_sent":       inc("switchboard_messages_sent_total"),
		"node_delivered":  inc("switchboard_messages_delivered_total"),
		"node_max_conns":  `max_over_time(switchboard_ws_connections[` + dur + `])`,
		"node_max_cpu":    `max_over_time(switchboard_cpu_usage_percent[` + dur + `])`,
		"node_mem":        `quantile_over_time(0.5, (switchboard_memory_per_connection_bytes > 0)[` + dur + `:5s])`,
		"node_fanout_p95": `histogram_quantile(0.95, sum by (instance, le) (` + inc("switchboard_message_fan_out_latency_ms_bucket") + `))`,
	}
}

// Fetch reads the run's window [start, end] from the Prometheus at base.
func Fetch(ctx context.Context, base string, start, end time.Time) (*PromData, error) {
	d := end.Sub(start)
	step := max(d.Seconds()/300, 1)
	window := fmt.Sprintf("%ds", max(int(4*step), 15))
	dur := fmt.Sprintf("%ds", max(int(d.Seconds()), 1))
	p := &PromData{URL: base, Start: start, End: end, Step: step, Range: map[string][]PromSeries{},
		Instant: map[string][]PromSeries{}, Queries: map[string]string{}}
	for k, q := range rangeQueries(window) {
		v := url.Values{"query": {q}, "start": {unix(start)}, "end": {unix(end)}, "step": {strconv.FormatFloat(step, 'f', -1, 64)}}
		s, err := query(ctx, base+"/api/v1/query_range", v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		p.Range[k], p.Queries[k] = s, q
	}
	for k, q := range instantQueries(dur) {
		s, err := query(ctx, base+"/api/v1/query", url.Values{"query": {q}, "time": {unix(end)}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		p.Instant[k], p.Queries[k] = s, q
	}
	return p, nil
}

func unix(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }

// query runs one Prometheus API query and converts its matrix or vector.
func query(ctx context.Context, u string, v url.Values) ([]PromSeries, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s", r.Error)
	}
	var out []PromSeries
	for _, res := range r.Data.Result {
		s := PromSeries{Metric: res.Metric}
		if res.Value != nil {
			res.Values = append(res.Values, res.Value)
		}
		for _, pt := range res.Values {
			if len(pt) != 2 {
				continue
			}
			t, _ := pt[0].(float64)
			str, _ := pt[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				continue // no data there (a quantile of nothing), and JSON has no NaN
			}
			s.Values = append(s.Values, [2]float64{t, f})
		}
		out = append(out, s)
	}
	return out, nil
}

// Save writes p as JSON.
func (p *PromData) Save(path string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadProm reads what Save wrote.
func LoadProm(path string) (*PromData, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &PromData{}
	return p, json.Unmarshal(b, p)
}

// maxOf is the largest finite value of a range key over series and time.
func (p *PromData) maxOf(key string) (float64, bool) {
	best, ok := 0.0, false
	for _, s := range p.Range[key] {
		for _, pt := range s.Values {
			if v := pt[1]; !math.IsNaN(v) && !math.IsInf(v, 0) && (!ok || v > best) {
				best, ok = v, true
			}
		}
	}
	return best, ok
}

// lastOf is the value of an instant key with one series.
func (p *PromData) lastOf(key string) (float64, bool) {
	s := p.Instant[key]
	if len(s) != 1 || len(s[0].Values) == 0 {
		return 0, false
	}
	return s[0].Values[len(s[0].Values)-1][1], true
}

func (p *PromData) kvs(key, label string) []KV {
	var out []KV
	for _, s := range p.Instant[key] {
		if len(s.Values) > 0 {
			out = append(out, KV{"node: " + s.Metric[label], s.Values[0][1]})
		}
	}
	sortKVs(out)
	return out
}

// sortKVs orders by count, then name: the report is the same for the same inputs.
func sortKVs(kv []KV) {
	sort.Slice(kv, func(i, j int) bool {
		if kv[i].Value != kv[j].Value {
			return kv[i].Value > kv[j].Value
		}
		return kv[i].Key < kv[j].Key
	})
}

// fanOutBars is the share of messages in each latency bucket.
func (p *PromData) fanOutBars() []Bar {
	type b struct {
		le  float64
		cum float64
	}
	var bs []b
	for _, s := range p.Instant["fanout_buckets"] {
		le, err := strconv.ParseFloat(s.Metric["le"], 64)
		if err != nil || len(s.Values) == 0 {
			continue
		}
		bs = append(bs, b{le, s.Values[0][1]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].cum <= 0 {
		return nil
	}
	total, prev, prevLe := bs[len(bs)-1].cum, 0.0, 0.0
	var out []Bar
	for _, x := range bs {
		label := fmt.Sprintf("%g–%g ms", prevLe, x.le)
		if math.IsInf(x.le, 1) {
			label = fmt.Sprintf("> %g ms", prevLe)
		}
		out = append(out, Bar{label, (x.cum - prev) / total})
		prev, prevLe = x.cum, x.le
	}
	// Drop the empty tail past the last bucket with messages.
	for len(out) > 1 && out[len(out)-1].Value == 0 {
		out = out[:len(out)-1]
	}
	return out
}

// perNode joins the per-node figures by instance.
func (p *PromData) perNode() []NodeRow {
	rows := map[string]*NodeRow{}
	get := func(inst string) *NodeRow {
		if rows[inst] == nil {
			rows[inst] = &NodeRow{Instance: inst, FanP95: math.NaN()}
		}
		return rows[inst]
	}
	for key, set := range map[string]func(*NodeRow, float64){
		// increase() extrapolates to the window's edges: whole messages.
		"node_sent":       func(r *NodeRow, v float64) { r.Sent = math.Round(v) },
		"node_delivered":  func(r *NodeRow, v float64) { r.Delivered = math.Round(v) },
		"node_max_conns":  func(r *NodeRow, v float64) { r.MaxConns = v },
		"node_max_cpu":    func(r *NodeRow, v float64) { r.MaxCPU = v },
		"node_mem":        func(r *NodeRow, v float64) { r.MemPerConn = math.Round(v) },
		"node_fanout_p95": func(r *NodeRow, v float64) { r.FanP95 = v },
	} {
		for _, s := range p.Instant[key] {
			if inst := s.Metric["instance"]; inst != "" && len(s.Values) > 0 {
				set(get(inst), s.Values[0][1])
			}
		}
	}
	var out []NodeRow
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Instance, out[j].Instance) < 0 })
	return out
}
