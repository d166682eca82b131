package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The sample inputs are a real run: three nodes behind NGINX, fan-out to ten
// groups of 500 devices (docs/results/2026-12-06/cluster/fanout-3nodes-seq).
func sample(t *testing.T) Input {
	dir := "../../docs/results/2026-12-06/cluster"
	s, err := ReadSummary(filepath.Join(dir, "fanout-3nodes-seq.json"))
	if err != nil {
		t.Fatal(err)
	}
	series, err := ReadSeries(filepath.Join(dir, "fanout-3nodes-seq.series.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return Input{Summary: s, Series: series}
}

func TestReportTableAndRecommendationsFollowTheNumbers(t *testing.T) {
	r := Build(sample(t))
	rows := map[string]Row{}
	for _, row := range r.Rows {
		rows[row.What] = row
	}
	for what, want := range map[string]string{
		"Fan-out p95, send to receive (client clock)": "fail", // 438 ms
		"CPU":        "pass", // 41 % of the host
		"Error rate": "pass",
		"Deliveries lost (the delivery promise: none)": "fail", // 498 of 1,497,499
		"WebSocket connections per node":               "below target",
	} {
		if got := rows[what].Verdict; got != want {
			t.Errorf("%s: verdict %q, want %q (%+v)", what, got, want, rows[what])
		}
	}
	if !strings.Contains(r.Recs[0], "open files") {
		t.Errorf("a 20,000-file limit against 100,000 sockets per node binds first; the first recommendation is %q", r.Recs[0])
	}
	if !strings.Contains(strings.Join(r.Recs, "\n"), "add nodes") {
		t.Errorf("CPU at 100,000 deliveries/s is past 80 %%: the recommendations should add nodes:\n%s", strings.Join(r.Recs, "\n"))
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := Build(sample(t)).HTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "<svg"); n < 4 {
		t.Errorf("%d charts; want the latency bars and the series charts", n)
	}
	// Nothing to fetch: no script, no external stylesheet, image or font.
	if m := regexp.MustCompile(`(?i)<script|<link|\bsrc=|url\(|@import`).FindString(page); m != "" {
		t.Errorf("the page would fetch something: %q", m)
	}
}

func TestMarkdownHasTheDoDTable(t *testing.T) {
	var b bytes.Buffer
	if err := Build(sample(t)).Markdown(&b, "x.html"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"| figure | target | measured | verdict | from |", "| Fan-out p95, send to receive (client clock) | < 250 ms | 438.3 ms | fail |", "## Recommendations", "[x.html](x.html)"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestFanOutBarsAreShares(t *testing.T) {
	p := &PromData{Instant: map[string][]PromSeries{"fanout_buckets": {
		{Metric: map[string]string{"le": "10"}, Values: [][2]float64{{0, 50}}},
		{Metric: map[string]string{"le": "100"}, Values: [][2]float64{{0, 90}}},
		{Metric: map[string]string{"le": "250"}, Values: [][2]float64{{0, 100}}},
		{Metric: map[string]string{"le": "+Inf"}, Values: [][2]float64{{0, 100}}},
	}}}
	bars := p.fanOutBars()
	if len(bars) != 3 || bars[0].Value != 0.5 || bars[1].Value != 0.4 || bars[2].Label != "100–250 ms" {
		t.Fatalf("bars %+v", bars)
	}
}

// TestSampleReportIsCurrent: the committed sample report (a real run of
// three nodes behind NGINX with Prometheus scraping them, made by
// scripts/bench-cluster.sh --prometheus) is what this package renders from
// its committed inputs: change the report, run `sbload report` on it again.
func TestSampleReportIsCurrent(t *testing.T) {
	dir := "../../docs/results/2026-12-06/report"
	base := filepath.Join(dir, "fanout-3nodes-report")
	s, err := ReadSummary(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	series, err := ReadSeries(base + ".series.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	prom, err := LoadProm(base + ".prometheus.json")
	if err != nil {
		t.Fatal(err)
	}
	r := Build(Input{Summary: s, Series: series, Prom: prom})
	var md, page bytes.Buffer
	if err := r.Markdown(&md, "fanout-3nodes-report.html"); err != nil {
		t.Fatal(err)
	}
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	for path, got := range map[string]string{base + ".md": md.String(), base + ".html": page.String()} {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != got {
			t.Errorf("%s is not what the report renders from its inputs now: run\n  go run ./cmd/sbload report %s.json", path, base)
		}
	}
}
